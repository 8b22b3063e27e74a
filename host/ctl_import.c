/* ctl_import.c - aerogramctl import and export: mbox files, Maildirs and
 * trees of either into a user's mailboxes, and a mailbox out to an mbox.
 *
 * Import stores each message as an IMAP client's APPEND would: the bytes
 * of the message with every bare LF made CRLF (IMAP's line end; nothing
 * else changes), parsed once for its summary (header block and serialised
 * structure, as cmd_append.c does), in batches of one mail_append_many
 * each: one log entry per batch, every message of it or none. An mbox is
 * split on its From_ lines (a line "From SENDER DATE" whose date parses,
 * as Dovecot reads them); the blank line before a From_ line belongs to the
 * mbox, and ">From " lines lose one '>' (mboxrd; --keep-from-quoting keeps
 * them, for mboxo files whose quoting cannot be undone). Flags come from
 * Maildir file names (":2,DFPRST" and Dovecot's keyword letters) or the
 * mbox Status, X-Status and X-Keywords headers; internal dates from the
 * From_ line or the file's mtime.
 *
 * Running it again never adds a message twice: before a mailbox is filled,
 * the messages already in it are counted by key (Message-ID and size, the
 * size with bare LFs counted as CRLF, or for a message without Message-ID
 * a SHA-256 of its bytes so normalised), and each source message whose key
 * is still counted uses one count up instead of being added. So an
 * interrupted import (Ctrl-C: the batch in flight completes or does not,
 * and nothing else is half done) goes on where it stopped, a message the
 * mailbox had before is not added again, and a source holding the same
 * message twice keeps both copies. */
#include "host/ctl.h"
#include "host/ctl_cmds.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "protocol/agbuf.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"
#include "protocol/mutf7.h"

#define DEFAULT_BATCH 100
#define BATCH_BYTES (8u << 20)
/* A message larger than this is refused (aerogramd's max_message at most). */
#define MESSAGE_MAX (1024ull << 20)

/* ------------------------------------------------------------ keys */

/* A multiset of strings (open addressing, counts). */
struct keyset {
	struct keyslot {
		char *key;
		uint32_t count;
	} *slots;
	size_t cap, used;
};

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h;
}

static struct keyslot *keyset_slot(struct keyset *ks, const char *key)
{
	size_t i = (size_t)fnv(key) & (ks->cap - 1);
	while (ks->slots[i].key != NULL && strcmp(ks->slots[i].key, key) != 0)
		i = (i + 1) & (ks->cap - 1);
	return &ks->slots[i];
}

static int keyset_add(struct keyset *ks, const char *key)
{
	if ((ks->used + 1) * 2 > ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 1024;
		struct keyset old = *ks;
		ks->slots = calloc(cap, sizeof(*ks->slots));
		if (ks->slots == NULL) {
			*ks = old;
			return -1;
		}
		ks->cap = cap;
		for (size_t i = 0; i < old.cap; i++)
			if (old.slots[i].key != NULL)
				*keyset_slot(ks, old.slots[i].key) = old.slots[i];
		free(old.slots);
	}
	struct keyslot *s = keyset_slot(ks, key);
	if (s->key == NULL) {
		s->key = strdup(key);
		if (s->key == NULL)
			return -1;
		ks->used++;
	}
	s->count++;
	return 0;
}

/* Uses one count of key up: 1 when there was one. */
static int keyset_take(struct keyset *ks, const char *key)
{
	if (ks->cap == 0)
		return 0;
	struct keyslot *s = keyset_slot(ks, key);
	if (s->key == NULL || s->count == 0)
		return 0;
	s->count--;
	return 1;
}

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->cap; i++)
		free(ks->slots[i].key);
	free(ks->slots);
	memset(ks, 0, sizeof(*ks));
}

/* ------------------------------------------------------------ message bytes */

/* The length of the header block: up to and including the first empty
 * line, or everything. */
static size_t header_length(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - p) + 1 : len;
		size_t l = end - i;
		if ((l == 1 && p[i] == '\n') || (l == 2 && p[i] == '\r' && p[i + 1] == '\n'))
			return end;
		i = end;
	}
	return len;
}

/* The unfolded value of the first `name` field of a header block, without
 * any whitespace when `squeeze` (Message-ID), or with runs of it as one
 * space; appended to out. Returns 1 when the field is there. */
static int header_field(const char *p, size_t len, const char *name, int squeeze, struct agbuf *out)
{
	size_t nl = strlen(name), i = 0;
	while (i < len) {
		const char *e = memchr(p + i, '\n', len - i);
		size_t end = e ? (size_t)(e - p) + 1 : len;
		if (end - i > nl && strncasecmp(p + i, name, nl) == 0 && p[i + nl] == ':') {
			size_t j = i + nl + 1;
			int space = 0;
			for (;;) {
				for (; j < end; j++) {
					char ch = p[j];
					if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
						space = 1;
						continue;
					}
					if (space && !squeeze && out->len > 0)
						agbuf_putc(out, ' ');
					space = 0;
					agbuf_putc(out, ch);
				}
				/* a continuation line starts with a blank */
				if (end < len && (p[end] == ' ' || p[end] == '\t')) {
					const char *e2 = memchr(p + end, '\n', len - end);
					j = end;
					end = e2 ? (size_t)(e2 - p) + 1 : len;
					continue;
				}
				break;
			}
			return 1;
		}
		i = end;
	}
	return 0;
}

/* Appends src as stored: every LF not after a CR becomes CRLF; with
 * `unquote`, a line ">...>From " loses one '>' (mboxrd). */
static void normalise(const char *src, size_t len, int unquote, struct agbuf *out)
{
	agbuf_reserve(out, len + len / 32 + 16);
	size_t i = 0;
	while (i < len) {
		if (unquote && src[i] == '>') {
			size_t j = i;
			while (j < len && src[j] == '>')
				j++;
			if (len - j >= 5 && memcmp(src + j, "From ", 5) == 0)
				i++;
		}
		const char *nl = memchr(src + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - src) : len;
		agbuf_append(out, src + i, end - i);
		if (nl != NULL) {
			if (end == i || src[end - 1] != '\r')
				agbuf_putc(out, '\r');
			agbuf_putc(out, '\n');
			end++;
		}
		i = end;
	}
}

/* The dedup key of a message as stored (CRLF line ends): Message-ID and
 * size, or a hash of the bytes. */
static void message_key(const char *data, size_t len, uint64_t size, struct agbuf *key)
{
	agbuf_reset(key);
	size_t hl = header_length(data, len);
	struct agbuf id = AGBUF_INIT;
	if (header_field(data, hl, "Message-ID", 1, &id) && id.len > 0) {
		agbuf_printf(key, "M%llu %s", (unsigned long long)size, id.data);
	} else {
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen = 0;
		EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
		agbuf_printf(key, "H%llu ", (unsigned long long)size);
		for (unsigned i = 0; i < mdlen; i++)
			agbuf_printf(key, "%02x", md[i]);
	}
	agbuf_free(&id);
}

