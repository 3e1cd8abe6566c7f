/* src/record/record.h: from a Kafka record's bytes to a purchase, or to the reason it is
 * skipped, or to the error that makes it undecodable.
 *
 * Both consumers end in the same shape: a record_purchase, which the rest of the pipeline
 * (rollout, idempotency, enrichment, graph writing) handles without knowing which topic it
 * came from. Only decoding and filtering differ, so they live here, one function per topic.
 *
 * Receipts (contract §2, checks in this order): digital, status, no_fidos.
 * Factoids (contract §2, in this order): source, type, no_fidos. The factoid value is in the
 * Confluent wire format (0x00, int32 BE schema id, message-index path, protobuf); see
 * record_parse_confluent_frame().
 *
 * The rollout and duplicate checks come later in the pipeline, since they need the flag
 * snapshot and Valkey; their reasons are listed here so that every reason has one name.
 *
 * Ownership: a record_purchase owns all its strings; record_purchase_free() releases it.
 *
 * Guarantees of a RECORD_OK purchase: every string it holds is exactly what the wire says.
 * A string field anywhere in the value (used or not) that holds U+0000 or invalid UTF-8
 * makes the record an error naming the field (proto3 demands valid UTF-8, protobuf-c does
 * not check and would cut a string at its NUL, merging distinct ids; Bolt needs UTF-8).
 * Ids longer than Neo4j's index key limit allows (8156 bytes) are errors too. Timestamps
 * are within google.protobuf.Timestamp's range, and an order line whose quantity x unit
 * price overflows int64 makes the record an error rather than a saturated total. Values over 16 MiB, and values whose decoding would need
 * an unreasonable amount of memory, are errors too.
 */
#ifndef CGW_RECORD_H
#define CGW_RECORD_H

#include <stddef.h>
#include <stdint.h>

typedef enum record_source {
    RECORD_SOURCE_RECEIPT = 0, /* Purchase source "receipt", purchase_id "receipt:<id>" */
    RECORD_SOURCE_SHOP_ORDER   /* Purchase source "shop_order", purchase_id "order:<id>" */
} record_source;

/* Outcome of decoding and filtering one record. */
typedef enum record_status {
    RECORD_OK = 0,          /* a purchase to persist (subject to rollout and duplicates) */
    RECORD_SKIP,            /* deliberately skipped; see record_reason */
    RECORD_ERROR            /* undecodable: bad framing, unknown schema, invalid protobuf,
                               missing ids. Logged [ERROR], counted, offset committed. */
} record_status;

/* Skip reasons, in contract §2's words. Both consumers share the enum; each uses its own. */
typedef enum record_reason {
    RECORD_REASON_NONE = 0,
    RECORD_REASON_DIGITAL,         /* receipt: digital_receipt_data present */
    RECORD_REASON_STATUS,          /* receipt: status not FINISHED */
    RECORD_REASON_SOURCE,          /* factoid: source not SHOP */
    RECORD_REASON_TYPE,            /* factoid: type not ORDER_FINALIZED */
    RECORD_REASON_NO_FIDOS,        /* no item with a non-empty fido */
    RECORD_REASON_NOT_IN_ROLLOUT,  /* user not enabled by the rollout flag */
    RECORD_REASON_DUPLICATE,       /* idempotency cache holds the id */
    RECORD_REASON_COUNT
} record_reason;

/* "digital", "status", "source", "type", "no_fidos", "not_in_rollout", "duplicate". */
const char *record_reason_name(record_reason r);

typedef struct record_item {
    int32_t line;               /* line_number */
    char *fido;                 /* non-empty: only items with a fido are kept */
    double quantity;            /* receipts: double; orders: the int32 quantity */
    int64_t unit_price_cents;
    int64_t total_price_cents;  /* orders: quantity x unit price */
    char *description;          /* receipts: description; orders: title; NULL when empty */
} record_item;

