#!/usr/bin/env python3
# tools/fake_aws.py: stand-ins for the AWS endpoints the worker calls, on one loopback port:
#   STS       POST /  Action=AssumeRole (SigV4 "sts", verified), AssumeRoleWithWebIdentity
#             (unsigned; the WebIdentityToken must be --web-identity-token); XML answers in
#             STS's format, ErrorResponse documents on refusal
#   ECS       GET /v2/credentials/<id>  the container credentials endpoint: JSON credentials;
#             with --ecs-token the Authorization header must equal it
#   MSK API   GET /v1/clusters/{arn}/bootstrap-brokers  (SigV4 "kafka", verified)
#             -> {"BootstrapBrokerStringSaslIam": --brokers}
#
# Signatures are verified with botocore's SigV4Auth (the canonical request, string to sign
# and signature of the request as received, at its own X-Amz-Date), against the secrets this
# fake knows: the long-term keys given with --key and every temporary credential it issued.
# So the worker is checked against AWS's own signing code, never against itself.
#
# --issue AKID:SECRET:TOKEN makes STS and ECS hand out those credentials (keys a test Kafka
# listener knows) instead of new ones.
# Test hooks: GET /_stats (counts per action and outcome), POST /_control {"expires_in": s,
# "brokers": "...", "fail": "sts"|"ecs"|"msk"|null, "reset_stats": true}. The pidfile is
# written once the port is bound; SIGTERM shuts down.
import argparse
import datetime
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.keys = {}                      # access key id -> (secret, token or None)
        for k in args.key:
            parts = k.split(":", 2)
            self.keys[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else None)
        self.expires_in = args.expires_in
        self.brokers = args.brokers
        self.web_identity_token = args.web_identity_token
        self.ecs_token = args.ecs_token
        self.fail = None
        self.max_skew = args.max_skew
        self.fixed = tuple(args.issue.split(":", 2)) if args.issue else None
        if self.fixed:
            self.keys[self.fixed[0]] = (self.fixed[1], self.fixed[2])
        self.serial = 0
        self.stats = {}

    def count(self, what):
        with self.lock:
            self.stats[what] = self.stats.get(what, 0) + 1

    def issue(self, prefix):
        if self.fixed:      # --issue: hand out these (e.g. keys a test broker knows)
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.expires_in)
            return (*self.fixed, exp.strftime("%Y-%m-%dT%H:%M:%SZ"))
        with self.lock:
            self.serial += 1
            akid = f"ASIA{prefix}{self.serial:012d}"
            secret = f"fake-secret-{prefix.lower()}-{self.serial}-wJalrXUtnFEMI"
            token = f"FQoGZXIvYXdzE{prefix}{self.serial}//session+token/="
            self.keys[akid] = (secret, token)
            exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.expires_in)
        return akid, secret, token, exp.strftime("%Y-%m-%dT%H:%M:%SZ")


def verify_sigv4(state, method, path, headers, body, service):
    """None when the request's SigV4 signature is right, else the reason."""
    m = AUTH_RE.match(headers.get("Authorization", ""))
    if not m:
        return "missing or malformed Authorization"
    akid, day, region, svc, signed, sig = m.groups()
    if svc != service:
        return f"signed for service {svc}, expected {service}"
    if akid not in state.keys:
        return "unknown access key"
    secret, token = state.keys[akid]
    if token and headers.get("X-Amz-Security-Token") != token:
        return "wrong or missing security token"
    amzdate = headers.get("X-Amz-Date", "")
    try:
        when = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return "bad X-Amz-Date"
    if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > state.max_skew or \
            day != amzdate[:8]:
        return "request time too skewed"
    names = signed.split(";")
    req = AWSRequest(method=method, url=f"http://{headers.get('Host')}{path}",
                     headers={n: headers.get(n, "") for n in names}, data=body or None)
    req.context["timestamp"] = amzdate
    signer = SigV4Auth(Credentials(akid, secret, token), service, region)
    creq = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, creq), req)
    return None if want == sig else "signature does not match"


def sts_credentials_xml(action, akid, secret, token, exp):
    return (f'<{action}Response xmlns="{STS_NS}">\n  <{action}Result>\n    <Credentials>\n'
            f"      <AccessKeyId>{akid}</AccessKeyId>\n      <SecretAccessKey>{secret}</SecretAccessKey>\n"
            f"      <SessionToken>{token}</SessionToken>\n      <Expiration>{exp}</Expiration>\n"
            f"    </Credentials>\n    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"
            f"<AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>\n  </{action}Result>\n"
            f"  <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>\n</{action}Response>\n")


