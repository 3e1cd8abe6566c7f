/* src/kafka/dlq.h: the dead-letter topic: writing records that can never succeed there, and
 * reading them back for `cgw dlq show` and `cgw dlq replay`.
 *
 * A dead letter is the source record unchanged (key, value, its own headers) plus headers
 * that say why and from where (KAFKA_DLQ_H_* below). Writing is synchronous and reliable:
 * an idempotent producer with acks=all, each call waiting until every letter is
 * acknowledged or the delivery deadline has passed. The pipeline stores a record's offset
 * only after its letter is acknowledged, so a DLQ that cannot be written makes the
 * partition wait and nothing is lost.
 *
 * The same producer puts letters back on their source topic (replay), without the dead-
 * letter headers, so the record is read again exactly as it first arrived.
 */
#ifndef CGW_KAFKA_DLQ_H
#define CGW_KAFKA_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "kafka/kafka.h"

/* Header names; every one the worker adds starts with KAFKA_DLQ_H_PREFIX. */
#define KAFKA_DLQ_H_PREFIX "cgw-dlq-"
#define KAFKA_DLQ_H_REASON "cgw-dlq-reason"
#define KAFKA_DLQ_H_ERROR "cgw-dlq-error"
#define KAFKA_DLQ_H_TOPIC "cgw-dlq-source-topic"
#define KAFKA_DLQ_H_PARTITION "cgw-dlq-source-partition"
#define KAFKA_DLQ_H_OFFSET "cgw-dlq-source-offset"
#define KAFKA_DLQ_H_TIMESTAMP "cgw-dlq-source-timestamp"   /* ms since the epoch, or -1 */
#define KAFKA_DLQ_H_CONSUMER "cgw-dlq-consumer"
#define KAFKA_DLQ_H_VERSION "cgw-dlq-worker-version"

struct kafka_dlq_options {
    const struct cgw_config *cfg;  /* brokers, security, kafka.properties */
    struct kafka_auth *auth;       /* resolved brokers and MSK IAM (the process's); NULL: one
                                    * is made from cfg for this producer */
    const char *client_suffix;     /* client.id = <kafka.client_id>-<suffix> */
    int delivery_timeout_ms;       /* per call: every letter acknowledged within it; 10000 */
};

void kafka_dlq_options_init(struct kafka_dlq_options *o);

/* One record that can never succeed, and why. */
typedef struct kafka_dlq_letter {
    const rd_kafka_message_t *msg; /* the source record: topic, partition, offset, key... */
    const char *reason;            /* a short class: "undecodable", "neo4j_refused", ... */
    const char *error;             /* the error text */
    const char *consumer;
    const char *version;
} kafka_dlq_letter;

struct kafka_dlq;                    /* opaque: one producer */


struct kafka_dlq *kafka_dlq_new(const struct kafka_dlq_options *o, char *err, size_t errlen);
void kafka_dlq_free(struct kafka_dlq *d);

/* Produce every letter to topic and wait for the acknowledgements. 0 when all of them are
 * written; -1 with the reason in err otherwise (some may be written: the caller sends them
 * all again later, so a letter can appear twice, never zero times). */
int kafka_dlq_send(struct kafka_dlq *d, const char *topic, const kafka_dlq_letter *letters,
                   size_t n,
                   char *err, size_t errlen);

/* Put dead letters (messages read from a DLQ) back on the topic named by their
 * KAFKA_DLQ_H_TOPIC header: original key, value and headers, without the dead-letter ones.
 * 0, or -1 with err as kafka_dlq_send. */
int kafka_dlq_replay(struct kafka_dlq *d, const rd_kafka_message_t *const *letters, size_t n,
                     char *err, size_t errlen);

/* A dead-letter header as a NUL-terminated string in buf ("" when absent). */
const char *kafka_dlq_header(const rd_kafka_message_t *m, const char *name, char *buf,
                             size_t len);

/* Read topic from its first to its last offset (as of the call), calling cb for each record
 * in partition order; cb returns 0 to go on. Waits at most timeout_ms in all. 0, or -1 with
 * err (topic missing, broker unreachable, deadline passed). */
typedef int (*kafka_dlq_read_cb)(void *ud, const rd_kafka_message_t *m);
int kafka_dlq_read(const struct cgw_config *cfg, const char *topic, int timeout_ms,
                   kafka_dlq_read_cb cb, void *ud, char *err, size_t errlen);

#endif
