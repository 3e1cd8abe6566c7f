/* log.c: formatting and writing of structured log lines (see log.h for the interface).
 *
 * Design. A line is built in a buffer that starts on the stack (enough for nearly every
 * line the worker writes) and moves to the heap only for long lines, then goes out with one
 * write(2). No lock: the configuration is written once before threads start, the level is an
 * atomic, and each call owns its buffer, so the per-record hot path costs a clock read, some
 * copying and one system call.
 *
 * Escaping. Both formats must survive arbitrary bytes in values (Cypher errors, record ids
 * from producers, payload snippets): quotes, backslashes, newlines (which would split one
 * event into two Loki lines), control bytes and invalid UTF-8. Both formats use the same
 * JSON-style escapes inside quotes (\" \\ \n \r \t \u00XX); invalid UTF-8 becomes U+FFFD so a
 * JSON line is always valid JSON. In logfmt a value is quoted when it is empty or holds
 * anything but printable ASCII other than '=' and '"'; keys are written bare, with any byte
 * that logfmt cannot carry in a key replaced by '_'.
 *
 * Held lines. A thread that logs a line per record (the consumer thread: a [WARN] per skipped
 * receipt, a [SUCCESS] per purchase) may hold its lines between log_hold() and log_release():
 * they collect in a thread-local buffer of PIPE_BUF bytes, whole lines only, and go out in
 * one write(2) when it is full, at log_flush() (the engine calls it before anything that may
 * block: a remote call, a retry wait, a wait for its writer), at release, and before any
 * [ERROR] line or outage report, which are never held. One system call per ~15 lines instead
 * of one per line: 5 % of the worker's CPU on a receipt backlog (issue 14). A write of at
 * most PIPE_BUF bytes is atomic on a pipe, so lines of different threads still never mix.
 *
 * Bounds and secrets. Each value is cut at LOG_VALUE_MAX bytes with the cut marked and the
 * original length given (a 10 000-character record id costs about 1 KB, not 10), and any
 * value holding a URL with credentials goes through the one redactor of src/http first.
 */
#include "log/log.h"

#include "base/base.h"
#include "http/http_url.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_SERVICE_MAX 128
#define LOG_STACK_BUF 2048
#define LOG_VARARG_FIELDS_MAX 32

static struct {
    enum log_format format;
    atomic_int min_level;
    int fd;
    char service[LOG_SERVICE_MAX];
    atomic_uint gen;                /* raised by log_configure: the threads' heads are stale */
} log_cfg = { LOG_FORMAT_LOGFMT, LOG_INFO, 1, "consumer-graph-worker", 1 };

static const char *const log_level_names[] = { "debug", "info", "warn", "error" };

void log_configure(enum log_format format, enum log_level min_level, const char *service_name) {
    log_cfg.format = format;
    atomic_store(&log_cfg.min_level, (int)min_level);
    if (service_name) snprintf(log_cfg.service, sizeof log_cfg.service, "%s", service_name);
    if (atomic_fetch_add(&log_cfg.gen, 1) + 1 == 0) atomic_store(&log_cfg.gen, 1);   /* 0: empty */
}

void log_set_level(enum log_level min_level) { atomic_store(&log_cfg.min_level, (int)min_level); }
void log_set_output(int fd) { log_cfg.fd = fd; }

bool log_enabled(enum log_level level) {
    return (int)level >= atomic_load_explicit(&log_cfg.min_level, memory_order_relaxed);
}

const char *log_level_name(enum log_level level) {
    if ((unsigned)level > LOG_ERROR) return "error";
    return log_level_names[level];
}

int log_parse_level(const char *s, enum log_level *out) {
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++) {
        if (s && strcmp(s, log_level_names[i]) == 0) { *out = (enum log_level)i; return 0; }
    }
    return -1;
}

int log_parse_format(const char *s, enum log_format *out) {
    if (s && strcmp(s, "logfmt") == 0) { *out = LOG_FORMAT_LOGFMT; return 0; }
    if (s && strcmp(s, "json") == 0) { *out = LOG_FORMAT_JSON; return 0; }
    return -1;
}

