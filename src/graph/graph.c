/* src/graph/graph.c: Cypher and parameters for the purchase graph (see graph.h).
 *
 * Each batch is encoded once, straight into PackStream with the Bolt client's streaming
 * encoder (no intermediate value tree), and the five encoded parameter maps are reused on
 * every retry of the transaction. Rows are deduplicated and sorted here, on the client,
 * because Neo4j takes MERGE's locks in row order: two writers that sort the same way
 * cannot deadlock on each other's nodes.
 *
 * The statement shapes were chosen with PROFILE (bench/e2e/README.md, "Statements"): a node
 * that is already as the batch wants it is only read (no write lock, no relationship MERGE),
 * each user is merged once per batch, and a purchase is written with CREATE only by the
 * transaction that creates it, so the cost per purchase does not grow with the graph (the
 * old CONTAINS MERGE did, with the lines of the purchase and the degree of its products).
 *
 * Query texts are constants, so the server plans each once. Values only ever travel as
 * parameters. graph_write_queries and graph_profile_batch exist for the benchmark: other
 * texts over the same parameters, and PROFILE in a transaction that is rolled back.
 */
#include "graph/graph.h"
#include "base/base.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Categories first: products link to them; rows sorted by path put parents first. A
 * category's name and depth follow from its path, so an existing category is only read:
 * SET runs only when a property is missing (FOREACH over [] or [1]), and an unconditional
 * SET would take the node's write lock in every transaction, making concurrent writers
 * queue on the top categories. */
static const char Q_CATEGORIES[] =
    "UNWIND $rows AS r "
    "MERGE (c:Category {path: r.path}) "
    "FOREACH (_ IN CASE WHEN c.name IS NULL OR c.depth IS NULL THEN [1] ELSE [] END | "
    "  SET c.name = r.name, c.depth = r.depth) "
    "WITH c, r WHERE r.parent IS NOT NULL "
    "MERGE (p:Category {path: r.parent}) "
    "MERGE (c)-[:CHILD_OF]->(p)";

/* r.props holds only what the service knows: an unknown product keeps what it had (a product
 * whose deepest category changed moves: its other IN_CATEGORY links go, contract §6), and a
 * product whose metadata and category link are already in the graph is only read (no write
 * lock, no IN_CATEGORY MERGE): only the first batch that names a product, or the first after
 * its metadata changed, writes it. Explicit SETs (no `+= map`): the planner knows which
 * properties are written. */
static const char Q_PRODUCTS[] =
    "UNWIND $rows AS r "
    "MERGE (p:Product {fido: r.fido}) "
    "WITH p, r WHERE NOT (coalesce(p.name = r.props.name, r.props.name IS NULL) "
    "  AND coalesce(p.brand = r.props.brand, r.props.brand IS NULL) "
    "  AND (r.category IS NULL OR "
    "       EXISTS { MATCH (p)-[:IN_CATEGORY]->(:Category {path: r.category}) })) "
    "SET p.name = coalesce(r.props.name, p.name), p.brand = coalesce(r.props.brand, p.brand) "
    "WITH p, r WHERE r.category IS NOT NULL "
    "CALL (p, r) { "
    "  MATCH (p)-[old:IN_CATEGORY]->(o:Category) WHERE o.path <> r.category DELETE old "
    "} "
    "MATCH (c:Category {path: r.category}) "
    "MERGE (p)-[:IN_CATEGORY]->(c)";

static const char Q_RETAILERS[] =
    "UNWIND $rows AS r "
    "MERGE (s:Retailer {retailer_id: r.retailer_id}) "
    "WITH s, r WHERE NOT (coalesce(s.name = r.props.name, r.props.name IS NULL) "
    "  AND coalesce(s.store_type = r.props.store_type, r.props.store_type IS NULL)) "
    "SET s.name = coalesce(r.props.name, s.name), "
    "    s.store_type = coalesce(r.props.store_type, s.store_type)";

/* Each distinct user of the batch once (sorted), not once per purchase. */
static const char Q_USERS[] =
    "UNWIND $rows AS r "
    "MERGE (:User {user_id: r})";

/* A purchase is written whole by the one transaction that creates it, so a purchase already
 * in the graph is complete: a re-delivery (a replay after a crash, a copy the idempotency
 * cache missed) is skipped, not merged again line by line. Whether this MERGE created the
 * node: ON CREATE SET marks it, the mark is read and removed in the same statement, so it is
 * never committed. This is decided under MERGE's lock on the unique key: of two writers
 * racing on one purchase, the second waits for the first to commit and then finds it, so
 * exactly one creates it and writes its relationships with CREATE (no MERGE that grows with
 * the lines already there). Users, products and retailers were merged by the statements
 * before, in this transaction: MATCHed here. Rows carry their index in the batch (r.n) and
 * only the purchases that were there already come back. */
