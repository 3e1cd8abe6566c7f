/* uri.c: parsing of Bolt URIs and "host:port" addresses.
 *
 * Accepted: scheme://host[:port][/][?key=value&...] with scheme one of bolt, bolt+s,
 * bolt+ssc, neo4j, neo4j+s, neo4j+ssc; host may be an [IPv6] literal; port defaults to
 * 7687. The query string is the routing context sent in HELLO and ROUTE for neo4j://.
 * User info in the URI is rejected on purpose: credentials belong in bolt_config, where
 * they cannot leak into an address string that ends up in logs.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bolt/bolt_internal.h"

static const struct { const char *name; int tls, routing; } schemes[] = {
    {"bolt", 0, 0}, {"bolt+s", 1, 0}, {"bolt+ssc", 2, 0},
    {"neo4j", 0, 1}, {"neo4j+s", 1, 1}, {"neo4j+ssc", 2, 1},
};

static int parse_port(const char *s, size_t n, int *port) {
    if (n == 0 || n > 5) return -1;
    int p = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        p = p * 10 + (s[i] - '0');
    }
    if (p < 1 || p > 65535) return -1;
    *port = p;
    return 0;
}

/* addr is [host part](:port)?, length n, no path. */
static int split_n(const char *addr, size_t n, char **host, int *port, bolt_error *err) {
    const char *h = addr, *colon = NULL;
    size_t hlen;
    *port = 7687;
    if (n && addr[0] == '[') {
        const char *close = memchr(addr, ']', n);
        if (!close) return bolt_err(err, BOLT_EINVAL, "bad address: unclosed '['");
        h = addr + 1;
        hlen = (size_t)(close - h);
        if (close + 1 < addr + n) {
            if (close[1] != ':') return bolt_err(err, BOLT_EINVAL, "bad address after ']'");
            colon = close + 1;
        }
    } else {
        colon = memchr(addr, ':', n);
        hlen = colon ? (size_t)(colon - addr) : n;
    }
    if (hlen == 0) return bolt_err(err, BOLT_EINVAL, "bad address: empty host");
    if (colon && parse_port(colon + 1, (size_t)(addr + n - colon - 1), port))
        return bolt_err(err, BOLT_EINVAL, "bad address: invalid port");
    if (!(*host = strndup(h, hlen))) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    return BOLT_OK;
}

int bolt_split_address(const char *addr, char **host, int *port, bolt_error *err) {
    return split_n(addr, strlen(addr), host, port, err);
}

static int add_param(bolt_uri *u, const char *kv, size_t n, bolt_error *err) {
    if (n == 0) return BOLT_OK;
    const char *eq = memchr(kv, '=', n);
    if (!eq || eq == kv) return bolt_err(err, BOLT_EINVAL, "bad URI: query needs key=value");
    char **k = realloc(u->keys, (u->nparams + 1) * sizeof *k);
    if (k) u->keys = k;
    char **v = realloc(u->values, (u->nparams + 1) * sizeof *v);
    if (v) u->values = v;
    if (!k || !v) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    u->keys[u->nparams] = strndup(kv, (size_t)(eq - kv));
    u->values[u->nparams] = strndup(eq + 1, (size_t)(kv + n - eq - 1));
    u->nparams++;
    if (!u->keys[u->nparams - 1] || !u->values[u->nparams - 1])
        return bolt_err(err, BOLT_ENOMEM, "out of memory");
    if (!strcmp(u->keys[u->nparams - 1], "address"))
        return bolt_err(err, BOLT_EINVAL, "bad URI: 'address' is reserved in routing context");
    return BOLT_OK;
}

static int parse_query(bolt_uri *u, const char *q, bolt_error *err) {
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        int rc = add_param(u, q, n, err);
        if (rc) return rc;
        q += n + (amp ? 1 : 0);
    }
    return BOLT_OK;
}

static int parse(bolt_uri *u, const char *uri, bolt_error *err) {
    const char *sep = strstr(uri, "://");
    if (!sep) return bolt_err(err, BOLT_EINVAL, "bad URI: missing scheme");
    size_t slen = (size_t)(sep - uri), i;
    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (strlen(schemes[i].name) == slen && !strncasecmp(uri, schemes[i].name, slen)) break;
    if (i == sizeof schemes / sizeof schemes[0])
        return bolt_err(err, BOLT_EINVAL, "bad URI: unsupported scheme '%.*s'", (int)slen, uri);
    u->tls = schemes[i].tls;
    u->routing = schemes[i].routing;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    if (memchr(auth, '@', alen))
        return bolt_err(err, BOLT_EINVAL, "bad URI: user info not allowed (use bolt_config)");
    int rc = split_n(auth, alen, &u->host, &u->port, err);
    if (rc) return rc;
    const char *rest = auth + alen;
    if (*rest == '/') rest++;
    if (*rest == '?') return parse_query(u, rest + 1, err);
    if (*rest) return bolt_err(err, BOLT_EINVAL, "bad URI: unexpected path");
    return BOLT_OK;
}

int bolt_uri_parse(const char *uri, bolt_uri **out, bolt_error *err) {
    *out = NULL;
    if (!uri) return bolt_err(err, BOLT_EINVAL, "bad URI: NULL");
    bolt_uri *u = calloc(1, sizeof *u);
    if (!u) return bolt_err(err, BOLT_ENOMEM, "out of memory");
    int rc = parse(u, uri, err);
    if (rc) {
        bolt_uri_free(u);
        return rc;
    }
    const char *fmt = strchr(u->host, ':') ? "[%s]:%d" : "%s:%d";
    snprintf(u->address, sizeof u->address, fmt, u->host, u->port);
    *out = u;
    return BOLT_OK;
}

void bolt_uri_free(bolt_uri *u) {
    if (!u) return;
    for (size_t i = 0; i < u->nparams; i++) {
        free(u->keys[i]);
        free(u->values[i]);
    }
    free(u->keys);
    free(u->values);
    free(u->host);
    free(u);
}

const char *bolt_uri_host(const bolt_uri *u) { return u->host; }
int bolt_uri_port(const bolt_uri *u) { return u->port; }
int bolt_uri_tls(const bolt_uri *u) { return u->tls; }
int bolt_uri_routing(const bolt_uri *u) { return u->routing; }
size_t bolt_uri_param_count(const bolt_uri *u) { return u->nparams; }
const char *bolt_uri_param_key(const bolt_uri *u, size_t i) {
    return i < u->nparams ? u->keys[i] : NULL;
}
const char *bolt_uri_param_value(const bolt_uri *u, size_t i) {
    return i < u->nparams ? u->values[i] : NULL;
}
