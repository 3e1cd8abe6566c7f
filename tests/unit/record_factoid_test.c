/* tests/unit/record_factoid_test.c: the Confluent frame and record_decode_factoid.
 *
 * Frames are hand-made bytes (every malformation the parser must name); messages are
 * packed with protobuf-c's generated code from record_test_util.h's known-good SHOP
 * ORDER_FINALIZED factoid, changed one field at a time. Covered: the frame parser alone,
 * the header-schema-id (unframed) path, the filters and their order (contract §2), the
 * "Shop order received" fields, fido_count mismatch, and the purchase's fields.
 */
#define TEST_MAIN
#include "test.h"

#include "record/record.h"
#include "record_test_util.h"

/* ---- the frame alone ------------------------------------------------------------- */

typedef struct frame {
    int rc;
    int32_t schema_id;
    int32_t path[8];
    size_t path_len;
    size_t off;
    char err[256];
} frame;

/* Parse from a heap copy of exactly len bytes, so that ASan sees any read past len. */
static frame parse(const uint8_t *bytes, size_t len) {
    frame f = {.schema_id = -1};
    uint8_t *copy = bytes ? malloc(len ? len : 1) : NULL;
    if (copy) memcpy(copy, bytes, len);
    f.rc = record_parse_confluent_frame(copy, len, &f.schema_id, f.path, 8, &f.path_len,
                                        &f.off, f.err, sizeof f.err);
    free(copy);
    return f;
}

#define PARSE(...) parse((const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}))

static void expect_frame_error(frame f, const char *needle) {
    CHECK_EQ_INT(f.rc, -1);
    CHECKF(strstr(f.err, needle) != NULL, "error \"%s\" lacks \"%s\"", f.err, needle);
}

TEST(frame_short_path_zero) {
    frame f = PARSE(0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x0a);
    CHECK_EQ_INT(f.rc, 0);
    CHECK_EQ_INT(f.schema_id, 300);
    CHECK_EQ_INT(f.path_len, 1);
    CHECK_EQ_INT(f.path[0], 0);
    CHECK_EQ_INT(f.off, 6);
}

TEST(frame_general_paths) {
    frame f = PARSE(0x00, 0x7f, 0xff, 0xff, 0xff, 0x06, 0x04, 0x00, 0x06);   /* [2,0,3] */
    CHECK_EQ_INT(f.rc, 0);
    CHECK_EQ_INT(f.schema_id, INT32_MAX);
    CHECK_EQ_INT(f.path_len, 3);
    CHECK_EQ_INT(f.path[0], 2);
    CHECK_EQ_INT(f.path[1], 0);
    CHECK_EQ_INT(f.path[2], 3);
    CHECK_EQ_INT(f.off, 9);
    f = PARSE(0x00, 0, 0, 0, 1, 0x02, 0x80, 0x01);                          /* [64] */
    CHECK_EQ_INT(f.rc, 0);
    CHECK_EQ_INT(f.path_len, 1);
    CHECK_EQ_INT(f.path[0], 64);
    CHECK_EQ_INT(f.off, 8);
    f = PARSE(0x00, 0, 0, 0, 1, 0x02, 0x00);                                /* long [0] */
    CHECK_EQ_INT(f.rc, 0);
    CHECK_EQ_INT(f.path_len, 1);
    CHECK_EQ_INT(f.path[0], 0);
    CHECK_EQ_INT(f.off, 7);
    f = PARSE(0x00, 0, 0, 0, 1, 0x00);                          /* empty payload is fine */
    CHECK_EQ_INT(f.rc, 0);
    CHECK_EQ_INT(f.off, 6);
}

TEST(frame_too_short) {
    expect_frame_error(parse(NULL, 0), "shorter than the 5-byte header");
    expect_frame_error(PARSE(0x00), "shorter than the 5-byte header");
    expect_frame_error(PARSE(0x00, 0, 0, 1), "value of 4 bytes is shorter");
    /* Five bytes: a header, but no message-index path at all. */
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1), "count varint runs past the end");
}

