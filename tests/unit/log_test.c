/* log_test.c: line format, escaping in both formats, thread safety, latches. */
#define TEST_MAIN
#include "test.h"

#include "log/log.h"

#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <unistd.h>

/* Captures what the logger writes: a temporary file as its output descriptor. */
static FILE *cap_file;

static void cap_begin(enum log_format fmt, enum log_level lvl) {
    cap_file = tmpfile();
    log_configure(fmt, lvl, "consumer-graph-worker");
    log_set_output(fileno(cap_file));
}

/* Returns everything written since cap_begin (malloc'd) and restores stdout. */
static char *cap_end(void) {
    long n;
    fflush(cap_file);
    n = lseek(fileno(cap_file), 0, SEEK_END);
    char *s = malloc((size_t)n + 1);
    lseek(fileno(cap_file), 0, SEEK_SET);
    size_t got = fread(s, 1, (size_t)n, cap_file);
    s[got] = '\0';
    fclose(cap_file);
    log_set_output(1);
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
    return s;
}

/* The line after its "ts=<...> " prefix, so expectations need no clock. */
static const char *after_ts(const char *line) {
    const char *sp = strchr(line, ' ');
    return sp ? sp + 1 : line;
}

TEST(logfmt_contract_line_exact) {
    char buf[512];
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, "consumer-graph-worker");
    struct log_field f[] = { LOG_STR("consumer", "receipt"), LOG_STR("receipt_id", "r-1"),
                             LOG_INT("partition", 3), LOG_INT("offset", 12345),
                             LOG_UINT("nodes", 7), LOG_UINT("relationships", 9) };
    size_t n = log_format_line(buf, sizeof buf, LOG_INFO, "[SUCCESS] Persisted graph data", f, 6);
    CHECK_EQ_INT(n, strlen(buf));
    CHECK(strncmp(buf, "ts=", 3) == 0);
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    CHECK_EQ_INT(strchr(buf, ' ') - buf, 3 + 24);
    CHECK_EQ_STR(after_ts(buf),
                 "level=info service_name=consumer-graph-worker msg=\"[SUCCESS] Persisted graph data\" "
                 "consumer=receipt receipt_id=r-1 partition=3 offset=12345 nodes=7 relationships=9\n");
}

/* Every byte, as a key and as a value: a value is bare exactly when it is printable ASCII
 * other than '=', '"' and '\\'; a key keeps exactly the printable ASCII bytes other than '='
 * and '"' ('_' for the rest). The rules the byte-class table of log.c encodes. */
TEST(logfmt_quotes_and_key_bytes_for_every_byte) {
    char buf[256], want[64];
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, "consumer-graph-worker");
    for (int c = 1; c < 0x80; c++) {
        char v[2] = {(char)c, 0};
        struct log_field f[] = { LOG_STR("k", v), LOG_STR(v, "x") };
        bool bare = c > ' ' && c < 0x7f && c != '=' && c != '"' && c != '\\';
        bool key_ok = c > ' ' && c < 0x7f && c != '=' && c != '"';
        log_format_line(buf, sizeof buf, LOG_INFO, "m", f, 2);
        const char *val = strstr(buf, " k=") + 3;
        CHECKF(bare == (val[0] != '"'), "byte 0x%02x as a value: %s", c, val);
        snprintf(want, sizeof want, " %c=x\n", key_ok ? c : '_');
        CHECKF(strstr(buf, want) != NULL, "byte 0x%02x as a key: %s", c, buf);
    }
}

/* Integers are formatted by hand (not snprintf): every edge prints as %lld / %llu would, and
 * the timestamp (its seconds cached per thread) keeps its shape. */
