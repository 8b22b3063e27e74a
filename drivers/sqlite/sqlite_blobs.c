/* sqlite_blobs.c - blobs of the S3 model: small ones inside the database,
 * large ones in files beside it.
 *
 * A blob up to blob_inline_max bytes is a row of ag_blobs with its bytes. A
 * larger one is a file <path>.blobs/xx/<32 hex> (a random name, never
 * reused), written to a temporary name in the same directory, fsynced,
 * renamed and the directory fsynced (synchronous=full) before the row that
 * names it commits. So a committed row never names a missing or partial
 * file. The old file of a replaced or deleted blob is unlinked after the
 * commit; a crash in between leaves an orphan file, never a dangling row.
 * Orphans are removed by a sweep at each open, once they are older than
 * blob_orphan_age_s (a put in progress elsewhere is always younger).
 * Files are immutable, so a copy is a hard link.
 */
#include "drivers/sqlite/sqlite_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SQ_BLOB_KEY_MAX 479
#define SQ_BLOB_LIST_PAGE 1000
#define SQ_FILE_NAME_LEN 35 /* "xx/" + 32 hex */
/* A continuation token is this tag followed by the next key to list. */
#define SQ_LIST_TAG "next:"

static int sq_check_blob_key(const char *key)
{
	if (key == NULL || key[0] == '\0')
		return agk_fail(AEROGRAM_EINVAL, "sqlite: blob key is missing or empty");
	if (strlen(key) > SQ_BLOB_KEY_MAX)
		return agk_fail(AEROGRAM_ETOOBIG, "sqlite: blob key of %zu bytes is over %d", strlen(key),
		               SQ_BLOB_KEY_MAX);
	if (!sq_utf8_valid(key))
		return agk_fail(AEROGRAM_EINVAL, "sqlite: blob key is not valid UTF-8");
	return 0;
}

/* Encodes metadata as name NUL value NUL ..., in a malloc'd buffer. */
static int sq_meta_encode(const struct aerogram_meta *meta, size_t n_meta, char **out, size_t *len)
{
	size_t total = 0;
	for (size_t i = 0; i < n_meta; i++) {
		const char *name = meta[i].name, *value = meta[i].value;
		if (name == NULL || name[0] == '\0')
			return agk_fail(AEROGRAM_EINVAL, "sqlite: metadata name is empty");
		for (const char *p = name; *p; p++)
			if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
				return agk_fail(AEROGRAM_EINVAL,
				               "sqlite: metadata name '%.60s' is not lower-case [a-z0-9-]", name);
		if (value == NULL)
			return agk_fail(AEROGRAM_EINVAL, "sqlite: metadata '%s' has no value", name);
		if (!sq_utf8_valid(value))
			return agk_fail(AEROGRAM_EINVAL, "sqlite: metadata '%s' is not valid UTF-8", name);
		for (const unsigned char *p = (const unsigned char *)value; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				return agk_fail(AEROGRAM_EINVAL,
				               "sqlite: metadata '%s' holds a control character", name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(meta[j].name, name) == 0)
				return agk_fail(AEROGRAM_EINVAL, "sqlite: metadata '%s' given twice", name);
		total += strlen(name) + strlen(value) + 2;
	}
	char *buf = malloc(total ? total : 1);
	if (buf == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	size_t off = 0;
	for (size_t i = 0; i < n_meta; i++) {
		size_t a = strlen(meta[i].name) + 1, b = strlen(meta[i].value) + 1;
		memcpy(buf + off, meta[i].name, a);
		memcpy(buf + off + a, meta[i].value, b);
		off += a + b;
	}
	*out = buf;
	*len = total;
	return 0;
}

/* Decodes metadata into the arena. */
static int sq_meta_decode(struct agk_arena *a, const char *buf, size_t len,
                          const struct aerogram_meta **out, size_t *n_out)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (buf[i] == '\0')
			n++;
	n /= 2;
	*out = NULL;
	*n_out = 0;
	if (n == 0)
		return 0;
	struct aerogram_meta *m = agk_arena_alloc(a, n * sizeof(*m));
	char *copy = agk_arena_memdup(a, buf, len);
	if (m == NULL || copy == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		m[i].name = copy + off;
		off += strlen(copy + off) + 1;
		m[i].value = copy + off;
		off += strlen(copy + off) + 1;
	}
	*out = m;
	*n_out = n;
	return 0;
}

static int sq_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = fsync(fd);
	close(fd);
	return r;
}

