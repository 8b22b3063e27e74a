/* mail_reply.c - engine results written as IMAP responses. */
#include "host/mail_reply.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/session.h"
#include "protocol/imap_write.h"

void ag_reply_send(struct ag_session *s, struct agbuf *out)
{
	ag_session_write(s, out->data, out->len);
	agbuf_free(out);
}

void ag_reply_error(struct agbuf *out, const char *tag, int rc, const char *what)
{
	enum imap_code code;
	const char *reason;
	switch (rc) {
	case AEROGRAM_ENOTFOUND: code = IMAP_CODE_NONEXISTENT; reason = "no such mailbox"; break;
	case MAIL_EEXIST: code = IMAP_CODE_ALREADYEXISTS; reason = "the mailbox already exists"; break;
	case AEROGRAM_EUNAVAILABLE:
	case AEROGRAM_ETIMEDOUT: code = IMAP_CODE_UNAVAILABLE; reason = "the mail store is unavailable, try again later"; break;
	case AEROGRAM_EINVAL: code = IMAP_CODE_CANNOT; reason = "invalid name or request"; break;
	case AEROGRAM_ETOOBIG: code = IMAP_CODE_TOOBIG; reason = "too large for the mail store"; break;
	case AEROGRAM_EPERM: code = IMAP_CODE_NOPERM; reason = "the mail store refused the operation"; break;
	case AEROGRAM_ECONFLICT: code = IMAP_CODE_INUSE; reason = "a concurrent change got in the way, try again"; break;
	default: code = IMAP_CODE_SERVERBUG; reason = "internal error"; break;
	}
	imap_write_status(out, tag, IMAP_NO, code, "%s: %s.", what, reason);
}

void ag_reply_done(struct agbuf *out, const char *tag, int rc, const char *what)
{
	if (rc != 0)
		ag_reply_error(out, tag, rc, what);
	else
		imap_write_status(out, tag, IMAP_OK, IMAP_CODE_NONE, "%s completed.", what);
}

void ag_reply_bad_charset(struct agbuf *out, const char *tag)
{
	static const char *const charsets[] = { "US-ASCII", "UTF-8" };
	imap_write_status_begin(out, tag, IMAP_NO);
	imap_write_code_badcharset(out, charsets, 2);
	imap_write_status_end(out, "Unsupported charset.");
}

void ag_reply_highestmodseq(struct agbuf *out, const struct mail_view *v)
{
	imap_write_status_begin(out, NULL, IMAP_OK);
	imap_write_code_highestmodseq(out, mail_view_highestmodseq(v));
	imap_write_status_end(out, "Highest");
}

static const struct {
	const char *name;
	uint32_t bit;
} system_flags[] = {
	{ "\\Answered", MAIL_F_ANSWERED }, { "\\Flagged", MAIL_F_FLAGGED }, { "\\Deleted", MAIL_F_DELETED },
	{ "\\Seen", MAIL_F_SEEN },         { "\\Draft", MAIL_F_DRAFT },
};

uint32_t ag_flag_bit(const char *name, size_t len, int *is_recent)
{
	*is_recent = len == 7 && strncasecmp(name, "\\Recent", 7) == 0;
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
		if (strlen(system_flags[i].name) == len && strncasecmp(system_flags[i].name, name, len) == 0)
			return system_flags[i].bit;
	}
	return 0;
}

/* The system flags of `flags` then the view's keywords of `keywords` into
 * names (room for N_FLAG_NAMES); returns how many. */
#define N_FLAG_NAMES (sizeof(system_flags) / sizeof(system_flags[0]) + MAIL_MAX_KEYWORDS + 1)
static size_t flag_names(const struct mail_view *v, uint32_t flags, uint64_t keywords, const char **names)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
		if (flags & system_flags[i].bit)
			names[n++] = system_flags[i].name;
	for (unsigned bit = 0; bit < MAIL_MAX_KEYWORDS; bit++) {
		const char *kw = (keywords & ((uint64_t)1 << bit)) ? mail_view_keyword(v, bit) : NULL;
		if (kw != NULL)
			names[n++] = kw;
	}
	return n;
}

