# tests/py/test_e2e_poison.py: records that must never merge, block or vanish, end to end
# against the real stack with the real cgw binary (issue 10, items 2-4).
#
# - strings are what the wire says: ids holding U+0000 are errors, never cut at the NUL
#   (before the fix "r1\0aaa" and "r1\0bbb" both became receipt:r1);
import os
import time

import pytest

from cgw_worker import BOOTSTRAP, Scenario
import graphcheck


@pytest.fixture(scope="module")
def neo4j():
    drv = graphcheck.driver()
    yield drv
    drv.close()


@pytest.fixture
def clean_graph(neo4j):
    graphcheck.wipe(neo4j)
    return neo4j


def receipt(cls, rid, user, fidos=("F1",), retailer="R1", lines=None):
    """A FINISHED paper receipt (protobuf bytes) with one line per fido."""
    m = cls()
    m.receipt_id, m.user_id, m.status, m.total_cents, m.currency = rid, user, 2, 100, "USD"
    m.retailer.retailer_id = retailer
    m.purchased_at.seconds = 1700000000
    for i, f in enumerate(fidos if lines is None else ["F%d" % (k % 500) for k in range(lines)]):
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
