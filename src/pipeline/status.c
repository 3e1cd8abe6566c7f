/* src/pipeline/status.c: the live status page of a running worker, served as JSON at
 * /status beside /metrics and printed by `cgw status`.
 *
 * It answers what an operator asks first: is each consumer running or stopped by its
 * killswitch, how much did it write in the last 10 minutes, what did the filters drop and in
 * which share, how far behind is each partition, which configuration is in force, and which
 * endpoints the worker talks to (credentials never shown).
 *
 * A consumer's state is what its thread stored (running, waiting for ...), or a writer
 * thread's while that one waits (write_state[]), unless their watches (watch.c) say more: a call in flight past stall_after_ms shows waiting_for_<server> while
 * it still blocks. "unavailable" lists the servers in an outage for that consumer.
 *
 * Counts come from the same metrics the Prometheus page serves, so the two never disagree.
 * Consumer threads publish the little state the metrics do not hold (state and since when,
 * killswitch, per-partition lag, a ring of writes per minute over the last hour) into their
 * consumer_status. The document is also what src/report turns into the Markdown and HTML
 * pages (cgw status --markdown / --html, GET /).
 */
#include "pipeline/pipeline_internal.h"

#include "http/http_url.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *consumer_state_name(consumer_state s) {
    switch (s) {
    case CONSUMER_STATE_WAITING_FLAGS: return "waiting_for_flags";
    case CONSUMER_STATE_RUNNING: return "running";
    case CONSUMER_STATE_KILLSWITCHED: return "stopped_by_killswitch";
    case CONSUMER_STATE_WAITING_ENRICHMENT: return "waiting_for_enrichment";
    case CONSUMER_STATE_WAITING_NEO4J: return "waiting_for_neo4j";
    case CONSUMER_STATE_WAITING_REGISTRY: return "waiting_for_schema_registry";
    case CONSUMER_STATE_WAITING_DLQ: return "waiting_for_dead_letter_topic";
    case CONSUMER_STATE_STOPPED: return "stopped";
    case CONSUMER_STATE_WAITING_KAFKA: return "waiting_for_kafka";
    case CONSUMER_STATE_WAITING_VALKEY: return "waiting_for_valkey";
    case CONSUMER_STATE_RUNNING_NO_VALKEY: return "running_without_valkey";
    case CONSUMER_STATE_COUNT: break;
    }
    return "unknown";
}

static consumer_state waiting_for(server s) {
    switch (s) {
    case SERVER_KAFKA: return CONSUMER_STATE_WAITING_KAFKA;
    case SERVER_VALKEY: return CONSUMER_STATE_WAITING_VALKEY;
    case SERVER_ENRICHMENT: return CONSUMER_STATE_WAITING_ENRICHMENT;
    case SERVER_REGISTRY: return CONSUMER_STATE_WAITING_REGISTRY;
    default: return CONSUMER_STATE_WAITING_NEO4J;
    }
}

/* A call stalled longer than stall_ms says what the thread waits for even while it blocks;
 * a running consumer with no broker waits for Kafka; one without Valkey says so. */
consumer_state status_effective_state(consumer_status *st, long long now, long stall_ms) {
    consumer_state s = (consumer_state)atomic_load(&st->state);
    if (s == CONSUMER_STATE_STOPPED) return s;
    server stalled = watch_stalled(&st->watch, now, stall_ms);
    for (int i = 0; stalled == SERVER_NONE && i < STATUS_MAX_WRITERS; i++)
        stalled = watch_stalled(&st->write_watch[i], now, stall_ms);
    if (stalled != SERVER_NONE) return waiting_for(stalled);
    if (s != CONSUMER_STATE_RUNNING) return s;
    for (int i = 0; i < STATUS_MAX_WRITERS; i++) {
        consumer_state ws = (consumer_state)atomic_load(&st->write_state[i]);
        if (ws != CONSUMER_STATE_RUNNING) return ws;
    }
    if (watch_outage(&st->watch, SERVER_KAFKA)) return CONSUMER_STATE_WAITING_KAFKA;
    if (watch_outage(&st->watch, SERVER_VALKEY)) return CONSUMER_STATE_RUNNING_NO_VALKEY;
    return s;
}

/* ------------------------------------------------------------------ per-consumer state */

