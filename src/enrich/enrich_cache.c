/* enrich_cache.c: bounded LRU + TTL cache of enrichment answers (see enrich_cache.h).
 *
 * A fixed array of hash buckets (a power of two >= max_entries, so chains stay short without
 * ever rehashing) and an intrusive LRU list: head = most recently used, tail = next victim.
 * Every operation takes the one mutex; work under it is a hash lookup and a value copy, small
 * next to the HTTP round trips the cache saves, so finer locking would buy nothing.
 */
#include "enrich/enrich_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *id;
    uint64_t expires_ms;
    struct enrich_value value;
    struct entry *hnext;            /* bucket chain */
    struct entry *prev, *next;      /* LRU list */
};

struct enrich_cache {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets;                /* power of two */
    size_t count, max_entries;
    struct entry *head, *tail;
    struct enrich_cache_stats stats;
};

/* ---- values ------------------------------------------------------------------------------ */

static char *dup_or_null(const char *s, bool *failed) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *failed = true;
    return d;
}

void enrich_value_clear(struct enrich_value *v) {
    free(v->name);
    free(v->extra);
    for (size_t i = 0; i < v->categories_count; i++) free(v->categories[i]);
    free(v->categories);
    memset(v, 0, sizeof *v);
}

int enrich_value_copy(struct enrich_value *dst, const struct enrich_value *src) {
    bool failed = false;
    memset(dst, 0, sizeof *dst);
    dst->known = src->known;
    dst->name = dup_or_null(src->name, &failed);
    dst->extra = dup_or_null(src->extra, &failed);
    if (src->categories_count) {
        dst->categories = calloc(src->categories_count, sizeof *dst->categories);
        if (!dst->categories) failed = true;
        for (size_t i = 0; dst->categories && i < src->categories_count; i++) {
            dst->categories[i] = dup_or_null(src->categories[i], &failed);
            dst->categories_count = i + 1;
        }
    }
    if (failed) {
        enrich_value_clear(dst);
        return -1;
    }
    return 0;
}

/* ---- table and list ---------------------------------------------------------------------- */

static uint64_t hash_id(const char *s) {    /* FNV-1a: ids are short, trusted strings */
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static struct entry **slot_of(struct enrich_cache *c, const char *id) {
    struct entry **p = &c->buckets[hash_id(id) & (c->nbuckets - 1)];
    while (*p && strcmp((*p)->id, id) != 0) p = &(*p)->hnext;
    return p;   /* points at the entry, or at the chain's terminating NULL */
}

static void lru_unlink(struct enrich_cache *c, struct entry *e) {
    if (e->prev) e->prev->next = e->next; else c->head = e->next;
    if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(struct enrich_cache *c, struct entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void entry_free(struct entry *e) {
    enrich_value_clear(&e->value);
    free(e->id);
    free(e);
}

/* Unlinks *slot's entry from both structures and frees it. */
static void remove_at(struct enrich_cache *c, struct entry **slot) {
    struct entry *e = *slot;
    *slot = e->hnext;
    lru_unlink(c, e);
    entry_free(e);
    c->count--;
}

static void evict_lru(struct enrich_cache *c) {
    if (!c->tail) return;
    remove_at(c, slot_of(c, c->tail->id));
    c->stats.evictions++;
}

/* ---- public ------------------------------------------------------------------------------ */

struct enrich_cache *enrich_cache_new(size_t max_entries) {
    if (max_entries == 0) return NULL;
    struct enrich_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->nbuckets = 16;
    while (c->nbuckets < max_entries && c->nbuckets < ((size_t)1 << 30)) c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    c->max_entries = max_entries;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void enrich_cache_free(struct enrich_cache *c) {
    if (!c) return;
    for (struct entry *e = c->head, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int enrich_cache_get(struct enrich_cache *c, const char *id, uint64_t now_ms,
                     struct enrich_value *out) {
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    struct entry **slot = slot_of(c, id);
    struct entry *e = *slot;
    if (e && e->expires_ms <= now_ms) {
        remove_at(c, slot);
        c->stats.expired++;
        e = NULL;
    }
    if (!e) {
        c->stats.misses++;
    } else if (enrich_value_copy(out, &e->value) != 0) {
        rc = -1;
    } else {
        lru_unlink(c, e);
        lru_push_front(c, e);
        c->stats.hits++;
        rc = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int enrich_cache_put(struct enrich_cache *c, const char *id, const struct enrich_value *v,
                     uint64_t expires_ms) {
    /* Copy outside the lock: allocation is the slow part and needs no shared state. */
    struct entry *n = calloc(1, sizeof *n);
    if (!n || !(n->id = strdup(id)) || enrich_value_copy(&n->value, v) != 0) {
        if (n) free(n->id);
        free(n);
        return -1;
    }
    n->expires_ms = expires_ms;

    pthread_mutex_lock(&c->mu);
    struct entry **slot = slot_of(c, id);
    if (*slot) {
        remove_at(c, slot);
    } else if (c->count >= c->max_entries) {
        evict_lru(c);
        slot = slot_of(c, id);      /* eviction may have changed this chain */
    }
    n->hnext = *slot;
    *slot = n;
    lru_push_front(c, n);
    c->count++;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void enrich_cache_stats(struct enrich_cache *c, struct enrich_cache_stats *out) {
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->entries = c->count;
    pthread_mutex_unlock(&c->mu);
}
