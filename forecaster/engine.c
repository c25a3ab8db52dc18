/*
 * engine.c -- one look-ahead run; see engine.h for the stages.
 *
 * Reading happens in one REPEATABLE READ READ ONLY transaction so the zone,
 * its history, the weather and the outages are one consistent snapshot;
 * writing happens in a second transaction that holds the whole run.  That
 * one opens before the study with the run row; a writer thread then streams
 * the rows of the SPs the study has finished (one COPY per table per batch
 * of SPs) while the study computes the next ones, so the server's per-row
 * work overlaps the study; after the last SP only its batch, the job's
 * completion, NOTIFY and COMMIT remain.  Any failure rolls the whole run
 * back (eng_writer).
 *
 * Mapping the zone onto the study:
 *   - sites keep their zone order; tranches are the zone's counted tranches
 *     (connected and accepted) with their LIFO positions and ANM masks;
 *   - constraints keep zone order; a branch or transformer constraint's
 *     limit is the sum of its monitored branches' ratings for the season
 *     of the SP (MVA read as MW: the DC study has no reactive power, see
 *     docs/methodology.md), PEL when one is set for the intact network, the
 *     post-fault rating after a fault; a boundary constraint has its MW
 *     limit in both states and binds in its positive direction only;
 *   - a voltage constraint's "flow" is its bus's deviation from nominal in
 *     kV, linear per SP and state (voltage.h, s_volt_sp), against (vmax -
 *     1) * base kV above and (1 - vmin) * base kV below, in every state;
 *   - credible faults are the N-1 outages of every branch any constraint
 *     monitors, each with zone_fault_probability over the SP;
 *   - planned outages: the current revision of every outage in status
 *     planned or confirmed that overlaps the SP; one topology is built per
 *     distinct set of branches out and shared by the SPs that have it.
 */
#include "engine.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "forecast.h"
#include "history.h"
#include "parse.h"
#include "sptime.h"
#include "study.h"
#include "voltage.h"
#include "zone.h"

#define HISTORY_DAYS 56             /* eight weeks of SCADA to learn from */
#define MAX_TOPOLOGIES 64
#define ENGINE_FAR_FUTURE 32503680000LL   /* 3000-01-01: "no cut-off" for issue times */
/* Limit of a what-if shadow constraint: far above any flow, so the ANM never
 * acts on it and its headroom is never cut at zero (engine_whatif_run). */
#define ENGINE_SHADOW_LIMIT 1e6

typedef struct sp_outages {
    size_t n;
    int rows[32];                   /* branch rows out; more than 32 at once is refused */
} sp_outages;

typedef struct eng_writer eng_writer;

typedef struct run_ctx {
    const engine_opts *o;
    engine_report *rep;
    zone *z;
    forecast *fc;
    history *hist;
    wx_series *hist_wx, *fc_wx;
    size_t nsp;
    int64_t sp_start[50];
    int sp_number[50];              /* SP within its UK local day */
    int64_t anchor;
    int cached;                     /* z, hist, hist_wx belong to o->cache */
    char scada_as_of[32], weather_as_of[32], outages_as_of[32];
    sp_outages out[50];
    /* study description */
    study_constraint *sc;
    int *sc_rows;
    double *sc_sign;
    study_site *ss;
    anm_tranche_def *tr;
    unsigned char *member;
    int *fault_row;
    size_t nf;
    /* results, [item * nsp + k] */
    mcstat_pcf *pcf;
    study_constraint_result *cres;
    study_site_curt *cres_site;     /* [(c * nsp + k) * ns + s] */
    double *sens;                   /* [(c * nsp + k) * ns + s] intact sensitivity */
    double *limit_post;             /* [c * nsp + k] */
    char (*limit_kind)[16];         /* [c * nsp + k] */
    int *season;                    /* [nsp] */
    /* what-if (engine_whatif_run); zero for engine_run */
    const double *ratio;            /* [ns] scale of each site's capacity and output; NULL = as-is */
    int shadow;                     /* 1: a shadow copy of every constraint follows the zone's */
    size_t k_from, k_to;            /* SPs studied: [k_from, k_to); k_to 0 = all */
    /* with shadow: each zone constraint under each credible fault in force
     * (study_fault_loading), [(c * nsp + k) * nf + f], and its sensitivity
     * to each changed site then, [((c * nsp + k) * nf + f) * fl_nsite + i] */
    unsigned char *fl_want;         /* [ncs] */
    double fl_level;                /* study_set_fault_loading's p */
    const size_t *fl_site;          /* [fl_nsite] the changed sites */
    size_t fl_nsite;
    study_fault_loading *fl;
    double *fl_sens;
    /* engine_run: the run row's id, and the thread that streams the rows
     * of each SP the study finishes (NULL: nothing is written) */
    char run_id[24];
    int64_t run_no;                 /* the same as a number */
    eng_writer *wr;
} run_ctx;

/* The writer (s_writer_main): while the study computes SP k + 1, a thread
 * of its own streams SP k's rows to the server in the run's transaction,
 * so the server's per-row work (foreign-key triggers, index inserts) runs
 * beside the study instead of after it.  The connection belongs to that
 * thread from s_writer_start to s_writer_stop; the study's thread only
 * says how many SPs have results (ready) and reads whether it failed. */
enum { ENG_WRITER_FINISH = 1, ENG_WRITER_ABANDON = 2 };

struct eng_writer {
    PGconn *c;
    run_ctx *x;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t batch;       /* SPs written at once, unless closing */
    size_t ready;       /* SPs [0, ready) have their results (guarded by mu) */
    int closing;        /* 0, ENG_WRITER_FINISH or ENG_WRITER_ABANDON (mu) */
    int failed;         /* a write failed; rc and err say how (mu) */
    pcf_rc rc;
    pcf_error err;
    double busy;        /* seconds spent writing: the writer's own, read after the join */
};

/* The study's side: SPs [0, k) are done.  The writer's error once it has
 * failed, so the study stops early (the run is lost anyway). */
