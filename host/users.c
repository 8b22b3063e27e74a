/* users.c - the users file and password verification (libargon2). */
#include "host/users.h"

#include <argon2.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "host/config_file.h"
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
	int line;       /* of the password */
	struct ag_user_quota quota;
	/* `address`: extra addresses LMTP delivers to this user, lowercase */
	char **addresses;
	size_t n_addresses;
	int address_line;
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
	char section[256];  /* the current user */
	int section_line;   /* its line, 0 before the first section */
	int has_password;   /* whether it has its password line yet */
	int has_address;    /* whether it has its address line yet */
	char subject[512];  /* what a problem is about, for the message */
};

static struct user *find(const struct ag_users *users, const char *name, size_t len)
{
	for (size_t i = 0; i < users->count; i++) {
		if (strlen(users->users[i].name) == len && memcmp(users->users[i].name, name, len) == 0)
			return &users->users[i];
	}
	return NULL;
}

int ag_users_valid_name(const char *name)
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

/* An address of the `address` key: local@domain, the local part printable
 * ASCII without quotes, brackets or separators, the domain a host name. */
static int valid_address(const char *a)
{
	const char *at = strrchr(a, '@');
	size_t local = at != NULL ? (size_t)(at - a) : 0, domain = at != NULL ? strlen(at + 1) : 0;
	if (local == 0 || local > 64 || domain == 0 || domain > 253)
		return 0;
	for (size_t i = 0; i < local; i++) {
		unsigned char c = (unsigned char)a[i];
		if (c <= ' ' || c >= 0x7f || strchr("@<>()[]\\,;:\"", c) != NULL)
			return 0;
	}
	const char *d = at + 1;
	if (d[0] == '.' || d[0] == '-' || d[domain - 1] == '.')
		return 0;
	for (size_t i = 0; i < domain; i++) {
		char c = d[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      (c == '.' && d[i + 1] != '.')))
			return 0;
	}
	return 1;
}

/* The user that lists `address` (lowercase), or NULL. */
static const struct user *find_address(const struct ag_users *users, const char *address)
{
	for (size_t i = 0; i < users->count; i++)
		for (size_t k = 0; k < users->users[i].n_addresses; k++)
			if (strcmp(users->users[i].addresses[k], address) == 0)
				return &users->users[i];
	return NULL;
}

/* `address = a@x.org b@y.org`: each one valid and listed once in the whole
 * file. Returns NULL or the problem. */
static const char *add_addresses(struct load_state *st, struct user *u, char *value, int lineno, char *why,
                                 size_t whylen)
{
	for (char *p = value; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	char *save = NULL;
	for (char *a = strtok_r(value, " \t", &save); a != NULL; a = strtok_r(NULL, " \t", &save)) {
		if (!valid_address(a)) {
			snprintf(why, whylen, "'%.100s' is not an address (local@domain)", a);
			return why;
		}
		const struct user *owner = find_address(st->users, a);
		if (owner != NULL) {
			if (owner == u)
				snprintf(why, whylen, "'%.100s' is listed twice", a);
			else
				snprintf(why, whylen, "'%.100s' already belongs to [%.64s] (line %d)", a, owner->name,
				         owner->address_line);
			return why;
		}
		char **n = realloc(u->addresses, (u->n_addresses + 1) * sizeof(*n));
		if (n == NULL)
			return "out of memory";
		u->addresses = n;
		if ((n[u->n_addresses] = strdup(a)) == NULL)
			return "out of memory";
		u->n_addresses++;
	}
	if (u->n_addresses == 0)
		return "no address given (address = local@domain ...)";
	u->address_line = lineno;
	return NULL;
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

/* Reads a decimal number of at most 9 digits at *p; advances *p. */
static int phc_number(const char **p, uint32_t *out)
{
	const char *s = *p;
	uint32_t v = 0;
	size_t n = 0;
	while (s[n] >= '0' && s[n] <= '9' && n < 10) {
		v = v * 10 + (uint32_t)(s[n] - '0');
		n++;
	}
	if (n == 0 || n > 9)
		return -1;
	*p = s + n;
	*out = v;
	return 0;
}

/* Reads unpadded standard base64 up to '$' or the end; returns the decoded
 * length, or -1. */
static long phc_base64(const char **p)
{
	const char *s = *p;
	size_t n = 0;
	while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
	       s[n] == '+' || s[n] == '/')
		n++;
	if (n % 4 == 1)
		return -1;
	*p = s + n;
	return (long)(n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0));
}

