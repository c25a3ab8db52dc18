/*
 * test_forecast.c -- the forecast models on synthetic data with known
 * answers, without PostgreSQL: sun position against an independent
 * algorithm (the Astronomical Almanac's, Michalsky 1988), the PV chain
 * against values worked by hand, the power curve at its corners, recovery
 * of a known calibration factor, of known regression coefficients and of a
 * known AR(1) error, a positive definite correlation, and a whole zone
 * forecast on the 46-, 48- and 50-period days.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "forecast.h"
#include "history.h"
#include "rng.h"
#include "solar.h"
#include "sptime.h"
#include "wind.h"
#include "zone.h"

static int64_t s_utc(int y, int mo, int d, int h, int mi)
{
    sptime_civil c = { y, mo, d, h, mi, 0 };
    return sptime_from_civil(&c);
}

/* ---- solar ------------------------------------------------------------------ */

Test(forecast_solar, sun_position_matches_the_almanac_algorithm)
{
    struct { int64_t t; double lat, lon, zen, az; bool check_az; } c[] = {
        { s_utc(2026, 6, 21, 12, 0), 51.4779, -0.0015, 28.0451, 179.106, true },
        { s_utc(2026, 3, 20, 12, 0), 0, 0, 1.8661, 0, false },   /* azimuth ill-defined near the zenith */
        { s_utc(2026, 12, 21, 9, 0), 52.9, -0.16, 85.6142, 139.698, true },
        { s_utc(2026, 9, 1, 16, 30), 52.9, -0.16, 69.9833, 256.519, true },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        double z, az;
        solar_position(c[i].t, c[i].lat, c[i].lon, &z, &az);
        cr_assert_float_eq(z, c[i].zen, 0.05, "case %zu zenith %.4f vs %.4f", i, z, c[i].zen);
        if (c[i].check_az) cr_assert_float_eq(az, c[i].az, 0.1, "case %zu azimuth %.3f vs %.3f", i, az, c[i].az);
    }
}

Test(forecast_solar, pv_chain_matches_hand_computation)
{
    /* Worked by hand: doy 172, E0 = 1316.690 W/m2; GHI 800 at zenith 30
     * gives kt = 0.70158, Erbs kd = 0.24155, DHI = 193.238, DNI = 700.628;
     * a 30-degree south panel with the sun due south has AOI 0, so POA =
     * 700.628 + 193.238 (1 + cos 30)/2 + 0.2 * 800 (1 - cos 30)/2 = 891.640;
     * cell 20 + 25/800 * 891.64 = 47.864 C; 10 MW * 0.89164 * (1 - 0.004 *
     * 22.864) * 0.9 = 7.29085 MW. */
    solar_pv pv;
    solar_pv_defaults(&pv, 10.0, INFINITY, 30.0, 180.0);
    cr_assert_float_eq(solar_extraterrestrial(172), 1316.6896, 1e-3);
    double dni, dhi;
    solar_erbs(800, 30, 172, &dni, &dhi);
    cr_assert_float_eq(dhi, 193.2384, 1e-3);
    cr_assert_float_eq(dni, 700.6280, 1e-3);
    solar_detail d;
    double mw = solar_pv_mw_at(&pv, 800, 20, 30, 180, 172, &d);
    cr_assert_float_eq(d.poa, 891.6398, 1e-3);
    cr_assert_float_eq(d.cell_c, 47.8637, 1e-3);
    cr_assert_float_eq(mw, 7.290854, 1e-5);
    /* Sun due east at the same height: beam at cos(AOI) = cos 30 cos 30. */
    solar_pv_mw_at(&pv, 800, 20, 30, 90, 172, &d);
    cr_assert_float_eq(d.poa, 716.4828, 1e-3);
    /* Clipping at the export limit, and nothing at night or with no light. */
    pv.ac_mw = 7.0;
    cr_assert_float_eq(solar_pv_mw_at(&pv, 800, 20, 30, 180, 172, NULL), 7.0, 0);
    cr_assert_float_eq(solar_pv_mw_at(&pv, 0, 20, 30, 180, 172, NULL), 0.0, 0);
    /* Sun below the horizon: whatever light there is, is diffuse. */
    solar_pv_mw_at(&pv, 50, 5, 95, 180, 172, &d);
    cr_assert_float_eq(d.dni, 0.0, 0);
    cr_assert_float_eq(d.poa, 50 * (1 + cos(M_PI / 6)) / 2 + 0.2 * 50 * (1 - cos(M_PI / 6)) / 2, 1e-9);
    /* Hotter cells give less. */
    pv.ac_mw = INFINITY;
    cr_assert_lt(solar_pv_mw_at(&pv, 800, 30, 30, 180, 172, NULL), solar_pv_mw_at(&pv, 800, 10, 30, 180, 172, NULL));
}

