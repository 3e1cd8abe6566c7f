/* Integration test of src/graph/graph.c against the Neo4j of the local stack: the statements
 * write exactly the contract's graph (§6), writing the same batch twice changes nothing, a
 * purchase already in the graph is skipped (first write wins, as the idempotency cache
 * decides too) and reported in graph_batch.existed, two writers of the same purchases at once
 * create each exactly once, product metadata arrives later, and a receipt of 25 000 lines is
 * written by one transaction.
 *
 * Every id carries a prefix unique to the run (gw<pid>-, set by cleanup(), which every case
 * calls first), so the test touches only its own
 * nodes, reads them back with a canonical text snapshot (every node with its properties in key
 * order, every relationship with its properties and its end), and deletes them at the end.
 */
#define TEST_MAIN
#include "test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bolt_test_util.h"
#include "graph/graph.h"

static char P[32];          /* "gw<pid>-" */

static const char *id(const char *fmt, const char *s) {
    static __thread char buf[16][128];
    static __thread int next;
    char *b = buf[next++ % 16];
    snprintf(b, sizeof buf[0], fmt, P, s);
    return b;
}

static bolt_driver *the_driver;

static void close_driver(void) {
    bolt_driver_free(the_driver);
}

static bolt_driver *driver(void) {
    bolt_driver *d = the_driver;
    if (d) return d;
    bolt_config cfg;
    bolt_error err;
    bt_config(&cfg);
    cfg.max_pool_size = 4;
    cfg.max_retry_time_ms = 30000;
    OK(bolt_driver_new(bt_uri("bolt"), &cfg, &d, &err));
    the_driver = d;
    atexit(close_driver);
    OK(graph_ensure_schema(d, NULL, &err));
    return d;
}

/* ------------------------------------------------------------------ reading the graph back */

typedef struct text {
    char *s;
    size_t len;
} text;

static int on_line(void *ud, const bolt_value *record) {
    text *t = ud;
    size_t n = 0;
    const char *line = bolt_value_string(bolt_list_get(record, 0), &n);
    if (!line) return 1;
    t->s = realloc(t->s, t->len + n + 2);
    if (!t->s) return 1;
    memcpy(t->s + t->len, line, n);
    t->len += n;
    t->s[t->len++] = '\n';
    t->s[t->len] = '\0';
    return 0;
}

#define OWN_NODE                                                                          \
    "(n.user_id STARTS WITH $p OR n.purchase_id STARTS WITH $q OR n.fido STARTS WITH $p " \
    "OR n.retailer_id STARTS WITH $p OR n.path STARTS WITH $p)"

/* Runs q with $p (the run's prefix) and $q ("receipt:" + prefix), rows to cb. */
static void run_own(const char *q, bolt_record_cb cb, void *ud) {
    bolt_value *params = bolt_map();
    char pq[64];
    snprintf(pq, sizeof pq, "receipt:%s", P);
    bolt_map_set(params, "p", bolt_string(P));
    bolt_map_set(params, "q", bolt_string(pq));
    bolt_conn *c;
    bolt_error err;
    OK(bolt_driver_acquire(driver(), NULL, 0, &c, &err));
    int rc = bolt_query(c, q, params, NULL, cb, ud, NULL, &err);
    bolt_driver_release(driver(), c);
    bolt_value_free(params);
    CHECKF(rc == BOLT_OK, "%.40s...: %s", q, err.message);
}

/* Every node of this run with its properties (keys sorted) and its outgoing relationships
 * (type, properties, the other end's key), one line per node, lines sorted. Caller frees. */
static char *snapshot(void) {
    static const char q[] =
        "MATCH (n) WHERE " OWN_NODE " "
        "CALL (n) { UNWIND keys(n) AS k WITH k, k + '=' + toString(n[k]) AS kv ORDER BY k "
        "  RETURN reduce(s = '', x IN collect(kv) | s + x + ';') AS props } "
        "CALL (n) { OPTIONAL MATCH (n)-[r]->(m) "
        "  CALL (r) { UNWIND keys(r) AS k WITH k, k + '=' + toString(r[k]) AS kv ORDER BY k "
        "    RETURN reduce(s = '', x IN collect(kv) | s + x + ';') AS rp } "
        "  WITH type(r) + '{' + rp + '}->' + "
        "       coalesce(m.user_id, m.purchase_id, m.fido, m.retailer_id, m.path) AS rel "
        "  ORDER BY rel RETURN reduce(s = '', x IN collect(rel) | s + ' ' + x) AS rels } "
        "WITH labels(n)[0] + '{' + props + '}' + rels AS line ORDER BY line RETURN line";
    text t = {calloc(1, 1), 0};
    run_own(q, on_line, &t);
    return t.s;
}

