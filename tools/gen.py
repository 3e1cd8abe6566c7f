#!/usr/bin/env python3
# tools/gen.py: the data generator. Publishes realistic receipts.v1.ProcessedReceiptEvent or
# factoids.v1.Factoid records to Kafka with the production mix of contract section 2, and
# prints the ground truth: what the worker must count and what the graph must hold afterwards.
#
#   gen.py receipts -n N --seed S [--users U --products P --retailers R] [--bootstrap HOST:PORT]
#                   [--topic T] [--truth FILE] [--rollout-percentage P] [--actor-prefix 'User;']
#                   [--malformed K]
#                   [--duplicate-rate X] [--dump FILE] [--no-produce]
#   gen.py factoids (same) [--schema-id 1] [--incompatible-schema-id 2] [--unknown-schema-id 999]
#                   [--fido-count-mismatch X]
#   gen.py truth-union A.json B.json ...   graph counts after ingesting several runs together
#
# Design: one random.Random(seed) drives everything in a fixed order, and tools/pb.py encodes
# by hand, so the same arguments give the same bytes in the same order (Kafka partitioning:
# murmur2 on the key, as Java and Go producers do). Records stream through three steps:
# make (a dict per message) -> publish order (-n records, of which ~2 % are re-publications of
# an earlier record's exact bytes a little later, plus --malformed K broken records at seeded
# positions) -> a Truth accumulator that applies the contract's checks in their order, with an
# idempotency cache keyed like the worker's, and collects the graph per contract section 6.
# Products/retailers are "known" exactly when tools/catalogue.py (which the fakes serve) says so.
#
# Truth JSON (stdout; the --truth file adds "sets", which truth-union needs):
#   {"kind","seed","n","topic","rollout_percentage",
#    "published": every record sent, "republished": copies of an earlier record, "malformed": K,
#    "outcomes": {"persisted","digital","status","no_fidos","not_in_rollout","duplicate","error"}
#                (factoids: "source","type" instead of "digital","status"; every published record
#                counted once; a re-published copy counts where its original went, except that the
#                copy of a persisted record is a "duplicate"),
#    "errors": {kind: n}, "status_names" (receipts) / "types" (factoids): {name: n} of the skips,
#    "fido_count_mismatch" (factoids: SHOP ORDER_FINALIZED records, copies included, whose
#                fido_count differs from the items), "fido_count_mismatch_persisted",
#    "graph": {"nodes": {"User","Purchase","Product","Retailer","Category"},
#              "relationships": {"MADE","AT","CONTAINS","IN_CATEGORY","CHILD_OF"}},
#    "enrichment": {"products_known","products_unknown","retailers_known","retailers_unknown"},
#    "spot_checks": {"purchases": [{purchase_id, user_id, properties{...}, retailer_id|null,
#                                   contains: [{fido, line, quantity, unit_price_cents,
#                                               total_price_cents, description}]}],
#                    "products": [{fido, known, name?, brand?, categories, category?}],
#                    "retailers": [{retailer_id, known, name?, store_type?}],
#                    "skipped": [{id, reason}]}}
import argparse
import datetime
import json
import os
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import catalogue  # noqa: E402
import pb  # noqa: E402

ROLLOUT_FLAG = "consumer_graph_ingestion"
ACTOR_PREFIX = "User;"
FINISHED = 2
SHOP = 1
BASE_TIME = 1735689600  # 2025-01-01T00:00:00Z
GENERIC_LINES = ["BAG FEE", "BOTTLE DEPOSIT", "DELI ITEM", "PRODUCE", "MISC GROCERY", "COUPON",
                 "SALES TAX", "Crème brûlée (bakery)", "FLORAL"]


def in_rollout(user_id, pct, actor_prefix=ACTOR_PREFIX):
    """Flipper percentage_of_actors for one actor (docs/contract.md §4)."""
    if pct <= 0:
        return False
    if pct >= 100:
        return True
    crc = zlib.crc32((ROLLOUT_FLAG + actor_prefix + user_id).encode("utf-8"))
    return crc % 100000 < pct * 1000


