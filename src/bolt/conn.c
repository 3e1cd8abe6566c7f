/* conn.c: one Bolt connection: handshake, HELLO/LOGON, the request pipeline, RESET.
 *
 * Requests are never written one by one. Each is encoded and chunked into an output
 * buffer and its kind pushed on a FIFO; the buffer goes out only when a response is needed.
 * That is all the pipelining there is: BEGIN queued by bolt_begin travels with the first
 * RUN, and bolt_run_batch's BEGIN+RUN+DISCARD+COMMIT leave in one write. Responses are
 * matched to the FIFO in order (RECORDs belong to the PULL at its head).
 *
 * Client-side mirror of the server state (docs/bolt.md §6): READY, STREAMING, TX, FAILED,
 * DEFUNCT. After a FAILURE everything still queued comes back IGNORED; those are drained
 * right away so the FIFO is empty again, and the next request is preceded by a RESET that
 * travels in the same write. Any I/O or protocol error closes the socket: DEFUNCT is final.
 *
 * Queries and results live in query.c; this file owns the wire and the state machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt/conn_internal.h"

/* ------------------------------------------------------------------ settings */

static int dup_opt(char **dst, const char *src, const char *dflt) {
    const char *s = src ? src : dflt;
    *dst = s ? strdup(s) : NULL;
    return s && !*dst ? BOLT_ENOMEM : BOLT_OK;
}

void bolt_config_init(bolt_config *cfg) {
    *cfg = (bolt_config){
        .connect_timeout_ms = 5000, .fetch_size = 1000, .notifications_off = 1,
        .max_pool_size = 16, .acquire_timeout_ms = 60000, .liveness_check_ms = 30000,
        .max_retry_time_ms = 30000, .retry_initial_delay_ms = 1000,
    };                          /* every other field zero: NULL strings, no limits */
}

int bolt_settings_init(bolt_settings *s, const bolt_config *cfg) {
    bolt_config dflt;
    memset(s, 0, sizeof *s);
    if (!cfg) {
        bolt_config_init(&dflt);
        cfg = &dflt;
    }
    s->cfg = *cfg;
    s->cancel_fd = -1;
    int rc = dup_opt(&s->user_agent, cfg->user_agent, "cgw-bolt/0.1");
    rc |= dup_opt(&s->auth_scheme, cfg->auth_scheme, cfg->principal ? "basic" : "none");
    rc |= dup_opt(&s->principal, cfg->principal, NULL);
    rc |= dup_opt(&s->credentials, cfg->credentials, NULL);
    rc |= dup_opt(&s->default_db, cfg->default_db, "neo4j");
    rc |= dup_opt(&s->ca_file, cfg->ca_file, NULL);
    s->cfg.user_agent = s->user_agent;
    s->cfg.auth_scheme = s->auth_scheme;
    s->cfg.principal = s->principal;
    s->cfg.credentials = s->credentials;
    s->cfg.default_db = s->default_db;
    s->cfg.ca_file = s->ca_file;
    if (s->cfg.fetch_size == 0) s->cfg.fetch_size = 1000;
    if (rc) bolt_settings_free(s);
    return rc ? BOLT_ENOMEM : BOLT_OK;
}