/* ---- line buffer ------------------------------------------------------------------------ */

/* Writes go to the caller's storage while it lasts, then to a heap copy. When the heap is
 * not available (or the caller only wants the length, as log_format_line does) bytes past
 * the end are counted but dropped: the line is then cut rather than lost. */
struct lbuf {
    char *p;
    size_t len, cap;
    bool heap, fixed;
};

static void lb_put_slow(struct lbuf *b, const char *s, size_t n) {
    if (b->len + n > b->cap && !b->fixed) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->len + n) ncap *= 2;
        char *np = b->heap ? realloc(b->p, ncap) : malloc(ncap);
        if (np) {
            if (!b->heap) memcpy(np, b->p, b->len < b->cap ? b->len : b->cap);
            b->p = np;
            b->cap = ncap;
            b->heap = true;
        } else {
            b->fixed = true;
        }
    }
    if (b->len < b->cap) {
        size_t room = b->cap - b->len;
        memcpy(b->p + b->len, s, n < room ? n : room);
    }
    b->len += n;
}

/* The common case inline: the bytes fit. A per-record line is ~30 writes, most of a few
 * bytes; a call and a memcpy call each were a fifth of the line's cost (issue 14), hence
 * base_copy_short's fixed-size moves. */
static inline void lb_put(struct lbuf *b, const char *s, size_t n) {
    if (__builtin_expect(b->cap - b->len >= n && b->len <= b->cap, 1)) {
        base_copy_short(b->p + b->len, s, n);
        b->len += n;
        return;
    }
    lb_put_slow(b, s, n);
}

static inline void lb_putc(struct lbuf *b, char c) {
    if (__builtin_expect(b->len < b->cap, 1)) {
        b->p[b->len++] = c;
        return;
    }
    lb_put_slow(b, &c, 1);
}

