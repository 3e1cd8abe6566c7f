/* admin_test.c: `cgw offsets show|reset` and `cgw group delete` (src/admin/) against the
 * local stack's Kafka. Each case creates its own 3-partition topic and group, so the counts
 * are exact. The commands run through admin_run() with their output captured; what they
 * changed is checked with a plain consumer's committed() rather than with the tools
 * themselves. Consumers leave their group with the unsubscribe-then-close workaround (see
 * stack_kafka_test.c) so that a group is empty as soon as its consumer is closed. */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include "admin/admin.h"
#include "admin/admin_internal.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define NPART 3

static char out[65536], err[16384];

/* ------------------------------------------------------------------ helpers */

static void unique(char *buf, size_t len, const char *what) {
    static int seq;
    snprintf(buf, len, "cgw-admin-test-%s-%d-%ld-%d", what, (int)getpid(), (long)time(NULL),
             ++seq);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs admin_run with the NULL-terminated arguments; stdout and stderr land in out and err. */
static int run(const char *first, ...) {
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    char *obuf = NULL, *ebuf = NULL;
    size_t olen = 0, elen = 0;
    FILE *o = open_memstream(&obuf, &olen), *e = open_memstream(&ebuf, &elen);
    int rc = admin_run(argc, argv, o, e);
    fclose(o);
    fclose(e);
    snprintf(out, sizeof out, "%s", obuf);
    snprintf(err, sizeof err, "%s", ebuf);
    free(obuf);
    free(ebuf);
    return rc;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char e[256];
    CHECKF(rd_kafka_conf_set(conf, k, v, e, sizeof e) == RD_KAFKA_CONF_OK, "%s: %s", k, e);
}

static rd_kafka_t *new_producer(void) {
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", STACK_KAFKA_BROKERS);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    CHECKF(p != NULL, "producer: %s", e);
    return p;
}

static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    CHECK(ev != NULL);
    CHECKF(!rd_kafka_event_error(ev), "%s", rd_kafka_event_error_string(ev));
    return ev;
}

