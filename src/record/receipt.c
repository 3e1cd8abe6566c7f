/* src/record/receipt.c: a ProcessedReceiptEvent value to a purchase, a skip or an error.
 *
 * The value is plain protobuf (no framing). Steps, each ending the record when it decides:
 *
 *   1. decode in one pass into the bounded arena   -> error "invalid protobuf"
 *      (wire.c), every string field, as the wire has it, strict UTF-8 without U+0000
 *   2. receipt_id and user_id non-empty, ids within RECORD_ID_MAX_BYTES -> error
 *   3. contract §2 filters, in its order: digital, status, no_fidos -> skip
 *   4. copy what the graph needs into a record_purchase -> OK (or error on a bad field)
 *
 * The decoded message is always released here; the purchase holds copies only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "receipts/v1/processed_receipt_event.pb-c.h"
#include "record/record_internal.h"

typedef Receipts__V1__ProcessedReceiptEvent record_receipt_msg;

static const char *record_receipt_status_name(Receipts__V1__ReceiptStatus st, char *buf,
                                              size_t len) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&receipts__v1__receipt_status__descriptor, st);
    if (v) return v->name;
    snprintf(buf, len, "%d", (int)st);   /* an enum value newer than our schema */
    return buf;
}

static int record_receipt_has_fido(const record_receipt_msg *m) {
    for (size_t i = 0; i < m->n_items; i++)
        if (!record_str_empty(m->items[i]->fido)) return 1;
    return 0;
}

/* Step 2: the ids every purchase needs. Returns -1 after failing out. */
static int record_receipt_check_ids(const record_receipt_msg *m, record_result *out) {
    char rid[RECORD_SAFE_MAX + 1];
    if (record_str_empty(m->receipt_id)) {
        record_fail(out, "missing ids: receipt has an empty receipt_id");
        return -1;
    }
    if (record_str_empty(m->user_id)) {   /* the id made safe to print only when it is */
        record_safe_copy(rid, sizeof rid, m->receipt_id);
        record_fail(out, "missing ids: receipt %s has an empty user_id", rid);
        return -1;
    }
    return record_check_id_len(out, "receipt", "receipt_id", m->receipt_id) < 0 ||
                   record_check_id_len(out, "receipt", "user_id", m->user_id) < 0
               ? -1 : 0;
}

/* Step 3. Returns 1 when out is now a skip. */
static int record_receipt_filter(const record_receipt_msg *m, record_result *out) {
    char num[16];
    if (m->digital_receipt_data) {
        record_skip(out, RECORD_REASON_DIGITAL, NULL);
        return 1;
    }
    if (m->status != RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_FINISHED) {
        record_skip(out, RECORD_REASON_STATUS,
                    record_receipt_status_name(m->status, num, sizeof num));
        return 1;
    }
    if (!record_receipt_has_fido(m)) {
        record_skip(out, RECORD_REASON_NO_FIDOS, NULL);
        return 1;
    }
    return 0;
}

/* Copy the items that carry a fido. Returns -1 after failing out. */
static int record_receipt_items(const record_receipt_msg *m, record_purchase *p,
                                record_result *out) {
    p->items = record_items_new(p, m->n_items);   /* n_items >= 1: some has a fido */
    if (!p->items) goto oom;
    for (size_t i = 0; i < m->n_items; i++) {
        const Receipts__V1__ReceiptItem *it = m->items[i];
        record_item *dst = &p->items[p->nitems];
        if (record_str_empty(it->fido)) continue;
        if (record_check_id_len(out, "receipt", "items.fido", it->fido) < 0) return -1;
        p->nitems++;                       /* counted now, so free releases what follows */
        dst->line = it->line_number;
        dst->quantity = it->quantity;
        dst->unit_price_cents = it->unit_price_cents;
        dst->total_price_cents = it->total_price_cents;
        if (record_dup(p, &dst->fido, it->fido, 1) < 0 ||
            record_dup(p, &dst->description, it->description, 1) < 0)
            goto oom;
    }
    return 0;
oom:
    record_fail(out, "out of memory copying receipt items");
    return -1;
}

/* Step 4. Returns the purchase, or NULL after failing out. */
static record_purchase *record_receipt_purchase(const record_receipt_msg *m, size_t len,
                                                record_result *out) {
    const char *retailer = m->retailer ? m->retailer->retailer_id : NULL;
    record_purchase *p = record_purchase_new(
        record_pool_size(len, m->n_items, 2 * strlen(m->receipt_id)));
    if (!p) goto oom;
    p->source = RECORD_SOURCE_RECEIPT;
    p->total_cents = m->total_cents;
    if (record_check_id_len(out, "receipt", "retailer.retailer_id", retailer) < 0 ||
        record_set_timestamp(p, m->purchased_at, "purchased_at", out) < 0 ||
        record_receipt_items(m, p, out) < 0)
        goto fail;
    if (record_dup(p, &p->id, m->receipt_id, 0) < 0 ||
        record_dup(p, &p->receipt_id, m->receipt_id, 0) < 0 ||
        record_dup_prefixed(p, &p->purchase_id, "receipt:", m->receipt_id) < 0 ||
        record_dup(p, &p->user_id, m->user_id, 0) < 0 ||
        record_dup(p, &p->retailer_id, retailer, 1) < 0 ||
        record_dup(p, &p->currency, m->currency, 1) < 0)
        goto oom;
    return p;
oom:
    record_fail(out, "out of memory building the receipt purchase");
fail:
    record_purchase_free(p);
    return NULL;
}

void record_decode_receipt(const void *value, size_t len, record_result *out) {
    static const uint8_t empty[1];
    record_alloc alloc;
    record_receipt_msg *m;
    record_result_init(out);
    if (!value && len) {
        record_fail(out, "receipt value is NULL with length %zu", len);
        return;
    }
    if (len > RECORD_MAX_VALUE_LEN) {
        record_fail(out, "receipt value of %zu bytes exceeds the %zu-byte limit", len,
                    RECORD_MAX_VALUE_LEN);
        return;
    }
    record_alloc_init(&alloc, RECORD_ALLOC_BUDGET);
    m = record_unpack(&receipts__v1__processed_receipt_event__descriptor,
                      value ? value : empty, len, &alloc, "receipt", out);
    if (m && record_receipt_check_ids(m, out) == 0 && record_receipt_filter(m, out) == 0) {
        out->purchase = record_receipt_purchase(m, len, out);
        if (out->purchase) out->status = RECORD_OK;
    }
    record_alloc_release(&alloc);
}
