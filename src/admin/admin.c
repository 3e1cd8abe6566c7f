/* admin.c: the command line of `cgw offsets ...` and `cgw group ...` (see admin.h).
 *
 * Parses the options into an admin_opts, checks that they make one complete command (any
 * mistake is a usage error, exit 2, before anything is sent to Kafka), connects an admin
 * client with the configuration's brokers and security settings, and runs the action. An
 * action that fails or refuses returns 1 with its message on err.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "admin/admin.h"
#include "admin/admin_internal.h"
#include "kafka/kafka.h"
#include "log/log.h"

static const char usage[] =
    "usage: cgw offsets show  (-c FILE | --brokers HOST:PORT) [--group G --topic T] [--json]\n"
    "       cgw offsets reset (-c FILE | --brokers HOST:PORT) --group G --topic T\n"
    "                         (--to-datetime TIME | --to-earliest | --to-latest)\n"
    "                         [--execute] [--json]\n"
    "       cgw group delete  (-c FILE | --brokers HOST:PORT) --group G [--execute]\n"
    "\n"
    "Offsets of the worker's consumer groups, as kafka-consumer-groups shows and resets them.\n"
    "\n"
    "  offsets show    per partition: committed offset, end offset (high watermark), lag;\n"
    "                  without --group/--topic, for both consumers of the configuration\n"
    "  offsets reset   print the new offset of each partition; --execute commits them.\n"
    "                  --to-datetime TIME: the first record at or after TIME (the end offset\n"
    "                  when there is none), TIME as 2026-11-29T10:00:00Z, optionally with\n"
    "                  .mmm and a +HH:MM/-HH:MM offset instead of Z\n"
    "  group delete    delete the group and its committed offsets (with --execute)\n"
    "\n"
    "  -c, --config FILE    brokers and security settings from the worker's configuration\n"
    "  --brokers HOST:PORT  brokers (plaintext); overrides the configuration's\n"
    "  --json               machine-readable output\n"
    "  --timeout-ms MS      per-request timeout (default 15000)\n"
    "\n"
    "Reset and delete refuse while the group has members: stop the consumer first by turning\n"
    "on its killswitch flag (consumer_graph_receipt_killswitch or\n"
    "consumer_graph_factoid_killswitch) and wait until the group is empty.\n"
    "Exit status: 0 done, 1 refused or failed, 2 usage error.\n";

/* ------------------------------------------------------------------ datetime */

/* Digits where the template has 'd', the template's character elsewhere. */
static bool matches(const char *s, const char *tmpl) {
    for (; *tmpl; s++, tmpl++) {
        if (*tmpl == 'd' ? !isdigit((unsigned char)*s) : *s != *tmpl) return false;
    }
    return true;
}

static int days_in_month(int y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

/* ".250" -> 250 ms; advances *p. Up to 9 digits, the first 3 count. */
static int parse_fraction(const char **p, int *ms) {
    *ms = 0;
    if (**p != '.') return 0;
    int digits = 0;
    for ((*p)++; isdigit((unsigned char)**p); (*p)++, digits++)
        if (digits < 3) *ms = *ms * 10 + (**p - '0');
    if (digits == 0 || digits > 9) return -1;
    for (int i = digits; i < 3; i++) *ms *= 10;
    return 0;
}

/* "Z" -> 0, "+01:30" -> 90 (minutes east of UTC). */
static int parse_zone(const char *p, int *minutes) {
    if (!strcmp(p, "Z")) {
        *minutes = 0;
        return 0;
    }
    if ((*p != '+' && *p != '-') || strlen(p) != 6 || !matches(p + 1, "dd:dd")) return -1;
    int h = atoi(p + 1), m = atoi(p + 4);
    if (h > 23 || m > 59) return -1;
    *minutes = (*p == '-' ? -1 : 1) * (h * 60 + m);
    return 0;
}

int admin_parse_datetime(const char *s, int64_t *ms) {
    if (strlen(s) < 19 || !matches(s, "dddd-dd-ddTdd:dd:dd")) return -1;
    struct tm tm = {0};
    tm.tm_year = atoi(s) - 1900;
    tm.tm_mon = atoi(s + 5) - 1;
    tm.tm_mday = atoi(s + 8);
    tm.tm_hour = atoi(s + 11);
    tm.tm_min = atoi(s + 14);
    tm.tm_sec = atoi(s + 17);
    if (tm.tm_year < 70 || tm.tm_mon > 11 || tm.tm_mon < 0 || tm.tm_mday < 1 ||
        tm.tm_mday > days_in_month(tm.tm_year + 1900, tm.tm_mon + 1) || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 59)
        return -1;
    const char *p = s + 19;
    int frac = 0, zone = 0;
    if (parse_fraction(&p, &frac) || parse_zone(p, &zone)) return -1;
    int64_t v = (int64_t)timegm(&tm) * 1000 + frac - (int64_t)zone * 60000;
    if (v < 0) return -1;
    *ms = v;
    return 0;
}

/* ------------------------------------------------------------------ options */

static int usage_error(FILE *err, const char *fmt, const char *arg) {
    fputs("cgw: ", err);
    fprintf(err, fmt, arg);
    fputs("\n(cgw offsets --help for the usage)\n", err);
    return 2;
}

/* The value of the option at argv[*i] ("--opt V" or "--opt=V"); NULL when it is not name. */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *missing) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