static const char Q_PURCHASES[] =
    "UNWIND $rows AS r "
    "MERGE (p:Purchase {purchase_id: r.purchase_id}) "
    "ON CREATE SET p.cgw_created = true "
    "WITH p, r, p.cgw_created IS NOT NULL AS created "
    "CALL (p, r, created) { "
    "  WITH p, r WHERE created "
    "  REMOVE p.cgw_created "
    "  SET p.source = r.props.source, p.purchased_at = r.props.purchased_at, "
    "      p.total_cents = r.props.total_cents, p.currency = r.props.currency, "
    "      p.receipt_id = r.props.receipt_id, p.order_id = r.props.order_id, "
    "      p.factoid_id = r.props.factoid_id "
    "  WITH p, r "
    "  MATCH (u:User {user_id: r.user_id}) "
    "  CREATE (u)-[:MADE]->(p) "
    "  WITH p, r "
    "  CALL (p, r) { "
    "    UNWIND r.retailer AS rid "
    "    MATCH (s:Retailer {retailer_id: rid}) "
    "    CREATE (p)-[:AT]->(s) "
    "  } "
    "  WITH p, r "
    "  UNWIND r.items AS i "
    "  MATCH (pr:Product {fido: i.fido}) "
    "  CREATE (p)-[:CONTAINS {line: i.line, quantity: i.props.quantity, "
    "    unit_price_cents: i.props.unit_price_cents, "
    "    total_price_cents: i.props.total_price_cents, description: i.props.description}]->(pr) "
    "} "
    "WITH r, created WHERE NOT created "
    "RETURN r.n AS n";

static const char *const SCHEMA[] = {
    "CREATE CONSTRAINT cgw_user_id IF NOT EXISTS FOR (n:User) REQUIRE n.user_id IS UNIQUE",
    "CREATE CONSTRAINT cgw_purchase_id IF NOT EXISTS FOR (n:Purchase) "
    "REQUIRE n.purchase_id IS UNIQUE",
    "CREATE CONSTRAINT cgw_product_fido IF NOT EXISTS FOR (n:Product) REQUIRE n.fido IS UNIQUE",
    "CREATE CONSTRAINT cgw_retailer_id IF NOT EXISTS FOR (n:Retailer) "
    "REQUIRE n.retailer_id IS UNIQUE",
    "CREATE CONSTRAINT cgw_category_path IF NOT EXISTS FOR (n:Category) "
    "REQUIRE n.path IS UNIQUE",
};

#define CATEGORY_SEP " > "

/* ------------------------------------------------------------------ schema */

int graph_ensure_schema(bolt_driver *d, const char *db, bolt_error *err) {
    bolt_tx_opts opts = {.db = db};
    bolt_conn *c = NULL;
    int rc = bolt_driver_acquire(d, db, 0, &c, err);
    if (rc != BOLT_OK) return rc;
    for (size_t i = 0; i < sizeof SCHEMA / sizeof SCHEMA[0] && rc == BOLT_OK; i++)
        rc = bolt_query(c, SCHEMA[i], NULL, &opts, NULL, NULL, NULL, err);
    if (rc == BOLT_OK)
        rc = bolt_query(c, "CALL db.awaitIndexes(300)", NULL, &opts, NULL, NULL, NULL, err);
    bolt_driver_release(d, c);
    return rc;
}

/* ------------------------------------------------------------------ categories */

typedef struct category_row {
    char *path;
    size_t len;           /* of path */
    const char *name;     /* borrowed from the product's categories */
    int depth;
    size_t parent_len;    /* path[0..parent_len) is the parent's path; 0 at depth 1 */
} category_row;

static int cmp_category(const void *a, const void *b) {
    return strcmp(((const category_row *)a)->path, ((const category_row *)b)->path);
}

/* A product's full path, its categories joined by " > ", into *buf (grown as needed), with
 * the 64-bit FNV-1a hash (base_hash_str's) and the length of every prefix: prefix k (1-based)
 * is buf[0..ends[k-1]). -1 when out of memory. One pass per product: building each prefix
 * anew was ~2 k instructions per receipt (issue 14). */
static int join_path(char **buf, size_t *cap, const char *const *cats, size_t depth,
                     size_t *ends, uint64_t *hashes) {
    size_t len = 0;
    for (size_t i = 0; i < depth; i++) len += strlen(cats[i]) + (i ? strlen(CATEGORY_SEP) : 0);
    if (len + 1 > *cap) {
        char *nb = realloc(*buf, len + 1);
        if (!nb) return -1;
        *buf = nb;
        *cap = len + 1;
    }
    char *w = *buf;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < depth; i++) {
        char *from = w;
        if (i) w = stpcpy(w, CATEGORY_SEP);
        w = stpcpy(w, cats[i]);
        for (const char *c = from; c < w; c++) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
        ends[i] = (size_t)(w - *buf);
        hashes[i] = h;
    }
    *w = '\0';
    return 0;
}

static void free_categories(category_row *rows, size_t n) {
    for (size_t i = 0; i < n; i++) free(rows[i].path);
    free(rows);
}

/* The distinct paths of a batch: open addressing over row indexes (+1; 0 is empty). A batch
 * names a few dozen distinct paths thousands of times: they are deduplicated here, and only
 * the distinct ones are copied and sorted (a sort of every prefix of every product cost 4 %
 * of the worker's CPU, issue 14). */
struct path_set {
    size_t *slot;
    size_t nslots;
};

