/* admin_kafka.c: the Admin API requests the offset tools make, one function per request.
 *
 * Each request goes out with a request timeout and its result is awaited on the context's
 * own queue, so the calls are synchronous and run one at a time. Results are copied into the
 * plain structs of admin_internal.h (rows keyed by partition) and the librdkafka event is
 * released before returning: callers never see librdkafka objects. Errors, including a
 * per-partition or per-group error inside a successful event, become one message.
 */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "kafka/kafka.h"

/* ------------------------------------------------------------------ connection */

/* librdkafka's own errors (broker down, authentication) go to err as they happen. */
static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    FILE *err = kafka_user(rk);
    if (level <= 3 && err) fprintf(err, "cgw: kafka: %s: %s\n", fac, buf);
}

static rd_kafka_conf_t *new_conf(struct admin_ctx *ctx, const char *brokers, char *err,
                                 size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ctx->link = (struct kafka_link){ ctx->auth, ctx->err };
    if ((ctx->cfg && kafka_conf_apply(conf, ctx->cfg, &ctx->link, err, errlen)) ||
        kafka_conf_set(conf, "bootstrap.servers", brokers, err, errlen) ||
        kafka_conf_set(conf, "client.id", "cgw-admin", err, errlen) ||
        kafka_conf_set(conf, "allow.auto.create.topics", "false", err, errlen) ||
        kafka_conf_set(conf, "log.connection.close", "false", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (!ctx->cfg) rd_kafka_conf_set_opaque(conf, &ctx->link);
    rd_kafka_conf_set_log_cb(conf, kafka_log);
    return conf;
}

int admin_connect(struct admin_ctx *ctx, const struct admin_opts *o, char *err, size_t errlen) {
    ctx->timeout_ms = o->timeout_ms;
    if (ctx->cfg && kafka_auth_new(ctx->cfg, &ctx->auth, err, errlen) < 0) return -1;
    const char *brokers = o->brokers ? o->brokers : kafka_auth_brokers(ctx->auth);
    rd_kafka_conf_t *conf = new_conf(ctx, brokers, err, errlen);
    if (!conf) return -1;
    char e[512];
    ctx->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!ctx->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "kafka: %s", e);
        return -1;
    }
    if (kafka_handle_started(ctx->rk, &ctx->link, err, errlen) < 0) return -1;
    ctx->q = rd_kafka_queue_new(ctx->rk);
    return 0;
}

void admin_disconnect(struct admin_ctx *ctx) {
    if (ctx->q) rd_kafka_queue_destroy(ctx->q);
    if (ctx->rk) rd_kafka_destroy(ctx->rk);
    kafka_auth_free(ctx->auth);
    ctx->q = NULL;
    ctx->rk = NULL;
    ctx->auth = NULL;
}

/* ------------------------------------------------------------------ requests */

static rd_kafka_AdminOptions_t *options(struct admin_ctx *ctx, rd_kafka_admin_op_t op) {
    char e[256];
    rd_kafka_AdminOptions_t *opt = rd_kafka_AdminOptions_new(ctx->rk, op);
    rd_kafka_AdminOptions_set_request_timeout(opt, ctx->timeout_ms, e, sizeof e);
    return opt;
}

/* Waits for the result of the request just sent; consumes opt. NULL (and err) on failure. */
static rd_kafka_event_t *await(struct admin_ctx *ctx, rd_kafka_AdminOptions_t *opt,
                               const char *what, char *err, size_t errlen) {
    rd_kafka_event_t *ev = rd_kafka_queue_poll(ctx->q, ctx->timeout_ms + 5000);
    rd_kafka_AdminOptions_destroy(opt);
    if (!ev) {
        snprintf(err, errlen, "%s: no answer within %d ms", what, ctx->timeout_ms + 5000);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "%s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static struct admin_row *row_of(struct admin_table *t, int32_t partition) {
    for (size_t i = 0; i < t->n; i++)
        if (t->rows[i].partition == partition) return &t->rows[i];
    return NULL;
}

static rd_kafka_topic_partition_list_t *partition_list(const struct admin_table *t) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)t->n);
    for (size_t i = 0; i < t->n; i++)
        rd_kafka_topic_partition_list_add(l, t->topic, t->rows[i].partition);
    return l;
}

static int cmp_row(const void *a, const void *b) {
    int32_t x = ((const struct admin_row *)a)->partition;
    int32_t y = ((const struct admin_row *)b)->partition;
    return (x > y) - (x < y);
}

