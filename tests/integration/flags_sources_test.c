/* Integration test of the two remote flag sources of src/flags/:
 *   - flags_http.c against the fake Flipper API of tools/fakes.py, started here on a free port
 *     with a token, a poll-interval header and initial flags (stopped at exit, so a failed
 *     case still stops it); flags are replaced through POST /_control/flags, faults through
 *     POST /_control, request counts read from GET /_stats;
 *   - flags_valkey.c against the stack's Valkey, with Flipper's Redis-adapter layout written
 *     here with hiredis under a key prefix unique to this run (deleted at exit).
 * Expected evaluations use the Zlib.crc32 vectors of docs/contract.md §4, not the code
 * under test. Runs from the repository root (scripts/run-tests does); CGW_PYTHON overrides the
 * venv python.
 */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include "flags/flags.h"

#include "fakes_proc.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_HEADER "X-Flipper-Token"
#define POLL_INTERVAL_S 7

static struct fakes_proc fakes;
static int flipper_port;
static char flipper_url[64], flagsfile[128], token[64];

/* docs/contract.md §4: crc32("search" "User;1") % 100000 = 97600; crc32("my_feature" "42") % 100000
 * = 11769; crc32("my_feature" "1") % 100000 = 42944. */
static const char *const initial_flags =
    "{\"version\":1,\"features\":{"
    "\"consumer_graph_receipt_killswitch\":{\"boolean\":\"true\"},"
    "\"consumer_graph_factoid_killswitch\":{\"boolean\":null},"
    "\"consumer_graph_ingestion\":{\"actors\":[\"User;7\",\"User;9\"]},"
    "\"search\":{\"percentage_of_actors\":\"97.7\"},"
    "\"my_feature\":{\"percentage_of_actors\":\"12.5\"},"
    "\"beta\":{\"groups\":[\"admins\"]}}}";

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the fake Flipper API ------------------------------------------------------------------ */

static void remove_flags_file(void) { unlink(flagsfile); }

static void write_flags_file(void) {
    static int registered;
    snprintf(flagsfile, sizeof flagsfile, "/tmp/cgw-flags-sources-%d.json", (int)getpid());
    FILE *f = fopen(flagsfile, "w");
    CHECKF(f, "cannot write %s", flagsfile);
    fputs(initial_flags, f);
    fclose(f);
    if (!registered) registered = atexit(remove_flags_file) == 0;   /* after the fakes stop */
}

static void start_fakes(void) {
    if (fakes.pid > 0) return;
    snprintf(token, sizeof token, "tok-%d-%ld-secret", (int)getpid(), (long)time(NULL));
    write_flags_file();
    char interval[16];
    snprintf(interval, sizeof interval, "%d", POLL_INTERVAL_S);
    const char *const args[] = {"--flipper-token", token, "--flipper-token-header", TOKEN_HEADER,
                                "--flipper-poll-interval", interval, "--flags", flagsfile, NULL};
    fakes_start(&fakes, "flipper", args);
    flipper_port = fakes_port(&fakes, "flipper");
    fakes_url(&fakes, "flipper", "", flipper_url, sizeof flipper_url);
}

static void control(const char *json) { fakes_control(&fakes, "flipper", json); }
static void set_flags(const char *json) {
    json_decref(fakes_hook(&fakes, "flipper", "/_control/flags", json));
}

/* A fresh fake for a case: no faults, the start-time switches and flags, zeroed stats. */
static void reset_flipper(void) {
    start_fakes();
    char sw[256];
    snprintf(sw, sizeof sw,
             "{\"outage\":false,\"latency_ms\":0,\"error_rate\":0,\"poll_interval\":%d,"
             "\"value_style\":\"strings\",\"etag_style\":\"strong\",\"reset_stats\":true}",
             POLL_INTERVAL_S);
    control(sw);
    set_flags(initial_flags);
}