void bolt_settings_free(bolt_settings *s) {
    if (s->credentials) explicit_bzero(s->credentials, strlen(s->credentials));
    free(s->user_agent);
    free(s->auth_scheme);
    free(s->principal);
    free(s->credentials);
    free(s->default_db);
    free(s->ca_file);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ state */

/* Closes the socket for good and reports why. Every error path that leaves the wire in an
 * unknown place ends here. */
int conn_kill(bolt_conn *c, bolt_error *err, int code, const char *why) {
    if (c->sock) {
        bolt_sock_close(c->sock);
        c->sock = NULL;
    }
    c->state = BOLT_STATE_DEFUNCT;
    c->nq = 0;
    c->in_tx = 0;
    c->out.len = 0;
    if (why) return bolt_err(err, code, "%s (connection to %s closed)", why, c->address);
    if (err && err->code == code && !strstr(err->message, "connection to ")) {
        size_t n = strlen(err->message);
        snprintf(err->message + n, sizeof err->message - n, " (connection to %s)", c->address);
    }
    return code;
}

int conn_defunct_error(bolt_conn *c, bolt_error *err) {
    return bolt_err(err, BOLT_EDEFUNCT, "connection to %s is defunct", c->address);
}

/* ------------------------------------------------------------------ output */

/* Appends part to the output as chunks, writing the output out each time it passes
 * CONN_OUT_SPILL: the output buffer stays ~64 KiB however big the parameters (issue 14's
 * RSS: a 500-purchase batch is ~1.2 MB, and it was held twice per writer). The server may
 * start on the requests already written; their answers wait in the socket until read. */
static int queue_spilling(bolt_conn *c, const bolt_enc *part, bolt_error *err) {
    const uint8_t *p = part->p;
    size_t left = part->len;
    while (left > 0) {
        size_t n = left > BOLT_CHUNK_MAX ? BOLT_CHUNK_MAX : left;
        if (bolt_chunk_part(&c->out, p, n)) return conn_kill(c, err, BOLT_ENOMEM, "out of memory");
        p += n;
        left -= n;
        int rc;
        if (c->out.len >= CONN_OUT_SPILL && (rc = conn_flush(c, err))) return rc;
    }
    return BOLT_OK;
}

/* Chunks the message built in c->msg, with part spliced in at offset at, into the output
 * buffer and remembers its kind. */
int conn_queue_spliced(bolt_conn *c, conn_req kind, const bolt_enc *part, size_t at,
                       bolt_error *err) {
    if (c->msg.err) return bolt_err(err, c->msg.err, "cannot encode request");
    if (part && part->err) return bolt_err(err, part->err, "cannot encode request");
    if (c->nq >= CONN_QUEUE_MAX) return bolt_err(err, BOLT_ESTATE, "too many queued requests");
    if (!part) at = c->msg.len;
    int rc;
    if (bolt_chunk_part(&c->out, c->msg.p, at)) return conn_kill(c, err, BOLT_ENOMEM, "out of memory");
    if (part && (rc = queue_spilling(c, part, err))) return rc;
    if (bolt_chunk_part(&c->out, c->msg.p + at, c->msg.len - at) || bolt_chunk_end(&c->out))
        return conn_kill(c, err, BOLT_ENOMEM, "out of memory");
    if (kind != REQ_GOODBYE) c->q[(c->qhead + c->nq++) % CONN_QUEUE_MAX] = kind;
    return BOLT_OK;
}

int conn_queue(bolt_conn *c, conn_req kind, bolt_error *err) {
    return conn_queue_spliced(c, kind, NULL, 0, err);
}

/* A request without fields (RESET, COMMIT, ROLLBACK, GOODBYE). */
int conn_queue_simple(bolt_conn *c, conn_req kind, uint8_t tag, bolt_error *err) {
    bolt_enc_reset(&c->msg);
    bolt_enc_struct_begin(&c->msg, tag, 0);
    return conn_queue(c, kind, err);
}

int conn_flush(bolt_conn *c, bolt_error *err) {
    if (!c->sock) return conn_defunct_error(c, err);
    if (c->out.len == 0) return BOLT_OK;
    int rc = bolt_sock_write(c->sock, c->out.p, c->out.len, err);
    if (c->wipe_out) explicit_bzero(c->out.p, c->out.len);
    c->wipe_out = 0;
    c->out.len = 0;
    return rc ? conn_kill(c, err, rc, NULL) : BOLT_OK;
}

/* ------------------------------------------------------------------ input */

static int read_message(bolt_conn *c, bolt_value **out, bolt_error *err) {
    for (;;) {
        if (c->rpos < c->rlen) {
            size_t used = 0, mlen = 0;
            const uint8_t *m = NULL;
            int rc = bolt_dechunk(&c->dech, c->rbuf + c->rpos, c->rlen - c->rpos, &used, &m,
                                  &mlen);
            c->rpos += used;
            if (rc < 0) return conn_kill(c, err, -rc, "incoming message too large");
            if (rc == 1) {
                size_t n = 0;
                rc = bolt_unpack(m, mlen, out, &n, err);
                if (rc) return conn_kill(c, err, rc, NULL);
                if (n != mlen || bolt_value_type(*out) != BOLT_STRUCT) {
                    bolt_value_free(*out);
                    *out = NULL;
                    return conn_kill(c, err, BOLT_EPROTO, "malformed message from server");
                }
                return BOLT_OK;
            }
        }
        if (!c->sock) return conn_defunct_error(c, err);
        long n = bolt_sock_read(c->sock, c->rbuf, sizeof c->rbuf, err);
        if (n < 0) return conn_kill(c, err, (int)-n, NULL);
        c->rpos = 0;
        c->rlen = (size_t)n;
    }
}

static int valid_response(const bolt_value *m) {
    switch (bolt_struct_tag(m)) {
    case MSG_SUCCESS:
    case MSG_FAILURE:
        return bolt_value_size(m) == 1 && bolt_value_type(bolt_struct_field(m, 0)) == BOLT_MAP;
    case MSG_RECORD:
        return bolt_value_size(m) == 1 && bolt_value_type(bolt_struct_field(m, 0)) == BOLT_LIST;
    case MSG_IGNORED:
        return 1;
    default:
        return 0;
    }
}

static conn_req queue_head(const bolt_conn *c) { return c->q[c->qhead]; }

static void queue_pop(bolt_conn *c) {
    c->qhead = (c->qhead + 1) % CONN_QUEUE_MAX;
    c->nq--;
}

/* The answer to a RESET at the head of the FIFO: consumed here so callers never see it. */
static int on_reset_response(bolt_conn *c, bolt_value *m, bolt_error *err) {
    int tag = bolt_struct_tag(m);
    bolt_value_free(m);
    queue_pop(c);
    if (tag == MSG_IGNORED) {
        /* A later RESET interrupted this one; that one settles the state. */
        c->ignored++;
        return BOLT_OK;
    }
    if (tag != MSG_SUCCESS) return conn_kill(c, err, BOLT_EDEFUNCT, "RESET failed");
    c->state = BOLT_STATE_READY;
    c->in_tx = 0;
    c->begin_unacked = 0;
    c->tx_failed = 0;
    c->has_failure = 0;
    return BOLT_OK;
}

/* Next response for the FIFO. RESET answers are handled here; if one empties the FIFO,
 * *out is NULL. */
int conn_recv(bolt_conn *c, bolt_value **out, bolt_error *err) {
    *out = NULL;
    for (;;) {
        if (c->nq == 0) return conn_kill(c, err, BOLT_EPROTO, "unsolicited message expected");
        int rc = conn_flush(c, err);
        if (rc) return rc;
        bolt_value *m;
        if ((rc = read_message(c, &m, err))) return rc;
        if (!valid_response(m)) {
            bolt_value_free(m);
            return conn_kill(c, err, BOLT_EPROTO, "unexpected message from server");
        }
        if (bolt_struct_tag(m) == MSG_RECORD && queue_head(c) != REQ_PULL) {
            bolt_value_free(m);
            return conn_kill(c, err, BOLT_EPROTO, "RECORD outside of PULL");
        }
        if (bolt_struct_tag(m) != MSG_RECORD && queue_head(c) == REQ_RESET) {
            if ((rc = on_reset_response(c, m, err))) return rc;
            if (c->nq == 0) return BOLT_OK;   /* that RESET was all we waited for */
            continue;
        }
        *out = m;
        return BOLT_OK;
    }
}

/* Turns a summary message into a result for the request at the head and pops it.
 * SUCCESS: *meta gets the metadata map (caller frees; meta may be NULL to drop it). */
int conn_take_summary(bolt_conn *c, bolt_value *m, bolt_value **meta, bolt_error *err) {
    int tag = bolt_struct_tag(m);
    queue_pop(c);
    if (tag == MSG_SUCCESS) {
        if (meta) *meta = bolt_struct_steal(m, 0);
        bolt_value_free(m);
        return BOLT_OK;
    }
    if (tag == MSG_IGNORED) {
        bolt_value_free(m);
        c->ignored++;
        if (c->has_failure) {
            if (err) *err = c->failure;
            return c->failure.code;
        }
        return bolt_err(err, BOLT_EIGNORED, "request ignored by server");
    }
    /* FAILURE: the server rolled back any transaction and ignores all until RESET. */
    bolt_err_from_failure(&c->failure, bolt_struct_field(m, 0));
    bolt_value_free(m);
    c->has_failure = 1;
    c->state = BOLT_STATE_FAILED;
    if (c->in_tx) c->tx_failed = 1;
    c->in_tx = 0;
    c->begin_unacked = 0;
    if (err) *err = c->failure;
    return c->failure.code;
}

/* Reads the summary of the next request; a RECORD here is a protocol error. */
int conn_expect_summary(bolt_conn *c, bolt_value **meta, bolt_error *err) {
    bolt_value *m;
    int rc = conn_recv(c, &m, err);
    if (rc) return rc;
    if (!m || bolt_struct_tag(m) == MSG_RECORD) {
        bolt_value_free(m);
        return conn_kill(c, err, BOLT_EPROTO, "unexpected RECORD");
    }
    return conn_take_summary(c, m, meta, err);
}

/* Reads and drops every outstanding response (IGNOREDs after a failure, records). */
int conn_drain(bolt_conn *c, bolt_error *err) {
    bolt_error scratch;
    while (c->nq > 0 && c->state != BOLT_STATE_DEFUNCT) {
        bolt_value *m;
        int rc = conn_recv(c, &m, err ? err : &scratch);
        if (rc) return rc;
        if (!m) break;
        if (bolt_struct_tag(m) == MSG_RECORD) bolt_value_free(m);
        else conn_take_summary(c, m, NULL, &scratch);
    }
    return c->state == BOLT_STATE_DEFUNCT ? BOLT_EDEFUNCT : BOLT_OK;
}

/* ------------------------------------------------------------------ handshake and auth */

/* Magic, then 5.<max> back to 5.0 as one range, then 4.4 (docs/bolt.md §2). */
static void handshake_bytes(int max_version, uint8_t out[20]) {
    static const uint8_t base[20] = {0x60, 0x60, 0xB0, 0x17, 0x00, 0x08, 0x08, 0x05,
                                     0x00, 0x00, 0x04, 0x04, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(out, base, 20);
    if (max_version == 0x0404) {
        memcpy(out + 4, "\x00\x00\x04\x04", 4);
        memset(out + 8, 0, 4);
    } else if (max_version >= 0x0500 && max_version < 0x0508) {
        out[5] = out[6] = (uint8_t)(max_version & 0xFF);
    }
}

static int handshake(bolt_conn *c, bolt_error *err) {
    uint8_t hello[20];
    handshake_bytes(c->settings->cfg.max_version, hello);
    int rc = bolt_sock_write(c->sock, hello, sizeof hello, err);
    if (rc) return conn_kill(c, err, rc, NULL);
    uint8_t v[4];
    size_t have = 0;
    while (have < 4) {
        long n = bolt_sock_read(c->sock, v + have, 4 - have, err);
        if (n < 0) return conn_kill(c, err, (int)-n, NULL);
        have += (size_t)n;
    }
    if (!memcmp(v, "HTTP", 4))
        return conn_kill(c, err, BOLT_EVERSION, "server speaks HTTP, not Bolt (wrong port?)");
    int major = v[3], minor = v[2];
    if (v[0] || v[1] || !((major == 5 && minor <= 8) || (major == 4 && minor == 4))) {
        bolt_err(err, BOLT_EVERSION, "no common Bolt version with %s (answer %02x %02x %02x %02x)",
                 c->address, v[0], v[1], v[2], v[3]);
        return conn_kill(c, NULL, BOLT_EVERSION, NULL);
    }
    c->version = major << 8 | minor;
    return BOLT_OK;
}

static void enc_kv_str(bolt_enc *e, const char *k, const char *v) {
    bolt_enc_string(e, k);
    bolt_enc_string(e, v);
}

/* Auth token fields: scheme [, principal, credentials]. */
static size_t auth_fields(const bolt_settings *s) {
    return strcmp(s->auth_scheme, "none") ? 3 : 1;
}

static void enc_auth(bolt_enc *e, const bolt_settings *s) {
    enc_kv_str(e, "scheme", s->auth_scheme);
    if (auth_fields(s) == 3) {
        enc_kv_str(e, "principal", s->principal ? s->principal : "");
        enc_kv_str(e, "credentials", s->credentials ? s->credentials : "");
    }
}

static void enc_routing(bolt_enc *e, const bolt_uri *ctx) {
    bolt_enc_map_begin(e, 1 + ctx->nparams);
    enc_kv_str(e, "address", ctx->address);
    for (size_t i = 0; i < ctx->nparams; i++) enc_kv_str(e, ctx->keys[i], ctx->values[i]);
}

static int queue_hello(bolt_conn *c, const bolt_uri *routing, bolt_error *err) {
    const bolt_settings *s = c->settings;
    int v = c->version, auth_in_hello = v < 0x0501;
    int agent = v >= 0x0503, notif = v >= 0x0502 && s->cfg.notifications_off;
    int patch = v == 0x0404;
    size_t n = 1 + (auth_in_hello ? auth_fields(s) : 0) + (routing ? 1 : 0) + agent + notif +
               patch;
    bolt_enc *e = &c->msg;
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, REQ_TAG_HELLO, 1);
    bolt_enc_map_begin(e, n);
    enc_kv_str(e, "user_agent", s->user_agent);
    if (auth_in_hello) enc_auth(e, s);
    if (routing) {
        bolt_enc_string(e, "routing");
        enc_routing(e, routing);
    }
    if (agent) {
        bolt_enc_string(e, "bolt_agent");
        bolt_enc_map_begin(e, 2);
        enc_kv_str(e, "product", s->user_agent);
        enc_kv_str(e, "language", "C/gnu11");
    }
    if (notif) enc_kv_str(e, "notifications_minimum_severity", "OFF");
    if (patch) {
        bolt_enc_string(e, "patch_bolt");
        bolt_enc_list_begin(e, 1);
        bolt_enc_string(e, "utc");
    }
    int rc = conn_queue(c, REQ_HELLO, err);
    explicit_bzero(e->p, e->len);
    c->wipe_out = 1;
    if (rc || !(v >= 0x0501)) return rc;
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, REQ_TAG_LOGON, 1);
    bolt_enc_map_begin(e, auth_fields(s));
    enc_auth(e, s);
    rc = conn_queue(c, REQ_LOGON, err);
    explicit_bzero(e->p, e->len);
    return rc;
}

