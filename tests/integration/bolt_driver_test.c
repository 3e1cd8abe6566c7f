/* bolt_driver_test.c: pools, neo4j:// routing and transaction functions against the local
 * Neo4j 5.26, including a deadlock between two writers that the retry loop resolves. */
#define TEST_MAIN
#include "test.h"

#include <pthread.h>

#include "bolt/bolt.h"
#include "bolt/driver_internal.h"
#include "bolt_test_util.h"

static bolt_driver *new_driver(const char *scheme, int pool_size) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.max_pool_size = pool_size;
    cfg.acquire_timeout_ms = 500;
    cfg.retry_initial_delay_ms = 100;
    cfg.max_retry_time_ms = 20000;
    bolt_driver *d = NULL;
    bolt_error err;
    int rc = bolt_driver_new(bt_uri(scheme), &cfg, &d, &err);
    CHECKF(rc == BOLT_OK, "driver: %s", err.message);
    return d;
}

static int64_t count_label(bolt_conn *c, const char *label) {
    char q[128];
    snprintf(q, sizeof q, "MATCH (n:%s) RETURN count(n)", label);
    bolt_result *r;
    bolt_error err;
    OK(bolt_run(c, q, NULL, NULL, &r, &err));
    const bolt_value *rec;
    OK(bolt_result_next(r, &rec, &err));
    int64_t n = bolt_value_int(bolt_list_get(rec, 0));
    bolt_result_free(r);
    return n;
}

static void cleanup(bolt_driver *d, const char *label) {
    bolt_conn *c;
    bolt_error err;
    char q[128];
    snprintf(q, sizeof q, "MATCH (n:%s) DETACH DELETE n", label);
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    OK(bolt_query(c, q, NULL, NULL, NULL, NULL, NULL, &err));
    bolt_driver_release(d, c);
}

TEST(pool_reuses_and_bounds) {
    bolt_driver *d = new_driver("bolt", 2);
    bolt_conn *a, *b, *c;
    bolt_error err;
    OK(bolt_driver_acquire(d, NULL, 0, &a, &err));
    OK(bolt_driver_acquire(d, NULL, 0, &b, &err));
    int idle, used;
    bolt_driver_pool_stats(d, &idle, &used);
    CHECK_EQ_INT(used, 2);
    CHECK_EQ_INT(bolt_driver_acquire(d, NULL, 0, &c, &err), BOLT_EPOOL);
    const char *id = bolt_conn_id(a);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", id);
    /* Leave a in FAILED: release resets it. */
    CHECK_EQ_INT(bolt_query(a, "RETURN 1/0", NULL, NULL, NULL, NULL, NULL, &err), BOLT_ESERVER);
    bolt_driver_release(d, a);
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    CHECK_EQ_STR(bolt_conn_id(c), saved);
    CHECK_EQ_INT(bolt_conn_state(c), BOLT_STATE_READY);
    bolt_driver_release(d, c);
    bolt_driver_release(d, b);
    bolt_driver_pool_stats(d, &idle, &used);
    CHECK_EQ_INT(idle, 2);
    CHECK_EQ_INT(used, 0);
    bolt_driver_free(d);
}

typedef struct waiter { bolt_driver *d; int rc; } waiter;

static void *acquire_later(void *arg) {
    waiter *w = arg;
    bolt_conn *c;
    w->rc = bolt_driver_acquire(w->d, NULL, 0, &c, NULL);
    if (!w->rc) bolt_driver_release(w->d, c);
    return NULL;
}

TEST(pool_waiter_gets_released_connection) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.max_pool_size = 1;
    cfg.acquire_timeout_ms = 5000;
    bolt_driver *d;
    bolt_error err;
    OK(bolt_driver_new(bt_uri("bolt"), &cfg, &d, &err));
    bolt_conn *c;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    waiter w = {d, -1};
    pthread_t t;
    pthread_create(&t, NULL, acquire_later, &w);
    struct timespec ts = {0, 200 * 1000000};
    nanosleep(&ts, NULL);
    bolt_driver_release(d, c);
    pthread_join(t, NULL);
    CHECK_EQ_INT(w.rc, BOLT_OK);
    bolt_driver_free(d);
}

TEST(liveness_check_drops_dead_idle_connection) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.liveness_check_ms = 0;   /* always check */
    bolt_driver *d;
    bolt_error err;
    OK(bolt_driver_new(bt_uri("bolt"), &cfg, &d, &err));
    bolt_conn *c, *killer;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    char victim[64];
    snprintf(victim, sizeof victim, "%s", bolt_conn_id(c));
    bolt_driver_release(d, c);
    /* Kill it server-side: the idle connection is dead without knowing. */
    BT_CONNECT(&killer);
    bolt_value *p = bolt_map();
    bolt_map_set(p, "id", bolt_string(victim));
    OK(bolt_query(killer, "CALL dbms.killConnection($id)", p, NULL, NULL, NULL, NULL, &err));
    bolt_value_free(p);
    bolt_conn_close(killer);
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    CHECK(strcmp(bolt_conn_id(c), victim) != 0);   /* the dead one was replaced */
    OK(bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, &err));
    bolt_driver_release(d, c);
    bolt_driver_free(d);
}

