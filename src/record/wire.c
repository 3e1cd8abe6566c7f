/* src/record/wire.c: a protobuf value decoded in one pass, its strings checked as they are read.
 *
 * What: record_unpack() turns the wire bytes of a message into the protobuf-c structs that
 * protoc-c generated for it (so receipt.c and factoid.c read ordinary generated structs),
 * driven by protobuf-c's own descriptors, every block carved out of the record's bounded
 * arena (record_alloc). Each string field is checked on the wire as it is copied: strict UTF-8
 * without U+0000.
 *
 * Why by hand. protobuf-c does not validate UTF-8 and hands strings over as C strings, so a
 * string holding U+0000 was cut at the NUL without a word ("r1\0aaa" and "r1\0bbb" both
 * became receipt_id "r1": one purchase, one idempotency key). The worker therefore walked
 * the wire a second time after protobuf_c_message_unpack() to check every string. The two
 * passes, plus protobuf-c's own two (a scan of every field, then the parse), its copy of
 * every unknown field and its per-field bookkeeping, were 30 % of the instructions the
 * worker spent per receipt (issue 14: the worker's CPU against Neo4j's). One pass over the
 * bytes that both decodes and checks does the same work in a fraction of that. protobuf-c
 * stays the generator of the structs and descriptors, and the oracle: the fuzz target
 * tests/fuzz/record_unpack.c decodes every input with both and requires the same verdict and
 * the same values.
 *
 * What is accepted is what protobuf_c_message_unpack() accepts, with these differences,
 * each on the side of the protobuf specification:
 *   - a string that is not strict UTF-8, or holds U+0000, is an error naming the field
 *     (RECORD_ERR_INVALID_STRING), reported only when the rest of the value decodes;
 *   - a tag whose field number is 0 is refused in every encoding (protobuf-c refuses only
 *     the one-byte form);
 *   - a singular sub-message that occurs twice is merged as the specification says: the
 *     second occurrence's fields replace or extend the first's, and a scalar it does not
 *     carry keeps the first's value (protobuf-c resets such proto3 scalars to zero); a
 *     oneof member that occurs again replaces the previous one, as in protobuf-c;
 *   - unknown fields are skipped, not kept (nothing reads them);
 *   - a bool must come as a varint (protobuf-c reads one from any wire type; the contract's
 *     schemas have no bool).
 * Like protobuf-c (and stricter than the specification, which would keep them as unknown
 * fields), a known field with another wire type than its type's, and the group wire types
 * 3 and 4, make the value undecodable. A tag is at most 5 bytes, a length prefix at most 5
 * bytes and INT_MAX, a varint at most 10 bytes, as in protobuf-c; nesting is bounded by
 * WIRE_MAX_DEPTH (the contract's schemas nest three deep).
 *
 * Repeated fields grow in the arena by doubling (their capacity is implied by their count:
 * 4, 8, 16, ...), so nothing is counted in advance.
 *
 * Two paths read a field. The fast one (wire_fast) takes the fields most values are made of:
 * a one-byte tag of a plain singular string, integer, enum, double or message, or of a
 * repeated message, looked up by the tag byte in a table built once per message type
 * (fast_of); it stores exactly what the general path stores. Everything else (longer tags,
 * other wire types, oneof members, presence flags, packed and repeated scalars, unknown
 * fields) takes the general path: parse the tag, find the field, check label and wire type.
 * tests/unit/record_wire_test.c reads the same fields through both (one-byte tags and their
 * two-byte forms).
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "record/record_internal.h"

/* Deeper than any schema of the contract; a bound for hostile nesting of known types. */
#define WIRE_MAX_DEPTH 32

typedef struct wire_reader {
    const uint8_t *p, *end;
} wire_reader;

typedef struct wire_dec {
    record_alloc *a;
    const uint8_t *start, *end;    /* of the value: faults give their byte offset */
    const char *why;               /* the value does not decode: why (static text) */
    size_t at;                     /* ... at this byte */
    const char *fault;             /* the first string that is not strict UTF-8 */
    /* the fields from the top message down to the one being read; the dotted path is
     * written out only for the first bad string */
    const ProtobufCFieldDescriptor *stack[WIRE_MAX_DEPTH + 1];
    char path[160];
} wire_dec;