TEST(integer_fields_at_their_limits) {
    char buf[512];
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
    struct log_field f[] = { LOG_INT("a", 0), LOG_INT("b", -1), LOG_INT("c", LLONG_MIN),
                             LOG_INT("d", LLONG_MAX), LOG_UINT("e", ULLONG_MAX), LOG_UINT("f", 10),
                             LOG_INT("g", -1000000007LL) };
    log_format_line(buf, sizeof buf, LOG_INFO, "m", f, 7);
    CHECK_EQ_STR(after_ts(buf),
                 "level=info service_name=consumer-graph-worker msg=m a=0 b=-1 "
                 "c=-9223372036854775808 d=9223372036854775807 e=18446744073709551615 f=10 "
                 "g=-1000000007\n");
    char again[512];
    log_format_line(again, sizeof again, LOG_INFO, "m", f, 7);
    CHECK_EQ_INT(strchr(again, ' ') - again, 3 + 24);
    CHECK(again[3 + 23] == 'Z' && again[3 + 19] == '.' && again[3 + 10] == 'T');
}

TEST(logfmt_flagpoller_text_is_verbatim) {
    char buf[512];
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
    struct log_field f[] = { LOG_STR("old", "off"), LOG_STR("new", "on") };
    log_format_line(buf, sizeof buf, LOG_INFO, "FlagPoller: flag=consumer_graph_receipt_killswitch changed", f, 2);
    CHECK(strstr(buf, "FlagPoller: flag=consumer_graph_receipt_killswitch changed") != NULL);
    CHECK(strstr(buf, " old=off new=on\n") != NULL);
    log_configure(LOG_FORMAT_JSON, LOG_INFO, NULL);
    log_format_line(buf, sizeof buf, LOG_WARN, "[WARN] Skipping receipt", NULL, 0);
    CHECK(strstr(buf, "\"msg\":\"[WARN] Skipping receipt\"") != NULL);
    CHECK(strstr(buf, "\"level\":\"warn\"") != NULL);
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
}

TEST(logfmt_escaping) {
    char buf[1024];
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
    struct log_field f[] = {
        LOG_STR("plain", "abc"),
        LOG_STR("empty", ""),
        LOG_STR("space", "a b"),
        LOG_STR("eq", "a=b"),
        LOG_STR("quote", "say \"hi\""),
        LOG_STR("nl", "line1\nline2\r\t"),
        LOG_STR("ctl", "\x01\x7f"),
        LOG_STR("bad", "x\xff\xc3"),
        LOG_STR("utf8", "caf\xc3\xa9"),
        LOG_STR("bs", "a\\b"),
        LOG_STR("bad key=\"x", "v"),
        LOG_STR("absent", NULL),
        LOG_BOOL("ok", 1),
        LOG_DBL("ratio", 0.1),
    };
    log_format_line(buf, sizeof buf, LOG_ERROR, "[ERROR] x", f, sizeof f / sizeof f[0]);
    CHECK_EQ_STR(after_ts(buf),
                 "level=error service_name=consumer-graph-worker msg=\"[ERROR] x\" plain=abc empty=\"\" "
                 "space=\"a b\" eq=\"a=b\" quote=\"say \\\"hi\\\"\" nl=\"line1\\nline2\\r\\t\" "
                 "ctl=\"\\u0001\\u007f\" bad=\"x\\ufffd\\ufffd\" utf8=\"caf\xc3\xa9\" bs=\"a\\\\b\" "
                 "bad_key__x=v ok=true ratio=0.1\n");
    CHECK(strchr(buf, '\n') == buf + strlen(buf) - 1);
}

TEST(json_escaping_roundtrips) {
    char buf[1024];
    log_configure(LOG_FORMAT_JSON, LOG_INFO, "svc \"x\"");
    const char *nasty = "q\" bs\\ nl\n cr\r tab\t ctl\x02 del\x7f utf8 \xc3\xa9 \xe2\x82\xac";
    struct log_field f[] = { LOG_STR("v", nasty), LOG_INT("n", -5), LOG_UINT("u", 4000000000ULL),
                             LOG_DBL("nan", 0.0 / 0.0), LOG_DBL("d", 2.5), LOG_BOOL("b", 0),
                             LOG_STR("gone", NULL) };
    log_format_line(buf, sizeof buf, LOG_DEBUG, "m\n", f, sizeof f / sizeof f[0]);
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, "consumer-graph-worker");
    CHECK(strchr(buf, '\n') == buf + strlen(buf) - 1);
    json_error_t jerr;
    json_t *o = json_loads(buf, 0, &jerr);
    CHECKF(o != NULL, "invalid JSON: %s in %s", jerr.text, buf);
    CHECK_EQ_STR(json_string_value(json_object_get(o, "v")), nasty);
    CHECK_EQ_STR(json_string_value(json_object_get(o, "msg")), "m\n");
    CHECK_EQ_STR(json_string_value(json_object_get(o, "service_name")), "svc \"x\"");
    CHECK_EQ_STR(json_string_value(json_object_get(o, "level")), "debug");
    CHECK_EQ_INT(json_integer_value(json_object_get(o, "n")), -5);
    CHECK_EQ_INT(json_integer_value(json_object_get(o, "u")), 4000000000LL);
    CHECK_EQ_STR(json_string_value(json_object_get(o, "nan")), "NaN");
    CHECK(json_real_value(json_object_get(o, "d")) == 2.5);
    CHECK(json_is_false(json_object_get(o, "b")));
    CHECK(json_object_get(o, "gone") == NULL);
    CHECK(json_object_get(o, "ts") != NULL);
    json_decref(o);
}

