/* flags_http.c: the Flipper HTTP API flag source (flipper-api or Flipper Cloud, GET /features).
 *
 * Place. One of the three sources of flags.h (file, HTTP, Valkey); the pipeline's poller calls
 * flags_poll_http every max(flags.poll_interval_seconds, server's poll-interval) and publishes
 * what it returns. It never logs: every failure is -1 with a message, and the caller keeps the
 * last snapshot and logs once per outage (contract section 4).
 *
 * Design. One libcurl easy handle per source, so the connection is kept alive between polls.
 * A poll is a blocking GET bounded by a connect timeout and a total timeout (CURLOPT_NOSIGNAL:
 * safe in a thread). The request carries If-None-Match with the ETag of the last snapshot
 * returned, as Flipper's own HTTP adapter does; 304 is "unchanged". A server that sends no
 * ETag is handled too: a body whose SHA-256 equals the last returned one is "unchanged". The
 * ETag and digest are only remembered once a body parsed, so a bad answer is fetched and
 * reported again at every poll until it is fixed. Bodies are parsed by flags_parse_api and
 * capped at FLAGS_FILE_MAX.
 *
 * Secrets. The token lives in one header string, wiped before it is freed; messages show the
 * URL without userinfo or query, and a server message echoing the token is dropped.
 */
#include "flags/flags.h"
#include "base/base.h"
#include "http/http_body.h"
#include "http/http_client.h"
#include "http/http_url.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef CGW_VERSION
#define CGW_VERSION "dev"
#endif

#define FLAGS_HTTP_DEFAULT_HEADER "X-Flipper-Token"
#define FLAGS_HTTP_MAX_INTERVAL_S 86400.0   /* a larger poll-interval is taken as a day */

struct flags_http {
    CURL *curl;
    char *url;                      /* the features URL requested */
    char *shown_url;                /* the same without userinfo and query, for messages */
    char *token;                    /* NULL when none; only to scrub server messages */
    char *token_line;               /* "Header: token", NULL when none */
    long connect_timeout_ms, timeout_ms;
    /* state of the last snapshot returned */
    char *etag;
    unsigned char digest[32];
    bool have_digest;
    long suggested_ms;
    /* per request */
    struct http_body body;          /* capped at FLAGS_FILE_MAX */
    char *resp_etag;
    long resp_interval_ms;          /* -1: no poll-interval header */
    char curl_err[CURL_ERROR_SIZE];
};

/* ---- URLs ------------------------------------------------------------------------------ */

static bool flags_ends_with(const char *s, size_t len, const char *suffix) {
    size_t n = strlen(suffix);
    return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* base[?query] -> base/features?[query&]exclude_gate_names=true. */
static char *flags_features_url(const char *url) {
    size_t plen = strcspn(url, "?");
    const char *query = url[plen] == '?' ? url + plen + 1 : "";
    while (plen > 0 && url[plen - 1] == '/') plen--;
    bool has_features = flags_ends_with(url, plen, "/features");
    bool has_param = strstr(query, "exclude_gate_names=") != NULL;
    char *out = NULL;
    if (asprintf(&out, "%.*s%s?%s%s%s", (int)plen, url, has_features ? "" : "/features", query,
                 *query && !has_param ? "&" : "", has_param ? "" : "exclude_gate_names=true") < 0)
        return NULL;
    return out;
}

/* The features URL as messages show it: userinfo redacted (src/http), query left out. */
static char *flags_shown_url(const char *url) {
    char *out = http_redacted(url);
    if (out) out[strcspn(out, "?")] = '\0';
    return out;
}

/* ---- options and lifetime ------------------------------------------------------------------ */

static bool flags_header_name_ok(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!isgraph((unsigned char)*s) || *s == ':') return false;
    return true;
}

int flags_http_check_options(const struct flags_http_options *o, char *err, size_t errlen) {
    char why[128];
    const char *bad = NULL;
    if (!o->url || !*o->url) bad = "url is empty";
    else if (http_url_check(o->url, HTTP_URL_USERINFO | HTTP_URL_QUERY, why, sizeof why) != 0) {
        base_errf(err, errlen, "flags: http source: url %s", why);
        return -1;
    } else if (o->connect_timeout_ms < 0 || o->timeout_ms < 0) bad = "timeouts must be >= 0";
    else if (o->token_header && *o->token_header && !flags_header_name_ok(o->token_header))
        bad = "token_header is not a valid header name";
    else if (o->token && http_text_check(o->token, why, sizeof why) != 0)
        bad = "the token must not contain control characters (CR, LF, ...)";
    if (bad) base_errf(err, errlen, "flags: http source: %s", bad);
    return bad ? -1 : 0;
}

