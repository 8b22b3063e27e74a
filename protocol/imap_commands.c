/* imap_commands.c - the grammar of each command (RFC 3501 section 6 and
 * the extensions in imap_parse.h), dispatched from one table. */
#include "protocol/imap_parse_int.h"

#include <string.h>
#include <strings.h>

static bool no_args(struct imap_gram *g)
{
	return imap_eol(g);
}

static bool cmd_authenticate(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "SASL mechanism") || !imap_atom(g, &cmd->u.authenticate.mechanism, "SASL mechanism"))
		return false;
	if (imap_peek(g) == ' ') {
		/* SASL-IR: base64 or "=" for an empty response; both are atoms. */
		g->pos++;
		if (!imap_atom(g, &cmd->u.authenticate.initial, "SASL initial response"))
			return false;
		cmd->u.authenticate.has_initial = true;
	}
	return imap_eol(g);
}

static bool cmd_login(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	return imap_sp(g, "user name") && imap_astring(g, &cmd->u.login.user, "user name") &&
	       imap_sp(g, "password") && imap_astring(g, &cmd->u.login.password, "password") && imap_eol(g);
}

static bool cmd_mailbox_only(struct imap_gram *g)
{
	return imap_sp(g, "mailbox name") && imap_mailbox(g, &g->cmd->u.mailbox.mailbox) && imap_eol(g);
}

/* QRESYNC's parameter (RFC 7162 3.2.5): "(" uidvalidity SP modseq
 * [SP known-uids] [SP "(" known-sequence-set SP known-uid-set ")"] ")". */
static bool select_qresync(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "QRESYNC parameters") || imap_peek(g) != '(')
		return imap_fail(g, "Missing '(' before the QRESYNC parameters");
	g->pos++;
	if (!imap_nz_number(g, &cmd->u.mailbox.qr_uidvalidity, "QRESYNC UIDVALIDITY") ||
	    !imap_sp(g, "QRESYNC modseq") || !imap_number64(g, &cmd->u.mailbox.qr_modseq, "QRESYNC modseq"))
		return false;
	if (cmd->u.mailbox.qr_modseq == 0)
		return imap_fail(g, "Invalid QRESYNC modseq");
	if (imap_peek(g) == ' ') {
		g->pos++;
		if (imap_peek(g) != '(') {
			if (!imap_seqset(g, &cmd->u.mailbox.qr_known))
				return false;
			cmd->u.mailbox.qr_has_known = true;
			if (imap_peek(g) == ' ')
				g->pos++;
		}
		if (imap_peek(g) == '(') {
			g->pos++;
			if (!imap_seqset(g, &cmd->u.mailbox.qr_match_seqs) || !imap_sp(g, "known UIDs") ||
			    !imap_seqset(g, &cmd->u.mailbox.qr_match_uids) ||
			    !imap_expect(g, ')', "Missing ')' after the sequence match data"))
				return false;
			cmd->u.mailbox.qr_has_match = true;
		}
	}
	if (!imap_expect(g, ')', "Missing ')' at the end of the QRESYNC parameters"))
		return false;
	cmd->u.mailbox.qresync = true;
	return true;
}

static bool select_param(struct imap_gram *g, void *arg)
{
	(void)arg;
	if (imap_keyword(g, "CONDSTORE")) {
		g->cmd->u.mailbox.condstore = true;
		return true;
	}
	if (imap_keyword(g, "QRESYNC"))
		return select_qresync(g);
	return imap_fail(g, "Unknown SELECT parameter");
}

/* SELECT / EXAMINE with the optional parameters of RFC 4466 (CONDSTORE,
 * QRESYNC). */
static bool cmd_select(struct imap_gram *g)
{
	if (!imap_sp(g, "mailbox name") || !imap_mailbox(g, &g->cmd->u.mailbox.mailbox))
		return false;
	if (imap_peek(g) == ' ') {
		g->pos++;
		if (!imap_paren_list(g, "SELECT parameters", NULL, false, select_param, NULL))
			return false;
	}
	return imap_eol(g);
}

