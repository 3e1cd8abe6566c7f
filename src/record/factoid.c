/* src/record/factoid.c: a factoid-stream value to a purchase, a skip or an error.
 *
 * The value is a factoids.v1.Factoid in the Confluent wire format (confluent.c), or the bare
 * message when the schema id came in the __value_schema_id header. Steps, each ending the
 * record when it decides:
 *
 *   1. the frame: its message path must be [0], Factoid being the file's first message
 *   2. decode in one pass into the bounded arena   -> error "invalid protobuf"
 *      (wire.c), every string field, as the wire has it, strict UTF-8 without U+0000
 *   3. factoid_id and user_id non-empty, ids within RECORD_ID_MAX_BYTES -> error
 *   4. contract §2 filters, in order: source, type, no_fidos -> skip
 *      (a SHOP ORDER_FINALIZED is flagged for the "Shop order received" line even when
 *      it is then skipped; its fido_count is compared with the items)
 *   5. copy into a record_purchase                  -> OK (or error on a bad field)
 *
 * An order line's total_price_cents is quantity x unit_price_cents. When that product does
 * not fit int64 the record is an error, not a saturated number: only a corrupt producer
 * writes such prices, and a made-up total in the graph would be worse than no purchase.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "factoids/v1/factoid.pb-c.h"
#include "record/record_internal.h"

typedef Factoids__V1__Factoid record_factoid_msg;
typedef Factoids__V1__ShopOrder record_order_msg;

#define RECORD_ORDER_FINALIZED "ORDER_FINALIZED"
#define RECORD_FACTOID_MAX_PATH 16

/* Step 1: find the protobuf payload and the schema id. Returns -1 after failing out. */
static int record_factoid_frame(const uint8_t *buf, size_t len, int32_t header_schema_id,
                                size_t *payload_off, record_result *out) {
    int32_t path[RECORD_FACTOID_MAX_PATH];
    size_t path_len = 0;
    int32_t schema_id = -1;
    if (header_schema_id >= 0) {           /* header mode: the payload has no prefix */
        out->schema_id = header_schema_id;
        *payload_off = 0;
        return 0;
    }
    if (record_parse_confluent_frame(buf, len, &schema_id, path, RECORD_FACTOID_MAX_PATH,
                                     &path_len, payload_off, out->error,
                                     sizeof out->error) < 0) {
        out->status = RECORD_ERROR;
        return -1;
    }
    out->schema_id = schema_id;
    if (path_len != 1 || path[0] != 0) {
        record_fail(out, "confluent frame: message path of schema %d is not [0] (%zu "
                    "indexes, first %d): not a factoids.v1.Factoid", (int)schema_id,
                    path_len, (int)path[0]);
        return -1;
    }
    return 0;
}

static int record_factoid_check_ids(const record_factoid_msg *m, record_result *out) {
    char fid[RECORD_SAFE_MAX + 1];
    if (record_str_empty(m->factoid_id)) {
        record_fail(out, "missing ids: factoid has an empty factoid_id");
        return -1;
    }
    if (record_str_empty(m->user_id)) {   /* the id made safe to print only when it is */
        record_safe_copy(fid, sizeof fid, m->factoid_id);
        record_fail(out, "missing ids: factoid %s has an empty user_id", fid);
        return -1;
    }
    return record_check_id_len(out, "factoid", "factoid_id", m->factoid_id) < 0 ||
                   record_check_id_len(out, "factoid", "user_id", m->user_id) < 0
               ? -1 : 0;
}

static size_t record_order_fidos(const record_order_msg *o) {
    size_t n = 0;
    for (size_t i = 0; i < o->n_items; i++)
        if (!record_str_empty(o->items[i]->fido)) n++;
    return n;
}

static const char *record_source_name(Factoids__V1__FactoidSource s, char *buf, size_t len) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&factoids__v1__factoid_source__descriptor, s);
    if (v) return v->name;
    snprintf(buf, len, "%d", (int)s);    /* an enum value newer than our schema */
    return buf;
}

/* Step 4. Returns 1 when out is now a skip, -1 after failing out, 0 to go on. */
static int record_factoid_filter(const record_factoid_msg *m, record_result *out) {
    const record_order_msg *o;
    char num[16];
    size_t nfidos = 0;
    if (m->source != FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_SHOP) {
        record_skip(out, RECORD_REASON_SOURCE, record_source_name(m->source, num, sizeof num));
        return 1;
    }
    if (strcmp(m->type, RECORD_ORDER_FINALIZED) != 0) {
        record_skip(out, RECORD_REASON_TYPE, m->type);
        return 1;
    }
    out->shop_order_finalized = 1;
    o = m->payload_case == FACTOIDS__V1__FACTOID__PAYLOAD_SHOP_ORDER ? m->shop_order : NULL;
    if (o) {
        record_safe_copy(out->order_id, sizeof out->order_id, o->order_id);
        out->fido_count = o->fido_count;
        nfidos = record_order_fidos(o);
        out->fido_count_mismatch = (int64_t)nfidos != (int64_t)o->fido_count;
    }
    if (nfidos == 0) {
        /* The order id as detail: the skip line then names the order it is about. */
        record_skip(out, RECORD_REASON_NO_FIDOS, o ? o->order_id : NULL);
        return 1;
    }
    if (record_str_empty(o->order_id)) {
        char fid[RECORD_SAFE_MAX + 1];
        record_safe_copy(fid, sizeof fid, m->factoid_id);
        record_fail(out, "missing ids: shop order of factoid %s has an empty order_id", fid);
        return -1;
    }
    return 0;
}