TEST(frame_wrong_magic) {
    expect_frame_error(PARSE(0x01, 0, 0, 0, 1, 0x00), "wrong magic byte 0x01");
    expect_frame_error(PARSE(0x0a, 0x06, 'r', 'c', 'p', 't', '-', '1'), "wrong magic byte");
}

TEST(frame_negative_schema_id) {
    expect_frame_error(PARSE(0x00, 0x80, 0, 0, 1, 0x00), "negative schema id");
}

TEST(frame_varint_errors) {
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x80), "count varint runs past the end");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
                       "count varint is longer than 5 bytes");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x10),
                       "count varint overflows 32 bits");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x02), "message index 0 varint runs past");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x04, 0x00, 0xff),
                       "message index 1 varint runs past");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
                       "message index 0 varint is longer than 5 bytes");
}

TEST(frame_count_errors) {
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x01), "negative message-index count -1");
    /* The largest 5-byte zigzag value: INT32_MIN. */
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f),
                       "negative message-index count -2147483648");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x22), "count 17 exceeds 16");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f),
                       "count 2147483647 exceeds 16");
    /* Within the cap but beyond the caller's room (8 here). */
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                       "too deep");
    expect_frame_error(PARSE(0x00, 0, 0, 0, 1, 0x02, 0x01), "negative message index -1");
}

TEST(frame_no_room_and_no_err_buffer) {
    static const uint8_t b[] = {0x00, 0, 0, 0, 1, 0x00};
    int32_t sid, path[1];
    size_t plen, off;
    char err[64] = "";
    CHECK_EQ_INT(record_parse_confluent_frame(b, sizeof b, &sid, path, 0, &plen, &off, err,
                                              sizeof err), -1);
    CHECK(strstr(err, "no room") != NULL);
    /* A NULL error buffer is allowed: the caller only wants the verdict. */
    CHECK_EQ_INT(record_parse_confluent_frame(b, 3, &sid, path, 1, &plen, &off, NULL, 0), -1);
    CHECK_EQ_INT(record_parse_confluent_frame(b, sizeof b, &sid, path, 1, &plen, &off, NULL,
                                              0), 0);
}

/* ---- decode_factoid --------------------------------------------------------------- */

static void decode_bytes(const uint8_t *buf, size_t len, int32_t hdr, record_result *res) {
    uint8_t *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    record_decode_factoid(copy, len, hdr, res);
    free(copy);
}

/* Decode f in the usual frame; the caller frees res->purchase. */
static void decode(const rt_factoid *f, record_result *res) {
    size_t len;
    uint8_t *buf = rt_pack_factoid(f, &len);
    decode_bytes(buf, len, -1, res);
    free(buf);
}

static void decode_framed(const rt_factoid *f, const uint8_t *prefix, size_t plen,
                          record_result *res) {
    size_t len;
    uint8_t *buf = rt_pack_framed(&f->msg.base, prefix, plen, &len);
    decode_bytes(buf, len, -1, res);
    free(buf);
}

static void expect_skip(const rt_factoid *f, record_reason reason, const char *detail) {
    record_result res;
    decode(f, &res);
    CHECKF(res.status == RECORD_SKIP, "status %d error \"%s\"", res.status, res.error);
    CHECK_EQ_STR(record_reason_name(res.reason), record_reason_name(reason));
    CHECK_EQ_STR(res.detail, detail);
    CHECK(res.purchase == NULL);
    CHECK_EQ_INT(res.schema_id, RT_SCHEMA_ID);
}

