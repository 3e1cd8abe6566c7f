/* flags_test.c: Flipper semantics (buckets checked against Python's zlib), the strict parsers,
 * unsupported gates, diffs, the snapshot store under concurrency, and the file source. */
#define TEST_MAIN
#include "test.h"

#include "flags/flags_valkey_internal.h"

#include <pthread.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUCKETS_FILE "tests/unit/data/flipper_buckets.txt"

static char err[512];

static struct flags_set *parse(const char *json) {
    err[0] = '\0';
    return flags_parse_export(json, strlen(json), err, sizeof err);
}

static const char *parse_err(const char *json) {
    struct flags_set *s = parse(json);
    if (s) {
        flags_release(s);
        return "(parsed without error)";
    }
    return err;
}

/* The first actor of feature with the given bucket in the Python-made file, or NULL. */
static char found_actor[256];
static const char *actor_with_bucket(const char *feature, unsigned bucket) {
    FILE *f = fopen(BUCKETS_FILE, "r");
    char line[512], feat[256], actor[256];
    unsigned b;
    if (!f) return NULL;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "%255s %255s %u", feat, actor, &b) == 3 && b == bucket && strcmp(feat, feature) == 0) {
            fclose(f);
            snprintf(found_actor, sizeof found_actor, "%s", actor);
            return found_actor;
        }
    }
    fclose(f);
    return NULL;
}

TEST(buckets_match_python_zlib) {
    FILE *f = fopen(BUCKETS_FILE, "r");
    CHECKF(f != NULL, "cannot open %s (run from the repository root)", BUCKETS_FILE);
    char line[512], feat[256], actor[256];
    unsigned expect;
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "%255s %255s %u", feat, actor, &expect) != 3) continue;
        n++;
        if (flags_bucket(feat, "", actor) != expect) bad++;
        if (flags_bucket(feat, NULL, actor) != expect) bad++;
        /* the same bucket when the prefix is passed apart, as the hot path does */
        if (strncmp(actor, "User;", 5) == 0 && flags_bucket(feat, "User;", actor + 5) != expect) bad++;
        if (bad && bad < 3) printf("# mismatch: %s", line);
    }
    fclose(f);
    CHECK(n >= 300);
    CHECK_EQ_INT(bad, 0);
}

TEST(contract_md_vectors) {
    CHECK_EQ_INT(flags_bucket("search", "User;", "1"), 97600);
    CHECK_EQ_INT(flags_bucket("my_feature", "", "1"), 42944);
    CHECK_EQ_INT(flags_bucket("my_feature", "", "42"), 11769);
    struct flags_set *s = parse("{\"version\":1,\"features\":{"
                                "\"search\":{\"percentage_of_actors\":\"97.7\"},"
                                "\"search2\":{\"percentage_of_actors\":\"97.5\"},"
                                "\"my_feature\":{\"percentage_of_actors\":\"12.5\"}}}");
    CHECKF(s != NULL, "%s", err);
    CHECK(flags_is_enabled_for(s, "search", "User;", "1"));
    CHECK(flags_percentage_includes(97.7, 97600));
    CHECK(!flags_percentage_includes(97.5, 97600));
    CHECK(flags_is_enabled_for(s, "my_feature", "", "42"));      /* 11769 < 12500 */
    CHECK(!flags_is_enabled_for(s, "my_feature", "", "1"));      /* 42944 */
    flags_release(s);
}

static bool enabled_at(const char *pct, const char *actor) {
    char json[256];
    snprintf(json, sizeof json,
             "{\"version\":1,\"features\":{\"consumer_graph_ingestion\":{\"percentage_of_actors\":%s}}}", pct);
    struct flags_set *s = parse(json);
    if (!s) return false;
    bool on = flags_is_enabled_for(s, "consumer_graph_ingestion", "", actor);
    flags_release(s);
    return on;
}