static inline void lb_puts(struct lbuf *b, const char *s) { lb_put(b, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not valid
 * UTF-8 (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
    else return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return n;
}

/* Appends s escaped for the inside of a double-quoted string (both formats). Input past
 * LOG_VALUE_MAX bytes is cut at a character boundary and marked with LOG_CUT_MARK and the
 * original length in bytes ("...[cut, 10000 bytes]"). */
static void lb_put_escaped(struct lbuf *b, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    bool cut = false;
    size_t full = n;
    if (n > LOG_VALUE_MAX) { n = LOG_VALUE_MAX; cut = true; }
    size_t i = 0, run = 0;   /* run: start of the pending stretch of bytes copied verbatim */
    while (i < n) {
        unsigned char c = s[i];
        const char *esc = NULL;
        char ubuf[8];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') { i++; continue; }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(s + i, n - i);
            if (k) { i += k; continue; }
            /* a sequence cut by LOG_VALUE_MAX is dropped, not replaced */
            if (cut && n - i < 4 && (c & 0xC0) == 0xC0) { lb_put(b, (const char *)s + run, i - run); run = i = n; break; }
            esc = "\\ufffd";
        } else if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else { snprintf(ubuf, sizeof ubuf, "\\u%04x", c); esc = ubuf; }
        lb_put(b, (const char *)s + run, i - run);
        lb_puts(b, esc);
        run = ++i;
    }
    lb_put(b, (const char *)s + run, n - run);
    if (cut) {
        char mark[64];
        snprintf(mark, sizeof mark, LOG_CUT_MARK "[cut, %zu bytes]", full);
        lb_puts(b, mark);
    }
}

/* Byte classes of logfmt, one table lookup per byte on the per-record path (the four
 * comparisons per byte they replace were a tenth of a [SUCCESS] line's cost):
 * LOGFMT_KEY: may stand in a key; LOGFMT_BARE: may stand in an unquoted value. */
enum { LOGFMT_KEY = 1, LOGFMT_BARE = 2, LOGFMT_ANY = 3 };
static const unsigned char logfmt_class[256] = {   /* '"' 0x22 and '=' 0x3d: neither */
    [0x21] = LOGFMT_ANY, [0x23 ... 0x3c] = LOGFMT_ANY, [0x3e ... 0x5b] = LOGFMT_ANY,
    ['\\'] = LOGFMT_KEY, [0x5d ... 0x7e] = LOGFMT_ANY};

static bool logfmt_needs_quotes(const char *s, size_t n) {
    if (n == 0 || n > LOG_VALUE_MAX) return true;
    for (size_t i = 0; i < n; i++)
        if (!(logfmt_class[(unsigned char)s[i]] & LOGFMT_BARE)) return true;
    return false;
}

static bool logfmt_bad_key_byte(unsigned char c) { return !(logfmt_class[c] & LOGFMT_KEY); }

static void lb_put_key(struct lbuf *b, const char *key) {
    if (log_cfg.format == LOG_FORMAT_JSON) {
        lb_putc(b, '"');
        lb_put_escaped(b, key, strlen(key));
        lb_puts(b, "\":");
        return;
    }
    size_t n = 0;           /* the usual key is a clean literal: written in one piece */
    while (key[n] && !logfmt_bad_key_byte((unsigned char)key[n])) n++;
    if (n && !key[n]) {
        lb_put(b, key, n);
        lb_putc(b, '=');
        return;
    }
    if (!*key) lb_putc(b, '_');
    for (const char *k = key; *k; k++) {
        unsigned char c = (unsigned char)*k;
        lb_putc(b, logfmt_bad_key_byte(c) ? '_' : (char)c);
    }
    lb_putc(b, '=');
}

static void lb_put_plainval(struct lbuf *b, const char *s) {
    size_t n = strlen(s);
    if (log_cfg.format == LOG_FORMAT_LOGFMT && !logfmt_needs_quotes(s, n)) {
        lb_put(b, s, n);
        return;
    }
    lb_putc(b, '"');
    lb_put_escaped(b, s, n);
    lb_putc(b, '"');
}

/* A value holding a URL with credentials is written with them redacted (http_url.h): the
 * last line of defence, whatever a caller passes. */
static void lb_put_strval(struct lbuf *b, const char *s) {
    if (http_has_userinfo(s)) {
        char *r = http_redacted(s);
        lb_put_plainval(b, r ? r : HTTP_REDACTED);
        free(r);
        return;
    }
    lb_put_plainval(b, s);
}

/* Shortest "%g" form that reads back as the same double, so 0.1 prints as 0.1. */
static void fmt_double(char *out, size_t len, double d) {
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, len, "%.*g", prec, d);
        if (strtod(out, NULL) == d) return;
    }
}

/* Decimal text of v into out (at least 21 bytes), NUL-terminated; snprintf's "%llu" was a
 * visible share of the worker's CPU with a [SUCCESS] line per purchase. */
static void lb_put_field(struct lbuf *b, const struct log_field *f) {
    char num[40];
    if (!f->key) return;
    switch (f->type) {
    case LOG_FIELD_STR:
        if (!f->v.s) return;          /* absent value: absent field */
        lb_putc(b, log_cfg.format == LOG_FORMAT_JSON ? ',' : ' ');
        lb_put_key(b, f->key);
        lb_put_strval(b, f->v.s);
        return;
    case LOG_FIELD_INT: base_fmt_ll(num, f->v.i); break;
    case LOG_FIELD_UINT: base_fmt_ull(num, f->v.u); break;
    case LOG_FIELD_BOOL: snprintf(num, sizeof num, "%s", f->v.b ? "true" : "false"); break;
    case LOG_FIELD_DOUBLE:
        if (isfinite(f->v.d)) {
            fmt_double(num, sizeof num, f->v.d);
        } else {
            /* JSON has no NaN/Inf literals: write them as strings there */
            const char *t = isnan(f->v.d) ? "NaN" : f->v.d > 0 ? "+Inf" : "-Inf";
            snprintf(num, sizeof num, log_cfg.format == LOG_FORMAT_JSON ? "\"%s\"" : "%s", t);
        }
        break;
    default: return;
    }
    lb_putc(b, log_cfg.format == LOG_FORMAT_JSON ? ',' : ' ');
    lb_put_key(b, f->key);
    lb_puts(b, num);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ"; the part up to the seconds is kept per thread and remade only
 * when the second changes (gmtime_r and snprintf once a second, not once a line). */
static void fmt_timestamp(char *out, size_t len) {
    static __thread time_t cached_sec = (time_t)-1;
    static __thread char cached[80];
    static __thread size_t cached_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec);
        cached_len = n < 0 ? 0 : (size_t)n < sizeof cached ? (size_t)n : sizeof cached - 1;
        cached_sec = ts.tv_sec;
    }
    int ms = (int)((ts.tv_nsec / 1000000L) % 1000);
    if (len < cached_len + 6) {             /* the callers' buffer is always large enough */
        if (len) out[0] = '\0';
        return;
    }
    memcpy(out, cached, cached_len);        /* no snprintf per line: a line's cost matters */
    char *p = out + cached_len;
    *p++ = '.';
    *p++ = (char)('0' + ms / 100);
    *p++ = (char)('0' + ms / 10 % 10);
    *p++ = (char)('0' + ms % 10);
    *p++ = 'Z';
    *p = '\0';
}

