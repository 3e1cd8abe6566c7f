# tests/py/test_aws_credentials.py: the worker's AWS credential chain and MSK API, end to end
# against the fake AWS endpoints (tools/fake_aws.py, which verifies every signature with
# botocore) and the local Kafka.
#
# Each credential source (environment, web identity through STS, ECS relative URI, ECS full
# URI with a token or a token file, and aws.role_arn on top) is resolved by the real cgw
# binary: `cgw offsets show` with kafka.msk_cluster_arn gets its brokers from the fake MSK
# GetBootstrapBrokers (signed with those credentials; the fake answers with the local Kafka)
# and then talks to Kafka. Renewal before expiry runs the same code through
# tests/tools/aws_sign with a clock that jumps. No secret may appear in anything printed.
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("CGW_BUILD", "build/asan"))
CGW = os.path.join(BUILD, "cgw")
SIGN = os.path.join(BUILD, "tests", "tools", "aws_sign")
BOOTSTRAP = "127.0.0.1:%s" % os.environ.get("KAFKA_PORT", "9092")
ARN = "arn:aws:kafka:eu-west-1:123456789012:cluster/receipts/0b1f6e2c-3d4e-4f5a-9b6c-7d8e9f0a1b2c-5"
ROLE = "arn:aws:iam::123456789012:role/consumer-graph-worker"
AKID, SECRET, TOKEN = "AKIAFAKEENVIRONMENT1", "env-secret-0123456789abcdefghijklmnopqrstu", "env-session-token-xyz"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.sig-web-identity"
ECS_TOKEN = "ecs-authorization-token-4f7c2a"
# Everything secret the fake or the environment hands out: none may be printed.
SECRETS = [SECRET, TOKEN, JWT, ECS_TOKEN, "fake-secret-", "FQoGZXIvYXdzE"]
AWS_VARS = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "CGW_TEST_ECS_CREDENTIALS_HOST", "AWS_REGION",
            "AWS_DEFAULT_REGION"]


class FakeAws:
    def __init__(self, tmp, *extra):
        self.port = free_ports(1)[0]
        pidfile = os.path.join(tmp, "fake_aws.pid")
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "fake_aws.py"), "--port",
                                      str(self.port), "--pidfile", pidfile, "--brokers", BOOTSTRAP,
                                      "--key", f"{AKID}:{SECRET}:{TOKEN}", "--web-identity-token", JWT,
                                      "--ecs-token", ECS_TOKEN, *extra], stderr=subprocess.PIPE)
        deadline = time.time() + 15
        while not os.path.exists(pidfile):
            assert self.proc.poll() is None and time.time() < deadline, self.proc.stderr.read().decode()
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self):
        with urllib.request.urlopen(self.url + "/_stats", timeout=5) as r:
            return json.load(r)

    def control(self, **kw):
        req = urllib.request.Request(self.url + "/_control", data=json.dumps(kw).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def fake(tmp_path):
    f = FakeAws(str(tmp_path))
    yield f
    f.stop()


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in AWS_VARS}
    env.update(extra)
    return env


def write_config(tmp, fake, extra_aws=""):
    path = os.path.join(tmp, "cgw.yaml")
    with open(path, "w") as f:
        f.write(f"""kafka:
  msk_cluster_arn: "{ARN}"
  security_protocol: plaintext
aws:
  msk_endpoint: "{fake.url}"
  sts_endpoint: "{fake.url}"
{extra_aws}
neo4j: {{uri: "bolt://127.0.0.1:7687"}}
enrichment: {{fido: {{base_url: "http://127.0.0.1:1"}}, retailer: {{base_url: "http://127.0.0.1:1"}}}}
flags: {{file: "{tmp}/flags.json"}}
""")
    return path


def run_cgw(args, env):
    r = subprocess.run([CGW, *args], env=env, capture_output=True, text=True, timeout=120)
    for s in SECRETS:
        assert s not in r.stdout and s not in r.stderr, f"a secret was printed: {s[:12]}..."
    assert "AddressSanitizer" not in r.stderr and "runtime error:" not in r.stderr, r.stderr
    return r


