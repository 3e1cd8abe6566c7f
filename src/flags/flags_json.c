/* src/flags/flags_json.c: the two JSON formats a snapshot is read from: Flipper's export file
 * ({"version":1,"features":{...}}) and flipper-api's GET /features answer.
 *
 * Why apart from flags.c: the formats are Flipper's wire concern; snapshots, evaluation and
 * sharing do not depend on them. How: jansson parses (duplicate keys refused, so "which value
 * wins" is never a parser detail), and every gate goes through apply_json_gate into the
 * builder of flags.c, so both formats accept exactly the same gate values.
 */
#include "flags/flags_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A short rendering of a JSON value for error messages. */
static void json_show(const json_t *v, char *buf, size_t len) {
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    snprintf(buf, len, "%.60s%s", s ? s : "?", s && strlen(s) > 60 ? "..." : "");
    free(s);
}

static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* Applies one gate given as a JSON value (both parsers). gate is the adapter key. */
static int apply_json_gate(struct flags_builder *b, struct flags_feature *f, const char *gate,
                           const json_t *v, char *err, size_t errlen) {
    char shown[80];
    if (strcmp(gate, "boolean") == 0) {
        if (json_is_null(v) || json_is_false(v)) { f->boolean = false; return 0; }
        if (json_is_true(v)) { f->boolean = true; return 0; }
        if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
            f->boolean = json_integer_value(v) == 1;
            return 0;
        }
        if (json_is_string(v) && flags_parse_bool_text(json_string_value(v), &f->boolean) == 0) return 0;
        json_show(v, shown, sizeof shown);
        base_errf(err, errlen, "flags: feature \"%s\": gate boolean: expected true or false, got %s", f->name, shown);
        return -1;
    }
    if (strcmp(gate, "percentage_of_actors") == 0 || strcmp(gate, "percentage_of_time") == 0) {
        bool actors = gate[14] == 'a';
        double *dst = actors ? &f->percentage_of_actors : &f->percentage_of_time;
        int rc = -1;
        if (json_is_null(v)) { *dst = 0; rc = 0; }
        else if (json_is_number(v)) {
            double d = json_number_value(v);
            if (d >= 0 && d <= 100) { *dst = d; rc = 0; }
        } else if (json_is_string(v)) {
            rc = flags_parse_percentage_text(json_string_value(v), dst);
        }
        if (rc < 0) {
            json_show(v, shown, sizeof shown);
            base_errf(err, errlen, "flags: feature \"%s\": gate %s: expected a number between 0 and 100, got %s",
                    f->name, gate, shown);
            return -1;
        }
        if (!actors && *dst > 0) f->unsupported |= FLAGS_GATE_PERCENTAGE_OF_TIME;
        return 0;
    }
    if (strcmp(gate, "actors") == 0 || strcmp(gate, "groups") == 0) {
        bool actors = gate[0] == 'a';
        if (json_is_null(v)) return 0;
        if (!json_is_array(v)) {
            base_errf(err, errlen, "flags: feature \"%s\": gate %s: expected an array of strings, got %s",
                    f->name, gate, json_kind(v));
            return -1;
        }
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item)) {
                base_errf(err, errlen, "flags: feature \"%s\": gate %s: element %zu: expected a string, got %s",
                        f->name, gate, i, json_kind(item));
                return -1;
            }
            if ((actors ? flags_builder_add_actor(b, f, json_string_value(item)) : flags_builder_add_group(b, f, json_string_value(item))) < 0) {
                base_errf(err, errlen, "flags: out of memory");
                return -1;
            }
        }
        if (!actors && json_array_size(v) > 0) f->unsupported |= FLAGS_GATE_GROUPS;
        return 0;
    }
    if (strcmp(gate, "expression") == 0) {
        if (!json_is_null(v) && !(json_is_object(v) && json_object_size(v) == 0)) {
            f->has_expression = true;
            f->unsupported |= FLAGS_GATE_EXPRESSION;
        }
        return 0;
    }
    /* A gate from a newer Flipper: it may open the feature for someone, which this reader
     * cannot know, so it is reported rather than ignored or fatal. */
    if (!json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0)) f->unsupported |= FLAGS_GATE_UNKNOWN;
    return 0;
}

static json_t *load_json(const char *json, size_t len, char *err, size_t errlen) {
    json_error_t jerr;
    /* duplicate keys would make "which value wins" a parser detail: refuse them */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) base_errf(err, errlen, "flags: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    return root;
}

