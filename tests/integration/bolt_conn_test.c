/* bolt_conn_test.c: a single connection against the local Neo4j 5.26: handshake and auth,
 * every PackStream type through `RETURN $p`, graph/temporal/spatial values from Cypher,
 * FAILURE -> IGNORED -> RESET, explicit transactions, counters, pipelined batches. */
#define TEST_MAIN
#include "test.h"

#include <math.h>

#include "bolt/bolt.h"
#include "bolt_test_util.h"

/* RETURN $p: the value as the server sent it back (caller frees). */
static bolt_value *echo(bolt_conn *c, bolt_value *p) {
    bolt_error err;
    bolt_value *params = bolt_map();
    bolt_map_set(params, "p", p);
    bolt_result *r = NULL;
    int rc = bolt_run(c, "RETURN $p AS p", params, NULL, &r, &err);
    bolt_value_free(params);
    CHECKF(rc == BOLT_OK, "run: %s %s", bolt_code_name(rc), err.message);
    const bolt_value *rec = NULL;
    rc = bolt_result_next(r, &rec, &err);
    CHECKF(rc == BOLT_OK && rec, "next: %s %s", bolt_code_name(rc), err.message);
    bolt_value *out = bolt_value_copy(bolt_list_get(rec, 0));
    OK(bolt_result_next(r, &rec, &err));
    CHECK(rec == NULL);
    bolt_result_free(r);
    return out;
}

static void check_echo(bolt_conn *c, bolt_value *v) {
    bolt_value *sent = bolt_value_copy(v);
    bolt_value *back = echo(c, v);
    char a[256], b[256];
    bolt_value_format(sent, a, sizeof a);
    bolt_value_format(back, b, sizeof b);
    int same = bolt_value_equal(sent, back);
    bolt_value_free(sent);
    bolt_value_free(back);
    CHECKF(same, "sent %s, got %s", a, b);
}

/* One scalar result of a query without parameters. */
static bolt_value *scalar(bolt_conn *c, const char *query) {
    bolt_error err;
    bolt_result *r = NULL;
    OK(bolt_run(c, query, NULL, NULL, &r, &err));
    const bolt_value *rec = NULL;
    OK(bolt_result_next(r, &rec, &err));
    CHECKF(rec != NULL, "no row for %s", query);
    bolt_value *out = bolt_value_copy(bolt_list_get(rec, 0));
    bolt_result_free(r);
    return out;
}

TEST(connect_and_return_1) {
    bolt_conn *c;
    BT_CONNECT(&c);
    CHECK(bolt_conn_version(c) >= 0x0500);
    CHECK(strncmp(bolt_conn_server_agent(c), "Neo4j/5", 7) == 0);
    CHECK(bolt_conn_id(c)[0] != 0);
    bolt_value *v = scalar(c, "RETURN 1 AS x");
    CHECK_EQ_INT(bolt_value_int(v), 1);
    bolt_value_free(v);
    CHECK_EQ_INT(bolt_conn_state(c), BOLT_STATE_READY);
    bolt_conn_close(c);
}

TEST(wrong_password_is_eauth) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.credentials = "definitely-wrong-password-123";
    bolt_conn *c = NULL;
    bolt_error err;
    int rc = bolt_connect(bt_uri("bolt"), &cfg, &c, &err);
    CHECK_EQ_INT(rc, BOLT_EAUTH);
    CHECK(c == NULL);
    CHECK(!err.retryable);
    CHECK(strstr(err.message, "definitely-wrong") == NULL);
    CHECK(strstr(err.message, "authentication failed") != NULL);
    CHECK_EQ_STR(err.neo4j_code, "Neo.ClientError.Security.Unauthorized");
    /* A good login right away resets Neo4j's failed-attempt count (3 in a row lock the
     * user for a while, and other tests share it). */
    BT_CONNECT(&c);
    bolt_conn_close(c);
}

