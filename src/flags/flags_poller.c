/* src/flags/flags_poller.c: the flag poller, one thread over one struct flags_source.
 *
 * Why here: reading the source on a schedule, publishing snapshots and reporting outages is
 * the flag room's job; the worker only wires a source, a store and its metrics (on_poll).
 *
 * How: the thread polls, then sleeps on a condition variable (CLOCK_MONOTONIC) until the
 * next poll or flags_poller_stop. A new snapshot is diffed against the store's current one
 * for the change lines and published; an error leaves the store alone and goes to the
 * caller's on_poll_end (the worker's watch logs outages and stalls of every server alike).
 * The log lines are part of the contract (docs/contract.md §4): their texts must not change.
 */
#include "flags/flags_internal.h"

#include "base/base.h"
#include "log/log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIRST_RETRY_MS_DEFAULT 1000

struct flags_poller {
    struct flags_poller_options o;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;             /* guards stopping and health; with cv wakes the sleep */
    pthread_cond_t cv;
    bool stopping;
    struct flags_poller_health health;
};

void flags_poller_options_init(struct flags_poller_options *o) {
    memset(o, 0, sizeof *o);
    o->first_retry_ms = FIRST_RETRY_MS_DEFAULT;
}

static void log_flag_change(void *ud, const char *name, const char *old_value,
                            const char *new_value) {
    (void)ud;
    char msg[256];
    snprintf(msg, sizeof msg, "FlagPoller: flag=%s changed", name);
    LOG(LOG_INFO, msg, LOG_STR("flag", name), LOG_STR("old", old_value ? old_value : "absent"),
        LOG_STR("new", new_value ? new_value : "absent"));
}

/* Name the gates the worker cannot evaluate, once per snapshot that has them. */
static void warn_unsupported_gates(const struct flags_set *s) {
    for (size_t i = 0; i < flags_count(s); i++) {
        const struct flags_feature *f = flags_feature_at(s, i);
        if (!f->unsupported) continue;
        char gates[128];
        flags_gate_names(f->unsupported, gates, sizeof gates);
        LOG(LOG_WARN, "FlagPoller: gates not evaluated", LOG_STR("flag", f->name),
            LOG_STR("gates", gates));
    }
}

static void publish(struct flags_poller *p, struct flags_set *next) {
    const struct flags_set *old = flags_acquire_current(p->o.store);
    if (old) flags_diff(old, next, log_flag_change, NULL);
    else LOG(LOG_INFO, "FlagPoller: flags loaded", LOG_UINT("features", flags_count(next)));
    if (old) flags_release(old);
    warn_unsupported_gates(next);
    flags_publish(p->o.store, next);
}

static void record_health(struct flags_poller *p, bool ok, const char *err) {
    pthread_mutex_lock(&p->mu);
    p->health.source_ok = ok;
    if (ok) p->health.last_ok_ms = base_wall_ms();
    snprintf(p->health.last_error, sizeof p->health.last_error, "%s", ok ? "" : err);
    pthread_mutex_unlock(&p->mu);
}

/* One poll: 1 when a new snapshot was published, 0 when unchanged, -1 on failure (the last
 * snapshot stays in force). */
static int poll_once(struct flags_poller *p) {
    char err[512] = "";
    struct flags_set *next = NULL;
    if (p->o.on_poll_start) p->o.on_poll_start(p->o.hooks_ud);
    int rc = p->o.source.poll(p->o.source.impl, &next, err, sizeof err);
    assert(rc == 1 ? next != NULL : next == NULL);
    record_health(p, rc >= 0, err);
    if (p->o.on_poll_end) p->o.on_poll_end(p->o.hooks_ud, rc >= 0, err);
    if (rc == 1) publish(p, next);
    return rc;
}

static long interval_ms(struct flags_poller *p) {
    /* Until the first read succeeds consumers wait, so retry that one quickly. */
    if (!atomic_load(&p->o.store->generation)) return p->o.first_retry_ms;
    long ms = p->o.interval_ms;
    if (p->o.source.suggested_interval_ms) {
        long suggested = p->o.source.suggested_interval_ms(p->o.source.impl);
        if (suggested > ms) ms = suggested;
    }
    return ms;
}

/* Sleeps up to ms; true when the poller is stopping. */
static bool sleep_ms(struct flags_poller *p, long ms) {
    struct timespec until = base_timespec_in(CLOCK_MONOTONIC, ms);
    pthread_mutex_lock(&p->mu);
    while (!p->stopping)
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT) break;
    bool stopping = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return stopping;
}

static bool is_stopping(struct flags_poller *p) {
    pthread_mutex_lock(&p->mu);
    bool stopping = p->stopping;
    pthread_mutex_unlock(&p->mu);
    return stopping;
}

static void *poller_main(void *arg) {
    struct flags_poller *p = arg;
    base_name_thread("cgw-flags", "");
    while (!is_stopping(p)) {
        poll_once(p);
        long wait = interval_ms(p);
        if (p->o.on_wait) p->o.on_wait(p->o.hooks_ud, wait);
        if (sleep_ms(p, wait)) break;
    }
    if (p->o.on_exit) p->o.on_exit(p->o.hooks_ud);
    return NULL;
}

static void close_source(struct flags_source *s) {
    if (s->close && s->impl) s->close(s->impl);
    s->impl = NULL;
}

static int init_sync(struct flags_poller *p) {
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) return -1;
    pthread_mutex_init(&p->mu, NULL);
    return 0;
}

struct flags_poller *flags_poller_start(const struct flags_poller_options *o, char *err, size_t errlen) {
    struct flags_source src = o->source;
    assert(o->store && o->interval_ms > 0 && src.poll);
    struct flags_poller *p = calloc(1, sizeof *p);
    if (!p || init_sync(p) != 0) {
        free(p);
        close_source(&src);
        base_errf(err, errlen, "out of memory");
        return NULL;
    }
    p->o = *o;
    if (p->o.first_retry_ms <= 0) p->o.first_retry_ms = FIRST_RETRY_MS_DEFAULT;
    if (pthread_create(&p->thread, NULL, poller_main, p) != 0) {
        flags_poller_free(p);
        base_errf(err, errlen, "cannot start the flag poller thread");
        return NULL;
    }
    p->started = true;
    return p;
}

void flags_poller_stop(struct flags_poller *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void flags_poller_health(struct flags_poller *p, struct flags_poller_health *out) {
    memset(out, 0, sizeof *out);
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    *out = p->health;
    pthread_mutex_unlock(&p->mu);
}

void flags_poller_free(struct flags_poller *p) {
    if (!p) return;
    flags_poller_stop(p);
    if (p->started) pthread_join(p->thread, NULL);
    close_source(&p->o.source);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
