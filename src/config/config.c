/* config.c: the configuration table, the YAML loader and the generated reference.
 *
 * Design. config_keys[] below is the single description of every key. Loading walks the YAML
 * tree (libyaml's document API: the file is small and a tree gives line numbers for free)
 * with the dotted path of each node; a path that names a table entry is parsed by that
 * entry's type, a path that is a prefix of entries must be a mapping and is walked further,
 * anything else is an unknown key (with a "did you mean" from the table). Defaults are parsed
 * by the same code before the walk, so a default that does not satisfy its own type or range
 * fails every load and is caught by the first test. After the walk come the checks that span
 * keys (a source that needs a URL, SASL that needs credentials).
 *
 * Place. main loads the file once at startup, exits with the message on failure, and hands
 * the read-only struct to every subsystem; nothing else reads YAML or the environment for
 * configuration. Why YAML and not librdkafka-style flat properties: deployments already
 * write YAML, and the nesting mirrors the subsystems.
 */
#include "config/config.h"
#include "config/config_files.h"

#include "http/http_url.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

/* Enum fields are written through an int pointer. */
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_security_protocol) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_offset_reset) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_flags_source) == sizeof(int), "enum size");

enum ctype {
    T_STRING,       /* char *, optionally restricted by choices or a format */
    T_INT,          /* int, within [min, max] */
    T_BOOL,         /* bool: true or false */
    T_MS,           /* int milliseconds: 250, 250ms, 2s, 1m, 1h, 1d */
    T_SECONDS,      /* int seconds: 30, 30s, 5m, 7d (ms only when whole seconds) */
    T_ENUM,         /* int index into choices (case-insensitive match) */
    T_INT_LIST,     /* int * + size_t count: a YAML sequence or "1,2,3" */
    T_STRING_MAP,   /* struct config_kv * + size_t count: a mapping of scalars */
};

enum cformat { FMT_NONE, FMT_HTTP_URL, FMT_BOLT_URI, FMT_HOSTPORT, FMT_BROKERS, FMT_HEADER_NAME,
               FMT_BEARER_TOKEN };

#define REQUIRED   1u
#define SECRET     2u
#define DEPRECATED 4u
#define NONEMPTY   8u     /* has a default, but an explicit "" would break something */
#define USERINFO   16u    /* FMT_HTTP_URL: user:password@ allowed (curl sends it as Basic auth) */
#define QUERY      32u    /* FMT_HTTP_URL: ?query allowed */

struct config_key {
    const char *path;
    enum ctype type;
    size_t off;             /* the field in struct cgw_config */
    size_t count_off;       /* lists and maps: their size_t count field */
    const char *def;        /* default as it would be written in YAML; NULL: none */
    unsigned flags;
    long long min, max;     /* T_INT and durations (in the key's unit) */
    const char *const *choices;
    enum cformat fmt;
    const char *doc;
};

