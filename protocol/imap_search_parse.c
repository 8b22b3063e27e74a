/* imap_search_parse.c - SEARCH criteria as a tree (RFC 3501 6.4.4, with the
 * RETURN options of RFC 4731 and the MODSEQ key of RFC 7162), and the SORT
 * and THREAD commands of RFC 5256 that take the same criteria. */
#include "protocol/imap_parse_int.h"

#include <string.h>
#include <strings.h>

enum key_arg { ARG_NONE, ARG_ASTRING, ARG_KEYWORD, ARG_DATE, ARG_NUMBER, ARG_HEADER, ARG_SEQSET,
	       ARG_NOT, ARG_OR, ARG_MODSEQ, ARG_INTERVAL };

static const struct {
	const char *name;
	enum imap_search_kind kind;
	enum key_arg arg;
} search_keys[] = {
	{ "ALL", IMAP_SEARCH_ALL, ARG_NONE },
	{ "ANSWERED", IMAP_SEARCH_ANSWERED, ARG_NONE },
	{ "BCC", IMAP_SEARCH_BCC, ARG_ASTRING },
	{ "BEFORE", IMAP_SEARCH_BEFORE, ARG_DATE },
	{ "BODY", IMAP_SEARCH_BODY, ARG_ASTRING },
	{ "CC", IMAP_SEARCH_CC, ARG_ASTRING },
	{ "DELETED", IMAP_SEARCH_DELETED, ARG_NONE },
	{ "DRAFT", IMAP_SEARCH_DRAFT, ARG_NONE },
	{ "FLAGGED", IMAP_SEARCH_FLAGGED, ARG_NONE },
	{ "FROM", IMAP_SEARCH_FROM, ARG_ASTRING },
	{ "HEADER", IMAP_SEARCH_HEADER, ARG_HEADER },
	{ "KEYWORD", IMAP_SEARCH_KEYWORD, ARG_KEYWORD },
	{ "LARGER", IMAP_SEARCH_LARGER, ARG_NUMBER },
	{ "MODSEQ", IMAP_SEARCH_MODSEQ, ARG_MODSEQ },
	{ "NEW", IMAP_SEARCH_NEW, ARG_NONE },
	{ "NOT", IMAP_SEARCH_NOT, ARG_NOT },
	{ "OLD", IMAP_SEARCH_OLD, ARG_NONE },
	{ "OLDER", IMAP_SEARCH_OLDER, ARG_INTERVAL },
	{ "ON", IMAP_SEARCH_ON, ARG_DATE },
	{ "OR", IMAP_SEARCH_OR, ARG_OR },
	{ "RECENT", IMAP_SEARCH_RECENT, ARG_NONE },
	{ "SEEN", IMAP_SEARCH_SEEN, ARG_NONE },
	{ "SENTBEFORE", IMAP_SEARCH_SENTBEFORE, ARG_DATE },
	{ "SENTON", IMAP_SEARCH_SENTON, ARG_DATE },
	{ "SENTSINCE", IMAP_SEARCH_SENTSINCE, ARG_DATE },
	{ "SINCE", IMAP_SEARCH_SINCE, ARG_DATE },
	{ "SMALLER", IMAP_SEARCH_SMALLER, ARG_NUMBER },
	{ "SUBJECT", IMAP_SEARCH_SUBJECT, ARG_ASTRING },
	{ "TEXT", IMAP_SEARCH_TEXT, ARG_ASTRING },
	{ "TO", IMAP_SEARCH_TO, ARG_ASTRING },
	{ "UID", IMAP_SEARCH_UID, ARG_SEQSET },
	{ "UNANSWERED", IMAP_SEARCH_UNANSWERED, ARG_NONE },
	{ "UNDELETED", IMAP_SEARCH_UNDELETED, ARG_NONE },
	{ "UNDRAFT", IMAP_SEARCH_UNDRAFT, ARG_NONE },
	{ "UNFLAGGED", IMAP_SEARCH_UNFLAGGED, ARG_NONE },
	{ "UNKEYWORD", IMAP_SEARCH_UNKEYWORD, ARG_KEYWORD },
	{ "UNSEEN", IMAP_SEARCH_UNSEEN, ARG_NONE },
	{ "YOUNGER", IMAP_SEARCH_YOUNGER, ARG_INTERVAL },
};

