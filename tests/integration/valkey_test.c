/* Integration test of src/valkey/ against the local stack's Valkey (scripts/stack): the plain
 * port, the TLS port with the stack's CA and certificates (var/valkey/tls/), and its
 * least-privilege ACL user. Refusals are checked for a clear reason: a CA that did not sign
 * the server, a name the certificate does not carry, a wrong ACL password (never echoed), a
 * client certificate of another CA, files that do not fit together; and the backoff. */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include "valkey/valkey.h"

#include <string.h>
#include <unistd.h>

static struct valkey_options tls_options(void) {
    struct valkey_options o;
    valkey_options_init(&o);
    o.host = STACK_VALKEY_HOST;
    o.port = STACK_VALKEY_TLS_PORT;
    o.tls = true;
    o.tls_ca_file = stack_valkey_tls("ca.crt");
    o.username = STACK_VALKEY_USER;
    o.password = STACK_VALKEY_PASSWORD;
    o.connect_timeout_ms = 1000;
    o.command_timeout_ms = 1000;
    return o;
}

static struct valkey *make(const struct valkey_options *o) {
    char err[512] = "";
    struct valkey *v = valkey_new(o, err, sizeof err);
    CHECKF(v, "valkey_new: %s", err);
    return v;
}

/* valkey_connect must fail; its message is returned (static buffer). */
static const char *refused(const struct valkey_options *o) {
    static char err[512];
    struct valkey *v = make(o);
    err[0] = '\0';
    int rc = valkey_connect(v, err, sizeof err);
    valkey_free(v);
    CHECKF(rc == -1, "connected, but should have been refused");
    return err;
}

/* MGET of one key under the ACL user's prefix: a nil answer proves a working session. */
static void check_session(struct valkey *v) {
    char err[512] = "";
    CHECKF(valkey_connect(v, err, sizeof err) == 0, "connect: %s", err);
    const char *argv[2] = {"MGET", "cgw:done:valkey-test:none"};
    redisReply *r = valkey_command(v, 2, argv, NULL, err, sizeof err);
    CHECKF(r, "MGET: %s", err);
    CHECK(r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_NIL);
    freeReplyObject(r);
}

TEST(tls_with_acl_user_by_ip_and_by_name) {
    struct valkey_options o = tls_options();
    o.client_name = "cgw-valkey-test";
    struct valkey *v = make(&o);                /* 127.0.0.1: the certificate's IP address */
    check_session(v);
    valkey_free(v);
    o.host = "localhost";                       /* a DNS name: SNI and the name checked */
    v = make(&o);
    check_session(v);
    valkey_free(v);
    o.host = STACK_VALKEY_HOST;
    o.tls_server_name = "localhost";
    v = make(&o);
    check_session(v);
    valkey_free(v);
}

TEST(acl_user_has_least_privilege) {
    struct valkey_options o = tls_options();
    struct valkey *v = make(&o);
    check_session(v);
    char err[512] = "";
    const char *get[2] = {"GET", "cgw:done:x"}, *set[3] = {"SET", "other:key", "1"};
    const char *flags_write[3] = {"SADD", "cgw:flags:flipper_features", "x"};
    const char *const *cmds[3] = {get, set, flags_write};
    int argcs[3] = {2, 3, 3};
    for (int i = 0; i < 3; i++) {
        redisReply *r = valkey_command(v, argcs[i], (const char **)cmds[i], NULL, err, sizeof err);
        CHECKF(r && r->type == REDIS_REPLY_ERROR && strstr(r->str, "NOPERM"), "%s: %s", cmds[i][0],
               r ? (r->str ? r->str : "(not an error)") : err);
        freeReplyObject(r);
    }
    CHECK(valkey_is_connected(v));              /* an error reply is no I/O failure */
    valkey_free(v);
}

/* Commands formatted by valkey_append_many are the commands hiredis would have sent: values
 * with CR LF, an empty one and a 300-byte one come back byte for byte. */
