/* test_imap.c - unit tests of the command parser, the response writer and
 * modified UTF-7. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_dump.h"
#include "protocol/agbuf.h"
#include "protocol/imap_parse.h"
#include "protocol/imap_quote.h"
#include "protocol/imap_write.h"
#include "protocol/mutf7.h"
#include "tests/lib/cu_main.h"

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))
#define RANDOM_PIECES ((size_t)-1)

/* The event log of feeding `len` bytes in pieces; the caller frees it. */
static char *feed_n(const char *bytes, size_t len, size_t piece, const struct imap_parser_limits *limits,
		    enum dump_literal_policy policy)
{
	struct agbuf out = AGBUF_INIT;
	dump_feed(&out, bytes, len, piece, 7, limits, policy);
	return agbuf_steal(&out, NULL);
}

static char *feed(const char *wire, size_t piece)
{
	return feed_n(wire, strlen(wire), piece, NULL, DUMP_ACCEPT);
}

/* Asserts the log of `len` bytes of `wire`, fed in pieces of `piece` bytes
 * under `limits` with the literal `policy`, is `expect`. */
static void expect_fed(const char *wire, size_t len, size_t piece, const struct imap_parser_limits *limits,
		       enum dump_literal_policy policy, const char *expect)
{
	char *got = feed_n(wire, len, piece, limits, policy);
	if (strcmp(got, expect) != 0)
		fprintf(stderr, "\n  input:  %.*s\n  piece:  %zd\n  expect: %s  got:    %s", (int)len, wire,
			(ssize_t)piece, expect, got);
	CU_ASSERT_STRING_EQUAL(got, expect);
	free(got);
}

/* Asserts the log of `wire`, fed whole, in 1-byte pieces and in random
 * pieces, is `expect` every time. */
static void expect_log(const char *wire, const char *expect)
{
	size_t pieces[] = { 0, 1, 2, 3, RANDOM_PIECES };
	for (size_t i = 0; i < COUNT_OF(pieces); i++)
		expect_fed(wire, strlen(wire), pieces[i], NULL, DUMP_ACCEPT, expect);
}

/* ---- every command form ---- */

static const struct {
	const char *wire;
	const char *dump;
} valid[] = {
	{ "a CAPABILITY\r\n", "a CAPABILITY" },
	{ "a noop\r\n", "a NOOP" },
	{ "a LOGOUT\r\n", "a LOGOUT" },
	{ "a STARTTLS\r\n", "a STARTTLS" },
	{ "a AUTHENTICATE PLAIN\r\n", "a AUTHENTICATE \"PLAIN\"" },
	{ "a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n", "a AUTHENTICATE \"PLAIN\" ir=\"AHVzZXIAcGFzcw==\"" },
	{ "a AUTHENTICATE EXTERNAL =\r\n", "a AUTHENTICATE \"EXTERNAL\" ir=\"=\"" },
	{ "a LOGIN fred \"pass word\"\r\n", "a LOGIN \"fred\" \"pass word\"" },
	{ "a LOGIN \"fr\\\"ed\" {4+}\r\np\\ss\r\n", "a LOGIN \"fr\\x22ed\" \"p\\x5css\"" },
	{ "a SELECT inbox\r\n", "a SELECT \"INBOX\"" },
	{ "a SELECT \"Sent Items\" (CONDSTORE)\r\n", "a SELECT \"Sent Items\" CONDSTORE" },
	{ "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
	  "a SELECT \"INBOX\" QRESYNC uidvalidity=67890007 modseq=20050715194045000 known=41,43:211,214:541" },
	{ "a SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 "
	  "15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))\r\n",
	  "a SELECT \"INBOX\" QRESYNC uidvalidity=67890007 modseq=90060115194045000 known=1:29997 "
	  "match=5000,7500,9000,9990:9999/15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997" },
	{ "a EXAMINE INBOX (QRESYNC (1 2 (1 3)))\r\n", "a EXAMINE \"INBOX\" QRESYNC uidvalidity=1 modseq=2 match=1/3" },
	{ "a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
	  "a UID FETCH 300:500 (FLAGS) changedsince=12345 vanished" },
	{ "a EXAMINE &AOk-t&AOk-\r\n", "a EXAMINE \"&AOk-t&AOk-\"" },
	{ "a CREATE owatagusiam/\r\n", "a CREATE \"owatagusiam/\"" },
	{ "a DELETE blurdybloop\r\n", "a DELETE \"blurdybloop\"" },
	{ "a RENAME blurdybloop sarasoop\r\n", "a RENAME \"blurdybloop\" \"sarasoop\"" },
	{ "a RENAME INBOX \"old mail\"\r\n", "a RENAME \"INBOX\" \"old mail\"" },
	{ "a SUBSCRIBE #news.comp.mail.mime\r\n", "a SUBSCRIBE \"#news.comp.mail.mime\"" },
	{ "a UNSUBSCRIBE #news.comp.mail.mime\r\n", "a UNSUBSCRIBE \"#news.comp.mail.mime\"" },
	{ "a LIST \"\" \"\"\r\n", "a LIST \"\" \"\"" },
	{ "a LIST /usr/staff/jones \"\"\r\n", "a LIST \"/usr/staff/jones\" \"\"" },
	{ "a LIST ~/Mail/ %\r\n", "a LIST \"~/Mail/\" \"%\"" },
	{ "a LIST \"\" foo*bar]%\r\n", "a LIST \"\" \"foo*bar]%\"" },
	{ "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"a*\" b%) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
	  "a LIST sel=5 \"\" \"a*\" \"b%\" ret=6 status=(MESSAGES UNSEEN)" },
	{ "a LSUB \"#news.\" \"comp.mail.*\"\r\n", "a LSUB \"#news.\" \"comp.mail.*\"" },
	{ "a STATUS blurdybloop (UIDNEXT MESSAGES)\r\n", "a STATUS \"blurdybloop\" (UIDNEXT MESSAGES)" },
	{ "a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)\r\n",
	  "a STATUS \"INBOX\" (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)" },
	{ "a STATUS INBOX (SIZE DELETED DELETED-STORAGE messages)\r\n",
	  "a STATUS \"INBOX\" (SIZE DELETED DELETED-STORAGE MESSAGES)" },
	{ "a GETQUOTAROOT INBOX\r\n", "a GETQUOTAROOT \"INBOX\"" },
	{ "a getquotaroot \"Sent Items\"\r\n", "a GETQUOTAROOT \"Sent Items\"" },
	{ "a GETQUOTA \"\"\r\n", "a GETQUOTA \"\"" },
	{ "a GETQUOTA {10+}\r\nUser quota\r\n", "a GETQUOTA \"User quota\"" },
	{ "a SETQUOTA \"\" (STORAGE 512)\r\n", "a SETQUOTA \"\" (\"STORAGE\" 512)" },
	{ "a SETQUOTA root (STORAGE 512 MESSAGE 18446744073709551615 X-FOO 0)\r\n",
	  "a SETQUOTA \"root\" (\"STORAGE\" 512 \"MESSAGE\" 18446744073709551615 \"X-FOO\" 0)" },
	{ "a SETQUOTA \"\" ()\r\n", "a SETQUOTA \"\" ()" },
	{ "a CHECK\r\n", "a CHECK" },
	{ "a CLOSE\r\n", "a CLOSE" },
	{ "a EXPUNGE\r\n", "a EXPUNGE" },
	{ "a UID EXPUNGE 3000:3002,*\r\n", "a UID EXPUNGE 3000:3002,*" },
	{ "a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
	  "a SEARCH (FLAGGED SINCE 1994-02-01 NOT FROM \"Smith\")" },
	{ "a SEARCH TEXT \"string not in mailbox\"\r\n", "a SEARCH (TEXT \"string not in mailbox\")" },
	{ "a SEARCH CHARSET UTF-8 TEXT {6+}\r\nXXXXXX\r\n", "a SEARCH charset=\"UTF-8\" (TEXT \"XXXXXX\")" },
	{ "a UID SEARCH OR (SEEN FLAGGED) NOT (UID 1:5 LARGER 100) SMALLER 20\r\n",
	  "a UID SEARCH (OR (SEEN FLAGGED) NOT (UID 1:5 LARGER 100) SMALLER 20)" },
	{ "a SEARCH ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT "
	  "UNFLAGGED UNSEEN\r\n",
	  "a SEARCH (ALL ANSWERED DELETED DRAFT FLAGGED NEW OLD RECENT SEEN UNANSWERED UNDELETED UNDRAFT "
	  "UNFLAGGED UNSEEN)" },
	{ "a SEARCH BCC b BODY c CC d FROM e SUBJECT f TEXT g TO h KEYWORD $Junk UNKEYWORD NonJunk\r\n",
	  "a SEARCH (BCC \"b\" BODY \"c\" CC \"d\" FROM \"e\" SUBJECT \"f\" TEXT \"g\" TO \"h\" KEYWORD \"$Junk\" "
	  "UNKEYWORD \"NonJunk\")" },
	{ "a SEARCH BEFORE \"01-Jan-2000\" ON 29-Feb-2024 SENTBEFORE 2-Mar-2020 SENTON 3-Apr-2021 "
	  "SENTSINCE 4-May-2022 SINCE 5-Jun-2023\r\n",
	  "a SEARCH (BEFORE 2000-01-01 ON 2024-02-29 SENTBEFORE 2020-03-02 SENTON 2021-04-03 SENTSINCE 2022-05-04 "
	  "SINCE 2023-06-05)" },
	{ "a SEARCH HEADER Message-ID \"<x@y>\" 2,4:*,* MODSEQ 620162338\r\n",
	  "a SEARCH (HEADER \"Message-ID\" \"<x@y>\" SET 2,4:*,* MODSEQ 620162338)" },
	{ "a SEARCH RETURN (MIN COUNT) UNSEEN\r\n", "a SEARCH return=9 (UNSEEN)" },
	/* RFC 4731, 5182, 5032 */
	{ "a SEARCH RETURN () ALL\r\n", "a SEARCH return=0 (ALL)" },
	{ "a UID SEARCH RETURN (min max ALL count SAVE) 1:*\r\n", "a UID SEARCH return=31 (SET 1:*)" },
	{ "a SEARCH $ UID $\r\n", "a SEARCH (SET $ UID $)" },
	{ "a SEARCH RETURN (SAVE) OR $ (NOT $)\r\n", "a SEARCH return=16 (OR SET $ (NOT SET $))" },
	{ "a FETCH $ FLAGS\r\n", "a FETCH $ (FLAGS)" },
	{ "a UID STORE $ +FLAGS (\\Seen)\r\n", "a UID STORE $ +FLAGS (\\Seen)" },
	{ "a COPY $ Trash\r\n", "a COPY $ \"Trash\"" },
	{ "a UID MOVE $ Trash\r\n", "a UID MOVE $ \"Trash\"" },
	{ "a UID EXPUNGE $\r\n", "a UID EXPUNGE $" },
	{ "a SEARCH UNSEEN YOUNGER 259200\r\n", "a SEARCH (UNSEEN YOUNGER 259200)" },
	{ "a SEARCH older 1 NOT younger 4294967295\r\n", "a SEARCH (OLDER 1 NOT YOUNGER 4294967295)" },
	/* RFC 6154 CREATE-SPECIAL-USE */
	{ "a CREATE MySpecialArchive (USE (\\Archive))\r\n", "a CREATE \"MySpecialArchive\" use=(\"\\x5cArchive\")" },
	{ "a CREATE x (use (\\Sent \\Drafts))\r\n", "a CREATE \"x\" use=(\"\\x5cSent\" \"\\x5cDrafts\")" },
	{ "a CREATE x (USE ())\r\n", "a CREATE \"x\" use=()" },
	/* RFC 5258 */
	{ "a LIST (REMOTE SPECIAL-USE RECURSIVEMATCH) \"\" %\r\n", "a LIST sel=14 \"\" \"%\"" },
	{ "a LIST () \"\" % RETURN (SUBSCRIBED SPECIAL-USE)\r\n", "a LIST \"\" \"%\" ret=9" },
	/* RFC 5256 */
	{ "a SORT (SUBJECT) UTF-8 ALL\r\n", "a SORT (SUBJECT) charset=\"UTF-8\" (ALL)" },
	{ "a UID sort (reverse arrival cc Date FROM size subject to displayfrom REVERSE displayto) "
	  "\"US-ASCII\" UNSEEN FROM x\r\n",
	  "a UID SORT (REVERSE ARRIVAL CC DATE FROM SIZE SUBJECT TO DISPLAYFROM REVERSE DISPLAYTO) "
	  "charset=\"US-ASCII\" (UNSEEN FROM \"x\")" },
	{ "a THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000\r\n",
	  "a THREAD ORDEREDSUBJECT charset=\"UTF-8\" (SINCE 2000-03-05)" },
	/* RFC 5267 */
	{ "a SORT RETURN (MIN MAX) (DATE) UTF-8 ALL\r\n", "a SORT (DATE) return=3 charset=\"UTF-8\" (ALL)" },
	{ "a UID SORT RETURN () (REVERSE SIZE) UTF-8 $\r\n",
	  "a UID SORT (REVERSE SIZE) return=0 charset=\"UTF-8\" (SET $)" },
	/* RFC 5267 CONTEXT=SEARCH, CONTEXT=SORT */
	{ "a SEARCH RETURN (PARTIAL 1:500) UNDELETED\r\n", "a SEARCH return=32 partial=1:500 (UNDELETED)" },
	{ "a UID SEARCH RETURN (partial 500:400 COUNT) ALL\r\n", "a UID SEARCH return=40 partial=400:500 (ALL)" },
	{ "a UID SEARCH RETURN (UPDATE COUNT) DELETED KEYWORD $Junk\r\n",
	  "a UID SEARCH return=72 (DELETED KEYWORD \"$Junk\")" },
	{ "a SEARCH RETURN (CONTEXT COUNT) UNDELETED\r\n", "a SEARCH return=136 (UNDELETED)" },
	{ "a UID SORT RETURN (UPDATE PARTIAL 7:7) (DATE) UTF-8 ALL\r\n",
	  "a UID SORT (DATE) return=96 partial=7:7 charset=\"UTF-8\" (ALL)" },
	{ "a CANCELUPDATE \"B01\"\r\n", "a CANCELUPDATE \"B01\"" },
	{ "a cancelupdate \"B01\" \"x y\" {2+}\r\nzz\r\n", "a CANCELUPDATE \"B01\" \"x y\" \"zz\"" },
	{ "a UID THREAD references US-ASCII TEXT \"gewp\"\r\n",
	  "a UID THREAD REFERENCES charset=\"US-ASCII\" (TEXT \"gewp\")" },
	{ "a FETCH 2:4 ALL\r\n", "a FETCH 2:4 macro=1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)" },
	{ "a FETCH 1 FAST\r\n", "a FETCH 1 macro=2 (FLAGS INTERNALDATE RFC822.SIZE)" },
	{ "a FETCH 1 FULL\r\n", "a FETCH 1 macro=3 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY)" },
	{ "a FETCH 1 body[]\r\n", "a FETCH 1 (BODY[])" },
	{ "a FETCH 2 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
	  "a FETCH 2 (FLAGS BODY[HEADER.FIELDS (\"DATE\" \"FROM\")])" },
	{ "a FETCH * (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID "
	  "MODSEQ)\r\n",
	  "a FETCH * (ENVELOPE FLAGS INTERNALDATE RFC822 RFC822.HEADER RFC822.SIZE RFC822.TEXT BODY BODYSTRUCTURE UID "
	  "MODSEQ)" },
	{ "a UID FETCH 1:* (BODY.PEEK[1.2.HEADER.FIELDS.NOT (A B)]<0.2048> BODY[3.MIME] BODY[4.TEXT] BODY[1.HEADER] "
	  "BODY[2.3]<5.10>) (CHANGEDSINCE 12345)\r\n",
	  "a UID FETCH 1:* (BODY.PEEK[1.2.HEADER.FIELDS.NOT (\"A\" \"B\")]<0.2048> BODY[3.MIME] BODY[4.TEXT] "
	  "BODY[1.HEADER] BODY[2.3]<5.10>) changedsince=12345" },
	{ "a FETCH 1 BODY[HEADER.FIELDS ({7+}\r\nSubject)]\r\n", "a FETCH 1 (BODY[HEADER.FIELDS (\"Subject\")])" },
	{ "a STORE 2:4 +FLAGS (\\Deleted)\r\n", "a STORE 2:4 +FLAGS (\\Deleted)" },
	{ "a STORE 1 -FLAGS.SILENT (\\Seen $Junk)\r\n", "a STORE 1 -FLAGS.SILENT (\\Seen $Junk)" },
	{ "a STORE 1 FLAGS ()\r\n", "a STORE 1 FLAGS ()" },
	{ "a UID STORE 7 FLAGS.SILENT \\Seen \\Answered\r\n", "a UID STORE 7 FLAGS.SILENT (\\Seen \\Answered)" },
	{ "a STORE 1 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Flagged)\r\n",
	  "a STORE 1 unchangedsince=320162338 +FLAGS.SILENT (\\Flagged)" },
	{ "a COPY 2:4 MEETING\r\n", "a COPY 2:4 \"MEETING\"" },
	{ "a UID COPY 4827313:4828442 \"To do\"\r\n", "a UID COPY 4827313:4828442 \"To do\"" },
	{ "a MOVE 1:3 Trash\r\n", "a MOVE 1:3 \"Trash\"" },
	{ "a UID MOVE 42 inBox\r\n", "a UID MOVE 42 \"INBOX\"" },
	{ "a UNSELECT\r\n", "a UNSELECT" },
	{ "a NAMESPACE\r\n", "a NAMESPACE" },
	{ "a ID NIL\r\n", "a ID NIL" },
	{ "a ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)\r\n",
	  "a ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)" },
	{ "a ID ()\r\n", "a ID ()" },
	{ "a ENABLE CONDSTORE UTF8=ACCEPT\r\n", "a ENABLE CONDSTORE UTF8=ACCEPT" },
	/* RFC 3516 */
	{ "a FETCH 1 (BINARY[] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] binary[4.1.2]<7.1>)\r\n",
	  "a FETCH 1 (BINARY[] BINARY.PEEK[1.2]<0.100> BINARY.SIZE[3] BINARY[4.1.2]<7.1>)" },
	{ "a UID FETCH 1:* binary.size[]\r\n", "a UID FETCH 1:* (BINARY.SIZE[])" },
	/* RFC 4978 */
	{ "a COMPRESS DEFLATE\r\n", "a COMPRESS \"DEFLATE\"" },
	{ "a compress deflate\r\n", "a COMPRESS \"deflate\"" },
	{ "]x] NOOP\r\n", "]x] NOOP" },
};