static const char *const choices_log_format[] = { "logfmt", "json", NULL };
static const char *const choices_log_level[] = { "debug", "info", "warn", "error", NULL };
static const char *const choices_security[] = { "plaintext", "ssl", "sasl_plaintext", "sasl_ssl", NULL };
static const char *const choices_sasl[] = { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", NULL };
static const char *const choices_offset[] = { "earliest", "latest", NULL };
static const char *const choices_flags[] = { "file", "http", "valkey", NULL };

#define OFF(field) offsetof(struct cgw_config, field)
#define KSTR(p, fld, d, fl, doc_) { p, T_STRING, OFF(fld), 0, d, fl, 0, 0, NULL, FMT_NONE, doc_ }
#define KFMT(p, fld, d, fl, fmt_, doc_) { p, T_STRING, OFF(fld), 0, d, fl, 0, 0, NULL, fmt_, doc_ }
#define KCHS(p, fld, d, fl, ch, doc_) { p, T_STRING, OFF(fld), 0, d, fl, 0, 0, ch, FMT_NONE, doc_ }
#define KINT(p, fld, d, lo, hi, doc_) { p, T_INT, OFF(fld), 0, d, 0, lo, hi, NULL, FMT_NONE, doc_ }
#define KMS(p, fld, d, lo, hi, doc_) { p, T_MS, OFF(fld), 0, d, 0, lo, hi, NULL, FMT_NONE, doc_ }
#define KSEC(p, fld, d, lo, hi, doc_) { p, T_SECONDS, OFF(fld), 0, d, 0, lo, hi, NULL, FMT_NONE, doc_ }
#define KBOOL(p, fld, d, fl, doc_) { p, T_BOOL, OFF(fld), 0, d, fl, 0, 0, NULL, FMT_NONE, doc_ }
#define KENUM(p, fld, d, ch, doc_) { p, T_ENUM, OFF(fld), 0, d, 0, 0, 0, ch, FMT_NONE, doc_ }
#define KLIST(p, fld, lo, hi, doc_) { p, T_INT_LIST, OFF(fld), OFF(fld##_count), NULL, 0, lo, hi, NULL, FMT_NONE, doc_ }
#define KMAP(p, fld, doc_) { p, T_STRING_MAP, OFF(fld), OFF(fld##_count), NULL, 0, 0, 0, NULL, FMT_NONE, doc_ }

#define CONSUMER_KEYS(name, topic_, group_)                                                         \
    KBOOL("consumers." #name ".enabled", consumers.name.enabled, "true", 0,                       \
          "Run the " #name " consumer at all (its killswitch flag still stops and starts it)."),  \
    KSTR("consumers." #name ".topic", consumers.name.topic, topic_, NONEMPTY, "Kafka topic to consume."), \
    KSTR("consumers." #name ".group", consumers.name.group, group_, NONEMPTY, "Kafka consumer group id."),\
    KENUM("consumers." #name ".auto_offset_reset", consumers.name.auto_offset_reset, "earliest",  \
          choices_offset, "Where a group without a committed offset starts."),                    \
    KINT("consumers." #name ".batch_size", consumers.name.batch_size, "500", 1, 10000,            \
         "Purchases written to Neo4j in one transaction, at most, gathered across polls; "        \
         "filtered, duplicate and erroneous records do not count and never wait for a "           \
         "transaction. Also the most records taken from Kafka between two runs of the filters."), \
    KMS("consumers." #name ".linger_ms", consumers.name.linger_ms, "200", 0, 60000,               \
        "How long a write batch waits for more purchases after its first one before it is "       \
        "written (longer while the previous transaction still runs)."),                          \
    KINT("consumers." #name ".batch_max_bytes", consumers.name.batch_max_bytes, "1048576", 1024,  \
         268435456, "Bytes of record values (and keys) in one write batch, and in the records "  \
         "taken between two runs of the filters, at most; a larger record is a batch alone. "     \
         "Bounds the worker's memory whatever the record sizes."),                                \
    KINT("consumers." #name ".writers", consumers.name.writers, "1", 1, 4,                        \
         "Neo4j transactions in flight for this consumer at once. The consumer's partitions are "  \
         "spread over this many writers, each with its own write batches and its own Bolt "        \
         "connection, so a partition's writes stay in order. 1: one transaction at a time, the "   \
         "next batch prepared meanwhile. 2 raised the write-only ceiling by half on a 2-core "     \
         "Neo4j (bench/e2e/README.md); concurrent writers can deadlock on shared nodes: Neo4j "    \
         "ends one transaction, which is retried and counted in cgw_graph_deadlocks_total. "      \
         "neo4j.pool_size must allow a connection per writer of every consumer."),                \
    KSTR("consumers." #name ".dlq_topic", consumers.name.dlq_topic, NULL, 0,                      \
         "Dead-letter topic: records that can never succeed are produced there (original key "   \
         "and value, headers with the reason) before their offsets are committed. Unset: off.")

#define SERVICE_KEYS(name, label)                                                                 \
    KFMT("enrichment." #name ".base_url", enrichment.name.base_url, NULL, REQUIRED | USERINFO,     \
         FMT_HTTP_URL, "Base URL of the " label " (user:password@ allowed: Basic auth)."),       \
    KMS("enrichment." #name ".timeout_ms", enrichment.name.timeout_ms, "2000", 1, 600000,         \
        "Timeout of one request to the " label "."),                                              \
    KINT("enrichment." #name ".retries", enrichment.name.retries, "3", 0, 100,                    \
         "Retries of a transient failure (5xx, timeout, refused) before the batch waits.")

static const struct config_key config_keys[] = {
    KSTR("service_name", service_name, "consumer-graph-worker", NONEMPTY,
         "Value of the service_name field of every log line (the Loki label)."),
    KENUM("log.format", log.format, "logfmt", choices_log_format,
          "Log line format on stdout: logfmt, or one JSON object per line."),
    KENUM("log.level", log.level, "info", choices_log_level, "Lowest level written."),
    KBOOL("log_only", log_only, "false", 0,
          "Log each record and process none (nothing is written to Neo4j or Valkey)."),
    KBOOL("log_only_commit_offsets", log_only_commit_offsets, "false", 0,
          "With log_only: commit the offsets of logged records (default: no, so turning log_only off later processes them)."),
    KBOOL("dry_run", dry_run, "false", DEPRECATED,
          "Deprecated: switched the notification dispatcher off, which is gone. Accepted with a warning."),
    KMS("stall_after_ms", stall_after_ms, "3000", 100, 60000,
        "A call to a server unanswered this long counts as a stall: the consumer shows waiting_for_<server>, the outage's start is logged and /readyz refuses."),
    KMS("shutdown_timeout_ms", shutdown_timeout_ms, "20000", 1000, 3600000,
        "SIGTERM ends the process within this time (keep it below the orchestrator's stop timeout, 30 s on ECS); a batch still unwritten then is abandoned uncommitted and read again."),

    KFMT("kafka.brokers", kafka.brokers, NULL, 0, FMT_BROKERS,
         "Bootstrap brokers, host:port[,host:port...]; exactly one of kafka.brokers and kafka.msk_cluster_arn is required."),
    KSTR("kafka.msk_cluster_arn", kafka.msk_cluster_arn, NULL, 0,
         "Amazon MSK cluster ARN: the brokers come from the MSK API GetBootstrapBrokers (the IAM listener's) at start, instead of kafka.brokers."),
    KSTR("kafka.client_id", kafka.client_id, "consumer-graph-worker", NONEMPTY, "Kafka client.id."),
    KENUM("kafka.security_protocol", kafka.security_protocol, "plaintext", choices_security,
          "Kafka security.protocol."),
    KCHS("kafka.sasl_mechanism", kafka.sasl_mechanism, NULL, 0, choices_sasl,
         "SASL mechanism; required with a sasl_* protocol. OAUTHBEARER means MSK IAM: the worker signs AWS MSK IAM tokens itself (needs sasl_ssl; credentials from the environment, see aws.*)."),
    KSTR("kafka.sasl_username", kafka.sasl_username, NULL, 0, "SASL user (PLAIN, SCRAM)."),
    KSTR("kafka.sasl_password", kafka.sasl_password, NULL, SECRET, "SASL password (PLAIN, SCRAM)."),
    KSTR("kafka.group_instance_id", kafka.group_instance_id, NULL, 0,
         "Static group membership id base ([A-Za-z0-9._-], at most 200); each consumer joins as <base>-<consumer>. Unset: the ECS task id (task metadata), else the host name; \"\": off (dynamic membership)."),
    KMAP("kafka.properties", kafka.properties,
         "Extra librdkafka properties, name to value; unknown names and the ones the worker sets itself are refused."),

    KSTR("aws.region", aws.region, NULL, 0,
         "AWS region of MSK IAM and the MSK API; default: from kafka.msk_cluster_arn, else from broker host names (...kafka.<region>.amazonaws.com), else AWS_REGION / AWS_DEFAULT_REGION."),
    KSTR("aws.role_arn", aws.role_arn, NULL, 0,
         "IAM role assumed (STS AssumeRole) with the credentials found in the environment (env keys, web identity, ECS); unset: those credentials as they are."),
    KSTR("aws.role_session_name", aws.role_session_name, "consumer-graph-worker", NONEMPTY,
         "Session name of aws.role_arn and of web identity (unless AWS_ROLE_SESSION_NAME is set)."),
    KFMT("aws.sts_endpoint", aws.sts_endpoint, NULL, 0, FMT_HTTP_URL,
         "STS endpoint URL (default https://sts.<region>.amazonaws.com; a VPC endpoint; http only to loopback)."),
    KFMT("aws.msk_endpoint", aws.msk_endpoint, NULL, 0, FMT_HTTP_URL,
         "MSK API endpoint URL (default https://kafka.<region>.amazonaws.com; a VPC endpoint; http only to loopback)."),

    CONSUMER_KEYS(receipt, "ProcessedReceiptEvent", "consumer-graph-receipt"),
    CONSUMER_KEYS(factoid, "factoid-stream", "consumer-graph-factoid"),

    KFMT("neo4j.uri", neo4j.uri, NULL, REQUIRED, FMT_BOLT_URI,
         "Neo4j URI: bolt://, neo4j:// or their +s / +ssc variants."),
    KSTR("neo4j.user", neo4j.user, "neo4j", NONEMPTY, "Neo4j user."),
    KSTR("neo4j.password", neo4j.password, NULL, SECRET, "Neo4j password."),
    KSTR("neo4j.database", neo4j.database, "neo4j", NONEMPTY, "Neo4j database name."),
    KMS("neo4j.max_retry_time_ms", neo4j.max_retry_time_ms, "30000", 0, 3600000,
        "How long a transaction is retried on transient errors before the batch waits."),
    KINT("neo4j.pool_size", neo4j.pool_size, "4", 1, 64, "Bolt connections kept open."),
    KMS("neo4j.connect_timeout_ms", neo4j.connect_timeout_ms, "5000", 1, 600000,
        "Timeout of connecting and authenticating one Bolt connection."),
    KMS("neo4j.io_timeout_ms", neo4j.io_timeout_ms, "0", 0, 3600000,
        "Timeout of one Bolt read or write; past it the connection is dropped and the batch retried. 0: max_retry_time_ms, at least 30 s (a cold Neo4j may plan a batch for seconds; a shorter timeout turns slowness into endless retries)."),

    KSTR("valkey.host", valkey.host, "127.0.0.1", NONEMPTY, "Valkey host (idempotency cache, Flipper keys)."),
    KINT("valkey.port", valkey.port, "6379", 1, 65535, "Valkey port."),
    KSTR("valkey.username", valkey.username, NULL, 0,
         "Valkey ACL user for AUTH (needs valkey.password); unset: AUTH with the password alone."),
    KSTR("valkey.password", valkey.password, NULL, SECRET, "Valkey AUTH password."),
    KBOOL("valkey.tls", valkey.tls, "false", 0,
          "Connect to Valkey with TLS (server certificate and name always verified)."),
    KSTR("valkey.tls_ca_file", valkey.tls_ca_file, NULL, 0,
         "PEM CA bundle that verifies the Valkey server (unset: the system's CAs)."),
    KSTR("valkey.tls_cert_file", valkey.tls_cert_file, NULL, 0,
         "PEM client certificate for Valkey TLS (with valkey.tls_key_file)."),
    KSTR("valkey.tls_key_file", valkey.tls_key_file, NULL, 0,
         "PEM private key of valkey.tls_cert_file (unencrypted)."),
    KSTR("valkey.tls_server_name", valkey.tls_server_name, NULL, 0,
         "Name the Valkey certificate must carry, sent as SNI (unset: valkey.host)."),
    KMS("valkey.timeout_ms", valkey.timeout_ms, "500", 1, 60000,
        "Timeout of one Valkey command; past it the worker goes on without the cache."),
    KSEC("valkey.idempotency_ttl_seconds", valkey.idempotency_ttl_seconds, "604800", 1, 31536000,
         "How long a processed record id is remembered (7 days)."),
    KSTR("valkey.key_prefix", valkey.key_prefix, "cgw:done:",
         0, "Prefix of idempotency keys: <prefix><consumer>:<id>."),

    SERVICE_KEYS(fido, "FIDO Product Service"),
    SERVICE_KEYS(retailer, "Retailer Service"),
    KINT("enrichment.cache.max_entries", enrichment.cache.max_entries, "100000", 0, 100000000,
         "Products and retailers kept in memory (0 turns the cache off)."),
    KSEC("enrichment.cache.ttl_seconds", enrichment.cache.ttl_seconds, "3600", 1, 31536000,
         "How long a cached product or retailer is trusted."),

    KENUM("flags.source", flags.source, "file", choices_flags,
          "Where Flipper flags are read: an export file, the Flipper HTTP API, or Flipper's Valkey keys."),
    KSTR("flags.file", flags.file, NULL, 0, "Flipper export file; required when flags.source is file."),
    KFMT("flags.http_url", flags.http_url, NULL, USERINFO | QUERY, FMT_HTTP_URL,
         "Flipper API base URL (GET <url>/features); required when flags.source is http."),
    KSTR("flags.http_token", flags.http_token, NULL, SECRET, "Token sent to the Flipper API."),
    KFMT("flags.http_token_header", flags.http_token_header, "X-Flipper-Token", NONEMPTY, FMT_HEADER_NAME,
         "Header carrying flags.http_token (Flipper Cloud: Flipper-Cloud-Token)."),
    KSTR("flags.valkey_key_prefix", flags.valkey_key_prefix, "", 0,
         "key_prefix of the Flipper Redis adapter (flags.source: valkey)."),
    KSEC("flags.poll_interval_seconds", flags.poll_interval_seconds, "30", 1, 3600,
         "How often flags are read again."),
    KSTR("flags.actor_prefix", flags.actor_prefix, "User;", 0,
         "Prefix of a user's Flipper actor id (actor id = prefix + user_id)."),
    KSTR("flags.rollout_flag", flags.rollout_flag, "consumer_graph_ingestion", NONEMPTY,
         "Per-user flag: a user's records are persisted only when it is enabled for them."),
    KSTR("flags.receipt_killswitch_flag", flags.receipt_killswitch_flag,
         "consumer_graph_receipt_killswitch", NONEMPTY, "Boolean flag: ON stops the receipt consumer."),
    KSTR("flags.factoid_killswitch_flag", flags.factoid_killswitch_flag,
         "consumer_graph_factoid_killswitch", NONEMPTY, "Boolean flag: ON stops the factoid consumer."),

    KFMT("schema_registry.url", schema_registry.url, NULL, 0, FMT_HTTP_URL,
         "Schema registry (Confluent REST API, e.g. Buf CSR) for factoid schema ids."),
    KSTR("schema_registry.username", schema_registry.username, NULL, 0, "Registry Basic-auth user."),
    KSTR("schema_registry.password", schema_registry.password, NULL, SECRET, "Registry Basic-auth token."),
    KMS("schema_registry.timeout_ms", schema_registry.timeout_ms, "5000", 1, 600000,
        "Timeout of one registry request."),
    KLIST("schema_registry.allowed_schema_ids", schema_registry.allowed_schema_ids, 0, INT_MAX,
          "Factoid schema ids accepted without asking the registry (empty: resolve every id)."),

    KFMT("metrics.listen", metrics.listen, "127.0.0.1:9464", 0, FMT_HOSTPORT,
         "host:port of the HTTP server for /metrics, /healthz, /readyz, /status and the status page (port 0: any free port)."),
    KFMT("metrics.token", metrics.token, NULL, SECRET, FMT_BEARER_TOKEN,
         "Bearer token /status and the status page ask for when metrics.listen is not a loopback address."),
};

#define NKEYS (sizeof config_keys / sizeof config_keys[0])

/* ---- field access -------------------------------------------------------------------- */

static void *field(const struct cgw_config *cfg, const struct config_key *k) {
    return (char *)cfg + k->off;
}
static size_t *count_field(const struct cgw_config *cfg, const struct config_key *k) {
    return (size_t *)((char *)cfg + k->count_off);
}

static const struct config_key *find_key(const char *path) {
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(config_keys[i].path, path) == 0) return &config_keys[i];
    return NULL;
}

/* True when path is a section: a proper prefix of some key up to a '.'. */
static bool is_section(const char *path) {
    size_t n = strlen(path);
    for (size_t i = 0; i < NKEYS; i++)
        if (strncmp(config_keys[i].path, path, n) == 0 && config_keys[i].path[n] == '.') return true;
    return false;
}

/* ---- loader state and errors ------------------------------------------------------------- */

struct loader {
    struct cgw_config *cfg;
    const char *name;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
};

/* path as a message shows it: a key is the file's text, so a control character in it is
 * written \xNN (the message stays one printable line). */
static const char *shown_path(const char *path, char *buf, size_t len) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p && o + 5 < len; p++) {
        if (*p < 0x20 || *p == 0x7f) o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
        else buf[o++] = (char)*p;
    }
    buf[o] = '\0';
    return buf;
}

__attribute__((format(printf, 4, 5)))
static int fail(struct loader *ld, const yaml_node_t *node, const char *path, const char *fmt, ...) {
    char msg[512], where[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shown_path(path, where, sizeof where);
    if (node && ld->name)
        snprintf(ld->err, ld->errlen, "config: %s: %s (%s:%lu)", where, msg, ld->name,
                 (unsigned long)node->start_mark.line + 1);
    else
        snprintf(ld->err, ld->errlen, "config: %s: %s", where, msg);
    return -1;
}

/* A short printable rendering of a bad value for messages. Secrets are never echoed. */
static const char *shown(const struct config_key *k, const char *v, char *buf, size_t len) {
    if (k && (k->flags & SECRET)) return "\"" HTTP_REDACTED "\"";
    if (k && k->fmt == FMT_BROKERS && strchr(v, '@')) return "\"" HTTP_REDACTED "\"";
    char red[512];
    http_redact_userinfo(v, red, sizeof red);      /* URLs: never their user:password@ */
    v = red;
    size_t o = 0;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)v; *p && o + 6 < len; p++) {
        if (*p == '"' || *p == '\\') { buf[o++] = '\\'; buf[o++] = (char)*p; }
        else if (*p < 0x20 || *p == 0x7f) o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
        else buf[o++] = (char)*p;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* ---- environment substitution --------------------------------------------------------------- */

/* Shell-style substitution, nesting included: ${NAME}, ${NAME:-default} where the default may
 * itself hold references (${A:-${B:-x}}: A if set and not empty, else B, else "x"), and
 * "$${" for a literal "${". Only "${" starts a reference, so a lone '$' in a password needs no
 * escaping. A default is expanded only when it is used, as in the shell; values taken from the
 * environment are never expanded again. Nesting deeper than ENV_DEPTH_MAX is refused. */
#define ENV_DEPTH_MAX 8

struct sbuf {
    char *p;
    size_t len, cap;
};

static bool sb_put(struct sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return false;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* The '}' that closes the reference whose body starts at s (nested references counted, "$${"
 * skipped), or NULL when it is not closed before end. */
static const char *ref_end(const char *s, const char *end) {
    int depth = 1;
    for (const char *p = s; p < end; p++) {
        if (p[0] == '$' && p + 2 < end && p[1] == '$' && p[2] == '{') p += 2;
        else if (p[0] == '$' && p + 1 < end && p[1] == '{') { depth++; p++; }
        else if (*p == '}' && --depth == 0) return p;
    }
    return NULL;
}

static int expand_range(struct loader *ld, const yaml_node_t *node, const char *path, const char *in,
                        const char *in_end, struct sbuf *out, int depth);

/* Is path a secret (a SECRET key, or a kafka.properties entry that looks like one)? */
static bool secret_path(const char *path) {
    const struct config_key *k = find_key(path);
    if (k) return (k->flags & SECRET) != 0;
    return strncmp(path, "kafka.properties.", 17) == 0 && config_secret_property(path + 17);
}

/* One reference "${...}" whose body is [name, end): appends its value. */
static int expand_ref(struct loader *ld, const yaml_node_t *node, const char *path, const char *name,
                      const char *end, struct sbuf *out, int depth) {
    char body_shown[200];
    const char *dflt = NULL;
    size_t nlen = 0;
    while (name + nlen < end && (isalnum((unsigned char)name[nlen]) || name[nlen] == '_')) nlen++;
    const char *rest = name + nlen;
    if (rest < end) {
        if (end - rest >= 2 && rest[0] == ':' && rest[1] == '-') dflt = rest + 2;   /* may be empty */
        else nlen = 0;
    }
    if (nlen == 0 || isdigit((unsigned char)name[0])) {
        if (secret_path(path))      /* the reference is part of the secret's text: not shown */
            return fail(ld, node, path, "bad environment reference (expected ${NAME} or ${NAME:-default})");
        char body[160];
        snprintf(body, sizeof body, "${%.*s}", (int)(end - name), name);
        return fail(ld, node, path, "bad environment reference %s (expected ${NAME} or ${NAME:-default})",
                    shown(NULL, body, body_shown, sizeof body_shown));
    }
    char vname[256];
    if (nlen >= sizeof vname)
        return fail(ld, node, path, "environment variable name longer than %zu bytes", sizeof vname - 1);
    snprintf(vname, sizeof vname, "%.*s", (int)nlen, name);
    const char *val = getenv(vname);
    if (dflt && (!val || !*val)) {           /* shell ":-": unset or empty takes the default */
        if (depth >= ENV_DEPTH_MAX)
            return fail(ld, node, path, "environment references nested deeper than %d levels", ENV_DEPTH_MAX);
        return expand_range(ld, node, path, dflt, end, out, depth + 1);
    }
    if (!val) return fail(ld, node, path, "environment variable %s is not set and has no default", vname);
    return sb_put(out, val, strlen(val)) ? 0 : fail(ld, node, path, "out of memory");
}

static int expand_range(struct loader *ld, const yaml_node_t *node, const char *path, const char *in,
                        const char *in_end, struct sbuf *out, int depth) {
    for (const char *p = in; p < in_end;) {
        const char *lit = p;
        size_t n = 1;
        if (p + 2 < in_end && p[0] == '$' && p[1] == '$' && p[2] == '{') {
            lit = "${"; n = 2; p += 3;
        } else if (p + 1 < in_end && p[0] == '$' && p[1] == '{') {
            const char *end = ref_end(p + 2, in_end);
            if (!end) return fail(ld, node, path, "unterminated ${ in value");
            if (expand_ref(ld, node, path, p + 2, end, out, depth) < 0) return -1;
            p = end + 1;
            continue;
        } else {
            p++;
        }
        if (!sb_put(out, lit, n)) return fail(ld, node, path, "out of memory");
    }
    return 0;
}

/* A malloc'd copy of in with every reference replaced, or NULL with the error set. */
static char *expand_env(struct loader *ld, const yaml_node_t *node, const char *path, const char *in) {
    struct sbuf b = { NULL, 0, 0 };
    if (!sb_put(&b, "", 0)) {
        fail(ld, node, path, "out of memory");
        return NULL;
    }
    if (expand_range(ld, node, path, in, in + strlen(in), &b, 0) < 0) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- scalar parsing -------------------------------------------------------------------------- */

static bool parse_ll(const char *s, long long *out) {
    char *end;
    if (!*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* "250", "250ms", "2s", "1m", "1h", "7d" into the key's unit (ms or s). */
static bool parse_duration(const char *s, bool seconds, long long *out) {
    char *end;
    if (!isdigit((unsigned char)*s)) return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return false;
    long long ms_per;
    if (!*end) ms_per = seconds ? 1000 : 1;
    else if (strcmp(end, "ms") == 0) ms_per = 1;
    else if (strcmp(end, "s") == 0) ms_per = 1000;
    else if (strcmp(end, "m") == 0) ms_per = 60000;
    else if (strcmp(end, "h") == 0) ms_per = 3600000;
    else if (strcmp(end, "d") == 0) ms_per = 86400000;
    else return false;
    if (v > (unsigned long long)LLONG_MAX / (unsigned long long)ms_per) return false;
    long long ms = (long long)v * ms_per;
    if (seconds) {
        if (ms % 1000) return false;   /* "1500ms" is not a whole number of seconds */
        *out = ms / 1000;
    } else {
        *out = ms;
    }
    return true;
}

/* host[:port] with the port in lo..65535; IPv6 as [addr]:port. */
static bool hostport_ok(const char *v, size_t n, long long lo, bool port_required) {
    const char *end = v + n, *colon = NULL;
    if (n && v[0] == '[') {
        const char *close = memchr(v, ']', n);
        if (!close || close == v + 1) return false;
        if (close + 1 < end) {
            if (close[1] != ':') return false;
            colon = close + 1;
        }
    } else {
        colon = memchr(v, ':', n);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1))) return false;  /* bare IPv6 */
        if (colon == v || n == 0) return false;
    }
    if (!colon) return !port_required;
    char digits[8];
    size_t dn = (size_t)(end - colon - 1);
    long long port;
    if (dn == 0 || dn >= sizeof digits) return false;
    memcpy(digits, colon + 1, dn);
    digits[dn] = '\0';
    return parse_ll(digits, &port) && port >= lo && port <= 65535;
}

/* "host:port[,host:port...]", each optionally "proto://host:port" as librdkafka allows. */
static bool brokers_ok(const char *v, char *why, size_t len) {
    for (const char *p = v;;) {
        size_t n = strcspn(p, ",");
        const char *e = p;
        while (n && *e == ' ') { e++; n--; }
        while (n && e[n - 1] == ' ') n--;
        const char *sep = memmem(e, n, "://", 3);
        if (sep) { n -= (size_t)(sep + 3 - e); e = sep + 3; }
        if (memchr(e, '@', n)) {
            snprintf(why, len, "brokers must not hold credentials (use kafka.sasl_username and kafka.sasl_password)");
            return false;
        }
        if (!hostport_ok(e, n, 1, false)) {
            snprintf(why, len, "expected host:port[,host:port...] with ports 1..65535");
            return false;
        }
        p += strcspn(p, ",");
        if (!*p++) return true;
    }
}

/* An HTTP header name: visible ASCII without ':' (RFC 9110 token, loosely). */
static bool header_name_ok(const char *v) {
    if (!*v) return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || *p == ':') return false;
    return true;
}

static bool bolt_uri_ok(const char *v, char *why, size_t len) {
    static const char *const schemes[] = { "bolt://", "bolt+s://", "bolt+ssc://",
                                           "neo4j://", "neo4j+s://", "neo4j+ssc://", NULL };
    for (int i = 0; schemes[i]; i++) {
        size_t n = strlen(schemes[i]);
        if (strncmp(v, schemes[i], n) != 0 || !v[n]) continue;
        if (!http_has_userinfo(v)) return true;     /* the rest is the Bolt client's to check */
        snprintf(why, len, "must not hold credentials (user:password@); use neo4j.user and neo4j.password");
        return false;
    }
    snprintf(why, len, "expected a bolt://, neo4j://, bolt+s://, neo4j+s://, bolt+ssc:// or neo4j+ssc:// URI");
    return false;
}

/* True when v has the key's format; otherwise why says what is wrong (never quoting v). */
static bool check_format(const struct config_key *k, const char *v, char *why, size_t len) {
    char e[160];
    switch (k->fmt) {
    case FMT_HTTP_URL: {
        unsigned allow = (k->flags & USERINFO ? HTTP_URL_USERINFO : 0) | (k->flags & QUERY ? HTTP_URL_QUERY : 0);
        if (http_url_check(v, allow, e, sizeof e) == 0) return true;
        snprintf(why, len, "the URL %s", e);
        return false;
    }
    case FMT_BOLT_URI: return bolt_uri_ok(v, why, len);
    case FMT_HOSTPORT:
        if (hostport_ok(v, strlen(v), 0, true)) return true;
        snprintf(why, len, "expected host:port with a port 0..65535 (IPv6 as [addr]:port)");
        return false;
    case FMT_BROKERS: return brokers_ok(v, why, len);
    case FMT_HEADER_NAME:
        if (header_name_ok(v)) return true;
        snprintf(why, len, "expected an HTTP header name (visible characters, no ':')");
        return false;
    case FMT_BEARER_TOKEN: {   /* RFC 6750 b64token: it travels in a header line as it is */
        size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
        if (n > 0 && v[n + strspn(v + n, "=")] == '\0') return true;
        snprintf(why, len, "expected a bearer token (letters, digits, -._~+/, then = only)");
        return false;
    }
    default:
        return true;
    }
}

static void choices_text(const char *const *ch, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; ch[i] && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", ch[i]);
}

/* Parses text (already expanded) as key k and stores it. path differs from k->path for list
 * elements. node may be NULL (defaults). */
static int set_scalar(struct loader *ld, const struct config_key *k, const char *path,
                      const yaml_node_t *node, const char *text) {
    char show[160], what[256];
    void *f = field(ld->cfg, k);
    long long v;
    switch (k->type) {
    case T_STRING:
        if (!*text && !k->def) {    /* "${VAR:-}" is how a file says "optional, unset" */
            free(*(char **)f);
            *(char **)f = NULL;
            return 0;
        }
        if (!*text && (k->flags & NONEMPTY)) return fail(ld, node, path, "must not be empty");
        if (k->choices) {
            int i;
            for (i = 0; k->choices[i] && strcmp(k->choices[i], text) != 0; i++) {}
            if (!k->choices[i]) {
                choices_text(k->choices, what, sizeof what);
                return fail(ld, node, path, "expected one of %s, got %s", what, shown(k, text, show, sizeof show));
            }
        }
        if (k->fmt != FMT_NONE && !check_format(k, text, what, sizeof what))
            return fail(ld, node, path, "%s, got %s", what, shown(k, text, show, sizeof show));
        if (http_text_check(text, what, sizeof what) != 0) return fail(ld, node, path, "%s", what);
        char *copy = strdup(text);
        if (!copy) return fail(ld, node, path, "out of memory");
        free(*(char **)f);
        *(char **)f = copy;
        return 0;
    case T_INT:
    case T_INT_LIST:
        if (!parse_ll(text, &v) || v < k->min || v > k->max)
            return fail(ld, node, path, "expected an integer between %lld and %lld, got %s", k->min, k->max,
                        shown(k, text, show, sizeof show));
        if (k->type == T_INT) *(int *)f = (int)v;
        else {
            size_t *n = count_field(ld->cfg, k);
            int *arr = realloc(*(int **)f, (*n + 1) * sizeof(int));
            if (!arr) return fail(ld, node, path, "out of memory");
            arr[(*n)++] = (int)v;
            *(int **)f = arr;
        }
        return 0;
    case T_MS:
    case T_SECONDS: {
        bool sec = k->type == T_SECONDS;
        if (!parse_duration(text, sec, &v) || v < k->min || v > k->max)
            return fail(ld, node, path,
                        "expected a duration between %lld and %lld %s (a number, or with a unit: %s), got %s",
                        k->min, k->max, sec ? "seconds" : "milliseconds",
                        sec ? "30s, 5m, 7d" : "250ms, 2s, 1m", shown(k, text, show, sizeof show));
        *(int *)f = (int)v;
        return 0;
    }
    case T_BOOL:
        if (strcasecmp(text, "true") == 0) *(bool *)f = true;
        else if (strcasecmp(text, "false") == 0) *(bool *)f = false;
        else return fail(ld, node, path, "expected a boolean (true or false), got %s", shown(k, text, show, sizeof show));
        return 0;
    case T_ENUM:
        for (int i = 0; k->choices[i]; i++) {
            if (strcasecmp(k->choices[i], text) == 0) { *(int *)f = i; return 0; }
        }
        choices_text(k->choices, what, sizeof what);
        return fail(ld, node, path, "expected one of %s, got %s", what, shown(k, text, show, sizeof show));
    default:
        return fail(ld, node, path, "internal error: scalar for a non-scalar key");
    }
}

/* ---- YAML walking ---------------------------------------------------------------------------- */

static const char *node_kind(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

static bool is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* Expands and parses one scalar node. */
static int set_from_node(struct loader *ld, const struct config_key *k, const char *path, const yaml_node_t *n) {
    char *text = expand_env(ld, n, path, (const char *)n->data.scalar.value);
    if (!text) return -1;
    int rc = set_scalar(ld, k, path, n, text);
    free(text);
    return rc;
}

static int set_list(struct loader *ld, const struct config_key *k, const yaml_node_t *n) {
    char path[300];
    if (n->type == YAML_SCALAR_NODE) {
        /* "1,2,3": lets a list come from one environment variable */
        char *text = expand_env(ld, n, k->path, (const char *)n->data.scalar.value), *save = NULL;
        if (!text) return -1;
        int i = 0, rc = 0;
        for (char *tok = strtok_r(text, ", ", &save); tok && rc == 0; tok = strtok_r(NULL, ", ", &save)) {
            snprintf(path, sizeof path, "%s[%d]", k->path, i++);
            rc = set_scalar(ld, k, path, n, tok);
        }
        free(text);
        return rc;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(ld, n, k->path, "expected a list of integers, got %s", node_kind(n));
    int i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
        yaml_node_t *item = yaml_document_get_node(ld->doc, *it);
        snprintf(path, sizeof path, "%s[%d]", k->path, i);
        if (item->type != YAML_SCALAR_NODE)
            return fail(ld, item, path, "expected an integer, got %s", node_kind(item));
        if (set_from_node(ld, k, path, item) < 0) return -1;
    }
    return 0;
}

bool config_secret_property(const char *name) {
    static const char *const words[] = { "password", "secret", "token", ".pem", "jaas", "credentials",
                                         "oauthbearer.config", NULL };
    for (int i = 0; words[i]; i++)
        if (strcasestr(name, words[i])) return true;
    return false;
}

/* A property value holds no control character, except the line breaks and tabs of a PEM
 * document in a "*.pem" property (ssl.key.pem, ssl.ca.pem, ...). */
static bool property_text_ok(const char *name, const char *val, char *why, size_t len) {
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 4, ".pem") != 0) return http_text_check(val, why, len) == 0;
    for (const unsigned char *p = (const unsigned char *)val; *p; p++) {
        if ((*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t') || *p == 0x7f) {
            snprintf(why, len, "must not contain control characters other than line breaks");
            return false;
        }
    }
    return true;
}

static int set_map(struct loader *ld, const struct config_key *k, const yaml_node_t *n) {
    char path[300];
    if (n->type != YAML_MAPPING_NODE)
        return fail(ld, n, k->path, "expected a mapping of names to values, got %s", node_kind(n));
    struct cgw_config *cfg = ld->cfg;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        if (kn->type != YAML_SCALAR_NODE) return fail(ld, kn, k->path, "keys must be strings");
        const char *name = (const char *)kn->data.scalar.value;
        snprintf(path, sizeof path, "%s.%s", k->path, name);
        char why[128];
        if (http_text_check(name, why, sizeof why) != 0) return fail(ld, kn, path, "%s", why);
        if (vn->type != YAML_SCALAR_NODE)
            return fail(ld, vn, path, "expected a scalar value, got %s", node_kind(vn));
        size_t *cnt = count_field(cfg, k);
        struct config_kv **arr = field(cfg, k);
        for (size_t i = 0; i < *cnt; i++) {
            if (strcmp((*arr)[i].key, name) == 0) return fail(ld, kn, path, "duplicate key");
        }
        char *val = expand_env(ld, vn, path, (const char *)vn->data.scalar.value);
        if (!val) return -1;
        if (!property_text_ok(name, val, why, sizeof why)) {
            free(val);
            return fail(ld, vn, path, "%s", why);
        }
        struct config_kv *na = realloc(*arr, (*cnt + 1) * sizeof **arr);
        char *kcopy = strdup(name);
        if (!na || !kcopy) {
            free(val);
            free(kcopy);
            if (na) *arr = na;
            return fail(ld, vn, path, "out of memory");
        }
        *arr = na;
        na[*cnt].key = kcopy;
        na[*cnt].value = val;
        (*cnt)++;
    }
    return 0;
}

static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int c = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < c) c = prev[j] + 1;
            if (cur[j - 1] + 1 < c) c = cur[j - 1] + 1;
            cur[j] = c;
        }
        memcpy(prev, cur, sizeof(int) * (lb + 1));
    }
    return prev[lb];
}

