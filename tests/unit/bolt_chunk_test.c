/* bolt_chunk_test.c: message framing (docs/bolt.md §3) and URI parsing. No server needed. */
#define TEST_MAIN
#include "test.h"

#include "bolt/bolt.h"
#include "bolt/bolt_internal.h"

TEST(small_message_one_chunk) {
    bolt_enc out;
    bolt_enc_init(&out);
    CHECK_EQ_INT(bolt_chunk_append(&out, (const uint8_t *)"\xB0\x12", 2), BOLT_OK);
    CHECK_EQ_INT(out.len, 6);
    CHECK_EQ_MEM(out.p, "\x00\x02\xB0\x12\x00\x00", 6);
    bolt_enc_release(&out);
}

TEST(big_message_split_and_reassembled) {
    size_t n = 65535 * 2 + 10;
    uint8_t *msg = malloc(n);
    for (size_t i = 0; i < n; i++) msg[i] = (uint8_t)(i * 7);
    bolt_enc out;
    bolt_enc_init(&out);
    CHECK_EQ_INT(bolt_chunk_append(&out, msg, n), BOLT_OK);
    CHECK_EQ_INT(out.len, n + 3 * 2 + 2);
    CHECK_EQ_MEM(out.p, "\xFF\xFF", 2);
    CHECK_EQ_MEM(out.p + 2 + 65535, "\xFF\xFF", 2);
    CHECK_EQ_MEM(out.p + 4 + 2 * 65535, "\x00\x0A", 2);
    CHECK_EQ_MEM(out.p + out.len - 2, "\x00\x00", 2);

    /* Feed it back one odd-sized slice at a time. */
    bolt_dechunker d;
    bolt_dechunker_init(&d, 0);
    size_t off = 0, got = 0;
    const uint8_t *m = NULL;
    size_t mlen = 0;
    while (off < out.len) {
        size_t slice = out.len - off < 777 ? out.len - off : 777, used;
        int rc = bolt_dechunk(&d, out.p + off, slice, &used, &m, &mlen);
        CHECK(rc >= 0);
        off += used;
        if (rc == 1) got++;
    }
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_INT(mlen, n);
    CHECK_EQ_MEM(m, msg, n);
    bolt_dechunker_free(&d);
    bolt_enc_release(&out);
    free(msg);
}

/* A message queued in pieces (RUN's head, the caller's parameters, its tail): no piece makes a
 * zero-size chunk (it would end the message early), a big piece is split at 65535, and the
 * reader gets back the concatenation as one message. */
TEST(message_in_pieces_reassembled_whole) {
    size_t big = 65535 + 100;
    uint8_t *p = malloc(big);
    for (size_t i = 0; i < big; i++) p[i] = (uint8_t)(i * 13);
    bolt_enc out;
    bolt_enc_init(&out);
    CHECK_EQ_INT(bolt_chunk_part(&out, (const uint8_t *)"\xB3\x10", 2), BOLT_OK);
    CHECK_EQ_INT(bolt_chunk_part(&out, p, 0), BOLT_OK);
    CHECK_EQ_INT(out.len, 4);
    CHECK_EQ_INT(bolt_chunk_part(&out, p, big), BOLT_OK);
    CHECK_EQ_INT(bolt_chunk_part(&out, (const uint8_t *)"\xA0", 1), BOLT_OK);
    CHECK_EQ_INT(bolt_chunk_end(&out), BOLT_OK);
    CHECK_EQ_INT(out.len, 2 + 2 + 2 + 65535 + 2 + 100 + 2 + 1 + 2);
    CHECK_EQ_MEM(out.p + 4, "\xFF\xFF", 2);
    CHECK_EQ_MEM(out.p + out.len - 5, "\x00\x01\xA0\x00\x00", 5);

    bolt_dechunker d;
    bolt_dechunker_init(&d, 0);
    const uint8_t *m = NULL;
    size_t mlen = 0, used = 0;
    CHECK_EQ_INT(bolt_dechunk(&d, out.p, out.len, &used, &m, &mlen), 1);
    CHECK_EQ_INT(used, out.len);
    CHECK_EQ_INT(mlen, 2 + big + 1);
    CHECK_EQ_MEM(m, "\xB3\x10", 2);
    CHECK_EQ_MEM(m + 2, p, big);
    CHECK_EQ_MEM(m + 2 + big, "\xA0", 1);
    bolt_dechunker_free(&d);
    bolt_enc_release(&out);
    free(p);
}

