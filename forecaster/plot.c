/*
 * plot.c -- cairo drawings; see plot.h.
 *
 * Both pictures share one frame: a title line, a plotting area with a left
 * margin sized to the longest row label, settlement periods along the
 * bottom labelled every fourth, and a legend on the right.
 */
#include "plot.h"

#include <cairo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define PLOT_W 1400
#define PLOT_TOP 60
#define PLOT_BOTTOM 60
#define PLOT_RIGHT 150

static void s_text(cairo_t *cr, double x, double y, double size, int bold, double align, const char *s)
{
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t te;
    cairo_text_extents(cr, s, &te);
    cairo_move_to(cr, x - align * te.x_advance, y);
    cairo_show_text(cr, s);
}

/* White -> yellow -> orange -> red -> dark red for p in [0, 1]. */
static void s_heat(double p, double *r, double *g, double *b)
{
    static const double stops[5][3] = {
        { 1.00, 1.00, 1.00 }, { 1.00, 0.93, 0.45 }, { 0.99, 0.60, 0.20 }, { 0.85, 0.15, 0.10 }, { 0.45, 0.00, 0.05 } };
    if (!(p >= 0)) p = 0;
    if (p > 1) p = 1;
    double x = p * 4;
    int i = (int)x;
    if (i >= 4) i = 3;
    double f = x - i;
    *r = stops[i][0] + f * (stops[i + 1][0] - stops[i][0]);
    *g = stops[i][1] + f * (stops[i + 1][1] - stops[i][1]);
    *b = stops[i][2] + f * (stops[i + 1][2] - stops[i][2]);
}

static pcf_rc s_finish(cairo_surface_t *sf, cairo_t *cr, const char *path, pcf_error *err)
{
    cairo_destroy(cr);
    cairo_status_t st = cairo_surface_write_to_png(sf, path);
    cairo_surface_destroy(sf);
    if (st != CAIRO_STATUS_SUCCESS)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, cairo_status_to_string(st));
    return PCF_OK;
}

static void s_sp_axis(cairo_t *cr, double x0, double cw, double y, size_t nsp, const int *sp)
{
    char buf[16];
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    for (size_t k = 0; k < nsp; k++) {
        if (k % 4 && k != nsp - 1) continue;
        snprintf(buf, sizeof buf, "%d", sp[k]);
        s_text(cr, x0 + (k + 0.5) * cw, y, 11, 0, 0.5, buf);
    }
}

pcf_rc plot_heatmap_png(const plot_heatmap *h, const char *path, pcf_error *err)
{
    if (!h->nsite || !h->nsp) return pcf_error_set(err, PCF_ERR_INVALID, "heatmap: nothing to draw");
    double row_h = h->nsite > 40 ? 14 : 20;
    double left = 170;
    int height = (int)(PLOT_TOP + PLOT_BOTTOM + row_h * (double)h->nsite);
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PLOT_W, height);
    cairo_t *cr = cairo_create(sf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(sf);
        return pcf_error_set(err, PCF_ERR_NOMEM, "heatmap: cannot create a %dx%d image", PLOT_W, height);
    }
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    s_text(cr, 20, 32, 18, 1, 0, h->title);
    double cw = (PLOT_W - left - PLOT_RIGHT) / (double)h->nsp;
    for (size_t s = 0; s < h->nsite; s++) {
        double y = PLOT_TOP + row_h * (double)s;
        for (size_t k = 0; k < h->nsp; k++) {
            double v = h->value[s * h->nsp + k], r, g, b;
            if (isnan(v)) r = g = b = 0.85;
            else s_heat(v, &r, &g, &b);
            cairo_set_source_rgb(cr, r, g, b);
            cairo_rectangle(cr, left + cw * (double)k, y, cw - 1, row_h - 1);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        s_text(cr, left - 8, y + row_h * 0.72, row_h > 15 ? 12 : 10, 0, 1, h->site_label[s]);
    }
    double yb = PLOT_TOP + row_h * (double)h->nsite;
    s_sp_axis(cr, left, cw, yb + 18, h->nsp, h->sp_number);
    s_text(cr, left + (PLOT_W - left - PLOT_RIGHT) / 2, yb + 42, 12, 0, 0.5, "settlement period (UK local day)");
    /* colour bar */
    double bx = PLOT_W - PLOT_RIGHT + 30, by = PLOT_TOP, bh = yb - PLOT_TOP;
    if (bh < 100) bh = 100;
    for (int i = 0; i < 100; i++) {
        double r, g, b;
        s_heat(1 - i / 99.0, &r, &g, &b);
        cairo_set_source_rgb(cr, r, g, b);
        cairo_rectangle(cr, bx, by + bh * i / 100.0, 20, bh / 100.0 + 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, bx, by, 20, bh);
    cairo_stroke(cr);
    s_text(cr, bx + 26, by + 10, 11, 0, 0, "1.0");
    s_text(cr, bx + 26, by + bh / 2 + 4, 11, 0, 0, "0.5");
    s_text(cr, bx + 26, by + bh, 11, 0, 0, "0.0");
    s_text(cr, bx - 4, by - 10, 11, 1, 0, "P(curtailed)");
    return s_finish(sf, cr, path, err);
}

static void s_range(const double *v, size_t n, double *lo, double *hi)
{
    if (!v) return;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        if (v[i] < *lo) *lo = v[i];
        if (v[i] > *hi) *hi = v[i];
    }
}

