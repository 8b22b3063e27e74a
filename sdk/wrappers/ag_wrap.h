/*
 * ag_wrap.h - test wrappers around a storage driver: fault injection and
 * call counting, in the style of SQLite's test VFS.
 *
 * A wrapper is itself a (driver, store) pair that forwards every call to an
 * inner pair, so the engine under test cannot tell it from a real driver.
 * Wrappers stack: count over fault over memory. A wrapper does not own the
 * inner store (close it yourself after agw_free). Watches pass through: the
 * inner driver calls the caller's callback directly.
 *
 * The same two wrappers exist as loadable drivers for tests that run a whole
 * aerogramd: build/drivers/aerogram_faulty.so and aerogram_counting.so.
 * Their [storage] keys:
 *
 *   inner         the wrapped driver: a name (looked up as aerogram_<name>.so in
 *                 the directory of the wrapper .so itself) or a path
 *   inner_config  configuration of the inner driver: "key=value;key=value"
 *   control_file  (faulty) a text file of rules, see below
 *   hide_caps     (faulty) capabilities not to pass on, as agw_fault_hide_caps:
 *                 a comma-separated list of conditional, snapshot_reads
 *   counts_file   (counting) a file the wrapper creates and maps, see below
 *
 * Capabilities. A wrapper advertises AEROGRAM_CAP_CONDITIONAL only when the
 * inner driver offers it (the bit and a non-NULL row_insert_if); the
 * other bits are passed on as they are. A loadable wrapper's descriptor is
 * one object per .so, shared by every store opened from it in a process, so
 * it advertises a call only while every inner store open at the moment
 * offers it (the host reads the bits after open, when that is settled).
 *
 * The control file is checked on every call and re-read when its inode, size
 * or modification time changed; its rules replace the previous ones. A
 * missing file means no rules. One rule per line; '#' starts a comment:
 *
 *   ok                                   clear every rule
 *   fail OPS STATUS [PROBABILITY [SEED]] fail matching calls (probability 1 by default)
 *   fail_next OPS STATUS COUNT           fail the next COUNT matching calls
 *   fail_after_apply OPS [PROBABILITY]   apply the call, then answer "unavailable"
 *   delay OPS MILLISECONDS               sleep before forwarding matching calls
 *
 * OPS is `all`, `writes` (every call that stores or deletes: row_insert,
 * row_delete, blob_put, blob_copy, blob_delete, row_insert_if, as a full
 * disk would) or a comma-separated list of row_read, row_insert, row_delete,
 * row_watch, blob_get, blob_put, blob_copy, blob_list,
 * blob_delete, row_insert_if. STATUS is one of notfound, conflict,
 * unavailable, inval, perm, toobig, internal, notsup. Example:
 * "fail row_read,blob_get unavailable"; "fail_next row_insert_if conflict 3"
 * makes the next three compare-and-set batches lose as if another writer had
 * come first.
 *
 * The counts file holds AGW_COUNT_SLOTS (2 * AGW_OP_COUNT + 2 = 22)
 * little-endian uint64 values:
 *
 *   slots  0..9   calls per operation, in enum agw_op order (row_read first,
 *                 row_insert_if last)                     bytes   0..79
 *   slots 10..19  the items those calls carried (as agw_count_items)
 *                                                         bytes  80..159
 *   slot  20      rows returned by row_read (AGW_SLOT_ROWS_READ)
 *                                                         bytes 160..167
 *   slot  21      bytes of the values in those rows (AGW_SLOT_VALUE_BYTES_READ)
 *                                                         bytes 168..175
 *
 * (With ABI 1.x the file had 24 slots: row_watch_range came after
 * row_watch.) The wrapper
 * truncates it when it opens and updates it atomically on every call, so a
 * test may read it at any time.
 */
#ifndef AG_WRAP_H
#define AG_WRAP_H

#include <stdint.h>

#include <aerogram/driver.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The operations a wrapper counts, steers and hooks. New ones are appended. */
enum agw_op { AGW_ROW_READ, AGW_ROW_INSERT, AGW_ROW_DELETE, AGW_ROW_WATCH, AGW_BLOB_GET, AGW_BLOB_PUT, AGW_BLOB_COPY, AGW_BLOB_LIST, AGW_BLOB_DELETE,
              AGW_ROW_INSERT_IF, AGW_OP_COUNT };
