/* test_lmtp_unit.c - the pure parts of LMTP delivery: command lines, paths
 * and parameters (host/lmtp_parse.c), the DATA stream's end and dot
 * unstuffing fed in every split, the users file's `address` key and
 * lookups (host/users.c), and the [lmtp] section of the configuration. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/config_file.h"
#include "host/lmtp_parse.h"
#include "host/users.h"
#include "tests/lib/agt_files.h"
#include "tests/lib/cu_main.h"

static char tmpdir[256];

/* The users file's parser alone (no password hashing). */
static int parse_users(const char *path, struct ag_users **users, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	int rc = ag_users_parse(f, path, users, err, errlen);
	fclose(f);
	return rc;
}

/* The loaders, for the refusals (what they load when they fail to refuse
 * is not freed: the test fails then). */
static int parse_users_only(const char *path, char *err, size_t errlen)
{
	struct ag_users *users;
	return parse_users(path, &users, err, errlen);
}

static int config_load_only(const char *path, char *err, size_t errlen)
{
	struct ag_config cfg;
	return ag_config_load(path, &cfg, err, errlen);
}

/* Parses `line`; returns NULL or the reply's first 9 characters ("501 5.5.4"). */
static const char *parse(const char *line, struct lmtp_command *cmd)
{
	static char code[10];
	const char *r = lmtp_parse_command(line, strlen(line), cmd);
	if (r == NULL)
		return NULL;
	CU_ASSERT(strlen(r) > 11 && strcmp(r + strlen(r) - 2, "\r\n") == 0);
	snprintf(code, sizeof(code), "%.9s", r);
	return code;
}

static void test_commands(void)
{
	struct lmtp_command c;
	CU_ASSERT_PTR_NULL(parse("LHLO mta.example.org", &c));
	CU_ASSERT_EQUAL(c.verb, LMTP_LHLO);
	CU_ASSERT_EQUAL(c.arg_len, 15);
	CU_ASSERT_PTR_NULL(parse("data", &c));
	CU_ASSERT_EQUAL(c.verb, LMTP_DATA);
	CU_ASSERT_PTR_NULL(parse("NOOP anything", &c));
	CU_ASSERT_PTR_NULL(parse("RSET", &c));
	CU_ASSERT_PTR_NULL(parse("QUIT", &c));
	CU_ASSERT_PTR_NULL(parse("VRFY bob", &c));

	CU_ASSERT_PTR_NULL(parse("MAIL FROM:<a@b.org>", &c));
	CU_ASSERT_EQUAL(c.verb, LMTP_MAIL);
	CU_ASSERT_STRING_EQUAL(c.path, "a@b.org");
	CU_ASSERT_FALSE(c.has_size);
	CU_ASSERT_PTR_NULL(parse("mail from: <> SIZE=1234 BODY=8BITMIME", &c));
	CU_ASSERT_STRING_EQUAL(c.path, "");
	CU_ASSERT_TRUE(c.has_size);
	CU_ASSERT_EQUAL(c.size, 1234);
	CU_ASSERT_EQUAL(c.body, LMTP_BODY_8BITMIME);
	CU_ASSERT_PTR_NULL(parse("MAIL FROM:<a@b.org> size=99999999999999999999999", &c));
	CU_ASSERT_EQUAL(c.size, UINT64_MAX);
	CU_ASSERT_PTR_NULL(parse("MAIL FROM:<@relay.example,@other.example:a@b.org> BODY=7bit", &c));
	CU_ASSERT_STRING_EQUAL(c.path, "a@b.org");
	CU_ASSERT_EQUAL(c.body, LMTP_BODY_7BIT);
	CU_ASSERT_PTR_NULL(parse("MAIL FROM:<\"john doe\"@b.org>", &c));
	CU_ASSERT_STRING_EQUAL(c.path, "\"john doe\"@b.org");
	CU_ASSERT_PTR_NULL(parse("MAIL FROM:<a@[192.0.2.1]>", &c));

	CU_ASSERT_PTR_NULL(parse("RCPT TO:<Bob@Example.ORG>", &c));
	CU_ASSERT_EQUAL(c.verb, LMTP_RCPT);
	CU_ASSERT_STRING_EQUAL(c.path, "Bob@Example.ORG");
	CU_ASSERT_EQUAL(c.path_len, 15);
	CU_ASSERT_PTR_NULL(parse("RCPT TO:<Postmaster>  ", &c));
	CU_ASSERT_STRING_EQUAL(c.path, "Postmaster");

	/* refused, and the reply's code */
	static const struct {
		const char *line, *code;
	} refused[] = {
		{ "LHLO", "501 5.5.4" },
		{ "EHLO x", "500 5.5.1" },
		{ "HELO x", "500 5.5.1" },
		{ "BDAT 10", "500 5.5.1" },
		{ "", "500 5.5.1" },
		{ "NOOP\x01", "500 5.5.2" },
		{ "DATA now", "501 5.5.4" },
		{ "VRFY", "501 5.5.4" },
		{ "MAIL FROM:a@b.org", "501 5.5.4" },
		{ "MAIL TO:<a@b.org>", "501 5.5.4" },
		{ "MAIL FROM:<a@b.org", "501 5.5.4" },
		{ "MAIL FROM:<a b@b.org>", "501 5.1.7" },
		{ "MAIL FROM:<a@b..org>", "501 5.1.7" },
		{ "MAIL FROM:<a@-b.org>", "501 5.1.7" },
		{ "MAIL FROM:<a.@b.org>", "501 5.1.7" },
		{ "MAIL FROM:<postmaster>", "501 5.1.7" },
		{ "MAIL FROM:<\xc3\xa9@b.org>", "553 5.6.7" },
		{ "MAIL FROM:<a@b.org> SIZE=12x", "501 5.5.4" },
		{ "MAIL FROM:<a@b.org> SIZE=1 SIZE=2", "501 5.5.4" },
		{ "MAIL FROM:<a@b.org> BODY=BINARYMIME", "501 5.5.4" },
		{ "MAIL FROM:<a@b.org> SMTPUTF8", "555 5.5.4" },
		{ "MAIL FROM:<a@b.org>SIZE=1", "501 5.5.4" },
		/* the path ends at the first '>' outside quotes */
		{ "MAIL FROM:<a@b.org>>", "501 5.5.4" },
		{ "RCPT TO:<>", "501 5.1.3" },
		{ "RCPT TO:<bob>", "501 5.1.3" },
		{ "RCPT TO:<a@b.org> NOTIFY=NEVER", "555 5.5.4" },
		{ "RCPT FROM:<a@b.org>", "501 5.5.4" },
		/* no CR or LF can reach a header field */
		{ "RCPT TO:<a\r\nX: y@b.org>", "500 5.5.2" },
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *code = parse(refused[i].line, &c);
		CU_ASSERT_PTR_NOT_NULL(code);
		CU_ASSERT_STRING_EQUAL(code ? code : "", refused[i].code);
		if (code == NULL || strcmp(code, refused[i].code) != 0)
			fprintf(stderr, "'%s': %s, not %s\n", refused[i].line, code ? code : "accepted", refused[i].code);
	}

	/* the longest path is 256 octets with its brackets: 60 + 1 + 193 */
	char line[400], label[64];
	memset(label, 'c', 63);
	label[63] = '\0';
	snprintf(line, sizeof(line), "RCPT TO:<%.60s@%s.%s.%s.a>", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	         label, label, label);
	CU_ASSERT_PTR_NULL(parse(line, &c));
	CU_ASSERT_EQUAL(c.path_len, 254);
	snprintf(line, sizeof(line), "RCPT TO:<%.60s@%s.%s.%s.ab>", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	         label, label, label);
	CU_ASSERT_STRING_EQUAL(parse(line, &c), "501 5.1.3");
}

