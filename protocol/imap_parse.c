/* imap_parse.c - the streaming side of the command parser: splits bytes
 * into lines and literals under the limits, asks the grammar what a literal
 * is for, streams APPEND messages, and resynchronises after errors. The
 * contract is in imap_parse.h. */
#include "protocol/imap_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/agbuf.h"
#include "protocol/imap_parse_int.h"

enum parse_state {
	ST_LINE,          /* collecting a line of the command (or IDLE / SASL line) */
	ST_LITERAL,       /* copying a small literal into the command */
	ST_WAIT_DECISION, /* a synchronising literal waits for accept/reject */
	ST_APPEND_BEGIN,  /* next: IMAP_EV_APPEND_BEGIN */
	ST_APPEND_DATA,   /* passing message bytes through */
	ST_APPEND_END,    /* next: IMAP_EV_APPEND_END */
	ST_SKIP_LITERAL,  /* dropping a non-synchronising literal after an error */
	ST_SKIP_LINE      /* dropping the rest of a line after an error */
};

/* A tag longer than this is not echoed in errors. */
#define TAG_MAX 64
/* Enough of a skipped line's end to recognise "{<20 digits>+}". */
#define SKIP_TAIL 32

struct imap_parser {
	struct imap_parser_limits limits;
	enum imap_parser_mode mode;
	enum parse_state state;
	struct agbuf cmd;               /* the command so far, lines ending in '\n' */
	size_t line_start;              /* offset in cmd of the line being collected */
	bool reset_next;                /* drop cmd at the next call (after an event that used it) */
	struct imap_lit *lits;
	size_t lit_count, lit_cap;
	uint64_t remaining;             /* bytes left of the current literal */
	bool literal_message;           /* the pending literal is an APPEND message */
	struct imap_command *pending;   /* APPEND parsed so far, borrowed by events */
	size_t message_index;
	char tail[SKIP_TAIL];
	size_t tail_len;
	char tag[TAG_MAX + 1];
	char text[200];
};

void imap_parser_default_limits(struct imap_parser_limits *limits)
{
	limits->max_line = 65536;
	limits->max_literal = 65536;
	limits->max_append = 64u * 1024 * 1024;
	limits->max_command = 262144;
	limits->max_literals = 64;
	limits->max_depth = 32;
}

struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (limits != NULL)
		p->limits = *limits;
	else
		imap_parser_default_limits(&p->limits);
	if (p->limits.max_depth == 0)
		p->limits.max_depth = 1;
	return p;
}

void imap_command_free(struct imap_command *cmd)
{
	if (cmd != NULL)
		imap_arena_free(cmd->arena);
}

static void drop_pending(struct imap_parser *p)
{
	imap_command_free(p->pending);
	p->pending = NULL;
}

/* Forgets the command being collected. */
static void reset_command(struct imap_parser *p)
{
	agbuf_reset(&p->cmd);
	p->line_start = 0;
	p->lit_count = 0;
	p->reset_next = false;
}

void imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	drop_pending(p);
	agbuf_free(&p->cmd);
	free(p->lits);
	free(p);
}

int imap_parser_at_command_start(const struct imap_parser *p)
{
	return p->mode == IMAP_MODE_COMMAND && p->state == ST_LINE &&
	       (p->reset_next || p->cmd.len == 0) && p->pending == NULL;
}

uint64_t imap_parser_literal_remaining(const struct imap_parser *p)
{
	switch (p->state) {
	case ST_LITERAL:
	case ST_APPEND_DATA:
	case ST_SKIP_LITERAL:
		return p->remaining;
	default:
		return 0;
	}
}

void imap_parser_set_mode(struct imap_parser *p, enum imap_parser_mode mode)
{
	p->mode = mode;
}

enum imap_parser_mode imap_parser_mode(const struct imap_parser *p)
{
	return p->mode;
}

static void start_literal_bytes(struct imap_parser *p)
{
	p->state = p->literal_message ? ST_APPEND_BEGIN : ST_LITERAL;
}

void imap_parser_literal_accept(struct imap_parser *p)
{
	if (p->state == ST_WAIT_DECISION)
		start_literal_bytes(p);
}

void imap_parser_literal_reject(struct imap_parser *p)
{
	if (p->state != ST_WAIT_DECISION)
		return;
	drop_pending(p);
	reset_command(p);
	p->state = ST_LINE;
}

/* Copies the tag at the start of `a` then `b` (the command so far and the
 * bytes not yet buffered) into p->tag; empty when there is none. */
static void capture_tag(struct imap_parser *p, const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = 0;
	for (size_t i = 0; i < alen + blen && n <= TAG_MAX; i++) {
		unsigned char c = (unsigned char)(i < alen ? a[i] : b[i - alen]);
		if (c == ' ') {
			p->tag[n] = '\0';
			return;
		}
		if (c <= 0x20 || c >= 0x7f || c == '+' || strchr("(){%*\"\\", c) != NULL)
			break;
		p->tag[n++] = (char)c;
	}
	p->tag[0] = '\0';
}