static void test_valid_commands(void)
{
	for (size_t i = 0; i < COUNT_OF(valid); i++) {
		struct agbuf expect = AGBUF_INIT;
		agbuf_printf(&expect, "CMD %s\n", valid[i].dump);
		expect_log(valid[i].wire, expect.data);
		agbuf_free(&expect);
	}
}

/* ---- a malformed variant of each, with its BAD text ---- */

static const struct {
	const char *wire;
	const char *err;
} invalid[] = {
	{ "a CAPABILITY now\r\n", "a syntax: Unexpected extra arguments" },
	{ "a NOOP(\r\n", "a syntax: Unexpected characters after the last argument" },
	{ "a LOGOUT \r\n", "a syntax: Unexpected extra arguments" },
	{ "a STARTTLS x\r\n", "a syntax: Unexpected extra arguments" },
	{ "a AUTHENTICATE\r\n", "a syntax: Missing argument: SASL mechanism" },
	{ "a AUTHENTICATE PLAIN a b\r\n", "a syntax: Unexpected extra arguments" },
	{ "a LOGIN fred\r\n", "a syntax: Missing argument: password" },
	{ "a LOGIN fred \"unterminated\r\n", "a syntax: Missing '\"' at the end of password" },
	{ "a LOGIN fred \"bad\\escape\"\r\n", "a syntax: Invalid '\\' escape in quoted password" },
	{ "a SELECT\r\n", "a syntax: Missing argument: mailbox name" },
	{ "a SELECT INBOX (QRESYNC)\r\n", "a syntax: Expected a space before QRESYNC parameters" },
	{ "a SELECT INBOX (QRESYNC (0 5))\r\n", "a syntax: Zero is not allowed in QRESYNC UIDVALIDITY" },
	{ "a SELECT INBOX (QRESYNC (67890007 0))\r\n", "a syntax: Invalid QRESYNC modseq" },
	{ "a SELECT INBOX (QRESYNC (67890007 5 1:3 (1:2 1:2 3)))\r\n",
	  "a syntax: Missing ')' after the sequence match data" },
	{ "a SELECT INBOX (FOO)\r\n", "a syntax: Unknown SELECT parameter" },
	{ "a EXAMINE (x)\r\n", "a syntax: Invalid characters in mailbox name" },
	{ "a CREATE\r\n", "a syntax: Missing argument: mailbox name" },
	{ "a DELETE a b\r\n", "a syntax: Unexpected extra arguments" },
	{ "a RENAME a\r\n", "a syntax: Missing argument: new mailbox name" },
	{ "a SUBSCRIBE \r\n", "a syntax: Missing argument: mailbox name" },
	{ "a UNSUBSCRIBE  x\r\n", "a syntax: Invalid characters in mailbox name" },
	{ "a LIST \"\"\r\n", "a syntax: Missing argument: mailbox pattern" },
	{ "a LIST \"\" * RETURN (BOGUS)\r\n", "a syntax: Unknown option in LIST RETURN options" },
	{ "a LIST \"\" * EXTRA\r\n", "a syntax: Unexpected extra arguments" },
	{ "a LIST (RECURSIVEMATCH) \"\" %\r\n", "a syntax: RECURSIVEMATCH needs another selection option" },
	{ "a LIST (RECURSIVEMATCH REMOTE) \"\" %\r\n",
	  "a syntax: RECURSIVEMATCH needs another selection option" },
	{ "a LIST (imaptest) \"\" %\r\n", "a syntax: Unknown option in LIST selection options" },
	{ "a LIST (SUBSCRIBED \"\" %\r\n", "a syntax: Unknown option in LIST selection options" },
	{ "a CREATE x (USE (\\Sent)\r\n", "a syntax: Missing ')' at the end of the CREATE parameters" },
	{ "a CREATE x (USE (Sent))\r\n", "a syntax: Invalid USE attribute" },
	{ "a CREATE x (FOO (\\Sent))\r\n", "a syntax: Unknown CREATE parameter" },
	{ "a CREATE x USE\r\n", "a syntax: Missing '(' before the CREATE parameters" },
	{ "a CREATE x (USE \\Sent)\r\n", "a syntax: Missing '(' before the USE attributes" },
	{ "a FETCH $1 FLAGS\r\n", "a syntax: Invalid sequence set" },
	{ "a FETCH 1,$ FLAGS\r\n", "a syntax: Invalid sequence set" },
	{ "a SEARCH $:3\r\n", "a syntax: Invalid sequence set" },
	{ "a SEARCH OLDER 0\r\n", "a syntax: OLDER needs a nonzero interval" },
	{ "a SEARCH YOUNGER\r\n", "a syntax: Missing argument: YOUNGER" },
	{ "a SEARCH YOUNGER x\r\n", "a syntax: Expected a number for YOUNGER" },
	{ "a SEARCH RETURN (MIN FOO) ALL\r\n", "a syntax: Unknown SEARCH RETURN option" },
	{ "a SEARCH RETURN MIN ALL\r\n", "a syntax: Missing '(' before the RETURN options" },
	{ "a SORT RETURN (MIN FOO) (DATE) UTF-8 ALL\r\n", "a syntax: Unknown SEARCH RETURN option" },
	{ "a SORT RETURN (MIN) UTF-8 ALL\r\n", "a syntax: Missing '(' before the sort criteria" },
	{ "a SEARCH RETURN (PARTIAL 1) ALL\r\n", "a syntax: Invalid PARTIAL range: expected first:last" },
	{ "a SEARCH RETURN (PARTIAL 1:*) ALL\r\n", "a syntax: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL *:1) ALL\r\n", "a syntax: Invalid PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 0:4) ALL\r\n", "a syntax: Zero is not allowed in PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL) ALL\r\n", "a syntax: Expected a space before PARTIAL range" },
	{ "a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL\r\n", "a syntax: PARTIAL given twice in the RETURN options" },
	{ "a SEARCH RETURN (ALL PARTIAL 1:2) ALL\r\n", "a syntax: PARTIAL and ALL cannot be used together" },
	{ "a SEARCH RETURN (UPDATE UPDATE) ALL\r\n", "a syntax: UPDATE given twice in the RETURN options" },
	{ "a SORT RETURN (PARTIAL 1:*) (ARRIVAL) US-ASCII ALL\r\n", "a syntax: Invalid PARTIAL range" },
	{ "a CANCELUPDATE\r\n", "a syntax: Missing argument: search tag" },
	{ "a CANCELUPDATE B01\r\n", "a syntax: CANCELUPDATE takes quoted tags" },
	{ "a CANCELUPDATE \"B01\" \r\n", "a syntax: CANCELUPDATE takes quoted tags" },
	{ "a LSUB \"\" (x)\r\n", "a syntax: Invalid characters in mailbox pattern" },
	{ "a STATUS INBOX MESSAGES\r\n", "a syntax: Missing '(' before the STATUS items" },
	{ "a STATUS INBOX (MESSAGES FOO)\r\n", "a syntax: Unknown STATUS item: FOO" },
	{ "a STATUS INBOX (MESSAGES\r\n", "a syntax: Missing ')' at the end of the STATUS items" },
	{ "a STATUS INBOX (DELETED-STORAGES)\r\n", "a syntax: Unknown STATUS item: DELETED-STORAGES" },
	{ "a GETQUOTAROOT\r\n", "a syntax: Missing argument: mailbox name" },
	{ "a GETQUOTAROOT INBOX Sent\r\n", "a syntax: Unexpected extra arguments" },
	{ "a GETQUOTA\r\n", "a syntax: Missing argument: quota root" },
	{ "a GETQUOTA (x)\r\n", "a syntax: Invalid characters in quota root" },
	{ "a SETQUOTA \"\"\r\n", "a syntax: Missing argument: quota resource list" },
	{ "a SETQUOTA \"\" STORAGE 1\r\n", "a syntax: Missing '(' before the quota resource list" },
	{ "a SETQUOTA \"\" (STORAGE)\r\n", "a syntax: Expected a space before quota resource limit" },
	{ "a SETQUOTA \"\" (STORAGE x)\r\n", "a syntax: Expected a number for quota resource limit" },
	{ "a SETQUOTA \"\" (STORAGE 18446744073709551616)\r\n", "a syntax: Number too large in quota resource limit" },
	{ "a SETQUOTA \"\" (STORAGE 1\r\n", "a syntax: Missing ')' at the end of the quota resource list" },
	{ "a SETQUOTA \"\" (A 1 B 2 C 3 D 4 E 5 F 6 G 7 H 8 I 9 J 10 K 11 L 12 M 13 N 14 O 15 P 16 Q 17)\r\n",
	  "a syntax: Too many quota resources" },
	{ "a SETQUOTA \"\" (STORAGE 1) x\r\n", "a syntax: Unexpected extra arguments" },
	{ "a UID GETQUOTA \"\"\r\n", "a syntax: Unknown UID command: GETQUOTA" },
	{ "a APPEND INBOX \"hello\"\r\n", "a syntax: Invalid date-time" },
	{ "a APPEND INBOX (\\Seen) hello\r\n", "a syntax: The APPEND message must be a literal" },
	{ "a APPEND INBOX (\\Recent) {3}\r\n", "a syntax: \\Recent cannot be set by a client" },
	{ "a APPEND INBOX \"31-Feb-2024 10:00:00 +0000\" {3}\r\n", "a syntax: Invalid date-time" },
	{ "a CHECK 1\r\n", "a syntax: Unexpected extra arguments" },
	{ "a CLOSE x\r\n", "a syntax: Unexpected extra arguments" },
	{ "a EXPUNGE 1\r\n", "a syntax: Unexpected extra arguments" },
	{ "a UID EXPUNGE\r\n", "a syntax: Missing argument: sequence set" },
	{ "a UID EXPUNGE 1:x\r\n", "a syntax: Invalid sequence set" },
	{ "a SEARCH\r\n", "a syntax: Missing argument: SEARCH criteria" },
	{ "a SEARCH FOO\r\n", "a syntax: Unknown SEARCH key: FOO" },
	{ "a SEARCH (SEEN\r\n", "a syntax: Missing ')' in SEARCH criteria" },
	{ "a SEARCH SEEN)\r\n", "a syntax: Unexpected characters in SEARCH criteria" },
	{ "a SEARCH SINCE 30-Feb-2024\r\n", "a syntax: Invalid date" },
	{ "a SEARCH OR SEEN\r\n", "a syntax: Missing argument: second OR search key" },
	{ "a SEARCH LARGER x\r\n", "a syntax: Expected a number for LARGER" },
	{ "a SEARCH HEADER Subject\r\n", "a syntax: Missing argument: header value" },
	{ "a SEARCH 0:3\r\n", "a syntax: Invalid sequence set" },
	{ "a SEARCH CHARSET\r\n", "a syntax: Missing argument: charset" },
	{ "a SORT\r\n", "a syntax: Missing argument: sort criteria" },
	{ "a SORT SUBJECT UTF-8 ALL\r\n", "a syntax: Missing '(' before the sort criteria" },
	{ "a SORT () UTF-8 ALL\r\n", "a syntax: Missing sort key" },
	{ "a SORT (REVERSE) UTF-8 ALL\r\n", "a syntax: Expected a space before sort key" },
	{ "a SORT (FOO) UTF-8 ALL\r\n", "a syntax: Unknown sort key: FOO" },
	{ "a SORT (DATE UTF-8 ALL\r\n", "a syntax: Unknown sort key: UTF-8" },
	{ "a SORT (DATE) ALL\r\n", "a syntax: Missing argument: search criteria" },
	{ "a SORT (DATE) UTF-8\r\n", "a syntax: Missing argument: search criteria" },
	{ "a SORT (DATE) UTF-8 FOO\r\n", "a syntax: Unknown SEARCH key: FOO" },
	{ "a THREAD\r\n", "a syntax: Missing argument: thread algorithm" },
	{ "a THREAD FOO UTF-8 ALL\r\n", "a syntax: Unknown thread algorithm" },
	{ "a THREAD REFERENCESX UTF-8 ALL\r\n", "a syntax: Unknown thread algorithm" },
	{ "a THREAD REFERENCES UTF-8\r\n", "a syntax: Missing argument: search criteria" },
	{ "a THREAD REFERENCES UTF-8 ALL)\r\n", "a syntax: Unexpected characters in SEARCH criteria" },
	{ "a FETCH 1 (FLAGS UID\r\n", "a syntax: Missing ')' in FETCH attribute list" },
	{ "a FETCH 1 (FLAGS BOGUS)\r\n", "a syntax: Unknown FETCH attribute: BOGUS" },
	{ "a FETCH 1:2: FLAGS\r\n", "a syntax: Invalid sequence set" },
	{ "a FETCH 1 BODY[HEADER.FIELDS]\r\n", "a syntax: Expected a space before header field list" },
	{ "a FETCH 1 BODY[1.2.FOO]\r\n", "a syntax: Invalid body section" },
	{ "a FETCH 1 BODY[MIME]\r\n", "a syntax: Invalid body section" },
	{ "a FETCH 1 BODY[1\r\n", "a syntax: Missing ']' at the end of the body section" },
	/* 32 part numbers at most (33 here) */
	{ "a FETCH 1 BODY[1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1]\r\n",
	  "a syntax: Body section nested too deeply (at most 32 part numbers)" },
	{ "a FETCH 1 BODY[]<1>\r\n", "a syntax: Invalid partial range: expected <offset.count>" },
	{ "a FETCH 1 BODY[]<1.0>\r\n", "a syntax: Zero is not allowed in partial count" },
	{ "a FETCH 1 BODY.PEEK\r\n", "a syntax: BODY.PEEK needs a section" },
	{ "a FETCH 1 ()\r\n", "a syntax: Empty FETCH attribute list" },
	{ "a FETCH 1 FLAGS (CHANGEDSINCE x)\r\n", "a syntax: Expected a number for CHANGEDSINCE value" },
	{ "a STORE 1 FLAGS\r\n", "a syntax: Missing argument: flags" },
	{ "a STORE 1 +FLAGZ (\\Seen)\r\n", "a syntax: Invalid STORE data item: expected [+|-]FLAGS[.SILENT]" },
	{ "a STORE 1 FLAGS (\\Seen\r\n", "a syntax: Missing ')' at the end of the flag list" },
	{ "a STORE 1 FLAGS (\\Recent)\r\n", "a syntax: \\Recent cannot be set by a client" },
	{ "a COPY 1\r\n", "a syntax: Missing argument: mailbox name" },
	{ "a COPY x Trash\r\n", "a syntax: Invalid sequence set" },
	{ "a MOVE 1:* \r\n", "a syntax: Missing argument: mailbox name" },
	{ "a UID MOVE\r\n", "a syntax: Missing argument: sequence set" },
	{ "a UID NOOP\r\n", "a syntax: Unknown UID command: NOOP" },
	{ "a UNSELECT now\r\n", "a syntax: Unexpected extra arguments" },
	{ "a NAMESPACE x\r\n", "a syntax: Unexpected extra arguments" },
	{ "a ID\r\n", "a syntax: Missing argument: ID parameters" },
	{ "a ID (\"name\")\r\n", "a syntax: Expected a space before ID field value" },
	{ "a ID name\r\n", "a syntax: Expected NIL or '(' for the ID parameters" },
	{ "a ENABLE\r\n", "a syntax: Missing argument: capability" },
	{ "a IDLE now\r\n", "a syntax: Unexpected extra arguments" },
	{ "a FROB\r\n", "a syntax: Unknown command: FROB" },
	{ "a\r\n", "a syntax: Missing argument: command name" },
	{ " NOOP\r\n", "* syntax: Missing tag" },
	{ "a+b NOOP\r\n", "* syntax: Invalid tag" },
	{ "a NOOP\rx\r\n", "a syntax: Bare CR in command" },
	{ "a SELECT caf\xc3\xa9\r\n", "a syntax: Invalid characters in mailbox name" },
	{ "a LOGIN fr\x01" "ed x\r\n", "a syntax: Invalid characters in user name" },
	{ "a SEARCH KEYWORD a\"b\"\r\n", "a syntax: Invalid characters in KEYWORD" },
	{ "a FETCH 1 BINARY[1.TEXT]\r\n", "a syntax: Invalid BINARY section: only part numbers are allowed" },
	{ "a FETCH 1 BINARY[HEADER]\r\n", "a syntax: Invalid BINARY section: only part numbers are allowed" },
	{ "a FETCH 1 BINARY.PEEK[1.]\r\n", "a syntax: Invalid BINARY section: only part numbers are allowed" },
	{ "a FETCH 1 BINARY[0]\r\n", "a syntax: Zero is not allowed in BINARY section part" },
	{ "a FETCH 1 BINARY.SIZE[1]<0.5>\r\n", "a syntax: BINARY.SIZE takes no partial range" },
	{ "a FETCH 1 BINARY\r\n", "a syntax: BINARY needs a section" },
	{ "a FETCH 1 (BINARY.SIZE UID)\r\n", "a syntax: BINARY.SIZE needs a section" },
	{ "a COMPRESS\r\n", "a syntax: Missing argument: compression mechanism" },
	{ "a COMPRESS DEFLATE now\r\n", "a syntax: Unexpected extra arguments" },
};

