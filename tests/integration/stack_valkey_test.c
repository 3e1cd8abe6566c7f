/* Valkey of the local stack, used through hiredis as the worker will: the idempotency cache
 * needs SET with a TTL, GET, and EXPIRE. */
#define TEST_MAIN
#include "test.h"
#include "stack.h"

#include <hiredis/hiredis.h>
#include <unistd.h>

static redisContext *connect_valkey(void) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout(STACK_VALKEY_HOST, STACK_VALKEY_PORT, tv);
    CHECKF(c && !c->err, "connect to valkey %s:%d: %s", STACK_VALKEY_HOST, STACK_VALKEY_PORT,
           c ? c->errstr : "out of memory");
    return c;
}

static redisReply *cmd(redisContext *c, const char *fmt, const char *a, const char *b) {
    redisReply *r = redisCommand(c, fmt, a, b);
    CHECKF(r != NULL, "command failed: %s", c->errstr);
    return r;
}

TEST(valkey_set_get_expire) {
    redisContext *c = connect_valkey();
    char key[64];
    snprintf(key, sizeof key, "cgw:test:%d", (int)getpid());

    redisReply *r = cmd(c, "SET %s %s EX 60", key, "topic/3/42");
    CHECK_EQ_STR(r->str, "OK");
    freeReplyObject(r);

    r = cmd(c, "GET %s", key, NULL);
    CHECK_EQ_INT(r->type, REDIS_REPLY_STRING);
    CHECK_EQ_STR(r->str, "topic/3/42");
    freeReplyObject(r);

    r = cmd(c, "TTL %s", key, NULL);
    CHECK(r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 60);
    freeReplyObject(r);

    r = redisCommand(c, "PEXPIRE %s 100", key);
    CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
    freeReplyObject(r);
    usleep(300 * 1000);
    r = cmd(c, "GET %s", key, NULL);
    CHECK_EQ_INT(r->type, REDIS_REPLY_NIL);
    freeReplyObject(r);
    redisFree(c);
}

TEST(valkey_has_no_persistence) {
    redisContext *c = connect_valkey();
    redisReply *r = redisCommand(c, "CONFIG GET save");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    CHECK_EQ_STR(r->element[1]->str, "");
    freeReplyObject(r);
    r = redisCommand(c, "CONFIG GET appendonly");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    CHECK_EQ_STR(r->element[1]->str, "no");
    freeReplyObject(r);
    redisFree(c);
}
