/* flags.h: Flipper feature flags, evaluated locally from polled snapshots.
 *
 * Semantics are Flipper's (docs/contract.md §4): a feature is
 * enabled for an actor when its boolean gate is on, or the actor id is in its actors set, or
 * crc32(feature_name + actor_id) % 100000 < percentage_of_actors * 1000. Killswitches read only
 * the boolean gate. Gates the worker cannot evaluate (groups: Ruby blocks; expression;
 * percentage_of_time: random per call) count as closed and are reported per feature, so the
 * caller can warn naming them.
 *
 * Snapshots. A struct flags_set is immutable once built and reference-counted. The poller
 * builds a new set (flags_parse_export, flags_poll_file, or the builder for the Valkey and
 * HTTP sources), diffs it against the old one for the "FlagPoller: flag=<name> changed" lines,
 * and publishes it in a struct flags_store. Each reader thread owns a struct flags_reader;
 * flags_read() costs one atomic load while nothing changed and takes the store's mutex once
 * per published change (every poll interval at most), so the per-record path never waits on
 * the poller and never sees a snapshot freed under it.
 *
 * Errors are -1 (or NULL) with a message in the caller's buffer; a bad source never replaces
 * the last good snapshot (the caller simply does not publish).
 */
#ifndef CGW_FLAGS_H
#define CGW_FLAGS_H

#include "valkey/valkey.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Gates that are set but cannot be evaluated here (bits of flags_feature.unsupported). */
#define FLAGS_GATE_GROUPS             (1u << 0)
#define FLAGS_GATE_EXPRESSION         (1u << 1)
#define FLAGS_GATE_PERCENTAGE_OF_TIME (1u << 2)
#define FLAGS_GATE_UNKNOWN            (1u << 3)   /* a gate name this reader does not know */

/* Export files larger than this are refused rather than read. */
#define FLAGS_FILE_MAX (16u << 20)

/* One feature of a snapshot. Read-only for users of this header. */
struct flags_feature {
    char *name;
    bool boolean;
    double percentage_of_actors;    /* 0..100, may be fractional */
    double percentage_of_time;      /* 0..100; not evaluated */
    char **actors;                  /* sorted (strcmp), distinct */
    size_t actors_count;
    char **groups;                  /* sorted, distinct; not evaluated */
    size_t groups_count;
    bool has_expression;            /* not evaluated */
    unsigned unsupported;           /* FLAGS_GATE_* bits */
};

struct flags_set;                   /* opaque, immutable, reference-counted */

/* ---- building snapshots ------------------------------------------------------------------ */

/* Flipper's export format: {"version":1,"features":{"<name>":{"boolean":"true",...}}}.
 * Strict: invalid JSON, a missing or wrong version, or a gate value of the wrong type is an
 * error naming the feature and gate. Returns a set holding one reference, or NULL. */
struct flags_set *flags_parse_export(const char *json, size_t len, char *err, size_t errlen);

/* flipper-api's GET /features answer: {"features":[{"key":"f","gates":[{"key":"boolean",
 * "value":"true"},...]},...]} (values may be strings, numbers, booleans, arrays or null). */
struct flags_set *flags_parse_api(const char *json, size_t len, char *err, size_t errlen);

/* A builder for sources that deliver gates one field at a time: Flipper's Redis adapter
 * stores one HASH per feature with fields "boolean", "percentage_of_actors",
 * "percentage_of_time", "expression", "actors/<id>" and "groups/<name>"; flags_set_gate
 * takes exactly those field names and their string values. */
struct flags_builder;
struct flags_builder *flags_new_builder(void);
/* Declares a feature with every gate off (a member of flipper_features without a hash). */
int flags_add_feature(struct flags_builder *b, const char *feature, char *err, size_t errlen);
int flags_set_gate(struct flags_builder *b, const char *feature, const char *field, const char *value,
                   char *err, size_t errlen);
/* Consumes the builder; NULL only when out of memory. */
struct flags_set *flags_finish_builder(struct flags_builder *b);
void flags_free_builder(struct flags_builder *b);

/* ---- reading a snapshot ------------------------------------------------------------------ */

size_t flags_count(const struct flags_set *s);
const struct flags_feature *flags_feature_at(const struct flags_set *s, size_t i);  /* name order */
const struct flags_feature *flags_find(const struct flags_set *s, const char *name);

/* Killswitch reading: the boolean gate of name; false for an unknown feature or NULL set. */
bool flags_is_on(const struct flags_set *s, const char *name);

/* Per-actor evaluation. The actor id is actor_prefix followed by id ("User;" + "42"); the two
 * are passed apart so the hot path needs no buffer. An unknown feature is disabled. */
bool flags_is_enabled_for(const struct flags_set *s, const char *name, const char *actor_prefix,
                          const char *id);
bool flags_feature_is_enabled_for(const struct flags_feature *f, const char *actor_prefix, const char *id);

