/* src/aws/aws_internal.h: what the files of src/aws share behind aws.h: the handle, and the
 * credential sources of the chain (aws_creds.c) that the cache (aws.c) calls. */
#ifndef CGW_AWS_INTERNAL_H
#define CGW_AWS_INTERNAL_H

#include <pthread.h>

#include "aws/aws.h"
#include "http/http_body.h"

struct aws {
    char *region, *role_arn, *session_name, *sts_endpoint, *msk_endpoint, *user_agent;
    long timeout_ms;
    time_t (*clock)(void);
    pthread_mutex_t mu;              /* guards the two caches */
    struct aws_credentials chain;    /* from the provider chain */
    struct aws_credentials role;     /* aws.role_arn assumed with chain's */
};

/* Sends r with the handle's deadline; the answer (any status) into body. 0 or -1 (err). */
int aws_send(const struct aws *a, const struct aws_request *r, long *status, struct http_body *body,
             char *err, size_t errlen);

/* Credentials from the first source of the chain that is configured (aws.h). 0 or -1. */
int aws_chain_fetch(const struct aws *a, struct aws_credentials *c, char *err, size_t errlen);

/* STS AssumeRole of a->role_arn signed with base. 0 or -1. */
int aws_assume_role(const struct aws *a, const struct aws_credentials *base,
                    struct aws_credentials *c,
                    char *err, size_t errlen);

/* An STS answer (any status) into credentials or a message. 0 or -1. */
int aws_sts_answer(const char *what, long status, const struct http_body *b,
                   struct aws_credentials *c, char *err, size_t errlen);

#endif