static int record_order_item(const Factoids__V1__ShopOrderItem *it, record_item *dst,
                             record_result *out) {
    if (record_check_id_len(out, "factoid", "shop_order.items.fido", it->fido) < 0)
        return -1;
    if (__builtin_mul_overflow((int64_t)it->quantity, it->unit_price_cents,
                               &dst->total_price_cents)) {
        record_fail(out, "shop order line %d: quantity x unit_price_cents overflows int64",
                    (int)it->line_number);
        return -1;
    }
    dst->line = it->line_number;
    dst->quantity = (double)it->quantity;
    dst->unit_price_cents = it->unit_price_cents;
    return 0;
}

/* Copy the order lines that carry a fido. Returns -1 after failing out. */
static int record_order_items(const record_order_msg *o, record_purchase *p,
                              record_result *out) {
    p->items = record_items_new(p, o->n_items);   /* n_items >= 1: some has a fido */
    if (!p->items) goto oom;
    for (size_t i = 0; i < o->n_items; i++) {
        const Factoids__V1__ShopOrderItem *it = o->items[i];
        record_item *dst = &p->items[p->nitems];
        if (record_str_empty(it->fido)) continue;
        if (record_order_item(it, dst, out) < 0) return -1;
        p->nitems++;                       /* counted now, so free releases what follows */
        if (record_dup(p, &dst->fido, it->fido, 1) < 0 ||
            record_dup(p, &dst->description, it->title, 1) < 0)
            goto oom;
    }
    return 0;
oom:
    record_fail(out, "out of memory copying shop order items");
    return -1;
}

/* Step 5. Returns the purchase, or NULL after failing out. */
static record_purchase *record_factoid_purchase(const record_factoid_msg *m, size_t len,
                                                record_result *out) {
    const record_order_msg *o = m->shop_order;     /* the filter made sure it is set */
    record_purchase *p = record_purchase_new(
        record_pool_size(len, o->n_items, strlen(m->factoid_id) + strlen(o->order_id)));
    if (!p) goto oom;
    p->source = RECORD_SOURCE_SHOP_ORDER;
    p->total_cents = o->total_cents;
    p->fido_count = o->fido_count;
    if (record_check_id_len(out, "factoid", "shop_order.order_id", o->order_id) < 0 ||
        record_check_id_len(out, "factoid", "shop_order.retailer_id", o->retailer_id) < 0 ||
        record_set_timestamp(p, m->occurred_at, "occurred_at", out) < 0 ||
        record_order_items(o, p, out) < 0)
        goto fail;
    if (record_dup(p, &p->id, m->factoid_id, 0) < 0 ||
        record_dup(p, &p->factoid_id, m->factoid_id, 0) < 0 ||
        record_dup(p, &p->order_id, o->order_id, 0) < 0 ||
        record_dup_prefixed(p, &p->purchase_id, "order:", o->order_id) < 0 ||
        record_dup(p, &p->user_id, m->user_id, 0) < 0 ||
        record_dup(p, &p->retailer_id, o->retailer_id, 1) < 0 ||
        record_dup(p, &p->currency, o->currency, 1) < 0)
        goto oom;
    return p;
oom:
    record_fail(out, "out of memory building the shop order purchase");
fail:
    record_purchase_free(p);
    return NULL;
}

void record_decode_factoid(const void *value, size_t len, int32_t header_schema_id,
                           record_result *out) {
    static const uint8_t empty[1];
    const uint8_t *buf = value ? value : empty;
    size_t off = 0;
    record_alloc alloc;
    record_factoid_msg *m;
    record_result_init(out);
    if (!value && len) {
        record_fail(out, "factoid value is NULL with length %zu", len);
        return;
    }
    if (len > RECORD_MAX_VALUE_LEN) {
        record_fail(out, "factoid value of %zu bytes exceeds the %zu-byte limit", len,
                    RECORD_MAX_VALUE_LEN);
        return;
    }
    if (record_factoid_frame(buf, len, header_schema_id, &off, out) < 0) return;
    record_alloc_init(&alloc, RECORD_ALLOC_BUDGET);
    m = record_unpack(&factoids__v1__factoid__descriptor, buf + off, len - off, &alloc,
                      "factoid", out);
    if (m && record_factoid_check_ids(m, out) == 0 && record_factoid_filter(m, out) == 0) {
        out->purchase = record_factoid_purchase(m, len, out);
        if (out->purchase) out->status = RECORD_OK;
    }
    record_alloc_release(&alloc);
}
