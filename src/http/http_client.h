/* src/http/http_client.h: what every libcurl client of the worker does the same way: the
 * process-wide curl_global_init, the options of a handle that make it safe, and the wiping
 * of secrets.
 *
 * Why: the enrichment clients, the schema registry client and the Flipper flag source each
 * carried their own copy of these; one copy keeps the rules (a deadline on every request, no
 * redirect that could carry a token elsewhere, http and https only, no signals from the
 * resolver in a threaded process) the same for all.
 *
 * How: http_global_init runs curl_global_init once (pthread_once) and returns its outcome to
 * every caller; http_handle_setup sets the common options on a handle (the caller adds URL,
 * headers, body sink); http_wipe_free zeroes a string before freeing it.
 */
#ifndef CGW_HTTP_CLIENT_H
#define CGW_HTTP_CLIENT_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>

/* 0, or -1 with "<who>: curl_global_init: <reason>" in err (who names the client; NULL: no
 * prefix). Safe from
 * any thread, any number of times; libcurl is initialised once per process. */
int http_global_init(const char *who, char *err, size_t errlen);

struct http_handle_options {
    long connect_timeout_ms;        /* CURLOPT_CONNECTTIMEOUT_MS */
    long timeout_ms;                /* CURLOPT_TIMEOUT_MS: the whole request */
    char *errbuf;                   /* NULL or CURL_ERROR_SIZE bytes: CURLOPT_ERRORBUFFER */
    const char *user_agent;         /* NULL: no User-Agent header */
    const atomic_bool *cancel;      /* NULL, or a flag (the owner's "stopping") that, once true,
                                     * ends a request in flight within about a second with
                                     * CURLE_ABORTED_BY_CALLBACK; the flag outlives the handle */
};

/* NOSIGNAL, protocols http and https, no redirects, the two timeouts, the error buffer, the
 * user agent and the cancel flag of o, on e. libcurl calls the progress callback that reads
 * the flag about once a second even while nothing arrives (a frozen server). */
void http_handle_setup(CURL *e, const struct http_handle_options *o);

/* Zeroes s (explicit_bzero) and frees it; NULL is ignored. For tokens, passwords and header
 * lines holding them. */
void http_wipe_free(char *s);

#endif
