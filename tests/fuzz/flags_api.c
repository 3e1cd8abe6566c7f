/* tests/fuzz/flags_api.c: libFuzzer target for the Flipper HTTP API body (flipper-api's and
 * Flipper Cloud's GET /features), parsed by flags_parse_api (src/flags/flags.c).
 *
 * tests/fuzz/flags_file covers both JSON formats with seeds that are mostly the export
 * format; this target starts from /features answers (gates as arrays of {key, value}, values
 * as strings, numbers, booleans, arrays or null) and checks more of what a snapshot promises:
 * an error says why; every feature is found by name; percentages are within 0..100; actors and
 * groups are sorted and distinct; and the same gates given to the builder the Valkey source
 * uses (field names and text values, as Flipper's Redis adapter stores them) give the same
 * feature: the two paths that build snapshots agree.
 *
 *   make fuzz-flags_api
 *   build/fuzz/flags_api -dict=tests/fuzz/flags_api.dict <scratch dir> tests/fuzz/flags_api/
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags/flags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sorted(char *const *v, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i - 1], v[i]) >= 0) __builtin_trap();
}

static void check_feature(const struct flags_set *s, const struct flags_feature *f) {
    if (flags_find(s, f->name) != f) __builtin_trap();
    if (!(f->percentage_of_actors >= 0 && f->percentage_of_actors <= 100)) __builtin_trap();
    if (!(f->percentage_of_time >= 0 && f->percentage_of_time <= 100)) __builtin_trap();
    check_sorted(f->actors, f->actors_count);
    check_sorted(f->groups, f->groups_count);
    if ((f->groups_count > 0) != ((f->unsupported & FLAGS_GATE_GROUPS) != 0)) __builtin_trap();
}

/* Gives f's gates to the builder as the Redis adapter stores them. */
static int rebuild(struct flags_builder *b, const struct flags_feature *f) {
    char field[4096], pct[1200];
    int rc = flags_add_feature(b, f->name, NULL, 0);
    if (rc == 0 && f->boolean) rc = flags_set_gate(b, f->name, "boolean", "true", NULL, 0);
    if (rc == 0 && f->percentage_of_actors > 0) {
        snprintf(pct, sizeof pct, "%.1100f", f->percentage_of_actors);    /* exact: strtod gives it back */
        rc = flags_set_gate(b, f->name, "percentage_of_actors", pct, NULL, 0);
    }
    for (size_t i = 0; rc == 0 && i < f->actors_count; i++) {
        if ((size_t)snprintf(field, sizeof field, "actors/%s", f->actors[i]) >= sizeof field) return 1;
        rc = flags_set_gate(b, f->name, field, "1", NULL, 0);
    }
    for (size_t i = 0; rc == 0 && i < f->groups_count; i++) {
        if ((size_t)snprintf(field, sizeof field, "groups/%s", f->groups[i]) >= sizeof field) return 1;
        rc = flags_set_gate(b, f->name, field, "1", NULL, 0);
    }
    return rc;
}

static bool same_strings(char *const *a, size_t na, char *const *b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0) return false;
    return true;
}

static void check_builder_agrees(const struct flags_set *s) {
    struct flags_builder *b = flags_new_builder();
    if (!b) return;
    for (size_t i = 0; i < flags_count(s); i++) {
        int rc = rebuild(b, flags_feature_at(s, i));
        if (rc > 0) { flags_free_builder(b); return; }    /* a name too long for this check */
        if (rc < 0) __builtin_trap();                     /* the builder refused what the API accepted */
    }
    struct flags_set *t = flags_finish_builder(b);
    if (!t) return;
    if (flags_count(t) != flags_count(s)) __builtin_trap();
    for (size_t i = 0; i < flags_count(s); i++) {
        const struct flags_feature *f = flags_feature_at(s, i), *g = flags_find(t, f->name);
        if (!g || g->boolean != f->boolean || g->percentage_of_actors != f->percentage_of_actors ||
            !same_strings(f->actors, f->actors_count, g->actors, g->actors_count) ||
            !same_strings(f->groups, f->groups_count, g->groups, g->groups_count))
            __builtin_trap();
        if (flags_feature_is_enabled_for(f, "User;", "42") != flags_feature_is_enabled_for(g, "User;", "42"))
            __builtin_trap();
    }
    flags_release(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256], buf[256];
    err[0] = '\0';
    struct flags_set *s = flags_parse_api((const char *)data, size, err, sizeof err);
    if (!s) {
        if (!err[0]) __builtin_trap();          /* every failure says why */
        return 0;
    }
    for (size_t i = 0; i < flags_count(s); i++) {
        const struct flags_feature *f = flags_feature_at(s, i);
        check_feature(s, f);
        flags_describe(f, buf, sizeof buf);
    }
    check_builder_agrees(s);
    if (flags_diff(s, s, NULL, NULL) != 0) __builtin_trap();
    flags_release(s);
    return 0;
}
