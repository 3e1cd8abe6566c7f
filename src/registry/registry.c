/* src/registry/registry.c: schema-id verdicts for the factoid consumer (contract in
 * registry.h): the allowlist and open modes, the id cache, and the registry lookup over
 * libcurl + jansson whose .proto text proto_text.c judges.
 *
 * Layout: options and lifecycle; the cache (open addressing keyed by id, with a FIFO of the
 * refused ids that is the only thing ever evicted); one HTTP lookup and its classification
 * into a verdict; registry_check tying them together. Two mutexes, always taken in the order
 * http_mu then mu: mu guards the cache, the stats and the allowlist mode's last verdict and is
 * never held across I/O; http_mu guards the curl handle and makes concurrent misses of one id
 * cost one request. A reason is formatted and cleaned once, where it is made; an id seen
 * before (the cache, or the last local verdict) only copies it.
 */
#include "registry/registry.h"
#include "base/base.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_body.h"
#include "http/http_client.h"
#include "http/http_url.h"
#include "registry/proto_text.h"

#define REASON_MAX 256
#define CACHE_MIN_SLOTS 16
#define ERROR_CODE_SCHEMA_NOT_FOUND 40403   /* Confluent REST error for an unknown id */

enum registry_mode_kind { MODE_REGISTRY, MODE_ALLOWLIST, MODE_OPEN };

struct cache_slot {
    bool used;
    int32_t id;
    registry_verdict verdict;
    char reason[REASON_MAX];
};

struct cache {
    struct cache_slot *slots;
    size_t nslots;              /* power of two, at most half full */
    size_t count, max;
    int32_t *refused;           /* FIFO of cached refused ids, capacity max */
    size_t refused_head, refused_len;
};

struct registry {
    enum registry_mode_kind mode;
    char *url;                  /* no trailing slash */
    char *token;                /* kept only to scrub it from messages; curl holds a copy */
    int *allowed;
    size_t nallowed;
    size_t max_body;
    pthread_mutex_t mu;         /* cache, stats, last_local */
    struct cache cache;
    struct registry_stats stats;
    struct cache_slot last_local; /* allowlist or open mode: the last verdict and its reason */
    pthread_mutex_t http_mu;    /* curl handle */
    CURL *curl;
    struct curl_slist *headers;
    char curl_err[CURL_ERROR_SIZE];
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* Makes a message one printable line and masks the token in it, should it ever get there
 * (curl error texts, an echoing registry). Masking in place keeps the length. */
static void clean_reason(const struct registry *r, char *s) {
    if (r->token && r->token[0]) {
        size_t n = strlen(r->token);
        for (char *p = s; (p = strstr(p, r->token)); p += n) memset(p, '*', n);
    }
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f) *s = '?';
}

const char *registry_verdict_name(registry_verdict v) {
    switch (v) {
    case REGISTRY_ACCEPTED: return "accepted";
    case REGISTRY_REFUSED: return "refused";
    case REGISTRY_UNAVAILABLE: return "unavailable";
    }
    return "unknown";
}

const char *registry_mode(const struct registry *r) {
    switch (r->mode) {
    case MODE_REGISTRY: return "registry";
    case MODE_ALLOWLIST: return "allowlist";
    case MODE_OPEN: return "open";
    }
    return "unknown";
}

void registry_options_init(struct registry_options *o) {
    memset(o, 0, sizeof *o);
    o->timeout_ms = 5000;
    o->max_cached_ids = 1024;
    o->max_response_bytes = 4u << 20;
}

/* ---- cache (callers hold mu) ------------------------------------------------------------- */

static size_t slot_home(const struct cache *c, int32_t id) {
    uint32_t h = (uint32_t)id * 0x9E3779B1u;
    h ^= h >> 15;
    return h & (c->nslots - 1);
}

/* The slot holding id, or the empty slot where it would go. */
static size_t slot_find(const struct cache *c, int32_t id) {
    size_t i = slot_home(c, id);
    while (c->slots[i].used && c->slots[i].id != id) i = (i + 1) & (c->nslots - 1);
    return i;
}

static const struct cache_slot *cache_get(const struct cache *c, int32_t id) {
    if (!c->slots) return NULL;
    const struct cache_slot *s = &c->slots[slot_find(c, id)];
    return s->used ? s : NULL;
}

