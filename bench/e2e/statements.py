#!/usr/bin/env python3
# bench/e2e/statements.py: the statement side of `scripts/bench-e2e` (issue 14):
#
#   --profile   the ceiling program PROFILEs every statement of a representative batch
#               (graph_profile_batch in src/graph: one transaction, rolled back): at the start
#               (the graph as given: empty, or the --preload baseline), at the end (the last
#               batch, held back from the timed part), and that last batch again as a
#               re-delivery. Printed: db hits per statement and per purchase, Eager operators,
#               and the operators that cost >= 10 % of a statement's hits.
#   --shapes    after the ceiling, the write-only ceiling again for the old statement shape
#               (the texts of before issue 14, kept in bench/e2e/ceiling.c) and the new one,
#               with one and with two writers (a stream's batches alternating between two
#               threads): four more runs on the same batches (after one untimed warm-up run of
#               the old shape), each on the reset graph and each checked against the truth, so
#               old vs new and 1 vs 2 writers come from one run.
#
# bench.py calls add_arguments, ceiling_args, run_shapes and render; the figures land in the
# JSON under "ceiling" ("profile") and "shapes".
SHAPES = [("new", 1), ("new", 2), ("old", 1), ("old", 2)]


def add_arguments(ap):
    ap.add_argument("--profile", action="store_true",
                    help="PROFILE the statements on a representative batch (db hits, Eager)")
    ap.add_argument("--shapes", action="store_true",
                    help="also the write-only ceiling of the old and new statement shapes, 1 and 2 writers")


def ceiling_args(a):
    return ["--profile"] if a.profile else []


def run_shapes(a, run_one, say=print):
    """run_one(extra_args) resets the graph, runs the ceiling and returns its result with
    "correct"; one row per shape and writer count."""
    rows = []
    # Untimed: the first run of the old texts after the new ones measured half the rate of the
    # same run repeated (plans, JIT, caches), so the old shape gets one warm-up run first, as
    # the new shape had the main ceiling run.
    run_one(["--shape", "old"])
    for shape, writers in SHAPES:
        c = run_one(["--shape", shape, "--writers", str(writers)])
        rows.append({"shape": shape, "writers": writers, "persisted": c["persisted"],
                     "wall_seconds": c["wall_seconds"], "persisted_per_s": c["persisted_per_s"],
                     "retries": sum(c.get(s, {}).get("retries", 0) for s in ("receipt", "factoid")),
                     "neo4j_cpu_seconds": c.get("neo4j_cpu_seconds"), "correct": c["correct"]})
        say("  ceiling, %s shape, %d writer%s: %.0f/s (%d in %.1f s, %d retried)%s"
            % (shape, writers, "s" if writers > 1 else "", c["persisted_per_s"], c["persisted"],
               c["wall_seconds"], rows[-1]["retries"], "" if c["correct"] else "; GRAPH WRONG"))
    return rows


def render_profile(prof):
    lines = []
    for p in prof:
        if "error" in p:
            lines.append("  profile %s: %s" % (p["when"], p["error"]))
            continue
        lines.append("  profile %-10s %d purchases, %d lines: %d db hits, %.0f per purchase"
                     % (p["when"], p["purchases"], p["lines"], p["db_hits"], p["db_hits_per_purchase"]))
        for s in p["statements"]:
            lines.append("    %-10s %5d rows %8d hits %6.1f/purchase  Eager %d  %s"
                         % (s["name"], s["rows"], s["db_hits"], s["db_hits"] / max(p["purchases"], 1),
                            s["eager"], s["top"]))
    return lines


def render(result):
    lines = []
    c = result.get("ceiling") or {}
    if c.get("profile"):
        lines += render_profile(c["profile"])
    for r in result.get("shapes", []):
        lines.append("  ceiling %s shape, %d writer%s: %.0f/s (%d in %.1f s, %d retried, Neo4j CPU %.1f s)%s"
                     % (r["shape"], r["writers"], "s" if r["writers"] > 1 else "", r["persisted_per_s"],
                        r["persisted"], r["wall_seconds"], r["retries"], r["neo4j_cpu_seconds"] or 0,
                        "" if r["correct"] else "; GRAPH WRONG"))
    return lines
