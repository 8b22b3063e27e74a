/* cmd_search.c - SEARCH and UID SEARCH.
 *
 * The key tree is evaluated per message. Keys on flags, numbers and
 * keywords need only the view; header, date and size keys need the summary
 * (header block and structure); BODY and TEXT need the body. Messages are
 * read in batches and only as far as the keys need. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/commands.h"
#include "host/mail_reply.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"
#include "protocol/search_match.h"

#define SEARCH_BATCH 128

enum need { NEED_VIEW = 0, NEED_SUMMARY = 1, NEED_BODY = 2 };

static enum need key_needs(const struct imap_search_key *k)
{
	enum need n = NEED_VIEW, sub;
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		for (size_t i = 0; i < k->u.list.count; i++) {
			sub = key_needs(&k->u.list.keys[i]);
			if (sub > n)
				n = sub;
		}
		return n;
	case IMAP_SEARCH_OR:
		n = key_needs(k->u.or.left);
		sub = key_needs(k->u.or.right);
		return sub > n ? sub : n;
	case IMAP_SEARCH_NOT: return key_needs(k->u.not);
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT: return NEED_BODY;
	case IMAP_SEARCH_BCC: case IMAP_SEARCH_CC: case IMAP_SEARCH_FROM: case IMAP_SEARCH_SUBJECT:
	case IMAP_SEARCH_TO: case IMAP_SEARCH_HEADER: case IMAP_SEARCH_BEFORE: case IMAP_SEARCH_ON:
	case IMAP_SEARCH_SINCE: case IMAP_SEARCH_SENTBEFORE: case IMAP_SEARCH_SENTON:
	case IMAP_SEARCH_SENTSINCE: case IMAP_SEARCH_LARGER: case IMAP_SEARCH_SMALLER:
		return NEED_SUMMARY;
	default: return NEED_VIEW;
	}
}

/* What one message offers to the keys. */
struct candidate {
	const struct mail_view *view;
	uint32_t seq, uid, exists, max_uid;
	struct mail_msg_info info;
	const struct mime_message *msg; /* NULL when only the view is needed */
	const char *data;               /* body, or the header block */
	size_t len;
	uint64_t internal_date_ms;
};

static int has_keyword(const struct candidate *c, const struct imap_str *name)
{
	for (unsigned bit = 0; bit < MAIL_MAX_KEYWORDS; bit++) {
		const char *kw = mail_view_keyword(c->view, bit);
		if (kw != NULL && strlen(kw) == name->len && strncasecmp(kw, name->data, name->len) == 0)
			return (c->info.keywords >> bit) & 1;
	}
	return 0;
}

static int64_t key_day(const struct imap_date *d)
{
	return search_days_from_civil(d->year, (unsigned)d->month, (unsigned)d->day);
}

static int matches(const struct imap_search_key *k, const struct candidate *c)
{
	uint32_t f = c->info.flags;
	int64_t day;
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		for (size_t i = 0; i < k->u.list.count; i++)
			if (!matches(&k->u.list.keys[i], c))
				return 0;
		return 1;
	case IMAP_SEARCH_OR: return matches(k->u.or.left, c) || matches(k->u.or.right, c);
	case IMAP_SEARCH_NOT: return !matches(k->u.not, c);
	case IMAP_SEARCH_SEQSET: return imap_seqset_contains(&k->u.set, c->seq, c->exists);
	case IMAP_SEARCH_UID: return imap_seqset_contains(&k->u.set, c->uid, c->max_uid);
	case IMAP_SEARCH_ALL: return 1;
	case IMAP_SEARCH_ANSWERED: return (f & MAIL_F_ANSWERED) != 0;
	case IMAP_SEARCH_DELETED: return (f & MAIL_F_DELETED) != 0;
	case IMAP_SEARCH_DRAFT: return (f & MAIL_F_DRAFT) != 0;
	case IMAP_SEARCH_FLAGGED: return (f & MAIL_F_FLAGGED) != 0;
	case IMAP_SEARCH_SEEN: return (f & MAIL_F_SEEN) != 0;
	case IMAP_SEARCH_UNANSWERED: return !(f & MAIL_F_ANSWERED);
	case IMAP_SEARCH_UNDELETED: return !(f & MAIL_F_DELETED);
	case IMAP_SEARCH_UNDRAFT: return !(f & MAIL_F_DRAFT);
	case IMAP_SEARCH_UNFLAGGED: return !(f & MAIL_F_FLAGGED);
	case IMAP_SEARCH_UNSEEN: return !(f & MAIL_F_SEEN);
	case IMAP_SEARCH_RECENT: return c->info.recent;
	case IMAP_SEARCH_NEW: return c->info.recent && !(f & MAIL_F_SEEN);
	case IMAP_SEARCH_OLD: return !c->info.recent;
	case IMAP_SEARCH_KEYWORD: return has_keyword(c, &k->u.str);
	case IMAP_SEARCH_UNKEYWORD: return !has_keyword(c, &k->u.str);
	case IMAP_SEARCH_MODSEQ: return c->info.modseq >= k->u.modseq;
	default: break;
	}
	if (c->msg == NULL)
		return 0;
	switch (k->kind) {
	case IMAP_SEARCH_BCC: return search_match_header(c->msg, c->data, c->len, "Bcc", k->u.str.data);
	case IMAP_SEARCH_CC: return search_match_header(c->msg, c->data, c->len, "Cc", k->u.str.data);
	case IMAP_SEARCH_FROM: return search_match_header(c->msg, c->data, c->len, "From", k->u.str.data);
	case IMAP_SEARCH_TO: return search_match_header(c->msg, c->data, c->len, "To", k->u.str.data);
	case IMAP_SEARCH_SUBJECT: return search_match_header(c->msg, c->data, c->len, "Subject", k->u.str.data);
	case IMAP_SEARCH_HEADER:
		return search_match_header(c->msg, c->data, c->len, k->u.header.name.data, k->u.header.value.data);
	case IMAP_SEARCH_BODY: return search_match_body(c->msg, c->data, c->len, k->u.str.data);
	case IMAP_SEARCH_TEXT: return search_match_text(c->msg, c->data, c->len, k->u.str.data);
	case IMAP_SEARCH_BEFORE:
		return search_internal_day((time_t)(c->internal_date_ms / 1000), 0) < key_day(&k->u.date);
	case IMAP_SEARCH_ON:
		return search_internal_day((time_t)(c->internal_date_ms / 1000), 0) == key_day(&k->u.date);
	case IMAP_SEARCH_SINCE:
		return search_internal_day((time_t)(c->internal_date_ms / 1000), 0) >= key_day(&k->u.date);
	case IMAP_SEARCH_SENTBEFORE:
		return search_sent_date(c->msg, c->data, c->len, &day) == 0 && day < key_day(&k->u.date);
	case IMAP_SEARCH_SENTON:
		return search_sent_date(c->msg, c->data, c->len, &day) == 0 && day == key_day(&k->u.date);
	case IMAP_SEARCH_SENTSINCE:
		return search_sent_date(c->msg, c->data, c->len, &day) == 0 && day >= key_day(&k->u.date);
	case IMAP_SEARCH_LARGER: return search_larger(c->msg, k->u.size);
	case IMAP_SEARCH_SMALLER: return search_smaller(c->msg, k->u.size);
	default: return 0;
	}
}

