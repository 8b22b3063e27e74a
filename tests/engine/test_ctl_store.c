/*
 * test_ctl_store.c - aerogramctl's undelete and copy-store end to end, over
 * real stores opened from configuration files (two SQLite databases in a
 * temporary directory): the source filled through the engine, a copy
 * stopped half-way and resumed, everything compared, undelete through the
 * function and the command.
 *
 * `test_ctl_store --bench N` copies N messages from one SQLite store into
 * another and into a memory store and prints the rates. Run by garage-emu
 * (its `--` mode, GARAGE_EMU_* in the environment), it copies into Garage
 * instead and undeletes there.
 */
#include <CUnit/Basic.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/ctl.h"
#include "host/ctl_store.h"
#include "tests/lib/agt_files.h"
#include "tests/lib/cu_main.h"

static char tmpdir[256];
static char conf_a[320], conf_b[320], conf_m[320], conf_g[320];
/* where test_copy_resume copies to: conf_b, or conf_g under garage-emu */
static const char *dest_conf = conf_b;

static const char *sqlite_driver(void)
{
	const char *p = getenv("AG_SQLITE_DRIVER");
	return p ? p : "build/drivers/aerogram_sqlite.so";
}

static const char *memory_driver(void)
{
	const char *p = getenv("AG_MEMORY_DRIVER");
	return p ? p : "build/drivers/aerogram_memory.so";
}

static void write_file(const char *path, const char *text)
{
	if (agt_write_file(path, text) != 0) {
		perror(path);
		exit(2);
	}
}

/* A configuration over `driver` (a path), with `storage` lines, and the
 * shared users file. */
static void write_conf(char *out, size_t len, const char *name, const char *driver, const char *storage)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
	char text[2048];
	snprintf(text, sizeof(text),
	         "[storage]\ndriver = %s\n%s\n[imap]\nlisten = 127.0.0.1:1143\n[auth]\nusers_file = %s/users.ini\n",
	         driver, storage, tmpdir);
	write_file(out, text);
}

/* synchronous: the SQLite stores' setting (the tests do not need full
 * durability; the benchmark measures what a deployment gets). */
static void setup_files(const char *synchronous)
{
	agt_tmpdir(tmpdir, sizeof(tmpdir), "aerogram-ctl-store");
	char p[512], st[512];
	snprintf(p, sizeof(p), "%s/users.ini", tmpdir);
	write_file(p, "[alice]\npassword = {PLAIN}a\n[bob]\npassword = {PLAIN}b\n[carol]\npassword = {PLAIN}c\n");
	snprintf(st, sizeof(st), "path = %s/a.sqlite\nsynchronous = %s", tmpdir, synchronous);
	write_conf(conf_a, sizeof(conf_a), "a.conf", sqlite_driver(), st);
	snprintf(st, sizeof(st), "path = %s/b.sqlite\nsynchronous = %s\nexpunge_retention = 0", tmpdir, synchronous);
	write_conf(conf_b, sizeof(conf_b), "b.conf", sqlite_driver(), st);
	write_conf(conf_m, sizeof(conf_m), "m.conf", memory_driver(), "");
	/* run by garage-emu (`--` mode), which says where it listens */
	const char *k2v = getenv("GARAGE_EMU_K2V_PORT"), *s3 = getenv("GARAGE_EMU_S3_PORT");
	if (k2v && s3) {
		const char *drv = getenv("AG_GARAGE_DRIVER");
		snprintf(st, sizeof(st),
		         "k2v_endpoint = http://127.0.0.1:%s\ns3_endpoint = http://127.0.0.1:%s\nregion = %s\nbucket = %s\n"
		         "access_key_id = %s\nsecret_access_key = %s",
		         k2v, s3, getenv("GARAGE_EMU_REGION") ? getenv("GARAGE_EMU_REGION") : "garage",
		         getenv("GARAGE_EMU_BUCKET"), getenv("GARAGE_EMU_KEY_ID"), getenv("GARAGE_EMU_SECRET"));
		write_conf(conf_g, sizeof(conf_g), "g.conf", drv ? drv : "build/drivers/aerogram_garage.so", st);
	}
}

