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

void rng_mvn_draw(const rng_mvn *m, rng_stream *r, double *x)
{
    size_t n = m->n;
    for (size_t i = 0; i < n; i++)
        x[i] = rng_normal(r);
    /* In place, last row first: row i only reads z[0..i], still intact. */
    for (size_t i = n; i-- > 0;) {
        const double *li = m->l + i * n;
        double s = 0;
        for (size_t k = 0; k <= i; k++)
            s += li[k] * x[k];
        x[i] = m->mean[i] + s;
    }
}
