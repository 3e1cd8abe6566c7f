/* src/kafka/kafka.c: the Kafka client settings shared by the consumers and the offset tools
 * (see kafka.h). */
#include "kafka/kafka.h"

#include <stdio.h>

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
