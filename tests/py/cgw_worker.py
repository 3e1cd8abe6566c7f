# tests/py/cgw_worker.py: run the real cgw binary against the local stack, for the end-to-end
# tests. A Scenario owns what one test needs to be independent of the others: its own topics
# (6 partitions, created here), consumer groups, idempotency key prefix, flags file, metrics
# port and config file; the graph is shared (Neo4j Community has one database), so tests that
# count it wipe the model's nodes first.
#
# The worker is the sanitizer build (CGW_BUILD, default build/asan): its stderr is checked for
# AddressSanitizer/UBSan/LeakSanitizer reports when it exits.
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
BOOTSTRAP = "127.0.0.1:%s" % os.environ.get("KAFKA_PORT", "9092")
VALKEY_PORT = int(os.environ.get("VALKEY_PORT", "6390"))
# The stack's TLS listener, its CA and least-privilege ACL user (scripts/stack, scripts/lib.sh).
VALKEY_TLS_PORT = int(os.environ.get("VALKEY_TLS_PORT", "6391"))
VALKEY_TLS_DIR = os.path.join(os.environ.get("CGW_VAR", os.path.join(ROOT, "var")), "valkey", "tls")
VALKEY_ACL_USER = os.environ.get("VALKEY_ACL_USER", "cgw")
VALKEY_ACL_PASSWORD = os.environ.get("VALKEY_ACL_PASSWORD", "cgw-local-valkey-password")
NEO4J_PORT = int(os.environ.get("NEO4J_BOLT_PORT", "7687"))
SANITIZER = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:")
# Every worker a Scenario started, in order, until reaped (conftest.py's autouse fixture).
_STARTED = []


def started():
    """A mark: how many workers were started so far (before a test's own)."""
    return len(_STARTED)


def reap(mark=0):
    """Kill (SIGKILL) the workers started since `mark` that still run: a test that fails between
    a Scenario's start() and stop() would otherwise leave its worker consuming and writing the
    shared graph beside the next tests. Workers started before the mark are left alone: a
    module-scoped fixture's worker serves the module's next tests. Returns the commands of the
    workers it killed."""
    killed = []
    while len(_STARTED) > mark:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
            killed.append(proc.args)
    return killed


def assert_graph(drv, truths):
    """The graph equals the union of the generator's ground truths (tools/graphcheck.py)."""
    import graphcheck
    got, bad = graphcheck.compare(drv, truths)
    assert not bad, "graph differs from the ground truth:\n" + "\n".join(bad[:30])


def binary(build=None):
    return os.path.join(ROOT, build or os.environ.get("CGW_BUILD", "build/asan"), "cgw")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def create_topics(names, partitions=6):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    for f in futures.values():
        f.result(30)


def generate(kind, topic, n, seed, truth_path, *extra):
    """Publish with tools/gen.py; returns the truth (with sets)."""
    cmd = [sys.executable, os.path.join(ROOT, "tools", "gen.py"), kind, "-n", str(n), "--seed", str(seed),
           "--bootstrap", BOOTSTRAP, "--topic", topic, "--truth", truth_path] + list(extra)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(truth_path) as f:
        return json.load(f)


