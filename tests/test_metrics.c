/* test_metrics.c -- the registry's Prometheus text (exact), the process_*
 * collector, and the HTTP endpoint over a real socket (libcurl). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "testhttp.h"

Test(metrics, renders_exact_exposition_text)
{
    metrics *m = metrics_new();
    metric *c = metrics_counter(m, "pcf_rows_total", "Rows stored.\nBy source \\ kind.", "source,kind");
    metric *g = metrics_gauge(m, "pcf_queue_depth", "Jobs waiting.", NULL);
    static const double b[] = { 0.1, 1, 2.5 };
    metric *h = metrics_histogram(m, "pcf_load_seconds", "Load time.", b, 3, "source");
    cr_assert(c && g && h);
    cr_assert_null(metrics_counter(m, "pcf_rows_total", "dup", NULL));
    cr_assert_null(metrics_counter(m, "9bad", "bad name", NULL));
    cr_assert_null(metrics_counter(m, "pcf_x", "bad label", "le"));
    metric_add(c, 3, "hist", "scada");
    metric_add(c, 2, "we\"ird\\\n", "scada");
    metric_add(c, 4, "hist", "scada");
    metric_set(g, 7);
    metric_add(g, -2);
    metric_observe(h, 0.0625, "hist");
    metric_observe(h, 1, "hist");
    metric_observe(h, 3, "hist");
    metric_observe(h, 0.0625, "hist");
    cr_assert_eq(metric_value(c, "hist", "scada"), 7);
    cr_assert_eq(metric_value(c, "nope", "scada"), 0);
    size_t len;
    char *t = metrics_render(m, &len);
    cr_assert_str_eq(t,
        "# HELP pcf_rows_total Rows stored.\\nBy source \\\\ kind.\n"
        "# TYPE pcf_rows_total counter\n"
        "pcf_rows_total{source=\"hist\",kind=\"scada\"} 7\n"
        "pcf_rows_total{source=\"we\\\"ird\\\\\\n\",kind=\"scada\"} 2\n"
        "# HELP pcf_queue_depth Jobs waiting.\n"
        "# TYPE pcf_queue_depth gauge\n"
        "pcf_queue_depth 5\n"
        "# HELP pcf_load_seconds Load time.\n"
        "# TYPE pcf_load_seconds histogram\n"
        "pcf_load_seconds_bucket{source=\"hist\",le=\"0.1\"} 2\n"
        "pcf_load_seconds_bucket{source=\"hist\",le=\"1\"} 3\n"
        "pcf_load_seconds_bucket{source=\"hist\",le=\"2.5\"} 3\n"
        "pcf_load_seconds_bucket{source=\"hist\",le=\"+Inf\"} 4\n"
        "pcf_load_seconds_sum{source=\"hist\"} 4.125\n"
        "pcf_load_seconds_count{source=\"hist\"} 4\n");
    cr_assert_eq(len, strlen(t));
    free(t);
    metrics_destroy(&m);
    cr_assert_null(m);
}

Test(metrics, special_values_and_unlabelled_zero)
{
    metrics *m = metrics_new();
    metric *g = metrics_gauge(m, "g", "", NULL);
    metric *l = metrics_gauge(m, "l", "Labelled, unused.", "x");
    cr_assert(g && l);
    char *t = metrics_render(m, NULL);
    cr_assert_str_eq(t, "# HELP g \n# TYPE g gauge\ng 0\n# HELP l Labelled, unused.\n# TYPE l gauge\n");
    free(t);
    metric_set(g, INFINITY);
    metric_set(l, NAN, "a");
    t = metrics_render(m, NULL);
    cr_assert_str_eq(t, "# HELP g \n# TYPE g gauge\ng +Inf\n# HELP l Labelled, unused.\n# TYPE l gauge\n"
                        "l{x=\"a\"} NaN\n");
    free(t);
    metric_set(g, 1e20);
    metric_set(l, -0.001, "a");
    t = metrics_render(m, NULL);
    cr_assert_not_null(strstr(t, "\ng 1e+20\n"), "%s", t);
    cr_assert_not_null(strstr(t, "l{x=\"a\"} -0.001\n"), "%s", t);
    free(t);
    metrics_destroy(&m);
}

Test(metrics, process_metrics_are_plausible)
{
    metrics *m = metrics_new();
    cr_assert_eq(metrics_add_process(m), 0);
    char *t = metrics_render(m, NULL);
    double rss = testhttp_sample(t, "process_resident_memory_bytes");
    double start = testhttp_sample(t, "process_start_time_seconds");
    double fds = testhttp_sample(t, "process_open_fds");
    double cpu = testhttp_sample(t, "process_cpu_seconds_total");
    cr_assert(rss > 1e5 && rss < 1e11, "%s", t);
    cr_assert(fabs(start - (double)time(NULL)) < 3600, "start %f\n%s", start, t);
    cr_assert(fds >= 3 && fds < 10000, "%s", t);
    cr_assert(cpu >= 0, "%s", t);
    cr_assert_not_null(strstr(t, "# TYPE process_cpu_seconds_total counter\n"));
    free(t);
    metrics_destroy(&m);
}

Test(metrics, http_serves_metrics_and_404s_elsewhere)
{
    metrics *m = metrics_new();
    metric *c = metrics_counter(m, "pcf_test_total", "A test counter.", "k");
    metric_add(c, 41, "v");
    pcf_error e;
    metrics_http *h = metrics_http_start(m, NULL, 0, &e);
    cr_assert_not_null(h, "%s", e.msg);
    int port = metrics_http_port(h);
    cr_assert_gt(port, 0);
    char url[128], ct[128], *out;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    cr_assert_eq(testhttp_get(url, &out, ct, sizeof ct), 200);
    cr_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_eq(testhttp_sample(out, "pcf_test_total{k=\"v\"}"), 41, "%s", out);
    free(out);
    metric_add(c, 1, "v");
    cr_assert_eq(testhttp_get(url, &out, NULL, 0), 200);
    cr_assert_eq(testhttp_sample(out, "pcf_test_total{k=\"v\"}"), 42, "%s", out);
    free(out);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    cr_assert_eq(testhttp_get(url, &out, NULL, 0), 404);
    free(out);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metricsx", port);
    cr_assert_eq(testhttp_get(url, &out, NULL, 0), 404);
    free(out);

    /* the port is taken now: a second server must fail, not steal it */
    metrics_http *h2 = metrics_http_start(m, "127.0.0.1", port, &e);
    cr_assert_null(h2);
    cr_assert_eq(e.code, PCF_ERR_NET);
    cr_assert_null(metrics_http_start(m, "localhost-ish", 0, &e));
    cr_assert_eq(e.code, PCF_ERR_INVALID);
    metrics_http_stop(&h);
    cr_assert_null(h);
    metrics_destroy(&m);
}

static void s_hook(void *ctx)
{
    metric **g = ctx;
    metric_add(*g, 1);
}

/* A render hook runs at every render, before the text is built (its update
 * shows in that render), and not once removed. */
Test(metrics, render_hooks_run_per_render_until_removed)
{
    metrics *m = metrics_new();
    metric *g = metrics_gauge(m, "scrapes", "Renders seen by the hook.", NULL);
    cr_assert_eq(metrics_on_render(m, s_hook, &g), 0);
    char *t = metrics_render(m, NULL);
    cr_assert_not_null(strstr(t, "\nscrapes 1\n"), "%s", t);
    free(t);
    t = metrics_render(m, NULL);
    cr_assert_not_null(strstr(t, "\nscrapes 2\n"), "%s", t);
    free(t);
    metrics_off_render(m, s_hook, &g);
    t = metrics_render(m, NULL);
    cr_assert_not_null(strstr(t, "\nscrapes 2\n"), "%s", t);
    free(t);
    for (int i = 0; i < METRICS_MAX_HOOKS; i++) cr_assert_eq(metrics_on_render(m, s_hook, &g), 0);
    cr_assert_eq(metrics_on_render(m, s_hook, &g), -1, "the table is full");
    metrics_destroy(&m);
}
