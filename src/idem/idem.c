/* idem.c: idempotency cache in Valkey (see idem.h for the contract with the caller).
 *
 * State machine of one handle:
 *   connected      ctx != NULL. A call that fails on the wire (I/O error, timeout, EOF)
 *                  frees ctx; the next call may reconnect at once, because a connection
 *                  closed by the server (idle timeout, failover) is worth one immediate retry.
 *   disconnected   ctx == NULL. A call connects (connect timeout, AUTH, CLIENT SETNAME); if
 *                  that fails, no new attempt is made before reconnect_backoff_ms has passed:
 *                  calls in between return IDEM_EUNAVAILABLE without a syscall.
 * `available` is false from any failure to the next success; each true -> false edge counts
 * one outage, so the caller can log once per outage.
 *
 * Keys are built into one buffer per call and passed with explicit lengths (argv API), so ids
 * need no escaping and may hold any byte but NUL.
 */
#include "idem/idem.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

struct idem {
    struct idem_options o;              /* strings point at the owned copies below */
    char *host, *username, *password, *prefix, *client_name;
    redisContext *ctx;
    bool available;
    uint64_t next_connect_ms;           /* no connect attempt before this (monotonic) */
    char err[256];
    struct idem_stats st;
};

/* The keys of one call: argv/lens ready for hiredis, strings in one allocation. */
struct keys {
    char *arena;
    const char **argv;                  /* argv[0] free for the command name */
    size_t *lens;
};

