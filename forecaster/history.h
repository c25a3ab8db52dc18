/*
 * history.h -- the time series the forecasts learn from and run on, on the
 * settlement-period grid: SCADA history per measurement point, and weather
 * forecasts per location, variable and ensemble member.
 *
 * Both are plain dense arrays on a half-hour grid that starts at t0 (a
 * multiple of 1800 s, UTC): slot i is the half-hour [t0 + 1800 i, +1800),
 * which is exactly a settlement period on every day, clock changes
 * included (settlement periods are half-hours of UTC time labelled in
 * local time).  NAN marks a missing value.  The structures are filled from
 * PostgreSQL by history_load_scada / history_load_weather, or by hand (tests,
 * tools), through history_new / wx_series_new; the forecast code reads only
 * the structures, never the database.
 *
 * Reading: one COPY (query) TO STDOUT per call, parsed as it streams.
 * SCADA comes in binary format (no number formatted or parsed as text),
 * filtered by a hashed `point_id = ANY(<the zone's ids>)` and mapped to
 * point indices by binary search: a year of 60 points (1.05M rows) costs
 * about 0.5 s of server and 0.15 s of client CPU.  Weather comes in text
 * with location and variable indices computed by the server.
 *   - SCADA: values with quality 'bad' are dropped (the historian says they
 *     are wrong); 'good', 'uncertain' and 'substituted' are used.  Several
 *     values inside one half-hour are averaged (a value at ts stands for
 *     [ts, ts + 30 min), as the SCADA feed defines it).
 *   - Weather: for each (location, variable, member, valid time) the value
 *     from the latest forecast issued at or before `issued_before` (ties
 *     between models broken by model name), so a history of forecasts is
 *     what the engine would have seen.  A value that is an average over the
 *     interval_s ending at valid_at stands at the interval's middle; values
 *     are interpolated linearly to each half-hour's middle, across gaps of
 *     at most 3 hours, never extrapolated.
 * Call these inside the same transaction as zone_load when the indices must
 * match the zone exactly (points and locations are numbered in id order).
 */
#ifndef PCF_HISTORY_H
#define PCF_HISTORY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "zone.h"

#define HISTORY_SLOT 1800
#define HISTORY_MAX_SLOTS (2u * 48u * 366u * 5u)    /* ten years of half-hours */
#define WX_MAX_VARS 16
#define WX_MAX_MEMBERS 201
#define WX_MAX_LOCATIONS 256
#define WX_VAR_MAX 48           /* variable names are shorter than this */

typedef struct history {
    int64_t t0;                 /* first slot, multiple of 1800 */
    size_t nt;                  /* slots */
    size_t npoint;              /* rows: the zone's points in zone order */
    double *value;              /* [npoint * nt], value[p * nt + i]; NAN missing */
} history;

typedef struct wx_location {
    char id[ZONE_ID_MAX + 1];
    double latitude, longitude;
} wx_location;

typedef struct wx_series {
    int64_t t0;
    size_t nt;
    size_t nloc;
    wx_location *loc;           /* [nloc] in id order */
    size_t nvar;
    char var[WX_MAX_VARS][WX_VAR_MAX];
    size_t nmember;             /* members 0 (control / deterministic) .. nmember-1 */
    bool lead_matched;          /* set by the caller (false from the loaders): the values are
                                 * forecasts issued at the lead the run will forecast at, not
                                 * the latest/analysis values (see forecast.h) */
    double *v;                  /* [((loc * nvar + var) * nmember + member) * nt + i]; NAN missing */
} wx_series;

/* An empty (all NAN) history; t0 is rounded down to a slot. */
pcf_rc history_new(int64_t t0, size_t nt, size_t npoint, history **out, pcf_error *err);
void history_destroy(history **h);

/* Pointer to the nt values of point p. */
static inline double *history_row(const history *h, size_t p)
{
    return h->value + p * h->nt;
}

/* SCADA of every point of zone z for the slots covering [from, to). */
pcf_rc history_load_scada(PGconn *conn, const zone *z, int64_t from, int64_t to, history **out, pcf_error *err);

/* Empty weather series; locations and variables are copied. */
pcf_rc wx_series_new(int64_t t0, size_t nt, const wx_location *loc, size_t nloc, const char *const *vars,
                     size_t nvar, size_t nmember, wx_series **out, pcf_error *err);
void wx_series_destroy(wx_series **w);

static inline double *wx_row(const wx_series *w, size_t loc, size_t var, size_t member)
{
    return w->v + ((loc * w->nvar + var) * w->nmember + member) * w->nt;
}

/* Index of variable `name`, or -1. */
long wx_var_find(const wx_series *w, const char *name);

/* The value of (loc, var, member) in the slot holding instant t; NAN
 * outside the series or when missing. */
double wx_at(const wx_series *w, size_t loc, size_t var, size_t member, int64_t t);

/* Weather of zone `zone_id`'s locations for the slots covering [from, to),
 * variables vars[nvar], members 0..max_member (the array is sized by the
 * largest member found, at least 1), from forecasts issued at or before
 * issued_before. */
pcf_rc history_load_weather(PGconn *conn, const char *zone_id, const char *const *vars, size_t nvar,
                            int64_t from, int64_t to, int64_t issued_before, int max_member, wx_series **out,
                            pcf_error *err);

#endif
