/* bolt_packstream_test.c: PackStream encoder and decoder against the byte examples of
 * docs/bolt.md (§4, §5), decoder rejections, and round trips. No server needed. */
#define TEST_MAIN
#include "test.h"

#include <math.h>

#include "bolt/bolt.h"
#include "bolt/bolt_internal.h"

/* "C9 00 80" -> bytes; returns the count. */
static size_t unhex(const char *hex, uint8_t *out) {
    size_t n = 0;
    unsigned b;
    int used;
    while (sscanf(hex, " %2x%n", &b, &used) == 1) {
        out[n++] = (uint8_t)b;
        hex += used;
    }
    return n;
}

#define CHECK_ENC(enc, hex)                                                        \
    do {                                                                           \
        uint8_t exp_[4096];                                                        \
        size_t n_ = unhex((hex), exp_);                                            \
        CHECK_EQ_INT(bolt_enc_error(enc), BOLT_OK);                                \
        CHECK_EQ_INT(bolt_enc_size(enc), n_);                                      \
        CHECK_EQ_MEM(bolt_enc_data(enc), exp_, n_);                                \
    } while (0)

static void check_int(int64_t i, const char *hex) {
    bolt_enc *e = bolt_enc_new();
    bolt_enc_int(e, i);
    CHECK_ENC(e, hex);
    bolt_value *v = NULL;
    size_t used = 0;
    CHECK_EQ_INT(bolt_unpack(bolt_enc_data(e), bolt_enc_size(e), &v, &used, NULL), BOLT_OK);
    CHECK_EQ_INT(used, bolt_enc_size(e));
    CHECK_EQ_INT(bolt_value_type(v), BOLT_INT);
    CHECK_EQ_INT(bolt_value_int(v), i);
    bolt_value_free(v);
    bolt_enc_free(e);
}

TEST(int_widths) {
    check_int(0, "00");
    check_int(1, "01");
    check_int(-1, "FF");
    check_int(-16, "F0");
    check_int(-17, "C8 EF");
    check_int(127, "7F");
    check_int(128, "C9 00 80");
    check_int(-128, "C8 80");
    check_int(-129, "C9 FF 7F");
    check_int(32767, "C9 7F FF");
    check_int(-32768, "C9 80 00");
    check_int(-32769, "CA FF FF 7F FF");
    check_int(32768, "CA 00 00 80 00");
    check_int(2147483647, "CA 7F FF FF FF");
    check_int(-2147483648LL, "CA 80 00 00 00");
    check_int(2147483648LL, "CB 00 00 00 00 80 00 00 00");
    check_int(-2147483649LL, "CB FF FF FF FF 7F FF FF FF");
    check_int(INT64_MAX, "CB 7F FF FF FF FF FF FF FF");
    check_int(INT64_MIN, "CB 80 00 00 00 00 00 00 00");
}

TEST(decoder_accepts_wide_ints) {
    uint8_t b[16];
    bolt_value *v;
    size_t n = unhex("CB 00 00 00 00 00 00 00 01", b);
    CHECK_EQ_INT(bolt_unpack(b, n, &v, NULL, NULL), BOLT_OK);
    CHECK_EQ_INT(bolt_value_int(v), 1);
    bolt_value_free(v);
    n = unhex("C9 FF FF", b);
    CHECK_EQ_INT(bolt_unpack(b, n, &v, NULL, NULL), BOLT_OK);
    CHECK_EQ_INT(bolt_value_int(v), -1);
    bolt_value_free(v);
}

