/* cmd_fetch.c - FETCH and UID FETCH.
 *
 * Messages are read in batches: one summary read (internal date, size,
 * header block, serialised structure) and, only when an item needs more
 * than the top-level header, one body read per batch. A large answer goes
 * out in chunks of about FETCH_REPLY_CHUNK bytes, each read only once the
 * client took the previous one. ENVELOPE,
 * BODYSTRUCTURE and header sections come from the summary alone.
 *
 * FETCH never brings the view up to date, so it sends no EXPUNGE (RFC 3501
 * 7.4.1). A message another session expunged keeps its sequence number
 * until NOOP, IDLE, EXPUNGE... tell it; until then FETCH answers it from its
 * summary and body, which stay in the store until orphan collection. If they
 * are gone already, the message is left out of the answer and the command
 * ends with NO [EXPUNGEISSUED] (RFC 5530). */
#include <stdlib.h>
#include <string.h>

#include "host/commands.h"
#include "host/fetch_cache.h"
#include "host/log.h"
#include "host/mail_reply.h"
#include "protocol/bodystructure.h"
#include "protocol/envelope.h"
#include "protocol/imap_write.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"
#include "protocol/section.h"

#define FETCH_BATCH 64
/* Bytes of answer a run collects before handing them to the loop. */
#define FETCH_REPLY_CHUNK (1024 * 1024)

struct fetch_plan {
	int need_summary;
	int need_structure; /* the MIME structure (all but UID, FLAGS, MODSEQ, INTERNALDATE) */
	int need_header;    /* the header bytes of the summary (header sections) */
	int need_body;
	int sets_seen;   /* a non-PEEK body item: \Seen is set */
	int has_flags;
	int has_modseq;
	int add_modseq;  /* MODSEQ goes in though not asked for (RFC 7162 3.1.4.1, 3.1.5) */
};

static int section_is_header_only(const struct imap_section *sec)
{
	return sec->part_count == 0 && (sec->text == IMAP_SECTION_HEADER || sec->text == IMAP_SECTION_HEADER_FIELDS ||
	                                sec->text == IMAP_SECTION_HEADER_FIELDS_NOT);
}

static void plan_fetch(const struct imap_command *cmd, struct fetch_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	for (size_t i = 0; i < cmd->u.fetch.att_count; i++) {
		const struct imap_fetch_att *a = &cmd->u.fetch.atts[i];
		switch (a->kind) {
		case IMAP_FETCH_FLAGS: plan->has_flags = 1; break;
		case IMAP_FETCH_UID: break;
		case IMAP_FETCH_MODSEQ: plan->has_modseq = 1; break;
		case IMAP_FETCH_INTERNALDATE: plan->need_summary = 1; break;
		case IMAP_FETCH_RFC822:
		case IMAP_FETCH_RFC822_TEXT:
			plan->need_summary = plan->need_structure = plan->need_body = plan->sets_seen = 1;
			break;
		case IMAP_FETCH_BODY_SECTION:
			plan->need_summary = plan->need_structure = plan->need_header = 1;
			if (!section_is_header_only(&a->section))
				plan->need_body = 1;
			if (!a->peek)
				plan->sets_seen = 1;
			break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE:
			plan->need_summary = plan->need_structure = plan->need_body = 1;
			if (a->kind == IMAP_FETCH_BINARY && !a->peek)
				plan->sets_seen = 1;
			break;
		case IMAP_FETCH_RFC822_HEADER: plan->need_summary = plan->need_structure = plan->need_header = 1; break;
		default: plan->need_summary = plan->need_structure = 1; break;
		}
	}
}

/* The parser refuses deeper sections than section.h can hold. */
_Static_assert(IMAP_SECTION_MAX_PARTS <= SECTION_MAX_PATH, "body section depth bounds disagree");

/* The parser's section as protocol/section.h takes it; `fields` has room
 * for the section's field names. Returns -1 when the path is too deep. */
