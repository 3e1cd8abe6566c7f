# tests/py/test_e2e_stalls.py: gray failures, the ones that do not crash anything. A server
# frozen with SIGSTOP (a GC pause, a hung host, a black-holed network) keeps its TCP
# connections open and answers nothing, so only the worker's own deadlines can notice it.
#
# For each server the worker depends on: freeze it mid-stream, then check what an operator
# would look at: the consumer's state on /status within 5 s, the outage's start logged once,
# /readyz refusing while /healthz stays 200, SIGTERM ending the process within the configured
# shutdown deadline (the batch in flight abandoned uncommitted), and after SIGCONT a new run
# ending with the graph equal to the generator's ground truth. For Kafka the outage's start
# and end lines come from librdkafka's events (a frozen broker rather than a killed one: a
# restart of the JVM costs a minute or more on a shared machine; kill -9 works the same way).
#
# Short deadlines keep the added wall time small: stall_after_ms 2000, shutdown 6 s, Bolt I/O
# timeout 5 s (not less: a cold Neo4j on a busy 2-core machine may plan a batch's statements
# for seconds, and a read timing out before the answer makes the write fail every time). Every frozen server is thawed (or restarted) in a finally.
import contextlib
import os
import re
import signal
import time
import urllib.error
import urllib.request

from cgw_worker import ROOT, SANITIZER, Scenario, assert_graph, generate
from conftest import Fakes

VAR = os.environ.get("CGW_VAR", os.path.join(ROOT, "var"))
SHUTDOWN_MS = 6000
STALL_YAML = "stall_after_ms: 2000\nshutdown_timeout_ms: %d\n" % SHUTDOWN_MS
NEO4J_YAML = "io_timeout_ms: 5000"
# The deadline itself, plus the sanitizer build's exit (leak check) on a shared machine.
EXIT_WAIT = SHUTDOWN_MS / 1000 + 8
STATE_WITHIN = 5


def server_pid(name):
    with open(os.path.join(VAR, name, "pid")) as f:
        return int(f.read().strip())


