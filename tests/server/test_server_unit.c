/* test_server_unit.c - the daemon's pure parts: SASL PLAIN decoding, the
 * failure delays, the users file, the capability table, the config file,
 * the search cache (test_search_cache.c). */
#include <CUnit/Basic.h>
#include <argon2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/auth.h"
#include "host/capability.h"
#include "host/config_file.h"
#include "host/users.h"
#include "tests/server/test_search_cache.h"
#include "tests/lib/agt_files.h"
#include "tests/lib/cu_main.h"

static char tmpdir[256];

static void test_sasl_plain(void)
{
	char *decoded;
	const char *user, *pw;
	size_t ulen, plen;
	/* "\0alice\0secret" */
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("AGFsaWNlAHNlY3JldA==", 20, &decoded, &user, &ulen, &pw, &plen), 0);
	CU_ASSERT_EQUAL(ulen, 5);
	CU_ASSERT_EQUAL(memcmp(user, "alice", 5), 0);
	CU_ASSERT_EQUAL(plen, 6);
	CU_ASSERT_EQUAL(memcmp(pw, "secret", 6), 0);
	free(decoded);
	/* "alice\0alice\0secret": authzid equal to authcid is accepted. */
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("YWxpY2UAYWxpY2UAc2VjcmV0", 24, &decoded, &user, &ulen, &pw, &plen), 0);
	free(decoded);
	/* "bob\0alice\0secret": acting as someone else is refused. */
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("Ym9iAGFsaWNlAHNlY3JldA==", 24, &decoded, &user, &ulen, &pw, &plen), -1);
	CU_ASSERT_PTR_NULL(decoded);
	/* "alice\0secret": one NUL only. */
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("YWxpY2UAc2VjcmV0", 16, &decoded, &user, &ulen, &pw, &plen), -1);
	/* "\0\0secret": empty user. */
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("AABzZWNyZXQ=", 12, &decoded, &user, &ulen, &pw, &plen), -1);
	/* Not base64, bad length, padding in the middle, empty. */
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("!!!!", 4, &decoded, &user, &ulen, &pw, &plen), -1);
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("AGFsaWNlAHNlY3JldA=", 19, &decoded, &user, &ulen, &pw, &plen), -1);
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("AG=saWNl", 8, &decoded, &user, &ulen, &pw, &plen), -1);
	CU_ASSERT_EQUAL(ag_sasl_plain_decode("", 0, &decoded, &user, &ulen, &pw, &plen), -1);
}

static void test_failure_delays(void)
{
	struct ag_auth_failures *t = ag_auth_failures_new(100, 1000);
	unsigned count;
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "192.0.2.1", &count), 100);
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "192.0.2.1", &count), 200);
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "192.0.2.1", &count), 400);
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "192.0.2.1", &count), 800);
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "192.0.2.1", &count), 1000);
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "192.0.2.1", &count), 1000);
	CU_ASSERT_EQUAL(count, 6);
	/* Another address starts from the base. */
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "2001:db8::1", &count), 100);
	CU_ASSERT_EQUAL(count, 1);
	/* Many addresses: the table stays bounded and keeps working. */
	char address[64];
	for (int i = 0; i < 10000; i++) {
		snprintf(address, sizeof(address), "10.0.%d.%d", i / 256, i % 256);
		ag_auth_failure_record(t, address, &count);
	}
	CU_ASSERT_EQUAL(ag_auth_failure_record(t, "10.0.39.15", &count), 200);
	ag_auth_failures_free(t);
}

/* The loader, for the refusals (what it loads when it fails to refuse is
 * not freed: the test fails then). */
static int users_load_only(const char *path, char *err, size_t errlen)
{
	struct ag_users *users;
	return ag_users_load(path, &users, err, errlen);
}

