/* tests/pb_equal.h: two decoded protobuf-c messages compared field by field, for the tests
 * that hold the worker's one-pass decoder (src/record/wire.c) against protobuf-c's own
 * protobuf_c_message_unpack (tests/unit/record_wire_test.c, tests/fuzz/record_unpack.c).
 *
 * pb_equal() walks both messages with their descriptor: every scalar, string, bytes,
 * sub-message (recursively), repeated field and oneof case must match; unknown fields are
 * not compared (protobuf-c keeps them, the worker's decoder skips them).
 *
 * pb_has_repeated_submessage() tells whether a value holds a singular sub-message field
 * twice in one message, at any depth: there protobuf-c's merge resets the first occurrence's
 * proto3 scalars where the specification (and the worker's decoder) keeps them, so values
 * are compared only when it is false. It expects a value that decodes.
 *
 * Header-only (static functions), so a fuzz target can include it by path.
 */
#ifndef CGW_TESTS_PB_EQUAL_H
#define CGW_TESTS_PB_EQUAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

static bool pb_equal(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *a,
                     const ProtobufCMessage *b);

/* The size of one element of a repeated field of type t, as protobuf-c lays it out (its own
 * sizeof_elt_in_repeated_array is not exported; wire.c has its copy, this one stays apart
 * so the comparison does not lean on the code it checks). */
static size_t pb_elt_size(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
    }
}

/* One value of field f at x and y. */
static bool pb_value_equal(const ProtobufCFieldDescriptor *f, const void *x, const void *y) {
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)x, *t = *(char *const *)y;
        return (!s && !t) || (s && t && strcmp(s, t) == 0);
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = x, *t = y;
        return s->len == t->len && (!s->len || memcmp(s->data, t->data, s->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *s = *(ProtobufCMessage *const *)x;
        const ProtobufCMessage *t = *(ProtobufCMessage *const *)y;
        return (!s && !t) || (s && t && pb_equal(f->descriptor, s, t));
    }
    default:   /* bit patterns: a NaN from the wire equals itself */
        return memcmp(x, y, pb_elt_size(f->type)) == 0;
    }
}

static bool pb_equal(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *a,
                     const ProtobufCMessage *b) {
    const char *ca = (const char *)a, *cb = (const char *)b;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t na = *(const size_t *)(ca + f->quantifier_offset);
            size_t nb = *(const size_t *)(cb + f->quantifier_offset);
            const char *xa = *(char *const *)(ca + f->offset);
            const char *xb = *(char *const *)(cb + f->offset);
            if (na != nb) return false;
            size_t elt = pb_elt_size(f->type);
            for (size_t k = 0; k < na; k++)
                if (!pb_value_equal(f, xa + k * elt, xb + k * elt)) return false;
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t wa = *(const uint32_t *)(ca + f->quantifier_offset);
            uint32_t wb = *(const uint32_t *)(cb + f->quantifier_offset);
            if (wa != wb) return false;
            if (wa != f->id) continue;      /* another member holds the union */
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset) {
            protobuf_c_boolean ha = *(const protobuf_c_boolean *)(ca + f->quantifier_offset);
            protobuf_c_boolean hb = *(const protobuf_c_boolean *)(cb + f->quantifier_offset);
            if (ha != hb) return false;
        }
        if (!pb_value_equal(f, ca + f->offset, cb + f->offset)) return false;
    }
    return true;
}

/* A varint at *p (at most 10 bytes, as both decoders read it); false when cut short. */
static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int i = 0; i < 10 && *p < end; i++) {
        uint8_t c = *(*p)++;
        *v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) return true;
    }
    return false;
}

static bool pb_has_repeated_submessage(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                                       size_t len, int depth) {
    const uint8_t *end = p + len;
    unsigned char seen[64] = {0};   /* per field index: a singular message seen already */
    while (p < end && depth < 32) {
        uint64_t tag, v;
        if (!pb_varint(&p, end, &tag)) return false;
        switch (tag & 7) {
        case 0: if (!pb_varint(&p, end, &v)) return false; break;
        case 1: p += 8; break;
        case 5: p += 4; break;
        case 2: {
            const ProtobufCFieldDescriptor *f;
            if (!pb_varint(&p, end, &v) || v > (uint64_t)(end - p)) return false;
            f = tag >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                size_t i = (size_t)(f - d->fields);
                bool singular = f->label != PROTOBUF_C_LABEL_REPEATED &&
                                !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
                if (singular && i < sizeof seen && seen[i]++) return true;
                if (pb_has_repeated_submessage(f->descriptor, p, (size_t)v, depth + 1))
                    return true;
            }
            p += v;
            break;
        }
        default: return false;
        }
    }
    return false;
}

#endif
