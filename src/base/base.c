/* src/base/base.c: the helpers of base.h (errors, clocks, backoff, integers, UTF-8, sorting
 * strings). What and why: base.h. How: vsnprintf, clock_gettime, and a doubling loop that
 * stops at the cap (no shift, so no overflow for any attempt count); the rest is written out
 * where it is defined. */
#include "base/base.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int base_errf(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static long long clock_ms(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long base_monotonic_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
long long base_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

void base_name_thread(const char *a, const char *b) {
    char name[16];
    size_t n = strlen(a), m = strlen(b);
    if (n > 15) n = 15;
    if (m > 15 - n) m = 15 - n;
    memcpy(name, a, n);
    memcpy(name + n, b, m);
    name[n + m] = '\0';
    pthread_setname_np(pthread_self(), name);
}

struct timespec base_timespec_in(clockid_t clock, long ms) {
    struct timespec t;
    if (ms < 0) ms = 0;                 /* a time already past: the wait returns at once */
    clock_gettime(clock, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
    return t;
}

long base_backoff_ms(int attempt, long initial_ms, long max_ms) {
    assert(initial_ms >= 0 && max_ms >= initial_ms && attempt >= 0);
    long d = initial_ms;
    for (int i = 0; i < attempt && d < max_ms; i++) d = d > max_ms / 2 ? max_ms : d * 2;
    return d;
}

size_t base_fmt_ull(char *out, unsigned long long v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t base_fmt_ll(char *out, long long v) {
    if (v >= 0) return base_fmt_ull(out, (unsigned long long)v);
    out[0] = '-';
    return 1 + base_fmt_ull(out + 1, 0ULL - (unsigned long long)v);   /* LLONG_MIN too */
}

/* ------------------------------------------------------------------ UTF-8 */

/* Eight bytes at s of ASCII without a zero byte. */
static bool ascii8(const uint8_t *s) {
    uint64_t x;
    memcpy(&x, s, sizeof x);
    return base_ascii8(x);
}

const char *base_utf8_fault(const void *str, size_t n) {
    const uint8_t *s = str;
    for (size_t i = 0; i < n;) {
        if (n - i >= 8 && ascii8(s + i)) {
            i += 8;
            continue;
        }
        uint8_t c = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c == 0) return "holds U+0000";
        if (c < 0x80) { i++; continue; }
        if (c >= 0xc2 && c <= 0xdf) k = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else return "is not valid UTF-8";
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi) return "is not valid UTF-8";
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf) return "is not valid UTF-8";
        i += k + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------ sorting strings */

uint64_t base_prefix_key(const char *s) {
    uint64_t k = 0;
    size_t i = 0;
    for (; i < 8 && s[i]; i++) k = k << 8 | (unsigned char)s[i];
    return i ? k << (8 * (8 - i)) : 0;          /* "": a shift by 64 would be undefined */
}

/* LSD, a byte at a time, skipping the bytes on which every key agrees (ids share most). */
void base_radix_keyed(base_keyed *k, base_keyed *tmp, size_t n) {
    size_t count[8][256];       /* 16 KiB of stack */
    if (n < 2) return;
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
        for (unsigned b = 0; b < 8; b++) count[b][(k[i].key >> (8 * b)) & 0xFF]++;
    for (unsigned b = 0; b < 8; b++) {
        size_t *c = count[b], at = 0;
        if (c[(k[0].key >> (8 * b)) & 0xFF] == n) continue;     /* every key has this byte */
        for (unsigned v = 0; v < 256; v++) {
            size_t m = c[v];
            c[v] = at;
            at += m;
        }
        for (size_t i = 0; i < n; i++) tmp[c[(k[i].key >> (8 * b)) & 0xFF]++] = k[i];
        memcpy(k, tmp, n * sizeof *k);
    }
}

static int cmp_keyed_str(const void *a, const void *b) {
    const base_keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    if ((x->key & 0xFF) == 0) return 0;         /* both end within their first 8 bytes */
    return strcmp((const char *)x->p + 8, (const char *)y->p + 8);
}

long base_sort_strs(const char **v, size_t n, bool unique) {
    if (n == 0) return 0;
    base_keyed *k = malloc(2 * n * sizeof *k);
    if (!k) return -1;
    for (size_t i = 0; i < n; i++) k[i] = (base_keyed){base_prefix_key(v[i]), v[i]};
    base_radix_keyed(k, k + n, n);
    for (size_t i = 0, j; i < n; i = j) {       /* equal first 8 bytes, longer strings */
        for (j = i + 1; j < n && k[j].key == k[i].key; j++) {}
        if (j - i > 1 && (k[i].key & 0xFF)) qsort(k + i, j - i, sizeof *k, cmp_keyed_str);
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!unique || !w || cmp_keyed_str(&k[w - 1], &k[i]) != 0) k[w++] = k[i];
    for (size_t i = 0; i < w; i++) v[i] = k[i].p;
    free(k);
    return (long)w;
}
