/* ag_loader.c - load a storage driver .so, check its ABI, open its store.
 *
 * Every way a driver can be wrong ends here with one line that names the
 * file and the problem: the daemon prints it and exits non-zero. Nothing is
 * half-registered: on any failure the library is closed again.
 *
 * Drivers of every minor version up to ours load. The host never reads a
 * field past a driver's struct_size: once the store is open, the loader
 * copies the descriptor into one of the full current size, with the fields
 * the driver's version lacks zeroed, and every storage call of the host goes through that copy.
 * The copy is made after open because a wrapper driver learns its
 * capabilities from the driver it opens.
 */
#include "sdk/loader/ag_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct ag_driver {
	void *dl;
	char *path;
	struct ag_store store;
	struct aerogram_driver desc; /* the driver's descriptor, up to its struct_size */
	struct aerogram_host host;
	struct aerogram_config_entry *config;
	size_t n_config;
	const struct aerogram_host *log_to; /* or NULL: log_fn */
};

static void default_log(enum aerogram_log_level level, const char *tag, const char *message)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	const char *name = (unsigned)level < 4 ? names[level] : "log";
	fprintf(stderr, "aerogram: %s: %s%s%s\n", name, tag ? tag : "", tag ? ": " : "", message);
}

static ag_log_fn log_fn = default_log;

void ag_driver_set_log(ag_log_fn fn)
{
	log_fn = fn ? fn : default_log;
}

/* The message of a failure, into the caller's buffer when it gave one
 * (snprintf checks the format against its arguments). */
#define set_err(err, errlen, ...) \
	((err) != NULL && (errlen) > 0 ? (void)snprintf((err), (errlen), __VA_ARGS__) : (void)0)

/* The host services handed to the driver. ctx is the ag_driver. */
static void host_log(void *ctx, enum aerogram_log_level level, const char *message)
{
	struct ag_driver *drv = ctx;
	if (drv->log_to != NULL) {
		if (drv->log_to->log != NULL)
			drv->log_to->log(drv->log_to->ctx, level, message ? message : "");
		return;
	}
	const char *tag = drv->store.driver && drv->store.driver->name ? drv->store.driver->name : "driver";
	log_fn(level, tag, message ? message : "");
}

static const char *host_config_get(void *ctx, const char *key)
{
	struct ag_driver *drv = ctx;
	for (size_t i = 0; i < drv->n_config; i++)
		if (strcmp(drv->config[i].key, key) == 0)
			return drv->config[i].value;
	return NULL;
}

/* The functions every driver must provide (row_insert_if is optional). */
static const char *missing_function(const struct aerogram_driver *d)
{
	if (!d->open) return "open";
	if (!d->close) return "close";
	if (!d->error_message) return "error_message";
	if (!d->row_read) return "row_read";
	if (!d->row_result_free) return "row_result_free";
	if (!d->row_insert) return "row_insert";
	if (!d->row_delete) return "row_delete";
	if (!d->row_watch) return "row_watch";
	if (!d->row_watch_release) return "row_watch_release";
	if (!d->blob_get) return "blob_get";
	if (!d->blob_result_free) return "blob_result_free";
	if (!d->blob_put) return "blob_put";
	if (!d->blob_copy) return "blob_copy";
	if (!d->blob_list) return "blob_list";
	if (!d->blob_list_free) return "blob_list_free";
	if (!d->blob_delete) return "blob_delete";
	return NULL;
}

