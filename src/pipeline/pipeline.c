/* src/pipeline/pipeline.c: the worker's shared resources and their lifetimes (see
 * pipeline.h). Consumers get everything through struct pipeline; nothing here is global,
 * so tests can run several pipelines in one process.
 *
 * The flag poller is a thread of its own: it re-reads the flag source every
 * poll_interval_seconds, publishes a new immutable snapshot when something changed (logging
 * "FlagPoller: flag=<name> changed" per flag), and keeps the last snapshot in force while the
 * source fails, logging that once per outage. Consumers start consuming only after the first
 * snapshot is published.
 */
#include "pipeline/pipeline_internal.h"

#include "graph/graph.h"
#include "report/report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ stop and sleep */

long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool pipeline_is_stopping(pipeline *p) { return atomic_load(&p->stopping); }

bool pipeline_sleep(pipeline *p, long ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&p->stop_mu);
    while (!atomic_load(&p->stopping))
        if (pthread_cond_timedwait(&p->stop_cv, &p->stop_mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&p->stop_mu);
    return atomic_load(&p->stopping);
}

/* ------------------------------------------------------------------ flags */

static void log_flag_change(void *ud, const char *name, const char *old_value,
                            const char *new_value) {
    (void)ud;
    char msg[256];
    snprintf(msg, sizeof msg, "FlagPoller: flag=%s changed", name);
    LOG(LOG_INFO, msg, LOG_STR("flag", name), LOG_STR("old", old_value ? old_value : "absent"),
        LOG_STR("new", new_value ? new_value : "absent"));
}

/* Name the gates the worker cannot evaluate, once per snapshot that has them. */
static void warn_unsupported_gates(const struct flags_set *s) {
    for (size_t i = 0; i < flags_count(s); i++) {
        const struct flags_feature *f = flags_feature_at(s, i);
        if (!f->unsupported) continue;
        char gates[128];
        flags_gate_names(f->unsupported, gates, sizeof gates);
        LOG(LOG_WARN, "FlagPoller: gates not evaluated", LOG_STR("flag", f->name),
            LOG_STR("gates", gates));
    }
}

/* One read of whichever source the config names: 1 new snapshot, 0 unchanged, -1 error. */
static int poll_source(pipeline *p, struct flags_set **next, char *err, size_t errlen) {
    switch (p->cfg->flags.source) {
    case CONFIG_FLAGS_HTTP: return flags_poll_http(p->flag_http, next, err, errlen);
    case CONFIG_FLAGS_VALKEY: return flags_poll_valkey(p->flag_valkey, next, err, errlen);
    default: return flags_poll_file(&p->flag_file, next, err, errlen);
    }
}

/* One poll: 1 when a new snapshot was published, 0 when unchanged, -1 on failure (the last
 * snapshot stays in force). */
static int poll_flags_once(pipeline *p) {
    char err[512] = "";
    struct flags_set *next = NULL;
    int rc = poll_source(p, &next, err, sizeof err);
    log_report_outage(&p->flag_outage, rc < 0, LOG_ERROR,
                      "[ERROR] FlagPoller: cannot read flags; last values stay in force",
                      "FlagPoller: flags readable again", err);
    atomic_store(&p->flags_source_ok, rc >= 0);
    if (rc < 0) {
        metrics_inc_counter(p->flags_errors);
        snprintf(p->flags_last_error, sizeof p->flags_last_error, "%s", err);
        return -1;
    }
    atomic_store(&p->flags_last_ok_ms, wall_ms());
    metrics_set_gauge(p->flags_last_read, (double)wall_ms() / 1000.0);
    if (rc == 0) return 0;
    const struct flags_set *old = flags_acquire_current(&p->flags);
    if (old) flags_diff(old, next, log_flag_change, NULL);
    else LOG(LOG_INFO, "FlagPoller: flags loaded", LOG_UINT("features", flags_count(next)));
    if (old) flags_release(old);
    warn_unsupported_gates(next);
    flags_publish(&p->flags, next);
    return 1;
}

static long poll_interval_ms(pipeline *p) {
    long ms = (long)p->cfg->flags.poll_interval_seconds * 1000L;
    if (p->flag_http) {
        long suggested = flags_http_suggested_interval_ms(p->flag_http);
        if (suggested > ms) ms = suggested;
    }
    return ms;
}

static void *flag_thread_main(void *arg) {
    pipeline *p = arg;
    while (!pipeline_is_stopping(p)) {
        poll_flags_once(p);
        /* Until the first read succeeds consumers wait, so retry that one quickly. */
        long wait = atomic_load(&p->flags.generation) ? poll_interval_ms(p) : 1000;
        if (pipeline_sleep(p, wait)) break;
    }
    return NULL;
}

static int open_source(pipeline *p, char *err, size_t errlen) {
    const struct cgw_config *cfg = p->cfg;
    switch (cfg->flags.source) {
    case CONFIG_FLAGS_HTTP: {
        struct flags_http_options o;
        pipeline_flags_http_options(cfg, &o);
        p->flag_http = flags_open_http(&o, err, errlen);
        return p->flag_http ? 0 : -1;
    }
    case CONFIG_FLAGS_VALKEY: {
        struct flags_valkey_options o;
        pipeline_flags_valkey_options(cfg, &o);
        p->flag_valkey = flags_open_valkey(&o, err, errlen);
        return p->flag_valkey ? 0 : -1;
    }
    default:
        if (flags_open_file(&p->flag_file, cfg->flags.file, err, errlen) != 0) return -1;
        p->flag_file_open = true;
        return 0;
    }
}