static int create_two(bolt_conn *c, void *ud, bolt_error *err) {
    (void)ud;
    return bolt_query(c, "CREATE (:BoltTestSession {v: 1}), (:BoltTestSession {v: 2})", NULL,
                      NULL, NULL, NULL, NULL, err);
}

static int create_then_fail(bolt_conn *c, void *ud, bolt_error *err) {
    (void)ud;
    int rc = bolt_query(c, "CREATE (:BoltTestSession {v: 3})", NULL, NULL, NULL, NULL, NULL, err);
    if (rc) return rc;
    return bolt_query(c, "RETURN 1 +* broken", NULL, NULL, NULL, NULL, NULL, err);
}

static int app_error(bolt_conn *c, void *ud, bolt_error *err) {
    (void)ud;
    (void)err;
    bolt_query(c, "CREATE (:BoltTestSession {v: 4})", NULL, NULL, NULL, NULL, NULL, NULL);
    return 7;
}

static int count_fn(bolt_conn *c, void *ud, bolt_error *err) {
    (void)err;
    *(int64_t *)ud = count_label(c, "BoltTestSession");
    return BOLT_OK;
}

TEST(session_write_commits_and_rolls_back) {
    bolt_driver *d = new_driver("bolt", 4);
    bolt_error err;
    cleanup(d, "BoltTestSession");
    bolt_summary s;
    OK(bolt_session_write(d, NULL, create_two, NULL, &s, &err));
    CHECK(s.bookmark[0] != 0);
    CHECK_EQ_INT(s.attempts, 1);
    s.attempts = 0;
    CHECK_EQ_INT(bolt_session_write(d, NULL, create_then_fail, NULL, &s, &err), BOLT_ESERVER);
    CHECK_EQ_INT(s.attempts, 1);   /* syntax errors are not retried; set on failure too */
    CHECK_EQ_INT(bolt_session_write(d, NULL, app_error, NULL, NULL, &err), 7);
    CHECK_EQ_INT(err.code, BOLT_ECALLBACK);
    int64_t n = -1;
    OK(bolt_session_read(d, NULL, count_fn, &n, &err));
    CHECK_EQ_INT(n, 2);
    cleanup(d, "BoltTestSession");
    bolt_driver_free(d);
}

typedef struct lock_ctx {
    bolt_driver *d;
    int first, second;
    int attempts;
    pthread_barrier_t *barrier;
    int rc;
    bolt_error err;
} lock_ctx;

static int touch(bolt_conn *c, int k, bolt_error *err) {
    bolt_value *p = bolt_map();
    bolt_map_set(p, "k", bolt_int(k));
    int rc = bolt_query(c, "MATCH (n:BoltTestDeadlock {k: $k}) SET n.v = coalesce(n.v, 0) + 1",
                        p, NULL, NULL, NULL, NULL, err);
    bolt_value_free(p);
    return rc;
}

static int lock_in_order(bolt_conn *c, void *ud, bolt_error *err) {
    lock_ctx *x = ud;
    int rc = touch(c, x->first, err);
    if (rc) return rc;
    if (x->attempts++ == 0) pthread_barrier_wait(x->barrier);   /* both hold one lock */
    return touch(c, x->second, err);
}

static void *writer(void *arg) {
    lock_ctx *x = arg;
    x->rc = bolt_session_write(x->d, NULL, lock_in_order, x, NULL, &x->err);
    return NULL;
}

TEST(deadlock_is_retried_to_success) {
    bolt_driver *d = new_driver("bolt", 4);
    bolt_error err;
    cleanup(d, "BoltTestDeadlock");
    bolt_conn *c;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    OK(bolt_query(c, "CREATE (:BoltTestDeadlock {k: 1}), (:BoltTestDeadlock {k: 2})", NULL,
                  NULL, NULL, NULL, NULL, &err));
    bolt_driver_release(d, c);
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    lock_ctx x1 = {d, 1, 2, 0, &b, -1, {0}}, x2 = {d, 2, 1, 0, &b, -1, {0}};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, writer, &x1);
    pthread_create(&t2, NULL, writer, &x2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&b);
    CHECKF(x1.rc == BOLT_OK, "writer 1: %s %s", bolt_code_name(x1.rc), x1.err.message);
    CHECKF(x2.rc == BOLT_OK, "writer 2: %s %s", bolt_code_name(x2.rc), x2.err.message);
    CHECKF(x1.attempts + x2.attempts >= 3, "attempts %d + %d: no deadlock happened",
           x1.attempts, x2.attempts);
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    bolt_result *r;
    OK(bolt_run(c, "MATCH (n:BoltTestDeadlock) RETURN sum(n.v)", NULL, NULL, &r, &err));
    const bolt_value *rec;
    OK(bolt_result_next(r, &rec, &err));
    CHECK_EQ_INT(bolt_value_int(bolt_list_get(rec, 0)), 4);
    bolt_result_free(r);
    bolt_driver_release(d, c);
    cleanup(d, "BoltTestDeadlock");
    bolt_driver_free(d);
}

