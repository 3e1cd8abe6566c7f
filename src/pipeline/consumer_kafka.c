/* src/pipeline/consumer_kafka.c: the Kafka side of one consumer: its librdkafka handle
 * (created, subscribed, left), the records it polls for the batch engine, the offsets the
 * engine stores, the rebalance callback, lag, and librdkafka's error events.
 *
 * Offsets: enable.auto.offset.store is off, so librdkafka commits (every second, on
 * rebalance and on close) only what the engine stored: each partition's watermark (engine.h).
 *
 * Rebalance (cooperative-sticky; static membership with kafka.group_instance_id): the
 * callback runs on the consumer thread inside a poll. Partitions taken away are first taken
 * out of the engine: their records not yet written are abandoned uncommitted, for the new
 * owner to read again; then they are unassigned, which commits what the engine stored for
 * them. So a revoke never commits past a record that was not settled, and nothing the
 * engine settles later is stored for a partition it no longer owns.
 *
 * Kafka outages come from librdkafka's ALL_BROKERS_DOWN event; their end from the next
 * record or metadata answer (consumer_kafka_probe). Every poll is announced to the watch.
 */
#include "pipeline/consumer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* ------------------------------------------------------------------ events */

/* librdkafka's error events, served on the consumer thread by rd_kafka_consumer_poll. */
static void kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;                  /* the handle's kafka_link; c is its user pointer */
    struct consumer *c = kafka_user(rk);
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

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    (void)rk;
    enum log_level l = level <= 3 ? LOG_ERROR : level <= 4 ? LOG_WARN : level <= 6 ? LOG_INFO
                                                                                  : LOG_DEBUG;
    LOG(l, "librdkafka", LOG_STR("facility", fac), LOG_STR("detail", buf));
}

bool consumer_message_is_record(const rd_kafka_message_t *m) {
    return m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* An error event, never a record: it must not reach the engine. Authentication (e.g. MSK
 * IAM refused the token): nothing is consumed, nothing is lost. Fatal (e.g. a static member
 * fenced after a broker restart loaded an older member id): this handle never consumes
 * again; the loop makes a new one. */
void consumer_message_event(const char *consumer, const rd_kafka_message_t *m, bool *fatal) {
    if (m->err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        LOG(LOG_ERROR, "[ERROR] Kafka authentication failed", LOG_STR("consumer", consumer),
            LOG_STR("error", rd_kafka_message_errstr(m)));
    else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        LOG(LOG_WARN, "Kafka consumer error", LOG_STR("consumer", consumer),
            LOG_STR("error", rd_kafka_message_errstr(m)));
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) *fatal = true;
}

/* ------------------------------------------------------------------ rebalance */

static void revoke(struct consumer *c, const rd_kafka_topic_partition_list_t *parts) {
    int32_t *ids = malloc((parts->cnt ? (size_t)parts->cnt : 1) * sizeof *ids);
    if (!ids) abort();   /* cannot keep at least once without knowing what to drop */
    for (int i = 0; i < parts->cnt; i++) ids[i] = parts->elems[i].partition;
    if (c->engine) engine_revoke(c->engine, ids, (size_t)parts->cnt);
    free(ids);
    LOG(LOG_INFO, rd_kafka_assignment_lost(c->rk) ? "Partitions lost" : "Partitions revoked",
        LOG_STR("consumer", c->name), LOG_INT("partitions", parts->cnt));
}

static void rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)opaque;
    struct consumer *c = kafka_user(rk);
    bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) revoke(c, parts);
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t re = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        cooperative ? (void)(e = rd_kafka_incremental_assign(rk, parts))
                    : (void)(re = rd_kafka_assign(rk, parts));
    else
        cooperative ? (void)(e = rd_kafka_incremental_unassign(rk, parts))
                    : (void)(re = rd_kafka_assign(rk, NULL));
    if (e || re)
        LOG(LOG_WARN, "Kafka rebalance: cannot apply the assignment", LOG_STR("consumer", c->name),
            LOG_STR("error", e ? rd_kafka_error_string(e) : rd_kafka_err2str(re)));
    if (e) rd_kafka_error_destroy(e);
}

/* ------------------------------------------------------------------ the handle */