/* ------------------------------------------------------------------ reading the wire */

/* Records why the value does not decode; returns -1 for the callers to pass up. */
static int wire_bad(wire_dec *w, const wire_reader *r, const char *why) {
    if (!w->why) {
        w->why = why;
        w->at = (size_t)(r->p - w->start);
    }
    return -1;
}

/* A varint of at most 10 bytes (bits beyond 64 dropped, as protobuf-c does). */
static int wire_varint_long(wire_dec *w, wire_reader *r, uint64_t *v) {
    const uint8_t *p = r->p;
    *v = 0;
    for (unsigned i = 0; i < 10 && p < r->end; i++) {
        uint8_t b = *p++;
        *v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            r->p = p;
            return 0;
        }
    }
    return wire_bad(w, r, "a varint is cut short or longer than 10 bytes");
}

/* Tags, lengths and most values are one byte, prices two: read inline, the loop only for
 * the others. */
static inline __attribute__((always_inline)) int wire_varint(wire_dec *w, wire_reader *r,
                                                             uint64_t *v) {
    const uint8_t *p = r->p;
    if (p < r->end && *p < 0x80) {
        *v = *p;
        r->p = p + 1;
        return 0;
    }
    if (r->end - p >= 2 && p[1] < 0x80) {
        *v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        r->p = p + 2;
        return 0;
    }
    return wire_varint_long(w, r, v);
}

/* A tag: at most 5 bytes, the field number read into 32 bits exactly as protobuf-c's
 * parse_tag_and_wiretype does (so both see the same number in every encoding), and not 0. */
static int wire_tag(wire_dec *w, wire_reader *r, uint32_t *field, unsigned *wt) {
    const uint8_t *p = r->p;
    uint32_t id;
    if (p == r->end) return wire_bad(w, r, "a tag is cut short");
    *wt = *p & 7;
    id = (uint32_t)(*p & 0x7f) >> 3;
    for (unsigned i = 1, shift = 4; *p++ & 0x80; i++, shift += 7) {
        if (i == 5 || p == r->end)
            return wire_bad(w, r, "a tag is cut short or longer than 5 bytes");
        id |= (uint32_t)(*p & 0x7f) << shift;
    }
    if (!id) return wire_bad(w, r, "a tag has field number 0");
    r->p = p;
    *field = id;
    return 0;
}

/* The bytes of a length-delimited field: a prefix of at most 5 bytes and INT_MAX. */
static int wire_bytes_long(wire_dec *w, wire_reader *r, const uint8_t **v, size_t *n) {
    uint64_t len = 0;
    const uint8_t *p = r->p;
    for (int i = 0;; i++) {
        if (i == 5 || p == r->end)
            return wire_bad(w, r, "a length prefix is cut short or longer than 5 bytes");
        uint8_t b = *p++;
        len |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) break;
    }
    if (len > INT_MAX || len > (uint64_t)(r->end - p))
        return wire_bad(w, r, "a length-delimited field runs past the end of its message");
    *v = p;
    *n = (size_t)len;
    r->p = p + len;
    return 0;
}

/* Most lengths are one byte: read inline, the loop only for the others. */
static inline __attribute__((always_inline)) int wire_bytes(wire_dec *w, wire_reader *r,
                                                            const uint8_t **v, size_t *n) {
    const uint8_t *p = r->p;
    if (p < r->end && *p < 0x80) {
        size_t len = *p++;
        if (len > (size_t)(r->end - p))
            return wire_bad(w, r, "a length-delimited field runs past the end of its message");
        *v = p;
        *n = len;
        r->p = p + len;
        return 0;
    }
    return wire_bytes_long(w, r, v, n);
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "fixed-size fields are read as stored");

static int wire_fixed(wire_dec *w, wire_reader *r, size_t n, uint64_t *v) {
    uint8_t b[8] = {0};
    if ((size_t)(r->end - r->p) < n) return wire_bad(w, r, "a fixed-size field is cut short");
    memcpy(b, r->p, n);        /* little-endian on the wire, as on every target we build */
    memcpy(v, b, sizeof *v);
    r->p += n;
    return 0;
}

