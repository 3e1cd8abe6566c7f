/* tests/unit/record_test_util.h: valid records for the record module's tests and seeds.
 *
 * A test starts from a known-good message (rt_receipt_init / rt_factoid_init: every field
 * set, two lines with the same fido, one line without), changes the one field it is about,
 * and packs it with protobuf-c's generated code, as a producer would. The same helpers
 * write the fuzzers' seed corpora (tests/fuzz/record_seeds.c).
 *
 * The structs hold the whole message tree by value and point into themselves, so a test
 * keeps one on its stack and never frees anything but the packed buffer.
 */
#ifndef CGW_RECORD_TEST_UTIL_H
#define CGW_RECORD_TEST_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "factoids/v1/factoid.pb-c.h"
#include "receipts/v1/processed_receipt_event.pb-c.h"

#define RT_NITEMS 4

typedef struct rt_receipt {
    Receipts__V1__ProcessedReceiptEvent msg;
    Google__Protobuf__Timestamp ts;
    Receipts__V1__ReceiptRetailer retailer;
    Receipts__V1__DigitalReceiptData digital;
    Receipts__V1__ReceiptItem items[RT_NITEMS];
    Receipts__V1__ReceiptItem *item_ptrs[RT_NITEMS];
} rt_receipt;

typedef struct rt_factoid {
    Factoids__V1__Factoid msg;
    Google__Protobuf__Timestamp ts;
    Factoids__V1__ShopOrder order;
    Factoids__V1__PlayActivity play;
    Factoids__V1__ShopOrderItem items[RT_NITEMS];
    Factoids__V1__ShopOrderItem *item_ptrs[RT_NITEMS];
} rt_factoid;

/* A FINISHED paper receipt: lines 1 (F1), 2 (no fido), 3 (F1 again, no description),
 * 4 (F2). Not digital: r->digital is ready for a test to point msg.digital_receipt_data at. */
static inline void rt_receipt_init(rt_receipt *r) {
    static const Receipts__V1__ReceiptItem item_init = RECEIPTS__V1__RECEIPT_ITEM__INIT;
    static const struct { int32_t line; const char *fido, *desc; double qty; int64_t unit; }
        lines[RT_NITEMS] = {
            {1, "F1", "COLA 12PK", 2.0, 599},
            {2, "", "BAG FEE", 1.0, 10},
            {3, "F1", "", 1.5, 599},
            {4, "F2", "CHIPS", 1.0, 349},
        };
    *r = (rt_receipt){
        .msg = RECEIPTS__V1__PROCESSED_RECEIPT_EVENT__INIT,
        .ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
        .retailer = RECEIPTS__V1__RECEIPT_RETAILER__INIT,
        .digital = RECEIPTS__V1__DIGITAL_RECEIPT_DATA__INIT,
    };
    r->ts.seconds = 1700000000;
    r->ts.nanos = 250000000;
    r->retailer.retailer_id = "R1";
    r->retailer.name = "ACME FOODS #12";
    r->msg.receipt_id = "rcpt-1";
    r->msg.user_id = "user-1";
    r->msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_FINISHED;
    r->msg.purchased_at = &r->ts;
    r->msg.retailer = &r->retailer;
    r->msg.total_cents = 2556;
    r->msg.currency = "USD";
    for (int i = 0; i < RT_NITEMS; i++) {
        r->items[i] = item_init;
        r->items[i].line_number = lines[i].line;
        r->items[i].fido = (char *)lines[i].fido;
        r->items[i].description = (char *)lines[i].desc;
        r->items[i].quantity = lines[i].qty;
        r->items[i].unit_price_cents = lines[i].unit;
        r->items[i].total_price_cents = (int64_t)(lines[i].qty * (double)lines[i].unit);
        r->item_ptrs[i] = &r->items[i];
    }
    r->msg.n_items = RT_NITEMS;
    r->msg.items = r->item_ptrs;
}

/* A SHOP ORDER_FINALIZED factoid: lines 1 (F1 x2), 2 (no fido), 3 (F1 x1), 4 (F9 x3);
 * fido_count 3, as the producer counts. */
