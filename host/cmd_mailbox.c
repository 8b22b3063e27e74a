/* cmd_mailbox.c - the mailbox list: CREATE, DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, LIST, LSUB, STATUS.
 *
 * Names are kept as the client sends them (modified UTF-7), with '.' as the
 * hierarchy delimiter and INBOX folded to upper case by the parser. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/commands.h"
#include "host/list_match.h"
#include "host/log.h"
#include "host/mail_reply.h"
#include "protocol/imap_write.h"
#include "protocol/mutf7.h"

static const char *name_of(const struct imap_mailbox *mb)
{
	return mb->name.data;
}

/* "a.b." names the hierarchy "a.b" (RFC 3501 6.3.3): the trailing
 * delimiter is dropped. Returns a copy, caller frees. */
static char *without_trailing_delimiter(const char *name)
{
	char *copy = strdup(name);
	if (copy == NULL)
		return NULL;
	size_t len = strlen(copy);
	while (len > 1 && copy[len - 1] == MAIL_DELIMITER)
		copy[--len] = '\0';
	return copy;
}

/* New names must be modified UTF-7 (RFC 3501 5.1.3): a client that sends
 * raw 8-bit names would otherwise create names other clients cannot show. */
static int bad_new_name(struct ag_session *s, const char *name, const char *what)
{
	if (mutf7_is_valid(name, strlen(name)))
		return 0;
	imap_write_status(&s->reply, s->cmd->tag.data, IMAP_NO, IMAP_CODE_CANNOT,
	                  "%s: the name is not valid modified UTF-7.", what);
	return 1;
}

/* The special-use attributes the store keeps (RFC 6154 2), in the order
 * LIST shows them. \All and \Flagged name virtual mailboxes this server
 * does not have. */
static const struct {
	const char *attr;
	uint32_t bit;
} special_uses[] = {
	{ "\\Archive", MAIL_SU_ARCHIVE },
	{ "\\Drafts", MAIL_SU_DRAFTS },
	{ "\\Junk", MAIL_SU_JUNK },
	{ "\\Sent", MAIL_SU_SENT },
	{ "\\Trash", MAIL_SU_TRASH },
};
#define N_SPECIAL_USES (sizeof(special_uses) / sizeof(special_uses[0]))

static void create_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	if (bad_new_name(s, name_of(&cmd->u.mailbox.mailbox), "CREATE"))
		return;
	/* CREATE-SPECIAL-USE (RFC 6154 3): a use this server cannot give
	 * creates nothing and answers [USEATTR] */
	uint32_t su = 0;
	for (size_t i = 0; cmd->u.mailbox.has_use && i < cmd->u.mailbox.use.count; i++) {
		const struct imap_str *a = &cmd->u.mailbox.use.flags[i];
		size_t k;
		for (k = 0; k < N_SPECIAL_USES; k++)
			if (strcasecmp(a->data, special_uses[k].attr) == 0)
				break;
		if (k == N_SPECIAL_USES) {
			imap_write_status(&s->reply, cmd->tag.data, IMAP_NO, IMAP_CODE_USEATTR,
			                  "%.*s is not a special use this server supports.", (int)(a->len > 64 ? 64 : a->len),
			                  a->data);
			return;
		}
		su |= special_uses[k].bit;
	}
	char *name = without_trailing_delimiter(name_of(&cmd->u.mailbox.mailbox));
	int rc = name ? mail_create(s->srv->engine, s->user, name, su) : AEROGRAM_EINTERNAL;
	free(name);
	ag_reply_done(&s->reply, cmd->tag.data, rc, "CREATE");
}

