/* net.c: a TCP socket with optional OpenSSL TLS, with connect and I/O timeouts.
 *
 * Connect is non-blocking + poll() so connect_timeout applies per resolved address; after
 * that the socket is blocking, and every read and write first polls the socket (with the I/O
 * timeout) beside an optional cancel descriptor: a server that stops answering (frozen, hung
 * host, black-holed network) costs one io_timeout and a cancel ends any wait at once.
 * SO_RCVTIMEO/SO_SNDTIMEO stay set as a backstop (a TLS record arriving in pieces), and
 * TCP_USER_TIMEOUT bounds data the peer never acknowledges. TCP keepalive is tuned (30 s idle,
 * 5 s interval, 3 probes) so a dead peer of an idle pooled connection is found in 45 s, not
 * in the kernel's default of 2 h 11 min. TLS follows
 * docs/bolt.md §10: TLS 1.2 minimum, SNI always, and for +s the system CA store (plus an
 * optional bundle) with hostname verification; +ssc encrypts without verifying.
 *
 * SIGPIPE: every write is a send(MSG_NOSIGNAL), so a peer that has gone raises no signal
 * and a library need not touch its host's signal handlers or masks. Plain writes call send()
 * directly; OpenSSL's own socket BIO writes with write(), so TLS goes through a socket BIO
 * whose write is replaced by send(MSG_NOSIGNAL) (nosigpipe_bio(): the rest of OpenSSL's
 * socket BIO, reads and controls, is kept as it is), close_notify included.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bolt/bolt_internal.h"

#define KEEPALIVE_IDLE_S 30
#define KEEPALIVE_INTERVAL_S 5
#define KEEPALIVE_PROBES 3

struct bolt_sock {
    int fd;
    int io_ms;                  /* 0: no timeout */
    int cancel_fd;              /* -1: none */
    SSL_CTX *ctx;
    SSL *ssl;
};

static int io_code(int e) {
    return e == EAGAIN || e == EWOULDBLOCK || e == ETIMEDOUT ? BOLT_ETIMEDOUT : BOLT_EIO;
}

/* Polls fd for events beside the cancel descriptor: 0 ready, ETIMEDOUT, ECANCELED or errno. */
static int wait_fd(int fd, short events, int timeout_ms, int cancel_fd) {
    struct pollfd p[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int rc;
    do rc = poll(p, cancel_fd >= 0 ? 2 : 1, timeout_ms > 0 ? timeout_ms : -1);
    while (rc < 0 && errno == EINTR);
    if (rc == 0) return ETIMEDOUT;
    if (rc < 0) return errno;
    return cancel_fd >= 0 && p[1].revents ? ECANCELED : 0;
}

static int wait_connect(int fd, int timeout_ms, int cancel_fd) {
    int rc = wait_fd(fd, POLLOUT, timeout_ms, cancel_fd);
    if (rc) return rc;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    return soerr;
}

static void tune_socket(int fd, int io_ms) {
    int one = 1, idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_INTERVAL_S, cnt = KEEPALIVE_PROBES;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    if (io_ms > 0) {
        struct timeval tv = {io_ms / 1000, (io_ms % 1000) * 1000};
        unsigned user_timeout = (unsigned)io_ms;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
    }
}

static int try_addr(const struct addrinfo *ai, int connect_ms, int io_ms, int cancel_fd,
                    int *out) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return errno;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    int e = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        e = errno == EINPROGRESS ? wait_connect(fd, connect_ms, cancel_fd) : errno;
    if (e) {
        close(fd);
        return e;
    }
    fcntl(fd, F_SETFL, fl);
    tune_socket(fd, io_ms);
    *out = fd;
    return 0;
}