static pcf_rc s_writer_ready(eng_writer *w, size_t k, pcf_error *err)
{
    pthread_mutex_lock(&w->mu);
    w->ready = k;
    int failed = w->failed;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (!failed) return PCF_OK;
    *err = w->err;
    return w->rc;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The band the study is given: screened runs default to STUDY_AC_SCREEN_BAND. */
static double s_ac_band(const engine_opts *o)
{
    return o->ac == STUDY_AC_SCREEN && o->ac_band == 0 ? STUDY_AC_SCREEN_BAND : o->ac_band;
}

static uint64_t s_hash(const char *s, uint64_t h)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- horizon -------------------------------------------------------------- */

/* Latest SCADA instant and latest weather issue of zone $1, as index
 * probes.  max() over a join reads every row of the zone (the planner cannot
 * push it into the index): 270 ms for the SCADA and 125 ms for the weather
 * of bench_engine's 160 days.  Per point, the newest row of measurement's
 * primary key (point_id, ts) is one backward index step; per location, the
 * models are enumerated by a skip scan (recursive CTE) and the newest issue
 * of each (location, model) is one step on weather_forecast's primary key
 * (location_id, model, issued_at, ...). */
#define ENGINE_SQL_LATEST_SCADA                                                                         \
    "(SELECT max(x.ts) FROM measurement_point p CROSS JOIN LATERAL"                                     \
    " (SELECT m.ts FROM measurement m WHERE m.point_id = p.point_id ORDER BY m.ts DESC LIMIT 1) x"      \
    " WHERE p.zone_id = $1)"
#define ENGINE_SQL_LATEST_WEATHER                                                                       \
    "(WITH RECURSIVE lm(location_id, model) AS ("                                                       \
    "   SELECT l.location_id, (SELECT min(f.model) FROM weather_forecast f"                             \
    "                           WHERE f.location_id = l.location_id)"                                   \
    "     FROM weather_location l WHERE l.zone_id = $1"                                                 \
    "   UNION ALL"                                                                                      \
    "   SELECT lm.location_id, (SELECT min(f.model) FROM weather_forecast f"                            \
    "                            WHERE f.location_id = lm.location_id AND f.model > lm.model)"          \
    "     FROM lm WHERE lm.model IS NOT NULL)"                                                          \
    " SELECT max((SELECT f.issued_at FROM weather_forecast f"                                           \
    "             WHERE f.location_id = lm.location_id AND f.model = lm.model"                          \
    "             ORDER BY f.issued_at DESC LIMIT 1)) FROM lm WHERE lm.model IS NOT NULL)"

static pcf_rc s_horizon(PGconn *c, run_ctx *x, pcf_error *err)
{
    const engine_opts *o = x->o;
    if (o->kind == ENGINE_DAY_AHEAD) {
        int n = sptime_sp_count(o->year, o->month, o->day);
        if (n < 0) return pcf_error_set(err, PCF_ERR_INVALID, "day-ahead: %04d-%02d-%02d is not a date", o->year, o->month, o->day);
        x->nsp = (size_t)n;
        for (int k = 0; k < n; k++) {
            pcf_rc rc = sptime_sp_start(o->year, o->month, o->day, k + 1, &x->sp_start[k]);
            if (rc != PCF_OK) return pcf_error_set(err, rc, "day-ahead: SP %d of %04d-%02d-%02d", k + 1, o->year, o->month, o->day);
            x->sp_number[k] = k + 1;
        }
        /* Day-ahead: the forecast is made before the day; history ends at
         * the anchor (latest SCADA, or the start of the day if later). */
    }
    /* The anchor: the end of the latest SCADA slot of the zone; with the
     * inputs' freshness the run row keeps (one probe of the SCADA, not two). */
    const char *p[1] = { o->zone };
    PGresult *r = db_query(c, "SELECT coalesce(extract(epoch FROM q.s)::bigint, 0), q.s, q.w, q.o FROM (SELECT "
                              ENGINE_SQL_LATEST_SCADA " AS s, " ENGINE_SQL_LATEST_WEATHER " AS w,"
                              " (SELECT max(o.received_at) FROM outage o JOIN branch b USING (branch_id)"
                              "   WHERE b.zone_id = $1) AS o) q", 1, p, err);
    if (!r) return PCF_ERR_DB;
    long latest = 0;
    const char *v = PQgetvalue(r, 0, 0);
    if (parse_long(v, strlen(v), &latest) != PCF_OK) latest = 0;
    snprintf(x->scada_as_of, sizeof x->scada_as_of, "%s", PQgetisnull(r, 0, 1) ? "" : PQgetvalue(r, 0, 1));
    snprintf(x->weather_as_of, sizeof x->weather_as_of, "%s", PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2));
    snprintf(x->outages_as_of, sizeof x->outages_as_of, "%s", PQgetisnull(r, 0, 3) ? "" : PQgetvalue(r, 0, 3));
    PQclear(r);
    /* The anchor is where the history ends and the forecast leads count from:
     * the end of the latest SCADA slot; a day-ahead run never looks into
     * the day it forecasts. */
    int64_t anchor = o->anchor;
    if (!anchor) anchor = latest ? latest + HISTORY_SLOT : (o->kind == ENGINE_DAY_AHEAD ? x->sp_start[0] : (int64_t)time(NULL));
    if (o->kind == ENGINE_DAY_AHEAD) {
        if (anchor > x->sp_start[0]) anchor = x->sp_start[0];
    } else {
        int n = o->rt_periods ? o->rt_periods : ENGINE_DEFAULT_RT_PERIODS;
        if (n < 1 || n > ENGINE_MAX_RT_PERIODS)
            return pcf_error_set(err, PCF_ERR_INVALID, "real-time: %d periods (1..%d)", n, ENGINE_MAX_RT_PERIODS);
        int64_t t = (anchor / HISTORY_SLOT) * HISTORY_SLOT;
        if (t < anchor) t += HISTORY_SLOT;
        x->nsp = (size_t)n;
        for (int k = 0; k < n; k++) {
            x->sp_start[k] = t + (int64_t)k * HISTORY_SLOT;
            sptime_civil day;
            sptime_sp_of(x->sp_start[k], &day, &x->sp_number[k]);
        }
    }
    x->anchor = anchor;
    return PCF_OK;
}

/* ---- inputs ------------------------------------------------------------------- */

static pcf_rc s_outages(PGconn *c, run_ctx *x, pcf_error *err)
{
    char from[SPTIME_ISO_LEN], to[SPTIME_ISO_LEN];
    sptime_format_utc(x->sp_start[0], from, sizeof from);
    sptime_format_utc(x->sp_start[x->nsp - 1] + HISTORY_SLOT, to, sizeof to);
    const char *p[3] = { x->o->zone, from, to };
    PGresult *r = db_query(c,
        "SELECT b.idx - 1, extract(epoch FROM o.start_at)::bigint, extract(epoch FROM o.end_at)::bigint"
        "  FROM outage_current o JOIN branch b USING (branch_id)"
        " WHERE b.zone_id = $1 AND o.status IN ('planned', 'confirmed')"
        "   AND o.start_at < $3 AND o.end_at > $2 ORDER BY b.idx", 3, p, err);
    if (!r) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    for (int i = 0; i < PQntuples(r) && rc == PCF_OK; i++) {
        long row, a, b;
        const char *v0 = PQgetvalue(r, i, 0), *v1 = PQgetvalue(r, i, 1), *v2 = PQgetvalue(r, i, 2);
        if (parse_long(v0, strlen(v0), &row) || parse_long(v1, strlen(v1), &a) || parse_long(v2, strlen(v2), &b)) {
            rc = pcf_error_set(err, PCF_ERR_DB, "outages: unreadable row %d", i);
            break;
        }
        for (size_t k = 0; k < x->nsp; k++) {
            if (!(a < x->sp_start[k] + HISTORY_SLOT && b > x->sp_start[k])) continue;
            sp_outages *so = &x->out[k];
            int dup = 0;
            for (size_t j = 0; j < so->n; j++) dup |= so->rows[j] == (int)row;
            if (dup) continue;
            if (so->n >= sizeof so->rows / sizeof so->rows[0]) {
                rc = pcf_error_set(err, PCF_ERR_LIMIT, "outages: more than %zu branches out in one SP",
                                   sizeof so->rows / sizeof so->rows[0]);
                break;
            }
            so->rows[so->n++] = (int)row;
        }
    }
    PQclear(r);
    return rc;
}

static pcf_rc s_load(PGconn *c, run_ctx *x, pcf_error *err)
{
    /* one snapshot for every input; the engine parses between queries, so
     * a session's idle-in-transaction timeout is lifted as in s_write_begin */
    pcf_rc rc = db_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
                           " SET LOCAL idle_in_transaction_session_timeout = 0", err);
    if (rc != PCF_OK) return rc;
    double t0 = s_now();
    engine_cache *ec = x->o->cache;
    x->cached = ec != NULL;
    rc = ec ? engine_cache_zone(ec, c, x->o->zone, &x->z, err) : zone_load(c, x->o->zone, NULL, &x->z, err);
    if (rc != PCF_OK) goto done;
    if ((rc = s_horizon(c, x, err)) != PCF_OK) goto done;
    if ((rc = s_outages(c, x, err)) != PCF_OK) goto done;
    int64_t hfrom = x->anchor - (int64_t)HISTORY_DAYS * 86400;
    rc = ec ? engine_cache_scada(ec, c, hfrom, x->anchor, &x->hist, err)
            : history_load_scada(c, x->z, hfrom, x->anchor, &x->hist, err);
    if (rc != PCF_OK) goto done;
    int64_t issued = x->o->issued_before ? x->o->issued_before : ENGINE_FAR_FUTURE;
    rc = ec ? engine_cache_weather(ec, c, FORECAST_WX_VARS, FORECAST_NWX, hfrom, x->anchor, issued, &x->hist_wx, err)
            : history_load_weather(c, x->z->id, FORECAST_WX_VARS, FORECAST_NWX, hfrom, x->anchor, issued, 0,
                                   &x->hist_wx, err);
    if (rc != PCF_OK) goto done;
    int64_t fc_issued = x->o->issued_before ? x->o->issued_before : ENGINE_FAR_FUTURE;
    if ((rc = history_load_weather(c, x->z->id, FORECAST_WX_VARS, FORECAST_NWX, x->sp_start[0],
                                   x->sp_start[x->nsp - 1] + HISTORY_SLOT, fc_issued, WX_MAX_MEMBERS - 1,
                                   &x->fc_wx, err)) != PCF_OK)
        goto done;
    x->rep->t_load = s_now() - t0;
done:
    db_rollback(c);
    return rc;
}

/* ---- the study ------------------------------------------------------------------- */

static size_t s_samples(const engine_opts *o)
{
    return o->samples ? o->samples : ENGINE_DEFAULT_SAMPLES;
}

/* The run's seed: the caller's, else one derived from zone, kind and horizon
 * (known before the study, so the run row can be written first). */
static uint64_t s_seed(const run_ctx *x)
{
    const engine_opts *o = x->o;
    if (o->seed) return o->seed;
    char key[64];
    snprintf(key, sizeof key, "|%d|%lld|%zu", (int)o->kind, (long long)x->sp_start[0], x->nsp);
    return s_hash(key, s_hash(o->zone, 1469598103934665603ULL));
}

