/*
 * aerogram/driver.h - the Aerogram storage driver ABI.
 *
 * This header is the driver author's manual. A driver is a shared object that
 * exports exactly one symbol, `aerogram_driver_entry`, which returns a
 * descriptor: the ABI version it was built against, its name, capability bits
 * and a table of functions. aerogramd loads it with dlopen(RTLD_NOW |
 * RTLD_LOCAL) at start-up, checks the version, hands it its configuration and
 * from then on calls the functions below from several threads at once.
 *
 * The model is Garage's two primitives:
 *
 *   ROWS  (the K2V model). A row is addressed by (partition key, sort key),
 *         both NUL-terminated UTF-8 strings, ordered inside a partition by
 *         their raw bytes (memcmp order). A row holds a *set* of concurrent
 *         values, each either bytes or a tombstone, and an opaque causality
 *         token (a NUL-terminated printable string).
 *         - A write that carries the token returned by a read replaces exactly
 *           the values that read returned; anything written since survives as
 *           a concurrent value (a "sibling").
 *         - A write without a token replaces nothing: it adds a sibling.
 *         - Identical concurrent values (same bytes, or two tombstones) are
 *           reported once.
 *         - A row whose values are all tombstones is hidden from reads unless
 *           the query asks for tombstones. A driver may forget such rows after
 *           a while (Garage does after 24 h); until then they are readable.
 *
 *   BLOBS (the S3 model). A blob is addressed by a key (NUL-terminated UTF-8,
 *         at most 479 bytes); it holds bytes plus a small map of string
 *         metadata (names are lower-case ASCII). Blobs are written whole and
 *         never modified; a put on an existing key replaces it.
 *
 * The semantics are defined by the conformance suite in sdk/conformance:
 * `aerogram-driver-check path/to/driver.so key=value ...` must pass.
 *
 * Versioning. AEROGRAM_ABI_MAJOR changes when anything existing changes
 * (a field, a type, a meaning); the host refuses a driver whose major differs.
 * AEROGRAM_ABI_MINOR grows when something is appended at the end of a struct;
 * the host refuses a driver whose minor is newer than its own, and reads an
 * appended field only when `struct_size` says it is there and, for a
 * function pointer, when it is not NULL. Fields are never reordered.
 * ABI 2.0 dropped what no host called (range watches and the capability
 * bits WATCH_RANGE, DURABLE and SHARED) and made row_insert_if part of the
 * descriptor; a 1.x driver is refused and must be rebuilt.
 *
 * Threads. Every function of the table may be called from any thread, and
 * several at once, on the same store handle, except `open` and `close`.
 * A driver that cannot run calls concurrently serialises them itself.
 * The host services table may be called from any thread, including the
 * driver's own.
 *
 * Ownership. The side that allocates, frees. Nothing the host passes in is
 * kept by the driver after the call returns (copy what you need), except the
 * `host` table and the `arg` of a watch. Everything the driver hands out
 * (read results, blob results, list results) is released by the matching
 * `*_free` function of the same driver, never by free(3). Strings and byte
 * arrays inside a result live until that result is freed.
 *
 * Errors. Every function returns 0 (AEROGRAM_OK) or a negative AEROGRAM_E*
 * code. On failure the driver records a human-readable message that the
 * calling thread reads back with `error_message` (so the message lives in
 * thread-local storage of the driver; it stays valid until the same thread
 * makes another call into the driver). Messages name the cause precisely,
 * e.g. "garage: 503 ServiceUnavailable on ReadBatch (quorum not reached)".
 */
#ifndef AEROGRAM_DRIVER_H
#define AEROGRAM_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. A driver can test it with #if. */
#define AEROGRAM_ABI_MAJOR 2
#define AEROGRAM_ABI_MINOR 0

/* The name of the one symbol a driver exports. */
#define AEROGRAM_DRIVER_ENTRY_SYMBOL "aerogram_driver_entry"

/* Status codes. They map one to one onto IMAP response codes in the server:
 * NOTFOUND -> [NONEXISTENT], UNAVAILABLE -> [UNAVAILABLE], TOOBIG -> [TOOBIG],
 * PERM -> [NOPERM], everything else -> [SERVERBUG] after a log line. */
