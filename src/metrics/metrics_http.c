/* metrics_http.c: a tiny HTTP/1.1 server for /metrics, /healthz and a hook for further paths.
 *
 * Why no library. The server answers a scraper and a health check on loopback: two GET
 * paths, small answers, one request per connection. libmicrohttpd (the one Debian server
 * library that fits) would bring its own thread model, options and a dependency for what is
 * a poll loop of 300 lines; the worker needs neither keep-alive, chunking, TLS nor bodies.
 *
 * Design. One thread runs poll(2) over the listening socket, a self-pipe (for stop) and at
 * most METRICS_HTTP_CLIENTS non-blocking connections. Each connection reads until the end
 * of the request head (bounded by METRICS_HTTP_REQ_MAX; a longer head gets 431), gets one
 * complete response built in memory, writes it as the socket accepts it, and is closed
 * ("Connection: close"). A connection that has not finished within METRICS_HTTP_TIMEOUT_MS
 * is dropped, so a slow or stuck client holds one slot for a bounded time and never the
 * thread. Nothing here takes a lock that a worker thread holds for longer than a list walk
 * (metrics_render), and workers never wait for this thread.
 *
 * Robustness: request lines are parsed strictly (method, origin-form target, HTTP/1.x);
 * anything else is 400; methods other than GET and HEAD are 405; unknown paths 404. Writes
 * use MSG_NOSIGNAL so a client that hangs up cannot raise SIGPIPE. Signals are blocked on the
 * server thread so they reach main.
 */
#include "metrics/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define METRICS_HTTP_CLIENTS 16
#define METRICS_HTTP_REQ_MAX 8192
#define METRICS_HTTP_TIMEOUT_MS 5000

struct client {
    int fd;                             /* -1: free slot */
    long long deadline_ms;
    size_t inlen;
    char in[METRICS_HTTP_REQ_MAX];
    char *out;                          /* the whole response once the request is read */
    size_t outlen, outoff;
};

struct metrics_server {
    struct metrics_server_options opt;
    int listen_fd;
    int wake[2];                        /* self-pipe: a byte on wake[1] stops the thread */
    int port;
    pthread_t thread;
    struct client clients[METRICS_HTTP_CLIENTS];
};

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static int open_listener(const char *listen_addr, int *port_out, char *err, size_t errlen) {
    char host[256], port[16];
    struct addrinfo hints = { 0 }, *res = NULL;
    int fd = -1;
    if (!listen_addr || split_hostport(listen_addr, host, sizeof host, port, sizeof port) < 0) {
        snprintf(err, errlen, "metrics: bad listen address \"%s\" (expected host:port)", listen_addr ? listen_addr : "");
        return -1;
    }
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "metrics: cannot resolve %s: %s", listen_addr, gai_strerror(rc));
        return -1;
    }
    errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 16) == 0) break;
        int saved = errno;
        close(fd);
        fd = -1;
        errno = saved;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        set_err(err, errlen, "cannot listen on", listen_addr);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* ---- responses ------------------------------------------------------------------------------ */

static const char *reason_phrase(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : "Error";
    }
}

/* Builds the whole response into c->out; takes ownership of body (may be NULL). */
static void respond(struct client *c, int status, const char *content_type, char *body, size_t body_len, bool head) {
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason_phrase(status), content_type, body_len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    size_t total = (size_t)n + (head ? 0 : body_len);
    c->out = malloc(total);
    if (c->out) {
        memcpy(c->out, hdr, (size_t)n);
        if (!head && body_len) memcpy(c->out + n, body, body_len);
        c->outlen = total;
    } else {
        c->outlen = 0;              /* out of memory: the caller drops the connection */
    }
    c->outoff = 0;
    free(body);
}

static void respond_text(struct client *c, int status, const char *text, bool head) {
    char *body = strdup(text);
    respond(c, status, "text/plain; charset=utf-8", body, body ? strlen(body) : 0, head);
}

