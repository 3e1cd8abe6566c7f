/* enrich.c: FIDO Product / Retailer Service clients with a cache (see enrich.h).
 *
 * One call, for either service, goes through the same steps:
 *   1. dedupe: sort the ids (by index), one `item` per distinct id, `map` from input to item;
 *   2. cache: every distinct id the cache holds is done; the rest are "missing";
 *   3. requests: products in chunks of batch_size fidos (the missing list is sorted, so each
 *      chunk is a sorted slice and answers are found by binary search), retailers one each;
 *   4. rounds: run every pending request concurrently on a multi handle, classify each as
 *      done / permanent / transient, apply and cache the done ones, sleep with backoff and
 *      jitter, and run the transient ones again, at most `retries` more times;
 *   5. results: anything still transient makes the call ENRICH_EUNAVAILABLE; otherwise each
 *      input gets a deep copy of its item's value, all of them packed into one block
 *      (results.arena: one allocation per call, not several per id).
 * Everything a call allocates belongs to the call (struct call) and is freed at its end; the
 * caller owns only struct enrich_results.
 */
#include "enrich/enrich.h"
#include "base/base.h"
#include "enrich/enrich_answer.h"
#include "enrich/enrich_cache.h"
#include "http/http_body.h"
#include "http/http_client.h"
#include "http/http_url.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_MAX 8                      /* idle multi handles kept; more threads just make more */
#define BODY_MAX (16u << 20)            /* an answer larger than this is refused, not buffered */
#define BATCH_LIMIT 100                 /* contract: at most 100 fidos per batchGet */

enum kind { K_PRODUCT, K_RETAILER };

enum item_state { ST_MISSING, ST_DONE, ST_FAILED };

enum outcome { OUT_DONE, OUT_PERMANENT, OUT_TRANSIENT };

struct counters {
    atomic_uint_fast64_t hits, misses, requests, retries, connects, transient, permanent,
        unavailable;
};

struct enrich_client {
    struct enrich_options o;
    char *fido_url, *retailer_url;      /* owned copies, without a trailing '/' */
    struct enrich_cache *products, *retailers;
    struct curl_slist *json_headers;    /* read-only after creation: shareable */
    pthread_mutex_t pool_mu;
    CURLM *pool[POOL_MAX];
    int npool;
    atomic_uint_fast64_t rng;
    struct counters n;
};

struct item {
    const char *id;                     /* borrowed from the caller's array */
    enum item_state state;
    struct enrich_value value;
};

struct req {
    struct item **items;                /* the ids this request answers; sorted for products */
    size_t count;
    char *url, *body;                   /* body NULL: GET */
    struct http_body resp;
    CURLcode cc;
    long status;
    enum outcome outcome;
    char errbuf[CURL_ERROR_SIZE];
};

struct call {
    struct enrich_client *c;
    enum kind kind;
    struct item *items;
    size_t nitems;
    size_t *map;                        /* input index -> item index */
    struct item **missing;
    size_t nmissing;
    struct req *reqs;
    size_t nreqs;
    struct enrich_results *out;
    char transient[256];                /* last transient failure, for ENRICH_EUNAVAILABLE */
};

/* ---- small helpers ----------------------------------------------------------------------- */

