/* src/registry/proto_text.c: a hand-written .proto text parser and the factoid compatibility
 * check (interface and limits in proto_text.h).
 *
 * Why by hand: the registry serves schemas as .proto source text, and no C library packaged
 * for Debian parses that. protobuf-c only has generated descriptors (no runtime descriptor
 * parser, no .proto front end); libprotobuf's compiler::Parser is C++ and would pull the
 * whole C++ runtime into a C service for a question this small. The registry can also serve
 * a serialized FileDescriptorProto (?format=serialized), but Buf CSR's support of that
 * parameter is not documented, and decoding descriptor.proto would need generated code for
 * it anyway; the text parser works against any Confluent-compatible registry.
 *
 * Shape: a tokenizer (whitespace, // and block comments, identifiers, numbers, quoted strings
 * with escapes, one-character symbols) under a recursive-descent parser that follows protoc's
 * grammar for proto2/proto3/editions files. It is strict in what it keeps (labels, types,
 * numbers, names) and refuses anything malformed, but it parses and drops the parts the check
 * never looks at (option values, aggregates, reserved, extensions, service and extend
 * blocks), so that a compatible schema evolving with those is still accepted. After parsing,
 * fully-qualified names are assigned (package may appear anywhere in a file, as in protoc).
 *
 * The check resolves field type names with protobuf's scoping rules (innermost scope out,
 * leading dot = absolute) and compares structure, not names, for the nested message and enum
 * types: a schema that renames ShopOrder but keeps its fields is still wire-compatible.
 *
 * Memory: one arena per parsed file; a parse error simply frees the arena.
 */
#include "registry/proto_text.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------------------- */

#define ARENA_CHUNK 16384

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used;
    _Alignas(max_align_t) unsigned char data[];
};

struct registry_proto_arena {
    struct arena_chunk *head;
};