TEST(neo4j_scheme_routes_to_single_instance) {
    bolt_driver *d = new_driver("neo4j", 4);
    bolt_conn *w, *r;
    bolt_error err;
    OK(bolt_driver_acquire(d, NULL, 0, &w, &err));
    CHECK_EQ_STR(bolt_conn_address(w), bt_address());
    OK(bolt_driver_acquire(d, "neo4j", 1, &r, &err));
    OK(bolt_query(r, "RETURN 1", NULL, &(bolt_tx_opts){.read_only = 1}, NULL, NULL, NULL, &err));
    bolt_driver_release(d, r);
    bolt_driver_release(d, w);
    /* Unknown database: fatal for discovery, not retried forever. */
    CHECK(bolt_driver_acquire(d, "no_such_db_bolt_test", 0, &w, &err) != BOLT_OK);
    CHECK(strstr(err.neo4j_code, "DatabaseNotFound") != NULL);
    int64_t n = -1;
    OK(bolt_session_read(d, NULL, count_fn, &n, &err));
    CHECK(n >= 0);
    bolt_driver_free(d);
}

TEST(unreachable_server_fails_fast_enough) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.max_retry_time_ms = 300;
    cfg.retry_initial_delay_ms = 50;
    bolt_driver *d;
    bolt_error err;
    OK(bolt_driver_new("bolt://127.0.0.1:1", &cfg, &d, &err));
    int64_t n;
    CHECK_EQ_INT(bolt_session_read(d, NULL, count_fn, &n, &err), BOLT_ECONNECT);
    CHECK(bolt_session_last_attempts() >= 2);
    bolt_driver_free(d);
}

/* Attempt 1 has its own connection killed server-side before it writes: the session must
 * notice the lost connection and run the function again on a new one. */
typedef struct kill_ctx { int attempts; } kill_ctx;

static int killed_once(bolt_conn *c, void *ud, bolt_error *err) {
    kill_ctx *k = ud;
    if (k->attempts++ == 0) {
        bolt_conn *killer;
        bolt_config cfg;
        bt_config(&cfg);
        int rc = bolt_connect(bt_uri("bolt"), &cfg, &killer, err);
        if (rc) return rc;
        bolt_value *p = bolt_map();
        bolt_map_set(p, "id", bolt_string(bolt_conn_id(c)));
        rc = bolt_query(killer, "CALL dbms.killConnection($id)", p, NULL, NULL, NULL, NULL, err);
        bolt_value_free(p);
        bolt_conn_close(killer);
        if (rc) return rc;
    }
    return bolt_query(c, "MERGE (n:BoltTestKilled {k: 1}) SET n.v = 1", NULL, NULL, NULL, NULL,
                      NULL, err);
}

TEST(lost_connection_is_retried) {
    bolt_driver *d = new_driver("bolt", 4);
    bolt_error err;
    cleanup(d, "BoltTestKilled");
    kill_ctx k = {0};
    bolt_summary s;
    OK(bolt_session_write(d, NULL, killed_once, &k, &s, &err));
    CHECK_EQ_INT(k.attempts, 2);
    CHECK_EQ_INT(s.attempts, 2);
    bolt_conn *c;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    CHECK_EQ_INT(count_label(c, "BoltTestKilled"), 1);
    bolt_driver_release(d, c);
    cleanup(d, "BoltTestKilled");
    bolt_driver_free(d);
}

static int64_t table_expiry(bolt_driver *d, const char *db, int *writers) {
    int64_t e = -1;
    pthread_mutex_lock(&d->mu);
    for (rtable *t = d->tables; t; t = t->next) {
        if (strcmp(t->db, db)) continue;
        e = t->expires_ms;
        if (writers) *writers = t->writers.n;
    }
    pthread_mutex_unlock(&d->mu);
    return e;
}

