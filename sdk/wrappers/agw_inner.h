/* agw_inner.h - how the loadable wrapper drivers load and open the driver
 * they wrap: with the tree's one loader (sdk/loader/ag_loader.h), named by
 * their `inner` and `inner_config` keys. */
#ifndef AGW_INNER_H
#define AGW_INNER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <aerogram/driver.h>

#include "sdk/kit/ag_kit.h"
#include "sdk/loader/ag_loader.h"
#include "sdk/wrappers/ag_wrap.h"
#include "sdk/wrappers/agw_internal.h"

struct agw_inner {
	struct ag_driver *drv;                /* the loaded inner driver */
	const struct aerogram_driver *driver; /* its descriptor (the loader's copy) */
	struct aerogram_store *store;
	struct aerogram_config_entry *config; /* inner_config, split */
	size_t n_config;
	char *config_text;
};

/* Loads `inner` (a name looked up as aerogram_<name>.so in the directory of
 * the .so containing `self`, or a path), checks its ABI, and opens it with
 * `inner_config` ("key=value;key=value", may be NULL). On failure writes one
 * line into err and returns a negative AEROGRAM_E* code. The caller closes
 * *out with agw_inner_close. */
int agw_inner_open(const struct aerogram_host *outer, const char *inner, const char *inner_config,
                   const void *self, struct agw_inner **out, char *err, size_t errlen);
/* Closes the inner store and unloads its driver. */
void agw_inner_close(struct agw_inner *in);

/* Makes a wrapper around an open inner pair: agw_fault_new or agw_count_new. */
typedef struct agw_wrapper *(*agw_wrapper_new_fn)(const struct aerogram_driver *inner,
                                                  struct aerogram_store *inner_store);
/* The common start of a loadable wrapper's open: loads the driver named by
 * the `inner` and `inner_config` keys of `config` (as agw_inner_open) and
 * wraps its store with `make`. On success the caller owns *inner and *w
 * (agw_free the wrapper, then agw_inner_close); on failure both are NULL,
 * err holds one line and a negative AEROGRAM_E* code is returned. */
int agw_inner_wrap(const struct aerogram_host *outer, const struct aerogram_config_entry *config,
                   size_t n_config, const void *self, agw_wrapper_new_fn make,
                   struct agw_inner **inner, struct agw_wrapper **w, char *err, size_t errlen);

/*
 * A loadable wrapper .so: its descriptor, and what keeps the descriptor's
 * capability bits true. The descriptor is one object per .so, but each store
 * opened from it wraps its own inner driver: the bits in `managed` are set,
 * at each open, to what the inner drivers of the stores open at that moment
 * all offer (the host reads them after open). Its address, as any of the
 * .so, also tells dladdr where the .so lives (agw_inner_wrap's `self`).
 * Define one per .so with AGW_LOADABLE_DRIVER.
 */
struct agw_loadable {
	struct aerogram_driver driver; /* not const: its capabilities vary */
	pthread_mutex_t lock;
	unsigned n_open;
	uint64_t managed;
};
/* A store opened over an inner driver offering `offered`: updates the bits. */
void agw_loadable_opened(struct agw_loadable *so, uint64_t offered);
/* A store of this .so closed. */
void agw_loadable_closed(struct agw_loadable *so);

/* Defines `var` for a wrapper named `name` with its configuration `keys` and
 * its `open`, the forwarding methods and the capability bits `caps` (which
 * follow the inner drivers), and exports its descriptor. */
#define AGW_LOADABLE_DRIVER(var, name_, caps, keys, open_)            \
	static struct agw_loadable var = {                            \
		.driver = {                                           \
			AEROGRAM_DRIVER_HEADER,                       \
			.name = name_,                                \
			.version = "1.1",                             \
			.capabilities = caps,                         \
			.config_keys = keys,                          \
			.open = open_,                                \
			AGW_FORWARD_METHODS,                          \
		},                                                    \
		.lock = PTHREAD_MUTEX_INITIALIZER,                    \
		.managed = caps,                                      \
	};                                                            \
	AEROGRAM_DRIVER_EXPORT(var.driver)

#endif
