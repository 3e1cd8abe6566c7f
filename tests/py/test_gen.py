# tests/py/test_gen.py: tools/gen.py and tools/pb.py. The generator's bytes parse with the
# official `protobuf` runtime against the contract .proto files (and re-serialize to the same
# bytes); the same seed gives the same bytes; the ground truth matches a second, independent
# computation from the bytes alone (decoded by `protobuf`, not by pb.py, contract rules
# re-implemented here); and, when the stack's Kafka runs, what gen.py publishes is what was
# dumped (read back from a throw-away topic, deleted afterwards).
import collections
import json
import os
import struct
import subprocess
import sys
import time
import uuid
import zlib

import catalogue
import gen
import pb
import pytest
from conftest import TOOLS
from google.protobuf.message import DecodeError


def run_gen(tmp_path, kind, *args):
    dump, truth = tmp_path / f"{kind}.jsonl", tmp_path / f"{kind}.truth.json"
    out = subprocess.run([sys.executable, os.path.join(TOOLS, "gen.py"), kind, "--no-produce",
                          "--dump", str(dump), "--truth", str(truth), *args],
                         check=True, capture_output=True, text=True).stdout
    recs = [(bytes.fromhex(d["key"]), bytes.fromhex(d["value"]))
            for d in map(json.loads, dump.read_text().splitlines())]
    return recs, json.loads(truth.read_text()), json.loads(out)


# ---- pb.py against protobuf ----

def test_pb_roundtrip_against_protobuf(proto_classes):
    msg = {"receipt_id": "r-1", "user_id": "é", "status": 2,
           "purchased_at": {"seconds": 1700000000, "nanos": 5}, "total_cents": -7,
           "items": [{"line_number": 1, "quantity": 0.5, "fido": "F000001", "unit_price_cents": 1 << 40},
                     {"line_number": 2}],
           "digital_receipt_data": {}}
    b = pb.encode(pb.PROCESSED_RECEIPT_EVENT, msg)
    m = proto_classes["receipt"].FromString(b)
    assert m.HasField("digital_receipt_data") and not m.HasField("physical_receipt_data")
    assert m.items[0].unit_price_cents == 1 << 40 and m.total_cents == -7 and m.user_id == "é"
    assert m.SerializeToString() == b
    assert pb.decode(pb.PROCESSED_RECEIPT_EVENT, b) == msg
    f = proto_classes["factoid"](factoid_id="x", user_id="u", source=1, type="ORDER_FINALIZED")
    f.shop_order.fido_count = -1
    f.shop_order.items.add(line_number=1, fido="F1", quantity=3)
    fb = f.SerializeToString()
    d = pb.decode(pb.FACTOID, fb)
    assert d["shop_order"]["fido_count"] == -1 and pb.encode(pb.FACTOID, d) == fb


def test_confluent_frame():
    assert pb.confluent_frame(b"xy", 1) == b"\x00\x00\x00\x00\x01\x00xy"
    assert pb.confluent_frame(b"", 258, [1]) == b"\x00\x00\x00\x01\x02\x02\x02"
    assert pb.confluent_frame(b"", 1, [0, 1])[5:] == b"\x04\x00\x02"
    assert pb.confluent_unframe(pb.confluent_frame(b"z", 7, [2, 0, 3])) == (7, [2, 0, 3], b"z")
    with pytest.raises(pb.DecodeError):
        pb.confluent_unframe(b"\x01\x00\x00\x00\x01\x00")


# ---- the generator's bytes ----

def test_receipts_parse_with_protobuf(tmp_path, proto_classes):
    recs, truth, _ = run_gen(tmp_path, "receipts", "-n", "600", "--seed", "11", "--malformed", "8")
    bad = 0
    for key, value in recs:
        try:
            m = proto_classes["receipt"].FromString(value)
        except DecodeError:
            bad += 1
            continue
        assert m.SerializeToString() == value  # canonical field order, like protobuf itself
        assert key == m.receipt_id.encode()
        d = pb.decode(pb.PROCESSED_RECEIPT_EVENT, value)
        assert pb.encode(pb.PROCESSED_RECEIPT_EVENT, d) == value
        assert d.get("user_id", "") == m.user_id and len(d["items"]) == len(m.items)
        lines = [it.line_number for it in m.items]
        assert 1 <= len(lines) <= 30 and lines == list(range(1, len(lines) + 1))
    assert bad == truth["errors"]["random_bytes"] + truth["errors"]["truncated"] == 4


def test_factoids_parse_with_protobuf(tmp_path, proto_classes):
    recs, truth, _ = run_gen(tmp_path, "factoids", "-n", "800", "--seed", "11", "--malformed", "12")
    ids = collections.Counter()
    bad = 0
    for key, value in recs:
        if value[:1] != b"\x00":
            bad += 1
            continue
        sid, idx, payload = pb.confluent_unframe(value)
        ids[sid] += 1
        assert idx == [0] and value[5] == 0
        try:
            m = proto_classes["factoid"].FromString(payload)
        except DecodeError:
            bad += 1
            continue
        assert m.SerializeToString() == payload and key == m.user_id.encode()
    assert bad == 4 and ids[999] == 2 and ids[2] == 2
    assert truth["errors"] == {k: 2 for k in gen.MALFORMED_KINDS["factoids"]}