/* Parses the request head in c->in and fills c->out. */
static void handle_request(struct metrics_server *srv, struct client *c) {
    char method[16], target[1024], version[16];
    char *eol = memchr(c->in, '\n', c->inlen);
    size_t line_len = (size_t)(eol - c->in);
    if (line_len && c->in[line_len - 1] == '\r') line_len--;
    /* request-line = method SP request-target SP HTTP-version, exactly */
    char line[METRICS_HTTP_REQ_MAX];
    memcpy(line, c->in, line_len);
    line[line_len] = '\0';
    char *sp1 = strchr(line, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ') || (size_t)(sp1 - line) >= sizeof method ||
        (size_t)(sp2 - sp1 - 1) >= sizeof target || strlen(sp2 + 1) >= sizeof version) {
        respond_text(c, 400, "bad request\n", false);
        return;
    }
    snprintf(method, sizeof method, "%.*s", (int)(sp1 - line), line);
    snprintf(target, sizeof target, "%.*s", (int)(sp2 - sp1 - 1), sp1 + 1);
    snprintf(version, sizeof version, "%s", sp2 + 1);
    if (strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/' || !method[0]) {
        respond_text(c, 400, "bad request\n", false);
        return;
    }
    for (const char *p = method; *p; p++) {
        if (*p < 'A' || *p > 'Z') { respond_text(c, 400, "bad request\n", false); return; }
    }
    for (const char *p = target; *p; p++) {
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) { respond_text(c, 400, "bad request\n", false); return; }
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        respond_text(c, 405, "method not allowed\n", false);
        return;
    }
    char *q = strchr(target, '?');     /* the query string plays no part in routing */
    if (q) *q = '\0';

    if (strcmp(target, "/metrics") == 0) {
        char *text = NULL;
        size_t len = 0;
        if (metrics_render(srv->opt.registry, &text, &len) < 0) {
            respond_text(c, 500, "cannot render metrics\n", head);
            return;
        }
        respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, head);
        return;
    }
    if (strcmp(target, "/healthz") == 0) {
        char reason[256] = "";
        if (!srv->opt.health || srv->opt.health(srv->opt.health_ud, reason, sizeof reason) == 0) {
            respond_text(c, 200, "ok\n", head);
        } else {
            char msg[260];
            snprintf(msg, sizeof msg, "%s\n", reason[0] ? reason : "unhealthy");
            respond_text(c, 503, msg, head);
        }
        return;
    }
    if (srv->opt.handler) {
        char *body = NULL;
        const char *ctype = "text/plain; charset=utf-8";
        int status = srv->opt.handler(srv->opt.handler_ud, target, &body, &ctype);
        if (status >= 100 && status <= 599) {
            respond(c, status, ctype ? ctype : "text/plain; charset=utf-8", body, body ? strlen(body) : 0, head);
            return;
        }
        free(body);
    }
    respond_text(c, 404, "not found\n", head);
}

/* ---- the loop ------------------------------------------------------------------------------- */

static void drop(struct client *c) {
    if (c->fd >= 0) close(c->fd);
    free(c->out);
    c->fd = -1;
    c->out = NULL;
    c->inlen = c->outlen = c->outoff = 0;
}

static void accept_clients(struct metrics_server *srv) {
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;             /* EAGAIN, or a transient error: poll again */
        struct client *c = NULL;
        for (int i = 0; i < METRICS_HTTP_CLIENTS && !c; i++)
            if (srv->clients[i].fd < 0) c = &srv->clients[i];
        if (!c) {                       /* full: refuse this one rather than queue it */
            static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n"
                                       "Connection: close\r\n\r\nbusy\n";
            ssize_t w = send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)w;
            close(fd);
            continue;
        }
        c->fd = fd;
        c->inlen = 0;
        c->deadline_ms = now_ms() + METRICS_HTTP_TIMEOUT_MS;
    }
}

