/* Integration test of src/registry/ against the fake schema registry of tools/fakes.py
 * (Buf CSR / Confluent REST: GET [base]/schemas/ids/{id}, HTTP Basic auth), started here on
 * a free port and stopped at exit (atexit, so a failed case still stops it), the way
 * enrich_test.c starts the enrichment fakes. The fake serves proto/factoids/v1/factoid.proto
 * under id 1 and an incompatible Factoid under id 2; every other id is a 404 (40403).
 * Request counts come from the fake's GET /_stats ("did this check make an HTTP call?"),
 * faults from POST /_control (outage true = 503, "refuse" = TCP reset, latency_ms). The
 * fake FIDO service runs beside it as "a wrong URL": a server that answers 404 to
 * /schemas/ids/{id} without the registry's error_code 40403.
 * Runs from the repository root (scripts/run-tests does); CGW_PYTHON overrides the venv.
 */
#define TEST_MAIN
#include "test.h"

#include "registry/registry.h"

#include "fakes_proc.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>

#define USER "cgw-bot"
#define TOKEN "test-token-4f1c9a"
#define ENDPOINT "GET /schemas/ids/{id}"

static struct fakes_proc fake;
static char url[96], other_url[96];

/* ---- the fake ---------------------------------------------------------------------------- */

static void start_fake(void) {
    static const char *const args[] = {"--registry-user", USER, "--registry-token", TOKEN,
                                        "--registry-id", "1", "--registry-incompatible-id", "2",
                                        NULL};
    if (fake.pid > 0) return;
    fakes_start(&fake, "registry,fido", args);
    fakes_url(&fake, "registry", "", url, sizeof url);
    fakes_url(&fake, "fido", "", other_url, sizeof other_url);
}

static void control(const char *json) { fakes_control(&fake, "registry", json); }

/* A fresh fake for each case: no faults, zeroed stats. */
static void reset_fake(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    start_fake();
    control("{\"latency_ms\":0,\"error_rate\":0,\"outage\":false,\"reset_stats\":true}");
}

/* Requests the fake received for schema ids, all statuses; with status, only that one. */
static long fake_calls(const char *status) {
    return fakes_stats(&fake, "registry", ENDPOINT, status);
}

/* ---- clients ----------------------------------------------------------------------------- */

static struct registry *client_with(const char *base, const char *token, long timeout_ms,
                                    atomic_bool *cancel) {
    struct registry_options o;
    registry_options_init(&o);
    o.url = base;
    o.username = USER;
    o.token = token;
    o.timeout_ms = timeout_ms;
    o.cancel = cancel;
    char err[256];
    struct registry *r = registry_new(&o, err, sizeof err);
    CHECKF(r, "registry_new: %s", err);
    return r;
}

static struct registry *client_at(const char *base, const char *token, long timeout_ms) {
    return client_with(base, token, timeout_ms, NULL);
}

static struct registry *client(void) { return client_at(url, TOKEN, 3000); }

static struct registry_stats stats(struct registry *r) {
    struct registry_stats s;
    registry_get_stats(r, &s);
    return s;
}

/* Checks id, expects verdict and a reason holding frag (when not NULL). */
static void expect(struct registry *r, int32_t id, registry_verdict want, const char *frag) {
    char why[256];
    registry_verdict v = registry_check(r, id, why, sizeof why);
    CHECKF(v == want, "schema id %d: %s (%s), expected %s", (int)id, registry_verdict_name(v),
           why, registry_verdict_name(want));
    CHECKF(why[0], "schema id %d: empty reason", (int)id);
    CHECKF(!frag || strstr(why, frag), "schema id %d: reason '%s' lacks '%s'", (int)id, why,
           frag);
    CHECKF(!strstr(why, TOKEN), "the token leaked into '%s'", why);
}

/* ---- cases ------------------------------------------------------------------------------- */

