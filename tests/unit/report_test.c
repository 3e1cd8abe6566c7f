/* report_test.c: the status page renderers (src/report) on made-up /status documents: summing
 * instances (counts, shares, partitions, the least healthy state), Markdown tables that a '|'
 * cannot break, HTML that escapes what it shows and loads nothing from elsewhere. */
#define TEST_MAIN
#include "test.h"

#include "report/report.h"

static const char *const instance_a =
    "{\"service\":\"consumer-graph-worker\",\"version\":\"1.2.3\",\"generated_at_ms\":1796140800000,"
    "\"uptime_seconds\":50,\"instances\":1,"
    "\"consumers\":[{\"name\":\"receipt\",\"topic\":\"R<script>\",\"group\":\"g|1\",\"state\":\"running\","
    "\"state_since_ms\":1796140000000,\"killswitch_flag\":\"ks_r\",\"killswitch\":false,\"consumed\":100,"
    "\"persisted\":40,\"errors\":1,\"writes_last_10m\":40,\"writes_per_minute\":[0,1,39],"
    "\"filters\":[{\"reason\":\"digital\",\"count\":50,\"share\":0.5,\"rule\":\"a|b\"},"
    "{\"reason\":\"status\",\"count\":10,\"share\":0.1,\"rule\":\"c\"}],\"lag\":5,"
    "\"partitions\":[{\"partition\":0,\"position\":10,\"lag\":5},{\"partition\":1,\"position\":7,\"lag\":0}],"
    "\"auto_offset_reset\":\"earliest\",\"errors_decode\":1,\"errors_enrichment\":0,\"errors_graph\":0,"
    "\"nodes_created\":9,\"relationships_created\":8}],"
    "\"config\":{\"log_only\":false,\"log_only_commit_offsets\":false,\"dry_run_deprecated\":false},"
    "\"flags\":{\"source\":\"file\",\"loaded\":true,\"source_ok\":true,\"last_read_ms\":1796140790000,"
    "\"last_error\":\"\",\"rollout_flag\":\"roll\",\"rollout\":\"on\"},"
    "\"endpoints\":{\"neo4j\":\"bolt://<redacted>@db:7687\",\"kafka\":\"k:9092\"}}";

static const char *const instance_b =
    "{\"service\":\"consumer-graph-worker\",\"version\":\"1.2.3\",\"generated_at_ms\":1796140801000,"
    "\"uptime_seconds\":20,\"instances\":1,"
    "\"consumers\":[{\"name\":\"receipt\",\"topic\":\"R<script>\",\"group\":\"g|1\",\"state\":\"waiting_for_neo4j\","
    "\"state_since_ms\":1796140500000,\"killswitch_flag\":\"ks_r\",\"killswitch\":false,\"consumed\":300,"
    "\"persisted\":100,\"errors\":0,\"writes_last_10m\":60,\"writes_per_minute\":[5,5,50],"
    "\"filters\":[{\"reason\":\"digital\",\"count\":50,\"share\":0.1666,\"rule\":\"a|b\"},"
    "{\"reason\":\"status\",\"count\":30,\"share\":0.1,\"rule\":\"c\"}],\"lag\":100,"
    "\"partitions\":[{\"partition\":2,\"position\":3,\"lag\":100},{\"partition\":1,\"position\":9,\"lag\":0}],"
    "\"auto_offset_reset\":\"earliest\",\"errors_decode\":0,\"errors_enrichment\":0,\"errors_graph\":0,"
    "\"nodes_created\":1,\"relationships_created\":2}],"
    "\"config\":{\"log_only\":false,\"log_only_commit_offsets\":false,\"dry_run_deprecated\":false},"
    "\"flags\":{\"source\":\"file\",\"loaded\":true,\"source_ok\":true,\"last_read_ms\":1796140790000,"
    "\"last_error\":\"\",\"rollout_flag\":\"roll\",\"rollout\":\"on\"},"
    "\"endpoints\":{\"neo4j\":\"bolt://<redacted>@db:7687\",\"kafka\":\"k:9092\"}}";

static json_t *load(const char *text) {
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (!j) fprintf(stderr, "bad fixture: %s\n", e.text);
    return j;
}

static json_t *receipt_of(json_t *doc) { return json_array_get(json_object_get(doc, "consumers"), 0); }

