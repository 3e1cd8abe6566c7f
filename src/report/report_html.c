/* src/report/report_html.c: the status page as one self-contained HTML document: the same
 * sections as the Markdown (report_md.c) plus three small inline-SVG charts per consumer
 * (writes per minute over the last hour, lag per partition, filter shares).
 *
 * Why by hand and not a template library: the page is a few tables and rectangles whose
 * numbers come from one JSON document; printf with one escaping function is shorter than any
 * templating dependency, and the worker serves it from its private network, so nothing may
 * come from elsewhere: no script, no web font, no external stylesheet (inline <style> only).
 * It refreshes itself with <meta http-equiv="refresh">.
 *
 * Accessibility: one h1, h2 per section, h3 per part; every table has a caption and th with
 * scope; states are written as words next to their colour; every chart is role="img" with a
 * title and a description, and each bar has a <title> with its number. Elements carrying live
 * numbers have data-field attributes so a test (or a scraper) can find them in the DOM.
 */
#include "report/report_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define CHART_W 600
#define CHART_H 120

static const char *const palette[] = {"#0969da", "#bf3989", "#8250df", "#bc4c00", "#1a7f37", "#57606a", "#cf222e"};
#define PALETTE_N (sizeof palette / sizeof palette[0])

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem;color:#1f2328;max-width:72rem}"
    "h1{font-size:1.6rem}h2{font-size:1.3rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2rem}"
    "h3{font-size:1.05rem;margin-top:1.2rem}table{border-collapse:collapse;margin:.5rem 0}"
    "caption{text-align:left;font-weight:600;padding:.2rem 0}"
    "th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;vertical-align:top}"
    "thead th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    ".state{font-weight:600;padding:.05rem .45rem;border-radius:.6rem;white-space:nowrap}"
    ".state-ok{background:#dafbe1;color:#116329}.state-off{background:#fff8c5;color:#7d4e00}"
    ".state-bad{background:#ffebe9;color:#a40e26}.on{color:#a40e26;font-weight:600}"
    "pre{background:#f6f8fa;padding:.6rem;overflow-x:auto}code{font-size:.9em}"
    "svg text{font-size:11px;fill:#57606a}.legend span{margin-right:1rem;white-space:nowrap}"
    ".swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}";

static void head(FILE *f, json_t *doc, int refresh) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n", f);
    if (refresh > 0) fprintf(f, "<meta http-equiv=\"refresh\" content=\"%d\">\n", refresh);
    fprintf(f, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
               "<title>" REPORT_TITLE "</title>\n<style>%s</style>\n</head>\n<body>\n", style);
    char when[40];
    rp_time(rp_num(doc, "generated_at_ms"), when, sizeof when);
    fprintf(f, "<header><h1>" REPORT_TITLE "</h1>\n<p>Generated <time data-field=\"generated_at\">%s</time> from "
               "<span data-field=\"instances\">%lld</span> instance%s of ", when, rp_num(doc, "instances"),
            rp_num(doc, "instances") == 1 ? "" : "s");
    esc(f, rp_str(doc, "service"));
    fputc(' ', f);
    esc(f, rp_str(doc, "version"));
    if (refresh > 0) fprintf(f, "; this page refreshes itself every %d s", refresh);
    fputs(".</p></header>\n<main>\n", f);
}

static void state_badge(FILE *f, json_t *c) {
    char label[96], since[40];
    rp_state_label(rp_str(c, "state"), label, sizeof label);
    rp_time(rp_num(c, "state_since_ms"), since, sizeof since);
    fprintf(f, "<span class=\"state state-%s\" data-field=\"state\" data-state=\"", rp_state_class(rp_str(c, "state")));
    esc(f, rp_str(c, "state"));
    fputs("\">", f);
    esc(f, label);
    fprintf(f, "</span> since <time data-field=\"state_since\">%s</time>", since);
}