/* CREATE with the parameters of RFC 4466; the one known is USE (RFC 6154):
 * CREATE name (USE (\Sent \Archive)). */
static bool cmd_create(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "mailbox name") || !imap_mailbox(g, &cmd->u.mailbox.mailbox))
		return false;
	if (imap_peek(g) == ' ') {
		g->pos++;
		if (imap_peek(g) != '(')
			return imap_fail(g, "Missing '(' before the CREATE parameters");
		g->pos++;
		if (!imap_keyword(g, "USE"))
			return imap_fail(g, "Unknown CREATE parameter");
		if (!imap_sp(g, "USE attributes"))
			return false;
		if (imap_peek(g) != '(')
			return imap_fail(g, "Missing '(' before the USE attributes");
		if (!imap_flag_list(g, &cmd->u.mailbox.use, false))
			return false;
		for (size_t i = 0; i < cmd->u.mailbox.use.count; i++)
			if (cmd->u.mailbox.use.flags[i].data[0] != '\\')
				return imap_fail(g, "Invalid USE attribute");
		cmd->u.mailbox.has_use = true;
		if (!imap_expect(g, ')', "Missing ')' at the end of the CREATE parameters"))
			return false;
	}
	return imap_eol(g);
}

static bool cmd_rename(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	return imap_sp(g, "mailbox name") && imap_mailbox(g, &cmd->u.rename.from) &&
	       imap_sp(g, "new mailbox name") && imap_mailbox(g, &cmd->u.rename.to) && imap_eol(g);
}

/* list-mailbox: an atom that may hold wildcards and ']', or a string. */
static bool list_mailbox(struct imap_gram *g, struct imap_str *out)
{
	int c = imap_peek(g);
	if (c == '"' || c == '{')
		return imap_string(g, out, "mailbox pattern");
	return imap_atom_ext(g, out, "mailbox pattern", true, true);
}

struct list_option {
	const char *name;
	unsigned bit;
};

static const struct list_option list_selection[] = {
	{ "SUBSCRIBED", IMAP_LIST_SEL_SUBSCRIBED },
	{ "REMOTE", IMAP_LIST_SEL_REMOTE },
	{ "RECURSIVEMATCH", IMAP_LIST_SEL_RECURSIVEMATCH },
	{ "SPECIAL-USE", IMAP_LIST_SEL_SPECIAL_USE },
}, list_return[] = {
	{ "SUBSCRIBED", IMAP_LIST_RET_SUBSCRIBED },
	{ "CHILDREN", IMAP_LIST_RET_CHILDREN },
	{ "STATUS", IMAP_LIST_RET_STATUS },
	{ "SPECIAL-USE", IMAP_LIST_RET_SPECIAL_USE },
};

/* The bit of the option at the cursor, moved past; 0 (an error recorded)
 * when `table` does not have it. */
static unsigned list_option(struct imap_gram *g, const struct list_option *table, size_t count, const char *what)
{
	size_t n = imap_atom_len_at(g);
	int i = imap_lookup(g, n, table, count, sizeof(*table));
	if (i < 0) {
		imap_fail(g, "Unknown option in %s", what);
		return 0;
	}
	g->pos += n;
	return table[i].bit;
}

static bool selection_option(struct imap_gram *g, void *arg)
{
	(void)arg;
	unsigned bit = list_option(g, list_selection, COUNT_OF(list_selection), "LIST selection options");
	g->cmd->u.list.selection |= bit;
	return bit != 0;
}

static bool return_option(struct imap_gram *g, void *arg)
{
	(void)arg;
	unsigned bit = list_option(g, list_return, COUNT_OF(list_return), "LIST RETURN options");
	g->cmd->u.list.returns |= bit;
	if (bit == IMAP_LIST_RET_STATUS)
		return imap_sp(g, "STATUS items") && imap_status_item_list(g, &g->cmd->u.list.status);
	return bit != 0;
}

