/* tests/fuzz/record_receipt.c: libFuzzer target for record_decode_receipt.
 *
 * Receipt values come straight from a Kafka topic the worker does not own; whatever the
 * bytes, decoding must end in a purchase, a skip or an error, without a crash, a leak or
 * undefined behaviour. Beyond the sanitizers, the target checks the result's promises:
 * a purchase exactly when OK, every kept item with a fido, absent values as NULL (never
 * ""), and messages that are one printable line (no record bytes leak into logs).
 *
 *   make fuzz-record_receipt && build/fuzz/record_receipt tests/fuzz/record_receipt/
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
    if (p->source != RECORD_SOURCE_RECEIPT || p->fido_count != -1) __builtin_trap();
    if (!p->id || !p->id[0] || !p->user_id || !p->user_id[0]) __builtin_trap();
    if (strcmp(p->id, p->receipt_id) != 0) __builtin_trap();
    if (strncmp(p->purchase_id, "receipt:", 8) != 0 || strcmp(p->purchase_id + 8, p->id))
        __builtin_trap();
    if (p->order_id || p->factoid_id || p->nitems == 0) __builtin_trap();
    check_optional(p->retailer_id);
    check_optional(p->currency);
    for (size_t i = 0; i < p->nitems; i++) {
        if (!p->items[i].fido || !p->items[i].fido[0]) __builtin_trap();
        check_optional(p->items[i].description);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    record_result res;
    record_decode_receipt(data, size, &res);
    if ((res.status == RECORD_OK) != (res.purchase != NULL)) __builtin_trap();
    switch (res.status) {
    case RECORD_OK:
        check_purchase(res.purchase);
        break;
    case RECORD_SKIP:
        if (res.reason != RECORD_REASON_DIGITAL && res.reason != RECORD_REASON_STATUS &&
            res.reason != RECORD_REASON_NO_FIDOS)
            __builtin_trap();
        break;
    case RECORD_ERROR:
        if (!res.error[0]) __builtin_trap();   /* every error says why */
        break;
    default:
        __builtin_trap();
    }
    check_printable(res.detail);
    check_printable(res.error);
    record_purchase_free(res.purchase);
    return 0;
}