/* The closest key or section to an unknown path, for "did you mean". */
static void suggest(const char *path, char *out, size_t len) {
    int best = 3;
    out[0] = '\0';
    for (size_t i = 0; i < NKEYS; i++) {
        const char *p = config_keys[i].path;
        for (const char *dot = p;; dot++) {   /* every prefix ending at '.', and the key itself */
            if (*dot == '.' || *dot == '\0') {
                char cand[300];
                snprintf(cand, sizeof cand, "%.*s", (int)(dot - p), p);
                int d = edit_distance(path, cand);
                if (d < best) { best = d; snprintf(out, len, "%s", cand); }
            }
            if (!*dot) break;
        }
    }
}

static int walk(struct loader *ld, const yaml_node_t *map, const char *prefix) {
    char path[300], hint[300];
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(ld->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(ld->doc, p->value);
        if (kn->type != YAML_SCALAR_NODE)
            return fail(ld, kn, *prefix ? prefix : "(top level)", "mapping keys must be strings");
        const char *key = (const char *)kn->data.scalar.value;
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);

        /* YAML forbids duplicate keys but libyaml lets them through; the second would
         * silently win, so refuse it (sections included: two "kafka:" blocks). */
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            yaml_node_t *qk = yaml_document_get_node(ld->doc, q->key);
            if (qk->type == YAML_SCALAR_NODE && strcmp((const char *)qk->data.scalar.value, key) == 0)
                return fail(ld, kn, path, "duplicate key");
        }

        const struct config_key *k = find_key(path);
        if (k) {
            if (is_null(vn)) continue;    /* "key:" with no value keeps the default */
            if (k->flags & DEPRECATED && ld->cfg->deprecated_count < 4)
                ld->cfg->deprecated[ld->cfg->deprecated_count++] = k->path;
            int rc;
            if (k->type == T_INT_LIST) rc = set_list(ld, k, vn);
            else if (k->type == T_STRING_MAP) rc = set_map(ld, k, vn);
            else if (vn->type != YAML_SCALAR_NODE)
                rc = fail(ld, vn, path, "expected a single value, got %s", node_kind(vn));
            else rc = set_from_node(ld, k, path, vn);
            if (rc < 0) return -1;
        } else if (is_section(path)) {
            if (is_null(vn)) continue;
            if (vn->type != YAML_MAPPING_NODE)
                return fail(ld, vn, path, "expected a mapping (a section of keys), got %s", node_kind(vn));
            if (walk(ld, vn, path) < 0) return -1;
        } else {
            suggest(path, hint, sizeof hint);
            if (*hint) return fail(ld, kn, path, "unknown key (did you mean %s?)", hint);
            return fail(ld, kn, path, "unknown key");
        }
    }
    return 0;
}

