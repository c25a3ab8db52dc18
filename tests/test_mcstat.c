/*
 * test_mcstat.c -- the Monte-Carlo statistics: every estimator on a small
 * data set worked out by hand, the quantile SE's coverage of the true
 * quantile at about the nominal rate, recording and merging rules, hostile
 * values.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mcstat.h"
#include "rng.h"

static mcstat *s_new(size_t items, size_t n)
{
    mcstat *m = NULL;
    pcf_error err;
    cr_assert_eq(mcstat_new(items, n, &m, &err), PCF_OK, "%s", err.msg);
    return m;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

Test(mcstat_estimators, twenty_samples_by_hand)
{
    /* deliverable = 10, 11, ..., 29 MW recorded in a scrambled order;
     * curtailed 4 MW in samples 0..4, 0 elsewhere */
    mcstat *m = s_new(2, 20);
    pcf_error err;
    for (size_t k = 0; k < 20; k++) {
        size_t i = (k * 7) % 20;   /* 7 is coprime with 20: a permutation */
        cr_assert_eq(mcstat_record(m, 1, i, 10.0 + (double)i, i < 5 ? 4.0 : 0.0, &err),
                     PCF_OK, "%s", err.msg);
        cr_assert_eq(mcstat_record(m, 0, i, 1, 0, &err), PCF_OK);
    }
    mcstat_pcf s;
    cr_assert_eq(mcstat_summarise(m, 1, 0.5, &s, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(s.n, 20);
    cr_assert_float_eq(s.p_curtailed, 0.25, 1e-15);
    cr_assert_float_eq(s.p_curtailed_se, sqrt(0.25 * 0.75 / 20), 1e-15);
    /* mean curtailed 1 MW, sd sqrt(20/19 * 3) */
    cr_assert_float_eq(s.curtailed_mwh, 0.5, 1e-15);
    double sd = sqrt((5 * 9.0 + 15 * 1.0) / 19);
    cr_assert_float_eq(s.curtailed_mwh_se, 0.5 * sd / sqrt(20), 1e-15);
    cr_assert_float_eq(s.deliverable_mean_mw, 19.5, 1e-12);
    cr_assert_float_eq(s.deliverable_mean_se, sqrt(35.0 / 20), 1e-12);
    /* q_p = x_(ceil(20 p)): P10 = x_(2) = 11, P50 = x_(10) = 19,
     * P90 = x_(18) = 27, P5 = x_(1) = 10 */
    cr_assert_eq(s.p10_mw, 11.0);
    cr_assert_eq(s.p50_mw, 19.0);
    cr_assert_eq(s.p90_mw, 27.0);
    cr_assert_eq(s.firm95_mw, 10.0);
    /* P50 ranks: 10 -/+ 1.96 sqrt(5) = 5.617, 14.383 -> 5 and 15:
     * (24 - 14) / (2 z) */
    cr_assert_float_eq(s.p50_se, 10 / (2 * MCSTAT_Z95), 1e-15);
    /* P10 ranks: 2 -/+ 1.96 sqrt(1.8) = -0.63, 4.63 -> 1 (clamped) and 5 */
    cr_assert_float_eq(s.p10_se, 4 / (2 * MCSTAT_Z95), 1e-15);
    /* P90: 18 -/+ 2.63 -> 15 and 21 (clamped to 20): (29 - 24) / (2 z) */
    cr_assert_float_eq(s.p90_se, 5 / (2 * MCSTAT_Z95), 1e-15);
    /* Wilson upper bound for 5 of 20 */
    double z = MCSTAT_Z95, n = 20, p = 0.25;
    double hi = (p + z * z / (2 * n) + z * sqrt(p * (1 - p) / n + z * z / (4 * n * n))) /
                (1 + z * z / n);
    cr_assert_float_eq(s.p_curtailed_hi95, hi, 1e-15);
    /* the re-entrant form with the caller's scratch: the same bits */
    double scratch[40];
    mcstat_pcf s2;
    cr_assert_eq(mcstat_summarise_r(m, 1, 0.5, scratch, &s2, &err), PCF_OK);
    cr_assert_eq(memcmp(&s, &s2, sizeof s), 0);
    /* the constant item: no curtailment, zero spread */
    cr_assert_eq(mcstat_summarise(m, 0, 0.5, &s, &err), PCF_OK);
    cr_assert_eq(s.p_curtailed, 0.0);
    cr_assert_eq(s.p_curtailed_se, 0.0);
    cr_assert(s.p_curtailed_hi95 > 0.1 && s.p_curtailed_hi95 < 0.2, "%g", s.p_curtailed_hi95);
    cr_assert_eq(s.firm95_mw, 1.0);
    cr_assert_eq(s.firm95_se, 0.0);
    cr_assert_eq(mcstat_items(m), 2);
    cr_assert_eq(mcstat_samples(m), 20);
    mcstat_destroy(&m);
    cr_assert_null(m);
    mcstat_destroy(&m);
}

Test(mcstat_estimators, tiny_curtailment_below_threshold_does_not_count)
{
    mcstat *m = s_new(1, 20);
    pcf_error err;
    for (size_t i = 0; i < 20; i++)
        cr_assert_eq(mcstat_record(m, 0, i, 5, i == 3 ? 1e-7 : (i == 4 ? 2e-6 : 0), &err),
                     PCF_OK);
    mcstat_pcf s;
    cr_assert_eq(mcstat_summarise(m, 0, 0.5, &s, &err), PCF_OK);
    cr_assert_float_eq(s.p_curtailed, 0.05, 1e-15);
    mcstat_destroy(&m);
}

Test(mcstat_quantile, se_covers_the_true_quantile_at_the_nominal_rate)
{
    /* 600 replications of n = 1000 exponential(1) samples (skewed, like a
     * deliverable distribution near a cap): the interval q +- 1.96 SE
     * should hold the true quantile -ln(1 - p) about 95 % of the time.
     * With 600 replications the coverage estimate has SE 0.9 %. */
    enum { R = 600, N = 1000 };
    static const double ps[4] = {0.05, 0.10, 0.50, 0.90};
    double *x = malloc(N * sizeof *x);
    int cover[4] = {0};
    double se_sum[4] = {0}, err_sq[4] = {0};
    for (uint32_t rep = 0; rep < R; rep++) {
        rng_stream r;
        rng_init(&r, 314159, 9, rep, RNG_STREAM_TEST);
        for (int i = 0; i < N; i++)
            x[i] = -log(rng_uniform(&r));
        qsort(x, N, sizeof *x, s_cmp);
        for (int k = 0; k < 4; k++) {
            double se, q = mcstat_quantile(x, N, ps[k], &se), truth = -log(1 - ps[k]);
            cover[k] += fabs(q - truth) <= MCSTAT_Z95 * se;
            se_sum[k] += se;
            err_sq[k] += (q - truth) * (q - truth);
        }
    }
    free(x);
    for (int k = 0; k < 4; k++) {
        double c = (double)cover[k] / R;
        cr_assert(c > 0.915 && c < 0.985, "p = %g: coverage %g", ps[k], c);
        /* the mean SE matches the actual RMS error within 15 % */
        double rmse = sqrt(err_sq[k] / R), mse = se_sum[k] / R;
        cr_assert(fabs(mse / rmse - 1) < 0.15, "p = %g: mean SE %g vs RMS error %g", ps[k],
                  mse, rmse);
    }
}

Test(mcstat_quantile, asymptotic_se_of_the_normal_median)
{
    /* SE(median) -> sqrt(pi / 2 / n) for N(0, 1) */
    enum { N = 40000 };
    double *x = malloc(N * sizeof *x);
    rng_stream r;
    rng_init(&r, 1, 1, 1, RNG_STREAM_TEST);
    for (int i = 0; i < N; i++)
        x[i] = rng_normal(&r);
    qsort(x, N, sizeof *x, s_cmp);
    double se, q = mcstat_quantile(x, N, 0.5, &se);
    double want = sqrt(M_PI / 2 / N);
    cr_assert(fabs(se / want - 1) < 0.1, "SE %g, asymptotic %g", se, want);
    cr_assert(fabs(q) < 4 * want, "median %g", q);
    free(x);
}

Test(mcstat_record, merge_and_recording_rules)
{
    mcstat *a = s_new(2, 30), *b = s_new(2, 30), *c = s_new(3, 30);
    pcf_error err;
    for (size_t i = 0; i < 30; i++) {
        mcstat *m = i % 3 ? a : b;
        for (size_t k = 0; k < 2; k++)
            cr_assert_eq(mcstat_record(m, k, i, (double)(i * (k + 1)), 0, &err), PCF_OK);
    }
    mcstat_pcf s;
    /* a alone is incomplete: the missing sample is named */
    cr_assert_eq(mcstat_summarise(a, 0, 0.5, &s, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "sample 0 not recorded"), "%s", err.msg);
    cr_assert_eq(mcstat_merge(a, c, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_merge(a, b, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(mcstat_summarise(a, 1, 0.5, &s, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(s.deliverable_mean_mw, 29.0, 1e-12);
    /* merging again would record slots twice */
    cr_assert_eq(mcstat_merge(a, b, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "recorded in both"), "%s", err.msg);
    cr_assert_eq(mcstat_record(a, 0, 4, 1, 0, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    mcstat_reset(a);
    cr_assert_eq(mcstat_record(a, 0, 4, 1, 0, &err), PCF_OK);
    mcstat_destroy(&a);
    mcstat_destroy(&b);
    mcstat_destroy(&c);
}

Test(mcstat_estimators, quantiles_by_selection_match_a_comparison_sort)
{
    /* values with atoms (0 and a cap), tiny and huge magnitudes and
     * subnormals: every summary quantile and SE must equal those of the
     * qsorted values */
    enum { N = 5000 };
    mcstat *m = s_new(1, N);
    double *x = malloc(N * sizeof *x), *scratch = malloc(2 * N * sizeof *x);
    rng_stream r;
    rng_init(&r, 77, 1, 1, RNG_STREAM_TEST);
    pcf_error err;
    for (int i = 0; i < N; i++) {
        double u = rng_uniform(&r);
        x[i] = u < 0.2 ? 0 : u < 0.4 ? 25 : u < 0.45 ? 1e-310 * u : u < 0.5 ? 1e6 * u : 30 * u;
        cr_assert_eq(mcstat_record(m, 0, (size_t)i, x[i], 0, &err), PCF_OK);
    }
    qsort(x, N, sizeof *x, s_cmp);
    mcstat_pcf s;
    cr_assert_eq(mcstat_summarise_r(m, 0, 0.5, scratch, &s, &err), PCF_OK);
    double se;
    cr_assert_eq(s.p10_mw, mcstat_quantile(x, N, 0.1, &se));
    cr_assert_eq(s.p10_se, se);
    cr_assert_eq(s.p50_mw, mcstat_quantile(x, N, 0.5, &se));
    cr_assert_eq(s.p50_se, se);
    cr_assert_eq(s.p90_mw, mcstat_quantile(x, N, 0.9, &se));
    cr_assert_eq(s.p90_se, se);
    cr_assert_eq(s.firm95_mw, mcstat_quantile(x, N, 0.05, &se));
    cr_assert_eq(s.firm95_se, se);
    free(x);
    free(scratch);
    mcstat_destroy(&m);
}

static int s_cmp_nan_last(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

/* mcstat_ranks against qsort: every rank of data shaped to hit each path
 * (few values, one value, atoms filling a bucket, a range too narrow to
 * divide, subnormals, both signs, huge magnitudes, infinities and NaN). */
Test(mcstat_ranks, every_rank_equals_the_sorted_value)
{
    enum { N = 3000 };
    double *x = malloc(N * sizeof *x), *sorted = malloc(N * sizeof *x), *scratch = malloc(N * sizeof *x);
    rng_stream r;
    rng_init(&r, 78, 1, 1, RNG_STREAM_TEST);
    for (int shape = 0; shape < 9; shape++) {
        size_t n = shape == 0 ? 37 : N;
        for (size_t i = 0; i < n; i++) {
            double u = rng_uniform(&r), g = rng_normal(&r);
            switch (shape) {
            case 0: x[i] = g; break;                                    /* few: plain selection */
            case 1: x[i] = 4.5; break;                                  /* one value */
            case 2: x[i] = u < 0.6 ? 25 : u < 0.8 ? 0 : 30 * u; break;  /* atoms */
            case 3: x[i] = 1 + (u < 0.5 ? 0 : 1e-15 * u); break;        /* 1 and a few neighbours */
            case 4: x[i] = 1e-310 * u; break;                           /* subnormals */
            case 5: x[i] = g * 1e300; break;                            /* range overflows */
            case 6: x[i] = u < 0.5 ? -g * g : g * g * g; break;         /* both signs, skewed */
            case 7: x[i] = u < 0.01 ? HUGE_VAL : u < 0.02 ? -HUGE_VAL : g; break;
            default: x[i] = u < 0.01 ? NAN : g; break;
            }
        }
        memcpy(sorted, x, n * sizeof *x);
        qsort(sorted, n, sizeof *x, s_cmp_nan_last);
        for (size_t k0 = 0; k0 < n; k0 += 61) {
            /* ranks out of order, one repeated, the extremes included */
            size_t rank[6] = { k0, n - 1, 0, k0 / 2, k0, (k0 * 7) % n };
            double v[6];
            mcstat_ranks(x, n, rank, 6, v, scratch);
            for (int i = 0; i < 6; i++) {
                cr_assert(v[i] == sorted[rank[i]] || (isnan(v[i]) && isnan(sorted[rank[i]])),
                          "shape %d rank %zu: %g, sorted %g", shape, rank[i], v[i], sorted[rank[i]]);
            }
        }
    }
    /* more ranks than a batch, and no values at all */
    size_t many[150];
    double v[150];
    for (size_t i = 0; i < 150; i++) many[i] = (i * 7) % 37;
    mcstat_ranks(x, 37, many, 150, v, scratch);
    memcpy(sorted, x, 37 * sizeof *x);
    qsort(sorted, 37, sizeof *x, s_cmp_nan_last);
    for (size_t i = 0; i < 150; i++) cr_assert(v[i] == sorted[many[i]], "rank %zu of 150", i);
    mcstat_ranks(x, 0, many, 3, v, scratch);
    cr_assert(isnan(v[0]) && isnan(v[1]) && isnan(v[2]));
    free(x);
    free(sorted);
    free(scratch);
}

Test(mcstat_record, whole_sample_at_once_equals_item_by_item)
{
    mcstat *a = s_new(3, 25), *b = s_new(3, 25);
    pcf_error err;
    for (size_t i = 0; i < 25; i++) {
        double d[3] = {(double)i, 2.0 * (double)(i % 7), 30 - (double)i};
        double c[3] = {i % 4 ? 0 : 1.5, 0, (double)i / 10};
        cr_assert_eq(mcstat_record_sample(a, i, d, c, &err), PCF_OK, "%s", err.msg);
        for (size_t k = 0; k < 3; k++)
            cr_assert_eq(mcstat_record(b, k, i, d[k], c[k], &err), PCF_OK);
    }
    for (size_t k = 0; k < 3; k++) {
        mcstat_pcf x, y;
        cr_assert_eq(mcstat_summarise(a, k, 0.5, &x, &err), PCF_OK);
        cr_assert_eq(mcstat_summarise(b, k, 0.5, &y, &err), PCF_OK);
        cr_assert_eq(memcmp(&x, &y, sizeof x), 0, "item %zu", k);
    }
    /* all-or-nothing: a bad value in the last item records nothing */
    mcstat_reset(a);
    double d[3] = {1, 2, NAN}, c[3] = {0, 0, 0};
    cr_assert_eq(mcstat_record_sample(a, 3, d, c, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "item 2"), "%s", err.msg);
    d[2] = 3;
    cr_assert_eq(mcstat_record_sample(a, 3, d, c, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(mcstat_record_sample(a, 3, d, c, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_record_sample(a, 25, d, c, &err), PCF_ERR_INVALID);
    mcstat_destroy(&a);
    mcstat_destroy(&b);
}

Test(mcstat_record, negative_zero_is_stored_as_zero)
{
    mcstat *a = s_new(1, 20);
    pcf_error err;
    for (size_t i = 0; i < 20; i++)
        cr_assert_eq(mcstat_record(a, 0, i, i % 2 ? -0.0 : 0.0, 0, &err), PCF_OK);
    mcstat_pcf s;
    cr_assert_eq(mcstat_summarise(a, 0, 0.5, &s, &err), PCF_OK);
    cr_assert(!signbit(s.p10_mw) && !signbit(s.p50_mw) && !signbit(s.firm95_mw));
    mcstat_destroy(&a);
}

Test(mcstat_record, hostile_values_and_shapes)
{
    mcstat *m = NULL;
    pcf_error err;
    cr_assert_eq(mcstat_new(1, MCSTAT_MIN_SAMPLES - 1, &m, &err), PCF_ERR_LIMIT);
    cr_assert_eq(mcstat_new(0, 100, &m, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_new(1000000, 1000, &m, &err), PCF_ERR_LIMIT);
    cr_assert_null(m);
    m = s_new(2, 20);
    cr_assert_eq(mcstat_record(m, 2, 0, 1, 0, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_record(m, 0, 20, 1, 0, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_record(m, 0, 0, -1, 0, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_record(m, 0, 0, 1, -0.5, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_record(m, 0, 0, NAN, 0, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_record(m, 0, 0, 1, INFINITY, &err), PCF_ERR_INVALID);
    for (size_t i = 0; i < 20; i++)
        cr_assert_eq(mcstat_record(m, 0, i, 1, 0, &err), PCF_OK);
    mcstat_pcf s;
    cr_assert_eq(mcstat_summarise(m, 0, 0, &s, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_summarise(m, 0, NAN, &s, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_summarise(m, 5, 0.5, &s, &err), PCF_ERR_INVALID);
    cr_assert_eq(mcstat_summarise(m, 0, 0.5, &s, &err), PCF_OK);
    mcstat_destroy(&m);
}
