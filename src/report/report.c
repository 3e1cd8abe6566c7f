/* src/report/report.c: the status document of several instances summed into one, and what the
 * two renderers share (typed reads, the wording of states and times, the offset behaviour and
 * the runbook).
 *
 * Summing is what an operator does by hand with three tasks behind a load balancer: add the
 * counts, put the partitions side by side (each instance owns some), and call the consumer
 * as unhealthy as its least healthy instance, saying how many instances are in which state.
 */
#include "report/report_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- typed reads ---------------------------------------------------------------------- */

const char *rp_str(json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

long long rp_num(json_t *o, const char *key) { return (long long)json_integer_value(json_object_get(o, key)); }

double rp_real(json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

bool rp_true(json_t *o, const char *key) { return json_is_true(json_object_get(o, key)); }

void rp_state_label(const char *state, char *out, size_t len) {
    if (!strcmp(state, "stopped_by_killswitch")) { snprintf(out, len, "stopped by killswitch"); return; }
    if (!strcmp(state, "waiting_for_schema_registry")) { snprintf(out, len, "waiting for the schema registry"); return; }
    snprintf(out, len, "%s", state[0] ? state : "unknown");
    for (char *p = out; *p; p++) if (*p == '_') *p = ' ';
}

const char *rp_state_class(const char *state) {
    if (!strcmp(state, "running")) return "ok";
    if (!strcmp(state, "stopped_by_killswitch") || !strcmp(state, "stopped")) return "off";
    return "bad";
}

void rp_time(long long ms, char *out, size_t len) {
    if (ms <= 0) { snprintf(out, len, "-"); return; }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void rp_percent(double share, char *out, size_t len) { snprintf(out, len, "%.1f %%", 100.0 * share); }

char *rp_finish(FILE *f, char **buf) {
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) { free(*buf); *buf = NULL; }
    return *buf;
}

/* ---- offsets and runbook ---------------------------------------------------------------- */

void rp_offset_behaviour(json_t *doc, json_t *c, void (*line)(void *ud, const char *text), void *ud) {
    json_t *cfg = json_object_get(doc, "config");
    char b[512];
    if (rp_true(cfg, "log_only")) {
        line(ud, rp_true(cfg, "log_only_commit_offsets")
                     ? "log_only is on: records are only logged, and their offsets ARE committed "
                       "(log_only_commit_offsets): turning log_only off will not process them."
                     : "log_only is on: records are only logged and their offsets are NOT committed: "
                       "turning log_only off processes them for real.");
    } else {
        line(ud, "Offsets are committed only after the batch is written to Neo4j and marked in the "
                 "idempotency cache: at least once, nothing lost; a replay changes nothing.");
    }
    line(ud, "Skipped records and records that fail alone are committed (counted under their reason); "
             "a batch waiting out an outage (Neo4j, enrichment, schema registry) is not.");
    snprintf(b, sizeof b, "A group without a committed offset starts at the %s offset (auto_offset_reset: %s).",
             rp_str(c, "auto_offset_reset"), rp_str(c, "auto_offset_reset"));
    line(ud, b);
    snprintf(b, sizeof b, "Killswitch %s ON: the consumer finishes its batch, commits, leaves group %s; "
                          "OFF: it resumes from the committed offsets.",
             rp_str(c, "killswitch_flag"), rp_str(c, "group"));
    line(ud, b);
}

void rp_runbook(json_t *doc, json_t *c, void (*line)(void *ud, const char *text), void *ud) {
    (void)doc;
    char b[600];
    const char *g = rp_str(c, "group"), *t = rp_str(c, "topic");
    snprintf(b, sizeof b, "# stop / resume: turn the Flipper flag %s ON / OFF", rp_str(c, "killswitch_flag"));
    line(ud, b);
    line(ud, "cgw status -c config.yaml --markdown");
    line(ud, "cgw offsets show -c config.yaml");
    snprintf(b, sizeof b, "cgw offsets reset -c config.yaml --group %s --topic %s --to-datetime 2026-01-01T00:00:00Z", g, t);
    line(ud, b);
    line(ud, "# prints the plan; add --execute to apply (the consumer must be stopped by its killswitch)");
    snprintf(b, sizeof b, "cgw group delete -c config.yaml --group %s --execute", g);
    line(ud, b);
}

/* ---- summing instances ------------------------------------------------------------------ */

static const char *const summed_fields[] = {
    "consumed", "persisted", "errors", "writes_last_10m", "errors_decode", "errors_enrichment",
    "errors_graph", "nodes_created", "relationships_created", NULL,
};

/* Lower is healthier: the summed state is the highest rank seen. */
static int state_rank(const char *s) {
    if (!strcmp(s, "running")) return 0;
    if (!strcmp(s, "stopped_by_killswitch")) return 1;
    if (!strcmp(s, "stopped")) return 2;
    return 3;
}

static json_t *find_by(json_t *array, const char *key, json_t *value) {
    size_t i;
    json_t *e;
    json_array_foreach(array, i, e) if (json_equal(json_object_get(e, key), value)) return e;
    return NULL;
}

static void add_int(json_t *into, const char *key, json_t *from) {
    json_object_set_new(into, key, json_integer(json_integer_value(json_object_get(into, key)) +
                                                json_integer_value(json_object_get(from, key))));
}

static void add_per_minute(json_t *into, json_t *from) {
    json_t *a = json_object_get(into, "writes_per_minute"), *b = json_object_get(from, "writes_per_minute");
    for (size_t i = 0; i < json_array_size(a) && i < json_array_size(b); i++)
        json_array_set_new(a, i, json_integer(json_integer_value(json_array_get(a, i)) +
                                              json_integer_value(json_array_get(b, i))));
}

static void add_filters(json_t *into, json_t *from) {
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(from, "filters"), i, f) {
        json_t *mine = find_by(json_object_get(into, "filters"), "reason", json_object_get(f, "reason"));
        if (mine) add_int(mine, "count", f);
        else json_array_append_new(json_object_get(into, "filters"), json_deep_copy(f));
    }
}

static void merge_partitions(json_t *into, json_t *from) {
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(from, "partitions"), i, p) {
        json_t *mine = find_by(json_object_get(into, "partitions"), "partition", json_object_get(p, "partition"));
        if (!mine) json_array_append_new(json_object_get(into, "partitions"), json_deep_copy(p));
        else if (rp_num(p, "position") > rp_num(mine, "position")) json_object_update(mine, p);
    }
}