/* GET /features answers with the given status since the last reset. */
static long features_count(const char *status) {
    return fakes_stats(&fakes, "flipper", "GET /features", status);
}

static struct flags_http *open_http(const char *url, const char *tok) {
    struct flags_http_options o = {.url = url, .token = tok, .token_header = TOKEN_HEADER,
                                   .connect_timeout_ms = 1000, .timeout_ms = 3000};
    char err[256] = "";
    struct flags_http *h = flags_open_http(&o, err, sizeof err);
    CHECKF(h, "flags_open_http: %s", err);
    return h;
}

/* The initial flags, as Flipper evaluates them. */
static void check_initial(const struct flags_set *s) {
    CHECK_EQ_INT(flags_count(s), 6);
    CHECK(flags_is_on(s, "consumer_graph_receipt_killswitch"));
    CHECK(!flags_is_on(s, "consumer_graph_factoid_killswitch"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "7"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "9"));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "8"));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", NULL));
    CHECK(flags_is_enabled_for(s, "search", "User;", "1"));             /* 97600 < 97700 */
    CHECK(flags_is_enabled_for(s, "my_feature", "", "42"));             /* 11769 < 12500 */
    CHECK(!flags_is_enabled_for(s, "my_feature", "", "1"));             /* 42944 >= 12500 */
    CHECK(!flags_is_enabled_for(s, "beta", "User;", "1"));
    const struct flags_feature *beta = flags_find(s, "beta");
    CHECK(beta && (beta->unsupported & FLAGS_GATE_GROUPS) && beta->groups_count == 1);
    CHECK(!flags_is_on(s, "no_such_feature"));
}

/* ---- HTTP source ------------------------------------------------------------------------------ */

TEST(http_first_poll_gives_snapshot) {
    reset_flipper();
    struct flags_http *h = open_http(flipper_url, token);
    CHECK_EQ_INT(flags_http_suggested_interval_ms(h), 0);
    struct flags_set *s = NULL;
    char err[256] = "";
    int rc = flags_poll_http(h, &s, err, sizeof err);
    CHECKF(rc == 1 && s, "poll: %d %s", rc, err);
    check_initial(s);
    CHECK_EQ_INT(flags_http_suggested_interval_ms(h), POLL_INTERVAL_S * 1000);
    flags_release(s);
    flags_close_http(h);
    CHECK_EQ_INT(features_count("200"), 1);
}

TEST(http_unchanged_is_304) {
    reset_flipper();
    struct flags_http *h = open_http(flipper_url, token);
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECKF(flags_poll_http(h, &s, err, sizeof err) == 1, "%s", err);
    flags_release(s);
    for (int i = 0; i < 3; i++) {
        s = (struct flags_set *)1;
        int rc = flags_poll_http(h, &s, err, sizeof err);
        CHECKF(rc == 0, "poll %d: %d %s", i, rc, err);
        CHECK(s == NULL);
    }
    CHECK_EQ_INT(features_count("200"), 1);
    CHECK_EQ_INT(features_count("304"), 3);
    flags_close_http(h);
}

TEST(http_change_gives_new_snapshot) {
    reset_flipper();
    struct flags_http *h = open_http(flipper_url, token);
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECKF(flags_poll_http(h, &s, err, sizeof err) == 1, "%s", err);
    CHECK(flags_is_enabled_for(s, "search", "User;", "1"));
    flags_release(s);
    set_flags("{\"version\":1,\"features\":{"
              "\"consumer_graph_receipt_killswitch\":{},"
              "\"consumer_graph_ingestion\":{\"actors\":[\"User;8\"],\"percentage_of_actors\":\"0\"},"
              "\"search\":{\"percentage_of_actors\":\"97.5\"}}}");
    s = NULL;
    int rc = flags_poll_http(h, &s, err, sizeof err);
    CHECKF(rc == 1 && s, "poll after change: %d %s", rc, err);
    CHECK_EQ_INT(flags_count(s), 3);
    CHECK(!flags_is_on(s, "consumer_graph_receipt_killswitch"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "8"));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "7"));
    CHECK(!flags_is_enabled_for(s, "search", "User;", "1"));           /* 97600 >= 97500 */
    CHECK(flags_find(s, "beta") == NULL);
    flags_release(s);
    CHECKF(flags_poll_http(h, &s, err, sizeof err) == 0, "%s", err);
    flags_close_http(h);
}

