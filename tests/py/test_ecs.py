# tests/py/test_ecs.py: the ECS deployment (deploy/ecs), the Prometheus scrape side
# (deploy/prometheus/scrape.yml) and the configuration they load, checked against each other
# and against the worker itself.
#
# Design: what the worker is, is asked of the worker: `cgw check-config` prints the effective
# configuration (topics, groups, listen address, secrets redacted), so the test learns there
# which variables land in secret keys; the IAM actions the worker needs are the `msk-iam:`
# list in src/kafka/kafka.h, the one place the source names them. The deployment files are
# read as JSON and compared with those, never with a copy of themselves. The scrape config is
# checked by promtool, Prometheus's own checker.
import glob
import json
import math
import os
import re
import subprocess

from cgw_worker import ROOT, binary

ECS = os.path.join(ROOT, "deploy", "ecs")
PRODUCTION = os.path.join(ROOT, "config", "production.example.yaml")
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
# The shutdown deadline's default (shutdown_timeout_ms) when the binary has no such key yet.
SHUTDOWN_DEFAULT_MS = 20000
# A batch in flight when the deadline ends still leaves its group and closes: margin for it.
DRAIN_MARGIN_S = 10


def load(name):
    with open(os.path.join(ECS, name)) as f:
        return json.load(f)


def worker_container(td=None):
    td = td or load("task-definition.json")
    return next(c for c in td["containerDefinitions"] if c["name"] == "worker")


def config_variables(path):
    """{name: has_default} of the ${...} references in the file's values (comments left out)."""
    out = {}
    for line in open(path):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        for name, default in VAR.findall(code):
            out[name] = bool(default)
    return out


def secret_value(name):
    return "s3cret-%s-value" % name.lower().replace("_", "-")


def deployment_env():
    """The worker's environment in the task: plain values, and stand-ins for the secrets."""
    c = worker_container()
    env = {e["name"]: e["value"] for e in c["environment"]}
    env.update({s["name"]: secret_value(s["name"]) for s in c["secrets"]})
    return env


def check_config(path, env):
    clean = {k: v for k, v in os.environ.items() if k not in config_variables(PRODUCTION)}
    r = subprocess.run([binary(), "check-config", "-c", path], capture_output=True, text=True,
                       env=dict(clean, **env), cwd=ROOT, timeout=60)
    return r


def effective(path, env):
    r = check_config(path, env)
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        k, _, v = line.partition(": ")
        out[k] = v.strip().strip('"')
    return out


