/*
 * testlog.h -- what log.h writes, captured through a pipe for tests that
 * check log lines (the lines are short: the pipe holds them until read).
 */
#ifndef PCF_TESTLOG_H
#define PCF_TESTLOG_H

#include <stddef.h>

/* Sends log.h's lines into a new pipe; fds receives its ends. */
void testlog_capture(int fds[2]);

/* Puts log.h back on stderr and copies what was written into out
 * (NUL-terminated); returns its length. */
size_t testlog_drain(int fds[2], char *out, size_t size);

#endif
