/* engine_test.c: the batch engine (src/pipeline/engine.h) driven in-process with stand-ins
 * for every server: the contiguous watermark, write batches cut by purchases, the poison
 * split, duplicates in the batch and in the cache, outage waits, shutdown, rebalance,
 * dead letters, log_only; and the Kafka side's error events (an authentication error is an
 * event, never a record). No server, no sleeping: the clock and the sleeps are stand-ins.
 *
 * Records are real receipts packed with protobuf-c (record_test_util.h); each record's
 * handle is a malloc'd token that the stand-in release frees, so ASan's leak check proves
 * every record is released exactly once whatever path it took. */
#define TEST_MAIN
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/consumer_internal.h"
#include "pipeline/engine_internal.h"
#include "record_test_util.h"

#define MAXP 8

/* ------------------------------------------------------------------ stand-ins */

static struct stub {
    long long now;
    int sleeps;
    bool stopping;
    int stop_after_sleeps;         /* > 0: stopping once this many sleeps happened */
    int graph_down;                /* the next graph_write calls fail as an outage */
    int fail_until_writers;        /* see fail_for_writers */
    int enrich_down, dlq_down, registry_down;
    bool idem_down;
    int writes;                    /* graph_write calls */
    size_t write_sizes[64];
    char written[256][32];         /* ids persisted, in order */
    size_t nwritten;
    char cached[64][32];           /* ids in the idempotency cache */
    char cached_val[64][32];       /* and their values: "<topic>/<partition>/<offset>" */
    size_t ncached;
    int letters;
    char letter_reason[32][32];
    int64_t stored[MAXP];          /* last offset stored per partition, -1 none */
    int stores;
    const char *lines_probe;       /* set: lines holding it already written at each store, */
    int lines_at_store;
    int lines_at_write[8];         /* at each graph_write call */
    int lines_at_mark;             /* and at the idempotency marks */
    int released;
    char enriched[64][32];         /* fidos of the last enrich_products call, in order */
    size_t nenriched;
} S;

static int lines_with(const char *text);
static FILE *logf_;

static int nfailed_by;             /* threads that saw S.fail_until_writers' outage */
static int nslept_by;              /* of those, the ones that paused to retry */

static void stub_reset(void) {
    memset(&S, 0, sizeof S);
    nfailed_by = 0;
    nslept_by = 0;
    for (int i = 0; i < MAXP; i++) S.stored[i] = -1;
}

static registry_verdict schema_check(void *ctx, int32_t id, char *why, size_t len) {
    (void)ctx; (void)id;
    if (S.registry_down-- > 0) { snprintf(why, len, "down"); return REGISTRY_UNAVAILABLE; }
    return REGISTRY_ACCEPTED;
}

static bool in_rollout(void *ctx, const char *user) {
    (void)ctx;
    return strncmp(user, "out", 3) != 0;
}

static int idem_check(void *ctx, const char *const *ids, size_t n, bool *seen, char *err,
                      size_t len) {
    (void)ctx;
    if (S.idem_down) { snprintf(err, len, "down"); return -1; }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < S.ncached; j++)
            if (!strcmp(ids[i], S.cached[j])) seen[i] = true;
    return 0;
}

static int idem_mark(void *ctx, const char *const *ids, const char *const *vals, size_t n,
                     char *err, size_t len) {
    (void)ctx;
    if (S.idem_down) { snprintf(err, len, "down"); return -1; }
    if (logf_ && S.lines_probe) S.lines_at_mark = lines_with(S.lines_probe);
    for (size_t i = 0; i < n && S.ncached < 64; i++) {
        snprintf(S.cached_val[S.ncached], 32, "%s", vals[i]);
        snprintf(S.cached[S.ncached++], 32, "%s", ids[i]);
    }
    return 0;
}

static enum enrich_status enrich(const char *const *ids, size_t n, struct enrich_results *out,
                                 bool products) {
    if (S.enrich_down-- > 0) {
        snprintf(out->error, sizeof out->error, "down");
        return ENRICH_EUNAVAILABLE;
    }
    out->count = n;
    if (products) S.nenriched = 0;
    for (size_t i = 0; products && i < n && S.nenriched < 64; i++)
        snprintf(S.enriched[S.nenriched++], 32, "%s", ids[i]);
    if (products) {
        out->products = calloc(n ? n : 1, sizeof *out->products);
        for (size_t i = 0; i < n; i++) out->products[i].fido = strdup(ids[i]);
    } else {
        out->retailers = calloc(n ? n : 1, sizeof *out->retailers);
        for (size_t i = 0; i < n; i++) out->retailers[i].retailer_id = strdup(ids[i]);
    }
    return ENRICH_OK;
}

static enum enrich_status products(void *ctx, const char *const *ids, size_t n,
                                   struct enrich_results *out) {
    (void)ctx;
    return enrich(ids, n, out, true);
}

static enum enrich_status retailers(void *ctx, const char *const *ids, size_t n,
                                    struct enrich_results *out) {
    (void)ctx;
    return enrich(ids, n, out, false);
}

/* The writer-thread test holds transactions until it opens the gate. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static int gate_waiting;

static void gate_pass(void) {
    pthread_mutex_lock(&gate_mu);
    gate_waiting++;
    pthread_cond_broadcast(&gate_cv);
    while (gate_closed) pthread_cond_wait(&gate_cv, &gate_mu);
    gate_waiting--;
    pthread_mutex_unlock(&gate_mu);
}

static void gate_set(bool closed) {
    pthread_mutex_lock(&gate_mu);
    gate_closed = closed;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Waits until n transactions are held at the gate. */
