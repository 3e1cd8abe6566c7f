/* src/http/http_body.h: a bounded, growable buffer for an HTTP response body, filled by
 * libcurl through http_body_write (CURLOPT_WRITEFUNCTION, with the buffer as CURLOPT_WRITEDATA).
 *
 * Why a module: four clients of internal HTTP services (the enrich Product / Retailer clients,
 * the schema registry lookup, the Flipper flag source and `cgw status`) each need the same
 * thing, the whole answer in memory as one NUL-terminated string with a size cap, so that a
 * misbehaving server cannot make the worker buffer without bound. They used to carry four
 * copies of the same callback; this is the one copy.
 *
 * Contract:
 *   - max is the largest body accepted, in bytes (SIZE_MAX: no cap). A write that would take
 *     len past max stores nothing, sets too_big and returns 0, so libcurl aborts the transfer
 *     with CURLE_WRITE_ERROR; the caller tells "too big" from other failures by too_big.
 *   - Out of memory also returns 0 (CURLE_WRITE_ERROR) but leaves too_big false.
 *   - After any successful write, data[len] == '\0' (the body may itself hold NUL bytes: use
 *     len). data stays NULL until the first write, so callers that may see an empty answer
 *     should read `data ? data : ""`.
 *   - A zeroed struct http_body is valid to free; set max (http_body_init) before writing.
 */
#ifndef CGW_HTTP_BODY_H
#define CGW_HTTP_BODY_H

#include <stdbool.h>
#include <stddef.h>

struct http_body {
    char *data;                 /* NULL until the first write; then NUL-terminated */
    size_t len, cap, max;       /* cap: bytes allocated; max: largest body accepted */
    bool too_big;               /* a write was refused because of max */
};

/* An empty body accepting at most max bytes; allocates nothing. */
void http_body_init(struct http_body *b, size_t max);

/* The CURLOPT_WRITEFUNCTION; arg is the struct http_body. Returns size * n, or 0 to abort
 * (over max: too_big set; out of memory: too_big left false). */
size_t http_body_write(char *p, size_t size, size_t n, void *arg);

/* Empties the body for another request (len 0, too_big false), keeping the allocation and max. */
void http_body_reset(struct http_body *b);

/* Frees the allocation and leaves an empty body with the same max. */
void http_body_free(struct http_body *b);

#endif
