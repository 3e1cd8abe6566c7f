/* Unit test of src/base/: base_errf (format, truncation, NULL buffer, the -1 it returns),
 * base_backoff_ms (doubling from 0-based attempts, the cap, a zero start) and
 * base_timespec_in (normalised nanoseconds, a negative delay counted as 0). */
#define TEST_MAIN
#include "test.h"

#include "base/base.h"

#include <limits.h>

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