/* The slot of the path path[0..len) (hash h) among rows, or where it goes: *found says which. */
static size_t *path_slot(const struct path_set *set, const category_row *rows, const char *path,
                         size_t len, uint64_t h, bool *found) {
    for (size_t i = h & (set->nslots - 1);; i = (i + 1) & (set->nslots - 1)) {
        const category_row *r = set->slot[i] ? &rows[set->slot[i] - 1] : NULL;
        *found = r && r->len == len && !memcmp(r->path, path, len);
        if (!r || *found) return &set->slot[i];
    }
}

struct collect {
    category_row *rows;
    size_t n;
    struct path_set set;
    char *buf;
    size_t bufcap, depthcap;
    size_t *ends;
    uint64_t *hashes;
};

/* The prefixes of product p's path into c; *deepest = its full path (a row's string). */
static int collect_product(struct collect *c, const graph_product *p, const char **deepest) {
    size_t depth = p->ncategories;
    if (depth > c->depthcap) {
        size_t *e = realloc(c->ends, depth * sizeof *e);
        if (e) c->ends = e;
        uint64_t *h = e ? realloc(c->hashes, depth * sizeof *h) : NULL;
        if (!h) return -1;
        c->hashes = h;
        c->depthcap = depth;
    }
    if (join_path(&c->buf, &c->bufcap, p->categories, depth, c->ends, c->hashes) != 0) return -1;
    for (size_t k = 1; k <= depth; k++) {
        bool found;
        size_t len = c->ends[k - 1];
        size_t *slot = path_slot(&c->set, c->rows, c->buf, len, c->hashes[k - 1], &found);
        if (!found) {
            char *path = strndup(c->buf, len);
            if (!path) return -1;
            c->rows[c->n++] = (category_row){path, len, p->categories[k - 1], (int)k,
                                             k > 1 ? c->ends[k - 2] : 0};
            *slot = c->n;
        }
        if (k == depth) *deepest = c->rows[*slot - 1].path;
    }
    return 0;
}

/* Every path prefix of every known product's categories, sorted by path, deduplicated;
 * deepest[i] (nproducts slots): product i's full path, one of the rows' strings (NULL: none),
 * valid until the rows are freed. */
static int collect_categories(const graph_batch *b, category_row **out, size_t *nout,
                              const char **deepest) {
    size_t cap = 0;
    for (size_t i = 0; i < b->nproducts; i++)
        if (b->products[i].known) cap += b->products[i].ncategories;
    struct collect c = {.set = {NULL, 16}};
    while (c.set.nslots < 2 * cap) c.set.nslots <<= 1;
    c.rows = calloc(cap ? cap : 1, sizeof *c.rows);
    c.set.slot = calloc(c.set.nslots, sizeof *c.set.slot);
    int rc = c.rows && c.set.slot ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < b->nproducts; i++) {
        deepest[i] = NULL;
        if (b->products[i].known && b->products[i].ncategories)
            rc = collect_product(&c, &b->products[i], &deepest[i]);
    }
    free(c.set.slot);
    free(c.buf);
    free(c.ends);
    free(c.hashes);
    if (rc != 0) {
        if (c.rows) free_categories(c.rows, c.n);
        return -1;
    }
    qsort(c.rows, c.n, sizeof *c.rows, cmp_category);
    *out = c.rows;
    *nout = c.n;
    return 0;
}

static void encode_categories(bolt_enc *e, const category_row *rows, size_t n) {
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, n);
    for (size_t i = 0; i < n; i++) {
        bolt_enc_map_begin(e, 4);
        bolt_enc_string(e, "path");
        bolt_enc_string(e, rows[i].path);
        bolt_enc_string(e, "name");
        bolt_enc_string(e, rows[i].name);
        bolt_enc_string(e, "depth");
        bolt_enc_int(e, rows[i].depth);
        bolt_enc_string(e, "parent");
        if (rows[i].parent_len) bolt_enc_string_n(e, rows[i].path, rows[i].parent_len);
        else bolt_enc_null(e);
    }
}

/* ------------------------------------------------------------------ products, retailers */

static int cmp_retailer_ptr(const void *a, const void *b) {
    return strcmp((*(const graph_retailer *const *)a)->retailer_id,
                  (*(const graph_retailer *const *)b)->retailer_id);
}

/* Sort pointers to the n elements of arr (each size bytes) and drop equal neighbours. */
static const void **sorted_unique(const void *arr, size_t n, size_t size,
                                  int (*cmp)(const void *, const void *), size_t *nout) {
    const void **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) v[i] = (const char *)arr + i * size;
    qsort(v, n, sizeof *v, cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || cmp(&v[w - 1], &v[i]) != 0) v[w++] = v[i];
    *nout = w;
    return v;
}

static void encode_optional_props(bolt_enc *e, const char *k1, const char *v1, const char *k2,
                                  const char *v2) {
    bolt_enc_map_begin(e, (size_t)(v1 != NULL) + (size_t)(v2 != NULL));
    if (v1) { bolt_enc_string(e, k1); bolt_enc_string(e, v1); }
    if (v2) { bolt_enc_string(e, k2); bolt_enc_string(e, v2); }
}

