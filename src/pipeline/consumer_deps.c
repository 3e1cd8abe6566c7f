/* src/pipeline/consumer_deps.c: what a consumer gives its batch engine (engine.h): the
 * engine's options from the config, its servers behind struct engine_deps (the schema
 * registry, the rollout flag, the idempotency cache, the enrichment services, Neo4j, the
 * dead-letter topic, Kafka's offset store, the pipeline's stop-aware sleep and the clock),
 * and the consumer's metrics.
 *
 * Each function here is a thin adapter from the engine's call to the room that does the
 * work; the engine brackets the calls with the watch and decides about outages. The unit
 * tests put stand-ins in their place (tests/unit/engine_test.c).
 */
#include "pipeline/consumer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "idem/idem.h"

/* ------------------------------------------------------------------ metrics */

/* The skip reasons of each consumer, in the order of their checks (contract §2). */
static const record_reason RECEIPT_REASONS[] = {
    RECORD_REASON_DIGITAL, RECORD_REASON_STATUS, RECORD_REASON_NO_FIDOS,
    RECORD_REASON_NOT_IN_ROLLOUT, RECORD_REASON_DUPLICATE, RECORD_REASON_NONE};
static const record_reason FACTOID_REASONS[] = {
    RECORD_REASON_SOURCE, RECORD_REASON_TYPE, RECORD_REASON_NO_FIDOS,
    RECORD_REASON_NOT_IN_ROLLOUT, RECORD_REASON_DUPLICATE, RECORD_REASON_NONE};

static struct metrics_counter *counter(struct metrics_registry *r, const char *name,
                                       const char *help, const char *n) {
    return metrics_register_counter(r, name, help, "consumer", n, NULL);
}

static void register_records(consumer_metrics *m, struct metrics_registry *r, const char *n) {
    m->consumed = counter(r, "cgw_records_consumed_total", "Records read from Kafka", n);
    for (const record_reason *rr = m->reasons; *rr != RECORD_REASON_NONE; rr++)
        m->skipped[*rr] = metrics_register_counter(
            r, "cgw_records_skipped_total", "Records deliberately skipped, by reason",
            "consumer", n, "reason", record_reason_name(*rr), NULL);
    static const char *const kinds[3] = {"decode", "enrichment", "graph"};
    struct metrics_counter **errs[3] = {&m->errors_decode, &m->errors_enrich, &m->errors_graph};
    for (int i = 0; i < 3; i++)
        *errs[i] = metrics_register_counter(r, "cgw_records_errors_total",
                                            "Records that could not be processed", "consumer",
                                            n, "kind", kinds[i], NULL);
    m->persisted = counter(r, "cgw_records_persisted_total", "Records written to the graph", n);
    m->rewritten = counter(
        r, "cgw_records_rewritten_total",
        "Records written again whose purchase was in the graph already (replays)", n);
    for (int i = 0; i < CONSUMER_DLQ_REASONS; i++)
        m->dead_lettered[i] = metrics_register_counter(
            r, "cgw_records_dead_lettered_total",
            "Records written to the dead-letter topic, by reason", "consumer", n, "reason",
            consumer_dlq_reasons[i], NULL);
}

static void register_servers(consumer_metrics *m, struct metrics_registry *r, const char *n) {
    m->nodes_created = counter(r, "cgw_graph_nodes_created_total", "Nodes created in Neo4j", n);
    m->relationships_created = counter(r, "cgw_graph_relationships_created_total",
                                       "Relationships created in Neo4j", n);
    m->graph_retries = counter(r, "cgw_graph_write_retries_total",
                               "Transaction attempts beyond the first", n);
    m->graph_deadlocks = counter(r, "cgw_graph_deadlocks_total",
                                 "Transactions Neo4j ended as deadlocked and that were retried "
                                 "(concurrent writers: consumers.<name>.writers)", n);
    m->graph_failures = counter(r, "cgw_graph_write_failures_total",
                                "Batches whose write failed and was retried later", n);
    m->graph_splits = counter(
        r, "cgw_graph_batch_splits_total",
        "Batches written in halves because Neo4j refused them for their size or content", n);
    m->idem_unavailable = counter(
        r, "cgw_idempotency_unavailable_total",
        "Batches processed without the idempotency cache (Valkey unreachable)", n);
    m->enrich_unavailable = counter(r, "cgw_enrichment_unavailable_total",
                                    "Batches that waited for the enrichment services", n);
    m->fido_count_mismatch = counter(r, "cgw_fido_count_mismatch_total",
                                     "Orders whose fido_count disagrees with the items", n);
}