static void gate_wait_for_writers(int n) {
    pthread_mutex_lock(&gate_mu);
    while (gate_waiting < n) pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
}

static void gate_wait_for_writer(void) { gate_wait_for_writers(1); }

/* Two writers call the stand-ins at once: S's Neo4j and clock parts are kept under stub_mu.
 * S.fail_until_writers > 0: every call fails as an outage until that many distinct threads
 * have failed (two writers seeing one outage). */
static pthread_mutex_t stub_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t failed_by[4];

static bool fail_for_writers(void) {
    if (nfailed_by >= S.fail_until_writers) return false;
    for (int i = 0; i < nfailed_by; i++)
        if (pthread_equal(failed_by[i], pthread_self())) return true;
    failed_by[nfailed_by++] = pthread_self();
    return true;
}

static int graph_write_locked(const graph_batch *b, graph_stats *st, bolt_error *be);

static int graph_write_stub(void *ctx, graph_scratch *scratch, const graph_batch *b,
                            graph_stats *st, bolt_error *be) {
    (void)scratch;
    (void)ctx;
    gate_pass();
    pthread_mutex_lock(&stub_mu);
    int rc = graph_write_locked(b, st, be);
    pthread_mutex_unlock(&stub_mu);
    return rc;
}

/* A purchase whose id starts with "poison" makes Neo4j refuse any batch holding it. */
static int graph_write_locked(const graph_batch *b, graph_stats *st, bolt_error *be) {
    memset(be, 0, sizeof *be);
    st->attempts = 1;
    if (S.writes < 64) S.write_sizes[S.writes] = b->npurchases;
    if (logf_ && S.lines_probe && S.writes < 8) S.lines_at_write[S.writes] = lines_with(S.lines_probe);
    S.writes++;
    if (S.graph_down-- > 0 || fail_for_writers()) {
        be->code = BOLT_ECONNECT;
        snprintf(be->message, sizeof be->message, "connection refused");
        return BOLT_ECONNECT;
    }
    for (size_t i = 0; i < b->npurchases; i++)
        if (!strncmp(b->purchases[i]->id, "poison", 6)) {
            be->code = BOLT_ESERVER;
            snprintf(be->neo4j_code, sizeof be->neo4j_code,
                     "Neo.ClientError.Schema.ConstraintValidationFailed");
            snprintf(be->message, sizeof be->message, "refused");
            return BOLT_ESERVER;
        }
    for (size_t i = 0; i < b->npurchases; i++) {
        if (S.nwritten < 256) snprintf(S.written[S.nwritten++], 32, "%s", b->purchases[i]->id);
        if (b->existed) b->existed[i] = 0;
    }
    return BOLT_OK;
}

static int dead_letter(void *ctx, const struct engine_letter *l, size_t n, char *err,
                       size_t len) {
    (void)ctx;
    if (S.dlq_down-- > 0) { snprintf(err, len, "down"); return -1; }
    for (size_t i = 0; i < n; i++) {
        if (S.letters < 32) snprintf(S.letter_reason[S.letters], 32, "%s", l[i].reason);
        S.letters++;
        CHECK(l[i].handle != NULL);   /* the record itself goes to the topic */
    }
    return 0;
}

static void store_offsets(void *ctx, const struct engine_offset *o, size_t n) {
    (void)ctx;
    if (logf_ && S.lines_probe) S.lines_at_store = lines_with(S.lines_probe);
    for (size_t i = 0; i < n; i++) {
        CHECK(o[i].partition >= 0 && o[i].partition < MAXP);
        CHECK(o[i].offset > S.stored[o[i].partition]);   /* never backwards */
        S.stored[o[i].partition] = o[i].offset;
    }
    S.stores++;
}

static void release(void *ctx, void *handle) {
    (void)ctx;
    free(handle);
    S.released++;
}

/* With S.fail_until_writers, a writer's retry pause waits until every writer has reported
 * its failure (they report before they pause): so none retries, succeeds and ends the outage
 * before the other's failure is in, which a real back-off of 200 ms and more makes sure of. */
static pthread_cond_t sleep_cv = PTHREAD_COND_INITIALIZER;
static pthread_t slept_by[4];

static void wait_for_every_writers_failure(void) {
    bool known = false;
    for (int i = 0; i < nslept_by; i++) known |= pthread_equal(slept_by[i], pthread_self());
    if (!known && nslept_by < 4) slept_by[nslept_by++] = pthread_self();
    pthread_cond_broadcast(&sleep_cv);
    while (nslept_by < S.fail_until_writers) pthread_cond_wait(&sleep_cv, &stub_mu);
}

static bool sleep_stub(void *ctx, long ms) {
    (void)ctx;
    pthread_mutex_lock(&stub_mu);
    if (S.fail_until_writers) wait_for_every_writers_failure();
    S.now += ms;
    S.sleeps++;
    if (S.stop_after_sleeps && S.sleeps >= S.stop_after_sleeps) S.stopping = true;
    bool stop = S.stopping;
    pthread_mutex_unlock(&stub_mu);
    return stop;
}

static bool stopping(void *ctx) { (void)ctx; return S.stopping; }

static long long now_ms(void *ctx) { (void)ctx; return S.now; }

/* ------------------------------------------------------------------ the engine under test */