static void open_ctl(struct ctl *c, const char *conf)
{
	char err[512];
	if (ctl_open(c, conf, err, sizeof(err)) != 0) {
		fprintf(stderr, "ctl_open %s: %s\n", conf, err);
		exit(2);
	}
}

/* Removes the temporary directory and the stores in it. */
static void cleanup_files(void)
{
	agt_rm_rf(tmpdir);
}

/* ---- filling and comparing ---- */

static int append(struct mail_engine *eng, const char *user, const char *box, const char *body, uint64_t date,
                  uint32_t flags, const char *kw1, const char *kw2)
{
	struct mail_mailbox *mb;
	if (mail_mailbox_open(eng, user, box, &mb) != 0)
		return -1;
	const char *kws[2] = { kw1, kw2 };
	size_t hl = strcspn(body, "\n");
	struct mail_new_message m = { .body = (const uint8_t *)body, .body_len = strlen(body),
	                              .internal_date_ms = date, .flags = flags, .keywords = kws,
	                              .n_keywords = kw2 ? 2 : kw1 ? 1 : 0, .header = (const uint8_t *)body,
	                              .header_len = hl + 1, .bodystructure = (const uint8_t *)"BS",
	                              .bodystructure_len = 2 };
	int rc = mail_append(mb, &m, NULL, NULL);
	mail_mailbox_close(mb);
	return rc;
}

static void fill_source(struct mail_engine *eng)
{
	char body[512];
	uint64_t d0 = 1700000000000ull;
	for (int i = 0; i < 40; i++) {
		/* messages 10 and 11, 20 and 21 are identical: both must arrive */
		int same = i == 11 ? 10 : i == 21 ? 20 : i;
		snprintf(body, sizeof(body), "Subject: message %d\r\nMessage-ID: <%d@test>\r\n\r\nbody %d\r\n", same, same,
		         same);
		const char *kw1 = i % 3 == 0 ? "$Label1" : NULL, *kw2 = i % 5 == 0 ? "work" : NULL;
		if (kw1 == NULL)
			kw1 = kw2, kw2 = NULL;
		CU_ASSERT_EQUAL(append(eng, "alice", "INBOX", body, d0 + (uint64_t)same * 1000, (uint32_t)i & MAIL_F_SYSTEM,
		                       kw1, kw2), 0);
	}
	CU_ASSERT_EQUAL(mail_create(eng, "alice", "Work", 0), 0);
	CU_ASSERT_EQUAL(mail_create(eng, "alice", "Work.2024", MAIL_SU_ARCHIVE), 0);
	CU_ASSERT_EQUAL(mail_subscribe(eng, "alice", "Work", 1), 0);
	CU_ASSERT_EQUAL(mail_subscribe(eng, "alice", "Junk", 0), 0);
	CU_ASSERT_EQUAL(mail_subscribe(eng, "alice", "Gone", 1), 0); /* subscribed, no mailbox */
	CU_ASSERT_EQUAL(mail_set_special_use(eng, "alice", "Work", MAIL_SU_DRAFTS), 0);
	CU_ASSERT_EQUAL(mail_delete(eng, "alice", "Archive"), 0);
	for (int i = 0; i < 6; i++) {
		snprintf(body, sizeof(body), "Subject: work %d\r\n\r\nwork body %d\r\n", i, i);
		CU_ASSERT_EQUAL(append(eng, "alice", i < 4 ? "Work" : "Work.2024", body, d0 + 500000 + (uint64_t)i, 0,
		                       NULL, NULL), 0);
	}
	/* a large one (a file blob in SQLite) and a few more for bob */
	size_t big = 300000;
	char *large = malloc(big + 1);
	memset(large, 'x', big);
	memcpy(large, "Subject: large\r\n\r\n", 18);
	large[big] = '\0';
	CU_ASSERT_EQUAL(append(eng, "bob", "INBOX", large, d0, MAIL_F_SEEN, NULL, NULL), 0);
	free(large);
	for (int i = 0; i < 6; i++) {
		snprintf(body, sizeof(body), "Subject: bob %d\r\n\r\nbob body %d\r\n", i, i);
		CU_ASSERT_EQUAL(append(eng, "bob", i < 3 ? "INBOX" : "Sent", body, d0 + 900000 + (uint64_t)i,
		                       MAIL_F_ANSWERED, "$Forwarded", NULL), 0);
	}
	/* some gone: UIDs in the source are not contiguous */
	struct mail_mailbox *mb;
	struct mail_view *v;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(eng, "alice", "INBOX", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 0, &v), 0);
	uint32_t gone[] = { 2, 30 };
	CU_ASSERT_EQUAL(mail_expunge(v, gone, 2), 0);
	mail_view_close(v);
	mail_mailbox_close(mb);
}