const char *enrich_status_name(enum enrich_status s) {
    switch (s) {
    case ENRICH_OK: return "ENRICH_OK";
    case ENRICH_EINVAL: return "ENRICH_EINVAL";
    case ENRICH_ENOMEM: return "ENRICH_ENOMEM";
    case ENRICH_EUNAVAILABLE: return "ENRICH_EUNAVAILABLE";
    }
    return "ENRICH_UNKNOWN";
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* splitmix64 over a shared atomic counter: good enough for jitter, and lock-free. */
static uint64_t next_random(struct enrich_client *c) {
    uint64_t z = atomic_fetch_add(&c->rng, 0x9E3779B97F4A7C15ULL) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Delay before retry number `attempt` (0-based): "equal jitter", uniform in [d/2, d] with
 * d = backoff_ms * 2^attempt capped, so concurrent retriers spread out but never retry at once. */
static long backoff_delay(struct enrich_client *c, int attempt) {
    long d = base_backoff_ms(attempt, c->o.backoff_ms, c->o.backoff_max_ms);
    if (d <= 1) return d;
    return d / 2 + (long)(next_random(c) % (uint64_t)(d / 2 + 1));
}

static char *strdup_trim_slash(const char *s) {
    char *d = strdup(s);
    if (d) {
        size_t n = strlen(d);
        while (n > 0 && d[n - 1] == '/') d[--n] = '\0';
    }
    return d;
}

/* ---- client ------------------------------------------------------------------------------ */

void enrich_options_init(struct enrich_options *o) {
    memset(o, 0, sizeof *o);
    o->timeout_ms = 2000;
    o->retries = 3;
    o->backoff_ms = 100;
    o->backoff_max_ms = 2000;
    o->parallel = 8;
    o->batch_size = BATCH_LIMIT;
    o->cache_max_entries = 100000;
    o->ttl_seconds = 3600;
    o->negative_ttl_seconds = 300;
}

/* A base URL may carry user:password@ (curl sends it as Basic auth; messages redact it) but no
 * query or fragment: paths are appended to it. */
static int check_base_url(const char *what, const char *url, char *err, size_t errlen) {
    char why[128];
    if (!url || http_url_check(url, HTTP_URL_USERINFO, why, sizeof why) == 0) return 0;
    base_errf(err, errlen, "enrich: %s %s", what, why);
    return -1;
}

int enrich_check_options(const struct enrich_options *o, char *err, size_t errlen) {
    const char *bad = NULL;
    if (check_base_url("fido_url", o->fido_url, err, errlen) ||
        check_base_url("retailer_url", o->retailer_url, err, errlen))
        return -1;
    if (o->timeout_ms <= 0) bad = "timeout_ms must be > 0";
    else if (o->connect_timeout_ms < 0) bad = "connect_timeout_ms must be >= 0";
    else if (o->retries < 0) bad = "retries must be >= 0";
    else if (o->backoff_ms < 0 || o->backoff_max_ms < o->backoff_ms)
        bad = "need 0 <= backoff_ms <= backoff_max_ms";
    else if (o->parallel < 1) bad = "parallel must be >= 1";
    else if (o->batch_size < 1 || o->batch_size > BATCH_LIMIT) bad = "batch_size must be 1..100";
    else if (o->cache_max_entries < 1) bad = "cache_max_entries must be >= 1";
    else if (o->ttl_seconds < 0 || o->negative_ttl_seconds < 0) bad = "TTLs must be >= 0";
    if (bad) base_errf(err, errlen, "enrich: %s", bad);
    return bad ? -1 : 0;
}

struct enrich_client *enrich_client_new(const struct enrich_options *o, char *err,
                                        size_t errlen) {
    if (enrich_check_options(o, err, errlen) != 0) return NULL;
    if (http_global_init("enrich", err, errlen) != 0) return NULL;
    struct enrich_client *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->o = *o;
    if (!c->o.connect_timeout_ms) c->o.connect_timeout_ms = c->o.timeout_ms;
    c->o.fido_url = c->o.retailer_url = NULL;   /* only the owned copies below are used */
    if (o->fido_url && !(c->fido_url = strdup_trim_slash(o->fido_url))) goto oom;
    if (o->retailer_url && !(c->retailer_url = strdup_trim_slash(o->retailer_url))) goto oom;
    c->products = enrich_cache_new(o->cache_max_entries);
    c->retailers = enrich_cache_new(o->cache_max_entries);
    if (!c->products || !c->retailers) goto oom;
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) c->json_headers = curl_slist_append(h, "Accept: application/json");
    if (!c->json_headers) {
        curl_slist_free_all(h);
        goto oom;
    }
    pthread_mutex_init(&c->pool_mu, NULL);
    atomic_init(&c->rng, (uint64_t)base_monotonic_ms() ^ (uint64_t)(uintptr_t)c);
    return c;
oom:
    if (c) {
        free(c->fido_url);
        free(c->retailer_url);
        enrich_cache_free(c->products);
        enrich_cache_free(c->retailers);
        free(c);
    }
    base_errf(err, errlen, "enrich: out of memory");
    return NULL;
}

void enrich_client_free(struct enrich_client *c) {
    if (!c) return;
    for (int i = 0; i < c->npool; i++) curl_multi_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->pool_mu);
    curl_slist_free_all(c->json_headers);
    enrich_cache_free(c->products);
    enrich_cache_free(c->retailers);
    free(c->fido_url);
    free(c->retailer_url);
    free(c);
}