static int tcp_connect(const char *host, int port, int connect_ms, int io_ms, int cancel_fd,
                       int *fd, bolt_error *err) {
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char ports[8];
    snprintf(ports, sizeof ports, "%d", port);
    int g = getaddrinfo(host, ports, &hints, &res);
    if (g) return bolt_err(err, BOLT_ECONNECT, "cannot resolve %s: %s", host, gai_strerror(g));
    int e = ENOENT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if ((e = try_addr(ai, connect_ms, io_ms, cancel_fd, fd)) == 0 || e == ECANCELED) break;
    freeaddrinfo(res);
    if (e == ECANCELED) return bolt_err(err, BOLT_ECANCELLED, "connect to %s:%d cancelled", host, port);
    if (e) return bolt_err(err, BOLT_ECONNECT, "cannot connect to %s:%d: %s", host, port,
                           strerror(e));
    return BOLT_OK;
}

static int tls_fail(bolt_error *err, const char *what, const char *host) {
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return bolt_err(err, BOLT_ETLS, "TLS %s with %s failed%s%s", what, host, buf[0] ? ": " : "",
                    buf);
}

/* OpenSSL's socket BIO with send(MSG_NOSIGNAL) for write(). Made once, kept for the process. */
static int nosigpipe_write(BIO *b, const char *p, int n) {
    ssize_t w = send((int)BIO_get_fd(b, NULL), p, (size_t)n, MSG_NOSIGNAL);
    BIO_clear_retry_flags(b);
    if (w <= 0 && BIO_sock_should_retry((int)w)) BIO_set_retry_write(b);
    return (int)w;
}

static BIO_METHOD *nosigpipe_method;

static void nosigpipe_method_make(void) {
    const BIO_METHOD *sock = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "bolt socket");
    if (m && BIO_meth_set_write(m, nosigpipe_write)
        && BIO_meth_set_read(m, BIO_meth_get_read(sock))
        && BIO_meth_set_puts(m, BIO_meth_get_puts(sock))
        && BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock))
        && BIO_meth_set_create(m, BIO_meth_get_create(sock))
        && BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock))) {
        nosigpipe_method = m;
        return;
    }
    BIO_meth_free(m);
}

/* A socket BIO on fd (not closed by the BIO) that never raises SIGPIPE; NULL: out of memory. */
static BIO *nosigpipe_bio(int fd) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, nosigpipe_method_make);
    BIO *b = nosigpipe_method ? BIO_new(nosigpipe_method) : NULL;
    if (b) BIO_set_fd(b, fd, BIO_NOCLOSE);
    return b;
}

static int tls_setup(bolt_sock *s, const char *host, int mode, const char *ca_file,
                     bolt_error *err) {
    if (!(s->ctx = SSL_CTX_new(TLS_client_method()))) return tls_fail(err, "setup", host);
    SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
    if (mode == 1) {
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_set_default_verify_paths(s->ctx) != 1) return tls_fail(err, "CA load", host);
        if (ca_file && SSL_CTX_load_verify_locations(s->ctx, ca_file, NULL) != 1)
            return tls_fail(err, "CA file load", host);
    } else {
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, NULL);
    }
    if (!(s->ssl = SSL_new(s->ctx))) return tls_fail(err, "setup", host);
    BIO *bio = nosigpipe_bio(s->fd);
    if (!bio) return tls_fail(err, "setup", host);
    SSL_set_bio(s->ssl, bio, bio);                  /* the SSL owns it from here */
    /* SNI carries names only (RFC 6066); an IP literal is verified against IP SANs. */
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(s->ssl, host);
    if (mode == 1) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host)
                       : SSL_set1_host(s->ssl, host);
        if (ok != 1) return tls_fail(err, "setup", host);
    }
    if (SSL_connect(s->ssl) != 1) {
        long v = SSL_get_verify_result(s->ssl);
        if (mode == 1 && v != X509_V_OK) {
            ERR_clear_error();
            return bolt_err(err, BOLT_ETLS, "TLS certificate of %s rejected: %s", host,
                            X509_verify_cert_error_string(v));
        }
        return tls_fail(err, "handshake", host);
    }
    return BOLT_OK;
}

