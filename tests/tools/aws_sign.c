/* tests/tools/aws_sign.c: prints what src/aws sends, for fixed credentials and a fixed clock,
 * so tests/py/test_aws_oracle.py can compare it with AWS's own code (the MSK IAM signer and
 * botocore); and runs the credential chain of the real code against the fake AWS endpoints
 * (tests/py/test_aws_credentials.py). Not part of the worker.
 *
 *   aws_sign token REGION EPOCH USER_AGENT AKID SECRET TOKEN|-
 *   aws_sign bootstrap REGION EPOCH ENDPOINT CLUSTER_ARN AKID SECRET TOKEN|-
 *   aws_sign assume-role REGION EPOCH ENDPOINT ROLE_ARN SESSION AKID SECRET TOKEN|-
 *   aws_sign web-identity ENDPOINT ROLE_ARN SESSION JWT
 *   aws_sign credentials REGION STS_ENDPOINT ROLE_ARN|-
 *       one aws handle; per line "S" read on stdin, the clock advances S seconds and
 *       aws_credentials_get runs; prints "source=... access_key_id=... expires_in=..." (source
 *       with '_' for spaces) or "error=..." per call, flushed, so a test can change the fake
 *       AWS endpoints between calls.
 *
 * Requests print as "METHOD URL", one "Name: value" line per header, then "" and the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws.h"
#include "log/log.h"

static struct aws_credentials creds(char **argv) {
    struct aws_credentials c = { argv[0], argv[1], strcmp(argv[2], "-") ? argv[2] : NULL, 0, "args" };
    return c;
}

static int print_request(int rc, struct aws_request *r) {
    if (rc < 0) return fputs("aws_sign: cannot build the request\n", stderr), 1;
    printf("%s %s\n", r->method, r->url);
    for (int i = 0; r->headers[i]; i++) printf("%s\n", r->headers[i]);
    printf("\n%s", r->body ? r->body : "");
    aws_request_free(r);
    return 0;
}

static time_t offset;
static time_t moving_clock(void) { return time(NULL) + offset; }

static int run_credentials(char **argv) {
    struct aws_options o = { .region = argv[0], .sts_endpoint = argv[1],
                             .role_arn = strcmp(argv[2], "-") ? argv[2] : NULL,
                             .clock = moving_clock };
    char err[1024], line[64], source[32];
    struct aws *a = NULL;
    int bad = 0;
    log_set_output(2);      /* stdout carries one answer line per call */
    if (aws_new(&o, &a, err, sizeof err) < 0) return fprintf(stderr, "%s\n", err), 1;
    while (fgets(line, sizeof line, stdin)) {
        offset += atoll(line);
        struct aws_credentials c;
        if (aws_credentials_get(a, &c, err, sizeof err) < 0) {
            printf("error=%s\n", err);
            fflush(stdout);
            bad = 1;
            continue;
        }
        snprintf(source, sizeof source, "%s", c.source);
        for (char *p = source; *p; p++) if (*p == ' ') *p = '_';
        printf("source=%s access_key_id=%s expires_in=%lld\n", source, c.access_key_id,
               c.expiration ? (long long)(c.expiration - moving_clock()) : -1LL);
        fflush(stdout);
        aws_credentials_clear(&c);
    }
    aws_free(a);
    return bad;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "token") && argc == 8) {
        struct aws_credentials c = creds(argv + 5);
        char *t = aws_req_msk_token(&c, argv[2], argv[4], (time_t)atoll(argv[3]));
        if (!t) return 1;
        printf("%s\n", t);
        free(t);
        return 0;
    }
    struct aws_request r;
    if (!strcmp(cmd, "bootstrap") && argc == 9) {
        struct aws_credentials c = creds(argv + 6);
        return print_request(aws_req_bootstrap_brokers(&c, argv[2], argv[4], argv[5],
                                                       (time_t)atoll(argv[3]), &r), &r);
    }
    if (!strcmp(cmd, "assume-role") && argc == 10) {
        struct aws_credentials c = creds(argv + 7);
        return print_request(aws_req_assume_role(&c, argv[2], argv[4], argv[5], argv[6],
                                                 (time_t)atoll(argv[3]), &r), &r);
    }
    if (!strcmp(cmd, "web-identity") && argc == 6)
        return print_request(aws_req_assume_role_web_identity(argv[2], argv[3], argv[4], argv[5], &r), &r);
    if (!strcmp(cmd, "credentials") && argc == 5) return run_credentials(argv + 2);
    fputs("usage: see tests/tools/aws_sign.c\n", stderr);
    return 2;
}
