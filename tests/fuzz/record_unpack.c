/* tests/fuzz/record_unpack.c: libFuzzer target holding the worker's one-pass protobuf decoder
 * (record_unpack, src/record/wire.c) against protobuf-c's protobuf_c_message_unpack.
 *
 * The first byte picks the message (even: receipts.v1.ProcessedReceiptEvent, odd:
 * factoids.v1.Factoid); the rest is the value, decoded by both. Promises checked:
 *   - what protobuf-c refuses, record_unpack refuses;
 *   - what protobuf-c accepts, record_unpack accepts, except a string that is not strict
 *     UTF-8 or holds U+0000 (error_kind RECORD_ERR_INVALID_STRING) and a tag with field
 *     number 0 in more than one byte: the differences wire.c's header lists;
 *   - when both accept, every field is equal (tests/pb_equal.h), unless a singular
 *     sub-message occurs twice in one message, where the merge rules differ (wire.c);
 *   - every error is one printable line.
 *
 *   make fuzz-record_unpack && build/fuzz/record_unpack tests/fuzz/record_unpack/
 * Seeds: the record_receipt and record_factoid corpora, with the selector byte (and without
 * the Confluent frame).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../pb_equal.h"
#include "factoids/v1/factoid.pb-c.h"
#include "receipts/v1/processed_receipt_event.pb-c.h"
#include "record/record_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const ProtobufCMessageDescriptor *d;
    ProtobufCMessage *theirs, *ours;
    record_alloc a;
    record_result res;
    if (size < 1) return 0;
    d = data[0] & 1 ? &factoids__v1__factoid__descriptor
                    : &receipts__v1__processed_receipt_event__descriptor;
    data++;
    size--;
    record_result_init(&res);
    record_alloc_init(&a, RECORD_ALLOC_BUDGET);
    ours = record_unpack(d, data, size, &a, "value", &res);
    theirs = protobuf_c_message_unpack(d, NULL, size, data);
    if (!ours) {
        check_printable(res.error);
        if (res.status != RECORD_ERROR || !res.error[0]) __builtin_trap();
        if (theirs && res.error_kind != RECORD_ERR_INVALID_STRING &&
            !strstr(res.error, "a tag has field number 0"))
            __builtin_trap();
    } else {
        if (!theirs) __builtin_trap();
        if (!pb_has_repeated_submessage(d, data, size, 0) && !pb_equal(d, theirs, ours))
            __builtin_trap();
    }
    if (theirs) protobuf_c_message_free_unpacked(theirs, NULL);
    record_alloc_release(&a);
    return 0;
}