static long long num(json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

TEST(sum_adds_counts_and_recomputes_shares) {
    json_t *docs[2] = {load(instance_a), load(instance_b)};
    CHECK(docs[0] && docs[1]);
    json_t *sum = report_sum(docs, 2);
    CHECK(sum != NULL);
    json_t *r = receipt_of(sum);
    CHECK_EQ_INT(num(sum, "instances"), 2);
    CHECK_EQ_INT(num(sum, "uptime_seconds"), 20);
    CHECK_EQ_INT(num(sum, "generated_at_ms"), 1796140801000LL);
    CHECK_EQ_INT(num(r, "consumed"), 400);
    CHECK_EQ_INT(num(r, "persisted"), 140);
    CHECK_EQ_INT(num(r, "writes_last_10m"), 100);
    CHECK_EQ_INT(num(r, "nodes_created"), 10);
    json_t *per = json_object_get(r, "writes_per_minute");
    CHECK_EQ_INT(json_integer_value(json_array_get(per, 0)), 5);
    CHECK_EQ_INT(json_integer_value(json_array_get(per, 2)), 89);
    json_t *digital = json_array_get(json_object_get(r, "filters"), 0);
    CHECK_EQ_INT(num(digital, "count"), 100);
    CHECK(json_real_value(json_object_get(digital, "share")) == 0.25);
    /* the inputs are left as they were */
    CHECK_EQ_INT(num(receipt_of(docs[0]), "consumed"), 100);
    json_decref(sum);
    json_decref(docs[0]);
    json_decref(docs[1]);
}

TEST(sum_merges_partitions_and_keeps_the_least_healthy_state) {
    json_t *docs[2] = {load(instance_a), load(instance_b)};
    json_t *sum = report_sum(docs, 2);
    json_t *r = receipt_of(sum);
    json_t *parts = json_object_get(r, "partitions");
    CHECK_EQ_INT(json_array_size(parts), 3);
    /* partition 1 was reported by both (a rebalance): the further position wins */
    CHECK_EQ_INT(num(json_array_get(parts, 1), "position"), 9);
    CHECK_EQ_INT(num(r, "lag"), 105);
    CHECK_EQ_STR(json_string_value(json_object_get(r, "state")), "waiting_for_neo4j");
    CHECK_EQ_INT(num(r, "state_since_ms"), 1796140500000LL);
    json_t *states = json_object_get(r, "states");
    CHECK_EQ_INT(num(states, "running"), 1);
    CHECK_EQ_INT(num(states, "waiting_for_neo4j"), 1);
    CHECK(report_sum(docs, 0) == NULL);
    json_decref(sum);
    json_decref(docs[0]);
    json_decref(docs[1]);
}

TEST(markdown_has_the_operators_sections_and_safe_tables) {
    json_t *doc = load(instance_a);
    json_t *one = report_sum(&doc, 1);
    char *md = report_markdown(one);
    CHECK(md != NULL);
    CHECK(strncmp(md, "# Kafka Data Ingestion Status\n", 30) == 0);
    CHECK(strstr(md, "from 1 instance of consumer-graph-worker 1.2.3") != NULL);
    CHECK(strstr(md, "| receipt | `ks_r` = OFF | running since 2026-") != NULL);
    CHECK(strstr(md, " | 40 | 5 |\n") != NULL);
    CHECK(strstr(md, "| `digital` | 50.0 % | 50 | a\\|b |\n") != NULL);
    CHECK(strstr(md, "| Neo4j endpoint | bolt://<redacted>@db:7687 |") != NULL);
    CHECK(strstr(md, "| Rollout flag | `roll`: on |") != NULL);
    CHECK(strstr(md, "## Receipt consumer\n") != NULL);
    CHECK(strstr(md, "- Group: `g|1`") != NULL);
    CHECK(strstr(md, "| 0 | 10 | 5 |") != NULL);
    CHECK(strstr(md, "cgw group delete -c config.yaml --group g|1 --execute") != NULL);
    free(md);
    json_decref(one);
    json_decref(doc);
}

TEST(html_escapes_and_loads_nothing_from_elsewhere) {
    json_t *doc = load(instance_a);
    json_t *one = report_sum(&doc, 1);
    char *html = report_html(one, 15);
    CHECK(html != NULL);
    CHECK(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    CHECK(strstr(html, "<script") == NULL);
    CHECK(strstr(html, "R&lt;script&gt;") != NULL);
    CHECK(strstr(html, "bolt://&lt;redacted&gt;@db:7687") != NULL);
    CHECK(strstr(html, "<link") == NULL && strstr(html, "http://") == NULL);
    CHECK(strstr(html, "https://") == NULL);
    CHECK(strstr(html, "<meta http-equiv=\"refresh\" content=\"15\">") != NULL);
    CHECK(strstr(html, "class=\"state state-ok\" data-field=\"state\" data-state=\"running\">running</span>") != NULL);
    CHECK(strstr(html, "<th scope=\"row\">receipt</th>") != NULL);
    CHECK(strstr(html, "<td class=\"n\" data-field=\"writes_last_10m\">40</td>") != NULL);
    CHECK(strstr(html, "role=\"img\"") != NULL);
    free(html);
    char *never = report_html(one, 0);
    CHECK(strstr(never, "http-equiv") == NULL);
    free(never);
    json_decref(one);
    json_decref(doc);
}