static void expect_error(const rt_factoid *f, const char *needle) {
    record_result res;
    decode(f, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(res.purchase == NULL);
    CHECKF(strstr(res.error, needle) != NULL, "error \"%s\" lacks \"%s\"", res.error, needle);
}

static void check_order_purchase(const record_result *res) {
    const record_purchase *p = res->purchase;
    CHECKF(res->status == RECORD_OK, "error: %s", res->error);
    CHECK(p != NULL);
    CHECK_EQ_INT(p->source, RECORD_SOURCE_SHOP_ORDER);
    CHECK_EQ_STR(p->id, "fact-1");
    CHECK_EQ_STR(p->purchase_id, "order:ord-9");
    CHECK_EQ_STR(p->order_id, "ord-9");
    CHECK_EQ_STR(p->factoid_id, "fact-1");
    CHECK(p->receipt_id == NULL);
    CHECK_EQ_STR(p->user_id, "user-2");
    CHECK_EQ_STR(p->retailer_id, "R7");
    CHECK_EQ_INT(p->total_cents, 3394);
    CHECK_EQ_STR(p->currency, "EUR");
    CHECK_EQ_INT(p->has_purchased_at, 1);
    CHECK_EQ_INT(p->purchased_at_s, 1710000000);
    CHECK_EQ_INT(p->purchased_at_ns, 7);
    CHECK_EQ_INT(p->fido_count, 3);
    CHECK_EQ_INT(p->nitems, 3);
    CHECK_EQ_INT(p->items[0].line, 1);
    CHECK_EQ_STR(p->items[0].fido, "F1");
    CHECK(p->items[0].quantity == 2.0);
    CHECK_EQ_INT(p->items[0].unit_price_cents, 599);
    CHECK_EQ_INT(p->items[0].total_price_cents, 1198);
    CHECK_EQ_STR(p->items[0].description, "Cola 12pk");
    CHECK_EQ_INT(p->items[1].line, 3);
    CHECK_EQ_STR(p->items[1].fido, "F1");
    CHECK(p->items[1].description == NULL);
    CHECK_EQ_INT(p->items[1].total_price_cents, 599);
    CHECK_EQ_INT(p->items[2].line, 4);
    CHECK_EQ_STR(p->items[2].fido, "F9");
    CHECK(p->items[2].quantity == 3.0);
    CHECK_EQ_INT(p->items[2].total_price_cents, 1047);
}

TEST(ok_purchase_fields) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    decode(&f, &res);
    check_order_purchase(&res);
    CHECK_EQ_INT(res.schema_id, RT_SCHEMA_ID);
    CHECK_EQ_INT(res.shop_order_finalized, 1);
    CHECK_EQ_STR(res.order_id, "ord-9");
    CHECK_EQ_INT(res.fido_count, 3);
    CHECK_EQ_INT(res.fido_count_mismatch, 0);
    record_purchase_free(res.purchase);
}

TEST(long_form_path_zero_is_accepted) {
    static const uint8_t prefix[] = {0x00, 0, 0, 0x01, 0x2c, 0x02, 0x00};
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    decode_framed(&f, prefix, sizeof prefix, &res);
    check_order_purchase(&res);
    record_purchase_free(res.purchase);
}

TEST(header_schema_id_means_unframed) {
    rt_factoid f;
    record_result res;
    size_t len;
    uint8_t *buf;
    rt_factoid_init(&f);
    buf = rt_pack(&f.msg.base, &len);
    decode_bytes(buf, len, 77, &res);
    check_order_purchase(&res);
    CHECK_EQ_INT(res.schema_id, 77);
    record_purchase_free(res.purchase);
    /* Schema id 0 from the header is still the header's. */
    decode_bytes(buf, len, 0, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK_EQ_INT(res.schema_id, 0);
    record_purchase_free(res.purchase);
    /* Without the header the same bytes are not a frame: 0x0a is not the magic. */
    decode_bytes(buf, len, -1, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "wrong magic byte 0x0a") != NULL);
    free(buf);
    /* With the header, a framed value is not a Factoid (tag 0 is invalid protobuf). */
    buf = rt_pack_factoid(&f, &len);
    decode_bytes(buf, len, 300, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "invalid protobuf") != NULL);
    CHECK_EQ_INT(res.schema_id, 300);
    free(buf);
}