static bool list_pattern(struct imap_gram *g, void *arg)
{
	struct imap_command *cmd = g->cmd;
	(void)arg;
	IMAP_GROW(g, cmd->u.list.patterns, cmd->u.list.pattern_count);
	if (!list_mailbox(g, &cmd->u.list.patterns[cmd->u.list.pattern_count]))
		return false;
	cmd->u.list.pattern_count++;
	return true;
}

static bool cmd_list(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	bool lsub = cmd->kind == IMAP_CMD_LSUB;
	if (!imap_sp(g, "reference name"))
		return false;
	if (!lsub && imap_peek(g) == '(') {
		if (!imap_paren_list(g, "LIST selection options", NULL, true, selection_option, NULL) ||
		    !imap_sp(g, "reference name"))
			return false;
		/* RFC 5258 3.1: RECURSIVEMATCH alone, or only with REMOTE, is an error */
		if ((cmd->u.list.selection & IMAP_LIST_SEL_RECURSIVEMATCH) &&
		    !(cmd->u.list.selection & ~(IMAP_LIST_SEL_RECURSIVEMATCH | IMAP_LIST_SEL_REMOTE)))
			return imap_fail(g, "RECURSIVEMATCH needs another selection option");
	}
	if (!imap_mailbox(g, &cmd->u.list.reference) || !imap_sp(g, "mailbox pattern"))
		return false;
	if (!lsub && imap_peek(g) == '(') {
		if (!imap_paren_list(g, "mailbox patterns", NULL, false, list_pattern, NULL))
			return false;
	} else if (!list_pattern(g, NULL)) {
		return false;
	}
	if (!lsub && imap_peek(g) == ' ') {
		g->pos++;
		if (!imap_keyword(g, "RETURN"))
			return imap_fail(g, "Unexpected extra arguments");
		if (!imap_sp(g, "LIST RETURN options") ||
		    !imap_paren_list(g, "LIST RETURN options", NULL, true, return_option, NULL))
			return false;
	}
	return imap_eol(g);
}

static bool cmd_status(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	return imap_sp(g, "mailbox name") && imap_mailbox(g, &cmd->u.status.mailbox) &&
	       imap_sp(g, "STATUS items") && imap_status_item_list(g, &cmd->u.status.items) && imap_eol(g);
}

/* A streamed APPEND literal ({n} or ~{n}) at the cursor: a message or a
 * CATENATE TEXT part. Sets *size, *binary and *index (which streamed
 * literal of the command it is). */
static bool append_literal(struct imap_gram *g, uint64_t *size, bool *binary, size_t *index, const char *what)
{
	/* literal8 (RFC 3516): the streaming side reads "~{n}" as it reads
	 * "{n}"; only here may the bytes be NUL. */
	if (imap_peek(g) == '~' && g->pos + 1 < g->len && g->buf[g->pos + 1] == '{') {
		*binary = true;
		g->pos++;
	}
	if (imap_peek(g) != '{')
		return imap_fail(g, "The %s must be a literal", what);
	*index = g->literal_index;
	g->in_message = true;
	struct imap_str bytes;
	bool ok = imap_string(g, &bytes, what);
	g->in_message = false;
	if (!ok)
		return false;
	g->literal_index++;
	*size = bytes.len;
	return true;
}

/* cat-part: TEXT literal or URL astring, of the message `arg`. */
static bool cat_part(struct imap_gram *g, void *arg)
{
	struct imap_append_message *msg = arg;
	IMAP_GROW(g, msg->parts, msg->part_count);
	struct imap_cat_part *part = &msg->parts[msg->part_count];
	if (imap_keyword(g, "TEXT")) {
		if (!imap_sp(g, "CATENATE TEXT"))
			return false;
		msg->part_count++;
		return append_literal(g, &part->size, &part->binary, &part->literal, "CATENATE TEXT part");
	}
	if (imap_keyword(g, "URL")) {
		if (!imap_sp(g, "CATENATE URL") || !imap_astring(g, &part->url, "CATENATE URL"))
			return false;
		part->is_url = true;
		msg->part_count++;
		return true;
	}
	if (imap_peek(g) == ')' && msg->part_count == 0)
		return imap_fail(g, "Empty CATENATE list");
	return imap_fail(g, "Expected TEXT or URL in CATENATE");
}

