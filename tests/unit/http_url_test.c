/* http_url_test.c: the one URL checker and userinfo redactor (src/http/http_url.h): what is
 * hidden, what is kept, and what a base URL may hold. */
#define TEST_MAIN
#include "test.h"

#include "http/http_url.h"

#include <stdlib.h>

static char out[512];

static const char *red(const char *in) {
    http_redact_userinfo(in, out, sizeof out);
    return out;
}

TEST(redacts_userinfo_of_every_url_in_a_text) {
    CHECK_EQ_STR(red("http://svc:hunter2@fido:8080/v1/products:batchGet"),
                 "http://<redacted>@fido:8080/v1/products:batchGet");
    CHECK_EQ_STR(red("https://token@r/x?q=a@b"), "https://<redacted>@r/x?q=a@b");
    CHECK_EQ_STR(red("bolt://neo4j:pw@n:7687"), "bolt://<redacted>@n:7687");
    CHECK_EQ_STR(red("FIDO service: HTTP 503 (http://u:p@f/a) then (https://v:q@g)"),
                 "FIDO service: HTTP 503 (http://<redacted>@f/a) then (https://<redacted>@g)");
    /* a password holding '@' is hidden whole: the last '@' of the authority ends it */
    CHECK_EQ_STR(red("http://u:p@ss@host/"), "http://<redacted>@host/");
    /* nothing to hide */
    CHECK_EQ_STR(red("http://host/path/@me"), "http://host/path/@me");
    CHECK_EQ_STR(red("user@example.com"), "user@example.com");
    CHECK_EQ_STR(red(""), "");
    CHECK(http_has_userinfo("x https://a:b@c"));
    CHECK(!http_has_userinfo("https://c/@x"));
    CHECK(!http_has_userinfo(NULL));
}

TEST(redaction_is_cut_to_fit_and_counts_the_full_length) {
    char small[12];
    size_t n = http_redact_userinfo("http://u:p@host/long/path", small, sizeof small);
    CHECK_EQ_INT(n, strlen("http://<redacted>@host/long/path"));
    CHECK_EQ_STR(small, "http://<red");
    char *a = http_redacted("https://a:b@h");
    CHECK_EQ_STR(a, "https://<redacted>@h");
    free(a);
    CHECK(http_redacted(NULL) == NULL);
}

static const char *check(const char *url, unsigned allow) {
    static char why[160];
    return http_url_check(url, allow, why, sizeof why) == 0 ? "ok" : why;
}

TEST(url_check) {
    CHECK_EQ_STR(check("http://f", 0), "ok");
    CHECK_EQ_STR(check("https://f:8443/base/", 0), "ok");
    CHECK_EQ_STR(check("http://[::1]:80", 0), "ok");
    CHECK_EQ_STR(check("http://f:99999", 0), "has a port outside 1..65535");
    CHECK_EQ_STR(check("http://f:0", 0), "has a port outside 1..65535");
    CHECK_EQ_STR(check("ftp://f", 0), "must be an http:// or https:// URL");
    CHECK_EQ_STR(check("f:8080", 0), "is not valid");
    CHECK_EQ_STR(check("", 0), "is empty");
    CHECK_EQ_STR(check("http://u:p@f", 0), "must not hold credentials (user:password@); use the credential keys");
    CHECK_EQ_STR(check("http://u:p@f", HTTP_URL_USERINFO), "ok");
    CHECK_EQ_STR(check("http://f/?a=1", 0), "must not have a query (?...)");
    CHECK_EQ_STR(check("http://f/?a=1", HTTP_URL_QUERY), "ok");
    CHECK_EQ_STR(check("http://f/#x", HTTP_URL_QUERY | HTTP_URL_USERINFO), "must not have a fragment (#...)");
    CHECK_EQ_STR(check("http://f/\r\nHost: evil", 0), "must not contain control characters (found CR)");
}

TEST(text_check) {
    char why[80];
    CHECK_EQ_INT(http_text_check("a token with spaces", why, sizeof why), 0);
    CHECK_EQ_INT(http_text_check(NULL, why, sizeof why), 0);
    CHECK_EQ_INT(http_text_check("abc\ndef", why, sizeof why), -1);
    CHECK_EQ_STR(why, "must not contain control characters (found LF)");
    CHECK_EQ_INT(http_text_check("a\x7f", why, sizeof why), -1);
    CHECK_EQ_STR(why, "must not contain control characters (found a control byte)");
}
