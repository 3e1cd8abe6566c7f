/* packstream.c: PackStream v1 values, encoder and strict decoder (docs/bolt.md §4).
 *
 * Three parts:
 *   - bolt_value, a plain tagged tree. Lists, maps and structures own their children.
 *     Strings and bytes are stored with a trailing NUL so strings can be handed out as C
 *     strings (the length is authoritative: strings may contain NUL bytes).
 *   - bolt_enc, a growable byte buffer with PackStream writers. It is the only encoder:
 *     bolt_enc_value walks a tree into it, and callers with large data write straight
 *     into it without building a tree. The connection uses it as its output buffer too.
 *     Its typed writers keep count of the values each open container still expects, so
 *     bolt_enc_complete can vouch for a finished parameter map without a second walk
 *     (bolt_check_value, which stays for whatever the count cannot follow).
 *   - bolt_unpack, a recursive decoder that trusts nothing: each claimed length is checked
 *     against the bytes that remain before anything is allocated for it (a list of n items
 *     needs at least n bytes, a map 2n), so a hostile 4 GiB header costs nothing.
 *
 * The typed views (bolt_value_as_node, ...) only check shapes; the decoder itself accepts
 * any structure tag so a newer server cannot break decoding of values we do not know.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt/bolt_internal.h"

typedef struct map_entry {
    char *key;
    size_t klen;
    bolt_value *value;
} map_entry;

struct bolt_value {
    uint8_t type;               /* bolt_type */
    uint8_t tag;                /* structures */
    size_t n, cap;              /* bytes (string/bytes) or items (list/map/struct) */
    union {
        int b;
        int64_t i;
        double f;
        char *s;                /* string/bytes, NUL-terminated */
        bolt_value **items;     /* list/struct */
        map_entry *entries;     /* map */
    } u;
};

/* ------------------------------------------------------------------ construction */

static bolt_value *value_new(bolt_type t) {
    bolt_value *v = calloc(1, sizeof *v);
    if (v) v->type = (uint8_t)t;
    return v;
}

bolt_value *bolt_null(void) { return value_new(BOLT_NULL); }

bolt_value *bolt_bool(int b) {
    bolt_value *v = value_new(BOLT_BOOL);
    if (v) v->u.b = b ? 1 : 0;
    return v;
}

bolt_value *bolt_int(int64_t i) {
    bolt_value *v = value_new(BOLT_INT);
    if (v) v->u.i = i;
    return v;
}

bolt_value *bolt_float(double f) {
    bolt_value *v = value_new(BOLT_FLOAT);
    if (v) v->u.f = f;
    return v;
}

static bolt_value *blob_new(bolt_type t, const void *p, size_t n) {
    bolt_value *v = value_new(t);
    if (!v) return NULL;
    v->u.s = malloc(n + 1);
    if (!v->u.s) {
        free(v);
        return NULL;
    }
    if (n) memcpy(v->u.s, p, n);
    v->u.s[n] = 0;
    v->n = n;
    return v;
}

bolt_value *bolt_string(const char *s) { return blob_new(BOLT_STRING, s, s ? strlen(s) : 0); }
bolt_value *bolt_string_n(const char *s, size_t n) { return blob_new(BOLT_STRING, s, n); }
bolt_value *bolt_bytes(const void *p, size_t n) { return blob_new(BOLT_BYTES, p, n); }
bolt_value *bolt_list(void) { return value_new(BOLT_LIST); }
bolt_value *bolt_map(void) { return value_new(BOLT_MAP); }

bolt_value *bolt_struct(uint8_t tag) {
    if (tag > 127) return NULL;
    bolt_value *v = value_new(BOLT_STRUCT);
    if (v) v->tag = tag;
    return v;
}

void bolt_value_free(bolt_value *v) {
    if (!v) return;
    switch (v->type) {
    case BOLT_STRING:
    case BOLT_BYTES:
        free(v->u.s);
        break;
    case BOLT_LIST:
    case BOLT_STRUCT:
        for (size_t i = 0; i < v->n; i++) bolt_value_free(v->u.items[i]);
        free(v->u.items);
        break;
    case BOLT_MAP:
        for (size_t i = 0; i < v->n; i++) {
            free(v->u.entries[i].key);
            bolt_value_free(v->u.entries[i].value);
        }
        free(v->u.entries);
        break;
    default:
        break;
    }
    free(v);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return BOLT_OK;
    size_t nc = *cap ? *cap * 2 : 4;
    while (nc < need) nc *= 2;
    void *p = realloc(*arr, nc * elem);
    if (!p) return BOLT_ENOMEM;
    *arr = p;
    *cap = nc;
    return BOLT_OK;
}

static int items_append(bolt_value *c, bolt_value *item) {
    if (grow((void **)&c->u.items, &c->cap, c->n + 1, sizeof *c->u.items)) {
        bolt_value_free(item);
        return BOLT_ENOMEM;
    }
    c->u.items[c->n++] = item;
    return BOLT_OK;
}

int bolt_list_append(bolt_value *list, bolt_value *item) {
    if (!item) return BOLT_ENOMEM;
    if (!list || list->type != BOLT_LIST) {
        bolt_value_free(item);
        return BOLT_EINVAL;
    }
    return items_append(list, item);
}

int bolt_struct_append(bolt_value *st, bolt_value *field) {
    if (!field) return BOLT_ENOMEM;
    if (!st || st->type != BOLT_STRUCT || st->n >= 15) {
        bolt_value_free(field);
        return BOLT_EINVAL;
    }
    return items_append(st, field);
}

static int map_find(const bolt_value *m, const char *key, size_t klen) {
    for (size_t i = m->n; i-- > 0;)
        if (m->u.entries[i].klen == klen && !memcmp(m->u.entries[i].key, key, klen))
            return (int)i;
    return -1;
}