static struct metrics_registry *reg;
static consumer_metrics M;
static consumer_status ST;

/* Fresh stand-ins, metrics and status; o filled with every stand-in (no dead-letter topic). */
static void stub_options(struct engine_options *o) {
    stub_reset();
    if (reg) metrics_free_registry(reg);
    reg = metrics_new_registry();
    memset(&M, 0, sizeof M);
    consumer_metrics_register(&M, reg, "receipt", CONSUMER_RECEIPT, NULL);
    status_init(&ST, "receipt", "t", "g");
    watch_init(&ST.watch, "receipt", 3000, NULL, NULL);
    ST.metrics = &M;
    engine_options_init(o);
    o->name = "receipt";
    o->topic = "t";
    o->batch_size = 500;
    o->linger_ms = 200;
    o->metrics = &M;
    o->status = &ST;
    o->deps = (struct engine_deps){
        .schema_check = schema_check, .in_rollout = in_rollout, .idem_check = idem_check,
        .idem_mark = idem_mark, .enrich_products = products, .enrich_retailers = retailers,
        .graph_write = graph_write_stub, .store_offsets = store_offsets, .release = release,
        .sleep = sleep_stub, .stopping = stopping, .now_ms = now_ms};
}

static struct engine *start(const struct engine_options *o) {
    char err[128];
    struct engine *e = engine_new(o, err, sizeof err);
    CHECK(e != NULL);
    return e;
}

static struct engine *new_engine_on(size_t batch_size, bool with_dlq, bool writer) {
    struct engine_options o;
    stub_options(&o);
    o.batch_size = batch_size;
    o.writer_thread = writer;
    if (with_dlq) {
        o.dlq_topic = "dlq";
        o.deps.dead_letter = dead_letter;
    }
    return start(&o);
}

static struct engine *new_engine(size_t batch_size, bool with_dlq) {
    return new_engine_on(batch_size, with_dlq, false);
}

static void end_engine(struct engine *e) {
    engine_free(e);
    status_destroy(&ST);
    metrics_free_registry(reg);
    reg = NULL;
}

/* Records: "p:<id>" a purchase of user-1, "out:<id>" one of a user out of the rollout,
 * "skip" a digital receipt, "bad" an undecodable value. */
static bool add(struct engine *e, int32_t partition, int64_t offset, const char *what) {
    rt_receipt r;
    rt_receipt_init(&r);
    size_t len = 0;
    uint8_t *v;
    if (!strcmp(what, "bad")) {
        v = malloc(3);
        memcpy(v, "\xff\xff\xff", 3);
        len = 3;
    } else {
        if (!strcmp(what, "skip")) r.msg.digital_receipt_data = &r.digital;
        if (!strncmp(what, "out:", 4)) r.msg.user_id = "out-user";
        const char *colon = strchr(what, ':');
        r.msg.receipt_id = (char *)(colon ? colon + 1 : "skipped");
        v = rt_pack(&r.msg.base, &len);
    }
    struct engine_record rec = {.partition = partition, .offset = offset, .value = v,
                                .len = len, .header_schema_id = -1, .handle = v};
    return engine_add(e, &rec);
}

/* A purchase "p:<id>" whose lines name these fidos (lines 1..4 of rt_receipt_init). */
static void add_with_fidos(struct engine *e, int64_t offset, const char *id,
                           const char *const fidos[RT_NITEMS]) {
    rt_receipt r;
    rt_receipt_init(&r);
    for (size_t i = 0; i < RT_NITEMS; i++) r.items[i].fido = (char *)fidos[i];
    r.msg.receipt_id = (char *)id;
    size_t len = 0;
    uint8_t *v = rt_pack(&r.msg.base, &len);
    struct engine_record rec = {.partition = 0, .offset = offset, .value = v, .len = len,
                                .header_schema_id = -1, .handle = v};
    engine_add(e, &rec);
}

static uint64_t count(struct metrics_counter *c) { return metrics_read_counter(c); }

/* ------------------------------------------------------------------ watermark alone */

TEST(watermark_is_the_contiguous_settled_prefix) {
    struct watermark *w = watermark_new();
    struct engine_offset o[4];
    for (int64_t off = 10; off < 15; off++) CHECK(watermark_track(w, 0, off) == 0);
    CHECK(watermark_track(w, 1, 7) == 0);
    watermark_settle(w, 0, 12);
    watermark_settle(w, 0, 11);
    CHECK_EQ_INT(watermark_take(w, o, 4), 0);        /* 10 still open */
    watermark_settle(w, 0, 10);
    CHECK_EQ_INT(watermark_take(w, o, 4), 1);
    CHECK_EQ_INT(o[0].partition, 0);
    CHECK_EQ_INT(o[0].offset, 13);                   /* 10, 11, 12 settled: next is 13 */
    CHECK_EQ_INT(watermark_take(w, o, 4), 0);        /* reported once */
    watermark_settle(w, 1, 7);
    watermark_settle(w, 0, 99);                      /* unknown: ignored */
    CHECK_EQ_INT(watermark_take(w, o, 4), 1);
    CHECK_EQ_INT(o[0].offset, 8);
    watermark_drop(w, 0);                            /* revoked: 13, 14 forgotten */
    CHECK_EQ_INT(watermark_tracked(w), 0);
    watermark_settle(w, 0, 13);
    CHECK_EQ_INT(watermark_take(w, o, 4), 0);
    watermark_free(w);
}

