/* session.c: transaction functions with retries (docs/bolt.md §7).
 *
 * The unit of retry is the whole transaction: borrow a connection, BEGIN, run the user's
 * function, COMMIT. A retryable failure (transient server error such as DeadlockDetected,
 * a lost connection, a routing change) rolls back, returns the connection, and runs the
 * function again on a freshly acquired one. Delays grow x2 from retry_initial_delay_ms
 * with +-20% jitter (Go driver throttler.go), and the whole call gives up once
 * max_retry_time_ms has passed or the driver is cancelled (bolt_driver_cancel). A connection
 * that died mid-transaction is retried without sleeping: the new connection is the remedy,
 * not time.
 *
 * COMMIT whose outcome is unknown (the connection broke before its answer) is not retried
 * unless retry_unknown_commit is set, because a non-idempotent transaction would run twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bolt/driver_internal.h"

static __thread int last_attempts;
static __thread unsigned jitter_seed;

int bolt_session_last_attempts(void) { return last_attempts; }

static int is_lost_connection(int code) {
    return code == BOLT_EIO || code == BOLT_ETIMEDOUT || code == BOLT_EDEFUNCT ||
           code == BOLT_ECOMMIT_UNKNOWN;
}

static int64_t jittered(int64_t delay) {
    if (!jitter_seed) jitter_seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&jitter_seed;
    double f = 0.8 + 0.4 * ((double)rand_r(&jitter_seed) / RAND_MAX);
    return (int64_t)((double)delay * f);
}

/* Tells the routing layer what the failure says about the server it happened on. */
static void note_failure(bolt_driver *d, const char *db, const char *address,
                         const bolt_error *e) {
    if (!address[0]) return;
    if (is_lost_connection(e->code) ||
        !strcmp(e->neo4j_code, "Neo.TransientError.General.DatabaseUnavailable"))
        driver_forget(d, db, address, 0);
    else if (!strcmp(e->neo4j_code, "Neo.ClientError.Cluster.NotALeader") ||
             !strcmp(e->neo4j_code, "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase"))
        driver_forget(d, db, address, 1);
}

/* What one try needs; which fields are used depends on the kind of work. */
typedef struct work {
    const bolt_tx_opts *opts;
    int read_only;
    bolt_work_fn fn;           /* transaction function, or NULL for a batch */
    void *ud;
    const char *query;         /* batch */
    const bolt_enc *params;
    bolt_summary *summary;
} work;

static void bookmark_summary(bolt_summary *s, const bolt_conn *c) {
    memset(s, 0, sizeof *s);
    s->t_first = s->t_last = -1;
    snprintf(s->bookmark, sizeof s->bookmark, "%s", bolt_conn_last_bookmark(c));
}

/* BEGIN, fn, COMMIT (or ROLLBACK) on a borrowed connection. */
static int run_fn(bolt_conn *c, const work *w, bolt_error *err) {
    bolt_tx_opts o = w->opts ? *w->opts : (bolt_tx_opts){0};
    o.read_only = w->read_only;
    int rc = bolt_begin(c, &o, err);
    if (rc) return rc;
    bolt_error_clear(err);
    rc = w->fn(c, w->ud, err);
    if (rc) {
        if (err->code == BOLT_OK)
            bolt_err(err, BOLT_ECALLBACK, "transaction function failed (%d)", rc);
        if (!bolt_conn_is_defunct(c)) bolt_rollback(c, NULL);
        return rc;
    }
    rc = bolt_commit(c, err);
    if (!rc && w->summary) bookmark_summary(w->summary, c);
    return rc;
}

/* One try: acquire, the work, release. */
static int attempt(bolt_driver *d, const work *w, char *address, bolt_error *err) {
    bolt_conn *c;
    const char *db = w->opts ? w->opts->db : NULL;
    address[0] = 0;
    int rc = bolt_driver_acquire(d, db, w->read_only, &c, err);
    if (rc) return rc;
    snprintf(address, 300, "%s", bolt_conn_address(c));
    if (w->fn) rc = run_fn(c, w, err);
    else rc = bolt_run_batch(c, w->query, w->params, w->opts, w->summary, err);
    bolt_driver_release(d, c);
    return rc;
}

static int is_deadlock(const bolt_error *e) {
    return !strcmp(e->neo4j_code, "Neo.TransientError.Transaction.DeadlockDetected");
}

static int retry_loop(bolt_driver *d, const work *w, bolt_error *err, int *attempts,
                      int *deadlocks) {
    const bolt_config *cfg = &driver_settings(d)->cfg;
    bolt_error local;
    if (!err) err = &local;
    int64_t start = bolt_now_ms(), deadline = start + cfg->max_retry_time_ms;
    int64_t delay = cfg->retry_initial_delay_ms > 0 ? cfg->retry_initial_delay_ms : 1000;
    char address[300];
    for (;;) {
        (*attempts)++;
        int rc = attempt(d, w, address, err);
        if (rc == BOLT_OK) return BOLT_OK;
        *deadlocks += is_deadlock(err);
        int retry = err->retryable ||
                    (rc == BOLT_ECOMMIT_UNKNOWN && cfg->retry_unknown_commit);
        if (!retry) return rc;
        note_failure(d, w->opts ? w->opts->db : NULL, address, err);
        int64_t now = bolt_now_ms();
        if (now >= deadline || driver_cancelled(d)) return rc;
        if (!is_lost_connection(rc)) {
            int64_t pause = jittered(delay);
            driver_sleep(d, pause < deadline - now ? pause : deadline - now);
            delay *= 2;
        }
    }
}

/* The attempts made go into the caller's summary (when it passed one), success or not. */
static int run_with_retries(bolt_driver *d, const work *w, bolt_error *err) {
    int attempts = 0, deadlocks = 0;
    int rc = retry_loop(d, w, err, &attempts, &deadlocks);
    last_attempts = attempts;
    if (w->summary) {
        w->summary->attempts = attempts;
        w->summary->deadlocks = deadlocks;
    }
    return rc;
}

int bolt_session_write(bolt_driver *d, const bolt_tx_opts *opts, bolt_work_fn fn, void *ud,
                       bolt_summary *commit_summary, bolt_error *err) {
    work w = {.opts = opts, .fn = fn, .ud = ud, .summary = commit_summary};
    return run_with_retries(d, &w, err);
}

int bolt_session_read(bolt_driver *d, const bolt_tx_opts *opts, bolt_work_fn fn, void *ud,
                      bolt_error *err) {
    work w = {.opts = opts, .read_only = 1, .fn = fn, .ud = ud};
    return run_with_retries(d, &w, err);
}

int bolt_session_write_batch(bolt_driver *d, const bolt_tx_opts *opts, const char *query,
                             const bolt_enc *params, bolt_summary *summary, bolt_error *err) {
    work w = {.opts = opts, .query = query, .params = params, .summary = summary};
    return run_with_retries(d, &w, err);
}