static void register_gauges(consumer_metrics *m, struct metrics_registry *r, const char *n) {
    static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000};
    static const double secs[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    m->batch_size = metrics_register_histogram(r, "cgw_batch_records",
                                               "Purchases per write batch (one transaction)",
                                               sizes, sizeof sizes / sizeof sizes[0],
                                               "consumer", n, NULL);
    m->write_seconds = metrics_register_histogram(r, "cgw_graph_write_seconds",
                                                  "Time to write one batch to Neo4j", secs,
                                                  sizeof secs / sizeof secs[0], "consumer", n,
                                                  NULL);
    m->lag = metrics_register_gauge(r, "cgw_consumer_lag",
                                    "Records behind the end of the assigned partitions",
                                    "consumer", n, NULL);
    m->killswitch = metrics_register_gauge(r, "cgw_killswitch_on",
                                           "1 while the consumer's killswitch flag is ON",
                                           "consumer", n, NULL);
    for (int s = 0; s < CONSUMER_STATE_COUNT; s++)
        m->state[s] = metrics_register_gauge(r, "cgw_consumer_state",
                                             "1 for the consumer's current state (as /status names it)",
                                             "consumer", n, "state",
                                             consumer_state_name((consumer_state)s), NULL);
}

void consumer_metrics_register(consumer_metrics *m, struct metrics_registry *r,
                               const char *name, consumer_kind kind, const char *dlq_topic) {
    m->reasons = kind == CONSUMER_RECEIPT ? RECEIPT_REASONS : FACTOID_REASONS;
    m->dlq_topic = dlq_topic;
    register_records(m, r, name);
    register_servers(m, r, name);
    register_gauges(m, r, name);
}

/* ------------------------------------------------------------------ the servers */

static registry_verdict schema_check(void *ctx, int32_t id, char *why, size_t len) {
    struct consumer *c = ctx;
    return registry_check(c->registry, id, why, len);
}

static bool in_rollout(void *ctx, const char *user_id) {
    struct consumer *c = ctx;
    const struct cgw_config *cfg = c->p->cfg;
    const struct flags_set *set = flags_read(&c->p->flags, &c->rollout_reader);
    return set && flags_is_enabled_for(set, cfg->flags.rollout_flag, cfg->flags.actor_prefix,
                                       user_id);
}

static int idem_status_result(struct consumer *c, enum idem_status st, char *err, size_t len) {
    if (st == IDEM_OK) return 0;
    snprintf(err, len, "%s", idem_last_error(c->idem));
    return -1;
}

static int check_ids(void *ctx, const char *const *ids, size_t n, bool *seen, char *err,
                     size_t len) {
    struct consumer *c = ctx;
    return idem_status_result(c, idem_check(c->idem, c->name, ids, n, seen), err, len);
}

static int mark_ids(void *ctx, const char *const *ids, const char *const *values, size_t n,
                    char *err, size_t len) {
    struct consumer *c = ctx;
    return idem_status_result(c, idem_mark(c->idem, c->name, ids, values, n), err, len);
}

static enum enrich_status products(void *ctx, const char *const *fidos, size_t n,
                                   struct enrich_results *out) {
    struct consumer *c = ctx;
    return enrich_products(c->p->enrich, fidos, n, out);
}

