/* metrics_test.c: registry semantics, exact exposition text, lock-free updates from threads,
 * and the HTTP server on an ephemeral port (libcurl and raw sockets): routes, HEAD, keep-alive,
 * gzip, the bearer token, liveness and readiness, 200 idle connections. */
#define TEST_MAIN
#include "test.h"

#include "metrics/metrics_internal.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

static char *render(struct metrics_registry *r) {
    char *out = NULL;
    size_t len = 0;
    if (metrics_render(r, &out, &len) != 0) return NULL;
    return out;
}

TEST(counters_with_labels_render_exactly) {
    struct metrics_registry *r = metrics_new_registry();
    struct metrics_counter *digital = metrics_register_counter(r, "cgw_records_skipped_total",
        "Records skipped, by consumer and reason.", "consumer", "receipt", "reason", "digital", NULL);
    struct metrics_counter *status = metrics_register_counter(r, "cgw_records_skipped_total",
        "Records skipped, by consumer and reason.", "consumer", "receipt", "reason", "status", NULL);
    struct metrics_counter *plain = metrics_register_counter(r, "cgw_polls_total", "Polls.\nSecond \\ line", NULL);
    CHECK(digital && status && plain);
    CHECK(digital != status);
    /* registering again returns the same series */
    CHECK(metrics_register_counter(r, "cgw_records_skipped_total", "x", "consumer", "receipt", "reason", "digital", NULL) == digital);
    metrics_inc_counter(digital);
    metrics_inc_counter(digital);
    metrics_add_counter(status, 40);
    metrics_inc_counter(status);
    CHECK_EQ_INT(metrics_read_counter(digital), 2);
    char *text = render(r);
    CHECK_EQ_STR(text,
                 "# HELP cgw_records_skipped_total Records skipped, by consumer and reason.\n"
                 "# TYPE cgw_records_skipped_total counter\n"
                 "cgw_records_skipped_total{consumer=\"receipt\",reason=\"digital\"} 2\n"
                 "cgw_records_skipped_total{consumer=\"receipt\",reason=\"status\"} 41\n"
                 "# HELP cgw_polls_total Polls.\\nSecond \\\\ line\n"
                 "# TYPE cgw_polls_total counter\n"
                 "cgw_polls_total 0\n");
    free(text);
    metrics_free_registry(r);
}

TEST(label_values_are_escaped) {
    struct metrics_registry *r = metrics_new_registry();
    struct metrics_counter *c = metrics_register_counter(r, "cgw_errors_total", "Errors.", "error", "a\"b\\c\nd", NULL);
    CHECK(c != NULL);
    char *text = render(r);
    CHECK(strstr(text, "cgw_errors_total{error=\"a\\\"b\\\\c\\nd\"} 0\n") != NULL);
    free(text);
    metrics_free_registry(r);
}

TEST(gauges) {
    struct metrics_registry *r = metrics_new_registry();
    struct metrics_gauge *lag = metrics_register_gauge(r, "cgw_consumer_lag", "Lag.", "consumer", "factoid", "partition", "0", NULL);
    struct metrics_gauge *up = metrics_register_gauge(r, "cgw_up", "Up.", NULL);
    CHECK(lag && up);
    metrics_set_gauge(lag, 12);
    metrics_add_gauge(lag, 0.5);
    metrics_add_gauge(lag, -2);
    CHECK(metrics_read_gauge(lag) == 10.5);
    metrics_set_gauge(up, 0.1);
    char *text = render(r);
    CHECK(strstr(text, "# TYPE cgw_consumer_lag gauge\ncgw_consumer_lag{consumer=\"factoid\",partition=\"0\"} 10.5\n") != NULL);
    CHECK(strstr(text, "cgw_up 0.1\n") != NULL);
    free(text);
    metrics_set_gauge(up, NAN);
    text = render(r);
    CHECK(strstr(text, "cgw_up NaN\n") != NULL);
    free(text);
    metrics_set_gauge(up, -INFINITY);
    text = render(r);
    CHECK(strstr(text, "cgw_up -Inf\n") != NULL);
    free(text);
    metrics_free_registry(r);
}

