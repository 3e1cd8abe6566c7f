# tests/py/test_image.py: the worker's container image (scripts/image), run as a container
# against the local stack, and checked against the Dockerfile.
#
# Design: scripts/image builds build/image/cgw-oci.tar (cached: rebuilt only when the binary,
# the production config or the script changed; the Debian base layer is cached apart). The
# archive is read by skopeo (containers/image, the library behind `podman load`) both as an
# OCI archive and as a `docker load` archive, so the two views are checked by the loaders'
# own code, not by ours. The run test unpacks the image into an OCI runtime bundle (umoci) and
# starts it under runc as the image says (its user, entrypoint, environment), with a
# read-only root file system, in the host's network namespace so that it reaches the stack on
# loopback; the test's config directory is bind-mounted read-only at the same path. It
# publishes generated receipts (tools/gen.py), sees them in Neo4j (tools/graphcheck.py, against
# the generator's ground truth), then stops the container the way ECS and Docker do (SIGTERM
# to the container's process) and expects exit 0 after the worker's own shutdown line.
import gzip
import json
import os
import re
import shlex
import subprocess
import sys
import time

import pytest

from cgw_worker import ROOT, Scenario, generate
import graphcheck
from test_ecs import deployment_env, secret_value

IMAGE_DIR = os.path.join(ROOT, "build", "image")
ARCHIVE = os.path.join(IMAGE_DIR, "cgw-oci.tar")
SCRIPT = os.path.join(ROOT, "scripts", "image")
LIMIT = 60 * 1000 * 1000   # bytes, uncompressed


