/* cmd_search.c - SEARCH and UID SEARCH.
 *
 * The key tree is compiled once per command (needles case-folded, header
 * names resolved, dates turned into days) and evaluated per message in
 * three-valued logic: a key whose data is not at hand yet is "unknown",
 * and AND / OR / NOT decide without it whenever they can. Messages go in
 * batches through up to three stages, each only for those still unknown:
 *
 *   1. the view (flags, keywords, numbers) and, under the cache lock, what
 *      the search cache holds of the message (host/search_cache.h): its
 *      folded header fields, Date day, internal date and size;
 *   2. the message summaries (one batch read; header block, internal date,
 *      body structure), from which the facts are extracted and then kept
 *      in the cache;
 *   3. the bodies, for BODY and TEXT.
 *
 * So FROM, TO, CC, BCC, SUBJECT, HEADER, the date keys, LARGER and SMALLER
 * never read a body, and once a mailbox's messages are in the cache they
 * read nothing at all: each message costs a hash lookup and a substring
 * search in a few dozen bytes. "UNSEEN FROM x" reads no summary of a seen
 * message, and "FROM x TEXT y" no body of a message not from x. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "host/commands.h"
#include "host/context.h"
#include "host/mail_reply.h"
#include "host/search_cache.h"
#include "host/searchres.h"
#include "protocol/imap_write.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"
#include "protocol/search_fields.h"
#include "protocol/imap_date.h"
#include "protocol/search_match.h"

#define SEARCH_BATCH 128

enum tri { T_NO = 0, T_YES = 1, T_UNKNOWN = 2 };

/* One key of the compiled tree. */
struct node {
	const struct imap_search_key *key;
	struct node *kids;          /* AND (n_kids), OR (2), NOT (1) */
	size_t n_kids;
	char *field;                /* header keys: the lowercase field name */
	size_t field_len;
	char *needle;               /* header keys: the folded needle */
	size_t needle_len;
	int never;                  /* HEADER with a name no field can have */
	int64_t day;                /* date keys */
};

/* The compiled command: its tree and what its keys need. */
struct plan {
	struct node root;
	int need_facts;             /* some key needs the summary or the cache */
	int need_vsize;             /* LARGER, SMALLER */
	int need_body;              /* BODY, TEXT */
	char **names;               /* header field names of the keys, distinct */
	size_t n_names;
	int64_t now_ms;             /* OLDER, YOUNGER: the time the search started */
};

/* What one message offers to the keys. */
struct candidate {
	const struct mail_view *view;
	uint32_t seq, uid, exists, max_uid;
	struct mail_msg_info info;
	const struct search_facts *facts;  /* NULL when not known (yet) */
	const struct mime_message *msg;    /* the parsed body, stage 3 only */
	const char *body;
	size_t body_len;
	int64_t now_ms;
};

static char *lower_dup(const char *s, size_t *len)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
	out[n] = '\0';
	*len = n;
	return out;
}

