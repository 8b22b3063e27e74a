/* fixture_items.h - the FETCH items tests/mime/dovecot-record records, by
 * fixture file name (keep the two lists in step). */
#ifndef AG_TESTS_MIME_FIXTURE_ITEMS_H
#define AG_TESTS_MIME_FIXTURE_ITEMS_H

struct fixture_item {
	const char *file;    /* fixture file name */
	const char *section; /* text inside BODY[...] plus <o.n>, or NULL */
};

static const struct fixture_item fixture_items[] = {
	{ "envelope", NULL },
	{ "body", NULL },
	{ "bodystructure", NULL },
	{ "rfc822.size", NULL },
	{ "header", "HEADER]" },
	{ "text", "TEXT]" },
	{ "header.fields", "HEADER.FIELDS (FROM TO SUBJECT DATE)]" },
	{ "header.fields.not", "HEADER.FIELDS.NOT (RECEIVED CONTENT-TYPE X-MAILER)]" },
	{ "1", "1]" },
	{ "1.mime", "1.MIME]" },
	{ "2", "2]" },
	{ "2.mime", "2.MIME]" },
	{ "1.1", "1.1]" },
	{ "1.2", "1.2]" },
	{ "2.header", "2.HEADER]" },
	{ "2.text", "2.TEXT]" },
	{ "text.partial", "TEXT]<0.100>" },
	{ "1.partial", "1]<10.20>" },
	{ "all", "]" },
	{ "all.partial", "]<5.30>" },
	{ "1.header", "1.HEADER]" },
	{ "1.text", "1.TEXT]" },
	{ "1.1.mime", "1.1.MIME]" },
	{ "2.1", "2.1]" },
	{ "2.2.1", "2.2.1]" },
	{ "3", "3]" },
	{ "3.mime", "3.MIME]" },
	{ "2.header.fields", "2.HEADER.FIELDS (SUBJECT FROM)]" },
	{ "1.1.header", "1.1.HEADER]" },
	{ "1.1.text", "1.1.TEXT]" },
	{ "all.partial0", "]<0.0>" },
	{ "text.farpartial", "TEXT]<100000.10>" },
	{ "header.fields.lower", "HEADER.FIELDS (from Message-Id)]" },
};
#define FIXTURE_ITEM_COUNT (sizeof(fixture_items) / sizeof(fixture_items[0]))

#endif
