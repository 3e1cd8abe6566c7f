/* bolt.h: a small client library for Neo4j's Bolt protocol (Bolt 5.0-5.8 and 4.4).
 *
 * This is the only public header of src/bolt/. The library depends on libc, OpenSSL and
 * pthreads only, so it can be lifted out of the worker as it is. Layers, bottom up:
 *
 *   values      bolt_value: a tree of PackStream values (null, bool, int, float, bytes,
 *               string, list, map, structure). Decoded records are made of these.
 *   encoder     bolt_enc: a growable buffer that PackStream-encodes values as they are
 *               written, without building a tree. Use it for big parameter lists (UNWIND
 *               $rows): it costs one byte buffer instead of one allocation per value.
 *   connection  bolt_conn: one TCP (or TLS) connection, handshake, HELLO/LOGON, queries,
 *               explicit transactions, pipelining. Not thread-safe: one thread at a time.
 *   driver      bolt_driver: connection pools (thread-safe), routing for neo4j:// URIs and
 *               transaction functions retried on transient errors.
 *
 * Conventions:
 *   - Every function that can fail returns an int: BOLT_OK (0) or a bolt_code, and fills
 *     the caller's bolt_error (which may be NULL) with the code and a message. Nothing in the
 *     library exits or aborts, and no message ever contains a credential.
 *   - "new"/constructor functions return owned objects, freed with the matching free.
 *     Functions that attach a value to a list/map/struct take ownership of it even when they
 *     fail, so `bolt_map_set(m, "k", bolt_int(1))` never leaks (a NULL value means ENOMEM).
 *   - const pointers returned by accessors are borrowed from their owner.
 */
#ifndef BOLT_H
#define BOLT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

typedef enum bolt_code {
    BOLT_OK = 0,
    BOLT_ENOMEM,          /* allocation failed */
    BOLT_EINVAL,          /* bad argument (malformed URI, wrong value type, ...) */
    BOLT_ETYPE,           /* accessor used on a value of another type or shape */
    BOLT_ECONNECT,        /* could not reach the server (refused, unresolvable, timeout) */
    BOLT_EIO,             /* the connection broke: read/write error, EOF */
    BOLT_ETIMEDOUT,       /* a read or write timed out; the connection is defunct */
    BOLT_ETLS,            /* TLS handshake or certificate verification failed */
    BOLT_EPROTO,          /* the peer violated the protocol (bad bytes, unexpected message) */
    BOLT_EVERSION,        /* no common protocol version (or not a Bolt port) */
    BOLT_EAUTH,           /* authentication rejected; never retried */
    BOLT_ESERVER,         /* the server answered FAILURE; see neo4j_code/gql_status */
    BOLT_EIGNORED,        /* the server ignored the request after an earlier failure */
    BOLT_EDEFUNCT,        /* the connection is unusable (closed after an earlier error) */
    BOLT_ESTATE,          /* call not valid in the connection's state (e.g. commit without tx) */
    BOLT_EROUTING,        /* no routing table, or no server for the requested role */
    BOLT_EPOOL,           /* timed out waiting for a pooled connection */
    BOLT_ECOMMIT_UNKNOWN, /* the connection broke during COMMIT: outcome unknown */
    BOLT_ECALLBACK,       /* a user callback returned an error */
    BOLT_ELIMIT,          /* a size limit was exceeded (message, nesting, string) */
    BOLT_ECANCELLED,      /* bolt_driver_cancel was called; never retried */
    BOLT_CODE_COUNT_
} bolt_code;

#define BOLT_ERRMSG_MAX 512

/* Filled by failing calls. Fixed-size so it can live on the stack without ownership rules. */
typedef struct bolt_error {
    int code;                 /* bolt_code */
    int retryable;            /* worth retrying the whole transaction (docs/bolt.md §7) */
    char neo4j_code[96];      /* "Neo.TransientError.Transaction.DeadlockDetected", or "" */
    char gql_status[8];       /* "50N05" when the server sent one (Bolt 5.7+), or "" */
    char classification[24];  /* "TRANSIENT_ERROR"/"CLIENT_ERROR"/"DATABASE_ERROR", or "" */
    char message[BOLT_ERRMSG_MAX];
} bolt_error;

