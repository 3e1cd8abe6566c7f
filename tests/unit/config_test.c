/* config_test.c: loading, defaults, every kind of bad value (with its key path), environment
 * substitution, the shipped config files, the redacted dump and the generated reference. */
#define TEST_MAIN
#include "test.h"

#include "config/config.h"
#include "pipeline/pipeline.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

/* The smallest valid file: only the required keys (and flags.file, required by the default
 * flags.source). */
#define BASE                                          \
    "kafka:\n  brokers: k1:9092\n"                    \
    "neo4j:\n  uri: bolt://n:7687\n"                  \
    "enrichment:\n"                                   \
    "  fido: {base_url: http://f}\n"                  \
    "  retailer: {base_url: http://r}\n"              \
    "flags:\n  file: var/flags.json\n"

static char err[1024];

static struct cgw_config *load(const char *yaml) {
    struct cgw_config *c = NULL;
    err[0] = '\0';
    if (config_load_string(yaml, strlen(yaml), "test.yaml", &c, err, sizeof err) != 0) return NULL;
    return c;
}

/* Loads yaml expecting failure; returns the message. */
static const char *load_err(const char *yaml) {
    struct cgw_config *c = load(yaml);
    if (c) {
        config_free(c);
        return "(loaded without error)";
    }
    return err;
}

TEST(minimal_file_gets_defaults) {
    struct cgw_config *c = load(BASE);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->service_name, "consumer-graph-worker");
    CHECK_EQ_INT(c->log.format, LOG_FORMAT_LOGFMT);
    CHECK_EQ_INT(c->log.level, LOG_INFO);
    CHECK(!c->log_only);
    CHECK(!c->dry_run);
    CHECK_EQ_INT(c->deprecated_count, 0);
    CHECK_EQ_STR(c->kafka.brokers, "k1:9092");
    CHECK_EQ_STR(c->kafka.client_id, "consumer-graph-worker");
    CHECK_EQ_INT(c->kafka.security_protocol, CONFIG_SECURITY_PLAINTEXT);
    CHECK(c->kafka.sasl_password == NULL);
    CHECK_EQ_INT(c->kafka.properties_count, 0);
    CHECK(c->consumers.receipt.enabled);
    CHECK_EQ_STR(c->consumers.receipt.topic, "ProcessedReceiptEvent");
    CHECK_EQ_STR(c->consumers.receipt.group, "consumer-graph-receipt");
    CHECK_EQ_INT(c->consumers.receipt.auto_offset_reset, CONFIG_OFFSET_EARLIEST);
    CHECK_EQ_INT(c->consumers.receipt.batch_size, 500);
    CHECK_EQ_INT(c->consumers.receipt.linger_ms, 200);
    CHECK_EQ_STR(c->consumers.factoid.topic, "factoid-stream");
    CHECK_EQ_STR(c->consumers.factoid.group, "consumer-graph-factoid");
    CHECK_EQ_STR(c->neo4j.user, "neo4j");
    CHECK_EQ_STR(c->neo4j.database, "neo4j");
    CHECK_EQ_INT(c->neo4j.max_retry_time_ms, 30000);
    CHECK_EQ_INT(c->neo4j.pool_size, 4);
    CHECK_EQ_INT(c->neo4j.connect_timeout_ms, 5000);
    CHECK_EQ_STR(c->valkey.host, "127.0.0.1");
    CHECK_EQ_INT(c->valkey.port, 6379);
    CHECK(!c->valkey.tls);
    CHECK_EQ_INT(c->valkey.timeout_ms, 500);
    CHECK_EQ_INT(c->valkey.idempotency_ttl_seconds, 604800);
    CHECK_EQ_STR(c->valkey.key_prefix, "cgw:done:");
    CHECK_EQ_INT(c->enrichment.fido.timeout_ms, 2000);
    CHECK_EQ_INT(c->enrichment.retailer.retries, 3);
    CHECK_EQ_INT(c->enrichment.cache.max_entries, 100000);
    CHECK_EQ_INT(c->enrichment.cache.ttl_seconds, 3600);
    CHECK_EQ_INT(c->flags.source, CONFIG_FLAGS_FILE);
    CHECK_EQ_STR(c->flags.http_token_header, "X-Flipper-Token");
    CHECK_EQ_INT(c->flags.poll_interval_seconds, 30);
    CHECK_EQ_STR(c->flags.actor_prefix, "User;");
    CHECK_EQ_STR(c->flags.rollout_flag, "consumer_graph_ingestion");
    CHECK_EQ_STR(c->flags.receipt_killswitch_flag, "consumer_graph_receipt_killswitch");
    CHECK_EQ_STR(c->flags.factoid_killswitch_flag, "consumer_graph_factoid_killswitch");
    CHECK_EQ_STR(c->flags.valkey_key_prefix, "");
    CHECK(c->schema_registry.url == NULL);
    CHECK_EQ_INT(c->schema_registry.allowed_schema_ids_count, 0);
    CHECK_EQ_STR(c->metrics.listen, "127.0.0.1:9464");
    config_free(c);
}

