/* src/cmd/dlq_cmd.c: `cgw dlq show` and `cgw dlq replay`, the operator's view of the
 * dead-letter topics (consumers.<name>.dlq_topic).
 *
 *   cgw dlq show   -c FILE [--consumer receipt|factoid]
 *   cgw dlq replay -c FILE --to-source [--consumer C] [--reason R] [--execute]
 *
 * show lists every dead letter with its reason, error and source coordinates, then the
 * count per reason. replay puts dead letters back on their source topic (original key,
 * value and headers) once their cause is fixed; without --execute it only prints what it
 * would replay. Dead letters stay in their topic (Kafka is append-only): replaying twice
 * writes the records twice, which the worker's idempotent writes absorb.
 * Reading and writing are src/kafka/dlq.c's; this file parses and prints.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "kafka/dlq.h"

#define DLQ_READ_TIMEOUT_MS 60000
#define DLQ_MAX_REASONS 16

typedef struct dlq_args {
    const char *config, *consumer, *reason;
    int show, to_source, execute;
} dlq_args;

typedef struct dlq_walk {
    const dlq_args *a;
    struct kafka_dlq *producer;    /* replay --execute only */
    long long total, selected, replayed;
    char reasons[DLQ_MAX_REASONS][64];
    long long counts[DLQ_MAX_REASONS];
    char err[512];
} dlq_walk;

static const char dlq_usage[] =
    "usage: cgw dlq show -c FILE [--consumer receipt|factoid]\n"
    "       cgw dlq replay -c FILE --to-source [--consumer C] [--reason R] [--execute]\n";

static int dlq_parse(int argc, char **argv, dlq_args *a) {
    memset(a, 0, sizeof *a);
    if (argc < 3) return -1;
    a->show = !strcmp(argv[2], "show");
    if (!a->show && strcmp(argv[2], "replay") != 0) return -1;
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i];
        int has_value = i + 1 < argc;
        if ((!strcmp(o, "-c") || !strcmp(o, "--config")) && has_value) a->config = argv[++i];
        else if (!strcmp(o, "--consumer") && has_value) a->consumer = argv[++i];
        else if (!strcmp(o, "--reason") && has_value && !a->show) a->reason = argv[++i];
        else if (!strcmp(o, "--to-source") && !a->show) a->to_source = 1;
        else if (!strcmp(o, "--execute") && !a->show) a->execute = 1;
        else return -1;
    }
    if (!a->config || (!a->show && !a->to_source)) return -1;
    if (a->consumer && strcmp(a->consumer, "receipt") != 0 && strcmp(a->consumer, "factoid") != 0)
        return -1;
    return 0;
}

static void dlq_count(dlq_walk *w, const char *reason) {
    int i = 0;
    while (i < DLQ_MAX_REASONS && w->reasons[i][0] && strcmp(w->reasons[i], reason) != 0) i++;
    if (i == DLQ_MAX_REASONS) return;
    if (!w->reasons[i][0]) snprintf(w->reasons[i], sizeof w->reasons[i], "%s", reason);
    w->counts[i]++;
}

/* One dead letter: printed, and replayed when asked. Stops the read on a replay failure. */
static int dlq_visit(void *ud, const rd_kafka_message_t *m) {
    dlq_walk *w = ud;
    char reason[64], error[300], topic[256], part[16], off[24];
    kafka_dlq_header(m, KAFKA_DLQ_H_REASON, reason, sizeof reason);
    w->total++;
    if (w->a->reason && strcmp(reason, w->a->reason) != 0) return 0;
    w->selected++;
    dlq_count(w, reason);
    printf("  %d:%lld reason=%s source=%s[%s]@%s error=\"%s\"\n", (int)m->partition,
           (long long)m->offset, reason[0] ? reason : "-",
           kafka_dlq_header(m, KAFKA_DLQ_H_TOPIC, topic, sizeof topic),
           kafka_dlq_header(m, KAFKA_DLQ_H_PARTITION, part, sizeof part),
           kafka_dlq_header(m, KAFKA_DLQ_H_OFFSET, off, sizeof off),
           kafka_dlq_header(m, KAFKA_DLQ_H_ERROR, error, sizeof error));
    if (!w->producer) return 0;
    if (kafka_dlq_replay(w->producer, &m, 1, w->err, sizeof w->err) != 0) return 1;
    w->replayed++;
    return 0;
}

static int dlq_one(const struct cgw_config *cfg, const char *name, const char *topic,
                   const dlq_args *a, struct kafka_dlq *producer) {
    dlq_walk w = {.a = a, .producer = producer};
    char err[512] = "";
    printf("%s consumer, dead-letter topic %s:\n", name, topic);
    if (kafka_dlq_read(cfg, topic, DLQ_READ_TIMEOUT_MS, dlq_visit, &w, err, sizeof err) != 0) {
        fprintf(stderr, "cgw dlq: %s\n", err);
        return 1;
    }
    if (w.err[0]) {
        fprintf(stderr, "cgw dlq: replay stopped after %lld records: %s\n", w.replayed, w.err);
        return 1;
    }
    printf("  %lld dead letters", w.total);
    for (int i = 0; i < DLQ_MAX_REASONS && w.reasons[i][0]; i++)
        printf("%s %s %lld", i ? "," : ":", w.reasons[i], w.counts[i]);
    printf("\n");
    if (!a->show)
        printf(a->execute ? "  replayed %lld to their source topics\n"
                          : "  would replay %lld to their source topics (add --execute)\n",
               a->execute ? w.replayed : w.selected);
    return 0;
}

static int dlq_all(const struct cgw_config *cfg, const dlq_args *a, struct kafka_dlq *producer) {
    const struct config_consumer *cs[2] = {&cfg->consumers.receipt, &cfg->consumers.factoid};
    const char *names[2] = {"receipt", "factoid"};
    int rc = 0, seen = 0;
    for (int i = 0; i < 2; i++) {
        if (a->consumer && strcmp(a->consumer, names[i]) != 0) continue;
        if (!cs[i]->dlq_topic) continue;
        seen = 1;
        rc |= dlq_one(cfg, names[i], cs[i]->dlq_topic, a, producer);
    }
    if (!seen) {
        fprintf(stderr, "cgw dlq: no consumers.%s.dlq_topic in the configuration\n",
                a->consumer ? a->consumer : "<name>");
        return 1;
    }
    return rc;
}

int cmd_dlq(int argc, char **argv) {
    dlq_args a;
    struct cgw_config *cfg = NULL;
    struct kafka_dlq *producer = NULL;
    char err[1024];
    int rc;
    if (dlq_parse(argc, argv, &a) != 0) {
        fputs(dlq_usage, stderr);
        return 2;
    }
    if (config_load(a.config, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cgw: %s\n", err);
        return 2;
    }
    if (a.execute) {
        struct kafka_dlq_options o;
        kafka_dlq_options_init(&o);
        o.cfg = cfg;
        o.client_suffix = "dlq-replay";
        if (!(producer = kafka_dlq_new(&o, err, sizeof err))) {
            fprintf(stderr, "cgw dlq: %s\n", err);
            config_free(cfg);
            return 1;
        }
    }
    rc = dlq_all(cfg, &a, producer);
    kafka_dlq_free(producer);
    config_free(cfg);
    return rc;
}
