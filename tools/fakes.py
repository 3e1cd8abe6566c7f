#!/usr/bin/env python3
# tools/fakes.py: stand-ins for the company-internal HTTP services the worker calls, following
# docs/contract.md (sections 1, 3, 4) exactly:
#   fido      FIDO Product Service  POST /v1/products:batchGet, GET /v1/products/{fido}
#   retailer  Retailer Service      GET /v1/retailers/{retailer_id}
#   flipper   Flipper HTTP API      GET /features[?keys=a,b&exclude_gate_names=true], GET /features/{name}
#   registry  Buf CSR (Confluent Schema Registry REST)  GET [<any base path>]/schemas/ids/{id}
#
# Design: one process, one ThreadingHTTPServer per service on loopback, each in its own thread;
# HTTP/1.1 keep-alive like the real services. Product and retailer answers come from the
# deterministic tools/catalogue.py, which tools/gen.py also uses for its ground truth.
# Every port also serves test hooks that are never counted nor affected by switches:
#   GET  /_stats               request counts per endpoint and status (+ batchGet sizes)
#   POST /_control             switches, merged: {"latency_ms":50,"error_rate":0.5,
#                              "error_status":500,"outage":false|true|"refuse","reset_stats":true}
#                              outage true = 503 to everything; "refuse" = close the connection
#                              at once with a TCP reset, no answer. GET /_control shows them.
#   POST /_control/flags       (flipper) replace the flags with Flipper's export format
#                              {"version":1,"features":{...}}; GET returns that format.
#                              Flipper-only keys in /_control: poll_interval, value_style
#                              ("strings" like the OSS Redis-backed API, or "typed" like Cloud),
#                              etag_style ("strong"/"weak").
# Start-time switches: --switch 'SERVICE:{json}' (SERVICE = fido|retailer|flipper|registry|all).
# The pidfile is written once every port is bound (so it doubles as a readiness signal);
# SIGTERM/SIGINT shut down cleanly and remove it. One access-log line per request.
import argparse
import base64
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catalogue  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PORTS = {"fido": 18081, "retailer": 18082, "flipper": 18083, "registry": 18084}
BATCH_LIMIT = 100

# Registered under the "incompatible" id: same file and message names, field types changed.
INCOMPATIBLE_FACTOID_PROTO = """syntax = "proto3";

package factoids.v1;

message Factoid {
  int64 factoid_id = 1;
  bytes user_id = 2;
  repeated string source = 3;
}
"""


class Service:
    """State of one fake: switches, stats and (for flipper) flags. Guarded by one lock."""

    def __init__(self, name, args):
        self.name, self.args = name, args
        self.lock = threading.Lock()
        self.switches = {"latency_ms": 0, "error_rate": 0.0, "error_status": 500, "outage": False}
        if name == "flipper":
            self.switches.update(poll_interval=args.flipper_poll_interval,
                                 value_style="strings", etag_style="strong")
        self.rng = random.Random(f"{args.seed}:{name}")
        self.reset_stats()
        self.flags = {}

    def reset_stats(self):
        self.stats = {"service": self.name, "requests": 0, "endpoints": {},
                      "batch_fidos": 0, "batch_max": 0}

    def count(self, endpoint, status):
        with self.lock:
            self.stats["requests"] += 1
            per = self.stats["endpoints"].setdefault(endpoint, {})
            per[str(status)] = per.get(str(status), 0) + 1


# ---- Flipper ----------------------------------------------------------------------------------

def _num(v):
    """A Flipper percentage (string, number or null) as float or None."""
    if v is None or v == "":
        return None
    return float(v)


def _truthy(v):
    return v is True or v == 1 or (isinstance(v, str) and v.lower() in ("true", "1"))


def normalize_feature(gates):
    """Flipper export gate values -> internal form."""
    return {"boolean": _truthy(gates.get("boolean")),
            "expression": gates.get("expression"),
            "actors": sorted(set(gates.get("actors") or [])),
            "percentage_of_actors": _num(gates.get("percentage_of_actors")),
            "percentage_of_time": _num(gates.get("percentage_of_time")),
            "groups": sorted(set(gates.get("groups") or []))}


def _pct_str(p):
    return None if p is None else (str(int(p)) if p == int(p) else repr(p))


def _pct_typed(p):
    return 0 if p is None else (int(p) if p == int(p) else p)


