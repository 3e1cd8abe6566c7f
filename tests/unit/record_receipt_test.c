/* tests/unit/record_receipt_test.c: record_decode_receipt, from bytes to purchase or reason.
 *
 * Records are packed with protobuf-c's generated code from record_test_util.h's known-good
 * receipt, changed one field at a time; a few are hand-made bytes (garbage, truncation).
 * Covered: the purchase's fields, each filter and the order of the filters (contract §2),
 * the id checks, invalid protobuf, and that messages carry no record bytes.
 */
#define TEST_MAIN
#include "test.h"

#include "record/record.h"
#include "record/record_internal.h"
#include "record_test_util.h"

/* Decode r; the caller frees res->purchase. */
static void decode(const rt_receipt *r, record_result *res) {
    size_t len;
    uint8_t *buf = rt_pack_receipt(r, &len);
    record_decode_receipt(buf, len, res);
    free(buf);
}

static void expect_skip(const rt_receipt *r, record_reason reason, const char *detail) {
    record_result res;
    decode(r, &res);
    CHECKF(res.status == RECORD_SKIP, "status %d error \"%s\"", res.status, res.error);
    CHECK_EQ_STR(record_reason_name(res.reason), record_reason_name(reason));
    CHECK_EQ_STR(res.detail, detail);
    CHECK(res.purchase == NULL);
}

static void expect_error(const rt_receipt *r, const char *needle) {
    record_result res;
    decode(r, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(res.purchase == NULL);
    CHECKF(strstr(res.error, needle) != NULL, "error \"%s\" lacks \"%s\"", res.error, needle);
}

TEST(ok_purchase_fields) {
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    decode(&r, &res);
    CHECKF(res.status == RECORD_OK, "error: %s", res.error);
    CHECK_EQ_INT(res.reason, RECORD_REASON_NONE);
    CHECK_EQ_INT(res.schema_id, -1);
    record_purchase *p = res.purchase;
    CHECK(p != NULL);
    CHECK_EQ_INT(p->source, RECORD_SOURCE_RECEIPT);
    CHECK_EQ_STR(p->id, "rcpt-1");
    CHECK_EQ_STR(p->purchase_id, "receipt:rcpt-1");
    CHECK_EQ_STR(p->receipt_id, "rcpt-1");
    CHECK_EQ_STR(p->user_id, "user-1");
    CHECK_EQ_STR(p->retailer_id, "R1");
    CHECK(p->order_id == NULL && p->factoid_id == NULL);
    CHECK_EQ_INT(p->has_purchased_at, 1);
    CHECK_EQ_INT(p->purchased_at_s, 1700000000);
    CHECK_EQ_INT(p->purchased_at_ns, 250000000);
    CHECK_EQ_INT(p->total_cents, 2556);
    CHECK_EQ_STR(p->currency, "USD");
    CHECK_EQ_INT(p->fido_count, -1);
    /* Line 2 has no fido; lines 1 and 3 share F1 and stay two items, in record order. */
    CHECK_EQ_INT(p->nitems, 3);
    CHECK_EQ_INT(p->items[0].line, 1);
    CHECK_EQ_STR(p->items[0].fido, "F1");
    CHECK_EQ_STR(p->items[0].description, "COLA 12PK");
    CHECK(p->items[0].quantity == 2.0);
    CHECK_EQ_INT(p->items[0].unit_price_cents, 599);
    CHECK_EQ_INT(p->items[0].total_price_cents, 1198);
    CHECK_EQ_INT(p->items[1].line, 3);
    CHECK_EQ_STR(p->items[1].fido, "F1");
    CHECK(p->items[1].description == NULL);
    CHECK(p->items[1].quantity == 1.5);
    CHECK_EQ_INT(p->items[1].total_price_cents, 898);
    CHECK_EQ_INT(p->items[2].line, 4);
    CHECK_EQ_STR(p->items[2].fido, "F2");
    record_purchase_free(p);
}

TEST(absent_values_are_null) {
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    r.msg.retailer = NULL;
    r.msg.purchased_at = NULL;
    r.msg.currency = "";
    decode(&r, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK(res.purchase->retailer_id == NULL);
    CHECK(res.purchase->currency == NULL);
    CHECK_EQ_INT(res.purchase->has_purchased_at, 0);
    record_purchase_free(res.purchase);

    rt_receipt_init(&r);
    r.retailer.retailer_id = "";           /* store not recognised: no AT relationship */
    decode(&r, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK(res.purchase->retailer_id == NULL);
    record_purchase_free(res.purchase);
}

TEST(epoch_timestamp_is_present) {
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    r.ts.seconds = 0;                      /* packs as an empty Timestamp: still present */
    r.ts.nanos = 0;
    decode(&r, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK_EQ_INT(res.purchase->has_purchased_at, 1);
    CHECK_EQ_INT(res.purchase->purchased_at_s, 0);
    record_purchase_free(res.purchase);
}

TEST(digital_by_presence_alone) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.digital_receipt_data = &r.digital;   /* every field empty: still digital */
    expect_skip(&r, RECORD_REASON_DIGITAL, "");
    r.digital.source = "EMAIL";
    expect_skip(&r, RECORD_REASON_DIGITAL, "");
}

TEST(digital_comes_before_status_and_no_fidos) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.digital_receipt_data = &r.digital;
    r.msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_PENDING;
    r.msg.n_items = 0;
    expect_skip(&r, RECORD_REASON_DIGITAL, "");
}

TEST(status_names_the_status) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_PENDING;
    expect_skip(&r, RECORD_REASON_STATUS, "RECEIPT_STATUS_PENDING");
    r.msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_UNSPECIFIED;  /* not packed */
    expect_skip(&r, RECORD_REASON_STATUS, "RECEIPT_STATUS_UNSPECIFIED");
    r.msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_DUPLICATE;
    expect_skip(&r, RECORD_REASON_STATUS, "RECEIPT_STATUS_DUPLICATE");
}

TEST(status_unknown_value_is_a_number) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.status = (Receipts__V1__ReceiptStatus)42;
    expect_skip(&r, RECORD_REASON_STATUS, "42");
    r.msg.status = (Receipts__V1__ReceiptStatus)-7;
    expect_skip(&r, RECORD_REASON_STATUS, "-7");
}