static int plan_add_name(struct plan *p, const char *name)
{
	for (size_t i = 0; i < p->n_names; i++)
		if (strcmp(p->names[i], name) == 0)
			return 0;
	char **grown = realloc(p->names, (p->n_names + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	p->names = grown;
	if ((p->names[p->n_names] = strdup(name)) == NULL)
		return -1;
	p->n_names++;
	return 0;
}

static void node_free(struct node *n)
{
	for (size_t i = 0; i < n->n_kids; i++)
		node_free(&n->kids[i]);
	free(n->kids);
	free(n->field);
	free(n->needle);
}

static int compile_header(struct plan *p, struct node *n, const char *field, const char *needle)
{
	struct agbuf folded = AGBUF_INIT;
	if ((n->field = lower_dup(field, &n->field_len)) == NULL)
		return -1;
	search_fold(&folded, needle, strlen(needle));
	n->needle = folded.data ? folded.data : strdup("");
	n->needle_len = folded.len;
	p->need_facts = 1;
	return n->needle == NULL ? -1 : plan_add_name(p, n->field);
}

static int64_t key_day(const struct imap_date *d)
{
	return imap_days_from_civil(d->year, (unsigned)d->month, (unsigned)d->day);
}

/* Compiles key k into n (zeroed by the caller); -1 when out of memory. */
static int compile(struct plan *p, struct node *n, const struct imap_search_key *k)
{
	n->key = k;
	switch (k->kind) {
	case IMAP_SEARCH_AND:
	case IMAP_SEARCH_OR:
	case IMAP_SEARCH_NOT: {
		size_t count = k->kind == IMAP_SEARCH_AND ? k->u.list.count : k->kind == IMAP_SEARCH_OR ? 2 : 1;
		n->kids = calloc(count ? count : 1, sizeof(*n->kids));
		if (n->kids == NULL)
			return -1;
		n->n_kids = count;
		for (size_t i = 0; i < count; i++) {
			const struct imap_search_key *sub = k->kind == IMAP_SEARCH_AND ? &k->u.list.keys[i]
				: k->kind == IMAP_SEARCH_NOT ? k->u.not
				: i == 0 ? k->u.or.left : k->u.or.right;
			if (compile(p, &n->kids[i], sub) != 0)
				return -1;
		}
		return 0;
	}
	/* The address keys match the addresses written back without comments,
	 * SUBJECT the subject with its blanks compressed (search_fields.h), as
	 * Dovecot does; HEADER matches the text as sent. */
	case IMAP_SEARCH_BCC: return compile_header(p, n, "bcc" SEARCH_FIELD_ADDRESS, k->u.str.data);
	case IMAP_SEARCH_CC: return compile_header(p, n, "cc" SEARCH_FIELD_ADDRESS, k->u.str.data);
	case IMAP_SEARCH_FROM: return compile_header(p, n, "from" SEARCH_FIELD_ADDRESS, k->u.str.data);
	case IMAP_SEARCH_TO: return compile_header(p, n, "to" SEARCH_FIELD_ADDRESS, k->u.str.data);
	case IMAP_SEARCH_SUBJECT: return compile_header(p, n, "subject" SEARCH_FIELD_LWSP, k->u.str.data);
	case IMAP_SEARCH_HEADER:
		/* no field name holds a ':' (nor can it name the address forms) */
		if (strchr(k->u.header.name.data, ':') != NULL) {
			n->never = 1;
			return 0;
		}
		return compile_header(p, n, k->u.header.name.data, k->u.header.value.data);
	case IMAP_SEARCH_BODY:
	case IMAP_SEARCH_TEXT:
		p->need_body = 1;
		return 0;
	case IMAP_SEARCH_BEFORE: case IMAP_SEARCH_ON: case IMAP_SEARCH_SINCE:
	case IMAP_SEARCH_SENTBEFORE: case IMAP_SEARCH_SENTON: case IMAP_SEARCH_SENTSINCE:
		n->day = key_day(&k->u.date);
		p->need_facts = 1;
		return 0;
	case IMAP_SEARCH_LARGER:
	case IMAP_SEARCH_SMALLER:
		p->need_facts = 1;
		p->need_vsize = 1;
		return 0;
	case IMAP_SEARCH_OLDER:
	case IMAP_SEARCH_YOUNGER:
		p->need_facts = 1;
		return 0;
	default: return 0;
	}
}

static void plan_free(struct plan *p)
{
	node_free(&p->root);
	for (size_t i = 0; i < p->n_names; i++)
		free(p->names[i]);
	free(p->names);
}

static int has_keyword(const struct candidate *c, const struct imap_str *name)
{
	for (unsigned bit = 0; bit < MAIL_MAX_KEYWORDS; bit++) {
		const char *kw = mail_view_keyword(c->view, bit);
		if (kw != NULL && strlen(kw) == name->len && strncasecmp(kw, name->data, name->len) == 0)
			return (c->info.keywords >> bit) & 1;
	}
	return 0;
}

static int64_t internal_day(const struct search_facts *f)
{
	return search_internal_day((time_t)(f->internal_date_ms / 1000), 0);
}

static enum tri header_key(const struct node *n, const struct candidate *c)
{
	if (n->never)
		return T_NO;
	if (c->facts == NULL || c->facts->fields == NULL)
		return T_UNKNOWN;
	const struct search_field *f = search_fields_find(c->facts->fields, n->field, n->field_len);
	if (f == NULL)
		return T_UNKNOWN;
	return search_field_contains(c->facts->fields, f, n->needle, n->needle_len) ? T_YES : T_NO;
}

static enum tri sent_key(const struct node *n, const struct candidate *c)
{
	if (c->facts == NULL || c->facts->fields == NULL)
		return T_UNKNOWN;
	const struct search_fields *f = c->facts->fields;
	if (!f->has_sent_day)
		return T_NO;
	switch (n->key->kind) {
	case IMAP_SEARCH_SENTBEFORE: return f->sent_day < n->day ? T_YES : T_NO;
	case IMAP_SEARCH_SENTON: return f->sent_day == n->day ? T_YES : T_NO;
	default: return f->sent_day >= n->day ? T_YES : T_NO;
	}
}

/* How long ago the message arrived (negative for an internal date in the
 * future, which is then younger than any interval). */
static int64_t age_ms(const struct candidate *c)
{
	return c->now_ms - (int64_t)c->facts->internal_date_ms;
}

static enum tri yes_if(int b)
{
	return b ? T_YES : T_NO;
}

/* The key's verdict on the candidate: yes, no, or unknown when it needs
 * data the candidate does not hold. */
static enum tri eval(const struct node *n, const struct candidate *c)
{
	const struct imap_search_key *k = n->key;
	uint32_t f = c->info.flags;
	enum tri r, sub;
	switch (k->kind) {
	case IMAP_SEARCH_AND:
	case IMAP_SEARCH_OR: {
		/* one kid decides (NO for AND, YES for OR); else an unknown
		 * kid leaves the whole unknown */
		enum tri decides = k->kind == IMAP_SEARCH_AND ? T_NO : T_YES;
		r = k->kind == IMAP_SEARCH_AND ? T_YES : T_NO;
		for (size_t i = 0; i < n->n_kids; i++) {
			sub = eval(&n->kids[i], c);
			if (sub == decides)
				return decides;
			if (sub == T_UNKNOWN)
				r = T_UNKNOWN;
		}
		return r;
	}
	case IMAP_SEARCH_NOT:
		sub = eval(&n->kids[0], c);
		return sub == T_UNKNOWN ? T_UNKNOWN : yes_if(sub == T_NO);
	case IMAP_SEARCH_SEQSET:
		/* "$" holds UIDs (host/searchres.h), whatever the key */
		if (k->u.set.saved)
			return yes_if(imap_seqset_contains(&k->u.set, c->uid, c->max_uid));
		return yes_if(imap_seqset_contains(&k->u.set, c->seq, c->exists));
	case IMAP_SEARCH_UID: return yes_if(imap_seqset_contains(&k->u.set, c->uid, c->max_uid));
	case IMAP_SEARCH_ALL: return T_YES;
	case IMAP_SEARCH_ANSWERED: return yes_if(f & MAIL_F_ANSWERED);
	case IMAP_SEARCH_DELETED: return yes_if(f & MAIL_F_DELETED);
	case IMAP_SEARCH_DRAFT: return yes_if(f & MAIL_F_DRAFT);
	case IMAP_SEARCH_FLAGGED: return yes_if(f & MAIL_F_FLAGGED);
	case IMAP_SEARCH_SEEN: return yes_if(f & MAIL_F_SEEN);
	case IMAP_SEARCH_UNANSWERED: return yes_if(!(f & MAIL_F_ANSWERED));
	case IMAP_SEARCH_UNDELETED: return yes_if(!(f & MAIL_F_DELETED));
	case IMAP_SEARCH_UNDRAFT: return yes_if(!(f & MAIL_F_DRAFT));
	case IMAP_SEARCH_UNFLAGGED: return yes_if(!(f & MAIL_F_FLAGGED));
	case IMAP_SEARCH_UNSEEN: return yes_if(!(f & MAIL_F_SEEN));
	case IMAP_SEARCH_RECENT: return yes_if(c->info.recent);
	case IMAP_SEARCH_NEW: return yes_if(c->info.recent && !(f & MAIL_F_SEEN));
	case IMAP_SEARCH_OLD: return yes_if(!c->info.recent);
	case IMAP_SEARCH_KEYWORD: return yes_if(has_keyword(c, &k->u.str));
	case IMAP_SEARCH_UNKEYWORD: return yes_if(!has_keyword(c, &k->u.str));
	case IMAP_SEARCH_MODSEQ: return yes_if(c->info.modseq >= k->u.modseq);
	case IMAP_SEARCH_BCC: case IMAP_SEARCH_CC: case IMAP_SEARCH_FROM: case IMAP_SEARCH_TO:
	case IMAP_SEARCH_SUBJECT: case IMAP_SEARCH_HEADER:
		return header_key(n, c);
	case IMAP_SEARCH_SENTBEFORE: case IMAP_SEARCH_SENTON: case IMAP_SEARCH_SENTSINCE:
		return sent_key(n, c);
	case IMAP_SEARCH_BEFORE:
		return c->facts ? yes_if(internal_day(c->facts) < n->day) : T_UNKNOWN;
	case IMAP_SEARCH_ON:
		return c->facts ? yes_if(internal_day(c->facts) == n->day) : T_UNKNOWN;
	case IMAP_SEARCH_SINCE:
		return c->facts ? yes_if(internal_day(c->facts) >= n->day) : T_UNKNOWN;
	/* RFC 5032 leaves the boundary open: OLDER n is older than n
	 * seconds (strictly), YOUNGER n is the rest, so that OLDER n and
	 * YOUNGER n split the mailbox. */
	case IMAP_SEARCH_OLDER:
		return c->facts ? yes_if(age_ms(c) > (int64_t)k->u.size * 1000) : T_UNKNOWN;
	case IMAP_SEARCH_YOUNGER:
		return c->facts ? yes_if(age_ms(c) <= (int64_t)k->u.size * 1000) : T_UNKNOWN;
	case IMAP_SEARCH_LARGER:
		return c->facts && c->facts->has_vsize ? yes_if(c->facts->vsize > k->u.size) : T_UNKNOWN;
	case IMAP_SEARCH_SMALLER:
		return c->facts && c->facts->has_vsize ? yes_if(c->facts->vsize < k->u.size) : T_UNKNOWN;
	case IMAP_SEARCH_BODY:
		return c->msg ? yes_if(search_match_body(c->msg, c->body, c->body_len, k->u.str.data)) : T_UNKNOWN;
	case IMAP_SEARCH_TEXT:
		return c->msg ? yes_if(search_match_text(c->msg, c->body, c->body_len, k->u.str.data)) : T_UNKNOWN;
	}
	return T_NO;
}

/* 1 when facts answer every key of the plan that needs facts. */
static int facts_complete(const struct plan *p, const struct search_facts *f)
{
	if (f == NULL || f->fields == NULL || (p->need_vsize && !f->has_vsize))
		return 0;
	for (size_t i = 0; i < p->n_names; i++)
		if (search_fields_find(f->fields, p->names[i], strlen(p->names[i])) == NULL)
			return 0;
	return 1;
}

/* Stage 2: the facts of one message from its summary. */
static int facts_from_summary(const struct plan *p, const struct search_names *names, const struct mail_summary *s,
			      struct search_facts *out)
{
	out->internal_date_ms = s->internal_date_ms;
	out->fields = search_fields_extract((const char *)s->header, s->header_len, names->name, names->count);
	if (out->fields == NULL)
		return AEROGRAM_EINTERNAL;
	if (p->need_vsize) {
		struct mime_message *msg = mime_serial_decode(s->bodystructure, s->bodystructure_len);
		if (msg == NULL)
			msg = mime_parse((const char *)s->header, s->header_len);
		if (msg == NULL)
			return AEROGRAM_EINTERNAL;
		out->has_vsize = 1;
		out->vsize = msg->vsize;
		mime_free(msg);
	}
	return 0;
}

/* One run of a search over the view. */
struct run {
	struct ag_session *s;
	const struct plan *plan;
	struct search_cache *cache;       /* NULL when no key needs facts */
	struct search_shelf *shelf;
	struct search_names *names;
	uint32_t exists, max_uid;
	const uint32_t *uids;             /* of every sequence number */
	uint64_t max_modseq;              /* the highest modseq of the hits */
	/* per batch */
	struct candidate cand[SEARCH_BATCH];
	enum tri result[SEARCH_BATCH];
	struct search_facts own[SEARCH_BATCH]; /* facts this run holds (fields owned) */
	int own_is_new[SEARCH_BATCH];          /* extracted here: goes to the cache */
};

/* Stage 1 for messages [start, start + count): the view and the cache. */
static void stage_view(struct run *r, uint32_t start, size_t count)
{
	struct mail_view *v = r->s->view;
	if (r->cache)
		search_cache_lock(r->cache);
	for (size_t i = 0; i < count; i++) {
		struct candidate *c = &r->cand[i];
		memset(c, 0, sizeof(*c));
		c->view = v;
		c->seq = start + (uint32_t)i + 1;
		c->uid = r->uids[start + i];
		c->exists = r->exists;
		c->max_uid = r->max_uid;
		c->now_ms = r->plan->now_ms;
		if (mail_view_msg(v, c->seq, &c->info) != 0) {
			r->result[i] = T_NO;
			continue;
		}
		c->info.flags = ag_session_flags(r->s, c->uid, c->info.flags);
		const struct search_facts *cached = r->cache ? search_cache_get(r->cache, r->shelf, c->info.id) : NULL;
		if (cached && !facts_complete(r->plan, cached))
			cached = NULL;
		c->facts = cached;
		r->result[i] = eval(&r->plan->root, c);
		c->facts = NULL;
		if (r->result[i] == T_UNKNOWN && cached) {
			/* only a body can tell: keep the facts for stage 3 */
			r->own[i] = *cached;
			r->own[i].fields = search_fields_dup(cached->fields); /* the cache may drop its own */
			if (r->own[i].fields)
				c->facts = &r->own[i];
		}
	}
	if (r->cache)
		search_cache_unlock(r->cache);
}

/* The candidates of a batch that a stage reads: their indexes in the
 * batch and their UIDs. */
struct unknown {
	size_t n;
	size_t idx[SEARCH_BATCH];
	uint32_t uids[SEARCH_BATCH];
};

/* Fills u with the candidates of the batch still unknown (only those
 * without facts when `factless`). Returns how many. */
static size_t unknown_candidates(const struct run *r, size_t count, int factless, struct unknown *u)
{
	u->n = 0;
	for (size_t i = 0; i < count; i++)
		if (r->result[i] == T_UNKNOWN && (!factless || r->cand[i].facts == NULL)) {
			u->idx[u->n] = i;
			u->uids[u->n++] = r->cand[i].uid;
		}
	return u->n;
}

/* Stage 2: summaries of the messages still unknown without facts. */
static int stage_summaries(struct run *r, size_t count)
{
	struct unknown u;
	if (!r->plan->need_facts || unknown_candidates(r, count, 1, &u) == 0)
		return 0;
	struct mail_summary *sums = NULL;
	int rc = mail_summaries(r->s->view, u.uids, u.n, &sums);
	for (size_t j = 0; rc == 0 && j < u.n; j++) {
		size_t i = u.idx[j];
		if (sums[j].status != 0) {
			r->result[i] = T_NO; /* gone meanwhile: not a match */
			continue;
		}
		rc = facts_from_summary(r->plan, r->names, &sums[j], &r->own[i]);
		r->own_is_new[i] = 1;
		if (rc == 0) {
			r->cand[i].facts = &r->own[i];
			r->result[i] = eval(&r->plan->root, &r->cand[i]);
		}
	}
	if (sums)
		mail_summaries_free(sums, u.n);
	return rc;
}

/* Stage 3: bodies of the messages still unknown. */
static int stage_bodies(struct run *r, size_t count)
{
	struct unknown u;
	if (unknown_candidates(r, count, 0, &u) == 0)
		return 0;
	struct mail_body *bodies = NULL;
	int rc = mail_bodies(r->s->view, u.uids, u.n, &bodies);
	for (size_t j = 0; rc == 0 && j < u.n; j++) {
		size_t i = u.idx[j];
		struct candidate *c = &r->cand[i];
		r->result[i] = T_NO;
		if (bodies[j].status != 0)
			continue;
		struct mime_message *msg = mime_parse((const char *)bodies[j].data, bodies[j].len);
		if (msg == NULL) {
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		c->msg = msg;
		c->body = (const char *)bodies[j].data;
		c->body_len = bodies[j].len;
		/* every key has its data now: the facts came from the cache or
		 * the summary, the body is here */
		r->result[i] = eval(&r->plan->root, c) == T_YES ? T_YES : T_NO;
		c->msg = NULL;
		mime_free(msg);
	}
	if (bodies)
		mail_bodies_free(bodies, u.n);
	return rc;
}

/* Hands new facts to the cache and frees the rest. */
static void batch_done(struct run *r, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (r->own_is_new[i] && r->own[i].fields && r->cache)
			search_cache_put(r->cache, r->shelf, r->cand[i].info.id, &r->own[i]);
		free(r->own[i].fields);
		memset(&r->own[i], 0, sizeof(r->own[i]));
		r->own_is_new[i] = 0;
	}
}

int ag_search_charset_ok(const struct imap_command *cmd)
{
	if (!cmd->u.search.has_charset)
		return 1;
	const char *cs = cmd->u.search.charset.data;
	return strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "US-ASCII") == 0;
}

/* The matches, ascending: their sequence numbers and their UIDs (a UID
 * SEARCH answers with the UIDs; SAVE keeps the UIDs; SORT and THREAD take
 * the sequence numbers). */
struct hits {
	uint32_t *seqs, *uids;
	uint64_t *modseqs; /* each one's MODSEQ (RFC 7162 3.1.5) */
	size_t n, cap;
};

static int hits_add(struct hits *h, uint32_t seq, uint32_t uid, uint64_t modseq)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 64;
		uint32_t *seqs = realloc(h->seqs, cap * sizeof(*seqs));
		if (seqs == NULL)
			return -1;
		h->seqs = seqs;
		uint32_t *uids = realloc(h->uids, cap * sizeof(*uids));
		if (uids == NULL)
			return -1;
		h->uids = uids;
		uint64_t *modseqs = realloc(h->modseqs, cap * sizeof(*modseqs));
		if (modseqs == NULL)
			return -1;
		h->modseqs = modseqs;
		h->cap = cap;
	}
	h->seqs[h->n] = seq;
	h->modseqs[h->n] = modseq;
	h->uids[h->n++] = uid;
	return 0;
}