def test_deployment_files_parse_and_the_scrape_config_passes_promtool():
    for path in glob.glob(os.path.join(ECS, "*.json")):
        with open(path) as f:
            json.load(f)
    assert len(glob.glob(os.path.join(ECS, "*.json"))) == 4
    r = subprocess.run(["promtool", "check", "config", os.path.join(ROOT, "deploy", "prometheus", "scrape.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_example_config_passes_check_config_with_the_deployments_variables():
    configs = sorted(glob.glob(os.path.join(ROOT, "config", "*.yaml")))
    assert PRODUCTION in configs
    env = deployment_env()
    for path in configs:
        r = check_config(path, env)
        assert r.returncode == 0, "%s: %s" % (os.path.basename(path), r.stderr)
    # And without them the production file is refused, naming what is missing.
    r = check_config(PRODUCTION, {})
    assert r.returncode != 0 and "KAFKA_BROKERS" in r.stderr, r.stderr


def test_task_definition_sets_exactly_the_configs_variables_and_secrets_only_as_secrets():
    c = worker_container()
    env_names = [e["name"] for e in c["environment"]]
    secret_names = [s["name"] for s in c["secrets"]]
    assert len(set(env_names)) == len(env_names) and len(set(secret_names)) == len(secret_names)
    assert not set(env_names) & set(secret_names)
    assert set(env_names) | set(secret_names) == set(config_variables(PRODUCTION))
    # Which variables are secrets is the worker's word: check-config redacts secret keys.
    env = deployment_env()
    printed = check_config(PRODUCTION, env).stdout
    for name in secret_names:
        assert secret_value(name) not in printed, "%s lands in a key the worker does not treat as secret" % name
    for e in c["environment"]:
        shown = e["value"] in printed or any(part in printed for part in e["value"].split(","))
        assert shown, "%s is redacted by the worker: it must come from secrets, not environment" % e["name"]


def test_task_role_policy_grants_exactly_the_actions_the_worker_uses():
    source = open(os.path.join(ROOT, "src", "kafka", "kafka.h")).read()
    wanted = set(re.findall(r"msk-iam:\s+(\S+)\s+(cluster|topic|group|dlq-topic)\b", source))
    assert len(wanted) >= 8, wanted
    cfg = effective(PRODUCTION, deployment_env())
    inputs = {cfg["consumers.%s.topic" % c] for c in ("receipt", "factoid")}
    groups = {cfg["consumers.%s.group" % c] for c in ("receipt", "factoid")}
    dlqs = {cfg[k] for k in cfg if k.endswith(".dlq_topic") and cfg[k] not in ("~", "")}
    policy = load("task-role-policy.json")
    granted, clusters = set(), set()
    for st in policy["Statement"]:
        assert st["Effect"] == "Allow" and "Condition" not in st and "NotAction" not in st
        for res in st["Resource"]:
            assert "*" not in res, res
            m = re.fullmatch(r"arn:aws:kafka:[a-z0-9-]+:\d{12}:(cluster|topic|group)/([^/]+/[^/]+)(?:/(.+))?", res)
            assert m, res
            kind, cluster, name = m.groups()
            clusters.add(cluster)
            if kind == "topic":
                kind = "topic" if name in inputs else "dlq-topic"
                if kind == "dlq-topic" and dlqs:
                    assert name in dlqs, "%s is neither an input topic nor a dead-letter topic" % name
            elif kind == "group":
                assert name in groups, "group %s is not one of the config's %s" % (name, groups)
            for action in st["Action"]:
                granted.add((action, kind))
    assert len(clusters) == 1, clusters
    assert granted == wanted, "granted but unused: %s; used but not granted: %s" % (
        sorted(granted - wanted), sorted(wanted - granted))


def test_execution_role_reads_exactly_the_tasks_secrets():
    td = load("task-definition.json")
    refs = set()
    for c in td["containerDefinitions"]:
        refs |= {s["valueFrom"] for s in c.get("secrets", [])}
        refs |= {s["valueFrom"] for s in c.get("logConfiguration", {}).get("secretOptions", [])}
    readable = set()
    for st in load("execution-role-policy.json")["Statement"]:
        assert st["Effect"] == "Allow"
        for action in st["Action"]:
            if action.startswith(("secretsmanager:", "ssm:", "kms:")):
                assert action in ("secretsmanager:GetSecretValue", "ssm:GetParameters"), action
                prefix = "arn:aws:secretsmanager:" if action.startswith("secretsmanager") else "arn:aws:ssm:"
                assert all(r.startswith(prefix) for r in st["Resource"]), st
                readable |= set(st["Resource"])
            else:
                assert not any("secret" in r or ":parameter/" in r for r in st["Resource"]), st
    assert readable == refs


def test_task_definition_runs_the_image_as_built_and_ships_logs_to_loki():
    td = load("task-definition.json")
    c = worker_container(td)
    cfg = effective(PRODUCTION, deployment_env())
    settings = dict(l.split("=", 1) for l in subprocess.run(
        [os.path.join(ROOT, "scripts", "image"), "config"], capture_output=True, text=True, check=True
    ).stdout.splitlines() if not l.startswith(("IMAGE_ENV=", "IMAGE_LABEL=")))
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc"
    assert c["user"] == settings["IMAGE_USER"] and c["readonlyRootFilesystem"] is True
    port = int(cfg["metrics.listen"].rsplit(":", 1)[1])
    assert cfg["metrics.listen"].startswith("0.0.0.0:"), "Prometheus scrapes the task's address"
    assert settings["IMAGE_PORT"] == "%d/tcp" % port
    assert [p["containerPort"] for p in c["portMappings"]] == [port]
    hc = " ".join(c["healthCheck"]["command"])
    assert c["healthCheck"]["command"][0] == "CMD" and "http://127.0.0.1:%d/healthz" % port in hc
    # stopTimeout: ECS sends SIGKILL after it; the worker must have ended by itself first.
    shutdown_s = int(cfg.get("shutdown_timeout_ms", SHUTDOWN_DEFAULT_MS)) / 1000
    assert shutdown_s + DRAIN_MARGIN_S <= c["stopTimeout"] <= 120
    # CPU and memory: the containers fit in the task, and the task is a Fargate size.
    containers = td["containerDefinitions"]
    assert sum(x["cpu"] for x in containers) <= int(td["cpu"])
    assert sum(x["memory"] for x in containers) <= int(td["memory"])
    fargate = {256: (512, 2048), 512: (1024, 4096), 1024: (2048, 8192), 2048: (4096, 16384)}
    lo, hi = fargate[int(td["cpu"])]
    assert lo <= int(td["memory"]) <= hi
    # Logs: FireLens with Fluent Bit's loki output, labelled as the worker's own lines are.
    router = next(x for x in containers if "firelensConfiguration" in x)
    assert router["firelensConfiguration"]["type"] == "fluentbit" and router["essential"]
    log = c["logConfiguration"]
    assert log["logDriver"] == "awsfirelens" and log["options"]["Name"] == "loki"
    labels = dict(kv.strip().split("=", 1) for kv in log["options"]["labels"].split(","))
    assert labels["service_name"] == cfg["service_name"] == "consumer-graph-worker"
    assert cfg["log.format"] == "json"
    assert {"containerName": router["name"], "condition": "START"} in c["dependsOn"]


def test_service_runs_three_tasks_and_never_fewer_than_two():
    svc = load("service.json")
    td = load("task-definition.json")
    n = svc["desiredCount"]
    dc = svc["deploymentConfiguration"]
    # ECS rounds the minimum up and the maximum down.
    assert n == 3
    assert math.ceil(n * dc["minimumHealthyPercent"] / 100) == 2
    assert math.floor(n * dc["maximumPercent"] / 100) >= n + 1
    assert svc["launchType"] == "FARGATE" and svc["taskDefinition"] == td["family"]
    reg = svc["serviceRegistries"][0]
    c = worker_container(td)
    assert reg["containerName"] == c["name"] and reg["containerPort"] == c["portMappings"][0]["containerPort"]
    assert svc["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"


def test_log_only_is_switched_by_the_environment():
    # The roll-out (README, "Deploying") turns log_only on and off through the task definition.
    env = deployment_env()
    for value in ("true", "false"):
        assert effective(PRODUCTION, dict(env, CGW_LOG_ONLY=value))["log_only"] == value
