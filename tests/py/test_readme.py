# tests/py/test_readme.py: the README's configuration table is the binary's own reference
# (`cgw config-reference`), so every key is documented in one place and cannot drift.
import os
import subprocess

from cgw_worker import ROOT, binary


def test_readme_config_table_is_generated_from_the_binary():
    r = subprocess.run([os.path.join(ROOT, "scripts", "readme-config"), "--check"],
                       env=dict(os.environ, CGW_BIN=binary()), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
