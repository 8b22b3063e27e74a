/* ctl_store.c - aerogramctl's store subcommands: undelete and copy-store
 * (see ctl_store.h). Everything goes through the mail engine's API, so the
 * same code serves every driver (sqlite to garage, garage to sqlite, ...). */
#include "host/ctl_store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "host/users.h"

/* ------------------------------------------------------------------ time */

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* "2025-06-01 14:30:00 UTC" (or local with the zone's name) into out. */
static void format_time(uint64_t ms, char *out, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(out, len, "%llu ms", (unsigned long long)ms);
}

int ctl_parse_since(const char *text, uint64_t now, uint64_t *out)
{
	size_t len = strlen(text);
	if (len == 0 || len > 64)
		return -1;
	/* a duration ago: digits and one unit */
	size_t digits = strspn(text, "0123456789");
	if (digits > 0 && digits == len - 1 && strchr("smhdw", text[len - 1]) != NULL) {
		errno = 0;
		unsigned long long v = strtoull(text, NULL, 10);
		uint64_t unit = text[len - 1] == 's' ? 1000 : text[len - 1] == 'm' ? 60000
		                : text[len - 1] == 'h' ? 3600000 : text[len - 1] == 'd' ? 86400000 : 604800000;
		if (errno != 0 || v > UINT64_MAX / unit)
			return -1;
		uint64_t d = (uint64_t)v * unit;
		*out = d < now ? now - d : 0;
		return 0;
	}
	/* ISO 8601: a date, optionally a time (T or a space), optionally a zone */
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int y, mo, d, h = 0, mi = 0, s = 0, n = 0;
	if (sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	const char *p = text + n;
	if (*p == 'T' || *p == ' ') {
		int m = 0;
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5)
			return -1;
		p += 1 + m;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &s, &m) != 1 || m != 2)
				return -1;
			p += 1 + m;
		}
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || h < 0 || mi < 0 ||
	    s < 0)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = s;
	time_t t;
	if (*p == '\0') {
		tm.tm_isdst = -1;
		t = mktime(&tm); /* no zone: local time */
	} else {
		long off = 0;
		if (*p == 'Z' && p[1] == '\0') {
			off = 0;
		} else if ((*p == '+' || *p == '-') && strlen(p) >= 3) {
			int oh = 0, om = 0, m = 0;
			if (sscanf(p + 1, "%2d%n", &oh, &m) != 1 || m != 2)
				return -1;
			const char *q = p + 3;
			if (*q == ':')
				q++;
			if (*q != '\0') {
				if (sscanf(q, "%2d%n", &om, &m) != 1 || m != 2 || q[2] != '\0')
					return -1;
			}
			if (oh > 23 || om > 59)
				return -1;
			off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
		} else {
			return -1;
		}
		t = timegm(&tm);
		if (t != (time_t)-1)
			t -= off;
	}
	if (t == (time_t)-1 || t < 0)
		return -1;
	*out = (uint64_t)t * 1000;
	return 0;
}

/* -------------------------------------------------------------- undelete */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* A store error code in words. */
static const char *code_text(int rc)
{
	switch (rc) {
	case AEROGRAM_ENOTFOUND: return "not found";
	case AEROGRAM_EUNAVAILABLE: return "the store is unavailable";
	case AEROGRAM_EPERM: return "permission denied by the store";
	case AEROGRAM_EINVAL: return "invalid name";
	case MAIL_EEXIST: return "the name exists";
	case AEROGRAM_EINTERNAL: return "internal error (out of memory?)";
	default: return "store error";
	}
}

static void flag_names(uint32_t flags, char *out, size_t len)
{
	static const struct { uint32_t bit; const char *name; } names[] = {
		{ MAIL_F_SEEN, "\\Seen" }, { MAIL_F_ANSWERED, "\\Answered" }, { MAIL_F_FLAGGED, "\\Flagged" },
		{ MAIL_F_DELETED, "\\Deleted" }, { MAIL_F_DRAFT, "\\Draft" },
	};
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (flags & names[i].bit)
			snprintf(out + strlen(out), len - strlen(out), "%s%s", out[0] ? " " : "", names[i].name);
}