TEST(values_of_every_type) {
    struct cgw_config *c = load(BASE
        "service_name: cgw-test\n"
        "log: {format: JSON, level: debug}\n"
        "log_only: true\n"
        "consumers:\n  receipt:\n    enabled: false\n    batch_size: 42\n    linger_ms: 2s\n"
        "    auto_offset_reset: latest\n"
        "valkey: {port: \"6390\", tls: TRUE, idempotency_ttl_seconds: 1d}\n"
        "schema_registry: {url: https://sr, allowed_schema_ids: [7, 8, 9]}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->service_name, "cgw-test");
    CHECK_EQ_INT(c->log.format, LOG_FORMAT_JSON);
    CHECK_EQ_INT(c->log.level, LOG_DEBUG);
    CHECK(c->log_only);
    CHECK(!c->consumers.receipt.enabled);
    CHECK_EQ_INT(c->consumers.receipt.batch_size, 42);
    CHECK_EQ_INT(c->consumers.receipt.linger_ms, 2000);
    CHECK_EQ_INT(c->consumers.receipt.auto_offset_reset, CONFIG_OFFSET_LATEST);
    CHECK_EQ_INT(c->consumers.factoid.batch_size, 500);
    CHECK_EQ_INT(c->valkey.port, 6390);
    CHECK(c->valkey.tls);
    CHECK_EQ_INT(c->valkey.idempotency_ttl_seconds, 86400);
    CHECK_EQ_INT(c->schema_registry.allowed_schema_ids_count, 3);
    CHECK_EQ_INT(c->schema_registry.allowed_schema_ids[2], 9);
    config_free(c);
}

TEST(unknown_key_names_path_and_suggests) {
    CHECK_EQ_STR(load_err(BASE "kafka_x: 1\n"), "config: kafka_x: unknown key (did you mean kafka?) (test.yaml:10)");
    CHECK_EQ_STR(load_err("kafka:\n  brokerz: x\n"),
                 "config: kafka.brokerz: unknown key (did you mean kafka.brokers?) (test.yaml:2)");
    CHECK_EQ_STR(load_err(BASE "consumers:\n  receipt:\n    batchsize: 5\n"),
                 "config: consumers.receipt.batchsize: unknown key (did you mean consumers.receipt.batch_size?) (test.yaml:12)");
    CHECK_EQ_STR(load_err(BASE "consumers:\n  shipment: {}\n"), "config: consumers.shipment: unknown key (test.yaml:11)");
    CHECK_EQ_STR(load_err(BASE "zzzzzzzzzz: 1\n"), "config: zzzzzzzzzz: unknown key (test.yaml:10)");
}

TEST(wrong_type_names_path_and_value) {
    CHECK_EQ_STR(load_err(BASE "consumers:\n  receipt:\n    batch_size: abc\n"),
                 "config: consumers.receipt.batch_size: expected an integer between 1 and 10000, got \"abc\" (test.yaml:12)");
    CHECK_EQ_STR(load_err(BASE "consumers:\n  factoid:\n    batch_size: 0\n"),
                 "config: consumers.factoid.batch_size: expected an integer between 1 and 10000, got \"0\" (test.yaml:12)");
    CHECK_EQ_STR(load_err(BASE "log_only: yes\n"),
                 "config: log_only: expected a boolean (true or false), got \"yes\" (test.yaml:10)");
    CHECK_EQ_STR(load_err(BASE "log:\n  format: xml\n"),
                 "config: log.format: expected one of logfmt, json, got \"xml\" (test.yaml:11)");
    CHECK_EQ_STR(load_err(BASE "valkey: {port: 70000}\n"),
                 "config: valkey.port: expected an integer between 1 and 65535, got \"70000\" (test.yaml:10)");
    CHECK(strstr(load_err(BASE "valkey: {timeout_ms: 5 s}\n"),
                 "config: valkey.timeout_ms: expected a duration between 1 and 60000 milliseconds") != NULL);
    CHECK(strstr(load_err("flags: {file: f, poll_interval_seconds: 1500ms}\n"),
                 "config: flags.poll_interval_seconds: expected a duration between 1 and 3600 seconds") != NULL);
    CHECK_EQ_STR(load_err("log_only: false\nkafka: broker1\n"),
                 "config: kafka: expected a mapping (a section of keys), got a scalar (test.yaml:2)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: [a, b]\n"),
                 "config: kafka.brokers: expected a single value, got a list (test.yaml:2)");
    CHECK_EQ_STR(load_err(BASE "schema_registry:\n  allowed_schema_ids: [1, x]\n"),
                 "config: schema_registry.allowed_schema_ids[1]: expected an integer between 0 and 2147483647, got \"x\" (test.yaml:11)");
    CHECK_EQ_STR(load_err(BASE "schema_registry:\n  allowed_schema_ids: {a: 1}\n"),
                 "config: schema_registry.allowed_schema_ids: expected a list of integers, got a mapping (test.yaml:11)");
    CHECK(strstr(load_err("neo4j: {uri: http://n}\n"),
                 "config: neo4j.uri: expected a bolt://, neo4j://") != NULL);
    CHECK_EQ_STR(load_err(BASE "metrics: {listen: \"9464\"}\n"),
                 "config: metrics.listen: expected host:port with a port 0..65535 (IPv6 as [addr]:port), got \"9464\" (test.yaml:10)");
    CHECK_EQ_STR(load_err("- a\n- b\n"), "config: test.yaml: the top level must be a mapping of keys, got a list");
}

/* metrics.token goes into a header line as it is: a line end or a space must not get in, and
 * the refusal does not print it. */
TEST(metrics_token_is_a_bearer_token) {
    struct cgw_config *c = load(BASE "metrics: {listen: \"0.0.0.0:9464\", token: \"aB3-._~+/x==\"}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->metrics.token, "aB3-._~+/x==");
    config_free(c);
    static const char *const bad[] = {"\"a b\"", "\"a\\r\\nX-Evil: 1\"", "\"==a\"", "\"a=b\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[256];
        snprintf(yaml, sizeof yaml, BASE "metrics: {token: %s}\n", bad[i]);
        const char *e = load_err(yaml);
        CHECKF(strstr(e, "config: metrics.token: expected a bearer token") == e, "%s: %s", bad[i], e);
        CHECKF(strstr(e, "got \"<redacted>\"") != NULL && strstr(e, "Evil") == NULL, "%s", e);
    }
}

TEST(missing_required_names_path) {
    CHECK_EQ_STR(load_err("neo4j:\n  uri: bolt://n\n"), "config: kafka.brokers: required value is missing (or set kafka.msk_cluster_arn)");
    CHECK_EQ_STR(load_err("kafka: {brokers: b}\n"), "config: neo4j.uri: required value is missing");
    CHECK_EQ_STR(load_err("kafka: {brokers: b}\nneo4j: {uri: bolt://n}\nenrichment:\n  fido: {base_url: http://f}\n"),
                 "config: enrichment.retailer.base_url: required value is missing");
    CHECK_EQ_STR(load_err("kafka: {brokers: \"\"}\n"), "config: kafka.brokers: required value is missing (or set kafka.msk_cluster_arn)");
    CHECK_EQ_STR(load_err(""), "config: kafka.brokers: required value is missing (or set kafka.msk_cluster_arn)");
    /* required only in combination with another key */
    CHECK_EQ_STR(load_err("kafka: {brokers: b}\nneo4j: {uri: bolt://n}\n"
                          "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"),
                 "config: flags.file: required when flags.source is file");
    CHECK_EQ_STR(load_err(BASE "flags: {source: http}\n"), "config: flags: duplicate key (test.yaml:10)");
}

TEST(cross_key_requirements) {
    const char *tail = "kafka: {brokers: b}\nneo4j: {uri: bolt://n}\n"
                       "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%sflags: {source: http}\n", tail);
    CHECK_EQ_STR(load_err(buf), "config: flags.http_url: required when flags.source is http");
    snprintf(buf, sizeof buf, "%sflags: {source: valkey}\n", tail);
    struct cgw_config *c = load(buf);
    CHECKF(c != NULL, "%s", err);
    config_free(c);
    snprintf(buf, sizeof buf, "%sflags: {file: f}\nkafka2: 1\n", tail);
    CHECK(strstr(load_err(buf), "config: kafka2: unknown key") != NULL);
    CHECK_EQ_STR(load_err("kafka: {brokers: b, security_protocol: SASL_SSL}\nneo4j: {uri: bolt://n}\n"
                          "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"
                          "flags: {file: f}\n"),
                 "config: kafka.sasl_mechanism: required when kafka.security_protocol is sasl_*");
    CHECK_EQ_STR(load_err("kafka: {brokers: b, security_protocol: sasl_ssl, sasl_mechanism: PLAIN, sasl_username: u}\n"
                          "neo4j: {uri: bolt://n}\n"
                          "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"
                          "flags: {file: f}\n"),
                 "config: kafka.sasl_password: required with SASL mechanism PLAIN");
    c = load("kafka: {brokers: b, security_protocol: sasl_ssl, sasl_mechanism: OAUTHBEARER}\n"
             "aws: {region: eu-west-1}\n"
             "neo4j: {uri: bolt://n}\n"
             "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"
             "flags: {file: f}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_INT(c->kafka.security_protocol, CONFIG_SECURITY_SASL_SSL);
    CHECK_EQ_STR(config_choice_name("kafka.security_protocol", c->kafka.security_protocol), "sasl_ssl");
    config_free(c);
    CHECK_EQ_STR(load_err("kafka: {brokers: b, sasl_mechanism: GSSAPI}\n"),
                 "config: kafka.sasl_mechanism: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, got \"GSSAPI\" (test.yaml:1)");
}

/* consumers.<name>.writers: 1..4, and every writer of the enabled consumers needs a Bolt
 * connection of neo4j.pool_size. */
TEST(writers_and_the_pool_they_need) {
    const char *head = "kafka: {brokers: b}\n"
                       "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"
                       "flags: {file: f}\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%sneo4j: {uri: bolt://n}\n", head);
    struct cgw_config *c = load(buf);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_INT(c->consumers.receipt.writers, 1);
    config_free(c);
    snprintf(buf, sizeof buf, "%sneo4j: {uri: bolt://n, pool_size: 3}\n"
             "consumers: {receipt: {writers: 2}, factoid: {writers: 2}}\n", head);
    CHECK_EQ_STR(load_err(buf), "config: neo4j.pool_size: 3 is fewer connections than the "
                                "consumers' writers (4): raise it or lower consumers.<name>.writers");
    snprintf(buf, sizeof buf, "%sneo4j: {uri: bolt://n, pool_size: 3}\n"
             "consumers: {receipt: {writers: 2}, factoid: {writers: 2, enabled: false}}\n", head);
    c = load(buf);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_INT(c->consumers.receipt.writers, 2);
    config_free(c);
    snprintf(buf, sizeof buf, "%sneo4j: {uri: bolt://n}\nconsumers: {receipt: {writers: 5}}\n", head);
    CHECK(strstr(load_err(buf), "config: consumers.receipt.writers: expected an integer between 1 and 4") != NULL);
}

