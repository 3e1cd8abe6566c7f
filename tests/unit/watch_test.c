/* watch_test.c: the per-thread watch of calls in flight (src/pipeline/watch.c): a stalled
 * call is visible and logs its outage's start once while it still blocks; slow answers do
 * not end an outage; the end comes once the server has answered in time for the settle time
 * (5 x stall_after), logged once, by the thread or by the watchdog; liveness is the deadline.
 * stall_after is 100 ms here, so the waits are short. */
#define TEST_MAIN
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "pipeline/pipeline_internal.h"

#define STALL_MS 100

static FILE *out;

static void capture(void) {
    if (out) fclose(out);
    out = tmpfile();
    CHECK(out != NULL);
    log_configure(LOG_FORMAT_LOGFMT, LOG_INFO, NULL);
    log_set_output(fileno(out));
}

/* How many log lines so far contain text. */
static int lines_with(const char *text) {
    char line[2048];
    int n = 0;
    fflush(out);
    rewind(out);
    while (fgets(line, sizeof line, out))
        if (strstr(line, text)) n++;
    fseek(out, 0, SEEK_END);
    return n;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static watch *new_watch(void) {
    watch *w = calloc(1, sizeof *w);
    watch_init(w, "receipt", STALL_MS, NULL, NULL);
    return w;
}

TEST(a_stalled_call_is_seen_and_logged_once_while_it_blocks) {
    capture();
    watch *w = new_watch();
    watch_call(w, SERVER_NEO4J, 60000);
    CHECK_EQ_INT(watch_stalled(w, mono_ms(), STALL_MS), SERVER_NONE);
    sleep_ms(STALL_MS + 50);
    CHECK_EQ_INT(watch_stalled(w, mono_ms(), STALL_MS), SERVER_NEO4J);
    watch_check_stall(w, mono_ms());
    watch_check_stall(w, mono_ms());
    CHECK_EQ_INT(lines_with("[ERROR] Neo4j unavailable"), 1);
    CHECK_EQ_INT(lines_with("no answer for"), 1);
    CHECK(watch_outage(w, SERVER_NEO4J));
    /* The call then fails (its timeout): the same outage, no second line. */
    watch_done(w, SERVER_NEO4J, true, "no answer within 5000 ms");
    CHECK_EQ_INT(lines_with("[ERROR] Neo4j unavailable"), 1);
    CHECK_EQ_INT(watch_stalled(w, mono_ms(), STALL_MS), SERVER_NONE);
    free(w);
}

TEST(slow_answers_do_not_end_an_outage_and_the_end_is_logged_once_after_settling) {
    capture();
    watch *w = new_watch();
    watch_call(w, SERVER_ENRICHMENT, 10000);
    watch_done(w, SERVER_ENRICHMENT, true, "503");
    watch_call(w, SERVER_ENRICHMENT, 10000);
    sleep_ms(STALL_MS + 20);
    watch_done(w, SERVER_ENRICHMENT, false, NULL);        /* answered, but slowly */
    watch_call(w, SERVER_ENRICHMENT, 10000);
    watch_done(w, SERVER_ENRICHMENT, false, NULL);        /* in time: settling starts */
    watch_check_stall(w, mono_ms());
    CHECK(watch_outage(w, SERVER_ENRICHMENT));
    CHECK_EQ_INT(lines_with("Enrichment services available again"), 0);
    sleep_ms(5 * STALL_MS + 50);
    watch_check_stall(w, mono_ms());                      /* no call came: the watchdog ends it */
    watch_check_stall(w, mono_ms());
    CHECK(!watch_outage(w, SERVER_ENRICHMENT));
    CHECK_EQ_INT(lines_with("[ERROR] Enrichment services unavailable"), 1);
    CHECK_EQ_INT(lines_with("[INFO] Enrichment services available again"), 1);
    CHECK_EQ_INT(lines_with("failures=1"), 1);      /* slow answers are not failures */
    free(w);
}

/* The bug CI found: Neo4j frozen, thawed, the retried write answered slowly, and no call came
 * after it (the backlog was drained): the outage never ended, "[INFO] Neo4j available again"
 * never came and the gauge stayed 1. */
TEST(an_outage_whose_last_answer_was_slow_ends_when_no_call_comes) {
    capture();
    watch *w = new_watch();
    watch_call(w, SERVER_NEO4J, 60000);
    watch_done(w, SERVER_NEO4J, true, "no answer within 2000 ms");
    watch_call(w, SERVER_NEO4J, 60000);
    sleep_ms(STALL_MS + 20);
    watch_done(w, SERVER_NEO4J, false, NULL);             /* answered, slowly; the last call */
    watch_check_stall(w, mono_ms());
    CHECK(watch_outage(w, SERVER_NEO4J));                 /* not before the settle time */
    sleep_ms(5 * STALL_MS + 50);
    watch_check_stall(w, mono_ms());
    watch_check_stall(w, mono_ms());
    CHECK(!watch_outage(w, SERVER_NEO4J));
    CHECK_EQ_INT(lines_with("[INFO] Neo4j available again"), 1);
    free(w);
}

TEST(events_without_a_call_start_and_end_an_outage) {
    capture();
    watch *w = new_watch();
    watch_report(w, SERVER_KAFKA, true, "2/2 brokers are down");
    watch_report(w, SERVER_KAFKA, true, "2/2 brokers are down");
    CHECK_EQ_INT(lines_with("[ERROR] Kafka unavailable"), 1);
    sleep_ms(5 * STALL_MS + 50);
    watch_report(w, SERVER_KAFKA, false, NULL);
    CHECK_EQ_INT(lines_with("[INFO] Kafka available again"), 1);
    CHECK(!watch_outage(w, SERVER_KAFKA));
    free(w);
}

TEST(a_thread_past_its_deadline_is_not_live) {
    watch *w = new_watch();
    watch_call(w, SERVER_VALKEY, 2000);
    long long now = mono_ms();
    CHECK(watch_live(w, now));
    CHECK(watch_live(w, now + 2000 + WATCH_GRACE_MS - 100));
    CHECK(!watch_live(w, now + 2000 + WATCH_GRACE_MS + 100));
    atomic_store(&w->running, false);                     /* an ended thread is not stuck */
    CHECK(watch_live(w, now + 100000));
    free(w);
}

TEST(an_outage_of_quick_failures_ends_at_the_first_answer) {
    capture();
    watch *w = new_watch();
    for (int i = 0; i < 3; i++) {
        watch_call(w, SERVER_FLAGS, 1000);
        watch_done(w, SERVER_FLAGS, true, "HTTP 503");
    }
    watch_call(w, SERVER_FLAGS, 1000);
    watch_done(w, SERVER_FLAGS, false, NULL);
    CHECK(!watch_outage(w, SERVER_FLAGS));
    CHECK_EQ_INT(lines_with("[ERROR] FlagPoller: cannot read flags"), 1);
    CHECK_EQ_INT(lines_with("[INFO] FlagPoller: flags readable again"), 1);
    CHECK_EQ_INT(lines_with("failures=3"), 1);
    free(w);
}
