/* context.c - the updating search contexts of RFC 5267 (see context.h). */
#include "host/context.h"

#include <stdlib.h>
#include <string.h>

#include "host/commands.h"
#include "host/mail/mail.h"
#include "host/session.h"
#include "protocol/imap_write.h"

struct ag_context {
	struct ag_context *next;
	char *tag;
	int uid;                          /* UID SEARCH / UID SORT: results are UIDs */
	struct imap_search_key *key;      /* own copy (copy_key) */
	struct imap_sort_criterion *sort; /* SORT: the criteria; NULL for SEARCH */
	size_t n_sort;
	uint32_t *uids;                   /* the result the client holds, in order */
	size_t n;
};

static void free_key(struct imap_search_key *k);

static void free_key_parts(struct imap_search_key *k)
{
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		for (size_t i = 0; i < k->u.list.count; i++)
			free_key_parts(&k->u.list.keys[i]);
		free(k->u.list.keys);
		break;
	case IMAP_SEARCH_OR:
		free_key(k->u.or.left);
		free_key(k->u.or.right);
		break;
	case IMAP_SEARCH_NOT:
		free_key(k->u.not);
		break;
	case IMAP_SEARCH_SEQSET:
	case IMAP_SEARCH_UID:
		free(k->u.set.ranges);
		break;
	case IMAP_SEARCH_HEADER:
		free((char *)k->u.header.name.data);
		free((char *)k->u.header.value.data);
		break;
	case IMAP_SEARCH_BCC: case IMAP_SEARCH_BODY: case IMAP_SEARCH_CC: case IMAP_SEARCH_FROM:
	case IMAP_SEARCH_KEYWORD: case IMAP_SEARCH_SUBJECT: case IMAP_SEARCH_TEXT: case IMAP_SEARCH_TO:
	case IMAP_SEARCH_UNKEYWORD:
		free((char *)k->u.str.data);
		break;
	default:
		break;
	}
}

static void free_key(struct imap_search_key *k)
{
	if (k == NULL)
		return;
	free_key_parts(k);
	free(k);
}

static int copy_str(struct imap_str *dst, const struct imap_str *src)
{
	char *d = malloc(src->len + 1);
	if (d == NULL)
		return -1;
	if (src->len)
		memcpy(d, src->data, src->len);
	d[src->len] = '\0';
	dst->data = d;
	dst->len = src->len;
	return 0;
}

/* Ascending UIDs as a UID set, each run of consecutive ones a range. */
static int uids_to_set(struct imap_seqset *set, const uint32_t *uids, size_t n)
{
	set->count = 0;
	set->saved = false;
	set->ranges = malloc((n ? n : 1) * sizeof(*set->ranges));
	if (set->ranges == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (set->count > 0 && set->ranges[set->count - 1].last + 1 == uids[i])
			set->ranges[set->count - 1].last = uids[i];
		else
			set->ranges[set->count++] = (struct imap_seqrange){ uids[i], uids[i] };
	}
	return 0;
}

static struct imap_search_key *copy_key(const struct imap_search_key *k, const struct mail_view *v, unsigned depth);

/* Copies k into *d (zeroed by the caller). A set of sequence numbers
 * becomes the UIDs of the messages it names now; "$" the UIDs it stands
 * for (host/searchres.h). -1 when memory is short. */
