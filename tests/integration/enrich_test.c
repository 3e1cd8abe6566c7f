/* Integration test of src/enrich/ against the Python fakes of the FIDO Product and Retailer
 * services (tools/fakes.py), started here on free ports and stopped at exit (atexit, so a
 * failed case still stops them). Expected answers come from tools/catalogue.py itself, asked
 * through the same venv python, so the test checks "exactly as the catalogue defines".
 * Request counts come from the fakes' GET /_stats; faults from POST /_control.
 * Runs from the repository root (scripts/run-tests does); CGW_PYTHON overrides the venv. */
#define TEST_MAIN
#include "test.h"

#include "enrich/enrich.h"

#include "fakes_proc.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct fakes_proc fakes;
static int fido_port, retailer_port;
static char fido_url[64], retailer_url[64];

/* ---- fakes ------------------------------------------------------------------------------- */

static void start_fakes(void) {
    if (fakes.pid > 0) return;
    fakes_start(&fakes, "fido,retailer", NULL);
    fido_port = fakes_port(&fakes, "fido");
    retailer_port = fakes_port(&fakes, "retailer");
    fakes_url(&fakes, "fido", "", fido_url, sizeof fido_url);
    fakes_url(&fakes, "retailer", "", retailer_url, sizeof retailer_url);
}

/* The service of the fakes on port (fido_port or retailer_port), for the hooks. */
static const char *service(int port) { return port == fido_port ? "fido" : "retailer"; }

static void control(int port, const char *json) { fakes_control(&fakes, service(port), json); }

/* Fresh fakes state for a case: no faults, zeroed stats. */
static void reset_fakes(void) {
    start_fakes();
    const char *normal = "{\"latency_ms\":0,\"error_rate\":0,\"error_status\":500,"
                         "\"outage\":false,\"reset_stats\":true}";
    control(fido_port, normal);
    control(retailer_port, normal);
}

static long batch_calls(void) {
    return fakes_stats(&fakes, "fido", "POST /v1/products:batchGet", NULL);
}
static long retailer_calls(void) {
    return fakes_stats(&fakes, "retailer", "GET /v1/retailers/{retailer_id}", NULL);
}

static long stat_field(int port, const char *field) {
    json_t *st = fakes_hook(&fakes, service(port), "/_stats", NULL);
    long v = (long)json_integer_value(json_object_get(st, field));
    json_decref(st);
    return v;
}

/* ---- expectations from tools/catalogue.py ------------------------------------------------ */

/* [answer or null, ...] for the ids, from catalogue.product / catalogue.retailer. */
static json_t *catalogue(const char *fn, const char *const ids[], size_t n) {
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_string(ids[i]));
    char *js = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    char path[64];
    snprintf(path, sizeof path, "/tmp/cgw-enrich-ids-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(js, f);
    fclose(f);
    free(js);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' -c 'import sys, json; sys.path.insert(0, \"tools\"); import catalogue; "
             "print(json.dumps([catalogue.%s(i) for i in json.load(open(sys.argv[1]))]))' %s",
             fakes_python(), fn, path);
    FILE *p = popen(cmd, "r");
    json_t *out = p ? json_loadf(p, 0, NULL) : NULL;
    if (p) pclose(p);
    unlink(path);
    CHECKF(json_is_array(out) && json_array_size(out) == n, "asking catalogue.py failed");
    return out;
}

static const char *jstr(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s && *s ? s : NULL;
}

static void check_opt_str(const char *got, const char *want, const char *id) {
    CHECKF((!got && !want) || (got && want && strcmp(got, want) == 0), "%s: \"%s\" != \"%s\"", id,
           got ? got : "(null)", want ? want : "(null)");
}