TEST(http_wrong_token_fails_without_showing_it) {
    reset_flipper();
    char wrong[96];
    snprintf(wrong, sizeof wrong, "%s-but-wrong", token);
    const char *const tokens[] = {wrong, NULL};
    for (int i = 0; i < 2; i++) {
        struct flags_http *h = open_http(flipper_url, tokens[i]);
        struct flags_set *s = NULL;
        char err[256] = "";
        int rc = flags_poll_http(h, &s, err, sizeof err);
        CHECKF(rc == -1 && !s, "poll with %s token: %d", tokens[i] ? "a wrong" : "no", rc);
        CHECKF(strstr(err, "401") != NULL, "message: %s", err);
        CHECKF(!strstr(err, token), "the message shows the token: %s", err);
        CHECKF(strstr(err, "/features") != NULL, "message names the URL: %s", err);
        flags_close_http(h);
    }
    CHECK_EQ_INT(features_count("401"), 2);
}

TEST(http_outage_is_an_error_then_recovers) {
    reset_flipper();
    struct flags_http *h = open_http(flipper_url, token);
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECKF(flags_poll_http(h, &s, err, sizeof err) == 1, "%s", err);
    flags_release(s);
    control("{\"outage\":true}");
    err[0] = '\0';
    CHECK_EQ_INT(flags_poll_http(h, &s, err, sizeof err), -1);
    CHECKF(strstr(err, "503") != NULL, "message: %s", err);
    CHECK(s == NULL);
    control("{\"outage\":\"refuse\"}");
    err[0] = '\0';
    double t0 = now_s();
    CHECK_EQ_INT(flags_poll_http(h, &s, err, sizeof err), -1);
    CHECKF(now_s() - t0 < 2.0, "a refused connection took %.1f s", now_s() - t0);
    CHECKF(err[0] && !strstr(err, token), "message: %s", err);
    control("{\"outage\":false}");
    int rc = flags_poll_http(h, &s, err, sizeof err);       /* nothing changed meanwhile */
    CHECKF(rc == 0 && !s, "after the outage: %d %s", rc, err);
    set_flags("{\"version\":1,\"features\":{\"search\":{\"boolean\":\"true\"}}}");
    rc = flags_poll_http(h, &s, err, sizeof err);
    CHECKF(rc == 1 && s && flags_is_on(s, "search"), "after a change: %d %s", rc, err);
    flags_release(s);
    flags_close_http(h);
}

TEST(http_server_down_fails_fast) {
    char url[64], err[256] = "";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/flipper/api", fakes_free_port());
    struct flags_http *h = open_http(url, "some-secret-token");
    struct flags_set *s = NULL;
    double t0 = now_s();
    CHECK_EQ_INT(flags_poll_http(h, &s, err, sizeof err), -1);
    CHECKF(now_s() - t0 < 1.0, "took %.1f s", now_s() - t0);
    CHECKF(strstr(err, "/flipper/api/features") && !strstr(err, "some-secret-token"), "message: %s", err);
    flags_close_http(h);
}

TEST(http_poll_interval_header_is_exposed) {
    reset_flipper();
    struct flags_http *h = open_http(flipper_url, token);
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECKF(flags_poll_http(h, &s, err, sizeof err) == 1, "%s", err);
    flags_release(s);
    CHECK_EQ_INT(flags_http_suggested_interval_ms(h), POLL_INTERVAL_S * 1000);
    control("{\"poll_interval\":45}");
    CHECKF(flags_poll_http(h, &s, err, sizeof err) == 0, "%s", err);    /* read from a 304 too */
    CHECK_EQ_INT(flags_http_suggested_interval_ms(h), 45000);
    control("{\"outage\":true}");
    CHECK_EQ_INT(flags_poll_http(h, &s, err, sizeof err), -1);          /* an error keeps it */
    CHECK_EQ_INT(flags_http_suggested_interval_ms(h), 45000);
    flags_close_http(h);
}