/* One line per message of a mailbox (date, flags, keywords, body), sorted,
 * joined: equal for two mailboxes holding the same messages. */
static char *mailbox_digest(struct mail_engine *eng, const char *user, const char *box, uint32_t *count)
{
	struct mail_mailbox *mb;
	struct mail_view *v;
	*count = 0;
	if (mail_mailbox_open(eng, user, box, &mb) != 0)
		return strdup("(no mailbox)");
	mail_mailbox_sync(mb);
	mail_view_open(mb, 0, &v);
	uint32_t n = mail_view_exists(v);
	*count = n;
	char **lines = calloc(n ? n : 1, sizeof(char *));
	size_t total = 1;
	for (uint32_t seq = 1; seq <= n; seq++) {
		uint32_t uid = mail_view_uid(v, seq);
		struct mail_msg_info info;
		mail_view_msg(v, seq, &info);
		struct mail_summary *sm;
		struct mail_body *bd;
		mail_summaries(v, &uid, 1, &sm);
		mail_bodies(v, &uid, 1, &bd);
		char kw[256] = "";
		/* keyword names sorted by bit would depend on each store's table:
		 * by name instead (at most the three used here) */
		const char *names[3] = { "$Forwarded", "$Label1", "work" };
		for (int k = 0; k < 3; k++)
			for (unsigned b = 0; b < MAIL_MAX_KEYWORDS; b++)
				if (((info.keywords >> b) & 1) && mail_view_keyword(v, b) &&
				    strcmp(mail_view_keyword(v, b), names[k]) == 0)
					snprintf(kw + strlen(kw), sizeof(kw) - strlen(kw), "%s ", names[k]);
		size_t need = bd[0].len + 256;
		lines[seq - 1] = malloc(need);
		int l = snprintf(lines[seq - 1], need, "%llu|%u|%s|%.*s|%.*s|%llu", (unsigned long long)sm[0].internal_date_ms,
		                 info.flags, kw, (int)sm[0].header_len, (const char *)sm[0].header, (int)bd[0].len,
		                 bd[0].status == 0 ? (const char *)bd[0].data : "", (unsigned long long)sm[0].size);
		total += (size_t)l + 1;
		mail_summaries_free(sm, 1);
		mail_bodies_free(bd, 1);
	}
	for (uint32_t i = 0; i + 1 < n; i++) /* sort (few lines) */
		for (uint32_t j = i + 1; j < n; j++)
			if (strcmp(lines[i], lines[j]) > 0) {
				char *t = lines[i];
				lines[i] = lines[j];
				lines[j] = t;
			}
	char *all = malloc(total);
	all[0] = '\0';
	size_t at = 0;
	for (uint32_t i = 0; i < n; i++) {
		size_t l = strlen(lines[i]);
		memcpy(all + at, lines[i], l);
		all[at + l] = '\n';
		at += l + 1;
		free(lines[i]);
	}
	all[at] = '\0';
	free(lines);
	mail_view_close(v);
	mail_mailbox_close(mb);
	return all;
}