TEST(empty_values) {
    CHECK_EQ_STR(load_err(BASE "service_name: \"\"\n"), "config: service_name: must not be empty (test.yaml:10)");
    CHECK_EQ_STR(load_err(BASE "consumers: {receipt: {topic: \"\"}}\n"),
                 "config: consumers.receipt.topic: must not be empty (test.yaml:10)");
    /* "" is fine where the default is "" or where there is no default (then it means unset) */
    struct cgw_config *c = load(BASE "valkey: {key_prefix: \"\", password: \"\"}\nflags_x: 1\n");
    CHECK(c == NULL);
    CHECK_EQ_STR(err, "config: flags_x: unknown key (did you mean flags?) (test.yaml:11)");
    c = load(BASE "valkey: {key_prefix: \"\", password: \"\"}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->valkey.key_prefix, "");
    CHECK(c->valkey.password == NULL);
    config_free(c);
}

/* PEM files for the Valkey TLS keys, made with the openssl command in a scratch directory:
 * ca.crt, client.crt + client.key (a pair), other.key (not theirs), enc.key (encrypted). */
static const char *pem_dir(void) {
    static char dir[64];
    if (dir[0]) return dir;
    snprintf(dir, sizeof dir, "/tmp/cgw-config-test-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 2 -subj /CN=ca -keyout ca.key -out ca.crt && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-days 2 -subj /CN=client -keyout client.key -out client.crt && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out other.key && "
             "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -aes256 "
             "-pass pass:x -out enc.key; } >/dev/null 2>&1", dir);
    CHECKF(system(cmd) == 0, "openssl could not make the test files in %s", dir);
    return dir;
}

static void rm_pem_dir(void) {
    char cmd[128];
    if (!pem_dir()[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf %s", pem_dir());
    CHECK(system(cmd) == 0);
}

/* text with %D replaced by the PEM directory, into out. */
static const char *with_dir(const char *text, char *out, size_t len) {
    size_t o = 0;
    for (const char *p = text; *p && o + 64 < len; p++) {
        if (p[0] == '%' && p[1] == 'D') o += (size_t)snprintf(out + o, len - o, "%s", pem_dir()), p++;
        else out[o++] = *p;
    }
    out[o] = '\0';
    return out;
}

/* BASE + "valkey: {<fields>}", %D replaced by the PEM directory. */
static const char *valkey_yaml(const char *fields) {
    static char buf[2048];
    char f[1024];
    snprintf(buf, sizeof buf, BASE "valkey: {%s}\n", with_dir(fields, f, sizeof f));
    return buf;
}

TEST(valkey_tls_and_acl_keys) {
    struct cgw_config *c = load(valkey_yaml(
        "tls: true, username: cgw, password: pw, tls_ca_file: %D/ca.crt, tls_cert_file: %D/client.crt, "
        "tls_key_file: %D/client.key, tls_server_name: cache.example"));
    CHECKF(c != NULL, "%s", err);
    CHECK(c->valkey.tls);
    CHECK_EQ_STR(c->valkey.username, "cgw");
    CHECK(strstr(c->valkey.tls_ca_file, "/ca.crt") && strstr(c->valkey.tls_key_file, "/client.key"));
    CHECK_EQ_STR(c->valkey.tls_server_name, "cache.example");
    config_free(c);
    c = load(valkey_yaml("tls: true"));                 /* the system's CAs, the host's name */
    CHECKF(c != NULL && !c->valkey.tls_ca_file && !c->valkey.tls_server_name, "%s", err);
    config_free(c);
}

TEST(valkey_tls_and_acl_errors_name_the_key) {
    static const char *const cases[][2] = {
        {"username: cgw", "valkey.password: required when valkey.username is set"},
        {"tls_ca_file: %D/ca.crt", "valkey.tls_ca_file: set, but valkey.tls is false (no TLS would be used)"},
        {"tls_server_name: x", "valkey.tls_server_name: set, but valkey.tls is false (no TLS would be used)"},
        {"tls: true, tls_cert_file: %D/client.crt", "valkey.tls_key_file: required when valkey.tls_cert_file is set"},
        {"tls: true, tls_key_file: %D/client.key", "valkey.tls_cert_file: required when valkey.tls_key_file is set"},
        {"tls: true, tls_ca_file: /nonexistent/ca.crt",
         "valkey.tls_ca_file: cannot read /nonexistent/ca.crt: No such file or directory"},
        {"tls: true, tls_ca_file: %D", "valkey.tls_ca_file: cannot read %D: not a regular file"},
        {"tls: true, tls_ca_file: %D/client.key", "valkey.tls_ca_file: %D/client.key holds no PEM certificate"},
        {"tls: true, tls_cert_file: %D/client.crt, tls_key_file: %D/enc.key",
         "valkey.tls_key_file: %D/enc.key holds no unencrypted PEM private key"},
        {"tls: true, tls_cert_file: %D/client.crt, tls_key_file: %D/other.key",
         "valkey.tls_key_file: the key in %D/other.key does not belong to the certificate in %D/client.crt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[512], text[512];
        snprintf(want, sizeof want, "config: %s", with_dir(cases[i][1], text, sizeof text));
        CHECK_EQ_STR(load_err(valkey_yaml(cases[i][0])), want);
    }
    rm_pem_dir();
}

TEST(duplicate_keys_are_errors) {
    CHECK_EQ_STR(load_err(BASE "log_only: true\nlog_only: false\n"), "config: log_only: duplicate key (test.yaml:11)");
    CHECK_EQ_STR(load_err("kafka: {brokers: a}\nkafka: {brokers: b}\n"), "config: kafka: duplicate key (test.yaml:2)");
}

TEST(env_substitution) {
    setenv("CGW_T_PW", "s3cr$t", 1);
    setenv("CGW_T_EMPTY", "", 1);
    unsetenv("CGW_T_UNSET");
    struct cgw_config *c = load("kafka:\n  brokers: k1:9092\n"
             "neo4j:\n  uri: bolt://n:7687\n  password: ${CGW_T_PW}\n  user: ${CGW_T_UNSET:-admin}\n"
             "  database: pre-${CGW_T_PW}-post\n"
             "enrichment:\n  fido: {base_url: http://f}\n  retailer: {base_url: http://r}\n"
             "flags:\n  file: var/flags.json\n"
             "valkey:\n  password: ${CGW_T_EMPTY:-fallback}\n  host: $${literal}\n  key_prefix: a$b\n"
             "  port: ${CGW_T_UNSET:-6391}\n"
             "schema_registry: {allowed_schema_ids: \"${CGW_T_UNSET:-3, 4}\", password: \"${CGW_T_UNSET:-}\"}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->neo4j.password, "s3cr$t");
    CHECK_EQ_STR(c->neo4j.user, "admin");
    CHECK_EQ_STR(c->neo4j.database, "pre-s3cr$t-post");
    CHECK_EQ_STR(c->valkey.password, "fallback");
    CHECK_EQ_STR(c->valkey.host, "${literal}");
    CHECK_EQ_STR(c->valkey.key_prefix, "a$b");
    CHECK_EQ_INT(c->valkey.port, 6391);
    CHECK_EQ_INT(c->schema_registry.allowed_schema_ids_count, 2);
    CHECK_EQ_INT(c->schema_registry.allowed_schema_ids[1], 4);
    CHECK(c->schema_registry.password == NULL);   /* empty means unset */
    config_free(c);

    CHECK_EQ_STR(load_err("kafka:\n  brokers: ${CGW_T_UNSET}\n"),
                 "config: kafka.brokers: environment variable CGW_T_UNSET is not set and has no default (test.yaml:2)");
    CHECK_EQ_STR(load_err("kafka:\n  properties:\n    ssl.key.password: ${CGW_T_UNSET}\n"),
                 "config: kafka.properties.ssl.key.password: environment variable CGW_T_UNSET is not set and has no default (test.yaml:3)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: ${CGW_T_PW\n"), "config: kafka.brokers: unterminated ${ in value (test.yaml:2)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: ${1X}\n"),
                 "config: kafka.brokers: bad environment reference \"${1X}\" (expected ${NAME} or ${NAME:-default}) (test.yaml:2)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: ${A:b}\n"),
                 "config: kafka.brokers: bad environment reference \"${A:b}\" (expected ${NAME} or ${NAME:-default}) (test.yaml:2)");
    /* a substituted value is still validated against the key's type */
    setenv("CGW_T_PORT", "http", 1);
    CHECK_EQ_STR(load_err("valkey:\n  port: ${CGW_T_PORT}\n"),
                 "config: valkey.port: expected an integer between 1 and 65535, got \"http\" (test.yaml:2)");
}

TEST(kafka_properties_map) {
    struct cgw_config *c = load("kafka:\n  brokers: b\n  properties:\n    fetch.max.bytes: 1048576\n    ssl.key.password: hunter2\n"
             "neo4j: {uri: bolt://n}\n"
             "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\nflags: {file: f}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_INT(c->kafka.properties_count, 2);
    CHECK_EQ_STR(c->kafka.properties[0].key, "fetch.max.bytes");
    CHECK_EQ_STR(c->kafka.properties[0].value, "1048576");
    CHECK_EQ_STR(c->kafka.properties[1].value, "hunter2");
    config_free(c);
    CHECK_EQ_STR(load_err("kafka:\n  properties:\n    a: [1]\n"),
                 "config: kafka.properties.a: expected a scalar value, got a list (test.yaml:3)");
    CHECK_EQ_STR(load_err("kafka:\n  properties: 5\n"),
                 "config: kafka.properties: expected a mapping of names to values, got a scalar (test.yaml:2)");
}

TEST(deprecated_dry_run_is_accepted_and_reported) {
    struct cgw_config *c = load(BASE "dry_run: true\n");
    CHECKF(c != NULL, "%s", err);
    CHECK(c->dry_run);
    CHECK_EQ_INT(c->deprecated_count, 1);
    CHECK_EQ_STR(c->deprecated[0], "dry_run");
    config_free(c);
}

TEST(null_value_keeps_default) {
    struct cgw_config *c = load(BASE "service_name:\nlog: ~\nvalkey:\n  port:\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->service_name, "consumer-graph-worker");
    CHECK_EQ_INT(c->valkey.port, 6379);
    config_free(c);
}

TEST(yaml_syntax_error_and_multiple_documents) {
    CHECK(strstr(load_err("kafka: {brokers: [\n"), "config: test.yaml:") == load_err("kafka: {brokers: [\n"));
    CHECK(strstr(load_err("kafka: {brokers: [\n"), "YAML syntax error") != NULL);
    CHECK_EQ_STR(load_err(BASE "---\nlog_only: true\n"), "config: test.yaml: holds more than one YAML document");
}

TEST(shipped_local_yaml_loads) {
    struct cgw_config *c = NULL;
    unsetenv("NEO4J_PASSWORD");
    int rc = config_load("config/local.yaml", &c, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    CHECKF(pipeline_check_config(c, err, sizeof err) == 0, "%s", err);
    CHECK_EQ_STR(c->kafka.brokers, "127.0.0.1:9092");
    CHECK_EQ_STR(c->neo4j.uri, "bolt://127.0.0.1:7687");
    CHECK_EQ_STR(c->neo4j.user, "neo4j");
    CHECK_EQ_STR(c->neo4j.password, "cgw-local-password");
    CHECK_EQ_INT(c->valkey.port, 6390);
    CHECK_EQ_STR(c->enrichment.fido.base_url, "http://127.0.0.1:18081");
    CHECK_EQ_STR(c->enrichment.retailer.base_url, "http://127.0.0.1:18082");
    CHECK_EQ_STR(c->flags.file, "var/flags.json");
    CHECK_EQ_STR(c->metrics.listen, "127.0.0.1:9464");
    config_free(c);
}

TEST(shipped_production_example_loads_with_env) {
    static const char *vars[][2] = {
        { "KAFKA_BROKERS", "b-1.cg.abc123.c2.kafka.eu-west-1.amazonaws.com:9098" },
        { "NEO4J_HOST", "graph.example" },
        { "NEO4J_PASSWORD", "neo-secret-2" }, { "VALKEY_HOST", "cache.example" },
        { "FIDO_BASE_URL", "http://fido.example" }, { "RETAILER_BASE_URL", "http://retailer.example" },
        { "FLIPPER_API_URL", "https://flipper.example/api" }, { "FLIPPER_TOKEN", "flip-secret-3" },
        { "SCHEMA_REGISTRY_URL", "https://sr.example" }, { "SCHEMA_REGISTRY_USERNAME", "bot" },
        { "SCHEMA_REGISTRY_TOKEN", "sr-secret-4" },
    };
    struct cgw_config *c = NULL;
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) setenv(vars[i][0], vars[i][1], 1);
    unsetenv("VALKEY_PASSWORD");
    unsetenv("VALKEY_USERNAME");
    unsetenv("VALKEY_TLS_CA_FILE");
    unsetenv("VALKEY_TLS_SERVER_NAME");
    unsetenv("NEO4J_USER");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    unsetenv("SCHEMA_REGISTRY_URL");
    /* a missing secret names its key */
    CHECK(config_load("config/production.example.yaml", &c, err, sizeof err) == -1);
    CHECK(strstr(err, "config: schema_registry.url: environment variable SCHEMA_REGISTRY_URL is not set") == err);
    setenv("SCHEMA_REGISTRY_URL", "https://sr.example", 1);
    int rc = config_load("config/production.example.yaml", &c, err, sizeof err);
    CHECKF(rc == 0, "%s", err);
    CHECK_EQ_STR(c->neo4j.uri, "neo4j+s://graph.example:7687");
    CHECKF(pipeline_check_config(c, err, sizeof err) == 0, "%s", err);   /* what run checks too */
    CHECK_EQ_STR(c->kafka.sasl_mechanism, "OAUTHBEARER");   /* MSK IAM: no SASL password */
    /* MSK IAM: the region comes from the broker names */
    CHECK(c->kafka.sasl_password == NULL);
    CHECK_EQ_STR(c->aws.region, "eu-west-1");
    CHECK(c->valkey.password == NULL);
    CHECK(c->valkey.tls && !c->valkey.username && !c->valkey.tls_ca_file && !c->valkey.tls_server_name);
    CHECK_EQ_INT(c->log.format, LOG_FORMAT_JSON);
    CHECK_EQ_INT(c->kafka.security_protocol, CONFIG_SECURITY_SASL_SSL);
    CHECK_EQ_INT(c->neo4j.max_retry_time_ms, 30000);
    CHECK_EQ_INT(c->enrichment.cache.ttl_seconds, 3600);

    /* the dump never shows a secret */
    char *dump = NULL;
    size_t dlen = 0;
    FILE *m = open_memstream(&dump, &dlen);
    config_redacted_dump(c, m);
    fclose(m);
    CHECK(strstr(dump, "neo-secret-2") == NULL);
    CHECK(strstr(dump, "flip-secret-3") == NULL);
    CHECK(strstr(dump, "sr-secret-4") == NULL);
    CHECK(strstr(dump, "neo4j.password: \"<redacted>\"\n") != NULL);
    CHECK(strstr(dump, "aws.region: \"eu-west-1\"\n") != NULL);
    CHECK(strstr(dump, "neo4j.uri: \"neo4j+s://graph.example:7687\"\n") != NULL);
    CHECK(strstr(dump, "valkey.password: ~\n") != NULL);
    CHECK(strstr(dump, "consumers.receipt.batch_size: 500\n") != NULL);
    CHECK(strstr(dump, "kafka.properties.fetch.max.bytes: \"52428800\"\n") != NULL);
    CHECK(strstr(dump, "log.format: json\n") != NULL);
    free(dump);
    config_free(c);
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i][0]);
}

TEST(dump_redacts_secret_looking_properties) {
    struct cgw_config *c = load("kafka:\n  brokers: b\n  properties:\n    ssl.key.password: hunter2\n"
                                "    sasl.oauthbearer.client.secret: s2\n    linger.ms: \"5\"\n"
                                "neo4j: {uri: bolt://n, password: pw3}\n"
                                "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"
                                "flags: {file: f}\n");
    CHECKF(c != NULL, "%s", err);
    char *dump = NULL;
    size_t dlen = 0;
    FILE *m = open_memstream(&dump, &dlen);
    config_redacted_dump(c, m);
    fclose(m);
    CHECK(strstr(dump, "hunter2") == NULL);
    CHECK(strstr(dump, "s2\"") == NULL);
    CHECK(strstr(dump, "pw3") == NULL);
    CHECK(strstr(dump, "kafka.properties.linger.ms: \"5\"\n") != NULL);
    CHECK(strstr(dump, "neo4j.password: \"<redacted>\"\n") != NULL);
    free(dump);
    config_free(c);
}

TEST(reference_lists_every_key_once) {
    char *ref = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&ref, &len);
    config_write_reference(m);
    fclose(m);
    CHECK(strncmp(ref, "| key | type | default | description |\n|---|---|---|---|\n", 52) == 0);
    CHECK(strstr(ref, "| `consumers.receipt.batch_size` | integer, 1..10000 | `500` | ") != NULL);
    CHECK(strstr(ref, "| `kafka.brokers` | list of host:port | (unset) | ") != NULL);
    CHECK(strstr(ref, "| `aws.role_session_name` | string | `consumer-graph-worker` | ") != NULL);
    CHECK(strstr(ref, "| `log.format` | `logfmt` \\| `json` | `logfmt` | ") != NULL);
    CHECK(strstr(ref, "| `neo4j.password` | string, secret | (unset) | ") != NULL);
    CHECK(strstr(ref, "| `flags.actor_prefix` | string | `User;` | ") != NULL);
    CHECK(strstr(ref, "| `dry_run` | boolean | `false` | Deprecated") != NULL);
    /* every line is a table row with 4 cells */
    int rows = 0;
    for (char *save = NULL, *line = strtok_r(ref, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int cells = 0;
        for (char *p = line; *p; p++)
            if (*p == '|' && (p == line || p[-1] != '\\')) cells++;
        CHECKF(cells == 5, "bad row: %s", line);
        rows++;
    }
    CHECK(rows > 60);
    free(ref);
    CHECK(config_key_doc("neo4j.uri") != NULL);
    CHECK(config_key_doc("neo4j") == NULL);
    CHECK(config_choice_name("log.level", 2) != NULL);
    CHECK_EQ_STR(config_choice_name("log.level", 2), "warn");
    CHECK(config_choice_name("log.level", 9) == NULL);
    CHECK(config_choice_name("neo4j.uri", 0) == NULL);
}

/* Issue 10: "${A:-${B}}" resolved to "${B}" followed by a stray "}". */
TEST(nested_env_defaults_resolve_like_the_shell) {
    setenv("CGW_T_B", "from-b", 1);
    setenv("CGW_T_EMPTY", "", 1);
    unsetenv("CGW_T_UNSET");
    unsetenv("CGW_T_UNSET2");
    struct cgw_config *c = load("kafka: {brokers: k1:9092}\n"
             "neo4j:\n  uri: bolt://n:7687\n  user: ${CGW_T_UNSET:-${CGW_T_B}}\n"
             "  database: ${CGW_T_EMPTY:-${CGW_T_UNSET2:-deep}}\n"
             "  password: \"${CGW_T_UNSET:-pre-${CGW_T_B}-post}\"\n"
             "valkey:\n  host: ${CGW_T_B:-${CGW_T_UNSET}}\n  key_prefix: \"${CGW_T_UNSET:-$${x}}\"\n"
             "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\nflags: {file: f}\n");
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->neo4j.user, "from-b");
    CHECK_EQ_STR(c->neo4j.database, "deep");
    CHECK_EQ_STR(c->neo4j.password, "pre-from-b-post");
    CHECK_EQ_STR(c->valkey.host, "from-b");          /* the unused default is not looked at */
    CHECK_EQ_STR(c->valkey.key_prefix, "${x}");
    config_free(c);
    CHECK_EQ_STR(load_err("kafka:\n  brokers: ${CGW_T_UNSET:-${CGW_T_UNSET2}}\n"),
                 "config: kafka.brokers: environment variable CGW_T_UNSET2 is not set and has no default (test.yaml:2)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: ${CGW_T_UNSET:-${CGW_T_B}\n"),
                 "config: kafka.brokers: unterminated ${ in value (test.yaml:2)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: \"${U:-${U:-${U:-${U:-${U:-${U:-${U:-${U:-${U:-x}}}}}}}}}\"\n"),
                 "config: kafka.brokers: environment references nested deeper than 8 levels (test.yaml:2)");
}

