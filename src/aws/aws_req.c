/* src/aws/aws_req.c: the requests the worker sends to AWS, built as pure functions of the
 * credentials, the region, the endpoint and the time (see aws.h). Each mirrors what
 * botocore sends for the same operation, so that tests can compare them byte for byte:
 *
 *   MSK IAM token           botocore SigV4QueryAuth as used by aws-msk-iam-sasl-signer
 *   GetBootstrapBrokers     GET /v1/clusters/{ClusterArn}/bootstrap-brokers, SigV4 "kafka"
 *   AssumeRole              POST / form body (Action, Version, RoleArn, RoleSessionName),
 *                           SigV4 "sts"
 *   AssumeRoleWith-         the same without a signature (the SDKs send it unsigned; the
 *   WebIdentity             web identity token is the credential)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "aws/aws.h"
#include "aws/sigv4.h"

#define STS_VERSION "2011-06-15"
#define FORM_TYPE "application/x-www-form-urlencoded; charset=utf-8"

void aws_request_free(struct aws_request *r) {
    free(r->method);
    free(r->url);
    for (size_t i = 0; i < sizeof r->headers / sizeof r->headers[0]; i++) free(r->headers[i]);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* base64url without padding (RFC 4648 section 5), as the MSK signers encode the URL. */
static char *base64url(const char *in) {
    size_t n = strlen(in);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (!out) return NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)n);
    while (len > 0 && out[len - 1] == '=') len--;
    out[len] = '\0';
    for (char *p = out; *p; p++) {
        if (*p == '+') *p = '-';
        else if (*p == '/') *p = '_';
    }
    return out;
}

char *aws_req_msk_token(const struct aws_credentials *c, const char *region,
                        const char *user_agent, time_t now) {
    char host[256], base[300];
    snprintf(host, sizeof host, "kafka.%s.amazonaws.com", region);
    snprintf(base, sizeof base, "https://%s/", host);
    struct sigv4_signer s = { c->access_key_id, c->secret_access_key, c->session_token, region,
                              "kafka-cluster", now };
    struct sigv4_header action = { "Action", "kafka-cluster:Connect" };
    char *url = sigv4_presign(&s, base, host, &action, 1, AWS_MSK_TOKEN_EXPIRY_S);
    char *ua = sigv4_uri_encode(user_agent, strlen(user_agent), NULL), *full = NULL, *tok = NULL;
    if (url && ua && asprintf(&full, "%s&User-Agent=%s", url, ua) >= 0) tok = base64url(full);
    free(url);
    free(ua);
    free(full);
    return tok;
}

/* Host header of endpoint ("https://h:443/x" -> "h"; a non-default port is kept), and the
 * endpoint without trailing slashes into base. -1 when it is not an http(s) URL. */
static int split_endpoint(const char *endpoint, char *host, size_t hlen, char *base, size_t blen) {
    const char *p = strstr(endpoint, "://");
    if (!p || (strncmp(endpoint, "https://", 8) != 0 && strncmp(endpoint, "http://", 7) != 0))
        return -1;
    size_t n = strcspn(p + 3, "/?#");
    snprintf(host, hlen, "%.*s", (int)n, p + 3);
    const char *dflt = endpoint[4] == 's' ? ":443" : ":80";
    size_t hl = strlen(host), dl = strlen(dflt);
    if (hl > dl && strcmp(host + hl - dl, dflt) == 0) host[hl - dl] = '\0';
    snprintf(base, blen, "%s", endpoint);
    size_t bl = strlen(base);
    while (bl > (size_t)(p - endpoint) + 3 && base[bl - 1] == '/') base[--bl] = '\0';
    return 0;
}

static char *dupf(const char *fmt, const char *a, const char *b) {
    char *out = NULL;
    return asprintf(&out, fmt, a, b ? b : "") < 0 ? NULL : out;
}

/* Signs r (method, url, body and headers[0..n) already set) and appends X-Amz-Date, the
 * token header and Authorization to r->headers. */