static int flags_http_copy(struct flags_http *h, const struct flags_http_options *o) {
    const char *hdr = o->token_header && *o->token_header ? o->token_header : FLAGS_HTTP_DEFAULT_HEADER;
    if (!(h->url = flags_features_url(o->url)) || !(h->shown_url = flags_shown_url(h->url))) return -1;
    if (o->token && *o->token) {
        if (!(h->token = strdup(o->token))) return -1;
        if (asprintf(&h->token_line, "%s: %s", hdr, o->token) < 0) {
            h->token_line = NULL;
            return -1;
        }
    }
    h->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 2000;
    h->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
    return 0;
}

struct flags_http *flags_open_http(const struct flags_http_options *o, char *err, size_t errlen) {
    if (flags_http_check_options(o, err, errlen) != 0) return NULL;
    if (http_global_init("flags", err, errlen) != 0) return NULL;
    struct flags_http *h = calloc(1, sizeof *h);
    if (h) http_body_init(&h->body, FLAGS_FILE_MAX);
    if (!h || flags_http_copy(h, o) < 0 || !(h->curl = curl_easy_init())) {
        flags_close_http(h);
        base_errf(err, errlen, "flags: http source: out of memory");
        return NULL;
    }
    return h;
}

void flags_close_http(struct flags_http *h) {
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    free(h->url);
    free(h->shown_url);
    http_wipe_free(h->token);
    http_wipe_free(h->token_line);
    free(h->etag);
    free(h->resp_etag);
    http_body_free(&h->body);
    free(h);
}

long flags_http_suggested_interval_ms(const struct flags_http *h) { return h ? h->suggested_ms : 0; }

const char *flags_http_url(const struct flags_http *h) { return h ? h->shown_url : NULL; }

/* ---- one request ----------------------------------------------------------------------------- */

/* The header's value if line is "<name>:<value>" (name case-insensitive), trimmed into buf. */
static bool flags_header_value(const char *line, size_t len, const char *name, char *buf, size_t buflen) {
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') return false;
    const char *v = line + n + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && isspace((unsigned char)end[-1])) end--;
    snprintf(buf, buflen, "%.*s", (int)(end - v), v);
    return true;
}

/* poll-interval: seconds, an integer or a decimal; anything else is ignored. */
static long flags_parse_interval(const char *s) {
    char *end;
    if (!isdigit((unsigned char)*s)) return -1;
    double d = strtod(s, &end);
    if (*end) return -1;
    if (d > FLAGS_HTTP_MAX_INTERVAL_S) d = FLAGS_HTTP_MAX_INTERVAL_S;
    return (long)(d * 1000.0);
}

static size_t flags_http_on_header(char *p, size_t size, size_t n, void *arg) {
    struct flags_http *h = arg;
    size_t len = size * n;
    char val[256];
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {      /* a new response (after a 1xx) */
        free(h->resp_etag);
        h->resp_etag = NULL;
        h->resp_interval_ms = -1;
    } else if (flags_header_value(p, len, "etag", val, sizeof val) && *val) {
        free(h->resp_etag);
        h->resp_etag = strdup(val);
    } else if (flags_header_value(p, len, "poll-interval", val, sizeof val)) {
        long ms = flags_parse_interval(val);
        if (ms >= 0) h->resp_interval_ms = ms;
    }
    return len;
}

static struct curl_slist *flags_http_headers(const struct flags_http *h) {
    struct curl_slist *l = curl_slist_append(NULL, "Accept: application/json");
    char line[320];
    if (l && h->token_line && !curl_slist_append(l, h->token_line)) goto fail;
    if (l && h->etag) {
        snprintf(line, sizeof line, "If-None-Match: %s", h->etag);
        if (!curl_slist_append(l, line)) goto fail;
    }
    return l;
fail:
    curl_slist_free_all(l);
    return NULL;
}

static void flags_http_setopts(struct flags_http *h, struct curl_slist *headers) {
    CURL *c = h->curl;
    curl_easy_setopt(c, CURLOPT_URL, h->url);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    http_handle_setup(c, &(struct http_handle_options){.connect_timeout_ms = h->connect_timeout_ms,
                                                       .timeout_ms = h->timeout_ms,
                                                       .errbuf = h->curl_err,
                                                       .user_agent = "cgw/" CGW_VERSION " (flags)"});
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &h->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, flags_http_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
}

static void flags_http_reset_response(struct flags_http *h) {
    http_body_reset(&h->body);
    free(h->resp_etag);
    h->resp_etag = NULL;
    h->resp_interval_ms = -1;
    h->curl_err[0] = '\0';
}