#define AGW_MASK(op) (1u << (op))
#define AGW_ALL ((1u << AGW_OP_COUNT) - 1)

/* The layout of the counts file of aerogram_counting.so (see above). */
#define AGW_SLOT_ROWS_READ (2 * AGW_OP_COUNT)
#define AGW_SLOT_VALUE_BYTES_READ (2 * AGW_OP_COUNT + 1)
#define AGW_COUNT_SLOTS (2 * AGW_OP_COUNT + 2)

struct agw_wrapper;

/* A wrapper forwards every call to the inner (driver, store) pair; it does not own the inner store. */
/* A fault-injecting wrapper; NULL when out of memory. Free with agw_free. */
struct agw_wrapper *agw_fault_new(const struct aerogram_driver *inner, struct aerogram_store *inner_store);
/* A call-counting wrapper; NULL when out of memory. Free with agw_free. */
struct agw_wrapper *agw_count_new(const struct aerogram_driver *inner, struct aerogram_store *inner_store);
const struct aerogram_driver *agw_driver(struct agw_wrapper *w);   /* the wrapper's descriptor */
struct aerogram_store *agw_store(struct agw_wrapper *w);           /* the wrapper's store handle */

/* Fault rules (thread-safe, take effect at once). A failing call returns
 * `status` without reaching the inner driver; error_message says "injected fault". */
/* Fail calls in op_mask with this probability (PRNG seeded with seed). */
void agw_fault_fail(struct agw_wrapper *w, unsigned op_mask, int status, double probability, uint64_t seed);
/* Fail the next `count` calls in op_mask. */
void agw_fault_fail_next(struct agw_wrapper *w, unsigned op_mask, int status, unsigned count);
void agw_fault_fail_after_apply(struct agw_wrapper *w, unsigned op_mask, double probability); /* write applied, then AEROGRAM_EUNAVAILABLE returned: the ambiguous failure of a real network store */
/* Sleep delay_ms before forwarding calls in op_mask (0 removes the delay). */
void agw_fault_delay(struct agw_wrapper *w, unsigned op_mask, uint32_t delay_ms);
/* Remove every fault rule (capabilities hidden with agw_fault_hide_caps stay hidden). */
void agw_fault_clear(struct agw_wrapper *w);
/* Stop advertising the capability bits in `mask` (replacing an earlier mask;
 * 0 shows everything again): the descriptor loses them, and the calls they
 * stand for (row_insert_if) answer AEROGRAM_ENOTSUP without
 * reaching the inner driver. Lets a test run the host on the path it takes
 * with a driver that lacks them. */
void agw_fault_hide_caps(struct agw_wrapper *w, uint64_t mask);

/* A function called on the calling thread at the start of every call of an
 * operation of enum agw_op (whether a fault rule then answers it or it is
 * forwarded), outside any lock of the wrapper or of the driver, so it may
 * block: a deterministic scheduler switches threads there. Result frees,
 * watch releases and error_message are not hooked, nor are watch callbacks
 * (they come from the driver's own thread). NULL removes the hook. Set it
 * while no call is in flight. */
typedef void (*agw_call_hook)(void *arg, enum agw_op op);
void agw_set_call_hook(struct agw_wrapper *w, agw_call_hook hook, void *arg);

uint64_t agw_count_get(struct agw_wrapper *w, enum agw_op op);      /* calls made (counting wrapper) */
uint64_t agw_count_items(struct agw_wrapper *w, enum agw_op op);    /* queries/writes/keys carried by those calls */
/* Rows returned by successful row_read calls (a row with siblings is one row). */
uint64_t agw_count_rows_read(struct agw_wrapper *w);
/* Bytes of the values of those rows (every sibling; tombstones count 0). */
uint64_t agw_count_value_bytes_read(struct agw_wrapper *w);
/* Sets every count to zero. */
void agw_count_reset(struct agw_wrapper *w);
/* Frees the wrapper (not the inner store). Every watch made through it must be released first. */
void agw_free(struct agw_wrapper *w);

#ifdef __cplusplus
}
#endif

#endif
