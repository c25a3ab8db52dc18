/*
 * testlog.c -- capturing log.h's lines; see testlog.h.
 */
#include "testlog.h"

#include <criterion/criterion.h>
#include <unistd.h>

#include "log.h"

void testlog_capture(int fds[2])
{
    cr_assert_eq(pipe(fds), 0);
    pcf_log_set_fd(fds[1]);
}

size_t testlog_drain(int fds[2], char *out, size_t size)
{
    pcf_log_set_fd(2);
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fds[0], out + n, size - 1 - n)) > 0) n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    return n;
}