static void *arena_alloc(struct registry_proto_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static char *arena_strndup(struct registry_proto_arena *a, const char *s, size_t n) {
    char *d = arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void arena_free(struct registry_proto_arena *a) {
    if (!a) return;
    for (struct arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

/* ---- tokenizer --------------------------------------------------------------------------- */

enum tok_kind { T_EOF, T_IDENT, T_NUMBER, T_STRING, T_SYMBOL };

struct tok {
    enum tok_kind kind;
    const char *p;      /* identifier/number text, string contents (without quotes) */
    size_t n;
    int line;
};

struct lexer {
    const char *cur, *end;
    int line;
};

#define NUMBER_MAX 64

static bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }
static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Skips whitespace and comments. -1 on an unterminated block comment. */
static int lex_skip(struct lexer *lx, char *msg, size_t msglen) {
    for (;;) {
        while (lx->cur < lx->end && is_space(*lx->cur)) {
            if (*lx->cur == '\n') lx->line++;
            lx->cur++;
        }
        if (lx->end - lx->cur < 2 || lx->cur[0] != '/') return 0;
        if (lx->cur[1] == '/') {
            while (lx->cur < lx->end && *lx->cur != '\n') lx->cur++;
        } else if (lx->cur[1] == '*') {
            const char *p = lx->cur + 2;
            while (p + 1 < lx->end && !(p[0] == '*' && p[1] == '/')) {
                if (*p == '\n') lx->line++;
                p++;
            }
            if (p + 1 >= lx->end) {
                snprintf(msg, msglen, "unterminated comment");
                return -1;
            }
            lx->cur = p + 2;
        } else {
            return 0;
        }
    }
}

static int lex_string(struct lexer *lx, struct tok *t, char *msg, size_t msglen) {
    char quote = *lx->cur++;
    t->kind = T_STRING;
    t->p = lx->cur;
    while (lx->cur < lx->end && *lx->cur != quote) {
        char c = *lx->cur;
        if (c == '\n' || c == '\0') {
            snprintf(msg, msglen, "%s in a string", c ? "newline" : "NUL byte");
            return -1;
        }
        /* An escape covers the next character, whatever it is: enough to find the end;
         * the values of strings are never interpreted beyond comparison. */
        lx->cur += (c == '\\' && lx->end - lx->cur >= 2 && lx->cur[1] != '\n') ? 2 : 1;
    }
    if (lx->cur >= lx->end) {
        snprintf(msg, msglen, "unterminated string");
        return -1;
    }
    t->n = (size_t)(lx->cur - t->p);
    lx->cur++;
    return 0;
}

/* A number is the longest run of [0-9A-Za-z_.] (plus a sign right after a decimal exponent);
 * whether it is a valid integer is decided where an integer is expected. */
static int lex_number(struct lexer *lx, struct tok *t, char *msg, size_t msglen) {
    t->kind = T_NUMBER;
    t->p = lx->cur;
    bool hex = lx->end - lx->cur >= 2 && lx->cur[0] == '0' &&
               (lx->cur[1] == 'x' || lx->cur[1] == 'X');
    while (lx->cur < lx->end) {
        char c = *lx->cur;
        char prev = lx->cur > t->p ? lx->cur[-1] : 0;
        if (is_alnum(c) || c == '.' ||
            (!hex && (c == '+' || c == '-') && (prev == 'e' || prev == 'E')))
            lx->cur++;
        else
            break;
    }
    t->n = (size_t)(lx->cur - t->p);
    if (t->n > NUMBER_MAX) {
        snprintf(msg, msglen, "number too long");
        return -1;
    }
    return 0;
}

static int lex(struct lexer *lx, struct tok *t, char *msg, size_t msglen) {
    if (lex_skip(lx, msg, msglen) != 0) return -1;
    t->line = lx->line;
    t->p = lx->cur;
    t->n = 0;
    if (lx->cur >= lx->end) {
        t->kind = T_EOF;
        return 0;
    }
    char c = *lx->cur;
    if (is_alpha(c)) {
        t->kind = T_IDENT;
        while (lx->cur < lx->end && is_alnum(*lx->cur)) lx->cur++;
        t->n = (size_t)(lx->cur - t->p);
        if (t->n > REGISTRY_PROTO_MAX_IDENT) {
            snprintf(msg, msglen, "identifier longer than %d characters",
                     REGISTRY_PROTO_MAX_IDENT);
            return -1;
        }
        return 0;
    }
    if (is_digit(c) || (c == '.' && lx->end - lx->cur >= 2 && is_digit(lx->cur[1])))
        return lex_number(lx, t, msg, msglen);
    if (c == '"' || c == '\'') return lex_string(lx, t, msg, msglen);
    if (strchr(";{}[]()<>=,.:-+/", c) && c != '\0') {
        t->kind = T_SYMBOL;
        t->n = 1;
        lx->cur++;
        return 0;
    }
    snprintf(msg, msglen, "unexpected character 0x%02x", (unsigned char)c);
    return -1;
}

/* ---- parser state and helpers ------------------------------------------------------------ */

struct parser {
    struct lexer lx;
    struct tok t;                       /* the current token */
    struct registry_proto_file *file;
    struct registry_proto_arena *arena;
    int depth;                          /* message nesting */
    long decls;
    char *err;
    size_t errlen;
    bool failed;
};

/* Describes a token for a message: printable, short. */
static void tok_desc(const struct tok *t, char *buf, size_t len) {
    if (t->kind == T_EOF) {
        snprintf(buf, len, "end of text");
        return;
    }
    if (t->kind == T_STRING) {
        snprintf(buf, len, "a string");
        return;
    }
    char s[41];
    size_t n = t->n < sizeof s - 1 ? t->n : sizeof s - 1;
    for (size_t i = 0; i < n; i++)
        s[i] = (t->p[i] > 0x20 && t->p[i] < 0x7f) ? t->p[i] : '?';
    s[n] = '\0';
    snprintf(buf, len, "'%s'%s", s, t->n > n ? "..." : "");
}

__attribute__((format(printf, 2, 3)))
static int fail(struct parser *P, const char *fmt, ...) {
    if (P->failed) return -1;
    P->failed = true;
    int n = snprintf(P->err, P->errlen, "line %d: ", P->t.line);
    if (n >= 0 && (size_t)n < P->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err + n, P->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int fail_unexpected(struct parser *P, const char *expected) {
    char d[64];
    tok_desc(&P->t, d, sizeof d);
    return fail(P, "expected %s, found %s", expected, d);
}

static int oom(struct parser *P) { return fail(P, "out of memory"); }

static int next(struct parser *P) {
    char msg[96];
    if (lex(&P->lx, &P->t, msg, sizeof msg) != 0) {
        P->t.line = P->lx.line;
        return fail(P, "%s", msg);
    }
    return 0;
}

/* The token after the current one, without consuming anything. A lexer error there reads as
 * end of text: it is reported when the parser gets to it. */
static struct tok peek(const struct parser *P) {
    struct lexer copy = P->lx;
    struct tok t;
    char msg[96];
    if (lex(&copy, &t, msg, sizeof msg) != 0) t.kind = T_EOF;
    return t;
}

static bool tok_is_sym(const struct tok *t, char c) {
    return t->kind == T_SYMBOL && t->p[0] == c;
}
static bool is_sym(const struct parser *P, char c) { return tok_is_sym(&P->t, c); }

static bool tok_is_kw(const struct tok *t, const char *kw) {
    return t->kind == T_IDENT && t->n == strlen(kw) && memcmp(t->p, kw, t->n) == 0;
}
static bool is_kw(const struct parser *P, const char *kw) { return tok_is_kw(&P->t, kw); }

static int expect_sym(struct parser *P, char c) {
    if (!is_sym(P, c)) {
        char want[8];
        snprintf(want, sizeof want, "'%c'", c);
        return fail_unexpected(P, want);
    }
    return next(P);
}

static int count_decl(struct parser *P) {
    if (++P->decls > REGISTRY_PROTO_MAX_DECLS)
        return fail(P, "more than %d declarations", REGISTRY_PROTO_MAX_DECLS);
    return 0;
}

/* An identifier, copied into the arena. */
static int take_ident(struct parser *P, const char **out) {
    if (P->t.kind != T_IDENT) return fail_unexpected(P, "an identifier");
    if (!(*out = arena_strndup(P->arena, P->t.p, P->t.n))) return oom(P);
    return next(P);
}

/* ['.'] ident { '.' ident }, copied into the arena when out is not NULL. */
static int take_full_ident(struct parser *P, bool leading_dot, const char **out) {
    char buf[REGISTRY_PROTO_MAX_NAME + 1];
    size_t n = 0;
    if (leading_dot && is_sym(P, '.')) {
        buf[n++] = '.';
        if (next(P) != 0) return -1;
    }
    for (;;) {
        if (P->t.kind != T_IDENT) return fail_unexpected(P, "an identifier");
        if (n + P->t.n + 1 > REGISTRY_PROTO_MAX_NAME)
            return fail(P, "name longer than %d characters", REGISTRY_PROTO_MAX_NAME);
        memcpy(buf + n, P->t.p, P->t.n);
        n += P->t.n;
        if (next(P) != 0) return -1;
        if (!is_sym(P, '.')) break;
        buf[n++] = '.';
        if (next(P) != 0) return -1;
    }
    buf[n] = '\0';
    if (out && !(*out = arena_strndup(P->arena, buf, n))) return oom(P);
    return 0;
}

/* Decimal, octal (0...) or hex (0x...) without sign; -1 when t is not such an integer or
 * does not fit 64 bits. */
static int tok_uint(const struct tok *t, uint64_t *out) {
    if (t->kind != T_NUMBER || t->n == 0) return -1;
    const char *p = t->p, *end = t->p + t->n;
    unsigned base = 10;
    if (t->n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
        if (p == end) return -1;
    } else if (p[0] == '0' && t->n > 1) {
        base = 8;
        p++;
    }
    uint64_t v = 0;
    for (; p < end; p++) {
        unsigned d;
        if (is_digit(*p)) d = (unsigned)(*p - '0');
        else if (*p >= 'a' && *p <= 'f') d = (unsigned)(*p - 'a' + 10);
        else if (*p >= 'A' && *p <= 'F') d = (unsigned)(*p - 'A' + 10);
        else return -1;
        if (d >= base || v > (UINT64_MAX - d) / base) return -1;
        v = v * base + d;
    }
    *out = v;
    return 0;
}

/* ['-'] integer within [min, max]. */
static int take_int(struct parser *P, bool allow_neg, int64_t min, int64_t max, int64_t *out,
                    const char *what) {
    bool neg = false;
    if (allow_neg && is_sym(P, '-')) {
        neg = true;
        if (next(P) != 0) return -1;
    }
    uint64_t u;
    if (tok_uint(&P->t, &u) != 0) return fail_unexpected(P, what);
    if (u > (uint64_t)INT64_MAX) return fail(P, "%s out of range", what);
    int64_t v = neg ? -(int64_t)u : (int64_t)u;
    if (v < min || v > max) return fail(P, "%s out of range", what);
    *out = v;
    return next(P);
}

/* ---- constants, options, blocks we parse and drop ---------------------------------------- */

/* Skips '{' ... '}' with nested braces (aggregate option values, service/extend bodies). */
static int skip_block(struct parser *P) {
    if (expect_sym(P, '{') != 0) return -1;
    long depth = 1;
    while (depth > 0) {
        if (P->t.kind == T_EOF) return fail_unexpected(P, "'}'");
        if (is_sym(P, '{')) depth++;
        else if (is_sym(P, '}')) depth--;
        if (next(P) != 0) return -1;
    }
    return 0;
}

/* An option value: identifier, signed number (or inf/nan), strings, or an aggregate. */
static int skip_constant(struct parser *P) {
    if (is_sym(P, '{')) return skip_block(P);
    if (is_sym(P, '-') || is_sym(P, '+')) {
        if (next(P) != 0) return -1;
        if (P->t.kind != T_NUMBER && P->t.kind != T_IDENT) return fail_unexpected(P, "a number");
        return next(P);
    }
    if (P->t.kind == T_NUMBER) return next(P);
    if (P->t.kind == T_IDENT) return take_full_ident(P, false, NULL);
    if (P->t.kind != T_STRING) return fail_unexpected(P, "a constant");
    while (P->t.kind == T_STRING)   /* adjacent strings concatenate */
        if (next(P) != 0) return -1;
    return 0;
}

/* (ident | '(' ['.'] fullIdent ')') { '.' (ident | '(' ... ')') } */
static int skip_option_name(struct parser *P) {
    for (;;) {
        if (is_sym(P, '(')) {
            if (next(P) != 0 || take_full_ident(P, true, NULL) != 0 || expect_sym(P, ')') != 0)
                return -1;
        } else if (P->t.kind == T_IDENT) {
            if (next(P) != 0) return -1;
        } else {
            return fail_unexpected(P, "an option name");
        }
        if (!is_sym(P, '.')) return 0;
        if (next(P) != 0) return -1;
    }
}

static int skip_option_assignment(struct parser *P) {
    if (skip_option_name(P) != 0 || expect_sym(P, '=') != 0) return -1;
    return skip_constant(P);
}

/* 'option' name '=' constant ';' (current token: 'option') */
static int parse_option_stmt(struct parser *P) {
    if (next(P) != 0 || skip_option_assignment(P) != 0) return -1;
    return expect_sym(P, ';');
}

/* '[' name '=' constant { ',' name '=' constant } ']' when present. */
static int parse_bracket_options(struct parser *P) {
    if (!is_sym(P, '[')) return 0;
    if (next(P) != 0) return -1;
    for (;;) {
        if (skip_option_assignment(P) != 0) return -1;
        if (!is_sym(P, ',')) break;
        if (next(P) != 0) return -1;
    }
    return expect_sym(P, ']');
}

/* range { ',' range } where range = int [ 'to' (int | 'max') ] */
static int parse_ranges(struct parser *P) {
    for (;;) {
        int64_t lo, hi;
        if (take_int(P, true, INT32_MIN, INT32_MAX, &lo, "a number") != 0) return -1;
        if (is_kw(P, "to")) {
            if (next(P) != 0) return -1;
            if (is_kw(P, "max")) {
                if (next(P) != 0) return -1;
            } else {
                if (take_int(P, true, INT32_MIN, INT32_MAX, &hi, "a number") != 0) return -1;
                if (hi < lo) return fail(P, "range %lld to %lld is empty", (long long)lo,
                                         (long long)hi);
            }
        }
        if (!is_sym(P, ',')) return 0;
        if (next(P) != 0) return -1;
    }
}

/* 'reserved' (ranges | strings | identifiers) ';' (current token: 'reserved') */
static int parse_reserved(struct parser *P) {
    if (next(P) != 0) return -1;
    if (P->t.kind == T_STRING || P->t.kind == T_IDENT) {
        enum tok_kind kind = P->t.kind;
        for (;;) {
            if (P->t.kind != kind) return fail_unexpected(P, "a reserved name");
            if (next(P) != 0) return -1;
            if (!is_sym(P, ',')) break;
            if (next(P) != 0) return -1;
        }
    } else if (parse_ranges(P) != 0) {
        return -1;
    }
    return expect_sym(P, ';');
}

/* 'extensions' ranges [options] ';' */
static int parse_extensions(struct parser *P) {
    if (next(P) != 0 || parse_ranges(P) != 0 || parse_bracket_options(P) != 0) return -1;
    return expect_sym(P, ';');
}

/* 'extend' type '{' ... '}' and 'service' name '{' ... '}': well-formed, then dropped. */
static int skip_named_block(struct parser *P) {
    if (next(P) != 0 || take_full_ident(P, true, NULL) != 0) return -1;
    return skip_block(P);
}

/* ---- enums ------------------------------------------------------------------------------- */

static int parse_enum_value(struct parser *P, struct registry_proto_enum_value ***tail) {
    struct registry_proto_enum_value *v = arena_alloc(P->arena, sizeof *v);
    if (!v) return oom(P);
    int64_t num;
    if (count_decl(P) != 0 || take_ident(P, &v->name) != 0 || expect_sym(P, '=') != 0 ||
        take_int(P, true, INT32_MIN, INT32_MAX, &num, "an enum value number") != 0 ||
        parse_bracket_options(P) != 0 || expect_sym(P, ';') != 0)
        return -1;
    v->number = (int32_t)num;
    **tail = v;
    *tail = &v->next;
    return 0;
}

/* 'enum' name '{' { option | reserved | value | ';' } '}' (current token: 'enum') */
static int parse_enum(struct parser *P, struct registry_proto_enum ***tail) {
    struct registry_proto_enum *e = arena_alloc(P->arena, sizeof *e);
    if (!e) return oom(P);
    if (count_decl(P) != 0 || next(P) != 0 || take_ident(P, &e->name) != 0 ||
        expect_sym(P, '{') != 0)
        return -1;
    struct registry_proto_enum_value **vtail = &e->values;
    while (!is_sym(P, '}')) {
        int rc;
        if (P->t.kind == T_EOF) rc = fail_unexpected(P, "'}' closing an enum");
        else if (is_sym(P, ';')) rc = next(P);
        else if (is_kw(P, "option")) rc = parse_option_stmt(P);
        else if (is_kw(P, "reserved")) rc = parse_reserved(P);
        else rc = parse_enum_value(P, &vtail);
        if (rc != 0) return -1;
    }
    **tail = e;
    *tail = &e->next;
    return next(P);
}

/* ---- messages ---------------------------------------------------------------------------- */

struct msg_ctx {        /* where declarations inside a message body go */
    struct registry_proto_message *m;
    struct registry_proto_field **ftail;
    struct registry_proto_message **mtail;
    struct registry_proto_enum **etail;
};

static int parse_message_body(struct parser *P, struct msg_ctx *c);

static void append_field(struct msg_ctx *c, struct registry_proto_field *f) {
    *c->ftail = f;
    c->ftail = &f->next;
}

/* A new nested message named name, whose body the caller is about to parse. */
static int open_message(struct parser *P, const char *name, struct registry_proto_message ***tail,
                        struct registry_proto_message **out) {
    if (++P->depth > REGISTRY_PROTO_MAX_DEPTH)
        return fail(P, "messages nested deeper than %d", REGISTRY_PROTO_MAX_DEPTH);
    struct registry_proto_message *m = arena_alloc(P->arena, sizeof *m);
    if (!m) return oom(P);
    if (count_decl(P) != 0) return -1;
    m->name = name;
    **tail = m;
    *tail = &m->next;
    *out = m;
    return 0;
}

/* '{' body '}' of a message or group already opened. */
static int parse_message_block(struct parser *P, struct registry_proto_message *m) {
    struct msg_ctx c = {m, &m->fields, &m->messages, &m->enums};
    if (expect_sym(P, '{') != 0 || parse_message_body(P, &c) != 0) return -1;
    P->depth--;
    return 0;
}

/* 'message' name '{' body '}' (current token: 'message') */
static int parse_message(struct parser *P, struct registry_proto_message ***tail) {
    const char *name;
    struct registry_proto_message *m = NULL;
    if (next(P) != 0 || take_ident(P, &name) != 0 || open_message(P, name, tail, &m) != 0)
        return -1;
    return parse_message_block(P, m);
}

/* proto2 group: 'group' Name '=' number [options] '{' body '}'; the field is named after the
 * group in lower case and typed by the nested message of the same name.
 * (current token: 'group'; f has its label already) */
static int parse_group(struct parser *P, struct msg_ctx *c, struct registry_proto_field *f) {
    const char *name;
    int64_t num;
    struct registry_proto_message *m = NULL;
    if (next(P) != 0 || take_ident(P, &name) != 0 || expect_sym(P, '=') != 0 ||
        take_int(P, false, 1, 536870911, &num, "a field number") != 0 ||
        parse_bracket_options(P) != 0 || open_message(P, name, &c->mtail, &m) != 0)
        return -1;
    char *lower = arena_strndup(P->arena, name, strlen(name));
    if (!lower) return oom(P);
    for (char *s = lower; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
    f->name = lower;
    f->type = name;
    f->number = (int32_t)num;
    append_field(c, f);
    return parse_message_block(P, m);
}

/* 'map' '<' key ',' value '>' name '=' number [options] ';' (current token: 'map') */
static int parse_map_field(struct parser *P, struct registry_proto_field *f) {
    int64_t num;
    f->is_map = 1;
    f->type = "map";
    if (next(P) != 0 || expect_sym(P, '<') != 0 || take_full_ident(P, false, NULL) != 0 ||
        expect_sym(P, ',') != 0 || take_full_ident(P, true, NULL) != 0 ||
        expect_sym(P, '>') != 0 || take_ident(P, &f->name) != 0 || expect_sym(P, '=') != 0 ||
        take_int(P, false, 1, 536870911, &num, "a field number") != 0 ||
        parse_bracket_options(P) != 0 || expect_sym(P, ';') != 0)
        return -1;
    f->number = (int32_t)num;
    return 0;
}

static enum registry_proto_label label_of(const struct parser *P) {
    if (is_kw(P, "optional")) return REGISTRY_PROTO_LABEL_OPTIONAL;
    if (is_kw(P, "required")) return REGISTRY_PROTO_LABEL_REQUIRED;
    if (is_kw(P, "repeated")) return REGISTRY_PROTO_LABEL_REPEATED;
    return REGISTRY_PROTO_LABEL_NONE;
}

/* [label] type name '=' number [options] ';' ; also groups and (outside oneofs) maps. */
static int parse_field(struct parser *P, struct msg_ctx *c, const char *oneof) {
    struct registry_proto_field *f = arena_alloc(P->arena, sizeof *f);
    if (!f) return oom(P);
    f->line = P->t.line;
    f->oneof = oneof;
    if (count_decl(P) != 0) return -1;
    f->label = label_of(P);
    if (f->label != REGISTRY_PROTO_LABEL_NONE) {
        if (oneof) return fail(P, "fields in a oneof take no label");
        if (next(P) != 0) return -1;
    }
    struct tok after = peek(P);
    if (is_kw(P, "group") && after.kind == T_IDENT) return parse_group(P, c, f);
    if (is_kw(P, "map") && tok_is_sym(&after, '<')) {
        if (oneof || f->label != REGISTRY_PROTO_LABEL_NONE)
            return fail(P, "a map field takes no label and cannot be in a oneof");
        if (parse_map_field(P, f) != 0) return -1;
        append_field(c, f);
        return 0;
    }
    int64_t num;
    if (take_full_ident(P, true, &f->type) != 0 || take_ident(P, &f->name) != 0 ||
        expect_sym(P, '=') != 0 ||
        take_int(P, false, 1, 536870911, &num, "a field number") != 0 ||
        parse_bracket_options(P) != 0 || expect_sym(P, ';') != 0)
        return -1;
    f->number = (int32_t)num;
    append_field(c, f);
    return 0;
}

/* 'oneof' name '{' { option | field | ';' } '}' (current token: 'oneof') */
static int parse_oneof(struct parser *P, struct msg_ctx *c) {
    const char *name;
    if (next(P) != 0 || take_ident(P, &name) != 0 || expect_sym(P, '{') != 0) return -1;
    while (!is_sym(P, '}')) {
        int rc;
        if (P->t.kind == T_EOF) rc = fail_unexpected(P, "'}' closing a oneof");
        else if (is_sym(P, ';')) rc = next(P);
        else if (is_kw(P, "option")) rc = parse_option_stmt(P);
        else rc = parse_field(P, c, name);
        if (rc != 0) return -1;
    }
    return next(P);
}

/* Declarations up to and including the closing '}'. Keywords are recognised the way protoc
 * does: a field whose type is named "message" or "option" is not expressible. */
static int parse_message_body(struct parser *P, struct msg_ctx *c) {
    while (!is_sym(P, '}')) {
        int rc;
        if (P->t.kind == T_EOF) rc = fail_unexpected(P, "'}' closing a message");
        else if (is_sym(P, ';')) rc = next(P);
        else if (is_kw(P, "message")) rc = parse_message(P, &c->mtail);
        else if (is_kw(P, "enum")) rc = parse_enum(P, &c->etail);
        else if (is_kw(P, "extend")) rc = skip_named_block(P);
        else if (is_kw(P, "extensions")) rc = parse_extensions(P);
        else if (is_kw(P, "reserved")) rc = parse_reserved(P);
        else if (is_kw(P, "option")) rc = parse_option_stmt(P);
        else if (is_kw(P, "oneof")) rc = parse_oneof(P, c);
        else rc = parse_field(P, c, NULL);
        if (rc != 0) return -1;
    }
    return next(P);
}

/* ---- file -------------------------------------------------------------------------------- */

static bool known_syntax(const struct tok *t, bool edition) {
    if (!edition)
        return t->n == 6 && (memcmp(t->p, "proto2", 6) == 0 || memcmp(t->p, "proto3", 6) == 0);
    if (t->n == 0 || t->n > 8) return false;
    for (size_t i = 0; i < t->n; i++)
        if (!is_digit(t->p[i])) return false;
    return true;
}

/* 'syntax' '=' ("proto2" | "proto3") ';'  or  'edition' '=' "<year>" ';' */
static int parse_syntax(struct parser *P, bool first) {
    bool edition = is_kw(P, "edition");
    if (!first || P->file->syntax) return fail(P, "syntax/edition must be the first statement");
    if (next(P) != 0 || expect_sym(P, '=') != 0) return -1;
    if (P->t.kind != T_STRING) return fail_unexpected(P, "a string");
    if (!known_syntax(&P->t, edition))
        return fail(P, "unknown %s", edition ? "edition" : "syntax");
    if (!(P->file->syntax = arena_strndup(P->arena, P->t.p, P->t.n))) return oom(P);
    if (next(P) != 0) return -1;
    return expect_sym(P, ';');
}

static int parse_package(struct parser *P) {
    if (P->file->package[0]) return fail(P, "a second package statement");
    if (next(P) != 0 || take_full_ident(P, false, &P->file->package) != 0) return -1;
    return expect_sym(P, ';');
}

static int parse_import(struct parser *P, struct registry_proto_import ***tail) {
    struct registry_proto_import *im = arena_alloc(P->arena, sizeof *im);
    if (!im) return oom(P);
    if (next(P) != 0) return -1;
    if ((is_kw(P, "weak") || is_kw(P, "public")) && next(P) != 0) return -1;
    if (P->t.kind != T_STRING) return fail_unexpected(P, "an import path");
    if (!(im->path = arena_strndup(P->arena, P->t.p, P->t.n))) return oom(P);
    if (next(P) != 0 || expect_sym(P, ';') != 0) return -1;
    **tail = im;
    *tail = &im->next;
    return 0;
}

static int parse_file(struct parser *P) {
    struct registry_proto_message **mtail = &P->file->messages;
    struct registry_proto_enum **etail = &P->file->enums;
    struct registry_proto_import **itail = &P->file->imports;
    bool first = true;
    if (next(P) != 0) return -1;
    while (P->t.kind != T_EOF) {
        int rc;
        if (is_sym(P, ';')) rc = next(P);
        else if (is_kw(P, "syntax") || is_kw(P, "edition")) rc = parse_syntax(P, first);
        else if (is_kw(P, "package")) rc = parse_package(P);
        else if (is_kw(P, "import")) rc = parse_import(P, &itail);
        else if (is_kw(P, "option")) rc = parse_option_stmt(P);
        else if (is_kw(P, "message")) rc = parse_message(P, &mtail);
        else if (is_kw(P, "enum")) rc = parse_enum(P, &etail);
        else if (is_kw(P, "service") || is_kw(P, "extend")) rc = skip_named_block(P);
        else rc = fail_unexpected(P, "a top-level statement");
        if (rc != 0) return -1;
        first = false;
    }
    return 0;
}

/* Fully-qualified names, once the package is known (it may follow the messages). */
static const char *join_name(struct parser *P, const char *prefix, const char *name) {
    size_t a = strlen(prefix), b = strlen(name);
    if (a + 1 + b > REGISTRY_PROTO_MAX_NAME) {
        fail(P, "fully-qualified name of %s longer than %d characters", name,
             REGISTRY_PROTO_MAX_NAME);
        return NULL;
    }
    char *s = arena_alloc(P->arena, a + b + 2);
    if (!s) {
        oom(P);
        return NULL;
    }
    if (a) {
        memcpy(s, prefix, a);
        s[a++] = '.';
    }
    memcpy(s + a, name, b + 1);
    return s;
}

static int assign_fqns(struct parser *P, const char *prefix, struct registry_proto_message *ms,
                       struct registry_proto_enum *es) {
    for (; es; es = es->next)
        if (!(es->fqn = join_name(P, prefix, es->name))) return -1;
    for (; ms; ms = ms->next) {   /* recursion depth: bounded by REGISTRY_PROTO_MAX_DEPTH */
        if (!(ms->fqn = join_name(P, prefix, ms->name))) return -1;
        if (assign_fqns(P, ms->fqn, ms->messages, ms->enums) != 0) return -1;
    }
    return 0;
}

struct registry_proto_file *registry_proto_parse(const char *text, size_t len, char *err,
                                                 size_t errlen) {
    static char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (len > REGISTRY_PROTO_MAX_TEXT) {
        snprintf(err, errlen, "schema text of %zu bytes is over the %u-byte limit", len,
                 REGISTRY_PROTO_MAX_TEXT);
        return NULL;
    }
    struct registry_proto_arena *arena = calloc(1, sizeof *arena);
    struct registry_proto_file *f = arena ? arena_alloc(arena, sizeof *f) : NULL;
    if (!f) {
        arena_free(arena);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->arena = arena;
    f->package = "";
    struct parser P = {.lx = {text ? text : "", (text ? text : "") + len, 1},
                       .file = f, .arena = arena, .err = err, .errlen = errlen};
    if (parse_file(&P) != 0 || assign_fqns(&P, f->package, f->messages, f->enums) != 0) {
        arena_free(arena);
        return NULL;
    }
    return f;
}

void registry_proto_free(struct registry_proto_file *f) {
    if (f) arena_free(f->arena);
}

/* ---- the factoid check ------------------------------------------------------------------- */

/* What the worker reads (src/record/factoid.c via the generated code): a field is wanted
 * with this number, cardinality and type; types are scalars, the FactoidSource enum (it must
 * hold FACTOID_SOURCE_SHOP = 1, the only value the worker tests), the well-known Timestamp,
 * or a message checked recursively. */
enum want_kind { W_SCALAR, W_SOURCE_ENUM, W_TIMESTAMP, W_MESSAGE };

struct want_msg;
struct want_field {
    const char *name;
    int32_t number;
    enum want_kind kind;
    const char *scalar;             /* W_SCALAR */
    const struct want_msg *msg;     /* W_MESSAGE */
    bool repeated;
};

struct want_msg {
    const char *label;              /* for reasons: "ShopOrder.items" */
    const struct want_field *fields;
    size_t n;
};

static const struct want_field item_fields[] = {
    {"line_number", 1, W_SCALAR, "int32", NULL, false},
    {"fido", 2, W_SCALAR, "string", NULL, false},
    {"quantity", 3, W_SCALAR, "int32", NULL, false},
    {"unit_price_cents", 4, W_SCALAR, "int64", NULL, false},
    {"title", 5, W_SCALAR, "string", NULL, false},
};
static const struct want_msg want_item = {"ShopOrderItem", item_fields, 5};

static const struct want_field order_fields[] = {
    {"order_id", 1, W_SCALAR, "string", NULL, false},
    {"retailer_id", 2, W_SCALAR, "string", NULL, false},
    {"total_cents", 3, W_SCALAR, "int64", NULL, false},
    {"currency", 4, W_SCALAR, "string", NULL, false},
    {"fido_count", 5, W_SCALAR, "int32", NULL, false},
    {"items", 6, W_MESSAGE, NULL, &want_item, true},
};
static const struct want_msg want_order = {"ShopOrder", order_fields, 6};

static const struct want_field factoid_fields[] = {
    {"factoid_id", 1, W_SCALAR, "string", NULL, false},
    {"user_id", 2, W_SCALAR, "string", NULL, false},
    {"source", 3, W_SOURCE_ENUM, NULL, NULL, false},
    {"type", 4, W_SCALAR, "string", NULL, false},
    {"occurred_at", 5, W_TIMESTAMP, NULL, NULL, false},
    {"shop_order", 10, W_MESSAGE, NULL, &want_order, false},
};
static const struct want_msg want_factoid = {"Factoid", factoid_fields, 6};

#define FACTOID_PACKAGE   "factoids.v1"
#define FACTOID_MESSAGE   "Factoid"
#define TIMESTAMP_FQN     "google.protobuf.Timestamp"
#define TIMESTAMP_IMPORT  "google/protobuf/timestamp.proto"
#define SOURCE_SHOP_NAME  "FACTOID_SOURCE_SHOP"
#define SOURCE_SHOP_VALUE 1

struct def {                        /* a message or enum found by its fully-qualified name */
    const struct registry_proto_message *msg;
    const struct registry_proto_enum *en;
};

static bool find_def_in(const struct registry_proto_message *ms,
                        const struct registry_proto_enum *es, const char *fqn, struct def *out) {
    for (; es; es = es->next)
        if (strcmp(es->fqn, fqn) == 0) {
            out->en = es;
            return true;
        }
    for (; ms; ms = ms->next) {
        if (strcmp(ms->fqn, fqn) == 0) {
            out->msg = ms;
            return true;
        }
        /* only descend where the name can be: below this message's own name */
        size_t n = strlen(ms->fqn);
        if (strncmp(fqn, ms->fqn, n) == 0 && fqn[n] == '.' &&
            find_def_in(ms->messages, ms->enums, fqn, out))
            return true;
    }
    return false;
}

static bool find_def(const struct registry_proto_file *f, const char *fqn, struct def *out) {
    *out = (struct def){0};
    return find_def_in(f->messages, f->enums, fqn, out);
}

/* The package itself or one of its leading components: a scope a name can be relative to. */
static bool is_package_scope(const struct registry_proto_file *f, const char *name) {
    size_t n = strlen(name);
    return n && strncmp(f->package, name, n) == 0 &&
           (f->package[n] == '\0' || f->package[n] == '.');
}

/* protobuf's name resolution: a relative name is looked up from the innermost scope
 * outwards, by its first component; the first scope where that component is defined (as a
 * type or a package) is where the whole name must live. Names not defined in the file come
 * from imports and are taken as absolute. out holds 2 * REGISTRY_PROTO_MAX_NAME + 2 bytes. */
static void resolve_type(const struct registry_proto_file *f, const char *scope,
                         const char *name, char *out) {
    enum { N = 2 * REGISTRY_PROTO_MAX_NAME + 2 };
    if (name[0] == '.') {
        snprintf(out, N, "%s", name + 1);
        return;
    }
    size_t first = strcspn(name, ".");
    char sc[REGISTRY_PROTO_MAX_NAME + 1], cand[N];
    struct def d;
    snprintf(sc, sizeof sc, "%s", scope);
    for (;;) {
        snprintf(cand, sizeof cand, "%s%s%.*s", sc, sc[0] ? "." : "", (int)first, name);
        if (find_def(f, cand, &d) || is_package_scope(f, cand)) {
            snprintf(out, N, "%s%s%s", sc, sc[0] ? "." : "", name);
            return;
        }
        if (!sc[0]) break;
        char *dot = strrchr(sc, '.');
        if (dot) *dot = '\0';
        else sc[0] = '\0';
    }
    snprintf(out, N, "%s", name);
}

static const struct registry_proto_field *find_field(const struct registry_proto_message *m,
                                                     const char *name, int32_t number,
                                                     int *same_name, int *same_number) {
    const struct registry_proto_field *hit = NULL;
    *same_name = *same_number = 0;
    for (const struct registry_proto_field *x = m->fields; x; x = x->next) {
        if (strcmp(x->name, name) == 0) {
            if (!hit) hit = x;
            (*same_name)++;
        }
        if (x->number == number) (*same_number)++;
    }
    return hit;
}

static bool has_import(const struct registry_proto_file *f, const char *path) {
    for (const struct registry_proto_import *i = f->imports; i; i = i->next)
        if (strcmp(i->path, path) == 0) return true;
    return false;
}

static int check_message(const struct registry_proto_file *f,
                         const struct registry_proto_message *m, const struct want_msg *w,
                         char *reason, size_t len);

/* The type of field x (in message m) against wanted wf. */
static int check_type(const struct registry_proto_file *f, const struct registry_proto_message *m,
                      const struct registry_proto_field *x, const struct want_field *wf,
                      const char *where, char *reason, size_t len) {
    char fqn[2 * REGISTRY_PROTO_MAX_NAME + 2];
    struct def d;
    if (wf->kind == W_SCALAR) {
        if (strcmp(x->type, wf->scalar) == 0) return 0;
        snprintf(reason, len, "%s has type %s, expected %s", where, x->type, wf->scalar);
        return -1;
    }
    resolve_type(f, m->fqn, x->type, fqn);
    bool local = find_def(f, fqn, &d);
    switch (wf->kind) {
    case W_TIMESTAMP:
        if (local || strcmp(fqn, TIMESTAMP_FQN) != 0) {
            snprintf(reason, len, "%s has type %s, expected " TIMESTAMP_FQN, where, x->type);
            return -1;
        }
        if (!has_import(f, TIMESTAMP_IMPORT)) {
            snprintf(reason, len, "%s: the schema does not import " TIMESTAMP_IMPORT, where);
            return -1;
        }
        return 0;
    case W_SOURCE_ENUM:
        if (!d.en) {
            snprintf(reason, len, "%s has type %s, expected an enum defined in the schema "
                     "(FactoidSource)", where, x->type);
            return -1;
        }
        for (const struct registry_proto_enum_value *v = d.en->values; v; v = v->next)
            if (strcmp(v->name, SOURCE_SHOP_NAME) == 0 && v->number == SOURCE_SHOP_VALUE)
                return 0;
        snprintf(reason, len, "%s: enum %s has no " SOURCE_SHOP_NAME " = %d", where,
                 d.en->name, SOURCE_SHOP_VALUE);
        return -1;
    case W_MESSAGE:
        if (!d.msg) {
            snprintf(reason, len, "%s has type %s, expected a message defined in the schema "
                     "(%s)", where, x->type, wf->msg->label);
            return -1;
        }
        return check_message(f, d.msg, wf->msg, reason, len);
    case W_SCALAR:
        break;
    }
    return 0;
}

static int check_field(const struct registry_proto_file *f, const struct registry_proto_message *m,
                       const struct want_msg *w, const struct want_field *wf, char *reason,
                       size_t len) {
    char where[160];
    int same_name, same_number;
    snprintf(where, sizeof where, "%s.%s", w->label, wf->name);
    const struct registry_proto_field *x = find_field(m, wf->name, wf->number, &same_name,
                                                      &same_number);
    if (!x) {
        snprintf(reason, len, "%s (field %d) is missing", where, (int)wf->number);
        return -1;
    }
    if (x->number != wf->number) {
        snprintf(reason, len, "%s has field number %d, expected %d", where, (int)x->number,
                 (int)wf->number);
        return -1;
    }
    if (same_name > 1 || same_number > 1) {
        snprintf(reason, len, "%s: name or number %d declared twice", where, (int)wf->number);
        return -1;
    }
    if (x->is_map) {
        snprintf(reason, len, "%s is a map, expected %s", where,
                 wf->scalar ? wf->scalar : "a message");
        return -1;
    }
    bool repeated = x->label == REGISTRY_PROTO_LABEL_REPEATED;
    if (repeated != wf->repeated) {
        snprintf(reason, len, "%s is %s, expected %s", where,
                 repeated ? "repeated" : "singular", wf->repeated ? "repeated" : "singular");
        return -1;
    }
    return check_type(f, m, x, wf, where, reason, len);
}

/* Recursion: bounded by the depth of the want_* tables (three levels). */
static int check_message(const struct registry_proto_file *f,
                         const struct registry_proto_message *m, const struct want_msg *w,
                         char *reason, size_t len) {
    for (size_t i = 0; i < w->n; i++)
        if (check_field(f, m, w, &w->fields[i], reason, len) != 0) return -1;
    return 0;
}

int registry_proto_check_factoid(const struct registry_proto_file *f, char *reason,
                                 size_t reasonlen) {
    static char dummy[1];
    if (!reason || !reasonlen) {
        reason = dummy;
        reasonlen = sizeof dummy;
    }
    reason[0] = '\0';
    if (strcmp(f->package, FACTOID_PACKAGE) != 0) {
        snprintf(reason, reasonlen, "package is '%s', expected " FACTOID_PACKAGE, f->package);
        return -1;
    }
    if (!f->messages) {
        snprintf(reason, reasonlen, "the schema declares no message");
        return -1;
    }
    if (strcmp(f->messages->name, FACTOID_MESSAGE) != 0) {
        snprintf(reason, reasonlen, "the first message (index [0]) is %s, expected "
                 FACTOID_MESSAGE, f->messages->name);
        return -1;
    }
    return check_message(f, f->messages, &want_factoid, reason, reasonlen);
}

int registry_proto_accepts(const char *text, size_t len, char *reason, size_t reasonlen) {
    char err[256];
    struct registry_proto_file *f = registry_proto_parse(text, len, err, sizeof err);
    if (!f) {
        if (reason && reasonlen) snprintf(reason, reasonlen, "schema text: %s", err);
        return -1;
    }
    int rc = registry_proto_check_factoid(f, reason, reasonlen);
    registry_proto_free(f);
    return rc;
}