void enrich_get_stats(struct enrich_client *c, struct enrich_stats *out) {
    struct enrich_cache_stats p, r;
    enrich_cache_stats(c->products, &p);
    enrich_cache_stats(c->retailers, &r);
    memset(out, 0, sizeof *out);
    out->cache_hits = atomic_load(&c->n.hits);
    out->cache_misses = atomic_load(&c->n.misses);
    out->cache_entries = p.entries + r.entries;
    out->cache_evictions = p.evictions + r.evictions;
    out->http_requests = atomic_load(&c->n.requests);
    out->http_retries = atomic_load(&c->n.retries);
    out->http_connects = atomic_load(&c->n.connects);
    out->transient_errors = atomic_load(&c->n.transient);
    out->permanent_errors = atomic_load(&c->n.permanent);
    out->unavailable = atomic_load(&c->n.unavailable);
}

/* A multi handle for one call. Its connection cache is what keeps connections alive from one
 * call to the next, so handles go back to the pool rather than being destroyed. */
static CURLM *pool_get(struct enrich_client *c) {
    CURLM *m = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool > 0) m = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_mu);
    if (!m && (m = curl_multi_init()))
        curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)c->o.parallel * 2);
    return m;
}

static void pool_put(struct enrich_client *c, CURLM *m) {
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool < POOL_MAX) {
        c->pool[c->npool++] = m;
        m = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (m) curl_multi_cleanup(m);
}

/* ---- HTTP round -------------------------------------------------------------------------- */

static CURL *easy_for(struct enrich_client *c, struct req *r) {
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    http_body_reset(&r->resp);
    r->errbuf[0] = '\0';
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    http_handle_setup(e, &(struct http_handle_options){.connect_timeout_ms = c->o.connect_timeout_ms,
                                                       .timeout_ms = c->o.timeout_ms,
                                                       .errbuf = r->errbuf,
                                                       .cancel = c->o.cancel});
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->resp);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->json_headers);
    if (r->body) curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    return e;
}

static void finish_easy(struct enrich_client *c, CURLM *m, CURL *e, CURLcode cc) {
    struct req *r = NULL;
    long connects = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    atomic_fetch_add(&c->n.connects, (uint64_t)connects);
    r->cc = cc;
    curl_multi_remove_handle(m, e);
    curl_easy_cleanup(e);
}

/* Runs the given requests, at most `parallel` in flight, until each has finished (answer or
 * curl error). A request whose easy handle cannot even be made ends as CURLE_OUT_OF_MEMORY. */
static void run_round(struct enrich_client *c, CURLM *m, struct req **reqs, size_t n) {
    size_t next = 0, in_flight = 0;
    while (next < n || in_flight > 0) {
        while (next < n && in_flight < (size_t)c->o.parallel) {
            struct req *r = reqs[next++];
            CURL *e = easy_for(c, r);
            if (!e || curl_multi_add_handle(m, e) != CURLM_OK) {
                if (e) curl_easy_cleanup(e);
                r->cc = CURLE_OUT_OF_MEMORY;
                r->status = 0;
                continue;
            }
            atomic_fetch_add(&c->n.requests, 1);
            in_flight++;
        }
        int still = 0, q = 0;
        curl_multi_perform(m, &still);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE) continue;
            finish_easy(c, m, msg->easy_handle, msg->data.result);
            in_flight--;
        }
        if (in_flight > 0) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
}

