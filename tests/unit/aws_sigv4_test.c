/* tests/unit/aws_sigv4_test.c: src/aws/sigv4 against the AWS Signature Version 4 test suite
 * (tests/unit/data/aws4_testsuite, copied from botocore's source distribution; see ORIGIN
 * there). For every case directory holding a .req, the raw HTTP request is parsed and the
 * canonical request, the string to sign and the Authorization header are compared with the
 * .creq, .sts and .authz files byte for byte. Every case of the suite runs, including the
 * four botocore itself skips (repeated query keys, a space in the path).
 *
 * Also here: a presigned URL in the shape of botocore's SigV4QueryAuth for a hand-checked
 * case; the byte-for-byte comparison with botocore and AWS's MSK signer is in
 * tests/py/test_aws_oracle.py. */
#define TEST_MAIN
#include "test.h"

#include <dirent.h>
#include <stdbool.h>
#include <strings.h>

#include "aws/sigv4.h"

#define SUITE "tests/unit/data/aws4_testsuite"
#define SUITE_TIME 1440938160   /* 20150830T123600Z */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        if (!n) break;
        len += n;
    }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

struct raw {
    char method[16];
    char *target;
    char *path, *query;
    struct sigv4_header h[16];
    char *hbuf[16];
    size_t nh;
    char *body;
};

/* "METHOD target HTTP/1.1\nName:value\n  continuation\n...\n\nbody" */
static bool parse_req(char *text, struct raw *r) {
    memset(r, 0, sizeof *r);
    char *line_end = strchr(text, '\n');
    if (line_end) *line_end = '\0';
    char *sp = strchr(text, ' '), *ver = strrchr(text, ' ');
    if (!sp || !ver || sp == ver) return false;
    snprintf(r->method, sizeof r->method, "%.*s", (int)(sp - text), text);
    *ver = '\0';
    r->target = strdup(sp + 1);
    char *q = strchr(r->target, '?');
    r->path = r->target;
    r->query = q ? q + 1 : NULL;
    if (q) *q = '\0';
    char *p = line_end ? line_end + 1 : text + strlen(text);
    while (*p && *p != '\n') {
        char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((*p == ' ' || *p == '\t') && r->nh) {       /* continuation line */
            char *prev = r->hbuf[r->nh - 1];
            size_t pl = strlen(prev);
            prev = realloc(prev, pl + n + 2);
            snprintf(prev + pl, n + 2, " %.*s", (int)n, p);
            r->hbuf[r->nh - 1] = prev;
        } else if (r->nh < 16) {
            r->hbuf[r->nh++] = strndup(p, n);
        }
        p = e ? e + 1 : p + n;
    }
    for (size_t i = 0; i < r->nh; i++) {
        char *c = strchr(r->hbuf[i], ':');
        if (!c) return false;
        *c = '\0';
        r->h[i] = (struct sigv4_header){ r->hbuf[i], c + 1 };
    }
    r->body = *p == '\n' ? p + 1 : NULL;
    return true;
}

static void free_raw(struct raw *r) {
    free(r->target);
    for (size_t i = 0; i < r->nh; i++) free(r->hbuf[i]);
}

