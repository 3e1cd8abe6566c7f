/* src/record/confluent.c: the Confluent schema-registry wire format of a protobuf value.
 *
 *   byte 0       magic 0x00
 *   bytes 1..4   schema id, int32 big-endian
 *   then         message-index path: zigzag varint count, then count zigzag varint indexes;
 *                count 0 is the shortcut for the path [0] (the single byte 0x00)
 *   rest         the protobuf message
 *
 * The varints are Kafka's (ByteUtils.readVarint): 32-bit zigzag, at most 5 bytes. This
 * parser is stricter than the Java one where the Java one silently truncates: a fifth byte
 * carrying bits above the 32nd is an error here, not a different number.
 *
 * It only reads the frame; which schema ids and paths are acceptable is the caller's call
 * (factoid.c accepts the path [0] only). Every read is checked against len first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "record/record.h"
#include "base/base.h"

#define RECORD_CONFLUENT_MAGIC 0x00
#define RECORD_CONFLUENT_HDR 5          /* magic + schema id */
#define RECORD_CONFLUENT_MAX_PATH 16    /* deeper nesting than any real schema has */

/* Read one zigzag varint of at most 5 bytes at *pos. Returns 0, or -1 with the reason in
 * *why when it runs past len, is longer than 5 bytes or does not fit 32 bits. */
static int record_read_varint32(const uint8_t *buf, size_t len, size_t *pos, int32_t *out,
                                const char **why) {
    uint32_t v = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t b;
        if (*pos >= len) {
            *why = "runs past the end of the value";
            return -1;
        }
        b = buf[(*pos)++];
        if (i == 4 && (b & 0xf0)) {
            /* The fifth byte holds bits 28..31 only: a continuation bit means a sixth
             * byte, other high bits mean a value beyond 32 bits. */
            *why = (b & 0x80) ? "is longer than 5 bytes" : "overflows 32 bits";
            return -1;
        }
        v |= (uint32_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* Un-zigzag in unsigned arithmetic, then reinterpret: no signed overflow. */
            uint32_t u = (v >> 1) ^ (0u - (v & 1u));
            *out = (int32_t)u;
            return 0;
        }
    }
    *why = "is longer than 5 bytes";       /* not reached: the fifth byte decides above */
    return -1;
}

static int record_read_path(const uint8_t *buf, size_t len, size_t *pos, int32_t *path,
                            size_t max_path, size_t *path_len, char *err, size_t errlen) {
    const char *why = NULL;
    int32_t count;
    if (record_read_varint32(buf, len, pos, &count, &why) < 0) {
        base_errf(err, errlen, "confluent frame: message-index count varint %s", why);
        return -1;
    }
    if (count < 0) {
        base_errf(err, errlen, "confluent frame: negative message-index count %d",
                         (int)count);
        return -1;
    }
    if (count > RECORD_CONFLUENT_MAX_PATH) {
        base_errf(err, errlen, "confluent frame: message-index count %d exceeds %d",
                         (int)count, RECORD_CONFLUENT_MAX_PATH);
        return -1;
    }
    if (count == 0) {                      /* the shortcut for [0] */
        if (max_path < 1 || !path) {
            base_errf(err, errlen, "confluent frame: no room for the message path");
            return -1;
        }
        path[0] = 0;
        *path_len = 1;
        return 0;
    }
    if ((size_t)count > max_path || !path) {
        base_errf(err, errlen, "confluent frame: message path of %d indexes is too "
                         "deep (room for %zu)", (int)count, max_path);
        return -1;
    }
    for (int32_t i = 0; i < count; i++) {
        if (record_read_varint32(buf, len, pos, &path[i], &why) < 0) {
            base_errf(err, errlen, "confluent frame: message index %d varint %s",
                             (int)i, why);
            return -1;
        }
        if (path[i] < 0) {
            base_errf(err, errlen, "confluent frame: negative message index %d",
                             (int)path[i]);
            return -1;
        }
    }
    *path_len = (size_t)count;
    return 0;
}

int record_parse_confluent_frame(const uint8_t *buf, size_t len, int32_t *schema_id,
                                 int32_t *path, size_t max_path, size_t *path_len,
                                 size_t *payload_off, char *err, size_t errlen) {
    size_t pos = RECORD_CONFLUENT_HDR;
    uint32_t id;
    if (!buf || len < RECORD_CONFLUENT_HDR) {
        base_errf(err, errlen, "confluent frame: value of %zu bytes is shorter than "
                         "the 5-byte header", buf ? len : (size_t)0);
        return -1;
    }
    if (buf[0] != RECORD_CONFLUENT_MAGIC) {
        /* 0x01 is the newer GUID form, which this worker does not read. */
        base_errf(err, errlen, "confluent frame: wrong magic byte 0x%02x (expected "
                         "0x00)", (unsigned)buf[0]);
        return -1;
    }
    id = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
    if (id > INT32_MAX) {
        base_errf(err, errlen, "confluent frame: negative schema id");
        return -1;
    }
    if (record_read_path(buf, len, &pos, path, max_path, path_len, err, errlen) < 0)
        return -1;
    *schema_id = (int32_t)id;
    *payload_off = pos;
    return 0;
}
