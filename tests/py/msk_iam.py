# tests/py/msk_iam.py: the local Kafka's MSK-style IAM listener, as the tests see it.
#
# What: where the SASL_SSL/OAUTHBEARER listener of scripts/stack is (KAFKA_SASL_PORT, the CA
# file, the region it accepts, the broker log its validator writes to), the access keys it knows
# (tests/java/msk-iam-credentials, parsed here so tests never copy a secret), and MSK IAM tokens
# made by AWS's own signer (aws-msk-iam-sasl-signer-python, on botocore's SigV4QueryAuth).
#
# Why: the listener must be shown to be an honest MSK stand-in independently of the worker, and
# the worker's end-to-end tests need the same facts; one module serves both (the fixtures in
# conftest.py hand out a Listener).
#
# How: `token()` calls the official signer with botocore credentials (EnvProvider over a dict,
# like the environment a worker gets); a fixed signing time patches botocore's clock, and a
# token for another action or host patches the signer's own constants, so even refused tokens
# are AWS-made, validly signed, and wrong in exactly one respect. `config()` is a confluent-kafka
# configuration whose oauth_cb hands librdkafka a token of a given function.
import datetime
import os
import time
from dataclasses import dataclass, replace
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CREDENTIALS_FILE = os.path.join(ROOT, "tests", "java", "msk-iam-credentials")


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret: str
    session_token: str = None
    principal: str = None

    def environ(self):
        """The AWS_* environment variables of this key, as a worker would get them."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env

    def but(self, **changes):
        return replace(self, **changes)


def read_keys(path=CREDENTIALS_FILE):
    """{access key id: Key} of the broker's credentials file."""
    keys = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            opts = dict(x.split("=", 1) for x in fields[2:])
            keys[fields[0]] = Key(fields[0], fields[1], opts.get("session_token"),
                                  opts.get("principal", fields[0]))
    return keys


def sign(key, region, at=None, action=None, endpoint=None):
    """(token, expiry ms) from the official signer; at: a naive UTC datetime to sign at."""
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider as signer
    from botocore.credentials import EnvProvider
    patches = []
    if at is not None:
        patches.append(mock.patch("botocore.auth.get_current_datetime", lambda *a, **k: at))
    if action is not None:
        patches.append(mock.patch.object(signer, "ACTION_NAME", action))
    if endpoint is not None:
        patches.append(mock.patch.object(signer, "ENDPOINT_URL_TEMPLATE", endpoint))
    for p in patches:
        p.start()
    try:
        return signer.generate_auth_token_from_credentials_provider(region, EnvProvider(environ=key.environ()))
    finally:
        for p in reversed(patches):
            p.stop()


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class Listener:
    """The IAM listener of the local Kafka (scripts/stack)."""

    def __init__(self):
        var = os.environ.get("CGW_VAR") or os.path.join(ROOT, "var")
        self.port = int(os.environ.get("KAFKA_SASL_PORT", "9098"))
        self.bootstrap = "127.0.0.1:%d" % self.port
        self.region = os.environ.get("KAFKA_IAM_REGION", "eu-central-1")
        self.ca_path = os.path.join(var, "kafka", "tls", "ca.pem")
        self.broker_log = os.path.join(var, "kafka", "kafka.log")
        keys = list(read_keys().values())
        self.keys = {k.access_key_id: k for k in keys}
        # A long-term IAM user key, and temporary credentials (with a session token) of a role.
        self.user_key = next(k for k in keys if not k.session_token)
        self.role_key = next(k for k in keys if k.session_token)

    def token(self, key, **kw):
        """A token of the official signer for this listener's region (sign()'s options)."""
        return sign(key, kw.pop("region", self.region), **kw)[0]

    def config(self, token_fn, **extra):
        """confluent-kafka settings for this listener; token_fn() makes each token. librdkafka is
        told the token lives 15 minutes whatever it says, so the broker alone judges expiry."""
        conf = {"bootstrap.servers": self.bootstrap, "security.protocol": "SASL_SSL",
                "sasl.mechanisms": "OAUTHBEARER", "ssl.ca.location": self.ca_path,
                "oauth_cb": lambda _cfg: (token_fn(), time.time() + 900)}
        conf.update(extra)
        return conf

    def log_mark(self):
        try:
            return os.path.getsize(self.broker_log)
        except OSError:
            return 0

    def log_since(self, mark):
        with open(self.broker_log, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")
