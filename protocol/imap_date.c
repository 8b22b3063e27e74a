/* imap_date.c - month names and the day count (see imap_date.h). */
#include "protocol/imap_date.h"

#include <strings.h>

const char imap_month_abbrev[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

int imap_month_parse(const char *s)
{
	for (int m = 0; m < 12; m++)
		if (strncasecmp(s, imap_month_abbrev[m], 3) == 0)
			return m + 1;
	return 0;
}

int64_t imap_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	/* Howard Hinnant's days_from_civil */
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}
