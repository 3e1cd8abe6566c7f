/* src/pipeline/pipeline_internal.h: what pipeline.c (shared resources), the consumer files
 * (consumer*.c, one consumer thread) and the batch engine (engine*.c) share. Not an interface
 * for anything outside src/pipeline/. */
#ifndef CGW_PIPELINE_INTERNAL_H
#define CGW_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bolt/bolt.h"
#include "config/config.h"
#include "enrich/enrich.h"
#include "flags/flags.h"
#include "kafka/kafka.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "record/record.h"

typedef enum consumer_kind { CONSUMER_RECEIPT = 0, CONSUMER_FACTOID, CONSUMER_COUNT } consumer_kind;

typedef enum consumer_state {
    CONSUMER_STATE_WAITING_FLAGS = 0,  /* flags not read yet: nothing consumed */
    CONSUMER_STATE_RUNNING,
    CONSUMER_STATE_KILLSWITCHED,       /* Kafka connection closed by the killswitch flag */
    CONSUMER_STATE_WAITING_ENRICHMENT, /* a batch waits out an enrichment outage */
    CONSUMER_STATE_WAITING_NEO4J,      /* a batch waits out a Neo4j outage */
    CONSUMER_STATE_WAITING_REGISTRY,   /* a factoid of an unknown schema id waits for the registry */
    CONSUMER_STATE_WAITING_DLQ,        /* a batch waits until its dead letters are written */
    CONSUMER_STATE_STOPPED,
    CONSUMER_STATE_WAITING_KAFKA,      /* no broker reachable (derived from the outage) */
    CONSUMER_STATE_WAITING_VALKEY,     /* a Valkey call stalled (derived) */
    CONSUMER_STATE_RUNNING_NO_VALKEY,  /* running without the idempotency cache (derived) */
    CONSUMER_STATE_COUNT
} consumer_state;

const char *consumer_state_name(consumer_state s);

/* Why a record went to the dead-letter topic, in the order of the pipeline's steps. */
#define CONSUMER_DLQ_REASONS 5
extern const char *const consumer_dlq_reasons[CONSUMER_DLQ_REASONS];

/* Metrics of one consumer; registered once, updated lock-free from its thread. */
typedef struct consumer_metrics {
    struct metrics_counter *consumed;
    const record_reason *reasons;      /* this consumer's skip reasons, ending with NONE */
    struct metrics_counter *skipped[RECORD_REASON_COUNT];
    struct metrics_counter *errors_decode, *errors_enrich, *errors_graph;
    struct metrics_counter *persisted, *rewritten;
    struct metrics_counter *nodes_created, *relationships_created;
    struct metrics_counter *graph_retries, *graph_deadlocks, *graph_failures, *graph_splits;
    struct metrics_counter *idem_unavailable, *enrich_unavailable;
    struct metrics_counter *fido_count_mismatch;
    struct metrics_counter *dead_lettered[CONSUMER_DLQ_REASONS]; /* consumer_dlq_reasons */
    const char *dlq_topic;             /* NULL: no dead-letter topic */
    struct metrics_histogram *batch_size, *write_seconds;
    struct metrics_gauge *lag;
    struct metrics_gauge *killswitch;                        /* 1 while the killswitch flag is ON */
    struct metrics_gauge *state[CONSUMER_STATE_COUNT];       /* 1 for the current state, else 0 */
} consumer_metrics;

struct consumer;

/* ---- what a thread waits on, and outages (watch.c) ---- */

/* The servers a thread calls. Each call is bracketed by watch_call .. watch_done; between
 * calls watch_idle says how long the thread may block (a Kafka poll, a back-off sleep). */
typedef enum server {
    SERVER_NONE = 0, SERVER_KAFKA, SERVER_NEO4J, SERVER_VALKEY, SERVER_ENRICHMENT,
    SERVER_REGISTRY, SERVER_FLAGS, SERVER_COUNT
} server;

/* A thread's call in flight and its outages: written by the thread, read by the watchdog
 * and the status page (all atomics; no lock). */
