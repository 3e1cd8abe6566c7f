/* bolt_fakeserver_test.c: the connection against a scripted fake server on loopback.
 *
 * A real Neo4j cannot be made to send garbage, fail a RESET, drop the socket mid-record or
 * answer with 4.4, so these paths are driven by a script running in a thread: it checks
 * the exact bytes the client sends (handshake, HELLO, LOGON, RUN extras) and replies with
 * hand-built messages. The script cannot fail the test from its thread, so it records its
 * first complaint and the test checks that after joining it.
 */
#define TEST_MAIN
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bolt/bolt.h"
#include "bolt/bolt_internal.h"

typedef struct fake fake;
typedef void (*script_fn)(fake *f);

struct fake {
    int lfd, fd, port;
    script_fn script;
    pthread_t thread;
    char complaint[256];
    bolt_value *hello, *logon;     /* what the client sent, for the test to inspect */
};

static void complain(fake *f, const char *what) {
    if (!f->complaint[0]) snprintf(f->complaint, sizeof f->complaint, "%s", what);
}

static int read_n(fake *f, uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t r = read(f->fd, p, n);
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one chunked message and decodes it; NULL on EOF or garbage. */
static bolt_value *recv_msg(fake *f) {
    bolt_enc msg;
    bolt_enc_init(&msg);
    for (;;) {
        uint8_t h[2];
        if (read_n(f, h, 2)) break;
        size_t n = (size_t)h[0] << 8 | h[1];
        if (n == 0) {
            if (msg.len == 0) continue;
            bolt_value *v = NULL;
            bolt_unpack(msg.p, msg.len, &v, NULL, NULL);
            bolt_enc_release(&msg);
            return v;
        }
        bolt_enc_reserve(&msg, n);
        if (read_n(f, msg.p + msg.len, n)) break;
        msg.len += n;
    }
    bolt_enc_release(&msg);
    return NULL;
}

static bolt_value *expect_msg(fake *f, uint8_t tag) {
    bolt_value *v = recv_msg(f);
    if (!v || bolt_struct_tag(v) != tag) {
        char buf[64];
        snprintf(buf, sizeof buf, "expected message 0x%02X", tag);
        complain(f, buf);
    }
    return v;
}

static void expect_drop(fake *f, uint8_t tag) { bolt_value_free(expect_msg(f, tag)); }

static void send_raw(fake *f, const void *p, size_t n) {
    if (write(f->fd, p, n) != (ssize_t)n) complain(f, "write failed");
}

/* Sends a struct message whose single field (if any) is given already encoded. */
static void send_msg(fake *f, uint8_t tag, const bolt_value *field) {
    bolt_enc e, out;
    bolt_enc_init(&e);
    bolt_enc_init(&out);
    bolt_enc_struct_begin(&e, tag, field ? 1 : 0);
    if (field) bolt_enc_value(&e, field);
    bolt_chunk_append(&out, e.p, e.len);
    send_raw(f, out.p, out.len);
    bolt_enc_release(&e);
    bolt_enc_release(&out);
}

static void send_success(fake *f, bolt_value *meta) {
    if (!meta) meta = bolt_map();
    send_msg(f, 0x70, meta);
    bolt_value_free(meta);
}

static void send_failure(fake *f, const char *code) {
    bolt_value *m = bolt_map();
    bolt_map_set(m, "code", bolt_string(code));
    bolt_map_set(m, "message", bolt_string("scripted failure"));
    send_msg(f, 0x7F, m);
    bolt_value_free(m);
}

static void handshake(fake *f, const uint8_t version[4]) {
    static const uint8_t want[20] = {0x60, 0x60, 0xB0, 0x17, 0x00, 0x08, 0x08, 0x05,
                                     0x00, 0x00, 0x04, 0x04, 0, 0, 0, 0, 0, 0, 0, 0};
    uint8_t got[20];
    if (read_n(f, got, 20) || memcmp(got, want, 20)) complain(f, "bad handshake bytes");
    send_raw(f, version, 4);
}

/* 5.8 handshake, HELLO + LOGON answered with SUCCESS. */
static void login58(fake *f) {
    handshake(f, (const uint8_t *)"\x00\x00\x08\x05");
    f->hello = expect_msg(f, 0x01);
    f->logon = expect_msg(f, 0x6A);
    bolt_value *m = bolt_map();
    bolt_map_set(m, "server", bolt_string("Neo4j/5.26.0-fake"));
    bolt_map_set(m, "connection_id", bolt_string("bolt-fake"));
    send_success(f, m);
    send_success(f, NULL);
}

static void *serve(void *arg) {
    fake *f = arg;
    f->fd = accept(f->lfd, NULL, NULL);
    if (f->fd >= 0) {
        f->script(f);
        close(f->fd);
    }
    return NULL;
}

static void fake_start(fake *f, script_fn script) {
    memset(f, 0, sizeof *f);
    f->script = script;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bind(f->lfd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(f->lfd, (struct sockaddr *)&a, &len);
    f->port = ntohs(a.sin_port);
    listen(f->lfd, 1);
    pthread_create(&f->thread, NULL, serve, f);
}

static void fake_join(fake *f) {
    pthread_join(f->thread, NULL);
    close(f->lfd);
    bolt_value_free(f->hello);
    bolt_value_free(f->logon);
    f->hello = f->logon = NULL;
}

static int fake_connect(fake *f, bolt_conn **c, bolt_error *err) {
    char uri[64];
    snprintf(uri, sizeof uri, "bolt://127.0.0.1:%d", f->port);
    bolt_config cfg;
    bolt_config_init(&cfg);
    cfg.principal = "neo4j";
    cfg.credentials = "s3cret-pw";
    cfg.user_agent = "fake-test/1";
    cfg.io_timeout_ms = 5000;
    return bolt_connect(uri, &cfg, c, err);
}

/* ------------------------------------------------------------------ scripts */

static void script_query(fake *f) {
    login58(f);
    bolt_value *run = expect_msg(f, 0x10);
    const bolt_value *extra = bolt_struct_field(run, 2);
    if (!extra || strcmp(bolt_value_string(bolt_map_get(extra, "db"), NULL) ?: "", "neo4j"))
        complain(f, "RUN without db");
    bolt_value_free(run);
    bolt_value *pull = expect_msg(f, 0x3F);
    if (bolt_value_int(bolt_map_get(bolt_struct_field(pull, 0), "n")) != 1000)
        complain(f, "PULL n != 1000");
    bolt_value_free(pull);
    /* NOOPs around and a SUCCESS split over two chunks. */
    static const uint8_t fields[] = {0x00, 0x00, 0x00, 0x05, 0xB1, 0x70, 0xA1, 0x86, 'f',
                                     0x00, 0x07, 'i', 'e', 'l', 'd', 's', 0x91, 0x80,
                                     0x00, 0x00, 0x00, 0x00};
    send_raw(f, fields, sizeof fields);
    bolt_value *rec = bolt_list();
    bolt_list_append(rec, bolt_int(1));
    send_msg(f, 0x71, rec);
    bolt_value_free(rec);
    bolt_value *done = bolt_map();
    bolt_map_set(done, "type", bolt_string("r"));
    bolt_map_set(done, "bookmark", bolt_string("FB:fake"));
    send_success(f, done);
    expect_drop(f, 0x02);   /* GOODBYE on close */
}

TEST(hello_logon_and_query_bytes) {
    fake f;
    fake_start(&f, script_query);
    bolt_conn *c;
    bolt_error err;
    int rc = fake_connect(&f, &c, &err);
    CHECKF(rc == BOLT_OK, "%s", err.message);
    CHECK_EQ_INT(bolt_conn_version(c), 0x0508);
    CHECK_EQ_STR(bolt_conn_server_agent(c), "Neo4j/5.26.0-fake");
    bolt_summary s;
    rc = bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, &s, &err);
    CHECKF(rc == BOLT_OK, "%s", err.message);
    CHECK_EQ_STR(s.type, "r");
    CHECK_EQ_STR(bolt_conn_last_bookmark(c), "FB:fake");
    bolt_conn_close(c);
    fake_join(&f);
    CHECKF(!f.complaint[0], "server: %s", f.complaint);
}

static void script_inspect_hello(fake *f) {
    login58(f);
    const bolt_value *h = bolt_struct_field(f->hello, 0), *l = bolt_struct_field(f->logon, 0);
    if (bolt_map_get(h, "credentials") || bolt_map_get(h, "principal"))
        complain(f, "5.8 HELLO carries auth");
    if (!bolt_map_get(bolt_map_get(h, "bolt_agent"), "product")) complain(f, "no bolt_agent");
    const char *sev = bolt_value_string(bolt_map_get(h, "notifications_minimum_severity"), 0);
    if (!sev || strcmp(sev, "OFF")) complain(f, "notifications not off");
    if (bolt_map_get(h, "routing")) complain(f, "routing sent for bolt://");
    const char *pw = bolt_value_string(bolt_map_get(l, "credentials"), NULL);
    if (!pw || strcmp(pw, "s3cret-pw")) complain(f, "LOGON without credentials");
    expect_drop(f, 0x02);
}

TEST(hello_fields_for_5_8) {
    fake f;
    fake_start(&f, script_inspect_hello);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_OK);
    bolt_conn_close(c);
    fake_join(&f);
    CHECKF(!f.complaint[0], "server: %s", f.complaint);
}