TEST(frame_errors_reach_the_result) {
    static const struct { const char *bytes; size_t len; const char *needle; } cases[] = {
        {"", 0, "shorter than the 5-byte header"},
        {"\x00\x00\x00", 3, "shorter than the 5-byte header"},
        {"\x01\x00\x00\x01\x2c\x00", 6, "wrong magic"},
        {"\x00\x00\x00\x01\x2c", 5, "runs past the end"},
        {"\x00\x00\x00\x01\x2c\x80\x80", 7, "runs past the end"},
        {"\x00\x00\x00\x01\x2c\x80\x80\x80\x80\x80\x01", 11, "longer than 5 bytes"},
        {"\x00\x00\x00\x01\x2c\x03", 6, "negative message-index count"},
        {"\x00\x00\x00\x01\x2c\x22", 6, "exceeds 16"},
        {"\x00\x00\x00\x01\x2c\x02\x02", 7, "is not [0]"},            /* [1] */
        {"\x00\x00\x00\x01\x2c\x04\x00\x00", 8, "is not [0]"},        /* [0,0] */
        {"\x00\x00\x00\x01\x2c\x02\x06", 7, "is not [0]"},            /* [3] */
        {"\x00\x00\x00\x01\x2c\x00\xffSECRET\xff", 14, "invalid protobuf"},
        {"\x00\x00\x00\x01\x2c\x00\x0a\x10SECRET", 14, "invalid protobuf"},   /* truncated */
        {"\x00\x00\x00\x01\x2c\x00", 6, "missing ids"},               /* empty Factoid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        record_result res;
        decode_bytes((const uint8_t *)cases[i].bytes, cases[i].len, -1, &res);
        CHECKF(res.status == RECORD_ERROR, "case %zu: status %d", i, res.status);
        CHECKF(strstr(res.error, cases[i].needle) != NULL, "case %zu: \"%s\" lacks \"%s\"",
               i, res.error, cases[i].needle);
        CHECKF(strstr(res.error, "SECRET") == NULL, "case %zu leaks bytes: %s", i, res.error);
        CHECK(res.purchase == NULL);
        CHECK_EQ_INT(res.shop_order_finalized, 0);
    }
}

TEST(schema_id_reported_on_path_error) {
    record_result res;
    decode_bytes((const uint8_t *)"\x00\x00\x00\x01\x2c\x02\x02", 7, -1, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK_EQ_INT(res.schema_id, 300);
    CHECK(strstr(res.error, "schema 300") != NULL);
}

TEST(missing_ids_are_errors) {
    rt_factoid f;
    rt_factoid_init(&f);
    f.msg.factoid_id = "";
    expect_error(&f, "empty factoid_id");
    rt_factoid_init(&f);
    f.msg.user_id = "";
    expect_error(&f, "factoid fact-1 has an empty user_id");
    f.msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_PLAY;   /* before filters */
    expect_error(&f, "missing ids");
}

TEST(source_filter_first) {
    rt_factoid f;
    rt_factoid_init(&f);
    f.msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_PLAY;
    f.msg.type = "MILESTONE_COMPLETED";
    f.msg.payload_case = FACTOIDS__V1__FACTOID__PAYLOAD_PLAY_ACTIVITY;
    f.msg.play_activity = &f.play;
    expect_skip(&f, RECORD_REASON_SOURCE, "FACTOID_SOURCE_PLAY");
    f.msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_UNSPECIFIED;
    expect_skip(&f, RECORD_REASON_SOURCE, "FACTOID_SOURCE_UNSPECIFIED");
    f.msg.source = (Factoids__V1__FactoidSource)9;
    expect_skip(&f, RECORD_REASON_SOURCE, "9");
    /* Not SHOP but ORDER_FINALIZED with an order: still source, and not a shop order. */
    rt_factoid_init(&f);
    f.msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_RECEIPT;
    record_result res;
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_SKIP);
    CHECK_EQ_INT(res.reason, RECORD_REASON_SOURCE);
    CHECK_EQ_INT(res.shop_order_finalized, 0);
}

