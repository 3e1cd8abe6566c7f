/* src/flags/flags_internal.h: what the files of src/flags/ share and nobody else sees: the
 * layout of a snapshot and of the builder (flags.c), and the builder's typed entry points that
 * the JSON formats (flags_json.c) call. Not an interface for anything outside src/flags/. */
#ifndef CGW_FLAGS_INTERNAL_H
#define CGW_FLAGS_INTERNAL_H

#include "base/base.h"
#include "flags/flags.h"

struct flags_set {
    atomic_int refs;
    size_t count;
    struct flags_feature *features;     /* sorted by name */
};

struct flags_builder {
    struct flags_feature *features;
    size_t count, cap;
    size_t last;                        /* index of the feature touched last (lookup cache) */
    size_t *actors_cap, *groups_cap;    /* capacities, parallel to features */
};

/* The feature called name, added with every gate off when new (*created says which); NULL
 * only when out of memory. */
struct flags_feature *flags_builder_feature(struct flags_builder *b, const char *name, bool *created);
/* Appends to f's actors or groups (sorted and made distinct by flags_finish_builder); -1 when
 * out of memory. */
int flags_builder_add_actor(struct flags_builder *b, struct flags_feature *f, const char *id);
int flags_builder_add_group(struct flags_builder *b, struct flags_feature *f, const char *g);
/* Flipper's text forms: a percentage 0..100 ("25", "12.5") and a boolean ("true"/"false"). */
int flags_parse_percentage_text(const char *s, double *out);
int flags_parse_bool_text(const char *s, bool *out);

#endif