static int sign_into(const struct aws_credentials *c, const char *region, const char *service,
                     const char *host, const char *path, time_t now, struct aws_request *r,
                     size_t n, const struct sigv4_header *h) {
    struct sigv4_header all[8];
    all[0] = (struct sigv4_header){ "host", host };
    if (n) memcpy(all + 1, h, n * sizeof *h);
    struct sigv4_signer s = { c->access_key_id, c->secret_access_key, c->session_token, region,
                              service, now };
    struct sigv4_request sr = { r->method, path, NULL, all, n + 1, r->body, r->body_len };
    char amzdate[SIGV4_AMZDATE_LEN], *auth = sigv4_sign_request(&s, &sr, amzdate);
    if (!auth) return -1;
    r->headers[n++] = dupf("X-Amz-Date: %s%s", amzdate, NULL);
    if (c->session_token && *c->session_token)
        r->headers[n++] = dupf("X-Amz-Security-Token: %s%s", c->session_token, NULL);
    r->headers[n++] = dupf("Authorization: %s%s", auth, NULL);
    free(auth);
    for (size_t i = 0; i < n; i++)
        if (!r->headers[i]) return -1;
    return 0;
}

int aws_req_bootstrap_brokers(const struct aws_credentials *c, const char *region,
                              const char *endpoint, const char *cluster_arn, time_t now,
                              struct aws_request *r) {
    char host[256], base[512];
    memset(r, 0, sizeof *r);
    if (split_endpoint(endpoint, host, sizeof host, base, sizeof base) < 0) return -1;
    char *arn = sigv4_uri_encode(cluster_arn, strlen(cluster_arn), NULL);
    char *path = arn ? dupf("/v1/clusters/%s%s", arn, "/bootstrap-brokers") : NULL;
    free(arn);
    r->method = strdup("GET");
    r->url = path ? dupf("%s%s", base, path) : NULL;
    int rc = r->method && r->url ? sign_into(c, region, "kafka", host, path, now, r, 0, NULL) : -1;
    free(path);
    if (rc < 0) aws_request_free(r);
    return rc;
}

/* A form body "k=v&..." of n name/value pairs, values percent-encoded. */
static char *form(const struct sigv4_header *p, size_t n, size_t *len) {
    char *out = NULL;
    FILE *f = open_memstream(&out, len);
    if (!f) return NULL;
    for (size_t i = 0; i < n; i++) {
        char *v = sigv4_uri_encode(p[i].value, strlen(p[i].value), NULL);
        if (v) fprintf(f, "%s%s=%s", i ? "&" : "", p[i].name, v);
        free(v);
    }
    fclose(f);
    return out;
}

static int sts_request(const char *endpoint, const struct sigv4_header *params, size_t n,
                       char *host, size_t hlen, struct aws_request *r) {
    char base[512];
    memset(r, 0, sizeof *r);
    if (split_endpoint(endpoint, host, hlen, base, sizeof base) < 0) return -1;
    r->method = strdup("POST");
    r->url = dupf("%s%s", base, "/");
    r->body = form(params, n, &r->body_len);
    r->headers[0] = strdup("Content-Type: " FORM_TYPE);
    return r->method && r->url && r->body && r->headers[0] ? 0 : -1;
}

int aws_req_assume_role(const struct aws_credentials *c, const char *region,
                        const char *endpoint, const char *role_arn, const char *session_name,
                        time_t now, struct aws_request *r) {
    const struct sigv4_header p[] = { { "Action", "AssumeRole" }, { "Version", STS_VERSION },
                                      { "RoleArn", role_arn }, { "RoleSessionName", session_name } };
    const struct sigv4_header ct = { "Content-Type", FORM_TYPE };
    char host[256];
    int rc = sts_request(endpoint, p, 4, host, sizeof host, r);
    if (rc == 0) rc = sign_into(c, region, "sts", host, "/", now, r, 1, &ct);
    if (rc < 0) aws_request_free(r);
    return rc;
}

int aws_req_assume_role_web_identity(const char *endpoint, const char *role_arn,
                                     const char *session_name, const char *web_identity_token,
                                     struct aws_request *r) {
    const struct sigv4_header p[] = { { "Action", "AssumeRoleWithWebIdentity" },
                                      { "Version", STS_VERSION },
                                      { "RoleArn", role_arn },
                                      { "RoleSessionName", session_name },
                                      { "WebIdentityToken", web_identity_token } };
    char host[256];
    int rc = sts_request(endpoint, p, 5, host, sizeof host, r);
    if (rc < 0) aws_request_free(r);
    return rc;
}