void bolt_error_clear(bolt_error *err);
/* "BOLT_EIO" etc.; never NULL. */
const char *bolt_code_name(int code);
/* Whether a Neo4j status code (e.g. "Neo.TransientError.Transaction.DeadlockDetected") is
 * retryable by the rules of docs/bolt.md §7; classification may be NULL or "". */
int bolt_neo4j_code_retryable(const char *neo4j_code, const char *classification);

/* ---------------------------------------------------------------- values */

typedef enum bolt_type {
    BOLT_NULL, BOLT_BOOL, BOLT_INT, BOLT_FLOAT, BOLT_BYTES, BOLT_STRING,
    BOLT_LIST, BOLT_MAP, BOLT_STRUCT
} bolt_type;

/* Structure tags of graph, temporal and spatial values. */
enum {
    BOLT_TAG_NODE = 0x4E, BOLT_TAG_RELATIONSHIP = 0x52, BOLT_TAG_UNBOUND_REL = 0x72,
    BOLT_TAG_PATH = 0x50, BOLT_TAG_DATE = 0x44, BOLT_TAG_TIME = 0x54,
    BOLT_TAG_LOCAL_TIME = 0x74, BOLT_TAG_DATETIME = 0x49, BOLT_TAG_DATETIME_ZONE_ID = 0x69,
    BOLT_TAG_LOCAL_DATETIME = 0x64, BOLT_TAG_DURATION = 0x45, BOLT_TAG_POINT2D = 0x58,
    BOLT_TAG_POINT3D = 0x59, BOLT_TAG_LEGACY_DATETIME = 0x46,
    BOLT_TAG_LEGACY_DATETIME_ZONE_ID = 0x66
};

typedef struct bolt_value bolt_value;

/* Constructors: NULL only when out of memory. */
bolt_value *bolt_null(void);
bolt_value *bolt_bool(int b);
bolt_value *bolt_int(int64_t i);
bolt_value *bolt_float(double f);
bolt_value *bolt_string(const char *s);              /* NUL-terminated UTF-8 */
bolt_value *bolt_string_n(const char *s, size_t n);
bolt_value *bolt_bytes(const void *p, size_t n);
bolt_value *bolt_list(void);
bolt_value *bolt_map(void);
bolt_value *bolt_struct(uint8_t tag);                /* tag 0..127; fields appended */
bolt_value *bolt_value_copy(const bolt_value *v);
void bolt_value_free(bolt_value *v);

/* Builders (take ownership of item/value, even on failure). bolt_map_set replaces an
 * existing key (linear search: for big maps use bolt_enc). */
int bolt_list_append(bolt_value *list, bolt_value *item);
int bolt_map_set(bolt_value *map, const char *key, bolt_value *value);
int bolt_struct_append(bolt_value *st, bolt_value *field);

/* Accessors. Scalars return 0/0.0/NULL on type mismatch; check bolt_value_type first. */
bolt_type bolt_value_type(const bolt_value *v);
int bolt_value_is_null(const bolt_value *v);     /* also true for a NULL pointer */
int bolt_value_bool(const bolt_value *v);
int64_t bolt_value_int(const bolt_value *v);
double bolt_value_float(const bolt_value *v);
/* String and bytes contents; *len may be NULL. Strings are NUL-terminated too. */
const char *bolt_value_string(const bolt_value *v, size_t *len);
const uint8_t *bolt_value_bytes(const bolt_value *v, size_t *len);
/* Item count of a list/map/struct, byte count of string/bytes, else 0. */
size_t bolt_value_size(const bolt_value *v);
const bolt_value *bolt_list_get(const bolt_value *list, size_t i);
/* Map lookup: the last entry with that key wins (PackStream's rule for duplicates). */
const bolt_value *bolt_map_get(const bolt_value *map, const char *key);
const char *bolt_map_key_at(const bolt_value *map, size_t i, size_t *len);
const bolt_value *bolt_map_value_at(const bolt_value *map, size_t i);
uint8_t bolt_struct_tag(const bolt_value *st);
const bolt_value *bolt_struct_field(const bolt_value *st, size_t i);
/* Deep equality (floats compare bit patterns, so NaN == NaN and -0.0 != 0.0). */
int bolt_value_equal(const bolt_value *a, const bolt_value *b);
/* Debug rendering into buf (always NUL-terminated); returns the length it wanted. */
size_t bolt_value_format(const bolt_value *v, char *buf, size_t size);