TEST(noop_chunks_skipped_and_zero_bytes_in_body) {
    /* NOOP, docs/bolt.md §3's SUCCESS ending in a 00 byte, NOOP NOOP, RECORD [1]. */
    static const uint8_t wire[] = {
        0x00, 0x00,
        0x00, 0x16, 0xB1, 0x70, 0xA2, 0x86, 'f', 'i', 'e', 'l', 'd', 's', 0x91, 0x81, 'x',
        0x87, 't', '_', 'f', 'i', 'r', 's', 't', 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
        0x00, 0x04, 0xB1, 0x71, 0x91, 0x01, 0x00, 0x00,
    };
    bolt_dechunker d;
    bolt_dechunker_init(&d, 0);
    size_t off = 0, used;
    const uint8_t *m;
    size_t mlen;
    CHECK_EQ_INT(bolt_dechunk(&d, wire, sizeof wire, &used, &m, &mlen), 1);
    CHECK_EQ_INT(mlen, 0x16);
    CHECK_EQ_INT(m[mlen - 1], 0x00);
    bolt_value *v;
    CHECK_EQ_INT(bolt_unpack(m, mlen, &v, NULL, NULL), BOLT_OK);
    CHECK_EQ_INT(bolt_struct_tag(v), 0x70);
    bolt_value_free(v);
    off += used;
    CHECK_EQ_INT(bolt_dechunk(&d, wire + off, sizeof wire - off, &used, &m, &mlen), 1);
    CHECK_EQ_INT(mlen, 4);
    CHECK_EQ_MEM(m, "\xB1\x71\x91\x01", 4);
    off += used;
    CHECK_EQ_INT(off, sizeof wire);
    CHECK_EQ_INT(bolt_dechunk(&d, wire, 0, &used, &m, &mlen), 0);
    bolt_dechunker_free(&d);
}

TEST(message_cap) {
    bolt_dechunker d;
    bolt_dechunker_init(&d, 8);
    static const uint8_t wire[] = {0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0};
    size_t used;
    const uint8_t *m;
    size_t mlen;
    CHECK_EQ_INT(bolt_dechunk(&d, wire, sizeof wire, &used, &m, &mlen), -BOLT_ELIMIT);
    bolt_dechunker_free(&d);
}

