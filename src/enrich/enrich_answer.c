/* src/enrich/enrich_answer.c: the services' JSON answers read as events, into enrich_values.
 *
 * What: enrich_answer_products() and enrich_answer_retailer() (enrich_answer.h) read a FIDO
 * batchGet answer or a Retailer answer in one pass of yajl's event parser, keeping only the
 * fields the graph needs, and fill the callers' enrich_values.
 *
 * Why yajl's events and not jansson's tree: building a jansson tree of each answer (an
 * allocation per value, a hash table per object) and freeing it was 9-24 % of the worker's
 * instructions per receipt when products were not cached (issue 14); jansson's lexer alone
 * costs ~190 instructions per byte of a 100-product answer, yajl ~30. yajl is Debian's
 * libyajl2 (2.1.0, upstream quiet since; Debian 12 carries its security fixes); jansson stays
 * the reference: tests/fuzz/enrich_answer.c reads every input with both and requires the
 * same verdict and the same values.
 *
 * What is accepted is exactly what the jansson reading accepted (json_loadb with no flags):
 * yajl alone is looser in these places, each closed here so that a value is what the wire
 * says:
 *   - strings: yajl checks only that UTF-8 continuation bytes are continuation bytes (it
 *     passes overlongs, surrogates and code points past U+10FFFF), and decodes \u0000 into a
 *     NUL that a C string would cut at: every string and key is checked with
 *     base_utf8_fault, which refuses all of these;
 *   - a \uD800-\uDBFF escape not followed by a \uDC00-\uDFFF one becomes "?" (or is paired
 *     with whatever follows): escapes are checked before parsing (check_escapes);
 *   - vertical tab and form feed count as white space: they are refused (JSON has neither
 *     outside strings, and inside strings every control character is refused anyway);
 *   - the top value may be a scalar: refused ('[' or '{' expected);
 *   - text after the top value that ends inside a token (`{} "x`) passes: only white space
 *     may follow the top value (found by tests/fuzz/enrich_answer);
 *   - nesting is unbounded, and -9223372036854775808 overflows: numbers are taken as text
 *     and checked as jansson does (an integer must fit in 64 bits, a real must not overflow
 *     to infinity), and a value deeper than jansson's 2048 is refused.
 * Stricter than jansson in one place: jansson skips a NUL byte that directly follows a
 * number or a literal ({"a":1\0} reads as {"a":1}); a NUL byte is no JSON white space, and
 * yajl refuses it, as the specification says (found by the fuzz target).
 * Duplicate keys: the last one wins, as in jansson (a second "products" array replaces the
 * first whole, so the first one's products are kept aside until the document ends).
 */
#include "enrich/enrich_answer.h"

#include "base/base.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#define MAX_DEPTH 2048                  /* jansson's JSON_PARSER_MAX_DEPTH */

enum fstate { F_ABSENT, F_NULL, F_STR, F_BAD };

struct span {
    size_t off, len;                    /* in the parse's text buffer */
};

struct field {
    enum fstate st;
    struct span s;
};

struct cats {
    enum fstate st;                     /* F_STR: n spans from cat[first] */
    size_t first, n;
};

/* One element of the products array, or the retailer's top object. */
struct entry {
    bool object;
    struct field fido, name, extra;
    struct cats cats;
};

enum key { K_OTHER, K_PRODUCTS, K_FIDO, K_NAME, K_EXTRA, K_CATS };

struct parse {
    bool products;                      /* a batchGet answer; else a retailer */
    unsigned depth;                     /* containers open */
    enum key key;                       /* of the field whose value comes next */
    bool root_object, have_products, products_array;
    bool in_products, in_cats;          /* the products array / a categories array is open */
    struct entry *cur;                  /* the object whose fields are read, or NULL */
    struct entry *ent;
    size_t nent, capent;
    struct span *cat;
    size_t ncat, capcat;
    char *text;
    size_t tlen, tcap;
    const char *fault;                  /* why the answer is refused, when it is ours */
    bool oom;
    yajl_handle h;
    size_t end;                         /* offset just past the top value, once it closed */
};

/* ------------------------------------------------------------------ storage */

static bool grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * size);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}

static int stop_oom(struct parse *p) {
    p->oom = true;
    return 0;                           /* 0 cancels the parse */
}

static bool keep_text(struct parse *p, const unsigned char *s, size_t n, struct span *out) {
    /* one byte more: the buffer exists even when every string so far is empty */
    if (!grow((void **)&p->text, &p->tcap, p->tlen + n + 1, 1)) return false;
    if (n) memcpy(p->text + p->tlen, s, n);
    *out = (struct span){p->tlen, n};
    p->tlen += n;
    return true;
}

/* ------------------------------------------------------------------ what each value is */

/* The depth of the keys whose values are read: a product's (in the products array) or the
 * retailer's (the top object). */