static void cleanup(void) {
    if (!P[0]) snprintf(P, sizeof P, "gw%ld-", (long)getpid());
    run_own("MATCH (n) WHERE " OWN_NODE " DETACH DELETE n", NULL, NULL);
}

/* Occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle) {
    int n = 0;
    for (const char *s = hay; (s = strstr(s, needle)) != NULL; s += strlen(needle)) n++;
    return n;
}

/* ------------------------------------------------------------------ batches */

/* A receipt of `lines` lines over the given fidos (cycled), total `total`. */
static record_purchase *receipt(const char *rid, const char *user, const char *retailer,
                                const char *const *fidos, size_t nfidos, size_t lines,
                                int64_t total) {
    record_purchase *p = calloc(1, sizeof *p);
    p->source = RECORD_SOURCE_RECEIPT;
    p->id = strdup(id("%s%s", rid));
    p->receipt_id = strdup(p->id);
    p->purchase_id = strdup(id("receipt:%s%s", rid));
    p->user_id = strdup(id("%s%s", user));
    p->retailer_id = retailer ? strdup(id("%s%s", retailer)) : NULL;
    p->has_purchased_at = 1;
    p->purchased_at_s = 1700000000;
    p->total_cents = total;
    p->currency = strdup("USD");
    p->items = calloc(lines, sizeof *p->items);
    p->nitems = lines;
    for (size_t i = 0; i < lines; i++) {
        p->items[i] = (record_item){.line = (int32_t)i + 1,
                                    .fido = strdup(id("%s%s", fidos[i % nfidos])),
                                    .quantity = 1.5, .unit_price_cents = 100 + (int64_t)i,
                                    .total_price_cents = 150 + (int64_t)i,
                                    .description = i % 2 ? NULL : strdup("LINE")};
    }
    p->fido_count = -1;
    return p;
}

/* The catalogue of the tests: F1 known with a category path, F2 known without categories, F3
 * unknown (unless `f3_known`), each fido prefixed. Sorted by fido as graph.h requires. */
typedef struct catalogue {
    char fido[3][64], cat[2][64];
    const char *cats[2];
    graph_product products[3];
    char rid[64];
    graph_retailer retailer;
} catalogue;

static void make_catalogue(catalogue *c, int f3_known) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 3; i++) snprintf(c->fido[i], sizeof c->fido[i], "%sF%d", P, i + 1);
    snprintf(c->cat[0], sizeof c->cat[0], "%sFood", P);
    snprintf(c->cat[1], sizeof c->cat[1], "Fruit");
    c->cats[0] = c->cat[0];
    c->cats[1] = c->cat[1];
    c->products[0] = (graph_product){c->fido[0], 1, "Apple", "Acme", c->cats, 2};
    c->products[1] = (graph_product){c->fido[1], 1, "Bag", NULL, NULL, 0};
    c->products[2] = (graph_product){c->fido[2], f3_known, f3_known ? "Cherry" : NULL,
                                     f3_known ? "Bco" : NULL, f3_known ? c->cats : NULL,
                                     f3_known ? 1 : 0};
    snprintf(c->rid, sizeof c->rid, "%sR1", P);
    c->retailer = (graph_retailer){c->rid, 1, "Shop", "GROCERY"};
}

/* Every case starts from none of its nodes and the catalogue with F3 unknown. */
static void fresh(catalogue *c) {
    cleanup();
    make_catalogue(c, 0);
}

static const char *const FIDOS[] = {"F1", "F2", "F3", "F1"};  /* F1 on two lines */

static int put(const record_purchase *const *ps, size_t n, const catalogue *c,
                 unsigned char *existed, graph_stats *st) {
    graph_batch b = {ps, n, c->products, 3, &c->retailer, 1, existed};
    bolt_error err;
    int rc = graph_write(driver(), NULL, &b, st, &err);
    CHECKF(rc == BOLT_OK, "graph_write: %s: %s", bolt_code_name(rc), err.message);
    return rc;
}

/* ------------------------------------------------------------------ cases */

