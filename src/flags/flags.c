/* src/flags/flags.c: Flipper snapshots: building, evaluation, diffs, sharing between threads.
 * The JSON formats are flags_json.c, the file source flags_file.c, the poller flags_poller.c.
 *
 * Design. Everything that makes a snapshot goes through the builder: the JSON parsers
 * (export file, flipper-api) call it with typed values, the Valkey reader with the Redis
 * adapter's field strings. flags_finish_builder sorts features by name and each actors and
 * groups list, so lookups are binary searches and snapshots compare element by element.
 * Finished snapshots are never written again; that is what lets the store hand them to
 * reader threads without locking them (see flags.h for the store's protocol).
 *
 * Evaluation follows lib/flipper/gates/ at Flipper 1.4.2: gates are OR-ed, boolean first,
 * then actors, then percentage_of_actors with Zlib.crc32 of the feature name immediately
 * followed by the actor id. The crc is computed in three zlib calls (name, prefix, id) so no
 * string is built per record.
 *
 * Floating point. Ruby compares `crc % 100000 < percentage * 1000`, where percentage is an
 * Integer ("25") or a Float ("12.5", Typecast.to_number). Integer*1000 is exact; Float*1000 is
 * one IEEE double multiplication, and Ruby's Integer<Float comparison is exact. C does the
 * same: the product pct * 1000.0 in double, compared with the bucket converted to double
 * (exact below 2^53). Rescaling differently (bucket / 1000.0 < pct, or rounding the product)
 * would flip actors on the boundary: for "2.007", 2.007 * 1000.0 is 2007.0000000000002, so
 * Ruby lets bucket 2007 in, while exact decimal arithmetic or 2007 / 1000.0 < 2.007 keeps it
 * out (731 of the 100001 three-decimal percentages behave like this; the unit test checks
 * one). The #if below refuses a target that would evaluate the product in extended precision.
 */
#include "flags/flags_internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#if FLT_EVAL_METHOD != 0
#error "flags_percentage_includes needs plain IEEE double arithmetic (FLT_EVAL_METHOD 0)"
#endif

static void free_feature(struct flags_feature *f) {
    free(f->name);
    for (size_t i = 0; i < f->actors_count; i++) free(f->actors[i]);
    for (size_t i = 0; i < f->groups_count; i++) free(f->groups[i]);
    free(f->actors);
    free(f->groups);
}

/* ---- builder --------------------------------------------------------------------------------- */

struct flags_builder *flags_new_builder(void) {
    return calloc(1, sizeof(struct flags_builder));
}

void flags_free_builder(struct flags_builder *b) {
    if (!b) return;
    for (size_t i = 0; i < b->count; i++) free_feature(&b->features[i]);
    free(b->features);
    free(b->actors_cap);
    free(b->groups_cap);
    free(b);
}

/* The feature called name, created with every gate off when new; NULL when out of memory.
 * *created tells which. */
struct flags_feature *flags_builder_feature(struct flags_builder *b, const char *name, bool *created) {
    *created = false;
    if (b->last < b->count && strcmp(b->features[b->last].name, name) == 0) return &b->features[b->last];
    for (size_t i = 0; i < b->count; i++) {
        if (strcmp(b->features[i].name, name) == 0) { b->last = i; return &b->features[i]; }
    }
    if (b->count == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        struct flags_feature *nf = realloc(b->features, ncap * sizeof *nf);
        if (!nf) return NULL;
        b->features = nf;
        size_t *na = realloc(b->actors_cap, ncap * sizeof *na);
        if (!na) return NULL;
        b->actors_cap = na;
        size_t *ng = realloc(b->groups_cap, ncap * sizeof *ng);
        if (!ng) return NULL;
        b->groups_cap = ng;
        b->cap = ncap;
    }
    struct flags_feature *f = &b->features[b->count];
    memset(f, 0, sizeof *f);
    if (!(f->name = strdup(name))) return NULL;
    b->actors_cap[b->count] = b->groups_cap[b->count] = 0;
    b->last = b->count++;
    *created = true;
    return f;
}

static int push_string(char ***arr, size_t *n, size_t *cap, const char *s) {
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        char **na = realloc(*arr, ncap * sizeof *na);
        if (!na) return -1;
        *arr = na;
        *cap = ncap;
    }
    if (!((*arr)[*n] = strdup(s))) return -1;
    (*n)++;
    return 0;
}

int flags_builder_add_actor(struct flags_builder *b, struct flags_feature *f, const char *id) {
    size_t i = (size_t)(f - b->features);
    return push_string(&f->actors, &f->actors_count, &b->actors_cap[i], id);
}

