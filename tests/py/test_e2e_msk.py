# tests/py/test_e2e_msk.py: `cgw run` with kafka.msk_cluster_arn, end to end: the worker asks
# the (fake, signature-checking) MSK API for its brokers at start with credentials from the
# ECS container endpoint, then consumes receipts from the local Kafka it was pointed at and
# persists them; nothing secret is printed.
import os

from cgw_worker import Scenario, generate
from test_aws_credentials import ARN, ECS_TOKEN, SECRETS, FakeAws, base_env


def test_cgw_run_gets_brokers_from_the_msk_api_and_consumes(tmp_path, fakes):
    aws = FakeAws(str(tmp_path))
    try:
        env = base_env(AWS_CONTAINER_CREDENTIALS_FULL_URI=f"{aws.url}/v2/credentials/task",
                       AWS_CONTAINER_AUTHORIZATION_TOKEN=ECS_TOKEN)
        env = {k: v for k, v in env.items() if k.startswith("AWS_")}
        kafka = (f'kafka: {{msk_cluster_arn: "{ARN}", security_protocol: plaintext}}\n'
                 f'aws: {{msk_endpoint: "{aws.url}", sts_endpoint: "{aws.url}"}}')
        sc = Scenario(tmp_path, fakes.ports, kafka_section=kafka, env=env)
        truth = generate("receipts", sc.receipt_topic, 300, 7, str(tmp_path / "t.json"))
        sc.start()
        sc.wait_drained("receipt")
        assert sc.outcome_counts("receipt") == dict(truth["outcomes"])
        sc.stop()
        out = sc.output()
        assert "Kafka brokers from the MSK API" in out and 'source=ecs' in out
        assert aws.stats().get("msk:ok") == 1 and aws.stats().get("ecs:ok") == 1
        for s in SECRETS:
            assert s not in out
    finally:
        aws.stop()
