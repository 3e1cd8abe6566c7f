#!/usr/bin/env python3
# bench/e2e/preload.py: `scripts/bench-e2e --preload N` -- the benchmark on a big graph.
#
# What: N purchases (1 000 000 for the target) already in Neo4j before the measured
# runs, shaped like production and like the benchmark's own records: every User, Product,
# Retailer and Category of tools/gen.py's id spaces (users 100001.., fidos F000001..,
# retailers via tools/catalogue.py, with the metadata the fakes serve and the IN_CATEGORY /
# CHILD_OF links the worker would write), and N purchases over them (gen.py's skew: popular
# products and retailers first), each with its MADE, AT (89 %) and ~7 CONTAINS lines. Their
# ids are `receipt:pre-<i>`, so no benchmark record collides with them, and since every node
# the benchmark's records name is already there, a run adds only Purchases, MADE, AT and
# CONTAINS: the graph after a run is the preloaded baseline plus exactly the truth's purchases
# (compare()), and deleting those purchases restores the baseline (restore()) between the e2e
# run and the ceiling.
#
# How (the load is timed and reported):
#   import  (default) CSV files under var/bench/preload/ (written once per N and seed, kept),
#           then Neo4j stopped, `neo4j-admin database import full` into the stack's database
#           (`scripts/stack neo4j-admin`), Neo4j started again and the model's constraints
#           created. The only way to a million purchases in minutes on this machine: the
#           offline importer writes the store files directly.
#   cypher  the official Python driver, UNWIND batches of plain CREATEs (the ids are known to
#           be new), rows as parallel lists, one transaction per 500 purchases (under the
#           stack's 64 MiB per-transaction cap). Leaves the stack running, but is no faster
#           than the worker itself: measured 207 purchases/s on the 2-core machine at load 17,
#           i.e. over an hour for a million.
#
# Reuse: the loaded state is recorded in var/bench/preload.json (N, seed, the counts by label
# and type). A later run whose graph has exactly those counts reuses it as it is; anything
# else wipes the graph and loads again. The preload stays in Neo4j after the benchmark:
# `bench/e2e/preload.py --empty` replaces the database by an empty one in a minute or two
# (Neo4j restarted; graphcheck.wipe, which the tests use, would take hours on a million
# purchases), as the tests want it. A dump/load with
# neo4j-admin would need Neo4j stopped (Community has one database and no STOP DATABASE),
# which the benchmark never does to the stack.
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import catalogue  # noqa: E402
import graphcheck  # noqa: E402

STATE = os.path.join(ROOT, "var", "bench", "preload.json")
PREFIX = "receipt:pre-"
USERS, PRODUCTS, RETAILERS = 5000, 20000, 200     # tools/gen.py's defaults
GROWING = ("Purchase", "MADE", "AT", "CONTAINS")  # what a benchmark run adds
TX_PURCHASES = 500


def add_arguments(ap):
    ap.add_argument("--preload", type=int, default=0, metavar="N",
                    help="run on a graph holding N production-like purchases (bench/e2e/preload.py)")
    ap.add_argument("--preload-method", choices=["import", "cypher"], default="import",
                    help="neo4j-admin import (stops and starts Neo4j) or UNWIND CREATE through the driver")


def flat(counts):
    return dict(("n:" + k, v) for k, v in counts["nodes"].items()) | \
        dict(("r:" + k, v) for k, v in counts["relationships"].items())


# ---- the universe: every node a benchmark record can name -------------------------------------

def universe_rows():
    products, categories = [], {}
    for n in range(1, PRODUCTS + 1):
        f = catalogue.fido(n)
        p = catalogue.product(f)
        cats = p["categories"] if p else []
        for depth, path in enumerate(catalogue.category_paths(cats), 1):
            categories[path] = (cats[depth - 1], depth)
        products.append({"fido": f, "name": p and p["name"], "brand": p and p["brand"],
                         "category": " > ".join(cats) if cats else None})
    cats = [{"path": k, "name": v[0], "depth": v[1], "parent": k.rsplit(" > ", 1)[0] if v[1] > 1 else None}
            for k, v in sorted(categories.items())]
    retailers = []
    for n in range(1, RETAILERS + 1):
        rid = catalogue.retailer_id(n)
        r = catalogue.retailer(rid)
        retailers.append({"id": rid, "name": r and r["name"], "type": r and r["store_type"]})
    users = [str(100000 + i) for i in range(1, USERS + 1)]
    return cats, products, retailers, users


