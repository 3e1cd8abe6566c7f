/* src/pipeline/pipeline.c: the worker's shared resources and their lifetimes (see
 * pipeline.h). Consumers get everything through struct pipeline; nothing here is global,
 * so tests can run several pipelines in one process.
 *
 * The flag poller (src/flags/flags_poller.c) is a thread of its own; this file only wires it:
 * the source the config names, the store consumers read, the flag watch (its calls, waits and
 * outages, like every other thread's) and the two flag metrics. Consumers start consuming
 * only after the first snapshot is published.
 *
 * The watchdog is a thread of its own too: every WATCHDOG_MS it looks at each thread's call
 * in flight (watch.c) and logs the start of an outage as soon as a call has been unanswered
 * for stall_after_ms, while it still blocks. Liveness and readiness are derived from the same
 * watches. Shutdown has a deadline (shutdown_timeout_ms): threads that do not end in time
 * first get their Neo4j calls cancelled (bolt_driver_cancel), and past the deadline
 * pipeline_stop gives up on them so main can end the process.
 */
#include "pipeline/pipeline_internal.h"

#include "base/base.h"
#include "graph/graph.h"
#include "report/report.h"
#include "kafka/kafka.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WATCHDOG_MS 250
#define FLAGS_CALL_BUDGET_MS 60000

/* ------------------------------------------------------------------ stop and sleep */

long long wall_ms(void) { return base_wall_ms(); }

bool pipeline_is_stopping(struct pipeline *p) { return atomic_load(&p->stopping); }

