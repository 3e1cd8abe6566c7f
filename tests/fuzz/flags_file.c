/* tests/fuzz/flags_file.c: libFuzzer target over the Flipper flag parsers.
 *
 * The flags file (and the flag service's answers) come from outside the worker; whatever
 * they hold, parsing must end in a snapshot or an error message, never a crash, a leak or
 * undefined behaviour. Each input goes through both parsers (export format and flipper-api's
 * GET /features); every snapshot that parses is then evaluated, described and diffed, so the
 * code that runs on every poll and every record is covered too.
 *
 *   make fuzz-flags_file
 *   build/fuzz/flags_file -dict=tests/fuzz/flags_file.dict -max_total_time=180 <scratch dir> tests/fuzz/flags_file/
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flags/flags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void on_change(void *ud, const char *name, const char *old_value, const char *new_value) {
    size_t *n = ud;
    *n += strlen(name) + strlen(old_value) + strlen(new_value);
}

static void exercise(const struct flags_set *s, const struct flags_set *base) {
    static const char *const ids[] = { "1", "42", "", "User;1", "x/y" };
    char buf[256];
    size_t n = 0;
    for (size_t i = 0; i < flags_count(s); i++) {
        const struct flags_feature *f = flags_feature_at(s, i);
        (void)flags_is_on(s, f->name);
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            (void)flags_feature_is_enabled_for(f, "User;", ids[k]);
            (void)flags_is_enabled_for(s, f->name, "", ids[k]);
        }
        flags_describe(f, buf, sizeof buf);
        flags_gate_names(f->unsupported, buf, sizeof buf);
        if (flags_find(s, f->name) != f) __builtin_trap();      /* sorted lookup must find it */
    }
    flags_diff(base, s, on_change, &n);
    flags_diff(s, base, on_change, &n);
    if (flags_diff(s, s, on_change, &n) != 0) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char base_json[] =
        "{\"version\":1,\"features\":{\"consumer_graph_ingestion\":{\"percentage_of_actors\":\"25\"},"
        "\"consumer_graph_receipt_killswitch\":{\"boolean\":\"true\"}}}";
    char err[256];
    struct flags_set *base = flags_parse_export(base_json, sizeof base_json - 1, err, sizeof err);
    struct flags_set *s = flags_parse_export((const char *)data, size, err, sizeof err);
    if (s) {
        exercise(s, base);
        flags_release(s);
    } else if (!err[0]) {
        __builtin_trap();               /* every failure must say why */
    }
    s = flags_parse_api((const char *)data, size, err, sizeof err);
    if (s) {
        exercise(s, base);
        flags_release(s);
    }
    flags_release(base);
    return 0;
}