int ctl_undelete(struct mail_engine *eng, const char *user, const char *mailbox, uint64_t since_ms, FILE *out,
                 size_t *restored, char *err, size_t errlen)
{
	if (restored)
		*restored = 0;
	struct mail_mailbox *mb = NULL;
	int rc = mail_mailbox_open(eng, user, mailbox, &mb);
	if (rc == AEROGRAM_ENOTFOUND) {
		set_err(err, errlen, "%s has no mailbox %s", user, mailbox);
		return -1;
	}
	if (rc != 0) {
		set_err(err, errlen, "cannot open %s of %s: %s (%d)", mailbox, user, code_text(rc), rc);
		return -1;
	}
	size_t n = 0;
	struct mail_restored *list = NULL;
	rc = mail_mailbox_undelete(mb, since_ms, &n, &list);
	mail_mailbox_close(mb);
	if (rc != 0) {
		set_err(err, errlen, "undelete in %s of %s: %s (%d)", mailbox, user, code_text(rc), rc);
		return -1;
	}
	for (size_t i = 0; out && i < n; i++) {
		char when[64], date[64], flags[80];
		format_time(list[i].expunged_ms, when, sizeof(when));
		format_time(list[i].internal_date_ms, date, sizeof(date));
		flag_names(list[i].flags, flags, sizeof(flags));
		fprintf(out, "UID %u -> %u: %llu bytes, received %s, expunged %s%s%s%s\n", list[i].old_uid, list[i].uid,
		        (unsigned long long)list[i].size, date, when, flags[0] ? ", flags (" : "", flags,
		        flags[0] ? ")" : "");
	}
	if (out) {
		if (n)
			fprintf(out, "%zu message%s restored into %s of %s\n", n, n == 1 ? "" : "s", mailbox, user);
		else
			fprintf(out, "nothing to restore in %s of %s (expunged messages are kept as long as "
			             "[storage] expunge_retention says)\n", mailbox, user);
	}
	free(list);
	if (restored)
		*restored = n;
	return 0;
}

static void undelete_usage(FILE *f)
{
	fprintf(f, "usage: aerogramctl [-c FILE] undelete NAME BOX [--since TIME]\n"
	           "  Brings back the messages of mailbox BOX of user NAME expunged since TIME (default: all\n"
	           "  those still kept, [storage] expunge_retention), with new UIDs, their flags but \\Deleted,\n"
	           "  keywords and dates. TIME: 2025-06-01, 2025-06-01T14:30[:00][Z|+02:00] (local time\n"
	           "  without a zone) or a duration ago: 30m, 2h, 7d, 1w. Safe while daemons run.\n");
}

int ctl_cmd_undelete(struct ctl *c, int argc, char **argv)
{
	const char *user = NULL, *box = NULL, *since_text = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			undelete_usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--since") == 0) {
			if (i + 1 >= argc || since_text) {
				fprintf(stderr, "aerogramctl: undelete: --since needs one TIME (2h, 2025-06-01T14:30)\n");
				return 2;
			}
			since_text = argv[++i];
		} else if (strncmp(argv[i], "--since=", 8) == 0 && since_text == NULL) {
			since_text = argv[i] + 8;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "aerogramctl: undelete: unknown option %s (see --help)\n", argv[i]);
			return 2;
		} else if (user == NULL) {
			user = argv[i];
		} else if (box == NULL) {
			box = argv[i];
		} else {
			fprintf(stderr, "aerogramctl: undelete: one NAME and one BOX only (see --help)\n");
			return 2;
		}
	}
	if (user == NULL || box == NULL) {
		undelete_usage(stderr);
		return 2;
	}
	uint64_t since = 0;
	if (since_text && ctl_parse_since(since_text, now_ms(), &since) != 0) {
		fprintf(stderr, "aerogramctl: undelete: --since %s: not a time (2025-06-01, 2025-06-01T14:30, "
		                "2025-06-01T14:30:00Z) nor a duration (30m, 2h, 7d)\n", since_text);
		return 2;
	}
	char err[512];
	if (ctl_undelete(c->engine, user, box, since, stdout, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "aerogramctl: undelete: %s\n", err);
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------ copy-store */

int ctl_users_from_file(const char *path, char ***names, size_t *n, char *err, size_t errlen)
{
	*names = NULL;
	*n = 0;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct ag_users *users = NULL;
	int rc = ag_users_parse(f, path, &users, err, errlen);
	fclose(f);
	if (rc != 0)
		return -1;
	size_t count = ag_users_count(users);
	char **v = calloc(count ? count : 1, sizeof(char *));
	for (size_t i = 0; v && i < count; i++) {
		v[i] = strdup(ag_users_name(users, i));
		if (v[i] == NULL) {
			for (size_t k = 0; k < i; k++)
				free(v[k]);
			free(v);
			v = NULL;
		}
	}
	ag_users_unref(users);
	if (v == NULL) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	*names = v;
	*n = count;
	return 0;
}

/* What identifies a message across stores: its size, internal date and
 * header block (a 64-bit digest of them). */
static uint64_t message_key(uint64_t size, uint64_t date, const uint8_t *header, size_t header_len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < header_len; i++) {
		h ^= header[i];
		h *= 0x100000001b3ull;
	}
	h ^= size * 0x9e3779b97f4a7c15ull;
	h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ull;
	h ^= date * 0x94d049bb133111ebull;
	return h ^ (h >> 29);
}