int flags_builder_add_group(struct flags_builder *b, struct flags_feature *f, const char *g) {
    size_t i = (size_t)(f - b->features);
    return push_string(&f->groups, &f->groups_count, &b->groups_cap[i], g);
}

/* Flipper's percentage text: "25", "12.5", "" (unset = 0). Stricter than Ruby's to_f, which
 * would read "12abc" as 12: a typo in a rollout must not pass silently. */
int flags_parse_percentage_text(const char *s, double *out) {
    const char *p = s;
    int digits = 0, dots = 0;
    if (!*s) { *out = 0; return 0; }
    for (; *p; p++) {
        if (isdigit((unsigned char)*p)) digits++;
        else if (*p == '.' && !dots) dots++;
        else return -1;
    }
    if (!digits) return -1;
    errno = 0;
    double v = strtod(s, NULL);
    if (errno || v < 0 || v > 100) return -1;
    *out = v;
    return 0;
}

/* Flipper's Typecast TRUTH_MAP: "true" and "1" are on; everything this reader accepts as a
 * boolean-gate value is listed so that garbage is an error, not silently "off". */
int flags_parse_bool_text(const char *s, bool *out) {
    if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0) { *out = true; return 0; }
    if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0 || !*s) { *out = false; return 0; }
    return -1;
}

int flags_add_feature(struct flags_builder *b, const char *feature, char *err, size_t errlen) {
    bool created;
    if (!flags_builder_feature(b, feature, &created)) {
        base_errf(err, errlen, "flags: out of memory");
        return -1;
    }
    return 0;
}

int flags_set_gate(struct flags_builder *b, const char *feature, const char *field, const char *value,
                   char *err, size_t errlen) {
    bool created;
    struct flags_feature *f = flags_builder_feature(b, feature, &created);
    if (!f) { base_errf(err, errlen, "flags: out of memory"); return -1; }
    if (!value) value = "";
    if (strcmp(field, "boolean") == 0) {
        if (flags_parse_bool_text(value, &f->boolean) == 0) return 0;
        base_errf(err, errlen, "flags: feature \"%s\": gate boolean: expected \"true\" or \"false\", got \"%.40s\"",
                feature, value);
        return -1;
    }
    if (strcmp(field, "percentage_of_actors") == 0 || strcmp(field, "percentage_of_time") == 0) {
        bool actors = field[14] == 'a';
        double *dst = actors ? &f->percentage_of_actors : &f->percentage_of_time;
        if (flags_parse_percentage_text(value, dst) == 0) {
            if (!actors && *dst > 0) f->unsupported |= FLAGS_GATE_PERCENTAGE_OF_TIME;
            return 0;
        }
        base_errf(err, errlen, "flags: feature \"%s\": gate %s: expected a number between 0 and 100, got \"%.40s\"",
                feature, field, value);
        return -1;
    }
    if (strcmp(field, "expression") == 0) {
        if (*value && strcmp(value, "null") != 0 && strcmp(value, "{}") != 0) {
            f->has_expression = true;
            f->unsupported |= FLAGS_GATE_EXPRESSION;
        }
        return 0;
    }
    /* set members: the field is "<gate>/<member>", split on the first '/' like the adapter */
    if (strncmp(field, "actors/", 7) == 0) {
        if (flags_builder_add_actor(b, f, field + 7) < 0) { base_errf(err, errlen, "flags: out of memory"); return -1; }
        return 0;
    }
    if (strncmp(field, "groups/", 7) == 0) {
        if (flags_builder_add_group(b, f, field + 7) < 0) { base_errf(err, errlen, "flags: out of memory"); return -1; }
        f->unsupported |= FLAGS_GATE_GROUPS;
        return 0;
    }
    f->unsupported |= FLAGS_GATE_UNKNOWN;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_feature(const void *a, const void *b) {
    return strcmp(((const struct flags_feature *)a)->name, ((const struct flags_feature *)b)->name);
}

/* Sorts and removes duplicates (an actor listed twice is one actor). */
static void sort_unique(char **arr, size_t *n) {
    if (*n < 2) return;
    qsort(arr, *n, sizeof *arr, cmp_str);
    size_t w = 1;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(arr[i], arr[w - 1]) == 0) free(arr[i]);
        else arr[w++] = arr[i];
    }
    *n = w;
}

struct flags_set *flags_finish_builder(struct flags_builder *b) {
    struct flags_set *s = calloc(1, sizeof *s);
    if (!s) { flags_free_builder(b); return NULL; }
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i < b->count; i++) {
        sort_unique(b->features[i].actors, &b->features[i].actors_count);
        sort_unique(b->features[i].groups, &b->features[i].groups_count);
    }
    if (b->count) qsort(b->features, b->count, sizeof *b->features, cmp_feature);
    s->features = b->features;
    s->count = b->count;
    free(b->actors_cap);
    free(b->groups_cap);
    free(b);
    return s;
}

