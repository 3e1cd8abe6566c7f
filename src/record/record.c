/* src/record/record.c: what both decoders share (see record.h for the module).
 *
 * receipt.c and factoid.c each turn one topic's bytes into a record_result; this file holds
 * what they have in common: reason names, the result helpers, the purchase's lifetime, the
 * bounded arena the wire decoder (wire.c) allocates from, and the string helpers.
 *
 * Two rules shape the helpers. First, everything copied out of an unpacked message is a copy
 * owned by the purchase, so the unpacked message is freed before the decoder returns,
 * whatever the outcome. The copies come from a pool allocated with the purchase itself, sized
 * from the record (record_purchase_new), or from the heap should one not fit: one malloc
 * per record, and record_purchase_free frees only what lies outside the pool. Second, no
 * record content reaches a message
 * (detail, error) except ids and the factoid type, and those only through
 * record_safe_copy(): printable ASCII, bounded length, so a log line stays one line.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/record_internal.h"

static const char *const record_reason_names[RECORD_REASON_COUNT] = {
    [RECORD_REASON_NONE] = "none",
    [RECORD_REASON_DIGITAL] = "digital",
    [RECORD_REASON_STATUS] = "status",
    [RECORD_REASON_SOURCE] = "source",
    [RECORD_REASON_TYPE] = "type",
    [RECORD_REASON_NO_FIDOS] = "no_fidos",
    [RECORD_REASON_NOT_IN_ROLLOUT] = "not_in_rollout",
    [RECORD_REASON_DUPLICATE] = "duplicate",
};

const char *record_reason_name(record_reason r) {
    /* Compared as unsigned: an out-of-range value from a cast cannot index the table. */
    if ((unsigned)r >= (unsigned)RECORD_REASON_COUNT) return "unknown";
    return record_reason_names[r];
}

/* ---- results ---------------------------------------------------------------------- */

void record_result_init(record_result *out) {
    memset(out, 0, sizeof *out);
    out->status = RECORD_OK;
    out->reason = RECORD_REASON_NONE;
    out->schema_id = -1;
    out->fido_count = -1;
}

const char *record_error_kind_name(record_error_kind k) {
    switch (k) {
    case RECORD_ERR_INVALID_STRING: return "invalid_string";
    case RECORD_ERR_ID_TOO_LONG: return "id_too_long";
    default: return "undecodable";
    }
}

void record_fail(record_result *out, const char *fmt, ...) {
    va_list ap;
    out->status = RECORD_ERROR;
    out->error_kind = RECORD_ERR_UNDECODABLE;
    out->reason = RECORD_REASON_NONE;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
}

void record_skip(record_result *out, record_reason reason, const char *detail) {
    out->status = RECORD_SKIP;
    out->reason = reason;
    record_safe_copy(out->detail, sizeof out->detail, detail ? detail : "");
}

/* ---- strings ---------------------------------------------------------------------- */

void record_safe_copy(char *dst, size_t dstlen, const char *s) {
    assert(dstlen >= 1);
    size_t max = dstlen - 1, n = 0;
    if (max > RECORD_SAFE_MAX) max = RECORD_SAFE_MAX;
    for (; s && s[n] && n < max; n++) {
        unsigned char c = (unsigned char)s[n];
        dst[n] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s && s[n] && max >= 3) {        /* cut short: say so */
        memcpy(dst + max - 3, "...", 3);
        n = max;
    }
    dst[n] = '\0';
}

int record_str_empty(const char *s) {
    return s == NULL || s[0] == '\0';
}

int record_check_id_len(record_result *out, const char *what, const char *field,
                        const char *id) {
    size_t n = id ? strlen(id) : 0;
    if (n <= RECORD_ID_MAX_BYTES) return 0;
    record_fail(out, "id too long: %s field %s has %zu bytes (at most %d: Neo4j's index key "
                "limit)", what, field, n, RECORD_ID_MAX_BYTES);
    out->error_kind = RECORD_ERR_ID_TOO_LONG;
    return -1;
}

/* n bytes from p's pool, or from the heap when the pool is short. */
static void *pool_take(record_purchase *p, size_t n) {
    if ((size_t)(p->pool_end - p->pool_next) >= n) {
        void *r = p->pool_next;
        p->pool_next += n;
        return r;
    }
    return malloc(n);
}

static bool in_pool(const record_purchase *p, const void *x) {
    return x && (const char *)x > (const char *)p && (const char *)x < p->pool_end;
}

int record_dup(record_purchase *p, char **dst, const char *s, int null_if_empty) {
    *dst = NULL;
    if (s == NULL || (null_if_empty && s[0] == '\0')) return 0;
    size_t n = strlen(s) + 1;
    if (!(*dst = pool_take(p, n))) return -1;
    memcpy(*dst, s, n);
    return 0;
}

int record_dup_prefixed(record_purchase *p, char **dst, const char *prefix, const char *s) {
    size_t a = strlen(prefix), b = strlen(s);
    if (!(*dst = pool_take(p, a + b + 1))) return -1;
    memcpy(*dst, prefix, a);
    memcpy(*dst + a, s, b + 1);
    return 0;
}

