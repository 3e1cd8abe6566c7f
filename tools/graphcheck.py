#!/usr/bin/env python3
# tools/graphcheck.py: compare the Neo4j graph with a generator's ground truth (tools/gen.py
# --truth FILE), independently of the worker: it reads the graph with the official Neo4j
# Python driver and knows the model only from the contract (§6).
#
#   graphcheck.py --truth T.json [T2.json ...]   counts by label and type + spot checks; exit 1 on a difference
#   graphcheck.py --counts                       print the counts
#   graphcheck.py --wipe                         delete every node of the model (tests, demo)
#
# Used as a module by the end-to-end tests (tests/py) and by the demo (scripts/demo).
import argparse
import datetime
import json
import os
import sys

LABELS = ["User", "Purchase", "Product", "Retailer", "Category"]
TYPES = ["MADE", "AT", "CONTAINS", "IN_CATEGORY", "CHILD_OF"]


def driver(uri=None, password=None):
    from neo4j import GraphDatabase
    uri = uri or "bolt://127.0.0.1:%s" % os.environ.get("NEO4J_BOLT_PORT", "7687")
    password = password or os.environ.get("NEO4J_PASSWORD", "cgw-local-password")
    return GraphDatabase.driver(uri, auth=("neo4j", password))


def counts(drv):
    out = {"nodes": {}, "relationships": {}}
    with drv.session(database="neo4j") as s:
        for label in LABELS:
            out["nodes"][label] = s.run("MATCH (n:%s) RETURN count(n) AS c" % label).single()["c"]
        for t in TYPES:
            out["relationships"][t] = s.run("MATCH ()-[r:%s]->() RETURN count(r) AS c" % t).single()["c"]
    return out


def wipe(drv):
    """Delete the model's nodes in batches (a test needs an empty graph to count against).
    Relationships go first, 500 at a time: deleting counts against the stack's 64 MiB
    per-transaction memory, and a relationship may hold a 40 KB description."""
    with drv.session(database="neo4j") as s:
        for label in LABELS:
            while s.run("MATCH (:%s)-[r]-() WITH DISTINCT r LIMIT 500 DELETE r RETURN count(*) AS c"
                        % label).single()["c"]:
                pass
        for label in LABELS:
            while s.run("MATCH (n:%s) WITH n LIMIT 1000 DETACH DELETE n RETURN count(*) AS c"
                        % label).single()["c"]:
                pass


def union_graph(truths):
    """Expected counts when several truths went into one graph (their key sets are merged)."""
    if len(truths) == 1:
        return truths[0]["graph"]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gen  # noqa: E402
    users, products, retailers, purchases = set(), set(), set(), {}
    for t in truths:
        s = t["sets"]
        users.update(s["users"])
        products.update(s["products"])
        retailers.update(s["retailers"])
        purchases.update(s["purchases"])
    return gen.graph_counts(users, purchases, products, retailers)