static void chomp(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

static const struct sigv4_signer suite_signer = {
    .access_key_id = "AKIDEXAMPLE",
    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    .region = "us-east-1",
    .service = "service",
    .now = SUITE_TIME,
};

/* Compares our output for one case; returns a failure text or NULL. */
static const char *run_case(const char *dir, const char *name, char *why, size_t wlen) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s.req", dir, name);
    char *req = slurp(path);
    struct raw r;
    if (!req || !parse_req(req, &r)) {
        free(req);
        snprintf(why, wlen, "%s: cannot parse", path);
        return why;
    }
    struct sigv4_request sr = { r.method, r.path, r.query, r.h, r.nh, r.body,
                                r.body ? strlen(r.body) : 0 };
    /* As botocore's test: a token in the expected canonical request means the signer holds
     * it and adds the header itself (sigv4_sign_request). */
    struct sigv4_signer s = suite_signer;
    snprintf(path, sizeof path, "%s/%s.creq", dir, name);
    char *want_creq = slurp(path), *tok = want_creq ? strstr(want_creq, "\nx-amz-security-token:") : NULL;
    char token[512] = "";
    if (tok) sscanf(tok + strlen("\nx-amz-security-token:"), "%511[^\n]", token);
    s.session_token = *token ? token : NULL;
    char amzdate[SIGV4_AMZDATE_LEN];
    char *authz = sigv4_sign_request(&s, &sr, amzdate);
    struct sigv4_header h[18];
    memcpy(h, r.h, r.nh * sizeof *h);
    size_t nh = r.nh;
    bool has_token_header = false;
    for (size_t i = 0; i < r.nh; i++)
        has_token_header |= strcasecmp(r.h[i].name, "x-amz-security-token") == 0;
    if (*token && !has_token_header)
        h[nh++] = (struct sigv4_header){ "X-Amz-Security-Token", token };
    sr.headers = h;
    sr.nheaders = nh;
    free(want_creq);
    char *creq = sigv4_canonical_request(&sr, NULL);
    char *sts = creq ? sigv4_string_to_sign(&s, creq) : NULL;
    const char *ext[] = { "creq", "sts", "authz" };
    char *got[] = { creq, sts, authz };
    const char *fail = NULL;
    for (int i = 0; i < 3 && !fail; i++) {
        snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext[i]);
        char *want = slurp(path);
        if (want) chomp(want);
        if (!want || !got[i] || strcmp(want, got[i]) != 0) {
            snprintf(why, wlen, "%s: got\n%s\nwant\n%s", path, got[i] ? got[i] : "(null)",
                     want ? want : "(missing)");
            fail = why;
        }
        free(want);
    }
    free(creq);
    free(sts);
    free(authz);
    free_raw(&r);
    free(req);
    return fail;
}

/* Walks the suite; every directory with a <name>/<name>.req is one case. */
static void walk(const char *dir, int *cases, char *why, size_t wlen, const char **fail) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) && !*fail) {
        if (e->d_name[0] == '.') continue;
        char sub[1024], req[2048];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        snprintf(req, sizeof req, "%s/%s.req", sub, e->d_name);
        FILE *f = fopen(req, "r");
        if (f) {
            fclose(f);
            (*cases)++;
            *fail = run_case(sub, e->d_name, why, wlen);
        } else {
            walk(sub, cases, why, wlen, fail);
        }
    }
    closedir(d);
}

TEST(aws4_testsuite_every_case) {
    static char why[8192];
    int cases = 0;
    const char *fail = NULL;
    walk(SUITE, &cases, why, sizeof why, &fail);
    CHECKF(!fail, "%s", fail);
    CHECKF(cases == 34, "expected the suite's 34 cases, ran %d", cases);
}

TEST(presign_shape_and_session_token) {
    struct sigv4_signer s = suite_signer;
    s.service = "kafka-cluster";
    s.session_token = "tok/en+=";
    struct sigv4_header p[] = { { "Action", "kafka-cluster:Connect" } };
    char *url = sigv4_presign(&s, "https://kafka.us-east-1.amazonaws.com/",
                              "kafka.us-east-1.amazonaws.com", p, 1, 900);
    CHECK(url);
    const char *want_prefix =
        "https://kafka.us-east-1.amazonaws.com/?Action=kafka-cluster%3AConnect"
        "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fkafka-cluster%2Faws4_request"
        "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
        "&X-Amz-Security-Token=tok%2Fen%2B%3D&X-Amz-Signature=";
    CHECKF(strncmp(url, want_prefix, strlen(want_prefix)) == 0, "%s", url);
    CHECK_EQ_INT(strlen(url), strlen(want_prefix) + 64);
    free(url);
}

TEST(uri_encode_keeps_only_unreserved) {
    char *e = sigv4_uri_encode("a b/c:~é", strlen("a b/c:~é"), NULL);
    CHECK_EQ_STR(e, "a%20b%2Fc%3A~%C3%A9");
    free(e);
    e = sigv4_uri_encode("/v1/x", 5, "/");
    CHECK_EQ_STR(e, "/v1/x");
    free(e);
}