TEST(http_port_is_eversion) {
    bolt_config cfg;
    bt_config(&cfg);
    bolt_conn *c = NULL;
    bolt_error err;
    const char *p = getenv("NEO4J_HTTP_PORT");         /* the stack's, not a fixed 7474 */
    char uri[64];
    snprintf(uri, sizeof uri, "bolt://127.0.0.1:%d", p && *p ? atoi(p) : 7474);
    int rc = bolt_connect(uri, &cfg, &c, &err);
    CHECKF(rc == BOLT_EVERSION || rc == BOLT_EIO, "%s: %s", bolt_code_name(rc), err.message);
}

TEST(connection_refused_is_econnect) {
    bolt_conn *c = NULL;
    bolt_error err;
    CHECK_EQ_INT(bolt_connect("bolt://127.0.0.1:1", NULL, &c, &err), BOLT_ECONNECT);
    CHECK(err.retryable);
}

TEST(scalars_round_trip) {
    bolt_conn *c;
    BT_CONNECT(&c);
    int64_t ints[] = {0, 1, -1, -16, -17, 127, 128, -128, -129, 32767, 32768, -32768, -32769,
                      2147483647LL, 2147483648LL, -2147483648LL, -2147483649LL, INT64_MAX,
                      INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) check_echo(c, bolt_int(ints[i]));
    double fl[] = {0.0, 1.5, -2.25, 1e308, 5e-324, INFINITY, -INFINITY, -0.0};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) check_echo(c, bolt_float(fl[i]));
    bolt_value *nan = echo(c, bolt_float(NAN));
    CHECK(bolt_value_type(nan) == BOLT_FLOAT && isnan(bolt_value_float(nan)));
    bolt_value_free(nan);
    check_echo(c, bolt_null());
    check_echo(c, bolt_bool(1));
    check_echo(c, bolt_bool(0));
    check_echo(c, bolt_string(""));
    check_echo(c, bolt_string("h\xC3\xA9llo w\xC3\xB6rld \xE2\x82\xAC \xF0\x9F\x98\x80 \xE4\xB8\xAD"));
    check_echo(c, bolt_bytes("", 0));
    check_echo(c, bolt_bytes("\x00\x01\xFF\x80", 4));
    bolt_conn_close(c);
}

TEST(big_values_cross_chunks) {
    bolt_conn *c;
    BT_CONNECT(&c);
    size_t n = 200000;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + i % 26);
    s[n] = 0;
    check_echo(c, bolt_string(s));
    check_echo(c, bolt_bytes(s, 70000));
    free(s);
    bolt_value *l = bolt_list();
    for (int i = 0; i < 20000; i++) bolt_list_append(l, bolt_int(i * 1000003LL));
    check_echo(c, l);
    bolt_conn_close(c);
}

TEST(nested_lists_and_maps) {
    bolt_conn *c;
    BT_CONNECT(&c);
    bolt_value *m = bolt_map();
    bolt_map_set(m, "a", bolt_int(1));
    bolt_map_set(m, "empty_list", bolt_list());
    bolt_map_set(m, "empty_map", bolt_map());
    bolt_value *l = bolt_list();
    bolt_list_append(l, bolt_string("x"));
    bolt_list_append(l, bolt_int(2));
    bolt_value *inner = bolt_map();
    bolt_map_set(inner, "deep", bolt_list());
    bolt_list_append(l, inner);
    bolt_map_set(m, "mixed", l);
    bolt_value *many = bolt_map();
    char k[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%d", i);
        bolt_map_set(many, k, bolt_int(i));
    }
    bolt_map_set(m, "many", many);
    check_echo(c, m);
    bolt_conn_close(c);
}