TEST(the_contracts_graph_and_a_second_write_changes_nothing) {
    catalogue c;
    fresh(&c);
    record_purchase *a = receipt("r1", "u1", "R1", FIDOS, 4, 4, 700);
    record_purchase *b = receipt("r2", "u1", NULL, FIDOS + 1, 1, 1, 300);
    const record_purchase *ps[] = {a, b};
    unsigned char existed[2] = {9, 9};
    graph_stats st;
    put(ps, 2, &c, existed, &st);
    CHECK(existed[0] == 0 && existed[1] == 0);
    /* User, 2 Purchases, 3 Products, Retailer, 2 Categories */
    CHECK_EQ_INT(st.nodes_created, 1 + 2 + 3 + 1 + 2);
    /* MADE x2, AT x1, CONTAINS 4 + 1, IN_CATEGORY x1, CHILD_OF x1 */
    CHECK_EQ_INT(st.relationships_created, 2 + 1 + 5 + 1 + 1);
    char *first = snapshot();
    CHECKF(count_of(first, "CONTAINS{") == 5, "%s", first);
    CHECKF(strstr(first, "CONTAINS{description=LINE;line=1;quantity=1.5;total_price_cents=150;"
                         "unit_price_cents=100;}->") != NULL, "%s", first);
    CHECKF(strstr(first, "CONTAINS{line=2;quantity=1.5;total_price_cents=151;"
                         "unit_price_cents=101;}->") != NULL, "absent description: %s", first);
    CHECKF(count_of(first, "Purchase{currency=USD;purchase_id=") == 2, "%s", first);
    CHECKF(strstr(first, "source=receipt;total_cents=700;}") != NULL, "%s", first);
    CHECKF(strstr(first, "cgw_created") == NULL, "the marker was committed: %s", first);
    CHECKF(strstr(first, "Product{brand=Acme;fido=") != NULL && strstr(first, "name=Apple;}"),
           "%s", first);
    CHECKF(strstr(first, "Category{depth=2;name=Fruit;path=") != NULL, "%s", first);
    CHECKF(count_of(first, "CHILD_OF") == 1 && count_of(first, "IN_CATEGORY") == 1, "%s", first);

    memset(existed, 9, sizeof existed);
    put(ps, 2, &c, existed, &st);
    CHECK(existed[0] == 1 && existed[1] == 1);
    CHECK_EQ_INT(st.nodes_created, 0);
    CHECK_EQ_INT(st.relationships_created, 0);
    CHECK_EQ_INT(st.properties_set, 0);
    char *second = snapshot();
    CHECK_EQ_STR(second, first);
    free(first);
    free(second);
    record_purchase_free(a);
    record_purchase_free(b);
    cleanup();
}

/* A writer's kept buffers (graph_scratch) are emptied before each batch: a bigger batch
 * written before leaves nothing in a smaller one's parameters, and the graph is the one
 * fresh buffers give. */
TEST(a_writers_kept_buffers_give_the_same_graph_as_fresh_ones) {
    catalogue c;
    fresh(&c);
    record_purchase *a = receipt("r1", "u1", "R1", FIDOS, 4, 4, 700);
    record_purchase *b = receipt("r2", "u1", NULL, FIDOS + 1, 1, 1, 300);
    const record_purchase *ps[] = {a, b};
    unsigned char existed[2];
    graph_stats st;
    put(ps, 2, &c, existed, &st);
    char *want = snapshot();
    graph_scratch *s = graph_scratch_new();
    CHECK(s != NULL);
    bolt_error err;
    for (int round = 0; round < 3; round++) {
        fresh(&c);
        graph_batch big = {ps, 2, c.products, 3, &c.retailer, 1, existed};
        graph_batch small = {ps + 1, 1, c.products, 3, &c.retailer, 1, existed};
        if (round == 1) {                        /* the small one first: the big one after it */
            CHECK_EQ_INT(graph_write_in(driver(), NULL, &small, s, &st, &err), BOLT_OK);
            fresh(&c);
        }
        CHECK_EQ_INT(graph_write_in(driver(), NULL, &big, s, &st, &err), BOLT_OK);
        if (round == 2) {                        /* the big one, then the small one alone */
            fresh(&c);
            CHECK_EQ_INT(graph_write_in(driver(), NULL, &small, s, &st, &err), BOLT_OK);
            CHECK_EQ_INT(graph_write_in(driver(), NULL, &big, s, &st, &err), BOLT_OK);
        }
        char *got = snapshot();
        CHECK_EQ_STR(got, want);
        free(got);
    }
    graph_scratch_free(s);
    free(want);
    record_purchase_free(a);
    record_purchase_free(b);
    cleanup();
}

