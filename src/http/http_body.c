/* src/http/http_body.c: the bounded response-body buffer of http_body.h.
 *
 * Why a module: the four clients of internal HTTP services (enrich, registry, flags_http and
 * `cgw status`) used to keep four copies of this libcurl write callback; one copy keeps the
 * cap check and the NUL termination the same for all of them.
 *
 * The cap check never overflows: len <= max always holds, so "n > max - len" is exact.
 * The allocation doubles from 4 KiB and always has room for the terminating NUL.
 */
#include "http/http_body.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_BODY_FIRST_CAP 4096

void http_body_init(struct http_body *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->too_big = false;
}

size_t http_body_write(char *p, size_t size, size_t n, void *arg) {
    struct http_body *b = arg;
    if (size && n > SIZE_MAX / size) return 0;
    size_t k = size * n;
    if (k > b->max - b->len) {
        b->too_big = true;
        return 0;                       /* aborts the transfer (CURLE_WRITE_ERROR) */
    }
    if (k >= SIZE_MAX - b->len) return 0;   /* no room for the NUL: only with max SIZE_MAX */
    size_t need = b->len + k + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : HTTP_BODY_FIRST_CAP;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    if (k) memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

void http_body_reset(struct http_body *b) {
    b->len = 0;
    b->too_big = false;
    if (b->data) b->data[0] = '\0';
}

void http_body_free(struct http_body *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->too_big = false;
}
