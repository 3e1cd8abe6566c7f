/* src/pipeline/consumer.c: one consumer and its thread: records in, graph out, offsets
 * committed only after the graph has them.
 *
 * The thread waits for the first read of the flags, then loops: the killswitch flag (ON
 * closes the Kafka connection, OFF opens it again), one poll of Kafka, and the batch engine
 * (engine.h), which takes each record, settles skips and errors at once, writes purchases in
 * batches cut by purchases, and stores each partition's contiguous watermark for commit.
 * The poll waits at most until the open write batch's linger time ends, so a batch is never
 * late because Kafka is quiet.
 *
 * The work is in three files: this one (the thread, its loop, its lifetime), consumer_kafka.c
 * (the librdkafka handle: subscribe, rebalance, leave, poll, store, lag, error events) and
 * consumer_deps.c (the engine's servers and options, the metrics). While the engine waits
 * out an outage it does not poll Kafka; librdkafka's own threads keep the group membership
 * alive until max.poll.interval.ms, after which the group moves the partitions elsewhere and
 * what was not committed is simply read again there.
 *
 * Waiting is visible (watch.c): every call to a server is bracketed by watch_call ..
 * watch_done with the call's deadline from the config, and every Kafka poll or back-off
 * sleep by watch_idle, so the status page, /readyz and /healthz can tell a thread waiting
 * on a frozen server from a busy one while the call still blocks.
 */
#include "pipeline/consumer_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "idem/idem.h"
#include "registry/registry.h"

#define POLL_MAX_MS 500
#define LAG_EVERY_MS 1000
#define KILLSWITCH_EVERY_MS 100   /* the loop turns once per record polled */      /* the engine runs up to every 20 ms while a batch is written */

static void set_state(struct consumer *c, consumer_state s) {
    status_set_state(&c->st, s, wall_ms());
}

static void idle_for(struct consumer *c, long ms) { watch_idle(&c->st.watch, ms); }

/* ------------------------------------------------------------------ the loop */

/* Kafka connection up: a new handle subscribed to the topic (it resumes from the group's
 * committed offsets). */
static int connect_kafka(struct consumer *c) {
    char err[512];
    if (!c->rk && !(c->rk = consumer_kafka_new(c, err, sizeof err))) goto fail;
    if (consumer_kafka_subscribe(c, err, sizeof err) != 0) goto fail;
    LOG(LOG_INFO, "Consumer started", LOG_STR("consumer", c->name),
        LOG_STR("topic", c->cc->topic), LOG_STR("group", c->cc->group));
    set_state(c, CONSUMER_STATE_RUNNING);
    return 0;
fail:
    LOG(LOG_ERROR, "[ERROR] Consumer cannot start", LOG_STR("consumer", c->name),
        LOG_STR("error", err));
    return -1;
}

/* Kafka connection down: leave the group (librdkafka commits what was stored) and close. */
static void disconnect_kafka(struct consumer *c) {
    if (!c->rk) return;
    idle_for(c, 30000);   /* bounded by leave_group's polls and librdkafka's close */
    consumer_kafka_leave(c);
    engine_reset(c->engine);
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    idle_for(c, 0);
    pthread_mutex_lock(&c->st.mu);
    c->st.npartitions = 0;
    pthread_mutex_unlock(&c->st.mu);
    metrics_set_gauge(c->m.lag, 0);
}

/* After a fatal error: no LeaveGroup (the broker no longer knows this member), just close; the
 * next handle joins under the same group.instance.id and fences the stale one. Stored but
 * uncommitted offsets are lost: those records are read again (rewrites, not losses). */
static void drop_fatal_kafka(struct consumer *c) {
    char reason[512];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(c->rk, reason, sizeof reason);
    LOG(LOG_ERROR, "[ERROR] Kafka consumer failed fatally; reconnecting", LOG_STR("consumer", c->name),
        LOG_STR("error", e ? reason : "unknown"));
    engine_reset(c->engine);
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    c->fatal = false;
}

/* The killswitch flag, read every KILLSWITCH_EVERY_MS between polls: ON closes the Kafka
 * connection, OFF opens it. */
