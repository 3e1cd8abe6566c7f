/* src/pipeline/engine.h: the batch engine of one consumer: Kafka records in, purchases
 * written to the graph in batches, offsets out. Room-internal (src/pipeline/), like
 * pipeline_internal.h; the unit tests drive it with stand-ins (tests/unit/engine_test.c).
 *
 * What. The consumer thread (consumer.c) polls Kafka and hands each record to the engine
 * (engine_add); the engine decodes and filters it, applies the rollout flag and the
 * duplicate checks, dead-letters what can never succeed, and gathers the purchases into a
 * write batch of at most batch_size purchases (and batch_max_bytes of record bytes), cut
 * linger_ms after its first purchase, whatever the number of records polled meanwhile.
 * Filtered, not-in-rollout, duplicate and erroneous records never wait for a transaction.
 *
 * Offsets. Per partition the engine keeps the records it has not settled yet (watermark.c):
 * a record is settled once persisted, skipped or dead-lettered, and the offset handed to
 * store_offsets is the partition's contiguous watermark: the offset below which every record
 * is settled. So a skipped record after a purchase still in a write batch is committed only
 * with that purchase: at least once, with skips and writes interleaved.
 *
 * Why an interface. Every server the engine needs (schema registry, flags, Valkey, the
 * enrichment services, Neo4j, the dead-letter topic, Kafka's offset store) and the clock come
 * in through struct engine_deps, a table of functions and their context, so the tests can
 * put stand-ins there and drive the watermark, the poison split, duplicates, outage waits,
 * shutdown and rebalance in milliseconds. The engine brackets each call with the consumer's
 * watch (watch.c) and sets its state, as the thread did before.
 */
#ifndef CGW_PIPELINE_ENGINE_H
#define CGW_PIPELINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bolt/bolt.h"
#include "enrich/enrich.h"
#include "graph/graph.h"
#include "pipeline/pipeline_internal.h"
#include "registry/registry.h"

/* One polled Kafka record, as the engine sees it. key and value are valid until the handle
 * is released (deps.release); the engine keeps the handle only while the dead-letter topic
 * may still need the record. */
struct engine_record {
    int32_t partition;
    int64_t offset;
    const void *key, *value;
    size_t key_len, len;
    int32_t header_schema_id;      /* factoids: the __value_schema_id header, else -1 */
    void *handle;                  /* the source message (rd_kafka_message_t *) */
};

/* A record for the dead-letter topic. */
struct engine_letter {
    void *handle;                  /* the source message */
    const char *reason;            /* one of consumer_dlq_reasons */
    const char *error;
};

/* An offset to store: the next one to read of a partition. */
struct engine_offset {
    int32_t partition;
    int64_t offset;
};

/* The engine's servers and clock. Functions return 0 on success, -1 when the server is
 * unavailable (the message in err) unless said otherwise. */
struct engine_deps {
    void *ctx;
    registry_verdict (*schema_check)(void *ctx, int32_t schema_id, char *why, size_t len);
    /* Whether the rollout flag enables user_id (the latest flag snapshot). */
    bool (*in_rollout)(void *ctx, const char *user_id);
    /* seen[i]: ids[i] is in the idempotency cache. */
    int (*idem_check)(void *ctx, const char *const *ids, size_t n, bool *seen, char *err,
                      size_t errlen);
    int (*idem_mark)(void *ctx, const char *const *ids, const char *const *values, size_t n,
                     char *err, size_t errlen);
    enum enrich_status (*enrich_products)(void *ctx, const char *const *fidos, size_t n,
                                          struct enrich_results *out);
    enum enrich_status (*enrich_retailers)(void *ctx, const char *const *ids, size_t n,
                                           struct enrich_results *out);
    /* graph_write_in's contract (graph.h): BOLT_OK or a bolt code with be filled. scratch:
     * the buffers of the calling lane's writer, kept between its transactions. */
    int (*graph_write)(void *ctx, graph_scratch *scratch, const graph_batch *b,
                       graph_stats *stats, bolt_error *be);
    /* NULL: the consumer has no dead-letter topic. */
    int (*dead_letter)(void *ctx, const struct engine_letter *l, size_t n, char *err,
                       size_t errlen);
    void (*store_offsets)(void *ctx, const struct engine_offset *o, size_t n);
    void (*release)(void *ctx, void *handle);
    /* Sleeps up to ms; true (at once) when the worker is stopping. */
    bool (*sleep)(void *ctx, long ms);
    bool (*stopping)(void *ctx);
    long long (*now_ms)(void *ctx);           /* monotonic */
};

