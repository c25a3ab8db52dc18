/*
 * rng.h -- counter-based random numbers for the Monte-Carlo engine.
 *
 * Every random number of a run is a pure function of (run seed, settlement
 * period, sample, stream, draw index): Philox4x32-10 (Salmon, Moraes, Dror
 * and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11) encrypts
 * the counter (draw index, sample, sp|stream) under the key (run seed).  A
 * sample therefore sees the same numbers whichever thread runs it and in
 * whatever order, which is what makes results bit-identical for any thread
 * count (DESIGN.md section 5 item 2).
 *
 * Counter layout (four 32-bit words):
 *   ctr[0], ctr[1]  block index within the stream (64 bits; each block gives
 *                   four 32-bit words, i.e. two doubles)
 *   ctr[2]          sample index
 *   ctr[3]          settlement period (low 16 bits) and stream id (high 16
 *                   bits), so independent uses within one sample (forecast
 *                   errors, faults, ...) never share numbers
 * key = the 64-bit run seed.
 *
 * rng_stream is a small value (no allocation): put one on the stack per
 * sample.  Uniforms lie in the open interval (0, 1) with 53 random bits;
 * standard normals are the inverse normal CDF of one uniform (Wichura's
 * AS241, rng_ppnd, bit for bit GSL's), so every normal consumes exactly one
 * uniform and draw positions never depend on values (unlike rejection or
 * Box-Muller pairs).
 *
 * rng_span and the *_rows functions: the same numbers for a block of
 * consecutive samples at once, one row per draw position, one column per
 * sample.  Draw t of a stream is half of Philox block t / 2 (two 32-bit
 * words per uniform), so any draw of any sample is addressed directly.
 *
 * rng_mvn: correlated Gaussian vectors x = mean + L z with L the Cholesky
 * factor of the covariance.  Built once (rng_mvn_new), then read-only:
 * one rng_mvn can be shared by all worker threads.
 *
 * rng_lhs: Latin hypercube sampling (McKay, Beckman and Conover,
 * Technometrics 21, 1979), a variance reduction.  For each SP and each
 * dimension d, a random permutation pi_d of the n samples is drawn once
 * (rng_lhs_shuffle, Fisher-Yates on stream RNG_STREAM_LHS); sample i's
 * uniform in dimension d is then (pi_d(i) + u) / n with u from the sample's
 * own stream, so every one of the n equal-probability strata of every
 * dimension holds exactly one sample.  The permutations depend only on
 * (seed, sp), so results stay bit-identical for any thread count.  After
 * rng_lhs_shuffle the object is read-only and may be shared by threads.
 */
#ifndef PCF_RNG_H
#define PCF_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Well-known stream ids (high 16 bits of ctr[3]); callers may add more. */
enum {
    RNG_STREAM_FORECAST = 0,    /* forecast errors */
    RNG_STREAM_FAULT = 1,       /* credible-fault draws */
    RNG_STREAM_OUTAGE = 2,      /* anything else about network state */
    RNG_STREAM_LHS = 3,         /* Latin hypercube permutations (sample = dim) */
    RNG_STREAM_MEMBER = 4,      /* weather ensemble member of a scenario */
    RNG_STREAM_TEST = 0xffff
};

typedef struct rng_stream {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];     /* the current output block */
    unsigned pos;        /* next unused word of buf; 4 = empty */
} rng_stream;

/* One Philox4x32-10 block: out = philox(ctr, key).  Exposed for tests. */
void rng_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Starts the stream of (seed, sp, sample, stream) at draw 0. */
void rng_init(rng_stream *r, uint64_t seed, uint32_t sp, uint32_t sample, uint16_t stream);

uint32_t rng_u32(rng_stream *r);
uint64_t rng_u64(rng_stream *r);
/* Uniform in the open interval (0, 1): (k + 0.5) / 2^53, k uniform on 53 bits. */
double rng_uniform(rng_stream *r);
/* Standard normal: inverse CDF of rng_uniform. */
double rng_normal(rng_stream *r);
/* The inverse standard normal CDF (AS241): p in (0, 1); 0 and 1 give -inf
 * and +inf, NaN gives NaN.  Bit for bit GSL's gsl_cdf_ugaussian_Pinv. */