TEST(type_filter_second) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    f.msg.type = "ORDER_PENDING";
    expect_skip(&f, RECORD_REASON_TYPE, "ORDER_PENDING");
    f.order.n_items = 0;                   /* type wins over no_fidos */
    expect_skip(&f, RECORD_REASON_TYPE, "ORDER_PENDING");
    f.msg.type = "";
    expect_skip(&f, RECORD_REASON_TYPE, "");
    f.msg.type = "order_finalized";        /* the comparison is exact */
    expect_skip(&f, RECORD_REASON_TYPE, "order_finalized");
    decode(&f, &res);
    CHECK_EQ_INT(res.shop_order_finalized, 0);
}

TEST(type_detail_is_safe_and_bounded) {
    rt_factoid f;
    char type[400];
    rt_factoid_init(&f);
    memset(type, 'A', sizeof type - 1);
    type[sizeof type - 1] = '\0';
    f.msg.type = type;
    record_result res;
    decode(&f, &res);
    CHECK_EQ_INT(res.reason, RECORD_REASON_TYPE);
    CHECK_EQ_INT(strlen(res.detail), 64);
    CHECK(strcmp(res.detail + 61, "...") == 0);
    CHECK_EQ_MEM(res.detail, "AAAAAAAAAA", 10);
    f.msg.type = "X\n\x1b[31m\xc3\xa9";
    expect_skip(&f, RECORD_REASON_TYPE, "X??[31m??");
}

TEST(no_fidos_without_shop_order) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    f.msg.payload_case = FACTOIDS__V1__FACTOID__PAYLOAD__NOT_SET;
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_SKIP);
    CHECK_EQ_INT(res.reason, RECORD_REASON_NO_FIDOS);
    CHECK_EQ_INT(res.shop_order_finalized, 1);
    CHECK_EQ_INT(res.fido_count, -1);
    CHECK_EQ_STR(res.order_id, "");
    CHECK_EQ_INT(res.fido_count_mismatch, 0);
    /* A play payload on a SHOP ORDER_FINALIZED: no shop_order either. */
    f.msg.payload_case = FACTOIDS__V1__FACTOID__PAYLOAD_PLAY_ACTIVITY;
    f.msg.play_activity = &f.play;
    decode(&f, &res);
    CHECK_EQ_INT(res.reason, RECORD_REASON_NO_FIDOS);
    CHECK_EQ_INT(res.shop_order_finalized, 1);
}

TEST(no_fidos_still_reports_the_order) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    for (int i = 0; i < RT_NITEMS; i++) f.items[i].fido = "";
    f.order.fido_count = 0;
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_SKIP);
    CHECK_EQ_INT(res.reason, RECORD_REASON_NO_FIDOS);
    CHECK_EQ_INT(res.shop_order_finalized, 1);
    CHECK_EQ_STR(res.order_id, "ord-9");
    CHECK_EQ_STR(res.detail, "ord-9");
    CHECK_EQ_INT(res.fido_count, 0);
    CHECK_EQ_INT(res.fido_count_mismatch, 0);
    /* The producer claims 2 fidos, the items have none. */
    f.order.fido_count = 2;
    decode(&f, &res);
    CHECK_EQ_INT(res.reason, RECORD_REASON_NO_FIDOS);
    CHECK_EQ_INT(res.fido_count, 2);
    CHECK_EQ_INT(res.fido_count_mismatch, 1);
    /* No order id and no fidos: a skip, not an error. */
    f.order.order_id = "";
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_SKIP);
    CHECK_EQ_INT(res.reason, RECORD_REASON_NO_FIDOS);
}