TEST(watermark_grows_past_its_first_ring) {
    struct watermark *w = watermark_new();
    struct engine_offset o[1];
    for (int64_t off = 0; off < 1000; off += 2) CHECK(watermark_track(w, 3, off) == 0);
    for (int64_t off = 998; off >= 2; off -= 2) watermark_settle(w, 3, off);
    CHECK_EQ_INT(watermark_take(w, o, 1), 0);
    watermark_settle(w, 3, 0);
    CHECK_EQ_INT(watermark_take(w, o, 1), 1);
    CHECK_EQ_INT(o[0].offset, 999);                  /* gaps in the offsets are fine */
    watermark_free(w);
}

/* ------------------------------------------------------------------ batches and offsets */

TEST(skips_settle_at_once_but_are_not_committed_past_an_unwritten_purchase) {
    struct engine *e = new_engine(500, false);
    add(e, 0, 0, "p:r1");
    add(e, 0, 1, "skip");
    add(e, 0, 2, "skip");
    add(e, 1, 0, "skip");
    add(e, 1, 1, "out:r9");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.writes, 0);                       /* linger not over: no transaction */
    CHECK_EQ_INT(S.stored[1], 2);                    /* partition 1: both skips committed */
    CHECK_EQ_INT(S.stored[0], -1);                   /* partition 0 waits for r1 */
    CHECK_EQ_INT(engine_open_purchases(e), 1);
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_NOT_IN_ROLLOUT]), 1);
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_DIGITAL]), 3);
    S.now += 150;
    CHECK(engine_poll_ms(e, 500) == 50);             /* the poll ends with the linger time */
    S.now += 50;
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.writes, 1);
    CHECK_EQ_INT(S.stored[0], 3);                    /* r1 written: 0..2 all committed */
    CHECK_EQ_INT(count(M.persisted), 1);
    CHECK_EQ_INT(engine_pending(e), 0);
    CHECK_EQ_INT(S.released, 5);
    end_engine(e);
}

TEST(a_write_batch_holds_batch_size_purchases_across_polls) {
    struct engine *e = new_engine(3, false);
    char id[16];
    int64_t off = 0;
    for (int round = 0; round < 4; round++) {        /* 4 polls of 5 skips and 2 purchases */
        for (int k = 0; k < 5; k++) add(e, 0, off++, "skip");
        for (int k = 0; k < 2; k++) {
            snprintf(id, sizeof id, "p:r%lld", (long long)off);
            add(e, 0, off++, id);
        }
        CHECK(engine_run(e) == 0);
    }
    CHECK_EQ_INT(S.writes, 2);                       /* 8 purchases: two full batches of 3 */
    CHECK_EQ_INT(S.write_sizes[0], 3);
    CHECK_EQ_INT(S.write_sizes[1], 3);
    CHECK_EQ_INT(engine_open_purchases(e), 2);
    CHECK_EQ_INT(S.stored[0], 26);                   /* up to the open batch's first purchase */
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.writes, 3);
    CHECK_EQ_INT(S.stored[0], 28);
    CHECK_EQ_INT(count(M.persisted), 8);
    end_engine(e);
}

/* The batch's fidos reach the enrichment once each, in strcmp order (graph.h's lock order):
 * ids shorter than, as long as and longer than the 8 bytes the sort compares first, sharing
 * those 8 bytes, and bytes past 0x7F. */
TEST(the_batchs_fidos_are_enriched_once_each_in_strcmp_order) {
    struct engine *e = new_engine(3, false);
    const char *const a[RT_NITEMS] = {"F10", "ABCDEFGHIJ", "F1", "ABCDEFGH"};
    const char *const b[RT_NITEMS] = {"ABCDEFGHIA", "F1", "\xc3\xa9t\xc3\xa9", "F10"};
    const char *const c[RT_NITEMS] = {"ABCDEFGHIJ", "F2", "ABCDEFG", "ABCDEFGHIJK"};
    add_with_fidos(e, 0, "r1", a);
    add_with_fidos(e, 1, "r2", b);
    add_with_fidos(e, 2, "r3", c);
    CHECK(engine_run(e) == 0);
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.writes, 1);
    const char *want[] = {"ABCDEFG", "ABCDEFGH", "ABCDEFGHIA", "ABCDEFGHIJ", "ABCDEFGHIJK",
                          "F1", "F10", "F2", "\xc3\xa9t\xc3\xa9"};
    CHECK_EQ_INT(S.nenriched, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < S.nenriched && i < sizeof want / sizeof want[0]; i++)
        CHECK_EQ_STR(S.enriched[i], want[i]);
    end_engine(e);
}

TEST(a_poisonous_purchase_is_split_out_and_dead_lettered) {
    struct engine *e = new_engine(4, true);
    add(e, 0, 0, "p:a");
    add(e, 0, 1, "p:poison1");
    add(e, 0, 2, "p:b");
    add(e, 0, 3, "p:c");
    CHECK(engine_run(e) == 0);
    /* 4 refused; halves [a, poison] refused, [a] ok, [poison] refused alone; [b, c] ok */
    CHECK_EQ_INT(S.writes, 5);
    CHECK_EQ_INT(S.nwritten, 3);
    CHECK_EQ_INT(S.letters, 1);
    CHECK_EQ_STR(S.letter_reason[0], "neo4j_refused");
    CHECK_EQ_INT(count(M.graph_splits), 2);
    CHECK_EQ_INT(count(M.errors_graph), 1);
    CHECK_EQ_INT(count(M.persisted), 3);
    CHECK_EQ_INT(count(M.dead_lettered[4]), 1);
    CHECK_EQ_INT(S.stored[0], 4);
    CHECK_EQ_INT(S.ncached, 3);                      /* only the persisted are marked */
    CHECK_EQ_STR(S.cached_val[2], "t/0/3");          /* where each was read */
    end_engine(e);
}