TEST(http_typed_values_and_weak_etags) {
    reset_flipper();
    control("{\"value_style\":\"typed\",\"etag_style\":\"weak\"}");
    struct flags_http *h = open_http(flipper_url, token);
    struct flags_set *s = NULL;
    char err[256] = "";
    int rc = flags_poll_http(h, &s, err, sizeof err);
    CHECKF(rc == 1 && s, "%d %s", rc, err);
    check_initial(s);
    flags_release(s);
    rc = flags_poll_http(h, &s, err, sizeof err);
    CHECKF(rc == 0, "weak ETag not matched: %d %s", rc, err);
    CHECK_EQ_INT(features_count("304"), 1);
    flags_close_http(h);
}

TEST(http_url_forms) {
    reset_flipper();
    char url[160];
    const char *const forms[] = {"%s", "%s/", "%s/features", "%s/features/", "%s/?exclude_gate_names=true"};
    for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
        snprintf(url, sizeof url, forms[i], flipper_url);
        struct flags_http *h = open_http(url, token);
        char want[96];
        snprintf(want, sizeof want, "%s/features", flipper_url);
        CHECK_EQ_STR(flags_http_url(h), want);
        struct flags_set *s = NULL;
        char err[256] = "";
        int rc = flags_poll_http(h, &s, err, sizeof err);
        CHECKF(rc == 1 && flags_count(s) == 6, "%s: %d %s", url, rc, err);
        flags_release(s);
        flags_close_http(h);
    }
    /* userinfo (redacted by src/http's one redactor) and query never reach messages */
    snprintf(url, sizeof url, "http://bob:pw-secret@127.0.0.1:%d/api?sig=q-secret", flipper_port);
    struct flags_http *h = open_http(url, token);
    char want[96];
    snprintf(want, sizeof want, "http://<redacted>@127.0.0.1:%d/api/features", flipper_port);
    CHECK_EQ_STR(flags_http_url(h), want);
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECK_EQ_INT(flags_poll_http(h, &s, err, sizeof err), -1);         /* 404: no /api here */
    CHECKF(strstr(err, "404") && !strstr(err, "secret"), "message: %s", err);
    flags_close_http(h);
}