TEST(histograms_are_cumulative) {
    struct metrics_registry *r = metrics_new_registry();
    static const double b[] = { 0.01, 0.1, 1 };
    struct metrics_histogram *h = metrics_register_histogram(r, "cgw_neo4j_write_seconds", "Write latency.", b, 3,
                                                             "consumer", "receipt", NULL);
    CHECK(h != NULL);
    metrics_observe(h, 0.005);
    metrics_observe(h, 0.01);       /* le is inclusive */
    metrics_observe(h, 0.05);
    metrics_observe(h, 2.5);
    metrics_observe(h, NAN);        /* ignored */
    char *text = render(r);
    CHECK_EQ_STR(text,
                 "# HELP cgw_neo4j_write_seconds Write latency.\n"
                 "# TYPE cgw_neo4j_write_seconds histogram\n"
                 "cgw_neo4j_write_seconds_bucket{consumer=\"receipt\",le=\"0.01\"} 2\n"
                 "cgw_neo4j_write_seconds_bucket{consumer=\"receipt\",le=\"0.1\"} 3\n"
                 "cgw_neo4j_write_seconds_bucket{consumer=\"receipt\",le=\"1\"} 3\n"
                 "cgw_neo4j_write_seconds_bucket{consumer=\"receipt\",le=\"+Inf\"} 4\n"
                 "cgw_neo4j_write_seconds_sum{consumer=\"receipt\"} 2.565\n"
                 "cgw_neo4j_write_seconds_count{consumer=\"receipt\"} 4\n");
    free(text);
    struct metrics_histogram *d = metrics_register_histogram(r, "cgw_batch_seconds", "Batch.", metrics_duration_buckets,
                                                             metrics_duration_buckets_count, NULL);
    CHECK(d != NULL);
    metrics_observe(d, 100);
    text = render(r);
    CHECK(strstr(text, "cgw_batch_seconds_bucket{le=\"0.001\"} 0\n") != NULL);
    CHECK(strstr(text, "cgw_batch_seconds_bucket{le=\"60\"} 0\n") != NULL);
    CHECK(strstr(text, "cgw_batch_seconds_bucket{le=\"+Inf\"} 1\ncgw_batch_seconds_sum 100\ncgw_batch_seconds_count 1\n") != NULL);
    free(text);
    metrics_free_registry(r);
}

