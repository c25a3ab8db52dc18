/*
 * wind.h -- wind speed to wind farm output.
 *
 * Hub-height speed from a forecast height by the power law,
 * v_hub = v_ref (h_hub / h_ref)^alpha, alpha = 1/7 by default (open flat
 * terrain; Peterson and Hennessey 1978); then a standard power curve:
 * zero below cut-in (3 m/s) and at or above cut-out (25 m/s), rated output
 * from rated speed (12 m/s), and between cut-in and rated the cubic
 * P/Prated = (v^3 - vci^3) / (vr^3 - vci^3), the shape the kinetic power
 * of the wind (1/2 rho A v^3) gives with a constant power coefficient.
 * Farm output = installed * curve * availability, clipped at the export
 * capacity.  Pure functions: thread-safe.
 */
#ifndef PCF_WIND_H
#define PCF_WIND_H

typedef struct wind_curve {
    double cut_in_ms, rated_ms, cut_out_ms;
} wind_curve;

typedef struct wind_farm {
    double installed_mw;
    double export_mw;           /* clipping limit (G100) */
    double hub_height_m;
    double shear_alpha;         /* power-law exponent, 1/7 */
    double availability;        /* fraction of turbines running, 1 before calibration */
    wind_curve curve;
} wind_farm;

/* Cut-in 3, rated 12, cut-out 25 m/s. */
void wind_curve_default(wind_curve *c);

/* Per-unit output of the curve at hub-height speed v (m/s). */
double wind_curve_pu(const wind_curve *c, double v);

/* Speed at height h_to from speed v at height h_from by the power law. */
double wind_shear(double v, double h_from, double h_to, double alpha);

void wind_farm_defaults(wind_farm *f, double installed_mw, double export_mw, double hub_height_m);

/* Farm output (MW) for a speed v_ref measured/forecast at h_ref metres. */
double wind_farm_mw(const wind_farm *f, double v_ref, double h_ref);

#endif
