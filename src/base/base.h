/* src/base/base.h: the few helpers every room of the worker uses, at the lowest level of the
 * layering (README "Layering"): it includes no other room, and every room but src/bolt/ (a
 * library that stands alone) may include it.
 *
 * Why: the same vsnprintf-into-err helper, the same clock reading and the same doubling
 * backoff (and the same string hash) were written again in each room; one copy here keeps
 * them identical.
 *
 * How. The error shape of the non-Bolt code (README "Conventions"): a function that can fail
 * returns an int (0 or a count on success, -1 on failure) or a pointer (NULL on failure) and
 * writes a one-line message into the caller's `char *err, size_t errlen`; base_errf writes
 * that message. Clocks: base_monotonic_ms for deadlines and durations, base_wall_ms for what
 * is shown to people (status page, metrics' timestamps).
 */
#ifndef CGW_BASE_H
#define CGW_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* Formats into err (truncating; nothing when err is NULL or errlen 0). Returns -1, so a
 * failing function can end with `return base_errf(err, errlen, "...", ...);`. */
__attribute__((format(printf, 3, 4)))
int base_errf(char *err, size_t errlen, const char *fmt, ...);

/* Names the calling thread "<a><b>", cut to the kernel's 15 bytes: what `top -H`, perf, gdb
 * and the benchmark's per-thread CPU show (bench/e2e/bench.py), e.g. "cgw-w0-receipt". */
void base_name_thread(const char *a, const char *b);

/* CLOCK_MONOTONIC in milliseconds: for deadlines, durations and backoff. */
long long base_monotonic_ms(void);
/* CLOCK_REALTIME in milliseconds since the Unix epoch: for what people read. */
long long base_wall_ms(void);

/* The absolute time ms milliseconds from now on clock (CLOCK_MONOTONIC or CLOCK_REALTIME),
 * for pthread_cond_timedwait; a negative ms counts as 0. */
struct timespec base_timespec_in(clockid_t clock, long ms);

/* The delay before retry number `attempt` (0 for the first retry): initial_ms * 2^attempt,
 * capped at max_ms. 0 <= initial_ms <= max_ms; attempt >= 0. */
long base_backoff_ms(int attempt, long initial_ms, long max_ms);

/* v in decimal into out (at least 21 bytes: "-9223372036854775808" and its NUL), as %lld
 * would write it; returns its length. By hand: snprintf costs ~1 300 instructions a call,
 * and per-record lines and keys need a few numbers each. */
size_t base_fmt_ll(char *out, long long v);
/* The same for an unsigned value (%llu). */
size_t base_fmt_ull(char *out, unsigned long long v);

/* Strict UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) over n bytes,
 * where a NUL byte is a fault of its own (a C string would end there). Returns NULL, or what
 * is wrong ("holds U+0000", "is not valid UTF-8"). ASCII runs are checked 8 bytes at a time. */
const char *base_utf8_fault(const void *s, size_t n);
/* Eight bytes (as read, little-endian or not) of ASCII without a zero byte, in one test: the
 * common case of ids and text, for the loops that check or copy a word at a time. */
static inline bool base_ascii8(uint64_t x) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    return !(x & highs) && !((x - ones) & ~x & highs);
}

/* Copies n bytes (the two ranges apart) with fixed-size moves, no library call: the short
 * strings of the hot paths (Bolt map keys and ids, log values) cost more in memcpy's call
 * than in their copy (issue 14). Any n; beyond a few hundred bytes memcpy is the better.
 * src/bolt/packstream.c keeps its own copy (copy_short): that room depends on libc only. */
static inline void base_copy_short(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (n >= 16) {
        for (size_t i = 0; i + 16 < n; i += 16) memcpy(d + i, s + i, 16);
        memcpy(d + n - 16, s + n - 16, 16);             /* the last 16, overlapping */
    } else if (n >= 8) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    }
}

/* Sorting strings in strcmp order, fast: each string's first 8 bytes as a big-endian number
 * (base_prefix_key; comparing the numbers orders the strings as strcmp does), an LSD radix
 * sort on the numbers (base_radix_keyed), and strcmp only between strings whose first 8
 * bytes agree. glibc's qsort with a comparison callback was ~3.5 % of the worker's
 * instructions on a batch's few thousand fidos and ~1 % on its purchases (issue 14). */
typedef struct base_keyed {
    uint64_t key;
    const void *p;                  /* the caller's: what the key stands for */
} base_keyed;
uint64_t base_prefix_key(const char *s);
/* k[0..n) by key, stable, through tmp (n more). */
void base_radix_keyed(base_keyed *k, base_keyed *tmp, size_t n);
/* v[0..n) in strcmp order; with unique, repeats dropped. Returns the new count, -1 out of
 * memory (v unchanged). The array borrows the strings. */
long base_sort_strs(const char **v, size_t n, bool unique);

/* 64-bit FNV-1a of a NUL-terminated string: for hash tables of short, trusted ids (the
 * enrichment cache, the engine's id sets, the graph's per-batch tables). Not for keys an
 * attacker could choose to collide. Inline: it runs per id on the hot path. */
static inline uint64_t base_hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

#endif
