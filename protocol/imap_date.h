/* imap_date.h - the calendar arithmetic that IMAP dates (RFC 3501) and mail
 * dates (RFC 5322) share: one month table, one day count. Pure code. */
#ifndef AG_IMAP_DATE_H
#define AG_IMAP_DATE_H

#include <stdint.h>

/* "Jan" .. "Dec". */
extern const char imap_month_abbrev[12][4];

/* 1..12 for a month's three-letter abbreviation at s (any case; s must
 * hold at least 3 bytes), 0 for anything else. */
int imap_month_parse(const char *s);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t imap_days_from_civil(int64_t year, unsigned month, unsigned mday);

#endif