typedef struct watch {
    const char *name;               /* consumer name for log lines; NULL: none */
    long stall_ms;                  /* stall_after_ms */
    atomic_int server;              /* of the call in flight; SERVER_NONE between calls */
    atomic_llong since_ms;          /* monotonic start of the current call or idle step */
    atomic_llong deadline_ms;       /* monotonic: past it (and a grace) the thread is stuck */
    atomic_bool stall_reported;     /* the watchdog logged this call's stall */
    atomic_bool running;            /* the thread exists and has not ended */
    struct watch *latch;            /* whose outage latches and gauges count: NULL its own;
                                     * a consumer's writers share the first one's, so one
                                     * outage is one start line and one end line */
    struct log_latch outage[SERVER_COUNT];
    atomic_llong last_slow_ms[SERVER_COUNT];  /* last stall or answer after stall_ms */
    atomic_bool healthy[SERVER_COUNT];        /* the last answer came in time */
    struct metrics_gauge *unavailable[SERVER_COUNT];
} watch;

long long mono_ms(void);
const char *server_name(server s);
/* Registers cgw_server_unavailable{consumer,server} gauges when r and name are given. */
void watch_init(watch *w, const char *name, long stall_ms, struct metrics_registry *r,
                const server *servers);
void watch_call(watch *w, server s, long budget_ms);
void watch_idle(watch *w, long budget_ms);
/* Reports an outcome of s: the outage's start (failing) or its end, each logged once. */
void watch_report(watch *w, server s, bool failing, const char *err);
/* Ends the call to s and reports its outcome; a success slower than stall_ms counts as
 * something gone wrong (it does not end an outage). */
void watch_done(watch *w, server s, bool failing, const char *err);
/* The server of a call in flight longer than stall_ms, else SERVER_NONE. */
server watch_stalled(watch *w, long long now, long stall_ms);
/* Watchdog: a stalled call starts its server's outage (logged once) while it still blocks;
 * an outage whose server has been fine for the settle time ends (logged once). */
void watch_check_stall(watch *w, long long now);
bool watch_outage(watch *w, server s);
/* Live: not running, or not past its own deadline plus WATCH_GRACE_MS. */
#define WATCH_GRACE_MS 5000
bool watch_live(watch *w, long long now);

/* ---- what the status page shows of a consumer (status.c) ---- */


#define STATUS_MAX_PARTITIONS 256
#define STATUS_MAX_WRITERS 4               /* consumers.<name>.writers, at most */
#define STATUS_WINDOW_MINUTES 10           /* "writes per 10 minutes" */
#define STATUS_HISTORY_MINUTES 60          /* the per-minute ring: the page's chart of the last hour */

typedef struct partition_lag {
    int32_t partition;
    int64_t position;                  /* next offset to read; -1 unknown */
    int64_t lag;                       /* -1 unknown */
} partition_lag;

typedef struct consumer_status {
    const char *name, *topic, *group;
    atomic_int state;                  /* consumer_state */
    atomic_llong state_since_ms;       /* wall clock of the last change of state */
    atomic_bool killswitch;
    watch watch;                       /* the consumer thread's calls and outages */
    watch write_watch[STATUS_MAX_WRITERS];       /* its writer threads' (Neo4j transactions) */
    atomic_int write_state[STATUS_MAX_WRITERS];  /* each writer's: running, or waiting_for_neo4j */
    const consumer_metrics *metrics;
    pthread_mutex_t mu;                /* guards what follows */
    partition_lag partitions[STATUS_MAX_PARTITIONS];
    int npartitions;
    long long minute[STATUS_HISTORY_MINUTES];  /* which minute each bucket counts */
    uint64_t writes[STATUS_HISTORY_MINUTES];
} consumer_status;

