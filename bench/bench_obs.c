/*
 * bench_obs.c -- what observability costs the daemons' hot paths.
 *
 * Prints `BENCH <name> <value> <unit>` lines:
 *   metric_add_labelled    one counter update, 2 labels, 8 series, ns
 *   metric_observe         one histogram observation, 1 label, 13 buckets, ns
 *   metric_add_4_threads   the same counter update with 4 threads contending, ns per update
 *   render_200_series      metrics_render of 20 families x 10 series (+ process_*), us
 *   log_line               one pcf_log line with 6 fields to /dev/null, ns
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

static double s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *const s_src[8] = { "a", "b", "c", "d", "e", "f", "g", "h" };

static void *s_spin(void *arg)
{
    metric *c = arg;
    for (int i = 0; i < 250000; i++) metric_add(c, 1, s_src[i & 7], "scada");
    return NULL;
}

int main(void)
{
    metrics *m = metrics_new();
    metric *c = metrics_counter(m, "c_total", "c", "source,kind");
    static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    metric *h = metrics_histogram(m, "h_seconds", "h", b, 13, "source");
    const int n = 2000000;
    double t0 = s_now();
    for (int i = 0; i < n; i++) metric_add(c, 1, s_src[i & 7], "scada");
    printf("BENCH metric_add_labelled %.1f ns\n", (s_now() - t0) * 1e9 / n);
    t0 = s_now();
    for (int i = 0; i < n; i++) metric_observe(h, (double)(i % 1000) * 0.01, s_src[i & 7]);
    printf("BENCH metric_observe %.1f ns\n", (s_now() - t0) * 1e9 / n);
    pthread_t t[4];
    t0 = s_now();
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, s_spin, c);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("BENCH metric_add_4_threads %.1f ns\n", (s_now() - t0) * 1e9 / 1e6);

    metrics *r = metrics_new();
    metrics_add_process(r);
    for (int f = 0; f < 20; f++) {
        char name[32];
        snprintf(name, sizeof name, "fam%d_total", f);
        metric *x = metrics_counter(r, name, "A family.", "source");
        for (int s = 0; s < 10; s++) {
            char v[16];
            snprintf(v, sizeof v, "src%d", s);
            metric_add(x, s * 1.5, v);
        }
    }
    size_t len = 0;
    const int reps = 2000;
    t0 = s_now();
    for (int i = 0; i < reps; i++) free(metrics_render(r, &len));
    printf("BENCH render_200_series %.1f us\n", (s_now() - t0) * 1e6 / reps);
    printf("# rendered %zu bytes\n", len);

    int fd = open("/dev/null", O_WRONLY);
    pcf_log_init("bench");
    pcf_log_set_fd(fd);
    t0 = s_now();
    for (int i = 0; i < 200000; i++)
        pcf_log(PCF_LOG_INFO, "input loaded", "source", "historian", "kind", "scada", "input", "2026-07 part.csv",
                "rows", PCF_LOG_I(i), "quarantined", "0", "seconds", PCF_LOG_F(0.0123), NULL);
    printf("BENCH log_line %.1f ns\n", (s_now() - t0) * 1e9 / 200000);
    pcf_log_set_fd(2);
    close(fd);
    metrics_destroy(&r);
    metrics_destroy(&m);
    return 0;
}
