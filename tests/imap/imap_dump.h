/* imap_dump.h - a canonical text form of parsed commands and parser events,
 * so tests and the fuzzer can compare runs and assert on one string. */
#ifndef AG_TESTS_IMAP_DUMP_H
#define AG_TESTS_IMAP_DUMP_H

#include <stddef.h>

#include "protocol/agbuf.h"
#include "protocol/imap_parse.h"

/* Appends the canonical form of a command. */
void dump_command(struct agbuf *out, const struct imap_command *cmd);

/* How dump_feed answers synchronising literals. */
enum dump_literal_policy { DUMP_ACCEPT, DUMP_REJECT };

/* Feeds `len` bytes to a new parser with `limits` (NULL: defaults) in
 * pieces of `piece` bytes (0: all at once; (size_t)-1: pseudo-random sizes
 * from `seed`), accepting or rejecting literals per `policy`, and appends one
 * line per event to `out` (consecutive APPEND data merged). Entering IDLE
 * and SASL modes follows the commands (IDLE, AUTHENTICATE) as a server
 * would, SASL ending after one line. Returns the number of events. */
size_t dump_feed(struct agbuf *out, const char *bytes, size_t len, size_t piece, unsigned seed,
		 const struct imap_parser_limits *limits, enum dump_literal_policy policy);

#endif
