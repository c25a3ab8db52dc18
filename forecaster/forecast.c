/*
 * forecast.c -- see forecast.h.
 *
 * forecast_run works site by site, then bus by bus, then group by group:
 *   1. each site gets its method (the fuel of its largest machine: solar or
 *      wind with weather -> physical model; anything else, or no weather ->
 *      persistence), its SCADA point and its nearest weather location;
 *   2. over the history the model is evaluated with the weather of the time,
 *      calibrated (one scale factor), and its residuals fitted (fc_errmodel);
 *      residual rows are kept for step 4;
 *   3. demand buses are fitted by regression, with the zone-average weather;
 *   4. the residual rows of each fuel (and of demand) give the correlation.
 * Memory is a few arrays of (sites + buses) x history length; nothing is
 * kept beyond the result.
 */
#include "forecast.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_eigen.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "solar.h"
#include "sptime.h"
#include "wind.h"

const char *const FORECAST_WX_VARS[4] = { "temperature_2m", "shortwave_radiation", "wind_speed_100m",
                                          "wind_speed_10m" };
enum { S_TEMP, S_GHI, S_W100, S_W10 };

/* The half-hour of day and the day of week come from the local day and
 * second (sptime_local_day), not the civil date the demand fit had worked
 * out twice per node and half-hour of history (a tenth of a real-time
 * run's forecast stage). */
int fc_tod(int64_t t)
{
    int64_t day;
    int sec;
    sptime_local_day(sptime_london(), t, &day, &sec);
    return sec / 1800;
}

/* ---- bank holidays ----------------------------------------------------------- */

static int s_dow(int y, int m, int d)       /* 0 Monday .. 6 Sunday */
{
    sptime_civil c = { y, m, d, 0, 0, 0 };
    int64_t days = sptime_from_civil(&c) / 86400;
    return (int)(((days + 3) % 7 + 7) % 7);
}

/* Day of month of the n-th (n >= 1) or, n = -1, the last Monday of y-m. */
static int s_monday(int y, int m, int n, int ndays)
{
    if (n > 0) return 1 + (7 - s_dow(y, m, 1)) % 7 + 7 * (n - 1);
    return ndays - s_dow(y, m, ndays);
}

bool fc_bank_holiday_ew(int y, int m, int d)
{
    if (m == 1) {                       /* New Year's Day, or the Monday after */
        int w = s_dow(y, 1, 1);
        return d == (w == 5 ? 3 : w == 6 ? 2 : 1);
    }
    if (m == 3 || m == 4) {             /* Good Friday and Easter Monday (Gregorian computus) */
        int a = y % 19, b = y / 100, c = y % 100, dd = b / 4, e = b % 4, f = (b + 8) / 25, g = (b - f + 1) / 3;
        int h = (19 * a + b - dd - g + 15) % 30, i = c / 4, k = c % 4, l = (32 + 2 * e + 2 * i - h - k) % 7;
        int mm = (a + 11 * h + 22 * l) / 451;
        int em = (h + l - 7 * mm + 114) / 31, ed = (h + l - 7 * mm + 114) % 31 + 1;
        sptime_civil es = { y, em, ed, 0, 0, 0 }, q = { y, m, d, 0, 0, 0 };
        int64_t diff = (sptime_from_civil(&q) - sptime_from_civil(&es)) / 86400;
        return diff == -2 || diff == 1;
    }
    if (m == 5) return d == s_monday(y, 5, 1, 31) || d == s_monday(y, 5, -1, 31);
    if (m == 8) return d == s_monday(y, 8, -1, 31);
    if (m == 12 && d >= 25) {           /* Christmas and Boxing Day, weekend ones moved to the next free weekdays */
        int taken[2] = { 0, 0 };
        for (int n = 0; n < 2; n++) {
            int x = 25 + n;
            while (s_dow(y, 12, x) >= 5 || (n == 1 && x == taken[0])) x++;
            taken[n] = x;
        }
        return d == taken[0] || d == taken[1];
    }
    return false;
}

/* Bank holiday flag of the UK local day holding instant t. */
static bool s_holiday_at(int64_t t)
{
    sptime_civil c;
    sptime_to_local(sptime_london(), t, &c);
    return fc_bank_holiday_ew(c.year, c.month, c.day);
}

/* ---- error model ------------------------------------------------------------- */

void fc_errmodel_fit(int64_t t0, const double *r, size_t nt, fc_errmodel *m)
{
    double s2[FC_NTOD] = { 0 }, all = 0, lag_num = 0, lag_den = 0, mean = 0;
    size_t cnt[FC_NTOD] = { 0 }, n = 0;
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < nt; i++)
        if (isfinite(r[i])) {
            mean += r[i];
            n++;
        }
    if (n == 0) return;
    mean /= (double)n;
    for (size_t i = 0; i < nt; i++) {
        if (!isfinite(r[i])) continue;
        double d = r[i] - mean;
        int k = fc_tod(t0 + (int64_t)i * HISTORY_SLOT);
        /* Spread about zero, not the mean: a biased model is wrong by its bias too. */
        s2[k] += r[i] * r[i];
        cnt[k]++;
        all += r[i] * r[i];
        lag_den += d * d;
        if (i + 1 < nt && isfinite(r[i + 1])) lag_num += d * (r[i + 1] - mean);
    }
    m->n = n;
    m->sd = sqrt(all / (double)n);
    double phi = lag_den > 0 ? lag_num / lag_den : 0.0;
    m->phi = phi < 0 ? 0 : phi > 0.999 ? 0.999 : phi;
    for (int k = 0; k < FC_NTOD; k++) {
        /* Fewer than 20 values: shrink toward the overall spread. */
        double w = (double)cnt[k] / ((double)cnt[k] + 20.0);
        double v = cnt[k] ? s2[k] / (double)cnt[k] : 0.0;
        m->sd_tod[k] = sqrt(w * v + (1 - w) * m->sd * m->sd);
    }
}

