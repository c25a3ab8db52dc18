/*
 * ingest_config.c -- INI parsing and checking of the worker configuration;
 * the file format is in ingest_config.h.
 *
 * libinih calls s_handler for every key; the handler stores the first error
 * (with the line inih reports) and stops the parse.  Checks that need the
 * whole section (a kind with its required keys) run after parsing.
 */
#include "ingest_config.h"

#include <errno.h>
#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

static const char *const s_kinds[] = {"scada", "outage_json", "outage_ukpn_csv", "openmeteo", "scada_zmq"};

const char *ingest_kind_name(ingest_kind k)
{
    return (size_t)k < sizeof s_kinds / sizeof s_kinds[0] ? s_kinds[k] : "?";
}

typedef struct {
    ingest_config *cfg;
    const char *path;
    pcf_error *err;
    int failed;
    const ingest_source *last_url;  /* source whose url the previous key set */
} s_ctx;

static int s_fail(s_ctx *c, const char *fmt, const char *a, const char *b)
{
    char why[400];
    snprintf(why, sizeof why, fmt, a, b);
    pcf_error_set(c->err, PCF_ERR_PARSE, "%s: %s", c->path, why);
    c->failed = 1;
    return 0;
}

static bool s_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

static int s_int(s_ctx *c, const char *sec, const char *name, const char *v, long lo, long hi, int *out)
{
    long x;
    if (parse_long(v, strlen(v), &x) != PCF_OK || x < lo || x > hi) {
        char what[200];
        snprintf(what, sizeof what, "[%s] %s", sec, name);
        char range[64];
        snprintf(range, sizeof range, "an integer %ld..%ld", lo, hi);
        return s_fail(c, "%s must be %s", what, range);
    }
    *out = (int)x;
    return 1;
}

static int s_copy(s_ctx *c, const char *sec, const char *name, const char *v, char *dst, size_t cap)
{
    size_t n = strlen(v);
    if (n >= cap) {
        char what[200];
        snprintf(what, sizeof what, "[%s] %s", sec, name);
        return s_fail(c, "%s is too long%s", what, "");
    }
    memcpy(dst, v, n + 1);
    return 1;
}

static ingest_source *s_source(s_ctx *c, const char *name)
{
    ingest_config *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nsources; i++)
        if (strcmp(cfg->sources[i].name, name) == 0)
            return &cfg->sources[i];
    if (cfg->nsources == INGEST_MAX_SOURCES)
        return NULL;
    ingest_source *s = &cfg->sources[cfg->nsources++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->poll_seconds = 60;
    s->timeout_seconds = 30;
    s->retries = 3;
    s->backoff_ms = 1000;
    return s;
}

static int s_locations(s_ctx *c, ingest_source *s, const char *v)
{
    s->nlocations = 0;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        if (s->nlocations == INGEST_MAX_LOCATIONS || n == 0 || n > 64)
            return s_fail(c, "[source %s] locations: too many or too long (max 32 ids of 64 bytes)%s", s->name, "");
        memcpy(s->locations[s->nlocations], p, n);
        s->locations[s->nlocations][n] = '\0';
        if (!s_name_ok(s->locations[s->nlocations]))
            return s_fail(c, "[source %s] locations: bad id '%s'", s->name, s->locations[s->nlocations]);
        s->nlocations++;
        p = e;
    }
    return 1;
}

