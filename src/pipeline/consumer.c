/* src/pipeline/consumer.c: one Kafka consumer and its thread: records in, graph out,
 * offsets committed only after the graph has them.
 *
 * The loop, per batch (at most batch_size records, or what arrived within linger_ms of the
 * first one):
 *
 *   decode + filter (record_decode_*)    errors and skips are final: logged, counted
 *   rollout flag per user                skip not_in_rollout
 *   duplicates: in the batch, then in the idempotency cache (Valkey; best effort)
 *   enrichment for the whole batch       an outage waits here and retries: nothing is
 *                                        written without metadata because a service was down
 *   one Neo4j transaction (graph_write)  an outage waits here and retries
 *   idempotency marks, [SUCCESS] lines
 *   offsets stored for every record of the batch
 *
 * Offsets: enable.auto.offset.store is off, so librdkafka commits (every second, on
 * rebalance and on close) only what this loop stored, and it stores a batch's offsets only
 * after the batch is persisted or deliberately skipped: at least once, in order per
 * partition. While the loop waits out an outage it does not poll Kafka; librdkafka's own
 * threads keep the group membership alive until max.poll.interval.ms, after which the group
 * moves the partitions elsewhere and the uncommitted batch is simply read again there.
 *
 * A batch that fails because of itself (too big for Neo4j's transaction memory, or data
 * Neo4j refuses: graph_error_is_batch_caused) is written in halves, recursively, down to
 * single records; only records that fail alone become [ERROR]s, so neither one poisonous
 * record nor one huge batch blocks its partition. Batches are also cut by bytes
 * (batch_max_bytes), so the worker's memory stays bounded whatever the record sizes.
 *
 * Waiting is visible (watch.c): every call to a server is bracketed by watch_call ..
 * watch_done with the call's deadline from the config, and every Kafka poll or back-off
 * sleep by watch_idle, so the status page, /readyz and /healthz can tell a thread waiting
 * on a frozen server from a busy one while the call still blocks. Kafka outages come from
 * librdkafka's ALL_BROKERS_DOWN event; their end from the next record or metadata answer.
 */
#include "pipeline/pipeline_internal.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"
#include "graph/graph.h"
#include "idem/idem.h"
#include "kafka/dlq.h"
#include "kafka/kafka.h"
#include "registry/registry.h"

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000

struct consumer {
    pipeline *p;
    consumer_kind kind;
    const char *name;                       /* "receipt" / "factoid" */
    const struct config_consumer *cc;
    rd_kafka_t *rk;
    struct kafka_link link;        /* rk's opaque (MSK IAM token callback) */
    struct idem *idem;
    pthread_t thread;
    bool started;
    struct flags_reader flags_reader;
    consumer_metrics m;
    struct registry *registry;     /* factoids only */
    kafka_dlq *dlq;                /* NULL when the consumer has no dlq_topic */
    struct log_latch dlq_outage;
    atomic_bool finished;          /* the thread has ended */
    long long kafka_probe_ms;      /* last recovery probe during a Kafka outage */
    consumer_status st;            /* read by the status page from another thread */
    bool fatal;                    /* librdkafka raised a fatal error: the handle is dead */
};

/* One record of a batch and what became of it. */
typedef struct entry {
    rd_kafka_message_t *msg;
    record_result res;
    bool persisted;
    const char *dlq_reason;        /* set with every RECORD_ERROR: one of consumer_dlq_reasons */
    bool rewritten;     /* persisted, but the purchase was in the graph already */
} entry;

const char *const consumer_dlq_reasons[CONSUMER_DLQ_REASONS] = {
    "undecodable", "invalid_string", "id_too_long", "schema_refused", "neo4j_refused"};

static void set_state(consumer *c, consumer_state s) { status_set_state(&c->st, s, wall_ms()); }

/* How long one call to s may take at most, from the config's timeouts and retries. */
static long budget(consumer *c, server s) {
    const struct cgw_config *cfg = c->p->cfg;
    long enrich_ms = cfg->enrichment.fido.timeout_ms > cfg->enrichment.retailer.timeout_ms
                         ? cfg->enrichment.fido.timeout_ms : cfg->enrichment.retailer.timeout_ms;
    long retries = cfg->enrichment.fido.retries > cfg->enrichment.retailer.retries
                       ? cfg->enrichment.fido.retries : cfg->enrichment.retailer.retries;
    switch (s) {
    case SERVER_NEO4J:
        return cfg->neo4j.max_retry_time_ms + cfg->neo4j.connect_timeout_ms +
               4L * config_neo4j_io_timeout_ms(cfg);
    case SERVER_VALKEY: return 4L * cfg->valkey.timeout_ms;
    /* products then retailers, each (retries + 1) rounds with back-off up to 2 s */
    case SERVER_ENRICHMENT: return 2 * ((retries + 1) * enrich_ms + retries * 2000L);
    case SERVER_REGISTRY: return 3L * cfg->schema_registry.timeout_ms;
    default: return 30000;
    }
}

static void idle_for(consumer *c, long ms) { watch_idle(&c->st.watch, ms); }

/* The pause of a retry loop that waits out an outage: BACKOFF_MIN_MS doubled per attempt up to
 * BACKOFF_MAX_MS, announced to the watch. true when the worker is stopping. */