static bool killswitch_on(struct consumer *c) {
    long long now = base_monotonic_ms();
    if (now - c->killswitch_ms < KILLSWITCH_EVERY_MS) return atomic_load(&c->st.killswitch);
    c->killswitch_ms = now;
    const struct flags_set *set = flags_read(&c->p->flags, &c->flags_reader);
    const char *flag = c->kind == CONSUMER_RECEIPT ? c->p->cfg->flags.receipt_killswitch_flag
                                                   : c->p->cfg->flags.factoid_killswitch_flag;
    bool on = flags_is_on(set, flag);
    atomic_store(&c->st.killswitch, on);
    metrics_set_gauge(c->m.killswitch, on ? 1 : 0);
    return on;
}

/* Everything taken so far written (or abandoned at shutdown) before the handle goes. */
static void flush(struct consumer *c) {
    if (engine_flush(c->engine) == 0) set_state(c, CONSUMER_STATE_RUNNING);
}

/* One poll; the engine runs once nothing more is there at once, or its chunk is full. */
static void consume(struct consumer *c) {
    struct engine_record r;
    int got = consumer_kafka_poll(c, engine_poll_ms(c->engine, POLL_MAX_MS), &r);
    consumer_kafka_probe(c, got);
    if (got && !engine_add(c->engine, &r)) return;
    engine_run(c->engine);
    long long now = base_monotonic_ms();
    if (now - c->lag_ms < LAG_EVERY_MS) return;
    c->lag_ms = now;
    consumer_kafka_lag(c);
}

/* The killswitch's part of the loop: true while it keeps the consumer stopped. */
static bool stopped_by_killswitch(struct consumer *c, bool *subscribed) {
    if (!killswitch_on(c)) return false;
    if (*subscribed) {
        flush(c);
        disconnect_kafka(c);
        *subscribed = false;
        LOG(LOG_INFO, "Consumer stopped by its killswitch", LOG_STR("consumer", c->name));
    }
    set_state(c, CONSUMER_STATE_KILLSWITCHED);
    pipeline_sleep(c->p, 250);
    return true;
}

/* A connected handle, a new one after a fatal error: false when none could be made. */
static bool connected(struct consumer *c, bool *subscribed) {
    if (c->fatal) {
        drop_fatal_kafka(c);
        *subscribed = false;
    }
    if (*subscribed) return true;
    if (connect_kafka(c) != 0) {
        disconnect_kafka(c);
        pipeline_sleep(c->p, 5000);
        return false;
    }
    *subscribed = true;
    return true;
}

static void *consumer_main(void *arg) {
    struct consumer *c = arg;
    base_name_thread("cgw-", c->name);
    /* No consumer runs before the flags have been read once (contract §4). */
    set_state(c, CONSUMER_STATE_WAITING_FLAGS);
    while (!atomic_load(&c->p->flags.generation)) {
        idle_for(c, 100);
        if (pipeline_sleep(c->p, 100)) goto out;
    }
    bool subscribed = false;
    while (!pipeline_is_stopping(c->p)) {
        idle_for(c, 5000);
        if (stopped_by_killswitch(c, &subscribed) || !connected(c, &subscribed)) continue;
        consume(c);
    }
    if (subscribed) flush(c);
    disconnect_kafka(c);
    LOG(LOG_INFO, "Consumer stopped", LOG_STR("consumer", c->name));
out:
    set_state(c, CONSUMER_STATE_STOPPED);
    atomic_store(&c->st.watch.running, false);
    atomic_store(&c->finished, true);
    return NULL;
}

/* ------------------------------------------------------------------ lifecycle */

static int open_registry(struct consumer *c, char *err, size_t errlen) {
    const struct cgw_config *cfg = c->p->cfg;
    struct registry_options ro;
    pipeline_registry_options(cfg, &ro);
    char e[256];
    c->registry = registry_new(&ro, e, sizeof e);
    if (!c->registry) {
        snprintf(err, errlen, "schema_registry: %s", e);
        return -1;
    }
    if (!strcmp(registry_mode(c->registry), "open"))
        LOG(LOG_WARN, "No schema registry and no allowed_schema_ids: every schema id is accepted",
            LOG_STR("consumer", c->name));
    return 0;
}