static void test_invalid_commands(void)
{
	for (size_t i = 0; i < COUNT_OF(invalid); i++) {
		/* The error, then the parser is back in step for the next command. */
		struct agbuf wire = AGBUF_INIT, expect = AGBUF_INIT;
		agbuf_printf(&wire, "%sz NOOP\r\n", invalid[i].wire);
		agbuf_printf(&expect, "ERR %s\nCMD z NOOP\n", invalid[i].err);
		expect_log(wire.data, expect.data);
		agbuf_free(&wire);
		agbuf_free(&expect);
	}
}

static void test_search_tree(void)
{
	expect_log("t SEARCH NOT NOT OR (FROM a TO b) UID 1,3\r\n",
		   "CMD t SEARCH (NOT NOT OR (FROM \"a\" TO \"b\") UID 1,3)\n");
	/* Nesting beyond the limit is refused, not recursed into. */
	struct agbuf wire = AGBUF_INIT;
	agbuf_puts(&wire, "t SEARCH ");
	for (int i = 0; i < 100; i++)
		agbuf_putc(&wire, '(');
	agbuf_puts(&wire, "ALL");
	for (int i = 0; i < 100; i++)
		agbuf_putc(&wire, ')');
	agbuf_puts(&wire, "\r\n");
	expect_fed(wire.data, strlen(wire.data), 0, NULL, DUMP_ACCEPT,
		   "ERR t syntax: SEARCH criteria nested too deeply\n");
	agbuf_reset(&wire);
	agbuf_puts(&wire, "t SEARCH");
	for (int i = 0; i < 100; i++)
		agbuf_puts(&wire, " NOT");
	agbuf_puts(&wire, " ALL\r\n");
	expect_fed(wire.data, strlen(wire.data), 0, NULL, DUMP_ACCEPT,
		   "ERR t syntax: SEARCH criteria nested too deeply\n");
	agbuf_free(&wire);
}