/* b->products is strictly ascending by fido (prepare checked it): encoded as it is, each
 * with its full category path (deepest[i], from collect_categories). */
static void encode_products(bolt_enc *e, const graph_batch *b, const char *const *deepest) {
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, b->nproducts);
    for (size_t i = 0; i < b->nproducts; i++) {
        const graph_product *p = &b->products[i];
        bolt_enc_map_begin(e, 3);
        bolt_enc_string(e, "fido");
        bolt_enc_string(e, p->fido);
        bolt_enc_string(e, "props");
        if (p->known) encode_optional_props(e, "name", p->name, "brand", p->brand);
        else bolt_enc_map_begin(e, 0);
        bolt_enc_string(e, "category");
        bolt_enc_string(e, p->known ? deepest[i] : NULL);      /* NULL: null */
    }
}

static int encode_retailers(bolt_enc *e, const graph_batch *b, size_t *nrows) {
    size_t n = 0;
    const graph_retailer **v = (const graph_retailer **)sorted_unique(
        b->retailers, b->nretailers, sizeof *b->retailers, cmp_retailer_ptr, &n);
    if (!v) return -1;
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, n);
    for (size_t i = 0; i < n; i++) {
        bolt_enc_map_begin(e, 2);
        bolt_enc_string(e, "retailer_id");
        bolt_enc_string(e, v[i]->retailer_id);
        bolt_enc_string(e, "props");
        if (v[i]->known) encode_optional_props(e, "name", v[i]->name, "store_type",
                                               v[i]->store_type);
        else bolt_enc_map_begin(e, 0);
    }
    free(v);
    *nrows = n;
    return 0;
}

/* ------------------------------------------------------------------ purchases */

/* A purchase and its index in the batch (sent as r.n, returned for rewrites). */
typedef struct purchase_ref {
    const record_purchase *p;
    size_t n;
} purchase_ref;

static int cmp_purchase_ref(const void *a, const void *b) {
    const record_purchase *x = ((const purchase_ref *)a)->p;
    const record_purchase *y = ((const purchase_ref *)b)->p;
    int c = strcmp(x->user_id, y->user_id);
    return c ? c : strcmp(x->purchase_id, y->purchase_id);
}

static void encode_purchase_props(bolt_enc *e, const record_purchase *p) {
    int orders = p->source == RECORD_SOURCE_SHOP_ORDER;
    size_t n = 2 + (size_t)(p->has_purchased_at != 0) + (p->currency != NULL) +
               (p->receipt_id != NULL) + (p->order_id != NULL) + (p->factoid_id != NULL);
    bolt_enc_map_begin(e, n);
    bolt_enc_string(e, "source");
    bolt_enc_string(e, orders ? "shop_order" : "receipt");
    if (p->has_purchased_at) {
        bolt_enc_string(e, "purchased_at");
        bolt_enc_struct_begin(e, BOLT_TAG_DATETIME, 3);
        bolt_enc_int(e, p->purchased_at_s);
        bolt_enc_int(e, p->purchased_at_ns);
        bolt_enc_int(e, 0);
    }
    bolt_enc_string(e, "total_cents");
    bolt_enc_int(e, p->total_cents);
    if (p->currency) { bolt_enc_string(e, "currency"); bolt_enc_string(e, p->currency); }
    if (p->receipt_id) { bolt_enc_string(e, "receipt_id"); bolt_enc_string(e, p->receipt_id); }
    if (p->order_id) { bolt_enc_string(e, "order_id"); bolt_enc_string(e, p->order_id); }
    if (p->factoid_id) { bolt_enc_string(e, "factoid_id"); bolt_enc_string(e, p->factoid_id); }
}

static void encode_item(bolt_enc *e, const record_purchase *p, const record_item *it) {
    bolt_enc_map_begin(e, 3);
    bolt_enc_string(e, "fido");
    bolt_enc_string(e, it->fido);
    bolt_enc_string(e, "line");
    bolt_enc_int(e, it->line);
    bolt_enc_string(e, "props");
    bolt_enc_map_begin(e, 3 + (size_t)(it->description != NULL));
    bolt_enc_string(e, "quantity");
    /* Orders count whole units (int32 in the schema); receipts print fractional ones. */
    if (p->source == RECORD_SOURCE_SHOP_ORDER) bolt_enc_int(e, (int64_t)it->quantity);
    else bolt_enc_float(e, it->quantity);
    bolt_enc_string(e, "unit_price_cents");
    bolt_enc_int(e, it->unit_price_cents);
    bolt_enc_string(e, "total_price_cents");
    bolt_enc_int(e, it->total_price_cents);
    if (it->description) {
        bolt_enc_string(e, "description");
        bolt_enc_string(e, it->description);
    }
}

/* The purchases by user id, then purchase id (the lock order): a radix sort on the users'
 * first 8 bytes (base.h), the rest of the order by comparison within runs of equal keys. */