TEST(percentage_boundaries_as_flipper) {
    const char *a2006 = strdup(actor_with_bucket("consumer_graph_ingestion", 2006));
    const char *a2007 = strdup(actor_with_bucket("consumer_graph_ingestion", 2007));
    const char *a2008 = strdup(actor_with_bucket("consumer_graph_ingestion", 2008));
    const char *a24999 = strdup(actor_with_bucket("consumer_graph_ingestion", 24999));
    const char *a25000 = strdup(actor_with_bucket("consumer_graph_ingestion", 25000));
    const char *a0 = strdup(actor_with_bucket("consumer_graph_ingestion", 0));
    const char *a99999 = strdup(actor_with_bucket("consumer_graph_ingestion", 99999));
    /* 2.007 * 1000.0 == 2007.0000000000002 in IEEE double, so Ruby lets bucket 2007 in */
    CHECK(enabled_at("\"2.007\"", a2006));
    CHECK(enabled_at("\"2.007\"", a2007));
    CHECK(!enabled_at("\"2.007\"", a2008));
    CHECK(enabled_at("2.007", a2007));          /* a JSON number: the same double */
    /* integer percentages: exact */
    CHECK(enabled_at("\"25\"", a24999));
    CHECK(!enabled_at("\"25\"", a25000));
    CHECK(enabled_at("25", a24999));
    CHECK(!enabled_at("25.0", a25000));
    /* the ends */
    CHECK(!enabled_at("\"0\"", a0));
    CHECK(enabled_at("\"0.001\"", a0));
    CHECK(enabled_at("\"100\"", a99999));
    CHECK(!enabled_at("\"99.999\"", a99999));
    CHECK(!enabled_at("null", a0));
    CHECK(!enabled_at("\"\"", a0));
    free((void *)a2006); free((void *)a2007); free((void *)a2008); free((void *)a24999);
    free((void *)a25000); free((void *)a0); free((void *)a99999);
}

TEST(parse_export_gates_and_evaluation) {
    struct flags_set *s = parse(
        "{\"version\":1,\"features\":{"
        "\"consumer_graph_receipt_killswitch\":{\"boolean\":\"true\",\"actors\":[],\"groups\":[],"
        "   \"percentage_of_actors\":null,\"percentage_of_time\":null,\"expression\":null},"
        "\"consumer_graph_factoid_killswitch\":{\"boolean\":null},"
        "\"b_json_true\":{\"boolean\":true},\"b_one\":{\"boolean\":\"1\"},\"b_int\":{\"boolean\":1},"
        "\"b_false\":{\"boolean\":\"false\"},"
        "\"consumer_graph_ingestion\":{\"boolean\":null,\"actors\":[\"User;9\",\"User;1\",\"User;9\"],"
        "   \"percentage_of_actors\":\"0\"},"
        "\"empty\":{}}}");
    CHECKF(s != NULL, "%s", err);
    CHECK_EQ_INT(flags_count(s), 8);
    CHECK(flags_is_on(s, "consumer_graph_receipt_killswitch"));
    CHECK(!flags_is_on(s, "consumer_graph_factoid_killswitch"));
    CHECK(flags_is_on(s, "b_json_true"));
    CHECK(flags_is_on(s, "b_one"));
    CHECK(flags_is_on(s, "b_int"));
    CHECK(!flags_is_on(s, "b_false"));
    CHECK(!flags_is_on(s, "no_such_flag"));
    CHECK(!flags_is_on(NULL, "b_one"));
    /* boolean on: everyone, with or without an actor */
    CHECK(flags_is_enabled_for(s, "b_one", "User;", "5"));
    CHECK(flags_is_enabled_for(s, "b_one", "User;", NULL));
    /* actors: exact ids, prefix passed apart; duplicates collapse */
    const struct flags_feature *f = flags_find(s, "consumer_graph_ingestion");
    CHECK(f != NULL);
    CHECK_EQ_INT(f->actors_count, 2);
    CHECK_EQ_STR(f->actors[0], "User;1");
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "1"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "9"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "", "User;9"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "Use", "r;9"));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "19"));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", ""));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "Org;", "1"));
    CHECK(!flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", NULL));
    CHECK(!flags_is_enabled_for(s, "nope", "User;", "1"));
    CHECK(!flags_is_enabled_for(s, "empty", "User;", "1"));
    CHECK(!flags_is_enabled_for(NULL, "empty", "User;", "1"));
    /* features come back in name order */
    for (size_t i = 1; i < flags_count(s); i++)
        CHECK(strcmp(flags_feature_at(s, i - 1)->name, flags_feature_at(s, i)->name) < 0);
    CHECK(flags_feature_at(s, 99) == NULL);
    flags_release(s);
}