static int cache_grow(struct cache *c) {
    size_t n = c->nslots ? c->nslots * 2 : CACHE_MIN_SLOTS;
    struct cache_slot *old = c->slots, *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    size_t oldn = c->nslots;
    c->slots = slots;
    c->nslots = n;
    for (size_t i = 0; i < oldn; i++)
        if (old[i].used) c->slots[slot_find(c, old[i].id)] = old[i];
    free(old);
    return 0;
}

/* Backward-shift deletion: later members of the probe run move up, no tombstones. */
static void cache_delete(struct cache *c, int32_t id) {
    size_t mask = c->nslots - 1, i = slot_find(c, id);
    if (!c->slots[i].used) return;
    c->slots[i].used = false;
    c->count--;
    for (size_t j = (i + 1) & mask; c->slots[j].used; j = (j + 1) & mask) {
        size_t k = slot_home(c, c->slots[j].id);
        bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
        if (stays) continue;
        c->slots[i] = c->slots[j];
        c->slots[j].used = false;
        i = j;
    }
}

static void cache_put(struct registry *r, int32_t id, registry_verdict v, const char *reason) {
    struct cache *c = &r->cache;
    if (cache_get(c, id)) return;
    if (c->count >= c->max) {
        if (!c->refused_len) return;    /* full of accepted ids: answer, do not cache */
        cache_delete(c, c->refused[c->refused_head]);
        c->refused_head = (c->refused_head + 1) % c->max;
        c->refused_len--;
        r->stats.evictions++;
    }
    if ((c->count + 1) * 2 > c->nslots && cache_grow(c) != 0) return;
    assert((c->nslots & (c->nslots - 1)) == 0 && (c->count + 1) * 2 <= c->nslots);
    struct cache_slot *s = &c->slots[slot_find(c, id)];
    s->used = true;
    s->id = id;
    s->verdict = v;
    snprintf(s->reason, sizeof s->reason, "%s", reason);
    c->count++;
    if (v == REGISTRY_REFUSED) {
        c->refused[(c->refused_head + c->refused_len) % c->max] = id;
        c->refused_len++;
    }
}

/* ---- lifecycle --------------------------------------------------------------------------- */

/* http(s), a host, no user:password, no query or fragment (the path is appended to). The URL
 * is never echoed: it may hold what it should not. */
static int check_url(const char *url, char *err, size_t errlen) {
    char why[128];
    if (http_url_check(url, 0, why, sizeof why) == 0) return 0;
    base_errf(err, errlen, "registry: url %s", why);
    return -1;
}

static char *strdup_trim_slash(const char *s) {
    size_t n = strlen(s);
    while (n && s[n - 1] == '/') n--;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int registry_check_options(const struct registry_options *o, char *err, size_t errlen) {
    const char *bad = NULL;
    if (o->timeout_ms <= 0) bad = "timeout_ms must be > 0";
    else if (o->connect_timeout_ms < 0) bad = "connect_timeout_ms must be >= 0";
    else if (o->max_cached_ids < 1) bad = "max_cached_ids must be >= 1";
    else if (o->max_response_bytes < 1024) bad = "max_response_bytes must be >= 1024";
    else if (o->allowed_ids_count && !o->allowed_ids) bad = "allowed_ids is NULL";
    else if (o->username && o->username[0] && strchr(o->username, ':'))
        bad = "username must not contain ':'";
    else if (http_text_check(o->username, NULL, 0) || http_text_check(o->token, NULL, 0))
        bad = "username and token must not contain control characters (CR, LF, ...)";
    if (bad) {
        base_errf(err, errlen, "registry: %s", bad);
        return -1;
    }
    if (o->url && o->url[0]) return check_url(o->url, err, errlen);
    return 0;
}

/* The curl handle, configured once: per request only the URL and the body sink change. */
static int setup_curl(struct registry *r, const struct registry_options *o) {
    if (!(r->curl = curl_easy_init())) return -1;
    r->headers = curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, "
                                         "application/json");
    if (!r->headers) return -1;
    long connect = o->connect_timeout_ms ? o->connect_timeout_ms : o->timeout_ms;
    CURL *e = r->curl;
    http_handle_setup(e, &(struct http_handle_options){.connect_timeout_ms = connect,
                                                       .timeout_ms = o->timeout_ms,
                                                       .errbuf = r->curl_err,
                                                       .user_agent = "consumer-graph-worker",
                                                       .cancel = o->cancel});
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    if (o->username && o->username[0]) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, o->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->token ? o->token : "");
    }
    return 0;
}