double fc_errmodel_sd(const fc_errmodel *m, int64_t t, double lead)
{
    if (!(lead >= 1)) lead = 1;
    double decay = pow(m->phi, 2 * lead);
    return m->sd_tod[fc_tod(t)] * sqrt(1 - decay);
}

/* ---- demand --------------------------------------------------------------------- */

void fc_demand_features(int64_t t, double temp_c, double ghi_wm2, bool holiday, double x[FC_DEMAND_NFEAT])
{
    memset(x, 0, FC_DEMAND_NFEAT * sizeof x[0]);
    int64_t days;
    int sec;
    sptime_local_day(sptime_london(), t, &days, &sec);
    x[sec / 1800] = 1.0;
    /* Day of week of the local date: 1970-01-01 was a Thursday. */
    int dow = (int)(((days + 3) % 7 + 7) % 7);      /* 0 Monday .. 6 Sunday */
    if (dow == 5 && !holiday) x[48] = 1.0;
    if (dow == 6 || holiday) x[49] = 1.0;
    if (isfinite(temp_c)) {
        x[50] = temp_c < FC_HDD_BASE_C ? FC_HDD_BASE_C - temp_c : 0.0;
        x[51] = temp_c > FC_CDD_BASE_C ? temp_c - FC_CDD_BASE_C : 0.0;
    }
    if (isfinite(ghi_wm2) && ghi_wm2 > 0) x[52] = ghi_wm2 / 1000.0;
}

double fc_demand_predict(const fc_demand *m, int64_t t, double temp_c, double ghi_wm2, bool holiday)
{
    double x[FC_DEMAND_NFEAT], y = 0;
    fc_demand_features(t, temp_c, ghi_wm2, holiday, x);
    for (int k = 0; k < FC_DEMAND_NFEAT; k++) y += x[k] * m->beta[k];
    return y;
}

pcf_rc fc_demand_fit(int64_t t0, size_t nt, const double *y, const double *temp, const double *ghi,
                     const bool *holiday, fc_demand *m, pcf_error *err)
{
    memset(m, 0, sizeof *m);
    size_t n = 0;
    for (size_t i = 0; i < nt; i++) n += isfinite(y[i]);
    if (n < 2 * FC_DEMAND_NFEAT)
        return pcf_error_set(err, PCF_ERR_INVALID, "demand fit: %zu half-hours of history, need %d", n,
                             2 * FC_DEMAND_NFEAT);
    /* Least squares through the normal equations: X'X is only 53 x 53, so
     * forming it costs one pass over the history (O(n p^2)) where an SVD of
     * the tall X costs several; at a real-time run's budget that matters.
     * The minimum-norm solution of a rank-deficient design (a half-hour of
     * day never observed, constant weather) comes from the eigenvectors of
     * X'X whose eigenvalues exceed 1e-13 of the largest (singular values of X
     * below about 3e-7 of the largest are dropped). */
    enum { P = FC_DEMAND_NFEAT };
    gsl_matrix *G = gsl_matrix_calloc(P, P), *V = gsl_matrix_alloc(P, P);
    gsl_vector *g = gsl_vector_calloc(P), *lam = gsl_vector_alloc(P);
    gsl_eigen_symmv_workspace *ws = gsl_eigen_symmv_alloc(P);
    double *resid = malloc(nt * sizeof *resid);
    pcf_rc rc = PCF_OK;
    if (!G || !V || !g || !lam || !ws || !resid) rc = pcf_error_set(err, PCF_ERR_NOMEM, "demand fit: out of memory");
    if (rc == PCF_OK) {
        double x[P];
        for (size_t i = 0; i < nt; i++) {
            if (!isfinite(y[i])) continue;
            int64_t t = t0 + (int64_t)i * HISTORY_SLOT;
            fc_demand_features(t, temp ? temp[i] : NAN, ghi ? ghi[i] : NAN, holiday && holiday[i], x);
            for (int a = 0; a < P; a++) {
                if (x[a] == 0) continue;           /* most features are 0/1 dummies */
                double *row = gsl_matrix_ptr(G, (size_t)a, 0);
                for (int c = 0; c <= a; c++) row[c] += x[a] * x[c];
                *gsl_vector_ptr(g, (size_t)a) += x[a] * y[i];
            }
        }
        for (int a = 0; a < P; a++)
            for (int c = 0; c < a; c++) gsl_matrix_set(G, (size_t)c, (size_t)a, gsl_matrix_get(G, (size_t)a, (size_t)c));
        gsl_error_handler_t *old = gsl_set_error_handler_off();
        int st = gsl_eigen_symmv(G, lam, V, ws);
        gsl_set_error_handler(old);
        if (st != GSL_SUCCESS) {
            rc = pcf_error_set(err, PCF_ERR_SINGULAR, "demand fit: %s", gsl_strerror(st));
        } else {
            double lmax = 0;
            for (int k = 0; k < P; k++) lmax = fmax(lmax, gsl_vector_get(lam, (size_t)k));
            size_t rank = 0;
            for (int k = 0; k < P; k++) {
                double l = gsl_vector_get(lam, (size_t)k);
                if (!(l > 1e-13 * lmax)) continue;
                rank++;
                double proj = 0;
                for (int a = 0; a < P; a++) proj += gsl_matrix_get(V, (size_t)a, (size_t)k) * gsl_vector_get(g, (size_t)a);
                for (int a = 0; a < P; a++) m->beta[a] += gsl_matrix_get(V, (size_t)a, (size_t)k) * proj / l;
            }
            m->n = n;
            m->rank = rank;
            for (size_t i = 0; i < nt; i++)
                resid[i] = isfinite(y[i]) ? y[i] - fc_demand_predict(m, t0 + (int64_t)i * HISTORY_SLOT,
                                                                     temp ? temp[i] : NAN, ghi ? ghi[i] : NAN,
                                                                     holiday && holiday[i])
                                          : NAN;
            fc_errmodel_fit(t0, resid, nt, &m->err);
        }
    }
    free(resid);
    gsl_eigen_symmv_free(ws);
    gsl_vector_free(lam);
    gsl_vector_free(g);
    gsl_matrix_free(V);
    gsl_matrix_free(G);
    return rc;
}

