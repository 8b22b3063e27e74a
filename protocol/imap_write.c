/* imap_write.c - IMAP responses into an agbuf. */
#include "protocol/imap_write.h"
#include "protocol/imap_date.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "protocol/imap_quote.h"

static const char *const code_names[IMAP_CODE__COUNT] = {
	[IMAP_CODE_NONE] = "",
	[IMAP_CODE_ALERT] = "ALERT",
	[IMAP_CODE_ALREADYEXISTS] = "ALREADYEXISTS",
	[IMAP_CODE_AUTHENTICATIONFAILED] = "AUTHENTICATIONFAILED",
	[IMAP_CODE_AUTHORIZATIONFAILED] = "AUTHORIZATIONFAILED",
	[IMAP_CODE_CANNOT] = "CANNOT",
	[IMAP_CODE_CLIENTBUG] = "CLIENTBUG",
	[IMAP_CODE_CLOSED] = "CLOSED",
	[IMAP_CODE_COMPRESSIONACTIVE] = "COMPRESSIONACTIVE",
	[IMAP_CODE_CONTACTADMIN] = "CONTACTADMIN",
	[IMAP_CODE_CORRUPTION] = "CORRUPTION",
	[IMAP_CODE_EXPIRED] = "EXPIRED",
	[IMAP_CODE_EXPUNGEISSUED] = "EXPUNGEISSUED",
	[IMAP_CODE_INUSE] = "INUSE",
	[IMAP_CODE_LIMIT] = "LIMIT",
	[IMAP_CODE_NOMODSEQ] = "NOMODSEQ",
	[IMAP_CODE_NONEXISTENT] = "NONEXISTENT",
	[IMAP_CODE_NOPERM] = "NOPERM",
	[IMAP_CODE_OVERQUOTA] = "OVERQUOTA",
	[IMAP_CODE_PARSE] = "PARSE",
	[IMAP_CODE_PRIVACYREQUIRED] = "PRIVACYREQUIRED",
	[IMAP_CODE_READ_ONLY] = "READ-ONLY",
	[IMAP_CODE_READ_WRITE] = "READ-WRITE",
	[IMAP_CODE_SERVERBUG] = "SERVERBUG",
	[IMAP_CODE_TOOBIG] = "TOOBIG",
	[IMAP_CODE_TRYCREATE] = "TRYCREATE",
	[IMAP_CODE_UIDNOTSTICKY] = "UIDNOTSTICKY",
	[IMAP_CODE_UNAVAILABLE] = "UNAVAILABLE",
	[IMAP_CODE_UNKNOWN_CTE] = "UNKNOWN-CTE",
	[IMAP_CODE_USEATTR] = "USEATTR",
};

static const char *const status_names[] = {
	[IMAP_OK] = "OK", [IMAP_NO] = "NO", [IMAP_BAD] = "BAD", [IMAP_PREAUTH] = "PREAUTH", [IMAP_BYE] = "BYE",
};

/* Free text: every byte but CR, LF and NUL as is. */
static void write_text(struct agbuf *out, const char *text)
{
	for (const char *s = text; *s != '\0';) {
		size_t n = strcspn(s, "\r\n");
		agbuf_append(out, s, n);
		s += n;
		if (*s != '\0') {
			agbuf_putc(out, ' ');
			s++;
		}
	}
}

/* "(a b c)": atoms as they are, or astrings (`quote`), and `last` (an atom)
 * after them when not NULL. */
static void write_list(struct agbuf *out, const char *const *items, size_t count, const char *last, int quote)
{
	agbuf_putc(out, '(');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		if (quote)
			imap_quote_astring(out, items[i], strlen(items[i]));
		else
			agbuf_puts(out, items[i]);
	}
	if (last != NULL) {
		if (count > 0)
			agbuf_putc(out, ' ');
		agbuf_puts(out, last);
	}
	agbuf_putc(out, ')');
}

void imap_write_status_begin(struct agbuf *out, const char *tag, enum imap_status status)
{
	if (tag == NULL || status == IMAP_BYE || status == IMAP_PREAUTH)
		agbuf_puts(out, "* ");
	else {
		write_text(out, tag);
		agbuf_putc(out, ' ');
	}
	agbuf_puts(out, status_names[status]);
	agbuf_putc(out, ' ');
}

void imap_write_status_end(struct agbuf *out, const char *text)
{
	write_text(out, text != NULL ? text : "");
	agbuf_puts(out, "\r\n");
}