int ag_driver_check_descriptor(const struct aerogram_driver *d, const char *path, char *err,
                               size_t errlen)
{
	if (d == NULL) {
		set_err(err, errlen, "driver %s: aerogram_driver_entry returned no descriptor", path);
		return AEROGRAM_EINVAL;
	}
	if (d->abi_major != AEROGRAM_ABI_MAJOR) {
		set_err(err, errlen,
		        "driver %s: ABI major version %u, but this aerogramd speaks ABI %d.%d; rebuild the driver against this SDK",
		        path, (unsigned)d->abi_major, AEROGRAM_ABI_MAJOR, AEROGRAM_ABI_MINOR);
		return AEROGRAM_EINVAL;
	}
	if (d->abi_minor > AEROGRAM_ABI_MINOR) {
		set_err(err, errlen,
		        "driver %s: ABI version %u.%u is newer than this aerogramd's ABI %d.%d; upgrade aerogramd",
		        path, (unsigned)d->abi_major, (unsigned)d->abi_minor, AEROGRAM_ABI_MAJOR,
		        AEROGRAM_ABI_MINOR);
		return AEROGRAM_EINVAL;
	}
	if (d->struct_size < AEROGRAM_DRIVER_SIZE_2_0) {
		set_err(err, errlen,
		        "driver %s: descriptor is %u bytes, smaller than the %zu bytes of ABI %d.0",
		        path, (unsigned)d->struct_size, (size_t)AEROGRAM_DRIVER_SIZE_2_0, AEROGRAM_ABI_MAJOR);
		return AEROGRAM_EINVAL;
	}
	if (d->name == NULL || d->name[0] == '\0') {
		set_err(err, errlen, "driver %s: descriptor has no name", path);
		return AEROGRAM_EINVAL;
	}
	const char *missing = missing_function(d);
	if (missing != NULL) {
		set_err(err, errlen, "driver %s (%s): required function '%s' is missing", path, d->name,
		        missing);
		return AEROGRAM_EINVAL;
	}
	if ((d->capabilities & AEROGRAM_CAP_CONDITIONAL) && d->row_insert_if == NULL) {
		set_err(err, errlen,
		        "driver %s (%s): advertises AEROGRAM_CAP_CONDITIONAL, but row_insert_if is NULL",
		        path, d->name);
		return AEROGRAM_EINVAL;
	}
	return 0;
}

/* Copies the descriptor as far as its struct_size goes; the rest stays zero. */
static void copy_descriptor(struct aerogram_driver *dst, const struct aerogram_driver *src)
{
	size_t n = src->struct_size < sizeof(*dst) ? src->struct_size : sizeof(*dst);
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, n);
}

static int key_known(const struct aerogram_driver *d, const char *key)
{
	if (d->config_keys == NULL)
		return 0;
	for (const char *const *k = d->config_keys; *k != NULL; k++)
		if (strcmp(*k, key) == 0)
			return 1;
	return 0;
}

/* Builds the path of the .so from a name or a path. Caller frees. */
static char *resolve_path(const char *name_or_path, const char *driver_dir)
{
	size_t n = strlen(name_or_path);
	int is_path = strchr(name_or_path, '/') != NULL || (n > 3 && strcmp(name_or_path + n - 3, ".so") == 0);
	char *path;
	if (is_path) {
		path = strdup(name_or_path);
	} else {
		const char *dir = driver_dir && driver_dir[0] ? driver_dir : ".";
		if (asprintf(&path, "%s/aerogram_%s.so", dir, name_or_path) < 0)
			path = NULL;
	}
	return path;
}

static int valid_name(const char *name)
{
	if (name[0] == '\0')
		return 0;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		      *p == '/' || *p == '.' || (*p >= 'A' && *p <= 'Z')))
			return 0;
	return 1;
}

static void free_config(struct ag_driver *drv)
{
	for (size_t i = 0; i < drv->n_config; i++) {
		free((char *)drv->config[i].key);
		free((char *)drv->config[i].value);
	}
	free(drv->config);
}

int ag_driver_load(const char *name_or_path, const char *driver_dir,
                   const struct aerogram_config_entry *config, size_t n_config,
                   struct ag_driver **out, char *err, size_t errlen)
{
	return ag_driver_load_logging_to(name_or_path, driver_dir, config, n_config, NULL, out, err,
	                                 errlen);
}

