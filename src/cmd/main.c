/* src/cmd/main.c: the cgw command line. Parses the sub-command and hands over to the
 * subsystem that implements it; nothing below main() exits the process. `run` ends it with
 * _exit when the shutdown deadline passes with threads still blocked (pipeline_stop says so):
 * their resources cannot be freed under them, and nothing uncommitted is lost. */
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "admin/admin.h"
#include "cmd/cmd.h"
#include "config/config.h"
#include "log/log.h"
#include "pipeline/pipeline.h"

static const char usage[] =
    "usage: cgw <command> [options]\n"
    "\n"
    "Keeps a Neo4j purchase graph current from the ProcessedReceiptEvent and factoid-stream\n"
    "Kafka topics (see README.md).\n"
    "\n"
    "commands:\n"
    "  run -c FILE        run the worker with the configuration FILE\n"
    "  check-config -c FILE\n"
    "                     validate FILE and print the effective configuration (secrets redacted)\n"
    "  config-reference   print the reference of every configuration key (Markdown)\n"
    "  status [-c FILE | --url URL ...] [--json | --markdown | --html FILE]\n"
    "                     the live status page of running workers (several --url: summed)\n"
    "  offsets show|reset ...\n"
    "                     committed offsets, end offsets and lag; reset by time, to earliest or\n"
    "                     latest (cgw offsets --help)\n"
    "  group delete ...   delete a consumer group (cgw group --help)\n"
    "  dlq show -c FILE [--consumer C]\n"
    "                     list the dead letters of each consumer with their reasons\n"
    "  dlq replay -c FILE --to-source [--consumer C] [--reason R] [--execute]\n"
    "                     put dead letters back on their source topic (dry run by default)\n"
    "  --version          print the version and the versions of the libraries linked in\n"
    "  --help             this text\n";

static void print_version(void) {
    printf("cgw %s (%s), librdkafka %s\n", CGW_VERSION, CGW_GIT_REV, rd_kafka_version_str());
}

/* "-c FILE" or "--config FILE" among args; NULL when absent. */
static const char *config_arg(int argc, char **argv) {
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) return argv[i + 1];
    return NULL;
}

/* The one validation path of `run` and `check-config`: the file (config_load: types, ranges,
 * formats, cross-key rules) and then what each subsystem would refuse (pipeline_check_config),
 * before anything starts or connects. The message goes to stderr; exit status 2. */
static struct cgw_config *load_config(int argc, char **argv) {
    const char *path = config_arg(argc, argv);
    if (!path) {
        fprintf(stderr, "cgw %s: missing -c FILE\n", argv[1]);
        return NULL;
    }
    struct cgw_config *cfg = NULL;
    char err[1024];
    if (config_load(path, &cfg, err, sizeof err) != 0 || pipeline_check_config(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cgw: %s\n", err);
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Signals are taken by sigwait() in main only: worker threads never see them. */
/* Two glibc malloc settings for a long-running worker with a dozen threads (issue 14, peak
 * RSS with both consumers on 100 000 records each):
 * - glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed
 *   in one arena serves only that arena: ~6 MB of peak RSS (45.3 -> 39.2 MB with one arena).
 *   Two arenas keep that gain without making every thread queue on a single lock.
 * - glibc raises its mmap threshold to the size of any large block freed (a Bolt batch
 *   buffer, a Kafka fetch), after which such blocks come from the heap and leave holes in it;
 *   a fixed 256 KiB threshold (and 1 MiB trim threshold) returns them instead: 35.6 -> 34.1 MB.
 * MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment still
 * decide when set. */
static void tune_malloc(void) {
    if (!getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
    if (!getenv("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    if (!getenv("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

static int cmd_run(int argc, char **argv) {
    tune_malloc();
    struct cgw_config *cfg = load_config(argc, argv);
    if (!cfg) return 2;
    log_configure(cfg->log.format, cfg->log.level, cfg->service_name);
    for (size_t i = 0; i < cfg->deprecated_count; i++)
        LOG(LOG_WARN, "Deprecated configuration key; it has no effect",
            LOG_STR("key", cfg->deprecated[i]));
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    LOG(LOG_INFO, "Starting", LOG_STR("version", CGW_VERSION),
        LOG_STR("librdkafka", rd_kafka_version_str()), LOG_BOOL("log_only", cfg->log_only));
    struct pipeline *p = NULL;
    char err[1024] = "";
    int rc = 0;
    if (pipeline_new(cfg, &p, err, sizeof err) != 0 || pipeline_start(p, err, sizeof err) != 0) {
        LOG(LOG_ERROR, "[ERROR] Cannot start", LOG_STR("error", err));
        rc = 1;
    } else {
        int sig = 0;
        sigwait(&sigs, &sig);
        LOG(LOG_INFO, "Stopping: finishing the batches in flight", LOG_INT("signal", sig),
            LOG_INT("shutdown_timeout_ms", cfg->shutdown_timeout_ms));
        if (pipeline_stop(p) != 0) _exit(1);
    }
    pipeline_free(p);
    log_event(LOG_INFO, "Stopped", NULL);
    config_free(cfg);
    return rc;
}

static int cmd_check_config(int argc, char **argv) {
    struct cgw_config *cfg = load_config(argc, argv);
    if (!cfg) return 2;
    config_redacted_dump(cfg, stdout);
    config_free(cfg);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        print_version();
        return 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc, argv);
    if (!strcmp(argv[1], "check-config")) return cmd_check_config(argc, argv);
    if (!strcmp(argv[1], "status")) return cmd_status(argc, argv);
    if (!strcmp(argv[1], "dlq")) return cmd_dlq(argc, argv);
    if (!strcmp(argv[1], "offsets") || !strcmp(argv[1], "group"))
        return admin_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "config-reference") || !strcmp(argv[1], "--config-reference")) {
        config_write_reference(stdout);
        return 0;
    }
    fprintf(stderr, "cgw: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
