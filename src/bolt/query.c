/* query.c: queries, streamed results, a transaction's queries pipelined (bolt_query_many),
 * explicit transactions and the pipelined batch write.
 *
 * A result is a cursor over the records of one RUN. bolt_run queues RUN and the first PULL
 * together and waits only for RUN's SUCCESS (the field names); records are read lazily
 * and a new PULL goes out when the server says has_more. At most one result is open per
 * connection (we always PULL with qid -1), which is what keeps the FIFO matching trivial.
 *
 * Error contract: a FAILURE ends the stream with BOLT_ESERVER (or BOLT_EAUTH), drains the
 * IGNOREDs queued behind it, and leaves the connection FAILED until the next request
 * (which gets a RESET in front of it) or bolt_reset. I/O errors leave it DEFUNCT.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt/conn_internal.h"

/* ------------------------------------------------------------------ encoding helpers */

static int opts_has_meta(const bolt_tx_opts *o) {
    return o && o->tx_metadata && bolt_value_type(o->tx_metadata) == BOLT_MAP &&
           bolt_value_size(o->tx_metadata) > 0;
}

/* The extra map of BEGIN and auto-commit RUN. db is always sent: it saves the server a
 * home-database lookup (docs/bolt.md §11). */
static void enc_tx_extra(bolt_enc *e, const bolt_conn *c, const bolt_tx_opts *o) {
    const char *db = o && o->db ? o->db : c->settings->default_db;
    size_t n = 1;
    if (o) {
        n += (o->nbookmarks > 0) + (o->read_only != 0) + (o->tx_timeout_ms > 0) +
             (o->imp_user != NULL) + opts_has_meta(o);
    }
    bolt_enc_map_begin(e, n);
    bolt_enc_string(e, "db");
    bolt_enc_string(e, db);
    if (!o) return;
    if (o->nbookmarks) {
        bolt_enc_string(e, "bookmarks");
        bolt_enc_list_begin(e, o->nbookmarks);
        for (size_t i = 0; i < o->nbookmarks; i++) bolt_enc_string(e, o->bookmarks[i]);
    }
    if (o->read_only) {
        bolt_enc_string(e, "mode");
        bolt_enc_string(e, "r");
    }
    if (o->tx_timeout_ms > 0) {
        bolt_enc_string(e, "tx_timeout");
        bolt_enc_int(e, o->tx_timeout_ms);
    }
    if (o->imp_user) {
        bolt_enc_string(e, "imp_user");
        bolt_enc_string(e, o->imp_user);
    }
    if (opts_has_meta(o)) {
        bolt_enc_string(e, "tx_metadata");
        bolt_enc_value(e, o->tx_metadata);
    }
}

static int is_map_marker(uint8_t m) { return (m & 0xF0) == 0xA0 || (m >= 0xD8 && m <= 0xDA); }

/* Checked before anything is queued, so a bad argument never leaves half a pipeline. A
 * miscounted streaming encoding would desynchronise the server, not just fail the query.
 * What the encoder's own tracker vouches for (bolt_enc_complete) is not walked again; any
 * other encoding is. */
static int params_ok(const bolt_value *pv, const bolt_enc *pe, bolt_error *err) {
    if (pe && (pe->err || pe->len == 0 || !is_map_marker(pe->p[0]) ||
               (!bolt_enc_complete(pe) && bolt_check_value(pe->p, pe->len, NULL))))
        return bolt_err(err, BOLT_EINVAL, "parameters must be one complete encoded map");
    if (pv && bolt_value_type(pv) != BOLT_MAP)
        return bolt_err(err, BOLT_EINVAL, "parameters must be a map");
    return BOLT_OK;
}

