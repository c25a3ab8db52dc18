/*
 * test_rng.c -- Philox4x32-10 against Random123's published known-answer
 * vectors, stream addressing (same key and counter, same numbers; any
 * coordinate changed, different numbers), distribution checks of uniforms
 * and normals, and correlated Gaussians against their covariance.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

Test(rng_philox, random123_known_answers)
{
    static const uint32_t ctr[3][4] = {
        {0, 0, 0, 0},
        {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
        {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    static const uint32_t key[3][2] = {
        {0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
    static const uint32_t want[3][4] = {
        {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
        {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
        {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        rng_philox4x32_10(ctr[i], key[i], out);
        for (int j = 0; j < 4; j++)
            cr_assert_eq(out[j], want[i][j], "vector %d word %d: %08x != %08x", i, j, out[j],
                         want[i][j]);
    }
}

Test(rng_stream, layout_matches_the_documented_counter)
{
    rng_stream r;
    uint64_t seed = 0x0123456789abcdefULL;
    rng_init(&r, seed, 17, 4242, RNG_STREAM_FAULT);
    uint32_t key[2] = {0x89abcdefu, 0x01234567u};
    uint32_t ctr[4] = {0, 0, 4242, 17u | (1u << 16)}, blk[4];
    rng_philox4x32_10(ctr, key, blk);
    for (int j = 0; j < 4; j++)
        cr_assert_eq(rng_u32(&r), blk[j]);
    ctr[0] = 1;
    rng_philox4x32_10(ctr, key, blk);
    cr_assert_eq(rng_u32(&r), blk[0]);
}

Test(rng_stream, same_coordinates_same_numbers_any_change_differs)
{
    rng_stream a, b;
    rng_init(&a, 99, 3, 7, 0);
    rng_init(&b, 99, 3, 7, 0);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(rng_u64(&a), rng_u64(&b));
    /* seed, sp, sample, stream each change the sequence */
    rng_stream v[5];
    rng_init(&v[0], 99, 3, 7, 0);
    rng_init(&v[1], 100, 3, 7, 0);
    rng_init(&v[2], 99, 4, 7, 0);
    rng_init(&v[3], 99, 3, 8, 0);
    rng_init(&v[4], 99, 3, 7, 1);
    uint64_t first[5];
    for (int i = 0; i < 5; i++)
        first[i] = rng_u64(&v[i]);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            cr_assert_neq(first[i], first[j], "streams %d and %d collide", i, j);
    /* a high seed word matters too */
    rng_init(&v[0], 99, 3, 7, 0);
    rng_init(&v[1], 99 | (1ULL << 40), 3, 7, 0);
    cr_assert_neq(rng_u64(&v[0]), rng_u64(&v[1]));
}

Test(rng_uniform, open_interval_mean_variance_and_chi_square)
{
    rng_stream r;
    rng_init(&r, 2026, 1, 0, RNG_STREAM_TEST);
    enum { N = 200000, B = 50 };
    int hist[B] = {0};
    double s = 0, ss = 0;
    for (int i = 0; i < N; i++) {
        double u = rng_uniform(&r);
        cr_assert(u > 0 && u < 1);
        s += u;
        ss += u * u;
        hist[(int)(u * B)]++;
    }
    double mean = s / N, var = ss / N - mean * mean;
    /* SE of the mean is sqrt(1/12/N) = 6.5e-4 */
    cr_assert(fabs(mean - 0.5) < 4 * sqrt(1.0 / 12 / N), "mean %g", mean);
    cr_assert(fabs(var - 1.0 / 12) < 0.002, "var %g", var);
    double chi = 0, e = (double)N / B;
    for (int b = 0; b < B; b++)
        chi += (hist[b] - e) * (hist[b] - e) / e;
    /* chi-square with 49 dof: P(> 85) ~ 1e-3 */
    cr_assert(chi < 85, "chi-square %g", chi);
}

