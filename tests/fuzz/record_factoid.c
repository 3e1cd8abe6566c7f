/* tests/fuzz/record_factoid.c: libFuzzer target for the Confluent frame and
 * record_decode_factoid.
 *
 * Each input is decoded twice: as a framed value (no schema-id header) and as an unframed
 * one (schema id from the header), so both of the consumer's paths see every input; and
 * its first bytes go through record_parse_confluent_frame with a small path buffer.
 * Beyond the sanitizers, the target checks the result's promises: a purchase exactly when
 * OK, order lines priced quantity x unit, absent values as NULL, the shop-order flag on
 * every OK order, and messages that are one printable line.
 *
 *   make fuzz-record_factoid && build/fuzz/record_factoid tests/fuzz/record_factoid/
 * Seeds: written by tests/fuzz/record_seeds.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "record/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) __builtin_trap();
}

static void check_optional(const char *s) {
    if (s && !s[0]) __builtin_trap();      /* absent is NULL, never "" */
}

static void check_purchase(const record_purchase *p) {
    if (p->source != RECORD_SOURCE_SHOP_ORDER || p->receipt_id) __builtin_trap();
    if (!p->id || !p->id[0] || !p->user_id || !p->user_id[0]) __builtin_trap();
    if (strcmp(p->id, p->factoid_id) != 0 || !p->order_id || !p->order_id[0])
        __builtin_trap();
    if (strncmp(p->purchase_id, "order:", 6) != 0 || strcmp(p->purchase_id + 6, p->order_id))
        __builtin_trap();
    if (p->nitems == 0) __builtin_trap();
    check_optional(p->retailer_id);
    check_optional(p->currency);
    for (size_t i = 0; i < p->nitems; i++) {
        const record_item *it = &p->items[i];
        if (!it->fido || !it->fido[0]) __builtin_trap();
        if ((int64_t)it->quantity * it->unit_price_cents != it->total_price_cents)
            __builtin_trap();
        check_optional(it->description);
    }
}

static void check_result(const record_result *res, int32_t header_schema_id) {
    if ((res->status == RECORD_OK) != (res->purchase != NULL)) __builtin_trap();
    if (header_schema_id >= 0 && res->schema_id != header_schema_id) __builtin_trap();
    if (res->status == RECORD_OK) {
        if (!res->shop_order_finalized || res->schema_id < 0) __builtin_trap();
        check_purchase(res->purchase);
    } else if (res->status == RECORD_SKIP) {
        if (res->reason != RECORD_REASON_SOURCE && res->reason != RECORD_REASON_TYPE &&
            res->reason != RECORD_REASON_NO_FIDOS)
            __builtin_trap();
    } else if (res->status != RECORD_ERROR || !res->error[0]) {
        __builtin_trap();
    }
    check_printable(res->detail);
    check_printable(res->error);
    check_printable(res->order_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int32_t header_ids[] = {-1, 7};
    int32_t sid, path[2];
    size_t path_len, off;
    char err[64];
    for (size_t i = 0; i < sizeof header_ids / sizeof header_ids[0]; i++) {
        record_result res;
        record_decode_factoid(data, size, header_ids[i], &res);
        check_result(&res, header_ids[i]);
        record_purchase_free(res.purchase);
    }
    /* A small path buffer and a small error buffer: the parser's own bounds. */
    if (record_parse_confluent_frame(data, size, &sid, path, 2, &path_len, &off, err,
                                     sizeof err) == 0) {
        if (off > size || path_len == 0 || path_len > 2 || sid < 0) __builtin_trap();
    } else if (!err[0]) {
        __builtin_trap();
    }
    return 0;
}
