# tests/py/test_e2e_poison.py: records that must never merge, block or vanish, end to end
# against the real stack with the real cgw binary (issue 10, items 2-4).
#
# - strings are what the wire says: ids holding U+0000 are errors, never cut at the NUL
#   (before the fix "r1\0aaa" and "r1\0bbb" both became receipt:r1);
# - a batch fails as a whole only for reasons outside it: one Neo4j refuses for its content
#   or its size is written in halves, and only records that fail alone are errors; batches
#   are cut by bytes, so big records keep the worker's memory bounded;
# - a dead-letter topic gets every record that can never succeed, with headers saying why,
#   before its offset is committed; `cgw dlq replay` puts them back once the cause is fixed;
#   a dead-letter topic that cannot be written makes the partition wait.
import os
import subprocess
import time

from cgw_worker import BOOTSTRAP, ROOT, Scenario, binary, create_topics


def receipt(cls, rid, user, fidos=("F1",), retailer="R1"):
    """A FINISHED paper receipt (protobuf bytes) with one line per fido."""
    m = cls()
    m.receipt_id, m.user_id, m.status, m.total_cents, m.currency = rid, user, 2, 100, "USD"
    m.retailer.retailer_id = retailer
    m.purchased_at.seconds = 1700000000
    for i, f in enumerate(fidos):
        it = m.items.add()
        it.line_number, it.fido, it.quantity, it.unit_price_cents = i + 1, f, 1.0, 100
        it.total_price_cents, it.description = 100, "LINE %d" % (i + 1)
    return m.SerializeToString()


