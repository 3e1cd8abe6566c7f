/* tests/unit/record_wire_test.c: the one-pass decoder record_unpack (src/record/wire.c),
 * held against protobuf-c's protobuf_c_message_unpack as the oracle.
 *
 * The contract's schemas use strings, int32/int64, double, an enum, sub-messages, a repeated
 * sub-message and a oneof; a hand-made descriptor here (t.All) has every field type
 * protobuf-c knows, singular, optional (has_) and repeated, so that every branch of the
 * decoder is decoded by both and compared (tests/pb_equal.h). Then what differs on purpose
 * (listed atop wire.c): strings, field number 0, merged sub-messages, and the errors.
 */
#define TEST_MAIN
#include "test.h"

#include <math.h>

#include "factoids/v1/factoid.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "pb_equal.h"
#include "record/record.h"
#include "record/record_internal.h"

typedef struct {
    ProtobufCMessage base;
    int32_t i32; int32_t s32; uint32_t u32; int64_t i64; int64_t s64; uint64_t u64;
    uint32_t f32; int32_t sf32; float fl; uint64_t f64; int64_t sf64; double db;
    protobuf_c_boolean b; char *str; ProtobufCBinaryData by; int en;
    Google__Protobuf__Timestamp *ts;
    size_t n_ri32; int32_t *ri32;
    size_t n_rdb; double *rdb;
    size_t n_rstr; char **rstr;
    size_t n_rts; Google__Protobuf__Timestamp **rts;
    protobuf_c_boolean has_oi32; int32_t oi32;
    size_t n_rs64; int64_t *rs64;
    size_t n_rf32; uint32_t *rf32;
} t_all;

static const ProtobufCMessageDescriptor t_all_descriptor;

static void t_all_init(t_all *m) {
    memset(m, 0, sizeof *m);
    m->base.descriptor = &t_all_descriptor;
    m->str = (char *)protobuf_c_empty_string;
}

#define F(id, name, label, type, q, member, desc, flags)                                    \
    {name, id, PROTOBUF_C_LABEL_##label, PROTOBUF_C_TYPE_##type, q, offsetof(t_all, member), \
     desc, PROTOBUF_C_TYPE_##type == PROTOBUF_C_TYPE_STRING && PROTOBUF_C_LABEL_##label !=    \
     PROTOBUF_C_LABEL_REPEATED ? &protobuf_c_empty_string : NULL, flags, 0, NULL, NULL}
