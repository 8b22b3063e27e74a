/* ctl_users.c - aerogramctl's users-file subcommands: hash-password, user
 * add, user passwd, user del, user list.
 *
 * The users file is edited as lines: a user's section is its header line
 * and the lines up to the next header, and only the lines a change is
 * about are touched (the new section goes at the end; a password line is
 * replaced where it is; a deleted user's header and keys go, comments
 * stay), so other users' sections and every comment stay as they were.
 * A change is written to a temporary file beside the users file, with its
 * mode and owner, checked by the daemon's own reader (users.c), fsynced,
 * and renamed over it: a daemon re-reading the file on SIGHUP sees the old
 * file or the new one, never a part. Editors of the file among aerogramctl
 * processes take turns (flock on the file's directory). */
#include "host/ctl.h"
#include "host/ctl_cmds.h"

#include <argon2.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "host/users.h"

/* Argon2id parameters for stored passwords: 64 MiB, 3 passes, 1 lane,
 * the second recommendation of RFC 9106 for memory-constrained servers. */
#define HASH_T_COST 3
#define HASH_M_COST (64 * 1024)
#define HASH_PARALLELISM 1
#define HASH_SALT_LEN 16
#define HASH_LEN 32
#define PASSWORD_MAX 1024

/* ---- passwords ---- */