/*
 * Checks an Argon2 PHC string as libargon2 writes it,
 * $argon2id$v=19$m=65536,t=3,p=1$SALT$HASH, and that its costs are bounded:
 * a hash in the file decides what every login (and the dummy hash of
 * unknown names) costs, so m=4194304 would allocate 4 GiB per check.
 * Returns NULL or the problem.
 */
static const char *check_argon2(const char *phc, char *why, size_t whylen)
{
	argon2_type type;
	if (argon2_kind(phc, &type) != 0)
		return "password must be an Argon2 hash ($argon2id$..., see aerogramctl hash-password) or {PLAIN}text";
	const char *p = strchr(phc + 1, '$') + 1;
	uint32_t version = ARGON2_VERSION_10, m, t, par;
	if (strncmp(p, "v=", 2) == 0) {
		p += 2;
		if (phc_number(&p, &version) != 0 || (version != ARGON2_VERSION_10 && version != ARGON2_VERSION_13) ||
		    *p++ != '$')
			return "Argon2 hash: bad version (v=19 or v=16)";
	}
	if (strncmp(p, "m=", 2) != 0 || (p += 2, phc_number(&p, &m)) != 0 || strncmp(p, ",t=", 3) != 0 ||
	    (p += 3, phc_number(&p, &t)) != 0 || strncmp(p, ",p=", 3) != 0 || (p += 3, phc_number(&p, &par)) != 0 ||
	    *p++ != '$')
		return "Argon2 hash: expected $m=MEMORY,t=TIME,p=LANES$ after the version";
	if (m > AG_ARGON2_MAX_M_KIB || t < 1 || t > AG_ARGON2_MAX_T || par < 1 || par > AG_ARGON2_MAX_P ||
	    m < 8 * par) {
		snprintf(why, whylen,
		         "Argon2 hash: costs m=%u,t=%u,p=%u out of bounds (m from 8*p to %u KiB, t from 1 to %u, "
		         "p from 1 to %u)",
		         (unsigned)m, (unsigned)t, (unsigned)par, AG_ARGON2_MAX_M_KIB, AG_ARGON2_MAX_T,
		         AG_ARGON2_MAX_P);
		return why;
	}
	long salt = phc_base64(&p);
	if (salt < ARGON2_MIN_SALT_LENGTH || salt > 1024 || *p++ != '$')
		return "Argon2 hash: the salt is not base64 of 8 bytes or more";
	long hash = phc_base64(&p);
	if (hash < ARGON2_MIN_OUTLEN || hash > 1024 || *p != '\0')
		return "Argon2 hash: the hash is not base64 of 4 bytes or more, or something follows it";
	return NULL;
}

/* The users file's own reader. It is INI as inih reads it, with two
 * differences that matter for passwords: a value runs to the end of its
 * line (inih cuts "{PLAIN}pa ;ss" at " ;", an inline comment), and an
 * indented line is not the continuation of the previous value. */
#define USERS_LINE_MAX 4096

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* One line of the file. Returns NULL, or the problem with st->subject
 * ("[alice] password", "[alice]" or "") and *report_line set. */
