# tests/py/test_config_parity.py: `cgw check-config` and `cgw run` validate the same way, and no
# secret is printed (issue 10, items 5 and 6).
#
# The parity table feeds both commands the same bad files and expects the same verdict (exit
# status 2) and the same message, naming the key, from both; `cgw run` must refuse before it
# connects to anything: every server address of the file points at a socket this test listens
# on, and none of them may have seen a connection when the command has exited. The files are
# JSON, which YAML reads as flow style, so each case is a change to one Python dict.
#
# The secrets tests: check-config's dump of URLs with userinfo, and a worker against the real
# stack whose enrichment service is down, with a password in its base URL: the error line, the
# status page and `cgw status` show "<redacted>", never the password.
import copy
import json
import os
import re
import socket
import subprocess

import pytest

from cgw_worker import Scenario, binary, generate

SECRET = "hunter2"


class Listeners:
    """One listening socket per server of the file: a connection to any of them is a failure."""

    def __init__(self, names):
        self.socks = {}
        for n in names:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(16)
            s.setblocking(False)
            self.socks[n] = s
        self.port = {n: s.getsockname()[1] for n, s in self.socks.items()}

    def connected(self):
        """Names of the servers something connected to (pending connections are accepted)."""
        hit = []
        for n, s in self.socks.items():
            try:
                c, _ = s.accept()
                c.close()
                hit.append(n)
            except BlockingIOError:
                pass
        return hit

    def close(self):
        for s in self.socks.values():
            s.close()


@pytest.fixture(scope="module")
def servers():
    ls = Listeners(["kafka", "neo4j", "valkey", "fido", "retailer", "registry", "flipper"])
    yield ls
    ls.close()


def base_config(p, tmp):
    return {
        "log": {"format": "logfmt"},
        "kafka": {"brokers": "127.0.0.1:%d" % p["kafka"]},
        "neo4j": {"uri": "bolt://127.0.0.1:%d" % p["neo4j"], "password": "pw"},
        "valkey": {"host": "127.0.0.1", "port": p["valkey"]},
        "enrichment": {"fido": {"base_url": "http://127.0.0.1:%d" % p["fido"]},
                       "retailer": {"base_url": "http://127.0.0.1:%d" % p["retailer"]}},
        "schema_registry": {"url": "http://127.0.0.1:%d" % p["registry"]},
        "flags": {"source": "file", "file": os.path.join(str(tmp), "flags.json")},
        "metrics": {"listen": "127.0.0.1:0"},
    }


def put(cfg, path, value):
    """Sets (or deletes) the key at a dotted path; kafka.properties names keep their dots."""
    prefix = "kafka.properties."
    keys = ["kafka", "properties", path[len(prefix):]] if path.startswith(prefix) else path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value


DELETE = object()
UNSET = "${CGW_PARITY_UNSET:-${CGW_PARITY_UNSET2}}"

# (case id, key changed, value (may use {port names}), key the message must name)
CASES = [
    ("userinfo in neo4j.uri", "neo4j.uri", "bolt://neo4j:%s@127.0.0.1:{neo4j}" % SECRET, "neo4j.uri"),
    ("userinfo in the registry url", "schema_registry.url", "http://bot:%s@127.0.0.1:{registry}" % SECRET,
     "schema_registry.url"),
    ("CR/LF in a token", "flags", {"source": "http", "http_url": "http://127.0.0.1:{flipper}",
                                   "http_token": SECRET + "\r\nX-Evil: 1"}, "flags.http_token"),
    ("CR/LF in a base URL", "enrichment.fido.base_url", "http://127.0.0.1:{fido}/\r\nHost: evil",
     "enrichment.fido.base_url"),
    ("LF in a header name", "flags.http_token_header", "X-Token\nX-Evil", "flags.http_token_header"),
    ("port 99999 in neo4j.uri", "neo4j.uri", "bolt://127.0.0.1:99999", "neo4j.uri"),
    ("port 99999 in a base URL", "enrichment.retailer.base_url", "http://127.0.0.1:99999",
     "enrichment.retailer.base_url"),
    ("port 99999 of valkey", "valkey.port", 99999, "valkey.port"),
    ("port 99999 of a broker", "kafka.brokers", "127.0.0.1:{kafka},127.0.0.1:99999", "kafka.brokers"),
    ("port 99999 of metrics", "metrics.listen", "127.0.0.1:99999", "metrics.listen"),
    ("unknown kafka property", "kafka.properties.no.such.property", "1", "kafka.properties.no.such.property"),
    ("bad kafka property value", "kafka.properties.fetch.max.bytes", "lots", "kafka.properties.fetch.max.bytes"),
    ("worker-owned assignor", "kafka.properties.partition.assignment.strategy", "range",
     "kafka.properties.partition.assignment.strategy"),
    ("worker-owned commit", "kafka.properties.enable.auto.commit", "true", "kafka.properties.enable.auto.commit"),
    ("nested default of an unset variable", "neo4j.password", UNSET, "neo4j.password"),
    ("bad enum", "log.level", "loud", "log.level"),
    ("bad type", "consumers", {"receipt": {"batch_size": "abc"}}, "consumers.receipt.batch_size"),
    ("bad range", "neo4j.pool_size", 0, "neo4j.pool_size"),
    ("missing required", "neo4j.uri", DELETE, "neo4j.uri"),
    ("unknown key", "neo4j.passwd", "x", "neo4j.passwd"),
    ("cross-key rule", "kafka.security_protocol", "sasl_ssl", "kafka.sasl_mechanism"),
    ("registry user with a colon", "schema_registry.username", "a:b", "schema_registry"),
]