TEST(duplicates_in_the_batch_and_in_the_cache_are_skipped) {
    struct engine *e = new_engine(500, false);
    snprintf(S.cached[S.ncached++], 32, "old");
    add(e, 0, 0, "p:x");
    add(e, 0, 1, "p:x");                             /* same chunk */
    CHECK(engine_run(e) == 0);
    add(e, 1, 0, "p:x");                             /* a later poll, the batch still open */
    add(e, 1, 1, "p:old");                           /* written before: in the cache */
    add(e, 1, 2, "p:y");
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.writes, 1);
    CHECK_EQ_INT(S.nwritten, 2);
    CHECK_EQ_STR(S.written[0], "x");
    CHECK_EQ_STR(S.written[1], "y");
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_DUPLICATE]), 3);
    CHECK_EQ_INT(S.stored[0], 2);
    CHECK_EQ_INT(S.stored[1], 3);
    /* the batch is written and marked: the next copy is the cache's duplicate */
    add(e, 0, 2, "p:x");
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.writes, 1);
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_DUPLICATE]), 4);
    end_engine(e);
}

TEST(without_valkey_every_purchase_goes_on) {
    struct engine *e = new_engine(500, false);
    S.idem_down = true;
    add(e, 0, 0, "p:x");
    add(e, 0, 1, "p:y");
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.nwritten, 2);
    CHECK(count(M.idem_unavailable) >= 1);
    CHECK_EQ_INT(S.stored[0], 2);
    end_engine(e);
}

/* ------------------------------------------------------------------ outages, shutdown */

TEST(a_neo4j_outage_waits_and_retries_without_committing) {
    struct engine *e = new_engine(2, false);
    S.graph_down = 3;
    add(e, 0, 0, "p:a");
    add(e, 0, 1, "p:b");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.writes, 4);                       /* 3 failures, then written */
    CHECK_EQ_INT(S.sleeps, 3);                       /* a back-off between attempts */
    CHECK_EQ_INT(count(M.graph_failures), 3);
    CHECK_EQ_INT(S.stored[0], 2);
    CHECK(watch_outage(&ST.watch, SERVER_NEO4J) == false);   /* ended by the success */
    end_engine(e);
}

TEST(an_enrichment_outage_waits_before_anything_is_written) {
    struct engine *e = new_engine(1, false);
    S.enrich_down = 2;
    add(e, 0, 0, "p:a");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(count(M.enrich_unavailable), 2);
    CHECK_EQ_INT(S.writes, 1);
    CHECK_EQ_INT(S.stored[0], 1);
    end_engine(e);
}

TEST(shutdown_during_an_outage_abandons_the_batch_uncommitted) {
    struct engine *e = new_engine(2, false);
    S.graph_down = 1000;
    S.stop_after_sleeps = 2;
    add(e, 0, 0, "skip");
    add(e, 0, 1, "p:a");
    add(e, 0, 2, "skip");
    add(e, 0, 3, "p:b");
    CHECK(engine_run(e) == -1);
    CHECK_EQ_INT(S.stored[0], 1);                    /* the first skip only */
    CHECK_EQ_INT(count(M.persisted), 0);
    CHECK_EQ_INT(S.released, 4);                     /* everything released, nothing leaks */
    end_engine(e);
}

/* stub_options for the factoid consumer, with its metrics (its skip reasons). */
static void factoid_options(struct engine_options *o) {
    stub_options(o);
    metrics_free_registry(reg);
    reg = metrics_new_registry();
    memset(&M, 0, sizeof M);
    consumer_metrics_register(&M, reg, "factoid", CONSUMER_FACTOID, NULL);
    o->name = "factoid";
    o->factoids = true;
}

TEST(a_schema_registry_outage_makes_the_record_wait) {
    struct engine_options o;
    factoid_options(&o);
    struct engine *e = start(&o);
    S.registry_down = 2;
    rt_factoid f;
    rt_factoid_init(&f);
    size_t len;
    static const uint8_t frame[] = {0, 0, 0, 0, 7, 0};
    uint8_t *v = rt_pack_framed(&f.msg.base, frame, sizeof frame, &len);
    struct engine_record rec = {.partition = 0, .offset = 0, .value = v, .len = len,
                                .header_schema_id = -1, .handle = v};
    engine_add(e, &rec);
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.sleeps, 2);
    CHECK_EQ_INT(S.writes, 1);
    CHECK_EQ_INT(S.stored[0], 1);
    end_engine(e);
}

/* ------------------------------------------------------------------ dead letters */

TEST(an_undecodable_record_is_committed_only_once_dead_lettered) {
    struct engine *e = new_engine(500, true);
    S.dlq_down = 2;
    add(e, 0, 0, "bad");
    add(e, 0, 1, "skip");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.sleeps, 2);                       /* waited for the topic */
    CHECK_EQ_INT(S.letters, 1);
    CHECK_EQ_STR(S.letter_reason[0], "undecodable");
    CHECK_EQ_INT(count(M.errors_decode), 1);
    CHECK_EQ_INT(S.stored[0], 2);
    end_engine(e);
}

