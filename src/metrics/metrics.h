/* metrics.h: Prometheus counters, gauges and histograms, and the HTTP server that exposes them.
 *
 * Registration (startup, or rarely later) takes the registry's mutex and returns a handle to
 * one series: a metric name plus one set of label values. Updates through a handle are single
 * atomic operations and never lock, so worker threads count every record for free; rendering
 * takes the mutex only to walk the list of series, never to stop an update.
 *
 *   struct metrics_counter *digital = metrics_register_counter(reg, "cgw_records_skipped_total",
 *       "Records skipped, by consumer and reason.", "consumer", "receipt", "reason", "digital", NULL);
 *   ...
 *   metrics_inc_counter(digital);            (hot path)
 *
 * Registering the same name and label values again returns the same handle. A bad
 * registration (invalid name, a name reused with another type or other label names, bad
 * buckets) returns NULL and metrics_error() says why; update functions accept NULL and do
 * nothing, so a mistake costs a missing series, not a crash. Handles live as long as the
 * registry.
 *
 * The server (metrics_http.c, on libmicrohttpd) answers GET and HEAD of /metrics, /healthz
 * (liveness), /readyz (readiness) and the paths of a caller hook (/status, the page) on its own
 * thread, with keep-alive, gzip when asked, per-connection timeouts and a connection limit; see
 * metrics_start_server.
 */
#ifndef CGW_METRICS_H
#define CGW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS 8
#define METRICS_MAX_BUCKETS 32

struct metrics_registry;
struct metrics_counter;
struct metrics_gauge;
struct metrics_histogram;

struct metrics_registry *metrics_new_registry(void);
void metrics_free_registry(struct metrics_registry *reg);
/* The reason of the last failed registration ("" when none). */
const char *metrics_error(struct metrics_registry *reg);

/* Label arguments: name, value, name, value, ..., NULL. */
struct metrics_counter *metrics_register_counter(struct metrics_registry *reg, const char *name,
                                                 const char *help, ...) __attribute__((sentinel));
struct metrics_gauge *metrics_register_gauge(struct metrics_registry *reg, const char *name,
                                             const char *help, ...) __attribute__((sentinel));
/* bounds: the upper bounds of the buckets, strictly increasing and finite (+Inf is implied). */
struct metrics_histogram *metrics_register_histogram(struct metrics_registry *reg, const char *name,
                                                     const char *help, const double *bounds,
                                                     size_t nbounds, ...) __attribute__((sentinel));

void metrics_inc_counter(struct metrics_counter *c);
void metrics_add_counter(struct metrics_counter *c, uint64_t n);
uint64_t metrics_read_counter(const struct metrics_counter *c);

void metrics_set_gauge(struct metrics_gauge *g, double v);
void metrics_add_gauge(struct metrics_gauge *g, double delta);
double metrics_read_gauge(const struct metrics_gauge *g);

void metrics_observe(struct metrics_histogram *h, double v);

/* Bucket bounds for durations in seconds, 1 ms .. 60 s (11 bounds). */
extern const double metrics_duration_buckets[];
extern const size_t metrics_duration_buckets_count;

/* The whole exposition (text format 0.0.4) in a malloc'd string the caller frees; 0 or -1
 * when out of memory. */
int metrics_render(struct metrics_registry *reg, char **out, size_t *len);

/* ---- HTTP server --------------------------------------------------------------------------- */

/* Probe callback (liveness or readiness): return 0 when fine; otherwise write a short reason
 * (the 503 body). */
typedef int (*metrics_health_fn)(void *ud, char *reason, size_t len);
/* Hook for further paths (e.g. /status): return an HTTP status and set *body to a malloc'd
 * string (freed by the server) and *content_type to a static string; return 0 when the path is
 * not handled (the server answers 404). */
typedef int (*metrics_handler_fn)(void *ud, const char *path, char **body, const char **content_type);

struct metrics_server_options {
    const char *listen;                 /* "127.0.0.1:9464", "[::1]:9464"; port 0: any free port */
    struct metrics_registry *registry;  /* may be NULL: /metrics then serves an empty page */
    metrics_health_fn health;           /* /healthz, liveness; NULL: always live */
    void *health_ud;
    metrics_health_fn ready;            /* /readyz, readiness; NULL: always ready */
    void *ready_ud;
    metrics_handler_fn handler;         /* NULL: no further paths */
    void *handler_ud;
    /* When set and the listener is not on a loopback address, the handler's paths need
     * "Authorization: Bearer <token>" (401 otherwise); /metrics and the probes never do. */
    const char *token;
    int max_connections;                /* open connections at most (half of them per client address); 0: 512 */
    int timeout_seconds;                /* an idle or slow connection is closed after it; 0: 10 */
};

struct metrics_server;

/* Binds, then serves on a new thread. Callbacks run on that thread. NULL with err on failure. */
struct metrics_server *metrics_start_server(const struct metrics_server_options *opt, char *err, size_t errlen);
/* The bound port (useful with port 0). */
int metrics_get_server_port(const struct metrics_server *srv);
/* Stops the thread, closes every connection and frees srv. */
void metrics_stop_server(struct metrics_server *srv);

#endif