/* CATENATE (RFC 4469): "(" cat-part *(SP cat-part) ")". */
static bool catenate(struct imap_gram *g, struct imap_append_message *msg)
{
	return imap_sp(g, "CATENATE parts") && imap_paren_list(g, "CATENATE parts", NULL, false, cat_part, msg);
}

/* APPEND mailbox 1*(SP [flag-list SP] [date-time SP] append-data): more
 * than one message is MULTIAPPEND (RFC 3502); append-data is a literal, a
 * literal8 (RFC 3516) or CATENATE (RFC 4469). */
static bool cmd_append(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "mailbox name") || !imap_mailbox(g, &cmd->u.append.mailbox))
		return false;
	do {
		if (!imap_sp(g, "APPEND message"))
			return false;
		IMAP_GROW(g, cmd->u.append.messages, cmd->u.append.message_count);
		struct imap_append_message *msg = &cmd->u.append.messages[cmd->u.append.message_count];
		if (imap_peek(g) == '(') {
			if (!imap_flag_list(g, &msg->flags, false) || !imap_sp(g, "APPEND message"))
				return false;
			msg->has_flags = true;
		}
		if (imap_peek(g) == '"') {
			if (!imap_date_time(g, &msg->date) || !imap_sp(g, "APPEND message"))
				return false;
			msg->has_date = true;
		}
		cmd->u.append.message_count++;
		g->message_index = cmd->u.append.message_count - 1;
		if (imap_keyword(g, "CATENATE")) {
			msg->catenate = true;
			if (!catenate(g, msg))
				return false;
			continue;
		}
		if (!append_literal(g, &msg->size, &msg->binary, &msg->literal, "APPEND message"))
			return false;
	} while (imap_peek(g) == ' ');
	return imap_eol(g);
}

static bool store_flags(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (imap_peek(g) == '+' || imap_peek(g) == '-') {
		cmd->u.store.mode = imap_peek(g) == '+' ? IMAP_STORE_ADD : IMAP_STORE_REMOVE;
		g->pos++;
	}
	if (imap_keyword(g, "FLAGS")) {
		cmd->u.store.silent = false;
	} else if (imap_keyword(g, "FLAGS.SILENT")) {
		cmd->u.store.silent = true;
	} else {
		if (imap_at_eol(g))
			return imap_fail(g, "Missing argument: STORE data item");
		return imap_fail(g, "Invalid STORE data item: expected [+|-]FLAGS[.SILENT]");
	}
	if (!imap_sp(g, "flags"))
		return false;
	return imap_flag_list(g, &cmd->u.store.flags, false);
}

static bool cmd_store(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "sequence set") || !imap_seqset(g, &cmd->u.store.set) || !imap_sp(g, "STORE data item"))
		return false;
	if (imap_peek(g) == '(') {
		g->pos++;
		if (!imap_keyword(g, "UNCHANGEDSINCE"))
			return imap_fail(g, "Unknown STORE modifier");
		if (!imap_sp(g, "UNCHANGEDSINCE value") ||
		    !imap_number64(g, &cmd->u.store.unchangedsince, "UNCHANGEDSINCE value") ||
		    !imap_expect(g, ')', "Missing ')' at the end of the STORE modifiers"))
			return false;
		cmd->u.store.has_unchangedsince = true;
		if (!imap_sp(g, "STORE data item"))
			return false;
	}
	return store_flags(g) && imap_eol(g);
}

static bool cmd_copy(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	return imap_sp(g, "sequence set") && imap_seqset(g, &cmd->u.copy.set) && imap_sp(g, "mailbox name") &&
	       imap_mailbox(g, &cmd->u.copy.mailbox) && imap_eol(g);
}