static bool wait_to_retry(consumer *c, int *attempt) {
    long ms = base_backoff_ms((*attempt)++, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    idle_for(c, ms);
    return pipeline_sleep(c->p, ms);
}

/* ------------------------------------------------------------------ metrics */

/* The skip reasons of each consumer, in the order of their checks (contract §2). */
static const record_reason RECEIPT_REASONS[] = {
    RECORD_REASON_DIGITAL, RECORD_REASON_STATUS, RECORD_REASON_NO_FIDOS,
    RECORD_REASON_NOT_IN_ROLLOUT, RECORD_REASON_DUPLICATE, RECORD_REASON_NONE};
static const record_reason FACTOID_REASONS[] = {
    RECORD_REASON_SOURCE, RECORD_REASON_TYPE, RECORD_REASON_NO_FIDOS,
    RECORD_REASON_NOT_IN_ROLLOUT, RECORD_REASON_DUPLICATE, RECORD_REASON_NONE};

static void register_metrics(consumer *c) {
    struct metrics_registry *r = c->p->metrics;
    consumer_metrics *m = &c->m;
    const char *n = c->name;
    m->consumed = metrics_register_counter(r, "cgw_records_consumed_total",
                                           "Records read from Kafka", "consumer", n, NULL);
    m->reasons = c->kind == CONSUMER_RECEIPT ? RECEIPT_REASONS : FACTOID_REASONS;
    for (const record_reason *rr = m->reasons; *rr != RECORD_REASON_NONE; rr++)
        m->skipped[*rr] = metrics_register_counter(
            r, "cgw_records_skipped_total", "Records deliberately skipped, by reason",
            "consumer", n, "reason", record_reason_name(*rr), NULL);
    m->errors_decode = metrics_register_counter(r, "cgw_records_errors_total",
                                                "Records that could not be processed",
                                                "consumer", n, "kind", "decode", NULL);
    m->errors_enrich = metrics_register_counter(r, "cgw_records_errors_total",
                                                "Records that could not be processed",
                                                "consumer", n, "kind", "enrichment", NULL);
    m->errors_graph = metrics_register_counter(r, "cgw_records_errors_total",
                                               "Records that could not be processed",
                                               "consumer", n, "kind", "graph", NULL);
    m->persisted = metrics_register_counter(r, "cgw_records_persisted_total",
                                            "Records written to the graph", "consumer", n, NULL);
    m->rewritten = metrics_register_counter(
        r, "cgw_records_rewritten_total",
        "Records written again whose purchase was in the graph already (replays)", "consumer", n,
        NULL);
    m->nodes_created = metrics_register_counter(r, "cgw_graph_nodes_created_total",
                                                "Nodes created in Neo4j", "consumer", n, NULL);
    m->relationships_created = metrics_register_counter(
        r, "cgw_graph_relationships_created_total", "Relationships created in Neo4j",
        "consumer", n, NULL);
    m->graph_retries = metrics_register_counter(r, "cgw_graph_write_retries_total",
                                                "Transaction attempts beyond the first",
                                                "consumer", n, NULL);
    m->graph_failures = metrics_register_counter(r, "cgw_graph_write_failures_total",
                                                 "Batches whose write failed and was retried later",
                                                 "consumer", n, NULL);
    m->graph_splits = metrics_register_counter(
        r, "cgw_graph_batch_splits_total",
        "Batches written in halves because Neo4j refused them for their size or content",
        "consumer", n, NULL);
    m->idem_unavailable = metrics_register_counter(
        r, "cgw_idempotency_unavailable_total",
        "Batches processed without the idempotency cache (Valkey unreachable)", "consumer", n,
        NULL);
    m->enrich_unavailable = metrics_register_counter(
        r, "cgw_enrichment_unavailable_total",
        "Batches that waited for the enrichment services", "consumer", n, NULL);
    m->fido_count_mismatch = metrics_register_counter(
        r, "cgw_fido_count_mismatch_total", "Orders whose fido_count disagrees with the items",
        "consumer", n, NULL);
    for (int i = 0; i < CONSUMER_DLQ_REASONS; i++)
        m->dead_lettered[i] = metrics_register_counter(
            r, "cgw_records_dead_lettered_total",
            "Records written to the dead-letter topic, by reason", "consumer", n, "reason",
            consumer_dlq_reasons[i], NULL);
    m->dlq_topic = c->cc->dlq_topic;
    static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000};
    static const double secs[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
    m->batch_size = metrics_register_histogram(r, "cgw_batch_records", "Records per batch",
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

/* ------------------------------------------------------------------ Kafka set-up */

/* librdkafka's error events, served on the consumer thread by rd_kafka_consumer_poll. */
static void kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;                  /* the handle's kafka_link; c is its user pointer */
    consumer *c = kafka_user(rk);
    if (err == RD_KAFKA_RESP_ERR__FATAL) c->fatal = true;   /* the loop replaces the handle */
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        /* e.g. MSK IAM refused the token: nothing is consumed, nothing is lost */
        LOG(LOG_ERROR, "[ERROR] Kafka authentication failed", LOG_STR("consumer", c->name),
            LOG_STR("error", reason));
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        watch_report(&c->st.watch, SERVER_KAFKA, true, reason);
        return;
    }
    LOG(watch_outage(&c->st.watch, SERVER_KAFKA) ? LOG_DEBUG : LOG_WARN, "Kafka error",
        LOG_STR("consumer", c->name), LOG_STR("code", rd_kafka_err2name(err)),
        LOG_STR("error", reason));
}

/* During a Kafka outage: a record, or a metadata answer (once a second when idle), ends it. */
static void kafka_probe(consumer *c, size_t got) {
    if (!watch_outage(&c->st.watch, SERVER_KAFKA)) return;
    if (got) {
        watch_report(&c->st.watch, SERVER_KAFKA, false, NULL);
        return;
    }
    long long now = mono_ms();
    if (now - c->kafka_probe_ms < 1000) return;
    c->kafka_probe_ms = now;
    const struct rd_kafka_metadata *md = NULL;
    watch_call(&c->st.watch, SERVER_KAFKA, 3000);
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->rk, 0, NULL, &md, 2000);
    if (md) rd_kafka_metadata_destroy(md);
    watch_done(&c->st.watch, SERVER_KAFKA, e != RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(e));
}

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    enum log_level l = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : level <= 6 ? LOG_INFO
                                                                                  : LOG_DEBUG;
    LOG(l, "librdkafka", LOG_STR("facility", fac), LOG_STR("detail", buf));
}

