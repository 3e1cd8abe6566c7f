/* Unit test of src/enrich/enrich_cache.c: the bound, LRU eviction, TTL expiry, replacement,
 * negative entries and ownership (a hit shares an immutable, reference-counted block). Time is passed in, so nothing here sleeps. */
#define TEST_MAIN
#include "test.h"

#include "enrich/enrich_cache.h"

#include <pthread.h>
#include <stdio.h>

static struct enrich_value product(const char *name, const char *brand) {
    static char *cats[] = {"Beverages", "Soft Drinks", "Cola"};
    return (struct enrich_value){true, (char *)name, (char *)brand, cats, 3};
}

static int get(struct enrich_cache *c, const char *id, uint64_t now) {
    struct enrich_value v = {0};
    int rc = enrich_cache_get(c, id, now, &v);
    enrich_value_clear(&v);
    return rc;
}

TEST(cache_get_copies_value_out) {
    struct enrich_cache *c = enrich_cache_new(4);
    struct enrich_value in = product("Cola 12pk", "Acme"), out = {0};
    CHECK_EQ_INT(enrich_cache_put(c, "F000001", &in, 1000), 0);
    CHECK_EQ_INT(enrich_cache_get(c, "F000001", 10, &out), 1);
    enrich_cache_free(c);               /* the copy must outlive the cache */
    CHECK(out.known);
    CHECK_EQ_STR(out.name, "Cola 12pk");
    CHECK_EQ_STR(out.extra, "Acme");
    CHECK_EQ_INT(out.categories_count, 3);
    CHECK_EQ_STR(out.categories[0], "Beverages");
    CHECK_EQ_STR(out.categories[2], "Cola");
    CHECK(out.name != in.name);
    enrich_value_clear(&out);
    CHECK(out.name == NULL && out.categories == NULL && out.categories_count == 0);
}

/* A value is packed into one block (after the block's reference count): every pointer of
 * the copy must land inside that block, at the same string. */
static bool inside(const void *p, const struct enrich_value *v) {
    size_t n = sizeof(max_align_t) + v->categories_count * sizeof(char *) + v->block_strings;
    return (const char *)p >= (const char *)v->block && (const char *)p < (const char *)v->block + n;
}

/* A packed value (a cache hit) is shared, not copied: the copy holds one more reference to
 * the same block, which outlives the clearing of the first holder (AddressSanitizer would
 * report the strings read below if it did not). */
/* A hit shares the entry's block: replacing the entry (or evicting it) must leave the value
 * the caller holds intact. */
TEST(cache_hit_outlives_its_entry_replaced_and_evicted) {
    struct enrich_cache *c = enrich_cache_new(2);
    struct enrich_value a = product("Cola 12pk", "Acme"), b = product("Water", NULL);
    struct enrich_value out = {0};
    CHECK_EQ_INT(enrich_cache_put(c, "F1", &a, 1000), 0);
    CHECK_EQ_INT(enrich_cache_get(c, "F1", 10, &out), 1);
    CHECK_EQ_INT(enrich_cache_put(c, "F1", &b, 1000), 0);       /* replaced */
    CHECK_EQ_INT(enrich_cache_put(c, "F2", &b, 1000), 0);
    CHECK_EQ_INT(enrich_cache_put(c, "F3", &b, 1000), 0);       /* F1 evicted */
    CHECK_EQ_STR(out.name, "Cola 12pk");
    CHECK_EQ_STR(out.extra, "Acme");
    CHECK_EQ_STR(out.categories[2], "Cola");
    enrich_value_clear(&out);
    CHECK_EQ_INT(enrich_cache_get(c, "F1", 10, &out), 0);
    enrich_cache_free(c);
}