static void hits_free(struct hits *h)
{
	free(h->seqs);
	free(h->uids);
	free(h->modseqs);
}

/* The MODSEQ an answer with a MODSEQ search key ends with (RFC 7162
 * 3.1.5, RFC 4731 3.2): the highest of the messages it reports, i.e. of
 * the MIN and/or MAX ones alone when neither ALL nor COUNT is asked for;
 * 0 (none) when nothing matched. */
static uint64_t hits_modseq(const struct hits *h, int esearch, unsigned opts)
{
	if (h->n == 0)
		return 0;
	if (esearch && (opts & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) &&
	    !(opts & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_PARTIAL))) {
		uint64_t m = 0;
		if ((opts & IMAP_SEARCH_RET_MIN) && h->modseqs[0] > m)
			m = h->modseqs[0];
		if ((opts & IMAP_SEARCH_RET_MAX) && h->modseqs[h->n - 1] > m)
			m = h->modseqs[h->n - 1];
		return m;
	}
	uint64_t m = 0;
	for (size_t i = 0; i < h->n; i++)
		if (h->modseqs[i] > m)
			m = h->modseqs[i];
	return m;
}

static int search_all(struct run *r, struct hits *hits)
{
	int rc = 0;
	for (uint32_t start = 0; rc == 0 && start < r->exists; start += SEARCH_BATCH) {
		size_t n = r->exists - start < SEARCH_BATCH ? r->exists - start : SEARCH_BATCH;
		stage_view(r, start, n);
		rc = stage_summaries(r, n);
		if (rc == 0 && r->plan->need_body)
			rc = stage_bodies(r, n);
		for (size_t i = 0; rc == 0 && i < n; i++)
			if (r->result[i] == T_YES &&
			    hits_add(hits, r->cand[i].seq, r->cand[i].uid, r->cand[i].info.modseq) != 0)
				rc = AEROGRAM_EINTERNAL;
		batch_done(r, n);
	}
	return rc;
}