/* ---- answers ----------------------------------------------------------------------------- */

/* The answers are read by enrich_answer.c; these pass it the request's ids. */
static int parse_products(struct req *r, struct enrich_value *vals, char *err, size_t errlen) {
    const char *ids[BATCH_LIMIT];
    if (r->count > BATCH_LIMIT) return base_errf(err, errlen, "FIDO request too large");
    for (size_t i = 0; i < r->count; i++) ids[i] = r->items[i]->id;   /* sorted, distinct */
    return enrich_answer_products(r->resp.data ? r->resp.data : "", r->resp.len, ids, r->count,
                                  vals, err, errlen);
}

static int parse_retailer(struct req *r, struct enrich_value *v, char *err, size_t errlen) {
    return enrich_answer_retailer(r->resp.data ? r->resp.data : "", r->resp.len,
                                  r->items[0]->id, v, err, errlen);
}

/* ---- one call ---------------------------------------------------------------------------- */

static struct enrich_cache *cache_of(struct call *k) {
    return k->kind == K_PRODUCT ? k->c->products : k->c->retailers;
}

static void cache_item(struct call *k, struct item *it) {
    long ttl = it->value.known ? k->c->o.ttl_seconds : k->c->o.negative_ttl_seconds;
    if (ttl > 0)    /* out of memory here only costs a later miss */
        (void)enrich_cache_put(cache_of(k), it->id, &it->value, (uint64_t)base_monotonic_ms() + (uint64_t)ttl * 1000);
}

static void fail_request(struct call *k, struct req *r, const char *msg) {
    atomic_fetch_add(&k->c->n.permanent, 1);
    for (size_t i = 0; i < r->count; i++) {
        enrich_value_clear(&r->items[i]->value);
        r->items[i]->state = ST_FAILED;
    }
    if (!k->out->error[0]) base_errf(k->out->error, sizeof k->out->error, "%s", msg);
    r->outcome = OUT_PERMANENT;
}

/* Applies a 200 (or retailer 404) answer to the request's items and caches them. */
static int apply_answer(struct call *k, struct req *r, char *err, size_t errlen) {
    struct enrich_value *vals = calloc(r->count, sizeof *vals);
    if (!vals) return -2;
    int rc = 0;
    if (k->kind == K_RETAILER && r->status == 404) {
        /* unknown: vals[0] stays zeroed */
    } else if (k->kind == K_RETAILER) {
        rc = parse_retailer(r, &vals[0], err, errlen);
    } else {
        rc = parse_products(r, vals, err, errlen);
    }
    for (size_t i = 0; i < r->count; i++) {
        if (rc == 0) {
            r->items[i]->value = vals[i];       /* moves ownership */
            r->items[i]->state = ST_DONE;
            cache_item(k, r->items[i]);
        } else {
            enrich_value_clear(&vals[i]);
        }
    }
    free(vals);
    return rc;
}

/* Sorts out one finished attempt; returns -2 only when out of memory. */
static int classify(struct call *k, struct req *r) {
    char msg[200], url[160];
    const char *what = k->kind == K_PRODUCT ? "FIDO service" : "Retailer Service";
    http_redact_userinfo(r->url, url, sizeof url);     /* messages reach logs and status */
    bool answer = r->status == 200 || (k->kind == K_RETAILER && r->status == 404);
    if (r->cc == CURLE_WRITE_ERROR && r->resp.too_big) {
        base_errf(msg, sizeof msg, "%s answer larger than %u bytes (%s)", what, BODY_MAX, url);
        fail_request(k, r, msg);
    } else if (r->cc != CURLE_OK || r->status >= 500) {
        r->outcome = OUT_TRANSIENT;
        atomic_fetch_add(&k->c->n.transient, 1);
        if (r->cc != CURLE_OK)
            base_errf(k->transient, sizeof k->transient, "%s: %s (%s)", what,
                    r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->cc), url);
        else
            base_errf(k->transient, sizeof k->transient, "%s: HTTP %ld (%s)", what, r->status,
                    url);
    } else if (!answer) {
        base_errf(msg, sizeof msg, "%s: HTTP %ld (%s)", what, r->status, url);
        fail_request(k, r, msg);
    } else {
        int rc = apply_answer(k, r, msg, sizeof msg);
        if (rc == -2) return -2;
        if (rc != 0) fail_request(k, r, msg);
        else r->outcome = OUT_DONE;
    }
    return 0;
}

