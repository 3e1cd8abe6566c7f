/* src/record/record_internal.h: what record.c shares with receipt.c and factoid.c.
 *
 * Not part of the module's interface (record.h is). Three groups of helpers live behind it:
 *
 * - result handling: starting a result, failing it with a message, skipping it;
 * - the one-pass wire decoder (wire.c) and the bounded arena it allocates from, so that a
 *   hostile record cannot make decoding allocate without limit (a struct per sub-message,
 *   even for empty ones: a few wire bytes can cost a hundred heap bytes);
 * - string helpers: copying out of the unpacked message, and making any record-supplied
 *   text (ids, the factoid type) safe to print in a one-line log message.
 */
#ifndef CGW_RECORD_INTERNAL_H
#define CGW_RECORD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "record/record.h"

/* Larger values are refused before unpacking: Kafka's default message.max.bytes is 1 MiB,
 * so 16 MiB leaves room for a tuned broker while keeping the allocation budget finite. */
#define RECORD_MAX_VALUE_LEN ((size_t)16 << 20)
/* Heap that one unpack may use: comfortably above what a 16 MiB legitimate record needs. */
#define RECORD_ALLOC_BUDGET ((size_t)256 << 20)

/* How much of a record-supplied string goes into a message (ids, the factoid type). */
#define RECORD_SAFE_MAX 64

/* What one unpack takes from the stack before it needs the heap: a typical record's unpacked
 * message (a receipt of ~600 bytes unpacks into ~2-3 KiB) fits. */
#define RECORD_ALLOC_INLINE 4096

typedef struct record_alloc_chunk record_alloc_chunk;

/* The allocator of one decode: a bump arena that refuses to go beyond `limit` bytes in
 * total. A decoded message is a tree of small blocks (the message, each item, each string)
 * that all die together, so they are carved out of `first` and then out of malloc'd chunks,
 * and released at once by record_alloc_release. This took one malloc/free pair per block
 * (~35 per receipt) out of the worker's hottest path. Under AddressSanitizer every block is
 * followed by a poisoned red zone, so an overflow is still caught as with malloc. */
typedef struct record_alloc {
    size_t used;
    size_t limit;
    int exhausted;              /* an allocation was refused: report it as such */
    unsigned char *cur, *end;   /* the free part of the current chunk */
    record_alloc_chunk *chunks; /* heap chunks, newest first */
    _Alignas(max_align_t) unsigned char first[RECORD_ALLOC_INLINE];
} record_alloc;

void record_alloc_init(record_alloc *a, size_t limit);
#if defined(__SANITIZE_ADDRESS__)   /* red zones and poisoning in the arena (record.c) */
#define RECORD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RECORD_ASAN 1
#endif
#endif
/* size bytes (aligned for anything), or NULL with a->exhausted set when the budget or the
 * heap is out. The common case (room in the current chunk, no AddressSanitizer red zones to
 * keep) is inline: the decoder takes a block per string and per sub-message. */
void *record_alloc_take_slow(record_alloc *a, size_t size);
static inline void *record_alloc_take(record_alloc *a, size_t size) {
#ifndef RECORD_ASAN
    size_t need = (size + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
    if (need >= size && need <= (size_t)(a->end - a->cur) && need <= a->limit - a->used) {
        void *p = a->cur;
        a->cur += need;
        a->used += need;
        return p;
    }
#endif
    return record_alloc_take_slow(a, size);
}
/* Frees every block of the arena, so the decoded message with it (or a failed decode's). */
void record_alloc_release(record_alloc *a);

/* Reset *out for a new record: status OK, no reason, schema_id -1. */
void record_result_init(record_result *out);
void record_fail(record_result *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void record_skip(record_result *out, record_reason reason, const char *detail);

/* Copy at most RECORD_SAFE_MAX bytes of s into dst (NUL-terminated, dstlen >= 1), with
 * every byte outside printable ASCII replaced by '?' and "..." marking a cut. */
void record_safe_copy(char *dst, size_t dstlen, const char *s);

int record_str_empty(const char *s);

/* *dst = copy of s (from p's pool when it fits, else the heap), or NULL when s is empty and
 * null_if_empty. Returns -1 on OOM. */
int record_dup(record_purchase *p, char **dst, const char *s, int null_if_empty);
/* *dst = prefix followed by s. Returns -1 on OOM. */
int record_dup_prefixed(record_purchase *p, char **dst, const char *prefix, const char *s);
/* n zeroed items for p->items, from the pool when they fit. NULL on OOM. */
record_item *record_items_new(record_purchase *p, size_t n);

/* wire.c: decode the protobuf value buf[0..len) as message d in one pass, into protobuf-c's
 * generated struct for d (cast the result), every block from a. NULL after failing out:
 * "invalid protobuf: <what> does not decode: <why> (byte N)", "... needs more memory than
 * allowed to decode", or a string field holding U+0000 or invalid UTF-8 ("<what> field
 * items.fido holds U+0000", error_kind RECORD_ERR_INVALID_STRING). Differences from
 * protobuf_c_message_unpack are listed atop wire.c. */
void *record_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                    record_alloc *a, const char *what, record_result *out);

/* Longest id (receipt_id, order_id, factoid_id, user_id, retailer_id, fido), in bytes.
 * Every id becomes the key of a uniqueness constraint (contract §6), and Neo4j refuses a
 * key its index cannot hold: the documented native key limit is 8167 bytes, a single
 * string taking 2 + its UTF-8 length (Neo4j Operations Manual, "Index key calculations";
 * Knowledge Base "Index limitations and workarounds"); the range-1.0 index of Neo4j 5.26
 * behind the constraints takes one byte less: 8164 bytes of string, measured against the
 * local stack (tests/py/test_e2e_poison.py keeps checking it). purchase_id prefixes
 * "receipt:" (8 bytes) to receipt_id, so 8156 bytes keeps every key writable; a longer id
 * would be refused by Neo4j at write time instead ("Property value is too large to index"). */
#define RECORD_ID_MAX_BYTES 8156
/* Fail out and return -1 when id is longer than RECORD_ID_MAX_BYTES; 0 otherwise. */
int record_check_id_len(record_result *out, const char *what, const char *field,
                        const char *id);

/* Copy a Timestamp into p; absent leaves has_purchased_at 0. A timestamp outside
 * google.protobuf.Timestamp's own range (years 1..9999, nanos 0..999999999) fails out
 * and returns -1: the graph would reject it as a datetime anyway. */
int record_set_timestamp(record_purchase *p, const Google__Protobuf__Timestamp *ts,
                         const char *field, record_result *out);

/* A purchase allocated together with a pool of pool_bytes for its items and strings: one
 * malloc and one free per record instead of ~15 of each (issue 14: they were a tenth of the
 * worker's CPU). A decoder passes the record's length plus the items' size: the copies of
 * the wire's strings then fit; whatever does not goes to the heap, so a small pool is never
 * wrong, only slower. */
record_purchase *record_purchase_new(size_t pool_bytes);
/* The pool a decoder asks for: the value's bytes (every copied string comes from them), the
 * items, the bytes of strings it copies more than once (receipt_id: id, receipt_id and
 * purchase_id), and room for the NULs and purchase_id's prefix. */
size_t record_pool_size(size_t value_len, size_t nitems, size_t copied_twice);

#endif