static void create_topic(rd_kafka_t *p, const char *topic) {
    char e[256];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, NPART, 1, e, sizeof e);
    CHECKF(nt != NULL, "%s", e);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_CreateTopics(p, &nt, 1, NULL, q);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_event_t *ev = admin_wait(q);
    size_t n = 0;
    const rd_kafka_topic_result_t **r =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    CHECK_EQ_INT(n, 1);
    CHECKF(!rd_kafka_topic_result_error(r[0]), "create %s: %s", topic,
           rd_kafka_topic_result_error_string(r[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
}

/* Deletes the case's topic (the stack's Kafka is shared) and the producer. */
static void done(rd_kafka_t *p, const char *topic) {
    rd_kafka_DeleteTopic_t *d = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_DeleteTopics(p, &d, 1, NULL, q);
    rd_kafka_DeleteTopic_destroy(d);
    rd_kafka_event_destroy(admin_wait(q));
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(p);
}

/* n records into partition; with ts0 > 0, record i carries the timestamp ts0 + i * step. */
static void produce(rd_kafka_t *p, const char *topic, int partition, int n, int64_t ts0,
                    int64_t step) {
    for (int i = 0; i < n; i++) {
        char val[32];
        snprintf(val, sizeof val, "v%d", i);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_VALUE(val, strlen(val)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_TIMESTAMP(ts0 > 0 ? ts0 + i * step : 0), RD_KAFKA_V_END);
        CHECKF(e == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    }
    CHECK(rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A topic of NPART partitions holding counts[i] records in partition i. */
static rd_kafka_t *topic_with(const char *topic, const int counts[NPART]) {
    rd_kafka_t *p = new_producer();
    create_topic(p, topic);
    for (int i = 0; i < NPART; i++)
        if (counts[i]) produce(p, topic, i, counts[i], 0, 0);
    return p;
}

static rd_kafka_t *new_consumer(const char *group, const char *client_id) {
    char e[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", STACK_KAFKA_BROKERS);
    set(conf, "group.id", group);
    set(conf, "client.id", client_id);
    set(conf, "auto.offset.reset", "earliest");
    set(conf, "enable.auto.commit", "false");
    set(conf, "partition.assignment.strategy", "cooperative-sticky");
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    CHECKF(c != NULL, "consumer: %s", e);
    rd_kafka_poll_set_consumer(c);
    return c;
}

/* Commits offs[i] (< 0: nothing) for partition i, as a consumer outside the group would. */
static void commit(const char *group, const char *topic, const int64_t offs[NPART]) {
    rd_kafka_t *c = new_consumer(group, "admin-test-committer");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART);
    for (int i = 0; i < NPART; i++)
        if (offs[i] >= 0) rd_kafka_topic_partition_list_add(l, topic, i)->offset = offs[i];
    rd_kafka_resp_err_t e = rd_kafka_commit(c, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    CHECKF(e == RD_KAFKA_RESP_ERR_NO_ERROR, "commit: %s", rd_kafka_err2str(e));
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

/* The group's committed offsets (-1 when none), read by a consumer that does not join. */
static void committed(const char *group, const char *topic, int64_t offs[NPART]) {
    rd_kafka_t *c = new_consumer(group, "admin-test-reader");
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART);
    for (int i = 0; i < NPART; i++) rd_kafka_topic_partition_list_add(l, topic, i);
    rd_kafka_resp_err_t e = rd_kafka_committed(c, l, 10000);
    CHECKF(e == RD_KAFKA_RESP_ERR_NO_ERROR, "committed: %s", rd_kafka_err2str(e));
    for (int i = 0; i < NPART; i++) offs[i] = l->elems[i].offset >= 0 ? l->elems[i].offset : -1;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

#define CHECK_COMMITTED(group, topic, a, b, c)                                \
    do {                                                                      \
        int64_t got_[NPART];                                                  \
        committed(group, topic, got_);                                        \
        CHECKF(got_[0] == (a) && got_[1] == (b) && got_[2] == (c),            \
               "committed %lld %lld %lld, want %lld %lld %lld",               \
               (long long)got_[0], (long long)got_[1], (long long)got_[2],    \
               (long long)(a), (long long)(b), (long long)(c));               \
    } while (0)

static int assigned(rd_kafka_t *c) {
    rd_kafka_topic_partition_list_t *a = NULL;
    CHECK(rd_kafka_assignment(c, &a) == RD_KAFKA_RESP_ERR_NO_ERROR);
    int n = a->cnt;
    rd_kafka_topic_partition_list_destroy(a);
    return n;
}

/* A member of group subscribed to topic that polls until it has its partitions; it reads
 * up to `want` records (counted into *got) on the way. */
static rd_kafka_t *active_member(const char *group, const char *topic, int want, int *got) {
    rd_kafka_t *c = new_consumer(group, "admin-test-member");
    rd_kafka_topic_partition_list_t *s = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(s, topic, RD_KAFKA_PARTITION_UA);
    CHECK(rd_kafka_subscribe(c, s) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(s);
    int64_t deadline = now_ms() + 30000;
    *got = 0;
    while (assigned(c) < NPART || *got < want) {
        CHECKF(now_ms() < deadline, "member: %d partitions, %d of %d records in 30 s",
               assigned(c), *got, want);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m && !m->err) (*got)++;
        if (m) rd_kafka_message_destroy(m);
    }
    return c;
}

static void close_member(rd_kafka_t *c) {
    rd_kafka_unsubscribe(c);
    for (int i = 0; i < 100 && assigned(c) > 0; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m) rd_kafka_message_destroy(m);
    }
    CHECK(rd_kafka_consumer_close(c) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(c);
}

/* The JSON partition object of `show --json` for partition i of the first group. */
static json_t *show_partition(json_t *root, int i) {
    json_t *g = json_array_get(json_object_get(root, "groups"), 0);
    return json_array_get(json_object_get(g, "partitions"), (size_t)i);
}

static long long jint(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_null(v) ? -1 : (long long)json_integer_value(v);
}

/* A worker configuration whose receipt consumer is (group, topic); path is filled. */
static void write_config(char *path, size_t len, const char *group, const char *topic) {
    snprintf(path, len, "/tmp/cgw-admin-test-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    fprintf(f,
            "kafka:\n  brokers: %s\n"
            "neo4j:\n  uri: bolt://127.0.0.1:7687\n"
            "enrichment:\n  fido: {base_url: http://f}\n  retailer: {base_url: http://r}\n"
            "flags:\n  file: var/flags.json\n"
            "consumers:\n"
            "  receipt: {topic: %s, group: %s}\n"
            "  factoid: {topic: %s, group: %s-factoid}\n",
            STACK_KAFKA_BROKERS, topic, group, topic, group);
    fclose(f);
}

static void iso(char *buf, size_t len, int64_t ms) {
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* ------------------------------------------------------------------ show */

TEST(admin_show_reports_committed_end_and_lag) {
    char topic[128], group[128];
    unique(topic, sizeof topic, "show");
    unique(group, sizeof group, "show-g");
    rd_kafka_t *p = topic_with(topic, (int[NPART]){5, 3, 4});
    commit(group, topic, (int64_t[NPART]){2, 3, -1});

    CHECKF(run("offsets", "show", "--brokers", STACK_KAFKA_BROKERS, "--group", group, "--topic",
               topic, "--json", NULL) == 0, "%s", err);
    json_error_t je;
    json_t *root = json_loads(out, 0, &je);
    CHECKF(root != NULL, "json: %s in %s", je.text, out);
    long long want[NPART][3] = {{2, 5, 3}, {3, 3, 0}, {-1, 4, -1}};
    for (int i = 0; i < NPART; i++) {
        json_t *pj = show_partition(root, i);
        CHECK_EQ_INT(jint(pj, "partition"), i);
        CHECK_EQ_INT(jint(pj, "committed"), want[i][0]);
        CHECK_EQ_INT(jint(pj, "end"), want[i][1]);
        CHECK_EQ_INT(jint(pj, "lag"), want[i][2]);
    }
    json_t *g = json_array_get(json_object_get(root, "groups"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(g, "group")), group);
    CHECK_EQ_STR(json_string_value(json_object_get(g, "state")), "Empty");
    CHECK_EQ_INT(jint(g, "members"), 0);
    CHECK_EQ_INT(jint(g, "lag"), 3);
    json_decref(root);

    /* The table: one line per partition, kafka-consumer-groups' columns. */
    CHECKF(run("offsets", "show", "--brokers", STACK_KAFKA_BROKERS, "--group", group, "--topic",
               topic, NULL) == 0, "%s", err);
    CHECKF(strstr(out, "PARTITION  CURRENT-OFFSET  LOG-END-OFFSET") != NULL, "%s", out);
    const char *want_text[NPART] = {"2 5 3", "3 3 0", "- 4 -"};
    for (int i = 0; i < NPART; i++) {
        char needle[300], line[400] = "";
        snprintf(needle, sizeof needle, "%s  %s", group, topic);
        const char *at = strstr(out, needle);
        for (int k = 0; k < i && at; k++) at = strstr(at + 1, needle);
        CHECKF(at != NULL, "row %d missing in\n%s", i, out);
        char gg[200], tt[200], c[24], e[24], l[24];
        int part = -1;
        CHECK(sscanf(at, "%199s %199s %d %23s %23s %23s", gg, tt, &part, c, e, l) == 6);
        snprintf(line, sizeof line, "%s %s %s", c, e, l);
        CHECK_EQ_INT(part, i);
        CHECK_EQ_STR(line, want_text[i]);
    }
    CHECKF(strstr(out, "Total lag: 3") != NULL, "%s", out);
    done(p, topic);
}

TEST(admin_show_without_group_shows_both_consumers_of_the_config) {
    char topic[128], group[128], path[256];
    unique(topic, sizeof topic, "showcfg");
    unique(group, sizeof group, "showcfg-g");
    rd_kafka_t *p = topic_with(topic, (int[NPART]){1, 2, 3});
    commit(group, topic, (int64_t[NPART]){1, 1, 1});
    write_config(path, sizeof path, group, topic);
    int rc = run("offsets", "show", "-c", path, "--json", NULL);
    unlink(path);
    CHECKF(rc == 0, "%s", err);
    json_t *root = json_loads(out, 0, NULL);
    CHECK(root != NULL);
    json_t *groups = json_object_get(root, "groups");
    CHECK_EQ_INT(json_array_size(groups), 2);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(groups, 0), "group")), group);
    CHECK_EQ_INT(jint(json_array_get(groups, 0), "lag"), 0 + 1 + 2);
    CHECK_EQ_INT(jint(json_array_get(groups, 1), "lag"), 0); /* -factoid: nothing committed */
    json_decref(root);
    done(p, topic);
}

/* ------------------------------------------------------------------ reset */

TEST(admin_reset_dry_run_changes_nothing) {
    char topic[128], group[128];
    unique(topic, sizeof topic, "dry");
    unique(group, sizeof group, "dry-g");
    rd_kafka_t *p = topic_with(topic, (int[NPART]){4, 4, 4});
    commit(group, topic, (int64_t[NPART]){1, 2, 3});
    CHECKF(run("offsets", "reset", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--topic", topic, "--to-latest", NULL) == 0, "%s", err);
    CHECKF(strstr(out, "Dry run: nothing changed") != NULL, "%s", out);
    CHECKF(strstr(out, "CURRENT-OFFSET  NEW-OFFSET") != NULL, "%s", out);
    CHECK_COMMITTED(group, topic, 1, 2, 3);
    CHECKF(run("offsets", "reset", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--topic", topic, "--to-earliest", "--json", NULL) == 0, "%s", err);
    json_t *root = json_loads(out, 0, NULL);
    CHECKF(root != NULL, "%s", out);
    CHECK(json_is_false(json_object_get(root, "executed")));
    json_t *parts = json_object_get(root, "partitions");
    for (int i = 0; i < NPART; i++) {
        CHECK_EQ_INT(jint(json_array_get(parts, (size_t)i), "committed"), i + 1);
        CHECK_EQ_INT(jint(json_array_get(parts, (size_t)i), "new"), 0);
    }
    json_decref(root);
    CHECK_COMMITTED(group, topic, 1, 2, 3);
    done(p, topic);
}

/* Records before `before` in partition 0 are deleted, so its earliest offset is not 0. */
static void delete_records(rd_kafka_t *p, const char *topic, int64_t before) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, 0)->offset = before;
    rd_kafka_DeleteRecords_t *d = rd_kafka_DeleteRecords_new(l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_DeleteRecords(p, &d, 1, NULL, q);
    rd_kafka_DeleteRecords_destroy(d);
    rd_kafka_event_t *ev = admin_wait(q);
    const rd_kafka_topic_partition_list_t *r =
        rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
    CHECKF(r && r->cnt == 1 && !r->elems[0].err, "delete records: %s",
           r && r->cnt ? rd_kafka_err2str(r->elems[0].err) : "no result");
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
}

TEST(admin_reset_to_latest_and_earliest_execute) {
    char topic[128], group[128];
    unique(topic, sizeof topic, "lateearly");
    unique(group, sizeof group, "lateearly-g");
    rd_kafka_t *p = topic_with(topic, (int[NPART]){4, 6, 0});
    delete_records(p, topic, 2);
    commit(group, topic, (int64_t[NPART]){3, 3, -1});
    CHECKF(run("offsets", "reset", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--topic", topic, "--to-latest", "--execute", NULL) == 0, "%s", err);
    CHECKF(strstr(out, "Committed the new offsets of group") != NULL, "%s", out);
    CHECK_COMMITTED(group, topic, 4, 6, 0);
    CHECKF(run("offsets", "reset", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--topic", topic, "--to-earliest", "--execute", NULL) == 0, "%s", err);
    CHECK_COMMITTED(group, topic, 2, 0, 0);
    done(p, topic);
}

TEST(admin_reset_to_datetime_execute) {
    char topic[128], group[128], when[64];
    unique(topic, sizeof topic, "time");
    unique(group, sizeof group, "time-g");
    /* Recent enough for the broker's timestamp checks and retention. */
    int64_t t0 = (now_ms() - 600000) / 1000 * 1000;
    rd_kafka_t *p = new_producer();
    create_topic(p, topic);
    produce(p, topic, 0, 4, t0, 1000);       /* t0 .. t0+3000: t0+2000 is at offset 2 */
    produce(p, topic, 1, 3, t0 + 500, 1000); /* t0+500, t0+1500 (exactly), t0+2500 */
    produce(p, topic, 2, 2, t0, 1000);       /* nothing at or after: the end, 2 */
    commit(group, topic, (int64_t[NPART]){0, 3, -1});
    iso(when, sizeof when, t0 + 1500);
    CHECKF(run("offsets", "reset", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--topic", topic, "--to-datetime", when, "--execute", NULL) == 0, "%s", err);
    CHECK_COMMITTED(group, topic, 2, 1, 2);

    /* The same instant written with a zone offset plans the same; so does --opt=value. */
    commit(group, topic, (int64_t[NPART]){0, 0, 0});
    time_t s = (time_t)((t0 + 1500) / 1000 + 3600);
    struct tm tm;
    gmtime_r(&s, &tm);
    char zoned[80], arg[100];
    strftime(zoned, sizeof zoned, "%Y-%m-%dT%H:%M:%S.500+01:00", &tm);
    snprintf(arg, sizeof arg, "--to-datetime=%s", zoned);
    CHECKF(run("offsets", "reset", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--topic", topic, arg, "--json", NULL) == 0, "%s", err);
    json_t *root = json_loads(out, 0, NULL);
    CHECKF(root != NULL, "%s", out);
    json_t *parts = json_object_get(root, "partitions");
    CHECK_EQ_INT(jint(json_array_get(parts, 0), "new"), 2);
    CHECK_EQ_INT(jint(json_array_get(parts, 1), "new"), 1);
    CHECK_EQ_INT(jint(json_array_get(parts, 2), "new"), 2);
    json_decref(root);
    CHECK_COMMITTED(group, topic, 0, 0, 0);
    done(p, topic);
}

TEST(admin_reset_refused_while_a_consumer_is_active) {
    char topic[128], group[128], path[256];
    unique(topic, sizeof topic, "busy");
    unique(group, sizeof group, "busy-g");
    rd_kafka_t *p = topic_with(topic, (int[NPART]){2, 2, 2});
    commit(group, topic, (int64_t[NPART]){1, 1, 1});
    write_config(path, sizeof path, group, topic);
    int got = 0;
    rd_kafka_t *c = active_member(group, topic, 3, &got);
    int rc = run("offsets", "reset", "-c", path, "--group", group, "--topic", topic,
                 "--to-earliest", "--execute", NULL);
    int rc_dry = run("offsets", "reset", "-c", path, "--group", group, "--topic", topic,
                     "--to-earliest", NULL);
    unlink(path);
    CHECK_EQ_INT(rc, 1);
    CHECK_EQ_INT(rc_dry, 1);
    CHECKF(strstr(err, "refusing to reset the offsets of group") != NULL, "%s", err);
    CHECKF(strstr(err, "1 member: admin-test-member (member ") != NULL, "%s", err);
    CHECKF(strstr(err, "killswitch flag consumer_graph_receipt_killswitch") != NULL, "%s", err);
    CHECKF(strstr(err, "state Empty and 0 members") != NULL, "%s", err);
    CHECK_EQ_STR(out, "");
    close_member(c);
    CHECK_COMMITTED(group, topic, 1, 1, 1);
    done(p, topic);
}

/* ------------------------------------------------------------------ group delete */

TEST(admin_group_delete_refused_while_active_then_restarts_from_earliest) {
    char topic[128], group[128];
    unique(topic, sizeof topic, "del");
    unique(group, sizeof group, "del-g");
    rd_kafka_t *p = topic_with(topic, (int[NPART]){3, 3, 3});
    int got = 0;
    rd_kafka_t *c = active_member(group, topic, 9, &got);
    CHECK(rd_kafka_commit(c, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
    CHECK_EQ_INT(run("group", "delete", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
                     "--execute", NULL), 1);
    CHECKF(strstr(err, "refusing to delete group") != NULL, "%s", err);
    CHECKF(strstr(err, "consumer_graph_receipt_killswitch") != NULL &&
           strstr(err, "consumer_graph_factoid_killswitch") != NULL, "%s", err);
    close_member(c);
    CHECK_COMMITTED(group, topic, 3, 3, 3);

    CHECKF(run("group", "delete", "--brokers", STACK_KAFKA_BROKERS, "--group", group, NULL) == 0,
           "%s", err);
    CHECKF(strstr(out, "Dry run") != NULL, "%s", out);
    CHECK_COMMITTED(group, topic, 3, 3, 3);
    CHECKF(run("group", "delete", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
               "--execute", NULL) == 0, "%s", err);
    CHECKF(strstr(out, "Deleted group") != NULL, "%s", out);
    CHECK_COMMITTED(group, topic, -1, -1, -1);
    CHECK_EQ_INT(run("group", "delete", "--brokers", STACK_KAFKA_BROKERS, "--group", group,
                     "--execute", NULL), 1);
    CHECKF(strstr(err, "does not exist") != NULL, "%s", err);

    /* Nothing committed any more: a new member starts at the earliest offset again. */
    c = active_member(group, topic, 9, &got);
    CHECK_EQ_INT(got, 9);
    close_member(c);
    done(p, topic);
}

/* ------------------------------------------------------------------ command line */

TEST(admin_usage_errors_exit_2) {
    const char *b = STACK_KAFKA_BROKERS;
    CHECK_EQ_INT(run("offsets", NULL), 2);
    CHECK_EQ_INT(run("offsets", "frobnicate", "--brokers", b, NULL), 2);
    CHECK_EQ_INT(run("offsets", "show", NULL), 2);
    CHECK_EQ_INT(run("offsets", "show", "--brokers", b, NULL), 2);
    CHECK_EQ_INT(run("offsets", "show", "--brokers", b, "--group", "g", NULL), 2);
    CHECK_EQ_INT(run("offsets", "show", "--brokers", b, "--group", "g", "--topic", "t",
                     "--execute", NULL), 2);
    CHECK_EQ_INT(run("offsets", "reset", "--brokers", b, "--group", "g", "--topic", "t", NULL),
                 2);
    CHECK_EQ_INT(run("offsets", "reset", "--brokers", b, "--group", "g", "--topic", "t",
                     "--to-earliest", "--to-latest", NULL), 2);
    CHECK_EQ_INT(run("offsets", "reset", "--brokers", b, "--group", "g", "--topic", "t",
                     "--to-datetime", "yesterday", NULL), 2);
    CHECKF(strstr(err, "--to-datetime") != NULL, "%s", err);
    CHECK_EQ_INT(run("offsets", "reset", "--brokers", b, "--group", "g", "--topic", NULL), 2);
    CHECK_EQ_INT(run("group", "delete", "--brokers", b, NULL), 2);
    CHECK_EQ_INT(run("group", "delete", "--brokers", b, "--group", "g", "--topic", "t", NULL),
                 2);
    CHECK_EQ_INT(run("offsets", "show", "-c", "/nonexistent/cgw.yaml", NULL), 2);
    CHECK_EQ_INT(run("offsets", "--help", NULL), 0);
    CHECKF(strstr(out, "usage: cgw offsets show") != NULL, "%s", out);
    CHECK_EQ_INT(run("offsets", "show", "--brokers", b, "--group", "g", "--topic",
                     "cgw-admin-test-no-such-topic", NULL), 1);
    CHECKF(strstr(err, "no-such-topic") != NULL, "%s", err);
}

TEST(admin_parse_datetime_forms) {
    int64_t ms = 0;
    CHECK(admin_parse_datetime("2026-11-29T10:00:00Z", &ms) == 0);
    CHECK_EQ_INT(ms, 1795946400000LL);
    CHECK(admin_parse_datetime("2026-11-29T10:00:00.25Z", &ms) == 0);
    CHECK_EQ_INT(ms, 1795946400250LL);
    CHECK(admin_parse_datetime("2026-11-29T11:30:00+01:30", &ms) == 0);
    CHECK_EQ_INT(ms, 1795946400000LL);
    CHECK(admin_parse_datetime("2026-11-29T05:00:00.000-05:00", &ms) == 0);
    CHECK_EQ_INT(ms, 1795946400000LL);
    CHECK(admin_parse_datetime("2024-02-29T00:00:00Z", &ms) == 0);
    const char *bad[] = {"2026-11-29T10:00:00", "2026-11-29 10:00:00Z", "2026-02-29T00:00:00Z",
                         "2026-13-01T00:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T10:00:00.Z",
                         "2026-11-29T10:00:00+1:00", "1969-12-31T23:59:59Z", "+026-11-29T10:00:00Z",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECKF(admin_parse_datetime(bad[i], &ms) != 0, "accepted \"%s\"", bad[i]);
}
