"""bench_bolt.py: the official Neo4j Python driver side of `make bench-bolt`.

A benchmark, not a test: see bench/bolt/README.md. Same protocol and workloads as
bench/bolt/bench_bolt.c: bench/bolt/harness.py sends "write", "read" or "quit" on stdin, one
a line, and measures wall time and this process's CPU time (/proc/<pid>/stat) around each.

  write  session.execute_write (managed transaction, one per batch) of the UNWIND/MERGE
         query; answers "ok write rows=N created=C"
  read   session.run of the MATCH query, every value of every record touched; answers
         "ok read rows=N sum_id=S name_bytes=B sum_value=V"

The rows are built once at start-up as lists of dicts (not measured): what an application
hands the driver. Packing them is measured. Driver defaults otherwise (fetch size 1000), but
notifications are switched off as the cgw client does by default.
Run in a venv that also has neo4j-rust-ext, the same script measures that variant (the
extension replaces the driver's PackStream code when it is installed); it reports which.

Environment: BENCH_URI, NEO4J_USER, NEO4J_PASSWORD, BENCH_ROWS, BENCH_BATCH.
"""
import os
import sys

import neo4j
from neo4j import GraphDatabase

WRITE_QUERY = ("UNWIND $rows AS r MERGE (n:BenchRow {id: r.id}) "
               "SET n.name = r.name, n.value = r.value, n.ts = r.ts")
READ_QUERY = "MATCH (n:BenchRow) RETURN n.id, n.name, n.value"


def env(k, dflt):
    return os.environ.get(k) or dflt


def make_batches(n, batch):
    """The same rows in every client: id i, name "row-%08d", value i/2, ts 1.7e12 + i."""
    return [[{"id": i, "name": "row-%08d" % i, "value": i * 0.5, "ts": 1700000000000 + i}
             for i in range(start, min(n, start + batch))]
            for start in range(0, n, batch)]


def write(driver, batches, n):
    def work(tx, rows):
        return tx.run(WRITE_QUERY, rows=rows).consume().counters.nodes_created

    created = 0
    with driver.session(database="neo4j") as s:
        for rows in batches:
            created += s.execute_write(work, rows)
    return "ok write rows=%d created=%d" % (n, created)


def read(driver):
    rows = sum_id = name_bytes = 0
    sum_value = 0.0
    with driver.session(database="neo4j", default_access_mode=neo4j.READ_ACCESS) as s:
        for rec in s.run(READ_QUERY):
            sum_id += rec[0]
            name_bytes += len(rec[1])   # ASCII: chars == bytes
            sum_value += rec[2]
            rows += 1
    return "ok read rows=%d sum_id=%d name_bytes=%d sum_value=%.1f" % (
        rows, sum_id, name_bytes, sum_value)


def variant():
    try:
        import neo4j._rust  # noqa: F401  (present only with neo4j-rust-ext)
        return "with neo4j-rust-ext"
    except ImportError:
        return "pure Python"


def main():
    n = int(env("BENCH_ROWS", "100000"))
    batch = int(env("BENCH_BATCH", "1000"))
    batches = make_batches(n, batch)
    auth = (env("NEO4J_USER", "neo4j"), env("NEO4J_PASSWORD", "cgw-local-password"))
    # Notifications off, as the cgw client does by default (notifications_off).
    with GraphDatabase.driver(env("BENCH_URI", "bolt://127.0.0.1:7687"), auth=auth,
                              notifications_min_severity="OFF") as driver:
        driver.verify_connectivity()   # connecting is not measured in any client
        print("ready neo4j %s (%s), Bolt %s, Python %s" % (
            neo4j.__version__, variant(),
            ".".join(map(str, driver.get_server_info().protocol_version)),
            sys.version.split()[0]), flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "quit":
                break
            try:
                if cmd == "write":
                    answer = write(driver, batches, n)
                elif cmd == "read":
                    answer = read(driver)
                else:
                    answer = "err unknown command " + cmd
            except Exception as e:  # reported to the harness, which stops
                answer = "err %s %r" % (cmd, e)
            print(answer.replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