const char *idem_status_name(enum idem_status s) {
    switch (s) {
    case IDEM_OK: return "IDEM_OK";
    case IDEM_EINVAL: return "IDEM_EINVAL";
    case IDEM_ENOMEM: return "IDEM_ENOMEM";
    case IDEM_EUNAVAILABLE: return "IDEM_EUNAVAILABLE";
    case IDEM_EREPLY: return "IDEM_EREPLY";
    }
    return "IDEM_UNKNOWN";
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval tv_of(long ms) {
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static void set_err(struct idem *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct idem *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->err, sizeof d->err, fmt, ap);
    va_end(ap);
}

/* ---- handle ------------------------------------------------------------------------------ */

void idem_options_init(struct idem_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 6379;
    o->prefix = "cgw:done:";
    o->ttl_seconds = 7L * 24 * 3600;
    o->connect_timeout_ms = 500;
    o->command_timeout_ms = 500;
    o->reconnect_backoff_ms = 5000;
}

static const char *check_options(const struct idem_options *o) {
    if (o->tls)
        return "TLS is not supported: Debian 12's hiredis 0.14 has no hiredis_ssl "
               "(TLS needs hiredis >= 1.0)";
    if (!o->host || !*o->host) return "host is empty";
    if (o->port < 1 || o->port > 65535) return "port must be 1..65535";
    if (!o->prefix) return "prefix is NULL";
    if (o->ttl_seconds < 1) return "ttl_seconds must be >= 1";
    if (o->connect_timeout_ms < 1 || o->command_timeout_ms < 1)
        return "timeouts must be >= 1 ms";
    if (o->reconnect_backoff_ms < 0) return "reconnect_backoff_ms must be >= 0";
    return NULL;
}

static bool dup_opt(const char *s, char **out) {
    *out = s ? strdup(s) : NULL;
    return !s || *out;
}

struct idem *idem_new(const struct idem_options *o, char *err, size_t errlen) {
    const char *bad = check_options(o);
    if (bad) {
        if (err && errlen) snprintf(err, errlen, "idem: %s", bad);
        return NULL;
    }
    struct idem *d = calloc(1, sizeof *d);
    if (!d || !dup_opt(o->host, &d->host) || !dup_opt(o->prefix, &d->prefix) ||
        !dup_opt(o->username, &d->username) || !dup_opt(o->password, &d->password) ||
        !dup_opt(o->client_name, &d->client_name)) {
        idem_free(d);
        if (err && errlen) snprintf(err, errlen, "idem: out of memory");
        return NULL;
    }
    d->o = *o;
    d->o.host = d->host;
    d->o.prefix = d->prefix;
    d->o.username = d->username;
    d->o.password = d->password;
    d->o.client_name = d->client_name;
    d->available = true;
    return d;
}

void idem_free(struct idem *d) {
    if (!d) return;
    if (d->ctx) redisFree(d->ctx);
    free(d->host);
    free(d->prefix);
    free(d->username);
    free(d->password);
    free(d->client_name);
    free(d);
}

bool idem_available(const struct idem *d) { return d->available; }
const char *idem_last_error(const struct idem *d) { return d->err; }
void idem_get_stats(const struct idem *d, struct idem_stats *out) { *out = d->st; }

/* ---- connection -------------------------------------------------------------------------- */

static void mark_down(struct idem *d) {
    if (d->available) d->st.outages++;
    d->available = false;
    d->st.failures++;
}

/* A failure on an open connection: drop it, allow an immediate reconnect. */
static enum idem_status lost(struct idem *d, const char *what) {
    set_err(d, "valkey %s:%d: %s: %s", d->host, d->o.port, what,
            d->ctx && d->ctx->errstr[0] ? d->ctx->errstr : "connection lost");
    redisFree(d->ctx);
    d->ctx = NULL;
    mark_down(d);
    return IDEM_EUNAVAILABLE;
}

/* One command on a fresh connection; false (message in d->err) unless it answers +OK. */
static bool setup_command(struct idem *d, int argc, const char **argv, const char *what) {
    redisReply *r = redisCommandArgv(d->ctx, argc, argv, NULL);
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (!r)
        set_err(d, "valkey %s:%d: %s: %s", d->host, d->o.port, what, d->ctx->errstr);
    else if (!ok)
        set_err(d, "valkey %s:%d: %s refused: %s", d->host, d->o.port, what,
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return ok;
}

static bool try_connect(struct idem *d) {
    d->ctx = redisConnectWithTimeout(d->host, d->o.port, tv_of(d->o.connect_timeout_ms));
    if (!d->ctx || d->ctx->err) {
        set_err(d, "valkey %s:%d: connect: %s", d->host, d->o.port,
                d->ctx ? d->ctx->errstr : "out of memory");
        return false;
    }
    if (redisSetTimeout(d->ctx, tv_of(d->o.command_timeout_ms)) != REDIS_OK) {
        set_err(d, "valkey %s:%d: cannot set timeouts: %s", d->host, d->o.port, d->ctx->errstr);
        return false;
    }
    if (d->password && *d->password) {
        const char *argv[3] = {"AUTH", d->username ? d->username : d->password, d->password};
        if (!setup_command(d, d->username ? 3 : 2, argv, "AUTH")) return false;
    }
    if (d->client_name && *d->client_name) {
        const char *argv[3] = {"CLIENT", "SETNAME", d->client_name};
        if (!setup_command(d, 3, argv, "CLIENT SETNAME")) return false;
    }
    return true;
}

/* IDEM_OK with d->ctx usable, or IDEM_EUNAVAILABLE (at once while backing off). */
static enum idem_status ensure_connected(struct idem *d) {
    if (d->ctx) return IDEM_OK;
    uint64_t now = now_ms();
    if (now < d->next_connect_ms) {
        d->st.skipped++;
        mark_down(d);
        return IDEM_EUNAVAILABLE;       /* d->err still says why the last attempt failed */
    }
    if (try_connect(d)) {
        d->st.connects++;
        return IDEM_OK;
    }
    if (d->ctx) redisFree(d->ctx);
    d->ctx = NULL;
    d->st.connect_failures++;
    d->next_connect_ms = now_ms() + (uint64_t)d->o.reconnect_backoff_ms;
    mark_down(d);
    return IDEM_EUNAVAILABLE;
}

static void succeeded(struct idem *d) {
    d->available = true;
    d->err[0] = '\0';
}

/* ---- keys -------------------------------------------------------------------------------- */

static void keys_free(struct keys *k) {
    free(k->arena);
    free(k->argv);
    free(k->lens);
}

/* argv[first + i] = "<prefix><consumer>:<ids[i]>"; `first` slots left for the caller. */
static int keys_build(struct idem *d, const char *consumer, const char *const ids[], size_t n,
                      size_t first, struct keys *k) {
    size_t lp = strlen(d->prefix), lc = strlen(consumer), total = 0;
    for (size_t i = 0; i < n; i++) total += lp + lc + 1 + strlen(ids[i]);
    k->arena = malloc(total ? total : 1);
    k->argv = calloc(first + n, sizeof *k->argv);
    k->lens = calloc(first + n, sizeof *k->lens);
    if (!k->arena || !k->argv || !k->lens) {
        keys_free(k);
        return -1;
    }
    char *p = k->arena;
    for (size_t i = 0; i < n; i++) {
        size_t li = strlen(ids[i]);
        k->argv[first + i] = p;
        k->lens[first + i] = lp + lc + 1 + li;
        memcpy(p, d->prefix, lp);
        memcpy(p + lp, consumer, lc);
        p[lp + lc] = ':';
        memcpy(p + lp + lc + 1, ids[i], li);
        p += k->lens[first + i];
    }
    return 0;
}

static enum idem_status check_args(struct idem *d, const char *consumer,
                                   const char *const ids[], const char *const values[],
                                   size_t n) {
    if (!consumer || !*consumer) {
        set_err(d, "idem: consumer is empty");
        return IDEM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i] || (values && !values[i])) {
            set_err(d, "idem: id or value #%zu is NULL", i);
            return IDEM_EINVAL;
        }
    }
    return IDEM_OK;
}