/* The keys of the messages already in a mailbox, sorted; a found one is
 * used up (two identical messages in the source need two). */
struct keyset {
	uint64_t *k;
	uint8_t *used;
	size_t n;
};

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int keyset_take(struct keyset *ks, uint64_t key)
{
	size_t lo = 0, hi = ks->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ks->k[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < ks->n && ks->k[lo] == key; lo++)
		if (!ks->used[lo]) {
			ks->used[lo] = 1;
			return 1;
		}
	return 0;
}

/* Every UID of a view, in order; *uids owned by the caller. */
static int view_uids(struct mail_view *v, uint32_t **uids, size_t *n)
{
	*n = mail_view_exists(v);
	*uids = malloc((*n ? *n : 1) * sizeof(uint32_t));
	if (*uids == NULL)
		return AEROGRAM_EINTERNAL;
	for (size_t i = 0; i < *n; i++)
		(*uids)[i] = mail_view_uid(v, (uint32_t)i + 1);
	return 0;
}

#define SUMMARY_CHUNK 1000

/* Messages and bytes of a mailbox (a fresh view), and optionally the keys
 * of its messages. */
static int mailbox_census(struct mail_mailbox *mb, uint64_t *count, uint64_t *bytes, struct keyset *ks)
{
	*count = *bytes = 0;
	int rc = mail_mailbox_sync(mb);
	struct mail_view *v = NULL;
	if (rc == 0)
		rc = mail_view_open(mb, 0, &v);
	uint32_t *uids = NULL;
	size_t n = 0;
	if (rc == 0)
		rc = view_uids(v, &uids, &n);
	if (rc == 0 && ks) {
		ks->k = malloc((n ? n : 1) * sizeof(uint64_t));
		ks->used = calloc(n ? n : 1, 1);
		ks->n = 0;
		if (ks->k == NULL || ks->used == NULL)
			rc = AEROGRAM_EINTERNAL;
	}
	for (size_t i = 0; rc == 0 && i < n; i += SUMMARY_CHUNK) {
		size_t k = n - i < SUMMARY_CHUNK ? n - i : SUMMARY_CHUNK;
		struct mail_summary *sm = NULL;
		rc = mail_summaries(v, uids + i, k, &sm);
		for (size_t j = 0; rc == 0 && j < k; j++) {
			if (sm[j].status != 0)
				continue; /* expunged meanwhile */
			(*count)++;
			*bytes += sm[j].size;
			if (ks)
				ks->k[ks->n++] = message_key(sm[j].size, sm[j].internal_date_ms, sm[j].header,
				                             sm[j].header_len);
		}
		if (rc == 0)
			mail_summaries_free(sm, k);
	}
	if (rc == 0 && ks)
		qsort(ks->k, ks->n, sizeof(uint64_t), u64_cmp);
	free(uids);
	mail_view_close(v);
	return rc;
}

struct copy_run {
	struct mail_engine *src, *dst;
	const struct ctl_copy_options *opt;
	struct ctl_copy_stats *st;
	char *err;
	size_t errlen;
	int stopped; /* the limit was reached */
};

#define BATCH_BYTES (16u << 20)

/* Appends to dst the messages of uids[0..n) of the source view that the
 * destination lacks. */