static bool cmd_expunge(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!cmd->uid)
		return imap_eol(g);
	cmd->u.expunge.has_set = true;
	return imap_sp(g, "sequence set") && imap_seqset(g, &cmd->u.expunge.set) && imap_eol(g);
}

/* A list of at most `max` pairs into arrays allocated beforehand (ID's
 * fields, SETQUOTA's resources): `pair` reads pair number *count. */
struct bounded_list {
	size_t max, *count;
	const char *too_many;
	bool (*pair)(struct imap_gram *g, size_t i);
};

static bool bounded_item(struct imap_gram *g, void *arg)
{
	const struct bounded_list *l = arg;
	if (*l->count == l->max)
		return imap_fail(g, "%s", l->too_many);
	if (!l->pair(g, *l->count))
		return false;
	(*l->count)++;
	return true;
}

/* RFC 2971: at most 30 field-value pairs. */
#define ID_MAX_PAIRS 30

static bool id_pair(struct imap_gram *g, size_t i)
{
	struct imap_command *cmd = g->cmd;
	return imap_string(g, &cmd->u.id.names[i], "ID field name") && imap_sp(g, "ID field value") &&
	       imap_nstring(g, &cmd->u.id.values[i], "ID field value");
}

static bool cmd_id(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "ID parameters"))
		return false;
	if (imap_keyword(g, "NIL")) {
		cmd->u.id.nil = true;
		return imap_eol(g);
	}
	if (imap_peek(g) != '(')
		return imap_fail(g, "Expected NIL or '(' for the ID parameters");
	cmd->u.id.names = imap_arena_calloc(g->arena, ID_MAX_PAIRS, sizeof(struct imap_str));
	cmd->u.id.values = imap_arena_calloc(g->arena, ID_MAX_PAIRS, sizeof(struct imap_str));
	struct bounded_list l = { ID_MAX_PAIRS, &cmd->u.id.count, "Too many ID parameters", id_pair };
	return imap_paren_list(g, "ID parameters", NULL, true, bounded_item, &l) && imap_eol(g);
}

/* 1*(SP item) up to the end of the line. */
static bool sp_list(struct imap_gram *g, const char *what, bool (*item)(struct imap_gram *g))
{
	do {
		if (!imap_sp(g, what) || !item(g))
			return false;
	} while (!imap_at_eol(g));
	return imap_eol(g);
}

static bool enable_cap(struct imap_gram *g)
{
	return imap_push_str(g, &g->cmd->u.enable.caps, &g->cmd->u.enable.count, imap_atom, "capability");
}

static bool cmd_enable(struct imap_gram *g)
{
	return sp_list(g, "capability", enable_cap);
}

/* RFC 9208: GETQUOTA quota-root. */
static bool cmd_getquota(struct imap_gram *g)
{
	return imap_sp(g, "quota root") && imap_astring(g, &g->cmd->u.quota.root, "quota root") && imap_eol(g);
}

/* RFC 9208: SETQUOTA quota-root SP "(" [resource-name SP number64 *(SP
 * resource-name SP number64)] ")". Names are atoms: unknown ones are
 * kept for the server to refuse. */
#define SETQUOTA_MAX_RESOURCES 16

static bool quota_resource(struct imap_gram *g, size_t i)
{
	struct imap_command *cmd = g->cmd;
	return imap_atom(g, &cmd->u.quota.names[i], "quota resource name") && imap_sp(g, "quota resource limit") &&
	       imap_number64(g, &cmd->u.quota.limits[i], "quota resource limit");
}

