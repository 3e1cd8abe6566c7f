/* bench_bolt.c: the cgw Bolt client (src/bolt) side of `make bench-bolt`.
 *
 * A benchmark, not a test: see bench/bolt/README.md. This process does no timing of its
 * own. bench/bolt/harness.py drives it over stdin/stdout, one command a line, and measures
 * wall time and this process's CPU time (/proc/<pid>/stat) around each command, the same way
 * for every client:
 *
 *   write   MERGE the rows in UNWIND batches, one managed transaction per batch
 *           (bolt_session_write_batch: BEGIN+RUN+DISCARD+COMMIT in one write, retried on
 *           transient errors); answers "ok write rows=N created=C"
 *   read    stream MATCH (n:BenchRow) RETURN n.id, n.name, n.value, decoding every value;
 *           answers "ok read rows=N sum_id=S name_bytes=B sum_value=V"
 *   quit    exits
 *
 * The rows are generated once at start-up (not measured); encoding them into the
 * parameters of each batch is measured, as it is the client library's work.
 *
 * Environment: BENCH_URI (bolt://127.0.0.1:7687), NEO4J_USER (neo4j), NEO4J_PASSWORD
 * (cgw-local-password), BENCH_ROWS (100000), BENCH_BATCH (1000).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt/bolt.h"

#define WRITE_QUERY                                                                       \
    "UNWIND $rows AS r MERGE (n:BenchRow {id: r.id}) "                                    \
    "SET n.name = r.name, n.value = r.value, n.ts = r.ts"
#define READ_QUERY "MATCH (n:BenchRow) RETURN n.id, n.name, n.value"

typedef struct row {
    int64_t id, ts;
    double value;
    char name[24];
    size_t name_len;
} row;

static const char *env_or(const char *k, const char *dflt) {
    const char *v = getenv(k);
    return v && *v ? v : dflt;
}

static long env_long(const char *k, long dflt) {
    const char *v = getenv(k);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

/* The same rows in every client: id i, name "row-%08d", value i/2, ts 1.7e12 + i. */
static row *make_rows(size_t n) {
    row *rows = calloc(n, sizeof *rows);
    if (!rows) return NULL;
    for (size_t i = 0; i < n; i++) {
        rows[i].id = (int64_t)i;
        rows[i].value = (double)i * 0.5;
        rows[i].ts = INT64_C(1700000000000) + (int64_t)i;
        rows[i].name_len = (size_t)snprintf(rows[i].name, sizeof rows[i].name, "row-%08zu", i);
    }
    return rows;
}

static int do_write(bolt_driver *d, const row *rows, size_t n, size_t batch, bolt_enc *p,
                    int64_t *created, bolt_error *err) {
    *created = 0;
    for (size_t start = 0; start < n; start += batch) {
        size_t m = n - start < batch ? n - start : batch;
        bolt_enc_reset(p);
        bolt_enc_map_begin(p, 1);
        bolt_enc_string(p, "rows");
        bolt_enc_list_begin(p, m);
        for (size_t i = start; i < start + m; i++) {
            bolt_enc_map_begin(p, 4);
            bolt_enc_string_n(p, "id", 2);
            bolt_enc_int(p, rows[i].id);
            bolt_enc_string_n(p, "name", 4);
            bolt_enc_string_n(p, rows[i].name, rows[i].name_len);
            bolt_enc_string_n(p, "value", 5);
            bolt_enc_float(p, rows[i].value);
            bolt_enc_string_n(p, "ts", 2);
            bolt_enc_int(p, rows[i].ts);
        }
        if (bolt_enc_error(p)) {
            snprintf(err->message, sizeof err->message, "out of memory encoding a batch");
            return BOLT_ENOMEM;
        }
        bolt_summary s;
        int rc = bolt_session_write_batch(d, NULL, WRITE_QUERY, p, &s, err);
        if (rc) return rc;
        *created += s.counters.nodes_created;
    }
    return BOLT_OK;
}

