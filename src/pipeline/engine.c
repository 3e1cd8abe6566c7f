/* src/pipeline/engine.c: the batch engine's intake (engine.h): each record taken is decoded
 * and filtered, checked against the rollout flag and for duplicates, and either settled at
 * once (skipped, or an error once dead-lettered) or gathered as a purchase into the open
 * write batch, which engine_write.c writes when it holds batch_size purchases or
 * batch_max_bytes, or linger_ms after its first purchase.
 *
 * Records come in chunks: what the thread polled until Kafka had nothing more at once, or
 * batch_size records. A chunk is processed stage by stage, as a batch was before:
 *
 *   decode + filter (record_decode_*)    errors and skips are final: logged, counted;
 *                                        a factoid's schema id waits for the registry
 *   rollout flag per user                skip not_in_rollout
 *   duplicates: in the chunk and the open write batch, then the idempotency cache
 *                                        (Valkey; best effort: down, every record goes on)
 *   dead letters of the chunk's errors   the partition waits while the topic cannot be written
 *   settle skips and errors              their offsets stored as the watermark allows
 *   purchases into the open write batch  written (engine_write.c) whenever it is full
 *   of their partition's lane
 *
 * Lanes (engine_options.writers): each partition is given to one lane, the one with the
 * fewest partitions when its first purchase comes, until it is revoked; each lane has its
 * own open batch and writer, so several transactions may be in flight while each partition's
 * writes keep their order. One lane (the default) is the single open batch of before.
 *
 * A purchase that repeats one in an open write batch, or in one being written, is its
 * duplicate, as it would be had it come after that batch was written and marked.
 */
#include "pipeline/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define DEFAULT_MAX_TRACKED 262144
#define POLL_MS_MAX 500
#define POLL_MS_WRITING 20

#include "base/base.h"

const char *const consumer_dlq_reasons[CONSUMER_DLQ_REASONS] = {
    "undecodable", "invalid_string", "id_too_long", "schema_refused", "neo4j_refused"};

void engine_options_init(struct engine_options *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 500;
    o->linger_ms = 200;
    o->batch_max_bytes = 1048576;
    for (int s = 0; s < SERVER_COUNT; s++) o->budget_ms[s] = 30000;
}

/* ------------------------------------------------------------------ small parts */

watch *engine_watch(struct engine *e) { return &e->o.status->watch; }

/* The consumer thread's state is the consumer's; a writer's is its write_state, which the
 * status page shows while the consumer thread itself is running. */
void engine_set_state(struct engine *e, watch *w, consumer_state s) {
    if (w == engine_watch(e)) {
        status_set_state(e->o.status, s, base_wall_ms());
        return;
    }
    for (size_t i = 0; i < e->nlanes; i++)
        if (w == e->lane[i].ww) atomic_store(&e->o.status->write_state[i], (int)s);
}

void engine_call(struct engine *e, watch *w, server s) {
    watch_call(w, s, e->o.budget_ms[s]);
}

bool engine_wait_to_retry(struct engine *e, watch *w, int *attempt) {
    long ms = base_backoff_ms((*attempt)++, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
    watch_idle(w, ms);
    return e->d.sleep(e->d.ctx, ms);
}

static struct entry *push(struct entries *l) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct entry *v = realloc(l->v, cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    memset(&l->v[l->n], 0, sizeof l->v[l->n]);
    return &l->v[l->n++];
}

static void release_record(struct engine *e, struct entry *x) {
    if (x->rec.handle) e->d.release(e->d.ctx, x->rec.handle);
    x->rec.handle = NULL;
    x->rec.key = x->rec.value = NULL;
}

/* ------------------------------------------------------------------ ids of the open batches */

void idset_clear(struct idset *s) {
    if (s->slot) memset(s->slot, 0, s->cap * sizeof *s->slot);
    s->n = 0;
}

static bool idset_has(const struct idset *s, const char *id) {
    if (!s->n) return false;
    for (size_t i = base_hash_str(id) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) return false;
        if (!strcmp(s->slot[i], id)) return true;
    }
}

