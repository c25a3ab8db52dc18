/*
 * engine_cache.h -- what one engine keeps between runs so that a real-time
 * run does not reload the zone and eight weeks of history every time
 * (issue 5, real-time latency).
 *
 * The engine daemon keeps one cache for its life and passes it to every run
 * (engine_opts.cache); one-off runs pass none and load everything.  The
 * cache holds up to ENGINE_CACHE_ZONES zones, each with its own windows,
 * so a daemon serving several zones does not reload at every change of
 * zone; a new zone beyond that replaces the least recently used one.  Each
 * zone's windows pass the same checks as if it were alone.  A run asks,
 * inside its REPEATABLE READ READ ONLY load transaction:
 *
 *   zone      reused while the fingerprint of the model tables is unchanged:
 *             per table, an md5 of its rows' text in a fixed order -- any
 *             INSERT, UPDATE or DELETE of the network, ratings, ANM
 *             constraints, DER register, points or weather locations
 *             changes it, whatever order the transactions commit in (row
 *             versions, xmin, are not commit-ordered).  A changed
 *             fingerprint drops everything cached, every zone.
 *   SCADA     the cached window is kept and only its last ENGINE_CACHE_SCADA_TAIL
 *             (6 h) plus the new slots are read again, as long as every live
 *             gateway batch committed since stored all its rows inside that
 *             tail (a gateway replaying an older backlog reloads the window).
 *             Any SCADA batch that did not come from the live feed (a
 *             historian file, a back-fill) since the cache was filled may
 *             touch any time, so the window is read whole again.  Batch
 *             ids are not commit-ordered (a lower one can commit later), so
 *             the cache also re-examines the ids it found empty (see
 *             ENGINE_CACHE_GAP_AGE).
 *   weather   the same with a tail of ENGINE_CACHE_WX_TAIL (3 days): a new
 *             forecast revises the values near its issue time and after.
 *             Any weather batch loaded since the cache was filled reloads
 *             the window whole (the latest-issue rule can change any time).
 *
 * Windows that are not a forward slide of the cached one (an earlier
 * anchor, another issued_before) are read whole.  Reading only a tail gives
 * exactly what a whole read gives: both loaders aggregate per half-hour
 * from rows inside (weather: plus 3 h either side) the window asked for.
 *
 * A cache is used by one thread (the daemon's) at a time; what it returns
 * is owned by it and valid until the next call or engine_cache_destroy.
 */
#ifndef PCF_ENGINE_CACHE_H
#define PCF_ENGINE_CACHE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "error.h"
#include "history.h"
#include "zone.h"

/* Zones kept at once: a daemon usually serves one to a few; each costs its
 * model and eight weeks of half-hourly history (a few MB for 100 points). */
#define ENGINE_CACHE_ZONES 4
#define ENGINE_CACHE_SCADA_TAIL (6 * 3600)
#define ENGINE_CACHE_WX_TAIL (3 * 86400)
/* A batch id still invisible this long (s) is taken for a rolled-back load. */
#define ENGINE_CACHE_GAP_AGE 86400

typedef struct engine_cache engine_cache;

typedef struct engine_cache_stats {
    long zone_loads, zone_hits;
    long scada_full, scada_tail;
    long wx_full, wx_tail;
} engine_cache_stats;

pcf_rc engine_cache_new(engine_cache **out, pcf_error *err);
void engine_cache_destroy(engine_cache **c);

/* The zone, reloaded only when the model tables changed (or when it was
 * the least recently used of more than ENGINE_CACHE_ZONES); it becomes the
 * zone the next engine_cache_scada and engine_cache_weather are about. */
pcf_rc engine_cache_zone(engine_cache *c, PGconn *conn, const char *zone_id, zone **z, pcf_error *err);

/* SCADA history of the current zone for [from, to) (history_load_scada). */
pcf_rc engine_cache_scada(engine_cache *c, PGconn *conn, int64_t from, int64_t to, history **h, pcf_error *err);

/* Weather of the current zone over [from, to), control member only, issued at
 * or before issued_before (history_load_weather). */
pcf_rc engine_cache_weather(engine_cache *c, PGconn *conn, const char *const *vars, size_t nvar, int64_t from,
                            int64_t to, int64_t issued_before, wx_series **w, pcf_error *err);

void engine_cache_get_stats(const engine_cache *c, engine_cache_stats *out);

#endif