class Scenario:
    def __init__(self, tmp, fakes_ports, receipts=True, factoids=False, rollout="true", valkey_port=None,
                 batch_size=200, extra_yaml="", flags_source="file", fakes=None, valkey_tls=False,
                 neo4j_yaml="", kafka_yaml="", enrichment_timeout_ms=1000, kafka_section=None, env=None,
                 writers=1):
        self.tmp = str(tmp)
        # kafka_section replaces the whole kafka section (MSK IAM tests); env is added to the
        # worker's environment
        self.kafka_section_override = kafka_section
        self.env = env or {}
        tag = uuid.uuid4().hex[:10]
        self.flags_source = flags_source
        self.fakes = fakes
        self.flags_prefix = "cgw:testflags:%s:" % tag
        self.receipt_topic = "test-%s-receipts" % tag
        self.factoid_topic = "test-%s-factoids" % tag
        self.group_suffix = tag
        self.flags_path = os.path.join(self.tmp, "flags.json")
        self.set_flags({"consumer_graph_ingestion": {"boolean": rollout} if rollout in ("true", "false")
                        else {"percentage_of_actors": rollout}})
        create_topics([self.receipt_topic, self.factoid_topic])
        self.metrics_port = free_port()
        self.config_path = os.path.join(self.tmp, "cgw.yaml")
        self.fakes_ports = fakes_ports
        self.receipts, self.factoids = receipts, factoids
        self.valkey_tls = valkey_tls
        self.valkey_ca = "ca.crt"               # of VALKEY_TLS_DIR, with valkey_tls
        self.valkey_port = valkey_port or (VALKEY_TLS_PORT if valkey_tls else VALKEY_PORT)
        self.batch_size = batch_size
        self.writers = writers
        self.extra_yaml = extra_yaml
        self.neo4j_yaml = ", " + neo4j_yaml if neo4j_yaml else ""
        self.kafka_yaml = ", " + kafka_yaml if kafka_yaml else ""
        self.kafka_section = self.kafka_section_override or f'kafka: {{brokers: "{BOOTSTRAP}"{self.kafka_yaml}}}'
        self.enrichment_timeout_ms = enrichment_timeout_ms
        # Over TLS the worker is the ACL user, who may only touch cgw:done:*.
        self.key_prefix = ("cgw:done:test:%s:" if valkey_tls else "cgw:test:%s:") % tag
        self.write_config()
        self.proc = None
        self.runs = 0

    def set_flags(self, features):
        """Publish flags (Flipper export format's features) through this scenario's source."""
        self.features = features
        if self.flags_source == "file":
            tmp = self.flags_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"version": 1, "features": features}, f)
            os.replace(tmp, self.flags_path)
        elif self.flags_source == "http":
            st, _, body = self.fakes.request("flipper", "/_control/flags", {"version": 1, "features": features})
            assert st == 200, body
        else:  # Flipper's Redis-adapter layout in Valkey
            import redis
            r = redis.Redis(port=VALKEY_PORT)
            r.delete(self.flags_prefix + "flipper_features")
            for name, gates in features.items():
                r.sadd(self.flags_prefix + "flipper_features", name)
                key = self.flags_prefix + name
                r.delete(key)
                fields = {}
                for g, v in gates.items():
                    if g == "actors":
                        fields.update({"actors/" + a: "1" for a in v})
                    else:
                        fields[g] = str(v)
                if fields:
                    r.hset(key, mapping=fields)

    def write_config(self, group_suffix=None, key_prefix=None):
        g = group_suffix or self.group_suffix
        with open(self.config_path, "w") as f:
            f.write(f"""
log: {{format: logfmt, level: info}}
{self.kafka_section}
consumers:
  receipt: {{enabled: {str(self.receipts).lower()}, topic: {self.receipt_topic}, group: cgw-test-r-{g}, batch_size: {self.batch_size}, linger_ms: 100, writers: {self.writers}}}
  factoid: {{enabled: {str(self.factoids).lower()}, topic: {self.factoid_topic}, group: cgw-test-f-{g}, batch_size: {self.batch_size}, linger_ms: 100, writers: {self.writers}}}
neo4j: {{uri: "bolt://127.0.0.1:{NEO4J_PORT}", user: neo4j, password: "${{NEO4J_PASSWORD:-cgw-local-password}}", max_retry_time_ms: 5000{self.neo4j_yaml}}}
valkey: {{host: 127.0.0.1, port: {self.valkey_port}, timeout_ms: 300, key_prefix: "{key_prefix or self.key_prefix}"{self.valkey_tls_yaml()}}}
enrichment:
  fido: {{base_url: "http://127.0.0.1:{self.fakes_ports['fido']}", timeout_ms: {self.enrichment_timeout_ms}, retries: 2}}
  retailer: {{base_url: "http://127.0.0.1:{self.fakes_ports['retailer']}", timeout_ms: {self.enrichment_timeout_ms}, retries: 2}}
{self.flags_yaml()}
metrics: {{listen: "127.0.0.1:{self.metrics_port}"}}
schema_registry: {{url: "http://127.0.0.1:{self.fakes_ports['registry']}", username: cgw-bot, password: cgw-local-token, timeout_ms: 1000}}
{self.extra_yaml}
""")

    def valkey_tls_yaml(self):
        if not self.valkey_tls:
            return ""
        return (f', tls: true, tls_ca_file: "{os.path.join(VALKEY_TLS_DIR, self.valkey_ca)}", '
                f'username: {VALKEY_ACL_USER}, password: "${{VALKEY_ACL_PASSWORD:-{VALKEY_ACL_PASSWORD}}}"')

    def flags_yaml(self):
        if self.flags_source == "http":
            return (f'flags: {{source: http, http_url: "http://127.0.0.1:{self.fakes.ports["flipper"]}", '
                    f'http_token: s3cret, http_token_header: Flipper-Cloud-Token, poll_interval_seconds: 1}}')
        if self.flags_source == "valkey":
            return f'flags: {{source: valkey, valkey_key_prefix: "{self.flags_prefix}", poll_interval_seconds: 1}}'
        return f'flags: {{source: file, file: "{self.flags_path}", poll_interval_seconds: 1}}'

    # ---- the worker process ---------------------------------------------------------------

    def command(self):
        """The worker's command line (tests/py/test_image.py runs the container image instead)."""
        return [binary(), "run", "-c", self.config_path]

    def start(self, build=None):
        """build: another build directory than CGW_BUILD's (build/release to measure memory)."""
        self.runs += 1
        self.log_path = os.path.join(self.tmp, "worker-%d.log" % self.runs)
        self.err_path = os.path.join(self.tmp, "worker-%d.err" % self.runs)
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0", **self.env)
        cmd = self.command() if build is None else [binary(build), "run", "-c", self.config_path]
        self.proc = subprocess.Popen(cmd,
                                     stdout=open(self.log_path, "w"), stderr=open(self.err_path, "w"),
                                     env=env, cwd=ROOT)
        _STARTED.append(self.proc)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("worker exited at start: %s" % self.output())
            try:
                self.metrics()
                return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("worker metrics never came up")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if not self.proc or self.proc.poll() is not None:
            return self.proc and self.proc.returncode
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("worker did not stop within %d s after %s" % (timeout, sig))
        if sig == signal.SIGTERM:
            err = open(self.err_path).read()
            assert not SANITIZER.search(err), "sanitizer report:\n" + err[-4000:]
            assert rc == 0, "worker exit %s: %s" % (rc, err[-2000:])
        return rc

    def output(self):
        return open(self.log_path).read() + open(self.err_path).read()

    def log_lines(self, text):
        return [l for l in open(self.log_path) if text in l]

    # ---- metrics --------------------------------------------------------------------------

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
        return out

    def counter(self, name, **labels):
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        total = 0.0
        for k, v in self.metrics().items():
            base, _, rest = k.partition("{")
            if base != name:
                continue
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if all(('%s="%s"' % kv) in got for kv in labels.items()):
                total += v
        return int(total)

    def wait_consumed(self, consumer, n, timeout=180):
        """Until n records were consumed and settled (persisted, skipped or errors)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("worker died: " + self.output()[-3000:])
            settled = (self.counter("cgw_records_persisted_total", consumer=consumer) +
                       self.counter("cgw_records_rewritten_total", consumer=consumer) +
                       self.counter("cgw_records_skipped_total", consumer=consumer) +
                       self.counter("cgw_records_errors_total", consumer=consumer))
            if settled >= n:
                return settled
            time.sleep(0.3)
        raise AssertionError("%s: %d of %d records settled in %d s" % (consumer, settled, n, timeout))

    def outcome_counts(self, consumer):
        reasons = ["digital", "status"] if consumer == "receipt" else ["source", "type"]
        out = {r: self.counter("cgw_records_skipped_total", consumer=consumer, reason=r)
               for r in reasons + ["no_fidos", "not_in_rollout", "duplicate"]}
        out["persisted"] = self.counter("cgw_records_persisted_total", consumer=consumer)
        out["error"] = self.counter("cgw_records_errors_total", consumer=consumer)
        return out

    # ---- Kafka's view -----------------------------------------------------------------------

    def group(self, consumer):
        return "cgw-test-%s-%s" % ("r" if consumer == "receipt" else "f", self.group_suffix)

    def topic(self, consumer):
        return self.receipt_topic if consumer == "receipt" else self.factoid_topic

    def lag(self, consumer, group=None):
        """Records of the topic past the group's committed offsets (None: nothing committed)."""
        from confluent_kafka import Consumer, TopicPartition
        c = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": group or self.group(consumer),
                      "enable.auto.commit": False})
        try:
            topic = self.topic(consumer)
            parts = [TopicPartition(topic, p) for p in range(6)]
            committed = c.committed(parts, timeout=10)
            lag = 0
            for tp in committed:
                lo, hi = c.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
                lag += hi - (tp.offset if tp.offset >= 0 else lo)
            return lag
        finally:
            c.close()

    def wait_drained(self, consumer, timeout=240):
        """Until the group's committed offsets reach the end of every partition."""
        deadline = time.time() + timeout
        lag = None
        while time.time() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError("worker died: " + self.output()[-3000:])
            lag = self.lag(consumer)
            if lag == 0:
                return
            time.sleep(0.5)
        raise AssertionError("%s: lag still %s after %d s" % (consumer, lag, timeout))

    def status(self):
        """`cgw status --json` against this worker, parsed."""
        r = subprocess.run([binary(), "status", "--url", "http://127.0.0.1:%d" % self.metrics_port, "--json"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def consumer_status(self, consumer):
        return next(c for c in self.status()["consumers"] if c["name"] == consumer)

    def group_members(self, consumer):
        return len(self.group_description(consumer).members)

    def group_description(self, consumer):
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        return admin.describe_consumer_groups([self.group(consumer)])[self.group(consumer)].result(30)

    def wait_for(self, what, predicate, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return time.time()
            if self.proc and self.proc.poll() is not None:
                raise AssertionError("worker died: " + self.output()[-3000:])
            time.sleep(0.2)
        raise AssertionError("timed out waiting for " + what)
