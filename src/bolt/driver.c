/* driver.c: connection pools per server and routing tables per database.
 *
 * Pools: one per server address, each a LIFO of idle connections plus an in-use count,
 * bounded by max_pool_size, guarded by the driver's single mutex (acquire/release are
 * short; no network I/O ever happens with the mutex held). A caller that finds a pool full
 * waits on the condition variable until a connection comes back or acquire_timeout_ms
 * passes. LIFO keeps the hot connections hot and lets idle ones age, so only connections
 * idle longer than liveness_check_ms pay a RESET round trip on acquire.
 *
 * Routing (neo4j:// schemes, docs/bolt.md §9): a table per database from ROUTE, valid for its
 * ttl. Writers, readers and routers are address lists; picks rotate round-robin. A table is
 * refreshed when expired, when the needed role is empty, or after the session layer
 * reports a lost server or NotALeader (driver_forget). Discovery asks the known routers in
 * turn and falls back to the seed address of the URI.
 *
 * Cancel: an eventfd every socket of the driver polls beside its own; bolt_driver_cancel
 * makes it readable, so blocked reads, writes, connects and retry pauses end at once with
 * BOLT_ECANCELLED and later calls fail before touching the network (shutdown).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bolt/driver_internal.h"

/* ------------------------------------------------------------------ lifecycle */

int bolt_driver_new(const char *uri, const bolt_config *cfg, bolt_driver **out,
                    bolt_error *err) {
    *out = NULL;
    bolt_driver *d = calloc(1, sizeof *d);
    if (!d) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    int rc = bolt_uri_parse(uri, &d->uri, err);
    if (!rc && bolt_settings_init(&d->settings, cfg)) rc = bolt_err(err, BOLT_ENOMEM, "oom");
    if (rc) {
        bolt_uri_free(d->uri);
        free(d);
        return rc;
    }
    if (d->settings.cfg.max_pool_size <= 0) d->settings.cfg.max_pool_size = 16;
    d->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->settings.cancel_fd = d->cancel_fd;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = d;
    return BOLT_OK;
}

static void addr_list_free(addr_list *l) {
    for (int i = 0; i < l->n; i++) free(l->a[i]);
    free(l->a);
    memset(l, 0, sizeof *l);
}

static void table_free(rtable *t) {
    addr_list_free(&t->writers);
    addr_list_free(&t->readers);
    addr_list_free(&t->routers);
    free(t->db);
    free(t);
}

void bolt_driver_free(bolt_driver *d) {
    if (!d) return;
    for (pool *p = d->pools, *next; p; p = next) {
        next = p->next;
        for (int i = 0; i < p->nidle; i++) bolt_conn_close(p->idle[i]);
        free(p->idle);
        free(p->address);
        free(p);
    }
    for (rtable *t = d->tables, *next; t; t = next) {
        next = t->next;
        table_free(t);
    }
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->mu);
    if (d->cancel_fd >= 0) close(d->cancel_fd);
    bolt_settings_free(&d->settings);
    bolt_uri_free(d->uri);
    free(d);
}

/* ------------------------------------------------------------------ cancel */

void bolt_driver_cancel(bolt_driver *d) {
    atomic_store(&d->cancelled, 1);
    uint64_t one = 1;
    if (d->cancel_fd >= 0 && write(d->cancel_fd, &one, sizeof one) < 0) { /* already set */ }
    pthread_mutex_lock(&d->mu);
    pthread_cond_broadcast(&d->cond);   /* callers waiting for a pooled connection */
    pthread_mutex_unlock(&d->mu);
}

int driver_cancelled(bolt_driver *d) { return atomic_load(&d->cancelled); }

void driver_sleep(bolt_driver *d, int64_t ms) {
    if (ms <= 0) return;
    struct pollfd p = {d->cancel_fd, POLLIN, 0};
    int64_t until = bolt_now_ms() + ms;
    for (int64_t left = ms; left > 0 && !driver_cancelled(d); left = until - bolt_now_ms())
        if (poll(&p, d->cancel_fd >= 0 ? 1 : 0, (int)left) > 0) break;
}

/* ------------------------------------------------------------------ pools */