static unsigned field_depth(const struct parse *p) { return p->products ? 3 : 1; }

enum vkind { V_STRING, V_NULL, V_SCALAR, V_MAP, V_ARRAY };

/* A field of the object being read takes the value v. */
static int set_field(struct parse *p, struct entry *e, enum vkind v, const unsigned char *s,
                     size_t n) {
    if (p->key == K_CATS) {
        e->cats = (struct cats){v == V_NULL ? F_NULL : v == V_ARRAY ? F_STR : F_BAD, p->ncat, 0};
        p->in_cats = v == V_ARRAY;
        return 1;
    }
    struct field *f = p->key == K_FIDO ? &e->fido : p->key == K_NAME ? &e->name : &e->extra;
    f->st = v == V_STRING ? F_STR : v == V_NULL ? F_NULL : F_BAD;
    if (v == V_STRING && !keep_text(p, s, n, &f->s)) return stop_oom(p);
    return 1;
}

static int category(struct parse *p, enum vkind v, const unsigned char *s, size_t n) {
    struct cats *c = &p->cur->cats;
    if (v != V_STRING) {
        c->st = F_BAD;
        return 1;
    }
    if (!grow((void **)&p->cat, &p->capcat, p->ncat + 1, sizeof *p->cat) ||
        !keep_text(p, s, n, &p->cat[p->ncat]))
        return stop_oom(p);
    p->ncat++;
    c->n++;
    return 1;
}

/* A new products array: whatever an earlier one held is dropped (the last key wins). */
static void products_value(struct parse *p, enum vkind v) {
    p->have_products = true;
    p->products_array = p->in_products = v == V_ARRAY;
    p->nent = p->ncat = p->tlen = 0;
}

static int element(struct parse *p, enum vkind v) {
    if (!grow((void **)&p->ent, &p->capent, p->nent + 1, sizeof *p->ent)) return stop_oom(p);
    struct entry *e = &p->ent[p->nent++];
    *e = (struct entry){.object = v == V_MAP};
    if (v == V_MAP) p->cur = e;
    return 1;
}

/* Every value, scalar or container, before it is entered: where it is decides what it is. */
static int value(struct parse *p, enum vkind v, const unsigned char *s, size_t n) {
    unsigned d = p->depth;
    if (d + 1 > MAX_DEPTH) {
        p->fault = "maximum parsing depth reached";
        return 0;
    }
    if (d == 0) {
        if (v != V_MAP && v != V_ARRAY) {
            p->fault = "'[' or '{' expected";
            return 0;
        }
        p->root_object = v == V_MAP;
        if (p->root_object && !p->products) return element(p, v);  /* the retailer */
        return 1;
    }
    if (p->products && d == 1 && p->key == K_PRODUCTS) products_value(p, v);
    else if (p->products && d == 2 && p->in_products) return element(p, v);
    else if (p->cur && d == field_depth(p) && p->key != K_OTHER)
        return set_field(p, p->cur, v, s, n);
    else if (p->in_cats && d == 4) return category(p, v, s, n);
    return 1;
}

/* ------------------------------------------------------------------ yajl's callbacks */

static int text_ok(struct parse *p, const unsigned char *s, size_t n) {
    const char *why = base_utf8_fault(s, n);
    if (why)
        p->fault = !strcmp(why, "holds U+0000") ? "a string holds U+0000" : "a string is not valid UTF-8";
    return !why;
}

static int on_null(void *ctx) { return value(ctx, V_NULL, NULL, 0); }
static int on_boolean(void *ctx, int b) {
    (void)b;
    return value(ctx, V_SCALAR, NULL, 0);
}

/* A number as jansson reads it: an integer must fit in 64 bits, a real not overflow. */
static int on_number(void *ctx, const char *s, size_t n) {
    struct parse *p = ctx;
    char buf[64], *end, *copy = n < sizeof buf ? buf : malloc(n + 1);
    if (!copy) return stop_oom(p);
    memcpy(copy, s, n);
    copy[n] = '\0';
    errno = 0;
    bool real = strpbrk(copy, ".eE") != NULL, bad;
    if (real) {
        double x = strtod(copy, &end);
        bad = errno == ERANGE && isinf(x);
    } else {
        (void)strtoll(copy, &end, 10);
        bad = errno == ERANGE;
    }
    if (copy != buf) free(copy);
    if (bad) {
        p->fault = real ? "real number overflow" : "too big integer";
        return 0;
    }
    return value(p, V_SCALAR, NULL, 0);
}

static int on_string(void *ctx, const unsigned char *s, size_t n) {
    return text_ok(ctx, s, n) && value(ctx, V_STRING, s, n);
}

static bool key_is(const unsigned char *s, size_t n, const char *name) {
    return strlen(name) == n && !memcmp(s, name, n);
}