/* ---- reading --------------------------------------------------------------------------------- */

size_t flags_count(const struct flags_set *s) { return s ? s->count : 0; }

const struct flags_feature *flags_feature_at(const struct flags_set *s, size_t i) {
    return s && i < s->count ? &s->features[i] : NULL;
}

const struct flags_feature *flags_find(const struct flags_set *s, const char *name) {
    if (!s || !name) return NULL;
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, s->features[mid].name);
        if (c == 0) return &s->features[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

bool flags_is_on(const struct flags_set *s, const char *name) {
    const struct flags_feature *f = flags_find(s, name);
    return f && f->boolean;
}

uint32_t flags_bucket(const char *feature, const char *actor_prefix, const char *id) {
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)feature, (uInt)strlen(feature));
    if (actor_prefix) crc = crc32(crc, (const Bytef *)actor_prefix, (uInt)strlen(actor_prefix));
    crc = crc32(crc, (const Bytef *)id, (uInt)strlen(id));
    return (uint32_t)(crc % 100000UL);
}

bool flags_percentage_includes(double percentage, uint32_t bucket) {
    return (double)bucket < percentage * 1000.0;
}

/* Compares prefix+id with s as if concatenated, byte-wise like strcmp. */
static int cmp_actor(const char *prefix, const char *id, const char *s) {
    size_t plen = strlen(prefix);
    int c = strncmp(prefix, s, plen);
    if (c) return c;
    return strcmp(id, s + plen);
}

static bool has_actor(const struct flags_feature *f, const char *prefix, const char *id) {
    size_t lo = 0, hi = f->actors_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_actor(prefix, id, f->actors[mid]);
        if (c == 0) return true;
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return false;
}

bool flags_feature_is_enabled_for(const struct flags_feature *f, const char *actor_prefix, const char *id) {
    if (!f) return false;
    if (f->boolean) return true;
    if (!id) return false;          /* Flipper: actor gates need an actor */
    if (!actor_prefix) actor_prefix = "";
    if (f->actors_count && has_actor(f, actor_prefix, id)) return true;
    if (f->percentage_of_actors > 0 &&
        flags_percentage_includes(f->percentage_of_actors, flags_bucket(f->name, actor_prefix, id)))
        return true;
    return false;
}

bool flags_is_enabled_for(const struct flags_set *s, const char *name, const char *actor_prefix, const char *id) {
    return flags_feature_is_enabled_for(flags_find(s, name), actor_prefix, id);
}

/* ---- describing and diffing ------------------------------------------------------------------ */

size_t flags_gate_names(unsigned bits, char *buf, size_t len) {
    static const char *const names[] = { "groups", "expression", "percentage_of_time", "unknown gate" };
    size_t o = 0;
    if (len) buf[0] = '\0';
    for (int i = 0; i < 4; i++) {
        if (!(bits & (1u << i))) continue;
        int n = snprintf(buf + (o < len ? o : len), o < len ? len - o : 0, "%s%s", o ? ", " : "", names[i]);
        o += (size_t)n;
    }
    return o;
}

/* Appends to buf at *o without overflowing (snprintf semantics for the total). */
__attribute__((format(printf, 4, 5)))
static void app(char *buf, size_t len, size_t *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + (*o < len ? *o : len), *o < len ? len - *o : 0, fmt, ap);
    va_end(ap);
    if (n > 0) *o += (size_t)n;
}

static void fmt_pct(char *out, size_t len, double d) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, d);
        if (strtod(out, NULL) == d) return;
    }
}

static void app_list(char *buf, size_t len, size_t *o, const char *label, char **items, size_t n) {
    app(buf, len, o, "%s%s=[", *o ? " " : "", label);
    for (size_t i = 0; i < n && i < 5; i++) app(buf, len, o, "%s%s", i ? "," : "", items[i]);
    if (n > 5) app(buf, len, o, ",+%zu more", n - 5);
    app(buf, len, o, "]");
}