def fill(value, ports):
    if isinstance(value, str):     # "{neo4j}" -> that listener's port; "${VAR}" stays
        return re.sub(r"\{(\w+)\}", lambda m: str(ports.get(m.group(1), m.group(0))), value)
    if isinstance(value, dict):
        return {k: fill(v, ports) for k, v in value.items()}
    return value


def run_cgw(*args):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
    env.pop("CGW_PARITY_UNSET", None)
    env.pop("CGW_PARITY_UNSET2", None)
    return subprocess.run([binary(), *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("case,key,value,named", CASES, ids=[c[0] for c in CASES])
def test_check_config_and_run_refuse_alike(tmp_path, servers, case, key, value, named):
    cfg = base_config(servers.port, tmp_path)
    put(cfg, key, fill(value, servers.port))
    path = tmp_path / "cgw.json"
    path.write_text(json.dumps(cfg))
    servers.connected()                       # start from no pending connection

    check = run_cgw("check-config", "-c", str(path))
    run = run_cgw("run", "-c", str(path))

    assert check.returncode == 2, "check-config accepted it:\n" + check.stdout + check.stderr
    assert run.returncode == 2, "run did not refuse it as a config error:\n" + run.stdout + run.stderr
    msg = check.stderr.strip()
    assert re.match(r"cgw: config: %s(: |\.)" % re.escape(named), msg), msg
    assert run.stderr.strip() == msg, "different messages:\n check-config: %s\n run: %s" % (msg, run.stderr)
    assert run.stdout == "", "run started something:\n" + run.stdout
    assert SECRET not in check.stdout + check.stderr + run.stdout + run.stderr
    assert servers.connected() == [], "run connected before refusing"


def test_good_file_is_accepted_by_check_config(tmp_path, servers):
    cfg = base_config(servers.port, tmp_path)
    cfg["kafka"]["properties"] = {"fetch.max.bytes": "1048576", "ssl.key.password": SECRET}
    os.environ["CGW_PARITY_USER"] = "from-env"
    try:
        cfg["neo4j"]["user"] = "${CGW_PARITY_UNSET:-${CGW_PARITY_USER}}"
        path = tmp_path / "cgw.json"
        path.write_text(json.dumps(cfg))
        r = run_cgw("check-config", "-c", str(path))
    finally:
        del os.environ["CGW_PARITY_USER"]
    assert r.returncode == 0, r.stderr
    assert 'neo4j.user: "from-env"\n' in r.stdout          # nested default, resolved
    assert SECRET not in r.stdout
    assert servers.connected() == []


def test_check_config_prints_no_userinfo(tmp_path, servers):
    cfg = base_config(servers.port, tmp_path)
    cfg["enrichment"]["fido"]["base_url"] = "http://svc:%s@127.0.0.1:%d" % (SECRET, servers.port["fido"])
    cfg["enrichment"]["retailer"]["base_url"] = "https://%s@retailer.internal" % SECRET
    cfg["flags"] = {"source": "http", "http_url": "https://ops:%s@flipper.internal/api" % SECRET,
                    "http_token": SECRET}
    path = tmp_path / "cgw.json"
    path.write_text(json.dumps(cfg))
    r = run_cgw("check-config", "-c", str(path))
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr, r.stdout
    assert 'enrichment.fido.base_url: "http://<redacted>@127.0.0.1:%d"' % servers.port["fido"] in r.stdout
    assert 'enrichment.retailer.base_url: "https://<redacted>@retailer.internal"' in r.stdout
    assert 'flags.http_url: "https://<redacted>@flipper.internal/api"' in r.stdout


def test_enrichment_error_line_and_status_hide_url_password(tmp_path, fakes):
    sc = Scenario(tmp_path, fakes.ports, batch_size=50)
    text = open(sc.config_path).read()
    for svc in ("fido", "retailer"):
        plain = 'base_url: "http://127.0.0.1:%d"' % fakes.ports[svc]
        assert plain in text
        text = text.replace(plain, 'base_url: "http://svc:%s@127.0.0.1:%d"' % (SECRET, fakes.ports[svc]))
    open(sc.config_path, "w").write(text)
    generate("receipts", sc.receipt_topic, 200, 31, str(tmp_path / "t.json"))
    fakes.control("fido", outage=True)
    try:
        sc.start()
        sc.wait_for("the enrichment outage line",
                    lambda: sc.log_lines("[ERROR] Enrichment services unavailable"), timeout=120)
        status_json = json.dumps(sc.status())
        page = subprocess.run([binary(), "status", "--url", "http://127.0.0.1:%d" % sc.metrics_port],
                              capture_output=True, text=True, timeout=30)
        assert page.returncode == 0, page.stderr
    finally:
        fakes.control("fido", outage=False)
    sc.wait_drained("receipt")
    sc.stop()
    line = sc.log_lines("[ERROR] Enrichment services unavailable")[0]
    assert "http://<redacted>@127.0.0.1:%d" % fakes.ports["fido"] in line, line
    for where, text in (("log", sc.output()), ("/status", status_json), ("cgw status", page.stdout)):
        assert SECRET not in text, "%s shows the password" % where
    assert "http://<redacted>@127.0.0.1:%d" % fakes.ports["fido"] in status_json
    assert "http://<redacted>@127.0.0.1:%d" % fakes.ports["fido"] in page.stdout