static void copy_meta_str(char *dst, size_t size, const bolt_value *meta, const char *key) {
    const char *s = bolt_value_string(bolt_map_get(meta, key), NULL);
    snprintf(dst, size, "%s", s ? s : "");
}

static int auth_failed(bolt_conn *c, int rc, bolt_error *err) {
    const bolt_settings *s = c->settings;
    if (err && rc == BOLT_EAUTH) {
        char msg[2 * BOLT_ERRMSG_MAX + 512];
        snprintf(msg, sizeof msg, "authentication failed for user '%.200s' at %s: %s",
                 s->principal ? s->principal : "", c->address, err->message);
        size_t n = strnlen(msg, sizeof err->message - 1);
        memcpy(err->message, msg, n);
        err->message[n] = 0;
        err->retryable = 0;
    }
    conn_kill(c, NULL, rc, NULL);
    return rc;
}

static int hello(bolt_conn *c, const bolt_uri *routing, bolt_error *err) {
    int rc = queue_hello(c, routing, err);
    if (rc) return rc;
    bolt_value *meta = NULL;
    if ((rc = conn_expect_summary(c, &meta, err))) return auth_failed(c, rc, err);
    copy_meta_str(c->server_agent, sizeof c->server_agent, meta, "server");
    copy_meta_str(c->conn_id, sizeof c->conn_id, meta, "connection_id");
    const bolt_value *patches = bolt_map_get(meta, "patch_bolt");
    for (size_t i = 0; i < bolt_value_size(patches); i++) {
        const char *p = bolt_value_string(bolt_list_get(patches, i), NULL);
        if (p && !strcmp(p, "utc")) c->utc_patch = 1;
    }
    bolt_value_free(meta);
    if (c->version >= 0x0501 && (rc = conn_expect_summary(c, NULL, err)))
        return auth_failed(c, rc, err);
    c->state = BOLT_STATE_READY;
    return BOLT_OK;
}