/* ---- calibration ---------------------------------------------------------------- */

static double s_scale_pass(const double *x, const double *y, size_t n, double xmax, double floor_x, size_t *used)
{
    double sxy = 0, sxx = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || !(x[i] > floor_x) || !(x[i] < xmax)) continue;
        sxy += x[i] * y[i];
        sxx += x[i] * x[i];
        k++;
    }
    *used = k;
    return k >= 48 && sxx > 0 ? sxy / sxx : NAN;
}

double fc_calibrate_scale(const double *model, const double *meas, size_t n, double limit_mw, size_t *used)
{
    size_t u = 0;
    double floor_x = 0.02 * limit_mw;
    double s0 = s_scale_pass(model, meas, n, 0.5 * limit_mw, floor_x, &u);
    if (!isfinite(s0) || s0 <= 0) s0 = 1.0;
    if (s0 < 0.1) s0 = 0.1;
    /* Select on the regressor only (s0 * model < 90 % of the limit): OLS
     * stays unbiased, and the measured side is never at the clip. */
    double s = s_scale_pass(model, meas, n, 0.9 * limit_mw / s0, floor_x, &u);
    if (used) *used = u;
    if (!isfinite(s)) {
        if (used) *used = 0;
        return 1.0;
    }
    return s < 0.1 ? 0.1 : s > 3.0 ? 3.0 : s;
}

/* ---- correlation ------------------------------------------------------------------ */

static bool s_chol_ok(const double *c, size_t n, gsl_matrix *work)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) gsl_matrix_set(work, i, j, c[i * n + j]);
    gsl_error_handler_t *old = gsl_set_error_handler_off();
    int st = gsl_linalg_cholesky_decomp1(work);
    gsl_set_error_handler(old);
    if (st != GSL_SUCCESS) return false;
    for (size_t i = 0; i < n; i++)
        if (!(gsl_matrix_get(work, i, i) > 1e-6)) return false;
    return true;
}