TEST(percentage_100_needs_an_actor) {
    struct flags_set *s = parse("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":\"100\"}}}");
    CHECKF(s != NULL, "%s", err);
    CHECK(flags_is_enabled_for(s, "f", "User;", "anyone"));
    CHECK(!flags_is_enabled_for(s, "f", "User;", NULL));
    CHECK(!flags_is_on(s, "f"));        /* a killswitch reads the boolean gate only */
    flags_release(s);
}

TEST(strict_parse_errors) {
    CHECK(strstr(parse_err("{\"version\":1,"), "flags: invalid JSON at line 1") == err);
    CHECK_EQ_STR(parse_err("[]"), "flags: expected a JSON object at the top level, got an array");
    CHECK_EQ_STR(parse_err("{\"features\":{}}"), "flags: expected \"version\": 1 (Flipper export format v1)");
    CHECK_EQ_STR(parse_err("{\"version\":2,\"features\":{}}"), "flags: expected \"version\": 1 (Flipper export format v1)");
    CHECK_EQ_STR(parse_err("{\"version\":\"1\",\"features\":{}}"), "flags: expected \"version\": 1 (Flipper export format v1)");
    CHECK_EQ_STR(parse_err("{\"version\":1}"), "flags: expected \"features\" to be an object, got nothing");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":[]}"), "flags: expected \"features\" to be an object, got an array");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":true}}"),
                 "flags: feature \"f\": expected an object of gates, got a boolean");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"boolean\":\"yes\"}}}"),
                 "flags: feature \"f\": gate boolean: expected true or false, got \"yes\"");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"boolean\":2}}}"),
                 "flags: feature \"f\": gate boolean: expected true or false, got 2");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":\"abc\"}}}"),
                 "flags: feature \"f\": gate percentage_of_actors: expected a number between 0 and 100, got \"abc\"");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":\"12abc\"}}}"),
                 "flags: feature \"f\": gate percentage_of_actors: expected a number between 0 and 100, got \"12abc\"");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":101}}}"),
                 "flags: feature \"f\": gate percentage_of_actors: expected a number between 0 and 100, got 101");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":\"-1\"}}}"),
                 "flags: feature \"f\": gate percentage_of_actors: expected a number between 0 and 100, got \"-1\"");
    CHECK(strstr(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":\"nan\"}}}"), "expected a number") != NULL);
    CHECK(strstr(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_actors\":\"1e1\"}}}"), "expected a number") != NULL);
    CHECK(strstr(parse_err("{\"version\":1,\"features\":{\"f\":{\"percentage_of_time\":[]}}}"),
                 "gate percentage_of_time: expected a number") != NULL);
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"actors\":\"User;1\"}}}"),
                 "flags: feature \"f\": gate actors: expected an array of strings, got a string");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"actors\":[\"User;1\",7]}}}"),
                 "flags: feature \"f\": gate actors: element 1: expected a string, got a number");
    CHECK_EQ_STR(parse_err("{\"version\":1,\"features\":{\"f\":{\"groups\":{}}}}"),
                 "flags: feature \"f\": gate groups: expected an array of strings, got an object");
    CHECK(strstr(parse_err("{\"version\":1,\"features\":{\"f\":{},\"f\":{}}}"), "duplicate") != NULL);
    CHECK(strstr(parse_err(""), "flags: invalid JSON") == err);
}

