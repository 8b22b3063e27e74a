/* mime_serial.c - encoding and checked decoding of a parsed message. */
#include "protocol/mime_serial.h"

#include <string.h>

#define MAGIC "AGMS"
#define MAX_DECODE_DEPTH 256
#define MAX_COUNT 100000

static uint32_t fnv1a(const unsigned char *p, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

static void put_varint(struct agbuf *out, uint64_t v)
{
	do {
		unsigned char b = v & 0x7f;
		v >>= 7;
		if (v)
			b |= 0x80;
		agbuf_putc(out, (char)b);
	} while (v);
}

static void put_str(struct agbuf *out, const char *s)
{
	if (s == NULL) {
		put_varint(out, 0);
		return;
	}
	size_t n = strlen(s);
	put_varint(out, (uint64_t)n + 1);
	agbuf_append(out, s, n);
}

static void put_params(struct agbuf *out, const struct mime_param *p, size_t n)
{
	put_varint(out, n);
	for (size_t i = 0; i < n; i++) {
		put_str(out, p[i].name);
		put_str(out, p[i].value);
	}
}

static void put_part(struct agbuf *out, const struct mime_part *p)
{
	size_t nchildren = 0;
	for (const struct mime_part *c = p->children; c; c = c->next)
		nchildren++;
	put_varint(out, p->flags);
	put_varint(out, p->hdr_offset);
	put_varint(out, p->body_offset - p->hdr_offset);
	put_varint(out, p->end_offset - p->body_offset);
	put_varint(out, p->hdr_vsize);
	put_varint(out, p->body_vsize);
	put_varint(out, p->hdr_lines);
	put_varint(out, p->body_lines);
	put_varint(out, nchildren);
	put_str(out, p->type);
	put_str(out, p->subtype);
	put_params(out, p->params, p->nparams);
	put_str(out, p->encoding);
	put_str(out, p->id);
	put_str(out, p->description);
	put_str(out, p->md5);
	put_str(out, p->location);
	put_str(out, p->disposition);
	put_params(out, p->disp_params, p->ndisp_params);
	put_varint(out, p->nlanguages);
	for (size_t i = 0; i < p->nlanguages; i++)
		put_str(out, p->languages[i]);
	put_varint(out, p->envelope != NULL);
	if (p->envelope)
		for (int f = 0; f < MIME_ENV_COUNT; f++)
			put_str(out, p->envelope->raw[f]);
	for (const struct mime_part *c = p->children; c; c = c->next)
		put_part(out, c);
}

void mime_serial_encode(const struct mime_message *msg, struct agbuf *out)
{
	size_t start = out->len;
	agbuf_append(out, MAGIC, 4);
	agbuf_putc(out, MIME_SERIAL_VERSION);
	put_varint(out, msg->size);
	put_varint(out, msg->vsize);
	put_part(out, msg->root);
	uint32_t h = fnv1a((const unsigned char *)out->data + start, out->len - start);
	for (int i = 0; i < 4; i++)
		agbuf_putc(out, (char)(h >> (8 * i)));
}

struct reader {
	const unsigned char *p, *end;
	struct mime_arena *arena;
	uint64_t msg_size;
	int bad;
};

static uint64_t get_varint(struct reader *r)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (r->p >= r->end) {
			r->bad = 1;
			return 0;
		}
		unsigned char b = *r->p++;
		if (shift == 63 && (b & 0x7e)) {
			r->bad = 1;
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	r->bad = 1;
	return 0;
}

static char *get_str(struct reader *r)
{
	uint64_t n = get_varint(r);
	if (r->bad || n == 0)
		return NULL;
	n--;
	if (n > (uint64_t)(r->end - r->p) || memchr(r->p, '\0', (size_t)n) != NULL) {
		r->bad = 1;
		return NULL;
	}
	char *s = mime_arena_strndup(r->arena, (const char *)r->p, (size_t)n);
	r->p += n;
	return s;
}

/* A count of items that each take at least `min_bytes`: bounded by what is left. */
static size_t get_count(struct reader *r, size_t min_bytes)
{
	uint64_t n = get_varint(r);
	if (r->bad || n > MAX_COUNT || n * min_bytes > (uint64_t)(r->end - r->p)) {
		r->bad = 1;
		return 0;
	}
	return (size_t)n;
}

static struct mime_param *get_params(struct reader *r, size_t *count)
{
	size_t n = get_count(r, 2);
	*count = 0;
	if (r->bad || n == 0)
		return NULL;
	struct mime_param *p = mime_arena_alloc(r->arena, n * sizeof(*p));
	for (size_t i = 0; i < n && !r->bad; i++) {
		p[i].name = get_str(r);
		p[i].value = get_str(r);
		if (p[i].name == NULL || p[i].value == NULL)
			r->bad = 1;
	}
	*count = n;
	return p;
}

static struct mime_part *get_part(struct reader *r, struct mime_part *parent, unsigned depth)
{
	if (depth > MAX_DECODE_DEPTH) {
		r->bad = 1;
		return NULL;
	}
	struct mime_part *p = mime_arena_alloc(r->arena, sizeof(*p));
	p->parent = parent;
	uint64_t flags = get_varint(r);
	uint64_t hoff = get_varint(r), hlen = get_varint(r), blen = get_varint(r);
	p->hdr_vsize = get_varint(r);
	p->body_vsize = get_varint(r);
	uint64_t hl = get_varint(r), bl = get_varint(r);
	size_t nchildren = get_count(r, 9);
	if (r->bad)
		return NULL;
	/* Offsets must nest inside the parent's body and the message. */
	uint64_t lo = parent ? parent->body_offset : 0;
	uint64_t hi = parent ? parent->end_offset : r->msg_size;
	if (flags > 0x1f || hoff < lo || hoff > hi || hlen > hi - hoff || blen > hi - hoff - hlen ||
	    hl > hlen || bl > blen || p->hdr_vsize < hlen || p->hdr_vsize - hlen > hl ||
	    p->body_vsize < blen || p->body_vsize - blen > bl || hl > UINT32_MAX || bl > UINT32_MAX) {
		r->bad = 1;
		return NULL;
	}
	p->flags = (unsigned)flags;
	p->hdr_offset = hoff;
	p->body_offset = hoff + hlen;
	p->end_offset = hoff + hlen + blen;
	p->hdr_lines = (uint32_t)hl;
	p->body_lines = (uint32_t)bl;
	p->type = get_str(r);
	p->subtype = get_str(r);
	p->params = get_params(r, &p->nparams);
	p->encoding = get_str(r);
	p->id = get_str(r);
	p->description = get_str(r);
	p->md5 = get_str(r);
	p->location = get_str(r);
	p->disposition = get_str(r);
	p->disp_params = get_params(r, &p->ndisp_params);
	size_t nlang = get_count(r, 1);
	if (nlang && !r->bad) {
		p->languages = mime_arena_alloc(r->arena, nlang * sizeof(char *));
		for (size_t i = 0; i < nlang && !r->bad; i++)
			if ((p->languages[i] = get_str(r)) == NULL)
				r->bad = 1;
		p->nlanguages = nlang;
	}
	uint64_t has_env = get_varint(r);
	if (has_env > 1)
		r->bad = 1;
	if (has_env && !r->bad) {
		p->envelope = mime_arena_alloc(r->arena, sizeof(*p->envelope));
		for (int f = 0; f < MIME_ENV_COUNT; f++)
			p->envelope->raw[f] = get_str(r);
		mime_envelope_parse_addresses(r->arena, p->envelope);
	}
	if ((p->flags & MIME_PART_RFC822) && nchildren != 1)
		r->bad = 1;
	if (!(p->flags & (MIME_PART_RFC822 | MIME_PART_MULTIPART)) && nchildren != 0)
		r->bad = 1;
	struct mime_part **tail = &p->children;
	uint64_t prev_end = p->body_offset;
	for (size_t i = 0; i < nchildren && !r->bad; i++) {
		struct mime_part *c = get_part(r, p, depth + 1);
		if (c == NULL || c->hdr_offset < prev_end) {
			r->bad = 1;
			break;
		}
		prev_end = c->end_offset;
		*tail = c;
		tail = &c->next;
	}
	return r->bad ? NULL : p;
}

struct mime_message *mime_serial_decode(const void *data, size_t len)
{
	const unsigned char *d = data;
	if (len < 9 || memcmp(d, MAGIC, 4) != 0 || d[4] != MIME_SERIAL_VERSION)
		return NULL;
	uint32_t want = (uint32_t)d[len - 4] | (uint32_t)d[len - 3] << 8 | (uint32_t)d[len - 2] << 16 |
			(uint32_t)d[len - 1] << 24;
	if (fnv1a(d, len - 4) != want)
		return NULL;
	struct mime_arena *arena = mime_arena_new();
	if (arena == NULL)
		return NULL;
	struct reader r = { .p = d + 5, .end = d + len - 4, .arena = arena };
	struct mime_message *msg = mime_arena_alloc(arena, sizeof(*msg));
	msg->arena = arena;
	msg->size = get_varint(&r);
	msg->vsize = get_varint(&r);
	r.msg_size = msg->size;
	if (!r.bad)
		msg->root = get_part(&r, NULL, 0);
	if (r.bad || msg->root == NULL || r.p != r.end ||
	    msg->vsize != msg->root->hdr_vsize + msg->root->body_vsize || msg->root->hdr_offset != 0) {
		mime_arena_free(arena);
		return NULL;
	}
	return msg;
}
