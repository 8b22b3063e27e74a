/* sort_thread.c - base subjects, sort keys and the THREAD algorithms of
 * RFC 5256 (see sort_thread.h).
 *
 * The REFERENCES algorithm keeps its tree in one array of containers
 * linked by index, and walks it with explicit stacks, never by recursion:
 * a mailbox may hold a reply chain as long as the mailbox itself. */
#include "protocol/sort_thread.h"
#include "protocol/imap_date.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/hash.h"
#include "protocol/search_match.h"

/* ---- base subject ------------------------------------------------------ */

static int is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP at s[i]: its end, or 0 when none. */
static size_t blob_at(const char *s, size_t i, size_t n)
{
	if (i >= n || s[i] != '[')
		return 0;
	for (size_t j = i + 1; j < n; j++) {
		if (s[j] == '[')
			return 0;
		if (s[j] == ']') {
			j++;
			while (j < n && is_wsp(s[j]))
				j++;
			return j;
		}
	}
	return 0;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" at s[i]: its
 * end, or 0. */
static size_t refwd_at(const char *s, size_t i, size_t n)
{
	static const char *const words[] = { "re", "fwd", "fw" };
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);
		if (n - i < wl || strncasecmp(s + i, words[w], wl) != 0)
			continue;
		size_t j = i + wl;
		while (j < n && is_wsp(s[j]))
			j++;
		size_t b = blob_at(s, j, n);
		if (b)
			j = b;
		if (j < n && s[j] == ':')
			return j + 1;
	}
	return 0;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP at the start: its end, or 0;
 * *refwd set when it was a subj-refwd. */
static size_t leader_len(const char *s, size_t n, int *refwd)
{
	if (n > 0 && is_wsp(s[0]))
		return 1;
	size_t i = 0, b;
	while ((b = blob_at(s, i, n)) != 0)
		i = b;
	size_t r = refwd_at(s, i, n);
	if (r)
		*refwd = 1;
	return r;
}

int sort_base_subject(struct agbuf *out, const char *value, size_t len)
{
	struct agbuf dec = AGBUF_INIT;
	search_decode_header_value(&dec, value, len);
	/* (1) tabs and line ends become spaces, runs of them one space */
	char *s = dec.data ? dec.data : (char *)"";
	size_t n = 0;
	for (size_t i = 0; i < dec.len; i++) {
		char c = s[i];
		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && n > 0 && s[n - 1] == ' ')
			continue;
		s[n++] = c;
	}
	size_t start = 0, end = n;
	int reply = 0;
	for (;;) {
		/* (2) trailers: "(fwd)" and blanks */
		for (;;) {
			if (end > start && is_wsp(s[end - 1])) {
				end--;
			} else if (end - start >= 5 && strncasecmp(s + end - 5, "(fwd)", 5) == 0) {
				end -= 5;
				reply = 1;
			} else {
				break;
			}
		}
		/* (3), (4), (5): leaders, and blobs before a non-empty rest */
		for (int changed = 1; changed;) {
			changed = 0;
			size_t l;
			while ((l = leader_len(s + start, end - start, &reply)) != 0) {
				start += l;
				changed = 1;
			}
			size_t b = blob_at(s, start, end);
			if (b) {
				size_t rest = b;
				while (rest < end && is_wsp(s[rest]))
					rest++;
				if (rest < end) {
					start = b;
					changed = 1;
				}
			}
		}
		/* (6) "[fwd: ... ]" around the whole */
		if (end - start >= 6 && strncasecmp(s + start, "[fwd:", 5) == 0 && s[end - 1] == ']') {
			start += 5;
			end--;
			reply = 1;
			continue;
		}
		break;
	}
	sort_casemap(out, s + start, end - start);
	agbuf_free(&dec);
	return reply;
}

void sort_casemap(struct agbuf *out, const char *text, size_t len)
{
	agbuf_reserve(out, len);
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		out->data[out->len++] = (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
	}
	out->data[out->len] = '\0';
}