/* Parentheses inside parentheses and OR of OR keep their shape. */
static void test_search_nested_or(void)
{
	expect_log("t SEARCH ((NOT (DELETED)) OR OR ANSWERED DRAFT SEEN)\r\n",
		   "CMD t SEARCH (((NOT (DELETED)) OR OR ANSWERED DRAFT SEEN))\n");
}

/* ---- literals ---- */

static void test_literal_sync_accept(void)
{
	expect_log("a LOGIN {4}\r\nfred {6}\r\nsecret\r\n",
		   "LIT a 4\nLIT a 6\nCMD a LOGIN \"fred\" \"secret\"\n");
}

static void test_literal_sync_reject(void)
{
	const char *wire = "a LOGIN {4}\r\nb NOOP\r\n";
	expect_fed(wire, strlen(wire), 1, NULL, DUMP_REJECT, "LIT a 4\nCMD b NOOP\n");
}

static void test_literal_nonsync(void)
{
	expect_log("a LOGIN {4+}\r\nfred {0+}\r\n\r\n", "CMD a LOGIN \"fred\" \"\"\n");
	/* Literal bytes are taken as they are, CRLF included. */
	const char wire[] = "a SEARCH TEXT {5+}\r\na\r\n-b\r\n";
	expect_fed(wire, sizeof(wire) - 1, 1, NULL, DUMP_ACCEPT,
		   "CMD a SEARCH (TEXT \"a\\x0d\\x0a-b\")\n");
}

/* NUL is not a CHAR8 (RFC 3501 9): a literal with one is refused, as the
 * quoted form is, instead of reaching the server cut at the NUL. */
static void test_literal_nul(void)
{
	const char create[] = "a CREATE {5+}\r\nzz\0yy\r\nz NOOP\r\n";
	expect_fed(create, sizeof(create) - 1, 1, NULL, DUMP_ACCEPT,
		   "ERR a syntax: Invalid character (NUL) in literal mailbox name\nCMD z NOOP\n");
	const char login[] = "a LOGIN {4+}\r\nfred {3+}\r\np\0w\r\n";
	expect_fed(login, sizeof(login) - 1, 1, NULL, DUMP_ACCEPT,
		   "ERR a syntax: Invalid character (NUL) in literal password\n");
	const char search[] = "a SEARCH TEXT {3+}\r\na\0b\r\n";
	expect_fed(search, sizeof(search) - 1, 1, NULL, DUMP_ACCEPT,
		   "ERR a syntax: Invalid character (NUL) in literal TEXT\n");
}

static void test_literal_too_large(void)
{
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_literal = 10;
	/* Synchronising: refused before the client sends it. */
	const char *wire = "a LOGIN {11}\r\nb NOOP\r\n";
	expect_fed(wire, strlen(wire), 0, &lim, DUMP_ACCEPT,
		   "ERR a literal: Literal too large\nCMD b NOOP\n");
	/* Non-synchronising: the bytes come anyway and are skipped, with the
	 * rest of the command. */
	wire = "a LOGIN {11+}\r\nb NOOP\r\nxx pass {3+}\r\nabc\r\nc NOOP\r\n";
	for (size_t piece = 0; piece < 4; piece++)
		expect_fed(wire, strlen(wire), piece, &lim, DUMP_ACCEPT,
			   "ERR a literal: Literal too large\nCMD c NOOP\n");
}

static void test_too_many_literals(void)
{
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_literals = 2;
	const char *wire = "a SEARCH TEXT {1+}\r\nx TEXT {1+}\r\ny TEXT {1+}\r\nz\r\nb NOOP\r\n";
	expect_fed(wire, strlen(wire), 1, &lim, DUMP_ACCEPT,
		   "ERR a command: Too many literals in one command\nCMD b NOOP\n");
}

static void test_error_before_literal(void)
{
	/* The error is known before the literal: no continuation is asked. */
	expect_log("a FROB {5}\r\nb NOOP\r\n", "ERR a syntax: Unknown command: FROB\nCMD b NOOP\n");
	/* A non-synchronising one is skipped, whatever it holds. */
	expect_log("a FROB {10+}\r\nc NOOP\r\nxx\r\nb NOOP\r\n", "ERR a syntax: Unknown command: FROB\nCMD b NOOP\n");
}

/* ---- APPEND ---- */

static void test_append_streamed(void)
{
	expect_log("A003 APPEND saved-messages (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {11}\r\n"
		   "Subj: x\r\n\r\n\r\n",
		   "LIT A003 11 message\nAPPEND-BEGIN 0 11 \"saved-messages\"\nDATA Subj: x\r\n\r\n\n"
		   "APPEND-END 0\nCMD A003 APPEND \"saved-messages\" [(\\Seen) 1996-07-17T02:44:25-0700 11]\n");
	expect_log("a APPEND INBOX {0+}\r\n\r\n",
		   "APPEND-BEGIN 0 0 \"INBOX\"\nAPPEND-END 0\nCMD a APPEND \"INBOX\" [0]\n");
	/* MULTIAPPEND: two messages in one command. */
	expect_log("a APPEND x {2+}\r\nab (\\Draft) {1+}\r\nc\r\n",
		   "APPEND-BEGIN 0 2 \"x\"\nDATA ab\nAPPEND-END 0\nAPPEND-BEGIN 1 1 \"x\"\nDATA c\nAPPEND-END 1\n"
		   "CMD a APPEND \"x\" [2] [(\\Draft) 1]\n");
	/* Garbage after the message: the error concludes the APPEND. */
	expect_log("a APPEND x {2+}\r\nab junk\r\nb NOOP\r\n",
		   "APPEND-BEGIN 0 2 \"x\"\nDATA ab\nAPPEND-END 0\nERR a syntax: The APPEND message must be a literal\n"
		   "CMD b NOOP\n");
}

/* literal8 (RFC 3516): only as an APPEND message, where it may hold NUL. */
static void test_append_literal8(void)
{
	/* the NUL reaches the session as data (compared with memcmp: the log holds it) */
	const char nonsync[] = "a APPEND x ~{3+}\r\na\0b\r\n";
	const char want[] = "APPEND-BEGIN 0 3 \"x\"\nDATA a\0b\nAPPEND-END 0\nCMD a APPEND \"x\" [~3]\n";
	for (size_t piece = 0; piece <= 3; piece++) {
		struct agbuf out = AGBUF_INIT;
		dump_feed(&out, nonsync, sizeof(nonsync) - 1, piece, 7, NULL, DUMP_ACCEPT);
		CU_ASSERT_EQUAL(out.len, sizeof(want) - 1);
		CU_ASSERT(out.len == sizeof(want) - 1 && memcmp(out.data, want, out.len) == 0);
		agbuf_free(&out);
	}
	/* synchronising, with flags, and a MULTIAPPEND mixing both kinds */
	expect_log("a APPEND x (\\Seen) ~{2}\r\nab ~{1+}\r\nc {1+}\r\nd\r\n",
		   "LIT a 2 message\nAPPEND-BEGIN 0 2 \"x\"\nDATA ab\nAPPEND-END 0\nAPPEND-BEGIN 1 1 \"x\"\nDATA c\n"
		   "APPEND-END 1\nAPPEND-BEGIN 2 1 \"x\"\nDATA d\nAPPEND-END 2\nCMD a APPEND \"x\" [(\\Seen) ~2] [~1] [1]\n");
	/* CATENATE (RFC 4469): TEXT literals stream like messages, numbered
	 * across the command; URLs are strings (a small literal too) */
	expect_log("a APPEND x (\\Seen) CATENATE (URL \"/INBOX;UIDVALIDITY=9/;UID=2/;section=HEADER\" "
		   "TEXT {3}\r\nabc URL {5}\r\n/a/;b TEXT ~{1+}\r\nd) catenate (text {1+}\r\ne) {1+}\r\nf\r\n",
		   "LIT a 3 message\nAPPEND-BEGIN 0 3 \"x\"\nDATA abc\nAPPEND-END 0\nLIT a 5\n"
		   "APPEND-BEGIN 1 1 \"x\"\nDATA d\nAPPEND-END 1\nAPPEND-BEGIN 2 1 \"x\"\nDATA e\nAPPEND-END 2\n"
		   "APPEND-BEGIN 3 1 \"x\"\nDATA f\nAPPEND-END 3\n"
		   "CMD a APPEND \"x\" [(\\Seen) CATENATE URL \"/INBOX;UIDVALIDITY=9/;UID=2/;section=HEADER\" TEXT 3#0 "
		   "URL \"/a/;b\" TEXT ~1#1] [CATENATE TEXT 1#2] [1]\n");
	expect_log("a APPEND x CATENATE (URL \"/x/;uid=1\")\r\n", "CMD a APPEND \"x\" [CATENATE URL \"/x/;uid=1\"]\n");
	expect_log("a APPEND x CATENATE ()\r\nz NOOP\r\n", "ERR a syntax: Empty CATENATE list\nCMD z NOOP\n");
	expect_log("a APPEND x CATENATE (FOO 1)\r\nz NOOP\r\n",
		   "ERR a syntax: Expected TEXT or URL in CATENATE\nCMD z NOOP\n");
	expect_log("a APPEND x CATENATE (TEXT \"abc\")\r\nz NOOP\r\n",
		   "ERR a syntax: The CATENATE TEXT part must be a literal\nCMD z NOOP\n");
	expect_log("a APPEND x CATENATE URL \"/x\"\r\nz NOOP\r\n",
		   "ERR a syntax: Missing '(' before the CATENATE parts\nCMD z NOOP\n");
	expect_log("a APPEND x CATENATE (URL \"/x\"\r\nz NOOP\r\n",
		   "ERR a syntax: Missing ')' at the end of the CATENATE parts\nCMD z NOOP\n");
	/* elsewhere it is a syntax error, the literal skipped, the parser in step */
	expect_log("a LOGIN ~{4+}\r\nfred x\r\nz NOOP\r\n",
		   "ERR a syntax: Expected a space before password\nCMD z NOOP\n");
	expect_log("a APPEND x ~ {2+}\r\nab\r\nz NOOP\r\n",
		   "ERR a syntax: The APPEND message must be a literal\nCMD z NOOP\n");
}

