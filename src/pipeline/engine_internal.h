/* src/pipeline/engine_internal.h: what engine.c (records in: decode, filters, duplicates,
 * dead letters of the undecodable) and engine_write.c (a write batch out: enrichment, the
 * Neo4j transaction and its poison split, marks, success lines) share. Not an interface. */
#ifndef CGW_PIPELINE_ENGINE_INTERNAL_H
#define CGW_PIPELINE_ENGINE_INTERNAL_H

#include "pipeline/engine.h"

/* One record taken, and what became of it. */
struct entry {
    struct engine_record rec;      /* key/value invalid once rec.handle is released */
    record_result res;
    bool persisted;
    bool rewritten;                /* persisted, but the purchase was in the graph already */
    const char *dlq_reason;        /* set with every RECORD_ERROR: one of consumer_dlq_reasons */
};

/* Records taken (the chunk), or the purchases of a write batch. */
struct entries {
    struct entry *v;
    size_t n, cap;
    size_t bytes;                  /* of keys and values */
    long long first_ms;            /* write batch: when its first purchase came */
};

/* Distinct purchase ids of the open write batch, for the in-batch duplicate check. */
struct idset {
    const char **slot;             /* borrowed from the purchases; NULL: empty */
    size_t cap, n;
};

struct engine {
    struct engine_options o;
    struct engine_deps d;
    struct watermark *wm;
    struct entries chunk;          /* taken, not processed yet */
    struct entries open;           /* purchases gathering into the next write batch */
    struct idset ids;              /* ids of open */
    struct log_latch dlq_outage;
};

/* engine.c */
void engine_set_state(struct engine *e, consumer_state s);
/* Pause of a retry loop waiting out an outage; true when the worker is stopping. */
bool engine_wait_to_retry(struct engine *e, int *attempt);
void engine_call(struct engine *e, server s);
/* Produces the entries' errors to the dead-letter topic, waiting while it cannot be written.
 * 0; -1 when the worker stops first. */
int engine_dead_letter(struct engine *e, struct entry *v, size_t n);
/* Settles and releases entries (engine_store then stores what advanced). */
void engine_settle(struct engine *e, struct entry *v, size_t n);
/* Releases entries without settling them (abandoned: read again). */
void engine_abandon(struct engine *e, struct entry *v, size_t n);
void engine_store(struct engine *e);
int engine_dlq_reason_index(const char *reason);
/* The batch is written or abandoned: empty again (and the open batch's ids forgotten). */
void engine_batch_done(struct engine *e, struct entries *batch);

/* engine_write.c: writes the batch (enrichment, Neo4j, dead letters, marks, success
 * lines), settles and empties it. 0; -1 when the worker stopped meanwhile (abandoned). */
int engine_write(struct engine *e, struct entries *batch);

#endif
