/* src/aws/aws.c: the aws handle (aws.h): options, the two credential caches and the calls
 * that use them (the MSK token, GetBootstrapBrokers).
 *
 * Cache: the chain's credentials and, with a role, the assumed role's, each renewed when
 * fewer than AWS_REFRESH_BEFORE_S seconds are left. A failed renewal keeps credentials that
 * are still valid (logged as a warning, tried again at the next call); expired credentials
 * are an error. The mutex is held across a renewal, so concurrent callers (two consumers and
 * librdkafka's background threads) wait for one HTTP call instead of each making one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_internal.h"
#include "http/http_call.h"
#include "log/log.h"

static time_t system_clock(void) { return time(NULL); }

static char *dup_or(const char *s, const char *dflt) { return strdup(s && *s ? s : dflt); }

int aws_new(const struct aws_options *o, struct aws **out, char *err, size_t errlen) {
    *out = NULL;
    if (!o->region || !*o->region) {
        snprintf(err, errlen, "aws: no region");
        return -1;
    }
    struct aws *a = calloc(1, sizeof *a);
    char sts[300], msk[300];
    snprintf(sts, sizeof sts, "https://sts.%s.amazonaws.com", o->region);
    snprintf(msk, sizeof msk, "https://kafka.%s.amazonaws.com", o->region);
    if (a) {
        a->region = strdup(o->region);
        a->role_arn = o->role_arn && *o->role_arn ? strdup(o->role_arn) : NULL;
        a->session_name = dup_or(o->role_session_name, AWS_DEFAULT_SESSION_NAME);
        a->sts_endpoint = dup_or(o->sts_endpoint, sts);
        a->msk_endpoint = dup_or(o->msk_endpoint, msk);
        a->user_agent = dup_or(o->user_agent, AWS_DEFAULT_SESSION_NAME);
        a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : AWS_DEFAULT_TIMEOUT_MS;
        a->clock = o->clock ? o->clock : system_clock;
        pthread_mutex_init(&a->mu, NULL);
    }
    if (!a || !a->region || !a->session_name || !a->sts_endpoint || !a->msk_endpoint ||
        !a->user_agent || (o->role_arn && *o->role_arn && !a->role_arn)) {
        aws_free(a);
        snprintf(err, errlen, "aws: out of memory");
        return -1;
    }
    *out = a;
    return 0;
}

void aws_free(struct aws *a) {
    if (!a) return;
    aws_credentials_clear(&a->chain);
    aws_credentials_clear(&a->role);
    free(a->region);
    free(a->role_arn);
    free(a->session_name);
    free(a->sts_endpoint);
    free(a->msk_endpoint);
    free(a->user_agent);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static void wipe_free(char *s) {
    if (s) memset(s, 0, strlen(s));
    free(s);
}

void aws_credentials_clear(struct aws_credentials *c) {
    free(c->access_key_id);
    wipe_free(c->secret_access_key);
    wipe_free(c->session_token);
    memset(c, 0, sizeof *c);
}

static int copy_credentials(const struct aws_credentials *from, struct aws_credentials *to) {
    memset(to, 0, sizeof *to);
    to->access_key_id = strdup(from->access_key_id);
    to->secret_access_key = strdup(from->secret_access_key);
    to->session_token = from->session_token ? strdup(from->session_token) : NULL;
    to->expiration = from->expiration;
    to->source = from->source;
    if (!to->access_key_id || !to->secret_access_key || (from->session_token && !to->session_token)) {
        aws_credentials_clear(to);
        return -1;
    }
    return 0;
}

int aws_send(const struct aws *a, const struct aws_request *r, long *status, struct http_body *body,
             char *err, size_t errlen) {
    const struct http_call c = { r->method, r->url, (const char *const *)r->headers, r->body,
                                 r->body_len, a->timeout_ms, a->user_agent };
    return http_call_perform(&c, status, body, err, errlen);
}

/* ------------------------------------------------------------------ the caches */

static bool fresh(const struct aws_credentials *c, time_t now) {
    return c->access_key_id && (c->expiration == 0 || c->expiration - now > AWS_REFRESH_BEFORE_S);
}

static bool valid(const struct aws_credentials *c, time_t now) {
    return c->access_key_id && (c->expiration == 0 || c->expiration > now);
}