TEST(temporal_and_spatial_from_cypher) {
    bolt_conn *c;
    BT_CONNECT(&c);
    bolt_temporal t;
    bolt_value *v = scalar(c, "RETURN date('2024-02-29')");
    CHECK_EQ_INT(bolt_value_as_temporal(v, &t), BOLT_OK);
    CHECK_EQ_INT(t.days, 19782);
    bolt_value_free(v);

    v = scalar(c, "RETURN datetime('2024-01-02T03:04:05.123456789+02:00')");
    CHECK_EQ_INT(bolt_struct_tag(v), BOLT_TAG_DATETIME);
    CHECK_EQ_INT(bolt_value_as_temporal(v, &t), BOLT_OK);
    CHECK_EQ_INT(t.seconds, 1704157445LL);
    CHECK_EQ_INT(t.nanoseconds, 123456789);
    CHECK_EQ_INT(t.tz_offset_seconds, 7200);
    check_echo(c, v);   /* and back */

    v = scalar(c, "RETURN datetime({year: 2024, month: 7, day: 1, hour: 12, "
                  "timezone: 'Europe/Berlin'})");
    CHECK_EQ_INT(bolt_value_as_temporal(v, &t), BOLT_OK);
    CHECK_EQ_INT(t.tag, BOLT_TAG_DATETIME_ZONE_ID);
    CHECK_EQ_STR(t.tz_id, "Europe/Berlin");
    CHECK_EQ_INT(t.seconds, 1719828000LL);   /* 10:00 UTC */
    check_echo(c, v);

    v = scalar(c, "RETURN localdatetime('2024-01-02T03:04:05')");
    CHECK_EQ_INT(bolt_value_as_temporal(v, &t), BOLT_OK);
    CHECK_EQ_INT(t.seconds, 1704164645LL);
    check_echo(c, v);

    v = scalar(c, "RETURN time('12:00:00.5+01:00')");
    CHECK_EQ_INT(bolt_value_as_temporal(v, &t), BOLT_OK);
    CHECK_EQ_INT(t.nanoseconds, 43200500000000LL);
    CHECK_EQ_INT(t.tz_offset_seconds, 3600);
    check_echo(c, v);

    v = scalar(c, "RETURN localtime('23:59:59')");
    CHECK_EQ_INT(bolt_value_as_temporal(v, &t), BOLT_OK);
    CHECK_EQ_INT(t.nanoseconds, 86399000000000LL);
    check_echo(c, v);

    bolt_duration d;
    v = scalar(c, "RETURN duration('P1Y2M3DT4H5M6.7S')");
    CHECK_EQ_INT(bolt_value_as_duration(v, &d), BOLT_OK);
    CHECK_EQ_INT(d.months, 14);
    CHECK_EQ_INT(d.days, 3);
    CHECK_EQ_INT(d.seconds, 4 * 3600 + 5 * 60 + 6);
    CHECK_EQ_INT(d.nanoseconds, 700000000);
    check_echo(c, v);

    bolt_point p;
    v = scalar(c, "RETURN point({x: 1.5, y: -2})");
    CHECK_EQ_INT(bolt_value_as_point(v, &p), BOLT_OK);
    CHECK_EQ_INT(p.srid, 7203);
    CHECK(p.dims == 2 && p.x == 1.5 && p.y == -2.0);
    check_echo(c, v);
    v = scalar(c, "RETURN point({longitude: 13.4, latitude: 52.5, height: 34})");
    CHECK_EQ_INT(bolt_value_as_point(v, &p), BOLT_OK);
    CHECK_EQ_INT(p.srid, 4979);
    CHECK_EQ_INT(p.dims, 3);
    check_echo(c, v);

    /* Parameters built client-side. */
    check_echo(c, bolt_date_new(-1));
    check_echo(c, bolt_datetime_new(0, 1, -3600));
    check_echo(c, bolt_duration_new(0, 0, 1, 5));
    check_echo(c, bolt_point3d_new(9157, 1, 2, 3));
    bolt_conn_close(c);
}

static void cleanup(bolt_conn *c, const char *label) {
    bolt_error err;
    char q[128];
    snprintf(q, sizeof q, "MATCH (n:%s) DETACH DELETE n", label);
    OK(bolt_query(c, q, NULL, NULL, NULL, NULL, NULL, &err));
}

