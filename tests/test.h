/* tests/test.h: the project's whole test framework, one header.
 *
 * A test file defines cases with TEST(name) { ... } and includes this header once with
 * TEST_MAIN defined before it (in exactly one file of the test binary). Each case runs in
 * the same process, in file order; a failed CHECK records the failure and ends that case.
 * The binary prints one line per case ("ok <name>" or "FAIL <name>: <file>:<line>: <what>")
 * and "# <passed> passed, <failed> failed"; its exit status is the number of failures
 * (capped at 100). scripts/run-tests adds the lines of every binary into the summary line.
 *
 * A case that needs a server that is not running fails: a test never skips itself into a pass.
 */
#ifndef CGW_TEST_H
#define CGW_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case { const char *name; test_fn fn; };

void test_register(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define TEST(name)                                                            \
    static void test_##name(void);                                            \
    __attribute__((constructor)) static void test_register_##name(void) {     \
        test_register(#name, test_##name);                                    \
    }                                                                         \
    static void test_##name(void)

#define CHECK(cond)                                                           \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, "%s", #cond); } while (0)
#define CHECKF(cond, ...)                                                     \
    do { if (!(cond)) test_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_EQ_INT(a, b)                                                    \
    do { long long a_ = (long long)(a), b_ = (long long)(b);                  \
         if (a_ != b_) test_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", \
                                 #a, #b, a_, b_); } while (0)
#define CHECK_EQ_STR(a, b)                                                    \
    do { const char *a_ = (a), *b_ = (b);                                     \
         if (!a_ || !b_ || strcmp(a_, b_) != 0)                               \
             test_fail(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b, \
                       a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
#define CHECK_EQ_MEM(a, b, n)                                                 \
    do { if (memcmp((a), (b), (n)) != 0)                                      \
             test_fail(__FILE__, __LINE__, "memcmp(%s, %s, %zu) != 0", #a, #b, \
                       (size_t)(n)); } while (0)

#ifdef TEST_MAIN
#include <stdarg.h>
#define TEST_MAX 512
static struct test_case test_cases_[TEST_MAX];
static int test_count_;
static jmp_buf test_jmp_;
static const char *test_filter_;

void test_register(const char *name, test_fn fn) {
    if (test_count_ < TEST_MAX) test_cases_[test_count_++] = (struct test_case){name, fn};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stdout, "FAIL %s: %s:%d: ", test_filter_, file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    longjmp(test_jmp_, 1);
}

int main(int argc, char **argv) {
    /* volatile: both survive the longjmp out of a failed case. */
    volatile int passed = 0, failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (volatile int i = 0; i < test_count_; i++) {
        if (argc > 1 && !strstr(test_cases_[i].name, argv[1])) continue;
        test_filter_ = test_cases_[i].name;
        if (setjmp(test_jmp_) == 0) {
            test_cases_[i].fn();
            printf("ok %s\n", test_cases_[i].name);
            passed++;
        } else {
            failed++;
        }
    }
    printf("# %d passed, %d failed\n", passed, failed);
    return failed > 100 ? 100 : failed;
}
#endif
#endif