record_item *record_items_new(record_purchase *p, size_t n) {
    /* items come first in the pool (record_purchase_new), where they are aligned */
    if (n > SIZE_MAX / sizeof(record_item)) return NULL;
    record_item *v = pool_take(p, n * sizeof *v);
    if (v) memset(v, 0, n * sizeof *v);
    return v;
}

/* ---- timestamps ------------------------------------------------------------------- */

/* google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999999999Z. */
#define RECORD_TS_MIN_S INT64_C(-62135596800)
#define RECORD_TS_MAX_S INT64_C(253402300799)

int record_set_timestamp(record_purchase *p, const Google__Protobuf__Timestamp *ts,
                         const char *field, record_result *out) {
    p->has_purchased_at = 0;
    if (!ts) return 0;
    if (ts->seconds < RECORD_TS_MIN_S || ts->seconds > RECORD_TS_MAX_S || ts->nanos < 0 ||
        ts->nanos > 999999999) {
        record_fail(out, "invalid protobuf: %s is outside the Timestamp range", field);
        return -1;
    }
    p->purchased_at_s = ts->seconds;
    p->purchased_at_ns = ts->nanos;
    p->has_purchased_at = 1;
    return 0;
}

/* ---- purchases -------------------------------------------------------------------- */

size_t record_pool_size(size_t value_len, size_t nitems, size_t copied_twice) {
    /* value_len <= RECORD_MAX_VALUE_LEN, nitems and copied_twice <= 2 x value_len: no overflow */
    return nitems * (sizeof(record_item) + 2) + value_len + copied_twice + 64;
}

record_purchase *record_purchase_new(size_t pool_bytes) {
    size_t head = (sizeof(record_purchase) + 15) & ~(size_t)15;
    if (pool_bytes > SIZE_MAX - head) pool_bytes = 0;
    record_purchase *p = malloc(head + pool_bytes);
    if (!p) return NULL;
    memset(p, 0, sizeof *p);
    p->fido_count = -1;
    p->pool_next = (char *)p + head;
    p->pool_end = p->pool_next + pool_bytes;
    return p;
}

/* Frees a field unless it lives in the pool (or the purchase was built by hand: no pool). */
static void free_field(const record_purchase *p, void *x) {
    if (!in_pool(p, x)) free(x);
}

void record_purchase_free(record_purchase *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nitems; i++) {
        free_field(p, p->items[i].fido);
        free_field(p, p->items[i].description);
    }
    free_field(p, p->items);
    free_field(p, p->id);
    free_field(p, p->purchase_id);
    free_field(p, p->user_id);
    free_field(p, p->retailer_id);
    free_field(p, p->receipt_id);
    free_field(p, p->order_id);
    free_field(p, p->factoid_id);
    free_field(p, p->currency);
    free(p);
}

/* ---- bounded allocator ------------------------------------------------------------ */

#ifdef RECORD_ASAN   /* record_internal.h */
#include <sanitizer/asan_interface.h>
#define RECORD_REDZONE ((size_t)16)
#define RECORD_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RECORD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RECORD_REDZONE ((size_t)0)
#define RECORD_POISON(p, n) ((void)(p), (void)(n))
#define RECORD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define RECORD_ALIGN (_Alignof(max_align_t))
#define RECORD_CHUNK_MIN ((size_t)16 << 10)

struct record_alloc_chunk {
    record_alloc_chunk *next;
    size_t size;                /* of data */
    _Alignas(max_align_t) unsigned char data[];
};

/* Makes room for `need` bytes in a new heap chunk. 0, or -1 when out of memory. */
static int record_alloc_grow(record_alloc *a, size_t need) {
    size_t size = need > RECORD_CHUNK_MIN ? need : RECORD_CHUNK_MIN;
    record_alloc_chunk *c = malloc(sizeof *c + size);
    if (!c) return -1;
    c->size = size;
    c->next = a->chunks;
    a->chunks = c;
    a->cur = c->data;
    a->end = c->data + size;
    RECORD_POISON(c->data, size);
    return 0;
}

void *record_alloc_take_slow(record_alloc *a, size_t size) {
    size_t room = a->limit - a->used;     /* used never exceeds limit */
    size_t need = (size + RECORD_REDZONE + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
    if (size > room || need > room || need < size) {
        a->exhausted = 1;
        return NULL;
    }
    if ((size_t)(a->end - a->cur) < need && record_alloc_grow(a, need) != 0) {
        a->exhausted = 1;
        return NULL;
    }
    void *p = a->cur;
    a->cur += need;
    a->used += need;
    RECORD_UNPOISON(p, size);
    return p;
}

void record_alloc_init(record_alloc *a, size_t limit) {
    a->used = 0;
    a->limit = limit;
    a->exhausted = 0;
    a->chunks = NULL;
    a->cur = a->first;
    a->end = a->first + sizeof a->first;
    RECORD_POISON(a->first, sizeof a->first);
}

void record_alloc_release(record_alloc *a) {
    while (a->chunks) {
        record_alloc_chunk *c = a->chunks;
        a->chunks = c->next;
        RECORD_UNPOISON(c->data, c->size);
        free(c);
    }
    RECORD_UNPOISON(a->first, sizeof a->first);   /* stack memory: leave it clean */
    a->cur = a->end = NULL;
}
