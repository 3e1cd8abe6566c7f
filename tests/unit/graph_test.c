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
