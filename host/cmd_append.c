/* cmd_append.c - APPEND (with MULTIAPPEND's several messages, RFC 3502,
 * UIDPLUS's APPENDUID, BINARY's literal8, RFC 3516, and CATENATE, RFC 4469).
 *
 * The parser streams each message's bytes; the session collects them (at
 * most max_message in all, a limit checked before any byte is read). The
 * command reaches its handler only once every message arrived, so a client
 * that goes away in the middle leaves nothing behind. Here, on a worker,
 * each message is parsed once so that its summary carries the header block
 * and the serialised structure (FETCH ENVELOPE and BODYSTRUCTURE later never
 * need the body), and all of them go to the engine in one
 * mail_append_many: one log entry, every message or none. The user's quota
 * is checked first, for all of them together (quota.h).
 *
 * CATENATE: the TEXT literals stream in like messages (one buffer each);
 * the URLs are resolved here, on the worker, once the destination is
 * known to exist, and the message is put together before it is parsed.
 * Only relative IMAP URLs (RFC 5092) naming a message or part in one of
 * the user's own mailboxes are taken, as RFC 4469 3 asks:
 * "/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]", or in the
 * selected state ";UID=n..." (or "/;UID=n...") for the selected mailbox.
 * Anything else (a scheme, a server, URLAUTH, an unknown parameter, a
 * message or part that is not there) fails the whole command with
 * NO [BADURL "url"], naming the first URL that failed; nothing is added. */
#include <stdlib.h>
#include <string.h>

#include <strings.h>

#include "host/commands.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"
#include "protocol/mutf7.h"
#include "protocol/section.h"

/* What one message needs until mail_append_many has returned: the new
 * message's header, structure and keyword pointers point into it or into
 * the session's buffer. */
struct prepared {
	char *saved;                 /* the bytes stored, when not buf's own */
	struct mime_message *mime;
	struct agbuf structure;
	const char **keywords;
};

/* Parses one buffered message and fills `nm` with it and the flags and
 * date the command gave it. Returns 0 or an engine error; `p` is freed with
 * prepared_free either way. */
static int prepare_one(const struct ag_append_buffer *buf, const struct imap_append_message *meta,
                       struct prepared *p, struct mail_new_message *nm)
{
	/* Line ends are stored as Dovecot stores them (mime_save_line_ends:
	 * CR CR LF becomes CR LF, a final CR goes), so that such messages get
	 * the structure and sizes clients see from Dovecot. Nothing else of
	 * what the client sent changes. */
	const char *data = buf->data;
	size_t len = buf->len;
	if (mime_save_line_ends_changes(data, len)) {
		if ((p->saved = malloc(len)) == NULL)
			return AEROGRAM_EINTERNAL;
		len = mime_save_line_ends(p->saved, data, len);
		data = p->saved;
	}
	p->mime = mime_parse(data, len);
	if (p->mime == NULL)
		return AEROGRAM_EINTERNAL;
	mime_serial_encode(p->mime, &p->structure);
	nm->body = (const uint8_t *)data;
	nm->body_len = len;
	nm->header = (const uint8_t *)data;
	nm->header_len = p->mime->root->body_offset <= len ? (size_t)p->mime->root->body_offset : len;
	nm->bodystructure = (const uint8_t *)p->structure.data;
	nm->bodystructure_len = p->structure.len;
	if (meta->has_date) {
		int64_t t = imap_datetime_to_unix(&meta->date);
		nm->internal_date_ms = t > 0 ? (uint64_t)t * 1000 : 1;
	}
	if (!meta->has_flags || meta->flags.count == 0)
		return 0;
	p->keywords = calloc(meta->flags.count, sizeof(*p->keywords));
	if (p->keywords == NULL)
		return AEROGRAM_EINTERNAL;
	size_t n_keywords = 0;
	for (size_t i = 0; i < meta->flags.count; i++) {
		const struct imap_str *f = &meta->flags.flags[i];
		int is_recent;
		uint32_t bit = ag_flag_bit(f->data, f->len, &is_recent);
		if (bit != 0)
			nm->flags |= bit;
		else if (!is_recent && f->data[0] != '\\')
			p->keywords[n_keywords++] = f->data;
	}
	nm->keywords = p->keywords;
	nm->n_keywords = n_keywords;
	return 0;
}

/* ---- CATENATE URLs ---- */

