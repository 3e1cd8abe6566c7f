/* metrics_http.c: the worker's HTTP listener, on libmicrohttpd: /metrics, /healthz, /readyz
 * and the paths of a caller hook (/status, the status page).
 *
 * Why a library. The first version was a hand-written poll loop with 16 slots and one request
 * per connection; 16 idle connections filled it and /healthz then answered 503, so an
 * orchestrator would have restarted a healthy worker. libmicrohttpd (Debian's
 * libmicrohttpd-dev) does the HTTP/1.1 parsing, keep-alive, HEAD, per-connection timeouts and
 * connection limits; this file only routes, authorises and compresses.
 *
 * How. The listening socket is opened here (so bind errors read the same as before and port 0
 * works), then handed to one daemon with an internal epoll thread: hundreds of idle connections
 * cost a file descriptor each, not a slot, and each is dropped after the connection timeout;
 * one client address may hold at most half of the connection limit, so another (the probe of
 * an orchestrator) still gets in.
 * Every answer is built in memory in one call of the access handler (the callbacks are cheap:
 * a walk over the metrics list, a JSON or HTML document) and freed by the library. What the
 * answer is (route, bearer token, gzip) is metrics_route.c's, from the method, the path and two
 * header values: with a token set and a listener that is not on loopback, the hook's paths
 * (/status, the page) need "Authorization: Bearer <token>"; /metrics, /healthz and /readyz
 * never do (scrapers and probes). Signals are blocked on the daemon's thread so they reach main.
 */
#include "metrics/metrics_internal.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define METRICS_HTTP_DEFAULT_CONNECTIONS 512
#define METRICS_HTTP_DEFAULT_TIMEOUT_S 10
#define METRICS_HTTP_MEMORY_LIMIT (16 * 1024)   /* per connection: the request head fits in it */

struct metrics_server {
    struct metrics_router rt;           /* the options, the token (a copy) and loopback */
    struct MHD_Daemon *daemon;
    int port;
};

static void set_err(char *err, size_t errlen, const char *what, const char *addr) {
    snprintf(err, errlen, "metrics: %s %s: %s", what, addr, strerror(errno));
}

/* "host:port" or "[v6]:port" into host and port strings. */
static int split_hostport(const char *listen, char *host, size_t hlen, char *port, size_t plen) {
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1]) return -1;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { h++; n -= 2; }
    if (n == 0 || n >= hlen || strlen(colon + 1) >= plen) return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, plen, "%s", colon + 1);
    return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static int bind_first(struct addrinfo *res) {
    int fd = -1;
    errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) break;
        int saved = errno;
        close(fd);
        fd = -1;
        errno = saved;
    }
    return fd;
}

static int open_listener(struct metrics_server *srv, const char *addr, char *err, size_t errlen) {
    char host[256], port[16];
    struct addrinfo hints = { 0 }, *res = NULL;
    if (!addr || split_hostport(addr, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "metrics: bad listen address \"%s\" (expected host:port)", addr ? addr : "");
        return -1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "metrics: cannot resolve %s: %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = bind_first(res);
    freeaddrinfo(res);
    if (fd < 0) {
        set_err(err, errlen, "cannot listen on", addr);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    srv->port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    srv->rt.loopback = is_loopback(&ss);
    return fd;
}

/* ---- answers ------------------------------------------------------------------------------- */

static enum MHD_Result send_answer(struct MHD_Connection *conn, struct metrics_answer *a) {
    struct MHD_Response *r = a->body
        ? MHD_create_response_from_buffer(a->len, a->body, MHD_RESPMEM_MUST_FREE)
        : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) { free(a->body); return MHD_NO; }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (a->gzipped) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (a->method_not_allowed) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (a->unauthorised) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned int)a->status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The request head as the router reads it. */
static void answer(struct metrics_server *srv, struct MHD_Connection *conn, const char *url, const char *method,
                   struct metrics_answer *a) {
    struct metrics_request rq = {
        .method = method,
        .path = url,
        .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .accept_encoding = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING),
    };
    metrics_route_request(&srv->rt, &rq, a);
}

/* The access handler: called first with the head only, then per body chunk (GET and HEAD
 * have none, a body is ignored), then once with no data: the answer goes there, because an
 * answer queued on the first call makes the library close the connection (no keep-alive).
 * Every other method is answered 405 at once. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    static int head_seen;               /* only its address is used, as a marker */
    (void)version;
    (void)upload_data;
    struct metrics_server *srv = cls;
    struct metrics_answer a;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        answer(srv, conn, url, method, &a);     /* 405 */
        return send_answer(conn, &a);
    }
    if (!*req_cls) { *req_cls = &head_seen; return MHD_YES; }
    if (*upload_data_size) { *upload_data_size = 0; return MHD_YES; }
    answer(srv, conn, url, method, &a);
    return send_answer(conn, &a);
}

struct metrics_server *metrics_start_server(const struct metrics_server_options *opt, char *err, size_t errlen) {
    struct metrics_server *srv = calloc(1, sizeof *srv);
    if (!srv) { snprintf(err, errlen, "metrics: out of memory"); return NULL; }
    srv->rt.opt = *opt;
    int fd = open_listener(srv, opt->listen, err, errlen);
    if (fd < 0) { free(srv); return NULL; }
    srv->rt.opt.listen = NULL;         /* the caller's strings need not outlive this call */
    srv->rt.opt.token = NULL;
    char *token = NULL;
    if (opt->token && opt->token[0] && !(srv->rt.token = token = strdup(opt->token))) {
        snprintf(err, errlen, "metrics: out of memory");
        close(fd);
        free(srv);
        return NULL;
    }
    unsigned int limit = opt->max_connections > 0 ? (unsigned)opt->max_connections : METRICS_HTTP_DEFAULT_CONNECTIONS;
    unsigned int timeout = opt->timeout_seconds > 0 ? (unsigned)opt->timeout_seconds : METRICS_HTTP_DEFAULT_TIMEOUT_S;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* the daemon's thread inherits the mask */
    srv->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                                   on_request, srv, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                                   MHD_OPTION_CONNECTION_LIMIT, limit,
                                   MHD_OPTION_PER_IP_CONNECTION_LIMIT, limit / 2 > 0 ? limit / 2 : 1,
                                   MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_HTTP_MEMORY_LIMIT,
                                   MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!srv->daemon) {
        snprintf(err, errlen, "metrics: cannot start the HTTP server on port %d", srv->port);
        close(fd);
        free(token);
        free(srv);
        return NULL;
    }
    return srv;
}

int metrics_get_server_port(const struct metrics_server *srv) { return srv ? srv->port : -1; }

void metrics_stop_server(struct metrics_server *srv) {
    if (!srv) return;
    MHD_stop_daemon(srv->daemon);       /* closes the listening socket and every connection */
    free((char *)srv->rt.token);
    free(srv);
}