static pcf_rc s_describe(run_ctx *x, study_def *d, pcf_error *err)
{
    const zone *z = x->z;
    size_t nc = z->nconstraint, ns = z->nsite, nt = z->ntranche, nbr = 0;
    size_t ncs = x->shadow ? 2 * nc : nc;
    for (size_t c = 0; c < nc; c++) nbr += z->constraint[c].nbranch;
    x->sc = calloc(ncs + 1, sizeof *x->sc);
    x->sc_rows = calloc(nbr + 1, sizeof(int));
    x->sc_sign = calloc(nbr + 1, sizeof(double));
    x->ss = calloc(ns + 1, sizeof *x->ss);
    x->tr = calloc(nt + 1, sizeof *x->tr);
    x->member = calloc(ncs * ns + 1, 1);
    x->fault_row = calloc(nbr + 1, sizeof(int));
    if (!x->sc || !x->sc_rows || !x->sc_sign || !x->ss || !x->tr || !x->member || !x->fault_row)
        return pcf_error_set(err, PCF_ERR_NOMEM, "engine: out of memory");
    size_t k = 0;
    for (size_t c = 0; c < nc; c++) {
        const zone_constraint *zc = &z->constraint[c];
        study_constraint *sc = &x->sc[c];
        sc->nbr = zc->nbranch;
        sc->branch_row = &x->sc_rows[k];
        sc->sign = &x->sc_sign[k];
        for (size_t i = 0; i < zc->nbranch; i++, k++) {
            x->sc_rows[k] = (int)zc->branch[i];
            x->sc_sign[k] = zc->sign[i];
            int seen = 0;
            for (size_t f = 0; f < x->nf; f++) seen |= x->fault_row[f] == (int)zc->branch[i];
            if (!seen) x->fault_row[x->nf++] = (int)zc->branch[i];
        }
        sc->voltage_kv = zc->voltage_kv;
        sc->kind = zc->anm == ZONE_TANM ? ANM_TANM : ANM_DANM;
        sc->trim = zc->trim_pct / 100.0;
        sc->release = zc->release_pct / 100.0;
        sc->one_way = zc->kind == ZONE_C_BOUNDARY || zc->kind == ZONE_C_VOLTAGE;
        for (size_t i = 0; i < zc->nsite; i++) x->member[c * ns + zc->site[i]] = 1;
    }
    /* shadows: the same branches, no site to curtail (member stays 0) */
    for (size_t c = nc; c < ncs; c++) x->sc[c] = x->sc[c - nc];
    for (size_t s = 0; s < ns; s++) {
        x->ss[s].bus = z->site[s].bus_label;
        x->ss[s].export_mw = z->site[s].export_mw * (x->ratio ? x->ratio[s] : 1);
    }
    for (size_t t = 0; t < nt; t++) {
        const zone_tranche *zt = &z->tranche[t];
        x->tr[t].site = zt->site;
        x->tr[t].capacity_mw = zt->capacity_mw * (x->ratio ? x->ratio[zt->site] : 1);
        x->tr[t].firm = zt->firm;
        x->tr[t].lifo_position = zt->firm ? 0 : zt->lifo_position;
        x->tr[t].anm_mask = (int)zt->anm;
    }
    const engine_opts *o = x->o;
    d->net = z->mpc;
    d->nc = ncs;
    d->ns = ns;
    d->nt = nt;
    d->nf = x->nf;
    d->constraints = x->sc;
    d->sites = x->ss;
    d->tranches = x->tr;
    d->member = x->member;
    d->fault_row = x->fault_row;
    d->samples = s_samples(o);
    d->threads = o->threads ? o->threads : 2;
    d->anm_opts = o->anm;
    d->seed = s_seed(x);
    x->rep->seed = d->seed;
    x->rep->samples = d->samples;
    x->rep->faults = x->nf;
    x->rep->sites = ns;
    x->rep->constraints = nc;
    return PCF_OK;
}

/* Limits of constraint c in SP k (MW): intact and post-fault. */
static void s_limits(run_ctx *x, size_t c, size_t k, double *intact, double *post, const char **kind)
{
    if (c >= x->z->nconstraint) {
        *intact = *post = ENGINE_SHADOW_LIMIT;
        *kind = "shadow";
        return;
    }
    const zone_constraint *zc = &x->z->constraint[c];
    if (zc->kind == ZONE_C_BOUNDARY) {
        *intact = *post = zc->limit_mw;
        *kind = "boundary";
        return;
    }
    if (zc->kind == ZONE_C_VOLTAGE) {     /* kV above nominal; statutory limits hold in every state */
        *intact = *post = (zc->vmax_pu - 1) * zc->voltage_kv;
        *kind = "voltage";
        return;
    }
    double li = 0, lp = 0;
    int pel = 0;
    for (size_t i = 0; i < zc->nbranch; i++) {
        const zone_rating *r = zone_rating_at(x->z, zc->branch[i], x->sp_start[k]);
        li += r->has_pel ? r->pel_mva : r->continuous_mva;
        lp += r->post_fault_mva;
        pel |= r->has_pel;
    }
    *intact = li;
    *post = lp;
    *kind = pel ? "pel" : "continuous";
}

/* 1 when the forecast weather has ensemble members to sample (study_set_members). */
static int s_members(const forecast *f)
{
    return f->nmember > 1 && f->site_member && f->nsite > 0;
}

/* Site covariance for SP k: the forecast's groups, independent elsewhere. */
static void s_site_cov(const run_ctx *x, size_t k, double *cov, double *gbuf)
{
    const forecast *f = x->fc;
    size_t ns = f->nsite, nsp = f->nsp;
    memset(cov, 0, ns * ns * sizeof(double));
    for (size_t s = 0; s < ns; s++) {
        double sd = f->site_sd[s * nsp + k];
        cov[s * ns + s] = sd * sd + 1e-9;
    }
    for (size_t g = 0; g < f->ngroup; g++) {
        const fc_group *grp = &f->group[g];
        if (grp->kind == FC_GROUP_DEMAND) continue;
        forecast_group_cov(f, g, k, gbuf);
        for (size_t i = 0; i < grp->n; i++)
            for (size_t j = 0; j < grp->n; j++)
                cov[grp->member[i] * ns + grp->member[j]] = gbuf[i * grp->n + j];
    }
    if (!s_members(f)) return;
    /* Members sampled directly: the error around a member is the model's
     * alone (site_sd_model); the members themselves carry the weather's
     * spread.  Same correlations, each sd rescaled. */
    for (size_t s = 0; s < ns; s++) gbuf[s] = f->site_sd[s * nsp + k] > 0
                                                   ? f->site_sd_model[s * nsp + k] / f->site_sd[s * nsp + k] : 0;
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < ns; j++) {
            double jit = i == j ? 1e-9 : 0;
            cov[i * ns + j] = (cov[i * ns + j] - jit) * gbuf[i] * gbuf[j] + jit;
        }
}

/* Members of SP k to sample from (members 1.., the ensemble proper; member 0
 * is the control or deterministic forecast) into mean[(m - 1) * ns + s].
 * The members' values are the physical model's; the AR(1) decay of the last
 * residual (forecast.h) that site_mean carries is added to each, taken as
 * site_mean minus member 0's value. */
static void s_member_means(const run_ctx *x, size_t k, double *mean)
{
    const forecast *f = x->fc;
    size_t ns = f->nsite, nsp = f->nsp, nm = f->nmember;
    for (size_t s = 0; s < ns; s++) {
        double shift = f->site_mean[s * nsp + k] - f->site_member[(s * nm + 0) * nsp + k];
        for (size_t m = 1; m < nm; m++)
            mean[(m - 1) * ns + s] = (f->site_member[(s * nm + m) * nsp + k] + shift) * (x->ratio ? x->ratio[s] : 1);
    }
}

/* The voltage constraints of a study (linear ones, shadows included) and
 * the scratch of their per-SP models. */
typedef struct eng_volt {
    voltage *v;
    size_t nv;
    double *row, *off, *p, *q, *ps, *rev;       /* ps: sites' part of p; rev: [nc] reverse limits, 0 = default */
} eng_volt;

static void s_volt_free(eng_volt *ev)
{
    voltage_destroy(&ev->v);
    free(ev->row);
    free(ev->off);
    free(ev->p);
    free(ev->q);
    free(ev->ps);
    free(ev->rev);
    memset(ev, 0, sizeof *ev);
}

/* ...and the study's full AC solves measure the monitored buses */
static pcf_rc s_volt_new(const run_ctx *x, const study_def *d, study *st, eng_volt *ev, pcf_error *err)
{
    memset(ev, 0, sizeof *ev);
    const zone *z = x->z;
    size_t nz = z->nconstraint, nbus = z->mpc->bus.rows;
    int *bus = calloc(d->nc + 1, sizeof(int));
    double *kv = calloc(d->nc + 1, sizeof(double));
    ev->rev = calloc(d->nc + 1, sizeof(double));
    if (!bus || !kv || !ev->rev) {
        free(bus);
        free(kv);
        return pcf_error_set(err, PCF_ERR_NOMEM, "engine: out of memory");
    }
    for (size_t c = 0; c < d->nc; c++) {
        if (d->constraints[c].nbr) continue;
        const zone_constraint *zc = &z->constraint[c < nz ? c : c - nz];     /* shadows follow */
        bus[ev->nv] = (int)zc->bus_row;
        kv[ev->nv++] = zc->voltage_kv;
        if (c < nz) ev->rev[c] = (1 - zc->vmin_pu) * zc->voltage_kv;
    }
    pcf_rc rc = PCF_OK;
    if (ev->nv) {
        voltage_def vd = { d->net, ev->nv, bus, kv };
        rc = voltage_new(&vd, &ev->v, err);
        if (rc == PCF_OK && !x->o->ac_voltage_linear) rc = study_set_voltage_bus(st, bus, err);
    }
    free(bus);
    free(kv);
    if (rc != PCF_OK || ev->nv == 0) return rc;
    size_t nst = 1 + d->nf, nb = voltage_nb(ev->v);
    ev->row = malloc((nst * ev->nv * nb + 1) * sizeof(double));
    ev->off = malloc((nst * ev->nv + 1) * sizeof(double));
    ev->p = malloc((nbus + 1) * sizeof(double));
    ev->q = malloc((nbus + 1) * sizeof(double));
    ev->ps = malloc((nbus + 1) * sizeof(double));
    if (!ev->row || !ev->off || !ev->p || !ev->q || !ev->ps) return pcf_error_set(err, PCF_ERR_NOMEM, "engine: out of memory");
    return PCF_OK;
}

