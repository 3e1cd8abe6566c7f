/* flags_valkey.c: the Valkey flag source, reading Flipper's Redis-adapter keys.
 *
 * Place. One of the three sources of flags.h (file, HTTP, Valkey); the pipeline's poller calls
 * flags_poll_valkey every flags.poll_interval_seconds and publishes what it returns. It never
 * logs: every failure is -1 with a message, and the caller keeps the last snapshot and logs
 * once per outage (contract section 4).
 *
 * Layout read (flipper-redis lib/flipper/adapters/redis.rb; docs/contract.md §4):
 * <prefix>flipper_features is a SET of feature names; <prefix><name> is a HASH with fields
 * boolean, percentage_of_actors, percentage_of_time, expression, actors/<id> and
 * groups/<name>. The prefix is concatenated as is, like the adapter's key_prefix.
 *
 * Design. A poll is two round trips on one blocking hiredis connection: SMEMBERS, then every
 * HGETALL appended to the output buffer and read back in order (a pipeline, as the adapter's
 * get_all does). Members and each hash's fields are sorted, then hashed (SHA-256, every string
 * length-prefixed); the same digest as the last snapshot returned means "unchanged" and nothing
 * is built. Otherwise the replies go through the flags builder, which validates the values;
 * the digest is remembered only for a snapshot returned, so bad data is reported at every poll
 * until fixed. Everything after the fetch (checks, order, digest, build) is
 * flags_valkey_take_replies (flags_valkey_internal.h), so the fuzz target feeds it replies no
 * server would send. The connection is src/valkey's (deadlines, TLS, AUTH, CLIENT SETNAME, the
 * SIGPIPE guard): one with an I/O error is dropped and opened again at the next poll.
 */
#include "flags/flags_valkey_internal.h"

#include "base/base.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLAGS_VALKEY_SET "flipper_features"

struct flags_valkey {
    struct valkey *conn;
    char *prefix;
    char *set_key;                      /* <prefix>flipper_features */
    unsigned char digest[32];           /* of the replies behind the last snapshot returned */
    bool have_digest;
};

/* One feature of a poll: a member of the set and its HGETALL reply (sorted by member). */
struct flags_valkey_item {
    const redisReply *member, *hash;
};

/* One field of a hash, for sorting. */
struct flags_valkey_pair {
    const redisReply *field, *value;
};

/* ---- lifetime ---------------------------------------------------------------------------------- */

static char *flags_set_key(const char *prefix) {
    size_t n = strlen(prefix);
    char *k = malloc(n + sizeof FLAGS_VALKEY_SET);
    if (k) {
        memcpy(k, prefix, n);
        memcpy(k + n, FLAGS_VALKEY_SET, sizeof FLAGS_VALKEY_SET);
    }
    return k;
}

void flags_valkey_options_init(struct flags_valkey_options *o) {
    memset(o, 0, sizeof *o);
    valkey_options_init(&o->valkey);
    o->valkey.connect_timeout_ms = 1000;
    o->valkey.command_timeout_ms = 2000;
    o->valkey.reconnect_backoff_ms = 0;
}

struct flags_valkey *flags_open_valkey(const struct flags_valkey_options *o, char *err, size_t errlen) {
    char why[512] = "valkey source: out of memory";
    struct flags_valkey *v = calloc(1, sizeof *v);
    if (v && (v->prefix = strdup(o->key_prefix ? o->key_prefix : "")) &&
        (v->set_key = flags_set_key(v->prefix)) &&
        (v->conn = valkey_new(&o->valkey, why, sizeof why)))
        return v;
    flags_close_valkey(v);
    base_errf(err, errlen, "flags: %s", why);
    return NULL;
}

void flags_close_valkey(struct flags_valkey *v) {
    if (!v) return;
    valkey_free(v->conn);
    free(v->prefix);
    free(v->set_key);
    free(v);
}

/* A failure of the connection (its message, prefixed). */
static int flags_valkey_failed(const char *why, char *err, size_t errlen) {
    base_errf(err, errlen, "flags: %s", why);
    return -1;
}

/* ---- fetching ---------------------------------------------------------------------------------- */