static void merge_state(json_t *into, json_t *from) {
    const char *s = rp_str(from, "state");
    json_t *states = json_object_get(into, "states");
    json_object_set_new(states, s, json_integer(rp_num(states, s) + 1));
    if (state_rank(s) > state_rank(rp_str(into, "state")) ||
        (!strcmp(s, rp_str(into, "state")) && rp_num(from, "state_since_ms") < rp_num(into, "state_since_ms"))) {
        json_object_set_new(into, "state", json_string(s));
        json_object_set(into, "state_since_ms", json_object_get(from, "state_since_ms"));
    }
    if (rp_true(from, "killswitch")) json_object_set_new(into, "killswitch", json_true());
}

static void add_consumer(json_t *into, json_t *from) {
    for (const char *const *k = summed_fields; *k; k++) add_int(into, *k, from);
    add_per_minute(into, from);
    add_filters(into, from);
    merge_partitions(into, from);
    merge_state(into, from);
}

/* Shares and lag from the summed counts and the merged partitions. */
static void finish_consumer(json_t *c) {
    long long consumed = rp_num(c, "consumed"), lag = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "filters"), i, e)
        json_object_set_new(e, "share", json_real(consumed ? (double)rp_num(e, "count") / (double)consumed : 0.0));
    json_array_foreach(json_object_get(c, "partitions"), i, e) if (rp_num(e, "lag") > 0) lag += rp_num(e, "lag");
    json_object_set_new(c, "lag", json_integer(lag));
}

static json_t *first_instance_of(json_t *c) {
    json_t *copy = json_deep_copy(c);
    if (!copy) return NULL;
    json_t *states = json_object();
    json_object_set_new(states, rp_str(c, "state"), json_integer(1));
    json_object_set_new(copy, "states", states);
    return copy;
}

static void add_instance(json_t *sum, json_t *doc) {
    size_t i;
    json_t *c;
    json_int_t instances = json_object_get(doc, "instances") ? json_integer_value(json_object_get(doc, "instances")) : 1;
    json_object_set_new(sum, "instances", json_integer(rp_num(sum, "instances") + instances));
    if (rp_num(doc, "uptime_seconds") < rp_num(sum, "uptime_seconds")) json_object_set(sum, "uptime_seconds", json_object_get(doc, "uptime_seconds"));
    if (rp_num(doc, "generated_at_ms") > rp_num(sum, "generated_at_ms")) json_object_set(sum, "generated_at_ms", json_object_get(doc, "generated_at_ms"));
    json_array_foreach(json_object_get(doc, "consumers"), i, c) {
        json_t *mine = find_by(json_object_get(sum, "consumers"), "name", json_object_get(c, "name"));
        if (mine) add_consumer(mine, c);
        else json_array_append_new(json_object_get(sum, "consumers"), first_instance_of(c));
    }
}

json_t *report_sum(json_t *const *docs, size_t n) {
    if (n == 0) return NULL;
    json_t *sum = json_deep_copy(docs[0]);
    if (!sum) return NULL;
    if (!json_object_get(sum, "instances")) json_object_set_new(sum, "instances", json_integer(1));
    json_t *consumers = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(docs[0], "consumers"), i, c) json_array_append_new(consumers, first_instance_of(c));
    json_object_set_new(sum, "consumers", consumers);
    for (size_t k = 1; k < n; k++) add_instance(sum, docs[k]);
    json_array_foreach(consumers, i, c) finish_consumer(c);
    return sum;
}
