/* metrics.c: the metric registry and Prometheus text rendering (see metrics.h).
 *
 * Design. A registry is a list of families (one per metric name: type, help, label names)
 * each holding a list of series (one per label-value set). Series are allocated once and
 * never move or go away before the registry, so a handle is a plain pointer into one and an
 * update is an atomic on its fields: a relaxed fetch_add for counters and histogram buckets,
 * a compare-and-swap on the bit pattern for double-valued gauges and sums. The mutex guards
 * only the lists: registration appends, rendering walks. Rendering reads each atomic once;
 * a histogram's _count is the sum of the bucket counts it read, so the exposition is always
 * self-consistent even while observations race with the scrape.
 *
 * Label values are escaped and formatted once at registration, so rendering is copying.
 */
#include "metrics/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mtype { M_COUNTER, M_GAUGE, M_HISTOGRAM };

struct metrics_counter {
    atomic_uint_fast64_t v;
};

struct metrics_gauge {
    atomic_uint_fast64_t bits;          /* a double's bit pattern */
};

struct metrics_histogram {
    size_t n;                           /* bounds; counts has n + 1 slots (the last is +Inf) */
    double bounds[METRICS_MAX_BUCKETS];
    atomic_uint_fast64_t counts[METRICS_MAX_BUCKETS + 1];
    atomic_uint_fast64_t sum_bits;
};

struct series {
    struct series *next;
    char *labels;                       /* `a="x",b="y"` (no braces), "" without labels */
    union {
        struct metrics_counter c;
        struct metrics_gauge g;
        struct metrics_histogram h;
    } u;
};

struct family {
    struct family *next;
    char *name, *help;
    enum mtype type;
    char *label_names;                  /* "a,b": label names in order, for consistency checks */
    struct series *series, **tail;
};

struct metrics_registry {
    pthread_mutex_t mu;
    struct family *families, **tail;
    char err[256];
};

const double metrics_duration_buckets[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 60 };
const size_t metrics_duration_buckets_count = sizeof metrics_duration_buckets / sizeof metrics_duration_buckets[0];

static uint64_t dbl_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_dbl(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

struct metrics_registry *metrics_new_registry(void) {
    struct metrics_registry *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->tail = &r->families;
    return r;
}

void metrics_free_registry(struct metrics_registry *reg) {
    if (!reg) return;
    for (struct family *f = reg->families, *fn; f; f = fn) {
        fn = f->next;
        for (struct series *s = f->series, *sn; s; s = sn) {
            sn = s->next;
            free(s->labels);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f->label_names);
        free(f);
    }
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

const char *metrics_error(struct metrics_registry *reg) { return reg ? reg->err : "no registry"; }

static bool valid_name(const char *s, bool colon) {
    if (!s || !*s || (s[0] >= '0' && s[0] <= '9')) return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              (colon && c == ':')))
            return false;
    }
    return true;
}

/* A growing string, enough for label sets. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        while (ncap < b->len + n + 1) ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Label values escape backslash, double quote and newline (exposition format). */
static void sb_put_label_value(struct sbuf *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\') sb_puts(b, "\\\\");
        else if (*v == '"') sb_puts(b, "\\\"");
        else if (*v == '\n') sb_puts(b, "\\n");
        else sb_put(b, v, 1);
    }
}

