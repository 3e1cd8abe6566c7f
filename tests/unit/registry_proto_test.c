/* Unit tests of src/registry/proto_text.c: the .proto text parser and the factoid check.
 *
 * The base text is the project's copy of the contract (proto/factoids/v1/factoid.proto, read
 * from the repository root, where scripts/run-tests runs); each variant is that text with one
 * exact substitution, so every case says precisely what changed. Garbage inputs include a
 * deterministic mutation loop over the contract text: a small in-process fuzz that must
 * never crash (the sanitizers watch) and must always explain a refusal.
 */
#define TEST_MAIN
#include "test.h"

#include "registry/proto_text.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

static char *contract;

static const char *base(void) {
    if (contract) return contract;
    FILE *f = fopen("proto/factoids/v1/factoid.proto", "rb");
    CHECKF(f, "run from the repository root (proto/factoids/v1/factoid.proto)");
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    contract = buf;
    return contract;
}

/* text with the only occurrence of from replaced by to; the caller frees. */
static char *subst(const char *text, const char *from, const char *to) {
    const char *p = strstr(text, from);
    CHECKF(p, "'%s' not in the text", from);
    CHECKF(!strstr(p + 1, from), "'%s' occurs twice", from);
    size_t a = (size_t)(p - text), b = strlen(from), c = strlen(to);
    char *out = malloc(strlen(text) - b + c + 1);
    CHECK(out);
    memcpy(out, text, a);
    memcpy(out + a, to, c);
    strcpy(out + a + c, p + b);
    return out;
}

static bool printable_line(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) return false;
    return true;
}

/* 0 accepted / -1 refused, with the reason in why (always set on refusal). */
static int judge(const char *text, char *why, size_t len) {
    why[0] = '\0';
    int rc = registry_proto_accepts(text, strlen(text), why, len);
    if (rc != 0) {
        CHECKF(why[0], "refused without a reason");
        CHECKF(printable_line(why), "reason not one printable line: %s", why);
    }
    return rc;
}

static void expect_accepted(const char *text) {
    char why[256];
    CHECKF(judge(text, why, sizeof why) == 0, "refused: %s", why);
}

/* Refused, and the reason holds every one of the NULL-terminated fragments. */
static void expect_refused(const char *text, ...) {
    char why[256];
    CHECKF(judge(text, why, sizeof why) != 0, "accepted, expected a refusal");
    va_list ap;
    va_start(ap, text);
    for (const char *frag; (frag = va_arg(ap, const char *));)
        CHECKF(strstr(why, frag), "reason '%s' lacks '%s'", why, frag);
    va_end(ap);
}

/* Applies one substitution to the contract and expects the outcome. */
#define VARIANT_OK(from, to)                                                  \
    do { char *t_ = subst(base(), from, to); expect_accepted(t_); free(t_); } while (0)
#define VARIANT_REFUSED(from, to, ...)                                        \
    do { char *t_ = subst(base(), from, to); expect_refused(t_, __VA_ARGS__, NULL); \
         free(t_); } while (0)

/* ---- the contract ----------------------------------------------------------------------- */

TEST(contract_proto_is_accepted) {
    expect_accepted(base());
}