/* Appends without looking for duplicates: the decoder uses it, lookups take the last. */
static int map_push(bolt_value *m, char *key, size_t klen, bolt_value *value) {
    if (grow((void **)&m->u.entries, &m->cap, m->n + 1, sizeof *m->u.entries))
        return BOLT_ENOMEM;
    m->u.entries[m->n++] = (map_entry){key, klen, value};
    return BOLT_OK;
}

int bolt_map_set(bolt_value *map, const char *key, bolt_value *value) {
    if (!value) return BOLT_ENOMEM;
    if (!map || map->type != BOLT_MAP || !key) {
        bolt_value_free(value);
        return BOLT_EINVAL;
    }
    size_t klen = strlen(key);
    int at = map_find(map, key, klen);
    if (at >= 0) {
        bolt_value_free(map->u.entries[at].value);
        map->u.entries[at].value = value;
        return BOLT_OK;
    }
    char *k = strdup(key);
    if (!k || map_push(map, k, klen, value)) {
        free(k);
        bolt_value_free(value);
        return BOLT_ENOMEM;
    }
    return BOLT_OK;
}

bolt_value *bolt_value_copy(const bolt_value *v) {
    if (!v) return NULL;
    bolt_value *c;
    switch (v->type) {
    case BOLT_STRING:
    case BOLT_BYTES:
        return blob_new((bolt_type)v->type, v->u.s, v->n);
    case BOLT_LIST:
    case BOLT_STRUCT:
        c = value_new((bolt_type)v->type);
        if (!c) return NULL;
        c->tag = v->tag;
        for (size_t i = 0; i < v->n; i++) {
            bolt_value *item = bolt_value_copy(v->u.items[i]);
            if (!item || items_append(c, item)) {
                bolt_value_free(c);
                return NULL;
            }
        }
        return c;
    case BOLT_MAP:
        c = value_new(BOLT_MAP);
        if (!c) return NULL;
        for (size_t i = 0; i < v->n; i++) {
            const map_entry *e = &v->u.entries[i];
            char *k = malloc(e->klen + 1);
            bolt_value *val = bolt_value_copy(e->value);
            if (k) memcpy(k, e->key, e->klen + 1);
            if (!k || !val || map_push(c, k, e->klen, val)) {
                free(k);
                bolt_value_free(val);
                bolt_value_free(c);
                return NULL;
            }
        }
        return c;
    default:
        c = value_new((bolt_type)v->type);
        if (c) c->u = v->u;
        return c;
    }
}

/* ------------------------------------------------------------------ accessors */

bolt_type bolt_value_type(const bolt_value *v) { return v ? (bolt_type)v->type : BOLT_NULL; }
int bolt_value_is_null(const bolt_value *v) { return !v || v->type == BOLT_NULL; }
int bolt_value_bool(const bolt_value *v) { return v && v->type == BOLT_BOOL ? v->u.b : 0; }
int64_t bolt_value_int(const bolt_value *v) { return v && v->type == BOLT_INT ? v->u.i : 0; }

double bolt_value_float(const bolt_value *v) {
    return v && v->type == BOLT_FLOAT ? v->u.f : 0.0;
}

const char *bolt_value_string(const bolt_value *v, size_t *len) {
    if (!v || v->type != BOLT_STRING) return NULL;
    if (len) *len = v->n;
    return v->u.s;
}

const uint8_t *bolt_value_bytes(const bolt_value *v, size_t *len) {
    if (!v || v->type != BOLT_BYTES) return NULL;
    if (len) *len = v->n;
    return (const uint8_t *)v->u.s;
}

size_t bolt_value_size(const bolt_value *v) {
    if (!v) return 0;
    switch (v->type) {
    case BOLT_STRING: case BOLT_BYTES: case BOLT_LIST: case BOLT_MAP: case BOLT_STRUCT:
        return v->n;
    default:
        return 0;
    }
}

const bolt_value *bolt_list_get(const bolt_value *l, size_t i) {
    return l && l->type == BOLT_LIST && i < l->n ? l->u.items[i] : NULL;
}

const bolt_value *bolt_map_get(const bolt_value *m, const char *key) {
    if (!m || m->type != BOLT_MAP || !key) return NULL;
    int at = map_find(m, key, strlen(key));
    return at >= 0 ? m->u.entries[at].value : NULL;
}

const char *bolt_map_key_at(const bolt_value *m, size_t i, size_t *len) {
    if (!m || m->type != BOLT_MAP || i >= m->n) return NULL;
    if (len) *len = m->u.entries[i].klen;
    return m->u.entries[i].key;
}

const bolt_value *bolt_map_value_at(const bolt_value *m, size_t i) {
    return m && m->type == BOLT_MAP && i < m->n ? m->u.entries[i].value : NULL;
}

uint8_t bolt_struct_tag(const bolt_value *st) {
    return st && st->type == BOLT_STRUCT ? st->tag : 0;
}

const bolt_value *bolt_struct_field(const bolt_value *st, size_t i) {
    return st && st->type == BOLT_STRUCT && i < st->n ? st->u.items[i] : NULL;
}

bolt_value *bolt_struct_steal(bolt_value *st, size_t i) {
    if (!st || st->type != BOLT_STRUCT || i >= st->n) return NULL;
    bolt_value *v = st->u.items[i];
    st->u.items[i] = NULL;   /* bolt_value_free skips it */
    return v;
}

int bolt_value_is_struct(const bolt_value *v, uint8_t tag, size_t nfields) {
    return v && v->type == BOLT_STRUCT && v->tag == tag && v->n == nfields;
}

