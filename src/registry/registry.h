/* src/registry/registry.h: the schema registry client of the factoid consumer.
 *
 * A factoid record names its schema id (Confluent frame or __value_schema_id header; see
 * record_decode_factoid). Before a record is persisted, the consumer asks:
 *
 *   char why[256];
 *   switch (registry_check(reg, res.schema_id, why, sizeof why)) {
 *   case REGISTRY_ACCEPTED:    go on with the record
 *   case REGISTRY_REFUSED:     [ERROR] with why; count it; commit the offset (final)
 *   case REGISTRY_UNAVAILABLE: keep the record, wait, ask again (nothing is lost)
 *   }
 *
 * Modes, fixed at registry_new():
 *   registry   url set: GET {url}/schemas/ids/{id} (HTTP Basic auth: username + token),
 *              Accept: application/vnd.schemaregistry.v1+json. An id is ACCEPTED when its
 *              schemaType is PROTOBUF and its .proto text passes
 *              registry_proto_check_factoid() (proto_text.h): first message
 *              factoids.v1.Factoid, the fields the worker reads unchanged. When allowed_ids
 *              is also given, ids outside it are REFUSED without asking the registry.
 *   allowlist  no url, allowed_ids given: an id is ACCEPTED exactly when it is listed.
 *   open       no url, no allowed_ids (config: "empty: every id is allowed"): every id is
 *              ACCEPTED. The frame's message path is still checked by the decoder.
 *
 * Outcomes of a lookup (registry mode), and why:
 *   200, protobuf, compatible      ACCEPTED, cached forever (a schema id is immutable)
 *   200, not protobuf/incompatible REFUSED, cached forever
 *   404 with error_code 40403      REFUSED "unknown schema id", cached forever
 *   any other 404                  UNAVAILABLE, not cached: Confluent answers a wrong path
 *                                  with error_code 404, a proxy with HTML. A wrong URL must
 *                                  not turn every factoid into an error.
 *   401, 403                       UNAVAILABLE, not cached: bad credentials are a deployment
 *                                  mistake to fix; discarding records meanwhile would lose
 *                                  data that is fine.
 *   5xx, 429, other 4xx, 3xx,
 *   timeout, refused, reset,
 *   malformed JSON or no schema    UNAVAILABLE, not cached.
 * Only answers that are about the schema itself are final; everything else is transient.
 * The answer's "references" are not fetched: every type the worker reads must be defined in
 * the schema's own text (google.protobuf.Timestamp aside, a well-known type), or the id is
 * refused naming the field whose type is elsewhere.
 * A cached id answers without any HTTP call, registry up or down.
 *
 * The cache holds at most max_cached_ids ids. Accepted ids are never evicted; when it is
 * full, the oldest refused id makes room (garbage records carrying random ids cannot push a
 * good id out, nor grow memory without bound).
 *
 * Threads: any number of threads may call registry_check and registry_get_stats /
 * registry_entries concurrently. HTTP calls are serialised on one curl handle (keep-alive)
 * and made outside the cache lock, so readers of the stats never wait on the network.
 * curl_global_init runs once, on the first registry_new.
 *
 * Never logs, never exits. No message (reason, err) ever contains the token: it is not
 * printed, the URL is never printed, and URLs carrying user:password are refused.
 */
#ifndef CGW_REGISTRY_H
#define CGW_REGISTRY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum registry_verdict {
    REGISTRY_ACCEPTED = 0,
    REGISTRY_REFUSED,       /* final: the record is an [ERROR], its offset committed */
    REGISTRY_UNAVAILABLE    /* transient: the record waits and is asked about again */
} registry_verdict;

/* "accepted", "refused", "unavailable". */
const char *registry_verdict_name(registry_verdict v);

struct registry_options {
    const char *url;            /* base URL (Buf CSR: https://<bsr>/integrations/confluent/
                                   <instance>); NULL or "": no registry */
    const char *username;       /* Basic-auth user; NULL or "": no Authorization header */
    const char *token;          /* Basic-auth password (the bot token); secret */
    long timeout_ms;            /* whole request (default 5000) */
    long connect_timeout_ms;    /* default: timeout_ms */
    const int *allowed_ids;     /* optional allowlist (see modes above) */
    size_t allowed_ids_count;
    size_t max_cached_ids;      /* default 1024 */
    size_t max_response_bytes;  /* larger answers are UNAVAILABLE (default 4 MiB) */
    const atomic_bool *cancel;  /* NULL, or the owner's stop flag: once true, a lookup in
                                   flight ends within about a second as UNAVAILABLE
                                   ("cancelled"); it must outlive the registry */
};

/* Fills the defaults above; url, credentials and allowlist NULL. */
void registry_options_init(struct registry_options *o);

struct registry;

/* What registry_new would refuse in *o, found without connecting: 0 or -1 with the message
 * (`cgw check-config` and `cgw run` call it before starting anything). */
int registry_check_options(const struct registry_options *o, char *err, size_t errlen);

/* Copies what it needs from *o. NULL with a message in err on bad options or no memory. */
struct registry *registry_new(const struct registry_options *o, char *err, size_t errlen);
void registry_free(struct registry *r);

/* "registry", "allowlist" or "open". */
const char *registry_mode(const struct registry *r);

/* Whether records of schema_id may be decoded as factoids.v1.Factoid. reason (may be NULL)
 * gets one printable line: why it was refused or unavailable, or what was accepted.
 * A negative schema_id (no id) is REFUSED. */
registry_verdict registry_check(struct registry *r, int32_t schema_id, char *reason,
                                size_t reasonlen);

struct registry_stats {
    uint64_t lookups;           /* registry_check calls */
    uint64_t cache_hits;        /* answered from the cache (registry mode) */
    uint64_t http_calls;        /* requests sent */
    uint64_t failures;          /* UNAVAILABLE answers */
    uint64_t accepted;          /* ACCEPTED answers, cached or not */
    uint64_t refused;           /* REFUSED answers, cached or not */
    uint64_t cached_ids;        /* ids in the cache now */
    uint64_t evictions;         /* refused ids dropped to make room */
};

void registry_get_stats(struct registry *r, struct registry_stats *out);

/* One cached id, for the status page. */
struct registry_entry {
    int32_t schema_id;
    registry_verdict verdict;
    char reason[256];
};

/* Copies up to max cached ids into out, sorted by id; returns how many the cache holds. */
size_t registry_entries(struct registry *r, struct registry_entry *out, size_t max);

#endif