TEST(contract_proto_parses_into_the_expected_tree) {
    char err[256];
    struct registry_proto_file *f = registry_proto_parse(base(), strlen(base()), err,
                                                         sizeof err);
    CHECKF(f, "parse failed: %s", err);
    CHECK_EQ_STR(f->syntax, "proto3");
    CHECK_EQ_STR(f->package, "factoids.v1");
    CHECK(f->imports && !f->imports->next);
    CHECK_EQ_STR(f->imports->path, "google/protobuf/timestamp.proto");
    const char *names[] = {"Factoid", "ShopOrder", "ShopOrderItem", "PlayActivity"};
    const struct registry_proto_message *m = f->messages;
    for (size_t i = 0; i < 4; i++, m = m->next) {
        CHECK(m);
        CHECK_EQ_STR(m->name, names[i]);
    }
    CHECK(!m);
    const struct registry_proto_field *x = f->messages->fields;
    int n = 0;
    for (; x; x = x->next, n++)
        if (x->number == 10) {
            CHECK_EQ_STR(x->name, "shop_order");
            CHECK_EQ_STR(x->type, "ShopOrder");
            CHECK_EQ_STR(x->oneof, "payload");
        }
    CHECK_EQ_INT(n, 7);
    CHECK(f->enums && !f->enums->next);
    CHECK_EQ_STR(f->enums->fqn, "factoids.v1.FactoidSource");
    int values = 0;
    for (const struct registry_proto_enum_value *v = f->enums->values; v; v = v->next) values++;
    CHECK_EQ_INT(values, 5);
    CHECK_EQ_STR(f->messages->next->next->fqn, "factoids.v1.ShopOrderItem");
    registry_proto_free(f);
}

/* ---- refusals, each naming the field ---------------------------------------------------- */

TEST(field_number_changed_is_refused_naming_the_field) {
    VARIANT_REFUSED("string user_id = 2;", "string user_id = 7;", "Factoid.user_id",
                    "number 7", "expected 2");
    VARIANT_REFUSED("int32 quantity = 3;", "int32 quantity = 9;", "ShopOrderItem.quantity");
    VARIANT_REFUSED("ShopOrder shop_order = 10;", "ShopOrder shop_order = 12;",
                    "Factoid.shop_order");
}

TEST(field_type_changed_is_refused) {
    VARIANT_REFUSED("int64 total_cents = 3;", "int32 total_cents = 3;",
                    "ShopOrder.total_cents has type int32, expected int64");
    VARIANT_REFUSED("string fido = 2;", "bytes fido = 2;", "ShopOrderItem.fido", "bytes");
    VARIANT_REFUSED("FactoidSource source = 3;", "int32 source = 3;", "Factoid.source");
    VARIANT_REFUSED("google.protobuf.Timestamp occurred_at = 5;", "int64 occurred_at = 5;",
                    "Factoid.occurred_at");
    VARIANT_REFUSED("ShopOrder shop_order = 10;", "PlayActivity shop_order = 10;",
                    "ShopOrder.order_id");
}

TEST(the_fakes_incompatible_schema_is_refused) {
    static const char text[] =
        "syntax = \"proto3\";\n\npackage factoids.v1;\n\nmessage Factoid {\n"
        "  int64 factoid_id = 1;\n  bytes user_id = 2;\n  repeated string source = 3;\n}\n";
    expect_refused(text, "Factoid.factoid_id has type int64, expected string", NULL);
}

TEST(cardinality_changed_is_refused) {
    VARIANT_REFUSED("repeated ShopOrderItem items = 6;", "ShopOrderItem items = 6;",
                    "ShopOrder.items is singular, expected repeated");
    VARIANT_REFUSED("string order_id = 1;", "repeated string order_id = 1;",
                    "ShopOrder.order_id is repeated");
    VARIANT_REFUSED("string currency = 4;", "map<string, string> currency = 4;",
                    "ShopOrder.currency is a map");
}

TEST(missing_field_is_refused) {
    VARIANT_REFUSED("  string title = 5;\n", "", "ShopOrderItem.title (field 5) is missing");
    VARIANT_REFUSED("string factoid_id = 1;", "string id = 1;", "Factoid.factoid_id");
}

TEST(duplicate_number_is_refused) {
    VARIANT_REFUSED("string type = 4;", "string type = 4;\n  string kind = 4;",
                    "Factoid.type", "twice");
}

TEST(factoid_not_first_is_refused) {
    VARIANT_REFUSED("message Factoid {", "message Other { string x = 1; }\n\nmessage Factoid {",
                    "first message (index [0]) is Other");
    VARIANT_REFUSED("message Factoid {", "message Factoi {", "first message");
    /* Enums do not count in the message index: one before Factoid is fine. */
    VARIANT_OK("message Factoid {", "enum Early { EARLY_UNSPECIFIED = 0; }\nmessage Factoid {");
}