/* ---- wind ------------------------------------------------------------------- */

Test(forecast_wind, power_curve_corners_and_shear)
{
    wind_curve c;
    wind_curve_default(&c);
    cr_assert_float_eq(wind_curve_pu(&c, 0), 0, 0);
    cr_assert_float_eq(wind_curve_pu(&c, 2.999), 0, 0);
    cr_assert_float_eq(wind_curve_pu(&c, 3.0), 0, 1e-15);
    cr_assert_float_eq(wind_curve_pu(&c, 7.5), (7.5 * 7.5 * 7.5 - 27.0) / (1728.0 - 27.0), 1e-15);
    cr_assert_lt(wind_curve_pu(&c, 11.99), 1.0);
    cr_assert_float_eq(wind_curve_pu(&c, 12.0), 1.0, 0);
    cr_assert_float_eq(wind_curve_pu(&c, 24.99), 1.0, 0);
    cr_assert_float_eq(wind_curve_pu(&c, 25.0), 0, 0);
    cr_assert_float_eq(wind_curve_pu(&c, 40.0), 0, 0);
    cr_assert_float_eq(wind_curve_pu(&c, NAN), 0, 0);
    cr_assert_float_eq(wind_shear(8.0, 100.0, 80.0, 1.0 / 7.0), 8.0 * pow(0.8, 1.0 / 7.0), 1e-12);
    cr_assert_float_eq(wind_shear(8.0, 10.0, 10.0, 0.2), 8.0, 1e-12);
    wind_farm f;
    wind_farm_defaults(&f, 33.0, 30.0, 80.0);
    cr_assert_float_eq(wind_farm_mw(&f, 20.0, 100.0), 30.0, 0, "clipped at export");
    double v80 = wind_shear(7.0, 100.0, 80.0, 1.0 / 7.0);
    cr_assert_float_eq(wind_farm_mw(&f, 7.0, 100.0), 33.0 * wind_curve_pu(&f.curve, v80), 1e-12);
}

/* ---- calibration, regression, errors, correlation -------------------------------- */

/* The half-hour of day and the day of week now come from local seconds by
 * arithmetic: every half-hour of 1969-2027 (both clock changes of each
 * year, days before 1970) must give what the civil local date gives. */
Test(forecast_model, calendar_features_match_the_civil_local_date)
{
    for (int64_t t = s_utc(1969, 1, 1, 0, 0); t < s_utc(2027, 1, 1, 0, 0); t += 1800) {
        sptime_civil c;
        sptime_to_local(sptime_london(), t, &c);
        int tod = c.hour * 2 + c.min / 30;
        cr_assert_eq(fc_tod(t), tod, "t %lld: %04d-%02d-%02d %02d:%02d", (long long)t, c.year, c.month, c.day,
                     c.hour, c.min);
        double x[FC_DEMAND_NFEAT];
        fc_demand_features(t, NAN, NAN, false, x);
        sptime_civil d = { c.year, c.month, c.day, 0, 0, 0 };
        int64_t days = sptime_from_civil(&d) / 86400;
        int dow = (int)(((days + 3) % 7 + 7) % 7);
        cr_assert(x[tod] == 1.0 && x[48] == (dow == 5) && x[49] == (dow == 6), "t %lld: %04d-%02d-%02d dow %d",
                  (long long)t, c.year, c.month, c.day, dow);
    }
}

Test(forecast_model, calibration_recovers_a_known_scale)
{
    enum { N = 4000 };
    static double x[N], y[N];
    rng_stream r;
    rng_init(&r, 42, 0, 0, RNG_STREAM_TEST);
    const double limit = 20.0;
    for (size_t i = 0; i < N; i++) {
        x[i] = 30.0 * rng_uniform(&r);     /* model beyond the limit too: clipping in the data */
        double v = 0.8 * x[i] + 0.5 * rng_normal(&r);
        y[i] = v < 0 ? 0 : v > limit ? limit : v;
    }
    x[7] = NAN;
    y[9] = NAN;
    size_t used;
    double s = fc_calibrate_scale(x, y, N, limit, &used);
    cr_assert_float_eq(s, 0.8, 0.01, "scale %.4f", s);
    cr_assert_gt(used, 1000);
    /* Too little data: no calibration. */
    cr_assert_float_eq(fc_calibrate_scale(x, y, 20, limit, &used), 1.0, 0);
    cr_assert_eq(used, 0);
}