static int idset_grow(struct idset *s) {
    struct idset big = {calloc(s->cap ? 2 * s->cap : 256, sizeof(char *)),
                        s->cap ? 2 * s->cap : 256, 0};
    if (!big.slot) return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i]) idset_add(&big, s->slot[i]);
    free(s->slot);
    *s = big;
    return 0;
}

/* Adds id (borrowed); -1 when out of memory. */
int idset_add(struct idset *s, const char *id) {
    if (2 * (s->n + 1) > s->cap && idset_grow(s) != 0) return -1;
    size_t i = base_hash_str(id) & (s->cap - 1);
    while (s->slot[i] && strcmp(s->slot[i], id)) i = (i + 1) & (s->cap - 1);
    if (!s->slot[i]) s->n++;
    s->slot[i] = id;
    return 0;
}

/* ------------------------------------------------------------------ settling */

/* The held lines go out first: once an offset is stored librdkafka may commit it at any
 * moment (from its own thread), and a skip line still held when the worker is killed would
 * then be lost for good, its record never read again. Lines are at-least-once like the
 * records. ([SUCCESS] lines are written when their transaction commits: engine_write.c.) */
void engine_store(struct engine *e) {
    struct engine_offset o[64];
    size_t n;
    log_flush();
    while ((n = watermark_take(e->wm, o, 64)) > 0) e->d.store_offsets(e->d.ctx, o, n);
}

void engine_settle(struct engine *e, struct entry *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        watermark_settle(e->wm, v[i].rec.partition, v[i].rec.offset);
        record_purchase_free(v[i].res.purchase);
        v[i].res.purchase = NULL;
        release_record(e, &v[i]);
    }
}

void engine_abandon(struct engine *e, struct entry *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        record_purchase_free(v[i].res.purchase);
        v[i].res.purchase = NULL;
        release_record(e, &v[i]);
    }
}

/* ------------------------------------------------------------------ decode and filter */

static void key_text(const struct entry *x, char key[128]) {
    size_t n = x->rec.key ? (x->rec.key_len < 127 ? x->rec.key_len : 127) : 0;
    if (n) memcpy(key, x->rec.key, n);
    key[n] = '\0';                         /* a NUL byte in the key ends it, as "%.*s" did */
}

/* A factoid of another source or type is the factoid topic's ordinary traffic (nine records
 * in ten in production), not a warning: those skips are DEBUG lines, counted all the same
 * (cgw_records_skipped_total{reason}). At WARN they were 90 % of the worker's log volume and a
 * quarter of its CPU on a factoid backlog (issue 14). Every other skip stays WARN, and every
 * skipped receipt (contract §7). */
static enum log_level skip_level(const struct engine *e, record_reason r) {
    bool ordinary = e->o.factoids && (r == RECORD_REASON_SOURCE || r == RECORD_REASON_TYPE);
    return ordinary ? LOG_DEBUG : LOG_WARN;
}

static void log_skip(struct engine *e, const struct entry *x) {
    enum log_level level = skip_level(e, x->res.reason);
    if (!log_enabled(level)) return;
    char key[128];
    key_text(x, key);
    const char *msg = !e->o.factoids        ? "[WARN] Skipping receipt"
                      : level == LOG_WARN ? "[WARN] Skipping factoid"
                                          : "Skipping factoid";
    LOG(level, msg,
        LOG_STR("consumer", e->o.name), LOG_STR("reason", record_reason_name(x->res.reason)),
        LOG_STR("key", key), LOG_STR("detail", x->res.detail),
        LOG_INT("partition", x->rec.partition), LOG_INT("offset", x->rec.offset));
}

static void skip(struct engine *e, struct entry *x, record_reason reason) {
    x->res.status = RECORD_SKIP;
    x->res.reason = reason;
    record_purchase_free(x->res.purchase);
    x->res.purchase = NULL;
    metrics_inc_counter(e->o.metrics->skipped[reason]);
    log_skip(e, x);
}

static void refuse_schema(struct entry *x, const char *why) {
    record_purchase_free(x->res.purchase);
    x->res.purchase = NULL;
    x->res.status = RECORD_ERROR;
    x->res.shop_order_finalized = 0;
    x->res.fido_count_mismatch = 0;
    snprintf(x->res.error, sizeof x->res.error, "schema id %d refused: %.200s",
             (int)x->res.schema_id, why);
    x->dlq_reason = "schema_refused";
}