def test_same_seed_same_bytes(tmp_path):
    for d in "abc":
        (tmp_path / d).mkdir()
    a = run_gen(tmp_path / "a", "receipts", "-n", "300", "--seed", "4", "--malformed", "3")
    b = run_gen(tmp_path / "b", "receipts", "-n", "300", "--seed", "4", "--malformed", "3")
    c = run_gen(tmp_path / "c", "receipts", "-n", "300", "--seed", "5", "--malformed", "3")
    assert a[0] == b[0] and a[1] == b[1] and a[0] != c[0]
    assert len(a[0]) == 303 and a[1]["published"] == 303


# ---- the truth, computed independently from the bytes ----

def rollout(user_id, pct):
    if pct >= 100:
        return True
    return pct > 0 and zlib.crc32(f"consumer_graph_ingestionUser;{user_id}".encode()) % 100000 < pct * 1000


def independent_truth(kind, recs, classes, pct):
    out = collections.Counter()
    done, users, retailers, products, purchases = set(), set(), set(), set(), {}
    contains = at = 0
    for _, value in recs:
        try:
            if kind == "receipts":
                m = classes["receipt"].FromString(value)
                rid = m.receipt_id
            else:
                if len(value) < 6 or value[0] != 0 or struct.unpack(">i", value[1:5])[0] != 1 or value[5] != 0:
                    raise DecodeError("framing/schema")
                m = classes["factoid"].FromString(value[6:])
                rid = m.factoid_id
        except DecodeError:
            out["error"] += 1
            continue
        if not rid or not m.user_id:
            out["error"] += 1
            continue
        if kind == "receipts":
            items = m.items
            if m.HasField("digital_receipt_data"):
                out["digital"] += 1
                continue
            if m.status != 2:
                out["status"] += 1
                continue
        else:
            items = m.shop_order.items
            if m.source != 1:
                out["source"] += 1
                continue
            if m.type != "ORDER_FINALIZED":
                out["type"] += 1
                continue
        fidos = [it.fido for it in items if it.fido]
        if not fidos:
            out["no_fidos"] += 1
        elif not rollout(m.user_id, pct):
            out["not_in_rollout"] += 1
        elif rid in done:
            out["duplicate"] += 1
        else:
            done.add(rid)
            out["persisted"] += 1
            users.add(m.user_id)
            r = m.retailer.retailer_id if kind == "receipts" else m.shop_order.retailer_id
            pid = ("receipt:" + m.receipt_id) if kind == "receipts" else ("order:" + m.shop_order.order_id)
            assert pid not in purchases
            purchases[pid] = 1
            if r:
                retailers.add(r)
                at += 1
            contains += len(fidos)
            products.update(fidos)
    cats = set()
    in_cat = 0
    for f in products:
        p = catalogue.product(f)
        if p and p["categories"]:
            in_cat += 1
            for i in range(len(p["categories"])):
                cats.add(tuple(p["categories"][:i + 1]))
    graph = {"nodes": {"User": len(users), "Purchase": len(purchases), "Product": len(products),
                       "Retailer": len(retailers), "Category": len(cats)},
             "relationships": {"MADE": len(purchases), "AT": at, "CONTAINS": contains,
                               "IN_CATEGORY": in_cat, "CHILD_OF": sum(1 for c in cats if len(c) >= 2)}}
    return out, graph


@pytest.mark.parametrize("kind,pct", [("receipts", 100), ("receipts", 30), ("factoids", 100),
                                      ("factoids", 45.5)])
def test_truth_matches_independent_computation(tmp_path, proto_classes, kind, pct):
    recs, truth, printed = run_gen(tmp_path, kind, "-n", "3000", "--seed", "21", "--malformed", "6",
                                   "--rollout-percentage", str(pct), "--users", "400")
    outcomes, graph = independent_truth(kind, recs, proto_classes, pct)
    assert {k: v for k, v in truth["outcomes"].items() if v} == dict(outcomes)
    assert truth["graph"] == graph
    assert sum(truth["outcomes"].values()) == truth["published"] == len(recs) == 3006
    assert (truth["outcomes"]["not_in_rollout"] > 0) == (pct < 100)
    assert "sets" not in printed and printed["graph"] == truth["graph"]


