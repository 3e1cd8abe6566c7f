/* chunk.c: Bolt message framing (docs/bolt.md §3).
 *
 * A message travels as chunks `u16be size | size bytes`, at most 65535 bytes each, and ends
 * with a zero-size chunk. A zero-size chunk with no message in progress is a NOOP
 * (keep-alive) and is skipped. The reader is driven purely by chunk sizes: message bytes
 * may well contain 00 00 (docs/bolt.md §3's SUCCESS example ends in one), so scanning for the end
 * marker would be wrong.
 *
 * The dechunker is incremental (a header may arrive one byte at a time), which keeps the
 * connection's read loop simple and lets the fuzzer feed arbitrary splits.
 */
#include <string.h>

#include "bolt/bolt_internal.h"

int bolt_chunk_part(bolt_enc *out, const uint8_t *msg, size_t len) {
    /* Worst case: a 2-byte header per chunk plus the end marker, reserved up front. */
    if (bolt_enc_reserve(out, len + 2 * (len / BOLT_CHUNK_MAX + 1) + 2)) return out->err;
    while (len > 0) {
        size_t n = len > BOLT_CHUNK_MAX ? BOLT_CHUNK_MAX : len;
        uint8_t hdr[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        bolt_enc_raw(out, hdr, 2);
        bolt_enc_raw(out, msg, n);
        msg += n;
        len -= n;
    }
    return out->err;
}

int bolt_chunk_end(bolt_enc *out) { return bolt_enc_raw(out, "\0\0", 2); }

int bolt_chunk_append(bolt_enc *out, const uint8_t *msg, size_t len) {
    return bolt_chunk_part(out, msg, len) ? out->err : bolt_chunk_end(out);
}

void bolt_dechunker_init(bolt_dechunker *d, size_t max_message) {
    memset(d, 0, sizeof *d);
    d->max_message = max_message ? max_message : BOLT_DEFAULT_MAX_MESSAGE;
}

void bolt_dechunker_free(bolt_dechunker *d) { bolt_enc_release(&d->msg); }

/* A finished chunk header: start a body, end a message, or skip a NOOP. Returns 1 when a
 * message is complete. */
static int on_header(bolt_dechunker *d, size_t size) {
    d->hdr_have = 0;
    if (size == 0) return d->msg.len > 0;
    d->chunk_left = size;
    return 0;
}

int bolt_dechunk(bolt_dechunker *d, const uint8_t *data, size_t n, size_t *used,
                 const uint8_t **msg, size_t *len) {
    size_t off = 0;
    if (d->complete) {
        d->complete = 0;
        bolt_enc_reset(&d->msg);
    }
    while (off < n) {
        if (d->chunk_left > 0) {
            size_t take = n - off < d->chunk_left ? n - off : d->chunk_left;
            if (d->msg.len + take > d->max_message) {
                *used = off;
                return -BOLT_ELIMIT;
            }
            if (bolt_enc_raw(&d->msg, data + off, take)) {
                *used = off;
                return -BOLT_ENOMEM;
            }
            off += take;
            d->chunk_left -= take;
            continue;
        }
        d->hdr[d->hdr_have++] = data[off++];
        if (d->hdr_have < 2) continue;
        if (on_header(d, (size_t)d->hdr[0] << 8 | d->hdr[1])) {
            d->complete = 1;
            *used = off;
            *msg = d->msg.p;
            *len = d->msg.len;
            return 1;
        }
    }
    *used = off;
    return 0;
}