static inline void rt_factoid_init(rt_factoid *f) {
    static const Factoids__V1__ShopOrderItem item_init = FACTOIDS__V1__SHOP_ORDER_ITEM__INIT;
    static const struct { int32_t line; const char *fido, *title; int32_t qty; int64_t unit; }
        lines[RT_NITEMS] = {
            {1, "F1", "Cola 12pk", 2, 599},
            {2, "", "Gift wrap", 1, 150},
            {3, "F1", "", 1, 599},
            {4, "F9", "Chips", 3, 349},
        };
    *f = (rt_factoid){
        .msg = FACTOIDS__V1__FACTOID__INIT,
        .ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
        .order = FACTOIDS__V1__SHOP_ORDER__INIT,
        .play = FACTOIDS__V1__PLAY_ACTIVITY__INIT,
    };
    f->ts.seconds = 1710000000;
    f->ts.nanos = 7;
    f->msg.factoid_id = "fact-1";
    f->msg.user_id = "user-2";
    f->msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_SHOP;
    f->msg.type = "ORDER_FINALIZED";
    f->msg.occurred_at = &f->ts;
    f->msg.payload_case = FACTOIDS__V1__FACTOID__PAYLOAD_SHOP_ORDER;
    f->msg.shop_order = &f->order;
    f->order.order_id = "ord-9";
    f->order.retailer_id = "R7";
    f->order.total_cents = 3394;
    f->order.currency = "EUR";
    f->order.fido_count = 3;
    for (int i = 0; i < RT_NITEMS; i++) {
        f->items[i] = item_init;
        f->items[i].line_number = lines[i].line;
        f->items[i].fido = (char *)lines[i].fido;
        f->items[i].title = (char *)lines[i].title;
        f->items[i].quantity = lines[i].qty;
        f->items[i].unit_price_cents = lines[i].unit;
        f->item_ptrs[i] = &f->items[i];
    }
    f->order.n_items = RT_NITEMS;
    f->order.items = f->item_ptrs;
    f->play.game_id = "g1";
}

/* Pack any message into a fresh buffer (free() it); *len its size. */
static inline uint8_t *rt_pack(const ProtobufCMessage *m, size_t *len) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) abort();
    *len = protobuf_c_message_pack(m, buf);
    return buf;
}

/* prefix (the frame: magic, schema id, path bytes) followed by the packed message. */
static inline uint8_t *rt_pack_framed(const ProtobufCMessage *m, const uint8_t *prefix,
                                      size_t plen, size_t *len) {
    size_t n;
    uint8_t *body = rt_pack(m, &n);
    uint8_t *buf = malloc(plen + n + 1);
    if (!buf) abort();
    if (plen) memcpy(buf, prefix, plen);
    memcpy(buf + plen, body, n);
    free(body);
    *len = plen + n;
    return buf;
}

/* The usual frame: magic 0, schema id 0x0000012c (300), path [0] as the byte 0x00. */
static const uint8_t rt_frame0[] = {0x00, 0x00, 0x00, 0x01, 0x2c, 0x00};
#define RT_SCHEMA_ID 300

static inline uint8_t *rt_pack_factoid(const rt_factoid *f, size_t *len) {
    return rt_pack_framed(&f->msg.base, rt_frame0, sizeof rt_frame0, len);
}

static inline uint8_t *rt_pack_receipt(const rt_receipt *r, size_t *len) {
    return rt_pack(&r->msg.base, len);
}

/* protobuf-c packs C strings, so a string holding U+0000 is written by packing it with the
 * marker byte RT_NUL (DEL) instead and turning the markers of that string, found in the
 * packed bytes, into NULs. The marked string must occur once in the buffer. */
#define RT_NUL "\x7f"
static inline void rt_put_nul(uint8_t *buf, size_t len, const char *marked) {
    size_t n = strlen(marked);
    uint8_t *hit = (uint8_t *)memmem(buf, len, marked, n);
    if (!hit) abort();
    for (size_t i = 0; i < n; i++)
        if (hit[i] == 0x7f) hit[i] = 0;
}

/* A string of n bytes 'x' (free() it): for the id length limit. */
static inline char *rt_long_id(size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

#endif
