/*
 * engine.h -- one look-ahead run, from PostgreSQL to PostgreSQL.
 *
 * engine_run() is the whole of DESIGN.md section 5 for one zone and horizon:
 *
 *   load     zone_load: network, DER register, constraints, ratings, faults
 *   forecast forecast.h: per site and SP a mean and an error model, per bus
 *            demand, from the SCADA history and the weather forecast
 *   outages  planned outages of the outage feed that overlap each SP
 *   study    study.h: per SP, S samples, N-1 credible faults, NGED ANM
 *   write    one transaction: the run row, every PCF row, constraint
 *            statement, statement site and constraint block, and
 *            NOTIFY pcf_run '<run_id>' (delivered at commit, so the
 *            publisher never sees a run before it is committed)
 *
 * A run either commits whole or leaves nothing.  The time spent in each
 * stage is returned so benchmarks and logs can show where it goes.
 */
#ifndef PCF_ENGINE_H
#define PCF_ENGINE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "anm.h"
#include "error.h"

typedef enum engine_kind { ENGINE_DAY_AHEAD = 1, ENGINE_REAL_TIME = 2 } engine_kind;

#define ENGINE_DEFAULT_SAMPLES 10000
#define ENGINE_DEFAULT_RT_PERIODS 8
#define ENGINE_MAX_RT_PERIODS 46      /* SP numbers stay unique within a run */

typedef struct engine_opts {
    const char *zone;
    engine_kind kind;
    int year, month, day;        /* day-ahead: the UK local date forecast */
    int rt_periods;              /* real-time: SPs ahead; 0 = default */
    int64_t anchor;              /* real-time: "now" (UTC s); 0 = latest SCADA, else the clock */
    int64_t issued_before;       /* inputs issued after this are ignored (back-tests); 0 = none */
    size_t samples;              /* 0 = ENGINE_DEFAULT_SAMPLES */
    uint64_t seed;               /* 0 = derived from zone, kind and horizon */
    int threads;                 /* 0 = 2 */
    const anm_options *anm;      /* NULL = NGED defaults */
    const char *version;         /* software version recorded with the run */
} engine_opts;

typedef struct engine_report {
    int64_t run_id;
    size_t sp_count, sites, constraints, faults, topologies;
    size_t samples;
    uint64_t seed;
    double t_load, t_forecast, t_study, t_write, t_total;   /* seconds */
    double unresolved_share;     /* max over SPs: samples the ANM could not clear */
} engine_report;

/* Runs one forecast and commits it.  PCF_ERR_INVALID for a bad zone/date,
 * PCF_ERR_DB when PostgreSQL fails (nothing is written). */
pcf_rc engine_run(PGconn *conn, const engine_opts *o, engine_report *rep, pcf_error *err);

#endif
