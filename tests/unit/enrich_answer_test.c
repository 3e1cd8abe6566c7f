/* Unit test of src/enrich/enrich_answer.c: the FIDO and Retailer answers as the worker reads
 * them (yajl's events): values, the last-key-wins rules, every error with its message, and
 * each place where yajl alone is looser than the jansson reading it replaced (the fuzz target
 * tests/fuzz/enrich_answer.c compares the two on every input). */
#define TEST_MAIN
#include "test.h"

#include "enrich/enrich_answer.h"

#include <string.h>

#define N 3
static const char *const IDS[N] = {"F1", "F2", "F3"};      /* sorted, as enrich.c passes */

struct got {
    int rc;
    char err[256];
    struct enrich_value v[N];
};

static struct got products(const char *json) {
    struct got g = {0};
    g.rc = enrich_answer_products(json, strlen(json), IDS, N, g.v, g.err, sizeof g.err);
    return g;
}

static void clear(struct got *g) {
    for (size_t i = 0; i < N; i++) enrich_value_clear(&g->v[i]);
}

/* The answer is refused and the message holds `want`. */
static void refused(const char *json, const char *want) {
    struct got g = products(json);
    CHECKF(g.rc == -1, "%s: rc %d", json, g.rc);
    CHECKF(strstr(g.err, want) != NULL, "%s: error \"%s\", want \"%s\"", json, g.err, want);
    for (size_t i = 0; i < N; i++) CHECK(!g.v[i].known && !g.v[i].name);
    clear(&g);
}

TEST(a_batch_answer_fills_the_products_asked_for) {
    struct got g = products(
        "{\"products\": [{\"fido\": \"F2\", \"name\": \"Cola 12pk\", \"brand\": \"Acme\","
        " \"categories\": [\"Beverages\", \"Soft Drinks\", \"Cola\"], \"other\": {\"x\": [1, 2.5e3]}},"
        " {\"fido\": \"F1\", \"name\": null, \"brand\": \"\", \"categories\": []},"
        " {\"fido\": \"F9\", \"name\": \"not asked\"}], \"next\": null}");
    CHECK_EQ_INT(g.rc, 0);
    CHECK(g.v[1].known);
    CHECK_EQ_STR(g.v[1].name, "Cola 12pk");
    CHECK_EQ_STR(g.v[1].extra, "Acme");
    CHECK_EQ_INT(g.v[1].categories_count, 3);
    CHECK_EQ_STR(g.v[1].categories[0], "Beverages");
    CHECK_EQ_STR(g.v[1].categories[2], "Cola");
    CHECK(g.v[0].known);                               /* known, every field absent */
    CHECK(!g.v[0].name && !g.v[0].extra && !g.v[0].categories);
    CHECK(!g.v[2].known);                              /* not in the answer: unknown */
    clear(&g);
}

TEST(strings_are_what_the_wire_says) {
    struct got g = products("{\"products\": [{\"fido\": \"F3\", \"name\": \"a\\u00e9\\uD83D\\uDE00\\n\\\"\\\\\\/\","
                            " \"categories\": [\"\", \"caf\xc3\xa9\"]}]}");
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_STR(g.v[2].name, "a\xc3\xa9\xf0\x9f\x98\x80\n\"\\/");
    CHECK_EQ_INT(g.v[2].categories_count, 2);
    CHECK_EQ_STR(g.v[2].categories[0], "");            /* kept: the path has an empty level */
    CHECK_EQ_STR(g.v[2].categories[1], "caf\xc3\xa9");
    clear(&g);
}

TEST(the_last_key_and_the_last_product_win) {
    struct got g = products("{\"products\": [{\"fido\": \"F1\", \"name\": \"one\"},"
                            " {\"fido\": \"F1\", \"name\": \"two\", \"name\": \"three\","
                            " \"categories\": 5, \"categories\": [\"c\"]}]}");
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_STR(g.v[0].name, "three");
    CHECK_EQ_INT(g.v[0].categories_count, 1);
    clear(&g);
    /* a second "products" replaces the first whole, its faults included */
    g = products("{\"products\": [{\"nofido\": 1}], \"products\": [{\"fido\": \"F2\", \"name\": \"kept\"}]}");
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_STR(g.v[1].name, "kept");
    clear(&g);
}

TEST(a_malformed_field_counts_only_for_a_product_asked_for) {
    struct got g = products("{\"products\": [{\"fido\": \"F9\", \"name\": 5, \"categories\": {}},"
                            " {\"fido\": \"F1\", \"brand\": \"b\"}]}");
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_STR(g.v[0].extra, "b");
    clear(&g);
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": 5}]}", "product F1 has a malformed field");
    refused("{\"products\": [{\"fido\": \"F2\", \"brand\": [\"b\"]}]}", "product F2 has a malformed field");
    refused("{\"products\": [{\"fido\": \"F3\", \"categories\": [\"a\", null]}]}",
            "product F3 has a malformed field");
    refused("{\"products\": [{\"fido\": \"F3\", \"categories\": \"a\"}]}", "product F3 has a malformed field");
}

