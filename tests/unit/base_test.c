/* Unit test of src/base/: base_errf (format, truncation, NULL buffer, the -1 it returns),
 * base_backoff_ms (doubling from 0-based attempts, the cap, a zero start) and
 * base_timespec_in (normalised nanoseconds, a negative delay counted as 0), base_utf8_fault
 * (a bad byte at every position of long strings), base_sort_strs
 * against qsort with strcmp (it found base_prefix_key("") shifting a 64-bit value by 64),
 * base_copy_short (every length, every alignment, nothing written past the end). */
#define TEST_MAIN
#include "test.h"

#include "base/base.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

TEST(errf_formats_truncates_and_returns_minus_one) {
    char err[8];
    CHECK_EQ_INT(base_errf(err, sizeof err, "key %s: %d", "x", 42), -1);
    CHECK_EQ_STR(err, "key x: ");
    CHECK_EQ_INT(base_errf(NULL, 0, "nothing %d", 1), -1);
    char one[1] = {'z'};
    base_errf(one, 0, "untouched");
    CHECK(one[0] == 'z');
}

TEST(fmt_ll_writes_what_printf_writes) {
    static const long long v[] = {0, 1, -1, 9, 10, -10, 1234567, LLONG_MAX, LLONG_MIN};
    char got[32], want[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = base_fmt_ll(got, v[i]);
        snprintf(want, sizeof want, "%lld", v[i]);
        CHECK_EQ_STR(got, want);
        CHECK_EQ_INT(n, strlen(want));
    }
    CHECK_EQ_INT(base_fmt_ull(got, ULLONG_MAX), 20);
    CHECK_EQ_STR(got, "18446744073709551615");
}

TEST(backoff_doubles_from_attempt_zero_and_stops_at_the_cap) {
    CHECK_EQ_INT(base_backoff_ms(0, 100, 2000), 100);
    CHECK_EQ_INT(base_backoff_ms(1, 100, 2000), 200);
    CHECK_EQ_INT(base_backoff_ms(4, 100, 2000), 1600);
    CHECK_EQ_INT(base_backoff_ms(5, 100, 2000), 2000);
    CHECK_EQ_INT(base_backoff_ms(1000000, 100, 2000), 2000);
    CHECK_EQ_INT(base_backoff_ms(3, 0, 2000), 0);
    CHECK_EQ_INT(base_backoff_ms(2, 2, 5), 5);     /* 2, 4, then the cap, not 8 */
}

TEST(timespec_in_is_normalised_and_never_in_the_past_by_more_than_now) {
    struct timespec before, t;
    clock_gettime(CLOCK_MONOTONIC, &before);
    t = base_timespec_in(CLOCK_MONOTONIC, 1999);
    CHECK(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
    CHECK(t.tv_sec >= before.tv_sec + 1);
    t = base_timespec_in(CLOCK_MONOTONIC, -5000);
    CHECK(t.tv_sec >= before.tv_sec);
    CHECK(base_wall_ms() > 1600000000000LL);        /* after 2020: the Unix epoch, in ms */
    CHECK(base_monotonic_ms() >= 0);
}

static int cmp_strs(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* base_sort_strs against qsort with strcmp: random strings of 0-20 bytes over a small
 * alphabet (so prefixes of 8 and more bytes are shared often, and repeats happen), bytes past
 * 0x7F included, with and without dropping repeats. */
TEST(sort_strs_orders_as_strcmp_and_drops_repeats) {
    static const char alphabet[] = "ab\x7f\x80\xff";
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        size_t n = (size_t)(round % 50) * 7;
        char **pool = calloc(n ? n : 1, sizeof *pool);
        const char **got = calloc(n ? n : 1, sizeof *got), **want = calloc(n ? n : 1, sizeof *want);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t len = (seed >> 16) % 21;
            pool[i] = calloc(len + 1, 1);
            for (size_t k = 0; k < len; k++) {
                seed = seed * 1103515245u + 12345u;
                pool[i][k] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
            }
            got[i] = want[i] = pool[i];
        }
        bool unique = round % 2;
        qsort(want, n, sizeof *want, cmp_strs);
        size_t w = 0;
        for (size_t i = 0; i < n; i++)
            if (!unique || !w || strcmp(want[w - 1], want[i]) != 0) want[w++] = want[i];
        CHECK_EQ_INT(base_sort_strs(got, n, unique), (long)w);
        for (size_t i = 0; i < w; i++) CHECKF(!strcmp(got[i], want[i]), "round %d at %zu", round, i);
        for (size_t i = 0; i < n; i++) free(pool[i]);
        free(pool);
        free(got);
        free(want);
    }
}

/* The UTF-8 check takes eight ASCII bytes at a time: a U+0000 or a bad byte at any position
 * of a long string, either side of an 8-byte boundary, is still found. */
TEST(string_check_finds_a_bad_byte_anywhere) {
    uint8_t s[40];
    for (size_t len = 1; len <= sizeof s; len++) {
        memset(s, 'a', sizeof s);
        CHECK(base_utf8_fault(s, len) == NULL);
        for (size_t at = 0; at < len; at++) {
            memset(s, 'a', sizeof s);
            s[at] = 0;
            CHECKF(base_utf8_fault(s, len) != NULL, "U+0000 at %zu of %zu", at, len);
            s[at] = 0xff;
            CHECKF(base_utf8_fault(s, len) != NULL, "0xff at %zu of %zu", at, len);
            s[at] = 0x80;
            CHECKF(base_utf8_fault(s, len) != NULL, "0x80 at %zu of %zu", at, len);
            if (at + 1 < len) {                   /* a valid two-byte character: é */
                s[at] = 0xc3;
                s[at + 1] = 0xa9;
                CHECKF(base_utf8_fault(s, len) == NULL, "é at %zu of %zu", at, len);
            }
        }
    }
    CHECK_EQ_STR(base_utf8_fault((const uint8_t *)"abcdefgh\0ijk", 12), "holds U+0000");
}

/* The kernel keeps 15 bytes of a thread's name and pthread_setname_np refuses more (ERANGE):
 * a long consumer name must still name its threads, cut, not leave them all "cgw". */
TEST(thread_names_are_joined_and_cut_to_15_bytes) {
    static const char *const cases[][3] = {
        {"cgw-w0-", "receipt", "cgw-w0-receipt"},
        {"cgw-", "a-consumer-with-a-long-name", "cgw-a-consumer-"},
        {"a-prefix-longer-than-fifteen", "x", "a-prefix-longer"},
        {"cgw-flags", "", "cgw-flags"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[32];
        base_name_thread(cases[i][0], cases[i][1]);
        CHECK(pthread_getname_np(pthread_self(), got, sizeof got) == 0);
        CHECK_EQ_STR(got, cases[i][2]);
    }
}

TEST(copy_short_copies_every_length_and_nothing_more) {
    unsigned char src[80], dst[100];
    for (size_t i = 0; i < sizeof src; i++) src[i] = (unsigned char)(i * 7 + 1);
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n + off <= sizeof src; n++) {
            memset(dst, 0xEE, sizeof dst);
            base_copy_short(dst + off, src + off, n);
            CHECKF(memcmp(dst + off, src + off, n) == 0, "length %zu at %zu", n, off);
            for (size_t k = 0; k < off; k++) CHECK(dst[k] == 0xEE);
            for (size_t k = off + n; k < sizeof dst; k++) CHECKF(dst[k] == 0xEE, "byte %zu", k);
        }
    }
}