static int set_to(struct admin_opts *o, enum admin_reset_to to, FILE *err, const char *arg) {
    if (o->to != ADMIN_TO_NONE)
        return usage_error(err, "%s: give only one of --to-datetime, --to-earliest, --to-latest",
                           arg);
    o->to = to;
    return 0;
}

static int parse_valued(struct admin_opts *o, const char *name, const char *v, FILE *err) {
    if (!strcmp(name, "-c") || !strcmp(name, "--config")) o->config_path = v;
    else if (!strcmp(name, "--brokers")) o->brokers = v;
    else if (!strcmp(name, "--group")) o->group = v;
    else if (!strcmp(name, "--topic")) o->topic = v;
    else if (!strcmp(name, "--timeout-ms")) {
        char *end = NULL;
        long ms = strtol(v, &end, 10);
        if (!*v || *end || ms < 100 || ms > 600000)
            return usage_error(err, "--timeout-ms: expected 100..600000, got \"%s\"", v);
        o->timeout_ms = (int)ms;
    } else {
        if (set_to(o, ADMIN_TO_DATETIME, err, name)) return 2;
        if (admin_parse_datetime(v, &o->to_ms))
            return usage_error(err,
                               "--to-datetime: expected a time like 2026-11-29T10:00:00Z, "
                               "got \"%s\"", v);
    }
    return 0;
}

static const char *const valued[] = {"-c", "--config", "--brokers", "--group", "--topic",
                                     "--to-datetime", "--timeout-ms"};

/* One argument (or option and value) at argv[*i]; 1 for --help, 2 for a usage error. */
static int parse_arg(struct admin_opts *o, int argc, char **argv, int *i, FILE *err) {
    const char *a = argv[*i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
    if (!strcmp(a, "--execute")) o->execute = true;
    else if (!strcmp(a, "--json")) o->json = true;
    else if (!strcmp(a, "--to-earliest")) return set_to(o, ADMIN_TO_EARLIEST, err, a);
    else if (!strcmp(a, "--to-latest")) return set_to(o, ADMIN_TO_LATEST, err, a);
    else {
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) {
            bool missing = false;
            const char *v = option_value(argc, argv, i, valued[k], &missing);
            if (missing) return usage_error(err, "%s: missing value", valued[k]);
            if (v) return parse_valued(o, valued[k], v, err);
        }
        return usage_error(err, "unknown argument \"%s\"", a);
    }
    return 0;
}