/* ---- checks that span keys ------------------------------------------------------------------- */

static bool empty(const char *s) { return !s || !*s; }

static int check_required(struct loader *ld) {
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        if ((k->flags & REQUIRED) && k->type == T_STRING && empty(*(char **)field(ld->cfg, k)))
            return fail(ld, NULL, k->path, "required value is missing");
    }
    return 0;
}

/* The Valkey TLS files are read now (config_files.c), so check-config refuses what run would. */
static int check_valkey_files(struct loader *ld) {
    const struct cgw_config *c = ld->cfg;
    const struct { const char *key, *path; enum config_pem kind; } files[] = {
        {"valkey.tls_ca_file", c->valkey.tls_ca_file, CONFIG_PEM_CA},
        {"valkey.tls_cert_file", c->valkey.tls_cert_file, CONFIG_PEM_CERT},
        {"valkey.tls_key_file", c->valkey.tls_key_file, CONFIG_PEM_KEY},
    };
    char why[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (!empty(files[i].path) && config_check_pem(files[i].path, files[i].kind, why, sizeof why) < 0)
            return fail(ld, NULL, files[i].key, "%s", why);
    if (!empty(c->valkey.tls_cert_file) &&
        config_check_key_pair(c->valkey.tls_cert_file, c->valkey.tls_key_file, why, sizeof why) < 0)
        return fail(ld, NULL, "valkey.tls_key_file", "%s", why);
    return 0;
}

static int check_valkey(struct loader *ld) {
    const struct cgw_config *c = ld->cfg;
    if (!empty(c->valkey.username) && empty(c->valkey.password))
        return fail(ld, NULL, "valkey.password", "required when valkey.username is set");
    const struct { const char *key, *value; } tls_keys[] = {
        {"valkey.tls_ca_file", c->valkey.tls_ca_file}, {"valkey.tls_cert_file", c->valkey.tls_cert_file},
        {"valkey.tls_key_file", c->valkey.tls_key_file}, {"valkey.tls_server_name", c->valkey.tls_server_name},
    };
    for (size_t i = 0; i < sizeof tls_keys / sizeof tls_keys[0]; i++)
        if (!c->valkey.tls && !empty(tls_keys[i].value))
            return fail(ld, NULL, tls_keys[i].key, "set, but valkey.tls is false (no TLS would be used)");
    if (empty(c->valkey.tls_cert_file) != empty(c->valkey.tls_key_file))
        return empty(c->valkey.tls_key_file)
                   ? fail(ld, NULL, "valkey.tls_key_file", "required when valkey.tls_cert_file is set")
                   : fail(ld, NULL, "valkey.tls_cert_file", "required when valkey.tls_key_file is set");
    return check_valkey_files(ld);
}

static int check_cross(struct loader *ld) {
    const struct cgw_config *c = ld->cfg;
    if (c->flags.source == CONFIG_FLAGS_FILE && empty(c->flags.file))
        return fail(ld, NULL, "flags.file", "required when flags.source is file");
    if (c->flags.source == CONFIG_FLAGS_HTTP && empty(c->flags.http_url))
        return fail(ld, NULL, "flags.http_url", "required when flags.source is http");
    if (c->kafka.security_protocol == CONFIG_SECURITY_SASL_PLAINTEXT ||
        c->kafka.security_protocol == CONFIG_SECURITY_SASL_SSL) {
        if (empty(c->kafka.sasl_mechanism))
            return fail(ld, NULL, "kafka.sasl_mechanism", "required when kafka.security_protocol is sasl_*");
        if (strcmp(c->kafka.sasl_mechanism, "OAUTHBEARER") != 0) {
            if (empty(c->kafka.sasl_username))
                return fail(ld, NULL, "kafka.sasl_username", "required with SASL mechanism %s", c->kafka.sasl_mechanism);
            if (empty(c->kafka.sasl_password))
                return fail(ld, NULL, "kafka.sasl_password", "required with SASL mechanism %s", c->kafka.sasl_mechanism);
        }
    }
    if (!empty(c->schema_registry.username) && empty(c->schema_registry.password))
        return fail(ld, NULL, "schema_registry.password", "required when schema_registry.username is set");
    int writers = (c->consumers.receipt.enabled ? c->consumers.receipt.writers : 0) +
                  (c->consumers.factoid.enabled ? c->consumers.factoid.writers : 0);
    if (writers > c->neo4j.pool_size)
        return fail(ld, NULL, "neo4j.pool_size",
                    "%d is fewer connections than the consumers' writers (%d): raise it or lower "
                    "consumers.<name>.writers", c->neo4j.pool_size, writers);
    return check_valkey(ld);
}

/* ---- MSK IAM and the MSK API ---------------------------------------------------------------- */

/* "us-east-1", "us-gov-west-1", "eu-central-2": letters, dash-separated words, a number. */
static bool is_region(const char *s, size_t n) {
    size_t i = 0, words = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && islower((unsigned char)s[i])) i++;
        if (i == start) break;
        words++;
        if (i >= n || s[i] != '-') return false;
        i++;
    }
    size_t digits = i;
    while (i < n && isdigit((unsigned char)s[i])) i++;
    return words >= 2 && i == n && i > digits;
}