def iso(ts):
    d = datetime.datetime.fromtimestamp(ts["seconds"], datetime.timezone.utc)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    nanos = ts.get("nanos", 0)
    return s + (f".{nanos:09d}".rstrip("0") if nanos else "") + "Z"


# ---- making messages --------------------------------------------------------------------------

class Maker:
    """Draws one message at a time from the seeded RNG."""

    def __init__(self, a):
        import random
        self.a = a
        self.rng = random.Random(a.seed)

    def uuid(self):
        h = "%032x" % self.rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) % 4]}{h[17:20]}-{h[20:]}"

    def user(self):
        return str(100000 + self.rng.randrange(self.a.users) + 1)

    def fido_num(self):
        return int(self.a.products * self.rng.random() ** 2) + 1  # popular products first

    def timestamp(self):
        nanos = 0 if self.rng.random() < 0.8 else self.rng.randrange(1, 1000) * 1_000_000
        return {"seconds": BASE_TIME + self.rng.randrange(365 * 86400), "nanos": nanos}

    def retailer_id(self):
        return catalogue.retailer_id(int(self.a.retailers * self.rng.random() ** 1.5) + 1)

    def receipt_items(self, with_fidos):
        r = self.rng
        items, fido_lines = [], []
        for i in range(min(30, 1 + int(r.expovariate(1 / 8)))):
            q = r.random()
            qty = 1.0 if q < 0.7 else float(r.randint(2, 6)) if q < 0.9 else round(r.uniform(0.1, 3), 3)
            unit = r.randint(49, 2999)
            it = {"line_number": i + 1, "quantity": qty, "unit_price_cents": unit,
                  "total_price_cents": round(qty * unit)}
            if with_fidos and r.random() < 0.85:
                if fido_lines and r.random() < 0.05:  # the same product on two lines
                    f = fido_lines[r.randrange(len(fido_lines))]
                else:
                    f = catalogue.fido(self.fido_num())
                it["fido"] = f
                fido_lines.append(f)
                p = catalogue.product(f)
                it["description"] = (p["name"] if p else f"ITEM {f}").upper()[:24]
                if r.random() < 0.6:
                    it["barcode"] = "%012d" % r.randrange(10 ** 12)
            else:
                it["description"] = r.choice(GENERIC_LINES)
            items.append(it)
        if with_fidos and not fido_lines:
            items[0]["fido"] = catalogue.fido(self.fido_num())
        return items

    def receipt(self):
        r = self.rng
        kind = r.random()
        digital = kind < 0.23
        bad_status = 0.23 <= kind < 0.32
        no_fidos = 0.32 <= kind < 0.51
        purchased = self.timestamp()
        m = {"receipt_id": self.uuid(), "user_id": self.user(),
             "status": r.choice([0, 1, 3, 4, 5]) if bad_status else
             (FINISHED if not digital or r.random() < 0.95 else 1),
             "purchased_at": purchased,
             "processed_at": {"seconds": purchased["seconds"] + r.randrange(60, 3 * 86400)}}
        x = r.random()
        if x >= 0.03:
            rid = "" if x < 0.11 else self.retailer_id()
            m["retailer"] = {"retailer_id": rid, "store_id": str(r.randrange(1, 5000)),
                             "name": r.choice(catalogue.RETAILER_NAMES).upper(),
                             "postal_code": "%05d" % r.randrange(100000)}
        m["items"] = self.receipt_items(with_fidos=not no_fidos)
        m["total_cents"] = sum(it["total_price_cents"] for it in m["items"])
        m["currency"] = "USD" if r.random() < 0.9 else "CAD"
        if digital:
            m["digital_receipt_data"] = {} if r.random() < 0.1 else {
                "source": r.choice(["EMAIL", "LINKED_ACCOUNT"]), "order_number": str(r.getrandbits(40))}
        elif r.random() < 0.8:
            m["physical_receipt_data"] = {"image_count": r.randint(1, 3), "ocr_engine": "ocr-7"}
        return m

    def factoid(self):
        r = self.rng
        m = {"factoid_id": self.uuid(), "user_id": self.user(), "occurred_at": self.timestamp()}
        if r.random() >= 0.10:  # not SHOP
            m["source"] = r.choices([2, 3, 4, 0], [70, 15, 12, 3])[0]
            m["type"] = r.choices(["MILESTONE_COMPLETED", "QUEST_COMPLETED", "RECEIPT_SCANNED",
                                   "FRIEND_JOINED", "ORDER_FINALIZED"], [40, 30, 15, 10, 5])[0]
            if m["source"] == 2:
                m["play_activity"] = {"game_id": f"g{r.randrange(50)}",
                                      "milestone_id": f"m{r.randrange(500)}",
                                      "points": r.randrange(1, 5000)}
            return m
        m["source"] = SHOP
        m["type"] = r.choices(["ORDER_FINALIZED", "ORDER_PENDING", "ORDER_CANCELLED",
                               "ORDER_REFUNDED"], [60, 20, 15, 5])[0]
        if m["type"] == "ORDER_FINALIZED" and r.random() < 0.01:
            return m  # no payload at all: no items, no fidos
        with_fidos = m["type"] != "ORDER_FINALIZED" or r.random() >= 0.67
        items = []
        for i in range(r.randint(0 if not with_fidos else 1, 15 if with_fidos else 5)):
            it = {"line_number": i + 1, "quantity": r.randint(1, 4), "unit_price_cents": r.randint(99, 9999)}
            if with_fidos and r.random() < 0.8:
                it["fido"] = (items[-1]["fido"] if items and "fido" in items[-1] and r.random() < 0.05
                              else catalogue.fido(self.fido_num()))
                p = catalogue.product(it["fido"])
                it["title"] = p["name"] if p else "Marketplace item"
            else:
                it["title"] = r.choice(["Gift card", "Shipping", "Marketplace item", "Café voucher"])
            items.append(it)
        if with_fidos and not any("fido" in it for it in items):
            items[0]["fido"] = catalogue.fido(self.fido_num())
        count = sum(1 for it in items if it.get("fido"))
        if m["type"] == "ORDER_FINALIZED" and r.random() < self.a.fido_count_mismatch:
            count = count + 1 if count == 0 or r.random() < 0.5 else count - 1
        rid = "" if r.random() < 0.1 else self.retailer_id()
        m["shop_order"] = {"order_id": "ord-" + "%016x" % r.getrandbits(64), "retailer_id": rid,
                           "total_cents": sum(it["quantity"] * it["unit_price_cents"] for it in items),
                           "currency": "USD", "fido_count": count, "items": items}
        return m

    # -- malformed records: every one would be persisted if its bytes were right
    def malformed(self, i, kind):
        r = self.rng
        if self.a.kind == "receipts":
            m = self.receipt_persistable()
            if kind == "random_bytes":  # wire type 7 on the first tag: no parser accepts it
                return f"malformed-{i}".encode(), b"\x0f" + r.randbytes(r.randint(10, 60)), None
            if kind == "truncated":
                m["physical_receipt_data"] = {"image_count": 1, "ocr_engine": "ocr-7"}
                return m["receipt_id"].encode(), pb.encode(pb.PROCESSED_RECEIPT_EVENT, m)[:-1], None
            m["receipt_id" if kind == "empty_receipt_id" else "user_id"] = ""
            return m["receipt_id"].encode(), pb.encode(pb.PROCESSED_RECEIPT_EVENT, m), m
        m = self.factoid_persistable()
        key = m["user_id"].encode()
        if kind == "bad_magic":
            return key, b'{"factoid_id":"' + r.randbytes(8).hex().encode() + b'"}', None
        if kind == "truncated":
            return key, pb.confluent_frame(pb.encode(pb.FACTOID, m)[:-1], self.a.schema_id), None
        if kind in ("unknown_schema_id", "incompatible_schema_id"):
            sid = self.a.unknown_schema_id if kind == "unknown_schema_id" else self.a.incompatible_schema_id
            return key, pb.confluent_frame(pb.encode(pb.FACTOID, m), sid), None
        m["factoid_id" if kind == "empty_factoid_id" else "user_id"] = ""
        return m["user_id"].encode(), pb.confluent_frame(pb.encode(pb.FACTOID, m), self.a.schema_id), m

    def receipt_persistable(self):
        m = self.receipt()
        m.pop("digital_receipt_data", None)
        m["status"] = FINISHED
        if not any(it.get("fido") for it in m["items"]):
            m["items"][0]["fido"] = catalogue.fido(self.fido_num())
        return m

    def factoid_persistable(self):
        m = {"factoid_id": self.uuid(), "user_id": self.user(), "source": SHOP,
             "type": "ORDER_FINALIZED", "occurred_at": self.timestamp()}
        f = catalogue.fido(self.fido_num())
        m["shop_order"] = {"order_id": "ord-" + "%016x" % self.rng.getrandbits(64),
                           "retailer_id": self.retailer_id(), "total_cents": 500, "currency": "USD",
                           "fido_count": 1, "items": [{"line_number": 1, "fido": f, "quantity": 1,
                                                       "unit_price_cents": 500, "title": "x"}]}
        return m


