/* src/cmd/cmd.h: the sub-commands of the cgw binary that live in files of their own. Each
 * takes main's argc/argv (argv[1] is the sub-command) and returns the process exit code. */
#ifndef CGW_CMD_H
#define CGW_CMD_H

int cmd_status(int argc, char **argv);
/* `cgw dlq show|replay`: the dead-letter topics (dlq_cmd.c). */
int cmd_dlq(int argc, char **argv);

#endif
