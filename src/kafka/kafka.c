/* src/kafka/kafka.c: the Kafka client settings shared by the consumers and the offset tools
 * (see kafka.h), and their offline check.
 *
 * The check asks librdkafka itself whether a property name and value are valid, by setting
 * them on a scratch rd_kafka_conf_t that is destroyed unused: no client is created, nothing
 * connects. The list of worker-owned properties is here, next to the code that applies the
 * shared settings; the consumers set exactly these themselves (src/pipeline/consumer.c). */
#include "kafka/kafka.h"

#include <stdio.h>
#include <string.h>

int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                   size_t errlen) {
    char e[256];
    if (!value) return 0;
    if (rd_kafka_conf_set(conf, key, value, e, sizeof e) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "kafka: %s: %s", key, e);
        return -1;
    }
    return 0;
}

static const char *security_protocol(enum config_security_protocol p) {
    switch (p) {
    case CONFIG_SECURITY_SSL: return "ssl";
    case CONFIG_SECURITY_SASL_PLAINTEXT: return "sasl_plaintext";
    case CONFIG_SECURITY_SASL_SSL: return "sasl_ssl";
    default: return "plaintext";
    }
}

int kafka_conf_apply(rd_kafka_conf_t *conf, const struct cgw_config *cfg, char *err,
                     size_t errlen) {
    if (kafka_conf_set(conf, "security.protocol",
                       security_protocol(cfg->kafka.security_protocol), err, errlen) ||
        kafka_conf_set(conf, "sasl.mechanism", cfg->kafka.sasl_mechanism, err, errlen) ||
        kafka_conf_set(conf, "sasl.username", cfg->kafka.sasl_username, err, errlen) ||
        kafka_conf_set(conf, "sasl.password", cfg->kafka.sasl_password, err, errlen))
        return -1;
    for (size_t i = 0; i < cfg->kafka.properties_count; i++)
        if (kafka_conf_set(conf, cfg->kafka.properties[i].key, cfg->kafka.properties[i].value,
                           err, errlen))
            return -1;
    return 0;
}

/* What the worker's Kafka clients set from their own keys or need fixed: the group, the
 * commit settings (offsets are stored only after the graph write), the cooperative assignor
 * and classic group protocol the rebalance handling is written for, and security. */
static const char *const worker_owned[] = {
    "bootstrap.servers", "metadata.broker.list", "group.id", "client.id", "enable.auto.commit",
    "enable.auto.offset.store", "auto.offset.reset", "partition.assignment.strategy",
    "group.protocol", "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username",
    "sasl.password", NULL,
};

bool kafka_property_is_worker_owned(const char *name) {
    for (int i = 0; worker_owned[i]; i++)
        if (strcmp(name, worker_owned[i]) == 0) return true;
    return false;
}

/* One kafka.properties entry on the scratch conf; librdkafka's message may quote the value,
 * so a secret-looking property gets a message of its own. */
static int check_property(rd_kafka_conf_t *scratch, const struct config_kv *kv, char *err,
                          size_t errlen) {
    char e[256];
    if (kafka_property_is_worker_owned(kv->key)) {
        snprintf(err, errlen, "config: kafka.properties.%s: is set by the worker itself and "
                 "cannot be overridden here", kv->key);
        return -1;
    }
    rd_kafka_conf_res_t r = rd_kafka_conf_set(scratch, kv->key, kv->value, e, sizeof e);
    if (r == RD_KAFKA_CONF_OK) return 0;
    if (r == RD_KAFKA_CONF_UNKNOWN)
        snprintf(err, errlen, "config: kafka.properties.%s: not a librdkafka %s property",
                 kv->key, rd_kafka_version_str());
    else if (config_secret_property(kv->key))
        snprintf(err, errlen, "config: kafka.properties.%s: invalid value (not shown: secret)",
                 kv->key);
    else
        snprintf(err, errlen, "config: kafka.properties.%s: %s", kv->key, e);
    return -1;
}

int kafka_check_config(const struct cgw_config *cfg, char *err, size_t errlen) {
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    int rc = 0;
    for (size_t i = 0; i < cfg->kafka.properties_count && rc == 0; i++)
        rc = check_property(scratch, &cfg->kafka.properties[i], err, errlen);
    if (rc == 0) {
        char e[256];
        rc = kafka_conf_apply(scratch, cfg, e, sizeof e);
        if (rc) snprintf(err, errlen, "config: %s", e);
    }
    rd_kafka_conf_destroy(scratch);
    return rc;
}
