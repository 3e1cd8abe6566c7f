/* src/pipeline/engine_internal.h: what engine.c (records in: decode, filters, duplicates,
 * dead letters of the undecodable), engine_write.c (a write batch out: enrichment, the Neo4j
 * transaction, its poison split and its [SUCCESS] lines, dead letters, marks) and engine_writer.c
 * (the writer thread and the hand-off to it) share. Not an interface.
 *
 * Threads. Everything but engine_commit runs on the consumer thread: the watermark, the
 * open batches, the dead-letter topic, the idempotency cache, the offset store. A writer
 * thread (one per lane, when there are writer threads) only runs engine_commit on the batch
 * handed to it, with its own watch and state (consumer_status.write_watch[i], .write_state[i]),
 * and writes each transaction's [SUCCESS] lines and counts (metrics and the status's writes
 * per minute take their own locks);
 * the consumer thread only reads that batch's purchase ids meanwhile (duplicates), which
 * nobody changes. */
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

/* Product and retailer metadata of a write batch (enrichment). */
struct metadata {
    struct enrich_results products, retailers;
    graph_product *gp;
    graph_retailer *gr;
    size_t ngp, ngr;
};

/* A write batch cut from the open one: its purchases and their metadata. */
struct wbatch {
    struct entries b;
    struct metadata md;
    int rc;                        /* engine_commit's: 0, or -1 abandoned at shutdown */
};

struct engine;

/* A writer thread and the one batch in its hands (engine_writer.c). */
struct writer {
    pthread_t thread;
    bool started, quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;             /* a job came, or one is done */
    struct wbatch *job;            /* handed over, not written yet or being written */
    struct wbatch *done;           /* written or abandoned: for the consumer thread to finish */
};

/* Distinct purchase ids of a write batch, for the in-batch duplicate check. */
struct idset {
    const char **slot;             /* borrowed from the purchases; NULL: empty */
    size_t cap, n;
};

/* A write lane: the partitions assigned to it gather into its open batch, which its writer
 * writes; lanes write concurrently (engine_options.writers), each partition through one lane
 * only, so the writes of a partition stay in order. */
struct lane {
    struct engine *e;
    int index;
    struct entries open;           /* purchases gathering into the lane's next write batch */
    struct idset ids;              /* ids of open */
    struct idset flight_ids;       /* ids of the batch handed to its writer, until finished */
    size_t npartitions;            /* partitions assigned to it */
    watch *ww;                     /* the watch of its commits (the consumer's without a writer) */
    graph_scratch *scratch;        /* its writes' parameter buffers (NULL: fresh ones each time) */
    struct writer w;
};

struct engine {
    struct engine_options o;
    struct engine_deps d;
    struct watermark *wm;
    struct entries chunk;          /* taken, not processed yet */
    struct lane lane[STATUS_MAX_WRITERS];
    size_t nlanes;
    signed char *lane_of;          /* partition -> lane index, -1 none; lane_cap entries */
    size_t lane_cap;
    struct log_latch dlq_outage;
};

/* engine.c. w: the calling thread's watch (the consumer's, or a lane's on its writer). */
void engine_set_state(struct engine *e, watch *w, consumer_state s);
/* Pause of a retry loop waiting out an outage; true when the worker is stopping. */
bool engine_wait_to_retry(struct engine *e, watch *w, int *attempt);
void engine_call(struct engine *e, watch *w, server s);
watch *engine_watch(struct engine *e);   /* the consumer thread's */
/* Produces the entries' errors to the dead-letter topic, waiting while it cannot be written.
 * 0; -1 when the worker stops first. */
int engine_dead_letter(struct engine *e, struct entry *v, size_t n);
/* Settles and releases entries (engine_store then stores what advanced). */
void engine_settle(struct engine *e, struct entry *v, size_t n);
/* Releases entries without settling them (abandoned: read again). */
void engine_abandon(struct engine *e, struct entry *v, size_t n);
void engine_store(struct engine *e);
int engine_dlq_reason_index(const char *reason);
void idset_clear(struct idset *s);
int idset_add(struct idset *s, const char *id);

/* engine_write.c, a batch's three steps. engine_prepare (consumer thread): its metadata;
 * waits out enrichment outages. engine_commit (writer thread): the Neo4j transaction(s);
 * waits out Neo4j outages; logs each transaction's [SUCCESS] lines as it commits; sets b->rc.
 * engine_finish (consumer thread): dead letters, marks, settled and stored; or abandoned when b->rc or the dead-letter wait says
 * so. Each returns 0, or -1 when the worker stopped meanwhile (the batch is then abandoned,
 * uncommitted, by engine_finish). engine_finish frees the batch. */
int engine_prepare(struct engine *e, struct wbatch *b);
void engine_commit(struct engine *e, struct lane *l, struct wbatch *b);
int engine_finish(struct engine *e, struct wbatch *b);

/* engine_writer.c. engine_hand_off: the lane's open batch prepared and given to its writer
 * (or written here without one), after the lane's previous one is finished. engine_reap:
 * finishes every batch a writer is done with. engine_drain: waits for every writer and
 * reaps. -1 when the worker stopped meanwhile (see engine_finish). */
int engine_writer_start(struct engine *e, char *err, size_t errlen);
void engine_writer_stop(struct engine *e);
int engine_hand_off(struct engine *e, struct lane *l);
int engine_reap(struct engine *e);
int engine_drain(struct engine *e);
bool engine_lane_busy(struct lane *l);
bool engine_writer_busy(struct engine *e);   /* any lane's */

#endif