static pool *pool_get(bolt_driver *d, const char *address) {
    for (pool *p = d->pools; p; p = p->next)
        if (!strcmp(p->address, address)) return p;
    pool *p = calloc(1, sizeof *p);
    if (!p || !(p->address = strdup(address))) {
        free(p);
        return NULL;
    }
    p->next = d->pools;
    d->pools = p;
    return p;
}

static void abs_deadline(struct timespec *ts, int64_t deadline_ms) {
    ts->tv_sec = deadline_ms / 1000;
    ts->tv_nsec = (deadline_ms % 1000) * 1000000;
}

static void pool_drop(bolt_driver *d, pool *p) {
    pthread_mutex_lock(&d->mu);
    p->in_use--;
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
}

/* An idle connection is only trusted if it was used recently or survives a RESET. */
static int still_alive(bolt_driver *d, bolt_conn *c) {
    int limit = d->settings.cfg.liveness_check_ms;
    if (bolt_conn_is_defunct(c)) return 0;
    if (limit < 0 || bolt_now_ms() - bolt_conn_idle_since(c) < limit) return 1;
    return bolt_reset(c, NULL) == BOLT_OK;
}

/* Takes an idle connection, or the right to open one (*c NULL), waiting if full. */
static int pool_take(bolt_driver *d, pool *p, bolt_conn **c, bolt_error *err) {
    int64_t deadline = bolt_now_ms() + d->settings.cfg.acquire_timeout_ms;
    *c = NULL;
    for (;;) {
        if (driver_cancelled(d)) return bolt_err(err, BOLT_ECANCELLED, "cancelled");
        if (p->nidle > 0) {
            *c = p->idle[--p->nidle];
            p->in_use++;
            return BOLT_OK;
        }
        if (p->nidle + p->in_use < d->settings.cfg.max_pool_size) {
            p->in_use++;
            return BOLT_OK;
        }
        struct timespec ts;
        abs_deadline(&ts, deadline);
        if (pthread_cond_timedwait(&d->cond, &d->mu, &ts) == ETIMEDOUT &&
            bolt_now_ms() >= deadline)
            return bolt_err(err, BOLT_EPOOL, "no free connection to %s within %d ms",
                            p->address, d->settings.cfg.acquire_timeout_ms);
    }
}

int driver_pool_acquire(bolt_driver *d, const char *address, bolt_conn **out, bolt_error *err) {
    *out = NULL;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        pool *p = pool_get(d, address);
        bolt_conn *c = NULL;
        int rc = p ? pool_take(d, p, &c, err) : bolt_err(err, BOLT_ENOMEM, "out of memory");
        pthread_mutex_unlock(&d->mu);
        if (rc) return rc;
        if (c && !still_alive(d, c)) {
            bolt_conn_close(c);
            pool_drop(d, p);
            continue;
        }
        if (!c) {
            const bolt_uri *ctx = d->uri->routing ? d->uri : NULL;
            rc = bolt_conn_open(&d->settings, address, d->uri->tls, ctx, &c, err);
            if (rc) {
                pool_drop(d, p);
                return rc;
            }
        }
        bolt_conn_set_pool_tag(c, p);
        *out = c;
        return BOLT_OK;
    }
}

void bolt_driver_release(bolt_driver *d, bolt_conn *c) {
    if (!c) return;
    pool *p = bolt_conn_pool_tag(c);
    if (!bolt_conn_is_defunct(c) && bolt_conn_state(c) != BOLT_STATE_READY)
        bolt_reset(c, NULL);   /* a failed RESET leaves it defunct: dropped below */
    pthread_mutex_lock(&d->mu);
    p->in_use--;
    int keep = !bolt_conn_is_defunct(c);
    if (keep) {
        bolt_conn **idle = p->idle;
        if (p->nidle == p->cap) {
            int nc = p->cap ? p->cap * 2 : 4;
            idle = realloc(p->idle, (size_t)nc * sizeof *idle);
            if (idle) {
                p->idle = idle;
                p->cap = nc;
            }
        }
        keep = p->nidle < p->cap;
        if (keep) {
            bolt_conn_set_idle_since(c, bolt_now_ms());
            p->idle[p->nidle++] = c;
        }
    }
    pthread_cond_broadcast(&d->cond);
    pthread_mutex_unlock(&d->mu);
    if (!keep) bolt_conn_close(c);
}