TEST(scalars) {
    bolt_enc *e = bolt_enc_new();
    bolt_enc_float(e, 1.23);
    CHECK_ENC(e, "C1 3F F3 AE 14 7A E1 47 AE");
    bolt_enc_reset(e);
    bolt_enc_null(e);
    bolt_enc_bool(e, 1);
    bolt_enc_bool(e, 0);
    CHECK_ENC(e, "C0 C3 C2");
    bolt_enc_reset(e);
    bolt_enc_string(e, "");
    bolt_enc_string(e, "A");
    CHECK_ENC(e, "80 81 41");
    bolt_enc_reset(e);                  /* the tiny-string fast path ends at 15 bytes */
    bolt_enc_string(e, "ABCDEFGHIJKLMNO");
    bolt_enc_string_n(e, "ABCDEFGHIJKLMNOP", 16);
    bolt_enc_string(e, NULL);
    CHECK_ENC(e, "8F 41 42 43 44 45 46 47 48 49 4A 4B 4C 4D 4E 4F "
                 "D0 10 41 42 43 44 45 46 47 48 49 4A 4B 4C 4D 4E 4F 50 C0");
    {   /* the u8-size fast path ends at 255 bytes; 256 takes a u16 size */
        char big[256];
        memset(big, 'x', sizeof big);
        for (size_t n = 254; n <= 256; n++) {
            bolt_enc_reset(e);
            bolt_enc_string_n(e, big, n);
            const uint8_t *d = bolt_enc_data(e);
            size_t head = n <= 0xFF ? 2 : 3;
            CHECK_EQ_INT(bolt_enc_size(e), n + head);
            CHECK_EQ_INT(d[0], n <= 0xFF ? 0xD0 : 0xD1);
            CHECK_EQ_INT(n <= 0xFF ? d[1] : (size_t)d[1] << 8 | d[2], n);
            CHECK(memcmp(d + head, big, n) == 0);
        }
    }
    bolt_enc_reset(e);
    bolt_enc_bytes(e, "\1\2\3", 3);
    bolt_enc_bytes(e, "", 0);
    CHECK_ENC(e, "CC 03 01 02 03 CC 00");
    bolt_enc_free(e);
}

TEST(float_specials_round_trip) {
    double vals[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e308, 5e-324};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        bolt_value *a = bolt_float(vals[i]), *b = NULL;
        bolt_enc *e = bolt_enc_new();
        bolt_enc_value(e, a);
        CHECK_EQ_INT(bolt_unpack(bolt_enc_data(e), bolt_enc_size(e), &b, NULL, NULL), BOLT_OK);
        CHECK(bolt_value_equal(a, b));
        bolt_value_free(a);
        bolt_value_free(b);
        bolt_enc_free(e);
    }
}