static void script_44(fake *f) {
    handshake(f, (const uint8_t *)"\x00\x00\x04\x04");
    f->hello = expect_msg(f, 0x01);
    const bolt_value *h = bolt_struct_field(f->hello, 0);
    if (!bolt_map_get(h, "credentials")) complain(f, "4.4 HELLO without auth");
    if (bolt_map_get(h, "bolt_agent")) complain(f, "bolt_agent sent to 4.4");
    if (!bolt_map_get(h, "patch_bolt")) complain(f, "no patch_bolt for 4.4");
    send_success(f, NULL);
    expect_drop(f, 0x02);
}

TEST(bolt_4_4_puts_auth_in_hello) {
    fake f;
    fake_start(&f, script_44);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_OK);
    CHECK_EQ_INT(bolt_conn_version(c), 0x0404);
    bolt_conn_close(c);
    fake_join(&f);
    CHECKF(!f.complaint[0], "server: %s", f.complaint);
}

static void script_no_version(fake *f) { handshake(f, (const uint8_t *)"\0\0\0\0"); }

TEST(no_common_version) {
    fake f;
    fake_start(&f, script_no_version);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_EVERSION);
    fake_join(&f);
}

static void script_auth_failure(fake *f) {
    handshake(f, (const uint8_t *)"\x00\x00\x08\x05");
    expect_drop(f, 0x01);
    expect_drop(f, 0x6A);
    send_success(f, NULL);
    send_failure(f, "Neo.ClientError.Security.Unauthorized");
}