/* Typed views of structures. Each returns BOLT_OK or BOLT_ETYPE when v is not that struct
 * or its fields have the wrong types. Pointers borrow from v. */
typedef struct bolt_node {
    int64_t id;
    const bolt_value *labels;       /* list of strings */
    const bolt_value *properties;   /* map */
    const char *element_id;         /* NULL before Bolt 5.0 */
} bolt_node;

typedef struct bolt_relationship {
    int64_t id, start_id, end_id;   /* start/end are -1 for an unbound relationship */
    const char *type;
    const bolt_value *properties;
    const char *element_id, *start_element_id, *end_element_id;   /* NULL if absent */
} bolt_relationship;

typedef struct bolt_path {
    const bolt_value *nodes;        /* list of Node */
    const bolt_value *rels;         /* list of UnboundRelationship */
    const bolt_value *indices;      /* list of int */
} bolt_path;

typedef struct bolt_temporal {
    uint8_t tag;              /* which BOLT_TAG_* it came from */
    int64_t days;             /* Date */
    int64_t seconds;          /* DateTime*: UTC epoch seconds; LocalDateTime: local seconds */
    int64_t nanoseconds;      /* within the second (or since midnight for (Local)Time) */
    int64_t tz_offset_seconds;
    int has_offset;           /* Time, DateTime, legacy DateTime */
    const char *tz_id;        /* DateTimeZoneId, else NULL */
    int legacy_local;         /* legacy 0x66: seconds are local wall time, not UTC */
} bolt_temporal;

typedef struct bolt_duration {
    int64_t months, days, seconds, nanoseconds;
} bolt_duration;

typedef struct bolt_point {
    int64_t srid;
    int dims;                 /* 2 or 3 */
    double x, y, z;
} bolt_point;

int bolt_value_as_node(const bolt_value *v, bolt_node *out);
/* Accepts Relationship and UnboundRelationship. */
int bolt_value_as_relationship(const bolt_value *v, bolt_relationship *out);
int bolt_value_as_path(const bolt_value *v, bolt_path *out);
/* Date, Time, LocalTime, DateTime, DateTimeZoneId, LocalDateTime and legacy 0x46/0x66.
 * Legacy 0x46 is converted to UTC seconds (it carries the offset). */
int bolt_value_as_temporal(const bolt_value *v, bolt_temporal *out);
int bolt_value_as_duration(const bolt_value *v, bolt_duration *out);
int bolt_value_as_point(const bolt_value *v, bolt_point *out);

/* Temporal/spatial constructors for parameters (Bolt 5 tags). */
bolt_value *bolt_date_new(int64_t days);
bolt_value *bolt_time_new(int64_t nanos, int64_t tz_offset_seconds);
bolt_value *bolt_local_time_new(int64_t nanos);
bolt_value *bolt_datetime_new(int64_t utc_seconds, int64_t nanos, int64_t tz_offset_seconds);
bolt_value *bolt_datetime_zone_new(int64_t utc_seconds, int64_t nanos, const char *tz_id);
bolt_value *bolt_local_datetime_new(int64_t seconds, int64_t nanos);
bolt_value *bolt_duration_new(int64_t months, int64_t days, int64_t seconds, int64_t nanos);
bolt_value *bolt_point2d_new(int64_t srid, double x, double y);
bolt_value *bolt_point3d_new(int64_t srid, double x, double y, double z);

