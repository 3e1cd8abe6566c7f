/* src/http/http_client.c: libcurl's one global init, the common handle options and secret
 * wiping (see http_client.h for what and why). How: pthread_once around curl_global_init,
 * curl_easy_setopt for the options, explicit_bzero for the secrets. */
#include "http/http_client.h"

#include "base/base.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_rc;
static void curl_init(void) { curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int http_global_init(const char *who, char *err, size_t errlen) {
    pthread_once(&curl_once, curl_init);
    if (curl_rc == CURLE_OK) return 0;
    if (!who) return base_errf(err, errlen, "curl_global_init: %s", curl_easy_strerror(curl_rc));
    return base_errf(err, errlen, "%s: curl_global_init: %s", who, curl_easy_strerror(curl_rc));
}

/* CURLOPT_XFERINFOFUNCTION: non-zero aborts the transfer. */
static int cancel_check(void *flag, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return atomic_load((const atomic_bool *)flag) ? 1 : 0;
}

void http_handle_setup(CURL *e, const struct http_handle_options *o) {
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);   /* never send a token elsewhere */
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->errbuf) curl_easy_setopt(e, CURLOPT_ERRORBUFFER, o->errbuf);
    if (o->user_agent) curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent);
    if (o->cancel) {
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, cancel_check);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)o->cancel);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    }
}

void http_wipe_free(char *s) {
    if (!s) return;
    explicit_bzero(s, strlen(s));
    free(s);
}