TEST(auth_failure_never_shows_password) {
    fake f;
    fake_start(&f, script_auth_failure);
    bolt_conn *c = NULL;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_EAUTH);
    CHECK(strstr(err.message, "s3cret") == NULL);
    CHECK(strstr(err.message, "neo4j") != NULL);
    fake_join(&f);
}

static void script_reset_fails(fake *f) {
    login58(f);
    expect_drop(f, 0x10);
    expect_drop(f, 0x3F);
    send_failure(f, "Neo.ClientError.Statement.SyntaxError");
    send_msg(f, 0x7E, NULL);
    expect_drop(f, 0x0F);
    send_failure(f, "Neo.DatabaseError.General.UnknownError");
}

TEST(failed_reset_makes_connection_defunct) {
    fake f;
    fake_start(&f, script_reset_fails);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_OK);
    CHECK_EQ_INT(bolt_query(c, "bad", NULL, NULL, NULL, NULL, NULL, &err), BOLT_ESERVER);
    CHECK_EQ_INT(bolt_conn_ignored_count(c), 1);
    CHECK_EQ_INT(bolt_reset(c, &err), BOLT_EDEFUNCT);
    CHECK(bolt_conn_is_defunct(c));
    CHECK_EQ_INT(bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, &err), BOLT_EDEFUNCT);
    bolt_conn_close(c);
    fake_join(&f);
    CHECKF(!f.complaint[0], "server: %s", f.complaint);
}

static void script_drop_mid_record(fake *f) {
    login58(f);
    expect_drop(f, 0x10);
    expect_drop(f, 0x3F);
    bolt_value *m = bolt_map();
    bolt_map_set(m, "fields", bolt_list());
    send_success(f, m);
    send_raw(f, "\x00\x04\xB1\x71", 4);   /* half a RECORD, then EOF */
}

TEST(broken_socket_mid_stream_is_eio_then_defunct) {
    fake f;
    fake_start(&f, script_drop_mid_record);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_OK);
    bolt_result *r;
    CHECK_EQ_INT(bolt_run(c, "RETURN 1", NULL, NULL, &r, &err), BOLT_OK);
    const bolt_value *rec;
    CHECK_EQ_INT(bolt_result_next(r, &rec, &err), BOLT_EIO);
    CHECK(err.retryable);
    CHECK(bolt_conn_is_defunct(c));
    bolt_result_free(r);
    CHECK_EQ_INT(bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, &err), BOLT_EDEFUNCT);
    bolt_conn_close(c);
    fake_join(&f);
}

static void script_garbage(fake *f) {
    login58(f);
    expect_drop(f, 0x10);
    expect_drop(f, 0x3F);
    send_raw(f, "\x00\x03\xB1\x70\xC7\x00\x00", 7);   /* reserved marker */
}

TEST(garbage_from_server_is_eproto) {
    fake f;
    fake_start(&f, script_garbage);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_OK);
    CHECK_EQ_INT(bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, &err), BOLT_EPROTO);
    CHECK(bolt_conn_is_defunct(c));
    bolt_conn_close(c);
    fake_join(&f);
}

static void script_drop_at_commit(fake *f) {
    login58(f);
    expect_drop(f, 0x11);
    expect_drop(f, 0x10);
    expect_drop(f, 0x2F);
    expect_drop(f, 0x12);
    send_success(f, NULL);   /* BEGIN ok, then the line goes dead */
}

TEST(lost_connection_during_batch_is_commit_unknown) {
    fake f;
    fake_start(&f, script_drop_at_commit);
    bolt_conn *c;
    bolt_error err;
    CHECK_EQ_INT(fake_connect(&f, &c, &err), BOLT_OK);
    bolt_enc *p = bolt_enc_new();
    bolt_enc_map_begin(p, 0);
    CHECK_EQ_INT(bolt_run_batch(c, "CREATE ()", p, NULL, NULL, &err), BOLT_ECOMMIT_UNKNOWN);
    CHECK(!err.retryable);
    bolt_enc_free(p);
    bolt_conn_close(c);
    fake_join(&f);
    CHECKF(!f.complaint[0], "server: %s", f.complaint);
}