/* Registers (or finds) one series. va holds the label pairs. */
static struct series *register_series(struct metrics_registry *reg, enum mtype type, const char *name,
                                      const char *help, const double *bounds, size_t nbounds, va_list ap) {
    struct sbuf names = { 0 }, labels = { 0 };
    struct series *s = NULL;
    int nlabels = 0;
    bool ok = true;

    if (!reg) return NULL;
    pthread_mutex_lock(&reg->mu);
    reg->err[0] = '\0';
    if (!valid_name(name, true)) {
        snprintf(reg->err, sizeof reg->err, "metrics: invalid metric name \"%s\"", name ? name : "(null)");
        goto out;
    }
    sb_puts(&names, "");
    sb_puts(&labels, "");
    for (;;) {
        const char *ln = va_arg(ap, const char *);
        if (!ln) break;
        const char *lv = va_arg(ap, const char *);
        if (!valid_name(ln, false) || strncmp(ln, "__", 2) == 0 || (type == M_HISTOGRAM && strcmp(ln, "le") == 0)) {
            snprintf(reg->err, sizeof reg->err, "metrics: %s: invalid label name \"%s\"", name, ln);
            ok = false;
            break;
        }
        if (++nlabels > METRICS_MAX_LABELS) {
            snprintf(reg->err, sizeof reg->err, "metrics: %s: more than %d labels", name, METRICS_MAX_LABELS);
            ok = false;
            break;
        }
        if (nlabels > 1) { sb_puts(&names, ","); sb_puts(&labels, ","); }
        sb_puts(&names, ln);
        sb_puts(&labels, ln);
        sb_puts(&labels, "=\"");
        sb_put_label_value(&labels, lv ? lv : "");
        sb_puts(&labels, "\"");
    }
    if (!ok) goto out;
    if (names.oom || labels.oom) { snprintf(reg->err, sizeof reg->err, "metrics: out of memory"); goto out; }
    if (type == M_HISTOGRAM) {
        if (nbounds == 0 || nbounds > METRICS_MAX_BUCKETS) {
            snprintf(reg->err, sizeof reg->err, "metrics: %s: between 1 and %d buckets needed", name, METRICS_MAX_BUCKETS);
            goto out;
        }
        for (size_t i = 0; i < nbounds; i++) {
            if (!isfinite(bounds[i]) || (i && bounds[i] <= bounds[i - 1])) {
                snprintf(reg->err, sizeof reg->err, "metrics: %s: bucket bounds must be finite and increasing", name);
                goto out;
            }
        }
    }

    struct family *f;
    for (f = reg->families; f && strcmp(f->name, name) != 0; f = f->next) {}
    if (f) {
        if (f->type != type || strcmp(f->label_names, names.p) != 0) {
            snprintf(reg->err, sizeof reg->err, "metrics: %s: registered before with another type or label names", name);
            goto out;
        }
    } else {
        f = calloc(1, sizeof *f);
        if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help ? help : ""))) {
            if (f) { free(f->name); free(f); }
            snprintf(reg->err, sizeof reg->err, "metrics: out of memory");
            goto out;
        }
        f->type = type;
        f->label_names = names.p;
        names.p = NULL;
        f->tail = &f->series;
        *reg->tail = f;
        reg->tail = &f->next;
    }
    for (s = f->series; s && strcmp(s->labels, labels.p) != 0; s = s->next) {}
    if (s) {
        if (type == M_HISTOGRAM && (s->u.h.n != nbounds || memcmp(s->u.h.bounds, bounds, nbounds * sizeof *bounds))) {
            snprintf(reg->err, sizeof reg->err, "metrics: %s: registered before with other buckets", name);
            s = NULL;
        }
        goto out;
    }
    if (type == M_HISTOGRAM && f->series &&
        (f->series->u.h.n != nbounds || memcmp(f->series->u.h.bounds, bounds, nbounds * sizeof *bounds))) {
        snprintf(reg->err, sizeof reg->err, "metrics: %s: every series of a histogram needs the same buckets", name);
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) { snprintf(reg->err, sizeof reg->err, "metrics: out of memory"); goto out; }
    s->labels = labels.p;
    labels.p = NULL;
    if (type == M_HISTOGRAM) {
        s->u.h.n = nbounds;
        memcpy(s->u.h.bounds, bounds, nbounds * sizeof *bounds);
        atomic_store(&s->u.h.sum_bits, dbl_bits(0.0));
    } else if (type == M_GAUGE) {
        atomic_store(&s->u.g.bits, dbl_bits(0.0));
    }
    *f->tail = s;
    f->tail = &s->next;
out:
    pthread_mutex_unlock(&reg->mu);
    free(names.p);
    free(labels.p);
    return s;
}

struct metrics_counter *metrics_register_counter(struct metrics_registry *reg, const char *name, const char *help, ...) {
    va_list ap;
    va_start(ap, help);
    struct series *s = register_series(reg, M_COUNTER, name, help, NULL, 0, ap);
    va_end(ap);
    return s ? &s->u.c : NULL;
}

struct metrics_gauge *metrics_register_gauge(struct metrics_registry *reg, const char *name, const char *help, ...) {
    va_list ap;
    va_start(ap, help);
    struct series *s = register_series(reg, M_GAUGE, name, help, NULL, 0, ap);
    va_end(ap);
    return s ? &s->u.g : NULL;
}

struct metrics_histogram *metrics_register_histogram(struct metrics_registry *reg, const char *name, const char *help,
                                                     const double *bounds, size_t nbounds, ...) {
    va_list ap;
    va_start(ap, nbounds);
    struct series *s = register_series(reg, M_HISTOGRAM, name, help, bounds, nbounds, ap);
    va_end(ap);
    return s ? &s->u.h : NULL;
}

/* ---- updates (lock-free) ------------------------------------------------------------------------ */

void metrics_inc_counter(struct metrics_counter *c) {
    if (c) atomic_fetch_add_explicit(&c->v, 1, memory_order_relaxed);
}