static enum enrich_status fetch(struct call *k) {
    if (k->nreqs == 0) return ENRICH_OK;
    struct req **pending = malloc(k->nreqs * sizeof *pending);
    CURLM *m = pool_get(k->c);
    if (!pending || !m) {
        free(pending);
        if (m) pool_put(k->c, m);
        return ENRICH_ENOMEM;
    }
    size_t np = k->nreqs;
    for (size_t i = 0; i < np; i++) pending[i] = &k->reqs[i];
    enum enrich_status st = ENRICH_OK;
    for (int attempt = 0;; attempt++) {
        run_round(k->c, m, pending, np);
        size_t still = 0;
        for (size_t i = 0; i < np && st == ENRICH_OK; i++) {
            if (classify(k, pending[i]) != 0) st = ENRICH_ENOMEM;
            else if (pending[i]->outcome == OUT_TRANSIENT) pending[still++] = pending[i];
        }
        np = still;
        if (st != ENRICH_OK || np == 0) break;
        if (attempt >= k->c->o.retries) {
            st = ENRICH_EUNAVAILABLE;
            break;
        }
        sleep_ms(backoff_delay(k->c, attempt));
        atomic_fetch_add(&k->c->n.retries, np);
    }
    if (st == ENRICH_EUNAVAILABLE)
        base_errf(k->out->error, sizeof k->out->error, "%s (after %d retries)", k->transient,
                k->c->o.retries);
    pool_put(k->c, m);
    free(pending);
    return st;
}

/* ---- building a call --------------------------------------------------------------------- */

static int cmp_index(const void *a, const void *b, void *ids_) {
    const char *const *ids = ids_;
    return strcmp(ids[*(const size_t *)a], ids[*(const size_t *)b]);
}

static bool sorted_unique(const char *const ids[], size_t n) {
    for (size_t i = 1; i < n; i++)
        if (strcmp(ids[i - 1], ids[i]) >= 0) return false;
    return true;
}

/* One item per distinct id (in sorted order) and the input -> item map. The pipeline passes
 * its ids sorted and unique already: then one linear check replaces the sort. */
static int dedupe(struct call *k, const char *const ids[], size_t n) {
    k->map = malloc(n * sizeof *k->map);
    k->items = calloc(n, sizeof *k->items);
    if (!k->map || !k->items) return -1;
    if (sorted_unique(ids, n)) {
        for (size_t i = 0; i < n; i++) {
            k->items[i].id = ids[i];
            k->map[i] = i;
        }
        k->nitems = n;
        return 0;
    }
    size_t *order = malloc(n * sizeof *order);
    if (!order) return -1;
    for (size_t i = 0; i < n; i++) order[i] = i;
    qsort_r(order, n, sizeof *order, cmp_index, (void *)ids);
    for (size_t i = 0; i < n; i++) {
        const char *id = ids[order[i]];
        if (k->nitems == 0 || strcmp(k->items[k->nitems - 1].id, id) != 0)
            k->items[k->nitems++].id = id;
        k->map[order[i]] = k->nitems - 1;
    }
    free(order);
    return 0;
}

/* Serves distinct ids from the cache, all looked up under one lock; the rest go to
 * k->missing (still sorted). */
