/* log.h: structured service logs, one event per line on standard output.
 *
 * Every line carries ts, level, service_name and msg, then the caller's fields, in logfmt
 * (default) or JSON (one object per line, for FireLens/Loki). Message texts are free-form
 * strings so the exact texts of contract section 7 ("[SUCCESS] Persisted graph data", ...)
 * are written by the caller, byte for byte.
 *
 * Two calling styles:
 *
 *   log_event(LOG_INFO, "[SUCCESS] Persisted graph data",
 *             "consumer", "receipt", "partition", "3", NULL);       string pairs, NULL-ended
 *
 *   LOG(LOG_INFO, "[SUCCESS] Persisted graph data",
 *       LOG_STR("consumer", "receipt"), LOG_INT("partition", 3)); typed fields, no allocation
 *
 * Typed fields keep numbers numbers in JSON output. A field whose string value is NULL is
 * left out, so optional values need no branching at the call site.
 *
 * Thread safety: log_configure() runs once at startup before other threads exist; after
 * that any thread may log. Each line is formatted in a private buffer and written with a
 * single write(2) (held lines: several whole lines, at most PIPE_BUF bytes, in one write), so
 * lines of different threads never interleave (pipes guarantee this up to PIPE_BUF bytes;
 * longer lines are still written in one call).
 *
 * The level names enum values LOG_DEBUG..LOG_ERROR, which clash with <syslog.h>'s macros:
 * never include <syslog.h> in a file that includes this header.
 */
#ifndef CGW_LOG_H
#define CGW_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };
enum log_format { LOG_FORMAT_LOGFMT = 0, LOG_FORMAT_JSON = 1 };

enum log_field_type { LOG_FIELD_STR, LOG_FIELD_INT, LOG_FIELD_UINT, LOG_FIELD_DOUBLE, LOG_FIELD_BOOL };

struct log_field {
    const char *key;
    enum log_field_type type;
    union {
        const char *s;
        long long i;
        unsigned long long u;
        double d;
        int b;
    } v;
};

#define LOG_STR(k, val)  ((struct log_field){ .key = (k), .type = LOG_FIELD_STR, .v.s = (val) })
#define LOG_INT(k, val)  ((struct log_field){ .key = (k), .type = LOG_FIELD_INT, .v.i = (long long)(val) })
#define LOG_UINT(k, val) ((struct log_field){ .key = (k), .type = LOG_FIELD_UINT, .v.u = (unsigned long long)(val) })
#define LOG_DBL(k, val)  ((struct log_field){ .key = (k), .type = LOG_FIELD_DOUBLE, .v.d = (double)(val) })
#define LOG_BOOL(k, val) ((struct log_field){ .key = (k), .type = LOG_FIELD_BOOL, .v.b = !!(val) })

/* LOG(level, msg, fields...): the level test comes first so a disabled debug line costs one
 * atomic load and no formatting. The compound literal lives on the caller's stack. */
#define LOG(level, msg, ...)                                                              \
    do {                                                                                  \
        if (log_enabled(level)) {                                                         \
            const struct log_field log_f_[] = { __VA_ARGS__ };                            \
            log_fields((level), (msg), log_f_, sizeof log_f_ / sizeof log_f_[0]);         \
        }                                                                                 \
    } while (0)

/* Every string value (record ids, server errors, payload snippets) is bounded: past
 * LOG_VALUE_MAX bytes it is cut at a character boundary and ends with LOG_CUT_MARK and its
 * original length, "...[cut, 10000 bytes]", so a line stays short and says what it lost.
 * A value holding a URL with userinfo ("scheme://user:password@host") is written with the
 * userinfo replaced by "<redacted>" (src/http/http_url.h), whatever the caller passed. */
#define LOG_VALUE_MAX 1024
#define LOG_CUT_MARK "..."

/* Startup configuration; not thread-safe. service_name is copied (NULL keeps the default
 * "consumer-graph-worker"). Output goes to fd 1 unless log_set_output() says otherwise. */
void log_configure(enum log_format format, enum log_level min_level, const char *service_name);
/* The minimum level may change at any time (an atomic store). */
void log_set_level(enum log_level min_level);
/* Redirects output to another descriptor (tests). The caller keeps ownership of fd. */
void log_set_output(int fd);

bool log_enabled(enum log_level level);

/* Parse "debug|info|warn|error" and "logfmt|json"; 0 on success, -1 on unknown text. */
int log_parse_level(const char *s, enum log_level *out);
int log_parse_format(const char *s, enum log_format *out);
const char *log_level_name(enum log_level level);

void log_fields(enum log_level level, const char *msg, const struct log_field *fields, size_t n);
void log_event(enum log_level level, const char *msg, ...) __attribute__((sentinel));

/* Held lines (log.c, "Held lines"): between log_hold() and log_release(), this thread's lines
 * below LOG_ERROR are collected (whole lines, up to PIPE_BUF bytes) and written together when
 * the buffer is full, at log_flush(), at release, or before an [ERROR] line or an outage
 * report. For a loop that logs a line per record; call log_flush() before anything that may
 * block, so a held line never waits on a server. log_hold() returns whether this thread
 * held already: a function holding its own lines then ends with log_flush(), not
 * log_release(), and leaves its caller's hold as it found it. */
bool log_hold(void);
void log_flush(void);
void log_release(void);

/* Formats one line (with its '\n') into buf without writing it; returns the length the full
 * line needs, like snprintf. Used by tests and by anything that wants the exact bytes. */
size_t log_format_line(char *buf, size_t buflen, enum log_level level, const char *msg,
                       const struct log_field *fields, size_t n);

/* A latch logs once when a condition starts (an outage: Valkey down, Neo4j unreachable) and
 * once when it ends, instead of once per failed record. Zero-initialise it (LOG_LATCH_INIT or
 * static storage). The primitives are lock-free and safe from several threads: exactly one
 * caller sees the start, exactly one sees the end. */
struct log_latch {
    atomic_bool tripped;
    atomic_llong since_ms;        /* CLOCK_MONOTONIC ms when the condition started */
    atomic_ullong hits;           /* failures observed during the current outage */
};
#define LOG_LATCH_INIT { false, 0, 0 }

/* Records a failure; true only for the call that starts the outage. */
bool log_latch_trip(struct log_latch *l);
/* Records a success; true only for the call that ends an outage, with its length and the
 * number of failures seen during it (either pointer may be NULL). */
bool log_latch_clear(struct log_latch *l, long long *duration_ms, unsigned long long *hits);
bool log_latch_is_tripped(struct log_latch *l);

/* Convenience on top of the primitives: call it after every attempt with failing set as it
 * turned out. Logs down_msg (with error=<err>) at `level` when the outage starts and up_msg at
 * LOG_INFO (with outage_ms and failures) when it ends; says nothing otherwise. */
void log_report_outage(struct log_latch *l, bool failing, enum log_level level,
                       const char *down_msg, const char *up_msg, const char *err);

#endif
