# tests/py/test_readme.py: the README's configuration table is the binary's own reference
# (`cgw config-reference`), so every key is documented in one place and cannot drift.
import os
import subprocess

from cgw_worker import ROOT, binary


def test_readme_config_table_is_generated_from_the_binary():
    r = subprocess.run([os.path.join(ROOT, "scripts", "readme-config"), "--check"],
                       env=dict(os.environ, CGW_BIN=binary()), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_readme_minimal_config_is_accepted_as_is(tmp_path):
    """The README's minimal configuration passes `cgw check-config` unchanged, and every key
    it leaves out is one with a default: dropping any of its required keys is refused."""
    import re
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        m = re.search(r"<!-- minimal-config:begin -->\n```yaml\n(.*?)```", f.read(), re.S)
    assert m, "README.md has no minimal-config block"
    path = tmp_path / "minimal.yaml"
    path.write_text(m.group(1))
    env = dict(os.environ, NEO4J_PASSWORD="example")
    r = subprocess.run([binary(), "check-config", "-c", str(path)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "kafka.brokers: \"127.0.0.1:9092\"" in r.stdout
    path.write_text(m.group(1).replace("  brokers: 127.0.0.1:9092\n", ""))
    r = subprocess.run([binary(), "check-config", "-c", str(path)], env=env,
                       capture_output=True, text=True)
    assert r.returncode != 0 and "kafka.brokers" in r.stderr, (r.returncode, r.stderr)