/* A factoid's schema id must be one the registry (or the allowlist) accepts; a refused id
 * makes the record an error. While the registry cannot answer for an id it has not seen, the
 * record waits: -1 only when the worker stops meanwhile. */
static int check_schema(struct engine *e, struct entry *x) {
    int attempt = 0;
    for (;;) {
        char why[256] = "";
        engine_call(e, engine_watch(e), SERVER_REGISTRY);
        registry_verdict v = e->d.schema_check(e->d.ctx, x->res.schema_id, why, sizeof why);
        watch_done(engine_watch(e), SERVER_REGISTRY, v == REGISTRY_UNAVAILABLE, why);
        if (v == REGISTRY_ACCEPTED) return 0;
        if (v == REGISTRY_REFUSED) {
            refuse_schema(x, why);
            return 0;
        }
        engine_set_state(e, engine_watch(e), CONSUMER_STATE_WAITING_REGISTRY);
        if (engine_wait_to_retry(e, engine_watch(e), &attempt)) return -1;
    }
}

static void count_decoded(struct engine *e, struct entry *x) {
    consumer_metrics *m = e->o.metrics;
    metrics_inc_counter(m->consumed);
    if (x->res.shop_order_finalized)
        LOG(LOG_INFO, "[INFO] Shop order received", LOG_STR("consumer", e->o.name),
            LOG_STR("order_id", x->res.order_id), LOG_INT("fido_count", x->res.fido_count),
            LOG_INT("partition", x->rec.partition), LOG_INT("offset", x->rec.offset));
    if (x->res.fido_count_mismatch) metrics_inc_counter(m->fido_count_mismatch);
    if (x->res.status == RECORD_ERROR) {
        if (!x->dlq_reason) x->dlq_reason = record_error_kind_name(x->res.error_kind);
        metrics_inc_counter(m->errors_decode);
        LOG(LOG_ERROR, "[ERROR] Cannot decode record", LOG_STR("consumer", e->o.name),
            LOG_STR("topic", e->o.topic), LOG_INT("partition", x->rec.partition),
            LOG_INT("offset", x->rec.offset), LOG_STR("error", x->res.error));
    } else if (x->res.status == RECORD_SKIP) {
        metrics_inc_counter(m->skipped[x->res.reason]);
        log_skip(e, x);
    }
}

/* -1 only when the worker stops while the record waits for the schema registry. */
static int decode(struct engine *e, struct entry *x) {
    if (!e->o.factoids) {
        record_decode_receipt(x->rec.value, x->rec.len, &x->res);
    } else {
        record_decode_factoid(x->rec.value, x->rec.len, x->rec.header_schema_id, &x->res);
        if (x->res.status != RECORD_ERROR && check_schema(e, x) != 0) return -1;
    }
    count_decoded(e, x);
    return 0;
}

static void apply_rollout(struct engine *e, struct entry *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i].res.status == RECORD_OK &&
            !e->d.in_rollout(e->d.ctx, v[i].res.purchase->user_id))
            skip(e, &v[i], RECORD_REASON_NOT_IN_ROLLOUT);
}

/* Whether id is a purchase of a lane's open batch or of a batch in a writer's hands. */
static bool in_a_lane(const struct engine *e, const char *id) {
    for (size_t i = 0; i < e->nlanes; i++)
        if (idset_has(&e->lane[i].ids, id) || idset_has(&e->lane[i].flight_ids, id)) return true;
    return false;
}

/* The chunk's purchases still to check; duplicates within the chunk, of an open write batch
 * or of one being written are skipped on the way. Returns how many are left in idx. */
static size_t in_batch_duplicates(struct engine *e, struct entry *v, size_t n, size_t *idx,
                                  const char **ids) {
    struct idset seen = {0};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].res.status != RECORD_OK) continue;
        const char *id = v[i].res.purchase->id;
        if (in_a_lane(e, id) || idset_has(&seen, id)) {
            skip(e, &v[i], RECORD_REASON_DUPLICATE);
            continue;
        }
        idset_add(&seen, id);   /* out of memory: a duplicate is written twice, harmless */
        ids[k] = id;
        idx[k++] = i;
    }
    free(seen.slot);
    return k;
}

