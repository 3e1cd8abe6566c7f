#!/usr/bin/env python3
# tools/chaos.py: the fault matrix (issue 11), run by scripts/chaos / `make chaos`.
#
# What: while tools/gen.py publishes receipts and factoids (production mix) in chunks, the
# real worker (one instance, three during the `group` fault) consumes them on the local stack
# and faults are injected one after the other, each after a random delay drawn from --seed:
#
#   worker_kill    kill -9 of a worker, restarted under the same group.instance.id (--kills, 10)
#   worker_stop    SIGSTOP of a worker for 8 s, then SIGCONT
#   neo4j_kill     kill -9 of Neo4j, restarted by scripts/stack
#   neo4j_stop     SIGSTOP of Neo4j for 10 s
#   broker_kill    kill -9 of the Kafka broker, restarted by scripts/stack
#   valkey_stop    Valkey stopped for 8 s (it runs without persistence: the cache is lost)
#   fido_down      FIDO and Retailer answer 503 for 8 s (tools/fakes.py POST /_control)
#   fido_errors    FIDO answers 50 % of requests with 500 for 15 s
#   registry_down  the schema registry answers 503 for 8 s
#   group          two more instances, one joining late; one of the three killed -9 and
#                  restarted, one stopped by its killswitch and resumed; then the two leave
#
# Then it waits until both groups' committed offsets reach the end of every partition and
# checks the graph independently of the worker's code, with Cypher through the official
# Neo4j Python driver: counts by label and type against the generator's ground truth
# (tools/graphcheck.py), every purchase_id of the truth present, and duplicate queries (one
# node per key, one CONTAINS per purchase line, exactly one MADE per purchase, at most one AT
# per purchase, IN_CATEGORY per product, CHILD_OF per category).
#
# Measured: the longest stall per fault: a monitor thread reads the groups' committed offsets
# and the end offsets every 0.5 s; a partition stalls while it has records past its committed
# offset and that offset does not move (auto-commit runs every second, so ~1 s is noise).
# Persisted and rewritten records are counted from the workers' log lines ([SUCCESS] /
# "Rewrote graph data", written with write(2) so a kill -9 loses none already written) over
# every run of every instance: persisted must not exceed the distinct purchases.
#
# Exit status 0 only when: everything was drained, nothing lost, nothing duplicated, the graph
# equals the ground truth, persisted <= distinct purchases, and no worker exited on its own.
# Everything it makes is its own: topics chaos-<tag>-*, groups, idempotency key prefix, flag
# files, fakes on free ports, logs under var/chaos/<tag>/. The graph is wiped first (the local
# stack is disposable, as for the demo).
import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import graphcheck  # noqa: E402

KAFKA = "127.0.0.1:%s" % os.environ.get("KAFKA_PORT", "9092")
NEO4J_PORT = os.environ.get("NEO4J_BOLT_PORT", "7687")
VALKEY_PORT = os.environ.get("VALKEY_PORT", "6390")
CGW_VAR = os.environ.get("CGW_VAR", os.path.join(ROOT, "var"))
STACK = os.path.join(ROOT, "scripts", "stack")
ALL_FAULTS = ["worker_kill", "worker_stop", "neo4j_kill", "neo4j_stop", "broker_kill", "valkey_stop",
              "fido_down", "fido_errors", "registry_down", "group"]
KILLSWITCHES = ["consumer_graph_receipt_killswitch", "consumer_graph_factoid_killswitch"]


