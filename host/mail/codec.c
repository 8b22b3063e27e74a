/* codec.c - the binary encoding of everything the engine stores.
 *
 * Every value starts with a kind byte and a version byte; integers are
 * LEB128 varints (endian-stable), byte strings are a varint length then the
 * bytes, ids are 16 raw bytes. Decoders check every length against what is
 * left and every count against a sane bound, and reject trailing bytes, so
 * corrupt input is refused without crashing or allocating absurd amounts. */
#include "host/mail/mail_internal.h"

#include <stdlib.h>
#include <string.h>

#define KIND_OP 0x4f         /* 'O' */
#define KIND_STATE 0x53      /* 'S' */
#define KIND_SUMMARY 0x4d    /* 'M' */
#define KIND_LIST 0x4c       /* 'L' */
#define CODEC_VERSION 1
#define MAX_KEYWORD_LEN 256
#define MAX_NAME_LEN 1024

static void cb_grow(struct cbuf *b, size_t n)
{
	if (!b->oom && mail_grow(&b->p, &b->cap, b->len + n, 1, 64) != 0)
		b->oom = 1;
}

void cb_raw(struct cbuf *b, const void *p, size_t n)
{
	cb_grow(b, n);
	if (b->oom || n == 0)
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void cb_u8(struct cbuf *b, uint8_t v)
{
	cb_raw(b, &v, 1);
}

void cb_var(struct cbuf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		tmp[n++] = c | (v ? 0x80 : 0);
	} while (v);
	cb_raw(b, tmp, n);
}

void cb_bytes(struct cbuf *b, const void *p, size_t n)
{
	cb_var(b, n);
	cb_raw(b, p, n);
}

uint8_t cr_u8(struct crd *r)
{
	if (r->bad || r->pos >= r->len) {
		r->bad = 1;
		return 0;
	}
	return r->p[r->pos++];
}

uint64_t cr_var(struct crd *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		uint8_t c = cr_u8(r);
		if (r->bad)
			return 0;
		if (shift == 63 && (c & 0x7e)) {
			r->bad = 1;
			return 0;
		}
		v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80)) {
			if (c == 0 && shift > 0) { /* a padded varint: not canonical */
				r->bad = 1;
				return 0;
			}
			return v;
		}
	}
	r->bad = 1;
	return 0;
}

uint32_t cr_u32(struct crd *r)
{
	uint64_t v = cr_var(r);
	if (v > UINT32_MAX) {
		r->bad = 1;
		return 0;
	}
	return (uint32_t)v;
}

const uint8_t *cr_raw(struct crd *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = 1;
		return NULL;
	}
	const uint8_t *p = r->p + r->pos;
	r->pos += n;
	return p;
}

const uint8_t *cr_bytes(struct crd *r, size_t *n, size_t max)
{
	uint64_t len = cr_var(r);
	if (r->bad || len > max || len > r->len - r->pos) {
		r->bad = 1;
		*n = 0;
		return NULL;
	}
	*n = (size_t)len;
	return cr_raw(r, (size_t)len);
}