static bool cmd_setquota(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "quota root") || !imap_astring(g, &cmd->u.quota.root, "quota root") ||
	    !imap_sp(g, "quota resource list"))
		return false;
	cmd->u.quota.names = imap_arena_calloc(g->arena, SETQUOTA_MAX_RESOURCES, sizeof(struct imap_str));
	cmd->u.quota.limits = imap_arena_calloc(g->arena, SETQUOTA_MAX_RESOURCES, sizeof(uint64_t));
	struct bounded_list l = { SETQUOTA_MAX_RESOURCES, &cmd->u.quota.count, "Too many quota resources",
				  quota_resource };
	return imap_paren_list(g, "quota resource list", NULL, true, bounded_item, &l) && imap_eol(g);
}

/* RFC 4978: COMPRESS SP atom; the session refuses a mechanism it does not know. */
static bool cmd_compress(struct imap_gram *g)
{
	if (!imap_sp(g, "compression mechanism") ||
	    !imap_atom(g, &g->cmd->u.compress.mechanism, "compression mechanism"))
		return false;
	return imap_eol(g);
}

static bool cancel_tag(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (imap_peek(g) != '"' && imap_peek(g) != '{')
		return imap_fail(g, "CANCELUPDATE takes quoted tags");
	return imap_push_str(g, &cmd->u.cancelupdate.tags, &cmd->u.cancelupdate.count, imap_string, "search tag");
}

/* RFC 5267 4.3.5: CANCELUPDATE 1*(SP quoted), the tags of searches. */
static bool cmd_cancelupdate(struct imap_gram *g)
{
	return sp_list(g, "search tag", cancel_tag);
}

static bool cmd_fetch(struct imap_gram *g)
{
	return imap_gram_fetch(g);
}

static bool cmd_search(struct imap_gram *g)
{
	return imap_gram_search(g);
}

static bool cmd_sort(struct imap_gram *g)
{
	return imap_gram_sort(g);
}

static bool cmd_thread(struct imap_gram *g)
{
	return imap_gram_thread(g);
}

static const struct command_def {
	const char *name;
	enum imap_cmd_kind kind;
	bool uid_form;               /* may follow "UID " */
	bool (*parse)(struct imap_gram *g);
} commands[] = {
	{ "APPEND", IMAP_CMD_APPEND, false, cmd_append },
	{ "AUTHENTICATE", IMAP_CMD_AUTHENTICATE, false, cmd_authenticate },
	{ "CANCELUPDATE", IMAP_CMD_CANCELUPDATE, false, cmd_cancelupdate },
	{ "CAPABILITY", IMAP_CMD_CAPABILITY, false, no_args },
	{ "CHECK", IMAP_CMD_CHECK, false, no_args },
	{ "CLOSE", IMAP_CMD_CLOSE, false, no_args },
	{ "COMPRESS", IMAP_CMD_COMPRESS, false, cmd_compress },
	{ "COPY", IMAP_CMD_COPY, true, cmd_copy },
	{ "CREATE", IMAP_CMD_CREATE, false, cmd_create },
	{ "DELETE", IMAP_CMD_DELETE, false, cmd_mailbox_only },
	{ "ENABLE", IMAP_CMD_ENABLE, false, cmd_enable },
	{ "EXAMINE", IMAP_CMD_EXAMINE, false, cmd_select },
	{ "EXPUNGE", IMAP_CMD_EXPUNGE, true, cmd_expunge },
	{ "FETCH", IMAP_CMD_FETCH, true, cmd_fetch },
	{ "GETQUOTA", IMAP_CMD_GETQUOTA, false, cmd_getquota },
	{ "GETQUOTAROOT", IMAP_CMD_GETQUOTAROOT, false, cmd_mailbox_only },
	{ "ID", IMAP_CMD_ID, false, cmd_id },
	{ "IDLE", IMAP_CMD_IDLE, false, no_args },
	{ "LIST", IMAP_CMD_LIST, false, cmd_list },
	{ "LOGIN", IMAP_CMD_LOGIN, false, cmd_login },
	{ "LOGOUT", IMAP_CMD_LOGOUT, false, no_args },
	{ "LSUB", IMAP_CMD_LSUB, false, cmd_list },
	{ "MOVE", IMAP_CMD_MOVE, true, cmd_copy },
	{ "NAMESPACE", IMAP_CMD_NAMESPACE, false, no_args },
	{ "NOOP", IMAP_CMD_NOOP, false, no_args },
	{ "RENAME", IMAP_CMD_RENAME, false, cmd_rename },
	{ "SEARCH", IMAP_CMD_SEARCH, true, cmd_search },
	{ "SELECT", IMAP_CMD_SELECT, false, cmd_select },
	{ "SETQUOTA", IMAP_CMD_SETQUOTA, false, cmd_setquota },
	{ "SORT", IMAP_CMD_SORT, true, cmd_sort },
	{ "STARTTLS", IMAP_CMD_STARTTLS, false, no_args },
	{ "STATUS", IMAP_CMD_STATUS, false, cmd_status },
	{ "STORE", IMAP_CMD_STORE, true, cmd_store },
	{ "SUBSCRIBE", IMAP_CMD_SUBSCRIBE, false, cmd_mailbox_only },
	{ "THREAD", IMAP_CMD_THREAD, true, cmd_thread },
	{ "UNSELECT", IMAP_CMD_UNSELECT, false, no_args },
	{ "UNSUBSCRIBE", IMAP_CMD_UNSUBSCRIBE, false, cmd_mailbox_only },
};

