/* valkey.h: one connection to Valkey (or Redis), as the worker needs it: connect and command
 * deadlines, TLS, AUTH, CLIENT SETNAME, and reconnection with a backoff.
 *
 * Why a room of its own: the idempotency cache (src/idem) and the Flipper flag source
 * (src/flags/flags_valkey.c) both talk to Valkey; everything about reaching the server lives
 * here once, and they keep only their commands. The wire protocol is hiredis's (1.2 with
 * hiredis_ssl, built by scripts/deps from Debian 13's source package: Debian 12's 0.14 has no
 * TLS); replies are hiredis's redisReply, freed by the caller with freeReplyObject().
 *
 *   struct valkey_options o;
 *   valkey_options_init(&o);
 *   o.host = ...; o.tls = true; o.tls_ca_file = ...; o.username = ...; o.password = ...;
 *   struct valkey *v = valkey_new(&o, err, sizeof err);      no network yet
 *   if (valkey_connect(v, err, sizeof err) == 0) {           connects, or keeps the connection
 *       redisReply *r = valkey_command(v, argc, argv, lens, err, sizeof err);
 *       ...                                                   NULL: connection lost, dropped
 *   }
 *
 * Connection state. valkey_connect() opens a connection when there is none: TCP connect
 * within connect_timeout_ms, every later read and write within command_timeout_ms (the TLS
 * handshake included), then TLS, AUTH and CLIENT SETNAME. When that fails, no new attempt is
 * made for reconnect_backoff_ms: valkey_connect() returns -1 at once with the reason of the
 * failed attempt, so an outage does not cost a timeout per call. An I/O failure on an open
 * connection (timeout, EOF, TLS error) drops it and the next valkey_connect() tries at once:
 * a connection the server closed (idle timeout, failover) is worth one immediate retry.
 *
 * TLS. Verification is always on: the server's chain against tls_ca_file (a PEM bundle) or
 * the system's CAs, and its name (tls_server_name, or host) against the certificate's
 * subjectAltName (DNS name, or IP address when the name is one). SNI carries the name unless
 * it is an IP address. tls_cert_file + tls_key_file, both or neither, present a client
 * certificate. The files are read by valkey_new(), so a bad file fails there, not later.
 *
 * AUTH. With a password: AUTH <username> <password> (a Valkey ACL user) or AUTH <password>
 * (the default user) when no username is given. No message of this room carries a password.
 *
 * SIGPIPE. hiredis and OpenSSL write with send(2)/write(2) without MSG_NOSIGNAL; every call
 * that can write blocks SIGPIPE in the calling thread for its duration and swallows one
 * raised meanwhile, so the room is safe whether or not the process ignores the signal.
 *
 * Threads: a handle is not thread-safe; one per thread. Nothing here logs.
 */
#ifndef CGW_VALKEY_H
#define CGW_VALKEY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct valkey_options {
    const char *host;               /* default "127.0.0.1" */
    int port;                       /* default 6379 */
    const char *username;           /* ACL user for AUTH; NULL or "": AUTH with the password only */
    const char *password;           /* NULL or "": no AUTH */
    bool tls;
    const char *tls_ca_file;        /* PEM CA bundle; NULL or "": the system's CAs */
    const char *tls_cert_file;      /* client certificate (PEM), with tls_key_file; NULL: none */
    const char *tls_key_file;       /* its private key (PEM, unencrypted) */
    const char *tls_server_name;    /* name verified and sent as SNI; NULL or "": host */
    long connect_timeout_ms;        /* default 500 */
    long command_timeout_ms;        /* default 500: one read or write, so one call may take more */
    long reconnect_backoff_ms;      /* default 5000; 0: every valkey_connect() may try */
    const char *client_name;        /* CLIENT SETNAME after connecting; NULL or "": none */
};

struct valkey_stats {
    uint64_t connects;              /* successful connects (1 + reconnects) */
    uint64_t connect_failures;      /* failed attempts: TCP, TLS, AUTH or CLIENT SETNAME */
    uint64_t skipped;               /* valkey_connect() refused at once during the backoff */
    uint64_t lost;                  /* open connections dropped after an I/O failure */
};

/* Fills the defaults above. */
void valkey_options_init(struct valkey_options *o);

struct valkey;

/* Copies the options and, with tls, reads the CA, certificate and key files into a TLS
 * context; does not connect. NULL with a message (naming the option and the file) on bad
 * options, an unreadable or invalid file, or no memory. */
struct valkey *valkey_new(const struct valkey_options *o, char *err, size_t errlen);
void valkey_free(struct valkey *v);

/* 0: connected (a connection was there, or one was opened now); -1: not, err says why (at
 * once, with the last attempt's reason, during the backoff). */
int valkey_connect(struct valkey *v, char *err, size_t errlen);
bool valkey_is_connected(const struct valkey *v);
/* Drops the connection (e.g. after half a pipeline); the next valkey_connect() tries at once. */
void valkey_disconnect(struct valkey *v);

/* One command (lens NULL: argv are C strings). The reply, error replies included; NULL when
 * not connected or on an I/O failure, which drops the connection (err says why). */
redisReply *valkey_command(struct valkey *v, int argc, const char **argv, const size_t *lens,
                           char *err, size_t errlen);
/* Pipelining: queue commands with valkey_append(), then read one reply per command with
 * valkey_read_reply() (the queue is written by the first read). Same failure rule. */
int valkey_append(struct valkey *v, int argc, const char **argv, const size_t *lens,
                  char *err, size_t errlen);
/* ncmd commands of argc arguments each at once: command i is argv[i * argc ...] with lens
 * alike (no NULL). The same as ncmd valkey_append() calls; the commands are written as RESP
 * into one buffer, where hiredis formats each into a string of its own (a mark per
 * persisted record made that 4 % of the worker's instructions, issue 14). */
int valkey_append_many(struct valkey *v, size_t ncmd, int argc, const char *const *argv,
                       const size_t *lens, char *err, size_t errlen);
redisReply *valkey_read_reply(struct valkey *v, char *err, size_t errlen);

/* "host:port", for messages. */
const char *valkey_endpoint(const struct valkey *v);
void valkey_get_stats(const struct valkey *v, struct valkey_stats *out);

#endif