static void check_products(const struct enrich_results *r, const char *const ids[], size_t n) {
    json_t *want = catalogue("product", ids, n);
    CHECK_EQ_INT(r->count, n);
    for (size_t i = 0; i < n; i++) {
        const struct enrich_product *p = &r->products[i];
        json_t *w = json_array_get(want, i);
        CHECK_EQ_STR(p->fido, ids[i]);
        CHECKF(p->known == !json_is_null(w), "%s: known=%d", ids[i], p->known);
        CHECK(!p->failed);
        check_opt_str(p->name, jstr(w, "name"), ids[i]);
        check_opt_str(p->brand, jstr(w, "brand"), ids[i]);
        json_t *cats = json_object_get(w, "categories");
        CHECKF(p->categories_count == json_array_size(cats), "%s: %zu categories", ids[i],
               p->categories_count);
        for (size_t c = 0; c < p->categories_count; c++)
            CHECK_EQ_STR(p->categories[c], json_string_value(json_array_get(cats, c)));
    }
    json_decref(want);
}

static void check_retailers(const struct enrich_results *r, const char *const ids[], size_t n) {
    json_t *want = catalogue("retailer", ids, n);
    CHECK_EQ_INT(r->count, n);
    for (size_t i = 0; i < n; i++) {
        const struct enrich_retailer *t = &r->retailers[i];
        json_t *w = json_array_get(want, i);
        CHECK_EQ_STR(t->retailer_id, ids[i]);
        CHECKF(t->known == !json_is_null(w), "%s: known=%d", ids[i], t->known);
        CHECK(!t->failed);
        check_opt_str(t->name, jstr(w, "name"), ids[i]);
        check_opt_str(t->store_type, jstr(w, "store_type"), ids[i]);
    }
    json_decref(want);
}

/* ---- clients and id lists ---------------------------------------------------------------- */

static struct enrich_client *client_cancel(int retries, long timeout_ms,
                                          const atomic_bool *cancel) {
    struct enrich_options o;
    char err[256] = "";
    enrich_options_init(&o);
    o.fido_url = fido_url;
    o.retailer_url = retailer_url;
    o.retries = retries;
    o.timeout_ms = timeout_ms;
    o.backoff_ms = 10;
    o.backoff_max_ms = 50;
    o.cancel = cancel;
    struct enrich_client *c = enrich_client_new(&o, err, sizeof err);
    CHECKF(c, "enrich_client_new: %s", err);
    return c;
}

static struct enrich_client *client(int retries, long timeout_ms) {
    return client_cancel(retries, timeout_ms, NULL);
}

/* ids[i] = F<first + i>, owned by the caller (free_ids). */
static char **fidos(int first, size_t n) {
    char **ids = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) asprintf(&ids[i], "F%06d", first + (int)i);
    return ids;
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

static struct enrich_stats stats(struct enrich_client *c) {
    struct enrich_stats s;
    enrich_get_stats(c, &s);
    return s;
}

/* ---- cases ------------------------------------------------------------------------------- */

TEST(products_match_catalogue) {
    reset_fakes();
    struct enrich_client *c = client(2, 2000);
    /* known, unknown (n%10==7, n==0, bad format), no categories (F000400..), duplicates,
     * names with quotes and non-ASCII letters somewhere in 1..60 */
    const char *ids[80];
    char buf[80][16];
    size_t n = 0;
    for (int i = 1; i <= 60; i++, n++) snprintf(buf[n], 16, "F%06d", i), ids[n] = buf[n];
    for (int i = 400; i <= 409; i++, n++) snprintf(buf[n], 16, "F%06d", i), ids[n] = buf[n];
    ids[n++] = "F000000";
    ids[n++] = "BOGUS";
    ids[n++] = "F000001";
    ids[n++] = "F000007";
    ids[n++] = "F000400";
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, ids, n, &r), ENRICH_OK);
    CHECK_EQ_INT(r.failed, 0);
    CHECK_EQ_STR(r.error, "");
    CHECK(r.retailers == NULL);
    check_products(&r, ids, n);
    CHECK(r.products[0].known && r.products[6].known == false);  /* F000001, F000007 */
    CHECK(r.products[60].known && r.products[60].categories_count == 0); /* F000400 */
    CHECK(r.products[n - 3].name != r.products[0].name);         /* duplicates are copies */
    enrich_results_free(&r);
    CHECK_EQ_INT(batch_calls(), 1);
    CHECK_EQ_INT(stat_field(fido_port, "batch_fidos"), 72);      /* distinct ids only */
    enrich_client_free(c);
}

