/*
 * bench_anm.c -- ANM emulation, random numbers and Monte-Carlo statistics:
 * the per-sample costs of the look-ahead engine besides the power flow.
 *
 * Prints `BENCH <name> <value> <unit>`, times in CPU time of the thread:
 *   anm_solve_us          mean anm_solve time on a demo-sized scheme (30
 *                         sites with 36 tranches, 40 constraints at 11/33/
 *                         132 kV plus a TANM boundary, dense sensitivities
 *                         of both signs), one thread, inputs varying per call
 *                         so that about a third of the calls curtail, us
 *   anm_solves_per_s      the same as a rate
 *   anm_steps_mean        mean ANM steps (constraints worked on) per call
 *   anm_curtail_share     share of calls that curtailed anything
 *   rng_normal_ns         one standard normal (Philox + inverse CDF), ns
 *   rng_mvn30_us          one 30-dimensional correlated Gaussian draw, us
 *   rng_normal_rows_ns    one standard normal drawn a block at a time
 *                         (rng_normal_rows, 256 samples x 30 draws), ns
 *   rng_mvn30_rows_us     one sample of the 30-dimensional Gaussian drawn a
 *                         block at a time (rng_mvn_draw_rows, 256 samples),
 *                         the way the study's sampling phase draws, us
 *   rng_*_rows_generic_*  the same two on the generic x86-64 code where
 *                         the CPU would use its AVX-512 code (rng_wide)
 *   mcstat_sp_ms          recording 10,000 samples x 30 sites and
 *                         summarising the 30 sites of one SP, ms
 *   mcstat_48sp_10k_ms    the same for a day-ahead run's 48 SPs, ms
 *   lhs_var_ratio_zone    variance of P(curtailed) estimates (n = 1,000
 *                         samples, 100 replications) with plain sampling
 *                         over that with Latin hypercube sampling, for the
 *                         scheme above with site outputs drawn from a
 *                         correlated Gaussian (mean half capacity, sd a
 *                         third, correlation 0.4), averaged over the sites
 *                         curtailed in 1-99 % of samples: > 1 means LHS
 *                         helps, by that factor in sample count
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "anm.h"
#include "mcstat.h"
#include "rng.h"

enum { NS = 30, NC = 40, NSAMP = 10000 };

/* CPU time of this thread: every figure here is single-threaded, and CPU
 * time does not move with other load on a shared machine (wall-clock
 * figures of whole runs are the engine benchmark's business). */
static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static anm *s_scheme(double *sens, double *base, double *lim, double *cap)
{
    anm_constraint_def c[NC];
    anm_tranche_def t[NS + 6];
    size_t nt = 0;
    rng_stream r;
    rng_init(&r, 1, 0, 0, RNG_STREAM_TEST);
    for (int k = 0; k < NC; k++) {
        c[k] = (anm_constraint_def){.voltage_kv = k < 20 ? 11 : (k < 32 ? 33 : 132),
                                    .kind = k == NC - 1 ? ANM_TANM : ANM_DANM};
        base[k] = -20 * rng_uniform(&r);
        lim[k] = 0;
        for (int s = 0; s < NS; s++) {
            /* each constraint sees a third of the sites strongly, the rest
             * weakly, some with negative sensitivity */
            double u = rng_uniform(&r);
            double v = (s % 3 == k % 3) ? 0.3 + 0.7 * u : 0.1 * (u - 0.3);
            sens[k * NS + s] = k == NC - 1 ? 1.0 : v;
        }
    }
    for (int s = 0; s < NS; s++) {
        cap[s] = 5 + 25 * rng_uniform(&r);
        if (s % 5 == 0) {   /* a firm part and a non-firm extension */
            t[nt++] = (anm_tranche_def){.site = (size_t)s, .capacity_mw = cap[s] / 2, .firm = 1};
            t[nt++] = (anm_tranche_def){.site = (size_t)s, .capacity_mw = cap[s] / 2,
                                        .lifo_position = 100 + s, .anm_mask = 3};
        } else {
            t[nt++] = (anm_tranche_def){.site = (size_t)s, .capacity_mw = cap[s],
                                        .lifo_position = 1 + s, .anm_mask = s % 4 ? 3 : 1};
        }
    }
    /* limits: 1.35 x the flow at half output, so that outputs drawn uniformly
     * between 0 and capacity exceed some constraint in about a third of the
     * calls */
    for (int k = 0; k < NC; k++) {
        double f = base[k];
        for (int s = 0; s < NS; s++)
            f += sens[k * NS + s] * cap[s] * 0.5;
        lim[k] = fmax(5, 1.35 * fabs(f));
    }
    anm_def d = {.nc = NC, .ns = NS, .nt = nt, .constraints = c, .tranches = t};
    anm *a = NULL;
    pcf_error err;
    if (anm_new(&d, &a, &err) != PCF_OK) {
        fprintf(stderr, "bench_anm: %s\n", err.msg);
        return NULL;
    }
    return a;
}