/* Steps over an unknown field's value. */
static int wire_skip(wire_dec *w, wire_reader *r, unsigned wt) {
    uint64_t v;
    const uint8_t *p;
    size_t n;
    switch (wt) {
    case PROTOBUF_C_WIRE_TYPE_VARINT: return wire_varint(w, r, &v);
    case PROTOBUF_C_WIRE_TYPE_64BIT: return wire_fixed(w, r, 8, &v);
    case PROTOBUF_C_WIRE_TYPE_32BIT: return wire_fixed(w, r, 4, &v);
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: return wire_bytes(w, r, &p, &n);
    default: return wire_bad(w, r, "wire type 3, 4, 6 or 7 (groups are not supported)");
    }
}

/* ------------------------------------------------------------------ the structs */

/* A block from the record's arena; a refusal (budget or heap) is a->exhausted, which
 * record_unpack reports as such. */
static void *wire_alloc(wire_dec *w, size_t n) { return record_alloc_take(w->a, n); }

/* Per field type (ProtobufCType, 0..16): the size of its C member (an element of a repeated
 * field), and the wire type it is read from. */
static const uint8_t WIRE_SIZE[] = {
    [PROTOBUF_C_TYPE_INT32] = 4, [PROTOBUF_C_TYPE_SINT32] = 4, [PROTOBUF_C_TYPE_SFIXED32] = 4,
    [PROTOBUF_C_TYPE_INT64] = 8, [PROTOBUF_C_TYPE_SINT64] = 8, [PROTOBUF_C_TYPE_SFIXED64] = 8,
    [PROTOBUF_C_TYPE_UINT32] = 4, [PROTOBUF_C_TYPE_FIXED32] = 4, [PROTOBUF_C_TYPE_UINT64] = 8,
    [PROTOBUF_C_TYPE_FIXED64] = 8, [PROTOBUF_C_TYPE_FLOAT] = 4, [PROTOBUF_C_TYPE_DOUBLE] = 8,
    [PROTOBUF_C_TYPE_BOOL] = sizeof(protobuf_c_boolean), [PROTOBUF_C_TYPE_ENUM] = 4,
    [PROTOBUF_C_TYPE_STRING] = sizeof(char *),
    [PROTOBUF_C_TYPE_BYTES] = sizeof(ProtobufCBinaryData),
    [PROTOBUF_C_TYPE_MESSAGE] = sizeof(ProtobufCMessage *)};
static const uint8_t WIRE_TYPE[] = {
    [PROTOBUF_C_TYPE_SFIXED32] = PROTOBUF_C_WIRE_TYPE_32BIT,
    [PROTOBUF_C_TYPE_FIXED32] = PROTOBUF_C_WIRE_TYPE_32BIT,
    [PROTOBUF_C_TYPE_FLOAT] = PROTOBUF_C_WIRE_TYPE_32BIT,
    [PROTOBUF_C_TYPE_SFIXED64] = PROTOBUF_C_WIRE_TYPE_64BIT,
    [PROTOBUF_C_TYPE_FIXED64] = PROTOBUF_C_WIRE_TYPE_64BIT,
    [PROTOBUF_C_TYPE_DOUBLE] = PROTOBUF_C_WIRE_TYPE_64BIT,
    [PROTOBUF_C_TYPE_STRING] = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
    [PROTOBUF_C_TYPE_BYTES] = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
    [PROTOBUF_C_TYPE_MESSAGE] = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED};   /* the rest: varint */
_Static_assert(PROTOBUF_C_WIRE_TYPE_VARINT == 0, "WIRE_TYPE's zeros mean varint");

/* protobuf-c's types are 0..16; a descriptor with another would be corrupt. */
static size_t wire_elt_size(ProtobufCType t) {
    return (unsigned)t < sizeof WIRE_SIZE ? WIRE_SIZE[t] : 0;
}
static unsigned wire_type_of(ProtobufCType t) {
    return (unsigned)t < sizeof WIRE_TYPE ? WIRE_TYPE[t] : 7;   /* 7: matches no field */
}

/* One more element of a repeated field: its slot, zeroed. The array's capacity is implied by
 * its count (0, then 4, 8, 16, ...): it grows when the count reaches a power of two >= 4. */