def say(msg):
    print(msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the worker instances ----------------------------------------------------------------------

class Worker:
    """One cgw instance: its own config, flags file, metrics port and group.instance.id."""

    def __init__(self, run, idx):
        self.run, self.idx = run, idx
        self.dir = os.path.join(run.dir, "w%d" % idx)
        os.makedirs(self.dir, exist_ok=True)
        self.flags = os.path.join(self.dir, "flags.json")
        self.config = os.path.join(self.dir, "cgw.yaml")
        self.proc, self.runs, self.expected_exit = None, 0, False
        self.set_killswitch(False)
        self.write_config()

    def set_killswitch(self, on):
        features = {"consumer_graph_ingestion": {"boolean": "true"}}
        features.update({k: {"boolean": "true" if on else "false"} for k in KILLSWITCHES})
        with open(self.flags + ".tmp", "w") as f:
            json.dump({"version": 1, "features": features}, f)
        os.replace(self.flags + ".tmp", self.flags)

    def write_config(self):
        r = self.run
        with open(self.config, "w") as f:
            f.write(f"""
log: {{format: logfmt, level: info}}
kafka: {{brokers: "{KAFKA}", group_instance_id: "chaos-{r.tag}-w{self.idx}"}}
consumers:
  receipt: {{topic: {r.topics['receipt']}, group: chaos-{r.tag}-receipt, batch_size: 500, linger_ms: 200}}
  factoid: {{topic: {r.topics['factoid']}, group: chaos-{r.tag}-factoid, batch_size: 500, linger_ms: 200}}
neo4j: {{uri: "bolt://127.0.0.1:{NEO4J_PORT}", user: neo4j, password: "${{NEO4J_PASSWORD:-cgw-local-password}}", max_retry_time_ms: 5000}}
valkey: {{host: 127.0.0.1, port: {VALKEY_PORT}, timeout_ms: 300, key_prefix: "cgw:chaos:{r.tag}:"}}
enrichment:
  fido: {{base_url: "http://127.0.0.1:{r.ports['fido']}", timeout_ms: 1000, retries: 2}}
  retailer: {{base_url: "http://127.0.0.1:{r.ports['retailer']}", timeout_ms: 1000, retries: 2}}
flags: {{source: file, file: "{self.flags}", poll_interval_seconds: 1}}
metrics: {{listen: "127.0.0.1:0"}}
schema_registry: {{url: "http://127.0.0.1:{r.ports['registry']}", username: cgw-bot, password: cgw-local-token, timeout_ms: 1000}}
""")

    def start(self):
        self.runs += 1
        self.expected_exit = False
        log = open(os.path.join(self.dir, "run-%d.log" % self.runs), "w")
        self.proc = subprocess.Popen([self.run.binary, "run", "-c", self.config], stdout=log,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.expected_exit = True
            self.proc.send_signal(sig)

    def stop(self, timeout=60):
        if not self.alive():
            return
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self):
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def lines(self, text):
        n = 0
        for i in range(1, self.runs + 1):
            with open(os.path.join(self.dir, "run-%d.log" % i), errors="replace") as f:
                n += sum(1 for line in f if text in line)
        return n


# ---- the stall monitor -------------------------------------------------------------------------

class Monitor(threading.Thread):
    """Committed vs end offsets of every partition, every 0.5 s; remembers the longest stall."""

    def __init__(self, run):
        super().__init__(daemon=True)
        from confluent_kafka import Consumer
        self.owner, self.stopping = run, threading.Event()
        self.consumers = {c: Consumer({"bootstrap.servers": KAFKA, "group.id": "chaos-%s-%s" % (run.tag, c),
                                       "enable.auto.commit": False, "socket.timeout.ms": 2000,
                                       "log_level": 0})
                          for c in run.topics}
        self.state = {}          # (consumer, partition) -> [committed, since, has lag]
        self.samples = []        # (time, longest current stall, total lag)
        self.lock = threading.Lock()

    def tick(self):
        from confluent_kafka import TopicPartition
        now, longest, lag_total = time.time(), 0.0, 0
        for c, consumer in self.consumers.items():
            topic = self.owner.topics[c]
            parts = consumer.committed([TopicPartition(topic, p) for p in range(6)], timeout=2)
            for tp in parts:
                lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=2,
                                                        cached=False)
                committed = tp.offset if tp.offset >= 0 else lo
                st = self.state.setdefault((c, tp.partition), [committed, now, False])
                if committed != st[0] or committed >= hi:
                    st[0], st[1] = committed, now
                lag = hi - committed
                st[2] = lag > 0
                lag_total += max(lag, 0)
                if lag > 0:
                    longest = max(longest, now - st[1])
        return longest, lag_total

    def stalled_since_known(self):
        """While the broker is down: the stalls of partitions that had records go on growing."""
        now = time.time()
        return max([now - st[1] for st in self.state.values() if st[2]] or [0.0])

    def run(self):  # noqa: D401 (thread body)
        while not self.stopping.wait(0.5):
            try:
                longest, lag = self.tick()
            except Exception:
                longest, lag = self.stalled_since_known(), None
            with self.lock:
                self.samples.append((time.time(), longest, lag))

    def longest_between(self, t0, t1):
        with self.lock:
            return max([s[1] for s in self.samples if t0 <= s[0] <= t1] or [0.0])

    def current(self):
        """(longest stall now, total lag) of the last sample; lag None when unknown."""
        with self.lock:
            return self.samples[-1][1:] if self.samples else (0.0, None)

    def close(self):
        self.stopping.set()
        self.join(5)
        for c in self.consumers.values():
            c.close()