TEST(json_invalid_utf8_stays_valid_json) {
    char buf[512];
    log_configure(LOG_FORMAT_JSON, LOG_INFO, NULL);
    struct log_field f[] = { LOG_STR("v", "\xed\xa0\x80 \xc0\xaf \xf8 ok") };   /* surrogate, overlong, bad lead */
    log_format_line(buf, sizeof buf, LOG_INFO, "m", f, 1);
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
    json_t *o = json_loads(buf, 0, NULL);
    CHECKF(o != NULL, "invalid JSON: %s", buf);
    CHECK_EQ_STR(json_string_value(json_object_get(o, "v")),
                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd ok");
    json_decref(o);
}

TEST(long_value_is_cut_and_line_still_ends) {
    size_t big = LOG_VALUE_MAX * 3;
    char *v = malloc(big + 1);
    memset(v, 'a', big);
    v[big] = '\0';
    cap_begin(LOG_FORMAT_LOGFMT, LOG_INFO);
    LOG(LOG_INFO, "long", LOG_STR("v", v), LOG_STR("after", "x"));
    char *out = cap_end();
    free(v);
    CHECK(strlen(out) < LOG_VALUE_MAX + 200);
    char mark[64];
    snprintf(mark, sizeof mark, "aaa...[cut, %zu bytes]\" after=x\n", big);
    CHECKF(strstr(out, mark) != NULL, "%s", out);
    free(out);
}

/* Issue 10: a 10 000-character record id made an 8.7 KB line. */
TEST(ten_thousand_character_id_gives_a_short_line) {
    char *id = malloc(10001);
    memset(id, 'x', 10000);
    id[10000] = '\0';
    cap_begin(LOG_FORMAT_JSON, LOG_INFO);
    LOG(LOG_WARN, "[WARN] Skipping receipt", LOG_STR("id", id), LOG_STR("reason", "digital"));
    char *out = cap_end();
    free(id);
    CHECKF(strlen(out) < 1400, "line of %zu bytes", strlen(out));
    json_t *o = json_loads(out, 0, NULL);
    CHECKF(o != NULL, "invalid JSON: %.200s", out);
    const char *v = json_string_value(json_object_get(o, "id"));
    CHECK(v && strncmp(v, "xxxx", 4) == 0);
    CHECK(v && strstr(v, "...[cut, 10000 bytes]") != NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(o, "reason")), "digital");
    json_decref(o);
    free(out);
}

/* Issue 10: the enrichment error line printed the service URL with its password. */
TEST(url_userinfo_is_redacted_in_every_value) {
    for (int fmt = LOG_FORMAT_LOGFMT; fmt <= LOG_FORMAT_JSON; fmt++) {
        cap_begin((enum log_format)fmt, LOG_INFO);
        LOG(LOG_ERROR, "[ERROR] Enrichment unavailable; the batch waits",
            LOG_STR("error", "FIDO service: HTTP 503 (http://svc:hunter2@fido:8080/v1/products:batchGet)"),
            LOG_STR("url", "https://token-abc@retailer/v1"));
        char *out = cap_end();
        CHECKF(strstr(out, "hunter2") == NULL && strstr(out, "token-abc") == NULL, "%s", out);
        CHECKF(strstr(out, "http://<redacted>@fido:8080/v1/products:batchGet") != NULL, "%s", out);
        CHECKF(strstr(out, "https://<redacted>@retailer/v1") != NULL, "%s", out);
        free(out);
    }
}

