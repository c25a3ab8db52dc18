/*
 * forecast.h -- point forecasts and error models for every injection of a
 * zone, per settlement period: site outputs (solar and wind through the
 * physical models of solar.h / wind.h calibrated on each site's history;
 * everything else by persistence of its recent daily profile) and demand
 * per bus (least-squares regression on calendar and weather).
 *
 * Pure computation: the inputs are a loaded zone (zone.h) and the history
 * and weather arrays of history.h, which tests build by hand; nothing here
 * touches the database, prints, or keeps state, so forecast_run may be
 * called from any thread.
 *
 * Error model (fc_errmodel): the residuals of each model on its history
 * (measured minus modelled) give a standard deviation by local half-hour
 * of day, and their lag-one autocorrelation phi.  Treating the residual as
 * AR(1), a forecast made `lead` half-hours after the last measurement
 * (the anchor) has sd = sd_tod * sqrt(1 - phi^(2 lead)) and the last
 * residual r0 decays into the mean as phi^lead r0; far ahead (day-ahead)
 * this tends to the unconditional sd_tod and no correction.  Because the
 * history is modelled with the weather forecasts that were current at the
 * time (history_load_weather), sd_tod includes the weather forecast error.
 *
 * Correlation: per fuel type (and one group for demand), the residuals'
 * correlation matrix over the half-hours where every member has one, shrunk
 * toward a constant-correlation target with the Schafer-Strimmer (2005)
 * intensity, and pushed further toward the target until its Cholesky
 * factorisation succeeds, so it is always positive definite.  The area of
 * a group is the zone (a zone is tens of km across; see methodology.md).
 *
 * Methods and defaults are stated with their sources in docs/methodology.md
 * ("## Forecasts").
 */
#ifndef PCF_FORECAST_H
#define PCF_FORECAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "history.h"
#include "zone.h"

#define FC_NTOD 48
/* demand regressors: 48 half-hour-of-day levels, Saturday, Sunday or
 * holiday, heating degrees below 15.5 C, cooling degrees above 22 C,
 * GHI in kW/m2 (embedded PV behind the meter) */
#define FC_DEMAND_NFEAT 53
#define FC_HDD_BASE_C 15.5
#define FC_CDD_BASE_C 22.0

/* sd of a solar or wind forecast that has no history to learn its error
 * from, as a fraction of export capacity (day-ahead errors of single UK
 * sites are typically 5-15 % of capacity). */
#define FC_DEFAULT_SD_FRACTION 0.10

/* Weather variables the forecasts read, for history_load_weather. */
extern const char *const FORECAST_WX_VARS[4];
#define FORECAST_NWX 4

/* Local (Europe/London) half-hour of day of the slot starting at t, 0..47.
 * On clock-change days the repeated hour maps twice, the skipped one never. */
int fc_tod(int64_t t);

/* True on the bank holidays of England and Wales by the standing rules
 * (Banking and Financial Dealings Act 1971): New Year's Day, Good Friday,
 * Easter Monday, the first and last Mondays of May, the last Monday of
 * August, Christmas and Boxing Day, weekend ones moved to the following
 * weekdays.  One-off proclamations (jubilees, coronations, a moved May
 * holiday) are not known. */
bool fc_bank_holiday_ew(int year, int month, int day);

typedef struct fc_errmodel {
    double sd_tod[FC_NTOD];     /* residual sd by half-hour of day (overall sd where too few values) */
    double sd;                  /* overall residual sd */
    double phi;                 /* lag-one autocorrelation, clamped to [0, 0.999] */
    size_t n;                   /* residuals used */
} fc_errmodel;

/* Fits from residuals r[nt] on the half-hour grid starting at t0 (NAN
 * missing).  With no residual at all everything is 0. */
void fc_errmodel_fit(int64_t t0, const double *r, size_t nt, fc_errmodel *m);

/* sd of a forecast for the slot starting at t, `lead` half-hours after the
 * anchor (lead < 1 counts as 1). */
double fc_errmodel_sd(const fc_errmodel *m, int64_t t, double lead);

/* ---- demand -------------------------------------------------------------- */

void fc_demand_features(int64_t t, double temp_c, double ghi_wm2, bool holiday, double x[FC_DEMAND_NFEAT]);

typedef struct fc_demand {
    double beta[FC_DEMAND_NFEAT];
    size_t n;                   /* half-hours used in the fit */
    size_t rank;                /* effective rank of the design (SVD) */
    fc_errmodel err;
} fc_demand;

