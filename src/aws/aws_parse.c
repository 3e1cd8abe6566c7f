/* src/aws/aws_parse.c: the parsers of AWS answers (see aws.h): STS's XML (AssumeRole and
 * AssumeRoleWithWebIdentity results, and ErrorResponse), the ECS container credentials JSON
 * and the MSK API's GetBootstrapBrokers JSON. Fuzzed by tests/fuzz/aws_parse.c.
 *
 * STS: expat (a streaming parser: the answer is small and only four leaf elements matter),
 * with any DOCTYPE refused so no entity can be declared. Element names are matched by their
 * local part, so a namespace prefix does not matter. Errors carry the AWS error Code and
 * Message, which name roles and policies, never a credential.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>
#include <jansson.h>

#include "aws/aws.h"

static bool two_digits(const char *p) {   /* reads p[1] only when p[0] is a digit */
    return isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]);
}

time_t aws_parse_time(const char *s) {
    struct tm tm = { 0 };
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    const char *p = s + n;
    if (*p == '.') for (p++; isdigit((unsigned char)*p); p++) {}
    long off = 0;
    if (*p == '+' || *p == '-') {
        /* exactly "+HH:MM": sscanf's "%2d:%2d" also took "+1:0" and p then skipped 6 bytes,
         * past the end of the string (found by fuzzing, tests/fuzz/aws_parse/regress_*) */
        if (!two_digits(p + 1) || p[3] != ':' || !two_digits(p + 4)) return -1;
        long hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        off = (*p == '-' ? -1 : 1) * (hh * 3600L + mm * 60L);
        p += 6;
    } else if (*p == 'Z') {
        p++;
    } else {
        return -1;
    }
    if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31) return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : t - off;
}

/* ------------------------------------------------------------------ STS (XML) */

enum sts_field { F_KEY, F_SECRET, F_TOKEN, F_EXPIRATION, F_CODE, F_MESSAGE, F_COUNT, F_NONE };

static const char *const sts_names[F_COUNT] = {
    "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration", "Code", "Message",
};

struct sts_state {
    XML_Parser p;
    enum sts_field cur;
    char *val[F_COUNT];
    size_t len[F_COUNT];
    bool oom;
};

static const char *local_name(const char *name) {
    const char *c = strrchr(name, ':');
    return c ? c + 1 : name;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **attrs) {
    struct sts_state *st = ud;
    (void)attrs;
    st->cur = F_NONE;
    for (int i = 0; i < F_COUNT; i++)
        if (strcmp(local_name(name), sts_names[i]) == 0) st->cur = (enum sts_field)i;
}

static void XMLCALL on_end(void *ud, const XML_Char *name) {
    (void)name;
    ((struct sts_state *)ud)->cur = F_NONE;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int n) {
    struct sts_state *st = ud;
    if (st->cur == F_NONE || n <= 0) return;
    size_t *len = &st->len[st->cur];
    char *v = realloc(st->val[st->cur], *len + (size_t)n + 1);
    if (!v) {
        st->oom = true;
        return;
    }
    memcpy(v + *len, s, (size_t)n);
    *len += (size_t)n;
    v[*len] = '\0';
    st->val[st->cur] = v;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int internal) {
    (void)name, (void)sysid, (void)pubid, (void)internal;
    XML_StopParser(((struct sts_state *)ud)->p, XML_FALSE);
}

/* Trims ASCII whitespace around v in place. */
static char *trim(char *v) {
    if (!v) return NULL;
    char *s = v;
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    memmove(v, s, n + 1);
    return v;
}