#define N(id, name, type, member) F(id, name, NONE, type, 0, member, NULL, 0)
#define R(id, name, type, member, desc, flags)                                              \
    F(id, name, REPEATED, type, offsetof(t_all, n_##member), member, desc, flags)

static const ProtobufCFieldDescriptor t_all_fields[] = {
    N(1, "i32", INT32, i32), N(2, "s32", SINT32, s32), N(3, "u32", UINT32, u32),
    N(4, "i64", INT64, i64), N(5, "s64", SINT64, s64), N(6, "u64", UINT64, u64),
    N(7, "f32", FIXED32, f32), N(8, "sf32", SFIXED32, sf32), N(9, "fl", FLOAT, fl),
    N(10, "f64", FIXED64, f64), N(11, "sf64", SFIXED64, sf64), N(12, "db", DOUBLE, db),
    N(13, "b", BOOL, b), N(14, "str", STRING, str), N(15, "by", BYTES, by),
    N(16, "en", ENUM, en),
    F(17, "ts", NONE, MESSAGE, 0, ts, &google__protobuf__timestamp__descriptor, 0),
    R(18, "ri32", INT32, ri32, NULL, PROTOBUF_C_FIELD_FLAG_PACKED),
    R(19, "rdb", DOUBLE, rdb, NULL, 0),
    R(20, "rstr", STRING, rstr, NULL, 0),
    R(21, "rts", MESSAGE, rts, &google__protobuf__timestamp__descriptor, 0),
    F(22, "oi32", OPTIONAL, INT32, offsetof(t_all, has_oi32), oi32, NULL, 0),
    R(23, "rs64", SINT64, rs64, NULL, 0),
    R(24, "rf32", FIXED32, rf32, NULL, 0),
};
static const unsigned t_all_by_name[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                           12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
static const ProtobufCIntRange t_all_ranges[] = {{1, 0}, {0, 24}};

static const ProtobufCMessageDescriptor t_all_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.All", "All", "TAll", "t", sizeof(t_all), 24,
    t_all_fields, t_all_by_name, 1, t_all_ranges, (ProtobufCMessageInit)t_all_init,
    NULL, NULL, NULL};

/* ---- a tiny writer of wire bytes -------------------------------------------------- */

typedef struct { uint8_t b[4096]; size_t n; } wbuf;

static void put_varint(wbuf *w, uint64_t v) {
    do {
        w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}
/* Set: tags of fields 1-15 written in two bytes (0x80 | tag, 0x00), which wire.c reads by
 * its general path instead of its one-byte-tag table. */
static bool overlong_tags;
static void put_tag(wbuf *w, unsigned id, unsigned wt) {
    if (overlong_tags && id < 16) {
        w->b[w->n++] = (uint8_t)(0x80 | id << 3 | wt);
        w->b[w->n++] = 0;
        return;
    }
    put_varint(w, (uint64_t)id << 3 | wt);
}
static void put_bytes(wbuf *w, unsigned id, const void *p, size_t n) {
    put_tag(w, id, 2);
    put_varint(w, n);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void put_fixed(wbuf *w, unsigned id, unsigned wt, uint64_t v) {
    put_tag(w, id, wt);
    memcpy(w->b + w->n, &v, wt == 1 ? 8 : 4);
    w->n += wt == 1 ? 8 : 4;
}
static uint64_t bits_of_double(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

/* Decodes buf with both; checks that both accept and agree. Returns ours, in a. */
static t_all *expect_same_in(const wbuf *w, record_alloc *a) {
    record_result res;
    ProtobufCMessage *theirs, *ours;
    record_result_init(&res);
    theirs = protobuf_c_message_unpack(&t_all_descriptor, NULL, w->n, w->b);
    ours = record_unpack(&t_all_descriptor, w->b, w->n, a, "t", &res);
    CHECKF(theirs != NULL, "protobuf-c refuses %zu bytes", w->n);
    CHECKF(ours != NULL, "record_unpack refuses: %s", res.error);
    if (theirs && ours) CHECK(pb_equal(&t_all_descriptor, theirs, ours));
    if (theirs) protobuf_c_message_free_unpacked(theirs, NULL);
    return (t_all *)ours;
}

static void expect_same(const wbuf *w) {
    record_alloc a;
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    expect_same_in(w, &a);
    record_alloc_release(&a);
}

/* Decodes buf with ours, expecting an error holding needle; returns protobuf-c's verdict. */
static bool expect_refused(const wbuf *w, const char *needle) {
    record_alloc a;
    record_result res;
    ProtobufCMessage *theirs;
    record_result_init(&res);
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    CHECK(record_unpack(&t_all_descriptor, w->b, w->n, &a, "t", &res) == NULL);
    CHECKF(strstr(res.error, needle) != NULL, "error \"%s\" lacks \"%s\"", res.error, needle);
    record_alloc_release(&a);
    theirs = protobuf_c_message_unpack(&t_all_descriptor, NULL, w->n, w->b);
    if (theirs) protobuf_c_message_free_unpacked(theirs, NULL);
    return theirs != NULL;
}

TEST(every_scalar_type_as_protobuf_c_reads_it) {
    wbuf w = {.n = 0};
    put_tag(&w, 1, 0); put_varint(&w, (uint64_t)-5);          /* int32 -5: 10 bytes */
    put_tag(&w, 2, 0); put_varint(&w, 9);                     /* sint32 -5 */
    put_tag(&w, 3, 0); put_varint(&w, 0x1ffffffffULL);        /* uint32: low 32 bits */
    put_tag(&w, 4, 0); put_varint(&w, (uint64_t)INT64_MIN);
    put_tag(&w, 5, 0); put_varint(&w, UINT64_MAX);            /* sint64 INT64_MIN */
    put_tag(&w, 6, 0); put_varint(&w, UINT64_MAX);
    put_fixed(&w, 7, 5, 0xdeadbeef); put_fixed(&w, 8, 5, 0xfffffffe);
    put_fixed(&w, 9, 5, 0x3fc00000);                          /* 1.5f */
    put_fixed(&w, 10, 1, 0x0123456789abcdefULL); put_fixed(&w, 11, 1, (uint64_t)-2);
    put_fixed(&w, 12, 1, bits_of_double(-2.25));
    put_tag(&w, 13, 0); put_varint(&w, 7);
    put_bytes(&w, 14, "caf\xc3\xa9", 5);
    put_bytes(&w, 15, "\x00\xff\x00", 3);
    put_tag(&w, 16, 0); put_varint(&w, 77);                   /* an enum value we do not know */
    put_tag(&w, 22, 0); put_varint(&w, 0);                    /* optional: present at 0 */
    record_alloc a;
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    t_all *m = expect_same_in(&w, &a);
    if (m) {
        CHECK_EQ_INT(m->i32, -5);
        CHECK_EQ_INT(m->s32, -5);
        CHECK_EQ_INT(m->u32, 0xffffffffu);
        CHECK(m->i64 == INT64_MIN && m->s64 == INT64_MIN && m->u64 == UINT64_MAX);
        CHECK(m->f32 == 0xdeadbeef && m->sf32 == -2 && m->fl == 1.5f);
        CHECK(m->f64 == 0x0123456789abcdefULL && m->sf64 == -2 && m->db == -2.25);
        CHECK(m->b == 1);
        CHECK_EQ_STR(m->str, "caf\xc3\xa9");
        CHECK(m->by.len == 3 && memcmp(m->by.data, "\x00\xff\x00", 3) == 0);
        CHECK_EQ_INT(m->en, 77);
        CHECK(m->has_oi32 == 1 && m->oi32 == 0);
    }
    record_alloc_release(&a);
}

/* The same fields read by the one-byte-tag table (fields 1-15) and by the general path (the
 * same tags in two bytes) give the same message, as protobuf-c reads both. */
#define LAST_STR "na\xc3\xafve, the last one"
static void put_fast_fields(wbuf *w) {
    put_tag(w, 1, 0); put_varint(w, (uint64_t)-7);
    put_tag(w, 3, 0); put_varint(w, 0x1fffffffeULL);
    put_tag(w, 4, 0); put_varint(w, (uint64_t)INT64_MIN);
    put_tag(w, 6, 0); put_varint(w, UINT64_MAX - 1);
    put_fixed(w, 10, 1, 0x0123456789abcdefULL); put_fixed(w, 11, 1, (uint64_t)-3);
    put_fixed(w, 12, 1, bits_of_double(0.1));
    put_bytes(w, 14, "first", 5);
    put_tag(w, 16, 0); put_varint(w, 3);
    put_bytes(w, 14, LAST_STR, sizeof LAST_STR - 1);
    put_tag(w, 1, 0); put_varint(w, 5);                 /* again: the last one wins */
}

TEST(one_byte_tags_and_their_overlong_forms_read_the_same) {
    wbuf fast = {.n = 0}, slow = {.n = 0};
    put_fast_fields(&fast);
    overlong_tags = true;
    put_fast_fields(&slow);
    overlong_tags = false;
    CHECK(slow.n > fast.n);
    record_alloc a, b;
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    record_alloc_init(&b, RECORD_ALLOC_BUDGET);
    t_all *x = expect_same_in(&fast, &a), *y = expect_same_in(&slow, &b);
    CHECK(x && y && pb_equal(&t_all_descriptor, &x->base, &y->base));
    if (x) {
        CHECK_EQ_INT(x->i32, 5);
        CHECK(x->u32 == 0xfffffffeu && x->i64 == INT64_MIN && x->u64 == UINT64_MAX - 1);
        CHECK(x->f64 == 0x0123456789abcdefULL && x->sf64 == -3 && x->db == 0.1);
        CHECK_EQ_STR(x->str, LAST_STR);
    }
    record_alloc_release(&a);
    record_alloc_release(&b);
}

TEST(absent_fields_keep_their_defaults) {
    wbuf w = {.n = 0};
    expect_same(&w);
    put_tag(&w, 99, 0); put_varint(&w, 1);           /* unknown fields of every wire type */
    put_fixed(&w, 98, 1, 1); put_fixed(&w, 97, 5, 1); put_bytes(&w, 96, "x", 1);
    expect_same(&w);
}

TEST(repeated_fields_packed_and_not_interleaved_and_growing) {
    wbuf w = {.n = 0};
    uint8_t packed[64];
    size_t np = 0;
    for (int i = 0; i < 9; i++) packed[np++] = (uint8_t)i;
    put_bytes(&w, 18, packed, np);                    /* 9 packed int32 */
    put_tag(&w, 18, 0); put_varint(&w, 300);          /* one more, not packed */
    put_fixed(&w, 19, 1, bits_of_double(NAN));
    put_bytes(&w, 14, "between", 7);
    for (int i = 0; i < 17; i++) put_bytes(&w, 20, "s", 1);   /* grows 4 -> 8 -> 16 -> 32 */
    put_fixed(&w, 19, 1, bits_of_double(1e300));
    put_tag(&w, 23, 0); put_varint(&w, 3);            /* sint64 -2 */
    uint8_t f32s[8] = {1, 0, 0, 0, 2, 0, 0, 0};
    put_bytes(&w, 24, f32s, 8);                       /* packed fixed32 */
    for (int i = 0; i < 5; i++) {                     /* repeated messages, one empty */
        uint8_t ts[4] = {0x08, (uint8_t)i, 0x10, 1};
        put_bytes(&w, 21, ts, i == 2 ? 0 : 4);
    }
    record_alloc a;
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    t_all *m = expect_same_in(&w, &a);
    if (m) {
        CHECK_EQ_INT(m->n_ri32, 10);
        CHECK_EQ_INT(m->ri32[8], 8);
        CHECK_EQ_INT(m->ri32[9], 300);
        CHECK_EQ_INT(m->n_rstr, 17);
        CHECK_EQ_INT(m->n_rdb, 2);
        CHECK(isnan(m->rdb[0]) && m->rdb[1] == 1e300);
        CHECK(m->n_rs64 == 1 && m->rs64[0] == -2);
        CHECK(m->n_rf32 == 2 && m->rf32[1] == 2);
        CHECK_EQ_INT(m->n_rts, 5);
        CHECK(m->rts[2]->seconds == 0 && m->rts[4]->seconds == 4 && m->rts[4]->nanos == 1);
    }
    record_alloc_release(&a);
}

TEST(a_string_is_what_the_wire_says_and_the_last_one_wins) {
    wbuf w = {.n = 0};
    put_bytes(&w, 14, "first", 5);
    put_bytes(&w, 14, "", 0);
    put_bytes(&w, 14, "last", 4);
    expect_same(&w);
}

TEST(bad_strings_are_refused_naming_the_field_where_protobuf_c_cuts_them) {
    wbuf w = {.n = 0};
    uint8_t ts[2] = {0x08, 0x01};
    put_bytes(&w, 21, ts, 2);
    put_bytes(&w, 20, "ok", 2);
    put_bytes(&w, 20, "a\0b", 3);
    CHECK(expect_refused(&w, "t field rstr holds U+0000"));
    w.n = 0;
    put_bytes(&w, 14, "\xc0\xaf", 2);                 /* an overlong '/' */
    CHECK(expect_refused(&w, "t field str is not valid UTF-8"));
    /* a bad string then a truncation: the value does not decode, which says more */
    put_tag(&w, 14, 2); put_varint(&w, 9);
    CHECK(!expect_refused(&w, "does not decode: a length-delimited field runs past the end"));
}

/* Strings are copied and checked a word at a time, their last bytes too when the value goes
 * on past them (the bytes after them read but masked out): every length up to 19, a NUL, a
 * byte past 0x7F (alone: invalid; as é: valid) and 0x7F at every position, the string last
 * in the value (no word may be read past it) and followed by another field. */
TEST(strings_of_every_length_are_checked_at_every_byte) {
    static const char after[] = "\x01\xff\0\x80 bytes after";
    for (size_t n = 1; n <= 19; n++) {
        for (size_t at = 0; at < n; at++) {
            for (int kind = 0; kind < 4; kind++) {   /* NUL, a lone 0x80, 0x7F, é */
                char str[24];
                memset(str, 'a' + (int)(n % 26), n);
                if (kind == 3 && at + 1 == n) continue;
                if (kind == 3) memcpy(str + at, "\xc3\xa9", 2);
                else str[at] = kind == 0 ? '\0' : kind == 1 ? '\x80' : '\x7f';
                for (int last = 0; last < 2; last++) {
                    wbuf w = {.n = 0};
                    put_bytes(&w, 14, str, n);
                    if (!last) put_bytes(&w, 15, after, sizeof after - 1);
                    if (kind >= 2) {
                        expect_same(&w);
                        continue;
                    }
                    CHECKF(expect_refused(&w, kind == 0 ? "t field str holds U+0000"
                                                        : "t field str is not valid UTF-8"),
                           "n %zu at %zu kind %d last %d", n, at, kind, last);
                }
            }
        }
    }
}

TEST(errors_protobuf_c_also_refuses) {
    static const struct { uint8_t b[12]; size_t n; const char *why; } cases[] = {
        {{0x08}, 1, "a varint is cut short"},
        {{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 12,
         "a varint is cut short or longer than 10 bytes"},
        {{0x88, 0x80, 0x80, 0x80, 0x80, 0x01}, 6, "a tag is cut short or longer than 5 bytes"},
        {{0x00}, 1, "a tag has field number 0"},
        {{0x72}, 1, "a length prefix is cut short"},                    /* str */
        {{0x72, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 7, "a length prefix is cut short or longer"},
        {{0x72, 0xff, 0xff, 0xff, 0xff, 0x0f}, 6, "runs past the end"},
        {{0x3d, 1, 2, 3}, 4, "a fixed-size field is cut short"},
        {{0x0a, 0x00}, 2, "another wire type"},       /* int32 as bytes */
        {{0x71, 0, 0, 0, 0, 0, 0, 0, 0}, 9, "another wire type"},   /* string as fixed64 */
        {{0x9b, 0x06}, 2, "groups are not supported"},     /* a group of field 99, unknown */
        {{0x8b, 0x01}, 2, "another wire type"},            /* a group for ts */
        {{0x9a, 0x01, 0x03, 0, 0, 0}, 6, "not a multiple"},  /* packed double of 3 bytes */
        {{0x92, 0x01, 0x01, 0x80}, 4, "a varint is cut short"},  /* packed int32, cut */
        {{0x8a, 0x01, 0x02, 0x08, 0x80}, 5, "a varint is cut short"},   /* inside ts */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wbuf w = {.n = cases[i].n};
        memcpy(w.b, cases[i].b, cases[i].n);
        CHECKF(!expect_refused(&w, cases[i].why), "case %zu: protobuf-c accepts it", i);
    }
}

TEST(field_number_0_is_refused_in_every_encoding) {
    wbuf w = {.n = 0};
    w.b[w.n++] = 0x80;   /* tag 0 in two bytes: protobuf-c takes it for an unknown field */
    w.b[w.n++] = 0x00;
    w.b[w.n++] = 0x01;
    CHECK(expect_refused(&w, "a tag has field number 0 (byte 0)"));
}

TEST(a_repeated_singular_message_is_merged_as_the_specification_says) {
    wbuf w = {.n = 0};
    uint8_t first[4] = {0x08, 0x05, 0x10, 0x07}, second[2] = {0x10, 0x09};
    record_alloc a;
    record_result res;
    put_bytes(&w, 17, first, 4);                      /* ts {seconds 5, nanos 7} */
    put_bytes(&w, 17, second, 2);                     /* ts {nanos 9} */
    CHECK(pb_has_repeated_submessage(&t_all_descriptor, w.b, w.n, 0));
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    t_all *m = record_unpack(&t_all_descriptor, w.b, w.n, &a, "t", &res);
    CHECK(m && m->ts && m->ts->seconds == 5 && m->ts->nanos == 9);
    record_alloc_release(&a);
    /* protobuf-c's merge gives seconds 0 (the second occurrence's default) */
    ProtobufCMessage *theirs = protobuf_c_message_unpack(&t_all_descriptor, NULL, w.n, w.b);
    CHECK(theirs && ((t_all *)theirs)->ts->seconds == 0 && ((t_all *)theirs)->ts->nanos == 9);
    if (theirs) protobuf_c_message_free_unpacked(theirs, NULL);
    w.n = 0;
    put_bytes(&w, 21, first, 4);                      /* repeated: two elements, no merge */
    put_bytes(&w, 21, first, 4);
    CHECK(!pb_has_repeated_submessage(&t_all_descriptor, w.b, w.n, 0));
    expect_same(&w);
}

TEST(the_arena_budget_is_kept) {
    wbuf w = {.n = 0};
    record_alloc a;
    record_result res;
    for (int i = 0; i < 1000; i++) put_bytes(&w, 21, "", 0);   /* 3 000 bytes, 1 000 messages */
    record_result_init(&res);
    record_alloc_init(&a, 16384);
    CHECK(record_unpack(&t_all_descriptor, w.b, w.n, &a, "t", &res) == NULL);
    CHECK_EQ_STR(res.error, "invalid protobuf: t needs more memory than allowed to decode");
    record_alloc_release(&a);
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    CHECK(record_unpack(&t_all_descriptor, w.b, w.n, &a, "t", &res) != NULL);
    record_alloc_release(&a);
}

TEST(factoid_oneof_member_again_replaces_the_previous_one) {
    /* Factoid: shop_order {order_id "A", items [{fido "F"}]}, play_activity {}, then
     * shop_order {order_id "B"}: the last member wins whole, as in protobuf-c. */
    wbuf w = {.n = 0}, so1 = {.n = 0}, item = {.n = 0}, so2 = {.n = 0};
    put_bytes(&item, 2, "F", 1);
    put_bytes(&so1, 1, "A", 1);
    put_bytes(&so1, 6, item.b, item.n);
    put_bytes(&so2, 1, "B", 1);
    put_bytes(&w, 10, so1.b, so1.n);
    put_bytes(&w, 11, "", 0);
    put_bytes(&w, 10, so2.b, so2.n);
    CHECK(!pb_has_repeated_submessage(&factoids__v1__factoid__descriptor, w.b, w.n, 0));
    record_alloc a;
    record_result res;
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    Factoids__V1__Factoid *m =
        record_unpack(&factoids__v1__factoid__descriptor, w.b, w.n, &a, "factoid", &res);
    ProtobufCMessage *theirs =
        protobuf_c_message_unpack(&factoids__v1__factoid__descriptor, NULL, w.n, w.b);
    CHECK(m && m->payload_case == FACTOIDS__V1__FACTOID__PAYLOAD_SHOP_ORDER);
    CHECK(m && m->shop_order && strcmp(m->shop_order->order_id, "B") == 0 &&
          m->shop_order->n_items == 0);
    CHECK(theirs && m && pb_equal(&factoids__v1__factoid__descriptor, theirs, &m->base));
    if (theirs) protobuf_c_message_free_unpacked(theirs, NULL);
    record_alloc_release(&a);
}