void status_init(consumer_status *st, const char *name, const char *topic, const char *group) {
    memset(st, 0, sizeof *st);
    st->name = name;
    st->topic = topic;
    st->group = group;
    for (int i = 0; i < STATUS_MAX_WRITERS; i++)
        atomic_store(&st->write_state[i], CONSUMER_STATE_RUNNING);
    pthread_mutex_init(&st->mu, NULL);
}

void status_destroy(consumer_status *st) { pthread_mutex_destroy(&st->mu); }

void status_set_state(consumer_status *st, consumer_state s, long long now_ms) {
    int old = atomic_exchange(&st->state, (int)s);
    if (old != (int)s || !atomic_load(&st->state_since_ms)) atomic_store(&st->state_since_ms, now_ms);
    status_publish_state(st, mono_ms(), st->watch.stall_ms);
}

void status_publish_state(consumer_status *st, long long now, long stall_ms) {
    if (!st->metrics) return;
    consumer_state s = status_effective_state(st, now, stall_ms);
    /* All of them: a racing writer (the thread, the watchdog) is repaired at the next tick. */
    for (int i = 0; i < CONSUMER_STATE_COUNT; i++)
        metrics_set_gauge(st->metrics->state[i], i == (int)s ? 1 : 0);
}

void status_count_writes(consumer_status *st, long long now_ms, uint64_t n) {
    long long minute = now_ms / 60000;
    int b = (int)(minute % STATUS_HISTORY_MINUTES);
    pthread_mutex_lock(&st->mu);
    if (st->minute[b] != minute) {
        st->minute[b] = minute;
        st->writes[b] = 0;
    }
    st->writes[b] += n;
    pthread_mutex_unlock(&st->mu);
}

void status_writes_per_minute(consumer_status *st, long long now_ms, uint64_t out[STATUS_HISTORY_MINUTES]) {
    long long minute = now_ms / 60000;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < STATUS_HISTORY_MINUTES; i++) {
        long long m = minute - (STATUS_HISTORY_MINUTES - 1 - i);
        int b = (int)(m % STATUS_HISTORY_MINUTES);
        out[i] = st->minute[b] == m ? st->writes[b] : 0;
    }
    pthread_mutex_unlock(&st->mu);
}

uint64_t status_writes_last(consumer_status *st, long long now_ms, int minutes) {
    uint64_t per[STATUS_HISTORY_MINUTES], sum = 0;
    status_writes_per_minute(st, now_ms, per);
    for (int i = STATUS_HISTORY_MINUTES - minutes; i < STATUS_HISTORY_MINUTES; i++) sum += per[i];
    return sum;
}

/* ------------------------------------------------------------------ the document */

/* A URL (or broker list) with its userinfo redacted (src/http): credentials never leave the
 * process. */
static json_t *redacted_url(const char *url) {
    if (!url) return json_null();
    char *shown = http_redacted(url);
    json_t *j = shown ? json_string(shown) : json_null();
    free(shown);
    return j;
}

/* Each filter's rule in contract §2's words, for the operators' "What's Filtered" table. */
static const char *filter_rule(const char *consumer_name, record_reason r) {
    bool receipt = strcmp(consumer_name, "receipt") == 0;
    switch (r) {
    case RECORD_REASON_DIGITAL: return "digital receipt (digital_receipt_data present)";
    case RECORD_REASON_STATUS: return "receipt not finished (status is not RECEIPT_STATUS_FINISHED)";
    case RECORD_REASON_SOURCE: return "not a shop order (source is not FACTOID_SOURCE_SHOP)";
    case RECORD_REASON_TYPE: return "not a finalized order (type is not ORDER_FINALIZED)";
    case RECORD_REASON_NO_FIDOS:
        return receipt ? "no item has a product id (fido)" : "no item of the shop order has a product id (fido)";
    case RECORD_REASON_NOT_IN_ROLLOUT: return "user not enabled by the rollout flag";
    case RECORD_REASON_DUPLICATE: return "already processed (idempotency cache)";
    default: return "";
    }
}

static json_t *filter_table(const consumer_status *st, uint64_t consumed) {
    json_t *rows = json_array();
    for (const record_reason *r = st->metrics->reasons; *r != RECORD_REASON_NONE; r++) {
        uint64_t n = metrics_read_counter(st->metrics->skipped[*r]);
        json_array_append_new(rows, json_pack("{s:s, s:I, s:f, s:s}", "reason",
                                              record_reason_name(*r), "count",
                                              (json_int_t)n, "share",
                                              consumed ? (double)n / (double)consumed : 0.0,
                                              "rule", filter_rule(st->name, *r)));
    }
    return rows;
}

