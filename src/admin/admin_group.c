/* admin_group.c: the guard that keeps offset resets and group deletes away from a running
 * consumer, and `cgw group delete`.
 *
 * README §8: a group's offsets are reset, or the group deleted, while its consumer is stopped
 * by its killswitch flag. The guard asks DescribeConsumerGroups and refuses unless the group
 * is Empty or Dead with no members; the refusal names the members (client id, member id,
 * host) and the flag to turn on. The broker would also reject committing offsets for a group
 * with members, but its error says nothing about how to stop them.
 */
#include <string.h>

#include "admin/admin_internal.h"

#define MEMBERS_LISTED 8

/* The killswitch flag(s) to name for group: the configured consumer's when known. */
static void killswitch_hint(const struct cgw_config *cfg, const char *group, char *buf,
                            size_t len) {
    if (cfg && !strcmp(group, cfg->consumers.receipt.group)) {
        snprintf(buf, len, "turn on the receipt consumer's killswitch flag %s",
                 cfg->flags.receipt_killswitch_flag);
    } else if (cfg && !strcmp(group, cfg->consumers.factoid.group)) {
        snprintf(buf, len, "turn on the factoid consumer's killswitch flag %s",
                 cfg->flags.factoid_killswitch_flag);
    } else {
        snprintf(buf, len,
                 "turn on the consumer's killswitch flag (%s for the receipt consumer, %s "
                 "for the factoid consumer)",
                 cfg ? cfg->flags.receipt_killswitch_flag : "consumer_graph_receipt_killswitch",
                 cfg ? cfg->flags.factoid_killswitch_flag : "consumer_graph_factoid_killswitch");
    }
}

/* "client-id (member id, host), ..." for the first MEMBERS_LISTED members. */
static void member_list(const struct admin_group *g, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < g->n && i < MEMBERS_LISTED && used < len; i++) {
        const struct admin_member *m = &g->members[i];
        int k = snprintf(buf + used, len - used, "%s%s (member id %s, host %s)", i ? ", " : "",
                         m->client_id, m->consumer_id, m->host);
        used += k > 0 ? (size_t)k : 0;
    }
    if (g->n > MEMBERS_LISTED && used < len)
        snprintf(buf + used, len - used, " and %zu more", g->n - MEMBERS_LISTED);
}

static void refusal(const struct admin_ctx *ctx, const char *group, const char *doing,
                    const struct admin_group *g, char *err, size_t errlen) {
    char members[1536], hint[512];
    member_list(g, members, sizeof members);
    killswitch_hint(ctx->cfg, group, hint, sizeof hint);
    snprintf(err, errlen,
             "refusing to %s group %s: it is active (state %s, %zu member%s%s%s).\n"
             "Stop its consumers first: %s, then wait until `cgw offsets show` reports "
             "the group with state Empty and 0 members, and run this again.",
             doing, group, g->state, g->n, g->n == 1 ? "" : "s", g->n ? ": " : "", members,
             hint);
}

/* Describes group into g and refuses (-1) when it is active; g is filled either way. */
static int describe_inactive(struct admin_ctx *ctx, const char *group, const char *doing,
                             struct admin_group *g, char *err, size_t errlen) {
    if (admin_describe_group(ctx, group, g, err, errlen)) return -1;
    if (g->active) {
        refusal(ctx, group, doing, g, err, errlen);
        return -1;
    }
    return 0;
}

int admin_require_inactive(struct admin_ctx *ctx, const char *group, const char *doing,
                           char *err, size_t errlen) {
    struct admin_group g = {0};
    int rc = describe_inactive(ctx, group, doing, &g, err, errlen);
    admin_group_free(&g);
    return rc;
}

static int delete_inactive(struct admin_ctx *ctx, const struct admin_opts *o,
                           const struct admin_group *g, char *err, size_t errlen) {
    if (!strcmp(g->state, "Dead")) {
        snprintf(err, errlen, "group %s does not exist", o->group);
        return -1;
    }
    if (!o->execute) {
        fprintf(ctx->out,
                "Dry run: group %s (state %s, no members) would be deleted with its committed "
                "offsets. Add --execute to delete it.\n",
                o->group, g->state);
        return 0;
    }
    if (admin_delete_group(ctx, o->group, err, errlen)) return -1;
    fprintf(ctx->out, "Deleted group %s.\n", o->group);
    return 0;
}

int admin_group_delete(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                       size_t errlen) {
    struct admin_group g = {0};
    int rc = describe_inactive(ctx, o->group, "delete", &g, err, errlen);
    if (rc == 0) rc = delete_inactive(ctx, o, &g, err, errlen);
    admin_group_free(&g);
    return rc;
}
