/* cmd_sort.c - SORT, UID SORT, THREAD and UID THREAD (RFC 5256), with the
 * DISPLAYFROM and DISPLAYTO keys of RFC 5957.
 *
 * The messages are those SEARCH would find with the same criteria
 * (ag_search_matches). What they are ordered by comes from their
 * summaries only, in batches: the header block (Date, Subject, From, To,
 * Cc, Message-ID, In-Reply-To, References), the internal date and, for
 * SIZE alone, the body structure that holds RFC822.SIZE. No body is read.
 *
 * Choices where the RFC leaves room, as Dovecot makes them:
 * - of a header field that occurs more than once, the first counts;
 * - a Date that is missing or cannot be parsed is the internal date
 *   (RFC 5256 says so for DATE; it holds for threading too);
 * - messages equal under every key are in mailbox order whatever REVERSE
 *   says (REVERSE turns a key's order around, not the tie-break);
 * - a message that is expunged while the command runs is left out.
 * The collation is i;ascii-casemap (protocol/sort_thread.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/commands.h"
#include "host/context.h"
#include "host/mail_reply.h"
#include "host/searchres.h"
#include "protocol/imap_write.h"
#include "protocol/mime.h"
#include "protocol/mime_header.h"
#include "protocol/mime_serial.h"
#include "protocol/sort_thread.h"

#define SORT_BATCH 256

/* What one message is ordered by. */
struct sort_rec {
	const struct sort_ctx *ctx;
	uint32_t seq, uid;
	uint64_t arrival_ms;
	int64_t date;                 /* seconds, UTC */
	uint64_t size;
	int reply;
	char *subject, *from, *to, *cc, *dfrom, *dto; /* case-mapped keys; NULL when not asked */
	char *message_id;             /* NULL when none */
	char **refs;
	size_t n_refs;
};

struct sort_ctx {
	const struct imap_sort_criterion *crit;
	size_t n_crit;
	unsigned want;                /* WANT_* */
};

enum {
	WANT_SUBJECT = 1u << 0,
	WANT_FROM = 1u << 1,
	WANT_TO = 1u << 2,
	WANT_CC = 1u << 3,
	WANT_DFROM = 1u << 4,
	WANT_DTO = 1u << 5,
	WANT_SIZE = 1u << 6,
	WANT_REFS = 1u << 7,          /* Message-ID, In-Reply-To, References */
};

static void rec_free(struct sort_rec *r)
{
	free(r->subject);
	free(r->from);
	free(r->to);
	free(r->cc);
	free(r->dfrom);
	free(r->dto);
	free(r->message_id);
	for (size_t i = 0; i < r->n_refs; i++)
		free(r->refs[i]);
	free(r->refs);
}

