/*
 * log.c -- logfmt lines, one write(2) each; see log.h for the format.
 *
 * State is three globals (level, component, fd) set at start-up by the
 * daemon's main before any thread exists; the level is atomic because a
 * test may change it while other threads log.  Nothing here allocates.
 */
#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = PCF_LOG_INFO;
static atomic_int g_fd = 2;
static char g_component[64] = "pcf";

static const char *const s_names[] = { "debug", "info", "warn", "error" };

const char *pcf_log_level_name(pcf_log_level level)
{
    return level >= PCF_LOG_DEBUG && level <= PCF_LOG_ERROR ? s_names[level] : "info";
}

int pcf_log_set_level_name(const char *name)
{
    for (int i = PCF_LOG_DEBUG; i <= PCF_LOG_ERROR; i++)
        if (strcmp(name, s_names[i]) == 0) {
            atomic_store(&g_level, i);
            return 0;
        }
    if (strcmp(name, "warning") == 0) {
        atomic_store(&g_level, PCF_LOG_WARN);
        return 0;
    }
    return -1;
}

void pcf_log_set_level(pcf_log_level level) { atomic_store(&g_level, (int)level); }
pcf_log_level pcf_log_get_level(void) { return (pcf_log_level)atomic_load(&g_level); }
int pcf_log_enabled(pcf_log_level level) { return (int)level >= atomic_load(&g_level); }
void pcf_log_set_fd(int fd) { atomic_store(&g_fd, fd); }

void pcf_log_init(const char *component)
{
    snprintf(g_component, sizeof g_component, "%s", component ? component : "pcf");
    atomic_store(&g_level, PCF_LOG_INFO);
    const char *env = getenv("PCF_LOG_LEVEL");
    if (env && env[0] && pcf_log_set_level_name(env) != 0)
        pcf_log(PCF_LOG_WARN, "unknown PCF_LOG_LEVEL, using info", "value", env, NULL);
}

const char *pcf_log_i(char *buf, size_t size, long long v)
{
    snprintf(buf, size, "%lld", v);
    return buf;
}

const char *pcf_log_f(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.6g", v);
    return buf;
}

/* A bounded appender: once full, further text is dropped and `full` set. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int full;
} sbuf;

static void s_put(sbuf *b, const char *s, size_t n)
{
    if (b->n + n >= b->cap) {
        n = b->cap - 1 - b->n;
        b->full = 1;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void s_puts(sbuf *b, const char *s) { s_put(b, s, strlen(s)); }

static int s_needs_quotes(const char *v)
{
    if (!v || !*v) return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f) return 1;
    return 0;
}

static void s_value(sbuf *b, const char *v)
{
    if (!s_needs_quotes(v)) {
        s_puts(b, v);
        return;
    }
    s_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': s_put(b, "\\\"", 2); break;
        case '\\': s_put(b, "\\\\", 2); break;
        case '\n': s_put(b, "\\n", 2); break;
        case '\r': s_put(b, "\\r", 2); break;
        case '\t': s_put(b, "\\t", 2); break;
        default:
            if (*p < ' ' || *p == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", *p);
                s_puts(b, esc);
            } else {
                s_put(b, (const char *)p, 1);
            }
        }
    }
    s_put(b, "\"", 1);
}

static void s_field(sbuf *b, const char *key, const char *value)
{
    s_put(b, " ", 1);
    s_puts(b, key);
    s_put(b, "=", 1);
    s_value(b, value);
}

size_t pcf_log_format(char *buf, size_t size, pcf_log_level level, const char *msg, const pcf_error *err,
                      va_list va)
{
    sbuf b = { buf, 0, size, 0 };
    if (size == 0) return 0;
    buf[0] = '\0';
    s_puts(&b, "level=");
    s_puts(&b, pcf_log_level_name(level));
    s_field(&b, "component", g_component);
    s_field(&b, "msg", msg);
    if (err) {
        char file[256];
        long line;
        const char *rest = pcf_error_location(err->msg, file, sizeof file, &line);
        if (rest) {
            s_field(&b, "file", file);
            s_field(&b, "line", PCF_LOG_I(line));
        }
        s_field(&b, "error", rest ? rest : err->msg);
        s_field(&b, "rc", pcf_rc_name(err->code));
    }
    for (;;) {
        const char *k = va_arg(va, const char *);
        if (!k) break;
        const char *v = va_arg(va, const char *);
        s_field(&b, k, v);
    }
    if (b.full && size > 4) memcpy(buf + b.n - 3, "...", 3);
    return b.n;
}

static void s_emit(pcf_log_level level, const char *msg, const pcf_error *err, va_list va)
{
    char line[PCF_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    size_t len = (size_t)n + pcf_log_format(line + n, sizeof line - (size_t)n - 1, level, msg, err, va);
    line[len++] = '\n';
    /* one write: a short write to a pipe or terminal is only possible on a
     * signal, and a retried remainder could interleave, so it is dropped */
    ssize_t w;
    do w = write(atomic_load(&g_fd), line, len);
    while (w < 0 && errno == EINTR);
}

void pcf_log(pcf_log_level level, const char *msg, ...)
{
    if (!pcf_log_enabled(level)) return;
    va_list va;
    va_start(va, msg);
    s_emit(level, msg, NULL, va);
    va_end(va);
}

void pcf_log_error(pcf_log_level level, const char *msg, const pcf_error *err, ...)
{
    if (!pcf_log_enabled(level)) return;
    va_list va;
    va_start(va, err);
    s_emit(level, msg, err, va);
    va_end(va);
}