enum aerogram_status {
	AEROGRAM_OK = 0,
	AEROGRAM_ENOTFOUND = -1,    /* the item, blob or bucket does not exist */
	AEROGRAM_ECONFLICT = -2,    /* a precondition or a causality token was refused */
	AEROGRAM_EUNAVAILABLE = -3, /* temporary: timeout, connection, 503; retry later */
	AEROGRAM_EINVAL = -4,       /* the request is malformed (bad key, bad range, bad token) */
	AEROGRAM_EPERM = -5,        /* the store refused the credentials or the operation */
	AEROGRAM_ETOOBIG = -6,      /* a key, a value or a batch is over the store's limit */
	AEROGRAM_EINTERNAL = -7,    /* a bug or an unexpected answer; the message says which */
	AEROGRAM_ENOTSUP = -8,      /* this driver does not implement the operation */
	AEROGRAM_ETIMEDOUT = -9     /* only as a watch callback status: the timeout passed */
};

/* Log levels for the host's log service. */
enum aerogram_log_level {
	AEROGRAM_LOG_ERROR = 0,
	AEROGRAM_LOG_WARNING = 1,
	AEROGRAM_LOG_INFO = 2,
	AEROGRAM_LOG_DEBUG = 3
};

/* Capability bits of a driver (the `capabilities` field); each one changes
 * what the host does. Bits 0 to 2 are unused since ABI 2.0. */
/* row_insert_if is implemented (conditional, atomic batches). */
#define AEROGRAM_CAP_CONDITIONAL (UINT64_C(1) << 3)
/* Hints for the host's scheduling; a driver without them is taken
 * to talk to a network. LOCAL_READS: row_read and blob_get wait for nothing
 * but local memory or files (no network, no flush), so an event loop may
 * call them. LOCAL_WRITES: every call does (nothing is flushed to a disk). */
#define AEROGRAM_CAP_LOCAL_READS  (UINT64_C(1) << 4)
#define AEROGRAM_CAP_LOCAL_WRITES (UINT64_C(1) << 5)
/* The queries of one row_read call see one state of the store (a
 * write is seen by all of them or by none). Without it the host assumes,
 * as with Garage, whose ReadBatch runs each query as its own quorum read
 * (src/api/k2v/batch.rs), that one query may see a write another missed,
 * and reads in two calls where the order matters. */
#define AEROGRAM_CAP_SNAPSHOT_READS (UINT64_C(1) << 6)
/* The store is this process's own: no other process can open it, and it is
 * gone when the process ends (the memory driver). The host then removes the
 * contents of expunged messages after a short grace (only its own sessions
 * can still be reading them), and the daemon keeps none for undelete unless
 * its configuration says so (an administration tool, another process, could
 * never reach them). A host that does not know the bit loses nothing. */
#define AEROGRAM_CAP_PRIVATE (UINT64_C(1) << 7)

/* Row keys. A partition key and a sort key are each 1 to
 * AEROGRAM_ROW_KEY_MAX bytes (Garage's bound: its metadata engine keys a row
 * by a 32-byte partition hash and the sort key, in at most 511 bytes, the
 * same bound as blob keys). Every call refuses an empty key with
 * AEROGRAM_EINVAL and a longer one with AEROGRAM_ETOOBIG, in writes, reads,
 * deletes and watches alike: a key a driver refuses to write is never read.
 * (Garage itself accepts an empty sort key in a batch but not in a
 * single-item call; refusing it everywhere keeps drivers interchangeable.)
 * Range bounds (prefix, start, end) are not keys: any length, "" = unset. */
#define AEROGRAM_ROW_KEY_MAX 479

/* The longest causality token a driver hands out, NUL included. */
#define AEROGRAM_TOKEN_MAX 128

/* One configuration entry: a key of the [storage] section other than
 * `driver` and `driver_dir`, with its value. Both strings are host-owned. */
struct aerogram_config_entry {
	const char *key;
	const char *value;
};

/*
 * Services the host offers the driver. The table and its context stay valid
 * until `close` returns. `struct_size` lets later minor versions append
 * services: check it before using a field added after 1.0.
 */
struct aerogram_host {
	uint32_t struct_size;
	void *ctx; /* opaque, pass it back unchanged */
	/* Log one line; the host tags it with the driver's name. `message` is a
	 * complete line without a trailing newline. */
	void (*log)(void *ctx, enum aerogram_log_level level, const char *message);
	/* The value of a configuration key, or NULL when it is not set. The
	 * string is host-owned and lives until `close` returns. */
	const char *(*config_get)(void *ctx, const char *key);
};

