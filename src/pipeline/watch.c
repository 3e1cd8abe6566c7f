/* src/pipeline/watch.c: what each worker thread is waiting on, so that waiting is visible.
 *
 * Why. A server that stops answering without closing its connections (a frozen process, a
 * hung host, a black-holed network) blocks the thread calling it until the call's own
 * timeout, which for a Neo4j write may rightly be long. Meanwhile the thread cannot say
 * anything, so the state must be derived from outside: each thread records the server of
 * its call in flight, when the call started and by when it must have returned (its
 * deadline, from the config's timeouts). From that record
 *   - the status page shows waiting_for_<server> once a call is older than stall_after_ms;
 *   - the watchdog thread (pipeline.c) logs the outage's start at that moment, while the call
 *     still blocks, through the same latch the thread uses when the call fails, so each
 *     outage logs one start line and one end line whoever notices first;
 *   - liveness (pipeline_live) is "no thread past its own deadline plus a grace".
 * An outage ends with the first answer within stall_after_ms; but once the server has been
 * slow (a stall, an answer after stall_after_ms), only after it has not been slow for
 * SETTLE_FACTOR x stall_after_ms, and the watchdog logs that end when no call comes. So a
 * server that thaws slowly (Neo4j replanning its queries for seconds after a freeze) logs
 * one start and one end, not a pair per slow call.
 *
 * How. One struct watch per thread, only atomics: the thread writes, the watchdog and the
 * HTTP thread read. The per-server log texts are the ones dashboards search for
 * ("[ERROR] Neo4j unavailable", "[INFO] Neo4j available again", ...); the gauge
 * cgw_server_unavailable{consumer,server} is 1 during an outage.
 */
#include "pipeline/pipeline_internal.h"

#include "base/base.h"

#include <stdio.h>
#include <time.h>

#define SETTLE_FACTOR 5

static const struct server_info {
    const char *name, *down, *up;
    enum log_level level;
} SERVERS[SERVER_COUNT] = {
    [SERVER_NONE] = {"none", "", "", LOG_INFO},
    [SERVER_KAFKA] = {"kafka", "[ERROR] Kafka unavailable; the consumer waits",
                      "[INFO] Kafka available again", LOG_ERROR},
    [SERVER_NEO4J] = {"neo4j", "[ERROR] Neo4j unavailable; batch waits and retries",
                      "[INFO] Neo4j available again", LOG_ERROR},
    [SERVER_VALKEY] = {"valkey", "[WARN] Valkey unavailable; going on without the idempotency cache",
                       "[INFO] Valkey available again", LOG_WARN},
    [SERVER_ENRICHMENT] = {"enrichment", "[ERROR] Enrichment services unavailable; batch waits",
                           "[INFO] Enrichment services available again", LOG_ERROR},
    [SERVER_REGISTRY] = {"schema_registry",
                         "[ERROR] Schema registry unavailable; records of unknown schema ids wait",
                         "[INFO] Schema registry available again", LOG_ERROR},
    [SERVER_FLAGS] = {"flags", "[ERROR] FlagPoller: cannot read flags; last values stay in force",
                      "[INFO] FlagPoller: flags readable again", LOG_ERROR},
};

long long mono_ms(void) { return base_monotonic_ms(); }

const char *server_name(server s) {
    return s > SERVER_NONE && s < SERVER_COUNT ? SERVERS[s].name : "none";
}

void watch_init(watch *w, const char *name, long stall_ms, struct metrics_registry *r,
                const server *servers) {
    w->name = name;
    w->stall_ms = stall_ms;
    atomic_store(&w->server, SERVER_NONE);
    atomic_store(&w->running, true);
    watch_idle(w, 0);
    for (; r && servers && *servers != SERVER_NONE; servers++)
        w->unavailable[*servers] = metrics_register_gauge(
            r, "cgw_server_unavailable", "1 while a server the thread needs is unavailable",
            "consumer", name ? name : "flags", "server", server_name(*servers), NULL);
}

/* Every call and wait of a thread starts here, so this is also where the lines a thread
 * holds (log_hold) go out: none waits behind a call that may block. */