/* Random lines made of the characters that matter: whatever the parser
 * accepts as a path has no control character and fits a header field. */
static void test_random_lines(void)
{
	static const char alphabet[] = "<>@.\"\\:, =\r\n\t\x01\x80" "abcAB09-[]SIZEBODYMAILRCPT FROM:TO:";
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char line[128];
	for (int i = 0; i < 200000; i++) {
		size_t len = 0, max;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		max = x % sizeof(line);
		const char *prefix = (x >> 8) % 2 ? "MAIL FROM:<" : "RCPT TO:<";
		if ((x >> 9) % 4 != 0) {
			len = strlen(prefix);
			memcpy(line, prefix, len);
		}
		while (len < max) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			line[len++] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		struct lmtp_command c;
		if (lmtp_parse_command(line, len, &c) != NULL || (c.verb != LMTP_MAIL && c.verb != LMTP_RCPT))
			continue;
		CU_ASSERT(c.path_len == strlen(c.path) && c.path_len <= LMTP_PATH_MAX - 2);
		for (size_t k = 0; k < c.path_len; k++)
			CU_ASSERT((unsigned char)c.path[k] >= 0x20 && (unsigned char)c.path[k] < 0x7f);
	}
}

/* Feeds `in` split at every pair of points; every way gives `want`. */
static void check_data(const char *in, const char *want, size_t rest)
{
	size_t len = strlen(in);
	for (size_t a = 0; a <= len; a++) {
		for (size_t b = a; b <= len; b++) {
			struct lmtp_data d;
			memset(&d, 0, sizeof(d));
			struct agbuf out = AGBUF_INIT;
			int done = 0;
			size_t used = 0;
			size_t cuts[3] = { a, b, len };
			size_t from = 0;
			for (int k = 0; k < 3 && !done; k++) {
				used += lmtp_data_feed(&d, in + from, cuts[k] - from, 1 << 20, &out, &done);
				from = cuts[k];
			}
			CU_ASSERT_TRUE(done);
			CU_ASSERT_EQUAL(len - used, rest);
			CU_ASSERT_EQUAL(out.len, strlen(want));
			CU_ASSERT_EQUAL(d.size, strlen(want));
			CU_ASSERT(out.len == 0 || memcmp(out.data, want, out.len) == 0);
			agbuf_free(&out);
		}
	}
}

