/* fuzz_sort.c - libFuzzer target for protocol/sort_thread.c: every line of
 * the input is a message (a Message-ID, references and a subject drawn
 * from its bytes, from small alphabets so that ids collide, loops and
 * duplicates happen); both threading algorithms must name every message
 * exactly once, in a THREAD response that follows RFC 5256's grammar. The
 * lines also go through the base subject, date, msg-id and address code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"
#include "protocol/sort_thread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 64
#define MAX_REFS 4

struct grammar {
	const char *p, *end;
	unsigned char *seen;
	size_t n;
};

static uint32_t number(struct grammar *g)
{
	uint32_t v = 0;
	if (g->p >= g->end || *g->p < '1' || *g->p > '9')
		abort();
	while (g->p < g->end && *g->p >= '0' && *g->p <= '9')
		v = v * 10 + (uint32_t)(*g->p++ - '0');
	if (v == 0 || v > g->n || g->seen[v - 1])
		abort();
	g->seen[v - 1] = 1;
	return v;
}

static void thread_list(struct grammar *g);

/* thread-nested = 2*thread-list */
static void nested(struct grammar *g)
{
	int lists = 0;
	while (g->p < g->end && *g->p == '(') {
		thread_list(g);
		lists++;
	}
	if (lists < 2)
		abort();
}

/* thread-list = "(" (thread-members / thread-nested) ")";
 * thread-members = nz-number *(SP nz-number) [SP thread-nested] */
static void thread_list(struct grammar *g)
{
	if (g->p >= g->end || *g->p++ != '(')
		abort();
	if (g->p < g->end && *g->p == '(') {
		nested(g);
	} else {
		number(g);
		while (g->p < g->end && *g->p == ' ') {
			g->p++;
			if (g->p < g->end && *g->p == '(') {
				nested(g);
				break;
			}
			number(g);
		}
	}
	if (g->p >= g->end || *g->p++ != ')')
		abort();
}

static void check_response(const struct agbuf *out, size_t n)
{
	unsigned char seen[MAX_MSGS] = { 0 };
	struct grammar g = { out->data ? out->data : "", (out->data ? out->data : "") + out->len, seen, n };
	while (g.p < g.end)
		thread_list(&g);
	for (size_t i = 0; i < n; i++)
		if (!seen[i])
			abort();
}

static char *id_of(uint8_t b)
{
	static const char *const ids[] = { "a@x", "b@x", "c@x", "d@x", "e@x", "f@x", "g@x", "h@x" };
	return strdup(ids[b % 8]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct thread_msg msgs[MAX_MSGS];
	char *subjects[MAX_MSGS], *ids[MAX_MSGS], *refs[MAX_MSGS][MAX_REFS];
	size_t n = 0, start = 0;
	memset(refs, 0, sizeof(refs));
	while (start <= size && n < MAX_MSGS) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size;
		const char *line = (const char *)data + start;
		size_t len = end - start;
		struct agbuf subj = AGBUF_INIT;
		int reply = sort_base_subject(&subj, line, len);
		subjects[n] = subj.data ? subj.data : strdup("");
		/* byte 0: date, byte 1: id (none when odd high bit), bytes 2-5: refs */
		ids[n] = len > 1 && !(data[start + 1] & 0x80) ? id_of(data[start + 1]) : NULL;
		size_t nr = 0;
		for (size_t k = 2; k < len && k < 2 + MAX_REFS; k++)
			refs[n][nr++] = id_of(data[start + k]);
		msgs[n] = (struct thread_msg){ (uint32_t)(n + 1), len ? data[start] % 4 : 0, subjects[n], reply, ids[n],
					      (const char *const *)refs[n], nr };
		n++;
		/* the other parsers, for memory errors only */
		int64_t when;
		(void)sort_parse_date(line, len, &when);
		struct agbuf id = AGBUF_INIT;
		size_t pos = 0;
		while (sort_next_msgid(line, len, &pos, &id))
			;
		agbuf_free(&id);
		struct mime_arena *arena = mime_arena_new();
		if (arena == NULL)
			abort();
		struct mime_address *list = mime_address_parse(arena, line, len);
		struct agbuf key = AGBUF_INIT;
		sort_address_key(&key, list);
		sort_display_key(&key, list);
		agbuf_free(&key);
		mime_arena_free(arena);
		if (nl == NULL)
			break;
		start = end + 1;
	}
	struct agbuf out = AGBUF_INIT;
	if (thread_references(&out, msgs, n) != 0)
		abort();
	check_response(&out, n);
	agbuf_free(&out);
	if (thread_orderedsubject(&out, msgs, n) != 0)
		abort();
	check_response(&out, n);
	agbuf_free(&out);
	for (size_t i = 0; i < n; i++) {
		free(subjects[i]);
		free(ids[i]);
		for (size_t k = 0; k < MAX_REFS; k++)
			free(refs[i][k]);
	}
	return 0;
}