@pytest.fixture(scope="module")
def image():
    r = subprocess.run([SCRIPT, "build"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    return ARCHIVE


def image_settings():
    """scripts/image config: KEY=VALUE lines; repeated keys collected in lists."""
    out = subprocess.run([SCRIPT, "config"], capture_output=True, text=True, check=True).stdout
    cfg = {}
    for line in out.splitlines():
        k, v = line.split("=", 1)
        if k in ("IMAGE_ENV", "IMAGE_LABEL"):
            cfg.setdefault(k, []).append(v)
        else:
            cfg[k] = v
    return cfg


def skopeo(*args):
    r = subprocess.run(["skopeo"] + list(args), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def dockerfile():
    """The runtime stage's instructions of the Dockerfile: {instruction: [argument text]}."""
    text = open(os.path.join(ROOT, "Dockerfile")).read().replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)
    out = {}
    for line in stages[-1].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.setdefault(word.upper(), []).append(rest.strip())
    return out


def test_archive_loads_as_oci_and_as_docker_archive_and_matches_the_dockerfile(image):
    want = image_settings()
    oci = json.loads(skopeo("inspect", "--config", "oci-archive:" + image))
    docker = json.loads(skopeo("inspect", "--config", "docker-archive:" + image))
    assert oci == docker
    c = oci["config"]
    assert c["User"] == want["IMAGE_USER"] and not c["User"].startswith("0")
    assert c["Entrypoint"] == [want["IMAGE_ENTRYPOINT"]]
    assert c["Cmd"] == want["IMAGE_CMD"].split()
    assert sorted(c["Env"]) == sorted(want["IMAGE_ENV"])
    assert list(c["ExposedPorts"]) == [want["IMAGE_PORT"]]
    assert c["StopSignal"] == "SIGTERM" == want["IMAGE_STOPSIGNAL"]
    assert set(c["Labels"]) == {l.split("=", 1)[0] for l in want["IMAGE_LABEL"]} | {"org.opencontainers.image.revision"}
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    assert c["Labels"]["org.opencontainers.image.version"] == version
    # The Dockerfile's runtime stage says the same.
    d = dockerfile()
    assert d["USER"] == [want["IMAGE_USER"]]
    assert [json.loads(x) for x in d["ENTRYPOINT"]] == [c["Entrypoint"]]
    assert [json.loads(x) for x in d["CMD"]] == [c["Cmd"]]
    assert d["EXPOSE"] == [want["IMAGE_PORT"]]
    assert d["STOPSIGNAL"] == ["SIGTERM"]
    assert sorted(shlex.split(" ".join(d["ENV"]))) == sorted(c["Env"])
    labels = dict(kv.split("=", 1) for kv in shlex.split(" ".join(d["LABEL"])))
    assert set(labels) == set(c["Labels"])
    assert any(re.search(r"\bARG VERSION=%s$" % re.escape(version), a, re.M) for a in
               ["ARG " + x for x in d.get("ARG", [])]), "Dockerfile's ARG VERSION default is not " + version
    assert any("/healthz" in h for h in d["HEALTHCHECK"])
    assert d["COPY"] == ["--from=build /out/cgw /usr/bin/cgw",
                         "config/production.example.yaml /etc/cgw/config.yaml"]


def test_dockerfile_passes_hadolint():
    # The Dockerfile cannot be built here (no engine): hadolint, Docker's usual linter, parses
    # it as BuildKit does and checks the shell in its RUN lines (ShellCheck).
    hadolint = os.path.join(os.path.dirname(sys.executable), "hadolint")
    r = subprocess.run([hadolint, "--no-color", os.path.join(ROOT, "Dockerfile")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_image_holds_only_the_runtime_and_stays_under_60_mb(image, tmp_path):
    # The loaders' view of the layers: uncompressed sizes from a copy to a plain directory.
    dest = tmp_path / "dir"
    skopeo("copy", "--quiet", "docker-archive:" + image, "dir:" + str(dest))
    sizes, files = [], []
    manifest = json.load(open(dest / "manifest.json"))
    for layer in manifest["layers"]:
        blob = str(dest / layer["digest"].split(":")[1])
        with open(blob, "rb") as f:
            opener = gzip.open if f.read(2) == b"\037\213" else open
        with opener(blob, "rb") as f:
            n = 0
            while chunk := f.read(1 << 20):
                n += len(chunk)
            sizes.append(n)
        files += subprocess.run(["tar", "-tf", blob], capture_output=True, text=True,
                                check=True).stdout.split()
    total = sum(sizes)
    print("image: %d bytes uncompressed in %d layers" % (total, len(sizes)))
    assert total < LIMIT, "image is %d bytes uncompressed" % total
    names = {f.lstrip("./") for f in files}
    assert "usr/bin/cgw" in names and "etc/cgw/config.yaml" in names
    assert "etc/ssl/certs/ca-certificates.crt" in names and "usr/bin/curl" in names
    base = str(dest / manifest["layers"][0]["digest"].split(":")[1])
    bundle = subprocess.run(["tar", "-xOf", base, "./etc/ssl/certs/ca-certificates.crt"], capture_output=True,
                            text=True, check=True).stdout
    assert bundle.count("-----BEGIN CERTIFICATE-----") >= 100
    passwd = subprocess.run(["tar", "-xOf", base, "./etc/passwd"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^cgw:x:10001:10001:", passwd, re.M), passwd
    # No shell, no package manager, no compiler, nothing of the build.
    for absent in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt", "usr/bin/dpkg", "usr/bin/gcc", "usr/bin/make"):
        assert absent not in names, absent
    assert not any(n.startswith(("usr/include/", "usr/share/doc/")) or n.endswith((".a", ".o", ".h")) for n in names)


class ImageScenario(Scenario):
    """A Scenario whose worker is the image under runc instead of the binary on the host."""

    def __init__(self, tmp, bundle, *args, **kw):
        self.bundle = bundle
        self.state = os.path.join(str(tmp), "runc-state")
        self.cid = "cgw-test-%d" % os.getpid()
        super().__init__(tmp, *args, **kw)

    def configure_bundle(self, args):
        path = os.path.join(self.bundle, "config.json")
        spec = json.load(open(path))
        spec["process"]["terminal"] = False
        spec["process"]["args"] = spec["process"]["args"][:1] + args
        if os.environ.get("NEO4J_PASSWORD"):
            spec["process"]["env"].append("NEO4J_PASSWORD=" + os.environ["NEO4J_PASSWORD"])
        spec["root"]["readonly"] = True
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
        spec["mounts"].append({"destination": self.tmp, "type": "bind", "source": self.tmp,
                               "options": ["rbind", "ro"]})
        json.dump(spec, open(path, "w"))
        return spec

    def command(self):
        return ["runc", "--root", self.state, "run", "--bundle", self.bundle, self.cid]

    def pid(self):
        r = subprocess.run(["runc", "--root", self.state, "state", self.cid], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["pid"]

    def stop_container(self, timeout=60):
        subprocess.run(["runc", "--root", self.state, "kill", self.cid, "TERM"], check=True)
        return self.proc.wait(timeout)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(["runc", "--root", self.state, "kill", self.cid, "KILL"])
            self.proc.wait(30)
        subprocess.run(["runc", "--root", self.state, "delete", "--force", self.cid], capture_output=True)


def test_image_persists_receipts_under_runc_and_stops_on_sigterm(image, tmp_path, fakes, clean_graph):
    bundle = str(tmp_path / "bundle")
    r = subprocess.run([SCRIPT, "bundle", bundle], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # The container's user reads the config and the flags: a directory it may enter.
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    sc = ImageScenario(shared, bundle, fakes.ports, batch_size=100)
    spec = sc.configure_bundle(["run", "-c", sc.config_path])
    assert spec["process"]["user"]["uid"] == 10001
    truth = generate("receipts", sc.receipt_topic, 600, 23, str(tmp_path / "t.json"))
    try:
        sc.start()
        # As the image says: not root, and the root file system is read-only.
        pid = sc.pid()
        status = open("/proc/%d/status" % pid).read()
        assert re.search(r"^Uid:\s+10001\s", status, re.M), status
        root = [l.split() for l in open("/proc/%d/mountinfo" % pid) if l.split()[4] == "/"]
        assert root and "ro" in root[-1][5].split(","), root
        sc.wait_consumed("receipt", 600)
        sc.wait_drained("receipt")
        assert sc.outcome_counts("receipt") == truth["outcomes"]
        got, bad = graphcheck.compare(clean_graph, [truth])
        assert not bad, "graph differs from the ground truth:\n" + "\n".join(bad[:30])
        rc = sc.stop_container()
    finally:
        sc.cleanup()
    out = sc.output()
    assert rc == 0, out[-3000:]
    assert "Stopping: finishing the batches in flight" in out
    assert len(sc.log_lines("[SUCCESS] Persisted graph data")) == truth["outcomes"]["persisted"]
    # The configuration the image carries starts with the ECS task's variables, in the image.
    env = deployment_env()
    spec = json.load(open(os.path.join(bundle, "config.json")))
    spec["process"]["args"] = [spec["process"]["args"][0], "check-config", "-c", "/etc/cgw/config.yaml"]
    spec["process"]["env"] = [e for e in spec["process"]["env"] if e.split("=", 1)[0] not in env]
    spec["process"]["env"] += ["%s=%s" % kv for kv in sorted(env.items())]
    json.dump(spec, open(os.path.join(bundle, "config.json"), "w"))
    r = subprocess.run(["runc", "--root", sc.state, "run", "--bundle", bundle, sc.cid + "-check"],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^kafka.sasl_mechanism: \"?OAUTHBEARER\"?$", r.stdout, re.M), r.stdout
    assert not any(secret_value(n) in r.stdout for n in env), "a secret is printed"