static int sq_errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
		return AEROGRAM_EUNAVAILABLE;
	case EACCES:
	case EPERM:
	case EROFS:
		return AEROGRAM_EPERM;
	case EFBIG:
		return AEROGRAM_ETOOBIG;
	default:
		return AEROGRAM_EUNAVAILABLE;
	}
}

/* Picks a new file name "xx/<32 hex>" and makes sure its directory exists. */
static int sq_new_file_name(struct aerogram_store *st, char name[SQ_FILE_NAME_LEN + 1])
{
	unsigned char rnd[16];
	size_t got = 0;
	while (got < sizeof(rnd)) {
		ssize_t r = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return agk_fail(AEROGRAM_EINTERNAL, "sqlite: getrandom: %s", strerror(errno));
		}
		got += (size_t)r;
	}
	static const char hex[] = "0123456789abcdef";
	char h[33];
	for (size_t i = 0; i < 16; i++) {
		h[2 * i] = hex[rnd[i] >> 4];
		h[2 * i + 1] = hex[rnd[i] & 15];
	}
	h[32] = '\0';
	snprintf(name, SQ_FILE_NAME_LEN + 1, "%c%c/%s", h[0], h[1], h);
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%c%c", st->blob_dir, h[0], h[1]);
	if (mkdir(dir, 0750) == 0) {
		if (st->sync_full && sq_fsync_dir(st->blob_dir) != 0)
			return agk_fail(sq_errno_code(errno), "sqlite: fsync %s: %s", st->blob_dir,
			               strerror(errno));
	} else if (errno != EEXIST) {
		return agk_fail(sq_errno_code(errno), "sqlite: mkdir %s: %s", dir, strerror(errno));
	}
	return 0;
}

static void sq_file_path(struct aerogram_store *st, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", st->blob_dir, name);
}

/* Writes data to a new durable file; its name goes into `name`. */
static int sq_file_write(struct aerogram_store *st, const uint8_t *data, size_t len,
                         char name[SQ_FILE_NAME_LEN + 1])
{
	int code = sq_new_file_name(st, name);
	if (code)
		return code;
	char final[4096], tmp[4200], dir[4096];
	sq_file_path(st, name, final, sizeof(final));
	snprintf(tmp, sizeof(tmp), "%s/%.2s/.tmp-%s", st->blob_dir, name, name + 3);
	snprintf(dir, sizeof(dir), "%s/%.2s", st->blob_dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return agk_fail(sq_errno_code(errno), "sqlite: create %s: %s", tmp, strerror(errno));
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)w;
	}
	if (st->sync_full && fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, final) != 0)
		goto fail;
	if (st->sync_full && sq_fsync_dir(dir) != 0) {
		int e = errno;
		unlink(final);
		return agk_fail(sq_errno_code(e), "sqlite: fsync %s: %s", dir, strerror(e));
	}
	return 0;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return agk_fail(sq_errno_code(e), "sqlite: writing %s: %s", tmp, strerror(e));
}

