/* enrich_cache.c: bounded, TTL'd cache of enrichment answers, evicting by second chance, an
 * approximation of least recently used (see enrich_cache.h).
 *
 * An array of hash buckets that doubles whenever the entries fill half of it (a power of two,
 * 1 024 at first, at most the first power of two >= 2 x max_entries), so chains stay short
 * (each entry keeps its hash, compared before the id) and a cache of a few thousand products
 * does not hold a table sized for max_entries (100 000 by default: 2 MiB of buckets each,
 * issue 14's RSS); and an intrusive list in the order of insertion, evicted from its tail
 * with a second chance (CLOCK): a hit only marks its entry, and eviction sends a marked tail
 * back to the front instead of removing it, so a hit touches no neighbour's memory (moving
 * each hit to the front cost three cache misses per lookup, most of a lookup's time).
 * Every operation takes the one mutex; work under it is a hash lookup and a value copy, small
 * next to the HTTP round trips the cache saves, so finer locking would buy nothing; a batch's
 * lookups take it once (enrich_cache_get_many). A value put in is packed into a block of its
 * own (pack_new: made tight when it is stored, not kept from the answer it came in, whose
 * blocks scattered among short-lived ones held ~1 MB more of the heap in a benchmark), and a
 * hit shares the entry's block: one atomic increment, where copying it (a malloc, a memcpy,
 * later a free) cost a fifth of the enrichment's CPU (issue 14).
 *
 * A block starts with its reference count, then the categories array (aligned), then the
 * strings; nothing writes to it after it is packed, so sharing needs no lock.
 */
#include "enrich/enrich_cache.h"
#include "base/base.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    uint64_t hash;                  /* of id: chains and regrowth compare it before the id */
    struct entry *hnext;            /* bucket chain */
    uint64_t expires_ms;
    struct enrich_value value;
    struct entry *prev, *next;      /* insertion order; eviction from the tail */
    bool used;                      /* hit since it last reached the front: a second chance */
    char id[];                      /* in the entry: a lookup's compare reads no other block */
};

struct enrich_cache {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets, max_buckets;   /* powers of two */
    size_t count, max_entries;
    struct entry *head, *tail;
    struct enrich_cache_stats stats;
};

/* ---- values ------------------------------------------------------------------------------ */

/* The head of a block; max_align_t keeps the categories array after it aligned. */
union block_head {
    atomic_size_t refs;
    max_align_t align;
};

void *enrich_block_new(size_t nptrs, size_t nbytes, char ***ptrs, char **strs) {
    union block_head *h = malloc(sizeof *h + nptrs * sizeof(char *) + nbytes);
    if (!h) return NULL;
    atomic_init(&h->refs, 1);
    *ptrs = (char **)(void *)(h + 1);
    *strs = (char *)(h + 1) + nptrs * sizeof(char *);
    return h;
}

static void block_unref(void *block) {
    union block_head *h = block;
    if (atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) == 1) free(h);
}

void enrich_value_clear(struct enrich_value *v) {
    if (v->block) {
        block_unref(v->block);
    } else {
        free(v->name);
        free(v->extra);
        for (size_t i = 0; i < v->categories_count; i++) free(v->categories[i]);
        free(v->categories);
    }
    memset(v, 0, sizeof *v);
}

static size_t str_size(const char *s) {
    return s ? strlen(s) + 1 : 0;
}

/* A packed value's strings: one run right after its categories array. */
static const char *strings_of(const struct enrich_value *v) {
    return (const char *)((const union block_head *)v->block + 1) +
           v->categories_count * sizeof(char *);
}

void enrich_value_packed_size(const struct enrich_value *src, size_t *nptrs, size_t *nbytes) {
    *nptrs += src->categories_count;
    if (src->block) {
        *nbytes += src->block_strings;
        return;
    }
    *nbytes += str_size(src->name) + str_size(src->extra);
    for (size_t i = 0; i < src->categories_count; i++) *nbytes += str_size(src->categories[i]);
}