/* The key of a stored message whose bytes may have bare LFs: the same as
 * message_key of the normalised bytes. */
static void stored_key(const char *data, size_t len, struct agbuf *key)
{
	struct agbuf norm = AGBUF_INIT;
	normalise(data, len, 0, &norm);
	message_key(norm.data ? norm.data : "", norm.len, norm.len, key);
	agbuf_free(&norm);
}

/* ------------------------------------------------------------ dates */

static const char *const month_names[] = { "jan", "feb", "mar", "apr", "may", "jun",
	                                   "jul", "aug", "sep", "oct", "nov", "dec" };
static const char *const day_names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

static int name_index(const char *tok, size_t len, const char *const *names, int n)
{
	if (len != 3)
		return -1;
	for (int i = 0; i < n; i++)
		if (strncasecmp(tok, names[i], 3) == 0)
			return i;
	return -1;
}

static int all_digits(const char *s, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

struct tok {
	const char *p;
	size_t len;
};

/* [weekday] month day hh:mm[:ss] then the year and an optional zone
 * (+hhmm, -hhmm) in either order; words after them are allowed ("remote
 * from ..."); no zone: UTC. */
static int parse_asctime(const struct tok *t, size_t n, int64_t *out)
{
	size_t i = 0;
	if (i < n && name_index(t[i].p, t[i].len, day_names, 7) >= 0)
		i++;
	if (i + 3 > n)
		return -1;
	int mon = name_index(t[i].p, t[i].len, month_names, 12);
	if (mon < 0 || !all_digits(t[i + 1].p, t[i + 1].len) || t[i + 1].len > 2)
		return -1;
	int day = atoi(t[i + 1].p);
	int hh, mm, ss = 0;
	char rest;
	char timebuf[16];
	if (t[i + 2].len >= sizeof(timebuf))
		return -1;
	memcpy(timebuf, t[i + 2].p, t[i + 2].len);
	timebuf[t[i + 2].len] = '\0';
	if (sscanf(timebuf, "%d:%d:%d%c", &hh, &mm, &ss, &rest) != 3 && (ss = 0, sscanf(timebuf, "%d:%d%c", &hh, &mm, &rest)) != 2)
		return -1;
	i += 3;
	int year = -1;
	long zone = 0;
	for (int k = 0; k < 2 && i < n; k++, i++) {
		if (year < 0 && t[i].len == 4 && all_digits(t[i].p, 4)) {
			year = atoi(t[i].p);
		} else if (t[i].len == 5 && (t[i].p[0] == '+' || t[i].p[0] == '-') && all_digits(t[i].p + 1, 4)) {
			long v = strtol(t[i].p + 1, NULL, 10);
			zone = (v / 100 * 60 + v % 100) * 60 * (t[i].p[0] == '-' ? -1 : 1);
		} else if (t[i].len >= 3 && t[i].len <= 4 && year < 0 && (t[i].p[0] >= 'A' && t[i].p[0] <= 'Z')) {
			/* a zone name (asctime with %Z before the year): taken as UTC */
		} else {
			break;
		}
	}
	if (year < 1970 || year > 9999 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return -1;
	struct tm tm = { .tm_year = year - 1900, .tm_mon = mon, .tm_mday = day, .tm_hour = hh, .tm_min = mm,
		         .tm_sec = ss };
	*out = (int64_t)timegm(&tm) - zone;
	return 0;
}

/* A From_ line ("From " at p, len bytes without its line end): 0 and the
 * date (seconds) when it parses: "From SENDER DATE" (the sender may hold
 * spaces: the first split whose rest is a date wins). */
static int parse_from_line(const char *p, size_t len, int64_t *date)
{
	if (len < 5 || memcmp(p, "From ", 5) != 0)
		return -1;
	struct tok t[24];
	size_t n = 0;
	for (size_t i = 5; i < len && n < 24;) {
		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r'))
			i++;
		size_t s = i;
		while (i < len && p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			i++;
		if (i > s)
			t[n++] = (struct tok){ p + s, i - s };
	}
	for (size_t k = 1; k < n; k++)
		if (parse_asctime(t + k, n - k, date) == 0)
			return 0;
	return -1;
}

/* ------------------------------------------------------------ sources */

enum source_kind { SRC_MBOX, SRC_MAILDIR };

struct source_msg {
	uint64_t off, len;   /* mbox: the message's bytes in the file */
	char *file;          /* Maildir: its file */
	uint64_t date_ms;
	uint32_t flags;      /* Maildir: from the name */
	char *keywords;      /* Maildir: space-separated, or NULL */
};

struct source_box {
	enum source_kind kind;
	char *path;          /* the mbox file or the Maildir */
	char *mailbox;       /* the engine's name (modified UTF-7) */
	struct source_msg *msgs;
	size_t n, cap;
	uint64_t bytes;      /* as read from the source */
	int fd;
	const char *map;     /* mbox: the file, mapped */
	size_t map_len;
};

struct sources {
	struct source_box *boxes;
	size_t n, cap;
	uint64_t msgs, bytes;
	int skipped_files;
};

static void box_free(struct source_box *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->msgs[i].file);
		free(b->msgs[i].keywords);
	}
	free(b->msgs);
	free(b->path);
	free(b->mailbox);
	if (b->map != NULL && b->map_len > 0)
		munmap((void *)b->map, b->map_len);
	if (b->fd >= 0)
		close(b->fd);
}

static void sources_free(struct sources *s)
{
	for (size_t i = 0; i < s->n; i++)
		box_free(&s->boxes[i]);
	free(s->boxes);
}

/* An array of `size`-byte elements holding n of *cap with room for one
 * more: the array itself, or grown (doubled, `first` at first), or NULL
 * when out of memory (the array is left as it was). */
static void *room_for_one(void *array, size_t n, size_t *cap, size_t size, size_t first)
{
	if (n < *cap)
		return array;
	size_t grown_cap = *cap ? *cap * 2 : first;
	void *grown = realloc(array, grown_cap * size);
	if (grown != NULL)
		*cap = grown_cap;
	return grown;
}

static struct source_msg *box_push(struct source_box *b)
{
	struct source_msg *msgs = room_for_one(b->msgs, b->n, &b->cap, sizeof(*msgs), 64);
	if (msgs == NULL)
		return NULL;
	b->msgs = msgs;
	struct source_msg *m = &b->msgs[b->n++];
	memset(m, 0, sizeof(*m));
	return m;
}

static struct source_box *sources_push(struct sources *s, enum source_kind kind, const char *path,
                                       const char *mailbox)
{
	struct source_box *boxes = room_for_one(s->boxes, s->n, &s->cap, sizeof(*boxes), 8);
	if (boxes == NULL)
		return NULL;
	s->boxes = boxes;
	struct source_box *b = &s->boxes[s->n];
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->kind = kind;
	b->path = strdup(path);
	b->mailbox = strdup(mailbox);
	if (b->path == NULL || b->mailbox == NULL) {
		box_free(b);
		return NULL;
	}
	s->n++;
	return b;
}

/* Whether the file starts with a From_ line (an mbox). */
static int looks_like_mbox(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return 0;
	char line[1024];
	int ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	int64_t d;
	return ok && parse_from_line(line, strcspn(line, "\n"), &d) == 0;
}

/* Splits an mbox into its messages (offsets into the mapped file). */
static int scan_mbox(struct source_box *b, char *err, size_t errlen)
{
	b->fd = open(b->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (b->fd < 0 || fstat(b->fd, &st) != 0) {
		snprintf(err, errlen, "%.900s: %s", b->path, strerror(errno));
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	b->map_len = (size_t)st.st_size;
	void *m = mmap(NULL, b->map_len, PROT_READ, MAP_PRIVATE, b->fd, 0);
	if (m == MAP_FAILED) {
		b->map_len = 0;
		snprintf(err, errlen, "%.900s: cannot map it: %s", b->path, strerror(errno));
		return -1;
	}
	b->map = m;
	const char *p = b->map;
	size_t len = b->map_len;
	int64_t date;
	const char *nl0 = memchr(p, '\n', len);
	if (parse_from_line(p, nl0 ? (size_t)(nl0 - p) : len, &date) != 0) {
		snprintf(err, errlen, "%.900s: not an mbox (the first line is no \"From SENDER DATE\" line)", b->path);
		return -1;
	}
	struct source_msg *cur = NULL;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - p) + 1 : len;
		int64_t d;
		if (len - i >= 5 && memcmp(p + i, "From ", 5) == 0 &&
		    parse_from_line(p + i, end - i - (nl ? 1 : 0), &d) == 0) {
			if (cur != NULL) {
				/* the blank line before a From_ line is the mbox's */
				uint64_t stop = i;
				if (stop >= cur->off + 1 && p[stop - 1] == '\n') {
					if (stop >= cur->off + 2 && p[stop - 2] == '\n')
						stop -= 1;
					else if (stop >= cur->off + 3 && p[stop - 2] == '\r' && p[stop - 3] == '\n')
						stop -= 2;
				}
				cur->len = stop - cur->off;
			}
			cur = box_push(b);
			if (cur == NULL) {
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			cur->off = end;
			cur->date_ms = d > 0 ? (uint64_t)d * 1000 : 1;
		}
		i = end;
	}
	if (cur != NULL) {
		uint64_t stop = len;
		if (stop >= cur->off + 2 && p[stop - 1] == '\n' && p[stop - 2] == '\n')
			stop -= 1;
		else if (stop >= cur->off + 4 && memcmp(p + stop - 4, "\r\n\r\n", 4) == 0)
			stop -= 2;
		cur->len = stop - cur->off;
	}
	/* From_ lines with nothing between them: no message */
	size_t w = 0;
	for (size_t k = 0; k < b->n; k++)
		if (b->msgs[k].len > 0)
			b->msgs[w++] = b->msgs[k];
	b->n = w;
	for (size_t k = 0; k < b->n; k++) {
		if (b->msgs[k].len > MESSAGE_MAX) {
			snprintf(err, errlen, "%.900s: message %zu is larger than 1 GiB", b->path, k + 1);
			return -1;
		}
		b->bytes += b->msgs[k].len;
	}
	return 0;
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_maildir(const char *path)
{
	char sub[4096];
	snprintf(sub, sizeof(sub), "%s/cur", path);
	if (is_dir(sub))
		return 1;
	snprintf(sub, sizeof(sub), "%s/new", path);
	return is_dir(sub);
}

/* Dovecot's dovecot-keywords: "N name" lines, letter 'a' + N. */
static void read_maildir_keywords(const char *dir, char *names[26])
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/dovecot-keywords", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	char line[512];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *end;
		long n = strtol(line, &end, 10);
		if (end == line || *end != ' ' || n < 0 || n > 25)
			continue;
		end[strcspn(end, "\r\n")] = '\0';
		if (end[1] != '\0' && names[n] == NULL)
			names[n] = strdup(end + 1);
	}
	fclose(f);
}

/* Flags of a Maildir file name: the letters after ":2," (or "!2,"). */
static void maildir_flags(const char *name, char *const kw_names[26], uint32_t *flags, struct agbuf *kw)
{
	const char *info = NULL;
	for (const char *p = name; (p = strstr(p, "2,")) != NULL; p++)
		if (p > name && (p[-1] == ':' || p[-1] == '!'))
			info = p + 2;
	*flags = 0;
	for (const char *p = info; p != NULL && *p; p++) {
		switch (*p) {
		case 'D': *flags |= MAIL_F_DRAFT; break;
		case 'F': *flags |= MAIL_F_FLAGGED; break;
		case 'R': *flags |= MAIL_F_ANSWERED; break;
		case 'S': *flags |= MAIL_F_SEEN; break;
		case 'T': *flags |= MAIL_F_DELETED; break;
		case 'P':
			if (kw->len)
				agbuf_putc(kw, ' ');
			agbuf_puts(kw, "$Forwarded");
			break;
		default:
			if (*p >= 'a' && *p <= 'z' && kw_names[*p - 'a'] != NULL) {
				if (kw->len)
					agbuf_putc(kw, ' ');
				agbuf_puts(kw, kw_names[*p - 'a']);
			}
			break;
		}
	}
}

static int cmp_msg_date(const void *a, const void *b)
{
	const struct source_msg *x = a, *y = b;
	if (x->date_ms != y->date_ms)
		return x->date_ms < y->date_ms ? -1 : 1;
	const char *nx = strrchr(x->file, '/'), *ny = strrchr(y->file, '/');
	return strcmp(nx ? nx : x->file, ny ? ny : y->file);
}

/* The messages of a Maildir's cur/ and new/, oldest first (mtime, then
 * name). */
static int scan_maildir(struct source_box *b, char *err, size_t errlen)
{
	char *kw_names[26] = { 0 };
	read_maildir_keywords(b->path, kw_names);
	int rc = 0;
	static const char *const subs[] = { "cur", "new" };
	for (int s = 0; rc == 0 && s < 2; s++) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", b->path, subs[s]);
		DIR *d = opendir(dir);
		if (d == NULL) {
			if (errno == ENOENT)
				continue;
			snprintf(err, errlen, "%.900s: %s", dir, strerror(errno));
			rc = -1;
			break;
		}
		struct dirent *e;
		while (rc == 0 && (e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			char file[8192];
			snprintf(file, sizeof(file), "%s/%s", dir, e->d_name);
			struct stat st;
			if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if ((uint64_t)st.st_size > MESSAGE_MAX) {
				snprintf(err, errlen, "%.900s: larger than 1 GiB", file);
				rc = -1;
				break;
			}
			struct source_msg *m = box_push(b);
			struct agbuf kw = AGBUF_INIT;
			if (m == NULL || (m->file = strdup(file)) == NULL) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
				break;
			}
			m->len = (uint64_t)st.st_size;
			m->date_ms = st.st_mtime > 0 ? (uint64_t)st.st_mtime * 1000 : 1;
			if (s == 0)
				maildir_flags(e->d_name, kw_names, &m->flags, &kw);
			m->keywords = kw.len ? agbuf_steal(&kw, NULL) : NULL;
			agbuf_free(&kw);
			b->bytes += m->len;
		}
		closedir(d);
	}
	for (int i = 0; i < 26; i++)
		free(kw_names[i]);
	if (rc == 0 && b->n > 1)
		qsort(b->msgs, b->n, sizeof(*b->msgs), cmp_msg_date);
	return rc;
}