static int to_spec(const struct imap_fetch_att *a, struct section_spec *spec, const char **fields)
{
	memset(spec, 0, sizeof(*spec));
	if (a->section.part_count > SECTION_MAX_PATH)
		return -1;
	for (size_t i = 0; i < a->section.part_count; i++)
		spec->path[i] = a->section.parts[i];
	spec->path_len = a->section.part_count;
	switch (a->section.text) {
	case IMAP_SECTION_ALL: spec->kind = SECTION_BODY; break;
	case IMAP_SECTION_HEADER: spec->kind = SECTION_HEADER; break;
	case IMAP_SECTION_HEADER_FIELDS: spec->kind = SECTION_HEADER_FIELDS; break;
	case IMAP_SECTION_HEADER_FIELDS_NOT: spec->kind = SECTION_HEADER_FIELDS_NOT; break;
	case IMAP_SECTION_TEXT: spec->kind = SECTION_TEXT; break;
	case IMAP_SECTION_MIME: spec->kind = SECTION_MIME; break;
	}
	for (size_t i = 0; i < a->section.field_count; i++)
		fields[i] = a->section.fields[i].data;
	spec->fields = fields;
	spec->nfields = a->section.field_count;
	if (a->has_partial) {
		spec->partial = 1;
		spec->partial_offset = a->partial_offset;
		spec->partial_length = a->partial_count;
	}
	return 0;
}

/* BINARY[part]<partial> and BINARY.SIZE[part] (RFC 3516). `full` is the
 * message parsed with its Content-* fields (the cached skeleton has none).
 * Returns -1 after writing nothing when the part's encoding is unknown: the
 * command then ends NO [UNKNOWN-CTE]. The bytes go as a literal8 when they
 * hold a NUL, else as a plain literal (RFC 3516 4.2: literal8 only where
 * needed, so that a client reading only literals still understands it). */
static int write_binary(struct agbuf *out, const struct imap_fetch_att *a, const struct mime_message *full,
                        const char *data, size_t len)
{
	struct section_spec spec;
	memset(&spec, 0, sizeof(spec));
	for (size_t i = 0; i < a->section.part_count && i < SECTION_MAX_PATH; i++)
		spec.path[i] = a->section.parts[i];
	spec.path_len = a->section.part_count;
	if (a->has_partial) {
		spec.partial = 1;
		spec.partial_offset = a->partial_offset;
		spec.partial_length = a->partial_count;
	}
	struct section_result res = { 0 };
	uint64_t full_len = 0;
	int rc = full ? section_binary(full, data, len, &spec, &res, &full_len) : -1;
	if (rc == -2)
		return -1;
	if (rc != 0) {
		/* the stored message is not readable: an empty answer, as for BODY[] */
		res.data = "";
		res.len = 0;
	}
	imap_write_fetch_att_name(out, a);
	imap_write_sp(out);
	if (a->kind == IMAP_FETCH_BINARY_SIZE) {
		imap_write_number(out, full_len);
	} else {
		if (memchr(res.data, '\0', res.len))
			imap_write_atom(out, "~");
		imap_write_literal_header(out, res.len);
		agbuf_append(out, res.data, res.len);
	}
	section_result_free(&res);
	return 0;
}

/* RFC822, RFC822.HEADER, RFC822.TEXT: a whole-message section under an old name. */
static void write_rfc822(struct agbuf *out, const char *item, enum section_kind kind,
                         const struct mime_message *msg, const char *data, size_t len)
{
	struct section_spec spec = { .kind = kind };
	struct section_result res = { 0 };
	imap_write_atom(out, item);
	imap_write_sp(out);
	if (section_fetch(msg, data, len, &spec, &res) != 0) {
		imap_write_nil(out);
		return;
	}
	imap_write_literal_header(out, res.len);
	agbuf_append(out, res.data, res.len);
	section_result_free(&res);
}

/* Writes "* seq FETCH (...)" for one message. The MIME structure is needed
 * only when an item needs it (`need_structure`): FETCH (FLAGS INTERNALDATE)
 * of a whole mailbox would otherwise decode every message for nothing. It
 * comes from the fetch cache (`ent`: the texts of ENVELOPE, BODY and
 * BODYSTRUCTURE as written once, the part tree and the internal date),
 * filled from the summary's serialised structure on a miss; only a summary
 * whose structure does not decode is parsed here, every time, and not
 * cached (what the parse sees depends on whether the body was read).
 * `ent` is the message's entry when the caller looked it up already (then
 * `sum` may be NULL); this function gives it back. Returns 0, or -1 when
 * a BINARY item met an encoding it cannot decode (nothing is written). */
