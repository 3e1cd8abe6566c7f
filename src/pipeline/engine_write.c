/* src/pipeline/engine_write.c: one write batch of purchases out (engine.h), in three steps:
 *
 *   prepare (consumer thread)
 *     enrichment for the whole batch     an outage waits here and retries: nothing is
 *                                        written without metadata because a service was down
 *   commit (writer thread, while the consumer thread prepares the next batch)
 *     one Neo4j transaction (graph_write)  an outage waits here and retries
 *     its [SUCCESS] lines, at once          the moment a line can be lost is the moment
 *                                          between COMMIT's answer and one write(2)
 *   finish (consumer thread)
 *     dead letters of the records Neo4j refused
 *     idempotency marks
 *     every purchase settled: the watermark stores what it allows
 *
 * A purchase's [SUCCESS] line is written once, by the transaction that created it; a worker
 * killed -9 between that COMMIT and the line loses the line, and the replay finds the purchase
 * in the graph and logs "Rewrote" (counted in cgw_records_rewritten_total): the lines are never
 * more than the purchases. The lines used to wait for the consumer thread's finish, tens of
 * milliseconds later, and a kill -9 landed in that gap often enough to fail a test (one batch
 * of 50 lines short in 2 of 4 CI runs of test_e2e_takeover).
 *
 * A batch that fails because of itself (too big for Neo4j's transaction memory, or data
 * Neo4j refuses: graph_error_is_batch_caused) is written in halves, recursively, down to
 * single records; only records that fail alone become [ERROR]s, so neither one poisonous
 * record nor one huge batch blocks its partition.
 *
 * When the worker stops during an outage wait, the batch is abandoned: nothing of it is
 * settled, so nothing past it is committed and it is read again.
 */
#include "pipeline/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* ------------------------------------------------------------------ enrichment */

static void metadata_free(struct metadata *md) {
    enrich_results_free(&md->products);
    enrich_results_free(&md->retailers);
    free(md->gp);
    free(md->gr);
    memset(md, 0, sizeof *md);
}

/* Every distinct fido and retailer of the batch, sorted (graph.h asks products to be sorted
 * by fido), looked up in one call per service. */
static enum enrich_status fetch_metadata(struct engine *e, const struct entries *b,
                                         struct metadata *md) {
    size_t nf = 0, nr = 0, cap_f = 0;
    for (size_t i = 0; i < b->n; i++) cap_f += b->v[i].res.purchase->nitems;
    const char **fidos = malloc((cap_f ? cap_f : 1) * sizeof *fidos);
    const char **rids = malloc((b->n ? b->n : 1) * sizeof *rids);
    enum enrich_status st = ENRICH_ENOMEM;
    if (!fidos || !rids) goto out;
    for (size_t i = 0; i < b->n; i++) {
        const record_purchase *p = b->v[i].res.purchase;
        for (size_t k = 0; k < p->nitems; k++) fidos[nf++] = p->items[k].fido;
        if (p->retailer_id) rids[nr++] = p->retailer_id;
    }
    long uf = base_sort_strs(fidos, nf, true), ur = base_sort_strs(rids, nr, true);
    if (uf < 0 || ur < 0) goto out;
    nf = (size_t)uf;
    nr = (size_t)ur;
    st = e->d.enrich_products(e->d.ctx, fidos, nf, &md->products);
    if (st == ENRICH_OK) st = e->d.enrich_retailers(e->d.ctx, rids, nr, &md->retailers);
out:
    free(fidos);
    free(rids);
    return st;
}

