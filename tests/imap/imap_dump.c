/* imap_dump.c - canonical text of commands and events. */
#include "imap_dump.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void dump_str(struct agbuf *out, const struct imap_str *s)
{
	if (s->data == NULL) {
		agbuf_puts(out, "NIL");
		return;
	}
	agbuf_putc(out, '"');
	for (size_t i = 0; i < s->len; i++) {
		unsigned char c = (unsigned char)s->data[i];
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			agbuf_printf(out, "\\x%02x", c);
		else
			agbuf_putc(out, (char)c);
	}
	agbuf_putc(out, '"');
}

static void dump_set(struct agbuf *out, const struct imap_seqset *set)
{
	if (set->saved)
		agbuf_putc(out, '$');
	for (size_t i = 0; i < set->count; i++) {
		if (i > 0)
			agbuf_putc(out, ',');
		if (set->ranges[i].first == IMAP_SEQ_STAR)
			agbuf_putc(out, '*');
		else
			agbuf_printf(out, "%" PRIu32, set->ranges[i].first);
		if (set->ranges[i].last != set->ranges[i].first) {
			if (set->ranges[i].last == IMAP_SEQ_STAR)
				agbuf_puts(out, ":*");
			else
				agbuf_printf(out, ":%" PRIu32, set->ranges[i].last);
		}
	}
}

static void dump_mailbox(struct agbuf *out, const struct imap_mailbox *m)
{
	dump_str(out, &m->name);
}

/* An argument after the one before: a space, then the string or name. */
static void sp_str(struct agbuf *out, const struct imap_str *s)
{
	agbuf_putc(out, ' ');
	dump_str(out, s);
}

static void sp_mailbox(struct agbuf *out, const struct imap_mailbox *m)
{
	agbuf_putc(out, ' ');
	dump_mailbox(out, m);
}

static void dump_flags(struct agbuf *out, const struct imap_flags *f)
{
	agbuf_putc(out, '(');
	for (size_t i = 0; i < f->count; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		agbuf_append(out, f->flags[i].data, f->flags[i].len);
	}
	agbuf_putc(out, ')');
}

static const char *const status_names[] = { "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY",
					    "UNSEEN", "HIGHESTMODSEQ", "SIZE", "DELETED", "DELETED-STORAGE" };

static void dump_status_items(struct agbuf *out, const struct imap_status_items *s)
{
	agbuf_putc(out, '(');
	for (size_t i = 0; i < s->count; i++)
		agbuf_printf(out, "%s%s", i ? " " : "", status_names[s->items[i]]);
	agbuf_putc(out, ')');
}

static const char *const fetch_names[] = {
	"ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE", "RFC822.TEXT",
	"BODY", "BODYSTRUCTURE", "UID", "BODY[]", "MODSEQ", "BINARY", "BINARY.SIZE",
};