def produce(topic, values, partition=0):
    """values: (key, value) pairs, produced in order to one partition."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 5, "message.max.bytes": 16 << 20})
    for k, v in values:
        p.produce(topic, v, k, partition=partition)
        p.poll(0)
    assert p.flush(30) == 0


def purchases(drv, pid=None):
    with drv.session() as s:
        if pid is None:
            return s.run("MATCH (p:Purchase) RETURN p.purchase_id AS id").value()
        return s.run("MATCH (u:User)-[:MADE]->(p:Purchase {purchase_id: $id}) RETURN u.user_id",
                     id=pid).value()


def test_nul_in_ids_is_an_error_and_nothing_merges(tmp_path, fakes, clean_graph, proto_classes):
    R = proto_classes["receipt"]
    sc = Scenario(tmp_path, fakes.ports)
    produce(sc.receipt_topic, [
        (b"r1", receipt(R, "r1\0aaa", "u1")),
        (b"r1", receipt(R, "r1\0bbb", "u1")),
        (b"r2", receipt(R, "r2", "u2")),
        (b"r3", receipt(R, "r3", "u2\0evil")),          # was credited to u2
        (b"r4", receipt(R, "r4", "u4", fidos=("F1\0x",))),
        (b"r5", receipt(R, "r5", "u5", retailer="R1\0x")),
    ])
    sc.start()
    sc.wait_drained("receipt")
    assert sc.counter("cgw_records_errors_total", consumer="receipt", kind="decode") == 5
    assert sc.counter("cgw_records_persisted_total", consumer="receipt") == 1
    assert sorted(purchases(clean_graph)) == ["receipt:r2"]
    assert purchases(clean_graph, "receipt:r2") == ["u2"]
    errors = [l for l in sc.log_lines("[ERROR] Cannot decode record")]
    assert sum("receipt field receipt_id holds U+0000" in l for l in errors) == 2
    assert sum("receipt field user_id holds U+0000" in l for l in errors) == 1
    assert sum("receipt field items.fido holds U+0000" in l for l in errors) == 1
    assert sum("receipt field retailer.retailer_id holds U+0000" in l for l in errors) == 1
    sc.stop()


def test_id_length_limit_is_neo4js(tmp_path, fakes, clean_graph, proto_classes):
    """The longest id the worker accepts is one Neo4j's index accepts as a key (purchase_id
    "receipt:" + 8156 bytes); one byte more is a decode error, not a refused batch."""
    R = proto_classes["receipt"]
    sc = Scenario(tmp_path, fakes.ports)
    longest, too_long = "x" * 8156, "y" * 8157
    produce(sc.receipt_topic, [(b"a", receipt(R, longest, "u1", fidos=("F" * 8156,))),
                               (b"b", receipt(R, too_long, "u1"))])
    sc.start()
    sc.wait_drained("receipt")
    assert sc.counter("cgw_records_persisted_total", consumer="receipt") == 1
    assert purchases(clean_graph) == ["receipt:" + longest]
    assert any("id too long: receipt field receipt_id has 8157 bytes" in l
               for l in sc.log_lines("[ERROR] Cannot decode record"))
    sc.stop()


# ---- batches too big for Neo4j (issue 10 item 2) -------------------------------------------
#
# The receipts had 25 000 lines; on this 2-core machine Neo4j takes about a minute to
# write one of them (the CONTAINS MERGE on one Purchase grows with its lines), far beyond a
# test's budget. Records of about 800 KB made of 20 lines with 40 KB descriptions carry as
# many bytes with few lines: 100 of them in one transaction exceed the local stack's 64 MiB
# per-transaction cap (scripts/stack: db.memory.transaction.max) within seconds.

BIG_N, BIG_LINES, BIG_DESC = 100, 20, 40000


def big_receipts(R, n=BIG_N):
    out = []
    for i in range(n):
        m = R.FromString(receipt(R, "big-%d" % i, "big-user-%d" % i, fidos=["F%d" % k for k in range(BIG_LINES)]))
        m.total_cents = 1000 + i
        for k, it in enumerate(m.items):
            it.description = ("%d-%d " % (i, k)) * (BIG_DESC // 8)
        out.append((b"big%d" % i, m.SerializeToString()))
    return out


def vm_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


def test_batch_too_big_for_neo4j_is_split(tmp_path, fakes, clean_graph, proto_classes):
    """Neo4j's memory error is a TransientError; retried as is, the batch never passed and
    blocked its partition. Now it is written in halves until every record persists."""
    sc = Scenario(tmp_path, fakes.ports)
    with_consumer_keys(sc, "receipt", {"batch_max_bytes": 268435456, "linger_ms": 3000})
    produce(sc.receipt_topic, big_receipts(proto_classes["receipt"]))
    sc.start()
    sc.wait_drained("receipt", timeout=300)
    assert sc.counter("cgw_records_persisted_total", consumer="receipt") == BIG_N
    assert sc.counter("cgw_records_errors_total", consumer="receipt") == 0
    assert sc.counter("cgw_graph_batch_splits_total", consumer="receipt") >= 1
    halves = sc.log_lines("writing it in halves")
    assert any("MemoryPoolOutOfMemoryError" in l or "TransactionMemoryLimit" in l for l in halves), halves
    sc.stop()
    assert len(purchases(clean_graph)) == BIG_N


def test_byte_cap_keeps_the_worker_small(tmp_path, fakes, clean_graph, proto_classes):
    """With the default batch_max_bytes such records persist without a split, and the
    worker's peak RSS (VmHWM, the release build: sanitizers multiply memory) stays < 64 MB."""
    sc = Scenario(tmp_path, fakes.ports)
    with_consumer_keys(sc, "receipt", {"linger_ms": 3000})
    produce(sc.receipt_topic, big_receipts(proto_classes["receipt"], 40))
    sc.start(build="build/release")
    sc.wait_drained("receipt", timeout=300)
    hwm = vm_hwm_kb(sc.proc.pid)
    assert sc.counter("cgw_records_persisted_total", consumer="receipt") == 40
    assert sc.counter("cgw_graph_batch_splits_total", consumer="receipt") == 0
    print("byte cap: peak RSS %d kB" % hwm)
    assert hwm < 64 * 1024, "peak RSS %d kB" % hwm
    sc.stop()
    assert len(purchases(clean_graph)) == 40