static int write_message(struct agbuf *out, struct ag_session *s, const struct imap_command *cmd,
                          uint32_t seq, const struct mail_msg_info *info, uint32_t flags, int add_flags,
                          int add_modseq, const struct mail_summary *sum, const struct mail_body *body,
                          int need_structure, const struct ag_fetch_entry *ent)
{
	struct ag_fetch_cache *cache = ag_fetch_cache_global();
	struct mime_message *parsed = NULL;
	if (ent == NULL && sum != NULL && need_structure) {
		const char *user = s->user ? s->user : "";
		const char *mailbox_id = mail_mailbox_id(mail_view_mailbox(s->view));
		if (cache != NULL)
			ent = ag_fetch_cache_get(cache, user, mailbox_id, info->id);
		if (ent == NULL) {
			struct mime_message *decoded = mime_serial_decode(sum->bodystructure, sum->bodystructure_len);
			if (decoded != NULL && cache != NULL &&
			    (ent = ag_fetch_cache_put(cache, user, mailbox_id, info->id, decoded,
			                              sum->internal_date_ms)) != NULL)
				mime_free(decoded);
			else
				parsed = decoded;
		}
		/* A summary without a usable structure: parse what there is. */
		if (ent == NULL && parsed == NULL && body != NULL)
			parsed = mime_parse((const char *)body->data, body->len);
		if (ent == NULL && parsed == NULL)
			parsed = mime_parse((const char *)sum->header, sum->header_len);
	}
	const struct mime_message *msg = ent ? ent->skeleton : parsed;
	const char *data = body ? (const char *)body->data : sum ? (const char *)sum->header : "";
	size_t len = body ? body->len : sum ? sum->header_len : 0;

	size_t start_len = out->len;
	struct mime_message *full = NULL; /* with Content-* fields, for BINARY */
	int unknown_cte = 0;
	imap_write_fetch_begin(out, seq);
	int first = 1;
	if (cmd->uid) {
		imap_write_atom(out, "UID ");
		imap_write_number(out, info->uid);
		first = 0;
	}
	for (size_t i = 0; i < cmd->u.fetch.att_count; i++) {
		const struct imap_fetch_att *a = &cmd->u.fetch.atts[i];
		if (a->kind == IMAP_FETCH_UID && cmd->uid)
			continue;
		if (!first)
			imap_write_sp(out);
		first = 0;
		switch (a->kind) {
		case IMAP_FETCH_UID:
			imap_write_atom(out, "UID ");
			imap_write_number(out, info->uid);
			break;
		case IMAP_FETCH_FLAGS:
			imap_write_atom(out, "FLAGS ");
			ag_reply_flags(out, s->view, flags, info->keywords, info->recent);
			break;
		case IMAP_FETCH_MODSEQ: imap_write_fetch_modseq(out, info->modseq); break;
		case IMAP_FETCH_INTERNALDATE:
			imap_write_atom(out, "INTERNALDATE ");
			imap_write_datetime(out,
			                    sum   ? (int64_t)(sum->internal_date_ms / 1000)
			                    : ent ? (int64_t)(ent->internal_date_ms / 1000)
			                          : 0,
			                    0);
			break;
		case IMAP_FETCH_RFC822_SIZE:
			imap_write_atom(out, "RFC822.SIZE ");
			imap_write_number(out, msg ? msg->vsize : 0);
			break;
		case IMAP_FETCH_ENVELOPE:
			imap_write_atom(out, "ENVELOPE ");
			if (ent)
				agbuf_append(out, ent->envelope, ent->envelope_len);
			else if (msg)
				envelope_write_message(out, msg);
			else
				envelope_write(out, NULL);
			break;
		case IMAP_FETCH_BODY:
		case IMAP_FETCH_BODYSTRUCTURE:
			imap_write_atom(out, a->kind == IMAP_FETCH_BODY ? "BODY " : "BODYSTRUCTURE ");
			if (ent && a->kind == IMAP_FETCH_BODY)
				agbuf_append(out, ent->body, ent->body_len);
			else if (ent)
				agbuf_append(out, ent->bodystructure, ent->bodystructure_len);
			else if (msg)
				bodystructure_write(out, msg->root, a->kind == IMAP_FETCH_BODYSTRUCTURE);
			else
				imap_write_nil(out);
			break;
		case IMAP_FETCH_RFC822: write_rfc822(out, "RFC822", SECTION_BODY, msg, data, len); break;
		case IMAP_FETCH_RFC822_HEADER: write_rfc822(out, "RFC822.HEADER", SECTION_HEADER, msg, data, len); break;
		case IMAP_FETCH_RFC822_TEXT: write_rfc822(out, "RFC822.TEXT", SECTION_TEXT, msg, data, len); break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE:
			/* the body is read for BINARY (plan_fetch): parse it once */
			if (full == NULL)
				full = parsed != NULL ? parsed : body != NULL ? mime_parse(data, len) : NULL;
			if (write_binary(out, a, full, data, len) != 0)
				unknown_cte = 1;
			break;
		case IMAP_FETCH_BODY_SECTION: {
			const char **fields = calloc(a->section.field_count + 1, sizeof(*fields));
			struct section_spec spec;
			struct section_result res = { 0 };
			if (fields == NULL || msg == NULL || to_spec(a, &spec, fields) != 0 ||
			    section_fetch(msg, data, len, &spec, &res) != 0) {
				/* Only when the stored message is not readable: an empty answer. */
				struct section_result empty = { "", 0, NULL };
				if (fields != NULL && to_spec(a, &spec, fields) == 0)
					section_write_item(out, &spec, &empty);
				else
					imap_write_atom(out, "BODY[] NIL");
			} else {
				section_write_item(out, &spec, &res);
				section_result_free(&res);
			}
			free(fields);
			break;
		}
		}
	}
	if (add_flags) {
		/* The fetch set \Seen: the client learns it with the data. */
		imap_write_atom(out, first ? "FLAGS " : " FLAGS ");
		ag_reply_flags(out, s->view, flags, info->keywords, info->recent);
		first = 0;
	}
	if (add_modseq) {
		if (!first)
			imap_write_sp(out);
		imap_write_fetch_modseq(out, info->modseq);
	}
	imap_write_fetch_end(out);
	if (ent)
		ag_fetch_cache_release(cache, ent);
	if (full && full != parsed)
		mime_free(full);
	if (parsed)
		mime_free(parsed);
	if (unknown_cte) {
		out->len = start_len;
		out->data[out->len] = '\0';
		return -1;
	}
	return 0;
}