pcf_rc fc_corr_shrink(const double *r, size_t ns, size_t nt, double *corr, double *lambda, pcf_error *err)
{
    *lambda = 1.0;
    for (size_t i = 0; i < ns * ns; i++) corr[i] = (i / ns == i % ns) ? 1.0 : 0.0;
    if (ns < 2) return PCF_OK;
    /* Complete cases only: every pairwise estimate then uses the same half-hours. */
    size_t *rows = malloc(nt * sizeof *rows);
    double *z = malloc(ns * (nt ? nt : 1) * sizeof *z);
    double *sw = calloc(ns * ns, sizeof *sw), *sww = calloc(ns * ns, sizeof *sww);
    gsl_matrix *work = gsl_matrix_alloc(ns, ns);
    pcf_rc rc = PCF_OK;
    if (!rows || !z || !sw || !sww || !work) rc = pcf_error_set(err, PCF_ERR_NOMEM, "correlation: out of memory");
    size_t n = 0;
    for (size_t t = 0; rc == PCF_OK && t < nt; t++) {
        bool ok = true;
        for (size_t s = 0; s < ns && ok; s++) ok = isfinite(r[s * nt + t]);
        if (ok) rows[n++] = t;
    }
    bool *live = calloc(ns, sizeof *live);
    if (!live && rc == PCF_OK) rc = pcf_error_set(err, PCF_ERR_NOMEM, "correlation: out of memory");
    if (rc == PCF_OK && n >= 10) {
        for (size_t s = 0; s < ns; s++) {
            double mean = 0, var = 0;
            for (size_t k = 0; k < n; k++) mean += r[s * nt + rows[k]];
            mean /= (double)n;
            for (size_t k = 0; k < n; k++) var += (r[s * nt + rows[k]] - mean) * (r[s * nt + rows[k]] - mean);
            double sd = sqrt(var / (double)(n - 1));
            live[s] = sd > 1e-12;
            for (size_t k = 0; k < n; k++) z[s * n + k] = live[s] ? (r[s * nt + rows[k]] - mean) / sd : 0.0;
        }
        for (size_t i = 0; i < ns; i++)
            for (size_t j = i + 1; j < ns; j++) {
                double a = 0, b = 0;
                for (size_t k = 0; k < n; k++) {
                    double w = z[i * n + k] * z[j * n + k];
                    a += w;
                    b += w * w;
                }
                sw[i * ns + j] = a;
                sww[i * ns + j] = b;
            }
        /* Sample correlations r_ij, their variance (Schafer & Strimmer 2005,
         * eq. for Var(r_ij) from the products w_kij), and the target's common
         * correlation rbar (the mean off-diagonal correlation, >= 0). */
        double rbar = 0, num = 0, den = 0;
        size_t npair = 0;
        double nn = (double)n;
        for (size_t i = 0; i < ns; i++)
            for (size_t j = i + 1; j < ns; j++)
                if (live[i] && live[j]) {
                    rbar += sw[i * ns + j] / (nn - 1);
                    npair++;
                }
        rbar = npair ? rbar / (double)npair : 0.0;
        if (rbar < 0) rbar = 0;
        if (rbar > 0.95) rbar = 0.95;
        for (size_t i = 0; i < ns; i++)
            for (size_t j = i + 1; j < ns; j++) {
                if (!(live[i] && live[j])) continue;
                double wbar = sw[i * ns + j] / nn;
                double var_w = sww[i * ns + j] - nn * wbar * wbar;     /* sum (w - wbar)^2 */
                double rij = sw[i * ns + j] / (nn - 1);
                num += nn / ((nn - 1) * (nn - 1) * (nn - 1)) * var_w;
                den += (rij - rbar) * (rij - rbar);
            }
        double lam = den > 0 ? num / den : 1.0;
        lam = lam < 0 ? 0 : lam > 1 ? 1 : lam;
        /* Raise lambda until the matrix factorises; at 1 it is the target,
         * which is positive definite for rbar in [0, 0.95]. */
        for (;; lam = lam + 0.05 > 1 ? 1 : lam + 0.05) {
            for (size_t i = 0; i < ns; i++)
                for (size_t j = i + 1; j < ns; j++) {
                    double v = 0;
                    if (live[i] && live[j]) v = lam * rbar + (1 - lam) * sw[i * ns + j] / (nn - 1);
                    corr[i * ns + j] = corr[j * ns + i] = v;
                }
            if (lam >= 1 || s_chol_ok(corr, ns, work)) break;
        }
        *lambda = lam;
    }
    free(live);
    gsl_matrix_free(work);
    free(sww);
    free(sw);
    free(z);
    free(rows);
    return rc;
}

/* ---- site models ---------------------------------------------------------------- */

/* The site's output model, unscaled and unclipped, for the slot at t, from
 * weather member m of w at location loc.  NAN when the weather is missing. */
static double s_model_mw(const zone *z, size_t si, fc_method method, const wx_series *w, size_t loc, size_t m,
                         int64_t t)
{
    const zone_site *s = &z->site[si];
    int64_t mid = t + HISTORY_SLOT / 2;
    if (method == FC_SOLAR) {
        long gv = wx_var_find(w, FORECAST_WX_VARS[S_GHI]), tv = wx_var_find(w, FORECAST_WX_VARS[S_TEMP]);
        if (gv < 0) return NAN;
        double ghi = wx_at(w, loc, (size_t)gv, m, t);
        double temp = tv >= 0 ? wx_at(w, loc, (size_t)tv, m, t) : NAN;
        if (!isfinite(ghi)) return NAN;
        if (!isfinite(temp)) temp = 10.0;
        double lat = isfinite(s->latitude) ? s->latitude : w->loc[loc].latitude;
        double lon = isfinite(s->longitude) ? s->longitude : w->loc[loc].longitude;
        double mw = 0;
        for (size_t k = 0; k < s->nmachine; k++) {
            const zone_machine *mc = &z->machine[s->machine_first + k];
            if (mc->fuel != ZONE_FUEL_SOLAR) continue;
            solar_pv pv;
            solar_pv_defaults(&pv, mc->capacity_mw, INFINITY, mc->tilt_deg, mc->azimuth_deg);
            mw += solar_pv_mw(&pv, ghi, temp, mid, lat, lon, NULL);
        }
        return mw;
    }
    long v100 = wx_var_find(w, FORECAST_WX_VARS[S_W100]), v10 = wx_var_find(w, FORECAST_WX_VARS[S_W10]);
    double v = v100 >= 0 ? wx_at(w, loc, (size_t)v100, m, t) : NAN, h = 100.0;
    if (!isfinite(v) && v10 >= 0) {
        v = wx_at(w, loc, (size_t)v10, m, t);
        h = 10.0;
    }
    if (!isfinite(v)) return NAN;
    double mw = 0;
    for (size_t k = 0; k < s->nmachine; k++) {
        const zone_machine *mc = &z->machine[s->machine_first + k];
        if (mc->fuel != ZONE_FUEL_WIND) continue;
        wind_farm f;
        wind_farm_defaults(&f, mc->capacity_mw, INFINITY, mc->hub_height_m);
        mw += wind_farm_mw(&f, v, h);
    }
    return mw;
}