static void cached_duplicates(struct engine *e, struct entry *v, const size_t *idx,
                              const char **ids, size_t k) {
    bool *seen = calloc(k, sizeof *seen);
    char err[256] = "";
    if (!seen) return;
    engine_call(e, engine_watch(e), SERVER_VALKEY);
    int rc = e->d.idem_check(e->d.ctx, ids, k, seen, err, sizeof err);
    watch_done(engine_watch(e), SERVER_VALKEY, rc != 0, err);
    if (rc != 0) metrics_inc_counter(e->o.metrics->idem_unavailable);
    for (size_t j = 0; rc == 0 && j < k; j++)
        if (seen[j]) skip(e, &v[idx[j]], RECORD_REASON_DUPLICATE);
    free(seen);
}

static void apply_duplicates(struct engine *e, struct entry *v, size_t n) {
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    size_t k = idx && ids ? in_batch_duplicates(e, v, n, idx, ids) : 0;
    if (k) cached_duplicates(e, v, idx, ids, k);
    free(idx);
    free(ids);
}

/* ------------------------------------------------------------------ dead letters */

int engine_dlq_reason_index(const char *reason) {
    for (int i = 0; i < CONSUMER_DLQ_REASONS; i++)
        if (!strcmp(reason, consumer_dlq_reasons[i])) return i;
    return 0;
}

static void log_dead_letters(struct engine *e, const struct engine_letter *l, size_t k,
                             const struct entry *const *src) {
    for (size_t i = 0; i < k; i++) {
        metrics_inc_counter(e->o.metrics->dead_lettered[engine_dlq_reason_index(l[i].reason)]);
        LOG(LOG_WARN, "Record dead-lettered", LOG_STR("consumer", e->o.name),
            LOG_STR("dlq_topic", e->o.dlq_topic), LOG_STR("reason", l[i].reason),
            LOG_INT("partition", src[i]->rec.partition), LOG_INT("offset", src[i]->rec.offset));
    }
}

static int send_letters(struct engine *e, const struct engine_letter *l, size_t k) {
    int attempt = 0;
    for (;;) {
        char err[512] = "";
        watch_idle(engine_watch(e), 60000);   /* the producer's delivery timeout bounds it */
        int st = e->d.dead_letter(e->d.ctx, l, k, err, sizeof err);
        log_report_outage(&e->dlq_outage, st != 0, LOG_ERROR,
                          "[ERROR] Dead-letter topic cannot be written; partition waits",
                          "Dead-letter topic written again", err);
        if (st == 0) return 0;
        engine_set_state(e, engine_watch(e), CONSUMER_STATE_WAITING_DLQ);
        if (engine_wait_to_retry(e, engine_watch(e), &attempt)) return -1;
    }
}

int engine_dead_letter(struct engine *e, struct entry *v, size_t n) {
    if (!e->d.dead_letter) return 0;
    struct engine_letter *l = calloc(n ? n : 1, sizeof *l);
    const struct entry **src = calloc(n ? n : 1, sizeof *src);
    size_t k = 0;
    int rc = -1;
    if (!l || !src) goto out;
    for (size_t i = 0; i < n; i++)
        if (v[i].res.status == RECORD_ERROR) {
            src[k] = &v[i];
            l[k++] = (struct engine_letter){v[i].rec.handle, v[i].dlq_reason, v[i].res.error};
        }
    rc = k ? send_letters(e, l, k) : 0;
    if (rc == 0) log_dead_letters(e, l, k, src);
out:
    free(l);
    free(src);
    return rc;
}

/* ------------------------------------------------------------------ log_only */

