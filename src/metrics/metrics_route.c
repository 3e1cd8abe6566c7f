/* metrics_route.c: the answer of the metrics listener to one request, without a connection:
 * the route (/metrics, /healthz, /readyz, the hook's paths), the bearer-token check and the
 * gzip negotiation.
 *
 * Why apart from metrics_http.c. libmicrohttpd parses HTTP; what is left is ours and depends
 * only on the method, the path and two header values. Keeping it behind one function that
 * takes those strings lets the fuzz target (tests/fuzz/metrics_route.c) and the unit tests
 * drive it directly, while metrics_http.c only copies the head out of the library and the
 * answer back in.
 * How. Accept-Encoding is read as RFC 9110 §12.5.3 says: a list of codings, each with
 * optional parameters, where q (name case-insensitive) is a qvalue ("0" to "1", at most three
 * decimals); gzip is used when it is listed with no q or a q above 0 (the last q decides); a
 * malformed q refuses it, whatever follows (plain text is always safe). "*" is not taken as gzip. The token is compared in
 * constant time, its length included.
 */
#include "metrics/metrics_internal.h"

#include <ctype.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ---- content negotiation and authorisation --------------------------------------------------- */

static const char *skip_ows(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    return p;
}

/* A qvalue in thousandths (0..1000), or -1 when [s, end) is not one. */
static int qvalue(const char *s, const char *end) {
    while (end > s && (end[-1] == ' ' || end[-1] == '\t')) end--;
    size_t n = (size_t)(end - s);
    if (n == 0 || n > 5 || (s[0] != '0' && s[0] != '1') || (n > 1 && s[1] != '.')) return -1;
    int v = (s[0] - '0') * 1000, scale = 100;
    for (const char *p = s + 2; p < end; p++, scale /= 10) {
        if (!isdigit((unsigned char)*p)) return -1;
        v += (*p - '0') * scale;
    }
    return v > 1000 ? -1 : v;
}

/* The q of the parameters [p, end) of one list element ("; q=0.5"); 1000 when absent. */
static int element_q(const char *p, const char *end) {
    int q = 1000;
    while ((p = memchr(p, ';', (size_t)(end - p)))) {
        const char *name = skip_ows(p + 1, end), *next = memchr(name, ';', (size_t)(end - name));
        const char *stop = next ? next : end;
        if (stop - name >= 2 && (name[0] == 'q' || name[0] == 'Q') && name[1] == '=') {
            q = qvalue(skip_ows(name + 2, stop), stop);
            if (q < 0) return 0;
        }
        p = stop;
    }
    return q;
}

bool metrics_accepts_gzip(const char *ae) {
    for (const char *p = ae; p && *p;) {
        const char *end = p + strcspn(p, ","), *c = skip_ows(p, end);
        size_t n = strcspn(c, ";, \t");
        const char *after = skip_ows(c + n, end);  /* the coding ends at ';' or the element's end */
        if (n == 4 && strncasecmp(c, "gzip", 4) == 0 && (after == end || *after == ';'))
            return element_q(after, end) > 0;
        p = *end ? end + 1 : end;
    }
    return false;
}

bool metrics_bearer_ok(const char *h, const char *token) {
    if (!h || !token || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    size_t n = strlen(h), m = strlen(token);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < m; i++) diff |= (unsigned char)(token[i] ^ (i < n ? h[i] : 0));
    return diff == 0;
}

/* gzip (RFC 1952) of in into a malloc'd *out; -1 when zlib fails or memory runs out. */
static int gzip_body(const char *in, size_t len, char **out, size_t *outlen) {
    z_stream z = { 0 };
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    char *buf = malloc(cap);
    if (!buf) { deflateEnd(&z); return -1; }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) { free(buf); return -1; }
    *out = buf;
    return 0;
}

/* ---- answers ------------------------------------------------------------------------------- */

static void text_answer(struct metrics_answer *a, int status, const char *text) {
    a->status = status;
    a->ctype = "text/plain; charset=utf-8";
    a->body = strdup(text);
    a->len = a->body ? strlen(a->body) : 0;
}

static void probe_answer(struct metrics_answer *a, metrics_health_fn fn, void *ud) {
    char reason[256] = "";
    if (!fn || fn(ud, reason, sizeof reason) == 0) {
        text_answer(a, MHD_HTTP_OK, "ok\n");
        return;
    }
    char msg[260];
    snprintf(msg, sizeof msg, "%s\n", reason[0] ? reason : "unhealthy");
    text_answer(a, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

/* The hook's paths, behind the token when one is set and the listener is not on loopback. */
static void hook_answer(const struct metrics_router *rt, const struct metrics_request *rq, struct metrics_answer *a) {
    if (rt->token && !rt->loopback && !metrics_bearer_ok(rq->authorization, rt->token)) {
        text_answer(a, MHD_HTTP_UNAUTHORIZED, "a bearer token is required\n");
        a->unauthorised = true;
        return;
    }
    const char *ctype = "text/plain; charset=utf-8";
    int status = rt->opt.handler(rt->opt.handler_ud, rq->path, &a->body, &ctype);
    if (status >= 100 && status <= 599) {
        a->status = status;
        a->ctype = ctype ? ctype : "text/plain; charset=utf-8";
        a->len = a->body ? strlen(a->body) : 0;
        return;
    }
    free(a->body);
    a->body = NULL;
    text_answer(a, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void route(const struct metrics_router *rt, const struct metrics_request *rq, struct metrics_answer *a) {
    const char *path = rq->path ? rq->path : "";
    if (strcmp(rq->method, MHD_HTTP_METHOD_GET) != 0 && strcmp(rq->method, MHD_HTTP_METHOD_HEAD) != 0) {
        text_answer(a, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        a->method_not_allowed = true;
    } else if (strcmp(path, "/metrics") == 0) {
        if (metrics_render(rt->opt.registry, &a->body, &a->len) < 0) {
            text_answer(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
            return;
        }
        a->status = MHD_HTTP_OK;
        a->ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (strcmp(path, "/healthz") == 0) {
        probe_answer(a, rt->opt.health, rt->opt.health_ud);
    } else if (strcmp(path, "/readyz") == 0) {
        probe_answer(a, rt->opt.ready, rt->opt.ready_ud);
    } else if (rt->opt.handler) {
        hook_answer(rt, rq, a);
    } else {
        text_answer(a, MHD_HTTP_NOT_FOUND, "not found\n");
    }
}

static void maybe_gzip(const struct metrics_request *rq, struct metrics_answer *a) {
    if (!a->body || a->len < METRICS_HTTP_GZIP_MIN || !metrics_accepts_gzip(rq->accept_encoding)) return;
    char *z = NULL;
    size_t zlen = 0;
    if (gzip_body(a->body, a->len, &z, &zlen) != 0) return;   /* send it plain */
    free(a->body);
    a->body = z;
    a->len = zlen;
    a->gzipped = true;
}

void metrics_route_request(const struct metrics_router *rt, const struct metrics_request *rq,
                           struct metrics_answer *a) {
    memset(a, 0, sizeof *a);
    route(rt, rq, a);
    maybe_gzip(rq, a);
}