/* ------------------------------------------------------------------------
 * Rows
 * ------------------------------------------------------------------------ */

/* Query flags (the `flags` field of struct aerogram_row_query). */
#define AEROGRAM_QUERY_REVERSE        (1u << 0) /* iterate from the highest key down */
#define AEROGRAM_QUERY_TOMBSTONES     (1u << 1) /* include rows whose values are all tombstones */
#define AEROGRAM_QUERY_CONFLICTS_ONLY (1u << 2) /* only rows with two or more values */

/*
 * One read query on one partition. Exactly one of these forms:
 *   single item: `sk` set; prefix, start, end, limit and REVERSE must be
 *                unset (else AEROGRAM_EINVAL). A missing or hidden row gives
 *                an empty page, not an error.
 *   range:       `sk` NULL; any of `prefix`, `start`, `end` may be NULL.
 *     forward: keys from `start` (inclusive; default: the prefix, else the
 *              first key) while key < `end` (exclusive) and key has `prefix`.
 *     REVERSE: keys from `start` (inclusive, the *highest* key; default: the
 *              last key with the prefix) down while key > `end` (exclusive).
 *     If both `prefix` and `start` are set, `start` must begin with `prefix`
 *     (else AEROGRAM_EINVAL).
 *   `limit`: at most this many rows in the page; 0 means no limit. When more
 *     rows match, the page says `more` and `next_start` is the key of the next
 *     one: pass it as `start` of the same query to continue.
 * An empty string counts as NULL for `prefix`, `start` and `end`.
 */
struct aerogram_row_query {
	const char *pk;
	const char *sk;
	const char *prefix;
	const char *start;
	const char *end;
	uint32_t limit;
	uint32_t flags;
};

/* One concurrent value of a row. A tombstone has `tombstone` = 1, `data` NULL
 * and `len` 0. An empty value (len 0, tombstone 0) is a real value. */
struct aerogram_value {
	const uint8_t *data;
	size_t len;
	int tombstone;
};

/* One row as read. `token` is the causality token covering exactly `values`. */
struct aerogram_row {
	const char *sk;
	const char *token;
	size_t n_values;
	const struct aerogram_value *values;
};

/* The answer to one query: rows in iteration order (descending for REVERSE). */
struct aerogram_row_page {
	size_t n_rows;
	const struct aerogram_row *rows;
	int more;               /* 1 when `limit` cut the page short */
	const char *next_start; /* with more: the key to continue from; else NULL */
};

/* The answer to a batch of queries: one page per query, in query order. */
struct aerogram_row_result {
	size_t n_pages;
	const struct aerogram_row_page *pages;
};

/*
 * One row write. `pk` and `sk` are required. `token` is a causality token
 * from an earlier read (it supersedes exactly what that read returned) or
 * NULL (supersede nothing: the value becomes a sibling). `tombstone` = 1
 * writes a tombstone (a delete) and ignores `value`/`len`.
 */
struct aerogram_row_write {
	const char *pk;
	const char *sk;
	const char *token;
	const uint8_t *value;
	size_t len;
	int tombstone;
};

/*
 * Watch callback. Called exactly once per watch, from a thread of the
 * driver's, never from inside row_watch itself:
 *   status AEROGRAM_OK: the row changed; `row` is its new state.
 *   status AEROGRAM_ETIMEDOUT: the timeout passed with no change; row NULL.
 *   any other status: the watch failed; `message` says why.
 * `row` and `message` are driver-owned and valid only during the callback:
 * copy what you keep. The callback must not block
 * for long (hand work to another thread) and must not call row_watch_release
 * on its own watch; it may start new watches.
 */
struct aerogram_watch;
typedef void (*aerogram_watch_cb)(void *arg, int status, const struct aerogram_row *row,
                                  const char *message);

/* ------------------------------------------------------------------------
 * Blobs
 * ------------------------------------------------------------------------ */

/* One metadata entry. Names are lower-case [a-z0-9-] (they travel as
 * x-amz-meta-<name> headers in S3), values printable UTF-8. */
struct aerogram_meta {
	const char *name;
	const char *value;
};

/* One blob read: the key and a byte range. `length` = 0 reads to the end. */
struct aerogram_blob_request {
	const char *key;
	uint64_t offset;
	uint64_t length;
};