TEST(package_and_imports_are_checked) {
    VARIANT_REFUSED("package factoids.v1;", "package factoids.v2;", "package", "factoids.v2");
    VARIANT_REFUSED("package factoids.v1;", "", "package");
    VARIANT_REFUSED("import \"google/protobuf/timestamp.proto\";", "",
                    "does not import google/protobuf/timestamp.proto");
    VARIANT_REFUSED("google.protobuf.Timestamp occurred_at", "google.protobuf.Duration occurred_at",
                    "Factoid.occurred_at has type google.protobuf.Duration");
    VARIANT_OK("google.protobuf.Timestamp occurred_at", ".google.protobuf.Timestamp occurred_at");
}

TEST(source_enum_must_keep_shop_equal_one) {
    VARIANT_REFUSED("FACTOID_SOURCE_SHOP = 1;", "FACTOID_SOURCE_SHOP = 5;",
                    "FACTOID_SOURCE_SHOP = 1");
    VARIANT_REFUSED("FACTOID_SOURCE_SHOP = 1;", "FACTOID_SOURCE_STORE = 1;", "Factoid.source");
    VARIANT_REFUSED("FactoidSource source = 3;", "ShopOrder source = 3;",
                    "expected an enum");
}

/* ---- compatible evolution ------------------------------------------------------------------ */

TEST(extra_fields_messages_and_values_are_fine) {
    VARIANT_OK("string type = 4;",
               "string type = 4;\n  string note = 20;\n  repeated int64 x = 21;");
    VARIANT_OK("string title = 5;", "string title = 5;\n  bool gift = 6;");
    VARIANT_OK("FACTOID_SOURCE_SOCIAL = 4;", "FACTOID_SOURCE_SOCIAL = 4;\n  FACTOID_SOURCE_X = 5;");
    VARIANT_OK("message PlayActivity {",
               "message Extra { ShopOrder o = 1; }\nmessage PlayActivity {");
    /* proto3 `optional` changes presence, not the wire format */
    VARIANT_OK("string currency = 4;", "optional string currency = 4;");
    /* leaving the oneof is wire-compatible */
    VARIANT_OK("  oneof payload {\n    ShopOrder shop_order = 10;        // source SHOP\n",
               "  ShopOrder shop_order = 10;\n  oneof payload {\n");
}

TEST(renamed_types_with_the_same_structure_are_fine) {
    char *a = subst(base(), "ShopOrder shop_order = 10;", "Order shop_order = 10;");
    char *b = subst(a, "message ShopOrder {", "message Order {");
    expect_accepted(b);
    free(a);
    free(b);
}

TEST(type_names_resolve_innermost_scope_first) {
    /* A nested ShopOrder inside Factoid shadows the top-level one. */
    VARIANT_REFUSED("  oneof payload {",
                    "  message ShopOrder { string order_id = 1; }\n  oneof payload {",
                    "ShopOrder.retailer_id (field 2) is missing");
    /* ... unless the field names the top-level type absolutely. */
    char *a = subst(base(), "  oneof payload {",
                    "  message ShopOrder { string order_id = 1; }\n  oneof payload {");
    char *b = subst(a, "ShopOrder shop_order = 10;", ".factoids.v1.ShopOrder shop_order = 10;");
    expect_accepted(b);
    free(a);
    free(b);
    VARIANT_OK("ShopOrder shop_order = 10;", "factoids.v1.ShopOrder shop_order = 10;");
    VARIANT_OK("ShopOrder shop_order = 10;", "v1.ShopOrder shop_order = 10;");
    VARIANT_REFUSED("ShopOrder shop_order = 10;", "other.ShopOrder shop_order = 10;",
                    "expected a message defined in the schema");
}

