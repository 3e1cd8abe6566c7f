/* bolt_tls_test.c: bolt+s / bolt+ssc against the local Neo4j through a TLS terminator.
 *
 * The local Neo4j speaks plaintext Bolt, so the test runs its own small TLS proxy in a
 * thread: a self-signed certificate for "localhost" made at start-up, TLS on an ephemeral
 * port, bytes relayed to 127.0.0.1:7687. That exercises the real client TLS path (SNI,
 * CA + hostname verification for +s, none for +ssc) with the real server behind it.
 * With px.hangup set the proxy closes each connection right after the handshake: writing
 * to it must be an error, not a SIGPIPE (this binary keeps the signal's default action).
 */
#define TEST_MAIN
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bolt/bolt.h"
#include "bolt/bolt_internal.h"
#include "bolt_test_util.h"

typedef struct proxy {
    int lfd, port;
    volatile int hangup;        /* close right after the handshake */
    SSL_CTX *ctx;
    pthread_t thread;
    char ca_path[64];
} proxy;

static proxy px;

static int upstream(void) {
    const char *p = getenv("NEO4J_BOLT_PORT");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(p && *p ? atoi(p) : 7687)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Relays until either side closes. */
static void relay(SSL *ssl, int cfd, int ufd) {
    char buf[16384];
    for (;;) {
        struct pollfd p[2] = {{cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
        if (!SSL_pending(ssl) && poll(p, 2, 30000) <= 0) return;
        if (SSL_pending(ssl) || (p[0].revents & (POLLIN | POLLHUP))) {
            int n = SSL_read(ssl, buf, sizeof buf);
            if (n <= 0 || write(ufd, buf, (size_t)n) != n) return;
        }
        if (p[1].revents & (POLLIN | POLLHUP)) {
            ssize_t n = read(ufd, buf, sizeof buf);
            if (n <= 0 || SSL_write(ssl, buf, (int)n) != n) return;
        }
    }
}

static void *proxy_main(void *arg) {
    (void)arg;
    for (;;) {
        int cfd = accept(px.lfd, NULL, NULL);
        if (cfd < 0) {
            OPENSSL_thread_stop();   /* this thread's error queue and DRBG */
            return NULL;
        }
        SSL *ssl = SSL_new(px.ctx);
        SSL_set_fd(ssl, cfd);
        if (SSL_accept(ssl) == 1) {
            int ufd = px.hangup ? -1 : upstream();
            if (ufd >= 0) {
                relay(ssl, cfd, ufd);
                close(ufd);
            }
            SSL_shutdown(ssl);
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(cfd);
    }
}

static X509 *self_signed(EVP_PKEY *key) {
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    const char *exts[][2] = {{"subjectAltName", "DNS:localhost"},
                             {"basicConstraints", "critical,CA:TRUE"}};
    for (size_t i = 0; i < 2; i++) {
        X509_EXTENSION *e = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, key, EVP_sha256());
    return x;
}

/* Certificate, CA file, listening socket, thread: done once for the whole binary. */
static void proxy_start(void) {
    if (px.ctx) return;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = self_signed(key);
    snprintf(px.ca_path, sizeof px.ca_path, "/tmp/bolt_tls_test_%d.pem", (int)getpid());
    FILE *f = fopen(px.ca_path, "w");
    PEM_write_X509(f, cert);
    fclose(f);
    px.ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(px.ctx, cert);
    SSL_CTX_use_PrivateKey(px.ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    px.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bind(px.lfd, (struct sockaddr *)&a, sizeof a);
    socklen_t len = sizeof a;
    getsockname(px.lfd, (struct sockaddr *)&a, &len);
    px.port = ntohs(a.sin_port);
    listen(px.lfd, 8);
    pthread_create(&px.thread, NULL, proxy_main, NULL);
}

/* Run as the last case, not from a destructor: OpenSSL's own atexit cleanup runs before
 * destructors and the proxy thread's OpenSSL state would be reported as leaked. */
static void proxy_stop(void) {
    if (!px.ctx) return;
    shutdown(px.lfd, SHUT_RDWR);
    close(px.lfd);
    pthread_join(px.thread, NULL);
    SSL_CTX_free(px.ctx);
    unlink(px.ca_path);
    memset(&px, 0, sizeof px);
}

static int try_connect(const char *scheme, const char *host, int port, const char *ca,
                       bolt_error *err) {
    char uri[128];
    snprintf(uri, sizeof uri, "%s://%s:%d", scheme, host, port);
    bolt_config cfg;
    bt_config(&cfg);
    cfg.ca_file = ca;
    bolt_conn *c = NULL;
    int rc = bolt_connect(uri, &cfg, &c, err);
    if (rc) return rc;
    rc = bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, err);
    bolt_conn_close(c);
    return rc;
}

TEST(ssc_accepts_self_signed) {
    proxy_start();
    bolt_error err;
    OK(try_connect("bolt+ssc", "127.0.0.1", px.port, NULL, &err));
    OK(try_connect("neo4j+ssc", "localhost", px.port, NULL, &err));
}

TEST(s_verifies_against_ca_and_hostname) {
    proxy_start();
    bolt_error err;
    OK(try_connect("bolt+s", "localhost", px.port, px.ca_path, &err));
}

TEST(s_rejects_untrusted_certificate) {
    proxy_start();
    bolt_error err;
    CHECK_EQ_INT(try_connect("bolt+s", "localhost", px.port, NULL, &err), BOLT_ETLS);
    CHECK(strstr(err.message, "certificate") != NULL);
}

TEST(s_rejects_wrong_hostname) {
    proxy_start();
    bolt_error err;
    /* The certificate names localhost only; 127.0.0.1 is not in it. */
    CHECK_EQ_INT(try_connect("bolt+s", "127.0.0.1", px.port, px.ca_path, &err), BOLT_ETLS);
}

TEST(tls_to_plaintext_port_fails_cleanly) {
    /* Neo4j's HTTP port: plaintext only (its Bolt port accepts TLS, see the stack). */
    bolt_error err;
    const char *p = getenv("NEO4J_HTTP_PORT");
    int port = p && *p ? atoi(p) : 7474;
    int rc = try_connect("bolt+ssc", "127.0.0.1", port, NULL, &err);
    CHECKF(rc == BOLT_ETLS || rc == BOLT_EIO, "%s: %s", bolt_code_name(rc), err.message);
}

TEST(tls_write_to_a_closed_peer_is_an_error_not_sigpipe) {
    proxy_start();
    px.hangup = 1;
    bolt_sock *s = NULL;
    bolt_error err;
    OK(bolt_sock_connect("127.0.0.1", px.port, 2, NULL, 5000, 5000, -1, &s, &err));
    static uint8_t buf[65536];
    /* The first failed write usually reports the peer's reset (ECONNRESET); the next ones
     * write to a closed connection (EPIPE), which is what raises SIGPIPE. */
    int failures = 0, rc = BOLT_OK;
    for (int i = 0; i < 200 && failures < 3; i++) {
        rc = bolt_sock_write(s, buf, sizeof buf, &err);
        if (rc != BOLT_OK) failures++;
        else usleep(10000);                         /* until the peer's close arrives */
    }
    CHECKF(rc == BOLT_EIO, "%s: %s", bolt_code_name(rc), err.message);
    bolt_sock_close(s);                             /* close_notify to a closed peer, too */
    px.hangup = 0;
}

TEST(stop_proxy) {
    proxy_stop();
}
