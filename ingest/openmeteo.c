/*
 * openmeteo.c -- Open-Meteo JSON parsing with jansson; contract in
 * openmeteo.h.
 *
 * How it works: the body is parsed whole (bounded size) with duplicate keys
 * rejected.  For each location object the time axis of a section is
 * converted first (any fault there is fatal: values cannot be placed), then
 * every other key of the section is matched to a known variable, its unit
 * checked and converted, and each non-null value handed to the sink.
 */
#include "openmeteo.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sptime.h"

typedef enum { U_DEGC, U_PCT, U_SPEED, U_DEG, U_WM2 } s_kind;

static const struct s_var {
    const char *name;
    s_kind kind;
    bool mean;              /* mean over the preceding interval */
} s_vars[] = {
    {"temperature_2m", U_DEGC, false}, {"cloud_cover", U_PCT, false},
    {"wind_speed_10m", U_SPEED, false}, {"wind_speed_80m", U_SPEED, false},
    {"wind_speed_100m", U_SPEED, false}, {"wind_speed_120m", U_SPEED, false},
    {"wind_speed_180m", U_SPEED, false},
    {"wind_direction_10m", U_DEG, false}, {"wind_direction_80m", U_DEG, false},
    {"wind_direction_100m", U_DEG, false}, {"wind_direction_120m", U_DEG, false},
    {"wind_direction_180m", U_DEG, false},
    {"shortwave_radiation", U_WM2, true}, {"direct_radiation", U_WM2, true},
    {"direct_normal_irradiance", U_WM2, true}, {"diffuse_radiation", U_WM2, true},
    {"global_tilted_irradiance", U_WM2, true},
    {"shortwave_radiation_instant", U_WM2, false}, {"direct_radiation_instant", U_WM2, false},
    {"direct_normal_irradiance_instant", U_WM2, false}, {"diffuse_radiation_instant", U_WM2, false},
    {"global_tilted_irradiance_instant", U_WM2, false},
};

static const char *const s_unit_names[] = {"degC", "%", "m/s", "deg", "W/m2"};

/* Plausible physical range in the canonical unit. */
static const double s_range[][2] = {
    {-90, 70}, {0, 100}, {0, 150}, {0, 360}, {0, 2000},
};

const char *openmeteo_unit(const char *variable)
{
    for (size_t i = 0; i < sizeof s_vars / sizeof s_vars[0]; i++)
        if (strcmp(s_vars[i].name, variable) == 0)
            return s_unit_names[s_vars[i].kind];
    return NULL;
}

/* Factor from the feed's unit to the canonical one; false if not accepted. */
static bool s_unit_factor(s_kind k, const char *unit, double *f)
{
    static const struct { s_kind k; const char *unit; double f; } map[] = {
        {U_DEGC, "°C", 1}, {U_PCT, "%", 1}, {U_DEG, "°", 1}, {U_WM2, "W/m²", 1},
        {U_SPEED, "km/h", 1 / 3.6}, {U_SPEED, "m/s", 1}, {U_SPEED, "mp/h", 0.44704},
        {U_SPEED, "kn", 1852.0 / 3600.0},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].k == k && strcmp(map[i].unit, unit) == 0) {
            *f = map[i].f;
            return true;
        }
    return false;
}

/* Splits `<variable>[_memberNN][_<model>]`.  model points into key. */
static const struct s_var *s_split_key(const char *key, int *member, const char **model)
{
    const struct s_var *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof s_vars / sizeof s_vars[0]; i++) {
        size_t n = strlen(s_vars[i].name);
        if (n > best_len && strncmp(key, s_vars[i].name, n) == 0 && (key[n] == '\0' || key[n] == '_')) {
            best = &s_vars[i];
            best_len = n;
        }
    }
    if (!best)
        return NULL;
    const char *rest = key + best_len;
    *member = 0;
    *model = NULL;
    if (strncmp(rest, "_member", 7) == 0) {
        const char *d = rest + 7;
        int v = 0, nd = 0;
        while (d[nd] >= '0' && d[nd] <= '9' && nd < 3)
            v = v * 10 + (d[nd++] - '0');
        if (nd < 2 || v < 1 || v > 200)
            return NULL;
        *member = v;
        rest = d + nd;
    }
    if (*rest == '\0')
        return best;
    if (*rest != '_' || strlen(rest + 1) < 1 || strlen(rest + 1) > 64)
        return NULL;
    for (const char *p = rest + 1; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return NULL;
    *model = rest + 1;
    return best;
}

