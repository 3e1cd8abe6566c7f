/* src/kafka/kafka.h: what every Kafka client of the worker sets the same way. The consumers
 * (src/pipeline) and the offset tools (src/admin) both connect with the configuration's
 * brokers, security protocol, SASL settings and extra librdkafka properties; this is that
 * one place, so a security setting cannot reach one client and miss the other. It also
 * derives the consumers' static group membership id (kafka_instance.c).
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
 *   msk-iam: kafka:GetBootstrapBrokers            cluster    the MSK API call behind kafka.msk_cluster_arn
 *
 * MSK IAM: with kafka.sasl_mechanism OAUTHBEARER every handle gets a token refresh callback
 * that signs AWS MSK IAM tokens (src/aws), run on librdkafka's background thread so that a
 * consumer waiting out an outage, or an admin tool between requests, still refreshes. With
 * kafka.msk_cluster_arn the broker list comes from the MSK API, once per kafka_auth.
 *
 *   kafka_auth_new(cfg)              once per process (cgw run, cgw offsets/group): resolves
 *                                    the brokers, prepares the signer
 *   kafka_conf_apply(conf, cfg, l)   per handle, l embedded in the handle's owner
 *   rd_kafka_new(...)
 *   kafka_handle_started(rk, l)      per handle: background SASL callbacks
 */
#ifndef CGW_KAFKA_H
#define CGW_KAFKA_H

#include <stdbool.h>
#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"

struct kafka_auth;                   /* opaque: brokers and MSK IAM of the process */

/* The conf opaque of a handle: src/kafka's callbacks reach the process's kafka_auth through
 * it, and the handle's owner keeps its own pointer in user (kafka_user). It must live as
 * long as the handle: embed it in the struct that owns the handle. */
struct kafka_link {
    struct kafka_auth *auth;       /* NULL: no MSK IAM */
    void *user;
};

/* Resolves the brokers (GetBootstrapBrokers when kafka.msk_cluster_arn is set: the only
 * network call) and, with OAUTHBEARER, prepares the MSK IAM signer. 0, or -1 with err. */
int kafka_auth_new(const struct cgw_config *cfg, struct kafka_auth **out, char *err, size_t errlen);
void kafka_auth_free(struct kafka_auth *ka);

/* The bootstrap brokers: kafka.brokers, or the MSK API's answer. */
const char *kafka_auth_brokers(const struct kafka_auth *ka);

/* The user pointer of the handle's kafka_link. */
void *kafka_user(const rd_kafka_t *rk);

/* rd_kafka_conf_set with the key in the message; a NULL value sets nothing. 0 or -1. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                   size_t errlen);

/* security.protocol, sasl.* and the configuration's kafka.properties, in that order (the
 * properties come last so that they may override what the caller set before); link becomes
 * the conf opaque, and with link->auth the OAUTHBEARER refresh callback is set (link NULL:
 * settings only, for the offline check). 0 or -1. */
int kafka_conf_apply(rd_kafka_conf_t *conf, const struct cgw_config *cfg,
                     struct kafka_link *link, char *err, size_t errlen);

/* After rd_kafka_new: with MSK IAM, SASL callbacks run on librdkafka's background thread.
 * 0, or -1 with err. */
int kafka_handle_started(rd_kafka_t *rk, const struct kafka_link *link, char *err,
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
/* Static group membership (kafka_instance.c): the base of the consumers' group.instance.id,
 * each consumer using "<base>-<consumer>". configured is kafka.group_instance_id (NULL: not
 * set; "": static membership off, out is ""). Unset: the ECS task id from
 * $ECS_CONTAINER_METADATA_URI_V4/task (2 s deadline), else the host name. Returns 0; 1 when
 * ECS metadata was expected but failed and the host name was used (err says why); -1 when
 * no id could be found (out ""). */
int kafka_group_instance_base(const char *configured, char *out, size_t outlen, char *err,
                              size_t errlen);

/* The task id (last segment of TaskARN) from GET <metadata_uri>/task. 0 or -1. */
int kafka_ecs_task_id(const char *metadata_uri, char *out, size_t outlen, char *err,
                      size_t errlen);

#endif