def export_feature(f):
    return {"boolean": "true" if f["boolean"] else None, "expression": f["expression"],
            "actors": f["actors"], "percentage_of_actors": _pct_str(f["percentage_of_actors"]),
            "percentage_of_time": _pct_str(f["percentage_of_time"]), "groups": f["groups"]}


def feature_state(f):
    if f["boolean"] or (f["percentage_of_time"] or 0) >= 100:
        return "on"
    if (f["actors"] or f["groups"] or f["expression"] or (f["percentage_of_actors"] or 0) > 0
            or (f["percentage_of_time"] or 0) > 0):
        return "conditional"
    return "off"


def decorate_feature(key, f, value_style, with_gates=True, with_names=True):
    """Flipper::Api::V1::Decorators::Feature."""
    typed = value_style == "typed"
    pct = _pct_typed if typed else _pct_str
    gates = [("boolean", "boolean", f["boolean"] if typed else ("true" if f["boolean"] else None)),
             ("expression", "expression", f["expression"]),
             ("actors", "actor", f["actors"]),
             ("percentage_of_actors", "percentage_of_actors", pct(f["percentage_of_actors"])),
             ("percentage_of_time", "percentage_of_time", pct(f["percentage_of_time"])),
             ("groups", "group", f["groups"])]
    out = {"key": key, "state": feature_state(f)}
    if with_gates:
        out["gates"] = [dict({"key": k}, **({"name": n} if with_names else {}), value=v)
                        for k, n, v in gates]
    return out