static int set_properties(struct consumer *c, rd_kafka_conf_t *conf, char *err, size_t errlen) {
    const struct cgw_config *cfg = c->p->cfg;
    char client_id[128];
    snprintf(client_id, sizeof client_id, "%s-%s",
             cfg->kafka.client_id ? cfg->kafka.client_id : "cgw", c->name);
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
              /* librdkafka pre-fetches up to 64 MiB and 100 000 records per partition by
               * default; a batch needs far less, and two consumers must fit the worker in
               * 64 MB (with the small factoid records, the record count was the bound that
               * held: 37.8 MB peak, 26 MB with 5 000). 2 MiB a consumer is a second of
               * receipts at the write rate, refilled within fetch.queue.backoff.ms below
               * (4 MiB: 36.3 MB peak on 50 000 receipts, 2 MiB: 34.1 MB). Both consumers at
               * once peaked at 45 MB with 5 000 records a partition and 2 MiB fetches: a
               * fetch answer stays allocated until its last record is read, and each queued
               * record costs ~250 bytes of librdkafka bookkeeping (heaptrack: 6.7 MB of fetch
               * buffers and 5.5 MB of records at the peak). 1 000 records a partition (6 000
               * a consumer, several batches) and 1 MiB fetches: 34.9 MB. kafka.properties
               * may raise them. */
              kafka_conf_set(conf, "queued.max.messages.kbytes", "2048", err, errlen) ||
              kafka_conf_set(conf, "queued.min.messages", "1000", err, errlen) ||
              kafka_conf_set(conf, "max.partition.fetch.bytes", "262144", err, errlen) ||
              kafka_conf_set(conf, "fetch.max.bytes", "1048576", err, errlen) ||
              /* With queues that small, a partition is over its bound after one fetch; then
               * librdkafka postpones its next fetch by fetch.queue.backoff.ms (1 000 ms by
               * default) even once the worker has emptied the queue: a backlog of small
               * factoids drained in bursts, 12 000 records/s (issue 14: 9.1 s for 100 000,
               * 4.0 s with 10 ms). But each check wakes the fetch thread, and while Neo4j
               * holds the worker back the queue is full at nearly every one: at 10 ms the
               * thread slept ~2 500 times and took 0.18-0.24 s of CPU per 100 000 receipts
               * (~40 us a wake-up), at 25 ms 1 100 times and 0.12-0.14 s, at 100 ms 540 and
               * 0.08 s, but then the factoid backlog took 5.6 s instead of 2.1-2.7 s. 25 ms
               * drained it in 2.4 s, within that noise (bench/e2e/README.md, 2026-12-02). */
              kafka_conf_set(conf, "fetch.queue.backoff.ms", "25", err, errlen) ||
              kafka_conf_apply(conf, cfg, &c->link, err, errlen);
    char instance[300];
    snprintf(instance, sizeof instance, "%s-%s", c->p->group_instance_base, c->name);
    if (!bad && c->p->group_instance_base[0])
        bad = kafka_conf_set(conf, "group.instance.id", instance, err, errlen);
    return bad ? -1 : 0;
}

rd_kafka_t *consumer_kafka_new(struct consumer *c, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    c->link = (struct kafka_link){ c->p->kafka, c };
    if (set_properties(c, conf, err, errlen) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    rd_kafka_conf_set_error_cb(conf, kafka_error);   /* the opaque is c->link (kafka_conf_apply) */
    rd_kafka_conf_set_rebalance_cb(conf, rebalance);
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

int consumer_kafka_subscribe(struct consumer *c, char *err, size_t errlen) {
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
void consumer_kafka_leave(struct consumer *c) {
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

/* ------------------------------------------------------------------ records */

int32_t consumer_header_schema_id(const rd_kafka_message_t *m) {
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

int consumer_kafka_poll(struct consumer *c, long timeout_ms, struct engine_record *out) {
    watch_idle(&c->st.watch, timeout_ms + 1000L);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, (int)timeout_ms);
    if (!m) return 0;
    if (!consumer_message_is_record(m)) {
        consumer_message_event(c->name, m, &c->fatal);
        rd_kafka_message_destroy(m);
        return 0;
    }
    *out = (struct engine_record){
        .partition = m->partition, .offset = m->offset, .key = m->key, .key_len = m->key_len,
        .value = m->payload, .len = m->len, .handle = m,
        .header_schema_id = c->kind == CONSUMER_FACTOID ? consumer_header_schema_id(m) : -1};
    return 1;
}

void consumer_kafka_release(void *ctx, void *handle) {
    (void)ctx;
    rd_kafka_message_destroy(handle);
}

void consumer_kafka_store(void *ctx, const struct engine_offset *o, size_t n) {
    struct consumer *c = ctx;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(l, c->cc->topic, o[i].partition)->offset = o[i].offset;
    /* Partitions revoked meanwhile refuse the store: their new owner reads them again. */
    rd_kafka_offsets_store(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
}

/* ------------------------------------------------------------------ outage, lag */

void consumer_kafka_probe(struct consumer *c, bool got) {
    if (!watch_outage(&c->st.watch, SERVER_KAFKA)) return;
    if (got) {
        watch_report(&c->st.watch, SERVER_KAFKA, false, NULL);
        return;
    }
    long long now = base_monotonic_ms();
    if (now - c->kafka_probe_ms < 1000) return;
    c->kafka_probe_ms = now;
    const struct rd_kafka_metadata *md = NULL;
    watch_call(&c->st.watch, SERVER_KAFKA, 3000);
    rd_kafka_resp_err_t e = rd_kafka_metadata(c->rk, 0, NULL, &md, 2000);
    if (md) rd_kafka_metadata_destroy(md);
    watch_done(&c->st.watch, SERVER_KAFKA, e != RD_KAFKA_RESP_ERR_NO_ERROR, rd_kafka_err2str(e));
}

void consumer_kafka_lag(struct consumer *c) {
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