static void delete_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *name = name_of(&cmd->u.mailbox.mailbox);
	if (strcmp(name, "INBOX") == 0) {
		imap_write_status(&s->reply, cmd->tag.data, IMAP_NO, IMAP_CODE_CANNOT, "INBOX cannot be deleted.");
		return;
	}
	int was_selected = s->mailbox != NULL && strcmp(s->mailbox, name) == 0;
	if (was_selected) {
		/* The client loses the selected mailbox, and is told so (RFC 7162's CLOSED). */
		ag_session_unselect(s);
		s->next_state = AG_STATE_AUTH;
		imap_write_status(&s->reply, NULL, IMAP_OK, IMAP_CODE_CLOSED, "The selected mailbox is being deleted.");
	}
	int rc = mail_delete(s->srv->engine, s->user, name);
	if (rc == MAIL_ECHILDREN)
		/* A name that is only the parent of other mailboxes (\Noselect):
		 * RFC 3501 6.3.4 makes deleting it an error. [NONEXISTENT] would
		 * contradict the LIST the client shows, and nothing else makes it
		 * work later by itself ([INUSE] means "try again"): [CANNOT] (RFC
		 * 5530, "can never succeed" as asked) with the text a client shows
		 * the user, which says what to do (Dovecot's words). */
		imap_write_status(&s->reply, cmd->tag.data, IMAP_NO, IMAP_CODE_CANNOT,
		                  "Mailbox has children, delete them first.");
	else
		ag_reply_done(&s->reply, cmd->tag.data, rc, "DELETE");
}

static void rename_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	if (bad_new_name(s, name_of(&cmd->u.rename.to), "RENAME"))
		return;
	char *to = without_trailing_delimiter(name_of(&cmd->u.rename.to));
	int rc;
	if (to == NULL)
		rc = AEROGRAM_EINTERNAL;
	else if (strcmp(to, "INBOX") == 0)
		rc = MAIL_EEXIST;
	else
		rc = mail_rename(s->srv->engine, s->user, name_of(&cmd->u.rename.from), to);
	free(to);
	ag_reply_done(&s->reply, cmd->tag.data, rc, "RENAME");
}

static void subscribe_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	int on = cmd->kind == IMAP_CMD_SUBSCRIBE;
	int rc = mail_subscribe(s->srv->engine, s->user, name_of(&cmd->u.mailbox.mailbox), on);
	ag_reply_done(&s->reply, cmd->tag.data, rc, cmd->name);
}

/* One name LIST can show: a mailbox, or a parent level that only exists
 * because something lives under it. */
struct list_entry {
	char *name;
	const struct mail_mailbox_info *info; /* NULL for a bare parent */
	int has_children;
	int subscribed;
};

