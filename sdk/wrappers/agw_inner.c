/* agw_inner.c - load the driver a loadable wrapper wraps (see agw_inner.h). */
#include "sdk/wrappers/agw_inner.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The directory a driver name is looked up in: the one holding the .so
 * that contains `self` (the wrapper itself). Caller frees. */
static char *wrapper_dir(const void *self)
{
	Dl_info info;
	if (dladdr(self, &info) != 0 && info.dli_fname != NULL) {
		const char *slash = strrchr(info.dli_fname, '/');
		if (slash != NULL)
			return strndup(info.dli_fname, (size_t)(slash - info.dli_fname));
	}
	return strdup(".");
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
	char *dir = wrapper_dir(self);
	if (in == NULL || dir == NULL) {
		free(in);
		free(dir);
		snprintf(err, errlen, "out of memory");
		return AEROGRAM_EINTERNAL;
	}
	/* the loader checks the ABI and refuses keys the inner driver does not
	 * declare; its lines go to the wrapper's host, tagged as the wrapper's */
	int rc = parse_config(in, inner_config, err, errlen);
	if (rc == 0)
		rc = ag_driver_load_logging_to(inner, dir, in->config, in->n_config, outer, &in->drv, err,
		                               errlen);
	free(dir);
	if (rc != 0) {
		free(in->config);
		free(in->config_text);
		free(in);
		return rc;
	}
	struct ag_store *st = ag_driver_store(in->drv);
	in->driver = st->driver;
	in->store = st->store;
	*out = in;
	return 0;
}

void agw_inner_close(struct agw_inner *in)
{
	if (in == NULL)
		return;
	ag_driver_unload(in->drv);
	free(in->config);
	free(in->config_text);
	free(in);
}

int agw_inner_wrap(const struct aerogram_host *outer, const struct aerogram_config_entry *config,
                   size_t n_config, const void *self, agw_wrapper_new_fn make,
                   struct agw_inner **inner, struct agw_wrapper **w, char *err, size_t errlen)
{
	*w = NULL;
	int rc = agw_inner_open(outer, agk_config_value(config, n_config, "inner"),
	                        agk_config_value(config, n_config, "inner_config"), self, inner, err,
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

void agw_loadable_opened(struct agw_loadable *so, uint64_t offered)
{
	pthread_mutex_lock(&so->lock);
	uint64_t caps = __atomic_load_n(&so->driver.capabilities, __ATOMIC_ACQUIRE);
	if (so->n_open == 0)
		caps = (caps & ~so->managed) | (offered & so->managed);
	else
		caps &= ~(so->managed & ~offered); /* only what every open store offers */
	so->n_open++;
	__atomic_store_n(&so->driver.capabilities, caps, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&so->lock);
}

void agw_loadable_closed(struct agw_loadable *so)
{
	pthread_mutex_lock(&so->lock);
	if (so->n_open > 0 && --so->n_open == 0) {
		/* nothing open: back to the descriptor as loaded */
		uint64_t caps = __atomic_load_n(&so->driver.capabilities, __ATOMIC_ACQUIRE);
		__atomic_store_n(&so->driver.capabilities, caps | so->managed, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&so->lock);
}
