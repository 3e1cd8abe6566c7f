/* src/report/report_internal.h: what the Markdown and HTML renderers share: typed reads of the
 * status document and the wording of states, times and the runbook. Not an interface outside
 * src/report/. */
#ifndef CGW_REPORT_INTERNAL_H
#define CGW_REPORT_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "report/report.h"

#define REPORT_TITLE "Kafka Data Ingestion Status"

const char *rp_str(json_t *o, const char *key);        /* "" when absent */
long long rp_num(json_t *o, const char *key);          /* 0 when absent */
double rp_real(json_t *o, const char *key);            /* integers too */
bool rp_true(json_t *o, const char *key);

/* "running", "stopped by killswitch", "waiting for neo4j" ... */
void rp_state_label(const char *state, char *out, size_t len);
/* "ok" (running), "off" (stopped by killswitch or configuration), "bad" (waiting, unknown). */
const char *rp_state_class(const char *state);
/* "2026-12-01 16:10:00 UTC" for a wall-clock time in ms; "-" for 0. */
void rp_time(long long ms, char *out, size_t len);
/* "12.3 %" */
void rp_percent(double share, char *out, size_t len);

/* How offsets are committed, as sentences (one per call of line). */
void rp_offset_behaviour(json_t *doc, json_t *consumer, void (*line)(void *ud, const char *text), void *ud);
/* The runbook commands for a consumer, one per call of line (shell lines, comments start with #). */
void rp_runbook(json_t *doc, json_t *consumer, void (*line)(void *ud, const char *text), void *ud);

/* Closes an open_memstream stream and returns its text (*buf, which the close sets); NULL
 * when a write failed. */
char *rp_finish(FILE *f, char **buf);

#endif
