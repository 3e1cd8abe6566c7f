/* src/kafka/kafka.c: the Kafka client settings shared by the consumers and the offset tools,
 * their offline check, and MSK IAM (see kafka.h).
 *
 * The check asks librdkafka itself whether a property name and value are valid, by setting
 * them on a scratch rd_kafka_conf_t that is destroyed unused: no client is created, nothing
 * connects. The list of worker-owned properties is here, next to the code that applies the
 * shared settings; the consumers set exactly these themselves (src/pipeline/consumer.c).
 *
 * MSK IAM: the token refresh callback asks src/aws for a token (credentials cached there,
 * shared by every handle) and hands it to librdkafka with its expiry; librdkafka calls again
 * at 80 % of the lifetime, so a 900 s token is renewed after 12 minutes. A failure is reported
 * to librdkafka (which retries every 10 s and fails the connection attempts meanwhile) and
 * logged once per failure as one [ERROR] line, with a reason that holds no secret.
 */
#include "kafka/kafka.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws.h"
#include "log/log.h"

#define IAM_PRINCIPAL "msk-iam"

struct kafka_auth {
    char *brokers;
    struct aws *aws;         /* NULL without OAUTHBEARER and without an MSK cluster ARN */
    int iam;                 /* OAUTHBEARER: the refresh callback is set */
};

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

/* ------------------------------------------------------------------ kafka_auth */

static bool uses_iam(const struct cgw_config *cfg) {
    return cfg->kafka.sasl_mechanism && !strcmp(cfg->kafka.sasl_mechanism, "OAUTHBEARER");
}

static int new_aws(const struct cgw_config *cfg, struct kafka_auth *ka, char *err, size_t errlen) {
    const struct aws_options o = {
        .region = cfg->aws.region,
        .role_arn = cfg->aws.role_arn,
        .role_session_name = cfg->aws.role_session_name,
        .sts_endpoint = cfg->aws.sts_endpoint,
        .msk_endpoint = cfg->aws.msk_endpoint,
        .user_agent = "consumer-graph-worker/" CGW_VERSION,
    };
    return aws_new(&o, &ka->aws, err, errlen);
}

int kafka_auth_new(const struct cgw_config *cfg, struct kafka_auth **out, char *err,
                   size_t errlen) {
    struct kafka_auth *ka = calloc(1, sizeof *ka);
    *out = NULL;
    if (!ka) {
        snprintf(err, errlen, "kafka: out of memory");
        return -1;
    }
    ka->iam = uses_iam(cfg);
    int rc = 0;
    if (ka->iam || cfg->kafka.msk_cluster_arn) rc = new_aws(cfg, ka, err, errlen);
    if (rc == 0 && cfg->kafka.msk_cluster_arn) {
        rc = aws_msk_bootstrap_brokers(ka->aws, cfg->kafka.msk_cluster_arn, &ka->brokers, err, errlen);
        if (rc == 0)
            LOG(LOG_INFO, "Kafka brokers from the MSK API", LOG_STR("cluster_arn", cfg->kafka.msk_cluster_arn),
                LOG_STR("brokers", ka->brokers));
    } else if (rc == 0 && !(ka->brokers = strdup(cfg->kafka.brokers ? cfg->kafka.brokers : ""))) {
        snprintf(err, errlen, "kafka: out of memory");
        rc = -1;
    }
    if (rc < 0) {
        kafka_auth_free(ka);
        return -1;
    }
    *out = ka;
    return 0;
}

void kafka_auth_free(struct kafka_auth *ka) {
    if (!ka) return;
    aws_free(ka->aws);
    free(ka->brokers);
    free(ka);
}

const char *kafka_auth_brokers(const struct kafka_auth *ka) { return ka->brokers; }

void *kafka_user(const rd_kafka_t *rk) {
    const struct kafka_link *l = rd_kafka_opaque(rk);
    return l ? l->user : NULL;
}

/* ------------------------------------------------------------------ MSK IAM */

