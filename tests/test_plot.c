/* test_plot.c -- the pictures encode what they are given: heatmap cells take
 * the colour of their probability, the chart is written and readable. */
#include <cairo.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "plot.h"

static void s_pixel(cairo_surface_t *s, int x, int y, int *r, int *g, int *b)
{
    unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    uint32_t px = *(uint32_t *)(d + y * stride + x * 4);
    *r = (px >> 16) & 0xff;
    *g = (px >> 8) & 0xff;
    *b = px & 0xff;
}

Test(plot, heatmap_cells_follow_probability)
{
    const char *labels[2] = { "S2 (LIFO 2)", "S1 (LIFO 1)" };
    int sp[4] = { 1, 2, 3, 4 };
    double v[8] = { 0, 0.25, 1, NAN, 0, 0, 0.5, 1 };
    plot_heatmap h = { "test", 2, 4, labels, sp, v };
    char path[64];
    snprintf(path, sizeof path, "/tmp/pcf-test-heat-%d.png", (int)getpid());
    pcf_error err;
    cr_assert_eq(plot_heatmap_png(&h, path, &err), PCF_OK, "%s", err.msg);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    cr_assert_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    cr_assert_eq(cairo_image_surface_get_width(s), 1400);
    /* cell (row 0, SP 1) is p = 0: white; (row 0, SP 3) is p = 1: dark red */
    double cw = (1400 - 170 - 150) / 4.0;
    int r, g, b;
    s_pixel(s, (int)(170 + cw * 0.5), 70, &r, &g, &b);
    cr_assert(r > 240 && g > 240 && b > 240, "p=0 should be white: %d %d %d", r, g, b);
    s_pixel(s, (int)(170 + cw * 2.5), 70, &r, &g, &b);
    cr_assert(r > 90 && r < 140 && g < 20 && b < 40, "p=1 should be dark red: %d %d %d", r, g, b);
    s_pixel(s, (int)(170 + cw * 3.5), 70, &r, &g, &b);
    cr_assert(r == g && g == b && r > 200 && r < 230, "no data should be grey: %d %d %d", r, g, b);
    cairo_surface_destroy(s);
    remove(path);
}

Test(plot, chart_is_written_and_rejects_empty_input)
{
    int sp[3] = { 1, 2, 3 };
    double p10[3] = { 1, 2, 3 }, p50[3] = { 2, 3, 4 }, p90[3] = { 3, 4, 5 }, lim[3] = { 4, 4, 4 }, acts[3] = { 0, 0.2, 0.9 };
    plot_quantiles q = { "chart", 3, sp, p10, p50, p90, NULL, NULL, NULL, lim, acts };
    char path[64];
    snprintf(path, sizeof path, "/tmp/pcf-test-chart-%d.png", (int)getpid());
    pcf_error err;
    cr_assert_eq(plot_quantiles_png(&q, path, &err), PCF_OK, "%s", err.msg);
    cairo_surface_t *s = cairo_image_surface_create_from_png(path);
    cr_assert_eq(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
    cairo_surface_destroy(s);
    remove(path);
    q.nsp = 0;
    cr_assert_eq(plot_quantiles_png(&q, path, &err), PCF_ERR_INVALID);
    cr_assert_eq(plot_quantiles_png(&q, "/nonexistent-dir/x.png", &err), PCF_ERR_INVALID);
    q.nsp = 3;
    cr_assert_eq(plot_quantiles_png(&q, "/nonexistent-dir/x.png", &err), PCF_ERR_IO);
}