def load_universe(s):
    cats, products, retailers, users = universe_rows()
    s.run("UNWIND $rows AS r CREATE (:Category {path: r.path, name: r.name, depth: r.depth})", rows=cats).consume()
    s.run("UNWIND $rows AS r MATCH (c:Category {path: r.path}), (p:Category {path: r.parent}) "
          "CREATE (c)-[:CHILD_OF]->(p)", rows=[c for c in cats if c["parent"]]).consume()
    for i in range(0, len(products), 5000):
        s.run("UNWIND $rows AS r CREATE (p:Product {fido: r.fido}) SET p.name = r.name, p.brand = r.brand "
              "WITH p, r WHERE r.category IS NOT NULL MATCH (c:Category {path: r.category}) "
              "CREATE (p)-[:IN_CATEGORY]->(c)", rows=products[i:i + 5000]).consume()
    s.run("UNWIND $rows AS r CREATE (s:Retailer {retailer_id: r.id}) SET s.name = r.name, s.store_type = r.type",
          rows=retailers).consume()
    s.run("UNWIND $rows AS u CREATE (:User {user_id: u})", rows=users).consume()


# ---- the purchases ----------------------------------------------------------------------------

PURCHASES_Q = (
    "UNWIND $rows AS r "
    "MATCH (u:User {user_id: r[1]}) "
    "CREATE (u)-[:MADE]->(p:Purchase {purchase_id: r[0], receipt_id: substring(r[0], 8), source: 'receipt', "
    "  purchased_at: datetime({epochSeconds: r[3]}), total_cents: r[4], currency: 'USD'}) "
    "WITH p, r "
    "CALL (p, r) { UNWIND CASE WHEN r[2] IS NULL THEN [] ELSE [r[2]] END AS rid "
    "  MATCH (s:Retailer {retailer_id: rid}) CREATE (p)-[:AT]->(s) } "
    "WITH p, r "
    "UNWIND range(0, size(r[5]) - 1) AS k "
    "MATCH (pr:Product {fido: r[5][k]}) "
    "CREATE (p)-[:CONTAINS {line: k + 1, quantity: r[6][k], unit_price_cents: r[7][k], "
    "  total_price_cents: toInteger(round(r[6][k] * r[7][k]))}]->(pr)")


def purchase_rows(rng, start, n):
    """gen.py's shapes: user uniform, products skewed (rank ~ U^2), ~7 lines, 89 % with a retailer."""
    rows = []
    for i in range(start, start + n):
        lines = min(30, 1 + int(rng.expovariate(1 / 8)))
        fidos = ["F%06d" % (int(PRODUCTS * rng.random() ** 2) + 1) for _ in range(lines)]
        qty = [1.0 if rng.random() < 0.7 else float(rng.randint(2, 6)) for _ in range(lines)]
        unit = [rng.randint(49, 2999) for _ in range(lines)]
        rid = None if rng.random() < 0.11 else catalogue.retailer_id(int(RETAILERS * rng.random() ** 1.5) + 1)
        rows.append([PREFIX + str(i), str(100001 + rng.randrange(USERS)), rid,
                     1735689600 - rng.randrange(3 * 365 * 86400), rng.randint(100, 50000), fidos, qty, unit])
    return rows


# ---- neo4j-admin import ------------------------------------------------------------------------

CSV_DIR = os.path.join(ROOT, "var", "bench", "preload")
HEADERS = {
    "users": ["user_id:ID(User)"],
    "products": ["fido:ID(Product)", "name", "brand"],
    "categories": ["path:ID(Category)", "name", "depth:long"],
    "retailers": ["retailer_id:ID(Retailer)", "name", "store_type"],
    "purchases": ["purchase_id:ID(Purchase)", "receipt_id", "source", "purchased_at:datetime",
                  "total_cents:long", "currency"],
    "made": [":START_ID(User)", ":END_ID(Purchase)"],
    "at": [":START_ID(Purchase)", ":END_ID(Retailer)"],
    "contains": [":START_ID(Purchase)", ":END_ID(Product)", "line:long", "quantity:double",
                 "unit_price_cents:long", "total_price_cents:long"],
    "in_category": [":START_ID(Product)", ":END_ID(Category)"],
    "child_of": [":START_ID(Category)", ":END_ID(Category)"],
}
NODE_FILES = {"User": "users", "Product": "products", "Category": "categories", "Retailer": "retailers",
              "Purchase": "purchases"}
REL_FILES = {"MADE": "made", "AT": "at", "CONTAINS": "contains", "IN_CATEGORY": "in_category",
             "CHILD_OF": "child_of"}
SCHEMA = [("cgw_user_id", "User", "user_id"), ("cgw_purchase_id", "Purchase", "purchase_id"),
          ("cgw_product_fido", "Product", "fido"), ("cgw_retailer_id", "Retailer", "retailer_id"),
          ("cgw_category_path", "Category", "path")]   # src/graph/graph.c's constraints


