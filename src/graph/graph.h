/* src/graph/graph.h: the purchase graph in Neo4j (contract §6), written a batch at a time.
 *
 * A batch of purchases becomes ONE transaction of five UNWIND statements (categories,
 * products, retailers, users, purchases with their relationships), each with a constant
 * query text and one list parameter, rows sorted by key so that concurrent writers take
 * locks in the same order. Categories, products, retailers and users are MERGEd on their
 * uniquely constrained keys and written only where they differ; a purchase is MERGEd and,
 * only when this transaction created it, written whole (properties, MADE, AT, CONTAINS)
 * with CREATE: a purchase already in the graph was written whole by the one transaction
 * that created it, so it is skipped. Writing the same batch twice changes nothing: a retry,
 * a replay or a duplicate record is harmless, and the write reports which purchases were
 * there already (graph_batch.existed) so that the caller counts a rewrite as one.
 *
 * The caller (the pipeline) resolves product and retailer metadata first and passes it in;
 * this module knows Cypher and the model, nothing about Kafka or HTTP.
 */
#ifndef CGW_GRAPH_H
#define CGW_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "bolt/bolt.h"
#include "record/record.h"

/* Metadata of one product as the FIDO service knows it. known=0: a node without metadata. */
typedef struct graph_product {
    const char *fido;
    int known;
    const char *name;                  /* NULL when absent */
    const char *brand;                 /* NULL when absent */
    const char *const *categories;     /* path from the top category down */
    size_t ncategories;
} graph_product;

typedef struct graph_retailer {
    const char *retailer_id;
    int known;
    const char *name;                  /* NULL when absent */
    const char *store_type;            /* NULL when absent */
} graph_retailer;

typedef struct graph_batch {
    const record_purchase *const *purchases;
    size_t npurchases;
    const graph_product *products;     /* every fido the purchases name, once, sorted by fido */
    size_t nproducts;
    const graph_retailer *retailers;   /* every retailer_id the purchases name, each once */
    size_t nretailers;
    /* Optional out (NULL: not asked), npurchases entries: after a successful graph_write,
     * existed[i] is 1 when purchases[i] was in the graph before this write (a rewrite: a
     * replay after a crash, or a copy the idempotency cache missed), 0 when this write
     * created it. Decided under the MERGE lock, so concurrent writers agree. */
    unsigned char *existed;
} graph_batch;

/* What one batch did, from the server's counters. */
typedef struct graph_stats {
    int64_t nodes_created;
    int64_t relationships_created;
    int64_t properties_set;
    int attempts;                      /* transaction attempts, 1 when no retry was needed */
    int deadlocks;                     /* of the attempts, those Neo4j ended as deadlocked */
} graph_stats;

/* Create the uniqueness constraints of the model (IF NOT EXISTS) and wait for their indexes
 * to be online. Run once at start. */
int graph_ensure_schema(bolt_driver *d, const char *db, bolt_error *err);

/* Write a batch in one transaction, retried by the driver on transient failures within its
 * max_retry_time_ms. On failure nothing of the batch is committed. A batch of several
 * purchases that exceeds Neo4j's transaction memory is not retried as is (the caller
 * splits it, graph_error_is_batch_caused()); a single purchase is, since the memory pool
 * is shared with other transactions. A batch whose products are not sorted by fido, each
 * once, is refused (BOLT_EINVAL) before anything is sent: this header is the one owner of
 * that rule, graph_count_purchase relies on it. */
int graph_write(bolt_driver *d, const char *db, const graph_batch *b, graph_stats *stats,
                bolt_error *err);

/* What a writer keeps between its transactions: the buffers of the five statements'
 * parameters (half a megabyte for 500 purchases). Encoded into fresh buffers, each batch
 * faulted its pages in anew: half the worker's page faults (issue 14). One scratch per thread
 * at a time; buffers past GRAPH_SCRATCH_KEEP bytes are not kept. */
typedef struct graph_scratch graph_scratch;
#define GRAPH_SCRATCH_KEEP (4u << 20)
graph_scratch *graph_scratch_new(void);             /* NULL: out of memory */
void graph_scratch_free(graph_scratch *s);          /* NULL: nothing */
/* graph_write encoding into s's buffers (s NULL: fresh ones, as graph_write). */
int graph_write_in(bolt_driver *d, const char *db, const graph_batch *b, graph_scratch *s,
                   graph_stats *stats, bolt_error *err);

/* The statement texts of a write, each taking the parameters graph_write encodes for it
 * ({rows: [...]}; users: the distinct user ids, sorted). For the benchmark, which measures
 * older statement shapes against this module's own (bench/e2e/ceiling.c); the worker always
 * uses graph_write. A NULL text is not sent. The purchases text must return the index (n) of
 * each purchase that was in the graph before, as this module's does. */
typedef struct graph_queries {
    const char *categories, *products, *retailers, *users, *purchases;
} graph_queries;

const graph_queries *graph_own_queries(void);

/* graph_write_in with the statement texts q (NULL: this module's own). */
int graph_write_queries(bolt_driver *d, const char *db, const graph_batch *b,
                        const graph_queries *q, graph_scratch *s, graph_stats *stats,
                        bolt_error *err);

/* PROFILE of one statement of a batch, from Neo4j's profiled plan. */
#define GRAPH_NSTATEMENTS 5
typedef struct graph_profile {
    const char *name;                  /* "categories", "products", ... */
    size_t rows;                       /* parameter rows sent; 0: statement not sent */
    int64_t db_hits;                   /* sum over the plan's operators */
    int eager;                         /* Eager operators in the plan */
    char top[512];                     /* operators with >= 10 % of the hits: "Name hits, ..." */
} graph_profile;

/* PROFILE every statement of the batch (texts q, NULL: this module's own) in one transaction
 * that is rolled back: the cost of writing it into the graph as it is, which stays
 * unchanged. Benchmark only (bench/e2e/ceiling.c --profile). */
int graph_profile_batch(bolt_driver *d, const char *db, const graph_batch *b,
                        const graph_queries *q, graph_profile out[GRAPH_NSTATEMENTS],
                        bolt_error *err);

/* Whether a failed graph_write was caused by the batch itself (its size or its content),
 * so that the same records in smaller batches may succeed and a record that fails alone
 * never will: Neo4j's transaction memory limits (MemoryPoolOutOfMemoryError,
 * TransactionMemoryLimit, OutOfMemoryError: TransientErrors by name, yet retrying the same
 * batch meets the same limit), a statement the client cannot encode, and the server's
 * refusals of the data (constraint, type, argument errors: non-transient ClientErrors and
 * DatabaseErrors). Not: lost connections, timeouts, transient server states, and the
 * ClientErrors that are about the server or the worker rather than the records (database
 * missing, security, cluster, syntax). Those are outages: wait and retry the batch. */
int graph_error_is_batch_caused(const bolt_error *err);

/* Nodes and relationships one purchase touches (for its "[SUCCESS] Persisted graph data"
 * line): User, Purchase, its products, retailer and their categories; MADE, AT, CONTAINS,
 * IN_CATEGORY and CHILD_OF. */
/* The same for every purchase of b at once (nodes[i], relationships[i] for purchases[i]),
 * with one hash of the products instead of a binary search per line. -1 when out of memory
 * (nothing written), else 0. */
int graph_count_purchases(const graph_batch *b, int *nodes, int *relationships);
void graph_count_purchase(const graph_batch *b, const record_purchase *p, int *nodes,
                          int *relationships);

#endif