static void test_data(void)
{
	check_data(".\r\n", "", 0);
	check_data("a\r\n.\r\n", "a\r\n", 0);
	check_data("Subject: x\r\n\r\n..dot\r\n...\r\n.\r\nNOOP\r\n", "Subject: x\r\n\r\n.dot\r\n..\r\n", 6);
	/* a dot elsewhere in a line stays; only CRLF "." CRLF ends */
	check_data("a.\r\n\r\n.\r\nb.\r\n.\r\n", "a.\r\n\r\n", 7);
	check_data("x\n.\nz\r\n.\r\n", "x\n.\nz\r\n", 0);
	/* bare CRs */
	check_data("a\r\rb\r\n.\rc\r\n.\r\n", "a\r\rb\r\n\rc\r\n", 0);
	check_data("\r\n.\r\n", "\r\n", 0);
	check_data(".x\r\n.\r\n", "x\r\n", 0);

	/* past the limit: counted, not kept, and the end still found */
	struct lmtp_data d;
	memset(&d, 0, sizeof(d));
	struct agbuf out = AGBUF_INIT;
	int done = 0;
	const char *big = "0123456789\r\n0123456789\r\n.\r\nQUIT\r\n";
	size_t used = lmtp_data_feed(&d, big, strlen(big), 20, &out, &done);
	CU_ASSERT_TRUE(done);
	CU_ASSERT_TRUE(d.too_big);
	CU_ASSERT_EQUAL(d.size, 24);
	CU_ASSERT(out.len <= 20);
	CU_ASSERT_EQUAL(used, strlen(big) - 6);
	agbuf_free(&out);
	/* exactly at the limit is fine */
	memset(&d, 0, sizeof(d));
	used = lmtp_data_feed(&d, big, strlen(big), 24, &out, &done);
	CU_ASSERT_TRUE(done);
	CU_ASSERT_FALSE(d.too_big);
	CU_ASSERT_EQUAL(out.len, 24);
	agbuf_free(&out);
}

