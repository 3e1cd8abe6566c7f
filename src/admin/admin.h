/* admin.h: the operator's offset and group tools, `cgw offsets ...` and `cgw group ...`.
 *
 * They do what kafka-consumer-groups does for the worker's two consumer groups, through
 * librdkafka's Admin API, with the brokers and security settings of the worker's own
 * configuration file (-c FILE) or a bare --brokers HOST:PORT:
 *
 *     cgw offsets show  [-c FILE | --brokers B] [--group G [--topic T]] [--json]
 *     cgw offsets reset [-c FILE | --brokers B] --group G --topic T
 *                       (--to-datetime ISO8601 | --to-earliest | --to-latest) [--execute]
 *     cgw group delete  [-c FILE | --brokers B] --group G [--execute]
 *
 * Reset and delete refuse while the group has members (README §8: the consumer is stopped by
 * its killswitch flag first). Without --execute they only print what they would do.
 *
 * src/cmd/main.c hands `cgw offsets ...` and `cgw group ...` to admin_main(); the rest of the
 * worker does not use this subsystem.
 */
#ifndef CGW_ADMIN_H
#define CGW_ADMIN_H

#include <stdio.h>

/* argv starts at the sub-command: {"offsets", "show", "-c", "x.yaml"}. Prints results on
 * stdout, errors on stderr. Returns the process exit status: 0 done, 1 refused or failed,
 * 2 usage error. Never exits. */
int admin_main(int argc, char **argv);

/* The same writing to out and err (tests capture both). */
int admin_run(int argc, char **argv, FILE *out, FILE *err);

#endif