/* The two stores show the same mailboxes (attributes, subscriptions) and
 * the same messages in each; returns the number of messages. */
static uint32_t assert_same(struct mail_engine *a, struct mail_engine *b, const char *user)
{
	struct mail_mailbox_info *la, *lb;
	size_t na, nb;
	CU_ASSERT_EQUAL_FATAL(mail_list(a, user, &la, &na), 0);
	CU_ASSERT_EQUAL_FATAL(mail_list(b, user, &lb, &nb), 0);
	CU_ASSERT_EQUAL(na, nb);
	uint32_t messages = 0;
	for (size_t i = 0; i < na && i < nb; i++) {
		CU_ASSERT_STRING_EQUAL(la[i].name, lb[i].name);
		CU_ASSERT_EQUAL(la[i].exists, lb[i].exists);
		CU_ASSERT_EQUAL(la[i].subscribed, lb[i].subscribed);
		CU_ASSERT_EQUAL(la[i].special_use, lb[i].special_use);
		if (!la[i].exists)
			continue;
		uint32_t ca, cb;
		char *da = mailbox_digest(a, user, la[i].name, &ca), *db = mailbox_digest(b, user, la[i].name, &cb);
		CU_ASSERT_EQUAL(ca, cb);
		CU_ASSERT_STRING_EQUAL(da, db);
		messages += ca;
		free(da);
		free(db);
	}
	mail_list_free(la, na);
	mail_list_free(lb, nb);
	return messages;
}

/* ---- tests ---- */