/* Runs the search `key` over the selected mailbox into *hits. */
static int run_search(struct ag_session *s, const struct imap_search_key *key, struct hits *hits)
{
	struct plan plan = { 0 };
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	plan.now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	struct run *r = calloc(1, sizeof(*r));
	struct mail_view *v = s->view;
	uint32_t exists = mail_view_exists(v);
	uint32_t *uids = malloc((exists ? exists : 1) * sizeof(*uids));
	int rc = r == NULL || uids == NULL || compile(&plan, &plan.root, key) != 0 ? AEROGRAM_EINTERNAL : 0;
	if (rc == 0 && plan.need_facts) {
		r->cache = search_cache_process();
		if (r->cache)
			r->shelf = search_cache_open(r->cache, s->user, mail_mailbox_id(mail_view_mailbox(v)),
						     (const char *const *)plan.names, plan.n_names, &r->names);
		if (r->shelf == NULL)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc == 0) {
		for (uint32_t seq = 1; seq <= exists; seq++)
			uids[seq - 1] = mail_view_uid(v, seq);
		r->s = s;
		r->plan = &plan;
		r->exists = exists;
		r->max_uid = exists ? uids[exists - 1] : 0;
		r->uids = uids;
		rc = search_all(r, hits);
	}
	if (r && r->shelf)
		search_cache_close(r->cache, r->shelf);
	if (r)
		free(r->names);
	free(r);
	free(uids);
	plan_free(&plan);
	return rc;
}