static void *wire_append(wire_dec *w, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
    size_t *n = (size_t *)((char *)m + f->quantifier_offset);
    char **arr = (char **)((char *)m + f->offset);
    size_t elt = wire_elt_size(f->type);
    if (*n == 0 || (*n >= 4 && !(*n & (*n - 1)))) {
        size_t cap = *n ? 2 * *n : 4;
        char *grown = wire_alloc(w, cap * elt);
        if (!grown) return NULL;
        if (*n) memcpy(grown, *arr, *n * elt);
        *arr = grown;
    }
    void *slot = *arr + (*n)++ * elt;
    memset(slot, 0, elt);
    return slot;
}

static void wire_path(wire_dec *w, int depth) {
    size_t len = 0;
    w->path[0] = '\0';
    for (int i = 0; i <= depth && len < sizeof w->path; i++) {
        int k = snprintf(w->path + len, sizeof w->path - len, "%s%s", i ? "." : "",
                         w->stack[i]->name);
        if (k < 0) break;
        len += (size_t)k;
    }
}

typedef struct fast_table fast_table;
static const fast_table *fast_of(const ProtobufCMessageDescriptor *d);
static int wire_message(wire_dec *w, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                        wire_reader r, int depth, const fast_table *t);

/* Copies n bytes of a string to dst and checks them in the same pass: ASCII without NUL (ids,
 * most text) 8 bytes at a time, the last 1-7 bytes as one word too when the value's buffer
 * goes on past them (limit: its end; the bytes past the string are masked out, never
 * copied), and from the first other byte on, base_utf8_fault (strict UTF-8 without U+0000,
 * shared with the enrichment's JSON) and a memcpy. Returns NULL, or
 * what is wrong. Reading each string twice (check, then copy) was a fifth of the decoder's
 * instructions, and a byte-by-byte tail a tenth (issue 14). */
/* The low t bytes of x (1 <= t <= 7) to d, as two overlapping stores: memcpy of a variable
 * length was a library call per string. */
static inline void put_tail(char *d, uint64_t x, size_t t) {
    if (t >= 4) {
        uint32_t a = (uint32_t)x, b = (uint32_t)(x >> (8 * (t - 4)));
        memcpy(d, &a, 4);
        memcpy(d + t - 4, &b, 4);
    } else if (t >= 2) {
        uint16_t a = (uint16_t)x, b = (uint16_t)(x >> (8 * (t - 2)));
        memcpy(d, &a, 2);
        memcpy(d + t - 2, &b, 2);
    } else {
        *d = (char)x;
    }
}

static const char *copy_checked(char *dst, const uint8_t *s, size_t n, const uint8_t *limit) {
    size_t i = 0;
    uint64_t x;
    for (; n - i >= 8; i += 8) {
        memcpy(&x, s + i, sizeof x);
        if (!base_ascii8(x)) break;
        memcpy(dst + i, &x, sizeof x);
    }
    size_t t = n - i;
    if (t > 0 && t < 8 && (size_t)(limit - (s + i)) >= 8) {
        memcpy(&x, s + i, sizeof x);
        uint64_t keep = (1ULL << (8 * t)) - 1;       /* the tail's bytes; the rest as 0x01 */
        if (base_ascii8((x & keep) | (0x0101010101010101ULL & ~keep))) {
            put_tail(dst + i, x, t);
            return NULL;
        }
    }
    for (; i < n && s[i] > 0 && s[i] < 0x80; i++) dst[i] = (char)s[i];
    if (i == n) return NULL;
    memcpy(dst + i, s + i, n - i);
    return base_utf8_fault(s + i, n - i);
}

/* A string: checked (the first fault is kept with its field's path), copied with its NUL. */
static int wire_string(wire_dec *w, char **dst, const uint8_t *v, size_t n, int depth) {
    char *s = wire_alloc(w, n + 1);
    if (!s) return -1;
    const char *fault = copy_checked(s, v, n, w->end);
    if (fault && !w->fault) {
        w->fault = fault;
        wire_path(w, depth);
    }
    s[n] = '\0';
    *dst = s;
    return 0;
}