TEST(status_comes_before_no_fidos) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED;
    r.msg.n_items = 0;
    expect_skip(&r, RECORD_REASON_STATUS, "RECEIPT_STATUS_REJECTED");
}

TEST(no_fidos) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.n_items = 0;
    expect_skip(&r, RECORD_REASON_NO_FIDOS, "");
    rt_receipt_init(&r);
    for (int i = 0; i < RT_NITEMS; i++) r.items[i].fido = "";
    expect_skip(&r, RECORD_REASON_NO_FIDOS, "");
}

TEST(one_fido_is_enough) {
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    for (int i = 0; i < RT_NITEMS - 1; i++) r.items[i].fido = "";
    decode(&r, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK_EQ_INT(res.purchase->nitems, 1);
    CHECK_EQ_INT(res.purchase->items[0].line, 4);
    record_purchase_free(res.purchase);
}

TEST(missing_ids_are_errors) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.msg.receipt_id = "";
    expect_error(&r, "missing ids");
    rt_receipt_init(&r);
    r.msg.user_id = "";
    expect_error(&r, "empty user_id");
    /* ...before any filter: a record without ids is broken, whatever else it says. */
    r.msg.digital_receipt_data = &r.digital;
    expect_error(&r, "missing ids");
}

TEST(empty_value_is_missing_ids) {
    record_result res;
    record_decode_receipt("", 0, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "missing ids") != NULL);
    record_decode_receipt(NULL, 0, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    record_decode_receipt(NULL, 5, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
}

TEST(invalid_protobuf) {
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff};
    /* field 1, length 10, but only 6 bytes ("SECRET") follow. */
    static const uint8_t truncated[] = {0x0a, 0x0a, 'S', 'E', 'C', 'R', 'E', 'T'};
    /* field 3 (status) with wire type 3 (start group): not allowed in proto3 here. */
    static const uint8_t group[] = {0x1b, 0x00};
    record_result res;
    record_decode_receipt(garbage, sizeof garbage, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK_EQ_STR(res.error, "invalid protobuf: receipt does not decode: a tag is cut short "
                 "or longer than 5 bytes (byte 0)");
    record_decode_receipt(truncated, sizeof truncated, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK_EQ_STR(res.error, "invalid protobuf: receipt does not decode: a length-delimited "
                 "field runs past the end of its message (byte 1)");
    CHECK(strstr(res.error, "SECRET") == NULL);
    record_decode_receipt(group, sizeof group, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK_EQ_STR(res.error, "invalid protobuf: receipt does not decode: a known field has "
                 "another wire type than its type's (byte 1)");
}

TEST(every_truncation_of_a_good_record_is_handled) {
    rt_receipt r;
    size_t len;
    uint8_t *buf;
    rt_receipt_init(&r);
    buf = rt_pack_receipt(&r, &len);
    for (size_t n = 0; n < len; n++) {
        record_result res;
        /* A heap copy of exactly n bytes: ASan catches a read past it. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        record_decode_receipt(cut, n, &res);
        CHECK(res.status != RECORD_OK || res.purchase != NULL);
        record_purchase_free(res.purchase);
        free(cut);
    }
    free(buf);
}

TEST(invalid_utf8_is_an_error) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.items[3].fido = "F\xff";
    expect_error(&r, "items.fido is not valid UTF-8");
    rt_receipt_init(&r);
    r.items[0].description = "caf\xc3";    /* cut in the middle of a character */
    expect_error(&r, "description is not valid UTF-8");
    rt_receipt_init(&r);
    r.msg.user_id = "\xed\xa0\x80";       /* a surrogate */
    expect_error(&r, "user_id is not valid UTF-8");
    rt_receipt_init(&r);
    r.msg.receipt_id = "\xc0\xaf";        /* overlong '/' */
    expect_error(&r, "receipt_id is not valid UTF-8");
}

/* The receipt's id fields, by their path in the message. */
static const char *const RECEIPT_IDS[] = {"receipt_id", "user_id", "retailer.retailer_id",
                                          "items.fido"};

static void set_receipt_id(rt_receipt *r, size_t which, const char *v) {
    switch (which) {
    case 0: r->msg.receipt_id = (char *)v; break;
    case 1: r->msg.user_id = (char *)v; break;
    case 2: r->retailer.retailer_id = (char *)v; break;
    default: r->items[3].fido = (char *)v; break;
    }
}

/* "r1\0aaa" and "r1\0bbb" were both receipt "r1" (protobuf-c cut them at the NUL): one
 * purchase, one idempotency key. Now every id field with a NUL is an error naming it. */
TEST(nul_in_every_id_field_is_an_error) {
    for (size_t i = 0; i < sizeof RECEIPT_IDS / sizeof *RECEIPT_IDS; i++) {
        rt_receipt r;
        record_result res;
        size_t len;
        char want[96];
        rt_receipt_init(&r);
        set_receipt_id(&r, i, "r1" RT_NUL "aaa");
        uint8_t *buf = rt_pack_receipt(&r, &len);
        rt_put_nul(buf, len, "r1" RT_NUL "aaa");
        record_decode_receipt(buf, len, &res);
        free(buf);
        snprintf(want, sizeof want, "receipt field %s holds U+0000", RECEIPT_IDS[i]);
        CHECK_EQ_INT(res.status, RECORD_ERROR);
        CHECK_EQ_STR(record_error_kind_name(res.error_kind), "invalid_string");
        CHECK(res.purchase == NULL);
        CHECKF(strstr(res.error, want) != NULL, "error \"%s\" lacks \"%s\"", res.error, want);
    }
}

TEST(invalid_utf8_in_every_id_field_is_an_error) {
    static const char *const bad[] = {"r\xff", "caf\xc3", "\xed\xa0\x80", "\xc0\xaf",
                                      "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof RECEIPT_IDS / sizeof *RECEIPT_IDS; i++)
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
            rt_receipt r;
            char want[96];
            rt_receipt_init(&r);
            set_receipt_id(&r, i, bad[k]);
            snprintf(want, sizeof want, "receipt field %s is not valid UTF-8", RECEIPT_IDS[i]);
            expect_error(&r, want);
        }
}

/* Not only ids: any string field, also one the worker does not use. */
TEST(nul_in_other_string_fields_is_an_error) {
    rt_receipt r;
    record_result res;
    size_t len;
    rt_receipt_init(&r);
    r.retailer.name = "ACME" RT_NUL "#12";
    uint8_t *buf = rt_pack_receipt(&r, &len);
    rt_put_nul(buf, len, "ACME" RT_NUL "#12");
    record_decode_receipt(buf, len, &res);
    free(buf);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "receipt field retailer.name holds U+0000") != NULL);
    rt_receipt_init(&r);
    r.items[1].barcode = "\x80";
    expect_error(&r, "receipt field items.barcode is not valid UTF-8");
}

TEST(id_length_limit) {
    char *max = rt_long_id(8156), *over = rt_long_id(8157);
    for (size_t i = 0; i < sizeof RECEIPT_IDS / sizeof *RECEIPT_IDS; i++) {
        rt_receipt r;
        record_result res;
        char want[96];
        rt_receipt_init(&r);
        set_receipt_id(&r, i, max);
        decode(&r, &res);
        CHECKF(res.status == RECORD_OK, "%s: %s", RECEIPT_IDS[i], res.error);
        record_purchase_free(res.purchase);
        set_receipt_id(&r, i, over);
        snprintf(want, sizeof want, "id too long: receipt field %s has 8157 bytes (at most "
                 "8156", RECEIPT_IDS[i]);
        expect_error(&r, want);
        decode(&r, &res);
        CHECK_EQ_STR(record_error_kind_name(res.error_kind), "id_too_long");
    }
    free(max);
    free(over);
}

TEST(valid_utf8_passes) {
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    r.items[0].description = "Caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\xba";
    decode(&r, &res);
    CHECK_EQ_INT(res.status, RECORD_OK);
    CHECK_EQ_STR(res.purchase->items[0].description, r.items[0].description);
    record_purchase_free(res.purchase);
}

TEST(timestamp_out_of_range) {
    rt_receipt r;
    rt_receipt_init(&r);
    r.ts.nanos = 1000000000;
    expect_error(&r, "purchased_at is outside the Timestamp range");
    rt_receipt_init(&r);
    r.ts.seconds = INT64_C(253402300800);  /* year 10000 */
    expect_error(&r, "purchased_at");
    rt_receipt_init(&r);
    r.ts.nanos = -1;
    expect_error(&r, "purchased_at");
}

TEST(error_names_the_id_safely) {
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    r.msg.receipt_id = "r\n[SUCCESS] forged";
    r.msg.user_id = "";
    decode(&r, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strchr(res.error, '\n') == NULL);
    CHECK(strstr(res.error, "r?[SUCCESS] forged") != NULL);
}

TEST(oversize_value_is_refused) {
    size_t big = ((size_t)16 << 20) + 1;
    uint8_t *buf = calloc(1, big);
    record_result res;
    record_decode_receipt(buf, big, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK(strstr(res.error, "exceeds") != NULL);
    free(buf);
}

TEST(reason_names) {
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_DIGITAL), "digital");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_STATUS), "status");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_SOURCE), "source");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_TYPE), "type");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_NO_FIDOS), "no_fidos");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_NOT_IN_ROLLOUT), "not_in_rollout");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_DUPLICATE), "duplicate");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_NONE), "none");
    CHECK_EQ_STR(record_reason_name(RECORD_REASON_COUNT), "unknown");
    CHECK_EQ_STR(record_reason_name((record_reason)-1), "unknown");
}

