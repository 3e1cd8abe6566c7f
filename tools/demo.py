#!/usr/bin/env python3
# tools/demo.py: the main job on the local stack (run through `make demo` / scripts/demo,
# which install, build and start the stack first).
#
# It resets the local topics, graph and idempotency keys (this is a demo on a disposable
# stack), starts the fakes of the FIDO and Retailer services, publishes generated receipts
# (and factoids) with their ground truth, runs the real worker (release build) until both
# backlogs are drained while printing progress, and then reports: counts per outcome, what
# was persisted, whether the graph matches the ground truth, and a few Cypher answers.
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import graphcheck  # noqa: E402

VAR = os.path.join(ROOT, "var", "demo")
KAFKA = "127.0.0.1:%s" % os.environ.get("KAFKA_PORT", "9092")
TOPICS = {"receipt": "ProcessedReceiptEvent", "factoid": "factoid-stream"}
METRICS_PORT = os.environ.get("METRICS_PORT", "9464")
METRICS = "http://127.0.0.1:%s/metrics" % METRICS_PORT


def say(msg):
    print(msg, flush=True)


def reset_topics():
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": KAFKA})
    existing = admin.list_topics(timeout=10).topics
    doomed = [t for t in TOPICS.values() if t in existing]
    if doomed:
        for f in admin.delete_topics(doomed).values():
            f.result(30)
        deadline = time.time() + 60
        while any(t in admin.list_topics(timeout=10).topics for t in doomed):
            if time.time() > deadline:
                raise SystemExit("topics were not deleted in 60 s")
            time.sleep(0.5)
    for _ in range(60):
        futures = admin.create_topics([NewTopic(t, 6, 1) for t in TOPICS.values()])
        try:
            for f in futures.values():
                f.result(30)
            return
        except Exception as e:  # still being deleted in the background
            if "already exists" in str(e) or "marked for deletion" in str(e).lower():
                time.sleep(1)
                continue
            raise
    raise SystemExit("could not re-create the topics")


def reset_valkey():
    import redis
    r = redis.Redis(port=int(os.environ.get("VALKEY_PORT", "6390")))
    keys = list(r.scan_iter("cgw:done:*", count=1000))
    for i in range(0, len(keys), 1000):
        r.delete(*keys[i:i + 1000])


def start_fakes():
    pidfile = os.path.join(VAR, "fakes.pid")
    if os.path.exists(pidfile):
        os.remove(pidfile)
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "fakes.py"),
                             "--services", "fido,retailer,registry", "--pidfile", pidfile,
                             "--access-log", os.path.join(VAR, "fakes.log")])
    deadline = time.time() + 15
    while not os.path.exists(pidfile):
        if proc.poll() is not None or time.time() > deadline:
            raise SystemExit("the fakes did not start (ports 18081, 18082, 18084 taken?)")
        time.sleep(0.05)
    return proc


def generate(kind, n, seed):
    truth = os.path.join(VAR, "truth-%s.json" % kind)
    t0 = time.time()
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen.py"), kind, "-n", str(n),
                    "--seed", str(seed), "--bootstrap", KAFKA, "--truth", truth],
                   check=True, stdout=subprocess.DEVNULL)
    say("  published %d %s in %.1f s" % (n, kind, time.time() - t0))
    with open(truth) as f:
        return json.load(f)