static bool search_key(struct imap_gram *g, struct imap_search_key *key);
static bool search_criteria(struct imap_gram *g);

/* One more key of the AND `arg` (in parentheses or at the top level). */
static bool and_key(struct imap_gram *g, void *arg)
{
	struct imap_search_key *and = arg;
	and->kind = IMAP_SEARCH_AND;
	IMAP_GROW(g, and->u.list.keys, and->u.list.count);
	if (!search_key(g, &and->u.list.keys[and->u.list.count]))
		return false;
	and->u.list.count++;
	return true;
}

static bool key_arg(struct imap_gram *g, struct imap_search_key *key, enum key_arg arg, const char *name)
{
	switch (arg) {
	case ARG_NONE:
		return true;
	case ARG_ASTRING:
		return imap_sp(g, name) && imap_astring(g, &key->u.str, name);
	case ARG_KEYWORD:
		return imap_sp(g, name) && imap_atom(g, &key->u.str, name);
	case ARG_DATE:
		return imap_sp(g, name) && imap_search_date(g, &key->u.date);
	case ARG_NUMBER:
		return imap_sp(g, name) && imap_number(g, &key->u.size, name);
	case ARG_INTERVAL: /* RFC 5032: nz-number */
		if (!imap_sp(g, name) || !imap_number(g, &key->u.size, name))
			return false;
		if (key->u.size == 0)
			return imap_fail(g, "%s needs a nonzero interval", name);
		return true;
	case ARG_HEADER:
		return imap_sp(g, "header field name") &&
		       imap_astring(g, &key->u.header.name, "header field name") &&
		       imap_sp(g, "header value") && imap_astring(g, &key->u.header.value, "header value");
	case ARG_SEQSET:
		return imap_sp(g, name) && imap_seqset(g, &key->u.set);
	case ARG_NOT:
		key->u.not = imap_arena_calloc(g->arena, 1, sizeof(*key));
		return imap_sp(g, "NOT search key") && search_key(g, key->u.not);
	case ARG_OR:
		key->u.or.left = imap_arena_calloc(g->arena, 1, sizeof(*key));
		key->u.or.right = imap_arena_calloc(g->arena, 1, sizeof(*key));
		return imap_sp(g, "OR search key") && search_key(g, key->u.or.left) &&
		       imap_sp(g, "second OR search key") && search_key(g, key->u.or.right);
	case ARG_MODSEQ:
		if (!imap_sp(g, "MODSEQ value"))
			return false;
		if (imap_peek(g) == '"') {
			/* entry-name SP entry-type-req: metadata this server
			 * does not keep per flag; checked, then ignored. */
			struct imap_str entry;
			if (!imap_string(g, &entry, "MODSEQ entry name") || !imap_sp(g, "MODSEQ entry type"))
				return false;
			if (!imap_keyword(g, "priv") && !imap_keyword(g, "shared") && !imap_keyword(g, "all"))
				return imap_fail(g, "Invalid MODSEQ entry type");
			if (!imap_sp(g, "MODSEQ value"))
				return false;
		}
		return imap_number64(g, &key->u.modseq, name);
	}
	return imap_fail(g, "Invalid SEARCH key");
}

