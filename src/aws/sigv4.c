/* src/aws/sigv4.c: AWS Signature Version 4 (see sigv4.h for the canonicalisation rules and
 * why it is written here). Strings are built with open_memstream; every intermediate that
 * could hold key material (the derived keys) lives on the stack and is wiped. */
#include "aws/sigv4.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

void sigv4_amzdate(time_t t, char out[SIGV4_AMZDATE_LEN]) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, SIGV4_AMZDATE_LEN, "%Y%m%dT%H%M%SZ", &tm);
}

static void hex(const unsigned char *d, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void sigv4_sha256_hex(const void *data, size_t n, char out[65]) {
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    hex(md, 32, out);
}

static bool unreserved(unsigned char c) {
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

char *sigv4_uri_encode(const char *in, size_t n, const char *keep) {
    char *out = malloc(3 * n + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (unreserved(c) || (keep && c && strchr(keep, c))) *o++ = (char)c;
        else o += sprintf(o, "%%%02X", c);
    }
    *o = '\0';
    return out;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes n bytes of in into out (out may be in); returns the decoded length. */
static size_t uri_decode(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (in[i] == '%' && i + 2 < n && (h = hexval((unsigned char)in[i + 1])) >= 0 &&
            (l = hexval((unsigned char)in[i + 2])) >= 0) {
            out[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

/* ------------------------------------------------------------------ canonical path */

/* Removes dot segments and empty segments: "//a/./b/../c/" -> "/a/c/". */
static char *normalize_path(const char *path) {
    size_t n = strlen(path);
    char *out = malloc(n + 2);
    if (!out) return NULL;
    size_t o = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        const char *seg = p;
        while (*p && *p != '/') p++;
        size_t len = (size_t)(p - seg);
        if (len == 0 || (len == 1 && seg[0] == '.')) continue;
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
            continue;
        }
        out[o++] = '/';
        memcpy(out + o, seg, len);
        o += len;
    }
    bool trailing = n > 0 && path[n - 1] == '/';
    if (o == 0 || trailing) out[o++] = '/';
    out[o] = '\0';
    return out;
}

static char *canonical_path(const char *path) {
    char *norm = normalize_path(path && *path ? path : "/");
    if (!norm) return NULL;
    char *enc = sigv4_uri_encode(norm, strlen(norm), "/");
    free(norm);
    return enc;
}

/* ------------------------------------------------------------------ canonical query */

struct pair {
    char *key, *value;
};

static int cmp_pair(const void *a, const void *b) {
    const struct pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* One "k=v" of the wire query, decoded and re-encoded. 0 or -1. */
static int query_pair(const char *s, size_t n, struct pair *p) {
    const char *eq = memchr(s, '=', n);
    size_t kn = eq ? (size_t)(eq - s) : n;
    const char *v = eq ? eq + 1 : s + n;
    size_t vn = eq ? n - kn - 1 : 0;
    char *tmp = malloc(n + 1);
    if (!tmp) return -1;
    size_t dk = uri_decode(s, kn, tmp);
    p->key = sigv4_uri_encode(tmp, dk, NULL);
    size_t dv = uri_decode(v, vn, tmp);
    p->value = sigv4_uri_encode(tmp, dv, NULL);
    free(tmp);
    return p->key && p->value ? 0 : -1;
}

static void free_pairs(struct pair *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

static char *canonical_query(const char *q) {
    size_t cap = 1;
    for (const char *c = q ? q : ""; *c; c++) cap += *c == '&';
    struct pair *pairs = calloc(cap, sizeof *pairs);
    if (!pairs) return NULL;
    size_t n = 0;
    for (const char *s = q ? q : ""; *s;) {
        const char *e = strchr(s, '&');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len && query_pair(s, len, &pairs[n++]) < 0) {
            free_pairs(pairs, n);
            return NULL;
        }
        s += len + (e ? 1 : 0);
    }
    qsort(pairs, n, sizeof *pairs, cmp_pair);
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    if (f) {
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
        fclose(f);
    }
    free_pairs(pairs, n);
    return out;
}

/* ------------------------------------------------------------------ canonical headers */

/* Lower-cased name and whitespace-collapsed value of one header. */
static int header_pair(const struct sigv4_header *h, struct pair *p) {
    p->key = strdup(h->name);
    p->value = malloc(strlen(h->value) + 1);
    if (!p->key || !p->value) return -1;
    for (char *c = p->key; *c; c++) *c = (char)tolower((unsigned char)*c);
    size_t o = 0;
    bool space = false;
    for (const char *c = h->value; *c; c++) {
        if (isspace((unsigned char)*c)) {
            space = o > 0;
            continue;
        }
        if (space) p->value[o++] = ' ';
        space = false;
        p->value[o++] = *c;
    }
    p->value[o] = '\0';
    return 0;
}

static int cmp_header(const void *a, const void *b) {
    return strcmp(((const struct pair *)a)->key, ((const struct pair *)b)->key);
}

/* Writes "name:v1,v2\n" per distinct name (stable order of repeated names) to f and the
 * "a;b" list to sh. */
static int canonical_headers(const struct sigv4_request *r, FILE *f, FILE *sh) {
    struct pair *h = calloc(r->nheaders ? r->nheaders : 1, sizeof *h);
    if (!h) return -1;
    int rc = 0;
    for (size_t i = 0; i < r->nheaders && rc == 0; i++) rc = header_pair(&r->headers[i], &h[i]);
    /* qsort is not stable; repeated names must keep their order: sort indices by name. */
    for (size_t i = 1; i < r->nheaders && rc == 0; i++)
        for (size_t j = i; j > 0 && cmp_header(&h[j - 1], &h[j]) > 0; j--) {
            struct pair t = h[j];
            h[j] = h[j - 1];
            h[j - 1] = t;
        }
    for (size_t i = 0; i < r->nheaders && rc == 0; i++) {
        bool first = i == 0 || strcmp(h[i - 1].key, h[i].key) != 0;
        if (first) fprintf(f, "%s%s:%s", i ? "\n" : "", h[i].key, h[i].value);
        else fprintf(f, ",%s", h[i].value);
        if (first) fprintf(sh, "%s%s", i ? ";" : "", h[i].key);
    }
    fputc('\n', f);
    free_pairs(h, r->nheaders);
    return rc;
}

char *sigv4_canonical_request(const struct sigv4_request *r, char **signed_headers) {
    char *out = NULL, *sh = NULL, *path = canonical_path(r->path), *query = canonical_query(r->query);
    size_t olen = 0, shlen = 0;
    FILE *f = open_memstream(&out, &olen), *fs = open_memstream(&sh, &shlen);
    int rc = path && query && f && fs ? 0 : -1;
    if (rc == 0) {
        fprintf(f, "%s\n%s\n%s\n", r->method, path, query);
        rc = canonical_headers(r, f, fs);
    }
    if (fs) fclose(fs);
    if (rc == 0) {
        char body[65];
        sigv4_sha256_hex(r->body ? r->body : "", r->body ? r->body_len : 0, body);
        fprintf(f, "\n%s\n%s", sh, body);
    }
    if (f) fclose(f);
    free(path);
    free(query);
    if (rc != 0 || !out) {
        free(out);
        free(sh);
        return NULL;
    }
    if (signed_headers) *signed_headers = sh;
    else free(sh);
    return out;
}

/* ------------------------------------------------------------------ signing */

static char *scope(const struct sigv4_signer *s) {
    char date[SIGV4_AMZDATE_LEN], *out = NULL;
    sigv4_amzdate(s->now, date);
    if (asprintf(&out, "%.8s/%s/%s/aws4_request", date, s->region, s->service) < 0) return NULL;
    return out;
}

char *sigv4_string_to_sign(const struct sigv4_signer *s, const char *canonical_request) {
    char date[SIGV4_AMZDATE_LEN], digest[65], *sc = scope(s), *out = NULL;
    if (!sc) return NULL;
    sigv4_amzdate(s->now, date);
    sigv4_sha256_hex(canonical_request, strlen(canonical_request), digest);
    if (asprintf(&out, ALGORITHM "\n%s\n%s\n%s", date, sc, digest) < 0) out = NULL;
    free(sc);
    return out;
}

static int hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32]) {
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out,
                &len) && len == 32 ? 0 : -1;
}

int sigv4_signature(const struct sigv4_signer *s, const char *sts, char out[65]) {
    char date[SIGV4_AMZDATE_LEN], day[9];
    sigv4_amzdate(s->now, date);
    snprintf(day, sizeof day, "%.8s", date);
    size_t klen = strlen(s->secret_access_key) + 4;
    char *k = malloc(klen + 1);
    if (!k) return -1;
    snprintf(k, klen + 1, "AWS4%s", s->secret_access_key);
    unsigned char a[32], b[32];
    int rc = hmac(k, klen, day, a) || hmac(a, 32, s->region, b) || hmac(b, 32, s->service, a) ||
             hmac(a, 32, "aws4_request", b) || hmac(b, 32, sts, a) ? -1 : 0;
    if (rc == 0) hex(a, 32, out);
    OPENSSL_cleanse(k, klen);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    free(k);
    return rc;
}

/* Signature of r, and its signed header list. 0 or -1. */
static int sign(const struct sigv4_signer *s, const struct sigv4_request *r, char sig[65],
                char **signed_headers) {
    char *creq = sigv4_canonical_request(r, signed_headers);
    char *sts = creq ? sigv4_string_to_sign(s, creq) : NULL;
    int rc = sts ? sigv4_signature(s, sts, sig) : -1;
    free(creq);
    free(sts);
    if (rc != 0 && *signed_headers) {
        free(*signed_headers);
        *signed_headers = NULL;
    }
    return rc;
}

char *sigv4_authorization(const struct sigv4_signer *s, const struct sigv4_request *r) {
    char sig[65], *sh = NULL, *sc = scope(s), *out = NULL;
    if (sc && sign(s, r, sig, &sh) == 0 &&
        asprintf(&out, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 s->access_key_id, sc, sh, sig) < 0)
        out = NULL;
    free(sc);
    free(sh);
    return out;
}

char *sigv4_sign_request(const struct sigv4_signer *s, const struct sigv4_request *r,
                         char amzdate[SIGV4_AMZDATE_LEN]) {
    struct sigv4_header *h = calloc(r->nheaders + 2, sizeof *h);
    if (!h) return NULL;
    bool token = s->session_token && *s->session_token;
    size_t n = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, "x-amz-date") != 0 &&
            !(token && strcasecmp(r->headers[i].name, "x-amz-security-token") == 0))
            h[n++] = r->headers[i];
    sigv4_amzdate(s->now, amzdate);
    h[n++] = (struct sigv4_header){ "X-Amz-Date", amzdate };
    if (token) h[n++] = (struct sigv4_header){ "X-Amz-Security-Token", s->session_token };
    struct sigv4_request signed_r = *r;
    signed_r.headers = h;
    signed_r.nheaders = n;
    char *auth = sigv4_authorization(s, &signed_r);
    free(h);
    return auth;
}