double rng_ppnd(double p);
/* x[i] = rng_ppnd(x[i]) for i < n, in place. */
void rng_ppnd_vec(double *x, size_t n);

/* The streams of n consecutive samples of one (seed, sp, stream), for
 * drawing a whole block of samples at once. */
typedef struct rng_span {
    uint64_t seed;
    uint32_t sp;
    uint32_t sample0;    /* the first sample; sample0 + k wraps like uint32_t */
    uint16_t stream;
    size_t n;
} rng_span;

/* out[t * ld + k] = draw draw0 + t (0-based) of sample sample0 + k's stream,
 * for t < ndraw and k < n: the number the (draw0 + t + 1)-th rng_uniform
 * of rng_init(seed, sp, sample0 + k, stream) returns. */
void rng_uniform_rows(const rng_span *sp, size_t draw0, size_t ndraw, double *out, size_t ld);
/* The same for rng_normal. */
void rng_normal_rows(const rng_span *sp, size_t draw0, size_t ndraw, double *out, size_t ld);

typedef struct rng_mvn rng_mvn;

/* n-dimensional Gaussian with mean [n] (NULL: zero) and covariance cov
 * [n*n] row-major, symmetric positive definite (checked: PCF_ERR_INVALID for
 * asymmetry or non-finite entries, PCF_ERR_SINGULAR if not positive
 * definite, naming the pivot).  n is at most RNG_MVN_MAX. */
#define RNG_MVN_MAX 4096
pcf_rc rng_mvn_new(size_t n, const double *mean, const double *cov, rng_mvn **out,
                   pcf_error *err);
void rng_mvn_destroy(rng_mvn **m);
size_t rng_mvn_dim(const rng_mvn *m);
/* The lower Cholesky factor, row-major n*n (upper triangle zero). */
const double *rng_mvn_chol(const rng_mvn *m);
/* x [n] = mean + L z, z drawn from r (n normals, in order).  Thread-safe on
 * a shared m. */
void rng_mvn_draw(const rng_mvn *m, rng_stream *r, double *x);
/* The block functions above and below run AVX-512 code where the CPU has
 * it (x86-64-v4), else generic x86-64 code; the numbers are the same.
 * allow 0 keeps them on the generic code (tests and benchmarks compare the
 * two), 1 lets them choose; returns 1 when the wide code is in use. */
int rng_wide(int allow);
/* rng_mvn_draw of the n samples of sp, each from draw 0 of its stream:
 * component i of sample sample0 + k in x[i * ld + k] (ld >= sp->n). */
void rng_mvn_draw_rows(const rng_mvn *m, const rng_span *sp, double *x, size_t ld);

typedef struct rng_lhs rng_lhs;

/* n_dims x n_samples strata (n_dims * n_samples <= RNG_LHS_MAX_CELLS). */
#define RNG_LHS_MAX_CELLS 100000000
pcf_rc rng_lhs_new(size_t n_dims, size_t n_samples, rng_lhs **out, pcf_error *err);
void rng_lhs_destroy(rng_lhs **l);
/* Draws the permutations of (seed, sp); call before the SP's samples. */
void rng_lhs_shuffle(rng_lhs *l, uint64_t seed, uint32_t sp);
/* Stratum of sample in dimension dim (0..n-1): pi_dim(sample). */
uint32_t rng_lhs_stratum(const rng_lhs *l, size_t dim, uint32_t sample);
/* (pi_dim(sample) + u) / n in (0, 1), u drawn from r. */
double rng_lhs_uniform(const rng_lhs *l, size_t dim, uint32_t sample, rng_stream *r);
/* Inverse normal CDF of rng_lhs_uniform. */
double rng_lhs_normal(const rng_lhs *l, size_t dim, uint32_t sample, rng_stream *r);
/* rng_mvn_draw with Latin-hypercube normals from dimensions dim0.. */
void rng_mvn_draw_lhs(const rng_mvn *m, const rng_lhs *l, size_t dim0, uint32_t sample,
                      rng_stream *r, double *x);

#endif
