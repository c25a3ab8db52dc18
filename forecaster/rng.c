/*
 * rng.c -- Philox4x32-10 streams, uniforms, normals and correlated
 * Gaussians; see rng.h for the counter layout and the guarantees.
 *
 * Two paths give the same numbers: a stream drawn number by number
 * (rng_stream), and blocks of samples drawn a row at a time (the *_rows
 * functions), where each loop runs over samples so the compiler can
 * vectorise it.  The Monte-Carlo study uses the second; test_rng checks
 * the two against each other bit for bit.
 *
 * The Cholesky factorisation is written out here rather than taken from
 * gsl_linalg_cholesky_decomp1: GSL reports a non-positive-definite matrix
 * through its error handler, whose default aborts the process, and turning
 * that handler off is process-wide state a library must not change.  The
 * matrices are small (one row per forecast quantity), so the plain
 * O(n^3 / 3) algorithm is fine.
 */
#include "rng.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* The block functions below are loops over samples written to be
 * vectorised.  GCC's -O2 (its "very cheap" cost model) leaves alone any
 * loop that would need a remainder or a check, which is most of them, so
 * these functions ask for the model -O3 uses (S_VECTOR), and their bodies
 * are inlined into each caller (S_INLINE) so that each is compiled for
 * the caller's instruction set.
 *
 * Each block function exists twice: generic x86-64 (SSE2), and for
 * x86-64-v4 (AVX-512), where the vectors are four times as wide; the
 * latter is used when the CPU has it (checked per call, a load of a flag
 * libgcc set at start-up) unless rng_wide(0) said not to.  Both give the
 * same numbers: the same IEEE operations in the same order, correctly
 * rounded whatever the vector width, and -std=c11 forbids contracting a
 * multiply and an add into a fused multiply-add (test_rng runs both
 * paths against the one-number-at-a-time path, bit for bit). */
#if defined(__GNUC__) && !defined(__clang__)
#define S_VECTOR __attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#define S_INLINE __attribute__((always_inline, optimize("tree-vectorize", "vect-cost-model=dynamic"))) inline
#else
#define S_VECTOR
#define S_INLINE inline
#endif
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define S_WIDE __attribute__((target("arch=x86-64-v4")))
#endif

static atomic_int s_allow_wide = 1;

static int s_wide(void)
{
#ifdef S_WIDE
    return atomic_load_explicit(&s_allow_wide, memory_order_relaxed) && __builtin_cpu_supports("x86-64-v4");
#else
    return 0;
#endif
}

int rng_wide(int allow)
{
    atomic_store(&s_allow_wide, allow != 0);
    return s_wide();
}

/* The generic and the wide copy of a block function whose body is the
 * S_INLINE function name##_body, and the entry point that picks one. */
#ifdef S_WIDE
#define S_BLOCK_FN(decl, name, params, args)                                                  \
    S_VECTOR static void name##_generic params { name##_body args; }                          \
    S_WIDE S_VECTOR static void name##_wide params { name##_body args; }                      \
    decl params                                                                               \
    {                                                                                         \
        if (s_wide()) name##_wide args;                                                       \
        else name##_generic args;                                                             \
    }