# The issue's own case: receipts of 25 000 lines each. Before issue 14 one of them took Neo4j
# ~70 s to write (each CONTAINS was MERGEd against the lines already there); a new purchase is
# now written with CREATE, seconds each. Two of them in one batch exceed the stack's 64 MiB
# per-transaction memory, so every batch is also split (issue 10 item 2). 100 of them (the
# issue's number) took 334 s on the 2-core machine at load 7 (the worker persisted them in 4 min
# 48 s, 50 batches split, peak RSS 41.2 MB), so `make check` writes 4; the full case is
#   make MODE=release && CGW_TEST_LONG_RECEIPTS=100 $(scripts/pyenv | tail -n 1) -m pytest -q \
#       tests/py/test_e2e_poison.py -k 25000
# (see the README's test section). Lines carry no description, so a receipt stays under the
# broker's 1 MB message limit; 40 products, cycled, so each receipt names the same products.

LONG_LINES = 25000


def long_receipts(R, n):
    fidos = ["F%06d" % k for k in range(1, 41)]
    out = []
    for i in range(n):
        m = R.FromString(receipt(R, "long-%d" % i, "long-user-%d" % (i % 7), fidos=fidos[:1]))
        del m.items[:]
        for k in range(LONG_LINES):
            it = m.items.add()
            it.line_number, it.fido, it.quantity = k + 1, fidos[k % len(fidos)], 1.0
            it.unit_price_cents, it.total_price_cents = 100 + k % 50, 100 + k % 50
        m.total_cents = 1000 + i
        v = m.SerializeToString()
        assert len(v) < 1000000, "a receipt of %d bytes would exceed the broker's limit" % len(v)
        out.append((b"long%d" % i, v))
    return out


def test_receipts_of_25000_lines_persist_and_the_worker_stays_small(tmp_path, fakes, clean_graph, proto_classes):
    n = int(os.environ.get("CGW_TEST_LONG_RECEIPTS", "4"))
    sc = Scenario(tmp_path, fakes.ports)
    produce(sc.receipt_topic, long_receipts(proto_classes["receipt"], n))
    sc.start(build="build/release")
    sc.wait_drained("receipt", timeout=120 + 30 * n)
    hwm = vm_hwm_kb(sc.proc.pid)
    assert sc.counter("cgw_records_persisted_total", consumer="receipt") == n
    assert sc.counter("cgw_records_errors_total", consumer="receipt") == 0
    sc.stop()
    with clean_graph.session() as s:
        got = {r["id"]: (r["user"], r["lines"], r["total"]) for r in s.run(
            "MATCH (u:User)-[:MADE]->(p:Purchase) "
            "RETURN p.purchase_id AS id, u.user_id AS user, p.total_cents AS total, "
            "COUNT { (p)-[:CONTAINS]->(:Product) } AS lines")}
        lines = s.run("MATCH (:Purchase)-[c:CONTAINS]->() RETURN count(DISTINCT c.line) AS d").single()["d"]
    assert got == {"receipt:long-%d" % i: ("long-user-%d" % (i % 7), LONG_LINES, 1000 + i) for i in range(n)}
    assert lines == LONG_LINES
    print("25 000-line receipts: %d persisted, peak RSS %d kB" % (n, hwm))
    assert hwm < 64 * 1024, "peak RSS %d kB" % hwm


def with_consumer_keys(sc, consumer, keys):
    """Add keys to a consumer's line of the scenario's config."""
    with open(sc.config_path) as f:
        text = f.read()
    prefix = "  %s: {" % consumer
    start = text.index(prefix)
    end = text.index("}", start)
    line = text[start:end]
    for k, v in keys.items():
        if (" %s: " % k) in line:           # replace the scenario's own value
            head, _, rest = line.partition(" %s: " % k)
            line = head + " %s: %s" % (k, v) + (rest[rest.index(","):] if "," in rest else "")
        else:
            line += ", %s: %s" % (k, v)
    text = text[:start] + line + text[end:]
    with open(sc.config_path, "w") as f:
        f.write(text)


# ---- dead letters (issue 10 item 4) -----------------------------------------------------------

def framed(payload, schema_id):
    return b"\x00" + schema_id.to_bytes(4, "big") + b"\x00" + payload