/* ------------------------------------------------------------------ lifecycle */

static bolt_conn *conn_alloc(const bolt_settings *s, const char *address) {
    bolt_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->settings = s;
    snprintf(c->address, sizeof c->address, "%s", address);
    c->state = BOLT_STATE_DEFUNCT;
    bolt_dechunker_init(&c->dech, 0);
    c->idle_since = bolt_now_ms();
    return c;
}

int bolt_conn_open(const bolt_settings *s, const char *address, int tls,
                   const bolt_uri *routing_ctx, bolt_conn **out, bolt_error *err) {
    *out = NULL;
    char *host = NULL;
    int port, rc = bolt_split_address(address, &host, &port, err);
    if (rc) return rc;
    bolt_conn *c = conn_alloc(s, address);
    if (!c) {
        free(host);
        return bolt_err(err, BOLT_ENOMEM, "out of memory");
    }
    rc = bolt_sock_connect(host, port, tls, s->ca_file, s->cfg.connect_timeout_ms,
                           s->cfg.io_timeout_ms, s->cancel_fd, &c->sock, err);
    free(host);
    if (!rc) rc = handshake(c, err);
    if (!rc) rc = hello(c, routing_ctx, err);
    if (rc) {
        bolt_conn_close(c);
        return rc;
    }
    *out = c;
    return BOLT_OK;
}