# ---- HTTP -------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "cgw-fake/1"
    service = None  # set per server (subclass)
    access_log = None

    def log_message(self, fmt, *a):  # silence the default stderr log
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        t0 = time.monotonic()
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n > 0 else b""
        u = urllib.parse.urlsplit(self.path)
        path, self.query = u.path, urllib.parse.parse_qs(u.query)
        svc = self.service
        if path == "/_stats" or path.startswith("/_control"):
            status, obj, hdrs = self._control(method, path)
            return self._send(status, obj, hdrs, t0, method)
        with svc.lock:
            sw = dict(svc.switches)
            roll = svc.rng.random()
        endpoint = self._endpoint(method, path)
        if sw["outage"] == "refuse":
            svc.count(endpoint, "refused")
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._log(method, "refused", 0, t0)
            return
        if sw["latency_ms"]:
            time.sleep(sw["latency_ms"] / 1000.0)
        if sw["outage"]:
            status, obj, hdrs = 503, {"error": "service unavailable (fake outage)"}, {}
        elif roll < sw["error_rate"]:
            status, obj, hdrs = int(sw["error_status"]), {"error": "injected error"}, {}
        else:
            status, obj, hdrs = self._route(method, path, sw)
        svc.count(endpoint, status)
        self._send(status, obj, hdrs, t0, method)

    def _send(self, status, obj, hdrs, t0, method):
        body = b"" if obj is None else json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        for k, v in hdrs.items():
            self.send_header(k, v)
        if status not in (204, 304):
            if "Content-Type" not in hdrs:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status not in (204, 304):
            self.wfile.write(body)
        self._log(method, status, len(body), t0)

    def _log(self, method, status, nbytes, t0):
        line = "%s %s %s \"%s %s\" %s %dB %.1fms\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()), self.service.name,
            self.client_address[0], method, self.path, status, nbytes,
            (time.monotonic() - t0) * 1000)
        with Handler.log_lock:
            Handler.access_log.write(line)
            Handler.access_log.flush()

    def _json_body(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    # -- test hooks
    def _control(self, method, path):
        svc = self.service
        if path == "/_stats" and method == "GET":
            with svc.lock:
                return 200, json.loads(json.dumps(svc.stats)), {}
        if path == "/_control":
            if method == "POST":
                req = self._json_body()
                if not isinstance(req, dict):
                    return 400, {"error": "expected a JSON object"}, {}
                with svc.lock:
                    if req.pop("reset_stats", False):
                        svc.reset_stats()
                    unknown = set(req) - set(svc.switches)
                    if unknown:
                        return 400, {"error": f"unknown switches {sorted(unknown)}"}, {}
                    svc.switches.update(req)
            with svc.lock:
                return 200, dict(svc.switches), {}
        if path == "/_control/flags" and svc.name == "flipper":
            if method == "POST":
                req = self._json_body()
                if not isinstance(req, dict) or not isinstance(req.get("features"), dict):
                    return 400, {"error": "expected {\"version\":1,\"features\":{...}}"}, {}
                flags = {k: normalize_feature(v or {}) for k, v in req["features"].items()}
                with svc.lock:
                    svc.flags = flags
            with svc.lock:
                return 200, {"version": 1, "features": {k: export_feature(f)
                                                        for k, f in sorted(svc.flags.items())}}, {}
        return 404, {"error": "no such test hook"}, {}

    # -- the services
    def _endpoint(self, method, path):
        name = self.service.name
        if name == "fido":
            if path == "/v1/products:batchGet":
                return f"{method} /v1/products:batchGet"
            if path.startswith("/v1/products/"):
                return f"{method} /v1/products/{{fido}}"
        elif name == "retailer" and path.startswith("/v1/retailers/"):
            return f"{method} /v1/retailers/{{retailer_id}}"
        elif name == "flipper":
            if path == "/features":
                return f"{method} /features"
            if path.startswith("/features/"):
                return f"{method} /features/{{name}}"
        elif name == "registry" and re.search(r"/schemas/ids/[^/]+$", path):
            return f"{method} /schemas/ids/{{id}}"
        return f"{method} other"

    def _route(self, method, path, sw):
        return getattr(self, "_" + self.service.name)(method, path, sw)

    def _fido(self, method, path, sw):
        if path == "/v1/products:batchGet":
            if method != "POST":
                return 405, {"error": "method not allowed"}, {}
            req = self._json_body()
            fidos = req.get("fidos") if isinstance(req, dict) else None
            if not isinstance(fidos, list) or not all(isinstance(f, str) for f in fidos):
                return 400, {"error": "body must be {\"fidos\":[string...]}"}, {}
            if len(fidos) > BATCH_LIMIT:
                return 400, {"error": f"at most {BATCH_LIMIT} fidos per request"}, {}
            svc = self.service
            with svc.lock:
                svc.stats["batch_fidos"] += len(fidos)
                svc.stats["batch_max"] = max(svc.stats["batch_max"], len(fidos))
            seen, products = set(), []
            for f in fidos:
                p = catalogue.product(f)
                if p and f not in seen:
                    seen.add(f)
                    products.append(p)
            return 200, {"products": products}, {}
        m = re.fullmatch(r"/v1/products/([^/]+)", path)
        if m and method == "GET":
            p = catalogue.product(urllib.parse.unquote(m.group(1)))
            return (200, p, {}) if p else (404, {"error": "product not found"}, {})
        return 404, {"error": "not found"}, {}

    def _retailer(self, method, path, sw):
        m = re.fullmatch(r"/v1/retailers/([^/]+)", path)
        if m and method == "GET":
            r = catalogue.retailer(urllib.parse.unquote(m.group(1)))
            return (200, r, {}) if r else (404, {"error": "retailer not found"}, {})
        return 404, {"error": "not found"}, {}

    def _flipper(self, method, path, sw):
        tok = self.service.args.flipper_token
        if tok and self.headers.get(self.service.args.flipper_token_header) != tok:
            return 401, {"code": 0, "message": "unauthorized"}, {}
        if method != "GET":
            return 405, {"error": "the fake Flipper API is read-only; use /_control/flags"}, {}
        with self.service.lock:
            flags = dict(self.service.flags)
        with_gates = self.query.get("exclude_gates", ["false"])[0] != "true"
        with_names = self.query.get("exclude_gate_names", ["false"])[0] != "true"
        if path == "/features":
            keys = None
            if "keys" in self.query or "keys[]" in self.query:
                keys = set(",".join(self.query.get("keys", []) + self.query.get("keys[]", []))
                           .split(","))
            obj = {"features": [decorate_feature(k, f, sw["value_style"], with_gates, with_names)
                                for k, f in sorted(flags.items()) if keys is None or k in keys]}
        else:
            m = re.fullmatch(r"/features/([^/]+)", path)
            name = urllib.parse.unquote(m.group(1)) if m else ""
            if name not in flags:
                return 404, {"code": 1, "message": f"Feature {name} not found.",
                             "more_info": "https://flippercloud.io/docs/api#error-code-reference"}, {}
            obj = decorate_feature(name, flags[name], sw["value_style"], with_gates, with_names)
        digest = hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]
        etag = ('W/"%s"' if sw["etag_style"] == "weak" else '"%s"') % digest
        hdrs = {"ETag": etag, "poll-interval": str(sw["poll_interval"])}
        inm = self.headers.get("If-None-Match")
        if inm:
            tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
            if "*" in tags or etag.removeprefix("W/") in tags:
                return 304, None, hdrs
        return 200, obj, hdrs

    def _registry(self, method, path, sw):
        a = self.service.args
        want = "Basic " + base64.b64encode(
            f"{a.registry_user}:{a.registry_token}".encode()).decode()
        ct = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
        if self.headers.get("Authorization") != want:
            return 401, {"error_code": 40101, "message": "Unauthorized"}, \
                dict(ct, **{"WWW-Authenticate": 'Basic realm="schema-registry"'})
        m = re.search(r"/schemas/ids/([^/]+)$", path)
        if not m or method != "GET":
            return 404, {"error_code": 404, "message": "HTTP 404 Not Found"}, ct
        sid = m.group(1)
        if sid == str(a.registry_id):
            return 200, {"schemaType": "PROTOBUF", "schema": a.factoid_schema}, ct
        if a.registry_incompatible_id and sid == str(a.registry_incompatible_id):
            return 200, {"schemaType": "PROTOBUF", "schema": INCOMPATIBLE_FACTOID_PROTO}, ct
        return 404, {"error_code": 40403, "message": "Schema not found"}, ct