static int consult_cache(struct call *k) {
    size_t n = 0, cap = k->nitems ? k->nitems : 1;
    const char **ids = malloc(cap * sizeof *ids);
    struct enrich_value **outs = malloc(cap * sizeof *outs);
    struct item **asked = malloc(cap * sizeof *asked);
    unsigned char *hit = malloc(cap);
    int rc = -1;
    if (!(k->missing = malloc(cap * sizeof *k->missing)) || !ids || !outs || !asked || !hit)
        goto out;
    for (size_t i = 0; i < k->nitems; i++) {
        struct item *it = &k->items[i];
        if (it->id[0] == '\0') {           /* never looked up, never cached */
            it->state = ST_DONE;
            continue;
        }
        ids[n] = it->id;
        outs[n] = &it->value;
        asked[n++] = it;
    }
    if (enrich_cache_get_many(cache_of(k), ids, n, (uint64_t)base_monotonic_ms(), outs, hit))
        goto out;
    for (size_t i = 0; i < n; i++) {
        atomic_fetch_add(hit[i] ? &k->c->n.hits : &k->c->n.misses, 1);
        if (hit[i]) asked[i]->state = ST_DONE;
        else k->missing[k->nmissing++] = asked[i];
    }
    rc = 0;
out:
    free(ids);
    free(outs);
    free(asked);
    free(hit);
    return rc;
}

/* {"fidos":[...]} for a slice of missing items. */
static char *batch_body(struct item **items, size_t n) {
    json_t *arr = json_array();
    json_t *root = json_pack("{s:o}", "fidos", arr);
    char *s = NULL;
    bool ok = root != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(arr, json_string(items[i]->id)) == 0;
    if (ok) s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return s;
}

static char *retailer_url(const char *base, const char *id) {
    char *esc = curl_easy_escape(NULL, id, 0), *url = NULL;
    if (esc && asprintf(&url, "%s/v1/retailers/%s", base, esc) < 0) url = NULL;
    curl_free(esc);
    return url;
}

static int build_requests(struct call *k) {
    size_t per = k->kind == K_PRODUCT ? (size_t)k->c->o.batch_size : 1;
    size_t nreqs = (k->nmissing + per - 1) / per;
    if (nreqs == 0) return 0;
    if (!(k->reqs = calloc(nreqs, sizeof *k->reqs))) return -1;
    k->nreqs = nreqs;                   /* all zeroed: call_free copes with a partial build */
    for (size_t i = 0; i < nreqs; i++) {
        struct req *r = &k->reqs[i];
        http_body_init(&r->resp, BODY_MAX - 1);     /* BODY_MAX counts the NUL */
        r->items = k->missing + i * per;
        r->count = k->nmissing - i * per < per ? k->nmissing - i * per : per;
        if (k->kind == K_PRODUCT) {
            if (asprintf(&r->url, "%s/v1/products:batchGet", k->c->fido_url) < 0) r->url = NULL;
            r->body = batch_body(r->items, r->count);
            if (!r->url || !r->body) return -1;
        } else if (!(r->url = retailer_url(k->c->retailer_url, r->items[0]->id))) {
            return -1;
        }
    }
    return 0;
}

/* ---- results ----------------------------------------------------------------------------- */

void enrich_results_free(struct enrich_results *r) {
    if (!r) return;
    for (size_t i = 0; !r->arena && r->products && i < r->count; i++) {
        struct enrich_product *p = &r->products[i];
        free(p->fido);
        struct enrich_value v = {false, p->name, p->brand, p->categories, p->categories_count, NULL};
        enrich_value_clear(&v);
    }
    for (size_t i = 0; !r->arena && r->retailers && i < r->count; i++) {
        struct enrich_retailer *t = &r->retailers[i];
        free(t->retailer_id);
        free(t->name);
        free(t->store_type);
    }
    free(r->arena);
    free(r->products);
    free(r->retailers);
    r->arena = NULL;
    r->products = NULL;
    r->retailers = NULL;
    r->count = 0;
}