/* arn:<partition>:kafka:<region>:<12 digits>:cluster/<name>/<id>; the region into out. */
static bool parse_cluster_arn(const char *arn, char *region, size_t rlen) {
    char part[32], reg[64], acct[32], res[512];
    int n = 0;
    if (sscanf(arn, "arn:%31[a-z-]:kafka:%63[a-z0-9-]:%31[0-9]:%511s%n", part, reg, acct, res, &n) != 4 ||
        arn[n] || strlen(acct) != 12 || strncmp(res, "cluster/", 8) != 0 || !strchr(res + 8, '/') ||
        !is_region(reg, strlen(reg)))
        return false;
    snprintf(region, rlen, "%s", reg);
    return true;
}

/* The region of the first broker named like b-1.x.y.kafka.<region>.amazonaws.com[:port]. */
static bool region_from_brokers(const char *brokers, char *region, size_t rlen) {
    for (const char *p = brokers; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        size_t len = strcspn(p, ",:");
        const char *end = memmem(p, len, ".amazonaws.com", 14);
        for (const char *k = p; end && k < end; k++) {
            const char *r = NULL;
            if (!strncmp(k, ".kafka.", 7)) r = k + 7;
            else if (!strncmp(k, ".kafka-serverless.", 18)) r = k + 18;
            if (r && r < end && is_region(r, (size_t)(end - r))) {
                snprintf(region, rlen, "%.*s", (int)(end - r), r);
                return true;
            }
        }
    }
    return false;
}