static void test_append_large_not_buffered(void)
{
	/* A 5 MiB message with a 64 KiB command limit: the parser passes it
	 * through in the caller's own pieces instead of holding it. */
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_command = 65536;
	struct imap_parser *p = imap_parser_new(&lim);
	const size_t size = 5u << 20;
	char head[64];
	int n = snprintf(head, sizeof(head), "a APPEND INBOX {%zu+}\r\n", size);
	size_t used;
	struct imap_event ev;
	CU_ASSERT_EQUAL(imap_parser_next(p, head, (size_t)n, &used, &ev), IMAP_EV_APPEND_BEGIN);
	CU_ASSERT_EQUAL(ev.literal_size, size);
	CU_ASSERT_EQUAL(used, (size_t)n);
	char *chunk = malloc(65536);
	memset(chunk, 'x', 65536);
	size_t seen = 0;
	int data_events = 0;
	while (seen < size) {
		size_t off = 0;
		while (off < 65536) {
			enum imap_event_kind k = imap_parser_next(p, chunk + off, 65536 - off, &used, &ev);
			CU_ASSERT_EQUAL_FATAL(k, IMAP_EV_APPEND_DATA);
			CU_ASSERT_PTR_EQUAL(ev.data, chunk + off); /* no copy */
			seen += ev.len;
			off += used;
			data_events++;
		}
	}
	CU_ASSERT_EQUAL(seen, size);
	CU_ASSERT_EQUAL(data_events, 80);
	CU_ASSERT_EQUAL(imap_parser_next(p, "\r\n", 2, &used, &ev), IMAP_EV_APPEND_END);
	CU_ASSERT_EQUAL(imap_parser_next(p, "\r\n", 2, &used, &ev), IMAP_EV_COMMAND);
	CU_ASSERT_EQUAL(ev.cmd->u.append.messages[0].size, size);
	imap_command_free(ev.cmd);
	free(chunk);
	imap_parser_free(p);
}

static void test_append_too_large(void)
{
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_append = 100;
	const char *wire = "a APPEND INBOX {101}\r\nb APPEND INBOX {100}\r\n";
	expect_fed(wire, strlen(wire), 0, &lim, DUMP_REJECT,
		   "ERR a literal: Literal too large\nLIT b 100 message\n");
}

static void test_literal_event_has_append_so_far(void)
{
	struct imap_parser *p = imap_parser_new(NULL);
	const char *wire = "x APPEND Drafts (\\Draft) {3}\r\n";
	size_t used;
	struct imap_event ev;
	CU_ASSERT_EQUAL(imap_parser_next(p, wire, strlen(wire), &used, &ev), IMAP_EV_LITERAL);
	CU_ASSERT_STRING_EQUAL(ev.tag, "x");
	CU_ASSERT_TRUE(ev.literal_is_message);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev.cmd);
	CU_ASSERT_STRING_EQUAL(ev.cmd->u.append.mailbox.name.data, "Drafts");
	CU_ASSERT_EQUAL(ev.cmd->u.append.messages[0].flags.count, 1);
	/* Undecided: the same event again, no byte taken. */
	CU_ASSERT_EQUAL(imap_parser_next(p, "abc", 3, &used, &ev), IMAP_EV_LITERAL);
	CU_ASSERT_EQUAL(used, 0);
	imap_parser_literal_reject(p);
	CU_ASSERT_EQUAL(imap_parser_next(p, "y NOOP\r\n", 8, &used, &ev), IMAP_EV_COMMAND);
	CU_ASSERT_STRING_EQUAL(ev.cmd->tag.data, "y");
	imap_command_free(ev.cmd);
	imap_parser_free(p);
}

/* ---- limits and resynchronisation ---- */