static int add_source(struct sources *s, enum source_kind kind, const char *path, const char *mailbox, char *err,
                      size_t errlen)
{
	struct source_box *b = sources_push(s, kind, path, mailbox);
	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = kind == SRC_MBOX ? scan_mbox(b, err, errlen) : scan_maildir(b, err, errlen);
	s->msgs += b->n;
	s->bytes += b->bytes;
	return rc;
}

/* "parent" + "." + child as the engine spells names; a Maildir++ folder
 * name is modified UTF-7 already, a file name is UTF-8. INBOX in any case
 * is INBOX at the top level only. */
static char *child_name(const char *parent, const char *child, int is_mutf7)
{
	struct agbuf out = AGBUF_INIT;
	if (parent != NULL)
		agbuf_printf(&out, "%s%c", parent, MAIL_DELIMITER);
	size_t at = out.len;
	if (is_mutf7 && mutf7_is_valid(child, strlen(child)))
		agbuf_puts(&out, child);
	else if (mutf7_encode(child, strlen(child), &out) != 0 || out.len == at) {
		agbuf_free(&out);
		return NULL;
	}
	if (parent == NULL && strncasecmp(out.data, "INBOX", 5) == 0 &&
	    (out.data[5] == '\0' || out.data[5] == MAIL_DELIMITER))
		memcpy(out.data, "INBOX", 5);
	return agbuf_steal(&out, NULL);
}