TEST(levels_filter_and_output) {
    cap_begin(LOG_FORMAT_LOGFMT, LOG_WARN);
    CHECK(!log_enabled(LOG_INFO));
    CHECK(log_enabled(LOG_ERROR));
    log_event(LOG_INFO, "hidden", "k", "v", NULL);
    log_event(LOG_DEBUG, "hidden", NULL);
    LOG(LOG_INFO, "hidden too");
    log_event(LOG_WARN, "[WARN] Skipping receipt", "consumer", "receipt", "reason", "digital", NULL);
    LOG(LOG_ERROR, "[ERROR] boom");
    char *out = cap_end();
    CHECK(strstr(out, "hidden") == NULL);
    CHECK(strstr(out, "level=warn service_name=consumer-graph-worker msg=\"[WARN] Skipping receipt\" "
                      "consumer=receipt reason=digital\n") != NULL);
    CHECK(strstr(out, "level=error service_name=consumer-graph-worker msg=\"[ERROR] boom\"\n") != NULL);
    free(out);
}

TEST(parse_names) {
    enum log_level l;
    enum log_format f;
    CHECK_EQ_INT(log_parse_level("warn", &l), 0);
    CHECK_EQ_INT(l, LOG_WARN);
    CHECK_EQ_INT(log_parse_level("WARNING", &l), -1);
    CHECK_EQ_INT(log_parse_format("json", &f), 0);
    CHECK_EQ_INT(f, LOG_FORMAT_JSON);
    CHECK_EQ_INT(log_parse_format("xml", &f), -1);
    CHECK_EQ_STR(log_level_name(LOG_DEBUG), "debug");
}

#define THREADS 8
#define LINES 2000

static void *spam(void *arg) {
    long id = (long)arg;
    char pad[300];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        LOG(LOG_INFO, "[SUCCESS] Persisted graph data", LOG_INT("thread", id), LOG_INT("i", i),
            LOG_STR("pad", pad), LOG_STR("end", "END"));
    return NULL;
}

TEST(threads_never_interleave) {
    pthread_t t[THREADS];
    cap_begin(LOG_FORMAT_JSON, LOG_INFO);
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, spam, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    char *out = cap_end();
    int lines = 0, good = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        json_t *o = json_loads(line, 0, NULL);
        if (o && strcmp(json_string_value(json_object_get(o, "end")), "END") == 0) good++;
        json_decref(o);
    }
    free(out);
    CHECK_EQ_INT(lines, THREADS * LINES);
    CHECK_EQ_INT(good, THREADS * LINES);
}

/* Half the threads hold their lines (log_hold), flushing now and then, as the consumer
 * thread does: the lines still arrive whole. */
static void *spam_held(void *arg) {
    log_hold();
    for (int i = 0; i < LINES; i++) {
        LOG(LOG_INFO, "[WARN] Skipping receipt", LOG_INT("thread", (long)arg), LOG_INT("i", i),
            LOG_STR("end", "END"));
        if (i % 97 == 0) log_flush();
    }
    log_release();
    return NULL;
}

TEST(held_lines_never_interleave_either) {
    pthread_t t[THREADS];
    cap_begin(LOG_FORMAT_JSON, LOG_INFO);
    for (long i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, i % 2 ? spam_held : spam, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    char *out = cap_end();
    int lines = 0, good = 0, next[THREADS] = {0}, in_order = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        json_t *o = json_loads(line, 0, NULL);
        if (o && strcmp(json_string_value(json_object_get(o, "end")), "END") == 0) {
            good++;
            long th = (long)json_integer_value(json_object_get(o, "thread"));
            if (th >= 0 && th < THREADS && json_integer_value(json_object_get(o, "i")) == next[th]) {
                next[th]++;
                in_order++;
            }
        }
        json_decref(o);
    }
    free(out);
    CHECK_EQ_INT(lines, THREADS * LINES);
    CHECK_EQ_INT(good, THREADS * LINES);
    CHECK_EQ_INT(in_order, THREADS * LINES);
}