static void sq_file_unlink(struct aerogram_store *st, const char *name)
{
	if (name == NULL || name[0] == '\0')
		return;
	char path[4096];
	sq_file_path(st, name, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		sq_log(st, AEROGRAM_LOG_WARNING, "cannot remove %s: %s", path, strerror(errno));
}

/* Reads the file name column of `key` into old (empty when none). */
static int sq_old_file(struct sq_conn *conn, const char *key, char old[SQ_FILE_NAME_LEN + 1])
{
	old[0] = '\0';
	sqlite3_stmt *s = sq_stmt(conn, SQ_BLOB_FILE);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *f = (const char *)sqlite3_column_text(s, 0);
		if (f)
			snprintf(old, SQ_FILE_NAME_LEN + 1, "%s", f);
	} else if (rc != SQLITE_DONE) {
		int code = sq_db_fail(conn, rc, "reading a blob");
		sqlite3_reset(s);
		return code;
	}
	sqlite3_reset(s);
	return 0;
}

static int sq_blob_row_put(struct sq_conn *conn, const char *key, uint64_t size,
                           const void *data, size_t len, const char *file, const char *meta,
                           size_t meta_len)
{
	sqlite3_stmt *s = sq_stmt(conn, SQ_BLOB_PUT);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	static const char empty[1];
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)size);
	int rc;
	if (file && file[0])
		rc = sqlite3_bind_text(s, 4, file, -1, SQLITE_STATIC);
	else
		rc = sqlite3_bind_blob64(s, 3, data ? data : empty, len, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_blob64(s, 5, meta ? meta : empty, meta_len, SQLITE_STATIC);
	if (rc != SQLITE_OK) /* over SQLite's length limit */
		return sq_db_fail(conn, rc, "storing a blob");
	sqlite3_bind_int64(s, 6, (int64_t)sq_wall_ms());
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return sq_db_fail(conn, rc, "writing a blob");
	return 0;
}

/* ---- put ---- */

struct sq_put_ctx {
	const char *key;
	const uint8_t *data;
	size_t len;
	const char *file;
	const char *meta;
	size_t meta_len;
	char old[SQ_FILE_NAME_LEN + 1];
};

static int sq_put_txn(struct sq_conn *conn, void *arg)
{
	struct sq_put_ctx *c = arg;
	int code = sq_old_file(conn, c->key, c->old);
	if (code)
		return code;
	return sq_blob_row_put(conn, c->key, c->len, c->data, c->len, c->file, c->meta, c->meta_len);
}

int sq_blob_put(struct aerogram_store *st, const char *key, const uint8_t *data, size_t len,
                const struct aerogram_meta *meta, size_t n_meta)
{
	int code = sq_check_blob_key(key);
	if (code)
		return code;
	if (len > 0 && data == NULL)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: blob of %zu bytes without data", len);
	if (n_meta && meta == NULL)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: metadata count without metadata");
	char *mbuf = NULL;
	size_t mlen = 0;
	if ((code = sq_meta_encode(meta, n_meta, &mbuf, &mlen)) != 0)
		return code;
	char file[SQ_FILE_NAME_LEN + 1] = "";
	if (len > st->blob_inline_max && (code = sq_file_write(st, data, len, file)) != 0) {
		free(mbuf);
		return code;
	}
	struct sq_put_ctx c = { key, data, len, file, mbuf, mlen, "" };
	code = sq_txn(st, SQ_WRITE_DEFERRED, sq_put_txn, &c);
	free(mbuf);
	if (code) {
		sq_file_unlink(st, file);
		return code;
	}
	if (strcmp(c.old, file) != 0)
		sq_file_unlink(st, c.old);
	return 0;
}

/* ---- get ---- */

struct sq_get_ctx {
	struct aerogram_store *st;
	const struct aerogram_blob_request *reqs;
	size_t n;
	struct agk_blob_result *res;
};