static const char *check_line(struct load_state *st, int lineno, char *line, size_t len, char *why,
                              size_t whylen, int *report_line)
{
	*report_line = lineno;
	st->subject[0] = '\0';
	if (memchr(line, '\0', len) != NULL)
		return "a NUL byte in the line";
	if (len > USERS_LINE_MAX)
		return "line too long (at most 4096 characters)";
	if (lineno == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	while (is_space(*line))
		line++;
	char *end = line + strlen(line);
	while (end > line && is_space(end[-1]))
		*--end = '\0';
	if (*line == '\0' || *line == ';' || *line == '#')
		return NULL;
	if (*line == '[') {
		char *close = strchr(line, ']');
		if (close == NULL || close[1] != '\0')
			return "a section is [user name] alone on its line";
		if (st->section_line > 0 && !st->has_password) {
			snprintf(st->subject, sizeof(st->subject), "[%s]", st->section);
			*report_line = st->section_line;
			return "no password line for this user";
		}
		*close = '\0';
		const char *name = line + 1;
		snprintf(st->subject, sizeof(st->subject), "[%.255s]", name);
		if (!ag_users_valid_name(name))
			return "a user name is letters, digits and . _ - + @ (it prefixes the user's keys in the store)";
		if (find(st->users, name, strlen(name)) != NULL)
			return "user declared twice";
		/* the user exists from its section on; its password line must follow */
		struct user *n = realloc(st->users->users, (st->users->count + 1) * sizeof(*n));
		if (n == NULL)
			return "out of memory";
		st->users->users = n;
		struct user *u = &n[st->users->count];
		memset(u, 0, sizeof(*u));
		st->users->count++;
		if ((u->name = strdup(name)) == NULL)
			return "out of memory";
		snprintf(st->section, sizeof(st->section), "%s", name);
		st->section_line = lineno;
		st->has_password = 0;
		st->has_address = 0;
		return NULL;
	}
	char *sep = strpbrk(line, "=:");
	if (sep == NULL)
		return "expected [user name], password = ... or a comment";
	char *value = sep + 1;
	*sep = '\0';
	while (sep > line && is_space(sep[-1]))
		*--sep = '\0';
	while (is_space(*value))
		value++;
	if (st->section_line == 0) {
		snprintf(st->subject, sizeof(st->subject), "%.64s", line);
		return "key outside any [user] section";
	}
	snprintf(st->subject, sizeof(st->subject), "[%s] %.64s", st->section, line);
	struct user *u = &st->users->users[st->users->count - 1];
	if (strcmp(line, "address") == 0) {
		if (st->has_address)
			return "address set twice (list every address on one line)";
		st->has_address = 1;
		return add_addresses(st, u, value, lineno, why, whylen);
	}
	if (strcmp(line, "quota") == 0 || strcmp(line, "quota_messages") == 0) {
		int bytes = line[5] == '\0';
		int *has = bytes ? &u->quota.has_bytes : &u->quota.has_messages;
		if (*has)
			return "set twice";
		uint64_t max = bytes ? AG_QUOTA_BYTES_MAX : AG_QUOTA_MESSAGES_MAX;
		if (ag_config_parse_limit(value, bytes, max, bytes ? &u->quota.bytes : &u->quota.messages) != 0) {
			snprintf(why, whylen, "must be unlimited, or a number of %s from 1 to %llu",
			         bytes ? "bytes with an optional K, M, G or T (x1024)" : "messages",
			         (unsigned long long)max);
			return why;
		}
		*has = 1;
		return NULL;
	}
	if (strcmp(line, "password") != 0)
		return "unknown key (a user has `password`, `quota`, `quota_messages` and `address`)";
	if (st->has_password)
		return "password set twice";
	if (strncmp(value, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) == 0) {
		if (value[strlen(PLAIN_PREFIX)] == '\0')
			return "empty {PLAIN} password";
	} else {
		const char *problem = check_argon2(value, why, whylen);
		if (problem != NULL)
			return problem;
	}
	u->password = strdup(value);
	u->line = lineno;
	if (u->password == NULL)
		return "out of memory";
	st->has_password = 1;
	return NULL;
}

static int parse(struct load_state *st, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, report_line = 0, rc = 0;
	const char *problem = NULL;
	char why[256];
	while ((len = getline(&line, &cap, f)) >= 0) {
		problem = check_line(st, ++lineno, line, (size_t)len, why, sizeof(why), &report_line);
		if (problem != NULL)
			break;
	}
	if (problem == NULL && ferror(f)) {
		snprintf(st->err, st->errlen, "%s: cannot read the users file: %s", st->path, strerror(errno));
		rc = -1;
	} else if (problem == NULL && st->section_line > 0 && !st->has_password) {
		snprintf(st->subject, sizeof(st->subject), "[%s]", st->section);
		report_line = st->section_line;
		problem = "no password line for this user";
	}
	if (problem != NULL) {
		snprintf(st->err, st->errlen, "%s:%d: %s%s%s", st->path, report_line, st->subject,
		         st->subject[0] ? ": " : "", problem);
		rc = -1;
	}
	if (line != NULL) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	return rc;
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
		    sscanf(p, "$m=%u,t=%u,p=%u", &m, &t, &par) == 3 && m >= 8 && m <= AG_ARGON2_MAX_M_KIB &&
		    t >= 1 && t <= AG_ARGON2_MAX_T && par >= 1 && par <= AG_ARGON2_MAX_P) {
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
		for (size_t k = 0; k < users->users[i].n_addresses; k++)
			free(users->users[i].addresses[k]);
		free(users->users[i].addresses);
	}
	free(users->users);
	free(users->dummy_hash);
	free(users);
}