static purchase_ref *sorted_purchases(const graph_batch *b) {
    size_t n = b->npurchases;
    purchase_ref *v = malloc((n ? n : 1) * sizeof *v);
    base_keyed *k = malloc((n ? 2 * n : 1) * sizeof *k);
    if (!v || !k) {
        free(v);
        free(k);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (base_keyed){base_prefix_key(b->purchases[i]->user_id), (const void *)(uintptr_t)i};
    base_radix_keyed(k, k + n, n);
    for (size_t i = 0; i < n; i++) {
        size_t at = (size_t)(uintptr_t)k[i].p;   /* the purchase's index, as the key's payload */
        v[i] = (purchase_ref){b->purchases[at], at};
    }
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && k[j].key == k[i].key; j++) {}
        if (j - i > 1) qsort(v + i, j - i, sizeof *v, cmp_purchase_ref);
    }
    free(k);
    return v;
}

static int encode_purchases(bolt_enc *e, const graph_batch *b) {
    purchase_ref *v = sorted_purchases(b);
    if (!v) return -1;
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, b->npurchases);
    for (size_t i = 0; i < b->npurchases; i++) {
        const record_purchase *p = v[i].p;
        bolt_enc_map_begin(e, 6);
        bolt_enc_string(e, "n");
        bolt_enc_int(e, (int64_t)v[i].n);
        bolt_enc_string(e, "user_id");
        bolt_enc_string(e, p->user_id);
        bolt_enc_string(e, "purchase_id");
        bolt_enc_string(e, p->purchase_id);
        bolt_enc_string(e, "props");
        encode_purchase_props(e, p);
        bolt_enc_string(e, "retailer");
        bolt_enc_list_begin(e, p->retailer_id ? 1 : 0);
        if (p->retailer_id) bolt_enc_string(e, p->retailer_id);
        bolt_enc_string(e, "items");
        bolt_enc_list_begin(e, p->nitems);
        for (size_t k = 0; k < p->nitems; k++) encode_item(e, p, &p->items[k]);
    }
    free(v);
    return 0;
}

/* Every user the purchases name, once, sorted (the lock order of the users statement). */
static int encode_users(bolt_enc *e, const graph_batch *b, size_t *nrows) {
    const char **v = malloc((b->npurchases ? b->npurchases : 1) * sizeof *v);
    if (!v) return -1;
    for (size_t i = 0; i < b->npurchases; i++) v[i] = b->purchases[i]->user_id;
    long sorted = base_sort_strs(v, b->npurchases, true);
    if (sorted < 0) {
        free(v);
        return -1;
    }
    size_t n = (size_t)sorted;
    bolt_enc_map_begin(e, 1);
    bolt_enc_string(e, "rows");
    bolt_enc_list_begin(e, n);
    for (size_t i = 0; i < n; i++) bolt_enc_string(e, v[i]);
    free(v);
    *nrows = n;
    return 0;
}

/* ------------------------------------------------------------------ the transaction */

enum { ST_CATEGORIES, ST_PRODUCTS, ST_RETAILERS, ST_USERS, ST_PURCHASES, NSTATEMENTS };

static const graph_queries OWN_QUERIES = {Q_CATEGORIES, Q_PRODUCTS, Q_RETAILERS, Q_USERS,
                                          Q_PURCHASES};

typedef struct statement {
    const char *query;           /* NULL: not sent (graph_queries without it) */
    bolt_enc *params;
    size_t nrows;
} statement;

typedef struct write_ctx {
    statement st[NSTATEMENTS];
    graph_stats *stats;
    const graph_batch *batch;
    graph_scratch *scratch;      /* NULL: the encodings are the write's own */
} write_ctx;

struct graph_scratch {
    bolt_enc *enc[NSTATEMENTS];  /* NULL until first used */
};

graph_scratch *graph_scratch_new(void) { return calloc(1, sizeof(graph_scratch)); }

void graph_scratch_free(graph_scratch *s) {
    if (!s) return;
    for (size_t i = 0; i < NSTATEMENTS; i++) bolt_enc_free(s->enc[i]);
    free(s);
}

/* Statement i's parameter buffer: the scratch's, emptied, or a new one. */
static bolt_enc *params_for(write_ctx *w, size_t i) {
    if (!w->scratch) return bolt_enc_new();
    if (w->scratch->enc[i]) bolt_enc_reset(w->scratch->enc[i]);
    else w->scratch->enc[i] = bolt_enc_new();
    return w->scratch->enc[i];
}

static void add_counters(graph_stats *s, const bolt_counters *c) {
    s->nodes_created += c->nodes_created;
    s->relationships_created += c->relationships_created;
    s->properties_set += c->properties_set;
}

