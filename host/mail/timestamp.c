/* timestamp.c - log timestamps: milliseconds plus a random tie-breaker.
 *
 * The text form is 32 lowercase hex digits, ms then rnd, both big-endian, so
 * byte order of the text is numeric order of (ms, rnd): the row store sorts
 * log entries for us, and every log key sorts below the "watch" row. */
#include "host/mail/mail_internal.h"

#include <string.h>

void ts_format(struct ag_ts ts, char out[AG_TS_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[i] = hex[(ts.ms >> (60 - 4 * i)) & 15];
		out[16 + i] = hex[(ts.rnd >> (60 - 4 * i)) & 15];
	}
	out[AG_TS_HEX] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* upper case would break the sort order: refused */
}

int ts_parse(const char *s, struct ag_ts *out)
{
	if (s == NULL || strlen(s) != AG_TS_HEX)
		return -1;
	uint64_t v[2] = { 0, 0 };
	for (int i = 0; i < AG_TS_HEX; i++) {
		int d = hexval(s[i]);
		if (d < 0)
			return -1;
		v[i / 16] = (v[i / 16] << 4) | (uint64_t)d;
	}
	out->ms = v[0];
	out->rnd = v[1];
	return 0;
}

int ts_cmp(struct ag_ts a, struct ag_ts b)
{
	if (a.ms != b.ms)
		return a.ms < b.ms ? -1 : 1;
	if (a.rnd != b.rnd)
		return a.rnd < b.rnd ? -1 : 1;
	return 0;
}

struct ag_ts ts_after(struct mail_engine *eng, struct ag_ts prev)
{
	struct ag_ts ts;
	uint64_t now = mail_now(eng);
	ts.ms = now > prev.ms ? now : prev.ms + 1;
	ts.rnd = mail_rand64(eng);
	return ts;
}