int ag_search_matches(struct ag_session *s, const struct imap_search_key *key, uint32_t **seqs, size_t *count)
{
	struct hits hits = { 0 };
	int rc = run_search(s, key, &hits);
	free(hits.uids);
	free(hits.modseqs);
	if (rc != 0) {
		free(hits.seqs);
		hits.seqs = NULL;
		hits.n = 0;
	}
	*seqs = hits.seqs;
	*count = hits.n;
	return rc;
}

/* Whether the key uses MODSEQ (RFC 7162 3.1.5: the answer then ends with
 * the highest modseq of the messages found). */
static int uses_modseq(const struct imap_search_key *k)
{
	switch (k->kind) {
	case IMAP_SEARCH_MODSEQ: return 1;
	case IMAP_SEARCH_AND:
		for (size_t i = 0; i < k->u.list.count; i++)
			if (uses_modseq(&k->u.list.keys[i]))
				return 1;
		return 0;
	case IMAP_SEARCH_OR: return uses_modseq(k->u.or.left) || uses_modseq(k->u.or.right);
	case IMAP_SEARCH_NOT: return uses_modseq(k->u.not);
	default: return 0;
	}
}

/* RFC 5182 2.1: SAVE with MIN and/or MAX but neither ALL nor COUNT (nor
 * PARTIAL, as Dovecot) keeps just those messages; otherwise every match. */