TEST(http_bad_options) {
    const struct flags_http_options bad[] = {
        {.url = NULL},
        {.url = "ftp://127.0.0.1/"},
        {.url = "http://127.0.0.1/#x"},
        {.url = "http://127.0.0.1/", .token = "a\r\nX-Evil: 1"},
        {.url = "http://127.0.0.1/", .token = "t", .token_header = "Bad Header:"},
        {.url = "http://127.0.0.1/", .timeout_ms = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[256] = "";
        struct flags_http *h = flags_open_http(&bad[i], err, sizeof err);
        CHECKF(!h, "options %zu accepted", i);
        CHECKF(strncmp(err, "flags: ", 7) == 0 && !strstr(err, "X-Evil"), "options %zu: %s", i, err);
    }
}

/* ---- Valkey source ------------------------------------------------------------------------------ */

static char run_prefix[96];
static redisContext *vctx;              /* the test's own connection, for setting up keys */

static redisContext *valkey(void) {
    if (vctx && !vctx->err) return vctx;
    if (vctx) redisFree(vctx);
    struct timeval tv = {2, 0};
    vctx = redisConnectWithTimeout(STACK_VALKEY_HOST, STACK_VALKEY_PORT, tv);
    CHECKF(vctx && !vctx->err, "connect to valkey %s:%d: %s", STACK_VALKEY_HOST, STACK_VALKEY_PORT,
           vctx ? vctx->errstr : "out of memory");
    return vctx;
}

/* Runs a command given as argv strings (NULL-terminated); returns the reply (free it). */
static redisReply *vcmd(const char *first, ...) {
    const char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 32; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    redisReply *r = redisCommandArgv(valkey(), argc, argv, NULL);
    CHECKF(r && r->type != REDIS_REPLY_ERROR, "%s: %s", argv[0], r ? r->str : valkey()->errstr);
    return r;
}

#define V(...) freeReplyObject(vcmd(__VA_ARGS__, (const char *)NULL))

/* Deletes every key of this run (atexit). */
static void cleanup_valkey(void) {
    if (vctx) redisFree(vctx);
    vctx = NULL;
    if (!run_prefix[0]) return;
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(STACK_VALKEY_HOST, STACK_VALKEY_PORT, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return;
    }
    char pattern[128], cursor[32] = "0";
    snprintf(pattern, sizeof pattern, "%s*", run_prefix);
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            freeReplyObject(r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            freeReplyObject(redisCommand(c, "DEL %b", r->element[1]->element[i]->str,
                                         r->element[1]->element[i]->len));
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
}

/* A key prefix unique to this run and case: "cgw:flags:test:<pid>:<time>:<case>:" (under
 * cgw:flags:, the keys the stack's ACL user may read). */
static const char *case_prefix(const char *name) {
    static char buf[160];
    if (!run_prefix[0]) {
        snprintf(run_prefix, sizeof run_prefix, "cgw:flags:test:%d:%ld:", (int)getpid(), (long)time(NULL));
        atexit(cleanup_valkey);
    }
    snprintf(buf, sizeof buf, "%s%s:", run_prefix, name);
    return buf;
}

static char *key(const char *prefix, const char *name) {
    static char buf[4][256];
    static int n;
    char *k = buf[n++ % 4];
    snprintf(k, 256, "%s%s", prefix, name);
    return k;
}

static struct flags_valkey *open_valkey(const char *prefix, int port, const char *client_name) {
    struct flags_valkey_options o;
    flags_valkey_options_init(&o);
    o.valkey.host = STACK_VALKEY_HOST;
    o.valkey.port = port;
    o.valkey.client_name = client_name;
    o.valkey.connect_timeout_ms = 500;
    o.valkey.command_timeout_ms = 1000;
    o.key_prefix = prefix;
    char err[256] = "";
    struct flags_valkey *v = flags_open_valkey(&o, err, sizeof err);
    CHECKF(v, "flags_open_valkey: %s", err);
    return v;
}

/* The Redis adapter's layout for the same flags as the HTTP cases (plus its corner cases). */
static void write_adapter_keys(const char *p) {
    V("SADD", key(p, "flipper_features"), "consumer_graph_receipt_killswitch", "consumer_graph_factoid_killswitch",
      "consumer_graph_ingestion", "search", "my_feature", "beta", "declared_only");
    V("HSET", key(p, "consumer_graph_receipt_killswitch"), "boolean", "true");
    V("HSET", key(p, "consumer_graph_factoid_killswitch"), "percentage_of_actors", "0");  /* after disable */
    V("HSET", key(p, "consumer_graph_ingestion"), "actors/User;7", "1", "actors/User;9", "1", "actors/User;a/b", "1");
    V("HSET", key(p, "search"), "percentage_of_actors", "97.7");
    V("HSET", key(p, "my_feature"), "percentage_of_actors", "12.5");
    V("HSET", key(p, "beta"), "groups/admins", "1", "percentage_of_time", "10", "expression",
      "{\"Equal\":[{\"Property\":[\"plan\"]},\"basic\"]}");
    /* a hash whose name is not in the set: Flipper's get_all does not read it */
    V("HSET", key(p, "orphan"), "boolean", "true");
}

static struct flags_set *poll_valkey_ok(struct flags_valkey *v, int want) {
    struct flags_set *s = (struct flags_set *)1;
    char err[256] = "";
    int rc = flags_poll_valkey(v, &s, err, sizeof err);
    CHECKF(rc == want, "poll: %d, wanted %d (%s)", rc, want, err);
    CHECK(want == 1 ? s != NULL : s == NULL);
    return s;
}

TEST(valkey_snapshot_evaluates_like_flipper) {
    const char *p = case_prefix("eval");
    write_adapter_keys(p);
    struct flags_valkey *v = open_valkey(p, STACK_VALKEY_PORT, NULL);
    struct flags_set *s = poll_valkey_ok(v, 1);
    CHECK_EQ_INT(flags_count(s), 7);
    CHECK(flags_is_on(s, "consumer_graph_receipt_killswitch"));
    CHECK(!flags_is_on(s, "consumer_graph_factoid_killswitch"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "7"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "9"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "a/b"));  /* split on the first '/' */
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "8"));
    CHECK(flags_is_enabled_for(s, "search", "User;", "1"));             /* 97600 < 97700 */
    CHECK(flags_is_enabled_for(s, "my_feature", "", "42"));             /* 11769 < 12500 */
    CHECK(!flags_is_enabled_for(s, "my_feature", "", "1"));             /* 42944 >= 12500 */
    const struct flags_feature *beta = flags_find(s, "beta");
    CHECK(beta && !flags_feature_is_enabled_for(beta, "User;", "1"));
    CHECK_EQ_INT(beta->unsupported,
                 FLAGS_GATE_GROUPS | FLAGS_GATE_EXPRESSION | FLAGS_GATE_PERCENTAGE_OF_TIME);
    const struct flags_feature *declared = flags_find(s, "declared_only");
    CHECK(declared && !declared->boolean && declared->actors_count == 0 && declared->unsupported == 0);
    CHECK(flags_find(s, "orphan") == NULL);
    flags_release(s);
    flags_close_valkey(v);
}

