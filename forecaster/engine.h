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
 *            publisher never sees a run before it is committed); it opens
 *            before the study and the rows stream in while the study runs
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
#include "engine_cache.h"
#include "error.h"
#include "study.h"

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
    int ac;                      /* STUDY_AC_SCREEN (0, the default: flows linearised at each
                                  * state's AC operating point, full AC near the acting level),
                                  * STUDY_AC_OFF (DC only), STUDY_AC_BAND or STUDY_AC_ALL
                                  * (study_ac.h) */
    double ac_band;              /* STUDY_AC_BAND: fraction of the acting level, e.g. 0.10;
                                  * STUDY_AC_SCREEN: 0 = STUDY_AC_SCREEN_BAND */
    int ac_voltage_linear;       /* 1: full AC solves keep voltage constraints' linear flow and never
                                  * pick samples for them (as before 2026-12-03; for comparison);
                                  * 0: they measure the bus (study_set_voltage_bus) */
    int write_after_study;       /* 1: the writer starts after the study instead of streaming each SP's
                                  * rows beside it (as before 2026-12-03; for comparison) */
    const char *version;         /* software version recorded with the run */
    long long job_id;            /* run_queue job this run answers, 0 = none: see below */
    const char *worker;          /* the engine that claimed job_id */
    engine_cache *cache;         /* inputs kept between runs (engine_cache.h); NULL: load all */
} engine_opts;

typedef struct engine_report {
    int64_t run_id;
    size_t sp_count, sites, constraints, faults, topologies;
    size_t samples;
    uint64_t seed;
    double t_load, t_forecast, t_study, t_write, t_total;   /* seconds */
    double t_write_stream;       /* writing rows beside the study (not in t_write: the study
                                  * does not wait for it), seconds */
    double unresolved_share;     /* max over SPs: samples the ANM could not clear */
    size_t ac_samples;           /* samples re-solved with AC (engine_opts.ac) */
    size_t ac_fallbacks;         /* of those, left on DC because AC did not converge */
    size_t ac_lin_failures;      /* STUDY_AC_SCREEN: network states (x SPs) without an AC
                                  * operating point, screened with DC rows */
    size_t voltage_constraints;  /* of constraints: voltage ones (voltage.h) */
    size_t voltage_fallbacks;    /* states whose AC solve failed (voltage.h): fault states on the intact
                                  * model, intact states linearised with the sites scaled back */
    double t_voltage;            /* of t_study: their AC linearisation, seconds */
    study_times study_t;         /* of t_study: CPU seconds per part (study.h) */
    size_t members;              /* weather ensemble members sampled per scenario (0: none) */
} engine_report;

/* With job_id set, the run's transaction also marks that job done, and only
 * if this worker still holds it: a job taken over from an engine thought
 * dead is never answered twice, and a crash can never leave a committed run
 * whose job is still claimed.  PCF_ERR_INVALID ("taken over") otherwise,
 * with nothing written. */

/* Runs one forecast and commits it.  PCF_ERR_INVALID for a bad zone/date,
 * PCF_ERR_DB when PostgreSQL fails (nothing is written). */
pcf_rc engine_run(PGconn *conn, const engine_opts *o, engine_report *rep, pcf_error *err);

/* ---- what-if studies (trade checks, trade.h) --------------------------------
 *
 * engine_whatif runs the study of engine_run twice for the same inputs, seed
 * and samples -- once as-is, once with some sites' export capacity changed --
 * and writes nothing.  A changed site's export capacity, tranche capacities,
 * forecast mean and forecast error all scale by (export + delta) / export
 * (at least 0): a site that sells half its capacity delivers half of what it
 * would have.  Only the SPs first_sp..last_sp (positions in the horizon,
 * 1-based) are studied; their random streams are those of the full run, so
 * with the same samples the "before" figures equal engine_run's.
 *
 * Per constraint c and SP k ([c * nsp + k]) it returns the quantiles of the
 * intact loading before ANM at the block levels (study_levels), P(ANM acts)
 * and the intact sensitivity to every changed site, before and after; and
 * the same loading quantiles with each credible fault in force (the
 * deterministic N-1 view, study_fault_loading), the post-fault limit and
 * the post-fault sensitivities (PTDF + LODF).  The
 * loading quantiles are unclamped (negative headroom shows): the study runs
 * with a shadow copy of every constraint that has no sites and an
 * unreachable limit, so its headroom is never cut at zero. */
#define ENGINE_WHATIF_MAX_CHANGES 64

typedef struct engine_whatif {
    size_t nchange;                  /* 1..ENGINE_WHATIF_MAX_CHANGES */
    const char *const *site_id;      /* [nchange] sites of the zone, distinct */
    const double *delta_mw;          /* [nchange] finite, non-zero */
    int first_sp, last_sp;           /* positions in the horizon, 1-based; 0, 0 = all */
    double confidence;               /* the level qf_* are read at (the others may be NaN); 0 = all */
} engine_whatif;

typedef struct engine_whatif_result {
    size_t nc, nsp, nchange;         /* nsp: the SPs studied (first_sp..last_sp) */
    char (*constraint_id)[72];       /* [nc] */
    unsigned char *member;           /* [nc * nchange] 1: the constraint may curtail the changed site */
    int *sp;                         /* [nsp] SP number within its local day */
    int64_t *sp_start;               /* [nsp] UTC s */
    double *limit;                   /* [nc * nsp] intact limit, MW */
    double *q_before, *q_after;      /* [(c * nsp + k) * STUDY_NLEVELS + q] loading quantile, MW */
    double *p_before, *p_after;      /* [c * nsp + k] P(ANM acts) */
    double *sens;                    /* [(c * nsp + k) * nchange + i] MW per MW */
    double *dir;                     /* [c * nsp + k] d loading / d flow before the trade: +1 or -1
                                        (-1 when the median flow runs against a two-way limit) */
    double *export_before;           /* [nchange] MW */
    size_t nf;                       /* credible faults */
    char (*fault_id)[ZONE_NAME_MAX + 1];   /* [nf] faulted branch as statements name it: its name, else its index */
    double *limit_fault;             /* [c * nsp + k] post-fault limit, MW */
    double *qf_before, *qf_after;    /* [((c * nsp + k) * nf + f) * STUDY_NLEVELS + q] loading quantile
                                        with fault f in force, MW; NaN: f cannot happen in that SP */
    double *dir_fault;               /* [(c * nsp + k) * nf + f] as dir, under fault f */
    double *sens_fault;              /* [((c * nsp + k) * nf + f) * nchange + i] MW per MW after fault f */
    size_t samples;
    uint64_t seed;
    double t_total;                  /* seconds */
} engine_whatif_result;

/* PCF_ERR_INVALID for a bad zone/date/range, an unknown or repeated site or a
 * site with no export capacity; PCF_ERR_DB when PostgreSQL fails. */
pcf_rc engine_whatif_run(PGconn *conn, const engine_opts *o, const engine_whatif *w, engine_whatif_result **out,
                         pcf_error *err);
void engine_whatif_result_destroy(engine_whatif_result **r);

#endif
