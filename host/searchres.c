/* searchres.c - the saved search result of RFC 5182 (see searchres.h). */
#include "host/searchres.h"

#include <stdlib.h>

#include "host/session.h"

static void bind_set(struct ag_session *s, struct imap_seqset *set)
{
	if (!set->saved)
		return;
	set->ranges = s->searchres;
	set->count = s->n_searchres;
}

static void bind_key(struct ag_session *s, struct imap_search_key *k, unsigned depth)
{
	if (k == NULL || depth > 64) /* the parser bounds the depth far below */
		return;
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		for (size_t i = 0; i < k->u.list.count; i++)
			bind_key(s, &k->u.list.keys[i], depth + 1);
		return;
	case IMAP_SEARCH_OR:
		bind_key(s, k->u.or.left, depth + 1);
		bind_key(s, k->u.or.right, depth + 1);
		return;
	case IMAP_SEARCH_NOT:
		bind_key(s, k->u.not, depth + 1);
		return;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UID:
		bind_set(s, &k->u.set);
		return;
	default:
		return;
	}
}

void ag_searchres_bind(struct ag_session *s, struct imap_command *cmd)
{
	switch (cmd->kind) {
	case IMAP_CMD_FETCH: bind_set(s, &cmd->u.fetch.set); break;
	case IMAP_CMD_STORE: bind_set(s, &cmd->u.store.set); break;
	case IMAP_CMD_COPY:
	case IMAP_CMD_MOVE: bind_set(s, &cmd->u.copy.set); break;
	case IMAP_CMD_EXPUNGE:
		if (cmd->u.expunge.has_set)
			bind_set(s, &cmd->u.expunge.set);
		break;
	case IMAP_CMD_SEARCH:
	case IMAP_CMD_SORT:   /* their criteria are a SEARCH's */
	case IMAP_CMD_THREAD: bind_key(s, cmd->u.search.key, 0); break;
	default: break;
	}
}

void ag_searchres_reset(struct ag_session *s)
{
	free(s->searchres);
	s->searchres = NULL;
	s->n_searchres = 0;
}

int ag_searchres_save(struct ag_session *s, const uint32_t *uids, size_t n)
{
	/* runs of consecutive UIDs as one range each */
	size_t runs = 0;
	for (size_t i = 0; i < n; i++)
		if (i == 0 || uids[i] != uids[i - 1] + 1)
			runs++;
	struct imap_seqrange *r = runs ? malloc(runs * sizeof(*r)) : NULL;
	ag_searchres_reset(s);
	if (runs > 0 && r == NULL)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || uids[i] != uids[i - 1] + 1)
			r[k++] = (struct imap_seqrange){ uids[i], uids[i] };
		else
			r[k - 1].last = uids[i];
	}
	s->searchres = r;
	s->n_searchres = k;
	return 0;
}
