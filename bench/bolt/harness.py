"""harness.py: drives the clients of `make bench-bolt` and measures them (bench/bolt/README.md).

Every client (bench_bolt.c, BenchBolt.java, bench_bolt.py) is a long-lived child process
that connects, builds its rows, prints "ready ..." and then runs one workload per command
line on its stdin ("write", "read", "quit"), answering one "ok ..."/"err ..." line. The
clients measure nothing themselves. This harness measures all of them the same way, from
the outside, around each command:

  wall time    time.perf_counter() from sending the command to reading the answer
  client CPU   the child's process CPU clock (what clock_getcpuclockid(pid) gives: user +
               system time of all its threads, exited ones too, so the JVM's Netty, GC and
               JIT threads count; nanosecond resolution), read just before and after.
               utime + stime of /proc/<pid>/stat (10 ms ticks) is recorded as a cross-check
  server CPU   the same clock for the Neo4j process of the local stack (context only)
  other CPU    the rest of the machine's busy time meanwhile (/proc/stat): anything else
               running on this machine pollutes the figures, and this shows it

Before each measurement the harness waits (up to --quiet-wait s, --quiet-budget s in all)
for the machine to be nearly idle. Order: warm-up rounds first (discarded; more for Java, for its JIT), then `reps` rounds,
each going through the clients in turn (so drift on the server hits all of them alike).
Before every write all BenchRow nodes are deleted, so every write run creates its 100 000
nodes (ids 0..n-1, the same in every run) rather than matching existing ones; each write's
"created" count is checked, and so is the checksum of every read. The medians are reported.
BenchRow nodes and the bench_row_id constraint are removed at the end, whatever happens.

This script uses the official Python driver itself only for that setup and clean-up, never
inside a measured interval, and in its own process.

  python harness.py --client c='build/bench/bolt/bench_bolt' --client java='java -cp ...' \
      [--rows 100000] [--batch 1000] [--reps 3] [--warmup 1] [--java-warmup 2] [--out FILE]
"""
import argparse
import datetime
import os
import select
import shlex
import statistics
import subprocess
import sys
import time

from neo4j import GraphDatabase

CLK_TCK = os.sysconf("SC_CLK_TCK")
CMD_TIMEOUT = 400.0
QUIET_CPUS = 0.25       # "quiet": less than a quarter of one CPU busy, machine-wide


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def cpu_seconds(pid):
    """CPU time of a whole process (user + system, all its threads, live and exited) in
    seconds, with nanosecond resolution: the process CPU clock of another process, as
    clock_getcpuclockid(3) makes it (glibc: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""
    if pid is None:
        return float("nan")
    return time.clock_gettime_ns(((~pid) << 3) | 2) / 1e9


def stat_cpu_seconds(pid):
    """utime + stime from /proc/<pid>/stat (clock ticks): a coarse cross-check."""
    if pid is None:
        return float("nan")
    with open("/proc/%d/stat" % pid, "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK   # fields 14 and 15 of stat


def machine_busy_seconds():
    """CPU seconds the whole machine has been busy (all CPUs; /proc/stat, 10 ms ticks)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]   # user..steal; guest is in user
    return (sum(v) - v[3] - v[4]) / CLK_TCK              # minus idle and iowait


