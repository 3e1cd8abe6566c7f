/* bolt_version_test.c: the version switches of docs/bolt.md §1 against the real server, by
 * capping the proposed version: auth in HELLO (4.4, 5.0) vs LOGON (5.1+), bolt_agent (5.3+),
 * notification filter (5.2+), FAILURE `code` vs `neo4j_code` (5.7+), 4.4's utc patch. */
#define TEST_MAIN
#include "test.h"

#include "bolt/bolt.h"
#include "bolt_test_util.h"

static const struct { int cap, expect; } versions[] = {
    {0x0404, 0x0404}, {0x0500, 0x0500}, {0x0501, 0x0501}, {0x0502, 0x0502}, {0x0503, 0x0503},
    {0x0504, 0x0504}, {0x0505, 0x0504}, /* 5.5 is never negotiated */ {0x0506, 0x0506},
    {0x0507, 0x0507}, {0x0508, 0x0508},
};

static int connect_capped(int cap, const char *password, bolt_conn **c, bolt_error *err) {
    bolt_config cfg;
    bt_config(&cfg);
    cfg.max_version = cap;
    if (password) cfg.credentials = password;
    return bolt_connect(bt_uri("bolt"), &cfg, c, err);
}

TEST(every_version_negotiates_and_queries) {
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        bolt_conn *c;
        bolt_error err;
        int rc = connect_capped(versions[i].cap, NULL, &c, &err);
        CHECKF(rc == BOLT_OK, "cap %04x: %s", versions[i].cap, err.message);
        CHECKF(bolt_conn_version(c) == versions[i].expect, "cap %04x got %04x",
               versions[i].cap, bolt_conn_version(c));
        bolt_result *r;
        OK(bolt_run(c, "RETURN datetime('2024-01-02T03:04:05Z') AS d, 1 AS one", NULL, NULL,
                    &r, &err));
        const bolt_value *rec;
        OK(bolt_result_next(r, &rec, &err));
        bolt_temporal t;
        CHECK_EQ_INT(bolt_value_as_temporal(bolt_list_get(rec, 0), &t), BOLT_OK);
        CHECK_EQ_INT(t.seconds, 1704164645LL);
        CHECKF(t.tag == BOLT_TAG_DATETIME, "version %04x: tag %02x", versions[i].expect, t.tag);
        bolt_result_free(r);
        /* FAILURE metadata: `code` before 5.7, `neo4j_code` from 5.7. */
        CHECK_EQ_INT(bolt_query(c, "RETURN 1 +* x", NULL, NULL, NULL, NULL, NULL, &err),
                     BOLT_ESERVER);
        CHECK_EQ_STR(err.neo4j_code, "Neo.ClientError.Statement.SyntaxError");
        if (versions[i].expect >= 0x0507) CHECK(err.gql_status[0] != 0);
        OK(bolt_query(c, "RETURN 2", NULL, NULL, NULL, NULL, NULL, &err));
        bolt_conn_close(c);
    }
}

/* Neo4j locks a user for a few seconds after 3 failed logins in a row, and other tests
 * share that user: one wrong attempt here (auth in HELLO; bolt_conn_test covers LOGON),
 * then a good login right away, which resets the count. */
TEST(wrong_password_with_auth_in_hello) {
    bolt_conn *c = NULL;
    bolt_error err;
    CHECK_EQ_INT(connect_capped(0x0500, "not-the-password-42", &c, &err), BOLT_EAUTH);
    CHECK(strstr(err.message, "not-the-password") == NULL);
    CHECK(!err.retryable);
    BT_CONNECT(&c);
    bolt_conn_close(c);
}
