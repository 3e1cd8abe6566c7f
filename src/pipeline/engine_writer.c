/* src/pipeline/engine_writer.c: the writer threads of a batch engine, so that the Neo4j
 * transaction of batch N runs while the consumer thread polls, decodes, filters and enriches
 * batch N+1 (engine.h, engine_internal.h).
 *
 * Why. One transaction at a time on the consumer thread left Neo4j idle while the worker
 * polled and enriched, and the worker idle while Neo4j wrote (issue 14: 55-66 % of the
 * machine busy). And one transaction at a time per consumer leaves a Neo4j with cores to spare
 * idle too: two writers took the write-only ceiling from 1 153 to 1 725 purchases/s on the
 * 2-core machine (bench/e2e/README.md), hence consumers.<name>.writers.
 *
 * How. One writer per lane (engine_internal.h): one batch at most in its hands (job), and one
 * finished batch (done) waiting for the consumer thread, which does everything around the
 * transaction itself (dead letters, marks, offsets: engine_finish), so the
 * watermark, the dead-letter producer and the idempotency cache stay single-threaded.
 * Handing a lane's batch N+1 over first waits until its writer is free and finishes batch N:
 * one transaction in flight per lane, a lane's batches written in the order they were cut,
 * and every partition in one lane, so its writes stay in order; memory bounded by two
 * batches per lane and the records they hold back. Each writer has its own watch and state in
 * the consumer's status (write_watch[i], write_state[i]), the writers of a consumer sharing
 * the first one's outage latches: a stalled transaction shows waiting_for_neo4j, and an
 * outage logs one start and one end line. The consumer thread, while it waits for a writer,
 * refreshes its own watch's idle deadline every second: it is not the one stuck.
 *
 * Without writer threads (engine_options.writer_thread false: the unit tests) a batch is
 * prepared, committed and finished in one go on the caller's thread.
 */
#include "pipeline/engine_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

#define WAIT_STEP_MS 1000
#define IDLE_WRITER_MS (24L * 3600 * 1000)

/* ------------------------------------------------------------------ the writer thread */

static void *writer_main(void *arg) {
    struct lane *l = arg;
    struct writer *w = &l->w;
    char prefix[16];
    snprintf(prefix, sizeof prefix, "cgw-w%d-", l->index);
    base_name_thread(prefix, l->e->o.name);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        watch_idle(l->ww, IDLE_WRITER_MS);
        while (!w->job && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job) break;
        struct wbatch *b = w->job;
        pthread_mutex_unlock(&w->mu);
        engine_commit(l->e, l, b);
        pthread_mutex_lock(&w->mu);
        w->job = NULL;
        w->done = b;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    atomic_store(&l->ww->running, false);
    return NULL;
}

static int start_one(struct engine *e, struct lane *l) {
    consumer_status *st = e->o.status;
    watch *ww = &st->write_watch[l->index];
    watch_init(ww, e->o.name, st->watch.stall_ms, NULL, NULL);
    /* the consumer watch registered the cgw_server_unavailable gauges; Neo4j's is set here,
     * through the first writer's latches (watch.latch), which the others share */
    memcpy(ww->unavailable, st->watch.unavailable, sizeof st->watch.unavailable);
    ww->latch = l->index ? &st->write_watch[0] : NULL;
    atomic_store(&st->write_state[l->index], CONSUMER_STATE_RUNNING);
    l->ww = ww;
    pthread_mutex_init(&l->w.mu, NULL);
    pthread_cond_init(&l->w.cv, NULL);
    if (pthread_create(&l->w.thread, NULL, writer_main, l) != 0) {
        pthread_cond_destroy(&l->w.cv);
        pthread_mutex_destroy(&l->w.mu);
        atomic_store(&ww->running, false);
        l->ww = engine_watch(e);
        return -1;
    }
    l->w.started = true;
    return 0;
}

int engine_writer_start(struct engine *e, char *err, size_t errlen) {
    for (size_t i = 0; i < e->nlanes; i++)
        if (start_one(e, &e->lane[i]) != 0)
            return base_errf(err, errlen, "cannot start the %s writer threads", e->o.name);
    return 0;
}

