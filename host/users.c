/* users.c - the users file (inih) and password verification (libargon2). */
#include "host/users.h"

#include <argon2.h>
#include <errno.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/log.h"

#define PLAIN_PREFIX "{PLAIN}"

/* Parameters of the dummy hash when the file holds no Argon2 hash to copy
 * (only {PLAIN} passwords): the cheapest, since then nothing is slow. */
#define DEFAULT_T_COST 1
#define DEFAULT_M_COST 8
#define DEFAULT_PARALLELISM 1
#define DUMMY_SALT_LEN 16
#define DUMMY_HASH_LEN 32

struct user {
	char *name;
	char *password; /* a PHC string, or {PLAIN}text */
	int line;
};

struct ag_users {
	atomic_int refs;
	struct user *users;
	size_t count;
	char *dummy_hash;   /* an Argon2id hash of random bytes, verified for unknown users */
};

struct load_state {
	struct ag_users *users;
	const char *path;
	char *err;
	size_t errlen;
	int failed;
	int fail_line;
};

static struct user *find(const struct ag_users *users, const char *name, size_t len)
{
	for (size_t i = 0; i < users->count; i++) {
		if (strlen(users->users[i].name) == len && memcmp(users->users[i].name, name, len) == 0)
			return &users->users[i];
	}
	return NULL;
}

/* User names become key prefixes in the store: no '/', no controls, no spaces. */
static int valid_name(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > 255)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-' || c == '+' || c == '@'))
			return 0;
	}
	return 1;
}

static int argon2_kind(const char *phc, argon2_type *type)
{
	if (strncmp(phc, "$argon2id$", 10) == 0)
		*type = Argon2_id;
	else if (strncmp(phc, "$argon2i$", 9) == 0)
		*type = Argon2_i;
	else if (strncmp(phc, "$argon2d$", 9) == 0)
		*type = Argon2_d;
	else
		return -1;
	return 0;
}

static int on_entry(void *user_data, const char *section, const char *name, const char *value,
                    int lineno)
{
	struct load_state *st = user_data;
	const char *problem = NULL;
	if (section[0] == '\0')
		problem = "key outside any [user] section";
	else if (!valid_name(section))
		problem = "a user name is letters, digits and . _ - + @ (it prefixes the user's keys in the store)";
	else if (strcmp(name, "password") != 0)
		problem = "unknown key (a user has only `password`)";
	else if (strncmp(value, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) != 0) {
		argon2_type type;
		if (argon2_kind(value, &type) != 0)
			problem = "password must be an Argon2 hash ($argon2id$..., see aerogramctl hash-password) or {PLAIN}text";
	}
	if (problem == NULL && find(st->users, section, strlen(section)) != NULL)
		problem = "user declared twice (or password set twice)";
	if (problem == NULL) {
		struct user *n = realloc(st->users->users, (st->users->count + 1) * sizeof(*n));
		if (n == NULL) {
			problem = "out of memory";
		} else {
			st->users->users = n;
			struct user *u = &n[st->users->count];
			u->name = strdup(section);
			u->password = strdup(value);
			u->line = lineno;
			st->users->count++;
			if (u->name == NULL || u->password == NULL)
				problem = "out of memory";
		}
	}
	if (problem != NULL) {
		snprintf(st->err, st->errlen, "%s:%d: [%s] %s: %s", st->path, lineno, section, name, problem);
		st->failed = 1;
		st->fail_line = lineno;
		return 0;
	}
	return 1;
}

/* inih's handler has no line number; a wrapper reader counts lines. */
struct line_reader {
	FILE *f;
	int line;
	struct load_state *st;
};

static char *read_line(char *str, int num, void *stream)
{
	struct line_reader *r = stream;
	char *s = fgets(str, num, r->f);
	if (s != NULL)
		r->line++;
	return s;
}

static int on_entry_counted(void *user_data, const char *section, const char *name, const char *value)
{
	struct line_reader *r = user_data;
	return on_entry(r->st, section, name, value, r->line);
}