static enum enrich_status retailers(void *ctx, const char *const *ids, size_t n,
                                    struct enrich_results *out) {
    struct consumer *c = ctx;
    return enrich_retailers(c->p->enrich, ids, n, out);
}

static int write_graph(void *ctx, graph_scratch *s, const graph_batch *b, graph_stats *stats,
                       bolt_error *be) {
    struct consumer *c = ctx;
    return graph_write_in(c->p->neo4j, c->p->cfg->neo4j.database, b, s, stats, be);
}

static int dead_letter(void *ctx, const struct engine_letter *l, size_t n, char *err,
                       size_t len) {
    struct consumer *c = ctx;
    kafka_dlq_letter *k = calloc(n ? n : 1, sizeof *k);
    if (!k) return base_errf(err, len, "out of memory");
    for (size_t i = 0; i < n; i++)
        k[i] = (kafka_dlq_letter){l[i].handle, l[i].reason, l[i].error, c->name, CGW_VERSION};
    int rc = kafka_dlq_send(c->dlq, c->cc->dlq_topic, k, n, err, len);
    free(k);
    return rc;
}

static bool sleep_ms(void *ctx, long ms) {
    struct consumer *c = ctx;
    return pipeline_sleep(c->p, ms);
}

static bool stopping(void *ctx) {
    struct consumer *c = ctx;
    return pipeline_is_stopping(c->p);
}

static long long now_ms(void *ctx) {
    (void)ctx;
    return base_monotonic_ms();
}

/* ------------------------------------------------------------------ options */

/* How long one call to each server may take at most, from the config's timeouts and retries. */
static void budgets(const struct cgw_config *cfg, long *b) {
    long enrich_ms = cfg->enrichment.fido.timeout_ms > cfg->enrichment.retailer.timeout_ms
                         ? cfg->enrichment.fido.timeout_ms : cfg->enrichment.retailer.timeout_ms;
    long retries = cfg->enrichment.fido.retries > cfg->enrichment.retailer.retries
                       ? cfg->enrichment.fido.retries : cfg->enrichment.retailer.retries;
    b[SERVER_NEO4J] = cfg->neo4j.max_retry_time_ms + cfg->neo4j.connect_timeout_ms +
                      4L * config_neo4j_io_timeout_ms(cfg);
    b[SERVER_VALKEY] = 4L * cfg->valkey.timeout_ms;
    /* products then retailers, each (retries + 1) rounds with back-off up to 2 s */
    b[SERVER_ENRICHMENT] = 2 * ((retries + 1) * enrich_ms + retries * 2000L);
    b[SERVER_REGISTRY] = 3L * cfg->schema_registry.timeout_ms;
}

void consumer_engine_options(struct consumer *c, struct engine_options *o) {
    const struct cgw_config *cfg = c->p->cfg;
    engine_options_init(o);
    o->name = c->name;
    o->topic = c->cc->topic;
    o->dlq_topic = c->cc->dlq_topic;
    o->factoids = c->kind == CONSUMER_FACTOID;
    o->batch_size = (size_t)c->cc->batch_size;
    o->linger_ms = c->cc->linger_ms;
    o->batch_max_bytes = (size_t)c->cc->batch_max_bytes;
    o->log_only = cfg->log_only;
    o->log_only_commit_offsets = cfg->log_only_commit_offsets;
    o->metrics = &c->m;
    o->status = &c->st;
    o->writer_thread = true;
    o->writers = (size_t)c->cc->writers;
    budgets(cfg, o->budget_ms);
    o->deps = (struct engine_deps){
        .ctx = c, .schema_check = schema_check, .in_rollout = in_rollout,
        .idem_check = check_ids, .idem_mark = mark_ids, .enrich_products = products,
        .enrich_retailers = retailers, .graph_write = write_graph,
        .dead_letter = c->dlq ? dead_letter : NULL, .store_offsets = consumer_kafka_store,
        .release = consumer_kafka_release, .sleep = sleep_ms, .stopping = stopping,
        .now_ms = now_ms};
}
