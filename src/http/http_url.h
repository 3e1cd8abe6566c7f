/* src/http/http_url.h: the one place that knows what a URL may hold and how it is shown.
 *
 * Why a module: the configuration, the HTTP clients (enrich, registry, flags), the status page
 * and the log lines all show or check URLs. Each used to carry its own idea of "userinfo" and
 * of a valid base URL, so `cgw check-config` printed passwords the status page hid, and a URL
 * the loader accepted was refused at start. One checker and one redactor keep them equal.
 *
 * Redaction. http_redact_userinfo() rewrites every "scheme://user:password@host" inside a text
 * (a single URL, an error message, a log value) as "scheme://<redacted>@host": the whole
 * userinfo goes, the user name included (it is often a token). The authority ends at the first
 * '/', '?', '#', whitespace or quote, as RFC 3986 and curl read it, so what is hidden is what
 * curl would have sent as credentials. Texts without "://" are copied unchanged.
 *
 * Checking. http_url_check() parses with libcurl's URL API (the parser the requests use): an
 * http:// or https:// URL with a host, a port 1..65535 when one is given, no fragment, no
 * control character anywhere, and userinfo or a query only when the caller allows them.
 * http_text_check() is the same rule for a token or header value: no control character (CR
 * and LF above all: they would end a header line and start another).
 *
 * Messages never contain the URL itself, so a caller may add the key name and nothing leaks.
 */
#ifndef CGW_HTTP_URL_H
#define CGW_HTTP_URL_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_REDACTED "<redacted>"

/* What a URL may hold besides scheme://host[:port][/path]. */
#define HTTP_URL_USERINFO 1u        /* user[:password]@ (curl sends it as Basic auth) */
#define HTTP_URL_QUERY    2u        /* ?query */

/* True when in holds a URL with userinfo (what http_redact_userinfo would change). */
bool http_has_userinfo(const char *in);

/* Copies in to out (outlen > 0) with every URL's userinfo replaced by HTTP_REDACTED; the copy
 * is cut to fit and always NUL-terminated. Returns the length the full result needs. */
size_t http_redact_userinfo(const char *in, char *out, size_t outlen);

/* The same into a new allocation (free it); NULL when in is NULL or memory is short. */
char *http_redacted(const char *in);

/* 0 when url is acceptable under allow (HTTP_URL_* bits); -1 with the reason (never the URL)
 * in err. */
int http_url_check(const char *url, unsigned allow, char *err, size_t errlen);

/* 0 when s holds no control character (bytes below 0x20 and 0x7f); -1 with the reason. */
int http_text_check(const char *s, char *err, size_t errlen);

#endif