int ag_users_parse(FILE *f, const char *path, struct ag_users **out, char *err, size_t errlen)
{
	*out = NULL;
	struct ag_users *users = calloc(1, sizeof(*users));
	if (users == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	atomic_init(&users->refs, 1);
	struct load_state st = { .users = users, .path = path, .err = err, .errlen = errlen };
	if (parse(&st, f) != 0) {
		users_free(users);
		return -1;
	}
	*out = users;
	return 0;
}

int ag_users_load(const char *path, struct ag_users **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open the users file: %s", path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: the users file is %s", path,
		         S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
		fclose(f);
		return -1;
	}
	struct ag_users *users;
	int rc = ag_users_parse(f, path, &users, err, errlen);
	fclose(f);
	if (rc != 0)
		return -1;
	if (sb.st_mode & (S_IROTH | S_IWOTH))
		ag_log_warn("%s: the users file is %s by other users (mode %04o): chmod o-rwx %s", path,
		            sb.st_mode & S_IWOTH ? "writable" : "readable", (unsigned)(sb.st_mode & 07777), path);
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

int ag_users_quota(const struct ag_users *users, const char *user, struct ag_user_quota *out)
{
	memset(out, 0, sizeof(*out));
	const struct user *u = find(users, user, strlen(user));
	if (u == NULL)
		return -1;
	*out = u->quota;
	return 0;
}

const char *ag_users_name(const struct ag_users *users, size_t i)
{
	return i < users->count ? users->users[i].name : NULL;
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

const char *ag_users_find_address(const struct ag_users *users, const char *address, size_t len)
{
	char lower[256 + 64 + 2];
	if (len >= sizeof(lower) || memchr(address, '\0', len) != NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		char c = address[i];
		lower[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	lower[len] = '\0';
	const struct user *u = find_address(users, lower);
	return u != NULL ? u->name : NULL;
}

const char *ag_users_find_name(const struct ag_users *users, const char *name, size_t len)
{
	if (memchr(name, '\0', len) != NULL)
		return NULL;
	const struct user *u = find(users, name, len);
	if (u != NULL)
		return u->name;
	for (size_t i = 0; i < users->count; i++) {
		if (strlen(users->users[i].name) != len || strncasecmp(users->users[i].name, name, len) != 0)
			continue;
		if (u != NULL)
			return NULL; /* names that differ only in case: only an exact match decides */
		u = &users->users[i];
	}
	return u != NULL ? u->name : NULL;
}