static rd_kafka_t *new_kafka(consumer *c, char *err, size_t errlen) {
    const struct cgw_config *cfg = c->p->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[128];
    snprintf(client_id, sizeof client_id, "%s-%s",
             cfg->kafka.client_id ? cfg->kafka.client_id : "cgw", c->name);
    c->link = (struct kafka_link){ c->p->kafka, c };
    int bad = kafka_conf_set(conf, "bootstrap.servers", kafka_auth_brokers(c->p->kafka), err, errlen) ||
              kafka_conf_set(conf, "group.id", c->cc->group, err, errlen) ||
              kafka_conf_set(conf, "client.id", client_id, err, errlen) ||
              kafka_conf_set(conf, "auto.offset.reset",
                       c->cc->auto_offset_reset == CONFIG_OFFSET_LATEST ? "latest" : "earliest",
                       err, errlen) ||
              kafka_conf_set(conf, "enable.auto.commit", "true", err, errlen) ||
              kafka_conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen) ||
              kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errlen) ||
              kafka_conf_set(conf, "partition.assignment.strategy", "cooperative-sticky", err,
                       errlen) ||
              /* librdkafka pre-fetches up to 64 MiB per consumer, and 1 MiB per partition per
               * fetch, by default; a batch of 500 records needs far less, and two consumers
               * must fit the worker in 64 MB. kafka.properties may raise them. */
              kafka_conf_set(conf, "queued.max.messages.kbytes", "4096", err, errlen) ||
              kafka_conf_set(conf, "max.partition.fetch.bytes", "262144", err, errlen) ||
              kafka_conf_set(conf, "fetch.max.bytes", "2097152", err, errlen) ||
              kafka_conf_apply(conf, cfg, &c->link, err, errlen);
    char instance[300];
    snprintf(instance, sizeof instance, "%s-%s", c->p->group_instance_base, c->name);
    if (!bad && c->p->group_instance_base[0])
        bad = kafka_conf_set(conf, "group.instance.id", instance, err, errlen);
    if (bad) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    rd_kafka_conf_set_error_cb(conf, kafka_error);   /* the opaque is c->link (kafka_conf_apply) */
    char e[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) {
        snprintf(err, errlen, "kafka: %s", e);
        return NULL;
    }
    if (kafka_handle_started(rk, &c->link, err, errlen) != 0) {
        rd_kafka_destroy(rk);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int subscribe(consumer *c, char *err, size_t errlen) {
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, c->cc->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    if (e) {
        snprintf(err, errlen, "kafka: subscribe %s: %s", c->cc->topic, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* librdkafka 2.8's consumer_close() with cooperative-sticky does not send LeaveGroup, which
 * makes the next member wait out session.timeout.ms; unsubscribing first does send it. With
 * static membership (group.instance.id) this matters twice: close() never sends LeaveGroup for
 * a static member (KIP-345), but unsubscribe() does, and the broker then drops the member and
 * its static id. So the killswitch and SIGTERM (both come here) really release the
 * partitions: the group is empty at once, and in a rolling deploy the replacement task (a new
 * task id) gets them in one rebalance instead of after the old member's session timeout.
 * Only a crash (kill -9, OOM) leaves the static member in place, for its restart under the
 * same id to take back without a rebalance (src/kafka/kafka_instance.c). */
static void leave_group(consumer *c) {
    rd_kafka_unsubscribe(c->rk);
    for (int i = 0; i < 100; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 100);
        if (m) rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        if (rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR) break;
        int n = a->cnt;
        rd_kafka_topic_partition_list_destroy(a);
        if (n == 0) break;
    }
    rd_kafka_consumer_close(c->rk);
}

/* ------------------------------------------------------------------ collecting a batch */

/* At most batch_size records, and no more once they hold batch_max_bytes of values (the
 * first record is always taken, whatever its size). */
static size_t collect(consumer *c, entry *batch) {
    size_t n = 0, bytes = 0;
    long long deadline = 0;
    while (n < (size_t)c->cc->batch_size && bytes < (size_t)c->cc->batch_max_bytes &&
           !pipeline_is_stopping(c->p)) {
        int timeout = 500;
        if (n) {
            long long left = deadline - base_monotonic_ms();
            if (left <= 0) break;
            timeout = (int)left;
        }
        idle_for(c, timeout + 1000L);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout);
        if (!m) {
            if (!n) break; /* let the caller look at the stop flag */
            continue;
        }
        if (m->err) {
            /* An error event, never a record: it must not reach the batch. Authentication
             * (e.g. MSK IAM refused the token): nothing is consumed, nothing is lost. Fatal
             * (e.g. a static member fenced after a broker restart loaded an older member
             * id): this handle never consumes again; the loop makes a new one. */
            if (m->err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
                LOG(LOG_ERROR, "[ERROR] Kafka authentication failed", LOG_STR("consumer", c->name),
                    LOG_STR("error", rd_kafka_message_errstr(m)));
            else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                LOG(LOG_WARN, "Kafka consumer error", LOG_STR("consumer", c->name),
                    LOG_STR("error", rd_kafka_message_errstr(m)));
            if (m->err == RD_KAFKA_RESP_ERR__FATAL) c->fatal = true;
            rd_kafka_message_destroy(m);
            continue;
        }
        batch[n++] = (entry){.msg = m};
        bytes += m->len + m->key_len;
        if (n == 1) deadline = base_monotonic_ms() + c->cc->linger_ms;
    }
    return n;
}

/* ------------------------------------------------------------------ decode and filter */

static int32_t header_schema_id(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) return -1;
    if (rd_kafka_header_get_last(h, "__value_schema_id", &v, &len)) return -1;
    if (len == 4) {
        const uint8_t *b = v;
        return (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
    }
    char buf[16];
    if (len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *end;
    long id = strtol(buf, &end, 10);
    return *end || id < 0 || id > INT32_MAX ? -1 : (int32_t)id;
}

static void log_skip(consumer *c, const entry *e) {
    const rd_kafka_message_t *m = e->msg;
    char key[128] = "";
    if (m->key) snprintf(key, sizeof key, "%.*s", (int)(m->key_len < 127 ? m->key_len : 127),
                         (const char *)m->key);
    const char *msg = c->kind == CONSUMER_RECEIPT ? "[WARN] Skipping receipt"
                                                  : "[WARN] Skipping factoid";
    LOG(LOG_WARN, msg, LOG_STR("consumer", c->name),
        LOG_STR("reason", record_reason_name(e->res.reason)), LOG_STR("key", key),
        LOG_STR("detail", e->res.detail), LOG_INT("partition", m->partition),
        LOG_INT("offset", m->offset));
}

static void skip(consumer *c, entry *e, record_reason reason) {
    e->res.status = RECORD_SKIP;
    e->res.reason = reason;
    record_purchase_free(e->res.purchase);
    e->res.purchase = NULL;
    metrics_inc_counter(c->m.skipped[reason]);
    log_skip(c, e);
}

/* A factoid's schema id must be one the registry (or the allowlist) accepts; a refused id
 * makes the record an error. While the registry cannot answer for an id it has not seen, the
 * record waits: -1 only when the worker stops meanwhile. */
static int check_schema(consumer *c, entry *e) {
    int attempt = 0;
    for (;;) {
        char why[256] = "";
        watch_call(&c->st.watch, SERVER_REGISTRY, budget(c, SERVER_REGISTRY));
        registry_verdict v = registry_check(c->registry, e->res.schema_id, why, sizeof why);
        watch_done(&c->st.watch, SERVER_REGISTRY, v == REGISTRY_UNAVAILABLE, why);
        if (v == REGISTRY_ACCEPTED) return 0;
        if (v == REGISTRY_REFUSED) {
            record_purchase_free(e->res.purchase);
            e->res.purchase = NULL;
            e->res.status = RECORD_ERROR;
            e->res.shop_order_finalized = 0;
            e->res.fido_count_mismatch = 0;
            snprintf(e->res.error, sizeof e->res.error, "schema id %d refused: %.200s",
                     (int)e->res.schema_id, why);
            e->dlq_reason = "schema_refused";
            return 0;
        }
        set_state(c, CONSUMER_STATE_WAITING_REGISTRY);
        if (wait_to_retry(c, &attempt)) return -1;
    }
}

/* -1 only when the worker stops while the record waits for the schema registry. */
static int decode(consumer *c, entry *e) {
    const rd_kafka_message_t *m = e->msg;
    if (c->kind == CONSUMER_RECEIPT) {
        record_decode_receipt(m->payload, m->len, &e->res);
    } else {
        record_decode_factoid(m->payload, m->len, header_schema_id(m), &e->res);
        if (e->res.status != RECORD_ERROR && check_schema(c, e) != 0) return -1;
    }
    metrics_inc_counter(c->m.consumed);
    if (e->res.shop_order_finalized)
        LOG(LOG_INFO, "[INFO] Shop order received", LOG_STR("consumer", c->name),
            LOG_STR("order_id", e->res.order_id), LOG_INT("fido_count", e->res.fido_count),
            LOG_INT("partition", m->partition), LOG_INT("offset", m->offset));
    if (e->res.fido_count_mismatch) metrics_inc_counter(c->m.fido_count_mismatch);
    if (e->res.status == RECORD_ERROR) {
        if (!e->dlq_reason) e->dlq_reason = record_error_kind_name(e->res.error_kind);
        metrics_inc_counter(c->m.errors_decode);
        LOG(LOG_ERROR, "[ERROR] Cannot decode record", LOG_STR("consumer", c->name),
            LOG_STR("topic", c->cc->topic), LOG_INT("partition", m->partition),
            LOG_INT("offset", m->offset), LOG_STR("error", e->res.error));
    } else if (e->res.status == RECORD_SKIP) {
        metrics_inc_counter(c->m.skipped[e->res.reason]);
        log_skip(c, e);
    }
    return 0;
}

static void apply_rollout(consumer *c, entry *batch, size_t n) {
    const struct cgw_config *cfg = c->p->cfg;
    const struct flags_set *set = flags_read(&c->p->flags, &c->flags_reader);
    for (size_t i = 0; i < n; i++) {
        entry *e = &batch[i];
        if (e->res.status != RECORD_OK) continue;
        if (!set || !flags_is_enabled_for(set, cfg->flags.rollout_flag, cfg->flags.actor_prefix,
                                          e->res.purchase->user_id))
            skip(c, e, RECORD_REASON_NOT_IN_ROLLOUT);
    }
}

/* Two records with one id in a batch: the later one is the duplicate, as it would be had
 * it arrived in a later batch. Then the cache decides for the rest. */
static void apply_duplicates(consumer *c, entry *batch, size_t n) {
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    bool *seen = calloc(n ? n : 1, sizeof *seen);
    size_t k = 0;
    if (!ids || !idx || !seen) goto out;
    for (size_t i = 0; i < n; i++) {
        if (batch[i].res.status != RECORD_OK) continue;
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++) dup = !strcmp(ids[j], batch[i].res.purchase->id);
        if (dup) { skip(c, &batch[i], RECORD_REASON_DUPLICATE); continue; }
        ids[k] = batch[i].res.purchase->id;
        idx[k++] = i;
    }
    if (!k) goto out;
    watch_call(&c->st.watch, SERVER_VALKEY, budget(c, SERVER_VALKEY));
    enum idem_status st = idem_check(c->idem, c->name, ids, k, seen);
    watch_done(&c->st.watch, SERVER_VALKEY, st != IDEM_OK, idem_last_error(c->idem));
    if (st != IDEM_OK) {
        metrics_inc_counter(c->m.idem_unavailable);
        goto out;
    }
    for (size_t j = 0; j < k; j++)
        if (seen[j]) skip(c, &batch[idx[j]], RECORD_REASON_DUPLICATE);
out:
    free(ids);
    free(idx);
    free(seen);
}

/* ------------------------------------------------------------------ enrichment */

typedef struct metadata {
    struct enrich_results products, retailers;
    graph_product *gp;
    graph_retailer *gr;
    size_t ngp, ngr;
} metadata;

static void metadata_free(metadata *md) {
    enrich_results_free(&md->products);
    enrich_results_free(&md->retailers);
    free(md->gp);
    free(md->gr);
    memset(md, 0, sizeof *md);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts v and drops repeats; returns the new length. The array borrows the strings. */
static size_t sort_unique(const char **v, size_t n) {
    qsort(v, n, sizeof *v, cmp_str);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || strcmp(v[w - 1], v[i]) != 0) v[w++] = v[i];
    return w;
}

/* Every distinct fido and retailer of the batch's purchases, sorted (graph.h asks products to
 * be sorted by fido), looked up in one call per service. */
static enum enrich_status fetch_metadata(consumer *c, entry *batch, size_t n, metadata *md) {
    size_t nf = 0, nr = 0, cap_f = 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i].res.status == RECORD_OK) cap_f += batch[i].res.purchase->nitems;
    const char **fidos = malloc((cap_f ? cap_f : 1) * sizeof *fidos);
    const char **rids = malloc((n ? n : 1) * sizeof *rids);
    enum enrich_status st = ENRICH_ENOMEM;
    if (!fidos || !rids) goto out;
    for (size_t i = 0; i < n; i++) {
        const record_purchase *p = batch[i].res.purchase;
        if (batch[i].res.status != RECORD_OK) continue;
        for (size_t k = 0; k < p->nitems; k++) fidos[nf++] = p->items[k].fido;
        if (p->retailer_id) rids[nr++] = p->retailer_id;
    }
    nf = sort_unique(fidos, nf);
    nr = sort_unique(rids, nr);
    st = enrich_products(c->p->enrich, fidos, nf, &md->products);
    if (st == ENRICH_OK) st = enrich_retailers(c->p->enrich, rids, nr, &md->retailers);
out:
    free(fidos);
    free(rids);
    return st;
}

static int build_graph_metadata(metadata *md) {
    md->ngp = md->products.count;
    md->ngr = md->retailers.count;
    md->gp = calloc(md->ngp ? md->ngp : 1, sizeof *md->gp);
    md->gr = calloc(md->ngr ? md->ngr : 1, sizeof *md->gr);
    if (!md->gp || !md->gr) return -1;
    for (size_t i = 0; i < md->ngp; i++) {
        const struct enrich_product *p = &md->products.products[i];
        md->gp[i] = (graph_product){p->fido, p->known, p->name, p->brand,
                                    (const char *const *)p->categories, p->categories_count};
    }
    for (size_t i = 0; i < md->ngr; i++) {
        const struct enrich_retailer *r = &md->retailers.retailers[i];
        md->gr[i] = (graph_retailer){r->retailer_id, r->known, r->name, r->store_type};
    }
    return 0;
}

/* Waits out an outage of the enrichment services. -1 only when the worker is stopping. */
static int enrich_batch(consumer *c, entry *batch, size_t n, metadata *md) {
    int attempt = 0;
    for (;;) {
        watch_call(&c->st.watch, SERVER_ENRICHMENT, budget(c, SERVER_ENRICHMENT));
        enum enrich_status st = fetch_metadata(c, batch, n, md);
        watch_done(&c->st.watch, SERVER_ENRICHMENT, st != ENRICH_OK,
                   st == ENRICH_OK ? "" : md->products.error[0] ? md->products.error
                                                                : md->retailers.error);
        if (st == ENRICH_OK) break;
        set_state(c, CONSUMER_STATE_WAITING_ENRICHMENT);
        metadata_free(md);
        metrics_inc_counter(c->m.enrich_unavailable);
        if (wait_to_retry(c, &attempt)) return -1;
    }
    if (md->products.failed || md->retailers.failed) {
        metrics_inc_counter(c->m.errors_enrich);
        LOG(LOG_ERROR, "[ERROR] Enrichment request refused; records keep ids without metadata",
            LOG_STR("consumer", c->name),
            LOG_STR("error", md->products.failed ? md->products.error : md->retailers.error));
    }
    return build_graph_metadata(md);
}

/* ------------------------------------------------------------------ graph */

/* existed (n entries): which purchases were in the graph before (graph_batch.existed). */
static int write_purchases(consumer *c, const metadata *md, const record_purchase **ps,
                           size_t n, unsigned char *existed, bolt_error *be) {
    graph_batch gb = {ps, n, md->gp, md->ngp, md->gr, md->ngr, existed};
    graph_stats gs;
    watch_call(&c->st.watch, SERVER_NEO4J, budget(c, SERVER_NEO4J));
    long long t0 = base_monotonic_ms();
    int rc = graph_write(c->p->neo4j, c->p->cfg->neo4j.database, &gb, &gs, be);
    metrics_observe(c->m.write_seconds, (double)(base_monotonic_ms() - t0) / 1000.0);
    if (gs.attempts > 1) metrics_add_counter(c->m.graph_retries, (uint64_t)gs.attempts - 1);
    if (rc == BOLT_OK) {
        metrics_add_counter(c->m.nodes_created, (uint64_t)gs.nodes_created);
        metrics_add_counter(c->m.relationships_created, (uint64_t)gs.relationships_created);
    }
    return rc;
}

static void mark_graph_error(consumer *c, entry *e, const bolt_error *be) {
    e->res.status = RECORD_ERROR;
    metrics_inc_counter(c->m.errors_graph);
    LOG(LOG_ERROR, "[ERROR] Neo4j refused record", LOG_STR("consumer", c->name),
        LOG_STR("id", e->res.purchase->id), LOG_INT("partition", e->msg->partition),
        LOG_INT("offset", e->msg->offset), LOG_STR("neo4j_code", be->neo4j_code),
        LOG_STR("error", be->message));
    e->dlq_reason = "neo4j_refused";
    snprintf(e->res.error, sizeof e->res.error, "Neo4j refused the record: %.60s: %.160s",
             be->neo4j_code[0] ? be->neo4j_code : bolt_code_name(be->code), be->message);
    record_purchase_free(e->res.purchase);
    e->res.purchase = NULL;
}

/* Writes todo[0..n) in one transaction; when the batch itself is the cause of a failure
 * (too big for the transaction memory, or data Neo4j refuses), writes each half on its
 * own, down to single records: only a record that fails alone becomes an error. BOLT_OK
 * when every record is persisted or an error; anything else is an outage (some records
 * may be persisted already: the caller retries the rest). */
static int write_split(consumer *c, const metadata *md, entry **todo,
                       const record_purchase **ps, size_t n, unsigned char *existed,
                       bolt_error *be) {
    int rc = write_purchases(c, md, ps, n, existed, be);
    if (rc == BOLT_OK) {
        for (size_t i = 0; i < n; i++) {
            todo[i]->persisted = true;
            todo[i]->rewritten = existed[i];
        }
        return BOLT_OK;
    }
    if (!graph_error_is_batch_caused(be)) return rc;
    if (n == 1) {
        mark_graph_error(c, todo[0], be);
        return BOLT_OK;
    }
    size_t half = n / 2;
    metrics_inc_counter(c->m.graph_splits);
    LOG(LOG_WARN, "Neo4j refused a batch for its size or content; writing it in halves",
        LOG_STR("consumer", c->name), LOG_UINT("records", n),
        LOG_STR("neo4j_code", be->neo4j_code[0] ? be->neo4j_code : bolt_code_name(be->code)));
    rc = write_split(c, md, todo, ps, half, existed, be);
    if (rc == BOLT_OK)
        rc = write_split(c, md, todo + half, ps + half, n - half, existed + half, be);
    return rc;
}

/* The records of the batch still to write; returns how many. */
static size_t pending(entry *batch, size_t n, entry **todo, const record_purchase **ps) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (batch[i].res.status == RECORD_OK && !batch[i].persisted) {
            todo[k] = &batch[i];
            ps[k++] = batch[i].res.purchase;
        }
    return k;
}