/* Fills b from an export document: {"version":1,"features":{"<name>":{<gate>:<value>}}}. */
static int fill_export(struct flags_builder *b, const json_t *root, char *err, size_t errlen) {
    if (!json_is_object(root))
        return base_errf(err, errlen, "flags: expected a JSON object at the top level, got %s", json_kind(root));
    json_t *version = json_object_get(root, "version"), *features = json_object_get(root, "features");
    if (!json_is_integer(version) || json_integer_value(version) != 1)
        return base_errf(err, errlen, "flags: expected \"version\": 1 (Flipper export format v1)");
    if (!json_is_object(features))
        return base_errf(err, errlen, "flags: expected \"features\" to be an object, got %s",
                         features ? json_kind(features) : "nothing");
    const char *name;
    json_t *gates;
    json_object_foreach(features, name, gates) {
        bool created;
        if (!json_is_object(gates))
            return base_errf(err, errlen, "flags: feature \"%s\": expected an object of gates, got %s", name,
                             json_kind(gates));
        struct flags_feature *f = flags_builder_feature(b, name, &created);
        if (!f) return base_errf(err, errlen, "flags: out of memory");
        const char *gate;
        json_t *v;
        json_object_foreach(gates, gate, v) {
            if (apply_json_gate(b, f, gate, v, err, errlen) < 0) return -1;
        }
    }
    return 0;
}

/* Fills one feature of a GET /features answer from its "gates" array (absent: no gates). */
static int fill_api_gates(struct flags_builder *b, struct flags_feature *f, const json_t *gates,
                          char *err, size_t errlen) {
    if (gates == NULL) return 0;          /* exclude_gates=true */
    if (!json_is_array(gates))
        return base_errf(err, errlen, "flags: feature \"%s\": expected \"gates\" to be an array", f->name);
    size_t j;
    json_t *g;
    json_array_foreach(gates, j, g) {
        json_t *gk = json_object_get(g, "key");
        if (!json_is_string(gk))
            return base_errf(err, errlen, "flags: feature \"%s\": gates[%zu]: expected a string \"key\"", f->name, j);
        json_t *gv = json_object_get(g, "value");
        if (!gv) gv = json_null();
        if (apply_json_gate(b, f, json_string_value(gk), gv, err, errlen) < 0) return -1;
    }
    return 0;
}

/* Fills b from a GET /features answer: {"features":[{"key":"f","gates":[...]},...]}. */
static int fill_api(struct flags_builder *b, const json_t *root, char *err, size_t errlen) {
    json_t *features = json_is_object(root) ? json_object_get(root, "features") : NULL;
    if (!json_is_array(features))
        return base_errf(err, errlen, "flags: expected {\"features\": [...]} from GET /features");
    size_t i;
    json_t *feat;
    json_array_foreach(features, i, feat) {
        json_t *key = json_object_get(feat, "key");
        bool created;
        if (!json_is_string(key))
            return base_errf(err, errlen, "flags: features[%zu]: expected a string \"key\"", i);
        struct flags_feature *f = flags_builder_feature(b, json_string_value(key), &created);
        if (!f) return base_errf(err, errlen, "flags: out of memory");
        if (!created) return base_errf(err, errlen, "flags: feature \"%s\" listed twice", f->name);
        if (fill_api_gates(b, f, json_object_get(feat, "gates"), err, errlen) < 0) return -1;
    }
    return 0;
}

/* Both formats: parse, fill a builder, and finish it into a snapshot (NULL on any error). */
static struct flags_set *parse_with(int (*fill)(struct flags_builder *, const json_t *, char *, size_t),
                                    const char *json, size_t len, char *err, size_t errlen) {
    json_t *root = load_json(json, len, err, errlen);
    if (!root) return NULL;
    struct flags_builder *b = flags_new_builder();
    int rc = b ? fill(b, root, err, errlen) : base_errf(err, errlen, "flags: out of memory");
    json_decref(root);
    if (rc == 0) return flags_finish_builder(b);
    flags_free_builder(b);
    return NULL;
}

struct flags_set *flags_parse_export(const char *json, size_t len, char *err, size_t errlen) {
    return parse_with(fill_export, json, len, err, errlen);
}

struct flags_set *flags_parse_api(const char *json, size_t len, char *err, size_t errlen) {
    return parse_with(fill_api, json, len, err, errlen);
}