static void current_state(FILE *f, json_t *doc) {
    fputs("<section aria-labelledby=\"h-state\"><h2 id=\"h-state\">Current State</h2>\n"
          "<table id=\"current-state\"><caption>Consumers now</caption>\n<thead><tr>"
          "<th scope=\"col\">Consumer</th><th scope=\"col\">Killswitch flag</th><th scope=\"col\">Status</th>"
          "<th scope=\"col\">Writes per 10 minutes</th><th scope=\"col\">Lag</th></tr></thead>\n<tbody>\n", f);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "consumers"), i, c) {
        fputs("<tr data-consumer=\"", f);
        esc(f, rp_str(c, "name"));
        fputs("\"><th scope=\"row\">", f);
        esc(f, rp_str(c, "name"));
        fputs("</th><td><code>", f);
        esc(f, rp_str(c, "killswitch_flag"));
        fprintf(f, "</code> = <span data-field=\"killswitch\"%s>%s</span></td><td>",
                rp_true(c, "killswitch") ? " class=\"on\"" : "", rp_true(c, "killswitch") ? "ON" : "OFF");
        state_badge(f, c);
        fprintf(f, "</td><td class=\"n\" data-field=\"writes_last_10m\">%lld</td><td class=\"n\" data-field=\"lag\">%lld</td></tr>\n",
                rp_num(c, "writes_last_10m"), rp_num(c, "lag"));
    }
    fputs("</tbody></table></section>\n", f);
}

static void config_row(FILE *f, const char *key, const char *field, const char *value) {
    fprintf(f, "<tr><th scope=\"row\">%s</th><td data-field=\"%s\">", key, field);
    esc(f, value);
    fputs("</td></tr>\n", f);
}

static void configuration(FILE *f, json_t *doc) {
    json_t *cfg = json_object_get(doc, "config"), *fl = json_object_get(doc, "flags"),
           *ep = json_object_get(doc, "endpoints");
    char b[700], when[40];
    fputs("<section aria-labelledby=\"h-config\"><h2 id=\"h-config\">Configuration</h2>\n"
          "<table id=\"configuration\"><caption>Settings in force</caption>\n<thead><tr><th scope=\"col\">Setting</th>"
          "<th scope=\"col\">Value</th></tr></thead>\n<tbody>\n", f);
    config_row(f, "<code>log_only</code>", "log_only", rp_true(cfg, "log_only") ? "true" : "false");
    config_row(f, "<code>log_only_commit_offsets</code>", "log_only_commit_offsets",
               rp_true(cfg, "log_only_commit_offsets") ? "true" : "false");
    config_row(f, "<code>dry_run</code>", "dry_run", rp_true(cfg, "dry_run_deprecated") ? "true (deprecated: no effect)" : "false");
    snprintf(b, sizeof b, "%s: %s", rp_str(fl, "rollout_flag"), rp_str(fl, "rollout"));
    config_row(f, "Rollout flag", "rollout", b);
    rp_time(rp_num(fl, "last_read_ms"), when, sizeof when);
    snprintf(b, sizeof b, "%s, %s, last read %s", rp_str(fl, "source"), rp_true(fl, "source_ok") ? "readable" : "UNREADABLE", when);
    config_row(f, "Flags source", "flags", b);
    config_row(f, "Neo4j endpoint", "neo4j", rp_str(ep, "neo4j"));
    config_row(f, "Kafka brokers", "kafka", rp_str(ep, "kafka"));
    fputs("</tbody></table></section>\n", f);
}

/* ---- charts -------------------------------------------------------------------------------- */

static void svg_open(FILE *f, const char *id, int h, const char *title, const char *desc) {
    fprintf(f, "<svg id=\"%s\" role=\"img\" aria-labelledby=\"%s-t %s-d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">"
               "<title id=\"%s-t\">", id, id, id, CHART_W, h, CHART_W, h, id);
    esc(f, title);
    fprintf(f, "</title><desc id=\"%s-d\">", id);
    esc(f, desc);
    fputs("</desc>", f);
}

static void writes_chart(FILE *f, json_t *c, long long now_ms) {
    json_t *per = json_object_get(c, "writes_per_minute");
    size_t n = json_array_size(per);
    long long max = 1, total = 0;
    for (size_t i = 0; i < n; i++) {
        long long v = (long long)json_integer_value(json_array_get(per, i));
        if (v > max) max = v;
        total += v;
    }
    char id[96], desc[160];
    snprintf(id, sizeof id, "writes-%s", rp_str(c, "name"));
    snprintf(desc, sizeof desc, "%lld writes in the last %zu minutes; the busiest minute had %lld.", total, n, n ? max : 0);
    svg_open(f, id, CHART_H + 20, "Writes per minute, last hour", desc);
    double bw = n ? (double)CHART_W / (double)n : 0;
    for (size_t i = 0; i < n; i++) {
        long long v = (long long)json_integer_value(json_array_get(per, i));
        double h = (double)v * (CHART_H - 14) / (double)max;
        char when[40];
        rp_time((now_ms / 60000 - (long long)(n - 1 - i)) * 60000, when, sizeof when);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#0969da\"><title>%s: %lld writes</title></rect>",
                i * bw + 1, CHART_H - h, bw > 2 ? bw - 2 : bw, h, when, v);
    }
    fprintf(f, "<line x1=\"0\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#8c959f\"/>", CHART_H, CHART_W, CHART_H);
    fprintf(f, "<text x=\"2\" y=\"10\">max %lld/min</text><text x=\"2\" y=\"%d\">-%zu min</text>"
               "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">now</text></svg>\n", max, CHART_H + 14, n, CHART_W - 2, CHART_H + 14);
}