static json_t *partitions(consumer_status *st, int64_t *total) {
    json_t *a = json_array();
    *total = 0;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->npartitions; i++) {
        const partition_lag *pl = &st->partitions[i];
        if (pl->lag > 0) *total += pl->lag;
        json_array_append_new(a, json_pack("{s:i, s:I, s:I}", "partition", (int)pl->partition,
                                           "position", (json_int_t)pl->position, "lag",
                                           (json_int_t)pl->lag));
    }
    pthread_mutex_unlock(&st->mu);
    return a;
}

/* Records written to the dead-letter topic, by reason; null topic when there is none. */
static json_t *dead_letters(const consumer_metrics *m) {
    json_t *by = json_object();
    json_int_t total = 0;
    for (int i = 0; i < CONSUMER_DLQ_REASONS; i++) {
        json_int_t n = (json_int_t)metrics_read_counter(m->dead_lettered[i]);
        total += n;
        json_object_set_new(by, consumer_dlq_reasons[i], json_integer(n));
    }
    return json_pack("{s:o, s:I, s:o}", "topic",
                     m->dlq_topic ? json_string(m->dlq_topic) : json_null(), "total", total,
                     "by_reason", by);
}

/* The servers in an outage for this consumer, by name. */
static json_t *outages_json(consumer_status *st) {
    json_t *a = json_array();
    for (int s = SERVER_NONE + 1; s < SERVER_COUNT; s++)
        if (watch_outage(&st->watch, (server)s) || watch_outage(&st->write_watch[0], (server)s))
            json_array_append_new(a, json_string(server_name((server)s)));
    return a;
}

static json_t *per_minute(consumer_status *st, long long now) {
    uint64_t per[STATUS_HISTORY_MINUTES];
    status_writes_per_minute(st, now, per);
    json_t *a = json_array();
    for (int i = 0; i < STATUS_HISTORY_MINUTES; i++) json_array_append_new(a, json_integer((json_int_t)per[i]));
    return a;
}

static const struct config_consumer *consumer_config(const struct cgw_config *cfg, const char *name) {
    return strcmp(name, "receipt") == 0 ? &cfg->consumers.receipt : &cfg->consumers.factoid;
}

static json_t *counts_json(const consumer_metrics *m) {
    return json_pack("{s:I, s:I, s:I, s:I, s:I}", "errors_decode",
                     (json_int_t)metrics_read_counter(m->errors_decode), "errors_enrichment",
                     (json_int_t)metrics_read_counter(m->errors_enrich), "errors_graph",
                     (json_int_t)metrics_read_counter(m->errors_graph), "nodes_created",
                     (json_int_t)metrics_read_counter(m->nodes_created), "relationships_created",
                     (json_int_t)metrics_read_counter(m->relationships_created));
}

static json_t *consumer_json(struct pipeline *p, struct consumer *c, long long now) {
    consumer_status *st = (consumer_status *)consumer_get_status(c);
    const consumer_metrics *m = st->metrics;
    const struct cgw_config *cfg = p->cfg;
    uint64_t consumed = metrics_read_counter(m->consumed);
    uint64_t errors = metrics_read_counter(m->errors_decode) +
                      metrics_read_counter(m->errors_enrich) +
                      metrics_read_counter(m->errors_graph);
    int64_t lag = 0;
    json_t *parts = partitions(st, &lag);
    bool receipt = strcmp(st->name, "receipt") == 0;
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:o}",
                          "name", st->name, "topic", st->topic, "group", st->group, "state",
                          consumer_state_name(status_effective_state(st, mono_ms(), cfg->stall_after_ms)),
                          "state_since_ms", (json_int_t)atomic_load(&st->state_since_ms),
                          "killswitch_flag", receipt ? cfg->flags.receipt_killswitch_flag
                                                     : cfg->flags.factoid_killswitch_flag,
                          "killswitch", atomic_load(&st->killswitch), "consumed", (json_int_t)consumed,
                          "persisted", (json_int_t)metrics_read_counter(m->persisted), "errors",
                          (json_int_t)errors, "writes_last_10m",
                          (json_int_t)status_writes_last(st, now, STATUS_WINDOW_MINUTES),
                          "writes_per_minute", per_minute(st, now), "filters",
                          filter_table(st, consumed), "lag", (json_int_t)lag, "partitions", parts);
    if (!j) return NULL;
    json_object_set_new(j, "unavailable", outages_json(st));
    json_object_set_new(j, "auto_offset_reset", json_string(consumer_config(cfg, st->name)->auto_offset_reset ==
                                                                    CONFIG_OFFSET_LATEST ? "latest" : "earliest"));
    json_object_set_new(j, "dead_letters", dead_letters(m));
    json_t *counts = counts_json(m);
    json_object_update(j, counts);
    json_decref(counts);
    return j;
}