static int is_memory_error(const bolt_error *e) {
    static const char *const codes[] = {
        "Neo.TransientError.General.MemoryPoolOutOfMemoryError",
        "Neo.TransientError.General.TransactionMemoryLimit",
        "Neo.TransientError.General.OutOfMemoryError",
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (!strcmp(e->neo4j_code, codes[i])) return 1;
    return 0;
}

/* ClientErrors about the server, the credentials or the worker's own query text: every
 * record would fail the same way, so they are outages, not the records' fault. */
static int is_environment_error(const char *code) {
    static const char *const prefixes[] = {
        "Neo.ClientError.Database.", "Neo.ClientError.Security.", "Neo.ClientError.Cluster.",
        "Neo.ClientError.Statement.SyntaxError", "Neo.ClientError.Procedure.",
        "Neo.ClientError.Transaction.", "Neo.ClientError.General.",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(code, prefixes[i], strlen(prefixes[i]))) return 1;
    return 0;
}

int graph_error_is_batch_caused(const bolt_error *e) {
    if (e->code == BOLT_ENOMEM || e->code == BOLT_ELIMIT) return 1;   /* encoding it */
    if (e->code != BOLT_ESERVER) return 0;
    if (is_memory_error(e)) return 1;
    if (e->retryable) return 0;
    return !is_environment_error(e->neo4j_code);
}

/* One row of the purchases statement: the index of a purchase that was there before. */
static int on_rewrite(void *ud, const bolt_value *record) {
    const write_ctx *w = ud;
    const bolt_value *n = bolt_list_get(record, 0);
    if (bolt_value_type(n) != BOLT_INT) return 1;
    int64_t i = bolt_value_int(n);
    if (i < 0 || (uint64_t)i >= w->batch->npurchases) return 1;
    w->batch->existed[i] = 1;
    return 0;
}

/* Retrying a batch too big for the transaction memory meets the same limit: the caller
 * splits it instead. One purchase alone is retried (the pool is shared). */
static void no_retry_if_too_big(const write_ctx *w, int rc, bolt_error *err) {
    if (rc != BOLT_OK && w->batch->npurchases > 1 && is_memory_error(err)) err->retryable = 0;
}

/* The transaction function: may run several times, so it starts from zero each time. The
 * statements go out together, in their order, with the transaction's BEGIN
 * (bolt_query_many): one round trip to Neo4j before the COMMIT instead of five. On loopback
 * that changed nothing measurable (bench/e2e/README.md, 2026-12-02 21:00: the writer still
 * sleeps ~13 times a transaction, on the socket); over a network it saves four round trips
 * per transaction. */
static int write_work(bolt_conn *c, void *ud, bolt_error *err) {
    write_ctx *w = ud;
    graph_stats fresh = {0};
    bolt_query_item q[NSTATEMENTS];
    size_t n = 0;
    if (w->batch->existed) memset(w->batch->existed, 0, w->batch->npurchases);
    for (size_t i = 0; i < NSTATEMENTS; i++) {
        if (!w->st[i].nrows || !w->st[i].query) continue;
        bool rows = i == ST_PURCHASES && w->batch->existed;
        q[n++] = (bolt_query_item){w->st[i].query, w->st[i].params, rows ? on_rewrite : NULL, w};
    }
    int rc = bolt_query_many(c, q, n, err);
    no_retry_if_too_big(w, rc, err);
    if (rc != BOLT_OK) return rc;
    for (size_t i = 0; i < n; i++) add_counters(&fresh, &q[i].summary.counters);
    fresh.attempts = w->stats->attempts + 1;
    *w->stats = fresh;
    return BOLT_OK;
}

/* The write's own buffers go; a scratch keeps its buffers unless one grew past the limit. */
static void free_statements(write_ctx *w) {
    for (size_t i = 0; i < NSTATEMENTS; i++) {
        if (!w->scratch) {
            bolt_enc_free(w->st[i].params);
        } else if (w->scratch->enc[i] && bolt_enc_size(w->scratch->enc[i]) > GRAPH_SCRATCH_KEEP) {
            bolt_enc_free(w->scratch->enc[i]);
            w->scratch->enc[i] = NULL;
        }
    }
}

/* Rough sizes of the products' and purchases' parameters, reserved up front: grown by
 * doubling from nothing, a batch's half megabyte of parameters was copied by ~12 reallocs
 * and faulted in again every batch (issue 14). A short guess costs one more realloc. */
static void reserve_params(write_ctx *w, const graph_batch *b) {
    size_t items = 0;
    for (size_t i = 0; i < b->npurchases; i++) items += b->purchases[i]->nitems;
    bolt_enc_reserve(w->st[ST_PURCHASES].params, 64 + b->npurchases * 224 + items * 160);
    bolt_enc_reserve(w->st[ST_PRODUCTS].params, 64 + b->nproducts * 224);
}

static int encode_all(write_ctx *w, const graph_batch *b, const graph_queries *q) {
    category_row *cats = NULL;
    size_t ncats = 0, nretailers = 0, nusers = 0;
    for (size_t i = 0; i < NSTATEMENTS; i++)
        if (!(w->st[i].params = params_for(w, i))) return -1;
    reserve_params(w, b);
    const char **deepest = malloc((b->nproducts ? b->nproducts : 1) * sizeof *deepest);
    if (!deepest || collect_categories(b, &cats, &ncats, deepest) != 0) {
        free(deepest);
        return -1;
    }
    encode_categories(w->st[ST_CATEGORIES].params, cats, ncats);
    encode_products(w->st[ST_PRODUCTS].params, b, deepest);
    free_categories(cats, ncats);
    free(deepest);
    if (encode_retailers(w->st[ST_RETAILERS].params, b, &nretailers) != 0) return -1;
    if (encode_users(w->st[ST_USERS].params, b, &nusers) != 0) return -1;
    if (encode_purchases(w->st[ST_PURCHASES].params, b) != 0) return -1;
    const char *texts[NSTATEMENTS] = {q->categories, q->products, q->retailers, q->users,
                                      q->purchases};
    size_t nrows[NSTATEMENTS] = {ncats, b->nproducts, nretailers, nusers, b->npurchases};
    for (size_t i = 0; i < NSTATEMENTS; i++) {
        w->st[i].query = texts[i];
        w->st[i].nrows = nrows[i];
        if (bolt_enc_error(w->st[i].params)) return -1;
    }
    return 0;
}

/* The order graph.h asks of b->products (strictly ascending fido, so each once), which
 * graph_count_purchase's binary search relies on. */
static bool products_sorted(const graph_batch *b) {
    for (size_t i = 1; i < b->nproducts; i++)
        if (strcmp(b->products[i - 1].fido, b->products[i].fido) >= 0) return false;
    return true;
}

static int fail(bolt_error *err, int code, const char *message) {
    if (err) {
        bolt_error_clear(err);
        err->code = code;
        snprintf(err->message, sizeof err->message, "%s", message);
    }
    return code;
}

/* Checks and encodes a batch into w (free_statements afterwards, whatever the result). */
static int prepare(write_ctx *w, const graph_batch *b, const graph_queries *q, bolt_error *err) {
    if (!products_sorted(b))
        return fail(err, BOLT_EINVAL, "graph: products not sorted by fido");
    /* or a PackStream limit: too big either way */
    if (encode_all(w, b, q ? q : &OWN_QUERIES) != 0)
        return fail(err, BOLT_ENOMEM, "graph: out of memory encoding a batch");
    return BOLT_OK;
}

int graph_write_queries(bolt_driver *d, const char *db, const graph_batch *b,
                        const graph_queries *q, graph_scratch *s, graph_stats *stats,
                        bolt_error *err) {
    graph_stats local = {0};
    write_ctx w = {.stats = stats ? stats : &local, .batch = b, .scratch = s};
    *w.stats = (graph_stats){0};
    if (!b->npurchases) return BOLT_OK;
    int rc = prepare(&w, b, q, err);
    if (rc == BOLT_OK) {
        bolt_tx_opts opts = {.db = db};
        bolt_summary commit;
        rc = bolt_session_write(d, &opts, write_work, &w, &commit, err);
        w.stats->attempts = commit.attempts;
        w.stats->deadlocks = commit.deadlocks;
    }
    free_statements(&w);
    return rc;
}

int graph_write(bolt_driver *d, const char *db, const graph_batch *b, graph_stats *stats,
                bolt_error *err) {
    return graph_write_queries(d, db, b, NULL, NULL, stats, err);
}

int graph_write_in(bolt_driver *d, const char *db, const graph_batch *b, graph_scratch *s,
                   graph_stats *stats, bolt_error *err) {
    return graph_write_queries(d, db, b, NULL, s, stats, err);
}

const graph_queries *graph_own_queries(void) {
    return &OWN_QUERIES;
}

/* ------------------------------------------------------------------ PROFILE (benchmark) */

static int64_t meta_int(const bolt_value *m, const char *key) {
    const bolt_value *v = bolt_map_get(m, key);
    return bolt_value_type(v) == BOLT_INT ? bolt_value_int(v) : 0;
}

/* Adds one operator's line "Name hits" to the summary when it is among the costly ones. */
static void note_operator(graph_profile *p, const char *op, size_t oplen, int64_t hits) {
    if (hits < p->db_hits / 10 || hits == 0) return;
    size_t len = strlen(p->top);
    snprintf(p->top + len, sizeof p->top - len, "%s%.*s %lld", len ? ", " : "", (int)oplen, op,
             (long long)hits);
}

/* Walks a profiled plan (a map with operatorType, dbHits, rows, children). */
static void walk_plan(graph_profile *p, const bolt_value *plan, int pass) {
    if (bolt_value_type(plan) != BOLT_MAP) return;
    const char *op = bolt_value_string(bolt_map_get(plan, "operatorType"), NULL);
    size_t oplen = op ? strcspn(op, "@") : 0;     /* "Merge@neo4j": the name only */
    int64_t hits = meta_int(plan, "dbHits");
    if (pass == 0) {
        p->db_hits += hits;
        if (op && !strncmp(op, "Eager", 5)) p->eager++;
    } else if (op) {
        note_operator(p, op, oplen, hits);
    }
    const bolt_value *ch = bolt_map_get(plan, "children");
    for (size_t i = 0; bolt_list_get(ch, i); i++) walk_plan(p, bolt_list_get(ch, i), pass);
}

static int profile_one(bolt_conn *c, const statement *st, graph_profile *out, bolt_error *err) {
    char *q = malloc(strlen(st->query) + sizeof "PROFILE ");
    if (!q) return fail(err, BOLT_ENOMEM, "graph: out of memory");
    stpcpy(stpcpy(q, "PROFILE "), st->query);
    bolt_result *r = NULL;
    int rc = bolt_run_enc(c, q, st->params, NULL, &r, err);
    free(q);
    if (rc == BOLT_OK) rc = bolt_result_consume(r, err);
    if (rc == BOLT_OK) {
        const bolt_value *plan = bolt_map_get(bolt_result_metadata(r), "profile");
        out->rows = st->nrows;
        walk_plan(out, plan, 0);
        walk_plan(out, plan, 1);
    }
    bolt_result_free(r);
    return rc;
}

int graph_profile_batch(bolt_driver *d, const char *db, const graph_batch *b,
                        const graph_queries *q, graph_profile out[GRAPH_NSTATEMENTS],
                        bolt_error *err) {
    static const char *const names[NSTATEMENTS] = {"categories", "products", "retailers",
                                                    "users", "purchases"};
    memset(out, 0, GRAPH_NSTATEMENTS * sizeof *out);
    for (size_t i = 0; i < NSTATEMENTS; i++) out[i].name = names[i];
    write_ctx w = {.batch = b};
    int rc = prepare(&w, b, q, err);
    bolt_conn *c = NULL;
    if (rc == BOLT_OK) rc = bolt_driver_acquire(d, db, 0, &c, err);
    bolt_tx_opts opts = {.db = db};
    if (rc == BOLT_OK) rc = bolt_begin(c, &opts, err);
    for (size_t i = 0; i < NSTATEMENTS && rc == BOLT_OK; i++)
        if (w.st[i].nrows && w.st[i].query) rc = profile_one(c, &w.st[i], &out[i], err);
    if (c) {
        bolt_error ignored;
        if (bolt_conn_state(c) == BOLT_STATE_TX) bolt_rollback(c, &ignored);
        bolt_driver_release(d, c);
    }
    free_statements(&w);
    return rc;
}

/* ------------------------------------------------------------------ per-record counts */

static int cmp_fido_key(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const graph_product *)elem)->fido);
}

