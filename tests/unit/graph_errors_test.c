/* tests/unit/graph_errors_test.c: which failed graph writes the batch itself caused
 * (graph_error_is_batch_caused), so that the pipeline splits them instead of waiting.
 *
 * The bug this guards: Neo4j reports an exhausted transaction memory pool as a
 * TransientError, so a batch too big for it was retried as is, forever, blocking its
 * partition. Memory errors and refusals of the data split; lost connections, timeouts,
 * transient states and errors about the server or the worker's own query do not.
 */
#define TEST_MAIN
#include "test.h"

#include <string.h>

#include "graph/graph.h"

static bolt_error server(const char *code, int retryable) {
    bolt_error e;
    memset(&e, 0, sizeof e);
    e.code = BOLT_ESERVER;
    e.retryable = retryable;
    snprintf(e.neo4j_code, sizeof e.neo4j_code, "%s", code);
    return e;
}

static int caused(bolt_error e) { return graph_error_is_batch_caused(&e); }

TEST(memory_errors_split_though_transient) {
    CHECK(caused(server("Neo.TransientError.General.MemoryPoolOutOfMemoryError", 1)));
    CHECK(caused(server("Neo.TransientError.General.TransactionMemoryLimit", 1)));
    CHECK(caused(server("Neo.TransientError.General.OutOfMemoryError", 1)));
}

TEST(refusals_of_the_data_split) {
    CHECK(caused(server("Neo.ClientError.Schema.ConstraintValidationFailed", 0)));
    CHECK(caused(server("Neo.ClientError.Statement.TypeError", 0)));
    CHECK(caused(server("Neo.ClientError.Statement.ArgumentError", 0)));
    CHECK(caused(server("Neo.DatabaseError.Statement.ExecutionFailed", 0)));
    bolt_error e = {.code = BOLT_ELIMIT};
    CHECK(caused(e));
    e.code = BOLT_ENOMEM;
    CHECK(caused(e));
}

TEST(outages_wait) {
    CHECK(!caused(server("Neo.TransientError.Transaction.DeadlockDetected", 1)));
    CHECK(!caused(server("Neo.TransientError.General.DatabaseUnavailable", 1)));
    CHECK(!caused(server("Neo.ClientError.Database.DatabaseNotFound", 0)));
    CHECK(!caused(server("Neo.ClientError.Security.Forbidden", 0)));
    CHECK(!caused(server("Neo.ClientError.Statement.SyntaxError", 0)));
    CHECK(!caused(server("Neo.ClientError.Transaction.TransactionTimedOut", 0)));
    CHECK(!caused(server("Neo.ClientError.Cluster.NotALeader", 1)));
    int codes[] = {BOLT_ECONNECT, BOLT_EIO, BOLT_ETIMEDOUT, BOLT_EDEFUNCT, BOLT_EAUTH,
                   BOLT_EPOOL, BOLT_ECOMMIT_UNKNOWN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        bolt_error e = {.code = codes[i]};
        CHECKF(!caused(e), "%s", bolt_code_name(codes[i]));
    }
}