static void log_only_record(struct engine *e, const struct entry *x) {
    const record_purchase *p = x->res.purchase;
    char key[128];
    key_text(x, key);
    const char *outcome = x->res.status == RECORD_OK ? "would_persist"
                          : x->res.status == RECORD_SKIP ? record_reason_name(x->res.reason)
                                                         : "error";
    LOG(LOG_INFO, "[INFO] log_only: record", LOG_STR("consumer", e->o.name),
        LOG_STR("topic", e->o.topic), LOG_INT("partition", x->rec.partition),
        LOG_INT("offset", x->rec.offset), LOG_STR("key", key), LOG_STR("outcome", outcome),
        LOG_STR("purchase_id", p ? p->purchase_id : NULL),
        LOG_STR("user_id", p ? p->user_id : NULL),
        LOG_STR("retailer_id", p ? p->retailer_id : NULL),
        LOG_INT("items_with_fido", p ? (long long)p->nitems : 0),
        LOG_INT("total_cents", p ? p->total_cents : 0));
}

/* ------------------------------------------------------------------ the engine */

struct engine *engine_new(const struct engine_options *o, char *err, size_t errlen) {
    struct engine *e = calloc(1, sizeof *e);
    if (!e || !(e->wm = watermark_new())) {
        free(e);
        base_errf(err, errlen, "out of memory");
        return NULL;
    }
    e->o = *o;
    e->d = o->deps;
    e->nlanes = o->writers < 1 ? 1 : o->writers > STATUS_MAX_WRITERS ? STATUS_MAX_WRITERS
                                                                    : o->writers;
    for (size_t i = 0; i < e->nlanes; i++)   /* without a scratch a lane still writes */
        e->lane[i] = (struct lane){.e = e, .index = (int)i, .ww = engine_watch(e),
                                   .scratch = graph_scratch_new()};
    if (!e->o.max_tracked) e->o.max_tracked = DEFAULT_MAX_TRACKED;
    if (!e->o.batch_size) e->o.batch_size = 1;
    if (o->writer_thread && engine_writer_start(e, err, errlen) != 0) {
        engine_free(e);
        return NULL;
    }
    return e;
}

void engine_free(struct engine *e) {
    if (!e) return;
    engine_writer_stop(e);
    engine_abandon(e, e->chunk.v, e->chunk.n);
    free(e->chunk.v);
    for (size_t i = 0; i < e->nlanes; i++) {
        struct lane *l = &e->lane[i];
        engine_abandon(e, l->open.v, l->open.n);
        free(l->open.v);
        free(l->ids.slot);
        free(l->flight_ids.slot);
        graph_scratch_free(l->scratch);
    }
    free(e->lane_of);
    watermark_free(e->wm);
    free(e);
}

static bool tracking(const struct engine *e) {
    return !e->o.log_only || e->o.log_only_commit_offsets;
}

bool engine_add(struct engine *e, const struct engine_record *r) {
    struct entry *x = push(&e->chunk);
    if (!x || (tracking(e) && watermark_track(e->wm, r->partition, r->offset) != 0)) {
        /* Out of memory: a record the watermark does not know could be committed past, so
         * the process ends here; its restart reads it again from the committed offsets. */
        LOG(LOG_ERROR, "[ERROR] Out of memory taking a record; exiting",
            LOG_STR("consumer", e->o.name));
        abort();
    }
    x->rec = *r;
    e->chunk.bytes += r->key_len + r->len;
    return e->chunk.n >= e->o.batch_size || e->chunk.bytes >= e->o.batch_max_bytes ||
           watermark_tracked(e->wm) >= e->o.max_tracked;
}

/* log_only: what each record is and would become; settled only when so configured. */
static void run_log_only(struct engine *e, struct entry *v, size_t n) {
    for (size_t i = 0; i < n; i++) log_only_record(e, &v[i]);
    if (!e->o.log_only_commit_offsets) {
        engine_abandon(e, v, n);
        return;
    }
    engine_settle(e, v, n);
    engine_store(e);
}

static bool full(const struct engine *e, const struct lane *l) {
    return l->open.n >= e->o.batch_size || l->open.bytes >= e->o.batch_max_bytes;
}

/* The lane of a partition: the one it was given, else the one with the fewest partitions
 * (it keeps it until revoked, so its writes stay in order). NULL when out of memory. */
