# tests/py/test_deploy.py: the files under deploy/ load: the Prometheus alert rules pass
# `promtool check rules` and their unit tests (`promtool test rules`, Debian's prometheus
# package), and the Grafana dashboard is a well-formed dashboard whose panels query the two
# data sources through its variables and select log lines by service_name. That its metric
# names are the worker's is checked against a live /metrics in test_status_page.py.
import json
import os
import re
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
DASHBOARD = os.path.join(DEPLOY, "grafana", "cgw-dashboard.json")
RULES = os.path.join(DEPLOY, "prometheus", "alerts.yml")
PROMTOOL = shutil.which("promtool")


def promtool(*args):
    assert PROMTOOL, "promtool is not installed (scripts/deps apt: prometheus)"
    return subprocess.run([PROMTOOL] + list(args), capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(RULES))


def test_alert_rules_pass_promtool_check():
    r = promtool("check", "rules", RULES)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 7 rules found" in r.stdout


def test_alert_rules_unit_tests_pass():
    r = promtool("test", "rules", "alerts_test.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


def test_alert_rules_unit_tests_can_fail(tmp_path):
    """A rule that never fires makes its unit test fail: the tests look at what they claim."""
    broken = open(RULES).read().replace("max by (consumer) (cgw_killswitch_on) == 1\n        for: 24h",
                                        "max by (consumer) (cgw_killswitch_on) == 2\n        for: 24h")
    assert broken != open(RULES).read()
    (tmp_path / "alerts.yml").write_text(broken)
    test = open(os.path.join(os.path.dirname(RULES), "alerts_test.yml")).read()
    (tmp_path / "alerts_test.yml").write_text(test)
    r = subprocess.run([PROMTOOL, "test", "rules", "alerts_test.yml"], capture_output=True, text=True,
                       timeout=120, cwd=tmp_path)
    assert r.returncode != 0 and "CgwKillswitchOnForADay" in r.stdout + r.stderr


def dashboard_targets():
    d = json.load(open(DASHBOARD))
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield p, t


def test_dashboard_is_well_formed():
    d = json.load(open(DASHBOARD))
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 36
    names = {v["name"] for v in d["templating"]["list"]}
    assert {"prometheus", "loki", "service_name", "consumer"} <= names
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0
    kinds = {t["datasource"]["uid"] for _, t in dashboard_targets()}
    assert kinds == {"${prometheus}", "${loki}"}


def test_dashboard_searches_the_operators_log_lines_by_service_name():
    loki = [t["expr"] for _, t in dashboard_targets() if t["datasource"]["uid"] == "${loki}"]
    assert loki and all(e.count('{service_name="$service_name"}') == 1 for e in loki)
    text = "\n".join(loki)
    for needle in ("[SUCCESS] Persisted graph data", "[WARN] Skipping receipt", "[INFO] Shop order received",
                   '"[ERROR]"', "FlagPoller: flag="):
        assert needle in text, needle
    flag_re = re.search(r'\|~ "(FlagPoller: flag=[^"]+)"', text).group(1).encode().decode("unicode_escape")
    assert re.search(flag_re, "FlagPoller: flag=consumer_graph_receipt_killswitch changed")