@contextlib.contextmanager
def frozen(pid):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def http_code(sc, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (sc.metrics_port, path), timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def scenario(tmp_path, fakes, **kw):
    return Scenario(tmp_path, fakes.ports, extra_yaml=STALL_YAML, neo4j_yaml=NEO4J_YAML, fakes=fakes, **kw)


def state_of(sc, consumer):
    """The consumer's state on /status (None before the consumers exist)."""
    return next((c["state"] for c in sc.status()["consumers"] if c["name"] == consumer), None)


def wait_running(sc, consumer="receipt"):
    sc.wait_for("running", lambda: state_of(sc, consumer) == "running")


def wait_state(sc, consumer, state, since, within=STATE_WITHIN):
    """The consumer's state must become `state` within `within` s of `since` (the stall's start)."""
    last = None
    while True:
        last = state_of(sc, consumer)
        if last == state:
            return
        if time.time() - since > within:
            raise AssertionError("%s: state %r, not %r, %d s after the stall" % (consumer, last, state, within))
        time.sleep(0.2)


def wait_consumed(sc, consumer):
    sc.wait_for("records consumed", lambda: sc.counter("cgw_records_consumed_total", consumer=consumer) > 0)
    return time.time()


def wait_line(sc, text, timeout=15):
    sc.wait_for(text, lambda: sc.log_lines(text), timeout=timeout)


def sigterm_within_deadline(sc):
    """SIGTERM ends the worker within the shutdown deadline, the batch in flight abandoned."""
    sc.stop(timeout=EXIT_WAIT)
    assert len(sc.log_lines("Batch abandoned at shutdown")) >= 1


def test_neo4j_frozen_mid_stream(tmp_path, fakes, clean_graph):
    sc = scenario(tmp_path, fakes, batch_size=50)
    sc.start()
    wait_running(sc)
    down, up = "[ERROR] Neo4j unavailable", "[INFO] Neo4j available again"
    neo4j = server_pid("neo4j")
    with frozen(neo4j):
        first = generate("receipts", sc.receipt_topic, 200, 41, str(tmp_path / "t1.json"))
        wait_state(sc, "receipt", "waiting_for_neo4j", wait_consumed(sc, "receipt"))
        wait_line(sc, down)
        assert http_code(sc, "/readyz") == 503, "a consumer waiting for Neo4j is not ready"
        assert http_code(sc, "/healthz") == 200, "waiting within its deadlines is alive"
        sc.wait_for("the state gauge", lambda: sc.counter("cgw_consumer_state", consumer="receipt",
                                                           state="waiting_for_neo4j") == 1, timeout=2)
        assert sc.counter("cgw_server_unavailable", consumer="receipt", server="neo4j") == 1
        # The blocked read times out: the connection is dropped and the batch waits and retries.
        sc.wait_for("a failed write", lambda: sc.counter("cgw_graph_write_failures_total", consumer="receipt") > 0)
        assert sc.lag("receipt") > 0
    sc.wait_drained("receipt")
    wait_line(sc, up)
    assert len(sc.log_lines(down)) == 1 and len(sc.log_lines(up)) == 1, "one line per outage start and end"
    assert http_code(sc, "/readyz") == 200
    # Frozen again, then SIGTERM while a write is blocked on the frozen server.
    with frozen(neo4j):
        second = generate("receipts", sc.receipt_topic, 150, 42, str(tmp_path / "t2.json"))
        wait_state(sc, "receipt", "waiting_for_neo4j", time.time())
        sigterm_within_deadline(sc)
        assert sc.lag("receipt") > 0, "the abandoned batch is not committed"
    sc.start()
    sc.wait_drained("receipt")
    sc.stop()
    assert_graph(clean_graph, [first, second])


def test_fido_and_registry_frozen(tmp_path, clean_graph):
    own = Fakes(str(tmp_path))  # frozen whole: the other tests keep the shared fakes
    try:
        sc = scenario(tmp_path, own, receipts=True, factoids=True, batch_size=50)
        receipts = generate("receipts", sc.receipt_topic, 150, 43, str(tmp_path / "r.json"))
        factoids = generate("factoids", sc.factoid_topic, 300, 44, str(tmp_path / "f.json"))
        with frozen(own.proc.pid):
            sc.start()
            since = time.time()
            wait_state(sc, "receipt", "waiting_for_enrichment", since, within=STATE_WITHIN + 1)
            wait_state(sc, "factoid", "waiting_for_schema_registry", since, within=STATE_WITHIN + 1)
            wait_line(sc, "[ERROR] Enrichment services unavailable")
            wait_line(sc, "[ERROR] Schema registry unavailable")
            assert http_code(sc, "/readyz") == 503
            assert http_code(sc, "/healthz") == 200
            sigterm_within_deadline(sc)
        assert len(sc.log_lines("[ERROR] Enrichment services unavailable")) == 1
        assert len(sc.log_lines("[ERROR] Schema registry unavailable")) == 1
        sc.start()
        sc.wait_drained("receipt")
        sc.wait_drained("factoid")
        sc.stop()
        assert_graph(clean_graph, [receipts, factoids])
    finally:
        own.stop()


def leading_skips(skip_lines):
    """Records skipped before the first record of their partition that was not (fresh topic:
    offsets from 0): what the watermark may commit while the first purchase waits."""
    skipped = {}
    for line in skip_lines:
        part = int(re.search(r" partition=(\d+)", line).group(1))
        skipped.setdefault(part, set()).add(int(re.search(r" offset=(\d+)", line).group(1)))
    return sum(first_gap(offsets) for offsets in skipped.values())


def first_gap(offsets):
    n = 0
    while n in offsets:
        n += 1
    return n


def test_shutdown_deadline_with_a_call_that_outlasts_it(tmp_path):
    # A request to a frozen FIDO with a 60 s timeout: the only way out within the 3 s
    # shutdown deadline is to give up on the blocked thread and end the process.
    own = Fakes(str(tmp_path))
    try:
        sc = Scenario(tmp_path, own.ports, extra_yaml="stall_after_ms: 2000\nshutdown_timeout_ms: 3000\n",
                      enrichment_timeout_ms=60000, batch_size=50)
        truth = generate("receipts", sc.receipt_topic, 50, 48, str(tmp_path / "t.json"))
        with frozen(own.proc.pid):
            sc.start()
            wait_state(sc, "receipt", "waiting_for_enrichment", time.time(), within=STATE_WITHIN + 3)
            sc.proc.send_signal(signal.SIGTERM)
            rc = sc.proc.wait(3 + 8)
        assert rc == 1, "past the deadline the worker exits 1"
        assert len(sc.log_lines("[ERROR] Shutdown deadline passed")) == 1
        assert not SANITIZER.search(open(sc.err_path).read())
        # Skipped records never wait for a transaction: a partition's skips before its first
        # purchase are committed; nothing from that purchase on is (the contiguous watermark).
        lead = leading_skips(sc.log_lines("[WARN] Skipping receipt"))
        assert sc.lag("receipt") == 50 - lead, "nothing of the abandoned batch is committed"
        assert 50 - lead >= truth["outcomes"]["persisted"]
    finally:
        own.stop()


def test_valkey_frozen(tmp_path, fakes, clean_graph):
    sc = scenario(tmp_path, fakes, batch_size=50)
    down, up = "[WARN] Valkey unavailable", "[INFO] Valkey available again"
    first = generate("receipts", sc.receipt_topic, 150, 45, str(tmp_path / "t1.json"))
    with frozen(server_pid("valkey")):
        sc.start()
        # The cache is best effort: the worker goes on without it, and says so.
        wait_state(sc, "receipt", "running_without_valkey", wait_consumed(sc, "receipt"))
        wait_line(sc, down)
        sc.wait_drained("receipt")
        assert http_code(sc, "/healthz") == 200
    # After a failed connect the cache is left alone for its reconnect back-off (5 s), so the
    # end is seen by the first batch after that: keep records coming until it is.
    truths = [first]
    for seed in range(46, 56):
        truths.append(generate("receipts", sc.receipt_topic, 30, seed, str(tmp_path / ("t%d.json" % seed))))
        sc.wait_drained("receipt")
        if sc.log_lines(up):
            break
        time.sleep(1)
    wait_line(sc, up, timeout=2)
    assert len(sc.log_lines(down)) == 1 and len(sc.log_lines(up)) == 1
    sc.stop(timeout=EXIT_WAIT)
    assert_graph(clean_graph, truths)


def test_kafka_frozen_then_thawed(tmp_path, fakes, clean_graph):
    # A frozen broker keeps its connections open; librdkafka tears them down once a request
    # has gone unanswered for socket.timeout.ms (60 s by default, 3 s here) and, with every
    # broker down, raises ALL_BROKERS_DOWN: the start line. Thawed: the end line.
    sc = scenario(tmp_path, fakes, batch_size=50,
                  kafka_yaml='properties: {socket.timeout.ms: "3000", api.version.request.timeout.ms: "2000", '
                             'reconnect.backoff.max.ms: "1000"}')
    sc.start()
    wait_running(sc)
    # Partitions assigned: fetch requests are in flight when the broker freezes.
    sc.wait_for("partitions", lambda: sc.consumer_status("receipt")["partitions"])
    down, up = "[ERROR] Kafka unavailable", "[INFO] Kafka available again"
    with frozen(server_pid("kafka")):
        sc.wait_for(down, lambda: sc.log_lines(down), timeout=60)
        assert state_of(sc, "receipt") == "waiting_for_kafka"
        assert http_code(sc, "/readyz") == 503
        assert http_code(sc, "/healthz") == 200
    wait_line(sc, up, timeout=60)
    truth = generate("receipts", sc.receipt_topic, 100, 47, str(tmp_path / "t.json"))
    sc.wait_drained("receipt")
    assert len(sc.log_lines(down)) == 1 and len(sc.log_lines(up)) == 1
    assert state_of(sc, "receipt") == "running"
    sc.stop(timeout=EXIT_WAIT)
    assert_graph(clean_graph, [truth])
