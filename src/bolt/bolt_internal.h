/* bolt_internal.h: declarations shared between the .c files of src/bolt/, never installed.
 *
 * Unit tests and the fuzz target include it too, to reach the framing layer and the
 * connection internals without a server. Nothing here is part of the public contract.
 */
#ifndef BOLT_INTERNAL_H
#define BOLT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "bolt/bolt.h"

/* ---- error.c */

/* Sets err (if not NULL) and returns code, so failures read `return bolt_err(err, ...)`. */
int bolt_err(bolt_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fills err from a FAILURE metadata map (code/neo4j_code, message, gql_status, ...). */
int bolt_err_from_failure(bolt_error *err, const bolt_value *meta);

/* ---- packstream.c: the encoder is also the library's growable byte buffer */

struct bolt_enc {
    uint8_t *p;
    size_t len, cap;
    int err;            /* sticky BOLT_ENOMEM */
    /* What the typed writers wrote, so that bolt_enc_complete can vouch for an encoding
     * without walking it again: owed[d] = values the container open at depth d still
     * expects, roots = values written at the top; untracked once anything was written that
     * this cannot follow (raw bytes, a container whose count comes later, nesting past
     * BOLT_MAX_DEPTH): then only a walk can tell. */
    uint32_t depth, roots;
    bool untracked;
    uint64_t owed[BOLT_MAX_DEPTH + 1];
};

/* 1 when the typed writers wrote exactly one complete value (every container's count met)
 * and nothing untracked or failed; 0 when that is not known (bolt_check_value decides). */
int bolt_enc_complete(const bolt_enc *e);

int bolt_enc_raw(bolt_enc *e, const void *p, size_t n);
void bolt_enc_init(bolt_enc *e);
void bolt_enc_release(bolt_enc *e);    /* frees the storage of an embedded bolt_enc */
int bolt_value_is_struct(const bolt_value *v, uint8_t tag, size_t nfields);
/* Moves field i out of a struct (leaving NULL there): records and metadata are handed on
 * without copying the tree. */
bolt_value *bolt_struct_steal(bolt_value *st, size_t i);
/* BOLT_OK when data[0..len) is exactly one complete PackStream value (no allocation). */
int bolt_check_value(const void *data, size_t len, bolt_error *err);

/* ---- chunk.c: message framing */

#define BOLT_CHUNK_MAX 65535
#define BOLT_DEFAULT_MAX_MESSAGE (1u << 30)

/* Append msg[0..len) to out as chunks of at most 65535 bytes plus the 00 00 end marker. */
int bolt_chunk_append(bolt_enc *out, const uint8_t *msg, size_t len);
/* The same in pieces: bolt_chunk_part appends one piece of a message as chunks (nothing for
 * len 0, since a zero-size chunk would end the message), bolt_chunk_end the end marker. A
 * message may be split into chunks anywhere, so the pieces need no copy into one buffer. */
int bolt_chunk_part(bolt_enc *out, const uint8_t *msg, size_t len);
int bolt_chunk_end(bolt_enc *out);

/* Incremental reader: bytes go in as they arrive, whole messages come out. */
typedef struct bolt_dechunker {
    bolt_enc msg;          /* bytes of the message being assembled */
    size_t max_message;
    size_t chunk_left;     /* bytes still due in the current chunk */
    uint8_t hdr[2];
    int hdr_have;
    int complete;          /* msg holds a complete message (cleared on the next feed) */
} bolt_dechunker;

void bolt_dechunker_init(bolt_dechunker *d, size_t max_message);
void bolt_dechunker_free(bolt_dechunker *d);
/* Consume bytes from data until a message is complete. Returns 1 when it is (msg/len set,
 * valid until the next call; *used says how much of data was eaten), 0 when all of data
 * was eaten without completing one, or -BOLT_ELIMIT when the message outgrows the cap. */
int bolt_dechunk(bolt_dechunker *d, const uint8_t *data, size_t n, size_t *used,
                 const uint8_t **msg, size_t *len);

/* ---- uri.c */

struct bolt_uri {
    char *host;                 /* without brackets for IPv6 */
    int port;
    int tls;                    /* 0, 1 (+s), 2 (+ssc) */
    int routing;
    size_t nparams;
    char **keys, **values;
    char address[300];          /* "host:port" as given ("[v6]:port") */
};

/* Split "host:port" / "[v6]:port" (port defaults to 7687). host is malloc'd. */
int bolt_split_address(const char *addr, char **host, int *port, bolt_error *err);

/* ---- net.c: a socket with optional TLS */

typedef struct bolt_sock bolt_sock;
/* cancel_fd: -1, or a descriptor that becomes readable to cancel every wait of the socket. */
int bolt_sock_connect(const char *host, int port, int tls, const char *ca_file,
                      int connect_timeout_ms, int io_timeout_ms, int cancel_fd, bolt_sock **out,
                      bolt_error *err);
int bolt_sock_write(bolt_sock *s, const uint8_t *p, size_t n, bolt_error *err);
/* Reads at least 1 byte; returns bytes read (> 0) or -code. */
long bolt_sock_read(bolt_sock *s, uint8_t *p, size_t n, bolt_error *err);
void bolt_sock_close(bolt_sock *s);

/* ---- conn.c internals used by the driver */

/* Owned copy of what a connection needs from bolt_config (the credential included). */
typedef struct bolt_settings {
    bolt_config cfg;            /* its strings point into the fields below */
    char *user_agent, *auth_scheme, *principal, *credentials, *default_db, *ca_file;
    int cancel_fd;              /* the driver's cancel eventfd; -1 outside a driver */
} bolt_settings;

int bolt_settings_init(bolt_settings *s, const bolt_config *cfg);
void bolt_settings_free(bolt_settings *s);

/* Connect to one server: address "host:port", tls mode, routing context (NULL = none). */
int bolt_conn_open(const bolt_settings *s, const char *address, int tls,
                   const bolt_uri *routing_ctx, bolt_conn **out, bolt_error *err);
/* ROUTE for db; fills *rt with the "rt" map (caller frees). */
int bolt_conn_route(bolt_conn *c, const bolt_uri *routing_ctx, const char *db,
                    const char *const *bookmarks, size_t nbookmarks, bolt_value **rt,
                    bolt_error *err);
/* Pool bookkeeping stored on the connection. */
void bolt_conn_set_idle_since(bolt_conn *c, int64_t ms);
int64_t bolt_conn_idle_since(const bolt_conn *c);
void *bolt_conn_pool_tag(const bolt_conn *c);
void bolt_conn_set_pool_tag(bolt_conn *c, void *tag);
int bolt_conn_in_tx(const bolt_conn *c);

int64_t bolt_now_ms(void);    /* monotonic */

#endif