TEST(purchase_free_null) {
    record_purchase_free(NULL);
}

/* A purchase's copies come from the pool allocated with it; what does not fit goes to the
 * heap, and record_purchase_free frees exactly those (LeakSanitizer and AddressSanitizer
 * catch a leak or a free of a pool address). */
TEST(purchase_pool_overflow_goes_to_the_heap) {
    record_purchase *p = record_purchase_new(40);
    CHECK(p != NULL);
    CHECK_EQ_INT(p->fido_count, -1);
    p->items = record_items_new(p, 1);               /* 48 bytes: the heap */
    CHECK(p->items != NULL && p->items[0].fido == NULL);
    p->nitems = 1;
    char big[100];
    memset(big, 'u', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_EQ_INT(record_dup(p, &p->id, "r-1", 0), 0);          /* the pool */
    CHECK_EQ_INT(record_dup(p, &p->user_id, big, 0), 0);       /* the heap */
    CHECK_EQ_INT(record_dup_prefixed(p, &p->purchase_id, "receipt:", "r-1"), 0);   /* the pool */
    CHECK_EQ_INT(record_dup(p, &p->items[0].fido, "F1", 1), 0);
    CHECK_EQ_INT(record_dup(p, &p->currency, "", 1), 0);
    CHECK(p->currency == NULL);
    CHECK_EQ_STR(p->id, "r-1");
    CHECK_EQ_STR(p->user_id, big);
    CHECK_EQ_STR(p->purchase_id, "receipt:r-1");
    CHECK_EQ_STR(p->items[0].fido, "F1");
    record_purchase_free(p);
}

/* The longest ids a receipt may carry are copied three times (id, receipt_id, purchase_id)
 * and come through whole. */
TEST(longest_ids_copied_whole) {
    static char rid[RECORD_ID_MAX_BYTES + 1], uid[RECORD_ID_MAX_BYTES + 1];
    memset(rid, 'r', RECORD_ID_MAX_BYTES);
    memset(uid, 'u', RECORD_ID_MAX_BYTES);
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    r.msg.receipt_id = rid;
    r.msg.user_id = uid;
    decode(&r, &res);
    CHECKF(res.status == RECORD_OK, "error: %s", res.error);
    CHECK_EQ_STR(res.purchase->id, rid);
    CHECK_EQ_STR(res.purchase->receipt_id, rid);
    CHECK_EQ_STR(res.purchase->user_id, uid);
    CHECK(strncmp(res.purchase->purchase_id, "receipt:", 8) == 0);
    CHECK_EQ_STR(res.purchase->purchase_id + 8, rid);
    record_purchase_free(res.purchase);
}

TEST(large_receipt_decodes_across_arena_chunks) {
    /* 600 items unpack into far more than the allocator's 4 KiB on the stack and its first
     * 16 KiB heap chunk: every item must come through whole, and every chunk be released
     * (LeakSanitizer checks; AddressSanitizer checks the red zones between blocks). */
    enum { N = 600 };
    static Receipts__V1__ReceiptItem items[N];
    static Receipts__V1__ReceiptItem *ptrs[N];
    static char fidos[N][16], descs[N][48];
    rt_receipt r;
    record_result res;
    rt_receipt_init(&r);
    for (int i = 0; i < N; i++) {
        items[i] = r.items[0];
        snprintf(fidos[i], sizeof fidos[i], "F%05d", i);
        snprintf(descs[i], sizeof descs[i], "ITEM NUMBER %d WITH A LONGER TITLE", i);
        items[i].line_number = i + 1;
        items[i].fido = fidos[i];
        items[i].description = descs[i];
        ptrs[i] = &items[i];
    }
    r.msg.n_items = N;
    r.msg.items = ptrs;
    decode(&r, &res);
    CHECKF(res.status == RECORD_OK, "error: %s", res.error);
    CHECK_EQ_INT(res.purchase->nitems, N);
    CHECK_EQ_STR(res.purchase->items[0].fido, "F00000");
    CHECK_EQ_STR(res.purchase->items[N - 1].fido, "F00599");
    CHECK_EQ_STR(res.purchase->items[N - 1].description, "ITEM NUMBER 599 WITH A LONGER TITLE");
    CHECK_EQ_INT(res.purchase->items[N - 1].line, N);
    record_purchase_free(res.purchase);
}

TEST(allocation_budget_stops_amplification) {
    /* 8 Mi empty items (2 wire bytes each): protobuf-c would allocate a ~90-byte struct
     * and a pointer per item, about 700 MiB for 16 MiB of input. The budget refuses it,
     * and whatever protobuf-c allocated before is given back (LeakSanitizer checks). */
    size_t n = (size_t)8 << 20, len = 2 * n;
    uint8_t *buf = malloc(len);
    record_result res;
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = 0x4a;                 /* field 9 (items), length-delimited */
        buf[2 * i + 1] = 0x00;             /* empty ReceiptItem */
    }
    record_decode_receipt(buf, len, &res);
    CHECK_EQ_INT(res.status, RECORD_ERROR);
    CHECK_EQ_STR(res.error, "invalid protobuf: receipt needs more memory than allowed to "
                 "decode");
    free(buf);
}