def test_production_mix(tmp_path):
    _, t, _ = run_gen(tmp_path, "receipts", "-n", "20000", "--seed", "2")
    o, n = t["outcomes"], t["published"] - t["republished"]
    assert abs(o["digital"] / t["published"] - 0.23) < 0.015
    assert abs(o["status"] / t["published"] - 0.09) < 0.01
    assert abs(o["no_fidos"] / t["published"] - 0.19) < 0.015
    assert 0.015 < t["republished"] / n < 0.025 and o["duplicate"] > 0
    assert t["graph"]["nodes"]["Category"] == t["graph"]["relationships"]["CHILD_OF"] + len(catalogue.CATEGORY_TREE)
    assert t["enrichment"]["products_unknown"] > 0 and t["enrichment"]["retailers_unknown"] > 0
    _, f, _ = run_gen(tmp_path, "factoids", "-n", "20000", "--seed", "2")
    fo = f["outcomes"]
    assert abs(fo["source"] / f["published"] - 0.90) < 0.015
    finalized = fo["no_fidos"] + fo["persisted"] + fo["duplicate"] + fo["not_in_rollout"]
    assert abs(fo["no_fidos"] / finalized - 0.67) < 0.05
    assert f["fido_count_mismatch"] > 0


def test_spot_checks_are_consistent(tmp_path, proto_classes):
    recs, t, _ = run_gen(tmp_path, "receipts", "-n", "2000", "--seed", "8")
    by_id = {}
    for _, v in recs:
        m = proto_classes["receipt"].FromString(v)
        by_id["receipt:" + m.receipt_id] = m
    sc = t["spot_checks"]
    assert any(p["retailer_id"] is None for p in sc["purchases"])
    assert any(len({c["fido"] for c in p["contains"]}) < len(p["contains"]) for p in sc["purchases"])
    for p in sc["purchases"]:
        m = by_id[p["purchase_id"]]
        assert p["properties"]["total_cents"] == m.total_cents and p["user_id"] == m.user_id
        assert p["properties"]["purchased_at"].startswith(m.purchased_at.ToJsonString()[:19])
        assert [c["line"] for c in p["contains"]] == [it.line_number for it in m.items if it.fido]
    assert {p["known"] for p in sc["products"]} == {True, False}
    for p in sc["products"]:
        assert p["known"] == (catalogue.product(p["fido"]) is not None)
    reasons = {s["reason"] for s in sc["skipped"]}
    assert {"digital", "status", "no_fidos", "duplicate"} <= reasons
    for s in sc["skipped"]:
        assert "receipt:" + s["id"] not in {p["purchase_id"] for p in sc["purchases"]}


def test_truth_union(tmp_path):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir()
    d2.mkdir()
    _, a, _ = run_gen(d1, "receipts", "-n", "500", "--seed", "1", "--users", "50")
    _, b, _ = run_gen(d2, "factoids", "-n", "3000", "--seed", "1", "--users", "50")
    out = json.loads(subprocess.run([sys.executable, os.path.join(TOOLS, "gen.py"), "truth-union",
                                     str(d1 / "receipts.truth.json"), str(d2 / "factoids.truth.json")],
                                    check=True, capture_output=True, text=True).stdout)
    g, ga, gb = out["graph"], a["graph"], b["graph"]
    assert g["nodes"]["Purchase"] == ga["nodes"]["Purchase"] + gb["nodes"]["Purchase"]
    assert g["relationships"]["CONTAINS"] == ga["relationships"]["CONTAINS"] + gb["relationships"]["CONTAINS"]
    users = set(a["sets"]["users"]) | set(b["sets"]["users"])
    assert g["nodes"]["User"] == len(users) < ga["nodes"]["User"] + gb["nodes"]["User"]


# ---- Kafka ----

def test_publish_to_kafka(tmp_path, kafka_bootstrap):
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient
    topic = "cgw-test-gen-" + uuid.uuid4().hex[:8]
    dump = tmp_path / "d.jsonl"
    try:
        out = subprocess.run([sys.executable, os.path.join(TOOLS, "gen.py"), "factoids", "-n", "500",
                              "--seed", "3", "--malformed", "6", "--topic", topic, "--partitions", "3",
                              "--bootstrap", kafka_bootstrap, "--dump", str(dump)],
                             check=True, capture_output=True, text=True, timeout=120).stdout
        assert json.loads(out)["published"] == 506
        want = collections.Counter((bytes.fromhex(d["key"]), bytes.fromhex(d["value"]))
                                   for d in map(json.loads, dump.read_text().splitlines()))
        c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": topic,
                      "auto.offset.reset": "earliest", "enable.auto.commit": False})
        c.subscribe([topic])
        got, per_key_order = collections.Counter(), {}
        deadline = time.time() + 60
        while sum(got.values()) < 506 and time.time() < deadline:
            msg = c.poll(1.0)
            if msg is None or msg.error():
                continue
            got[(msg.key() or b"", msg.value())] += 1
            per_key_order.setdefault(msg.key(), set()).add(msg.partition())
        c.close()
        assert got == want
        assert all(len(p) == 1 for p in per_key_order.values())  # a key stays on one partition
    finally:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        admin.delete_topics([topic])[topic].result(30)
        try:
            admin.delete_consumer_groups([topic])[topic].result(30)
        except Exception:  # the group may never have been created
            pass