/* crc32(feature + actor_prefix + id) % 100000: Flipper's percentage_of_actors bucket. */
uint32_t flags_bucket(const char *feature, const char *actor_prefix, const char *id);
/* Flipper's comparison: bucket < percentage * 1000, done in double exactly as Ruby does. */
bool flags_percentage_includes(double percentage, uint32_t bucket);

/* "groups, expression" for a FLAGS_GATE_* mask; returns the length snprintf would. */
size_t flags_gate_names(unsigned bits, char *buf, size_t len);

/* A one-line description of a feature's gates for logs: "off", "on", or the open gates,
 * e.g. "actors=[User;1,User;2] percentage_of_actors=12.5". NULL f gives "absent". */
size_t flags_describe(const struct flags_feature *f, char *buf, size_t len);

/* Calls fn for every feature that differs between old and new (either may be NULL: no
 * features), in name order, with flags_describe() texts. Returns the number of changes. */
typedef void (*flags_change_fn)(void *ud, const char *name, const char *old_value, const char *new_value);
size_t flags_diff(const struct flags_set *old_set, const struct flags_set *new_set, flags_change_fn fn, void *ud);

/* References: a set starts with one; flags_release drops one and frees at zero. */
const struct flags_set *flags_retain(const struct flags_set *s);
void flags_release(const struct flags_set *s);

/* ---- sharing the current snapshot between threads ------------------------------------------ */

struct flags_store {
    pthread_mutex_t mu;
    struct flags_set *current;      /* guarded by mu; the store holds one reference */
    atomic_uint_fast64_t generation;  /* 0 until the first publish */
};

struct flags_reader {               /* one per reader thread; zero-initialise */
    const struct flags_set *set;
    uint64_t generation;
};

void flags_init_store(struct flags_store *st);
void flags_destroy_store(struct flags_store *st);
/* Takes over the caller's reference to s. */
void flags_publish(struct flags_store *st, struct flags_set *s);
/* The newest published snapshot (NULL before the first publish), valid until the next
 * flags_read or flags_release_reader on the same reader. */
const struct flags_set *flags_read(struct flags_store *st, struct flags_reader *r);
void flags_release_reader(struct flags_reader *r);
/* A counted reference to the current snapshot, for the poller's diff (release it). */
const struct flags_set *flags_acquire_current(struct flags_store *st);

/* ---- file source ------------------------------------------------------------------------- */

/* Re-reads an export file only when it changed (inode, size, mtime or ctime), so a poll of
 * an unchanged file costs one stat(2). A file that fails to parse is read again at the next
 * poll (it may have been caught mid-write) and keeps failing until it is fixed. */
