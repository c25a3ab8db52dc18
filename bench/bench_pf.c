/*
 * bench_pf.c -- power-flow engine benchmarks (issue 3 targets).
 *
 * Prints `BENCH <name> <value> <unit>` lines, context lines start with '#':
 *   ac_first_<case>     pf_ac_new (Ybus, Jacobian pattern, KLU analysis) and
 *                       a full solve from the case's start, ms
 *   ac_repeat_<case>    one more solve after loads move by up to +-2%,
 *                       warm-started from the previous solution, reusing the
 *                       symbolic analysis and refactorising numerically, ms
 *   ac_repeat_chord_<case>  the same with pf_ac_opts.chord (factors of the
 *                       previous Jacobian reused while they converge fast)
 *   dc_solve_<case>     one DC solve with the factorised B, ms
 *   ptdf_<case>, lodf_<case>   building the dense matrices, ms
 *   n1_screen_case118_10k      base flows + N-1 screening of every
 *                       non-islanding outage for 10,000 injection samples
 *                       (fused kernel, 2 threads), ms, with the achieved
 *                       GFLOP/s; the dgemm-then-screen path is printed as #
 *   peak_rss            getrusage ru_maxrss, MB
 * Cases are read from tests/data/matpower/cases (run from the repo root).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "acpf.h"
#include "dcpf.h"
#include "mpcase.h"
#include "n1.h"
#include "pfnet.h"
#include "sens.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Process CPU time (all threads), to tell load from other processes apart
 * from our own cost when the machine is shared. */
static double s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