/* Products are sorted by fido (graph.h): a record's lookups cost log n each. */
static const graph_product *find_product(const graph_batch *b, const char *fido) {
    return bsearch(fido, b->products, b->nproducts, sizeof *b->products, cmp_fido_key);
}

/* The products of a batch by fido, open addressing (graph_count_purchases). */
typedef struct product_index {
    size_t mask;
    uint64_t *hash;                 /* 0: empty slot; hashes are made odd */
    const graph_product **gp;
} product_index;

static uint64_t fido_hash(const char *s) { return base_hash_str(s) | 1; }   /* odd: never 0 */

static int index_build(product_index *x, const graph_batch *b) {
    size_t cap = 16;
    while (cap < 2 * b->nproducts) cap <<= 1;
    x->mask = cap - 1;
    x->hash = calloc(cap, sizeof *x->hash);
    x->gp = malloc(cap * sizeof *x->gp);
    if (!x->hash || !x->gp) return -1;
    for (size_t i = 0; i < b->nproducts; i++) {
        uint64_t h = fido_hash(b->products[i].fido);
        size_t k = h & x->mask;
        while (x->hash[k]) k = (k + 1) & x->mask;
        x->hash[k] = h;
        x->gp[k] = &b->products[i];
    }
    return 0;
}

static const graph_product *index_find(const product_index *x, const char *fido, uint64_t h) {
    for (size_t k = h & x->mask; x->hash[k]; k = (k + 1) & x->mask)
        if (x->hash[k] == h && strcmp(x->gp[k]->fido, fido) == 0) return x->gp[k];
    return NULL;
}