void metrics_add_counter(struct metrics_counter *c, uint64_t n) {
    if (c) atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t metrics_read_counter(const struct metrics_counter *c) {
    return c ? atomic_load_explicit(&((struct metrics_counter *)c)->v, memory_order_relaxed) : 0;
}

void metrics_set_gauge(struct metrics_gauge *g, double v) {
    if (g) atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

static void add_double(atomic_uint_fast64_t *bits, double delta) {
    uint_fast64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, dbl_bits(bits_dbl(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {}
}

void metrics_add_gauge(struct metrics_gauge *g, double delta) {
    if (g) add_double(&g->bits, delta);
}

double metrics_read_gauge(const struct metrics_gauge *g) {
    return g ? bits_dbl(atomic_load_explicit(&((struct metrics_gauge *)g)->bits, memory_order_relaxed)) : 0.0;
}

void metrics_observe(struct metrics_histogram *h, double v) {
    if (!h || isnan(v)) return;
    size_t lo = 0, hi = h->n;          /* first bound >= v (le is "less or equal") */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->bounds[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    add_double(&h->sum_bits, v);
}

/* ---- rendering ----------------------------------------------------------------------------------- */

/* Go-style float text: shortest round-tripping %g, and NaN / +Inf / -Inf. */
static void fmt_value(char *out, size_t len, double d) {
    if (isnan(d)) { snprintf(out, len, "NaN"); return; }
    if (isinf(d)) { snprintf(out, len, d > 0 ? "+Inf" : "-Inf"); return; }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, d);
        if (strtod(out, NULL) == d) return;
    }
}

static void put_help(FILE *out, const char *help) {
    for (; *help; help++) {
        if (*help == '\\') fputs("\\\\", out);
        else if (*help == '\n') fputs("\\n", out);
        else fputc(*help, out);
    }
}

static void put_sample(FILE *out, const char *name, const char *suffix, const char *labels,
                       const char *extra, const char *value) {
    fputs(name, out);
    fputs(suffix, out);
    if (*labels || extra) {
        fputc('{', out);
        fputs(labels, out);
        if (extra) {
            if (*labels) fputc(',', out);
            fputs(extra, out);
        }
        fputc('}', out);
    }
    fputc(' ', out);
    fputs(value, out);
    fputc('\n', out);
}

int metrics_render(struct metrics_registry *reg, char **out, size_t *len) {
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    char *buf = NULL;
    size_t blen = 0;
    char v[64], le[96];
    FILE *m = open_memstream(&buf, &blen);
    if (!m) return -1;
    if (reg) {
        pthread_mutex_lock(&reg->mu);
        for (struct family *f = reg->families; f; f = f->next) {
            if (!f->series) continue;
            fprintf(m, "# HELP %s ", f->name);
            put_help(m, f->help);
            fprintf(m, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
            for (struct series *s = f->series; s; s = s->next) {
                switch (f->type) {
                case M_COUNTER:
                    snprintf(v, sizeof v, "%llu", (unsigned long long)metrics_read_counter(&s->u.c));
                    put_sample(m, f->name, "", s->labels, NULL, v);
                    break;
                case M_GAUGE:
                    fmt_value(v, sizeof v, metrics_read_gauge(&s->u.g));
                    put_sample(m, f->name, "", s->labels, NULL, v);
                    break;
                case M_HISTOGRAM: {
                    const struct metrics_histogram *h = &s->u.h;
                    unsigned long long cum = 0;
                    for (size_t i = 0; i <= h->n; i++) {
                        cum += atomic_load_explicit(&((struct metrics_histogram *)h)->counts[i], memory_order_relaxed);
                        char b[48];
                        if (i < h->n) fmt_value(b, sizeof b, h->bounds[i]);
                        else snprintf(b, sizeof b, "+Inf");
                        snprintf(le, sizeof le, "le=\"%s\"", b);
                        snprintf(v, sizeof v, "%llu", cum);
                        put_sample(m, f->name, "_bucket", s->labels, le, v);
                    }
                    fmt_value(v, sizeof v, bits_dbl(atomic_load_explicit(&((struct metrics_histogram *)h)->sum_bits,
                                                                          memory_order_relaxed)));
                    put_sample(m, f->name, "_sum", s->labels, NULL, v);
                    snprintf(v, sizeof v, "%llu", cum);
                    put_sample(m, f->name, "_count", s->labels, NULL, v);
                    break;
                }
                }
            }
        }
        pthread_mutex_unlock(&reg->mu);
    }
    if (fclose(m) != 0 || !buf) {
        free(buf);
        return -1;
    }
    *out = buf;
    if (len) *len = blen;
    return 0;
}