char *enrich_pack_string(const char *s, char **strs) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*strs, s, n);
    *strs += n;
    return d;
}

/* The same string moved from a packed value's run (from) to the copy of that run (to). */
static char *rebase(const char *s, const char *from, char *to) {
    return s ? to + (s - from) : NULL;
}

static void pack_packed(struct enrich_value *dst, const struct enrich_value *src, char ***ptrs,
                        char **strs) {
    const char *from = strings_of(src);
    char *to = memcpy(*strs, from, src->block_strings);
    *strs += src->block_strings;
    dst->name = rebase(src->name, from, to);
    dst->extra = rebase(src->extra, from, to);
    if (src->categories_count) {
        dst->categories = *ptrs;
        *ptrs += src->categories_count;
        for (size_t i = 0; i < src->categories_count; i++)
            dst->categories[i] = rebase(src->categories[i], from, to);
        dst->categories_count = src->categories_count;
    }
}

void enrich_value_pack(struct enrich_value *dst, const struct enrich_value *src, char ***ptrs,
                       char **strs) {
    memset(dst, 0, sizeof *dst);
    dst->known = src->known;
    if (src->block) {
        pack_packed(dst, src, ptrs, strs);
        return;
    }
    dst->name = enrich_pack_string(src->name, strs);
    dst->extra = enrich_pack_string(src->extra, strs);
    if (src->categories_count) {
        dst->categories = *ptrs;
        *ptrs += src->categories_count;
        for (size_t i = 0; i < src->categories_count; i++)
            dst->categories[i] = enrich_pack_string(src->categories[i], strs);
        dst->categories_count = src->categories_count;
    }
}

/* A copy of src in a block of its own. */
static int pack_new(struct enrich_value *dst, const struct enrich_value *src) {
    size_t nptrs = 0, nbytes = 0;
    enrich_value_packed_size(src, &nptrs, &nbytes);
    memset(dst, 0, sizeof *dst);
    if (nptrs + nbytes == 0) {
        dst->known = src->known;
        return 0;
    }
    char **ptrs, *strs;
    void *block = enrich_block_new(nptrs, nbytes, &ptrs, &strs);
    if (!block) return -1;
    enrich_value_pack(dst, src, &ptrs, &strs);
    dst->block = block;
    dst->block_strings = nbytes;
    return 0;
}

int enrich_value_copy(struct enrich_value *dst, const struct enrich_value *src) {
    if (!src->block) return pack_new(dst, src);
    atomic_fetch_add_explicit(&((union block_head *)src->block)->refs, 1,
                              memory_order_relaxed);   /* immutable: shared */
    *dst = *src;
    return 0;
}

/* ---- table and list ---------------------------------------------------------------------- */

static struct entry **slot_of(struct enrich_cache *c, const char *id, uint64_t h) {
    struct entry **p = &c->buckets[h & (c->nbuckets - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->id, id) != 0)) p = &(*p)->hnext;
    return p;   /* points at the entry, or at the chain's terminating NULL */
}