/* The SP's voltage models, set on the study: linearised at the expected injections,
 * sites at their forecast mean capped at export capacity (unity power
 * factor), demand drawing reactive power at STUDY_AC_DEMAND_PF, firm plant
 * at its schedule; past the nose, with the sites scaled back (voltage.h). */
static pcf_rc s_volt_sp(eng_volt *ev, const run_ctx *x, study *st, const study_topology *t, const double *mean,
                        const double *dem, const double *fixed, pcf_error *err)
{
    if (!ev->v) return PCF_OK;
    double t0 = s_now();
    const zone *z = x->z;
    double tanphi = tan(acos(STUDY_AC_DEMAND_PF));
    for (size_t b = 0; b < z->mpc->bus.rows; b++) {
        ev->p[b] = fixed[b] - dem[b];
        ev->q[b] = -fabs(dem[b]) * tanphi;
        ev->ps[b] = 0;
    }
    for (size_t s = 0; s < z->nsite; s++) {
        double cap = x->ss[s].export_mw, a = mean[s] < 0 ? 0 : mean[s] > cap ? cap : mean[s];
        ev->p[z->site[s].bus_row] += a;
        ev->ps[z->site[s].bus_row] += a;
    }
    pcf_rc rc = voltage_linearise(ev->v, t, ev->p, ev->q, ev->ps, ev->row, ev->off, NULL, err);
    if (rc == PCF_OK) rc = study_set_linear(st, ev->row, ev->off, ev->rev, err);
    x->rep->t_voltage += s_now() - t0;
    return rc;
}

static pcf_rc s_study(run_ctx *x, pcf_error *err)
{
    study_def d;
    memset(&d, 0, sizeof d);
    pcf_rc rc = s_describe(x, &d, err);
    if (rc != PCF_OK) return rc;
    size_t nc = d.nc, ns = d.ns, nsp = x->nsp, nbus = x->z->mpc->bus.rows, nf = d.nf;
    study *st = NULL;
    eng_volt ev = { 0 };
    study_topology *topo[MAX_TOPOLOGIES] = { 0 };
    size_t ntopo = 0, topo_of[50];
    double *lim_i = calloc(nc + 1, sizeof(double)), *lim_f = calloc(nc + 1, sizeof(double));
    double *prob = calloc(nf + 1, sizeof(double)), *cov = calloc(ns * ns + 1, sizeof(double));
    double *gbuf = calloc(ns * ns + nbus * nbus + 1, sizeof(double));
    double *mean = calloc(ns + 1, sizeof(double)), *dem = calloc(nbus + 1, sizeof(double));
    double *dsd = calloc(nbus + 1, sizeof(double));
    double *fixed = calloc(nbus + 1, sizeof(double));
    double *memb = calloc((x->fc->nmember + 1) * (ns + 1), sizeof(double));
    x->pcf = calloc(ns * nsp + 1, sizeof *x->pcf);
    x->cres = calloc(nc * nsp + 1, sizeof *x->cres);
    x->cres_site = calloc(nc * nsp * ns + 1, sizeof *x->cres_site);
    x->sens = calloc(nc * nsp * ns + 1, sizeof(double));
    x->limit_post = calloc(nc * nsp + 1, sizeof(double));
    x->limit_kind = calloc(nc * nsp + 1, sizeof *x->limit_kind);
    x->season = calloc(nsp + 1, sizeof(int));
    if (!lim_i || !lim_f || !prob || !cov || !gbuf || !mean || !dem || !dsd || !fixed || !memb || !x->pcf || !x->cres ||
        !x->cres_site || !x->sens || !x->limit_post || !x->limit_kind || !x->season) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "engine: out of memory");
        goto done;
    }
    /* one topology per distinct set of planned outages */
    for (size_t k = 0; k < nsp && rc == PCF_OK; k++) {
        size_t t;
        for (t = 0; t < k; t++)
            if (x->out[t].n == x->out[k].n &&
                memcmp(x->out[t].rows, x->out[k].rows, x->out[k].n * sizeof(int)) == 0)
                break;
        if (t < k) {
            topo_of[k] = topo_of[t];
            continue;
        }
        if (ntopo == MAX_TOPOLOGIES) {
            rc = pcf_error_set(err, PCF_ERR_LIMIT, "engine: more than %d outage patterns in one run", MAX_TOPOLOGIES);
            break;
        }
        rc = study_topology_new(&d, x->out[k].rows, x->out[k].n, &topo[ntopo], err);
        topo_of[k] = ntopo++;
    }
    x->rep->topologies = ntopo;
    /* The case's own generators other than the reference bus's (which
     * stands for the grid) are firm plant at their scheduled output. */
    const mp_case *mc = x->z->mpc;
    for (size_t g = 0; g < mc->gen.rows; g++) {
        if (MP_AT(&mc->gen, g, MP_GEN_STATUS) <= 0) continue;
        long row = mp_case_bus_row(mc, MP_AT(&mc->gen, g, MP_GEN_BUS));
        if (row >= 0 && MP_AT(&mc->bus, (size_t)row, MP_BUS_TYPE) != MP_REF) fixed[row] += MP_AT(&mc->gen, g, MP_PG);
    }
    if (rc == PCF_OK) rc = study_new(&d, &st, err);
    if (rc == PCF_OK) rc = s_volt_new(x, &d, st, &ev, err);
    if (rc == PCF_OK) rc = study_set_ac(st, x->o->ac, s_ac_band(x->o), err);
    size_t nzc = x->z->nconstraint;
    if (rc == PCF_OK && x->shadow) {
        /* trade checks judge every credible fault (deterministic N-1): the
         * zone's constraints only, their shadows carry the same flows */
        x->fl_want = calloc(nc + 1, 1);
        x->fl = calloc(nzc * nsp * nf + 1, sizeof *x->fl);
        x->fl_sens = calloc(nzc * nsp * nf * x->fl_nsite + 1, sizeof(double));
        if (!x->fl_want || !x->fl || !x->fl_sens) rc = pcf_error_set(err, PCF_ERR_NOMEM, "engine: out of memory");
        for (size_t c = 0; rc == PCF_OK && c < nzc; c++) x->fl_want[c] = 1;
        if (rc == PCF_OK) rc = study_set_fault_loading(st, x->fl_want, x->fl_level, err);
    }
    size_t k_to = x->k_to ? x->k_to : nsp;
    for (size_t k = x->k_from; k < k_to && rc == PCF_OK; k++) {
        const forecast *f = x->fc;
        for (size_t c = 0; c < nc; c++) {
            const char *kind;
            s_limits(x, c, k, &lim_i[c], &lim_f[c], &kind);
            x->limit_post[c * nsp + k] = lim_f[c];
            snprintf(x->limit_kind[c * nsp + k], sizeof x->limit_kind[0], "%s", kind);
        }
        x->season[k] = (int)zone_season_of(x->sp_start[k]);
        for (size_t i = 0; i < nf; i++) prob[i] = zone_fault_probability(x->z, (size_t)x->fault_row[i], 0.5);
        for (size_t s = 0; s < ns; s++) mean[s] = f->site_mean[s * nsp + k] * (x->ratio ? x->ratio[s] : 1);
        for (size_t b = 0; b < nbus; b++) {
            dem[b] = f->bus_mean[b * nsp + k];
            dsd[b] = f->bus_sd[b * nsp + k];
        }
        rng_mvn *mvn = NULL;
        if (ns) {
            s_site_cov(x, k, cov, gbuf);
            /* what-if: a site's error scales with its output; the jitter
             * keeps the matrix positive definite when a site goes to 0 */
            for (size_t i = 0; x->ratio && i < ns; i++)
                for (size_t j = 0; j < ns; j++) {
                    cov[i * ns + j] *= x->ratio[i] * x->ratio[j];
                    if (i == j && x->ratio[i] != 1) cov[i * ns + j] += 1e-9;
                }
            rc = rng_mvn_new(ns, NULL, cov, &mvn, err);
        }
        if (rc != PCF_OK) break;
        if (s_members(f)) s_member_means(x, k, memb);
        rc = study_set_members(st, s_members(f) ? f->nmember - 1 : 0, memb, err);
        x->rep->members = s_members(f) ? f->nmember - 1 : 0;
        if (rc != PCF_OK) {
            rng_mvn_destroy(&mvn);
            break;
        }
        study_sp sp = { topo[topo_of[k]], 0.5, mean, mvn, dem, dsd, fixed, lim_i, lim_f, prob };
        rc = s_volt_sp(&ev, x, st, sp.topo, mean, dem, fixed, err);
        if (rc == PCF_OK) rc = study_run_sp(st, (uint32_t)k, &sp, err);
        rng_mvn_destroy(&mvn);
        if (rc != PCF_OK) break;
        for (size_t s = 0; s < ns && rc == PCF_OK; s++) rc = study_site_result(st, s, &x->pcf[s * nsp + k], err);
        for (size_t c = 0; c < nc; c++) {
            x->cres[c * nsp + k] = *study_constraint_result_get(st, c);
            memcpy(&x->cres_site[(c * nsp + k) * ns], x->cres[c * nsp + k].site, ns * sizeof *x->cres_site);
            x->cres[c * nsp + k].site = &x->cres_site[(c * nsp + k) * ns];
            for (size_t s = 0; s < ns; s++)
                x->sens[(c * nsp + k) * ns + s] = study_sens(st, c, s);
            if (!x->fl || c >= nzc) continue;
            memcpy(&x->fl[(c * nsp + k) * nf], study_fault_loading_get(st, c), nf * sizeof *x->fl);
            /* the run's own model in each state: screened AC rows, and a
             * voltage constraint's SP model, which the topology knows nothing of */
            for (size_t f = 0; f < nf; f++)
                for (size_t i = 0; i < x->fl_nsite; i++)
                    x->fl_sens[((c * nsp + k) * nf + f) * x->fl_nsite + i] =
                        study_sens_in(st, 1 + f, c, x->fl_site[i]);
        }
        double u = study_unresolved_share(st);
        if (u > x->rep->unresolved_share) x->rep->unresolved_share = u;
        if (x->wr && (rc = s_writer_ready(x->wr, k + 1, err)) != PCF_OK) break;
    }
    if (st) {
        study_ac_counts(st, &x->rep->ac_samples, &x->rep->ac_fallbacks);
        x->rep->ac_lin_failures = study_ac_lin_failures(st);
        study_times_get(st, &x->rep->study_t);
    }
    if (ev.v) x->rep->voltage_fallbacks = voltage_fallbacks(ev.v);
    for (size_t c = 0; c < x->z->nconstraint; c++) x->rep->voltage_constraints += x->z->constraint[c].kind == ZONE_C_VOLTAGE;
