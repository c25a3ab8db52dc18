/* test_log.c -- logfmt lines: exact text, quoting and escaping, error
 * locations as fields, level filtering, and one write per line. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "testlog.h"

/* The line without its "ts=... " prefix, after checking the prefix's shape. */
static const char *s_body(const char *line)
{
    cr_assert(strncmp(line, "ts=", 3) == 0, "%s", line);
    /* ts=2026-12-03T13:00:00.123Z */
    cr_assert_eq(strlen(line) > 28, 1);
    cr_assert_eq(line[13], 'T', "%s", line);
    cr_assert_eq(line[26], 'Z', "%s", line);
    cr_assert_eq(line[27], ' ', "%s", line);
    return line + 28;
}

Test(log, fields_quoting_and_escaping)
{
    pcf_log_init("ingest");
    int fds[2];
    testlog_capture(fds);
    pcf_log(PCF_LOG_INFO, "file loaded", "source", "hist", "rows", PCF_LOG_I(12), "ratio", PCF_LOG_F(0.25),
            "name", "a b.csv", "q", "say \"hi\"", "eq", "a=b", "nl", "x\ny\tz\\", "empty", "", "null", NULL,
            "ctl", "\x01", NULL);
    char out[2048];
    testlog_drain(fds, out, sizeof out);
    cr_assert_str_eq(s_body(out),
                     "level=info component=ingest msg=\"file loaded\" source=hist rows=12 ratio=0.25 "
                     "name=\"a b.csv\" q=\"say \\\"hi\\\"\" eq=\"a=b\" nl=\"x\\ny\\tz\\\\\" empty=\"\" null=\"\" "
                     "ctl=\"\\x01\"\n");
}

Test(log, error_location_becomes_fields)
{
    pcf_log_init("ingest");
    pcf_error e;
    pcf_error_set(&e, PCF_ERR_PARSE, "in/a.csv:17: 'x' is not a number");
    int fds[2];
    testlog_capture(fds);
    pcf_log_error(PCF_LOG_ERROR, "file refused", &e, "source", "hist", NULL);
    pcf_error_set(&e, PCF_ERR_DB, "could not connect: refused");
    pcf_log_error(PCF_LOG_WARN, "database unavailable", &e, NULL);
    char out[2048];
    testlog_drain(fds, out, sizeof out);
    char *second = strchr(out, '\n');
    cr_assert_not_null(second);
    *second++ = '\0';
    cr_assert_str_eq(s_body(out), "level=error component=ingest msg=\"file refused\" file=in/a.csv line=17 "
                                  "error=\"'x' is not a number\" rc=\"parse error\" source=hist");
    cr_assert_str_eq(s_body(second), "level=warn component=ingest msg=\"database unavailable\" "
                                     "error=\"could not connect: refused\" rc=\"database error\"\n");
}

Test(log, level_threshold_from_env_and_flag)
{
    setenv("PCF_LOG_LEVEL", "warn", 1);
    pcf_log_init("forecaster");
    unsetenv("PCF_LOG_LEVEL");
    cr_assert_eq(pcf_log_get_level(), PCF_LOG_WARN);
    int fds[2];
    testlog_capture(fds);
    pcf_log(PCF_LOG_DEBUG, "hidden debug", NULL);
    pcf_log(PCF_LOG_INFO, "hidden info", NULL);
    pcf_log(PCF_LOG_WARN, "shown warn", NULL);
    pcf_log(PCF_LOG_ERROR, "shown error", NULL);
    cr_assert_eq(pcf_log_set_level_name("loud"), -1);
    cr_assert_eq(pcf_log_get_level(), PCF_LOG_WARN);
    cr_assert_eq(pcf_log_set_level_name("debug"), 0);       /* what --log-level does */
    pcf_log(PCF_LOG_DEBUG, "shown debug", NULL);
    char out[2048];
    testlog_drain(fds, out, sizeof out);
    cr_assert_null(strstr(out, "hidden"), "%s", out);
    cr_assert_not_null(strstr(out, "level=warn component=forecaster msg=\"shown warn\"\n"), "%s", out);
    cr_assert_not_null(strstr(out, "level=error component=forecaster msg=\"shown error\"\n"), "%s", out);
    cr_assert_not_null(strstr(out, "level=debug component=forecaster msg=\"shown debug\"\n"), "%s", out);
    pcf_log_set_level(PCF_LOG_INFO);
}

Test(log, long_line_is_truncated_not_split)
{
    pcf_log_init("publish");
    static char big[3 * PCF_LOG_LINE_MAX];
    memset(big, 'a', sizeof big - 1);
    int fds[2];
    testlog_capture(fds);
    pcf_log(PCF_LOG_INFO, "big", "v", big, NULL);
    char *out = malloc(4 * PCF_LOG_LINE_MAX);
    size_t n = testlog_drain(fds, out, 4 * PCF_LOG_LINE_MAX);
    cr_assert_leq(n, PCF_LOG_LINE_MAX);
    cr_assert_eq(out[n - 1], '\n');
    cr_assert_eq(memcmp(out + n - 4, "...", 3), 0);
    cr_assert_null(memchr(out, '\n', n - 1));
    free(out);
}

static void *s_spam(void *arg)
{
    for (int i = 0; i < 200; i++) pcf_log(PCF_LOG_INFO, "concurrent", "thread", arg, "pad",
                                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", NULL);
    return NULL;
}

Test(log, concurrent_threads_do_not_interleave)
{
    pcf_log_init("t");
    char path[] = "/tmp/pcf-log-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    pcf_log_set_fd(fd);
    pthread_t t[4];
    const char *names[4] = { "a", "b", "c", "d" };
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, s_spam, (void *)names[i]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    pcf_log_set_fd(2);
    close(fd);
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        const char *b = s_body(line);
        cr_assert(strncmp(b, "level=info component=t msg=concurrent thread=", 45) == 0, "%s", line);
        cr_assert_eq(strlen(b), 45 + 1 + 5 + 56 + 1, "%s", line);
        n++;
    }
    fclose(f);
    unlink(path);
    cr_assert_eq(n, 800);
}
