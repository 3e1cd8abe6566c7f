/* http_body_test.c: the bounded response-body buffer (src/http/http_body.h) used by the enrich,
 * registry, flags and status HTTP clients: append, NUL termination, the cap (too_big and the
 * 0 that aborts the transfer), reset and free. */
#define TEST_MAIN
#include "test.h"

#include "http/http_body.h"

#include <stdint.h>

static size_t put(struct http_body *b, const char *s) {
    return http_body_write((char *)s, 1, strlen(s), b);
}

TEST(init_is_empty) {
    struct http_body b;
    http_body_init(&b, 100);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(b.cap, 0);
    CHECK_EQ_INT(b.max, 100);
    CHECK(!b.too_big);
    http_body_free(&b);             /* nothing allocated: still fine */
    CHECK(b.data == NULL);
}

TEST(append_and_nul_terminate) {
    struct http_body b;
    http_body_init(&b, 1 << 20);
    CHECK_EQ_INT(put(&b, "hello"), 5);
    CHECK_EQ_INT(b.len, 5);
    CHECK_EQ_STR(b.data, "hello");
    CHECK_EQ_INT(put(&b, ", world"), 7);
    CHECK_EQ_INT(b.len, 12);
    CHECK_EQ_STR(b.data, "hello, world");
    CHECK(b.cap > b.len);
    /* size and nmemb are multiplied, as libcurl passes them */
    CHECK_EQ_INT(http_body_write((char *)"abcdef", 2, 3, &b), 6);
    CHECK_EQ_STR(b.data, "hello, worldabcdef");
    http_body_free(&b);
}

TEST(empty_write_terminates) {
    struct http_body b;
    http_body_init(&b, 10);
    CHECK_EQ_INT(http_body_write((char *)"", 1, 0, &b), 0);
    CHECK(b.data != NULL);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_STR(b.data, "");
    CHECK(!b.too_big);
    http_body_free(&b);
}

TEST(embedded_nul_kept_by_len) {
    struct http_body b;
    http_body_init(&b, 64);
    CHECK_EQ_INT(http_body_write((char *)"a\0b", 1, 3, &b), 3);
    CHECK_EQ_INT(b.len, 3);
    CHECK_EQ_MEM(b.data, "a\0b\0", 4);
    http_body_free(&b);
}

TEST(grows_past_first_allocation) {
    struct http_body b;
    http_body_init(&b, SIZE_MAX);
    char chunk[1000];
    for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (char)('a' + i % 26);
    for (int i = 0; i < 100; i++) CHECK_EQ_INT(http_body_write(chunk, 1, sizeof chunk, &b), 1000);
    CHECK_EQ_INT(b.len, 100000);
    CHECK(b.cap >= b.len + 1);
    CHECK_EQ_INT(b.data[b.len], '\0');
    CHECK_EQ_MEM(b.data + 99000, chunk, sizeof chunk);
    CHECK(!b.too_big);
    http_body_free(&b);
}

TEST(cap_exact_fits) {
    struct http_body b;
    http_body_init(&b, 10);
    CHECK_EQ_INT(put(&b, "0123456789"), 10);       /* exactly max: accepted */
    CHECK(!b.too_big);
    CHECK_EQ_STR(b.data, "0123456789");
    CHECK_EQ_INT(http_body_write((char *)"", 1, 0, &b), 0);   /* nothing more is still fine */
    CHECK(!b.too_big);
    http_body_free(&b);
}

TEST(cap_refuses_and_aborts) {
    struct http_body b;
    http_body_init(&b, 10);
    CHECK_EQ_INT(put(&b, "01234"), 5);
    CHECK_EQ_INT(put(&b, "567890"), 0);            /* 11 > 10: 0 aborts the transfer */
    CHECK(b.too_big);
    CHECK_EQ_INT(b.len, 5);                         /* nothing of the refused write kept */
    CHECK_EQ_STR(b.data, "01234");
    http_body_free(&b);

    http_body_init(&b, 3);
    CHECK_EQ_INT(put(&b, "abcd"), 0);               /* first write already over */
    CHECK(b.too_big);
    CHECK_EQ_INT(b.len, 0);
    http_body_free(&b);
}

TEST(cap_zero_accepts_nothing) {
    struct http_body b;
    http_body_init(&b, 0);
    CHECK_EQ_INT(put(&b, "x"), 0);
    CHECK(b.too_big);
    http_body_free(&b);
}

TEST(reset_keeps_allocation) {
    struct http_body b;
    http_body_init(&b, 8);
    CHECK_EQ_INT(put(&b, "12345"), 5);
    CHECK_EQ_INT(put(&b, "6789"), 0);
    CHECK(b.too_big);
    char *data = b.data;
    size_t cap = b.cap;
    http_body_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK(!b.too_big);
    CHECK(b.data == data);
    CHECK_EQ_INT(b.cap, cap);
    CHECK_EQ_INT(b.max, 8);
    CHECK_EQ_STR(b.data, "");
    CHECK_EQ_INT(put(&b, "abcdefgh"), 8);          /* the whole max is available again */
    CHECK_EQ_STR(b.data, "abcdefgh");
    CHECK(b.data == data);
    http_body_free(&b);

    http_body_init(&b, 8);                          /* reset before any write */
    http_body_reset(&b);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
}

TEST(free_leaves_reusable_empty_body) {
    struct http_body b;
    http_body_init(&b, 100);
    CHECK_EQ_INT(put(&b, "payload"), 7);
    http_body_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(b.cap, 0);
    CHECK_EQ_INT(b.max, 100);
    CHECK(!b.too_big);
    http_body_free(&b);                             /* twice: harmless */
    CHECK_EQ_INT(put(&b, "again"), 5);              /* and usable again */
    CHECK_EQ_STR(b.data, "again");
    http_body_free(&b);                             /* ASan's leak check covers the rest */
}
