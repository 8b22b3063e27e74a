/* lmtp_parse.h - the pure part of LMTP (RFC 2033): command lines, the
 * MAIL / RCPT paths and parameters, and the DATA stream's end and dot
 * unstuffing. No I/O; host/lmtp.c drives it. */
#ifndef AG_HOST_LMTP_PARSE_H
#define AG_HOST_LMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/agbuf.h"

/* Longest path (RFC 5321 4.5.3.1.3: 256 octets with the brackets). */
#define LMTP_PATH_MAX 256

enum lmtp_verb {
	LMTP_UNKNOWN,
	LMTP_LHLO,
	LMTP_HELO,   /* HELO and EHLO: SMTP greetings, refused in LMTP */
	LMTP_MAIL,
	LMTP_RCPT,
	LMTP_DATA,
	LMTP_RSET,
	LMTP_NOOP,
	LMTP_QUIT,
	LMTP_VRFY,
	LMTP_HELP,
};

enum lmtp_body { LMTP_BODY_NONE, LMTP_BODY_7BIT, LMTP_BODY_8BITMIME };

struct lmtp_command {
	enum lmtp_verb verb;
	/* LHLO: the client's name; VRFY, NOOP, HELP: the argument (may be empty) */
	const char *arg;
	size_t arg_len;
	/* MAIL, RCPT: the address without brackets or source route ("" for
	 * the null sender <>), NUL-terminated */
	char path[LMTP_PATH_MAX + 1];
	size_t path_len;
	/* MAIL parameters */
	int has_size;
	uint64_t size;             /* SIZE=; UINT64_MAX when it does not fit */
	enum lmtp_body body;
};

/* Parses one command line (without its CRLF). Returns 0, or the reply to
 * send (a complete line with its CRLF: "501 5.5.4 ...\r\n") when the line
 * is no valid command; `cmd->verb` is then still set when the verb was
 * recognised. `arg` points into `line`. */
const char *lmtp_parse_command(const char *line, size_t len, struct lmtp_command *cmd);
/* The '@' between local part and domain of the address at s[0..n): the
 * last one outside a quoted local part; n when there is none. */
size_t lmtp_address_at(const char *s, size_t n);

/* The DATA stream: the message ends with CRLF "." CRLF, and a line's
 * leading dot is removed (RFC 5321 4.5.2). Start with a zeroed struct. */
struct lmtp_data {
	int state;
	uint64_t size;             /* content bytes so far, kept or not */
	int too_big;               /* more than `max` bytes: the rest was dropped */
};

/* Feeds `len` bytes; appends the unstuffed content to `out` as long as it
 * stays within `max` bytes (past that, counts only and sets too_big).
 * Returns how many bytes were consumed: all of them, or up to and with the
 * final "." CRLF, when *done is set to 1. */
size_t lmtp_data_feed(struct lmtp_data *d, const char *in, size_t len, uint64_t max, struct agbuf *out,
                      int *done);

#endif
