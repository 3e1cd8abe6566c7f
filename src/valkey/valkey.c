/* valkey.c: one Valkey connection with deadlines, TLS, AUTH, CLIENT SETNAME and a reconnect
 * backoff (the contract with callers is in valkey.h).
 *
 * State of a handle:
 *   connected      ctx != NULL. An I/O failure (timeout, EOF, TLS error) frees ctx and
 *                  leaves next_connect_ms alone, so the next valkey_connect() tries at once.
 *   disconnected   ctx == NULL. valkey_connect() opens TCP (redisConnectWithOptions with both
 *                  deadlines, so the TLS handshake and every command are bounded too), then
 *                  TLS (valkey_tls.c), AUTH, CLIENT SETNAME. When any step fails, the attempt's
 *                  message is kept and no attempt is made before reconnect_backoff_ms passed.
 * The TLS context is built once by valkey_new() and shared by every connection of the handle.
 *
 * hiredis is Debian 13's 1.2, built into the cache by scripts/deps (see the Makefile); the
 * check below stops a build that picked Debian 12's 0.14 headers up by mistake.
 */
#include "valkey/valkey_internal.h"
#include "base/base.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if !defined(HIREDIS_MAJOR) || HIREDIS_MAJOR < 1
#error "hiredis >= 1.0 with hiredis_ssl is required (scripts/deps hiredis)"
#endif

struct valkey {
    struct valkey_options o;            /* strings point at owned copies (or are NULL) */
    char endpoint[300];
    SSL_CTX *tls;                       /* NULL without TLS */
    redisContext *ctx;
    uint64_t next_connect_ms;           /* no connect attempt before this (monotonic) */
    char last_failure[256];             /* why the last connect attempt failed */
    struct valkey_stats st;
};

/* The string options, for copying and freeing them alike. */
#define VALKEY_NSTRINGS 8
static void string_options(struct valkey_options *o, const char **out[VALKEY_NSTRINGS]) {
    out[0] = &o->host;
    out[1] = &o->username;
    out[2] = &o->password;
    out[3] = &o->tls_ca_file;
    out[4] = &o->tls_cert_file;
    out[5] = &o->tls_key_file;
    out[6] = &o->tls_server_name;
    out[7] = &o->client_name;
}

static struct timeval tv_of(long ms) {
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* ---- SIGPIPE guard ------------------------------------------------------------------------ */

static void sigpipe_block(sigset_t *old) {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, old);
}