static int build_graph_metadata(struct metadata *md) {
    md->ngp = md->products.count;
    md->ngr = md->retailers.count;
    md->gp = calloc(md->ngp ? md->ngp : 1, sizeof *md->gp);
    md->gr = calloc(md->ngr ? md->ngr : 1, sizeof *md->gr);
    if (!md->gp || !md->gr) return -1;
    for (size_t i = 0; i < md->ngp; i++) {
        const struct enrich_product *p = &md->products.products[i];
        md->gp[i] = (graph_product){p->fido, p->known, p->name, p->brand,
                                    (const char *const *)p->categories, p->categories_count};
    }
    for (size_t i = 0; i < md->ngr; i++) {
        const struct enrich_retailer *r = &md->retailers.retailers[i];
        md->gr[i] = (graph_retailer){r->retailer_id, r->known, r->name, r->store_type};
    }
    return 0;
}

/* Waits out an outage of the enrichment services. -1 only when the worker is stopping. */
static int enrich_batch(struct engine *e, const struct entries *b, struct metadata *md) {
    watch *w = engine_watch(e);
    int attempt = 0;
    for (;;) {
        engine_call(e, w, SERVER_ENRICHMENT);
        enum enrich_status st = fetch_metadata(e, b, md);
        watch_done(w, SERVER_ENRICHMENT, st != ENRICH_OK,
                   st == ENRICH_OK ? "" : md->products.error[0] ? md->products.error
                                                                : md->retailers.error);
        if (st == ENRICH_OK) break;
        engine_set_state(e, w, CONSUMER_STATE_WAITING_ENRICHMENT);
        metadata_free(md);
        metrics_inc_counter(e->o.metrics->enrich_unavailable);
        if (engine_wait_to_retry(e, w, &attempt)) return -1;
    }
    if (md->products.failed || md->retailers.failed) {
        metrics_inc_counter(e->o.metrics->errors_enrich);
        LOG(LOG_ERROR, "[ERROR] Enrichment request refused; records keep ids without metadata",
            LOG_STR("consumer", e->o.name),
            LOG_STR("error", md->products.failed ? md->products.error : md->retailers.error));
    }
    return build_graph_metadata(md);
}

/* ------------------------------------------------------------------ graph */

/* existed (n entries): which purchases were in the graph before (graph_batch.existed). */
static int write_purchases(struct engine *e, struct lane *l, const struct metadata *md,
                           const record_purchase **ps, size_t n, unsigned char *existed,
                           bolt_error *be) {
    consumer_metrics *m = e->o.metrics;
    graph_batch gb = {ps, n, md->gp, md->ngp, md->gr, md->ngr, existed};
    graph_stats gs = {0};
    engine_call(e, l->ww, SERVER_NEO4J);
    long long t0 = base_monotonic_ms();
    int rc = e->d.graph_write(e->d.ctx, l->scratch, &gb, &gs, be);
    metrics_observe(m->write_seconds, (double)(base_monotonic_ms() - t0) / 1000.0);
    if (gs.attempts > 1) metrics_add_counter(m->graph_retries, (uint64_t)gs.attempts - 1);
    if (gs.deadlocks) metrics_add_counter(m->graph_deadlocks, (uint64_t)gs.deadlocks);
    if (rc == BOLT_OK) {
        metrics_add_counter(m->nodes_created, (uint64_t)gs.nodes_created);
        metrics_add_counter(m->relationships_created, (uint64_t)gs.relationships_created);
    }
    return rc;
}

static void mark_graph_error(struct engine *e, struct entry *x, const bolt_error *be) {
    x->res.status = RECORD_ERROR;
    metrics_inc_counter(e->o.metrics->errors_graph);
    LOG(LOG_ERROR, "[ERROR] Neo4j refused record", LOG_STR("consumer", e->o.name),
        LOG_STR("id", x->res.purchase->id), LOG_INT("partition", x->rec.partition),
        LOG_INT("offset", x->rec.offset), LOG_STR("neo4j_code", be->neo4j_code),
        LOG_STR("error", be->message));
    x->dlq_reason = "neo4j_refused";
    snprintf(x->res.error, sizeof x->res.error, "Neo4j refused the record: %.60s: %.160s",
             be->neo4j_code[0] ? be->neo4j_code : bolt_code_name(be->code), be->message);
}

