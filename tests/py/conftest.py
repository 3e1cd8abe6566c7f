# tests/py/conftest.py: shared fixtures for the Python tests of tools/ (fakes, generator).
#
# Design: tools/ goes on sys.path; `fakes` starts tools/fakes.py as a real subprocess on free
# loopback ports (found by binding port 0) and waits for its pidfile, which the fakes write only
# once every port is bound; `proto_classes` compiles the contract .proto files into a descriptor
# set with protoc or protoc-c (whichever is installed; scripts/deps installs protoc-c) and loads
# them into the official `protobuf` runtime; `kafka_bootstrap` is the project's stack
# (scripts/stack up), and tests needing it fail when nothing listens on 127.0.0.1:$KAFKA_PORT;
# `msk_iam` is that Kafka's SASL_SSL listener for MSK-style IAM tokens (tests/py/msk_iam.py:
# port $KAFKA_SASL_PORT, CA file, region, test access keys, tokens of AWS's signer).
# `clean_graph` is the stack's Neo4j with the model's nodes wiped, for the end-to-end tests.
# After every test, the workers it started and left running are killed (cgw_worker.reap;
# not those of module-scoped fixtures): a failed test must not leave a worker writing beside
# the next ones.
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(ROOT, "tools")
sys.path.insert(0, TOOLS)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Fakes:
    def __init__(self, tmp, extra=()):
        self.ports = dict(zip(["fido", "retailer", "flipper", "registry"], free_ports(4)))
        self.pidfile = os.path.join(tmp, "fakes.pid")
        self.log = os.path.join(tmp, "access.log")
        cmd = [sys.executable, os.path.join(TOOLS, "fakes.py"), "--pidfile", self.pidfile,
               "--access-log", self.log] + [f"--{s}-port={p}" for s, p in self.ports.items()]
        self.proc = subprocess.Popen(cmd + list(extra), stderr=subprocess.PIPE)
        deadline = time.time() + 15
        while not os.path.exists(self.pidfile):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("fakes did not start: " + self.proc.stderr.read().decode())
            time.sleep(0.05)

    def url(self, service, path):
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def request(self, service, path, body=None, headers=None, method=None):
        """(status, headers, parsed JSON or None)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url(service, path), data=data, headers=headers or {},
                                     method=method or ("POST" if data is not None else "GET"))
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                raw, status, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, status, hdrs = e.read(), e.code, e.headers
        return status, hdrs, (json.loads(raw) if raw else None)

    def control(self, service, **switches):
        st, _, body = self.request(service, "/_control", switches)
        assert st == 200, body
        return body

    def stats(self, service):
        return self.request(service, "/_stats")[2]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    # Function-scoped: set up after the module's and session's fixtures, so the mark comes
    # after their workers and only the test's own are reaped.
    import cgw_worker
    mark = cgw_worker.started()
    yield
    cgw_worker.reap(mark)


@pytest.fixture
def clean_graph():
    """The local stack's Neo4j with the model's nodes wiped (Community has one database)."""
    import graphcheck
    drv = graphcheck.driver()
    graphcheck.wipe(drv)
    yield drv
    drv.close()


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    f = Fakes(str(tmp_path_factory.mktemp("fakes")), ["--flipper-token", "s3cret"])
    yield f
    f.stop()


@pytest.fixture(scope="session")
def proto_classes(tmp_path_factory):
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    protoc = shutil.which("protoc") or shutil.which("protoc-c")
    if not protoc:
        pytest.fail("neither protoc nor protoc-c installed (scripts/deps apt)")
    out = str(tmp_path_factory.mktemp("proto") / "contract.pb")
    subprocess.run([protoc, "-I" + os.path.join(ROOT, "proto"), "-I/usr/include", "--include_imports",
                    "-o" + out, "receipts/v1/processed_receipt_event.proto",
                    "factoids/v1/factoid.proto"], check=True, cwd=ROOT)
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(n))  # noqa: E731
    return {"receipt": get("receipts.v1.ProcessedReceiptEvent"), "factoid": get("factoids.v1.Factoid")}


@pytest.fixture(scope="session")
def kafka_bootstrap():
    port = int(os.environ.get("KAFKA_PORT", "9092"))
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        pytest.fail("no Kafka on 127.0.0.1:%d: start the stack (scripts/stack up)" % port)
    return "127.0.0.1:%d" % port


@pytest.fixture(scope="session")
def msk_iam():
    from msk_iam import Listener
    listener = Listener()
    try:
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    except OSError:
        pytest.fail("no Kafka IAM listener on %s: start the stack (scripts/stack up kafka)" % listener.bootstrap)
    if not os.path.exists(listener.ca_path):
        pytest.fail("no CA file %s: the stack makes it (scripts/stack up kafka)" % listener.ca_path)
    return listener
