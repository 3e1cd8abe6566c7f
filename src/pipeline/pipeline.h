/* src/pipeline/pipeline.h: the running worker. Owns every long-lived resource (the Neo4j
 * driver, the enrichment client, the flag poller, the metrics registry and server) and one
 * consumer thread per enabled topic.
 *
 *   main ─ pipeline_new(cfg) ─ pipeline_start ─ (signal) ─ pipeline_stop ─ pipeline_free
 *
 * Each consumer thread runs the same loop (consumer.c): collect a batch from Kafka, decode
 * and filter it, apply the rollout flag and the idempotency cache, enrich it, write it to
 * Neo4j in one transaction, mark it in the cache, and only then store its offsets for
 * commit. Decoding differs per topic; everything after it is shared.
 */
#ifndef CGW_PIPELINE_H
#define CGW_PIPELINE_H

#include <stddef.h>

#include "config/config.h"

typedef struct pipeline pipeline;

/* The configuration check both `cgw check-config` and `cgw run` make after config_load():
 * whatever pipeline_new would refuse in cfg (each subsystem's own option checks, the Bolt URI,
 * librdkafka property names, the worker-owned Kafka properties), found without connecting to
 * anything. 0, or -1 with "config: <key>: <reason>" in err. pipeline_new calls it first. */
int pipeline_check_config(const struct cgw_config *cfg, char *err, size_t errlen);

/* Connects what must be there at start (Neo4j: constraints are created) and starts the
 * metrics server and the flag poller. The config must outlive the pipeline. Returns 0, or
 * -1 with a message in err. */
int pipeline_new(const struct cgw_config *cfg, pipeline **out, char *err, size_t errlen);

/* Starts the consumer threads. They wait for the first read of the flags before consuming. */
int pipeline_start(pipeline *p, char *err, size_t errlen);

/* Asks every consumer to finish its batch in flight, commit and leave its group; returns
 * when they have. Safe to call once from the main thread. */
void pipeline_stop(pipeline *p);

void pipeline_free(pipeline *p);

#endif