static int queue_run(bolt_conn *c, const char *query, const bolt_value *pv, const bolt_enc *pe,
                     const bolt_tx_opts *opts, bolt_error *err) {
    bolt_enc *e = &c->msg;
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, REQ_TAG_RUN, 3);
    bolt_enc_string(e, query);   /* errors are sticky: conn_queue reports them */
    size_t at = e->len;          /* pre-encoded parameters are spliced in here, not copied */
    if (!pe) {
        if (pv) bolt_enc_value(e, pv);
        else bolt_enc_map_begin(e, 0);
    }
    if (c->in_tx) bolt_enc_map_begin(e, 0);
    else enc_tx_extra(e, c, opts);
    return conn_queue_spliced(c, REQ_RUN, pe, at, err);
}

static int queue_pull(bolt_conn *c, conn_req kind, int64_t n, bolt_error *err) {
    bolt_enc *e = &c->msg;
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, kind == REQ_PULL ? REQ_TAG_PULL : REQ_TAG_DISCARD, 1);
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "n");
    bolt_enc_int(e, n);
    return conn_queue(c, kind, err);
}

static int queue_begin(bolt_conn *c, const bolt_tx_opts *opts, bolt_error *err) {
    bolt_enc_reset(&c->msg);
    bolt_enc_struct_begin(&c->msg, REQ_TAG_BEGIN, 1);
    enc_tx_extra(&c->msg, c, opts);
    return conn_queue(c, REQ_BEGIN, err);
}

/* ------------------------------------------------------------------ summaries */

static const struct { const char *key; size_t off; } counter_keys[] = {
#define K(name, field) {name, offsetof(bolt_counters, field)}
    K("nodes-created", nodes_created), K("nodes-deleted", nodes_deleted),
    K("relationships-created", relationships_created),
    K("relationships-deleted", relationships_deleted), K("properties-set", properties_set),
    K("labels-added", labels_added), K("labels-removed", labels_removed),
    K("indexes-added", indexes_added), K("indexes-removed", indexes_removed),
    K("constraints-added", constraints_added), K("constraints-removed", constraints_removed),
    K("system-updates", system_updates),
#undef K
};

static void parse_counters(bolt_counters *k, const bolt_value *stats) {
    for (size_t i = 0; i < sizeof counter_keys / sizeof counter_keys[0]; i++) {
        const bolt_value *v = bolt_map_get(stats, counter_keys[i].key);
        if (v) *(int64_t *)((char *)k + counter_keys[i].off) = bolt_value_int(v);
    }
    k->contains_updates = bolt_value_bool(bolt_map_get(stats, "contains-updates"));
    k->contains_system_updates = bolt_value_bool(bolt_map_get(stats, "contains-system-updates"));
    if (!bolt_map_get(stats, "contains-updates")) {
        for (size_t i = 0; i + 1 < sizeof counter_keys / sizeof counter_keys[0]; i++)
            if (*(int64_t *)((char *)k + counter_keys[i].off)) k->contains_updates = 1;
    }
}

static void set_bookmark(bolt_conn *c, bolt_summary *s, const bolt_value *meta) {
    const char *bm = bolt_value_string(bolt_map_get(meta, "bookmark"), NULL);
    if (!bm) return;
    char *copy = strdup(bm);
    if (copy) {
        free(c->bookmark);
        c->bookmark = copy;
    }
    if (s && strlen(bm) < sizeof s->bookmark) snprintf(s->bookmark, sizeof s->bookmark, "%s", bm);
}

static void parse_summary(bolt_summary *s, const bolt_value *meta) {
    const char *t = bolt_value_string(bolt_map_get(meta, "type"), NULL);
    const char *db = bolt_value_string(bolt_map_get(meta, "db"), NULL);
    if (t) snprintf(s->type, sizeof s->type, "%s", t);
    if (db) snprintf(s->db, sizeof s->db, "%s", db);
    const bolt_value *tl = bolt_map_get(meta, "t_last");
    if (tl) s->t_last = bolt_value_int(tl);
    parse_counters(&s->counters, bolt_map_get(meta, "stats"));
}