TEST(valkey_unchanged_and_changed) {
    const char *p = case_prefix("change");
    write_adapter_keys(p);
    struct flags_valkey *v = open_valkey(p, STACK_VALKEY_PORT, NULL);
    flags_release(poll_valkey_ok(v, 1));
    poll_valkey_ok(v, 0);
    V("HSET", key(p, "search"), "percentage_of_actors", "97.7");       /* the same value again */
    poll_valkey_ok(v, 0);
    /* a hash rebuilt in another field order is the same data */
    V("DEL", key(p, "consumer_graph_ingestion"));
    V("HSET", key(p, "consumer_graph_ingestion"), "actors/User;a/b", "1", "actors/User;9", "1", "actors/User;7", "1");
    poll_valkey_ok(v, 0);

    V("HSET", key(p, "search"), "percentage_of_actors", "97.5");
    struct flags_set *s = poll_valkey_ok(v, 1);
    CHECK(!flags_is_enabled_for(s, "search", "User;", "1"));           /* 97600 >= 97500 */
    CHECK(flags_is_on(s, "consumer_graph_receipt_killswitch"));
    flags_release(s);
    poll_valkey_ok(v, 0);

    V("HDEL", key(p, "consumer_graph_ingestion"), "actors/User;9");
    V("DEL", key(p, "consumer_graph_receipt_killswitch"));            /* Flipper's disable */
    s = poll_valkey_ok(v, 1);
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "9"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "7"));
    CHECK(!flags_is_on(s, "consumer_graph_receipt_killswitch"));
    flags_release(s);

    V("SREM", key(p, "flipper_features"), "beta");
    s = poll_valkey_ok(v, 1);
    CHECK(flags_find(s, "beta") == NULL && flags_count(s) == 6);
    flags_release(s);
    poll_valkey_ok(v, 0);
    flags_close_valkey(v);
}