static void list_unlink(struct enrich_cache *c, struct entry *e) {
    if (e->prev) e->prev->next = e->next; else c->head = e->next;
    if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void list_push_front(struct enrich_cache *c, struct entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void entry_free(struct entry *e) {
    enrich_value_clear(&e->value);
    free(e);
}

/* Unlinks *slot's entry from both structures and frees it. */
static void remove_at(struct enrich_cache *c, struct entry **slot) {
    struct entry *e = *slot;
    *slot = e->hnext;
    list_unlink(c, e);
    entry_free(e);
    c->count--;
}

/* Doubles the bucket array when the entries fill half of it (and it may still grow).
 * Rehashing is amortised: each entry moves once per doubling. Out of memory keeps the old
 * table. */
static void maybe_grow(struct enrich_cache *c) {
    if (c->count * 2 < c->nbuckets || c->nbuckets >= c->max_buckets) return;
    size_t n = c->nbuckets * 2;
    struct entry **b = calloc(n, sizeof *b);
    if (!b) return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct entry *e = c->buckets[i], *next; e; e = next) {
            next = e->hnext;
            struct entry **slot = &b[e->hash & (n - 1)];
            e->hnext = *slot;
            *slot = e;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
}

/* Second chance: a tail entry hit since it was last put at the front goes back to the front
 * (once; its mark is cleared) and the next one is looked at, so the victim is the oldest
 * entry not used since. Ends within count steps: every step clears a mark. */
static void evict_one(struct enrich_cache *c) {
    while (c->tail && c->tail->used) {
        struct entry *e = c->tail;
        e->used = false;
        list_unlink(c, e);
        list_push_front(c, e);
    }
    if (!c->tail) return;
    remove_at(c, slot_of(c, c->tail->id, c->tail->hash));
    c->stats.evictions++;
}

/* ---- public ------------------------------------------------------------------------------ */

struct enrich_cache *enrich_cache_new(size_t max_entries) {
    if (max_entries == 0) return NULL;
    struct enrich_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->max_buckets = 16;
    while (c->max_buckets < 2 * max_entries && c->max_buckets < ((size_t)1 << 30))
        c->max_buckets <<= 1;
    c->nbuckets = c->max_buckets < 1024 ? c->max_buckets : 1024;
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

/* One lookup under the held lock: 1 hit (copied out), 0 miss, -1 out of memory. */
static int get_locked(struct enrich_cache *c, const char *id, uint64_t now_ms,
                      struct enrich_value *out) {
    struct entry **slot = slot_of(c, id, base_hash_str(id));
    struct entry *e = *slot;
    if (e && e->expires_ms <= now_ms) {
        remove_at(c, slot);
        c->stats.expired++;
        e = NULL;
    }
    if (!e) {
        c->stats.misses++;
        return 0;
    }
    if (enrich_value_copy(out, &e->value) != 0) return -1;
    e->used = true;             /* no list move: a hit writes only its own entry */
    c->stats.hits++;
    return 1;
}

int enrich_cache_get(struct enrich_cache *c, const char *id, uint64_t now_ms,
                     struct enrich_value *out) {
    pthread_mutex_lock(&c->mu);
    int rc = get_locked(c, id, now_ms, out);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int enrich_cache_get_many(struct enrich_cache *c, const char *const ids[], size_t n,
                          uint64_t now_ms, struct enrich_value *const outs[],
                          unsigned char hit[]) {
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        int r = rc < 0 ? 0 : get_locked(c, ids[i], now_ms, outs[i]);
        if (r < 0) rc = -1;
        hit[i] = r > 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int enrich_cache_put(struct enrich_cache *c, const char *id, const struct enrich_value *v,
                     uint64_t expires_ms) {
    /* Copy outside the lock: allocation is the slow part and needs no shared state. */
    size_t idlen = strlen(id) + 1;
    struct entry *n = calloc(1, sizeof *n + idlen);
    if (!n || pack_new(&n->value, v) != 0) {
        free(n);
        return -1;
    }
    memcpy(n->id, id, idlen);
    n->expires_ms = expires_ms;
    n->hash = base_hash_str(id);

    pthread_mutex_lock(&c->mu);
    struct entry **slot = slot_of(c, id, n->hash);
    if (*slot) {
        remove_at(c, slot);
    } else if (c->count >= c->max_entries) {
        evict_one(c);
        slot = slot_of(c, id, n->hash);     /* eviction may have changed this chain */
    }
    n->hnext = *slot;
    *slot = n;
    list_push_front(c, n);
    c->count++;
    maybe_grow(c);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void enrich_cache_stats(struct enrich_cache *c, struct enrich_cache_stats *out) {
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    out->entries = c->count;
    pthread_mutex_unlock(&c->mu);
}
