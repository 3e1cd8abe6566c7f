/* enrich_cache.h: the bounded, TTL'd, thread-safe cache behind the enrichment clients.
 *
 * Internal to src/enrich/ (enrich.c and the unit test use it; the pipeline does not). One
 * cache maps an id (a fido, a retailer id) to a struct enrich_value: known or not, plus the
 * metadata. "Unknown" answers are cached too (negative caching), usually with a shorter TTL.
 *
 * Design: a chained hash table that grows with the entries plus a doubly linked list, both
 * under one mutex. get() marks a hit; put() evicts from the back when the cache is full,
 * giving a marked entry a second chance at the front (CLOCK, an approximation of LRU: the
 * victim is the oldest entry not used since it was last at the front). Expired entries are
 * dropped when get() meets them (and are the first victims of nothing in particular: with
 * a bound, eviction reclaims them soon enough).
 *
 * Ownership: a value put in is packed into a block of its own; a hit hands out
 * the same block with its reference count raised, never a pointer to an entry. A block is
 * immutable once packed and freed by whoever drops its last reference (enrich_value_clear),
 * so eviction by another thread can never leave a caller with a dangling pointer. The worker
 * looks up ~3 000 fidos per batch of 500 receipts; a hit that copied its value cost a
 * malloc, a memcpy and a free, a fifth of the enrichment's CPU (issue 14).
 *
 * Time is passed in by the caller (milliseconds on any monotonic scale), which keeps the unit
 * test deterministic and the cache free of clock calls.
 */
#ifndef CGW_ENRICH_CACHE_H
#define CGW_ENRICH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a service said about one id. Strings are owned by whoever holds the struct; NULL means
 * absent. `extra` is the product's brand or the retailer's store_type. */
struct enrich_value {
    bool known;
    char *name;
    char *extra;
    char **categories;          /* products: path top -> deepest; NULL when none */
    size_t categories_count;
    void *block;                /* from enrich_block_new: every string above lives in this
                                 * one shared, immutable, reference-counted allocation;
                                 * NULL: each was allocated on its own */
    size_t block_strings;       /* with block: bytes of its strings, which follow the
                                 * categories array, so packing it is one memcpy, no strlen */
};

struct enrich_cache_stats {
    uint64_t hits, misses, expired, evictions, entries;
};

struct enrich_cache;

/* max_entries >= 1. NULL when out of memory. */
struct enrich_cache *enrich_cache_new(size_t max_entries);
void enrich_cache_free(struct enrich_cache *c);

/* On a live hit copies the value into *out (caller frees with enrich_value_clear) and returns
 * 1; 0 on a miss (absent or expired at now_ms); -1 when out of memory copying. */
int enrich_cache_get(struct enrich_cache *c, const char *id, uint64_t now_ms,
                     struct enrich_value *out);
/* enrich_cache_get of n ids under one lock (a batch's lookups, not one lock per id): hit[i]
 * is 1 where *outs[i] was filled, else 0. 0, or -1 when out of memory (the lookups after it
 * are misses; filled values are still the caller's to clear). */
int enrich_cache_get_many(struct enrich_cache *c, const char *const ids[], size_t n,
                          uint64_t now_ms, struct enrich_value *const outs[],
                          unsigned char hit[]);
/* Stores a copy of *v under id until expires_ms, replacing an older entry; evicts the least
 * recently used entry when full. 0, or -1 when out of memory (the cache is unchanged). */
int enrich_cache_put(struct enrich_cache *c, const char *id, const struct enrich_value *v,
                     uint64_t expires_ms);
void enrich_cache_stats(struct enrich_cache *c, struct enrich_cache_stats *out);

/* A copy of src in ONE block (dst->block: the categories array, then the strings). A value
 * already in a block is shared, not copied: dst holds one more reference to src's block (a
 * cache hit costs an atomic increment). 0 or -1 (out of memory, *dst left empty). */
int enrich_value_copy(struct enrich_value *dst, const struct enrich_value *src);
/* A new block for a value of nptrs category pointers and nbytes of strings, holding one
 * reference: *ptrs (aligned) and *strs are where they go. NULL when out of memory. The
 * caller sets v->block to it and fills it before anyone else sees it. */
void *enrich_block_new(size_t nptrs, size_t nbytes, char ***ptrs, char **strs);

/* The same packing into memory the caller provides (enrich.c packs a whole call's results
 * into one block): enrich_value_packed_size counts the pointers and string bytes src needs;
 * enrich_value_pack fills *dst (block left NULL) from *ptrs and *strs, advancing both. */
void enrich_value_packed_size(const struct enrich_value *src, size_t *nptrs, size_t *nbytes);
void enrich_value_pack(struct enrich_value *dst, const struct enrich_value *src, char ***ptrs,
                       char **strs);
/* Copies s (NULL stays NULL) to *strs, advancing it; for ids packed beside values. */
char *enrich_pack_string(const char *s, char **strs);
/* Frees the strings (a block: drops this reference, the last frees it) and zeroes the
 * struct; safe on a zeroed struct. */
void enrich_value_clear(struct enrich_value *v);

#endif