def write_csv(n, seed):
    import csv
    import datetime
    os.makedirs(CSV_DIR, exist_ok=True)
    stamp = os.path.join(CSV_DIR, "stamp.json")
    try:
        with open(stamp) as f:
            if json.load(f) == {"n": n, "seed": seed}:
                return False
    except (OSError, ValueError):
        pass
    files = {k: open(os.path.join(CSV_DIR, k + ".csv"), "w", newline="") for k in HEADERS}
    w = {k: csv.writer(f) for k, f in files.items()}
    for k, h in HEADERS.items():
        w[k].writerow(h)
    cats, products, retailers, users = universe_rows()
    for c in cats:
        w["categories"].writerow([c["path"], c["name"], c["depth"]])
        if c["parent"]:
            w["child_of"].writerow([c["path"], c["parent"]])
    for p in products:
        w["products"].writerow([p["fido"], p["name"] or "", p["brand"] or ""])
        if p["category"]:
            w["in_category"].writerow([p["fido"], p["category"]])
    for r in retailers:
        w["retailers"].writerow([r["id"], r["name"] or "", r["type"] or ""])
    for u in users:
        w["users"].writerow([u])
    rng = random.Random(seed)
    for start in range(0, n, 10000):
        for pid, uid, rid, ts, total, fidos, qty, unit in purchase_rows(rng, start, min(10000, n - start)):
            at = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            w["purchases"].writerow([pid, pid[len("receipt:"):], "receipt", at, total, "USD"])
            w["made"].writerow([uid, pid])
            if rid:
                w["at"].writerow([pid, rid])
            for k, f in enumerate(fidos):
                w["contains"].writerow([pid, f, k + 1, qty[k], unit[k], round(qty[k] * unit[k])])
    for f in files.values():
        f.close()
    with open(stamp, "w") as f:
        json.dump({"n": n, "seed": seed}, f)
    return True


def stack(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "stack")] + list(args), check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)


def import_offline(drv, n, seed, say):
    t0 = time.time()
    fresh = write_csv(n, seed)
    t_csv = time.time() - t0
    say("  CSV files %s in %.0f s" % ("written" if fresh else "reused", t_csv))
    t1 = time.time()
    stack("down", "neo4j")
    args = ["neo4j-admin", "database", "import", "full", "neo4j", "--overwrite-destination",
            "--ignore-empty-strings=true", "--threads=2",
            "--report-file=" + os.path.join(CSV_DIR, "import.report")]
    args += ["--nodes=%s=%s" % (label, os.path.join(CSV_DIR, f + ".csv")) for label, f in NODE_FILES.items()]
    args += ["--relationships=%s=%s" % (t, os.path.join(CSV_DIR, f + ".csv")) for t, f in REL_FILES.items()]
    log = os.path.join(CSV_DIR, "import.log")
    with open(log, "w") as f:
        r = subprocess.run([os.path.join(ROOT, "scripts", "stack")] + args, cwd=ROOT, stdout=f, stderr=f)
    t_import = time.time() - t1
    stack("up", "neo4j")
    if r.returncode != 0:
        raise SystemExit("neo4j-admin import failed; see %s" % log)
    t2 = time.time()
    with drv.session(database="neo4j") as s:
        for name, label, key in SCHEMA:
            s.run("CREATE CONSTRAINT %s IF NOT EXISTS FOR (n:%s) REQUIRE n.%s IS UNIQUE" % (name, label, key)).consume()
        s.run("CALL db.awaitIndexes(600)").consume()
    say("  neo4j-admin import %.0f s (Neo4j stopped and started included), constraints %.0f s"
        % (t_import, time.time() - t2))
    return {"csv_seconds": round(t_csv, 1), "import_seconds": round(t_import, 1),
            "constraints_seconds": round(time.time() - t2, 1)}


def empty_offline(say=print):
    """An empty database in seconds whatever the graph held (graphcheck.wipe deletes 500
    relationships a transaction: hours for a preloaded million), by importing nothing."""
    d = os.path.join(CSV_DIR, "empty")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "users.csv"), "w") as f:
        f.write(HEADERS["users"][0] + "\n")
    stack("down", "neo4j")
    r = subprocess.run([os.path.join(ROOT, "scripts", "stack"), "neo4j-admin", "database", "import", "full",
                        "neo4j", "--overwrite-destination", "--report-file=" + os.path.join(d, "import.report"),
                        "--nodes=User=" + os.path.join(d, "users.csv")], cwd=ROOT, capture_output=True, text=True)
    stack("up", "neo4j")
    if r.returncode != 0:
        raise SystemExit("neo4j-admin import failed: " + r.stdout[-2000:] + r.stderr[-2000:])
    drv = graphcheck.driver()
    with drv.session(database="neo4j") as s:
        for name, label, key in SCHEMA:
            s.run("CREATE CONSTRAINT %s IF NOT EXISTS FOR (n:%s) REQUIRE n.%s IS UNIQUE" % (name, label, key)).consume()
        s.run("CALL db.awaitIndexes(600)").consume()
    drv.close()
    try:
        os.remove(STATE)
    except OSError:
        pass
    say("Neo4j's database replaced by an empty one")


