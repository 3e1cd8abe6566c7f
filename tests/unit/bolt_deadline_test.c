/* bolt_deadline_test.c: the Bolt client against a server that accepts connections and never
 * answers (a listening socket nobody accepts from: the kernel completes the TCP handshake, as
 * it does for a frozen Neo4j). Reads must time out and the connection must not go back to
 * the pool; the driver retries on new connections until max_retry_time_ms; and
 * bolt_driver_cancel ends a read that has no timeout at all, and every later call. */
#define TEST_MAIN
#include "test.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bolt/bolt.h"

/* A listening socket that never accepts; *uri gets bolt://127.0.0.1:<port>. */
static int silent_server(char *uri, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    snprintf(uri, len, "bolt://127.0.0.1:%d", ntohs(a.sin_port));
    return fd;
}

static bolt_driver *driver(const char *uri, int io_timeout_ms, int max_retry_ms) {
    bolt_config cfg;
    bolt_config_init(&cfg);
    cfg.principal = "neo4j";
    cfg.credentials = "unused";
    cfg.io_timeout_ms = io_timeout_ms;
    cfg.max_retry_time_ms = max_retry_ms;
    cfg.retry_initial_delay_ms = 50;
    bolt_driver *d = NULL;
    bolt_error err;
    CHECKF(bolt_driver_new(uri, &cfg, &d, &err) == BOLT_OK, "driver: %s", err.message);
    return d;
}

/* One write against the silent server: it must fail with a timeout and leave no connection
 * in the pool; returns the attempts the driver made. */
static int write_times_out(int io_timeout_ms, int max_retry_ms) {
    char uri[64], want[64];
    int fd = silent_server(uri, sizeof uri);
    bolt_driver *d = driver(uri, io_timeout_ms, max_retry_ms);
    bolt_error err;
    CHECK_EQ_INT(bolt_session_write_batch(d, NULL, "RETURN 1", NULL, NULL, &err), BOLT_ETIMEDOUT);
    CHECK(err.retryable);
    snprintf(want, sizeof want, "no answer within %d ms", io_timeout_ms);
    CHECKF(strstr(err.message, want) != NULL, "%s", err.message);
    int idle = -1, used = -1, attempts = bolt_session_last_attempts();
    bolt_driver_pool_stats(d, &idle, &used);
    CHECK_EQ_INT(idle, 0);      /* defunct: never reused */
    CHECK_EQ_INT(used, 0);
    bolt_driver_free(d);
    close(fd);
    return attempts;
}

TEST(silent_server_times_out_and_the_connection_is_dropped) {
    CHECK_EQ_INT(write_times_out(200, 0), 1);
}

TEST(timeouts_are_retried_on_new_connections_until_the_retry_budget) {
    CHECK(write_times_out(100, 500) >= 2);
}

struct blocked_call {
    bolt_driver *d;
    int rc;
};

static void *call_forever(void *arg) {
    struct blocked_call *b = arg;
    bolt_error err;
    b->rc = bolt_session_write_batch(b->d, NULL, "RETURN 1", NULL, NULL, &err);
    return NULL;
}

TEST(cancel_ends_a_read_without_timeout_and_every_later_call) {
    char uri[64];
    int fd = silent_server(uri, sizeof uri);
    bolt_driver *d = driver(uri, 0, 60000);   /* no I/O timeout: only the cancel ends it */
    struct blocked_call b = {d, -1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, call_forever, &b) == 0);
    struct timespec pause = {0, 200 * 1000000L};
    nanosleep(&pause, NULL);
    bolt_driver_cancel(d);
    struct timespec bound;
    clock_gettime(CLOCK_REALTIME, &bound);
    bound.tv_sec += 30;   /* a bound against hanging the suite, not a timing assertion */
    int joined = pthread_timedjoin_np(t, NULL, &bound);
    CHECK_EQ_INT(joined, 0);
    if (joined != 0) return;  /* the thread still uses d: leak it rather than crash */
    CHECK_EQ_INT(b.rc, BOLT_ECANCELLED);
    bolt_error err;
    CHECK_EQ_INT(bolt_session_write_batch(d, NULL, "RETURN 1", NULL, NULL, &err), BOLT_ECANCELLED);
    CHECK(!err.retryable);
    CHECK_EQ_STR(bolt_code_name(BOLT_ECANCELLED), "BOLT_ECANCELLED");
    bolt_driver_free(d);
    close(fd);
}