static struct lane *lane_of(struct engine *e, int32_t partition) {
    if (e->nlanes == 1) return &e->lane[0];
    size_t p = partition < 0 ? 0 : (size_t)partition;
    if (p >= e->lane_cap) {
        size_t cap = p + 64;
        signed char *v = realloc(e->lane_of, cap);
        if (!v) return NULL;
        memset(v + e->lane_cap, -1, cap - e->lane_cap);
        e->lane_of = v;
        e->lane_cap = cap;
    }
    if (e->lane_of[p] < 0) {
        size_t best = 0;
        for (size_t i = 1; i < e->nlanes; i++)
            if (e->lane[i].npartitions < e->lane[best].npartitions) best = i;
        e->lane_of[p] = (signed char)best;
        e->lane[best].npartitions++;
    }
    return &e->lane[e->lane_of[p]];
}

static void forget_lane(struct engine *e, int32_t partition) {
    size_t p = partition < 0 ? 0 : (size_t)partition;
    if (p >= e->lane_cap || e->lane_of[p] < 0) return;
    e->lane[e->lane_of[p]].npartitions--;
    e->lane_of[p] = -1;
}

/* The purchase x joins its lane's open batch (its record kept only for the dead-letter
 * topic); the batch is written when full. -1 when stopping meanwhile. */
static int gather(struct engine *e, struct entry *x) {
    if (!e->d.dead_letter) release_record(e, x);
    struct lane *l = lane_of(e, x->rec.partition);
    struct entry *y = l ? push(&l->open) : NULL;
    if (!y || idset_add(&l->ids, x->res.purchase->id) != 0) {
        if (y) l->open.n--;
        engine_abandon(e, x, 1);   /* out of memory: unsettled, read again after a restart */
        return 0;
    }
    *y = *x;
    memset(x, 0, sizeof *x);
    if (l->open.n == 1) l->open.first_ms = e->d.now_ms(e->d.ctx);
    l->open.bytes += y->rec.key_len + y->rec.len;
    return full(e, l) ? engine_hand_off(e, l) : 0;
}

/* Settles the chunk's skips and errors, then gathers its purchases. */
static int settle_chunk(struct engine *e, struct entry *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (v[i].res.status != RECORD_OK) engine_settle(e, &v[i], 1);
    engine_store(e);
    for (size_t i = 0; i < n; i++)
        if (v[i].res.purchase && gather(e, &v[i]) != 0) {
            engine_abandon(e, v + i, n - i);
            return -1;
        }
    return 0;
}

static int process_chunk(struct engine *e, struct entry *v, size_t n) {
    size_t i = 0;
    while (i < n && decode(e, &v[i]) == 0) i++;
    if (i < n) return -1;
    if (e->o.log_only) {
        run_log_only(e, v, n);
        return 0;
    }
    apply_rollout(e, v, n);
    apply_duplicates(e, v, n);
    if (engine_dead_letter(e, v, n) != 0) return -1;
    return settle_chunk(e, v, n);
}

static bool lingered(struct engine *e, const struct lane *l) {
    return l->open.n &&
           e->d.now_ms(e->d.ctx) - l->open.first_ms >= e->o.linger_ms;
}

/* Whether a lane's open batch goes to its writer now. Lingered, it waits while the writer
 * is busy, gathering more: nothing is gained by cutting it before the writer can take it. */
static bool cut_now(struct engine *e, struct lane *l, bool flush) {
    if (!l->open.n) return false;
    if (flush || full(e, l) || e->d.stopping(e->d.ctx) ||
        watermark_tracked(e->wm) >= e->o.max_tracked)
        return true;
    return lingered(e, l) && !engine_lane_busy(l);
}

static int take_chunk(struct engine *e) {
    struct entries c = e->chunk;
    e->chunk = (struct entries){0};
    int rc = c.n ? process_chunk(e, c.v, c.n) : 0;
    if (rc != 0) {
        engine_abandon(e, c.v, c.n);
        LOG(LOG_WARN, "Batch abandoned at shutdown; it will be read again",
            LOG_STR("consumer", e->o.name), LOG_UINT("records", c.n));
    }
    free(c.v);
    return rc;
}

