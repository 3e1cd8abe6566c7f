/* src/enrich/enrich_answer.h: the JSON answers of the FIDO Product and Retailer services read
 * into enrich_values (enrich_answer.c; the contract's §5 shapes). Used by enrich.c; its own
 * header so that the unit tests and the fuzz target (tests/fuzz/enrich_answer.c, jansson as
 * the oracle) read answers exactly as the worker does.
 *
 * Both return 0, or -1 with a one-line message in err (README "Conventions"): the answer is
 * malformed, or memory ran out ("out of memory" in the message). On -1 the values are
 * cleared.
 */
#ifndef CGW_ENRICH_ANSWER_H
#define CGW_ENRICH_ANSWER_H

#include <stddef.h>

#include "enrich/enrich_cache.h"

/* A batchGet answer {"products": [{"fido", "name", "brand", "categories"}, ...]}: each
 * product whose fido is ids[i] (ids sorted by strcmp, distinct) fills vals[i] (known, name,
 * extra = brand, categories); ids the answer does not name are left as they are (zeroed:
 * unknown). A repeated fido: the last one wins. Every product must be an object with a
 * string fido; a field of a product asked for must have its type or be null. */
int enrich_answer_products(const char *body, size_t len, const char *const *ids, size_t n,
                           struct enrich_value *vals, char *err, size_t errlen);

/* A retailer {"retailer_id", "name", "store_type"} into *v (known, name, extra = store_type);
 * id names it in messages. */
int enrich_answer_retailer(const char *body, size_t len, const char *id, struct enrich_value *v,
                           char *err, size_t errlen);

#endif