int bolt_sock_connect(const char *host, int port, int tls, const char *ca_file, int connect_ms,
                      int io_ms, int cancel_fd, bolt_sock **out, bolt_error *err) {
    *out = NULL;
    bolt_sock *s = calloc(1, sizeof *s);
    if (!s) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    s->fd = -1;
    s->io_ms = io_ms;
    s->cancel_fd = cancel_fd;
    int rc = tcp_connect(host, port, connect_ms, io_ms, cancel_fd, &s->fd, err);
    if (!rc && tls) rc = tls_setup(s, host, tls, ca_file, err);
    if (rc) {
        bolt_sock_close(s);
        return rc;
    }
    *out = s;
    return BOLT_OK;
}

/* Before each read and write: the socket ready, or a timeout / cancel error. */
static int wait_io(const bolt_sock *s, short events, bolt_error *err) {
    int e = wait_fd(s->fd, events, s->io_ms, s->cancel_fd);
    if (!e) return BOLT_OK;
    if (e == ECANCELED) return bolt_err(err, BOLT_ECANCELLED, "cancelled");
    if (e == ETIMEDOUT)
        return bolt_err(err, BOLT_ETIMEDOUT, "no %s within %d ms",
                        events == POLLIN ? "answer" : "progress writing", s->io_ms);
    return bolt_err(err, BOLT_EIO, "poll failed: %s", strerror(e));
}

/* Writes via OpenSSL (through nosigpipe_bio()). */
static int tls_write(bolt_sock *s, const uint8_t *p, size_t n, bolt_error *err) {
    int rc = BOLT_OK;
    while (n > 0) {
        int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
        if ((rc = wait_io(s, POLLOUT, err))) break;
        int w = SSL_write(s->ssl, p, chunk);
        if (w <= 0) {
            int e = errno;
            ERR_clear_error();
            rc = bolt_err(err, io_code(e), "TLS write failed: %s", strerror(e));
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    return rc;
}

int bolt_sock_write(bolt_sock *s, const uint8_t *p, size_t n, bolt_error *err) {
    if (s->ssl) return tls_write(s, p, n, err);
    while (n > 0) {
        int rc = wait_io(s, POLLOUT, err);
        if (rc) return rc;
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return bolt_err(err, io_code(errno), "write failed: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return BOLT_OK;
}

long bolt_sock_read(bolt_sock *s, uint8_t *p, size_t n, bolt_error *err) {
    for (;;) {
        if (!s->ssl || SSL_pending(s->ssl) == 0) {
            int rc = wait_io(s, POLLIN, err);
            if (rc) return -rc;
        }
        if (s->ssl) {
            int r = SSL_read(s->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
            if (r > 0) return r;
            int e = errno, kind = SSL_get_error(s->ssl, r);
            ERR_clear_error();
            if (kind == SSL_ERROR_ZERO_RETURN || (kind == SSL_ERROR_SYSCALL && e == 0))
                return -bolt_err(err, BOLT_EIO, "connection closed by server");
            return -bolt_err(err, io_code(e), "TLS read failed: %s", strerror(e));
        }
        ssize_t r = recv(s->fd, p, n, 0);
        if (r > 0) return (long)r;
        if (r == 0) return -bolt_err(err, BOLT_EIO, "connection closed by server");
        if (errno == EINTR) continue;
        return -bolt_err(err, io_code(errno), "read failed: %s", strerror(errno));
    }
}

void bolt_sock_close(bolt_sock *s) {
    if (!s) return;
    if (s->ssl) {
        SSL_shutdown(s->ssl);   /* best effort close_notify; the peer may be gone */
        SSL_free(s->ssl);
        ERR_clear_error();
    }
    SSL_CTX_free(s->ctx);
    if (s->fd >= 0) close(s->fd);
    free(s);
}
