#!/usr/bin/env python3
# bench/e2e/phases.py: where a worker's wall time went, batch by batch, from its log alone
# (logfmt, millisecond timestamps). Used by bench.py; also standalone:
#
#   phases.py var/bench/<run>/worker.log [--graph-write-seconds S]
#
# The worker's loop (src/pipeline/consumer.c) logs, per batch and in this order: a
# "[WARN] Skipping ..." line per record skipped by decode/filter (as it decodes), then one per
# duplicate (after the idempotency cache answered), then, after enrichment, the Neo4j
# transaction and the idempotency marks, a "[SUCCESS] Persisted graph data" line per record.
# So each batch is a run of skip lines followed by a run of SUCCESS lines, and:
#   decode     first skip line -> last decode/filter skip line
#   dedupe     -> last duplicate skip line (the Valkey MGET; 0 when the batch had no duplicate)
#   write      last skip line -> first SUCCESS line: enrichment + graph_write + idempotency
#              marks (graph_write's own share comes from the cgw_graph_write_seconds metric)
#   success    first -> last SUCCESS line: writing those log lines
#   between    last SUCCESS line -> first line of the next batch: offsets stored, lag
#              updated, the next batch collected (poll) and decoded up to its first skip
# A batch whose first records are eligible starts a little before its first line; that time
# lands in "between". Resolution: 1 ms per line, fine over hundreds of batches.
# Needs a single consumer (the lines of two consumers interleave).
import argparse
import datetime
import re
import sys

TS = re.compile(r"^ts=(\S+) ")


def ts(line):
    m = TS.match(line)
    if not m:
        return None
    return datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def analyse(path):
    batches = []  # dicts: first, last_decode, last_skip, first_ok, last_ok, n_skip, n_dup, n_ok
    cur = None
    for line in open(path, encoding="utf-8", errors="replace"):
        is_ok = "[SUCCESS] Persisted graph data" in line
        is_skip = "[WARN] Skipping" in line
        if not (is_ok or is_skip):
            continue
        t = ts(line)
        if is_skip:
            if cur is None or cur["first_ok"] is not None:
                cur = {"first": t, "last_decode": None, "last_skip": t, "first_ok": None, "last_ok": None,
                       "n_skip": 0, "n_dup": 0, "n_ok": 0}
                batches.append(cur)
            cur["n_skip"] += 1
            cur["last_skip"] = t
            if "reason=duplicate" in line:
                cur["n_dup"] += 1
            else:
                cur["last_decode"] = t
        else:
            if cur is None:  # a batch without any skip line
                cur = {"first": t, "last_decode": None, "last_skip": t, "first_ok": None, "last_ok": None,
                       "n_skip": 0, "n_dup": 0, "n_ok": 0}
                batches.append(cur)
            if cur["first_ok"] is None:
                cur["first_ok"] = t
            cur["last_ok"] = t
            cur["n_ok"] += 1
    tot = {"batches": len(batches), "decode": 0.0, "dedupe": 0.0, "write": 0.0, "success": 0.0, "between": 0.0}
    for i, b in enumerate(batches):
        ld = b["last_decode"] if b["last_decode"] is not None else b["first"]
        tot["decode"] += ld - b["first"]
        tot["dedupe"] += b["last_skip"] - ld if b["n_dup"] else 0.0
        if b["first_ok"] is not None:
            tot["write"] += b["first_ok"] - b["last_skip"]
            tot["success"] += b["last_ok"] - b["first_ok"]
            if i + 1 < len(batches):
                tot["between"] += batches[i + 1]["first"] - b["last_ok"]
    if batches:
        tot["span"] = (batches[-1]["last_ok"] or batches[-1]["last_skip"]) - batches[0]["first"]
    return tot


def render(tot, graph_write_s=None):
    if not tot["batches"]:
        return "no batches found"
    span = tot.get("span", 0) or 1
    rows = [("decode + filter (+ skip log lines)", tot["decode"]),
            ("duplicates (in batch + Valkey MGET)", tot["dedupe"])]
    if graph_write_s is not None:
        rows += [("graph_write (cgw_graph_write_seconds)", graph_write_s),
                 ("enrichment + idempotency marks", tot["write"] - graph_write_s)]
    else:
        rows += [("enrichment + graph_write + marks", tot["write"])]
    rows += [("[SUCCESS] log lines", tot["success"]),
             ("offsets, lag, collect (poll) of next", tot["between"])]
    out = ["worker phases over %d batches, %.1f s from the first batch's first line to the last line:"
           % (tot["batches"], span)]
    for name, s in rows:
        out.append("  %-40s %6.1f s  %5.1f%%  %6.1f ms/batch" % (name, s, 100 * s / span, 1000 * s / tot["batches"]))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--graph-write-seconds", type=float)
    a = ap.parse_args()
    print(render(analyse(a.log), a.graph_write_seconds))


if __name__ == "__main__":
    sys.exit(main())