static int copy_batch(struct copy_run *r, struct mail_view *sv, struct mail_mailbox *dmb, const uint32_t *uids,
                      size_t n, struct keyset *have, uint64_t *copied, uint64_t *skipped)
{
	struct mail_summary *sm = NULL;
	struct mail_body *bd = NULL;
	int rc = mail_summaries(sv, uids, n, &sm);
	if (rc == 0)
		rc = mail_bodies(sv, uids, n, &bd);
	struct mail_new_message *msgs = calloc(n, sizeof(*msgs));
	const char **kw = calloc(n * MAIL_MAX_KEYWORDS, sizeof(char *));
	if (rc == 0 && (msgs == NULL || kw == NULL))
		rc = AEROGRAM_EINTERNAL;
	size_t k = 0;
	uint64_t k_bytes = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (sm[i].status != 0 || bd[i].status != 0)
			continue; /* expunged in the source meanwhile */
		if (keyset_take(have, message_key(sm[i].size, sm[i].internal_date_ms, sm[i].header,
		                                  sm[i].header_len))) {
			(*skipped)++;
			continue;
		}
		if (r->opt->limit && r->st->copied + k >= r->opt->limit) {
			r->stopped = 1;
			break;
		}
		struct mail_msg_info info;
		uint32_t seq = mail_view_seq(sv, uids[i]);
		if (seq == 0 || mail_view_msg(sv, seq, &info) != 0)
			continue;
		struct mail_new_message *m = &msgs[k];
		const char **mk = kw + k * MAIL_MAX_KEYWORDS;
		m->body = bd[i].data;
		m->body_len = bd[i].len;
		m->internal_date_ms = sm[i].internal_date_ms;
		m->flags = info.flags & MAIL_F_SYSTEM;
		m->header = sm[i].header;
		m->header_len = sm[i].header_len;
		m->bodystructure = sm[i].bodystructure;
		m->bodystructure_len = sm[i].bodystructure_len;
		for (unsigned b = 0; b < MAIL_MAX_KEYWORDS; b++)
			if ((info.keywords >> b) & 1) {
				const char *name = mail_view_keyword(sv, b);
				if (name)
					mk[m->n_keywords++] = name;
			}
		m->keywords = mk;
		k_bytes += bd[i].len;
		k++;
	}
	if (rc == 0 && k) {
		/* one log entry for the batch; 0 would be "now" to the engine */
		for (size_t i = 0; i < k; i++)
			if (msgs[i].internal_date_ms == 0)
				msgs[i].internal_date_ms = 1;
		rc = mail_append_many(dmb, msgs, k, NULL, NULL);
		if (rc == 0) {
			*copied += k;
			r->st->copied += k;
			r->st->bytes_copied += k_bytes;
		}
	}
	free(msgs);
	free(kw);
	if (sm)
		mail_summaries_free(sm, n);
	if (bd)
		mail_bodies_free(bd, n);
	return rc;
}