static void status_vendf(struct agbuf *out, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void status_vendf(struct agbuf *out, const char *fmt, va_list ap)
{
	struct agbuf text = AGBUF_INIT;
	agbuf_vprintf(&text, fmt, ap);
	imap_write_status_end(out, text.data);
	agbuf_free(&text);
}

void imap_write_status_endf(struct agbuf *out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	status_vendf(out, fmt, ap);
	va_end(ap);
}

void imap_write_status(struct agbuf *out, const char *tag, enum imap_status status, enum imap_code code,
		       const char *fmt, ...)
{
	imap_write_status_begin(out, tag, status);
	imap_write_code(out, code);
	va_list ap;
	va_start(ap, fmt);
	status_vendf(out, fmt, ap);
	va_end(ap);
}

void imap_write_code(struct agbuf *out, enum imap_code code)
{
	if (code == IMAP_CODE_NONE || (unsigned)code >= IMAP_CODE__COUNT)
		return;
	agbuf_printf(out, "[%s] ", code_names[code]);
}

void imap_write_code_uidvalidity(struct agbuf *out, uint32_t uidvalidity)
{
	agbuf_printf(out, "[UIDVALIDITY %" PRIu32 "] ", uidvalidity);
}

void imap_write_code_uidnext(struct agbuf *out, uint32_t uidnext)
{
	agbuf_printf(out, "[UIDNEXT %" PRIu32 "] ", uidnext);
}

void imap_write_code_unseen(struct agbuf *out, uint32_t seq)
{
	agbuf_printf(out, "[UNSEEN %" PRIu32 "] ", seq);
}

void imap_write_code_highestmodseq(struct agbuf *out, uint64_t modseq)
{
	agbuf_printf(out, "[HIGHESTMODSEQ %" PRIu64 "] ", modseq);
}

void imap_write_code_appenduid(struct agbuf *out, uint32_t uidvalidity, const uint32_t *uids, size_t count)
{
	agbuf_printf(out, "[APPENDUID %" PRIu32 " ", uidvalidity);
	imap_write_number_set(out, uids, count);
	agbuf_puts(out, "] ");
}

void imap_write_code_copyuid(struct agbuf *out, uint32_t uidvalidity, const uint32_t *src, const uint32_t *dst,
			     size_t count)
{
	agbuf_printf(out, "[COPYUID %" PRIu32 " ", uidvalidity);
	imap_write_number_set(out, src, count);
	agbuf_putc(out, ' ');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			agbuf_putc(out, ',');
		agbuf_put_u64(out, dst[i]);
	}
	agbuf_puts(out, "] ");
}

void imap_write_code_modified(struct agbuf *out, const uint32_t *numbers, size_t count)
{
	agbuf_puts(out, "[MODIFIED ");
	imap_write_number_set(out, numbers, count);
	agbuf_puts(out, "] ");
}

void imap_write_code_noupdate(struct agbuf *out, const char *tag)
{
	agbuf_puts(out, "[NOUPDATE ");
	imap_quote_string(out, tag, strlen(tag));
	agbuf_puts(out, "] ");
}

void imap_write_code_badurl(struct agbuf *out, const char *url, size_t len)
{
	agbuf_puts(out, "[BADURL \"");
	for (size_t i = 0; i < len; i++)
		if (url[i] != ']' && url[i] != '\r' && url[i] != '\n')
			agbuf_putc(out, url[i]);
	agbuf_puts(out, "\"] ");
}

void imap_write_code_permanentflags(struct agbuf *out, const char *const *flags, size_t count, int new_keywords)
{
	agbuf_puts(out, "[PERMANENTFLAGS ");
	write_list(out, flags, count, new_keywords ? "\\*" : NULL, 0);
	agbuf_puts(out, "] ");
}

void imap_write_code_capability(struct agbuf *out, const char *caps)
{
	agbuf_puts(out, "[CAPABILITY ");
	write_text(out, caps);
	agbuf_puts(out, "] ");
}

void imap_write_code_badcharset(struct agbuf *out, const char *const *charsets, size_t count)
{
	agbuf_puts(out, "[BADCHARSET");
	if (count > 0) {
		agbuf_putc(out, ' ');
		write_list(out, charsets, count, NULL, 1);
	}
	agbuf_puts(out, "] ");
}