static const char *const section_names[] = { "", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME" };

static void dump_att(struct agbuf *out, const struct imap_fetch_att *a)
{
	if (a->kind == IMAP_FETCH_BINARY || a->kind == IMAP_FETCH_BINARY_SIZE) {
		agbuf_puts(out, a->kind == IMAP_FETCH_BINARY_SIZE ? "BINARY.SIZE[" : a->peek ? "BINARY.PEEK[" : "BINARY[");
		for (size_t i = 0; i < a->section.part_count; i++)
			agbuf_printf(out, "%s%" PRIu32, i ? "." : "", a->section.parts[i]);
		agbuf_putc(out, ']');
		if (a->has_partial)
			agbuf_printf(out, "<%" PRIu32 ".%" PRIu32 ">", a->partial_offset, a->partial_count);
		return;
	}
	if (a->kind != IMAP_FETCH_BODY_SECTION) {
		agbuf_puts(out, fetch_names[a->kind]);
		return;
	}
	agbuf_puts(out, a->peek ? "BODY.PEEK[" : "BODY[");
	for (size_t i = 0; i < a->section.part_count; i++)
		agbuf_printf(out, "%s%" PRIu32, i ? "." : "", a->section.parts[i]);
	if (a->section.text != IMAP_SECTION_ALL)
		agbuf_printf(out, "%s%s", a->section.part_count ? "." : "", section_names[a->section.text]);
	if (a->section.field_count > 0) {
		agbuf_puts(out, " (");
		for (size_t i = 0; i < a->section.field_count; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			dump_str(out, &a->section.fields[i]);
		}
		agbuf_putc(out, ')');
	}
	agbuf_putc(out, ']');
	if (a->has_partial)
		agbuf_printf(out, "<%" PRIu32 ".%" PRIu32 ">", a->partial_offset, a->partial_count);
}

static const char *const search_names[] = {
	"AND", "OR", "NOT", "SET", "UID", "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD",
	"RECENT", "SEEN", "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN", "KEYWORD", "UNKEYWORD",
	"BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO", "HEADER", "BEFORE", "ON", "SINCE", "SENTBEFORE",
	"SENTON", "SENTSINCE", "LARGER", "SMALLER", "MODSEQ", "OLDER", "YOUNGER",
};

static void dump_key(struct agbuf *out, const struct imap_search_key *k)
{
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		agbuf_putc(out, '(');
		for (size_t i = 0; i < k->u.list.count; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			dump_key(out, &k->u.list.keys[i]);
		}
		agbuf_putc(out, ')');
		return;
	case IMAP_SEARCH_OR:
		agbuf_puts(out, "OR ");
		dump_key(out, k->u.or.left);
		agbuf_putc(out, ' ');
		dump_key(out, k->u.or.right);
		return;
	case IMAP_SEARCH_NOT:
		agbuf_puts(out, "NOT ");
		dump_key(out, k->u.not);
		return;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UID:
		agbuf_printf(out, "%s ", search_names[k->kind]);
		dump_set(out, &k->u.set);
		return;
	case IMAP_SEARCH_KEYWORD: case IMAP_SEARCH_UNKEYWORD: case IMAP_SEARCH_BCC: case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_CC: case IMAP_SEARCH_FROM: case IMAP_SEARCH_SUBJECT: case IMAP_SEARCH_TEXT:
	case IMAP_SEARCH_TO:
		agbuf_printf(out, "%s ", search_names[k->kind]);
		dump_str(out, &k->u.str);
		return;
	case IMAP_SEARCH_HEADER:
		agbuf_puts(out, "HEADER ");
		dump_str(out, &k->u.header.name);
		sp_str(out, &k->u.header.value);
		return;
	case IMAP_SEARCH_BEFORE: case IMAP_SEARCH_ON: case IMAP_SEARCH_SINCE: case IMAP_SEARCH_SENTBEFORE:
	case IMAP_SEARCH_SENTON: case IMAP_SEARCH_SENTSINCE:
		agbuf_printf(out, "%s %04d-%02d-%02d", search_names[k->kind], k->u.date.year, k->u.date.month,
			     k->u.date.day);
		return;
	case IMAP_SEARCH_LARGER: case IMAP_SEARCH_SMALLER: case IMAP_SEARCH_OLDER: case IMAP_SEARCH_YOUNGER:
		agbuf_printf(out, "%s %" PRIu32, search_names[k->kind], k->u.size);
		return;
	case IMAP_SEARCH_MODSEQ:
		agbuf_printf(out, "MODSEQ %" PRIu64, k->u.modseq);
		return;
	default:
		agbuf_puts(out, search_names[k->kind]);
		return;
	}
}

static void dump_datetime(struct agbuf *out, const struct imap_datetime *d)
{
	agbuf_printf(out, "%04d-%02d-%02dT%02d:%02d:%02d%+05d", d->date.year, d->date.month, d->date.day, d->hour,
		     d->minute, d->second, d->zone_minutes / 60 * 100 + d->zone_minutes % 60);
}