def sts_error_xml(code, message):
    return (f'<ErrorResponse xmlns="{STS_NS}">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{code}</Code>\n'
            f"    <Message>{message}</Message>\n  </Error>\n  <RequestId>fake</RequestId>\n</ErrorResponse>\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        st = self.state
        path = self.path.split("?", 1)[0]
        if path == "/_stats":
            with st.lock:
                return self.send(200, json.dumps(st.stats), "application/json")
        if path.startswith("/v1/clusters/") and path.endswith("/bootstrap-brokers"):
            return self.bootstrap(path)
        if path.startswith("/v2/credentials/"):
            return self.ecs()
        self.send(404, json.dumps({"message": "no such path"}), "application/json")

    def ecs(self):
        st = self.state
        if st.fail == "ecs":
            st.count("ecs:500")
            return self.send(500, "{}", "application/json")
        if st.ecs_token and self.headers.get("Authorization") != st.ecs_token:
            st.count("ecs:refused")
            return self.send(401, json.dumps({"message": "bad authorization token"}), "application/json")
        akid, secret, token, exp = st.issue("ECS")
        st.count("ecs:ok")
        self.send(200, json.dumps({"AccessKeyId": akid, "SecretAccessKey": secret, "Token": token,
                                   "Expiration": exp, "RoleArn": "arn:aws:iam::123456789012:role/task"}),
                  "application/json")

    def bootstrap(self, path):
        st = self.state
        why = "forced failure" if st.fail == "msk" else \
            verify_sigv4(st, "GET", path, self.headers, b"", "kafka")
        if why:
            st.count("msk:refused")
            return self.send(403, json.dumps({"message": f"refused: {why}"}), "application/json")
        arn = urllib.parse.unquote(path[len("/v1/clusters/"):-len("/bootstrap-brokers")])
        if not arn.startswith("arn:aws:kafka:"):
            st.count("msk:bad-arn")
            return self.send(400, json.dumps({"message": "bad cluster ARN"}), "application/json")
        st.count("msk:ok")
        self.send(200, json.dumps({"BootstrapBrokerStringSaslIam": st.brokers}), "application/json")

    def do_POST(self):
        st = self.state
        body = self.read_body()
        if self.path == "/_control":
            ctl = json.loads(body or b"{}")
            with st.lock:
                if ctl.get("reset_stats"):
                    st.stats = {}
                for k in ("expires_in", "brokers", "fail"):
                    if k in ctl:
                        setattr(st, k, ctl[k])
            return self.send(200, "{}", "application/json")
        if self.path != "/":
            return self.send(404, "", "text/plain")
        form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        action = form.get("Action")
        if st.fail == "sts":
            st.count(f"{action}:refused")
            return self.send(403, sts_error_xml("AccessDenied", "forced failure"), "text/xml")
        if action == "AssumeRole":
            why = verify_sigv4(st, "POST", "/", self.headers, body, "sts")
            if why or not form.get("RoleArn") or not form.get("RoleSessionName"):
                st.count("AssumeRole:refused")
                return self.send(403, sts_error_xml("SignatureDoesNotMatch", why or "missing parameters"), "text/xml")
            akid, secret, token, exp = st.issue("ROLE")
        elif action == "AssumeRoleWithWebIdentity":
            if form.get("WebIdentityToken") != st.web_identity_token or not form.get("RoleArn"):
                st.count("AssumeRoleWithWebIdentity:refused")
                return self.send(400, sts_error_xml("InvalidIdentityToken", "the web identity token is not valid"),
                                 "text/xml")
            akid, secret, token, exp = st.issue("WEB")
        else:
            return self.send(400, sts_error_xml("InvalidAction", "unknown action"), "text/xml")
        st.count(f"{action}:ok")
        self.send(200, sts_credentials_xml(action, akid, secret, token, exp), "text/xml")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--pidfile")
    ap.add_argument("--key", action="append", default=[], help="AKID:SECRET[:TOKEN] accepted for signing")
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--web-identity-token", default="fake.web.identity-token")
    ap.add_argument("--ecs-token")
    ap.add_argument("--expires-in", type=int, default=3600)
    ap.add_argument("--issue", help="AKID:SECRET:TOKEN handed out by STS and ECS instead of new ones")
    ap.add_argument("--max-skew", type=int, default=300, help="seconds a signature's time may be off (AWS: 300)")
    args = ap.parse_args()
    Handler.state = State(args)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()} {srv.server_address[1]}\n")
        os.rename(args.pidfile + ".tmp", args.pidfile)
    try:
        srv.serve_forever()
    finally:
        if args.pidfile and os.path.exists(args.pidfile):
            os.unlink(args.pidfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