/* ---------------------------------------------------------------- PackStream encoder */

typedef struct bolt_enc bolt_enc;

bolt_enc *bolt_enc_new(void);
void bolt_enc_free(bolt_enc *e);
void bolt_enc_reset(bolt_enc *e);             /* keeps the allocation */
/* Room for extra more bytes in one allocation (an encoding whose size is known roughly grows
 * without reallocations); BOLT_OK, or BOLT_ENOMEM (sticky, like every writer's). */
int bolt_enc_reserve(bolt_enc *e, size_t extra);
/* Writers pick the smallest encoding. Errors are sticky: after ENOMEM every later call
 * returns it too, so a caller may check only the last return or bolt_enc_error(). */
int bolt_enc_null(bolt_enc *e);
int bolt_enc_bool(bolt_enc *e, int b);
int bolt_enc_int(bolt_enc *e, int64_t i);
int bolt_enc_float(bolt_enc *e, double f);
int bolt_enc_string_n(bolt_enc *e, const char *s, size_t n);
/* NULL writes a null. Inline so that a literal key's length is known at compile time. */
static inline int bolt_enc_string(bolt_enc *e, const char *s) {
    return s ? bolt_enc_string_n(e, s, strlen(s)) : bolt_enc_null(e);
}
int bolt_enc_bytes(bolt_enc *e, const void *p, size_t n);
/* Headers: exactly n items (map: n key/value pairs, keys written with bolt_enc_string). */
int bolt_enc_list_begin(bolt_enc *e, size_t n);
int bolt_enc_map_begin(bolt_enc *e, size_t n);
int bolt_enc_struct_begin(bolt_enc *e, uint8_t tag, size_t nfields);
/* Open-ended list/map when the count is only known at the end: start reserves a 32-bit
 * header and returns a mark; finish patches the count in. */
size_t bolt_enc_list_start(bolt_enc *e);
size_t bolt_enc_map_start(bolt_enc *e);
int bolt_enc_finish(bolt_enc *e, size_t mark, size_t count);
int bolt_enc_value(bolt_enc *e, const bolt_value *v);
int bolt_enc_error(const bolt_enc *e);
const uint8_t *bolt_enc_data(const bolt_enc *e);
size_t bolt_enc_size(const bolt_enc *e);

/* ---------------------------------------------------------------- PackStream decoder */

#define BOLT_MAX_DEPTH 64

/* Decode one value from data[0..len). *used (may be NULL) gets the bytes consumed.
 * Strict: reserved markers, truncated data, invalid UTF-8, non-string map keys, struct
 * tags > 127 and nesting deeper than BOLT_MAX_DEPTH are BOLT_EPROTO. */
int bolt_unpack(const void *data, size_t len, bolt_value **out, size_t *used, bolt_error *err);

/* ---------------------------------------------------------------- configuration */

typedef struct bolt_config {
    const char *user_agent;        /* default "cgw-bolt/0.1" */
    const char *auth_scheme;       /* "basic" (default when principal set) or "none" */
    const char *principal;
    const char *credentials;       /* copied by bolt_driver_new/bolt_connect, never logged */
    const char *default_db;        /* sent with every BEGIN/RUN; default "neo4j" */
    const char *ca_file;           /* extra CA bundle for +s (NULL: system store) */
    int connect_timeout_ms;        /* default 5000 */
    int io_timeout_ms;             /* per read/write; 0 = none (default). Past it the
                                    * connection is defunct; it also bounds unacknowledged
                                    * sent data (TCP_USER_TIMEOUT). TCP keepalive probes idle
                                    * connections after 30 s, every 5 s, 3 times. */
    int64_t fetch_size;            /* PULL n; default 1000; -1 = all */
    int notifications_off;         /* default 1: notifications_minimum_severity "OFF" (5.2+) */
    int max_version;               /* highest Bolt version proposed, major*256+minor: 0x0508
                                    * (default) down to 0x0500, or 0x0404 for 4.4 only */
    /* driver only */
    int max_pool_size;             /* per server; default 16 */
    int acquire_timeout_ms;        /* wait for a pooled connection; default 60000 */
    int liveness_check_ms;         /* RESET idle connections older than this; default 30000; <0 off */
    int max_retry_time_ms;         /* transaction functions; default 30000 */
    int retry_initial_delay_ms;    /* default 1000; doubled with +-20% jitter */
    int retry_unknown_commit;      /* retry when COMMIT's outcome is unknown (idempotent work) */
} bolt_config;