/* ------------------------------------------------------------------ rebalance, log_only */

TEST(a_revoked_partition_is_abandoned_uncommitted) {
    struct engine *e = new_engine(500, false);
    add(e, 0, 0, "p:a");
    add(e, 0, 1, "skip");
    add(e, 1, 0, "p:b");
    add(e, 1, 1, "skip");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(engine_open_purchases(e), 2);
    int32_t gone[] = {0};
    engine_revoke(e, gone, 1);
    CHECK_EQ_INT(engine_open_purchases(e), 1);
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.nwritten, 1);
    CHECK_EQ_STR(S.written[0], "b");
    CHECK_EQ_INT(S.stored[0], -1);                   /* nothing of partition 0 committed */
    CHECK_EQ_INT(S.stored[1], 2);
    /* the partition comes back, from its committed offset: read again, written */
    add(e, 0, 0, "p:a");
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.stored[0], 1);
    end_engine(e);
}

TEST(revoking_a_partition_mid_chunk_keeps_the_others) {
    struct engine *e = new_engine(500, false);
    add(e, 2, 5, "p:a");
    add(e, 3, 9, "p:b");
    int32_t gone[] = {2};
    engine_revoke(e, gone, 1);                       /* the callback runs inside a poll */
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.nwritten, 1);
    CHECK_EQ_STR(S.written[0], "b");
    CHECK_EQ_INT(S.stored[2], -1);
    CHECK_EQ_INT(S.stored[3], 10);
    end_engine(e);
}

TEST(log_only_writes_nothing_and_commits_nothing) {
    struct engine_options o;
    stub_options(&o);
    o.log_only = true;
    struct engine *e = start(&o);
    add(e, 0, 0, "p:a");
    add(e, 0, 1, "skip");
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.writes, 0);
    CHECK_EQ_INT(S.stores, 0);
    CHECK_EQ_INT(S.released, 2);
    CHECK_EQ_INT(engine_pending(e), 0);
    end_engine(e);
}

TEST(the_batch_is_cut_by_bytes_too) {
    struct engine_options o;
    stub_options(&o);
    o.batch_max_bytes = 1;                           /* every purchase is a batch alone */
    struct engine *e = start(&o);
    add(e, 0, 0, "p:a");
    add(e, 0, 1, "p:b");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.writes, 2);
    CHECK_EQ_INT(S.write_sizes[0], 1);
    end_engine(e);
}

TEST(records_held_back_by_a_purchase_are_bounded) {
    struct engine_options o;
    stub_options(&o);
    o.max_tracked = 3;
    struct engine *e = start(&o);
    CHECK(!add(e, 0, 0, "p:a"));
    CHECK(!add(e, 0, 1, "skip"));
    CHECK(add(e, 0, 2, "skip"));                     /* at the bound: run me */
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.writes, 1);                       /* the batch is cut early */
    CHECK_EQ_INT(S.stored[0], 3);
    CHECK_EQ_INT(engine_pending(e), 0);
    end_engine(e);
}

/* ------------------------------------------------------------------ the writer thread */

TEST(the_next_batch_is_prepared_while_the_writer_holds_one) {
    struct engine *e = new_engine_on(2, false, true);
    gate_set(true);
    add(e, 0, 0, "p:a");
    add(e, 1, 0, "p:b");
    CHECK(engine_run(e) == 0);                       /* full: handed to the writer */
    gate_wait_for_writer();                          /* its transaction is in flight */
    CHECK(engine_poll_ms(e, 500) <= 20);             /* back soon to finish it */
    add(e, 0, 1, "p:a");                             /* a copy of a purchase in flight */
    add(e, 0, 2, "skip");
    add(e, 0, 3, "p:c");
    add(e, 1, 1, "skip");
    CHECK(engine_run(e) == 0);                       /* not blocked by the transaction */
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_DUPLICATE]), 1);
    CHECK_EQ_INT(engine_open_purchases(e), 1);
    CHECK_EQ_INT(S.stored[0], -1);                   /* a is not written yet */
    CHECK_EQ_INT(ST.write_watch[0].server, SERVER_NEO4J);   /* the writer's own watch */
    int32_t gone[] = {1};
    engine_revoke(e, gone, 1);                       /* b in flight: never committed now */
    gate_set(false);
    CHECK(engine_flush(e) == 0);                     /* the writer drained, c written too */
    CHECK_EQ_INT(S.writes, 2);
    CHECK_EQ_STR(S.written[0], "a");
    CHECK_EQ_STR(S.written[1], "b");
    CHECK_EQ_STR(S.written[2], "c");                 /* in the order they were cut */
    CHECK_EQ_INT(S.stored[0], 4);
    CHECK_EQ_INT(S.stored[1], -1);
    CHECK_EQ_INT(count(M.persisted), 3);
    CHECK(!engine_writer_busy(e));
    end_engine(e);
}

TEST(shutdown_abandons_the_writers_batch_uncommitted) {
    struct engine *e = new_engine_on(1, false, true);
    S.graph_down = 1000;
    S.stop_after_sleeps = 3;
    add(e, 0, 0, "p:a");
    CHECK(engine_run(e) == 0);                       /* handed over; the writer waits */
    CHECK(engine_flush(e) == -1);                    /* stopping: abandoned */
    CHECK_EQ_INT(S.stored[0], -1);
    CHECK_EQ_INT(S.released, 1);
    CHECK_EQ_INT(count(M.persisted), 0);
    end_engine(e);
}