/* A sub-message's bytes merged into *pm (a new one when NULL), t its fast table or NULL. */
static int wire_submessage(wire_dec *w, const ProtobufCMessageDescriptor *sd,
                           ProtobufCMessage **pm, const uint8_t *v, size_t n, int depth,
                           const fast_table *t) {
    if (depth >= WIRE_MAX_DEPTH) {
        w->why = w->why ? w->why : "messages nested too deep";
        return -1;
    }
    if (!*pm) {
        if (!(*pm = wire_alloc(w, sd->sizeof_message))) return -1;
        protobuf_c_message_init(sd, *pm);
    }
    return wire_message(w, sd, *pm, (wire_reader){v, v + n}, depth + 1, t);
}

/* A length-delimited value of field f into *member (a sub-message is merged into the one
 * already there; a new repeated element or a replaced oneof member holds NULL). */
static int wire_delimited(wire_dec *w, const ProtobufCFieldDescriptor *f, void *member,
                          const uint8_t *v, size_t n, int depth) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: return wire_string(w, member, v, n, depth);
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = member;
        bd->len = n;
        bd->data = NULL;
        if (n && !(bd->data = wire_alloc(w, n))) return -1;
        if (n) memcpy(bd->data, v, n);
        return 0;
    }
    default:     /* PROTOBUF_C_TYPE_MESSAGE */
        return wire_submessage(w, f->descriptor, member, v, n, depth, fast_of(f->descriptor));
    }
}

/* A scalar of field f, read as its type's wire type, into *member. */
static int wire_scalar(wire_dec *w, wire_reader *r, const ProtobufCFieldDescriptor *f,
                       void *member) {
    uint64_t v;
    int rc = wire_type_of(f->type) == PROTOBUF_C_WIRE_TYPE_VARINT
                 ? wire_varint(w, r, &v)
                 : wire_fixed(w, r, wire_elt_size(f->type), &v);
    if (rc < 0) return -1;
    switch (f->type) {
    case PROTOBUF_C_TYPE_SINT32:
        *(int32_t *)member = (int32_t)(((uint32_t)v >> 1) ^ -((uint32_t)v & 1));
        break;
    case PROTOBUF_C_TYPE_SINT64: *(int64_t *)member = (int64_t)((v >> 1) ^ -(v & 1)); break;
    case PROTOBUF_C_TYPE_BOOL: *(protobuf_c_boolean *)member = v != 0; break;
    default:
        if (wire_elt_size(f->type) == 8) memcpy(member, &v, 8);
        else *(uint32_t *)member = (uint32_t)v;     /* 32-bit types: the low 32 bits */
    }
    return 0;
}

/* A repeated field's occurrence: one element, or a packed run of scalars. */
static int wire_repeated(wire_dec *w, wire_reader *r, ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, unsigned wt, int depth) {
    unsigned want = wire_type_of(f->type);
    const uint8_t *v;
    size_t n;
    void *slot;
    if (want != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED &&
        wt == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) {
        wire_reader pr;
        if (wire_bytes(w, r, &v, &n) < 0) return -1;
        if (want != PROTOBUF_C_WIRE_TYPE_VARINT && n % wire_elt_size(f->type))
            return wire_bad(w, r, "a packed field's length is not a multiple of its type's size");
        for (pr = (wire_reader){v, v + n}; pr.p < pr.end;)
            if (!(slot = wire_append(w, m, f)) || wire_scalar(w, &pr, f, slot) < 0) return -1;
        return 0;
    }
    if (wt != want) return wire_bad(w, r, "a known field has another wire type than its type's");
    if (!(slot = wire_append(w, m, f))) return -1;
    if (want != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) return wire_scalar(w, r, f, slot);
    return wire_bytes(w, r, &v, &n) < 0 ? -1 : wire_delimited(w, f, slot, v, n, depth);
}