/* Writes the batch's purchases; waits out Neo4j outages. -1 only when stopping. */
static int persist(consumer *c, entry *batch, size_t n, const metadata *md) {
    entry **todo = malloc((n ? n : 1) * sizeof *todo);
    const record_purchase **ps = malloc((n ? n : 1) * sizeof *ps);
    unsigned char *existed = malloc(n ? n : 1);
    int result = -1;
    if (!todo || !ps || !existed) goto out;
    int attempt = 0;
    size_t k;
    while ((k = pending(batch, n, todo, ps)) > 0) {
        bolt_error be;
        int rc = write_split(c, md, todo, ps, k, existed, &be);
        watch_done(&c->st.watch, SERVER_NEO4J, rc != BOLT_OK, rc == BOLT_OK ? "" : be.message);
        if (rc == BOLT_OK) break;
        set_state(c, CONSUMER_STATE_WAITING_NEO4J);
        metrics_inc_counter(c->m.graph_failures);
        if (wait_to_retry(c, &attempt)) goto out;
    }
    result = 0;
out:
    free(todo);
    free(ps);
    free(existed);
    return result;
}

/* ------------------------------------------------------------------ dead letters */

static int dlq_reason_index(const char *reason) {
    for (int i = 0; i < CONSUMER_DLQ_REASONS; i++)
        if (!strcmp(reason, consumer_dlq_reasons[i])) return i;
    return 0;
}

