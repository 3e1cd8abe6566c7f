/* src/kafka/kafka_instance.c: the base of the consumers' group.instance.id (static group
 * membership, KIP-345), see kafka.h.
 *
 * What: with a group.instance.id, a member that restarts under the same id within
 * session.timeout.ms takes its partitions back at once, without a rebalance and without the
 * group waiting out the dead member's session (45 s). Each consumer gets `<base>-<consumer>`.
 *
 * Where the base comes from, in order:
 *   1. kafka.group_instance_id when configured ("" turns static membership off);
 *   2. on ECS, the task id: the last segment of TaskARN in the task metadata
 *      (GET $ECS_CONTAINER_METADATA_URI_V4/task, 2 s deadline). A container that the task's
 *      restart policy restarts keeps its task, so it rejoins as the same member;
 *   3. the host name (a VM or a pod restarted in place keeps it).
 * Why here and not in src/aws: the ECS task metadata endpoint is an unauthenticated local
 * HTTP GET with nothing of AWS's APIs (no signing, no credentials); what it is for is Kafka's
 * group identity. The body is read with src/http's bounded buffer and parsed with jansson.
 *
 * The id is sanitised to Kafka's legal characters ([A-Za-z0-9._-]) and to 200 bytes, leaving
 * room for the consumer suffix.
 */
#include "kafka/kafka.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_body.h"

#define ECS_TIMEOUT_MS 2000L
#define ECS_MAX_BODY (256 * 1024)
#define BASE_MAX 200

/* Copies src into out (at most BASE_MAX bytes), every illegal character replaced by '-'. */
static void sanitise(const char *src, char *out, size_t outlen) {
    size_t n = 0;
    for (; *src && n + 1 < outlen && n < BASE_MAX; src++, n++) {
        unsigned char ch = (unsigned char)*src;
        out[n] = (char)(isalnum(ch) || ch == '.' || ch == '_' || ch == '-' ? ch : '-');
    }
    out[n] = '\0';
}

/* The task id of TaskARN in an ECS task metadata document. 0 or -1. */
static int task_id_from_json(const char *body, char *out, size_t outlen, char *err,
                             size_t errlen) {
    json_error_t je;
    json_t *doc = json_loads(body, 0, &je);
    const char *arn = doc ? json_string_value(json_object_get(doc, "TaskARN")) : NULL;
    const char *slash = arn ? strrchr(arn, '/') : NULL;
    int rc = -1;
    if (!doc) snprintf(err, errlen, "ECS task metadata: not JSON: %s", je.text);
    else if (!arn) snprintf(err, errlen, "ECS task metadata: no TaskARN");
    else if (!slash || !slash[1]) snprintf(err, errlen, "ECS task metadata: TaskARN without a task id");
    else {
        sanitise(slash + 1, out, outlen);
        rc = 0;
    }
    json_decref(doc);
    return rc;
}

int kafka_ecs_task_id(const char *metadata_uri, char *out, size_t outlen, char *err,
                      size_t errlen) {
    char url[2048];
    if (snprintf(url, sizeof url, "%s/task", metadata_uri) >= (int)sizeof url) {
        snprintf(err, errlen, "ECS task metadata: URI too long");
        return -1;
    }
    CURL *e = curl_easy_init();
    if (!e) { snprintf(err, errlen, "ECS task metadata: out of memory"); return -1; }
    struct http_body b;
    http_body_init(&b, ECS_MAX_BODY);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ECS_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ECS_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &b);
    CURLcode cc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(e);
    int rc = -1;
    if (cc != CURLE_OK)
        snprintf(err, errlen, "ECS task metadata: %s", b.too_big ? "answer too large"
                                                           : cerr[0] ? cerr : curl_easy_strerror(cc));
    else if (status != 200)
        snprintf(err, errlen, "ECS task metadata: HTTP %ld", status);
    else
        rc = task_id_from_json(b.data ? b.data : "", out, outlen, err, errlen);
    http_body_free(&b);
    return rc;
}

int kafka_group_instance_base(const char *configured, char *out, size_t outlen, char *err,
                              size_t errlen) {
    err[0] = '\0';
    if (configured) {
        sanitise(configured, out, outlen);
        return 0;
    }
    const char *uri = getenv("ECS_CONTAINER_METADATA_URI_V4");
    if (uri && *uri && kafka_ecs_task_id(uri, out, outlen, err, errlen) == 0) return 0;
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) {
        snprintf(err + strlen(err), errlen - strlen(err), "%sno host name",
                 err[0] ? "; " : "");
        out[0] = '\0';
        return -1;
    }
    host[sizeof host - 1] = '\0';
    sanitise(host, out, outlen);
    return err[0] ? 1 : 0;
}