void imap_write_continuation(struct agbuf *out, const char *text)
{
	agbuf_puts(out, "+ ");
	imap_write_status_end(out, text);
}

void imap_write_sp(struct agbuf *out)
{
	agbuf_putc(out, ' ');
}

void imap_write_atom(struct agbuf *out, const char *atom)
{
	agbuf_puts(out, atom);
}

void imap_write_nil(struct agbuf *out)
{
	agbuf_puts(out, "NIL");
}

void imap_write_number(struct agbuf *out, uint64_t n)
{
	agbuf_put_u64(out, n);
}

void imap_write_literal_header(struct agbuf *out, uint64_t size)
{
	agbuf_putc(out, '{');
	agbuf_put_u64(out, size);
	agbuf_append(out, "}\r\n", 3);
}

void imap_write_flags(struct agbuf *out, const char *const *flags, size_t count)
{
	write_list(out, flags, count, NULL, 0);
}

/* Two decimal digits of 0 <= n < 100. */
static void put_2digits(char *p, int n)
{
	p[0] = (char)('0' + n / 10);
	p[1] = (char)('0' + n % 10);
}

/* The Gregorian date of a day number counted from 1970-01-01. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

void imap_write_datetime(struct agbuf *out, int64_t unix_time, int zone_minutes)
{
	if (zone_minutes < -1439 || zone_minutes > 1439)
		zone_minutes = 0;
	int64_t local = unix_time + (int64_t)zone_minutes * 60;
	int64_t days = local / 86400, secs = local % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	int64_t year;
	int month, day;
	civil_from_days(days, &year, &month, &day);
	if (year < 0 || year > 9999) {
		/* Not representable in four digits: the epoch is a safe answer. */
		year = 1970, month = 1, day = 1, secs = 0, zone_minutes = 0;
	}
	int zone = zone_minutes < 0 ? -zone_minutes : zone_minutes;
	/* "dd-Mon-yyyy hh:mm:ss +zzzz", each field zero-padded (FETCH
	 * INTERNALDATE of whole mailboxes: no printf per message). */
	char s[28];
	put_2digits(s, day);
	s[2] = '-';
	memcpy(s + 3, imap_month_abbrev[month - 1], 3);
	s[6] = '-';
	put_2digits(s + 7, (int)(year / 100));
	put_2digits(s + 9, (int)(year % 100));
	s[11] = ' ';
	put_2digits(s + 12, (int)(secs / 3600));
	s[14] = ':';
	put_2digits(s + 15, (int)(secs / 60 % 60));
	s[17] = ':';
	put_2digits(s + 18, (int)(secs % 60));
	s[20] = ' ';
	s[21] = zone_minutes < 0 ? '-' : '+';
	put_2digits(s + 22, zone / 60);
	put_2digits(s + 24, zone % 60);
	agbuf_putc(out, '"');
	agbuf_append(out, s, 26);
	agbuf_putc(out, '"');
}

/* "* n WORD\r\n", the shape of EXISTS, RECENT and EXPUNGE. */
static void write_numbered(struct agbuf *out, uint32_t n, const char *word)
{
	agbuf_append(out, "* ", 2);
	agbuf_put_u64(out, n);
	agbuf_putc(out, ' ');
	agbuf_puts(out, word);
	agbuf_append(out, "\r\n", 2);
}

void imap_write_exists(struct agbuf *out, uint32_t count)
{
	write_numbered(out, count, "EXISTS");
}

void imap_write_recent(struct agbuf *out, uint32_t count)
{
	write_numbered(out, count, "RECENT");
}

void imap_write_expunge(struct agbuf *out, uint32_t seq)
{
	write_numbered(out, seq, "EXPUNGE");
}

void imap_write_capability(struct agbuf *out, const char *caps)
{
	agbuf_puts(out, "* CAPABILITY ");
	write_text(out, caps);
	agbuf_puts(out, "\r\n");
}

void imap_write_flags_response(struct agbuf *out, const char *const *flags, size_t count)
{
	agbuf_puts(out, "* FLAGS ");
	imap_write_flags(out, flags, count);
	agbuf_puts(out, "\r\n");
}

/* "* WORD n n n" and the " (MODSEQ n)" of a nonzero modseq, the shape of
 * SEARCH and SORT. */