static double s_rand(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static int s_load(const char *name, mp_case **c, pf_net **n)
{
    char path[256];
    pcf_error err;
    snprintf(path, sizeof path, "tests/data/matpower/cases/%s.m", name);
    *c = mp_case_read(path, &err);
    if (!*c || pf_net_new(*c, n, &err) != PCF_OK) {
        fprintf(stderr, "bench_pf: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int s_bench_ac(const char *name, int reps)
{
    mp_case *c;
    pf_net *n;
    pcf_error err;
    if (s_load(name, &c, &n))
        return -1;
    size_t nb = n->nb;
    double *vm = malloc(nb * sizeof(double)), *va = malloc(nb * sizeof(double));
    double *p = malloc(nb * (size_t)reps * sizeof(double));
    double *q = malloc(nb * (size_t)reps * sizeof(double));
    double *p0 = malloc(nb * sizeof(double)), *q0 = malloc(nb * sizeof(double));
    pf_ac *ac = NULL;
    int rc = -1;
    double t0 = s_now();
    if (pf_ac_new(n, &ac, &err) != PCF_OK)
        goto out;
    pf_ac_start(ac, 0, vm, va);
    pf_ac_stats st;
    if (pf_ac_solve(ac, NULL, NULL, vm, va, NULL, &st, &err) != PCF_OK)
        goto out;
    double t1 = s_now();
    printf("# %s: %zu buses, %zu branches, Jacobian %zu x %zu with %zu nonzeros, %d iterations\n",
           name, nb, n->nl, pf_ac_jac_dim(ac), pf_ac_jac_dim(ac), pf_ac_jac_nnz(ac), st.iterations);
    printf("BENCH ac_first_%s %.4f ms\n", name, (t1 - t0) * 1e3);
    /* loads move by up to +-2% per solve; generation unchanged (slack takes it) */
    pf_net_injections(n, p0, q0);
    unsigned long long seed = 1;
    for (int s = 0; s < reps; s++)
        for (size_t i = 0; i < nb; i++) {
            double k = 0.04 * (s_rand(&seed) - 0.5);
            p[(size_t)s * nb + i] = p0[i] - k * n->pd[i];
            q[(size_t)s * nb + i] = q0[i] - k * n->qd[i];
        }
    long iters = 0;
    double c0 = s_cpu();
    t0 = s_now();
    for (int s = 0; s < reps; s++) {
        if (pf_ac_solve(ac, p + (size_t)s * nb, q + (size_t)s * nb, vm, va, NULL, &st, &err) != PCF_OK)
            goto out;
        iters += st.iterations;
    }
    t1 = s_now();
    double c1 = s_cpu();
    printf("# %s: %d repeated solves, %.2f Newton iterations each on average, %.4f ms CPU each\n",
           name, reps, (double)iters / reps, (c1 - c0) * 1e3 / reps);
    printf("BENCH ac_repeat_%s %.4f ms\n", name, (t1 - t0) * 1e3 / reps);
    /* the same sequence again with chord steps (pf_ac_opts.chord) */
    pf_ac_opts chord = PF_AC_OPTS_DEFAULT;
    chord.chord = 1;
    long facts = 0;
    iters = 0;
    c0 = s_cpu();
    t0 = s_now();
    for (int s = 0; s < reps; s++) {
        if (pf_ac_solve(ac, p + (size_t)s * nb, q + (size_t)s * nb, vm, va, &chord, &st, &err) !=
            PCF_OK)
            goto out;
        iters += st.iterations;
        facts += st.factorisations;
    }
    t1 = s_now();
    c1 = s_cpu();
    printf("# %s: chord: %.2f iterations and %.2f factorisations per solve, %.4f ms CPU each\n",
           name, (double)iters / reps, (double)facts / reps, (c1 - c0) * 1e3 / reps);
    printf("BENCH ac_repeat_chord_%s %.4f ms\n", name, (t1 - t0) * 1e3 / reps);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_pf: %s: %s\n", name, err.msg);
    pf_ac_destroy(&ac);
    free(vm); free(va); free(p); free(q); free(p0); free(q0);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
    return rc;
}

static int s_bench_dc(const char *name, int reps)
{
    mp_case *c;
    pf_net *n;
    pcf_error err;
    if (s_load(name, &c, &n))
        return -1;
    size_t nb = n->nb, nl = n->nl;
    pf_dc *dc = NULL;
    double *f = malloc(nl * sizeof(double)), *va = malloc(nb * sizeof(double));
    double *ptdf = malloc(nl * nb * sizeof(double)), *lodf = malloc(nl * nl * sizeof(double));
    int rc = -1;
    if (!f || !va || !ptdf || !lodf || pf_dc_new(n, &dc, &err) != PCF_OK)
        goto out;
    double t0 = s_now();
    for (int s = 0; s < reps; s++)
        if (pf_dc_solve(dc, NULL, NULL, va, f, NULL, &err) != PCF_OK)
            goto out;
    double t1 = s_now();
    printf("BENCH dc_solve_%s %.4f ms\n", name, (t1 - t0) * 1e3 / reps);
    t0 = s_now();
    if (pf_ptdf(dc, n, NULL, ptdf, &err) != PCF_OK)
        goto out;
    t1 = s_now();
    printf("BENCH ptdf_%s %.3f ms\n", name, (t1 - t0) * 1e3);
    t0 = s_now();
    if (pf_lodf(n, ptdf, NULL, lodf, &err) != PCF_OK)
        goto out;
    t1 = s_now();
    printf("BENCH lodf_%s %.3f ms\n", name, (t1 - t0) * 1e3);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_pf: %s: %s\n", name, err.msg);
    pf_dc_destroy(&dc);
    free(f); free(va); free(ptdf); free(lodf);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
    return rc;
}

static int s_bench_n1(void)
{
    mp_case *c;
    pf_net *n;
    pcf_error err;
    if (s_load("case118", &c, &n))
        return -1;
    size_t nb = n->nb, nl = n->nl, S = 10000;
    pf_dc *dc = NULL;
    double *ptdf = malloc(nl * nb * sizeof(double)), *lodf = malloc(nl * nl * sizeof(double));
    double *P = malloc(nb * S * sizeof(double)), *F = malloc(nl * S * sizeof(double));
    double *worst = malloc(nl * S * sizeof(double)), *p = malloc(nb * sizeof(double));
    int *out = malloc(nl * S * sizeof(int));
    int rc = -1;
    if (!ptdf || !lodf || !P || !F || !worst || !p || !out || pf_dc_new(n, &dc, &err) != PCF_OK ||
        pf_ptdf(dc, n, NULL, ptdf, &err) != PCF_OK || pf_lodf(n, ptdf, NULL, lodf, &err) != PCF_OK)
        goto out;
    size_t nout = 0;
    for (size_t j = 0; j < nl; j++)
        nout += !isnan(lodf[j]);
    pf_net_injections(n, p, NULL);
    unsigned long long seed = 3;
    for (size_t i = 0; i < nb; i++)
        for (size_t s = 0; s < S; s++)
            P[i * S + s] = p[i] * n->base_mva * (0.7 + 0.6 * s_rand(&seed));
    /* warm-up (thread pools, page faults), then the best of 5 runs */
    if (pf_flows_batch(ptdf, nl, nb, P, S, F, &err) != PCF_OK ||
        pf_n1_screen(lodf, nl, F, S, 2, worst, out, &err) != PCF_OK)
        goto out;
    double best = 1e30, bgemm = 0, bscreen = 0, fused = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = s_now();
        pf_flows_batch(ptdf, nl, nb, P, S, F, &err);
        double t1 = s_now();
        pf_n1_screen(lodf, nl, F, S, 2, worst, out, &err);
        double t2 = s_now();
        if (t2 - t0 < best) {
            best = t2 - t0;
            bgemm = t1 - t0;
            bscreen = t2 - t1;
        }
    }
    double fcpu = 0;
    for (int r = 0; r < 5; r++) {
        double c0 = s_cpu(), t0 = s_now();
        if (pf_n1_screen_inj(ptdf, nb, lodf, nl, P, S, 2, NULL, worst, out, &err) != PCF_OK)
            goto out;
        double t1 = s_now(), c1 = s_cpu();
        if (t1 - t0 < fused) {
            fused = t1 - t0;
            fcpu = c1 - c0;
        }
    }
    double load[1] = { 0 };
    if (getloadavg(load, 1) < 1)
        load[0] = -1;
    printf("# n1: fused path best of 5: %.2f ms wall, %.2f ms CPU over both threads "
           "(load average %.2f)\n", fused * 1e3, fcpu * 1e3, load[0]);
    double flops = pf_n1_flops(nl, nb, S);
    printf("# n1: case118, %zu branches, %zu non-islanding outages, %zu samples, %.3f GFLOP\n",
           nl, nout, S, flops * 1e-9);
    printf("# n1: separate path: dgemm flows %.2f ms (%.1f GFLOP/s) then screening %.2f ms "
           "(%.1f GFLOP/s), %.2f ms in all\n", bgemm * 1e3, 2.0 * nl * nb * S / bgemm * 1e-9,
           bscreen * 1e3, 2.0 * nl * nl * S / bscreen * 1e-9, best * 1e3);
    printf("BENCH n1_screen_case118_10k %.2f ms\n", fused * 1e3);
    printf("BENCH n1_screen_case118_10k_gflops %.2f GFLOP/s\n", flops / fused * 1e-9);
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "bench_pf: n1: %s\n", err.msg);
    pf_dc_destroy(&dc);
    free(ptdf); free(lodf); free(P); free(F); free(worst); free(p); free(out);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
    return rc;
}

int main(void)
{
    int bad = 0;
    bad |= s_bench_ac("case118", 2000);
    bad |= s_bench_ac("case300", 500);
    bad |= s_bench_ac("case2383wp", 100);
    bad |= s_bench_dc("case118", 2000);
    bad |= s_bench_dc("case2383wp", 200);
    bad |= s_bench_n1();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("BENCH peak_rss %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
    return bad ? 1 : 0;
}
