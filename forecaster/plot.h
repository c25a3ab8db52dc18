/*
 * plot.h -- the two pictures an operator looks at first, drawn with cairo
 * into PNG files: a heatmap of P(curtailed) by site and settlement period,
 * and a constraint's flow quantiles against its limit through the day.
 *
 * Pure drawing from arrays the caller owns (pcf-plot reads them from
 * PostgreSQL), so the layout can be tested without a database.  Text uses
 * cairo's toy font API with the "sans-serif" family, which needs no font
 * files beyond what cairo's fontconfig backend finds.
 */
#ifndef PCF_PLOT_H
#define PCF_PLOT_H

#include <stddef.h>

#include "error.h"

typedef struct plot_heatmap {
    const char *title;
    size_t nsite, nsp;
    const char *const *site_label;   /* [nsite], top to bottom */
    const int *sp_number;            /* [nsp] */
    const double *value;             /* [nsite * nsp] in [0, 1]; NAN: no data */
} plot_heatmap;

/* Writes the heatmap to a PNG file. */
pcf_rc plot_heatmap_png(const plot_heatmap *h, const char *path, pcf_error *err);

typedef struct plot_quantiles {
    const char *title;
    size_t nsp;
    const int *sp_number;            /* [nsp] */
    const double *p10, *p50, *p90;   /* [nsp] intact flow quantiles, MW */
    const double *f10, *f50, *f90;   /* [nsp] worst-fault flow quantiles, or NULL */
    const double *limit;             /* [nsp] the limit, MW */
    const double *p_acts;            /* [nsp] P(ANM acts), or NULL */
} plot_quantiles;

/* Writes the chart to a PNG file. */
pcf_rc plot_quantiles_png(const plot_quantiles *q, const char *path, pcf_error *err);

#endif