int bolt_value_equal(const bolt_value *a, const bolt_value *b) {
    if (!a || !b) return a == b;
    if (a->type != b->type || a->n != b->n) return 0;
    switch (a->type) {
    case BOLT_NULL: return 1;
    case BOLT_BOOL: return a->u.b == b->u.b;
    case BOLT_INT: return a->u.i == b->u.i;
    case BOLT_FLOAT: return !memcmp(&a->u.f, &b->u.f, sizeof a->u.f);
    case BOLT_STRING:
    case BOLT_BYTES: return !memcmp(a->u.s, b->u.s, a->n);
    case BOLT_STRUCT:
        if (a->tag != b->tag) return 0;
        /* fall through */
    case BOLT_LIST:
        for (size_t i = 0; i < a->n; i++)
            if (!bolt_value_equal(a->u.items[i], b->u.items[i])) return 0;
        return 1;
    case BOLT_MAP:
        /* Order-insensitive (servers do not promise to keep key order), and compared
         * through lookups so duplicate keys mean what lookups say they mean. */
        for (size_t i = 0; i < a->n; i++) {
            const map_entry *e = &a->u.entries[i];
            int ia = map_find(a, e->key, e->klen), ib = map_find(b, e->key, e->klen);
            if (ib < 0 || !bolt_value_equal(a->u.entries[ia].value, b->u.entries[ib].value))
                return 0;
        }
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ formatting */

typedef struct fmt_out { char *buf; size_t size, len; } fmt_out;

static void fmt_put(fmt_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fmt_put(fmt_out *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->size ? o->size - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0) o->len += (size_t)n;
}

static void fmt_value(fmt_out *o, const bolt_value *v) {
    if (!v) return fmt_put(o, "null");
    switch (v->type) {
    case BOLT_NULL: fmt_put(o, "null"); break;
    case BOLT_BOOL: fmt_put(o, v->u.b ? "true" : "false"); break;
    case BOLT_INT: fmt_put(o, "%" PRId64, v->u.i); break;
    case BOLT_FLOAT: fmt_put(o, "%.17g", v->u.f); break;
    case BOLT_STRING: fmt_put(o, "\"%.*s\"", (int)(v->n > 200 ? 200 : v->n), v->u.s); break;
    case BOLT_BYTES: fmt_put(o, "bytes[%zu]", v->n); break;
    case BOLT_LIST:
    case BOLT_STRUCT:
        if (v->type == BOLT_STRUCT) fmt_put(o, "struct<0x%02X>", v->tag);
        fmt_put(o, v->type == BOLT_LIST ? "[" : "(");
        for (size_t i = 0; i < v->n; i++) {
            if (i) fmt_put(o, ", ");
            fmt_value(o, v->u.items[i]);
        }
        fmt_put(o, v->type == BOLT_LIST ? "]" : ")");
        break;
    case BOLT_MAP:
        fmt_put(o, "{");
        for (size_t i = 0; i < v->n; i++) {
            fmt_put(o, "%s%.*s: ", i ? ", " : "", (int)v->u.entries[i].klen,
                    v->u.entries[i].key);
            fmt_value(o, v->u.entries[i].value);
        }
        fmt_put(o, "}");
        break;
    }
}

size_t bolt_value_format(const bolt_value *v, char *buf, size_t size) {
    fmt_out o = {buf, size, 0};
    if (buf && size) buf[0] = 0;
    fmt_value(&o, v);
    return o.len;
}

/* ------------------------------------------------------------------ typed views */

static int is_type(const bolt_value *v, bolt_type t) { return v && v->type == t; }

static const char *opt_string(const bolt_value *st, size_t i) {
    return bolt_value_string(bolt_struct_field(st, i), NULL);
}

int bolt_value_as_node(const bolt_value *v, bolt_node *out) {
    if (!v || v->type != BOLT_STRUCT || v->tag != BOLT_TAG_NODE || v->n < 3) return BOLT_ETYPE;
    bolt_value **f = v->u.items;
    if (!is_type(f[0], BOLT_INT) || !is_type(f[1], BOLT_LIST) || !is_type(f[2], BOLT_MAP))
        return BOLT_ETYPE;
    *out = (bolt_node){f[0]->u.i, f[1], f[2], v->n > 3 ? opt_string(v, 3) : NULL};
    return BOLT_OK;
}

int bolt_value_as_relationship(const bolt_value *v, bolt_relationship *out) {
    if (!v || v->type != BOLT_STRUCT) return BOLT_ETYPE;
    bolt_value **f = v->u.items;
    memset(out, 0, sizeof *out);
    if (v->tag == BOLT_TAG_RELATIONSHIP && v->n >= 5) {
        if (!is_type(f[0], BOLT_INT) || !is_type(f[1], BOLT_INT) || !is_type(f[2], BOLT_INT) ||
            !is_type(f[3], BOLT_STRING) || !is_type(f[4], BOLT_MAP))
            return BOLT_ETYPE;
        out->id = f[0]->u.i;
        out->start_id = f[1]->u.i;
        out->end_id = f[2]->u.i;
        out->type = f[3]->u.s;
        out->properties = f[4];
        out->element_id = opt_string(v, 5);
        out->start_element_id = opt_string(v, 6);
        out->end_element_id = opt_string(v, 7);
        return BOLT_OK;
    }
    if (v->tag == BOLT_TAG_UNBOUND_REL && v->n >= 3) {
        if (!is_type(f[0], BOLT_INT) || !is_type(f[1], BOLT_STRING) || !is_type(f[2], BOLT_MAP))
            return BOLT_ETYPE;
        out->id = f[0]->u.i;
        out->start_id = out->end_id = -1;
        out->type = f[1]->u.s;
        out->properties = f[2];
        out->element_id = opt_string(v, 3);
        return BOLT_OK;
    }
    return BOLT_ETYPE;
}

int bolt_value_as_path(const bolt_value *v, bolt_path *out) {
    if (!bolt_value_is_struct(v, BOLT_TAG_PATH, 3)) return BOLT_ETYPE;
    bolt_value **f = v->u.items;
    if (!is_type(f[0], BOLT_LIST) || !is_type(f[1], BOLT_LIST) || !is_type(f[2], BOLT_LIST))
        return BOLT_ETYPE;
    *out = (bolt_path){f[0], f[1], f[2]};
    return BOLT_OK;
}

/* All fields of a temporal struct are ints except DateTimeZoneId's zone name. */
static int ints(const bolt_value *v, size_t n, int64_t *dst) {
    for (size_t i = 0; i < n; i++) {
        if (!is_type(v->u.items[i], BOLT_INT)) return BOLT_ETYPE;
        dst[i] = v->u.items[i]->u.i;
    }
    return BOLT_OK;
}

int bolt_value_as_temporal(const bolt_value *v, bolt_temporal *out) {
    int64_t f[3];
    if (!v || v->type != BOLT_STRUCT) return BOLT_ETYPE;
    memset(out, 0, sizeof *out);
    out->tag = v->tag;
    switch (v->tag) {
    case BOLT_TAG_DATE:
        if (v->n != 1 || ints(v, 1, f)) return BOLT_ETYPE;
        out->days = f[0];
        return BOLT_OK;
    case BOLT_TAG_TIME:
        if (v->n != 2 || ints(v, 2, f)) return BOLT_ETYPE;
        out->nanoseconds = f[0];
        out->tz_offset_seconds = f[1];
        out->has_offset = 1;
        return BOLT_OK;
    case BOLT_TAG_LOCAL_TIME:
        if (v->n != 1 || ints(v, 1, f)) return BOLT_ETYPE;
        out->nanoseconds = f[0];
        return BOLT_OK;
    case BOLT_TAG_LOCAL_DATETIME:
        if (v->n != 2 || ints(v, 2, f)) return BOLT_ETYPE;
        out->seconds = f[0];
        out->nanoseconds = f[1];
        return BOLT_OK;
    case BOLT_TAG_DATETIME:
    case BOLT_TAG_LEGACY_DATETIME:
        if (v->n != 3 || ints(v, 3, f)) return BOLT_ETYPE;
        /* Legacy DateTime carries local seconds; its offset makes it exact UTC. */
        out->seconds = v->tag == BOLT_TAG_DATETIME ? f[0] : f[0] - f[2];
        out->nanoseconds = f[1];
        out->tz_offset_seconds = f[2];
        out->has_offset = 1;
        return BOLT_OK;
    case BOLT_TAG_DATETIME_ZONE_ID:
    case BOLT_TAG_LEGACY_DATETIME_ZONE_ID:
        if (v->n != 3 || ints(v, 2, f) || !is_type(v->u.items[2], BOLT_STRING))
            return BOLT_ETYPE;
        out->seconds = f[0];
        out->nanoseconds = f[1];
        out->tz_id = v->u.items[2]->u.s;
        /* Without a zone database the legacy local time cannot be converted to UTC. */
        out->legacy_local = v->tag == BOLT_TAG_LEGACY_DATETIME_ZONE_ID;
        return BOLT_OK;
    default:
        return BOLT_ETYPE;
    }
}

int bolt_value_as_duration(const bolt_value *v, bolt_duration *out) {
    int64_t f[4];
    if (!bolt_value_is_struct(v, BOLT_TAG_DURATION, 4) || ints(v, 4, f)) return BOLT_ETYPE;
    *out = (bolt_duration){f[0], f[1], f[2], f[3]};
    return BOLT_OK;
}

int bolt_value_as_point(const bolt_value *v, bolt_point *out) {
    int dims;
    if (bolt_value_is_struct(v, BOLT_TAG_POINT2D, 3)) dims = 2;
    else if (bolt_value_is_struct(v, BOLT_TAG_POINT3D, 4)) dims = 3;
    else return BOLT_ETYPE;
    bolt_value **f = v->u.items;
    if (!is_type(f[0], BOLT_INT)) return BOLT_ETYPE;
    for (int i = 1; i <= dims; i++)
        if (!is_type(f[i], BOLT_FLOAT)) return BOLT_ETYPE;
    *out = (bolt_point){f[0]->u.i, dims, f[1]->u.f, f[2]->u.f, dims == 3 ? f[3]->u.f : 0.0};
    return BOLT_OK;
}

/* Builds a struct from already-made fields; frees them all on failure. */
static bolt_value *struct_of(uint8_t tag, size_t n, bolt_value **fields) {
    bolt_value *st = bolt_struct(tag);
    for (size_t i = 0; i < n; i++) {
        if (!st) {
            bolt_value_free(fields[i]);
            continue;
        }
        if (bolt_struct_append(st, fields[i])) {
            bolt_value_free(st);
            st = NULL;
        }
    }
    return st;
}

#define STRUCT_OF(tag, ...)                                                            \
    struct_of((tag), sizeof((bolt_value *[]){__VA_ARGS__}) / sizeof(bolt_value *),     \
              (bolt_value *[]){__VA_ARGS__})

bolt_value *bolt_date_new(int64_t days) { return STRUCT_OF(BOLT_TAG_DATE, bolt_int(days)); }

bolt_value *bolt_time_new(int64_t nanos, int64_t off) {
    return STRUCT_OF(BOLT_TAG_TIME, bolt_int(nanos), bolt_int(off));
}

bolt_value *bolt_local_time_new(int64_t nanos) {
    return STRUCT_OF(BOLT_TAG_LOCAL_TIME, bolt_int(nanos));
}

bolt_value *bolt_datetime_new(int64_t secs, int64_t nanos, int64_t off) {
    return STRUCT_OF(BOLT_TAG_DATETIME, bolt_int(secs), bolt_int(nanos), bolt_int(off));
}

bolt_value *bolt_datetime_zone_new(int64_t secs, int64_t nanos, const char *tz_id) {
    return STRUCT_OF(BOLT_TAG_DATETIME_ZONE_ID, bolt_int(secs), bolt_int(nanos),
                     bolt_string(tz_id));
}

bolt_value *bolt_local_datetime_new(int64_t secs, int64_t nanos) {
    return STRUCT_OF(BOLT_TAG_LOCAL_DATETIME, bolt_int(secs), bolt_int(nanos));
}

bolt_value *bolt_duration_new(int64_t months, int64_t days, int64_t secs, int64_t nanos) {
    return STRUCT_OF(BOLT_TAG_DURATION, bolt_int(months), bolt_int(days), bolt_int(secs),
                     bolt_int(nanos));
}

bolt_value *bolt_point2d_new(int64_t srid, double x, double y) {
    return STRUCT_OF(BOLT_TAG_POINT2D, bolt_int(srid), bolt_float(x), bolt_float(y));
}

bolt_value *bolt_point3d_new(int64_t srid, double x, double y, double z) {
    return STRUCT_OF(BOLT_TAG_POINT3D, bolt_int(srid), bolt_float(x), bolt_float(y),
                     bolt_float(z));
}

/* ------------------------------------------------------------------ encoder */

void bolt_enc_init(bolt_enc *e) { memset(e, 0, sizeof *e); }

void bolt_enc_release(bolt_enc *e) {
    free(e->p);
    bolt_enc_init(e);
}

bolt_enc *bolt_enc_new(void) { return calloc(1, sizeof(bolt_enc)); }

void bolt_enc_free(bolt_enc *e) {
    if (!e) return;
    free(e->p);
    free(e);
}

void bolt_enc_reset(bolt_enc *e) {
    e->len = 0;
    e->err = BOLT_OK;
    e->depth = e->roots = 0;
    e->untracked = false;
}

int bolt_enc_error(const bolt_enc *e) { return e->err; }
const uint8_t *bolt_enc_data(const bolt_enc *e) { return e->p; }
size_t bolt_enc_size(const bolt_enc *e) { return e->len; }

int bolt_enc_reserve(bolt_enc *e, size_t extra) {
    if (e->err) return e->err;
    if (extra > SIZE_MAX / 2 - e->len) return e->err = BOLT_ENOMEM;
    size_t need = e->len + extra;
    if (need <= e->cap) return BOLT_OK;
    size_t nc = e->cap ? e->cap : 256;
    while (nc < need) nc *= 2;
    uint8_t *p = realloc(e->p, nc);
    if (!p) return e->err = BOLT_ENOMEM;
    e->p = p;
    e->cap = nc;
    return BOLT_OK;
}

static int put_raw_slow(bolt_enc *e, const void *p, size_t n) {
    if (bolt_enc_reserve(e, n)) return e->err;
    if (n) memcpy(e->p + e->len, p, n);
    e->len += n;
    return BOLT_OK;
}

/* n bytes to d with fixed-size moves (overlapping at the end), no library call: map keys and
 * ids are most of a batch's ~100 strings per purchase, and memcpy's call cost more than their
 * copy (issue 14). The same as base_copy_short (src/base), which this room does not use: it
 * depends on libc only. */
static inline void copy_short(uint8_t *d, const char *s, size_t n) {
    uint64_t a, b;
    if (n >= 16) {
        for (size_t i = 0; i + 16 < n; i += 16) memcpy(d + i, s + i, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else {
        for (size_t i = 0; i < n; i++) d[i] = (uint8_t)s[i];
    }
}

/* Room for n more bytes with no error so far: the test every writer makes first, inline.
 * A batch's parameters are ~100 small writes per purchase; the reserve call that each made
 * was a third of the encoder's instructions (issue 14). */
static inline bool room(const bolt_enc *e, size_t n) {
    return __builtin_expect(!e->err && e->cap - e->len >= n, 1);
}

static inline int put_raw(bolt_enc *e, const void *p, size_t n) {
    if (!room(e, n)) return put_raw_slow(e, p, n);
    if (n) memcpy(e->p + e->len, p, n);     /* n == 0 may meet an encoder with no buffer */
    e->len += n;
    return BOLT_OK;
}

/* Raw bytes: the buffer use (chunking, framing); the tracker cannot follow them. */
int bolt_enc_raw(bolt_enc *e, const void *p, size_t n) {
    e->untracked = true;
    return put_raw(e, p, n);
}

/* One value begins, holding `items` values (a map's keys and values both count): the tracker
 * behind bolt_enc_complete. A few instructions per value, where walking the finished
 * encoding again cost ~45 (4.5 % of the worker's, issue 14). */
static inline void note(bolt_enc *e, uint64_t items) {
    if (e->depth == 0) e->roots++;
    else e->owed[e->depth]--;                   /* > 0: finished levels are popped below */
    if (items) {
        if (e->depth == BOLT_MAX_DEPTH) e->untracked = true;
        else e->owed[++e->depth] = items;
        return;
    }
    while (e->depth && e->owed[e->depth] == 0) e->depth--;
}

int bolt_enc_complete(const bolt_enc *e) {
    return !e->err && !e->untracked && e->depth == 0 && e->roots == 1;
}

/* A marker and the low `bytes` (1, 2, 4 or 8) bytes of v, big-endian: nine bytes stored at
 * once when there is room for them, the count advanced by what belongs. */
static int put_be(bolt_enc *e, uint8_t marker, uint64_t v, int bytes) {
    uint8_t b[9];
    uint64_t be = __builtin_bswap64(v << (8 * (8 - bytes)));
    b[0] = marker;
    memcpy(b + 1, &be, 8);
    if (!room(e, 9)) return put_raw_slow(e, b, (size_t)bytes + 1);
    memcpy(e->p + e->len, b, 9);
    e->len += (size_t)bytes + 1;
    return BOLT_OK;
}

int bolt_enc_null(bolt_enc *e) {
    note(e, 0);
    return put_raw(e, "\xC0", 1);
}

int bolt_enc_bool(bolt_enc *e, int b) {
    note(e, 0);
    return put_raw(e, b ? "\xC3" : "\xC2", 1);
}

int bolt_enc_int(bolt_enc *e, int64_t i) {
    note(e, 0);
    if (i >= -16 && i <= 127) {
        uint8_t b = (uint8_t)i;
        return put_raw(e, &b, 1);
    }
    if (i >= INT8_MIN && i <= INT8_MAX) return put_be(e, 0xC8, (uint64_t)i, 1);
    if (i >= INT16_MIN && i <= INT16_MAX) return put_be(e, 0xC9, (uint64_t)i, 2);
    if (i >= INT32_MIN && i <= INT32_MAX) return put_be(e, 0xCA, (uint64_t)i, 4);
    return put_be(e, 0xCB, (uint64_t)i, 8);
}

int bolt_enc_float(bolt_enc *e, double f) {
    note(e, 0);
    uint64_t bits;
    memcpy(&bits, &f, sizeof bits);
    return put_be(e, 0xC1, bits, 8);
}

/* Size header shared by strings, lists and maps: tiny nibble, then u8/u16/u32 markers. */
static int put_header(bolt_enc *e, uint8_t tiny, uint8_t m8, size_t n, int has_tiny) {
    if (has_tiny && n < 16) {
        uint8_t b = (uint8_t)(tiny | n);
        return put_raw(e, &b, 1);
    }
    if (n <= 0xFF) return put_be(e, m8, n, 1);
    if (n <= 0xFFFF) return put_be(e, (uint8_t)(m8 + 1), n, 2);
    if (n <= 0xFFFFFFFFu) return put_be(e, (uint8_t)(m8 + 2), n, 4);
    return e->err ? e->err : (e->err = BOLT_ELIMIT);
}

int bolt_enc_string_n(bolt_enc *e, const char *s, size_t n) {
    note(e, 0);
    if (n < 16 && (room(e, n + 1) || bolt_enc_reserve(e, n + 1) == BOLT_OK)) {
        /* keys and most values: marker and bytes at once */
        e->p[e->len] = (uint8_t)(0x80 | n);
        copy_short(e->p + e->len + 1, s, n);
        e->len += n + 1;
        return BOLT_OK;
    }
    if (n < 16) return e->err;
    if (n <= 0xFF && room(e, n + 2)) {         /* descriptions, long ids: marker, u8 size */
        e->p[e->len] = 0xD0;
        e->p[e->len + 1] = (uint8_t)n;
        copy_short(e->p + e->len + 2, s, n);
        e->len += n + 2;
        return BOLT_OK;
    }
    int rc = put_header(e, 0x80, 0xD0, n, 1);
    return rc ? rc : put_raw(e, s, n);
}

int bolt_enc_bytes(bolt_enc *e, const void *p, size_t n) {
    note(e, 0);
    if (n > INT32_MAX) return e->err ? e->err : (e->err = BOLT_ELIMIT);
    int rc = put_header(e, 0, 0xCC, n, 0);
    return rc ? rc : put_raw(e, p, n);
}

int bolt_enc_list_begin(bolt_enc *e, size_t n) {
    note(e, n);
    return put_header(e, 0x90, 0xD4, n, 1);
}

int bolt_enc_map_begin(bolt_enc *e, size_t n) {
    note(e, 2 * (uint64_t)n);
    return put_header(e, 0xA0, 0xD8, n, 1);
}

int bolt_enc_struct_begin(bolt_enc *e, uint8_t tag, size_t nfields) {
    if (nfields > 15 || tag > 127) return e->err ? e->err : (e->err = BOLT_EINVAL);
    note(e, nfields);
    uint8_t b[2] = {(uint8_t)(0xB0 | nfields), tag};
    return put_raw(e, b, 2);
}

/* A container whose count bolt_enc_finish writes later: beyond the tracker. */
static size_t open_container(bolt_enc *e, uint8_t marker) {
    size_t mark = e->len;
    e->untracked = true;
    put_be(e, marker, 0, 4);
    return mark;
}

size_t bolt_enc_list_start(bolt_enc *e) { return open_container(e, 0xD6); }
size_t bolt_enc_map_start(bolt_enc *e) { return open_container(e, 0xDA); }

int bolt_enc_finish(bolt_enc *e, size_t mark, size_t count) {
    if (e->err) return e->err;
    if (mark + 5 > e->len || (e->p[mark] != 0xD6 && e->p[mark] != 0xDA))
        return e->err = BOLT_EINVAL;
    if (count > 0xFFFFFFFFu) return e->err = BOLT_ELIMIT;
    for (int i = 0; i < 4; i++) e->p[mark + 1 + i] = (uint8_t)(count >> (8 * (3 - i)));
    return BOLT_OK;
}

int bolt_enc_value(bolt_enc *e, const bolt_value *v) {
    int rc;
    if (!v) return bolt_enc_null(e);
    switch (v->type) {
    case BOLT_NULL: return bolt_enc_null(e);
    case BOLT_BOOL: return bolt_enc_bool(e, v->u.b);
    case BOLT_INT: return bolt_enc_int(e, v->u.i);
    case BOLT_FLOAT: return bolt_enc_float(e, v->u.f);
    case BOLT_STRING: return bolt_enc_string_n(e, v->u.s, v->n);
    case BOLT_BYTES: return bolt_enc_bytes(e, v->u.s, v->n);
    case BOLT_LIST:
    case BOLT_STRUCT:
        rc = v->type == BOLT_LIST ? bolt_enc_list_begin(e, v->n)
                                  : bolt_enc_struct_begin(e, v->tag, v->n);
        for (size_t i = 0; !rc && i < v->n; i++) rc = bolt_enc_value(e, v->u.items[i]);
        return rc;
    case BOLT_MAP:
        rc = bolt_enc_map_begin(e, v->n);
        for (size_t i = 0; !rc && i < v->n; i++) {
            rc = bolt_enc_string_n(e, v->u.entries[i].key, v->u.entries[i].klen);
            if (!rc) rc = bolt_enc_value(e, v->u.entries[i].value);
        }
        return rc;
    }
    return BOLT_EINVAL;
}

/* ------------------------------------------------------------------ decoder */

typedef struct reader {
    const uint8_t *p;
    size_t len, off;
    bolt_error *err;
} reader;

static size_t remaining(const reader *r) { return r->len - r->off; }

static int need(reader *r, size_t n, const char *what) {
    if (n > remaining(r))
        return bolt_err(r->err, BOLT_EPROTO, "packstream: truncated %s at offset %zu", what,
                        r->off);
    return BOLT_OK;
}

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* Reads an n-byte big-endian length/integer after the marker. */
static int read_uint(reader *r, int n, uint64_t *v, const char *what) {
    if (need(r, (size_t)n, what)) return BOLT_EPROTO;
    *v = be(r->p + r->off, n);
    r->off += (size_t)n;
    return BOLT_OK;
}

/* Standard UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t k;
        uint32_t cp, min;
        if ((c & 0xE0) == 0xC0) { k = 1; cp = c & 0x1F; min = 0x80; }
        else if ((c & 0xF0) == 0xE0) { k = 2; cp = c & 0x0F; min = 0x800; }
        else if ((c & 0xF8) == 0xF0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (k > n - i - 1) return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k + 1;
    }
    return 1;
}

static int decode(reader *r, int depth, bolt_value **out);

static int decode_blob(reader *r, bolt_type t, size_t n, bolt_value **out) {
    if (need(r, n, t == BOLT_STRING ? "string" : "bytes")) return BOLT_EPROTO;
    const uint8_t *p = r->p + r->off;
    if (t == BOLT_STRING && !utf8_valid(p, n))
        return bolt_err(r->err, BOLT_EPROTO, "packstream: invalid UTF-8 at offset %zu", r->off);
    if (!(*out = blob_new(t, p, n))) return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
    r->off += n;
    return BOLT_OK;
}

/* Lists and structs: the claimed count is bounded by the bytes left (1 byte minimum per
 * item) before the item array is allocated. */
static int decode_items(reader *r, int depth, bolt_value *c, size_t n) {
    if (n > remaining(r))
        return bolt_err(r->err, BOLT_EPROTO, "packstream: %zu items claimed, %zu bytes left", n,
                        remaining(r));
    if (n && !(c->u.items = malloc(n * sizeof *c->u.items)))
        return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
    c->cap = n;
    for (size_t i = 0; i < n; i++) {
        int rc = decode(r, depth + 1, &c->u.items[i]);
        if (rc) return rc;
        c->n++;
    }
    return BOLT_OK;
}

static int decode_map(reader *r, int depth, bolt_value *m, size_t n) {
    if (n > remaining(r) / 2)
        return bolt_err(r->err, BOLT_EPROTO, "packstream: %zu entries claimed, %zu bytes left",
                        n, remaining(r));
    if (n && !(m->u.entries = malloc(n * sizeof *m->u.entries)))
        return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
    m->cap = n;
    for (size_t i = 0; i < n; i++) {
        bolt_value *k = NULL, *v = NULL;
        int rc = decode(r, depth + 1, &k);
        if (!rc && k->type != BOLT_STRING)
            rc = bolt_err(r->err, BOLT_EPROTO, "packstream: map key is not a string");
        if (!rc) rc = decode(r, depth + 1, &v);
        if (rc) {
            bolt_value_free(k);
            return rc;
        }
        m->u.entries[m->n++] = (map_entry){k->u.s, k->n, v};
        free(k);    /* the key's bytes moved into the entry */
    }
    return BOLT_OK;
}

static int decode_container(reader *r, int depth, bolt_type t, size_t n, bolt_value **out) {
    if (depth >= BOLT_MAX_DEPTH)
        return bolt_err(r->err, BOLT_EPROTO, "packstream: nesting deeper than %d",
                        BOLT_MAX_DEPTH);
    bolt_value *c = value_new(t);
    if (!c) return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
    int rc;
    if (t == BOLT_STRUCT) {
        if ((rc = need(r, 1, "structure tag")) == BOLT_OK) {
            c->tag = r->p[r->off++];
            if (c->tag > 127)
                rc = bolt_err(r->err, BOLT_EPROTO, "packstream: structure tag 0x%02X > 127",
                              c->tag);
        }
        if (!rc) rc = decode_items(r, depth, c, n);
    } else if (t == BOLT_LIST) {
        rc = decode_items(r, depth, c, n);
    } else {
        rc = decode_map(r, depth, c, n);
    }
    if (rc) {
        bolt_value_free(c);
        return rc;
    }
    *out = c;
    return BOLT_OK;
}

static int decode_int(reader *r, int bytes, bolt_value **out) {
    uint64_t u;
    if (read_uint(r, bytes, &u, "integer")) return BOLT_EPROTO;
    int shift = 64 - 8 * bytes;    /* sign-extend from the encoded width */
    int64_t i = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
    if (!(*out = bolt_int(i))) return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
    return BOLT_OK;
}

static int decode_sized(reader *r, int depth, uint8_t m, bolt_value **out) {
    static const struct { uint8_t base; bolt_type t; } kinds[] = {
        {0xD0, BOLT_STRING}, {0xD4, BOLT_LIST}, {0xD8, BOLT_MAP}, {0xCC, BOLT_BYTES},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        int w = m - kinds[k].base;
        if (w < 0 || w > 2) continue;
        uint64_t n;
        if (read_uint(r, 1 << w, &n, "length")) return BOLT_EPROTO;
        if (kinds[k].t == BOLT_BYTES && n > INT32_MAX)
            return bolt_err(r->err, BOLT_EPROTO, "packstream: bytes length over 2^31-1");
        if (n > remaining(r))
            return bolt_err(r->err, BOLT_EPROTO, "packstream: length %" PRIu64
                            " exceeds the %zu bytes left", n, remaining(r));
        if (kinds[k].t == BOLT_STRING || kinds[k].t == BOLT_BYTES)
            return decode_blob(r, kinds[k].t, (size_t)n, out);
        return decode_container(r, depth, kinds[k].t, (size_t)n, out);
    }
    return bolt_err(r->err, BOLT_EPROTO, "packstream: reserved marker 0x%02X at offset %zu", m,
                    r->off - 1);
}

static int decode(reader *r, int depth, bolt_value **out) {
    *out = NULL;
    if (need(r, 1, "marker")) return BOLT_EPROTO;
    uint8_t m = r->p[r->off++];
    if (m <= 0x7F || m >= 0xF0) {
        if (!(*out = bolt_int((int8_t)m))) return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
        return BOLT_OK;
    }
    switch (m >> 4) {
    case 0x8: return decode_blob(r, BOLT_STRING, m & 0x0F, out);
    case 0x9: return decode_container(r, depth, BOLT_LIST, m & 0x0F, out);
    case 0xA: return decode_container(r, depth, BOLT_MAP, m & 0x0F, out);
    case 0xB: return decode_container(r, depth, BOLT_STRUCT, m & 0x0F, out);
    default: break;
    }
    uint64_t bits;
    switch (m) {
    case 0xC0: *out = bolt_null(); break;
    case 0xC2: *out = bolt_bool(0); break;
    case 0xC3: *out = bolt_bool(1); break;
    case 0xC1:
        if (read_uint(r, 8, &bits, "float")) return BOLT_EPROTO;
        double f;
        memcpy(&f, &bits, sizeof f);
        *out = bolt_float(f);
        break;
    case 0xC8: return decode_int(r, 1, out);
    case 0xC9: return decode_int(r, 2, out);
    case 0xCA: return decode_int(r, 4, out);
    case 0xCB: return decode_int(r, 8, out);
    default: return decode_sized(r, depth, m, out);
    }
    if (!*out) return bolt_err(r->err, BOLT_ENOMEM, "out of memory");
    return BOLT_OK;
}

/* One marker (and its length bytes) of a value being skipped: how many bytes follow it and
 * how many values it contains. */
static inline int skip_marker(reader *r, uint64_t *bytes, uint64_t *items) {
    if (need(r, 1, "marker")) return BOLT_EPROTO;
    uint8_t m = r->p[r->off++];
    uint64_t n = m & 0x0F;
    *bytes = *items = 0;
    if (m <= 0x7F || m >= 0xF0 || m == 0xC0 || m == 0xC2 || m == 0xC3) return BOLT_OK;
    switch (m >> 4) {
    case 0x8: *bytes = n; return BOLT_OK;
    case 0x9: *items = n; return BOLT_OK;
    case 0xA: *items = 2 * n; return BOLT_OK;
    case 0xB: *bytes = 1; *items = n; return BOLT_OK;   /* the tag byte */
    default: break;
    }
    if (m == 0xC1) { *bytes = 8; return BOLT_OK; }
    if (m >= 0xC8 && m <= 0xCB) { *bytes = 1u << (m - 0xC8); return BOLT_OK; }
    int w, kind;   /* kind: 0 bytes/string, 1 list, 2 map */
    if (m >= 0xCC && m <= 0xCE) { w = m - 0xCC; kind = 0; }
    else if (m >= 0xD0 && m <= 0xD2) { w = m - 0xD0; kind = 0; }
    else if (m >= 0xD4 && m <= 0xD6) { w = m - 0xD4; kind = 1; }
    else if (m >= 0xD8 && m <= 0xDA) { w = m - 0xD8; kind = 2; }
    else return bolt_err(r->err, BOLT_EPROTO, "packstream: reserved marker 0x%02X", m);
    if (read_uint(r, 1 << w, &n, "length")) return BOLT_EPROTO;
    if (kind == 0) *bytes = n;
    else *items = kind == 2 ? 2 * n : n;
    return BOLT_OK;
}

/* Walks one value without building it: how pre-encoded parameters are checked to be
 * complete before they are sent (those the encoder cannot vouch for: bolt_enc_complete).
 * No allocation, same depth cap as the decoder. A loop over the values with a stack of how
 * many each open container still owes, not a call per value. */
static int skip(reader *r) {
    uint64_t owed[BOLT_MAX_DEPTH + 1];  /* owed[d]: values still to walk at depth d */
    int depth = 0;
    owed[0] = 1;
    for (;;) {
        while (owed[depth] == 0)
            if (depth-- == 0) return BOLT_OK;
        owed[depth]--;
        uint64_t bytes, items;
        if (skip_marker(r, &bytes, &items)) return BOLT_EPROTO;
        if (bytes > remaining(r) || items > remaining(r)) return need(r, SIZE_MAX, "value");
        r->off += bytes;
        if (items) {
            if (depth + 1 > BOLT_MAX_DEPTH) return BOLT_EPROTO;
            owed[++depth] = items;
        }
    }
}

int bolt_check_value(const void *data, size_t len, bolt_error *err) {
    reader r = {data, len, 0, err};
    if (skip(&r)) return BOLT_EPROTO;
    if (r.off != len) return bolt_err(err, BOLT_EPROTO, "packstream: %zu trailing bytes",
                                      len - r.off);
    return BOLT_OK;
}

int bolt_unpack(const void *data, size_t len, bolt_value **out, size_t *used, bolt_error *err) {
    reader r = {data, len, 0, err};
    *out = NULL;
    int rc = decode(&r, 0, out);
    if (rc) {
        bolt_value_free(*out);
        *out = NULL;
        return rc;
    }
    if (used) *used = r.off;
    return BOLT_OK;
}