MALFORMED_KINDS = {
    "receipts": ["random_bytes", "truncated", "empty_receipt_id", "empty_user_id"],
    "factoids": ["bad_magic", "truncated", "empty_factoid_id", "empty_user_id",
                 "unknown_schema_id", "incompatible_schema_id"],
}


def records(a):
    """Yields (key, value, msg, info) in publish order; info = {"republished": bool,
    "malformed": kind|None}. msg is the decoded dict (None for undecodable bytes)."""
    mk = Maker(a)
    r = mk.rng
    # Positions of the malformed records among the n + K published.
    total = a.n + a.malformed
    bad_at = sorted(r.sample(range(total), a.malformed)) if a.malformed else []
    kinds = MALFORMED_KINDS[a.kind]
    pending = []  # [(due position, key, value, msg)]
    bad_i = 0
    for pos in range(total):
        if bad_i < len(bad_at) and bad_at[bad_i] == pos:
            kind = kinds[bad_i % len(kinds)]
            key, value, msg = mk.malformed(bad_i, kind)
            bad_i += 1
            yield key, value, msg, {"republished": False, "malformed": kind}
            continue
        if pending and pending[0][0] <= pos:
            _, key, value, msg = pending.pop(0)
            yield key, value, msg, {"republished": True, "malformed": None}
            continue
        if a.kind == "receipts":
            msg = mk.receipt()
            key, value = msg["receipt_id"].encode(), pb.encode(pb.PROCESSED_RECEIPT_EVENT, msg)
        else:
            msg = mk.factoid()
            key = msg["user_id"].encode()
            value = pb.confluent_frame(pb.encode(pb.FACTOID, msg), a.schema_id)
        if r.random() < a.duplicate_rate:
            pending.append((pos + r.randint(1, 200), key, value, msg))
            pending.sort(key=lambda p: p[0])
        yield key, value, msg, {"republished": False, "malformed": None}


