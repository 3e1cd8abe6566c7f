/* Kafka of the local stack, used through librdkafka as the worker will: both topics exist
 * with 6 partitions, records produced to them are consumed in a consumer group with the
 * cooperative-sticky assignor, and offsets committed by one consumer are where the next
 * consumer of the same group resumes. Records carry a per-run marker so that whatever else
 * is on the shared topics does not disturb the counts. */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include <librdkafka/rdkafka.h>
#include <time.h>
#include <unistd.h>

static const char *topics[] = {"ProcessedReceiptEvent", "factoid-stream"};

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[256];
    CHECKF(rd_kafka_conf_set(conf, k, v, err, sizeof err) == RD_KAFKA_CONF_OK, "%s: %s", k, err);
}

static rd_kafka_t *new_producer(void) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", STACK_KAFKA_BROKERS);
    set(conf, "enable.idempotence", "true");
    set(conf, "compression.codec", "zstd");
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    CHECKF(p != NULL, "producer: %s", err);
    return p;
}

static rd_kafka_t *new_consumer(const char *group) {
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", STACK_KAFKA_BROKERS);
    set(conf, "group.id", group);
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    set(conf, "partition.assignment.strategy", "cooperative-sticky");
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    CHECKF(c != NULL, "consumer: %s", err);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(2);
    for (int i = 0; i < 2; i++)
        rd_kafka_topic_partition_list_add(subs, topics[i], RD_KAFKA_PARTITION_UA);
    CHECK(rd_kafka_subscribe(c, subs) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);
    return c;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void close_consumer(rd_kafka_t *c) {
    /* librdkafka 2.8's rd_kafka_consumer_close() with the cooperative-sticky assignor does not
     * send LeaveGroup (seen with debug=cgrp), so the next member waits out the session timeout.
     * Unsubscribing first and polling until the assignment is gone does send it; the worker
     * shuts down the same way. */
    rd_kafka_unsubscribe(c);
    for (int i = 0; i < 100; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m) rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        CHECK(rd_kafka_assignment(c, &a) == RD_KAFKA_RESP_ERR_NO_ERROR);
        int n = a->cnt;
        rd_kafka_topic_partition_list_destroy(a);
        if (n == 0) break;
    }
    CHECK(rd_kafka_consumer_close(c) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c);
}

static void produce(rd_kafka_t *p, const char *marker, int from, int to) {
    for (int i = from; i < to; i++) {
        char key[64], val[96];
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(val, sizeof val, "%s:%d", marker, i);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topics[i % 2]), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        CHECKF(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    }
    CHECK(rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Consume until `want` records with our marker arrived; record which indexes were seen. */
static void consume(rd_kafka_t *c, const char *marker, int want, unsigned char *seen, int nseen) {
    int got = 0;
    size_t ml = strlen(marker);
    double deadline = now_s() + 30;
    while (got < want) {
        CHECKF(now_s() < deadline, "got %d of %d records in 30 s", got, want);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m) continue;
        if (!m->err && m->len > ml && memcmp(m->payload, marker, ml) == 0 &&
            ((char *)m->payload)[ml] == ':') {
            char buf[32] = {0};
            size_t n = m->len - ml - 1 < sizeof buf - 1 ? m->len - ml - 1 : sizeof buf - 1;
            memcpy(buf, (char *)m->payload + ml + 1, n);
            int i = atoi(buf);
            CHECK(i >= 0 && i < nseen);
            CHECKF(!seen[i], "record %d delivered twice", i);
            seen[i] = 1;
            got++;
        }
        rd_kafka_message_destroy(m);
    }
}

TEST(kafka_topics_have_six_partitions) {
    rd_kafka_t *p = new_producer();
    for (int t = 0; t < 2; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(p, topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(p, 0, rkt, &md, 10000);
        CHECKF(e == RD_KAFKA_RESP_ERR_NO_ERROR, "metadata: %s", rd_kafka_err2str(e));
        CHECK_EQ_INT(md->topic_cnt, 1);
        CHECKF(md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR, "%s: %s", topics[t],
               rd_kafka_err2str(md->topics[0].err));
        CHECK_EQ_INT(md->topics[0].partition_cnt, 6);
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_destroy(p);
}

TEST(kafka_group_offsets_survive_consumer_restart) {
    char group[64], marker[64];
    snprintf(group, sizeof group, "cgw-test-%d-%ld", (int)getpid(), (long)time(NULL));
    snprintf(marker, sizeof marker, "m%d-%ld", (int)getpid(), (long)time(NULL));
    enum { FIRST = 200, SECOND = 100 };
    unsigned char seen[FIRST + SECOND] = {0};

    rd_kafka_t *p = new_producer();
    /* The group starts at the earliest offset: only its committed offsets can keep the
     * restarted consumer from reading the first records again. */
    produce(p, marker, 0, FIRST);
    rd_kafka_t *c = new_consumer(group);
    consume(c, marker, FIRST, seen, FIRST + SECOND);
    CHECK(rd_kafka_commit(c, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
    close_consumer(c);

    /* Produced while no consumer of the group runs: only committed offsets can find them. */
    produce(p, marker, FIRST, FIRST + SECOND);
    memset(seen, 0, sizeof seen);
    c = new_consumer(group);
    double t0 = now_s();
    consume(c, marker, SECOND, seen, FIRST + SECOND);
    for (int i = 0; i < FIRST; i++) CHECKF(!seen[i], "record %d re-delivered after commit", i);
    /* A member that left properly lets the next one in at once, not after session.timeout.ms. */
    CHECKF(now_s() - t0 < 20, "restarted consumer took %.1f s to resume", now_s() - t0);
    /* Nothing more with our marker may follow. */
    double until = now_s() + 2;
    while (now_s() < until) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (!m) continue;
        int ours = !m->err && m->len > strlen(marker) &&
                   memcmp(m->payload, marker, strlen(marker)) == 0;
        rd_kafka_message_destroy(m);
        CHECKF(!ours, "unexpected extra record");
    }
    close_consumer(c);
    rd_kafka_destroy(p);
}

TEST(kafka_librdkafka_is_the_pinned_version) {
    /* Debian 12's 2.0.2 is not what we link: see README "librdkafka". */
    CHECKF(rd_kafka_version() >= 0x020800ff - 0xff, "librdkafka %s", rd_kafka_version_str());
}
