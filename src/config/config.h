/* config.h: the worker's configuration, loaded from ONE YAML file into a typed struct.
 *
 * Every key is described once, in the table in config.c (path, type, default, required,
 * range, secret, one-line doc). Loading, validation, the redacted dump and the Markdown
 * reference (config_write_reference, from which the README section is generated) all read
 * that table, so they cannot disagree.
 *
 * Scalar values may hold ${NAME} or ${NAME:-default}, replaced by the environment variable
 * (meant for secrets); a default may nest further references (${A:-${B:-x}}), expanded only
 * when used, as the shell does; "$${" writes a literal "${". An unset variable without a
 * default is an error naming the key. Any problem fails the load with one message of the form
 *
 *     config: consumers.receipt.batch_size: expected an integer between 1 and 10000, got "abc" (local.yaml:12)
 *
 * What the loader checks is what the table can say about one value or a few keys together:
 * type, range, choices, required, formats (URLs through src/http's checker: scheme, host, port
 * 1..65535, userinfo only where a key allows it), no control character in any string (CR/LF
 * would split a header or a log line; PEM properties may hold line breaks). What only a
 * subsystem knows (Bolt URI details, librdkafka property names, the worker's own Kafka
 * properties, each client's option checks) is checked by pipeline_check_config(), which
 * `cgw check-config` and `cgw run` both call right after config_load(): one path, no
 * connection made. Messages never echo a secret or a URL's userinfo.
 *
 * Ownership: config_load() allocates the struct and every string and array in it;
 * config_free() releases all of it. The struct is read-only after loading, so threads may
 * share it without locks.
 */
#ifndef CGW_CONFIG_H
#define CGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "log/log.h"

enum config_security_protocol {
    CONFIG_SECURITY_PLAINTEXT = 0,
    CONFIG_SECURITY_SSL,
    CONFIG_SECURITY_SASL_PLAINTEXT,
    CONFIG_SECURITY_SASL_SSL,
};

enum config_offset_reset { CONFIG_OFFSET_EARLIEST = 0, CONFIG_OFFSET_LATEST };

enum config_flags_source { CONFIG_FLAGS_FILE = 0, CONFIG_FLAGS_HTTP, CONFIG_FLAGS_VALKEY };

struct config_kv {
    char *key;
    char *value;
};

struct config_consumer {
    bool enabled;
    char *topic;
    char *group;
    enum config_offset_reset auto_offset_reset;
    int batch_size;
    int linger_ms;
    int batch_max_bytes;
    int writers;
    char *dlq_topic;            /* NULL: no dead-letter topic */
};

struct config_service {
    char *base_url;
    int timeout_ms;
    int retries;
};

/* Strings are NULL when unset and without a default (an empty value, as "${VAR:-}" gives,
 * counts as unset for such keys); never NULL when the table gives a default or marks the key
 * required. Durations are stored in the unit their name ends with. */
struct cgw_config {
    char *service_name;
    struct {
        enum log_format format;
        enum log_level level;
    } log;
    bool log_only;
    bool log_only_commit_offsets;       /* with log_only: commit what was only logged */
    bool dry_run;                       /* deprecated, see deprecated[] */
    int stall_after_ms;                 /* a call unanswered this long is a stall */
    int shutdown_timeout_ms;            /* SIGTERM to exit, at most */

    struct {
        char *brokers;                  /* NULL when msk_cluster_arn is set */
        char *msk_cluster_arn;          /* brokers from the MSK API instead */
        char *client_id;
        enum config_security_protocol security_protocol;
        char *sasl_mechanism;
        char *sasl_username;
        char *sasl_password;            /* secret */
        char *group_instance_id;        /* NULL: derived (kafka_group_instance_base); "": off */
        struct config_kv *properties;   /* extra librdkafka properties, in file order */
        size_t properties_count;
    } kafka;