typedef struct record_purchase {
    record_source source;
    char *id;                   /* receipt_id or factoid_id: the idempotency key */
    char *purchase_id;          /* "receipt:<receipt_id>" or "order:<order_id>" */
    char *user_id;
    char *retailer_id;          /* NULL when empty */
    char *receipt_id;           /* receipts only, else NULL */
    char *order_id;             /* orders only, else NULL */
    char *factoid_id;           /* orders only, else NULL */
    int64_t purchased_at_s;     /* receipt purchased_at / factoid occurred_at, UTC */
    int32_t purchased_at_ns;
    int has_purchased_at;       /* 0 when the timestamp is absent: property left absent */
    int64_t total_cents;
    char *currency;             /* NULL when empty */
    record_item *items;         /* items with a fido only, in record order */
    size_t nitems;
    int32_t fido_count;         /* orders: the producer's fido_count; receipts: -1 */
    char *pool_next, *pool_end; /* private (record.c): the decoders' copies come from a block
                                 * allocated with the purchase; free only what lies outside */
} record_purchase;

/* What kind of error a RECORD_ERROR is (the dead-letter reason). */
typedef enum record_error_kind {
    RECORD_ERR_UNDECODABLE = 0,    /* framing, protobuf, missing ids, out-of-range values */
    RECORD_ERR_INVALID_STRING,     /* a string field holds U+0000 or invalid UTF-8 */
    RECORD_ERR_ID_TOO_LONG         /* an id beyond RECORD_ID_MAX_BYTES */
} record_error_kind;

/* "undecodable", "invalid_string", "id_too_long". */
const char *record_error_kind_name(record_error_kind k);

/* The result of decoding one record. On RECORD_OK, purchase is set and owned by the caller.
 * On RECORD_SKIP, reason is set and detail may name e.g. the status (a copy, in detail).
 * On RECORD_ERROR, error holds a one-line message without record contents beyond ids. */
typedef struct record_result {
    record_status status;
    record_reason reason;
    record_purchase *purchase;
    char detail[128];           /* status name for RECORD_REASON_STATUS, type for _TYPE,
                                   source name for _SOURCE, order id for a factoid's
                                   _NO_FIDOS; printable ASCII, at most 64 bytes */
    char error[256];
    record_error_kind error_kind;  /* with RECORD_ERROR */
    /* Factoids: the record's schema id (from the frame or the header), -1 if none. */
    int32_t schema_id;
    /* Orders: fido_count disagreed with the items that carry a fido. */
    int fido_count_mismatch;
    /* Shop orders that are ORDER_FINALIZED (logged "[INFO] Shop order received"). */
    int shop_order_finalized;
    /* For that log line, also when the order is skipped (no purchase then): the order id
     * (printable ASCII, cut at 64 bytes; "" when absent) and the producer's fido_count
     * (-1 when the factoid has no shop_order). */
    char order_id[128];
    int32_t fido_count;
} record_result;

/* Decode and filter a ProcessedReceiptEvent value. */
void record_decode_receipt(const void *value, size_t len, record_result *out);

/* Decode and filter a factoid value: Confluent-framed, or unframed when header_schema_id
 * (from the __value_schema_id header) is >= 0. The schema id is reported in out->schema_id;
 * whether that id is acceptable is decided by the caller (schema registry / allowlist)
 * before or after, as it prefers. */
void record_decode_factoid(const void *value, size_t len, int32_t header_schema_id,
                           record_result *out);

/* Parse the Confluent wire-format frame: magic 0x00, int32 BE schema id, message-index
 * path as zigzag varints (count, then indexes; the path [0] written as the single byte
 * 0x00). On success returns 0 and sets *schema_id, *payload_off and the path (at most
 * max_path entries). Returns -1 with a message in err on any malformation. */
int record_parse_confluent_frame(const uint8_t *buf, size_t len, int32_t *schema_id,
                                 int32_t *path, size_t max_path, size_t *path_len,
                                 size_t *payload_off, char *err, size_t errlen);

void record_purchase_free(record_purchase *p);

#endif