/* The Argon2id PHC string of a password (malloc'd), or NULL with err set. */
static char *hash_password(const char *password, size_t len, char *err, size_t errlen)
{
	unsigned char salt[HASH_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		snprintf(err, errlen, "no randomness available");
		return NULL;
	}
	size_t enclen = argon2_encodedlen(HASH_T_COST, HASH_M_COST, HASH_PARALLELISM, HASH_SALT_LEN, HASH_LEN,
	                                  Argon2_id);
	char *encoded = malloc(enclen);
	if (encoded == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	int rc = argon2id_hash_encoded(HASH_T_COST, HASH_M_COST, HASH_PARALLELISM, password, len, salt,
	                               sizeof(salt), HASH_LEN, encoded, enclen);
	if (rc != ARGON2_OK) {
		snprintf(err, errlen, "argon2: %s", argon2_error_message(rc));
		free(encoded);
		return NULL;
	}
	return encoded;
}

/* Reads one line (without its end) from f into buf. Returns its length,
 * or -1 at end of input, -2 when it is too long. */
static long read_line(FILE *f, char *buf, size_t size)
{
	if (fgets(buf, (int)size, f) == NULL)
		return -1;
	size_t len = strcspn(buf, "\r\n");
	if (buf[len] == '\0' && len == size - 1 && !feof(f))
		return -2;
	buf[len] = '\0';
	return (long)len;
}

/* Asks on the terminal with echo off (turned off before the prompt is
 * shown, so nothing typed after it is echoed). */
static long prompt(const char *text, char *buf, size_t size)
{
	struct termios old, quiet;
	int tty = tcgetattr(STDIN_FILENO, &old) == 0;
	if (tty) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	fputs(text, stderr);
	fflush(stderr);
	long len = read_line(stdin, buf, size);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
	return len;
}

/* The new password of `user`: the first line of `file`, or asked twice on
 * a terminal, or the first line of standard input. Returns its length or
 * -1 with err set. */
static long get_password(const char *user, const char *file, char *buf, size_t size, char *err, size_t errlen)
{
	long len;
	if (file != NULL) {
		FILE *f = fopen(file, "r");
		if (f == NULL) {
			snprintf(err, errlen, "%.900s: %s", file, strerror(errno));
			return -1;
		}
		len = read_line(f, buf, size);
		fclose(f);
	} else if (isatty(STDIN_FILENO)) {
		char again[PASSWORD_MAX + 2];
		char text[400];
		snprintf(text, sizeof(text), "New password for %s: ", user);
		len = prompt(text, buf, size);
		if (len >= 0) {
			long len2 = prompt("Again: ", again, sizeof(again));
			int same = len2 == len && strcmp(again, buf) == 0;
			OPENSSL_cleanse(again, sizeof(again));
			if (!same) {
				snprintf(err, errlen, "the two passwords differ");
				return -1;
			}
		}
	} else {
		len = read_line(stdin, buf, size);
	}
	if (len == -2) {
		snprintf(err, errlen, "the password is longer than %d bytes", PASSWORD_MAX);
		return -1;
	}
	if (len <= 0) {
		snprintf(err, errlen, "the password is empty%s", file ? "" : " (none on standard input)");
		return -1;
	}
	return len;
}

int ctl_cmd_hash_password(struct ctl *c, int argc, char **argv)
{
	(void)c;
	(void)argv;
	if (argc > 1) {
		ctl_error("hash-password takes no argument (it reads the password on standard input)");
		return 2;
	}
	char password[PASSWORD_MAX + 2], err[256];
	long len = read_line(stdin, password, sizeof(password));
	if (len <= 0) {
		ctl_error("%s", len == -2 ? "the password is too long" : len == 0 ? "the password is empty"
		                                                                    : "no password on standard input");
		return 1;
	}
	char *hash = hash_password(password, (size_t)len, err, sizeof(err));
	OPENSSL_cleanse(password, sizeof(password));
	if (hash == NULL) {
		ctl_error("%s", err);
		return 1;
	}
	printf("%s\n", hash);
	free(hash);
	return 0;
}

/* ---- the users file as lines ---- */

struct users_file {
	char path[PATH_MAX];  /* the file itself (symbolic links resolved) */
	char dir[PATH_MAX];
	int exists;
	struct stat st;
	int dir_fd;           /* locked while we edit */
	char **lines;         /* each with its '\n' (the last may lack one) */
	size_t n;
};

static void uf_free(struct users_file *uf)
{
	for (size_t i = 0; i < uf->n; i++) {
		OPENSSL_cleanse(uf->lines[i], strlen(uf->lines[i]));
		free(uf->lines[i]);
	}
	free(uf->lines);
	uf->lines = NULL;
	uf->n = 0;
	if (uf->dir_fd >= 0)
		close(uf->dir_fd); /* releases the lock */
	uf->dir_fd = -1;
}

static int uf_push(struct users_file *uf, size_t at, const char *text)
{
	char **g = realloc(uf->lines, (uf->n + 1) * sizeof(char *));
	if (g == NULL)
		return -1;
	uf->lines = g;
	char *copy = strdup(text);
	if (copy == NULL)
		return -1;
	memmove(&uf->lines[at + 1], &uf->lines[at], (uf->n - at) * sizeof(char *));
	uf->lines[at] = copy;
	uf->n++;
	return 0;
}

static void uf_remove(struct users_file *uf, size_t at)
{
	OPENSSL_cleanse(uf->lines[at], strlen(uf->lines[at]));
	free(uf->lines[at]);
	memmove(&uf->lines[at], &uf->lines[at + 1], (uf->n - at - 1) * sizeof(char *));
	uf->n--;
}

/* The whole content (malloc'd). */
static char *uf_text(const struct users_file *uf, size_t *len)
{
	size_t total = 0;
	for (size_t i = 0; i < uf->n; i++)
		total += strlen(uf->lines[i]);
	char *out = malloc(total + 1);
	if (out == NULL)
		return NULL;
	size_t at = 0;
	for (size_t i = 0; i < uf->n; i++) {
		size_t l = strlen(uf->lines[i]);
		memcpy(out + at, uf->lines[i], l);
		at += l;
	}
	out[at] = '\0';
	*len = at;
	return out;
}

/* The strict reader's verdict on a content: 0, or -1 with its message. */
static int check_text(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	if (len == 0)
		return 0;
	FILE *f = fmemopen((void *)text, len, "r");
	if (f == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	struct ag_users *users;
	int rc = ag_users_parse(f, path, &users, err, errlen);
	fclose(f);
	if (rc == 0)
		ag_users_unref(users);
	return rc;
}

/* The user name of a section header line ("[name]" after blanks, the
 * reader's rule), copied into name; 0 when the line is no header. */
static int header_name(const char *line, int first, char *name, size_t size)
{
	if (first && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
		line += 3;
	line += strspn(line, " \t\r\n\v\f");
	if (*line != '[')
		return 0;
	const char *close = strchr(line, ']');
	if (close == NULL)
		return 0;
	size_t len = (size_t)(close - line - 1);
	if (len >= size)
		len = size - 1;
	memcpy(name, line + 1, len);
	name[len] = '\0';
	return 1;
}

/* The header line of user `name`, or -1; *end is the line after its section. */
static long uf_find(const struct users_file *uf, const char *name, size_t *end, int nocase)
{
	char h[300];
	long found = -1;
	for (size_t i = 0; i < uf->n; i++) {
		if (!header_name(uf->lines[i], i == 0, h, sizeof(h)))
			continue;
		if (found >= 0) {
			*end = i;
			return found;
		}
		if (nocase ? strcasecmp(h, name) == 0 : strcmp(h, name) == 0)
			found = (long)i;
	}
	*end = uf->n;
	return found;
}

/* The key of a "key = value" line (copied into key), 0 when it is none. */
static int line_key(const char *line, char *key, size_t size)
{
	line += strspn(line, " \t\r\n\v\f");
	if (*line == '\0' || *line == '#' || *line == ';' || *line == '[')
		return 0;
	size_t len = strcspn(line, "=:");
	if (line[len] == '\0')
		return 0;
	while (len > 0 && strchr(" \t\r\n\v\f", line[len - 1]) != NULL)
		len--;
	if (len >= size)
		len = size - 1;
	memcpy(key, line, len);
	key[len] = '\0';
	return 1;
}

/* Reads the users file of the configuration; with `lock`, first takes
 * the editors' lock. A missing file is an empty one (exists = 0). */
static int uf_load(struct users_file *uf, const char *configured, int lock, char *err, size_t errlen)
{
	memset(uf, 0, sizeof(*uf));
	uf->dir_fd = -1;
	char tmp[PATH_MAX];
	if (realpath(configured, uf->path) == NULL) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%.900s: %s", configured, strerror(errno));
			return -1;
		}
		/* Not there yet: its directory must be. */
		snprintf(tmp, sizeof(tmp), "%s", configured);
		char *d = dirname(tmp);
		char rd[PATH_MAX];
		if (realpath(d, rd) == NULL) {
			snprintf(err, errlen, "%.900s: %s", d, strerror(errno));
			return -1;
		}
		snprintf(tmp, sizeof(tmp), "%s", configured);
		int w = snprintf(uf->path, sizeof(uf->path), "%s/%s", rd, basename(tmp));
		if (w < 0 || (size_t)w >= sizeof(uf->path)) {
			snprintf(err, errlen, "%.900s: path too long", configured);
			return -1;
		}
	}
	snprintf(tmp, sizeof(tmp), "%s", uf->path);
	snprintf(uf->dir, sizeof(uf->dir), "%s", dirname(tmp));
	if (lock) {
		uf->dir_fd = open(uf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (uf->dir_fd < 0 || flock(uf->dir_fd, LOCK_EX) != 0) {
			snprintf(err, errlen, "%.900s: cannot lock the directory of the users file: %s", uf->dir,
			         strerror(errno));
			uf_free(uf);
			return -1;
		}
	}
	FILE *f = fopen(uf->path, "r");
	if (f == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%.900s: cannot open the users file: %s", uf->path, strerror(errno));
		uf_free(uf);
		return -1;
	}
	if (fstat(fileno(f), &uf->st) != 0 || !S_ISREG(uf->st.st_mode)) {
		snprintf(err, errlen, "%.900s: the users file is not a regular file", uf->path);
		fclose(f);
		uf_free(uf);
		return -1;
	}
	uf->exists = 1;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
		if (memchr(line, '\0', (size_t)len) != NULL) {
			snprintf(err, errlen, "%.900s:%zu: a NUL byte in the line", uf->path, uf->n + 1);
			rc = -1;
		} else if (uf_push(uf, uf->n, line) != 0) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%.900s: cannot read the users file: %s", uf->path, strerror(errno));
		rc = -1;
	}
	if (line != NULL) {
		OPENSSL_cleanse(line, cap);
		free(line);
	}
	fclose(f);
	if (rc == 0) {
		size_t tl;
		char *text = uf_text(uf, &tl);
		if (text == NULL) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
		} else {
			char why[900];
			if (check_text(uf->path, text, tl, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s (fix the users file first)", why);
				rc = -1;
			}
			OPENSSL_cleanse(text, tl);
			free(text);
		}
	}
	if (rc != 0)
		uf_free(uf);
	return rc;
}

/* Writes the lines to a temporary file beside the users file, with its
 * mode and owner, checks it with the daemon's reader, fsyncs it and
 * renames it over the users file, then fsyncs the directory. */
static int uf_save(struct users_file *uf, char *err, size_t errlen)
{
	size_t len;
	char *text = uf_text(uf, &len);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	char why[900];
	if (check_text(uf->path, text, len, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "the new users file would not load, left unchanged: %s", why);
		OPENSSL_cleanse(text, len);
		free(text);
		return -1;
	}
	char tmp[PATH_MAX + 16], base[PATH_MAX];
	snprintf(base, sizeof(base), "%s", uf->path);
	int w = snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", uf->dir, basename(base));
	int fd = w > 0 && (size_t)w < sizeof(tmp) ? mkostemp(tmp, O_CLOEXEC) : -1;
	if (fd < 0) {
		snprintf(err, errlen, "%.900s: cannot create a temporary file: %s", uf->dir, strerror(errno));
		OPENSSL_cleanse(text, len);
		free(text);
		return -1;
	}
	const char *step = NULL;
	mode_t mode = uf->exists ? (uf->st.st_mode & 07777) : 0600;
	if (fchmod(fd, mode) != 0)
		step = "cannot set its mode";
	else if (uf->exists && (uf->st.st_uid != geteuid() || uf->st.st_gid != getegid()) &&
	         fchown(fd, uf->st.st_uid, uf->st.st_gid) != 0)
		step = "cannot give it the users file's owner and group (run as that user or root)";
	else if (ctl_write_all(fd, text, len) != 0)
		step = "cannot write it";
	else if (fsync(fd) != 0)
		step = "cannot fsync it";
	int saved = errno;
	OPENSSL_cleanse(text, len);
	free(text);
	if (close(fd) != 0 && step == NULL) {
		step = "cannot write it";
		saved = errno;
	}
	if (step == NULL && rename(tmp, uf->path) != 0) {
		step = "cannot rename it over the users file";
		saved = errno;
	}
	if (step != NULL) {
		snprintf(err, errlen, "%.900s: %s: %s; the users file is unchanged", tmp, step, strerror(saved));
		unlink(tmp);
		return -1;
	}
	int dfd = open(uf->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int ctl_user_known(const struct ctl *c, const char *user, char *err, size_t errlen)
{
	struct users_file uf;
	if (uf_load(&uf, c->config.users_file, 0, err, errlen) != 0)
		return -1;
	size_t end;
	long at = uf_find(&uf, user, &end, 0);
	uf_free(&uf);
	if (at < 0) {
		snprintf(err, errlen, "no user %s in %s (aerogramctl user list)", user, c->config.users_file);
		return -1;
	}
	return 0;
}

int ctl_users_list(const struct ctl *c, char ***names, size_t *n, char *err, size_t errlen)
{
	*names = NULL;
	*n = 0;
	struct users_file uf;
	if (uf_load(&uf, c->config.users_file, 0, err, errlen) != 0)
		return -1;
	char h[300];
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < uf.n; i++) {
		if (!header_name(uf.lines[i], i == 0, h, sizeof(h)))
			continue;
		char **g = realloc(*names, (*n + 1) * sizeof(char *));
		if (g == NULL || (g[*n] = strdup(h)) == NULL) {
			if (g != NULL)
				*names = g;
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		*names = g;
		(*n)++;
	}
	uf_free(&uf);
	if (rc != 0) {
		ctl_users_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	return rc;
}

void ctl_users_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static const char reload_note[] = "running daemons take the change on SIGHUP (systemctl reload aerogramd, "
                                  "or kill -HUP the aerogramd process)";

/* Options of user add / user passwd. */
static int password_options(int argc, char **argv, const char **file)
{
	static const struct option opts[] = { { "password-file", required_argument, NULL, 'p' }, { 0, 0, 0, 0 } };
	*file = NULL;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'p')
			return -1;
		*file = optarg;
	}
	return optind == argc - 1 ? 0 : -1;
}

/* Loads and locks the users file to add user `name` (`adding`: it must
 * not be there, in any case) or to change their section (it must be):
 * 0 with *at the section's header line (-1 when adding) and *end the line
 * after it, or -1 with the error printed and nothing loaded. */
static int uf_load_for(struct ctl *c, struct users_file *uf, const char *name, int adding, long *at, size_t *end)
{
	char err[1200];
	if (uf_load(uf, c->config.users_file, 1, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return -1;
	}
	*at = uf_find(uf, name, end, adding);
	if (adding && *at >= 0) {
		char h[300];
		header_name(uf->lines[*at], *at == 0, h, sizeof(h));
		ctl_error("user %s exists already in %s%s%s", name, uf->path, strcmp(h, name) ? " as " : "",
		          strcmp(h, name) ? h : "");
		uf_free(uf);
		return -1;
	}
	if (!adding && *at < 0) {
		ctl_error("no user %s in %s", name, uf->path);
		uf_free(uf);
		return -1;
	}
	return 0;
}

static int set_password(struct ctl *c, int argc, char **argv, int adding)
{
	const char *file;
	if (password_options(argc, argv, &file) != 0) {
		ctl_error("usage: aerogramctl user %s NAME [--password-file FILE]", adding ? "add" : "passwd");
		return 2;
	}
	const char *name = argv[optind];
	if (!ag_users_valid_name(name)) {
		ctl_error("%s: a user name is 1 to 255 letters, digits and . _ - + @ (it prefixes the user's keys in "
		          "the store)",
		          name);
		return 1;
	}
	char err[1200];
	struct users_file uf;
	size_t end;
	long at;
	if (uf_load_for(c, &uf, name, adding, &at, &end) != 0)
		return 1;
	char password[PASSWORD_MAX + 2];
	long plen = get_password(name, file, password, sizeof(password), err, sizeof(err));
	char *hash = plen > 0 ? hash_password(password, (size_t)plen, err, sizeof(err)) : NULL;
	OPENSSL_cleanse(password, sizeof(password));
	if (hash == NULL) {
		ctl_error("%s", err);
		uf_free(&uf);
		return 1;
	}
	int rc = 0;
	char line[600];
	if (adding) {
		/* At the end, after a blank line. */
		size_t n = uf.n;
		if (n > 0 && uf.lines[n - 1][strlen(uf.lines[n - 1]) - 1] != '\n')
			rc |= uf_push(&uf, uf.n, "\n");
		if (n > 0 && strspn(uf.lines[uf.n - 1], " \t\r\n") != strlen(uf.lines[uf.n - 1]))
			rc |= uf_push(&uf, uf.n, "\n");
		snprintf(line, sizeof(line), "[%s]\n", name);
		rc |= uf_push(&uf, uf.n, line);
		snprintf(line, sizeof(line), "password = %s\n", hash);
		rc |= uf_push(&uf, uf.n, line);
	} else {
		/* The password line, where it is, with its indentation. */
		for (size_t i = (size_t)at + 1; i < end; i++) {
			char key[64];
			if (!line_key(uf.lines[i], key, sizeof(key)) || strcmp(key, "password") != 0)
				continue;
			size_t indent = strspn(uf.lines[i], " \t");
			snprintf(line, sizeof(line), "%.*spassword = %s\n", (int)indent, uf.lines[i], hash);
			OPENSSL_cleanse(uf.lines[i], strlen(uf.lines[i]));
			free(uf.lines[i]);
			uf.lines[i] = strdup(line);
			rc |= uf.lines[i] == NULL ? -1 : 0;
			if (uf.lines[i] == NULL)
				uf.lines[i] = strdup("");
			break;
		}
	}
	OPENSSL_cleanse(line, sizeof(line));
	OPENSSL_cleanse(hash, strlen(hash));
	free(hash);
	if (rc != 0) {
		ctl_error("out of memory");
		uf_free(&uf);
		return 1;
	}
	if (uf_save(&uf, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		uf_free(&uf);
		return 1;
	}
	printf("%s %s in %s; %s\n", adding ? "added user" : "changed the password of", name, uf.path, reload_note);
	uf_free(&uf);
	return 0;
}

int ctl_cmd_user_add(struct ctl *c, int argc, char **argv)
{
	return set_password(c, argc, argv, 1);
}

int ctl_cmd_user_passwd(struct ctl *c, int argc, char **argv)
{
	return set_password(c, argc, argv, 0);
}

/* Removes every mailbox of the user through the engine: children before
 * parents, INBOX (which cannot be deleted) emptied instead. */
static int purge_mail(struct ctl *c, const char *user, size_t *n_boxes, uint64_t *n_msgs)
{
	struct mail_mailbox_info *infos;
	size_t n;
	char why[600];
	int rc = mail_list(c->engine, user, &infos, &n);
	if (rc != 0) {
		ctl_error("%s: cannot list the mailboxes: %s", user, ctl_strerror(c, rc, why, sizeof(why)));
		return -1;
	}
	*n_boxes = 0;
	*n_msgs = 0;
	/* The list is sorted by name, so "a.b" comes after "a": backwards,
	 * every child goes before its parent. */
	for (size_t k = n; rc == 0 && k-- > 0;) {
		struct mail_mailbox_info *mi = &infos[k];
		if (mi->subscribed)
			mail_subscribe(c->engine, user, mi->name, 0);
		if (!mi->exists)
			continue;
		struct mail_mailbox *mb;
		struct mail_status st = { 0 };
		if (mail_mailbox_open(c->engine, user, mi->name, &mb) == 0) {
			mail_mailbox_status(mb, &st);
			if (strcmp(mi->name, "INBOX") == 0 && st.exists > 0) {
				struct mail_view *v;
				rc = mail_view_open(mb, 0, &v);
				if (rc == 0) {
					uint32_t count = mail_view_exists(v);
					uint32_t *uids = calloc(count, sizeof(*uids));
					rc = uids != NULL ? 0 : AEROGRAM_EINTERNAL;
					for (uint32_t i = 0; rc == 0 && i < count; i++)
						uids[i] = mail_view_uid(v, i + 1);
					if (rc == 0)
						rc = mail_expunge(v, uids, count);
					free(uids);
					mail_view_close(v);
				}
			}
			mail_mailbox_close(mb);
		}
		if (rc == 0 && strcmp(mi->name, "INBOX") != 0) {
			rc = mail_delete(c->engine, user, mi->name);
			if (rc == AEROGRAM_ENOTFOUND)
				rc = 0; /* gone meanwhile */
		}
		if (rc != 0) {
			char *shown = ctl_display_name(mi->name);
			ctl_error("%s: cannot remove mailbox %s: %s", user, shown ? shown : mi->name,
			          ctl_strerror(c, rc, why, sizeof(why)));
			free(shown);
			break;
		}
		(*n_boxes)++;
		*n_msgs += st.exists;
	}
	mail_list_free(infos, n);
	return rc == 0 ? 0 : -1;
}

int ctl_cmd_user_del(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { "purge", no_argument, NULL, 'p' }, { 0, 0, 0, 0 } };
	int purge = 0, o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'p') {
			ctl_error("usage: aerogramctl user del NAME [--purge]");
			return 2;
		}
		purge = 1;
	}
	if (optind != argc - 1) {
		ctl_error("usage: aerogramctl user del NAME [--purge]");
		return 2;
	}
	const char *name = argv[optind];
	char err[1200];
	struct users_file uf;
	size_t end;
	long at;
	if (uf_load_for(c, &uf, name, 0, &at, &end) != 0)
		return 1;
	if (purge) {
		/* Mail first: if the store fails, the user is still there and
		 * the same command can be run again. */
		char why[1200];
		/* purged mail goes now, whatever expunge_retention keeps for undelete */
		c->keep_nothing = 1;
		if (ctl_open_store(c, why, sizeof(why)) != 0) {
			ctl_error("%s", why);
			uf_free(&uf);
			return 1;
		}
		size_t boxes;
		uint64_t msgs;
		if (purge_mail(c, name, &boxes, &msgs) != 0) {
			ctl_error("%s: the user is kept; run the command again once the store answers", name);
			uf_free(&uf);
			return 1;
		}
		printf("removed %zu mailboxes (%llu messages) of %s\n", boxes, (unsigned long long)msgs, name);
	}
	/* The header and the key lines of the section; comments stay. */
	for (size_t i = end; i-- > (size_t)at;) {
		char key[64];
		if (i == (size_t)at || line_key(uf.lines[i], key, sizeof(key)))
			uf_remove(&uf, i);
	}
	/* No run of blank lines where the section was, none at the end. */
	while ((size_t)at < uf.n && strspn(uf.lines[at], " \t\r\n") == strlen(uf.lines[at]) &&
	       (at == 0 || strspn(uf.lines[at - 1], " \t\r\n") == strlen(uf.lines[at - 1])))
		uf_remove(&uf, (size_t)at);
	while (uf.n > 0 && strspn(uf.lines[uf.n - 1], " \t\r\n") == strlen(uf.lines[uf.n - 1]))
		uf_remove(&uf, uf.n - 1);
	if (uf_save(&uf, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		uf_free(&uf);
		return 1;
	}
	printf("deleted user %s from %s%s; %s\n", name, uf.path,
	       purge ? "" : " (the mail stays in the store: adding the name again finds it, user del --purge removes it)",
	       reload_note);
	uf_free(&uf);
	return 0;
}

int ctl_cmd_user_list(struct ctl *c, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		ctl_error("usage: aerogramctl user list");
		return 2;
	}
	char err[1200];
	char **names;
	size_t n;
	if (ctl_users_list(c, &names, &n, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s\n", names[i]);
	ctl_users_free(names, n);
	return 0;
}