bool pipeline_sleep(struct pipeline *p, long ms) {
    struct timespec until = base_timespec_in(CLOCK_REALTIME, ms);
    pthread_mutex_lock(&p->stop_mu);
    while (!atomic_load(&p->stopping))
        if (pthread_cond_timedwait(&p->stop_cv, &p->stop_mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&p->stop_mu);
    return atomic_load(&p->stopping);
}

/* ------------------------------------------------------------------ flags */

/* The source the config names (the one switch on the kind; the poller is src/flags/). */
static int open_flag_source(const struct cgw_config *cfg, struct flags_source *src, char *err,
                            size_t errlen) {
    switch (cfg->flags.source) {
    case CONFIG_FLAGS_HTTP: {
        struct flags_http_options o;
        pipeline_flags_http_options(cfg, &o);
        return flags_http_source(&o, src, err, errlen);
    }
    case CONFIG_FLAGS_VALKEY: {
        struct flags_valkey_options o;
        pipeline_flags_valkey_options(cfg, &o);
        return flags_valkey_source(&o, src, err, errlen);
    }
    default: return flags_file_source(cfg->flags.file, src, err, errlen);
    }
}

/* The poller's hooks: its calls and waits go to the flag watch (stalls, outages, liveness),
 * every poll's outcome to the two flag metrics. */
static void flag_poll_start(void *ud) {
    struct pipeline *p = ud;
    watch_call(&p->flag_watch, SERVER_FLAGS, FLAGS_CALL_BUDGET_MS);
}

static void flag_poll_end(void *ud, bool ok, const char *err) {
    struct pipeline *p = ud;
    watch_done(&p->flag_watch, SERVER_FLAGS, !ok, err);
    if (!ok) metrics_inc_counter(p->flags_errors);
    else metrics_set_gauge(p->flags_last_read, (double)wall_ms() / 1000.0);
}

static void flag_wait(void *ud, long wait_ms) {
    struct pipeline *p = ud;
    watch_idle(&p->flag_watch, wait_ms);
}

static void flag_exit(void *ud) {
    struct pipeline *p = ud;
    atomic_store(&p->flag_watch.running, false);
}

static int start_flags(struct pipeline *p, char *err, size_t errlen) {
    struct flags_poller_options o;
    flags_poller_options_init(&o);
    if (open_flag_source(p->cfg, &o.source, err, errlen) != 0) return -1;
    static const server watched[] = {SERVER_FLAGS, SERVER_NONE};
    watch_init(&p->flag_watch, NULL, p->cfg->stall_after_ms, p->metrics, watched);
    o.store = &p->flags;
    o.interval_ms = (long)p->cfg->flags.poll_interval_seconds * 1000L;
    o.on_poll_start = flag_poll_start;
    o.on_poll_end = flag_poll_end;
    o.on_wait = flag_wait;
    o.on_exit = flag_exit;
    o.hooks_ud = p;
    p->flag_poller = flags_poller_start(&o, err, errlen);
    if (!p->flag_poller) atomic_store(&p->flag_watch.running, false);
    return p->flag_poller ? 0 : -1;
}

/* ------------------------------------------------------------------ Neo4j */

static int connect_neo4j(struct pipeline *p, char *err, size_t errlen) {
    const struct cgw_config *cfg = p->cfg;
    bolt_config bc;
    bolt_config_init(&bc);
    bc.user_agent = "cgw/" CGW_VERSION;
    bc.principal = cfg->neo4j.user;
    bc.credentials = cfg->neo4j.password;
    bc.auth_scheme = cfg->neo4j.user ? "basic" : "none";
    bc.default_db = cfg->neo4j.database;
    bc.connect_timeout_ms = cfg->neo4j.connect_timeout_ms;
    bc.io_timeout_ms = config_neo4j_io_timeout_ms(cfg);
    bc.max_pool_size = cfg->neo4j.pool_size;
    bc.max_retry_time_ms = cfg->neo4j.max_retry_time_ms;
    bc.retry_initial_delay_ms = 200;
    /* Every write is a MERGE: re-running a batch whose COMMIT outcome is unknown is safe. */
    bc.retry_unknown_commit = 1;
    bolt_error be;
    if (bolt_driver_new(cfg->neo4j.uri, &bc, &p->neo4j, &be) != BOLT_OK) {
        snprintf(err, errlen, "neo4j.uri: %s", be.message);
        return -1;
    }
    return 0;
}

/* Neo4j may still be starting when the worker does (a deployment brings both up): try for
 * about a minute before giving up, so an orchestrator's restart is the exception. */
static int ensure_schema(struct pipeline *p, char *err, size_t errlen) {
    bolt_error be;
    for (int attempt = 1;; attempt++) {
        if (graph_ensure_schema(p->neo4j, p->cfg->neo4j.database, &be) == BOLT_OK) return 0;
        if (be.code == BOLT_EAUTH || attempt == 20) break;
        LOG(LOG_WARN, "Neo4j not ready; retrying", LOG_INT("attempt", attempt),
            LOG_STR("error", be.message));
        if (pipeline_sleep(p, 3000)) break;
    }
    snprintf(err, errlen, "neo4j: cannot create the graph's constraints: %s", be.message);
    return -1;
}

/* ------------------------------------------------------------------ enrichment */

static int start_enrichment(struct pipeline *p, char *err, size_t errlen) {
    struct enrich_options o;
    pipeline_enrich_options(p->cfg, &o);
    p->enrich = enrich_client_new(&o, err, errlen);
    return p->enrich ? 0 : -1;
}

/* ------------------------------------------------------------------ watchdog, probes */

static void *watchdog_main(void *arg) {
    struct pipeline *p = arg;
    base_name_thread("cgw-watchdog", "");
    while (!pipeline_sleep(p, WATCHDOG_MS)) {
        long long now = mono_ms();
        watch_check_stall(&p->flag_watch, now);
        for (int k = 0; k < CONSUMER_COUNT; k++)
            if (p->consumers[k]) {
                consumer_status *st = consumer_status_of(p->consumers[k]);
                watch_check_stall(&st->watch, now);
                for (int i = 0; i < STATUS_MAX_WRITERS; i++) watch_check_stall(&st->write_watch[i], now);
                status_publish_state(st, now, p->cfg->stall_after_ms);
            }
    }
    return NULL;
}

bool pipeline_live(struct pipeline *p, char *reason, size_t len) {
    if (pipeline_is_stopping(p)) {
        if (reason) snprintf(reason, len, "shutting down");
        return false;
    }
    long long now = mono_ms();
    if (!watch_live(&p->flag_watch, now)) {
        if (reason) snprintf(reason, len, "flag poller blocked past its deadline");
        return false;
    }
    for (int k = 0; k < CONSUMER_COUNT; k++) {
        if (!p->consumers[k]) continue;
        consumer_status *st = consumer_status_of(p->consumers[k]);
        watch *w = !watch_live(&st->watch, now) ? &st->watch : NULL;
        for (int i = 0; !w && i < STATUS_MAX_WRITERS; i++)
            if (!watch_live(&st->write_watch[i], now)) w = &st->write_watch[i];
        if (!w) continue;
        if (reason)
            snprintf(reason, len, "%s consumer blocked past its deadline (%s)", st->name,
                     server_name((server)atomic_load(&w->server)));
        return false;
    }
    return true;
}

static bool state_ready(consumer_state s) {
    return s == CONSUMER_STATE_RUNNING || s == CONSUMER_STATE_KILLSWITCHED ||
           s == CONSUMER_STATE_RUNNING_NO_VALKEY;
}

bool pipeline_ready(struct pipeline *p, char *reason, size_t len) {
    if (!atomic_load(&p->flags.generation)) {
        if (reason) snprintf(reason, len, "flags not read yet");
        return false;
    }
    long long now = mono_ms();
    for (int k = 0; k < CONSUMER_COUNT; k++) {
        if (!p->consumers[k]) continue;
        consumer_status *st = consumer_status_of(p->consumers[k]);
        consumer_state s = status_effective_state(st, now, p->cfg->stall_after_ms);
        if (state_ready(s)) continue;
        if (reason) snprintf(reason, len, "%s consumer: %s", st->name, consumer_state_name(s));
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ metrics */

/* Liveness (/healthz, pipeline_live) and readiness (/readyz, pipeline_ready): 0 when fine;
 * otherwise the reason is served with a 503. An orchestrator restarts on liveness only. */
static int live(void *ud, char *reason, size_t len) {
    return pipeline_live(ud, reason, len) ? 0 : 1;
}

static int ready(void *ud, char *reason, size_t len) {
    return pipeline_ready(ud, reason, len) ? 0 : 1;
}

#define STATUS_PAGE_REFRESH_SECONDS 15

/* Extra paths of the metrics server: /status (the JSON document) and / (the HTML page). */
static int serve_status(void *ud, const char *path, char **body, const char **content_type) {
    if (strcmp(path, "/status") == 0) {
        *body = pipeline_status_json(ud);
        *content_type = "application/json";
        return *body ? 200 : 500;
    }
    if (strcmp(path, "/") == 0) {
        json_t *doc = pipeline_status_doc(ud);
        *body = doc ? report_html(doc, STATUS_PAGE_REFRESH_SECONDS) : NULL;
        json_decref(doc);
        *content_type = "text/html; charset=utf-8";
        return *body ? 200 : 500;
    }
    return 0;
}

static int start_metrics(struct pipeline *p, char *err, size_t errlen) {
    p->metrics = metrics_new_registry();
    if (!p->metrics) { snprintf(err, errlen, "out of memory"); return -1; }
    p->flags_errors = metrics_register_counter(p->metrics, "cgw_flags_errors_total",
                                               "Failed reads of the flag source", NULL);
    p->flags_last_read = metrics_register_gauge(p->metrics, "cgw_flags_last_read_timestamp_seconds",
                                                "Unix time of the last successful read of the flags (0: never)", NULL);
    struct metrics_server_options mo = {.listen = p->cfg->metrics.listen,
                                        .registry = p->metrics, .health = live,
                                        .health_ud = p, .ready = ready, .ready_ud = p,
                                        .handler = serve_status, .handler_ud = p,
                                        .token = p->cfg->metrics.token};
    char e[256];
    p->metrics_server = metrics_start_server(&mo, e, sizeof e);
    if (!p->metrics_server) {
        snprintf(err, errlen, "metrics.listen: %s", e);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ lifecycle */

/* The static group membership id (kafka_instance.c), once for both consumers. A worker with
 * no id at all still runs, as a dynamic member. */
static void choose_group_instance(struct pipeline *p) {
    char err[512];
    int rc = kafka_group_instance_base(p->cfg->kafka.group_instance_id, p->group_instance_base,
                                       sizeof p->group_instance_base, err, sizeof err);
    if (rc != 0)
        LOG(LOG_WARN, "Group instance id: ECS task metadata unavailable",
            LOG_STR("error", err), LOG_STR("group_instance_id", p->group_instance_base));
    LOG(LOG_INFO, p->group_instance_base[0] ? "Static group membership" : "Dynamic group membership",
        LOG_STR("group_instance_id", p->group_instance_base));
}

int pipeline_new(const struct cgw_config *cfg, struct pipeline **out, char *err, size_t errlen) {
    *out = NULL;
    if (pipeline_check_config(cfg, err, errlen) != 0) return -1;   /* before starting anything */
    struct pipeline *p = calloc(1, sizeof *p);
    if (!p) { snprintf(err, errlen, "out of memory"); return -1; }
    p->cfg = cfg;
    p->started_ms = wall_ms();
    pthread_mutex_init(&p->stop_mu, NULL);
    pthread_cond_init(&p->stop_cv, NULL);
    flags_init_store(&p->flags);
    *out = p;
    if (kafka_auth_new(cfg, &p->kafka, err, errlen) != 0) return -1;
    if (start_metrics(p, err, errlen) != 0 || connect_neo4j(p, err, errlen) != 0 ||
        start_enrichment(p, err, errlen) != 0)
        return -1;
    if (ensure_schema(p, err, errlen) != 0) return -1;
    if (start_flags(p, err, errlen) != 0) return -1;
    choose_group_instance(p);
    for (int k = 0; k < CONSUMER_COUNT; k++) {
        const struct config_consumer *cc =
            k == CONSUMER_RECEIPT ? &cfg->consumers.receipt : &cfg->consumers.factoid;
        if (!cc->enabled) continue;
        p->consumers[k] = consumer_new(p, (consumer_kind)k, err, errlen);
        if (!p->consumers[k]) return -1;
    }
    return 0;
}

int pipeline_start(struct pipeline *p, char *err, size_t errlen) {
    for (int k = 0; k < CONSUMER_COUNT; k++)
        if (p->consumers[k] && consumer_start(p->consumers[k], err, errlen) != 0) return -1;
    if (pthread_create(&p->watchdog_thread, NULL, watchdog_main, p) != 0) {
        snprintf(err, errlen, "cannot start the watchdog thread");
        return -1;
    }
    p->watchdog_started = true;
    return 0;
}

/* Every thread that blocks on a server has ended. */
static bool threads_finished(struct pipeline *p) {
    for (int k = 0; k < CONSUMER_COUNT; k++)
        if (p->consumers[k] && !consumer_finished(p->consumers[k])) return false;
    return !atomic_load(&p->flag_watch.running);
}

/* A consumer's Neo4j call in flight for at least min_ms. */
static bool neo4j_waiting(struct pipeline *p, long long now, long min_ms) {
    for (int k = 0; k < CONSUMER_COUNT; k++) {
        if (!p->consumers[k]) continue;
        consumer_status *st = consumer_status_of(p->consumers[k]);
        if (watch_stalled(&st->watch, now, min_ms) == SERVER_NEO4J) return true;
        for (int i = 0; i < STATUS_MAX_WRITERS; i++)
            if (watch_stalled(&st->write_watch[i], now, min_ms) == SERVER_NEO4J) return true;
    }
    return false;
}

/* Waits for the threads until the deadline; cancels Neo4j calls when they stall or at half
 * of it. 0 when every thread ended in time. */
static int wait_threads(struct pipeline *p) {
    long long start = mono_ms(), deadline = start + p->cfg->shutdown_timeout_ms;
    bool cancelled = false;
    while (!threads_finished(p)) {
        long long now = mono_ms();
        if (!cancelled && (neo4j_waiting(p, now, p->cfg->stall_after_ms) ||
                           now - start >= p->cfg->shutdown_timeout_ms / 2)) {
            if (neo4j_waiting(p, now, 0))
                LOG(LOG_WARN, "Shutdown: cancelling Neo4j calls in flight; their batches are read again",
                    LOG_INT("waited_ms", now - start));
            if (p->neo4j) bolt_driver_cancel(p->neo4j);
            cancelled = true;
        }
        if (now >= deadline) return -1;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int pipeline_stop(struct pipeline *p) {
    pthread_mutex_lock(&p->stop_mu);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->stop_cv);
    pthread_mutex_unlock(&p->stop_mu);
    flags_poller_stop(p->flag_poller);
    if (wait_threads(p) != 0) {
        LOG(LOG_ERROR, "[ERROR] Shutdown deadline passed; exiting with the batches in flight "
                       "uncommitted (they are read again)",
            LOG_INT("shutdown_timeout_ms", p->cfg->shutdown_timeout_ms));
        return -1;
    }
    for (int k = 0; k < CONSUMER_COUNT; k++)
        if (p->consumers[k]) consumer_join(p->consumers[k]);
    if (p->watchdog_started) {
        pthread_join(p->watchdog_thread, NULL);
        p->watchdog_started = false;
    }
    return 0;
}

void pipeline_free(struct pipeline *p) {
    if (!p) return;
    if (!atomic_load(&p->stopping) && pipeline_stop(p) != 0) return; /* threads still run */
    for (int k = 0; k < CONSUMER_COUNT; k++) consumer_free(p->consumers[k]);
    flags_poller_free(p->flag_poller);
    flags_destroy_store(&p->flags);
    if (p->enrich) enrich_client_free(p->enrich);
    if (p->neo4j) bolt_driver_free(p->neo4j);
    if (p->metrics_server) metrics_stop_server(p->metrics_server);
    if (p->metrics) metrics_free_registry(p->metrics);
    kafka_auth_free(p->kafka);
    pthread_cond_destroy(&p->stop_cv);
    pthread_mutex_destroy(&p->stop_mu);
    free(p);
}