/* What follows the timestamp up to the fields: level, service name and message. */
static void put_head(struct lbuf *b, enum log_level level, const char *msg) {
    bool json = log_cfg.format == LOG_FORMAT_JSON;
    lb_puts(b, json ? "\",\"level\":\"" : " level=");
    lb_puts(b, log_level_name(level));
    lb_puts(b, json ? "\",\"service_name\":" : " service_name=");
    lb_put_strval(b, log_cfg.service);
    lb_puts(b, json ? ",\"msg\":" : " msg=");
    lb_put_strval(b, msg);
}

/* The heads of the last few messages, per thread: a few messages make nearly every line (a
 * [SUCCESS] per purchase, a skip per record), and checking and escaping the same service
 * name and message again was a fifth of a line's cost (issue 14). An entry holds the
 * message's text, compared whole: a caller's buffer may say something else next time. */
#define HEAD_SLOTS 4
#define HEAD_MSG_MAX 96
#define HEAD_TEXT_MAX 320
static __thread struct head {
    unsigned gen;                   /* log_cfg.gen when made; 0: empty */
    int level;
    size_t msg_len, len;
    char msg[HEAD_MSG_MAX];
    char text[HEAD_TEXT_MAX];
} heads[HEAD_SLOTS];
static __thread unsigned head_next;

static void put_head_cached(struct lbuf *b, enum log_level level, const char *msg) {
    size_t msg_len = strlen(msg);
    unsigned gen = atomic_load_explicit(&log_cfg.gen, memory_order_relaxed);
    for (unsigned i = 0; i < HEAD_SLOTS; i++) {
        const struct head *h = &heads[i];
        if (h->gen == gen && h->level == (int)level && h->msg_len == msg_len &&
            memcmp(h->msg, msg, msg_len) == 0) {
            lb_put(b, h->text, h->len);
            return;
        }
    }
    struct head *h = &heads[head_next++ % HEAD_SLOTS];
    struct lbuf t = {h->text, 0, sizeof h->text, false, true};
    put_head(&t, level, msg);
    h->gen = 0;
    if (t.len > t.cap) {                                /* too long to keep */
        put_head(b, level, msg);
        return;
    }
    lb_put(b, h->text, t.len);
    if (msg_len > sizeof h->msg) return;
    memcpy(h->msg, msg, msg_len);
    h->msg_len = msg_len;
    h->level = (int)level;
    h->len = t.len;
    h->gen = gen;
}

static void build_line(struct lbuf *b, enum log_level level, const char *msg,
                       const struct log_field *fields, size_t n) {
    char ts[96];          /* 24 bytes in practice; sized for any int the compiler imagines */
    bool json = log_cfg.format == LOG_FORMAT_JSON;
    fmt_timestamp(ts, sizeof ts);
    lb_puts(b, json ? "{\"ts\":\"" : "ts=");
    lb_puts(b, ts);
    put_head_cached(b, level, msg ? msg : "");
    for (size_t i = 0; i < n; i++) lb_put_field(b, &fields[i]);
    lb_puts(b, json ? "}\n" : "\n");
}