TEST(uri_parsing) {
    bolt_uri *u;
    bolt_error err;
    CHECK_EQ_INT(bolt_uri_parse("bolt://localhost", &u, &err), BOLT_OK);
    CHECK_EQ_STR(bolt_uri_host(u), "localhost");
    CHECK_EQ_INT(bolt_uri_port(u), 7687);
    CHECK_EQ_INT(bolt_uri_tls(u), 0);
    CHECK_EQ_INT(bolt_uri_routing(u), 0);
    bolt_uri_free(u);

    CHECK_EQ_INT(bolt_uri_parse("neo4j+s://db.example.com:7688/?region=eu&policy=fast", &u,
                                &err), BOLT_OK);
    CHECK_EQ_INT(bolt_uri_port(u), 7688);
    CHECK_EQ_INT(bolt_uri_tls(u), 1);
    CHECK_EQ_INT(bolt_uri_routing(u), 1);
    CHECK_EQ_INT(bolt_uri_param_count(u), 2);
    CHECK_EQ_STR(bolt_uri_param_key(u, 1), "policy");
    CHECK_EQ_STR(bolt_uri_param_value(u, 1), "fast");
    bolt_uri_free(u);

    CHECK_EQ_INT(bolt_uri_parse("bolt+ssc://[::1]:9999", &u, &err), BOLT_OK);
    CHECK_EQ_STR(bolt_uri_host(u), "::1");
    CHECK_EQ_INT(bolt_uri_port(u), 9999);
    CHECK_EQ_INT(bolt_uri_tls(u), 2);
    CHECK_EQ_STR(u->address, "[::1]:9999");
    bolt_uri_free(u);

    CHECK_EQ_INT(bolt_uri_parse("neo4j+ssc://h", &u, &err), BOLT_OK);
    CHECK_EQ_INT(bolt_uri_tls(u), 2);
    bolt_uri_free(u);

    CHECK_EQ_INT(bolt_uri_parse("http://x", &u, &err), BOLT_EINVAL);
    CHECK_EQ_INT(bolt_uri_parse("bolt://x:0", &u, &err), BOLT_EINVAL);
    CHECK_EQ_INT(bolt_uri_parse("bolt://x:70000", &u, &err), BOLT_EINVAL);
    CHECK_EQ_INT(bolt_uri_parse("bolt://user:secret@x", &u, &err), BOLT_EINVAL);
    CHECK(strstr(err.message, "secret") == NULL);
    CHECK_EQ_INT(bolt_uri_parse("bolt://", &u, &err), BOLT_EINVAL);
    CHECK_EQ_INT(bolt_uri_parse("neo4j://x?noequals", &u, &err), BOLT_EINVAL);
}

TEST(retry_classification) {
    CHECK(bolt_neo4j_code_retryable("Neo.TransientError.Transaction.DeadlockDetected", NULL));
    CHECK(bolt_neo4j_code_retryable("Neo.TransientError.General.DatabaseUnavailable", ""));
    CHECK(!bolt_neo4j_code_retryable("Neo.TransientError.Transaction.Terminated", NULL));
    CHECK(!bolt_neo4j_code_retryable("Neo.TransientError.Transaction.LockClientStopped", NULL));
    CHECK(bolt_neo4j_code_retryable("Neo.ClientError.Cluster.NotALeader", NULL));
    CHECK(bolt_neo4j_code_retryable("Neo.ClientError.General.ForbiddenOnReadOnlyDatabase", 0));
    CHECK(bolt_neo4j_code_retryable("Neo.ClientError.Security.AuthorizationExpired", NULL));
    CHECK(!bolt_neo4j_code_retryable("Neo.ClientError.Statement.SyntaxError", NULL));
    CHECK(!bolt_neo4j_code_retryable("Neo.DatabaseError.General.UnknownError", NULL));
    CHECK(bolt_neo4j_code_retryable("", "TRANSIENT_ERROR"));
    CHECK_EQ_STR(bolt_code_name(BOLT_EAUTH), "BOLT_EAUTH");
    CHECK_EQ_STR(bolt_code_name(9999), "BOLT_E?");
}

TEST(failure_metadata) {
    bolt_value *m = bolt_map();
    bolt_map_set(m, "neo4j_code", bolt_string("Neo.TransientError.Transaction.DeadlockDetected"));
    bolt_map_set(m, "message", bolt_string("deadlock"));
    bolt_map_set(m, "gql_status", bolt_string("50N05"));
    bolt_error err;
    CHECK_EQ_INT(bolt_err_from_failure(&err, m), BOLT_ESERVER);
    CHECK(err.retryable);
    CHECK_EQ_STR(err.gql_status, "50N05");
    CHECK_EQ_STR(err.message, "deadlock");
    bolt_value_free(m);
    m = bolt_map();
    bolt_map_set(m, "code", bolt_string("Neo.ClientError.Security.Unauthorized"));
    bolt_map_set(m, "message", bolt_string("nope"));
    CHECK_EQ_INT(bolt_err_from_failure(&err, m), BOLT_EAUTH);
    CHECK(!err.retryable);
    bolt_value_free(m);
}