static double s_phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(rng_normal, moments_and_kolmogorov_smirnov)
{
    rng_stream r;
    rng_init(&r, 7, 48, 123, RNG_STREAM_TEST);
    enum { N = 20000 };
    double *x = malloc(N * sizeof *x), s = 0, ss = 0, s3 = 0, s4 = 0;
    for (int i = 0; i < N; i++) {
        x[i] = rng_normal(&r);
        cr_assert(isfinite(x[i]));
        s += x[i];
    }
    double mean = s / N;
    for (int i = 0; i < N; i++) {
        double d = x[i] - mean;
        ss += d * d;
        s3 += d * d * d;
        s4 += d * d * d * d;
    }
    double var = ss / (N - 1), skew = s3 / N / pow(var, 1.5), kurt = s4 / N / (var * var);
    cr_assert(fabs(mean) < 4 / sqrt(N), "mean %g", mean);
    cr_assert(fabs(var - 1) < 4 * sqrt(2.0 / N), "var %g", var);
    cr_assert(fabs(skew) < 4 * sqrt(6.0 / N), "skew %g", skew);
    cr_assert(fabs(kurt - 3) < 4 * sqrt(24.0 / N), "kurtosis %g", kurt);
    /* Kolmogorov-Smirnov against Phi: the 0.1 % critical value is
     * 1.95 / sqrt(N) */
    qsort(x, N, sizeof *x, s_cmp);
    double dmax = 0;
    for (int i = 0; i < N; i++) {
        double f = s_phi(x[i]);
        double d1 = fabs(f - (double)i / N), d2 = fabs((double)(i + 1) / N - f);
        dmax = fmax(dmax, fmax(d1, d2));
    }
    cr_assert(dmax < 1.95 / sqrt(N), "KS distance %g", dmax);
    free(x);
}

Test(rng_normal, one_uniform_per_normal_and_tails)
{
    rng_stream a, b;
    rng_init(&a, 5, 1, 1, 0);
    rng_init(&b, 5, 1, 1, 0);
    for (int i = 0; i < 100; i++) {
        double z = rng_normal(&a), u = rng_uniform(&b);
        cr_assert_float_eq(s_phi(z), u, 1e-14, "draw %d: Phi(%g) != %g", i, z, u);
    }
}