    /* MSK IAM (kafka.sasl_mechanism OAUTHBEARER) and the MSK API. region is the effective
     * one after loading (set, or derived: see the table) whenever either is used. */
    struct {
        char *region;
        char *role_arn;
        char *role_session_name;
        char *sts_endpoint;
        char *msk_endpoint;
    } aws;

    struct {
        struct config_consumer receipt;
        struct config_consumer factoid;
    } consumers;

    struct {
        char *uri;
        char *user;
        char *password;                 /* secret */
        char *database;
        int max_retry_time_ms;
        int pool_size;
        int connect_timeout_ms;
        int io_timeout_ms;              /* 0: derived, see config_neo4j_io_timeout_ms */
    } neo4j;

    struct {
        char *host;
        int port;
        char *username;                 /* ACL user; NULL: AUTH with the password only */
        char *password;                 /* secret */
        bool tls;
        char *tls_ca_file;              /* NULL: the system's CAs */
        char *tls_cert_file;            /* client certificate, with tls_key_file */
        char *tls_key_file;
        char *tls_server_name;          /* NULL: host */
        int timeout_ms;
        int idempotency_ttl_seconds;
        char *key_prefix;
    } valkey;

    struct {
        struct config_service fido;
        struct config_service retailer;
        struct {
            int max_entries;
            int ttl_seconds;
        } cache;
    } enrichment;

    struct {
        enum config_flags_source source;
        char *file;
        char *http_url;
        char *http_token;               /* secret */
        char *http_token_header;
        char *valkey_key_prefix;        /* Flipper Redis adapter key_prefix ("" by default) */
        int poll_interval_seconds;
        char *actor_prefix;
        char *rollout_flag;
        char *receipt_killswitch_flag;
        char *factoid_killswitch_flag;
    } flags;

    struct {
        char *url;
        char *username;
        char *password;                 /* secret */
        int timeout_ms;
        int *allowed_schema_ids;        /* empty: every id is allowed */
        size_t allowed_schema_ids_count;
    } schema_registry;

    struct {
        char *listen;
        char *token;                    /* secret */
    } metrics;

    /* Deprecated keys present in the file (paths, static storage) so main can warn once
     * each, e.g. "dry_run". */
    const char *deprecated[4];
    size_t deprecated_count;
};

/* Loads and validates path. On success returns 0 and *out (free with config_free). On
 * failure returns -1, *out is NULL and err holds the message. */
int config_load(const char *path, struct cgw_config **out, char *err, size_t errlen);

/* The same from a YAML text in memory; name is used in messages (tests, --check-config). */
int config_load_string(const char *yaml, size_t len, const char *name, struct cgw_config **out,
                       char *err, size_t errlen);

void config_free(struct cgw_config *cfg);

/* The Bolt read/write timeout in force: neo4j.io_timeout_ms, or when it is 0 the retry budget
 * (max_retry_time_ms: one answer may take as long as the whole retry would), at least 30 s and
 * connect_timeout_ms: a read that times out before a slow but healthy answer makes the write
 * fail, and the retry is as slow, so a short timeout turns slowness into an outage. */
#define CONFIG_NEO4J_IO_TIMEOUT_MIN_MS 30000
int config_neo4j_io_timeout_ms(const struct cgw_config *cfg);

/* Writes the Markdown reference of every key (the README's configuration section). */
void config_write_reference(FILE *out);

/* Writes the effective configuration, one "path: value" line per key, secrets (and extra
 * Kafka properties that look like secrets) shown as "<redacted>". */
void config_redacted_dump(const struct cgw_config *cfg, FILE *out);

/* The text of an enum value of the key at path ("kafka.security_protocol", 3) -> "sasl_ssl";
 * NULL when path is not an enum key or value is out of range. */
const char *config_choice_name(const char *path, int value);

/* True for a kafka.properties name that looks like a secret (password, token, PEM key, ...):
 * its value is never shown (dump, messages). */
bool config_secret_property(const char *name);

/* The one-line documentation of a key, NULL for an unknown path (used for --help texts). */
const char *config_key_doc(const char *path);

#endif