TEST(id_1_is_accepted_then_answered_from_the_cache) {
    reset_fake();
    struct registry *r = client();
    CHECK_EQ_STR(registry_mode(r), "registry");
    expect(r, 1, REGISTRY_ACCEPTED, "factoids.v1.Factoid");
    CHECK_EQ_INT(fake_calls("200"), 1);
    for (int i = 0; i < 5; i++) expect(r, 1, REGISTRY_ACCEPTED, "factoids.v1.Factoid");
    char small[8];                           /* a hit's reason cut to the caller's buffer */
    CHECK_EQ_INT(registry_check(r, 1, small, sizeof small), REGISTRY_ACCEPTED);
    CHECK_EQ_STR(small, "schema ");
    CHECK_EQ_INT(fake_calls(NULL), 1);
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.lookups, 7);
    CHECK_EQ_INT(s.cache_hits, 6);
    CHECK_EQ_INT(s.http_calls, 1);
    CHECK_EQ_INT(s.accepted, 7);
    CHECK_EQ_INT(s.cached_ids, 1);
    registry_free(r);
}

TEST(id_2_incompatible_is_refused_naming_the_field) {
    reset_fake();
    struct registry *r = client();
    expect(r, 2, REGISTRY_REFUSED, "incompatible: Factoid.factoid_id has type int64");
    expect(r, 2, REGISTRY_REFUSED, "Factoid.factoid_id");
    CHECK_EQ_INT(fake_calls(NULL), 1);
    CHECK_EQ_INT(stats(r).refused, 2);
    registry_free(r);
}

TEST(unknown_id_404_is_refused_and_cached) {
    reset_fake();
    struct registry *r = client();
    expect(r, 99, REGISTRY_REFUSED, "unknown schema id 99");
    CHECK_EQ_INT(fake_calls("404"), 1);
    expect(r, 99, REGISTRY_REFUSED, "unknown schema id 99");
    CHECK_EQ_INT(fake_calls(NULL), 1);       /* the second check made no HTTP call */
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.http_calls, 1);
    CHECK_EQ_INT(s.cache_hits, 1);
    registry_free(r);
}

TEST(wrong_credentials_are_unavailable_and_not_cached) {
    reset_fake();
    struct registry *r = client_at(url, "not-the-token-7", 3000);
    char why[256];
    CHECK_EQ_INT(registry_check(r, 1, why, sizeof why), REGISTRY_UNAVAILABLE);
    CHECKF(strstr(why, "credentials") && strstr(why, "401"), "reason '%s'", why);
    CHECKF(!strstr(why, "not-the-token-7"), "token in '%s'", why);
    CHECK_EQ_INT(registry_check(r, 99, why, sizeof why), REGISTRY_UNAVAILABLE);
    CHECK_EQ_INT(registry_check(r, 1, why, sizeof why), REGISTRY_UNAVAILABLE);
    CHECK_EQ_INT(fake_calls("401"), 3);      /* nothing cached: each check asked again */
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.failures, 3);
    CHECK_EQ_INT(s.cached_ids, 0);
    registry_free(r);
    /* No credentials at all: the same. */
    struct registry_options o;
    registry_options_init(&o);
    o.url = url;
    char err[128];
    r = registry_new(&o, err, sizeof err);
    CHECKF(r, "%s", err);
    expect(r, 1, REGISTRY_UNAVAILABLE, "credentials");
    registry_free(r);
}

static void outage_then_recovery(const char *how, const char *frag) {
    reset_fake();
    struct registry *r = client_at(url, TOKEN, 2000);
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    expect(r, 99, REGISTRY_REFUSED, NULL);
    char sw[64];
    snprintf(sw, sizeof sw, "{\"outage\":%s,\"reset_stats\":true}", how);
    control(sw);
    /* Known ids keep answering, with no HTTP call at all. */
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    expect(r, 99, REGISTRY_REFUSED, NULL);
    CHECK_EQ_INT(fake_calls(NULL), 0);
    /* An unknown id is transient: the record waits. */
    expect(r, 2, REGISTRY_UNAVAILABLE, frag);
    long first = fake_calls(NULL);
    expect(r, 2, REGISTRY_UNAVAILABLE, frag);
    /* Not cached: asked each time. (After a reset, curl itself retries once on a fresh
     * connection when the reused one died, so "refuse" may count two requests per check.) */
    CHECKF(first >= 1 && fake_calls(NULL) > first, "fake saw %ld then %ld requests", first,
           fake_calls(NULL));
    control("{\"outage\":false}");
    expect(r, 2, REGISTRY_REFUSED, "incompatible");
    expect(r, 7, REGISTRY_REFUSED, "unknown schema id 7");
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.failures, 2);
    CHECK_EQ_INT(s.cached_ids, 4);
    registry_free(r);
}