static int copy_partitions(struct admin_table *t, const rd_kafka_TopicDescription_t *d,
                           char *err, size_t errlen) {
    const rd_kafka_error_t *e = rd_kafka_TopicDescription_error(d);
    if (e) {
        snprintf(err, errlen, "topic %s: %s", t->topic, rd_kafka_error_string(e));
        return -1;
    }
    size_t n = 0;
    const rd_kafka_TopicPartitionInfo_t **p = rd_kafka_TopicDescription_partitions(d, &n);
    t->rows = calloc(n ? n : 1, sizeof *t->rows);
    if (!t->rows) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    t->n = n;
    for (size_t i = 0; i < n; i++)
        t->rows[i] = (struct admin_row){rd_kafka_TopicPartitionInfo_partition(p[i]),
                                        ADMIN_NO_OFFSET, ADMIN_NO_OFFSET, ADMIN_NO_OFFSET};
    qsort(t->rows, n, sizeof *t->rows, cmp_row);
    return 0;
}

int admin_partitions(struct admin_ctx *ctx, struct admin_table *t, char *err, size_t errlen) {
    const char *names[1] = {t->topic};
    rd_kafka_TopicCollection_t *tc = rd_kafka_TopicCollection_of_topic_names(names, 1);
    rd_kafka_AdminOptions_t *opt = options(ctx, RD_KAFKA_ADMIN_OP_DESCRIBETOPICS);
    rd_kafka_DescribeTopics(ctx->rk, tc, opt, ctx->q);
    rd_kafka_TopicCollection_destroy(tc);
    rd_kafka_event_t *ev = await(ctx, opt, "describe topic", err, errlen);
    if (!ev) return -1;
    size_t n = 0;
    const rd_kafka_TopicDescription_t **d =
        rd_kafka_DescribeTopics_result_topics(rd_kafka_event_DescribeTopics_result(ev), &n);
    int rc = n == 1 ? copy_partitions(t, d[0], err, errlen) : -1;
    if (n != 1) snprintf(err, errlen, "topic %s: not described by the broker", t->topic);
    rd_kafka_event_destroy(ev);
    return rc;
}

/* The partitions of a group result; -1 with err when the group or a partition failed. */
static const rd_kafka_topic_partition_list_t *group_partitions(
    const rd_kafka_group_result_t **g, size_t n, const char *group, char *err, size_t errlen) {
    if (n != 1) {
        snprintf(err, errlen, "group %s: no result from the broker", group);
        return NULL;
    }
    if (rd_kafka_group_result_error(g[0])) {
        snprintf(err, errlen, "group %s: %s", group,
                 rd_kafka_error_string(rd_kafka_group_result_error(g[0])));
        return NULL;
    }
    const rd_kafka_topic_partition_list_t *l = rd_kafka_group_result_partitions(g[0]);
    for (int i = 0; l && i < l->cnt; i++)
        if (l->elems[i].err) {
            snprintf(err, errlen, "group %s: %s [%d]: %s", group, l->elems[i].topic,
                     (int)l->elems[i].partition, rd_kafka_err2str(l->elems[i].err));
            return NULL;
        }
    return l;
}