static void test_parse_since(void)
{
	uint64_t now = 1750000000000ull, t = 0;
	CU_ASSERT_EQUAL(ctl_parse_since("2h", now, &t), 0);
	CU_ASSERT_EQUAL(t, now - 7200000);
	CU_ASSERT_EQUAL(ctl_parse_since("30m", now, &t), 0);
	CU_ASSERT_EQUAL(t, now - 1800000);
	CU_ASSERT_EQUAL(ctl_parse_since("7d", now, &t), 0);
	CU_ASSERT_EQUAL(t, now - 7 * 86400000ull);
	CU_ASSERT_EQUAL(ctl_parse_since("2025-06-01T00:00:00Z", now, &t), 0);
	CU_ASSERT_EQUAL(t, 1748736000000ull);
	CU_ASSERT_EQUAL(ctl_parse_since("2025-06-01T02:00+02:00", now, &t), 0);
	CU_ASSERT_EQUAL(t, 1748736000000ull);
	CU_ASSERT_EQUAL(ctl_parse_since("2025-05-31 19:00:00-0500", now, &t), 0);
	CU_ASSERT_EQUAL(t, 1748736000000ull);
	CU_ASSERT_EQUAL(ctl_parse_since("2025-06-01", now, &t), 0); /* local midnight */
	CU_ASSERT(t >= 1748736000000ull - 14 * 3600000ull && t <= 1748736000000ull + 12 * 3600000ull);
	static const char *const bad[] = { "", "5", "2h30m", "yesterday", "2025-13-01", "2025-06-01T25:00",
	                                   "2025-06-01T12", "2025-06-01Tx", "2025-06-01T12:00+2", "-2h", "1969-12-31" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(ctl_parse_since(bad[i], now, &t), -1);
}

static void test_copy_resume(void)
{
	struct ctl a, b;
	open_ctl(&a, conf_a);
	open_ctl(&b, dest_conf);
	fill_source(a.engine);
	char **users;
	size_t n_users;
	char err[512];
	CU_ASSERT_EQUAL_FATAL(ctl_users_from_file(a.config.users_file, &users, &n_users, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(n_users, 3);
	CU_ASSERT_STRING_EQUAL(users[0], "alice");

	/* interrupted after 15 messages */
	struct ctl_copy_options opt = { .limit = 15, .batch = 4 };
	struct ctl_copy_stats st;
	CU_ASSERT_EQUAL(ctl_copy_store(a.engine, b.engine, (const char *const *)users, n_users, &opt, &st, err, sizeof(err)), 1);
	CU_ASSERT_EQUAL(st.copied, 15);
	/* resumed: the rest, nothing twice, verified */
	opt.limit = 0;
	CU_ASSERT_EQUAL(ctl_copy_store(a.engine, b.engine, (const char *const *)users, n_users, &opt, &st, err, sizeof(err)), 0);
	uint64_t total = 38 + 6 + 1 + 6;
	CU_ASSERT_EQUAL(st.skipped, 15);
	CU_ASSERT_EQUAL(st.copied, total - 15);
	CU_ASSERT_EQUAL(st.messages, total);
	CU_ASSERT_EQUAL(st.mismatches, 0);
	CU_ASSERT_EQUAL(st.users, 3);
	CU_ASSERT_EQUAL(assert_same(a.engine, b.engine, "alice"), 38 + 6);
	CU_ASSERT_EQUAL(assert_same(a.engine, b.engine, "bob"), 1 + 6);
	CU_ASSERT_EQUAL(assert_same(a.engine, b.engine, "carol"), 0);
	/* once more: nothing to copy */
	CU_ASSERT_EQUAL(ctl_copy_store(a.engine, b.engine, (const char *const *)users, n_users, &opt, &st, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(st.copied, 0);
	CU_ASSERT_EQUAL(st.skipped, total);

	/* a message more in the source: exactly that one */
	CU_ASSERT_EQUAL(append(a.engine, "bob", "Sent", "Subject: late\r\n\r\nlate\r\n", 1700000999000ull, 0, NULL, NULL),
	                0);
	const char *bob[] = { "bob" };
	CU_ASSERT_EQUAL(ctl_copy_store(a.engine, b.engine, bob, 1, &opt, &st, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(st.copied, 1);
	CU_ASSERT_EQUAL(assert_same(a.engine, b.engine, "bob"), 1 + 6 + 1);

	/* the same through the command, from another process's view: a new
	 * ctl on each side (what a second aerogramctl run would see) */
	ctl_close(&b);
	char *argv[] = { "copy-store", "--to", (char *)dest_conf, "--user", "alice", NULL };
	FILE *saved = stdout;
	stdout = fopen("/dev/null", "w");
	int status = ctl_cmd_copy_store(&a, 5, argv);
	fclose(stdout);
	stdout = saved;
	CU_ASSERT_EQUAL(status, 0);
	char *bad1[] = { "copy-store", NULL };
	char *bad2[] = { "copy-store", "--to", conf_b, "--limit", "x", NULL };
	char *bad3[] = { "copy-store", "--to", "/nonexistent.conf", NULL };
	FILE *err_saved = stderr;
	stderr = fopen("/dev/null", "w");
	CU_ASSERT_EQUAL(ctl_cmd_copy_store(&a, 1, bad1), 2);
	CU_ASSERT_EQUAL(ctl_cmd_copy_store(&a, 5, bad2), 2);
	CU_ASSERT_EQUAL(ctl_cmd_copy_store(&a, 3, bad3), 1);
	fclose(stderr);
	stderr = err_saved;

	/* a message only the destination has: the verification says so */
	open_ctl(&b, dest_conf);
	CU_ASSERT_EQUAL(append(b.engine, "bob", "INBOX", "Subject: only here\r\n\r\nx\r\n", 1, 0, NULL, NULL), 0);
	CU_ASSERT_EQUAL(ctl_copy_store(a.engine, b.engine, bob, 1, &opt, &st, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(st.mismatches, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "differ"));

	for (size_t i = 0; i < n_users; i++)
		free(users[i]);
	free(users);
	ctl_close(&b);
	ctl_close(&a);
}

/* Into a store of another driver (memory): the code knows no driver. */
static void test_copy_other_driver(void)
{
	struct ctl a, m;
	open_ctl(&a, conf_a);
	open_ctl(&m, conf_m);
	const char *users[] = { "alice", "bob", "carol" };
	struct ctl_copy_options opt = { .batch = 7 };
	struct ctl_copy_stats st;
	char err[512];
	CU_ASSERT_EQUAL(ctl_copy_store(a.engine, m.engine, users, 3, &opt, &st, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(st.skipped, 0);
	CU_ASSERT_EQUAL(assert_same(a.engine, m.engine, "alice"), 38 + 6);
	CU_ASSERT_EQUAL(assert_same(a.engine, m.engine, "bob"), 1 + 6 + 1);
	ctl_close(&m);
	ctl_close(&a);
}

/* The mailbox, synced, holds n messages. */
static void check_exists(struct mail_engine *eng, const char *user, const char *box, uint32_t n)
{
	struct mail_mailbox *mb;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(eng, user, box, &mb), 0);
	mail_mailbox_sync(mb);
	struct mail_status s;
	mail_mailbox_status(mb, &s);
	CU_ASSERT_EQUAL(s.exists, n);
	mail_mailbox_close(mb);
}

/* Expunges the messages at these two sequence numbers (the second at most
 * EXISTS) of a mailbox; returns EXISTS before. */
static uint32_t expunge_two(struct mail_engine *eng, const char *user, const char *box, uint32_t seq1, uint32_t seq2)
{
	struct mail_mailbox *mb;
	struct mail_view *v;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(eng, user, box, &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 0, &v), 0);
	uint32_t n0 = mail_view_exists(v);
	CU_ASSERT_FATAL(seq1 < seq2 && seq2 <= n0);
	uint32_t uids[] = { mail_view_uid(v, seq1), mail_view_uid(v, seq2) };
	CU_ASSERT_EQUAL(mail_expunge(v, uids, 2), 0);
	mail_view_close(v);
	mail_mailbox_close(mb);
	return n0;
}

static void test_undelete_end_to_end(void)
{
	struct ctl a;
	open_ctl(&a, conf_a);
	CU_ASSERT_EQUAL(a.config.expunge_retention_s, 7 * 86400); /* the default */
	uint32_t n0 = expunge_two(a.engine, "bob", "Sent", 1, 2);
	/* a new process (ctl) finds them in the store */
	ctl_close(&a);
	open_ctl(&a, conf_a);
	char path[400];
	snprintf(path, sizeof(path), "%s/undelete.out", tmpdir);
	FILE *out = fopen(path, "w+");
	size_t restored = 0;
	char err[512];
	CU_ASSERT_EQUAL(ctl_undelete(a.engine, "bob", "Sent", 0, out, &restored, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(restored, 2);
	rewind(out);
	char line[512];
	CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof(line), out));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "UID 1 -> "));
	CU_ASSERT_PTR_NOT_NULL(strstr(line, "\\Answered"));
	fclose(out);
	CU_ASSERT_EQUAL(ctl_undelete(a.engine, "bob", "Sent", 0, NULL, &restored, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(restored, 0);
	check_exists(a.engine, "bob", "Sent", n0);
	/* since: an expunge now, then only what came after a time is back */
	struct mail_mailbox *mb;
	struct mail_view *v;
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(a.engine, "bob", "Sent", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 0, &v), 0);
	uint32_t one = mail_view_uid(v, 1);
	CU_ASSERT_EQUAL(mail_expunge(v, &one, 1), 0);
	mail_view_close(v);
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL(ctl_undelete(a.engine, "bob", "Sent", (uint64_t)time(NULL) * 1000 + 60000, NULL, &restored, err,
	                             sizeof(err)), 0);
	CU_ASSERT_EQUAL(restored, 0);
	/* the command */
	char *argv[] = { "undelete", "bob", "Sent", "--since", "1h", NULL };
	FILE *saved = stdout, *err_saved = stderr;
	stdout = fopen("/dev/null", "w");
	stderr = fopen("/dev/null", "w");
	CU_ASSERT_EQUAL(ctl_cmd_undelete(&a, 5, argv), 0);
	char *bad1[] = { "undelete", "bob", NULL };
	char *bad2[] = { "undelete", "bob", "Sent", "--since", "yesterday", NULL };
	char *bad3[] = { "undelete", "bob", "NoSuchBox", NULL };
	char *bad4[] = { "undelete", "bob", "Sent", "--frobnicate", NULL };
	CU_ASSERT_EQUAL(ctl_cmd_undelete(&a, 2, bad1), 2);
	CU_ASSERT_EQUAL(ctl_cmd_undelete(&a, 5, bad2), 2);
	CU_ASSERT_EQUAL(ctl_cmd_undelete(&a, 3, bad3), 1);
	CU_ASSERT_EQUAL(ctl_cmd_undelete(&a, 4, bad4), 2);
	fclose(stdout);
	fclose(stderr);
	stdout = saved;
	stderr = err_saved;
	check_exists(a.engine, "bob", "Sent", n0);
	/* a store whose retention is 0 keeps nothing to undelete */
	struct ctl b;
	open_ctl(&b, conf_b);
	CU_ASSERT_EQUAL(b.config.expunge_retention_s, 0);
	CU_ASSERT_EQUAL_FATAL(mail_mailbox_open(b.engine, "alice", "Work", &mb), 0);
	CU_ASSERT_EQUAL_FATAL(mail_view_open(mb, 0, &v), 0);
	one = mail_view_uid(v, 1);
	CU_ASSERT_EQUAL(mail_expunge(v, &one, 1), 0);
	mail_view_close(v);
	mail_mailbox_close(mb);
	CU_ASSERT_EQUAL(ctl_undelete(b.engine, "alice", "Work", 0, NULL, &restored, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(restored, 0);
	ctl_close(&b);
	ctl_close(&a);
}

/* On garage-emu: an expunge, then a new process brings the messages back
 * (no conditional writes there: the add takes its turn). */
static void test_undelete_garage(void)
{
	struct ctl g;
	open_ctl(&g, conf_g);
	uint32_t n0 = expunge_two(g.engine, "alice", "INBOX", 1, 3);
	CU_ASSERT(n0 > 3);
	ctl_close(&g);
	open_ctl(&g, conf_g);
	size_t restored = 0;
	char err[512];
	CU_ASSERT_EQUAL(ctl_undelete(g.engine, "alice", "INBOX", 0, NULL, &restored, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(restored, 2);
	CU_ASSERT_EQUAL(ctl_undelete(g.engine, "alice", "INBOX", 0, NULL, &restored, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(restored, 0);
	check_exists(g.engine, "alice", "INBOX", n0);
	/* and the source still equals it */
	struct ctl a;
	open_ctl(&a, conf_a);
	CU_ASSERT_EQUAL(assert_same(a.engine, g.engine, "alice"), 38 + 6);
	ctl_close(&a);
	ctl_close(&g);
}

/* ---- bench ---- */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int bench(int n)
{
	setup_files("full");
	struct ctl a, b, m;
	open_ctl(&a, conf_a);
	open_ctl(&b, conf_b);
	open_ctl(&m, conf_m);
	/* messages of 2 to 6 KB, appended 100 at a time */
	struct mail_mailbox *mb;
	if (mail_mailbox_open(a.engine, "alice", "INBOX", &mb) != 0)
		return 1;
	double t0 = now_s();
	char *bodies = malloc(100 * 8192);
	struct mail_new_message msgs[100];
	for (int done = 0; done < n;) {
		int k = n - done < 100 ? n - done : 100;
		for (int i = 0; i < k; i++) {
			char *p = bodies + i * 8192;
			int len = snprintf(p, 8192, "Subject: bench %d\r\nMessage-ID: <%d@bench>\r\n\r\n", done + i, done + i);
			int size = 2048 + (done + i) % 4096;
			for (; len < size; len++)
				p[len] = (char)('a' + len % 26);
			msgs[i] = (struct mail_new_message){ .body = (uint8_t *)p, .body_len = (size_t)size,
			                                     .internal_date_ms = 1700000000000ull + (uint64_t)(done + i),
			                                     .header = (uint8_t *)p, .header_len = 40 };
		}
		if (mail_append_many(mb, msgs, (size_t)k, NULL, NULL) != 0)
			return 1;
		done += k;
	}
	mail_mailbox_close(mb);
	double t1 = now_s();
	printf("filled sqlite (synchronous = full) with %d messages of 2 to 6 KB, 100 per append, in %.2f s "
	       "(%.0f messages/s)\n", n, t1 - t0, n / (t1 - t0));
	const char *users[] = { "alice" };
	struct ctl_copy_stats st;
	char err[512];
	struct ctl_copy_options opt = { 0 };
	if (ctl_copy_store(a.engine, b.engine, users, 1, &opt, &st, err, sizeof(err)) != 0)
		return fprintf(stderr, "%s\n", err), 1;
	printf("copy-store sqlite -> sqlite: %llu messages, %.1f MB in %.2f s: %.0f messages/s\n",
	       (unsigned long long)st.copied, st.bytes_copied / 1048576.0, st.seconds, st.copied / st.seconds);
	if (ctl_copy_store(a.engine, b.engine, users, 1, &opt, &st, err, sizeof(err)) != 0)
		return fprintf(stderr, "%s\n", err), 1;
	printf("copy-store again (all there already): %llu skipped in %.2f s\n", (unsigned long long)st.skipped,
	       st.seconds);
	if (ctl_copy_store(a.engine, m.engine, users, 1, &opt, &st, err, sizeof(err)) != 0)
		return fprintf(stderr, "%s\n", err), 1;
	printf("copy-store sqlite -> memory: %llu messages in %.2f s: %.0f messages/s\n", (unsigned long long)st.copied,
	       st.seconds, st.copied / st.seconds);
	if (conf_g[0]) {
		struct ctl g;
		open_ctl(&g, conf_g);
		if (ctl_copy_store(a.engine, g.engine, users, 1, &opt, &st, err, sizeof(err)) != 0)
			return fprintf(stderr, "%s\n", err), 1;
		printf("copy-store sqlite -> garage: %llu messages in %.2f s: %.0f messages/s\n",
		       (unsigned long long)st.copied, st.seconds, st.copied / st.seconds);
		ctl_close(&g);
	}
	free(bodies);
	ctl_close(&m);
	ctl_close(&b);
	ctl_close(&a);
	cleanup_files();
	return 0;
}

static const struct agt_test tests[] = {
	{ "undelete --since: ISO 8601 times and durations", test_parse_since },
	{ "copy-store sqlite to sqlite: stopped, resumed, nothing twice, verified", test_copy_resume },
	{ "copy-store into another driver (memory)", test_copy_other_driver },
	{ "undelete end to end: a new process, since, the command, retention 0", test_undelete_end_to_end },
	AGT_END,
};

/* under garage-emu: the copy into Garage, and undelete there */
static const struct agt_test garage_tests[] = {
	{ "copy-store sqlite to garage: stopped, resumed, nothing twice, verified", test_copy_resume },
	{ "undelete on garage, from a new process", test_undelete_garage },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return bench(atoi(argv[2]));
	setup_files("normal");
	if (conf_g[0])
		dest_conf = conf_g;
	agt_suite("aerogramctl store commands", NULL, NULL, conf_g[0] ? garage_tests : tests, NULL);
	int failed = agt_run();
	if (failed == 0)
		cleanup_files(); /* kept for a look when something failed */
	return failed;
}