TEST(outage_503_unknown_id_unavailable_known_id_accepted_then_recovers) {
    outage_then_recovery("true", "HTTP 503");
}

TEST(outage_reset_unknown_id_unavailable_known_id_accepted_then_recovers) {
    outage_then_recovery("\"refuse\"", "unreachable");
}

TEST(timeout_is_unavailable_then_recovers) {
    reset_fake();
    struct registry *r = client_at(url, TOKEN, 300);
    control("{\"latency_ms\":1500}");
    expect(r, 1, REGISTRY_UNAVAILABLE, "unreachable");
    control("{\"latency_ms\":0}");
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    registry_free(r);
}

/* The owner's stop flag set while the registry does not answer (the fake frozen): the lookup
 * ends as cancelled, not after its 60 s timeout. */
TEST(the_cancel_flag_ends_a_lookup_the_registry_does_not_answer) {
    reset_fake();
    static atomic_bool stopping;
    struct registry *r = client_with(url, TOKEN, 60000, &stopping);
    struct fakes_stopper stopper;
    kill(fake.pid, SIGSTOP);
    fakes_stop_later(&stopper, &stopping, 300);
    expect(r, 1, REGISTRY_UNAVAILABLE, "cancelled");
    fakes_stop_joined(&stopper);
    kill(fake.pid, SIGCONT);
    CHECK_EQ_INT(stats(r).cached_ids, 0);
    registry_free(r);
}

TEST(nothing_listening_is_unavailable) {
    int p = fakes_free_port();
    CHECK(p > 0);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%d", p);
    struct registry *r = client_at(u, TOKEN, 1000);
    expect(r, 1, REGISTRY_UNAVAILABLE, "unreachable");
    CHECK_EQ_INT(stats(r).cached_ids, 0);
    registry_free(r);
}

TEST(a_404_that_is_not_the_registrys_is_unavailable) {
    reset_fake();
    struct registry *r = client_at(other_url, TOKEN, 3000);
    expect(r, 1, REGISTRY_UNAVAILABLE, "without error_code 40403");
    expect(r, 1, REGISTRY_UNAVAILABLE, NULL);
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.http_calls, 2);           /* not cached */
    CHECK_EQ_INT(s.cached_ids, 0);
    registry_free(r);
}

TEST(buf_style_base_path_and_trailing_slash_work) {
    reset_fake();
    char u[160];
    snprintf(u, sizeof u, "%s/integrations/confluent/cgw/", url);
    struct registry *r = client_at(u, TOKEN, 3000);
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    expect(r, 2, REGISTRY_REFUSED, NULL);
    registry_free(r);
}

/* Every reason is cleaned where it is made (registry.c): the ones made without the registry
 * too, and a reason is cut to the caller's buffer, never overrun. */
