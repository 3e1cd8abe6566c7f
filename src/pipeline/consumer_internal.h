/* src/pipeline/consumer_internal.h: one consumer as its three files see it: consumer.c (the
 * thread, its loop and lifetime), consumer_kafka.c (the Kafka handle: create, subscribe,
 * rebalance, leave, poll, store offsets, lag, error events) and consumer_deps.c (the servers
 * the batch engine needs, behind struct engine_deps). Not an interface for anything else;
 * the tests use the few functions marked so. */
#ifndef CGW_PIPELINE_CONSUMER_INTERNAL_H
#define CGW_PIPELINE_CONSUMER_INTERNAL_H

#include <librdkafka/rdkafka.h>

#include "kafka/dlq.h"
#include "kafka/kafka.h"
#include "pipeline/engine.h"

struct consumer {
    struct pipeline *p;
    consumer_kind kind;
    const char *name;                       /* "receipt" / "factoid" */
    const struct config_consumer *cc;
    rd_kafka_t *rk;
    struct kafka_link link;        /* rk's opaque (MSK IAM token callback) */
    struct idem *idem;
    pthread_t thread;
    bool started;
    struct flags_reader flags_reader;       /* the killswitch's */
    struct flags_reader rollout_reader;     /* the engine's rollout checks */
    consumer_metrics m;
    struct registry *registry;     /* factoids only */
    struct kafka_dlq *dlq;         /* NULL when the consumer has no dlq_topic */
    struct engine *engine;
    atomic_bool finished;          /* the thread has ended */
    long long kafka_probe_ms;      /* last recovery probe during a Kafka outage */
    long long lag_ms;              /* last lag update */
    long long killswitch_ms;       /* last read of the killswitch flag */
    consumer_status st;            /* read by the status page from another thread */
    bool fatal;                    /* librdkafka raised a fatal error: the handle is dead */
};

/* consumer_kafka.c */
rd_kafka_t *consumer_kafka_new(struct consumer *c, char *err, size_t errlen);
int consumer_kafka_subscribe(struct consumer *c, char *err, size_t errlen);
/* Unsubscribes (LeaveGroup, partitions released at once), then closes the handle. */
void consumer_kafka_leave(struct consumer *c);
/* One record into out (1), or none within timeout_ms (0); error events are logged and
 * dropped, never records. */
int consumer_kafka_poll(struct consumer *c, long timeout_ms, struct engine_record *out);
/* During a Kafka outage: a record (got), or a metadata answer, ends it. */
void consumer_kafka_probe(struct consumer *c, bool got);
void consumer_kafka_lag(struct consumer *c);
/* engine_deps.store_offsets and .release over c->rk. */
void consumer_kafka_store(void *ctx, const struct engine_offset *o, size_t n);
void consumer_kafka_release(void *ctx, void *handle);

/* For the tests: whether a polled message is a record (not an error event), and the error
 * event's log line (sets *fatal for a fatal one). */
bool consumer_message_is_record(const rd_kafka_message_t *m);
void consumer_message_event(const char *consumer, const rd_kafka_message_t *m, bool *fatal);
/* A factoid's __value_schema_id header (4 bytes big-endian, or decimal text), else -1. */
int32_t consumer_header_schema_id(const rd_kafka_message_t *m);

/* consumer_deps.c: the engine's options and servers for c. */
void consumer_engine_options(struct consumer *c, struct engine_options *o);
/* The consumer's metrics, registered in r. */
void consumer_metrics_register(consumer_metrics *m, struct metrics_registry *r,
                               const char *name, consumer_kind kind, const char *dlq_topic);

#endif