/* Copies of each input's id and item into out, all strings in ONE block (out->arena): one
 * malloc per call instead of several per input; -1 when out of memory (out is then freed). */
static int fill_results(struct call *k, const char *const ids[], size_t n) {
    struct enrich_results *out = k->out;
    size_t nptrs = 0, nbytes = 0;
    for (size_t i = 0; i < n; i++) {
        nbytes += strlen(ids[i]) + 1;
        enrich_value_packed_size(&k->items[k->map[i]].value, &nptrs, &nbytes);
    }
    if (k->kind == K_PRODUCT) out->products = calloc(n ? n : 1, sizeof *out->products);
    else out->retailers = calloc(n ? n : 1, sizeof *out->retailers);
    out->arena = malloc(nptrs * sizeof(char *) + nbytes + 1);   /* pointers first: aligned */
    if ((!out->products && !out->retailers) || !out->arena) {
        enrich_results_free(out);
        return -1;
    }
    out->count = n;
    char **ptrs = out->arena;
    char *strs = (char *)out->arena + nptrs * sizeof(char *);
    for (size_t i = 0; i < n; i++) {
        struct item *it = &k->items[k->map[i]];
        struct enrich_value v;
        char *id = enrich_pack_string(ids[i], &strs);
        enrich_value_pack(&v, &it->value, &ptrs, &strs);
        bool failed = it->state == ST_FAILED;
        if (failed) out->failed++;
        if (k->kind == K_PRODUCT)
            out->products[i] = (struct enrich_product){id, v.known, failed, v.name, v.extra,
                                                       v.categories, v.categories_count};
        else
            out->retailers[i] = (struct enrich_retailer){id, v.known, failed, v.name, v.extra};
    }
    return 0;
}

static void call_free(struct call *k) {
    for (size_t i = 0; i < k->nitems; i++) enrich_value_clear(&k->items[i].value);
    for (size_t i = 0; i < k->nreqs; i++) {
        free(k->reqs[i].url);
        free(k->reqs[i].body);
        http_body_free(&k->reqs[i].resp);
    }
    free(k->reqs);
    free(k->missing);
    free(k->items);
    free(k->map);
}

static enum enrich_status run_call(struct enrich_client *c, enum kind kind,
                                   const char *const ids[], size_t n, struct enrich_results *out) {
    memset(out, 0, sizeof *out);
    const char *base = kind == K_PRODUCT ? c->fido_url : c->retailer_url;
    if (!base) {
        base_errf(out->error, sizeof out->error, "enrich: no %s URL configured",
                kind == K_PRODUCT ? "FIDO service" : "Retailer Service");
        return ENRICH_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) {
            base_errf(out->error, sizeof out->error, "enrich: id #%zu is NULL", i);
            return ENRICH_EINVAL;
        }
    }
    struct call k = {.c = c, .kind = kind, .out = out};
    enum enrich_status st = ENRICH_ENOMEM;
    if (n > 0 && (dedupe(&k, ids, n) || consult_cache(&k) || build_requests(&k))) goto done;
    st = fetch(&k);
    if (st == ENRICH_OK && fill_results(&k, ids, n) != 0) st = ENRICH_ENOMEM;
done:
    if (st == ENRICH_EUNAVAILABLE) atomic_fetch_add(&c->n.unavailable, 1);
    if (st == ENRICH_ENOMEM) base_errf(out->error, sizeof out->error, "enrich: out of memory");
    if (st != ENRICH_OK) out->failed = 0;
    call_free(&k);
    return st;
}

enum enrich_status enrich_products(struct enrich_client *c, const char *const fidos[], size_t n,
                                   struct enrich_results *out) {
    return run_call(c, K_PRODUCT, fidos, n, out);
}

enum enrich_status enrich_retailers(struct enrich_client *c, const char *const ids[], size_t n,
                                    struct enrich_results *out) {
    return run_call(c, K_RETAILER, ids, n, out);
}