/* ---- dates ------------------------------------------------------------- */

/* Skips blanks, line ends and (comments). */
static size_t skip_cfws(const char *s, size_t i, size_t n)
{
	int depth = 0;
	while (i < n) {
		char c = s[i];
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n')
			break;
		i++;
	}
	return i;
}

/* Up to `max` digits at s[*i]: their value, or -1 when there is none. */
static int64_t digits(const char *s, size_t *i, size_t n, int max, int *count)
{
	int64_t v = 0;
	int k = 0;
	while (*i < n && k < max && isdigit((unsigned char)s[*i])) {
		v = v * 10 + (s[*i] - '0');
		(*i)++;
		k++;
	}
	if (count)
		*count = k;
	return k ? v : -1;
}

/* Minutes east of UTC of a zone name of RFC 5322 4.3; military and
 * unknown zones are +0000 there. */
static int zone_name(const char *s, size_t len)
{
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
		{ "UT", 0 }, { "GMT", 0 }, { "EST", -300 }, { "EDT", -240 }, { "CST", -360 },
		{ "CDT", -300 }, { "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 },
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++)
		if (strlen(zones[i].name) == len && strncasecmp(s, zones[i].name, len) == 0)
			return zones[i].minutes;
	return 0;
}

int sort_parse_date(const char *value, size_t len, int64_t *when)
{
	const char *s = value;
	size_t n = len, i = skip_cfws(s, 0, n);
	if (i < n && isalpha((unsigned char)s[i])) {
		size_t w = i;
		while (i < n && isalpha((unsigned char)s[i]))
			i++;
		i = skip_cfws(s, i, n);
		if (i < n && s[i] == ',')
			i = skip_cfws(s, i + 1, n);
		else
			i = w;
	}
	int64_t mday = digits(s, &i, n, 2, NULL);
	if (mday < 1 || mday > 31)
		return -1;
	i = skip_cfws(s, i, n);
	int month = n - i >= 3 ? imap_month_parse(s + i) : 0;
	if (month == 0)
		return -1;
	i += 3;
	while (i < n && isalpha((unsigned char)s[i]))
		i++;
	i = skip_cfws(s, i, n);
	int yd;
	int64_t year = digits(s, &i, n, 9, &yd);
	if (year < 0)
		return -1;
	if (yd == 2)
		year += year < 50 ? 2000 : 1900;
	else if (yd == 3)
		year += 1900;
	i = skip_cfws(s, i, n);
	int64_t hour = digits(s, &i, n, 2, NULL), min = -1, sec = 0;
	i = skip_cfws(s, i, n);
	if (i < n && s[i] == ':') {
		i = skip_cfws(s, i + 1, n);
		min = digits(s, &i, n, 2, NULL);
	}
	if (hour < 0 || hour > 23 || min < 0 || min > 59)
		return -1;
	i = skip_cfws(s, i, n);
	if (i < n && s[i] == ':') {
		i = skip_cfws(s, i + 1, n);
		sec = digits(s, &i, n, 2, NULL);
		if (sec < 0 || sec > 60)
			return -1;
	}
	i = skip_cfws(s, i, n);
	int zone = 0;
	if (i < n && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i] == '-' ? -1 : 1, zd;
		i++;
		int64_t z = digits(s, &i, n, 4, &zd);
		if (zd != 4)
			return -1;
		zone = sign * (int)((z / 100) * 60 + z % 100);
	} else if (i < n && isalpha((unsigned char)s[i])) {
		size_t z = i;
		while (i < n && isalpha((unsigned char)s[i]))
			i++;
		zone = zone_name(s + z, i - z);
	}
	*when = imap_days_from_civil(year, (unsigned)month, (unsigned)mday) * 86400 + hour * 3600 + min * 60 + sec -
		(int64_t)zone * 60;
	return 0;
}

/* ---- addresses and message ids ------------------------------------------ */

