/* bolt_server_tls_test.c: bolt+s and bolt+ssc against the local Neo4j itself, which the stack
 * starts with TLS optional on its Bolt port and a self-signed certificate for localhost and
 * 127.0.0.1 (scripts/stack, var/neo4j/certificates/bolt). +ssc accepts the certificate as it
 * is; +s verifies it, and so succeeds only with that certificate as its CA. (bolt_tls_test.c
 * covers the client's verification failures through a TLS proxy of its own.) */
#define TEST_MAIN
#include "test.h"

#include <unistd.h>

#include "bolt/bolt.h"
#include "bolt_test_util.h"

static const char *server_cert(void) {
    static char path[512];
    const char *var = getenv("CGW_VAR");
    snprintf(path, sizeof path, "%s/neo4j/certificates/bolt/public.crt", var && *var ? var : "var");
    return path;
}

static void return_one(const char *scheme, const char *ca_file, int want) {
    bolt_config cfg;
    bolt_error err;
    bolt_conn *c = NULL;
    bt_config(&cfg);
    cfg.ca_file = ca_file;
    int rc = bolt_connect(bt_uri(scheme), &cfg, &c, &err);
    CHECKF(rc == want, "%s: %s (%s), want %s", scheme, bolt_code_name(rc),
           rc ? err.message : "", bolt_code_name(want));
    if (rc != BOLT_OK) return;
    bolt_result *r = NULL;
    OK(bolt_run(c, "RETURN 1 AS one", NULL, NULL, &r, &err));
    const bolt_value *rec = NULL;
    OK(bolt_result_next(r, &rec, &err));
    CHECK(rec != NULL);
    int64_t got = bolt_value_int(bolt_list_get(rec, 0));
    bolt_result_free(r);
    bolt_conn_close(c);
    CHECK_EQ_INT(got, 1);
}

TEST(server_certificate_exists) {
    CHECKF(access(server_cert(), R_OK) == 0, "%s missing: is the stack up (scripts/stack up)?",
           server_cert());
}

TEST(ssc_accepts_the_servers_self_signed_certificate) { return_one("bolt+ssc", NULL, BOLT_OK); }

TEST(s_verifies_against_the_servers_certificate_as_ca) {
    return_one("bolt+s", server_cert(), BOLT_OK);
}

TEST(s_refuses_a_certificate_it_cannot_verify) {
    /* The system store does not know the self-signed certificate. */
    return_one("bolt+s", NULL, BOLT_ETLS);
}

TEST(neo4j_ssc_routes_over_tls) {
    bolt_config cfg;
    bolt_error err;
    bolt_driver *d = NULL;
    bt_config(&cfg);
    OK(bolt_driver_new(bt_uri("neo4j+ssc"), &cfg, &d, &err));
    bolt_conn *c = NULL;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    OK(bolt_query(c, "RETURN 1", NULL, NULL, NULL, NULL, NULL, &err));
    bolt_driver_release(d, c);
    bolt_driver_free(d);
}

TEST(plaintext_still_works_beside_tls) { return_one("bolt", NULL, BOLT_OK); }