TEST(sorted_unique_ids_are_answered_like_any_other) {
    /* The pipeline passes sorted, unique ids (enrich then skips its own sort): the answers
     * must be those of the same ids in any order, and the second call comes from the cache. */
    reset_fakes();
    struct enrich_client *c = client(2, 2000);
    const char *asc[150], *desc[150];
    char buf[150][16];
    for (int i = 0; i < 150; i++) {
        snprintf(buf[i], 16, "F%06d", i + 300);     /* some without categories (F000400..) */
        asc[i] = buf[i];
        desc[149 - i] = buf[i];
    }
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, asc, 150, &r), ENRICH_OK);
    check_products(&r, asc, 150);
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_products(c, desc, 150, &r), ENRICH_OK);
    check_products(&r, desc, 150);
    enrich_results_free(&r);
    CHECK_EQ_INT(batch_calls(), 2);                 /* 100 + 50, then all from the cache */
    enrich_client_free(c);
}

TEST(retailers_match_catalogue) {
    reset_fakes();
    struct enrich_client *c = client(2, 2000);
    const char *ids[40];
    char buf[40][16];
    size_t n = 0;
    for (int i = 1; i <= 30; i++, n++) snprintf(buf[n], 16, "R%04d", i), ids[n] = buf[n];
    ids[n++] = "R0000";
    ids[n++] = "R 1/x?y=%";                  /* must be escaped into one path segment */
    ids[n++] = "R0003";
    ids[n++] = "R0001";
    ids[n++] = "";                           /* never looked up */
    struct enrich_results r;
    CHECK_EQ_INT(enrich_retailers(c, ids, n, &r), ENRICH_OK);
    CHECK(r.products == NULL);
    check_retailers(&r, ids, n);
    CHECK(r.retailers[0].known && !r.retailers[2].known);       /* R0001 known, R0003 not */
    enrich_results_free(&r);
    CHECK_EQ_INT(retailer_calls(), 32);      /* 30 + R0000 + escaped one; no dup, no "" */
    /* cached, unknown ones too */
    CHECK_EQ_INT(enrich_retailers(c, ids, n, &r), ENRICH_OK);
    check_retailers(&r, ids, n);
    enrich_results_free(&r);
    CHECK_EQ_INT(retailer_calls(), 32);
    enrich_client_free(c);
}

TEST(batch_of_250_takes_3_calls_then_0) {
    reset_fakes();
    struct enrich_client *c = client(2, 2000);
    char **ids = fidos(1001, 250);
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, (const char *const *)ids, 250, &r), ENRICH_OK);
    check_products(&r, (const char *const *)ids, 250);
    enrich_results_free(&r);
    CHECK_EQ_INT(batch_calls(), 3);
    CHECK_EQ_INT(stat_field(fido_port, "batch_max"), 100);
    CHECK_EQ_INT(stats(c).cache_misses, 250);
    CHECK_EQ_INT(enrich_products(c, (const char *const *)ids, 250, &r), ENRICH_OK);
    check_products(&r, (const char *const *)ids, 250);
    enrich_results_free(&r);
    CHECK_EQ_INT(batch_calls(), 3);          /* second call: all cached, no request */
    CHECK_EQ_INT(stats(c).cache_hits, 250);
    CHECK_EQ_INT(stats(c).http_requests, 3);
    free_ids(ids, 250);
    enrich_client_free(c);
}