Test(forecast_model, demand_regression_recovers_known_coefficients)
{
    const int64_t t0 = s_utc(2025, 1, 1, 0, 0);
    const size_t nt = 365 * 48;
    double *y = malloc(nt * sizeof *y), *temp = malloc(nt * sizeof *temp), *ghi = malloc(nt * sizeof *ghi);
    cr_assert(y && temp && ghi);
    double beta[FC_DEMAND_NFEAT];
    for (int k = 0; k < 48; k++) beta[k] = 20.0 + 8.0 * sin(2 * M_PI * (k - 14) / 48.0);
    beta[48] = -2.0;
    beta[49] = -3.5;
    beta[50] = 0.6;
    beta[51] = 0.3;
    beta[52] = -4.0;
    rng_stream r;
    rng_init(&r, 7, 0, 0, RNG_STREAM_TEST);
    for (size_t i = 0; i < nt; i++) {
        int64_t t = t0 + (int64_t)i * 1800;
        double day = (double)i / 48.0, hour = fmod((double)i / 2.0, 24.0);
        temp[i] = 11.0 - 9.0 * cos(2 * M_PI * (day - 15) / 365.0) + 5.0 * sin(2 * M_PI * (hour - 9) / 24.0) +
                  3.0 * rng_normal(&r);
        ghi[i] = fmax(0.0, 700.0 * sin(M_PI * (hour - 6) / 12.0)) * rng_uniform(&r);
        double x[FC_DEMAND_NFEAT], v = 0;
        fc_demand_features(t, temp[i], ghi[i], false, x);
        for (int k = 0; k < FC_DEMAND_NFEAT; k++) v += beta[k] * x[k];
        y[i] = v + 0.3 * rng_normal(&r);
    }
    y[100] = NAN;     /* a gap */
    fc_demand m;
    pcf_error err = { 0 };
    cr_assert_eq(fc_demand_fit(t0, nt, y, temp, ghi, NULL, &m, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(m.n, nt - 1);
    cr_assert_eq(m.rank, FC_DEMAND_NFEAT);
    for (int k = 0; k < 48; k++) cr_assert_float_eq(m.beta[k], beta[k], 0.05, "tod %d: %.4f vs %.4f", k, m.beta[k], beta[k]);
    for (int k = 48; k < FC_DEMAND_NFEAT; k++)
        cr_assert_float_eq(m.beta[k], beta[k], 0.05, "feature %d: %.4f vs %.4f", k, m.beta[k], beta[k]);
    cr_assert_float_eq(m.err.sd, 0.3, 0.02, "residual sd %.4f", m.err.sd);
    /* Too short a history is refused. */
    cr_assert_eq(fc_demand_fit(t0, 50, y, temp, ghi, NULL, &m, &err), PCF_ERR_INVALID);
    free(y);
    free(temp);
    free(ghi);
}

Test(forecast_model, features_follow_local_time_and_calendar)
{
    double x[FC_DEMAND_NFEAT];
    /* 2026-07-04 is a Saturday; 11:00 UTC is 12:00 BST: half-hour 24. */
    fc_demand_features(s_utc(2026, 7, 4, 11, 0), 25.0, 500.0, false, x);
    cr_assert_float_eq(x[24], 1.0, 0);
    cr_assert_float_eq(x[48], 1.0, 0);
    cr_assert_float_eq(x[49], 0.0, 0);
    cr_assert_float_eq(x[50], 0.0, 0);
    cr_assert_float_eq(x[51], 3.0, 1e-12);
    cr_assert_float_eq(x[52], 0.5, 1e-12);
    /* A Tuesday marked as a holiday counts as a Sunday; 5 C is 10.5 heating degrees. */
    fc_demand_features(s_utc(2026, 12, 29, 0, 30), 5.0, NAN, true, x);
    cr_assert_float_eq(x[1], 1.0, 0);
    cr_assert_float_eq(x[48], 0.0, 0);
    cr_assert_float_eq(x[49], 1.0, 0);
    cr_assert_float_eq(x[50], 10.5, 1e-12);
    cr_assert_float_eq(x[52], 0.0, 0);
    double sum = 0;
    for (int k = 0; k < 48; k++) sum += x[k];
    cr_assert_float_eq(sum, 1.0, 0);
}

Test(forecast_model, error_model_recovers_ar1)
{
    const size_t nt = 200000;
    double *r = malloc(nt * sizeof *r);
    cr_assert_not_null(r);
    rng_stream g;
    rng_init(&g, 3, 0, 0, RNG_STREAM_TEST);
    const double phi = 0.9, s = 1.5;
    r[0] = s / sqrt(1 - phi * phi) * rng_normal(&g);
    for (size_t i = 1; i < nt; i++) r[i] = phi * r[i - 1] + s * rng_normal(&g);
    fc_errmodel m;
    int64_t t0 = s_utc(2025, 1, 1, 0, 0);
    fc_errmodel_fit(t0, r, nt, &m);
    cr_assert_eq(m.n, nt);
    cr_assert_float_eq(m.phi, phi, 0.01, "phi %.4f", m.phi);
    double sd = s / sqrt(1 - phi * phi);
    cr_assert_float_eq(m.sd, sd, 0.05 * sd, "sd %.4f vs %.4f", m.sd, sd);
    for (int k = 0; k < FC_NTOD; k++) cr_assert_float_eq(m.sd_tod[k], sd, 0.1 * sd);
    /* One step ahead the spread is the innovation's; far ahead the unconditional one. */
    cr_assert_float_eq(fc_errmodel_sd(&m, t0, 1), s, 0.1 * s);
    cr_assert_float_eq(fc_errmodel_sd(&m, t0, 500), m.sd_tod[0], 1e-9);
    cr_assert_lt(fc_errmodel_sd(&m, t0, 2), fc_errmodel_sd(&m, t0, 10));
    /* Nothing to learn from. */
    for (size_t i = 0; i < 10; i++) r[i] = NAN;
    fc_errmodel_fit(t0, r, 10, &m);
    cr_assert_eq(m.n, 0);
    cr_assert_float_eq(fc_errmodel_sd(&m, t0, 3), 0, 0);
    free(r);
}

Test(forecast_model, shrunk_correlation_is_positive_definite)
{
    enum { NS = 6, NT = 3000 };
    static double r[NS * NT];
    rng_stream g;
    rng_init(&g, 11, 0, 0, RNG_STREAM_TEST);
    /* One common factor with loading 0.8: true correlation 0.64. */
    for (size_t t = 0; t < NT; t++) {
        double c = rng_normal(&g);
        for (size_t s = 0; s < NS; s++) r[s * NT + t] = 0.8 * c + 0.6 * rng_normal(&g);
    }
    r[2 * NT + 5] = NAN;
    double corr[NS * NS], lambda;
    pcf_error err = { 0 };
    cr_assert_eq(fc_corr_shrink(r, NS, NT, corr, &lambda, &err), PCF_OK, "%s", err.msg);
    cr_assert(lambda >= 0 && lambda <= 1);
    for (size_t i = 0; i < NS; i++)
        for (size_t j = 0; j < NS; j++) {
            cr_assert_float_eq(corr[i * NS + j], corr[j * NS + i], 0);
            if (i == j) cr_assert_float_eq(corr[i * NS + j], 1.0, 0);
            else cr_assert_float_eq(corr[i * NS + j], 0.64, 0.05, "%zu,%zu: %.3f", i, j, corr[i * NS + j]);
        }
    rng_mvn *mvn = NULL;
    cr_assert_eq(rng_mvn_new(NS, NULL, corr, &mvn, &err), PCF_OK, "%s", err.msg);
    rng_mvn_destroy(&mvn);

    /* Two identical series and a constant one: the sample matrix is
     * singular, the shrunk one is not. */
    for (size_t t = 0; t < NT; t++) {
        r[1 * NT + t] = r[0 * NT + t];
        r[3 * NT + t] = 0.0;
    }
    cr_assert_eq(fc_corr_shrink(r, NS, NT, corr, &lambda, &err), PCF_OK, "%s", err.msg);
    cr_assert_gt(lambda, 0.0);
    cr_assert_float_eq(corr[3 * NS + 0], 0.0, 0, "a constant series is uncorrelated");
    cr_assert_eq(rng_mvn_new(NS, NULL, corr, &mvn, &err), PCF_OK, "%s", err.msg);
    rng_mvn_destroy(&mvn);

    /* Fewer half-hours than series: the identity. */
    cr_assert_eq(fc_corr_shrink(r, NS, 5, corr, &lambda, &err), PCF_OK);
    cr_assert_float_eq(lambda, 1.0, 0);
    cr_assert_float_eq(corr[1], 0.0, 0);
}

/* ---- a whole zone, by hand ------------------------------------------------------------ */

/* Two buses; S1 solar 10 MW behind 8 MW export, S2 wind 20 MW, S3 battery;
 * points S1_P, S2_P, S3_P (sites) and D2 (demand at bus row 1). */
static zone *s_toy_zone(void)
{
    zone *z = calloc(1, sizeof *z);
    cr_assert_not_null(z);
    memcpy(z->id, "TOY", 4);
    z->season = -1;
    z->mpc = mp_case_new(2, 13, 0, 10, 1, 13);
    cr_assert_not_null(z->mpc);
    MP_AT(&z->mpc->bus, 0, MP_BUS_I) = 1;
    MP_AT(&z->mpc->bus, 1, MP_BUS_I) = 2;
    MP_AT(&z->mpc->bus, 0, MP_PD) = 5;
    MP_AT(&z->mpc->bus, 1, MP_PD) = 12;
    z->branch = calloc(1, sizeof *z->branch);
    z->nsite = 3;
    z->site = calloc(3, sizeof *z->site);
    z->nmachine = 3;
    z->machine = calloc(3, sizeof *z->machine);
    const char *ids[] = { "S1", "S2", "S3" };
    const zone_fuel fuel[] = { ZONE_FUEL_SOLAR, ZONE_FUEL_WIND, ZONE_FUEL_BATTERY };
    const double cap[] = { 10, 20, 5 }, exp_mw[] = { 8, 20, 5 };
    for (size_t i = 0; i < 3; i++) {
        zone_site *s = &z->site[i];
        memcpy(s->id, ids[i], 3);
        s->bus_row = 1;
        s->export_mw = exp_mw[i];
        s->import_mw = fuel[i] == ZONE_FUEL_BATTERY ? 5.0 : 0.0;
        s->latitude = 52.9;
        s->longitude = -0.1;
        s->machine_first = i;
        s->nmachine = 1;
        s->fuel = fuel[i];
        s->installed_mw = cap[i];
        zone_machine *m = &z->machine[i];
        m->site = i;
        m->fuel = fuel[i];
        m->capacity_mw = cap[i];
        m->hub_height_m = 80;
        m->tilt_deg = 30;
        m->azimuth_deg = 180;
    }
    z->npoint = 4;
    z->point = calloc(4, sizeof *z->point);
    for (size_t i = 0; i < 4; i++) {
        zone_point *p = &z->point[i];
        p->quantity = ZONE_Q_P_MW;
        p->branch_row = p->bus_row = p->site = -1;
        p->scale = 1;
        if (i < 3) {
            p->element = ZONE_EL_SITE;
            p->site = (long)i;
        } else {
            p->element = ZONE_EL_BUS;
            p->bus_row = 1;
        }
    }
    return z;
}

/* Synthetic weather on [t0, t0 + nt slots): clear-sky-like GHI times a
 * cloud factor, a seasonal/daily temperature, a gusty wind. */
static wx_series *s_weather(int64_t t0, size_t nt, size_t nmember, uint64_t seed)
{
    wx_location loc = { "LOC", 52.9, -0.1 };
    wx_series *w = NULL;
    pcf_error err = { 0 };
    cr_assert_eq(wx_series_new(t0, nt, &loc, 1, FORECAST_WX_VARS, FORECAST_NWX, nmember, &w, &err), PCF_OK, "%s",
                 err.msg);
    for (size_t m = 0; m < nmember; m++) {
        rng_stream g;
        rng_init(&g, seed, 0, (uint32_t)m, RNG_STREAM_TEST);
        double cloud = 0.7, wind = 7.0;
        for (size_t i = 0; i < nt; i++) {
            int64_t t = t0 + (int64_t)i * 1800;
            double z, az;
            solar_position(t + 900, 52.9, -0.1, &z, &az);
            cloud = fmin(1.0, fmax(0.1, 0.95 * cloud + 0.05 * 0.7 + 0.08 * rng_normal(&g)));
            wind = fmax(0.0, 0.97 * wind + 0.03 * 7.5 + 0.6 * rng_normal(&g));
            wx_row(w, 0, 1, m)[i] = fmax(0.0, 950.0 * cos(z * M_PI / 180.0)) * cloud;
            wx_row(w, 0, 0, m)[i] = 10.0 + 6.0 * sin(2 * M_PI * ((double)(t % 86400) / 86400.0 - 0.375));
            wx_row(w, 0, 2, m)[i] = wind;
            wx_row(w, 0, 3, m)[i] = wind * pow(0.1, 1.0 / 7.0);
        }
    }
    return w;
}

/* "Measured" outputs: the physical models times known factors plus noise. */
static history *s_history(const zone *z, const wx_series *w)
{
    history *h = NULL;
    pcf_error err = { 0 };
    cr_assert_eq(history_new(w->t0, w->nt, z->npoint, &h, &err), PCF_OK, "%s", err.msg);
    rng_stream g;
    rng_init(&g, 99, 0, 0, RNG_STREAM_TEST);
    solar_pv pv;
    solar_pv_defaults(&pv, 10, INFINITY, 30, 180);
    wind_farm wf;
    wind_farm_defaults(&wf, 20, INFINITY, 80);
    for (size_t i = 0; i < h->nt; i++) {
        int64_t t = h->t0 + (int64_t)i * 1800;
        double pvmw = solar_pv_mw(&pv, wx_row(w, 0, 1, 0)[i], wx_row(w, 0, 0, 0)[i], t + 900, 52.9, -0.1, NULL);
        double wmw = wind_farm_mw(&wf, wx_row(w, 0, 2, 0)[i], 100);
        history_row(h, 0)[i] = fmin(8.0, fmax(0.0, 0.85 * pvmw + (pvmw > 0 ? 0.2 * rng_normal(&g) : 0.0)));
        history_row(h, 1)[i] = fmin(20.0, fmax(0.0, 0.9 * wmw + 0.5 * rng_normal(&g)));
        int tod = fc_tod(t);
        history_row(h, 2)[i] = tod >= 34 && tod < 40 ? 4.0 : tod >= 2 && tod < 10 ? -3.0 : 0.0;
        double x[FC_DEMAND_NFEAT];
        fc_demand_features(t, wx_row(w, 0, 0, 0)[i], wx_row(w, 0, 1, 0)[i], false, x);
        history_row(h, 3)[i] = 10.0 + 4.0 * sin(2 * M_PI * (tod - 16) / 48.0) + 0.5 * x[50] - 2.0 * x[52] +
                               0.2 * rng_normal(&g);
    }
    return h;
}

static void s_zone_day(int y, int mo, int d, int expect_nsp)
{
    int nsp = sptime_sp_count(y, mo, d);
    cr_assert_eq(nsp, expect_nsp);
    int64_t sp[50];
    for (int k = 0; k < nsp; k++) cr_assert_eq(sptime_sp_start(y, mo, d, k + 1, &sp[k]), PCF_OK);
    int64_t day0 = sp[0];
    /* 60 days of history ending a day before; forecast weather with 5 members. */
    const int64_t hist0 = day0 - 61 * 86400;
    zone *z = s_toy_zone();
    wx_series *hw = s_weather(hist0, 60 * 48, 1, 5);
    history *h = s_history(z, hw);
    wx_series *fw = s_weather(day0 - 86400, 4 * 48, 5, 6);
    forecast_input in = { .z = z, .hist = h, .hist_wx = hw, .fc_wx = fw, .sp = sp, .nsp = (size_t)nsp,
                          .anchor = hist0 + 60 * 86400 };
    hw->lead_matched = true;
    forecast *f = NULL;
    pcf_error err = { 0 };
    cr_assert_eq(forecast_run(&in, &f, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(f->nsp, (size_t)nsp);
    cr_assert_eq(f->nsite, 3);
    cr_assert_eq(f->site[0].method, FC_SOLAR);
    cr_assert_eq(f->site[1].method, FC_WIND);
    cr_assert_eq(f->site[2].method, FC_PERSISTENCE);
    cr_assert_float_eq(f->site[0].scale, 0.85, 0.03, "solar scale %.4f", f->site[0].scale);
    cr_assert_float_eq(f->site[1].scale, 0.9, 0.03, "wind scale %.4f", f->site[1].scale);
    double noon_max = 0;
    for (int k = 0; k < nsp; k++) {
        int tod = fc_tod(sp[k]);
        double pv = f->site_mean[0 * f->nsp + (size_t)k], pvsd = f->site_sd[0 * f->nsp + (size_t)k];
        cr_assert(pv >= 0 && pv <= 8.0);
        cr_assert(f->site_mean[1 * f->nsp + (size_t)k] >= 0 && f->site_mean[1 * f->nsp + (size_t)k] <= 20.0);
        cr_assert(f->site_sd[1 * f->nsp + (size_t)k] > 0);
        if (tod < 8) {     /* before 04:00 local the sun is down all year in England */
            cr_assert_float_eq(pv, 0, 0);
            cr_assert_float_eq(pvsd, 0, 0);
        }
        if (tod >= 22 && tod <= 28) noon_max = fmax(noon_max, pv);
        /* The battery persists its daily profile. */
        double bat = tod >= 34 && tod < 40 ? 4.0 : tod >= 2 && tod < 10 ? -3.0 : 0.0;   /* charging: import */
        cr_assert_float_eq(f->site_mean[2 * f->nsp + (size_t)k], bat, 1e-9, "SP %d", k + 1);
        /* Demand at bus row 1 is the regression's; bus row 0 keeps the case's Pd. */
        cr_assert_float_eq(f->bus_mean[0 * f->nsp + (size_t)k], 5.0, 0);
        cr_assert_float_eq(f->bus_sd[0 * f->nsp + (size_t)k], 0.0, 0);
        double dm = f->bus_mean[1 * f->nsp + (size_t)k];
        cr_assert(dm > 4.0 && dm < 22.0, "demand %.3f", dm);
        cr_assert_float_eq(f->bus_sd[1 * f->nsp + (size_t)k], 0.2, 0.05);
        /* Members are within the site's range, and member outputs vary. */
        for (size_t m = 0; m < f->nmember; m++) {
            double v = f->site_member[(0 * f->nmember + m) * f->nsp + (size_t)k];
            cr_assert(v >= 0 && v <= 8.0);
        }
    }
    cr_assert_gt(noon_max, 0.5);
    cr_assert_eq(f->nmember, 5);
    cr_assert_eq(f->bus_point[0], -1);
    cr_assert_eq(f->bus_point[1], 3);
    /* Groups: one per fuel present, one for demand; every covariance
     * factorises for every SP. */
    cr_assert_eq(f->ngroup, 4);
    for (size_t g = 0; g < f->ngroup; g++)
        for (size_t k = 0; k < f->nsp; k++) {
            double cov[9];
            forecast_group_cov(f, g, k, cov);
            rng_mvn *mvn = NULL;
            cr_assert_eq(rng_mvn_new(f->group[g].n, NULL, cov, &mvn, &err), PCF_OK, "group %zu SP %zu: %s", g, k,
                         err.msg);
            rng_mvn_destroy(&mvn);
        }
    /* History modelled on analysis-like weather: the members' spread of
     * each output is added to its residual variance. */
    forecast *g = NULL;
    hw->lead_matched = false;
    cr_assert_eq(forecast_run(&in, &g, &err), PCF_OK, "%s", err.msg);
    bool wider = false;
    for (size_t k = 0; k < f->nsp; k++)
        for (size_t si = 0; si < 2; si++) {
            double s1 = 0, s2 = 0, n = (double)g->nmember;
            for (size_t m = 0; m < g->nmember; m++) {
                double v = g->site_member[(si * g->nmember + m) * g->nsp + k];
                s1 += v;
                s2 += v * v;
            }
            double var = fmax(0.0, (s2 - s1 * s1 / n) / (n - 1));
            double a = f->site_sd[si * f->nsp + k], b = g->site_sd[si * g->nsp + k];
            cr_assert_float_eq(b * b, a * a + var, 1e-9 + 1e-9 * b * b, "site %zu SP %zu", si, k);
            wider |= b > a + 1e-6;
        }
    cr_assert(wider, "the ensemble spread widens some forecast");
    cr_assert_eq(memcmp(f->site_mean, g->site_mean, f->nsite * f->nsp * sizeof(double)), 0);
    forecast_destroy(&g);
    forecast_destroy(&f);
    cr_assert_null(f);
    history_destroy(&h);
    wx_series_destroy(&hw);
    wx_series_destroy(&fw);
    zone_destroy(&z);
}

Test(forecast_zone, spring_clock_change_has_46_periods)
{
    s_zone_day(2026, 3, 29, 46);
}

Test(forecast_zone, ordinary_day_has_48_periods)
{
    s_zone_day(2026, 6, 10, 48);
}

Test(forecast_zone, autumn_clock_change_has_50_periods)
{
    s_zone_day(2026, 10, 25, 50);
}

Test(forecast_zone, real_time_anchor_pulls_toward_the_last_residual)
{
    /* With the anchor right at the end of the history the first SP's
     * spread is the one-step one, far below the day-ahead spread. */
    int64_t day0;
    cr_assert_eq(sptime_sp_start(2026, 6, 10, 1, &day0), PCF_OK);
    const int64_t hist0 = day0 - 60 * 86400;
    zone *z = s_toy_zone();
    wx_series *hw = s_weather(hist0, 60 * 48, 1, 5);
    history *h = s_history(z, hw);
    wx_series *fw = s_weather(day0, 48, 1, 6);
    int64_t sp[2] = { day0 + 24 * 1800, day0 + 47 * 1800 };
    forecast_input in = { .z = z, .hist = h, .hist_wx = hw, .fc_wx = fw, .sp = sp, .nsp = 2,
                          .anchor = day0 + 24 * 1800 };
    forecast *f = NULL;
    pcf_error err = { 0 };
    cr_assert_eq(forecast_run(&in, &f, &err), PCF_OK, "%s", err.msg);
    /* wind residuals are AR(1)-ish through the weather: lead 1 < lead 24 */
    cr_assert_leq(f->site_sd[1 * 2 + 0], f->site_sd[1 * 2 + 1] + 1e-12);
    forecast_destroy(&f);
    /* No history at all: physical models fall back to a default spread,
     * persistence has nothing (0 MW, sd 0), demand keeps the case's Pd. */
    in.hist = NULL;
    in.hist_wx = NULL;
    cr_assert_eq(forecast_run(&in, &f, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(f->site[1].scale, 1.0, 0);
    cr_assert_float_eq(f->site_sd[1 * 2 + 1], FC_DEFAULT_SD_FRACTION * 20.0, 1e-12);
    cr_assert_eq(f->site[2].method, FC_PERSISTENCE);
    cr_assert_float_eq(f->site_mean[2 * 2 + 0], 0.0, 0);
    cr_assert_float_eq(f->site_sd[2 * 2 + 0], 0.0, 0);
    cr_assert_float_eq(f->bus_mean[1 * 2 + 0], 12.0, 0);
    cr_assert_eq(f->bus_point[1], -1);
    forecast_destroy(&f);
    in.hist_wx = hw;
    /* A history that does not match the zone is refused. */
    history *bad = NULL;
    cr_assert_eq(history_new(hist0, 10, 2, &bad, &err), PCF_OK);
    in.hist = bad;
    cr_assert_eq(forecast_run(&in, &f, &err), PCF_ERR_INVALID);
    in.hist = h;
    in.nsp = 0;
    cr_assert_eq(forecast_run(&in, &f, &err), PCF_ERR_INVALID);
    history_destroy(&bad);
    history_destroy(&h);
    wx_series_destroy(&hw);
    wx_series_destroy(&fw);
    zone_destroy(&z);
}

Test(forecast_model, bank_holidays_of_england_and_wales)
{
    /* gov.uk/bank-holidays (2027 by the rules) */
    static const int hol[][3] = {
        { 2025, 1, 1 }, { 2025, 4, 18 }, { 2025, 4, 21 }, { 2025, 5, 5 }, { 2025, 5, 26 }, { 2025, 8, 25 },
        { 2025, 12, 25 }, { 2025, 12, 26 }, { 2026, 1, 1 }, { 2026, 4, 3 }, { 2026, 4, 6 }, { 2026, 5, 4 },
        { 2026, 5, 25 }, { 2026, 8, 31 }, { 2026, 12, 25 }, { 2026, 12, 28 }, { 2027, 12, 27 }, { 2027, 12, 28 },
        { 2022, 1, 3 }, { 2023, 1, 2 }, { 2022, 12, 26 }, { 2022, 12, 27 }, { 2024, 3, 29 }, { 2024, 4, 1 },
    };
    for (size_t i = 0; i < sizeof hol / sizeof hol[0]; i++)
        cr_assert(fc_bank_holiday_ew(hol[i][0], hol[i][1], hol[i][2]), "%d-%02d-%02d", hol[i][0], hol[i][1],
                  hol[i][2]);
    static const int not_hol[][3] = {
        { 2026, 12, 26 }, { 2027, 12, 25 }, { 2027, 12, 26 }, { 2022, 1, 1 }, { 2025, 4, 20 }, { 2025, 5, 12 },
        { 2025, 8, 18 }, { 2025, 6, 2 }, { 2025, 12, 24 }, { 2023, 1, 1 },
    };
    for (size_t i = 0; i < sizeof not_hol / sizeof not_hol[0]; i++)
        cr_assert_not(fc_bank_holiday_ew(not_hol[i][0], not_hol[i][1], not_hol[i][2]), "%d-%02d-%02d",
                      not_hol[i][0], not_hol[i][1], not_hol[i][2]);
    int n = 0;
    for (int m = 1; m <= 12; m++)
        for (int d = 1; d <= 31; d++) n += fc_bank_holiday_ew(2025, m, d);
    cr_assert_eq(n, 8);
}
