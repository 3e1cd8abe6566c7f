/* src/kafka/dlq.c: the dead-letter producer and reader (see dlq.h).
 *
 * Producer: librdkafka with enable.idempotence (which implies acks=all and in-order,
 * duplicate-free retries within one producer session) and delivery.timeout.ms as the
 * delivery deadline. kafka_dlq_send() produces a whole batch of letters, then flushes and
 * reads each letter's delivery report: it returns 0 only when every report says delivered.
 * After a failure the producer is purged and dropped, and a fresh one is made on the next
 * call: a fatal idempotence error cannot then wedge it.
 *
 * Reader: a plain consumer with no group (assign, not subscribe, nothing committed) that
 * reads each partition from its low to its high watermark, as they were at the start.
 */
#include "kafka/dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka/kafka.h"

/* Letters carry the source value unchanged: room for the largest value the worker reads
 * (16 MiB, src/record) plus key and headers. */
#define DLQ_MESSAGE_MAX "17825792"
#define DLQ_DRAIN_MS 5000

struct kafka_dlq {
    struct kafka_dlq_options o;
    rd_kafka_t *rk;                /* NULL until needed, and after a failed send */
    struct kafka_auth *own_auth;   /* made here when o.auth was NULL */
    struct kafka_link link;        /* rk's opaque (MSK IAM token callback) */
};

/* What one produced message became: 0 pending, 1 delivered, 2 failed (err set). */
typedef struct dlq_report {
    int state;
    rd_kafka_resp_err_t err;
} dlq_report;

void kafka_dlq_options_init(struct kafka_dlq_options *o) {
    memset(o, 0, sizeof *o);
    o->client_suffix = "dlq";
    o->delivery_timeout_ms = 10000;
}

static void dlq_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    dlq_report *r = m->_private;
    (void)rk;
    (void)opaque;
    if (!r) return;
    r->err = m->err;
    r->state = m->err ? 2 : 1;
}

static rd_kafka_t *dlq_producer(struct kafka_dlq *d, char *err, size_t errlen) {
    const struct cgw_config *cfg = d->o.cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char client_id[160], timeout[16], e[512];
    snprintf(client_id, sizeof client_id, "%s-%s",
             cfg->kafka.client_id ? cfg->kafka.client_id : "cgw", d->o.client_suffix);
    snprintf(timeout, sizeof timeout, "%d", d->o.delivery_timeout_ms);
    if (kafka_conf_set(conf, "bootstrap.servers", kafka_auth_brokers(d->link.auth), err, errlen) ||
        kafka_conf_set(conf, "client.id", client_id, err, errlen) ||
        kafka_conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        kafka_conf_set(conf, "acks", "all", err, errlen) ||
        kafka_conf_set(conf, "delivery.timeout.ms", timeout, err, errlen) ||
        kafka_conf_set(conf, "linger.ms", "5", err, errlen) ||
        kafka_conf_set(conf, "message.max.bytes", DLQ_MESSAGE_MAX, err, errlen) ||
        kafka_conf_apply(conf, cfg, &d->link, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_delivered);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!rk) snprintf(err, errlen, "kafka: dead-letter producer: %s", e);
    else if (kafka_handle_started(rk, &d->link, err, errlen) != 0) {
        rd_kafka_destroy(rk);
        rk = NULL;
    }
    return rk;
}

struct kafka_dlq *kafka_dlq_new(const struct kafka_dlq_options *o, char *err, size_t errlen) {
    struct kafka_dlq *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->o = *o;
    if (!o->auth && kafka_auth_new(o->cfg, &d->own_auth, err, errlen) != 0) {
        free(d);
        return NULL;
    }
    d->link = (struct kafka_link){ o->auth ? o->auth : d->own_auth, d };
    if (!(d->rk = dlq_producer(d, err, errlen))) {   /* a bad setting shows at start */
        kafka_auth_free(d->own_auth);
        free(d);
        return NULL;
    }
    return d;
}

/* Drops the producer after a failure, serving the delivery reports still due first (they
 * point into the caller's report array). */