TEST(connections_are_kept_alive) {
    reset_fakes();
    struct enrich_client *c = client(0, 2000);
    struct enrich_results r;
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "F%06d", 2000 + i);
        const char *one[1] = {id};
        CHECK_EQ_INT(enrich_products(c, one, 1, &r), ENRICH_OK);
        enrich_results_free(&r);
    }
    CHECK_EQ_INT(stats(c).http_requests, 5);
    CHECK_EQ_INT(stats(c).http_connects, 1);
    enrich_client_free(c);
}

TEST(error_rate_half_still_answers_with_retries) {
    reset_fakes();
    control(fido_port, "{\"error_rate\":0.5}");
    control(retailer_port, "{\"error_rate\":0.5}");
    struct enrich_client *c = client(20, 2000);     /* 25 requests x 0.5^21: no flakes */
    char **ids = fidos(3001, 450);
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, (const char *const *)ids, 450, &r), ENRICH_OK);
    check_products(&r, (const char *const *)ids, 450);
    enrich_results_free(&r);
    const char *rids[20];
    char buf[20][16];
    for (int i = 0; i < 20; i++) snprintf(buf[i], 16, "R%04d", 101 + i), rids[i] = buf[i];
    CHECK_EQ_INT(enrich_retailers(c, rids, 20, &r), ENRICH_OK);
    check_retailers(&r, rids, 20);
    enrich_results_free(&r);
    struct enrich_stats s = stats(c);
    CHECKF(s.http_retries > 0 && s.transient_errors == s.http_retries, "retries %llu transient %llu",
           (unsigned long long)s.http_retries, (unsigned long long)s.transient_errors);
    CHECK_EQ_INT(s.http_requests, 5 + 20 + s.http_retries);
    CHECK_EQ_INT(batch_calls() + retailer_calls(), (long)s.http_requests);
    free_ids(ids, 450);
    enrich_client_free(c);
}

static void outage_case(const char *how) {
    reset_fakes();
    char sw[64];
    snprintf(sw, sizeof sw, "{\"outage\":%s}", how);
    control(fido_port, sw);
    control(retailer_port, sw);
    struct enrich_client *c = client(2, 2000);
    char **ids = fidos(5001, 150);
    const char *rids[3] = {"R0001", "R0002", "R0003"};
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, (const char *const *)ids, 150, &r), ENRICH_EUNAVAILABLE);
    CHECK(r.products == NULL && r.count == 0 && r.error[0]);
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_retailers(c, rids, 3, &r), ENRICH_EUNAVAILABLE);
    CHECK(r.retailers == NULL && r.error[0]);
    enrich_results_free(&r);
    struct enrich_stats s = stats(c);
    CHECK_EQ_INT(s.cache_entries, 0);        /* nothing cached from the failed calls */
    CHECK_EQ_INT(s.http_requests, 3 * (2 + 3));
    CHECK_EQ_INT(s.http_retries, 2 * (2 + 3));
    CHECK_EQ_INT(s.unavailable, 2);

    control(fido_port, "{\"outage\":false}");
    control(retailer_port, "{\"outage\":false}");
    CHECK_EQ_INT(enrich_products(c, (const char *const *)ids, 150, &r), ENRICH_OK);
    check_products(&r, (const char *const *)ids, 150);
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_retailers(c, rids, 3, &r), ENRICH_OK);
    check_retailers(&r, rids, 3);
    enrich_results_free(&r);
    CHECK_EQ_INT(stats(c).http_requests, 3 * 5 + 5);   /* all fetched: nothing was cached */
    CHECK_EQ_INT(stats(c).cache_entries, 153);
    free_ids(ids, 150);
    enrich_client_free(c);
}

TEST(outage_503_is_unavailable_and_caches_nothing) { outage_case("true"); }
TEST(outage_refused_is_unavailable_and_caches_nothing) { outage_case("\"refuse\""); }

