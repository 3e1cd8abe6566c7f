# tests/py/test_e2e_operations.py: runtime control against the real stack (contract §4, §8):
# killswitches through each flag source, the percentage rollout checked against an
# independent Flipper hash (Python's zlib, in tools/gen.py), flags unreadable at start and
# mid-run, log_only, and the live status page.
import time

import pytest

from cgw_worker import Scenario, generate
import graphcheck

KS = "consumer_graph_receipt_killswitch"


def assert_graph(drv, truths):
    got, bad = graphcheck.compare(drv, truths)
    assert not bad, "graph differs from the ground truth:\n" + "\n".join(bad[:30])


@pytest.mark.parametrize("source", ["file", "http", "valkey"])
def test_killswitch_stops_and_resumes_the_consumer(tmp_path, fakes, clean_graph, source):
    sc = Scenario(tmp_path, fakes.ports, factoids=True, flags_source=source, fakes=fakes, batch_size=100)
    on = {"consumer_graph_ingestion": {"boolean": "true"}}
    first = generate("receipts", sc.receipt_topic, 600, 21, str(tmp_path / "t1.json"))
    sc.start()
    sc.wait_drained("receipt")
    assert sc.group_members("receipt") == 1
    # ON: the consumer finishes its batch, commits, leaves the group, and reads nothing more.
    sc.set_flags(dict(on, **{KS: {"boolean": "true"}}))
    t0 = time.time()
    sc.wait_for("killswitch to stop the consumer",
                lambda: sc.consumer_status("receipt")["state"] == "stopped_by_killswitch", timeout=15)
    sc.wait_for("the group to be empty", lambda: sc.group_members("receipt") == 0, timeout=15)
    stopped_after = time.time() - t0
    assert stopped_after < 1 + 5, "flag poll interval is 1 s; stopped after %.1f s" % stopped_after
    assert sc.log_lines("FlagPoller: flag=%s changed" % KS)
    consumed = sc.counter("cgw_records_consumed_total", consumer="receipt")
    second = generate("receipts", sc.receipt_topic, 600, 22, str(tmp_path / "t2.json"))
    # The factoid consumer is not affected by the receipt killswitch.
    orders = generate("factoids", sc.factoid_topic, 400, 20, str(tmp_path / "f.json"))
    sc.wait_drained("factoid")
    assert sc.consumer_status("factoid")["state"] == "running"
    time.sleep(2)
    assert sc.counter("cgw_records_consumed_total", consumer="receipt") == consumed
    assert sc.lag("receipt") == second["published"]
    # OFF: it reconnects and resumes from its committed offsets.
    sc.set_flags(dict(on, **{KS: {"boolean": "false"}}))
    sc.wait_drained("receipt")
    assert sc.counter("cgw_records_consumed_total", consumer="receipt") == consumed + second["published"]
    assert sc.consumer_status("receipt")["state"] == "running"
    sc.stop()
    # Nothing lost, nothing doubled: one graph holds exactly all the sets.
    assert_graph(clean_graph, [first, second, orders])


def test_rollout_at_25_percent_matches_flippers_hash(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, rollout="25")
    truth = generate("receipts", sc.receipt_topic, 3000, 23, str(tmp_path / "t.json"),
                     "--rollout-percentage", "25")
    assert truth["outcomes"]["not_in_rollout"] > 0
    sc.start()
    sc.wait_drained("receipt")
    got = sc.outcome_counts("receipt")
    assert got == truth["outcomes"]
    sc.stop()
    assert_graph(clean_graph, [truth])
    # Exactly the selected users, by key.
    with clean_graph.session(database="neo4j") as s:
        users = {r["u"] for r in s.run("MATCH (u:User) RETURN u.user_id AS u")}
    assert users == set(truth["sets"]["users"])


def test_flags_unreadable_at_start_then_readable(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, flags_source="http", fakes=fakes)
    truth = generate("receipts", sc.receipt_topic, 800, 24, str(tmp_path / "t.json"))
    fakes.control("flipper", outage=True)
    try:
        sc.start()
        time.sleep(4)
        assert sc.counter("cgw_records_consumed_total", consumer="receipt") == 0
        assert sc.consumer_status("receipt")["state"] == "waiting_for_flags"
        assert sc.status()["flags"]["source_ok"] is False
    finally:
        fakes.control("flipper", outage=False)
    sc.wait_drained("receipt")
    # Down mid-run: the last values stay in force (the killswitch stays off, records flow).
    fakes.control("flipper", outage=True)
    try:
        more = generate("receipts", sc.receipt_topic, 500, 25, str(tmp_path / "t2.json"))
        sc.wait_drained("receipt")
        assert len(sc.log_lines("FlagPoller: cannot read flags")) == 2  # once at start, once now
        assert sc.counter("cgw_flags_errors_total") > 0
    finally:
        fakes.control("flipper", outage=False)
    sc.stop()
    assert_graph(clean_graph, [truth, more])


