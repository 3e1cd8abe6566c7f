/* metrics_internal.h: what the HTTP listener (metrics_http.c, libmicrohttpd) and the request
 * router (metrics_route.c, no connection) share. Not part of the room's interface: the fuzz
 * target tests/fuzz/metrics_route.c and the unit tests call the router directly. */
#ifndef CGW_METRICS_INTERNAL_H
#define CGW_METRICS_INTERNAL_H

#include "metrics/metrics.h"

#include <stdbool.h>
#include <stddef.h>

/* What the router needs of the server: the caller's hooks, the token and where it listens. */
struct metrics_router {
    struct metrics_server_options opt;  /* listen and token unused here */
    const char *token;                  /* NULL: no token asked */
    bool loopback;                      /* the listener is on a loopback address: no token asked */
};

/* The parts of a request head the answer depends on; a header is NULL when absent. */
struct metrics_request {
    const char *method;
    const char *path;
    const char *authorization;
    const char *accept_encoding;
};

struct metrics_answer {
    int status;
    const char *ctype;                  /* static */
    char *body;                         /* malloc'd (the caller frees it); NULL: empty */
    size_t len;
    bool gzipped;                       /* body is gzip: send Content-Encoding: gzip */
    bool unauthorised;                  /* 401: send WWW-Authenticate: Bearer */
    bool method_not_allowed;            /* 405: send Allow: GET, HEAD */
};

/* Bodies shorter than this are sent as they are. */
#define METRICS_HTTP_GZIP_MIN 256

/* The whole answer to one request: 405 for a method other than GET and HEAD, /metrics, the
 * probes, the hook's paths behind the bearer token, 404 otherwise; gzip when the client
 * accepts it. */
void metrics_route_request(const struct metrics_router *rt, const struct metrics_request *rq,
                           struct metrics_answer *a);

/* Does an Accept-Encoding value accept gzip (listed, with no q or a q-value above 0)? */
bool metrics_accepts_gzip(const char *accept_encoding);

/* Is authorization "Bearer <token>" (scheme case-insensitive, token compared in constant time)? */
bool metrics_bearer_ok(const char *authorization, const char *token);

#endif
