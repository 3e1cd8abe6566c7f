/* src/report/report_md.c: the status page as Markdown, section for section the operators'
 * hand-kept page "Kafka Data Ingestion Status": Current State, Configuration, then per
 * consumer its topic and group, What's Working, What's Filtered, lag per partition, the offset
 * behaviour and the runbook commands, with the live numbers of the document.
 *
 * Table cells escape '|' and line ends, so a flag description or an endpoint cannot break a
 * table.
 */
#include "report/report_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* One table cell's text: '|' escaped, line ends as spaces. */
static void cell(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '\n' || *s == '\r') fputc(' ', f);
        else fputc(*s, f);
    }
}

static void bullet(void *ud, const char *text) { fprintf(ud, "- %s\n", text); }
static void shell_line(void *ud, const char *text) { fprintf(ud, "%s\n", text); }

static void state_text(json_t *c, char *out, size_t len) {
    char label[96], since[40];
    rp_state_label(rp_str(c, "state"), label, sizeof label);
    rp_time(rp_num(c, "state_since_ms"), since, sizeof since);
    snprintf(out, len, "%s since %s", label, since);
}

static void current_state(FILE *f, json_t *doc) {
    fputs("## Current State\n\n| Consumer | Killswitch flag | Status | Writes per 10 minutes | Lag |\n"
          "|---|---|---|---:|---:|\n", f);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "consumers"), i, c) {
        char st[160];
        state_text(c, st, sizeof st);
        fprintf(f, "| %s | `%s` = %s | ", rp_str(c, "name"), rp_str(c, "killswitch_flag"),
                rp_true(c, "killswitch") ? "ON" : "OFF");
        cell(f, st);
        fprintf(f, " | %lld | %lld |\n", rp_num(c, "writes_last_10m"), rp_num(c, "lag"));
    }
    fputc('\n', f);
}

static void config_row(FILE *f, const char *key, const char *value) {
    fprintf(f, "| %s | ", key);
    cell(f, value);
    fputs(" |\n", f);
}

static void configuration(FILE *f, json_t *doc) {
    json_t *cfg = json_object_get(doc, "config"), *fl = json_object_get(doc, "flags"),
           *ep = json_object_get(doc, "endpoints");
    char b[700];
    fputs("## Configuration\n\n| Setting | Value |\n|---|---|\n", f);
    config_row(f, "`log_only`", rp_true(cfg, "log_only") ? "true" : "false");
    config_row(f, "`log_only_commit_offsets`", rp_true(cfg, "log_only_commit_offsets") ? "true" : "false");
    config_row(f, "`dry_run`", rp_true(cfg, "dry_run_deprecated") ? "true (deprecated: no effect)" : "false");
    snprintf(b, sizeof b, "`%s`: %s", rp_str(fl, "rollout_flag"), rp_str(fl, "rollout"));
    config_row(f, "Rollout flag", b);
    char when[40];
    rp_time(rp_num(fl, "last_read_ms"), when, sizeof when);
    snprintf(b, sizeof b, "%s, %s, last read %s", rp_str(fl, "source"),
             rp_true(fl, "source_ok") ? "readable" : "UNREADABLE", when);
    config_row(f, "Flags source", b);
    config_row(f, "Neo4j endpoint", rp_str(ep, "neo4j"));
    config_row(f, "Kafka brokers", rp_str(ep, "kafka"));
    fputc('\n', f);
}

static void working(FILE *f, json_t *c) {
    fputs("### What's Working\n\n", f);
    fprintf(f, "- %lld records consumed, %lld persisted to Neo4j (%lld nodes and %lld relationships created)\n",
            rp_num(c, "consumed"), rp_num(c, "persisted"), rp_num(c, "nodes_created"),
            rp_num(c, "relationships_created"));
    fprintf(f, "- %lld writes in the last 10 minutes\n", rp_num(c, "writes_last_10m"));
    fprintf(f, "- Errors: %lld (decode %lld, enrichment %lld, graph %lld)\n", rp_num(c, "errors"),
            rp_num(c, "errors_decode"), rp_num(c, "errors_enrichment"), rp_num(c, "errors_graph"));
    fprintf(f, "- Lag: %lld over %zu partitions\n\n", rp_num(c, "lag"), json_array_size(json_object_get(c, "partitions")));
}

static void filtered(FILE *f, json_t *c) {
    fputs("### What's Filtered\n\n| Filter | Rate | Count | Reason |\n|---|---:|---:|---|\n", f);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "filters"), i, e) {
        char pct[32];
        rp_percent(rp_real(e, "share"), pct, sizeof pct);
        fprintf(f, "| `%s` | %s | %lld | ", rp_str(e, "reason"), pct, rp_num(e, "count"));
        cell(f, rp_str(e, "rule"));
        fputs(" |\n", f);
    }
    fputc('\n', f);
}

static void lag_table(FILE *f, json_t *c) {
    fputs("### Lag per partition\n\n", f);
    if (!json_array_size(json_object_get(c, "partitions"))) { fputs("No partition assigned.\n\n", f); return; }
    fputs("| Partition | Position | Lag |\n|---:|---:|---:|\n", f);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "partitions"), i, p)
        fprintf(f, "| %lld | %lld | %lld |\n", rp_num(p, "partition"), rp_num(p, "position"), rp_num(p, "lag"));
    fputc('\n', f);
}

static void consumer_section(FILE *f, json_t *doc, json_t *c) {
    const char *name = rp_str(c, "name");
    fprintf(f, "## %c%s consumer\n\n- Topic: `%s`\n- Group: `%s`\n", name[0] ? toupper((unsigned char)name[0]) : '?',
            name[0] ? name + 1 : "", rp_str(c, "topic"), rp_str(c, "group"));
    json_t *states = json_object_get(c, "states");
    if (json_object_size(states) > 1) {
        const char *k;
        json_t *v;
        fputs("- Instances:", f);
        json_object_foreach(states, k, v) fprintf(f, " %s %lld;", k, (long long)json_integer_value(v));
        fputc('\n', f);
    }
    fputc('\n', f);
    working(f, c);
    filtered(f, c);
    lag_table(f, c);
    fputs("### Offset behaviour\n\n", f);
    rp_offset_behaviour(doc, c, bullet, f);
    fputs("\n### Runbook\n\n```sh\n", f);
    rp_runbook(doc, c, shell_line, f);
    fputs("```\n\n", f);
}

char *report_markdown(json_t *doc) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    char when[40];
    rp_time(rp_num(doc, "generated_at_ms"), when, sizeof when);
    fprintf(f, "# " REPORT_TITLE "\n\nGenerated %s from %lld instance%s of %s %s.\n\n", when,
            rp_num(doc, "instances"), rp_num(doc, "instances") == 1 ? "" : "s", rp_str(doc, "service"),
            rp_str(doc, "version"));
    current_state(f, doc);
    configuration(f, doc);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "consumers"), i, c) consumer_section(f, doc, c);
    return rp_finish(f, &buf);
}