static void dlq_drop(struct kafka_dlq *d) {
    if (!d->rk) return;
    rd_kafka_purge(d->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    for (int i = 0; i < DLQ_DRAIN_MS / 100 && rd_kafka_outq_len(d->rk) > 0; i++)
        rd_kafka_poll(d->rk, 100);
    rd_kafka_destroy(d->rk);
    d->rk = NULL;
}

void kafka_dlq_free(struct kafka_dlq *d) {
    if (!d) return;
    if (d->rk) {
        rd_kafka_flush(d->rk, DLQ_DRAIN_MS);
        dlq_drop(d);
    }
    kafka_auth_free(d->own_auth);
    free(d);
}

/* One message to produce: borrowed key and value, owned headers. */
typedef struct dlq_out {
    const char *topic;
    const void *key, *value;
    size_t key_len, value_len;
    rd_kafka_headers_t *headers;
} dlq_out;

/* Produces out[0..n) and waits; takes the headers. 0 or -1 with err. */
static int dlq_produce_wait(struct kafka_dlq *d, dlq_out *out, size_t n, char *err, size_t errlen) {
    dlq_report *rep = calloc(n ? n : 1, sizeof *rep);
    size_t i = 0;
    int rc = -1;
    if (!rep) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    if (!d->rk && !(d->rk = dlq_producer(d, err, errlen))) goto done;
    for (; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            d->rk, RD_KAFKA_V_TOPIC(out[i].topic),
            RD_KAFKA_V_KEY(out[i].key, out[i].key_len),
            RD_KAFKA_V_VALUE((void *)out[i].value, out[i].value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(out[i].headers),
            RD_KAFKA_V_OPAQUE(&rep[i]), RD_KAFKA_V_END);
        if (e) {
            snprintf(err, errlen, "kafka: producing to %s: %s", out[i].topic,
                     rd_kafka_err2str(e));
            break;
        }
        out[i].headers = NULL;             /* librdkafka owns them now */
    }
    if (i == n) rd_kafka_flush(d->rk, d->o.delivery_timeout_ms + DLQ_DRAIN_MS);
    rc = i == n ? 0 : -1;
    for (size_t k = 0; k < i && rc == 0; k++)
        if (rep[k].state != 1) {
            snprintf(err, errlen, "kafka: %s not acknowledged: %s", out[k].topic,
                     rep[k].state ? rd_kafka_err2str(rep[k].err) : "delivery deadline passed");
            rc = -1;
        }
    if (rc != 0) dlq_drop(d);
done:
    for (size_t k = 0; k < n; k++)
        if (out[k].headers) rd_kafka_headers_destroy(out[k].headers);
    free(rep);
    return rc;
}

/* The source's own headers, then the dead-letter ones. */
static rd_kafka_headers_t *dlq_letter_headers(const kafka_dlq_letter *l) {
    const rd_kafka_message_t *m = l->msg;
    rd_kafka_headers_t *src = NULL;
    rd_kafka_headers_t *h;
    char num[3][32];
    rd_kafka_timestamp_type_t tstype;
    if (rd_kafka_message_headers(m, &src) != RD_KAFKA_RESP_ERR_NO_ERROR) src = NULL;
    h = src ? rd_kafka_headers_copy(src) : rd_kafka_headers_new(8);
    snprintf(num[0], sizeof num[0], "%" PRId32, m->partition);
    snprintf(num[1], sizeof num[1], "%" PRId64, m->offset);
    snprintf(num[2], sizeof num[2], "%" PRId64, rd_kafka_message_timestamp(m, &tstype));
    rd_kafka_header_add(h, KAFKA_DLQ_H_REASON, -1, l->reason, -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_ERROR, -1, l->error ? l->error : "", -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_TOPIC, -1, rd_kafka_topic_name(m->rkt), -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_PARTITION, -1, num[0], -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_OFFSET, -1, num[1], -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_TIMESTAMP, -1, num[2], -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_CONSUMER, -1, l->consumer ? l->consumer : "", -1);
    rd_kafka_header_add(h, KAFKA_DLQ_H_VERSION, -1, l->version ? l->version : "", -1);
    return h;
}

int kafka_dlq_send(struct kafka_dlq *d, const char *topic, const kafka_dlq_letter *letters,
                   size_t n,
                   char *err, size_t errlen) {
    dlq_out *out = calloc(n ? n : 1, sizeof *out);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = letters[i].msg;
        out[i] = (dlq_out){topic, m->key, m->payload, m->key_len, m->len,
                           dlq_letter_headers(&letters[i])};
    }
    int rc = dlq_produce_wait(d, out, n, err, errlen);
    free(out);
    return rc;
}

const char *kafka_dlq_header(const rd_kafka_message_t *m, const char *name, char *buf,
                             size_t len) {
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t vlen = 0;
    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &vlen) != RD_KAFKA_RESP_ERR_NO_ERROR || !v)
        return buf;
    snprintf(buf, len, "%.*s", (int)(vlen < len ? vlen : len - 1), (const char *)v);
    return buf;
}

/* A letter's headers without the dead-letter ones: what the source record carried. */
static rd_kafka_headers_t *dlq_original_headers(const rd_kafka_message_t *m) {
    rd_kafka_headers_t *src = NULL, *h = rd_kafka_headers_new(4);
    const char *name;
    const void *v;
    size_t vlen;
    if (rd_kafka_message_headers(m, &src) != RD_KAFKA_RESP_ERR_NO_ERROR) return h;
    for (size_t i = 0; !rd_kafka_header_get_all(src, i, &name, &v, &vlen); i++)
        if (strncmp(name, KAFKA_DLQ_H_PREFIX, strlen(KAFKA_DLQ_H_PREFIX)) != 0)
            rd_kafka_header_add(h, name, -1, v, (ssize_t)vlen);
    return h;
}

