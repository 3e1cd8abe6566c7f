/* src/base/base.c: the error formatter, the two clocks and the backoff of base.h.
 * What and why: base.h. How: vsnprintf, clock_gettime, and a doubling loop that stops at
 * the cap (no shift, so no overflow for any attempt count). */
#include "base/base.h"

#include <assert.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
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

/* Eight bytes of ASCII without a zero byte (the common case: ids, titles), in one test. */
static bool ascii8(const uint8_t *s) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x;
    memcpy(&x, s, sizeof x);
    return !(x & highs) && !((x - ones) & ~x & highs);
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
