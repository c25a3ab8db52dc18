/*
 * error.c -- filling pcf_error values; see error.h for the conventions.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

pcf_rc pcf_error_set(pcf_error *err, pcf_rc code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
        err->sqlstate[0] = '\0';
    }
    return code;
}

void pcf_error_clear(pcf_error *err)
{
    if (err) {
        err->code = PCF_OK;
        err->msg[0] = '\0';
        err->sqlstate[0] = '\0';
    }
}

const char *pcf_error_location(const char *msg, char *file, size_t filelen, long *line)
{
    /* source: no spaces, then ':' digits ": " */
    size_t n = strcspn(msg, ": \t\n");
    if (n == 0 || msg[n] != ':' || msg[n + 1] < '0' || msg[n + 1] > '9') return NULL;
    const char *p = msg + n + 1;
    long v = 0;
    while (*p >= '0' && *p <= '9' && v < 100000000) v = v * 10 + (*p++ - '0');
    if (p[0] != ':' || p[1] != ' ' || n >= filelen) return NULL;
    memcpy(file, msg, n);
    file[n] = '\0';
    *line = v;
    return p + 2;
}

const char *pcf_rc_name(pcf_rc code)
{
    switch (code) {
    case PCF_OK: return "ok";
    case PCF_ERR_NOMEM: return "out of memory";
    case PCF_ERR_IO: return "i/o error";
    case PCF_ERR_PARSE: return "parse error";
    case PCF_ERR_INVALID: return "invalid input";
    case PCF_ERR_LIMIT: return "limit exceeded";
    case PCF_ERR_DB: return "database error";
    case PCF_ERR_NOCONV: return "not converged";
    case PCF_ERR_ISLAND: return "network islanded";
    case PCF_ERR_SINGULAR: return "singular matrix";
    case PCF_ERR_NET: return "network transfer error";
    case PCF_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}