void bolt_driver_pool_stats(bolt_driver *d, int *idle, int *in_use) {
    int i = 0, u = 0;
    pthread_mutex_lock(&d->mu);
    for (pool *p = d->pools; p; p = p->next) {
        i += p->nidle;
        u += p->in_use;
    }
    pthread_mutex_unlock(&d->mu);
    if (idle) *idle = i;
    if (in_use) *in_use = u;
}

/* ------------------------------------------------------------------ routing tables */

static rtable *table_find(bolt_driver *d, const char *db) {
    for (rtable *t = d->tables; t; t = t->next)
        if (!strcmp(t->db, db)) return t;
    return NULL;
}

static int addr_push(addr_list *l, const char *a) {
    char **n = realloc(l->a, (size_t)(l->n + 1) * sizeof *n);
    if (!n) return BOLT_ENOMEM;
    l->a = n;
    if (!(l->a[l->n] = strdup(a))) return BOLT_ENOMEM;
    l->n++;
    return BOLT_OK;
}

static void addr_remove(addr_list *l, const char *a) {
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->a[i], a)) continue;
        free(l->a[i]);
        l->a[i] = l->a[--l->n];
        i--;
    }
}

/* rt = {ttl, db, servers: [{addresses: [..], role: "WRITE"|"READ"|"ROUTE"}]} */
static int table_from_rt(const bolt_value *rt, const char *db, rtable **out, bolt_error *err) {
    rtable *t = calloc(1, sizeof *t);
    if (!t || !(t->db = strdup(db))) {
        free(t);
        return bolt_err(err, BOLT_ENOMEM, "out of memory");
    }
    int64_t ttl = bolt_value_int(bolt_map_get(rt, "ttl"));
    t->expires_ms = bolt_now_ms() + (ttl > 0 ? ttl : 300) * 1000;
    const bolt_value *servers = bolt_map_get(rt, "servers");
    int rc = BOLT_OK;
    for (size_t i = 0; !rc && i < bolt_value_size(servers); i++) {
        const bolt_value *s = bolt_list_get(servers, i);
        const char *role = bolt_value_string(bolt_map_get(s, "role"), NULL);
        addr_list *l = !role ? NULL : !strcmp(role, "WRITE") ? &t->writers
                                   : !strcmp(role, "READ") ? &t->readers
                                   : !strcmp(role, "ROUTE") ? &t->routers : NULL;
        const bolt_value *addrs = bolt_map_get(s, "addresses");
        for (size_t j = 0; l && !rc && j < bolt_value_size(addrs); j++) {
            const char *a = bolt_value_string(bolt_list_get(addrs, j), NULL);
            if (a) rc = addr_push(l, a);
        }
    }
    if (!rc && t->routers.n == 0) rc = bolt_err(err, BOLT_EROUTING, "routing table without routers");
    else if (rc == BOLT_ENOMEM) bolt_err(err, rc, "out of memory");
    if (rc) {
        table_free(t);
        return rc;
    }
    *out = t;
    return BOLT_OK;
}

/* Errors after which asking another router is pointless (Go errorutil/bolt.go). */
static int discovery_fatal(const bolt_error *e) {
    const char *c = e->neo4j_code;
    if (e->code == BOLT_EAUTH) return 1;
    return !strcmp(c, "Neo.ClientError.Database.DatabaseNotFound") ||
           !strncmp(c, "Neo.ClientError.Transaction.InvalidBookmark", 43) ||
           !strcmp(c, "Neo.ClientError.Statement.TypeError") ||
           !strcmp(c, "Neo.ClientError.Statement.ArgumentError") ||
           !strcmp(c, "Neo.ClientError.Request.Invalid") ||
           (!strncmp(c, "Neo.ClientError.Security.", 25) &&
            strcmp(c, "Neo.ClientError.Security.AuthorizationExpired"));
}

static int route_via(bolt_driver *d, const char *router, const char *db, rtable **t,
                     bolt_error *err) {
    bolt_conn *c;
    int rc = driver_pool_acquire(d, router, &c, err);
    if (rc) return rc;
    bolt_value *rt = NULL;
    rc = bolt_conn_route(c, d->uri, db, NULL, 0, &rt, err);
    bolt_driver_release(d, c);
    if (!rc) rc = table_from_rt(rt, db, t, err);
    bolt_value_free(rt);
    return rc;
}

