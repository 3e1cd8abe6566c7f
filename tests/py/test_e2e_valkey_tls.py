# tests/py/test_e2e_valkey_tls.py: the worker with valkey.tls, as production runs it: the
# stack's TLS listener (VALKEY_TLS_PORT, certificates made by scripts/stack), the stack's CA as
# valkey.tls_ca_file, and the least-privilege ACL user (valkey.username + password). Checks that
# the idempotency cache really works over TLS (a replay with a new group is all duplicates, the
# keys are in Valkey), that a wrong CA only costs the cache and says why, and that
# `cgw check-config` and `cgw run` refuse the same bad Valkey TLS settings with the same line.
import os
import subprocess

import pytest
import redis

from cgw_worker import VALKEY_ACL_PASSWORD, VALKEY_PORT, VALKEY_TLS_DIR, Scenario, binary, generate
import graphcheck


def test_tls_cache_skips_duplicates(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, valkey_tls=True)
    truth = generate("receipts", sc.receipt_topic, 500, 31, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_drained("receipt")
    assert sc.outcome_counts("receipt") == truth["outcomes"]
    assert sc.counter("cgw_idempotency_unavailable_total", consumer="receipt") == 0
    assert not sc.log_lines("[WARN] Valkey unavailable"), sc.output()[-2000:]
    # The worker's connection is the ACL user's, on the TLS port.
    plain = redis.Redis(port=VALKEY_PORT)
    clients = [c for c in plain.client_list() if c.get("name") == "cgw-receipt" and c.get("user") == "cgw"]
    assert clients, plain.client_list()
    sc.stop()
    keys = list(plain.scan_iter(match=sc.key_prefix + "*", count=1000))
    assert len(keys) == truth["outcomes"]["persisted"]
    before = graphcheck.counts(clean_graph)

    # A new group reads everything again: only the cache (over TLS) knows it was done.
    sc.group_suffix += "-replay"
    sc.write_config()
    sc.start()
    sc.wait_drained("receipt")
    want = dict(truth["outcomes"])
    want["duplicate"] += want["persisted"]
    want["persisted"] = 0
    assert sc.outcome_counts("receipt") == want
    sc.stop()
    assert graphcheck.counts(clean_graph) == before
    plain.delete(*keys)


def test_wrong_ca_costs_only_the_cache_and_says_why(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, valkey_tls=True)
    sc.valkey_ca = "other-ca.crt"
    sc.write_config()
    truth = generate("receipts", sc.receipt_topic, 200, 32, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_drained("receipt")
    got = sc.outcome_counts("receipt")
    assert got["persisted"] == truth["outcomes"]["persisted"]
    assert got["duplicate"] + sc.counter("cgw_records_rewritten_total", consumer="receipt") == \
        truth["outcomes"]["duplicate"]
    lines = sc.log_lines("[WARN] Valkey unavailable")
    assert len(lines) == 1, "logged once per outage"
    assert "certificate verify failed" in lines[0], lines[0]
    assert VALKEY_ACL_PASSWORD not in sc.output()
    sc.stop()


@pytest.mark.parametrize("valkey,key,why", [
    ("tls: true, tls_cert_file: {d}/client.crt", "valkey.tls_key_file", "required when valkey.tls_cert_file is set"),
    ("tls: true, tls_ca_file: {d}/missing.crt", "valkey.tls_ca_file", "No such file or directory"),
    ("tls: true, tls_cert_file: {d}/client.crt, tls_key_file: {d}/other-client.key", "valkey.tls_key_file",
     "does not belong to the certificate"),
    ("tls: false, tls_ca_file: {d}/ca.crt", "valkey.tls_ca_file", "valkey.tls is false"),
    ("username: cgw", "valkey.password", "required when valkey.username is set"),
])
def test_check_config_and_run_refuse_the_same_valkey_settings(tmp_path, valkey, key, why):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka: {brokers: 127.0.0.1:9}\nneo4j: {uri: bolt://127.0.0.1:9}\n"
                   "enrichment: {fido: {base_url: http://127.0.0.1:9}, retailer: {base_url: http://127.0.0.1:9}}\n"
                   "flags: {file: /dev/null}\nvalkey: {" + valkey.format(d=VALKEY_TLS_DIR) + "}\n")
    runs = [subprocess.run([binary(), cmd, "-c", str(cfg)], capture_output=True, text=True, timeout=30)
            for cmd in ("check-config", "run")]
    for r in runs:
        assert r.returncode == 2, r.stderr + r.stdout
        assert r.stderr.startswith("cgw: config: %s: " % key) and why in r.stderr, r.stderr
    assert runs[0].stderr == runs[1].stderr


def test_check_config_accepts_the_tls_settings_run_uses(tmp_path):
    cfg = tmp_path / "good.yaml"
    cfg.write_text("kafka: {brokers: 127.0.0.1:9}\nneo4j: {uri: bolt://127.0.0.1:9}\n"
                   "enrichment: {fido: {base_url: http://127.0.0.1:9}, retailer: {base_url: http://127.0.0.1:9}}\n"
                   "flags: {file: /dev/null}\n"
                   "valkey: {tls: true, tls_ca_file: %s, tls_cert_file: %s, tls_key_file: %s, "
                   "tls_server_name: localhost, username: cgw, password: \"${VALKEY_T_PW}\"}\n"
                   % tuple(os.path.join(VALKEY_TLS_DIR, f) for f in ("ca.crt", "client.crt", "client.key")))
    r = subprocess.run([binary(), "check-config", "-c", str(cfg)], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, VALKEY_T_PW="pw-not-shown-8812"))
    assert r.returncode == 0, r.stderr
    assert 'valkey.tls_server_name: "localhost"' in r.stdout and "pw-not-shown-8812" not in r.stdout