TEST(graph_values_from_match) {
    bolt_conn *c;
    bolt_error err;
    BT_CONNECT(&c);
    cleanup(c, "BoltTestGraph");
    bolt_summary s;
    OK(bolt_query(c, "CREATE (a:BoltTestGraph:Extra {name: 'a', n: 1})-[:BT_KNOWS {since: 2020}]->"
                     "(b:BoltTestGraph {name: 'b'})", NULL, NULL, NULL, NULL, &s, &err));
    CHECK_EQ_INT(s.counters.nodes_created, 2);
    CHECK_EQ_INT(s.counters.relationships_created, 1);
    CHECK_EQ_INT(s.counters.labels_added, 3);
    CHECK_EQ_INT(s.counters.properties_set, 4);
    CHECK(s.counters.contains_updates);
    CHECK_EQ_STR(s.type, "w");

    bolt_result *r;
    OK(bolt_run(c, "MATCH p = (a:BoltTestGraph {name: 'a'})-[k:BT_KNOWS]->(b) RETURN a, k, p",
                NULL, NULL, &r, &err));
    CHECK_EQ_INT(bolt_result_field_count(r), 3);
    CHECK_EQ_STR(bolt_result_field(r, 1), "k");
    const bolt_value *rec;
    OK(bolt_result_next(r, &rec, &err));
    CHECK(rec != NULL);
    bolt_node a;
    CHECK_EQ_INT(bolt_value_as_node(bolt_list_get(rec, 0), &a), BOLT_OK);
    CHECK_EQ_INT(bolt_value_size(a.labels), 2);
    CHECK_EQ_STR(bolt_value_string(bolt_map_get(a.properties, "name"), NULL), "a");
    CHECK(a.element_id && a.element_id[0]);
    bolt_relationship k;
    CHECK_EQ_INT(bolt_value_as_relationship(bolt_list_get(rec, 1), &k), BOLT_OK);
    CHECK_EQ_STR(k.type, "BT_KNOWS");
    CHECK_EQ_INT(k.start_id, a.id);
    CHECK_EQ_STR(k.start_element_id, a.element_id);
    CHECK_EQ_INT(bolt_value_int(bolt_map_get(k.properties, "since")), 2020);
    bolt_path p;
    CHECK_EQ_INT(bolt_value_as_path(bolt_list_get(rec, 2), &p), BOLT_OK);
    CHECK_EQ_INT(bolt_value_size(p.nodes), 2);
    CHECK_EQ_INT(bolt_value_size(p.rels), 1);
    bolt_relationship ur;
    CHECK_EQ_INT(bolt_value_as_relationship(bolt_list_get(p.rels, 0), &ur), BOLT_OK);
    CHECK_EQ_INT(ur.start_id, -1);
    CHECK_EQ_STR(ur.type, "BT_KNOWS");
    CHECK_EQ_INT(bolt_value_int(bolt_list_get(p.indices, 0)), 1);
    CHECK_EQ_INT(bolt_value_int(bolt_list_get(p.indices, 1)), 1);
    OK(bolt_result_next(r, &rec, &err));
    CHECK(rec == NULL);
    CHECK(bolt_result_summary(r) != NULL);
    bolt_result_free(r);
    cleanup(c, "BoltTestGraph");
    bolt_conn_close(c);
}

TEST(failure_ignored_reset_then_usable) {
    bolt_conn *c;
    bolt_error err;
    BT_CONNECT(&c);
    uint64_t ign = bolt_conn_ignored_count(c);
    bolt_result *r = NULL;
    int rc = bolt_run(c, "RETURN 1 +* BROKEN", NULL, NULL, &r, &err);
    CHECK_EQ_INT(rc, BOLT_ESERVER);
    CHECK(r == NULL);
    CHECK_EQ_STR(err.neo4j_code, "Neo.ClientError.Statement.SyntaxError");
    CHECK(!err.retryable);
    CHECK(err.message[0] != 0);
    /* The PULL pipelined behind the broken RUN came back IGNORED. */
    CHECK_EQ_INT(bolt_conn_ignored_count(c), ign + 1);
    CHECK_EQ_INT(bolt_conn_state(c), BOLT_STATE_FAILED);
    OK(bolt_reset(c, &err));
    CHECK_EQ_INT(bolt_conn_state(c), BOLT_STATE_READY);
    bolt_value *v = scalar(c, "RETURN 42");
    CHECK_EQ_INT(bolt_value_int(v), 42);
    bolt_value_free(v);

    /* Without an explicit reset the next request gets one in front of it. */
    rc = bolt_query(c, "THIS IS NOT CYPHER", NULL, NULL, NULL, NULL, NULL, &err);
    CHECK_EQ_INT(rc, BOLT_ESERVER);
    v = scalar(c, "RETURN 43");
    CHECK_EQ_INT(bolt_value_int(v), 43);
    bolt_value_free(v);

    /* Runtime error while streaming: the failure arrives on a PULL. */
    OK(bolt_run(c, "UNWIND [1, 0] AS x RETURN 1 / x", NULL, NULL, &r, &err));
    const bolt_value *rec;
    rc = BOLT_OK;
    while (!(rc = bolt_result_next(r, &rec, &err)) && rec) {}
    CHECK_EQ_INT(rc, BOLT_ESERVER);
    CHECK(strstr(err.neo4j_code, "ArithmeticError") != NULL);
    bolt_result_free(r);
    v = scalar(c, "RETURN 44");
    CHECK_EQ_INT(bolt_value_int(v), 44);
    bolt_value_free(v);
    bolt_conn_close(c);
}

