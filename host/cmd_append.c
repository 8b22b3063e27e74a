/* cmd_append.c - APPEND (with MULTIAPPEND's several messages, RFC 3502,
 * and UIDPLUS's APPENDUID).
 *
 * The parser streams each message's bytes; the session collects them (at
 * most max_message in all, a limit checked before any byte is read). The
 * command reaches its handler only once every message arrived, so a client
 * that goes away in the middle leaves nothing behind. Here, on a worker,
 * each message is parsed once so that its summary carries the header block
 * and the serialised structure (FETCH ENVELOPE and BODYSTRUCTURE later never
 * need the body), and all of them go to the engine in one
 * mail_append_many: one log entry, every message or none. The user's quota
 * is checked first, for all of them together (quota.h). */
#include <stdlib.h>
#include <string.h>

#include "host/commands.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"

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

static void prepared_free(struct prepared *p)
{
	free(p->keywords);
	agbuf_free(&p->structure);
	mime_free(p->mime);
	free(p->saved);
}

/* Appends "[APPENDUID v uids] " with consecutive UIDs as ranges
 * (RFC 4315: a MULTIAPPEND's UIDs are a set). */
static int write_appenduid(struct agbuf *out, uint32_t uidvalidity, const uint32_t *uids, size_t n)
{
	struct imap_seqrange *ranges = calloc(n, sizeof(*ranges));
	if (ranges == NULL)
		return -1;
	size_t count = 0;
	for (size_t i = 0; i < n; i++) {
		if (count > 0 && uids[i] == ranges[count - 1].last + 1)
			ranges[count - 1].last = uids[i];
		else
			ranges[count++] = (struct imap_seqrange){ uids[i], uids[i] };
	}
	struct imap_seqset set = { count, ranges, false };
	imap_write_code_appenduid(out, uidvalidity, &set);
	free(ranges);
	return 0;
}

/* The session's view when it has the APPEND's mailbox selected (not
 * examined): it is told of the new messages right after, so they are its
 * \Recent ones, claimed in the APPEND's own log entry. */
static const struct mail_view *selected_here(const struct ag_session *s, const char *name)
{
	return s->view != NULL && !s->readonly && strcmp(s->mailbox, name) == 0 ? s->view : NULL;
}

/* Appends every message of the command at once: one log entry, so that a
 * MULTIAPPEND is all or nothing (RFC 3502) and costs one round trip. */
static int append_all(struct ag_session *s, struct mail_mailbox *mb, uint32_t *uidvalidity, uint32_t *uids)
{
	const struct imap_command *cmd = s->cmd;
	size_t n = s->n_append;
	struct prepared *prep = calloc(n, sizeof(*prep));
	struct mail_new_message *msgs = calloc(n, sizeof(*msgs));
	int rc = prep != NULL && msgs != NULL ? 0 : AEROGRAM_EINTERNAL;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = prepare_one(&s->append[i], &cmd->u.append.messages[i], &prep[i], &msgs[i]);
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
		agbuf_printf(&s->reply, "%s NO [TOOBIG] APPEND: the messages together are larger than %zu bytes.\r\n",
		             tag, s->srv->cfg->max_message);
		return;
	}
	if (s->n_append == 0 || s->n_append != cmd->u.append.message_count) {
		agbuf_printf(&s->reply, "%s NO [SERVERBUG] APPEND: the message could not be buffered.\r\n", tag);
		return;
	}
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open_flags(s->srv->engine, s->user, name, MAIL_OPEN_FOR_ADD, &mb);
	if (rc == AEROGRAM_ENOTFOUND) {
		agbuf_printf(&s->reply, "%s NO [TRYCREATE] APPEND: no such mailbox.\r\n", tag);
		return;
	}
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		return;
	}
	/* the whole command against the quota: a MULTIAPPEND is all or nothing */
	uint64_t bytes = 0;
	for (size_t i = 0; i < s->n_append; i++)
		bytes += s->append[i].len;
	int over = 0;
	rc = ag_quota_check(&s->quota, s->user, bytes, s->n_append, &over);
	if (rc == 0 && over) {
		mail_mailbox_close(mb);
		agbuf_printf(&s->reply, "%s NO [OVERQUOTA] Quota exceeded (mailbox for user is full)\r\n", tag);
		return;
	}
	if (rc != 0) {
		mail_mailbox_close(mb);
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		return;
	}
	uint32_t uidvalidity = 0;
	uint32_t *uids = calloc(s->n_append, sizeof(*uids));
	rc = uids != NULL ? append_all(s, mb, &uidvalidity, uids) : AEROGRAM_EINTERNAL;
	mail_mailbox_close(mb);
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		free(uids);
		return;
	}
	/* The selected mailbox grew: say so now (RFC 3501 6.3.11). */
	if (s->view != NULL && strcmp(s->mailbox, name) == 0)
		ag_session_update_view(s, 0, 0, NULL, 0);
	struct agbuf code = AGBUF_INIT;
	if (write_appenduid(&code, uidvalidity, uids, s->n_append) != 0)
		agbuf_reset(&code);
	agbuf_printf(&s->reply, "%s OK %sAPPEND completed.\r\n", tag, code.len > 0 ? code.data : "");
	agbuf_free(&code);
	free(uids);
}

void ag_cmd_append(struct ag_session *s)
{
	ag_quota_for(s->srv, s->user, &s->quota);
	ag_session_storage(s, append_run, 0);
}
