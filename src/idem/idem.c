/* idem.c: idempotency cache in Valkey (see idem.h for the contract with the caller).
 *
 * The connection is src/valkey's (deadlines, TLS, AUTH, CLIENT SETNAME, reconnect backoff);
 * this file owns the keys and the two calls. `available` is false from any failure to the
 * next success; each true -> false edge counts one outage, so the caller can log once per
 * outage. A connection failure or a call refused during the backoff is IDEM_EUNAVAILABLE; an
 * error reply is IDEM_EREPLY (the connection stays: it is still in step).
 *
 * Keys are built into one buffer per call and passed with explicit lengths (argv API), so ids
 * need no escaping and may hold any byte but NUL.
 */
#include "idem/idem.h"
#include "base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct idem {
    char *prefix;
    long ttl_seconds;
    struct valkey *conn;
    bool available;
    char err[512];
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

/* ---- handle ------------------------------------------------------------------------------ */

void idem_options_init(struct idem_options *o) {
    memset(o, 0, sizeof *o);
    valkey_options_init(&o->valkey);
    o->prefix = "cgw:done:";
    o->ttl_seconds = 7L * 24 * 3600;
}

struct idem *idem_new(const struct idem_options *o, char *err, size_t errlen) {
    char why[512];
    if (!o->prefix || o->ttl_seconds < 1) {
        snprintf(err, errlen, "idem: %s", !o->prefix ? "prefix is NULL" : "ttl_seconds must be >= 1");
        return NULL;
    }
    struct idem *d = calloc(1, sizeof *d);
    if (!d || !(d->prefix = strdup(o->prefix))) {
        idem_free(d);
        snprintf(err, errlen, "idem: out of memory");
        return NULL;
    }
    if (!(d->conn = valkey_new(&o->valkey, why, sizeof why))) {
        idem_free(d);
        snprintf(err, errlen, "idem: %s", why);
        return NULL;
    }
    d->ttl_seconds = o->ttl_seconds;
    d->available = true;
    return d;
}

void idem_free(struct idem *d) {
    if (!d) return;
    valkey_free(d->conn);
    free(d->prefix);
    free(d);
}

bool idem_available(const struct idem *d) { return d->available; }
const char *idem_last_error(const struct idem *d) { return d->err; }

void idem_get_stats(const struct idem *d, struct idem_stats *out) {
    struct valkey_stats vs;
    valkey_get_stats(d->conn, &vs);
    *out = d->st;
    out->connects = vs.connects;
    out->connect_failures = vs.connect_failures;
    out->skipped = vs.skipped;
}

/* ---- outcome ----------------------------------------------------------------------------- */

static void mark_down(struct idem *d) {
    if (d->available) d->st.outages++;
    d->available = false;
    d->st.failures++;
}

/* The connection failed (message already in d->err). */
static enum idem_status unavailable(struct idem *d) {
    mark_down(d);
    return IDEM_EUNAVAILABLE;
}

static enum idem_status ensure_connected(struct idem *d) {
    return valkey_connect(d->conn, d->err, sizeof d->err) == 0 ? IDEM_OK : unavailable(d);
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
        base_errf(d->err, sizeof d->err, "idem: consumer is empty");
        return IDEM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i] || (values && !values[i])) {
            base_errf(d->err, sizeof d->err, "idem: id or value #%zu is NULL", i);
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
    redisReply *r = valkey_command(d->conn, (int)(n + 1), k.argv, k.lens, d->err, sizeof d->err);
    keys_free(&k);
    if (!r) return unavailable(d);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        base_errf(d->err, sizeof d->err, "valkey: MGET: unexpected reply%s%s", r->type == REDIS_REPLY_ERROR ? ": " : "",
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
        redisReply *r = valkey_read_reply(d->conn, d->err, sizeof d->err);
        if (!r) return unavailable(d);
        if (r->type != REDIS_REPLY_STATUS && st == IDEM_OK) {
            base_errf(d->err, sizeof d->err, "valkey: SET: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
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
    size_t lt = base_fmt_ll(ttl, d->ttl_seconds);
    const char **argv = malloc(5 * n * sizeof *argv);
    size_t *lens = malloc(5 * n * sizeof *lens);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        keys_free(&k);
        return IDEM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {            /* SET <key> <value> EX <ttl> */
        const char *const a[5] = {"SET", k.argv[i], values[i], "EX", ttl};
        const size_t l[5] = {3, k.lens[i], strlen(values[i]), 2, lt};
        memcpy(argv + 5 * i, a, sizeof a);
        memcpy(lens + 5 * i, l, sizeof l);
    }
    int rc = valkey_append_many(d->conn, n, 5, argv, lens, d->err, sizeof d->err);
    free(argv);
    free(lens);
    keys_free(&k);
    if (rc != 0) return unavailable(d);         /* only out of memory gets here */
    st = read_set_replies(d, n);
    if (st == IDEM_EREPLY) mark_down(d);
    if (st != IDEM_OK) return st;
    d->st.marks++;
    d->st.ids_marked += n;
    succeeded(d);
    return IDEM_OK;
}