int bolt_connect(const char *uri, const bolt_config *cfg, bolt_conn **out, bolt_error *err) {
    *out = NULL;
    bolt_uri *u = NULL;
    bolt_settings *s = calloc(1, sizeof *s);
    if (!s) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    int rc = bolt_settings_init(s, cfg);
    if (rc) {
        free(s);
        return bolt_err(err, rc, "out of memory");
    }
    if (!(rc = bolt_uri_parse(uri, &u, err)))
        rc = bolt_conn_open(s, u->address, u->tls, u->routing ? u : NULL, out, err);
    if (rc) {
        bolt_uri_free(u);
        bolt_settings_free(s);
        free(s);
        return rc;
    }
    (*out)->own_settings = s;
    (*out)->own_uri = u;
    return BOLT_OK;
}

void bolt_conn_close(bolt_conn *c) {
    if (!c) return;
    if (c->cur) result_detach(c->cur);
    if (c->sock && conn_queue_simple(c, REQ_GOODBYE, REQ_TAG_GOODBYE, NULL) == BOLT_OK)
        conn_flush(c, NULL);
    bolt_sock_close(c->sock);
    bolt_dechunker_free(&c->dech);
    bolt_enc_release(&c->out);
    bolt_enc_release(&c->msg);
    free(c->bookmark);
    if (c->own_settings) {
        bolt_settings_free(c->own_settings);
        free(c->own_settings);
    }
    bolt_uri_free(c->own_uri);
    free(c);
}