/* One blob as read. `status` is AEROGRAM_OK, or AEROGRAM_ENOTFOUND for a
 * missing key, or another error for this item alone. `data`/`len` are the
 * bytes of the requested range (an offset past the end gives len 0);
 * `total_size` is the size of the whole blob. */
struct aerogram_blob {
	int status;
	const uint8_t *data;
	size_t len;
	uint64_t total_size;
	size_t n_meta;
	const struct aerogram_meta *meta;
};

/* The answer to a batch of blob reads, one entry per request, in order. */
struct aerogram_blob_result {
	size_t n_blobs;
	const struct aerogram_blob *blobs;
};

/* One page of a blob listing, keys in byte order. */
struct aerogram_blob_list {
	size_t n_keys;
	const char *const *keys;
	const uint64_t *sizes;
	int more;                   /* 1 when further keys match */
	const char *next_token;     /* with more: pass as `continuation` */
};

/* ------------------------------------------------------------------------
 * The descriptor
 * ------------------------------------------------------------------------ */

struct aerogram_store; /* a driver's open store; opaque to the host */

struct aerogram_driver {
	/* Header, filled by AEROGRAM_DRIVER_HEADER: never spell it out. */
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t struct_size;

	const char *name;        /* short lower-case name, e.g. "memory" */
	const char *version;     /* the driver's own version text */
	uint64_t capabilities;   /* AEROGRAM_CAP_* bits */
	/* The configuration keys the driver understands, NULL-terminated. The
	 * host refuses any other key before calling open. */
	const char *const *config_keys;

	/* Open a store with its configuration. On failure return a negative
	 * code and write a one-line reason into errbuf (errlen bytes, always
	 * NUL-terminated). The driver may keep `host` until close. */
	int (*open)(const struct aerogram_host *host, const struct aerogram_config_entry *config,
	            size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen);
	/* Close the store: every watch has been released before; free everything. */
	void (*close)(struct aerogram_store *store);
	/* The message of the last failed call made by the calling thread. */
	const char *(*error_message)(struct aerogram_store *store);

	/* Read a batch of queries. On success *out holds one page per query;
	 * release it with row_result_free. If any query is invalid or the store
	 * fails, nothing is returned and the call fails. */
	int (*row_read)(struct aerogram_store *store, const struct aerogram_row_query *queries,
	                size_t n_queries, struct aerogram_row_result **out);
	void (*row_result_free)(struct aerogram_store *store, struct aerogram_row_result *result);
	/* Apply a batch of writes. Not atomic: after a failure some writes may
	 * have been applied (each one is all or nothing). */
	int (*row_insert)(struct aerogram_store *store, const struct aerogram_row_write *writes,
	                  size_t n_writes);
	/* Tombstone every live row matched by each query (single or range form;
	 * limit, REVERSE and the flags are ignored), each with its current token.
	 * `deleted`, when not NULL, receives the number of rows tombstoned. */
	int (*row_delete)(struct aerogram_store *store, const struct aerogram_row_query *queries,
	                  size_t n_queries, uint64_t *deleted);
	/* Watch one row: call cb once when the row's token differs from `token`,
	 * or after timeout_ms. With token NULL the watch fires as soon as the
	 * row holds any value (at once if it already does). A row that does not
	 * exist is simply waited for. On success *out is the watch; the host
	 * releases every watch exactly once with row_watch_release, fired or
	 * not. Thousands of watches must not need thousands of threads. */
	int (*row_watch)(struct aerogram_store *store, const char *pk, const char *sk,
	                 const char *token, uint32_t timeout_ms, aerogram_watch_cb cb, void *arg,
	                 struct aerogram_watch **out);
	/* Release a watch. When this returns, the callback is not running and
	 * will never run. Never call it from inside that watch's callback. */
	void (*row_watch_release)(struct aerogram_store *store, struct aerogram_watch *watch);