static void test_users_file(void)
{
	char err[512];
	struct ag_users *users;
	/* A cheap Argon2id hash of "password", made as aerogramctl does. */
	char hash[256], text[512];
	CU_ASSERT_EQUAL_FATAL(argon2id_hash_encoded(1, 64, 1, "password", 8, "somesalt", 8, 32, hash, sizeof(hash)),
	                      ARGON2_OK);
	snprintf(text, sizeof(text), "; comment\n[alice]\npassword = {PLAIN}secret\n\n[bob@example.org]\npassword = %s\n",
	         hash);
	const char *path = agt_file(tmpdir, "users.ini", text);
	CU_ASSERT_EQUAL_FATAL(ag_users_load(path, &users, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ag_users_count(users), 2);
	CU_ASSERT_EQUAL(ag_users_verify(users, "alice", 5, "secret", 6), 1);
	CU_ASSERT_EQUAL(ag_users_verify(users, "alice", 5, "secret2", 7), 0);
	CU_ASSERT_EQUAL(ag_users_verify(users, "alice", 5, "secre", 5), 0);
	CU_ASSERT_EQUAL(ag_users_verify(users, "Alice", 5, "secret", 6), 0);
	CU_ASSERT_EQUAL(ag_users_verify(users, "alice\0x", 7, "secret", 6), 0);
	CU_ASSERT_EQUAL(ag_users_verify(users, "nobody", 6, "secret", 6), 0);
	CU_ASSERT_EQUAL(ag_users_verify(users, "bob@example.org", 15, "password", 8), 1);
	CU_ASSERT_EQUAL(ag_users_verify(users, "bob@example.org", 15, "Password", 8), 0);
	struct ag_users *ref = ag_users_ref(users);
	ag_users_unref(users);
	CU_ASSERT_EQUAL(ag_users_verify(ref, "alice", 5, "secret", 6), 1);
	ag_users_unref(ref);

	static const struct agt_refusal bad[] = {
		{ "[a]\npassword = secret\n", "Argon2" },
		{ "[a]\npasswd = {PLAIN}x\n", "unknown key" },
		{ "password = {PLAIN}x\n", "outside" },
		{ "[a]\npassword = {PLAIN}x\n[a]\npassword = {PLAIN}y\n", "twice" },
		{ "[a\npassword = {PLAIN}x\n", ":1:" },
		{ "[a/b]\npassword = {PLAIN}x\n", "user name" },
		{ "[a b]\npassword = {PLAIN}x\n", "user name" },
		{ "[a]\npassword = {PLAIN}\n", ":2: [a] password: empty {PLAIN} password" },
		{ "[a]\n[b]\npassword = {PLAIN}x\n", ":1: [a]: no password line" },
		{ "[b]\npassword = {PLAIN}x\n[a]\n", ":3: [a]: no password line" },
		{ "[a]\npassword = {PLAIN}x\npassword = {PLAIN}x\n", ":3: [a] password: password set twice" },
		{ "[a]\npassword = $argon2id$garbage\n", ":2: [a] password: Argon2 hash" },
		{ "[a]\npassword = $argon2id$v=19$m=4194304,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n", "out of bounds" },
		{ "[a]\npassword = $argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo$x\n", "follows" },
		{ "[a]\npassword = {PLAIN}x\n[a]\npassword = {PLAIN}x\n", ":3: [a]: user declared twice" },
		{ "[a] x\npassword = {PLAIN}x\n", ":1: a section" },
	};
	agt_check_refusals(tmpdir, "bad.ini", NULL, bad, sizeof(bad) / sizeof(bad[0]), users_load_only);
	CU_ASSERT_EQUAL(ag_users_load("/nonexistent/users.ini", &users, err, sizeof(err)), -1);
	CU_ASSERT_EQUAL(ag_users_load(tmpdir, &users, err, sizeof(err)), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "directory"));
	/* A value runs to the end of its line: no inline comment. */
	path = agt_file(tmpdir, "semicolon.ini", "[a]\npassword = {PLAIN}pa ;ss\n");
	CU_ASSERT_EQUAL_FATAL(ag_users_load(path, &users, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(ag_users_verify(users, "a", 1, "pa ;ss", 6), 1);
	CU_ASSERT_EQUAL(ag_users_verify(users, "a", 1, "pa", 2), 0);
	ag_users_unref(users);
}

static void test_capabilities(void)
{
	struct agbuf b = AGBUF_INIT;
	struct ag_capability_context pre = { 0, 1, 1 };
	ag_capability_append(&b, &pre);
	CU_ASSERT_STRING_EQUAL(b.data, "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE ID STARTTLS AUTH=PLAIN");
	agbuf_reset(&b);
	struct ag_capability_context refused = { 0, 0, 0 };
	ag_capability_append(&b, &refused);
	CU_ASSERT_STRING_EQUAL(b.data, "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE ID LOGINDISABLED");
	agbuf_reset(&b);
	struct ag_capability_context post = { 1, 1, 1 };
	ag_capability_append(&b, &post);
	CU_ASSERT_STRING_EQUAL(b.data, "IMAP4rev1 LITERAL+ SASL-IR ENABLE IDLE UIDPLUS MULTIAPPEND MOVE UNSELECT "
	                               "NAMESPACE ID CHILDREN SPECIAL-USE QUOTA QUOTA=RES-STORAGE QUOTA=RES-MESSAGE STATUS=SIZE "
	                               "ESEARCH SEARCHRES WITHIN LIST-EXTENDED LIST-STATUS CREATE-SPECIAL-USE "
	                               "SORT SORT=DISPLAY THREAD=ORDEREDSUBJECT THREAD=REFERENCES ESORT CONDSTORE QRESYNC "
	                               "BINARY COMPRESS=DEFLATE CATENATE CONTEXT=SEARCH CONTEXT=SORT");
	agbuf_free(&b);
}

static void test_config_keys(void)
{
	char err[512];
	struct ag_config cfg;
	const char *path = agt_file(tmpdir, "a.conf",
		"[storage]\ndriver = memory\n[imap]\nlisten = 127.0.0.1:1 [::1]:2\nworkers = 3\nidle_timeout = 60\n"
		"[auth]\nusers_file = /u.ini\nfailure_delay = 5\nfailure_delay_max = 50\n");
	CU_ASSERT_EQUAL_FATAL(ag_config_load(path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(cfg.workers, 3);
	CU_ASSERT_EQUAL(cfg.idle_timeout, 60);
	CU_ASSERT_EQUAL(cfg.failure_delay, 5);
	CU_ASSERT_EQUAL(cfg.failure_delay_max, 50);
	CU_ASSERT_STRING_EQUAL(cfg.plaintext_auth, "loopback");
	ag_config_free(&cfg);
	path = agt_file(tmpdir, "b.conf", "[storage]\ndriver = memory\n");
	CU_ASSERT_EQUAL_FATAL(ag_config_load(path, &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg.listen, "127.0.0.1:1143");
	CU_ASSERT_EQUAL(cfg.workers, 8);
	CU_ASSERT_EQUAL(cfg.idle_timeout, 1800);
	CU_ASSERT_EQUAL(cfg.expunge_retention_s, 7 * 86400);
	CU_ASSERT_EQUAL(cfg.expunge_retention_set, 0); /* a private store's default is 0 (server.c) */
	CU_ASSERT_EQUAL(cfg.body_cache_bytes, 32u << 20);
	ag_config_free(&cfg);
	/* body_cache and expunge_retention are the engine's: not passed to the
	 * driver; a retention in the file is marked as such (server.c) */
	static const struct {
		const char *key, *v;
		uint64_t want;
	} engine_keys[] = {
		{ "body_cache", "0", 0 },
		{ "body_cache", "1000", 1000 },
		{ "body_cache", "64K", 65536 },
		{ "body_cache", "32M", 32u << 20 },
		{ "body_cache", "2g", 2ull << 30 },
		{ "expunge_retention", "0", 0 },
		{ "expunge_retention", "90", 90 },
		{ "expunge_retention", "30m", 1800 },
		{ "expunge_retention", "12h", 43200 },
		{ "expunge_retention", "7d", 604800 },
		{ "expunge_retention", "2w", 1209600 },
		{ "expunge_retention", "365d", 31536000 },
	};
	for (size_t i = 0; i < sizeof(engine_keys) / sizeof(engine_keys[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[storage]\ndriver = memory\n%s = %s\n", engine_keys[i].key,
		         engine_keys[i].v);
		path = agt_file(tmpdir, "e.conf", text);
		CU_ASSERT_EQUAL_FATAL(ag_config_load(path, &cfg, err, sizeof(err)), 0);
		int retention = strcmp(engine_keys[i].key, "expunge_retention") == 0;
		CU_ASSERT_EQUAL(retention ? cfg.expunge_retention_s : cfg.body_cache_bytes, engine_keys[i].want);
		CU_ASSERT_EQUAL(cfg.expunge_retention_set, retention);
		CU_ASSERT_EQUAL(cfg.n_storage, 0);
		ag_config_free(&cfg);
	}
	static const char *const bad[] = {
		"[storage]\ndriver = m\n[imap]\nlisten = 127.0.0.1\n",
		"[storage]\ndriver = m\n[imap]\nlisten = [::1]\n",
		"[storage]\ndriver = m\n[imap]\nlisten = 127.0.0.1:0\n",
		"[storage]\ndriver = m\n[imap]\nworkers = 1000\n",
		"[storage]\ndriver = m\n[imap]\ntls_cert = /c.pem\n",
		"[storage]\ndriver = m\n[auth]\nfailure_delay = 10\nfailure_delay_max = 5\n",
		"[storage]\ndriver = m\nexpunge_retention = 7x\n",
		"[storage]\ndriver = m\nexpunge_retention = -1d\n",
		"[storage]\ndriver = m\nexpunge_retention = 366d\n",
		"[storage]\ndriver = m\nexpunge_retention = d\n",
		"[storage]\ndriver = m\nexpunge_retention = 7 d\n",
		"[storage]\ndriver = m\nexpunge_retention = 99999999999999999999w\n",
		"[storage]\ndriver = m\nbody_cache = 17G\n",
		"[storage]\ndriver = m\nbody_cache = -1\n",
		"[storage]\ndriver = m\nbody_cache = 32MB\n",
		"[storage]\ndriver = m\nbody_cache = lots\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		path = agt_file(tmpdir, "bad.conf", bad[i]);
		CU_ASSERT_EQUAL(ag_config_load(path, &cfg, err, sizeof(err)), -1);
	}
}

static const struct agt_test tests[] = {
	{ "SASL PLAIN decoding", test_sasl_plain },
	{ "failure delays double up to the cap", test_failure_delays },
	{ "users file", test_users_file },
	{ "capability lists", test_capabilities },
	{ "configuration keys", test_config_keys },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	agt_tmpdir(tmpdir, sizeof(tmpdir), "aerogram-server-unit");
	agt_suite("server", NULL, NULL, tests, NULL);
	search_cache_tests_add();
	int failed = agt_run();
	if (agt_rm_rf(tmpdir) != 0)
		return 1;
	return failed;
}