/* A Maildir and its Maildir++ folders (".Sub.Folder" -> Sub.Folder below
 * `prefix`, or at the top without one). */
static int add_maildir_tree(struct sources *s, const char *path, const char *root_box, const char *prefix, char *err,
                            size_t errlen)
{
	if (add_source(s, SRC_MAILDIR, path, root_box, err, errlen) != 0)
		return -1;
	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	if (n < 0)
		return 0;
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		char sub[8192];
		snprintf(sub, sizeof(sub), "%s/%s", path, name);
		if (rc == 0 && name[0] == '.' && name[1] != '\0' && name[1] != '.' && is_maildir(sub)) {
			char *box = child_name(prefix, name + 1, 1);
			if (box == NULL) {
				snprintf(err, errlen, "%.900s: cannot make a mailbox name of it", sub);
				rc = -1;
			} else {
				rc = add_source(s, SRC_MAILDIR, sub, box, err, errlen);
				free(box);
			}
		}
		free(list[i]);
	}
	free(list);
	return rc;
}

/* A directory of mbox files and Maildirs: each becomes the mailbox of its
 * path below `prefix` (directories as levels; Thunderbird's "X.sbd" is X). */
static int add_tree(struct sources *s, const char *path, const char *prefix, int depth, char *err, size_t errlen)
{
	if (depth > 32) {
		snprintf(err, errlen, "%.900s: directories nested too deep", path);
		return -1;
	}
	struct dirent **list;
	int n = scandir(path, &list, NULL, alphasort);
	if (n < 0) {
		snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
		return -1;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;
		char sub[8192];
		snprintf(sub, sizeof(sub), "%s/%s", path, name);
		struct stat st;
		if (rc != 0 || name[0] == '.' || stat(sub, &st) != 0) {
			free(list[i]);
			continue;
		}
		char base[4096];
		snprintf(base, sizeof(base), "%s", name);
		size_t bl = strlen(base);
		if (S_ISDIR(st.st_mode) && bl > 4 && strcmp(base + bl - 4, ".sbd") == 0)
			base[bl - 4] = '\0';
		char *box = child_name(prefix, base, 0);
		if (box == NULL) {
			snprintf(err, errlen, "%.900s: cannot make a mailbox name of it (not UTF-8?)", sub);
			rc = -1;
		} else if (S_ISDIR(st.st_mode) && is_maildir(sub)) {
			rc = add_maildir_tree(s, sub, box, box, err, errlen);
		} else if (S_ISDIR(st.st_mode)) {
			rc = add_tree(s, sub, box, depth + 1, err, errlen);
		} else if (S_ISREG(st.st_mode) && looks_like_mbox(sub)) {
			rc = add_source(s, SRC_MBOX, sub, box, err, errlen);
		} else if (S_ISREG(st.st_mode) && st.st_size > 0) {
			s->skipped_files++;
			printf("skipped %s: not an mbox file\n", sub);
		}
		free(box);
		free(list[i]);
	}
	free(list);
	return rc;
}

/* ------------------------------------------------------------ progress */

struct progress {
	int tty;
	uint64_t total_msgs, total_bytes;
	uint64_t done_msgs, done_bytes;
	uint64_t start_ms, last_ms;
	int drawn;
};

static void human_bytes(uint64_t b, char *out, size_t len)
{
	if (b >= 10ull << 30)
		snprintf(out, len, "%.1f GB", (double)b / (1 << 30));
	else if (b >= 1 << 20)
		snprintf(out, len, "%.1f MB", (double)b / (1 << 20));
	else if (b >= 1 << 10)
		snprintf(out, len, "%.1f KB", (double)b / (1 << 10));
	else
		snprintf(out, len, "%llu B", (unsigned long long)b);
}

static void progress_clear(struct progress *p)
{
	if (p->tty && p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		p->drawn = 0;
	}
}

