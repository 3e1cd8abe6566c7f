/* src/pipeline/pipeline.h: the running worker. Owns every long-lived resource (the Neo4j
 * driver, the enrichment client, the flag poller, the metrics registry and server) and one
 * consumer thread per enabled topic.
 *
 *   main ─ pipeline_new(cfg) ─ pipeline_start ─ (signal) ─ pipeline_stop ─ pipeline_free
 *
 * Health: pipeline_live() (liveness, /healthz) and pipeline_ready() (readiness, /readyz) are
 * safe from any thread; the metrics server calls them.
 *
 * Each consumer thread runs the same loop (consumer.c): poll Kafka and feed the batch engine
 * (engine.h), which decodes and filters each record, applies the rollout flag and the
 * idempotency cache, gathers purchases into write batches, enriches each and hands it to the
 * consumer's writer thread for its Neo4j transaction, marks it in the cache, and only then
 * stores each partition's contiguous watermark for commit. Decoding differs per topic;
 * everything after it is shared.
 */
#ifndef CGW_PIPELINE_H
#define CGW_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config.h"

struct pipeline;                     /* opaque: the worker, its consumers and servers */

/* The configuration check both `cgw check-config` and `cgw run` make after config_load():
 * whatever pipeline_new would refuse in cfg (each subsystem's own option checks, the Bolt URI,
 * librdkafka property names, the worker-owned Kafka properties), found without connecting to
 * anything. 0, or -1 with "config: <key>: <reason>" in err. pipeline_new calls it first. */
int pipeline_check_config(const struct cgw_config *cfg, char *err, size_t errlen);

/* Connects what must be there at start (Neo4j: constraints are created) and starts the
 * metrics server and the flag poller. The config must outlive the pipeline. Returns 0, or
 * -1 with a message in err. */
int pipeline_new(const struct cgw_config *cfg, struct pipeline **out, char *err, size_t errlen);

/* Starts the consumer threads. They wait for the first read of the flags before consuming. */
int pipeline_start(struct pipeline *p, char *err, size_t errlen);

/* Asks every consumer to finish its batch in flight, commit and leave its group, within
 * shutdown_timeout_ms: a Neo4j call that stalls (or still runs at half the deadline) is
 * cancelled, so its batch is abandoned uncommitted and read again later. Returns 0 when every
 * thread has ended; -1 when the deadline passed first (logged): threads still run, so the
 * caller must not free p and should end the process. Call once, from the main thread. */
int pipeline_stop(struct pipeline *p);

/* Liveness: every thread of the worker (consumers, flag poller) makes progress: none is
 * blocked past its own call's deadline (plus a grace). reason gets why not (may be NULL). */
bool pipeline_live(struct pipeline *p, char *reason, size_t len);

/* Readiness: flags loaded, and every enabled consumer connected and not waiting for a server
 * (stopped by its killswitch or running without the Valkey cache count as ready). */
bool pipeline_ready(struct pipeline *p, char *reason, size_t len);

void pipeline_free(struct pipeline *p);

#endif
