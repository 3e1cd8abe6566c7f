/* src/aws/aws_creds.c: the credential sources of the chain, in the order of the AWS SDKs
 * (see aws.h): environment, web identity, ECS container endpoint; and AssumeRole on top.
 *
 * Each source is tried only when its environment variables are set; the first one set is
 * used and its failure is the chain's failure (the SDKs do the same: a configured source
 * that fails is an error, not a reason to fall through to the next one). The web identity
 * token file and the container authorization token file are read at every fetch: the
 * platform rotates them.
 *
 * Test hook: CGW_TEST_ECS_CREDENTIALS_HOST replaces the ECS link-local host 169.254.170.2
 * (host[:port]) of AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, so tests can serve it on loopback.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/aws_internal.h"
#include "http/http_call.h"

#define ECS_HOST "169.254.170.2"
#define MAX_TOKEN_FILE (64 * 1024)

static const char *env(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* ------------------------------------------------------------------ environment */

static int from_env(struct aws_credentials *c, char *err, size_t errlen) {
    const char *k = env("AWS_ACCESS_KEY_ID"), *s = env("AWS_SECRET_ACCESS_KEY");
    if (!k || !s) {
        snprintf(err, errlen, "%s is set but %s is not", k ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                 k ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        return -1;
    }
    const char *t = env("AWS_SESSION_TOKEN");
    c->access_key_id = strdup(k);
    c->secret_access_key = strdup(s);
    c->session_token = t ? strdup(t) : NULL;
    c->expiration = 0;
    c->source = "environment";
    if (!c->access_key_id || !c->secret_access_key || (t && !c->session_token)) {
        aws_credentials_clear(c);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ files */

/* The whole of a small file, trailing whitespace removed; NULL with err. */
static char *read_token_file(const char *var, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s", var, path);
        return NULL;
    }
    char *buf = malloc(MAX_TOKEN_FILE + 1);
    size_t n = buf ? fread(buf, 1, MAX_TOKEN_FILE + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > MAX_TOKEN_FILE) {
        free(buf);
        snprintf(err, errlen, "%s: %s is empty or larger than %d bytes", var, path, MAX_TOKEN_FILE);
        return NULL;
    }
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------------ web identity */

int aws_sts_answer(const char *what, long status, const struct http_body *b,
                   struct aws_credentials *c, char *err, size_t errlen) {
    char e[512];
    const char *body = b->data ? b->data : "";
    if (aws_parse_sts(body, b->len, c, e, sizeof e) == 0 && status == 200) return 0;
    aws_credentials_clear(c);
    if (status != 200 && strncmp(e, "STS error", 9) != 0)
        snprintf(e, sizeof e, "answer without an STS error document");
    snprintf(err, errlen, "%s: HTTP %ld: %s", what, status, e);
    return -1;
}

static int sts_call(const struct aws *a, const struct aws_request *r, const char *what,
                    struct aws_credentials *c, char *err, size_t errlen) {
    struct http_body b;
    http_body_init(&b, 256 * 1024);
    long status = 0;
    int rc = aws_send(a, r, &status, &b, err, errlen);
    if (rc == 0) rc = aws_sts_answer(what, status, &b, c, err, errlen);
    http_body_free(&b);
    return rc;
}

static int from_web_identity(const struct aws *a, struct aws_credentials *c, char *err,
                             size_t errlen) {
    const char *file = env("AWS_WEB_IDENTITY_TOKEN_FILE"), *role = env("AWS_ROLE_ARN");
    if (!role) {
        snprintf(err, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not");
        return -1;
    }
    char *jwt = read_token_file("AWS_WEB_IDENTITY_TOKEN_FILE", file, err, errlen);
    if (!jwt) return -1;
    const char *name = env("AWS_ROLE_SESSION_NAME");
    struct aws_request r;
    int rc = aws_req_assume_role_web_identity(a->sts_endpoint, role, name ? name : a->session_name,
                                              jwt, &r);
    free(jwt);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = sts_call(a, &r, "STS AssumeRoleWithWebIdentity", c, err, errlen);
    aws_request_free(&r);
    c->source = "web identity";
    return rc;
}

int aws_assume_role(const struct aws *a, const struct aws_credentials *base,
                    struct aws_credentials *c,
                    char *err, size_t errlen) {
    struct aws_request r;
    if (aws_req_assume_role(base, a->region, a->sts_endpoint, a->role_arn, a->session_name,
                            a->clock(), &r) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = sts_call(a, &r, "STS AssumeRole", c, err, errlen);
    aws_request_free(&r);
    c->source = "assume role";
    return rc;
}

/* ------------------------------------------------------------------ ECS */

/* http:// full URIs are allowed only to loopback and the ECS / EKS link-local addresses, as
 * in the SDKs; https anywhere. */
static int full_uri_allowed(const char *uri) {
    if (strncmp(uri, "https://", 8) == 0) return 1;
    if (strncmp(uri, "http://", 7) != 0) return 0;
    char host[256];
    const char *h = uri + 7;
    size_t n = strcspn(h, "/?#");
    snprintf(host, sizeof host, "%.*s", (int)n, h);
    char *at = strrchr(host, '@');
    char *hp = at ? at + 1 : host;
    if (*hp == '[') {
        char *end = strchr(hp, ']');
        if (!end) return 0;
        *end = '\0';
        hp++;
    } else {
        char *colon = strchr(hp, ':');
        if (colon) *colon = '\0';
    }
    struct in_addr a4;
    if (inet_pton(AF_INET, hp, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127 || !strcmp(hp, "169.254.170.2") ||
               !strcmp(hp, "169.254.170.23");
    return !strcasecmp(hp, "localhost") || !strcmp(hp, "::1") || !strcasecmp(hp, "fd00:ec2::23");
}

/* The Authorization value for a full URI: the token file first, as in the SDKs. */
static char *container_token(char *err, size_t errlen) {
    const char *file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    char *t = file ? read_token_file("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", file, err, errlen)
                   : tok ? strdup(tok) : NULL;
    if (t && strpbrk(t, "\r\n")) {
        free(t);
        snprintf(err, errlen, "the container authorization token holds a line break");
        return NULL;
    }
    if (!t && !file && tok) snprintf(err, errlen, "out of memory");
    return t;
}

static int ecs_request(struct aws_request *r, char *err, size_t errlen) {
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    memset(r, 0, sizeof *r);
    r->method = strdup("GET");
    if (rel) {
        const char *host = env("CGW_TEST_ECS_CREDENTIALS_HOST");
        if (asprintf(&r->url, "http://%s%s%s", host ? host : ECS_HOST, *rel == '/' ? "" : "/", rel) < 0)
            r->url = NULL;
    } else if (!full_uri_allowed(full)) {
        snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a "
                              "loopback or ECS/EKS link-local address");
        return -1;
    } else {
        r->url = strdup(full);
        if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") || env("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
            char *t = container_token(err, errlen);
            if (!t) return -1;
            if (asprintf(&r->headers[0], "Authorization: %s", t) < 0) r->headers[0] = NULL;
            free(t);
            if (!r->headers[0]) {
                free(r->url);
                r->url = NULL;
            }
        }
    }
    if (!r->method || !r->url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int from_ecs(const struct aws *a, struct aws_credentials *c, char *err, size_t errlen) {
    struct aws_request r;
    char e[400], origin[256];
    if (ecs_request(&r, e, sizeof e) < 0) {
        aws_request_free(&r);
        snprintf(err, errlen, "ECS credentials: %s", e);
        return -1;
    }
    struct http_body b;
    http_body_init(&b, 64 * 1024);
    long status = 0;
    int rc = aws_send(a, &r, &status, &b, e, sizeof e);
    http_url_origin(r.url, origin, sizeof origin);
    if (rc == 0 && status != 200) {
        snprintf(e, sizeof e, "%s answered HTTP %ld", origin, status);
        rc = -1;
    }
    if (rc == 0) rc = aws_parse_ecs(b.data ? b.data : "", b.len, c, e, sizeof e);
    if (rc < 0) snprintf(err, errlen, "ECS credentials: %s", e);
    c->source = "ecs";
    http_body_free(&b);
    aws_request_free(&r);
    return rc;
}

int aws_chain_fetch(const struct aws *a, struct aws_credentials *c, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (env("AWS_ACCESS_KEY_ID") || env("AWS_SECRET_ACCESS_KEY")) return from_env(c, err, errlen);
    if (env("AWS_WEB_IDENTITY_TOKEN_FILE")) return from_web_identity(a, c, err, errlen);
    if (env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || env("AWS_CONTAINER_CREDENTIALS_FULL_URI"))
        return from_ecs(a, c, err, errlen);
    snprintf(err, errlen, "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                          "or AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, or run where "
                          "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI is set (ECS)");
    return -1;
}