static const struct command_def *find_command(const char *name, size_t len)
{
	/* The table is sorted: a binary search over it. */
	size_t lo = 0, hi = COUNT_OF(commands);
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		size_t n = strlen(commands[mid].name);
		int c = strncasecmp(name, commands[mid].name, len < n ? len : n);
		if (c == 0)
			c = len < n ? -1 : len > n ? 1 : 0;
		if (c == 0)
			return &commands[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static bool tag_char(int c)
{
	return (imap_is_atom_char(c) && c != '+') || c == ']';
}

enum imap_gram_result imap_gram_command(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	size_t start = g->pos;
	while (g->pos < g->len && tag_char((unsigned char)g->buf[g->pos]))
		g->pos++;
	if (g->pos == start) {
		imap_fail(g, imap_peek(g) == ' ' ? "Missing tag" : "Invalid tag");
		return IMAP_GRAM_ERROR;
	}
	if (imap_peek(g) != ' ' && !imap_at_eol(g)) {
		imap_fail(g, "Invalid tag");
		return IMAP_GRAM_ERROR;
	}
	cmd->tag.len = g->pos - start;
	cmd->tag.data = imap_arena_strdup(g->arena, g->buf + start, cmd->tag.len);
	if (!imap_sp(g, "command name"))
		return IMAP_GRAM_ERROR;
	size_t n = imap_atom_len_at(g);
	if (n == 0) {
		imap_fail(g, "Missing command name");
		return IMAP_GRAM_ERROR;
	}
	const struct command_def *def;
	if (n == 3 && strncasecmp(g->buf + g->pos, "UID", 3) == 0) {
		g->pos += n;
		if (!imap_sp(g, "command after UID"))
			return IMAP_GRAM_ERROR;
		n = imap_atom_len_at(g);
		def = find_command(g->buf + g->pos, n);
		if (def == NULL || !def->uid_form) {
			imap_fail(g, "Unknown UID command: %.*s", (int)(n > 40 ? 40 : n), g->buf + g->pos);
			return IMAP_GRAM_ERROR;
		}
		cmd->uid = true;
	} else {
		def = find_command(g->buf + g->pos, n);
		if (def == NULL) {
			imap_fail(g, "Unknown command: %.*s", (int)(n > 40 ? 40 : n), g->buf + g->pos);
			return IMAP_GRAM_ERROR;
		}
	}
	g->pos += n;
	cmd->kind = def->kind;
	cmd->name = def->name;
	if (def->parse(g))
		return IMAP_GRAM_OK;
	return g->need_literal ? IMAP_GRAM_NEED_LITERAL : IMAP_GRAM_ERROR;
}