static void test_users_addresses(void)
{
	char err[512];
	struct ag_users *users;
	const char *path = agt_file(tmpdir, "users.ini",
		"[alice]\naddress = Alice.Smith@Other.NET a@x.org\npassword = {PLAIN}a\n\n"
		"[Bob]\npassword = {PLAIN}b\n\n[carol]\npassword = {PLAIN}c\n[Carol]\npassword = {PLAIN}C\n");
	CU_ASSERT_EQUAL_FATAL(parse_users(path, &users, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ag_users_count(users), 4);
	CU_ASSERT_STRING_EQUAL(ag_users_find_address(users, "alice.smith@other.net", 21), "alice");
	CU_ASSERT_STRING_EQUAL(ag_users_find_address(users, "A@X.ORG", 7), "alice");
	CU_ASSERT_PTR_NULL(ag_users_find_address(users, "alice@x.org", 11));
	CU_ASSERT_PTR_NULL(ag_users_find_address(users, "a@x.org\0", 8));
	CU_ASSERT_STRING_EQUAL(ag_users_find_name(users, "bob", 3), "Bob");
	CU_ASSERT_STRING_EQUAL(ag_users_find_name(users, "BOB", 3), "Bob");
	CU_ASSERT_PTR_NULL(ag_users_find_name(users, "bo", 2));
	/* carol and Carol: an exact name decides, another case does not */
	CU_ASSERT_STRING_EQUAL(ag_users_find_name(users, "Carol", 5), "Carol");
	CU_ASSERT_STRING_EQUAL(ag_users_find_name(users, "carol", 5), "carol");
	CU_ASSERT_PTR_NULL(ag_users_find_name(users, "CAROL", 5));
	ag_users_unref(users);

	static const struct agt_refusal bad[] = {
		{ "[a]\npassword = {PLAIN}x\naddress = nodomain\n", ":3: [a] address: 'nodomain' is not an address" },
		{ "[a]\npassword = {PLAIN}x\naddress = @x.org\n", "not an address" },
		{ "[a]\npassword = {PLAIN}x\naddress = a@\n", "not an address" },
		{ "[a]\npassword = {PLAIN}x\naddress = a@x..org\n", "not an address" },
		{ "[a]\npassword = {PLAIN}x\naddress = <a@x.org>\n", "not an address" },
		{ "[a]\npassword = {PLAIN}x\naddress =\n", ":3: [a] address: no address given" },
		{ "[a]\npassword = {PLAIN}x\naddress = a@x.org A@X.org\n", ":3: [a] address: 'a@x.org' is listed twice" },
		{ "[a]\npassword = {PLAIN}x\naddress = a@x.org\naddress = b@x.org\n", ":4: [a] address: address set twice" },
		{ "[a]\npassword = {PLAIN}x\naddress = a@x.org\n[b]\naddress = z@y.org A@x.org\npassword = {PLAIN}y\n",
		  ":5: [b] address: 'a@x.org' already belongs to [a] (line 3)" },
		{ "[a]\naddress = a@x.org\n", ":1: [a]: no password line" },
		{ "address = a@x.org\n", "outside" },
	};
	agt_check_refusals(tmpdir, "bad.ini", NULL, bad, sizeof(bad) / sizeof(bad[0]), parse_users_only);
}

static void test_config(void)
{
	char err[512];
	struct ag_config cfg;
	const char *path = agt_file(tmpdir, "a.conf", "[storage]\ndriver = m\n");
	CU_ASSERT_EQUAL_FATAL(ag_config_load(path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(cfg.lmtp_listen);
	CU_ASSERT_PTR_NULL(cfg.lmtp_domains);
	CU_ASSERT_EQUAL(cfg.lmtp_max_recipients, 1000);
	CU_ASSERT_EQUAL(cfg.lmtp_timeout, 300);
	ag_config_free(&cfg);
	path = agt_file(tmpdir, "b.conf", "[storage]\ndriver = m\n[lmtp]\nlisten = 127.0.0.1:2424 unix:/run/a/lmtp [::1]:24\n"
	                            "domains = Example.ORG example.net\nmax_recipients = 5\ntimeout = 60\n");
	CU_ASSERT_EQUAL_FATAL(ag_config_load(path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.lmtp_listen, "127.0.0.1:2424 unix:/run/a/lmtp [::1]:24");
	CU_ASSERT_STRING_EQUAL(cfg.lmtp_domains, "example.org example.net");
	CU_ASSERT_EQUAL(cfg.lmtp_max_recipients, 5);
	CU_ASSERT_EQUAL(cfg.lmtp_timeout, 60);
	ag_config_free(&cfg);
	/* set but empty: off */
	path = agt_file(tmpdir, "c.conf", "[storage]\ndriver = m\n[lmtp]\nlisten =\n");
	CU_ASSERT_EQUAL_FATAL(ag_config_load(path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(cfg.lmtp_listen);
	ag_config_free(&cfg);

	static const struct agt_refusal bad[] = {
		{ "[lmtp]\nlisten = 127.0.0.1\n", ":5: [lmtp] listen: '127.0.0.1' is not" },
		{ "[lmtp]\nlisten = unix:relative/path\n", "'unix:relative/path' is not" },
		{ "[lmtp]\nlisten = unix:\n", "'unix:' is not" },
		{ "[lmtp]\nlisten = 127.0.0.1:24 127.0.0.1:0\n", "'127.0.0.1:0' is not" },
		{ "[lmtp]\ndomains = a..b\n", ":5: [lmtp] domains: 'a..b' is not a domain name" },
		{ "[lmtp]\ndomains = a_b.org\n", "not a domain name" },
		{ "[lmtp]\ndomains = x.org X.ORG\n", "'x.org' is listed twice" },
		{ "[lmtp]\nmax_recipients = 0\n", ":5: [lmtp] max_recipients: must be a number of recipients from 1 to 100000" },
		{ "[lmtp]\nmax_recipients = 100001\n", "from 1 to 100000" },
		{ "[lmtp]\ntimeout = 9\n", "[lmtp] timeout: must be a number of seconds from 10 to 3600" },
		{ "[lmtp]\ntimeout = 3601\n", "from 10 to 3600" },
		{ "[lmtp]\nport = 24\n", "[lmtp] port: unknown key" },
		{ "[lmtp]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", "set twice" },
	};
	agt_check_refusals(tmpdir, "bad.conf", "[storage]\ndriver = m\n\n", bad, sizeof(bad) / sizeof(bad[0]),
	                   config_load_only);
}

static const struct agt_test tests[] = {
	{ "command lines, paths, parameters", test_commands },
	{ "random command lines", test_random_lines },
	{ "DATA: end and dot unstuffing in every split", test_data },
	{ "users file: address key and lookups", test_users_addresses },
	{ "configuration: [lmtp]", test_config },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	agt_tmpdir(tmpdir, sizeof(tmpdir), "aerogram-lmtp-unit");
	agt_suite("lmtp", NULL, NULL, tests, NULL);
	int failed = agt_run();
	if (agt_rm_rf(tmpdir) != 0)
		return 1;
	return failed;
}
