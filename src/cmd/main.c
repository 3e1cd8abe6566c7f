/* src/cmd/main.c: the cgw command line. Parses the sub-command and hands over to the
 * subsystem that implements it; nothing below main() exits the process. */
#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

static const char usage[] =
    "usage: cgw <command> [options]\n"
    "\n"
    "Keeps a Neo4j purchase graph current from the ProcessedReceiptEvent and factoid-stream\n"
    "Kafka topics (see README.md).\n"
    "\n"
    "commands:\n"
    "  run -c FILE        run the worker with the configuration FILE\n"
    "  --version          print the version and the versions of the libraries linked in\n"
    "  --help             this text\n";

static void print_version(void) {
    printf("cgw %s (%s), librdkafka %s\n", CGW_VERSION, CGW_GIT_REV, rd_kafka_version_str());
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
    fprintf(stderr, "cgw: unknown command '%s'\n\n%s", argv[1], usage);
    return 2;
}
