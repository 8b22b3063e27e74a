/* fuzz_imap_parse.c - libFuzzer target for the IMAP command parser.
 *
 * The first bytes of an input choose the limits and a seed; the rest is
 * what a client sends. Checked for every input:
 *  - no crash, no leak, no undefined behaviour (the sanitizers);
 *  - the events do not depend on how the bytes are split: fed whole, one
 *    byte at a time and in random pieces, the event logs are identical;
 *  - every error resynchronises: once the input is over and any literal it
 *    left open is filled, the parser is back at a command boundary and
 *    parses "zz NOOP" as a command;
 *  - writer and parser agree: any bytes written as an astring come back
 *    unchanged as the LOGIN user name;
 *  - modified UTF-7 is canonical: a valid name decodes and encodes back to
 *    itself, and what the encoder writes is valid. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_dump.h"
#include "protocol/imap_parse.h"
#include "protocol/imap_quote.h"
#include "protocol/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A literal left open longer than this is not filled (the check is skipped). */
#define MAX_FILL (1u << 20)

static void set_limits(struct imap_parser_limits *lim, const uint8_t *knobs)
{
	imap_parser_default_limits(lim);
	/* Small limits most of the time, so that every limit is reached. */
	if (knobs[0] & 1) {
		lim->max_line = 8 + knobs[1] * 4u;
		lim->max_literal = knobs[2] * 2u;
		lim->max_append = knobs[3] * 8u;
		lim->max_command = 16 + knobs[1] * 8u + knobs[2] * 4u;
		lim->max_literals = 1 + (knobs[0] >> 4);
		lim->max_depth = 1 + (knobs[0] >> 1 & 7);
	}
}

/* Pulls every event out of the parser for `len` bytes, answering literals
 * and modes as a server would. */
static void drive(struct imap_parser *p, const char *bytes, size_t len, int *commands, int *noop_seen)
{
	size_t off = 0;
	for (int guard = 0; guard < 1 << 24; guard++) {
		size_t used;
		struct imap_event ev;
		enum imap_event_kind k = imap_parser_next(p, bytes + off, len - off, &used, &ev);
		if (used > len - off)
			abort();
		off += used;
		switch (k) {
		case IMAP_EV_NONE:
			if (off != len)
				abort(); /* NONE means every byte was taken */
			return;
		case IMAP_EV_COMMAND:
			(*commands)++;
			if (ev.cmd->kind == IMAP_CMD_NOOP && ev.cmd->tag.len == 2 && memcmp(ev.cmd->tag.data, "zz", 2) == 0)
				(*noop_seen)++;
			if (ev.cmd->kind == IMAP_CMD_IDLE)
				imap_parser_set_mode(p, IMAP_MODE_IDLE);
			else if (ev.cmd->kind == IMAP_CMD_AUTHENTICATE)
				imap_parser_set_mode(p, IMAP_MODE_SASL);
			imap_command_free(ev.cmd);
			break;
		case IMAP_EV_ERROR:
			if (ev.text == NULL || ev.text[0] == '\0')
				abort(); /* every error says why */
			break;
		case IMAP_EV_LITERAL:
			if (ev.literal_size & 1)
				imap_parser_literal_reject(p);
			else
				imap_parser_literal_accept(p);
			break;
		case IMAP_EV_SASL_LINE:
			imap_parser_set_mode(p, IMAP_MODE_COMMAND);
			break;
		default:
			break;
		}
	}
	abort(); /* events without progress */
}

static void check_resync(const char *bytes, size_t len, const struct imap_parser_limits *lim)
{
	struct imap_parser *p = imap_parser_new(lim);
	int commands = 0, noop = 0;
	drive(p, bytes, len, &commands, &noop);
	/* Close whatever the input left open: fill a literal, end the line;
	 * an ended line may announce one more literal, hence the rounds. */
	char *fill = NULL;
	for (int round = 0; round < 3; round++) {
		uint64_t remaining = imap_parser_literal_remaining(p);
		if (remaining > MAX_FILL) {
			imap_parser_free(p);
			free(fill);
			return;
		}
		if (remaining > 0) {
			fill = realloc(fill, (size_t)remaining);
			memset(fill, 'x', (size_t)remaining);
			drive(p, fill, (size_t)remaining, &commands, &noop);
		}
		if (imap_parser_mode(p) != IMAP_MODE_COMMAND)
			imap_parser_set_mode(p, IMAP_MODE_COMMAND);
		drive(p, "\r\n", 2, &commands, &noop);
	}
	free(fill);
	if (!imap_parser_at_command_start(p))
		abort();
	noop = 0;
	drive(p, "zz NOOP\r\n", 9, &commands, &noop);
	if (noop != 1)
		abort();
	imap_parser_free(p);
}