void dump_command(struct agbuf *out, const struct imap_command *cmd)
{
	const __typeof__(cmd->u) *u = &cmd->u;
	agbuf_append(out, cmd->tag.data, cmd->tag.len);
	agbuf_printf(out, " %s%s", cmd->uid ? "UID " : "", cmd->name);
	switch (cmd->kind) {
	case IMAP_CMD_AUTHENTICATE:
		sp_str(out, &u->authenticate.mechanism);
		if (u->authenticate.has_initial) {
			agbuf_puts(out, " ir=");
			dump_str(out, &u->authenticate.initial);
		}
		break;
	case IMAP_CMD_LOGIN:
		sp_str(out, &u->login.user);
		agbuf_putc(out, ' ');
		dump_str(out, &u->login.password);
		break;
	case IMAP_CMD_SELECT: case IMAP_CMD_EXAMINE: case IMAP_CMD_CREATE: case IMAP_CMD_DELETE:
	case IMAP_CMD_SUBSCRIBE: case IMAP_CMD_UNSUBSCRIBE: case IMAP_CMD_GETQUOTAROOT:
		sp_mailbox(out, &u->mailbox.mailbox);
		if (u->mailbox.condstore)
			agbuf_puts(out, " CONDSTORE");
		if (u->mailbox.has_use) {
			agbuf_puts(out, " use=(");
			for (size_t i = 0; i < u->mailbox.use.count; i++) {
				if (i > 0)
					agbuf_putc(out, ' ');
				dump_str(out, &u->mailbox.use.flags[i]);
			}
			agbuf_putc(out, ')');
		}
		if (u->mailbox.qresync) {
			agbuf_printf(out, " QRESYNC uidvalidity=%u modseq=%" PRIu64, u->mailbox.qr_uidvalidity,
			             u->mailbox.qr_modseq);
			if (u->mailbox.qr_has_known) {
				agbuf_puts(out, " known=");
				dump_set(out, &u->mailbox.qr_known);
			}
			if (u->mailbox.qr_has_match) {
				agbuf_puts(out, " match=");
				dump_set(out, &u->mailbox.qr_match_seqs);
				agbuf_putc(out, '/');
				dump_set(out, &u->mailbox.qr_match_uids);
			}
		}
		break;
	case IMAP_CMD_RENAME:
		sp_mailbox(out, &u->rename.from);
		agbuf_putc(out, ' ');
		dump_mailbox(out, &u->rename.to);
		break;
	case IMAP_CMD_LIST: case IMAP_CMD_LSUB:
		if (u->list.selection)
			agbuf_printf(out, " sel=%u", u->list.selection);
		sp_mailbox(out, &u->list.reference);
		for (size_t i = 0; i < u->list.pattern_count; i++) {
			sp_str(out, &u->list.patterns[i]);
		}
		if (u->list.returns)
			agbuf_printf(out, " ret=%u", u->list.returns);
		if (u->list.status.count) {
			agbuf_puts(out, " status=");
			dump_status_items(out, &u->list.status);
		}
		break;
	case IMAP_CMD_STATUS:
		sp_mailbox(out, &u->status.mailbox);
		agbuf_putc(out, ' ');
		dump_status_items(out, &u->status.items);
		break;
	case IMAP_CMD_APPEND:
		sp_mailbox(out, &u->append.mailbox);
		for (size_t i = 0; i < u->append.message_count; i++) {
			const struct imap_append_message *m = &u->append.messages[i];
			agbuf_puts(out, " [");
			if (m->has_flags) {
				dump_flags(out, &m->flags);
				agbuf_putc(out, ' ');
			}
			if (m->has_date) {
				dump_datetime(out, &m->date);
				agbuf_putc(out, ' ');
			}
			if (m->catenate) {
				agbuf_puts(out, "CATENATE");
				for (size_t k = 0; k < m->part_count; k++) {
					const struct imap_cat_part *c = &m->parts[k];
					agbuf_putc(out, ' ');
					if (c->is_url) {
						agbuf_puts(out, "URL ");
						dump_str(out, &c->url);
					} else {
						agbuf_printf(out, "TEXT %s%" PRIu64 "#%zu", c->binary ? "~" : "", c->size,
						             c->literal);
					}
				}
				agbuf_putc(out, ']');
				continue;
			}
			agbuf_printf(out, "%s%" PRIu64 "]", m->binary ? "~" : "", m->size);
		}
		break;
	case IMAP_CMD_SORT:
	case IMAP_CMD_THREAD:
		if (cmd->kind == IMAP_CMD_THREAD) {
			agbuf_puts(out, u->search.thread == IMAP_THREAD_REFERENCES ? " REFERENCES" : " ORDEREDSUBJECT");
		} else {
			static const char *const keys[] = { "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO",
							    "DISPLAYFROM", "DISPLAYTO" };
			agbuf_puts(out, " (");
			for (size_t i = 0; i < u->search.sort_count; i++)
				agbuf_printf(out, "%s%s%s", i ? " " : "", u->search.sort[i].reverse ? "REVERSE " : "",
					     keys[u->search.sort[i].key]);
			agbuf_putc(out, ')');
		}
		/* fall through */
	case IMAP_CMD_SEARCH:
		if (u->search.esearch)
			agbuf_printf(out, " return=%u", u->search.return_opts);
		if (u->search.return_opts & IMAP_SEARCH_RET_PARTIAL)
			agbuf_printf(out, " partial=%u:%u", u->search.partial_first, u->search.partial_last);
		if (u->search.has_charset) {
			agbuf_puts(out, " charset=");
			dump_str(out, &u->search.charset);
		}
		agbuf_putc(out, ' ');
		dump_key(out, u->search.key);
		break;
	case IMAP_CMD_CANCELUPDATE:
		for (size_t i = 0; i < u->cancelupdate.count; i++) {
			sp_str(out, &u->cancelupdate.tags[i]);
		}
		break;
	case IMAP_CMD_FETCH:
		agbuf_putc(out, ' ');
		dump_set(out, &u->fetch.set);
		if (u->fetch.macro != IMAP_FETCH_NO_MACRO)
			agbuf_printf(out, " macro=%d", (int)u->fetch.macro);
		agbuf_puts(out, " (");
		for (size_t i = 0; i < u->fetch.att_count; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			dump_att(out, &u->fetch.atts[i]);
		}
		agbuf_putc(out, ')');
		if (u->fetch.has_changedsince)
			agbuf_printf(out, " changedsince=%" PRIu64, u->fetch.changedsince);
		if (u->fetch.vanished)
			agbuf_puts(out, " vanished");
		break;
	case IMAP_CMD_STORE:
		agbuf_putc(out, ' ');
		dump_set(out, &u->store.set);
		if (u->store.has_unchangedsince)
			agbuf_printf(out, " unchangedsince=%" PRIu64, u->store.unchangedsince);
		agbuf_printf(out, " %sFLAGS%s ", u->store.mode == IMAP_STORE_ADD ? "+" : u->store.mode == IMAP_STORE_REMOVE ? "-" : "",
			     u->store.silent ? ".SILENT" : "");
		dump_flags(out, &u->store.flags);
		break;
	case IMAP_CMD_COPY: case IMAP_CMD_MOVE:
		agbuf_putc(out, ' ');
		dump_set(out, &u->copy.set);
		sp_mailbox(out, &u->copy.mailbox);
		break;
	case IMAP_CMD_EXPUNGE:
		if (u->expunge.has_set) {
			agbuf_putc(out, ' ');
			dump_set(out, &u->expunge.set);
		}
		break;
	case IMAP_CMD_ID:
		if (u->id.nil) {
			agbuf_puts(out, " NIL");
			break;
		}
		agbuf_puts(out, " (");
		for (size_t i = 0; i < u->id.count; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			dump_str(out, &u->id.names[i]);
			sp_str(out, &u->id.values[i]);
		}
		agbuf_putc(out, ')');
		break;
	case IMAP_CMD_COMPRESS:
		sp_str(out, &u->compress.mechanism);
		break;
	case IMAP_CMD_GETQUOTA:
		sp_str(out, &u->quota.root);
		break;
	case IMAP_CMD_SETQUOTA:
		sp_str(out, &u->quota.root);
		agbuf_puts(out, " (");
		for (size_t i = 0; i < u->quota.count; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			dump_str(out, &u->quota.names[i]);
			agbuf_printf(out, " %" PRIu64, u->quota.limits[i]);
		}
		agbuf_putc(out, ')');
		break;
	case IMAP_CMD_ENABLE:
		for (size_t i = 0; i < u->enable.count; i++) {
			agbuf_putc(out, ' ');
			agbuf_append(out, u->enable.caps[i].data, u->enable.caps[i].len);
		}
		break;
	default:
		break;
	}
}

