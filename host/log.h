/* log.h - the daemon's log: stderr by default, syslog with aerogramd -s. */
#ifndef AG_HOST_LOG_H
#define AG_HOST_LOG_H

#include <stddef.h>

#include <aerogram/driver.h>

/* Sends every following line to syslog (facility mail) instead of stderr. */
void ag_log_use_syslog(void);
/* Lines above this level are not written ([log] level; default info).
 * Set at start-up, before threads start. */
extern int ag_log_max_level;
void ag_log_set_level(int level);
/* Nonzero when a line at `level` would be written: test it before
 * building a costly debug line. */
#define ag_log_enabled(level) ((int)(level) <= ag_log_max_level)
/* Logs one line at `level`; safe from any thread. */
void ag_log(enum aerogram_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The ag_log_fn the driver loader uses for a driver's lines (tag = driver name). */
void ag_log_driver_line(enum aerogram_log_level level, const char *tag, const char *message);

/* Writes a printable form of `len` bytes that came from a client into out
 * (NUL-terminated, cut to fit): printable ASCII stays, anything else and
 * '\\' and '"' become \xNN, so no control sequence or line break reaches a
 * terminal or a log parser. 4 * len + 1 bytes hold it all. */
void ag_log_escape(char *out, size_t outlen, const char *text, size_t len);

#define ag_log_error(...) ag_log(AEROGRAM_LOG_ERROR, __VA_ARGS__)
#define ag_log_warn(...) ag_log(AEROGRAM_LOG_WARNING, __VA_ARGS__)
#define ag_log_info(...) ag_log(AEROGRAM_LOG_INFO, __VA_ARGS__)
#define ag_log_debug(...) ag_log(AEROGRAM_LOG_DEBUG, __VA_ARGS__)

#endif
