/* src/cmd/status_cmd.c: `cgw status`, the live status page of running workers.
 *
 * It asks each worker (GET /status on its metrics address, from -c CONFIG's metrics.listen or
 * one or more --url), sums the documents when there are several (the service runs as several
 * tasks; src/report) and prints a page for people, the JSON for scripts (--json), the
 * operators' Markdown page (--markdown) or writes the HTML page to a file (--html FILE). The
 * worker builds the document (src/pipeline/status.c); this only gathers and presents it.
 * The bearer token (metrics.token of -c CONFIG, or $CGW_METRICS_TOKEN) is sent when set.
 */
#include "cmd/cmd.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "http/http_body.h"
#include "report/report.h"

static int fetch(const char *url, const char *token, struct http_body *out, char *err, size_t errlen) {
    CURL *h = curl_easy_init();
    if (!h) { snprintf(err, errlen, "out of memory"); return -1; }
    struct curl_slist *hdr = NULL;
    if (token && token[0]) {
        char auth[1024];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s (is the worker running?)", url, curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        snprintf(err, errlen, "%s: HTTP %ld%s", url, status,
                 status == 401 ? " (a bearer token is asked: metrics.token of -c CONFIG, or $CGW_METRICS_TOKEN)" : "");
        return -1;
    }
    return 0;
}

static const char *str(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "-";
}

static long long num(json_t *o, const char *k) {
    return (long long)json_integer_value(json_object_get(o, k));
}

static void print_dead_letters(json_t *d) {
    const char *topic = json_string_value(json_object_get(d, "topic"));
    const char *reason;
    json_t *n;
    if (!topic) {
        printf("  dead-letter topic: none\n");
        return;
    }
    printf("  dead-letter topic %s: %lld records", topic, num(d, "total"));
    json_object_foreach(json_object_get(d, "by_reason"), reason, n)
        if (json_integer_value(n)) printf(", %s %lld", reason, (long long)json_integer_value(n));
    printf("\n");
}

static void print_consumer(json_t *c) {
    printf("\n%s consumer: %s (killswitch %s)\n  topic %s, group %s\n", str(c, "name"),
           str(c, "state"), json_is_true(json_object_get(c, "killswitch")) ? "ON" : "off",
           str(c, "topic"), str(c, "group"));
    printf("  consumed %lld, persisted %lld, errors %lld, writes in the last 10 minutes %lld, "
           "lag %lld\n", num(c, "consumed"), num(c, "persisted"), num(c, "errors"),
           num(c, "writes_last_10m"), num(c, "lag"));
    print_dead_letters(json_object_get(c, "dead_letters"));
    printf("  %-16s %10s %8s\n", "filter", "count", "share");
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(c, "filters"), i, f) {
        printf("  %-16s %10lld %7.2f%%\n", str(f, "reason"), num(f, "count"),
               100.0 * json_real_value(json_object_get(f, "share")));
    }
    printf("  partitions:");
    json_t *p;
    json_array_foreach(json_object_get(c, "partitions"), i, p) {
        printf(" %lld:lag=%lld", num(p, "partition"), num(p, "lag"));
    }
    printf("%s\n", json_array_size(json_object_get(c, "partitions")) ? "" : " (none assigned)");
}

static void print_page(json_t *doc) {
    printf("%s %s, up %lld s\n", str(doc, "service"), str(doc, "version"),
           num(doc, "uptime_seconds"));
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(doc, "consumers"), i, c) print_consumer(c);
    json_t *cfg = json_object_get(doc, "config"), *fl = json_object_get(doc, "flags");
    printf("\nconfig: log_only=%s log_only_commit_offsets=%s dry_run(deprecated)=%s\n",
           json_is_true(json_object_get(cfg, "log_only")) ? "true" : "false",
           json_is_true(json_object_get(cfg, "log_only_commit_offsets")) ? "true" : "false",
           json_is_true(json_object_get(cfg, "dry_run_deprecated")) ? "true" : "false");
    printf("flags: source %s, %s%s%s\n  rollout: %s\n", str(fl, "source"),
           json_is_true(json_object_get(fl, "source_ok")) ? "readable" : "UNREADABLE: ",
           json_is_true(json_object_get(fl, "source_ok")) ? "" : str(fl, "last_error"),
           json_is_true(json_object_get(fl, "loaded")) ? "" : " (not loaded yet)",
           str(fl, "rollout"));
    printf("endpoints:\n");
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(doc, "endpoints"), k, v) {
        printf("  %-16s %s\n", k, json_is_string(v) ? json_string_value(v) : "-");
    }
}

