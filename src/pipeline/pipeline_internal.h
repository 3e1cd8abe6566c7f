/* src/pipeline/pipeline_internal.h: what pipeline.c (shared resources) and consumer.c (one
 * consumer thread) share. Not an interface for anything outside src/pipeline/. */
#ifndef CGW_PIPELINE_INTERNAL_H
#define CGW_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "bolt/bolt.h"
#include "config/config.h"
#include "enrich/enrich.h"
#include "flags/flags.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "pipeline/pipeline.h"
#include "record/record.h"

typedef enum consumer_kind { CONSUMER_RECEIPT = 0, CONSUMER_FACTOID, CONSUMER_COUNT } consumer_kind;

/* Metrics of one consumer; registered once, updated lock-free from its thread. */
typedef struct consumer_metrics {
    struct metrics_counter *consumed;
    struct metrics_counter *skipped[RECORD_REASON_COUNT];
    struct metrics_counter *errors_decode, *errors_enrich, *errors_graph;
    struct metrics_counter *persisted;
    struct metrics_counter *nodes_created, *relationships_created;
    struct metrics_counter *graph_retries, *graph_failures;
    struct metrics_counter *idem_unavailable, *enrich_unavailable;
    struct metrics_counter *fido_count_mismatch;
    struct metrics_histogram *batch_size, *write_seconds;
    struct metrics_gauge *lag;
} consumer_metrics;

typedef struct consumer consumer;

struct pipeline {
    const struct cgw_config *cfg;
    bolt_driver *neo4j;
    struct enrich_client *enrich;
    struct metrics_registry *metrics;
    struct metrics_server *metrics_server;

    /* Flags: the poller thread publishes snapshots, consumers read them without locks. */
    struct flags_store flags;
    pthread_t flag_thread;
    bool flag_thread_started;
    struct flags_file flag_file;
    struct metrics_counter *flags_errors;

    consumer *consumers[CONSUMER_COUNT];
    atomic_bool stopping;
    pthread_mutex_t stop_mu;       /* with stop_cv: wakes sleeping threads on stop */
    pthread_cond_t stop_cv;
};

/* consumer.c */
consumer *consumer_new(pipeline *p, consumer_kind kind, char *err, size_t errlen);
int consumer_start(consumer *c, char *err, size_t errlen);
void consumer_join(consumer *c);
void consumer_free(consumer *c);

/* pipeline.c: sleep up to ms, returning early (true) when the pipeline is stopping. */
bool pipeline_sleep(pipeline *p, long ms);
bool pipeline_is_stopping(pipeline *p);

#endif