/* The batch's errors, each produced to the dead-letter topic, before any offset of the
 * batch is stored. While the topic cannot be written the batch waits (nothing is lost);
 * -1 only when the worker stops meanwhile (the batch is then read again). */
static int dead_letter(consumer *c, entry *batch, size_t n) {
    kafka_dlq_letter *l = c->dlq ? calloc(n ? n : 1, sizeof *l) : NULL;
    size_t k = 0;
    int attempt = 0;
    int rc = -1;
    if (!c->dlq) return 0;
    if (!l) return -1;
    for (size_t i = 0; i < n; i++)
        if (batch[i].res.status == RECORD_ERROR)
            l[k++] = (kafka_dlq_letter){batch[i].msg, batch[i].dlq_reason, batch[i].res.error,
                                        c->name, CGW_VERSION};
    while (k) {
        char err[512] = "";
        idle_for(c, 60000);   /* liveness only: the producer's own delivery timeout bounds it */
        int st = kafka_dlq_send(c->dlq, c->cc->dlq_topic, l, k, err, sizeof err);
        log_report_outage(&c->dlq_outage, st != 0, LOG_ERROR,
                          "[ERROR] Dead-letter topic cannot be written; partition waits",
                          "Dead-letter topic written again", err);
        if (st == 0) break;
        set_state(c, CONSUMER_STATE_WAITING_DLQ);
        if (wait_to_retry(c, &attempt)) goto out;
    }
    for (size_t i = 0; i < k; i++) {
        metrics_inc_counter(c->m.dead_lettered[dlq_reason_index(l[i].reason)]);
        LOG(LOG_WARN, "Record dead-lettered", LOG_STR("consumer", c->name),
            LOG_STR("dlq_topic", c->cc->dlq_topic), LOG_STR("reason", l[i].reason),
            LOG_INT("partition", l[i].msg->partition), LOG_INT("offset", l[i].msg->offset));
    }
    rc = 0;
out:
    free(l);
    return rc;
}