#else
#define S_BLOCK_FN(decl, name, params, args)                                                  \
    decl params { name##_body args; }
#endif

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

/* 53 random bits of (hi, lo) as a uniform in (0, 1): see rng_uniform. */
static S_INLINE double s_u53(uint32_t hi, uint32_t lo)
{
    uint64_t k = (((uint64_t)hi << 32) | lo) >> 11;
    return ((double)k + 0.5) * 0x1p-53;
}

double rng_uniform(rng_stream *r)
{
    uint32_t hi = rng_u32(r);
    return s_u53(hi, rng_u32(r));
}

/* ---- inverse normal CDF: Wichura's AS241 (PPND16) ---------------------------
 *
 * Wichura, "Algorithm AS 241: The percentage points of the normal
 * distribution", Applied Statistics 37 (1988) 477-484: rational
 * approximations of degree 7/7, relative error about 1e-16, on three
 * ranges of p.  Each is evaluated in Horner form exactly as the paper
 * writes it, which is also how GSL's gsl_cdf_ugaussian_Pinv does: the
 * numbers are bit for bit those GSL gave (test_rng checks it), so a run
 * keeps its figures; what changes is that the central range, where 85 %
 * of the draws fall, is a plain loop the compiler vectorises instead of a
 * call per number. */
static const double s_pa[8] = {
    3.387132872796366608, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125,
    45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727};
static const double s_pb[8] = {
    1.0, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077,
    21213.794301586595867, 39307.89580009271061, 28729.085735721942674, 5226.495278852854561};
static const double s_pc[8] = {
    1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055, 3.64784832476320460504,
    1.27045825245236838258, 0.24178072517745061177, 0.0227238449892691845833,
    7.7454501427834140764e-4};
static const double s_pd[8] = {
    1.0, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455,
    0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4,
    1.05075007164441684324e-9};
static const double s_pe[8] = {
    6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358, 0.29656057182850489123,
    0.026532189526576123093, 0.0012426609473880784386, 2.71155556874348757815e-5,
    2.01033439929228813265e-7};
static const double s_pf[8] = {
    1.0, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525,
    7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7,
    2.04426310338993978564e-15};

/* num(x) / den(x), both of degree 7, Horner from the top coefficient. */
static S_INLINE double s_ratio(const double *num, const double *den, double x)
{
    double u = num[7], v = den[7];
    for (int i = 6; i >= 0; i--) {
        u = x * u + num[i];
        v = x * v + den[i];
    }
    return u / v;
}

/* |p - 0.5| <= 0.425: the central range, no logarithm. */
static S_INLINE double s_ppnd_central(double p)
{
    double q = p - 0.5;
    return q * s_ratio(s_pa, s_pb, 0.180625 - q * q);
}

/* The tails: r = sqrt(-log(min(p, 1 - p))).  p = 0 and 1 give -inf and
 * +inf, a NaN stays NaN. */
static double s_ppnd_tail(double p)
{
    if (p == 0) return -INFINITY;
    if (p == 1) return INFINITY;
    double r = sqrt(-log(p < 0.5 ? p : 1 - p));
    double x = r <= 5 ? s_ratio(s_pc, s_pd, r - 1.6) : s_ratio(s_pe, s_pf, r - 5);
    return p < 0.5 ? -x : x;
}

static S_INLINE int s_central(double p)
{
    return fabs(p - 0.5) <= 0.425;
}

double rng_ppnd(double p)
{
    return s_central(p) ? s_ppnd_central(p) : s_ppnd_tail(p);
}

/* Horner's num(x) / den(x) of S_GROUP numbers at once: the group's
 * numbers are independent, so each step's multiplies and adds overlap
 * instead of waiting on the latency of the step before, and the group
 * stays in vector registers. */
#define S_GROUP 8
typedef double s_vgroup __attribute__((vector_size(S_GROUP * sizeof(double))));
static S_INLINE void s_ratio_group(const double *num, const double *den, const double *x, double *out)
{
    s_vgroup xv, u, v;
    memcpy(&xv, x, sizeof xv);
    for (int k = 0; k < S_GROUP; k++) {
        u[k] = num[7];
        v[k] = den[7];
    }
    for (int i = 6; i >= 0; i--) {
        u = xv * u + num[i];
        v = xv * v + den[i];
    }
    u = u / v;
    memcpy(out, &u, sizeof u);
}

/* out[k] = s_ratio(num, den, x[k]) for k < n, groups of S_GROUP and then
 * the rest one by one. */
static S_INLINE void s_ratio_vec(const double *num, const double *den, const double *x, double *out,
                                        size_t n)
{
    size_t k = 0;
    for (; k + S_GROUP <= n; k += S_GROUP)
        s_ratio_group(num, den, x + k, out + k);
    for (; k < n; k++)
        out[k] = s_ratio(num, den, x[k]);
}

/* x[0..n) = rng_ppnd(x[0..n)) in place, n <= S_CHUNK.  The central formula
 * runs over the whole chunk with no branch; the numbers outside the
 * central range are listed, and their logarithms taken one by one, but
 * the intermediate range's ratio again for all of them at once. */
#define S_CHUNK 64
static S_INLINE void s_ppnd_chunk(double *x, size_t n)
{
    double q[S_CHUNK], r[S_CHUNK], z[S_CHUNK], tp[S_CHUNK];
    unsigned tail[S_CHUNK], nt = 0;
    for (size_t k = 0; k < n; k++) {
        q[k] = x[k] - 0.5;
        r[k] = 0.180625 - q[k] * q[k];
    }
    s_ratio_vec(s_pa, s_pb, r, z, n);
    for (size_t k = 0; k < n; k++) {
        tail[nt] = (unsigned)k;
        tp[nt] = x[k];
        nt += !(fabs(q[k]) <= 0.425);
    }
    for (size_t k = 0; k < n; k++)
        x[k] = q[k] * z[k];
    if (nt == 0) return;
    /* r > 5 (p < 1.4e-11), 0, 1 and NaN are redone by s_ppnd_tail */
    for (unsigned t = 0; t < nt; t++) {
        r[t] = sqrt(-log(tp[t] < 0.5 ? tp[t] : 1 - tp[t]));
        q[t] = r[t] - 1.6;
    }
    s_ratio_vec(s_pc, s_pd, q, z, nt);
    for (unsigned t = 0; t < nt; t++)
        x[tail[t]] = !(r[t] <= 5) ? s_ppnd_tail(tp[t]) : tp[t] < 0.5 ? -z[t] : z[t];
}

static S_INLINE void rng_ppnd_vec_body(double *x, size_t n)
{
    size_t k = 0;
    /* full chunks with a constant length, which the compiler vectorises */
    for (; k + S_CHUNK <= n; k += S_CHUNK)
        s_ppnd_chunk(x + k, S_CHUNK);
    if (k < n)
        s_ppnd_chunk(x + k, n - k);
}

S_BLOCK_FN(void rng_ppnd_vec, rng_ppnd_vec, (double *x, size_t n), (x, n))

double rng_normal(rng_stream *r)
{
    return rng_ppnd(rng_uniform(r));
}

/* ---- blocks of samples -----------------------------------------------------
 *
 * Philox4x32-10 of S_LANES counters that differ only in the sample word,
 * laid out lane by lane so that each round is one loop the compiler turns
 * into vector multiplies (a draw of a sample no longer costs a call, a
 * buffer and a branch).  out[w][k] is word w of sample sample0 + k. */
#define S_LANES 16
static S_INLINE void s_philox_lanes(uint64_t blk, uint32_t sample0, uint32_t w3, const uint32_t key[2],
                           uint32_t out[4][S_LANES])
{
    uint32_t c0[S_LANES], c1[S_LANES], c2[S_LANES], c3[S_LANES];
    for (unsigned k = 0; k < S_LANES; k++) {
        c0[k] = (uint32_t)blk;
        c1[k] = (uint32_t)(blk >> 32);
        c2[k] = sample0 + k;
        c3[k] = w3;
    }
    uint32_t k0 = key[0], k1 = key[1];
    for (int i = 0; i < 10; i++) {
        if (i > 0) {
            k0 += S_W0;
            k1 += S_W1;
        }
        for (unsigned k = 0; k < S_LANES; k++) {
            uint64_t p0 = (uint64_t)S_M0 * c0[k];
            uint64_t p1 = (uint64_t)S_M1 * c2[k];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[k] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[k] ^ k1;
            c1[k] = (uint32_t)p1;
            c3[k] = (uint32_t)p0;
            c0[k] = n0;
            c2[k] = n2;
        }
    }
    memcpy(out[0], c0, sizeof c0);
    memcpy(out[1], c1, sizeof c1);
    memcpy(out[2], c2, sizeof c2);
    memcpy(out[3], c3, sizeof c3);
}

static S_INLINE void rng_uniform_rows_body(const rng_span *sp, size_t draw0, size_t ndraw, double *out, size_t ld)
{
    uint32_t key[2] = { (uint32_t)sp->seed, (uint32_t)(sp->seed >> 32) };
    uint32_t w3 = (sp->sp & 0xffffu) | ((uint32_t)sp->stream << 16);
    size_t draw1 = draw0 + ndraw;
    for (size_t k0 = 0; k0 < sp->n; k0 += S_LANES) {
        size_t nk = sp->n - k0 < S_LANES ? sp->n - k0 : S_LANES;
        /* draws 2q and 2q + 1 of a stream are the two halves of block q */
        for (size_t q = draw0 / 2; 2 * q < draw1; q++) {
            uint32_t w[4][S_LANES];
            s_philox_lanes(q, sp->sample0 + (uint32_t)k0, w3, key, w);
            for (size_t h = 0; h < 2; h++) {
                size_t t = 2 * q + h;
                if (t < draw0 || t >= draw1) continue;
                double *o = out + (t - draw0) * ld + k0;
                for (size_t k = 0; k < nk; k++)
                    o[k] = s_u53(w[2 * h][k], w[2 * h + 1][k]);
            }
        }
    }
}

S_BLOCK_FN(void rng_uniform_rows, rng_uniform_rows,
           (const rng_span *sp, size_t draw0, size_t ndraw, double *out, size_t ld), (sp, draw0, ndraw, out, ld))

void rng_normal_rows(const rng_span *sp, size_t draw0, size_t ndraw, double *out, size_t ld)
{
    rng_uniform_rows(sp, draw0, ndraw, out, ld);
    for (size_t t = 0; t < ndraw; t++)
        rng_ppnd_vec(out + t * ld, sp->n);
}

struct rng_mvn {
    size_t n;
    double *mean;   /* [n] */
    double *l;      /* [n*n] lower factor */
    size_t *lo;     /* [n] first nonzero column of each row of l */
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
        m->lo = calloc(n, sizeof(size_t));
    }
    if (!m || !m->mean || !m->l || !m->lo) {
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
    /* Sites in independent groups give a block-diagonal factor: the
     * products start at the row's first nonzero.  Skipping exact zeros
     * changes no sum (s + 0 x = s for finite x), so the draws are the same. */
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (l[i * n + k] == 0)
            k++;
        m->lo[i] = k;
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
    free((*m)->lo);
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
        for (size_t k = m->lo[i]; k <= i; k++)
            s += li[k] * x[k];
        x[i] = m->mean[i] + s;
    }
}

