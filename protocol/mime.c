/* mime.c - the MIME part tree of a message (see mime.h for the rules). */
#include "protocol/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/mime_header.h"
#include "protocol/mime_rfc822.h"

/* Limits that keep hostile input cheap: deeper parts are not descended
 * into, further parts are not split off (their bytes stay in the body). */
#define MIME_MAX_DEPTH 100
#define MIME_MAX_PARTS 10000

/* ---- arena ------------------------------------------------------------- */

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

struct mime_arena {
	struct arena_block *head;
};

struct mime_arena *mime_arena_new(void)
{
	return calloc(1, sizeof(struct mime_arena));
}

void *mime_arena_alloc(struct mime_arena *arena, size_t size)
{
	size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	struct arena_block *b = arena->head;
	if (b == NULL || b->size - b->used < size) {
		size_t bsize = size > 8192 ? size : 8192;
		b = malloc(sizeof(*b) + bsize);
		if (b == NULL)
			abort(); /* out of memory */
		b->size = bsize;
		b->used = 0;
		b->next = arena->head;
		arena->head = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += size;
	memset(p, 0, size);
	return p;
}

char *mime_arena_strndup(struct mime_arena *arena, const char *str, size_t len)
{
	char *s = mime_arena_alloc(arena, len + 1);
	if (len)
		memcpy(s, str, len);
	s[len] = '\0';
	return s;
}

void mime_arena_free(struct mime_arena *arena)
{
	if (arena == NULL)
		return;
	struct arena_block *b = arena->head;
	while (b) {
		struct arena_block *n = b->next;
		free(b);
		b = n;
	}
	free(arena);
}

void mime_free(struct mime_message *msg)
{
	if (msg)
		mime_arena_free(msg->arena);
}

/* The LFs of data[start, end) and how many of them have no CR before them
 * (the byte before `start` counts), in one pass of memchr: APPEND parses
 * every message, and a loop over each byte was most of the parse. */
static void count_lfs(const char *data, uint64_t start, uint64_t end, uint64_t *lfs, uint64_t *bare)
{
	uint64_t n = 0, b = 0;
	const char *p = data + start, *e = data + end;
	while (p < e && (p = memchr(p, '\n', (size_t)(e - p))) != NULL) {
		n++;
		if (p == data || p[-1] != '\r')
			b++;
		p++;
	}
	*lfs = n;
	*bare = b;
}

uint64_t mime_vsize(const char *data, uint64_t start, uint64_t end)
{
	uint64_t lfs, bare;
	count_lfs(data, start, end, &lfs, &bare);
	return end - start + bare;
}

size_t mime_part_count(const struct mime_part *part)
{
	size_t n = 1;
	for (const struct mime_part *c = part->children; c; c = c->next)
		n += mime_part_count(c);
	return n;
}

/* Copies `src` and its subtree under `parent` into `arena`. */
static struct mime_part *copy_skeleton(struct mime_arena *arena, const struct mime_part *src,
				       struct mime_part *parent)
{
	struct mime_part *p = mime_arena_alloc(arena, sizeof(*p));
	p->parent = parent;
	p->flags = src->flags;
	p->hdr_offset = src->hdr_offset;
	p->body_offset = src->body_offset;
	p->end_offset = src->end_offset;
	p->hdr_vsize = src->hdr_vsize;
	p->body_vsize = src->body_vsize;
	p->hdr_lines = src->hdr_lines;
	p->body_lines = src->body_lines;
	struct mime_part **tail = &p->children;
	for (const struct mime_part *c = src->children; c; c = c->next) {
		*tail = copy_skeleton(arena, c, p);
		tail = &(*tail)->next;
	}
	return p;
}

/* Size of an arena allocation of `size` bytes (see mime_arena_alloc). */
static size_t arena_rounded(size_t size)
{
	return (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
}

struct mime_message *mime_message_skeleton(const struct mime_message *msg, size_t *bytes)
{
	size_t nparts = mime_part_count(msg->root);
	size_t need = arena_rounded(sizeof(struct mime_message)) + nparts * arena_rounded(sizeof(struct mime_part));
	struct mime_arena *arena = mime_arena_new();
	struct arena_block *b = arena ? malloc(sizeof(*b) + need) : NULL;
	if (b == NULL) {
		free(arena);
		return NULL;
	}
	/* One block that fits the copy exactly: mime_arena_alloc never adds
	 * another, and nothing of the default 8 KiB block is wasted. */
	b->next = NULL;
	b->used = 0;
	b->size = need;
	arena->head = b;
	struct mime_message *copy = mime_arena_alloc(arena, sizeof(*copy));
	copy->arena = arena;
	copy->size = msg->size;
	copy->vsize = msg->vsize;
	copy->root = copy_skeleton(arena, msg->root, NULL);
	if (bytes != NULL)
		*bytes = sizeof(*arena) + sizeof(*b) + need;
	return copy;
}

/* ---- structure --------------------------------------------------------- */

/* Private flag: the header was cut by a boundary line, the body is empty. */
#define PART_CUT (1u << 16)

struct boundary {
	struct boundary *next;
	struct mime_part *part;
	const char *str;
	size_t len;
	int close_found; /* "--boundary--" */
};

struct parser {
	const char *data;
	size_t len, pos;
	struct mime_arena *arena;
	struct mime_part *part;      /* the part being read */
	struct boundary *boundaries; /* newest first */
	size_t nparts;
};

static unsigned depth_of(const struct mime_part *p)
{
	unsigned d = 0;
	while ((p = p->parent) != NULL)
		d++;
	return d;
}

static struct mime_part *append_child(struct parser *ps, struct mime_part *parent, uint64_t offset)
{
	struct mime_part *c = mime_arena_alloc(ps->arena, sizeof(*c));
	c->parent = parent;
	c->hdr_offset = offset;
	struct mime_part **tail = &parent->children;
	while (*tail)
		tail = &(*tail)->next;
	*tail = c;
	ps->nparts++;
	return c;
}

/* Dovecot reads at most this much of a boundary parameter (RFC 2046 allows
 * 70 characters; longer ones are cut), and looks at most this far into a
 * last line without a line end. */
#define BOUNDARY_MAX 80
#define BOUNDARY_LINE_MAX (BOUNDARY_MAX + 4)

/* The boundary that the line at `at` starts, or NULL. Dovecot's rule
 * (message-parser.c, boundary_find): of the open boundaries that begin the
 * line after "--", the longest wins, the innermost among equals; but one
 * that is the whole line, or the whole line but a final "--", ends the
 * search at once, innermost first. So with an inner "xyz" inside an outer
 * "xyz--", the line "--xyz--" closes the inner multipart. */
static struct boundary *boundary_line(struct parser *ps, size_t at)
{
	if (ps->boundaries == NULL || ps->len - at < 2 || ps->data[at] != '-' || ps->data[at + 1] != '-')
		return NULL;
	const char *d = ps->data + at + 2;
	size_t size = ps->len - at - 2;
	/* the line without its [CR]LF */
	const char *lf = memchr(d, '\n', size);
	size_t line = size;
	int dashes = 0;
	if (lf != NULL) {
		line = (size_t)(lf - d);
		if (line > 0 && d[line - 1] == '\r')
			line--;
		dashes = line > 2 && d[line - 1] == '-' && d[line - 2] == '-';
	} else if (line > BOUNDARY_LINE_MAX) {
		line = BOUNDARY_LINE_MAX;
	}
	struct boundary *best = NULL;
	for (struct boundary *b = ps->boundaries; b; b = b->next) {
		if (b->len <= line && memcmp(b->str, d, b->len) == 0 && (best == NULL || best->len < b->len)) {
			best = b;
			if (b->len == line || (dashes && b->len == line - 2))
				break;
		}
	}
	if (best)
		best->close_found = size >= best->len + 2 && d[best->len] == '-' && d[best->len + 1] == '-';
	return best;
}

/* Reads the first Content-Type of a header; sets the type flags and
 * returns the boundary parameter (arena copy) or NULL. */
static const char *content_type_flags(struct parser *ps, struct mime_part *part,
				      const char *value, size_t len)
{
	struct rfc822_cursor c;
	struct agbuf ct = AGBUF_INIT;
	const char *boundary = NULL;
	agbuf_reserve(&ct, 32);
	rfc822_init(&c, value, len, NULL);
	rfc822_skip_lwsp(&c);
	int ret = rfc822_parse_content_type(&c, &ct);
	if (strcasecmp(ct.data, "message/rfc822") == 0)
		part->flags |= MIME_PART_RFC822;
	else if (strncasecmp(ct.data, "text", 4) == 0 && (ct.len == 4 || ct.data[4] == '/'))
		part->flags |= MIME_PART_TEXT;
	else if (strncasecmp(ct.data, "multipart/", 10) == 0) {
		part->flags |= MIME_PART_MULTIPART;
		if (strcasecmp(ct.data + 10, "digest") == 0)
			part->flags |= MIME_PART_DIGEST;
	}
	if (ret >= 0 && (part->flags & MIME_PART_MULTIPART)) {
		struct mime_param *params;
		size_t n;
		rfc2231_parse(&c, ps->arena, &params, &n);
		for (size_t i = 0; i < n; i++) {
			if (strcasecmp(params[i].name, "boundary") == 0) {
				boundary = params[i].value;
				break;
			}
		}
	}
	agbuf_free(&ct);
	return boundary;
}

/* Where the field starting at `pos` ends (after its continuation lines). */
static size_t field_end(const char *d, size_t pos, size_t len)
{
	for (;;) {
		const char *lf = memchr(d + pos, '\n', len - pos);
		if (lf == NULL)
			return len;
		pos = (size_t)(lf - d) + 1;
		if (pos >= len || (d[pos] != ' ' && d[pos] != '\t'))
			return pos;
	}
}

enum next_step { STEP_BODY_TO_BOUNDARY, STEP_BODY_TO_EOF, STEP_RFC822_CHILD };

/* Reads the header of ps->part starting at ps->pos. Returns what the body is. */
static enum next_step parse_header(struct parser *ps)
{
	struct mime_part *part = ps->part;
	const char *d = ps->data;
	size_t prev_nl = 0;
	int seen_ct = 0, multipart = 0;
	const char *last_boundary = NULL;
	int can_nest = depth_of(part) < MIME_MAX_DEPTH && ps->nparts < MIME_MAX_PARTS;
	/* A message/rfc822 child of a cut header starts before the scan
	 * position: only what is read here is its header. */
	size_t skew = ps->pos - (size_t)part->hdr_offset;

	for (;;) {
		size_t pos = ps->pos;
		if (pos >= ps->len) {
			part->body_offset = ps->len - skew;
			break;
		}
		int eoh = d[pos] == '\n' || (d[pos] == '\r' && pos + 1 < ps->len && d[pos + 1] == '\n');
		if (eoh && last_boundary != NULL && (part->flags & MIME_PART_IS_MIME) && !multipart) {
			/* The boundary is known before the body starts, so that a
			 * "--boundary" line there is ours even when an outer
			 * boundary is a prefix of it. */
			struct boundary *b = mime_arena_alloc(ps->arena, sizeof(*b));
			b->part = part;
			b->str = last_boundary;
			b->len = strnlen(last_boundary, BOUNDARY_MAX);
			b->next = ps->boundaries;
			ps->boundaries = b;
			multipart = 1;
		}
		struct boundary *b = boundary_line(ps, pos);
		if (b != NULL && b->part != part) {
			/* An enclosing boundary ends this header; the line end
			 * before it belongs to the boundary. */
			part->body_offset = pos - prev_nl - skew;
			part->flags |= PART_CUT;
			break;
		}
		if (eoh) {
			/* When an enclosing boundary follows at once, the empty
			 * line is that boundary's line end, not header. */
			size_t nl = d[pos] == '\n' ? 1 : 2;
			struct boundary *nb = boundary_line(ps, pos + nl);
			if (nb != NULL && nb->part != part) {
				part->body_offset = pos - skew;
				part->flags |= PART_CUT;
				ps->pos = pos;
				break;
			}
			ps->pos = pos + nl;
			part->body_offset = ps->pos - skew;
			break;
		}
		/* Continuation lines were read with their field; only a field's
		 * first line is looked at (so a long folded field stays linear). */
		size_t end = ps->len;
		if (d[pos] != ' ' && d[pos] != '\t' &&
		    (d[pos] == 'C' || d[pos] == 'c' || d[pos] == 'M' || d[pos] == 'm')) {
			end = field_end(d, pos, ps->len);
			struct mime_header_iter it;
			struct mime_header_field f;
			mime_header_iter_init(&it, d, pos, end);
			if (mime_header_next(&it, &f)) {
				if (f.name_len == 12 && strncasecmp(f.name, "Mime-Version", 12) == 0) {
					part->flags |= MIME_PART_IS_MIME;
				} else if (f.name_len == 12 && strncasecmp(f.name, "Content-Type", 12) == 0) {
					part->flags |= MIME_PART_IS_MIME;
					if (!seen_ct) {
						seen_ct = 1;
						last_boundary = content_type_flags(ps, part, f.value, f.value_len);
						if (!can_nest) {
							part->flags &= ~(unsigned)(MIME_PART_MULTIPART | MIME_PART_RFC822 |
										   MIME_PART_DIGEST);
							last_boundary = NULL;
						}
					}
				}
				free(f.value);
			}
		}
		/* The boundary check above is done line by line, continuation
		 * lines included. */
		const char *lf = memchr(d + pos, '\n', ps->len - pos);
		size_t line_end = lf ? (size_t)(lf - d) + 1 : ps->len;
		prev_nl = lf ? ((lf > d + pos && lf[-1] == '\r') ? 2 : 1) : 0;
		ps->pos = line_end;
	}

	if (!(part->flags & MIME_PART_IS_MIME))
		part->flags = 0 | (part->flags & PART_CUT);
	if (!seen_ct || !(part->flags & MIME_PART_IS_MIME)) {
		if (part->parent && (part->parent->flags & MIME_PART_DIGEST) && can_nest)
			part->flags |= MIME_PART_RFC822;
		else
			part->flags |= MIME_PART_TEXT;
	}
	if (multipart)
		return STEP_BODY_TO_BOUNDARY;
	if (part->flags & MIME_PART_RFC822)
		return STEP_RFC822_CHILD;
	return ps->boundaries ? STEP_BODY_TO_BOUNDARY : STEP_BODY_TO_EOF;
}

/* A boundary line was found at `bstart` (its [CR]LF included unless it is
 * the first line of the scanned body): close the parts it ends, skip the
 * line, and say whether a new part follows (1) or not (0). */
static int finish_part(struct parser *ps, struct boundary *b, size_t bstart, int first_line)
{
	for (struct mime_part *p = ps->part; p != b->part; p = p->parent)
		p->end_offset = (p->flags & PART_CUT) ? p->body_offset : bstart;
	ps->part = b->part;
	ps->boundaries = b->close_found ? b->next : b;
	size_t line = first_line ? 0 : (ps->data[bstart] == '\r' ? 2 : 1);
	line += 2 + b->len + (b->close_found ? 2 : 0);
	size_t pos = bstart + line;
	const char *lf = memchr(ps->data + pos, '\n', ps->len - pos);
	ps->pos = lf ? (size_t)(lf - ps->data) + 1 : ps->len;
	if (lf == NULL)
		return -1; /* end of data */
	return ps->boundaries != NULL && ps->boundaries->part == ps->part;
}

/* Scans a body from ps->pos for the next boundary line. Returns 1 when a new
 * MIME part starts at ps->pos, 0 to keep scanning (epilogue), -1 at EOF. */
static int body_to_boundary(struct parser *ps)
{
	const char *d = ps->data;
	size_t seg = ps->pos;
	struct boundary *b = boundary_line(ps, seg);
	if (b != NULL)
		return finish_part(ps, b, seg, 1);
	size_t cur = seg;
	for (;;) {
		const char *lf = memchr(d + cur, '\n', ps->len - cur);
		if (lf == NULL) {
			ps->pos = ps->len;
			return -1;
		}
		size_t i = (size_t)(lf - d);
		cur = i + 1;
		b = boundary_line(ps, cur);
		if (b != NULL) {
			size_t bstart = (i > seg && d[i - 1] == '\r') ? i - 1 : i;
			return finish_part(ps, b, bstart, 0);
		}
	}
}

static void parse_structure(struct parser *ps)
{
	enum next_step step = parse_header(ps);
	for (;;) {
		if (step == STEP_RFC822_CHILD) {
			ps->part = append_child(ps, ps->part, ps->part->body_offset);
			step = parse_header(ps);
			continue;
		}
		if (step == STEP_BODY_TO_EOF || ps->boundaries == NULL) {
			ps->pos = ps->len;
			break;
		}
		int r = body_to_boundary(ps);
		if (r < 0)
			break;
		if (r == 1 && ps->nparts < MIME_MAX_PARTS) {
			ps->part = append_child(ps, ps->part, ps->pos);
			ps->part->flags |= MIME_PART_IS_MIME;
			step = parse_header(ps);
		} else {
			step = STEP_BODY_TO_BOUNDARY; /* epilogue */
		}
	}
	/* End of data: every part still open ends here. */
	for (struct mime_part *p = ps->part; p; p = p->parent)
		p->end_offset = (p->flags & PART_CUT) ? p->body_offset : ps->len;
}

/* Fills sizes, Content-* data and envelopes from the final ranges. */
static void finish_tree(struct parser *ps, struct mime_part *part)
{
	const char *d = ps->data;
	part->flags &= ~PART_CUT;
	if (part->end_offset < part->body_offset)
		part->end_offset = part->body_offset;
	uint64_t lfs, bare;
	count_lfs(d, part->hdr_offset, part->body_offset, &lfs, &bare);
	part->hdr_vsize = part->body_offset - part->hdr_offset + bare;
	part->hdr_lines = (uint32_t)lfs;
	count_lfs(d, part->body_offset, part->end_offset, &lfs, &bare);
	part->body_vsize = part->end_offset - part->body_offset + bare;
	part->body_lines = (uint32_t)lfs;

	int want_env = part->parent == NULL || (part->parent->flags & MIME_PART_RFC822);
	struct mime_header_iter it;
	struct mime_header_field f;
	mime_header_iter_init(&it, d, (size_t)part->hdr_offset, (size_t)part->body_offset);
	while (mime_header_next(&it, &f)) {
		if (part->flags & MIME_PART_IS_MIME)
			mime_content_add_header(ps->arena, part, f.name, f.name_len, f.value, f.value_len);
		if (want_env) {
			if (part->envelope == NULL)
				part->envelope = mime_arena_alloc(ps->arena, sizeof(*part->envelope));
			mime_envelope_add_header(ps->arena, part->envelope, f.name, f.name_len,
						 f.value, f.value_len);
		}
		free(f.value);
	}
	for (struct mime_part *c = part->children; c; c = c->next)
		finish_tree(ps, c);
}

struct mime_message *mime_parse(const char *data, size_t len)
{
	if (data == NULL) {
		data = "";
		len = 0;
	}
	struct mime_arena *arena = mime_arena_new();
	if (arena == NULL)
		return NULL;
	struct mime_message *msg = mime_arena_alloc(arena, sizeof(*msg));
	msg->arena = arena;
	struct parser ps = { .data = data, .len = len, .arena = arena };
	msg->root = mime_arena_alloc(arena, sizeof(*msg->root));
	ps.part = msg->root;
	ps.nparts = 1;
	parse_structure(&ps);
	finish_tree(&ps, msg->root);
	msg->size = len;
	msg->vsize = msg->root->hdr_vsize + msg->root->body_vsize;
	return msg;
}

/* ---- line ends at save ------------------------------------------------- */

/* The length of the CR run at data[i] (data[i] is a CR), and whether one
 * of its CRs goes: before a LF when there are two or more, or at the end. */
static size_t cr_run(const char *data, size_t len, size_t i, int *drop)
{
	size_t j = i;
	while (j < len && data[j] == '\r')
		j++;
	size_t run = j - i;
	*drop = j == len || (data[j] == '\n' && run >= 2);
	return run;
}

int mime_save_line_ends_changes(const char *data, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *cr = memchr(data + i, '\r', len - i);
		if (cr == NULL)
			return 0;
		int drop;
		i = (size_t)(cr - data);
		i += cr_run(data, len, i, &drop);
		if (drop)
			return 1;
	}
	return 0;
}

size_t mime_save_line_ends(char *out, const char *in, size_t len)
{
	size_t i = 0, o = 0;
	while (i < len) {
		const char *cr = memchr(in + i, '\r', len - i);
		size_t plain = cr ? (size_t)(cr - in) - i : len - i;
		memmove(out + o, in + i, plain);
		o += plain;
		i += plain;
		if (cr == NULL)
			break;
		int drop;
		size_t run = cr_run(in, len, i, &drop);
		size_t keep = drop ? run - 1 : run;
		memset(out + o, '\r', keep);
		o += keep;
		i += run;
	}
	return o;
}