/* Least squares (normal equations, minimum-norm) of y[nt] on the features, over the
 * grid starting at t0; rows with y missing are skipped; temp/ghi may be NULL
 * or NAN (their terms are then 0); holiday may be NULL.  PCF_ERR_INVALID
 * with fewer than 2 * FC_DEMAND_NFEAT usable half-hours. */
pcf_rc fc_demand_fit(int64_t t0, size_t nt, const double *y, const double *temp, const double *ghi,
                     const bool *holiday, fc_demand *m, pcf_error *err);
double fc_demand_predict(const fc_demand *m, int64_t t, double temp_c, double ghi_wm2, bool holiday);

/* ---- calibration and correlation ------------------------------------------ */

/* Scale factor s with meas ~ s * model, least squares through the origin
 * over the half-hours where the model is clearly producing and s * model
 * stays below 90 % of limit_mw (so export clipping and curtailment at the
 * limit cannot bias it).  First pass on model < 50 % of the limit.  Fewer
 * than 48 usable half-hours: s = 1.  s is kept in [0.1, 3]. */
double fc_calibrate_scale(const double *model, const double *meas, size_t n, double limit_mw, size_t *used);

/* Shrunk correlation of ns series r[ns * nt] (row per series, NAN
 * missing) into corr[ns * ns]; *lambda the intensity used.  Series with no
 * variance are uncorrelated with the rest. */
pcf_rc fc_corr_shrink(const double *r, size_t ns, size_t nt, double *corr, double *lambda, pcf_error *err);

/* ---- the zone forecast --------------------------------------------------------- */

typedef enum fc_method { FC_SOLAR, FC_WIND, FC_PERSISTENCE, FC_NOTHING } fc_method;

typedef struct fc_site {
    fc_method method;
    long point;                 /* zone point measuring the site's MW, -1 none */
    long loc;                   /* weather location, -1 none */
    double scale;               /* calibration factor (1 when not calibrated) */
    size_t calib_used;          /* half-hours behind the scale */
    fc_errmodel err;
    double last_resid;          /* residual at the anchor (0 when none) */
} fc_site;

enum { FC_GROUP_DEMAND = ZONE_NFUEL };

typedef struct fc_group {
    int kind;                   /* a zone_fuel, or FC_GROUP_DEMAND */
    size_t n;
    size_t *member;             /* [n] site indices, or mpc.bus rows for demand */
    double *corr;               /* [n * n] positive definite, unit diagonal */
    double lambda;              /* shrinkage intensity */
} fc_group;

typedef struct forecast_input {
    const zone *z;
    const history *hist;        /* SCADA of z's points; NULL: none */
    const wx_series *hist_wx;   /* weather over the history, FORECAST_WX_VARS; NULL: none */
    const wx_series *fc_wx;     /* weather over the SPs, members when present; NULL: none */
    const int64_t *sp;          /* [nsp] SP start instants (UTC) */
    size_t nsp;
    int64_t anchor;             /* end of the latest measurement; leads count from here */
    const bool *holiday;        /* [nsp] bank holidays, or NULL: fc_bank_holiday_ew (history too) */
} forecast_input;
/* Ensemble spread: unless hist_wx->lead_matched (history.h) says the
 * history was modelled with forecasts at the run's lead, the residuals lack
 * the weather-forecast error, so with ensemble members in fc_wx the
 * members' variance of each output is added to its residual variance. */

typedef struct forecast {
    size_t nsite, nbus, nsp;
    int64_t *sp;                /* [nsp] */
    double *site_mean, *site_sd;    /* [nsite * nsp], MW, mean within [-import, export] capacity */
    double *bus_mean, *bus_sd;      /* [nbus * nsp], demand MW at mpc.bus rows */
    long *bus_point;            /* [nbus] demand point, -1: the case's Pd with sd 0 */
    fc_demand *bus_model;       /* [nbus] (valid where bus_point >= 0 and fitted) */
    fc_site *site;              /* [nsite] */
    size_t ngroup;
    fc_group *group;
    size_t nmember;             /* weather members (0: no ensemble) */
    double *site_member;        /* [(site * nmember + m) * nsp] MW per member, or NULL */
    double *site_sd_model;      /* [nsite * nsp] site_sd before the members' spread is added:
                                 * the error around one member, for sampling members directly */
} forecast;

pcf_rc forecast_run(const forecast_input *in, forecast **out, pcf_error *err);
void forecast_destroy(forecast **f);

/* Covariance of group g at SP k into cov[n * n]: corr_ij sd_i sd_j, with
 * 1e-9 MW^2 added to the diagonal so a member with sd 0 (PV at night)
 * leaves it positive definite for rng_mvn_new. */
void forecast_group_cov(const forecast *f, size_t g, size_t k, double *cov);

#endif