static enum imap_event_kind error_event(struct imap_parser *p, struct imap_event *ev, enum imap_error_kind kind,
					const char *text)
{
	snprintf(p->text, sizeof(p->text), "%s", text);
	ev->kind = IMAP_EV_ERROR;
	ev->error = kind;
	ev->text = p->text;
	ev->tag = p->tag[0] != '\0' ? p->tag : NULL;
	/* An error ends any APPEND in progress and any IDLE or SASL exchange. */
	drop_pending(p);
	p->mode = IMAP_MODE_COMMAND;
	p->reset_next = true;
	return IMAP_EV_ERROR;
}

/* After an error on a line that announced a literal: a non-synchronising
 * literal is coming anyway and must be skipped with the rest of the
 * command; for a synchronising one the client waits and gets our BAD. */
static void resync_after_literal(struct imap_parser *p, bool nonsync, uint64_t size)
{
	if (nonsync) {
		p->remaining = size;
		p->state = ST_SKIP_LITERAL;
	} else {
		p->state = ST_LINE;
	}
}

/* Recognises "{n}" or "{n+}" at the end of a line. */
static bool literal_announced(const char *line, size_t len, uint64_t *size, bool *nonsync)
{
	if (len < 3 || line[len - 1] != '}')
		return false;
	size_t end = len - 1;
	*nonsync = line[end - 1] == '+';
	if (*nonsync)
		end--;
	size_t start = end;
	while (start > 0 && line[start - 1] >= '0' && line[start - 1] <= '9')
		start--;
	if (start == end || start == 0 || line[start - 1] != '{' || end - start > 19)
		return false;
	uint64_t v = 0;
	for (size_t i = start; i < end; i++)
		v = v * 10 + (uint64_t)(line[i] - '0');
	*size = v;
	return true;
}

static bool push_literal(struct imap_parser *p, uint64_t size)
{
	struct imap_lit *l = ag_array_room(p->lits, p->lit_count, &p->lit_cap, sizeof(*l), 4);
	if (l == NULL)
		abort(); /* out of memory, as agbuf does */
	p->lits = l;
	p->lits[p->lit_count++] = (struct imap_lit){ p->cmd.len, size, IMAP_LIT_PENDING };
	return true;
}

/* A command line is complete in p->cmd: parse what there is. */
static enum imap_event_kind command_line(struct imap_parser *p, struct imap_event *ev)
{
	const char *line = p->cmd.data + p->line_start;
	size_t line_len = p->cmd.len - p->line_start - 1;
	uint64_t lit_size = 0;
	bool nonsync = false;
	bool announced = literal_announced(line, line_len, &lit_size, &nonsync);

	struct imap_gram g;
	memset(&g, 0, sizeof(g));
	g.buf = p->cmd.data;
	g.len = p->cmd.len;
	g.lits = p->lits;
	g.lit_count = p->lit_count;
	g.max_depth = p->limits.max_depth;
	g.arena = imap_arena_new();
	if (g.arena == NULL)
		abort();
	g.cmd = imap_arena_calloc(g.arena, 1, sizeof(struct imap_command));
	g.cmd->arena = g.arena;
	if (announced)
		push_literal(p, lit_size);
	g.lit_count = p->lit_count;
	g.lits = p->lits;

	enum imap_gram_result r = imap_gram_command(&g);
	if (g.cmd->tag.data != NULL && g.cmd->tag.len <= TAG_MAX)
		memcpy(p->tag, g.cmd->tag.data, g.cmd->tag.len + 1);
	else
		p->tag[0] = '\0';

	if (r == IMAP_GRAM_OK) {
		drop_pending(p);
		ev->kind = IMAP_EV_COMMAND;
		ev->cmd = g.cmd;
		p->reset_next = true;
		return IMAP_EV_COMMAND;
	}
	if (r == IMAP_GRAM_ERROR) {
		imap_command_free(g.cmd);
		resync_after_literal(p, announced && nonsync, lit_size);
		return error_event(p, ev, IMAP_ERR_SYNTAX, g.error);
	}