/* What each action accepts; a usage error names the first thing that does not fit. */
static int check_opts(const struct admin_opts *o, FILE *err) {
    bool show = !strcmp(o->action, "show"), reset = !strcmp(o->action, "reset");
    if (!o->config_path && !o->brokers)
        return usage_error(err, "%s: give -c FILE or --brokers HOST:PORT", o->action);
    if (!reset && o->to != ADMIN_TO_NONE)
        return usage_error(err, "%s: --to-* options belong to offsets reset", o->action);
    if (show && o->execute) return usage_error(err, "%s: --execute has nothing to do", "show");
    if (show && !o->group != !o->topic)
        return usage_error(err, "%s: give --group and --topic together, or neither", "show");
    if (show && !o->group && !o->config_path)
        return usage_error(err, "%s: without --group/--topic, -c FILE names the consumers",
                           "show");
    if (!show && !o->group) return usage_error(err, "%s: --group is required", o->action);
    if (reset && !o->topic) return usage_error(err, "%s: --topic is required", "reset");
    if (reset && o->to == ADMIN_TO_NONE)
        return usage_error(err, "%s: give --to-datetime, --to-earliest or --to-latest", "reset");
    if (!show && !reset && (o->topic || o->json))
        return usage_error(err, "%s: takes no --topic or --json", "group delete");
    return 0;
}

static bool known_action(const char *command, const char *action) {
    if (!strcmp(command, "offsets")) return !strcmp(action, "show") || !strcmp(action, "reset");
    if (!strcmp(command, "group")) return !strcmp(action, "delete");
    return false;
}

/* 0 parsed, 1 help asked, 2 usage error. */
static int parse(struct admin_opts *o, int argc, char **argv, FILE *err) {
    *o = (struct admin_opts){.timeout_ms = ADMIN_TIMEOUT_MS};
    if (argc < 1 || (strcmp(argv[0], "offsets") && strcmp(argv[0], "group")))
        return usage_error(err, "unknown command \"%s\"", argc < 1 ? "" : argv[0]);
    o->command = argv[0];
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) return argc < 2 ? 2 : 1;
    o->action = argv[1];
    if (!known_action(o->command, o->action))
        return usage_error(err, "unknown action \"%s\"", o->action);
    for (int i = 2; i < argc; i++) {
        int rc = parse_arg(o, argc, argv, &i, err);
        if (rc) return rc;
    }
    return check_opts(o, err);
}

/* ------------------------------------------------------------------ entry points */

static int run_action(struct admin_ctx *ctx, const struct admin_opts *o, char *err,
                      size_t errlen) {
    if (!strcmp(o->action, "show")) return admin_offsets_show(ctx, o, err, errlen);
    if (!strcmp(o->action, "reset")) return admin_offsets_reset(ctx, o, err, errlen);
    return admin_group_delete(ctx, o, err, errlen);
}

static int run_connected(struct admin_ctx *ctx, const struct admin_opts *o, FILE *err) {
    char msg[4096] = "";
    int rc = admin_connect(ctx, o, msg, sizeof msg) || run_action(ctx, o, msg, sizeof msg);
    admin_disconnect(ctx);
    if (rc) fprintf(err, "cgw: %s\n", msg);
    return rc ? 1 : 0;
}

int admin_run(int argc, char **argv, FILE *out, FILE *err) {
    struct admin_opts o;
    int rc = parse(&o, argc, argv, err);
    if (rc == 1 || (rc == 2 && argc < 2)) fputs(usage, rc == 1 ? out : err);
    if (rc) return rc == 1 ? 0 : 2;
    struct cgw_config *cfg = NULL;
    char msg[1024];
    /* The offset tools connect to Kafka only: its part of the configuration check applies. */
    if (o.config_path && (config_load(o.config_path, &cfg, msg, sizeof msg) != 0 ||
                          kafka_check_config(cfg, msg, sizeof msg) != 0)) {
        fprintf(err, "cgw: %s\n", msg);
        config_free(cfg);
        return 2;
    }
    struct admin_ctx ctx = {.out = out, .err = err, .cfg = cfg};
    rc = run_connected(&ctx, &o, err);
    config_free(cfg);
    fflush(out);
    return rc;
}

int admin_main(int argc, char **argv) {
    /* stdout is the tools' answer (--json is parsed by scripts): the service log lines of the
     * Kafka and AWS rooms (MSK brokers, credentials, token errors) go to stderr. */
    log_set_output(STDERR_FILENO);
    return admin_run(argc, argv, stdout, stderr);
}