void sort_address_key(struct agbuf *out, const struct mime_address *list)
{
	if (list != NULL && list->mailbox != NULL)
		sort_casemap(out, list->mailbox, strlen(list->mailbox));
}

void sort_display_key(struct agbuf *out, const struct mime_address *a)
{
	if (a == NULL)
		return;
	if (a->name != NULL && a->name[0] != '\0') {
		struct agbuf dec = AGBUF_INIT;
		search_decode_header_value(&dec, a->name, strlen(a->name));
		size_t b = 0, e = dec.len;
		while (b < e && is_wsp(dec.data[b]))
			b++;
		while (e > b && is_wsp(dec.data[e - 1]))
			e--;
		if (e > b) {
			sort_casemap(out, dec.data + b, e - b);
			agbuf_free(&dec);
			return;
		}
		agbuf_free(&dec);
	}
	if (a->mailbox != NULL)
		sort_casemap(out, a->mailbox, strlen(a->mailbox));
	if (a->mailbox != NULL && a->domain != NULL) {
		agbuf_putc(out, '@');
		sort_casemap(out, a->domain, strlen(a->domain));
	}
}

int sort_next_msgid(const char *value, size_t len, size_t *pos, struct agbuf *out)
{
	size_t i = *pos;
	while (i < len) {
		const char *lt = memchr(value + i, '<', len - i);
		if (lt == NULL)
			break;
		size_t b = (size_t)(lt - value) + 1, e = b;
		while (e < len && value[e] != '>' && value[e] != '<')
			e++;
		if (e >= len)
			break;
		if (value[e] == '<') {
			i = e;
			continue;
		}
		out->len = 0;
		int at = 0;
		for (size_t k = b; k < e; k++) {
			char c = value[k];
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (c == '@' && out->len > 0)
				at = 1;
			agbuf_putc(out, c);
		}
		i = e + 1;
		if (at && out->data[out->len - 1] != '@') {
			*pos = i;
			return 1;
		}
	}
	*pos = len;
	return 0;
}

/* ---- ORDEREDSUBJECT ------------------------------------------------------ */

struct order {
	const struct thread_msg *msgs;
	size_t i;
};

static int by_date(const struct thread_msg *msgs, size_t a, size_t b)
{
	if (msgs[a].date != msgs[b].date)
		return msgs[a].date < msgs[b].date ? -1 : 1;
	return a < b ? -1 : a > b;
}

static int cmp_subject_date(const void *pa, const void *pb)
{
	const struct order *a = pa, *b = pb;
	int c = strcmp(a->msgs[a->i].subject, a->msgs[b->i].subject);
	return c ? c : by_date(a->msgs, a->i, b->i);
}

struct run {
	const struct thread_msg *msgs;
	size_t head;          /* the run's oldest message */
	size_t start, end;    /* its messages in the subject order */
};

static int cmp_run(const void *pa, const void *pb)
{
	const struct run *a = pa, *b = pb;
	return by_date(a->msgs, a->head, b->head);
}

/* For the steps that need two arrays: 0 when both were allocated, else
 * -1 with both freed. */
static int both_allocated(void *a, void *b)
{
	if (a != NULL && b != NULL)
		return 0;
	free(a);
	free(b);
	return -1;
}

