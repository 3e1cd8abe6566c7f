/* bench/e2e/kafka_read.c: the "Kafka read limit" of the end-to-end benchmark (scripts/bench-e2e).
 *
 * What: the same topic(s) the worker drains, read raw with librdkafka: the same library build
 * the worker links (the cache's static librdkafka, through the project Makefile's flags), a
 * high-level consumer with librdkafka's DEFAULT settings except the two a read from an empty
 * group needs (group.id, auto.offset.reset=earliest, as the worker's consumers.*.auto_offset_reset
 * default), from an empty group until every partition's end offset. Every byte of every
 * record's key and value is touched (summed into a checksum that is printed, so the compiler
 * cannot drop the loop). Nothing else: no decoding, no Valkey, no HTTP, no Neo4j.
 *
 * Why: a drain time means nothing without the floor under it. The worker cannot be faster than
 * fetching the same bytes from the same broker from an empty group; the benchmark compares the
 * worker's drain of a topic with this read of the same topic in the same run (the factoid
 * backlog target: at most 3 x this).
 *
 * How: the end offsets (high watermarks) of every partition are queried first, outside the
 * timer, with a separate handle. Timed: from just before rd_kafka_new() of the consumer (the
 * worker's time, too, starts before it exists, so group join and the first fetch are counted
 * on both sides) until the last record below the end offsets has been consumed. One consumer
 * per topic, each in its own thread and its own group (as the worker runs one consumer per
 * topic); the read ends when all have finished. The consumer's close (leave group, final
 * commit) is timed apart and not included.
 *
 *   kafka_read --brokers HOST:PORT --topic T [--topic T2] --group PREFIX [--timeout-s 120]
 *              [-X key=value ...]     (extra librdkafka properties, for experiments only)
 *
 * Prints one JSON object on stdout: seconds (wall of the timed part), per topic records,
 * bytes, seconds, first_record_seconds, close_seconds, checksum; the process's CPU seconds.
 * Exit 0 when every topic was read to its end, 1 otherwise (message in "error").
 */
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "bench_clock.h"

#define MAX_TOPICS 4
#define MAX_PROPS 16

struct opts {
    const char *brokers, *group;
    const char *props[MAX_PROPS];   /* "key=value" */
    int nprops;
    double timeout_s;
};

struct reader {
    const struct opts *o;
    const char *topic;
    int index;
    int nparts;
    int64_t *end;                   /* high watermark per partition */
    int64_t *next;                  /* next offset expected per partition */
    int64_t total, records;
    uint64_t bytes, checksum;
    double t0, t_first, t_end, close_s;
    int ok;
    char error[512];
};

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen) {
    return rd_kafka_conf_set(conf, k, v, err, errlen) == RD_KAFKA_CONF_OK ? 0 : -1;
}

static rd_kafka_conf_t *make_conf(const struct opts *o, const char *group, char *err, size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int bad = set(conf, "bootstrap.servers", o->brokers, err, errlen) ||
              (group && (set(conf, "group.id", group, err, errlen) ||
                         set(conf, "auto.offset.reset", "earliest", err, errlen)));
    for (int i = 0; !bad && i < o->nprops; i++) {
        char kv[512];
        snprintf(kv, sizeof kv, "%s", o->props[i]);
        char *eq = strchr(kv, '=');
        if (!eq) { snprintf(err, errlen, "-X %.200s: not key=value", kv); bad = 1; break; }
        *eq = '\0';
        bad = set(conf, kv, eq + 1, err, errlen);
    }
    if (bad) { rd_kafka_conf_destroy(conf); return NULL; }
    return conf;
}

/* Partitions and their end offsets, outside the timer. 0 or -1 with r->error. */
static int query_ends(struct reader *r) {
    char err[512];
    rd_kafka_conf_t *conf = make_conf(r->o, NULL, err, sizeof err);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err) : NULL;
    if (!rk) { snprintf(r->error, sizeof r->error, "%s", err); return -1; }
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, r->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
    int rc = -1;
    if (e || md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1) {
        snprintf(r->error, sizeof r->error, "metadata of %s: %s", r->topic,
                 rd_kafka_err2str(e ? e : md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN));
        goto out;
    }
    r->nparts = md->topics[0].partition_cnt;
    r->end = calloc((size_t)r->nparts, sizeof *r->end);
    r->next = calloc((size_t)r->nparts, sizeof *r->next);
    if (!r->end || !r->next) { snprintf(r->error, sizeof r->error, "out of memory"); goto out; }
    for (int p = 0; p < r->nparts; p++) {
        int32_t id = md->topics[0].partitions[p].id;
        int64_t lo = 0, hi = 0;
        if (id < 0 || id >= r->nparts) { snprintf(r->error, sizeof r->error, "partition id %d", id); goto out; }
        e = rd_kafka_query_watermark_offsets(rk, r->topic, id, &lo, &hi, 10000);
        if (e) { snprintf(r->error, sizeof r->error, "watermarks: %s", rd_kafka_err2str(e)); goto out; }
        r->end[id] = hi;
        r->next[id] = lo;
        r->total += hi - lo;
    }
    rc = 0;
out:
    if (md) rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    rd_kafka_destroy(rk);
    return rc;
}

static uint64_t touch(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ULL;
    return h;
}

