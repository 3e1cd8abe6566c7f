/* conn_internal.h: the connection and result structs, shared by conn.c (wire, state) and
 * query.c (queries, transactions). Private to src/bolt/. */
#ifndef BOLT_CONN_INTERNAL_H
#define BOLT_CONN_INTERNAL_H

#include "bolt/bolt_internal.h"

/* Message signatures (docs/bolt.md §5). */
enum {
    REQ_TAG_HELLO = 0x01, REQ_TAG_GOODBYE = 0x02, REQ_TAG_RESET = 0x0F, REQ_TAG_RUN = 0x10,
    REQ_TAG_BEGIN = 0x11, REQ_TAG_COMMIT = 0x12, REQ_TAG_ROLLBACK = 0x13,
    REQ_TAG_DISCARD = 0x2F, REQ_TAG_PULL = 0x3F, REQ_TAG_ROUTE = 0x66, REQ_TAG_LOGON = 0x6A,
    MSG_SUCCESS = 0x70, MSG_RECORD = 0x71, MSG_IGNORED = 0x7E, MSG_FAILURE = 0x7F
};

typedef enum conn_req {
    REQ_HELLO, REQ_LOGON, REQ_RESET, REQ_BEGIN, REQ_RUN, REQ_PULL, REQ_DISCARD, REQ_COMMIT,
    REQ_ROLLBACK, REQ_ROUTE, REQ_GOODBYE
} conn_req;

#define CONN_QUEUE_MAX 32
#define CONN_OUT_SPILL 65536       /* output written out early once this full (big RUNs) */

struct bolt_conn {
    bolt_sock *sock;
    const bolt_settings *settings;     /* borrowed from the driver, or own_settings */
    bolt_settings *own_settings;       /* bolt_connect only */
    bolt_uri *own_uri;
    char address[300];
    int version;                       /* major << 8 | minor */
    int utc_patch;
    bolt_state state;                  /* READY, FAILED or DEFUNCT; TX/STREAMING derived */
    int in_tx;                         /* explicit transaction open */
    int begin_unacked;                 /* BEGIN queued, its SUCCESS not read yet */
    int tx_failed;                     /* FAILURE inside a transaction, not yet reset */
    bolt_enc out;                      /* chunked requests not yet written */
    bolt_enc msg;                      /* scratch: the request being encoded */
    int wipe_out;                      /* out holds a credential: zero it after writing */
    conn_req q[CONN_QUEUE_MAX];        /* requests awaiting their summary, FIFO */
    int qhead, nq;
    bolt_dechunker dech;
    uint8_t rbuf[65536];
    size_t rpos, rlen;
    bolt_error failure;                /* the FAILURE that put the server in FAILED */
    int has_failure;
    uint64_t ignored;
    char server_agent[96], conn_id[64];
    char *bookmark;
    bolt_result *cur;                  /* the open result, if any */
    int64_t idle_since;
    void *pool_tag;
};

struct bolt_result {
    bolt_conn *conn;                   /* NULL once finished or detached */
    bolt_value *fields;
    bolt_value *record;
    bolt_value *meta;
    bolt_summary summary;
    int in_tx;
    int done;
    int pull_outstanding;              /* a PULL/DISCARD whose summary is still due */
    int has_more;
    int rc;                            /* the error that ended the stream */
    bolt_error err;
};

int conn_kill(bolt_conn *c, bolt_error *err, int code, const char *why);
int conn_defunct_error(bolt_conn *c, bolt_error *err);
int conn_queue(bolt_conn *c, conn_req kind, bolt_error *err);
/* The same for the message c->msg[0..at) + part + c->msg[at..): part (a caller's encoded
 * parameters, up to megabytes) is neither copied into c->msg nor held whole in the output:
 * the output is written to the socket each time it passes CONN_OUT_SPILL bytes. */
int conn_queue_spliced(bolt_conn *c, conn_req kind, const bolt_enc *part, size_t at,
                       bolt_error *err);
int conn_queue_simple(bolt_conn *c, conn_req kind, uint8_t tag, bolt_error *err);
int conn_flush(bolt_conn *c, bolt_error *err);
int conn_recv(bolt_conn *c, bolt_value **out, bolt_error *err);
int conn_take_summary(bolt_conn *c, bolt_value *m, bolt_value **meta, bolt_error *err);
int conn_expect_summary(bolt_conn *c, bolt_value **meta, bolt_error *err);
int conn_drain(bolt_conn *c, bolt_error *err);
int conn_prepare(bolt_conn *c, bolt_error *err);
int conn_finish_result(bolt_conn *c, bolt_error *err);
void result_detach(bolt_result *r);

#endif