/* %XX escapes undone (RFC 3986); -1 on a malformed escape. */
static int percent_decode(const char *in, size_t len, struct agbuf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '%') {
			agbuf_putc(out, in[i]);
			continue;
		}
		if (i + 2 >= len)
			return -1;
		char hex[3] = { in[i + 1], in[i + 2], '\0' };
		char *end;
		unsigned long v = strtoul(hex, &end, 16);
		if (*end != '\0' || v == 0)
			return -1;
		agbuf_putc(out, (char)v);
		i += 2;
	}
	return 0;
}

/* Case-insensitive prefix test; moves *p past it when it matches. */
static int take_prefix(const char **p, const char *end, const char *prefix)
{
	size_t n = strlen(prefix);
	if ((size_t)(end - *p) < n || strncasecmp(*p, prefix, n) != 0)
		return 0;
	*p += n;
	return 1;
}

/* A decimal number up to the next '/' or the end; 0 on success. */
static int take_number(const char **p, const char *end, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;
	while (*p < end && **p >= '0' && **p <= '9') {
		v = v * 10 + (uint64_t)(**p - '0');
		if (v > max)
			return -1;
		(*p)++;
	}
	if (*p == s)
		return -1;
	*out = v;
	return 0;
}

struct imap_url {
	struct agbuf mailbox;       /* decoded and in modified UTF-7, as names are kept */
	int has_uidvalidity;
	uint32_t uidvalidity;
	uint32_t uid;
	struct agbuf section;       /* decoded, "" for the whole message */
	int has_partial;
	uint64_t partial_offset, partial_length;
};

/* Parses a relative IMAP message URL; -1 when it is not one this server
 * takes. `selected` is the selected mailbox's name or NULL. */
static int url_parse(const char *url, size_t len, const char *selected, struct imap_url *u)
{
	const char *p = url, *end = url + len;
	if (len > 0 && (*p == ';' || (len > 1 && p[0] == '/' && p[1] == ';'))) {
		/* ";UID=..." relative to the selected mailbox */
		if (selected == NULL)
			return -1;
		agbuf_puts(&u->mailbox, selected);
		if (*p == '/')
			p++;
	} else {
		if (len == 0 || *p != '/' || (len > 1 && p[1] == '/'))
			return -1; /* a scheme or a server: not from this session */
		p++;
		const char *stop = p;
		while (stop < end && *stop != ';' && !(stop + 1 < end && stop[0] == '/' && stop[1] == ';'))
			stop++;
		struct agbuf utf8 = AGBUF_INIT;
		agbuf_reserve(&utf8, 1);
		int bad = stop == p || percent_decode(p, (size_t)(stop - p), &utf8) != 0;
		/* RFC 5092 names mailboxes in UTF-8; the store keeps them as sent,
		 * in modified UTF-7. A name that is valid modified UTF-7 already
		 * (ASCII, "&...-" sequences) is taken as it is, as clients that
		 * copy the name from LIST send it. */
		if (!bad && mutf7_is_valid(utf8.data, utf8.len))
			agbuf_append(&u->mailbox, utf8.data, utf8.len);
		else if (!bad && mutf7_encode(utf8.data, utf8.len, &u->mailbox) != 0)
			bad = 1;
		agbuf_free(&utf8);
		if (bad)
			return -1;
		if (imap_mailbox_is_inbox(u->mailbox.data, u->mailbox.len)) {
			agbuf_reset(&u->mailbox);
			agbuf_puts(&u->mailbox, "INBOX");
		}
		p = stop;
		if (take_prefix(&p, end, ";UIDVALIDITY=")) {
			uint64_t v;
			if (take_number(&p, end, UINT32_MAX, &v) != 0 || v == 0)
				return -1;
			u->has_uidvalidity = 1;
			u->uidvalidity = (uint32_t)v;
		}
		if (!take_prefix(&p, end, "/"))
			return -1;
	}
	uint64_t v;
	if (!take_prefix(&p, end, ";UID=") || take_number(&p, end, UINT32_MAX, &v) != 0 || v == 0)
		return -1;
	u->uid = (uint32_t)v;
	agbuf_reserve(&u->section, 1);
	if (take_prefix(&p, end, "/;SECTION=")) {
		const char *stop = p;
		while (stop < end && *stop != '/')
			stop++;
		if (stop == p || percent_decode(p, (size_t)(stop - p), &u->section) != 0)
			return -1;
		p = stop;
	}
	if (take_prefix(&p, end, "/;PARTIAL=")) {
		if (take_number(&p, end, UINT32_MAX, &u->partial_offset) != 0)
			return -1;
		u->partial_length = UINT32_MAX;
		if (p < end && *p == '.' && (p++, take_number(&p, end, UINT32_MAX, &u->partial_length) != 0 ||
		                             u->partial_length == 0))
			return -1;
		u->has_partial = 1;
	}
	return p == end ? 0 : -1; /* ;URLAUTH=, ;EXPIRE= and the rest are not taken */
}