/* Swallows a SIGPIPE raised while blocked (unless it was blocked before), then restores. */
static void sigpipe_restore(const sigset_t *old) {
    sigset_t block, pending;
    struct timespec zero = {0, 0};
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    if (!sigismember(old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
        sigtimedwait(&block, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- handle ------------------------------------------------------------------------------- */

void valkey_options_init(struct valkey_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 6379;
    o->connect_timeout_ms = 500;
    o->command_timeout_ms = 500;
    o->reconnect_backoff_ms = 5000;
}

static const char *check_options(const struct valkey_options *o) {
    if (!o->host || !*o->host) return "host is empty";
    if (o->port < 1 || o->port > 65535) return "port must be 1..65535";
    if (o->connect_timeout_ms < 1 || o->command_timeout_ms < 1) return "timeouts must be >= 1 ms";
    if (o->reconnect_backoff_ms < 0) return "reconnect_backoff_ms must be >= 0";
    if (o->username && *o->username && !(o->password && *o->password))
        return "username needs a password";
    return NULL;
}

/* Owned copies of the string options; "" becomes NULL (unset). */
static bool copy_strings(struct valkey *v) {
    const char **f[VALKEY_NSTRINGS];
    string_options(&v->o, f);
    bool ok = true;
    for (int i = 0; i < VALKEY_NSTRINGS; i++) {
        const char *s = *f[i];
        *f[i] = s && *s ? strdup(s) : NULL;
        ok = ok && (!(s && *s) || *f[i]);
    }
    return ok;
}

struct valkey *valkey_new(const struct valkey_options *o, char *err, size_t errlen) {
    char why[512];
    const char *bad = check_options(o);
    if (bad) {
        snprintf(err, errlen, "valkey: %s", bad);
        return NULL;
    }
    struct valkey *v = calloc(1, sizeof *v);
    if (v) v->o = *o;
    if (!v || !copy_strings(v)) {
        valkey_free(v);
        snprintf(err, errlen, "valkey: out of memory");
        return NULL;
    }
    snprintf(v->endpoint, sizeof v->endpoint, "%s:%d", v->o.host, v->o.port);
    if (v->o.tls && !(v->tls = valkey_tls_context(&v->o, why, sizeof why))) {
        snprintf(err, errlen, "valkey %s: %s", v->endpoint, why);
        valkey_free(v);
        return NULL;
    }
    return v;
}

void valkey_free(struct valkey *v) {
    if (!v) return;
    if (v->ctx) redisFree(v->ctx);
    SSL_CTX_free(v->tls);
    if (v->o.password) explicit_bzero((char *)v->o.password, strlen(v->o.password));
    const char **f[VALKEY_NSTRINGS];
    string_options(&v->o, f);
    for (int i = 0; i < VALKEY_NSTRINGS; i++) free((char *)*f[i]);
    free(v);
}

const char *valkey_endpoint(const struct valkey *v) { return v->endpoint; }
bool valkey_is_connected(const struct valkey *v) { return v->ctx != NULL; }
void valkey_get_stats(const struct valkey *v, struct valkey_stats *out) { *out = v->st; }

void valkey_disconnect(struct valkey *v) {
    if (v->ctx) redisFree(v->ctx);
    v->ctx = NULL;
}

/* ---- connecting --------------------------------------------------------------------------- */

/* A set-up command that must answer +OK. Its message never repeats the arguments (AUTH's
 * password): only the command's name and the server's answer. */
static int setup_command(struct valkey *v, int argc, const char **argv, const char *what) {
    redisReply *r = redisCommandArgv(v->ctx, argc, argv, NULL);
    int rc = r && r->type == REDIS_REPLY_STATUS ? 0 : -1;
    if (!r)
        snprintf(v->last_failure, sizeof v->last_failure, "%s: %s", what, v->ctx->errstr);
    else if (rc < 0)
        snprintf(v->last_failure, sizeof v->last_failure, "%s refused: %s", what,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (r) freeReplyObject(r);
    return rc;
}

static int authenticate(struct valkey *v) {
    if (!v->o.password) return 0;
    const char *argv[3] = {"AUTH", v->o.username ? v->o.username : v->o.password, v->o.password};
    return setup_command(v, v->o.username ? 3 : 2, argv, "AUTH");
}

/* TCP (+ TLS) + AUTH + CLIENT SETNAME; message in v->last_failure. */
static int open_connection(struct valkey *v) {
    struct timeval ct = tv_of(v->o.connect_timeout_ms), cmd = tv_of(v->o.command_timeout_ms);
    redisOptions ro = {0};
    REDIS_OPTIONS_SET_TCP(&ro, v->o.host, v->o.port);
    ro.connect_timeout = &ct;
    ro.command_timeout = &cmd;
    v->ctx = redisConnectWithOptions(&ro);
    if (!v->ctx || v->ctx->err) {
        snprintf(v->last_failure, sizeof v->last_failure, "connect: %s",
                 v->ctx ? v->ctx->errstr : "out of memory");
        return -1;
    }
    if (v->tls && valkey_tls_start(v->ctx, v->tls, v->o.tls_server_name ? v->o.tls_server_name : v->o.host,
                                   v->last_failure, sizeof v->last_failure) < 0)
        return -1;
    if (authenticate(v) < 0) return -1;
    if (v->o.client_name) {
        const char *argv[3] = {"CLIENT", "SETNAME", v->o.client_name};
        if (setup_command(v, 3, argv, "CLIENT SETNAME") < 0) return -1;
    }
    return 0;
}

static int connect_failed(struct valkey *v, char *err, size_t errlen) {
    snprintf(err, errlen, "valkey %s: %s", v->endpoint, v->last_failure);
    return -1;
}

int valkey_connect(struct valkey *v, char *err, size_t errlen) {
    if (v->ctx) return 0;
    if ((uint64_t)base_monotonic_ms() < v->next_connect_ms) {
        v->st.skipped++;
        return connect_failed(v, err, errlen);      /* the reason of the last attempt */
    }
    sigset_t old;
    sigpipe_block(&old);
    int rc = open_connection(v);
    sigpipe_restore(&old);
    if (rc == 0) {
        v->st.connects++;
        v->last_failure[0] = '\0';
        return 0;
    }
    valkey_disconnect(v);
    v->st.connect_failures++;
    v->next_connect_ms = (uint64_t)base_monotonic_ms() + (uint64_t)v->o.reconnect_backoff_ms;
    return connect_failed(v, err, errlen);
}

/* ---- commands ----------------------------------------------------------------------------- */

/* An I/O failure on the open connection: message, connection dropped. */
static void lost(struct valkey *v, const char *what, char *err, size_t errlen) {
    snprintf(err, errlen, "valkey %s: %s: %s", v->endpoint, what,
             v->ctx && v->ctx->errstr[0] ? v->ctx->errstr : "connection lost");
    valkey_disconnect(v);
    v->st.lost++;
}

static bool require_connection(struct valkey *v, char *err, size_t errlen) {
    if (v->ctx) return true;
    snprintf(err, errlen, "valkey %s: not connected", v->endpoint);
    return false;
}

redisReply *valkey_command(struct valkey *v, int argc, const char **argv, const size_t *lens,
                           char *err, size_t errlen) {
    if (!require_connection(v, err, errlen)) return NULL;
    sigset_t old;
    sigpipe_block(&old);
    redisReply *r = redisCommandArgv(v->ctx, argc, argv, lens);
    sigpipe_restore(&old);
    if (!r) lost(v, argv[0], err, errlen);
    return r;
}

int valkey_append(struct valkey *v, int argc, const char **argv, const size_t *lens,
                  char *err, size_t errlen) {
    if (!require_connection(v, err, errlen)) return -1;
    if (redisAppendCommandArgv(v->ctx, argc, argv, lens) == REDIS_OK) return 0;
    lost(v, argv[0], err, errlen);                  /* only out of memory gets here */
    return -1;
}

/* "<c><n>\r\n" at p; returns the end. */
static char *resp_head(char *p, char c, size_t n) {
    *p++ = c;
    p += base_fmt_ull(p, n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

int valkey_append_many(struct valkey *v, size_t ncmd, int argc, const char *const *argv,
                       const size_t *lens, char *err, size_t errlen) {
    if (!require_connection(v, err, errlen)) return -1;
    size_t total = 0, nargs = ncmd * (size_t)argc;
    for (size_t i = 0; i < nargs; i++) total += lens[i] + 26;   /* "$<20 digits>\r\n" "\r\n" */
    total += ncmd * 24;                                          /* "*<20 digits>\r\n" */
    char *buf = malloc(total ? total : 1), *p = buf;
    if (!buf) {
        lost(v, argv[0], err, errlen);
        return -1;
    }
    for (size_t i = 0; i < nargs; i++) {
        if (i % (size_t)argc == 0) p = resp_head(p, '*', (size_t)argc);
        p = resp_head(p, '$', lens[i]);
        memcpy(p, argv[i], lens[i]);
        p += lens[i];
        *p++ = '\r';
        *p++ = '\n';
    }
    int rc = redisAppendFormattedCommand(v->ctx, buf, (size_t)(p - buf));
    free(buf);
    if (rc == REDIS_OK) return 0;
    lost(v, argv[0], err, errlen);                  /* only out of memory gets here */
    return -1;
}

redisReply *valkey_read_reply(struct valkey *v, char *err, size_t errlen) {
    if (!require_connection(v, err, errlen)) return NULL;
    void *r = NULL;
    /* A reply already in the reader's buffer needs no I/O and so no SIGPIPE guard (three
     * system calls): the replies of a pipeline mostly arrive together with its first. */
    int rc = redisGetReplyFromReader(v->ctx, &r);
    if (rc == REDIS_OK && !r) {
        sigset_t old;
        sigpipe_block(&old);
        rc = redisGetReply(v->ctx, &r);
        sigpipe_restore(&old);
    }
    if (rc == REDIS_OK && r) return r;
    if (r) freeReplyObject(r);
    lost(v, "reading a reply", err, errlen);
    return NULL;
}