/* s_mvn_apply for the nk (<= S_CHUNK) columns x[. * ld + 0..nk): the same
 * sums in the same order, each a loop over the columns that vectorises. */
static S_INLINE void s_mvn_apply_cols(const rng_mvn *m, double *x, size_t ld, size_t nk)
{
    size_t n = m->n;
    double acc[S_CHUNK];
    for (size_t i = n; i-- > 0;) {
        const double *li = m->l + i * n;
        for (size_t k = 0; k < nk; k++)
            acc[k] = 0;
        for (size_t c = m->lo[i]; c <= i; c++) {
            double a = li[c];
            const double *xc = x + c * ld;
            for (size_t k = 0; k < nk; k++)
                acc[k] += a * xc[k];
        }
        double mu = m->mean[i], *xi = x + i * ld;
        for (size_t k = 0; k < nk; k++)
            xi[k] = mu + acc[k];
    }
}

void rng_mvn_draw(const rng_mvn *m, rng_stream *r, double *x)
{
    for (size_t i = 0; i < m->n; i++)
        x[i] = rng_normal(r);
    s_mvn_apply(m, x);
}

static S_INLINE void s_mvn_apply_rows_body(const rng_mvn *m, double *x, size_t ld, size_t n)
{
    size_t k = 0;
    for (; k + S_CHUNK <= n; k += S_CHUNK)
        s_mvn_apply_cols(m, x + k, ld, S_CHUNK);
    if (k < n)
        s_mvn_apply_cols(m, x + k, ld, n - k);
}

S_BLOCK_FN(static void s_mvn_apply_rows, s_mvn_apply_rows, (const rng_mvn *m, double *x, size_t ld, size_t n),
           (m, x, ld, n))

void rng_mvn_draw_rows(const rng_mvn *m, const rng_span *sp, double *x, size_t ld)
{
    rng_normal_rows(sp, 0, m->n, x, ld);
    s_mvn_apply_rows(m, x, ld, sp->n);
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
    return rng_ppnd(rng_lhs_uniform(l, dim, sample, r));
}