static void write_numbers_response(struct agbuf *out, const char *word, const uint32_t *numbers, size_t count,
				   uint64_t modseq)
{
	agbuf_puts(out, "* ");
	agbuf_puts(out, word);
	for (size_t i = 0; i < count; i++) {
		agbuf_putc(out, ' ');
		agbuf_put_u64(out, numbers[i]);
	}
	if (modseq != 0) {
		agbuf_puts(out, " (MODSEQ ");
		agbuf_put_u64(out, modseq);
		agbuf_putc(out, ')');
	}
	agbuf_puts(out, "\r\n");
}

void imap_write_search(struct agbuf *out, const uint32_t *numbers, size_t count, uint64_t modseq)
{
	write_numbers_response(out, "SEARCH", numbers, count, modseq);
}

void imap_write_sort(struct agbuf *out, const uint32_t *numbers, size_t count)
{
	write_numbers_response(out, "SORT", numbers, count, 0);
}

void imap_write_thread(struct agbuf *out, const char *threads, size_t len)
{
	agbuf_puts(out, "* THREAD");
	if (len > 0) {
		agbuf_putc(out, ' ');
		agbuf_append(out, threads, len);
	}
	agbuf_puts(out, "\r\n");
}

void imap_write_number_set(struct agbuf *out, const uint32_t *numbers, size_t count)
{
	for (size_t i = 0; i < count;) {
		size_t j = i;
		while (j + 1 < count && numbers[j] != UINT32_MAX && numbers[j + 1] == numbers[j] + 1)
			j++;
		imap_write_ranges(out, &numbers[i], &numbers[j], 1);
		if (j + 1 < count)
			agbuf_putc(out, ',');
		i = j + 1;
	}
}

void imap_write_ranges(struct agbuf *out, const uint32_t *lo, const uint32_t *hi, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			agbuf_putc(out, ',');
		agbuf_put_u64(out, lo[i]);
		if (hi[i] > lo[i]) {
			agbuf_putc(out, ':');
			agbuf_put_u64(out, hi[i]);
		}
	}
}

void imap_write_vanished(struct agbuf *out, const uint32_t *uids, size_t count)
{
	agbuf_puts(out, "* VANISHED ");
	imap_write_number_set(out, uids, count);
	agbuf_puts(out, "\r\n");
}

void imap_write_vanished_earlier(struct agbuf *out, const uint32_t *lo, const uint32_t *hi, size_t count)
{
	agbuf_puts(out, "* VANISHED (EARLIER) ");
	imap_write_ranges(out, lo, hi, count);
	agbuf_puts(out, "\r\n");
}

void imap_write_fetch_begin(struct agbuf *out, uint32_t seq)
{
	agbuf_append(out, "* ", 2);
	agbuf_put_u64(out, seq);
	agbuf_append(out, " FETCH (", 8);
}

void imap_write_fetch_modseq(struct agbuf *out, uint64_t modseq)
{
	agbuf_append(out, "MODSEQ (", 8);
	agbuf_put_u64(out, modseq);
	agbuf_putc(out, ')');
}

void imap_write_fetch_end(struct agbuf *out)
{
	agbuf_append(out, ")\r\n", 3);
}

void imap_write_quota(struct agbuf *out, const char *root, const struct imap_quota_resource *res, size_t count)
{
	agbuf_puts(out, "* QUOTA ");
	imap_quote_astring(out, root, strlen(root));
	agbuf_puts(out, " (");
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		agbuf_puts(out, res[i].name);
		agbuf_putc(out, ' ');
		agbuf_put_u64(out, res[i].usage);
		agbuf_putc(out, ' ');
		agbuf_put_u64(out, res[i].limit);
	}
	agbuf_puts(out, ")\r\n");
}

/* " a b c": each item after a space, an atom or an astring (`quote`). */
static void write_items(struct agbuf *out, const char *const *items, size_t count, int quote)
{
	for (size_t i = 0; i < count; i++) {
		agbuf_putc(out, ' ');
		if (quote)
			imap_quote_astring(out, items[i], strlen(items[i]));
		else
			agbuf_puts(out, items[i]);
	}
}

void imap_write_quotaroot(struct agbuf *out, const char *mailbox, const char *const *roots, size_t count)
{
	agbuf_puts(out, "* QUOTAROOT ");
	imap_quote_astring(out, mailbox, strlen(mailbox));
	write_items(out, roots, count, 1);
	agbuf_puts(out, "\r\n");
}

void imap_write_enabled(struct agbuf *out, const char *const *caps, size_t count)
{
	agbuf_puts(out, "* ENABLED");
	write_items(out, caps, count, 0);
	agbuf_puts(out, "\r\n");
}