/* Renews *cache with got (fetched with result rc, message e) or keeps it while valid. */
static int settle(struct aws_credentials *cache, struct aws_credentials *got, int rc,
                  const char *e, time_t now, char *err, size_t errlen) {
    char expired[160];
    if (rc == 0 && !valid(got, now)) {      /* a source that hands out expired credentials */
        snprintf(expired, sizeof expired, "credentials from %s expired %lld s ago", got->source,
                 (long long)(now - got->expiration));
        aws_credentials_clear(got);
        e = expired;
        rc = -1;
    }
    if (rc == 0) {
        aws_credentials_clear(cache);
        *cache = *got;
        LOG(LOG_INFO, "AWS credentials obtained", LOG_STR("source", cache->source),
            LOG_INT("expires_in_s", cache->expiration ? (long long)(cache->expiration - now) : -1));
        return 0;
    }
    if (valid(cache, now)) {
        LOG(LOG_WARN, "AWS credentials: renewal failed, the current ones stay in use until they expire",
            LOG_STR("error", e), LOG_INT("expires_in_s", (long long)(cache->expiration - now)));
        return 0;
    }
    snprintf(err, errlen, "%s", e);
    return -1;
}

static int refresh_chain(struct aws *a, time_t now, char *err, size_t errlen) {
    if (fresh(&a->chain, now)) return 0;
    struct aws_credentials got;
    char e[700];
    int rc = aws_chain_fetch(a, &got, e, sizeof e);
    return settle(&a->chain, &got, rc, e, now, err, errlen);
}

static int refresh_role(struct aws *a, time_t now, char *err, size_t errlen) {
    if (fresh(&a->role, now)) return 0;
    struct aws_credentials got = { 0 };
    char e[700];
    int rc = refresh_chain(a, now, e, sizeof e);
    if (rc == 0) rc = aws_assume_role(a, &a->chain, &got, e, sizeof e);
    return settle(&a->role, &got, rc, e, now, err, errlen);
}

int aws_credentials_get(struct aws *a, struct aws_credentials *c, char *err, size_t errlen) {
    char e[800];
    memset(c, 0, sizeof *c);
    pthread_mutex_lock(&a->mu);
    time_t now = a->clock();
    int rc = a->role_arn ? refresh_role(a, now, e, sizeof e) : refresh_chain(a, now, e, sizeof e);
    if (rc == 0 && copy_credentials(a->role_arn ? &a->role : &a->chain, c) < 0) {
        snprintf(e, sizeof e, "out of memory");
        rc = -1;
    }
    pthread_mutex_unlock(&a->mu);
    if (rc < 0) snprintf(err, errlen, "aws credentials: %s", e);
    return rc;
}

/* ------------------------------------------------------------------ MSK */

int aws_msk_token(struct aws *a, char **token, long long *expires_ms, char *err, size_t errlen) {
    struct aws_credentials c;
    *token = NULL;
    if (aws_credentials_get(a, &c, err, errlen) < 0) return -1;
    time_t now = a->clock();
    time_t until = now + AWS_MSK_TOKEN_EXPIRY_S;
    if (c.expiration && c.expiration < until) until = c.expiration;
    *token = aws_req_msk_token(&c, a->region, a->user_agent, now);
    *expires_ms = (long long)until * 1000;
    aws_credentials_clear(&c);
    if (!*token) snprintf(err, errlen, "aws: cannot sign the MSK token (out of memory)");
    return *token ? 0 : -1;
}

/* The "message" of an MSK API error answer, for the error text. */
static void msk_error(long status, const struct http_body *b, char *err, size_t errlen) {
    const char *m = b->data ? strstr(b->data, "\"message\"") : NULL;
    if (m) snprintf(err, errlen, "GetBootstrapBrokers: HTTP %ld: %.300s", status, m);
    else snprintf(err, errlen, "GetBootstrapBrokers: HTTP %ld", status);
}

int aws_msk_bootstrap_brokers(struct aws *a, const char *cluster_arn, char **brokers, char *err,
                              size_t errlen) {
    struct aws_credentials c;
    struct aws_request r;
    *brokers = NULL;
    if (aws_credentials_get(a, &c, err, errlen) < 0) return -1;
    int rc = aws_req_bootstrap_brokers(&c, a->region, a->msk_endpoint, cluster_arn, a->clock(), &r);
    aws_credentials_clear(&c);
    if (rc < 0) {
        snprintf(err, errlen, "GetBootstrapBrokers: out of memory");
        return -1;
    }
    struct http_body b;
    http_body_init(&b, 256 * 1024);
    long status = 0;
    char e[600];
    rc = aws_send(a, &r, &status, &b, e, sizeof e);
    if (rc < 0) snprintf(err, errlen, "GetBootstrapBrokers: %s", e);
    else if (status != 200) {
        msk_error(status, &b, err, errlen);
        rc = -1;
    } else {
        rc = aws_parse_bootstrap_brokers(b.data ? b.data : "", b.len, brokers, err, errlen);
    }
    http_body_free(&b);
    aws_request_free(&r);
    return rc;
}