TEST(existed_follows_the_batch_order_not_the_sorted_one) {
    catalogue c;
    fresh(&c);
    record_purchase *p1 = receipt("r1", "u2", "R1", FIDOS, 1, 1, 1);
    record_purchase *p2 = receipt("r2", "u1", "R1", FIDOS, 1, 1, 2);
    record_purchase *p3 = receipt("r3", "u3", "R1", FIDOS, 1, 1, 3);
    const record_purchase *first[] = {p2};
    unsigned char e1[1];
    graph_stats st;
    put(first, 1, &c, e1, &st);
    CHECK(e1[0] == 0);
    /* in batch order p3, p2, p1: sorted by user it is p2 (u1), p1 (u2), p3 (u3) */
    const record_purchase *mixed[] = {p3, p2, p1};
    unsigned char e2[3];
    put(mixed, 3, &c, e2, &st);
    CHECKF(e2[0] == 0 && e2[1] == 1 && e2[2] == 0, "existed %d %d %d", e2[0], e2[1], e2[2]);
    CHECK_EQ_INT(st.nodes_created, 2 + 2);      /* Purchases r1, r3; Users u2, u3 */
    record_purchase_free(p1);
    record_purchase_free(p2);
    record_purchase_free(p3);
    cleanup();
}

/* The contract (§1, §5, §6) knows re-deliveries, not updates: the idempotency cache skips a
 * receipt_id seen before whatever its content, and so does the graph now, with or without
 * the cache: the first version written stays, whole. */
TEST(a_purchase_republished_with_other_content_keeps_its_first_version) {
    catalogue c;
    fresh(&c);
    record_purchase *v1 = receipt("r1", "u1", "R1", FIDOS, 4, 4, 700);
    record_purchase *v2 = receipt("r1", "u1", "R1", FIDOS + 1, 2, 2, 999);
    const record_purchase *b1[] = {v1}, *b2[] = {v2};
    unsigned char e[1];
    graph_stats st;
    put(b1, 1, &c, e, &st);
    char *before = snapshot();
    put(b2, 1, &c, e, &st);
    CHECK(e[0] == 1);
    char *after = snapshot();
    CHECK_EQ_STR(after, before);
    CHECKF(strstr(after, "total_cents=700") && !strstr(after, "total_cents=999"), "%s", after);
    free(before);
    free(after);
    record_purchase_free(v1);
    record_purchase_free(v2);
    cleanup();
}

TEST(a_product_gains_its_metadata_later_and_never_loses_it) {
    cleanup();
    catalogue unknown, known;
    make_catalogue(&unknown, 0);
    make_catalogue(&known, 1);
    record_purchase *a = receipt("r1", "u1", NULL, FIDOS + 2, 1, 1, 1);
    record_purchase *b = receipt("r2", "u1", NULL, FIDOS + 2, 1, 1, 2);
    record_purchase *d = receipt("r3", "u1", NULL, FIDOS + 2, 1, 1, 3);
    const record_purchase *b1[] = {a}, *b2[] = {b}, *b3[] = {d};
    graph_stats st;
    put(b1, 1, &unknown, NULL, &st);
    char *s1 = snapshot();
    CHECKF(strstr(s1, "Product{fido=") && !strstr(s1, "name=Cherry"), "%s", s1);
    put(b2, 1, &known, NULL, &st);
    char *s2 = snapshot();
    CHECKF(strstr(s2, "Product{brand=Bco;fido=") && strstr(s2, "name=Cherry;} IN_CATEGORY"),
           "%s", s2);
    put(b3, 1, &unknown, NULL, &st);   /* the service forgot it: the graph keeps it */
    char *s3 = snapshot();
    char want[128];   /* one link, to its one category */
    snprintf(want, sizeof want, "Product{brand=Bco;fido=%sF3;name=Cherry;} IN_CATEGORY{}->%sFood\n",
             P, P);
    CHECKF(strstr(s3, want) != NULL, "want %s in %s", want, s3);
    free(s1);
    free(s2);
    free(s3);
    record_purchase_free(a);
    record_purchase_free(b);
    record_purchase_free(d);
    cleanup();
}

/* A product whose deepest category changes moves to the new one: one IN_CATEGORY (contract
 * §6: "the deepest category of the product"). Before, the old link stayed, so the product
 * pointed at two categories. The old category node stays, with its CHILD_OF. */
