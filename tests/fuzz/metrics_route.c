/* tests/fuzz/metrics_route.c: libFuzzer target for what the metrics listener decides itself
 * (src/metrics/metrics_route.c): the route, the bearer-token check and the gzip negotiation.
 *
 * libmicrohttpd parses HTTP; its parser is the library's and is not fuzzed here. What reaches
 * our code is the method, the path and two header values, so the input is exactly that: a
 * first byte of settings (token set, listener on loopback, hook present, probes failing, a
 * large hook body), then "method\npath\nAuthorization\nAccept-Encoding" (a missing line is an
 * absent header). Oracles written apart from the code under test decide what the answer must
 * be: 405 for other methods; 401 exactly for the hook's paths when a token is asked and the
 * header is not "Bearer <token>"; gzip exactly when Accept-Encoding lists gzip with no q or a
 * valid q above 0 (RFC 9110 qvalue; the last q decides, a malformed one refuses) and the body is large enough, and then the body inflates
 * to the plain answer.
 *
 *   make fuzz-metrics_route
 *   build/fuzz/metrics_route -dict=tests/fuzz/metrics_route.dict <scratch dir> tests/fuzz/metrics_route/
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "metrics/metrics_internal.h"

#define TOKEN "s3cr3t-Token_value"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct metrics_registry *registry(void) {
    static struct metrics_registry *reg;
    if (!reg) {
        reg = metrics_new_registry();
        metrics_inc_counter(metrics_register_counter(reg, "cgw_fuzz_total", "A counter for the fuzz target.",
                                                     "consumer", "receipt", NULL));
        metrics_observe(metrics_register_histogram(reg, "cgw_fuzz_seconds", "A histogram for the fuzz target.",
                                                   metrics_duration_buckets, metrics_duration_buckets_count, NULL),
                        0.5);
    }
    return reg;
}

static int failing_probe(void *ud, char *reason, size_t len) {
    (void)ud;
    snprintf(reason, len, "neo4j unreachable");
    return -1;
}

static int hook(void *ud, const char *path, char **body, const char **ctype) {
    bool big = *(const bool *)ud;
    if (strncmp(path, "/status", 7) != 0) return 0;
    size_t n = big ? 4096 : 16;
    *body = malloc(n + 1);
    if (!*body) return 500;
    for (size_t i = 0; i < n; i++) (*body)[i] = "status page "[i % 12];
    (*body)[n] = '\0';
    *ctype = "text/html; charset=utf-8";
    return 200;
}

/* ---- oracles ---------------------------------------------------------------------------- */

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

/* RFC 9110 qvalue: 0[.ddd] or 1[.000]; thousandths, -1 when malformed. */
static int oracle_q(const char *v) {
    size_t n = strlen(v);
    if (n == 0 || n > 5) return -1;
    if (v[0] == '1') {
        if (n == 1) return 1000;
        if (v[1] != '.' || strspn(v + 2, "0") != n - 2) return -1;
        return 1000;
    }
    if (v[0] != '0') return -1;
    if (n == 1) return 0;
    if (v[1] != '.' || strspn(v + 2, "0123456789") != n - 2) return -1;
    char digits[4] = "000";
    memcpy(digits, v + 2, n - 2);
    return atoi(digits);
}

static bool oracle_gzip(const char *ae) {
    if (!ae) return false;
    char *copy = strdup(ae), *save = NULL;
    bool verdict = false;
    for (char *el = strtok_r(copy, ",", &save); el; el = strtok_r(NULL, ",", &save)) {
        char *semi = strchr(el, ';'), *params = semi ? semi + 1 : NULL;
        if (semi) *semi = '\0';
        if (strcasecmp(trim(el), "gzip") != 0) continue;
        int q = 1000;
        char *psave = NULL;
        for (char *p = params ? strtok_r(params, ";", &psave) : NULL; p; p = strtok_r(NULL, ";", &psave)) {
            p = trim(p);
            if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
                q = oracle_q(trim(p + 2));
                if (q < 0) break;           /* a malformed q refuses gzip, whatever follows */
            }
        }
        verdict = q > 0;
        break;
    }
    free(copy);
    return verdict;
}