TEST(grammar_comments_nested_oneof_reserved_options) {
    static const char text[] =
        "// leading comment\n"
        "/* block { \"with\" braces } and 'quotes' */\n"
        "syntax = 'proto3';\n"
        "package factoids.v1;\n"
        "import public \"google/protobuf/timestamp.proto\";\n"
        "import weak \"other.proto\";\n"
        "option java_package = \"com.example\" \".factoids\";\n"
        "option (my.file_opt).deep = { a: 1 b: \"x\" c { d: [1, 2] } e: -inf };\n"
        "option optimize_for = SPEED;\n"
        ";\n"
        "message Factoid {\n"
        "  option (buf.confluent.v1.subject) = {\n"
        "    instance_name: \"i\", name: \"factoid-stream-value\" };\n"
        "  reserved 6 to 9, 12, 100 to max;\n"
        "  reserved \"old\", \"older\";\n"
        "  string factoid_id = 1 [deprecated = false, json_name = \"factoidId\"];\n"
        "  string user_id = 0x2;\n"
        "  FactoidSource source = 03; /* octal 3 */\n"
        "  string type = 4; // trailing\n"
        "  .google.protobuf.Timestamp occurred_at = 5;\n"
        "  message Inner { message Deeper {\n"
        "    enum E { option allow_alias = true; E0 = 0; E1 = 0; } } }\n"
        "  enum Local { LOCAL_UNSPECIFIED = 0; LOCAL_NEG = -1 [(x) = 1];\n"
        "               reserved 5 to 6; reserved \"R\"; }\n"
        "  map<string, Inner.Deeper> by_key = 13;\n"
        "  oneof payload {\n"
        "    option (o) = 1;\n"
        "    ShopOrder shop_order = 10;\n"
        "    bytes raw = 11;\n"
        "  }\n"
        "  extensions 1000 to 2000 [verification = UNVERIFIED];\n"
        "  extend Other { string ext = 1001; }\n"
        "  ;\n"
        "}\n"
        "enum FactoidSource { FACTOID_SOURCE_UNSPECIFIED = 0; FACTOID_SOURCE_SHOP = 1; }\n"
        "message ShopOrder {\n"
        "  string order_id = 1; string retailer_id = 2; int64 total_cents = 3;\n"
        "  string currency = 4; int32 fido_count = 5; repeated ShopOrderItem items = 6;\n"
        "  repeated group Legacy = 7 { optional int32 a = 1; }\n"
        "}\n"
        "message ShopOrderItem {\n"
        "  int32 line_number = 1; string fido = 2; int32 quantity = 3;\n"
        "  int64 unit_price_cents = 4; string title = 5;\n"
        "}\n"
        "service S { rpc Get(stream Factoid) returns (Factoid) {\n"
        "  option idempotency_level = NO_SIDE_EFFECTS; } }\n"
        "extend google.protobuf.FieldOptions { string x = 50000; }\n";
    expect_accepted(text);
    char err[256];
    struct registry_proto_file *f = registry_proto_parse(text, sizeof text - 1, err, sizeof err);
    CHECKF(f, "%s", err);
    const struct registry_proto_message *fm = f->messages;
    CHECK_EQ_STR(fm->messages->messages->fqn, "factoids.v1.Factoid.Inner.Deeper");
    CHECK_EQ_STR(fm->enums->fqn, "factoids.v1.Factoid.Local");
    CHECK_EQ_INT(fm->enums->values->next->number, -1);
    int fields = 0, maps = 0;
    for (const struct registry_proto_field *x = fm->fields; x; x = x->next) {
        fields++;
        maps += x->is_map;
        if (x->number == 11) CHECK_EQ_STR(x->oneof, "payload");
        if (x->number == 2) CHECK_EQ_STR(x->name, "user_id");
    }
    CHECK_EQ_INT(fields, 8);   /* extension fields are not the message's */
    CHECK_EQ_INT(maps, 1);
    const struct registry_proto_field *g = fm->next->fields;
    while (g->next) g = g->next;
    CHECK_EQ_STR(g->name, "legacy");
    CHECK_EQ_STR(g->type, "Legacy");
    CHECK_EQ_INT(g->label, REGISTRY_PROTO_LABEL_REPEATED);
    registry_proto_free(f);
}

