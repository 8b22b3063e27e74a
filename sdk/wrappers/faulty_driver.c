/* faulty_driver.c - aerogram_faulty.so: the fault-injecting wrapper as a
 * loadable driver, steered by a control file (format in ag_wrap.h). */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sdk/wrappers/agw_inner.h"
#include "sdk/wrappers/agw_internal.h"

/* The capabilities this .so's descriptor passes on from its inner drivers. */
#define FAULTY_CAPS \
	(AEROGRAM_CAP_CONDITIONAL | AEROGRAM_CAP_SNAPSHOT_READS)
static struct agw_loadable faulty_so;

struct faulty {
	struct agw_inner *inner;
	const struct aerogram_host *host;
	char *control_file;
	pthread_mutex_t lock; /* guards the file identity below and the re-read */
	int have_stat;
	struct stat last;
};

static int parse_ops(const char *text, unsigned *mask)
{
	*mask = 0;
	if (strcmp(text, "all") == 0) {
		*mask = AGW_ALL;
		return 0;
	}
	if (strcmp(text, "writes") == 0) {
		/* a full disk: every call that stores or deletes, reads still work */
		*mask = AGW_MASK(AGW_ROW_INSERT) | AGW_MASK(AGW_ROW_DELETE) | AGW_MASK(AGW_BLOB_PUT) |
		        AGW_MASK(AGW_BLOB_COPY) | AGW_MASK(AGW_BLOB_DELETE) | AGW_MASK(AGW_ROW_INSERT_IF);
		return 0;
	}
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", text);
	char *save = NULL;
	for (char *op = strtok_r(buf, ",", &save); op; op = strtok_r(NULL, ",", &save)) {
		int n = agw_op_from_name(op);
		if (n < 0)
			return -1;
		*mask |= AGW_MASK(n);
	}
	return *mask ? 0 : -1;
}

static int parse_status(const char *text, int *status)
{
	static const struct {
		const char *name;
		int status;
	} names[] = {
		{ "notfound", AEROGRAM_ENOTFOUND }, { "conflict", AEROGRAM_ECONFLICT },
		{ "unavailable", AEROGRAM_EUNAVAILABLE }, { "inval", AEROGRAM_EINVAL },
		{ "perm", AEROGRAM_EPERM }, { "toobig", AEROGRAM_ETOOBIG },
		{ "internal", AEROGRAM_EINTERNAL }, { "notsup", AEROGRAM_ENOTSUP },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(names[i].name, text) == 0) {
			*status = names[i].status;
			return 0;
		}
	}
	return -1;
}

/* Applies one line of the control file; returns -1 when it is malformed. */
static int apply_line(struct agw_wrapper *w, char *line)
{
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';
	char *words[6] = { 0 };
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == 6)
			return -1;
		words[n++] = t;
	}
	if (n == 0)
		return 0;
	unsigned mask;
	int status;
	char *end;
	if (strcmp(words[0], "ok") == 0 && n == 1) {
		agw_fault_clear(w);
		return 0;
	}
	if (n < 2 || parse_ops(words[1], &mask) != 0)
		return -1;
	if (strcmp(words[0], "fail") == 0 && n >= 3 && n <= 5) {
		if (parse_status(words[2], &status) != 0)
			return -1;
		double p = 1.0;
		unsigned long long seed = 1;
		if (n >= 4 && ((p = strtod(words[3], &end)), *end != '\0' || p < 0 || p > 1))
			return -1;
		if (n == 5 && ((seed = strtoull(words[4], &end, 10)), *end != '\0'))
			return -1;
		agw_fault_fail(w, mask, status, p, seed);
		return 0;
	}
	if (strcmp(words[0], "fail_next") == 0 && n == 4) {
		unsigned long count = strtoul(words[3], &end, 10);
		if (parse_status(words[2], &status) != 0 || *end != '\0')
			return -1;
		agw_fault_fail_next(w, mask, status, (unsigned)count);
		return 0;
	}
	if (strcmp(words[0], "fail_after_apply") == 0 && (n == 2 || n == 3)) {
		double p = 1.0;
		if (n == 3 && ((p = strtod(words[2], &end)), *end != '\0' || p < 0 || p > 1))
			return -1;
		agw_fault_fail_after_apply(w, mask, p);
		return 0;
	}
	if (strcmp(words[0], "delay") == 0 && n == 3) {
		unsigned long ms = strtoul(words[2], &end, 10);
		if (*end != '\0')
			return -1;
		agw_fault_delay(w, mask, (uint32_t)ms);
		return 0;
	}
	return -1;
}