static int s_bench_anm(void)
{
    static double sens[NC * NS];
    double base[NC], lim[NC], cap[NS], avail[NS], flow[NC];
    anm *a = s_scheme(sens, base, lim, cap);
    if (!a)
        return 1;
    enum { CALLS = 100000 };
    size_t steps = 0, curtailed = 0;
    double t0 = s_now();
    for (uint32_t i = 0; i < CALLS; i++) {
        rng_stream r;
        rng_init(&r, 2, 1, i, RNG_STREAM_FORECAST);
        for (int s = 0; s < NS; s++)
            avail[s] = cap[s] * rng_uniform(&r);
        for (int k = 0; k < NC; k++) {
            flow[k] = base[k];
            for (int s = 0; s < NS; s++)
                flow[k] += sens[k * NS + s] * avail[s];
        }
        anm_input in = {.flow = flow, .limit_fwd = lim, .sens = sens, .avail = avail};
        anm_result res;
        pcf_error err;
        if (anm_solve(a, &in, &res, &err) != PCF_OK) {
            fprintf(stderr, "bench_anm: %s\n", err.msg);
            anm_destroy(&a);
            return 1;
        }
        steps += res.n_steps;
        curtailed += res.total_curt_mw > 0;
    }
    double dt = s_now() - t0;
    anm_destroy(&a);
    /* the input generation is included; measure it alone and subtract */
    double t1 = s_now(), sink = 0;
    for (uint32_t i = 0; i < CALLS; i++) {
        rng_stream r;
        rng_init(&r, 2, 1, i, RNG_STREAM_FORECAST);
        for (int s = 0; s < NS; s++)
            avail[s] = cap[s] * rng_uniform(&r);
        for (int k = 0; k < NC; k++) {
            flow[k] = base[k];
            for (int s = 0; s < NS; s++)
                flow[k] += sens[k * NS + s] * avail[s];
        }
        sink += flow[i % NC];
    }
    double gen = s_now() - t1;
    double per = (dt - gen) / CALLS;
    printf("# inputs generated in %.3f s of %.3f s (checksum %g)\n", gen, dt, sink);
    printf("BENCH anm_solve_us %.3f us\n", per * 1e6);
    printf("BENCH anm_solves_per_s %.0f 1/s\n", 1 / per);
    printf("BENCH anm_steps_mean %.3f steps\n", (double)steps / CALLS);
    printf("BENCH anm_curtail_share %.3f fraction\n", (double)curtailed / CALLS);
    return 0;
}