static int sts_result(struct sts_state *st, struct aws_credentials *c, char *err, size_t errlen) {
    for (int i = 0; i < F_COUNT; i++) trim(st->val[i]);
    if (st->val[F_CODE]) {
        snprintf(err, errlen, "STS error %s: %.300s", st->val[F_CODE],
                 st->val[F_MESSAGE] ? st->val[F_MESSAGE] : "");
        return -1;
    }
    if (!st->val[F_KEY] || !st->val[F_SECRET] || !*st->val[F_KEY] || !*st->val[F_SECRET]) {
        snprintf(err, errlen, "STS answer without credentials");
        return -1;
    }
    time_t exp = st->val[F_EXPIRATION] ? aws_parse_time(st->val[F_EXPIRATION]) : 0;
    if (exp < 0) {
        snprintf(err, errlen, "STS answer with an unreadable Expiration");
        return -1;
    }
    c->access_key_id = st->val[F_KEY];
    c->secret_access_key = st->val[F_SECRET];
    c->session_token = st->val[F_TOKEN];
    c->expiration = exp;
    st->val[F_KEY] = st->val[F_SECRET] = st->val[F_TOKEN] = NULL;
    return 0;
}

int aws_parse_sts(const char *xml, size_t len, struct aws_credentials *c, char *err,
                  size_t errlen) {
    struct sts_state st = { .cur = F_NONE };
    memset(c, 0, sizeof *c);
    st.p = XML_ParserCreate("UTF-8");
    if (!st.p) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    XML_SetUserData(st.p, &st);
    XML_SetElementHandler(st.p, on_start, on_end);
    XML_SetCharacterDataHandler(st.p, on_text);
    XML_SetStartDoctypeDeclHandler(st.p, on_doctype);
    int rc = -1;
    if (len > 1 << 20 || XML_Parse(st.p, xml, (int)len, XML_TRUE) != XML_STATUS_OK)
        snprintf(err, errlen, "STS answer is not well-formed XML (or declares a DOCTYPE)");
    else if (st.oom)
        snprintf(err, errlen, "out of memory");
    else
        rc = sts_result(&st, c, err, errlen);
    XML_ParserFree(st.p);
    for (int i = 0; i < F_COUNT; i++) free(st.val[i]);
    return rc;
}

/* ------------------------------------------------------------------ JSON answers */

static const char *json_str(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

int aws_parse_ecs(const char *json, size_t len, struct aws_credentials *c, char *err,
                  size_t errlen) {
    memset(c, 0, sizeof *c);
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    const char *k = json_str(o, "AccessKeyId"), *s = json_str(o, "SecretAccessKey");
    const char *t = json_str(o, "Token"), *e = json_str(o, "Expiration");
    int rc = -1;
    if (!json_is_object(o)) snprintf(err, errlen, "answer is not a JSON object");
    else if (!k || !s || !*k || !*s) snprintf(err, errlen, "answer without AccessKeyId and SecretAccessKey");
    else if (e && aws_parse_time(e) < 0) snprintf(err, errlen, "answer with an unreadable Expiration");
    else {
        c->access_key_id = strdup(k);
        c->secret_access_key = strdup(s);
        c->session_token = t && *t ? strdup(t) : NULL;
        c->expiration = e ? aws_parse_time(e) : 0;
        rc = c->access_key_id && c->secret_access_key && (!t || !*t || c->session_token) ? 0 : -1;
        if (rc < 0) {
            aws_credentials_clear(c);
            snprintf(err, errlen, "out of memory");
        }
    }
    json_decref(o);
    return rc;
}

int aws_parse_bootstrap_brokers(const char *json, size_t len, char **brokers, char *err,
                                size_t errlen) {
    *brokers = NULL;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    const char *b = json_str(o, "BootstrapBrokerStringSaslIam");
    if (!json_is_object(o)) snprintf(err, errlen, "GetBootstrapBrokers: answer is not a JSON object");
    else if (!b || !*b)
        snprintf(err, errlen, "GetBootstrapBrokers: no BootstrapBrokerStringSaslIam (is IAM "
                              "authentication enabled on the cluster?)");
    else if (!(*brokers = strdup(b))) snprintf(err, errlen, "out of memory");
    json_decref(o);
    return *brokers ? 0 : -1;
}