/* The lines and counts of one committed transaction (todo[i] holds ps[i]): a [SUCCESS] line
 * per purchase it created, a "Rewrote" line per purchase that was there before. Written out
 * before returning, in one write(2) for up to a few kilobytes of them (log_hold). */
static void log_written(struct engine *e, const struct metadata *md, struct entry **todo,
                        const record_purchase **ps, size_t n) {
    uint64_t written = 0;
    int *nodes = malloc((n ? n : 1) * sizeof *nodes), *rels = malloc((n ? n : 1) * sizeof *rels);
    graph_batch gb = {ps, n, md->gp, md->ngp, md->gr, md->ngr};
    bool counted = nodes && rels && graph_count_purchases(&gb, nodes, rels) == 0;
    bool nested = log_hold();
    for (size_t i = 0; i < n; i++) {
        const struct entry *x = todo[i];
        int nd, rl;
        if (counted) {
            nd = nodes[i];
            rl = rels[i];
        } else {   /* out of memory: one purchase at a time */
            graph_count_purchase(&gb, ps[i], &nd, &rl);
        }
        /* Counted once per purchase: a replay is a rewrite, not a second persisted record. */
        metrics_inc_counter(x->rewritten ? e->o.metrics->rewritten : e->o.metrics->persisted);
        written += !x->rewritten;
        LOG(LOG_INFO, x->rewritten ? "[INFO] Rewrote graph data (purchase already there)"
                                   : "[SUCCESS] Persisted graph data",
            LOG_STR("consumer", e->o.name), LOG_STR("id", ps[i]->id),
            LOG_STR("purchase_id", ps[i]->purchase_id), LOG_INT("partition", x->rec.partition),
            LOG_INT("offset", x->rec.offset), LOG_INT("nodes", nd), LOG_INT("relationships", rl));
    }
    if (nested) log_flush();
    else log_release();
    free(nodes);
    free(rels);
    status_count_writes(e->o.status, base_wall_ms(), written);
}

/* Writes todo[0..n) in one transaction; when the batch itself is the cause of a failure,
 * writes each half on its own, down to single records: only a record that fails alone
 * becomes an error. BOLT_OK when every record is persisted or an error; anything else is an
 * outage (some records may be persisted already: the caller retries the rest). */
static int write_split(struct engine *e, struct lane *l, const struct metadata *md,
                       struct entry **todo, const record_purchase **ps, size_t n,
                       unsigned char *existed, bolt_error *be) {
    int rc = write_purchases(e, l, md, ps, n, existed, be);
    if (rc == BOLT_OK) {
        for (size_t i = 0; i < n; i++) {
            todo[i]->persisted = true;
            todo[i]->rewritten = existed[i];
        }
        log_written(e, md, todo, ps, n);
        return BOLT_OK;
    }
    if (!graph_error_is_batch_caused(be)) return rc;
    if (n == 1) {
        mark_graph_error(e, todo[0], be);
        return BOLT_OK;
    }
    size_t half = n / 2;
    metrics_inc_counter(e->o.metrics->graph_splits);
    LOG(LOG_WARN, "Neo4j refused a batch for its size or content; writing it in halves",
        LOG_STR("consumer", e->o.name), LOG_UINT("records", n),
        LOG_STR("neo4j_code", be->neo4j_code[0] ? be->neo4j_code : bolt_code_name(be->code)));
    rc = write_split(e, l, md, todo, ps, half, existed, be);
    if (rc == BOLT_OK)
        rc = write_split(e, l, md, todo + half, ps + half, n - half, existed + half, be);
    return rc;
}

/* The batch's purchases still to write; returns how many. */
static size_t pending(struct entries *b, struct entry **todo, const record_purchase **ps) {
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].res.status == RECORD_OK && !b->v[i].persisted) {
            todo[k] = &b->v[i];
            ps[k++] = b->v[i].res.purchase;
        }
    return k;
}

