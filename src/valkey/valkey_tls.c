/* valkey_tls.c: TLS for the Valkey connection, with OpenSSL directly under hiredis_ssl.
 *
 * Why not hiredis's own redisCreateSSLContext(): it sends SNI but never checks the server's
 * name against its certificate (any certificate the CA signed would do), and it cannot say
 * which file was wrong. So the context is built here (CA bundle or the system's CAs, optional
 * client certificate, verification on, TLS >= 1.2), each connection gets an SSL object with the
 * expected name set (SSL_set1_host, or the IP address), and hiredis runs the handshake and the
 * I/O on it through redisInitiateSSL(), which takes the SSL object over on success.
 *
 * Messages name the option and file ("tls_ca_file /x/ca.pem: ...") and, for a failed handshake,
 * the verification result ("certificate verify failed: hostname mismatch").
 */
#include "valkey/valkey_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The last OpenSSL error as text, or `fallback`; clears the error queue. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback) {
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, buf, len);
    else snprintf(buf, len, "%s", fallback);
    ERR_clear_error();
    return buf;
}

/* An encrypted key is an error, never a prompt on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* A file option: readable, then loaded by `load`; a message naming both on failure. */
static int load_file(SSL_CTX *ctx, const char *what, const char *path,
                     int (*load)(SSL_CTX *, const char *), char *err, size_t errlen) {
    char why[256];
    if (access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s %s: cannot read: %s", what, path, strerror(errno));
        return -1;
    }
    if (load(ctx, path) != 1) {
        snprintf(err, errlen, "%s %s: %s", what, path, ssl_reason(why, sizeof why, "not usable"));
        return -1;
    }
    return 0;
}

static int load_ca(SSL_CTX *ctx, const char *path) {
    return SSL_CTX_load_verify_locations(ctx, path, NULL);
}

static int load_key(SSL_CTX *ctx, const char *path) {
    return SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM);
}

static int load_client_pair(SSL_CTX *ctx, const struct valkey_options *o, char *err, size_t errlen) {
    if (!o->tls_cert_file != !o->tls_key_file) {
        snprintf(err, errlen, "tls_cert_file and tls_key_file go together");
        return -1;
    }
    if (!o->tls_cert_file) return 0;
    if (load_file(ctx, "tls_cert_file", o->tls_cert_file, SSL_CTX_use_certificate_chain_file,
                  err, errlen) < 0 ||
        load_file(ctx, "tls_key_file", o->tls_key_file, load_key, err, errlen) < 0)
        return -1;
    if (SSL_CTX_check_private_key(ctx) != 1) {
        char why[256];
        snprintf(err, errlen, "tls_key_file %s does not match tls_cert_file %s: %s", o->tls_key_file,
                 o->tls_cert_file, ssl_reason(why, sizeof why, "mismatch"));
        return -1;
    }
    return 0;
}

SSL_CTX *valkey_tls_context(const struct valkey_options *o, char *err, size_t errlen) {
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", ssl_reason(why, sizeof why, "cannot make a context"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    int rc = o->tls_ca_file ? load_file(ctx, "tls_ca_file", o->tls_ca_file, load_ca, err, errlen)
                            : (SSL_CTX_set_default_verify_paths(ctx) == 1 ? 0 : -1);
    if (rc < 0 && !o->tls_ca_file)
        snprintf(err, errlen, "TLS: cannot load the system's CAs: %s",
                 ssl_reason(why, sizeof why, "unknown error"));
    if (rc == 0) rc = load_client_pair(ctx, o, err, errlen);
    if (rc < 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static bool is_ip_address(const char *name) {
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* The name the certificate must carry; SNI too unless it is an address (RFC 6066). */
static int expect_name(SSL *ssl, const char *name) {
    if (is_ip_address(name))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
    if (SSL_set_tlsext_host_name(ssl, name) != 1) return -1;
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(ssl, name) == 1 ? 0 : -1;
}

int valkey_tls_start(redisContext *c, SSL_CTX *ctx, const char *name, char *err, size_t errlen) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl || expect_name(ssl, name) < 0) {
        char why[256];
        snprintf(err, errlen, "TLS set-up for %s: %s", name, ssl_reason(why, sizeof why, "failed"));
        SSL_free(ssl);
        return -1;
    }
    ERR_clear_error();
    if (redisInitiateSSL(c, ssl) == REDIS_OK) return 0;     /* hiredis owns ssl now */
    long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK)
        snprintf(err, errlen, "TLS handshake: certificate verify failed: %s (expected name %s)",
                 X509_verify_cert_error_string(verify), name);
    else
        snprintf(err, errlen, "TLS handshake: %s", c->errstr[0] ? c->errstr : "failed");
    SSL_free(ssl);
    ERR_clear_error();
    return -1;
}
