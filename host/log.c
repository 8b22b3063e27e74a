/* log.c - one line per event, to stderr or syslog.
 *
 * Lines are formatted into a local buffer first and written with one call,
 * so lines from worker threads and driver threads never interleave. */
#include "host/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static int use_syslog;
int ag_log_max_level = AEROGRAM_LOG_INFO;

void ag_log_set_level(int level)
{
	ag_log_max_level = level;
}

void ag_log_use_syslog(void)
{
	openlog("aerogramd", LOG_PID | LOG_NDELAY, LOG_MAIL);
	use_syslog = 1;
}

static const char *level_name(enum aerogram_log_level level)
{
	switch (level) {
	case AEROGRAM_LOG_ERROR: return "error";
	case AEROGRAM_LOG_WARNING: return "warning";
	case AEROGRAM_LOG_INFO: return "info";
	default: return "debug";
	}
}

static int syslog_priority(enum aerogram_log_level level)
{
	switch (level) {
	case AEROGRAM_LOG_ERROR: return LOG_ERR;
	case AEROGRAM_LOG_WARNING: return LOG_WARNING;
	case AEROGRAM_LOG_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

static void emit(enum aerogram_log_level level, const char *tag, const char *text)
{
	if ((int)level > ag_log_max_level)
		return;
	if (use_syslog) {
		if (tag != NULL)
			syslog(syslog_priority(level), "%s: %s: %s", level_name(level), tag, text);
		else
			syslog(syslog_priority(level), "%s: %s", level_name(level), text);
		return;
	}
	char line[2048];
	int n;
	if (tag != NULL)
		n = snprintf(line, sizeof(line), "aerogramd: %s: %s: %s\n", level_name(level), tag, text);
	else
		n = snprintf(line, sizeof(line), "aerogramd: %s: %s\n", level_name(level), text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}

void ag_log(enum aerogram_log_level level, const char *fmt, ...)
{
	char text[1536];
	if ((int)level > ag_log_max_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	emit(level, NULL, text);
}

void ag_log_driver_line(enum aerogram_log_level level, const char *tag, const char *message)
{
	emit(level, tag, message);
}

void ag_log_escape(char *out, size_t outlen, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (outlen == 0)
		return;
	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
}