Handler.log_lock = threading.Lock()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the worker opens many connections at once; default backlog is 5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Fake FIDO/Retailer/Flipper/schema-registry services.")
    p.add_argument("--host", default="127.0.0.1")
    for s, port in DEFAULT_PORTS.items():
        p.add_argument(f"--{s}-port", type=int, default=port)
    p.add_argument("--services", default="fido,retailer,flipper,registry",
                   help="comma-separated subset to start")
    p.add_argument("--switch", action="append", default=[], metavar="SERVICE:JSON",
                   help="initial switches, e.g. 'fido:{\"latency_ms\":50}' or 'all:{\"outage\":true}'")
    p.add_argument("--flags", metavar="FILE", help="initial flags, Flipper export format (JSON)")
    p.add_argument("--flipper-token", default="", help="require this token (default: no check)")
    p.add_argument("--flipper-token-header", default="Flipper-Cloud-Token")
    p.add_argument("--flipper-poll-interval", type=int, default=1,
                   help="value of the poll-interval response header, seconds")
    p.add_argument("--registry-user", default="cgw-bot")
    p.add_argument("--registry-token", default="cgw-local-token")
    p.add_argument("--registry-id", type=int, default=1, help="schema id of factoid.proto")
    p.add_argument("--registry-incompatible-id", type=int, default=2,
                   help="schema id serving an incompatible Factoid schema (0: none)")
    p.add_argument("--factoid-proto", default=os.path.join(ROOT, "proto/factoids/v1/factoid.proto"))
    p.add_argument("--seed", type=int, default=0, help="seed of the error_rate dice")
    p.add_argument("--pidfile")
    p.add_argument("--access-log", metavar="FILE", help="access log (default: stderr)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with open(args.factoid_proto, encoding="utf-8") as f:
        args.factoid_schema = f.read()
    names = [s for s in args.services.split(",") if s]
    for s in names:
        if s not in DEFAULT_PORTS:
            sys.exit(f"fakes: unknown service {s!r}")
    Handler.access_log = open(args.access_log, "a", encoding="utf-8") if args.access_log \
        else sys.stderr
    services = {s: Service(s, args) for s in names}
    for spec in args.switch:
        target, _, js = spec.partition(":")
        for s in (names if target == "all" else [target]):
            if s not in services:
                sys.exit(f"fakes: --switch names unknown service {s!r}")
            services[s].switches.update(json.loads(js))
    if args.flags and "flipper" in services:
        with open(args.flags, encoding="utf-8") as f:
            services["flipper"].flags = {k: normalize_feature(v or {})
                                         for k, v in json.load(f)["features"].items()}
    servers = []
    for s in names:
        h = type(f"{s.title()}Handler", (Handler,), {"service": services[s]})
        try:
            srv = Server((args.host, getattr(args, f"{s}_port")), h)
        except OSError as e:
            sys.exit(f"fakes: cannot listen for {s} on port {getattr(args, f'{s}_port')}: {e}")
        servers.append(srv)
        threading.Thread(target=srv.serve_forever, name=s, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.pidfile:
        with open(args.pidfile, "w") as f:
            f.write(f"{os.getpid()}\n")
    print("fakes: listening " + " ".join(f"{s}=http://{args.host}:{srv.server_address[1]}"
                                         for s, srv in zip(names, servers)),
          file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    if args.pidfile:
        try:
            os.unlink(args.pidfile)
        except FileNotFoundError:
            pass
    print("fakes: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