int thread_orderedsubject(struct agbuf *out, const struct thread_msg *msgs, size_t n)
{
	if (n == 0)
		return 0;
	struct order *o = malloc(n * sizeof(*o));
	struct run *runs = malloc(n * sizeof(*runs));
	if (both_allocated(o, runs) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		o[i] = (struct order){ msgs, i };
	qsort(o, n, sizeof(*o), cmp_subject_date);
	/* a thread per base subject: its oldest message, the others its
	 * children; the threads by the dates of their first messages */
	size_t nr = 0;
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || strcmp(msgs[o[i].i].subject, msgs[o[i - 1].i].subject) != 0)
			runs[nr++] = (struct run){ msgs, o[i].i, i, i };
		runs[nr - 1].end = i + 1;
	}
	qsort(runs, nr, sizeof(*runs), cmp_run);
	for (size_t r = 0; r < nr; r++) {
		size_t first = runs[r].start, last = runs[r].end;
		agbuf_putc(out, '(');
		agbuf_put_u64(out, msgs[o[first].i].num);
		if (last - first == 2) {
			agbuf_putc(out, ' ');
			agbuf_put_u64(out, msgs[o[first + 1].i].num);
		} else if (last - first > 2) {
			agbuf_putc(out, ' ');
			for (size_t k = first + 1; k < last; k++) {
				agbuf_putc(out, '(');
				agbuf_put_u64(out, msgs[o[k].i].num);
				agbuf_putc(out, ')');
			}
		}
		agbuf_putc(out, ')');
	}
	free(o);
	free(runs);
	return 0;
}

/* ---- REFERENCES ------------------------------------------------------------ */

#define NONE ((size_t)-1)

struct ctr {
	const char *id;       /* the Message-ID it stands for; NULL when unique */
	size_t msg;           /* index of its message, NONE for a dummy */
	size_t parent, child, next;
	size_t first;         /* the message it sorts as (itself, or its first child's) */
};

struct tree {
	const struct thread_msg *msgs;
	struct ctr *c;
	size_t n, cap;
	size_t *slot;         /* Message-ID hash: container index or NONE */
	size_t nslot;         /* a power of two */
	size_t root;
};

static size_t ctr_new(struct tree *t, const char *id, size_t msg)
{
	struct ctr *c = ag_array_room(t->c, t->n, &t->cap, sizeof(*c), 64);
	if (c == NULL)
		return NONE;
	t->c = c;
	t->c[t->n] = (struct ctr){ id, msg, NONE, NONE, NONE, msg };
	return t->n++;
}

/* The container of Message-ID id, made (a dummy) when there is none yet. */
static size_t ctr_of(struct tree *t, const char *id)
{
	size_t mask = t->nslot - 1, j = (size_t)ag_hash_str(id) & mask;
	while (t->slot[j] != NONE) {
		if (strcmp(t->c[t->slot[j]].id, id) == 0)
			return t->slot[j];
		j = (j + 1) & mask;
	}
	size_t k = ctr_new(t, id, NONE);
	if (k != NONE)
		t->slot[j] = k;
	return k;
}

/* 1 when making p the parent of c would close a loop: p is c or under it. */
static int would_loop(const struct tree *t, size_t p, size_t c)
{
	if (t->c[c].child == NONE) /* nothing is under c: the common case, at once */
		return p == c;
	for (size_t a = p; a != NONE; a = t->c[a].parent)
		if (a == c)
			return 1;
	return 0;
}

static void link_child(struct tree *t, size_t p, size_t c)
{
	t->c[c].parent = p;
	t->c[c].next = t->c[p].child;
	t->c[p].child = c;
}

static void unlink_child(struct tree *t, size_t c)
{
	size_t p = t->c[c].parent;
	size_t *at = &t->c[p].child;
	while (*at != c)
		at = &t->c[*at].next;
	*at = t->c[c].next;
	t->c[c].parent = NONE;
	t->c[c].next = NONE;
}

/* The containers under the root in pre-order (parents before children);
 * *count set. NULL when out of memory. */
static size_t *preorder(const struct tree *t, size_t *count)
{
	size_t *order = malloc(t->n * sizeof(*order));
	size_t *stack = malloc(t->n * sizeof(*stack));
	size_t n = 0, sp = 0;
	if (both_allocated(order, stack) < 0)
		return NULL;
	stack[sp++] = t->root;
	while (sp > 0) {
		size_t k = stack[--sp];
		order[n++] = k;
		for (size_t ch = t->c[k].child; ch != NONE; ch = t->c[ch].next)
			stack[sp++] = ch;
	}
	free(stack);
	*count = n;
	return order;
}

/* Step 3: dummies go, their children move up (to the root only when
 * there is one). Children before parents, so what moves up is pruned. */