def offsets_show(tmp, fake, env, extra_aws=""):
    cfg = write_config(tmp, fake, extra_aws)
    return run_cgw(["offsets", "show", "-c", cfg], env)


def assert_brokers_from_msk(r, fake, source):
    assert r.returncode == 0, r.stdout + r.stderr
    # the offset tools' service log lines go to stderr: stdout is their answer
    assert "Kafka brokers from the MSK API" in r.stderr and "Kafka brokers" not in r.stdout
    assert f"source={source}" in r.stderr, r.stderr
    assert fake.stats().get("msk:ok") == 1


def test_environment_credentials(tmp_path, fake):
    env = base_env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    assert_brokers_from_msk(offsets_show(str(tmp_path), fake, env), fake, "environment")
    # --json stays parseable with the MSK lookup's log lines
    r = run_cgw(["offsets", "show", "-c", write_config(str(tmp_path), fake), "--json"], env)
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), (list, dict)), r.stdout


def test_wrong_secret_is_refused_without_printing_it(tmp_path, fake):
    env = base_env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET + "x", AWS_SESSION_TOKEN=TOKEN)
    r = offsets_show(str(tmp_path), fake, env)
    assert r.returncode != 0
    assert "GetBootstrapBrokers: HTTP 403" in r.stderr and "signature does not match" in r.stderr, r.stderr
    assert fake.stats().get("msk:refused") == 1


def test_web_identity_through_sts(tmp_path, fake):
    jwt = tmp_path / "token"
    jwt.write_text(JWT + "\n")
    env = base_env(AWS_WEB_IDENTITY_TOKEN_FILE=str(jwt), AWS_ROLE_ARN=ROLE)
    assert_brokers_from_msk(offsets_show(str(tmp_path), fake, env), fake, '"web identity"')
    assert fake.stats().get("AssumeRoleWithWebIdentity:ok") == 1
    jwt.write_text("a-rotated-but-wrong-token")
    r = offsets_show(str(tmp_path), fake, env)
    assert r.returncode != 0
    assert "STS AssumeRoleWithWebIdentity: HTTP 400: STS error InvalidIdentityToken" in r.stderr, r.stderr
    assert "a-rotated-but-wrong-token" not in r.stderr + r.stdout


def test_ecs_relative_uri(tmp_path, fake):
    # the ECS host 169.254.170.2 is replaced by the fake for the test; the path is the real one
    env = base_env(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/v2/credentials/6d1b7a0e-task",
                   CGW_TEST_ECS_CREDENTIALS_HOST=f"127.0.0.1:{fake.port}")
    r = offsets_show(str(tmp_path), fake, env)
    # the relative URI carries no Authorization header; this fake demands one, so it refuses
    assert r.returncode != 0 and "ECS credentials: http://127.0.0.1:%d answered HTTP 401" % fake.port in r.stderr


def test_ecs_relative_uri_without_token(tmp_path):
    f = FakeAws(str(tmp_path), "--ecs-token", "")
    try:
        env = base_env(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI="/v2/credentials/6d1b7a0e-task",
                       CGW_TEST_ECS_CREDENTIALS_HOST=f"127.0.0.1:{f.port}")
        assert_brokers_from_msk(offsets_show(str(tmp_path), f, env), f, "ecs")
        assert f.stats().get("ecs:ok") == 1
    finally:
        f.stop()