void imap_write_id(struct agbuf *out, const char *const *fields, size_t count)
{
	agbuf_puts(out, "* ID ");
	if (count == 0) {
		agbuf_puts(out, "NIL\r\n");
		return;
	}
	agbuf_putc(out, '(');
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		imap_quote_string(out, fields[i], strlen(fields[i]));
	}
	agbuf_puts(out, ")\r\n");
}

void imap_write_namespace(struct agbuf *out, const char *prefix, char delim)
{
	char d[1] = { delim };
	agbuf_puts(out, "* NAMESPACE ((");
	imap_quote_string(out, prefix, strlen(prefix));
	agbuf_putc(out, ' ');
	imap_quote_string(out, d, 1);
	agbuf_puts(out, ")) NIL NIL\r\n");
}

void imap_write_esearch(struct agbuf *out, const char *tag, int uid, unsigned opts, const uint32_t *numbers,
			size_t count, uint32_t first, uint32_t last, uint64_t modseq)
{
	agbuf_puts(out, "* ESEARCH");
	if (tag != NULL) {
		agbuf_puts(out, " (TAG ");
		imap_quote_string(out, tag, strlen(tag));
		agbuf_putc(out, ')');
	}
	if (uid)
		agbuf_puts(out, " UID");
	if (count > 0 && (opts & IMAP_SEARCH_RET_MIN)) {
		agbuf_puts(out, " MIN ");
		agbuf_put_u64(out, numbers[0]);
	}
	if (count > 0 && (opts & IMAP_SEARCH_RET_MAX)) {
		agbuf_puts(out, " MAX ");
		agbuf_put_u64(out, numbers[count - 1]);
	}
	if (count > 0 && (opts & IMAP_SEARCH_RET_ALL)) {
		agbuf_puts(out, " ALL ");
		imap_write_number_set(out, numbers, count);
	}
	if (opts & IMAP_SEARCH_RET_PARTIAL) {
		agbuf_printf(out, " PARTIAL (%u:%u ", first, last);
		if (first == 0 || first > count) {
			agbuf_puts(out, "NIL");
		} else {
			size_t end = last < count ? last : count;
			imap_write_number_set(out, numbers + (first - 1), end - (first - 1));
		}
		agbuf_putc(out, ')');
	}
	if (opts & IMAP_SEARCH_RET_COUNT) {
		agbuf_puts(out, " COUNT ");
		agbuf_put_u64(out, count);
	}
	if (modseq != 0) {
		agbuf_puts(out, " MODSEQ ");
		agbuf_put_u64(out, modseq);
	}
	agbuf_puts(out, "\r\n");
}

void imap_write_context_update(struct agbuf *out, const char *tag, int uid, int add,
			       const struct imap_context_run *runs, size_t n_runs)
{
	if (n_runs == 0)
		return;
	agbuf_puts(out, "* ESEARCH (TAG ");
	imap_quote_string(out, tag, strlen(tag));
	agbuf_puts(out, uid ? ") UID " : ") ");
	agbuf_puts(out, add ? "ADDTO (" : "REMOVEFROM (");
	for (size_t i = 0; i < n_runs; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		agbuf_put_u64(out, runs[i].position);
		agbuf_putc(out, ' ');
		imap_write_number_set(out, runs[i].numbers, runs[i].count);
	}
	agbuf_puts(out, ")\r\n");
}

void imap_write_list(struct agbuf *out, int lsub, const char *const *attrs, size_t attr_count, char delim,
		     const char *name, size_t name_len)
{
	imap_write_list_ext(out, lsub, attrs, attr_count, delim, name, name_len, NULL);
}

void imap_write_list_ext(struct agbuf *out, int lsub, const char *const *attrs, size_t attr_count, char delim,
			 const char *name, size_t name_len, const char *extended)
{
	agbuf_puts(out, lsub ? "* LSUB " : "* LIST ");
	imap_write_flags(out, attrs, attr_count);
	agbuf_putc(out, ' ');
	if (delim == 0) {
		agbuf_puts(out, "NIL");
	} else {
		char d[1] = { delim };
		imap_quote_string(out, d, 1);
	}
	agbuf_putc(out, ' ');
	imap_quote_astring(out, name, name_len);
	if (extended != NULL) {
		agbuf_puts(out, " (");
		agbuf_puts(out, extended);
		agbuf_putc(out, ')');
	}
	agbuf_puts(out, "\r\n");
}