static void prune(struct tree *t, const size_t *order, size_t n)
{
	for (size_t o = n; o-- > 0;) {
		size_t k = order[o], head = NONE, *tail = &head;
		size_t ch = t->c[k].child;
		while (ch != NONE) {
			size_t next = t->c[ch].next;
			struct ctr *c = &t->c[ch];
			int only_child = c->child != NONE && t->c[c->child].next == NONE;
			if (c->msg == NONE && c->child == NONE) {
				/* dropped */
			} else if (c->msg == NONE && (k != t->root || only_child)) {
				for (size_t g = c->child; g != NONE; g = t->c[g].next) {
					t->c[g].parent = k;
					*tail = g;
					tail = &t->c[g].next;
				}
			} else {
				*tail = ch;
				tail = &c->next;
			}
			ch = next;
		}
		*tail = NONE;
		t->c[k].child = head;
	}
}

struct sib {
	int64_t date;
	size_t msg, ctr;
};

static int cmp_sib(const void *pa, const void *pb)
{
	const struct sib *a = pa, *b = pb;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return a->msg < b->msg ? -1 : a->msg > b->msg;
}

/* Steps 4 and 6: every set of siblings by sent date, the mailbox order
 * breaking ties; a dummy sorts as its first child. */
static int sort_siblings(struct tree *t)
{
	size_t n;
	size_t *order = preorder(t, &n);
	struct sib *sib = malloc((t->n ? t->n : 1) * sizeof(*sib));
	if (both_allocated(order, sib) < 0)
		return -1;
	for (size_t o = n; o-- > 0;) {
		size_t k = order[o], m = 0;
		for (size_t ch = t->c[k].child; ch != NONE; ch = t->c[ch].next) {
			size_t f = t->c[ch].first;
			sib[m++] = (struct sib){ f == NONE ? INT64_MAX : t->msgs[f].date, f, ch };
		}
		qsort(sib, m, sizeof(*sib), cmp_sib);
		size_t *tail = &t->c[k].child;
		for (size_t j = 0; j < m; j++) {
			*tail = sib[j].ctr;
			tail = &t->c[sib[j].ctr].next;
		}
		*tail = NONE;
		if (t->c[k].msg == NONE)
			t->c[k].first = m ? sib[0].msg : NONE;
	}
	free(order);
	free(sib);
	return 0;
}

/* The message whose subject is the thread's: the container's own, or its
 * first child's for a dummy. */
static size_t thread_msg_of(const struct tree *t, size_t k)
{
	while (k != NONE && t->c[k].msg == NONE)
		k = t->c[k].child;
	return k == NONE ? NONE : t->c[k].msg;
}

/* Step 5: threads whose subjects are the same go together. */
struct subject_slot {
	const char *subject;  /* the thread subject it was entered with */
	size_t pos;           /* its thread: a position in the root list; NONE when free */
};

/* The slot of subject in the table: its own, or the free one where it goes. */
static struct subject_slot *subject_slot(struct subject_slot *table, size_t nslot, const char *subject)
{
	size_t j = (size_t)ag_hash_str(subject) & (nslot - 1);
	while (table[j].pos != NONE && strcmp(table[j].subject, subject) != 0)
		j = (j + 1) & (nslot - 1);
	return &table[j];
}

/* The root's children in order, in a new array (NULL when out of
 * memory); *count set. */
static size_t *root_children(const struct tree *t, size_t *count)
{
	size_t n = 0;
	for (size_t ch = t->c[t->root].child; ch != NONE; ch = t->c[ch].next)
		n++;
	size_t *kids = malloc((n ? n : 1) * sizeof(*kids));
	*count = n;
	if (kids != NULL) {
		n = 0;
		for (size_t ch = t->c[t->root].child; ch != NONE; ch = t->c[ch].next)
			kids[n++] = ch;
	}
	return kids;
}