TEST(latency_above_timeout_is_unavailable) {
    reset_fakes();
    control(fido_port, "{\"latency_ms\":800}");
    struct enrich_client *c = client(1, 200);
    const char *ids[2] = {"F000001", "F000002"};
    struct enrich_results r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(enrich_products(c, ids, 2, &r), ENRICH_EUNAVAILABLE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECKF(ms >= 400 && ms < 1500, "took %ld ms", ms);
    CHECKF(strstr(r.error, "imeout") || strstr(r.error, "timed out"), "error: %s", r.error);
    enrich_results_free(&r);
    control(fido_port, "{\"latency_ms\":0}");
    CHECK_EQ_INT(enrich_products(c, ids, 2, &r), ENRICH_OK);
    check_products(&r, ids, 2);
    enrich_results_free(&r);
    enrich_client_free(c);
}

/* The owner's stop flag set while the services do not answer (the fakes frozen): the call
 * ends as aborted, not after its 60 s timeout. */
TEST(the_cancel_flag_ends_calls_to_a_frozen_service) {
    reset_fakes();
    static atomic_bool stopping;
    struct enrich_client *c = client_cancel(1, 60000, &stopping);
    const char *ids[2] = {"F000001", "F000002"};
    struct enrich_results r;
    struct fakes_stopper stopper;
    kill(fakes.pid, SIGSTOP);
    fakes_stop_later(&stopper, &stopping, 300);
    CHECK_EQ_INT(enrich_products(c, ids, 2, &r), ENRICH_EUNAVAILABLE);
    fakes_stop_joined(&stopper);
    kill(fakes.pid, SIGCONT);
    CHECKF(strstr(r.error, "abort"), "error: %s", r.error);
    enrich_results_free(&r);
    enrich_client_free(c);
}

TEST(client_error_is_permanent_unknown_and_not_cached) {
    reset_fakes();
    control(fido_port, "{\"error_rate\":1.0,\"error_status\":400}");
    control(retailer_port, "{\"error_rate\":1.0,\"error_status\":403}");
    struct enrich_client *c = client(3, 2000);
    const char *ids[3] = {"F000001", "F000002", "F000001"};
    const char *rids[1] = {"R0001"};
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, ids, 3, &r), ENRICH_OK);
    CHECK_EQ_INT(r.failed, 3);
    CHECK(r.products[0].failed && !r.products[0].known && !r.products[0].name);
    CHECKF(strstr(r.error, "HTTP 400"), "error: %s", r.error);
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_retailers(c, rids, 1, &r), ENRICH_OK);
    CHECK(r.failed == 1 && r.retailers[0].failed && strstr(r.error, "HTTP 403"));
    enrich_results_free(&r);
    struct enrich_stats s = stats(c);
    CHECK_EQ_INT(s.http_retries, 0);         /* permanent: not retried */
    CHECK_EQ_INT(s.permanent_errors, 2);
    CHECK_EQ_INT(s.cache_entries, 0);
    reset_fakes();
    CHECK_EQ_INT(enrich_products(c, ids, 3, &r), ENRICH_OK);
    CHECK_EQ_INT(r.failed, 0);
    check_products(&r, ids, 3);
    enrich_results_free(&r);
    /* Fetched again: the failure was not cached. At least one request, not exactly one: now
     * and then the fake counts two with no retry on the client's side (the second on a fresh
     * connection, the first's answer never written: curl resends a request whose reused
     * connection died, which is harmless for this read-only POST). */
    CHECKF(batch_calls() >= 1, "the products were not fetched again (%ld calls)", batch_calls());
    enrich_client_free(c);
}

/* A one-shot server answering every request with `answer` (malformed JSON). */
struct garbage { int fd; const char *answer; _Atomic int served; };