	/* The grammar stopped at the literal the line announced. */
	bool message = g.literal_is_message;
	const char *too_large = NULL;
	enum imap_error_kind kind = IMAP_ERR_LITERAL_TOO_LARGE;
	if (p->lit_count > p->limits.max_literals) {
		too_large = "Too many literals in one command";
		kind = IMAP_ERR_COMMAND_TOO_LARGE;
	} else if (message ? lit_size > p->limits.max_append
			   : lit_size > p->limits.max_literal || lit_size > p->limits.max_command - p->cmd.len) {
		too_large = "Literal too large";
	}
	if (too_large != NULL) {
		imap_command_free(g.cmd);
		resync_after_literal(p, nonsync, lit_size);
		return error_event(p, ev, kind, too_large);
	}
	p->remaining = lit_size;
	p->literal_message = message;
	if (message) {
		drop_pending(p);
		p->pending = g.cmd;
		p->message_index = g.literal_index;
		struct imap_append_message *m = &p->pending->u.append.messages[g.message_index];
		if (!m->catenate)
			m->size = lit_size;
	} else {
		imap_command_free(g.cmd);
	}
	if (nonsync) {
		start_literal_bytes(p);
		return IMAP_EV_NONE; /* no event: go on with the bytes */
	}
	p->state = ST_WAIT_DECISION; /* the next turn of the loop reports it */
	return IMAP_EV_NONE;
}

/* A line is complete in p->cmd (from p->line_start, ending in '\n'). */
static enum imap_event_kind line_complete(struct imap_parser *p, struct imap_event *ev)
{
	const char *line = p->cmd.data + p->line_start;
	size_t line_len = p->cmd.len - p->line_start - 1;
	switch (p->mode) {
	case IMAP_MODE_IDLE:
		p->tag[0] = '\0';
		p->reset_next = true;
		if (line_len == 4 && strncasecmp(line, "DONE", 4) == 0) {
			p->mode = IMAP_MODE_COMMAND;
			ev->kind = IMAP_EV_IDLE_DONE;
			return IMAP_EV_IDLE_DONE;
		}
		return error_event(p, ev, IMAP_ERR_SYNTAX, "Expected DONE to end IDLE");
	case IMAP_MODE_SASL:
		p->reset_next = true;
		ev->kind = IMAP_EV_SASL_LINE;
		ev->data = line;
		ev->len = line_len;
		return IMAP_EV_SASL_LINE;
	case IMAP_MODE_COMMAND:
		break;
	}
	if (p->line_start == 0 && line_len == 0) {
		/* An empty line between commands: some clients send one after
		 * a literal-free command; it carries nothing to answer. */
		reset_command(p);
		return IMAP_EV_NONE;
	}
	return command_line(p, ev);
}

/* Takes bytes of a line; returns an event when the line ended or broke a limit. */
static enum imap_event_kind take_line(struct imap_parser *p, const char *in, size_t len, size_t *used,
				      struct imap_event *ev)
{
	const char *nl = memchr(in, '\n', len);
	size_t chunk = nl != NULL ? (size_t)(nl - in) : len;
	size_t have = p->cmd.len - p->line_start;
	size_t line_len = have + chunk;
	/* A CR just before the LF is not part of the line; while the LF has
	 * not come, allow for one. */
	if (nl != NULL && line_len > 0 && (chunk > 0 ? in[chunk - 1] : p->cmd.data[p->cmd.len - 1]) == '\r')
		line_len--;
	size_t limit = p->limits.max_line + (nl == NULL ? 1 : 0);
	bool too_long = line_len > limit;
	/* The whole command is measured once its line is complete, so that
	 * which limit is reported does not depend on how the bytes were split;
	 * until then a line is bounded by max_line anyway. */
	bool too_big = !too_long && nl != NULL && p->cmd.len + chunk + 1 > p->limits.max_command;
	if (too_long || too_big) {
		/* Look for the tag only within what a byte-by-byte feed would
		 * have seen when the limit broke. */
		size_t view = chunk;
		if (have + view > p->limits.max_line + 2)
			view = have > p->limits.max_line + 2 ? 0 : p->limits.max_line + 2 - have;
		if (p->mode == IMAP_MODE_COMMAND)
			capture_tag(p, p->cmd.data, p->cmd.len, in, view);
		else
			p->tag[0] = '\0';
		/* Drop the line from here on, its start included; keep its end
		 * to see whether it announces a literal. */
		size_t keep = have < SKIP_TAIL ? have : SKIP_TAIL;
		if (keep > 0)
			memcpy(p->tail, p->cmd.data + p->cmd.len - keep, keep);
		p->tail_len = keep;
		p->state = ST_SKIP_LINE;
		*used = 0;
		if (too_long)
			return error_event(p, ev, IMAP_ERR_LINE_TOO_LONG, "Line too long");
		return error_event(p, ev, IMAP_ERR_COMMAND_TOO_LARGE, "Command too large");
	}
	agbuf_append(&p->cmd, in, chunk);
	if (nl == NULL) {
		*used = len;
		return IMAP_EV_NONE;
	}
	*used = chunk + 1;
	if (p->cmd.len > p->line_start && p->cmd.data[p->cmd.len - 1] == '\r')
		p->cmd.len--;
	agbuf_putc(&p->cmd, '\n');
	return line_complete(p, ev);
}