TEST(fido_count_mismatch_on_ok) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    f.order.fido_count = 4;                /* 3 items carry a fido */
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK_EQ_INT(res.fido_count_mismatch, 1);
    CHECK_EQ_INT(res.fido_count, 4);
    CHECK_EQ_INT(res.purchase->fido_count, 4);
    record_purchase_free(res.purchase);
    f.order.fido_count = -1;
    decode(&f, &res);
    CHECK_EQ_INT(res.fido_count_mismatch, 1);
    record_purchase_free(res.purchase);
}

TEST(empty_order_id_with_fidos_is_an_error) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    f.order.order_id = "";
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "missing ids") != NULL);
    CHECK(strstr(res.error, "fact-1") != NULL);
    CHECK_EQ_INT(res.shop_order_finalized, 1);   /* still a shop order to log */
    CHECK(res.purchase == NULL);
}

TEST(absent_values_are_null) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    f.order.retailer_id = "";
    f.order.currency = "";
    f.msg.occurred_at = NULL;
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK(res.purchase->retailer_id == NULL);
    CHECK(res.purchase->currency == NULL);
    CHECK_EQ_INT(res.purchase->has_purchased_at, 0);
    record_purchase_free(res.purchase);
}

TEST(total_price_is_quantity_times_unit) {
    rt_factoid f;
    record_result res;
    rt_factoid_init(&f);
    f.items[0].quantity = -2;              /* a return line: kept as the producer says */
    f.items[3].quantity = INT32_MAX;
    f.items[3].unit_price_cents = INT64_C(4294967298);   /* 2^32 + 2: product fits */
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK_EQ_INT(res.purchase->items[0].total_price_cents, -1198);
    CHECK(res.purchase->items[0].quantity == -2.0);
    CHECK_EQ_INT(res.purchase->items[2].total_price_cents,
                 (int64_t)INT32_MAX * INT64_C(4294967298));
    record_purchase_free(res.purchase);
}