static void lag_chart(FILE *f, json_t *c) {
    json_t *parts = json_object_get(c, "partitions");
    size_t n = json_array_size(parts), i;
    if (!n) return;
    long long max = 1;
    json_t *p;
    json_array_foreach(parts, i, p) if (rp_num(p, "lag") > max) max = rp_num(p, "lag");
    char id[96], desc[160];
    snprintf(id, sizeof id, "lag-%s", rp_str(c, "name"));
    snprintf(desc, sizeof desc, "Lag of %zu partitions, %lld in all.", n, rp_num(c, "lag"));
    svg_open(f, id, (int)n * 18 + 4, "Lag per partition", desc);
    json_array_foreach(parts, i, p) {
        long long lag = rp_num(p, "lag") > 0 ? rp_num(p, "lag") : 0;
        double w = (double)lag * (CHART_W - 140) / (double)max;
        fprintf(f, "<text x=\"0\" y=\"%zu\">partition %lld</text><rect x=\"80\" y=\"%zu\" width=\"%.1f\" height=\"13\" fill=\"#bc4c00\">"
                   "<title>partition %lld: lag %lld</title></rect><text x=\"%.1f\" y=\"%zu\">%lld</text>",
                i * 18 + 13, rp_num(p, "partition"), i * 18 + 3, w, rp_num(p, "partition"), lag, 84 + w, i * 18 + 13, lag);
    }
    fputs("</svg>\n", f);
}

static void shares_chart(FILE *f, json_t *c) {
    char id[96];
    snprintf(id, sizeof id, "filters-%s", rp_str(c, "name"));
    svg_open(f, id, 26, "Filter shares of consumed records", "Each filter's share of the records consumed; the legend names them.");
    double x = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "filters"), i, e) {
        double w = rp_real(e, "share") * CHART_W;
        fprintf(f, "<rect x=\"%.1f\" y=\"2\" width=\"%.1f\" height=\"22\" fill=\"%s\"><title>", x, w, palette[i % PALETTE_N]);
        esc(f, rp_str(e, "reason"));
        fprintf(f, ": %.1f %%</title></rect>", 100.0 * rp_real(e, "share"));
        x += w;
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"2\" width=\"%.1f\" height=\"22\" fill=\"#eaeef2\"><title>not filtered</title></rect></svg>\n",
            x, x < CHART_W ? CHART_W - x : 0);
    fputs("<p class=\"legend\">", f);
    json_array_foreach(json_object_get(c, "filters"), i, e) {
        char pct[32];
        rp_percent(rp_real(e, "share"), pct, sizeof pct);
        fprintf(f, "<span><span class=\"swatch\" style=\"background:%s\"></span>", palette[i % PALETTE_N]);
        esc(f, rp_str(e, "reason"));
        fprintf(f, " %s</span>", pct);
    }
    fputs("<span><span class=\"swatch\" style=\"background:#eaeef2\"></span>not filtered</span></p>\n", f);
}

/* ---- per consumer ---------------------------------------------------------------------------- */

static void working(FILE *f, json_t *c, const char *cid) {
    fprintf(f, "<h3 id=\"%s-working\">What's Working</h3>\n<ul>\n", cid);
    fprintf(f, "<li><span data-field=\"consumed\">%lld</span> records consumed, <span data-field=\"persisted\">%lld</span> "
               "persisted to Neo4j (<span data-field=\"nodes_created\">%lld</span> nodes and "
               "<span data-field=\"relationships_created\">%lld</span> relationships created)</li>\n",
            rp_num(c, "consumed"), rp_num(c, "persisted"), rp_num(c, "nodes_created"), rp_num(c, "relationships_created"));
    fprintf(f, "<li><span data-field=\"writes_last_10m\">%lld</span> writes in the last 10 minutes</li>\n", rp_num(c, "writes_last_10m"));
    fprintf(f, "<li>Errors: <span data-field=\"errors\">%lld</span> (decode %lld, enrichment %lld, graph %lld)</li>\n",
            rp_num(c, "errors"), rp_num(c, "errors_decode"), rp_num(c, "errors_enrichment"), rp_num(c, "errors_graph"));
    fputs("</ul>\n", f);
}