/* ------------------------------------------------------------------ after the commit */

static void mark_done(consumer *c, entry *batch, size_t n) {
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    char **vals = calloc(n ? n : 1, sizeof *vals);
    size_t k = 0;
    if (!ids || !vals) goto out;
    for (size_t i = 0; i < n; i++) {
        if (!batch[i].persisted) continue;
        const rd_kafka_message_t *m = batch[i].msg;
        if (asprintf(&vals[k], "%s/%d/%lld", c->cc->topic, (int)m->partition,
                     (long long)m->offset) < 0) { vals[k] = NULL; goto out; }
        ids[k++] = batch[i].res.purchase->id;
    }
    if (k) {
        watch_call(&c->st.watch, SERVER_VALKEY, budget(c, SERVER_VALKEY));
        enum idem_status st = idem_mark(c->idem, c->name, ids, (const char *const *)vals, k);
        watch_done(&c->st.watch, SERVER_VALKEY, st != IDEM_OK, idem_last_error(c->idem));
        if (st != IDEM_OK) metrics_inc_counter(c->m.idem_unavailable);
    }
out:
    for (size_t i = 0; i < k; i++) free(vals[i]);
    free(ids);
    free(vals);
}

static void log_success(consumer *c, entry *batch, size_t n, const metadata *md) {
    uint64_t written = 0;
    for (size_t i = 0; i < n; i++) {
        if (!batch[i].persisted) continue;
        const record_purchase *p = batch[i].res.purchase;
        const record_purchase *one[1] = {p};
        graph_batch gb = {one, 1, md->gp, md->ngp, md->gr, md->ngr};
        int nodes, rels;
        graph_count_purchase(&gb, p, &nodes, &rels);
        /* Counted once per purchase: a replay is a rewrite, not a second persisted record. */
        metrics_inc_counter(batch[i].rewritten ? c->m.rewritten : c->m.persisted);
        written += !batch[i].rewritten;
        LOG(LOG_INFO, batch[i].rewritten ? "[INFO] Rewrote graph data (purchase already there)"
                                         : "[SUCCESS] Persisted graph data",
            LOG_STR("consumer", c->name),
            LOG_STR("id", p->id), LOG_STR("purchase_id", p->purchase_id),
            LOG_INT("partition", batch[i].msg->partition), LOG_INT("offset", batch[i].msg->offset),
            LOG_INT("nodes", nodes), LOG_INT("relationships", rels));
    }
    status_count_writes(&c->st, wall_ms(), written);
}