done:
    study_destroy(&st);
    s_volt_free(&ev);
    for (size_t t = 0; t < ntopo; t++) study_topology_destroy(&topo[t]);
    free(lim_i);
    free(lim_f);
    free(prob);
    free(cov);
    free(gbuf);
    free(mean);
    free(dem);
    free(dsd);
    free(fixed);
    free(memb);
    return rc;
}

/* ---- writing ----------------------------------------------------------------------- */

/* Rows go in binary COPY: no double is formatted by us or parsed by the
 * server (about 108,000 of them in a day-ahead run of the demo zone). */
static void s_copy_str(db_copy *cp, const char *v)
{
    db_copy_bin_text(cp, v, strlen(v));
}

static pcf_rc s_write_pcf(PGconn *c, run_ctx *x, size_t k0, size_t k1, pcf_error *err)
{
    int64_t run_id = x->run_no;
    db_copy *cp = db_copy_new_binary(c, "pcf_result (run_id, site_id, sp, sp_start, p_curtailed, p_curtailed_se,"
                                        " expected_curtailed_mwh, expected_curtailed_se, deliverable_p10_mw,"
                                        " deliverable_p50_mw, deliverable_p90_mw, deliverable_p10_se_mw,"
                                        " deliverable_p50_se_mw, deliverable_p90_se_mw, firm95_mw, firm95_se_mw)", err);
    if (!cp) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    for (size_t s = 0; s < x->z->nsite && rc == PCF_OK; s++)
        for (size_t k = k0; k < k1 && rc == PCF_OK; k++) {
            const mcstat_pcf *p = &x->pcf[s * x->nsp + k];
            db_copy_bin_int8(cp, run_id);
            s_copy_str(cp, x->z->site[s].id);
            db_copy_bin_int2(cp, (int16_t)x->sp_number[k]);
            db_copy_bin_timestamptz(cp, x->sp_start[k]);
            db_copy_bin_float8(cp, p->p_curtailed);
            db_copy_bin_float8(cp, p->p_curtailed_se);
            db_copy_bin_float8(cp, p->curtailed_mwh);
            db_copy_bin_float8(cp, p->curtailed_mwh_se);
            db_copy_bin_float8(cp, p->p10_mw);
            db_copy_bin_float8(cp, p->p50_mw);
            db_copy_bin_float8(cp, p->p90_mw);
            db_copy_bin_float8(cp, p->p10_se);
            db_copy_bin_float8(cp, p->p50_se);
            db_copy_bin_float8(cp, p->p90_se);
            db_copy_bin_float8(cp, p->firm95_mw);
            db_copy_bin_float8(cp, p->firm95_se);
            rc = db_copy_end_row(cp, err);
        }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    return rc;
}

static pcf_rc s_write_statements(PGconn *c, run_ctx *x, size_t k0, size_t k1, pcf_error *err)
{
    int64_t run_id = x->run_no;
    const zone *z = x->z;
    size_t nsp = x->nsp, ns = z->nsite;
    db_copy *cp = db_copy_new_binary(c, "constraint_statement (run_id, constraint_id, sp, sp_start, limit_mw, limit_kind,"
                                        " season, flow_intact_p10_mw, flow_intact_p50_mw, flow_intact_p90_mw,"
                                        " flow_fault_p10_mw, flow_fault_p50_mw, flow_fault_p90_mw, p_anm_acts,"
                                        " p_anm_acts_se, expected_curtailment_mwh, expected_curtailment_se,"
                                        " binding_fault_branch_id, post_fault_limit_mw, p_binding_fault,"
                                        " p_binding_fault_se, flow_intact_p10_se_mw, flow_intact_p50_se_mw,"
                                        " flow_intact_p90_se_mw, flow_fault_p10_se_mw, flow_fault_p50_se_mw,"
                                        " flow_fault_p90_se_mw, unit, limit_low)", err);
    if (!cp) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    for (size_t c = 0; c < z->nconstraint && rc == PCF_OK; c++)
        for (size_t k = k0; k < k1 && rc == PCF_OK; k++) {
            const study_constraint_result *r = &x->cres[c * nsp + k];
            db_copy_bin_int8(cp, run_id);
            s_copy_str(cp, z->constraint[c].id);
            db_copy_bin_int2(cp, (int16_t)x->sp_number[k]);
            db_copy_bin_timestamptz(cp, x->sp_start[k]);
            db_copy_bin_float8(cp, r->limit_mw);
            s_copy_str(cp, x->limit_kind[c * nsp + k]);
            s_copy_str(cp, zone_season_name((zone_season)x->season[k]));
            db_copy_bin_float8(cp, r->flow_p10);
            db_copy_bin_float8(cp, r->flow_p50);
            db_copy_bin_float8(cp, r->flow_p90);
            if (r->has_fault_flow) {
                db_copy_bin_float8(cp, r->fault_p10);
                db_copy_bin_float8(cp, r->fault_p50);
                db_copy_bin_float8(cp, r->fault_p90);
            } else {
                db_copy_bin_null(cp);
                db_copy_bin_null(cp);
                db_copy_bin_null(cp);
            }
            db_copy_bin_float8(cp, r->p_acts);
            db_copy_bin_float8(cp, r->p_acts_se);
            db_copy_bin_float8(cp, r->curtail_mwh);
            db_copy_bin_float8(cp, r->curtail_mwh_se);
            if (r->binding_fault >= 0) db_copy_bin_int8(cp, z->branch[x->fault_row[r->binding_fault]].branch_id);
            else db_copy_bin_null(cp);
            db_copy_bin_float8(cp, r->limit_fault_mw);
            db_copy_bin_float8(cp, r->p_binding);
            db_copy_bin_float8(cp, r->p_binding_se);
            for (int q = 0; q < 3; q++) db_copy_bin_float8(cp, r->flow_se[q]);
            for (int q = 0; q < 3; q++) {
                if (r->has_fault_flow) db_copy_bin_float8(cp, r->fault_se[q]);
                else db_copy_bin_null(cp);
            }
            const zone_constraint *zc = &z->constraint[c];
            s_copy_str(cp, zc->kind == ZONE_C_VOLTAGE ? "kV" : "MW");
            if (zc->kind == ZONE_C_VOLTAGE) db_copy_bin_float8(cp, (1 - zc->vmin_pu) * zc->voltage_kv);
            else db_copy_bin_null(cp);
            rc = db_copy_end_row(cp, err);
        }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    if (rc != PCF_OK) return rc;

    cp = db_copy_new_binary(c, "constraint_statement_site (run_id, constraint_id, sp, site_id, lifo_position,"
                               " sensitivity, expected_curtailment_mwh, expected_curtailment_se, p_curtailed,"
                               " p_curtailed_se, unit)", err);
    if (!cp) return PCF_ERR_DB;
    for (size_t c = 0; c < z->nconstraint && rc == PCF_OK; c++) {
        const zone_constraint *zc = &z->constraint[c];
        for (size_t k = k0; k < k1 && rc == PCF_OK; k++)
            for (size_t i = 0; i < zc->nsite && rc == PCF_OK; i++) {
                size_t s = zc->site[i];
                if (z->site[s].firm || z->site[s].lifo_position < 1) continue;
                /* a signed sum over a cut set stays within [-1, 1]; clamp the
                 * rounding (a voltage constraint's is kV per MW: unbounded) */
                double sens = x->sens[(c * nsp + k) * ns + s];
                if (zc->kind != ZONE_C_VOLTAGE) sens = sens > 1 ? 1 : (sens < -1 ? -1 : sens);
                db_copy_bin_int8(cp, run_id);
                s_copy_str(cp, zc->id);
                db_copy_bin_int2(cp, (int16_t)x->sp_number[k]);
                s_copy_str(cp, z->site[s].id);
                db_copy_bin_int4(cp, z->site[s].lifo_position);
                db_copy_bin_float8(cp, sens);
                const study_site_curt *sc = &x->cres_site[(c * nsp + k) * ns + s];
                db_copy_bin_float8(cp, sc->mwh);
                db_copy_bin_float8(cp, sc->mwh_se);
                db_copy_bin_float8(cp, sc->p);
                db_copy_bin_float8(cp, sc->p_se);
                s_copy_str(cp, zc->kind == ZONE_C_VOLTAGE ? "kV" : "MW");
                rc = db_copy_end_row(cp, err);
            }
    }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    if (rc != PCF_OK) return rc;

    cp = db_copy_new_binary(c, "constraint_block (run_id, constraint_id, sp, confidence, headroom_mw, curtailment_mw,"
                               " curtailment_mwh, headroom_se_mw, curtailment_se_mw, curtailment_mwh_se)", err);
    if (!cp) return PCF_ERR_DB;
    for (size_t c = 0; c < z->nconstraint && rc == PCF_OK; c++)
        for (size_t k = k0; k < k1 && rc == PCF_OK; k++)
            for (int q = 0; q < STUDY_NLEVELS && rc == PCF_OK; q++) {
                const study_constraint_result *r = &x->cres[c * nsp + k];
                db_copy_bin_int8(cp, run_id);
                s_copy_str(cp, z->constraint[c].id);
                db_copy_bin_int2(cp, (int16_t)x->sp_number[k]);
                db_copy_bin_float8(cp, study_levels[q]);
                db_copy_bin_float8(cp, r->headroom_mw[q]);
                db_copy_bin_float8(cp, r->curtail_mw[q]);
                db_copy_bin_float8(cp, r->curtail_mw[q] * 0.5);
                db_copy_bin_float8(cp, r->headroom_se[q]);
                db_copy_bin_float8(cp, r->curtail_mw_se[q]);
                db_copy_bin_float8(cp, r->curtail_mw_se[q] * 0.5);
                rc = db_copy_end_row(cp, err);
            }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    return rc;
}

