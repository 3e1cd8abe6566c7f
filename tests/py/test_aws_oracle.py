# tests/py/test_aws_oracle.py: what src/aws sends, compared byte for byte with AWS's own code.
#
# The C side is tests/tools/aws_sign (the worker's request builders with fixed credentials
# and a fixed clock). The oracles, with their clock frozen at the same instant:
#   - the MSK IAM token: aws-msk-iam-sasl-signer-python (AWS's signer, PyPI), whole token;
#   - GetBootstrapBrokers, STS AssumeRole: botocore clients (the request each would send,
#     captured at "before-send"), compared on method, URL, body, X-Amz-* headers and the
#     Authorization header; and botocore's SigV4Auth on the request the C side prints;
#   - STS AssumeRoleWithWebIdentity: unsigned in botocore too, so its request shape.
import datetime
import os
import subprocess

import botocore.auth
import botocore.credentials
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest

from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIGN = os.path.join(ROOT, os.environ.get("CGW_BUILD", "build/asan"), "tests", "tools", "aws_sign")

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CLUSTER = "arn:aws:kafka:eu-west-1:123456789012:cluster/receipts/0b1f6e2c-3d4e-4f5a-9b6c-7d8e9f0a1b2c-5"
ROLE = "arn:aws:iam::123456789012:role/consumer-graph-worker"
WHEN = [datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        datetime.datetime(2026, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)]
TOKENS = [None, "FwoGZXIvYXdzEBQaDOb+/token==", "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ"]


class Stop(Exception):
    pass


@pytest.fixture
def freeze(monkeypatch):
    def at(when):
        naive = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: naive)
        return int(when.timestamp())
    return at


def sign(*args):
    return subprocess.run([SIGN, *map(str, args)], check=True, capture_output=True, text=True).stdout


def parse_request(text):
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    method, url = lines[0].split(" ", 1)
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return method, url, headers, body


def botocore_request(service, region, op, token, **params):
    """The request a botocore client sends for op, signed with the frozen clock."""
    seen = {}

    def capture(request, **_):
        seen["r"] = request
        raise Stop()

    client = botocore.session.Session().create_client(
        service, region_name=region, aws_access_key_id=AKID, aws_secret_access_key=SECRET,
        aws_session_token=token)
    client.meta.events.register("before-send", capture)
    with pytest.raises(Stop):
        getattr(client, op)(**params)
    r = seen["r"]
    body = r.body.decode() if isinstance(r.body, bytes) else (r.body or "")
    return r.method, r.url, {k: (v.decode() if isinstance(v, bytes) else v) for k, v in r.headers.items()}, body


def sigv4auth(service, region, token, method, url, headers, body):
    """botocore's SigV4Auth on the request the C side prints (its own headers re-added)."""
    plain = {k: v for k, v in headers.items()
             if k.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")}
    req = AWSRequest(method=method, url=url, headers=plain, data=body.encode() if body else None)
    creds = botocore.credentials.Credentials(AKID, SECRET, token)
    botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
    return req.headers["Authorization"]


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2"])
def test_msk_token_is_byte_identical_to_aws_signer(freeze, when, token, region):
    epoch = freeze(when)

    class Fixed(botocore.credentials.CredentialProvider):
        def load(self):
            return botocore.credentials.Credentials(AKID, SECRET, token)

    want, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(region, Fixed())
    ua = MSKAuthTokenProvider.__get_user_agent__()
    got = sign("token", region, epoch, ua, AKID, SECRET, token or "-").strip()
    assert got == want
    assert expiry_ms == (epoch + 900) * 1000


@pytest.mark.parametrize("token", TOKENS)
def test_get_bootstrap_brokers_matches_botocore(freeze, token):
    epoch = freeze(WHEN[0])
    want = botocore_request("kafka", "eu-west-1", "get_bootstrap_brokers", token, ClusterArn=CLUSTER)
    got = parse_request(sign("bootstrap", "eu-west-1", epoch, "https://kafka.eu-west-1.amazonaws.com",
                             CLUSTER, AKID, SECRET, token or "-"))
    assert got[0] == want[0] and got[1] == want[1]
    assert got[2]["Authorization"] == want[2]["Authorization"]
    assert got[2]["X-Amz-Date"] == want[2]["X-Amz-Date"]
    assert got[2].get("X-Amz-Security-Token") == want[2].get("X-Amz-Security-Token")
    assert got[2]["Authorization"] == sigv4auth("kafka", "eu-west-1", token, *got)


@pytest.mark.parametrize("token", TOKENS)
def test_sts_assume_role_matches_botocore(freeze, token):
    epoch = freeze(WHEN[1])
    want = botocore_request("sts", "eu-west-1", "assume_role", token, RoleArn=ROLE,
                            RoleSessionName="consumer-graph-worker")
    got = parse_request(sign("assume-role", "eu-west-1", epoch, "https://sts.eu-west-1.amazonaws.com",
                             ROLE, "consumer-graph-worker", AKID, SECRET, token or "-"))
    assert (got[0], got[1], got[3]) == (want[0], want[1], want[3])
    assert got[2]["Content-Type"] == want[2]["Content-Type"]
    assert got[2]["Authorization"] == want[2]["Authorization"]
    assert got[2]["Authorization"] == sigv4auth("sts", "eu-west-1", token, *got)


def test_sts_assume_role_with_web_identity_matches_botocore_shape():
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2ln+/="
    want = botocore_request("sts", "eu-west-1", "assume_role_with_web_identity", None, RoleArn=ROLE,
                            RoleSessionName="consumer-graph-worker", WebIdentityToken=jwt)
    got = parse_request(sign("web-identity", "https://sts.eu-west-1.amazonaws.com", ROLE,
                             "consumer-graph-worker", jwt))
    assert (got[0], got[1], got[3]) == (want[0], want[1], want[3])
    assert "Authorization" not in want[2] and "Authorization" not in got[2]
    assert got[2]["Content-Type"] == want[2]["Content-Type"]