static void read_client(struct metrics_server *srv, struct client *c) {
    for (;;) {
        if (c->inlen == sizeof c->in) {
            respond_text(c, 431, "request too large\n", false);
            if (!c->out) drop(c);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
        if (n == 0) { drop(c); return; }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) drop(c);
            return;
        }
        size_t from = c->inlen > 3 ? c->inlen - 3 : 0;
        c->inlen += (size_t)n;
        /* the head ends at an empty line; bare LF line ends are tolerated */
        for (size_t i = from; i + 1 < c->inlen; i++) {
            if ((c->in[i] == '\n' && c->in[i + 1] == '\n') ||
                (i + 3 < c->inlen && memcmp(c->in + i, "\r\n\r\n", 4) == 0)) {
                handle_request(srv, c);
                if (!c->out) drop(c);     /* out of memory: nothing to say */
                return;
            }
        }
    }
}

static void write_client(struct client *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) drop(c);
            return;
        }
        c->outoff += (size_t)n;
    }
    shutdown(c->fd, SHUT_WR);
    drop(c);
}

static void *serve(void *arg) {
    struct metrics_server *srv = arg;
    struct pollfd pfd[METRICS_HTTP_CLIENTS + 2];
    int idx[METRICS_HTTP_CLIENTS + 2];
    for (;;) {
        int n = 0;
        pfd[n++] = (struct pollfd){ .fd = srv->wake[0], .events = POLLIN };
        pfd[n++] = (struct pollfd){ .fd = srv->listen_fd, .events = POLLIN };
        long long now = now_ms();
        for (int i = 0; i < METRICS_HTTP_CLIENTS; i++) {
            struct client *c = &srv->clients[i];
            if (c->fd < 0) continue;
            if (now >= c->deadline_ms) { drop(c); continue; }
            idx[n] = i;
            pfd[n++] = (struct pollfd){ .fd = c->fd, .events = c->out ? POLLOUT : POLLIN };
        }
        if (poll(pfd, (nfds_t)n, 250) < 0 && errno != EINTR) continue;
        if (pfd[0].revents) break;
        if (pfd[1].revents & POLLIN) accept_clients(srv);
        for (int k = 2; k < n; k++) {
            struct client *c = &srv->clients[idx[k]];
            if (!pfd[k].revents || c->fd != pfd[k].fd) continue;
            if (pfd[k].revents & (POLLERR | POLLNVAL)) { drop(c); continue; }
            if (!c->out) read_client(srv, c);
            if (c->fd >= 0 && c->out) write_client(c);   /* try at once: it usually fits */   /* try at once: usually fits */
        }
    }
    return NULL;
}

struct metrics_server *metrics_start_server(const struct metrics_server_options *opt, char *err, size_t errlen) {
    struct metrics_server *srv = calloc(1, sizeof *srv);
    if (!srv) { snprintf(err, errlen, "metrics: out of memory"); return NULL; }
    srv->opt = *opt;
    srv->wake[0] = srv->wake[1] = -1;
    for (int i = 0; i < METRICS_HTTP_CLIENTS; i++) srv->clients[i].fd = -1;
    srv->listen_fd = open_listener(opt->listen, &srv->port, err, errlen);
    if (srv->listen_fd < 0) { free(srv); return NULL; }
    srv->opt.listen = NULL;            /* the caller's string need not outlive this call */
    if (pipe2(srv->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        set_err(err, errlen, "cannot create a pipe for", "the metrics server");
        close(srv->listen_fd);
        free(srv);
        return NULL;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&srv->thread, NULL, serve, srv);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        set_err(err, errlen, "cannot start a thread for", "the metrics server");
        close(srv->wake[0]);
        close(srv->wake[1]);
        close(srv->listen_fd);
        free(srv);
        return NULL;
    }
    return srv;
}

int metrics_get_server_port(const struct metrics_server *srv) { return srv ? srv->port : -1; }

void metrics_stop_server(struct metrics_server *srv) {
    if (!srv) return;
    char b = 1;
    ssize_t w = write(srv->wake[1], &b, 1);
    (void)w;
    pthread_join(srv->thread, NULL);
    for (int i = 0; i < METRICS_HTTP_CLIENTS; i++) drop(&srv->clients[i]);
    close(srv->listen_fd);
    close(srv->wake[0]);
    close(srv->wake[1]);
    free(srv);
}