static int copy_mailbox(struct copy_run *r, const char *user, const char *name)
{
	const struct ctl_copy_options *opt = r->opt;
	FILE *out = opt->out;
	struct mail_mailbox *smb = NULL, *dmb = NULL;
	struct mail_view *sv = NULL;
	struct keyset have = { NULL, NULL, 0 };
	uint32_t *uids = NULL;
	size_t n = 0;
	uint64_t copied = 0, skipped = 0, dcount, dbytes;
	const char *what = "open the source mailbox";
	int rc = mail_mailbox_open(r->src, user, name, &smb);
	if (rc == 0) {
		what = "open the destination mailbox";
		rc = mail_mailbox_open_flags(r->dst, user, name, MAIL_OPEN_FOR_ADD, &dmb);
	}
	if (rc == 0) {
		what = "read the destination mailbox";
		rc = mailbox_census(dmb, &dcount, &dbytes, &have);
	}
	if (rc == 0) {
		what = "read the source mailbox";
		rc = mail_view_open(smb, 0, &sv);
	}
	if (rc == 0)
		rc = view_uids(sv, &uids, &n);
	size_t batch = opt->batch ? opt->batch : 100;
	/* batches of `batch` messages, fewer when their summaries (cached by
	 * the engine for the batch's own read) say they weigh more than
	 * BATCH_BYTES: the bodies of a batch are in memory at once */
	for (size_t i = 0; rc == 0 && i < n && !r->stopped;) {
		size_t k = n - i < batch ? n - i : batch;
		struct mail_summary *sm = NULL;
		what = "read the source mailbox";
		rc = mail_summaries(sv, uids + i, k, &sm);
		if (rc != 0)
			break;
		uint64_t w = 0;
		size_t fit = 0;
		while (fit < k && (fit == 0 || w + sm[fit].size <= BATCH_BYTES))
			w += sm[fit++].size;
		mail_summaries_free(sm, k);
		what = "copy messages";
		rc = copy_batch(r, sv, dmb, uids + i, fit, &have, &copied, &skipped);
		i += fit;
	}
	uint64_t scount = 0, sbytes = 0;
	if (rc == 0 && !r->stopped) {
		what = "verify";
		rc = mailbox_census(smb, &scount, &sbytes, NULL);
		if (rc == 0)
			rc = mailbox_census(dmb, &dcount, &dbytes, NULL);
	}
	if (rc == 0) {
		r->st->mailboxes++;
		r->st->skipped += skipped;
		if (!r->stopped) {
			r->st->messages += scount;
			r->st->bytes += sbytes;
		}
		if (r->stopped) {
			if (out)
				fprintf(out, "%s/%s: stopped after %llu copied (%llu already there)\n", user, name,
				        (unsigned long long)copied, (unsigned long long)skipped);
		} else if (scount != dcount || sbytes != dbytes) {
			r->st->mismatches++;
			if (out)
				fprintf(out, "%s/%s: MISMATCH: source %llu messages, %llu bytes; destination %llu messages, "
				             "%llu bytes (%llu copied, %llu already there)\n",
				        user, name, (unsigned long long)scount, (unsigned long long)sbytes,
				        (unsigned long long)dcount, (unsigned long long)dbytes, (unsigned long long)copied,
				        (unsigned long long)skipped);
		} else if (out) {
			fprintf(out, "%s/%s: %llu messages, %llu bytes: %llu copied, %llu already there; verified\n", user,
			        name, (unsigned long long)scount, (unsigned long long)sbytes, (unsigned long long)copied,
			        (unsigned long long)skipped);
		}
	} else {
		set_err(r->err, r->errlen, "%s/%s: cannot %s: %s (%d)", user, name, what, code_text(rc), rc);
	}
	free(uids);
	free(have.k);
	free(have.used);
	mail_view_close(sv);
	if (smb)
		mail_mailbox_close(smb);
	if (dmb)
		mail_mailbox_close(dmb);
	return rc;
}

static const struct mail_mailbox_info *find_info(const struct mail_mailbox_info *l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].name, name) == 0 ||
		    (strcasecmp(name, "INBOX") == 0 && strcasecmp(l[i].name, "INBOX") == 0))
			return &l[i];
	return NULL;
}

/* Makes dst's mailbox list look like src's: the mailboxes, their
 * special-use attributes, the subscriptions; a mailbox only dst has is
 * deleted if it is empty (the defaults a first listing creates), else
 * reported. */