def metrics():
    with urllib.request.urlopen(METRICS, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def metric_sum(m, name, **labels):
    total = 0
    for k, v in m.items():
        if k.split("{")[0] == name and all('%s="%s"' % kv in k for kv in labels.items()):
            total += v
    return int(total)


def settled(m, consumer):
    return sum(metric_sum(m, n, consumer=consumer) for n in
               ("cgw_records_persisted_total", "cgw_records_rewritten_total", "cgw_records_skipped_total",
                "cgw_records_errors_total"))


def save_status_page(binary):
    """The operators' status page of the drained worker, as Markdown, into var/."""
    path = os.path.join(VAR, "status.md")
    r = subprocess.run([binary, "status", "-c", os.path.join(VAR, "demo.yaml"), "--markdown"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        say("  (cgw status --markdown failed: %s)" % r.stderr.strip())
        return
    with open(path, "w") as f:
        f.write(r.stdout)
    state = r.stdout.split("## Current State", 1)[1].split("## Configuration", 1)[0].strip()
    say("\nThe status page (cgw status --markdown; the whole page: %s; while a worker runs, "
        "open %s/ in a browser):\n%s" % (os.path.relpath(path, ROOT), METRICS.rsplit("/", 1)[0], state))


def run_worker(binary, totals):
    log = open(os.path.join(VAR, "worker.log"), "w")
    proc = subprocess.Popen([binary, "run", "-c", os.path.join(VAR, "demo.yaml")], stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    t0 = time.time()
    last = ""
    while True:
        if proc.poll() is not None:
            raise SystemExit("the worker exited (%s); see %s" % (proc.returncode, log.name))
        try:
            m = metrics()
        except OSError:
            time.sleep(0.2)
            continue
        done = {c: settled(m, c) for c in totals}
        line = "  %5.1f s  " % (time.time() - t0) + "  ".join(
            "%s %d/%d (persisted %d)" % (c, done[c], totals[c],
                                         metric_sum(m, "cgw_records_persisted_total", consumer=c))
            for c in totals)
        if line != last:
            say(line)
            last = line
        if all(done[c] >= totals[c] for c in totals):
            break
        time.sleep(1)
    elapsed = time.time() - t0
    save_status_page(binary)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    return m, elapsed


def report(m, truths, elapsed, drv):
    say("\nOutcomes (worker counters | ground truth):")
    for consumer, truth in truths.items():
        reasons = ["digital", "status"] if consumer == "receipt" else ["source", "type"]
        for r in reasons + ["no_fidos", "not_in_rollout", "duplicate"]:
            say("  %-8s %-15s %7d | %d" % (consumer, r, metric_sum(m, "cgw_records_skipped_total",
                                                                 consumer=consumer, reason=r),
                                         truth["outcomes"][r]))
        say("  %-8s %-15s %7d | %d" % (consumer, "errors", metric_sum(m, "cgw_records_errors_total",
                                                                     consumer=consumer),
                                     truth["outcomes"]["error"]))
        p = metric_sum(m, "cgw_records_persisted_total", consumer=consumer)
        say("  %-8s %-15s %7d | %d" % (consumer, "PERSISTED", p, truth["outcomes"]["persisted"]))
    say("  %d records settled in %.1f s: %.0f records/s end to end" % (
        sum(t["published"] for t in truths.values()), elapsed,
        sum(t["published"] for t in truths.values()) / elapsed))
    got, bad = graphcheck.compare(drv, list(truths.values()))
    say("\nGraph: " + ", ".join("%s %d" % kv for kv in got["nodes"].items()) + "; " +
        ", ".join("%s %d" % kv for kv in got["relationships"].items()))
    say("Graph vs ground truth: " + ("identical (counts by label and type, spot checks)" if not bad
                                     else "%d DIFFERENCES:\n  " % len(bad) + "\n  ".join(bad[:20])))
    with drv.session(database="neo4j") as s:
        say("\nTop products by purchases:")
        for r in s.run("MATCH (p:Purchase)-[:CONTAINS]->(pr:Product) "
                       "RETURN pr.fido AS fido, pr.name AS name, count(DISTINCT p) AS purchases "
                       "ORDER BY purchases DESC, fido LIMIT 5"):
            say("  %-8s %-32s %d" % (r["fido"], r["name"] or "(unknown to FIDO)", r["purchases"]))
        u = s.run("MATCH (u:User)-[:MADE]->(p:Purchase) RETURN u.user_id AS u, count(p) AS n "
                  "ORDER BY n DESC, u LIMIT 1").single()
        say("\nPurchases of user %s, with retailer and categories:" % u["u"])
        for r in s.run("MATCH (:User {user_id: $u})-[:MADE]->(p:Purchase) "
                       "OPTIONAL MATCH (p)-[:AT]->(r:Retailer) "
                       "OPTIONAL MATCH (p)-[:CONTAINS]->(:Product)-[:IN_CATEGORY]->(c:Category) "
                       "RETURN p.purchase_id AS id, p.purchased_at AS at, r.name AS retailer, "
                       "collect(DISTINCT c.path)[..3] AS categories ORDER BY at LIMIT 5", u=u["u"]):
            say("  %s  %s  at %s  %s" % (str(r["at"])[:19], r["id"], r["retailer"] or "(no retailer)",
                                          "; ".join(r["categories"])))
    say("""
Query the graph yourself:
  Neo4j Browser-less HTTP: curl -u neo4j:cgw-local-password -H 'Content-Type: application/json' \\
    -d '{"statements":[{"statement":"MATCH (c:Category)<-[:IN_CATEGORY]-(p) RETURN c.path, count(p) ORDER BY count(p) DESC LIMIT 5"}]}' \\
    http://127.0.0.1:7474/db/neo4j/tx/commit
  Python: %s -c "import sys; sys.path.insert(0,'tools'); import graphcheck; print(graphcheck.counts(graphcheck.driver()))"
  Bolt: bolt://127.0.0.1:7687 (user neo4j, password cgw-local-password)
Worker log: var/demo/worker.log   Metrics while it runs: curl 127.0.0.1:9464/metrics""" % sys.executable)
    return not bad


def write_config():
    with open(os.path.join(ROOT, "config", "local.yaml")) as f:
        text = f.read()
    text = text.replace("file: var/flags.json", "file: var/demo/flags.json")
    # The stack's ports as scripts/lib.sh sets them (a worktree's own stack), never the defaults.
    text = text.replace("127.0.0.1:9092", KAFKA)
    text = text.replace("bolt://127.0.0.1:7687", "bolt://127.0.0.1:%s" % os.environ.get("NEO4J_BOLT_PORT", "7687"))
    text = text.replace("port: 6390", "port: %s" % os.environ.get("VALKEY_PORT", "6390"))
    text = text.replace("listen: 127.0.0.1:9464", "listen: 127.0.0.1:%s" % METRICS_PORT)
    wanted = (KAFKA, "bolt://127.0.0.1:%s" % os.environ.get("NEO4J_BOLT_PORT", "7687"),
              "port: %s" % os.environ.get("VALKEY_PORT", "6390"), "listen: 127.0.0.1:%s" % METRICS_PORT)
    missing = [w for w in wanted if w not in text]
    if missing:
        raise SystemExit("config/local.yaml changed: cannot point the demo at %s" % missing)
    with open(os.path.join(VAR, "demo.yaml"), "w") as f:
        f.write(text)
    with open(os.path.join(VAR, "flags.json"), "w") as f:
        json.dump({"version": 1, "features": {"consumer_graph_ingestion": {"boolean": "true"}}}, f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--receipts", type=int, default=20000)
    ap.add_argument("--factoids", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "cgw"))
    a = ap.parse_args()
    os.makedirs(VAR, exist_ok=True)
    say("Resetting the local topics, graph and idempotency keys (the demo's stack is disposable)")
    reset_topics()
    drv = graphcheck.driver()
    graphcheck.wipe(drv)
    reset_valkey()
    write_config()
    fakes = start_fakes()
    try:
        say("Publishing generated records with the production mix")
        truths, totals = {}, {}
        if a.receipts:
            truths["receipt"] = generate("receipts", a.receipts, a.seed)
            totals["receipt"] = truths["receipt"]["published"]
        if a.factoids:
            truths["factoid"] = generate("factoids", a.factoids, a.seed + 1)
            totals["factoid"] = truths["factoid"]["published"]
        say("Running the worker until the backlog is drained")
        m, elapsed = run_worker(a.binary, totals)
        ok = report(m, truths, elapsed, drv)
    finally:
        fakes.send_signal(signal.SIGTERM)
        fakes.wait(10)
        drv.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
