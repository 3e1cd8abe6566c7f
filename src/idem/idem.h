/* idem.h: the idempotency cache in Valkey (contract section 5), over one src/valkey connection.
 *
 * Key "<prefix><consumer>:<id>" (prefix "cgw:done:" by default), value the Kafka coordinates
 * of the record (the caller formats them, e.g. "ProcessedReceiptEvent/3/1042"), TTL 7 days by
 * default. The pipeline reads before processing and writes after the graph commit:
 *
 *   bool seen[n];
 *   if (idem_check(idem, "receipt", ids, n, seen) != IDEM_OK) memset(seen, 0, n);  go on
 *   ... graph transaction committed ...
 *   idem_mark(idem, "receipt", ids, coords, n);
 *
 * Each call is one round trip: idem_check sends one MGET, idem_mark pipelines n
 * "SET key value EX ttl" and then reads the n replies.
 *
 * Outages. The graph writes are idempotent, so the cache is an optimisation and an outage
 * must cost as little as possible: the connection (src/valkey: deadlines, TLS, AUTH, CLIENT
 * SETNAME, reconnect backoff) has short timeouts (500 ms default); a failure (refused,
 * timeout, connection lost mid-pipeline, TLS or AUTH refused) returns IDEM_EUNAVAILABLE, and
 * during the connection's reconnect backoff every call returns IDEM_EUNAVAILABLE at once,
 * without touching the network, so an outage does not add a timeout to every batch.
 * idem_available() and the counters tell the caller when an outage starts and ends (log once
 * per outage: compare idem_available() before and after, or watch stats.outages).
 *
 * Threads: a handle is NOT thread-safe; use one handle per consumer thread (each has its own
 * connection). Nothing here logs or exits.
 */
#ifndef CGW_IDEM_H
#define CGW_IDEM_H

#include "valkey/valkey.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum idem_status {
    IDEM_OK = 0,
    IDEM_EINVAL,            /* bad arguments */
    IDEM_ENOMEM,
    IDEM_EUNAVAILABLE,      /* Valkey unreachable / timed out / connection lost / AUTH failed */
    IDEM_EREPLY,            /* Valkey answered with an error or an unexpected reply type */
};

/* "IDEM_OK", "IDEM_EUNAVAILABLE", ... */
const char *idem_status_name(enum idem_status s);

struct idem_options {
    struct valkey_options valkey;   /* the connection (valkey_options_init's defaults) */
    const char *prefix;             /* default "cgw:done:" */
    long ttl_seconds;               /* default 604800 (7 days) */
};

struct idem_stats {
    uint64_t checks, marks;         /* successful calls */
    uint64_t ids_checked, ids_seen, ids_marked;
    uint64_t connects;              /* successful connects (1 + reconnects) */
    uint64_t connect_failures;      /* failed connect attempts (incl. AUTH failures) */
    uint64_t failures;              /* calls that returned IDEM_EUNAVAILABLE or IDEM_EREPLY */
    uint64_t skipped;               /* calls refused at once during the reconnect backoff */
    uint64_t outages;               /* available -> unavailable transitions */
};

/* Fills the defaults above. */
void idem_options_init(struct idem_options *o);

struct idem;

/* Copies the options; does not connect (the first call does). NULL with a message on bad
 * options or no memory. */
struct idem *idem_new(const struct idem_options *o, char *err, size_t errlen);
void idem_free(struct idem *idem);

/* seen[i] = the key of ids[i] exists. On any status but IDEM_OK, seen[] is all false (treat
 * every record as new: the graph writes are idempotent). */
enum idem_status idem_check(struct idem *idem, const char *consumer, const char *const ids[],
                            size_t n, bool seen[]);
/* SET <key(ids[i])> values[i] EX ttl for every i, one pipelined round trip. */
enum idem_status idem_mark(struct idem *idem, const char *consumer, const char *const ids[],
                           const char *const values[], size_t n);

/* false from a failure until a call succeeds again; true before the first call. */
bool idem_available(const struct idem *idem);
/* Why the last call failed ("" when it did not). */
const char *idem_last_error(const struct idem *idem);
void idem_get_stats(const struct idem *idem, struct idem_stats *out);

#endif