static bool loopback_http(const char *url) {
    static const char *const ok[] = { "http://127.", "http://localhost:", "http://localhost/",
                                      "http://[::1]", NULL };
    if (strncmp(url, "http://", 7) != 0) return true;   /* https */
    for (int i = 0; ok[i]; i++)
        if (strncmp(url, ok[i], strlen(ok[i])) == 0) return true;
    return !strcmp(url, "http://localhost");
}

/* Fills aws.region when it is unset (the derivation order of the table). */
static int derive_region(struct loader *ld, const char *why) {
    struct cgw_config *c = ld->cfg;
    char region[64] = "";
    if (!empty(c->aws.region)) {
        if (!is_region(c->aws.region, strlen(c->aws.region)))
            return fail(ld, NULL, "aws.region", "expected an AWS region such as eu-west-1, got \"%.60s\"", c->aws.region);
        return 0;
    }
    bool found = (!empty(c->kafka.msk_cluster_arn) && parse_cluster_arn(c->kafka.msk_cluster_arn, region, sizeof region)) ||
                 (!empty(c->kafka.brokers) && region_from_brokers(c->kafka.brokers, region, sizeof region));
    const char *e = getenv("AWS_REGION");
    if (!found && (!e || !*e)) e = getenv("AWS_DEFAULT_REGION");
    if (!found && e && *e) {
        if (!is_region(e, strlen(e)))
            return fail(ld, NULL, "aws.region", "AWS_REGION / AWS_DEFAULT_REGION is not an AWS region: \"%.60s\"", e);
        snprintf(region, sizeof region, "%s", e);
        found = true;
    }
    if (!found)
        return fail(ld, NULL, "aws.region", "required with %s and not derivable (no region in "
                    "kafka.msk_cluster_arn or the broker host names, AWS_REGION unset)", why);
    c->aws.region = strdup(region);
    return c->aws.region ? 0 : fail(ld, NULL, "aws.region", "out of memory");
}