#define URL_BAD 1

/* Appends the octets a URL names to `out`: 0, URL_BAD, or a store error. */
static int url_fetch(struct ag_session *s, const struct imap_str *url, struct agbuf *out)
{
	struct imap_url u;
	memset(&u, 0, sizeof(u));
	int rc = url_parse(url->data, url->len, s->view != NULL ? s->mailbox : NULL, &u) == 0 ? 0 : URL_BAD;
	struct mail_mailbox *mb = NULL;
	struct mail_view *v = NULL;
	struct mail_body *body = NULL;
	if (rc == 0) {
		rc = mail_mailbox_open(s->srv->engine, s->user, u.mailbox.data, &mb);
		if (rc == AEROGRAM_ENOTFOUND)
			rc = URL_BAD;
	}
	if (rc == 0)
		rc = mail_view_open(mb, 0, &v);
	if (rc == 0 && ((u.has_uidvalidity && mail_view_uidvalidity(v) != u.uidvalidity) ||
	                mail_view_seq(v, u.uid) == 0))
		rc = URL_BAD;
	if (rc == 0 && (rc = mail_bodies(v, &u.uid, 1, &body)) == 0 && body[0].status != 0)
		rc = URL_BAD; /* expunged meanwhile */
	if (rc == 0) {
		/* the octets of FETCH BODY[section]<partial> (RFC 4469 3) */
		const char *data = (const char *)body[0].data;
		size_t len = body[0].len;
		struct section_spec spec;
		const char *fields[64];
		agbuf_putc(&u.section, ']');
		struct mime_message *msg = mime_parse(data, len);
		struct section_result res = { 0 };
		if (msg == NULL)
			rc = AEROGRAM_EINTERNAL;
		else if (section_spec_parse(u.section.data, &spec, fields, 64) != 0)
			rc = URL_BAD;
		else {
			spec.partial = u.has_partial;
			spec.partial_offset = u.partial_offset;
			spec.partial_length = u.partial_length;
			if (section_fetch(msg, data, len, &spec, &res) != 0) {
				rc = URL_BAD;
			} else {
				agbuf_append(out, res.data, res.len);
				section_result_free(&res);
			}
		}
		mime_free(msg);
	}
	if (body != NULL)
		mail_bodies_free(body, 1);
	if (v != NULL)
		mail_view_close(v);
	if (mb != NULL)
		mail_mailbox_close(mb);
	agbuf_free(&u.mailbox);
	agbuf_free(&u.section);
	return rc;
}

static void prepared_free(struct prepared *p)
{
	free(p->keywords);
	agbuf_free(&p->structure);
	mime_free(p->mime);
	free(p->saved);
}

/* The session's view when it has the APPEND's mailbox selected (not
 * examined): it is told of the new messages right after, so they are its
 * \Recent ones, claimed in the APPEND's own log entry. */
static const struct mail_view *selected_here(const struct ag_session *s, const char *name)
{
	return s->view != NULL && !s->readonly && strcmp(s->mailbox, name) == 0 ? s->view : NULL;
}

#define URL_TOOBIG 2

/* The bytes of each message of the command: its literal's buffer, or, for
 * CATENATE, its parts put together in built[i]. Returns 0, URL_BAD with
 * *bad_url set, URL_TOOBIG past max_message in all, or a store error. */
static int build_messages(struct ag_session *s, struct ag_append_buffer *out, struct agbuf *built,
                          const struct imap_str **bad_url)
{
	const struct imap_command *cmd = s->cmd;
	uint64_t total = 0;
	for (size_t i = 0; i < cmd->u.append.message_count; i++) {
		const struct imap_append_message *m = &cmd->u.append.messages[i];
		if (!m->catenate) {
			out[i] = s->append[m->literal];
			total += out[i].len;
			continue;
		}
		struct agbuf *b = &built[i];
		agbuf_reserve(b, 1);
		for (size_t k = 0; k < m->part_count; k++) {
			const struct imap_cat_part *c = &m->parts[k];
			if (c->is_url) {
				int rc = url_fetch(s, &c->url, b);
				if (rc == URL_BAD)
					*bad_url = &c->url;
				if (rc != 0)
					return rc;
			} else {
				agbuf_append(b, s->append[c->literal].data, s->append[c->literal].len);
			}
			if (total + b->len > s->srv->cfg->max_message)
				return URL_TOOBIG;
		}
		out[i].data = b->data;
		out[i].len = out[i].cap = b->len;
		total += b->len;
	}
	return 0;
}

