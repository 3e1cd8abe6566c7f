/* src/kafka/kafka.h: what every Kafka client of the worker sets the same way. The consumers
 * (src/pipeline) and the offset tools (src/admin) both connect with the configuration's
 * brokers, security protocol, SASL settings and extra librdkafka properties; this is that
 * one place, so a security setting cannot reach one client and miss the other.
 *
 * The IAM actions the running worker needs on Amazon MSK (IAM access control), one line each,
 * with the resource they are checked against and the Kafka requests that need them. This list
 * is the source of deploy/ecs/task-role-policy.json, which grants exactly these and nothing
 * more (tests/py/test_deploy.py compares them); change both together. The operators' tools
 * (`cgw offsets reset`, `cgw group delete`: kafka-cluster:DeleteGroup) run under their own
 * role, not the task's.
 *   msk-iam: kafka-cluster:Connect                cluster    every connection (the OAUTHBEARER token signs it)
 *   msk-iam: kafka-cluster:DescribeTopic          topic      Metadata, ListOffsets (lag) of the two input topics
 *   msk-iam: kafka-cluster:ReadData               topic      Fetch from the two input topics
 *   msk-iam: kafka-cluster:DescribeGroup          group      FindCoordinator, OffsetFetch of the two groups
 *   msk-iam: kafka-cluster:AlterGroup             group      JoinGroup, SyncGroup, Heartbeat, OffsetCommit, LeaveGroup
 *   msk-iam: kafka-cluster:DescribeTopic          dlq-topic  Metadata of the dead-letter topics
 *   msk-iam: kafka-cluster:WriteData              dlq-topic  Produce to the dead-letter topics
 *   msk-iam: kafka-cluster:WriteDataIdempotently  cluster    InitProducerId of the idempotent dead-letter producer
 *                                                            (Kafka's IDEMPOTENT_WRITE is a cluster ACL)
 *   msk-iam: kafka:GetBootstrapBrokers            cluster    the MSK API call behind kafka.msk_cluster_arn */
#ifndef CGW_KAFKA_H
#define CGW_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"

/* rd_kafka_conf_set with the key in the message; a NULL value sets nothing. 0 or -1. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                   size_t errlen);

/* security.protocol, sasl.* and the configuration's kafka.properties, in that order (the
 * properties come last so that they may override what the caller set before). 0 or -1. */
int kafka_conf_apply(rd_kafka_conf_t *conf, const struct cgw_config *cfg, char *err,
                     size_t errlen);

/* True for a librdkafka property the worker's clients set themselves (group.id, the commit
 * settings, the assignor, security, ...): kafka.properties may not override it, because the
 * at-least-once contract or the rebalance handling depend on its value. */
bool kafka_property_is_worker_owned(const char *name);

/* The Kafka part of the configuration check (pipeline_check_config), offline: every
 * kafka.properties name must be one librdkafka knows (rd_kafka_conf_set on a scratch conf,
 * which also checks the value), none may be worker-owned, and the security settings must be
 * accepted as kafka_conf_apply will set them. 0, or -1 with "config: <key>: <reason>". */
int kafka_check_config(const struct cgw_config *cfg, char *err, size_t errlen);

#endif