static int open_dlq(struct consumer *c, char *err, size_t errlen) {
    struct kafka_dlq_options o;
    kafka_dlq_options_init(&o);
    o.cfg = c->p->cfg;
    o.auth = c->p->kafka;
    o.client_suffix = c->kind == CONSUMER_RECEIPT ? "receipt-dlq" : "factoid-dlq";
    c->dlq = kafka_dlq_new(&o, err, errlen);
    return c->dlq ? 0 : -1;
}

static int open_engine(struct consumer *c, char *err, size_t errlen) {
    struct engine_options o;
    consumer_engine_options(c, &o);
    c->engine = engine_new(&o, err, errlen);
    return c->engine ? 0 : -1;
}

struct consumer *consumer_new(struct pipeline *p, consumer_kind kind, char *err, size_t errlen) {
    struct consumer *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); return NULL; }
    c->p = p;
    c->kind = kind;
    c->name = kind == CONSUMER_RECEIPT ? "receipt" : "factoid";
    c->cc = kind == CONSUMER_RECEIPT ? &p->cfg->consumers.receipt : &p->cfg->consumers.factoid;
    consumer_metrics_register(&c->m, p->metrics, c->name, kind, c->cc->dlq_topic);
    status_init(&c->st, c->name, c->cc->topic, c->cc->group);
    static const server watched[] = {SERVER_KAFKA, SERVER_NEO4J, SERVER_VALKEY,
                                     SERVER_ENRICHMENT, SERVER_REGISTRY, SERVER_NONE};
    watch_init(&c->st.watch, c->name, p->cfg->stall_after_ms, p->metrics, watched);
    atomic_store(&c->st.watch.running, false);   /* until the thread starts */
    atomic_store(&c->finished, true);
    c->st.metrics = &c->m;
    const struct cgw_config *cfg = p->cfg;
    struct idem_options io;
    pipeline_idem_options(cfg, kind == CONSUMER_RECEIPT ? "cgw-receipt" : "cgw-factoid", &io);
    c->idem = idem_new(&io, err, errlen);
    if (c->idem && kind == CONSUMER_FACTOID && open_registry(c, err, errlen) != 0) {
        consumer_free(c);
        return NULL;
    }
    if (!c->idem || !(c->rk = consumer_kafka_new(c, err, errlen)) ||
        (c->cc->dlq_topic && open_dlq(c, err, errlen) != 0) || open_engine(c, err, errlen) != 0) {
        consumer_free(c);
        return NULL;
    }
    return c;
}

int consumer_start(struct consumer *c, char *err, size_t errlen) {
    watch_idle(&c->st.watch, 5000);
    atomic_store(&c->st.watch.running, true);
    atomic_store(&c->finished, false);
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        atomic_store(&c->st.watch.running, false);
        atomic_store(&c->finished, true);
        snprintf(err, errlen, "cannot start the %s consumer thread", c->name);
        return -1;
    }
    c->started = true;
    return 0;
}

void consumer_join(struct consumer *c) {
    if (c->started) pthread_join(c->thread, NULL);
    c->started = false;
}

const consumer_status *consumer_get_status(const struct consumer *c) { return &c->st; }

consumer_status *consumer_status_of(struct consumer *c) { return &c->st; }

bool consumer_finished(struct consumer *c) { return atomic_load(&c->finished); }

void consumer_free(struct consumer *c) {
    if (!c) return;
    consumer_join(c);
    engine_free(c->engine);   /* its records before the handle they belong to */
    if (c->rk) rd_kafka_destroy(c->rk);
    if (c->idem) idem_free(c->idem);
    if (c->registry) registry_free(c->registry);
    kafka_dlq_free(c->dlq);
    flags_release_reader(&c->flags_reader);
    flags_release_reader(&c->rollout_reader);
    status_destroy(&c->st);
    free(c);
}