TEST(packed_value_is_shared_and_packs_by_rebasing) {
    struct enrich_value in = product("Cola 12pk", NULL), once = {0}, twice = {0};
    CHECK_EQ_INT(enrich_value_copy(&once, &in), 0);
    CHECK(once.block != NULL && once.name != in.name);
    CHECK_EQ_INT(once.block_strings, strlen("Cola 12pk") + 1 + strlen("Beverages") + 1 +
                                         strlen("Soft Drinks") + 1 + strlen("Cola") + 1);
    CHECK(inside(once.name, &once) && inside(once.categories, &once));
    CHECK_EQ_INT(enrich_value_copy(&twice, &once), 0);
    CHECK(twice.block == once.block && twice.name == once.name);
    enrich_value_clear(&once);          /* the second holder keeps the block alive */
    CHECK(once.block == NULL && once.name == NULL);
    CHECK(twice.known && twice.extra == NULL && twice.categories_count == 3);
    CHECK_EQ_STR(twice.name, "Cola 12pk");
    CHECK_EQ_STR(twice.categories[1], "Soft Drinks");
    CHECK(inside(twice.name, &twice) && inside(twice.categories, &twice));
    for (size_t i = 0; i < 3; i++) CHECK(inside(twice.categories[i], &twice));

    size_t nptrs = 0, nbytes = 0;       /* packed beside another value, as enrich.c does */
    enrich_value_packed_size(&in, &nptrs, &nbytes);
    enrich_value_packed_size(&twice, &nptrs, &nbytes);
    CHECK_EQ_INT(nptrs, 6);
    CHECK_EQ_INT(nbytes, 2 * twice.block_strings);
    char *arena = malloc(nptrs * sizeof(char *) + nbytes);
    char **ptrs = (char **)(void *)arena, *strs = arena + nptrs * sizeof(char *);
    struct enrich_value a, b;
    enrich_value_pack(&a, &in, &ptrs, &strs);
    enrich_value_pack(&b, &twice, &ptrs, &strs);
    CHECK(strs == arena + nptrs * sizeof(char *) + nbytes);
    enrich_value_clear(&twice);
    CHECK(b.block == NULL && b.extra == NULL && b.categories == a.categories + 3);
    CHECK_EQ_STR(b.name, "Cola 12pk");
    CHECK_EQ_STR(b.categories[0], "Beverages");
    CHECK_EQ_STR(b.categories[2], "Cola");
    CHECK(b.name > a.categories[2]);
    free(arena);
}

TEST(cache_negative_and_absent_fields) {
    struct enrich_cache *c = enrich_cache_new(4);
    struct enrich_value unknown = {0}, out = {0};
    CHECK_EQ_INT(enrich_cache_put(c, "F000007", &unknown, 100), 0);
    CHECK_EQ_INT(enrich_cache_get(c, "F000007", 50, &out), 1);
    CHECK(!out.known && !out.name && !out.extra && !out.categories);
    CHECK_EQ_INT(get(c, "F000008", 50), 0);
    enrich_cache_free(c);
}

TEST(cache_get_many_hits_misses_and_expired) {
    struct enrich_cache *c = enrich_cache_new(8);
    struct enrich_value in = product("Cola 12pk", "Acme"), v[4] = {{0}};
    CHECK_EQ_INT(enrich_cache_put(c, "F1", &in, 1000), 0);
    CHECK_EQ_INT(enrich_cache_put(c, "F2", &in, 50), 0);        /* expired at 100 */
    CHECK_EQ_INT(enrich_cache_put(c, "F4", &in, 1000), 0);
    const char *ids[] = {"F1", "F2", "F3", "F4"};
    struct enrich_value *outs[] = {&v[0], &v[1], &v[2], &v[3]};
    unsigned char hit[4] = {9, 9, 9, 9};
    CHECK_EQ_INT(enrich_cache_get_many(c, ids, 4, 100, outs, hit), 0);
    CHECK(hit[0] == 1 && hit[1] == 0 && hit[2] == 0 && hit[3] == 1);
    CHECK_EQ_STR(v[0].name, "Cola 12pk");
    CHECK_EQ_STR(v[3].categories[2], "Cola");
    CHECK(v[1].name == NULL && v[2].name == NULL);
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK(st.hits == 2 && st.misses == 2 && st.expired == 1 && st.entries == 2);
    CHECK_EQ_INT(enrich_cache_get_many(c, ids, 0, 100, outs, hit), 0);
    for (size_t i = 0; i < 4; i++) enrich_value_clear(&v[i]);
    enrich_cache_free(c);
}

TEST(cache_ttl_expiry) {
    struct enrich_cache *c = enrich_cache_new(4);
    struct enrich_value v = product("a", NULL);
    enrich_cache_put(c, "x", &v, 1000);
    CHECK_EQ_INT(get(c, "x", 999), 1);
    CHECK_EQ_INT(get(c, "x", 1000), 0);     /* expires_ms is exclusive */
    CHECK_EQ_INT(get(c, "x", 999), 0);      /* expired entries are removed, not hidden */
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK_EQ_INT(st.expired, 1);
    CHECK_EQ_INT(st.entries, 0);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.misses, 2);
    enrich_cache_free(c);
}

TEST(cache_bound_evicts_least_recently_used) {
    struct enrich_cache *c = enrich_cache_new(3);
    struct enrich_value v = product("p", "b");
    enrich_cache_put(c, "a", &v, 1000);
    enrich_cache_put(c, "b", &v, 1000);
    enrich_cache_put(c, "c", &v, 1000);
    CHECK_EQ_INT(get(c, "a", 0), 1);        /* a is now the most recent; b the oldest */
    enrich_cache_put(c, "d", &v, 1000);
    CHECK_EQ_INT(get(c, "b", 0), 0);
    CHECK_EQ_INT(get(c, "a", 0), 1);
    CHECK_EQ_INT(get(c, "c", 0), 1);
    CHECK_EQ_INT(get(c, "d", 0), 1);
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK_EQ_INT(st.entries, 3);
    CHECK_EQ_INT(st.evictions, 1);
    enrich_cache_free(c);
}