TEST(local_reasons_hide_the_token_and_are_cut_to_the_callers_buffer) {
    static const int ids[] = {1};
    struct registry_options o;
    registry_options_init(&o);
    o.allowed_ids = ids;
    o.allowed_ids_count = 1;
    o.token = "allowed";                    /* a word of the allowlist's own reasons */
    char err[128], why[256], small[10];
    struct registry *r = registry_new(&o, err, sizeof err);
    CHECKF(r, "%s", err);
    CHECK_EQ_INT(registry_check(r, 1, why, sizeof why), REGISTRY_ACCEPTED);
    CHECKF(!strstr(why, "allowed") && strstr(why, "*******_schema_ids"), "reason '%s'", why);
    CHECK_EQ_INT(registry_check(r, 2, why, sizeof why), REGISTRY_REFUSED);
    CHECKF(!strstr(why, "allowed") && strstr(why, "schema id 2"), "reason '%s'", why);
    for (int i = 0; i < 3; i++) {            /* the kept last verdict follows the id */
        CHECK_EQ_INT(registry_check(r, 1, why, sizeof why), REGISTRY_ACCEPTED);
        CHECKF(strstr(why, "schema id 1 is in") && !strstr(why, "allowed"), "reason '%s'", why);
        CHECK_EQ_INT(registry_check(r, 1, why, sizeof why), REGISTRY_ACCEPTED);
        CHECKF(strstr(why, "schema id 1 is in") && !strstr(why, "allowed"), "kept: '%s'", why);
        CHECK_EQ_INT(registry_check(r, 2, why, sizeof why), REGISTRY_REFUSED);
        CHECKF(strstr(why, "schema id 2 is not in"), "reason '%s'", why);
    }
    memset(small, 'x', sizeof small);       /* why: id 2's reason, from the last round */
    CHECK_EQ_INT(registry_check(r, 2, small, sizeof small), REGISTRY_REFUSED);
    CHECK_EQ_INT((int)strlen(small), (int)sizeof small - 1);
    CHECKF(strncmp(small, why, sizeof small - 1) == 0, "'%s' is not the start of '%s'", small, why);
    CHECK_EQ_INT(registry_check(r, -1, why, sizeof why), REGISTRY_REFUSED);
    CHECKF(strstr(why, "no schema id"), "reason '%s'", why);
    struct registry_stats st;
    registry_get_stats(r, &st);
    CHECK_EQ_INT(st.lookups, 13);
    CHECK_EQ_INT(st.accepted, 7);
    CHECK_EQ_INT(st.refused, 6);
    registry_free(r);
}

TEST(allowlist_mode_without_url) {
    reset_fake();
    static const int ids[] = {1, 5};
    struct registry_options o;
    registry_options_init(&o);
    o.allowed_ids = ids;
    o.allowed_ids_count = 2;
    char err[128];
    struct registry *r = registry_new(&o, err, sizeof err);
    CHECKF(r, "%s", err);
    CHECK_EQ_STR(registry_mode(r), "allowlist");
    expect(r, 1, REGISTRY_ACCEPTED, "allowed");
    expect(r, 5, REGISTRY_ACCEPTED, NULL);
    expect(r, 2, REGISTRY_REFUSED, "not in schema_registry.allowed_schema_ids");
    expect(r, -1, REGISTRY_REFUSED, "no schema id");
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.http_calls, 0);
    CHECK_EQ_INT(s.accepted, 2);
    CHECK_EQ_INT(s.refused, 2);
    CHECK_EQ_INT(fake_calls(NULL), 0);
    registry_free(r);
}

TEST(open_mode_without_url_or_allowlist) {
    struct registry_options o;
    registry_options_init(&o);
    char err[128];
    struct registry *r = registry_new(&o, err, sizeof err);
    CHECKF(r, "%s", err);
    CHECK_EQ_STR(registry_mode(r), "open");
    expect(r, 12345, REGISTRY_ACCEPTED, NULL);
    expect(r, -1, REGISTRY_REFUSED, NULL);
    registry_free(r);
}

TEST(allowlist_with_url_refuses_unlisted_ids_without_asking) {
    reset_fake();
    static const int ids[] = {1};
    struct registry_options o;
    registry_options_init(&o);
    o.url = url;
    o.username = USER;
    o.token = TOKEN;
    o.allowed_ids = ids;
    o.allowed_ids_count = 1;
    char err[128];
    struct registry *r = registry_new(&o, err, sizeof err);
    CHECKF(r, "%s", err);
    expect(r, 2, REGISTRY_REFUSED, "not in");
    CHECK_EQ_INT(fake_calls(NULL), 0);
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    CHECK_EQ_INT(fake_calls(NULL), 1);
    registry_free(r);
}