/* Issue 10: CR/LF in a token or a base URL was accepted by check-config. */
TEST(control_characters_are_refused_in_every_string) {
    CHECK_EQ_STR(load_err("flags: {source: http, http_url: \"http://fl\", http_token: \"abc\\r\\nX-Evil: 1\"}\n"),
                 "config: flags.http_token: must not contain control characters (found CR) (test.yaml:1)");
    CHECK_EQ_STR(load_err("enrichment: {fido: {base_url: \"http://f/\\nx\"}}\n"),
                 "config: enrichment.fido.base_url: the URL must not contain control characters (found LF), got \"http://f/\\x0ax\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("schema_registry: {username: \"u\\tv\"}\n"),
                 "config: schema_registry.username: must not contain control characters (found TAB) (test.yaml:1)");
    CHECK_EQ_STR(load_err("kafka:\n  properties: {sasl.oauthbearer.config: \"a\\nb\"}\n"),
                 "config: kafka.properties.sasl.oauthbearer.config: must not contain control characters (found LF) (test.yaml:2)");
    /* a PEM document in a *.pem property keeps its line breaks */
    struct cgw_config *c = load("kafka:\n  brokers: b:1\n  properties: {ssl.ca.pem: \"-----BEGIN-----\\nAAA\\n-----END-----\\n\"}\n"
             "neo4j: {uri: bolt://n}\nenrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n"
             "flags: {file: f}\n");
    CHECKF(c != NULL, "%s", err);
    config_free(c);
}

