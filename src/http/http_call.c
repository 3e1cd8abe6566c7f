/* src/http/http_call.c: the bounded one-shot HTTP request of http_call.h. One easy handle
 * per call: the callers (credential refreshes, STS, the MSK API) make a handful of calls an
 * hour, so connection reuse is not worth a shared handle and its locking. The global init and
 * the handle's safe options are http_client.c's, as for the other libcurl clients. */
#include "http/http_call.h"

#include "http/http_client.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

void http_url_origin(const char *url, char *out, size_t outlen) {
    const char *p = strstr(url, "://");
    size_t n = p ? (size_t)(p - url) + 3 : 0;
    if (p) n += strcspn(p + 3, "/?#");
    snprintf(out, outlen, "%.*s", (int)n, url);
    char *at = strchr(out, '@');                /* user:password@host: drop the user part */
    if (at && p) memmove(out + (p - url) + 3, at + 1, strlen(at + 1) + 1);
}

static struct curl_slist *header_list(const char *const *headers, int *bad) {
    struct curl_slist *l = NULL;
    for (size_t i = 0; headers && headers[i]; i++) {
        struct curl_slist *n = curl_slist_append(l, headers[i]);
        if (!n) {
            *bad = 1;
            break;
        }
        l = n;
    }
    /* libcurl adds "Expect: 100-continue" to larger POSTs and its own Accept; neither is
     * wanted by a signed request. */
    struct curl_slist *n = l || !*bad ? curl_slist_append(l, "Expect:") : NULL;
    if (n) l = n;
    return l;
}

static void setup(CURL *e, const struct http_call *c, struct curl_slist *h, struct http_body *b) {
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    http_handle_setup(e, &(struct http_handle_options){.connect_timeout_ms = c->timeout_ms,
                                                       .timeout_ms = c->timeout_ms,
                                                       .user_agent = c->user_agent});
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    if (c->method && strcmp(c->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body ? c->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(c->body ? c->body_len : 0));
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
}

int http_call_perform(const struct http_call *c, long *status, struct http_body *body, char *err,
                      size_t errlen) {
    char origin[256];
    http_url_origin(c->url, origin, sizeof origin);
    if (http_global_init(NULL, err, errlen) != 0) return -1;
    CURL *e = curl_easy_init();
    int bad = 0;
    struct curl_slist *h = e ? header_list(c->headers, &bad) : NULL;
    if (!e || bad) {
        curl_slist_free_all(h);
        if (e) curl_easy_cleanup(e);
        snprintf(err, errlen, "%s: out of memory", origin);
        return -1;
    }
    setup(e, c, h, body);
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    if (rc == CURLE_OK) return 0;
    if (body->too_big)
        snprintf(err, errlen, "%s: answer larger than %zu bytes", origin, body->max);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(err, errlen, "%s: no answer within %ld ms", origin, c->timeout_ms);
    else
        snprintf(err, errlen, "%s: %s", origin, curl_easy_strerror(rc));
    return -1;
}