#define STATUS_MAX_URLS 32

struct status_args {
    const char *urls[STATUS_MAX_URLS];
    size_t nurls;
    const char *config, *html_file;
    enum { OUT_TEXT, OUT_JSON, OUT_MARKDOWN, OUT_HTML } out;
};

static int parse_args(int argc, char **argv, struct status_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) a->out = OUT_JSON;
        else if (!strcmp(argv[i], "--markdown")) a->out = OUT_MARKDOWN;
        else if (!strcmp(argv[i], "--html") && i + 1 < argc) { a->out = OUT_HTML; a->html_file = argv[++i]; }
        else if (!strcmp(argv[i], "--url") && i + 1 < argc && a->nurls < STATUS_MAX_URLS) a->urls[a->nurls++] = argv[++i];
        else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) a->config = argv[++i];
        else return -1;
    }
    return 0;
}

/* GET <url>/status of one worker, parsed. NULL with a message on stderr. */
static json_t *fetch_doc(const char *base, const char *token) {
    char target[512], err[1024];
    snprintf(target, sizeof target, "%s%s", base, strstr(base, "/status") ? "" : "/status");
    struct http_body b;
    http_body_init(&b, SIZE_MAX);       /* no cap: the worker's own status page */
    json_t *doc = NULL;
    if (fetch(target, token, &b, err, sizeof err) != 0) {
        fprintf(stderr, "cgw status: %s\n", err);
    } else {
        json_error_t je;
        doc = json_loads(b.data ? b.data : "", 0, &je);
        if (!doc) fprintf(stderr, "cgw status: %s: not a status document: %s\n", target, je.text);
    }
    http_body_free(&b);
    return doc;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "cgw status: cannot write %s\n", path);
        if (f) fclose(f);
        return 1;
    }
    return 0;
}

static int present(const struct status_args *a, json_t *doc) {
    char *text = NULL;
    switch (a->out) {
    case OUT_TEXT: print_page(doc); return 0;
    case OUT_JSON: text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER); break;
    case OUT_MARKDOWN: text = report_markdown(doc); break;
    case OUT_HTML: text = report_html(doc, 0); break;
    }
    if (!text) { fprintf(stderr, "cgw status: out of memory\n"); return 1; }
    int rc = 0;
    if (a->out == OUT_HTML) rc = write_text(a->html_file, text);
    else printf("%s%s", text, a->out == OUT_JSON ? "\n" : "");
    free(text);
    return rc;
}

int cmd_status(int argc, char **argv) {
    struct status_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: cgw status [-c CONFIG | --url http://HOST:PORT ...] [--json | --markdown | --html FILE]\n");
        return 2;
    }
    char local[300], err[1024];
    struct cgw_config *cfg = NULL;
    if (a.config && config_load(a.config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cgw: %s\n", err);
        return 2;
    }
    if (!a.nurls) {
        snprintf(local, sizeof local, "http://%s", cfg ? cfg->metrics.listen : "127.0.0.1:9464");
        a.urls[a.nurls++] = local;
    }
    const char *token = cfg && cfg->metrics.token ? cfg->metrics.token : getenv("CGW_METRICS_TOKEN");
    json_t *docs[STATUS_MAX_URLS];
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < a.nurls && rc == 0; i++)
        if (!(docs[n++] = fetch_doc(a.urls[i], token))) { n--; rc = 1; }
    json_t *sum = rc == 0 ? report_sum(docs, n) : NULL;
    if (rc == 0) rc = sum ? present(&a, sum) : 1;
    json_decref(sum);
    for (size_t i = 0; i < n; i++) json_decref(docs[i]);
    config_free(cfg);
    return rc;
}