/* Drops the rest of a line, watching its end for a literal announcement. */
static void skip_line(struct imap_parser *p, const char *in, size_t len, size_t *used)
{
	const char *nl = memchr(in, '\n', len);
	size_t chunk = nl != NULL ? (size_t)(nl - in) : len;
	/* Slide the tail window over the dropped bytes. */
	if (chunk >= SKIP_TAIL) {
		memcpy(p->tail, in + chunk - SKIP_TAIL, SKIP_TAIL);
		p->tail_len = SKIP_TAIL;
	} else {
		size_t keep = p->tail_len + chunk > SKIP_TAIL ? SKIP_TAIL - chunk : p->tail_len;
		memmove(p->tail, p->tail + p->tail_len - keep, keep);
		memcpy(p->tail + keep, in, chunk);
		p->tail_len = keep + chunk;
	}
	if (nl == NULL) {
		*used = len;
		return;
	}
	*used = chunk + 1;
	size_t n = p->tail_len;
	if (n > 0 && p->tail[n - 1] == '\r')
		n--;
	uint64_t size;
	bool nonsync;
	if (literal_announced(p->tail, n, &size, &nonsync))
		resync_after_literal(p, nonsync, size);
	else
		p->state = ST_LINE;
	p->tail_len = 0;
}

enum imap_event_kind imap_parser_next(struct imap_parser *p, const char *in, size_t len, size_t *used,
				      struct imap_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	*used = 0;
	if (p->reset_next)
		reset_command(p);
	for (;;) {
		size_t took = 0;
		enum imap_event_kind k = IMAP_EV_NONE;
		switch (p->state) {
		case ST_LINE:
			if (len == 0)
				return IMAP_EV_NONE;
			k = take_line(p, in, len, &took, ev);
			break;
		case ST_LITERAL: {
			size_t n = p->remaining < len ? (size_t)p->remaining : len;
			agbuf_append(&p->cmd, in, n);
			took = n;
			p->remaining -= n;
			if (p->remaining == 0) {
				p->lits[p->lit_count - 1].state = IMAP_LIT_INLINE;
				p->line_start = p->cmd.len;
				p->state = ST_LINE;
			} else if (len == 0) {
				return IMAP_EV_NONE;
			}
			break;
		}
		case ST_WAIT_DECISION:
			ev->kind = IMAP_EV_LITERAL;
			ev->tag = p->tag[0] != '\0' ? p->tag : NULL;
			ev->literal_size = p->remaining;
			ev->literal_is_message = p->literal_message;
			ev->cmd = p->literal_message ? p->pending : NULL;
			ev->message_index = p->message_index;
			return IMAP_EV_LITERAL;
		case ST_APPEND_BEGIN:
			p->state = p->remaining > 0 ? ST_APPEND_DATA : ST_APPEND_END;
			ev->kind = IMAP_EV_APPEND_BEGIN;
			ev->cmd = p->pending;
			ev->literal_size = p->remaining;
			ev->message_index = p->message_index;
			return IMAP_EV_APPEND_BEGIN;
		case ST_APPEND_DATA: {
			if (len == 0)
				return IMAP_EV_NONE;
			size_t n = p->remaining < len ? (size_t)p->remaining : len;
			p->remaining -= n;
			if (p->remaining == 0)
				p->state = ST_APPEND_END;
			*used += n;
			ev->kind = IMAP_EV_APPEND_DATA;
			ev->cmd = p->pending;
			ev->message_index = p->message_index;
			ev->data = in;
			ev->len = n;
			return IMAP_EV_APPEND_DATA;
		}
		case ST_APPEND_END:
			p->lits[p->lit_count - 1].state = IMAP_LIT_STREAMED;
			p->line_start = p->cmd.len;
			p->state = ST_LINE;
			ev->kind = IMAP_EV_APPEND_END;
			ev->cmd = p->pending;
			ev->message_index = p->message_index;
			return IMAP_EV_APPEND_END;
		case ST_SKIP_LITERAL: {
			size_t n = p->remaining < len ? (size_t)p->remaining : len;
			took = n;
			p->remaining -= n;
			if (p->remaining == 0) {
				p->state = ST_SKIP_LINE;
				p->tail_len = 0;
			} else if (len == 0) {
				return IMAP_EV_NONE;
			}
			break;
		}
		case ST_SKIP_LINE:
			if (len == 0)
				return IMAP_EV_NONE;
			skip_line(p, in, len, &took);
			break;
		}
		in += took;
		len -= took;
		*used += took;
		if (k != IMAP_EV_NONE) {
			ev->kind = k;
			return k;
		}
		if (p->reset_next)
			reset_command(p);
	}
}
