/*
 * log.h -- structured log lines (logfmt) on stderr for every daemon.
 *
 *   ts=2026-12-03T13:00:00.123Z level=info component=ingest msg="file loaded" source=hist rows=12
 *
 * A line is the time (UTC, milliseconds), the level, the component set by
 * pcf_log_init(), a message, then key=value fields given as a NULL-ended
 * list of (key, value) strings.  Values (and the message) are quoted when
 * empty or when they hold a space, '"', '=' or a control character; inside
 * quotes '\' and '"' are backslash-escaped and newline, CR and tab become
 * \n, \r, \t (other control bytes \xHH), so one event is always one line.
 * Keys are program constants and are written as given.
 *
 * The whole line is built in memory and written with a single write(2):
 * lines of concurrent threads and of processes sharing the stream do not
 * interleave (writes to a pipe up to PIPE_BUF are atomic; longer lines are
 * truncated to PCF_LOG_LINE_MAX and end in "...").
 *
 * Numbers are passed as strings; PCF_LOG_I / PCF_LOG_F format one into a
 * compound literal that lives until the end of the enclosing block:
 *
 *   pcf_log(PCF_LOG_INFO, "run committed", "zone", z, "run", PCF_LOG_I(id),
 *           "total_s", PCF_LOG_F(t), NULL);
 *
 * pcf_log_error() turns a pcf_error (error.h) into fields: a message that
 * starts with a location "file:line: " keeps it as file=... line=... and
 * the rest becomes error="...", with the code as rc="parse error".
 *
 * The threshold comes from PCF_LOG_LEVEL (debug|info|warn|error) at
 * pcf_log_init(), and a --log-level flag may override it with
 * pcf_log_set_level_name().  Library code below the daemons keeps
 * returning pcf_error and does not log (error.h).
 */
#ifndef PCF_LOG_H
#define PCF_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "error.h"

typedef enum pcf_log_level { PCF_LOG_DEBUG, PCF_LOG_INFO, PCF_LOG_WARN, PCF_LOG_ERROR } pcf_log_level;

#define PCF_LOG_LINE_MAX 4096

/* Sets the component name (copied, e.g. "ingest") and the level from
 * PCF_LOG_LEVEL; an unknown PCF_LOG_LEVEL is reported on stderr and info
 * is used.  May be called again (tests). */
void pcf_log_init(const char *component);

/* "debug", "info", "warn" (or "warning"), "error": 0 when set, -1 when the
 * name is unknown (the level is then unchanged). */
int pcf_log_set_level_name(const char *name);
void pcf_log_set_level(pcf_log_level level);
pcf_log_level pcf_log_get_level(void);
int pcf_log_enabled(pcf_log_level level);

/* Where lines go (default 2); for tests. */
void pcf_log_set_fd(int fd);

/* Logs msg with the fields: key, value, key, value, ..., NULL.  A NULL
 * value is written as an empty quoted string. */
void pcf_log(pcf_log_level level, const char *msg, ...) __attribute__((sentinel));

/* Logs msg, the error's location and text (see above), then the fields. */
void pcf_log_error(pcf_log_level level, const char *msg, const pcf_error *err, ...) __attribute__((sentinel));

/* Formats one line without the trailing newline or the ts= field into buf
 * (always NUL-terminated); returns its length.  What pcf_log writes after
 * "ts=... ".  va holds the key/value list. */
size_t pcf_log_format(char *buf, size_t size, pcf_log_level level, const char *msg, const pcf_error *err,
                      va_list va);

/* Number formatting for field values, see PCF_LOG_I / PCF_LOG_F. */
const char *pcf_log_i(char *buf, size_t size, long long v);
const char *pcf_log_f(char *buf, size_t size, double v);
#define PCF_LOG_I(v) pcf_log_i((char[24]){0}, 24, (long long)(v))
#define PCF_LOG_F(v) pcf_log_f((char[32]){0}, 32, (double)(v))

/* The level's name as written on a line ("debug", "info", ...). */
const char *pcf_log_level_name(pcf_log_level level);

#endif
