/*
 * openmeteo.h -- parser for Open-Meteo forecast and ensemble JSON
 * (/v1/forecast, /v1/ensemble), exactly as ../shared/FORMATS.md describes.
 *
 * Input: one response body, a JSON object or (several coordinates) an array
 * of objects; at most OPENMETEO_MAX_BYTES.  The `hourly` and `minutely_15`
 * sections are read, with their `*_units` objects; `current` and `daily`
 * are ignored.
 *
 * Times: `time` units "iso8601" (local time of the response's timezone,
 * without offset) or "unixtime" (seconds).  Open-Meteo writes every local
 * time of a response with the ONE utc_offset_seconds valid when the request
 * was served, even past a clock change (open-meteo issue #261), so the
 * instant is local - utc_offset_seconds for every entry; applying the zone's
 * own rules would create a repeated or missing hour on clock-change days.
 * The times must increase strictly.
 *
 * Variables: keys `<variable>[_memberNN][_<model>]` where <variable> is one
 * the database knows (weather_variable in 002_feeds.sql); member 0 is the
 * plain name (control run).  Values are converted to the canonical unit:
 * wind km/h (default), m/s, mp/h, kn -> m/s; temperature °C; cloud cover %;
 * directions °; radiation W/m².  Radiation (not *_instant) is the mean over
 * the preceding hour (hourly) or 15 minutes (minutely_15): interval_s 3600
 * or 900; everything else is instant (0).  `null` is a missing value
 * (counted, not stored).  A variable with unit "undefined" (the model does
 * not provide it) must be all null and is skipped.
 *
 * Refused (reject callback, parsing goes on): an unknown variable, a unit
 * that is not accepted for the variable, an array of the wrong length, a
 * value that is not a number or null, a value outside the physical range.
 * Errors (nothing should be stored): malformed or truncated JSON,
 * `{"error": true, "reason": ...}` bodies (PCF_ERR_INVALID with the
 * reason), a missing/invalid time axis or utc_offset_seconds, input too big.
 */
#ifndef PCF_OPENMETEO_H
#define PCF_OPENMETEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "feed.h"

#define OPENMETEO_MAX_BYTES ((size_t)64 << 20)
#define OPENMETEO_MAX_TIMES 20000       /* 35 days of 15-minute steps is 3360 */
#define OPENMETEO_MAX_LOCATIONS 1000

typedef struct wx_value {
    size_t location;        /* index in the response (0 for a single object) */
    const char *variable;   /* canonical name, constant string */
    const char *model;      /* model suffix of the key, NULL when none */
    int member;             /* 0 = control / deterministic */
    int64_t valid_at;       /* UTC seconds */
    double value;           /* canonical unit */
    int interval_s;         /* 0, 900 or 3600 */
} wx_value;

typedef struct wx_location {
    size_t index;
    double latitude, longitude;
    double elevation;       /* NaN when the response has none */
    long location_id;       /* 0 when absent */
} wx_location;

typedef struct openmeteo_sink {
    pcf_rc (*location)(void *ctx, const wx_location *loc, pcf_error *err);  /* may be NULL */
    pcf_rc (*value)(void *ctx, const wx_value *v, pcf_error *err);
    feed_reject_fn reject;
    void *ctx;
} openmeteo_sink;

typedef struct openmeteo_stats {
    size_t locations;
    long values;            /* passed to sink->value */
    long nulls;             /* missing values skipped */
    long rejected;          /* reject callbacks */
} openmeteo_stats;

/* Parses len bytes of buf (need not be NUL-terminated). */
pcf_rc openmeteo_parse(const char *buf, size_t len, const char *source,
                       const openmeteo_sink *sink, openmeteo_stats *stats, pcf_error *err);

/* Canonical unit of a known variable ("m/s", "W/m2"...), NULL if unknown. */
const char *openmeteo_unit(const char *variable);

#endif