static bool search_key(struct imap_gram *g, struct imap_search_key *key)
{
	int c = imap_peek(g);
	if (c == '(') {
		if (++g->depth > g->max_depth)
			return imap_fail(g, "SEARCH criteria nested too deeply");
		if (g->pos + 1 < g->len && g->buf[g->pos + 1] == ')')
			return imap_fail(g, "Empty parenthesised SEARCH criteria");
		if (!imap_paren_list(g, "SEARCH criteria", "Missing ')' in SEARCH criteria", false, and_key, key))
			return false;
		g->depth--;
		return true;
	}
	if (c == '*' || c == '$' || (c >= '0' && c <= '9')) {
		key->kind = IMAP_SEARCH_SEQSET;
		return imap_seqset(g, &key->u.set);
	}
	size_t n = imap_atom_len_at(g);
	if (n == 0) {
		if (c == '\n')
			return imap_fail(g, "Missing argument: SEARCH key");
		if (c == ')')
			return imap_fail(g, "Unexpected ')' in SEARCH criteria");
		return imap_fail(g, "Invalid SEARCH key");
	}
	int i = IMAP_LOOKUP(g, n, search_keys);
	if (i < 0)
		return imap_fail(g, "Unknown SEARCH key: %.*s", (int)(n > 40 ? 40 : n), g->buf + g->pos);
	g->pos += n;
	key->kind = search_keys[i].kind;
	if (search_keys[i].arg == ARG_NOT || search_keys[i].arg == ARG_OR) {
		/* NOT NOT NOT ... recurses as deeply as parentheses do. */
		if (++g->depth > g->max_depth)
			return imap_fail(g, "SEARCH criteria nested too deeply");
		bool ok = key_arg(g, key, search_keys[i].arg, search_keys[i].name);
		g->depth--;
		return ok;
	}
	return key_arg(g, key, search_keys[i].arg, search_keys[i].name);
}

static const struct {
	const char *name;
	unsigned bit;
} return_opts[] = {
	{ "MIN", IMAP_SEARCH_RET_MIN }, { "MAX", IMAP_SEARCH_RET_MAX }, { "ALL", IMAP_SEARCH_RET_ALL },
	{ "COUNT", IMAP_SEARCH_RET_COUNT }, { "SAVE", IMAP_SEARCH_RET_SAVE }, { "PARTIAL", IMAP_SEARCH_RET_PARTIAL },
	{ "UPDATE", IMAP_SEARCH_RET_UPDATE }, { "CONTEXT", IMAP_SEARCH_RET_CONTEXT },
};

/* RFC 5267: partial-range = nz-number ":" nz-number, no "*"; 500:400 is
 * 400:500. */
static bool partial_range(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	uint32_t a, b;
	if (!imap_sp(g, "PARTIAL range"))
		return false;
	if (imap_peek(g) < '0' || imap_peek(g) > '9')
		return imap_fail(g, "Invalid PARTIAL range");
	if (!imap_nz_number(g, &a, "PARTIAL range"))
		return false;
	if (imap_peek(g) != ':')
		return imap_fail(g, "Invalid PARTIAL range: expected first:last");
	g->pos++;
	if (imap_peek(g) < '0' || imap_peek(g) > '9')
		return imap_fail(g, "Invalid PARTIAL range");
	if (!imap_nz_number(g, &b, "PARTIAL range"))
		return false;
	cmd->u.search.partial_first = a < b ? a : b;
	cmd->u.search.partial_last = a < b ? b : a;
	return true;
}

static bool return_opt(struct imap_gram *g, void *arg)
{
	struct imap_command *cmd = g->cmd;
	(void)arg;
	size_t n = imap_atom_len_at(g);
	int i = IMAP_LOOKUP(g, n, return_opts);
	if (i < 0)
		return imap_fail(g, "Unknown SEARCH RETURN option");
	unsigned bit = return_opts[i].bit;
	/* RFC 5267 4.4: one PARTIAL or one ALL at most; one UPDATE (as Dovecot) */
	if ((bit & (IMAP_SEARCH_RET_PARTIAL | IMAP_SEARCH_RET_UPDATE)) && (cmd->u.search.return_opts & bit))
		return imap_fail(g, "%s given twice in the RETURN options", return_opts[i].name);
	cmd->u.search.return_opts |= bit;
	g->pos += n;
	return bit != IMAP_SEARCH_RET_PARTIAL || partial_range(g);
}

static bool search_return(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	cmd->u.search.esearch = true;
	if (!imap_sp(g, "RETURN options") || !imap_paren_list(g, "RETURN options", NULL, true, return_opt, NULL))
		return false;
	if ((cmd->u.search.return_opts & IMAP_SEARCH_RET_PARTIAL) && (cmd->u.search.return_opts & IMAP_SEARCH_RET_ALL))
		return imap_fail(g, "PARTIAL and ALL cannot be used together");
	return imap_sp(g, "SEARCH criteria");
}