static int s_handler(void *user, const char *section, const char *name, const char *value)
{
    s_ctx *c = user;
    if (c->failed)
        return 0;
    if (strcmp(section, "database") == 0) {
        if (strcmp(name, "conninfo") == 0)
            return s_copy(c, section, name, value, c->cfg->conninfo, sizeof c->cfg->conninfo);
        return s_fail(c, "[database]: unknown key '%s'%s", name, "");
    }
    if (strcmp(section, "metrics") == 0) {
        if (strcmp(name, "port") == 0)
            return s_int(c, section, name, value, 0, 65535, &c->cfg->metrics_port);
        if (strcmp(name, "address") == 0)
            return s_copy(c, section, name, value, c->cfg->metrics_address, sizeof c->cfg->metrics_address);
        return s_fail(c, "[metrics]: unknown key '%s'%s", name, "");
    }
    if (strncmp(section, "source ", 7) != 0)
        return s_fail(c, "unknown section [%s]%s", section, "");
    const char *sname = section + 7;
    if (!s_name_ok(sname))
        return s_fail(c, "[%s]: source name must be 1..64 of A-Z a-z 0-9 _ . -%s", section, "");
    ingest_source *s = s_source(c, sname);
    if (!s)
        return s_fail(c, "more than 64 sources%s%s", "", "");
    if (strcmp(name, "kind") == 0) {
        for (size_t i = 0; i < sizeof s_kinds / sizeof s_kinds[0]; i++)
            if (strcmp(value, s_kinds[i]) == 0) {
                s->kind = (ingest_kind)i;
                s->has_kind = 1;
                return 1;
            }
        return s_fail(c, "[%s] kind '%s' is not scada, outage_json, outage_ukpn_csv, openmeteo or scada_zmq",
                      section, value);
    }
    if (strcmp(name, "curve_secret_key") == 0)
        return s_copy(c, section, name, value, s->curve_secret_key, sizeof s->curve_secret_key);
    if (strcmp(name, "curve_allowlist") == 0)
        return s_copy(c, section, name, value, s->curve_allowlist, sizeof s->curve_allowlist);
    if (strcmp(name, "endpoint") == 0)
        return s_copy(c, section, name, value, s->endpoint, sizeof s->endpoint);
    if (strcmp(name, "directory") == 0)
        return s_copy(c, section, name, value, s->directory, sizeof s->directory);
    if (strcmp(name, "url") == 0) {
        /* inih reads lines of at most 200 bytes: a long URL is written as
         * indented continuation lines, which inih hands over as further
         * values of the same key, to be joined without separators. */
        bool cont = c->last_url == s;
        size_t have = cont ? strlen(s->url) : 0;
        c->last_url = s;
        return s_copy(c, section, name, value, s->url + have, sizeof s->url - have);
    }
    c->last_url = NULL;
    if (strcmp(name, "model") == 0) {
        if (!s_name_ok(value))
            return s_fail(c, "[%s] model '%s' is not a valid name", section, value);
        return s_copy(c, section, name, value, s->model, sizeof s->model);
    }
    if (strcmp(name, "locations") == 0)
        return s_locations(c, s, value);
    if (strcmp(name, "poll_seconds") == 0)
        return s_int(c, section, name, value, 1, 86400, &s->poll_seconds);
    if (strcmp(name, "timeout_seconds") == 0)
        return s_int(c, section, name, value, 1, 600, &s->timeout_seconds);
    if (strcmp(name, "retries") == 0)
        return s_int(c, section, name, value, 0, 10, &s->retries);
    if (strcmp(name, "backoff_ms") == 0)
        return s_int(c, section, name, value, 0, 600000, &s->backoff_ms);
    return s_fail(c, "[%s]: unknown key '%s'", section, name);
}

static pcf_rc s_check(const char *path, ingest_config *cfg, pcf_error *err)
{
    for (size_t i = 0; i < cfg->nsources; i++) {
        ingest_source *s = &cfg->sources[i];
        if (!s->has_kind)
            return pcf_error_set(err, PCF_ERR_PARSE, "%s: [source %s] has no kind", path, s->name);
        if (s->kind == INGEST_OPENMETEO) {
            if (!s->url[0] || s->nlocations == 0 || !s->model[0])
                return pcf_error_set(err, PCF_ERR_PARSE, "%s: [source %s] openmeteo needs url, locations and model",
                                     path, s->name);
        } else if (s->kind == INGEST_SCADA_ZMQ) {
            if (!s->endpoint[0])
                return pcf_error_set(err, PCF_ERR_PARSE, "%s: [source %s] scada_zmq needs an endpoint", path, s->name);
            if (!s->curve_secret_key[0] != !s->curve_allowlist[0])
                return pcf_error_set(err, PCF_ERR_PARSE,
                                     "%s: [source %s] curve_secret_key and curve_allowlist go together", path, s->name);
        } else if (!s->directory[0]) {
            return pcf_error_set(err, PCF_ERR_PARSE, "%s: [source %s] %s needs a directory", path, s->name,
                                 ingest_kind_name(s->kind));
        }
    }
    return PCF_OK;
}

pcf_rc ingest_config_load(const char *path, ingest_config *cfg, pcf_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->metrics_port = INGEST_METRICS_PORT;
    snprintf(cfg->metrics_address, sizeof cfg->metrics_address, "127.0.0.1");
    FILE *f = fopen(path, "r");
    if (!f)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    s_ctx c = {cfg, path, err, 0, NULL};
    int rc = ini_parse_file(f, s_handler, &c);
    fclose(f);
    if (rc != 0) {
        /* inih reports the first failing line; put it in the message. */
        char msg[PCF_ERROR_MSG_MAX];
        if (c.failed) {
            const char *rest = err->msg + strlen(path) + 2 <= err->msg + strlen(err->msg)
                               ? err->msg + strlen(path) + 2 : err->msg;
            snprintf(msg, sizeof msg, "%.200s:%d: %.300s", path, rc, rest);
        } else {
            snprintf(msg, sizeof msg, "%.200s:%d: syntax error", path, rc);
        }
        return pcf_error_set(err, PCF_ERR_PARSE, "%s", msg);
    }
    return s_check(path, cfg, err);
}

const ingest_source *ingest_config_find(const ingest_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nsources; i++)
        if (strcmp(cfg->sources[i].name, name) == 0)
            return &cfg->sources[i];
    return NULL;
}