TEST(strings_lists_maps) {
    bolt_enc *e = bolt_enc_new();
    bolt_value *l = bolt_list();
    for (int i = 1; i <= 3; i++) bolt_list_append(l, bolt_int(i));
    bolt_enc_value(e, l);
    CHECK_ENC(e, "93 01 02 03");
    bolt_value_free(l);

    bolt_enc_reset(e);
    bolt_value *m = bolt_map();
    CHECK_EQ_INT(bolt_map_set(m, "one", bolt_string("eins")), BOLT_OK);
    bolt_enc_value(e, m);
    CHECK_ENC(e, "A1 83 6F 6E 65 84 65 69 6E 73");
    bolt_value_free(m);

    bolt_enc_reset(e);
    bolt_enc_string(e, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    CHECK_ENC(e, "D0 1A 41 42 43 44 45 46 47 48 49 4A 4B 4C 4D 4E 4F 50 51 52 53 54 55 56 57 "
                 "58 59 5A");

    bolt_enc_reset(e);
    bolt_enc_list_begin(e, 40);
    for (int i = 1; i <= 40; i++) bolt_enc_int(e, i);
    CHECK_EQ_INT(bolt_enc_size(e), 42);
    CHECK_EQ_MEM(bolt_enc_data(e), "\xD4\x28\x01", 3);

    /* Header widths at the boundaries. */
    bolt_enc_reset(e);
    bolt_enc_list_begin(e, 15);
    bolt_enc_list_begin(e, 16);
    bolt_enc_list_begin(e, 255);
    bolt_enc_list_begin(e, 256);
    bolt_enc_list_begin(e, 65535);
    bolt_enc_list_begin(e, 65536);
    CHECK_ENC(e, "9F D4 10 D4 FF D5 01 00 D5 FF FF D6 00 01 00 00");
    bolt_enc_reset(e);
    bolt_enc_map_begin(e, 15);
    bolt_enc_map_begin(e, 16);
    bolt_enc_map_begin(e, 256);
    bolt_enc_map_begin(e, 65536);
    CHECK_ENC(e, "AF D8 10 D9 01 00 DA 00 01 00 00");
    bolt_enc_free(e);
}

/* Every string length across the tiny, u8 and u16 headers: marker, size, then exactly the
 * bytes (the encoder copies short strings by fixed-size moves). */
TEST(strings_of_every_length) {
    char s[301];
    for (size_t i = 0; i < sizeof s; i++) s[i] = (char)('a' + i % 26);
    bolt_enc *e = bolt_enc_new();
    for (size_t n = 0; n <= 300; n++) {
        bolt_enc_reset(e);
        CHECK_EQ_INT(bolt_enc_string_n(e, s, n), BOLT_OK);
        size_t head = n < 16 ? 1 : n <= 255 ? 2 : 3;
        const uint8_t *d = (const uint8_t *)bolt_enc_data(e);
        CHECKF(bolt_enc_size(e) == head + n, "length %zu", n);
        if (n < 16) CHECK(d[0] == (0x80 | n));
        else if (n <= 255) CHECK(d[0] == 0xD0 && d[1] == n);
        else CHECK(d[0] == 0xD1 && d[1] == (n >> 8) && d[2] == (n & 0xFF));
        CHECKF(memcmp(d + head, s, n) == 0, "length %zu", n);
    }
    bolt_enc_free(e);
}

TEST(message_bytes_from_docs_bolt_md) {
    bolt_enc *e = bolt_enc_new();
    /* RUN "RETURN $x AS x" {"x":1} {} */
    bolt_enc_struct_begin(e, 0x10, 3);
    bolt_enc_string(e, "RETURN $x AS x");
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "x");
    bolt_enc_int(e, 1);
    bolt_enc_map_begin(e, 0);
    CHECK_ENC(e, "B3 10 8E 52 45 54 55 52 4E 20 24 78 20 41 53 20 78 A1 81 78 01 A0");
    /* PULL {"n":1000,"qid":-1} */
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, 0x3F, 1);
    bolt_enc_map_begin(e, 2);
    bolt_enc_string(e, "n");
    bolt_enc_int(e, 1000);
    bolt_enc_string(e, "qid");
    bolt_enc_int(e, -1);
    CHECK_ENC(e, "B1 3F A2 81 6E C9 03 E8 83 71 69 64 FF");
    /* LOGON basic */
    bolt_enc_reset(e);
    bolt_value *auth = bolt_map();
    bolt_map_set(auth, "scheme", bolt_string("basic"));
    bolt_map_set(auth, "principal", bolt_string("neo4j"));
    bolt_map_set(auth, "credentials", bolt_string("password"));
    bolt_enc_struct_begin(e, 0x6A, 1);
    bolt_enc_value(e, auth);
    bolt_value_free(auth);
    CHECK_ENC(e, "B1 6A A3 86 73 63 68 65 6D 65 85 62 61 73 69 63 89 70 72 69 6E 63 69 70 61 6C "
                 "85 6E 65 6F 34 6A 8B 63 72 65 64 65 6E 74 69 61 6C 73 88 70 61 73 73 77 6F 72 "
                 "64");
    /* HELLO {"user_agent":"cbolt/0.1","bolt_agent":{"product":"cbolt/0.1"}} */
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, 0x01, 1);
    bolt_enc_map_begin(e, 2);
    bolt_enc_string(e, "user_agent");
    bolt_enc_string(e, "cbolt/0.1");
    bolt_enc_string(e, "bolt_agent");
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "product");
    bolt_enc_string(e, "cbolt/0.1");
    CHECK_ENC(e, "B1 01 A2 8A 75 73 65 72 5F 61 67 65 6E 74 89 63 62 6F 6C 74 2F 30 2E 31 8A 62 "
                 "6F 6C 74 5F 61 67 65 6E 74 A1 87 70 72 6F 64 75 63 74 89 63 62 6F 6C 74 2F 30 "
                 "2E 31");
    bolt_enc_free(e);
}

TEST(decode_server_success) {
    uint8_t b[64];
    size_t n = unhex("B1 70 A2 86 66 69 65 6C 64 73 91 81 78 87 74 5F 66 69 72 73 74 00", b);
    bolt_value *v;
    size_t used;
    CHECK_EQ_INT(bolt_unpack(b, n, &v, &used, NULL), BOLT_OK);
    CHECK_EQ_INT(used, n);
    CHECK_EQ_INT(bolt_struct_tag(v), 0x70);
    const bolt_value *meta = bolt_struct_field(v, 0);
    CHECK_EQ_STR(bolt_value_string(bolt_list_get(bolt_map_get(meta, "fields"), 0), NULL), "x");
    CHECK_EQ_INT(bolt_value_int(bolt_map_get(meta, "t_first")), 0);
    bolt_value_free(v);
}

