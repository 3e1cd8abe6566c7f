/* src/aws/sigv4.h: AWS Signature Version 4, written once for every AWS call of the worker:
 * the MSK IAM token (a presigned URL), STS AssumeRole and the MSK API (signed headers).
 *
 * Why hand-written: no Debian 12 library signs SigV4 for C (aws-c-auth is not packaged for
 * bookworm, and the AWS C SDK would be a large build for three requests). The crypto is
 * OpenSSL's (HMAC-SHA256, SHA-256); only the canonicalisation is ours, and it is checked
 * against the AWS SigV4 test suite (tests/unit/aws_sigv4_test.c) and against botocore's
 * SigV4Auth / SigV4QueryAuth byte for byte (tests/py/test_aws_oracle.py).
 *
 * Canonicalisation follows botocore, which the tests use as the oracle:
 *   - path: dot segments removed, repeated slashes collapsed, then every byte outside
 *     A-Z a-z 0-9 - _ . ~ / percent-encoded again (so "%3A" on the wire signs as "%253A",
 *     as botocore does for every service but S3);
 *   - query: each key and value percent-decoded and re-encoded (unreserved set), pairs
 *     sorted by key then value;
 *   - headers: names lower-cased, values trimmed with inner whitespace runs collapsed,
 *     repeated names joined with ',', sorted; every header given is signed;
 *   - payload: SHA-256 hex of the body (the empty body's hash when there is none).
 *
 * Secrets: the secret key only ever enters HMAC; nothing here logs or formats it.
 * Every function is pure (the time is a parameter), so tests pin the clock.
 */
#ifndef CGW_AWS_SIGV4_H
#define CGW_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

struct sigv4_header {
    const char *name;
    const char *value;
};

/* What a signature covers. path and query are as sent on the wire (percent-encoded); query
 * has no leading '?' and may be NULL. headers must include host (and x-amz-date etc. when
 * they are sent); all of them are signed. */
struct sigv4_request {
    const char *method;
    const char *path;
    const char *query;
    const struct sigv4_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
};

/* Who signs, where, when. session_token may be NULL. */
struct sigv4_signer {
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token;
    const char *region;
    const char *service;
    time_t now;
};

#define SIGV4_AMZDATE_LEN 17    /* "20150830T123600Z" + NUL */

/* "YYYYMMDDTHHMMSSZ" of t (UTC). */
void sigv4_amzdate(time_t t, char out[SIGV4_AMZDATE_LEN]);

/* The canonical request (malloc'd; NULL on out of memory). signed_headers, when not NULL,
 * receives the malloc'd "host;x-amz-date" list. */
char *sigv4_canonical_request(const struct sigv4_request *r, char **signed_headers);

/* The string to sign for a canonical request (malloc'd; NULL on out of memory). */
char *sigv4_string_to_sign(const struct sigv4_signer *s, const char *canonical_request);

/* The hex signature of a string to sign. 0, or -1 when OpenSSL fails. */
int sigv4_signature(const struct sigv4_signer *s, const char *string_to_sign, char hex[65]);

/* The Authorization header value for r (whose headers must already hold x-amz-date and,
 * with a session token, x-amz-security-token). malloc'd; NULL on failure. */
char *sigv4_authorization(const struct sigv4_signer *s, const struct sigv4_request *r);

/* Signs r as botocore's SigV4Auth.add_auth does: r's headers plus X-Amz-Date (of s->now,
 * replacing any x-amz-date of r) and, with a session token, X-Amz-Security-Token (likewise),
 * all signed. The caller sends r's headers, "X-Amz-Date: <amzdate>", the token header when
 * s->session_token is set, and "Authorization: <returned value>". malloc'd; NULL on failure. */
char *sigv4_sign_request(const struct sigv4_signer *s, const struct sigv4_request *r,
                         char amzdate[SIGV4_AMZDATE_LEN]);

/* A presigned URL: base ("https://host/path", no query) with the query parameters
 * params[0..nparams) (raw, unencoded name/value pairs) followed by the X-Amz-* parameters
 * of a query signature valid expires_s seconds, host the only signed header, as botocore's
 * SigV4QueryAuth writes it. host is the Host header value. malloc'd; NULL on failure. */
char *sigv4_presign(const struct sigv4_signer *s, const char *base, const char *host,
                    const struct sigv4_header *params, size_t nparams, int expires_s);

/* RFC 3986 percent-encoding of n bytes of in, keeping A-Z a-z 0-9 - _ . ~ and the bytes of
 * keep (may be NULL). malloc'd; NULL on out of memory. */
char *sigv4_uri_encode(const char *in, size_t n, const char *keep);

/* Lower-case hex SHA-256 of n bytes. */
void sigv4_sha256_hex(const void *data, size_t n, char hex[65]);

#endif