static void reload(struct agw_wrapper *w, struct faulty *f)
{
	agw_fault_clear(w);
	FILE *fp = fopen(f->control_file, "r");
	if (fp == NULL)
		return;
	char line[512];
	int lineno = 0;
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		char copy[512];
		snprintf(copy, sizeof(copy), "%s", line);
		if (apply_line(w, line) != 0) {
			copy[strcspn(copy, "\r\n")] = '\0';
			agk_log(f->host, AEROGRAM_LOG_WARNING, "%s:%d: ignoring malformed rule '%s'",
			           f->control_file, lineno, copy);
		}
	}
	fclose(fp);
}

/* Before every call: re-read the control file when it changed. */
static void check_control_file(struct agw_wrapper *w, void *ctx)
{
	struct faulty *f = ctx;
	struct stat st;
	int exists = stat(f->control_file, &st) == 0;
	pthread_mutex_lock(&f->lock);
	int changed;
	if (!exists)
		changed = f->have_stat;
	else
		changed = !f->have_stat || st.st_ino != f->last.st_ino || st.st_size != f->last.st_size ||
		          st.st_mtim.tv_sec != f->last.st_mtim.tv_sec ||
		          st.st_mtim.tv_nsec != f->last.st_mtim.tv_nsec;
	if (changed) {
		f->have_stat = exists;
		if (exists)
			f->last = st;
		reload(w, f);
	}
	pthread_mutex_unlock(&f->lock);
}

/* Parses the hide_caps key: capability names separated by commas. */
static int parse_caps(const char *text, uint64_t *mask)
{
	static const struct {
		const char *name;
		uint64_t bit;
	} names[] = {
		{ "conditional", AEROGRAM_CAP_CONDITIONAL },
		{ "snapshot_reads", AEROGRAM_CAP_SNAPSHOT_READS },
	};
	*mask = 0;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", text);
	char *save = NULL;
	for (char *cap = strtok_r(buf, ", ", &save); cap; cap = strtok_r(NULL, ", ", &save)) {
		size_t i = 0;
		while (i < sizeof(names) / sizeof(names[0]) && strcmp(names[i].name, cap) != 0)
			i++;
		if (i == sizeof(names) / sizeof(names[0]))
			return -1;
		*mask |= names[i].bit;
	}
	return 0;
}

static void faulty_close(struct agw_wrapper *w, void *ctx)
{
	struct faulty *f = ctx;
	agw_inner_close(f->inner);
	agw_loadable_closed(&faulty_so);
	pthread_mutex_destroy(&f->lock);
	free(f->control_file);
	free(f);
	agw_free(w);
}

static int faulty_open(const struct aerogram_host *host, const struct aerogram_config_entry *config,
                       size_t n_config, struct aerogram_store **out, char *errbuf, size_t errlen)
{
	*out = NULL;
	struct faulty *f = agk_store_new(sizeof(*f), "faulty", errbuf, errlen);
	if (f == NULL)
		return AEROGRAM_EINTERNAL;
	pthread_mutex_init(&f->lock, NULL);
	f->host = host;
	uint64_t hidden = 0;
	const char *hide = agk_config_value(config, n_config, "hide_caps");
	if (hide != NULL && parse_caps(hide, &hidden) != 0) {
		snprintf(errbuf, errlen,
		         "hide_caps '%s' is not a list of conditional, snapshot_reads", hide);
		pthread_mutex_destroy(&f->lock);
		free(f);
		return AEROGRAM_EINVAL;
	}
	const char *cf = agk_config_value(config, n_config, "control_file");
	if (cf != NULL && (f->control_file = strdup(cf)) == NULL) {
		free(f);
		snprintf(errbuf, errlen, "out of memory");
		return AEROGRAM_EINTERNAL;
	}
	struct agw_wrapper *w;
	int rc = agw_inner_wrap(host, config, n_config, &faulty_so, agw_fault_new, &f->inner, &w,
	                        errbuf, errlen);
	if (rc != 0) {
		pthread_mutex_destroy(&f->lock);
		free(f->control_file);
		free(f);
		return rc;
	}
	if (f->control_file)
		agw_set_before_call(w, check_control_file, f);
	agw_fault_hide_caps(w, hidden);
	agw_loadable_opened(&faulty_so,
	                       agw_offered_caps(f->inner->driver) & ~hidden);
	agw_set_on_close(w, faulty_close, f);
	*out = agw_store(w);
	return 0;
}

static const char *const faulty_keys[] = { "inner", "inner_config", "control_file", "hide_caps",
	                                    NULL };

AGW_LOADABLE_DRIVER(faulty_so, "faulty", FAULTY_CAPS, faulty_keys, faulty_open)