static int cmp_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* What a FETCH keeps between its runs (see ag_session_storage_continue). */
struct fetch_state {
	uint32_t *uids;
	size_t n, pos;
	int seen_set;
	uint32_t *newly_seen;     /* ascending: they get FLAGS in the answer */
	size_t n_newly_seen;
	struct fetch_plan plan;
	int missing;              /* a message could not be read: expunged */
	int unknown_cte;          /* BINARY of a part in an encoding we cannot decode */
};

static void fetch_state_free(void *arg)
{
	struct fetch_state *st = arg;
	free(st->uids);
	free(st->newly_seen);
	free(st);
}

/* The first run: which messages, and \Seen for the ones whose body is read. */
static struct fetch_state *fetch_start(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	struct mail_view *v = s->view;
	struct fetch_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	if (ag_resolve_set(v, &cmd->u.fetch.set, cmd->uid, &st->uids, &st->n) != 0) {
		imap_write_status(&s->reply, cmd->tag.data, IMAP_BAD, IMAP_CODE_NONE, "Invalid message sequence number.");
		free(st);
		return NULL;
	}
	plan_fetch(cmd, &st->plan);
	/* RFC 7162: CHANGEDSINCE and MODSEQ are CONDSTORE enabling (3.1);
	 * VANISHED needs QRESYNC, UID FETCH and CHANGEDSINCE (3.2.6) */
	if (cmd->u.fetch.vanished && (!s->qresync || !cmd->uid || !cmd->u.fetch.has_changedsince)) {
		imap_write_status(&s->reply, cmd->tag.data, IMAP_BAD, IMAP_CODE_NONE,
		                  "VANISHED needs QRESYNC enabled, UID FETCH and CHANGEDSINCE.");
		free(st->uids);
		free(st);
		return NULL;
	}
	if (cmd->u.fetch.has_changedsince || st->plan.has_modseq)
		ag_session_enable_condstore(s);
	st->plan.add_modseq = !st->plan.has_modseq && (cmd->u.fetch.has_changedsince ||
	                                               (s->condstore && st->plan.has_flags));
	if (cmd->u.fetch.vanished) {
		uint32_t *lo, *hi;
		size_t n;
		int exact;
		int rc = mail_view_vanished(v, cmd->u.fetch.changedsince, &lo, &hi, &n, &exact);
		if (rc != 0) {
			ag_reply_error(&s->reply, cmd->tag.data, rc, "UID FETCH");
			free(st->uids);
			free(st);
			return NULL;
		}
		/* "*" stands for every UID ever given out here: the highest may
		 * be one of the expunged (as Dovecot reads it) */
		ag_ranges_intersect(&lo, &hi, &n, &cmd->u.fetch.set, mail_view_uidnext(v) - 1);
		if (n > 0)
			imap_write_vanished_earlier(&s->reply, lo, hi, n);
		free(lo);
		free(hi);
	}
	if (cmd->u.fetch.has_changedsince) {
		/* only the messages changed since (RFC 7162 3.1.4.1) */
		size_t w = 0;
		for (size_t i = 0; i < st->n; i++) {
			struct mail_msg_info info;
			if (mail_view_msg(v, mail_view_seq(v, st->uids[i]), &info) == 0 &&
			    info.modseq > cmd->u.fetch.changedsince)
				st->uids[w++] = st->uids[i];
		}
		st->n = w;
	}
	if (st->plan.sets_seen && !s->readonly) {
		/* Reading a body marks it \Seen (RFC 3501 6.4.5), one log entry for all. */
		uint32_t *unseen = malloc((st->n ? st->n : 1) * sizeof(*unseen));
		size_t n_unseen = 0;
		for (size_t i = 0; unseen != NULL && i < st->n; i++) {
			struct mail_msg_info info;
			if (mail_view_msg(v, mail_view_seq(v, st->uids[i]), &info) == 0 && !(info.flags & MAIL_F_SEEN))
				unseen[n_unseen++] = st->uids[i];
		}
		if (n_unseen > 0 && mail_store(v, unseen, n_unseen, MAIL_STORE_ADD, MAIL_F_SEEN, NULL, 0) == 0) {
			st->seen_set = 1;
			st->newly_seen = unseen;
			st->n_newly_seen = n_unseen;
			unseen = NULL;
		}
		free(unseen);
	}
	if (st->seen_set)
		ag_session_overlay_seen(s, st->newly_seen, st->n_newly_seen);
	return st;
}