typedef struct {
    const char *source;
    const openmeteo_sink *sink;
    openmeteo_stats *st;
    size_t loc;
    int64_t *times;         /* converted time axis of the current section */
    size_t ntimes;
} s_ctx;

static pcf_rc s_refuse(s_ctx *c, const char *field, const char *reason, pcf_error *err)
{
    char msg[256];
    snprintf(msg, sizeof msg, "location %zu: %s", c->loc, reason);
    c->st->rejected++;
    return feed_reject_call(c->sink->reject, c->sink->ctx, 0, field, msg, "", err);
}

/* Converts section.time into c->times. */
static pcf_rc s_time_axis(s_ctx *c, const char *sec, json_t *times, const char *fmt, long offset,
                          pcf_error *err)
{
    if (!json_is_array(times) || json_array_size(times) == 0)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: %s.time missing or empty", c->source, c->loc, sec);
    size_t n = json_array_size(times);
    if (n > OPENMETEO_MAX_TIMES)
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: location %zu: %s has %zu times (limit %d)",
                             c->source, c->loc, sec, n, OPENMETEO_MAX_TIMES);
    bool unix_t = strcmp(fmt, "unixtime") == 0;
    if (!unix_t && strcmp(fmt, "iso8601") != 0)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: %s_units.time '%s' is neither iso8601 nor unixtime",
                             c->source, c->loc, sec, fmt);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(times, i);
        int64_t v;
        if (unix_t) {
            if (!json_is_integer(t))
                goto bad;
            v = json_integer_value(t);
            if (v < -2208988800LL || v > 32503680000LL)
                goto bad;
        } else {
            sptime_civil civ;
            bool has;
            int off;
            if (!json_is_string(t) ||
                sptime_parse_iso(json_string_value(t), json_string_length(t), &civ, &has, &off) != PCF_OK)
                goto bad;
            v = sptime_from_civil(&civ) - (has ? off : offset);
        }
        if (i > 0 && v <= c->times[i - 1])
            return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: %s.time[%zu] does not increase",
                                 c->source, c->loc, sec, i);
        c->times[i] = v;
        continue;
    bad:
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: %s.time[%zu] is not a valid %s time",
                             c->source, c->loc, sec, i, fmt);
    }
    c->ntimes = n;
    return PCF_OK;
}

static pcf_rc s_variable(s_ctx *c, const char *sec, const char *key, json_t *arr, json_t *units, pcf_error *err)
{
    int member;
    const char *model;
    const struct s_var *v = s_split_key(key, &member, &model);
    if (!v)
        return s_refuse(c, key, "unknown variable", err);
    if (!json_is_array(arr) || json_array_size(arr) != c->ntimes)
        return s_refuse(c, key, "not an array as long as time", err);
    const char *unit = json_string_value(json_object_get(units, key));
    if (!unit)
        return s_refuse(c, key, "no unit in the units object", err);
    size_t i;
    json_t *x;
    if (strcmp(unit, "undefined") == 0) {
        json_array_foreach(arr, i, x) {
            if (!json_is_null(x))
                return s_refuse(c, key, "unit 'undefined' with non-null values", err);
        }
        c->st->nulls += (long)c->ntimes;
        return PCF_OK;
    }
    double f;
    if (!s_unit_factor(v->kind, unit, &f)) {
        char why[160];
        snprintf(why, sizeof why, "unit '%.60s' not accepted for %s", unit, v->name);
        return s_refuse(c, key, why, err);
    }
    int interval = v->mean ? (strcmp(sec, "minutely_15") == 0 ? 900 : 3600) : 0;
    json_array_foreach(arr, i, x) {
        if (json_is_null(x)) {
            c->st->nulls++;
            continue;
        }
        if (!json_is_number(x)) {
            pcf_rc rc = s_refuse(c, key, "value is neither a number nor null", err);
            if (rc != PCF_OK)
                return rc;
            continue;
        }
        double val = json_number_value(x) * f;
        if (!isfinite(val) || val < s_range[v->kind][0] || val > s_range[v->kind][1]) {
            char why[160];
            snprintf(why, sizeof why, "value %.6g %s at index %zu outside %g..%g", val,
                     s_unit_names[v->kind], i, s_range[v->kind][0], s_range[v->kind][1]);
            pcf_rc rc = s_refuse(c, key, why, err);
            if (rc != PCF_OK)
                return rc;
            continue;
        }
        wx_value wv = {c->loc, v->name, model, member, c->times[i], val, interval};
        c->st->values++;
        if (c->sink->value) {
            pcf_rc rc = c->sink->value(c->sink->ctx, &wv, err);
            if (rc != PCF_OK)
                return rc;
        }
    }
    return PCF_OK;
}