/* A singular field's occurrence (proto3 plain, optional, or a oneof member). */
static int wire_singular(wire_dec *w, wire_reader *r, ProtobufCMessage *m,
                         const ProtobufCFieldDescriptor *f, unsigned wt, int depth) {
    void *member = (char *)m + f->offset;
    unsigned want = wire_type_of(f->type);
    const uint8_t *v;
    size_t n;
    if (wt != want) return wire_bad(w, r, "a known field has another wire type than its type's");
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)((char *)m + f->quantifier_offset);
        if (*which) {   /* another member, or this one again: it is replaced */
            const ProtobufCFieldDescriptor *old =
                protobuf_c_message_descriptor_get_field(m->descriptor, *which);
            memset(member, 0, wire_elt_size(old ? old->type : f->type));
        }
        *which = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
        *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
    }
    if (want != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED) return wire_scalar(w, r, f, member);
    return wire_bytes(w, r, &v, &n) < 0 ? -1 : wire_delimited(w, f, member, v, n, depth);
}

/* The descriptor of field number id: the one after the previous field's (fields come in
 * order), the previous field's again (a repeated field's next element), else a binary
 * search of the fields sorted by number. */
static const ProtobufCFieldDescriptor *wire_field(const ProtobufCMessageDescriptor *d,
                                                  uint32_t id, unsigned *hint) {
    unsigned lo = 0, hi = d->n_fields;
    if (*hint < d->n_fields && d->fields[*hint].id == id) return &d->fields[(*hint)++];
    if (*hint > 0 && *hint <= d->n_fields && d->fields[*hint - 1].id == id)
        return &d->fields[*hint - 1];
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (d->fields[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    if (lo == d->n_fields || d->fields[lo].id != id) return NULL;
    *hint = lo + 1;
    return &d->fields[lo];
}

/* ------------------------------------------------------------------ the fast path */

/* What a one-byte tag (field number 1-15 and its type's wire type) reads, for the fields
 * whose reading is a plain store: singular strings, integers, enums, doubles and messages
 * outside a oneof and without a presence flag, and repeated messages. Everything else
 * (other tags, wire types and labels, longer tags) takes the general path, which reads
 * these exactly the same way. One table load per field where the general path parsed the
 * tag, searched the field, checked its label and wire type: a third of the decoder's
 * instructions (issue 14). */
enum fast_kind { FK_GENERAL = 0, FK_STRING, FK_VARINT32, FK_VARINT64, FK_FIXED64, FK_MESSAGE,
                 FK_MESSAGES };

typedef struct fast_field {
    uint8_t kind;
    const ProtobufCFieldDescriptor *f;
    const fast_table *sub;          /* FK_MESSAGE(S): the sub-message's table, or NULL */
} fast_field;

struct fast_table {
    const ProtobufCMessageDescriptor *d;
    fast_field tag[128];
};

/* Tables of the descriptors decoded so far (the contract's schemas need 8), built under the
 * lock with every table they lead to, then published by raising fast_count; readers take
 * no lock. A descriptor past the bound decodes by the general path only. */
#define FAST_MAX 24
static fast_table fast_tables[FAST_MAX];
static atomic_int fast_count;
static int fast_building;           /* under fast_lock: tables filled, published or not */
static pthread_mutex_t fast_lock = PTHREAD_MUTEX_INITIALIZER;

static enum fast_kind fast_kind_of(const ProtobufCFieldDescriptor *f) {
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return FK_GENERAL;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return f->type == PROTOBUF_C_TYPE_MESSAGE ? FK_MESSAGES : FK_GENERAL;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) return FK_GENERAL;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: return FK_STRING;
    case PROTOBUF_C_TYPE_MESSAGE: return FK_MESSAGE;
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_ENUM:
        return FK_VARINT32;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: return FK_VARINT64;
    case PROTOBUF_C_TYPE_DOUBLE: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_SFIXED64:
        return FK_FIXED64;
    default: return FK_GENERAL;
    }
}

static const fast_table *fast_find(const ProtobufCMessageDescriptor *d, int n) {
    for (int i = 0; i < n; i++)
        if (fast_tables[i].d == d) return &fast_tables[i];
    return NULL;
}

/* Under fast_lock: d's table and those of its sub-messages (a cycle meets its own table). */
static const fast_table *fast_build(const ProtobufCMessageDescriptor *d) {
    const fast_table *found = fast_find(d, fast_building);
    if (found || fast_building == FAST_MAX) return found;
    fast_table *t = &fast_tables[fast_building++];
    memset(t, 0, sizeof *t);
    t->d = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        enum fast_kind k = fast_kind_of(f);
        if (k == FK_GENERAL || f->id < 1 || f->id > 15) continue;
        fast_field *ff = &t->tag[(f->id << 3) | wire_type_of(f->type)];
        ff->kind = (uint8_t)k;
        ff->f = f;
        if (k == FK_MESSAGE || k == FK_MESSAGES) ff->sub = fast_build(f->descriptor);
    }
    return t;
}