TEST(bad_registrations_return_null_with_reason) {
    struct metrics_registry *r = metrics_new_registry();
    static const double b[] = { 1, 0.5 };
    static const double ok[] = { 1, 2 };
    CHECK(metrics_register_counter(r, "9bad", "x", NULL) == NULL);
    CHECK_EQ_STR(metrics_error(r), "metrics: invalid metric name \"9bad\"");
    CHECK(metrics_register_counter(r, "a-b", "x", NULL) == NULL);
    CHECK(metrics_register_counter(r, "ok_total", "x", "bad-label", "v", NULL) == NULL);
    CHECK_EQ_STR(metrics_error(r), "metrics: ok_total: invalid label name \"bad-label\"");
    CHECK(metrics_register_counter(r, "ok_total", "x", "__reserved", "v", NULL) == NULL);
    CHECK(metrics_register_counter(r, "ok_total", "x", "consumer", "receipt", NULL) != NULL);
    CHECK_EQ_STR(metrics_error(r), "");
    CHECK(metrics_register_gauge(r, "ok_total", "x", "consumer", "receipt", NULL) == NULL);
    CHECK_EQ_STR(metrics_error(r), "metrics: ok_total: registered before with another type or label names");
    CHECK(metrics_register_counter(r, "ok_total", "x", "topic", "t", NULL) == NULL);
    CHECK(metrics_register_histogram(r, "h", "x", b, 2, NULL) == NULL);
    CHECK_EQ_STR(metrics_error(r), "metrics: h: bucket bounds must be finite and increasing");
    CHECK(metrics_register_histogram(r, "h", "x", ok, 0, NULL) == NULL);
    CHECK(metrics_register_histogram(r, "h", "x", ok, 2, "le", "1", NULL) == NULL);
    CHECK(metrics_register_histogram(r, "h", "x", ok, 2, "a", "1", NULL) != NULL);
    CHECK(metrics_register_histogram(r, "h", "x", ok, 1, "a", "2", NULL) == NULL);
    CHECK_EQ_STR(metrics_error(r), "metrics: h: every series of a histogram needs the same buckets");
    /* NULL handles are harmless */
    metrics_inc_counter(NULL);
    metrics_add_counter(NULL, 3);
    metrics_set_gauge(NULL, 1);
    metrics_add_gauge(NULL, 1);
    metrics_observe(NULL, 1);
    CHECK_EQ_INT(metrics_read_counter(NULL), 0);
    /* families without a series are not rendered; empty registry renders "" */
    char *text = render(r);
    CHECK(strstr(text, "# TYPE ok_total counter\n") != NULL);
    free(text);
    metrics_free_registry(r);
    struct metrics_registry *e = metrics_new_registry();
    text = render(e);
    CHECK_EQ_STR(text, "");
    free(text);
    metrics_free_registry(e);
}

#define THREADS 8
#define ITER 100000
static struct metrics_counter *t_counter;
static struct metrics_gauge *t_gauge;
static struct metrics_histogram *t_hist;

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < ITER; i++) {
        metrics_inc_counter(t_counter);
        metrics_add_gauge(t_gauge, 1.0);
        metrics_observe(t_hist, (i % 4) * 0.5);   /* 0, 0.5, 1, 1.5 */
    }
    return NULL;
}

TEST(updates_from_many_threads_are_exact) {
    struct metrics_registry *r = metrics_new_registry();
    static const double b[] = { 0.5, 1 };
    t_counter = metrics_register_counter(r, "c_total", "c", NULL);
    t_gauge = metrics_register_gauge(r, "g", "g", NULL);
    t_hist = metrics_register_histogram(r, "h_seconds", "h", b, 2, NULL);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, NULL);
    /* scrape while they run: the exposition must stay well-formed */
    for (int i = 0; i < 20; i++) {
        char *text = render(r);
        CHECK(text != NULL && text[strlen(text) - 1] == '\n');
        free(text);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CHECK_EQ_INT(metrics_read_counter(t_counter), THREADS * ITER);
    CHECK(metrics_read_gauge(t_gauge) == (double)THREADS * ITER);
    char *text = render(r);
    CHECK(strstr(text, "h_seconds_bucket{le=\"0.5\"} 400000\n") != NULL);
    CHECK(strstr(text, "h_seconds_bucket{le=\"1\"} 600000\n") != NULL);
    CHECK(strstr(text, "h_seconds_bucket{le=\"+Inf\"} 800000\nh_seconds_sum 600000\nh_seconds_count 800000\n") != NULL);
    free(text);
    metrics_free_registry(r);
}

/* ---- server ---- */

struct resp { long status; char body[65536]; size_t len; char ctype[128]; };

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    struct resp *r = ud;
    size_t k = sz * n;
    if (r->len + k < sizeof r->body) {
        memcpy(r->body + r->len, p, k);
        r->len += k;
        r->body[r->len] = '\0';
    }
    return k;
}