/* A site's output lies between minus its import capacity (a battery
 * charging, auxiliaries at night) and its export capacity (G100). */
static double s_clip(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static long s_nearest_location(const zone_site *s, const wx_series *w)
{
    if (!w || w->nloc == 0) return -1;
    if (!isfinite(s->latitude) || !isfinite(s->longitude)) return 0;
    long best = 0;
    double bd = INFINITY, cl = cos(s->latitude * M_PI / 180.0);
    for (size_t i = 0; i < w->nloc; i++) {
        double dy = w->loc[i].latitude - s->latitude, dx = (w->loc[i].longitude - s->longitude) * cl;
        double d = dx * dx + dy * dy;
        if (d < bd) {
            bd = d;
            best = (long)i;
        }
    }
    return best;
}

/* Mean of the last 7 days' values at each half-hour of day: the persistence profile. */
static void s_profile(const history *h, const double *y, double prof[FC_NTOD])
{
    double sum[FC_NTOD] = { 0 };
    size_t cnt[FC_NTOD] = { 0 };
    size_t from = h->nt > 7 * 48 ? h->nt - 7 * 48 : 0;
    for (size_t i = from; i < h->nt; i++)
        if (isfinite(y[i])) {
            int k = fc_tod(h->t0 + (int64_t)i * HISTORY_SLOT);
            sum[k] += y[i];
            cnt[k]++;
        }
    double all = 0;
    size_t nall = 0;
    for (int k = 0; k < FC_NTOD; k++) {
        all += sum[k];
        nall += cnt[k];
    }
    for (int k = 0; k < FC_NTOD; k++)
        prof[k] = cnt[k] ? sum[k] / (double)cnt[k] : nall ? all / (double)nall : 0.0;
}

/* Residual at the anchor: the last residual within 2 h before it. */
static double s_last_resid(const history *h, const double *r, int64_t anchor)
{
    for (size_t i = h->nt; i-- > 0;) {
        int64_t end = h->t0 + (int64_t)(i + 1) * HISTORY_SLOT;
        if (end > anchor) continue;
        if (anchor - end > 7200) break;
        if (isfinite(r[i])) return r[i];
    }
    return 0.0;
}

/* Adds the weather ensemble's spread of an output (sums s1, s2 over n
 * members) to a residual sd, unless the residuals already hold the weather
 * forecast error (history modelled with forecasts at the same lead). */
static double s_with_spread(double sd, double s1, double s2, size_t n, bool resid_has_wx_error)
{
    if (n < 2 || resid_has_wx_error) return sd;
    double mean = s1 / (double)n, var = (s2 - (double)n * mean * mean) / (double)(n - 1);
    return var > 0 ? sqrt(sd * sd + var) : sd;
}

typedef struct s_run {
    const forecast_input *in;
    forecast *f;
    double *resid;              /* [(nsite + nbus) * nt] residual rows, NAN missing */
    double prof[FC_NTOD];
    /* the demand regressors of every half-hour of history, the same for
     * every bus: formed once (s_regressors), not once per bus */
    double *temp, *ghi;         /* [nt] */
    bool *hol;                  /* [nt] */
} s_run;

static void s_site(s_run *R, size_t si)
{
    const forecast_input *in = R->in;
    const zone *z = in->z;
    const zone_site *s = &z->site[si];
    forecast *f = R->f;
    fc_site *fs = &f->site[si];
    const history *h = in->hist;
    size_t nt = h ? h->nt : 0;
    double *res = R->resid + si * nt;
    fs->point = -1;
    fs->scale = 1.0;
    for (size_t p = 0; p < z->npoint; p++)
        if (z->point[p].element == ZONE_EL_SITE && z->point[p].site == (long)si &&
            z->point[p].quantity == ZONE_Q_P_MW) {
            fs->point = (long)p;
            break;
        }
    bool has_wx = in->fc_wx && in->fc_wx->nloc > 0;
    fs->method = (s->fuel == ZONE_FUEL_SOLAR && has_wx) ? FC_SOLAR
                 : (s->fuel == ZONE_FUEL_WIND && has_wx) ? FC_WIND
                 : fs->point >= 0 ? FC_PERSISTENCE : FC_NOTHING;
    fs->loc = has_wx ? s_nearest_location(s, in->fc_wx) : -1;
    const double *y = h && fs->point >= 0 ? history_row(h, (size_t)fs->point) : NULL;
    bool physical = fs->method == FC_SOLAR || fs->method == FC_WIND;

    /* History: calibrate, then residuals. */
    if (y) {
        double *x = malloc(nt * sizeof *x);
        long hloc = physical && in->hist_wx ? s_nearest_location(s, in->hist_wx) : -1;
        if (x && hloc >= 0) {
            for (size_t i = 0; i < nt; i++)
                x[i] = s_model_mw(z, si, fs->method, in->hist_wx, (size_t)hloc, 0, h->t0 + (int64_t)i * HISTORY_SLOT);
            fs->scale = fc_calibrate_scale(x, y, nt, s->export_mw, &fs->calib_used);
            for (size_t i = 0; i < nt; i++)
                res[i] = isfinite(x[i]) && isfinite(y[i])
                             ? y[i] - s_clip(fs->scale * x[i], -s->import_mw, s->export_mw) : NAN;
        } else if (!physical) {
            s_profile(h, y, R->prof);
            for (size_t i = 0; i < nt; i++)
                res[i] = isfinite(y[i]) ? y[i] - R->prof[fc_tod(h->t0 + (int64_t)i * HISTORY_SLOT)] : NAN;
        }
        free(x);
        fc_errmodel_fit(h->t0, res, nt, &fs->err);
        fs->last_resid = s_last_resid(h, res, in->anchor);
    }
    if (!physical && y) s_profile(h, y, R->prof);
    /* A physical model with nothing to learn its error from (no SCADA or no
     * historical weather) must not look certain: FC_DEFAULT_SD_FRACTION of
     * export capacity at every half-hour, no autocorrelation. */
    if (physical && fs->err.n == 0) {
        for (int k = 0; k < FC_NTOD; k++) fs->err.sd_tod[k] = FC_DEFAULT_SD_FRACTION * s->export_mw;
        fs->err.sd = FC_DEFAULT_SD_FRACTION * s->export_mw;
        fs->err.phi = 0;
    }

    for (size_t k = 0; k < in->nsp; k++) {
        int64_t t = in->sp[k];
        double lead = (double)(t - in->anchor) / HISTORY_SLOT + 1;
        double mean = 0;
        bool dark = false;
        if (physical) {
            double x = s_model_mw(z, si, fs->method, in->fc_wx, (size_t)fs->loc, 0, t);
            mean = isfinite(x) ? fs->scale * x : 0.0;
            dark = fs->method == FC_SOLAR && !(x > 0);
        } else if (fs->method == FC_PERSISTENCE && y) {
            mean = R->prof[fc_tod(t)];
        }
        if (lead < 1) lead = 1;
        /* The last residual decays into the mean (AR(1)); PV stays 0 in the dark. */
        if (!dark) mean += pow(fs->err.phi, lead) * fs->last_resid;
        f->site_mean[si * in->nsp + k] = s_clip(mean, -s->import_mw, s->export_mw);
        double sd = fc_errmodel_sd(&fs->err, t, lead);
        /* PV is exactly zero with the sun down: no spread to sample. */
        if (fs->method == FC_SOLAR && f->site_mean[si * in->nsp + k] == 0.0) {
            double zen, az;
            solar_position(t + HISTORY_SLOT / 2, isfinite(s->latitude) ? s->latitude : in->fc_wx->loc[fs->loc].latitude,
                           isfinite(s->longitude) ? s->longitude : in->fc_wx->loc[fs->loc].longitude, &zen, &az);
            if (zen >= 90.0) sd = 0.0;
        }
        double s1 = 0, s2 = 0;
        for (size_t m = 0; f->site_member && m < f->nmember; m++) {
            double v = f->site_mean[si * in->nsp + k];
            if (physical) {
                double x = s_model_mw(z, si, fs->method, in->fc_wx, (size_t)fs->loc, m, t);
                v = isfinite(x) ? s_clip(fs->scale * x, -s->import_mw, s->export_mw) : v;
            }
            f->site_member[(si * f->nmember + m) * in->nsp + k] = v;
            s1 += v;
            s2 += v * v;
        }
        f->site_sd_model[si * in->nsp + k] = sd;
        f->site_sd[si * in->nsp + k] = s_with_spread(sd, s1, s2, f->nmember, (in->hist_wx && in->hist_wx->lead_matched));
    }
}

static double s_zone_wx_member(const wx_series *w, int var, size_t member, int64_t t)
{
    long v = w ? wx_var_find(w, FORECAST_WX_VARS[var]) : -1;
    if (v < 0) return NAN;
    double sum = 0;
    size_t n = 0;
    for (size_t l = 0; l < w->nloc; l++) {
        double x = wx_at(w, l, (size_t)v, member, t);
        if (isfinite(x)) {
            sum += x;
            n++;
        }
    }
    return n ? sum / (double)n : NAN;
}

/* Zone-average of variable var (member m) at slot t: the demand regressor.
 * A member missing a variable (ensembles carry fewer) uses the control's. */
static double s_zone_wx(const wx_series *w, int var, size_t member, int64_t t)
{
    double x = s_zone_wx_member(w, var, member, t);
    return isfinite(x) || member == 0 ? x : s_zone_wx_member(w, var, 0, t);
}


/* R's demand regressors of the history, on first use. */
static pcf_rc s_regressors(s_run *R, pcf_error *err)
{
    const history *h = R->in->hist;
    if (R->temp || !h) return PCF_OK;
    size_t nt = h->nt;
    R->temp = malloc((nt + 1) * sizeof *R->temp);
    R->ghi = malloc((nt + 1) * sizeof *R->ghi);
    R->hol = malloc((nt + 1) * sizeof *R->hol);
    if (!R->temp || !R->ghi || !R->hol) return pcf_error_set(err, PCF_ERR_NOMEM, "forecast: out of memory");
    for (size_t i = 0; i < nt; i++) {
        int64_t t = h->t0 + (int64_t)i * HISTORY_SLOT;
        R->temp[i] = s_zone_wx(R->in->hist_wx, S_TEMP, 0, t);
        R->ghi[i] = s_zone_wx(R->in->hist_wx, S_GHI, 0, t);
        R->hol[i] = s_holiday_at(t);
    }
    return PCF_OK;
}

static pcf_rc s_bus(s_run *R, size_t b, pcf_error *err)
{
    const forecast_input *in = R->in;
    const zone *z = in->z;
    forecast *f = R->f;
    const history *h = in->hist;
    size_t nt = h ? h->nt : 0;
    f->bus_point[b] = -1;
    for (size_t p = 0; p < z->npoint; p++)
        if (z->point[p].element == ZONE_EL_BUS && z->point[p].bus_row == (long)b &&
            z->point[p].quantity == ZONE_Q_P_MW) {
            f->bus_point[b] = (long)p;
            break;
        }
    double pd = MP_AT(&z->mpc->bus, b, MP_PD);
    fc_demand *m = &f->bus_model[b];
    bool fitted = false;
    double last = 0;
    if (f->bus_point[b] >= 0 && h) {
        pcf_rc rc = s_regressors(R, err);
        if (rc != PCF_OK) return rc;
        const double *temp = R->temp, *ghi = R->ghi;
        const bool *hol = R->hol;
        const double *y = history_row(h, (size_t)f->bus_point[b]);
        pcf_error ferr;
        fitted = fc_demand_fit(h->t0, nt, y, temp, ghi, hol, m, &ferr) == PCF_OK;
        double *res = R->resid + (f->nsite + b) * nt;
        for (size_t i = 0; fitted && i < nt; i++)
            res[i] = isfinite(y[i]) ? y[i] - fc_demand_predict(m, h->t0 + (int64_t)i * HISTORY_SLOT, temp[i],
                                                               ghi[i], hol[i])
                                    : NAN;
        if (fitted) last = s_last_resid(h, res, in->anchor);
    }
    for (size_t k = 0; k < in->nsp; k++) {
        int64_t t = in->sp[k];
        double lead = (double)(t - in->anchor) / HISTORY_SLOT + 1;
        if (lead < 1) lead = 1;
        if (!fitted) {
            f->bus_mean[b * in->nsp + k] = pd;
            f->bus_sd[b * in->nsp + k] = 0;
            continue;
        }
        bool hol = in->holiday ? in->holiday[k] : s_holiday_at(t);
        double mean = fc_demand_predict(m, t, s_zone_wx(in->fc_wx, S_TEMP, 0, t), s_zone_wx(in->fc_wx, S_GHI, 0, t),
                                        hol);
        f->bus_mean[b * in->nsp + k] = mean + pow(m->err.phi, lead) * last;
        double s1 = 0, s2 = 0;
        for (size_t mb = 0; f->nmember > 1 && mb < f->nmember; mb++) {
            double v = fc_demand_predict(m, t, s_zone_wx(in->fc_wx, S_TEMP, mb, t),
                                         s_zone_wx(in->fc_wx, S_GHI, mb, t), hol);
            s1 += v;
            s2 += v * v;
        }
        f->bus_sd[b * in->nsp + k] = s_with_spread(fc_errmodel_sd(&m->err, t, lead), s1, s2, f->nmember,
                                                   (in->hist_wx && in->hist_wx->lead_matched));
    }
    if (!fitted) f->bus_point[b] = -1;
    return PCF_OK;
}

/* One correlation group from the residual rows of its members. */
static pcf_rc s_group(s_run *R, int kind, const size_t *member, size_t n, size_t row_offset, pcf_error *err)
{
    forecast *f = R->f;
    size_t nt = R->in->hist ? R->in->hist->nt : 0;
    fc_group *g = &f->group[f->ngroup];
    g->kind = kind;
    g->member = malloc(n * sizeof *g->member);
    g->corr = malloc(n * n * sizeof *g->corr);
    double *rows = malloc(n * (nt ? nt : 1) * sizeof *rows);
    pcf_rc rc = PCF_OK;
    if (!g->member || !g->corr || !rows) rc = pcf_error_set(err, PCF_ERR_NOMEM, "forecast: out of memory");
    if (rc == PCF_OK) {
        f->ngroup++;
        g->n = n;
        memcpy(g->member, member, n * sizeof *member);
        for (size_t i = 0; i < n; i++)
            memcpy(rows + i * nt, R->resid + (row_offset + member[i]) * nt, nt * sizeof *rows);
        rc = fc_corr_shrink(rows, n, nt, g->corr, &g->lambda, err);
    } else {
        free(g->member);
        free(g->corr);
        g->member = NULL;
        g->corr = NULL;
    }
    free(rows);
    return rc;
}

static pcf_rc s_groups(s_run *R, pcf_error *err)
{
    forecast *f = R->f;
    const zone *z = R->in->z;
    size_t *m = malloc((f->nsite > f->nbus ? f->nsite : f->nbus) * sizeof *m + 1);
    f->group = calloc(ZONE_NFUEL + 1, sizeof *f->group);
    if (!m || !f->group) {
        free(m);
        return pcf_error_set(err, PCF_ERR_NOMEM, "forecast: out of memory");
    }
    pcf_rc rc = PCF_OK;
    for (int fuel = 0; fuel < ZONE_NFUEL && rc == PCF_OK; fuel++) {
        size_t n = 0;
        for (size_t s = 0; s < f->nsite; s++)
            if ((int)z->site[s].fuel == fuel) m[n++] = s;
        if (n) rc = s_group(R, fuel, m, n, 0, err);
    }
    size_t n = 0;
    for (size_t b = 0; b < f->nbus; b++)
        if (f->bus_point[b] >= 0) m[n++] = b;
    if (n && rc == PCF_OK) rc = s_group(R, FC_GROUP_DEMAND, m, n, f->nsite, err);
    free(m);
    return rc;
}

pcf_rc forecast_run(const forecast_input *in, forecast **out, pcf_error *err)
{
    *out = NULL;
    const zone *z = in->z;
    if (in->nsp == 0 || in->nsp > 4 * 50 * 14)
        return pcf_error_set(err, PCF_ERR_INVALID, "forecast: %zu settlement periods (1..2800)", in->nsp);
    if (in->hist && in->hist->npoint != z->npoint)
        return pcf_error_set(err, PCF_ERR_INVALID, "forecast: history has %zu points, the zone %zu",
                             in->hist->npoint, z->npoint);
    forecast *f = calloc(1, sizeof *f);
    if (!f) return pcf_error_set(err, PCF_ERR_NOMEM, "forecast: out of memory");
    f->nsite = z->nsite;
    f->nbus = z->mpc->bus.rows;
    f->nsp = in->nsp;
    size_t ns = f->nsite ? f->nsite : 1, nb = f->nbus ? f->nbus : 1, nt = in->hist ? in->hist->nt : 0;
    f->sp = malloc(in->nsp * sizeof *f->sp);
    f->site_mean = calloc(ns * in->nsp, sizeof(double));
    f->site_sd = calloc(ns * in->nsp, sizeof(double));
    f->site_sd_model = calloc(ns * in->nsp, sizeof(double));
    f->bus_mean = calloc(nb * in->nsp, sizeof(double));
    f->bus_sd = calloc(nb * in->nsp, sizeof(double));
    f->bus_point = calloc(nb, sizeof *f->bus_point);
    f->bus_model = calloc(nb, sizeof *f->bus_model);
    f->site = calloc(ns, sizeof *f->site);
    if (in->fc_wx && in->fc_wx->nmember > 1) {
        f->nmember = in->fc_wx->nmember;
        f->site_member = calloc(ns * f->nmember * in->nsp, sizeof(double));
    }
    s_run R = { .in = in, .f = f };
    size_t nres = (f->nsite + f->nbus) * nt;
    R.resid = malloc((nres ? nres : 1) * sizeof *R.resid);
    pcf_rc rc = PCF_OK;
    if (!f->sp || !f->site_mean || !f->site_sd || !f->site_sd_model || !f->bus_mean || !f->bus_sd || !f->bus_point || !f->bus_model ||
        !f->site || !R.resid || (f->nmember && !f->site_member))
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "forecast: out of memory");
    if (rc == PCF_OK) {
        memcpy(f->sp, in->sp, in->nsp * sizeof *f->sp);
        for (size_t i = 0; i < nres; i++) R.resid[i] = NAN;
        for (size_t s = 0; s < f->nsite; s++) s_site(&R, s);
        for (size_t b = 0; b < f->nbus && rc == PCF_OK; b++) rc = s_bus(&R, b, err);
    }
    if (rc == PCF_OK) rc = s_groups(&R, err);
    free(R.resid);
    free(R.temp);
    free(R.ghi);
    free(R.hol);
    if (rc != PCF_OK) {
        forecast_destroy(&f);
        return rc;
    }
    *out = f;
    return PCF_OK;
}

