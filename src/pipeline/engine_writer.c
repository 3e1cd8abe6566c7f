/* src/pipeline/engine_writer.c: the writer thread of a batch engine, so that the Neo4j
 * transaction of batch N runs while the consumer thread polls, decodes, filters and enriches
 * batch N+1 (engine.h, engine_internal.h).
 *
 * Why. One transaction at a time on the consumer thread left Neo4j idle while the worker
 * polled and enriched, and the worker idle while Neo4j wrote (issue 14: 55-66 % of the
 * machine busy).
 *
 * How. One batch at most in the writer's hands (job), and one finished batch (done) waiting
 * for the consumer thread, which does everything around the transaction itself (dead
 * letters, marks, success lines, offsets: engine_finish), so the watermark, the dead-letter
 * producer and the idempotency cache stay single-threaded. Handing over batch N+1 first
 * waits until the writer is free and finishes batch N: one transaction in flight, batches
 * written in the order they were cut (so per partition too), memory bounded by two batches
 * and the records they hold back. The writer has its own watch and state in the consumer's
 * status (write_watch, write_state): a stalled transaction shows waiting_for_neo4j and logs
 * its outage once, as before. The consumer thread, while it waits for the writer, refreshes
 * its own watch's idle deadline every second: it is not the one stuck.
 *
 * Without a writer thread (engine_options.writer_thread false: the unit tests) a batch is
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
    struct engine *e = arg;
    struct writer *w = &e->w;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        watch_idle(e->ww, IDLE_WRITER_MS);
        while (!w->job && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job) break;
        struct wbatch *b = w->job;
        pthread_mutex_unlock(&w->mu);
        engine_commit(e, b);
        pthread_mutex_lock(&w->mu);
        w->job = NULL;
        w->done = b;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    atomic_store(&e->ww->running, false);
    return NULL;
}

int engine_writer_start(struct engine *e, char *err, size_t errlen) {
    consumer_status *st = e->o.status;
    watch_init(&st->write_watch, e->o.name, st->watch.stall_ms, NULL, NULL);
    /* the consumer watch registered the cgw_server_unavailable gauges; Neo4j's is set here */
    memcpy(st->write_watch.unavailable, st->watch.unavailable, sizeof st->watch.unavailable);
    atomic_store(&st->write_state, CONSUMER_STATE_RUNNING);
    e->ww = &st->write_watch;
    pthread_mutex_init(&e->w.mu, NULL);
    pthread_cond_init(&e->w.cv, NULL);
    if (pthread_create(&e->w.thread, NULL, writer_main, e) != 0) {
        pthread_cond_destroy(&e->w.cv);
        pthread_mutex_destroy(&e->w.mu);
        atomic_store(&st->write_watch.running, false);
        e->ww = engine_watch(e);
        return base_errf(err, errlen, "cannot start the %s writer thread", e->o.name);
    }
    e->w.started = true;
    return 0;
}

void engine_writer_stop(struct engine *e) {
    struct writer *w = &e->w;
    if (!w->started) return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = false;
    if (w->done) {                 /* not finished by the consumer thread: abandoned */
        idset_clear(&e->flight_ids);
        w->done->rc = -1;
        engine_finish(e, w->done);
        w->done = NULL;
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* ------------------------------------------------------------------ the consumer's side */

bool engine_writer_busy(struct engine *e) {
    if (!e->w.started) return false;
    pthread_mutex_lock(&e->w.mu);
    bool busy = e->w.job || e->w.done;
    pthread_mutex_unlock(&e->w.mu);
    return busy;
}

/* Waits (mutex held) until the writer holds no job; the consumer's watch stays alive. */
static void wait_free(struct engine *e) {
    while (e->w.job) {
        watch_idle(engine_watch(e), 2 * WAIT_STEP_MS);
        struct timespec until = base_timespec_in(CLOCK_REALTIME, WAIT_STEP_MS);
        int rc = pthread_cond_timedwait(&e->w.cv, &e->w.mu, &until);
        (void)rc;   /* ETIMEDOUT: refresh the watch and wait again */
    }
}

int engine_reap(struct engine *e) {
    if (!e->w.started) return 0;
    pthread_mutex_lock(&e->w.mu);
    struct wbatch *b = e->w.done;
    e->w.done = NULL;
    pthread_mutex_unlock(&e->w.mu);
    if (!b) return 0;
    idset_clear(&e->flight_ids);   /* before the purchases holding the strings go */
    return engine_finish(e, b);
}

int engine_drain(struct engine *e) {
    if (!e->w.started) return 0;
    pthread_mutex_lock(&e->w.mu);
    wait_free(e);
    pthread_mutex_unlock(&e->w.mu);
    return engine_reap(e);
}

/* The open batch's purchases moved into a new write batch; the open one is empty again. */
static struct wbatch *cut(struct engine *e) {
    struct wbatch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->b = e->open;
    e->open = (struct entries){0};
    return b;
}

/* The open batch's ids become the writer's batch's (the previous one is finished). */
static void swap_ids(struct engine *e) {
    struct idset t = e->flight_ids;
    e->flight_ids = e->ids;
    e->ids = t;
    idset_clear(&e->ids);
}

static int give(struct engine *e, struct wbatch *b) {
    pthread_mutex_lock(&e->w.mu);
    wait_free(e);
    pthread_mutex_unlock(&e->w.mu);
    int rc = engine_reap(e);
    swap_ids(e);
    pthread_mutex_lock(&e->w.mu);
    e->w.job = b;
    pthread_cond_broadcast(&e->w.cv);
    pthread_mutex_unlock(&e->w.mu);
    return rc;
}

int engine_hand_off(struct engine *e) {
    struct wbatch *b = cut(e);
    if (!b) return 0;   /* out of memory: the batch stays open, tried again at the next cut */
    if (engine_prepare(e, b) != 0) {
        b->rc = -1;
        idset_clear(&e->ids);
        engine_finish(e, b);
        return -1;
    }
    if (e->w.started) return give(e, b);
    engine_commit(e, b);
    idset_clear(&e->ids);
    return engine_finish(e, b);
}
