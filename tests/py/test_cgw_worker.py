# tests/py/test_cgw_worker.py: the end-to-end harness itself (tests/py/cgw_worker.py). A failed
# stack test once left its worker running, consuming and writing the shared graph beside the
# tests after it; conftest.py's autouse fixture now kills what a test's Scenarios left running.
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cgw_worker  # noqa: E402


def test_reap_kills_the_workers_left_running_and_forgets_the_stopped():
    alive = subprocess.Popen(["sleep", "300"])
    done = subprocess.Popen(["true"])
    done.wait()
    cgw_worker._STARTED.extend([alive, done])
    assert cgw_worker.reap() == [["sleep", "300"]]
    assert alive.returncode == -9
    assert cgw_worker._STARTED == []
    assert cgw_worker.reap() == []


def test_reap_leaves_the_workers_started_before_its_mark():
    """A module-scoped fixture's worker (tests/py/test_status_page.py) serves the module's next
    tests: reaping after the first test killed it once."""
    before = subprocess.Popen(["sleep", "300"])
    cgw_worker._STARTED.append(before)
    mark = cgw_worker.started()
    during = subprocess.Popen(["sleep", "301"])
    cgw_worker._STARTED.append(during)
    assert cgw_worker.reap(mark) == [["sleep", "301"]]
    assert before.poll() is None and cgw_worker._STARTED == [before]
    assert cgw_worker.reap() == [["sleep", "300"]]


def test_a_started_scenario_is_registered_for_reaping(tmp_path):
    sc = cgw_worker.Scenario.__new__(cgw_worker.Scenario)
    sc.tmp, sc.env, sc.runs, sc.metrics_port = str(tmp_path), {}, 0, cgw_worker.free_port()
    sc.command = lambda: ["sleep", "300"]     # a process that outlives its test
    sc.metrics = lambda: {}                   # start() returns once the metrics answer
    sc.start()
    assert cgw_worker._STARTED == [sc.proc] and sc.proc.poll() is None
    assert cgw_worker.reap() == [["sleep", "300"]]