/* The counts of one purchase; its lines' hashes in h (NULL: no index, binary search). */
static void count_one(const graph_batch *b, const product_index *x, uint64_t *h,
                      const record_purchase *p, int *nodes, int *relationships) {
    int n = 2, r = 1; /* User, Purchase; MADE */
    if (p->retailer_id) { n++; r++; }
    for (size_t i = 0; i < p->nitems; i++) {
        const char *fido = p->items[i].fido;
        if (h) h[i] = fido_hash(fido);
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = (!h || h[k] == h[i]) && !strcmp(p->items[k].fido, fido);
        r++; /* CONTAINS, one per line */
        if (seen) continue;
        n++;
        const graph_product *gp = h ? index_find(x, fido, h[i]) : find_product(b, fido);
        if (gp && gp->known && gp->ncategories) {
            n += (int)gp->ncategories;                 /* its category path */
            r += 1 + (int)gp->ncategories - 1;         /* IN_CATEGORY, CHILD_OF links */
        }
    }
    *nodes = n;
    *relationships = r;
}

void graph_count_purchase(const graph_batch *b, const record_purchase *p, int *nodes,
                          int *relationships) {
    count_one(b, NULL, NULL, p, nodes, relationships);
}

int graph_count_purchases(const graph_batch *b, int *nodes, int *relationships) {
    size_t most = 1;
    for (size_t i = 0; i < b->npurchases; i++)
        if (b->purchases[i]->nitems > most) most = b->purchases[i]->nitems;
    product_index x = {0};
    uint64_t *h = malloc(most * sizeof *h);
    int rc = h && index_build(&x, b) == 0 ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < b->npurchases; i++)
        count_one(b, &x, h, b->purchases[i], &nodes[i], &relationships[i]);
    free(h);
    free(x.hash);
    free(x.gp);
    return rc;
}