/* Stores offset+1 of every record: each is persisted, skipped or an error by now. */
static void store_offsets(consumer *c, entry *batch, size_t n) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = batch[i].msg;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(l, rd_kafka_topic_name(m->rkt), m->partition);
        if (!tp) tp = rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition);
        if (m->offset + 1 > tp->offset) tp->offset = m->offset + 1;
    }
    /* Partitions revoked meanwhile refuse the store: their new owner reads them again. */
    rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

static void update_lag(consumer *c) {
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(c->rk, &a) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
    rd_kafka_position(c->rk, a);
    int64_t lag = 0;
    pthread_mutex_lock(&c->st.mu);
    c->st.npartitions = 0;
    for (int i = 0; i < a->cnt; i++) {
        int64_t lo, hi, part = -1;
        if (rd_kafka_get_watermark_offsets(c->rk, a->elems[i].topic, a->elems[i].partition, &lo,
                                           &hi) == RD_KAFKA_RESP_ERR_NO_ERROR && hi >= 0)
            part = a->elems[i].offset >= 0 ? hi - a->elems[i].offset : -1;
        if (part > 0) lag += part;
        if (c->st.npartitions < STATUS_MAX_PARTITIONS)
            c->st.partitions[c->st.npartitions++] =
                (partition_lag){a->elems[i].partition, a->elems[i].offset, part};
    }
    pthread_mutex_unlock(&c->st.mu);
    rd_kafka_topic_partition_list_destroy(a);
    metrics_set_gauge(c->m.lag, (double)lag);
}

/* ------------------------------------------------------------------ the batch */

/* log_only: what the record is and what would become of it; nothing is written. */
static void log_only_record(consumer *c, const entry *e) {
    const rd_kafka_message_t *m = e->msg;
    const record_purchase *p = e->res.purchase;
    char key[128] = "";
    if (m->key) snprintf(key, sizeof key, "%.*s", (int)(m->key_len < 127 ? m->key_len : 127),
                         (const char *)m->key);
    const char *outcome = e->res.status == RECORD_OK ? "would_persist"
                          : e->res.status == RECORD_SKIP ? record_reason_name(e->res.reason)
                                                         : "error";
    LOG(LOG_INFO, "[INFO] log_only: record", LOG_STR("consumer", c->name),
        LOG_STR("topic", c->cc->topic), LOG_INT("partition", m->partition),
        LOG_INT("offset", m->offset), LOG_STR("key", key), LOG_STR("outcome", outcome),
        LOG_STR("purchase_id", p ? p->purchase_id : NULL),
        LOG_STR("user_id", p ? p->user_id : NULL),
        LOG_STR("retailer_id", p ? p->retailer_id : NULL),
        LOG_INT("items_with_fido", p ? (long long)p->nitems : 0),
        LOG_INT("total_cents", p ? p->total_cents : 0));
}

/* 0 when every record of the batch is settled; -1 when the worker stops first. */
static int process_batch(consumer *c, entry *batch, size_t n) {
    metrics_observe(c->m.batch_size, (double)n);
    for (size_t i = 0; i < n; i++)
        if (decode(c, &batch[i]) != 0) return -1;
    if (c->p->cfg->log_only) {
        for (size_t i = 0; i < n; i++) log_only_record(c, &batch[i]);
        /* Not committed unless configured: turning log_only off later processes them. */
        if (c->p->cfg->log_only_commit_offsets) store_offsets(c, batch, n);
        return 0;
    }
    apply_rollout(c, batch, n);
    apply_duplicates(c, batch, n);
    metadata md = {0};
    int rc = enrich_batch(c, batch, n, &md);
    if (rc == 0) rc = persist(c, batch, n, &md);
    if (rc == 0) rc = dead_letter(c, batch, n);
    if (rc == 0) {
        mark_done(c, batch, n);
        log_success(c, batch, n, &md);
        store_offsets(c, batch, n);
    }
    metadata_free(&md);
    return rc;
}

static void release_batch(entry *batch, size_t n) {
    for (size_t i = 0; i < n; i++) {
        record_purchase_free(batch[i].res.purchase);
        rd_kafka_message_destroy(batch[i].msg);
    }
}

/* Kafka connection up: a new handle subscribed to the topic (it resumes from the group's
 * committed offsets). */
static int connect_kafka(consumer *c) {
    char err[512];
    if (!c->rk && !(c->rk = new_kafka(c, err, sizeof err))) goto fail;
    if (subscribe(c, err, sizeof err) != 0) goto fail;
    LOG(LOG_INFO, "Consumer started", LOG_STR("consumer", c->name),
        LOG_STR("topic", c->cc->topic), LOG_STR("group", c->cc->group));
    set_state(c, CONSUMER_STATE_RUNNING);
    return 0;
fail:
    LOG(LOG_ERROR, "[ERROR] Consumer cannot start", LOG_STR("consumer", c->name),
        LOG_STR("error", err));
    return -1;
}

/* Kafka connection down: leave the group (librdkafka commits what was stored) and close. */
static void disconnect_kafka(consumer *c) {
    if (!c->rk) return;
    idle_for(c, 30000);   /* bounded by leave_group's polls and librdkafka's close */
    leave_group(c);
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    idle_for(c, 0);
    pthread_mutex_lock(&c->st.mu);
    c->st.npartitions = 0;
    pthread_mutex_unlock(&c->st.mu);
    metrics_set_gauge(c->m.lag, 0);
}

/* After a fatal error: no LeaveGroup (the broker no longer knows this member), just close; the
 * next handle joins under the same group.instance.id and fences the stale one. Stored but
 * uncommitted offsets are lost: those records are read again (rewrites, not losses). */
static void drop_fatal_kafka(consumer *c) {
    char reason[512];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(c->rk, reason, sizeof reason);
    LOG(LOG_ERROR, "[ERROR] Kafka consumer failed fatally; reconnecting", LOG_STR("consumer", c->name),
        LOG_STR("error", e ? reason : "unknown"));
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    c->fatal = false;
}