struct flags_file {
    char *path;
    bool loaded;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

int flags_open_file(struct flags_file *ff, const char *path, char *err, size_t errlen);
/* 1: *out is a new snapshot (one reference); 0: unchanged, *out NULL; -1: error. */
int flags_poll_file(struct flags_file *ff, struct flags_set **out, char *err, size_t errlen);
void flags_close_file(struct flags_file *ff);

/* ---- Flipper HTTP API source (flags_http.c) --------------------------------------------------- */

/* Polls flipper-api's GET /features (gates included) with libcurl. url is the base URL where
 * flipper-api is mounted, as in the config key flags.http_url: "http://app/flipper/api" or
 * Flipper Cloud's "https://www.flippercloud.io/adapter"; "/features?exclude_gate_names=true" is
 * appended (a url already ending in "/features" is used as is; a query in url is kept). The
 * token, when set, is sent in token_header and never appears in a message. Each poll sends
 * If-None-Match with the last ETag: 304 is "unchanged". The server's poll-interval header
 * (seconds; Flipper Cloud uses it to slow clients down) is kept for
 * flags_http_suggested_interval_ms. Not thread-safe: one poller thread per source. */
struct flags_http_options {
    const char *url;                /* required: http:// or https:// */
    const char *token;              /* NULL or "": no token header */
    const char *token_header;       /* NULL or "": "X-Flipper-Token" */
    long connect_timeout_ms;        /* 0: 2000 */
    long timeout_ms;                /* whole request; 0: 5000 */
};

struct flags_http;                  /* opaque */

/* Copies the options (the caller's strings may be freed); does not connect. */
/* What flags_open_http would refuse in o, found without opening anything: 0 or -1 with the
 * message (`cgw check-config` and `cgw run` call it before starting anything). */
int flags_http_check_options(const struct flags_http_options *o, char *err, size_t errlen);
struct flags_http *flags_open_http(const struct flags_http_options *o, char *err, size_t errlen);
/* 1: *out is a new snapshot (one reference); 0: unchanged (304), *out NULL; -1: error. */
int flags_poll_http(struct flags_http *h, struct flags_set **out, char *err, size_t errlen);
/* The poll-interval the server asked for in its last 200 or 304 that carried the header, in
 * ms; 0 while none was seen. Poll every max(configured, suggested). */
long flags_http_suggested_interval_ms(const struct flags_http *h);
/* The features URL polled, without userinfo or query: what messages name, safe to log. */
const char *flags_http_url(const struct flags_http *h);
void flags_close_http(struct flags_http *h);

/* ---- Valkey source: Flipper's Redis adapter keys (flags_valkey.c) ------------------------------ */

/* Reads <key_prefix>flipper_features (SET of names) and one HASH <key_prefix><name> per name
 * over one src/valkey connection (TLS, ACL user, deadlines): SMEMBERS, then every HGETALL
 * pipelined in one round trip. A poll whose replies hash (SHA-256) to the same digest as the
 * last snapshot returned is "unchanged" without building anything. A member without a hash is
 * a feature with every gate off; an empty or missing set gives an empty snapshot (every flag
 * off), not an error. The connection is opened at the first poll and, after any error,
 * dropped and opened again at the next poll (the poll interval is the backoff).
 * Not thread-safe: one poller thread per source. */
struct flags_valkey_options {
    struct valkey_options valkey;   /* the connection; see flags_valkey_options_init */
    const char *key_prefix;         /* NULL: "" (Flipper's default); concatenated as is */
};

/* valkey_options_init's defaults, but connect 1000 ms, command 2000 ms and no backoff. */
void flags_valkey_options_init(struct flags_valkey_options *o);

struct flags_valkey;                /* opaque */

/* Copies the options; does not connect. */
struct flags_valkey *flags_open_valkey(const struct flags_valkey_options *o, char *err, size_t errlen);
/* 1: *out is a new snapshot (one reference); 0: unchanged, *out NULL; -1: error. */
int flags_poll_valkey(struct flags_valkey *v, struct flags_set **out, char *err, size_t errlen);
void flags_close_valkey(struct flags_valkey *v);

/* ---- the source interface and the poller (flags_poller.c) ---------------------------------- */

/* What the poller needs of a source: poll (1: *out is a new snapshot holding one reference;
 * 0: unchanged; -1: error in err), the interval the server asked for (NULL or 0: none), and
 * close. The three sources above provide one each; the poller owns it once started. */
struct flags_source {
    void *impl;
    int (*poll)(void *impl, struct flags_set **out, char *err, size_t errlen);
    long (*suggested_interval_ms)(const void *impl);
    void (*close)(void *impl);
};

/* Open a source and describe it as a struct flags_source: 0, or -1 with the message. */
int flags_file_source(const char *path, struct flags_source *out, char *err, size_t errlen);
int flags_http_source(const struct flags_http_options *o, struct flags_source *out, char *err, size_t errlen);
int flags_valkey_source(const struct flags_valkey_options *o, struct flags_source *out, char *err,
                        size_t errlen);

/* The poller: a thread that polls the source every max(interval_ms, the source's suggested
 * interval) (every first_retry_ms until the first read succeeds, since consumers wait for it),
 * publishes each new snapshot in the caller's store (logging "FlagPoller: flags loaded" the
 * first time, "FlagPoller: flag=<name> changed" per changed flag afterwards, and
 * "FlagPoller: gates not evaluated" per flag with gates it cannot evaluate), and keeps the last
 * snapshot in force while the source fails. Reporting the source's outages is the caller's
 * (on_poll_end gets every failure's message): the worker logs them with its other servers'. */
struct flags_poller_options {
    struct flags_source source;     /* taken over by flags_poller_start, even when it fails */
    struct flags_store *store;      /* required; the caller's, outlives the poller */
    long interval_ms;               /* required, > 0 */
    long first_retry_ms;            /* 0: 1000 */
    /* Each optional, called from the poller thread with hooks_ud: before a poll; after it (ok,
     * or the source's message); before each wait, with its length; when the thread ends. */
    void (*on_poll_start)(void *ud);
    void (*on_poll_end)(void *ud, bool ok, const char *err);
    void (*on_wait)(void *ud, long wait_ms);
    void (*on_exit)(void *ud);
    void *hooks_ud;
};

void flags_poller_options_init(struct flags_poller_options *o);

struct flags_poller;                /* opaque */

/* What the status page shows of the source. */
struct flags_poller_health {
    bool source_ok;                 /* the last poll succeeded */
    long long last_ok_ms;           /* wall clock of the last good poll; 0: never */
    char last_error[512];           /* the last poll's error while !source_ok, else "" */
};

/* Starts the thread (the first poll happens in it). NULL with the message on failure. */
struct flags_poller *flags_poller_start(const struct flags_poller_options *o, char *err, size_t errlen);
/* Asks the thread to end and wakes it from its wait; does not wait for it (a poll in flight
 * ends at its own deadline; on_exit says when the thread is done). NULL is ignored. */
void flags_poller_stop(struct flags_poller *p);
/* A copy of the health; all zero for a NULL poller (not started yet). */
void flags_poller_health(struct flags_poller *p, struct flags_poller_health *out);
/* Stops, joins the thread and closes the source; NULL is ignored. */
void flags_poller_free(struct flags_poller *p);

#endif