/* Looks up the cache entries of a batch for a FETCH whose items the cache
 * answers alone (ENVELOPE, BODY, BODYSTRUCTURE, RFC822.SIZE, INTERNALDATE
 * with UID, FLAGS, MODSEQ). Returns 1 when every message of the view has
 * one: then the batch needs no summary read (a message expunged and
 * collected meanwhile is answered from its entry, RFC 3501 7.4.1 allows
 * it). Else 0, with the entries found kept in `ents` all the same. */
static int lookup_batch(struct ag_session *s, const uint32_t *uids, size_t count,
                        const struct ag_fetch_entry **ents)
{
	struct ag_fetch_cache *cache = ag_fetch_cache_global();
	if (cache == NULL)
		return 0;
	const char *user = s->user ? s->user : "";
	const char *mailbox_id = mail_mailbox_id(mail_view_mailbox(s->view));
	int all = 1;
	for (size_t i = 0; i < count; i++) {
		struct mail_msg_info info;
		uint32_t seq = mail_view_seq(s->view, uids[i]);
		if (seq == 0 || mail_view_msg(s->view, seq, &info) != 0)
			continue; /* not answered either way */
		if ((ents[i] = ag_fetch_cache_get(cache, user, mailbox_id, info.id)) == NULL)
			all = 0;
	}
	return all;
}

