/*
 * rng.c -- Philox4x32-10 streams, uniforms, normals and correlated
 * Gaussians; see rng.h for the counter layout and the guarantees.
 *
 * The Cholesky factorisation is written out here rather than taken from
 * gsl_linalg_cholesky_decomp1: GSL reports a non-positive-definite matrix
 * through its error handler, whose default aborts the process, and turning
 * that handler off is process-wide state a library must not change.  The
 * matrices are small (one row per forecast quantity), so the plain
 * O(n^3 / 3) algorithm is fine.
 */
#include "rng.h"

#include <gsl/gsl_cdf.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_M0 0xD2511F53u
#define S_M1 0xCD9E8D57u
#define S_W0 0x9E3779B9u
#define S_W1 0xBB67AE85u

static inline void s_round(uint32_t c[4], const uint32_t k[2])
{
    uint64_t p0 = (uint64_t)S_M0 * c[0];
    uint64_t p1 = (uint64_t)S_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = c[1], c3 = c[3];
    c[0] = hi1 ^ c1 ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c3 ^ k[1];
    c[3] = lo0;
}

void rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    for (int i = 0; i < 10; i++) {
        if (i > 0) {
            k[0] += S_W0;
            k[1] += S_W1;
        }
        s_round(c, k);
    }
    memcpy(out, c, sizeof c);
}

void rng_init(rng_stream *r, uint64_t seed, uint32_t sp, uint32_t sample, uint16_t stream)
{
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = sample;
    r->ctr[3] = (sp & 0xffffu) | ((uint32_t)stream << 16);
    r->pos = 4;
}