static int save_result(struct ag_session *s, unsigned opts, const struct hits *h)
{
	if ((opts & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) &&
	    !(opts & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_PARTIAL)) && h->n > 0) {
		uint32_t pick[2];
		size_t n = 0;
		if (opts & IMAP_SEARCH_RET_MIN)
			pick[n++] = h->uids[0];
		if ((opts & IMAP_SEARCH_RET_MAX) && (n == 0 || h->uids[h->n - 1] != pick[0]))
			pick[n++] = h->uids[h->n - 1];
		return ag_searchres_save(s, pick, n) == 0 ? 0 : AEROGRAM_EINTERNAL;
	}
	return ag_searchres_save(s, h->uids, h->n) == 0 ? 0 : AEROGRAM_EINTERNAL;
}

unsigned ag_search_data_opts(unsigned opts)
{
	opts &= ~IMAP_SEARCH_RET_CONTEXT; /* a hint, taken as nothing (as Dovecot) */
	return opts == 0 ? IMAP_SEARCH_RET_ALL : opts;
}

/* "* SEARCH ..." (RFC 3501), or "* ESEARCH ..." when RETURN was given
 * (RFC 4731): RETURN () means ALL, RETURN (SAVE) alone answers nothing
 * untagged (RFC 5182 2.1), RETURN (UPDATE) alone an ESEARCH with the tag
 * only (RFC 5267 4.3: UPDATE has no result data of its own). */