/* ------------------------------------------------------------------ Kafka error events */


static int lines_with(const char *text) {
    char line[2048];
    int n = 0;
    fflush(logf_);
    rewind(logf_);
    while (fgets(line, sizeof line, logf_))
        if (strstr(line, text)) n++;
    fseek(logf_, 0, SEEK_END);
    return n;
}

/* The worker's log into a temporary file (logf_) that lines_with reads, and back to stdout;
 * probe: the lines that the stand-ins count as they are called (S.lines_at_*), or NULL. */
static void log_to_file(enum log_level level, const char *probe) {
    S.lines_probe = probe;
    logf_ = tmpfile();
    log_configure(LOG_FORMAT_LOGFMT, level, NULL);
    log_set_output(fileno(logf_));
}

static void log_back(void) {
    S.lines_probe = NULL;
    log_set_output(1);
    fclose(logf_);
    logf_ = NULL;
}

/* The bug: collect() logged an authentication error event, then fell through and put it
 * into the batch as a record (decoded as garbage, dead-lettered, its "offset" stored). */
TEST(a_kafka_authentication_error_is_an_event_never_a_record) {
    log_to_file(LOG_INFO, NULL);
    rd_kafka_message_t m;
    memset(&m, 0, sizeof m);
    m.err = RD_KAFKA_RESP_ERR__AUTHENTICATION;
    m.partition = -1;
    m.offset = -1;
    CHECK(!consumer_message_is_record(&m));
    bool fatal = false;
    consumer_message_event("receipt", &m, &fatal);
    CHECK_EQ_INT(lines_with("[ERROR] Kafka authentication failed"), 1);
    CHECK(!fatal);
    m.err = RD_KAFKA_RESP_ERR__FATAL;
    CHECK(!consumer_message_is_record(&m));
    consumer_message_event("receipt", &m, &fatal);
    CHECK(fatal);
    m.err = RD_KAFKA_RESP_ERR__PARTITION_EOF;
    CHECK(!consumer_message_is_record(&m));
    m.err = RD_KAFKA_RESP_ERR_NO_ERROR;
    CHECK(consumer_message_is_record(&m));
    log_back();
}

/* ------------------------------------------------------------------ skip log lines */

/* The consumer thread holds its per-record lines (log_hold) and librdkafka may commit a
 * stored offset at once, from its own thread: every line of a record is written before its
 * offset is stored, so a kill -9 loses no line of a committed record. */
TEST(a_records_lines_are_written_before_its_offset_is_stored) {
    struct engine *e = new_engine(2, false);
    log_to_file(LOG_INFO, "[SUCCESS] Persisted graph data");
    add(e, 0, 0, "skip");
    add(e, 0, 1, "p:r1");
    add(e, 0, 2, "p:r2");
    log_hold();                          /* as the consumer thread does around its steps */
    CHECK(engine_run(e) == 0);
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(S.stored[0], 3);
    CHECK_EQ_INT(S.lines_at_store, 2);
    S.lines_probe = "[WARN] Skipping receipt";
    add(e, 0, 3, "skip");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(S.stored[0], 4);
    CHECK_EQ_INT(S.lines_at_store, 2);
    log_release();
    end_engine(e);
    log_back();
}

/* A transaction's [SUCCESS] lines are written the moment it commits, by the thread that
 * committed it, even while that thread's caller holds its lines: before the next
 * transaction (a split batch's second half) and before the idempotency marks and anything
 * else of the batch's finish. They used to wait for the consumer thread's finish, and a kill -9
 * in between lost a batch of lines for purchases that were in the graph (test_e2e_takeover
 * counted 150 + 752 lines for 952 purchases in 2 of 4 CI runs). */
static void lines_follow_each_commit(bool writer_thread) {
    struct engine *e = new_engine_on(4, true, writer_thread);
    log_to_file(LOG_INFO, "[SUCCESS] Persisted graph data");
    add(e, 0, 0, "p:a");
    add(e, 0, 1, "p:poison1");
    add(e, 0, 2, "p:b");
    add(e, 0, 3, "p:c");
    log_hold();                          /* as the consumer thread does around its steps */
    CHECK(engine_run(e) == 0);
    CHECK(engine_flush(e) == 0);
    /* writes: [a poison b c] [a poison] refused, [a] ok, [poison] refused, [b c] ok */
    CHECK_EQ_INT(S.writes, 5);
    CHECK_EQ_INT(S.lines_at_write[2], 0);
    CHECK_EQ_INT(S.lines_at_write[3], 1);   /* a's line, before the next transaction */
    CHECK_EQ_INT(S.lines_at_write[4], 1);
    CHECK_EQ_INT(S.lines_at_mark, 3);       /* all of them, before the batch's finish */
    CHECK_EQ_INT(count(M.persisted), 3);
    CHECK_EQ_INT(S.stored[0], 4);
    log_release();
    end_engine(e);
    log_back();
}

TEST(a_transactions_lines_are_written_when_it_commits) { lines_follow_each_commit(false); }

TEST(a_writer_threads_lines_are_written_when_it_commits) { lines_follow_each_commit(true); }

/* A factoid of another source or type (nine in ten on the topic) is counted and logged at
 * DEBUG only; a factoid without fidos and every skipped receipt stay [WARN] lines. Before,
 * the filtered factoids were 90 % of the log and a quarter of the worker's CPU. */
