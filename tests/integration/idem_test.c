/* Integration test of src/idem/ against the local stack's Valkey (tests/stack.h), plus
 * unreachable servers made here: a closed port (refused at once) and a listening socket that
 * never answers (command timeout). Keys are per test process and deleted at the end. */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include "idem/idem.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char consumer[64];

static const char *test_consumer(void) {
    if (!consumer[0]) snprintf(consumer, sizeof consumer, "test%d", (int)getpid());
    return consumer;
}

static long elapsed_ms(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static struct idem *make(int port, const char *prefix, long ttl, long backoff_ms) {
    struct idem_options o;
    char err[256] = "";
    idem_options_init(&o);
    o.valkey.host = STACK_VALKEY_HOST;
    o.valkey.port = port;
    if (prefix) o.prefix = prefix;
    if (ttl) o.ttl_seconds = ttl;
    o.valkey.reconnect_backoff_ms = backoff_ms;
    struct idem *d = idem_new(&o, err, sizeof err);
    CHECKF(d, "idem_new: %s", err);
    return d;
}

static redisContext *raw(void) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(STACK_VALKEY_HOST, STACK_VALKEY_PORT, tv);
    CHECKF(c && !c->err, "connect to valkey: %s", c ? c->errstr : "oom");
    return c;
}

static redisReply *raw_cmd(redisContext *c, const char *fmt, const char *a) {
    redisReply *r = redisCommand(c, fmt, a);
    CHECKF(r, "valkey: %s", c->errstr);
    return r;
}

/* A port nothing listens on: bound by us, then closed. */
static int closed_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

TEST(check_mark_round_trip_with_key_format_and_ttl) {
    const char *prefix = "cgw:test:done:";
    struct idem *d = make(STACK_VALKEY_PORT, prefix, 120, 1000);
    const char *ids[3] = {"r-1", "r-2", "r 3:ü"};
    const char *vals[2] = {"ProcessedReceiptEvent/3/1042", "ProcessedReceiptEvent/4/7"};
    bool seen[3] = {true, true, true};
    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 3, seen), IDEM_OK);
    CHECK(!seen[0] && !seen[1] && !seen[2]);
    CHECK_EQ_INT(idem_mark(d, test_consumer(), ids, vals, 2), IDEM_OK);
    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 3, seen), IDEM_OK);
    CHECK(seen[0] && seen[1] && !seen[2]);

    redisContext *c = raw();
    char key[128];
    snprintf(key, sizeof key, "cgw:test:done:%s:r-1", test_consumer());
    redisReply *r = raw_cmd(c, "GET %s", key);
    CHECK_EQ_STR(r->str, "ProcessedReceiptEvent/3/1042");
    freeReplyObject(r);
    r = raw_cmd(c, "TTL %s", key);
    CHECKF(r->integer > 110 && r->integer <= 120, "TTL %lld", r->integer);
    freeReplyObject(r);
    snprintf(key, sizeof key, "cgw:test:done:%s:r-2", test_consumer());
    r = raw_cmd(c, "DEL %s", key);
    CHECK_EQ_INT(r->integer, 1);
    freeReplyObject(r);
    snprintf(key, sizeof key, "cgw:test:done:%s:r-1", test_consumer());
    freeReplyObject(raw_cmd(c, "DEL %s", key));
    redisFree(c);

    struct idem_stats st;
    idem_get_stats(d, &st);
    CHECK(st.checks == 2 && st.marks == 1 && st.ids_checked == 6 && st.ids_seen == 2);
    CHECK(st.connects == 1 && st.failures == 0 && st.outages == 0);
    CHECK(idem_available(d));
    idem_free(d);
}

TEST(default_prefix_and_seven_day_ttl) {
    struct idem *d = make(STACK_VALKEY_PORT, NULL, 0, 1000);
    const char *ids[1] = {"f-42"}, *vals[1] = {"factoid-stream/0/9"};
    CHECK_EQ_INT(idem_mark(d, test_consumer(), ids, vals, 1), IDEM_OK);
    redisContext *c = raw();
    char key[128];
    snprintf(key, sizeof key, "cgw:done:%s:f-42", test_consumer());
    redisReply *r = raw_cmd(c, "TTL %s", key);
    CHECKF(r->integer > 604790 && r->integer <= 604800, "TTL %lld", r->integer);
    freeReplyObject(r);
    r = raw_cmd(c, "GET %s", key);
    CHECK_EQ_STR(r->str, "factoid-stream/0/9");
    freeReplyObject(r);
    freeReplyObject(raw_cmd(c, "DEL %s", key));
    redisFree(c);
    idem_free(d);
}

