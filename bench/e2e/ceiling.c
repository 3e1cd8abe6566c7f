/* bench/e2e/ceiling.c: the ceiling of the end-to-end benchmark (scripts/bench-e2e).
 *
 * The same UNWIND batches the worker writes, written straight to Neo4j with the project's
 * Bolt client (graph_write), with nothing else in the way: no Kafka, no Valkey, no HTTP, no
 * logging, no offsets. Everything else happens BEFORE the timed part:
 *
 *   load      records from `tools/gen.py ... --dump FILE` (JSON lines {"key":hex,"value":hex},
 *             in publish order)
 *   decode    record_decode_receipt / record_decode_factoid, as the worker's consumers do;
 *             factoids whose schema id is not --allowed-schema-id are errors
 *   dedupe    a record whose id (the idempotency key) was seen before in its stream is
 *             dropped, as the idempotency cache and the in-batch check drop it
 *   enrich    every distinct fido and retailer id, fetched once from the FIDO / Retailer
 *             services (the fakes) with the worker's own enrich client
 *   batch     consecutive groups of --batch-size RECORDS (skipped ones included), as the
 *             worker's collect() takes batch_size records off the topic; each batch carries
 *             the products (sorted by fido) and retailers its purchases name, each once
 *             (graph_batch).
 *             --group purchases instead fills every batch with batch-size purchases.
 *
 * Timed: only graph_write() of every batch, --writers threads per stream (receipts,
 * factoids; default 1), so with both streams two writers run concurrently, as the worker's
 * two consumers do; with --writers 2 a stream's batches alternate between two threads, as two
 * worker instances on different partitions would write them. The graph must hold nothing of
 * these records beforehand (the driver script wipes it, or restores its preloaded state);
 * constraints are ensured before timing starts.
 *
 * --shape old writes with the statement texts the worker used before issue 14 (kept below,
 * OLD_QUERIES, and only here: they take the same parameters as graph.c's own, which sends no
 * users statement for them), so that one run reports the old and the new shape side by side
 * on the same batches; --shape new (default) is graph_write itself.
 *
 * --profile: PROFILE of every statement (graph_profile_batch: in a transaction rolled back,
 * so the graph is unchanged) of the middle batch of the first stream before the timed part
 * ("start": the graph as given, empty or preloaded), of its last batch after the others are
 * written ("end": held back from the timed part, profiled, then written untimed), and of
 * that last batch again ("redelivery": every purchase already there). Db hits per statement,
 * per purchase, Eager operators and the costliest operators land in the JSON ("profile").
 *
 *   ceiling [-r RECEIPTS.jsonl] [-f FACTOIDS.jsonl] [-b BATCH] [--group records|purchases]
 *           --fido URL --retailer URL [--uri bolt://127.0.0.1:7687] [--allowed-schema-id 1]
 *           [--pool-size 4] [--neo4j-pid PID] [--shape new|old] [--writers 1|2] [--profile]
 *   password: $NEO4J_PASSWORD, default cgw-local-password
 *
 * Prints one JSON object on stdout: per stream the outcome counts, batches, purchases and
 * graph_write seconds (sum and p50/p95/max per batch), and overall wall seconds of the timed
 * part, persisted/s, transaction attempts beyond the first (deadlocks and other transient
 * errors retried), the process's CPU during the timed part (and Neo4j's, with --neo4j-pid),
 * and what the loads took.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "bolt/bolt.h"
#include "enrich/enrich.h"
#include "graph/graph.h"
#include "record/record.h"

/* utime+stime of another process (Neo4j), seconds; -1 when unreadable. */
static double proc_cpu_s(long pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ")": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void die(const char *fmt, const char *a) {
    fprintf(stderr, "ceiling: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(2);
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) die("%s", "out of memory");
    return p;
}

static void *xrealloc(void *p, size_t size) {
    p = realloc(p, size ? size : 1);
    if (!p) die("%s", "out of memory");
    return p;
}

/* ------------------------------------------------------------------ the old statement shape
 *
 * The four statements of src/graph/graph.c before issue 14 (commit beab3ea), verbatim: SET
 * += map, the User MERGEd per purchase, the Product MERGEd again per line, every relationship
 * MERGEd, every node SET in every transaction. */
static const char OLD_Q_CATEGORIES[] =
    "UNWIND $rows AS r "
    "MERGE (c:Category {path: r.path}) "
    "SET c.name = r.name, c.depth = r.depth "
    "WITH c, r WHERE r.parent IS NOT NULL "
    "MERGE (p:Category {path: r.parent}) "
    "MERGE (c)-[:CHILD_OF]->(p)";

/* props holds only what the service knows: an unknown product keeps what it had. */
static const char OLD_Q_PRODUCTS[] =
    "UNWIND $rows AS r "
    "MERGE (p:Product {fido: r.fido}) "
    "SET p += r.props "
    "WITH p, r WHERE r.category IS NOT NULL "
    "MATCH (c:Category {path: r.category}) "
    "MERGE (p)-[:IN_CATEGORY]->(c)";

static const char OLD_Q_RETAILERS[] =
    "UNWIND $rows AS r "
    "MERGE (s:Retailer {retailer_id: r.retailer_id}) "
    "SET s += r.props";

/* r.retailer is [] or [retailer_id]: FOREACH makes AT conditional without a subquery.
 * CONTAINS is keyed by line, so two lines with the same product are two relationships and a
 * re-write matches the ones already there.
 *
 * Whether the purchase was in the graph before (a rewrite after a crash or without the
 * idempotency cache): ON CREATE SET marks a node this MERGE created, the flag is read and the
 * mark removed in the same statement, so nothing of it is ever committed. Unlike an OPTIONAL
 * MATCH before the MERGE, this is decided under MERGE's lock on the unique key: of two writers
 * racing on one purchase exactly one sees it created. Rows carry their index in the batch (r.n)
 * and only the rewrites come back. */
static const char OLD_Q_PURCHASES[] =
    "UNWIND $rows AS r "
    "MERGE (u:User {user_id: r.user_id}) "
    "MERGE (p:Purchase {purchase_id: r.purchase_id}) "
    "ON CREATE SET p.cgw_created = true "
    "WITH u, p, r, p.cgw_created IS NULL AS existed "
    "REMOVE p.cgw_created "
    "SET p += r.props "
    "MERGE (u)-[:MADE]->(p) "
    "FOREACH (rid IN r.retailer | "
    "  MERGE (s:Retailer {retailer_id: rid}) MERGE (p)-[:AT]->(s)) "
    "FOREACH (i IN r.items | "
    "  MERGE (pr:Product {fido: i.fido}) "
    "  MERGE (p)-[c:CONTAINS {line: i.line}]->(pr) "
    "  SET c += i.props) "
    "WITH r, existed WHERE existed "
    "RETURN r.n AS n";


static const graph_queries OLD_QUERIES = {OLD_Q_CATEGORIES, OLD_Q_PRODUCTS, OLD_Q_RETAILERS, NULL,
                                          OLD_Q_PURCHASES};

/* ------------------------------------------------------------------ string -> index map */

typedef struct strmap {
    const char **keys;
    size_t *vals;
    size_t cap, n;
} strmap;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static void strmap_grow(strmap *m);

/* Index of key, or (size_t)-1; with insert, adds it with value val and returns val. */
static size_t strmap_get(strmap *m, const char *key, int insert, size_t val) {
    if (insert && (m->n + 1) * 2 > m->cap) strmap_grow(m);
    if (!m->cap) return (size_t)-1;
    size_t i = hash_str(key) & (m->cap - 1);
    while (m->keys[i]) {
        if (!strcmp(m->keys[i], key)) return m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    if (!insert) return (size_t)-1;
    m->keys[i] = key;
    m->vals[i] = val;
    m->n++;
    return val;
}

static void strmap_grow(strmap *m) {
    strmap big = {0};
    big.cap = m->cap ? m->cap * 2 : 1024;
    big.keys = xcalloc(big.cap, sizeof *big.keys);
    big.vals = xcalloc(big.cap, sizeof *big.vals);
    for (size_t i = 0; i < m->cap; i++)
        if (m->keys[i]) strmap_get(&big, m->keys[i], 1, m->vals[i]);
    free(m->keys);
    free(m->vals);
    *m = big;
}

static void strmap_free(strmap *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ streams */

typedef struct batch {
    const record_purchase **ps;
    size_t n;
    graph_product *gp;
    size_t ngp;
    graph_retailer *gr;
    size_t ngr;
    double seconds;
} batch;

typedef struct stream {
    const char *name;       /* "receipt" / "factoid" */
    const char *path;
    int factoid;
    size_t records;
    size_t ok, skipped[RECORD_REASON_COUNT], errors;
    record_purchase **purchases; /* one per record: NULL unless it is to be persisted */
    batch *batches;
    size_t nbatches;
    size_t persisted;
    double write_s, t_end;
    int64_t nodes_created, relationships_created, retries;
    int failed;
    char error[512];
} stream;

typedef struct shared {
    bolt_driver *d;
    double t_start;
    const graph_queries *queries;   /* --shape */
    size_t writers;                 /* threads per stream */
    int hold_last;                  /* --profile: the last batch is written after the timer */
} shared;

/* One writer thread: batches first, first + step, ... of its stream. Its sums are its own
 * and added to the stream's after the join. */
typedef struct job {
    stream *s;
    size_t first, step;
    double write_s, t_end;
    int64_t nodes_created, relationships_created, retries;
    int failed;
    char error[512];
} job;

static shared G;

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static uint8_t *unhex(const char *s, size_t *len) {
    size_t n = strlen(s);
    if (n % 2) return NULL;
    uint8_t *out = xcalloc(n / 2, 1);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) { free(out); return NULL; }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

/* Load, decode, filter and drop duplicates. */
static void load_stream(stream *s, int32_t allowed_schema_id) {
    FILE *f = fopen(s->path, "r");
    if (!f) die("cannot open %s", s->path);
    size_t cap = 0;
    strmap seen = {0};
    char *line = NULL;
    size_t linecap = 0;
    ssize_t got;
    while ((got = getline(&line, &linecap, f)) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        const char *hv = j ? json_string_value(json_object_get(j, "value")) : NULL;
        if (!hv) die("bad dump line in %s", s->path);
        size_t len = 0;
        uint8_t *val = unhex(hv, &len);
        json_decref(j);
        if (!val) die("bad hex in %s", s->path);
        if (s->records == cap) {
            cap = cap ? cap * 2 : 65536;
            s->purchases = xrealloc(s->purchases, cap * sizeof *s->purchases);
        }
        record_result r;
        memset(&r, 0, sizeof r);
        if (s->factoid) record_decode_factoid(val, len, -1, &r);
        else record_decode_receipt(val, len, &r);
        free(val);
        record_purchase *p = NULL;
        if (r.status == RECORD_OK && s->factoid && r.schema_id != allowed_schema_id) {
            record_purchase_free(r.purchase);
            r.purchase = NULL;
            r.status = RECORD_ERROR;
        }
        if (r.status == RECORD_OK) {
            if (strmap_get(&seen, r.purchase->id, 0, 0) != (size_t)-1) {
                s->skipped[RECORD_REASON_DUPLICATE]++;
                record_purchase_free(r.purchase);
            } else {
                strmap_get(&seen, r.purchase->id, 1, 1);
                p = r.purchase;
                s->ok++;
            }
        } else if (r.status == RECORD_SKIP) {
            s->skipped[r.reason]++;
        } else {
            s->errors++;
        }
        s->purchases[s->records++] = p;
    }
    free(line);
    fclose(f);
    strmap_free(&seen);
}

/* ------------------------------------------------------------------ metadata */

typedef struct catalogue {
    strmap fido_idx, rid_idx;
    graph_product *gp;
    graph_retailer *gr;
    size_t ngp, ngr;
    struct enrich_results *results;   /* kept alive: gp/gr borrow their strings */
    size_t nresults;
} catalogue;

static void fetch_catalogue(catalogue *cat, stream *ss, size_t nss, const char *fido_url,
                            const char *retailer_url) {
    const char **fidos = NULL, **rids = NULL;
    size_t nf = 0, nr = 0, capf = 0, capr = 0;
    for (size_t k = 0; k < nss; k++)
        for (size_t i = 0; i < ss[k].records; i++) {
            const record_purchase *p = ss[k].purchases[i];
            if (!p) continue;
            for (size_t j = 0; j < p->nitems; j++)
                if (strmap_get(&cat->fido_idx, p->items[j].fido, 0, 0) == (size_t)-1) {
                    strmap_get(&cat->fido_idx, p->items[j].fido, 1, nf);
                    if (nf == capf) fidos = xrealloc(fidos, (capf = capf ? capf * 2 : 4096) * sizeof *fidos);
                    fidos[nf++] = p->items[j].fido;
                }
            if (p->retailer_id && strmap_get(&cat->rid_idx, p->retailer_id, 0, 0) == (size_t)-1) {
                strmap_get(&cat->rid_idx, p->retailer_id, 1, nr);
                if (nr == capr) rids = xrealloc(rids, (capr = capr ? capr * 2 : 256) * sizeof *rids);
                rids[nr++] = p->retailer_id;
            }
        }
    struct enrich_options o;
    enrich_options_init(&o);
    o.fido_url = fido_url;
    o.retailer_url = retailer_url;
    o.timeout_ms = 30000;
    char err[256];
    struct enrich_client *ec = enrich_client_new(&o, err, sizeof err);
    if (!ec) die("enrich client: %s", err);
    const size_t chunk = 2000;
    cat->results = xcalloc(nf / chunk + nr / chunk + 2, sizeof *cat->results);
    cat->gp = xcalloc(nf, sizeof *cat->gp);
    cat->gr = xcalloc(nr, sizeof *cat->gr);
    for (size_t off = 0; off < nf; off += chunk) {
        size_t n = nf - off < chunk ? nf - off : chunk;
        struct enrich_results *r = &cat->results[cat->nresults++];
        if (enrich_products(ec, fidos + off, n, r) != ENRICH_OK || r->failed)
            die("FIDO service: %s", r->error);
        for (size_t i = 0; i < n; i++) {
            const struct enrich_product *p = &r->products[i];
            cat->gp[off + i] = (graph_product){p->fido, p->known, p->name, p->brand,
                                               (const char *const *)p->categories,
                                               p->categories_count};
        }
    }
    for (size_t off = 0; off < nr; off += chunk) {
        size_t n = nr - off < chunk ? nr - off : chunk;
        struct enrich_results *r = &cat->results[cat->nresults++];
        if (enrich_retailers(ec, rids + off, n, r) != ENRICH_OK || r->failed)
            die("Retailer service: %s", r->error);
        for (size_t i = 0; i < n; i++) {
            const struct enrich_retailer *x = &r->retailers[i];
            cat->gr[off + i] = (graph_retailer){x->retailer_id, x->known, x->name, x->store_type};
        }
    }
    cat->ngp = nf;
    cat->ngr = nr;
    enrich_client_free(ec);
    free(fidos);
    free(rids);
}

/* ------------------------------------------------------------------ batches */

static int cmp_gp_fido(const void *a, const void *b) {
    return strcmp(((const graph_product *)a)->fido, ((const graph_product *)b)->fido);
}

static void close_batch(batch *b, const catalogue *cat, size_t *mark_f, size_t *mark_r,
                        unsigned *gen) {
    /* the products and retailers the purchases name, each once */
    (*gen)++;
    b->gp = xcalloc(1, sizeof *b->gp);
    b->gr = xcalloc(1, sizeof *b->gr);
    size_t capf = 0, capr = 0;
    for (size_t i = 0; i < b->n; i++) {
        const record_purchase *p = b->ps[i];
        for (size_t j = 0; j < p->nitems; j++) {
            size_t k = strmap_get((strmap *)&cat->fido_idx, p->items[j].fido, 0, 0);
            if (mark_f[k] == *gen) continue;
            mark_f[k] = *gen;
            if (b->ngp == capf) b->gp = xrealloc(b->gp, (capf = capf ? capf * 2 : 256) * sizeof *b->gp);
            b->gp[b->ngp++] = cat->gp[k];
        }
        if (p->retailer_id) {
            size_t k = strmap_get((strmap *)&cat->rid_idx, p->retailer_id, 0, 0);
            if (mark_r[k] == *gen) continue;
            mark_r[k] = *gen;
            if (b->ngr == capr) b->gr = xrealloc(b->gr, (capr = capr ? capr * 2 : 64) * sizeof *b->gr);
            b->gr[b->ngr++] = cat->gr[k];
        }
    }
    qsort(b->gp, b->ngp, sizeof *b->gp, cmp_gp_fido); /* graph.h: sorted by fido */
}

static void make_batches(stream *s, const catalogue *cat, size_t bsize, int by_purchases) {
    size_t *mark_f = xcalloc(cat->ngp, sizeof *mark_f);
    size_t *mark_r = xcalloc(cat->ngr, sizeof *mark_r);
    unsigned gen = 0;
    size_t cap = 0;
    batch cur = {0};
    cur.ps = xcalloc(bsize, sizeof *cur.ps);
    size_t taken = 0; /* records (or purchases) in cur */
    for (size_t i = 0; i <= s->records; i++) {
        int last = i == s->records;
        if (!last && s->purchases[i]) cur.ps[cur.n++] = s->purchases[i];
        if (!last && (by_purchases ? s->purchases[i] != NULL : 1)) taken++;
        if ((taken == bsize || last) && cur.n) {
            close_batch(&cur, cat, mark_f, mark_r, &gen);
            if (s->nbatches == cap) s->batches = xrealloc(s->batches, (cap = cap ? cap * 2 : 256) * sizeof *s->batches);
            s->batches[s->nbatches++] = cur;
            s->persisted += cur.n;
            memset(&cur, 0, sizeof cur);
            cur.ps = xcalloc(bsize, sizeof *cur.ps);
        }
        if (taken == bsize) taken = 0;
    }
    free(cur.ps);
    free(mark_f);
    free(mark_r);
}

/* ------------------------------------------------------------------ the timed part */

/* scratch: the writer thread's buffers, kept between its batches as the worker's are. */
static int write_batch(batch *b, graph_scratch *scratch, graph_stats *gs, bolt_error *be) {
    graph_batch gb = {b->ps, b->n, b->gp, b->ngp, b->gr, b->ngr};
    double t0 = now_s();
    int rc = graph_write_queries(G.d, "neo4j", &gb, G.queries, scratch, gs, be);
    b->seconds = now_s() - t0;
    return rc;
}

static void *writer(void *arg) {
    job *j = arg;
    size_t n = j->s->nbatches - (G.hold_last && j->s->nbatches > 1);
    graph_scratch *scratch = graph_scratch_new();
    for (size_t i = j->first; i < n; i += j->step) {
        graph_stats gs;
        bolt_error be;
        int rc = write_batch(&j->s->batches[i], scratch, &gs, &be);
        j->write_s += j->s->batches[i].seconds;
        if (rc != BOLT_OK) {
            j->failed = 1;
            snprintf(j->error, sizeof j->error, "batch %zu: %s: %.400s", i, bolt_code_name(rc),
                     be.message);
            break;
        }
        j->nodes_created += gs.nodes_created;
        j->relationships_created += gs.relationships_created;
        j->retries += gs.attempts > 1 ? gs.attempts - 1 : 0;
    }
    j->t_end = now_s();
    graph_scratch_free(scratch);
    return NULL;
}

static void join_job(const job *j) {
    stream *s = j->s;
    s->write_s += j->write_s;
    s->nodes_created += j->nodes_created;
    s->relationships_created += j->relationships_created;
    s->retries += j->retries;
    if (j->t_end > s->t_end) s->t_end = j->t_end;
    if (j->failed && !s->failed) {
        s->failed = 1;
        snprintf(s->error, sizeof s->error, "%s", j->error);
    }
}

/* ------------------------------------------------------------------ --profile */

static json_t *profile_json(const batch *b, const char *when) {
    graph_batch gb = {b->ps, b->n, b->gp, b->ngp, b->gr, b->ngr};
    graph_profile pr[GRAPH_NSTATEMENTS];
    bolt_error be;
    json_t *o = json_object();
    json_object_set_new(o, "when", json_string(when));
    json_object_set_new(o, "purchases", json_integer((json_int_t)b->n));
    size_t lines = 0;
    for (size_t i = 0; i < b->n; i++) lines += b->ps[i]->nitems;
    json_object_set_new(o, "lines", json_integer((json_int_t)lines));
    if (graph_profile_batch(G.d, "neo4j", &gb, G.queries, pr, &be) != BOLT_OK) {
        json_object_set_new(o, "error", json_string(be.message));
        return o;
    }
    json_t *st = json_array();
    int64_t total = 0;
    for (size_t i = 0; i < GRAPH_NSTATEMENTS; i++) {
        if (!pr[i].rows) continue;
        json_array_append_new(st, json_pack("{s:s, s:I, s:I, s:i, s:s}", "name", pr[i].name,
                                            "rows", (json_int_t)pr[i].rows, "db_hits",
                                            (json_int_t)pr[i].db_hits, "eager", pr[i].eager,
                                            "top", pr[i].top));
        total += pr[i].db_hits;
    }
    json_object_set_new(o, "statements", st);
    json_object_set_new(o, "db_hits", json_integer(total));
    json_object_set_new(o, "db_hits_per_purchase",
                        json_real(b->n ? (double)total / (double)b->n : 0));
    return o;
}

/* The last batch: profiled, written (untimed), profiled again as a re-delivery. */
static void profile_last(stream *s, json_t *prof) {
    batch *last = &s->batches[s->nbatches - 1];
    if (prof) json_array_append_new(prof, profile_json(last, "end"));
    graph_stats gs;
    bolt_error be;
    if (write_batch(last, NULL, &gs, &be) != BOLT_OK) {
        s->failed = 1;
        snprintf(s->error, sizeof s->error, "last batch: %.400s", be.message);
        return;
    }
    s->write_s += last->seconds;
    s->nodes_created += gs.nodes_created;
    s->relationships_created += gs.relationships_created;
    if (prof) json_array_append_new(prof, profile_json(last, "redelivery"));
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void stream_json(json_t *out, const stream *s) {
    json_t *o = json_object();
    json_object_set_new(o, "records", json_integer((json_int_t)s->records));
    json_object_set_new(o, "eligible", json_integer((json_int_t)s->ok));
    json_t *sk = json_object();
    for (int r = 1; r < RECORD_REASON_COUNT; r++)
        if (s->skipped[r])
            json_object_set_new(sk, record_reason_name((record_reason)r),
                                json_integer((json_int_t)s->skipped[r]));
    json_object_set_new(o, "skipped", sk);
    json_object_set_new(o, "errors", json_integer((json_int_t)s->errors));
    json_object_set_new(o, "batches", json_integer((json_int_t)s->nbatches));
    json_object_set_new(o, "persisted", json_integer((json_int_t)s->persisted));
    json_object_set_new(o, "write_seconds", json_real(s->write_s));
    json_object_set_new(o, "nodes_created", json_integer(s->nodes_created));
    json_object_set_new(o, "retries", json_integer(s->retries));
    json_object_set_new(o, "relationships_created", json_integer(s->relationships_created));
    if (s->nbatches) {
        double *v = xcalloc(s->nbatches, sizeof *v);
        size_t sum = 0;
        for (size_t i = 0; i < s->nbatches; i++) { v[i] = s->batches[i].seconds; sum += s->batches[i].n; }
        qsort(v, s->nbatches, sizeof *v, cmp_double);
        json_object_set_new(o, "batch_p50_s", json_real(v[s->nbatches / 2]));
        json_object_set_new(o, "batch_p95_s", json_real(v[s->nbatches * 95 / 100]));
        json_object_set_new(o, "batch_max_s", json_real(v[s->nbatches - 1]));
        json_object_set_new(o, "purchases_per_batch", json_real((double)sum / (double)s->nbatches));
        free(v);
    }
    if (s->failed) json_object_set_new(o, "error", json_string(s->error));
    json_object_set_new(out, s->name, o);
}

int main(int argc, char **argv) {
    const char *rpath = NULL, *fpath = NULL, *fido = NULL, *retailer = NULL;
    const char *uri = "bolt://127.0.0.1:7687";
    size_t bsize = 500;
    int by_purchases = 0, pool = 4, profile = 0;
    size_t writers = 1;
    const graph_queries *queries = NULL;
    long neo4j_pid = 0;
    int32_t allowed = 1;
    static const struct option opts[] = {
        {"receipts", required_argument, 0, 'r'}, {"factoids", required_argument, 0, 'f'},
        {"batch-size", required_argument, 0, 'b'}, {"group", required_argument, 0, 'g'},
        {"fido", required_argument, 0, 'F'}, {"retailer", required_argument, 0, 'R'},
        {"uri", required_argument, 0, 'u'}, {"allowed-schema-id", required_argument, 0, 'a'},
        {"pool-size", required_argument, 0, 'p'}, {"neo4j-pid", required_argument, 0, 'n'},
        {"shape", required_argument, 0, 's'}, {"writers", required_argument, 0, 'w'},
        {"profile", no_argument, 0, 'P'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "r:f:b:", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rpath = optarg; break;
        case 'f': fpath = optarg; break;
        case 'b': bsize = (size_t)strtoul(optarg, NULL, 10); break;
        case 'g': by_purchases = !strcmp(optarg, "purchases"); break;
        case 'F': fido = optarg; break;
        case 'R': retailer = optarg; break;
        case 'u': uri = optarg; break;
        case 'a': allowed = (int32_t)strtol(optarg, NULL, 10); break;
        case 'p': pool = atoi(optarg); break;
        case 'n': neo4j_pid = strtol(optarg, NULL, 10); break;
        case 's': queries = !strcmp(optarg, "old") ? &OLD_QUERIES : NULL; break;
        case 'w': writers = (size_t)strtoul(optarg, NULL, 10); break;
        case 'P': profile = 1; break;
        default:
            fprintf(stderr, "usage: ceiling [-r R.jsonl] [-f F.jsonl] [-b N] [--group records|purchases] "
                            "--fido URL --retailer URL [--uri URI] [--allowed-schema-id ID] "
                            "[--shape new|old] [--writers 1|2] [--profile]\n");
            return 2;
        }
    }
    if ((!rpath && !fpath) || !fido || !retailer || bsize < 1) die("%s", "need -r/-f, --fido, --retailer");
    if (writers < 1 || writers > 8) die("%s", "--writers: 1 to 8");
    G.queries = queries;
    G.writers = writers;
    G.hold_last = profile;

    stream ss[2];
    size_t nss = 0;
    memset(ss, 0, sizeof ss);
    if (rpath) ss[nss++] = (stream){.name = "receipt", .path = rpath, .factoid = 0};
    if (fpath) ss[nss++] = (stream){.name = "factoid", .path = fpath, .factoid = 1};

    double t0 = now_s();
    for (size_t k = 0; k < nss; k++) load_stream(&ss[k], allowed);
    double t_load = now_s() - t0;

    t0 = now_s();
    catalogue cat;
    memset(&cat, 0, sizeof cat);
    fetch_catalogue(&cat, ss, nss, fido, retailer);
    double t_enrich = now_s() - t0;
    for (size_t k = 0; k < nss; k++) make_batches(&ss[k], &cat, bsize, by_purchases);

    const char *pw = getenv("NEO4J_PASSWORD");
    bolt_config bc;
    bolt_config_init(&bc);
    bc.user_agent = "cgw-bench-ceiling/1";
    bc.principal = "neo4j";
    bc.credentials = pw && *pw ? pw : "cgw-local-password";
    bc.auth_scheme = "basic";
    bc.default_db = "neo4j";
    bc.max_pool_size = pool;
    bc.max_retry_time_ms = 30000;
    bc.retry_initial_delay_ms = 200;
    bc.retry_unknown_commit = 1;
    bolt_error be;
    if (bolt_driver_new(uri, &bc, &G.d, &be) != BOLT_OK) die("neo4j: %s", be.message);
    if (graph_ensure_schema(G.d, "neo4j", &be) != BOLT_OK) die("neo4j schema: %s", be.message);
    /* Warm the pool: one connection per writer, outside the timed part (the worker's
     * connections are opened at start too, by graph_ensure_schema and its first batch). */
    {
        bolt_conn *conns[16] = {0};
        size_t nconns = nss * writers < (size_t)pool ? nss * writers : (size_t)pool;
        for (size_t k = 0; k < nconns; k++)
            if (bolt_driver_acquire(G.d, "neo4j", 0, &conns[k], &be) != BOLT_OK)
                die("neo4j: %s", be.message);
        for (size_t k = 0; k < nconns; k++) bolt_driver_release(G.d, conns[k]);
    }

    json_t *prof = profile ? json_array() : NULL;
    if (prof && ss[0].nbatches)
        json_array_append_new(prof, profile_json(&ss[0].batches[ss[0].nbatches / 2], "start"));

    /* ---- timed ---- */
    double cpu0 = cpu_s();
    double neo0 = neo4j_pid ? proc_cpu_s(neo4j_pid) : -1;
    G.t_start = now_s();
    pthread_t th[16];
    job jobs[16];
    size_t njobs = 0;
    memset(jobs, 0, sizeof jobs);
    for (size_t k = 0; k < nss; k++)
        for (size_t w = 0; w < writers; w++)
            jobs[njobs++] = (job){.s = &ss[k], .first = w, .step = writers};
    for (size_t k = 0; k < njobs; k++)
        if (pthread_create(&th[k], NULL, writer, &jobs[k]) != 0) die("%s", "pthread_create");
    for (size_t k = 0; k < njobs; k++) pthread_join(th[k], NULL);
    for (size_t k = 0; k < njobs; k++) join_job(&jobs[k]);
    double t_end = 0;
    for (size_t k = 0; k < nss; k++) if (ss[k].t_end > t_end) t_end = ss[k].t_end;
    double wall = t_end - G.t_start;
    double cpu = cpu_s() - cpu0;
    double neo = neo0 >= 0 ? proc_cpu_s(neo4j_pid) - neo0 : -1;
    /* ---- end ---- */
    if (prof)
        for (size_t k = 0; k < nss; k++)
            if (ss[k].nbatches > 1 && !ss[k].failed) profile_last(&ss[k], k == 0 ? prof : NULL);

    json_t *out = json_object();
    size_t persisted = 0, timed = 0;
    int failed = 0;
    for (size_t k = 0; k < nss; k++) {
        stream_json(out, &ss[k]);
        persisted += ss[k].persisted;
        timed += ss[k].persisted;
        if (G.hold_last && ss[k].nbatches > 1) timed -= ss[k].batches[ss[k].nbatches - 1].n;
        failed |= ss[k].failed;
    }
    json_object_set_new(out, "batch_size", json_integer((json_int_t)bsize));
    json_object_set_new(out, "group", json_string(by_purchases ? "purchases" : "records"));
    json_object_set_new(out, "persisted", json_integer((json_int_t)persisted));
    json_object_set_new(out, "wall_seconds", json_real(wall));
    json_object_set_new(out, "persisted_per_s", json_real(wall > 0 ? (double)timed / wall : 0));
    json_object_set_new(out, "client_cpu_seconds", json_real(cpu));
    if (neo0 >= 0) json_object_set_new(out, "neo4j_cpu_seconds", json_real(neo));
    json_object_set_new(out, "load_decode_seconds", json_real(t_load));
    json_object_set_new(out, "enrich_seconds", json_real(t_enrich));
    json_object_set_new(out, "products", json_integer((json_int_t)cat.ngp));
    json_object_set_new(out, "retailers", json_integer((json_int_t)cat.ngr));
    json_object_set_new(out, "ok", json_boolean(!failed));
    json_object_set_new(out, "shape", json_string(queries == &OLD_QUERIES ? "old" : "new"));
    json_object_set_new(out, "writers", json_integer((json_int_t)writers));
    if (prof) json_object_set_new(out, "profile", prof);
    char *txt = json_dumps(out, JSON_COMPACT);
    puts(txt);
    free(txt);
    json_decref(out);
    bolt_driver_free(G.d);
    for (size_t i = 0; i < cat.nresults; i++) enrich_results_free(&cat.results[i]);
    return failed ? 1 : 0;
}
