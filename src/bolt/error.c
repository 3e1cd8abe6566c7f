/* error.c: error codes, the bolt_error object and the retry classification of Neo4j codes.
 *
 * Errors travel as an int return code plus an optional caller-owned bolt_error, so the
 * library never needs to allocate to report a failure (allocation may be what failed).
 * Server failures keep the Neo4j code and GQL status verbatim; whether a failure is worth
 * retrying is decided here once (docs/bolt.md §7), so the session layer and users agree.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bolt/bolt_internal.h"

static const char *const code_names[BOLT_CODE_COUNT_] = {
    [BOLT_OK] = "BOLT_OK",
    [BOLT_ENOMEM] = "BOLT_ENOMEM",
    [BOLT_EINVAL] = "BOLT_EINVAL",
    [BOLT_ETYPE] = "BOLT_ETYPE",
    [BOLT_ECONNECT] = "BOLT_ECONNECT",
    [BOLT_EIO] = "BOLT_EIO",
    [BOLT_ETIMEDOUT] = "BOLT_ETIMEDOUT",
    [BOLT_ETLS] = "BOLT_ETLS",
    [BOLT_EPROTO] = "BOLT_EPROTO",
    [BOLT_EVERSION] = "BOLT_EVERSION",
    [BOLT_EAUTH] = "BOLT_EAUTH",
    [BOLT_ESERVER] = "BOLT_ESERVER",
    [BOLT_EIGNORED] = "BOLT_EIGNORED",
    [BOLT_EDEFUNCT] = "BOLT_EDEFUNCT",
    [BOLT_ESTATE] = "BOLT_ESTATE",
    [BOLT_EROUTING] = "BOLT_EROUTING",
    [BOLT_EPOOL] = "BOLT_EPOOL",
    [BOLT_ECOMMIT_UNKNOWN] = "BOLT_ECOMMIT_UNKNOWN",
    [BOLT_ECALLBACK] = "BOLT_ECALLBACK",
    [BOLT_ELIMIT] = "BOLT_ELIMIT",
    [BOLT_ECANCELLED] = "BOLT_ECANCELLED",
};

const char *bolt_code_name(int code) {
    if (code < 0 || code >= BOLT_CODE_COUNT_ || !code_names[code]) return "BOLT_E?";
    return code_names[code];
}

void bolt_error_clear(bolt_error *err) {
    if (err) memset(err, 0, sizeof *err);
}

/* Lost connections are retryable (a new connection may work); errors of the request itself
 * (bad arguments, protocol violations, auth) are not. */
static int code_retryable(int code) {
    return code == BOLT_ECONNECT || code == BOLT_EIO || code == BOLT_ETIMEDOUT ||
           code == BOLT_EDEFUNCT || code == BOLT_EPOOL || code == BOLT_EROUTING;
}

int bolt_err(bolt_error *err, int code, const char *fmt, ...) {
    if (!err) return code;
    bolt_error_clear(err);
    err->code = code;
    err->retryable = code_retryable(code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

int bolt_neo4j_code_retryable(const char *code, const char *classification) {
    if (!code) code = "";
    /* 5.x reclassified these two as client errors (Go driver reclassify()). */
    if (!strcmp(code, "Neo.TransientError.Transaction.Terminated") ||
        !strcmp(code, "Neo.TransientError.Transaction.LockClientStopped"))
        return 0;
    if (!strncmp(code, "Neo.TransientError.", 19)) return 1;
    if (!strcmp(code, "Neo.ClientError.Cluster.NotALeader") ||
        !strcmp(code, "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase") ||
        !strcmp(code, "Neo.ClientError.Security.AuthorizationExpired"))
        return 1;
    if (!code[0] && classification && !strcmp(classification, "TRANSIENT_ERROR")) return 1;
    return 0;
}

static void copy_str(char *dst, size_t size, const bolt_value *v) {
    const char *s = bolt_value_string(v, NULL);
    snprintf(dst, size, "%s", s ? s : "");
}

int bolt_err_from_failure(bolt_error *err, const bolt_value *meta) {
    if (!err) return BOLT_ESERVER;
    bolt_error_clear(err);
    err->code = BOLT_ESERVER;
    const bolt_value *code = bolt_map_get(meta, "neo4j_code");   /* 5.7+ */
    if (!code) code = bolt_map_get(meta, "code");
    copy_str(err->neo4j_code, sizeof err->neo4j_code, code);
    copy_str(err->gql_status, sizeof err->gql_status, bolt_map_get(meta, "gql_status"));
    const bolt_value *diag = bolt_map_get(meta, "diagnostic_record");
    copy_str(err->classification, sizeof err->classification,
             bolt_map_get(diag, "_classification"));
    const bolt_value *msg = bolt_map_get(meta, "message");
    if (!msg) msg = bolt_map_get(meta, "description");
    copy_str(err->message, sizeof err->message, msg);
    err->retryable = bolt_neo4j_code_retryable(err->neo4j_code, err->classification);
    if (!strncmp(err->neo4j_code, "Neo.ClientError.Security.", 25) &&
        strcmp(err->neo4j_code, "Neo.ClientError.Security.AuthorizationExpired") != 0 &&
        strcmp(err->neo4j_code, "Neo.ClientError.Security.Forbidden") != 0)
        err->code = BOLT_EAUTH;
    return err->code;
}

int64_t bolt_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