TEST(bad_options_are_refused_without_echoing_secrets) {
    struct registry_options o;
    char err[256];
    registry_options_init(&o);
    o.url = "http://bot:s3cr3t-pw@127.0.0.1:1";
    CHECK(!registry_new(&o, err, sizeof err));
    CHECKF(strstr(err, "credentials") && !strstr(err, "s3cr3t-pw"), "err '%s'", err);
    o.url = "ftp://127.0.0.1/x";
    CHECK(!registry_new(&o, err, sizeof err));
    CHECKF(strstr(err, "http"), "err '%s'", err);
    o.url = "not a url";
    CHECK(!registry_new(&o, err, sizeof err));
    o.url = "http://127.0.0.1:1/?q=1";
    CHECK(!registry_new(&o, err, sizeof err));
    o.url = NULL;
    o.timeout_ms = 0;
    CHECK(!registry_new(&o, err, sizeof err));
    CHECKF(strstr(err, "timeout_ms"), "err '%s'", err);
}

TEST(entries_list_the_cache_sorted) {
    reset_fake();
    struct registry *r = client();
    expect(r, 99, REGISTRY_REFUSED, NULL);
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    expect(r, 2, REGISTRY_REFUSED, NULL);
    struct registry_entry e[8];
    CHECK_EQ_INT(registry_entries(r, e, 8), 3);
    CHECK_EQ_INT(e[0].schema_id, 1);
    CHECK_EQ_INT(e[0].verdict, REGISTRY_ACCEPTED);
    CHECK_EQ_INT(e[1].schema_id, 2);
    CHECK(strstr(e[1].reason, "incompatible"));
    CHECK_EQ_INT(e[2].schema_id, 99);
    CHECK(strstr(e[2].reason, "unknown schema id"));
    CHECK_EQ_INT(registry_entries(r, e, 1), 3);
    registry_free(r);
}

TEST(full_cache_evicts_refused_ids_never_accepted_ones) {
    reset_fake();
    struct registry_options o;
    registry_options_init(&o);
    o.url = url;
    o.username = USER;
    o.token = TOKEN;
    o.max_cached_ids = 2;
    char err[128];
    struct registry *r = registry_new(&o, err, sizeof err);
    CHECKF(r, "%s", err);
    expect(r, 1, REGISTRY_ACCEPTED, NULL);
    for (int id = 100; id < 110; id++) expect(r, id, REGISTRY_REFUSED, NULL);
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.cached_ids, 2);
    CHECK_EQ_INT(s.evictions, 9);
    long before = fake_calls(NULL);
    expect(r, 1, REGISTRY_ACCEPTED, NULL);      /* still cached */
    expect(r, 109, REGISTRY_REFUSED, NULL);     /* the newest refused id too */
    CHECK_EQ_INT(fake_calls(NULL), before);
    expect(r, 100, REGISTRY_REFUSED, NULL);     /* evicted: asked again */
    CHECK_EQ_INT(fake_calls(NULL), before + 1);
    registry_free(r);
}

struct worker_arg {
    struct registry *r;
    int bad;
};

static void *worker(void *p) {
    struct worker_arg *a = p;
    static const int32_t ids[] = {1, 2, 99};
    static const registry_verdict want[] = {REGISTRY_ACCEPTED, REGISTRY_REFUSED,
                                            REGISTRY_REFUSED};
    for (int i = 0; i < 60; i++) {
        char why[256];
        struct registry_stats s;
        struct registry_entry e[4];
        if (registry_check(a->r, ids[i % 3], why, sizeof why) != want[i % 3]) a->bad++;
        registry_get_stats(a->r, &s);
        registry_entries(a->r, e, 4);
    }
    return NULL;
}

TEST(concurrent_checks_resolve_each_id_once) {
    reset_fake();
    struct registry *r = client();
    pthread_t t[8];
    struct worker_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (struct worker_arg){r, 0};
        CHECK(pthread_create(&t[i], NULL, worker, &a[i]) == 0);
    }
    int bad = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        bad += a[i].bad;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(fake_calls(NULL), 3);
    struct registry_stats s = stats(r);
    CHECK_EQ_INT(s.http_calls, 3);
    CHECK_EQ_INT(s.lookups, 8 * 60);
    registry_free(r);
}