size_t log_format_line(char *buf, size_t buflen, enum log_level level, const char *msg,
                       const struct log_field *fields, size_t n) {
    struct lbuf b = { buf, 0, buflen, false, true };
    build_line(&b, level, msg, fields, n);
    if (buflen) buf[b.len < buflen ? b.len : buflen - 1] = '\0';
    return b.len;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;     /* nowhere to report a failing log: drop the line */
        }
        p += w;
        n -= (size_t)w;
    }
}

static __thread struct {
    bool on;
    size_t len;
    char buf[PIPE_BUF];
} held;

bool log_hold(void) {
    bool was = held.on;
    held.on = true;
    return was;
}

void log_flush(void) {
    if (held.len) write_all(log_cfg.fd, held.buf, held.len);
    held.len = 0;
}

void log_release(void) {
    log_flush();
    held.on = false;
}

/* One finished line: into the held buffer when this thread holds and the line may wait,
 * else out now, after whatever was held before it. */
static void emit(enum log_level level, const char *p, size_t n) {
    if (held.on && level < LOG_ERROR && n <= sizeof held.buf) {
        if (held.len + n > sizeof held.buf) log_flush();
        memcpy(held.buf + held.len, p, n);
        held.len += n;
        return;
    }
    log_flush();
    write_all(log_cfg.fd, p, n);
}

void log_fields(enum log_level level, const char *msg, const struct log_field *fields, size_t n) {
    char stack[LOG_STACK_BUF];
    struct lbuf b = { stack, 0, sizeof stack, false, false };
    if (!log_enabled(level)) return;
    build_line(&b, level, msg, fields, n);
    if (b.len > b.cap) {            /* out of memory: end the cut line properly */
        b.len = b.cap;
        b.p[b.len - 1] = '\n';
    }
    emit(level, b.p, b.len);
    if (b.heap) free(b.p);
}

void log_event(enum log_level level, const char *msg, ...) {
    struct log_field f[LOG_VARARG_FIELDS_MAX];
    size_t n = 0;
    va_list ap;
    if (!log_enabled(level)) return;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        if (n < LOG_VARARG_FIELDS_MAX) f[n++] = LOG_STR(k, v);
    }
    va_end(ap);
    log_fields(level, msg, f, n);
}

/* ---- latch ------------------------------------------------------------------------------ */

bool log_latch_trip(struct log_latch *l) {
    atomic_fetch_add(&l->hits, 1);
    if (atomic_load(&l->tripped)) return false;   /* cheap path while the outage lasts */
    bool expected = false;
    if (!atomic_compare_exchange_strong(&l->tripped, &expected, true)) return false;
    atomic_store(&l->since_ms, base_monotonic_ms());
    return true;
}

bool log_latch_clear(struct log_latch *l, long long *duration_ms, unsigned long long *hits) {
    if (!atomic_load(&l->tripped)) return false;
    bool expected = true;
    if (!atomic_compare_exchange_strong(&l->tripped, &expected, false)) return false;
    long long since = atomic_load(&l->since_ms);
    unsigned long long h = atomic_exchange(&l->hits, 0);
    if (duration_ms) *duration_ms = base_monotonic_ms() - since;
    if (hits) *hits = h;
    return true;
}

bool log_latch_is_tripped(struct log_latch *l) { return atomic_load(&l->tripped); }

void log_report_outage(struct log_latch *l, bool failing, enum log_level level,
                       const char *down_msg, const char *up_msg, const char *err) {
    if (failing) {
        if (log_latch_trip(l)) {
            LOG(level, down_msg, LOG_STR("error", err));
            log_flush();        /* an outage is news now, not after the batch */
        }
        return;
    }
    long long ms;
    unsigned long long hits;
    if (log_latch_clear(l, &ms, &hits)) {
        LOG(LOG_INFO, up_msg, LOG_INT("outage_ms", ms), LOG_UINT("failures", hits));
        log_flush();
    }
}