static int gather_subjects(struct tree *t)
{
	size_t nroots;
	size_t *roots = root_children(t, &nroots);
	size_t nslot = 16;
	while (nslot < nroots * 2)
		nslot *= 2;
	struct subject_slot *table = malloc(nslot * sizeof(*table));
	if (both_allocated(roots, table) < 0)
		return -1;
	for (size_t j = 0; j < nslot; j++)
		table[j] = (struct subject_slot){ NULL, NONE };
	const struct thread_msg *msgs = t->msgs;
	/* (B) one thread per subject: a dummy before a message, a message
	 * that is not a reply before one that is. The subject is kept with
	 * the entry: merging below changes the first child of a dummy, and
	 * so what its thread subject would be looked up as. */
	for (size_t i = 0; i < nroots; i++) {
		size_t m = thread_msg_of(t, roots[i]);
		if (m == NONE || msgs[m].subject[0] == '\0')
			continue;
		struct subject_slot *slot = subject_slot(table, nslot, msgs[m].subject);
		if (slot->pos == NONE) {
			*slot = (struct subject_slot){ msgs[m].subject, i };
			continue;
		}
		const struct ctr *cur = &t->c[roots[i]], *old = &t->c[roots[slot->pos]];
		if (old->msg != NONE && (cur->msg == NONE || (msgs[old->msg].reply && !msgs[cur->msg].reply)))
			slot->pos = i;
	}
	/* (C) the others join it */
	int rc = 0;
	for (size_t i = 0; i < nroots && rc == 0; i++) {
		size_t cur = roots[i];
		size_t m = thread_msg_of(t, cur);
		if (m == NONE || msgs[m].subject[0] == '\0')
			continue;
		size_t at = subject_slot(table, nslot, msgs[m].subject)->pos, old = roots[at];
		if (old == cur)
			continue;
		struct ctr *c = &t->c[cur];
		if (c->msg == NONE && t->c[old].msg == NONE) {
			while (c->child != NONE) {
				size_t g = c->child;
				c->child = t->c[g].next;
				link_child(t, old, g);
			}
		} else if (t->c[old].msg == NONE ||
			   (c->msg != NONE && msgs[c->msg].reply && !msgs[t->c[old].msg].reply)) {
			link_child(t, old, cur);
		} else {
			size_t d = ctr_new(t, NULL, NONE);
			if (d == NONE) {
				rc = -1;
				break;
			}
			t->c[d].parent = t->root;
			link_child(t, d, old);
			link_child(t, d, cur);
			roots[at] = d;
		}
		roots[i] = NONE; /* gone from the root */
	}
	/* the root's children again, from what is left */
	size_t *tail = &t->c[t->root].child;
	for (size_t i = 0; i < nroots; i++) {
		if (roots[i] == NONE)
			continue;
		*tail = roots[i];
		tail = &t->c[roots[i]].next;
	}
	*tail = NONE;
	free(roots);
	free(table);
	return rc;
}

enum { W_NODE, W_OPEN, W_CLOSE, W_SPACE };

struct witem {
	int what;
	size_t ctr;
};

/* Appends the threads under the root: a container's number, then its only
 * child after a space, or each of its children in parentheses. */