def load_cypher(drv, n, seed, say):
    t0 = time.time()
    graphcheck.wipe(drv)
    t_wipe = time.time() - t0
    rng = random.Random(seed)
    with drv.session(database="neo4j") as s:
        load_universe(s)
        done, last = 0, time.time()
        while done < n:
            k = min(TX_PURCHASES, n - done)
            rows = purchase_rows(rng, done, k)
            s.execute_write(lambda tx: tx.run(PURCHASES_Q, rows=rows).consume())
            done += k
            if time.time() - last > 30:
                say("  preload: %d of %d purchases, %.0f s" % (done, n, time.time() - t0))
                last = time.time()
    return {"wipe_seconds": round(t_wipe, 1)}


def load(drv, n, seed=7, method="import", say=print):
    t0 = time.time()
    parts = (import_offline if method == "import" else load_cypher)(drv, n, seed, say)
    counts = graphcheck.counts(drv)
    state = {"n": n, "seed": seed, "method": method, "counts": counts,
             "load_seconds": round(time.time() - t0, 1), "parts": parts}
    os.makedirs(os.path.dirname(STATE), exist_ok=True)
    with open(STATE, "w") as f:
        json.dump(state, f, indent=1)
    return state


def prepare(drv, n, method="import", say=print):
    """The preloaded state: reused when the graph holds exactly what the last load left."""
    try:
        with open(STATE) as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = None
    if state and state["n"] == n and flat(graphcheck.counts(drv)) == flat(state["counts"]):
        state["reused"] = True
        say("Preload: %d purchases already in Neo4j (loaded earlier in %.0f s), reused" % (n, state["load_seconds"]))
        return state
    say("Preload: replacing the graph by %d purchases (%s)" % (
        n, "neo4j-admin import: Neo4j is stopped and started" if method == "import"
        else "official Python driver, UNWIND CREATE"))
    state = load(drv, n, method=method, say=say)
    state["reused"] = False
    say("  loaded in %.0f s (%.0f purchases/s): %s" % (
        state["load_seconds"], n / max(state["load_seconds"], 0.1),
        ", ".join("%s %d" % kv for kv in flat(state["counts"]).items())))
    return state


def restore(drv, truths):
    """Back to the preloaded baseline: delete the purchases of the run (never a preloaded one)."""
    ids = sorted(set().union(*(t["sets"]["purchases"].keys() for t in truths)))
    assert not any(i.startswith(PREFIX) for i in ids)
    with drv.session(database="neo4j") as s:
        for i in range(0, len(ids), 500):
            s.run("UNWIND $ids AS id MATCH (p:Purchase {purchase_id: id}) DETACH DELETE p",
                  ids=ids[i:i + 500]).consume()


def compare(drv, truths, state):
    """graphcheck.compare for a preloaded graph: the baseline plus the truth's purchases."""
    want = flat(state["counts"])
    purchases = {}
    for t in truths:
        purchases.update(t["sets"]["purchases"])
    want["n:Purchase"] += len(purchases)
    want["r:MADE"] += len(purchases)
    want["r:AT"] += sum(v[0] for v in purchases.values())
    want["r:CONTAINS"] += sum(v[1] for v in purchases.values())
    got = graphcheck.counts(drv)
    bad = ["%s: graph %s, want %s" % (k, v, want.get(k)) for k, v in flat(got).items() if v != want.get(k)]
    for t in truths:
        bad += graphcheck.spot_check(drv, t)
    return got, bad


class Baseline:
    """The preloaded graph as bench.py's run.base (in place of its EmptyGraph): what every part
    starts from (reset) and how the graph after it is checked (compare)."""

    def __init__(self, drv, n, method="import", say=print):
        self.drv, self.state = drv, prepare(drv, n, method, say)

    def reset(self, truths):
        restore(self.drv, truths)

    def compare(self, truths):
        return compare(self.drv, truths, self.state)

    def describe(self):
        return {"purchases": self.state["n"], "reused": self.state["reused"],
                "method": self.state.get("method", "cypher"), "load_seconds": self.state["load_seconds"],
                "parts": self.state.get("parts"), "counts": self.state["counts"]}


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="load (or reuse) the benchmark's preloaded graph")
    ap.add_argument("n", type=int, nargs="?")
    ap.add_argument("--method", choices=["import", "cypher"], default="import")
    ap.add_argument("--empty", action="store_true", help="replace the database by an empty one (Neo4j restarted)")
    a = ap.parse_args()
    if a.empty:
        sys.exit(empty_offline())
    d = graphcheck.driver()
    print(json.dumps(prepare(d, a.n, a.method)))
    d.close()