static int init_fields(struct registry *r, const struct registry_options *o) {
    r->max_body = o->max_response_bytes;
    r->cache.max = o->max_cached_ids;
    if (!(r->cache.refused = calloc(o->max_cached_ids, sizeof *r->cache.refused))) return -1;
    if (o->allowed_ids_count) {
        r->allowed = malloc(o->allowed_ids_count * sizeof *r->allowed);
        if (!r->allowed) return -1;
        memcpy(r->allowed, o->allowed_ids, o->allowed_ids_count * sizeof *r->allowed);
        r->nallowed = o->allowed_ids_count;
    }
    if (o->token && !(r->token = strdup(o->token))) return -1;
    if (o->url && o->url[0]) {
        r->mode = MODE_REGISTRY;
        if (!(r->url = strdup_trim_slash(o->url))) return -1;
        return setup_curl(r, o);
    }
    r->mode = r->nallowed ? MODE_ALLOWLIST : MODE_OPEN;
    return 0;
}

struct registry *registry_new(const struct registry_options *o, char *err, size_t errlen) {
    if (registry_check_options(o, err, errlen) != 0) return NULL;
    if (http_global_init("registry", err, errlen) != 0) return NULL;
    struct registry *r = calloc(1, sizeof *r);
    if (!r) {
        base_errf(err, errlen, "registry: out of memory");
        return NULL;
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->http_mu, NULL);
    if (init_fields(r, o) != 0) {
        registry_free(r);
        base_errf(err, errlen, "registry: out of memory");
        return NULL;
    }
    return r;
}

void registry_free(struct registry *r) {
    if (!r) return;
    if (r->curl) curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->http_mu);
    free(r->cache.slots);
    free(r->cache.refused);
    free(r->allowed);
    http_wipe_free(r->token);
    free(r->url);
    free(r);
}

/* ---- one lookup (caller holds http_mu) --------------------------------------------------- */

/* A 200 answer: {"schemaType":"PROTOBUF","schema":"<.proto text>",...}. schemaType absent
 * means AVRO (Confluent omits it for Avro). */
static registry_verdict judge_schema(int32_t id, const struct http_body *b, char *reason,
                                     size_t len) {
    /* JSON_ALLOW_NUL: a schema text holding \u0000 is then refused by the .proto parser
     * (final) rather than being "malformed JSON" (transient) forever. */
    json_t *j = json_loadb(b->data ? b->data : "", b->len, JSON_ALLOW_NUL, NULL);
    json_t *type = json_object_get(j, "schemaType"), *schema = json_object_get(j, "schema");
    registry_verdict v = REGISTRY_UNAVAILABLE;
    if (!json_is_object(j)) {
        base_errf(reason, len, "schema registry answered schema id %d with malformed JSON",
                (int)id);
    } else if (type && !json_is_string(type)) {
        base_errf(reason, len, "schema registry answered schema id %d with a non-string "
                "schemaType", (int)id);
    } else if (type && strcmp(json_string_value(type), "PROTOBUF") != 0) {
        v = REGISTRY_REFUSED;
        base_errf(reason, len, "schema id %d is not protobuf (schemaType %.32s)", (int)id,
                json_string_value(type));
    } else if (!type) {
        v = REGISTRY_REFUSED;
        base_errf(reason, len, "schema id %d is not protobuf (schemaType absent: AVRO)", (int)id);
    } else if (!json_is_string(schema)) {
        base_errf(reason, len, "schema registry answered schema id %d without schema text",
                (int)id);
    } else {
        char why[REASON_MAX - 64];
        if (registry_proto_accepts(json_string_value(schema), json_string_length(schema), why,
                                   sizeof why) == 0) {
            v = REGISTRY_ACCEPTED;
            base_errf(reason, len, "schema id %d: factoids.v1.Factoid, compatible", (int)id);
        } else {
            v = REGISTRY_REFUSED;
            base_errf(reason, len, "schema id %d is incompatible: %s", (int)id, why);
        }
    }
    json_decref(j);
    return v;
}

