/* flags_valkey_internal.h: the reply handling of the Valkey flag source, apart from the
 * connection, so its fuzz target (tests/fuzz/flags_valkey.c) and tests can feed it replies
 * that no server would send. Not part of the room's interface (flags.h is). */
#ifndef CGW_FLAGS_VALKEY_INTERNAL_H
#define CGW_FLAGS_VALKEY_INTERNAL_H

#include "flags/flags.h"

/* Interprets one poll's replies exactly as flags_poll_valkey does after fetching them: set is
 * the SMEMBERS reply and, when it is an array, hashes[i] the HGETALL reply of set->element[i].
 * 1: *out is a new snapshot; 0: the same replies (in any order) as the last snapshot returned;
 * -1: an error with its message. The replies stay the caller's. */
int flags_valkey_take_replies(struct flags_valkey *v, const redisReply *set, redisReply *const *hashes,
                              struct flags_set **out, char *err, size_t errlen);

#endif