TEST(unsupported_gates_are_reported) {
    struct flags_set *s = parse(
        "{\"version\":1,\"features\":{"
        "\"g\":{\"groups\":[\"admins\"],\"actors\":[\"User;1\"]},"
        "\"e\":{\"expression\":{\"Equal\":[{\"Property\":[\"plan\"]},\"basic\"]}},"
        "\"t\":{\"percentage_of_time\":\"10\"},"
        "\"u\":{\"future_gate\":\"x\"},"
        "\"ok\":{\"groups\":[],\"expression\":{},\"percentage_of_time\":\"0\",\"future_gate\":null}}}");
    CHECKF(s != NULL, "%s", err);
    char names[128];
    CHECK_EQ_INT(flags_find(s, "g")->unsupported, FLAGS_GATE_GROUPS);
    CHECK_EQ_INT(flags_find(s, "e")->unsupported, FLAGS_GATE_EXPRESSION);
    CHECK_EQ_INT(flags_find(s, "t")->unsupported, FLAGS_GATE_PERCENTAGE_OF_TIME);
    CHECK_EQ_INT(flags_find(s, "u")->unsupported, FLAGS_GATE_UNKNOWN);
    CHECK_EQ_INT(flags_find(s, "ok")->unsupported, 0);
    /* unsupported gates are closed; the others still work */
    CHECK(flags_is_enabled_for(s, "g", "User;", "1"));
    CHECK(!flags_is_enabled_for(s, "g", "User;", "2"));
    CHECK(!flags_is_enabled_for(s, "e", "User;", "1"));
    flags_gate_names(FLAGS_GATE_GROUPS | FLAGS_GATE_EXPRESSION | FLAGS_GATE_PERCENTAGE_OF_TIME, names, sizeof names);
    CHECK_EQ_STR(names, "groups, expression, percentage_of_time");
    flags_gate_names(0, names, sizeof names);
    CHECK_EQ_STR(names, "");
    CHECK_EQ_INT(flags_gate_names(FLAGS_GATE_UNKNOWN, names, 4), strlen("unknown gate"));
    CHECK_EQ_STR(names, "unk");
    flags_release(s);
}

