/* valkey_internal.h: what valkey.c (connection, AUTH, backoff) and valkey_tls.c (OpenSSL
 * context and per-connection TLS) share. Not part of the room's interface. */
#ifndef CGW_VALKEY_INTERNAL_H
#define CGW_VALKEY_INTERNAL_H

#include "valkey/valkey.h"

#include <openssl/ssl.h>

/* A client TLS context from the options' CA, certificate and key files: peer verification
 * on, TLS 1.2 at least. NULL with a message naming the option and the file. */
SSL_CTX *valkey_tls_context(const struct valkey_options *o, char *err, size_t errlen);

/* TLS on the connected c, verifying `name` (DNS name or IP address; SNI for a DNS name).
 * 0, or -1 with a message that says why the handshake or the verification failed. */
int valkey_tls_start(redisContext *c, SSL_CTX *ctx, const char *name, char *err, size_t errlen);

#endif