static const char *const fetch_att_names[] = {
	[IMAP_FETCH_ENVELOPE] = "ENVELOPE",
	[IMAP_FETCH_FLAGS] = "FLAGS",
	[IMAP_FETCH_INTERNALDATE] = "INTERNALDATE",
	[IMAP_FETCH_RFC822] = "RFC822",
	[IMAP_FETCH_RFC822_HEADER] = "RFC822.HEADER",
	[IMAP_FETCH_RFC822_SIZE] = "RFC822.SIZE",
	[IMAP_FETCH_RFC822_TEXT] = "RFC822.TEXT",
	[IMAP_FETCH_BODY] = "BODY",
	[IMAP_FETCH_BODYSTRUCTURE] = "BODYSTRUCTURE",
	[IMAP_FETCH_UID] = "UID",
	[IMAP_FETCH_BODY_SECTION] = "BODY",
	[IMAP_FETCH_MODSEQ] = "MODSEQ",
	[IMAP_FETCH_BINARY] = "BINARY",
	[IMAP_FETCH_BINARY_SIZE] = "BINARY.SIZE",
};

static const char *const section_text_names[] = {
	[IMAP_SECTION_ALL] = "",
	[IMAP_SECTION_HEADER] = "HEADER",
	[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
	[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
	[IMAP_SECTION_TEXT] = "TEXT",
	[IMAP_SECTION_MIME] = "MIME",
};

void imap_write_fetch_att_name(struct agbuf *out, const struct imap_fetch_att *att)
{
	agbuf_puts(out, fetch_att_names[att->kind]);
	if (att->kind != IMAP_FETCH_BODY_SECTION && att->kind != IMAP_FETCH_BINARY &&
	    att->kind != IMAP_FETCH_BINARY_SIZE)
		return;
	const struct imap_section *sec = &att->section;
	agbuf_putc(out, '[');
	for (size_t i = 0; i < sec->part_count; i++) {
		if (i > 0)
			agbuf_putc(out, '.');
		agbuf_put_u64(out, sec->parts[i]);
	}
	if (sec->text != IMAP_SECTION_ALL) {
		if (sec->part_count > 0)
			agbuf_putc(out, '.');
		agbuf_puts(out, section_text_names[sec->text]);
	}
	if (sec->text == IMAP_SECTION_HEADER_FIELDS || sec->text == IMAP_SECTION_HEADER_FIELDS_NOT) {
		agbuf_puts(out, " (");
		for (size_t i = 0; i < sec->field_count; i++) {
			if (i > 0)
				agbuf_putc(out, ' ');
			imap_quote_astring(out, sec->fields[i].data, sec->fields[i].len);
		}
		agbuf_putc(out, ')');
	}
	agbuf_putc(out, ']');
	if (att->has_partial) {
		agbuf_putc(out, '<');
		agbuf_put_u64(out, att->partial_offset);
		agbuf_putc(out, '>');
	}
}

static const char *const status_item_names[] = {
	[IMAP_STATUS_MESSAGES] = "MESSAGES",
	[IMAP_STATUS_RECENT] = "RECENT",
	[IMAP_STATUS_UIDNEXT] = "UIDNEXT",
	[IMAP_STATUS_UIDVALIDITY] = "UIDVALIDITY",
	[IMAP_STATUS_UNSEEN] = "UNSEEN",
	[IMAP_STATUS_HIGHESTMODSEQ] = "HIGHESTMODSEQ",
	[IMAP_STATUS_SIZE] = "SIZE",
	[IMAP_STATUS_DELETED] = "DELETED",
	[IMAP_STATUS_DELETED_STORAGE] = "DELETED-STORAGE",
};

void imap_write_status_response(struct agbuf *out, const char *name, size_t name_len,
				const enum imap_status_item *items, size_t count, const uint64_t *values)
{
	agbuf_puts(out, "* STATUS ");
	imap_quote_astring(out, name, name_len);
	agbuf_puts(out, " (");
	for (size_t i = 0; i < count; i++) {
		if (i > 0)
			agbuf_putc(out, ' ');
		agbuf_puts(out, status_item_names[items[i]]);
		agbuf_putc(out, ' ');
		agbuf_put_u64(out, values[items[i]]);
	}
	agbuf_puts(out, ")\r\n");
}