Test(rng_mvn, covariance_of_correlated_draws)
{
    enum { D = 3, N = 40000 };
    double mean[D] = {10, -2, 0.5};
    double cov[D * D] = {4.0, 1.2, -0.2,
                         1.2, 1.0, 0.3,
                         -0.2, 0.3, 0.25};
    rng_mvn *m = NULL;
    pcf_error err;
    cr_assert_eq(rng_mvn_new(D, mean, cov, &m, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(rng_mvn_dim(m), D);
    /* L L' reproduces cov */
    const double *l = rng_mvn_chol(m);
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double s = 0;
            for (int k = 0; k < D; k++)
                s += l[i * D + k] * l[j * D + k];
            cr_assert_float_eq(s, cov[i * D + j], 1e-12);
            if (j > i)
                cr_assert_eq(l[i * D + j], 0.0);
        }
    double sum[D] = {0}, sxy[D][D] = {{0}};
    double x[D];
    for (int k = 0; k < N; k++) {
        rng_stream r;
        rng_init(&r, 11, 20, (uint32_t)k, RNG_STREAM_FORECAST);
        rng_mvn_draw(m, &r, x);
        for (int i = 0; i < D; i++) {
            sum[i] += x[i];
            for (int j = 0; j < D; j++)
                sxy[i][j] += (x[i] - mean[i]) * (x[j] - mean[j]);
        }
    }
    for (int i = 0; i < D; i++) {
        double se = sqrt(cov[i * D + i] / N);
        cr_assert(fabs(sum[i] / N - mean[i]) < 4 * se, "mean %d: %g", i, sum[i] / N);
        for (int j = 0; j < D; j++) {
            /* SE of a sample covariance: sqrt((s_ii s_jj + s_ij^2) / N) */
            double c = sxy[i][j] / N, sij = cov[i * D + j];
            double sec = sqrt((cov[i * D + i] * cov[j * D + j] + sij * sij) / N);
            cr_assert(fabs(c - sij) < 4 * sec, "cov(%d,%d) = %g, want %g", i, j, c, sij);
        }
    }
    rng_mvn_destroy(&m);
    cr_assert_null(m);
    rng_mvn_destroy(&m);
}

Test(rng_mvn, hostile_covariances_are_refused)
{
    rng_mvn *m = NULL;
    pcf_error err;
    double singular[4] = {1, 1, 1, 1};
    cr_assert_eq(rng_mvn_new(2, NULL, singular, &m, &err), PCF_ERR_SINGULAR);
    cr_assert_null(m);
    cr_assert(strstr(err.msg, "pivot 1"), "%s", err.msg);
    double indefinite[4] = {1, 2, 2, 1};
    cr_assert_eq(rng_mvn_new(2, NULL, indefinite, &m, &err), PCF_ERR_SINGULAR);
    double asym[4] = {1, 0.5, 0.2, 1};
    cr_assert_eq(rng_mvn_new(2, NULL, asym, &m, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "symmetric"), "%s", err.msg);
    double nan[4] = {1, NAN, NAN, 1};
    cr_assert_eq(rng_mvn_new(2, NULL, nan, &m, &err), PCF_ERR_INVALID);
    double ok[1] = {1}, badmean[1] = {INFINITY};
    cr_assert_eq(rng_mvn_new(1, badmean, ok, &m, &err), PCF_ERR_INVALID);
    cr_assert_eq(rng_mvn_new(0, NULL, ok, &m, &err), PCF_ERR_LIMIT);
    cr_assert_eq(rng_mvn_new(RNG_MVN_MAX + 1, NULL, ok, &m, &err), PCF_ERR_LIMIT);
    double neg[1] = {-1};
    cr_assert_eq(rng_mvn_new(1, NULL, neg, &m, &err), PCF_ERR_SINGULAR);
    cr_assert_null(m);
}

Test(rng_mvn, zero_mean_draw_is_l_times_the_normals)
{
    double cov[4] = {9, 3, 3, 5};   /* L = [3 0; 1 2] */
    rng_mvn *m = NULL;
    pcf_error err;
    cr_assert_eq(rng_mvn_new(2, NULL, cov, &m, &err), PCF_OK);
    rng_stream a, b;
    rng_init(&a, 1, 2, 3, 4);
    rng_init(&b, 1, 2, 3, 4);
    double x[2];
    rng_mvn_draw(m, &a, x);
    double z0 = rng_normal(&b), z1 = rng_normal(&b);
    cr_assert_float_eq(x[0], 3 * z0, 1e-14);
    cr_assert_float_eq(x[1], z0 + 2 * z1, 1e-14);
    rng_mvn_destroy(&m);
}

Test(rng_lhs, every_stratum_once_per_dimension_and_reproducible)
{
    enum { D = 4, N = 997 };
    rng_lhs *l = NULL, *l2 = NULL;
    pcf_error err;
    cr_assert_eq(rng_lhs_new(D, N, &l, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(rng_lhs_new(D, N, &l2, &err), PCF_OK);
    rng_lhs_shuffle(l, 123, 7);
    rng_lhs_shuffle(l2, 123, 7);
    for (size_t d = 0; d < D; d++) {
        unsigned char seen[N] = {0};
        int moved = 0;
        for (uint32_t i = 0; i < N; i++) {
            rng_stream r;
            rng_init(&r, 123, 7, i, RNG_STREAM_FORECAST);
            uint32_t k = rng_lhs_stratum(l, d, i);
            cr_assert_lt(k, N);
            cr_assert_eq(seen[k], 0, "dim %zu: stratum %u twice", d, k);
            seen[k] = 1;
            moved += k != i;
            cr_assert_eq(k, rng_lhs_stratum(l2, d, i));
            double u = rng_lhs_uniform(l, d, i, &r);
            cr_assert(u > 0 && u < 1);
            cr_assert_eq((uint32_t)(u * N), k, "dim %zu sample %u: u %g not in stratum %u", d, i,
                         u, k);
        }
        cr_assert_gt(moved, N / 2, "dim %zu is hardly shuffled", d);
    }
    /* dimensions differ from each other, SPs differ from each other */
    int same = 0;
    for (uint32_t i = 0; i < N; i++)
        same += rng_lhs_stratum(l, 0, i) == rng_lhs_stratum(l, 1, i);
    cr_assert_lt(same, 10);
    rng_lhs_shuffle(l2, 123, 8);
    same = 0;
    for (uint32_t i = 0; i < N; i++)
        same += rng_lhs_stratum(l, 0, i) == rng_lhs_stratum(l2, 0, i);
    cr_assert_lt(same, 10);
    rng_lhs_destroy(&l);
    rng_lhs_destroy(&l2);
    cr_assert_null(l);
    cr_assert_eq(rng_lhs_new(0, N, &l, &err), PCF_ERR_LIMIT);
    cr_assert_eq(rng_lhs_new(RNG_LHS_MAX_CELLS, 2, &l, &err), PCF_ERR_LIMIT);
}

Test(rng_lhs, reduces_the_variance_of_an_exceedance_probability)
{
    /* P(X > 1) for X ~ N(0, 1) from n = 500 samples, 200 replications:
     * plain sampling has variance p (1 - p) / n; Latin hypercube strata
     * leave only the stratum holding the threshold uncertain. */
    enum { R = 200, N = 500 };
    double p = 1 - s_phi(1.0), sp = 0, spp = 0, sl = 0, sll = 0;
    rng_lhs *l = NULL;
    pcf_error err;
    cr_assert_eq(rng_lhs_new(1, N, &l, &err), PCF_OK);
    for (uint32_t rep = 0; rep < R; rep++) {
        rng_lhs_shuffle(l, 99, rep);
        int kp = 0, kl = 0;
        for (uint32_t i = 0; i < N; i++) {
            rng_stream r;
            rng_init(&r, 99, rep, i, RNG_STREAM_FORECAST);
            kp += rng_normal(&r) > 1;
            rng_init(&r, 99, rep, i, RNG_STREAM_FORECAST);
            kl += rng_lhs_normal(l, 0, i, &r) > 1;
        }
        double ep = (double)kp / N, el = (double)kl / N;
        sp += ep;
        spp += ep * ep;
        sl += el;
        sll += el * el;
    }
    double vp = spp / R - (sp / R) * (sp / R), vl = sll / R - (sl / R) * (sl / R);
    cr_assert(fabs(sl / R - p) < 3 * sqrt(vl / R) + 1e-4, "LHS mean %g, p %g", sl / R, p);
    cr_assert(fabs(sp / R - p) < 3 * sqrt(vp / R), "plain mean %g, p %g", sp / R, p);
    cr_assert(vp / vl > 20, "variance ratio %g (plain %g, LHS %g)", vp / vl, vp, vl);
    rng_lhs_destroy(&l);
}

Test(rng_lhs, correlated_draws_keep_the_covariance)
{
    enum { D = 2, N = 20000 };
    double mean[D] = {5, -1}, cov[D * D] = {4, -1.2, -1.2, 1};
    rng_mvn *m = NULL;
    rng_lhs *l = NULL;
    pcf_error err;
    cr_assert_eq(rng_mvn_new(D, mean, cov, &m, &err), PCF_OK);
    cr_assert_eq(rng_lhs_new(D, N, &l, &err), PCF_OK);
    rng_lhs_shuffle(l, 5, 5);
    double s[D] = {0}, c[D][D] = {{0}}, x[D];
    for (uint32_t i = 0; i < N; i++) {
        rng_stream r;
        rng_init(&r, 5, 5, i, RNG_STREAM_FORECAST);
        rng_mvn_draw_lhs(m, l, 0, i, &r, x);
        for (int a = 0; a < D; a++) {
            s[a] += x[a];
            for (int b = 0; b < D; b++)
                c[a][b] += (x[a] - mean[a]) * (x[b] - mean[b]);
        }
    }
    for (int a = 0; a < D; a++) {
        /* stratified: the mean is far more precise than sqrt(var / N) */
        cr_assert(fabs(s[a] / N - mean[a]) < 0.2 * sqrt(cov[a * D + a] / N), "mean %d: %g", a,
                  s[a] / N);
        for (int b = 0; b < D; b++) {
            double sab = cov[a * D + b];
            double se = sqrt((cov[a * D + a] * cov[b * D + b] + sab * sab) / N);
            cr_assert(fabs(c[a][b] / N - sab) < 4 * se, "cov(%d,%d) %g", a, b, c[a][b] / N);
        }
    }
    rng_lhs_destroy(&l);
    rng_mvn_destroy(&m);
}

/* ---- rng_ppnd and the block draws: the same numbers as before ------------- */

/* rng_ppnd must be GSL's gsl_cdf_ugaussian_Pinv bit for bit: the figures of
 * every run (and the tests that hold them) depend on it. */
Test(rng_ppnd, bit_for_bit_gsl_in_all_three_ranges)
{
    rng_stream r;
    rng_init(&r, 31337, 2, 9, RNG_STREAM_TEST);
    int central = 0, mid = 0, tail = 0;
    for (int i = 0; i < 400000; i++) {
        /* every third from the far tails: u^8 reaches r > 5 (p < 1.4e-11) */
        double u = rng_uniform(&r);
        if (i % 3 == 1) u = pow(u, 8);
        if (i % 3 == 2) u = 1 - pow(u, 4);
        double z = rng_ppnd(u), g = gsl_cdf_ugaussian_Pinv(u);
        cr_assert(memcmp(&z, &g, sizeof z) == 0, "p %.17g: %.17g != GSL %.17g", u, z, g);
        double q = fabs(u - 0.5);
        central += q <= 0.425;
        mid += q > 0.425 && sqrt(-log(fmin(u, 1 - u))) <= 5;
        tail += sqrt(-log(fmin(u, 1 - u))) > 5;
    }
    cr_assert(central > 1000 && mid > 1000 && tail > 1000, "%d %d %d", central, mid, tail);
    /* the edges of the ranges and of (0, 1) */
    const double edge[] = { 0.075, nextafter(0.075, 0), nextafter(0.075, 1), 0.925, nextafter(0.925, 1),
                            nextafter(0.925, 0), 0.5, exp(-25), nextafter(exp(-25), 0), nextafter(exp(-25), 1),
                            0x1p-53, 1 - 0x1p-53, 0x1p-1074, DBL_MIN, 1e-300 };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        double z = rng_ppnd(edge[i]), g = gsl_cdf_ugaussian_Pinv(edge[i]);
        cr_assert(memcmp(&z, &g, sizeof z) == 0, "p %.17g: %.17g != GSL %.17g", edge[i], z, g);
    }
    cr_assert(isinf(rng_ppnd(0)) && rng_ppnd(0) < 0);
    cr_assert(isinf(rng_ppnd(1)) && rng_ppnd(1) > 0);
    cr_assert(isnan(rng_ppnd(NAN)));
}

Test(rng_ppnd, vector_form_equals_the_scalar_for_any_length)
{
    enum { N = 200 };
    double p[N], x[N];
    rng_stream r;
    rng_init(&r, 8, 8, 8, RNG_STREAM_TEST);
    for (int i = 0; i < N; i++) p[i] = rng_uniform(&r);
    p[3] = 0;
    p[70] = 1;
    p[130] = NAN;
    p[131] = 1e-300;
    const size_t len[] = { 0, 1, 63, 64, 65, 128, 131, N };
    /* the generic code and, where the CPU has it, the AVX-512 code */
    for (int wide = 0; wide < 2; wide++) {
        int used = rng_wide(wide);
        cr_assert(used == 0 || wide);
        for (size_t l = 0; l < sizeof len / sizeof len[0]; l++) {
            memcpy(x, p, sizeof x);
            rng_ppnd_vec(x, len[l]);
            for (size_t i = 0; i < N; i++) {
                double want = i < len[l] ? rng_ppnd(p[i]) : p[i];
                cr_assert(memcmp(&x[i], &want, sizeof want) == 0, "wide %d len %zu i %zu: %.17g != %.17g", used,
                          len[l], i, x[i], want);
            }
        }
    }
}

/* Draw t of sample k by the one-stream path. */
static double s_draw(const rng_span *sp, uint32_t sample, size_t t, int normal)
{
    rng_stream r;
    rng_init(&r, sp->seed, sp->sp, sample, sp->stream);
    double v = 0;
    for (size_t i = 0; i <= t; i++) v = normal ? rng_normal(&r) : rng_uniform(&r);
    return v;
}

Test(rng_rows, each_number_is_the_samples_own_stream)
{
    /* odd and even first draws, counts that do not fill the lanes, a row
     * stride wider than the block, samples that wrap past 2^32 - 1; the
     * generic code and, where the CPU has it, the AVX-512 code */
    const uint32_t first[] = { 0, 5, UINT32_MAX - 20 };
    const size_t count[] = { 1, 17, 40 };
    const size_t d0[] = { 0, 1, 34, 35 }, nd[] = { 1, 2, 3 };
    enum { LD = 50 };
    double out[3 * LD];
    for (int wide = 0; wide < 2; wide++) {
        rng_wide(wide);
        for (size_t a = 0; a < 3; a++)
            for (size_t c = 0; c < 3; c++)
                for (size_t b = 0; b < 4; b++)
                    for (size_t e = 0; e < 3; e++)
                        for (int normal = 0; normal < 2; normal++) {
                            rng_span sp = { .seed = 0xfeedfacecafe0001ULL, .sp = 47, .sample0 = first[a],
                                            .stream = RNG_STREAM_FAULT, .n = count[c] };
                            for (size_t i = 0; i < 3 * LD; i++) out[i] = -7;
                            if (normal) rng_normal_rows(&sp, d0[b], nd[e], out, LD);
                            else rng_uniform_rows(&sp, d0[b], nd[e], out, LD);
                            for (size_t t = 0; t < 3; t++)
                                for (size_t k = 0; k < LD; k++) {
                                    double want = t < nd[e] && k < count[c]
                                                      ? s_draw(&sp, first[a] + (uint32_t)k, d0[b] + t, normal)
                                                      : -7;
                                    cr_assert(memcmp(&out[t * LD + k], &want, sizeof want) == 0,
                                              "wide %d sample0 %u n %zu draw %zu+%zu k %zu normal %d: %.17g != %.17g",
                                              wide, first[a], count[c], d0[b], t, k, normal, out[t * LD + k], want);
                                }
                        }
    }
}

Test(rng_rows, mvn_rows_equal_per_sample_draws_with_zero_blocks)
{
    /* two independent groups (a block-diagonal factor whose rows start
     * after zeros) and a sample count that is not a multiple of the chunk */
    enum { D = 5, N = 150, LD = 160 };
    double cov[D * D] = { 4, 1, 0, 0, 0,
                          1, 2, 0, 0, 0,
                          0, 0, 1, 0.5, 0.2,
                          0, 0, 0.5, 3, -0.4,
                          0, 0, 0.2, -0.4, 2 };
    double mean[D] = { 1, -2, 3, 0, 0.5 };
    rng_mvn *m = NULL;
    pcf_error err;
    cr_assert_eq(rng_mvn_new(D, mean, cov, &m, &err), PCF_OK, "%s", err.msg);
    static double x[D * LD];
    rng_span sp = { .seed = 77, .sp = 3, .sample0 = 1000, .stream = RNG_STREAM_FORECAST, .n = N };
    for (int wide = 1; wide >= 0; wide--) {
        rng_wide(wide);
        rng_mvn_draw_rows(m, &sp, x, LD);
        for (uint32_t k = 0; k < N; k++) {
            rng_stream r;
            rng_init(&r, 77, 3, 1000 + k, RNG_STREAM_FORECAST);
            double want[D];
            rng_mvn_draw(m, &r, want);
            for (size_t i = 0; i < D; i++)
                cr_assert(memcmp(&x[i * LD + k], &want[i], sizeof(double)) == 0,
                          "wide %d sample %u dim %zu: %.17g != %.17g", wide, k, i, x[i * LD + k], want[i]);
        }
    }
    /* and the one-sample path skips no nonzero: x - mean = L z exactly */
    rng_stream r;
    rng_init(&r, 77, 3, 1000, RNG_STREAM_FORECAST);
    double z[D], w[D];
    for (size_t i = 0; i < D; i++) z[i] = rng_normal(&r);
    const double *l = rng_mvn_chol(m);
    for (size_t i = 0; i < D; i++) {
        double s = 0;
        for (size_t k = 0; k <= i; k++) s += l[i * D + k] * z[k];
        w[i] = mean[i] + s;
        cr_assert(memcmp(&x[i * LD], &w[i], sizeof(double)) == 0, "dim %zu: %.17g != %.17g", i, x[i * LD], w[i]);
    }
    rng_mvn_destroy(&m);
}