static int decode_hex(const char *hex) {
    uint8_t b[256];
    size_t n = unhex(hex, b);
    bolt_value *v = (bolt_value *)1;
    bolt_error err;
    int rc = bolt_unpack(b, n, &v, NULL, &err);
    if (rc == BOLT_OK) bolt_value_free(v);
    else if (v != NULL) return -1;   /* must not hand out a partial value */
    return rc;
}

TEST(decoder_rejects) {
    const char *reserved[] = {"C4", "C5", "C6", "C7", "CF", "D3", "D7", "DB", "DC", "DF", "E0",
                              "E5", "EF"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        CHECKF(decode_hex(reserved[i]) == BOLT_EPROTO, "marker %s", reserved[i]);
    CHECK_EQ_INT(decode_hex(""), BOLT_EPROTO);
    CHECK_EQ_INT(decode_hex("C9 01"), BOLT_EPROTO);               /* truncated int */
    CHECK_EQ_INT(decode_hex("C1 00 00 00"), BOLT_EPROTO);         /* truncated float */
    CHECK_EQ_INT(decode_hex("83 41 42"), BOLT_EPROTO);            /* short string */
    CHECK_EQ_INT(decode_hex("D2 FF FF FF FF 41"), BOLT_EPROTO);   /* 4 GiB claimed */
    CHECK_EQ_INT(decode_hex("D6 7F FF FF FF 01"), BOLT_EPROTO);   /* 2^31 items claimed */
    CHECK_EQ_INT(decode_hex("DA 00 01 00 00 81 41 01"), BOLT_EPROTO);
    CHECK_EQ_INT(decode_hex("CE 80 00 00 00"), BOLT_EPROTO);      /* bytes over 2^31-1 */
    CHECK_EQ_INT(decode_hex("CD 00"), BOLT_EPROTO);               /* truncated length */
    CHECK_EQ_INT(decode_hex("A1 01 02"), BOLT_EPROTO);            /* non-string key */
    CHECK_EQ_INT(decode_hex("B1 80 01"), BOLT_EPROTO);            /* tag > 127 */
    CHECK_EQ_INT(decode_hex("B1"), BOLT_EPROTO);                  /* missing tag */
    CHECK_EQ_INT(decode_hex("92 01"), BOLT_EPROTO);               /* missing item */
    CHECK_EQ_INT(decode_hex("82 C3 28"), BOLT_EPROTO);            /* invalid UTF-8 */
    CHECK_EQ_INT(decode_hex("83 ED A0 80"), BOLT_EPROTO);         /* surrogate */
    CHECK_EQ_INT(decode_hex("82 C0 80"), BOLT_EPROTO);            /* overlong */
    CHECK_EQ_INT(decode_hex("83 E2 82 AC"), BOLT_OK);             /* euro sign */
}

TEST(decoder_depth_cap) {
    uint8_t b[200];
    memset(b, 0x91, sizeof b);
    b[BOLT_MAX_DEPTH - 1] = 0x01;   /* 63 nested lists around an int: depth 62, fine */
    bolt_value *v;
    CHECK_EQ_INT(bolt_unpack(b, BOLT_MAX_DEPTH, &v, NULL, NULL), BOLT_OK);
    bolt_value_free(v);
    memset(b, 0x91, sizeof b);
    b[150] = 0x01;
    bolt_error err;
    CHECK_EQ_INT(bolt_unpack(b, 151, &v, NULL, &err), BOLT_EPROTO);
    CHECK(strstr(err.message, "nesting") != NULL);
    CHECK(v == NULL);
}

TEST(duplicate_keys_last_wins) {
    uint8_t b[32];
    size_t n = unhex("A2 81 61 01 81 61 02", b);
    bolt_value *v;
    CHECK_EQ_INT(bolt_unpack(b, n, &v, NULL, NULL), BOLT_OK);
    CHECK_EQ_INT(bolt_value_int(bolt_map_get(v, "a")), 2);
    bolt_value_free(v);
    bolt_value *m = bolt_map();
    bolt_map_set(m, "a", bolt_int(1));
    bolt_map_set(m, "a", bolt_int(2));
    CHECK_EQ_INT(bolt_value_size(m), 1);
    bolt_value_free(m);
}

static bolt_value *sample_tree(void) {
    bolt_value *m = bolt_map();
    bolt_map_set(m, "null", bolt_null());
    bolt_map_set(m, "t", bolt_bool(1));
    bolt_map_set(m, "i", bolt_int(-1234567890123LL));
    bolt_map_set(m, "f", bolt_float(-0.5));
    bolt_map_set(m, "s", bolt_string("h\xC3\xA9llo \xF0\x9F\x98\x80"));
    bolt_map_set(m, "nul", bolt_string_n("a\0b", 3));
    bolt_map_set(m, "b", bolt_bytes("\0\xFF", 2));
    bolt_value *l = bolt_list();
    bolt_list_append(l, bolt_list());
    bolt_list_append(l, bolt_map());
    bolt_list_append(l, bolt_date_new(19000));
    bolt_list_append(l, bolt_point3d_new(9157, 1, 2, 3));
    bolt_list_append(l, bolt_datetime_zone_new(1700000000, 5, "Europe/Berlin"));
    bolt_map_set(m, "l", l);
    return m;
}

TEST(tree_round_trip_and_copy) {
    bolt_value *m = sample_tree(), *back = NULL;
    bolt_enc *e = bolt_enc_new();
    CHECK_EQ_INT(bolt_enc_value(e, m), BOLT_OK);
    CHECK_EQ_INT(bolt_unpack(bolt_enc_data(e), bolt_enc_size(e), &back, NULL, NULL), BOLT_OK);
    CHECK(bolt_value_equal(m, back));
    bolt_value *c = bolt_value_copy(m);
    CHECK(bolt_value_equal(c, back));
    size_t len;
    CHECK_EQ_INT(bolt_value_string(bolt_map_get(back, "nul"), &len)[2], 'b');
    CHECK_EQ_INT(len, 3);
    char buf[512];
    bolt_value_format(back, buf, sizeof buf);
    CHECK(strstr(buf, "Europe/Berlin") != NULL);
    bolt_value_free(c);
    bolt_value_free(m);
    bolt_value_free(back);
    bolt_enc_free(e);
}

TEST(big_string_and_open_list) {
    size_t n = 70000;
    char *s = malloc(n);
    memset(s, 'x', n);
    bolt_enc *e = bolt_enc_new();
    size_t mark = bolt_enc_list_start(e);
    bolt_enc_string_n(e, s, n);
    for (int i = 0; i < 1000; i++) {
        bolt_enc_map_begin(e, 1);
        bolt_enc_string(e, "id");
        bolt_enc_int(e, i);
    }
    CHECK_EQ_INT(bolt_enc_finish(e, mark, 1001), BOLT_OK);
    CHECK_EQ_MEM(bolt_enc_data(e), "\xD6\x00\x00\x03\xE9\xD2\x00\x01\x11\x70", 10);
    bolt_value *v;
    CHECK_EQ_INT(bolt_unpack(bolt_enc_data(e), bolt_enc_size(e), &v, NULL, NULL), BOLT_OK);
    CHECK_EQ_INT(bolt_value_size(v), 1001);
    CHECK_EQ_INT(bolt_value_size(bolt_list_get(v, 0)), n);
    CHECK_EQ_INT(bolt_value_int(bolt_map_get(bolt_list_get(v, 1000), "id")), 999);
    bolt_value_free(v);
    bolt_enc_free(e);
    free(s);
}

TEST(typed_views) {
    /* Node(1, ["A"], {k: 2}, "4:x:1") */
    bolt_value *n = bolt_struct(BOLT_TAG_NODE);
    bolt_value *labels = bolt_list();
    bolt_list_append(labels, bolt_string("A"));
    bolt_value *props = bolt_map();
    bolt_map_set(props, "k", bolt_int(2));
    bolt_struct_append(n, bolt_int(1));
    bolt_struct_append(n, labels);
    bolt_struct_append(n, props);
    bolt_struct_append(n, bolt_string("4:x:1"));
    bolt_node node;
    CHECK_EQ_INT(bolt_value_as_node(n, &node), BOLT_OK);
    CHECK_EQ_INT(node.id, 1);
    CHECK_EQ_STR(node.element_id, "4:x:1");
    CHECK_EQ_INT(bolt_value_int(bolt_map_get(node.properties, "k")), 2);
    bolt_relationship rel;
    CHECK_EQ_INT(bolt_value_as_relationship(n, &rel), BOLT_ETYPE);
    bolt_value_free(n);

    bolt_value *d = bolt_struct(BOLT_TAG_LEGACY_DATETIME);
    bolt_struct_append(d, bolt_int(3600 + 100));
    bolt_struct_append(d, bolt_int(7));
    bolt_struct_append(d, bolt_int(3600));
    bolt_temporal t;
    CHECK_EQ_INT(bolt_value_as_temporal(d, &t), BOLT_OK);
    CHECK_EQ_INT(t.seconds, 100);
    CHECK_EQ_INT(t.tz_offset_seconds, 3600);
    bolt_value_free(d);

    bolt_value *p = bolt_point2d_new(4326, 1.5, -2.5);
    bolt_point pt;
    CHECK_EQ_INT(bolt_value_as_point(p, &pt), BOLT_OK);
    CHECK_EQ_INT(pt.dims, 2);
    CHECK(pt.x == 1.5 && pt.y == -2.5);
    bolt_value_free(p);

    bolt_value *du = bolt_duration_new(1, 2, 3, 4);
    bolt_duration dd;
    CHECK_EQ_INT(bolt_value_as_duration(du, &dd), BOLT_OK);
    CHECK_EQ_INT(dd.nanoseconds, 4);
    bolt_value_free(du);
}

TEST(builders_take_ownership_on_error) {
    bolt_value *i = bolt_int(1);
    CHECK_EQ_INT(bolt_list_append(i, bolt_string("x")), BOLT_EINVAL);   /* freed, no leak */
    CHECK_EQ_INT(bolt_map_set(i, "k", bolt_int(2)), BOLT_EINVAL);
    CHECK_EQ_INT(bolt_list_append(i, NULL), BOLT_ENOMEM);
    bolt_value_free(i);
    bolt_value *st = bolt_struct(1);
    for (int k = 0; k < 15; k++) CHECK_EQ_INT(bolt_struct_append(st, bolt_int(k)), BOLT_OK);
    CHECK_EQ_INT(bolt_struct_append(st, bolt_int(16)), BOLT_EINVAL);
    bolt_value_free(st);
    CHECK(bolt_struct(128) == NULL);
}

/* The encoder's tracker vouches only for exactly one complete value written by the typed
 * writers; whatever it vouches for, the walk accepts too. */
TEST(encoder_tracks_completeness) {
    bolt_enc *e = bolt_enc_new();
    CHECK(!bolt_enc_complete(e));                               /* nothing yet */
    bolt_enc_map_begin(e, 2);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, 2);
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "k");
    bolt_enc_int(e, 1);
    bolt_enc_map_begin(e, 0);
    CHECK(!bolt_enc_complete(e));                               /* "rows" done, one key owed */
    bolt_enc_string(e, "tag");
    CHECK(!bolt_enc_complete(e));
    bolt_enc_struct_begin(e, 0x58, 3);
    bolt_enc_int(e, 7);
    bolt_enc_float(e, 1.5);
    bolt_enc_list_begin(e, 0);
    CHECK(bolt_enc_complete(e));
    CHECK_EQ_INT(bolt_check_value(bolt_enc_data(e), bolt_enc_size(e), NULL), BOLT_OK);
    bolt_enc_null(e);                                           /* a second value at the top */
    CHECK(!bolt_enc_complete(e));

    bolt_enc_reset(e);                                          /* miscounted: 2 pairs, 1 given */
    bolt_enc_map_begin(e, 2);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, 0);
    CHECK(!bolt_enc_complete(e));
    bolt_enc_reset(e);
    bolt_enc_bool(e, 1);
    CHECK(bolt_enc_complete(e));                                /* reset forgets the last one */

    bolt_enc_reset(e);                                          /* raw bytes: not vouched for */
    bolt_enc_raw(e, "\x01", 1);
    CHECK(!bolt_enc_complete(e));
    bolt_enc_reset(e);                                          /* count written later: neither */
    size_t mark = bolt_enc_list_start(e);
    bolt_enc_int(e, 1);
    bolt_enc_finish(e, mark, 1);
    CHECK(!bolt_enc_complete(e));
    CHECK_EQ_INT(bolt_check_value(bolt_enc_data(e), bolt_enc_size(e), NULL), BOLT_OK);

    for (int k = BOLT_MAX_DEPTH - 1; k <= BOLT_MAX_DEPTH + 1; k++) {   /* deep nesting */
        bolt_enc_reset(e);
        for (int i = 0; i < k; i++) bolt_enc_list_begin(e, 1);
        bolt_enc_int(e, 1);
        int walk = bolt_check_value(bolt_enc_data(e), bolt_enc_size(e), NULL);
        CHECK_EQ_INT(bolt_enc_complete(e), k <= BOLT_MAX_DEPTH);
        CHECK_EQ_INT(walk, k <= BOLT_MAX_DEPTH ? BOLT_OK : BOLT_EPROTO);
    }

    bolt_value *v = bolt_map();                                 /* bolt_enc_value is tracked */
    bolt_value *l = bolt_list();
    bolt_list_append(l, bolt_string("a"));
    bolt_list_append(l, bolt_point2d_new(7203, 1.0, 2.0));
    bolt_map_set(v, "l", l);
    bolt_map_set(v, "n", bolt_null());
    bolt_enc_reset(e);
    bolt_enc_value(e, v);
    CHECK(bolt_enc_complete(e));
    bolt_value_free(v);
    bolt_enc_free(e);
}