typedef struct read_acc {
    int64_t rows, sum_id, name_bytes;
    double sum_value;
    int bad;
} read_acc;

static int on_record(void *ud, const bolt_value *rec) {
    read_acc *a = ud;
    const bolt_value *id = bolt_list_get(rec, 0), *name = bolt_list_get(rec, 1),
                     *value = bolt_list_get(rec, 2);
    size_t len = 0;
    if (bolt_value_type(id) != BOLT_INT || !bolt_value_string(name, &len) ||
        bolt_value_type(value) != BOLT_FLOAT) {
        a->bad++;
        return 1;
    }
    a->rows++;
    a->sum_id += bolt_value_int(id);
    a->name_bytes += (int64_t)len;
    a->sum_value += bolt_value_float(value);
    return 0;
}

static int do_read(bolt_driver *d, read_acc *a, bolt_error *err) {
    memset(a, 0, sizeof *a);
    bolt_conn *c;
    int rc = bolt_driver_acquire(d, NULL, 1, &c, err);
    if (rc) return rc;
    bolt_tx_opts opts = {0};
    opts.read_only = 1;
    rc = bolt_query(c, READ_QUERY, NULL, &opts, on_record, a, NULL, err);
    bolt_driver_release(d, c);
    return rc;
}

int main(void) {
    size_t n = (size_t)env_long("BENCH_ROWS", 100000);
    size_t batch = (size_t)env_long("BENCH_BATCH", 1000);
    if (n == 0 || batch == 0) {
        fprintf(stderr, "bench_bolt: BENCH_ROWS and BENCH_BATCH must be > 0\n");
        return 2;
    }
    bolt_config cfg;
    bolt_config_init(&cfg);
    cfg.user_agent = "cgw-bench-bolt/0.1";
    cfg.principal = env_or("NEO4J_USER", "neo4j");
    cfg.credentials = env_or("NEO4J_PASSWORD", "cgw-local-password");
    cfg.retry_initial_delay_ms = 100;
    cfg.retry_unknown_commit = 1;   /* the batch is a MERGE: safe to retry */
    bolt_driver *d;
    bolt_error err;
    int rc = bolt_driver_new(env_or("BENCH_URI", "bolt://127.0.0.1:7687"), &cfg, &d, &err);
    row *rows = make_rows(n);
    bolt_enc *p = bolt_enc_new();
    if (rc || !rows || !p) {
        fprintf(stderr, "bench_bolt: setup: %s\n", rc ? err.message : "out of memory");
        return 1;
    }
    /* Open the pooled connection now, so connecting is not measured in any client. */
    bolt_conn *c;
    if ((rc = bolt_driver_acquire(d, NULL, 0, &c, &err))) {
        fprintf(stderr, "bench_bolt: connect: %s: %s\n", bolt_code_name(rc), err.message);
        return 1;
    }
    int v = bolt_conn_version(c);
    bolt_driver_release(d, c);
    printf("ready cgw src/bolt, Bolt %d.%d\n", v >> 8, v & 0xFF);
    fflush(stdout);

    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strcmp(line, "quit")) break;
        if (!strcmp(line, "write")) {
            int64_t created;
            rc = do_write(d, rows, n, batch, p, &created, &err);
            if (rc) printf("err write %s: %s\n", bolt_code_name(rc), err.message);
            else printf("ok write rows=%zu created=%" PRId64 "\n", n, created);
        } else if (!strcmp(line, "read")) {
            read_acc a;
            rc = do_read(d, &a, &err);
            if (rc) printf("err read %s: %s\n", bolt_code_name(rc), err.message);
            else
                printf("ok read rows=%" PRId64 " sum_id=%" PRId64 " name_bytes=%" PRId64
                       " sum_value=%.1f\n", a.rows, a.sum_id, a.name_bytes, a.sum_value);
        } else {
            printf("err unknown command %s\n", line);
        }
        fflush(stdout);
    }
    bolt_enc_free(p);
    free(rows);
    bolt_driver_free(d);
    return 0;
}