uint32_t rng_u32(rng_stream *r)
{
    if (r->pos >= 4) {
        rng_philox4x32_10(r->ctr, r->key, r->buf);
        /* 64-bit block index: 2^64 blocks never wrap in practice. */
        if (++r->ctr[0] == 0)
            r->ctr[1]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t rng_u64(rng_stream *r)
{
    uint64_t hi = rng_u32(r);
    return (hi << 32) | rng_u32(r);
}

double rng_uniform(rng_stream *r)
{
    uint64_t k = rng_u64(r) >> 11;
    return ((double)k + 0.5) * 0x1p-53;
}

double rng_normal(rng_stream *r)
{
    return gsl_cdf_ugaussian_Pinv(rng_uniform(r));
}

struct rng_mvn {
    size_t n;
    double *mean;   /* [n] */
    double *l;      /* [n*n] lower factor */
};

pcf_rc rng_mvn_new(size_t n, const double *mean, const double *cov, rng_mvn **out,
                   pcf_error *err)
{
    *out = NULL;
    if (n == 0 || n > RNG_MVN_MAX)
        return pcf_error_set(err, PCF_ERR_LIMIT, "rng_mvn: dimension %zu not in 1..%d", n,
                             RNG_MVN_MAX);
    for (size_t i = 0; i < n; i++) {
        if (mean && !isfinite(mean[i]))
            return pcf_error_set(err, PCF_ERR_INVALID, "rng_mvn: mean[%zu] is not finite", i);
        for (size_t j = 0; j <= i; j++) {
            double a = cov[i * n + j], b = cov[j * n + i];
            if (!isfinite(a) || !isfinite(b))
                return pcf_error_set(err, PCF_ERR_INVALID,
                                     "rng_mvn: covariance (%zu,%zu) is not finite", i, j);
            if (fabs(a - b) > 1e-12 * (fabs(a) + fabs(b)))
                return pcf_error_set(err, PCF_ERR_INVALID,
                                     "rng_mvn: covariance not symmetric at (%zu,%zu): %g vs %g",
                                     i, j, a, b);
        }
    }
    rng_mvn *m = calloc(1, sizeof *m);
    if (m) {
        m->mean = calloc(n, sizeof(double));
        m->l = calloc(n * n, sizeof(double));
    }
    if (!m || !m->mean || !m->l) {
        rng_mvn_destroy(&m);
        return pcf_error_set(err, PCF_ERR_NOMEM, "rng_mvn: out of memory (n=%zu)", n);
    }
    m->n = n;
    if (mean)
        memcpy(m->mean, mean, n * sizeof(double));
    /* Cholesky-Banachiewicz, row by row, from the lower triangle of cov. */
    double *l = m->l;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j <= i; j++) {
            double s = cov[i * n + j];
            for (size_t k = 0; k < j; k++)
                s -= l[i * n + k] * l[j * n + k];
            if (i == j) {
                /* Relative test: a pivot lost to rounding means a singular
                 * (perfectly correlated) or indefinite matrix. */
                if (!(s > 1e-14 * cov[i * n + i])) {
                    rng_mvn_destroy(&m);
                    return pcf_error_set(err, PCF_ERR_SINGULAR,
                                         "rng_mvn: covariance not positive definite "
                                         "(pivot %zu is %g)", i, s);
                }
                l[i * n + i] = sqrt(s);
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    *out = m;
    return PCF_OK;
}

void rng_mvn_destroy(rng_mvn **m)
{
    if (!m || !*m)
        return;
    free((*m)->mean);
    free((*m)->l);
    free(*m);
    *m = NULL;
}

size_t rng_mvn_dim(const rng_mvn *m)
{
    return m->n;
}

const double *rng_mvn_chol(const rng_mvn *m)
{
    return m->l;
}

/* x = mean + L x in place, last row first: row i only reads x[0..i],
 * still the untransformed normals. */
static void s_mvn_apply(const rng_mvn *m, double *x)
{
    size_t n = m->n;
    for (size_t i = n; i-- > 0;) {
        const double *li = m->l + i * n;
        double s = 0;
        for (size_t k = 0; k <= i; k++)
            s += li[k] * x[k];
        x[i] = m->mean[i] + s;
    }
}

void rng_mvn_draw(const rng_mvn *m, rng_stream *r, double *x)
{
    for (size_t i = 0; i < m->n; i++)
        x[i] = rng_normal(r);
    s_mvn_apply(m, x);
}

void rng_mvn_draw_lhs(const rng_mvn *m, const rng_lhs *l, size_t dim0, uint32_t sample,
                      rng_stream *r, double *x)
{
    for (size_t i = 0; i < m->n; i++)
        x[i] = rng_lhs_normal(l, dim0 + i, sample, r);
    s_mvn_apply(m, x);
}

struct rng_lhs {
    size_t nd, n;
    uint32_t *perm;   /* [nd * n] */
};

pcf_rc rng_lhs_new(size_t n_dims, size_t n_samples, rng_lhs **out, pcf_error *err)
{
    *out = NULL;
    if (n_dims == 0 || n_samples == 0 || n_samples > UINT32_MAX ||
        n_dims > RNG_LHS_MAX_CELLS / n_samples)
        return pcf_error_set(err, PCF_ERR_LIMIT, "rng_lhs: %zu dimensions x %zu samples not in "
                             "1..%d cells", n_dims, n_samples, RNG_LHS_MAX_CELLS);
    rng_lhs *l = calloc(1, sizeof *l);
    if (l)
        l->perm = malloc(n_dims * n_samples * sizeof(uint32_t));
    if (!l || !l->perm) {
        rng_lhs_destroy(&l);
        return pcf_error_set(err, PCF_ERR_NOMEM, "rng_lhs: out of memory");
    }
    l->nd = n_dims;
    l->n = n_samples;
    rng_lhs_shuffle(l, 0, 0);
    *out = l;
    return PCF_OK;
}

void rng_lhs_destroy(rng_lhs **l)
{
    if (!l || !*l)
        return;
    free((*l)->perm);
    free(*l);
    *l = NULL;
}

void rng_lhs_shuffle(rng_lhs *l, uint64_t seed, uint32_t sp)
{
    for (size_t d = 0; d < l->nd; d++) {
        uint32_t *p = l->perm + d * l->n;
        for (size_t i = 0; i < l->n; i++)
            p[i] = (uint32_t)i;
        rng_stream r;
        rng_init(&r, seed, sp, (uint32_t)d, RNG_STREAM_LHS);
        /* Fisher-Yates; j from a 53-bit uniform: the bias is below
         * n / 2^53, far under anything a sample can show. */
        for (size_t i = l->n - 1; i > 0; i--) {
            size_t j = (size_t)(rng_uniform(&r) * (double)(i + 1));
            if (j > i)
                j = i;
            uint32_t t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
    }
}

uint32_t rng_lhs_stratum(const rng_lhs *l, size_t dim, uint32_t sample)
{
    return l->perm[dim * l->n + sample];
}

double rng_lhs_uniform(const rng_lhs *l, size_t dim, uint32_t sample, rng_stream *r)
{
    double v = ((double)l->perm[dim * l->n + sample] + rng_uniform(r)) / (double)l->n;
    /* (n - 1 + u) rounds to n when u is within an ulp of 1: stay below 1,
     * where the inverse normal CDF is finite */
    return v < 1 ? v : 1 - 0x1p-53;
}

double rng_lhs_normal(const rng_lhs *l, size_t dim, uint32_t sample, rng_stream *r)
{
    return gsl_cdf_ugaussian_Pinv(rng_lhs_uniform(l, dim, sample, r));
}