static int flags_cmp_bytes(const redisReply *a, const redisReply *b) {
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->str, b->str, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static int flags_cmp_item(const void *a, const void *b) {
    return flags_cmp_bytes(((const struct flags_valkey_item *)a)->member, ((const struct flags_valkey_item *)b)->member);
}

static int flags_cmp_pair(const void *a, const void *b) {
    return flags_cmp_bytes(((const struct flags_valkey_pair *)a)->field, ((const struct flags_valkey_pair *)b)->field);
}

/* A string reply usable as a C string (no NUL inside). */
static bool flags_is_text(const redisReply *r) {
    return r->type == REDIS_REPLY_STRING && !memchr(r->str, '\0', r->len);
}

/* The SMEMBERS reply is an array of feature names (non-empty text). */
static int flags_check_members(const struct flags_valkey *v, const redisReply *set, char *err, size_t errlen) {
    if (set->type != REDIS_REPLY_ARRAY) {
        base_errf(err, errlen, "flags: valkey %s: SMEMBERS %s: %s", valkey_endpoint(v->conn), v->set_key,
                         set->type == REDIS_REPLY_ERROR ? set->str : "not a set");
        return -1;
    }
    for (size_t i = 0; i < set->elements; i++) {
        if (!flags_is_text(set->element[i]) || set->element[i]->len == 0) {
            base_errf(err, errlen, "flags: valkey %s: %s holds a member that is not a feature name",
                             valkey_endpoint(v->conn), v->set_key);
            return -1;
        }
    }
    return 0;
}

static void flags_free_hashes(redisReply **hashes, size_t n) {
    for (size_t i = 0; hashes && i < n; i++)
        if (hashes[i]) freeReplyObject(hashes[i]);
    free(hashes);
}

/* Every HGETALL appended, then read back: one round trip. *hashes[i] answers set->element[i]. */
static int flags_fetch_hashes(struct flags_valkey *v, const redisReply *set, redisReply ***hashes, char *err,
                              size_t errlen) {
    size_t plen = strlen(v->prefix), n = set->elements;
    char why[512];
    if (!n) return 0;
    if (!(*hashes = calloc(n, sizeof **hashes))) {
        base_errf(err, errlen, "flags: valkey: out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = set->element[i];
        char *key = malloc(plen + m->len);
        if (!key) {
            base_errf(err, errlen, "flags: valkey: out of memory");
            valkey_disconnect(v->conn); /* half a pipeline is queued: start clean */
            return -1;
        }
        memcpy(key, v->prefix, plen);
        memcpy(key + plen, m->str, m->len);
        const char *argv[2] = {"HGETALL", key};
        size_t lens[2] = {7, plen + m->len};
        int rc = valkey_append(v->conn, 2, argv, lens, why, sizeof why);
        free(key);
        if (rc != 0) return flags_valkey_failed(why, err, errlen);
    }
    for (size_t i = 0; i < n; i++) {
        if (!((*hashes)[i] = valkey_read_reply(v->conn, why, sizeof why)))
            return flags_valkey_failed(why, err, errlen);
    }
    return 0;
}

static int flags_check_hash(const struct flags_valkey *v, const redisReply *m, const redisReply *h,
                            char *err, size_t errlen) {
    const char *why = NULL;
    if (h->type == REDIS_REPLY_ERROR) why = h->str;
    else if (h->type != REDIS_REPLY_ARRAY || h->elements % 2) why = "not a hash";
    for (size_t j = 0; !why && j < h->elements; j++)
        if (!flags_is_text(h->element[j])) why = "a field or value holds a NUL byte";
    if (!why) return 0;
    base_errf(err, errlen, "flags: valkey %s: HGETALL %s%s: %s", valkey_endpoint(v->conn), v->prefix, m->str,
                     why);
    return -1;
}

/* The members with their hashes, sorted by member and checked; NULL with a message. A member
 * twice is refused: no set holds one, and the digest must not depend on the reply's order. */
static struct flags_valkey_item *flags_sorted_items(const struct flags_valkey *v, const redisReply *set,
                                                    redisReply *const *hashes, char *err, size_t errlen) {
    size_t n = set->elements;
    struct flags_valkey_item *items = malloc((n ? n : 1) * sizeof *items);
    if (!items) {
        base_errf(err, errlen, "flags: valkey: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) items[i] = (struct flags_valkey_item){set->element[i], hashes[i]};
    if (n > 1) qsort(items, n, sizeof *items, flags_cmp_item);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && flags_cmp_bytes(items[i - 1].member, items[i].member) == 0) {
            base_errf(err, errlen, "flags: valkey %s: %s holds the member %s twice", valkey_endpoint(v->conn),
                             v->set_key, items[i].member->str);
            free(items);
            return NULL;
        }
        if (flags_check_hash(v, items[i].member, items[i].hash, err, errlen) < 0) {
            free(items);
            return NULL;
        }
    }
    return items;
}

/* ---- digest ------------------------------------------------------------------------------------ */

static void flags_hash_bytes(EVP_MD_CTX *md, const void *p, size_t len) {
    uint64_t n = len;
    EVP_DigestUpdate(md, &n, sizeof n);
    EVP_DigestUpdate(md, p, len);
}

/* Fields of one hash, sorted, into md. */
static int flags_hash_feature(EVP_MD_CTX *md, const redisReply *m, const redisReply *h) {
    size_t n = h->elements / 2;
    struct flags_valkey_pair *pairs = n ? malloc(n * sizeof *pairs) : NULL;
    if (n && !pairs) return -1;
    for (size_t j = 0; j < n; j++) pairs[j] = (struct flags_valkey_pair){h->element[2 * j], h->element[2 * j + 1]};
    if (n > 1) qsort(pairs, n, sizeof *pairs, flags_cmp_pair);
    flags_hash_bytes(md, m->str, m->len);
    uint64_t count = n;
    EVP_DigestUpdate(md, &count, sizeof count);
    for (size_t j = 0; j < n; j++) {
        flags_hash_bytes(md, pairs[j].field->str, pairs[j].field->len);
        flags_hash_bytes(md, pairs[j].value->str, pairs[j].value->len);
    }
    free(pairs);
    return 0;
}

static int flags_digest(const struct flags_valkey_item *items, size_t count, unsigned char out[32]) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int n = 0;
    int rc = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < count; i++) rc = flags_hash_feature(md, items[i].member, items[i].hash);
    if (rc == 0 && (EVP_DigestFinal_ex(md, out, &n) != 1 || n != 32)) rc = -1;
    EVP_MD_CTX_free(md);
    return rc;
}