TEST(parse_api_features) {
    const char *json =
        "{\"features\":[{\"key\":\"search\",\"state\":\"conditional\",\"gates\":["
        "{\"key\":\"boolean\",\"name\":\"boolean\",\"value\":null},"
        "{\"key\":\"expression\",\"name\":\"expression\",\"value\":null},"
        "{\"key\":\"actors\",\"name\":\"actor\",\"value\":[\"User;7\"]},"
        "{\"key\":\"percentage_of_actors\",\"name\":\"percentage_of_actors\",\"value\":\"97.7\"},"
        "{\"key\":\"percentage_of_time\",\"name\":\"percentage_of_time\",\"value\":0},"
        "{\"key\":\"groups\",\"name\":\"group\",\"value\":[]}]},"
        "{\"key\":\"kill\",\"gates\":[{\"key\":\"boolean\",\"value\":true}]},"
        "{\"key\":\"bare\"}]}";
    struct flags_set *s = flags_parse_api(json, strlen(json), err, sizeof err);
    CHECKF(s != NULL, "%s", err);
    CHECK_EQ_INT(flags_count(s), 3);
    CHECK(flags_is_on(s, "kill"));
    CHECK(flags_is_enabled_for(s, "search", "User;", "1"));
    CHECK(flags_is_enabled_for(s, "search", "User;", "7"));
    CHECK_EQ_INT(flags_find(s, "search")->unsupported, 0);
    flags_release(s);
    const char *dup = "{\"features\":[{\"key\":\"a\"},{\"key\":\"a\"}]}";
    CHECK(flags_parse_api(dup, strlen(dup), err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "flags: feature \"a\" listed twice");
    const char *bad = "{\"features\":{}}";
    CHECK(flags_parse_api(bad, strlen(bad), err, sizeof err) == NULL);
    CHECK_EQ_STR(err, "flags: expected {\"features\": [...]} from GET /features");
}

TEST(builder_with_redis_adapter_fields) {
    struct flags_builder *b = flags_new_builder();
    CHECK_EQ_INT(flags_add_feature(b, "dormant", err, sizeof err), 0);
    CHECK_EQ_INT(flags_set_gate(b, "consumer_graph_ingestion", "percentage_of_actors", "12.5", err, sizeof err), 0);
    CHECK_EQ_INT(flags_set_gate(b, "consumer_graph_ingestion", "actors/User;7", "1", err, sizeof err), 0);
    CHECK_EQ_INT(flags_set_gate(b, "consumer_graph_ingestion", "actors/User;a/b", "1", err, sizeof err), 0);
    CHECK_EQ_INT(flags_set_gate(b, "consumer_graph_ingestion", "groups/admins", "1", err, sizeof err), 0);
    CHECK_EQ_INT(flags_set_gate(b, "consumer_graph_receipt_killswitch", "boolean", "true", err, sizeof err), 0);
    CHECK_EQ_INT(flags_set_gate(b, "x", "percentage_of_actors", "lots", err, sizeof err), -1);
    CHECK_EQ_STR(err, "flags: feature \"x\": gate percentage_of_actors: expected a number between 0 and 100, got \"lots\"");
    CHECK_EQ_INT(flags_set_gate(b, "x", "boolean", "maybe", err, sizeof err), -1);
    struct flags_set *s = flags_finish_builder(b);
    CHECK(s != NULL);
    CHECK_EQ_INT(flags_count(s), 4);    /* dormant, ingestion, killswitch, x */
    CHECK(flags_is_on(s, "consumer_graph_receipt_killswitch"));
    CHECK(!flags_is_on(s, "dormant"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "7"));
    CHECK(flags_is_enabled_for(s, "consumer_graph_ingestion", "User;", "a/b"));
    CHECK(flags_is_enabled_for(s, "my_feature", "", "42") == false);   /* absent feature */
    CHECK_EQ_INT(flags_find(s, "consumer_graph_ingestion")->unsupported, FLAGS_GATE_GROUPS);
    flags_release(s);
    flags_free_builder(flags_new_builder());
}

struct change_log { int n; char lines[8][300]; };

static void collect(void *ud, const char *name, const char *old_value, const char *new_value) {
    struct change_log *c = ud;
    if (c->n < 8) snprintf(c->lines[c->n], sizeof c->lines[0], "%s: %s -> %s", name, old_value, new_value);
    c->n++;
}

TEST(diff_lists_changed_flags_with_values) {
    struct flags_set *a = parse("{\"version\":1,\"features\":{"
                                "\"consumer_graph_receipt_killswitch\":{\"boolean\":null},"
                                "\"consumer_graph_ingestion\":{\"percentage_of_actors\":\"25\"},"
                                "\"gone\":{\"boolean\":\"true\"},"
                                "\"same\":{\"actors\":[\"User;1\"]}}}");
    struct flags_set *b = parse("{\"version\":1,\"features\":{"
                                "\"consumer_graph_receipt_killswitch\":{\"boolean\":\"true\"},"
                                "\"consumer_graph_ingestion\":{\"percentage_of_actors\":\"12.5\","
                                "   \"actors\":[\"User;1\",\"User;2\",\"User;3\",\"User;4\",\"User;5\",\"User;6\",\"User;7\"]},"
                                "\"new\":{},"
                                "\"same\":{\"actors\":[\"User;1\"]}}}");
    CHECK(a && b);
    struct change_log c = { 0 };
    CHECK_EQ_INT(flags_diff(a, b, collect, &c), 4);
    CHECK_EQ_INT(c.n, 4);
    CHECK_EQ_STR(c.lines[0], "consumer_graph_ingestion: percentage_of_actors=25 -> "
                             "actors=[User;1,User;2,User;3,User;4,User;5,+2 more] percentage_of_actors=12.5");
    CHECK_EQ_STR(c.lines[1], "consumer_graph_receipt_killswitch: off -> on");
    CHECK_EQ_STR(c.lines[2], "gone: on -> absent");
    CHECK_EQ_STR(c.lines[3], "new: absent -> off");
    CHECK_EQ_INT(flags_diff(b, b, collect, &c), 0);
    struct change_log first = { 0 };
    CHECK_EQ_INT(flags_diff(NULL, a, collect, &first), 4);
    CHECK_EQ_INT(flags_diff(a, NULL, NULL, NULL), 4);
    CHECK_EQ_INT(flags_diff(NULL, NULL, NULL, NULL), 0);
    char d[16];
    CHECK_EQ_INT(flags_describe(flags_find(b, "consumer_graph_ingestion"), d, sizeof d),
                 strlen("actors=[User;1,User;2,User;3,User;4,User;5,+2 more] percentage_of_actors=12.5"));
    CHECK_EQ_INT(strlen(d), sizeof d - 1);
    flags_release(a);
    flags_release(b);
}

/* ---- store ---- */

TEST(store_publish_and_read) {
    struct flags_store st;
    struct flags_reader r = { 0 };
    flags_init_store(&st);
    CHECK(flags_read(&st, &r) == NULL);          /* nothing read yet: no consumer may run */
    struct flags_set *a = parse("{\"version\":1,\"features\":{\"k\":{\"boolean\":\"true\"}}}");
    flags_publish(&st, a);
    const struct flags_set *seen = flags_read(&st, &r);
    CHECK(seen == a);
    CHECK(flags_is_on(seen, "k"));
    struct flags_set *b = parse("{\"version\":1,\"features\":{\"k\":{\"boolean\":null}}}");
    flags_publish(&st, b);
    /* the reader's old snapshot stays valid until it reads again */
    CHECK(flags_is_on(seen, "k"));
    const struct flags_set *cur = flags_acquire_current(&st);
    CHECK(cur == b);
    flags_release(cur);
    CHECK(flags_read(&st, &r) == b);
    CHECK(!flags_is_on(flags_read(&st, &r), "k"));
    flags_release_reader(&r);
    flags_destroy_store(&st);
}

#define READERS 4
static struct flags_store stress_store;
static atomic_int stress_stop;

static void *stress_reader(void *arg) {
    struct flags_reader r = { 0 };
    long bad = 0;
    (void)arg;
    while (!atomic_load(&stress_stop)) {
        const struct flags_set *s = flags_read(&stress_store, &r);
        if (!s) continue;
        /* touch the whole snapshot: a freed one would trip ASan here */
        const struct flags_feature *f = flags_find(s, "f");
        if (!f || f->actors_count != 1 || strncmp(f->actors[0], "User;", 5) != 0) bad++;
        (void)flags_is_enabled_for(s, "f", "User;", "1");
    }
    flags_release_reader(&r);
    return (void *)bad;
}

TEST(store_survives_concurrent_publish) {
    pthread_t t[READERS];
    flags_init_store(&stress_store);
    atomic_store(&stress_stop, 0);
    for (int i = 0; i < READERS; i++) pthread_create(&t[i], NULL, stress_reader, NULL);
    for (int i = 0; i < 2000; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"version\":1,\"features\":{\"f\":{\"actors\":[\"User;%d\"]}}}", i % 3);
        struct flags_set *s = parse(json);
        CHECK(s != NULL);
        flags_publish(&stress_store, s);
    }
    atomic_store(&stress_stop, 1);
    long bad = 0;
    for (int i = 0; i < READERS; i++) {
        void *rv;
        pthread_join(t[i], &rv);
        bad += (long)rv;
    }
    flags_destroy_store(&stress_store);
    CHECK_EQ_INT(bad, 0);
}