static void add_factoid(struct engine *e, int64_t offset, const char *what) {
    rt_factoid f;
    rt_factoid_init(&f);
    if (!strcmp(what, "play")) f.msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_PLAY;
    if (!strcmp(what, "shipped")) f.msg.type = "ORDER_SHIPPED";
    if (!strcmp(what, "nofido"))
        for (int i = 0; i < RT_NITEMS; i++) f.items[i].fido = "";
    size_t len = 0;
    uint8_t *v = rt_pack_factoid(&f, &len);
    struct engine_record rec = {.partition = 0, .offset = offset, .value = v, .len = len,
                                .header_schema_id = -1, .handle = v};
    engine_add(e, &rec);
}

static void skip_one_of_each(enum log_level level) {
    struct engine_options o;
    factoid_options(&o);
    log_to_file(level, NULL);
    struct engine *e = start(&o);
    add_factoid(e, 0, "play");
    add_factoid(e, 1, "shipped");
    add_factoid(e, 2, "nofido");
    CHECK(engine_run(e) == 0);
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_SOURCE]), 1);
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_TYPE]), 1);
    CHECK_EQ_INT(count(M.skipped[RECORD_REASON_NO_FIDOS]), 1);
    CHECK_EQ_INT(S.stored[0], 3);
    end_engine(e);
}

TEST(filtered_factoids_are_debug_lines_other_skips_warn) {
    skip_one_of_each(LOG_INFO);
    CHECK_EQ_INT(lines_with("[WARN] Skipping factoid"), 1);
    CHECK_EQ_INT(lines_with("reason=no_fidos"), 1);
    CHECK_EQ_INT(lines_with("Skipping factoid"), 1);
    log_back();
    skip_one_of_each(LOG_DEBUG);
    CHECK_EQ_INT(lines_with("msg=\"Skipping factoid\""), 2);
    CHECK_EQ_INT(lines_with("level=debug"), 2);
    CHECK_EQ_INT(lines_with("reason=source"), 1);
    CHECK_EQ_INT(lines_with("reason=type"), 1);
    CHECK_EQ_INT(lines_with("[WARN] Skipping factoid"), 1);
    log_back();
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
}

/* ------------------------------------------------------------------ two writers */

static struct engine *two_writers(size_t batch_size) {
    struct engine_options o;
    stub_options(&o);
    o.batch_size = batch_size;
    o.writer_thread = true;
    o.writers = 2;
    return start(&o);
}

/* The ids written for one partition's records ("<partition><letter>"), in write order. */
static void written_of(char partition, char *out) {
    out[0] = 0;
    for (size_t i = 0; i < S.nwritten; i++)
        if (S.written[i][0] == partition) strcat(out, S.written[i] + 1);
}

/* consumers.<name>.writers 2: partitions spread over two lanes, two transactions in flight at
 * once (both held at the gate), each partition's purchases written in their order, a revoked
 * partition's lane given to the next new partition. */
TEST(two_writers_have_two_transactions_in_flight_and_keep_each_partitions_order) {
    struct engine *e = two_writers(2);
    gate_set(true);
    add(e, 0, 0, "p:0a");
    add(e, 1, 0, "p:1a");
    add(e, 0, 1, "p:0b");
    add(e, 1, 1, "p:1b");
    CHECK(engine_run(e) == 0);                       /* both lanes full: handed over */
    gate_wait_for_writers(2);                        /* two transactions at once */
    CHECK_EQ_INT(ST.write_watch[0].server, SERVER_NEO4J);
    CHECK_EQ_INT(ST.write_watch[1].server, SERVER_NEO4J);
    CHECK(e->lane_of[0] != e->lane_of[1]);
    gate_set(false);
    add(e, 0, 2, "p:0c");
    add(e, 0, 3, "p:0d");
    add(e, 0, 4, "skip");
    add(e, 1, 2, "p:1c");
    CHECK(engine_flush(e) == 0);
    char order[32];
    written_of('0', order);
    CHECK_EQ_STR(order, "abcd");
    written_of('1', order);
    CHECK_EQ_STR(order, "abc");
    CHECK_EQ_INT(S.stored[0], 5);
    CHECK_EQ_INT(S.stored[1], 3);
    CHECK_EQ_INT(count(M.persisted), 7);
    int lane1 = e->lane_of[1];
    int32_t gone[] = {1};
    engine_revoke(e, gone, 1);
    add(e, 2, 0, "p:2a");                            /* the new partition takes the free lane */
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(e->lane_of[2], lane1);
    CHECK_EQ_INT(S.stored[2], 1);
    CHECK(!engine_writer_busy(e));
    end_engine(e);
}

/* Both writers see one Neo4j outage: one start line and one end line (the writers share the
 * first one's outage latch), every purchase written once it is back. */
TEST(two_writers_log_one_outage_once) {
    log_to_file(LOG_INFO, NULL);
    struct engine *e = two_writers(1);
    S.fail_until_writers = 2;
    add(e, 0, 0, "p:0a");
    add(e, 1, 0, "p:1a");
    CHECK(engine_run(e) == 0);
    CHECK(engine_flush(e) == 0);
    CHECK_EQ_INT(lines_with("[ERROR] Neo4j unavailable"), 1);
    CHECK_EQ_INT(lines_with("[INFO] Neo4j available again"), 1);
    CHECK_EQ_INT(count(M.persisted), 2);
    CHECK_EQ_INT(S.stored[0], 1);
    CHECK_EQ_INT(S.stored[1], 1);
    end_engine(e);
    log_back();
}