/* A 404 is an unknown id only when the registry says so (error_code 40403). */
static registry_verdict judge_404(int32_t id, const struct http_body *b, char *reason, size_t len) {
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
    json_t *code = json_object_get(j, "error_code");
    bool unknown = json_is_integer(code) &&
                   json_integer_value(code) == ERROR_CODE_SCHEMA_NOT_FOUND;
    json_decref(j);
    if (unknown) {
        base_errf(reason, len, "unknown schema id %d (registry: schema not found)", (int)id);
        return REGISTRY_REFUSED;
    }
    base_errf(reason, len, "schema registry answered 404 for schema id %d without error_code "
            "40403: is schema_registry.url right?", (int)id);
    return REGISTRY_UNAVAILABLE;
}

static registry_verdict judge_status(int32_t id, long status, const struct http_body *b,
                                     char *reason, size_t len) {
    if (status == 200) return judge_schema(id, b, reason, len);
    if (status == 404) return judge_404(id, b, reason, len);
    if (status == 401 || status == 403)
        base_errf(reason, len, "schema registry refused the credentials (HTTP %ld): check "
                "schema_registry.username and password", status);
    else
        base_errf(reason, len, "schema registry answered HTTP %ld for schema id %d", status,
                (int)id);
    return REGISTRY_UNAVAILABLE;
}

static registry_verdict lookup(struct registry *r, int32_t id, char *reason, size_t len) {
    assert(pthread_mutex_trylock(&r->http_mu) == EBUSY);    /* held, by the caller */
    char url[2048];
    struct http_body b;
    http_body_init(&b, r->max_body);
    if ((size_t)snprintf(url, sizeof url, "%s/schemas/ids/%d", r->url, (int)id) >= sizeof url) {
        base_errf(reason, len, "schema registry URL too long");
        return REGISTRY_UNAVAILABLE;
    }
    r->curl_err[0] = '\0';
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, http_body_write);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &b);
    pthread_mutex_lock(&r->mu);
    r->stats.http_calls++;
    pthread_mutex_unlock(&r->mu);
    CURLcode cc = curl_easy_perform(r->curl);
    long status = 0;
    registry_verdict v = REGISTRY_UNAVAILABLE;
    if (b.too_big) {
        base_errf(reason, len, "schema registry answer for schema id %d is over %zu bytes",
                (int)id, r->max_body);
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        base_errf(reason, len, "schema registry lookup for schema id %d cancelled: stopping",
                  (int)id);
    } else if (cc != CURLE_OK) {
        base_errf(reason, len, "schema registry unreachable for schema id %d: %s", (int)id,
                r->curl_err[0] ? r->curl_err : curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
        v = judge_status(id, status, &b, reason, len);
    }
    http_body_free(&b);
    return v;
}

/* ---- checks ------------------------------------------------------------------------------ */

static bool allowed(const struct registry *r, int32_t id) {
    for (size_t i = 0; i < r->nallowed; i++)
        if (r->allowed[i] == id) return true;
    return false;
}