struct engine_options {
    const char *name;              /* consumer name: log lines, idempotency keys */
    const char *topic;             /* idempotency values "<topic>/<partition>/<offset>" */
    const char *dlq_topic;         /* for log lines; NULL with deps.dead_letter NULL */
    bool factoids;                 /* decode factoids (schema ids checked), else receipts */
    size_t batch_size;             /* purchases per write batch */
    long linger_ms;                /* a write batch is cut this long after its first purchase */
    size_t batch_max_bytes;        /* record bytes (keys and values) per write batch */
    bool log_only, log_only_commit_offsets;
    size_t max_tracked;            /* records awaiting settlement; 0: a default */
    /* Write batches on threads of their own (status->write_watch[i]), one transaction in
     * flight per writer while the next batch is prepared; false: written on the caller's
     * thread. */
    bool writer_thread;
    /* Write lanes (1 when 0): the consumer's partitions are spread over this many open
     * batches and writers, so up to this many transactions are in flight, each partition's
     * in order. At most STATUS_MAX_WRITERS. */
    size_t writers;
    consumer_metrics *metrics;     /* counters may be NULL */
    consumer_status *status;       /* state and watch of the consumer */
    long budget_ms[SERVER_COUNT];  /* the deadline of one call to each server */
    struct engine_deps deps;
};

void engine_options_init(struct engine_options *o);

struct engine *engine_new(const struct engine_options *o, char *err, size_t errlen);
/* Releases every record still held, unsettled (nothing is stored for them). */
void engine_free(struct engine *e);

/* Takes a polled record (records of a partition in offset order). true when the engine
 * wants engine_run before more records (its chunk is full). */
bool engine_add(struct engine *e, const struct engine_record *r);

/* Processes the records taken so far and writes the batch when it is full or its linger
 * time has passed. 0; -1 when the worker stopped while a server was down: what was not
 * settled then is abandoned, uncommitted, to be read again. */
int engine_run(struct engine *e);

/* How long the thread may poll Kafka before calling engine_run again, at most max_ms. */
long engine_poll_ms(struct engine *e, long max_ms);

/* engine_run, then the open write batch written now, whatever its size (shutdown,
 * killswitch, before leaving the group). 0, or -1 as engine_run. */
int engine_flush(struct engine *e);

/* A rebalance took these partitions away: their records not yet written are abandoned
 * uncommitted (the new owner reads them again); nothing more is stored for them. */
void engine_revoke(struct engine *e, const int32_t *partitions, size_t n);

/* Every record held abandoned, unsettled, and every partition forgotten: before the Kafka
 * handle goes (killswitch, shutdown, a fatal error), so that no record outlives it. */
void engine_reset(struct engine *e);

/* Records taken and not yet settled, and purchases in the open write batch. */
size_t engine_pending(const struct engine *e);
size_t engine_open_purchases(const struct engine *e);

/* ---- watermark.c: the contiguous watermark of each partition ---- */

struct watermark;
struct watermark *watermark_new(void);
void watermark_free(struct watermark *w);
/* A record taken: offsets of a partition in increasing order (a smaller one starts the
 * partition afresh). -1 when out of memory. */
int watermark_track(struct watermark *w, int32_t partition, int64_t offset);
/* The record is settled; unknown records are ignored (a partition revoked meanwhile). */
void watermark_settle(struct watermark *w, int32_t partition, int64_t offset);
/* Forgets a partition (revoked): nothing more is reported for its records. */
void watermark_drop(struct watermark *w, int32_t partition);
size_t watermark_tracked(const struct watermark *w);
/* The partitions whose watermark advanced since the last call, at most cap of them: the next
 * offset to read of each. Returns how many. */
size_t watermark_take(struct watermark *w, struct engine_offset *out, size_t cap);

#endif