# ---- ground truth -----------------------------------------------------------------------------

class Truth:
    def __init__(self, a):
        self.a = a
        rec = a.kind == "receipts"
        reasons = ["persisted", "digital", "status"] if rec else ["persisted", "source", "type"]
        self.outcomes = dict.fromkeys(reasons + ["no_fidos", "not_in_rollout", "duplicate", "error"], 0)
        self.errors, self.names = {}, {}
        self.published = self.republished = self.mismatch = self.mismatch_persisted = 0
        self.done = set()
        self.users, self.products, self.retailers = set(), set(), set()
        self.purchases = {}  # purchase_id -> [has AT (0/1), CONTAINS count]
        self.spot, self.skipped = [], {}

    def reason(self, msg):
        if self.a.kind == "receipts":
            items = msg.get("items", [])
            if "digital_receipt_data" in msg:
                return "digital", msg["receipt_id"]
            if msg.get("status", 0) != FINISHED:
                self.names[pb.RECEIPT_STATUS[msg.get("status", 0)]] = \
                    self.names.get(pb.RECEIPT_STATUS[msg.get("status", 0)], 0) + 1
                return "status", msg["receipt_id"]
            rid = msg["receipt_id"]
        else:
            if msg.get("source", 0) != SHOP:
                return "source", msg["factoid_id"]
            if msg.get("type", "") != "ORDER_FINALIZED":
                self.names[msg.get("type", "")] = self.names.get(msg.get("type", ""), 0) + 1
                return "type", msg["factoid_id"]
            so = msg.get("shop_order", {})
            items = so.get("items", [])
            fidos = sum(1 for it in items if it.get("fido"))
            if so.get("fido_count", 0) != fidos:
                self.mismatch += 1
            rid = msg["factoid_id"]
        if not any(it.get("fido") for it in items):
            return "no_fidos", rid
        if not in_rollout(msg["user_id"], self.a.rollout_percentage, self.a.actor_prefix):
            return "not_in_rollout", rid
        if rid in self.done:
            return "duplicate", rid
        return "persisted", rid

    def add(self, msg, info):
        self.published += 1
        self.republished += info["republished"]
        if info["malformed"]:
            self.outcomes["error"] += 1
            self.errors[info["malformed"]] = self.errors.get(info["malformed"], 0) + 1
            return
        reason, rid = self.reason(msg)
        self.outcomes[reason] += 1
        if reason != "persisted":
            self.skipped.setdefault(reason, rid)
            return
        self.done.add(rid)
        self.persist(msg)

    def persist(self, msg):
        if self.a.kind == "receipts":
            pid = "receipt:" + msg["receipt_id"]
            retailer = msg.get("retailer", {}).get("retailer_id", "")
            props = {"source": "receipt", "purchased_at": iso(msg["purchased_at"]),
                     "total_cents": msg.get("total_cents", 0), "currency": msg.get("currency", ""),
                     "receipt_id": msg["receipt_id"]}
            contains = [{"fido": it["fido"], "line": it["line_number"], "quantity": it["quantity"],
                         "unit_price_cents": it["unit_price_cents"],
                         "total_price_cents": it["total_price_cents"], "description": it["description"]}
                        for it in msg["items"] if it.get("fido")]
        else:
            so = msg["shop_order"]
            fidos = sum(1 for it in so["items"] if it.get("fido"))
            self.mismatch_persisted += so.get("fido_count", 0) != fidos
            pid = "order:" + so["order_id"]
            retailer = so.get("retailer_id", "")
            props = {"source": "shop_order", "purchased_at": iso(msg["occurred_at"]),
                     "total_cents": so.get("total_cents", 0), "currency": so.get("currency", ""),
                     "order_id": so["order_id"], "factoid_id": msg["factoid_id"]}
            contains = [{"fido": it["fido"], "line": it["line_number"], "quantity": it["quantity"],
                         "unit_price_cents": it["unit_price_cents"],
                         "total_price_cents": it["quantity"] * it["unit_price_cents"],
                         "description": it["title"]}
                        for it in so["items"] if it.get("fido")]
        self.users.add(msg["user_id"])
        self.purchases[pid] = [1 if retailer else 0, len(contains)]
        if retailer:
            self.retailers.add(retailer)
        self.products.update(c["fido"] for c in contains)
        fl = [c["fido"] for c in contains]
        interesting = (len(self.spot) < 3 or (len(set(fl)) < len(fl) and not any(s["_dupline"] for s in self.spot))
                       or (not retailer and not any(s["retailer_id"] is None for s in self.spot)))
        if interesting and len(self.spot) < 6:
            self.spot.append({"purchase_id": pid, "user_id": msg["user_id"], "properties": props,
                              "retailer_id": retailer or None, "contains": contains,
                              "_dupline": len(set(fl)) < len(fl)})

    def result(self, with_sets):
        g = graph_counts(self.users, self.purchases, self.products, self.retailers)
        known_p = sorted(f for f in self.products if catalogue.product(f))
        unknown_p = sorted(f for f in self.products if not catalogue.product(f))
        known_r = sorted(x for x in self.retailers if catalogue.retailer(x))
        unknown_r = sorted(x for x in self.retailers if not catalogue.retailer(x))
        pick = [f for f in known_p if len(catalogue.product(f)["categories"]) == 3][:2] + \
            [f for f in known_p if not catalogue.product(f)["categories"]][:1] + \
            [f for f in known_p if len(catalogue.product(f)["categories"]) == 1][:1] + unknown_p[:1]
        products = []
        for f in pick:
            p = catalogue.product(f)
            e = {"fido": f, "known": bool(p), "categories": p["categories"] if p else []}
            if p:
                e.update(name=p["name"], brand=p["brand"])
                if p["categories"]:
                    e["category"] = " > ".join(p["categories"])
            products.append(e)
        retailers = [dict({"retailer_id": x, "known": True}, **{k: v for k, v in catalogue.retailer(x).items()
                                                                  if k != "retailer_id"})
                     for x in known_r[:2]] + [{"retailer_id": x, "known": False} for x in unknown_r[:1]]
        a = self.a
        out = {"kind": a.kind, "seed": a.seed, "n": a.n, "topic": a.topic,
               "rollout_percentage": a.rollout_percentage, "published": self.published,
               "republished": self.republished, "malformed": a.malformed,
               "outcomes": self.outcomes, "errors": self.errors,
               ("status_names" if a.kind == "receipts" else "types"): self.names}
        if a.kind == "factoids":
            out["fido_count_mismatch"] = self.mismatch
            out["fido_count_mismatch_persisted"] = self.mismatch_persisted
        out.update(graph=g, enrichment={"products_known": len(known_p), "products_unknown": len(unknown_p),
                                        "retailers_known": len(known_r), "retailers_unknown": len(unknown_r)},
                   spot_checks={"purchases": [{k: v for k, v in s.items() if k != "_dupline"} for s in self.spot],
                                "products": products, "retailers": retailers,
                                "skipped": [{"id": v, "reason": k} for k, v in sorted(self.skipped.items())]})
        if with_sets:
            out["sets"] = {"users": sorted(self.users), "products": sorted(self.products),
                           "retailers": sorted(self.retailers), "purchases": self.purchases}
        return out