static int s_bench_rng(void)
{
    enum { N = 5000000, M = 100000 };
    rng_stream r;
    rng_init(&r, 3, 1, 1, RNG_STREAM_TEST);
    double t0 = s_now(), s = 0;
    for (int i = 0; i < N; i++)
        s += rng_normal(&r);
    double dt = s_now() - t0;
    printf("# sum of normals %g\n", s);
    printf("BENCH rng_normal_ns %.2f ns\n", dt / N * 1e9);
    static double cov[NS * NS];
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++)
            cov[i * NS + j] = (i == j ? 1.0 : 0.4) * 4.0;
    rng_mvn *m = NULL;
    pcf_error err;
    if (rng_mvn_new(NS, NULL, cov, &m, &err) != PCF_OK) {
        fprintf(stderr, "bench_anm: %s\n", err.msg);
        return 1;
    }
    double x[NS];
    t0 = s_now();
    for (uint32_t i = 0; i < M; i++) {
        rng_init(&r, 3, 2, i, RNG_STREAM_FORECAST);
        rng_mvn_draw(m, &r, x);
        s += x[i % NS];
    }
    dt = s_now() - t0;
    printf("BENCH rng_mvn30_us %.3f us\n", dt / M * 1e6);
    /* the block forms, as the study's phase 1 calls them; then on the
     * generic code if the first pass ran the AVX-512 code */
    enum { B = 256 };
    static double blk[NS * B];
    rng_span sp = { .seed = 3, .sp = 2, .stream = RNG_STREAM_FORECAST, .n = B };
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && !rng_wide(1)) break;
        const char *sfx = pass ? "_generic" : "";
        rng_wide(pass == 0);
        t0 = s_now();
        for (uint32_t i = 0; i < N / (NS * B); i++) {
            sp.sample0 = i * B;
            rng_normal_rows(&sp, 0, NS, blk, B);
            s += blk[i % (NS * B)];
        }
        dt = s_now() - t0;
        printf("BENCH rng_normal_rows%s_ns %.2f ns\n", sfx, dt / (N / (NS * B) * NS * B) * 1e9);
        t0 = s_now();
        for (uint32_t i = 0; i < M / B; i++) {
            sp.sample0 = i * B;
            rng_mvn_draw_rows(m, &sp, blk, B);
            s += blk[i % (NS * B)];
        }
        dt = s_now() - t0;
        printf("BENCH rng_mvn30_rows%s_us %.3f us\n", sfx, dt / (M / B * B) * 1e6);
    }
    rng_wide(1);
    rng_mvn_destroy(&m);
    printf("# sum %g\n", s);
    return 0;
}

static int s_bench_mcstat(void)
{
    mcstat *m = NULL;
    pcf_error err;
    double *dv = malloc(NS * NSAMP * sizeof *dv), *cv = malloc(NS * NSAMP * sizeof *cv);
    if (!dv || !cv || mcstat_new(NS, NSAMP, &m, &err) != PCF_OK) {
        fprintf(stderr, "bench_anm: mcstat_new failed\n");
        free(dv);
        free(cv);
        return 1;
    }
    /* deliverable with atoms at 0 and at the cap, like real sites */
    for (uint32_t i = 0; i < NSAMP; i++) {
        rng_stream r;
        rng_init(&r, 4, 0, i, RNG_STREAM_TEST);
        for (size_t s = 0; s < NS; s++) {
            double u = rng_uniform(&r), cap = 10 + (double)s;
            cv[s * NSAMP + i] = u < 0.2 ? 5 * u : 0;
            dv[s * NSAMP + i] = u < 0.1 ? 0 : u > 0.7 ? cap : cap * u;
        }
    }
    enum { SPS = 48 };
    double t0 = s_now(), first = 0, chk = 0;
    int rc = 0;
    for (int sp = 0; sp < SPS && !rc; sp++) {
        mcstat_reset(m);
        for (size_t i = 0; i < NSAMP && !rc; i++)
            for (size_t s = 0; s < NS && !rc; s++) {
                size_t k = s * NSAMP + (i + (size_t)sp) % NSAMP;
                rc = mcstat_record(m, s, i, dv[k], cv[k], &err) != PCF_OK;
            }
        for (size_t s = 0; s < NS && !rc; s++) {
            mcstat_pcf p;
            rc = mcstat_summarise(m, s, 0.5, &p, &err) != PCF_OK;
            chk += p.p50_mw;
        }
        if (sp == 0)
            first = s_now() - t0;
    }
    double dt = s_now() - t0;
    mcstat_destroy(&m);
    free(dv);
    free(cv);
    if (rc) {
        fprintf(stderr, "bench_anm: %s\n", err.msg);
        return 1;
    }
    printf("# checksum %g\n", chk);
    printf("BENCH mcstat_sp_ms %.3f ms\n", first * 1e3);
    printf("BENCH mcstat_48sp_10k_ms %.3f ms\n", dt * 1e3);
    return 0;
}