/* Finishes the open result, if any, so the FIFO holds no records. */
int conn_finish_result(bolt_conn *c, bolt_error *err) {
    if (c->state == BOLT_STATE_DEFUNCT) return conn_defunct_error(c, err);
    if (c->cur) {
        bolt_result *r = c->cur;
        bolt_result_consume(r, NULL);
        if (c->cur == r) result_detach(r);
        if (c->state == BOLT_STATE_DEFUNCT) return conn_defunct_error(c, err);
    }
    return BOLT_OK;
}

/* Called before queueing a new request: fails on a dead connection, finishes an open
 * result, and puts a RESET in front when the server sits in FAILED. A transaction that
 * failed is not silently replaced: the caller must roll it back (or reset) first. */
int conn_prepare(bolt_conn *c, bolt_error *err) {
    int rc = conn_finish_result(c, err);
    if (rc) return rc;
    if (c->state != BOLT_STATE_FAILED) return BOLT_OK;
    if (c->tx_failed) {
        if (err && c->has_failure) *err = c->failure;
        else bolt_err(err, BOLT_ESTATE, "transaction failed; roll back first");
        return err ? err->code : BOLT_ESTATE;
    }
    return conn_queue_simple(c, REQ_RESET, REQ_TAG_RESET, err);
}

int bolt_reset(bolt_conn *c, bolt_error *err) {
    if (c->state == BOLT_STATE_DEFUNCT) return conn_defunct_error(c, err);
    if (c->cur) result_detach(c->cur);
    int rc = conn_queue_simple(c, REQ_RESET, REQ_TAG_RESET, err);
    if (!rc) rc = conn_flush(c, err);
    if (!rc) rc = conn_drain(c, err);
    if (rc) return c->state == BOLT_STATE_DEFUNCT ? conn_defunct_error(c, err) : rc;
    c->state = BOLT_STATE_READY;
    c->in_tx = 0;
    c->begin_unacked = 0;
    c->tx_failed = 0;
    return BOLT_OK;
}