/* Issue 10: port 99999 and userinfo where the subsystem refuses it. */
TEST(urls_ports_and_userinfo) {
    CHECK_EQ_STR(load_err("enrichment: {fido: {base_url: \"http://f:99999\"}}\n"),
                 "config: enrichment.fido.base_url: the URL has a port outside 1..65535, got \"http://f:99999\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("schema_registry: {url: \"https://bob:hunter2@reg\"}\n"),
                 "config: schema_registry.url: the URL must not hold credentials (user:password@); use the credential keys, got \"https://<redacted>@reg\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("schema_registry: {url: \"https://reg/x?y=1\"}\n"),
                 "config: schema_registry.url: the URL must not have a query (?...), got \"https://reg/x?y=1\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("neo4j: {uri: \"bolt://neo4j:hunter2@n:7687\"}\n"),
                 "config: neo4j.uri: must not hold credentials (user:password@); use neo4j.user and neo4j.password, got \"bolt://<redacted>@n:7687\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("kafka: {brokers: \"k1:9092,k2:99999\"}\n"),
                 "config: kafka.brokers: expected host:port[,host:port...] with ports 1..65535, got \"k1:9092,k2:99999\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("kafka: {brokers: \"u:hunter2@k1:9092\"}\n"),
                 "config: kafka.brokers: brokers must not hold credentials (use kafka.sasl_username and kafka.sasl_password), got \"<redacted>\" (test.yaml:1)");
    CHECK_EQ_STR(load_err("flags: {http_token_header: \"X-A: b\"}\n"),
                 "config: flags.http_token_header: expected an HTTP header name (visible characters, no ':'), got \"X-A: b\" (test.yaml:1)");
    /* the service URLs may carry Basic-auth credentials; the dump never shows them */
    struct cgw_config *c = load("kafka: {brokers: \"SSL://k1:9093, k2\"}\nneo4j: {uri: bolt://n}\n"
                                "enrichment: {fido: {base_url: \"http://svc:hunter2@f:8080\"}, retailer: {base_url: \"https://tok3n@r\"}}\n"
                                "flags: {source: http, http_url: \"https://fl:pw4@flipper/api?x=1\"}\n");
    CHECKF(c != NULL, "%s", err);
    char *dump = NULL;
    size_t dlen = 0;
    FILE *m = open_memstream(&dump, &dlen);
    config_redacted_dump(c, m);
    fclose(m);
    CHECKF(!strstr(dump, "hunter2") && !strstr(dump, "tok3n") && !strstr(dump, "pw4"), "%s", dump);
    CHECK(strstr(dump, "enrichment.fido.base_url: \"http://<redacted>@f:8080\"\n") != NULL);
    CHECK(strstr(dump, "enrichment.retailer.base_url: \"https://<redacted>@r\"\n") != NULL);
    CHECK(strstr(dump, "flags.http_url: \"https://<redacted>@flipper/api?x=1\"\n") != NULL);
    free(dump);
    config_free(c);
}