static int start_flags(pipeline *p, char *err, size_t errlen) {
    if (open_source(p, err, errlen) != 0) return -1;
    if (pthread_create(&p->flag_thread, NULL, flag_thread_main, p) != 0) {
        snprintf(err, errlen, "cannot start the flag poller thread");
        return -1;
    }
    p->flag_thread_started = true;
    return 0;
}

static void close_flags(pipeline *p) {
    if (p->flag_file_open) flags_close_file(&p->flag_file);
    if (p->flag_http) flags_close_http(p->flag_http);
    if (p->flag_valkey) flags_close_valkey(p->flag_valkey);
    flags_destroy_store(&p->flags);
}

/* ------------------------------------------------------------------ Neo4j */

static int connect_neo4j(pipeline *p, char *err, size_t errlen) {
    const struct cgw_config *cfg = p->cfg;
    bolt_config bc;
    bolt_config_init(&bc);
    bc.user_agent = "cgw/" CGW_VERSION;
    bc.principal = cfg->neo4j.user;
    bc.credentials = cfg->neo4j.password;
    bc.auth_scheme = cfg->neo4j.user ? "basic" : "none";
    bc.default_db = cfg->neo4j.database;
    bc.connect_timeout_ms = cfg->neo4j.connect_timeout_ms;
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
static int ensure_schema(pipeline *p, char *err, size_t errlen) {
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

static int start_enrichment(pipeline *p, char *err, size_t errlen) {
    struct enrich_options o;
    pipeline_enrich_options(p->cfg, &o);
    p->enrich = enrich_client_new(&o, err, errlen);
    return p->enrich ? 0 : -1;
}

/* ------------------------------------------------------------------ metrics */

/* Liveness (/healthz): the process answers and is not shutting down. Whether its consumers
 * can work is readiness; an orchestrator restarts on liveness only. 0 when live. */
static int live(void *ud, char *reason, size_t len) {
    pipeline *p = ud;
    if (pipeline_is_stopping(p)) {
        snprintf(reason, len, "shutting down");
        return 1;
    }
    return 0;
}

/* Readiness (/readyz): the flags have been read once, so consumers may run. 0 when ready. */
static int ready(void *ud, char *reason, size_t len) {
    pipeline *p = ud;
    if (!atomic_load(&p->flags.generation)) {
        snprintf(reason, len, "flags not read yet");
        return 1;
    }
    return 0;
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

static int start_metrics(pipeline *p, char *err, size_t errlen) {
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

int pipeline_new(const struct cgw_config *cfg, pipeline **out, char *err, size_t errlen) {
    *out = NULL;
    if (pipeline_check_config(cfg, err, errlen) != 0) return -1;   /* before starting anything */
    pipeline *p = calloc(1, sizeof *p);
    if (!p) { snprintf(err, errlen, "out of memory"); return -1; }
    p->cfg = cfg;
    p->started_ms = wall_ms();
    pthread_mutex_init(&p->stop_mu, NULL);
    pthread_cond_init(&p->stop_cv, NULL);
    flags_init_store(&p->flags);
    *out = p;
    if (start_metrics(p, err, errlen) != 0 || connect_neo4j(p, err, errlen) != 0 ||
        start_enrichment(p, err, errlen) != 0)
        return -1;
    if (ensure_schema(p, err, errlen) != 0) return -1;
    if (start_flags(p, err, errlen) != 0) return -1;
    for (int k = 0; k < CONSUMER_COUNT; k++) {
        const struct config_consumer *cc =
            k == CONSUMER_RECEIPT ? &cfg->consumers.receipt : &cfg->consumers.factoid;
        if (!cc->enabled) continue;
        p->consumers[k] = consumer_new(p, (consumer_kind)k, err, errlen);
        if (!p->consumers[k]) return -1;
    }
    return 0;
}

int pipeline_start(pipeline *p, char *err, size_t errlen) {
    for (int k = 0; k < CONSUMER_COUNT; k++)
        if (p->consumers[k] && consumer_start(p->consumers[k], err, errlen) != 0) return -1;
    return 0;
}

void pipeline_stop(pipeline *p) {
    pthread_mutex_lock(&p->stop_mu);
    atomic_store(&p->stopping, true);
    pthread_cond_broadcast(&p->stop_cv);
    pthread_mutex_unlock(&p->stop_mu);
    for (int k = 0; k < CONSUMER_COUNT; k++)
        if (p->consumers[k]) consumer_join(p->consumers[k]);
    if (p->flag_thread_started) {
        pthread_join(p->flag_thread, NULL);
        p->flag_thread_started = false;
    }
}

void pipeline_free(pipeline *p) {
    if (!p) return;
    if (!atomic_load(&p->stopping)) pipeline_stop(p);
    for (int k = 0; k < CONSUMER_COUNT; k++) consumer_free(p->consumers[k]);
    close_flags(p);
    if (p->enrich) enrich_client_free(p->enrich);
    if (p->neo4j) bolt_driver_free(p->neo4j);
    if (p->metrics_server) metrics_stop_server(p->metrics_server);
    if (p->metrics) metrics_free_registry(p->metrics);
    pthread_cond_destroy(&p->stop_cv);
    pthread_mutex_destroy(&p->stop_mu);
    free(p);
}