/* Consumes one message; 1 when it was a record below its partition's end offset. */
static int take(struct reader *r, const rd_kafka_message_t *m) {
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) return 0;
    if (m->err) {
        snprintf(r->error, sizeof r->error, "consume: %s", rd_kafka_message_errstr(m));
        return -1;
    }
    if (m->partition < 0 || m->partition >= r->nparts || m->offset >= r->end[m->partition])
        return 0;
    r->checksum = touch(m->key, m->key_len, r->checksum);
    r->checksum = touch(m->payload, m->len, r->checksum);
    r->bytes += m->key_len + m->len;
    r->next[m->partition] = m->offset + 1;
    return 1;
}

static void *read_topic(void *arg) {
    struct reader *r = arg;
    char group[256], err[512];
    snprintf(group, sizeof group, "%s-%d", r->o->group, r->index);
    r->t0 = now_s();
    rd_kafka_conf_t *conf = make_conf(r->o, group, err, sizeof err);
    rd_kafka_t *rk = conf ? rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err) : NULL;
    if (!rk) { snprintf(r->error, sizeof r->error, "%s", err); return NULL; }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, r->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (e) { snprintf(r->error, sizeof r->error, "subscribe: %s", rd_kafka_err2str(e)); goto out; }
    while (r->records < r->total) {
        if (now_s() - r->t0 > r->o->timeout_s) {
            snprintf(r->error, sizeof r->error, "timeout: %lld of %lld records",
                     (long long)r->records, (long long)r->total);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) continue;
        int got = take(r, m);
        rd_kafka_message_destroy(m);
        if (got < 0) goto out;
        if (got && r->records++ == 0) r->t_first = now_s();
    }
    r->t_end = now_s();
    r->ok = 1;
out:
    if (!r->ok) r->t_end = now_s();
    double c0 = now_s();
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    r->close_s = now_s() - c0;
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: kafka_read --brokers H:P --topic T [--topic T2] --group PREFIX "
                    "[--timeout-s S] [-X key=value]\n");
    exit(2);
}

static json_t *reader_json(const struct reader *r) {
    json_t *o = json_object();
    json_object_set_new(o, "topic", json_string(r->topic));
    json_object_set_new(o, "partitions", json_integer(r->nparts));
    json_object_set_new(o, "records", json_integer(r->records));
    json_object_set_new(o, "expected", json_integer(r->total));
    json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
    json_object_set_new(o, "seconds", json_real(r->t_end - r->t0));
    json_object_set_new(o, "first_record_seconds", json_real(r->t_first ? r->t_first - r->t0 : -1));
    json_object_set_new(o, "close_seconds", json_real(r->close_s));
    char sum[24];
    snprintf(sum, sizeof sum, "%016llx", (unsigned long long)r->checksum);
    json_object_set_new(o, "checksum", json_string(sum));
    if (!r->ok) json_object_set_new(o, "error", json_string(r->error));
    return o;
}

int main(int argc, char **argv) {
    struct opts o = {.timeout_s = 120};
    const char *topics[MAX_TOPICS];
    int ntopics = 0;
    static const struct option lo[] = {
        {"brokers", required_argument, 0, 'b'}, {"topic", required_argument, 0, 't'},
        {"group", required_argument, 0, 'g'}, {"timeout-s", required_argument, 0, 'T'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "X:", lo, NULL)) != -1) {
        switch (c) {
        case 'b': o.brokers = optarg; break;
        case 't': if (ntopics == MAX_TOPICS) usage(); topics[ntopics++] = optarg; break;
        case 'g': o.group = optarg; break;
        case 'T': o.timeout_s = atof(optarg); break;
        case 'X': if (o.nprops == MAX_PROPS) usage(); o.props[o.nprops++] = optarg; break;
        default: usage();
        }
    }
    if (!o.brokers || !o.group || !ntopics) usage();

    struct reader rs[MAX_TOPICS];
    memset(rs, 0, sizeof rs);
    int failed = 0;
    for (int i = 0; i < ntopics; i++) {
        rs[i] = (struct reader){.o = &o, .topic = topics[i], .index = i};
        if (query_ends(&rs[i]) != 0) failed = 1;
    }
    double cpu0 = cpu_s(), t0 = now_s(), t_end = t0;
    pthread_t th[MAX_TOPICS];
    for (int i = 0; i < ntopics && !failed; i++)
        if (pthread_create(&th[i], NULL, read_topic, &rs[i]) != 0) {
            fprintf(stderr, "kafka_read: pthread_create failed\n");
            return 2;
        }
    for (int i = 0; i < ntopics && !failed; i++) pthread_join(th[i], NULL);
    json_t *out = json_object(), *arr = json_array();
    for (int i = 0; i < ntopics; i++) {
        if (!rs[i].ok) failed = 1;
        if (rs[i].t_end > t_end) t_end = rs[i].t_end;
        json_array_append_new(arr, reader_json(&rs[i]));
    }
    json_object_set_new(out, "topics", arr);
    json_object_set_new(out, "seconds", json_real(t_end - t0));
    json_object_set_new(out, "cpu_seconds", json_real(cpu_s() - cpu0));
    json_object_set_new(out, "librdkafka", json_string(rd_kafka_version_str()));
    json_object_set_new(out, "ok", json_boolean(!failed));
    char *txt = json_dumps(out, JSON_COMPACT);
    puts(txt);
    free(txt);
    json_decref(out);
    for (int i = 0; i < ntopics; i++) { free(rs[i].end); free(rs[i].next); }
    return failed ? 1 : 0;
}