/* P(curtailed) per site from n samples of the scheme; lhs NULL: plain. */
static int s_pcurt(anm *a, const rng_mvn *mvn, rng_lhs *lhs, uint32_t rep, int n,
                   const double *sens, const double *base, const double *lim,
                   const double *cap, double *p)
{
    double x[NS], avail[NS], flow[NC];
    for (int s = 0; s < NS; s++)
        p[s] = 0;
    if (lhs)
        rng_lhs_shuffle(lhs, 77, rep);
    for (uint32_t i = 0; i < (uint32_t)n; i++) {
        rng_stream r;
        rng_init(&r, 77, rep, i, RNG_STREAM_FORECAST);
        if (lhs)
            rng_mvn_draw_lhs(mvn, lhs, 0, i, &r, x);
        else
            rng_mvn_draw(mvn, &r, x);
        for (int s = 0; s < NS; s++)
            avail[s] = fmin(fmax(x[s] * cap[s], 0), cap[s]);
        for (int k = 0; k < NC; k++) {
            flow[k] = base[k];
            for (int s = 0; s < NS; s++)
                flow[k] += sens[k * NS + s] * avail[s];
        }
        anm_input in = {.flow = flow, .limit_fwd = lim, .sens = sens, .avail = avail};
        anm_result res;
        pcf_error err;
        if (anm_solve(a, &in, &res, &err) != PCF_OK)
            return 1;
        for (int s = 0; s < NS; s++)
            p[s] += res.site_curt[s] > MCSTAT_CURTAILED_MW;
    }
    for (int s = 0; s < NS; s++)
        p[s] /= n;
    return 0;
}

static int s_bench_lhs(void)
{
    static double sens[NC * NS];
    double base[NC], lim[NC], cap[NS];
    anm *a = s_scheme(sens, base, lim, cap);
    enum { R = 100, N = 1000 };
    /* outputs in per unit of capacity: mean 0.5, sd 1/3, correlation 0.4 */
    static double cov[NS * NS];
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++)
            cov[i * NS + j] = (i == j ? 1.0 : 0.4) / 9;
    double mean[NS];
    for (int s = 0; s < NS; s++)
        mean[s] = 0.5;
    rng_mvn *mvn = NULL;
    rng_lhs *lhs = NULL;
    pcf_error err;
    if (!a || rng_mvn_new(NS, mean, cov, &mvn, &err) != PCF_OK ||
        rng_lhs_new(NS, N, &lhs, &err) != PCF_OK) {
        fprintf(stderr, "bench_anm: lhs setup failed\n");
        anm_destroy(&a);
        rng_mvn_destroy(&mvn);
        return 1;
    }
    double sp[NS] = {0}, spp[NS] = {0}, sl[NS] = {0}, sll[NS] = {0}, p[NS];
    int rc = 0;
    for (uint32_t rep = 0; rep < R && !rc; rep++) {
        rc = s_pcurt(a, mvn, NULL, rep, N, sens, base, lim, cap, p);
        for (int s = 0; s < NS; s++) {
            sp[s] += p[s];
            spp[s] += p[s] * p[s];
        }
        rc |= s_pcurt(a, mvn, lhs, rep, N, sens, base, lim, cap, p);
        for (int s = 0; s < NS; s++) {
            sl[s] += p[s];
            sll[s] += p[s] * p[s];
        }
    }
    double ratio = 0;
    int used = 0;
    for (int s = 0; s < NS && !rc; s++) {
        double mp = sp[s] / R, vp = spp[s] / R - mp * mp;
        double ml = sl[s] / R, vl = sll[s] / R - ml * ml;
        if (mp < 0.01 || mp > 0.99 || vl <= 0)
            continue;
        ratio += vp / vl;
        used++;
    }
    anm_destroy(&a);
    rng_mvn_destroy(&mvn);
    rng_lhs_destroy(&lhs);
    if (rc || !used) {
        fprintf(stderr, "bench_anm: lhs measurement failed\n");
        return 1;
    }
    printf("# %d sites curtailed in 1-99 %% of samples\n", used);
    printf("BENCH lhs_var_ratio_zone %.2f ratio\n", ratio / used);
    return 0;
}

int main(void)
{
    int rc = s_bench_anm();
    rc |= s_bench_lhs();
    rc |= s_bench_rng();
    rc |= s_bench_mcstat();
    return rc;
}