static char *buf_take(struct agbuf *b)
{
	char *s = b->data ? b->data : strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

/* The header fields the keys are taken from, first occurrences. */
enum { F_DATE, F_SUBJECT, F_FROM, F_TO, F_CC, F_MESSAGE_ID, F_IN_REPLY_TO, F_REFERENCES, F_COUNT };
static const char *const field_names[F_COUNT] = {
	"Date", "Subject", "From", "To", "Cc", "Message-ID", "In-Reply-To", "References",
};

static int add_ref(struct sort_rec *r, const struct agbuf *id)
{
	char **grown = realloc(r->refs, (r->n_refs + 1) * sizeof(*grown));
	if (grown == NULL)
		return -1;
	r->refs = grown;
	if ((r->refs[r->n_refs] = strdup(id->data)) == NULL)
		return -1;
	r->n_refs++;
	return 0;
}

/* The FROM / TO / CC key (display 0) or the DISPLAYFROM / DISPLAYTO key
 * (display 1) of an address field's unfolded value. */
static int address_key(const struct agbuf *value, char **out, int display)
{
	struct mime_arena *arena = mime_arena_new();
	if (arena == NULL)
		return -1;
	struct mime_address *list = value->data ? mime_address_parse(arena, value->data, value->len) : NULL;
	struct agbuf key = AGBUF_INIT;
	if (display)
		sort_display_key(&key, list);
	else
		sort_address_key(&key, list);
	mime_arena_free(arena);
	*out = buf_take(&key);
	return *out ? 0 : -1;
}

/* Fills r from its summary. */
static int rec_from_summary(struct sort_rec *r, const struct mail_summary *sum)
{
	unsigned want = r->ctx->want;
	struct agbuf f[F_COUNT];
	int seen[F_COUNT] = { 0 };
	for (int i = 0; i < F_COUNT; i++)
		f[i] = (struct agbuf)AGBUF_INIT;
	const char *hdr = (const char *)sum->header;
	struct mime_header_iter it;
	struct mime_header_field field;
	mime_header_iter_init(&it, hdr, 0, sum->header_len);
	while (mime_header_next_raw(&it, &field)) {
		for (int i = 0; i < F_COUNT; i++) {
			if (!seen[i] && strlen(field_names[i]) == field.name_len &&
			    strncasecmp(field.name, field_names[i], field.name_len) == 0) {
				seen[i] = 1;
				mime_header_unfold(&f[i], hdr, &field);
			}
		}
	}
	int rc = 0;
	r->arrival_ms = sum->internal_date_ms;
	if (!seen[F_DATE] || sort_parse_date(f[F_DATE].data, f[F_DATE].len, &r->date) != 0)
		r->date = (int64_t)(sum->internal_date_ms / 1000);
	if (want & WANT_SUBJECT) {
		struct agbuf subj = AGBUF_INIT;
		r->reply = seen[F_SUBJECT] ? sort_base_subject(&subj, f[F_SUBJECT].data, f[F_SUBJECT].len) : 0;
		if ((r->subject = buf_take(&subj)) == NULL)
			rc = -1;
	}
	if (rc == 0 && (want & WANT_FROM))
		rc = address_key(&f[F_FROM], &r->from, 0);
	if (rc == 0 && (want & WANT_TO))
		rc = address_key(&f[F_TO], &r->to, 0);
	if (rc == 0 && (want & WANT_CC))
		rc = address_key(&f[F_CC], &r->cc, 0);
	if (rc == 0 && (want & WANT_DFROM))
		rc = address_key(&f[F_FROM], &r->dfrom, 1);
	if (rc == 0 && (want & WANT_DTO))
		rc = address_key(&f[F_TO], &r->dto, 1);
	if (rc == 0 && (want & WANT_SIZE)) {
		struct mime_message *msg = mime_serial_decode(sum->bodystructure, sum->bodystructure_len);
		if (msg == NULL)
			msg = mime_parse(hdr, sum->header_len);
		if (msg == NULL)
			rc = -1;
		else
			r->size = msg->vsize;
		mime_free(msg);
	}
	if (rc == 0 && (want & WANT_REFS)) {
		struct agbuf id = AGBUF_INIT;
		size_t pos = 0;
		if (seen[F_MESSAGE_ID] && sort_next_msgid(f[F_MESSAGE_ID].data, f[F_MESSAGE_ID].len, &pos, &id) &&
		    (r->message_id = strdup(id.data)) == NULL)
			rc = -1;
		pos = 0;
		while (rc == 0 && seen[F_REFERENCES] &&
		       sort_next_msgid(f[F_REFERENCES].data, f[F_REFERENCES].len, &pos, &id))
			rc = add_ref(r, &id);
		/* no References: the first id of In-Reply-To */
		pos = 0;
		if (rc == 0 && r->n_refs == 0 && seen[F_IN_REPLY_TO] &&
		    sort_next_msgid(f[F_IN_REPLY_TO].data, f[F_IN_REPLY_TO].len, &pos, &id))
			rc = add_ref(r, &id);
		agbuf_free(&id);
	}
	for (int i = 0; i < F_COUNT; i++)
		agbuf_free(&f[i]);
	return rc;
}

/* The records of the messages of seqs[0, n) that are still there, in
 * that order; *out (free with recs_free) and *count set. */
static int gather(struct ag_session *s, const struct sort_ctx *ctx, const uint32_t *seqs, size_t n,
		  struct sort_rec **out, size_t *count)
{
	struct sort_rec *recs = calloc(n ? n : 1, sizeof(*recs));
	size_t have = 0;
	int rc = recs ? 0 : AEROGRAM_EINTERNAL;
	for (size_t start = 0; rc == 0 && start < n; start += SORT_BATCH) {
		size_t m = n - start < SORT_BATCH ? n - start : SORT_BATCH;
		uint32_t uids[SORT_BATCH];
		for (size_t j = 0; j < m; j++)
			uids[j] = mail_view_uid(s->view, seqs[start + j]);
		struct mail_summary *sums = NULL;
		rc = mail_summaries(s->view, uids, m, &sums);
		for (size_t j = 0; rc == 0 && j < m; j++) {
			if (sums[j].status != 0)
				continue; /* gone meanwhile */
			struct sort_rec *r = &recs[have];
			r->ctx = ctx;
			r->seq = seqs[start + j];
			r->uid = uids[j];
			have++;
			if (rec_from_summary(r, &sums[j]) != 0)
				rc = AEROGRAM_EINTERNAL;
		}
		if (sums)
			mail_summaries_free(sums, m);
	}
	*out = recs;
	*count = have;
	return rc;
}

static void recs_free(struct sort_rec *recs, size_t n)
{
	for (size_t i = 0; recs && i < n; i++)
		rec_free(&recs[i]);
	free(recs);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_rec(const void *pa, const void *pb)
{
	const struct sort_rec *a = pa, *b = pb;
	const struct sort_ctx *ctx = a->ctx;
	for (size_t i = 0; i < ctx->n_crit; i++) {
		int c = 0;
		switch (ctx->crit[i].key) {
		case IMAP_SORT_ARRIVAL: c = cmp_u64(a->arrival_ms, b->arrival_ms); break;
		case IMAP_SORT_DATE: c = a->date < b->date ? -1 : a->date > b->date; break;
		case IMAP_SORT_SIZE: c = cmp_u64(a->size, b->size); break;
		case IMAP_SORT_SUBJECT: c = strcmp(a->subject, b->subject); break;
		case IMAP_SORT_FROM: c = strcmp(a->from, b->from); break;
		case IMAP_SORT_TO: c = strcmp(a->to, b->to); break;
		case IMAP_SORT_CC: c = strcmp(a->cc, b->cc); break;
		case IMAP_SORT_DISPLAYFROM: c = strcmp(a->dfrom, b->dfrom); break;
		case IMAP_SORT_DISPLAYTO: c = strcmp(a->dto, b->dto); break;
		}
		if (c != 0)
			return ctx->crit[i].reverse ? -c : c;
	}
	return cmp_u64(a->seq, b->seq);
}

static unsigned sort_wants(const struct imap_sort_criterion *crit, size_t n)
{
	unsigned want = 0;
	for (size_t i = 0; i < n; i++) {
		switch (crit[i].key) {
		case IMAP_SORT_SUBJECT: want |= WANT_SUBJECT; break;
		case IMAP_SORT_FROM: want |= WANT_FROM; break;
		case IMAP_SORT_TO: want |= WANT_TO; break;
		case IMAP_SORT_CC: want |= WANT_CC; break;
		case IMAP_SORT_DISPLAYFROM: want |= WANT_DFROM; break;
		case IMAP_SORT_DISPLAYTO: want |= WANT_DTO; break;
		case IMAP_SORT_SIZE: want |= WANT_SIZE; break;
		case IMAP_SORT_ARRIVAL: case IMAP_SORT_DATE: break;
		}
	}
	return want;
}

int ag_sort_matches(struct ag_session *s, const struct imap_sort_criterion *crit, size_t n_crit,
		    const struct imap_search_key *key, uint32_t **out, size_t *count)
{
	struct sort_ctx ctx = { crit, n_crit, 0 };
	ctx.want = sort_wants(ctx.crit, ctx.n_crit);
	uint32_t *seqs = NULL;
	size_t n = 0, have = 0;
	struct sort_rec *recs = NULL;
	int rc = ag_search_matches(s, key, &seqs, &n);
	if (rc == 0)
		rc = gather(s, &ctx, seqs, n, &recs, &have);
	if (rc == 0) {
		qsort(recs, have, sizeof(*recs), cmp_rec);
		for (size_t i = 0; i < have; i++)
			seqs[i] = recs[i].seq;
		*out = seqs;
		*count = have;
		seqs = NULL;
	}
	recs_free(recs, have);
	free(seqs);
	return rc;
}

/* The matching messages of the command in flight in SORT order: *out
 * (sequence numbers, malloc'd) and *count. This is the whole result, so
 * that other forms of it (the RETURN options of ESORT and CONTEXT=SORT,
 * RFC 5267) can be written from it too. */
static int sort_result(struct ag_session *s, uint32_t **out, size_t *count)
{
	const struct imap_command *cmd = s->cmd;
	return ag_sort_matches(s, cmd->u.search.sort, cmd->u.search.sort_count, cmd->u.search.key, out, count);
}

static int charset_ok(struct ag_session *s)
{
	if (ag_search_charset_ok(s->cmd))
		return 1;
	ag_reply_bad_charset(&s->reply, s->cmd->tag.data);
	return 0;
}

/* SORT RETURN (...) (ESORT, RFC 5267): the result as "* ESEARCH", in
 * sort order (MIN and MAX are the first and the last sorted, ALL keeps the
 * order); RETURN () is ALL. With SAVE (RFC 5182, allowed with SORT when
 * SEARCHRES is there) "$" becomes the messages found, their order dropped,
 * or only the MIN and MAX ones when ALL and COUNT were not asked for; a
 * failed SORT empties it. An inline attempt the engine refused is run again
 * on a worker and must leave "$", which this very command may use, alone. */
static void esort_reply(struct ag_session *s, int rc, uint32_t *seqs, size_t n, const char *name)
{
	const struct imap_command *cmd = s->cmd;
	unsigned opts = cmd->u.search.return_opts;
	int final = !mail_nonblock_hit();
	uint32_t *uids = NULL;
	if (rc == 0 && (uids = malloc((n ? n : 1) * sizeof(*uids))) == NULL)
		rc = AEROGRAM_EINTERNAL;
	for (size_t i = 0; rc == 0 && i < n; i++)
		uids[i] = mail_view_uid(s->view, seqs[i]);
	if (rc == 0 && (opts & IMAP_SEARCH_RET_SAVE) && final) {
		uint32_t pick[2];
		const uint32_t *save = uids;
		size_t n_save = n;
		if ((opts & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) &&
		    !(opts & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_PARTIAL)) && n > 0) {
			n_save = 0;
			if (opts & IMAP_SEARCH_RET_MIN)
				pick[n_save++] = uids[0];
			if ((opts & IMAP_SEARCH_RET_MAX) && (n_save == 0 || uids[n - 1] != pick[0]))
				pick[n_save++] = uids[n - 1];
			save = pick;
		}
		if (ag_searchres_save(s, save, n_save) != 0)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc != 0) {
		if ((opts & IMAP_SEARCH_RET_SAVE) && final)
			ag_searchres_reset(s);
		ag_reply_error(&s->reply, cmd->tag.data, rc, name);
	} else {
		unsigned data = ag_search_data_opts(opts);
		if (data != IMAP_SEARCH_RET_SAVE)
			imap_write_esearch(&s->reply, cmd->tag.data, cmd->uid, data, cmd->uid ? uids : seqs, n,
					   cmd->u.search.partial_first, cmd->u.search.partial_last, 0);
		if ((opts & IMAP_SEARCH_RET_UPDATE) && final)
			ag_context_add(s, uids, n);
		ag_reply_done(&s->reply, cmd->tag.data, 0, name);
	}
	free(uids);
}

static void sort_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *name = cmd->uid ? "UID SORT" : "SORT";
	if (!charset_ok(s)) {
		if (cmd->u.search.return_opts & IMAP_SEARCH_RET_SAVE)
			ag_searchres_reset(s); /* RFC 5182 2.1: a failed SAVE leaves "$" empty */
		return;
	}
	uint32_t *seqs = NULL;
	size_t n = 0;
	int rc = sort_result(s, &seqs, &n);
	if (cmd->u.search.esearch) {
		esort_reply(s, rc, seqs, n, name);
		free(seqs);
		return;
	}
	if (rc != 0) {
		ag_reply_error(&s->reply, cmd->tag.data, rc, name);
		return;
	}
	for (size_t i = 0; cmd->uid && i < n; i++)
		seqs[i] = mail_view_uid(s->view, seqs[i]);
	imap_write_sort(&s->reply, seqs, n);
	ag_reply_done(&s->reply, cmd->tag.data, 0, name);
	free(seqs);
}