/* Exactly one of kafka.brokers and kafka.msk_cluster_arn (checked with the required keys,
 * in the table's order). */
static int check_brokers(struct loader *ld) {
    const struct cgw_config *c = ld->cfg;
    bool arn = !empty(c->kafka.msk_cluster_arn), brokers = !empty(c->kafka.brokers);
    if (!arn && !brokers)
        return fail(ld, NULL, "kafka.brokers", "required value is missing (or set kafka.msk_cluster_arn)");
    if (arn && brokers)
        return fail(ld, NULL, "kafka.msk_cluster_arn", "set either kafka.brokers or kafka.msk_cluster_arn, not both");
    return 0;
}

static int check_aws(struct loader *ld) {
    const struct cgw_config *c = ld->cfg;
    bool arn = !empty(c->kafka.msk_cluster_arn);
    char region[64];
    if (arn && !parse_cluster_arn(c->kafka.msk_cluster_arn, region, sizeof region))
        return fail(ld, NULL, "kafka.msk_cluster_arn",
                    "expected arn:aws:kafka:<region>:<account>:cluster/<name>/<id>, got \"%.200s\"", c->kafka.msk_cluster_arn);
    bool iam = c->kafka.sasl_mechanism && !strcmp(c->kafka.sasl_mechanism, "OAUTHBEARER");
    if (iam && c->kafka.security_protocol != CONFIG_SECURITY_SASL_SSL)
        return fail(ld, NULL, "kafka.security_protocol",
                    "must be sasl_ssl with OAUTHBEARER (MSK IAM tokens are only sent over TLS)");
    if (!iam && !arn) return 0;
    const char *const urls[] = { "aws.sts_endpoint", c->aws.sts_endpoint, "aws.msk_endpoint", c->aws.msk_endpoint };
    for (int i = 0; i < 4; i += 2)
        if (urls[i + 1] && !loopback_http(urls[i + 1]))
            return fail(ld, NULL, urls[i], "http:// is allowed only to a loopback address (tests); use https");
    return derive_region(ld, iam ? "kafka.sasl_mechanism OAUTHBEARER (MSK IAM)" : "kafka.msk_cluster_arn");
}

/* ---- load / free ----------------------------------------------------------------------------- */

static int apply_defaults(struct loader *ld) {
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        if (k->def && set_scalar(ld, k, k->path, NULL, k->def) < 0) return -1;
    }
    return 0;
}

static int load_parser(yaml_parser_t *parser, const char *name, struct cgw_config **out, char *err, size_t errlen) {
    yaml_document_t doc, extra;
    struct loader ld = { .name = name, .doc = &doc, .err = err, .errlen = errlen };
    int rc = -1;
    *out = NULL;
    ld.cfg = calloc(1, sizeof *ld.cfg);
    if (!ld.cfg) { snprintf(err, errlen, "config: out of memory"); return -1; }
    if (apply_defaults(&ld) < 0) { config_free(ld.cfg); return -1; }

    if (!yaml_parser_load(parser, &doc)) {
        snprintf(err, errlen, "config: %s:%lu:%lu: YAML syntax error: %s%s%s", name,
                 (unsigned long)parser->problem_mark.line + 1, (unsigned long)parser->problem_mark.column + 1,
                 parser->problem ? parser->problem : "unknown", parser->context ? " " : "",
                 parser->context ? parser->context : "");
        config_free(ld.cfg);
        return -1;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root) && root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "config: %s: the top level must be a mapping of keys, got %s", name, node_kind(root));
        goto done;
    }
    if (root && root->type == YAML_MAPPING_NODE && walk(&ld, root, "") < 0) goto done;
    if (yaml_parser_load(parser, &extra)) {
        bool more = yaml_document_get_root_node(&extra) != NULL;
        yaml_document_delete(&extra);
        if (more) { snprintf(err, errlen, "config: %s: holds more than one YAML document", name); goto done; }
    }
    if (check_brokers(&ld) < 0 || check_required(&ld) < 0 || check_cross(&ld) < 0 || check_aws(&ld) < 0)
        goto done;
    rc = 0;