/* Appends every message of the command at once: one log entry, so that a
 * MULTIAPPEND is all or nothing (RFC 3502) and costs one round trip. */
static int append_all(struct ag_session *s, struct mail_mailbox *mb, const struct ag_append_buffer *bufs,
                      uint32_t *uidvalidity, uint32_t *uids)
{
	const struct imap_command *cmd = s->cmd;
	size_t n = cmd->u.append.message_count;
	struct prepared *prep = calloc(n, sizeof(*prep));
	struct mail_new_message *msgs = calloc(n, sizeof(*msgs));
	int rc = prep != NULL && msgs != NULL ? 0 : AEROGRAM_EINTERNAL;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = prepare_one(&bufs[i], &cmd->u.append.messages[i], &prep[i], &msgs[i]);
	if (rc == 0)
		rc = mail_append_many_claim(mb, msgs, n, selected_here(s, cmd->u.append.mailbox.name.data), uidvalidity,
		                            uids);
	for (size_t i = 0; prep != NULL && i < n; i++)
		prepared_free(&prep[i]);
	free(prep);
	free(msgs);
	return rc;
}

static void append_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	const char *name = cmd->u.append.mailbox.name.data;
	if (s->append_too_big) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_TOOBIG,
		                  "APPEND: the messages together are larger than %zu bytes.", s->srv->cfg->max_message);
		return;
	}
	/* one streamed literal per message, or per CATENATE TEXT part */
	size_t literals = 0, n = cmd->u.append.message_count;
	for (size_t i = 0; i < n; i++) {
		const struct imap_append_message *m = &cmd->u.append.messages[i];
		for (size_t k = 0; m->catenate && k < m->part_count; k++)
			literals += !m->parts[k].is_url;
		literals += !m->catenate;
	}
	if (n == 0 || s->n_append != literals) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_SERVERBUG, "APPEND: the message could not be buffered.");
		return;
	}
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open_flags(s->srv->engine, s->user, name, MAIL_OPEN_FOR_ADD, &mb);
	if (rc == AEROGRAM_ENOTFOUND) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_TRYCREATE, "APPEND: no such mailbox.");
		return;
	}
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		return;
	}
	struct ag_append_buffer *bufs = calloc(n, sizeof(*bufs));
	struct agbuf *built = calloc(n, sizeof(*built));
	const struct imap_str *bad_url = NULL;
	rc = bufs != NULL && built != NULL ? build_messages(s, bufs, built, &bad_url) : AEROGRAM_EINTERNAL;
	/* the whole command against the quota: a MULTIAPPEND is all or nothing */
	uint64_t bytes = 0;
	for (size_t i = 0; rc == 0 && i < n; i++)
		bytes += bufs[i].len;
	int over = 0;
	if (rc == 0)
		rc = ag_quota_check(&s->quota, s->user, bytes, n, &over);
	uint32_t uidvalidity = 0;
	uint32_t *uids = NULL;
	if (rc == 0 && !over) {
		uids = calloc(n, sizeof(*uids));
		rc = uids != NULL ? append_all(s, mb, bufs, &uidvalidity, uids) : AEROGRAM_EINTERNAL;
	}
	mail_mailbox_close(mb);
	for (size_t i = 0; built != NULL && i < n; i++)
		agbuf_free(&built[i]);
	free(built);
	free(bufs);
	if (rc == URL_BAD) {
		imap_write_status_begin(&s->reply, tag, IMAP_NO);
		imap_write_code_badurl(&s->reply, bad_url->data, bad_url->len);
		imap_write_status_end(&s->reply, "CATENATE: the URL names no message or part of this user.");
		return;
	}
	if (rc == URL_TOOBIG) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_TOOBIG, "APPEND: the message would be larger than %zu bytes.",
		                  s->srv->cfg->max_message);
		return;
	}
	if (rc == 0 && over) {
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_OVERQUOTA, "Quota exceeded (mailbox for user is full)");
		return;
	}
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		free(uids);
		return;
	}
	/* The selected mailbox grew: say so now (RFC 3501 6.3.11). */
	if (s->view != NULL && strcmp(s->mailbox, name) == 0)
		ag_session_update_view(s, 0, 0, NULL, 0);
	imap_write_status_begin(&s->reply, tag, IMAP_OK);
	imap_write_code_appenduid(&s->reply, uidvalidity, uids, n);
	imap_write_status_end(&s->reply, "APPEND completed.");
	free(uids);
}

void ag_cmd_append(struct ag_session *s)
{
	ag_quota_for(s->srv, s->user, &s->quota);
	ag_session_storage(s, append_run, 0);
}
