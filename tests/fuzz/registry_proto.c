/* tests/fuzz/registry_proto.c: libFuzzer target for the schema registry's .proto text parser
 * and the factoid compatibility check (src/registry/proto_text.c).
 *
 * The input is the schema text as the registry would serve it. Beyond the sanitizers, the
 * target checks the parser's promises: a parse either fails with a one-line printable message
 * or yields a tree within the limits (nesting, field numbers, fully-qualified names that end
 * in the declared name); the check either accepts or explains itself printably; the one-call
 * registry_proto_accepts() agrees with parse + check; and a tiny reason buffer is respected.
 *
 *   make fuzz-registry_proto
 *   build/fuzz/registry_proto -dict=tests/fuzz/registry_proto.dict \
 *       build/fuzz/corpus_registry_proto tests/fuzz/registry_proto/
 * (new inputs go to the first directory; the seeds in tests/fuzz/registry_proto/ stay as
 * they are: the contract's factoid.proto and variants of it.)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "registry/proto_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *s, size_t cap) {
    if (strlen(s) >= cap) __builtin_trap();
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) __builtin_trap();
}

static void check_name(const char *name, const char *fqn) {
    size_t n = strlen(name), f = strlen(fqn);
    if (!n || n > REGISTRY_PROTO_MAX_IDENT || f < n || f > REGISTRY_PROTO_MAX_NAME)
        __builtin_trap();
    if (strcmp(fqn + f - n, name) != 0 || (f > n && fqn[f - n - 1] != '.')) __builtin_trap();
}

static void check_enums(const struct registry_proto_enum *e) {
    for (; e; e = e->next) {
        check_name(e->name, e->fqn);
        for (const struct registry_proto_enum_value *v = e->values; v; v = v->next)
            if (!v->name || !v->name[0]) __builtin_trap();
    }
}

static void check_messages(const struct registry_proto_message *m, int depth) {
    if (depth > REGISTRY_PROTO_MAX_DEPTH) __builtin_trap();
    for (; m; m = m->next) {
        check_name(m->name, m->fqn);
        for (const struct registry_proto_field *x = m->fields; x; x = x->next) {
            if (!x->name || !x->name[0] || !x->type || !x->type[0]) __builtin_trap();
            if (x->number < 1 || x->number > 536870911) __builtin_trap();
            if (x->is_map && strcmp(x->type, "map") != 0) __builtin_trap();
        }
        check_enums(m->enums);
        check_messages(m->messages, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    char err[256], reason[256], again[256], tiny[12];
    int verdict = -1;
    err[0] = '\0';
    struct registry_proto_file *f = registry_proto_parse(text, size, err, sizeof err);
    if (!f) {
        if (!err[0]) __builtin_trap();
        check_line(err, sizeof err);
    } else {
        if (!f->package) __builtin_trap();
        check_messages(f->messages, 1);
        check_enums(f->enums);
        verdict = registry_proto_check_factoid(f, reason, sizeof reason);
        if (verdict != 0 && !reason[0]) __builtin_trap();
        check_line(reason, sizeof reason);
        registry_proto_free(f);
    }
    if (registry_proto_accepts(text, size, again, sizeof again) != verdict) __builtin_trap();
    check_line(again, sizeof again);
    if (registry_proto_accepts(text, size, tiny, sizeof tiny) != verdict) __builtin_trap();
    check_line(tiny, sizeof tiny);
    return 0;
}