static int step(struct engine *e, bool flush) {
    int rc = engine_reap(e);
    if (rc == 0) rc = take_chunk(e);
    for (size_t i = 0; rc == 0 && i < e->nlanes; i++)
        if (cut_now(e, &e->lane[i], flush)) rc = engine_hand_off(e, &e->lane[i]);
    /* records held back behind the writer's batch at their bound: no more polls until it is
     * done (memory stays bounded through a Neo4j outage) */
    if (rc == 0 && (flush || watermark_tracked(e->wm) >= e->o.max_tracked)) rc = engine_drain(e);
    if (rc == 0) engine_set_state(e, engine_watch(e), CONSUMER_STATE_RUNNING);
    return rc;
}

/* One step of the consumer thread. Its per-record lines (skips) are held and
 * written a few kilobytes at a time (log.h); every call or wait inside goes through the
 * watch, which writes them out first. */
static int run(struct engine *e, bool flush) {
    log_hold();
    int rc = step(e, flush);
    log_release();
    return rc;
}

int engine_run(struct engine *e) { return run(e, false); }

int engine_flush(struct engine *e) { return run(e, true); }

/* How long a lane lets the thread poll, at most max_ms. */
static long lane_poll_ms(struct engine *e, struct lane *l, long max_ms) {
    if (!l->open.n) return max_ms;
    long long left = l->open.first_ms + e->o.linger_ms - e->d.now_ms(e->d.ctx);
    if (left <= 0) return engine_lane_busy(l) ? max_ms : 0;   /* lingered: waits for its writer */
    return left < max_ms ? (long)left : max_ms;
}

long engine_poll_ms(struct engine *e, long max_ms) {
    if (e->chunk.n) return 0;
    /* a batch in a writer's hands: back soon to finish it and hand over the next */
    long cap = engine_writer_busy(e) ? POLL_MS_WRITING : POLL_MS_MAX;
    if (max_ms > cap) max_ms = cap;
    for (size_t i = 0; i < e->nlanes; i++) max_ms = lane_poll_ms(e, &e->lane[i], max_ms);
    return max_ms;
}

static bool revoked(int32_t partition, const int32_t *partitions, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (partitions[i] == partition) return true;
    return false;
}

/* Abandons l's records of the partitions; keeps the others in order. */
static void drop_partitions(struct engine *e, struct entries *l, const int32_t *parts,
                            size_t np) {
    size_t w = 0;
    l->bytes = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (revoked(l->v[i].rec.partition, parts, np)) {
            engine_abandon(e, &l->v[i], 1);
            continue;
        }
        l->bytes += l->v[i].rec.key_len + l->v[i].rec.len;
        l->v[w++] = l->v[i];
    }
    l->n = w;
}

static void rebuild_ids(struct lane *l) {
    idset_clear(&l->ids);
    for (size_t i = 0; i < l->open.n; i++) idset_add(&l->ids, l->open.v[i].res.purchase->id);
}

void engine_revoke(struct engine *e, const int32_t *partitions, size_t n) {
    drop_partitions(e, &e->chunk, partitions, n);
    for (size_t i = 0; i < e->nlanes; i++) {
        drop_partitions(e, &e->lane[i].open, partitions, n);
        rebuild_ids(&e->lane[i]);
    }
    for (size_t i = 0; i < n; i++) {
        watermark_drop(e->wm, partitions[i]);
        forget_lane(e, partitions[i]);
    }
}

void engine_reset(struct engine *e) {
    engine_drain(e);   /* the writer's batch holds records of the handle too */
    engine_abandon(e, e->chunk.v, e->chunk.n);
    e->chunk.n = e->chunk.bytes = 0;
    for (size_t i = 0; i < e->nlanes; i++) {
        struct lane *l = &e->lane[i];
        engine_abandon(e, l->open.v, l->open.n);
        l->open.n = l->open.bytes = 0;
        l->npartitions = 0;
        idset_clear(&l->ids);
    }
    if (e->lane_of) memset(e->lane_of, -1, e->lane_cap);
    watermark_free(e->wm);
    e->wm = watermark_new();
    if (!e->wm) abort();   /* a few bytes; without it offsets cannot be kept */
}

size_t engine_pending(const struct engine *e) { return watermark_tracked(e->wm); }

size_t engine_open_purchases(const struct engine *e) {
    size_t n = 0;
    for (size_t i = 0; i < e->nlanes; i++) n += e->lane[i].open.n;
    return n;
}
