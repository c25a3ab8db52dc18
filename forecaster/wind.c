/*
 * wind.c -- see wind.h.
 */
#include "wind.h"

#include <math.h>

void wind_curve_default(wind_curve *c)
{
    c->cut_in_ms = 3.0;
    c->rated_ms = 12.0;
    c->cut_out_ms = 25.0;
}

double wind_curve_pu(const wind_curve *c, double v)
{
    if (!(v >= c->cut_in_ms) || v >= c->cut_out_ms) return 0.0;   /* NaN gives 0 */
    if (v >= c->rated_ms) return 1.0;
    double a = c->cut_in_ms * c->cut_in_ms * c->cut_in_ms;
    double b = c->rated_ms * c->rated_ms * c->rated_ms;
    return (v * v * v - a) / (b - a);
}

double wind_shear(double v, double h_from, double h_to, double alpha)
{
    if (!(v > 0) || !(h_from > 0) || !(h_to > 0)) return 0.0;
    return v * pow(h_to / h_from, alpha);
}

void wind_farm_defaults(wind_farm *f, double installed_mw, double export_mw, double hub_height_m)
{
    f->installed_mw = installed_mw;
    f->export_mw = export_mw;
    f->hub_height_m = hub_height_m;
    f->shear_alpha = 1.0 / 7.0;
    f->availability = 1.0;
    wind_curve_default(&f->curve);
}

double wind_farm_mw(const wind_farm *f, double v_ref, double h_ref)
{
    double v = wind_shear(v_ref, h_ref, f->hub_height_m, f->shear_alpha);
    double mw = f->installed_mw * wind_curve_pu(&f->curve, v) * f->availability;
    return mw > f->export_mw ? f->export_mw : mw;
}