/* Eviction gives a hit entry a second chance instead of moving it on every hit: an entry hit
 * between puts is never the victim while entries not hit are there, however many newer
 * entries pass through. (When every entry was hit, the oldest goes: CLOCK, not exact LRU.) */
TEST(cache_entry_hit_between_puts_is_never_evicted) {
    struct enrich_cache *c = enrich_cache_new(3);
    struct enrich_value v = product("p", "b");
    enrich_cache_put(c, "hot", &v, 1000);
    enrich_cache_put(c, "b", &v, 1000);
    enrich_cache_put(c, "c", &v, 1000);
    char id[16];
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(get(c, "hot", 0), 1);
        snprintf(id, sizeof id, "new%d", i);
        enrich_cache_put(c, id, &v, 1000);
    }
    CHECK_EQ_INT(get(c, "b", 0), 0);
    CHECK_EQ_INT(get(c, "c", 0), 0);
    CHECK_EQ_INT(get(c, "new8", 0), 1);
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK_EQ_INT(st.entries, 3);
    CHECK_EQ_INT(st.evictions, 10);
    enrich_cache_free(c);
}

TEST(cache_many_puts_stay_bounded) {
    struct enrich_cache *c = enrich_cache_new(100);
    struct enrich_value v = product("p", "b");
    char id[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof id, "F%06d", i);
        CHECK_EQ_INT(enrich_cache_put(c, id, &v, 1000), 0);
    }
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK_EQ_INT(st.entries, 100);
    CHECK_EQ_INT(st.evictions, 9900);
    CHECK_EQ_INT(get(c, "F009999", 0), 1);
    CHECK_EQ_INT(get(c, "F009900", 0), 1);
    CHECK_EQ_INT(get(c, "F009899", 0), 0);
    enrich_cache_free(c);
}

/* The bucket array starts at 1 024 and doubles as entries arrive (up to 16 384 here): every
 * entry must still be found after each doubling, and the bound still holds once the table is
 * at its largest. */
TEST(cache_table_grows_and_keeps_every_entry) {
    struct enrich_cache *c = enrich_cache_new(5000);
    struct enrich_value v = product("p", "b");
    char id[16];
    for (int i = 0; i < 6000; i++) {
        snprintf(id, sizeof id, "F%06d", i);
        CHECK_EQ_INT(enrich_cache_put(c, id, &v, 1000), 0);
        if (i == 1023 || i == 1024 || i == 2048 || i == 4999) {
            for (int j = 0; j <= i; j++) {
                snprintf(id, sizeof id, "F%06d", j);
                CHECK_EQ_INT(get(c, id, 0), 1);
            }
        }
    }
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK_EQ_INT(st.entries, 5000);
    CHECK_EQ_INT(st.evictions, 1000);
    CHECK_EQ_INT(get(c, "F000999", 0), 0);
    CHECK_EQ_INT(get(c, "F001000", 0), 1);
    CHECK_EQ_INT(get(c, "F005999", 0), 1);
    enrich_cache_free(c);
}

TEST(cache_put_replaces_and_refreshes_ttl) {
    struct enrich_cache *c = enrich_cache_new(2);
    struct enrich_value unknown = {0}, known = product("New", "Acme"), out = {0};
    enrich_cache_put(c, "a", &unknown, 100);
    enrich_cache_put(c, "a", &known, 5000);
    CHECK_EQ_INT(enrich_cache_get(c, "a", 200, &out), 1);
    CHECK(out.known);
    CHECK_EQ_STR(out.name, "New");
    enrich_value_clear(&out);
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_EQ_INT(st.evictions, 0);
    enrich_cache_free(c);
}

TEST(cache_zero_bound_is_refused) {
    CHECK(enrich_cache_new(0) == NULL);
}

/* Two threads hammering one small cache: ASan/UBSan catch what a race would break. */
static void *hammer(void *arg) {
    struct enrich_cache *c = arg;
    struct enrich_value v = product("p", "b");
    char id[16];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "F%06d", i % 300);
        if (i % 3 == 0) enrich_cache_put(c, id, &v, (uint64_t)i + 50);
        else get(c, id, (uint64_t)i);
    }
    return NULL;
}

TEST(cache_is_thread_safe) {
    struct enrich_cache *c = enrich_cache_new(64);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, hammer, c);
    pthread_create(&t2, NULL, hammer, c);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    struct enrich_cache_stats st;
    enrich_cache_stats(c, &st);
    CHECK(st.entries <= 64);
    enrich_cache_free(c);
}