int kafka_dlq_replay(struct kafka_dlq *d, const rd_kafka_message_t *const *letters, size_t n,
                     char *err, size_t errlen) {
    dlq_out *out = calloc(n ? n : 1, sizeof *out);
    char (*topics)[256] = calloc(n ? n : 1, sizeof *topics);
    int rc = -1;
    if (!out || !topics) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = letters[i];
        if (!kafka_dlq_header(m, KAFKA_DLQ_H_TOPIC, topics[i], sizeof topics[i])[0]) {
            snprintf(err, errlen, "dead letter at offset %" PRId64 " has no %s header",
                     m->offset, KAFKA_DLQ_H_TOPIC);
            for (size_t k = 0; k < i; k++) rd_kafka_headers_destroy(out[k].headers);
            goto done;
        }
        out[i] = (dlq_out){topics[i], m->key, m->payload, m->key_len, m->len,
                           dlq_original_headers(m)};
    }
    rc = dlq_produce_wait(d, out, n, err, errlen);
done:
    free(out);
    free(topics);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------ */

static long long dlq_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rd_kafka_t *dlq_reader(const struct cgw_config *cfg, struct kafka_link *link, char *err,
                              size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char e[512];
    if (kafka_conf_set(conf, "bootstrap.servers", kafka_auth_brokers(link->auth), err, errlen) ||
        kafka_conf_set(conf, "group.id", "cgw-dlq-reader", err, errlen) ||
        kafka_conf_set(conf, "enable.auto.commit", "false", err, errlen) ||
        kafka_conf_set(conf, "enable.partition.eof", "true", err, errlen) ||
        kafka_conf_apply(conf, cfg, link, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!rk) snprintf(err, errlen, "kafka: dead-letter reader: %s", e);
    else if (kafka_handle_started(rk, link, err, errlen) != 0) {
        rd_kafka_destroy(rk);
        rk = NULL;
    } else rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* The partitions of topic with records, each at its low watermark; *ends their high ones. */
static rd_kafka_topic_partition_list_t *dlq_extent(rd_kafka_t *rk, const char *topic,
                                                   int timeout_ms, int64_t **ends, char *err,
                                                   size_t errlen) {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_partition_list_t *l = NULL;
    if (!e && md->topic_cnt == 1) e = md->topics[0].err;
    if (e) {
        snprintf(err, errlen, "kafka: topic %s: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    int np = md->topics[0].partition_cnt;
    l = rd_kafka_topic_partition_list_new(np ? np : 1);
    *ends = calloc((size_t)(np ? np : 1), sizeof **ends);
    for (int i = 0; i < np && *ends; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, timeout_ms);
        if (e) {
            snprintf(err, errlen, "kafka: %s [%d] offsets: %s", topic, (int)p,
                     rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(l);
            l = NULL;
            break;
        }
        if (hi <= lo) continue;
        (*ends)[l->cnt] = hi;
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = lo;
    }
out:
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return l;
}

static int dlq_index_of(const rd_kafka_topic_partition_list_t *l, int32_t p) {
    for (int i = 0; i < l->cnt; i++)
        if (l->elems[i].partition == p) return i;
    return -1;
}

int kafka_dlq_read(const struct cgw_config *cfg, const char *topic, int timeout_ms,
                   kafka_dlq_read_cb cb, void *ud, char *err, size_t errlen) {
    long long deadline = dlq_now_ms() + timeout_ms;
    int64_t *ends = NULL;
    int rc = -1, left;
    struct kafka_link link = { NULL, NULL };
    if (kafka_auth_new(cfg, &link.auth, err, errlen) != 0) return -1;
    rd_kafka_t *rk = dlq_reader(cfg, &link, err, errlen);
    if (!rk) {
        kafka_auth_free(link.auth);
        return -1;
    }
    rd_kafka_topic_partition_list_t *l = dlq_extent(rk, topic, timeout_ms, &ends, err, errlen);
    if (!l) goto out;
    left = l->cnt;
    if (left && rd_kafka_assign(rk, l)) {
        snprintf(err, errlen, "kafka: cannot assign %s", topic);
        goto out;
    }
    while (left > 0) {
        long long wait = deadline - dlq_now_ms();
        if (wait <= 0) {
            snprintf(err, errlen, "kafka: reading %s took longer than %d ms", topic, timeout_ms);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, (int)(wait < 500 ? wait : 500));
        if (!m) continue;
        int i = dlq_index_of(l, m->partition);
        int stop = 0;
        if (!m->err && i >= 0 && m->offset < ends[i]) stop = cb(ud, m);
        else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            snprintf(err, errlen, "kafka: %s", rd_kafka_message_errstr(m));
        if (i >= 0 && (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || m->offset + 1 >= ends[i]) &&
            ends[i] >= 0) {
            ends[i] = -1;                  /* this partition is done */
            left--;
        }
        rd_kafka_message_destroy(m);
        if (stop) break;
    }
    rc = 0;
out:
    if (l) rd_kafka_topic_partition_list_destroy(l);
    free(ends);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    kafka_auth_free(link.auth);
    return rc;
}
