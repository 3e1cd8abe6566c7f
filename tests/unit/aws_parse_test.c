/* tests/unit/aws_parse_test.c: the parsers of AWS answers (src/aws/aws_parse.c) on the
 * documents AWS returns (STS AssumeRole / AssumeRoleWithWebIdentity results and
 * ErrorResponse, ECS container credentials, MSK GetBootstrapBrokers), and what they refuse:
 * DOCTYPEs (no entity can be declared), missing fields, bad times. Error texts must never
 * carry a secret of the document. */
#define TEST_MAIN
#include "test.h"

#include "aws/aws.h"

#define STS_OK                                                                                   \
    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"                 \
    "  <AssumeRoleResult>\n    <SourceIdentity>x</SourceIdentity>\n"                             \
    "    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn>"                  \
    "<AssumedRoleId>AROA3XFRBF535PLBIFPI4:s3-access-example</AssumedRoleId></AssumedRoleUser>\n" \
    "    <Credentials>\n      <SessionToken>AQoDYXdzEPT//////////wEXAMPLE</SessionToken>\n"       \
    "      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>\n"         \
    "      <Expiration>2019-11-09T13:34:41Z</Expiration>\n"                                      \
    "      <AccessKeyId>ASIAJEXAMPLEXEG2JICEA</AccessKeyId>\n    </Credentials>\n"                \
    "    <PackedPolicySize>6</PackedPolicySize>\n  </AssumeRoleResult>\n"                         \
    "  <ResponseMetadata><RequestId>c6104cbe</RequestId></ResponseMetadata>\n"                    \
    "</AssumeRoleResponse>\n"

static char err[512];

TEST(sts_result_gives_the_credentials) {
    struct aws_credentials c;
    CHECKF(aws_parse_sts(STS_OK, strlen(STS_OK), &c, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_STR(c.access_key_id, "ASIAJEXAMPLEXEG2JICEA");
    CHECK_EQ_STR(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
    CHECK_EQ_STR(c.session_token, "AQoDYXdzEPT//////////wEXAMPLE");
    CHECK_EQ_INT(c.expiration, 1573306481);
    aws_credentials_clear(&c);
}

TEST(sts_error_gives_code_and_message) {
    const char *x = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>"
                    "<Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message>"
                    "</Error><RequestId>r</RequestId></ErrorResponse>";
    struct aws_credentials c;
    CHECK(aws_parse_sts(x, strlen(x), &c, err, sizeof err) == -1);
    CHECK_EQ_STR(err, "STS error AccessDenied: User is not authorized to perform: sts:AssumeRole");
    CHECK(c.access_key_id == NULL);
}

TEST(sts_refuses_doctype_and_broken_documents) {
    const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>"
                      "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>&b;</AccessKeyId>"
                      "</Credentials></AssumeRoleResult></AssumeRoleResponse>";
    struct aws_credentials c;
    CHECK(aws_parse_sts(lol, strlen(lol), &c, err, sizeof err) == -1);
    CHECK(strstr(err, "DOCTYPE") != NULL);
    CHECK(aws_parse_sts("<a><b>", 6, &c, err, sizeof err) == -1);
    const char *nosecret = "<R><Credentials><AccessKeyId>AKID</AccessKeyId></Credentials></R>";
    CHECK(aws_parse_sts(nosecret, strlen(nosecret), &c, err, sizeof err) == -1);
    CHECK_EQ_STR(err, "STS answer without credentials");
    const char *badtime = "<R><AccessKeyId>A</AccessKeyId><SecretAccessKey>supersecret</SecretAccessKey>"
                          "<Expiration>tomorrow</Expiration></R>";
    CHECK(aws_parse_sts(badtime, strlen(badtime), &c, err, sizeof err) == -1);
    CHECK(strstr(err, "supersecret") == NULL);
}

TEST(ecs_credentials_json) {
    const char *j = "{\"RoleArn\":\"arn:aws:iam::1:role/t\",\"AccessKeyId\":\"ASIAECS\","
                    "\"SecretAccessKey\":\"ecs-secret\",\"Token\":\"ecs-token\","
                    "\"Expiration\":\"2026-12-01T18:00:00Z\"}";
    struct aws_credentials c;
    CHECKF(aws_parse_ecs(j, strlen(j), &c, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_STR(c.access_key_id, "ASIAECS");
    CHECK_EQ_STR(c.session_token, "ecs-token");
    CHECK_EQ_INT(c.expiration, 1796148000);
    aws_credentials_clear(&c);
    CHECK(aws_parse_ecs("[]", 2, &c, err, sizeof err) == -1);
    CHECK(aws_parse_ecs("{\"AccessKeyId\":\"A\"}", 19, &c, err, sizeof err) == -1);
    const char *dup = "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\",\"SecretAccessKey\":\"s\"}";
    CHECK(aws_parse_ecs(dup, strlen(dup), &c, err, sizeof err) == -1);
}

TEST(bootstrap_brokers_json) {
    const char *j = "{\"BootstrapBrokerString\":\"b-1:9092\",\"BootstrapBrokerStringSaslIam\":"
                    "\"b-1.demo.abc.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.demo.abc.c2.kafka.eu-west-1.amazonaws.com:9098\"}";
    char *b = NULL;
    CHECKF(aws_parse_bootstrap_brokers(j, strlen(j), &b, err, sizeof err) == 0, "%s", err);
    CHECK(strncmp(b, "b-1.demo.abc.c2.kafka.eu-west-1.amazonaws.com:9098,", 51) == 0);
    free(b);
    const char *no_iam = "{\"BootstrapBrokerStringTls\":\"b-1:9094\"}";
    CHECK(aws_parse_bootstrap_brokers(no_iam, strlen(no_iam), &b, err, sizeof err) == -1);
    CHECK(strstr(err, "no BootstrapBrokerStringSaslIam") != NULL);
}

TEST(times_as_aws_writes_them) {
    CHECK_EQ_INT(aws_parse_time("2019-11-09T13:34:41Z"), 1573306481);
    CHECK_EQ_INT(aws_parse_time("2019-11-09T13:34:41.123Z"), 1573306481);
    CHECK_EQ_INT(aws_parse_time("2019-11-09T15:34:41+02:00"), 1573306481);
    CHECK_EQ_INT(aws_parse_time("2019-11-09 13:34:41"), -1);
    CHECK_EQ_INT(aws_parse_time("2019-13-09T13:34:41Z"), -1);
    CHECK_EQ_INT(aws_parse_time("2019-11-09T13:34:41Zjunk"), -1);
    /* a short offset: the parser skipped 6 bytes past "+1:0" and read beyond the string
     * (a heap overflow under ASan, found by fuzzing) */
    CHECK_EQ_INT(aws_parse_time("0-2-0T1:0:2.+1:0"), -1);
    CHECK_EQ_INT(aws_parse_time("2019-11-09T15:34:41+2:00"), -1);
    CHECK_EQ_INT(aws_parse_time("2019-11-09T15:34:41+02:0"), -1);
    CHECK_EQ_INT(aws_parse_time("2019-11-09T11:34:41-02:00"), 1573306481);
}