static void check_quote_round_trip(const char *bytes, size_t len)
{
	if (len > 512)
		len = 512;
	struct agbuf wire = AGBUF_INIT;
	agbuf_puts(&wire, "q LOGIN ");
	imap_quote_astring(&wire, bytes, len);
	agbuf_puts(&wire, " x\r\n");
	struct imap_parser *p = imap_parser_new(NULL);
	size_t off = 0, used;
	struct imap_event ev;
	for (;;) {
		enum imap_event_kind k = imap_parser_next(p, wire.data + off, wire.len - off, &used, &ev);
		off += used;
		if (k == IMAP_EV_LITERAL) {
			imap_parser_literal_accept(p);
			continue;
		}
		/* A NUL can only travel in a literal, and the parser refuses it
		 * there (CHAR8 excludes it): the command is an error, nothing else. */
		if (len > 0 && memchr(bytes, '\0', len) != NULL) {
			if (k != IMAP_EV_ERROR)
				abort();
			break;
		}
		if (k != IMAP_EV_COMMAND || ev.cmd->kind != IMAP_CMD_LOGIN || ev.cmd->u.login.user.len != len ||
		    (len > 0 && memcmp(ev.cmd->u.login.user.data, bytes, len) != 0) || off != wire.len)
			abort();
		imap_command_free(ev.cmd);
		break;
	}
	imap_parser_free(p);
	agbuf_free(&wire);
}

static void check_mutf7(const char *bytes, size_t len)
{
	struct agbuf utf8 = AGBUF_INIT, back = AGBUF_INIT;
	if (mutf7_is_valid(bytes, len)) {
		if (mutf7_decode(bytes, len, &utf8) != 0 || mutf7_encode(utf8.data, utf8.len, &back) != 0 ||
		    back.len != len || (len > 0 && memcmp(back.data, bytes, len) != 0))
			abort();
	} else if (mutf7_decode(bytes, len, &utf8) == 0) {
		abort(); /* validation and decoding disagree */
	}
	agbuf_reset(&back);
	if (mutf7_encode(bytes, len, &back) == 0 && !mutf7_is_valid(back.data, back.len))
		abort();
	agbuf_free(&utf8);
	agbuf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	struct imap_parser_limits lim;
	set_limits(&lim, data);
	unsigned seed = data[4];
	const char *bytes = (const char *)data + 5;
	size_t len = size - 5;

	struct agbuf whole = AGBUF_INIT, bytewise = AGBUF_INIT, random = AGBUF_INIT;
	dump_feed(&whole, bytes, len, 0, seed, &lim, DUMP_ACCEPT);
	dump_feed(&bytewise, bytes, len, 1, seed, &lim, DUMP_ACCEPT);
	dump_feed(&random, bytes, len, (size_t)-1, seed, &lim, DUMP_ACCEPT);
	if (whole.len != bytewise.len || (whole.len > 0 && memcmp(whole.data, bytewise.data, whole.len) != 0) ||
	    whole.len != random.len || (whole.len > 0 && memcmp(whole.data, random.data, whole.len) != 0)) {
		fprintf(stderr, "whole:\n%s\nbytewise:\n%s\nrandom:\n%s\n", whole.data ? whole.data : "",
			bytewise.data ? bytewise.data : "", random.data ? random.data : "");
		abort();
	}
	agbuf_free(&whole);
	agbuf_free(&bytewise);
	agbuf_free(&random);

	check_resync(bytes, len, &lim);
	check_quote_round_trip(bytes, len);
	check_mutf7(bytes, len < 256 ? len : 256);
	return 0;
}