def test_ecs_full_uri_with_token_and_token_file(tmp_path, fake):
    uri = f"{fake.url}/v2/credentials/full"
    env = base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=uri, AWS_CONTAINER_AUTHORIZATION_TOKEN=ECS_TOKEN)
    assert_brokers_from_msk(offsets_show(str(tmp_path), fake, env), fake, "ecs")
    fake.control(reset_stats=True)
    tok = tmp_path / "ecs-token"
    tok.write_text(ECS_TOKEN)
    env = base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=uri, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(tok),
                   AWS_CONTAINER_AUTHORIZATION_TOKEN="the-file-wins")
    assert_brokers_from_msk(offsets_show(str(tmp_path), fake, env), fake, "ecs")
    env = base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=uri, AWS_CONTAINER_AUTHORIZATION_TOKEN="wrong-token-123")
    r = offsets_show(str(tmp_path), fake, env)
    assert r.returncode != 0 and "answered HTTP 401" in r.stderr and "wrong-token-123" not in r.stderr
    env = base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI="http://10.1.2.3/creds",
                   AWS_CONTAINER_AUTHORIZATION_TOKEN=ECS_TOKEN)
    r = offsets_show(str(tmp_path), fake, env)
    assert r.returncode != 0 and "must be https, or http to a loopback" in r.stderr


def test_role_arn_assumed_with_the_chain_credentials(tmp_path, fake):
    env = base_env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    r = offsets_show(str(tmp_path), fake, env, f'  role_arn: "{ROLE}"\n  role_session_name: cgw-test')
    assert_brokers_from_msk(r, fake, '"assume role"')
    assert fake.stats().get("AssumeRole:ok") == 1