TEST(valkey_bad_data_is_an_error_until_fixed) {
    const char *p = case_prefix("bad");
    write_adapter_keys(p);
    V("HSET", key(p, "search"), "percentage_of_actors", "12abc");
    struct flags_valkey *v = open_valkey(p, STACK_VALKEY_PORT, NULL);
    for (int i = 0; i < 2; i++) {
        struct flags_set *s = NULL;
        char err[256] = "";
        CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);
        CHECKF(strstr(err, "search") && strstr(err, "percentage_of_actors"), "message: %s", err);
        CHECK(s == NULL);
    }
    V("HSET", key(p, "search"), "percentage_of_actors", "25");
    flags_release(poll_valkey_ok(v, 1));

    /* a feature key of the wrong type (WRONGTYPE), then the set key itself */
    V("DEL", key(p, "my_feature"));
    V("SET", key(p, "my_feature"), "x");
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);
    CHECKF(strstr(err, "WRONGTYPE") && strstr(err, "my_feature"), "message: %s", err);
    V("DEL", key(p, "my_feature"));
    s = poll_valkey_ok(v, 1);                   /* declared, no hash: all gates off */
    CHECK(flags_find(s, "my_feature") && !flags_is_enabled_for(s, "my_feature", "", "42"));
    flags_release(s);
    V("DEL", key(p, "flipper_features"));
    V("SET", key(p, "flipper_features"), "x");
    CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);
    CHECKF(strstr(err, "flipper_features"), "message: %s", err);
    flags_close_valkey(v);
}

TEST(valkey_missing_set_is_empty_snapshot) {
    const char *p = case_prefix("empty");
    struct flags_valkey *v = open_valkey(p, STACK_VALKEY_PORT, NULL);
    struct flags_set *s = poll_valkey_ok(v, 1);
    CHECK_EQ_INT(flags_count(s), 0);
    flags_release(s);
    poll_valkey_ok(v, 0);
    flags_close_valkey(v);
}

TEST(valkey_many_features_in_one_pipeline) {
    const char *p = case_prefix("many");
    redisContext *c = valkey();
    char name[32], field[32];
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof name, "feature_%03d", i);
        redisAppendCommand(c, "SADD %s %s", key(p, "flipper_features"), name);
        snprintf(field, sizeof field, "actors/User;%d", i);
        redisAppendCommand(c, "HSET %s%s %s 1", p, name, field);
    }
    for (int i = 0; i < 1000; i++) {
        void *r = NULL;
        CHECK(redisGetReply(c, &r) == REDIS_OK && r);
        freeReplyObject(r);
    }
    struct flags_valkey *v = open_valkey(p, STACK_VALKEY_PORT, NULL);
    struct flags_set *s = poll_valkey_ok(v, 1);
    CHECK_EQ_INT(flags_count(s), 500);
    CHECK(flags_is_enabled_for(s, "feature_123", "User;", "123"));
    CHECK(!flags_is_enabled_for(s, "feature_123", "User;", "124"));
    flags_release(s);
    poll_valkey_ok(v, 0);
    flags_close_valkey(v);
}

TEST(valkey_unreachable_fails_fast) {
    struct flags_valkey *v = open_valkey("x:", fakes_free_port(), NULL);
    struct flags_set *s = NULL;
    char err[256] = "";
    for (int i = 0; i < 2; i++) {
        double t0 = now_s();
        CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);
        CHECKF(now_s() - t0 < 0.5, "took %.2f s", now_s() - t0);
        CHECKF(strstr(err, "connect") != NULL, "message: %s", err);
        CHECK(s == NULL);
    }
    flags_close_valkey(v);
    char err2[128] = "";
    struct flags_valkey_options bad;
    flags_valkey_options_init(&bad);
    bad.valkey.host = "";
    CHECK(flags_open_valkey(&bad, err2, sizeof err2) == NULL && strstr(err2, "host"));
}

