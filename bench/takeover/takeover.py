#!/usr/bin/env python3
# bench/takeover/takeover.py: how fast partitions change hands with static group membership
# (issue 11). A benchmark, not a test: it prints figures and asserts nothing.
#
#   1. kill -9 then immediate restart under the same group.instance.id, records flowing:
#      seconds from the kill to the restarted worker's first record (persisted or skipped),
#      --repeat times.
#   2. rolling replacement of 3 instances one by one (start the new one, then SIGTERM the old
#      one, as an ECS deployment does; each new one a new task id) while records flow: the
#      longest stall of any partition (committed offset not moving while records wait),
#      measured by tools/chaos.py's monitor.
#
# Run: bench/takeover/takeover.py [--records N] (the local stack up, build/release/cgw built).
import argparse
import os
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import chaos  # noqa: E402


def first_record_after(w, t_kill, timeout=120):
    path = os.path.join(w.dir, "run-%d.log" % w.runs)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(path, errors="replace") as f:
            if any("[SUCCESS]" in l or "Skipping" in l for l in f):
                return time.time() - t_kill
        time.sleep(0.02)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=40000)
    ap.add_argument("--repeat", type=int, default=3)
    b = ap.parse_args()
    a = chaos.parse_args(["--records", str(b.records), "--faults", "", "--seed", "5", "--pace", "2",
                          "--chunks", "40"])
    run = chaos.Run(a)
    run.start_fakes()
    run.create_topics()
    run.workers = [chaos.Worker(run, i) for i in range(6)]
    run.publish_error = None
    run.monitor = chaos.Monitor(run)
    run.monitor.start()
    publisher = threading.Thread(target=run.publish, daemon=True)
    publisher.start()
    try:
        w = run.workers[0]
        w.start()
        run.sleep(8)
        kills = []
        for _ in range(b.repeat):
            w.kill()
            t = time.time()
            w.start()
            kills.append(first_record_after(w, t))
            run.sleep(3)
        print("kill -9 + restart, same instance id: first record after " +
              ", ".join("%.2f s" % k if k is not None else "none in 120 s" for k in kills), flush=True)
        run.workers[1].start()
        run.workers[2].start()
        run.sleep(8)
        t0 = time.time()
        for old, new in ((0, 3), (1, 4), (2, 5)):
            run.workers[new].start()
            run.sleep(5)
            run.workers[old].stop()
            run.sleep(5)
        run.sleep(3)
        print("rolling replacement of 3 instances: longest partition stall %.1f s over %.0f s"
              % (run.monitor.longest_between(t0, time.time()), time.time() - t0), flush=True)
    finally:
        run.faults_done.set()
        for w in run.workers:
            w.stop()
        run.monitor.close()
        run.fakes.terminate()
        run.fakes.wait(10)


if __name__ == "__main__":
    main()