static int64_t count_label(bolt_conn *c, const char *label) {
    char q[128];
    snprintf(q, sizeof q, "MATCH (n:%s) RETURN count(n)", label);
    bolt_value *v = scalar(c, q);
    int64_t n = bolt_value_int(v);
    bolt_value_free(v);
    return n;
}

TEST(explicit_tx_commit_and_rollback) {
    bolt_conn *c;
    bolt_error err;
    BT_CONNECT(&c);
    cleanup(c, "BoltTestTx");
    OK(bolt_begin(c, NULL, &err));
    CHECK_EQ_INT(bolt_conn_state(c), BOLT_STATE_TX);
    OK(bolt_query(c, "CREATE (:BoltTestTx {v: 1})", NULL, NULL, NULL, NULL, NULL, &err));
    OK(bolt_query(c, "CREATE (:BoltTestTx {v: 2})", NULL, NULL, NULL, NULL, NULL, &err));
    OK(bolt_commit(c, &err));
    CHECK(strlen(bolt_conn_last_bookmark(c)) > 0);
    CHECK_EQ_INT(count_label(c, "BoltTestTx"), 2);

    OK(bolt_begin(c, NULL, &err));
    OK(bolt_query(c, "CREATE (:BoltTestTx {v: 3})", NULL, NULL, NULL, NULL, NULL, &err));
    OK(bolt_rollback(c, &err));
    CHECK_EQ_INT(count_label(c, "BoltTestTx"), 2);

    /* A failure inside a transaction: the next query is refused until rollback. */
    OK(bolt_begin(c, NULL, &err));
    OK(bolt_query(c, "CREATE (:BoltTestTx {v: 4})", NULL, NULL, NULL, NULL, NULL, &err));
    CHECK_EQ_INT(bolt_query(c, "RETURN 1/0", NULL, NULL, NULL, NULL, NULL, &err), BOLT_ESERVER);
    CHECK_EQ_INT(bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, &err), BOLT_ESERVER);
    CHECK_EQ_INT(bolt_commit(c, &err), BOLT_ESERVER);
    CHECK_EQ_INT(count_label(c, "BoltTestTx"), 2);
    CHECK_EQ_INT(bolt_commit(c, &err), BOLT_ESTATE);

    /* Bookmarks are accepted back. */
    const char *bm = bolt_conn_last_bookmark(c);
    char saved[256];
    snprintf(saved, sizeof saved, "%s", bm);
    const char *bms[] = {saved};
    bolt_tx_opts o = {.bookmarks = bms, .nbookmarks = 1, .tx_timeout_ms = 10000};
    OK(bolt_begin(c, &o, &err));
    OK(bolt_query(c, "MATCH (n:BoltTestTx) RETURN n", NULL, NULL, NULL, NULL, NULL, &err));
    OK(bolt_commit(c, &err));
    cleanup(c, "BoltTestTx");
    bolt_conn_close(c);
}

