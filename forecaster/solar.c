/*
 * solar.c -- see solar.h.  Angles are degrees at the interface and radians
 * inside; every formula cites its source there.
 */
#include "solar.h"

#include <math.h>

#include "sptime.h"

#define S_D2R (M_PI / 180.0)
#define S_R2D (180.0 / M_PI)

void solar_position(int64_t t, double lat_deg, double lon_deg, double *zenith_deg, double *azimuth_deg)
{
    /* NOAA Global Monitoring Laboratory solar calculator (Meeus). */
    double jd = (double)t / 86400.0 + 2440587.5;
    double jc = (jd - 2451545.0) / 36525.0;
    double l0 = fmod(280.46646 + jc * (36000.76983 + jc * 0.0003032), 360.0);
    double m = 357.52911 + jc * (35999.05029 - 0.0001537 * jc);
    double e = 0.016708634 - jc * (0.000042037 + 0.0000001267 * jc);
    double mr = m * S_D2R;
    double c = sin(mr) * (1.914602 - jc * (0.004817 + 0.000014 * jc)) + sin(2 * mr) * (0.019993 - 0.000101 * jc) +
               sin(3 * mr) * 0.000289;
    double omega = (125.04 - 1934.136 * jc) * S_D2R;
    double app_long = (l0 + c - 0.00569 - 0.00478 * sin(omega)) * S_D2R;
    double mean_obliq = 23.0 + (26.0 + (21.448 - jc * (46.815 + jc * (0.00059 - jc * 0.001813))) / 60.0) / 60.0;
    double obliq = (mean_obliq + 0.00256 * cos(omega)) * S_D2R;
    double decl = asin(sin(obliq) * sin(app_long));
    double y = tan(obliq / 2) * tan(obliq / 2);
    double l0r = l0 * S_D2R;
    double eot_min = 4.0 * S_R2D *
                     (y * sin(2 * l0r) - 2 * e * sin(mr) + 4 * e * y * sin(mr) * cos(2 * l0r) -
                      0.5 * y * y * sin(4 * l0r) - 1.25 * e * e * sin(2 * mr));
    int64_t sod = ((t % 86400) + 86400) % 86400;
    double tst = fmod((double)sod / 60.0 + eot_min + 4.0 * lon_deg, 1440.0);
    if (tst < 0) tst += 1440.0;
    double ha = (tst / 4.0 - 180.0) * S_D2R;
    double lat = lat_deg * S_D2R;
    double cz = sin(lat) * sin(decl) + cos(lat) * cos(decl) * cos(ha);
    if (cz > 1) cz = 1;
    if (cz < -1) cz = -1;
    *zenith_deg = acos(cz) * S_R2D;
    double az = atan2(sin(ha), cos(ha) * sin(lat) - tan(decl) * cos(lat)) * S_R2D + 180.0;
    *azimuth_deg = fmod(az + 360.0, 360.0);
}

double solar_extraterrestrial(int doy)
{
    /* Spencer (1971) series for (r0/r)^2. */
    double g = 2.0 * M_PI * (doy - 1) / 365.0;
    double f = 1.000110 + 0.034221 * cos(g) + 0.001280 * sin(g) + 0.000719 * cos(2 * g) + 0.000077 * sin(2 * g);
    return 1361.0 * f;
}

void solar_erbs(double ghi, double zenith_deg, int doy, double *dni, double *dhi)
{
    double cz = cos(zenith_deg * S_D2R);
    if (!(ghi > 0)) {
        *dni = 0;
        *dhi = 0;
        return;
    }
    if (cz < 0.0175) {          /* sun below 1 degree: no meaningful beam */
        *dni = 0;
        *dhi = ghi;
        return;
    }
    double kt = ghi / (solar_extraterrestrial(doy) * cz);
    if (kt > 1) kt = 1;
    double kd;
    if (kt <= 0.22)
        kd = 1.0 - 0.09 * kt;
    else if (kt <= 0.80)
        kd = 0.9511 - 0.1604 * kt + 4.388 * kt * kt - 16.638 * kt * kt * kt + 12.336 * kt * kt * kt * kt;
    else
        kd = 0.165;
    *dhi = kd * ghi;
    *dni = (ghi - *dhi) / cz;
}

void solar_pv_defaults(solar_pv *p, double dc_mw, double ac_mw, double tilt_deg, double azimuth_deg)
{
    p->dc_mw = dc_mw;
    p->ac_mw = ac_mw;
    p->tilt_deg = tilt_deg;
    p->azimuth_deg = azimuth_deg;
    p->albedo = 0.2;
    p->noct_c = 45.0;
    p->gamma_per_k = -0.004;
    p->perf_ratio = 0.9;
}

double solar_poa(const solar_pv *p, double dni, double dhi, double ghi, double zenith_deg, double sun_az_deg)
{
    double b = p->tilt_deg * S_D2R, z = zenith_deg * S_D2R;
    double caoi = cos(z) * cos(b) + sin(z) * sin(b) * cos((sun_az_deg - p->azimuth_deg) * S_D2R);
    double beam = zenith_deg < 90.0 && caoi > 0 ? dni * caoi : 0.0;
    double poa = beam + dhi * (1.0 + cos(b)) / 2.0 + p->albedo * ghi * (1.0 - cos(b)) / 2.0;
    return poa > 0 ? poa : 0.0;
}

double solar_pv_mw_at(const solar_pv *p, double ghi, double temp_c, double zenith_deg, double sun_az_deg,
                      int doy, solar_detail *d)
{
    double dni, dhi;
    solar_erbs(ghi, zenith_deg, doy, &dni, &dhi);
    double poa = solar_poa(p, dni, dhi, ghi > 0 ? ghi : 0, zenith_deg, sun_az_deg);
    double tc = temp_c + (p->noct_c - 20.0) / 800.0 * poa;
    double derate = 1.0 + p->gamma_per_k * (tc - 25.0);
    if (derate < 0) derate = 0;
    double mw = p->dc_mw * poa / 1000.0 * derate * p->perf_ratio;
    if (d) *d = (solar_detail){ zenith_deg, sun_az_deg, dni, dhi, poa, tc, mw };
    if (mw > p->ac_mw) mw = p->ac_mw;
    return mw > 0 ? mw : 0.0;
}

static int s_doy(int64_t t)
{
    sptime_civil c, jan1 = { 0 };
    sptime_to_civil(t, &c);
    jan1.year = c.year;
    jan1.month = 1;
    jan1.day = 1;
    return (int)((t - sptime_from_civil(&jan1)) / 86400) + 1;
}

double solar_pv_mw(const solar_pv *p, double ghi, double temp_c, int64_t t, double lat_deg, double lon_deg,
                   solar_detail *detail)
{
    double z, az;
    solar_position(t, lat_deg, lon_deg, &z, &az);
    return solar_pv_mw_at(p, ghi, temp_c, z, az, s_doy(t), detail);
}