static int get(int port, const char *path, const char *method, struct resp *r) {
    char url[256];
    CURL *c = curl_easy_init();
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    if (method && strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (method) curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(c);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(r->ctype, sizeof r->ctype, "%s", ct);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

static int healthy = 1;
static int health_cb(void *ud, char *reason, size_t len) {
    (void)ud;
    if (healthy) return 0;
    snprintf(reason, len, "neo4j unreachable for 42 s");
    return 1;
}

static int ready = 1;
static int ready_cb(void *ud, char *reason, size_t len) {
    (void)ud;
    if (ready) return 0;
    snprintf(reason, len, "receipt consumer: waiting_for_neo4j");
    return 1;
}

static int status_hook(void *ud, const char *path, char **body, const char **ctype) {
    (void)ud;
    if (strcmp(path, "/status") != 0) return 0;
    *body = strdup("{\"consumers\":{\"receipt\":\"running\"}}");
    *ctype = "application/json";
    return 200;
}

/* Sends raw bytes on a fresh connection and returns what comes back (until close). */
static int raw(int port, const char *req, size_t reqlen, char *out, size_t outlen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
    if (reqlen) {
        ssize_t w = send(fd, req, reqlen, MSG_NOSIGNAL);
        (void)w;
    }
    size_t got = 0;
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 7000) <= 0) break;
        ssize_t n = recv(fd, out + got, outlen - 1 - got, 0);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == outlen - 1) break;
    }
    out[got] = '\0';
    close(fd);
    return (int)got;
}

static int connect_idle(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
    return fd;
}