TEST(check_value_and_sticky_errors) {
    uint8_t b[64];
    size_t n = unhex("A2 81 61 93 01 02 03 81 62 B1 44 01", b);
    CHECK_EQ_INT(bolt_check_value(b, n, NULL), BOLT_OK);
    CHECK_EQ_INT(bolt_check_value(b, n - 1, NULL), BOLT_EPROTO);      /* truncated */
    CHECK_EQ_INT(bolt_check_value(b, n + 0, NULL), BOLT_OK);
    b[n] = 0x01;
    CHECK_EQ_INT(bolt_check_value(b, n + 1, NULL), BOLT_EPROTO);      /* trailing */
    n = unhex("D6 00 00 00 02 01", b);
    CHECK_EQ_INT(bolt_check_value(b, n, NULL), BOLT_EPROTO);          /* miscounted */
    n = unhex("92 C7 01", b);
    CHECK_EQ_INT(bolt_check_value(b, n, NULL), BOLT_EPROTO);          /* reserved */
    n = unhex("93 A1 81 6B 91 C0 92 01", b);
    CHECK_EQ_INT(bolt_check_value(b, n, NULL), BOLT_EPROTO);          /* outer list short */
    b[n++] = 0x02;
    b[n++] = 0x03;
    CHECK_EQ_INT(bolt_check_value(b, n, NULL), BOLT_OK);              /* nested, then siblings */

    /* The checker's depth cap is the decoder's: lists nested k deep around a 1. */
    uint8_t deep[80];
    for (size_t k = BOLT_MAX_DEPTH - 1; k <= BOLT_MAX_DEPTH + 2; k++) {
        memset(deep, 0x91, k);
        deep[k] = 0x01;
        bolt_value *v = NULL;
        int want = bolt_unpack(deep, k + 1, &v, NULL, NULL);
        bolt_value_free(v);
        CHECK_EQ_INT(bolt_check_value(deep, k + 1, NULL), want);
        CHECK_EQ_INT(want, k <= BOLT_MAX_DEPTH ? BOLT_OK : BOLT_EPROTO);
    }

    bolt_enc *e = bolt_enc_new();
    CHECK_EQ_INT(bolt_enc_struct_begin(e, 1, 16), BOLT_EINVAL);
    CHECK_EQ_INT(bolt_enc_int(e, 1), BOLT_EINVAL);                     /* sticky */
    CHECK_EQ_INT(bolt_enc_error(e), BOLT_EINVAL);
    bolt_enc_reset(e);
    CHECK_EQ_INT(bolt_enc_int(e, 1), BOLT_OK);
    CHECK_EQ_INT(bolt_enc_string(e, NULL), BOLT_OK);
    CHECK_EQ_MEM(bolt_enc_data(e), "\x01\xC0", 2);
    bolt_enc_free(e);
}
