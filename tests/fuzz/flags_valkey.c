/* tests/fuzz/flags_valkey.c: libFuzzer target for the Valkey flag source's reply handling
 * (src/flags/flags_valkey.c: Flipper's Redis-adapter layout).
 *
 * The input is what the server would send for one poll, in RESP: the SMEMBERS reply of
 * <prefix>flipper_features, then one HGETALL reply per member, in the set's order. hiredis's
 * reader (the one the connection uses) turns the bytes into replies; the RESP parsing is the
 * library's, what is fuzzed is ours: member and hash checks, ordering, the digest, and the
 * builder that validates every gate value. flags_valkey_take_replies is the whole poll minus
 * the connection. Promises checked beyond the sanitizers: an error says why; a snapshot has
 * one feature per member and finds each by name; the same replies again, and the same replies
 * in reverse order, are "unchanged" (the digest does not depend on the server's order).
 *
 *   make fuzz-flags_valkey
 *   build/fuzz/flags_valkey -dict=tests/fuzz/flags_valkey.dict <scratch dir> tests/fuzz/flags_valkey/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flags/flags_valkey_internal.h"

#define MAX_REPLIES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Up to max replies from data; their number (0 when the bytes are not RESP). */
static size_t read_replies(const uint8_t *data, size_t size, redisReply **out, size_t max) {
    redisReader *r = redisReaderCreate();
    size_t n = 0;
    if (!r) return 0;
    r->maxelements = 1024;              /* the reader's own cap, so "*1000000000" is refused */
    if (redisReaderFeed(r, (const char *)data, size) == REDIS_OK) {
        void *reply = NULL;
        while (n < max && redisReaderGetReply(r, &reply) == REDIS_OK && reply) {
            out[n++] = reply;
            reply = NULL;
        }
    }
    redisReaderFree(r);
    return n;
}

static void check_snapshot(const struct flags_set *s, const redisReply *set) {
    char buf[256];
    if (flags_count(s) != set->elements) __builtin_trap();
    for (size_t i = 0; i < set->elements; i++) {
        const struct flags_feature *f = flags_find(s, set->element[i]->str);
        if (!f) __builtin_trap();
        flags_describe(f, buf, sizeof buf);
        (void)flags_feature_is_enabled_for(f, "User;", "42");
        if (f->percentage_of_actors < 0 || f->percentage_of_actors > 100) __builtin_trap();
        for (size_t k = 1; k < f->actors_count; k++)
            if (strcmp(f->actors[k - 1], f->actors[k]) >= 0) __builtin_trap();   /* sorted, distinct */
    }
}

/* The same replies with the members (and their hashes) in reverse order. */
static int take_reversed(struct flags_valkey *v, const redisReply *set, redisReply **hashes, char *err,
                         size_t errlen) {
    size_t n = set->elements;
    redisReply rev = *set, **elems = malloc((n ? n : 1) * sizeof *elems), **rh = malloc((n ? n : 1) * sizeof *rh);
    struct flags_set *s = NULL;
    int rc = -2;
    if (elems && rh) {
        for (size_t i = 0; i < n; i++) {
            elems[i] = set->element[n - 1 - i];
            rh[i] = hashes[n - 1 - i];
        }
        rev.element = elems;
        rc = flags_valkey_take_replies(v, &rev, rh, &s, err, errlen);
        flags_release(s);
    }
    free(elems);
    free(rh);
    return rc;
}

static void exercise(const redisReply *set, redisReply **hashes) {
    struct flags_valkey_options o;
    char err[512];
    flags_valkey_options_init(&o);
    o.valkey.host = "127.0.0.1";
    o.key_prefix = "fz:";
    struct flags_valkey *v = flags_open_valkey(&o, err, sizeof err);       /* does not connect */
    if (!v) return;
    struct flags_set *s = NULL;
    err[0] = '\0';
    int rc = flags_valkey_take_replies(v, set, hashes, &s, err, sizeof err);
    if (rc == -1) {
        if (!err[0] || s) __builtin_trap();
    } else if (rc != 1 || !s) {
        __builtin_trap();               /* the first snapshot is never "unchanged" */
    } else {
        check_snapshot(s, set);
        flags_release(s);
        s = NULL;
        if (flags_valkey_take_replies(v, set, hashes, &s, err, sizeof err) != 0 || s) __builtin_trap();
        if (take_reversed(v, set, hashes, err, sizeof err) != 0) __builtin_trap();
    }
    flags_close_valkey(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    redisReply *replies[MAX_REPLIES];
    size_t n = read_replies(data, size, replies, MAX_REPLIES);
    if (n > 0) {
        const redisReply *set = replies[0];
        size_t need = set->type == REDIS_REPLY_ARRAY ? set->elements : 0;
        if (n - 1 >= need) exercise(set, replies + 1);   /* a poll always has one hash per member */
    }
    for (size_t i = 0; i < n; i++) freeReplyObject(replies[i]);
    return 0;
}
