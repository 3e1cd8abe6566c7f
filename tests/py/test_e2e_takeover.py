# tests/py/test_e2e_takeover.py: static group membership and honest counting through crashes
# (issue 11), against the real stack.
#
# Takeover: a worker with kafka.group_instance_id that is killed -9 and restarted under the
# same id must get its partitions back at once. The tests make session.timeout.ms (and
# max.poll.interval.ms, which bounds a rebalance) 5 minutes, far beyond their waits: a worker
# that had to wait for the dead member's session to expire could not drain in time, so these
# check the behaviour, not a timing. The killswitch and SIGTERM must release a static member's
# partitions for real (LeaveGroup): the group is empty right after, not after 5 minutes.
#
# Counting: a record written again after a crash and the loss of the idempotency cache (its
# purchase already in the graph) is a rewrite, so the [SUCCESS] lines and cgw_records_persisted_total summed over both runs equal
# the distinct purchases.
import signal
import time
import uuid

from cgw_worker import Scenario, generate
import graphcheck

KS = "consumer_graph_receipt_killswitch"
LONG_SESSION = ('group_instance_id: "takeover-%s", properties: {"session.timeout.ms": "300000", '
                '"max.poll.interval.ms": "300000"}')


def static_scenario(tmp_path, fakes, **kw):
    return Scenario(tmp_path, fakes.ports, kafka_yaml=LONG_SESSION % uuid.uuid4().hex[:8], **kw)


def wait_persisted(sc, n, timeout=120):
    deadline = time.time() + timeout
    while sc.counter("cgw_records_persisted_total", consumer="receipt") < n:
        assert time.time() < deadline, "fewer than %d records persisted in %d s" % (n, timeout)
        time.sleep(0.05)


def test_restart_under_the_same_instance_id_takes_the_partitions_back(tmp_path, fakes, clean_graph):
    sc = static_scenario(tmp_path, fakes, batch_size=50)
    truth = generate("receipts", sc.receipt_topic, 3000, 41, str(tmp_path / "t.json"))
    sc.start()
    wait_persisted(sc, 200)
    sc.stop(signal.SIGKILL)
    assert sc.lag("receipt") > 0, "the kill came too late to test anything"
    # The dead member is still in the group (its session lasts 5 minutes) ...
    assert sc.group_members("receipt") == 1
    sc.start()
    # ... and the restart replaces it instead of waiting for it: well within the session.
    sc.wait_drained("receipt", timeout=120)
    members = sc.group_description("receipt").members
    assert len(members) == 1 and members[0].group_instance_id == sc.kafka_yaml.split('"')[1] + "-receipt"
    sc.stop()
    got, bad = graphcheck.compare(clean_graph, [truth])
    assert not bad, bad[:20]


def test_killswitch_and_sigterm_release_a_static_member(tmp_path, fakes, clean_graph):
    sc = static_scenario(tmp_path, fakes, batch_size=100)
    generate("receipts", sc.receipt_topic, 500, 42, str(tmp_path / "t.json"))
    sc.start()
    sc.wait_drained("receipt")
    assert sc.group_members("receipt") == 1
    sc.set_flags({"consumer_graph_ingestion": {"boolean": "true"}, KS: {"boolean": "true"}})
    sc.wait_for("the killswitch to empty the group", lambda: sc.group_members("receipt") == 0,
                timeout=20)
    sc.set_flags({"consumer_graph_ingestion": {"boolean": "true"}, KS: {"boolean": "false"}})
    sc.wait_for("the consumer to rejoin", lambda: sc.group_members("receipt") == 1, timeout=60)
    sc.stop()
    # SIGTERM leaves as well: nothing left to wait for after a rolling deploy's stop.
    assert sc.group_members("receipt") == 0


def test_kill9_then_restart_counts_each_purchase_once(tmp_path, fakes, clean_graph):
    sc = static_scenario(tmp_path, fakes, batch_size=50)
    truth = generate("receipts", sc.receipt_topic, 4000, 43, str(tmp_path / "t.json"))
    sc.start()
    wait_persisted(sc, 300)
    sc.stop(signal.SIGKILL)
    assert sc.lag("receipt") > 0, "the kill came too late to test anything"
    first = len(sc.log_lines("[SUCCESS] Persisted graph data"))
    # The idempotency cache lost its keys too (Valkey runs without persistence), so the
    # records persisted after the last commit reach the graph a second time.
    sc.write_config(key_prefix=sc.key_prefix + "lost:")
    sc.start()
    sc.wait_drained("receipt")
    second = sc.counter("cgw_records_persisted_total", consumer="receipt")
    rewritten = sc.counter("cgw_records_rewritten_total", consumer="receipt")
    assert len(sc.log_lines("[SUCCESS] Persisted graph data")) == second
    sc.stop()
    # Records persisted but not yet committed at the kill were read again: rewrites.
    assert rewritten > 0, "nothing was replayed, the test proves nothing"
    assert first + second == truth["outcomes"]["persisted"]
    got, bad = graphcheck.compare(clean_graph, [truth])
    assert not bad, bad[:20]
