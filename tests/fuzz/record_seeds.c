/* tests/fuzz/record_seeds.c: writes the seed corpora of the record fuzzers.
 *
 * Not a fuzz target: a small program, run by hand when the schemas or the test records
 * change, that packs record_test_util.h's known-good records and a variant per filter and
 * frame form, one file each, into tests/fuzz/record_receipt/ and tests/fuzz/record_factoid/
 * (the committed seeds are its output). From the repository root, after a build:
 *
 *   g=build/gen; cc -std=gnu11 -D_GNU_SOURCE -Isrc -I$g -Itests/unit tests/fuzz/record_seeds.c \
 *      $g/receipts/v1/processed_receipt_event.pb-c.c $g/factoids/v1/factoid.pb-c.c \
 *      $g/google/protobuf/timestamp.pb-c.c -lprotobuf-c -o build/record_seeds && \
 *      build/record_seeds
 */
#include <stdio.h>
#include <stdlib.h>

#include "record_test_util.h"

static void write_file(const char *dir, const char *name, const uint8_t *buf, size_t len) {
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void receipt_seed(const rt_receipt *r, const char *name) {
    size_t len;
    uint8_t *buf = rt_pack_receipt(r, &len);
    write_file("tests/fuzz/record_receipt", name, buf, len);
    free(buf);
}

static void factoid_seed(const rt_factoid *f, const uint8_t *prefix, size_t plen,
                         const char *name) {
    size_t len;
    uint8_t *buf = rt_pack_framed(&f->msg.base, prefix, plen, &len);
    write_file("tests/fuzz/record_factoid", name, buf, len);
    free(buf);
}

/* A string holding U+0000 (the wire-level check's case): marked, packed, then patched. */
static void receipt_seed_nul(rt_receipt *r, const char *name) {
    size_t len;
    r->msg.receipt_id = "r1" RT_NUL "aaa";
    uint8_t *buf = rt_pack_receipt(r, &len);
    rt_put_nul(buf, len, "r1" RT_NUL "aaa");
    write_file("tests/fuzz/record_receipt", name, buf, len);
    free(buf);
}

static void factoid_seed_nul(rt_factoid *f, const char *name) {
    size_t len;
    f->items[3].fido = "F9" RT_NUL "x";
    uint8_t *buf = rt_pack_factoid(f, &len);
    rt_put_nul(buf, len, "F9" RT_NUL "x");
    write_file("tests/fuzz/record_factoid", name, buf, len);
    free(buf);
}

static void receipts(void) {
    rt_receipt r;
    rt_receipt_init(&r);
    receipt_seed(&r, "ok");
    r.msg.digital_receipt_data = &r.digital;
    r.digital.source = "EMAIL";
    receipt_seed(&r, "digital");
    rt_receipt_init(&r);
    r.msg.status = RECEIPTS__V1__RECEIPT_STATUS__RECEIPT_STATUS_PENDING;
    receipt_seed(&r, "pending");
    rt_receipt_init(&r);
    for (int i = 0; i < RT_NITEMS; i++) r.items[i].fido = "";
    receipt_seed(&r, "no_fidos");
    rt_receipt_init(&r);
    r.msg.retailer = NULL;
    r.msg.purchased_at = NULL;
    r.msg.currency = "";
    r.msg.n_items = 1;
    r.item_ptrs[0] = &r.items[3];
    r.items[3].description = "Caf\xc3\xa9 \xf0\x9f\x8d\xba";
    receipt_seed(&r, "minimal_utf8");
    rt_receipt_init(&r);
    receipt_seed_nul(&r, "nul_in_id");
}

static void factoids(void) {
    static const uint8_t long_form[] = {0x00, 0x00, 0x00, 0x01, 0x2c, 0x02, 0x00};
    static const uint8_t path_one[] = {0x00, 0x00, 0x00, 0x01, 0x2c, 0x02, 0x02};
    rt_factoid f;
    rt_factoid_init(&f);
    factoid_seed(&f, rt_frame0, sizeof rt_frame0, "ok");
    factoid_seed(&f, long_form, sizeof long_form, "ok_long_path");
    factoid_seed(&f, NULL, 0, "ok_unframed");          /* the __value_schema_id case */
    factoid_seed(&f, path_one, sizeof path_one, "path_one");
    f.order.fido_count = 5;
    factoid_seed(&f, rt_frame0, sizeof rt_frame0, "fido_count_mismatch");
    rt_factoid_init(&f);
    f.msg.type = "ORDER_PENDING";
    factoid_seed(&f, rt_frame0, sizeof rt_frame0, "order_pending");
    rt_factoid_init(&f);
    f.msg.source = FACTOIDS__V1__FACTOID_SOURCE__FACTOID_SOURCE_PLAY;
    f.msg.type = "MILESTONE_COMPLETED";
    f.msg.payload_case = FACTOIDS__V1__FACTOID__PAYLOAD_PLAY_ACTIVITY;
    f.msg.play_activity = &f.play;
    factoid_seed(&f, rt_frame0, sizeof rt_frame0, "play");
    rt_factoid_init(&f);
    f.msg.payload_case = FACTOIDS__V1__FACTOID__PAYLOAD__NOT_SET;
    factoid_seed(&f, rt_frame0, sizeof rt_frame0, "no_shop_order");
    rt_factoid_init(&f);
    factoid_seed_nul(&f, "nul_in_fido");
}

int main(void) {
    receipts();
    factoids();
    return 0;
}