static void summary_init(bolt_summary *s) {
    memset(s, 0, sizeof *s);
    s->t_first = s->t_last = -1;
}

/* ------------------------------------------------------------------ results */

void result_detach(bolt_result *r) {
    if (r->conn && r->conn->cur == r) r->conn->cur = NULL;
    r->conn = NULL;
    if (!r->done) {
        r->done = 1;
        r->rc = bolt_err(&r->err, BOLT_ESTATE, "result abandoned");
    }
}

static int result_fail(bolt_result *r, int rc, bolt_error *err) {
    bolt_conn *c = r->conn;
    if (err) r->err = *err;
    else bolt_err(&r->err, rc, "%s", bolt_code_name(rc));
    r->rc = rc;
    r->done = 1;
    if (c) {
        c->cur = NULL;
        r->conn = NULL;
        conn_drain(c, NULL);
    }
    return rc;
}

static void result_finish(bolt_result *r, bolt_value *meta) {
    bolt_conn *c = r->conn;
    r->meta = meta;
    parse_summary(&r->summary, meta);
    if (!r->in_tx) set_bookmark(c, &r->summary, meta);
    r->done = 1;
    c->cur = NULL;
    r->conn = NULL;
}

/* Handles the summary of the outstanding PULL/DISCARD: more to fetch, or the end. */
static int result_on_summary(bolt_result *r, bolt_value *m, bolt_error *err) {
    bolt_value *meta = NULL;
    int rc = conn_take_summary(r->conn, m, &meta, err);
    r->pull_outstanding = 0;
    if (rc) return result_fail(r, rc, err);
    if (bolt_value_bool(bolt_map_get(meta, "has_more"))) {
        r->has_more = 1;
        bolt_value_free(meta);
        return BOLT_OK;
    }
    r->has_more = 0;
    result_finish(r, meta);
    return BOLT_OK;
}

int bolt_result_next(bolt_result *r, const bolt_value **record, bolt_error *err) {
    *record = NULL;
    bolt_value_free(r->record);
    r->record = NULL;
    while (!r->done) {
        bolt_conn *c = r->conn;
        int rc;
        if (!r->pull_outstanding) {
            if ((rc = queue_pull(c, REQ_PULL, c->settings->cfg.fetch_size, err)))
                return result_fail(r, rc, err);
            r->pull_outstanding = 1;
        }
        bolt_value *m;
        if ((rc = conn_recv(c, &m, err))) return result_fail(r, rc, err);
        if (!m) return result_fail(r, conn_kill(c, err, BOLT_EPROTO, "lost PULL"), err);
        if (bolt_struct_tag(m) == MSG_RECORD) {
            r->record = bolt_struct_steal(m, 0);
            bolt_value_free(m);
            *record = r->record;
            return BOLT_OK;
        }
        if ((rc = result_on_summary(r, m, err))) return rc;
    }
    if (r->rc && err) *err = r->err;
    return r->rc;
}

int bolt_result_consume(bolt_result *r, bolt_error *err) {
    bolt_value_free(r->record);
    r->record = NULL;
    while (!r->done) {
        bolt_conn *c = r->conn;
        int rc;
        if (!r->pull_outstanding) {
            if ((rc = queue_pull(c, REQ_DISCARD, -1, err))) return result_fail(r, rc, err);
            r->pull_outstanding = 1;
        }
        bolt_value *m;
        if ((rc = conn_recv(c, &m, err))) return result_fail(r, rc, err);
        if (!m) return result_fail(r, conn_kill(c, err, BOLT_EPROTO, "lost DISCARD"), err);
        if (bolt_struct_tag(m) == MSG_RECORD) {
            bolt_value_free(m);
            continue;
        }
        if ((rc = result_on_summary(r, m, err))) return rc;
    }
    if (r->rc && err) *err = r->err;
    return r->rc;
}

size_t bolt_result_field_count(const bolt_result *r) { return bolt_value_size(r->fields); }