/* Writes the batch's purchases through lane l (its writer's watch and buffers); waits out
 * Neo4j outages. -1 only when stopping. */
static int persist(struct engine *e, struct lane *l, struct entries *b, const struct metadata *md) {
    watch *ww = l->ww;
    size_t n = b->n ? b->n : 1;
    struct entry **todo = malloc(n * sizeof *todo);
    const record_purchase **ps = malloc(n * sizeof *ps);
    unsigned char *existed = malloc(n);
    int result = -1, attempt = 0;
    size_t k;
    if (!todo || !ps || !existed) goto out;
    while ((k = pending(b, todo, ps)) > 0) {
        bolt_error be;
        int rc = write_split(e, l, md, todo, ps, k, existed, &be);
        watch_done(ww, SERVER_NEO4J, rc != BOLT_OK, rc == BOLT_OK ? "" : be.message);
        if (rc == BOLT_OK) break;
        engine_set_state(e, ww, CONSUMER_STATE_WAITING_NEO4J);
        metrics_inc_counter(e->o.metrics->graph_failures);
        if (engine_wait_to_retry(e, ww, &attempt)) goto out;
    }
    engine_set_state(e, ww, CONSUMER_STATE_RUNNING);
    result = 0;
out:
    free(todo);
    free(ps);
    free(existed);
    return result;
}

/* ------------------------------------------------------------------ after the write */

static void mark_done(struct engine *e, const struct entries *b) {
    size_t n = b->n ? b->n : 1, tlen = strlen(e->o.topic), width = tlen + 2 + 2 * 21;
    const char **ids = malloc(n * sizeof *ids);
    const char **vals = malloc(n * sizeof *vals);
    char *text = malloc(n * width);          /* every value, one after the other */
    size_t k = 0;
    if (!ids || !vals || !text) goto out;
    for (size_t i = 0; i < b->n; i++) {
        const struct entry *x = &b->v[i];
        if (!x->persisted) continue;
        char *v = text + k * width, *w = v + tlen;   /* "<topic>/<partition>/<offset>" */
        memcpy(v, e->o.topic, tlen);
        *w++ = '/';
        w += base_fmt_ll(w, x->rec.partition);
        *w++ = '/';
        base_fmt_ll(w, (long long)x->rec.offset);
        vals[k] = v;
        ids[k++] = x->res.purchase->id;
    }
    if (k) {
        char err[256] = "";
        engine_call(e, engine_watch(e), SERVER_VALKEY);
        int rc = e->d.idem_mark(e->d.ctx, ids, vals, k, err, sizeof err);
        watch_done(engine_watch(e), SERVER_VALKEY, rc != 0, err);
        if (rc != 0) metrics_inc_counter(e->o.metrics->idem_unavailable);
    }
out:
    free(ids);
    free(vals);
    free(text);
}

/* ------------------------------------------------------------------ the three steps */

int engine_prepare(struct engine *e, struct wbatch *b) {
    metrics_observe(e->o.metrics->batch_size, (double)b->b.n);
    return enrich_batch(e, &b->b, &b->md);
}

void engine_commit(struct engine *e, struct lane *l, struct wbatch *b) {
    b->rc = persist(e, l, &b->b, &b->md);
}

int engine_finish(struct engine *e, struct wbatch *b) {
    int rc = b->rc;
    if (rc == 0) rc = engine_dead_letter(e, b->b.v, b->b.n);
    if (rc == 0) {
        mark_done(e, &b->b);
        engine_settle(e, b->b.v, b->b.n);
        engine_store(e);
    } else {
        engine_abandon(e, b->b.v, b->b.n);
        LOG(LOG_WARN, "Batch abandoned at shutdown; it will be read again",
            LOG_STR("consumer", e->o.name), LOG_UINT("records", b->b.n));
    }
    metadata_free(&b->md);
    free(b->b.v);
    free(b);
    return rc;
}