int admin_committed(struct admin_ctx *ctx, struct admin_table *t, char *err, size_t errlen) {
    rd_kafka_topic_partition_list_t *l = partition_list(t);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(t->group, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_AdminOptions_t *opt = options(ctx, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_error_t *e = rd_kafka_AdminOptions_set_require_stable_offsets(opt, 1);
    if (e) rd_kafka_error_destroy(e);
    rd_kafka_ListConsumerGroupOffsets(ctx->rk, &req, 1, opt, ctx->q);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_event_t *ev = await(ctx, opt, "list committed offsets", err, errlen);
    if (!ev) return -1;
    size_t n = 0;
    const rd_kafka_group_result_t **g = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    const rd_kafka_topic_partition_list_t *res = group_partitions(g, n, t->group, err, errlen);
    for (int i = 0; res && i < res->cnt; i++) {
        struct admin_row *r = row_of(t, res->elems[i].partition);
        if (r && !strcmp(res->elems[i].topic, t->topic))
            r->committed = res->elems[i].offset >= 0 ? res->elems[i].offset : ADMIN_NO_OFFSET;
    }
    rd_kafka_event_destroy(ev);
    return res ? 0 : -1;
}

static int copy_list_offsets(struct admin_table *t, const rd_kafka_ListOffsetsResultInfo_t **ri,
                             size_t n, bool is_end, char *err, size_t errlen) {
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_topic_partition_t *tp =
            rd_kafka_ListOffsetsResultInfo_topic_partition(ri[i]);
        if (tp->err) {
            snprintf(err, errlen, "list offsets: %s [%d]: %s", tp->topic, (int)tp->partition,
                     rd_kafka_err2str(tp->err));
            return -1;
        }
        struct admin_row *r = row_of(t, tp->partition);
        if (!r) continue;
        int64_t off = tp->offset >= 0 ? tp->offset : ADMIN_NO_OFFSET;
        if (is_end) r->end = off;
        else r->target = off;
    }
    return 0;
}

int admin_list_offsets(struct admin_ctx *ctx, struct admin_table *t, int64_t spec, bool is_end,
                       char *err, size_t errlen) {
    rd_kafka_topic_partition_list_t *l = partition_list(t);
    for (int i = 0; i < l->cnt; i++) l->elems[i].offset = spec;
    rd_kafka_AdminOptions_t *opt = options(ctx, RD_KAFKA_ADMIN_OP_LISTOFFSETS);
    rd_kafka_ListOffsets(ctx->rk, l, opt, ctx->q);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_event_t *ev = await(ctx, opt, "list offsets", err, errlen);
    if (!ev) return -1;
    size_t n = 0;
    const rd_kafka_ListOffsetsResultInfo_t **ri =
        rd_kafka_ListOffsets_result_infos(rd_kafka_event_ListOffsets_result(ev), &n);
    int rc = copy_list_offsets(t, ri, n, is_end, err, errlen);
    rd_kafka_event_destroy(ev);
    return rc;
}

int admin_alter(struct admin_ctx *ctx, const struct admin_table *t, char *err, size_t errlen) {
    rd_kafka_topic_partition_list_t *l = partition_list(t);
    for (int i = 0; i < l->cnt; i++) l->elems[i].offset = t->rows[i].target;
    rd_kafka_AlterConsumerGroupOffsets_t *req = rd_kafka_AlterConsumerGroupOffsets_new(t->group, l);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_AdminOptions_t *opt = options(ctx, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
    rd_kafka_AlterConsumerGroupOffsets(ctx->rk, &req, 1, opt, ctx->q);
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    rd_kafka_event_t *ev = await(ctx, opt, "alter committed offsets", err, errlen);
    if (!ev) return -1;
    size_t n = 0;
    const rd_kafka_group_result_t **g = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    int rc = group_partitions(g, n, t->group, err, errlen) ? 0 : -1;
    rd_kafka_event_destroy(ev);
    return rc;
}

/* ------------------------------------------------------------------ groups */

static char *dup_or_empty(const char *s) {
    return strdup(s ? s : "");
}

static int copy_group(struct admin_group *g, const rd_kafka_ConsumerGroupDescription_t *d,
                      const char *group, char *err, size_t errlen) {
    const rd_kafka_error_t *e = rd_kafka_ConsumerGroupDescription_error(d);
    if (e) {
        snprintf(err, errlen, "group %s: %s", group, rd_kafka_error_string(e));
        return -1;
    }
    rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(d);
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    g->state = strdup(rd_kafka_consumer_group_state_name(st));
    g->members = calloc(n ? n : 1, sizeof *g->members);
    if (!g->state || !g->members) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    g->n = n;
    g->active = n > 0 || (st != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY &&
                          st != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        g->members[i].client_id = dup_or_empty(rd_kafka_MemberDescription_client_id(m));
        g->members[i].consumer_id = dup_or_empty(rd_kafka_MemberDescription_consumer_id(m));
        g->members[i].host = dup_or_empty(rd_kafka_MemberDescription_host(m));
    }
    return 0;
}

int admin_describe_group(struct admin_ctx *ctx, const char *group, struct admin_group *g,
                         char *err, size_t errlen) {
    const char *groups[1] = {group};
    rd_kafka_AdminOptions_t *opt = options(ctx, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_DescribeConsumerGroups(ctx->rk, groups, 1, opt, ctx->q);
    rd_kafka_event_t *ev = await(ctx, opt, "describe group", err, errlen);
    if (!ev) return -1;
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    int rc = n == 1 ? copy_group(g, d[0], group, err, errlen) : -1;
    if (n != 1) snprintf(err, errlen, "group %s: not described by the broker", group);
    rd_kafka_event_destroy(ev);
    return rc;
}

int admin_delete_group(struct admin_ctx *ctx, const char *group, char *err, size_t errlen) {
    rd_kafka_DeleteGroup_t *req = rd_kafka_DeleteGroup_new(group);
    rd_kafka_AdminOptions_t *opt = options(ctx, RD_KAFKA_ADMIN_OP_DELETEGROUPS);
    rd_kafka_DeleteGroups(ctx->rk, &req, 1, opt, ctx->q);
    rd_kafka_DeleteGroup_destroy(req);
    rd_kafka_event_t *ev = await(ctx, opt, "delete group", err, errlen);
    if (!ev) return -1;
    size_t n = 0;
    const rd_kafka_group_result_t **g =
        rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
    int rc = 0;
    if (n != 1 || rd_kafka_group_result_error(g[0])) {
        snprintf(err, errlen, "group %s: %s", group,
                 n != 1 ? "no result from the broker"
                        : rd_kafka_error_string(rd_kafka_group_result_error(g[0])));
        rc = -1;
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* ------------------------------------------------------------------ results */

void admin_table_free(struct admin_table *t) {
    free(t->rows);
    t->rows = NULL;
    t->n = 0;
}

void admin_group_free(struct admin_group *g) {
    for (size_t i = 0; i < g->n; i++) {
        free(g->members[i].client_id);
        free(g->members[i].consumer_id);
        free(g->members[i].host);
    }
    free(g->members);
    free(g->state);
    *g = (struct admin_group){0};
}
