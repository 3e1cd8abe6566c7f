/* bolt_restart_test.c: Neo4j killed (kill -9) and restarted in the middle of a transaction
 * function: the function's first attempt loses its server before COMMIT, the driver retries it
 * on new connections (refused while Neo4j is down), and it completes once Neo4j is back. The
 * stack script restarts Neo4j (scripts/stack up neo4j), as an operator would.
 *
 * This test stops the shared Neo4j for a while: run it alone, as scripts/run-tests does. */
#define TEST_MAIN
#include "test.h"

#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "bolt/bolt.h"
#include "bolt_test_util.h"

typedef struct restart_ctx {
    int attempts;
    pid_t restarter;
    char id[64];
} restart_ctx;

static pid_t neo4j_pid(void) {
    const char *var = getenv("CGW_VAR");
    char path[512];
    snprintf(path, sizeof path, "%s/neo4j/pid", var && *var ? var : "var");
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1) pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* Kill Neo4j, and start it again in the background while the driver keeps retrying. */
static pid_t kill_and_restart_neo4j(void) {
    pid_t pid = neo4j_pid();
    if (pid <= 0 || kill(pid, SIGKILL) != 0) return -1;
    for (int i = 0; i < 100 && kill(pid, 0) == 0; i++) usleep(100 * 1000);
    pid_t child = fork();
    if (child == 0) {
        int devnull = open("/dev/null", 1);
        if (devnull >= 0) { dup2(devnull, 1); dup2(devnull, 2); }
        execl("/bin/bash", "bash", "scripts/stack", "up", "neo4j", (char *)NULL);
        _exit(127);
    }
    return child;
}

static int work(bolt_conn *c, void *ud, bolt_error *err) {
    restart_ctx *k = ud;
    k->attempts++;
    bolt_value *p = bolt_map();
    bolt_map_set(p, "id", bolt_string(k->id));
    bolt_map_set(p, "attempt", bolt_int(k->attempts));
    int rc = bolt_query(c, "MERGE (n:BoltRestartTest {id: $id}) SET n.attempt = $attempt", p,
                        NULL, NULL, NULL, NULL, err);
    bolt_value_free(p);
    if (rc == BOLT_OK && k->attempts == 1) k->restarter = kill_and_restart_neo4j();
    return rc;
}

TEST(transaction_function_completes_after_neo4j_restart) {
    CHECKF(neo4j_pid() > 0, "no var/neo4j/pid: run from the repository root with the stack up");
    bolt_config cfg;
    bolt_error err;
    bolt_driver *d = NULL;
    bt_config(&cfg);
    cfg.max_retry_time_ms = 300000;   /* a cold Neo4j start can take a minute on a busy CI */
    cfg.retry_initial_delay_ms = 500;
    cfg.connect_timeout_ms = 2000;
    /* The connection dies before COMMIT's answer, so its outcome is unknown to the client;
     * the work is a MERGE, safe to run again (the worker sets this for the same reason). */
    cfg.retry_unknown_commit = 1;
    OK(bolt_driver_new(bt_uri("bolt"), &cfg, &d, &err));
    restart_ctx k = {0};
    snprintf(k.id, sizeof k.id, "restart-%d-%ld", (int)getpid(), (long)time(NULL));
    int rc = bolt_session_write(d, NULL, work, &k, NULL, &err);
    int status = -1;
    if (k.restarter > 0) waitpid(k.restarter, &status, 0);
    CHECKF(k.restarter > 0, "could not kill and restart Neo4j");
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "scripts/stack up neo4j failed");
    CHECKF(rc == BOLT_OK, "session_write: %s: %s", bolt_code_name(rc), err.message);
    CHECKF(k.attempts >= 2, "attempts %d: the kill should have cost attempt 1", k.attempts);

    /* Exactly one node, written by the attempt that committed. */
    bolt_conn *c = NULL;
    OK(bolt_driver_acquire(d, NULL, 0, &c, &err));
    bolt_value *p = bolt_map();
    bolt_map_set(p, "id", bolt_string(k.id));
    bolt_result *r = NULL;
    OK(bolt_run(c, "MATCH (n:BoltRestartTest {id: $id}) RETURN count(n), max(n.attempt)", p,
                NULL, &r, &err));
    const bolt_value *rec = NULL;
    OK(bolt_result_next(r, &rec, &err));
    CHECK(rec != NULL);
    CHECK_EQ_INT(bolt_value_int(bolt_list_get(rec, 0)), 1);
    CHECK_EQ_INT(bolt_value_int(bolt_list_get(rec, 1)), k.attempts);
    bolt_result_free(r);
    OK(bolt_query(c, "MATCH (n:BoltRestartTest {id: $id}) DELETE n", p, NULL, NULL, NULL, NULL,
                  &err));
    bolt_value_free(p);
    bolt_driver_release(d, c);
    bolt_driver_free(d);
}