static void *garbage_server(void *arg) {
    struct garbage *g = arg;
    for (;;) {
        int c = accept(g->fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[8192];
        ssize_t n = recv(c, buf, sizeof buf, 0);  /* the small request fits in one read */
        if (n > 0) {            /* counted before the answer leaves, so the client cannot
                                 * have it while the count still lags (a flaky check) */
            g->served++;
            send(c, g->answer, strlen(g->answer), MSG_NOSIGNAL);
        }
        close(c);
    }
}

TEST(malformed_json_is_permanent) {
    struct garbage g = {socket(AF_INET, SOCK_STREAM, 0),
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Content-Length: 15\r\nConnection: close\r\n\r\n{\"products\": [1", 0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(g.fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(g.fd, 8) == 0);
    getsockname(g.fd, (struct sockaddr *)&a, &len);
    pthread_t t;
    pthread_create(&t, NULL, garbage_server, &g);
    char url[64], err[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    struct enrich_options o;
    enrich_options_init(&o);
    o.fido_url = o.retailer_url = url;
    struct enrich_client *c = enrich_client_new(&o, err, sizeof err);
    const char *ids[1] = {"F000001"};
    struct enrich_results r;
    CHECK_EQ_INT(enrich_products(c, ids, 1, &r), ENRICH_OK);
    CHECK(r.failed == 1 && r.products[0].failed && !r.products[0].known);
    CHECKF(strstr(r.error, "malformed JSON"), "error: %s", r.error);
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_retailers(c, ids, 1, &r), ENRICH_OK);   /* not an object: malformed */
    CHECK(r.failed == 1 && r.retailers[0].failed);
    enrich_results_free(&r);
    CHECK_EQ_INT(g.served, 2);               /* no retries */
    CHECK_EQ_INT(stats(c).cache_entries, 0);
    enrich_client_free(c);
    shutdown(g.fd, SHUT_RDWR);
    close(g.fd);
    pthread_join(t, NULL);
}

struct shared { struct enrich_client *c; int first; int rc; };

static void *consumer_thread(void *arg) {
    struct shared *s = arg;
    char **ids = fidos(s->first, 300);
    for (int round = 0; round < 3 && s->rc == ENRICH_OK; round++) {
        struct enrich_results r;
        s->rc = enrich_products(s->c, (const char *const *)ids, 300, &r);
        enrich_results_free(&r);
    }
    free_ids(ids, 300);
    return NULL;
}

TEST(one_client_shared_by_two_threads) {
    reset_fakes();
    struct enrich_client *c = client(2, 2000);
    struct shared a = {c, 7001, 0}, b = {c, 7151, 0};   /* overlapping ids */
    pthread_t ta, tb;
    pthread_create(&ta, NULL, consumer_thread, &a);
    pthread_create(&tb, NULL, consumer_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_EQ_INT(a.rc, ENRICH_OK);
    CHECK_EQ_INT(b.rc, ENRICH_OK);
    CHECK_EQ_INT(stats(c).cache_entries, 450);
    enrich_client_free(c);
}

TEST(bad_options_and_arguments) {
    struct enrich_options o;
    char err[256] = "";
    enrich_options_init(&o);
    o.batch_size = 101;
    CHECK(enrich_client_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "batch_size"), "err: %s", err);
    enrich_options_init(&o);
    o.fido_url = "http://127.0.0.1:1";
    struct enrich_client *c = enrich_client_new(&o, err, sizeof err);
    struct enrich_results r;
    const char *ids[2] = {"R0001", NULL};
    CHECK_EQ_INT(enrich_retailers(c, ids, 1, &r), ENRICH_EINVAL);   /* no retailer URL */
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_products(c, ids, 2, &r), ENRICH_EINVAL);    /* NULL id */
    enrich_results_free(&r);
    CHECK_EQ_INT(enrich_products(c, ids, 0, &r), ENRICH_OK);        /* nothing to do */
    CHECK_EQ_INT(r.count, 0);
    enrich_results_free(&r);
    CHECK_EQ_STR(enrich_status_name(ENRICH_EUNAVAILABLE), "ENRICH_EUNAVAILABLE");
    enrich_client_free(c);
}

TEST(zz_stop_fakes) {
    pid_t pid = fakes.pid;
    fakes_stop(&fakes);
    CHECK(pid == 0 || kill(pid, 0) != 0);
}