static void progress_draw(struct progress *p, const char *box, int force)
{
	if (!p->tty)
		return;
	uint64_t now = ctl_now_ms();
	if (!force && now - p->last_ms < 100)
		return;
	p->last_ms = now;
	double secs = (double)(now - p->start_ms) / 1000.0;
	double frac = p->total_bytes ? (double)p->done_bytes / (double)p->total_bytes
	                             : p->total_msgs ? (double)p->done_msgs / (double)p->total_msgs : 1.0;
	if (frac > 1)
		frac = 1;
	char bar[26];
	int fill = (int)(frac * 24);
	for (int i = 0; i < 24; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[24] = '\0';
	double rate = secs > 0 ? (double)p->done_msgs / secs : 0;
	char done[32], total[32], eta[32] = "--:--";
	human_bytes(p->done_bytes, done, sizeof(done));
	human_bytes(p->total_bytes, total, sizeof(total));
	if (frac > 0.001 && secs > 0.5) {
		uint64_t left = (uint64_t)(secs / frac - secs);
		snprintf(eta, sizeof(eta), "%llu:%02llu", (unsigned long long)(left / 60), (unsigned long long)(left % 60));
	}
	char *shown = ctl_display_name(box);
	fprintf(stderr, "\r\033[K[%s] %3d%% %llu/%llu msgs %s/%s %.0f msg/s ETA %s %.30s", bar, (int)(frac * 100),
	        (unsigned long long)p->done_msgs, (unsigned long long)p->total_msgs, done, total, rate, eta,
	        shown ? shown : box);
	free(shown);
	fflush(stderr);
	p->drawn = 1;
}

/* ------------------------------------------------------------ import */

struct batch_item {
	struct agbuf bytes;
	struct mime_message *mime;
	struct agbuf structure;
	const char **keywords;
	size_t n_keywords;
	char *keyword_text;
	struct mail_new_message nm;
	uint64_t source_len;
};

struct importer {
	struct ctl *c;
	const char *user;
	int unquote;
	size_t batch_max;
	uint64_t stop_after;   /* tests: raise SIGINT once this many are in (0: never) */
	struct progress prog;
	uint64_t imported, skipped, imported_bytes;
	struct batch_item *items;
	size_t n_items;
	uint64_t batch_bytes;
};

static void item_clear(struct batch_item *it)
{
	agbuf_free(&it->bytes);
	mime_free(it->mime);
	agbuf_free(&it->structure);
	free(it->keywords);
	free(it->keyword_text);
	memset(it, 0, sizeof(*it));
}

/* Flags of an mbox message from its Status, X-Status and X-Keywords
 * headers (as mutt, Thunderbird and Dovecot write them). */
static void mbox_flags(const char *data, size_t len, uint32_t *flags, struct agbuf *kw)
{
	size_t hl = header_length(data, len);
	struct agbuf v = AGBUF_INIT;
	if (header_field(data, hl, "Status", 1, &v) && v.data && strchr(v.data, 'R'))
		*flags |= MAIL_F_SEEN;
	agbuf_reset(&v);
	if (header_field(data, hl, "X-Status", 1, &v) && v.data) {
		if (strchr(v.data, 'A'))
			*flags |= MAIL_F_ANSWERED;
		if (strchr(v.data, 'F'))
			*flags |= MAIL_F_FLAGGED;
		if (strchr(v.data, 'T'))
			*flags |= MAIL_F_DRAFT;
		if (strchr(v.data, 'D'))
			*flags |= MAIL_F_DELETED;
	}
	agbuf_reset(&v);
	if (header_field(data, hl, "X-Keywords", 0, &v) && v.data) {
		for (char *p = v.data; *p; p++)
			if (*p == ',')
				*p = ' ';
		agbuf_puts(kw, v.data);
	}
	agbuf_free(&v);
}

/* Splits space-separated keywords in place into it->keywords. */
static int split_keywords(struct batch_item *it)
{
	if (it->keyword_text == NULL)
		return 0;
	size_t n = 1;
	for (const char *p = it->keyword_text; *p; p++)
		n += *p == ' ';
	it->keywords = calloc(n, sizeof(*it->keywords));
	if (it->keywords == NULL)
		return -1;
	char *save = NULL;
	for (char *w = strtok_r(it->keyword_text, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		/* atoms only: what an IMAP client could have set */
		int ok = 1;
		for (const char *q = w; *q; q++)
			if ((unsigned char)*q <= ' ' || (unsigned char)*q >= 0x7f || strchr("(){%*\"\\]", *q))
				ok = 0;
		if (ok && w[0] != '\\')
			it->keywords[it->n_keywords++] = w;
	}
	return 0;
}

static int flush_batch(struct importer *im, struct mail_mailbox *mb, const char *box)
{
	if (im->n_items == 0)
		return 0;
	struct mail_new_message *msgs = calloc(im->n_items, sizeof(*msgs));
	if (msgs == NULL)
		return AEROGRAM_EINTERNAL;
	for (size_t i = 0; i < im->n_items; i++)
		msgs[i] = im->items[i].nm;
	uint32_t uv;
	int rc = mail_append_many(mb, msgs, im->n_items, &uv, NULL);
	free(msgs);
	uint64_t n = im->n_items;
	for (size_t i = 0; i < im->n_items; i++) {
		if (rc == 0) {
			im->imported_bytes += im->items[i].bytes.len;
			im->prog.done_bytes += im->items[i].source_len;
		}
		item_clear(&im->items[i]);
	}
	im->n_items = 0;
	im->batch_bytes = 0;
	if (rc != 0)
		return rc;
	im->imported += n;
	im->prog.done_msgs += n;
	progress_draw(&im->prog, box, 0);
	if (im->stop_after && im->imported >= im->stop_after) {
		im->stop_after = 0;
		raise(SIGINT);
	}
	return 0;
}

/* The keys of the messages a mailbox holds. */
static int existing_keys(struct importer *im, struct mail_mailbox *mb, struct keyset *ks)
{
	struct mail_view *v;
	int rc = mail_view_open(mb, 0, &v);
	if (rc != 0)
		return rc;
	uint32_t n = mail_view_exists(v);
	struct agbuf key = AGBUF_INIT;
	enum { CHUNK = 500 };
	uint32_t uids[CHUNK], need_body[CHUNK];
	for (uint32_t at = 0; rc == 0 && at < n; at += CHUNK) {
		uint32_t k = n - at < CHUNK ? n - at : CHUNK, nb = 0;
		for (uint32_t i = 0; i < k; i++)
			uids[i] = mail_view_uid(v, at + i + 1);
		struct mail_summary *sums;
		rc = mail_summaries(v, uids, k, &sums);
		if (rc != 0)
			break;
		for (uint32_t i = 0; rc == 0 && i < k; i++) {
			if (sums[i].status != 0)
				continue;
			struct agbuf id = AGBUF_INIT;
			const char *h = (const char *)sums[i].header;
			if (h != NULL && header_field(h, sums[i].header_len, "Message-ID", 1, &id) && id.len > 0) {
				/* the size with bare LFs as CRLF, from the structure */
				uint64_t size = sums[i].size;
				struct mime_message *mm = mime_serial_decode(sums[i].bodystructure, sums[i].bodystructure_len);
				if (mm != NULL)
					size = mm->vsize;
				mime_free(mm);
				agbuf_reset(&key);
				agbuf_printf(&key, "M%llu %s", (unsigned long long)size, id.data);
				if (keyset_add(ks, key.data) != 0)
					rc = AEROGRAM_EINTERNAL;
			} else {
				need_body[nb++] = uids[i];
			}
			agbuf_free(&id);
		}
		mail_summaries_free(sums, k);
		if (rc == 0 && nb > 0) {
			struct mail_body *bodies;
			rc = mail_bodies(v, need_body, nb, &bodies);
			for (uint32_t i = 0; rc == 0 && i < nb; i++) {
				if (bodies[i].status != 0)
					continue;
				stored_key((const char *)bodies[i].data, bodies[i].len, &key);
				if (keyset_add(ks, key.data) != 0)
					rc = AEROGRAM_EINTERNAL;
			}
			if (bodies != NULL)
				mail_bodies_free(bodies, nb);
		}
	}
	agbuf_free(&key);
	mail_view_close(v);
	(void)im;
	return rc;
}

/* Reads a whole file. */
static int read_file(const char *path, struct agbuf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[65536];
	ssize_t r;
	while ((r = read(fd, buf, sizeof(buf))) > 0)
		agbuf_append(out, buf, (size_t)r);
	int saved = errno;
	close(fd);
	errno = saved;
	return r < 0 ? -1 : 0;
}

static int import_box(struct importer *im, struct source_box *b)
{
	struct ctl *c = im->c;
	char why[600];
	uint64_t t0 = ctl_now_ms(), imported0 = im->imported, skipped0 = im->skipped;
	int rc = mail_create(c->engine, im->user, b->mailbox, 0);
	if (rc == MAIL_EEXIST)
		rc = 0;
	char *shown = ctl_display_name(b->mailbox);
	const char *show = shown ? shown : b->mailbox;
	struct mail_mailbox *mb = NULL;
	if (rc == 0)
		rc = mail_mailbox_open(c->engine, im->user, b->mailbox, &mb);
	if (rc != 0) {
		progress_clear(&im->prog);
		ctl_error("%s: cannot open mailbox %s: %s", b->path, show, ctl_strerror(c, rc, why, sizeof(why)));
		free(shown);
		return -1;
	}
	/* rc: 0, an engine error (negative), or REPORTED */
	enum { REPORTED = 1 };
	struct keyset ks = { 0 };
	rc = existing_keys(im, mb, &ks);
	if (rc != 0) {
		progress_clear(&im->prog);
		ctl_error("%s: cannot read what mailbox %s holds: %s", b->path, show,
		          ctl_strerror(c, rc, why, sizeof(why)));
		rc = REPORTED;
	}
	struct agbuf key = AGBUF_INIT, raw = AGBUF_INIT;
	for (size_t i = 0; rc == 0 && i < b->n; i++) {
		if (ctl_interrupted())
			break;
		struct source_msg *sm = &b->msgs[i];
		struct batch_item *it = &im->items[im->n_items];
		memset(it, 0, sizeof(*it));
		it->source_len = sm->len;
		struct agbuf kw = AGBUF_INIT;
		uint32_t flags = 0;
		if (b->kind == SRC_MBOX) {
			normalise(b->map + sm->off, (size_t)sm->len, im->unquote, &it->bytes);
			mbox_flags(it->bytes.data ? it->bytes.data : "", it->bytes.len, &flags, &kw);
		} else {
			agbuf_reset(&raw);
			if (read_file(sm->file, &raw) != 0) {
				if (errno == ENOENT) {
					/* moved (a flag change in a live Maildir): the
					 * next run finds it under its new name */
					progress_clear(&im->prog);
					printf("skipped %s: gone meanwhile\n", sm->file);
					agbuf_free(&kw);
					continue;
				}
				progress_clear(&im->prog);
				ctl_error("%s: %s", sm->file, strerror(errno));
				rc = REPORTED;
				agbuf_free(&kw);
				break;
			}
			normalise(raw.data ? raw.data : "", raw.len, 0, &it->bytes);
			flags = sm->flags;
			if (sm->keywords)
				agbuf_puts(&kw, sm->keywords);
		}
		if (it->bytes.data == NULL)
			agbuf_puts(&it->bytes, "");
		/* line ends stored as APPEND stores them (mime_save_line_ends) */
		it->bytes.len = mime_save_line_ends(it->bytes.data, it->bytes.data, it->bytes.len);
		it->bytes.data[it->bytes.len] = '\0';
		message_key(it->bytes.data, it->bytes.len, it->bytes.len, &key);
		if (keyset_take(&ks, key.data)) {
			im->skipped++;
			im->prog.done_msgs++;
			im->prog.done_bytes += sm->len;
			agbuf_free(&kw);
			item_clear(it);
			progress_draw(&im->prog, b->mailbox, 0);
			continue;
		}
		it->keyword_text = kw.len ? agbuf_steal(&kw, NULL) : NULL;
		agbuf_free(&kw);
		it->mime = mime_parse(it->bytes.data, it->bytes.len);
		if (it->mime == NULL || split_keywords(it) != 0) {
			item_clear(it);
			rc = AEROGRAM_EINTERNAL;
			break;
		}
		mime_serial_encode(it->mime, &it->structure);
		it->nm.body = (const uint8_t *)it->bytes.data;
		it->nm.body_len = it->bytes.len;
		it->nm.header = (const uint8_t *)it->bytes.data;
		it->nm.header_len = it->mime->root->body_offset <= it->bytes.len ? (size_t)it->mime->root->body_offset
		                                                                 : it->bytes.len;
		it->nm.bodystructure = (const uint8_t *)it->structure.data;
		it->nm.bodystructure_len = it->structure.len;
		it->nm.internal_date_ms = sm->date_ms;
		it->nm.flags = flags;
		it->nm.keywords = it->keywords;
		it->nm.n_keywords = it->n_keywords;
		im->n_items++;
		im->batch_bytes += it->bytes.len;
		if (im->n_items >= im->batch_max || im->batch_bytes >= BATCH_BYTES)
			rc = flush_batch(im, mb, b->mailbox);
	}
	if (rc == 0 && !ctl_interrupted())
		rc = flush_batch(im, mb, b->mailbox);
	for (size_t i = 0; i < im->n_items; i++)
		item_clear(&im->items[i]);
	im->n_items = 0;
	im->batch_bytes = 0;
	if (rc < 0) {
		progress_clear(&im->prog);
		ctl_error("%s: cannot add to mailbox %s: %s", b->path, show, ctl_strerror(c, rc, why, sizeof(why)));
	}
	agbuf_free(&key);
	agbuf_free(&raw);
	keyset_free(&ks);
	mail_mailbox_close(mb);
	uint64_t ms = ctl_now_ms() - t0;
	char size[32];
	human_bytes(b->bytes, size, sizeof(size));
	progress_clear(&im->prog);
	uint64_t added = im->imported - imported0, there = im->skipped - skipped0;
	printf("%s: %zu messages (%s) from %s: %llu added, %llu already there, %.2f s, %.0f messages/s%s\n", show,
	       b->n, size, b->path, (unsigned long long)added, (unsigned long long)there, (double)ms / 1000.0,
	       ms ? (double)(added + there) * 1000.0 / (double)ms : 0.0, ctl_interrupted() ? " (interrupted)" : "");
	fflush(stdout);
	progress_draw(&im->prog, b->mailbox, 1);
	free(shown);
	return rc == 0 ? 0 : -1;
}

static const char import_usage[] = "usage: aerogramctl import NAME [--mailbox BOX] [--batch N] [--keep-from-quoting] PATH";

int ctl_cmd_import(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { "mailbox", required_argument, NULL, 'm' },
		                              { "batch", required_argument, NULL, 'b' },
		                              { "keep-from-quoting", no_argument, NULL, 'k' },
		                              { 0, 0, 0, 0 } };
	const char *mailbox = NULL;
	long batch = DEFAULT_BATCH;
	int unquote = 1, o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'm': mailbox = optarg; break;
		case 'b': {
			char *end;
			batch = strtol(optarg, &end, 10);
			if (*end != '\0' || batch < 1 || batch > 10000) {
				ctl_error("--batch: a number of messages from 1 to 10000");
				return 2;
			}
			break;
		}
		case 'k': unquote = 0; break;
		default: ctl_error("%s", import_usage); return 2;
		}
	}
	if (optind != argc - 2) {
		ctl_error("%s", import_usage);
		return 2;
	}
	const char *user = argv[optind], *path = argv[optind + 1];
	char err[1200];
	if (ctl_user_known(c, user, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return 1;
	}
	char *box = mailbox ? ctl_mailbox_name(mailbox) : strdup("INBOX");
	if (box == NULL) {
		ctl_error("%s: not a mailbox name (UTF-8, levels separated by '%c')", mailbox ? mailbox : "",
		          MAIL_DELIMITER);
		return 1;
	}
	struct stat st;
	struct sources src = { 0 };
	int rc = 0;
	if (stat(path, &st) != 0) {
		snprintf(err, sizeof(err), "%s: %s", path, strerror(errno));
		rc = -1;
	} else if (S_ISREG(st.st_mode)) {
		rc = add_source(&src, SRC_MBOX, path, box, err, sizeof(err));
	} else if (S_ISDIR(st.st_mode) && is_maildir(path)) {
		rc = add_maildir_tree(&src, path, box, mailbox ? box : NULL, err, sizeof(err));
	} else if (S_ISDIR(st.st_mode)) {
		rc = add_tree(&src, path, mailbox ? box : NULL, 0, err, sizeof(err));
		if (rc == 0 && src.n == 0) {
			snprintf(err, sizeof(err), "%s: no mbox file and no Maildir in it", path);
			rc = -1;
		}
	} else {
		snprintf(err, sizeof(err), "%s: neither a file nor a directory", path);
		rc = -1;
	}
	free(box);
	if (rc != 0) {
		ctl_error("%s", err);
		sources_free(&src);
		return 1;
	}
	struct importer im = { .c = c, .user = user, .unquote = unquote, .batch_max = (size_t)batch };
	const char *stop = getenv("AEROGRAMCTL_STOP_AFTER");
	if (stop != NULL)
		im.stop_after = strtoull(stop, NULL, 10);
	im.items = calloc((size_t)batch + 1, sizeof(*im.items));
	if (im.items == NULL) {
		ctl_error("out of memory");
		sources_free(&src);
		return 1;
	}
	im.prog.tty = isatty(STDERR_FILENO);
	im.prog.total_msgs = src.msgs;
	im.prog.total_bytes = src.bytes;
	im.prog.start_ms = ctl_now_ms();
	ctl_catch_interrupt();
	for (size_t i = 0; rc == 0 && i < src.n && !ctl_interrupted(); i++)
		rc = import_box(&im, &src.boxes[i]);
	progress_clear(&im.prog);
	uint64_t ms = ctl_now_ms() - im.prog.start_ms;
	char size[32];
	human_bytes(im.imported_bytes, size, sizeof(size));
	int status = rc != 0 ? 1 : ctl_interrupted() ? 130 : 0;
	printf("%s for %s: %llu messages added (%s), %llu already there, in %zu mailboxes, %.2f s, %.0f messages/s\n",
	       status == 130 ? "interrupted" : status ? "failed" : "imported", user, (unsigned long long)im.imported,
	       size, (unsigned long long)im.skipped, src.n, (double)ms / 1000.0,
	       ms ? (double)(im.imported + im.skipped) * 1000.0 / (double)ms : 0.0);
	if (status == 130)
		ctl_error("interrupted: run the same command again to import the rest (nothing is added twice)");
	else if (status == 1)
		ctl_error("import failed: run the same command again once the problem is fixed (nothing is added twice)");
	free(im.items);
	sources_free(&src);
	return status;
}