static pcf_rc s_section(s_ctx *c, json_t *loc, const char *sec, long offset, pcf_error *err)
{
    json_t *data = json_object_get(loc, sec);
    if (!data)
        return PCF_OK;
    char uname[32];
    snprintf(uname, sizeof uname, "%s_units", sec);
    json_t *units = json_object_get(loc, uname);
    if (!json_is_object(data) || !json_is_object(units))
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: %s or %s is not an object",
                             c->source, c->loc, sec, uname);
    const char *fmt = json_string_value(json_object_get(units, "time"));
    if (!fmt)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: %s.time unit missing", c->source, c->loc, uname);
    pcf_rc rc = s_time_axis(c, sec, json_object_get(data, "time"), fmt, offset, err);
    if (rc != PCF_OK)
        return rc;
    const char *key;
    json_t *arr;
    json_object_foreach(data, key, arr) {
        if (strcmp(key, "time") == 0)
            continue;
        if ((rc = s_variable(c, sec, key, arr, units, err)) != PCF_OK)
            return rc;
    }
    return PCF_OK;
}

static pcf_rc s_location(s_ctx *c, json_t *loc, pcf_error *err)
{
    if (!json_is_object(loc))
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu is not a JSON object", c->source, c->loc);
    json_t *e = json_object_get(loc, "error");
    if (json_is_true(e)) {
        const char *why = json_string_value(json_object_get(loc, "reason"));
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: Open-Meteo error: %.300s", c->source, why ? why : "(no reason)");
    }
    json_t *lat = json_object_get(loc, "latitude"), *lon = json_object_get(loc, "longitude");
    json_t *off = json_object_get(loc, "utc_offset_seconds");
    if (!json_is_number(lat) || !json_is_number(lon) || fabs(json_number_value(lat)) > 90 ||
        fabs(json_number_value(lon)) > 180)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: latitude/longitude missing or out of range",
                             c->source, c->loc);
    if (!json_is_integer(off) || json_integer_value(off) < -18 * 3600 || json_integer_value(off) > 18 * 3600)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: location %zu: utc_offset_seconds missing or out of range",
                             c->source, c->loc);
    json_t *elev = json_object_get(loc, "elevation"), *lid = json_object_get(loc, "location_id");
    wx_location wl = {c->loc, json_number_value(lat), json_number_value(lon),
                      json_is_number(elev) ? json_number_value(elev) : NAN,
                      json_is_integer(lid) ? (long)json_integer_value(lid) : 0};
    pcf_rc rc = PCF_OK;
    if (c->sink->location && (rc = c->sink->location(c->sink->ctx, &wl, err)) != PCF_OK)
        return rc;
    long offset = (long)json_integer_value(off);
    if ((rc = s_section(c, loc, "hourly", offset, err)) != PCF_OK)
        return rc;
    return s_section(c, loc, "minutely_15", offset, err);
}

pcf_rc openmeteo_parse(const char *buf, size_t len, const char *source,
                       const openmeteo_sink *sink, openmeteo_stats *stats, pcf_error *err)
{
    openmeteo_stats local;
    s_ctx c = {.source = source, .sink = sink, .st = stats ? stats : &local};
    memset(c.st, 0, sizeof *c.st);
    if (len > OPENMETEO_MAX_BYTES)
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: body of %zu bytes exceeds %zu", source, len, OPENMETEO_MAX_BYTES);
    if (len == 0)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s: empty body", source);
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: malformed JSON: %s", source, jerr.line, jerr.text);
    c.times = malloc(OPENMETEO_MAX_TIMES * sizeof *c.times);
    pcf_rc rc = PCF_OK;
    if (!c.times) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", source);
    } else if (json_is_array(root)) {
        size_t n = json_array_size(root);
        if (n == 0 || n > OPENMETEO_MAX_LOCATIONS)
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s: %zu locations (expected 1..%d)", source, n,
                               OPENMETEO_MAX_LOCATIONS);
        for (size_t i = 0; rc == PCF_OK && i < n; i++) {
            c.loc = i;
            rc = s_location(&c, json_array_get(root, i), err);
        }
        c.st->locations = n;
    } else {
        rc = s_location(&c, root, err);
        c.st->locations = 1;
    }
    free(c.times);
    json_decref(root);
    return rc;
}