TEST(package_after_messages_still_qualifies_them) {
    char *a = subst(base(), "package factoids.v1;", "");
    size_t n = strlen(a);
    char *b = malloc(n + 32);
    CHECK(b);
    memcpy(b, a, n);
    strcpy(b + n, "\npackage factoids.v1;\n");
    expect_accepted(b);
    free(a);
    free(b);
}

/* ---- malformed text ------------------------------------------------------------------------ */

static void expect_parse_error(const char *text, size_t len, const char *frag) {
    char err[256];
    err[0] = '\0';
    struct registry_proto_file *f = registry_proto_parse(text, len, err, sizeof err);
    if (f) registry_proto_free(f);
    CHECKF(!f, "parsed, expected an error (%s)", frag);
    CHECKF(err[0] && printable_line(err), "bad error message '%s'", err);
    CHECKF(strstr(err, frag), "error '%s' lacks '%s'", err, frag);
}
#define PARSE_ERROR(text, frag) expect_parse_error(text, sizeof text - 1, frag)

TEST(garbage_is_refused_with_a_message) {
    PARSE_ERROR("message", "identifier");
    PARSE_ERROR("message Factoid {", "'}' closing a message");
    PARSE_ERROR("message Factoid { string a = 1; ", "'}' closing a message");
    PARSE_ERROR("/* never closed", "unterminated comment");
    PARSE_ERROR("syntax = \"proto3", "unterminated string");
    PARSE_ERROR("syntax = \"pro\nto3\";", "newline in a string");
    PARSE_ERROR("syntax = proto3;", "expected a string");
    PARSE_ERROR("syntax = \"proto4\";", "unknown syntax");
    PARSE_ERROR("edition = \"next\";", "unknown edition");
    PARSE_ERROR("package a; syntax = \"proto3\";", "first statement");
    PARSE_ERROR("package a; package b;", "second package");
    PARSE_ERROR("message M { string a = 0; }", "field number");
    PARSE_ERROR("message M { string a = 536870912; }", "out of range");
    PARSE_ERROR("message M { string a = 99999999999999999999999; }", "field number");
    PARSE_ERROR("message M { string a = 1 }", "expected ';'");
    PARSE_ERROR("message M { string a = 1.5; }", "field number");
    PARSE_ERROR("message M { string a = 0x; }", "field number");
    PARSE_ERROR("message M { string a = 09; }", "field number");
    PARSE_ERROR("message M { oneof o { repeated string a = 1; } }", "no label");
    PARSE_ERROR("message M { repeated map<string,string> a = 1; }", "map field");
    PARSE_ERROR("message M { reserved 9 to 3; }", "empty");
    PARSE_ERROR("enum E { A = 2147483648; }", "out of range");
    PARSE_ERROR("enum E { A = 1 }", "expected ';'");
    PARSE_ERROR("service S { rpc A(B) returns (C);", "'}'");
    PARSE_ERROR("option (a = 1;", "')'");
    PARSE_ERROR("message M { string a = 1; } }", "top-level statement");
    PARSE_ERROR("message M { string a = 1; } @", "unexpected character 0x40");
    PARSE_ERROR("message M\xc3\xa9 {}", "unexpected character 0xc3");
    PARSE_ERROR("message M { string a\0 = 1; }", "unexpected character 0x00");
    PARSE_ERROR("garbage", "top-level statement");
}

