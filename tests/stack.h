/* tests/stack.h: where the integration tests find the local stack (scripts/stack).
 * Addresses come from the same environment variables the stack script reads, with the same
 * defaults, so a test and the stack never disagree about a port. */
#ifndef CGW_TESTS_STACK_H
#define CGW_TESTS_STACK_H

#include <stdio.h>
#include <stdlib.h>

static inline const char *stack_env(const char *name, const char *fallback) {
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static inline const char *stack_kafka_brokers(void) {
    static char buf[64];
    snprintf(buf, sizeof buf, "127.0.0.1:%s", stack_env("KAFKA_PORT", "9092"));
    return buf;
}

#define STACK_KAFKA_BROKERS  stack_kafka_brokers()
#define STACK_VALKEY_HOST    "127.0.0.1"
#define STACK_VALKEY_PORT    atoi(stack_env("VALKEY_PORT", "6390"))
/* TLS listener, its certificates (scripts/stack: var/valkey/tls/) and the ACL user. */
#define STACK_VALKEY_TLS_PORT atoi(stack_env("VALKEY_TLS_PORT", "6391"))
#define STACK_VALKEY_USER     stack_env("VALKEY_ACL_USER", "cgw")
#define STACK_VALKEY_PASSWORD stack_env("VALKEY_ACL_PASSWORD", "cgw-local-valkey-password")

/* A file of the stack's Valkey TLS directory, e.g. stack_valkey_tls("ca.crt"). */
static inline const char *stack_valkey_tls(const char *name) {
    static char buf[8][512];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof buf[0], "%s/valkey/tls/%s", stack_env("CGW_VAR", "var"), name);
    return b;
}
#define STACK_NEO4J_HOST     "127.0.0.1"
#define STACK_NEO4J_PORT     atoi(stack_env("NEO4J_BOLT_PORT", "7687"))
#define STACK_NEO4J_USER     "neo4j"
#define STACK_NEO4J_PASSWORD stack_env("NEO4J_PASSWORD", "cgw-local-password")

#endif