TEST(a_product_whose_category_changes_moves_to_the_new_one) {
    catalogue c;
    fresh(&c);
    record_purchase *a = receipt("r1", "u1", NULL, FIDOS, 1, 1, 1);
    record_purchase *b = receipt("r2", "u1", NULL, FIDOS, 1, 1, 2);
    const record_purchase *b1[] = {a}, *b2[] = {b};
    graph_stats st;
    put(b1, 1, &c, NULL, &st);
    snprintf(c.cat[1], sizeof c.cat[1], "Vegetables");
    put(b2, 1, &c, NULL, &st);
    char *s = snapshot();
    char want[192];
    snprintf(want, sizeof want,
             "Product{brand=Acme;fido=%sF1;name=Apple;} IN_CATEGORY{}->%sFood > Vegetables\n", P, P);
    CHECKF(strstr(s, want) != NULL, "want %s in %s", want, s);
    CHECKF(count_of(s, "IN_CATEGORY") == 1, "%s", s);
    CHECKF(count_of(s, "Fruit;} CHILD_OF") == 1, "%s", s);
    free(s);
    record_purchase_free(a);
    record_purchase_free(b);
    cleanup();
}

/* Two writers of the same purchases at the same moment (two workers after a rebalance, or a
 * replay racing the original): MERGE's lock on the purchase key lets exactly one create each
 * purchase, and the other reports it as existed and writes nothing of it. */
typedef struct racer {
    const record_purchase *const *ps;
    size_t n;
    const catalogue *c;
    unsigned char existed[8];
    int rc;
    pthread_barrier_t *go;
} racer;

static void *race(void *arg) {
    racer *r = arg;
    graph_batch b = {r->ps, r->n, r->c->products, 3, &r->c->retailer, 1, r->existed};
    bolt_error err;
    pthread_barrier_wait(r->go);
    r->rc = graph_write(driver(), NULL, &b, NULL, &err);
    return NULL;
}

TEST(two_writers_of_the_same_purchases_create_each_once) {
    catalogue c;
    fresh(&c);
    for (int round = 0; round < 5; round++) {
        char rid[4][32];
        record_purchase *p[4];
        for (int i = 0; i < 4; i++) {
            snprintf(rid[i], sizeof rid[i], "x%d-%d", round, i);
            p[i] = receipt(rid[i], i % 2 ? "u1" : "u2", "R1", FIDOS, 4, 4, 10 + i);
        }
        const record_purchase *ps[] = {p[0], p[1], p[2], p[3]};
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, 2);
        racer r[2] = {{ps, 4, &c, {0}, -1, &go}, {ps, 4, &c, {0}, -1, &go}};
        pthread_t th[2];
        for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, race, &r[k]);
        for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
        pthread_barrier_destroy(&go);
        CHECK(r[0].rc == BOLT_OK && r[1].rc == BOLT_OK);
        for (int i = 0; i < 4; i++)
            CHECKF(r[0].existed[i] + r[1].existed[i] == 1, "round %d purchase %d: %d %d", round,
                   i, r[0].existed[i], r[1].existed[i]);
        for (int i = 0; i < 4; i++) record_purchase_free(p[i]);
    }
    char *s = snapshot();
    CHECKF(count_of(s, "Purchase{") == 20, "%s", s);
    CHECKF(count_of(s, "MADE{}") == 20, "%s", s);
    CHECKF(count_of(s, "CONTAINS{") == 80, "%s", s);
    CHECKF(count_of(s, "AT{}") == 20, "%s", s);
    free(s);
    cleanup();
}

/* Issue 10's receipts of 25 000 lines: with CREATE for a new purchase one transaction writes
 * them (the MERGE of each CONTAINS used to grow with the lines already there: ~70 s each). */
TEST(a_receipt_of_25000_lines_is_written_whole) {
    catalogue c;
    fresh(&c);
    record_purchase *p = receipt("big", "u1", "R1", FIDOS, 4, 25000, 1);
    const record_purchase *ps[] = {p};
    unsigned char e[1];
    graph_stats st;
    put(ps, 1, &c, e, &st);
    CHECK(e[0] == 0);
    CHECK_EQ_INT(st.relationships_created, 25000 + 1 + 1 + 1 + 1);  /* + MADE AT IN_CAT CHILD_OF */
    put(ps, 1, &c, e, &st);
    CHECK(e[0] == 1);
    CHECK_EQ_INT(st.relationships_created, 0);
    record_purchase_free(p);
    cleanup();
}