/* The run's transaction, opened before the study: BEGIN and the run row
 * (every result row refers to it), so the rows can stream in as the study
 * makes them.  Its started_at (now(), the transaction's start) is the
 * study's start. */
static pcf_rc s_write_begin(PGconn *c, run_ctx *x, pcf_error *err)
{
    const engine_opts *o = x->o;
    /* Every foreign-key check of the rows is a lookup by the referenced
     * table's key.  PostgreSQL plans each once per connection and keeps
     * the plan; made while constraint_statement or run look empty (a new
     * database, or the first batch of a run, when the statistics or the
     * table's size say a few rows), it is a sequential scan, and every
     * row checked then reads every statement of every run: a day-ahead
     * run's batches went from 0.07 to 0.9 s as runs accumulated, until
     * autovacuum's ANALYZE forced a new plan.  An index probe is right at
     * any size here, so the transaction asks for it.  It idles between
     * batches for as long as the study runs: a server's or role's
     * idle_in_transaction_session_timeout (hardened settings have one)
     * would kill every run, and each engine taking the job over would
     * fail the same way, so the transaction lifts it for itself. */
    pcf_rc rc = db_exec(c, "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL idle_in_transaction_session_timeout = 0",
                        err);
    if (rc != PCF_OK) return rc;
    char date[16] = "", start[SPTIME_ISO_LEN], end[SPTIME_ISO_LEN], nsp[8], seed[24], samples[24];
    if (o->kind == ENGINE_DAY_AHEAD) snprintf(date, sizeof date, "%04d-%02d-%02d", o->year, o->month, o->day);
    sptime_format_utc(x->sp_start[0], start, sizeof start);
    sptime_format_utc(x->sp_start[x->nsp - 1] + HISTORY_SLOT, end, sizeof end);
    snprintf(nsp, sizeof nsp, "%zu", x->nsp);
    /* the seed column is a signed bigint: store the bit pattern */
    snprintf(seed, sizeof seed, "%lld", (long long)(int64_t)s_seed(x));
    snprintf(samples, sizeof samples, "%zu", s_samples(o));
    /* The power-flow method changes the results; the run table has no
     * column for it, so it goes with the software version. */
    char ver[160];
    const char *v0 = o->version ? o->version : "unknown";
    if (o->ac == STUDY_AC_OFF)
        snprintf(ver, sizeof ver, "%s (ac off)", v0);
    else if (o->ac == STUDY_AC_ALL)
        snprintf(ver, sizeof ver, "%s (ac all)", v0);
    else if (o->ac == STUDY_AC_SCREEN)
        snprintf(ver, sizeof ver, "%s (ac screened %g%%)", v0, 100 * s_ac_band(o));
    else
        snprintf(ver, sizeof ver, "%s (ac band %g%%)", v0, 100 * o->ac_band);
    const char *p[12] = { o->zone, o->kind == ENGINE_DAY_AHEAD ? "day_ahead" : "real_time",
                          date[0] ? date : NULL, start, end, nsp, seed, samples,
                          x->scada_as_of[0] ? x->scada_as_of : NULL,
                          x->weather_as_of[0] ? x->weather_as_of : NULL,
                          x->outages_as_of[0] ? x->outages_as_of : NULL, ver };
    PGresult *r = db_query(c, "INSERT INTO run (zone_id, kind, target_date, horizon_start, horizon_end, sp_count,"
                              " seed, samples, scada_as_of, weather_as_of, outages_as_of, software_version)"
                              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING run_id",
                           12, p, err);
    if (!r) rc = PCF_ERR_DB;
    else snprintf(x->run_id, sizeof x->run_id, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    long id = 0;
    if (rc == PCF_OK && parse_long(x->run_id, strlen(x->run_id), &id) != PCF_OK)
        rc = pcf_error_set(err, PCF_ERR_DB, "engine: run id '%.24s' is not a number", x->run_id);
    x->run_no = id;
    if (rc != PCF_OK) db_rollback(c);
    return rc;
}

/* The result rows of SPs [k0, k1): statements first, their site rows and
 * blocks refer to them. */
static pcf_rc s_write_rows(PGconn *c, run_ctx *x, size_t k0, size_t k1, pcf_error *err)
{
    pcf_rc rc = s_write_statements(c, x, k0, k1, err);
    if (rc == PCF_OK) rc = s_write_pcf(c, x, k0, k1, err);
    return rc;
}

/* The end of the run's transaction once every row is in: finished_at (the
 * clock, not now(): the transaction began with the study), the job's
 * completion if this engine still holds it, NOTIFY, COMMIT.  Rolls back
 * on any failure. */
static pcf_rc s_write_end(PGconn *c, run_ctx *x, pcf_error *err)
{
    const engine_opts *o = x->o;
    const char *np[1] = { x->run_id };
    pcf_rc rc = PCF_OK;
    PGresult *r = db_query(c, "UPDATE run SET finished_at = clock_timestamp() WHERE run_id = $1::bigint", 1, np, err);
    if (!r) rc = PCF_ERR_DB;
    PQclear(r);
    if (rc == PCF_OK && o->job_id) {
        char job[24];
        snprintf(job, sizeof job, "%lld", o->job_id);
        const char *jp[3] = { job, x->run_id, o->worker ? o->worker : "" };
        r = db_query(c, "UPDATE run_queue SET status = 'done', run_id = $2::bigint, finished_at = clock_timestamp()"
                        " WHERE job_id = $1::bigint AND status = 'claimed' AND claimed_by = $3 RETURNING job_id",
                     3, jp, err);
        if (!r) rc = PCF_ERR_DB;
        else if (PQntuples(r) != 1)
            rc = pcf_error_set(err, PCF_ERR_INVALID, "job %lld was taken over by another engine; run discarded",
                               o->job_id);
        PQclear(r);
    }
    if (rc == PCF_OK) {
        r = db_query(c, "SELECT pg_notify('pcf_run', $1)", 1, np, err);
        if (!r) rc = PCF_ERR_DB;
        PQclear(r);
    }
    if (rc == PCF_OK) rc = db_exec(c, "COMMIT", err);
    if (rc != PCF_OK) {
        db_rollback(c);
        return rc;
    }
    x->rep->run_id = x->run_no;
    return PCF_OK;
}

/* The writer thread: waits for SPs to be ready and writes all that are, as
 * one COPY per table, so it batches by itself when the server falls behind.
 * On "abandon" it stops without writing what is left. */
static void *s_writer_main(void *arg)
{
    eng_writer *w = arg;
    size_t done = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->ready < done + w->batch && !w->closing) pthread_cond_wait(&w->cv, &w->mu);
        size_t to = w->ready;
        int closing = w->closing;
        pthread_mutex_unlock(&w->mu);
        if (closing == ENG_WRITER_ABANDON || to == done) break;
        double t0 = s_now();
        pcf_rc rc = s_write_rows(w->c, w->x, done, to, &w->err);
        w->busy += s_now() - t0;
        if (rc != PCF_OK) {
            pthread_mutex_lock(&w->mu);
            w->rc = rc;
            w->failed = 1;
            pthread_mutex_unlock(&w->mu);
            break;
        }
        done = to;
    }
    return NULL;
}