static void s_band(cairo_t *cr, double (*X)(size_t, void *), double (*Y)(double, void *), void *ctx,
                   const double *lo, const double *hi, size_t n)
{
    int started = 0;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(hi[k])) continue;
        if (!started) cairo_move_to(cr, X(k, ctx), Y(hi[k], ctx));
        else cairo_line_to(cr, X(k, ctx), Y(hi[k], ctx));
        started = 1;
    }
    for (size_t k = n; k-- > 0;) {
        if (!isfinite(lo[k])) continue;
        cairo_line_to(cr, X(k, ctx), Y(lo[k], ctx));
    }
    if (started) {
        cairo_close_path(cr);
        cairo_fill(cr);
    }
}

static void s_line(cairo_t *cr, double (*X)(size_t, void *), double (*Y)(double, void *), void *ctx,
                   const double *v, size_t n)
{
    int started = 0;
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(v[k])) {
            started = 0;
            continue;
        }
        if (!started) cairo_move_to(cr, X(k, ctx), Y(v[k], ctx));
        else cairo_line_to(cr, X(k, ctx), Y(v[k], ctx));
        started = 1;
    }
    cairo_stroke(cr);
}

typedef struct frame {
    double x0, x1, y0, y1, lo, hi;
    size_t n;
} frame;

static double s_fx(size_t k, void *ctx)
{
    const frame *f = ctx;
    return f->x0 + (f->x1 - f->x0) * ((double)k + 0.5) / (double)f->n;
}

static double s_fy(double v, void *ctx)
{
    const frame *f = ctx;
    return f->y1 - (f->y1 - f->y0) * (v - f->lo) / (f->hi - f->lo);
}

