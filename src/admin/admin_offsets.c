/* admin_offsets.c: `cgw offsets show` and `cgw offsets reset`, as kafka-consumer-groups
 * --describe and --reset-offsets do them.
 *
 * Both build an admin_table per (group, topic): the topic's partitions, the group's committed
 * offset on each, and either the end offset (high watermark; lag = end - committed) or the
 * reset target. The target comes from ListOffsets: EARLIEST, LATEST, or a timestamp, where a
 * partition holding no record at or after that time goes to its end offset. A reset is a plan
 * printed as a table; only --execute commits it (AlterConsumerGroupOffsets), and only while
 * the group has no members (admin_require_inactive).
 *
 * Output: a column table (kafka-consumer-groups' headings) or, with --json, one JSON object.
 * A partition without a committed offset shows "-" (null in JSON), as does its lag.
 */
#include <inttypes.h>
#include <string.h>

#include <jansson.h>

#include "admin/admin_internal.h"

/* ------------------------------------------------------------------ tables */

/* Partitions, committed offsets and the end offsets of (group, topic). */
static int load_show(struct admin_ctx *ctx, struct admin_table *t, char *err, size_t errlen) {
    if (admin_partitions(ctx, t, err, errlen) || admin_committed(ctx, t, err, errlen) ||
        admin_list_offsets(ctx, t, RD_KAFKA_OFFSET_SPEC_LATEST, true, err, errlen))
        return -1;
    return 0;
}

static int64_t lag_of(const struct admin_row *r) {
    if (r->committed == ADMIN_NO_OFFSET || r->end == ADMIN_NO_OFFSET) return ADMIN_NO_OFFSET;
    return r->end > r->committed ? r->end - r->committed : 0;
}

static int64_t total_lag(const struct admin_table *t) {
    int64_t sum = 0;
    for (size_t i = 0; i < t->n; i++)
        if (lag_of(&t->rows[i]) > 0) sum += lag_of(&t->rows[i]);
    return sum;
}

static const char *num(char *buf, size_t len, int64_t v) {
    if (v == ADMIN_NO_OFFSET) return "-";
    snprintf(buf, len, "%" PRId64, v);
    return buf;
}

static json_t *json_num(int64_t v) {
    return v == ADMIN_NO_OFFSET ? json_null() : json_integer((json_int_t)v);
}

/* ------------------------------------------------------------------ show */

static void print_show(FILE *out, const struct admin_table *t, const struct admin_group *g) {
    int gw = (int)strlen(t->group) > 5 ? (int)strlen(t->group) : 5;
    int tw = (int)strlen(t->topic) > 5 ? (int)strlen(t->topic) : 5;
    fprintf(out, "Group %s: state %s, %zu member%s\n\n", t->group, g->state, g->n,
            g->n == 1 ? "" : "s");
    fprintf(out, "%-*s  %-*s  %9s  %14s  %14s  %10s\n", gw, "GROUP", tw, "TOPIC", "PARTITION",
            "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG");
    for (size_t i = 0; i < t->n; i++) {
        const struct admin_row *r = &t->rows[i];
        char a[24], b[24], c[24];
        fprintf(out, "%-*s  %-*s  %9d  %14s  %14s  %10s\n", gw, t->group, tw, t->topic,
                (int)r->partition, num(a, sizeof a, r->committed), num(b, sizeof b, r->end),
                num(c, sizeof c, lag_of(r)));
    }
    fprintf(out, "\nTotal lag: %" PRId64 "\n", total_lag(t));
}

static json_t *json_show(const struct admin_table *t, const struct admin_group *g) {
    json_t *parts = json_array();
    for (size_t i = 0; i < t->n; i++) {
        const struct admin_row *r = &t->rows[i];
        json_array_append_new(parts, json_pack("{s:i, s:o, s:o, s:o}", "partition",
                                               (int)r->partition, "committed",
                                               json_num(r->committed), "end", json_num(r->end),
                                               "lag", json_num(lag_of(r))));
    }
    return json_pack("{s:s, s:s, s:s, s:i, s:I, s:o}", "group", t->group, "topic", t->topic,
                     "state", g->state, "members", (int)g->n, "lag", (json_int_t)total_lag(t),
                     "partitions", parts);
}

/* Shows one (group, topic); appends to arr in JSON mode. */
static int show_one(struct admin_ctx *ctx, const char *group, const char *topic, json_t *arr,
                    char *err, size_t errlen) {
    struct admin_table t = {.group = group, .topic = topic};
    struct admin_group g = {0};
    int rc = load_show(ctx, &t, err, errlen) ||
                     admin_describe_group(ctx, group, &g, err, errlen)
                 ? -1
                 : 0;
    if (rc == 0 && arr) json_array_append_new(arr, json_show(&t, &g));
    else if (rc == 0) print_show(ctx->out, &t, &g);
    admin_table_free(&t);
    admin_group_free(&g);
    return rc;
}