/* Performs the GET; the HTTP status, or -1 with a message. */
static long flags_http_get(struct flags_http *h, char *err, size_t errlen) {
    struct curl_slist *headers = flags_http_headers(h);
    if (!headers) {
        base_errf(err, errlen, "flags: GET %s: out of memory", h->shown_url);
        return -1;
    }
    flags_http_reset_response(h);
    flags_http_setopts(h, headers);
    CURLcode cc = curl_easy_perform(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    long status = 0;
    if (cc == CURLE_WRITE_ERROR && h->body.too_big) {
        base_errf(err, errlen, "flags: GET %s: answer larger than %u bytes", h->shown_url, FLAGS_FILE_MAX);
        return -1;
    }
    if (cc != CURLE_OK) {
        base_errf(err, errlen, "flags: GET %s: %s", h->shown_url,
                       h->curl_err[0] ? h->curl_err : curl_easy_strerror(cc));
        return -1;
    }
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* ---- interpreting the answer ---------------------------------------------------------------- */

/* Flipper's {"message":...} (or a proxy's {"error":...}), printable, token-free; "" if none. */
static void flags_server_message(const struct flags_http *h, char *buf, size_t len) {
    buf[0] = '\0';
    json_t *j = h->body.len ? json_loadb(h->body.data, h->body.len, 0, NULL) : NULL;
    const char *m = json_string_value(json_object_get(j, "message"));
    if (!m) m = json_string_value(json_object_get(j, "error"));
    if (m && !(h->token && strstr(m, h->token))) {
        snprintf(buf, len, ": %s", m);
        for (char *p = buf; *p; p++)
            if (iscntrl((unsigned char)*p)) *p = ' ';
    }
    json_decref(j);
}

static int flags_http_status_error(const struct flags_http *h, long status, char *err, size_t errlen) {
    char msg[160];
    flags_server_message(h, msg, sizeof msg);
    const char *hint = status == 401 || status == 403 ? " (check the token and its header name)" : "";
    base_errf(err, errlen, "flags: GET %s: HTTP %ld%.120s%s", h->shown_url, status, msg, hint);
    return -1;
}

static void flags_http_take_interval(struct flags_http *h) {
    if (h->resp_interval_ms >= 0) h->suggested_ms = h->resp_interval_ms;
}

static bool flags_body_digest(const struct http_body *b, unsigned char out[32]) {
    unsigned int n = 0;
    return EVP_Digest(b->data ? b->data : "", b->len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

static int flags_http_parse(struct flags_http *h, struct flags_set **out, char *err, size_t errlen) {
    unsigned char digest[32];
    bool have = flags_body_digest(&h->body, digest);
    if (have && h->have_digest && memcmp(digest, h->digest, sizeof digest) == 0) {
        free(h->etag);                  /* same content under a new ETag: remember the new one */
        h->etag = h->resp_etag;
        h->resp_etag = NULL;
        return 0;
    }
    char perr[256];
    struct flags_set *s = flags_parse_api(h->body.data ? h->body.data : "", h->body.len, perr, sizeof perr);
    if (!s) {
        base_errf(err, errlen, "flags: GET %s: %s", h->shown_url, perr);
        return -1;
    }
    free(h->etag);
    h->etag = h->resp_etag;
    h->resp_etag = NULL;
    h->have_digest = have;
    if (have) memcpy(h->digest, digest, sizeof digest);
    *out = s;
    return 1;
}

int flags_poll_http(struct flags_http *h, struct flags_set **out, char *err, size_t errlen) {
    *out = NULL;
    long status = flags_http_get(h, err, errlen);
    if (status < 0) return -1;
    if (status == 304) {
        if (!h->etag) {
            base_errf(err, errlen, "flags: GET %s: HTTP 304 to a request without If-None-Match",
                           h->shown_url);
            return -1;
        }
        flags_http_take_interval(h);
        return 0;
    }
    if (status != 200) return flags_http_status_error(h, status, err, errlen);
    flags_http_take_interval(h);
    return flags_http_parse(h, out, err, errlen);
}

/* ---- as a struct flags_source ------------------------------------------------------------ */

static int http_source_poll(void *impl, struct flags_set **out, char *err, size_t errlen) {
    return flags_poll_http(impl, out, err, errlen);
}

static long http_source_interval(const void *impl) { return flags_http_suggested_interval_ms(impl); }

static void http_source_close(void *impl) { flags_close_http(impl); }

int flags_http_source(const struct flags_http_options *o, struct flags_source *out, char *err, size_t errlen) {
    struct flags_http *h = flags_open_http(o, err, errlen);
    if (!h) return -1;
    *out = (struct flags_source){.impl = h, .poll = http_source_poll,
                                 .suggested_interval_ms = http_source_interval,
                                 .close = http_source_close};
    return 0;
}