def test_log_only_then_normal_run(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, extra_yaml="log_only: true")
    truth = generate("receipts", sc.receipt_topic, 1200, 26, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_for("every record logged", lambda: len(sc.log_lines("[INFO] log_only: record")) >= truth["published"])
    time.sleep(2)
    assert len(sc.log_lines("[INFO] log_only: record")) == truth["published"]
    assert graphcheck.counts(clean_graph)["nodes"]["Purchase"] == 0
    assert sc.lag("receipt") == truth["published"], "log_only commits nothing by default"
    sc.stop()
    sc.extra_yaml = ""
    sc.write_config()
    sc.start()
    sc.wait_drained("receipt")
    sc.stop()
    assert_graph(clean_graph, [truth])


def test_status_mid_run_equals_the_counters(tmp_path, fakes, clean_graph):
    sc = Scenario(tmp_path, fakes.ports, extra_yaml="dry_run: true")
    generate("receipts", sc.receipt_topic, 1000, 27, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_drained("receipt")
    # The worker refreshes its partitions' lag once a second (LAG_EVERY_MS): right after the
    # group's commits reach the end, its own figure may still be the one from before the last
    # records (a CI run read 42); it must reach 0 within a few refreshes.
    deadline = time.time() + 5
    st = sc.consumer_status("receipt")
    while st["lag"] != 0 and time.time() < deadline:
        time.sleep(0.2)
        st = sc.consumer_status("receipt")
    assert st["consumed"] == sc.counter("cgw_records_consumed_total", consumer="receipt")
    assert st["persisted"] == sc.counter("cgw_records_persisted_total", consumer="receipt")
    assert st["writes_last_10m"] == st["persisted"]
    for f in st["filters"]:
        assert f["count"] == sc.counter("cgw_records_skipped_total", consumer="receipt", reason=f["reason"])
    assert [f["reason"] for f in st["filters"]] == ["digital", "status", "no_fidos", "not_in_rollout", "duplicate"]
    assert len(st["partitions"]) == 6 and st["lag"] == 0
    doc = sc.status()
    assert doc["config"]["dry_run_deprecated"] is True
    assert "cgw-local-password" not in str(doc)
    assert sc.log_lines("Deprecated configuration key")
    # The page for people prints the same numbers.
    import subprocess
    from cgw_worker import binary
    page = subprocess.run([binary(), "status", "--url", "http://127.0.0.1:%d" % sc.metrics_port],
                          capture_output=True, text=True, timeout=30).stdout
    assert "receipt consumer: running" in page and "persisted %d" % st["persisted"] in page
    sc.stop()


def cgw(*args):
    import subprocess
    from cgw_worker import binary
    return subprocess.run([binary()] + list(args), capture_output=True, text=True, timeout=60)


def test_offset_reset_to_datetime_and_group_delete(tmp_path, fakes, clean_graph):
    import datetime
    from cgw_worker import BOOTSTRAP
    sc = Scenario(tmp_path, fakes.ports)
    first = generate("receipts", sc.receipt_topic, 600, 28, str(tmp_path / "t1.json"))
    time.sleep(1.5)
    at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    time.sleep(1.5)
    second = generate("receipts", sc.receipt_topic, 700, 29, str(tmp_path / "t2.json"))
    sc.start()
    sc.wait_drained("receipt")
    common = ["--brokers", BOOTSTRAP, "--group", sc.group("receipt"), "--topic", sc.receipt_topic]
    r = cgw("offsets", "reset", *common, "--to-datetime", at, "--execute")
    assert r.returncode == 1 and "killswitch" in r.stderr, "refused while the worker runs"
    sc.stop()
    plan = cgw("offsets", "reset", *common, "--to-datetime", at)
    assert plan.returncode == 0 and sc.lag("receipt") == 0, "a dry run changes nothing"
    assert cgw("offsets", "reset", *common, "--to-datetime", at, "--execute").returncode == 0
    assert sc.lag("receipt") == second["published"]
    # Replay into an empty graph and an empty cache: exactly the second set comes back.
    graphcheck.wipe(clean_graph)
    sc.write_config(key_prefix=sc.key_prefix + "replay:")
    sc.start()
    sc.wait_drained("receipt")
    assert sc.counter("cgw_records_consumed_total", consumer="receipt") == second["published"]
    sc.stop()
    assert_graph(clean_graph, [second])
    # Group deleted: the next run reads from the earliest offset again.
    r = cgw("group", "delete", "--brokers", BOOTSTRAP, "--group", sc.group("receipt"), "--execute")
    assert r.returncode == 0, r.stderr
    sc.write_config(key_prefix=sc.key_prefix + "again:")
    sc.start()
    sc.wait_drained("receipt")
    assert sc.counter("cgw_records_consumed_total", consumer="receipt") == \
        first["published"] + second["published"]
    sc.stop()
    assert_graph(clean_graph, [first, second])