const char *bolt_result_field(const bolt_result *r, size_t i) {
    return bolt_value_string(bolt_list_get(r->fields, i), NULL);
}

const bolt_summary *bolt_result_summary(const bolt_result *r) {
    return r->done && !r->rc ? &r->summary : NULL;
}

const bolt_value *bolt_result_metadata(const bolt_result *r) { return r->meta; }

void bolt_result_free(bolt_result *r) {
    if (!r) return;
    if (!r->done && r->conn) bolt_result_consume(r, NULL);
    result_detach(r);
    bolt_value_free(r->fields);
    bolt_value_free(r->record);
    bolt_value_free(r->meta);
    free(r);
}

/* Reads BEGIN's answer if it is still due (it went out with this request). */
static int settle_begin(bolt_conn *c, bolt_error *err) {
    if (!c->begin_unacked) return BOLT_OK;
    c->begin_unacked = 0;
    return conn_expect_summary(c, NULL, err);
}

static int run_common(bolt_conn *c, const char *query, const bolt_value *pv, const bolt_enc *pe,
                      const bolt_tx_opts *opts, bolt_result **out, bolt_error *err) {
    *out = NULL;
    int rc = params_ok(pv, pe, err);
    if (!rc) rc = conn_prepare(c, err);
    if (rc) return rc;
    bolt_result *r = calloc(1, sizeof *r);
    if (!r) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    summary_init(&r->summary);
    r->in_tx = c->in_tx;
    if ((rc = queue_run(c, query, pv, pe, opts, err)) ||
        (rc = queue_pull(c, REQ_PULL, c->settings->cfg.fetch_size, err))) {
        free(r);
        return rc;
    }
    r->pull_outstanding = 1;
    bolt_value *meta = NULL;
    if ((rc = settle_begin(c, err)) || (rc = conn_expect_summary(c, &meta, err))) {
        conn_drain(c, NULL);
        free(r);
        return rc;
    }
    r->fields = bolt_value_copy(bolt_map_get(meta, "fields"));
    const bolt_value *tf = bolt_map_get(meta, "t_first");
    if (tf) r->summary.t_first = bolt_value_int(tf);
    bolt_value_free(meta);
    if (!r->fields && !(r->fields = bolt_list())) {
        bolt_result_free(r);
        return bolt_err(err, BOLT_ENOMEM, "out of memory");
    }
    r->conn = c;
    c->cur = r;
    *out = r;
    return BOLT_OK;
}

int bolt_run(bolt_conn *c, const char *query, const bolt_value *params,
             const bolt_tx_opts *opts, bolt_result **out, bolt_error *err) {
    return run_common(c, query, params, NULL, opts, out, err);
}

int bolt_run_enc(bolt_conn *c, const char *query, const bolt_enc *params,
                 const bolt_tx_opts *opts, bolt_result **out, bolt_error *err) {
    return run_common(c, query, NULL, params, opts, out, err);
}

static int query_common(bolt_conn *c, const char *query, const bolt_value *pv,
                        const bolt_enc *pe, const bolt_tx_opts *opts, bolt_record_cb cb,
                        void *ud, bolt_summary *summary, bolt_error *err) {
    bolt_result *r;
    int rc = run_common(c, query, pv, pe, opts, &r, err);
    if (rc) return rc;
    const bolt_value *rec;
    while (cb && !(rc = bolt_result_next(r, &rec, err)) && rec) {
        if (cb(ud, rec)) {
            rc = bolt_err(err, BOLT_ECALLBACK, "record callback stopped the query");
            bolt_result_consume(r, NULL);
            break;
        }
    }
    if (!rc && !cb) rc = bolt_result_consume(r, err);
    if (!rc && summary) *summary = r->summary;
    bolt_result_free(r);
    return rc;
}