int admin_offsets_show(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                       size_t errlen) {
    const char *pairs[2][2] = {{o->group, o->topic}, {NULL, NULL}};
    size_t n = 1;
    if (!o->group) {
        const struct cgw_config *c = ctx->cfg;
        pairs[0][0] = c->consumers.receipt.group, pairs[0][1] = c->consumers.receipt.topic;
        pairs[1][0] = c->consumers.factoid.group, pairs[1][1] = c->consumers.factoid.topic;
        n = 2;
    }
    json_t *arr = o->json ? json_array() : NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0 && !arr) fputc('\n', ctx->out);
        rc = show_one(ctx, pairs[i][0], pairs[i][1], arr, err, errlen);
    }
    if (rc == 0 && arr) {
        json_t *root = json_pack("{s:o}", "groups", arr);
        json_dumpf(root, ctx->out, JSON_INDENT(2));
        fputc('\n', ctx->out);
        json_decref(root);
    } else if (arr) {
        json_decref(arr);
    }
    return rc;
}

/* ------------------------------------------------------------------ reset */

static int64_t spec_of(const struct admin_opts *o) {
    switch (o->to) {
    case ADMIN_TO_EARLIEST: return RD_KAFKA_OFFSET_SPEC_EARLIEST;
    case ADMIN_TO_DATETIME: return o->to_ms;
    default: return RD_KAFKA_OFFSET_SPEC_LATEST;
    }
}

/* Fills rows[].target; with a time, a partition without a later record gets its end. */
static int plan_targets(struct admin_ctx *ctx, struct admin_table *t, const struct admin_opts *o,
                        char *err, size_t errlen) {
    if (admin_list_offsets(ctx, t, spec_of(o), false, err, errlen)) return -1;
    if (o->to == ADMIN_TO_DATETIME &&
        admin_list_offsets(ctx, t, RD_KAFKA_OFFSET_SPEC_LATEST, true, err, errlen))
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        struct admin_row *r = &t->rows[i];
        if (r->target == ADMIN_NO_OFFSET && o->to == ADMIN_TO_DATETIME) r->target = r->end;
        if (r->target == ADMIN_NO_OFFSET) {
            snprintf(err, errlen, "topic %s [%d]: no offset to reset to", t->topic,
                     (int)r->partition);
            return -1;
        }
    }
    return 0;
}

static void print_plan(FILE *out, const struct admin_table *t) {
    int gw = (int)strlen(t->group) > 5 ? (int)strlen(t->group) : 5;
    int tw = (int)strlen(t->topic) > 5 ? (int)strlen(t->topic) : 5;
    fprintf(out, "%-*s  %-*s  %9s  %14s  %10s\n", gw, "GROUP", tw, "TOPIC", "PARTITION",
            "CURRENT-OFFSET", "NEW-OFFSET");
    for (size_t i = 0; i < t->n; i++) {
        const struct admin_row *r = &t->rows[i];
        char a[24], b[24];
        fprintf(out, "%-*s  %-*s  %9d  %14s  %10s\n", gw, t->group, tw, t->topic,
                (int)r->partition, num(a, sizeof a, r->committed), num(b, sizeof b, r->target));
    }
}

static void json_plan(FILE *out, const struct admin_table *t, bool executed) {
    json_t *parts = json_array();
    for (size_t i = 0; i < t->n; i++) {
        const struct admin_row *r = &t->rows[i];
        json_array_append_new(parts, json_pack("{s:i, s:o, s:o}", "partition",
                                               (int)r->partition, "committed",
                                               json_num(r->committed), "new",
                                               json_num(r->target)));
    }
    json_t *root = json_pack("{s:s, s:s, s:b, s:o}", "group", t->group, "topic", t->topic,
                             "executed", executed, "partitions", parts);
    json_dumpf(root, out, JSON_INDENT(2));
    fputc('\n', out);
    json_decref(root);
}

static int reset_table(struct admin_ctx *ctx, const struct admin_opts *o, struct admin_table *t,
                       char *err, size_t errlen) {
    if (admin_require_inactive(ctx, o->group, "reset the offsets of", err, errlen) ||
        admin_partitions(ctx, t, err, errlen) || admin_committed(ctx, t, err, errlen) ||
        plan_targets(ctx, t, o, err, errlen))
        return -1;
    if (o->execute && admin_alter(ctx, t, err, errlen)) return -1;
    if (o->json) {
        json_plan(ctx->out, t, o->execute);
        return 0;
    }
    print_plan(ctx->out, t);
    if (o->execute)
        fprintf(ctx->out, "\nCommitted the new offsets of group %s on %zu partition%s of %s.\n",
                t->group, t->n, t->n == 1 ? "" : "s", t->topic);
    else
        fprintf(ctx->out, "\nDry run: nothing changed. Add --execute to commit these offsets.\n");
    return 0;
}

int admin_offsets_reset(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                        size_t errlen) {
    struct admin_table t = {.group = o->group, .topic = o->topic};
    int rc = reset_table(ctx, o, &t, err, errlen);
    admin_table_free(&t);
    return rc;
}