static const char *source_name(enum config_flags_source s) {
    return s == CONFIG_FLAGS_HTTP ? "http" : s == CONFIG_FLAGS_VALKEY ? "valkey" : "file";
}

static json_t *flags_json(struct pipeline *p) {
    const struct cgw_config *cfg = p->cfg;
    char rollout[512] = "absent";
    struct flags_poller_health health;
    flags_poller_health(p->flag_poller, &health);
    const struct flags_set *set = flags_acquire_current(&p->flags);
    const struct flags_feature *f = set ? flags_find(set, cfg->flags.rollout_flag) : NULL;
    if (f) flags_describe(f, rollout, sizeof rollout);
    json_t *j = json_pack(
        "{s:s, s:b, s:b, s:I, s:s, s:s, s:s, s:{s:b, s:b}}", "source", source_name(cfg->flags.source),
        "loaded", set != NULL, "source_ok", health.source_ok, "last_read_ms",
        (json_int_t)health.last_ok_ms, "last_error", health.last_error, "rollout_flag",
        cfg->flags.rollout_flag, "rollout", rollout,
        "killswitches", cfg->flags.receipt_killswitch_flag,
        flags_is_on(set, cfg->flags.receipt_killswitch_flag), cfg->flags.factoid_killswitch_flag,
        flags_is_on(set, cfg->flags.factoid_killswitch_flag));
    if (set) flags_release(set);
    return j;
}

static json_t *endpoints_json(const struct pipeline *p) {
    const struct cgw_config *cfg = p->cfg;
    char valkey[300];
    snprintf(valkey, sizeof valkey, "%s:%d", cfg->valkey.host, cfg->valkey.port);
    json_t *flags_at = cfg->flags.source == CONFIG_FLAGS_HTTP     ? redacted_url(cfg->flags.http_url)
                       : cfg->flags.source == CONFIG_FLAGS_VALKEY ? json_string(valkey)
                                                                  : redacted_url(cfg->flags.file);
    return json_pack("{s:o, s:o, s:s, s:o, s:o, s:o, s:o}", "kafka",
                     redacted_url(kafka_auth_brokers(p->kafka)), "neo4j", redacted_url(cfg->neo4j.uri),
                     "valkey", valkey, "fido", redacted_url(cfg->enrichment.fido.base_url),
                     "retailer", redacted_url(cfg->enrichment.retailer.base_url),
                     "schema_registry", redacted_url(cfg->schema_registry.url), "flags", flags_at);
}

json_t *pipeline_status_doc(struct pipeline *p) {
    const struct cgw_config *cfg = p->cfg;
    long long now = wall_ms();
    json_t *consumers = json_array();
    for (int k = 0; k < CONSUMER_COUNT; k++)
        if (p->consumers[k]) json_array_append_new(consumers, consumer_json(p, p->consumers[k], now));
    return json_pack(
        "{s:s, s:s, s:I, s:I, s:i, s:o, s:{s:b, s:b, s:b}, s:o, s:o}", "service", cfg->service_name,
        "version", CGW_VERSION, "generated_at_ms", (json_int_t)now, "uptime_seconds",
        (json_int_t)((now - p->started_ms) / 1000), "instances", 1, "consumers", consumers,
        "config", "log_only", cfg->log_only, "log_only_commit_offsets",
        cfg->log_only_commit_offsets, "dry_run_deprecated", cfg->dry_run, "flags",
        flags_json(p), "endpoints", endpoints_json(p));
}

char *pipeline_status_json(struct pipeline *p) {
    json_t *doc = pipeline_status_doc(p);
    char *out = doc ? json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    return out;
}