TEST(empty_batch_does_not_connect) {
    struct idem *d = make(closed_port(), NULL, 0, 1000);
    bool seen[1];
    CHECK_EQ_INT(idem_check(d, "receipt", NULL, 0, seen), IDEM_OK);
    CHECK_EQ_INT(idem_mark(d, "receipt", NULL, NULL, 0), IDEM_OK);
    struct idem_stats st;
    idem_get_stats(d, &st);
    CHECK_EQ_INT(st.connects + st.connect_failures, 0);
    idem_free(d);
}

TEST(refused_port_is_unavailable_fast_and_backs_off) {
    struct idem *d = make(closed_port(), NULL, 0, 300);
    const char *ids[2] = {"a", "b"}, *vals[2] = {"t/0/1", "t/0/2"};
    bool seen[2] = {true, true};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(idem_check(d, "receipt", ids, 2, seen), IDEM_EUNAVAILABLE);
    CHECKF(elapsed_ms(&t0) < 500, "took %ld ms", elapsed_ms(&t0));
    CHECK(!seen[0] && !seen[1]);
    CHECK(!idem_available(d));
    CHECKF(strstr(idem_last_error(d), "connect"), "error: %s", idem_last_error(d));
    for (int i = 0; i < 10; i++) {              /* inside the backoff: no attempt at all */
        CHECK_EQ_INT(idem_check(d, "receipt", ids, 2, seen), IDEM_EUNAVAILABLE);
        CHECK_EQ_INT(idem_mark(d, "receipt", ids, vals, 2), IDEM_EUNAVAILABLE);
    }
    struct idem_stats st;
    idem_get_stats(d, &st);
    CHECK_EQ_INT(st.connect_failures, 1);
    CHECK_EQ_INT(st.skipped, 20);
    CHECK_EQ_INT(st.outages, 1);
    CHECK_EQ_INT(st.failures, 21);
    usleep(350 * 1000);                         /* after the backoff: one more attempt */
    CHECK_EQ_INT(idem_check(d, "receipt", ids, 2, seen), IDEM_EUNAVAILABLE);
    CHECK_EQ_INT(idem_check(d, "receipt", ids, 2, seen), IDEM_EUNAVAILABLE);
    idem_get_stats(d, &st);
    CHECK_EQ_INT(st.connect_failures, 2);
    CHECK_EQ_INT(st.outages, 1);                /* still the same outage */
    idem_free(d);
}

TEST(silent_server_times_out_within_command_timeout) {
    int s = socket(AF_INET, SOCK_STREAM, 0);    /* accepts (kernel backlog), never answers */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 8) == 0);
    getsockname(s, (struct sockaddr *)&a, &len);
    struct idem_options o;
    char err[256];
    idem_options_init(&o);
    o.valkey.host = "127.0.0.1";
    o.valkey.port = ntohs(a.sin_port);
    o.valkey.command_timeout_ms = 200;
    struct idem *d = idem_new(&o, err, sizeof err);
    const char *ids[1] = {"x"};
    bool seen[1];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_EQ_INT(idem_check(d, "receipt", ids, 1, seen), IDEM_EUNAVAILABLE);
    long ms = elapsed_ms(&t0);
    CHECKF(ms >= 150 && ms < 1000, "took %ld ms", ms);
    CHECK(!idem_available(d));
    idem_free(d);
    close(s);
}

/* The server drops our connection (as on a restart or failover): one call fails, the next one
 * reconnects at once. */
TEST(lost_connection_then_reconnect) {
    char name[64];
    snprintf(name, sizeof name, "cgw-idem-test-%d", (int)getpid());
    struct idem_options o;
    char err[256];
    idem_options_init(&o);
    o.valkey.port = STACK_VALKEY_PORT;
    o.valkey.client_name = name;
    struct idem *d = idem_new(&o, err, sizeof err);
    const char *ids[1] = {"lost-1"};
    bool seen[1];
    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 1, seen), IDEM_OK);

    redisContext *c = raw();
    redisReply *r = raw_cmd(c, "CLIENT LIST", NULL);
    char needle[80], *line = NULL;
    snprintf(needle, sizeof needle, " name=%s ", name);
    CHECK(r->type == REDIS_REPLY_STRING && (line = strstr(r->str, needle)));
    while (line > r->str && line[-1] != '\n') line--;
    long long id = strtoll(line + 3, NULL, 10);  /* "id=<n> ..." */
    freeReplyObject(r);
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%lld", id);
    r = raw_cmd(c, "CLIENT KILL ID %s", idbuf);
    CHECK_EQ_INT(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);

    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 1, seen), IDEM_EUNAVAILABLE);
    CHECK(!idem_available(d));
    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 1, seen), IDEM_OK);
    CHECK(idem_available(d));
    CHECK_EQ_STR(idem_last_error(d), "");
    struct idem_stats st;
    idem_get_stats(d, &st);
    CHECK_EQ_INT(st.connects, 2);
    CHECK_EQ_INT(st.outages, 1);
    idem_free(d);
}