/* The killswitch flag, read between batches: ON closes the Kafka connection, OFF opens it. */
static bool killswitch_on(consumer *c) {
    const struct flags_set *set = flags_read(&c->p->flags, &c->flags_reader);
    const char *flag = c->kind == CONSUMER_RECEIPT ? c->p->cfg->flags.receipt_killswitch_flag
                                                   : c->p->cfg->flags.factoid_killswitch_flag;
    bool on = flags_is_on(set, flag);
    atomic_store(&c->st.killswitch, on);
    metrics_set_gauge(c->m.killswitch, on ? 1 : 0);
    return on;
}

static void *consumer_main(void *arg) {
    consumer *c = arg;
    /* No consumer runs before the flags have been read once (contract §4). */
    set_state(c, CONSUMER_STATE_WAITING_FLAGS);
    while (!atomic_load(&c->p->flags.generation)) {
        idle_for(c, 100);
        if (pipeline_sleep(c->p, 100)) goto out;
    }
    entry *batch = calloc((size_t)c->cc->batch_size, sizeof *batch);
    bool subscribed = false;
    while (batch && !pipeline_is_stopping(c->p)) {
        idle_for(c, 5000);
        if (killswitch_on(c)) {
            if (subscribed) {
                disconnect_kafka(c);
                subscribed = false;
                LOG(LOG_INFO, "Consumer stopped by its killswitch", LOG_STR("consumer", c->name));
            }
            set_state(c, CONSUMER_STATE_KILLSWITCHED);
            pipeline_sleep(c->p, 250);
            continue;
        }
        if (c->fatal) {
            drop_fatal_kafka(c);
            subscribed = false;
        }
        if (!subscribed) {
            if (connect_kafka(c) != 0) {
                disconnect_kafka(c);
                pipeline_sleep(c->p, 5000);
                continue;
            }
            subscribed = true;
        }
        size_t n = collect(c, batch);
        kafka_probe(c, n);
        if (n && process_batch(c, batch, n) != 0)
            LOG(LOG_WARN, "Batch abandoned at shutdown; it will be read again",
                LOG_STR("consumer", c->name), LOG_UINT("records", n));
        else if (n)
            set_state(c, CONSUMER_STATE_RUNNING);
        release_batch(batch, n);
        memset(batch, 0, n * sizeof *batch);
        update_lag(c);
    }
    free(batch);
    disconnect_kafka(c);
    LOG(LOG_INFO, "Consumer stopped", LOG_STR("consumer", c->name));
out:
    set_state(c, CONSUMER_STATE_STOPPED);
    atomic_store(&c->st.watch.running, false);
    atomic_store(&c->finished, true);
    return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

static int open_registry(consumer *c, char *err, size_t errlen) {
    const struct cgw_config *cfg = c->p->cfg;
    struct registry_options ro;
    pipeline_registry_options(cfg, &ro);
    char e[256];
    c->registry = registry_new(&ro, e, sizeof e);
    if (!c->registry) {
        snprintf(err, errlen, "schema_registry: %s", e);
        return -1;
    }
    if (!strcmp(registry_mode(c->registry), "open"))
        LOG(LOG_WARN, "No schema registry and no allowed_schema_ids: every schema id is accepted",
            LOG_STR("consumer", c->name));
    return 0;
}

static int open_dlq(consumer *c, char *err, size_t errlen) {
    kafka_dlq_options o;
    kafka_dlq_options_init(&o);
    o.cfg = c->p->cfg;
    o.auth = c->p->kafka;
    o.client_suffix = c->kind == CONSUMER_RECEIPT ? "receipt-dlq" : "factoid-dlq";
    c->dlq = kafka_dlq_new(&o, err, errlen);
    return c->dlq ? 0 : -1;
}

consumer *consumer_new(pipeline *p, consumer_kind kind, char *err, size_t errlen) {
    consumer *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); return NULL; }
    c->p = p;
    c->kind = kind;
    c->name = kind == CONSUMER_RECEIPT ? "receipt" : "factoid";
    c->cc = kind == CONSUMER_RECEIPT ? &p->cfg->consumers.receipt : &p->cfg->consumers.factoid;
    register_metrics(c);
    status_init(&c->st, c->name, c->cc->topic, c->cc->group);
    static const server watched[] = {SERVER_KAFKA, SERVER_NEO4J, SERVER_VALKEY,
                                     SERVER_ENRICHMENT, SERVER_REGISTRY, SERVER_NONE};
    watch_init(&c->st.watch, c->name, p->cfg->stall_after_ms, p->metrics, watched);
    atomic_store(&c->st.watch.running, false);   /* until the thread starts */
    atomic_store(&c->finished, true);
    c->st.metrics = &c->m;
    const struct cgw_config *cfg = p->cfg;
    struct idem_options io;
    pipeline_idem_options(cfg, kind == CONSUMER_RECEIPT ? "cgw-receipt" : "cgw-factoid", &io);
    c->idem = idem_new(&io, err, errlen);
    if (c->idem && kind == CONSUMER_FACTOID && open_registry(c, err, errlen) != 0) {
        consumer_free(c);
        return NULL;
    }
    if (!c->idem || !(c->rk = new_kafka(c, err, errlen)) ||
        (c->cc->dlq_topic && open_dlq(c, err, errlen) != 0)) {
        consumer_free(c);
        return NULL;
    }
    return c;
}

int consumer_start(consumer *c, char *err, size_t errlen) {
    watch_idle(&c->st.watch, 5000);
    atomic_store(&c->st.watch.running, true);
    atomic_store(&c->finished, false);
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        atomic_store(&c->st.watch.running, false);
        atomic_store(&c->finished, true);
        snprintf(err, errlen, "cannot start the %s consumer thread", c->name);
        return -1;
    }
    c->started = true;
    return 0;
}

void consumer_join(consumer *c) {
    if (c->started) pthread_join(c->thread, NULL);
    c->started = false;
}

const consumer_status *consumer_get_status(const consumer *c) { return &c->st; }

consumer_status *consumer_status_of(consumer *c) { return &c->st; }

bool consumer_finished(consumer *c) { return atomic_load(&c->finished); }

void consumer_free(consumer *c) {
    if (!c) return;
    consumer_join(c);
    if (c->rk) rd_kafka_destroy(c->rk);
    if (c->idem) idem_free(c->idem);
    if (c->registry) registry_free(c->registry);
    kafka_dlq_free(c->dlq);
    flags_release_reader(&c->flags_reader);
    status_destroy(&c->st);
    free(c);
}