/* ---- calls ------------------------------------------------------------------------------- */

enum idem_status idem_check(struct idem *d, const char *consumer, const char *const ids[],
                            size_t n, bool seen[]) {
    for (size_t i = 0; i < n; i++) seen[i] = false;
    enum idem_status st = check_args(d, consumer, ids, NULL, n);
    if (st != IDEM_OK || n == 0) return st;
    struct keys k = {0};
    if (keys_build(d, consumer, ids, n, 1, &k) != 0) return IDEM_ENOMEM;
    if ((st = ensure_connected(d)) != IDEM_OK) {
        keys_free(&k);
        return st;
    }
    k.argv[0] = "MGET";
    k.lens[0] = 4;
    redisReply *r = redisCommandArgv(d->ctx, (int)(n + 1), k.argv, k.lens);
    keys_free(&k);
    if (!r) return lost(d, "MGET");
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        set_err(d, "valkey: MGET: unexpected reply%s%s", r->type == REDIS_REPLY_ERROR ? ": " : "",
                r->type == REDIS_REPLY_ERROR ? r->str : "");
        freeReplyObject(r);
        mark_down(d);
        return IDEM_EREPLY;
    }
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        seen[i] = r->element[i]->type != REDIS_REPLY_NIL;
        hits += seen[i];
    }
    freeReplyObject(r);
    d->st.checks++;
    d->st.ids_checked += n;
    d->st.ids_seen += hits;
    succeeded(d);
    return IDEM_OK;
}

/* Reads the n replies of a pipeline of SETs; all of them, even after an error reply, so the
 * connection stays in step. */
static enum idem_status read_set_replies(struct idem *d, size_t n) {
    enum idem_status st = IDEM_OK;
    for (size_t i = 0; i < n; i++) {
        void *rv = NULL;
        if (redisGetReply(d->ctx, &rv) != REDIS_OK) return lost(d, "SET pipeline");
        redisReply *r = rv;
        if (r->type != REDIS_REPLY_STATUS && st == IDEM_OK) {
            set_err(d, "valkey: SET: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            st = IDEM_EREPLY;
        }
        freeReplyObject(r);
    }
    return st;
}

enum idem_status idem_mark(struct idem *d, const char *consumer, const char *const ids[],
                           const char *const values[], size_t n) {
    enum idem_status st = check_args(d, consumer, ids, values, n);
    if (st != IDEM_OK || n == 0) return st;
    struct keys k = {0};
    if (keys_build(d, consumer, ids, n, 0, &k) != 0) return IDEM_ENOMEM;
    if ((st = ensure_connected(d)) != IDEM_OK) {
        keys_free(&k);
        return st;
    }
    char ttl[24];
    int lt = snprintf(ttl, sizeof ttl, "%ld", d->o.ttl_seconds);
    for (size_t i = 0; i < n; i++) {
        const char *argv[5] = {"SET", k.argv[i], values[i], "EX", ttl};
        size_t lens[5] = {3, k.lens[i], strlen(values[i]), 2, (size_t)lt};
        if (redisAppendCommandArgv(d->ctx, 5, argv, lens) != REDIS_OK) {
            keys_free(&k);
            return lost(d, "SET pipeline");     /* only out of memory gets here */
        }
    }
    keys_free(&k);
    st = read_set_replies(d, n);
    if (st == IDEM_EREPLY) mark_down(d);
    if (st != IDEM_OK) return st;
    d->st.marks++;
    d->st.ids_marked += n;
    succeeded(d);
    return IDEM_OK;
}