void ag_reply_flags(struct agbuf *out, const struct mail_view *v, uint32_t flags, uint64_t keywords, int recent)
{
	const char *names[N_FLAG_NAMES];
	size_t n = flag_names(v, flags, keywords, names);
	if (recent)
		names[n++] = "\\Recent";
	imap_write_flags(out, names, n);
}

static int in_list(const uint32_t *uids, size_t n, uint32_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (uids[i] == uid)
			return 1;
	return 0;
}

static int cmp_pair(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

void ag_ranges_intersect(uint32_t **lo, uint32_t **hi, size_t *n, const struct imap_seqset *set, uint32_t star)
{
	size_t cap = *n * (set->count ? set->count : 1);
	uint32_t (*pieces)[2] = malloc((cap ? cap : 1) * sizeof(*pieces));
	size_t m = 0;
	if (pieces == NULL) {
		*n = 0; /* nothing rather than too much */
		return;
	}
	for (size_t k = 0; k < set->count; k++) {
		uint32_t a, b;
		imap_seqrange_bounds(&set->ranges[k], star, &a, &b);
		for (size_t i = 0; i < *n; i++) {
			uint32_t l = (*lo)[i] > a ? (*lo)[i] : a, h = (*hi)[i] < b ? (*hi)[i] : b;
			if (l <= h) {
				pieces[m][0] = l;
				pieces[m][1] = h;
				m++;
			}
		}
	}
	qsort(pieces, m, sizeof(*pieces), cmp_pair);
	size_t w = 0;
	for (size_t i = 0; i < m; i++) {
		if (w > 0 && (uint64_t)(*hi)[w - 1] + 1 >= pieces[i][0]) {
			if (pieces[i][1] > (*hi)[w - 1])
				(*hi)[w - 1] = pieces[i][1];
			continue;
		}
		if (w >= *n) {
			/* more pieces than ranges: grow (overlapping set ranges) */
			uint32_t *nl = realloc(*lo, (w + 1) * sizeof(**lo)), *nh = NULL;
			if (nl != NULL)
				*lo = nl;
			if (nl != NULL && (nh = realloc(*hi, (w + 1) * sizeof(**hi))) != NULL)
				*hi = nh;
			if (nl == NULL || nh == NULL)
				break;
		}
		(*lo)[w] = pieces[i][0];
		(*hi)[w] = pieces[i][1];
		w++;
	}
	free(pieces);
	*n = w;
}

void ag_reply_changes(struct agbuf *out, const struct mail_view *v, const struct mail_changes *c, int with_uid,
                      const uint32_t *silent, size_t n_silent, unsigned features)
{
	if ((features & AG_REPLY_QRESYNC) && c->n_expunged > 0) {
		/* RFC 7162 3.2.10: the UIDs, ascending as the view lists them */
		imap_write_vanished(out, c->expunged_uids, c->n_expunged);
	} else {
		for (size_t i = 0; i < c->n_expunged; i++)
			imap_write_expunge(out, c->expunged[i]);
	}
	if (c->exists_changed) {
		imap_write_exists(out, c->exists);
		imap_write_recent(out, c->recent);
	}
	if (features & AG_REPLY_QRESYNC)
		with_uid = 1;
	for (size_t i = 0; i < c->n_flags; i++) {
		const struct mail_flag_change *f = &c->flags[i];
		int quiet = silent != NULL && in_list(silent, n_silent, f->uid);
		if (quiet && !(features & AG_REPLY_CONDSTORE))
			continue;
		imap_write_fetch_begin(out, f->seq);
		if (with_uid) {
			imap_write_atom(out, "UID ");
			imap_write_number(out, f->uid);
			imap_write_sp(out);
		}
		if (!quiet) {
			imap_write_atom(out, "FLAGS ");
			ag_reply_flags(out, v, f->flags, f->keywords, f->recent);
		}
		if (features & AG_REPLY_CONDSTORE) {
			if (!quiet)
				imap_write_sp(out);
			imap_write_fetch_modseq(out, f->modseq);
		}
		imap_write_fetch_end(out);
	}
}

/* PERMANENTFLAGS lists the mailbox's keywords too, as Dovecot does (every
 * keyword a client sees in FLAGS can be stored for good), and \* while the
 * mailbox can take another keyword (RFC 3501 7.1). */
void ag_reply_flag_list(struct agbuf *out, const struct mail_view *v, int readonly)
{
	const char *names[N_FLAG_NAMES];
	size_t n = flag_names(v, UINT32_MAX, UINT64_MAX, names);
	imap_write_flags_response(out, names, n);
	imap_write_status_begin(out, NULL, IMAP_OK);
	if (readonly) {
		imap_write_code_permanentflags(out, NULL, 0, 0);
		imap_write_status_end(out, "Read-only mailbox.");
		return;
	}
	imap_write_code_permanentflags(out, names, n, mail_view_keyword_count(v) < MAIL_MAX_KEYWORDS);
	imap_write_status_end(out, "Flags permitted.");
}

int ag_reply_update(struct agbuf *out, struct mail_view *v, int readonly, unsigned *kw_announced, unsigned options,
                    int with_uid, const uint32_t *silent, size_t n_silent, unsigned features,
                    int *uidvalidity_changed)
{
	struct mail_changes *c = NULL;
	int rc = mail_view_update_ex(v, !readonly, options, &c);
	if (rc != 0)
		return rc;
	*uidvalidity_changed = c->uidvalidity_changed;
	/* Under a new UIDVALIDITY the client's UIDs mean nothing any more: it is
	 * disconnected (see ag_session_update_view), so nothing else is said. */
	if (!c->uidvalidity_changed) {
		unsigned kws = mail_view_keyword_count(v);
		if (kws > *kw_announced) {
			ag_reply_flag_list(out, v, readonly);
			*kw_announced = kws;
		}
		ag_reply_changes(out, v, c, with_uid, silent, n_silent, features);
	}
	mail_changes_free(c);
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int ag_resolve_set(const struct mail_view *v, const struct imap_seqset *set, int uid_set, uint32_t **uids, size_t *n)
{
	uint32_t exists = mail_view_exists(v);
	*uids = NULL;
	*n = 0;
	/* "$" (RFC 5182): the session put the saved UIDs in (host/searchres.h) */
	if (set->saved)
		uid_set = 1;
	if (!uid_set) {
		/* Sequence numbers must exist (RFC 3501 9: BAD otherwise). */
		for (size_t i = 0; i < set->count; i++) {
			uint32_t a = set->ranges[i].first, b = set->ranges[i].last;
			if ((a != IMAP_SEQ_STAR && a > exists) || (b != IMAP_SEQ_STAR && b > exists) || exists == 0)
				return -1;
		}
	}
	uint32_t star = uid_set ? (exists ? mail_view_uid(v, exists) : 0) : exists;
	uint32_t *out = malloc((exists ? exists : 1) * sizeof(*out));
	if (out == NULL)
		return -1;
	size_t count = 0;
	for (uint32_t seq = 1; seq <= exists; seq++) {
		uint32_t uid = mail_view_uid(v, seq);
		if (imap_seqset_contains(set, uid_set ? uid : seq, star))
			out[count++] = uid;
	}
	if (uid_set && count == 0 && exists > 0) {
		/* "UID n:*" always matches the highest UID (RFC 3501 6.4.8). */
		for (size_t i = 0; i < set->count; i++) {
			if (set->ranges[i].first == IMAP_SEQ_STAR || set->ranges[i].last == IMAP_SEQ_STAR) {
				out[count++] = star;
				break;
			}
		}
	}
	qsort(out, count, sizeof(*out), cmp_u32);
	*uids = out;
	*n = count;
	return 0;
}
