/* src/aws/aws.h: the worker's AWS client: credentials, the MSK IAM token and the MSK API.
 *
 * What: Amazon MSK with IAM authentication takes, over SASL/OAUTHBEARER, a token that is a
 * SigV4-presigned "kafka-cluster:Connect" URL (exactly what AWS's MSK IAM signers make), and
 * gives the brokers of its IAM listener through the MSK API GetBootstrapBrokers. Both need
 * AWS credentials, found as the AWS SDKs find them in a container:
 *
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN]
 *   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN [+ AWS_ROLE_SESSION_NAME],
 *      exchanged at STS AssumeRoleWithWebIdentity (the token file is re-read every time)
 *   3. ECS container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on 169.254.170.2,
 *      or AWS_CONTAINER_CREDENTIALS_FULL_URI (https, or http to a loopback / ECS / EKS
 *      address) with AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE] as its Authorization header
 *
 * then, when aws_options.role_arn is set, STS AssumeRole signed with those. Temporary
 * credentials are cached and renewed AWS_REFRESH_BEFORE_S before they expire; a failed
 * renewal keeps the old ones while they are valid. One `aws` handle is shared by every Kafka
 * handle of the process: its functions are thread-safe (one mutex around the cache; HTTP
 * calls happen under it, so concurrent callers wait for one renewal instead of racing).
 *
 * How: sigv4.h signs; src/http makes every HTTP call, each with aws_options.timeout_ms as
 * its deadline; expat parses STS's XML, jansson the JSON of ECS and the MSK API
 * (aws_parse.c, fuzzed). The request builders (aws_req_*) are pure functions of
 * credentials, options and a time, so tests/tools/aws_sign prints them for a fixed clock and
 * tests/py/test_aws_oracle.py compares them with botocore and AWS's MSK signer.
 *
 * Secrets (secret keys, session tokens, web identity and container tokens, MSK tokens) never
 * appear in an error message: messages name the source, the endpoint's origin and the
 * HTTP status or the AWS error code and message.
 *
 * Layering: a base room; it includes only src/http and src/log, and knows nothing of the
 * configuration (the caller fills aws_options).
 */
#ifndef CGW_AWS_H
#define CGW_AWS_H

#include <stddef.h>
#include <time.h>

#define AWS_MSK_TOKEN_EXPIRY_S 900      /* X-Amz-Expires of the token, as AWS's signers */
#define AWS_REFRESH_BEFORE_S 900        /* renew temporary credentials this long before expiry */
#define AWS_DEFAULT_TIMEOUT_MS 5000
#define AWS_DEFAULT_SESSION_NAME "consumer-graph-worker"

struct aws_options {
    const char *region;              /* required */
    const char *role_arn;            /* optional role assumed on top of the chain */
    const char *role_session_name;   /* NULL: AWS_DEFAULT_SESSION_NAME */
    const char *sts_endpoint;        /* NULL: https://sts.<region>.amazonaws.com */
    const char *msk_endpoint;        /* NULL: https://kafka.<region>.amazonaws.com */
    const char *user_agent;          /* the token's User-Agent parameter and HTTP User-Agent */
    long timeout_ms;                 /* every HTTP call; 0: AWS_DEFAULT_TIMEOUT_MS */
    time_t (*clock)(void);           /* NULL: time(NULL); tests pin it */
};

struct aws_credentials {
    char *access_key_id;
    char *secret_access_key;         /* secret */
    char *session_token;             /* secret; NULL for long-term keys */
    time_t expiration;               /* 0: does not expire */
    const char *source;              /* "environment", "web identity", "ecs", "assume role" */
};

struct aws;                          /* opaque: the process's AWS client */

/* Copies o (strings included). No network. 0, or -1 with err. */
int aws_new(const struct aws_options *o, struct aws **out, char *err, size_t errlen);
void aws_free(struct aws *a);

/* Valid credentials (from the cache, or fetched). The caller frees *c with
 * aws_credentials_clear. 0, or -1 with err. */
int aws_credentials_get(struct aws *a, struct aws_credentials *c, char *err, size_t errlen);
void aws_credentials_clear(struct aws_credentials *c);

/* An MSK IAM token for the handle's region and *expires_ms, the wall-clock time (ms since
 * the epoch) after which it must not be used: the token's own expiry, or the credentials'
 * if sooner. *token is malloc'd. 0, or -1 with err. */
int aws_msk_token(struct aws *a, char **token, long long *expires_ms, char *err, size_t errlen);

/* GetBootstrapBrokers of cluster_arn: BootstrapBrokerStringSaslIam, malloc'd into
 * *brokers. 0, or -1 with err (an answer without an IAM broker string is an error). */
int aws_msk_bootstrap_brokers(struct aws *a, const char *cluster_arn, char **brokers, char *err,
                              size_t errlen);

/* ---- pure parts, exposed for tests/tools/aws_sign and the unit tests ---------------------- */

/* A prepared HTTP request: what is sent, headers included. */
struct aws_request {
    char *method;
    char *url;
    char *headers[8];                /* "Name: value", NULL-terminated */
    char *body;                      /* NULL for GET */
    size_t body_len;
};
void aws_request_free(struct aws_request *r);

/* The MSK IAM token of c for region at time now (malloc'd; NULL on failure): the presigned
 * GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect (service
 * kafka-cluster, X-Amz-Expires 900) with "&User-Agent=<user_agent>" appended after signing,
 * base64url without padding. */
char *aws_req_msk_token(const struct aws_credentials *c, const char *region,
                        const char *user_agent, time_t now);

/* The signed requests, as sent. endpoint is the base URL (no trailing path). 0 or -1. */
int aws_req_bootstrap_brokers(const struct aws_credentials *c, const char *region,
                              const char *endpoint, const char *cluster_arn, time_t now,
                              struct aws_request *r);
int aws_req_assume_role(const struct aws_credentials *c, const char *region,
                        const char *endpoint, const char *role_arn, const char *session_name,
                        time_t now, struct aws_request *r);
/* Unsigned, as in the AWS SDKs. */
int aws_req_assume_role_web_identity(const char *endpoint, const char *role_arn,
                                     const char *session_name, const char *web_identity_token,
                                     struct aws_request *r);

/* Parsers of the answers (aws_parse.c; fuzzed). On failure -1 with a secret-free err. */
int aws_parse_sts(const char *xml, size_t len, struct aws_credentials *c, char *err,
                  size_t errlen);
int aws_parse_ecs(const char *json, size_t len, struct aws_credentials *c, char *err,
                  size_t errlen);
int aws_parse_bootstrap_brokers(const char *json, size_t len, char **brokers, char *err,
                                size_t errlen);

/* "2024-01-02T03:04:05Z" (fractions and a numeric offset accepted) -> epoch; -1 if bad. */
time_t aws_parse_time(const char *s);

#endif