/* Runs until the reply holds about FETCH_REPLY_CHUNK bytes, then lets the
 * loop send it and comes back for the rest. */
static void fetch_run(struct ag_session *s)
{
	const struct imap_command *cmd = s->cmd;
	const char *tag = cmd->tag.data;
	struct mail_view *v = s->view;
	struct fetch_state *st = s->cont;
	s->cont = NULL;
	if (st == NULL && (st = fetch_start(s)) == NULL) {
		if (s->reply.len == 0)
			ag_reply_error(&s->reply, tag, AEROGRAM_EINTERNAL, "FETCH");
		return;
	}
	int rc = 0;
	while (rc == 0 && st->pos < st->n && s->reply.len < FETCH_REPLY_CHUNK) {
		size_t count = st->n - st->pos < FETCH_BATCH ? st->n - st->pos : FETCH_BATCH;
		const uint32_t *uids = st->uids + st->pos;
		struct mail_summary *sums = NULL;
		struct mail_body *bodies = NULL;
		const struct ag_fetch_entry *ents[FETCH_BATCH] = { NULL };
		int cached = st->plan.need_summary && !st->plan.need_header && !st->plan.need_body &&
		             lookup_batch(s, uids, count, ents);
		if (st->plan.need_summary && !cached)
			rc = mail_summaries(v, uids, count, &sums);
		if (rc == 0 && st->plan.need_body)
			rc = mail_bodies(v, uids, count, &bodies);
		for (size_t i = 0; rc == 0 && i < count; i++) {
			uint32_t seq = mail_view_seq(v, uids[i]);
			struct mail_msg_info info;
			if (seq == 0 || mail_view_msg(v, seq, &info) != 0)
				continue;
			const struct mail_summary *sum = sums ? &sums[i] : NULL;
			const struct mail_body *body = bodies ? &bodies[i] : NULL;
			if ((sum && sum->status != 0) || (body && body->status != 0)) {
				/* expunged and already collected: nothing left to answer */
				st->missing = 1;
				continue;
			}
			uint32_t flags = ag_session_flags(s, info.uid, info.flags);
			int add_flags = 0;
			if (st->seen_set && bsearch(&info.uid, st->newly_seen, st->n_newly_seen, sizeof(info.uid),
			                            cmp_uid) != NULL)
				add_flags = !st->plan.has_flags;
			if (write_message(&s->reply, s, cmd, seq, &info, flags, add_flags, st->plan.add_modseq, sum, body,
			                  st->plan.need_structure, ents[i]) != 0)
				st->unknown_cte = 1;
			ents[i] = NULL;
		}
		for (size_t i = 0; i < count; i++)
			ag_fetch_cache_release(ag_fetch_cache_global(), ents[i]);
		if (sums)
			mail_summaries_free(sums, count);
		if (bodies)
			mail_bodies_free(bodies, count);
		st->pos += count;
	}
	if (rc != 0) {
		fetch_state_free(st);
		ag_reply_error(&s->reply, tag, rc, cmd->uid ? "UID FETCH" : "FETCH");
		return;
	}
	if (st->pos < st->n) {
		ag_session_storage_continue(s, st, fetch_state_free);
		return;
	}
	int missing = st->missing, unknown_cte = st->unknown_cte;
	fetch_state_free(st);
	if (unknown_cte)
		/* RFC 3516 4.3: the other messages were answered, this one not */
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_UNKNOWN_CTE,
		                  "Can't decode the part's Content-Transfer-Encoding.");
	else if (missing)
		imap_write_status(&s->reply, tag, IMAP_NO, IMAP_CODE_EXPUNGEISSUED,
		                  "Some of the requested messages no longer exist.");
	else
		ag_reply_done(&s->reply, tag, 0, cmd->uid ? "UID FETCH" : "FETCH");
}

void ag_cmd_fetch(struct ag_session *s)
{
	ag_session_storage(s, fetch_run, 0);
}