def factoid(cls, fid, user, order, total=500):
    m = cls()
    m.factoid_id, m.user_id, m.source, m.type = fid, user, 1, "ORDER_FINALIZED"
    m.occurred_at.seconds = 1710000000
    o = m.shop_order
    o.order_id, o.retailer_id, o.total_cents, o.currency, o.fido_count = order, "R7", total, "EUR", 1
    it = o.items.add()
    it.line_number, it.fido, it.quantity, it.unit_price_cents, it.title = 1, "F1", 1, total, "Thing"
    return m.SerializeToString()


def read_topic(topic, timeout=30):
    """Every record of topic: (key, value, headers dict)."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "dlq-reader", "enable.auto.commit": False})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        parts = [TopicPartition(topic, p, 0) for p in md.partitions]
        ends = {p.partition: c.get_watermark_offsets(p, timeout=10)[1] for p in parts}
        c.assign(parts)
        out, deadline = [], time.time() + timeout
        left = {p for p, e in ends.items() if e > 0}
        while left and time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append((m.key(), m.value(), {k: v.decode() for k, v in (m.headers() or [])}))
            if m.offset() + 1 >= ends[m.partition()]:
                left.discard(m.partition())
        assert not left, "could not read %s to its end" % topic
        return out
    finally:
        c.close()


def cgw(*args):
    return subprocess.run([binary()] + list(args), capture_output=True, text=True, timeout=120, cwd=ROOT)


def unique_total_constraint(drv, create):
    with drv.session() as s:
        if create:
            s.run("CREATE CONSTRAINT test_poison_total IF NOT EXISTS FOR (p:Purchase) "
                  "REQUIRE p.total_cents IS UNIQUE").consume()
        else:
            s.run("DROP CONSTRAINT test_poison_total IF EXISTS").consume()


def test_dead_letters_with_headers_then_replayed(tmp_path, fakes, clean_graph, proto_classes):
    R, F = proto_classes["receipt"], proto_classes["factoid"]
    sc = Scenario(tmp_path, fakes.ports, receipts=True, factoids=True)
    rdlq, fdlq = sc.receipt_topic + "-dlq", sc.factoid_topic + "-dlq"
    create_topics([rdlq, fdlq], partitions=1)
    with_consumer_keys(sc, "receipt", {"dlq_topic": rdlq})
    with_consumer_keys(sc, "factoid", {"dlq_topic": fdlq})
    # Neo4j refuses a second Purchase with the same total_cents (a test-only constraint):
    # the batch holding both is written in halves, and only the second fails alone.
    unique_total_constraint(clean_graph, True)
    try:
        ok = receipt(R, "ok-1", "u1")
        produce(sc.receipt_topic, [
            (b"ok-1", ok),
            (b"garbage", b"\xff\xfe not protobuf"),
            (b"nul", receipt(R, "n1\0x", "u1")),
            (b"long", receipt(R, "L" * 9000, "u1")),
            (b"dup-total", receipt(R, "same-total", "u2")),   # total_cents 100, like ok-1
        ])
        produce(sc.factoid_topic, [
            (b"u3", framed(factoid(F, "f-ok", "u3", "o-ok"), 1)),
            (b"u4", framed(factoid(F, "f-bad-schema", "u4", "o-2"), 999)),
        ])
        sc.start()
        sc.wait_drained("receipt")
        sc.wait_drained("factoid")
        rl, fl = read_topic(rdlq), read_topic(fdlq)
        reasons = sorted(h["cgw-dlq-reason"] for _, _, h in rl)
        assert reasons == ["id_too_long", "invalid_string", "neo4j_refused", "undecodable"]
        assert [h["cgw-dlq-reason"] for _, _, h in fl] == ["schema_refused"]
        # The source record unchanged, and where it came from.
        sent = {b"garbage": b"\xff\xfe not protobuf", b"dup-total": receipt(R, "same-total", "u2")}
        for key, value, h in rl:
            assert h["cgw-dlq-source-topic"] == sc.receipt_topic and h["cgw-dlq-source-partition"] == "0"
            assert h["cgw-dlq-consumer"] == "receipt" and h["cgw-dlq-worker-version"]
            assert int(h["cgw-dlq-source-timestamp"]) > 0 and h["cgw-dlq-error"]
            if key in sent:
                assert value == sent[key]
        offsets = {k: int(h["cgw-dlq-source-offset"]) for k, _, h in rl}
        assert offsets == {b"garbage": 1, b"nul": 2, b"long": 3, b"dup-total": 4}
        nr = next(h for k, _, h in rl if k == b"dup-total")
        assert "ConstraintValidationFailed" in nr["cgw-dlq-error"]
        assert sc.counter("cgw_graph_batch_splits_total", consumer="receipt") >= 1
        assert sc.counter("cgw_records_dead_lettered_total", consumer="receipt") == 4
        assert sc.counter("cgw_records_dead_lettered_total", consumer="factoid", reason="schema_refused") == 1
        st = sc.consumer_status("receipt")["dead_letters"]
        assert st["topic"] == rdlq and st["total"] == 4 and st["by_reason"]["neo4j_refused"] == 1
        sc.stop()
        assert sorted(purchases(clean_graph)) == ["order:o-ok", "receipt:ok-1"]
    finally:
        unique_total_constraint(clean_graph, False)

    # `cgw dlq show` lists them; replay is a dry run unless --execute.
    r = cgw("dlq", "show", "-c", sc.config_path)
    assert r.returncode == 0, r.stderr
    assert "4 dead letters" in r.stdout and "reason=neo4j_refused" in r.stdout, r.stdout
    assert "schema_refused 1" in r.stdout
    r = cgw("dlq", "replay", "-c", sc.config_path, "--to-source", "--reason", "neo4j_refused")
    assert r.returncode == 0 and "would replay 1" in r.stdout, r.stdout + r.stderr
    assert len(read_topic(sc.receipt_topic)) == 5
    # The cause (the constraint) is gone: replayed, the refused receipt persists.
    r = cgw("dlq", "replay", "-c", sc.config_path, "--to-source", "--consumer", "receipt",
            "--reason", "neo4j_refused", "--execute")
    assert r.returncode == 0 and "replayed 1" in r.stdout, r.stdout + r.stderr
    again = read_topic(sc.receipt_topic)
    assert len(again) == 6 and again[-1][:2] == (b"dup-total", receipt(R, "same-total", "u2"))
    assert not any(k.startswith("cgw-dlq-") for k in again[-1][2])
    sc.start()
    sc.wait_drained("receipt")
    sc.stop()
    assert sorted(purchases(clean_graph)) == ["order:o-ok", "receipt:ok-1", "receipt:same-total"]


def state(sc, consumer):
    return next((c["state"] for c in sc.status()["consumers"] if c["name"] == consumer), None)


def test_unwritable_dead_letter_topic_makes_the_partition_wait(tmp_path, fakes, clean_graph, proto_classes):
    R = proto_classes["receipt"]
    sc = Scenario(tmp_path, fakes.ports)
    dlq = sc.receipt_topic + "-dlq"                  # not created yet: cannot be written
    with_consumer_keys(sc, "receipt", {"dlq_topic": dlq})
    produce(sc.receipt_topic, [(b"ok-1", receipt(R, "ok-1", "u1")), (b"bad", b"\xff garbage"),
                               (b"ok-2", receipt(R, "ok-2", "u2", retailer="R2"))])
    sc.start()
    sc.wait_for("waiting for the dead-letter topic",
                lambda: state(sc, "receipt") == "waiting_for_dead_letter_topic")
    assert sc.lag("receipt") == 3, "nothing of the batch is committed while its dead letter waits"
    create_topics([dlq], partitions=1)
    sc.wait_drained("receipt", timeout=120)
    letters = read_topic(dlq)
    assert [(k, v) for k, v, _ in letters][:1] == [(b"bad", b"\xff garbage")]
    assert len(sc.log_lines("Dead-letter topic cannot be written")) == 1
    assert len(sc.log_lines("Dead-letter topic written again")) == 1
    sc.stop()
    assert sorted(purchases(clean_graph)) == ["receipt:ok-1", "receipt:ok-2"]
