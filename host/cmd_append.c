/* cmd_append.c - APPEND (with MULTIAPPEND's several messages and UIDPLUS's
 * APPENDUID).
 *
 * The parser streams each message's bytes; the session collects them (at
 * most max_message each, a limit checked before any byte is read). Here,
 * on a worker, each message is parsed once so that its summary carries the
 * header block and the serialised structure: FETCH ENVELOPE and
 * BODYSTRUCTURE later never need the body. */
#include <stdlib.h>
#include <string.h>

#include "host/commands.h"
#include "host/mail_reply.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"

static int append_one(struct mail_mailbox *mb, const struct ag_append_buffer *buf,
                      const struct imap_append_message *meta, uint32_t *uidvalidity, uint32_t *uid)
{
	struct mime_message *msg = mime_parse(buf->data, buf->len);
	if (msg == NULL)
		return AEROGRAM_EINTERNAL;
	struct agbuf structure = AGBUF_INIT;
	mime_serial_encode(msg, &structure);
	struct mail_new_message nm = { 0 };
	nm.body = (const uint8_t *)buf->data;
	nm.body_len = buf->len;
	nm.header = (const uint8_t *)buf->data;
	nm.header_len = msg->root->body_offset <= buf->len ? (size_t)msg->root->body_offset : buf->len;
	nm.bodystructure = (const uint8_t *)structure.data;
	nm.bodystructure_len = structure.len;
	if (meta->has_date) {
		int64_t t = imap_datetime_to_unix(&meta->date);
		nm.internal_date_ms = t > 0 ? (uint64_t)t * 1000 : 1;
	}
	const char **keywords = NULL;
	size_t n_keywords = 0;
	if (meta->has_flags && meta->flags.count > 0) {
		keywords = calloc(meta->flags.count, sizeof(*keywords));
		for (size_t i = 0; keywords != NULL && i < meta->flags.count; i++) {
			const struct imap_str *f = &meta->flags.flags[i];
			int is_recent;
			uint32_t bit = ag_flag_bit(f->data, f->len, &is_recent);
			if (bit != 0)
				nm.flags |= bit;
			else if (!is_recent && f->data[0] != '\\')
				keywords[n_keywords++] = f->data;
		}
	}
	nm.keywords = keywords;
	nm.n_keywords = n_keywords;
	int rc = mail_append(mb, &nm, uidvalidity, uid);
	free(keywords);
	agbuf_free(&structure);
	mime_free(msg);
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
	if (s->n_append != cmd->u.append.message_count) {
		agbuf_printf(&s->reply, "%s NO [SERVERBUG] APPEND: the message could not be buffered.\r\n", tag);
		return;
	}
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open(s->srv->engine, s->user, name, &mb);
	if (rc == AEROGRAM_ENOTFOUND) {
		agbuf_printf(&s->reply, "%s NO [TRYCREATE] APPEND: no such mailbox.\r\n", tag);
		return;
	}
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		return;
	}
	uint32_t uidvalidity = 0;
	uint32_t *uids = calloc(s->n_append ? s->n_append : 1, sizeof(*uids));
	for (size_t i = 0; rc == 0 && i < s->n_append; i++)
		rc = uids ? append_one(mb, &s->append[i], &cmd->u.append.messages[i], &uidvalidity, &uids[i])
		          : AEROGRAM_EINTERNAL;
	mail_mailbox_close(mb);
	if (rc != 0) {
		ag_reply_error(&s->reply, tag, rc, "APPEND");
		free(uids);
		return;
	}
	/* The selected mailbox grew: say so now (RFC 3501 6.3.11). */
	if (s->view != NULL && strcmp(s->mailbox, name) == 0)
		ag_session_update_view(s, 0, 0, NULL, 0);
	agbuf_printf(&s->reply, "%s OK [APPENDUID %u ", tag, uidvalidity);
	for (size_t i = 0; i < s->n_append; i++)
		agbuf_printf(&s->reply, "%s%u", i ? "," : "", uids[i]);
	agbuf_puts(&s->reply, "] APPEND completed.\r\n");
	free(uids);
}

void ag_cmd_append(struct ag_session *s)
{
	ag_session_storage(s, append_run, 0);
}