/* ---- building ---------------------------------------------------------------------------------- */

static struct flags_set *flags_build(const struct flags_valkey *v, const struct flags_valkey_item *items, size_t n,
                                     char *err, size_t errlen) {
    struct flags_builder *b = flags_new_builder();
    char berr[256];
    if (!b) {
        base_errf(err, errlen, "flags: valkey: out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = items[i].member->str;
        const redisReply *h = items[i].hash;
        int rc = flags_add_feature(b, name, berr, sizeof berr);
        for (size_t j = 0; rc == 0 && j + 1 < h->elements; j += 2)
            rc = flags_set_gate(b, name, h->element[j]->str, h->element[j + 1]->str, berr, sizeof berr);
        if (rc < 0) {
            base_errf(err, errlen, "%s (valkey key %s%s)", berr, v->prefix, name);
            flags_free_builder(b);
            return NULL;
        }
    }
    struct flags_set *s = flags_finish_builder(b);
    if (!s) base_errf(err, errlen, "flags: valkey: out of memory");
    return s;
}

int flags_valkey_take_replies(struct flags_valkey *v, const redisReply *set, redisReply *const *hashes,
                              struct flags_set **out, char *err, size_t errlen) {
    unsigned char digest[32];
    *out = NULL;
    if (flags_check_members(v, set, err, errlen) < 0) return -1;
    struct flags_valkey_item *items = flags_sorted_items(v, set, hashes, err, errlen);
    if (!items) return -1;
    int rc = -1;
    if (flags_digest(items, set->elements, digest) < 0) {
        base_errf(err, errlen, "flags: valkey: cannot compute the digest (out of memory?)");
    } else if (v->have_digest && memcmp(digest, v->digest, sizeof digest) == 0) {
        rc = 0;
    } else if ((*out = flags_build(v, items, set->elements, err, errlen))) {
        memcpy(v->digest, digest, sizeof digest);
        v->have_digest = true;
        rc = 1;
    }
    free(items);
    return rc;
}

int flags_poll_valkey(struct flags_valkey *v, struct flags_set **out, char *err, size_t errlen) {
    const char *argv[2] = {"SMEMBERS", v->set_key};
    redisReply **hashes = NULL;
    char why[512];
    *out = NULL;
    if (valkey_connect(v->conn, why, sizeof why) < 0) return flags_valkey_failed(why, err, errlen);
    redisReply *set = valkey_command(v->conn, 2, argv, NULL, why, sizeof why);
    if (!set) return flags_valkey_failed(why, err, errlen);
    int rc = flags_check_members(v, set, err, errlen);
    if (rc == 0) rc = flags_fetch_hashes(v, set, &hashes, err, errlen);
    if (rc == 0) rc = flags_valkey_take_replies(v, set, hashes, out, err, errlen);
    flags_free_hashes(hashes, set->type == REDIS_REPLY_ARRAY ? set->elements : 0);
    freeReplyObject(set);
    return rc;
}

/* ---- as a struct flags_source ------------------------------------------------------------ */

static int valkey_source_poll(void *impl, struct flags_set **out, char *err, size_t errlen) {
    return flags_poll_valkey(impl, out, err, errlen);
}

static void valkey_source_close(void *impl) { flags_close_valkey(impl); }

int flags_valkey_source(const struct flags_valkey_options *o, struct flags_source *out, char *err,
                        size_t errlen) {
    struct flags_valkey *v = flags_open_valkey(o, err, errlen);
    if (!v) return -1;
    *out = (struct flags_source){.impl = v, .poll = valkey_source_poll, .close = valkey_source_close};
    return 0;
}