bool imap_gram_search(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "SEARCH criteria"))
		return false;
	if (imap_keyword(g, "RETURN") && !search_return(g))
		return false;
	if (imap_keyword(g, "CHARSET")) {
		if (!imap_sp(g, "charset") || !imap_astring(g, &cmd->u.search.charset, "charset") ||
		    !imap_sp(g, "SEARCH criteria"))
			return false;
		cmd->u.search.has_charset = true;
	}
	return search_criteria(g);
}

/* The search keys to the end of the line. */
static bool search_criteria(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	cmd->u.search.key = imap_arena_calloc(g->arena, 1, sizeof(struct imap_search_key));
	for (;;) {
		if (!and_key(g, cmd->u.search.key))
			return false;
		if (imap_at_eol(g))
			return imap_eol(g);
		if (imap_peek(g) != ' ')
			return imap_fail(g, "Unexpected characters in SEARCH criteria");
		g->pos++;
	}
}

/* RFC 5256: the mandatory charset of SORT and THREAD, then the keys. */
static bool charset_and_criteria(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "charset") || !imap_astring(g, &cmd->u.search.charset, "charset") ||
	    !imap_sp(g, "search criteria"))
		return false;
	cmd->u.search.has_charset = true;
	return search_criteria(g);
}

static const struct {
	const char *name;
	enum imap_sort_key key;
} sort_keys[] = {
	{ "ARRIVAL", IMAP_SORT_ARRIVAL }, { "CC", IMAP_SORT_CC }, { "DATE", IMAP_SORT_DATE },
	{ "FROM", IMAP_SORT_FROM }, { "SIZE", IMAP_SORT_SIZE }, { "SUBJECT", IMAP_SORT_SUBJECT },
	{ "TO", IMAP_SORT_TO }, { "DISPLAYFROM", IMAP_SORT_DISPLAYFROM }, { "DISPLAYTO", IMAP_SORT_DISPLAYTO },
};

/* sort-criterion = ["REVERSE" SP] sort-key */
static bool sort_criterion(struct imap_gram *g, void *arg)
{
	struct imap_command *cmd = g->cmd;
	struct imap_sort_criterion crit = { 0 };
	(void)arg;
	if (imap_keyword(g, "REVERSE")) {
		crit.reverse = true;
		if (!imap_sp(g, "sort key"))
			return false;
	}
	size_t n = imap_atom_len_at(g);
	int i = IMAP_LOOKUP(g, n, sort_keys);
	if (n == 0)
		return imap_fail(g, "Missing sort key");
	if (i < 0)
		return imap_fail(g, "Unknown sort key: %.*s", (int)(n > 40 ? 40 : n), g->buf + g->pos);
	g->pos += n;
	crit.key = sort_keys[i].key;
	IMAP_GROW(g, cmd->u.search.sort, cmd->u.search.sort_count);
	cmd->u.search.sort[cmd->u.search.sort_count++] = crit;
	return true;
}

/* sort-criteria = "(" sort-criterion *(SP sort-criterion) ")" */
static bool sort_criteria(struct imap_gram *g)
{
	return imap_paren_list(g, "sort criteria", NULL, false, sort_criterion, NULL);
}

/* SORT [RETURN (...)] (criteria) charset search: RETURN is ESORT's (RFC 5267). */
bool imap_gram_sort(struct imap_gram *g)
{
	if (!imap_sp(g, "sort criteria"))
		return false;
	if (imap_keyword(g, "RETURN") && !search_return(g))
		return false;
	return sort_criteria(g) && charset_and_criteria(g);
}

bool imap_gram_thread(struct imap_gram *g)
{
	struct imap_command *cmd = g->cmd;
	if (!imap_sp(g, "thread algorithm"))
		return false;
	if (imap_keyword(g, "ORDEREDSUBJECT"))
		cmd->u.search.thread = IMAP_THREAD_ORDEREDSUBJECT;
	else if (imap_keyword(g, "REFERENCES"))
		cmd->u.search.thread = IMAP_THREAD_REFERENCES;
	else
		return imap_fail(g, "Unknown thread algorithm");
	return charset_and_criteria(g);
}