/* ---- file source ---- */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

TEST(file_source_rereads_only_on_change) {
    char dir[] = "/tmp/cgw-flags-XXXXXX", path[128], tmp[128];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/flags.json", dir);
    snprintf(tmp, sizeof tmp, "%s/flags.json.tmp", dir);
    struct flags_file ff;
    struct flags_set *s = NULL;
    CHECK_EQ_INT(flags_open_file(&ff, path, err, sizeof err), 0);

    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), -1);
    CHECK(strstr(err, "flags: cannot stat ") == err);

    write_file(path, "{\"version\":1,\"features\":{\"k\":{\"boolean\":\"true\"}}}");
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), 1);
    CHECK(flags_is_on(s, "k"));
    flags_release(s);
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), 0);
    CHECK(s == NULL);

    /* same size, new content, rewritten in place: mtime/ctime tell */
    struct timespec later[2] = { { 0, UTIME_OMIT }, { time(NULL) + 5, 0 } };
    write_file(path, "{\"version\":1,\"features\":{\"k\":{\"boolean\":\"fals\"}}}");
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), -1);       /* "fals" is no boolean */
    CHECK(strstr(err, "gate boolean") != NULL);
    CHECK(strstr(err, path) != NULL);
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), -1);       /* still broken: still an error */
    write_file(path, "{\"version\":1,\"features\":{\"k\":{\"boolean\":\"0000\"}}}");
    utimensat(AT_FDCWD, path, later, 0);
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), -1);
    write_file(path, "{\"version\":1,\"features\":{\"k\":{\"boolean\":\"true\"}},\"x\":0}");
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), 1);
    flags_release(s);

    /* atomic replace by rename: a new inode */
    write_file(tmp, "{\"version\":1,\"features\":{\"k\":{\"boolean\":\"false\"}}}");
    CHECK_EQ_INT(rename(tmp, path), 0);
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), 1);
    CHECK(!flags_is_on(s, "k"));
    flags_release(s);
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), 0);

    flags_close_file(&ff);
    unlink(path);
    rmdir(dir);
}