static const fast_table *fast_of(const ProtobufCMessageDescriptor *d) {
    const fast_table *t = fast_find(d, atomic_load_explicit(&fast_count, memory_order_acquire));
    if (t) return t;
    pthread_mutex_lock(&fast_lock);
    t = fast_build(d);
    atomic_store_explicit(&fast_count, fast_building, memory_order_release);
    pthread_mutex_unlock(&fast_lock);
    return t;
}

/* One field by its table entry (r->p past its one-byte tag). */
static int wire_fast(wire_dec *w, wire_reader *r, ProtobufCMessage *m, const fast_field *ff,
                     int depth) {
    const ProtobufCFieldDescriptor *f = ff->f;
    void *member = (char *)m + f->offset;
    const uint8_t *v;
    size_t n;
    uint64_t x;
    w->stack[depth] = f;
    switch (ff->kind) {
    case FK_STRING:
        return wire_bytes(w, r, &v, &n) < 0 ? -1 : wire_string(w, member, v, n, depth);
    case FK_VARINT32:
        if (wire_varint(w, r, &x) < 0) return -1;
        *(uint32_t *)member = (uint32_t)x;          /* the low 32 bits, as wire_scalar */
        return 0;
    case FK_VARINT64:
        if (wire_varint(w, r, &x) < 0) return -1;
        memcpy(member, &x, 8);
        return 0;
    case FK_FIXED64:
        if (wire_fixed(w, r, 8, &x) < 0) return -1;
        memcpy(member, &x, 8);
        return 0;
    case FK_MESSAGES:
        if (!(member = wire_append(w, m, f))) return -1;
        /* fall through */
    default:    /* FK_MESSAGE */
        if (wire_bytes(w, r, &v, &n) < 0) return -1;
        return wire_submessage(w, f->descriptor, member, v, n, depth, ff->sub);
    }
}

/* ------------------------------------------------------------------ a message */

/* t: d's fast table, or NULL for the general path only. */
static int wire_message(wire_dec *w, const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                        wire_reader r, int depth, const fast_table *t) {
    unsigned hint = 0;
    while (r.p < r.end) {
        uint32_t id;
        unsigned wt;
        const ProtobufCFieldDescriptor *f;
        if (t && *r.p < 0x80 && t->tag[*r.p].kind) {
            const fast_field *ff = &t->tag[*r.p++];
            if (wire_fast(w, &r, m, ff, depth) < 0) return -1;
            continue;
        }
        if (wire_tag(w, &r, &id, &wt) < 0) return -1;
        if (!(f = wire_field(d, id, &hint))) {
            if (wire_skip(w, &r, wt) < 0) return -1;
            continue;
        }
        w->stack[depth] = f;
        if ((f->label == PROTOBUF_C_LABEL_REPEATED ? wire_repeated(w, &r, m, f, wt, depth)
                                                   : wire_singular(w, &r, m, f, wt, depth)) < 0)
            return -1;
    }
    return 0;
}

void *record_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len,
                    record_alloc *a, const char *what, record_result *out) {
    wire_dec w = {.a = a, .start = buf, .end = buf + len};
    ProtobufCMessage *m = record_alloc_take(a, d->sizeof_message);
    if (m) {
        protobuf_c_message_init(d, m);
        if (wire_message(&w, d, m, (wire_reader){buf, buf + len}, 0, fast_of(d)) == 0 &&
            !w.fault)
            return m;
    }
    if (a->exhausted)
        record_fail(out, "invalid protobuf: %s needs more memory than allowed to decode", what);
    else if (w.why)
        record_fail(out, "invalid protobuf: %s does not decode: %s (byte %zu)", what, w.why, w.at);
    else {
        record_fail(out, "invalid protobuf: %s field %s %s", what, w.path, w.fault);
        out->error_kind = RECORD_ERR_INVALID_STRING;
    }
    return NULL;
}