static long cap_size(void) { return lseek(fileno(cap_file), 0, SEEK_END); }

/* Held lines wait for a flush, a full buffer, an [ERROR] line, an outage report or the
 * release, and then go out whole and in order; unheld lines go out at once. */
TEST(held_lines_wait_for_flush_error_outage_or_release) {
    struct log_latch l = LOG_LATCH_INIT;
    cap_begin(LOG_FORMAT_LOGFMT, LOG_INFO);
    LOG(LOG_INFO, "one");
    long unheld = cap_size();
    CHECK(unheld > 0);
    log_hold();
    LOG(LOG_INFO, "two");
    LOG(LOG_WARN, "three");
    CHECK_EQ_INT(cap_size(), unheld);
    LOG(LOG_ERROR, "four");                       /* out now, after what was held */
    long after_error = cap_size();
    CHECK(after_error > unheld);
    LOG(LOG_INFO, "five");
    log_flush();
    long after_flush = cap_size();
    CHECK(after_flush > after_error);
    LOG(LOG_INFO, "six");
    log_report_outage(&l, true, LOG_WARN, "[WARN] down", "up", "refused");
    long after_outage = cap_size();
    CHECK(after_outage > after_flush);
    char pad[400];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < 30; i++) LOG(LOG_INFO, "pad", LOG_STR("p", pad));   /* ~13 KB */
    CHECK(cap_size() > after_outage + 8000);      /* the buffer went out when full */
    CHECK(cap_size() < after_outage + 30 * 400);   /* but not all of it */
    LOG(LOG_INFO, "seven");
    log_release();
    LOG(LOG_INFO, "eight");
    long done = cap_size();
    char *out = cap_end();
    CHECK_EQ_INT((long)strlen(out), done);
    const char *order[] = {"msg=one", "msg=two", "msg=three", "msg=four", "msg=five", "msg=six",
                           "msg=\"[WARN] down\"", "msg=pad", "msg=seven", "msg=eight"};
    const char *p = out;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *q = strstr(p, order[i]);
        CHECKF(q != NULL, "%s missing or out of order", order[i]);
        if (q) p = q;
    }
    int n = 0;
    for (const char *c = out; (c = strchr(c, '\n')); c++) n++;
    CHECK_EQ_INT(n, 9 + 30);
    free(out);
}

/* log_hold() says whether the thread held already: a function that holds its own lines (the
 * writer's [SUCCESS] lines of a transaction) ends with log_flush() when called inside a
 * hold, and its caller's hold is still on after it; outside one, log_release() ends it. */
TEST(a_nested_hold_leaves_the_callers_hold_on) {
    cap_begin(LOG_FORMAT_LOGFMT, LOG_INFO);
    CHECK(!log_hold());
    LOG(LOG_INFO, "callers");
    CHECK_EQ_INT(cap_size(), 0);
    CHECK(log_hold());                            /* nested: flush, do not release */
    LOG(LOG_INFO, "nested");
    log_flush();
    long flushed = cap_size();
    CHECK(flushed > 0);
    LOG(LOG_INFO, "after");
    CHECK_EQ_INT(cap_size(), flushed);            /* the caller still holds */
    log_release();
    CHECK(cap_size() > flushed);
    CHECK(!log_hold());                           /* released: a fresh hold */
    log_release();
    char *out = cap_end();
    CHECK(strstr(out, "msg=callers") < strstr(out, "msg=nested"));
    CHECK(strstr(out, "msg=nested") < strstr(out, "msg=after"));
    free(out);
}

TEST(latch_logs_start_and_end_once) {
    struct log_latch l = LOG_LATCH_INIT;
    long long ms = -1;
    unsigned long long hits = 0;
    CHECK(!log_latch_clear(&l, &ms, &hits));
    CHECK(log_latch_trip(&l));
    CHECK(!log_latch_trip(&l));
    CHECK(!log_latch_trip(&l));
    CHECK(log_latch_is_tripped(&l));
    CHECK(log_latch_clear(&l, &ms, &hits));
    CHECK_EQ_INT(hits, 3);
    CHECK(ms >= 0);
    CHECK(!log_latch_clear(&l, NULL, NULL));
    CHECK(log_latch_trip(&l));   /* a new outage starts again */
}