class Signer:
    """tests/tools/aws_sign credentials: one aws handle; call(step) advances its clock."""

    def __init__(self, fake, role="-", **env):
        self.proc = subprocess.Popen([SIGN, "credentials", "eu-west-1", fake.url, role], env=base_env(**env),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def call(self, step=0):
        self.proc.stdin.write(f"{step}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        for s in SECRETS:
            assert s not in line
        if line.startswith("error="):
            return {"error": line[6:]}
        return dict(kv.split("=", 1) for kv in line.split(" "))

    def close(self):
        self.proc.stdin.close()
        err = self.proc.stderr.read()
        self.proc.wait(30)
        assert "AddressSanitizer" not in err and "runtime error:" not in err, err
        for s in SECRETS:
            assert s not in err


def ecs_env(fake):
    return dict(AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{fake.url}/v2/credentials/x",
                AWS_CONTAINER_AUTHORIZATION_TOKEN=ECS_TOKEN)


def test_temporary_credentials_are_cached_then_renewed_before_expiry(fake):
    s = Signer(fake, **ecs_env(fake))
    first = s.call()
    # valid for an hour: the next call uses the cache
    assert s.call(10)["access_key_id"] == first["access_key_id"]
    assert fake.stats().get("ecs:ok") == 1
    # 3000 s later only 600 s are left, inside the 900 s renewal margin: fetched again
    renewed = s.call(3000)
    assert renewed["source"] == "ecs" and renewed["access_key_id"] != first["access_key_id"]
    assert fake.stats().get("ecs:ok") == 2
    s.close()


def test_failed_renewal_keeps_valid_credentials_then_fails_when_expired(fake):
    fake.control(expires_in=1200)
    s = Signer(fake, **ecs_env(fake))
    first = s.call()
    fake.control(fail="ecs")
    # +400 s: 800 s left, renewal due, it fails: the current credentials stay in use
    kept = s.call(400)
    assert kept["access_key_id"] == first["access_key_id"]
    assert fake.stats().get("ecs:500") == 1
    # +900 s more: expired, and renewal still fails: an error naming the source, no secret
    err = s.call(900)
    assert "ECS credentials" in err["error"] and "HTTP 500" in err["error"]
    # the endpoint is back (its credentials outlive the signer's jumped clock): renewed
    fake.control(fail=None, expires_in=3600)
    again = s.call(0)
    assert again["access_key_id"] not in (first["access_key_id"],)
    s.close()


def test_assume_role_renews_on_top_of_the_chain(tmp_path):
    # the signer's clock jumps ahead, so its signatures are dated in the future: allow that
    fake = FakeAws(str(tmp_path), "--max-skew", "7200")
    s = Signer(fake, role=ROLE, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    first = s.call()
    assert first["source"] == "assume_role"
    assert s.call(60)["access_key_id"] == first["access_key_id"]
    second = s.call(3000)
    assert second["source"] == "assume_role" and second["access_key_id"] != first["access_key_id"]
    assert fake.stats().get("AssumeRole:ok") == 2
    s.close()
    fake.stop()


def test_assume_role_refused_when_the_signature_is_too_old(fake):
    # AWS refuses signatures more than 5 minutes off; a renewal then keeps the valid ones
    s = Signer(fake, role=ROLE, AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    first = s.call()
    assert s.call(3000)["access_key_id"] == first["access_key_id"]
    assert fake.stats().get("AssumeRole:refused") == 1
    err = s.call(700)
    assert "STS AssumeRole: HTTP 403: STS error SignatureDoesNotMatch: request time too skewed" in err["error"]
    s.close()


def iam_config(tmp, fake, brokers=BOOTSTRAP):
    path = os.path.join(tmp, "iam.yaml")
    with open(path, "w") as f:
        f.write(f"""kafka:
  brokers: "{brokers}"
  security_protocol: sasl_ssl
  sasl_mechanism: OAUTHBEARER
aws:
  region: eu-west-1
  sts_endpoint: "{fake.url}"
neo4j: {{uri: "bolt://127.0.0.1:7687"}}
enrichment: {{fido: {{base_url: "http://127.0.0.1:1"}}, retailer: {{base_url: "http://127.0.0.1:1"}}}}
flags: {{file: "{tmp}/flags.json"}}
""")
    return path


def test_token_callback_failure_is_one_clear_error_without_secrets(tmp_path, fake):
    # OAUTHBEARER on an offset tool: librdkafka asks the worker's callback for a token; the
    # web identity token is refused by STS, so the callback reports a failure to librdkafka
    # and logs [ERROR] with the reason, and the tool fails instead of hanging.
    jwt = tmp_path / "token"
    jwt.write_text("not-the-token-sts-expects")
    env = base_env(AWS_WEB_IDENTITY_TOKEN_FILE=str(jwt), AWS_ROLE_ARN=ROLE)
    r = run_cgw(["offsets", "show", "-c", iam_config(str(tmp_path), fake), "--group", "g",
                 "--topic", "ProcessedReceiptEvent", "--timeout-ms", "3000"], env)
    assert r.returncode != 0
    errors = [l for l in r.stderr.splitlines() if "[ERROR] MSK IAM: no token for Kafka authentication" in l]
    assert errors, r.stdout + r.stderr
    assert "STS AssumeRoleWithWebIdentity: HTTP 400: STS error InvalidIdentityToken" in errors[0]
    assert "not-the-token-sts-expects" not in r.stdout + r.stderr
    assert fake.stats().get("AssumeRoleWithWebIdentity:refused", 0) >= 1


def test_cgw_run_resolves_brokers_at_start_and_stops_when_the_msk_api_refuses(tmp_path, fake):
    fake.control(fail="msk")
    env = base_env(AWS_ACCESS_KEY_ID=AKID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN)
    cfg = write_config(str(tmp_path), fake)
    r = run_cgw(["run", "-c", cfg], env)
    assert r.returncode == 1
    assert "[ERROR] Cannot start" in r.stdout and "GetBootstrapBrokers: HTTP 403" in r.stdout, r.stdout
    assert fake.stats().get("msk:refused") == 1


def test_check_config_needs_no_network(tmp_path, fake):
    fake.stop()     # nothing listens: check-config must not call AWS
    env = base_env()
    r = run_cgw(["check-config", "-c", write_config(str(tmp_path), fake)], env)
    assert r.returncode == 0, r.stderr
    assert "aws.region: \"eu-west-1\"" in r.stdout and "kafka.msk_cluster_arn: \"%s\"" % ARN in r.stdout
    fake.proc = subprocess.Popen(["true"])   # the fixture's stop() needs a process


def test_already_expired_credentials_are_an_error(fake):
    fake.control(expires_in=-60)
    s = Signer(fake, **ecs_env(fake))
    err = s.call()
    assert "credentials from ecs expired" in err["error"], err
    fake.control(expires_in=3600)
    assert s.call()["source"] == "ecs"
    s.close()