static int write_threads(struct agbuf *out, const struct tree *t)
{
	struct witem *stack = malloc((4 * t->n + 4) * sizeof(*stack));
	size_t nk, *kids = root_children(t, &nk);
	if (both_allocated(stack, kids) < 0)
		return -1;
	size_t sp = 0;
	/* the root's children, each in parentheses */
	for (size_t k = nk; k-- > 0;) {
		stack[sp++] = (struct witem){ W_CLOSE, 0 };
		stack[sp++] = (struct witem){ W_NODE, kids[k] };
		stack[sp++] = (struct witem){ W_OPEN, 0 };
	}
	while (sp > 0) {
		struct witem it = stack[--sp];
		if (it.what == W_OPEN) {
			agbuf_putc(out, '(');
			continue;
		}
		if (it.what == W_CLOSE) {
			agbuf_putc(out, ')');
			continue;
		}
		if (it.what == W_SPACE) {
			agbuf_putc(out, ' ');
			continue;
		}
		const struct ctr *c = &t->c[it.ctr];
		if (c->msg != NONE)
			agbuf_put_u64(out, t->msgs[c->msg].num);
		size_t count = 0;
		for (size_t ch = c->child; ch != NONE; ch = t->c[ch].next)
			count++;
		if (count == 0)
			continue;
		if (count == 1) {
			stack[sp++] = (struct witem){ W_NODE, c->child };
			if (c->msg != NONE)
				stack[sp++] = (struct witem){ W_SPACE, 0 };
			continue;
		}
		/* children in reverse onto the stack, so the first comes out first */
		size_t base = sp;
		for (size_t ch = c->child; ch != NONE; ch = t->c[ch].next) {
			stack[sp++] = (struct witem){ W_OPEN, 0 };
			stack[sp++] = (struct witem){ W_NODE, ch };
			stack[sp++] = (struct witem){ W_CLOSE, 0 };
		}
		for (size_t a = base, b = sp - 1; a < b; a++, b--) {
			struct witem tmp = stack[a];
			stack[a] = stack[b];
			stack[b] = tmp;
		}
		if (c->msg != NONE)
			stack[sp++] = (struct witem){ W_SPACE, 0 };
	}
	free(kids);
	free(stack);
	return 0;
}

int thread_references(struct agbuf *out, const struct thread_msg *msgs, size_t n)
{
	struct tree t = { .msgs = msgs };
	int rc = -1;
	size_t total_refs = 0, count;
	size_t *order;
	for (size_t i = 0; i < n; i++)
		total_refs += msgs[i].n_refs;
	t.nslot = 64;
	while (t.nslot < 2 * (n + total_refs))
		t.nslot *= 2;
	t.slot = malloc(t.nslot * sizeof(*t.slot));
	if (t.slot == NULL)
		goto done;
	for (size_t j = 0; j < t.nslot; j++)
		t.slot[j] = NONE;
	if ((t.root = ctr_new(&t, NULL, NONE)) == NONE)
		goto done;
	/* (1) */
	for (size_t i = 0; i < n; i++) {
		const struct thread_msg *m = &msgs[i];
		size_t self = NONE;
		if (m->message_id != NULL) {
			self = ctr_of(&t, m->message_id);
			if (self == NONE)
				goto done;
			if (t.c[self].msg != NONE) /* a duplicate: this one goes alone */
				self = NONE;
		}
		if (self == NONE && (self = ctr_new(&t, NULL, NONE)) == NONE)
			goto done;
		t.c[self].msg = t.c[self].first = i;
		/* (A) the references, each the parent of the next, where they
		 * have no parent yet and no loop comes of it */
		size_t prev = NONE;
		for (size_t r = 0; r < m->n_refs; r++) {
			size_t k = ctr_of(&t, m->refs[r]);
			if (k == NONE)
				goto done;
			if (prev != NONE && t.c[k].parent == NONE && !would_loop(&t, prev, k))
				link_child(&t, prev, k);
			prev = k;
		}
		/* (B) the last reference is the parent, replacing any other */
		if (t.c[self].parent != NONE)
			unlink_child(&t, self);
		if (prev != NONE && !would_loop(&t, prev, self))
			link_child(&t, prev, self);
	}
	/* (2) the parentless under the root */
	for (size_t k = 0; k < t.n; k++)
		if (k != t.root && t.c[k].parent == NONE)
			link_child(&t, t.root, k);
	/* (3) */
	order = preorder(&t, &count);
	if (order == NULL)
		goto done;
	prune(&t, order, count);
	free(order);
	/* (4), (5), (6) */
	if (sort_siblings(&t) != 0 || gather_subjects(&t) != 0 || sort_siblings(&t) != 0)
		goto done;
	rc = write_threads(out, &t);
done:
	free(t.c);
	free(t.slot);
	return rc;
}
