# tests/py/test_e2e_receipts.py: the receipt pipeline end to end, against the real stack
# (Kafka, Neo4j, Valkey) and the project's fakes of FIDO and Retailer, with the real cgw
# binary. Each test publishes a generated set to its own topic and checks the graph and the
# counters against the generator's ground truth (contract §1-§7), through faults: kill -9,
# Neo4j stopped, enrichment flaky then down, Valkey unreachable, malformed records.
import json
import os
import signal
import subprocess
import time

import pytest

from cgw_worker import ROOT, Scenario, binary, free_port, generate
import graphcheck

STACK = os.path.join(ROOT, "scripts", "stack")


@pytest.fixture(scope="module")
def neo4j():
    drv = graphcheck.driver()
    yield drv
    drv.close()


@pytest.fixture
def clean_graph(neo4j):
    graphcheck.wipe(neo4j)
    return neo4j


def assert_graph(drv, truths):
    got, bad = graphcheck.compare(drv, truths)
    assert not bad, "graph differs from the ground truth:\n" + "\n".join(bad[:30])


def assert_outcomes(sc, truth, duplicates_as_persisted=False):
    want = dict(truth["outcomes"])
    if duplicates_as_persisted:  # no idempotency cache: copies are written again
        want["persisted"] += want["duplicate"]
        want["duplicate"] = 0
    assert sc.outcome_counts("receipt") == want


def test_ground_truth_counters_and_logs(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports)
    truth = generate("receipts", sc.receipt_topic, 3000, 11, str(tmp_path / "t.json"), "--malformed", "12")
    sc.start()
    sc.wait_drained("receipt")
    assert_outcomes(sc, truth)
    assert_graph(clean_graph, [truth])
    # One line per outcome, with the texts dashboards search for.
    assert len(sc.log_lines("[SUCCESS] Persisted graph data")) == truth["outcomes"]["persisted"]
    skipped = sum(v for k, v in truth["outcomes"].items() if k not in ("persisted", "error"))
    assert len(sc.log_lines("[WARN] Skipping receipt")) == skipped
    errors = [l for l in sc.log_lines("[ERROR]") if "Cannot decode record" in l]
    assert len(errors) == truth["outcomes"]["error"] == 12
    status_lines = [l for l in sc.log_lines("[WARN] Skipping receipt") if "reason=status" in l]
    assert all("RECEIPT_STATUS_" in l for l in status_lines)
    assert all("service_name=consumer-graph-worker" in l for l in sc.log_lines("msg="))
    sc.stop()