	/* Read a batch of blobs (byte ranges allowed). The call fails only when
	 * the store as a whole fails; a missing key is a per-item ENOTFOUND.
	 * Drivers over a network issue the reads in parallel. */
	int (*blob_get)(struct aerogram_store *store, const struct aerogram_blob_request *requests,
	                size_t n_requests, struct aerogram_blob_result **out);
	void (*blob_result_free)(struct aerogram_store *store, struct aerogram_blob_result *result);
	/* Store a blob with its metadata, replacing any blob of that key. When
	 * this returns 0 the blob is durable as far as the store promises. */
	int (*blob_put)(struct aerogram_store *store, const char *key, const uint8_t *data,
	                size_t len, const struct aerogram_meta *meta, size_t n_meta);
	/* Copy a blob with its metadata. A missing source is ENOTFOUND. */
	int (*blob_copy)(struct aerogram_store *store, const char *src_key, const char *dst_key);
	/* List keys starting with `prefix` in byte order, at most max_keys
	 * (0 = the driver's page size, at least 1). `continuation` is NULL for
	 * the first page, else the previous page's next_token. */
	int (*blob_list)(struct aerogram_store *store, const char *prefix, const char *continuation,
	                 uint32_t max_keys, struct aerogram_blob_list **out);
	void (*blob_list_free)(struct aerogram_store *store, struct aerogram_blob_list *list);
	/* Delete a batch of blobs. Missing keys are not an error. */
	int (*blob_delete)(struct aerogram_store *store, const char *const *keys, size_t n_keys);

	/* With AEROGRAM_CAP_CONDITIONAL: a compare-and-set over a batch. If the
	 * row (cond_pk, cond_sk) has, at the moment the batch is applied, exactly
	 * the causality token `cond_token` (the token a read of that row would
	 * return then; NULL: the row does not exist at all, not even as
	 * tombstones), apply every write of `writes` as row_insert would, and
	 * atomically: readers see all of them or none. Otherwise apply nothing
	 * and fail with AEROGRAM_ECONFLICT. A token is current only until the
	 * next write to that row, by anyone, so the condition means "nobody
	 * wrote this row since I read it". The writes may include the condition
	 * row itself (the usual case: it records that the batch happened).
	 * On success, when `new_token` is not NULL, the token a read of the
	 * condition row would return right after the batch is copied into it
	 * (at most new_token_len bytes with the NUL; AEROGRAM_TOKEN_MAX is
	 * always enough). Other failures as row_insert, except that nothing is
	 * ever half applied. NULL (or ENOTSUP) without the capability: the host
	 * then coordinates writers with plain row_insert and reads. */
	int (*row_insert_if)(struct aerogram_store *store, const char *cond_pk, const char *cond_sk,
	                     const char *cond_token, const struct aerogram_row_write *writes,
	                     size_t n_writes, char *new_token, size_t new_token_len);
};

/* The size of the descriptor of ABI 2.0: the host refuses a smaller one.
 * Fields appended by later minor versions are read only when struct_size
 * covers them. */
#define AEROGRAM_DRIVER_SIZE_2_0 \
	(offsetof(struct aerogram_driver, row_insert_if) + sizeof(void *))

/* Fills the header fields of a descriptor; use it first in a designated
 * initializer:
 *
 *   static const char *const my_keys[] = { "path", NULL };
 *   static const struct aerogram_driver my_driver = {
 *           AEROGRAM_DRIVER_HEADER,
 *           .name = "mine", .version = "1.0", .config_keys = my_keys,
 *           .open = my_open, ...
 *   };
 *   AEROGRAM_DRIVER_EXPORT(my_driver)
 */
#define AEROGRAM_DRIVER_HEADER                                              \
	.abi_major = AEROGRAM_ABI_MAJOR, .abi_minor = AEROGRAM_ABI_MINOR, \
	.struct_size = (uint32_t)sizeof(struct aerogram_driver)

/* The type of the entry point. */
typedef const struct aerogram_driver *(*aerogram_driver_entry_fn)(void);

#if defined(__GNUC__) || defined(__clang__)
#define AEROGRAM_EXPORT __attribute__((visibility("default")))
#else
#define AEROGRAM_EXPORT
#endif

/* Defines the exported entry point returning the given descriptor. Build the
 * driver with -fvisibility=hidden so that this is its only exported symbol. */
#define AEROGRAM_DRIVER_EXPORT(descriptor)                                    \
	AEROGRAM_EXPORT const struct aerogram_driver *aerogram_driver_entry(void); \
	AEROGRAM_EXPORT const struct aerogram_driver *aerogram_driver_entry(void)  \
	{                                                                     \
		return &(descriptor);                                         \
	}

#ifdef __cplusplus
}
#endif

#endif /* AEROGRAM_DRIVER_H */
