/* bolt_test_util.h: helpers shared by the Bolt integration tests (tests/integration/bolt_*).
 *
 * The tests talk to the Neo4j 5.26 of the local stack (scripts/stack up): bolt at
 * 127.0.0.1:7687 (override with NEO4J_BOLT_PORT), user neo4j, password from NEO4J_PASSWORD.
 * A test that cannot reach it fails: nothing here skips.
 */
#ifndef BOLT_TEST_UTIL_H
#define BOLT_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "bolt/bolt.h"

static inline const char *bt_password(void) {
    const char *p = getenv("NEO4J_PASSWORD");
    return p && *p ? p : "cgw-local-password";
}

/* "bolt://127.0.0.1:7687" or another scheme on the same host/port. */
static inline const char *bt_uri(const char *scheme) {
    static __thread char buf[128];
    const char *port = getenv("NEO4J_BOLT_PORT");
    snprintf(buf, sizeof buf, "%s://127.0.0.1:%s", scheme, port && *port ? port : "7687");
    return buf;
}

/* "127.0.0.1:7687": the address the server advertises in its routing table. */
static inline const char *bt_address(void) {
    static __thread char buf[64];
    const char *port = getenv("NEO4J_BOLT_PORT");
    snprintf(buf, sizeof buf, "127.0.0.1:%s", port && *port ? port : "7687");
    return buf;
}

static inline void bt_config(bolt_config *cfg) {
    bolt_config_init(cfg);
    cfg->principal = "neo4j";
    cfg->credentials = bt_password();
    cfg->user_agent = "cgw-bolt-test/0.1";
    cfg->connect_timeout_ms = 3000;
    cfg->io_timeout_ms = 60000;
}

/* Connects or fails the current test with the library's message. */
#define BT_CONNECT(connp)                                                            \
    do {                                                                             \
        bolt_config cfg_;                                                            \
        bolt_error e_;                                                               \
        bt_config(&cfg_);                                                            \
        int rc_ = bolt_connect(bt_uri("bolt"), &cfg_, (connp), &e_);                 \
        CHECKF(rc_ == BOLT_OK, "connect: %s: %s", bolt_code_name(rc_), e_.message);  \
    } while (0)

/* Runs expr (which fills a `bolt_error err` in scope) and fails the test on error. */
#define OK(expr)                                                                     \
    do {                                                                             \
        int rc2_ = (expr);                                                           \
        CHECKF(rc2_ == BOLT_OK, "%s -> %s: %s", #expr, bolt_code_name(rc2_),        \
               err.message);                                                         \
    } while (0)

#endif