/* What only the subsystems know, checked offline by the function both commands call. */
static const char *check_err(const char *extra) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "kafka: {brokers: \"k1:9092\", %s}\nneo4j: {uri: \"%s\"}\n"
             "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\nflags: {file: f}\n",
             strncmp(extra, "neo4j=", 6) == 0 ? "" : extra,
             strncmp(extra, "neo4j=", 6) == 0 ? extra + 6 : "bolt://n:7687");
    struct cgw_config *c = load(buf);
    if (!c) return err;
    int rc = pipeline_check_config(c, err, sizeof err);
    config_free(c);
    return rc == 0 ? "(accepted)" : err;
}

TEST(subsystem_checks_without_connecting) {
    CHECK_EQ_STR(check_err("properties: {fetch.max.bytes: \"1048576\", ssl.key.password: x}"), "(accepted)");
    CHECK_EQ_STR(check_err("properties: {no.such.property: \"1\"}"),
                 "config: kafka.properties.no.such.property: not a librdkafka 2.8.0 property");
    CHECK_EQ_STR(check_err("properties: {partition.assignment.strategy: range}"),
                 "config: kafka.properties.partition.assignment.strategy: is set by the worker itself and cannot be overridden here");
    CHECK_EQ_STR(check_err("properties: {enable.auto.commit: \"true\"}"),
                 "config: kafka.properties.enable.auto.commit: is set by the worker itself and cannot be overridden here");
    CHECK(strstr(check_err("properties: {fetch.max.bytes: lots}"),
                 "config: kafka.properties.fetch.max.bytes: ") == err);
    CHECK_EQ_STR(check_err("properties: {ssl.keystore.password: \"\"}"), "(accepted)");
    CHECK_EQ_STR(check_err("properties: {group.instance.id: x}"),
                 "config: kafka.properties.group.instance.id: is set by the worker itself and cannot be overridden here");
    CHECK_EQ_STR(check_err("group_instance_id: \"cgw-a.1_b\""), "(accepted)");
    CHECK_EQ_STR(check_err("group_instance_id: \"\""), "(accepted)");
    CHECK_EQ_STR(check_err("group_instance_id: \"task 1\""),
                 "config: kafka.group_instance_id: only letters, digits, '.', '_' and '-' are allowed (Kafka's group.instance.id)");
    CHECK_EQ_STR(check_err("neo4j=bolt://n:99999"), "config: neo4j.uri: bad address: invalid port");
    CHECK_EQ_STR(check_err("neo4j=neo4j://n:7687/db"), "config: neo4j.uri: bad URI: unexpected path");
}

