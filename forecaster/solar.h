/*
 * solar.h -- irradiance to PV output: sun position, decomposition,
 * transposition, temperature derating and clipping.
 *
 * The chain (every step documented with its source in docs/methodology.md):
 *   1. Sun position at an instant (NOAA solar calculator equations, after
 *      Meeus, "Astronomical Algorithms"): zenith and azimuth (clockwise from
 *      north), accurate to a few hundredths of a degree for 1950-2050.
 *   2. Erbs, Klein and Duffie (1982) splits global horizontal irradiance
 *      (GHI) into diffuse (DHI) and direct normal (DNI) from the clearness
 *      index kt = GHI / (E0 cos z), E0 the extraterrestrial irradiance.
 *   3. Plane-of-array irradiance with the isotropic-sky model (Liu and
 *      Jordan 1963): POA = DNI cos(AOI) + DHI (1 + cos b)/2 + rho GHI (1 - cos b)/2.
 *   4. Cell temperature by the NOCT model, Tc = Ta + (NOCT - 20)/800 * POA,
 *      and a linear power temperature coefficient gamma (per K, about -0.4 %).
 *   5. P = dc_mw * POA/1000 * (1 + gamma (Tc - 25)) * performance ratio,
 *      clipped at ac_mw (the inverter / export limit: G100).
 * Pure functions, no state: thread-safe.
 */
#ifndef PCF_SOLAR_H
#define PCF_SOLAR_H

#include <stdint.h>

/* Zenith and azimuth (degrees; azimuth clockwise from north, 180 = south)
 * of the sun at UTC instant t seen from lat/lon (degrees, east positive).
 * No refraction correction (irrelevant for irradiance above 1 degree). */
void solar_position(int64_t t, double lat_deg, double lon_deg, double *zenith_deg, double *azimuth_deg);

/* Extraterrestrial normal irradiance (W/m2) on day-of-year doy (1..366):
 * 1361 W/m2 (Kopp and Lean 2011) times the Earth-Sun distance factor. */
double solar_extraterrestrial(int doy);

/* Erbs decomposition: DNI and DHI from GHI (W/m2) at zenith z.  kt is
 * clamped to [0, 1]; below 1 degree of elevation everything is diffuse. */
void solar_erbs(double ghi, double zenith_deg, int doy, double *dni, double *dhi);

typedef struct solar_pv {
    double dc_mw;               /* installed (DC nameplate) capacity */
    double ac_mw;               /* clipping limit: min(inverter, export capacity) */
    double tilt_deg;            /* 0 horizontal */
    double azimuth_deg;         /* 180 south */
    double albedo;              /* ground reflectance, 0.2 */
    double noct_c;              /* nominal operating cell temperature, 45 C */
    double gamma_per_k;         /* power temperature coefficient, -0.004 per K */
    double perf_ratio;          /* other losses (soiling, wiring, inverter, availability), 0.9 */
} solar_pv;

/* Fills p with the documented defaults for a plant of dc_mw behind an
 * export limit of ac_mw, tilted and oriented as given. */
void solar_pv_defaults(solar_pv *p, double dc_mw, double ac_mw, double tilt_deg, double azimuth_deg);

/* Intermediate results, for tests and diagnostics. */
typedef struct solar_detail {
    double zenith_deg, azimuth_deg, dni, dhi, poa, cell_c, unclipped_mw;
} solar_detail;

/* Plane-of-array irradiance (W/m2) from DNI/DHI/GHI and the sun position. */
double solar_poa(const solar_pv *p, double dni, double dhi, double ghi, double zenith_deg, double sun_az_deg);

/* PV output (MW) for GHI (W/m2) and air temperature (C) with the sun at
 * (zenith, azimuth) on day-of-year doy.  detail may be NULL. */
double solar_pv_mw_at(const solar_pv *p, double ghi, double temp_c, double zenith_deg, double sun_az_deg,
                      int doy, solar_detail *detail);

/* The same at UTC instant t for a plant at lat/lon (sun position computed). */
double solar_pv_mw(const solar_pv *p, double ghi, double temp_c, int64_t t, double lat_deg, double lon_deg,
                   solar_detail *detail);

#endif