/* Reads [off, off+n) of a blob file into buf. */
static int sq_file_read(struct aerogram_store *st, const char *name, uint64_t off, uint8_t *buf,
                        size_t n)
{
	char path[4096];
	sq_file_path(st, name, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return AEROGRAM_ENOTFOUND; /* deleted since the row was read */
		return agk_fail(sq_errno_code(errno), "sqlite: open %s: %s", path, strerror(errno));
	}
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = errno;
			close(fd);
			if (r == 0)
				return agk_fail(AEROGRAM_EINTERNAL, "sqlite: %s is shorter than recorded", path);
			return agk_fail(sq_errno_code(e), "sqlite: read %s: %s", path, strerror(e));
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

/* Steps the SQ_BLOB_GET statement on `key`: 1 with *out on the blob's row
 * (reset it when done), 0 when there is no such blob, or a negative code. */
static int sq_blob_find(struct sq_conn *conn, const char *key, sqlite3_stmt **out)
{
	sqlite3_stmt *s = *out = sq_stmt(conn, SQ_BLOB_GET);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		return 1;
	int code = rc == SQLITE_DONE ? 0 : sq_db_fail(conn, rc, "reading a blob");
	sqlite3_reset(s);
	return code;
}

static int sq_get_one(struct sq_conn *conn, struct sq_get_ctx *c,
                      const struct aerogram_blob_request *rq, struct aerogram_blob *b)
{
	struct agk_arena *a = &c->res->arena;
	if (sq_check_blob_key(rq->key) != 0) {
		b->status = AEROGRAM_EINVAL;
		return 0;
	}
	sqlite3_stmt *s;
	int found = sq_blob_find(conn, rq->key, &s);
	if (found <= 0) {
		b->status = AEROGRAM_ENOTFOUND;
		return found;
	}
	uint64_t size = (uint64_t)sqlite3_column_int64(s, 0);
	uint64_t off = rq->offset < size ? rq->offset : size;
	uint64_t n = size - off;
	if (rq->length && rq->length < n)
		n = rq->length;
	b->total_size = size;
	int code = sq_meta_decode(a, (const char *)sqlite3_column_blob(s, 3),
	                          (size_t)sqlite3_column_bytes(s, 3), &b->meta, &b->n_meta);
	uint8_t *buf = code ? NULL : agk_arena_alloc(a, (size_t)n);
	if (code == 0 && buf == NULL)
		code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	if (code == 0) {
		const char *file = (const char *)sqlite3_column_text(s, 2);
		if (file && file[0]) {
			int st_code = sq_file_read(c->st, file, off, buf, (size_t)n);
			if (st_code != 0) {
				b->status = st_code;
				b->total_size = 0;
				b->n_meta = 0;
				b->meta = NULL;
				sqlite3_reset(s);
				return 0;
			}
		} else {
			const uint8_t *d = sqlite3_column_blob(s, 1);
			if ((uint64_t)sqlite3_column_bytes(s, 1) < off + n) {
				code = agk_fail(AEROGRAM_EINTERNAL, "sqlite: blob '%s' is shorter than recorded",
				               rq->key);
			} else if (n) {
				memcpy(buf, d + off, (size_t)n);
			}
		}
	}
	sqlite3_reset(s);
	if (code)
		return code;
	b->status = AEROGRAM_OK;
	b->data = buf;
	b->len = (size_t)n;
	return 0;
}

static int sq_get_txn(struct sq_conn *conn, void *arg)
{
	struct sq_get_ctx *c = arg;
	struct agk_blob_result *res = c->res;
	memset(&res->pub, 0, sizeof(res->pub));
	struct aerogram_blob *blobs = agk_arena_restart(&res->arena, c->n, sizeof(*blobs));
	if (blobs == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	for (size_t i = 0; i < c->n; i++) {
		int code = sq_get_one(conn, c, &c->reqs[i], &blobs[i]);
		if (code)
			return code;
	}
	res->pub.blobs = blobs;
	res->pub.n_blobs = c->n;
	return 0;
}

int sq_blob_get(struct aerogram_store *st, const struct aerogram_blob_request *requests,
                size_t n_requests, struct aerogram_blob_result **out)
{
	*out = NULL;
	if (n_requests && requests == NULL)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: no blob requests");
	for (size_t i = 0; i < n_requests; i++)
		if (requests[i].key == NULL)
			return agk_fail(AEROGRAM_EINVAL, "sqlite: blob request %zu has no key", i);
	struct agk_blob_result *res = agk_blob_result_new();
	if (res == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	struct sq_get_ctx c = { st, requests, n_requests, res };
	int code = sq_txn(st, 0, sq_get_txn, &c);
	return agk_blob_result_done(code, res, out);
}

/* ---- copy ---- */

struct sq_copy_ctx {
	struct aerogram_store *st;
	const char *src, *dst;
	char linked[SQ_FILE_NAME_LEN + 1]; /* the new hard link, if any */
	char old[SQ_FILE_NAME_LEN + 1];    /* dst's file before the copy */
	int same;
};

static int sq_copy_txn(struct sq_conn *conn, void *arg)
{
	struct sq_copy_ctx *c = arg;
	struct aerogram_store *st = c->st;
	/* A retried transaction starts again: drop the link of the last try. */
	sq_file_unlink(st, c->linked);
	c->linked[0] = '\0';
	c->old[0] = '\0';
	sqlite3_stmt *s;
	int found = sq_blob_find(conn, c->src, &s);
	if (found <= 0)
		return found < 0 ? found
		                 : agk_fail(AEROGRAM_ENOTFOUND, "sqlite: blob '%s' not found", c->src);
	if (strcmp(c->src, c->dst) == 0) {
		sqlite3_reset(s);
		c->same = 1;
		return 0;
	}
	/* Copy the columns out: the statement is reset before the write. */
	uint64_t size = (uint64_t)sqlite3_column_int64(s, 0);
	size_t dlen = (size_t)sqlite3_column_bytes(s, 1);
	size_t mlen = (size_t)sqlite3_column_bytes(s, 3);
	const char *file = (const char *)sqlite3_column_text(s, 2);
	char src_file[SQ_FILE_NAME_LEN + 1] = "";
	if (file)
		snprintf(src_file, sizeof(src_file), "%s", file);
	uint8_t *data = malloc(dlen ? dlen : 1);
	char *meta = malloc(mlen ? mlen : 1);
	if (data == NULL || meta == NULL) {
		sqlite3_reset(s);
		free(data);
		free(meta);
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	}
	if (dlen)
		memcpy(data, sqlite3_column_blob(s, 1), dlen);
	if (mlen)
		memcpy(meta, sqlite3_column_blob(s, 3), mlen);
	sqlite3_reset(s);

	int code = 0;
	if (src_file[0]) {
		code = sq_new_file_name(st, c->linked);
		if (code == 0) {
			char from[4096], to[4096], dir[4096];
			sq_file_path(st, src_file, from, sizeof(from));
			sq_file_path(st, c->linked, to, sizeof(to));
			snprintf(dir, sizeof(dir), "%s/%.2s", st->blob_dir, c->linked);
			if (link(from, to) != 0) {
				code = agk_fail(sq_errno_code(errno), "sqlite: link %s: %s", from, strerror(errno));
				c->linked[0] = '\0';
			} else if (st->sync_full && sq_fsync_dir(dir) != 0) {
				code = agk_fail(sq_errno_code(errno), "sqlite: fsync %s: %s", dir, strerror(errno));
			}
		} else {
			c->linked[0] = '\0';
		}
	}
	if (code == 0)
		code = sq_old_file(conn, c->dst, c->old);
	if (code == 0)
		code = sq_blob_row_put(conn, c->dst, size, data, dlen, c->linked, meta, mlen);
	free(data);
	free(meta);
	return code;
}

int sq_blob_copy(struct aerogram_store *st, const char *src_key, const char *dst_key)
{
	int code = sq_check_blob_key(src_key);
	if (code == 0)
		code = sq_check_blob_key(dst_key);
	if (code)
		return code;
	struct sq_copy_ctx c = { st, src_key, dst_key, "", "", 0 };
	code = sq_txn(st, SQ_WRITE_DEFERRED, sq_copy_txn, &c);
	if (code) {
		sq_file_unlink(st, c.linked);
		return code;
	}
	if (!c.same && c.old[0])
		sq_file_unlink(st, c.old);
	return 0;
}

/* ---- list ---- */

struct sq_list_ctx {
	const char *lower, *upper;
	uint32_t max;
	struct agk_blob_list *res;
};

static int sq_list_txn(struct sq_conn *conn, void *arg)
{
	struct sq_list_ctx *c = arg;
	struct agk_blob_list *res = c->res;
	agk_arena_free(&res->arena);
	memset(&res->pub, 0, sizeof(res->pub));
	sqlite3_stmt *s = sq_stmt(conn, c->upper ? SQ_BLOB_LIST : SQ_BLOB_LIST_OPEN);
	if (s == NULL)
		return sq_map_rc(conn->last_rc);
	sqlite3_bind_text(s, 1, c->lower, -1, SQLITE_STATIC);
	if (c->upper)
		sqlite3_bind_text(s, 2, c->upper, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, (int64_t)c->max + 1);
	const char **keys = agk_arena_alloc(&res->arena, ((size_t)c->max + 1) * sizeof(*keys));
	uint64_t *sizes = agk_arena_alloc(&res->arena, ((size_t)c->max + 1) * sizeof(*sizes));
	if (keys == NULL || sizes == NULL) {
		sqlite3_reset(s);
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	}
	size_t n = 0;
	int rc, code = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *k = (const char *)sqlite3_column_text(s, 0);
		char *copy = agk_arena_strdup(&res->arena, k ? k : "");
		if (copy == NULL) {
			code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
			break;
		}
		if (n == c->max) {
			size_t kl = strlen(copy);
			char *tok = agk_arena_alloc(&res->arena, sizeof(SQ_LIST_TAG) + kl);
			if (tok == NULL) {
				code = agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
				break;
			}
			memcpy(tok, SQ_LIST_TAG, sizeof(SQ_LIST_TAG) - 1);
			memcpy(tok + sizeof(SQ_LIST_TAG) - 1, copy, kl + 1);
			res->pub.more = 1;
			res->pub.next_token = tok;
			break;
		}
		keys[n] = copy;
		sizes[n] = (uint64_t)sqlite3_column_int64(s, 1);
		n++;
	}
	if (code == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
		code = sq_db_fail(conn, rc, "listing blobs");
	sqlite3_reset(s);
	if (code)
		return code;
	res->pub.keys = keys;
	res->pub.sizes = sizes;
	res->pub.n_keys = n;
	return 0;
}

int sq_blob_list(struct aerogram_store *st, const char *prefix, const char *continuation,
                 uint32_t max_keys, struct aerogram_blob_list **out)
{
	*out = NULL;
	if (prefix == NULL)
		prefix = "";
	if (!sq_utf8_valid(prefix))
		return agk_fail(AEROGRAM_EINVAL, "sqlite: blob prefix is not valid UTF-8");
	if (continuation) {
		size_t tl = sizeof(SQ_LIST_TAG) - 1;
		if (strncmp(continuation, SQ_LIST_TAG, tl) != 0 || continuation[tl] == '\0' ||
		    strncmp(continuation + tl, prefix, strlen(prefix)) != 0 ||
		    !sq_utf8_valid(continuation))
			return agk_fail(AEROGRAM_EINVAL, "sqlite: malformed continuation token '%.40s'",
			               continuation);
		continuation += tl;
	}
	if (max_keys == 0 || max_keys > SQ_BLOB_LIST_PAGE)
		max_keys = SQ_BLOB_LIST_PAGE;
	char *succ = NULL;
	int has_succ = sq_prefix_successor(prefix, &succ);
	if (has_succ < 0)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	const char *lower = prefix;
	if (continuation && strcmp(continuation, lower) > 0)
		lower = continuation;
	struct agk_blob_list *res = agk_blob_list_new();
	if (res == NULL) {
		free(succ);
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	}
	struct sq_list_ctx c = { lower, has_succ ? succ : NULL, max_keys, res };
	int code = sq_txn(st, 0, sq_list_txn, &c);
	free(succ);
	return agk_blob_list_done(code, res, out);
}

/* ---- delete ---- */

struct sq_del_ctx {
	const char *const *keys;
	size_t n;
	char (*files)[SQ_FILE_NAME_LEN + 1];
};

static int sq_del_txn(struct sq_conn *conn, void *arg)
{
	struct sq_del_ctx *c = arg;
	for (size_t i = 0; i < c->n; i++) {
		c->files[i][0] = '\0';
		int code = sq_old_file(conn, c->keys[i], c->files[i]);
		if (code)
			return code;
		sqlite3_stmt *s = sq_stmt(conn, SQ_BLOB_DEL);
		if (s == NULL)
			return sq_map_rc(conn->last_rc);
		sqlite3_bind_text(s, 1, c->keys[i], -1, SQLITE_STATIC);
		int rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return sq_db_fail(conn, rc, "deleting a blob");
	}
	return 0;
}

int sq_blob_delete(struct aerogram_store *st, const char *const *keys, size_t n_keys)
{
	if (n_keys == 0)
		return 0;
	if (keys == NULL)
		return agk_fail(AEROGRAM_EINVAL, "sqlite: no keys to delete");
	for (size_t i = 0; i < n_keys; i++) {
		int code = sq_check_blob_key(keys[i]);
		if (code)
			return code;
	}
	struct sq_del_ctx c = { keys, n_keys, calloc(n_keys, sizeof(*c.files)) };
	if (c.files == NULL)
		return agk_fail(AEROGRAM_EUNAVAILABLE, "sqlite: out of memory");
	int code = sq_txn(st, SQ_WRITE_DEFERRED, sq_del_txn, &c);
	if (code == 0)
		for (size_t i = 0; i < n_keys; i++)
			sq_file_unlink(st, c.files[i]);
	free(c.files);
	return code;
}

/* ---- the orphan sweep ---- */

/* Looks at one blob directory "xx"; returns the number of files removed. */
static unsigned sq_sweep_dir(struct aerogram_store *st, struct sq_conn *conn, const char *sub,
                             time_t now)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/%s", st->blob_dir, sub);
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	unsigned removed = 0;
	struct dirent *e;
	while (!st->sweep.stop && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char path[4400], rel[SQ_FILE_NAME_LEN + 8];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		struct stat sb;
		/* ctime, not mtime: link() (a copy in progress) refreshes it. */
		if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) ||
		    now - sb.st_ctime < (time_t)st->orphan_age_s)
			continue;
		int orphan = 0;
		if (strncmp(e->d_name, ".tmp-", 5) == 0) {
			orphan = 1; /* a put that died before its rename */
		} else if (strlen(e->d_name) == 32) {
			snprintf(rel, sizeof(rel), "%s/%s", sub, e->d_name);
			sqlite3_stmt *s = sq_stmt(conn, SQ_BLOB_FILE_USED);
			if (s == NULL)
				break;
			sqlite3_bind_text(s, 1, rel, -1, SQLITE_STATIC);
			int rc = sqlite3_step(s);
			sqlite3_reset(s);
			if (rc == SQLITE_DONE)
				orphan = 1;
			else if (rc != SQLITE_ROW)
				break; /* the database is busy or failing: try at the next open */
		}
		if (orphan && unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

unsigned sq_blob_sweep_files(struct aerogram_store *st, struct sq_conn *conn)
{
	time_t now = time(NULL);
	unsigned removed = 0;
	DIR *d = opendir(st->blob_dir);
	if (d == NULL)
		return 0;
	struct dirent *e;
	while (!st->sweep.stop && (e = readdir(d)) != NULL) {
		if (strlen(e->d_name) == 2 && isxdigit((unsigned char)e->d_name[0]) &&
		    isxdigit((unsigned char)e->d_name[1]))
			removed += sq_sweep_dir(st, conn, e->d_name, now);
	}
	closedir(d);
	return removed;
}