static enum key key_of(const struct parse *p, const unsigned char *s, size_t n) {
    if (p->products && p->depth == 1) return key_is(s, n, "products") ? K_PRODUCTS : K_OTHER;
    if (!p->cur || p->depth != field_depth(p)) return K_OTHER;
    if (key_is(s, n, "name")) return K_NAME;
    if (key_is(s, n, p->products ? "brand" : "store_type")) return K_EXTRA;
    if (p->products && key_is(s, n, "fido")) return K_FIDO;
    if (p->products && key_is(s, n, "categories")) return K_CATS;
    return K_OTHER;
}

static int on_key(void *ctx, const unsigned char *s, size_t n) {
    struct parse *p = ctx;
    if (!text_ok(p, s, n)) return 0;
    p->key = key_of(p, s, n);
    return 1;
}

static int open_container(struct parse *p, enum vkind v) {
    if (!value(p, v, NULL, 0)) return 0;
    p->depth++;
    return 1;
}

static int on_start_map(void *ctx) { return open_container(ctx, V_MAP); }
static int on_start_array(void *ctx) { return open_container(ctx, V_ARRAY); }

static int close_container(struct parse *p) {
    unsigned d = p->depth--;
    if (d == 1) p->end = yajl_get_bytes_consumed(p->h);
    if (d == field_depth(p)) p->cur = NULL;             /* a product / the retailer */
    if (p->products && d == 2) p->in_products = false;
    if (d == 4) p->in_cats = false;
    return 1;
}

static int on_end(void *ctx) { return close_container(ctx); }

static const yajl_callbacks CALLBACKS = {
    .yajl_null = on_null, .yajl_boolean = on_boolean, .yajl_number = on_number,
    .yajl_string = on_string, .yajl_start_map = on_start_map, .yajl_map_key = on_key,
    .yajl_end_map = on_end, .yajl_start_array = on_start_array, .yajl_end_array = on_end};

/* ------------------------------------------------------------------ before and after */

static int hex4(const char *s, const char *end) {
    int v = 0;
    if (end - s < 4) return -1;
    for (int i = 0; i < 4; i++) {
        int c = (unsigned char)s[i], d = c >= '0' && c <= '9' ? c - '0'
                                       : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                                                : -1;
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

/* What yajl would let through: a high surrogate escape not followed by a low one, a
 * vertical tab or a form feed. Escapes pair up from the left (an escaped backslash is two
 * characters), so this finds the string escapes of any JSON text yajl accepts. */
static const char *check_escapes(const char *s, size_t len) {
    const char *end = s + len;
    if (memchr(s, '\v', len) || memchr(s, '\f', len)) return "invalid character";
    for (const char *q = memchr(s, '\\', len); q; q = memchr(q, '\\', (size_t)(end - q))) {
        if (end - q < 2 || q[1] != 'u') {
            q += end - q < 2 ? 1 : 2;
            continue;
        }
        int cp = hex4(q + 2, end);
        q += cp < 0 ? 2 : 6;            /* not 4 hex digits: yajl refuses it */
        if (cp < 0xD800 || cp > 0xDBFF) continue;
        if (end - q < 2 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, end) < 0xDC00 ||
            hex4(q + 2, end) > 0xDFFF)
            return "invalid Unicode escape (a lone surrogate)";
        q += 6;
    }
    return NULL;
}

static bool only_white_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
    return true;
}

static void parse_free(struct parse *p) {
    free(p->ent);
    free(p->cat);
    free(p->text);
}