static void filtered(FILE *f, json_t *c, const char *cid) {
    fprintf(f, "<h3 id=\"%s-filtered\">What's Filtered</h3>\n<table class=\"filters\"><caption>Skipped records by filter</caption>\n"
               "<thead><tr><th scope=\"col\">Filter</th><th scope=\"col\">Rate</th><th scope=\"col\">Count</th>"
               "<th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n", cid);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(c, "filters"), i, e) {
        char pct[32];
        rp_percent(rp_real(e, "share"), pct, sizeof pct);
        fputs("<tr data-reason=\"", f);
        esc(f, rp_str(e, "reason"));
        fputs("\"><th scope=\"row\"><code>", f);
        esc(f, rp_str(e, "reason"));
        fprintf(f, "</code></th><td class=\"n\" data-field=\"share\">%s</td><td class=\"n\" data-field=\"count\">%lld</td><td>",
                pct, rp_num(e, "count"));
        esc(f, rp_str(e, "rule"));
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    shares_chart(f, c);
}

static void lag_section(FILE *f, json_t *c, const char *cid) {
    fprintf(f, "<h3 id=\"%s-lag\">Lag per partition</h3>\n", cid);
    json_t *parts = json_object_get(c, "partitions");
    if (!json_array_size(parts)) { fputs("<p>No partition assigned.</p>\n", f); return; }
    fputs("<table class=\"partitions\"><caption>Position and lag of each assigned partition</caption>\n<thead><tr>"
          "<th scope=\"col\">Partition</th><th scope=\"col\">Position</th><th scope=\"col\">Lag</th></tr></thead>\n<tbody>\n", f);
    size_t i;
    json_t *p;
    json_array_foreach(parts, i, p)
        fprintf(f, "<tr data-partition=\"%lld\"><th scope=\"row\">%lld</th><td class=\"n\" data-field=\"position\">%lld</td>"
                   "<td class=\"n\" data-field=\"lag\">%lld</td></tr>\n",
                rp_num(p, "partition"), rp_num(p, "partition"), rp_num(p, "position"), rp_num(p, "lag"));
    fputs("</tbody></table>\n", f);
    lag_chart(f, c);
}

static void li_line(void *ud, const char *text) {
    fputs("<li>", ud);
    esc(ud, text);
    fputs("</li>\n", ud);
}

static void code_line(void *ud, const char *text) {
    esc(ud, text);
    fputc('\n', ud);
}

static void consumer_section(FILE *f, json_t *doc, json_t *c) {
    const char *name = rp_str(c, "name");
    char cid[80];
    snprintf(cid, sizeof cid, "consumer-%s", name);
    for (char *p = cid; *p; p++) if (!isalnum((unsigned char)*p) && *p != '-') *p = '_';
    fprintf(f, "<section id=\"%s\" data-consumer=\"", cid);
    esc(f, name);
    fprintf(f, "\" aria-labelledby=\"%s-h\"><h2 id=\"%s-h\">", cid, cid);
    esc(f, name);
    fputs(" consumer</h2>\n<p>Topic <code data-field=\"topic\">", f);
    esc(f, rp_str(c, "topic"));
    fputs("</code>, group <code data-field=\"group\">", f);
    esc(f, rp_str(c, "group"));
    fputs("</code>.</p>\n", f);
    working(f, c, cid);
    fprintf(f, "<h3 id=\"%s-writes\">Writes per minute, last hour</h3>\n", cid);
    writes_chart(f, c, rp_num(doc, "generated_at_ms"));
    filtered(f, c, cid);
    lag_section(f, c, cid);
    fprintf(f, "<h3 id=\"%s-offsets\">Offset behaviour</h3>\n<ul>\n", cid);
    rp_offset_behaviour(doc, c, li_line, f);
    fprintf(f, "</ul>\n<h3 id=\"%s-runbook\">Runbook</h3>\n<pre><code>", cid);
    rp_runbook(doc, c, code_line, f);
    fputs("</code></pre>\n</section>\n", f);
}

char *report_html(json_t *doc, int refresh_seconds) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    head(f, doc, refresh_seconds);
    current_state(f, doc);
    configuration(f, doc);
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "consumers"), i, c) consumer_section(f, doc, c);
    fputs("</main>\n</body>\n</html>\n", f);
    return rp_finish(f, &buf);
}