# ---- the run -----------------------------------------------------------------------------------

class Run:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.tag = "%d-%d" % (a.seed, int(time.time()))
        self.dir = os.path.join(CGW_VAR, "chaos", self.tag)
        os.makedirs(self.dir, exist_ok=True)
        self.binary = a.binary
        self.topics = {"receipt": "chaos-%s-receipts" % self.tag, "factoid": "chaos-%s-factoids" % self.tag}
        self.truths, self.workers, self.phases = [], [], []
        self.restarts = self.unexpected_exits = 0
        self.publishing_done = threading.Event()
        self.faults_done = threading.Event()

    # -- set-up

    def start_fakes(self):
        self.ports = {s: free_port() for s in ("fido", "retailer", "flipper", "registry")}
        pidfile = os.path.join(self.dir, "fakes.pid")
        self.fakes = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "fakes.py"),
                                       "--pidfile", pidfile, "--access-log", os.path.join(self.dir, "fakes.log")] +
                                      ["--%s-port=%d" % kv for kv in self.ports.items()])
        deadline = time.time() + 15
        while not os.path.exists(pidfile):
            if self.fakes.poll() is not None or time.time() > deadline:
                raise SystemExit("chaos: the fakes did not start")
            time.sleep(0.05)

    def control(self, service, **switches):
        req = urllib.request.Request("http://127.0.0.1:%d/_control" % self.ports[service],
                                     data=json.dumps(switches).encode(), method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def create_topics(self):
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": KAFKA})
        for f in admin.create_topics([NewTopic(t, 6, 1) for t in self.topics.values()]).values():
            f.result(30)

    # -- publishing: chunks of receipts and factoids, paced across the fault schedule

    def chunks(self):
        per_kind = self.a.records // 2
        n = max(2, min(self.a.chunks, per_kind // 250 or 1))
        out = []
        for i in range(n):
            for kind, total in (("receipts", per_kind), ("factoids", self.a.records - per_kind)):
                size = total // n + (1 if i < total % n else 0)
                if size:
                    out.append((kind, size, self.a.seed * 1000 + len(out)))
        return out

    def publish(self):
        try:
            chunks = self.chunks()
            for i, (kind, n, seed) in enumerate(chunks):
                path = os.path.join(self.dir, "truth-%03d.json" % i)
                topic = self.topics["receipt" if kind == "receipts" else "factoid"]
                subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen.py"), kind, "-n", str(n),
                                "--seed", str(seed), "--bootstrap", KAFKA, "--topic", topic, "--truth", path],
                               check=True, stdout=subprocess.DEVNULL)
                with open(path) as f:
                    self.truths.append(json.load(f))
                # Spread the rest over the faults still to come.
                if not self.faults_done.is_set():
                    self.faults_done.wait(self.a.pace)
        except Exception as e:  # reported by the caller through publish_error
            self.publish_error = str(e)
        finally:
            self.publishing_done.set()

    # -- the workers

    def watch(self):
        """Restart a worker that exited without being told to (counted: it fails the run)."""
        for w in self.workers:
            if w.proc is not None and not w.alive() and not w.expected_exit:
                self.unexpected_exits += 1
                say("  worker %d exited on its own (%s); restarted" % (w.idx, w.proc.returncode))
                w.start()

    def alive_workers(self):
        return [w for w in self.workers if w.alive()]

    def sleep(self, s):
        end = time.time() + s
        while time.time() < end:
            self.watch()
            time.sleep(min(0.2, max(0, end - time.time())))

    def kill_and_restart(self, w):
        w.kill()
        self.sleep(self.rng.uniform(0.1, 1.0))
        w.start()
        self.restarts += 1

    # -- the faults (each returns a short note)

    def f_worker_kill(self):
        w = self.rng.choice(self.alive_workers())
        self.kill_and_restart(w)
        return "worker %d killed -9, restarted" % w.idx

    def f_worker_stop(self):
        w = self.rng.choice(self.alive_workers())
        w.signal(signal.SIGSTOP)
        self.sleep(8)
        w.signal(signal.SIGCONT)
        return "worker %d stopped 8 s" % w.idx

    def server_pid(self, name):
        with open(os.path.join(CGW_VAR, name, "pid")) as f:
            return int(f.read().strip())

    def stack_up(self, name):
        """scripts/stack up, tried three times: after a kill -9 Neo4j's recovery on a busy
        2-core machine can outlast the script's own readiness timeout."""
        for attempt in range(3):
            if subprocess.run([STACK, "up", name], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return
            say("  %s not ready yet (attempt %d)" % (name, attempt + 1))
        raise SystemExit("chaos: %s did not come back" % name)

    def f_neo4j_kill(self):
        os.kill(self.server_pid("neo4j"), signal.SIGKILL)
        self.sleep(2)
        t0 = time.time()
        self.stack_up("neo4j")
        return "Neo4j killed -9, back after %.0f s" % (time.time() - t0 + 2)

    def f_neo4j_stop(self):
        pid = self.server_pid("neo4j")
        os.kill(pid, signal.SIGSTOP)
        try:
            self.sleep(10)
        finally:
            os.kill(pid, signal.SIGCONT)
        return "Neo4j stopped 10 s"

    def f_broker_kill(self):
        os.kill(self.server_pid("kafka"), signal.SIGKILL)
        self.sleep(2)
        t0 = time.time()
        self.stack_up("kafka")
        return "broker killed -9, back after %.0f s" % (time.time() - t0 + 2)

    def f_valkey_stop(self):
        subprocess.run([STACK, "down", "valkey"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.sleep(8)
        self.stack_up("valkey")
        return "Valkey stopped 8 s (cache lost)"

    def f_fido_down(self):
        self.control("fido", outage=True)
        self.control("retailer", outage=True)
        self.sleep(8)
        self.control("fido", outage=False)
        self.control("retailer", outage=False)
        return "FIDO and Retailer 503 for 8 s"

    def f_fido_errors(self):
        self.control("fido", error_rate=0.5)
        self.sleep(15)
        self.control("fido", error_rate=0.0)
        return "FIDO 50 % errors for 15 s"

    def f_registry_down(self):
        self.control("registry", outage=True)
        self.sleep(8)
        self.control("registry", outage=False)
        return "registry 503 for 8 s"

    def f_group(self):
        extra = [w for w in self.workers[1:3]]
        extra[0].start()
        self.sleep(self.rng.uniform(2, 6))
        extra[1].start()                       # joins late
        self.sleep(6)
        self.kill_and_restart(self.rng.choice(self.alive_workers()))
        self.sleep(4)
        ks = self.rng.choice(self.alive_workers())
        ks.set_killswitch(True)
        self.sleep(5)
        ks.set_killswitch(False)
        self.sleep(5)
        for w in extra:
            w.stop()
        return "3 instances: one late, one killed -9, worker %d killswitched and resumed" % ks.idx

    # -- the schedule

    def schedule(self):
        out = []
        for f in self.a.faults:
            out += [f] * (self.a.kills if f == "worker_kill" else 1)
        return out

    def settle(self, limit=180):
        """Until no partition with records waits more than 3 s (or everything is drained)."""
        end = time.time() + limit
        self.sleep(1)
        while time.time() < end:
            longest, lag = self.monitor.current()
            if lag == 0 or (lag is not None and longest < 3):
                return
            self.sleep(0.5)

    def run_faults(self):
        for name in self.schedule():
            delay = self.rng.uniform(1.0, 4.0)
            self.sleep(delay)
            t0 = time.time()
            note = getattr(self, "f_" + name)()
            t1 = time.time()
            self.settle()
            stall = self.monitor.longest_between(t0, time.time())
            self.phases.append({"fault": name, "delay": delay, "at": t0 - self.t_start, "held": t1 - t0,
                                "stall": stall, "note": note})
            say("  %-14s at %6.1f s (after %.1f s)  stall %5.1f s  %s" % (name, t0 - self.t_start, delay, stall, note))
        self.faults_done.set()

    def drain(self):
        self.publishing_done.wait()
        deadline = time.time() + max(300, self.a.records / 100)
        zero = 0
        while time.time() < deadline:
            self.sleep(1)
            zero = zero + 1 if self.monitor.current()[1] == 0 else 0
            if zero >= 2:
                return True
        return False

    def execute(self):
        self.start_fakes()
        self.create_topics()
        drv = graphcheck.driver()
        graphcheck.wipe(drv)
        self.workers = [Worker(self, i) for i in range(3)]
        self.publish_error = None
        self.monitor = Monitor(self)
        self.monitor.start()
        self.t_start = time.time()
        self.workers[0].start()
        publisher = threading.Thread(target=self.publish, daemon=True)
        publisher.start()
        try:
            self.run_faults()
            drained = self.drain()
            self.elapsed = time.time() - self.t_start
        finally:
            for w in self.workers:
                w.stop()
            self.monitor.close()
            self.fakes.send_signal(signal.SIGTERM)
            self.fakes.wait(10)
        try:
            return self.report(drv, drained)
        finally:
            drv.close()

    # -- the verdict

    def report(self, drv, drained):
        checks = graph_checks(drv, self.truths)
        persisted = sum(w.lines("[SUCCESS] Persisted graph data") for w in self.workers)
        rewritten = sum(w.lines("Rewrote graph data") for w in self.workers)
        published = sum(t["published"] for t in self.truths)
        distinct = len(checks["expected"])
        say("\nFault            at (s)  delay (s)  held (s)  longest stall (s)")
        for p in self.phases:
            say("  %-14s %6.1f  %9.1f  %8.1f  %17.1f" % (p["fault"], p["at"], p["delay"], p["held"], p["stall"]))
        rows = [("published", published), ("persisted ([SUCCESS] lines)", persisted),
                ("rewritten (replays)", rewritten), ("distinct purchases (truth)", distinct),
                ("purchases in graph", checks["in_graph"]), ("lost", len(checks["lost"])),
                ("duplicated", checks["duplicated"]), ("worker restarts (kill -9)", self.restarts),
                ("worker exits on their own", self.unexpected_exits),
                ("longest stall (s)", "%.1f" % max([p["stall"] for p in self.phases] or [0])),
                ("wall time (s)", "%.0f" % self.elapsed)]
        say("")
        for k, v in rows:
            say("  %-30s %s" % (k, v))
        for k, v in checks["duplicates"].items():
            if v:
                say("  DUPLICATE %s: %d" % (k, v))
        problems = []
        if self.publish_error:
            problems.append("publishing failed: " + self.publish_error)
        if not drained:
            problems.append("the backlog was not drained")
        if checks["lost"]:
            problems.append("%d purchases lost, e.g. %s" % (len(checks["lost"]), sorted(checks["lost"])[:3]))
        if checks["duplicated"]:
            problems.append("%d duplicates" % checks["duplicated"])
        problems += checks["differences"][:10]
        if persisted > distinct:
            problems.append("persisted %d > distinct purchases %d: a rewrite was counted twice" % (persisted, distinct))
        if self.unexpected_exits:
            problems.append("%d worker exits nobody asked for" % self.unexpected_exits)
        if persisted < distinct:
            say("  note: %d [SUCCESS] lines fewer than purchases: killed -9 between the commit to "
                "Neo4j and the log line" % (distinct - persisted))
        say("\nseed %d, records %d, faults %s; logs in %s" % (self.a.seed, self.a.records, ",".join(self.a.faults),
                                                            self.dir))
        say("CHAOS " + ("PASSED: 0 lost, 0 duplicated" if not problems else "FAILED:\n  " + "\n  ".join(problems)))
        return 0 if not problems else 1


DUPLICATE_QUERIES = {
    "User per user_id": "MATCH (n:User) WITH n.user_id AS k, count(*) AS c WHERE c > 1 RETURN count(*) AS c",
    "Purchase per purchase_id": "MATCH (n:Purchase) WITH n.purchase_id AS k, count(*) AS c WHERE c > 1 RETURN count(*) AS c",
    "Product per fido": "MATCH (n:Product) WITH n.fido AS k, count(*) AS c WHERE c > 1 RETURN count(*) AS c",
    "Retailer per retailer_id": "MATCH (n:Retailer) WITH n.retailer_id AS k, count(*) AS c WHERE c > 1 RETURN count(*) AS c",
    "Category per path": "MATCH (n:Category) WITH n.path AS k, count(*) AS c WHERE c > 1 RETURN count(*) AS c",
    "CONTAINS per purchase line": "MATCH (p:Purchase)-[r:CONTAINS]->() WITH p, r.line AS l, count(*) AS c "
                                  "WHERE c > 1 RETURN count(*) AS c",
    "MADE per purchase (exactly one)": "MATCH (p:Purchase) WITH p, COUNT { (:User)-[:MADE]->(p) } AS c "
                                       "WHERE c <> 1 RETURN count(*) AS c",
    "AT per purchase (at most one)": "MATCH (p:Purchase) WITH p, COUNT { (p)-[:AT]->() } AS c WHERE c > 1 "
                                     "RETURN count(*) AS c",
    "IN_CATEGORY per product (at most one)": "MATCH (p:Product) WITH p, COUNT { (p)-[:IN_CATEGORY]->() } AS c "
                                             "WHERE c > 1 RETURN count(*) AS c",
    "CHILD_OF per category (at most one)": "MATCH (n:Category) WITH n, COUNT { (n)-[:CHILD_OF]->() } AS c "
                                           "WHERE c > 1 RETURN count(*) AS c",
}


def graph_checks(drv, truths):
    """The graph against the truths, with the worker's code nowhere involved."""
    expected = set()
    for t in truths:
        expected.update(t["sets"]["purchases"])
    with drv.session(database="neo4j") as s:
        present = {r["id"] for r in s.run("MATCH (p:Purchase) RETURN p.purchase_id AS id")}
        dups = {k: s.run(q).single()["c"] for k, q in DUPLICATE_QUERIES.items()}
    _, differences = graphcheck.compare(drv, truths) if truths else ({}, ["no records were published"])
    return {"expected": expected, "in_graph": len(present), "lost": expected - present,
            "duplicates": dups, "duplicated": sum(dups.values()), "differences": differences}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="Run the fault matrix against the local stack and check the graph.")
    ap.add_argument("--records", type=int, default=50000, help="records to publish, receipts and factoids half each")
    ap.add_argument("--seed", type=int, default=None, help="drives the data and the moment of every fault")
    ap.add_argument("--faults", default=",".join(ALL_FAULTS),
                    help="comma-separated, run in this order (default: all): " + ",".join(ALL_FAULTS))
    ap.add_argument("--kills", type=int, default=10, help="worker kill -9 repetitions of worker_kill")
    ap.add_argument("--chunks", type=int, default=20, help="publish in this many chunks per topic")
    ap.add_argument("--pace", type=float, default=3.0, help="seconds between chunks while faults run")
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "release", "cgw"))
    a = ap.parse_args(argv)
    a.faults = [f for f in a.faults.split(",") if f]
    bad = [f for f in a.faults if f not in ALL_FAULTS]
    if bad:
        ap.error("unknown fault(s) %s; known: %s" % (",".join(bad), ",".join(ALL_FAULTS)))
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    return a


def main(argv=None):
    a = parse_args(argv)
    say("chaos: seed %d, %d records, faults %s" % (a.seed, a.records, ",".join(a.faults)))
    return Run(a).execute()


if __name__ == "__main__":
    sys.exit(main())
