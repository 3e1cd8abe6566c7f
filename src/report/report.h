/* src/report/report.h: the operators' status page, "Kafka Data Ingestion Status", made from
 * the worker's /status document (src/pipeline/status.c): as Markdown for the runbook
 * (`cgw status --markdown`) and as a self-contained HTML page (GET / of the metrics listener,
 * `cgw status --html FILE`).
 *
 * Why a room of its own: the same page is rendered inside the worker (the listener's GET /) and
 * by the command line from one or several workers' JSON (the service runs as several tasks),
 * so it depends on the document only, never on the pipeline. Both renderers read the document
 * with jansson and write with stdio into memory (open_memstream); nothing here does I/O.
 *
 *   json_t *docs[3] = { ... };               (each the JSON of one worker's /status)
 *   json_t *sum = report_sum(docs, 3);       (one document: counts added, partitions merged)
 *   char *md = report_markdown(sum);         (caller frees)
 *   char *html = report_html(sum, 15);       (refreshes itself every 15 s; caller frees)
 *
 * The page holds no secret: the document's endpoints are already redacted by the worker.
 */
#ifndef CGW_REPORT_H
#define CGW_REPORT_H

#include <jansson.h>
#include <stddef.h>

/* One document for n instances' documents (n >= 1; the inputs are not changed): per consumer
 * (matched by name) the counts and the per-minute writes are added, filter shares recomputed,
 * partitions merged (a partition reported twice, as during a rebalance, keeps the further
 * position), the state is the least healthy one with the instances' states counted in
 * "states"; the configuration, flags and endpoints are the first document's. "instances" is
 * the sum of the inputs' "instances". NULL when out of memory or n is 0. */
json_t *report_sum(json_t *const *docs, size_t n);

/* The page as Markdown (GitHub tables). NULL when out of memory. */
char *report_markdown(json_t *doc);

/* The page as one HTML document: inline style and SVG charts only (no script, font or
 * stylesheet from elsewhere), refreshing itself every refresh_seconds (0: never). NULL when
 * out of memory. */
char *report_html(json_t *doc, int refresh_seconds);

#endif