pcf_rc plot_quantiles_png(const plot_quantiles *q, const char *path, pcf_error *err)
{
    if (!q->nsp) return pcf_error_set(err, PCF_ERR_INVALID, "chart: nothing to draw");
    const int height = 620;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PLOT_W, height);
    cairo_t *cr = cairo_create(sf);
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(cr);
        cairo_surface_destroy(sf);
        return pcf_error_set(err, PCF_ERR_NOMEM, "chart: cannot create the image");
    }
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    s_text(cr, 20, 32, 18, 1, 0, q->title);
    double lo = 0, hi = 1;
    s_range(q->p10, q->nsp, &lo, &hi);
    s_range(q->p90, q->nsp, &lo, &hi);
    s_range(q->f10, q->nsp, &lo, &hi);
    s_range(q->f90, q->nsp, &lo, &hi);
    s_range(q->limit, q->nsp, &lo, &hi);
    double pad = (hi - lo) * 0.08;
    frame f = { 90, PLOT_W - PLOT_RIGHT - 60, PLOT_TOP + 10, height - PLOT_BOTTOM - 20, lo - pad, hi + pad, q->nsp };
    /* grid and y axis */
    double step = pow(10, floor(log10((f.hi - f.lo) / 5)));
    if ((f.hi - f.lo) / step > 10) step *= 2;
    if ((f.hi - f.lo) / step > 10) step *= 2.5;
    char buf[32];
    cairo_set_line_width(cr, 1);
    for (double v = ceil(f.lo / step) * step; v <= f.hi; v += step) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, f.x0, s_fy(v, &f));
        cairo_line_to(cr, f.x1, s_fy(v, &f));
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        snprintf(buf, sizeof buf, "%g", fabs(v) < 1e-9 ? 0.0 : v);
        s_text(cr, f.x0 - 8, s_fy(v, &f) + 4, 11, 0, 1, buf);
    }
    s_text(cr, 20, f.y0 - 12, 12, 0, 0, "MW");
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_rectangle(cr, f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
    cairo_stroke(cr);
    double cw = (f.x1 - f.x0) / (double)q->nsp;
    s_sp_axis(cr, f.x0, cw, f.y1 + 18, q->nsp, q->sp_number);
    s_text(cr, (f.x0 + f.x1) / 2, f.y1 + 42, 12, 0, 0.5, "settlement period (UK local day)");
    /* P(ANM acts) as grey bars along the bottom fifth */
    if (q->p_acts) {
        cairo_set_source_rgba(cr, 0.3, 0.3, 0.3, 0.35);
        for (size_t k = 0; k < q->nsp; k++) {
            double hgt = (f.y1 - f.y0) * 0.2 * (isfinite(q->p_acts[k]) ? q->p_acts[k] : 0);
            cairo_rectangle(cr, f.x0 + cw * (double)k + 1, f.y1 - hgt, cw - 2, hgt);
        }
        cairo_fill(cr);
    }
    if (q->f10 && q->f90) {
        cairo_set_source_rgba(cr, 0.95, 0.55, 0.15, 0.25);
        s_band(cr, s_fx, s_fy, &f, q->f10, q->f90, q->nsp);
    }
    cairo_set_source_rgba(cr, 0.20, 0.45, 0.85, 0.30);
    s_band(cr, s_fx, s_fy, &f, q->p10, q->p90, q->nsp);
    cairo_set_line_width(cr, 2);
    cairo_set_source_rgb(cr, 0.10, 0.30, 0.75);
    s_line(cr, s_fx, s_fy, &f, q->p50, q->nsp);
    if (q->f50) {
        double dash[1] = { 6 };
        cairo_set_dash(cr, dash, 1, 0);
        cairo_set_source_rgb(cr, 0.85, 0.45, 0.05);
        s_line(cr, s_fx, s_fy, &f, q->f50, q->nsp);
        cairo_set_dash(cr, NULL, 0, 0);
    }
    cairo_set_line_width(cr, 2.5);
    cairo_set_source_rgb(cr, 0.85, 0.05, 0.05);
    s_line(cr, s_fx, s_fy, &f, q->limit, q->nsp);
    /* legend */
    double lx = f.x1 + 20, ly = f.y0 + 10;
    struct { double r, g, b, a; const char *label; int dashed, band; } items[] = {
        { 0.85, 0.05, 0.05, 1, "limit", 0, 0 },
        { 0.10, 0.30, 0.75, 1, "intact P50", 0, 0 },
        { 0.20, 0.45, 0.85, 0.3, "intact P10-P90", 0, 1 },
        { 0.85, 0.45, 0.05, 1, "worst fault P50", 1, 0 },
        { 0.95, 0.55, 0.15, 0.25, "worst fault P10-P90", 0, 1 },
        { 0.3, 0.3, 0.3, 0.35, "P(ANM acts) x 20%", 0, 1 } };
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
        double y = ly + 22 * (double)i;
        cairo_set_source_rgba(cr, items[i].r, items[i].g, items[i].b, items[i].a);
        if (items[i].band) {
            cairo_rectangle(cr, lx, y - 6, 24, 12);
            cairo_fill(cr);
        } else {
            if (items[i].dashed) {
                double dash[1] = { 6 };
                cairo_set_dash(cr, dash, 1, 0);
            }
            cairo_set_line_width(cr, 2);
            cairo_move_to(cr, lx, y);
            cairo_line_to(cr, lx + 24, y);
            cairo_stroke(cr);
            cairo_set_dash(cr, NULL, 0, 0);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        s_text(cr, lx + 30, y + 4, 11, 0, 0, items[i].label);
    }
    return s_finish(sf, cr, path, err);
}