def graph_counts(users, purchases, products, retailers):
    """Contract section 6, from the sets of keys the persisted records touched."""
    categories, in_category = set(), 0
    for f in products:
        p = catalogue.product(f)
        if p and p["categories"]:
            in_category += 1
            categories.update(catalogue.category_paths(p["categories"]))
    return {"nodes": {"User": len(users), "Purchase": len(purchases), "Product": len(products),
                      "Retailer": len(retailers), "Category": len(categories)},
            "relationships": {"MADE": len(purchases), "AT": sum(v[0] for v in purchases.values()),
                              "CONTAINS": sum(v[1] for v in purchases.values()),
                              "IN_CATEGORY": in_category,
                              "CHILD_OF": sum(1 for c in categories if " > " in c)}}


def truth_union(paths):
    users, products, retailers, purchases = set(), set(), set(), {}
    for p in paths:
        with open(p, encoding="utf-8") as f:
            s = json.load(f)["sets"]
        users.update(s["users"])
        products.update(s["products"])
        retailers.update(s["retailers"])
        purchases.update(s["purchases"])
    return {"graph": graph_counts(users, purchases, products, retailers)}


# ---- Kafka ------------------------------------------------------------------------------------

def make_producer(a):
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    if a.topic not in admin.list_topics(timeout=10).topics:
        fut = admin.create_topics([NewTopic(a.topic, a.partitions, 1)])[a.topic]
        try:
            fut.result(15)
        except Exception as e:  # created concurrently by someone else: fine
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise
    return Producer({"bootstrap.servers": a.bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 20, "batch.num.messages": 10000, "partitioner": "murmur2_random",
                     "compression.type": a.compression})


