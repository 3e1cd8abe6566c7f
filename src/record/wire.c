/* src/record/wire.c: every string field of a protobuf value, checked on the wire.
 *
 * Why: protobuf-c hands string fields over as C strings, so a string holding U+0000 is cut
 * at the NUL without a word: "r1\0aaa" and "r1\0bbb" both became receipt_id "r1", one
 * purchase, one idempotency key, and a user_id with a NUL was credited to another user.
 * proto3 requires string fields to be valid UTF-8 (the official parsers refuse anything
 * else), and U+0000, although valid UTF-8, cannot survive the C string. So the worker
 * checks the bytes as the wire has them, before it believes a single C string: a string
 * field holding U+0000 or invalid UTF-8 makes the record an error that names the field.
 *
 * How: after protobuf-c has unpacked the value (so the wire is known to be well formed),
 * walk the same bytes again with the message's protobuf-c descriptor: each length-delimited
 * field whose descriptor says string is checked; each sub-message field is walked with its
 * own descriptor (recursively, depth-bounded); fields the descriptor does not know, and
 * every other wire type, are skipped. No library offers this: protobuf-c does not validate
 * UTF-8 and has no API to see a string's wire length.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "record/record_internal.h"

/* Deeper than any schema of the contract; a bound for hostile nesting of known types. */
#define WIRE_MAX_DEPTH 32

typedef struct wire_reader {
    const uint8_t *p, *end;
} wire_reader;

/* A varint of at most 10 bytes. 0, or -1 when it is cut short or too long. */
static int wire_varint_long(wire_reader *r, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70 && r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) return 0;
    }
    return -1;
}

/* Tags and short lengths are one byte: read inline, the loop only for the others. */
static inline __attribute__((always_inline)) int wire_varint(wire_reader *r, uint64_t *v) {
    if (r->p < r->end && *r->p < 0x80) {
        *v = *r->p++;
        return 0;
    }
    return wire_varint_long(r, v);
}

static int wire_skip(wire_reader *r, size_t n) {
    if ((size_t)(r->end - r->p) < n) return -1;
    r->p += n;
    return 0;
}

/* Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) over n bytes,
 * where a NUL byte is a fault of its own. Returns NULL, or what is wrong. */
/* Eight bytes of ASCII without a zero byte (the common case: ids, titles), in one test. */
static bool ascii8(const uint8_t *s) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x;
    memcpy(&x, s, sizeof x);
    return !(x & highs) && !((x - ones) & ~x & highs);
}

const char *record_wire_string_fault(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        if (n - i >= 8 && ascii8(s + i)) {
            i += 8;
            continue;
        }
        uint8_t c = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c == 0) return "holds U+0000";
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) k = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else return "is not valid UTF-8";
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi) return "is not valid UTF-8";
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf) return "is not valid UTF-8";
        i += k + 1;
    }
    return NULL;
}

typedef struct wire_walk {
    /* the fields from the top message down to the one being checked; the dotted path is
     * written out only when a string is bad (formatting it for every field of every record
     * cost more than the check itself) */
    const ProtobufCFieldDescriptor *stack[WIRE_MAX_DEPTH + 1];
    char path[160];
    const char *fault;
} wire_walk;

static void wire_path(wire_walk *w, int depth) {
    size_t len = 0;
    w->path[0] = '\0';
    for (int i = 0; i <= depth && len < sizeof w->path; i++) {
        int k = snprintf(w->path + len, sizeof w->path - len, "%s%s", i ? "." : "", w->stack[i]->name);
        if (k < 0) break;
        len += (size_t)k;
    }
}

static int wire_message(wire_walk *w, const ProtobufCMessageDescriptor *d, wire_reader r,
                        int depth);

/* One length-delimited field of n bytes at r->p. 0, or -1 when a string is bad. */
static int wire_delimited(wire_walk *w, const ProtobufCFieldDescriptor *f, const uint8_t *v,
                          size_t n, int depth) {
    if (!f || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE))
        return 0;
    w->stack[depth] = f;
    if (f->type == PROTOBUF_C_TYPE_STRING) {
        w->fault = record_wire_string_fault(v, n);
        if (!w->fault) return 0;
        wire_path(w, depth);
        return -1;
    }
    if (depth < WIRE_MAX_DEPTH)
        return wire_message(w, f->descriptor, (wire_reader){v, v + n}, depth + 1);
    return 0;
}

static int wire_message(wire_walk *w, const ProtobufCMessageDescriptor *d, wire_reader r,
                        int depth) {
    while (r.p < r.end) {
        uint64_t tag, n;
        if (wire_varint(&r, &tag) < 0) return 0;     /* malformed: unpack's business */
        switch (tag & 7) {
        case 0: if (wire_varint(&r, &n) < 0) return 0; break;
        case 1: if (wire_skip(&r, 8) < 0) return 0; break;
        case 5: if (wire_skip(&r, 4) < 0) return 0; break;
        case 2: {
            const uint8_t *v;
            if (wire_varint(&r, &n) < 0 || n > (uint64_t)(r.end - r.p)) return 0;
            v = r.p;
            r.p += n;
            if (tag >> 3 <= UINT32_MAX &&
                wire_delimited(w, protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)),
                               v, (size_t)n, depth) < 0)
                return -1;
            break;
        }
        default: return 0;                            /* groups: protobuf-c has none */
        }
    }
    return 0;
}

int record_check_wire_strings(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                              size_t len, const char *what, record_result *out) {
    wire_walk w = {.fault = NULL};
    if (wire_message(&w, d, (wire_reader){buf, buf + len}, 0) == 0) return 0;
    record_fail(out, "invalid protobuf: %s field %s %s", what, w.path, w.fault);
    out->error_kind = RECORD_ERR_INVALID_STRING;
    return -1;
}
