/* tests/fuzz/bolt_message.c: libFuzzer target for everything that parses server bytes.
 *
 * The input is treated as a byte stream from the server: it goes through the dechunker in
 * slices whose sizes come from the first input byte (so the fuzzer also explores headers
 * split across reads), and every complete message goes through the strict PackStream
 * decoder and the typed views. A small message cap keeps the fuzzer out of the (tested)
 * "message too large" path's memory use. Build: make fuzz-bolt_message; run:
 * build/fuzz/bolt_message tests/fuzz/bolt_message/
 */
#include <stddef.h>
#include <stdint.h>

#include "bolt/bolt.h"
#include "bolt/bolt_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_views(const bolt_value *v, int depth) {
    bolt_node n;
    bolt_relationship r;
    bolt_path p;
    bolt_temporal t;
    bolt_duration d;
    bolt_point pt;
    char buf[128];
    if (!v || depth > 8) return;
    bolt_value_as_node(v, &n);
    bolt_value_as_relationship(v, &r);
    bolt_value_as_path(v, &p);
    bolt_value_as_temporal(v, &t);
    bolt_value_as_duration(v, &d);
    bolt_value_as_point(v, &pt);
    bolt_value_format(v, buf, sizeof buf);
    for (size_t i = 0; i < bolt_value_size(v) && i < 16; i++) {
        touch_views(bolt_list_get(v, i), depth + 1);
        touch_views(bolt_struct_field(v, i), depth + 1);
        touch_views(bolt_map_value_at(v, i), depth + 1);
    }
}

static void check_message(const uint8_t *m, size_t len) {
    bolt_value *v = NULL;
    bolt_error err;
    size_t used = 0;
    if (bolt_unpack(m, len, &v, &used, &err) != BOLT_OK) return;
    if (used > len) __builtin_trap();
    /* The allocation-free checker must accept whatever the decoder accepts. */
    if (bolt_check_value(m, used, NULL) != BOLT_OK) __builtin_trap();
    touch_views(v, 0);
    /* Whatever decodes must re-encode and decode to an equal value. */
    bolt_enc *e = bolt_enc_new();
    bolt_value *back = NULL;
    if (e && bolt_enc_value(e, v) == BOLT_OK &&
        bolt_unpack(bolt_enc_data(e), bolt_enc_size(e), &back, NULL, NULL) == BOLT_OK &&
        !bolt_value_equal(v, back))
        __builtin_trap();
    /* The encoder's tracker vouches for the re-encoding, and the walk agrees with it. */
    if (e && !bolt_enc_error(e) &&
        (!bolt_enc_complete(e) || bolt_check_value(bolt_enc_data(e), bolt_enc_size(e), NULL)))
        __builtin_trap();
    bolt_value_free(back);
    bolt_enc_free(e);
    bolt_value_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    size_t slice = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    bolt_dechunker d;
    bolt_dechunker_init(&d, 1 << 20);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < slice ? size - off : slice, used = 0, len = 0;
        const uint8_t *m = NULL;
        int rc = bolt_dechunk(&d, data + off, n, &used, &m, &len);
        if (rc < 0) break;
        if (used == 0 && rc == 0) break;
        off += used;
        if (rc == 1) check_message(m, len);
    }
    bolt_dechunker_free(&d);
    /* The raw bytes as one PackStream value too (covers values without framing). */
    check_message(data, size);
    return 0;
}