TEST(append_many_pipelines_commands_byte_exact) {
    struct valkey_options o = tls_options();
    struct valkey *v = make(&o);
    check_session(v);
    char err[512] = "", big[300];
    memset(big, 'b', sizeof big);
    const char *keys[3] = {"cgw:done:valkey-test:m1", "cgw:done:valkey-test:m2",
                           "cgw:done:valkey-test:m3"};
    const char *vals[3] = {"a\r\n*1\r\n$3", "", big};
    const size_t vlens[3] = {9, 0, sizeof big};
    const char *argv[15];
    size_t lens[15];
    for (int i = 0; i < 3; i++) {
        const char *a[5] = {"SET", keys[i], vals[i], "EX", "60"};
        const size_t l[5] = {3, strlen(keys[i]), vlens[i], 2, 2};
        memcpy(argv + 5 * i, a, sizeof a);
        memcpy(lens + 5 * i, l, sizeof l);
    }
    CHECKF(valkey_append_many(v, 3, 5, argv, lens, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 3; i++) {
        redisReply *r = valkey_read_reply(v, err, sizeof err);
        CHECKF(r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK"), "SET %d: %s", i,
               r ? (r->str ? r->str : "?") : err);
        freeReplyObject(r);
    }
    const char *mget[4] = {"MGET", keys[0], keys[1], keys[2]};
    redisReply *r = valkey_command(v, 4, mget, NULL, err, sizeof err);
    CHECKF(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3, "MGET: %s", err);
    for (size_t i = 0; r && i < 3 && i < r->elements; i++) {
        CHECK_EQ_INT(r->element[i]->len, vlens[i]);
        CHECK(r->element[i]->len == vlens[i] && !memcmp(r->element[i]->str, vals[i], vlens[i]));
    }
    freeReplyObject(r);
    valkey_free(v);
}

TEST(plain_port_with_acl_user_and_without_tls) {
    struct valkey_options o = tls_options();
    o.port = STACK_VALKEY_PORT;
    o.tls = false;
    o.tls_ca_file = NULL;
    struct valkey *v = make(&o);
    check_session(v);
    valkey_free(v);
}

TEST(wrong_ca_is_refused_with_the_reason) {
    struct valkey_options o = tls_options();
    o.tls_ca_file = stack_valkey_tls("other-ca.crt");
    const char *e = refused(&o);
    CHECKF(strstr(e, "TLS handshake: certificate verify failed"), "%s", e);
    o.tls_ca_file = NULL;                       /* the system's CAs do not know the stack's CA */
    e = refused(&o);
    CHECKF(strstr(e, "certificate verify failed"), "%s", e);
}

TEST(wrong_server_name_is_refused_with_the_reason) {
    struct valkey_options o = tls_options();
    o.tls_server_name = "valkey.example.com";
    const char *e = refused(&o);
    CHECKF(strstr(e, "hostname mismatch") && strstr(e, "valkey.example.com"), "%s", e);
    o.tls_server_name = "127.0.0.9";            /* an address the certificate does not carry */
    e = refused(&o);
    CHECKF(strstr(e, "IP address mismatch") && strstr(e, "127.0.0.9"), "%s", e);
}

TEST(wrong_acl_password_is_refused_and_never_echoed) {
    struct valkey_options o = tls_options();
    o.password = "not-the-password-90210";
    const char *e = refused(&o);
    CHECKF(strstr(e, "AUTH refused: WRONGPASS"), "%s", e);
    CHECKF(!strstr(e, "90210") && !strstr(e, "not-the-password"), "%s", e);
    o.username = "nobody";
    o.password = STACK_VALKEY_PASSWORD;         /* right password, unknown user */
    e = refused(&o);
    CHECKF(strstr(e, "WRONGPASS") && !strstr(e, STACK_VALKEY_PASSWORD), "%s", e);
}

TEST(client_certificate_of_the_ca_is_accepted_another_refused) {
    struct valkey_options o = tls_options();
    o.tls_cert_file = stack_valkey_tls("client.crt");
    o.tls_key_file = stack_valkey_tls("client.key");
    struct valkey *v = make(&o);
    check_session(v);
    valkey_free(v);
    o.tls_cert_file = stack_valkey_tls("other-client.crt");
    o.tls_key_file = stack_valkey_tls("other-client.key");
    refused(&o);                                /* the server rejects it (handshake or first read) */
}

TEST(files_are_checked_before_any_connection) {
    struct valkey_options o = tls_options();
    char err[512] = "";
    o.tls_cert_file = stack_valkey_tls("client.crt");
    CHECK(valkey_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "tls_cert_file and tls_key_file go together"), "%s", err);
    o.tls_key_file = stack_valkey_tls("other-client.key");
    CHECK(valkey_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "tls_key_file") && strstr(err, "mismatch"), "%s", err);
    o.tls_cert_file = o.tls_key_file = NULL;
    o.tls_ca_file = stack_valkey_tls("missing.crt");
    CHECK(valkey_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "tls_ca_file") && strstr(err, "No such file"), "%s", err);
    o.tls_ca_file = stack_valkey_tls("client.key");   /* a key is no CA bundle */
    CHECK(valkey_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "tls_ca_file"), "%s", err);
    o = tls_options();
    o.password = NULL;
    CHECK(valkey_new(&o, err, sizeof err) == NULL);
    CHECKF(strstr(err, "username needs a password"), "%s", err);
}

TEST(tls_against_the_plain_port_and_plain_against_tls_fail_with_a_reason) {
    struct valkey_options o = tls_options();
    o.port = STACK_VALKEY_PORT;                 /* TLS client, plain server */
    const char *e = refused(&o);
    CHECKF(strstr(e, "TLS handshake"), "%s", e);
    o = tls_options();
    o.tls = false;                              /* plain client, TLS server: AUTH gets no answer */
    o.tls_ca_file = NULL;
    o.command_timeout_ms = 300;
    e = refused(&o);
    CHECKF(strstr(e, "AUTH"), "%s", e);
}

TEST(failed_attempt_backs_off_then_tries_again) {
    struct valkey_options o = tls_options();
    o.password = "wrong";
    o.reconnect_backoff_ms = 300;
    struct valkey *v = make(&o);
    char first[512] = "", again[512] = "";
    CHECK_EQ_INT(valkey_connect(v, first, sizeof first), -1);
    CHECK_EQ_INT(valkey_connect(v, again, sizeof again), -1);      /* inside the backoff */
    CHECK_EQ_STR(again, first);
    struct valkey_stats st;
    valkey_get_stats(v, &st);
    CHECK(st.connect_failures == 1 && st.skipped == 1 && st.connects == 0);
    usleep(350 * 1000);
    CHECK_EQ_INT(valkey_connect(v, again, sizeof again), -1);
    valkey_get_stats(v, &st);
    CHECK(st.connect_failures == 2 && st.skipped == 1);
    char err[64];
    CHECK(valkey_command(v, 1, (const char *[]){"PING"}, NULL, err, sizeof err) == NULL);
    CHECKF(strstr(err, "not connected"), "%s", err);
    valkey_free(v);
}