static void begin(watch *w, server s, long budget_ms) {
    log_flush();
    long long now = mono_ms();
    atomic_store(&w->since_ms, now);
    atomic_store(&w->deadline_ms, now + (budget_ms > 0 ? budget_ms : 0));
    atomic_store(&w->stall_reported, false);
    atomic_store(&w->server, s);
}

void watch_call(watch *w, server s, long budget_ms) { begin(w, s, budget_ms); }

void watch_idle(watch *w, long budget_ms) { begin(w, SERVER_NONE, budget_ms); }

/* The watch whose outage latches and gauges w uses (watch.latch). */
static watch *owner(watch *w) { return w->latch ? w->latch : w; }

static void outage_start(watch *w, server s, const char *err) {
    w = owner(w);
    if (!log_latch_trip(&w->outage[s])) return;
    const struct server_info *i = &SERVERS[s];
    metrics_set_gauge(w->unavailable[s], 1);
    LOG(i->level, i->down, LOG_STR("consumer", w->name), LOG_STR("server", i->name),
        LOG_STR("error", err));
    log_flush();
}

static void outage_end(watch *w, server s) {
    long long ms;
    unsigned long long hits;
    w = owner(w);
    if (!log_latch_clear(&w->outage[s], &ms, &hits)) return;
    metrics_set_gauge(w->unavailable[s], 0);
    LOG(LOG_INFO, SERVERS[s].up, LOG_STR("consumer", w->name),
        LOG_STR("server", SERVERS[s].name), LOG_INT("outage_ms", ms), LOG_UINT("failures", hits));
    log_flush();
}

/* s was slow now: a call past stall_ms, answered or not. */
static void was_slow(watch *w, server s) {
    atomic_store(&w->last_slow_ms[s], mono_ms());
    atomic_store(&w->healthy[s], false);
}

/* The outage of s ends at its first answer in time, or, when s has been slow, once it has
 * not been for the settle time. */
static void maybe_end(watch *w, server s, long long now) {
    if (atomic_load(&w->healthy[s]) &&
        now - atomic_load(&w->last_slow_ms[s]) >= SETTLE_FACTOR * w->stall_ms)
        outage_end(w, s);
}

void watch_report(watch *w, server s, bool failing, const char *err) {
    if (failing) {
        atomic_store(&w->healthy[s], false);
        outage_start(w, s, err && *err ? err : "unavailable");
        return;
    }
    atomic_store(&w->healthy[s], true);
    maybe_end(w, s, mono_ms());
}

/* An answer, even a slow one, makes the server healthy again; a slow one also restarts the
 * settle time, so the end comes once it has not been slow for that long: at a later call, or
 * from the watchdog when none comes (the last call of a drained backlog may well be slow). */
void watch_done(watch *w, server s, bool failing, const char *err) {
    long long took = mono_ms() - atomic_load(&w->since_ms);
    atomic_store(&w->server, SERVER_NONE);
    if (took >= w->stall_ms) was_slow(w, s);
    watch_report(w, s, failing, err);
}

server watch_stalled(watch *w, long long now, long stall_ms) {
    server s = (server)atomic_load(&w->server);
    if (s == SERVER_NONE || now - atomic_load(&w->since_ms) < stall_ms) return SERVER_NONE;
    return s;
}

void watch_check_stall(watch *w, long long now) {
    server s = watch_stalled(w, now, w->stall_ms);
    if (s != SERVER_NONE) {
        was_slow(w, s);
        if (!atomic_exchange(&w->stall_reported, true)) {
            char why[96];
            snprintf(why, sizeof why, "no answer for %lld ms (call still in flight)",
                     now - atomic_load(&w->since_ms));
            outage_start(w, s, why);
        }
    }
    for (int k = SERVER_NONE + 1; k < SERVER_COUNT; k++)
        if (watch_outage(w, (server)k)) maybe_end(w, (server)k, now);
}

bool watch_outage(watch *w, server s) { return log_latch_is_tripped(&owner(w)->outage[s]); }

bool watch_live(watch *w, long long now) {
    return !atomic_load(&w->running) || now <= atomic_load(&w->deadline_ms) + WATCH_GRACE_MS;
}