/* ------------------------------------------------------------ export */

/* The envelope sender of the From_ line: Return-Path, else the From
 * address, else MAILER-DAEMON. */
static void envelope_sender(const char *h, size_t hl, struct agbuf *out)
{
	struct agbuf v = AGBUF_INIT;
	int have = header_field(h, hl, "Return-Path", 1, &v) && v.len > 0;
	if (!have) {
		agbuf_reset(&v);
		have = header_field(h, hl, "From", 0, &v) && v.len > 0;
	}
	const char *s = v.data ? v.data : "";
	const char *lt = strrchr(s, '<');
	size_t len;
	if (lt != NULL) {
		s = lt + 1;
		len = strcspn(s, ">");
	} else {
		len = strlen(s);
	}
	int ok = have && len > 0 && len < 256 && memchr(s, '@', len) != NULL;
	for (size_t i = 0; ok && i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			ok = 0;
	if (ok)
		agbuf_append(out, s, len);
	else
		agbuf_puts(out, "MAILER-DAEMON");
	agbuf_free(&v);
}

static void write_status(uint32_t flags, const char *keywords, struct agbuf *out)
{
	agbuf_printf(out, "Status: %sO\n", flags & MAIL_F_SEEN ? "R" : "");
	agbuf_puts(out, "X-Status: ");
	if (flags & MAIL_F_ANSWERED)
		agbuf_putc(out, 'A');
	if (flags & MAIL_F_FLAGGED)
		agbuf_putc(out, 'F');
	if (flags & MAIL_F_DRAFT)
		agbuf_putc(out, 'T');
	if (flags & MAIL_F_DELETED)
		agbuf_putc(out, 'D');
	agbuf_putc(out, '\n');
	if (keywords != NULL && keywords[0])
		agbuf_printf(out, "X-Keywords: %s\n", keywords);
}

/* One message in mboxrd: the From_ line, the lines with LF ends and
 * ">*From " quoted once more, the Status headers when asked (at the end
 * of the header), a blank line. */
static void export_one(const char *data, size_t len, uint64_t date_ms, uint32_t flags, const char *keywords,
                       int with_flags, struct agbuf *out)
{
	size_t hl = header_length(data, len);
	agbuf_puts(out, "From ");
	envelope_sender(data, hl, out);
	time_t t = (time_t)(date_ms / 1000);
	struct tm tm;
	char date[64];
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
	agbuf_printf(out, " %s\n", date);
	int status_written = !with_flags;
	size_t i = 0;
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - data) : len;
		size_t line_end = nl && end > i && data[end - 1] == '\r' ? end - 1 : end;
		if (!status_written && line_end == i && i < hl) {
			/* the blank line that ends the header */
			write_status(flags, keywords, out);
			status_written = 1;
		}
		size_t j = i;
		while (j < line_end && data[j] == '>')
			j++;
		if (line_end - j >= 5 && memcmp(data + j, "From ", 5) == 0)
			agbuf_putc(out, '>');
		agbuf_append(out, data + i, line_end - i);
		agbuf_putc(out, '\n');
		i = nl ? end + 1 : len;
	}
	if (!status_written) /* a message that is all header */
		write_status(flags, keywords, out);
	agbuf_putc(out, '\n');
}