/* Fill with defaults; then set what you need. */
void bolt_config_init(bolt_config *cfg);

/* Parsed form of a bolt://, bolt+s://, bolt+ssc://, neo4j://, neo4j+s://, neo4j+ssc:// URI. */
typedef struct bolt_uri bolt_uri;
int bolt_uri_parse(const char *uri, bolt_uri **out, bolt_error *err);
void bolt_uri_free(bolt_uri *u);
const char *bolt_uri_host(const bolt_uri *u);
int bolt_uri_port(const bolt_uri *u);
int bolt_uri_tls(const bolt_uri *u);          /* 0 none, 1 verified (+s), 2 self-signed (+ssc) */
int bolt_uri_routing(const bolt_uri *u);      /* neo4j* schemes */
/* Routing context: query parameters, in order. */
size_t bolt_uri_param_count(const bolt_uri *u);
const char *bolt_uri_param_key(const bolt_uri *u, size_t i);
const char *bolt_uri_param_value(const bolt_uri *u, size_t i);

/* ---------------------------------------------------------------- connection */

typedef struct bolt_conn bolt_conn;
typedef struct bolt_result bolt_result;

typedef enum bolt_state {
    BOLT_STATE_READY, BOLT_STATE_STREAMING, BOLT_STATE_TX, BOLT_STATE_FAILED,
    BOLT_STATE_DEFUNCT
} bolt_state;

/* Per-transaction (or auto-commit query) options; NULL means all defaults. */
typedef struct bolt_tx_opts {
    const char *db;                      /* NULL: config default_db */
    int read_only;                       /* mode "r" */
    const char *const *bookmarks;
    size_t nbookmarks;
    int64_t tx_timeout_ms;               /* 0: server default */
    const bolt_value *tx_metadata;       /* map or NULL */
    const char *imp_user;
} bolt_tx_opts;

typedef struct bolt_counters {
    int64_t nodes_created, nodes_deleted, relationships_created, relationships_deleted,
        properties_set, labels_added, labels_removed, indexes_added, indexes_removed,
        constraints_added, constraints_removed, system_updates;
    int contains_updates, contains_system_updates;
} bolt_counters;

typedef struct bolt_summary {
    bolt_counters counters;
    char type[4];                /* "r", "w", "rw", "s" or "" */
    char db[64];
    int64_t t_first, t_last;     /* ms; -1 when not sent */
    char bookmark[256];          /* auto-commit/commit bookmark, or "" */
    int attempts;                /* bolt_session_*: transaction attempts, set on failure too */
    int deadlocks;               /* of the failed attempts, those ended by DeadlockDetected */
} bolt_summary;

/* Connect directly to the URI's host (neo4j:// still sends its routing context in HELLO).
 * Performs TCP, TLS, handshake, HELLO and LOGON. cfg may be NULL (defaults, no auth). */
int bolt_connect(const char *uri, const bolt_config *cfg, bolt_conn **out, bolt_error *err);
/* Sends GOODBYE when possible, closes and frees. */
void bolt_conn_close(bolt_conn *c);