static void thread_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *name = cmd->uid ? "UID THREAD" : "THREAD";
	if (!charset_ok(s))
		return;
	struct sort_ctx ctx = { NULL, 0, WANT_SUBJECT };
	if (cmd->u.search.thread == IMAP_THREAD_REFERENCES)
		ctx.want |= WANT_REFS;
	uint32_t *seqs = NULL;
	size_t n = 0, have = 0;
	struct sort_rec *recs = NULL;
	struct thread_msg *msgs = NULL;
	struct agbuf threads = AGBUF_INIT;
	int rc = ag_search_matches(s, cmd->u.search.key, &seqs, &n);
	if (rc == 0)
		rc = gather(s, &ctx, seqs, n, &recs, &have);
	if (rc == 0 && (msgs = calloc(have ? have : 1, sizeof(*msgs))) == NULL)
		rc = AEROGRAM_EINTERNAL;
	if (rc == 0) {
		for (size_t i = 0; i < have; i++) {
			const struct sort_rec *r = &recs[i];
			msgs[i] = (struct thread_msg){
				.num = cmd->uid ? r->uid : r->seq,
				.date = r->date,
				.subject = r->subject,
				.reply = r->reply,
				.message_id = r->message_id,
				.refs = (const char *const *)r->refs,
				.n_refs = r->n_refs,
			};
		}
		int trc = cmd->u.search.thread == IMAP_THREAD_REFERENCES ? thread_references(&threads, msgs, have)
									: thread_orderedsubject(&threads, msgs, have);
		if (trc != 0)
			rc = AEROGRAM_EINTERNAL;
	}
	if (rc == 0)
		imap_write_thread(&s->reply, threads.data, threads.len);
	ag_reply_done(&s->reply, cmd->tag.data, rc, name);
	agbuf_free(&threads);
	free(msgs);
	recs_free(recs, have);
	free(seqs);
}

void ag_cmd_sort(struct ag_session *s)
{
	if (ag_search_update_tag_reused(s))
		return;
	ag_session_storage(s, sort_run, 0);
}

void ag_cmd_thread(struct ag_session *s)
{
	ag_session_storage(s, thread_run, 0);
}