done:
    yaml_document_delete(&doc);
    if (rc == 0) *out = ld.cfg;
    else config_free(ld.cfg);
    return rc;
}

int config_load(const char *path, struct cgw_config **out, char *err, size_t errlen) {
    yaml_parser_t parser;
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errlen, "config: cannot open %s: %s", path, strerror(errno)); return -1; }
    if (!yaml_parser_initialize(&parser)) { fclose(f); snprintf(err, errlen, "config: out of memory"); return -1; }
    yaml_parser_set_input_file(&parser, f);
    const char *base = strrchr(path, '/');
    int rc = load_parser(&parser, base ? base + 1 : path, out, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int config_load_string(const char *yaml, size_t len, const char *name, struct cgw_config **out,
                       char *err, size_t errlen) {
    yaml_parser_t parser;
    *out = NULL;
    if (!yaml_parser_initialize(&parser)) { snprintf(err, errlen, "config: out of memory"); return -1; }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    int rc = load_parser(&parser, name ? name : "(string)", out, err, errlen);
    yaml_parser_delete(&parser);
    return rc;
}

void config_free(struct cgw_config *cfg) {
    if (!cfg) return;
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        void *f = field(cfg, k);
        if (k->type == T_STRING || k->type == T_INT_LIST) {
            free(*(void **)f);
        } else if (k->type == T_STRING_MAP) {
            struct config_kv *kv = *(struct config_kv **)f;
            for (size_t j = 0; j < *count_field(cfg, k); j++) { free(kv[j].key); free(kv[j].value); }
            free(kv);
        }
    }
    free(cfg);
}

/* ---- reference and dump ---------------------------------------------------------------------- */

static void type_text(const struct config_key *k, char *buf, size_t len) {
    switch (k->type) {
    case T_STRING:
        if (k->choices) {
            size_t o = 0;
            for (int i = 0; k->choices[i]; i++) o += (size_t)snprintf(buf + o, len - o, "%s`%s`", i ? " \\| " : "", k->choices[i]);
        } else if (k->fmt == FMT_HTTP_URL) snprintf(buf, len, "URL (http, https)");
        else if (k->fmt == FMT_BOLT_URI) snprintf(buf, len, "URI (bolt, neo4j)");
        else if (k->fmt == FMT_HOSTPORT) snprintf(buf, len, "host:port");
        else if (k->fmt == FMT_BROKERS) snprintf(buf, len, "list of host:port");
        else if (k->fmt == FMT_HEADER_NAME) snprintf(buf, len, "HTTP header name");
        else snprintf(buf, len, "string");
        break;
    case T_INT: snprintf(buf, len, "integer, %lld..%lld", k->min, k->max); break;
    case T_BOOL: snprintf(buf, len, "boolean"); break;
    case T_MS: snprintf(buf, len, "duration (ms), %lld..%lld", k->min, k->max); break;
    case T_SECONDS: snprintf(buf, len, "duration (s), %lld..%lld", k->min, k->max); break;
    case T_ENUM: {
        size_t o = 0;
        for (int i = 0; k->choices[i]; i++) o += (size_t)snprintf(buf + o, len - o, "%s`%s`", i ? " \\| " : "", k->choices[i]);
        break;
    }
    case T_INT_LIST: snprintf(buf, len, "list of integers"); break;
    case T_STRING_MAP: snprintf(buf, len, "map of string to string"); break;
    }
    if (k->flags & SECRET) strncat(buf, ", secret", len - strlen(buf) - 1);
}

/* Markdown cells cannot hold '|' unescaped. */
static void md_cell(FILE *out, const char *s) {
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", out);
        else fputc(*s, out);
    }
}

void config_write_reference(FILE *out) {
    char type[256];
    fputs("| key | type | default | description |\n|---|---|---|---|\n", out);
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        type_text(k, type, sizeof type);
        fprintf(out, "| `%s` | %s | ", k->path, type);
        if (k->flags & REQUIRED) fputs("**required**", out);
        else if (k->def && *k->def) { fputc('`', out); md_cell(out, k->def); fputc('`', out); }
        else if (k->def) fputs("`\"\"`", out);
        else fputs("(unset)", out);
        fputs(" | ", out);
        md_cell(out, k->doc);
        fputs(" |\n", out);
    }
}

/* A quoted value, with the userinfo of any URL in it redacted (src/http). */
static void dump_string(FILE *out, const char *value) {
    char *red = http_has_userinfo(value) ? http_redacted(value) : NULL;
    const char *s = red ? red : value;
    if (!red && http_has_userinfo(value)) s = HTTP_REDACTED;   /* out of memory: show nothing */
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) fprintf(out, "\\x%02x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
    free(red);
}

void config_redacted_dump(const struct cgw_config *cfg, FILE *out) {
    for (size_t i = 0; i < NKEYS; i++) {
        const struct config_key *k = &config_keys[i];
        void *f = field(cfg, k);
        switch (k->type) {
        case T_STRING: {
            const char *s = *(char **)f;
            fprintf(out, "%s: ", k->path);
            if (!s) fputs("~", out);
            else if ((k->flags & SECRET) && *s) fputs("\"" HTTP_REDACTED "\"", out);
            else dump_string(out, s);
            fputc('\n', out);
            break;
        }
        case T_INT: case T_MS: case T_SECONDS:
            fprintf(out, "%s: %d\n", k->path, *(int *)f);
            break;
        case T_BOOL:
            fprintf(out, "%s: %s\n", k->path, *(bool *)f ? "true" : "false");
            break;
        case T_ENUM:
            fprintf(out, "%s: %s\n", k->path, k->choices[*(int *)f]);
            break;
        case T_INT_LIST: {
            const int *arr = *(int **)f;
            fprintf(out, "%s: [", k->path);
            for (size_t j = 0; j < *count_field(cfg, k); j++) fprintf(out, "%s%d", j ? ", " : "", arr[j]);
            fputs("]\n", out);
            break;
        }
        case T_STRING_MAP: {
            const struct config_kv *kv = *(struct config_kv **)f;
            size_t n = *count_field(cfg, k);
            if (n == 0) fprintf(out, "%s: {}\n", k->path);
            for (size_t j = 0; j < n; j++) {
                fprintf(out, "%s.%s: ", k->path, kv[j].key);
                if (config_secret_property(kv[j].key)) fputs("\"" HTTP_REDACTED "\"", out);
                else dump_string(out, kv[j].value);
                fputc('\n', out);
            }
            break;
        }
        }
    }
}

const char *config_choice_name(const char *path, int value) {
    const struct config_key *k = find_key(path);
    if (!k || k->type != T_ENUM || value < 0) return NULL;
    for (int i = 0; k->choices[i]; i++)
        if (i == value) return k->choices[i];
    return NULL;
}

const char *config_key_doc(const char *path) {
    const struct config_key *k = find_key(path);
    return k ? k->doc : NULL;
}

int config_neo4j_io_timeout_ms(const struct cgw_config *cfg) {
    if (cfg->neo4j.io_timeout_ms > 0) return cfg->neo4j.io_timeout_ms;
    int ms = cfg->neo4j.max_retry_time_ms;
    if (ms < CONFIG_NEO4J_IO_TIMEOUT_MIN_MS) ms = CONFIG_NEO4J_IO_TIMEOUT_MIN_MS;
    return ms > cfg->neo4j.connect_timeout_ms ? ms : cfg->neo4j.connect_timeout_ms;
}
