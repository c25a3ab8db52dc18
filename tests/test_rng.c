/*
 * test_rng.c -- Philox4x32-10 against Random123's published known-answer
 * vectors, stream addressing (same key and counter, same numbers; any
 * coordinate changed, different numbers), distribution checks of uniforms
 * and normals, and correlated Gaussians against their covariance.
 */
#include <criterion/criterion.h>
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