TEST(file_source_refuses_directory) {
    struct flags_file ff;
    struct flags_set *s = NULL;
    CHECK_EQ_INT(flags_open_file(&ff, "/tmp", err, sizeof err), 0);
    CHECK_EQ_INT(flags_poll_file(&ff, &s, err, sizeof err), -1);
    CHECK(strstr(err, "not a regular file") != NULL);
    flags_close_file(&ff);
}

/* ---- the Valkey source's reply handling, without a server (flags_valkey_take_replies) ---- */

/* The replies in RESP, read by hiredis as the connection would; NULL-terminated. */
static size_t resp_replies(const char *resp, redisReply **out, size_t max) {
    redisReader *r = redisReaderCreate();
    void *reply = NULL;
    size_t n = 0;
    redisReaderFeed(r, resp, strlen(resp));
    while (n < max && redisReaderGetReply(r, &reply) == REDIS_OK && reply) {
        out[n++] = reply;
        reply = NULL;
    }
    redisReaderFree(r);
    return n;
}

static struct flags_valkey *open_offline(void) {
    struct flags_valkey_options o;
    flags_valkey_options_init(&o);
    o.valkey.host = "127.0.0.1";
    return flags_open_valkey(&o, err, sizeof err);   /* does not connect */
}

/* Found by tests/fuzz/flags_valkey (regress_duplicate_member): a member twice with two hashes
 * made the digest depend on the reply's order; no set holds a member twice, so it is refused. */
TEST(valkey_replies_member_twice_is_refused) {
    redisReply *r[3];
    struct flags_set *s = NULL;
    CHECK_EQ_INT(resp_replies("*2\r\n$1\r\nf\r\n$1\r\nf\r\n*2\r\n$7\r\nboolean\r\n$4\r\ntrue\r\n*0\r\n", r, 3), 3);
    struct flags_valkey *v = open_offline();
    CHECK(v != NULL);
    CHECK_EQ_INT(flags_valkey_take_replies(v, r[0], r + 1, &s, err, sizeof err), -1);
    CHECK(s == NULL);
    CHECK(strstr(err, "flipper_features holds the member f twice") != NULL);
    flags_close_valkey(v);
    for (int i = 0; i < 3; i++) freeReplyObject(r[i]);
}

/* The same replies in another order are "unchanged". */
TEST(valkey_replies_order_does_not_matter) {
    redisReply *a[3], *b[3];
    struct flags_set *s = NULL;
    CHECK_EQ_INT(resp_replies("*2\r\n$1\r\nf\r\n$1\r\ng\r\n*2\r\n$7\r\nboolean\r\n$4\r\ntrue\r\n*0\r\n", a, 3), 3);
    CHECK_EQ_INT(resp_replies("*2\r\n$1\r\ng\r\n$1\r\nf\r\n*0\r\n*2\r\n$7\r\nboolean\r\n$4\r\ntrue\r\n", b, 3), 3);
    struct flags_valkey *v = open_offline();
    CHECK_EQ_INT(flags_valkey_take_replies(v, a[0], a + 1, &s, err, sizeof err), 1);
    CHECK(flags_is_on(s, "f") && !flags_is_on(s, "g"));
    flags_release(s);
    CHECK_EQ_INT(flags_valkey_take_replies(v, b[0], b + 1, &s, err, sizeof err), 0);
    CHECK(s == NULL);
    flags_close_valkey(v);
    for (int i = 0; i < 3; i++) { freeReplyObject(a[i]); freeReplyObject(b[i]); }
}