static void test_line_too_long(void)
{
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_line = 100;
	struct imap_parser *p = imap_parser_new(&lim);
	/* 1 MiB without a line end: refused as soon as the limit passes, and
	 * nothing of it kept. */
	char *big = malloc(1 << 20);
	memset(big, 'a', 1 << 20);
	memcpy(big, "tag1 LOGIN ", 11);
	size_t used;
	struct imap_event ev;
	CU_ASSERT_EQUAL(imap_parser_next(p, big, 60, &used, &ev), IMAP_EV_NONE);
	CU_ASSERT_EQUAL(imap_parser_next(p, big + 60, (1 << 20) - 60, &used, &ev), IMAP_EV_ERROR);
	CU_ASSERT_EQUAL(ev.error, IMAP_ERR_LINE_TOO_LONG);
	CU_ASSERT_STRING_EQUAL(ev.tag, "tag1");
	CU_ASSERT_STRING_EQUAL(ev.text, "Line too long");
	CU_ASSERT_EQUAL(imap_parser_next(p, big + 60, (1 << 20) - 60, &used, &ev), IMAP_EV_NONE);
	CU_ASSERT_EQUAL(used, (size_t)(1 << 20) - 60);
	CU_ASSERT_EQUAL(imap_parser_next(p, "x\r\nb NOOP\r\n", 11, &used, &ev), IMAP_EV_COMMAND);
	CU_ASSERT_STRING_EQUAL(ev.cmd->tag.data, "b");
	imap_command_free(ev.cmd);
	free(big);
	imap_parser_free(p);

	/* Exactly at the limit is fine; one byte more is not. */
	char line[128];
	memset(line, 'x', sizeof(line));
	memcpy(line, "a LOGIN u ", 10);
	memcpy(line + 100, "\r\nb NOOP\r\n", 10);
	expect_fed(line, 110, 1, &lim, DUMP_ACCEPT,
		   "CMD a LOGIN \"u\" \"" /* 90 x */
		   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\nCMD b NOOP\n");
	memset(line, 'x', sizeof(line));
	memcpy(line, "a LOGIN u ", 10);
	memcpy(line + 101, "\r\nb NOOP\r\n", 10);
	expect_fed(line, 111, 1, &lim, DUMP_ACCEPT, "ERR a line: Line too long\nCMD b NOOP\n");
	/* An over-long line announcing a non-synchronising literal: the
	 * literal is skipped too. */
	struct agbuf w = AGBUF_INIT;
	agbuf_puts(&w, "a LOGIN ");
	for (int i = 0; i < 200; i++)
		agbuf_putc(&w, 'y');
	agbuf_puts(&w, " {8+}\r\nb NOOP\r\n\r\nc NOOP\r\n");
	for (size_t piece = 0; piece < 3; piece++)
		expect_fed(w.data, w.len, piece, &lim, DUMP_ACCEPT,
			   "ERR a line: Line too long\nCMD c NOOP\n");
	agbuf_free(&w);
}

static void test_command_too_large(void)
{
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_command = 200;
	lim.max_literal = 150;
	const char *wire = "a SEARCH TEXT {100+}\r\n";
	struct agbuf w = AGBUF_INIT;
	agbuf_puts(&w, wire);
	for (int i = 0; i < 100; i++)
		agbuf_putc(&w, 'q');
	agbuf_puts(&w, " TEXT {90+}\r\n");
	for (int i = 0; i < 90; i++)
		agbuf_putc(&w, 'r');
	agbuf_puts(&w, "\r\nb NOOP\r\n");
	expect_fed(w.data, w.len, 1, &lim, DUMP_ACCEPT, "ERR a literal: Literal too large\nCMD b NOOP\n");
	agbuf_free(&w);
}

static void test_empty_lines_and_lf(void)
{
	/* Empty lines between commands carry nothing; a bare LF ends a line. */
	expect_log("\r\n\r\na NOOP\nb NOOP\r\n", "CMD a NOOP\nCMD b NOOP\n");
}

static void test_pipelined(void)
{
	expect_log("a NOOP\r\nb LOGIN x y\r\nc SELECT INBOX\r\nd FETCH 1 UID\r\n",
		   "CMD a NOOP\nCMD b LOGIN \"x\" \"y\"\nCMD c SELECT \"INBOX\"\nCMD d FETCH 1 (UID)\n");
}

/* ---- IDLE and SASL modes ---- */

static void test_idle(void)
{
	expect_log("a IDLE\r\ndone\r\nb NOOP\r\n", "CMD a IDLE\nDONE\nCMD b NOOP\n");
	expect_log("a IDLE\r\nb NOOP\r\nc NOOP\r\n", "CMD a IDLE\nERR * syntax: Expected DONE to end IDLE\nCMD c NOOP\n");
}

static void test_sasl(void)
{
	expect_log("a AUTHENTICATE PLAIN\r\nAHVzZXIAcGFzcw==\r\nb NOOP\r\n",
		   "CMD a AUTHENTICATE \"PLAIN\"\nSASL AHVzZXIAcGFzcw==\nCMD b NOOP\n");
	expect_log("a AUTHENTICATE LOGIN\r\n*\r\n", "CMD a AUTHENTICATE \"LOGIN\"\nSASL *\n");
	/* A SASL line is not a command: literal-like text stays text. */
	expect_log("a AUTHENTICATE X\r\n{5}\r\n", "CMD a AUTHENTICATE \"X\"\nSASL {5}\n");
}

static void test_sasl_line_too_long(void)
{
	struct imap_parser_limits lim;
	imap_parser_default_limits(&lim);
	lim.max_line = 24;
	const char *wire = "a AUTHENTICATE PLAIN\r\nQUFBQUFBQUFBQUFBQUFBQUFBQUFB\r\nb NOOP\r\n";
	for (size_t piece = 0; piece < 3; piece++)
		expect_fed(wire, strlen(wire), piece, &lim, DUMP_ACCEPT,
			   "CMD a AUTHENTICATE \"PLAIN\"\nERR * line: Line too long\nCMD b NOOP\n");
}

static void test_boundary_queries(void)
{
	struct imap_parser *p = imap_parser_new(NULL);
	size_t used;
	struct imap_event ev;
	CU_ASSERT_TRUE(imap_parser_at_command_start(p));
	CU_ASSERT_EQUAL(imap_parser_next(p, "a NO", strlen("a NO"), &used, &ev), IMAP_EV_NONE);
	CU_ASSERT_FALSE(imap_parser_at_command_start(p));
	CU_ASSERT_EQUAL(imap_parser_next(p, "OP\r\n", strlen("OP\r\n"), &used, &ev), IMAP_EV_COMMAND);
	imap_command_free(ev.cmd);
	CU_ASSERT_TRUE(imap_parser_at_command_start(p));
	CU_ASSERT_EQUAL(imap_parser_next(p, "b LOGIN {5+}\r\nab", strlen("b LOGIN {5+}\r\nab"), &used, &ev), IMAP_EV_NONE);
	CU_ASSERT_EQUAL(imap_parser_literal_remaining(p), 3);
	CU_ASSERT_FALSE(imap_parser_at_command_start(p));
	CU_ASSERT_EQUAL_FATAL(imap_parser_next(p, "cde x\r\n", strlen("cde x\r\n"), &used, &ev), IMAP_EV_COMMAND);
	CU_ASSERT_EQUAL(imap_parser_literal_remaining(p), 0);
	CU_ASSERT_STRING_EQUAL(ev.cmd->u.login.user.data, "abcde");
	imap_command_free(ev.cmd);
	CU_ASSERT_TRUE(imap_parser_at_command_start(p));
	/* Freeing a parser in the middle of an APPEND releases everything. */
	CU_ASSERT_EQUAL(imap_parser_next(p, "c APPEND x {9+}\r\nab", strlen("c APPEND x {9+}\r\nab"), &used, &ev), IMAP_EV_APPEND_BEGIN);
	imap_parser_free(p);
}

/* ---- the workload of real clients ---- */

#ifndef EXPECTED_PATH
#define EXPECTED_PATH "tests/imap/data/dataset_expected.txt"
#endif
#ifndef DATASET_PATH
#define DATASET_PATH "tests/imap/data/dataset_commands.txt"
#endif

static void test_dataset(void)
{
	FILE *f = fopen(DATASET_PATH, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct agbuf wire = AGBUF_INIT, expect = AGBUF_INIT;
	char line[4096];
	int count = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		char *tab = strchr(line, '\t');
		CU_ASSERT_PTR_NOT_NULL_FATAL(tab);
		*tab = '\0';
		const char *cmd = tab + 1;
		char *msg = strstr(cmd, "{MSG}");
		agbuf_printf(&wire, "d%d ", count);
		if (msg != NULL) {
			static const char body[] = "From: a@b\r\nSubject: hi\r\n\r\nhello\r\n";
			agbuf_append(&wire, cmd, (size_t)(msg - cmd));
			agbuf_printf(&wire, "{%zu}\r\n%s", sizeof(body) - 1, body);
			agbuf_puts(&wire, msg + 5);
		} else {
			agbuf_puts(&wire, cmd);
		}
		agbuf_puts(&wire, "\r\n");
		if (strcmp(line, "Idle") == 0)
			agbuf_puts(&wire, "DONE\r\n");
		count++;
	}
	fclose(f);
	CU_ASSERT_EQUAL(count, 240);
	char *whole = feed(wire.data, 0);
	/* Every shape parsed: 240 commands, not one error. */
	int commands = 0, errors = 0;
	for (const char *s = whole; *s != '\0'; s = strchr(s, '\n') + 1) {
		if (strncmp(s, "CMD ", 4) == 0)
			commands++;
		if (strncmp(s, "ERR ", 4) == 0) {
			errors++;
			fprintf(stderr, "\n  %.*s", (int)(strchr(s, '\n') - s), s);
		}
	}
	CU_ASSERT_EQUAL(commands, 240);
	CU_ASSERT_EQUAL(errors, 0);
	/* And the kind each shape names is the one parsed. */
	f = fopen(DATASET_PATH, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	const char *s = whole;
	while (fgets(line, sizeof(line), f) != NULL) {
		while (strncmp(s, "CMD ", 4) != 0)
			s = strchr(s, '\n') + 1;
		const char *name = strchr(s + 4, ' ') + 1;
		if (strncmp(name, "UID ", 4) == 0)
			name += 4;
		size_t n = strcspn(line, "\t");
		CU_ASSERT_EQUAL(strncasecmp(name, line, n), 0);
		CU_ASSERT_TRUE(name[n] == ' ' || name[n] == '\n');
		s = strchr(s, '\n') + 1;
	}
	fclose(f);
	/* And each parses to what was checked by hand once and recorded. */
	f = fopen(EXPECTED_PATH, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	struct agbuf parsed = AGBUF_INIT, recorded = AGBUF_INIT;
	for (const char *l = whole; *l != '\0'; l = strchr(l, '\n') + 1)
		if (strncmp(l, "CMD ", 4) == 0 || strncmp(l, "DONE", 4) == 0 || strncmp(l, "ERR ", 4) == 0)
			agbuf_append(&parsed, l, (size_t)(strchr(l, '\n') + 1 - l));
	while (fgets(line, sizeof(line), f) != NULL)
		agbuf_puts(&recorded, line);
	fclose(f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(parsed.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(recorded.data);
	CU_ASSERT_STRING_EQUAL(parsed.data, recorded.data);
	agbuf_free(&parsed);
	agbuf_free(&recorded);
	char *bytewise = feed(wire.data, 1);
	CU_ASSERT_STRING_EQUAL(bytewise, whole);
	free(bytewise);
	free(whole);
	agbuf_free(&wire);
	agbuf_free(&expect);
}

/* ---- dates ---- */

static void test_dates(void)
{
	struct imap_datetime dt;
	CU_ASSERT_EQUAL(imap_datetime_parse("17-Jul-1996 02:44:25 -0700", 26, &dt), 0);
	CU_ASSERT_EQUAL(dt.date.year, 1996);
	CU_ASSERT_EQUAL(dt.zone_minutes, -420);
	CU_ASSERT_EQUAL(imap_datetime_to_unix(&dt), 837596665);
	CU_ASSERT_EQUAL(imap_datetime_parse(" 1-Jan-2000 00:00:00 +0000", 26, &dt), 0);
	CU_ASSERT_EQUAL(imap_datetime_to_unix(&dt), 946684800);
	CU_ASSERT_EQUAL(imap_datetime_parse("1-Jan-2000 00:00:01 +0000", 25, &dt), 0);
	CU_ASSERT_EQUAL(imap_datetime_to_unix(&dt), 946684801);
	CU_ASSERT_NOT_EQUAL(imap_datetime_parse("1-Jan-2000  00:00:00 +0000", 26, &dt), 0);
	CU_ASSERT_NOT_EQUAL(imap_datetime_parse("01-Jan-2000 00:00:00 +0000 ", 27, &dt), 0);
	CU_ASSERT_NOT_EQUAL(imap_datetime_parse("01-Jan-2000 24:00:00 +0000", 26, &dt), 0);
	CU_ASSERT_NOT_EQUAL(imap_datetime_parse("01-Foo-2000 00:00:00 +0000", 26, &dt), 0);
	CU_ASSERT_NOT_EQUAL(imap_datetime_parse("01-Jan-2000 00:00:00 0000", 25, &dt), 0);
	struct imap_date d;
	CU_ASSERT_EQUAL(imap_date_parse("29-feb-2000", 11, &d), 0);
	CU_ASSERT_NOT_EQUAL(imap_date_parse("29-Feb-1900", 11, &d), 0);
	CU_ASSERT_NOT_EQUAL(imap_date_parse("0-Jan-2000", 10, &d), 0);
	CU_ASSERT_NOT_EQUAL(imap_date_parse("1-Jan-20000", 11, &d), 0);

	struct agbuf out = AGBUF_INIT;
	imap_write_datetime(&out, 837596665, -420);
	CU_ASSERT_STRING_EQUAL(out.data, "\"17-Jul-1996 02:44:25 -0700\"");
	agbuf_reset(&out);
	imap_write_datetime(&out, 946684799, 330);
	CU_ASSERT_STRING_EQUAL(out.data, "\"01-Jan-2000 05:29:59 +0530\"");
	agbuf_reset(&out);
	imap_write_datetime(&out, -1, 0);
	CU_ASSERT_STRING_EQUAL(out.data, "\"31-Dec-1969 23:59:59 +0000\"");
	agbuf_free(&out);
}

/* ---- writer ---- */

static void test_write_strings(void)
{
	struct agbuf out = AGBUF_INIT;
	imap_quote_astring(&out, "INBOX", 5);
	imap_write_sp(&out);
	imap_quote_astring(&out, "NIL", 3);
	imap_write_sp(&out);
	imap_quote_astring(&out, "", 0);
	imap_write_sp(&out);
	imap_quote_astring(&out, "a b", 3);
	imap_write_sp(&out);
	imap_quote_string(&out, "say \"hi\"\\", 9);
	imap_write_sp(&out);
	imap_quote_nstring(&out, NULL, 0);
	CU_ASSERT_STRING_EQUAL(out.data, "INBOX \"NIL\" \"\" \"a b\" \"say \\\"hi\\\"\\\\\" NIL");
	agbuf_reset(&out);
	/* Bytes a quoted string cannot carry go out as a literal. */
	imap_quote_string(&out, "caf\xc3\xa9", 5);
	CU_ASSERT_STRING_EQUAL(out.data, "{5}\r\ncaf\xc3\xa9");
	agbuf_reset(&out);
	imap_quote_string(&out, "a\r\nb", 4);
	CU_ASSERT_STRING_EQUAL(out.data, "{4}\r\na\r\nb");
	agbuf_reset(&out);
	imap_quote_string(&out, "a\0b", 3);
	CU_ASSERT_EQUAL(out.len, 8);
	CU_ASSERT_EQUAL(memcmp(out.data, "{3}\r\na\0b", 8), 0);
	agbuf_reset(&out);
	imap_write_literal_header(&out, 1234);
	CU_ASSERT_STRING_EQUAL(out.data, "{1234}\r\n");
	agbuf_free(&out);
}

/* The hand-written number and date writers against what printf writes. */
static void test_write_numbers_and_dates(void)
{
	static const uint64_t numbers[] = { 0, 9, 10, 99, 100, 4294967295u, 4294967296u, UINT64_MAX };
	struct agbuf out = AGBUF_INIT;
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
		char want[32];
		snprintf(want, sizeof(want), "%llu", (unsigned long long)numbers[i]);
		agbuf_reset(&out);
		imap_write_number(&out, numbers[i]);
		CU_ASSERT_STRING_EQUAL(out.data, want);
	}
	/* Byte by byte across many reallocations: content and NUL stay right. */
	struct agbuf grow = AGBUF_INIT;
	for (int i = 0; i < 5000; i++) {
		agbuf_putc(&grow, (char)('a' + i % 26));
		imap_write_number(&grow, (uint64_t)i);
	}
	CU_ASSERT_EQUAL(grow.data[grow.len], '\0');
	CU_ASSERT_EQUAL(strlen(grow.data), grow.len);
	CU_ASSERT_EQUAL(memcmp(grow.data, "a0b1c2", 6), 0);
	CU_ASSERT_EQUAL(memcmp(grow.data + grow.len - 4, "4999", 4), 0);
	agbuf_free(&grow);
	static const struct {
		int64_t t;
		int zone;
		const char *want;
	} dates[] = {
		{ 837596665, -420, "\"17-Jul-1996 02:44:25 -0700\"" },
		{ 0, 0, "\"01-Jan-1970 00:00:00 +0000\"" },
		{ 946684799, 330, "\"01-Jan-2000 05:29:59 +0530\"" },
		{ -1, 0, "\"31-Dec-1969 23:59:59 +0000\"" },
		{ 951782400, -1439, "\"28-Feb-2000 00:01:00 -2359\"" },
		{ 1700000000, 5000, "\"14-Nov-2023 22:13:20 +0000\"" },        /* no such zone: UTC */
		{ 253402300800, 0, "\"01-Jan-1970 00:00:00 +0000\"" },         /* year 10000 */
	};
	for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
		agbuf_reset(&out);
		imap_write_datetime(&out, dates[i].t, dates[i].zone);
		CU_ASSERT_STRING_EQUAL(out.data, dates[i].want);
	}
	/* Four escapes are quoted, a fifth makes a literal (Dovecot's rule). */
	agbuf_reset(&out);
	imap_quote_string(&out, "\"a\"b\\\\", 6);
	CU_ASSERT_STRING_EQUAL(out.data, "\"\\\"a\\\"b\\\\\\\\\"");
	agbuf_reset(&out);
	imap_quote_string(&out, "\"a\"b\\\\\"", 7);
	CU_ASSERT_STRING_EQUAL(out.data, "{7}\r\n\"a\"b\\\\\"");
	agbuf_free(&out);
}

static void test_write_responses(void)
{
	struct agbuf out = AGBUF_INIT;
	imap_write_status(&out, "a1", IMAP_NO, IMAP_CODE_TRYCREATE, "No such mailbox");
	imap_write_status(&out, "a2", IMAP_OK, IMAP_CODE_READ_ONLY, "EXAMINE completed");
	imap_write_status(&out, NULL, IMAP_OK, IMAP_CODE_NONE, "hello\r\n* injected");
	imap_write_status(&out, "a3", IMAP_BYE, IMAP_CODE_UNAVAILABLE, "bye");
	CU_ASSERT_STRING_EQUAL(out.data, "a1 NO [TRYCREATE] No such mailbox\r\n"
					 "a2 OK [READ-ONLY] EXAMINE completed\r\n"
					 "* OK hello  * injected\r\n"
					 "* BYE [UNAVAILABLE] bye\r\n");
	agbuf_reset(&out);
	static const char *const codes[] = { "ALERT", "ALREADYEXISTS", "AUTHENTICATIONFAILED", "CANNOT", "CLIENTBUG",
					     "EXPUNGEISSUED", "INUSE", "LIMIT", "NONEXISTENT", "NOPERM", "SERVERBUG",
					     "TOOBIG", "READ-WRITE", "OVERQUOTA", "CONTACTADMIN", "COMPRESSIONACTIVE",
					     "UNKNOWN-CTE", "USEATTR" };
	enum imap_code values[] = { IMAP_CODE_ALERT, IMAP_CODE_ALREADYEXISTS, IMAP_CODE_AUTHENTICATIONFAILED,
				    IMAP_CODE_CANNOT, IMAP_CODE_CLIENTBUG, IMAP_CODE_EXPUNGEISSUED, IMAP_CODE_INUSE,
				    IMAP_CODE_LIMIT, IMAP_CODE_NONEXISTENT, IMAP_CODE_NOPERM, IMAP_CODE_SERVERBUG,
				    IMAP_CODE_TOOBIG, IMAP_CODE_READ_WRITE, IMAP_CODE_OVERQUOTA,
				    IMAP_CODE_CONTACTADMIN, IMAP_CODE_COMPRESSIONACTIVE, IMAP_CODE_UNKNOWN_CTE,
				    IMAP_CODE_USEATTR };
	for (size_t i = 0; i < COUNT_OF(codes); i++) {
		agbuf_reset(&out);
		imap_write_code(&out, values[i]);
		char want[64];
		snprintf(want, sizeof(want), "[%s] ", codes[i]);
		CU_ASSERT_STRING_EQUAL(out.data, want);
	}
	agbuf_reset(&out);
	const uint32_t one[] = { 4 }, src[] = { 1, 2, 3, 7 }, dst[] = { 10, 11, 12, 13 };
	imap_write_status_begin(&out, "A003", IMAP_OK);
	imap_write_code_appenduid(&out, 38505, one, 1);
	imap_write_status_end(&out, "APPEND completed");
	imap_write_status_begin(&out, "A004", IMAP_OK);
	imap_write_code_copyuid(&out, 38505, src, dst, 4);
	imap_write_status_end(&out, "done");
	imap_write_status_begin(&out, NULL, IMAP_OK);
	imap_write_code_uidvalidity(&out, 3857529045u);
	imap_write_status_end(&out, "UIDs valid");
	imap_write_status_begin(&out, NULL, IMAP_OK);
	imap_write_code_uidnext(&out, 4392);
	imap_write_status_end(&out, "Predicted next UID");
	static const char *const flags[] = { "\\Deleted", "\\Seen" };
	imap_write_status_begin(&out, NULL, IMAP_OK);
	imap_write_code_permanentflags(&out, flags, 2, 1);
	imap_write_status_end(&out, "Limited");
	imap_write_status_begin(&out, NULL, IMAP_OK);
	imap_write_code_capability(&out, "IMAP4rev1 IDLE");
	imap_write_status_end(&out, "ready");
	static const char *const charsets[] = { "UTF-8", "US-ASCII" };
	imap_write_status_begin(&out, "s", IMAP_NO);
	imap_write_code_badcharset(&out, charsets, 2);
	imap_write_status_end(&out, "no");
	imap_write_continuation(&out, "");
	imap_write_continuation(&out, "go ahead");
	CU_ASSERT_STRING_EQUAL(out.data, "A003 OK [APPENDUID 38505 4] APPEND completed\r\n"
					 "A004 OK [COPYUID 38505 1:3,7 10,11,12,13] done\r\n"
					 "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
					 "* OK [UIDNEXT 4392] Predicted next UID\r\n"
					 "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n"
					 "* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
					 "s NO [BADCHARSET (UTF-8 US-ASCII)] no\r\n"
					 "+ \r\n+ go ahead\r\n");
	/* ESEARCH (RFC 4731 3.1's examples) and the set it writes; ESORT's
	 * order (RFC 5267) is kept as given */
	agbuf_reset(&out);
	uint32_t found[] = { 2, 10, 11 }, sorted[] = { 7, 8, 9, 3, 1, 2, 4294967295u };
	imap_write_esearch(&out, "A282", 0, IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_COUNT, found, 3, 0, 0, 0);
	imap_write_esearch(&out, "A283", 0, IMAP_SEARCH_RET_ALL, found, 3, 0, 0, 0);
	imap_write_esearch(&out, "A285", 1, IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX, found, 3, 0, 0, 0);
	imap_write_esearch(&out, "A286", 0, IMAP_SEARCH_RET_COUNT | IMAP_SEARCH_RET_SAVE, found, 0, 0, 0, 0);
	imap_write_esearch(&out, "A287", 1, IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX | IMAP_SEARCH_RET_ALL, found, 0, 0, 0, 0);
	imap_write_esearch(&out, NULL, 0, IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX, sorted, 7, 0, 0, 0);
	imap_write_esearch(&out, "a", 0, IMAP_SEARCH_RET_ALL, found, 3, 0, 0, 917162500); /* RFC 7162 3.1.5 */
	CU_ASSERT_STRING_EQUAL(out.data, "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
					 "* ESEARCH (TAG \"A283\") ALL 2,10:11\r\n"
					 "* ESEARCH (TAG \"A285\") UID MIN 2 MAX 11\r\n"
					 "* ESEARCH (TAG \"A286\") COUNT 0\r\n"
					 "* ESEARCH (TAG \"A287\") UID\r\n"
					 "* ESEARCH MIN 7 MAX 4294967295 ALL 7:9,3,1:2,4294967295\r\n"
					 "* ESEARCH (TAG \"a\") ALL 2,10:11 MODSEQ 917162500\r\n");
	agbuf_reset(&out);
	/* RFC 5267 4.4: PARTIAL in the result's order, NIL past its end */
	const uint32_t five[] = { 5, 3, 4, 2, 1 };
	imap_write_esearch(&out, "A02", 0, IMAP_SEARCH_RET_PARTIAL, five, 5, 2, 4, 0);
	imap_write_esearch(&out, "A03", 1, IMAP_SEARCH_RET_PARTIAL | IMAP_SEARCH_RET_COUNT, five, 5, 1, 6, 0);
	imap_write_esearch(&out, "A04", 1, IMAP_SEARCH_RET_PARTIAL, five, 5, 6, 6, 0);
	imap_write_esearch(&out, "A05", 0, IMAP_SEARCH_RET_PARTIAL | IMAP_SEARCH_RET_MIN, five, 0, 1, 500, 0);
	imap_write_esearch(&out, "A06", 0, IMAP_SEARCH_RET_PARTIAL, five, 5, 5, 5, 0);
	CU_ASSERT_STRING_EQUAL(out.data, "* ESEARCH (TAG \"A02\") PARTIAL (2:4 3:4,2)\r\n"
					 "* ESEARCH (TAG \"A03\") UID PARTIAL (1:6 5,3:4,2,1) COUNT 5\r\n"
					 "* ESEARCH (TAG \"A04\") UID PARTIAL (6:6 NIL)\r\n"
					 "* ESEARCH (TAG \"A05\") PARTIAL (1:500 NIL)\r\n"
					 "* ESEARCH (TAG \"A06\") PARTIAL (5:5 1)\r\n");
	agbuf_reset(&out);
	/* RFC 5267 4.3.3 and 4.3.4's examples */
	const uint32_t added[] = { 32768, 32769 }, c01[] = { 2731, 2732, 2733 };
	struct imap_context_run runs[] = { { 0, added, 2 } }, c01_runs[] = { { 1, c01, 3 }, { 5, c01 + 1, 1 } };
	imap_write_context_update(&out, "B01", 1, 1, runs, 1);
	imap_write_context_update(&out, "B01", 1, 0, runs, 0);
	imap_write_context_update(&out, "C01", 1, 1, c01_runs, 2);
	runs[0].count = 1;
	imap_write_context_update(&out, "B01", 0, 0, runs, 1);
	CU_ASSERT_STRING_EQUAL(out.data, "* ESEARCH (TAG \"B01\") UID ADDTO (0 32768:32769)\r\n"
					 "* ESEARCH (TAG \"C01\") UID ADDTO (1 2731:2733 5 2732)\r\n"
					 "* ESEARCH (TAG \"B01\") REMOVEFROM (0 32768)\r\n");
	agbuf_reset(&out);
	imap_write_exists(&out, 172);
	imap_write_recent(&out, 1);
	imap_write_expunge(&out, 3);
	imap_write_flags_response(&out, flags, 2);
	uint32_t hits[] = { 2, 84, 882 };
	imap_write_search(&out, hits, 3, 0);
	imap_write_search(&out, NULL, 0, 0);
	imap_write_search(&out, hits, 2, 917162500);
	imap_write_capability(&out, "IMAP4rev1 LITERAL+");
	static const char *const attrs[] = { "\\HasNoChildren" };
	imap_write_list(&out, 0, attrs, 1, '/', "Sent Items", 10);
	imap_write_list(&out, 1, NULL, 0, 0, "INBOX", 5);
	imap_write_fetch_begin(&out, 12);
	imap_write_atom(&out, "UID ");
	imap_write_number(&out, 7);
	imap_write_sp(&out);
	imap_write_atom(&out, "BODY[] ");
	imap_write_nil(&out);
	imap_write_fetch_end(&out);
	CU_ASSERT_STRING_EQUAL(out.data, "* 172 EXISTS\r\n* 1 RECENT\r\n* 3 EXPUNGE\r\n* FLAGS (\\Deleted \\Seen)\r\n"
					 "* SEARCH 2 84 882\r\n* SEARCH\r\n* SEARCH 2 84 (MODSEQ 917162500)\r\n* CAPABILITY IMAP4rev1 LITERAL+\r\n"
					 "* LIST (\\HasNoChildren) \"/\" \"Sent Items\"\r\n* LSUB () NIL INBOX\r\n"
					 "* 12 FETCH (UID 7 BODY[] NIL)\r\n");
	struct imap_seqrange r4[] = { { 1, IMAP_SEQ_STAR }, { 5, 5 } };
	struct imap_seqset star = { 2, r4, false };
	CU_ASSERT_TRUE(imap_seqset_contains(&star, 9, 9));
	CU_ASSERT_TRUE(imap_seqset_contains(&star, 5, 3));
	CU_ASSERT_FALSE(imap_seqset_contains(&star, 0, 9));
	struct imap_seqrange r5[] = { { IMAP_SEQ_STAR, 3 } };
	struct imap_seqset rev = { 1, r5, false };
	CU_ASSERT_TRUE(imap_seqset_contains(&rev, 4, 5));
	CU_ASSERT_FALSE(imap_seqset_contains(&rev, 2, 5));
	agbuf_free(&out);
}

/* The responses and codes the commands write: printf text, codes with
 * arguments, and the untagged data of SORT, THREAD, QRESYNC, FETCH, QUOTA,
 * ENABLE, ID and NAMESPACE. */
static void test_write_command_responses(void)
{
	struct agbuf out = AGBUF_INIT;
	imap_write_status(&out, "a1", IMAP_OK, IMAP_CODE_NONE, "%s completed.", "UID STORE");
	imap_write_status(&out, "a2", IMAP_NO, IMAP_CODE_TOOBIG, "larger than %zu bytes: %s", (size_t)42, "a\r\nb");
	imap_write_status_begin(&out, "a3", IMAP_OK);
	imap_write_code_highestmodseq(&out, 90060115205545359u);
	imap_write_status_endf(&out, "%s completed.", "EXPUNGE");
	const uint32_t modified[] = { 7, 9, 10, 11, 20 };
	imap_write_status_begin(&out, "a4", IMAP_OK);
	imap_write_code_modified(&out, modified, 5);
	imap_write_status_end(&out, "Conditional STORE failed.");
	imap_write_status_begin(&out, "a5", IMAP_NO);
	imap_write_code_badurl(&out, "/INBOX;UIDVALIDITY=1]/;UID=\r\n2", 30);
	imap_write_status_end(&out, "bad");
	imap_write_status_begin(&out, NULL, IMAP_NO);
	imap_write_code_noupdate(&out, "B\"01");
	imap_write_status_end(&out, "Too many contexts.");
	const uint32_t src[] = { 3, 4 }, dst[] = { 1, 2 };
	imap_write_status_begin(&out, NULL, IMAP_OK);
	imap_write_code_copyuid(&out, 5, src, dst, 2);
	imap_write_status_end(&out, "Moved.");
	CU_ASSERT_STRING_EQUAL(out.data, "a1 OK UID STORE completed.\r\n"
					 "a2 NO [TOOBIG] larger than 42 bytes: a  b\r\n"
					 "a3 OK [HIGHESTMODSEQ 90060115205545359] EXPUNGE completed.\r\n"
					 "a4 OK [MODIFIED 7,9:11,20] Conditional STORE failed.\r\n"
					 "a5 NO [BADURL \"/INBOX;UIDVALIDITY=1/;UID=2\"] bad\r\n"
					 "* NO [NOUPDATE \"B\\\"01\"] Too many contexts.\r\n"
					 "* OK [COPYUID 5 3:4 1,2] Moved.\r\n");
	agbuf_reset(&out);
	const uint32_t order[] = { 5, 3, 4 }, uids[] = { 1, 2, 3, 8 }, lo[] = { 1, 7, 9 }, hi[] = { 5, 7, 12 };
	imap_write_sort(&out, order, 3);
	imap_write_sort(&out, NULL, 0);
	imap_write_thread(&out, "(1)(2 3)", 8);
	imap_write_thread(&out, NULL, 0);
	imap_write_vanished(&out, uids, 4);
	imap_write_vanished_earlier(&out, lo, hi, 3);
	imap_write_fetch_begin(&out, 12);
	imap_write_atom(&out, "UID 7 ");
	imap_write_fetch_modseq(&out, 624140003);
	imap_write_fetch_end(&out);
	CU_ASSERT_STRING_EQUAL(out.data, "* SORT 5 3 4\r\n* SORT\r\n* THREAD (1)(2 3)\r\n* THREAD\r\n"
					 "* VANISHED 1:3,8\r\n* VANISHED (EARLIER) 1:5,7,9:12\r\n"
					 "* 12 FETCH (UID 7 MODSEQ (624140003))\r\n");
	agbuf_reset(&out);
	const struct imap_quota_resource res[] = { { "STORAGE", 10, 512 }, { "MESSAGE", 1, 100 } };
	static const char *const roots[] = { "" }, *const caps[] = { "CONDSTORE", "QRESYNC" };
	static const char *const fields[] = { "name", "Aerogram", "version", "1.0" };
	imap_write_quota(&out, "", res, 2);
	imap_write_quota(&out, "", res + 1, 1);
	imap_write_quotaroot(&out, "INBOX", roots, 1);
	imap_write_quotaroot(&out, "a b", NULL, 0);
	imap_write_enabled(&out, caps, 2);
	imap_write_enabled(&out, NULL, 0);
	imap_write_id(&out, fields, 4);
	imap_write_id(&out, NULL, 0);
	imap_write_namespace(&out, "", '.');
	CU_ASSERT_STRING_EQUAL(out.data, "* QUOTA \"\" (STORAGE 10 512 MESSAGE 1 100)\r\n* QUOTA \"\" (MESSAGE 1 100)\r\n"
					 "* QUOTAROOT INBOX \"\"\r\n* QUOTAROOT \"a b\"\r\n"
					 "* ENABLED CONDSTORE QRESYNC\r\n* ENABLED\r\n"
					 "* ID (\"name\" \"Aerogram\" \"version\" \"1.0\")\r\n* ID NIL\r\n"
					 "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
	agbuf_free(&out);
}

/* The names a FETCH response uses for what a FETCH command asked. */
static void test_write_fetch_names(void)
{
	struct imap_parser *p = imap_parser_new(NULL);
	const char *wire = "a FETCH 1 (UID RFC822.SIZE body.peek[1.2.header.fields (From \"X Y\")]<10.20> BODY[] "
			   "BODY[3.MIME] BODY[TEXT]<0.5> BODY BODYSTRUCTURE MODSEQ BODY[HEADER.FIELDS.NOT (A)])\r\n";
	size_t used;
	struct imap_event ev;
	CU_ASSERT_EQUAL_FATAL(imap_parser_next(p, wire, strlen(wire), &used, &ev), IMAP_EV_COMMAND);
	struct agbuf out = AGBUF_INIT;
	for (size_t i = 0; i < ev.cmd->u.fetch.att_count; i++) {
		if (i > 0)
			imap_write_sp(&out);
		imap_write_fetch_att_name(&out, &ev.cmd->u.fetch.atts[i]);
	}
	CU_ASSERT_STRING_EQUAL(out.data, "UID RFC822.SIZE BODY[1.2.HEADER.FIELDS (From \"X Y\")]<10> BODY[] BODY[3.MIME] "
					 "BODY[TEXT]<0> BODY BODYSTRUCTURE MODSEQ BODY[HEADER.FIELDS.NOT (A)]");
	agbuf_reset(&out);
	static const enum imap_status_item items[] = { IMAP_STATUS_MESSAGES, IMAP_STATUS_UIDNEXT,
						       IMAP_STATUS_HIGHESTMODSEQ };
	static const uint64_t values[] = { [IMAP_STATUS_MESSAGES] = 231, [IMAP_STATUS_UIDNEXT] = 44292,
					   [IMAP_STATUS_HIGHESTMODSEQ] = 7011231777, [IMAP_STATUS_DELETED_STORAGE] = 0 };
	imap_write_status_response(&out, "blurdy bloop", 12, items, 3, values);
	CU_ASSERT_STRING_EQUAL(out.data,
			       "* STATUS \"blurdy bloop\" (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)\r\n");
	agbuf_free(&out);
	imap_command_free(ev.cmd);
	imap_parser_free(p);
}

/* ---- modified UTF-7 ---- */

static void test_mutf7_examples(void)
{
	static const struct {
		const char *utf8, *mutf7;
	} pairs[] = {
		/* RFC 3501 5.1.3 */
		{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		  "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
		{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
		{ "Tom & Jerry", "Tom &- Jerry" },
		{ "", "" },
		{ "INBOX", "INBOX" },
		{ "\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-" },
		{ "\xf0\x9f\x93\xa7 mail", "&2D3c5w- mail" },
		{ "tab\there", "tab&AAk-here" },
		{ "\xc3\xa9\xc3\xa9\xc3\xa9", "&AOkA6QDp-" },
	};
	for (size_t i = 0; i < COUNT_OF(pairs); i++) {
		struct agbuf out = AGBUF_INIT;
		CU_ASSERT_EQUAL(mutf7_encode(pairs[i].utf8, strlen(pairs[i].utf8), &out), 0);
		CU_ASSERT_STRING_EQUAL(out.data, pairs[i].mutf7);
		agbuf_reset(&out);
		CU_ASSERT_EQUAL(mutf7_decode(pairs[i].mutf7, strlen(pairs[i].mutf7), &out), 0);
		CU_ASSERT_STRING_EQUAL(out.data, pairs[i].utf8);
		CU_ASSERT_TRUE(mutf7_is_valid(pairs[i].mutf7, strlen(pairs[i].mutf7)));
		agbuf_free(&out);
	}
}

static void test_mutf7_round_trip(void)
{
	/* Every BMP code point outside the surrogates, plus some astral ones,
	 * survives encode then decode, and the encoding is canonical. */
	struct agbuf utf8 = AGBUF_INIT, enc = AGBUF_INIT, dec = AGBUF_INIT;
	for (uint32_t cp = 1; cp < 0x110000; cp += (cp < 0x10000 ? 1 : 0x1001)) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		agbuf_reset(&utf8);
		char b[4];
		size_t n;
		if (cp < 0x80)
			b[0] = (char)cp, n = 1;
		else if (cp < 0x800)
			b[0] = (char)(0xc0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
		else if (cp < 0x10000)
			b[0] = (char)(0xe0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
			b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
		else
			b[0] = (char)(0xf0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
			b[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
		agbuf_puts(&utf8, "x");
		agbuf_append(&utf8, b, n);
		agbuf_append(&utf8, b, n);
		agbuf_puts(&utf8, "&y");
		agbuf_reset(&enc);
		agbuf_reset(&dec);
		if (mutf7_encode(utf8.data, utf8.len, &enc) != 0 || mutf7_decode(enc.data, enc.len, &dec) != 0 ||
		    dec.len != utf8.len || memcmp(dec.data, utf8.data, utf8.len) != 0 ||
		    !mutf7_is_valid(enc.data, enc.len)) {
			CU_FAIL("mUTF-7 round trip");
			fprintf(stderr, "\n  code point U+%04X\n", cp);
			break;
		}
	}
	agbuf_free(&utf8);
	agbuf_free(&enc);
	agbuf_free(&dec);
}

static void test_mutf7_rejects(void)
{
	static const char *const bad_names[] = {
		"&",            /* unterminated */
		"&AOk",         /* unterminated run */
		"a&AOk-&AOk-",  /* two runs in a row: not minimal */
		"&AGE-",        /* encodes 'a', printable ASCII */
		"&AOl-",        /* spare bits not zero */
		"&AOkA-",       /* a whole spare digit */
		"&AO-",         /* half a UTF-16 unit */
		"&2D0-",        /* high surrogate alone */
		"&3,c-",        /* low surrogate alone */
		"&2D3YPQ-",     /* high surrogate then high surrogate */
		"&AO!-",        /* not the modified base64 alphabet */
		"&AO/-",        /* '/' is ',' in modified base64 */
		"caf\xc3\xa9",  /* raw 8-bit */
		"a\tb",         /* raw control */
		"&-&",          /* trailing '&' */
	};
	for (size_t i = 0; i < COUNT_OF(bad_names); i++) {
		struct agbuf out = AGBUF_INIT;
		agbuf_puts(&out, "kept");
		CU_ASSERT_FALSE(mutf7_is_valid(bad_names[i], strlen(bad_names[i])));
		CU_ASSERT_EQUAL(mutf7_decode(bad_names[i], strlen(bad_names[i]), &out), -1);
		CU_ASSERT_STRING_EQUAL(out.data, "kept");
		agbuf_free(&out);
	}
	static const char *const bad_utf8[] = {
		"\xc0\xaf",             /* overlong '/' */
		"\xed\xa0\x80",         /* a surrogate */
		"\xf4\x90\x80\x80",     /* above U+10FFFF */
		"\xe2\x82",             /* truncated */
		"\x80",                 /* continuation alone */
	};
	for (size_t i = 0; i < COUNT_OF(bad_utf8); i++) {
		struct agbuf out = AGBUF_INIT;
		CU_ASSERT_EQUAL(mutf7_encode(bad_utf8[i], strlen(bad_utf8[i]), &out), -1);
		CU_ASSERT_TRUE(out.len == 0);
		agbuf_free(&out);
	}
}

static const struct agt_test parse_tests[] = {
	{ "every command form", test_valid_commands },
	{ "malformed commands and resync", test_invalid_commands },
	{ "SEARCH tree and depth limit", test_search_tree },
	{ "SEARCH nested OR", test_search_nested_or },
	{ "NUL in a literal", test_literal_nul },
	{ "synchronising literal accepted", test_literal_sync_accept },
	{ "synchronising literal refused", test_literal_sync_reject },
	{ "non-synchronising literals", test_literal_nonsync },
	{ "literal too large", test_literal_too_large },
	{ "too many literals", test_too_many_literals },
	{ "error known before the literal", test_error_before_literal },
	{ "APPEND streamed", test_append_streamed },
	{ "APPEND with literal8 and CATENATE", test_append_literal8 },
	{ "APPEND of 5 MiB not buffered", test_append_large_not_buffered },
	{ "APPEND too large", test_append_too_large },
	{ "literal event carries the APPEND", test_literal_event_has_append_so_far },
	{ "line too long", test_line_too_long },
	{ "command too large", test_command_too_large },
	{ "empty lines and bare LF", test_empty_lines_and_lf },
	{ "pipelined commands", test_pipelined },
	{ "IDLE and DONE", test_idle },
	{ "SASL lines", test_sasl },
	{ "SASL line too long", test_sasl_line_too_long },
	{ "command boundary and literal queries", test_boundary_queries },
	{ "240 shapes real clients send", test_dataset },
	{ "dates and date-times", test_dates },
	AGT_END,
};

static const struct agt_test write_tests[] = {
	{ "strings: atom, quoted, literal", test_write_strings },
	{ "responses and codes", test_write_responses },
	{ "numbers and dates without printf", test_write_numbers_and_dates },
	{ "FETCH names and STATUS", test_write_fetch_names },
	{ "the commands' responses and codes", test_write_command_responses },
	AGT_END,
};

static const struct agt_test mutf7_tests[] = {
	{ "RFC 3501 examples", test_mutf7_examples },
	{ "round trips", test_mutf7_round_trip },
	{ "rejections", test_mutf7_rejects },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	agt_suite("imap_parse", NULL, NULL, parse_tests, NULL);
	agt_suite("imap_write", NULL, NULL, write_tests, NULL);
	agt_suite("mutf7", NULL, NULL, mutf7_tests, NULL);
	return agt_run();
}
