/* tests/fuzz/enrich_answer.c: libFuzzer target over the readers of the FIDO and Retailer
 * answers (src/enrich/enrich_answer.c, yajl's event parser), with jansson as the oracle.
 *
 * Every input is read by enrich_answer_products (asking for a fixed set of fidos) and
 * enrich_answer_retailer, and by the jansson reading the worker used before (kept here
 * verbatim as the reference: json_loadb with no flags, then the same field rules). Both must
 * give the same verdict and, when they accept, the same values, byte for byte; nothing may
 * crash, leak or hit undefined behaviour. One difference is allowed, on the side of the JSON
 * specification: jansson skips a NUL byte that directly follows a number or a literal
 * ({"a":1\0} reads as {"a":1}; found by this target), the worker refuses every NUL byte
 * outside a string. So an input holding a NUL byte may be refused by the worker alone.
 *
 *   make fuzz-enrich_answer
 *   scripts/fuzz --minutes N enrich_answer
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enrich/enrich_answer.h"
#include "enrich/enrich_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ------------------------------------------------------------------ the jansson reading */

static int opt_string(json_t *obj, const char *key, char **out) {
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return -1;
    if (json_string_length(v) == 0) return 0;
    return (*out = strdup(json_string_value(v))) ? 0 : -1;
}

static int parse_categories(json_t *obj, struct enrich_value *v) {
    json_t *a = json_object_get(obj, "categories");
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a)) return -1;
    size_t n = json_array_size(a);
    if (n == 0) return 0;
    if (!(v->categories = calloc(n, sizeof *v->categories))) return -1;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s) || !(v->categories[i] = strdup(json_string_value(s)))) return -1;
        v->categories_count = i + 1;
    }
    return 0;
}

static int cmp_id(const void *key, const void *elem) {
    return strcmp(key, *(const char *const *)elem);
}

static int ref_products(const char *body, size_t len, const char *const *ids, size_t n,
                        struct enrich_value *vals) {
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *list = root ? json_object_get(root, "products") : NULL;
    int rc = -1;
    if (root && json_is_array(list)) {
        size_t i;
        json_t *p;
        rc = 0;
        json_array_foreach(list, i, p) {
            const char *fido = json_string_value(json_object_get(p, "fido"));
            if (!json_is_object(p) || !fido) {
                rc = -1;
                break;
            }
            const char *const *hit = bsearch(fido, ids, n, sizeof *ids, cmp_id);
            if (!hit) continue;
            struct enrich_value *v = &vals[hit - ids];
            enrich_value_clear(v);
            v->known = true;
            if (opt_string(p, "name", &v->name) || opt_string(p, "brand", &v->extra) ||
                parse_categories(p, v)) {
                rc = -1;
                break;
            }
        }
    }
    json_decref(root);
    if (rc != 0)
        for (size_t i = 0; i < n; i++) enrich_value_clear(&vals[i]);
    return rc;
}

static int ref_retailer(const char *body, size_t len, struct enrich_value *v) {
    json_t *root = json_loadb(body, len, 0, NULL);
    int rc = -1;
    if (root && json_is_object(root) && !opt_string(root, "name", &v->name) &&
        !opt_string(root, "store_type", &v->extra)) {
        v->known = true;
        rc = 0;
    }
    json_decref(root);
    if (rc != 0) enrich_value_clear(v);
    return rc;
}

/* ------------------------------------------------------------------ comparison */

static bool same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_value(const struct enrich_value *a, const struct enrich_value *b) {
    if (a->known != b->known || !same_str(a->name, b->name) || !same_str(a->extra, b->extra) ||
        a->categories_count != b->categories_count)
        return false;
    for (size_t i = 0; i < a->categories_count; i++)
        if (!same_str(a->categories[i], b->categories[i])) return false;
    return true;
}

#define NIDS 6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* sorted by strcmp, as enrich.c passes them; "" and a non-ASCII one included */
    static const char *const ids[NIDS] = {"", "F000001", "F000002", "a", "x\xc3\xa9", "zz"};
    const char *body = (const char *)data;
    char err[256];
    struct enrich_value got[NIDS] = {0}, want[NIDS] = {0}, gr = {0}, wr = {0};
    int g = enrich_answer_products(body, size, ids, NIDS, got, err, sizeof err);
    int w = ref_products(body, size, ids, NIDS, want);
    if (g == -2) __builtin_trap();      /* no allocation fails here */
    bool nul = memchr(data, 0, size) != NULL;
    if ((g == 0) != (w == 0) && !(nul && g != 0)) {
        fprintf(stderr, "products: yajl %d (%s), jansson %d\n", g, g ? err : "", w);
        __builtin_trap();
    }
    for (size_t i = 0; i < NIDS; i++) {
        if (g == 0 && !same_value(&got[i], &want[i])) {
            fprintf(stderr, "products: %s differs\n", ids[i]);
            __builtin_trap();
        }
        enrich_value_clear(&got[i]);
        enrich_value_clear(&want[i]);
    }
    g = enrich_answer_retailer(body, size, "R1", &gr, err, sizeof err);
    w = ref_retailer(body, size, &wr);
    if (((g == 0) != (w == 0) && !(nul && g != 0)) || (g == 0 && !same_value(&gr, &wr))) {
        fprintf(stderr, "retailer: yajl %d (%s), jansson %d\n", g, g ? err : "", w);
        __builtin_trap();
    }
    enrich_value_clear(&gr);
    enrich_value_clear(&wr);
    return 0;
}