static const char export_usage[] = "usage: aerogramctl export NAME BOX FILE.mbox [--flags] [--force]   (FILE - is standard output)";

int ctl_cmd_export(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { "flags", no_argument, NULL, 'f' },
		                              { "force", no_argument, NULL, 'F' },
		                              { 0, 0, 0, 0 } };
	int with_flags = 0, force = 0, o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'f')
			with_flags = 1;
		else if (o == 'F')
			force = 1;
		else {
			ctl_error("%s", export_usage);
			return 2;
		}
	}
	if (optind != argc - 3) {
		ctl_error("%s", export_usage);
		return 2;
	}
	const char *user = argv[optind], *boxarg = argv[optind + 1], *file = argv[optind + 2];
	char err[1200], why[600];
	if (ctl_user_known(c, user, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return 1;
	}
	char *box = ctl_mailbox_name(boxarg);
	if (box == NULL) {
		ctl_error("%s: not a mailbox name", boxarg);
		return 1;
	}
	int to_stdout = strcmp(file, "-") == 0;
	if (!to_stdout && !force && access(file, F_OK) == 0) {
		ctl_error("%s exists already (--force replaces it)", file);
		free(box);
		return 1;
	}
	struct mail_mailbox *mb;
	int rc = mail_mailbox_open(c->engine, user, box, &mb);
	if (rc != 0) {
		ctl_error("%s: mailbox %s: %s", user, boxarg, ctl_strerror(c, rc, why, sizeof(why)));
		free(box);
		return 1;
	}
	struct mail_view *v;
	rc = mail_view_open(mb, 0, &v);
	mail_mailbox_close(mb);
	if (rc != 0) {
		ctl_error("%s: mailbox %s: %s", user, boxarg, ctl_strerror(c, rc, why, sizeof(why)));
		free(box);
		return 1;
	}
	char tmp[4200] = "";
	int fd = STDOUT_FILENO;
	if (!to_stdout) {
		int w = snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", file);
		fd = w > 0 && (size_t)w < sizeof(tmp) ? mkostemp(tmp, O_CLOEXEC) : -1;
		if (fd < 0) {
			ctl_error("%s: cannot create it: %s", file, strerror(errno));
			mail_view_close(v);
			free(box);
			return 1;
		}
		fchmod(fd, 0600);
	}
	uint32_t n = mail_view_exists(v);
	uint64_t bytes = 0, written = 0, t0 = ctl_now_ms();
	struct agbuf out = AGBUF_INIT, kw = AGBUF_INIT;
	enum { CHUNK = 100 };
	uint32_t uids[CHUNK];
	const char *failed = NULL;
	for (uint32_t at = 0; failed == NULL && rc == 0 && at < n; at += CHUNK) {
		uint32_t k = n - at < CHUNK ? n - at : CHUNK;
		for (uint32_t i = 0; i < k; i++)
			uids[i] = mail_view_uid(v, at + i + 1);
		struct mail_summary *sums = NULL;
		struct mail_body *bodies = NULL;
		rc = mail_summaries(v, uids, k, &sums);
		if (rc == 0)
			rc = mail_bodies(v, uids, k, &bodies);
		for (uint32_t i = 0; rc == 0 && i < k; i++) {
			if (bodies[i].status != 0 || sums[i].status != 0)
				continue; /* expunged meanwhile */
			struct mail_msg_info info;
			memset(&info, 0, sizeof(info));
			mail_view_msg(v, at + i + 1, &info);
			agbuf_reset(&kw);
			for (unsigned bit = 0; bit < MAIL_MAX_KEYWORDS; bit++) {
				const char *name = (info.keywords >> bit) & 1 ? mail_view_keyword(v, bit) : NULL;
				if (name != NULL)
					agbuf_printf(&kw, "%s%s", kw.len ? " " : "", name);
			}
			agbuf_reset(&out);
			export_one((const char *)bodies[i].data, bodies[i].len, sums[i].internal_date_ms, info.flags,
			           kw.data, with_flags, &out);
			if (ctl_write_all(fd, out.data, out.len) != 0)
				failed = strerror(errno);
			bytes += bodies[i].len;
			written++;
		}
		if (sums)
			mail_summaries_free(sums, k);
		if (bodies)
			mail_bodies_free(bodies, k);
	}
	agbuf_free(&out);
	agbuf_free(&kw);
	mail_view_close(v);
	free(box);
	if (rc != 0) {
		ctl_error("%s: mailbox %s: %s", user, boxarg, ctl_strerror(c, rc, why, sizeof(why)));
		if (!to_stdout) {
			close(fd);
			unlink(tmp);
		}
		return 1;
	}
	if (!to_stdout && failed == NULL && (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, file) != 0))
		failed = strerror(errno);
	else if (!to_stdout && failed != NULL)
		close(fd);
	if (failed != NULL) {
		ctl_error("%s: cannot write it: %s", file, failed);
		if (!to_stdout)
			unlink(tmp);
		return 1;
	}
	uint64_t ms = ctl_now_ms() - t0;
	char size[32];
	human_bytes(bytes, size, sizeof(size));
	fprintf(to_stdout ? stderr : stdout, "exported %llu messages (%s) of %s %s to %s in %.2f s\n",
	        (unsigned long long)written, size, user, boxarg, file, (double)ms / 1000.0);
	return 0;
}