TEST(pipelined_batch_with_streaming_encoder) {
    bolt_conn *c;
    bolt_error err;
    BT_CONNECT(&c);
    cleanup(c, "BoltTestBatch");
    bolt_enc *e = bolt_enc_new();
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    size_t mark = bolt_enc_list_start(e);
    int n = 5000;
    for (int i = 0; i < n; i++) {
        bolt_enc_map_begin(e, 2);
        bolt_enc_string(e, "id");
        bolt_enc_int(e, i);
        bolt_enc_string(e, "name");
        bolt_enc_string(e, "some longer text to push the message over one chunk");
    }
    bolt_enc_finish(e, mark, (size_t)n);
    CHECK(bolt_enc_size(e) > 65535);
    bolt_summary s;
    OK(bolt_run_batch(c, "UNWIND $rows AS r CREATE (x:BoltTestBatch {id: r.id}) SET x.name = r.name",
                      e, NULL, &s, &err));
    CHECK_EQ_INT(s.counters.nodes_created, n);
    CHECK_EQ_INT(s.counters.properties_set, 2 * n);
    CHECK_EQ_INT(s.counters.labels_added, n);
    CHECK(s.bookmark[0] != 0);
    CHECK_EQ_INT(count_label(c, "BoltTestBatch"), n);

    /* A failing batch: nothing committed, the connection is usable again. */
    uint64_t ign = bolt_conn_ignored_count(c);
    CHECK_EQ_INT(bolt_run_batch(c, "UNWIND $rows AS r CREATE (x:BoltTestBatch {id: r.id / 0})",
                                e, NULL, &s, &err), BOLT_ESERVER);
    CHECK(bolt_conn_ignored_count(c) >= ign + 1);
    CHECK_EQ_INT(count_label(c, "BoltTestBatch"), n);
    bolt_enc_free(e);

    /* A miscounted streaming encoding is refused before it can desynchronise the server. */
    e = bolt_enc_new();
    bolt_enc_map_begin(e, 2);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, 0);
    CHECK_EQ_INT(bolt_run_batch(c, "RETURN 1", e, NULL, &s, &err), BOLT_EINVAL);
    bolt_enc_free(e);
    CHECK_EQ_INT(count_label(c, "BoltTestBatch"), n);

    cleanup(c, "BoltTestBatch");
    bolt_conn_close(c);
}

static int count_cb(void *ud, const bolt_value *rec) {
    *(int64_t *)ud += bolt_value_int(bolt_list_get(rec, 0));
    return 0;
}

static int stop_cb(void *ud, const bolt_value *rec) {
    (void)rec;
    return ++*(int *)ud >= 3;
}

TEST(streaming_several_pulls_and_discard) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.fetch_size = 7;
    bolt_conn *c;
    bolt_error err;
    OK(bolt_connect(bt_uri("bolt"), &cfg, &c, &err));
    int64_t sum = 0;
    bolt_summary s;
    OK(bolt_query(c, "UNWIND range(1, 100) AS x RETURN x", NULL, NULL, count_cb, &sum, &s,
                  &err));
    CHECK_EQ_INT(sum, 5050);
    CHECK_EQ_STR(s.type, "r");
    int calls = 0;
    CHECK_EQ_INT(bolt_query(c, "UNWIND range(1, 100) AS x RETURN x", NULL, NULL, stop_cb,
                            &calls, NULL, &err), BOLT_ECALLBACK);
    CHECK_EQ_INT(calls, 3);
    /* Abandon a result half-way; the next query discards it. */
    bolt_result *r;
    OK(bolt_run(c, "UNWIND range(1, 100) AS x RETURN x", NULL, NULL, &r, &err));
    const bolt_value *rec;
    OK(bolt_result_next(r, &rec, &err));
    bolt_value *v = scalar(c, "RETURN 'after'");
    CHECK_EQ_STR(bolt_value_string(v, NULL), "after");
    bolt_value_free(v);
    /* It was discarded: the stream just ends. */
    OK(bolt_result_next(r, &rec, &err));
    CHECK(rec == NULL);
    bolt_result_free(r);
    /* Consume keeps the summary. */
    OK(bolt_run(c, "UNWIND range(1, 100) AS x RETURN x", NULL, NULL, &r, &err));
    OK(bolt_result_consume(r, &err));
    CHECK(bolt_result_summary(r) != NULL);
    bolt_result_free(r);
    bolt_conn_close(c);
}