static void token_failed(rd_kafka_t *rk, const char *reason) {
    LOG(LOG_ERROR, "[ERROR] MSK IAM: no token for Kafka authentication", LOG_STR("client", rd_kafka_name(rk)),
        LOG_STR("error", reason));
    rd_kafka_oauthbearer_set_token_failure(rk, reason);
}

static void oauthbearer_refresh(rd_kafka_t *rk, const char *oauthbearer_config, void *opaque) {
    const struct kafka_link *l = opaque;
    char err[768], *token = NULL;
    long long expires_ms = 0;
    (void)oauthbearer_config;
    if (aws_msk_token(l->auth->aws, &token, &expires_ms, err, sizeof err) < 0) {
        token_failed(rk, err);
        return;
    }
    char e[512];
    rd_kafka_resp_err_t rc = rd_kafka_oauthbearer_set_token(rk, token, expires_ms, IAM_PRINCIPAL,
                                                            NULL, 0, e, sizeof e);
    memset(token, 0, strlen(token));
    free(token);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) token_failed(rk, e);
}

int kafka_conf_apply(rd_kafka_conf_t *conf, const struct cgw_config *cfg,
                     struct kafka_link *link, char *err, size_t errlen) {
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
    if (!link) return 0;            /* the offline check: no handle will be made */
    rd_kafka_conf_set_opaque(conf, link);
    if (link->auth && link->auth->iam) {
        rd_kafka_conf_set_oauthbearer_token_refresh_cb(conf, oauthbearer_refresh);
        rd_kafka_conf_enable_sasl_queue(conf, 1);   /* served on the background thread */
    }
    return 0;
}

/* What the worker's Kafka clients set from their own keys or need fixed: the group, the
 * commit settings (offsets are stored only after the graph write), the cooperative assignor
 * and classic group protocol the rebalance handling is written for, security, and the static
 * membership id (kafka.group_instance_id). */
static const char *const worker_owned[] = {
    "bootstrap.servers", "metadata.broker.list", "group.id", "client.id", "enable.auto.commit",
    "enable.auto.offset.store", "auto.offset.reset", "partition.assignment.strategy",
    "group.protocol", "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username",
    "sasl.password", "group.instance.id",
    /* OAUTHBEARER is MSK IAM, whose tokens the worker makes (src/aws) */
    "sasl.oauthbearer.method", "sasl.oauthbearer.config", "enable.sasl.oauthbearer.unsecure.jwt", NULL,
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

/* Kafka's rule for group.instance.id (as for topic names): [A-Za-z0-9._-], at most 249
 * bytes; the worker appends "-receipt" / "-factoid", so the base gets 200. */
static int check_group_instance_id(const char *id, char *err, size_t errlen) {
    if (!id) return 0;
    if (strlen(id) > 200) {
        snprintf(err, errlen, "config: kafka.group_instance_id: longer than 200 characters");
        return -1;
    }
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') {
            snprintf(err, errlen, "config: kafka.group_instance_id: only letters, digits, '.', '_' "
                                  "and '-' are allowed (Kafka's group.instance.id)");
            return -1;
        }
    return 0;
}

int kafka_check_config(const struct cgw_config *cfg, char *err, size_t errlen) {
    if (check_group_instance_id(cfg->kafka.group_instance_id, err, errlen)) return -1;
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    int rc = 0;
    for (size_t i = 0; i < cfg->kafka.properties_count && rc == 0; i++)
        rc = check_property(scratch, &cfg->kafka.properties[i], err, errlen);
    if (rc == 0) {
        char e[256];
        rc = kafka_conf_apply(scratch, cfg, NULL, e, sizeof e);
        if (rc) snprintf(err, errlen, "config: %s", e);
    }
    rd_kafka_conf_destroy(scratch);
    return rc;
}

int kafka_handle_started(rd_kafka_t *rk, const struct kafka_link *link, char *err,
                         size_t errlen) {
    if (!link->auth || !link->auth->iam) return 0;
    rd_kafka_error_t *e = rd_kafka_sasl_background_callbacks_enable(rk);
    if (!e) return 0;
    snprintf(err, errlen, "kafka: SASL background callbacks: %s", rd_kafka_error_string(e));
    rd_kafka_error_destroy(e);
    return -1;
}