def _iso(v):
    if isinstance(v, str):
        return v
    dt = v.to_native() if hasattr(v, "to_native") else v
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def spot_check(drv, truth):
    """Differences between the spot checks of a truth and the graph, as readable strings."""
    bad = []
    sc = truth.get("spot_checks", {})
    with drv.session(database="neo4j") as s:
        for p in sc.get("purchases", []):
            rec = s.run("MATCH (u:User)-[:MADE]->(p:Purchase {purchase_id: $id}) "
                        "OPTIONAL MATCH (p)-[:AT]->(r:Retailer) "
                        "RETURN u.user_id AS user, properties(p) AS props, r.retailer_id AS retailer",
                        id=p["purchase_id"]).single()
            if rec is None:
                bad.append("purchase %s missing" % p["purchase_id"])
                continue
            if rec["user"] != p["user_id"]:
                bad.append("purchase %s: user %r != %r" % (p["purchase_id"], rec["user"], p["user_id"]))
            if rec["retailer"] != p["retailer_id"]:
                bad.append("purchase %s: retailer %r != %r" % (p["purchase_id"], rec["retailer"], p["retailer_id"]))
            props = dict(rec["props"])
            for k, want in p["properties"].items():
                got = props.get(k)
                if want in ("", None):
                    if k in props:
                        bad.append("purchase %s: %s should be absent, is %r" % (p["purchase_id"], k, got))
                    continue
                if k == "purchased_at":
                    got, want = _iso(got), want.rstrip("Z").split(".")[0]
                if got != want:
                    bad.append("purchase %s: %s %r != %r" % (p["purchase_id"], k, got, want))
            lines = {r["line"]: r for r in s.run(
                "MATCH (:Purchase {purchase_id: $id})-[c:CONTAINS]->(pr:Product) "
                "RETURN c.line AS line, pr.fido AS fido, properties(c) AS props", id=p["purchase_id"])}
            if len(lines) != len(p["contains"]):
                bad.append("purchase %s: %d CONTAINS != %d" % (p["purchase_id"], len(lines), len(p["contains"])))
            for c in p["contains"]:
                got = lines.get(c["line"])
                if not got or got["fido"] != c["fido"]:
                    bad.append("purchase %s line %s: product %r != %r" % (
                        p["purchase_id"], c["line"], got and got["fido"], c["fido"]))
                    continue
                for k in ("quantity", "unit_price_cents", "total_price_cents", "description"):
                    want, have = c.get(k), got["props"].get(k)
                    if want in ("", None):
                        if have is not None:
                            bad.append("line %s: %s should be absent" % (c["line"], k))
                    elif have != want:
                        bad.append("purchase %s line %s: %s %r != %r" % (p["purchase_id"], c["line"], k, have, want))
        for pr in sc.get("products", []):
            rec = s.run("MATCH (p:Product {fido: $f}) OPTIONAL MATCH (p)-[:IN_CATEGORY]->(c:Category) "
                        "RETURN properties(p) AS props, collect(c.path) AS cats", f=pr["fido"]).single()
            if rec is None:
                bad.append("product %s missing" % pr["fido"])
                continue
            props = rec["props"]
            for k in ("name", "brand"):
                want = pr.get(k) if pr["known"] else None
                if props.get(k) != want:
                    bad.append("product %s: %s %r != %r" % (pr["fido"], k, props.get(k), want))
            want_cats = [pr["category"]] if pr.get("category") else []
            if rec["cats"] != want_cats:
                bad.append("product %s: category %r != %r" % (pr["fido"], rec["cats"], want_cats))
        for rt in sc.get("retailers", []):
            rec = s.run("MATCH (r:Retailer {retailer_id: $id}) RETURN properties(r) AS props",
                        id=rt["retailer_id"]).single()
            if rec is None:
                bad.append("retailer %s missing" % rt["retailer_id"])
                continue
            for k in ("name", "store_type"):
                want = rt.get(k) if rt["known"] else None
                if rec["props"].get(k) != want:
                    bad.append("retailer %s: %s %r != %r" % (rt["retailer_id"], k, rec["props"].get(k), want))
        for sk in sc.get("skipped", []):
            if sk["reason"] == "duplicate":  # its first copy was persisted
                continue
            pid = ("receipt:" if truth["kind"] == "receipts" else "") + sk["id"]
            if truth["kind"] == "receipts" and s.run("MATCH (p:Purchase {purchase_id: $id}) RETURN p",
                                                     id=pid).single():
                bad.append("skipped (%s) %s was persisted" % (sk["reason"], pid))
    return bad


def compare(drv, truths):
    expected = union_graph(truths)
    got = counts(drv)
    bad = []
    for kind in ("nodes", "relationships"):
        for k, v in expected[kind].items():
            if got[kind].get(k) != v:
                bad.append("%s %s: graph %s, truth %s" % (kind, k, got[kind].get(k), v))
    for t in truths:
        bad += spot_check(drv, t)
    return got, bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--truth", nargs="+", metavar="FILE")
    ap.add_argument("--counts", action="store_true")
    ap.add_argument("--wipe", action="store_true")
    a = ap.parse_args(argv)
    drv = driver()
    try:
        if a.wipe:
            wipe(drv)
        if a.counts:
            print(json.dumps(counts(drv), indent=1))
        if a.truth:
            truths = [json.load(open(f)) for f in a.truth]
            got, bad = compare(drv, truths)
            print(json.dumps(got, indent=1))
            for b in bad:
                print("DIFF", b)
            print("graph matches the ground truth" if not bad else "%d differences" % len(bad))
            return 1 if bad else 0
    finally:
        drv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