static void stop_one(struct engine *e, struct lane *l) {
    struct writer *w = &l->w;
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
    if (w->done) {                 /* not finished by the consumer thread: abandoned */
        idset_clear(&l->flight_ids);
        w->done->rc = -1;
        engine_finish(e, w->done);
        w->done = NULL;
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

void engine_writer_stop(struct engine *e) {
    for (size_t i = 0; i < e->nlanes; i++) stop_one(e, &e->lane[i]);
}

/* ------------------------------------------------------------------ the consumer's side */

bool engine_lane_busy(struct lane *l) {
    if (!l->w.started) return false;
    pthread_mutex_lock(&l->w.mu);
    bool busy = l->w.job || l->w.done;
    pthread_mutex_unlock(&l->w.mu);
    return busy;
}

bool engine_writer_busy(struct engine *e) {
    for (size_t i = 0; i < e->nlanes; i++)
        if (engine_lane_busy(&e->lane[i])) return true;
    return false;
}

/* Waits (mutex held) until the lane's writer holds no job; the consumer's watch stays alive. */
static void wait_free(struct engine *e, struct lane *l) {
    while (l->w.job) {
        watch_idle(engine_watch(e), 2 * WAIT_STEP_MS);
        struct timespec until = base_timespec_in(CLOCK_REALTIME, WAIT_STEP_MS);
        int rc = pthread_cond_timedwait(&l->w.cv, &l->w.mu, &until);
        (void)rc;   /* ETIMEDOUT: refresh the watch and wait again */
    }
}

static int reap_one(struct engine *e, struct lane *l) {
    if (!l->w.started) return 0;
    pthread_mutex_lock(&l->w.mu);
    struct wbatch *b = l->w.done;
    l->w.done = NULL;
    pthread_mutex_unlock(&l->w.mu);
    if (!b) return 0;
    idset_clear(&l->flight_ids);   /* before the purchases holding the strings go */
    return engine_finish(e, b);
}

int engine_reap(struct engine *e) {
    int rc = 0;
    for (size_t i = 0; i < e->nlanes; i++)
        if (reap_one(e, &e->lane[i]) != 0) rc = -1;
    return rc;
}

int engine_drain(struct engine *e) {
    int rc = 0;
    for (size_t i = 0; i < e->nlanes; i++) {
        struct lane *l = &e->lane[i];
        if (!l->w.started) continue;
        pthread_mutex_lock(&l->w.mu);
        wait_free(e, l);
        pthread_mutex_unlock(&l->w.mu);
        if (reap_one(e, l) != 0) rc = -1;
    }
    return rc;
}

/* The lane's open batch's purchases moved into a new write batch; the open one is empty. */
static struct wbatch *cut(struct lane *l) {
    struct wbatch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->b = l->open;
    l->open = (struct entries){0};
    return b;
}

/* The open batch's ids become the writer's batch's (the previous one is finished). */
static void swap_ids(struct lane *l) {
    struct idset t = l->flight_ids;
    l->flight_ids = l->ids;
    l->ids = t;
    idset_clear(&l->ids);
}

/* The writer gets b as soon as it is free, and only then does the consumer thread finish the
 * batch it wrote before (dead letters, marks, offsets): Neo4j does not wait for that
 * (issue 14: ~15 ms a batch of 500 purchases). */
static int give(struct engine *e, struct lane *l, struct wbatch *b) {
    pthread_mutex_lock(&l->w.mu);
    wait_free(e, l);
    struct wbatch *prev = l->w.done;
    l->w.done = NULL;
    idset_clear(&l->flight_ids);   /* prev's ids: its copies are duplicates no more */
    swap_ids(l);
    l->w.job = b;
    pthread_cond_broadcast(&l->w.cv);
    pthread_mutex_unlock(&l->w.mu);
    return prev ? engine_finish(e, prev) : 0;
}

int engine_hand_off(struct engine *e, struct lane *l) {
    struct wbatch *b = cut(l);
    if (!b) return 0;   /* out of memory: the batch stays open, tried again at the next cut */
    if (engine_prepare(e, b) != 0) {
        b->rc = -1;
        idset_clear(&l->ids);
        engine_finish(e, b);
        return -1;
    }
    if (l->w.started) return give(e, l, b);
    engine_commit(e, l, b);
    idset_clear(&l->ids);
    return engine_finish(e, b);
}