size_t flags_describe(const struct flags_feature *f, char *buf, size_t len) {
    size_t o = 0;
    char pct[40];
    if (len) buf[0] = '\0';
    if (!f) { app(buf, len, &o, "absent"); return o; }
    if (f->boolean) { app(buf, len, &o, "on"); return o; }
    if (f->actors_count) app_list(buf, len, &o, "actors", f->actors, f->actors_count);
    if (f->percentage_of_actors > 0) {
        fmt_pct(pct, sizeof pct, f->percentage_of_actors);
        app(buf, len, &o, "%spercentage_of_actors=%s", o ? " " : "", pct);
    }
    if (f->groups_count) app_list(buf, len, &o, "groups", f->groups, f->groups_count);
    if (f->percentage_of_time > 0) {
        fmt_pct(pct, sizeof pct, f->percentage_of_time);
        app(buf, len, &o, "%spercentage_of_time=%s", o ? " " : "", pct);
    }
    if (f->has_expression) app(buf, len, &o, "%sexpression", o ? " " : "");
    if (f->unsupported & FLAGS_GATE_UNKNOWN) app(buf, len, &o, "%sunknown_gate", o ? " " : "");
    if (!o) app(buf, len, &o, "off");
    return o;
}

static bool same_list(char **a, size_t na, char **b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0) return false;
    return true;
}

static bool same_feature(const struct flags_feature *a, const struct flags_feature *b) {
    return a->boolean == b->boolean && a->percentage_of_actors == b->percentage_of_actors &&
           a->percentage_of_time == b->percentage_of_time && a->has_expression == b->has_expression &&
           a->unsupported == b->unsupported && same_list(a->actors, a->actors_count, b->actors, b->actors_count) &&
           same_list(a->groups, a->groups_count, b->groups, b->groups_count);
}

static void report(const struct flags_feature *a, const struct flags_feature *b, flags_change_fn fn, void *ud) {
    char ov[256], nv[256];
    flags_describe(a, ov, sizeof ov);
    flags_describe(b, nv, sizeof nv);
    if (fn) fn(ud, a ? a->name : b->name, ov, nv);
}

size_t flags_diff(const struct flags_set *old_set, const struct flags_set *new_set, flags_change_fn fn, void *ud) {
    size_t i = 0, j = 0, changes = 0;
    size_t no = flags_count(old_set), nn = flags_count(new_set);
    while (i < no || j < nn) {
        const struct flags_feature *a = i < no ? &old_set->features[i] : NULL;
        const struct flags_feature *b = j < nn ? &new_set->features[j] : NULL;
        int c = !a ? 1 : !b ? -1 : strcmp(a->name, b->name);
        if (c < 0) { report(a, NULL, fn, ud); i++; changes++; }
        else if (c > 0) { report(NULL, b, fn, ud); j++; changes++; }
        else {
            if (!same_feature(a, b)) { report(a, b, fn, ud); changes++; }
            i++;
            j++;
        }
    }
    return changes;
}

/* ---- references and the store ------------------------------------------------------------------ */

const struct flags_set *flags_retain(const struct flags_set *s) {
    if (s) atomic_fetch_add(&((struct flags_set *)s)->refs, 1);
    return s;
}

void flags_release(const struct flags_set *cs) {
    struct flags_set *s = (struct flags_set *)cs;
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    for (size_t i = 0; i < s->count; i++) free_feature(&s->features[i]);
    free(s->features);
    free(s);
}

void flags_init_store(struct flags_store *st) {
    pthread_mutex_init(&st->mu, NULL);
    st->current = NULL;
    atomic_init(&st->generation, 0);
}

void flags_destroy_store(struct flags_store *st) {
    flags_release(st->current);
    st->current = NULL;
    pthread_mutex_destroy(&st->mu);
}

void flags_publish(struct flags_store *st, struct flags_set *s) {
    pthread_mutex_lock(&st->mu);
    struct flags_set *old = st->current;
    st->current = s;
    /* release order: a reader that sees the new generation also sees current */
    atomic_fetch_add_explicit(&st->generation, 1, memory_order_release);
    pthread_mutex_unlock(&st->mu);
    flags_release(old);     /* readers still holding it keep it alive */
}

const struct flags_set *flags_read(struct flags_store *st, struct flags_reader *r) {
    uint64_t gen = atomic_load_explicit(&st->generation, memory_order_acquire);
    if (gen == r->generation) return r->set;        /* the per-record path: nothing changed */
    pthread_mutex_lock(&st->mu);
    const struct flags_set *old = r->set;
    r->set = flags_retain(st->current);
    r->generation = atomic_load_explicit(&st->generation, memory_order_relaxed);
    pthread_mutex_unlock(&st->mu);
    flags_release(old);
    return r->set;
}

void flags_release_reader(struct flags_reader *r) {
    flags_release(r->set);
    r->set = NULL;
    r->generation = 0;
}

const struct flags_set *flags_acquire_current(struct flags_store *st) {
    pthread_mutex_lock(&st->mu);
    const struct flags_set *s = flags_retain(st->current);
    pthread_mutex_unlock(&st->mu);
    return s;
}