TEST(routing_table_refreshes_on_expiry_and_forget) {
    bolt_driver *d = new_driver("neo4j", 4);
    bolt_conn *c;
    bolt_error err;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    bolt_driver_release(d, c);
    int writers = 0;
    int64_t first = table_expiry(d, "neo4j", &writers);
    CHECK(first > bolt_now_ms());
    CHECK_EQ_INT(writers, 1);
    /* Expire it: the next acquire asks the router again. */
    pthread_mutex_lock(&d->mu);
    d->tables->expires_ms = 0;
    pthread_mutex_unlock(&d->mu);
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    bolt_driver_release(d, c);
    CHECK(table_expiry(d, "neo4j", NULL) > bolt_now_ms());
    /* NotALeader-style removal empties the writers: the next write refreshes. */
    driver_forget(d, "neo4j", bt_address(), 1);
    table_expiry(d, "neo4j", &writers);
    CHECK_EQ_INT(writers, 0);
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    CHECK_EQ_STR(bolt_conn_address(c), bt_address());
    bolt_driver_release(d, c);
    table_expiry(d, "neo4j", &writers);
    CHECK_EQ_INT(writers, 1);
    bolt_driver_free(d);
}

static bolt_enc *rows_of_keys(int n) {
    bolt_enc *e = bolt_enc_new();
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, (size_t)n);
    for (int i = 1; i <= n; i++) {
        bolt_enc_map_begin(e, 1);
        bolt_enc_string(e, "k");
        bolt_enc_int(e, i);
    }
    return e;
}

TEST(session_write_batch_counts_and_does_not_retry_client_errors) {
    bolt_driver *d = new_driver("bolt", 4);
    bolt_error err;
    cleanup(d, "BoltTestWB");
    bolt_enc *e = rows_of_keys(100);
    bolt_summary s;
    OK(bolt_session_write_batch(d, NULL, "UNWIND $rows AS r MERGE (n:BoltTestWB {k: r.k})", e,
                                &s, &err));
    CHECK_EQ_INT(s.counters.nodes_created, 100);
    CHECK(s.bookmark[0] != 0);
    OK(bolt_session_write_batch(d, NULL, "UNWIND $rows AS r MERGE (n:BoltTestWB {k: r.k})", e,
                                &s, &err));
    CHECK_EQ_INT(s.counters.nodes_created, 0);   /* idempotent */
    CHECK_EQ_INT(bolt_session_write_batch(d, NULL, "UNWIND $rows AS r MERGE (n:BoltTestWB {k: r.k}",
                                          e, &s, &err), BOLT_ESERVER);
    CHECK_EQ_INT(s.attempts, 1);
    bolt_enc_free(e);
    cleanup(d, "BoltTestWB");
    bolt_driver_free(d);
}

typedef struct holder { bolt_driver *d; pthread_barrier_t *go; } holder;

/* Locks k=2, lets the batch start (it locks 1, then waits for 2), then asks for 1. */
static void *hold_two_then_one(void *arg) {
    holder *h = arg;
    bolt_conn *c;
    if (bolt_driver_acquire(h->d, NULL, 0, &c, NULL)) {
        pthread_barrier_wait(h->go);
        return NULL;
    }
    bolt_begin(c, NULL, NULL);
    bolt_query(c, "MATCH (n:BoltTestWBD {k: 2}) SET n.a = 1", NULL, NULL, NULL, NULL, NULL, NULL);
    pthread_barrier_wait(h->go);
    struct timespec ts = {0, 300 * 1000000};
    nanosleep(&ts, NULL);
    int rc = bolt_query(c, "MATCH (n:BoltTestWBD {k: 1}) SET n.a = 1", NULL, NULL, NULL, NULL,
                        NULL, NULL);
    if (rc) bolt_rollback(c, NULL);
    else bolt_commit(c, NULL);
    bolt_driver_release(h->d, c);
    return NULL;
}

TEST(session_write_batch_survives_deadlock) {
    bolt_driver *d = new_driver("bolt", 4);
    bolt_error err;
    cleanup(d, "BoltTestWBD");
    bolt_conn *c;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    OK(bolt_query(c, "CREATE (:BoltTestWBD {k: 1}), (:BoltTestWBD {k: 2})", NULL, NULL, NULL,
                  NULL, NULL, &err));
    bolt_driver_release(d, c);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    holder h = {d, &go};
    pthread_t t;
    pthread_create(&t, NULL, hold_two_then_one, &h);
    pthread_barrier_wait(&go);
    bolt_enc *e = rows_of_keys(2);
    bolt_summary s;
    int rc = bolt_session_write_batch(d, NULL, "UNWIND $rows AS r MATCH (n:BoltTestWBD {k: r.k}) "
                                      "SET n.b = 1", e, &s, &err);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&go);
    bolt_enc_free(e);
    CHECKF(rc == BOLT_OK, "%s: %s", bolt_code_name(rc), err.message);
    CHECK_EQ_INT(s.counters.properties_set, 2);
    cleanup(d, "BoltTestWBD");
    bolt_driver_free(d);
}