def run(a):
    truth = Truth(a)
    producer = None if a.no_produce else make_producer(a)
    failed = []

    def on_delivery(err, _msg):
        if err is not None:
            failed.append(str(err))

    dump = open(a.dump, "w", encoding="utf-8") if a.dump else None
    for key, value, msg, info in records(a):
        truth.add(msg, info)
        if dump:
            dump.write(json.dumps({"key": key.hex(), "value": value.hex()}) + "\n")
        if producer is not None:
            while True:
                try:
                    producer.produce(a.topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
    if dump:
        dump.close()
    if producer is not None:
        left = producer.flush(120)
        if left or failed:
            sys.exit(f"gen: {left} records undelivered, {len(failed)} failed: {failed[:3]}")
    out = truth.result(with_sets=True)
    if a.truth:
        with open(a.truth, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, indent=1)
    del out["sets"]
    print(json.dumps(out, ensure_ascii=False, indent=1))
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Publish test records and print their ground truth.")
    sub = p.add_subparsers(dest="kind", required=True)
    for kind, topic in (("receipts", "ProcessedReceiptEvent"), ("factoids", "factoid-stream")):
        s = sub.add_parser(kind)
        s.add_argument("-n", type=int, required=True, help="records to publish, re-publications included")
        s.add_argument("--seed", type=int, default=1)
        s.add_argument("--users", type=int, default=5000)
        s.add_argument("--products", type=int, default=20000)
        s.add_argument("--retailers", type=int, default=200)
        s.add_argument("--bootstrap", default="127.0.0.1:9092")
        s.add_argument("--topic", default=topic)
        s.add_argument("--partitions", type=int, default=6, help="when the topic must be created")
        s.add_argument("--compression", default="none")
        s.add_argument("--truth", metavar="FILE", help="also write the truth (with sets) here")
        s.add_argument("--rollout-percentage", type=float, default=100.0,
                       help="percentage_of_actors of consumer_graph_ingestion the worker will see")
        s.add_argument("--actor-prefix", default=ACTOR_PREFIX, help="Flipper actor id = prefix + user_id")
        s.add_argument("--malformed", type=int, default=0, metavar="K", help="extra broken records")
        s.add_argument("--duplicate-rate", type=float, default=0.02)
        s.add_argument("--dump", metavar="FILE", help="write each record as JSON {key,value} hex lines")
        s.add_argument("--no-produce", action="store_true", help="do not touch Kafka")
        if kind == "factoids":
            s.add_argument("--schema-id", type=int, default=1)
            s.add_argument("--incompatible-schema-id", type=int, default=2)
            s.add_argument("--unknown-schema-id", type=int, default=999)
            s.add_argument("--fido-count-mismatch", type=float, default=0.02,
                           help="share of ORDER_FINALIZED whose fido_count disagrees with the items")
    u = sub.add_parser("truth-union")
    u.add_argument("files", nargs="+")
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    if a.kind == "truth-union":
        print(json.dumps(truth_union(a.files), indent=1))
        return
    if a.kind == "receipts":
        a.fido_count_mismatch = 0.0
    run(a)


if __name__ == "__main__":
    main()
