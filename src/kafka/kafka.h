/* src/kafka/kafka.h: what every Kafka client of the worker sets the same way. The consumers
 * (src/pipeline) and the offset tools (src/admin) both connect with the configuration's
 * brokers, security protocol, SASL settings and extra librdkafka properties; this is that
 * one place, so a security setting cannot reach one client and miss the other. */
#ifndef CGW_KAFKA_H
#define CGW_KAFKA_H

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

#endif
