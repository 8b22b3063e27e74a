/* agw_inner.c - load the driver a loadable wrapper wraps (see agw_inner.h). */
#include "sdk/wrappers/agw_inner.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *agw_config_value(const struct aerogram_config_entry *config, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (config[i].key && strcmp(config[i].key, key) == 0)
			return config[i].value;
	return NULL;
}

static void inner_log(void *ctx, enum aerogram_log_level level, const char *message)
{
	struct agw_inner *in = ctx;
	if (in->outer && in->outer->log)
		in->outer->log(in->outer->ctx, level, message);
}

static const char *inner_config_get(void *ctx, const char *key)
{
	struct agw_inner *in = ctx;
	return agw_config_value(in->config, in->n_config, key);
}

/* Splits "k=v;k=v" into entries pointing into in->config_text. */
static int parse_config(struct agw_inner *in, const char *text, char *err, size_t errlen)
{
	if (text == NULL || text[0] == '\0')
		return 0;
	in->config_text = strdup(text);
	size_t max = 1;
	for (const char *p = text; *p; p++)
		max += *p == ';';
	in->config = calloc(max, sizeof(*in->config));
	if (in->config_text == NULL || in->config == NULL) {
		snprintf(err, errlen, "out of memory");
		return AEROGRAM_EINTERNAL;
	}
	char *save = NULL;
	for (char *item = strtok_r(in->config_text, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(item, '=');
		if (eq == NULL || eq == item) {
			snprintf(err, errlen, "inner_config entry '%s' is not key=value", item);
			return AEROGRAM_EINVAL;
		}
		*eq = '\0';
		in->config[in->n_config].key = item;
		in->config[in->n_config].value = eq + 1;
		in->n_config++;
	}
	return 0;
}

/* The path of the inner driver: a path as given, or a name next to us. */
static char *inner_path(const char *inner, const void *self)
{
	size_t n = strlen(inner);
	if (strchr(inner, '/') != NULL || (n > 3 && strcmp(inner + n - 3, ".so") == 0))
		return strdup(inner);
	Dl_info info;
	const char *dir = ".";
	size_t dir_len = 1;
	if (dladdr(self, &info) != 0 && info.dli_fname != NULL) {
		const char *slash = strrchr(info.dli_fname, '/');
		if (slash != NULL) {
			dir = info.dli_fname;
			dir_len = (size_t)(slash - info.dli_fname);
		}
	}
	char *path;
	if (asprintf(&path, "%.*s/aerogram_%s.so", (int)dir_len, dir, inner) < 0)
		return NULL;
	return path;
}

static int check_inner(const struct aerogram_driver *d, const char *path, char *err, size_t errlen)
{
	if (d == NULL) {
		snprintf(err, errlen, "inner driver %s returned no descriptor", path);
		return AEROGRAM_EINVAL;
	}
	if (d->abi_major != AEROGRAM_ABI_MAJOR || d->abi_minor > AEROGRAM_ABI_MINOR) {
		snprintf(err, errlen, "inner driver %s: ABI %u.%u, the wrapper speaks %d.%d", path,
		         (unsigned)d->abi_major, (unsigned)d->abi_minor, AEROGRAM_ABI_MAJOR,
		         AEROGRAM_ABI_MINOR);
		return AEROGRAM_EINVAL;
	}
	if (d->struct_size < AEROGRAM_DRIVER_SIZE_1_0 || !d->open || !d->close || !d->error_message ||
	    !d->row_read || !d->row_result_free || !d->row_insert || !d->row_delete || !d->row_watch ||
	    !d->row_watch_release || !d->blob_get || !d->blob_result_free || !d->blob_put ||
	    !d->blob_copy || !d->blob_list || !d->blob_list_free || !d->blob_delete) {
		snprintf(err, errlen, "inner driver %s: incomplete descriptor", path);
		return AEROGRAM_EINVAL;
	}
	return 0;
}

int agw_inner_open(const struct aerogram_host *outer, const char *inner, const char *inner_config,
                   const void *self, struct agw_inner **out, char *err, size_t errlen)
{
	*out = NULL;
	if (inner == NULL || inner[0] == '\0') {
		snprintf(err, errlen, "the 'inner' key (the driver to wrap) is required");
		return AEROGRAM_EINVAL;
	}
	struct agw_inner *in = calloc(1, sizeof(*in));
	char *path = inner_path(inner, self);
	if (in == NULL || path == NULL) {
		free(in);
		free(path);
		snprintf(err, errlen, "out of memory");
		return AEROGRAM_EINTERNAL;
	}
	in->outer = outer;
	int rc = parse_config(in, inner_config, err, errlen);
	if (rc != 0)
		goto fail;
	rc = AEROGRAM_EINVAL;
	in->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (in->dl == NULL) {
		snprintf(err, errlen, "inner driver %s cannot be loaded: %s", path, dlerror());
		goto fail;
	}
	void *sym = dlsym(in->dl, AEROGRAM_DRIVER_ENTRY_SYMBOL);
	if (sym == NULL) {
		snprintf(err, errlen, "inner driver %s has no %s", path, AEROGRAM_DRIVER_ENTRY_SYMBOL);
		goto fail;
	}
	aerogram_driver_entry_fn entry;
	memcpy(&entry, &sym, sizeof(entry));
	in->driver = entry();
	if ((rc = check_inner(in->driver, path, err, errlen)) != 0)
		goto fail;
	for (size_t i = 0; i < in->n_config; i++) {
		int known = 0;
		for (const char *const *k = in->driver->config_keys; k && *k && !known; k++)
			known = strcmp(*k, in->config[i].key) == 0;
		if (!known) {
			snprintf(err, errlen, "inner driver %s: unknown configuration key '%s'", path,
			         in->config[i].key);
			rc = AEROGRAM_EINVAL;
			goto fail;
		}
	}
	in->host.struct_size = sizeof(in->host);
	in->host.ctx = in;
	in->host.log = inner_log;
	in->host.config_get = inner_config_get;
	char inner_err[512] = "";
	rc = in->driver->open(&in->host, in->config, in->n_config, &in->store, inner_err,
	                      sizeof(inner_err));
	if (rc != 0 || in->store == NULL) {
		snprintf(err, errlen, "inner driver %s: %s", path, inner_err[0] ? inner_err : "open failed");
		if (rc == 0)
			rc = AEROGRAM_EINTERNAL;
		goto fail;
	}
	free(path);
	*out = in;
	return 0;
fail:
	if (in->dl)
		dlclose(in->dl);
	free(in->config);
	free(in->config_text);
	free(in);
	free(path);
	return rc;
}

void agw_inner_close(struct agw_inner *in)
{
	if (in == NULL)
		return;
	in->driver->close(in->store);
#if !defined(__SANITIZE_ADDRESS__)
	dlclose(in->dl);
#endif
	free(in->config);
	free(in->config_text);
	free(in);
}

int agw_inner_wrap(const struct aerogram_host *outer, const struct aerogram_config_entry *config,
                   size_t n_config, const void *self, agw_wrapper_new_fn make,
                   struct agw_inner **inner, struct agw_wrapper **w, char *err, size_t errlen)
{
	*w = NULL;
	int rc = agw_inner_open(outer, agw_config_value(config, n_config, "inner"),
	                        agw_config_value(config, n_config, "inner_config"), self, inner, err,
	                        errlen);
	if (rc != 0)
		return rc;
	*w = make((*inner)->driver, (*inner)->store);
	if (*w == NULL) {
		agw_inner_close(*inner);
		*inner = NULL;
		snprintf(err, errlen, "out of memory");
		return AEROGRAM_EINTERNAL;
	}
	return 0;
}

void agw_shared_caps_opened(struct agw_shared_caps *sc, struct aerogram_driver *desc,
                            uint64_t offered)
{
	pthread_mutex_lock(&sc->lock);
	uint64_t caps = __atomic_load_n(&desc->capabilities, __ATOMIC_ACQUIRE);
	if (sc->n_open == 0)
		caps = (caps & ~sc->managed) | (offered & sc->managed);
	else
		caps &= ~(sc->managed & ~offered); /* only what every open store offers */
	sc->n_open++;
	__atomic_store_n(&desc->capabilities, caps, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&sc->lock);
}

void agw_shared_caps_closed(struct agw_shared_caps *sc, struct aerogram_driver *desc)
{
	pthread_mutex_lock(&sc->lock);
	if (sc->n_open > 0 && --sc->n_open == 0) {
		/* nothing open: back to the descriptor as loaded */
		uint64_t caps = __atomic_load_n(&desc->capabilities, __ATOMIC_ACQUIRE);
		__atomic_store_n(&desc->capabilities, caps | sc->managed, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&sc->lock);
}
