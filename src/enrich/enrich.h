/* enrich.h: clients of the FIDO Product Service and the Retailer Service (contract section 3),
 * behind a bounded in-process cache with TTL.
 *
 * The pipeline enriches a whole batch of records at once:
 *
 *   struct enrich_results r;
 *   switch (enrich_products(client, fidos, n, &r)) {
 *   case ENRICH_OK:           use r.products[i] for fidos[i]; if (r.failed) log [ERROR] r.error
 *   case ENRICH_EUNAVAILABLE: wait, retry the whole batch later (nothing persisted)
 *   default:                  a bug or out of memory
 *   }
 *   enrich_results_free(&r);
 *
 * Per call: ids are deduplicated, served from the cache where possible, and the rest fetched:
 * products with POST {fido_url}/v1/products:batchGet, at most 100 fidos per request (one
 * round trip per 100 missing fidos, never one per record); retailers with
 * GET {retailer_url}/v1/retailers/{id} (id URL-escaped). All requests of a call run
 * concurrently on one curl multi handle (up to `parallel` at a time) whose connection cache
 * keeps the connections alive between calls.
 *
 * Outcomes per request:
 *   200 (and, for a retailer, 404)  answer; cached. A fido left out of a batchGet answer and a
 *                                   retailer answered 404 are "unknown", cached with
 *                                   negative_ttl_seconds.
 *   5xx, timeout, refused/reset     transient: retried with exponential backoff and jitter, up
 *                                   to `retries` times within the call. Still failing: the call
 *                                   returns ENRICH_EUNAVAILABLE, no results, and nothing from the
 *                                   failed requests is cached (answers of requests that did
 *                                   succeed are cached: they are true regardless).
 *   other 4xx (429 included, as the
 *   contract says), malformed JSON  permanent for that request: its ids come back unknown with
 *                                   failed = true, are NOT cached, and are counted in
 *                                   results.failed with the first message in results.error; the
 *                                   call still returns ENRICH_OK. Malformed JSON is permanent,
 *                                   not transient: retrying a service that answers garbage
 *                                   would only repeat it; the caller logs [ERROR].
 * Empty ids ("") are never looked up: unknown, not failed, not cached.
 *
 * Threads: a client may be shared by any number of threads (both consumers share one, and so
 * share its cache). Each call borrows a curl multi handle from the client's pool for its
 * duration, so concurrent calls never share a curl handle; the caches are mutex-guarded.
 * This module never logs and never exits: it returns what happened.
 */
#ifndef CGW_ENRICH_H
#define CGW_ENRICH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum enrich_status {
    ENRICH_OK = 0,
    ENRICH_EINVAL,          /* bad arguments or options (message in errbuf / results.error) */
    ENRICH_ENOMEM,
    ENRICH_EUNAVAILABLE,    /* a service stayed unreachable / 5xx / timing out after retries */
};

/* "ENRICH_OK", "ENRICH_EUNAVAILABLE", ... */
const char *enrich_status_name(enum enrich_status s);

struct enrich_options {
    const char *fido_url;           /* base URL, e.g. "http://fido:8080"; NULL: products off */
    const char *retailer_url;       /* base URL; NULL: retailers off */
    long timeout_ms;                /* per HTTP request, whole transfer (default 2000) */
    long connect_timeout_ms;        /* default: timeout_ms */
    int retries;                    /* extra attempts of a transient failure (default 3) */
    long backoff_ms;                /* first retry delay, doubled each time (default 100) */
    long backoff_max_ms;            /* cap of the delay (default 2000) */
    int parallel;                   /* concurrent requests per call (default 8) */
    int batch_size;                 /* fidos per batchGet, 1..100 (default 100) */
    size_t cache_max_entries;       /* per cache: products and retailers each (default 100000) */
    long ttl_seconds;               /* known answers (default 3600) */
    long negative_ttl_seconds;      /* unknown answers (default 300) */
    const atomic_bool *cancel;      /* NULL, or the owner's stop flag: once true, requests in
                                     * flight end within about a second and the call fails
                                     * ENRICH_EUNAVAILABLE; it must outlive the client */
};

/* Fills the defaults above; URLs NULL. */
void enrich_options_init(struct enrich_options *o);

/* One answer per input id, in input order (duplicates get their own copies). Every pointer
 * is owned by the enclosing struct enrich_results; NULL strings are absent values. */
struct enrich_product {
    char *fido;
    bool known;                     /* false: unknown to the service, or failed */
    bool failed;                    /* permanent error this call (see results.error) */
    char *name, *brand;
    char **categories;              /* top -> deepest; NULL when none */
    size_t categories_count;
};

struct enrich_retailer {
    char *retailer_id;
    bool known;
    bool failed;
    char *name, *store_type;
};

struct enrich_results {
    size_t count;                       /* == n of the call */
    struct enrich_product *products;    /* set by enrich_products, else NULL */
    struct enrich_retailer *retailers;  /* set by enrich_retailers, else NULL */
    size_t failed;                      /* inputs whose id got a permanent error (not cached) */
    char error[256];                    /* first permanent error, or why the call failed */
    void *arena;                        /* enrich_products/_retailers put every string above
                                         * in this one block; NULL (results built by hand, e.g.
                                         * a test's stand-in): each string is freed on its own */
};

struct enrich_stats {
    uint64_t cache_hits, cache_misses;  /* per distinct id looked up */
    uint64_t cache_entries, cache_evictions;
    uint64_t http_requests;             /* attempts sent, retries included */
    uint64_t http_retries;              /* attempts that were retries */
    uint64_t http_connects;             /* new TCP connections (low = keep-alive works) */
    uint64_t transient_errors;          /* attempts that failed transiently */
    uint64_t permanent_errors;          /* requests that failed permanently */
    uint64_t unavailable;               /* calls that returned ENRICH_EUNAVAILABLE */
};

struct enrich_client;

/* What enrich_client_new would refuse in *o (base URLs included: http(s), a host, a port
 * 1..65535, no query or fragment), found without connecting: 0 or -1 with the message. */
int enrich_check_options(const struct enrich_options *o, char *err, size_t errlen);

/* Copies what it needs from *o. NULL with a message in errbuf on bad options or no memory. */
struct enrich_client *enrich_client_new(const struct enrich_options *o, char *errbuf,
                                        size_t errlen);
void enrich_client_free(struct enrich_client *c);

/* Both fill *out in every case (on failure: no items, error set); release it with
 * enrich_results_free. ids must be non-NULL strings. */
enum enrich_status enrich_products(struct enrich_client *c, const char *const fidos[], size_t n,
                                   struct enrich_results *out);
enum enrich_status enrich_retailers(struct enrich_client *c, const char *const ids[], size_t n,
                                    struct enrich_results *out);
void enrich_results_free(struct enrich_results *r);

/* Counters since the client was made, products and retailers together. */
void enrich_get_stats(struct enrich_client *c, struct enrich_stats *out);

#endif
