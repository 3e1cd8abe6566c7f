/* Unit test of src/graph/graph.c's rule on a batch's products: graph.h owns "products sorted by
 * fido, each once" and graph_write refuses a batch that breaks it before touching the driver
 * (so no server is needed here); graph_count_purchase finds products by that order. */
#define TEST_MAIN
#include "test.h"

#include "graph/graph.h"

static const record_purchase *one_purchase(void) {
    static record_item items[2] = {{.fido = "F2"}, {.fido = "F1"}};
    static record_purchase p = {.id = "r1", .purchase_id = "receipt:r1", .user_id = "u1",
                                .items = items, .nitems = 2};
    return &p;
}

TEST(unsorted_products_are_refused_before_anything_is_sent) {
    static const char *cats[] = {"Food"};
    graph_product products[2] = {{.fido = "F2", .known = 1, .categories = cats, .ncategories = 1},
                                 {.fido = "F1"}};
    const record_purchase *ps[] = {one_purchase()};
    graph_batch b = {.purchases = ps, .npurchases = 1, .products = products, .nproducts = 2};
    bolt_error err;
    CHECK_EQ_INT(graph_write(NULL, NULL, &b, NULL, &err), BOLT_EINVAL);
    CHECK_EQ_STR(err.message, "graph: products not sorted by fido");
    graph_product twice[2] = {{.fido = "F1"}, {.fido = "F1"}};
    b.products = twice;
    CHECK_EQ_INT(graph_write(NULL, NULL, &b, NULL, &err), BOLT_EINVAL);
}

TEST(count_purchase_finds_products_in_fido_order) {
    static const char *cats[] = {"Food", "Fruit"};
    graph_product products[2] = {{.fido = "F1"},
                                 {.fido = "F2", .known = 1, .categories = cats, .ncategories = 2}};
    const record_purchase *ps[] = {one_purchase()};
    graph_batch b = {.purchases = ps, .npurchases = 1, .products = products, .nproducts = 2};
    int nodes = 0, rels = 0;
    graph_count_purchase(&b, ps[0], &nodes, &rels);
    CHECK_EQ_INT(nodes, 2 + 2 + 2);   /* User, Purchase; two products; F2's two categories */
    CHECK_EQ_INT(rels, 1 + 2 + 2);    /* MADE; two CONTAINS; IN_CATEGORY + CHILD_OF of F2 */
}

/* graph_count_purchases (one hash of the products for the batch) counts exactly what
 * graph_count_purchase (a binary search per line) counts: lines repeating a fido, fidos
 * without a product, products with and without categories, with and without a retailer. */
TEST(count_purchases_of_a_batch_match_one_by_one) {
    enum { NP = 300, NB = 120, MAXL = 12 };
    static const char *cats[] = {"Food", "Fruit", "Apples"};
    static char fidos[NP][8], lines[NB][MAXL][8];
    static graph_product products[NP];
    static record_item items[NB][MAXL];
    static record_purchase ps[NB];
    static const record_purchase *pp[NB];
    unsigned seed = 14;
    for (int i = 0; i < NP; i++) {
        snprintf(fidos[i], sizeof fidos[i], "F%04d", i * 2);      /* odd numbers: no product */
        products[i] = (graph_product){.fido = fidos[i], .known = i % 5 != 0, .categories = cats,
                                      .ncategories = (size_t)(i % 4)};
    }
    for (int i = 0; i < NB; i++) {
        size_t n = 1 + (size_t)(rand_r(&seed) % MAXL);
        for (size_t k = 0; k < n; k++) {
            snprintf(lines[i][k], sizeof lines[i][k], "F%04d", rand_r(&seed) % (NP * 2));
            if (k && rand_r(&seed) % 4 == 0) memcpy(lines[i][k], lines[i][k - 1], 8);
            items[i][k] = (record_item){.fido = lines[i][k]};
        }
        ps[i] = (record_purchase){.id = "r", .purchase_id = "receipt:r", .user_id = "u",
                                  .retailer_id = i % 3 ? "R1" : NULL, .items = items[i], .nitems = n};
        pp[i] = &ps[i];
    }
    graph_batch b = {.purchases = pp, .npurchases = NB, .products = products, .nproducts = NP};
    int nodes[NB], rels[NB];
    CHECK_EQ_INT(graph_count_purchases(&b, nodes, rels), 0);
    int categorised = 0;
    for (int i = 0; i < NB; i++) {
        int n1 = -1, r1 = -1;
        graph_count_purchase(&b, pp[i], &n1, &r1);
        CHECKF(nodes[i] == n1 && rels[i] == r1, "purchase %d: %d/%d by batch, %d/%d alone", i,
               nodes[i], rels[i], n1, r1);
        categorised += n1 > 2 + (int)pp[i]->nitems + (pp[i]->retailer_id != NULL);
    }
    CHECK(categorised > 0);                /* the batch does exercise category paths */
}