static bool oracle_bearer(const char *h) {
    return h && strncasecmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, TOKEN) == 0;
}

/* Does the gzip body z inflate to exactly plain? */
static bool inflates_to(const char *z, size_t zlen, const char *plain, size_t plen) {
    z_stream s = { 0 };
    char *out = malloc(plen + 1);
    bool same = false;
    if (out && inflateInit2(&s, 15 + 16) == Z_OK) {
        s.next_in = (Bytef *)z;
        s.avail_in = (uInt)zlen;
        s.next_out = (Bytef *)out;
        s.avail_out = (uInt)plen + 1;
        same = inflate(&s, Z_FINISH) == Z_STREAM_END && s.total_out == plen && memcmp(out, plain, plen) == 0;
        inflateEnd(&s);
    }
    free(out);
    return same;
}

/* ---- the target ------------------------------------------------------------------------- */

/* Up to n '\n'-separated fields of data, each a malloc'd string; missing ones stay NULL. */
static void split(const uint8_t *data, size_t size, char **f, size_t n) {
    size_t i = 0, start = 0;
    for (size_t k = 0; k <= size && i < n; k++) {
        if (k == size || data[k] == '\n') {
            f[i] = strndup((const char *)data + start, k - start);
            i++;
            start = k + 1;
        }
    }
}

static bool is_fixed_path(const char *p) {
    return strcmp(p, "/metrics") == 0 || strcmp(p, "/healthz") == 0 || strcmp(p, "/readyz") == 0;
}

static void check(const struct metrics_router *rt, const struct metrics_request *rq) {
    struct metrics_answer a, plain;
    metrics_route_request(rt, rq, &a);
    struct metrics_request rq_plain = *rq;
    rq_plain.accept_encoding = NULL;
    metrics_route_request(rt, &rq_plain, &plain);
    bool get = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
    if (a.status < 100 || a.status > 599 || !a.ctype || plain.gzipped) __builtin_trap();
    if ((a.status == 405) != !get || a.method_not_allowed != !get) __builtin_trap();
    bool want_401 = get && !is_fixed_path(rq->path) && rt->opt.handler && rt->token && !rt->loopback &&
                    !oracle_bearer(rq->authorization);
    if ((a.status == 401) != want_401 || a.unauthorised != want_401) __builtin_trap();
    if (a.status != plain.status) __builtin_trap();
    bool want_gzip = plain.body && plain.len >= METRICS_HTTP_GZIP_MIN && oracle_gzip(rq->accept_encoding);
    if (a.gzipped != want_gzip) __builtin_trap();
    if (a.gzipped ? !inflates_to(a.body, a.len, plain.body, plain.len)
                  : (a.len != plain.len || (a.len && memcmp(a.body, plain.body, a.len) != 0)))
        __builtin_trap();
    free(a.body);
    free(plain.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t bits = data[0];
    bool big = bits & 32;
    char *f[4] = { NULL, NULL, NULL, NULL };
    split(data + 1, size - 1, f, 4);
    struct metrics_router rt = { 0 };
    rt.opt.registry = registry();
    rt.token = bits & 1 ? TOKEN : NULL;
    rt.loopback = bits & 2;
    if (bits & 4) { rt.opt.handler = hook; rt.opt.handler_ud = &big; }
    if (bits & 8) rt.opt.health = failing_probe;
    if (bits & 16) rt.opt.ready = failing_probe;
    struct metrics_request rq = { f[0] ? f[0] : "GET", f[1] ? f[1] : "/", f[2], f[3] };
    check(&rt, &rq);
    for (size_t i = 0; i < 4; i++) free(f[i]);
    return 0;
}