void forecast_destroy(forecast **fp)
{
    if (!fp || !*fp) return;
    forecast *f = *fp;
    for (size_t g = 0; g < f->ngroup; g++) {
        free(f->group[g].member);
        free(f->group[g].corr);
    }
    free(f->group);
    free(f->sp);
    free(f->site_mean);
    free(f->site_sd);
    free(f->site_sd_model);
    free(f->bus_mean);
    free(f->bus_sd);
    free(f->bus_point);
    free(f->bus_model);
    free(f->site);
    free(f->site_member);
    free(f);
    *fp = NULL;
}

void forecast_group_cov(const forecast *f, size_t g, size_t k, double *cov)
{
    const fc_group *gr = &f->group[g];
    size_t n = gr->n;
    for (size_t i = 0; i < n; i++) {
        double si = gr->kind == FC_GROUP_DEMAND ? f->bus_sd[gr->member[i] * f->nsp + k]
                                                : f->site_sd[gr->member[i] * f->nsp + k];
        for (size_t j = 0; j < n; j++) {
            double sj = gr->kind == FC_GROUP_DEMAND ? f->bus_sd[gr->member[j] * f->nsp + k]
                                                    : f->site_sd[gr->member[j] * f->nsp + k];
            cov[i * n + j] = gr->corr[i * n + j] * si * sj + (i == j ? 1e-9 : 0.0);
        }
    }
}