TEST(total_price_overflow_is_an_error) {
    rt_factoid f;
    rt_factoid_init(&f);
    f.items[3].quantity = 3;
    f.items[3].unit_price_cents = INT64_MAX / 2;
    expect_error(&f, "shop order line 4: quantity x unit_price_cents overflows int64");
    rt_factoid_init(&f);
    f.items[0].quantity = -2;
    f.items[0].unit_price_cents = INT64_MIN;
    expect_error(&f, "line 1");
    /* A line without a fido is not copied, so its prices do not matter. */
    rt_factoid_init(&f);
    f.items[1].quantity = 3;
    f.items[1].unit_price_cents = INT64_MAX;
    record_result res;
    decode(&f, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    record_purchase_free(res.purchase);
}

TEST(invalid_utf8_and_timestamp_are_errors) {
    rt_factoid f;
    rt_factoid_init(&f);
    f.items[0].title = "\xfe";
    expect_error(&f, "title is not valid UTF-8");
    rt_factoid_init(&f);
    f.order.order_id = "o\x80";
    expect_error(&f, "order_id is not valid UTF-8");
    rt_factoid_init(&f);
    f.ts.nanos = -5;
    expect_error(&f, "occurred_at is outside the Timestamp range");
}

static const char *const FACTOID_IDS[] = {"factoid_id", "user_id", "shop_order.order_id",
                                          "shop_order.retailer_id", "shop_order.items.fido"};

static void set_factoid_id(rt_factoid *f, size_t which, const char *v) {
    switch (which) {
    case 0: f->msg.factoid_id = (char *)v; break;
    case 1: f->msg.user_id = (char *)v; break;
    case 2: f->order.order_id = (char *)v; break;
    case 3: f->order.retailer_id = (char *)v; break;
    default: f->items[3].fido = (char *)v; break;
    }
}

/* protobuf-c would cut "o1\0aaa" at the NUL, merging distinct ids: an error instead. */
TEST(nul_in_every_id_field_is_an_error) {
    for (size_t i = 0; i < sizeof FACTOID_IDS / sizeof *FACTOID_IDS; i++) {
        rt_factoid f;
        record_result res;
        size_t len;
        char want[96];
        rt_factoid_init(&f);
        set_factoid_id(&f, i, "o1" RT_NUL "aaa");
        uint8_t *buf = rt_pack_factoid(&f, &len);
        rt_put_nul(buf, len, "o1" RT_NUL "aaa");
        decode_bytes(buf, len, -1, &res);
        free(buf);
        snprintf(want, sizeof want, "factoid field %s holds U+0000", FACTOID_IDS[i]);
        CHECK_EQ_INT(res.status, RECORD_ERROR);
        CHECK_EQ_STR(record_error_kind_name(res.error_kind), "invalid_string");
        CHECK(res.purchase == NULL);
        CHECKF(strstr(res.error, want) != NULL, "error \"%s\" lacks \"%s\"", res.error, want);
    }
}

TEST(invalid_utf8_in_every_id_field_is_an_error) {
    static const char *const bad[] = {"o\xff", "caf\xc3", "\xed\xa0\x80", "\xc0\xaf",
                                      "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof FACTOID_IDS / sizeof *FACTOID_IDS; i++)
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
            rt_factoid f;
            char want[96];
            rt_factoid_init(&f);
            set_factoid_id(&f, i, bad[k]);
            snprintf(want, sizeof want, "factoid field %s is not valid UTF-8", FACTOID_IDS[i]);
            expect_error(&f, want);
        }
}

/* Also in a string the worker never reads, and in the unframed (header) mode. */
TEST(nul_in_other_string_fields_is_an_error) {
    rt_factoid f;
    record_result res;
    size_t len;
    rt_factoid_init(&f);
    f.msg.type = "ORDER" RT_NUL "FINALIZED";
    uint8_t *buf = rt_pack(&f.msg.base, &len);
    rt_put_nul(buf, len, "ORDER" RT_NUL "FINALIZED");
    decode_bytes(buf, len, RT_SCHEMA_ID, &res);
    free(buf);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "factoid field type holds U+0000") != NULL);
    rt_factoid_init(&f);
    f.items[1].title = "\xfe";
    expect_error(&f, "factoid field shop_order.items.title is not valid UTF-8");
}

TEST(id_length_limit) {
    char *max = rt_long_id(8156), *over = rt_long_id(8157);
    for (size_t i = 0; i < sizeof FACTOID_IDS / sizeof *FACTOID_IDS; i++) {
        rt_factoid f;
        record_result res;
        char want[96];
        rt_factoid_init(&f);
        set_factoid_id(&f, i, max);
        decode(&f, &res);
        CHECKF(res.status == RECORD_OK, "%s: %s", FACTOID_IDS[i], res.error);
        record_purchase_free(res.purchase);
        set_factoid_id(&f, i, over);
        snprintf(want, sizeof want, "id too long: factoid field %s has 8157 bytes (at most "
                 "8156", FACTOID_IDS[i]);
        expect_error(&f, want);
        decode(&f, &res);
        CHECK_EQ_STR(record_error_kind_name(res.error_kind), "id_too_long");
    }
    free(max);
    free(over);
}

TEST(every_truncation_of_a_good_record_is_handled) {
    rt_factoid f;
    size_t len;
    uint8_t *buf;
    rt_factoid_init(&f);
    buf = rt_pack_factoid(&f, &len);
    for (size_t n = 0; n <= len; n++) {
        record_result res;
        decode_bytes(buf, n, -1, &res);
        CHECK((res.status == RECORD_OK) == (n == len));
        record_purchase_free(res.purchase);
    }
    free(buf);
}

TEST(oversize_value_is_refused) {
    size_t big = ((size_t)16 << 20) + 1;
    uint8_t *buf = calloc(1, big);
    record_result res;
    record_decode_factoid(buf, big, -1, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "exceeds") != NULL);
    record_decode_factoid(NULL, 3, -1, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    free(buf);
}
