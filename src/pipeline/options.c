/* src/pipeline/options.c: the configuration turned into each subsystem's options, and the one
 * configuration check that `cgw check-config` and `cgw run` share.
 *
 * Why here. The subsystems take their own *_options (they know nothing of YAML); the pipeline
 * is where the configuration meets them. Building each options struct in one function used by
 * both the start-up code (pipeline.c, consumer.c) and pipeline_check_config() means the check
 * sees exactly the options the start would: a value the start refuses is refused by the check,
 * with the same subsystem message, without creating a client or connecting to anything.
 *
 * How a new key plugs in. A key's type, range, format and cross-key rules go in the table of
 * src/config/config.c (config_load checks them). When the subsystem that uses the key has its
 * own rule, the subsystem exports `<room>_check_options` (or `<room>_check_config`), the
 * builder below copies the key into the options, and checks[] gets a line naming the key or
 * section its messages are about. Nothing else changes: both commands pick it up.
 */
#include "pipeline/pipeline_internal.h"

#include <stdio.h>
#include <string.h>

#include "idem/idem.h"
#include "kafka/kafka.h"
#include "registry/registry.h"

void pipeline_enrich_options(const struct cgw_config *cfg, struct enrich_options *o) {
    enrich_options_init(o);
    o->fido_url = cfg->enrichment.fido.base_url;
    o->retailer_url = cfg->enrichment.retailer.base_url;
    /* One HTTP client serves both services: the larger timeout and retry count apply. */
    o->timeout_ms = cfg->enrichment.fido.timeout_ms > cfg->enrichment.retailer.timeout_ms
                        ? cfg->enrichment.fido.timeout_ms : cfg->enrichment.retailer.timeout_ms;
    o->retries = cfg->enrichment.fido.retries > cfg->enrichment.retailer.retries
                     ? cfg->enrichment.fido.retries : cfg->enrichment.retailer.retries;
    o->ttl_seconds = cfg->enrichment.cache.ttl_seconds;
    if (cfg->enrichment.cache.max_entries > 0) {
        o->cache_max_entries = (size_t)cfg->enrichment.cache.max_entries;
    } else { /* 0 turns the cache off: nothing is kept for any time */
        o->cache_max_entries = 1;
        o->ttl_seconds = 0;
        o->negative_ttl_seconds = 0;
    }
}

void pipeline_registry_options(const struct cgw_config *cfg, struct registry_options *o) {
    registry_options_init(o);
    o->url = cfg->schema_registry.url;
    o->username = cfg->schema_registry.username;
    o->token = cfg->schema_registry.password;
    o->timeout_ms = cfg->schema_registry.timeout_ms;
    o->allowed_ids = cfg->schema_registry.allowed_schema_ids;
    o->allowed_ids_count = cfg->schema_registry.allowed_schema_ids_count;
}

void pipeline_valkey_options(const struct cgw_config *cfg, struct valkey_options *o) {
    o->host = cfg->valkey.host;
    o->port = cfg->valkey.port;
    o->username = cfg->valkey.username;
    o->password = cfg->valkey.password;
    o->tls = cfg->valkey.tls;
    o->tls_ca_file = cfg->valkey.tls_ca_file;
    o->tls_cert_file = cfg->valkey.tls_cert_file;
    o->tls_key_file = cfg->valkey.tls_key_file;
    o->tls_server_name = cfg->valkey.tls_server_name;
}

void pipeline_idem_options(const struct cgw_config *cfg, const char *client_name,
                           struct idem_options *o) {
    idem_options_init(o);
    pipeline_valkey_options(cfg, &o->valkey);
    o->valkey.connect_timeout_ms = cfg->valkey.timeout_ms;
    o->valkey.command_timeout_ms = cfg->valkey.timeout_ms;
    o->valkey.client_name = client_name;
    o->prefix = cfg->valkey.key_prefix;
    o->ttl_seconds = cfg->valkey.idempotency_ttl_seconds;
}

void pipeline_flags_http_options(const struct cgw_config *cfg, struct flags_http_options *o) {
    memset(o, 0, sizeof *o);
    o->url = cfg->flags.http_url;
    o->token = cfg->flags.http_token;
    o->token_header = cfg->flags.http_token_header;
}

void pipeline_flags_valkey_options(const struct cgw_config *cfg, struct flags_valkey_options *o) {
    flags_valkey_options_init(o);
    pipeline_valkey_options(cfg, &o->valkey);
    o->valkey.client_name = "cgw-flags";
    o->key_prefix = cfg->flags.valkey_key_prefix;
}

/* ------------------------------------------------------------------ the checks */

static int check_neo4j(const struct cgw_config *cfg, char *err, size_t errlen) {
    bolt_uri *u = NULL;
    bolt_error be;
    if (bolt_uri_parse(cfg->neo4j.uri, &u, &be) == BOLT_OK) {
        bolt_uri_free(u);
        return 0;
    }
    snprintf(err, errlen, "%s", be.message);
    return -1;
}

static int check_enrich(const struct cgw_config *cfg, char *err, size_t errlen) {
    struct enrich_options o;
    pipeline_enrich_options(cfg, &o);
    return enrich_check_options(&o, err, errlen);
}

/* Only the factoid consumer opens the registry. */
static int check_registry(const struct cgw_config *cfg, char *err, size_t errlen) {
    struct registry_options o;
    if (!cfg->consumers.factoid.enabled) return 0;
    pipeline_registry_options(cfg, &o);
    return registry_check_options(&o, err, errlen);
}

/* idem_new copies the options and reads the TLS files; it connects on first use only. */
static int check_idem(const struct cgw_config *cfg, char *err, size_t errlen) {
    struct idem_options o;
    if (!cfg->consumers.receipt.enabled && !cfg->consumers.factoid.enabled) return 0;
    pipeline_idem_options(cfg, "cgw-check", &o);
    struct idem *d = idem_new(&o, err, errlen);
    idem_free(d);
    return d ? 0 : -1;
}

static int check_flags(const struct cgw_config *cfg, char *err, size_t errlen) {
    if (cfg->flags.source == CONFIG_FLAGS_HTTP) {
        struct flags_http_options o;
        pipeline_flags_http_options(cfg, &o);
        return flags_http_check_options(&o, err, errlen);
    }
    if (cfg->flags.source == CONFIG_FLAGS_VALKEY) {
        struct flags_valkey_options o;              /* opening does not connect */
        pipeline_flags_valkey_options(cfg, &o);
        struct flags_valkey *v = flags_open_valkey(&o, err, errlen);
        flags_close_valkey(v);
        return v ? 0 : -1;
    }
    return 0;
}

/* Each check with the key or section its messages are about; kafka_check_config names the
 * exact key itself (key NULL). */
static const struct {
    const char *key;
    int (*check)(const struct cgw_config *cfg, char *err, size_t errlen);
} checks[] = {
    { NULL, kafka_check_config },
    { "neo4j.uri", check_neo4j },
    { "enrichment", check_enrich },
    { "schema_registry", check_registry },
    { "valkey", check_idem },
    { "flags", check_flags },
};

int pipeline_check_config(const struct cgw_config *cfg, char *err, size_t errlen) {
    char e[512];
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!checks[i].key) {
            if (checks[i].check(cfg, err, errlen) != 0) return -1;
        } else if (checks[i].check(cfg, e, sizeof e) != 0) {
            snprintf(err, errlen, "config: %s: %s", checks[i].key, e);
            return -1;
        }
    }
    return 0;
}
