/* Unit test of src/enrich/enrich_cache.c: the bound, LRU eviction, TTL expiry, replacement,
 * negative entries and copy-out ownership. Time is passed in, so nothing here sleeps. */
#define TEST_MAIN
#include "test.h"

#include "enrich/enrich_cache.h"

#include <pthread.h>

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

TEST(cache_negative_and_absent_fields) {
    struct enrich_cache *c = enrich_cache_new(4);
    struct enrich_value unknown = {0}, out = {0};
    CHECK_EQ_INT(enrich_cache_put(c, "F000007", &unknown, 100), 0);
    CHECK_EQ_INT(enrich_cache_get(c, "F000007", 50, &out), 1);
    CHECK(!out.known && !out.name && !out.extra && !out.categories);
    CHECK_EQ_INT(get(c, "F000008", 50), 0);
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
