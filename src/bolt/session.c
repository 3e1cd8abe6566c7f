/* session.c: transaction functions with retries (brief §A.7).
 *
 * The unit of retry is the whole transaction: borrow a connection, BEGIN, run the user's
 * function, COMMIT. A retryable failure (transient server error such as DeadlockDetected,
 * a lost connection, a routing change) rolls back, returns the connection, and runs the
 * function again on a freshly acquired one. Delays grow x2 from retry_initial_delay_ms
 * with +-20% jitter (Go driver throttler.go), and the whole call gives up once
 * max_retry_time_ms has passed. A connection that died mid-transaction is retried without
 * sleeping: the new connection is the remedy, not time.
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

static void sleep_ms(int64_t ms) {
    if (ms <= 0) return;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {}
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

/* One try: acquire, BEGIN, fn, COMMIT (or ROLLBACK), release. */
static int attempt(bolt_driver *d, const bolt_tx_opts *opts, int read_only, bolt_work_fn fn,
                   void *ud, bolt_summary *commit_summary, char *address, bolt_error *err) {
    bolt_conn *c;
    const char *db = opts && opts->db ? opts->db : NULL;
    address[0] = 0;
    int rc = bolt_driver_acquire(d, db, read_only, &c, err);
    if (rc) return rc;
    snprintf(address, 300, "%s", bolt_conn_address(c));
    bolt_tx_opts o = opts ? *opts : (bolt_tx_opts){0};
    o.read_only = read_only;
    rc = bolt_begin(c, &o, err);
    if (!rc) {
        bolt_error_clear(err);
        rc = fn(c, ud, err);
        if (rc && err && err->code == BOLT_OK)
            bolt_err(err, BOLT_ECALLBACK, "transaction function failed (%d)", rc);
        if (rc) {
            if (!bolt_conn_is_defunct(c)) bolt_rollback(c, NULL);
        } else {
            rc = bolt_commit(c, err);
            if (!rc && commit_summary) {
                memset(commit_summary, 0, sizeof *commit_summary);
                commit_summary->t_first = commit_summary->t_last = -1;
                snprintf(commit_summary->bookmark, sizeof commit_summary->bookmark, "%s",
                         bolt_conn_last_bookmark(c));
            }
        }
    }
    bolt_driver_release(d, c);
    return rc;
}

static int run_with_retries(bolt_driver *d, const bolt_tx_opts *opts, int read_only,
                            bolt_work_fn fn, void *ud, bolt_summary *summary, bolt_error *err) {
    const bolt_config *cfg = &driver_settings(d)->cfg;
    bolt_error local;
    if (!err) err = &local;
    int64_t start = bolt_now_ms(), deadline = start + cfg->max_retry_time_ms;
    int64_t delay = cfg->retry_initial_delay_ms > 0 ? cfg->retry_initial_delay_ms : 1000;
    char address[300];
    last_attempts = 0;
    for (;;) {
        last_attempts++;
        int rc = attempt(d, opts, read_only, fn, ud, summary, address, err);
        if (rc == BOLT_OK) return BOLT_OK;
        int retry = err->retryable ||
                    (rc == BOLT_ECOMMIT_UNKNOWN && cfg->retry_unknown_commit);
        if (!retry) return rc;
        note_failure(d, opts ? opts->db : NULL, address, err);
        int64_t now = bolt_now_ms();
        if (now >= deadline) return rc;
        if (!is_lost_connection(rc)) {
            int64_t pause = jittered(delay);
            sleep_ms(pause < deadline - now ? pause : deadline - now);
            delay *= 2;
        }
    }
}

int bolt_session_write(bolt_driver *d, const bolt_tx_opts *opts, bolt_work_fn fn, void *ud,
                       bolt_summary *commit_summary, bolt_error *err) {
    return run_with_retries(d, opts, 0, fn, ud, commit_summary, err);
}

int bolt_session_read(bolt_driver *d, const bolt_tx_opts *opts, bolt_work_fn fn, void *ud,
                      bolt_error *err) {
    return run_with_retries(d, opts, 1, fn, ud, NULL, err);
}