TEST(report_outage_lines) {
    struct log_latch l = LOG_LATCH_INIT;
    cap_begin(LOG_FORMAT_LOGFMT, LOG_INFO);
    log_report_outage(&l, false, LOG_WARN, "[WARN] Valkey unreachable", "Valkey reachable again", NULL);
    for (int i = 0; i < 5; i++)
        log_report_outage(&l, true, LOG_WARN, "[WARN] Valkey unreachable", "Valkey reachable again",
                          "Connection refused");
    log_report_outage(&l, false, LOG_WARN, "[WARN] Valkey unreachable", "Valkey reachable again", NULL);
    log_report_outage(&l, false, LOG_WARN, "[WARN] Valkey unreachable", "Valkey reachable again", NULL);
    char *out = cap_end();
    int n = 0;
    for (char *p = out; (p = strchr(p, '\n')); p++) n++;
    CHECK_EQ_INT(n, 2);
    CHECK(strstr(out, "msg=\"[WARN] Valkey unreachable\" error=\"Connection refused\"\n") != NULL);
    CHECK(strstr(out, "msg=\"Valkey reachable again\" outage_ms=") != NULL);
    CHECK(strstr(out, " failures=5\n") != NULL);
    free(out);
}

TEST(format_line_reports_needed_length) {
    char small[16];
    size_t need = log_format_line(small, sizeof small, LOG_INFO, "a message", NULL, 0);
    CHECK(need > sizeof small);
    CHECK_EQ_INT(strlen(small), sizeof small - 1);
    char *big = malloc(need + 1);
    CHECK_EQ_INT(log_format_line(big, need + 1, LOG_INFO, "a message", NULL, 0), need);
    CHECK_EQ_INT(strlen(big), need);
    free(big);
}

/* A thread keeps the heads (level, service, message) of its last messages: a message is
 * compared by its text, not its address, and a new configuration makes every head anew. */
TEST(heads_follow_the_message_text_and_the_configuration) {
    char buf[512], msg[32];
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, "svc-a");
    snprintf(msg, sizeof msg, "first message");
    log_format_line(buf, sizeof buf, LOG_INFO, msg, NULL, 0);
    CHECK(strstr(buf, " level=info service_name=svc-a msg=\"first message\"\n") != NULL);
    snprintf(msg, sizeof msg, "other message");          /* same buffer, same length */
    log_format_line(buf, sizeof buf, LOG_INFO, msg, NULL, 0);
    CHECK(strstr(buf, "msg=\"other message\"") != NULL);
    log_format_line(buf, sizeof buf, LOG_WARN, msg, NULL, 0);
    CHECK(strstr(buf, " level=warn ") != NULL);
    for (int i = 0; i < 6; i++) {                         /* more messages than slots */
        snprintf(msg, sizeof msg, "m%d", i);
        log_format_line(buf, sizeof buf, LOG_INFO, msg, NULL, 0);
        char want[64];
        snprintf(want, sizeof want, " msg=m%d\n", i);
        CHECK(strstr(buf, want) != NULL);
    }
    log_format_line(buf, sizeof buf, LOG_INFO, "other message", NULL, 0);
    CHECK(strstr(buf, "service_name=svc-a msg=\"other message\"") != NULL);
    log_configure(LOG_FORMAT_JSON, LOG_INFO, "svc-b");
    log_format_line(buf, sizeof buf, LOG_INFO, "other message", NULL, 0);
    CHECK(strstr(buf, "\",\"level\":\"info\",\"service_name\":\"svc-b\",\"msg\":\"other message\"}") != NULL);
    char long_msg[300];
    memset(long_msg, 'x', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';                 /* too long to keep: written anyway */
    log_format_line(buf, sizeof buf, LOG_INFO, long_msg, NULL, 0);
    CHECK(strstr(buf, long_msg) != NULL);
    log_format_line(buf, sizeof buf, LOG_INFO, long_msg, NULL, 0);
    CHECK(strstr(buf, long_msg) != NULL);
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, "consumer-graph-worker");
}
