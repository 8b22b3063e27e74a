/* ctl.c - the configuration, driver, store and engine of aerogramctl's
 * subcommands (ctl.h), and the helpers they share. */
#include "host/ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "protocol/agbuf.h"
#include "protocol/mutf7.h"

/* Driver log lines: warnings and errors only, one per line, on stderr
 * (info lines would break the progress display). */
static void driver_log(enum aerogram_log_level level, const char *tag, const char *message)
{
	if (level > AEROGRAM_LOG_WARNING)
		return;
	fprintf(stderr, "aerogramctl: %s%s%s: %s\n", tag ? tag : "", tag ? " " : "",
	        level == AEROGRAM_LOG_ERROR ? "error" : "warning", message);
}

static void engine_log(void *arg, int level, const char *line)
{
	(void)arg;
	if (level > AEROGRAM_LOG_WARNING)
		return;
	fprintf(stderr, "aerogramctl: mail %s: %s\n", level == AEROGRAM_LOG_ERROR ? "error" : "warning", line);
}

int ctl_open_config(struct ctl *c, const char *config_path, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	if (ag_config_load(config_path, &c->config, err, errlen) != 0)
		return -1;
	c->have_config = 1;
	return 0;
}

int ctl_open(struct ctl *c, const char *config_path, char *err, size_t errlen)
{
	if (ctl_open_config(c, config_path, err, errlen) != 0)
		return -1;
	if (ctl_open_store(c, err, errlen) != 0) {
		ctl_close(c);
		return -1;
	}
	return 0;
}

int ctl_open_store(struct ctl *c, char *err, size_t errlen)
{
	if (c->engine != NULL)
		return 0;
	ag_driver_set_log(driver_log);
	if (ag_driver_load(c->config.driver, c->config.driver_dir, c->config.storage, c->config.n_storage,
	                   &c->driver, err, errlen) != 0) {
		c->driver = NULL;
		return -1;
	}
	c->store = ag_driver_store(c->driver);
	/* expunged messages are kept as the daemons keep them (undelete) */
	struct mail_engine_options opt = { .log = engine_log,
		                           .expunge_retention_ms = c->keep_nothing ? 0 :
		                                                   c->config.expunge_retention_s * 1000 };
	int rc = mail_engine_new(c->store, &opt, &c->engine);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the mail engine (error %d)", rc);
		c->engine = NULL;
		ag_driver_unload(c->driver);
		c->driver = NULL;
		c->store = NULL;
		return -1;
	}
	return 0;
}

void ctl_close(struct ctl *c)
{
	if (c->engine != NULL) {
		/* What this process wrote is read by the daemons next: leave
		 * them a checkpoint rather than a long log tail. */
		if (!c->read_only)
			mail_engine_checkpoint_all(c->engine, 10000);
		mail_engine_free(c->engine);
	}
	if (c->driver != NULL)
		ag_driver_unload(c->driver);
	if (c->have_config)
		ag_config_free(&c->config);
	memset(c, 0, sizeof(*c));
}

void ctl_error(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One line, whatever the message holds. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	fprintf(stderr, "aerogramctl: %s\n", line);
}

const char *ctl_strerror(const struct ctl *c, int rc, char *buf, size_t len)
{
	const char *what;
	switch (rc) {
	case AEROGRAM_ENOTFOUND: what = "no such mailbox"; break;
	case MAIL_EEXIST: what = "the mailbox already exists"; break;
	case MAIL_ECHILDREN: what = "the name has mailboxes below it"; break;
	case AEROGRAM_ECONFLICT: what = "a concurrent change got in the way, try again"; break;
	case AEROGRAM_EUNAVAILABLE:
	case AEROGRAM_ETIMEDOUT: what = "the mail store is unavailable, try again later"; break;
	case AEROGRAM_EINVAL: what = "invalid name or request"; break;
	case AEROGRAM_EPERM: what = "the mail store refused the operation"; break;
	case AEROGRAM_ETOOBIG: what = "too large for the mail store"; break;
	case AEROGRAM_ENOTSUP: what = "not supported by the storage driver"; break;
	default: what = "internal error"; break;
	}
	const char *detail = NULL;
	if (c != NULL && c->store != NULL && c->store->driver->error_message != NULL && rc != AEROGRAM_ENOTFOUND &&
	    rc != MAIL_EEXIST && rc != MAIL_ECHILDREN)
		detail = c->store->driver->error_message(c->store->store);
	if (detail != NULL && detail[0] != '\0')
		snprintf(buf, len, "%s (%s)", what, detail);
	else
		snprintf(buf, len, "%s", what);
	return buf;
}

char *ctl_mailbox_name(const char *utf8)
{
	size_t len = strlen(utf8);
	while (len > 1 && utf8[len - 1] == MAIL_DELIMITER)
		len--;
	if (len == 0)
		return NULL;
	struct agbuf out = AGBUF_INIT;
	if (mutf7_encode(utf8, len, &out) != 0) {
		agbuf_free(&out);
		return NULL;
	}
	/* INBOX in any case is INBOX, also as the first level. */
	if (out.len >= 5 && strncasecmp(out.data, "INBOX", 5) == 0 &&
	    (out.data[5] == '\0' || out.data[5] == MAIL_DELIMITER))
		memcpy(out.data, "INBOX", 5);
	return agbuf_steal(&out, NULL);
}

char *ctl_display_name(const char *stored)
{
	struct agbuf out = AGBUF_INIT;
	if (mutf7_decode(stored, strlen(stored), &out) != 0 || out.data == NULL) {
		agbuf_free(&out);
		return strdup(stored);
	}
	return agbuf_steal(&out, NULL);
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	if (interrupted) {
		/* The second one: as if it had not been caught. */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	interrupted = sig;
}

void ctl_catch_interrupt(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_interrupt;
	/* the store calls in flight (files, sockets) go on undisturbed */
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int ctl_interrupted(void)
{
	return interrupted != 0;
}

uint64_t ctl_now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

int ctl_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}