/* Starts a server on opt (a case ends if it cannot) and gives its port. */
static struct metrics_server *start_server(const struct metrics_server_options *opt, int *port) {
    char err[256];
    struct metrics_server *srv = metrics_start_server(opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    *port = metrics_get_server_port(srv);
    return srv;
}

TEST(server_endpoints) {
    struct metrics_registry *r = metrics_new_registry();
    struct metrics_counter *c = metrics_register_counter(r, "cgw_records_total", "Records.", "consumer", "receipt", NULL);
    metrics_add_counter(c, 7);
    char err[256];
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .registry = r, .health = health_cb,
                                          .ready = ready_cb, .handler = status_hook };
    struct metrics_server *srv = metrics_start_server(&opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    int port = metrics_get_server_port(srv);
    CHECK(port > 0);
    struct resp *res = malloc(sizeof *res);

    CHECK_EQ_INT(get(port, "/metrics", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    CHECK_EQ_STR(res->ctype, "text/plain; version=0.0.4; charset=utf-8");
    char *text = render(r);
    CHECK_EQ_STR(res->body, text);
    free(text);
    CHECK_EQ_INT(get(port, "/metrics?name[]=x", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);

    CHECK_EQ_INT(get(port, "/healthz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    CHECK_EQ_STR(res->body, "ok\n");
    healthy = 0;
    CHECK_EQ_INT(get(port, "/healthz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 503);
    CHECK_EQ_STR(res->body, "neo4j unreachable for 42 s\n");
    healthy = 1;

    /* Readiness is its own callback: not ready while alive. */
    ready = 0;
    CHECK_EQ_INT(get(port, "/readyz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 503);
    CHECK_EQ_STR(res->body, "receipt consumer: waiting_for_neo4j\n");
    CHECK_EQ_INT(get(port, "/healthz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    ready = 1;
    CHECK_EQ_INT(get(port, "/readyz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);

    CHECK_EQ_INT(get(port, "/status", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    CHECK_EQ_STR(res->ctype, "application/json");
    CHECK_EQ_STR(res->body, "{\"consumers\":{\"receipt\":\"running\"}}");

    CHECK_EQ_INT(get(port, "/nope", NULL, res), 0);
    CHECK_EQ_INT(res->status, 404);
    CHECK_EQ_INT(get(port, "/metrics", "POST", res), 0);
    CHECK_EQ_INT(res->status, 405);
    CHECK_EQ_INT(get(port, "/metrics", "HEAD", res), 0);
    CHECK_EQ_INT(res->status, 200);
    CHECK_EQ_INT(res->len, 0);

    free(res);
    metrics_stop_server(srv);
    metrics_free_registry(r);
}

TEST(server_rejects_bad_requests) {
    char err[256], out[4096];
    /* raw() reads until the server closes or stays silent for 7 s; a 1 s connection timeout
     * closes a kept-alive connection after its answer, so a case costs 1 s, not 7. */
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .timeout_seconds = 1 };
    struct metrics_server *srv = metrics_start_server(&opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    int port = metrics_get_server_port(srv);
    /* garbage is refused (an error status, or the connection closed), never served */
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n", "GET /metrics\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n",
        "GET /metrics SPDY/3\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n", "GET /\x01 HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = raw(port, bad[i], strlen(bad[i]), out, sizeof out);
        CHECKF(n == 0 || (strncmp(out, "HTTP/1.1 4", 10) == 0 || strncmp(out, "HTTP/1.1 5", 10) == 0),
               "request %zu: %s", i, out);
    }
    /* bare LF line ends are fine */
    CHECK(raw(port, "GET /healthz HTTP/1.0\n\n", 23, out, sizeof out) > 0);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "\r\n\r\nok\n") != NULL);
    /* an endless head is cut off at the bound */
    size_t big = 40000;
    char *req = malloc(big);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(req + 26, 'a', big - 26);
    CHECK(raw(port, req, big, out, sizeof out) > 0);
    CHECKF(strncmp(out, "HTTP/1.1 431 ", 13) == 0, "%s", out);
    free(req);
    metrics_stop_server(srv);
}

/* The bug of the hand-written server: 16 idle connections filled its slots and /healthz
 * answered 503, so a liveness probe would have restarted a healthy worker. */
TEST(server_answers_healthz_beside_200_idle_connections) {
    char err[256], out[4096];
    struct metrics_server_options opt = { .listen = "127.0.0.1:0" };
    struct metrics_server *srv = metrics_start_server(&opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    int port = metrics_get_server_port(srv);
    enum { IDLE = 200 };
    int idle[IDLE], nidle = 0;
    for (int i = 0; i < IDLE; i++) {
        int fd = connect_idle(port);
        CHECK(fd >= 0);
        idle[nidle++] = fd;
        if (i % 3 == 0) CHECK(send(fd, "GET /met", 8, MSG_NOSIGNAL) == 8);   /* half a request */
    }
    for (int k = 0; k < 3; k++) {
        CHECK(raw(port, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 44, out, sizeof out) > 0);
        CHECKF(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out);
    }
    struct resp *res = malloc(sizeof *res);
    CHECK_EQ_INT(get(port, "/healthz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    free(res);
    for (int i = 0; i < nidle; i++) close(idle[i]);
    metrics_stop_server(srv);
}

/* GET /healthz from a given loopback source address; the status line, or "" when refused. */
static void healthz_from(int port, const char *source, char *out, size_t outlen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, source, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    out[0] = '\0';
    if (bind(fd, (struct sockaddr *)&src, sizeof src) == 0 && connect(fd, (struct sockaddr *)&dst, sizeof dst) == 0 &&
        send(fd, "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 44, MSG_NOSIGNAL) == 44) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t n = poll(&p, 1, 5000) > 0 ? recv(fd, out, outlen - 1, 0) : 0;
        out[n > 0 ? n : 0] = '\0';
    }
    close(fd);
}

/* One client address holds at most half of the connection limit: another still gets in. */
TEST(server_keeps_room_for_other_clients) {
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .max_connections = 8 };
    int port, idle[6];
    struct metrics_server *srv = start_server(&opt, &port);
    for (int i = 0; i < 6; i++) idle[i] = connect_idle(port);
    usleep(200000);
    char out[512];
    healthz_from(port, "127.0.0.2", out, sizeof out);
    CHECKF(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out);
    healthz_from(port, "127.0.0.1", out, sizeof out);
    CHECKF(strncmp(out, "HTTP/1.1 200", 12) != 0, "the 7th connection of one address was served: %s", out);
    for (int i = 0; i < 6; i++) close(idle[i]);
    metrics_stop_server(srv);
}

TEST(server_times_out_stuck_clients) {
    char err[256], out[256];
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .timeout_seconds = 1 };
    struct metrics_server *srv = metrics_start_server(&opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    /* a client that never finishes its request is closed after the timeout, unanswered */
    int n = raw(metrics_get_server_port(srv), "GET /healthz HTTP/1.1\r\n", 23, out, sizeof out);
    CHECK_EQ_INT(n, 0);
    metrics_stop_server(srv);
}

static int not_ready(void *ud, char *reason, size_t len) {
    (void)ud;
    snprintf(reason, len, "flags not read yet");
    return 1;
}

TEST(server_separates_liveness_and_readiness) {
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .ready = not_ready };
    int port;
    struct metrics_server *srv = start_server(&opt, &port);
    struct resp *res = malloc(sizeof *res);
    CHECK_EQ_INT(get(port, "/healthz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    CHECK_EQ_INT(get(port, "/readyz", NULL, res), 0);
    CHECK_EQ_INT(res->status, 503);
    CHECK_EQ_STR(res->body, "flags not read yet\n");
    CHECK_EQ_INT(get(port, "/readyz", "HEAD", res), 0);
    CHECK_EQ_INT(res->status, 503);
    CHECK_EQ_INT(res->len, 0);
    free(res);
    metrics_stop_server(srv);
}

/* Keep-alive: two requests on one curl handle use one connection; HEAD announces the length
 * GET sends. */
TEST(server_keeps_connections_alive_and_answers_head) {
    struct metrics_registry *r = metrics_new_registry();
    metrics_add_counter(metrics_register_counter(r, "cgw_x_total", "X.", NULL), 3);
    char err[256], url[128];
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .registry = r };
    struct metrics_server *srv = metrics_start_server(&opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", metrics_get_server_port(srv));
    struct resp *res = malloc(sizeof *res);
    memset(res, 0, sizeof *res);
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
    long connects = -1;
    curl_off_t get_len = 0, head_len = 0;
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &get_len);
    CHECK(get_len > 0 && (size_t)get_len == res->len);
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    res->len = 0;
    CHECK_EQ_INT(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &head_len);
    CHECK_EQ_INT(connects, 0);          /* the second request reused the first connection */
    CHECK_EQ_INT(head_len, get_len);
    CHECK_EQ_INT(res->len, 0);
    curl_easy_cleanup(c);
    free(res);
    metrics_stop_server(srv);
    metrics_free_registry(r);
}

/* GET path with one extra header line (NULL: none), without letting curl decode the body;
 * the answer's Content-Encoding goes to encoding ("" when none). */
static int get_with(int port, const char *path, const char *header, struct resp *r, char *encoding, size_t enclen) {
    char url[256];
    CURL *c = curl_easy_init();
    struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 3000L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    struct curl_header *ce = NULL;
    encoding[0] = '\0';
    if (curl_easy_header(c, "Content-Encoding", 0, CURLH_HEADER, -1, &ce) == CURLHE_OK)
        snprintf(encoding, enclen, "%s", ce->value);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

TEST(server_gzips_metrics_when_asked) {
    struct metrics_registry *r = metrics_new_registry();
    for (int i = 0; i < 40; i++) {
        char v[16];
        snprintf(v, sizeof v, "p%d", i);
        metrics_add_counter(metrics_register_counter(r, "cgw_records_total", "Records.", "partition", v, NULL), (uint64_t)i);
    }
    char err[256], enc[64];
    struct metrics_server_options opt = { .listen = "127.0.0.1:0", .registry = r };
    struct metrics_server *srv = metrics_start_server(&opt, err, sizeof err);
    CHECKF(srv != NULL, "%s", err);
    int port = metrics_get_server_port(srv);
    char *text = render(r);
    struct resp *res = malloc(sizeof *res);
    CHECK_EQ_INT(get_with(port, "/metrics", "Accept-Encoding: gzip, deflate", res, enc, sizeof enc), 0);
    CHECK_EQ_STR(enc, "gzip");
    CHECK(res->len < strlen(text));
    char plain[65536];
    z_stream z = { 0 };
    CHECK_EQ_INT(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)res->body;
    z.avail_in = (uInt)res->len;
    z.next_out = (Bytef *)plain;
    z.avail_out = sizeof plain - 1;
    CHECK_EQ_INT(inflate(&z, Z_FINISH), Z_STREAM_END);
    plain[z.total_out] = '\0';
    inflateEnd(&z);
    CHECK_EQ_STR(plain, text);
    /* not asked, or refused with q=0: plain text */
    CHECK_EQ_INT(get_with(port, "/metrics", NULL, res, enc, sizeof enc), 0);
    CHECK_EQ_STR(enc, "");
    CHECK_EQ_STR(res->body, text);
    CHECK_EQ_INT(get_with(port, "/metrics", "Accept-Encoding: gzip;q=0, identity", res, enc, sizeof enc), 0);
    CHECK_EQ_STR(enc, "");
    CHECK_EQ_STR(res->body, text);
    free(text);
    free(res);
    metrics_stop_server(srv);
    metrics_free_registry(r);
}

static int get_with_token(int port, const char *path, const char *token, struct resp *r) {
    char auth[160], enc[64];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    return get_with(port, path, token ? auth : NULL, r, enc, sizeof enc);
}

/* Off loopback the hook's paths need the bearer token; scrapers and probes never do. */
TEST(server_asks_for_the_token_off_loopback) {
    struct metrics_server_options opt = { .listen = "0.0.0.0:0", .handler = status_hook, .token = "s3cret" };
    int port;
    struct metrics_server *srv = start_server(&opt, &port);
    struct resp *res = malloc(sizeof *res);
    static const struct { const char *path, *token; long status; } cases[] = {
        {"/status", NULL, 401}, {"/status", "s3cre", 401}, {"/status", "s3cret!", 401},
        {"/status", "s3cret", 200}, {"/metrics", NULL, 200}, {"/healthz", NULL, 200},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK_EQ_INT(get_with_token(port, cases[i].path, cases[i].token, res), 0);
        CHECKF(res->status == cases[i].status, "%s with token %s: %ld", cases[i].path,
               cases[i].token ? cases[i].token : "(none)", res->status);
    }
    metrics_stop_server(srv);
    /* on loopback the token is not asked */
    struct metrics_server_options lo = { .listen = "127.0.0.1:0", .handler = status_hook, .token = "s3cret" };
    srv = start_server(&lo, &port);
    CHECK_EQ_INT(get_with_token(port, "/status", NULL, res), 0);
    CHECK_EQ_INT(res->status, 200);
    free(res);
    metrics_stop_server(srv);
}

TEST(server_reports_bind_errors) {
    char err[256];
    struct metrics_server_options opt = { .listen = "127.0.0.1:0" };
    struct metrics_server *a = metrics_start_server(&opt, err, sizeof err);
    CHECKF(a != NULL, "%s", err);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", metrics_get_server_port(a));
    struct metrics_server_options taken = { .listen = addr };
    CHECK(metrics_start_server(&taken, err, sizeof err) == NULL);
    char want[128];
    snprintf(want, sizeof want, "metrics: cannot listen on %s: Address already in use", addr);
    CHECK_EQ_STR(err, want);
    struct metrics_server_options bad = { .listen = "9464" };
    CHECK(metrics_start_server(&bad, err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "metrics: bad listen address \"9464\" (expected host:port)");
    struct metrics_server_options v6 = { .listen = "[::1]:0" };
    struct metrics_server *b = metrics_start_server(&v6, err, sizeof err);
    if (b) metrics_stop_server(b);     /* hosts without IPv6 loopback may refuse: not an error of ours */
    metrics_stop_server(a);
}

/* The router without a listener (metrics_route.c). Accept-Encoding as RFC 9110 reads it; the
 * fuzz target tests/fuzz/metrics_route checks the same against its own oracle. The first
 * parser searched "q=" anywhere in the element: "Q=0" (names are case-insensitive) and
 * "q=nan" sent gzip to a client that refused it (regress_q_uppercase, regress_q_nan). */
TEST(accept_encoding_reads_codings_and_qvalues) {
    CHECK(metrics_accepts_gzip("gzip"));
    CHECK(metrics_accepts_gzip("deflate, GZIP ;q=0.001"));
    CHECK(metrics_accepts_gzip("br;q=1.0, gzip;q=1.000"));
    CHECK(!metrics_accepts_gzip(NULL));
    CHECK(!metrics_accepts_gzip(""));
    CHECK(!metrics_accepts_gzip("gzip;q=0"));
    CHECK(!metrics_accepts_gzip("gzip;Q=0"));
    CHECK(!metrics_accepts_gzip("gzip;q=0.000, identity"));
    CHECK(!metrics_accepts_gzip("gzip;q=nan"));
    CHECK(!metrics_accepts_gzip("gzip;q=1.5"));
    CHECK(!metrics_accepts_gzip("gzip;q=0.0001"));
    CHECK(!metrics_accepts_gzip("gzip;Q=;Q=1"));       /* fuzz: regress_q_malformed_then_valid */
    CHECK(!metrics_accepts_gzip("gzip;q=1;q=0"));
    CHECK(metrics_accepts_gzip("gzip;q=0;q=0.5"));
    CHECK(!metrics_accepts_gzip("gzipx, x-gzip, *"));
    CHECK(!metrics_accepts_gzip("gzip x"));
    CHECK(metrics_accepts_gzip("gzip x, gzip"));        /* a malformed element is skipped */
}

TEST(bearer_token_check) {
    CHECK(metrics_bearer_ok("Bearer tok", "tok"));
    CHECK(metrics_bearer_ok("bearer tok", "tok"));
    CHECK(!metrics_bearer_ok("Bearer tok2", "tok"));
    CHECK(!metrics_bearer_ok("Bearer to", "tok"));
    CHECK(!metrics_bearer_ok("Basic tok", "tok"));
    CHECK(!metrics_bearer_ok(NULL, "tok"));
    CHECK(!metrics_bearer_ok("Bearer ", "tok"));
}

static int route_hook(void *ud, const char *path, char **body, const char **ctype) {
    (void)ud, (void)ctype;
    if (strcmp(path, "/status") != 0) return 0;
    *body = strdup("{}");
    return 200;
}

/* Off loopback the hook's paths need the token; the probes and /metrics never do. */
TEST(router_asks_the_token_off_loopback_only) {
    struct metrics_router rt = { .opt = { .handler = route_hook }, .token = "tok", .loopback = false };
    struct metrics_request rq = { "GET", "/status", NULL, NULL };
    struct metrics_answer a;
    metrics_route_request(&rt, &rq, &a);
    CHECK_EQ_INT(a.status, 401);
    CHECK(a.unauthorised);
    free(a.body);
    rq.authorization = "Bearer tok";
    metrics_route_request(&rt, &rq, &a);
    CHECK_EQ_INT(a.status, 200);
    CHECK_EQ_STR(a.body, "{}");
    free(a.body);
    rq.authorization = NULL;
    rq.path = "/healthz";
    metrics_route_request(&rt, &rq, &a);
    CHECK_EQ_INT(a.status, 200);
    free(a.body);
    rt.loopback = true;
    rq.path = "/status";
    metrics_route_request(&rt, &rq, &a);
    CHECK_EQ_INT(a.status, 200);
    free(a.body);
    rq.method = "DELETE";
    metrics_route_request(&rt, &rq, &a);
    CHECK_EQ_INT(a.status, 405);
    CHECK(a.method_not_allowed);
    free(a.body);
}