static void reply_result(struct ag_session *s, unsigned opts, const struct hits *h)
{
	const struct imap_command *cmd = s->cmd;
	const uint32_t *nums = cmd->uid ? h->uids : h->seqs;
	/* with a MODSEQ key, the highest MODSEQ found (none when nothing matched) */
	uint64_t modseq = uses_modseq(cmd->u.search.key) ? hits_modseq(h, cmd->u.search.esearch, opts) : 0;
	if (!cmd->u.search.esearch) {
		imap_write_search(&s->reply, nums, h->n, modseq);
		return;
	}
	opts = ag_search_data_opts(opts);
	if (opts == IMAP_SEARCH_RET_SAVE)
		return;
	imap_write_esearch(&s->reply, cmd->tag.data, cmd->uid, opts, nums, h->n, cmd->u.search.partial_first,
			   cmd->u.search.partial_last, modseq);
}

static void search_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	const char *name = cmd->uid ? "UID SEARCH" : "SEARCH";
	unsigned opts = cmd->u.search.return_opts;
	if (!ag_search_charset_ok(cmd)) {
		ag_reply_bad_charset(&s->reply, tag);
		if (opts & IMAP_SEARCH_RET_SAVE)
			ag_searchres_reset(s); /* RFC 5182 2.1: a failed SAVE leaves "$" empty */
		return;
	}
	if (uses_modseq(cmd->u.search.key))
		ag_session_enable_condstore(s); /* RFC 7162 3.1 */
	struct hits hits = { 0 };
	int rc = run_search(s, cmd->u.search.key, &hits);
	/* An inline attempt that the engine refused (mail_nonblock) is thrown
	 * away and run again on a worker: it must leave the saved result,
	 * which "$" in this very command may point at, as it was. */
	int final = !mail_nonblock_hit();
	if (rc == 0 && (opts & IMAP_SEARCH_RET_SAVE) && final)
		rc = save_result(s, opts, &hits);
	if (rc != 0) {
		if ((opts & IMAP_SEARCH_RET_SAVE) && final)
			ag_searchres_reset(s);
		ag_reply_error(&s->reply, tag, rc, name);
	} else {
		reply_result(s, opts, &hits);
		if ((opts & IMAP_SEARCH_RET_UPDATE) && final)
			ag_context_add(s, hits.uids, hits.n);
		ag_reply_done(&s->reply, tag, 0, name);
	}
	hits_free(&hits);
}

int ag_search_update_tag_reused(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	if (!(cmd->u.search.return_opts & IMAP_SEARCH_RET_UPDATE) || !ag_context_tag_in_use(s, cmd->tag.data))
		return 0;
	ag_session_tagged(s, IMAP_BAD, "Tag reuse: an updating search has this tag.");
	ag_session_command_done(s);
	return 1;
}

void ag_cmd_search(struct ag_session *s)
{
	if (ag_search_update_tag_reused(s))
		return;
	ag_session_storage(s, search_run, 0);
}
