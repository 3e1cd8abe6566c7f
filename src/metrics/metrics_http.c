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
 * a walk over the metrics list, a JSON or HTML document) and freed by the library. Bodies are
 * gzip-compressed (zlib) when the client asks for it. With a token set and a listener that is
 * not on loopback, the hook's paths (/status, the page) need "Authorization: Bearer <token>";
 * /metrics, /healthz and /readyz never do (scrapers and probes). Signals are blocked on the
 * daemon's thread so they reach main.
 */
#include "metrics/metrics.h"

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
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#define METRICS_HTTP_DEFAULT_CONNECTIONS 512
#define METRICS_HTTP_DEFAULT_TIMEOUT_S 10
#define METRICS_HTTP_MEMORY_LIMIT (16 * 1024)   /* per connection: the request head fits in it */
#define METRICS_HTTP_GZIP_MIN 256               /* smaller bodies are sent as they are */

struct metrics_server {
    struct metrics_server_options opt;
    char *token;                        /* a copy; NULL: no token asked */
    bool loopback;                      /* the listener is on a loopback address */
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
    srv->loopback = is_loopback(&ss);
    return fd;
}

/* ---- content negotiation and authorisation --------------------------------------------------- */

/* Does an Accept-Encoding value list gzip with a q-value above 0? */
static bool accepts_gzip(const char *ae) {
    while (ae && *ae) {
        ae += strspn(ae, " \t,");
        size_t n = strcspn(ae, ";, \t");
        const char *end = ae + strcspn(ae, ",");
        if (n == 4 && strncasecmp(ae, "gzip", 4) == 0) {
            const char *q = strstr(ae, "q=");
            bool zero = q && q < end && strtod(q + 2, NULL) <= 0.0;
            return !zero;
        }
        ae = end;
    }
    return false;
}

/* gzip (RFC 1952) of in into a malloc'd *out; -1 when zlib fails or memory runs out. */
static int gzip_body(const char *in, size_t len, char **out, size_t *outlen) {
    z_stream z = { 0 };
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    size_t cap = deflateBound(&z, (uLong)len) + 32;
    char *buf = malloc(cap);
    if (!buf) { deflateEnd(&z); return -1; }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *outlen = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) { free(buf); return -1; }
    *out = buf;
    return 0;
}

/* Constant-time comparison of the presented credentials with "Bearer <token>". */
static bool authorised(const struct metrics_server *srv, struct MHD_Connection *conn) {
    if (!srv->token || srv->loopback) return true;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    size_t n = strlen(h), m = strlen(srv->token);
    unsigned char diff = (unsigned char)(n != m);
    for (size_t i = 0; i < m; i++) diff |= (unsigned char)(srv->token[i] ^ (i < n ? h[i] : 0));
    return diff == 0;
}

/* ---- answers ------------------------------------------------------------------------------- */

struct answer {
    int status;
    const char *ctype;
    char *body;                         /* malloc'd; NULL: empty */
    size_t len;
    bool unauthorised;                  /* add WWW-Authenticate */
};

static void text_answer(struct answer *a, int status, const char *text) {
    a->status = status;
    a->ctype = "text/plain; charset=utf-8";
    a->body = strdup(text);
    a->len = a->body ? strlen(a->body) : 0;
}

static void probe_answer(struct answer *a, metrics_health_fn fn, void *ud) {
    char reason[256] = "";
    if (!fn || fn(ud, reason, sizeof reason) == 0) {
        text_answer(a, MHD_HTTP_OK, "ok\n");
        return;
    }
    char msg[260];
    snprintf(msg, sizeof msg, "%s\n", reason[0] ? reason : "unhealthy");
    text_answer(a, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
}

static void route(struct metrics_server *srv, struct MHD_Connection *conn, const char *path, struct answer *a) {
    if (strcmp(path, "/metrics") == 0) {
        if (metrics_render(srv->opt.registry, &a->body, &a->len) < 0) {
            text_answer(a, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n");
            return;
        }
        a->status = MHD_HTTP_OK;
        a->ctype = "text/plain; version=0.0.4; charset=utf-8";
        return;
    }
    if (strcmp(path, "/healthz") == 0) { probe_answer(a, srv->opt.health, srv->opt.health_ud); return; }
    if (strcmp(path, "/readyz") == 0) { probe_answer(a, srv->opt.ready, srv->opt.ready_ud); return; }
    if (srv->opt.handler) {
        if (!authorised(srv, conn)) {
            text_answer(a, MHD_HTTP_UNAUTHORIZED, "a bearer token is required\n");
            a->unauthorised = true;
            return;
        }
        const char *ctype = "text/plain; charset=utf-8";
        int status = srv->opt.handler(srv->opt.handler_ud, path, &a->body, &ctype);
        if (status >= 100 && status <= 599) {
            a->status = status;
            a->ctype = ctype ? ctype : "text/plain; charset=utf-8";
            a->len = a->body ? strlen(a->body) : 0;
            return;
        }
        free(a->body);
        a->body = NULL;
    }
    text_answer(a, MHD_HTTP_NOT_FOUND, "not found\n");
}

static void maybe_gzip(struct MHD_Connection *conn, struct answer *a, bool *gzipped) {
    *gzipped = false;
    if (a->len < METRICS_HTTP_GZIP_MIN) return;
    if (!accepts_gzip(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING))) return;
    char *z = NULL;
    size_t zlen = 0;
    if (gzip_body(a->body, a->len, &z, &zlen) != 0) return;   /* send it plain */
    free(a->body);
    a->body = z;
    a->len = zlen;
    *gzipped = true;
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, struct answer *a) {
    bool gzipped = false;
    if (a->body) maybe_gzip(conn, a, &gzipped);
    struct MHD_Response *r = a->body
        ? MHD_create_response_from_buffer(a->len, a->body, MHD_RESPMEM_MUST_FREE)
        : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) { free(a->body); return MHD_NO; }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, a->ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gzipped) MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    if (a->status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (a->unauthorised) MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned int)a->status, r);
    MHD_destroy_response(r);
    return rc;
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
    struct answer a = { 0 };
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        text_answer(&a, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        return send_answer(conn, &a);
    }
    if (!*req_cls) { *req_cls = &head_seen; return MHD_YES; }
    if (*upload_data_size) { *upload_data_size = 0; return MHD_YES; }
    route(srv, conn, url, &a);
    return send_answer(conn, &a);
}

struct metrics_server *metrics_start_server(const struct metrics_server_options *opt, char *err, size_t errlen) {
    struct metrics_server *srv = calloc(1, sizeof *srv);
    if (!srv) { snprintf(err, errlen, "metrics: out of memory"); return NULL; }
    srv->opt = *opt;
    int fd = open_listener(srv, opt->listen, err, errlen);
    if (fd < 0) { free(srv); return NULL; }
    srv->opt.listen = NULL;            /* the caller's strings need not outlive this call */
    srv->opt.token = NULL;
    if (opt->token && opt->token[0] && !(srv->token = strdup(opt->token))) {
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
        free(srv->token);
        free(srv);
        return NULL;
    }
    return srv;
}

int metrics_get_server_port(const struct metrics_server *srv) { return srv ? srv->port : -1; }

void metrics_stop_server(struct metrics_server *srv) {
    if (!srv) return;
    MHD_stop_daemon(srv->daemon);       /* closes the listening socket and every connection */
    free(srv->token);
    free(srv);
}