class Client:
    def __init__(self, name, cmd, env, logdir):
        self.name = name
        self.log_path = os.path.join(logdir, "bolt-%s.log" % name)
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(shlex.split(cmd), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.logf, env=env)
        self.buf = b""
        self.ready_line = None

    def readline(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("%s: no answer within %.0f s" % (self.name, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError("%s exited (code %s); see %s" % (
                        self.name, self.proc.wait(), self.log_path))
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def send(self, cmd):
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def parse_answer(line):
    parts = line.split()
    if not parts or parts[0] != "ok":
        raise RuntimeError(line)
    return dict(p.split("=", 1) for p in parts[2:])


class Bench:
    def __init__(self, args):
        self.a = args
        self.driver = GraphDatabase.driver(args.uri, auth=(args.user, args.password),
                                           notifications_min_severity="OFF")
        self.server_pid = self.find_server_pid()
        self.quiet_budget = args.quiet_budget

    def find_server_pid(self):
        try:
            with open(self.a.server_pidfile) as f:
                pid = int(f.read().strip())
            with open("/proc/%d/comm" % pid) as f:
                return pid if f.read().strip() == "java" else None
        except (OSError, ValueError):
            return None

    def cypher(self, q):
        with self.driver.session(database="neo4j") as s:
            return [r.values() for r in s.run(q)]

    def setup(self):
        self.driver.verify_connectivity()
        self.cypher("CREATE CONSTRAINT bench_row_id IF NOT EXISTS "
                    "FOR (n:BenchRow) REQUIRE n.id IS UNIQUE")
        self.cypher("CALL db.awaitIndexes(300)")
        self.clean()

    def clean(self):
        self.cypher("MATCH (n:BenchRow) CALL (n) { DETACH DELETE n } "
                    "IN TRANSACTIONS OF 10000 ROWS")
        left = self.count()
        if left:
            raise RuntimeError("%d BenchRow nodes left after delete" % left)

    def count(self):
        return self.cypher("MATCH (n:BenchRow) RETURN count(n)")[0][0]

    def teardown(self):
        try:
            self.clean()
            self.cypher("DROP CONSTRAINT bench_row_id IF EXISTS")
        finally:
            self.driver.close()

    def wait_quiet(self):
        """Waits (up to --quiet-wait s) until the machine has been nearly idle for half a
        second, so a measurement does not start in the middle of someone else's work."""
        start = time.monotonic()
        limit = min(self.a.quiet_wait, self.quiet_budget)
        while True:
            b0 = machine_busy_seconds()
            time.sleep(0.5)
            busy = (machine_busy_seconds() - b0) / 0.5
            waited = time.monotonic() - start
            if busy < QUIET_CPUS or waited >= limit:
                self.quiet_budget = max(0.0, self.quiet_budget - waited)
                if waited > 1:
                    log("waited %.0f s for a quiet machine (%.2f CPUs busy)" % (waited, busy))
                return

    def measure(self, client, cmd):
        self.wait_quiet()
        pid = client.proc.pid
        m0 = machine_busy_seconds()
        k0, s0 = stat_cpu_seconds(pid), cpu_seconds(self.server_pid)
        c0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        client.send(cmd)
        line = client.readline(CMD_TIMEOUT)
        t1 = time.perf_counter()
        c1 = cpu_seconds(pid)
        k1, s1 = stat_cpu_seconds(pid), cpu_seconds(self.server_pid)
        m1 = machine_busy_seconds()
        ans = parse_answer(line)
        # What else ran meanwhile (other users of this machine, the harness): a check
        # that the figures are not polluted.
        other = max(0.0, (m1 - m0) - (c1 - c0) - (s1 - s0))
        return {"wall": t1 - t0, "cpu": c1 - c0, "stat_cpu": k1 - k0, "server_cpu": s1 - s0,
                "other_cpu": other, "ans": ans}

    def expected_read(self):
        n = self.a.rows
        return {"rows": str(n), "sum_id": str(n * (n - 1) // 2),
                "name_bytes": str(n * len("row-%08d" % 0)),
                "sum_value": "%.1f" % (0.5 * (n * (n - 1) // 2))}

    def round(self, client, label):
        """clean, write, read; returns the two measurements after checking them."""
        self.clean()
        w = self.measure(client, "write")
        if int(w["ans"].get("created", -1)) != self.a.rows:
            raise RuntimeError("%s %s: write created %s nodes, not %d" % (
                client.name, label, w["ans"].get("created"), self.a.rows))
        got = self.count()
        if got != self.a.rows:
            raise RuntimeError("%s %s: %d BenchRow nodes after write" % (client.name, label, got))
        r = self.measure(client, "read")
        if r["ans"] != self.expected_read():
            raise RuntimeError("%s %s: read checksum %s, expected %s" % (
                client.name, label, r["ans"], self.expected_read()))
        log("%-12s %-9s write %6.2f s wall %6.3f s cpu | read %5.2f s wall %6.3f s cpu"
            " | other %.2f s" % (client.name, label, w["wall"], w["cpu"], r["wall"], r["cpu"],
                                 w["other_cpu"] + r["other_cpu"]))
        return w, r


def median(xs):
    return statistics.median(xs)


def fmt_ratio(x):
    return "%.2fx" % x if x == x else "n/a"


def report(args, results, clients, meta):
    """results[client][workload] = list of measurements."""
    n = args.rows
    lines = []
    hdr = "%-8s %-12s %10s %8s %12s %12s %11s %14s %12s" % (
        "workload", "client", "rows/s", "wall s", "client CPU s", "server CPU s",
        "other CPU s", "rows/s vs java", "CPU vs java")
    med = {}
    for c in clients:
        for wl in ("write", "read"):
            ms = results[c][wl]
            med[c, wl] = {
                "rows_s": median([n / m["wall"] for m in ms]),
                "wall": median([m["wall"] for m in ms]),
                "cpu": median([m["cpu"] for m in ms]),
                "server_cpu": median([m["server_cpu"] for m in ms]),
                "other_cpu": median([m["other_cpu"] for m in ms]),
            }
    for wl in ("write", "read"):
        lines.append(hdr)
        for c in clients:
            m = med[c, wl]
            j = med.get(("java", wl))
            rr = m["rows_s"] / j["rows_s"] if j else float("nan")
            cr = m["cpu"] / j["cpu"] if j and j["cpu"] > 0 else float("nan")
            lines.append("%-8s %-12s %10.0f %8.3f %12.3f %12.3f %11.2f %14s %12s" % (
                wl, c, m["rows_s"], m["wall"], m["cpu"], m["server_cpu"], m["other_cpu"],
                fmt_ratio(rr), fmt_ratio(cr)))
        lines.append("")
    if "c" in clients and "java" in clients:
        lines.append("target: cgw client rows/s >= Java driver's and client CPU <= 1/5 of Java's")
        for wl in ("write", "read"):
            c, j = med["c", wl], med["java", wl]
            ok_r = c["rows_s"] >= j["rows_s"]
            ok_c = c["cpu"] <= j["cpu"] / 5
            lines.append("  %-5s rows/s %.2fx (%s), CPU %.3f of Java's (%s): %s" % (
                wl, c["rows_s"] / j["rows_s"], "ok" if ok_r else "MISSED",
                c["cpu"] / j["cpu"] if j["cpu"] else float("nan"), "ok" if ok_c else "MISSED",
                "MET" if ok_r and ok_c else "MISSED"))
        lines.append("")
    busy = [m["other_cpu"] / m["wall"] for c in clients for wl in ("write", "read")
            for m in results[c][wl] if m["other_cpu"] > 0.05] or [0]
    if max(busy) > 0.15:
        lines.append("WARNING: something else used up to %.0f%% of a CPU during the measured "
                     "runs (other CPU s): the figures are polluted; re-run on a quiet "
                     "machine" % (100 * max(busy)))
        lines.append("")
    lines.append("runs (wall s / client CPU s / same from /proc/<pid>/stat ticks / other CPU s),"
                 " in order:")
    for c in clients:
        for wl in ("write", "read"):
            lines.append("  %-12s %-5s %s" % (c, wl, "  ".join(
                "%.3f/%.3f/%.2f/%.2f" % (m["wall"], m["cpu"], m["stat_cpu"], m["other_cpu"])
                for m in results[c][wl])))
    head = ["bench-bolt  %s" % meta["date"],
            "rows %d, UNWIND batches of %d, median of %d runs after warm-up (%s)" % (
                n, args.batch, args.reps, meta["warmup"]),
            "client CPU = user+system time of the whole client process (all threads), read "
            "by the harness from the process's CPU clock around each workload",
            "server: %s; machine: %s" % (meta["server"], meta["machine"]),
            "clients: %s" % "; ".join("%s = %s" % (c, meta["ready"][c]) for c in clients),
            ""]
    return "\n".join(head + lines) + "\n"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs (%s)" % (os.cpu_count(), model)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", action="append", required=True, metavar="NAME=CMD")
    ap.add_argument("--rows", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--java-warmup", type=int, default=2)
    ap.add_argument("--uri", default=os.environ.get("BENCH_URI", "bolt://127.0.0.1:7687"))
    ap.add_argument("--user", default=os.environ.get("NEO4J_USER", "neo4j"))
    ap.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD", "cgw-local-password"))
    ap.add_argument("--server-pidfile", default="var/neo4j/pid")
    ap.add_argument("--logdir", default="var/bench")
    ap.add_argument("--quiet-wait", type=float, default=60,
                    help="longest wait for a quiet machine before each measurement (s)")
    ap.add_argument("--quiet-budget", type=float, default=240,
                    help="longest total of those waits in a run (s)")
    ap.add_argument("--out")
    args = ap.parse_args()

    env = dict(os.environ, BENCH_URI=args.uri, NEO4J_USER=args.user,
               NEO4J_PASSWORD=args.password, BENCH_ROWS=str(args.rows),
               BENCH_BATCH=str(args.batch))
    os.makedirs(args.logdir, exist_ok=True)
    bench = Bench(args)
    clients = {}
    names = []
    try:
        bench.setup()
        with bench.driver.session(database="system") as s:
            comp = s.run("CALL dbms.components() YIELD name, versions, edition "
                         "RETURN name, versions[0], edition").values()
        server = ", ".join("%s %s %s" % tuple(c) for c in comp)
        if bench.server_pid is None:
            server += " (server pid unknown: server CPU not measured)"
        for spec in args.client:
            name, cmd = spec.split("=", 1)
            log("starting %s: %s" % (name, cmd))
            clients[name] = Client(name, cmd, env, args.logdir)
            names.append(name)
        ready = {}
        for name in names:
            line = clients[name].readline(180)
            if not line.startswith("ready"):
                raise RuntimeError("%s: %s" % (name, line))
            ready[name] = line[len("ready "):]
        results = {c: {"write": [], "read": []} for c in names}
        for name in names:
            k = args.java_warmup if name == "java" else args.warmup
            for i in range(k):
                bench.round(clients[name], "warm-up%d" % (i + 1))
        for rep in range(args.reps):
            for name in names:
                w, r = bench.round(clients[name], "run%d" % (rep + 1))
                results[name]["write"].append(w)
                results[name]["read"].append(r)
        meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
                "warmup": "%d warm-up round(s) per client, %d for java; a round is one "
                          "write and one read" % (args.warmup, args.java_warmup),
                "server": server, "machine": machine(), "ready": ready}
        text = report(args, results, names, meta)
        print(text, end="")
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                f.write(text)
            log("written to %s" % args.out)
    finally:
        for c in clients.values():
            c.close()
        bench.teardown()
        log("BenchRow nodes and the bench_row_id constraint removed")


if __name__ == "__main__":
    main()