static pcf_rc s_writer_start(eng_writer *w, PGconn *c, run_ctx *x, pcf_error *err)
{
    memset(w, 0, sizeof *w);
    w->c = c;
    w->x = x;
    /* Each COPY costs the server a statement's set-up besides its rows:
     * 4 tables x 48 SPs one at a time took 0.56-0.61 s of server CPU for a
     * day-ahead run against 0.42-0.51 s written at the end, in batches of
     * 6 SPs 0.43-0.49 s.  About eight batches a run; the last one is
     * what the study waits for. */
    w->batch = (x->nsp + 7) / 8;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->tid, NULL, s_writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        return pcf_error_set(err, PCF_ERR_NOMEM, "engine: cannot start the writer thread");
    }
    return PCF_OK;
}

/* Ends the writer (how: ENG_WRITER_FINISH writes what is ready first) and
 * gives the connection back; its error, if it failed. */
static pcf_rc s_writer_stop(eng_writer *w, int how, pcf_error *err)
{
    pthread_mutex_lock(&w->mu);
    w->closing = how;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->tid, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    if (!w->failed) return PCF_OK;
    *err = w->err;
    return w->rc;
}

/* ---- the run ------------------------------------------------------------------------- */

/* Frees what s_study made, so a what-if can study the same inputs again. */
static void s_free_study(run_ctx *x)
{
    free(x->sc);
    free(x->sc_rows);
    free(x->sc_sign);
    free(x->ss);
    free(x->tr);
    free(x->member);
    free(x->fault_row);
    free(x->pcf);
    free(x->cres);
    free(x->cres_site);
    free(x->sens);
    free(x->limit_post);
    free(x->limit_kind);
    free(x->season);
    free(x->fl_want);
    free(x->fl);
    free(x->fl_sens);
    x->fl_want = NULL;
    x->fl = NULL;
    x->fl_sens = NULL;
    x->sc = NULL;
    x->sc_rows = x->fault_row = NULL;
    x->sc_sign = x->sens = x->limit_post = NULL;
    x->cres_site = NULL;
    x->ss = NULL;
    x->tr = NULL;
    x->member = NULL;
    x->pcf = NULL;
    x->cres = NULL;
    x->limit_kind = NULL;
    x->season = NULL;
    x->nf = 0;
}

static void s_free(run_ctx *x)
{
    if (!x->cached) {
        zone_destroy(&x->z);
        history_destroy(&x->hist);
        wx_series_destroy(&x->hist_wx);
    }
    forecast_destroy(&x->fc);
    wx_series_destroy(&x->fc_wx);
    s_free_study(x);
}

/* The run's transaction opens before the study and the writer streams each
 * SP's rows while the study makes the next.  t_write is what the study
 * waits for (the run row, then the last SP's rows and the commit),
 * t_write_stream the writer's time beside the study. */
static pcf_rc s_study_and_write(PGconn *conn, run_ctx *x, pcf_error *err)
{
    engine_report *rep = x->rep;
    int streaming = !x->o->write_after_study;
    double t1 = s_now();
    pcf_rc rc = s_write_begin(conn, x, err);
    rep->t_write = s_now() - t1;
    if (rc != PCF_OK) return rc;
    t1 = s_now();
    if (!streaming) {
        rc = s_study(x, err);
        rep->t_study = s_now() - t1;
        t1 = s_now();
    }
    eng_writer w;
    if (rc == PCF_OK) rc = s_writer_start(&w, conn, x, err);
    if (rc != PCF_OK) {
        db_rollback(conn);
        return rc;
    }
    if (streaming) {
        x->wr = &w;
        rc = s_study(x, err);
        x->wr = NULL;
        rep->t_study = s_now() - t1;
        t1 = s_now();
    } else {
        rc = s_writer_ready(&w, x->nsp, err);
    }
    pcf_error werr;
    pcf_rc wrc = s_writer_stop(&w, rc == PCF_OK ? ENG_WRITER_FINISH : ENG_WRITER_ABANDON, &werr);
    if (rc == PCF_OK && wrc != PCF_OK) {
        rc = wrc;
        *err = werr;
    }
    if (rc == PCF_OK) rc = s_write_end(conn, x, err);
    else db_rollback(conn);
    rep->t_write += s_now() - t1;
    rep->t_write_stream = streaming ? w.busy : 0;
    return rc;
}

pcf_rc engine_run(PGconn *conn, const engine_opts *o, engine_report *rep, pcf_error *err)
{
    run_ctx x;
    memset(&x, 0, sizeof x);
    memset(rep, 0, sizeof *rep);
    x.o = o;
    x.rep = rep;
    double t0 = s_now();
    if (!o->zone || (o->kind != ENGINE_DAY_AHEAD && o->kind != ENGINE_REAL_TIME))
        return pcf_error_set(err, PCF_ERR_INVALID, "engine: zone and kind are required");
    pcf_rc rc = s_load(conn, &x, err);
    if (rc == PCF_OK) {
        double t1 = s_now();
        forecast_input in = { x.z, x.hist, x.hist_wx, x.fc_wx, x.sp_start, x.nsp, x.anchor, NULL };
        rc = forecast_run(&in, &x.fc, err);
        rep->t_forecast = s_now() - t1;
    }
    if (rc == PCF_OK) rc = s_study_and_write(conn, &x, err);
    rep->sp_count = x.nsp;
    rep->t_total = s_now() - t0;
    s_free(&x);
    return rc;
}

/* ---- what-if ------------------------------------------------------------------------- */

void engine_whatif_result_destroy(engine_whatif_result **rp)
{
    if (!rp || !*rp) return;
    engine_whatif_result *r = *rp;
    free(r->constraint_id);
    free(r->member);
    free(r->sp);
    free(r->sp_start);
    free(r->limit);
    free(r->q_before);
    free(r->q_after);
    free(r->p_before);
    free(r->p_after);
    free(r->sens);
    free(r->dir);
    free(r->export_before);
    free(r->fault_id);
    free(r->limit_fault);
    free(r->qf_before);
    free(r->qf_after);
    free(r->dir_fault);
    free(r->sens_fault);
    free(r);
    *rp = NULL;
}

/* Copies the figures of the study just made into r (after = 0 before, 1 after). */
static void s_whatif_take(const run_ctx *x, const size_t *site, engine_whatif_result *r, int after)
{
    size_t nc = r->nc, ns = x->z->nsite, nsp = x->nsp;
    for (size_t c = 0; c < nc; c++)
        for (size_t k = 0; k < r->nsp; k++) {
            size_t kk = x->k_from + k, o = c * r->nsp + k;
            const study_constraint_result *cr = &x->cres[c * nsp + kk];
            const study_constraint_result *sh = &x->cres[(nc + c) * nsp + kk];
            double trim = x->sc[c].trim > 0 ? x->sc[c].trim : 1;
            double *q = after ? &r->q_after[o * STUDY_NLEVELS] : &r->q_before[o * STUDY_NLEVELS];
            /* the shadow's headroom is ENGINE_SHADOW_LIMIT * trim - loading quantile */
            for (int l = 0; l < STUDY_NLEVELS; l++) q[l] = ENGINE_SHADOW_LIMIT * trim - sh->headroom_mw[l];
            for (size_t f = 0; f < r->nf; f++) {
                const study_fault_loading *fl = &x->fl[(c * nsp + kk) * r->nf + f];
                double *qf = after ? r->qf_after : r->qf_before;
                memcpy(&qf[(o * r->nf + f) * STUDY_NLEVELS], fl->q, sizeof fl->q);
                if (after) continue;
                r->dir_fault[o * r->nf + f] = fl->dir;
                memcpy(&r->sens_fault[(o * r->nf + f) * r->nchange], &x->fl_sens[((c * nsp + kk) * r->nf + f) * r->nchange],
                       r->nchange * sizeof(double));
            }
            if (after) {
                r->p_after[o] = cr->p_acts;
                continue;
            }
            r->limit_fault[o] = cr->limit_fault_mw;
            r->limit[o] = cr->limit_mw;
            r->dir[o] = x->sc[c].one_way || cr->flow_p50 >= 0 ? 1 : -1;
            r->p_before[o] = cr->p_acts;
            for (size_t i = 0; i < r->nchange; i++) r->sens[o * r->nchange + i] = x->sens[(c * nsp + kk) * ns + site[i]];
        }
}