static int copy_key_into(struct imap_search_key *d, const struct imap_search_key *k, const struct mail_view *v,
			 unsigned depth)
{
	if (depth > 64) /* the parser bounds the depth far below */
		return -1;
	d->kind = k->kind;
	switch (k->kind) {
	case IMAP_SEARCH_AND:
		d->u.list.keys = calloc(k->u.list.count ? k->u.list.count : 1, sizeof(*d->u.list.keys));
		if (d->u.list.keys == NULL)
			return -1;
		d->u.list.count = k->u.list.count;
		for (size_t i = 0; i < k->u.list.count; i++)
			if (copy_key_into(&d->u.list.keys[i], &k->u.list.keys[i], v, depth + 1) != 0)
				return -1;
		return 0;
	case IMAP_SEARCH_OR:
		d->u.or.left = copy_key(k->u.or.left, v, depth + 1);
		d->u.or.right = copy_key(k->u.or.right, v, depth + 1);
		return d->u.or.left && d->u.or.right ? 0 : -1;
	case IMAP_SEARCH_NOT:
		d->u.not = copy_key(k->u.not, v, depth + 1);
		return d->u.not ? 0 : -1;
	case IMAP_SEARCH_SEQSET:
		if (!k->u.set.saved) {
			uint32_t exists = mail_view_exists(v);
			uint32_t *uids = malloc((exists ? exists : 1) * sizeof(*uids));
			size_t n = 0;
			if (uids == NULL)
				return -1;
			for (uint32_t seq = 1; seq <= exists; seq++)
				if (imap_seqset_contains(&k->u.set, seq, exists))
					uids[n++] = mail_view_uid(v, seq);
			d->kind = IMAP_SEARCH_UID;
			int rc = uids_to_set(&d->u.set, uids, n);
			free(uids);
			return rc;
		}
		/* "$" holds UIDs (host/searchres.h) */
		/* fall through */
	case IMAP_SEARCH_UID:
		d->kind = IMAP_SEARCH_UID;
		d->u.set.count = k->u.set.count;
		d->u.set.saved = false;
		d->u.set.ranges = malloc((k->u.set.count ? k->u.set.count : 1) * sizeof(*d->u.set.ranges));
		if (d->u.set.ranges == NULL)
			return -1;
		if (k->u.set.count)
			memcpy(d->u.set.ranges, k->u.set.ranges, k->u.set.count * sizeof(*d->u.set.ranges));
		return 0;
	case IMAP_SEARCH_HEADER:
		if (copy_str(&d->u.header.name, &k->u.header.name) != 0)
			return -1;
		return copy_str(&d->u.header.value, &k->u.header.value);
	case IMAP_SEARCH_BCC: case IMAP_SEARCH_BODY: case IMAP_SEARCH_CC: case IMAP_SEARCH_FROM:
	case IMAP_SEARCH_KEYWORD: case IMAP_SEARCH_SUBJECT: case IMAP_SEARCH_TEXT: case IMAP_SEARCH_TO:
	case IMAP_SEARCH_UNKEYWORD:
		return copy_str(&d->u.str, &k->u.str);
	default:
		d->u = k->u; /* dates, sizes, modseqs: plain values */
		return 0;
	}
}

static struct imap_search_key *copy_key(const struct imap_search_key *k, const struct mail_view *v, unsigned depth)
{
	struct imap_search_key *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	if (copy_key_into(d, k, v, depth) != 0) {
		free_key(d);
		return NULL;
	}
	return d;
}

static void context_free(struct ag_context *c)
{
	free(c->tag);
	free_key(c->key);
	free(c->sort);
	free(c->uids);
	free(c);
}

int ag_context_tag_in_use(const struct ag_session *s, const char *tag)
{
	for (const struct ag_context *c = s->contexts; c != NULL; c = c->next)
		if (strcmp(c->tag, tag) == 0)
			return 1;
	return 0;
}

static void write_noupdate(struct agbuf *out, const char *tag, const char *why)
{
	imap_write_status_begin(out, NULL, IMAP_NO);
	imap_write_code_noupdate(out, tag);
	imap_write_status_end(out, why);
}

void ag_context_add(struct ag_session *s, const uint32_t *uids, size_t n)
{
	const struct imap_command *cmd = s->cmd;
	if (s->n_contexts >= AG_CONTEXT_MAX) {
		write_noupdate(&s->reply, cmd->tag.data, "Too many contexts, no updates will follow.");
		return;
	}
	struct ag_context *c = calloc(1, sizeof(*c));
	int ok = c != NULL;
	if (ok) {
		c->uid = cmd->uid;
		c->tag = strdup(cmd->tag.data);
		c->key = copy_key(cmd->u.search.key, s->view, 0);
		c->uids = malloc((n ? n : 1) * sizeof(*c->uids));
		ok = c->tag && c->key && c->uids;
	}
	if (ok && n)
		memcpy(c->uids, uids, n * sizeof(*uids));
	if (ok && cmd->kind == IMAP_CMD_SORT) {
		c->n_sort = cmd->u.search.sort_count;
		c->sort = malloc((c->n_sort ? c->n_sort : 1) * sizeof(*c->sort));
		if (c->sort == NULL)
			ok = 0;
		else if (c->n_sort)
			memcpy(c->sort, cmd->u.search.sort, c->n_sort * sizeof(*c->sort));
	}
	if (!ok) {
		if (c)
			context_free(c);
		write_noupdate(&s->reply, cmd->tag.data, "Out of memory, no updates will follow.");
		return;
	}
	c->n = n;
	/* at the end: updates are told in the order the contexts were made */
	struct ag_context **link = &s->contexts;
	while (*link != NULL)
		link = &(*link)->next;
	*link = c;
	s->n_contexts++;
}

