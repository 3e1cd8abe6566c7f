/* src/http/http_call.h: one bounded HTTP request with libcurl, for clients that make a few
 * calls and keep no connection (the AWS credentials, STS and MSK API calls of src/aws).
 *
 * Why here: src/http is the room of the libcurl parts shared by several clients; a caller
 * describes a request and gets the status and the body (an http_body, capped), and every
 * call has a deadline, follows no redirect (a signed request or a credential token must not
 * be sent elsewhere) and speaks only http and https.
 *
 * Secrets: error messages name the URL's scheme, host and port only, never its path, query
 * or any header, since callers put credentials in headers and paths may carry tokens.
 */
#ifndef CGW_HTTP_CALL_H
#define CGW_HTTP_CALL_H

#include <stddef.h>

#include "http/http_body.h"

struct http_call {
    const char *method;              /* "GET" or "POST" */
    const char *url;
    const char *const *headers;      /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;                /* POST body; may be NULL */
    size_t body_len;
    long timeout_ms;                 /* deadline of the whole call, connect included */
    const char *user_agent;          /* may be NULL */
};

/* Performs c. On an HTTP answer (any status) returns 0 with *status and body (which the
 * caller initialised with http_body_init and frees); on a transport failure, a timeout or
 * a body over body->max returns -1 with a message in err. Thread-safe. */
int http_call_perform(const struct http_call *c, long *status, struct http_body *body, char *err,
                      size_t errlen);

/* "scheme://host[:port]" of url into out (for messages that must not show a path or a
 * query). */
void http_url_origin(const char *url, char *out, size_t outlen);

#endif