static int charset_supported(const struct imap_command *cmd)
{
	if (!cmd->u.search.has_charset)
		return 1;
	const char *cs = cmd->u.search.charset.data;
	return strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "US-ASCII") == 0;
}

static void search_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	const char *name = cmd->uid ? "UID SEARCH" : "SEARCH";
	if (!charset_supported(cmd)) {
		agbuf_printf(&s->reply, "%s NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset.\r\n", tag);
		return;
	}
	if (cmd->u.search.esearch) {
		agbuf_printf(&s->reply, "%s BAD SEARCH RETURN needs ESEARCH, which this server does not offer.\r\n", tag);
		return;
	}
	struct mail_view *v = s->view;
	const struct imap_search_key *key = cmd->u.search.key;
	enum need need = key_needs(key);
	uint32_t exists = mail_view_exists(v);
	uint32_t *uids = malloc((exists ? exists : 1) * sizeof(*uids));
	if (uids == NULL) {
		ag_reply_error(&s->reply, tag, AEROGRAM_EINTERNAL, name);
		return;
	}
	for (uint32_t seq = 1; seq <= exists; seq++)
		uids[seq - 1] = mail_view_uid(v, seq);
	struct agbuf hits = AGBUF_INIT;
	int rc = 0;
	for (uint32_t start = 0; rc == 0 && start < exists; start += SEARCH_BATCH) {
		size_t count = exists - start < SEARCH_BATCH ? exists - start : SEARCH_BATCH;
		struct mail_summary *sums = NULL;
		struct mail_body *bodies = NULL;
		if (need >= NEED_SUMMARY)
			rc = mail_summaries(v, uids + start, count, &sums);
		if (rc == 0 && need >= NEED_BODY)
			rc = mail_bodies(v, uids + start, count, &bodies);
		for (size_t i = 0; rc == 0 && i < count; i++) {
			struct candidate c = { .view = v, .seq = start + (uint32_t)i + 1, .uid = uids[start + i],
			                       .exists = exists, .max_uid = exists ? uids[exists - 1] : 0 };
			if (mail_view_msg(v, c.seq, &c.info) != 0)
				continue;
			c.info.flags = ag_session_flags(s, c.uid, c.info.flags);
			struct mime_message *msg = NULL;
			if (sums != NULL) {
				if (sums[i].status != 0 || (bodies != NULL && bodies[i].status != 0))
					continue;
				c.internal_date_ms = sums[i].internal_date_ms;
				c.data = bodies ? (const char *)bodies[i].data : (const char *)sums[i].header;
				c.len = bodies ? bodies[i].len : sums[i].header_len;
				msg = bodies ? mime_parse(c.data, c.len)
				             : mime_serial_decode(sums[i].bodystructure, sums[i].bodystructure_len);
				if (msg == NULL)
					msg = mime_parse(c.data, c.len);
				c.msg = msg;
			}
			if (matches(key, &c))
				agbuf_printf(&hits, " %u", cmd->uid ? c.uid : c.seq);
			if (msg)
				mime_free(msg);
		}
		if (sums)
			mail_summaries_free(sums, count);
		if (bodies)
			mail_bodies_free(bodies, count);
	}
	free(uids);
	if (rc != 0)
		ag_reply_error(&s->reply, tag, rc, name);
	else
		agbuf_printf(&s->reply, "* SEARCH%s\r\n%s OK %s completed.\r\n", hits.data ? hits.data : "", tag, name);
	agbuf_free(&hits);
}

void ag_cmd_search(struct ag_session *s)
{
	ag_session_storage(s, search_run, 0);
}