def test_replay_with_new_group_changes_nothing(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports)
    truth = generate("receipts", sc.receipt_topic, 1500, 12, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_drained("receipt")
    sc.stop()
    before = graphcheck.counts(clean_graph)
    # A new group and an empty idempotency cache: every record is written a second time.
    sc.group_suffix += "-replay"
    sc.write_config(key_prefix=sc.key_prefix + "replay:")
    sc.start()
    sc.wait_drained("receipt")
    assert sc.outcome_counts("receipt")["duplicate"] == truth["outcomes"]["duplicate"]
    sc.stop()
    assert graphcheck.counts(clean_graph) == before
    assert_graph(clean_graph, [truth])


def kill9_mid_stream_then_restart(tmp_path, fakes, seed, writers=1):
    """4 000 receipts, the worker killed -9 after 200 persisted, restarted, drained: returns
    the scenario (running) and the truth."""
    sc = Scenario(tmp_path, fakes.ports, batch_size=50, writers=writers)
    truth = generate("receipts", sc.receipt_topic, 4000, seed, str(tmp_path / "t.json"))
    sc.start()
    deadline = time.time() + 120
    while sc.counter("cgw_records_persisted_total", consumer="receipt") < 200:
        assert time.time() < deadline
        time.sleep(0.1)
    sc.stop(signal.SIGKILL)
    assert sc.lag("receipt") > 0, "the kill came too late to test anything"
    sc.start()
    sc.wait_drained("receipt")
    return sc, truth


def test_kill9_mid_stream_then_restart(tmp_path, fakes, clean_graph):
    sc, truth = kill9_mid_stream_then_restart(tmp_path, fakes, 13)
    sc.stop()
    assert_graph(clean_graph, [truth])


def test_two_writers_kill9_mid_stream_then_restart(tmp_path, fakes, clean_graph):
    """consumers.receipt.writers 2: two transactions in flight on the real Neo4j (deadlocks,
    if any, retried and counted), a kill -9 mid-stream, a restart: the graph is the truth,
    every purchase counted once."""
    sc, truth = kill9_mid_stream_then_restart(tmp_path, fakes, 15, writers=2)
    assert any(k.startswith("cgw_graph_deadlocks_total{") for k in sc.metrics())
    assert (sc.counter("cgw_graph_deadlocks_total", consumer="receipt")
            <= sc.counter("cgw_graph_write_retries_total", consumer="receipt"))
    sc.stop()
    assert_graph(clean_graph, [truth])


def test_neo4j_stopped_mid_stream(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, batch_size=50)
    truth = generate("receipts", sc.receipt_topic, 4000, 14, str(tmp_path / "t.json"))
    sc.start()
    deadline = time.time() + 120
    while sc.counter("cgw_records_persisted_total", consumer="receipt") < 100:
        assert time.time() < deadline
        time.sleep(0.1)
    subprocess.run([STACK, "down", "neo4j"], check=True)
    try:
        # Two failed writes (each after the driver's own retries, max_retry_time_ms): the batch
        # failed, waited and was tried again. The outage then lasts as long as Neo4j's start.
        failures = lambda: sc.counter("cgw_graph_write_failures_total", consumer="receipt")  # noqa: E731
        sc.wait_for("two failed writes", lambda: failures() >= 2, timeout=120)
        assert sc.proc.poll() is None, "the worker must wait, not exit"
        assert sc.lag("receipt") > 0
    finally:
        subprocess.run([STACK, "up", "neo4j"], check=True)
    sc.wait_drained("receipt", timeout=300)
    assert sc.counter("cgw_graph_write_failures_total", consumer="receipt") > 0
    assert sc.log_lines("[ERROR] Neo4j unavailable")
    sc.stop()
    drv = graphcheck.driver()
    try:
        assert_graph(drv, [truth])
    finally:
        drv.close()


def test_enrichment_flaky_then_down_for_10s(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, batch_size=50)
    truth = generate("receipts", sc.receipt_topic, 1500, 15, str(tmp_path / "t.json"))
    fakes.control("fido", error_rate=0.5)
    try:
        sc.start()
        deadline = time.time() + 120
        while sc.counter("cgw_records_persisted_total", consumer="receipt") < 100:
            assert time.time() < deadline
            time.sleep(0.1)
        fakes.control("fido", error_rate=0.0, outage=True)
        fakes.control("retailer", outage=True)
        time.sleep(10)
        assert sc.counter("cgw_enrichment_unavailable_total", consumer="receipt") > 0
    finally:
        fakes.control("fido", error_rate=0.0, outage=False)
        fakes.control("retailer", outage=False)
    sc.wait_drained("receipt")
    sc.stop()
    assert_graph(clean_graph, [truth])


def test_valkey_unreachable_for_the_whole_run(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, valkey_port=free_port())
    truth = generate("receipts", sc.receipt_topic, 2000, 16, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_drained("receipt")
    # Only the in-batch copies are caught without the cache; the rest are written again, and
    # counted as rewrites: persisted stays the number of distinct purchases.
    got = sc.outcome_counts("receipt")
    assert got["persisted"] == truth["outcomes"]["persisted"]
    rewritten = sc.counter("cgw_records_rewritten_total", consumer="receipt")
    assert got["duplicate"] + rewritten == truth["outcomes"]["duplicate"]
    assert len(sc.log_lines("[SUCCESS] Persisted graph data")) == truth["outcomes"]["persisted"]
    assert sc.counter("cgw_idempotency_unavailable_total", consumer="receipt") > 0
    assert len(sc.log_lines("[WARN] Valkey unavailable")) == 1, "logged once per outage"
    sc.stop()
    assert_graph(clean_graph, [truth])


def test_malformed_records_never_block_a_partition(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports)
    # Malformed records only: random bytes, truncated protobuf, empty ids.
    truth = generate("receipts", sc.receipt_topic, 300, 17, str(tmp_path / "t.json"), "--malformed", "40")
    sc.start()
    sc.wait_drained("receipt")
    assert sc.counter("cgw_records_errors_total", consumer="receipt", kind="decode") == 40
    assert len([l for l in sc.log_lines("[ERROR]") if "Cannot decode" in l]) == 40
    assert_outcomes(sc, truth)
    sc.stop()
    assert_graph(clean_graph, [truth])


@pytest.mark.parametrize("yaml,key", [
    ("consumers:\n  receipt:\n    batch_sise: 10\n", "consumers.receipt.batch_sise"),
    ("consumers:\n  receipt:\n    batch_size: many\n", "consumers.receipt.batch_size"),
    ("neo4j:\n  user: neo4j\n", "neo4j.uri"),
])
def test_bad_config_is_refused_with_the_key(tmp_path, yaml, key):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("kafka: {brokers: 127.0.0.1:9092}\n" + yaml)
    r = subprocess.run([binary(), "run", "-c", str(cfg)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert key in r.stderr, r.stderr