/* Sizes r's per-fault arrays for the credible faults of the study just made
 * and names the faults as the statements do. */
static pcf_rc s_whatif_faults(const run_ctx *x, engine_whatif_result *r, pcf_error *err)
{
    size_t nf = x->nf, m = r->nc * r->nsp;
    r->nf = nf;
    r->fault_id = calloc(nf + 1, sizeof *r->fault_id);
    r->limit_fault = calloc(m + 1, sizeof(double));
    r->qf_before = calloc(m * nf * STUDY_NLEVELS + 1, sizeof(double));
    r->qf_after = calloc(m * nf * STUDY_NLEVELS + 1, sizeof(double));
    r->dir_fault = calloc(m * nf + 1, sizeof(double));
    r->sens_fault = calloc(m * nf * r->nchange + 1, sizeof(double));
    if (!r->fault_id || !r->limit_fault || !r->qf_before || !r->qf_after || !r->dir_fault || !r->sens_fault)
        return pcf_error_set(err, PCF_ERR_NOMEM, "what-if: out of memory");
    for (size_t f = 0; f < nf; f++) {
        const zone_branch *b = &x->z->branch[x->fault_row[f]];
        if (b->name[0]) snprintf(r->fault_id[f], sizeof r->fault_id[f], "%s", b->name);
        else snprintf(r->fault_id[f], sizeof r->fault_id[f], "%d", x->fault_row[f] + 1);
    }
    return PCF_OK;
}

pcf_rc engine_whatif_run(PGconn *conn, const engine_opts *o, const engine_whatif *w, engine_whatif_result **out,
                         pcf_error *err)
{
    *out = NULL;
    if (!o || !o->zone || (o->kind != ENGINE_DAY_AHEAD && o->kind != ENGINE_REAL_TIME))
        return pcf_error_set(err, PCF_ERR_INVALID, "what-if: zone and kind are required");
    if (!w || w->nchange < 1 || w->nchange > ENGINE_WHATIF_MAX_CHANGES || !w->site_id || !w->delta_mw)
        return pcf_error_set(err, PCF_ERR_INVALID, "what-if: 1 to %d capacity changes are required",
                             ENGINE_WHATIF_MAX_CHANGES);
    for (size_t i = 0; i < w->nchange; i++) {
        if (!w->site_id[i] || !w->site_id[i][0])
            return pcf_error_set(err, PCF_ERR_INVALID, "what-if: change %zu has no site", i + 1);
        if (!isfinite(w->delta_mw[i]) || w->delta_mw[i] == 0)
            return pcf_error_set(err, PCF_ERR_INVALID, "what-if: change %zu (%.64s) needs a finite non-zero MW", i + 1,
                                 w->site_id[i]);
        for (size_t j = 0; j < i; j++)
            if (strcmp(w->site_id[i], w->site_id[j]) == 0)
                return pcf_error_set(err, PCF_ERR_INVALID, "what-if: site %.64s is changed twice", w->site_id[i]);
    }
    double t0 = s_now();
    engine_report rep;
    memset(&rep, 0, sizeof rep);
    run_ctx x;
    memset(&x, 0, sizeof x);
    x.o = o;
    x.rep = &rep;
    engine_whatif_result *r = NULL;
    double *ratio = NULL;
    size_t site[ENGINE_WHATIF_MAX_CHANGES];
    pcf_rc rc = s_load(conn, &x, err);
    if (rc == PCF_OK) {
        forecast_input in = { x.z, x.hist, x.hist_wx, x.fc_wx, x.sp_start, x.nsp, x.anchor, NULL };
        rc = forecast_run(&in, &x.fc, err);
    }
    if (rc != PCF_OK) goto done;
    size_t ns = x.z->nsite, nc = x.z->nconstraint;
    ratio = calloc(ns + 1, sizeof(double));
    r = calloc(1, sizeof *r);
    if (!ratio || !r) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "what-if: out of memory");
        goto done;
    }
    for (size_t s = 0; s < ns; s++) ratio[s] = 1;
    for (size_t i = 0; i < w->nchange && rc == PCF_OK; i++) {
        size_t s;
        for (s = 0; s < ns; s++)
            if (strcmp(x.z->site[s].id, w->site_id[i]) == 0) break;
        if (s == ns) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "what-if: no site %.64s in zone %.64s", w->site_id[i], o->zone);
            break;
        }
        double e = x.z->site[s].export_mw;
        if (!(e > 0)) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "what-if: site %.64s has no export capacity to change",
                               w->site_id[i]);
            break;
        }
        site[i] = s;
        ratio[s] = e + w->delta_mw[i] > 0 ? (e + w->delta_mw[i]) / e : 0;
    }
    if (rc != PCF_OK) goto done;
    int a = w->first_sp ? w->first_sp : 1, b = w->last_sp ? w->last_sp : (int)x.nsp;
    if (a < 1 || b < a || b > (int)x.nsp) {
        rc = pcf_error_set(err, PCF_ERR_INVALID, "what-if: SPs %d..%d outside 1..%zu of the horizon", a, b, x.nsp);
        goto done;
    }
    x.k_from = (size_t)a - 1;
    x.k_to = (size_t)b;
    x.shadow = 1;
    x.fl_level = w->confidence;
    x.fl_site = site;
    x.fl_nsite = w->nchange;
    r->nc = nc;
    r->nsp = (size_t)(b - a + 1);
    r->nchange = w->nchange;
    size_t m = nc * r->nsp;
    r->constraint_id = calloc(nc + 1, sizeof *r->constraint_id);
    r->member = calloc(nc * w->nchange + 1, 1);
    r->sp = calloc(r->nsp, sizeof(int));
    r->sp_start = calloc(r->nsp, sizeof(int64_t));
    r->limit = calloc(m + 1, sizeof(double));
    r->q_before = calloc(m * STUDY_NLEVELS + 1, sizeof(double));
    r->q_after = calloc(m * STUDY_NLEVELS + 1, sizeof(double));
    r->p_before = calloc(m + 1, sizeof(double));
    r->p_after = calloc(m + 1, sizeof(double));
    r->sens = calloc(m * w->nchange + 1, sizeof(double));
    r->dir = calloc(m + 1, sizeof(double));
    r->export_before = calloc(w->nchange, sizeof(double));
    if (!r->constraint_id || !r->member || !r->sp || !r->sp_start || !r->limit || !r->q_before || !r->q_after ||
        !r->p_before || !r->p_after || !r->sens || !r->dir || !r->export_before) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "what-if: out of memory");
        goto done;
    }
    for (size_t c = 0; c < nc; c++) {
        const zone_constraint *zc = &x.z->constraint[c];
        snprintf(r->constraint_id[c], sizeof r->constraint_id[c], "%s", zc->id);
        for (size_t j = 0; j < zc->nsite; j++)
            for (size_t i = 0; i < w->nchange; i++)
                if (zc->site[j] == site[i]) r->member[c * w->nchange + i] = 1;
    }
    for (size_t k = 0; k < r->nsp; k++) {
        r->sp[k] = x.sp_number[x.k_from + k];
        r->sp_start[k] = x.sp_start[x.k_from + k];
    }
    for (size_t i = 0; i < w->nchange; i++) r->export_before[i] = x.z->site[site[i]].export_mw;
    /* before: as-is; after: the same inputs and streams with the trade */
    rc = s_study(&x, err);
    if (rc == PCF_OK) rc = s_whatif_faults(&x, r, err);
    if (rc == PCF_OK) s_whatif_take(&x, site, r, 0);
    s_free_study(&x);
    if (rc == PCF_OK) {
        x.ratio = ratio;
        rc = s_study(&x, err);
    }
    if (rc == PCF_OK) s_whatif_take(&x, site, r, 1);
    r->samples = rep.samples;
    r->seed = rep.seed;
done:
    s_free(&x);
    free(ratio);
    if (rc != PCF_OK) {
        engine_whatif_result_destroy(&r);
        return rc;
    }
    r->t_total = s_now() - t0;
    *out = r;
    return PCF_OK;
}