/* bolt_query_many: a transaction's queries in one write, answered in order (the graph
 * writer's five statements). Each query sees the ones before it; a failure in the middle
 * leaves nothing committed and the queries behind it ignored; a stopped callback does not
 * stop the other queries; the connection is usable after each. */
static void three_queries(bolt_query_item q[3], const char *first, const char *second,
                          bolt_record_cb cb2, void *ud2, const char *third, int64_t *seen) {
    q[0] = (bolt_query_item){first};
    q[1] = (bolt_query_item){second, NULL, cb2, ud2};
    q[2] = (bolt_query_item){third, NULL, count_cb, seen};
}

TEST(a_transactions_queries_in_one_pipeline) {
    bolt_conn *c;
    bolt_error err;
    BT_CONNECT(&c);
    cleanup(c, "BoltTestMany");
    bolt_query_item q[3];
    int64_t sum = 0, seen = 0;
    bolt_enc *e = bolt_enc_new();
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "v");
    bolt_enc_int(e, 7);
    three_queries(q, "CREATE (:BoltTestMany {v: $v})", "UNWIND range(1, 2500) AS i RETURN i",
                  count_cb, &sum, "MATCH (n:BoltTestMany) SET n.w = n.v + 1 RETURN count(n)",
                  &seen);
    q[0].params = e;
    OK(bolt_begin(c, NULL, &err));
    OK(bolt_query_many(c, q, 3, &err));
    CHECK_EQ_INT(sum, 2500 * 2501 / 2);            /* every record, past one fetch_size */
    CHECK_EQ_INT(seen, 1);                         /* the third saw the first's node */
    CHECK_EQ_INT(q[0].summary.counters.nodes_created, 1);
    CHECK_EQ_INT(q[2].summary.counters.properties_set, 1);
    OK(bolt_commit(c, &err));
    CHECK_EQ_INT(count_label(c, "BoltTestMany"), 1);

    uint64_t ignored = bolt_conn_ignored_count(c);
    three_queries(q, "CREATE (:BoltTestMany {v: 1})", "RETURN 1 / 0", NULL, NULL,
                  "CREATE (:BoltTestMany {v: 3}) RETURN 1", &seen);
    OK(bolt_begin(c, NULL, &err));
    CHECK_EQ_INT(bolt_query_many(c, q, 3, &err), BOLT_ESERVER);
    CHECK(strstr(err.neo4j_code, "ArithmeticError") != NULL);
    CHECK(bolt_conn_ignored_count(c) >= ignored + 2);   /* the third's RUN and PULL */
    CHECK_EQ_INT(bolt_commit(c, &err), BOLT_ESERVER);
    CHECK_EQ_INT(count_label(c, "BoltTestMany"), 1);

    int calls = 0;
    seen = 0;
    three_queries(q, "CREATE (:BoltTestMany {v: 9})", "UNWIND range(1, 10) AS i RETURN i",
                  stop_cb, &calls, "MATCH (n:BoltTestMany) RETURN count(n)", &seen);
    OK(bolt_begin(c, NULL, &err));
    CHECK_EQ_INT(bolt_query_many(c, q, 3, &err), BOLT_ECALLBACK);
    CHECK_EQ_INT(calls, 3);
    CHECK_EQ_INT(seen, 0);   /* its answer was drained, not delivered */
    OK(bolt_rollback(c, &err));
    CHECK_EQ_INT(count_label(c, "BoltTestMany"), 1);

    CHECK_EQ_INT(bolt_query_many(c, q, 3, &err), BOLT_ESTATE);   /* outside a transaction */
    OK(bolt_begin(c, NULL, &err));
    CHECK_EQ_INT(bolt_query_many(c, q, BOLT_QUERY_MANY_MAX + 1, &err), BOLT_EINVAL);
    OK(bolt_rollback(c, &err));
    bolt_enc_free(e);
    cleanup(c, "BoltTestMany");
    bolt_conn_close(c);
}
