/* src/cmd/status_cmd.c: `cgw status`, the live status page of a running worker.
 *
 * It asks the worker (GET /status on its metrics address, from -c CONFIG's metrics.listen or
 * --url) and prints the answer as a page for people, or as the JSON itself with --json for
 * scripts. The worker builds the document (src/pipeline/status.c); this only presents it.
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

static int fetch(const char *url, struct http_body *out, char *err, size_t errlen) {
    CURL *h = curl_easy_init();
    if (!h) { snprintf(err, errlen, "out of memory"); return -1; }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s: %s (is the worker running?)", url, curl_easy_strerror(rc));
        return -1;
    }
    if (status != 200) {
        snprintf(err, errlen, "%s: HTTP %ld", url, status);
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

static void print_consumer(json_t *c) {
    printf("\n%s consumer: %s (killswitch %s)\n  topic %s, group %s\n", str(c, "name"),
           str(c, "state"), json_is_true(json_object_get(c, "killswitch")) ? "ON" : "off",
           str(c, "topic"), str(c, "group"));
    printf("  consumed %lld, persisted %lld, errors %lld, writes in the last 10 minutes %lld, "
           "lag %lld\n", num(c, "consumed"), num(c, "persisted"), num(c, "errors"),
           num(c, "writes_last_10m"), num(c, "lag"));
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

int cmd_status(int argc, char **argv) {
    const char *url = NULL, *config = NULL;
    int as_json = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) as_json = 1;
        else if (!strcmp(argv[i], "--url") && i + 1 < argc) url = argv[++i];
        else if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc)
            config = argv[++i];
        else {
            fprintf(stderr, "usage: cgw status [-c CONFIG | --url http://HOST:PORT] [--json]\n");
            return 2;
        }
    }
    char target[512], err[1024];
    if (!url) {
        struct cgw_config *cfg = NULL;
        if (config && config_load(config, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "cgw: %s\n", err);
            return 2;
        }
        snprintf(target, sizeof target, "http://%s/status",
                 cfg ? cfg->metrics.listen : "127.0.0.1:9464");
        config_free(cfg);
    } else {
        snprintf(target, sizeof target, "%s%s", url, strstr(url, "/status") ? "" : "/status");
    }
    struct http_body b;
    http_body_init(&b, SIZE_MAX);       /* no cap: the worker's own status page */
    if (fetch(target, &b, err, sizeof err) != 0) {
        fprintf(stderr, "cgw status: %s\n", err);
        http_body_free(&b);
        return 1;
    }
    int rc = 0;
    if (as_json) {
        fputs(b.data ? b.data : "", stdout);
        fputc('\n', stdout);
    } else {
        json_error_t je;
        json_t *doc = json_loads(b.data ? b.data : "", 0, &je);
        if (!doc) {
            fprintf(stderr, "cgw status: not a status document: %s\n", je.text);
            rc = 1;
        } else {
            print_page(doc);
            json_decref(doc);
        }
    }
    http_body_free(&b);
    return rc;
}