int bolt_query(bolt_conn *c, const char *query, const bolt_value *params,
               const bolt_tx_opts *opts, bolt_record_cb cb, void *ud, bolt_summary *summary,
               bolt_error *err) {
    return query_common(c, query, params, NULL, opts, cb, ud, summary, err);
}

int bolt_query_enc(bolt_conn *c, const char *query, const bolt_enc *params,
                   const bolt_tx_opts *opts, bolt_record_cb cb, void *ud, bolt_summary *summary,
                   bolt_error *err) {
    return query_common(c, query, NULL, params, opts, cb, ud, summary, err);
}

/* ------------------------------------------------------------------ pipelined queries */

/* Query q's answers: RUN's summary, then its records and PULL's summary. A callback that
 * stops only stops the deliveries: the records already asked for are read and dropped. */
static int read_one_of_many(bolt_conn *c, bolt_query_item *q, bolt_error *err) {
    bolt_value *meta = NULL;
    int rc = conn_expect_summary(c, &meta, err), stopped = 0;
    if (rc) return rc;
    const bolt_value *tf = bolt_map_get(meta, "t_first");
    if (tf) q->summary.t_first = bolt_value_int(tf);
    bolt_value_free(meta);
    for (;;) {
        bolt_value *m;
        if ((rc = conn_recv(c, &m, err))) return rc;
        if (!m) return conn_kill(c, err, BOLT_EPROTO, "lost PULL");
        if (bolt_struct_tag(m) != MSG_RECORD) {
            meta = NULL;
            if ((rc = conn_take_summary(c, m, &meta, err))) return rc;
            parse_summary(&q->summary, meta);
            bolt_value_free(meta);
            break;
        }
        if (q->cb && !stopped) stopped = q->cb(q->ud, bolt_struct_field(m, 0)) != 0;
        bolt_value_free(m);
    }
    return stopped ? bolt_err(err, BOLT_ECALLBACK, "record callback stopped the query") : BOLT_OK;
}

int bolt_query_many(bolt_conn *c, bolt_query_item *q, size_t n, bolt_error *err) {
    int rc = conn_prepare(c, err);
    if (rc) return rc;
    if (!c->in_tx) return bolt_err(err, BOLT_ESTATE, "bolt_query_many outside a transaction");
    if (n > BOLT_QUERY_MANY_MAX) return bolt_err(err, BOLT_EINVAL, "too many queries at once");
    for (size_t i = 0; i < n; i++) {
        summary_init(&q[i].summary);
        if (q[i].params && (rc = params_ok(NULL, q[i].params, err))) return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = queue_run(c, q[i].query, NULL, q[i].params, NULL, err)) ||
            (rc = queue_pull(c, REQ_PULL, -1, err))) {
            bolt_reset(c, NULL);   /* half a pipeline: nothing of it may reach the server */
            return rc;
        }
    }
    int first = settle_begin(c, err);
    bolt_error e1;
    for (size_t i = 0; i < n && !first; i++) first = read_one_of_many(c, &q[i], err);
    /* after a failure: the IGNOREDs of the queries behind it; after a stopped callback: the
     * other queries' answers */
    if (first && c->state != BOLT_STATE_DEFUNCT) conn_drain(c, &e1);
    return first;
}

/* ------------------------------------------------------------------ transactions */

int bolt_begin(bolt_conn *c, const bolt_tx_opts *opts, bolt_error *err) {
    int rc = conn_prepare(c, err);
    if (rc) return rc;
    if (c->in_tx) return bolt_err(err, BOLT_ESTATE, "a transaction is already open");
    if ((rc = queue_begin(c, opts, err))) return rc;
    c->in_tx = 1;
    c->begin_unacked = 1;
    return BOLT_OK;
}

/* After FAILURE inside a transaction the server has already rolled it back. */
static int tx_failed(bolt_conn *c, bolt_error *err) {
    bolt_error failure = c->failure;
    int known = c->has_failure;
    int rc = bolt_reset(c, NULL);
    if (rc) return conn_defunct_error(c, err);
    if (err && known) *err = failure;
    return known ? failure.code : bolt_err(err, BOLT_ESTATE, "transaction failed");
}