/* ------------------------------------------------------------------ presigning */

/* "k=v&k=v" of params encoded as botocore's percent_encode_sequence does. */
static void write_params(FILE *f, const struct sigv4_header *p, size_t n, bool *first) {
    for (size_t i = 0; i < n; i++) {
        char *k = sigv4_uri_encode(p[i].name, strlen(p[i].name), NULL);
        char *v = sigv4_uri_encode(p[i].value, strlen(p[i].value), NULL);
        if (k && v) fprintf(f, "%s%s=%s", *first ? "" : "&", k, v);
        *first = false;
        free(k);
        free(v);
    }
}

/* The query without the signature: the caller's parameters, then the X-Amz-* ones. */
static char *presign_query(const struct sigv4_signer *s, const struct sigv4_header *params,
                           size_t nparams, int expires_s) {
    char date[SIGV4_AMZDATE_LEN], expires[16], credential[512], *sc = scope(s), *q = NULL;
    size_t qlen = 0;
    if (!sc) return NULL;
    sigv4_amzdate(s->now, date);
    snprintf(expires, sizeof expires, "%d", expires_s);
    snprintf(credential, sizeof credential, "%s/%s", s->access_key_id, sc);
    free(sc);
    struct sigv4_header auth[] = {
        { "X-Amz-Algorithm", ALGORITHM }, { "X-Amz-Credential", credential },
        { "X-Amz-Date", date },           { "X-Amz-Expires", expires },
        { "X-Amz-SignedHeaders", "host" }, { "X-Amz-Security-Token", s->session_token },
    };
    size_t nauth = s->session_token && *s->session_token ? 6 : 5;
    FILE *f = open_memstream(&q, &qlen);
    if (!f) return NULL;
    bool first = true;
    write_params(f, params, nparams, &first);
    write_params(f, auth, nauth, &first);
    fclose(f);
    return q;
}

char *sigv4_presign(const struct sigv4_signer *s, const char *base, const char *host,
                    const struct sigv4_header *params, size_t nparams, int expires_s) {
    const char *scheme_end = strstr(base, "://");
    const char *path = scheme_end ? strchr(scheme_end + 3, '/') : NULL;
    char *q = presign_query(s, params, nparams, expires_s), *sh = NULL, *out = NULL, sig[65];
    struct sigv4_header h = { "host", host };
    struct sigv4_request r = { .method = "GET", .path = path ? path : "/", .query = q,
                               .headers = &h, .nheaders = 1 };
    if (q && sign(s, &r, sig, &sh) == 0 &&
        asprintf(&out, "%s%s?%s&X-Amz-Signature=%s", base, path ? "" : "/", q, sig) < 0)
        out = NULL;
    free(q);
    free(sh);
    return out;
}