bolt_state bolt_conn_state(const bolt_conn *c);
int bolt_conn_is_defunct(const bolt_conn *c);
int bolt_conn_version(const bolt_conn *c);          /* major*256 + minor, e.g. 0x0508 */
const char *bolt_conn_server_agent(const bolt_conn *c);
const char *bolt_conn_id(const bolt_conn *c);
const char *bolt_conn_address(const bolt_conn *c);  /* "host:port" */
const char *bolt_conn_last_bookmark(const bolt_conn *c);  /* "" if none */
/* Number of IGNORED responses seen so far (diagnostics and tests). */
uint64_t bolt_conn_ignored_count(const bolt_conn *c);

/* RESET: back to READY from FAILED/streaming/tx (rolls back an open transaction). A RESET
 * that fails makes the connection defunct. */
int bolt_reset(bolt_conn *c, bolt_error *err);

/* Streaming queries. bolt_run sends RUN + PULL{fetch_size} in one write and returns once
 * the field names are known; records are then read with bolt_result_next, which sends more
 * PULLs as needed. Inside bolt_begin..commit the query joins the transaction and opts are
 * ignored. A connection has at most one open result: starting another query first
 * discards the rest of the previous one. params is a map or NULL; bolt_run_enc takes a
 * map already encoded with bolt_enc (must hold exactly one map). */
int bolt_run(bolt_conn *c, const char *query, const bolt_value *params,
             const bolt_tx_opts *opts, bolt_result **out, bolt_error *err);
int bolt_run_enc(bolt_conn *c, const char *query, const bolt_enc *params,
                 const bolt_tx_opts *opts, bolt_result **out, bolt_error *err);
/* *record = next row (a list, borrowed until the next call), or NULL at the end. */
int bolt_result_next(bolt_result *r, const bolt_value **record, bolt_error *err);
size_t bolt_result_field_count(const bolt_result *r);
const char *bolt_result_field(const bolt_result *r, size_t i);
/* Discards what is left (DISCARD) so the summary is known. */
int bolt_result_consume(bolt_result *r, bolt_error *err);
/* The summary once the stream has ended (after next returned NULL or consume), else NULL. */
const bolt_summary *bolt_result_summary(const bolt_result *r);
/* Raw metadata of the final SUCCESS (map), or NULL. */
const bolt_value *bolt_result_metadata(const bolt_result *r);
/* Frees; an unfinished stream is discarded first (best effort). */
void bolt_result_free(bolt_result *r);

/* Callback form: cb gets each record (return non-zero to stop: the rest is discarded and
 * BOLT_ECALLBACK returned). cb NULL means DISCARD all. summary may be NULL. */
typedef int (*bolt_record_cb)(void *ud, const bolt_value *record);
int bolt_query(bolt_conn *c, const char *query, const bolt_value *params,
               const bolt_tx_opts *opts, bolt_record_cb cb, void *ud,
               bolt_summary *summary, bolt_error *err);
int bolt_query_enc(bolt_conn *c, const char *query, const bolt_enc *params,
                   const bolt_tx_opts *opts, bolt_record_cb cb, void *ud,
                   bolt_summary *summary, bolt_error *err);

/* Several queries of an open transaction (bolt_begin, or a bolt_session_write function) in
 * one write: RUN + PULL{n: -1} for each, the answers then read in order, so the transaction
 * waits for the network once, not once or twice per query. q[i].cb gets query i's records
 * (NULL: they are dropped); q[i].summary its counters. A FAILURE stops the transaction: the
 * server ignores the queries behind it, the connection is left FAILED and the call returns the
 * failure (bolt_commit then fails too; roll back). A callback that returns non-zero: the rest
 * of that query's records are dropped, the queries behind it still run but their answers are
 * read and dropped, BOLT_ECALLBACK is returned and the transaction must be rolled back. At
 * most BOLT_QUERY_MANY_MAX queries. The answers are read once everything is written: for
 * queries that answer little (summaries, thousands of rows), not megabytes each. */