static int copy_list(struct copy_run *r, const char *user, const struct mail_mailbox_info *sl, size_t sn)
{
	struct mail_mailbox_info *dl = NULL;
	size_t dn = 0;
	int rc = mail_list(r->dst, user, &dl, &dn);
	for (size_t i = 0; rc == 0 && i < sn; i++) {
		if (!sl[i].exists)
			continue;
		const struct mail_mailbox_info *d = find_info(dl, dn, sl[i].name);
		if (d && d->exists)
			continue;
		rc = mail_create(r->dst, user, sl[i].name, sl[i].special_use);
		if (rc == MAIL_EEXIST)
			rc = 0;
		if (rc != 0)
			set_err(r->err, r->errlen, "%s: cannot create %s in the destination: %s (%d)", user, sl[i].name,
			        code_text(rc), rc);
	}
	mail_list_free(dl, dn);
	dl = NULL;
	dn = 0;
	if (rc == 0)
		rc = mail_list(r->dst, user, &dl, &dn);
	for (size_t i = 0; rc == 0 && i < sn; i++) {
		const struct mail_mailbox_info *d = find_info(dl, dn, sl[i].name);
		if (sl[i].exists && d && d->special_use != sl[i].special_use) {
			rc = mail_set_special_use(r->dst, user, sl[i].name, sl[i].special_use);
			if (rc != 0)
				set_err(r->err, r->errlen, "%s: cannot set the special use of %s: %s (%d)", user, sl[i].name,
				        code_text(rc), rc);
		}
		if (rc == 0 && (d ? d->subscribed : 0) != sl[i].subscribed) {
			rc = mail_subscribe(r->dst, user, sl[i].name, sl[i].subscribed);
			if (rc != 0)
				set_err(r->err, r->errlen, "%s: cannot subscribe %s: %s (%d)", user, sl[i].name,
				        code_text(rc), rc);
		}
	}
	/* what only the destination has (the subscription of a name the
	 * source lists was set above) */
	for (size_t i = 0; rc == 0 && i < dn; i++) {
		const struct mail_mailbox_info *si = find_info(sl, sn, dl[i].name);
		if (si != NULL && si->exists)
			continue;
		if (si == NULL && dl[i].subscribed) {
			rc = mail_subscribe(r->dst, user, dl[i].name, 0);
			if (rc != 0) {
				set_err(r->err, r->errlen, "%s: cannot unsubscribe %s: %s (%d)", user, dl[i].name,
				        code_text(rc), rc);
				break;
			}
		}
		if (!dl[i].exists || strcasecmp(dl[i].name, "INBOX") == 0)
			continue;
		struct mail_mailbox *mb = NULL;
		struct mail_status st = { 0 };
		int orc = mail_mailbox_open(r->dst, user, dl[i].name, &mb);
		if (orc == 0) {
			mail_mailbox_status(mb, &st);
			mail_mailbox_close(mb);
		}
		if (orc == 0 && st.exists == 0)
			orc = mail_delete(r->dst, user, dl[i].name);
		else if (orc == 0 && r->opt->out)
			fprintf(r->opt->out, "%s/%s: only in the destination, with %u messages: left alone\n", user,
			        dl[i].name, st.exists);
		(void)orc; /* a name with children (MAIL_ECHILDREN) stays: nothing is lost */
	}
	mail_list_free(dl, dn);
	return rc;
}

static int copy_user(struct copy_run *r, const char *user)
{
	struct mail_mailbox_info *sl = NULL;
	size_t sn = 0;
	int rc = mail_list(r->src, user, &sl, &sn);
	if (rc != 0) {
		set_err(r->err, r->errlen, "%s: cannot list the source mailboxes: %s (%d)", user, code_text(rc), rc);
		return rc;
	}
	rc = copy_list(r, user, sl, sn);
	for (size_t i = 0; rc == 0 && i < sn && !r->stopped; i++)
		if (sl[i].exists)
			rc = copy_mailbox(r, user, sl[i].name);
	mail_list_free(sl, sn);
	if (rc == 0)
		r->st->users++;
	return rc;
}

static void human_bytes(uint64_t b, char *out, size_t len)
{
	if (b >= 10ull << 30)
		snprintf(out, len, "%.1f GB", (double)b / (1 << 30));
	else if (b >= 10u << 20)
		snprintf(out, len, "%.1f MB", (double)b / (1 << 20));
	else if (b >= 10u << 10)
		snprintf(out, len, "%.1f KB", (double)b / (1 << 10));
	else
		snprintf(out, len, "%llu bytes", (unsigned long long)b);
}