TEST(empty_and_message_less_files_parse_but_are_refused) {
    char err[256];
    struct registry_proto_file *f = registry_proto_parse("", 0, err, sizeof err);
    CHECKF(f, "%s", err);
    registry_proto_free(f);
    expect_refused("", "package", NULL);
    expect_refused("package factoids.v1;", "no message", NULL);
    expect_refused("package factoids.v1; message Factoid {}", "Factoid.factoid_id", NULL);
}

TEST(limits_hold) {
    /* nesting */
    char deep[2048] = "";
    for (int i = 0; i < 40; i++) strcat(deep, "message M {");
    for (int i = 0; i < 40; i++) strcat(deep, "}");
    expect_parse_error(deep, strlen(deep), "nested deeper than 32");
    /* identifier length */
    char ident[600] = "message ";
    memset(ident + 8, 'a', 300);
    strcpy(ident + 308, " {}");
    expect_parse_error(ident, strlen(ident), "identifier longer");
    /* dotted name length */
    char *name = malloc(4000);
    CHECK(name);
    strcpy(name, "package ");
    for (int i = 0; i < 300; i++) strcat(name, "abcd.");
    strcat(name, "x;");
    expect_parse_error(name, strlen(name), "name longer");
    free(name);
    /* text size */
    size_t big = REGISTRY_PROTO_MAX_TEXT + 1;
    char *huge = malloc(big);
    CHECK(huge);
    memset(huge, ' ', big);
    expect_parse_error(huge, big, "limit");
    /* declarations */
    size_t cap = 40 * (REGISTRY_PROTO_MAX_DECLS + 10);
    char *many = malloc(cap);
    CHECK(many);
    size_t n = (size_t)sprintf(many, "message M {");
    for (int i = 1; i <= REGISTRY_PROTO_MAX_DECLS + 5; i++)
        n += (size_t)sprintf(many + n, "int32 f%d = %d;", i, i);
    strcpy(many + n, "}");
    expect_parse_error(many, strlen(many), "declarations");
    free(many);
    free(huge);
}

/* Deterministic mutations of the contract: byte flips, deletions, insertions of grammar
 * characters, truncations. None may crash; every refusal has a printable reason. */
TEST(mutated_contract_never_crashes) {
    const char *src = base();
    size_t len = strlen(src);
    char *buf = malloc(len + 64);
    CHECK(buf);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    static const char alphabet[] = "{}[]()<>=;,.:-+\"'/*\\\n 0x1Aa_\xff";
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(buf, src, len + 1);
        size_t n = len;
        int edits = 1 + (int)(s % 4);
        for (int e = 0; e < edits; e++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            if (n == 0) break;
            size_t at = (size_t)(s >> 33) % (n ? n : 1);
            switch ((s >> 20) % 4) {
            case 0: buf[at] = alphabet[(s >> 8) % (sizeof alphabet - 1)]; break;
            case 1: memmove(buf + at, buf + at + 1, n - at); n--; break;
            case 2:
                memmove(buf + at + 1, buf + at, n - at + 1);
                buf[at] = alphabet[(s >> 8) % (sizeof alphabet - 1)];
                n++;
                break;
            default: n = at; buf[n] = '\0'; break;
            }
            if (n + 2 >= len + 64) break;
        }
        char why[256];
        if (registry_proto_accepts(buf, n, why, sizeof why) == 0) accepted++;
        else CHECKF(why[0] && printable_line(why), "bad reason '%s'", why);
    }
    free(buf);
    CHECKF(accepted > 0, "no mutation kept the schema compatible (comments exist)");
}

TEST(small_buffers_are_respected) {
    char tiny[8];
    CHECK(registry_proto_accepts("garbage", 7, tiny, sizeof tiny) != 0);
    CHECK(strlen(tiny) < sizeof tiny);
    CHECK(registry_proto_accepts("garbage", 7, NULL, 0) != 0);
    CHECK(registry_proto_parse("garbage", 7, NULL, 0) == NULL);
    char one[1];
    CHECK(registry_proto_accepts(base(), strlen(base()), one, sizeof one) == 0);
}