/* The id of the client connection called name, from CLIENT LIST; -1 if none. */
static long long client_id(const char *name) {
    redisReply *r = vcmd("CLIENT", "LIST", (const char *)NULL);
    long long id = -1;
    char want[96];
    snprintf(want, sizeof want, " name=%s ", name);
    for (char *line = r->str; line && *line && id < 0;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strstr(line, want)) sscanf(line, "id=%lld", &id);
        line = nl ? nl + 1 : NULL;
    }
    freeReplyObject(r);
    return id;
}

TEST(valkey_reconnects_after_connection_loss) {
    const char *p = case_prefix("reconnect");
    write_adapter_keys(p);
    char name[64], idbuf[32];
    snprintf(name, sizeof name, "cgw-flags-test-%d", (int)getpid());
    struct flags_valkey *v = open_valkey(p, STACK_VALKEY_PORT, name);
    flags_release(poll_valkey_ok(v, 1));
    long long id = client_id(name);
    CHECKF(id > 0, "no client named %s", name);
    snprintf(idbuf, sizeof idbuf, "%lld", id);
    V("CLIENT", "KILL", "ID", idbuf);
    struct flags_set *s = NULL;
    char err[256] = "";
    CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);       /* the dead connection */
    CHECK(err[0] != '\0');
    poll_valkey_ok(v, 0);                       /* a new connection; data unchanged */
    CHECK(client_id(name) > 0 && client_id(name) != id);
    V("HSET", key(p, "my_feature"), "boolean", "true");
    s = poll_valkey_ok(v, 1);
    CHECK(flags_is_on(s, "my_feature"));
    flags_release(s);
    flags_close_valkey(v);
}

/* The same source over the stack's TLS port as its least-privilege ACL user (read-only on
 * cgw:flags:*), verifying the server against the stack's CA. */
static struct flags_valkey *open_valkey_tls(const char *prefix, const char *ca, const char *password) {
    struct flags_valkey_options o;
    flags_valkey_options_init(&o);
    o.valkey.host = STACK_VALKEY_HOST;
    o.valkey.port = STACK_VALKEY_TLS_PORT;
    o.valkey.tls = true;
    o.valkey.tls_ca_file = stack_valkey_tls(ca);
    o.valkey.username = STACK_VALKEY_USER;
    o.valkey.password = password;
    o.valkey.client_name = "cgw-flags-tls-test";
    o.key_prefix = prefix;
    char err[256] = "";
    struct flags_valkey *v = flags_open_valkey(&o, err, sizeof err);
    CHECKF(v, "flags_open_valkey: %s", err);
    return v;
}

TEST(valkey_over_tls_with_the_acl_user) {
    const char *p = case_prefix("tls");
    write_adapter_keys(p);
    struct flags_valkey *v = open_valkey_tls(p, "ca.crt", STACK_VALKEY_PASSWORD);
    struct flags_set *s = poll_valkey_ok(v, 1);
    CHECK_EQ_INT(flags_count(s), 7);
    CHECK(flags_is_on(s, "consumer_graph_receipt_killswitch"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "7"));
    flags_release(s);
    poll_valkey_ok(v, 0);
    flags_close_valkey(v);
}

TEST(valkey_over_tls_refuses_a_wrong_ca_and_a_wrong_password) {
    const char *p = case_prefix("tlsbad");
    struct flags_set *s = NULL;
    char err[512] = "";
    struct flags_valkey *v = open_valkey_tls(p, "other-ca.crt", STACK_VALKEY_PASSWORD);
    CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);
    CHECKF(strstr(err, "certificate verify failed"), "message: %s", err);
    flags_close_valkey(v);
    v = open_valkey_tls(p, "ca.crt", "not-the-password-4711");
    CHECK_EQ_INT(flags_poll_valkey(v, &s, err, sizeof err), -1);
    CHECKF(strstr(err, "AUTH refused") && !strstr(err, "4711"), "message: %s", err);
    CHECK(s == NULL);
    flags_close_valkey(v);
}