void ag_context_free_all(struct ag_session *s)
{
	while (s->contexts != NULL) {
		struct ag_context *c = s->contexts;
		s->contexts = c->next;
		context_free(c);
	}
	s->n_contexts = 0;
}

void ag_context_end_all(struct ag_session *s, struct agbuf *out)
{
	for (const struct ag_context *c = s->contexts; c != NULL; c = c->next)
		write_noupdate(out, c->tag, "Out of memory, no more updates will follow.");
	ag_context_free_all(s);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int has(const uint32_t *sorted, size_t n, uint32_t uid)
{
	return bsearch(&uid, sorted, n, sizeof(uid), cmp_u32) != NULL;
}

/* The sequence number a UID had in `before` (ascending), 0 if none. */
static uint32_t seq_before(const uint32_t *before, size_t n_before, uint32_t uid)
{
	const uint32_t *p = bsearch(&uid, before, n_before, sizeof(uid), cmp_u32);
	return p ? (uint32_t)(p - before) + 1 : 0;
}

/* The runs of one ADDTO or REMOVEFROM, their numbers in one array. */
struct runs {
	struct imap_context_run *run;
	uint32_t *num;
	size_t n_run, n_num;
	int oom;
};

static void runs_init(struct runs *r, size_t most)
{
	memset(r, 0, sizeof(*r));
	r->run = malloc((most ? most : 1) * sizeof(*r->run));
	r->num = malloc((most ? most : 1) * sizeof(*r->num));
	r->oom = r->run == NULL || r->num == NULL;
}

/* Adds `number` to the run at `position` (a new run unless it follows the
 * last one: `next` says it was the element right after it). */
static void runs_add(struct runs *r, uint32_t position, int next, uint32_t number)
{
	if (r->oom)
		return;
	if (!next || r->n_run == 0)
		r->run[r->n_run++] = (struct imap_context_run){ position, r->num + r->n_num, 0 };
	r->num[r->n_num++] = number;
	r->run[r->n_run - 1].count++;
}

static void runs_free(struct runs *r)
{
	free(r->run);
	free(r->num);
}

/* Brings context c to the view; 0 or an engine error (nothing written). */
static int update_one(struct ag_session *s, struct ag_context *c, const uint32_t *before, size_t n_before,
		      struct agbuf *pre, struct agbuf *post)
{
	struct mail_view *v = s->view;
	uint32_t *seqs = NULL;
	size_t n_match = 0;
	int rc = ag_search_matches(s, c->key, &seqs, &n_match);
	if (rc != 0)
		return rc;
	/* the matches' UIDs, ascending, and the old result's */
	uint32_t *now = malloc((n_match ? n_match : 1) * sizeof(*now));
	uint32_t *old = malloc((c->n ? c->n : 1) * sizeof(*old));
	uint32_t *next = NULL;
	size_t n_next = 0;
	struct runs rem, add;
	runs_init(&rem, c->n);
	runs_init(&add, n_match);
	if (now == NULL || old == NULL || rem.oom || add.oom)
		rc = AEROGRAM_EINTERNAL;
	size_t n_added = 0;
	if (rc == 0) {
		for (size_t i = 0; i < n_match; i++)
			now[i] = mail_view_uid(v, seqs[i]);
		memcpy(old, c->uids, c->n * sizeof(*old));
		qsort(old, c->n, sizeof(*old), cmp_u32);
		for (size_t i = 0; i < n_match; i++)
			n_added += !has(old, c->n, now[i]);
	}
	/* The new result in the requested order. For a SORT, the messages
	 * that stay keep their order (what they are sorted by never changes),
	 * so only an addition needs the sort again. */
	if (rc == 0 && c->sort != NULL && n_added > 0) {
		free(seqs);
		seqs = NULL;
		rc = ag_sort_matches(s, c->sort, c->n_sort, c->key, &seqs, &n_next);
		if (rc == 0 && (next = malloc((n_next ? n_next : 1) * sizeof(*next))) == NULL)
			rc = AEROGRAM_EINTERNAL;
		for (size_t i = 0; rc == 0 && i < n_next; i++)
			next[i] = mail_view_uid(v, seqs[i]);
	} else if (rc == 0 && c->sort != NULL) {
		if ((next = malloc((c->n ? c->n : 1) * sizeof(*next))) == NULL)
			rc = AEROGRAM_EINTERNAL;
		for (size_t i = 0; rc == 0 && i < c->n; i++)
			if (has(now, n_match, c->uids[i]))
				next[n_next++] = c->uids[i];
	} else if (rc == 0) {
		next = now;
		n_next = n_match;
		now = NULL;
	}
	if (rc == 0) {
		const uint32_t *sorted_next = c->sort ? NULL : next;
		uint32_t *tmp = NULL;
		if (c->sort != NULL) {
			if ((tmp = malloc((n_next ? n_next : 1) * sizeof(*tmp))) == NULL) {
				rc = AEROGRAM_EINTERNAL;
			} else {
				if (n_next)
					memcpy(tmp, next, n_next * sizeof(*tmp));
				qsort(tmp, n_next, sizeof(*tmp), cmp_u32);
				sorted_next = tmp;
			}
		}
		/* REMOVEFROM: walk the old result; a removed run starts at the
		 * position after the results kept before it. Sequence numbers
		 * are those before the update (the EXPUNGEs come after). */
		size_t kept = 0;
		int prev_removed = 0;
		for (size_t i = 0; rc == 0 && i < c->n; i++) {
			uint32_t uid = c->uids[i];
			if (has(sorted_next, n_next, uid)) {
				kept++;
				prev_removed = 0;
				continue;
			}
			uint32_t number = c->uid ? uid : seq_before(before, n_before, uid);
			if (number == 0)
				continue; /* not in the client's view: nothing to name it by */
			runs_add(&rem, c->sort ? (uint32_t)kept + 1 : 0, c->sort ? prev_removed : 1, number);
			prev_removed = 1;
		}
		/* ADDTO: walk the new result; an added run goes at its place. */
		int prev_added = 0;
		for (size_t j = 0; rc == 0 && j < n_next; j++) {
			if (has(old, c->n, next[j])) {
				prev_added = 0;
				continue;
			}
			uint32_t number = c->uid ? next[j] : mail_view_seq(v, next[j]);
			runs_add(&add, c->sort ? (uint32_t)j + 1 : 0, c->sort ? prev_added : 1, number);
			prev_added = 1;
		}
		free(tmp);
		if (rem.oom || add.oom)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc == 0) {
		imap_write_context_update(pre, c->tag, c->uid, 0, rem.run, rem.n_run);
		imap_write_context_update(post, c->tag, c->uid, 1, add.run, add.n_run);
		free(c->uids);
		c->uids = next;
		c->n = n_next;
		next = NULL;
	}
	runs_free(&rem);
	runs_free(&add);
	free(next);
	free(now);
	free(old);
	free(seqs);
	return rc;
}

void ag_context_update(struct ag_session *s, const uint32_t *before, size_t n_before, struct agbuf *pre,
		       struct agbuf *post)
{
	struct ag_context **link = &s->contexts;
	while (*link != NULL) {
		struct ag_context *c = *link;
		if (update_one(s, c, before, n_before, pre, post) == 0) {
			link = &c->next;
			continue;
		}
		write_noupdate(post, c->tag, "The search could not be run again, no more updates will follow.");
		*link = c->next;
		context_free(c);
		s->n_contexts--;
	}
}

/* CANCELUPDATE "tag" ... (RFC 5267 4.3.5): runs on the loop, no job holds
 * the session. */
void ag_cmd_cancelupdate(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	for (size_t i = 0; i < cmd->u.cancelupdate.count; i++) {
		if (!ag_context_tag_in_use(s, cmd->u.cancelupdate.tags[i].data)) {
			ag_session_tagged(s, IMAP_NO, "Unknown update tag, nothing cancelled.");
			ag_session_command_done(s);
			return;
		}
	}
	for (size_t i = 0; i < cmd->u.cancelupdate.count; i++) {
		struct ag_context **link = &s->contexts;
		while (*link != NULL && strcmp((*link)->tag, cmd->u.cancelupdate.tags[i].data) != 0)
			link = &(*link)->next;
		if (*link != NULL) {
			struct ag_context *c = *link;
			*link = c->next;
			context_free(c);
			s->n_contexts--;
		}
	}
	ag_session_tagged(s, IMAP_OK, "CANCELUPDATE completed, no more updates.");
	ag_session_command_done(s);
}