/* Parses body into p; 0, -1 malformed (message in err, after `what`), -2 out of memory. */
static int run(struct parse *p, const char *body, size_t len, const char *what, char *err,
               size_t errlen) {
    const char *pre = check_escapes(body, len);
    if (pre) return base_errf(err, errlen, "malformed JSON from %s: %s", what, pre);
    yajl_handle h = p->h = yajl_alloc(&CALLBACKS, NULL, p);
    if (!h) return -2;
    yajl_status st = yajl_parse(h, (const unsigned char *)body, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(h);
    int rc = 0;
    if (st == yajl_status_ok && !only_white_space(body + p->end, len - p->end)) {
        rc = base_errf(err, errlen, "malformed JSON from %s: end of file expected", what);
    } else if (p->oom) {
        rc = -2;
    } else if (st != yajl_status_ok && p->fault) {
        rc = base_errf(err, errlen, "malformed JSON from %s: %s", what, p->fault);
    } else if (st != yajl_status_ok) {
        unsigned char *m = yajl_get_error(h, 0, NULL, 0);
        size_t ml = m ? strcspn((char *)m, "\n") : 0;
        rc = base_errf(err, errlen, "malformed JSON from %s: %.*s", what, (int)ml,
                       m ? (char *)m : "?");
        if (m) yajl_free_error(h, m);
    }
    yajl_free(h);
    return rc;
}

/* Bytes a field takes in a value's block: absent, null and "" take none (contract: absent
 * values are absent, never empty strings). */
static size_t field_bytes(const struct field *f) {
    return f->st == F_STR && f->s.len ? f->s.len + 1 : 0;
}

static char *put_text(const struct parse *p, const struct span *s, char **strs) {
    char *d = memcpy(*strs, p->text + s->off, s->len);
    d[s->len] = '\0';
    *strs += s->len + 1;
    return d;
}

static char *put_field(const struct parse *p, const struct field *f, char **strs) {
    return field_bytes(f) ? put_text(p, &f->s, strs) : NULL;
}

/* The fields of e into v (known), packed into one block as enrich_cache.h lays it out (the
 * categories array, then the strings): one allocation per value, where a string each made the
 * cache's copy and the frees cost ~1 k instructions per receipt (issue 14). -1 malformed (a
 * field of another type), -2 out of memory. */
static int fill(const struct parse *p, const struct entry *e, struct enrich_value *v) {
    if (e->name.st == F_BAD || e->extra.st == F_BAD || (p->products && e->cats.st == F_BAD))
        return -1;
    size_t ncat = p->products && e->cats.st == F_STR ? e->cats.n : 0;
    size_t bytes = field_bytes(&e->name) + field_bytes(&e->extra);
    for (size_t i = 0; i < ncat; i++) bytes += p->cat[e->cats.first + i].len + 1;
    v->known = true;
    if (!bytes && !ncat) return 0;
    char **ptrs, *strs;
    void *block = enrich_block_new(ncat, bytes, &ptrs, &strs);
    if (!block) return -2;
    v->block = block;
    v->block_strings = bytes;
    v->name = put_field(p, &e->name, &strs);
    v->extra = put_field(p, &e->extra, &strs);
    if (ncat) {
        v->categories = ptrs;
        for (size_t i = 0; i < ncat; i++) v->categories[i] = put_text(p, &p->cat[e->cats.first + i], &strs);
        v->categories_count = ncat;
    }
    return 0;
}

static int cmp_id(const void *key, const void *elem) {
    return strcmp(key, *(const char *const *)elem);
}

/* The products in the order they came, as the jansson reading took them: the first one
 * without a fido string, or the first malformed one asked for, makes the answer malformed. */
static int apply_products(const struct parse *p, const char *const *ids, size_t n,
                          struct enrich_value *vals, char *err, size_t errlen) {
    if (!p->root_object || !p->have_products || !p->products_array)
        return base_errf(err, errlen, "FIDO service answer has no \"products\" array");
    for (size_t i = 0; i < p->nent; i++) {
        const struct entry *e = &p->ent[i];
        if (!e->object || e->fido.st != F_STR)
            return base_errf(err, errlen, "FIDO service product #%zu has no \"fido\" string", i);
        char *fido = strndup(p->text + e->fido.s.off, e->fido.s.len);
        if (!fido) return -2;
        const char *const *hit = bsearch(fido, ids, n, sizeof *ids, cmp_id);
        int rc = 0;
        if (hit) {                      /* else not asked for: ignored */
            struct enrich_value *v = &vals[hit - ids];
            enrich_value_clear(v);      /* a repeated fido: the last one wins */
            rc = fill(p, e, v);
            if (rc == -1)
                base_errf(err, errlen, "FIDO service product %s has a malformed field", fido);
        }
        free(fido);
        if (rc != 0) return rc;
    }
    return 0;
}

static void clear_all(struct enrich_value *vals, size_t n) {
    for (size_t i = 0; i < n; i++) enrich_value_clear(&vals[i]);
}

int enrich_answer_products(const char *body, size_t len, const char *const *ids, size_t n,
                           struct enrich_value *vals, char *err, size_t errlen) {
    struct parse p = {.products = true};
    int rc = run(&p, body, len, "FIDO service", err, errlen);
    if (rc == 0) rc = apply_products(&p, ids, n, vals, err, errlen);
    if (rc == -2) base_errf(err, errlen, "FIDO service answer: out of memory");
    if (rc != 0) clear_all(vals, n);
    parse_free(&p);
    return rc;
}

int enrich_answer_retailer(const char *body, size_t len, const char *id, struct enrich_value *v,
                           char *err, size_t errlen) {
    struct parse p = {.products = false};
    int rc = run(&p, body, len, "Retailer Service", err, errlen);
    if (rc == 0 && (!p.root_object || (rc = fill(&p, &p.ent[0], v)) == -1))
        rc = base_errf(err, errlen, "Retailer Service answer for %s is malformed", id);
    if (rc == -2) base_errf(err, errlen, "Retailer Service answer: out of memory");
    if (rc != 0) enrich_value_clear(v);
    parse_free(&p);
    return rc;
}