TEST(missing_file) {
    struct cgw_config *c = (struct cgw_config *)1;
    CHECK_EQ_INT(config_load("/nonexistent/cgw.yaml", &c, err, sizeof err), -1);
    CHECK(c == NULL);
    CHECK(strstr(err, "config: cannot open /nonexistent/cgw.yaml: ") == err);
}

/* The deadlines of issue 10: defaults, the derived Bolt I/O timeout, and the bounds. */
TEST(deadline_keys_defaults_and_the_derived_bolt_timeout) {
    struct cgw_config *c = load(BASE);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_INT(c->stall_after_ms, 3000);
    CHECK_EQ_INT(c->shutdown_timeout_ms, 20000);
    CHECK_EQ_INT(c->neo4j.io_timeout_ms, 0);
    CHECK_EQ_INT(config_neo4j_io_timeout_ms(c), 30000);   /* max_retry_time_ms */
    config_free(c);
    struct { const char *yaml; int want; } cases[] = {
        {"kafka:\n  brokers: k1:9092\nneo4j:\n  uri: bolt://n:7687\n  max_retry_time_ms: 2m\n", 120000},
        {"kafka:\n  brokers: k1:9092\nneo4j:\n  uri: bolt://n:7687\n  max_retry_time_ms: 5s\n", 30000},
        {"kafka:\n  brokers: k1:9092\nneo4j:\n  uri: bolt://n:7687\n  io_timeout_ms: 2s\n", 2000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%senrichment:\n  fido: {base_url: http://f}\n"
                 "  retailer: {base_url: http://r}\nflags:\n  file: var/flags.json\n", cases[i].yaml);
        c = load(yaml);
        CHECKF(c != NULL, "%s", err);
        CHECK_EQ_INT(config_neo4j_io_timeout_ms(c), cases[i].want);
        config_free(c);
    }
    CHECK(strstr(load_err(BASE "shutdown_timeout_ms: 500\n"), "shutdown_timeout_ms") != NULL);
    CHECK(strstr(load_err(BASE "stall_after_ms: 0\n"), "stall_after_ms") != NULL);
}

/* ---- MSK IAM and the MSK API (aws.*, kafka.msk_cluster_arn) --------------------------------- */

#define TAIL "neo4j: {uri: bolt://n}\n" \
             "enrichment: {fido: {base_url: http://f}, retailer: {base_url: http://r}}\n" \
             "flags: {file: f}\n"
#define ARN "arn:aws:kafka:eu-central-1:123456789012:cluster/receipts/0b1f6e2c-3d4e-5"
#define IAM "security_protocol: sasl_ssl, sasl_mechanism: OAUTHBEARER"

TEST(msk_cluster_arn_replaces_brokers_and_gives_the_region) {
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    struct cgw_config *c = load("kafka: {msk_cluster_arn: \"" ARN "\", " IAM "}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK(c->kafka.brokers == NULL);
    CHECK_EQ_STR(c->aws.region, "eu-central-1");
    CHECK_EQ_STR(c->aws.role_session_name, "consumer-graph-worker");
    config_free(c);
    CHECK_EQ_STR(load_err("kafka: {brokers: b, msk_cluster_arn: \"" ARN "\"}\n" TAIL),
                 "config: kafka.msk_cluster_arn: set either kafka.brokers or kafka.msk_cluster_arn, not both");
    CHECK(strstr(load_err("kafka: {msk_cluster_arn: \"arn:aws:kafka:eu-central-1:123:cluster/x/y\"}\n" TAIL),
                 "config: kafka.msk_cluster_arn: expected arn:aws:kafka:<region>:<account>:cluster/<name>/<id>") != NULL);
    CHECK(strstr(load_err("kafka: {msk_cluster_arn: \"arn:aws:s3:eu-central-1:123456789012:cluster/x/y\"}\n" TAIL),
                 "config: kafka.msk_cluster_arn: expected") != NULL);
}

TEST(region_from_config_broker_names_or_environment) {
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    struct cgw_config *c = load("kafka: {brokers: \"b-1.receipts.ab12cd.c3.kafka.ap-southeast-2.amazonaws.com:9098,"
                                "b-2.receipts.ab12cd.c3.kafka.ap-southeast-2.amazonaws.com:9098\", " IAM "}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->aws.region, "ap-southeast-2");
    config_free(c);
    c = load("kafka: {brokers: \"b-1.x.y.kafka.ap-southeast-2.amazonaws.com:9098\", " IAM "}\naws: {region: us-gov-west-1}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->aws.region, "us-gov-west-1");
    config_free(c);
    CHECK_EQ_STR(load_err("kafka: {brokers: \"localhost:9093\", " IAM "}\n" TAIL),
                 "config: aws.region: required with kafka.sasl_mechanism OAUTHBEARER (MSK IAM) and not derivable "
                 "(no region in kafka.msk_cluster_arn or the broker host names, AWS_REGION unset)");
    setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
    c = load("kafka: {brokers: \"localhost:9093\", " IAM "}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->aws.region, "sa-east-1");
    config_free(c);
    setenv("AWS_REGION", "eu-west-3", 1);
    c = load("kafka: {brokers: \"localhost:9093\", " IAM "}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->aws.region, "eu-west-3");
    config_free(c);
    setenv("AWS_REGION", "not a region", 1);
    CHECK(strstr(load_err("kafka: {brokers: \"localhost:9093\", " IAM "}\n" TAIL),
                 "config: aws.region: AWS_REGION / AWS_DEFAULT_REGION is not an AWS region") != NULL);
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    CHECK_EQ_STR(load_err("kafka: {brokers: b, " IAM "}\naws: {region: Europe}\n" TAIL),
                 "config: aws.region: expected an AWS region such as eu-west-1, got \"Europe\"");
    /* without MSK IAM or the MSK API, no region is needed */
    c = load("kafka: {brokers: localhost:9092}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK(c->aws.region == NULL);
    config_free(c);
}

TEST(msk_iam_token_properties_are_the_workers) {
    CHECK_EQ_STR(check_err("properties: {sasl.oauthbearer.method: oidc}"),
                 "config: kafka.properties.sasl.oauthbearer.method: is set by the worker itself and cannot be overridden here");
    CHECK(strstr(check_err("properties: {enable.sasl.oauthbearer.unsecure.jwt: \"true\"}"),
                 "is set by the worker itself") != NULL);
}

TEST(msk_iam_needs_tls_and_https_endpoints) {
    CHECK_EQ_STR(load_err("kafka: {brokers: b, security_protocol: sasl_plaintext, sasl_mechanism: OAUTHBEARER}\n"
                          "aws: {region: eu-west-1}\n" TAIL),
                 "config: kafka.security_protocol: must be sasl_ssl with OAUTHBEARER (MSK IAM tokens are only sent over TLS)");
    CHECK_EQ_STR(load_err("kafka: {brokers: b, " IAM "}\naws: {region: eu-west-1, sts_endpoint: \"http://sts.example.com\"}\n" TAIL),
                 "config: aws.sts_endpoint: http:// is allowed only to a loopback address (tests); use https");
    CHECK_EQ_STR(load_err("kafka: {msk_cluster_arn: \"" ARN "\"}\naws: {msk_endpoint: \"http://10.0.0.1:80\"}\n" TAIL),
                 "config: aws.msk_endpoint: http:// is allowed only to a loopback address (tests); use https");
    struct cgw_config *c = load("kafka: {msk_cluster_arn: \"" ARN "\", " IAM "}\n"
                                "aws: {msk_endpoint: \"http://127.0.0.1:4566\", sts_endpoint: \"https://sts.vpce.example\","
                                " role_arn: \"arn:aws:iam::123456789012:role/r\"}\n" TAIL);
    CHECKF(c != NULL, "%s", err);
    CHECK_EQ_STR(c->aws.msk_endpoint, "http://127.0.0.1:4566");
    CHECK_EQ_STR(c->aws.role_arn, "arn:aws:iam::123456789012:role/r");
    config_free(c);
}

/* Found by tests/fuzz/config_load (regress_control_key): a key is echoed in the message, and a
 * control character in it made the message two lines. */
TEST(control_character_in_a_key_is_escaped_in_the_message) {
    CHECK_EQ_STR(load_err("kafka:\n  brokers: k1:9092\n  \"bad\\nkey\": 1\n"),
                 "config: kafka.bad\\x0akey: unknown key (test.yaml:3)");
    CHECK_EQ_STR(load_err("kafka:\n  brokers: k1:9092\n  properties:\n    \"a\\x1bb\": 1\n"),
                 "config: kafka.properties.a\\x1bb: must not contain control characters (found a control byte) (test.yaml:4)");
}

/* Found by tests/fuzz/config_load (regress_secret_reference): a malformed reference in a
 * secret's value was quoted in the message, and with it part of the secret. */
TEST(bad_reference_in_a_secret_is_not_shown) {
    const char *e = load_err("neo4j:\n  password: \"pw${not a name}pw\"\n");
    CHECK_EQ_STR(e, "config: neo4j.password: bad environment reference (expected ${NAME} or ${NAME:-default}) (test.yaml:2)");
    e = load_err("kafka:\n  properties:\n    sasl.oauthbearer.config: \"x${a b}\"\n");
    CHECK(strstr(e, "a b") == NULL && strstr(e, "bad environment reference (expected") != NULL);
    /* not a secret: the reference is shown, escaped */
    CHECK_EQ_STR(load_err("kafka:\n  brokers: \"${a\\tb}\"\n"),
                 "config: kafka.brokers: bad environment reference \"${a\\x09b}\" (expected ${NAME} or ${NAME:-default}) (test.yaml:2)");
}
