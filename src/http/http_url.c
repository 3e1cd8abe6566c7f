/* src/http/http_url.c: URL checking and userinfo redaction (see http_url.h).
 *
 * The redactor is hand-written because it must work on any text (an error message that quotes
 * a URL, a malformed URL the checker is about to refuse), where a URL parser would give up and
 * leave the password in place. It scans for "://" and, in the authority that follows, hides
 * everything up to the last '@'. The checker uses libcurl's URL API, the parser the requests
 * themselves go through, so "valid" means what curl will accept.
 */
#include "http/http_url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* End of the authority that starts at s: the first '/', '?', '#', whitespace, quote or end. */
static const char *authority_end(const char *s) {
    return s + strcspn(s, "/?#\"' \t\r\n<>");
}

/* The last '@' of the authority at s, or NULL. */
static const char *userinfo_at(const char *s) {
    const char *end = authority_end(s), *at = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == '@') at = p;
    return at;
}

bool http_has_userinfo(const char *in) {
    if (!in || !strchr(in, '@')) return false;
    for (const char *p = strstr(in, "://"); p; p = strstr(p + 3, "://"))
        if (userinfo_at(p + 3)) return true;
    return false;
}

/* Appends n bytes of s to out (cut to fit), counting the full length in *len. */
static void put(char *out, size_t outlen, size_t *len, const char *s, size_t n) {
    if (*len + 1 < outlen) {
        size_t room = outlen - 1 - *len;
        memcpy(out + *len, s, n < room ? n : room);
    }
    *len += n;
}

size_t http_redact_userinfo(const char *in, char *out, size_t outlen) {
    size_t len = 0;
    const char *p = in ? in : "";
    for (const char *sep; (sep = strstr(p, "://")) != NULL;) {
        const char *auth = sep + 3, *at = userinfo_at(auth);
        put(out, outlen, &len, p, (size_t)(auth - p));
        if (at) {
            put(out, outlen, &len, HTTP_REDACTED, strlen(HTTP_REDACTED));
            auth = at;          /* the '@' and the host follow */
        }
        p = auth;
    }
    put(out, outlen, &len, p, strlen(p));
    if (outlen) out[len < outlen ? len : outlen - 1] = '\0';
    return len;
}

char *http_redacted(const char *in) {
    if (!in) return NULL;
    char one;
    size_t n = http_redact_userinfo(in, &one, 1) + 1;
    char *out = malloc(n);
    if (out) http_redact_userinfo(in, out, n);
    return out;
}

int http_text_check(const char *s, char *err, size_t errlen) {
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            snprintf(err, errlen, "must not contain control characters (found %s)",
                     *p == '\r' ? "CR" : *p == '\n' ? "LF" : *p == '\t' ? "TAB" : "a control byte");
            return -1;
        }
    }
    return 0;
}

/* The reason url breaks a rule, or NULL; u holds the parsed URL. */
static const char *url_problem(CURLU *u, unsigned allow) {
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL, *query = NULL, *frag = NULL,
         *port = NULL;
    const char *bad = NULL;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (!scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        bad = "must be an http:// or https:// URL";
    else if (!host || !host[0]) bad = "has no host";
    else if (port && atol(port) < 1) bad = "has a port outside 1..65535";
    else if ((user || pass) && !(allow & HTTP_URL_USERINFO))
        bad = "must not hold credentials (user:password@); use the credential keys";
    else if (query && !(allow & HTTP_URL_QUERY)) bad = "must not have a query (?...)";
    else if (frag) bad = "must not have a fragment (#...)";
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_free(query);
    curl_free(frag);
    curl_free(port);
    return bad;
}

int http_url_check(const char *url, unsigned allow, char *err, size_t errlen) {
    if (!url || !*url) {
        snprintf(err, errlen, "is empty");
        return -1;
    }
    if (http_text_check(url, err, errlen) != 0) return -1;
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *bad = NULL;
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
    if (rc == CURLUE_BAD_PORT_NUMBER) bad = "has a port outside 1..65535";
    else if (rc != CURLUE_OK) bad = "is not valid";
    else bad = url_problem(u, allow);
    curl_url_cleanup(u);
    if (bad) snprintf(err, errlen, "%s", bad);
    return bad ? -1 : 0;
}
