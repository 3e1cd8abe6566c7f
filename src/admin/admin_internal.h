/* admin_internal.h: what the files of src/admin/ share, and nothing else includes.
 *
 *   admin.c          command line: parsing, usage, dispatch (admin_run / admin_main)
 *   admin_kafka.c    the Admin API calls, each one request and one result, as plain structs
 *   admin_offsets.c  `offsets show` and `offsets reset`: tables, plans, printing
 *   admin_group.c    the "no active members" guard and `group delete`
 *
 * Every function that can fail returns 0 or -1 and writes one message into err (no trailing
 * newline, no "cgw:" prefix); admin_run prints it. Nothing here exits the process.
 */
#ifndef CGW_ADMIN_INTERNAL_H
#define CGW_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "config/config.h"
#include "kafka/kafka.h"

#define ADMIN_TIMEOUT_MS 15000
#define ADMIN_NO_OFFSET  (-1) /* no committed offset for the partition */

enum admin_reset_to { ADMIN_TO_NONE = 0, ADMIN_TO_EARLIEST, ADMIN_TO_LATEST, ADMIN_TO_DATETIME };

/* The parsed command line; strings point into argv or cfg. */
struct admin_opts {
    const char *command;    /* "offsets" or "group" */
    const char *action;     /* "show", "reset", "delete" */
    const char *config_path;
    const char *brokers;
    const char *group;
    const char *topic;
    enum admin_reset_to to;
    int64_t to_ms;          /* ADMIN_TO_DATETIME: milliseconds since the epoch */
    bool execute;
    bool json;
    int timeout_ms;
};

/* A connected admin client. cfg (owned by admin_run) is NULL when only --brokers was given. */
struct admin_ctx {
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    int timeout_ms;
    const struct cgw_config *cfg;
    FILE *out;
    FILE *err;
    struct kafka_auth *auth;    /* with cfg: resolved brokers, MSK IAM */
    struct kafka_link link;     /* the handle's opaque: auth, and err for the log callback */
};

/* One partition of a (group, topic). Offsets are ADMIN_NO_OFFSET when unknown. */
struct admin_row {
    int32_t partition;
    int64_t committed;
    int64_t end;
    int64_t target;         /* reset: the new offset */
};

struct admin_table {
    const char *group;      /* not owned */
    const char *topic;      /* not owned */
    struct admin_row *rows; /* sorted by partition */
    size_t n;
};

struct admin_member {
    char *client_id;
    char *consumer_id;
    char *host;
};

struct admin_group {
    char *state;            /* "Empty", "Stable", "Dead", ... */
    bool active;            /* not Empty/Dead, or members > 0 */
    struct admin_member *members;
    size_t n;
};

/* admin_kafka.c */
/* Connects with o->brokers, else ctx->cfg's; ctx->cfg's security settings apply. */
int admin_connect(struct admin_ctx *ctx, const struct admin_opts *o, char *err, size_t errlen);
void admin_disconnect(struct admin_ctx *ctx);
/* Fills t->rows with the topic's partitions, offsets unknown. */
int admin_partitions(struct admin_ctx *ctx, struct admin_table *t, char *err, size_t errlen);
/* Fills rows[].committed for t->group. */
int admin_committed(struct admin_ctx *ctx, struct admin_table *t, char *err, size_t errlen);
/* ListOffsets: spec is RD_KAFKA_OFFSET_SPEC_LATEST/EARLIEST or a timestamp (ms). Writes the
 * offset found per row into rows[].end (is_end) or rows[].target; -1 when none. */
int admin_list_offsets(struct admin_ctx *ctx, struct admin_table *t, int64_t spec, bool is_end,
                       char *err, size_t errlen);
/* AlterConsumerGroupOffsets: commits rows[].target for t->group. */
int admin_alter(struct admin_ctx *ctx, const struct admin_table *t, char *err, size_t errlen);
int admin_describe_group(struct admin_ctx *ctx, const char *group, struct admin_group *g,
                         char *err, size_t errlen);
int admin_delete_group(struct admin_ctx *ctx, const char *group, char *err, size_t errlen);

void admin_table_free(struct admin_table *t);
void admin_group_free(struct admin_group *g);

/* admin_offsets.c */
int admin_offsets_show(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                       size_t errlen);
int admin_offsets_reset(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                        size_t errlen);

/* admin_group.c: 0 when the group has no members; -1 with a message naming the members
 * and the killswitch flag that stops them. */
int admin_require_inactive(struct admin_ctx *ctx, const char *group, const char *doing,
                           char *err, size_t errlen);
int admin_group_delete(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                       size_t errlen);

/* admin.c: "2026-11-29T10:00:00Z", "...10:00:00.250+01:00" -> ms since the epoch. */
int admin_parse_datetime(const char *s, int64_t *ms);

#endif