TEST(the_answers_shape_is_checked) {
    refused("{\"items\": []}", "no \"products\" array");
    refused("{\"products\": {\"fido\": \"F1\"}}", "no \"products\" array");
    refused("[{\"products\": []}]", "no \"products\" array");
    refused("{\"products\": [{\"fido\": \"F1\"}, [\"fido\", \"F2\"]]}", "product #1 has no \"fido\" string");
    refused("{\"products\": [{\"fido\": 7}]}", "product #0 has no \"fido\" string");
    refused("{\"products\": [{\"name\": \"x\"}]}", "product #0 has no \"fido\" string");
}

TEST(what_yajl_alone_would_let_through_is_refused) {
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"\\ud800\"}]}", "lone surrogate");
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"\\ud800\\u0041\"}]}", "lone surrogate");
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"\\udc00\"}]}", "not valid UTF-8");
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"a\\u0000b\"}]}", "U+0000");
    refused("{\"products\": [], \"\\u0000\": 1}", "U+0000");
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"\xc0\x80\"}]}", "not valid UTF-8");
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"\xed\xa0\x80\"}]}", "not valid UTF-8");
    refused("{\"products\": [{\"fido\": \"F1\", \"name\": \"\xf4\x90\x80\x80\"}]}", "not valid UTF-8");
    refused("{\"products\": []}\v", "invalid character");
    refused("\f{\"products\": []}", "invalid character");
    refused("\"products\"", "'[' or '{' expected");
    refused("{\"products\": []} \"x", "end of file expected");
    refused("{\"products\": [], \"n\": 9223372036854775808}", "too big integer");
    refused("{\"products\": [], \"n\": 1e400}", "real number overflow");
    /* and what jansson accepted is accepted */
    struct got g = products("{\"products\": [], \"n\": -9223372036854775808, \"m\": 1e-400}\r\n\t ");
    CHECK_EQ_INT(g.rc, 0);
    clear(&g);
}

/* Found by tests/fuzz/enrich_answer (regress_nul_after_literal): jansson read {"a":null\0,...}
 * as if the NUL byte were not there; it is no JSON white space, and is refused. */
TEST(a_nul_byte_outside_strings_is_refused) {
    struct got g = {0};
    g.rc = enrich_answer_products("{\"products\": []\0}", 17, IDS, N, g.v, g.err, sizeof g.err);
    CHECK_EQ_INT(g.rc, -1);
    char err[256];
    struct enrich_value v = {0};
    CHECK_EQ_INT(enrich_answer_retailer("{\"name\":null\0}", 14, "R1", &v, err, sizeof err), -1);
    CHECKF(strstr(err, "malformed JSON") != NULL, "%s", err);
    CHECK(!v.known);
}

TEST(nesting_stops_where_janssons_did) {
    static char deep[2 * 2048 + 2];
    size_t k = 0;
    for (int i = 0; i < 2047; i++) deep[k++] = '[';
    deep[k++] = '1';                           /* a value at depth 2048: accepted ... */
    for (int i = 0; i < 2047; i++) deep[k++] = ']';
    deep[k] = '\0';
    struct got g = products(deep);
    CHECK(strstr(g.err, "depth") == NULL);     /* refused only for having no products */
    k = 0;
    for (int i = 0; i < 2048; i++) deep[k++] = '[';
    deep[k++] = '1';                           /* ... at depth 2049: refused */
    for (int i = 0; i < 2048; i++) deep[k++] = ']';
    deep[k] = '\0';
    refused(deep, "maximum parsing depth reached");
}

TEST(malformed_json_names_the_service) {
    refused("", "malformed JSON from FIDO service");
    refused("{\"products\": [1,]}", "malformed JSON from FIDO service");
}

TEST(a_retailer_answer) {
    char err[256];
    struct enrich_value v = {0};
    const char *ok = "{\"retailer_id\": \"R1\", \"name\": \"Corner\", \"store_type\": null,"
                     " \"store_type\": \"grocery\", \"tags\": [\"a\"]}";
    CHECK_EQ_INT(enrich_answer_retailer(ok, strlen(ok), "R1", &v, err, sizeof err), 0);
    CHECK(v.known);
    CHECK_EQ_STR(v.name, "Corner");
    CHECK_EQ_STR(v.extra, "grocery");
    enrich_value_clear(&v);
    const char *empty = "{\"name\": \"\"}";
    CHECK_EQ_INT(enrich_answer_retailer(empty, strlen(empty), "R1", &v, err, sizeof err), 0);
    CHECK(v.known && !v.name && !v.extra);
    const char *bad[] = {"[]", "{\"name\": 1}", "{\"store_type\": {}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ_INT(enrich_answer_retailer(bad[i], strlen(bad[i]), "R7", &v, err, sizeof err), -1);
        CHECK_EQ_STR(err, "Retailer Service answer for R7 is malformed");
        CHECK(!v.known);
    }
    CHECK_EQ_INT(enrich_answer_retailer("{", 1, "R7", &v, err, sizeof err), -1);
    CHECKF(strstr(err, "malformed JSON from Retailer Service") != NULL, "%s", err);
}