/* A string of at most max bytes with no NUL, as a fresh C string. */
static char *cr_str(struct crd *r, size_t max)
{
	size_t n;
	const uint8_t *p = cr_bytes(r, &n, max);
	if (p == NULL || memchr(p, 0, n) != NULL) {
		r->bad = 1;
		return NULL;
	}
	char *s = malloc(n + 1);
	if (s == NULL) {
		r->bad = 1;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* Version 2 appends fields (an add's anchor, a state's marks) that version 1
 * lacks; a value without them is still written as version 1. */
#define CODEC_VERSION_2 2
/* Version 3 of a checkpoint always has the marks' count and appends the
 * largest INIT value (the mailbox's first UIDVALIDITY). Version 3 of an
 * operation is an add that carries its messages' sizes (after each item's
 * flags) and always its anchor (16 zero bytes: none). */
#define CODEC_VERSION_3 3
/* Version 4 of a checkpoint: version 3 with each message's size after its
 * flags, the largest INIT from 1 up, and the recently expunged messages
 * (undelete; their count may be 0) at the end. Sizes are written as
 * size + 1, 0 standing for a size the state does not know (an add written
 * before sizes were logged). Written when there is a size to keep or an
 * expunged message to list. */
#define CODEC_VERSION_4 4
/* Version 5 of a checkpoint: version 4, then the expunges by modseq
 * (QRESYNC): the floor (the highest modseq forgotten, 0: none), the count
 * of runs, then per run the delta of its modseq from the previous run's
 * (ascending; the first from the floor), its first UID and its length - 1.
 * Written when there is a run or a floor. */
#define CODEC_VERSION_5 5

/* Reads a count of items that take at least `min` bytes each, bounded by
 * the bytes left and by `max`, and allocates that many items of `size`
 * bytes, zeroed: the array, or NULL when there are none or the input is
 * bad (or out of memory: bad). *n gets the count read. */
static void *cr_array(struct crd *r, size_t min, uint64_t max, size_t size, uint64_t *n)
{
	*n = cr_var(r);
	if (r->bad || *n > (r->len - r->pos) / min || *n > max)
		r->bad = 1;
	if (r->bad || *n == 0)
		return NULL;
	void *a = calloc((size_t)*n, size);
	if (a == NULL)
		r->bad = 1;
	return a;
}

/* Every value starts with its kind and version (header_ok reads them). */
static void cb_header(struct cbuf *b, uint8_t kind, uint8_t version)
{
	cb_u8(b, kind);
	cb_u8(b, version);
}

/* Whether the value was read without error and to its last byte. */
static int cr_whole(const struct crd *r)
{
	return !r->bad && r->pos == r->len;
}

/* Starts reading the `len` bytes at p as a value of this kind: its
 * version, or 0 when it is not one. */
static int header_ok(struct crd *r, const uint8_t *p, size_t len, uint8_t kind)
{
	*r = (struct crd){ p, len, 0, 0 };
	if (cr_u8(r) != kind)
		return 0;
	uint8_t v = cr_u8(r);
	if (r->bad)
		return 0;
	/* summaries and the mailbox list have only version 1; operations go
	 * to version 3 (adds with sizes), states to 5 */
	if (v == CODEC_VERSION || (v == CODEC_VERSION_2 && (kind == KIND_OP || kind == KIND_STATE)) ||
	    (v == CODEC_VERSION_3 && (kind == KIND_STATE || kind == KIND_OP)) ||
	    ((v == CODEC_VERSION_4 || v == CODEC_VERSION_5) && kind == KIND_STATE))
		return v;
	return 0;
}

/* The keyword table of an operation or a state: a count, then each name. */
static void cb_keywords(struct cbuf *b, char *const *kw, size_t n)
{
	cb_var(b, n);
	for (size_t i = 0; i < n; i++)
		cb_bytes(b, kw[i], strlen(kw[i]));
}

/* Reads nk keyword names into kw (room for nk), counting in *n those read. */
static void cr_keywords(struct crd *r, char **kw, uint64_t nk, size_t *n)
{
	for (size_t i = 0; !r->bad && i < nk; i++) {
		kw[i] = cr_str(r, MAX_KEYWORD_LEN);
		if (kw[i])
			(*n)++;
	}
}

static void cb_ts(struct cbuf *b, struct ag_ts ts)
{
	uint8_t raw[16];
	for (int i = 0; i < 8; i++) {
		raw[i] = (uint8_t)(ts.ms >> (56 - 8 * i));
		raw[8 + i] = (uint8_t)(ts.rnd >> (56 - 8 * i));
	}
	cb_raw(b, raw, sizeof(raw));
}

static struct ag_ts cr_ts(struct crd *r)
{
	struct ag_ts ts = { 0, 0 };
	const uint8_t *raw = cr_raw(r, 16);
	for (int i = 0; raw && i < 8; i++) {
		ts.ms = (ts.ms << 8) | raw[i];
		ts.rnd = (ts.rnd << 8) | raw[8 + i];
	}
	return ts;
}

static int ts_is_zero(struct ag_ts ts)
{
	return ts.ms == 0 && ts.rnd == 0;
}

/* A size as size + 1, 0 for an unknown one. */
static void cb_size(struct cbuf *b, uint64_t size)
{
	cb_var(b, size == UIDX_SIZE_UNKNOWN ? 0 : size + 1);
}

static uint64_t cr_size(struct crd *r)
{
	uint64_t v = cr_var(r);
	return v == 0 ? UIDX_SIZE_UNKNOWN : v - 1;
}

/* ---- operations ---- */

int codec_op_encode(const struct uidx_op *op, struct cbuf *b)
{
	int v3 = op->kind == UIDX_OP_ADD && op->item_sizes != NULL;
	int v2 = !v3 && ((op->kind == UIDX_OP_ADD && op->has_anchor) || op->kind == UIDX_OP_LATE);
	cb_header(b, KIND_OP, v3 ? CODEC_VERSION_3 : v2 ? CODEC_VERSION_2 : CODEC_VERSION);
	cb_u8(b, op->kind);
	cb_var(b, op->seen_uidnext);
	cb_var(b, op->bump);
	cb_raw(b, op->owner, UIDX_ID);
	cb_keywords(b, op->keywords, op->n_keywords);
	cb_var(b, op->flags);
	cb_var(b, op->n);
	for (size_t i = 0; i < op->n; i++) {
		cb_raw(b, op->ids[i], UIDX_ID);
		if (op->kind == UIDX_OP_ADD)
			cb_var(b, op->item_flags[i]);
		if (v3)
			cb_size(b, op->item_sizes[i]);
	}
	if (v2)
		cb_ts(b, op->anchor);
	if (v3)
		cb_ts(b, op->has_anchor ? op->anchor : (struct ag_ts){ 0, 0 });
	return b->oom ? AEROGRAM_EINTERNAL : 0;
}

int codec_op_decode(const uint8_t *p, size_t len, struct uidx_op **out)
{
	struct crd r;
	*out = NULL;
	int version = header_ok(&r, p, len, KIND_OP);
	if (version == 0)
		return AEROGRAM_EINVAL;
	struct uidx_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return AEROGRAM_EINTERNAL;
	op->kind = cr_u8(&r);
	if (op->kind < UIDX_OP_ADD || op->kind > UIDX_OP_LAST)
		r.bad = 1;
	op->seen_uidnext = cr_u32(&r);
	op->bump = cr_u32(&r);
	const uint8_t *owner = cr_raw(&r, UIDX_ID);
	if (owner)
		memcpy(op->owner, owner, UIDX_ID);
	uint64_t nk = cr_var(&r);
	if (nk > MAIL_MAX_KEYWORDS)
		r.bad = 1;
	if (!r.bad && nk) {
		op->keywords = calloc((size_t)nk, sizeof(char *));
		if (op->keywords == NULL)
			r.bad = 1;
		cr_keywords(&r, op->keywords, nk, &op->n_keywords);
	}
	op->flags = cr_var(&r);
	uint64_t n = cr_var(&r);
	/* every item takes at least 16 bytes: bound the count by what is left */
	if (r.bad || n > (r.len - r.pos) / UIDX_ID)
		r.bad = 1;
	if (!r.bad && n) {
		op->ids = malloc((size_t)n * UIDX_ID);
		if (op->kind == UIDX_OP_ADD)
			op->item_flags = calloc((size_t)n, sizeof(uint64_t));
		if (version == CODEC_VERSION_3 && op->kind == UIDX_OP_ADD)
			op->item_sizes = calloc((size_t)n, sizeof(uint64_t));
		if (op->ids == NULL || (op->kind == UIDX_OP_ADD && op->item_flags == NULL) ||
		    (version == CODEC_VERSION_3 && op->kind == UIDX_OP_ADD && op->item_sizes == NULL))
			r.bad = 1;
		for (size_t i = 0; !r.bad && i < n; i++) {
			const uint8_t *id = cr_raw(&r, UIDX_ID);
			if (id)
				memcpy(op->ids[i], id, UIDX_ID);
			if (op->kind == UIDX_OP_ADD)
				op->item_flags[i] = cr_var(&r);
			if (op->item_sizes)
				op->item_sizes[i] = cr_size(&r);
		}
		if (!r.bad)
			op->n = (size_t)n;
	}
	if (version == CODEC_VERSION_2) {
		if (op->kind != UIDX_OP_ADD && op->kind != UIDX_OP_LATE)
			r.bad = 1; /* only an add and a late marker have an anchor */
		op->anchor = cr_ts(&r);
		op->has_anchor = 1;
	} else if (version == CODEC_VERSION_3) {
		if (op->kind != UIDX_OP_ADD)
			r.bad = 1; /* only an add has sizes */
		op->anchor = cr_ts(&r);
		op->has_anchor = !ts_is_zero(op->anchor);
	} else if (op->kind == UIDX_OP_LATE) {
		r.bad = 1; /* a late marker names its entry */
	}
	if (op->kind == UIDX_OP_INIT && op->bump == 0)
		r.bad = 1;
	if (!cr_whole(&r)) {
		uidx_op_free(op);
		return AEROGRAM_EINVAL;
	}
	*out = op;
	return 0;
}

/* ---- checkpoints (the replayed UID index) ---- */

int codec_state_encode(const struct uidx_state *s, struct cbuf *b)
{
	/* with a size to keep or expunged messages to list, version 4 */
	int v5 = s->n_vanished > 0 || s->vanished_floor > 0;
	int v4 = v5 || s->n_unsized < s->n || s->n_expunged > 0;
	int v3 = v4 || s->uv_init > 1;
	cb_header(b, KIND_STATE,
	          v5 ? CODEC_VERSION_5 : v4 ? CODEC_VERSION_4 : v3 ? CODEC_VERSION_3 : s->n_marks ? CODEC_VERSION_2 : CODEC_VERSION);
	cb_var(b, s->uidvalidity);
	cb_var(b, s->uidnext);
	cb_var(b, s->highestmodseq);
	cb_var(b, s->recent_upto);
	cb_keywords(b, s->keywords, s->n_keywords);
	cb_var(b, s->n_recent);
	for (size_t i = 0; i < s->n_recent; i++) {
		cb_raw(b, s->recent[i].owner, UIDX_ID);
		cb_var(b, s->recent[i].lo);
		cb_var(b, s->recent[i].hi);
	}
	cb_var(b, s->n);
	uint32_t prev = 0;
	for (size_t i = 0; i < s->n; i++) {
		const struct uidx_msg *m = &s->msgs[i];
		cb_raw(b, m->id, UIDX_ID);
		cb_var(b, m->uid - prev); /* ascending: deltas stay small */
		prev = m->uid;
		cb_var(b, m->modseq);
		cb_var(b, m->flags);
		if (v4)
			cb_size(b, m->size);
	}
	if (s->n_marks || v3) {
		cb_var(b, s->n_marks);
		for (size_t i = 0; i < s->n_marks; i++) {
			cb_ts(b, s->marks[i].ts);
			cb_var(b, s->marks[i].uidnext);
		}
	}
	if (v3)
		cb_var(b, s->uv_init);
	if (v4) {
		cb_var(b, s->n_expunged);
		uint64_t prev_at = 0;
		for (size_t i = 0; i < s->n_expunged; i++) {
			const struct uidx_expunged *e = &s->expunged[i];
			cb_raw(b, e->id, UIDX_ID);
			cb_var(b, e->uid);
			cb_var(b, e->flags);
			cb_var(b, e->at - prev_at); /* ascending: small deltas */
			prev_at = e->at;
		}
	}
	if (v5) {
		cb_var(b, s->vanished_floor);
		cb_var(b, s->n_vanished);
		uint64_t prev_modseq = s->vanished_floor;
		for (size_t i = 0; i < s->n_vanished; i++) {
			const struct uidx_vanished *v = &s->vanished[i];
			cb_var(b, v->modseq - prev_modseq);
			prev_modseq = v->modseq;
			cb_var(b, v->lo);
			cb_var(b, v->hi - v->lo);
		}
	}
	return b->oom ? AEROGRAM_EINTERNAL : 0;
}

int codec_state_decode(const uint8_t *p, size_t len, struct uidx_state **out)
{
	struct crd r;
	*out = NULL;
	int version = header_ok(&r, p, len, KIND_STATE);
	if (version == 0)
		return AEROGRAM_EINVAL;
	struct uidx_state *s = uidx_new();
	if (s == NULL)
		return AEROGRAM_EINTERNAL;
	s->uidvalidity = cr_u32(&r);
	s->uidnext = cr_u32(&r);
	s->highestmodseq = cr_var(&r);
	s->recent_upto = cr_u32(&r);
	uint64_t nk = cr_var(&r);
	if (nk > MAIL_MAX_KEYWORDS)
		r.bad = 1;
	cr_keywords(&r, s->keywords, nk, &s->n_keywords);
	uint64_t nr;
	s->recent = cr_array(&r, UIDX_ID, UINT64_MAX, sizeof(*s->recent), &nr);
	if (s->recent != NULL) {
		for (size_t i = 0; !r.bad && i < nr; i++) {
			const uint8_t *o = cr_raw(&r, UIDX_ID);
			if (o)
				memcpy(s->recent[i].owner, o, UIDX_ID);
			s->recent[i].lo = cr_u32(&r);
			s->recent[i].hi = cr_u32(&r);
		}
		if (!r.bad)
			s->n_recent = (size_t)nr;
	}
	uint64_t n;
	s->msgs = cr_array(&r, UIDX_ID + 3, UINT64_MAX, sizeof(*s->msgs), &n);
	if (s->msgs != NULL) {
		s->cap = (size_t)n;
		uint64_t uid = 0;
		for (size_t i = 0; !r.bad && i < n; i++) {
			struct uidx_msg *m = &s->msgs[i];
			const uint8_t *id = cr_raw(&r, UIDX_ID);
			if (id)
				memcpy(m->id, id, UIDX_ID);
			uint64_t d = cr_var(&r);
			uid += d;
			if (d == 0 || uid >= s->uidnext)
				r.bad = 1;
			m->uid = (uint32_t)uid;
			m->modseq = cr_var(&r);
			m->flags = cr_var(&r);
			if (m->flags >> (5 + s->n_keywords))
				r.bad = 1;
			m->size = version >= CODEC_VERSION_4 ? cr_size(&r) : UIDX_SIZE_UNKNOWN;
			if (m->size == UIDX_SIZE_UNKNOWN)
				s->n_unsized++;
			else if (m->size > UINT64_MAX - 1 - s->total_size)
				r.bad = 1; /* no real mailbox adds up to that */
			else
				s->total_size += m->size;
		}
		if (!r.bad)
			s->n = (size_t)n;
	}
	if (version >= CODEC_VERSION_2) {
		uint64_t nm = cr_var(&r);
		if ((nm == 0 && version == CODEC_VERSION_2) || nm > UIDX_MARKS)
			r.bad = 1;
		for (size_t i = 0; !r.bad && i < nm; i++) {
			s->marks[i].ts = cr_ts(&r);
			s->marks[i].uidnext = cr_u32(&r);
			/* ascending timestamps, uidnext never past the state's */
			if (s->marks[i].uidnext > s->uidnext ||
			    (i > 0 && (ts_cmp(s->marks[i - 1].ts, s->marks[i].ts) >= 0 ||
			               s->marks[i - 1].uidnext > s->marks[i].uidnext)))
				r.bad = 1;
		}
		if (!r.bad)
			s->n_marks = (size_t)nm;
	}
	if (version >= CODEC_VERSION_3) {
		s->uv_init = cr_u32(&r);
		if (s->uv_init < (version == CODEC_VERSION_3 ? 2u : 1u) || s->uv_init > s->uidvalidity)
			r.bad = 1;
	}
	if (version >= CODEC_VERSION_4) {
		uint64_t ne;
		/* every entry takes at least 19 bytes */
		s->expunged = cr_array(&r, UIDX_ID + 3, UINT64_MAX, sizeof(*s->expunged), &ne);
		if (s->expunged != NULL)
			s->cap_expunged = (size_t)ne;
		uint64_t at = 0;
		for (size_t i = 0; !r.bad && i < ne; i++) {
			struct uidx_expunged *e = &s->expunged[i];
			const uint8_t *id = cr_raw(&r, UIDX_ID);
			if (id)
				memcpy(e->id, id, UIDX_ID);
			e->uid = cr_u32(&r);
			e->flags = cr_var(&r);
			uint64_t d = cr_var(&r);
			if (d > UINT64_MAX - at)
				r.bad = 1;
			at += d;
			e->at = at;
			if (e->uid == 0 || e->uid >= s->uidnext || e->flags >> (5 + s->n_keywords))
				r.bad = 1;
		}
		if (!r.bad)
			s->n_expunged = (size_t)ne;
	}
	if (version == CODEC_VERSION_5) {
		s->vanished_floor = cr_var(&r);
		uint64_t nv;
		/* every run takes at least 3 bytes */
		s->vanished = cr_array(&r, 3, UIDX_VANISHED_MAX, sizeof(*s->vanished), &nv);
		if (s->vanished != NULL)
			s->cap_vanished = (size_t)nv;
		uint64_t modseq = s->vanished_floor;
		for (size_t i = 0; !r.bad && i < nv; i++) {
			struct uidx_vanished *v = &s->vanished[i];
			uint64_t d = cr_var(&r);
			if (d > UINT64_MAX - modseq)
				r.bad = 1;
			modseq += d;
			v->modseq = modseq;
			v->lo = cr_u32(&r);
			uint32_t run = cr_u32(&r);
			v->hi = v->lo + run;
			/* ascending modseqs above the floor, UIDs below uidnext */
			if ((i == 0 && d == 0) || v->lo == 0 || run >= s->uidnext || v->hi >= s->uidnext ||
			    v->hi < v->lo || modseq > s->highestmodseq)
				r.bad = 1;
		}
		if (!r.bad)
			s->n_vanished = (size_t)nv;
		if (s->vanished_floor > s->highestmodseq)
			r.bad = 1;
	}
	/* A checkpoint of an earlier version knows no expunge by modseq: the
	 * floor is all it holds, so a QRESYNC from before it falls back. */
	if (version < CODEC_VERSION_5)
		s->vanished_floor = s->highestmodseq;
	/* canonical: version 4 only when a size or an expunged message needs
	 * it, version 5 only when there is an expunge by modseq to keep */
	if (version == CODEC_VERSION_4 && !(s->n_unsized < s->n || s->n_expunged > 0))
		r.bad = 1;
	if (version == CODEC_VERSION_5 && !(s->n_vanished > 0 || s->vanished_floor > 0))
		r.bad = 1;
	if (!cr_whole(&r) || s->uidvalidity == 0 || s->uidnext == 0) {
		uidx_free(s);
		return AEROGRAM_EINVAL;
	}
	*out = s;
	return 0;
}

/* ---- summaries ---- */

int codec_summary_encode(const struct summary *s, struct cbuf *b)
{
	cb_header(b, KIND_SUMMARY, CODEC_VERSION);
	cb_var(b, s->internal_date_ms);
	cb_var(b, s->size);
	cb_bytes(b, s->header, s->header_len);
	cb_bytes(b, s->bodystructure, s->bodystructure_len);
	return b->oom ? AEROGRAM_EINTERNAL : 0;
}

int codec_summary_decode(const uint8_t *p, size_t len, struct summary *out)
{
	struct crd r;
	memset(out, 0, sizeof(*out));
	if (!header_ok(&r, p, len, KIND_SUMMARY))
		return AEROGRAM_EINVAL;
	out->internal_date_ms = cr_var(&r);
	out->size = cr_var(&r);
	out->header = cr_bytes(&r, &out->header_len, SIZE_MAX);
	out->bodystructure = cr_bytes(&r, &out->bodystructure_len, SIZE_MAX);
	if (!cr_whole(&r))
		return AEROGRAM_EINVAL;
	return 0;
}

/* ---- the mailbox list ---- */

int codec_mblist_encode(const struct mblist *l, struct cbuf *b)
{
	cb_header(b, KIND_LIST, CODEC_VERSION);
	cb_var(b, l->n);
	for (size_t i = 0; i < l->n; i++) {
		const struct mblist_entry *e = &l->e[i];
		cb_bytes(b, e->name, strlen(e->name));
		cb_var(b, e->id_ts);
		cb_u8(b, (uint8_t)(e->has_id ? 1 : 0));
		if (e->has_id)
			cb_raw(b, e->id, UIDX_ID);
		cb_var(b, e->uidvalidity);
		cb_var(b, e->sub_ts);
		cb_u8(b, (uint8_t)(e->subscribed ? 1 : 0));
		cb_var(b, e->su_ts);
		cb_var(b, e->special_use);
	}
	return b->oom ? AEROGRAM_EINTERNAL : 0;
}

int codec_mblist_decode(const uint8_t *p, size_t len, struct mblist *out)
{
	struct crd r;
	memset(out, 0, sizeof(*out));
	if (!header_ok(&r, p, len, KIND_LIST))
		return AEROGRAM_EINVAL;
	uint64_t n;
	out->e = cr_array(&r, 8, UINT64_MAX, sizeof(*out->e), &n);
	if (out->e != NULL)
		out->cap = (size_t)n;
	for (size_t i = 0; !r.bad && i < n; i++) {
		struct mblist_entry *e = &out->e[i];
		e->name = cr_str(&r, MAX_NAME_LEN);
		if (e->name == NULL)
			break;
		out->n++;
		e->id_ts = cr_var(&r);
		uint8_t has = cr_u8(&r);
		if (has > 1)
			r.bad = 1;
		e->has_id = has;
		if (has) {
			const uint8_t *id = cr_raw(&r, UIDX_ID);
			if (id)
				memcpy(e->id, id, UIDX_ID);
		}
		e->uidvalidity = cr_u32(&r);
		e->sub_ts = cr_var(&r);
		uint8_t sub = cr_u8(&r);
		if (sub > 1)
			r.bad = 1;
		e->subscribed = sub;
		e->su_ts = cr_var(&r);
		e->special_use = cr_u32(&r);
		/* names must be strictly ascending: a canonical form, and merge relies on it */
		if (i > 0 && strcmp(out->e[i - 1].name, e->name) >= 0)
			r.bad = 1;
	}
	if (!cr_whole(&r)) {
		mblist_free(out);
		return AEROGRAM_EINVAL;
	}
	return 0;
}