TEST(auth_refused_is_unavailable) {
    struct idem_options o;
    char err[256];
    idem_options_init(&o);
    o.valkey.port = STACK_VALKEY_PORT;
    o.valkey.password = "wrong-password";   /* the stack's Valkey has no password */
    struct idem *d = idem_new(&o, err, sizeof err);
    const char *ids[1] = {"x"};
    bool seen[1];
    CHECK_EQ_INT(idem_check(d, "receipt", ids, 1, seen), IDEM_EUNAVAILABLE);
    CHECKF(strstr(idem_last_error(d), "AUTH"), "error: %s", idem_last_error(d));
    idem_free(d);
}

TEST(bad_options_and_arguments) {
    struct idem_options o;
    char err[256] = "";
    idem_options_init(&o);
    o.valkey.tls = true;                    /* TLS works; a CA file that is not there does not */
    o.valkey.tls_ca_file = "/nonexistent/ca.crt";
    CHECK(idem_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "tls_ca_file /nonexistent/ca.crt: cannot read"), "err: %s", err);
    idem_options_init(&o);
    o.ttl_seconds = 0;
    CHECK(idem_new(&o, err, sizeof err) == NULL);
    struct idem *d = make(STACK_VALKEY_PORT, NULL, 0, 1000);
    const char *ids[1] = {NULL};
    bool seen[1];
    CHECK_EQ_INT(idem_check(d, "receipt", ids, 1, seen), IDEM_EINVAL);
    CHECK_EQ_INT(idem_check(d, "", ids, 0, seen), IDEM_EINVAL);
    CHECK_EQ_STR(idem_status_name(IDEM_EUNAVAILABLE), "IDEM_EUNAVAILABLE");
    idem_free(d);
}

/* Production's shape: TLS (the stack's CA), the least-privilege ACL user (MGET and SET on
 * cgw:done:* only), the default key prefix. The keys land where the plain port sees them. */
static struct idem *make_tls(const char *password) {
    struct idem_options o;
    char err[256] = "";
    idem_options_init(&o);
    o.valkey.host = STACK_VALKEY_HOST;
    o.valkey.port = STACK_VALKEY_TLS_PORT;
    o.valkey.tls = true;
    o.valkey.tls_ca_file = stack_valkey_tls("ca.crt");
    o.valkey.username = STACK_VALKEY_USER;
    o.valkey.password = password;
    o.valkey.client_name = "cgw-idem-tls-test";
    o.valkey.reconnect_backoff_ms = 1000;
    struct idem *d = idem_new(&o, err, sizeof err);
    CHECKF(d, "idem_new: %s", err);
    return d;
}

TEST(tls_with_acl_user_round_trip) {
    struct idem *d = make_tls(STACK_VALKEY_PASSWORD);
    const char *ids[2] = {"tls-1", "tls-2"}, *vals[1] = {"ProcessedReceiptEvent/1/77"};
    bool seen[2] = {true, true};
    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 2, seen), IDEM_OK);
    CHECK(!seen[0] && !seen[1]);
    CHECK_EQ_INT(idem_mark(d, test_consumer(), ids, vals, 1), IDEM_OK);
    CHECKF(idem_check(d, test_consumer(), ids, 2, seen) == IDEM_OK, "%s", idem_last_error(d));
    CHECK(seen[0] && !seen[1]);

    redisContext *c = raw();                    /* the plain port, the default user */
    char key[128];
    snprintf(key, sizeof key, "cgw:done:%s:tls-1", test_consumer());
    redisReply *r = raw_cmd(c, "GET %s", key);
    CHECK_EQ_STR(r->str, "ProcessedReceiptEvent/1/77");
    freeReplyObject(r);
    freeReplyObject(raw_cmd(c, "DEL %s", key));
    redisFree(c);
    struct idem_stats st;
    idem_get_stats(d, &st);
    CHECK(st.connects == 1 && st.failures == 0);
    idem_free(d);
}

TEST(tls_wrong_acl_password_is_unavailable_and_not_echoed) {
    struct idem *d = make_tls("wrong-secret-31337");
    const char *ids[1] = {"x"};
    bool seen[1];
    CHECK_EQ_INT(idem_check(d, test_consumer(), ids, 1, seen), IDEM_EUNAVAILABLE);
    const char *e = idem_last_error(d);
    CHECKF(strstr(e, "AUTH refused: WRONGPASS"), "error: %s", e);
    CHECKF(!strstr(e, "31337") && !strstr(e, "wrong-secret"), "error: %s", e);
    idem_free(d);
}