void status_init(consumer_status *st, const char *name, const char *topic, const char *group);
void status_destroy(consumer_status *st);
void status_count_writes(consumer_status *st, long long now_ms, uint64_t n);
/* Sets the state, and its start time when it changed. */
void status_set_state(consumer_status *st, consumer_state s, long long now_ms);
/* Writes of the last `minutes` minutes (the current one included), 1..STATUS_HISTORY_MINUTES. */
uint64_t status_writes_last(consumer_status *st, long long now_ms, int minutes);
/* out[i]: writes in minute now-(STATUS_HISTORY_MINUTES-1-i); the last entry is this minute. */
void status_writes_per_minute(consumer_status *st, long long now_ms, uint64_t out[STATUS_HISTORY_MINUTES]);
const consumer_status *consumer_get_status(const struct consumer *c);
consumer_status *consumer_status_of(struct consumer *c);
/* The stored state, overridden by what the watch says: a stalled call, Kafka or Valkey down. */
consumer_state status_effective_state(consumer_status *st, long long now, long stall_ms);
/* Sets the cgw_consumer_state gauges to the effective state (the watchdog, every tick), so a
 * consumer blocked on a frozen server shows waiting_for_<server> there too. */
void status_publish_state(consumer_status *st, long long now, long stall_ms);
/* The /status document, as `cgw status` prints it (json_t *, caller decrefs; NULL: out of
 * memory), and the same as text (caller frees). */
struct json_t;
struct json_t *pipeline_status_doc(struct pipeline *p);
char *pipeline_status_json(struct pipeline *p);

struct pipeline {
    const struct cgw_config *cfg;
    struct kafka_auth *kafka;      /* brokers (MSK API when configured) and MSK IAM */
    bolt_driver *neo4j;
    struct enrich_client *enrich;
    struct metrics_registry *metrics;
    struct metrics_server *metrics_server;

    /* Flags: the poller thread publishes snapshots, consumers read them without locks. */
    struct flags_store flags;
    struct flags_poller *_Atomic flag_poller; /* read by /status, which may come before it */
    struct metrics_counter *flags_errors;
    struct metrics_gauge *flags_last_read;  /* unix time of the last good read of the flags */
    watch flag_watch;                      /* the flag poller's calls and outage */
    pthread_t watchdog_thread;
    bool watchdog_started;

    struct consumer *consumers[CONSUMER_COUNT];
    char group_instance_base[256];         /* "": dynamic group membership */
    long long started_ms;
    atomic_bool stopping;
    pthread_mutex_t stop_mu;       /* with stop_cv: wakes sleeping threads on stop */
    pthread_cond_t stop_cv;
};

/* consumer.c */
/* The configuration as each subsystem's options (options.c): the one mapping, used by the
 * start-up code and by pipeline_check_config alike. Strings are borrowed from cfg. */
struct registry_options;
struct idem_options;
void pipeline_enrich_options(const struct cgw_config *cfg, struct enrich_options *o);
void pipeline_registry_options(const struct cgw_config *cfg, struct registry_options *o);
void pipeline_idem_options(const struct cgw_config *cfg, const char *client_name,
                           struct idem_options *o);
void pipeline_flags_http_options(const struct cgw_config *cfg, struct flags_http_options *o);
void pipeline_flags_valkey_options(const struct cgw_config *cfg, struct flags_valkey_options *o);

struct consumer *consumer_new(struct pipeline *p, consumer_kind kind, char *err, size_t errlen);
/* The thread has ended (or never started): joining it does not block. */
bool consumer_finished(struct consumer *c);
int consumer_start(struct consumer *c, char *err, size_t errlen);
void consumer_join(struct consumer *c);
void consumer_free(struct consumer *c);

/* pipeline.c: sleep up to ms, returning early (true) when the pipeline is stopping. */
bool pipeline_sleep(struct pipeline *p, long ms);
bool pipeline_is_stopping(struct pipeline *p);
long long wall_ms(void);
/* The Valkey connection of cfg (host, port, ACL user, password, TLS) into o, over what it
 * holds already (defaults, timeouts): shared by the idempotency cache and the flag source. */
void pipeline_valkey_options(const struct cgw_config *cfg, struct valkey_options *o);

#endif