/* Snapshot of the routers to ask: the table's, then the seed. Caller frees. */
static int routers_snapshot(bolt_driver *d, const char *db, addr_list *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&d->mu);
    rtable *t = table_find(d, db);
    int rc = BOLT_OK;
    for (int i = 0; t && !rc && i < t->routers.n; i++) rc = addr_push(out, t->routers.a[i]);
    pthread_mutex_unlock(&d->mu);
    if (!rc) rc = addr_push(out, d->uri->address);
    return rc;
}

static int refresh(bolt_driver *d, const char *db, bolt_error *err) {
    addr_list routers;
    if (routers_snapshot(d, db, &routers)) {
        addr_list_free(&routers);
        return bolt_err(err, BOLT_ENOMEM, "out of memory");
    }
    rtable *t = NULL;
    int rc = BOLT_EROUTING;
    bolt_error last;
    bolt_err(&last, BOLT_EROUTING, "no router reachable for database '%s'", db);
    for (int i = 0; i < routers.n; i++) {
        rc = route_via(d, routers.a[i], db, &t, &last);
        if (!rc || discovery_fatal(&last)) break;
    }
    addr_list_free(&routers);
    if (rc) {
        if (err) *err = last;
        if (!discovery_fatal(&last) && err) {
            err->code = BOLT_EROUTING;
            err->retryable = 1;
        }
        return err ? err->code : rc;
    }
    pthread_mutex_lock(&d->mu);
    rtable **pp = &d->tables;
    while (*pp && strcmp((*pp)->db, db)) pp = &(*pp)->next;
    if (*pp) {
        t->next = (*pp)->next;
        table_free(*pp);
    } else {
        t->next = NULL;
    }
    *pp = t;
    pthread_mutex_unlock(&d->mu);
    return BOLT_OK;
}

/* Picks a server for the role from a fresh table; *addr is malloc'd. Mutex held. */
static int pick(bolt_driver *d, const char *db, int read_only, char **addr) {
    rtable *t = table_find(d, db);
    if (!t || bolt_now_ms() >= t->expires_ms) return 0;
    addr_list *l = read_only ? &t->readers : &t->writers;
    if (l->n == 0) return 0;
    *addr = strdup(l->a[d->rr++ % (unsigned)l->n]);
    return *addr != NULL;
}

static int route(bolt_driver *d, const char *db, int read_only, char **addr, bolt_error *err) {
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_mutex_lock(&d->mu);
        int ok = pick(d, db, read_only, addr);
        pthread_mutex_unlock(&d->mu);
        if (ok) return BOLT_OK;
        if (attempt == 0) {
            int rc = refresh(d, db, err);
            if (rc) return rc;
        }
    }
    return bolt_err(err, BOLT_EROUTING, "no %s server for database '%s'",
                    read_only ? "read" : "write", db);
}

void driver_forget(bolt_driver *d, const char *db, const char *address, int writer_only) {
    if (!d->uri->routing || !address) return;
    pthread_mutex_lock(&d->mu);
    for (rtable *t = d->tables; t; t = t->next) {
        if (writer_only && db && strcmp(t->db, db)) continue;
        addr_remove(&t->writers, address);
        if (writer_only) continue;
        addr_remove(&t->readers, address);
        addr_remove(&t->routers, address);
    }
    pthread_mutex_unlock(&d->mu);
}

int bolt_driver_acquire(bolt_driver *d, const char *db, int read_only, bolt_conn **out,
                        bolt_error *err) {
    *out = NULL;
    if (!d->uri->routing) return driver_pool_acquire(d, d->uri->address, out, err);
    if (!db) db = d->settings.default_db;
    char *addr = NULL;
    int rc = route(d, db, read_only, &addr, err);
    if (rc) return rc;
    rc = driver_pool_acquire(d, addr, out, err);
    if (rc && (rc == BOLT_ECONNECT || rc == BOLT_EIO || rc == BOLT_ETIMEDOUT))
        driver_forget(d, NULL, addr, 0);
    free(addr);
    return rc;
}

const bolt_settings *driver_settings(const bolt_driver *d) { return &d->settings; }