static const char *const error_names[] = { "syntax", "line", "literal", "command" };

/* A small deterministic generator: runs must be reproducible from a seed. */
static unsigned next_rand(unsigned *state)
{
	*state = *state * 1103515245u + 12345u;
	return (*state >> 16) & 0x7fff;
}

size_t dump_feed(struct agbuf *out, const char *bytes, size_t len, size_t piece, unsigned seed,
		 const struct imap_parser_limits *limits, enum dump_literal_policy policy)
{
	struct imap_parser *p = imap_parser_new(limits);
	size_t events = 0, off = 0;
	unsigned rng = seed;
	bool in_data = false;
	enum imap_cmd_kind last_kind = IMAP_CMD_NOOP;
	while (off <= len) {
		size_t n = len - off;
		if (piece == (size_t)-1)
			n = n < 1 ? n : 1 + next_rand(&rng) % (n < 64 ? n : 64);
		else if (piece > 0 && n > piece)
			n = piece;
		bool last_piece = off + n == len;
		size_t used;
		struct imap_event ev;
		enum imap_event_kind k = imap_parser_next(p, bytes + off, n, &used, &ev);
		off += used;
		if (k != IMAP_EV_APPEND_DATA && in_data) {
			agbuf_puts(out, "\n");
			in_data = false;
		}
		if (k == IMAP_EV_NONE) {
			if (last_piece)
				break;
			continue;
		}
		events++;
		switch (k) {
		case IMAP_EV_COMMAND:
			agbuf_puts(out, "CMD ");
			dump_command(out, ev.cmd);
			agbuf_putc(out, '\n');
			last_kind = ev.cmd->kind;
			if (last_kind == IMAP_CMD_IDLE)
				imap_parser_set_mode(p, IMAP_MODE_IDLE);
			else if (last_kind == IMAP_CMD_AUTHENTICATE && !ev.cmd->u.authenticate.has_initial)
				imap_parser_set_mode(p, IMAP_MODE_SASL);
			imap_command_free(ev.cmd);
			break;
		case IMAP_EV_ERROR:
			agbuf_printf(out, "ERR %s %s: %s\n", ev.tag ? ev.tag : "*", error_names[ev.error], ev.text);
			break;
		case IMAP_EV_LITERAL:
			agbuf_printf(out, "LIT %s %" PRIu64 "%s\n", ev.tag ? ev.tag : "*", ev.literal_size,
				     ev.literal_is_message ? " message" : "");
			if (policy == DUMP_ACCEPT)
				imap_parser_literal_accept(p);
			else
				imap_parser_literal_reject(p);
			break;
		case IMAP_EV_APPEND_BEGIN:
			agbuf_printf(out, "APPEND-BEGIN %zu %" PRIu64 " ", ev.message_index, ev.literal_size);
			dump_mailbox(out, &ev.cmd->u.append.mailbox);
			agbuf_putc(out, '\n');
			break;
		case IMAP_EV_APPEND_DATA:
			if (!in_data)
				agbuf_puts(out, "DATA ");
			agbuf_append(out, ev.data, ev.len);
			in_data = true;
			break;
		case IMAP_EV_APPEND_END:
			agbuf_printf(out, "APPEND-END %zu\n", ev.message_index);
			break;
		case IMAP_EV_IDLE_DONE:
			agbuf_puts(out, "DONE\n");
			break;
		case IMAP_EV_SASL_LINE:
			agbuf_puts(out, "SASL ");
			agbuf_append(out, ev.data, ev.len);
			agbuf_putc(out, '\n');
			imap_parser_set_mode(p, IMAP_MODE_COMMAND);
			break;
		case IMAP_EV_NONE:
			break;
		}
	}
	if (in_data)
		agbuf_puts(out, "\n");
	imap_parser_free(p);
	return events;
}
