/* ag_loader.h - load a storage driver .so, check its ABI, open its store.
 *
 * The one loader of the tree: aerogramd and aerogramctl, aerogram-driver-check,
 * the wrapper drivers (which load the driver they wrap), the tests and the
 * benchmarks all load drivers through it. It depends on the ABI header and
 * libc/libdl only. */
#ifndef AG_LOADER_H
#define AG_LOADER_H

#include <stddef.h>

#include <aerogram/driver.h>

/* An opened store: the driver's descriptor and its store handle. Every
 * storage call in the host goes through this pair, so a wrapper (fault
 * injection, call counting) is just another pair. For a loaded driver the
 * descriptor is the loader's copy, zero past the driver's struct_size: a
 * field the driver's ABI version lacks (row_insert_if of a 1.0 driver) reads
 * as NULL. Code that may also get an in-process descriptor still checks
 * struct_size before reading a field appended after 1.0. */
struct ag_store {
	const struct aerogram_driver *driver;
	struct aerogram_store *store;
};

/* A loaded driver with its open store. */
struct ag_driver;

/* How a host logs: level as in the ABI, `tag` the driver name (or NULL for
 * the host itself), `message` one complete line. */
typedef void (*ag_log_fn)(enum aerogram_log_level level, const char *tag, const char *message);

/* Installs the log function used for every driver's log lines (default:
 * stderr). Call before ag_driver_load. */
void ag_driver_set_log(ag_log_fn fn);

/*
 * Resolves `name_or_path` (a name is looked up as <driver_dir>/aerogram_<name>.so;
 * anything containing a '/' or ending in ".so" is a path), dlopens it with
 * RTLD_NOW | RTLD_LOCAL, checks the entry symbol, the ABI version and the
 * descriptor size, refuses configuration keys the driver does not declare,
 * and opens the store. `config` is copied. On failure returns a negative
 * AEROGRAM_E* code and writes one line naming the file and the problem into
 * err (errlen bytes). On success *out is the loaded driver; the caller frees
 * it with ag_driver_unload.
 */
int ag_driver_load(const char *name_or_path, const char *driver_dir,
                   const struct aerogram_config_entry *config, size_t n_config,
                   struct ag_driver **out, char *err, size_t errlen);

/* As ag_driver_load, but the driver's log lines go to `log_to`'s log
 * function instead of the one ag_driver_set_log installed: a driver that
 * loads another (the wrapper drivers of sdk/wrappers/) hands it its own
 * host. log_to must outlive the loaded driver. */
int ag_driver_load_logging_to(const char *name_or_path, const char *driver_dir,
                              const struct aerogram_config_entry *config, size_t n_config,
                              const struct aerogram_host *log_to, struct ag_driver **out, char *err,
                              size_t errlen);

/* The opened store of a loaded driver (owned by it). */
struct ag_store *ag_driver_store(struct ag_driver *drv);
/* The path the driver was loaded from (owned by it). */
const char *ag_driver_path(const struct ag_driver *drv);
/* Closes the store and unloads the driver. */
void ag_driver_unload(struct ag_driver *drv);

/* Checks a descriptor as the loader does (version, size, required
 * functions, capabilities backed by their function); for in-process
 * descriptors such as the test wrappers.
 * Returns 0 or writes the problem into err and returns AEROGRAM_EINVAL. */
int ag_driver_check_descriptor(const struct aerogram_driver *d, const char *path, char *err,
                               size_t errlen);

#endif