int ctl_copy_store(struct mail_engine *src, struct mail_engine *dst, const char *const *users, size_t n_users,
                   const struct ctl_copy_options *opt, struct ctl_copy_stats *st, char *err, size_t errlen)
{
	struct ctl_copy_options none = { 0 };
	struct ctl_copy_stats local;
	if (opt == NULL)
		opt = &none;
	if (st == NULL)
		st = &local;
	memset(st, 0, sizeof(*st));
	struct copy_run r = { src, dst, opt, st, err, errlen, 0 };
	double t0 = mono_s();
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n_users && !r.stopped; i++)
		rc = copy_user(&r, users[i]);
	st->seconds = mono_s() - t0;
	if (rc != 0)
		return -1;
	if (opt->out) {
		char b[32];
		human_bytes(st->bytes_copied, b, sizeof(b));
		fprintf(opt->out, "copy-store: %zu user%s, %zu mailbox%s: %llu messages copied (%s), %llu already there, "
		                  "in %.1f s (%.0f messages/s)%s\n",
		        st->users, st->users == 1 ? "" : "s", st->mailboxes, st->mailboxes == 1 ? "" : "es",
		        (unsigned long long)st->copied, b, (unsigned long long)st->skipped, st->seconds,
		        st->seconds > 0 ? (double)st->copied / st->seconds : 0.0,
		        r.stopped ? "; stopped by the limit: run again to go on"
		        : st->mismatches ? "" : "; every mailbox verified");
	}
	if (r.stopped)
		return 1;
	if (st->mismatches) {
		set_err(err, errlen, "%zu mailbox%s differ after the copy (see above): were they changed meanwhile? "
		                     "run again to copy what is missing", st->mismatches,
		        st->mismatches == 1 ? "" : "es");
		return -1;
	}
	return 0;
}

static void copy_usage(FILE *f)
{
	fprintf(f, "usage: aerogramctl [-c FILE] copy-store --to OTHER.conf [--user NAME] [--limit N]\n"
	           "  Copies every user's mailboxes (messages with their flags, keywords and dates,\n"
	           "  subscriptions, special-use attributes) from the store of this configuration into\n"
	           "  the store OTHER.conf names, e.g. from sqlite to garage. The users are those of this\n"
	           "  configuration's users file, or NAME. Run again after an interruption: what is\n"
	           "  already there is not copied twice. Each mailbox is verified at the end (message\n"
	           "  count and bytes). --limit N stops after N messages (exit status 3).\n");
}

int ctl_cmd_copy_store(struct ctl *c, int argc, char **argv)
{
	const char *to = NULL, *user = NULL;
	uint64_t limit = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			copy_usage(stdout);
			return 0;
		}
		const char **slot = strcmp(a, "--to") == 0 ? &to : strcmp(a, "--user") == 0 ? &user : NULL;
		if (slot || strcmp(a, "--limit") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "aerogramctl: copy-store: %s needs a value (see --help)\n", a);
				return 2;
			}
			const char *v = argv[++i];
			if (slot) {
				*slot = v;
			} else {
				char *end;
				errno = 0;
				unsigned long long l = strtoull(v, &end, 10);
				if (errno || end == v || *end || v[0] == '-' || l == 0) {
					fprintf(stderr, "aerogramctl: copy-store: --limit %s: not a positive number\n", v);
					return 2;
				}
				limit = l;
			}
		} else {
			fprintf(stderr, "aerogramctl: copy-store: unexpected %s (see --help)\n", a);
			return 2;
		}
	}
	if (to == NULL) {
		copy_usage(stderr);
		return 2;
	}
	char err[1024];
	char **names = NULL;
	size_t n = 0;
	if (user) {
		names = calloc(1, sizeof(char *));
		if (names == NULL || (names[0] = strdup(user)) == NULL) {
			free(names);
			fprintf(stderr, "aerogramctl: copy-store: out of memory\n");
			return 1;
		}
		n = 1;
	} else if (c->config.users_file == NULL) {
		fprintf(stderr, "aerogramctl: copy-store: %s has no [auth] users_file to take the users from: "
		                "give --user NAME\n", c->config.path);
		return 1;
	} else if (ctl_users_from_file(c->config.users_file, &names, &n, err, sizeof(err)) != 0) {
		fprintf(stderr, "aerogramctl: copy-store: %s\n", err);
		return 1;
	}
	struct ctl other;
	int status = 0;
	if (ctl_open(&other, to, err, sizeof(err)) != 0) {
		fprintf(stderr, "aerogramctl: copy-store: --to %s\n", err);
		status = 1;
	} else {
		struct ctl_copy_options opt = { .limit = limit, .out = stdout };
		struct ctl_copy_stats st;
		int rc = ctl_copy_store(c->engine, other.engine, (const char *const *)names, n, &opt, &st, err, sizeof(err));
		if (rc < 0) {
			fflush(stdout);
			fprintf(stderr, "aerogramctl: copy-store: %s\n", err);
			status = 1;
		} else if (rc == 1) {
			status = 3;
		}
		ctl_close(&other);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return status;
}