int bolt_commit(bolt_conn *c, bolt_error *err) {
    int rc = conn_finish_result(c, err);
    if (rc) return rc;
    if (c->tx_failed) return tx_failed(c, err);
    if (!c->in_tx) return bolt_err(err, BOLT_ESTATE, "no transaction to commit");
    if ((rc = conn_queue_simple(c, REQ_COMMIT, REQ_TAG_COMMIT, err))) return rc;
    bolt_value *meta = NULL;
    rc = settle_begin(c, err);
    if (!rc) {
        rc = conn_expect_summary(c, &meta, err);
        if (rc && c->state == BOLT_STATE_DEFUNCT)
            return bolt_err(err, BOLT_ECOMMIT_UNKNOWN, "connection to %s lost during COMMIT: "
                            "outcome unknown", c->address);
    }
    c->in_tx = 0;
    if (rc) {
        conn_drain(c, NULL);
        return rc;
    }
    set_bookmark(c, NULL, meta);
    bolt_value_free(meta);
    return BOLT_OK;
}

int bolt_rollback(bolt_conn *c, bolt_error *err) {
    int rc = conn_finish_result(c, err);
    if (rc) return rc;
    if (c->tx_failed) return bolt_reset(c, err);
    if (!c->in_tx) return bolt_err(err, BOLT_ESTATE, "no transaction to roll back");
    if ((rc = conn_queue_simple(c, REQ_ROLLBACK, REQ_TAG_ROLLBACK, err))) return rc;
    rc = settle_begin(c, err);
    if (!rc) rc = conn_expect_summary(c, NULL, err);
    c->in_tx = 0;
    if (rc) conn_drain(c, NULL);
    return rc;
}

int bolt_run_batch(bolt_conn *c, const char *query, const bolt_enc *params,
                   const bolt_tx_opts *opts, bolt_summary *summary, bolt_error *err) {
    int rc = params_ok(NULL, params, err);
    if (!rc) rc = conn_prepare(c, err);
    if (rc) return rc;
    if (c->in_tx) return bolt_err(err, BOLT_ESTATE, "bolt_run_batch inside a transaction");
    if ((rc = queue_begin(c, opts, err))) return rc;
    c->in_tx = 1;
    if ((rc = queue_run(c, query, NULL, params, NULL, err)) ||
        (rc = queue_pull(c, REQ_DISCARD, -1, err)) ||
        (rc = conn_queue_simple(c, REQ_COMMIT, REQ_TAG_COMMIT, err))) {
        bolt_reset(c, NULL);   /* drop what was queued; nothing was sent */
        return rc;
    }
    bolt_summary s;
    summary_init(&s);
    bolt_value *meta[4] = {0};
    int first = BOLT_OK;
    bolt_error e1;
    for (int i = 0; i < 4 && c->state != BOLT_STATE_DEFUNCT; i++) {
        rc = conn_expect_summary(c, &meta[i], &e1);
        if (rc && !first) {
            first = rc;
            if (err) *err = e1;
        }
    }
    c->in_tx = 0;
    c->tx_failed = 0;   /* the batch is over either way; the next request may RESET */
    if (c->state == BOLT_STATE_DEFUNCT && !c->has_failure) {
        first = bolt_err(err, BOLT_ECOMMIT_UNKNOWN, "connection to %s lost during a "
                         "pipelined transaction: outcome unknown", c->address);
    }
    if (!first) {
        const bolt_value *tf = bolt_map_get(meta[1], "t_first");
        if (tf) s.t_first = bolt_value_int(tf);
        parse_summary(&s, meta[2]);
        set_bookmark(c, &s, meta[3]);
        if (summary) *summary = s;
    }
    for (int i = 0; i < 4; i++) bolt_value_free(meta[i]);
    return first;
}
