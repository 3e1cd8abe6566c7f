# tests/py/test_e2e_msk_iam.py: `cgw run` consumes receipts through the local Kafka's
# SASL_SSL/OAUTHBEARER listener, which verifies MSK IAM tokens as MSK does (scripts/stack,
# tests/java/MskIamValidatorCallbackHandler.java, tests/py/msk_iam.py), with the tokens the
# worker signs itself from credentials of each source: the environment, web identity through
# the fake STS, and the fake ECS container endpoint (tools/fake_aws.py hands out the keys the
# broker knows). A wrong secret, and credentials that arrive already expired, give a clear
# [ERROR] line and consume nothing; once the credentials are right the worker consumes every
# record (nothing lost). No secret appears in the worker's output.
import time

import pytest

from cgw_worker import Scenario, generate
from test_aws_credentials import ECS_TOKEN, JWT, ROLE, FakeAws, base_env

N = 200


def kafka_yaml(listener, aws=None):
    sts = f', sts_endpoint: "{aws.url}"' if aws else ""
    return (f'kafka:\n  brokers: "{listener.bootstrap}"\n  security_protocol: sasl_ssl\n'
            f'  sasl_mechanism: OAUTHBEARER\n  properties: {{ssl.ca.location: "{listener.ca_path}"}}\n'
            f"aws: {{region: {listener.region}{sts}}}")


def only_aws(env):
    return {k: v for k, v in env.items() if k.startswith("AWS_")}


def assert_no_secret(text, key, *more):
    for s in (key.secret, key.session_token, *more):
        if s:
            assert s not in text, "a secret was printed"


def consume_all(sc, truth):
    sc.start()
    sc.wait_drained("receipt")
    assert sc.outcome_counts("receipt") == dict(truth["outcomes"])
    sc.stop()
    out = sc.output()
    assert "[ERROR]" not in out, [l for l in out.splitlines() if "[ERROR]" in l][:3]
    return out


def issuing_fake(tmp_path, key, *extra):
    return FakeAws(str(tmp_path), "--issue", f"{key.access_key_id}:{key.secret}:{key.session_token}", *extra)


def test_environment_credentials(tmp_path, fakes, msk_iam):
    key = msk_iam.user_key
    sc = Scenario(tmp_path, fakes.ports, kafka_section=kafka_yaml(msk_iam), env=only_aws(base_env(**key.environ())))
    truth = generate("receipts", sc.receipt_topic, N, 21, str(tmp_path / "t.json"))
    out = consume_all(sc, truth)
    assert "source=environment" in out
    assert_no_secret(out, key)


def test_web_identity_credentials(tmp_path, fakes, msk_iam):
    key = msk_iam.role_key
    aws = issuing_fake(tmp_path, key)
    try:
        jwt = tmp_path / "jwt"
        jwt.write_text(JWT)
        env = only_aws(base_env(AWS_WEB_IDENTITY_TOKEN_FILE=str(jwt), AWS_ROLE_ARN=ROLE))
        sc = Scenario(tmp_path, fakes.ports, kafka_section=kafka_yaml(msk_iam, aws), env=env)
        truth = generate("receipts", sc.receipt_topic, N, 22, str(tmp_path / "t.json"))
        out = consume_all(sc, truth)
        assert 'source="web identity"' in out
        assert aws.stats().get("AssumeRoleWithWebIdentity:ok", 0) >= 1
        assert_no_secret(out, key, JWT)
    finally:
        aws.stop()


def test_ecs_credentials(tmp_path, fakes, msk_iam):
    key = msk_iam.role_key
    aws = issuing_fake(tmp_path, key)
    try:
        env = only_aws(base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{aws.url}/v2/credentials/task",
                                AWS_CONTAINER_AUTHORIZATION_TOKEN=ECS_TOKEN))
        sc = Scenario(tmp_path, fakes.ports, kafka_section=kafka_yaml(msk_iam, aws), env=env)
        truth = generate("receipts", sc.receipt_topic, N, 23, str(tmp_path / "t.json"))
        out = consume_all(sc, truth)
        assert "source=ecs" in out and aws.stats().get("ecs:ok", 0) >= 1
        assert_no_secret(out, key, ECS_TOKEN)
    finally:
        aws.stop()


def wait_for_line(sc, text, deadline_s=60):
    end = time.time() + deadline_s
    while time.time() < end:
        lines = sc.log_lines(text)
        if lines:
            return lines
        time.sleep(0.5)
    pytest.fail(f"no line with {text!r} within {deadline_s} s:\n{sc.output()[-3000:]}")


@pytest.fixture
def scenarios():
    """Scenarios whose worker is killed if a test fails while it runs (it would retry forever)."""
    made = []
    yield made
    for sc in made:
        if sc.proc and sc.proc.poll() is None:
            sc.proc.kill()
            sc.proc.wait(30)


def test_wrong_secret_is_a_clear_error_and_loses_nothing(tmp_path, fakes, msk_iam, scenarios):
    key = msk_iam.user_key
    wrong = key.but(secret=key.secret[:-4] + "XXXX")
    sc = Scenario(tmp_path, fakes.ports, kafka_section=kafka_yaml(msk_iam), env=only_aws(base_env(**wrong.environ())))
    scenarios.append(sc)
    truth = generate("receipts", sc.receipt_topic, N, 24, str(tmp_path / "t.json"))
    sc.start()
    lines = wait_for_line(sc, "[ERROR] Kafka authentication failed")
    assert sc.counter("cgw_records_consumed_total", consumer="receipt") == 0
    sc.stop()
    assert_no_secret(sc.output(), wrong)
    assert_no_secret(sc.output(), key)
    assert "consumer=receipt" in lines[0]
    # the right key: every record is still there and is consumed
    sc.env = only_aws(base_env(**key.environ()))
    consume_all(sc, truth)


def test_expired_credentials_are_a_clear_error_and_lose_nothing(tmp_path, fakes, msk_iam, scenarios):
    key = msk_iam.role_key
    aws = issuing_fake(tmp_path, key, "--expires-in", "-60")
    try:
        env = only_aws(base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{aws.url}/v2/credentials/task",
                                AWS_CONTAINER_AUTHORIZATION_TOKEN=ECS_TOKEN))
        sc = Scenario(tmp_path, fakes.ports, kafka_section=kafka_yaml(msk_iam, aws), env=env)
        scenarios.append(sc)
        truth = generate("receipts", sc.receipt_topic, N, 25, str(tmp_path / "t.json"))
        sc.start()
        lines = wait_for_line(sc, "[ERROR] MSK IAM: no token for Kafka authentication")
        assert "credentials from ecs expired" in lines[0]
        assert sc.counter("cgw_records_consumed_total", consumer="receipt") == 0
        # the endpoint hands out valid credentials again: librdkafka retries the token, the
        # worker consumes every record without a restart
        aws.control(expires_in=3600)
        sc.wait_drained("receipt")
        assert sc.outcome_counts("receipt") == dict(truth["outcomes"])
        sc.stop()
        assert_no_secret(sc.output(), key, ECS_TOKEN)
    finally:
        aws.stop()