static int find_entry(struct list_entry *entries, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(entries[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Adds the special-use attributes of `su` to attrs; returns the new count. */
static size_t special_use_attrs(uint32_t su, const char **attrs, size_t na)
{
	for (size_t k = 0; k < N_SPECIAL_USES; k++)
		if (su & special_uses[k].bit)
			attrs[na++] = special_uses[k].attr;
	return na;
}

/* The command's patterns, each with its reference prepended, prepared once
 * for every name (RFC 3501 6.3.8: '*' matches anything, '%' anything but
 * the delimiter; list_match.c does it in bounded time). */
struct list_patterns {
	struct ag_list_pattern *p;
	size_t n;
};

static void list_patterns_free(struct list_patterns *lp)
{
	for (size_t k = 0; k < lp->n; k++)
		ag_list_pattern_free(&lp->p[k]);
	free(lp->p);
	lp->p = NULL;
	lp->n = 0;
}

static int list_patterns_init(struct list_patterns *lp, const struct imap_command *cmd)
{
	lp->n = 0;
	lp->p = calloc(cmd->u.list.pattern_count + 1, sizeof(*lp->p));
	if (lp->p == NULL)
		return -1;
	const struct imap_str *reference = &cmd->u.list.reference.name;
	for (size_t k = 0; k < cmd->u.list.pattern_count; k++) {
		const struct imap_str *pattern = &cmd->u.list.patterns[k];
		struct agbuf b = AGBUF_INIT;
		agbuf_append(&b, reference->data, reference->len);
		agbuf_append(&b, pattern->data, pattern->len);
		agbuf_putc(&b, '\0');
		size_t len;
		char *full = agbuf_steal(&b, &len);
		if (full == NULL) {
			list_patterns_free(lp);
			return -1;
		}
		len = strlen(full);
		/* An INBOX prefix in any case is INBOX (RFC 3501 5.1). */
		if (strncasecmp(full, "INBOX", 5) == 0 && (full[5] == '\0' || full[5] == MAIL_DELIMITER))
			memcpy(full, "INBOX", 5);
		int rc = ag_list_pattern_init(&lp->p[lp->n], full, len);
		free(full);
		if (rc != 0) {
			list_patterns_free(lp);
			return -1;
		}
		lp->n++;
	}
	return 0;
}

static int matches_any(const struct list_patterns *lp, const char *name)
{
	for (size_t k = 0; k < lp->n; k++)
		if (ag_list_match(&lp->p[k], name, MAIL_DELIMITER))
			return 1;
	return 0;
}

/* LSUB "" "%" shows an unsubscribed "a" (\Noselect) when "a.b" is
 * subscribed but the pattern does not reach it (RFC 3501 6.3.9). */
static int hides_subscribed_child(const struct list_patterns *lp, const struct list_entry *entries, size_t n,
                                  const char *parent)
{
	size_t len = strlen(parent);
	for (size_t i = 0; i < n; i++) {
		const char *name = entries[i].name;
		if (entries[i].subscribed && name != NULL && strncmp(name, parent, len) == 0 &&
		    name[len] == MAIL_DELIMITER && !matches_any(lp, name))
			return 1;
	}
	return 0;
}

/* The STATUS response for `name`, from `st`. */
static void write_status(struct agbuf *out, const char *name, const struct imap_status_items *items,
                         const struct mail_status *st)
{
	const uint64_t values[IMAP_STATUS_DELETED_STORAGE + 1] = {
		[IMAP_STATUS_MESSAGES] = st->exists,
		[IMAP_STATUS_RECENT] = st->recent,
		[IMAP_STATUS_UIDNEXT] = st->uidnext,
		[IMAP_STATUS_UIDVALIDITY] = st->uidvalidity,
		[IMAP_STATUS_UNSEEN] = st->unseen,
		[IMAP_STATUS_HIGHESTMODSEQ] = st->highestmodseq,
		/* RFC 8438 and RFC 9208: octets, the sum of RFC822.SIZE (of the
		 * \Deleted messages for DELETED-STORAGE, as Cyrus answers) */
		[IMAP_STATUS_SIZE] = st->size,
		[IMAP_STATUS_DELETED] = st->deleted,
		[IMAP_STATUS_DELETED_STORAGE] = st->deleted_size,
	};
	imap_write_status_response(out, name, strlen(name), items->items, items->count, values);
}

/* The status of one mailbox by name; 0 or an error code. */
static int mailbox_status(struct ag_session *s, const char *name, const struct imap_status_items *items,
                          struct mail_status *st)
{
	int sizes = 0;
	for (size_t i = 0; i < items->count; i++)
		if (items->items[i] == IMAP_STATUS_SIZE || items->items[i] == IMAP_STATUS_DELETED_STORAGE)
			sizes = 1;
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open(s->srv->engine, s->user, name, &mb);
	if (rc == 0) {
		/* sizes the state does not know yet (messages added by an
		 * older version) come from their summaries first */
		if (sizes)
			rc = mail_mailbox_load_sizes(mb);
		if (rc == 0)
			rc = mail_mailbox_status(mb, st);
		mail_mailbox_close(mb);
	}
	return rc;
}

/* LIST, LSUB and the LIST-EXTENDED forms (RFC 5258, RFC 5819 LIST-STATUS,
 * RFC 6154 SPECIAL-USE). What this server answers where the RFCs leave a
 * choice:
 *  - \HasChildren / \HasNoChildren and the special-use attributes are on
 *    every LIST line (CHILDREN and SPECIAL-USE are announced), asked for
 *    or not; \Subscribed only when SUBSCRIBED is selected or returned.
 *  - A level that only exists because mailboxes live below it is
 *    \Noselect (as RFC 3501 has it); a subscribed name that exists
 *    neither as a mailbox nor as such a level is \NonExistent.
 *  - RECURSIVEMATCH applies to the SUBSCRIBED selection: a name matching
 *    the patterns with a subscribed descendant that does not match them
 *    carries CHILDINFO ("SUBSCRIBED"), RFC 5258 3.2 b. There is no
 *    CHILDINFO for SPECIAL-USE (RFC 6154 defines none).
 *  - REMOTE changes nothing: every mailbox is local.
 *  - RETURN (STATUS (...)) answers for each selectable mailbox listed,
 *    right after its LIST line; one that went away meanwhile gets none. */
static void list_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	int lsub = cmd->kind == IMAP_CMD_LSUB;
	const char *tag = cmd->tag.data;
	struct agbuf *out = &s->reply;
	unsigned sel = cmd->u.list.selection, ret = cmd->u.list.returns;
	int sel_sub = (sel & IMAP_LIST_SEL_SUBSCRIBED) != 0;
	int sel_su = (sel & IMAP_LIST_SEL_SPECIAL_USE) != 0;
	int recursive = (sel & IMAP_LIST_SEL_RECURSIVEMATCH) != 0;
	int show_sub = sel_sub || (ret & IMAP_LIST_RET_SUBSCRIBED);
	/* LIST "" "": the delimiter and the root. */
	if (!lsub && cmd->u.list.pattern_count == 1 && cmd->u.list.patterns[0].len == 0) {
		const char *noselect = "\\Noselect";
		imap_write_list(out, 0, &noselect, 1, MAIL_DELIMITER, "", 0);
		ag_reply_done(out, tag, 0, "LIST");
		return;
	}
	struct list_patterns lp;
	if (list_patterns_init(&lp, cmd) != 0) {
		ag_reply_error(out, tag, AEROGRAM_EINTERNAL, cmd->name);
		return;
	}
	struct mail_mailbox_info *infos;
	size_t n;
	int rc = mail_list(s->srv->engine, s->user, &infos, &n);
	if (rc != 0) {
		list_patterns_free(&lp);
		ag_reply_error(out, tag, rc, cmd->name);
		return;
	}
	int abandoned = 0, failed = 0;
	size_t done = 0; /* names looked at, for the log */
	/* Every mailbox, plus every parent level of one. */
	struct list_entry *entries = calloc(2 * n + 1, sizeof(*entries));
	size_t ne = 0, cap = 2 * n + 1;
	for (size_t i = 0; entries != NULL && i < n; i++) {
		const struct mail_mailbox_info *info = &infos[i];
		int at = find_entry(entries, ne, info->name);
		if (at < 0) {
			at = (int)ne;
			entries[ne++].name = strdup(info->name);
		}
		entries[at].info = info->exists ? info : entries[at].info;
		entries[at].subscribed |= info->subscribed;
		if (!info->exists && !info->subscribed)
			continue;
		char *parent = strdup(info->name);
		char *dot;
		while (parent != NULL && (dot = strrchr(parent, MAIL_DELIMITER)) != NULL) {
			*dot = '\0';
			int p = find_entry(entries, ne, parent);
			if (p < 0) {
				if (ne == cap) {
					struct list_entry *grown = realloc(entries, 2 * cap * sizeof(*grown));
					if (grown == NULL)
						break;
					memset(grown + cap, 0, cap * sizeof(*grown));
					entries = grown;
					cap *= 2;
				}
				p = (int)ne;
				entries[ne++].name = strdup(parent);
			}
			if (info->exists)
				entries[p].has_children = 1;
		}
		free(parent);
	}
	for (size_t i = 0; entries != NULL && i < ne; i++) {
		struct list_entry *e = &entries[i];
		/* The client left (or shutdown gave up on it): nobody reads on. */
		done = i;
		if (ag_session_abandoned(s)) {
			abandoned = 1;
			break;
		}
		if (e->name == NULL)
			continue;
		if (!matches_any(&lp, e->name))
			continue;
		if (lsub) {
			if (!e->subscribed && !hides_subscribed_child(&lp, entries, ne, e->name))
				continue;
			const char *noselect = "\\Noselect";
			imap_write_list(out, 1, &noselect, e->info == NULL || !e->subscribed ? 1 : 0, MAIL_DELIMITER,
			                e->name, strlen(e->name));
			continue;
		}
		int selected = (!sel_sub || e->subscribed) && (!sel_su || (e->info && e->info->special_use));
		/* RFC 5258 3.2 b: a name kept for its subscribed descendants */
		int childinfo = sel_sub && recursive && hides_subscribed_child(&lp, entries, ne, e->name);
		if (!selected && !childinfo)
			continue;
		if (!sel_sub && !sel_su && e->info == NULL && !e->has_children)
			continue; /* a subscription alone: not a name LIST shows */
		const char *attrs[4 + N_SPECIAL_USES];
		size_t na = 0;
		if (e->info == NULL)
			attrs[na++] = e->has_children ? "\\Noselect" : "\\NonExistent";
		if (show_sub && e->subscribed)
			attrs[na++] = "\\Subscribed";
		attrs[na++] = e->has_children ? "\\HasChildren" : "\\HasNoChildren";
		if (e->info != NULL)
			na = special_use_attrs(e->info->special_use, attrs, na);
		imap_write_list_ext(out, 0, attrs, na, MAIL_DELIMITER, e->name, strlen(e->name),
		                    childinfo ? "\"CHILDINFO\" (\"SUBSCRIBED\")" : NULL);
		struct mail_status st;
		if ((ret & IMAP_LIST_RET_STATUS) && e->info != NULL && selected) {
			/* one deleted since mail_list gets no STATUS; a store
			 * that fails fails the command */
			int st_rc = mailbox_status(s, e->name, &cmd->u.list.status, &st);
			if (st_rc == 0) {
				write_status(out, e->name, &cmd->u.list.status, &st);
			} else if (st_rc != AEROGRAM_ENOTFOUND) {
				failed = st_rc;
				break;
			}
		}
	}
	for (size_t i = 0; entries != NULL && i < ne; i++)
		free(entries[i].name);
	free(entries);
	mail_list_free(infos, n);
	list_patterns_free(&lp);
	if (abandoned) {
		ag_log_info("%s: user=%s: %s abandoned after %zu of %zu names: the client is gone", s->peer, s->user,
		            cmd->name, done, ne);
		return;
	}
	ag_reply_done(out, tag, failed, cmd->name);
}

static void status_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *name = name_of(&cmd->u.status.mailbox);
	struct mail_status st;
	int rc = mailbox_status(s, name, &cmd->u.status.items, &st);
	if (rc != 0) {
		ag_reply_error(&s->reply, cmd->tag.data, rc, "STATUS");
		return;
	}
	/* STATUS (HIGHESTMODSEQ) is a CONDSTORE enabling command (RFC 7162 3.1) */
	for (size_t i = 0; i < cmd->u.status.items.count; i++)
		if (cmd->u.status.items.items[i] == IMAP_STATUS_HIGHESTMODSEQ)
			ag_session_enable_condstore(s);
	write_status(&s->reply, name, &cmd->u.status.items, &st);
	ag_reply_done(&s->reply, cmd->tag.data, 0, "STATUS");
}

void ag_cmd_create(struct ag_session *s) { ag_session_storage(s, create_run, 0); }
void ag_cmd_delete(struct ag_session *s) { ag_session_storage(s, delete_run, 0); }
void ag_cmd_rename(struct ag_session *s) { ag_session_storage(s, rename_run, 0); }
void ag_cmd_subscribe(struct ag_session *s) { ag_session_storage(s, subscribe_run, 0); }
void ag_cmd_list(struct ag_session *s) { ag_session_storage(s, list_run, 0); }
void ag_cmd_status(struct ag_session *s) { ag_session_storage(s, status_run, 0); }