int ag_driver_load_logging_to(const char *name_or_path, const char *driver_dir,
                              const struct aerogram_config_entry *config, size_t n_config,
                              const struct aerogram_host *log_to, struct ag_driver **out, char *err,
                              size_t errlen)
{
	*out = NULL;
	if (name_or_path == NULL || !valid_name(name_or_path)) {
		set_err(err, errlen, "storage driver name '%s' is not valid",
		        name_or_path ? name_or_path : "");
		return AEROGRAM_EINVAL;
	}
	struct ag_driver *drv = calloc(1, sizeof(*drv));
	if (drv == NULL || (drv->path = resolve_path(name_or_path, driver_dir)) == NULL) {
		free(drv);
		set_err(err, errlen, "out of memory loading driver %s", name_or_path);
		return AEROGRAM_EINTERNAL;
	}

	struct stat st;
	if (stat(drv->path, &st) != 0) {
		set_err(err, errlen, "driver %s: file not found (%s)", drv->path, strerror(errno));
		goto fail;
	}
	drv->dl = dlopen(drv->path, RTLD_NOW | RTLD_LOCAL);
	if (drv->dl == NULL) {
		set_err(err, errlen, "driver %s: cannot be loaded: %s", drv->path, dlerror());
		goto fail;
	}
	dlerror();
	void *sym = dlsym(drv->dl, AEROGRAM_DRIVER_ENTRY_SYMBOL);
	if (sym == NULL) {
		set_err(err, errlen, "driver %s: entry symbol %s not found; is it an Aerogram driver?",
		        drv->path, AEROGRAM_DRIVER_ENTRY_SYMBOL);
		goto fail;
	}
	aerogram_driver_entry_fn entry;
	memcpy(&entry, &sym, sizeof(entry)); /* object pointer to function pointer, as POSIX allows */
	const struct aerogram_driver *d = entry();
	if (ag_driver_check_descriptor(d, drv->path, err, errlen) != 0)
		goto fail;
	drv->store.driver = d;

	for (size_t i = 0; i < n_config; i++) {
		if (!key_known(d, config[i].key)) {
			set_err(err, errlen, "driver %s (%s): unknown configuration key '%s' in [storage]",
			        drv->path, d->name, config[i].key);
			goto fail;
		}
	}
	drv->config = calloc(n_config ? n_config : 1, sizeof(*drv->config));
	if (drv->config == NULL)
		goto oom;
	for (size_t i = 0; i < n_config; i++) {
		drv->config[i].key = strdup(config[i].key);
		drv->config[i].value = strdup(config[i].value ? config[i].value : "");
		drv->n_config = i + 1;
		if (!drv->config[i].key || !drv->config[i].value)
			goto oom;
	}

	drv->log_to = log_to;
	drv->host.struct_size = sizeof(drv->host);
	drv->host.ctx = drv;
	drv->host.log = host_log;
	drv->host.config_get = host_config_get;

	char open_err[512] = "";
	int rc = d->open(&drv->host, drv->config, drv->n_config, &drv->store.store, open_err,
	                 sizeof(open_err));
	if (rc != 0 || drv->store.store == NULL) {
		set_err(err, errlen, "driver %s (%s): initialisation failed: %s", drv->path, d->name,
		        open_err[0] ? open_err : "no reason given");
		if (rc == 0)
			rc = AEROGRAM_EINTERNAL;
		drv->store.driver = NULL;
		free_config(drv);
		dlclose(drv->dl);
		free(drv->path);
		free(drv);
		return rc;
	}
	/* A wrapper settles its capabilities in open: check them again. */
	if (ag_driver_check_descriptor(d, drv->path, err, errlen) != 0) {
		d->close(drv->store.store);
		goto fail;
	}
	copy_descriptor(&drv->desc, d);
	drv->store.driver = &drv->desc;
	*out = drv;
	return 0;

oom:
	set_err(err, errlen, "out of memory loading driver %s", drv->path);
fail:
	free_config(drv);
	if (drv->dl)
		dlclose(drv->dl);
	free(drv->path);
	free(drv);
	return AEROGRAM_EINVAL;
}

struct ag_store *ag_driver_store(struct ag_driver *drv)
{
	return &drv->store;
}

const char *ag_driver_path(const struct ag_driver *drv)
{
	return drv->path;
}

void ag_driver_unload(struct ag_driver *drv)
{
	if (drv == NULL)
		return;
	if (drv->store.driver && drv->store.store)
		drv->store.driver->close(drv->store.store);
	free_config(drv);
	/* Sanitizer builds keep the library mapped so leak reports can name its frames. */
#if !defined(__SANITIZE_ADDRESS__)
	dlclose(drv->dl);
#endif
	free(drv->path);
	free(drv);
}