#define BOLT_QUERY_MANY_MAX 12
typedef struct bolt_query_item {
    const char *query;
    const bolt_enc *params;      /* one complete encoded map, or NULL: no parameters */
    bolt_record_cb cb;
    void *ud;
    bolt_summary summary;        /* out */
} bolt_query_item;
int bolt_query_many(bolt_conn *c, bolt_query_item *q, size_t n, bolt_error *err);

/* Explicit transactions. BEGIN is queued and goes out with the first query (one write). */
int bolt_begin(bolt_conn *c, const bolt_tx_opts *opts, bolt_error *err);
int bolt_commit(bolt_conn *c, bolt_error *err);     /* bookmark: bolt_conn_last_bookmark */
int bolt_rollback(bolt_conn *c, bolt_error *err);

/* The write path of an ingestion worker: BEGIN + RUN + DISCARD + COMMIT in a single write,
 * four responses read back. Counters and the bookmark land in summary (may be NULL). */
int bolt_run_batch(bolt_conn *c, const char *query, const bolt_enc *params,
                   const bolt_tx_opts *opts, bolt_summary *summary, bolt_error *err);

/* ---------------------------------------------------------------- driver */

typedef struct bolt_driver bolt_driver;

/* Thread-safe. For neo4j:// URIs connections follow the routing table of each database. */
int bolt_driver_new(const char *uri, const bolt_config *cfg, bolt_driver **out,
                    bolt_error *err);
void bolt_driver_free(bolt_driver *d);   /* all connections must have been released */
/* Borrow a connection for db (NULL = default) to a writer (or reader if read_only). */
int bolt_driver_acquire(bolt_driver *d, const char *db, int read_only, bolt_conn **out,
                        bolt_error *err);
/* Give it back; a defunct one is closed, one not READY is RESET first. */
void bolt_driver_release(bolt_driver *d, bolt_conn *c);
/* Fails every call on d with BOLT_ECANCELLED at once: those blocked in a read, a write, a
 * connect or a retry pause now, and every later one. For shutting down while a server does
 * not answer. Thread-safe (a write to an eventfd every socket of d polls beside its own);
 * cannot be undone. */
void bolt_driver_cancel(bolt_driver *d);
/* Connections currently idle / in use, all servers (for tests and metrics). */
void bolt_driver_pool_stats(bolt_driver *d, int *idle, int *in_use);

/* Transaction functions: fn runs inside an explicit transaction (use bolt_run/bolt_query/
 * bolt_run_enc on c; do not commit). On BOLT_OK from fn the transaction is committed. A
 * retryable failure (transient server error, lost connection, routing change) rolls back
 * and runs fn again on a fresh connection, with exponential backoff and jitter, until
 * max_retry_time_ms is spent. fn may be called several times: make it idempotent.
 * commit_summary (may be NULL) gets the commit's bookmark and the attempts made; counters
 * come from the summaries of the queries fn runs. */
typedef int (*bolt_work_fn)(bolt_conn *c, void *ud, bolt_error *err);
int bolt_session_write(bolt_driver *d, const bolt_tx_opts *opts, bolt_work_fn fn, void *ud,
                       bolt_summary *commit_summary, bolt_error *err);
int bolt_session_read(bolt_driver *d, const bolt_tx_opts *opts, bolt_work_fn fn, void *ud,
                      bolt_error *err);
/* The ingestion write path with the same retries: bolt_run_batch (BEGIN + RUN + DISCARD +
 * COMMIT in one write) on a pooled connection. summary gets the counters and bookmark.
 * params may be NULL (no parameters). A batch whose COMMIT outcome is unknown is retried
 * only with retry_unknown_commit: set it when the query is idempotent (MERGE). */
int bolt_session_write_batch(bolt_driver *d, const bolt_tx_opts *opts, const char *query,
                             const bolt_enc *params, bolt_summary *summary, bolt_error *err);
/* Number of attempts the last session call on this thread made, for bolt_session_read, which
 * has no summary; the write calls return it in their summary's attempts. */
int bolt_session_last_attempts(void);

#ifdef __cplusplus
}
#endif
#endif