int bolt_conn_route(bolt_conn *c, const bolt_uri *ctx, const char *db,
                    const char *const *bookmarks, size_t nbookmarks, bolt_value **rt,
                    bolt_error *err) {
    *rt = NULL;
    int rc = conn_prepare(c, err);
    if (rc) return rc;
    if (c->in_tx) return bolt_err(err, BOLT_ESTATE, "ROUTE inside a transaction");
    if (c->version < 0x0404) return bolt_err(err, BOLT_EVERSION, "ROUTE needs Bolt 4.4+");
    bolt_enc *e = &c->msg;
    bolt_enc_reset(e);
    bolt_enc_struct_begin(e, REQ_TAG_ROUTE, 3);
    enc_routing(e, ctx);
    bolt_enc_list_begin(e, nbookmarks);
    for (size_t i = 0; i < nbookmarks; i++) bolt_enc_string(e, bookmarks[i]);
    bolt_enc_map_begin(e, db ? 1 : 0);
    if (db) enc_kv_str(e, "db", db);
    if ((rc = conn_queue(c, REQ_ROUTE, err))) return rc;
    bolt_value *meta = NULL;
    if ((rc = conn_expect_summary(c, &meta, err))) {
        conn_drain(c, NULL);
        return rc;
    }
    const bolt_value *t = bolt_map_get(meta, "rt");
    if (bolt_value_type(t) != BOLT_MAP) {
        bolt_value_free(meta);
        return bolt_err(err, BOLT_EPROTO, "ROUTE answer without a routing table");
    }
    *rt = bolt_value_copy(t);
    bolt_value_free(meta);
    return *rt ? BOLT_OK : bolt_err(err, BOLT_ENOMEM, "out of memory");
}

/* ------------------------------------------------------------------ accessors */

bolt_state bolt_conn_state(const bolt_conn *c) {
    if (c->state == BOLT_STATE_READY && c->in_tx) return BOLT_STATE_TX;
    if (c->state == BOLT_STATE_READY && c->cur) return BOLT_STATE_STREAMING;
    return c->state;
}

int bolt_conn_is_defunct(const bolt_conn *c) { return c->state == BOLT_STATE_DEFUNCT; }
int bolt_conn_version(const bolt_conn *c) { return c->version; }
const char *bolt_conn_server_agent(const bolt_conn *c) { return c->server_agent; }
const char *bolt_conn_id(const bolt_conn *c) { return c->conn_id; }
const char *bolt_conn_address(const bolt_conn *c) { return c->address; }
const char *bolt_conn_last_bookmark(const bolt_conn *c) { return c->bookmark ? c->bookmark : ""; }
uint64_t bolt_conn_ignored_count(const bolt_conn *c) { return c->ignored; }
void bolt_conn_set_idle_since(bolt_conn *c, int64_t ms) { c->idle_since = ms; }
int64_t bolt_conn_idle_since(const bolt_conn *c) { return c->idle_since; }
void *bolt_conn_pool_tag(const bolt_conn *c) { return c->pool_tag; }
void bolt_conn_set_pool_tag(bolt_conn *c, void *tag) { c->pool_tag = tag; }
int bolt_conn_in_tx(const bolt_conn *c) { return c->in_tx; }