static int make_dummy(struct ag_users *users)
{
	uint32_t t_cost = DEFAULT_T_COST, m_cost = DEFAULT_M_COST, parallelism = DEFAULT_PARALLELISM;
	/* Copy the cost of the first real hash, so that an unknown name takes
	 * as long as a known one. */
	for (size_t i = 0; i < users->count; i++) {
		const char *p = strstr(users->users[i].password, "$m=");
		unsigned m, t, par;
		if (strncmp(users->users[i].password, "$argon2", 7) == 0 && p != NULL &&
		    sscanf(p, "$m=%u,t=%u,p=%u", &m, &t, &par) == 3 && m >= 8 && m <= 4u * 1024 * 1024 &&
		    t >= 1 && t <= 64 && par >= 1 && par <= 64) {
			m_cost = m;
			t_cost = t;
			parallelism = par;
			break;
		}
	}
	unsigned char salt[DUMMY_SALT_LEN], secret[32];
	if (RAND_bytes(salt, sizeof(salt)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1)
		return -1;
	size_t len = argon2_encodedlen(t_cost, m_cost, parallelism, DUMMY_SALT_LEN, DUMMY_HASH_LEN, Argon2_id);
	users->dummy_hash = malloc(len);
	if (users->dummy_hash == NULL)
		return -1;
	if (argon2id_hash_encoded(t_cost, m_cost, parallelism, secret, sizeof(secret), salt,
	                          sizeof(salt), DUMMY_HASH_LEN, users->dummy_hash, len) != ARGON2_OK)
		return -1;
	return 0;
}

static void users_free(struct ag_users *users)
{
	for (size_t i = 0; i < users->count; i++) {
		free(users->users[i].name);
		if (users->users[i].password != NULL) {
			OPENSSL_cleanse(users->users[i].password, strlen(users->users[i].password));
			free(users->users[i].password);
		}
	}
	free(users->users);
	free(users->dummy_hash);
	free(users);
}

int ag_users_load(const char *path, struct ag_users **out, char *err, size_t errlen)
{
	*out = NULL;
	struct ag_users *users = calloc(1, sizeof(*users));
	if (users == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	atomic_init(&users->refs, 1);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open the users file: %s", path, strerror(errno));
		users_free(users);
		return -1;
	}
	struct load_state st = { users, path, err, errlen, 0, 0 };
	struct line_reader reader = { f, 0, &st };
	int rc = ini_parse_stream(read_line, &reader, on_entry_counted, &reader);
	fclose(f);
	if (rc != 0) {
		/* inih reports the first bad line, which may come before ours. */
		if (!st.failed || rc != st.fail_line)
			snprintf(err, errlen, "%s:%d: syntax error", path, rc);
		users_free(users);
		return -1;
	}
	for (size_t i = 0; i < users->count; i++) {
		if (strncmp(users->users[i].password, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) == 0)
			ag_log_warn("%s:%d: user %s has a {PLAIN} password: acceptable for tests and demos only; "
			            "store an Argon2 hash (aerogramctl hash-password)",
			            path, users->users[i].line, users->users[i].name);
	}
	if (make_dummy(users) != 0) {
		snprintf(err, errlen, "%s: cannot prepare the password hashing (out of memory?)", path);
		users_free(users);
		return -1;
	}
	*out = users;
	return 0;
}

struct ag_users *ag_users_ref(struct ag_users *users)
{
	atomic_fetch_add(&users->refs, 1);
	return users;
}

void ag_users_unref(struct ag_users *users)
{
	if (users != NULL && atomic_fetch_sub(&users->refs, 1) == 1)
		users_free(users);
}

size_t ag_users_count(const struct ag_users *users)
{
	return users->count;
}

int ag_users_verify(const struct ag_users *users, const char *user, size_t user_len,
                    const char *password, size_t password_len)
{
	const struct user *u = memchr(user, '\0', user_len) ? NULL : find(users, user, user_len);
	if (u == NULL) {
		argon2_verify(users->dummy_hash, password, password_len, Argon2_id);
		return 0;
	}
	size_t plain_len = strlen(PLAIN_PREFIX);
	if (strncmp(u->password, PLAIN_PREFIX, plain_len) == 0) {
		/* As slow as an unknown name, so that timing does not tell them apart. */
		argon2_verify(users->dummy_hash, password, password_len, Argon2_id);
		const char *stored = u->password + plain_len;
		size_t stored_len = strlen(stored);
		return stored_len == password_len && CRYPTO_memcmp(stored, password, password_len) == 0;
	}
	argon2_type type;
	if (argon2_kind(u->password, &type) != 0)
		return 0;
	return argon2_verify(u->password, password, password_len, type) == ARGON2_OK;
}