/* src into dst (len >= 1), cut to fit: a reason already made and cleaned. */
static void copy_reason(char *dst, size_t len, const char *src) {
    size_t n = strnlen(src, len - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* From the cache: true and *v set when id is there (its reason was cleaned when cached). */
static bool cached(struct registry *r, int32_t id, registry_verdict *v, char *reason,
                   size_t len) {
    pthread_mutex_lock(&r->mu);
    const struct cache_slot *s = cache_get(&r->cache, id);
    if (s) {
        *v = s->verdict;
        copy_reason(reason, len, s->reason);
        r->stats.cache_hits++;
    }
    pthread_mutex_unlock(&r->mu);
    return s != NULL;
}

static registry_verdict check_registry(struct registry *r, int32_t id, char *reason,
                                       size_t len) {
    registry_verdict v;
    if (cached(r, id, &v, reason, len)) return v;
    pthread_mutex_lock(&r->http_mu);
    if (!cached(r, id, &v, reason, len)) {     /* another thread may just have asked */
        v = lookup(r, id, reason, len);
        clean_reason(r, reason);
        if (v != REGISTRY_UNAVAILABLE) {
            pthread_mutex_lock(&r->mu);
            cache_put(r, id, v, reason);
            pthread_mutex_unlock(&r->mu);
        }
    }
    pthread_mutex_unlock(&r->http_mu);
    return v;
}

/* The verdicts made without the registry; -1 when the registry must be asked. */
static int check_local(const struct registry *r, int32_t id, char *reason, size_t len) {
    if (id < 0) {
        base_errf(reason, len, "the record carries no schema id");
        return REGISTRY_REFUSED;
    }
    if (r->nallowed && !allowed(r, id)) {
        base_errf(reason, len, "schema id %d is not in schema_registry.allowed_schema_ids",
                (int)id);
        return REGISTRY_REFUSED;
    }
    switch (r->mode) {
    case MODE_ALLOWLIST:
        base_errf(reason, len, "schema id %d is in schema_registry.allowed_schema_ids", (int)id);
        return REGISTRY_ACCEPTED;
    case MODE_OPEN:
        base_errf(reason, len, "no schema registry nor allowlist configured: schema id %d "
                "allowed", (int)id);
        return REGISTRY_ACCEPTED;
    case MODE_REGISTRY:
        break;
    }
    return -1;
}

/* Without a registry the configuration alone decides, and a topic carries one schema id or
 * a few: the last verdict is kept with its reason (under mu) and copied when the same id
 * comes again, not formatted and cleaned for every record. */
static bool last_local(struct registry *r, int32_t id, registry_verdict *v, char *reason,
                       size_t len) {
    pthread_mutex_lock(&r->mu);
    bool hit = r->last_local.used && r->last_local.id == id;
    if (hit) {
        *v = r->last_local.verdict;
        copy_reason(reason, len, r->last_local.reason);
    }
    pthread_mutex_unlock(&r->mu);
    return hit;
}

/* Every reason is cleaned where it is made: here, or in check_registry before it is cached,
 * so a repeated id (every factoid record but the first of its schema) only copies one. */
static registry_verdict check_inner(struct registry *r, int32_t id, char *reason, size_t len) {
    registry_verdict v;
    bool local = r->mode != MODE_REGISTRY;
    if (local && last_local(r, id, &v, reason, len)) return v;
    int lv = check_local(r, id, reason, len);
    if (lv < 0) return check_registry(r, id, reason, len);
    clean_reason(r, reason);
    if (local) {
        pthread_mutex_lock(&r->mu);
        r->last_local = (struct cache_slot){.used = true, .id = id, .verdict = lv};
        copy_reason(r->last_local.reason, sizeof r->last_local.reason, reason);
        pthread_mutex_unlock(&r->mu);
    }
    return (registry_verdict)lv;
}

registry_verdict registry_check(struct registry *r, int32_t schema_id, char *reason,
                                size_t reasonlen) {
    char buf[REASON_MAX];
    buf[0] = '\0';
    registry_verdict v = check_inner(r, schema_id, buf, sizeof buf);
    pthread_mutex_lock(&r->mu);
    r->stats.lookups++;
    if (v == REGISTRY_ACCEPTED) r->stats.accepted++;
    else if (v == REGISTRY_REFUSED) r->stats.refused++;
    else r->stats.failures++;
    pthread_mutex_unlock(&r->mu);
    if (reason && reasonlen) copy_reason(reason, reasonlen, buf);
    return v;
}

void registry_get_stats(struct registry *r, struct registry_stats *out) {
    pthread_mutex_lock(&r->mu);
    *out = r->stats;
    out->cached_ids = r->cache.count;
    pthread_mutex_unlock(&r->mu);
}

static int entry_cmp(const void *a, const void *b) {
    int32_t x = ((const struct registry_entry *)a)->schema_id;
    int32_t y = ((const struct registry_entry *)b)->schema_id;
    return (x > y) - (x < y);
}

size_t registry_entries(struct registry *r, struct registry_entry *out, size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    size_t total = r->cache.count;
    for (size_t i = 0; i < r->cache.nslots && n < max; i++) {
        const struct cache_slot *s = &r->cache.slots[i];
        if (!s->used) continue;
        out[n].schema_id = s->id;
        out[n].verdict = s->verdict;
        snprintf(out[n].reason, sizeof out[n].reason, "%s", s->reason);
        n++;
    }
    pthread_mutex_unlock(&r->mu);
    if (n) qsort(out, n, sizeof *out, entry_cmp);
    return total;
}
