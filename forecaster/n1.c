/*
 * n1.c -- dgemm flows and the N-1 screening kernel; see n1.h for the
 * method and the packed max/arg-max trick.
 */
#include "n1.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define S_HAVE_X86 1
#endif

#define S_TILE 16

pcf_rc pf_flows_batch(const double *ptdf, size_t nl, size_t nb, const double *P, size_t S,
                      double *F, pcf_error *err)
{
    if (nl > INT32_MAX || nb > INT32_MAX || S > INT32_MAX)
        return pcf_error_set(err, PCF_ERR_LIMIT, "n1: matrix dimension too large for BLAS");
    if (nl == 0 || S == 0)
        return PCF_OK;
    if (nb == 0) {
        memset(F, 0, nl * S * sizeof(double));
        return PCF_OK;
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nl, (int)S, (int)nb, 1.0,
                ptdf, (int)nb, P, (int)S, 0.0, F, (int)S);
    return PCF_OK;
}

double pf_n1_flops(size_t nl, size_t nb, size_t S)
{
    return 2.0 * (double)nl * (double)nb * (double)S + 2.0 * (double)nl * (double)nl * (double)S;
}

void pf_n1_flows(const double *lodf, size_t nl, const double *f, double *out)
{
    for (size_t k = 0; k < nl; k++)
        for (size_t j = 0; j < nl; j++) {
            double l = lodf[k * nl + j];
            out[k * nl + j] = isnan(l) ? NAN : (j == k ? 0.0 : f[k] + l * f[j]);
        }
}

typedef struct s_job {
    const double *F, *lc;   /* flows, compacted LODF [nl x nv] */
    const int *jv;          /* [nv] outage branch of each compacted column */
    size_t nl, nv, S, ntiles;   /* tiles 0..ntiles-1, handed out by next */
    uint64_t low;           /* mask of the index bits */
    double *worst;
    int *outage;
    double *buf;            /* [(nl + nb) * S_TILE] packed tile */
    int avx2;
    const double *ptdf, *P; /* fused variant: flows computed per tile */
    size_t nb;
    double *Fout;           /* fused variant: flows written here if not NULL */
    atomic_size_t *next;    /* shared tile counter: threads take tiles as they
                             * go, so a thread the OS descheduled on a busy
                             * machine does not hold the others up */
} s_job;

static uint64_t s_u64(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

/* One branch k over one tile: the worst |post-fault flow| and its outage
 * for each of the tile's samples into wk[0..16), ok[0..16).  tk is the
 * packed tile of base flows ([nl x 16]), lk row k of the compacted LODF.
 * Scalar path. */
static void s_row_scalar(const s_job *jb, const double *tk, size_t k, const double *lk,
                         double *wk, int *ok)
{
    uint64_t keep = ~jb->low & 0x7fffffffffffffffULL;
    uint64_t b[S_TILE] = { 0 };
    const double *fk = tk + k * S_TILE;
    for (size_t jj = 0; jj < jb->nv; jj++) {
        double l = lk[jj];
        const double *fj = tk + (size_t)jb->jv[jj] * S_TILE;
        for (int t = 0; t < S_TILE; t++) {
            uint64_t u = (s_u64(fk[t] + l * fj[t]) & keep) | (uint64_t)jj;
            if (u > b[t])
                b[t] = u;
        }
    }
    for (int t = 0; t < S_TILE; t++) {
        size_t jj = (size_t)(b[t] & jb->low);
        ok[t] = jb->jv[jj];
        wk[t] = fabs(fk[t] + lk[jj] * tk[(size_t)ok[t] * S_TILE + t]);
    }
}

#ifdef S_HAVE_X86
/* AVX2 version of s_row_scalar; the decode (outage from the low bits, exact
 * flow recomputed) is done with gathers so no vector is stored and
 * reloaded piecewise. */
__attribute__((target("avx2,fma")))
static void s_row_avx2(const s_job *jb, const double *tk, size_t k, const double *lk,
                       double *wk, int *ok)
{
    const __m256i lowi = _mm256_set1_epi64x((long long)jb->low);
    const __m256d keep = _mm256_castsi256_pd(
        _mm256_set1_epi64x((long long)(~jb->low & 0x7fffffffffffffffULL)));
    const double *fk = tk + k * S_TILE;
    const int *jv = jb->jv;
    __m256d k0 = _mm256_loadu_pd(fk), k1 = _mm256_loadu_pd(fk + 4);
    __m256d k2 = _mm256_loadu_pd(fk + 8), k3 = _mm256_loadu_pd(fk + 12);
    __m256d b0 = _mm256_setzero_pd(), b1 = b0, b2 = b0, b3 = b0;
    __m256i idi = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi64x(1);
    const size_t nv = jb->nv;
    for (size_t jj = 0; jj < nv; jj++) {
        __m256d l = _mm256_broadcast_sd(lk + jj);
        __m256d id = _mm256_castsi256_pd(idi);
        idi = _mm256_add_epi64(idi, one);
        const double *fj = tk + (size_t)jv[jj] * S_TILE;
        __m256d v0 = _mm256_fmadd_pd(l, _mm256_loadu_pd(fj), k0);
        __m256d v1 = _mm256_fmadd_pd(l, _mm256_loadu_pd(fj + 4), k1);
        __m256d v2 = _mm256_fmadd_pd(l, _mm256_loadu_pd(fj + 8), k2);
        __m256d v3 = _mm256_fmadd_pd(l, _mm256_loadu_pd(fj + 12), k3);
        b0 = _mm256_max_pd(b0, _mm256_or_pd(_mm256_and_pd(v0, keep), id));
        b1 = _mm256_max_pd(b1, _mm256_or_pd(_mm256_and_pd(v1, keep), id));
        b2 = _mm256_max_pd(b2, _mm256_or_pd(_mm256_and_pd(v2, keep), id));
        b3 = _mm256_max_pd(b3, _mm256_or_pd(_mm256_and_pd(v3, keep), id));
    }
    __m256d bb[4] = { b0, b1, b2, b3 }, kk[4] = { k0, k1, k2, k3 };
    const __m256d sign = _mm256_set1_pd(-0.0);
    for (int q = 0; q < 4; q++) {
        __m256i jj = _mm256_and_si256(_mm256_castpd_si256(bb[q]), lowi);
        __m128i j32 = _mm256_i64gather_epi32(jv, jj, 4);
        __m256d l = _mm256_i64gather_pd(lk, jj, 8);
        /* flow of the outage branch at this lane: tk[j*16 + 4q + lane] */
        __m256i pos = _mm256_add_epi64(_mm256_slli_epi64(_mm256_cvtepi32_epi64(j32), 4),
                                       _mm256_set_epi64x(4 * q + 3, 4 * q + 2, 4 * q + 1, 4 * q));
        __m256d fj = _mm256_i64gather_pd(tk, pos, 8);
        __m256d v = _mm256_fmadd_pd(l, fj, kk[q]);
        _mm256_storeu_pd(wk + 4 * q, _mm256_andnot_pd(sign, v));
        _mm_storeu_si128((__m128i *)(ok + 4 * q), j32);
    }
}
#endif

/* tk [nl x 16] = ptdf [nl x nb] * pt [nb x 16], scalar path. */
static void s_gemm_scalar(const s_job *jb, const double *pt, double *tk)
{
    for (size_t k = 0; k < jb->nl; k++) {
        double acc[S_TILE] = { 0 };
        const double *row = jb->ptdf + k * jb->nb;
        for (size_t i = 0; i < jb->nb; i++)
            for (int t = 0; t < S_TILE; t++)
                acc[t] = fma(row[i], pt[i * S_TILE + t], acc[t]);
        memcpy(tk + k * S_TILE, acc, sizeof acc);
    }
}

#ifdef S_HAVE_X86
/* Two branch rows at a time: eight independent FMA chains hide latency. */
__attribute__((target("avx2,fma")))
static void s_gemm_avx2(const s_job *jb, const double *pt, double *tk)
{
    size_t nl = jb->nl, nb = jb->nb, k = 0;
    for (; k + 1 < nl; k += 2) {
        const double *r0 = jb->ptdf + k * nb, *r1 = r0 + nb;
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        __m256d c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (size_t i = 0; i < nb; i++) {
            const double *x = pt + i * S_TILE;
            __m256d x0 = _mm256_loadu_pd(x), x1 = _mm256_loadu_pd(x + 4);
            __m256d x2 = _mm256_loadu_pd(x + 8), x3 = _mm256_loadu_pd(x + 12);
            __m256d b = _mm256_broadcast_sd(r0 + i), d = _mm256_broadcast_sd(r1 + i);
            a0 = _mm256_fmadd_pd(b, x0, a0); a1 = _mm256_fmadd_pd(b, x1, a1);
            a2 = _mm256_fmadd_pd(b, x2, a2); a3 = _mm256_fmadd_pd(b, x3, a3);
            c0 = _mm256_fmadd_pd(d, x0, c0); c1 = _mm256_fmadd_pd(d, x1, c1);
            c2 = _mm256_fmadd_pd(d, x2, c2); c3 = _mm256_fmadd_pd(d, x3, c3);
        }
        double *o = tk + k * S_TILE;
        _mm256_storeu_pd(o, a0); _mm256_storeu_pd(o + 4, a1);
        _mm256_storeu_pd(o + 8, a2); _mm256_storeu_pd(o + 12, a3);
        _mm256_storeu_pd(o + 16, c0); _mm256_storeu_pd(o + 20, c1);
        _mm256_storeu_pd(o + 24, c2); _mm256_storeu_pd(o + 28, c3);
    }
    for (; k < nl; k++) {
        const double *r0 = jb->ptdf + k * nb;
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = 0; i < nb; i++) {
            const double *x = pt + i * S_TILE;
            __m256d b = _mm256_broadcast_sd(r0 + i);
            a0 = _mm256_fmadd_pd(b, _mm256_loadu_pd(x), a0);
            a1 = _mm256_fmadd_pd(b, _mm256_loadu_pd(x + 4), a1);
            a2 = _mm256_fmadd_pd(b, _mm256_loadu_pd(x + 8), a2);
            a3 = _mm256_fmadd_pd(b, _mm256_loadu_pd(x + 12), a3);
        }
        double *o = tk + k * S_TILE;
        _mm256_storeu_pd(o, a0); _mm256_storeu_pd(o + 4, a1);
        _mm256_storeu_pd(o + 8, a2); _mm256_storeu_pd(o + 12, a3);
    }
}
#endif

/* Packs (or, fused, computes) the base flows of one tile into tk. */
static void s_tile_flows(const s_job *jb, size_t s0, size_t w, double *tk, double *pt)
{
    size_t S = jb->S;
    if (!jb->P) {
        for (size_t k = 0; k < jb->nl; k++) {
            memcpy(tk + k * S_TILE, jb->F + k * S + s0, w * sizeof(double));
            for (size_t t = w; t < S_TILE; t++)
                tk[k * S_TILE + t] = 0;
        }
        return;
    }
    for (size_t i = 0; i < jb->nb; i++) {
        memcpy(pt + i * S_TILE, jb->P + i * S + s0, w * sizeof(double));
        for (size_t t = w; t < S_TILE; t++)
            pt[i * S_TILE + t] = 0;
    }
#ifdef S_HAVE_X86
    if (jb->avx2)
        s_gemm_avx2(jb, pt, tk);
    else
#endif
        s_gemm_scalar(jb, pt, tk);
    if (jb->Fout)
        for (size_t k = 0; k < jb->nl; k++)
            memcpy(jb->Fout + k * S + s0, tk + k * S_TILE, w * sizeof(double));
}

static void *s_worker(void *arg)
{
    s_job *jb = arg;
    size_t nl = jb->nl, S = jb->S;
    double *tk = jb->buf, *pt = tk + nl * S_TILE;
    double wk[S_TILE];
    int ok[S_TILE];
    for (;;) {
        size_t tile = atomic_fetch_add_explicit(jb->next, 1, memory_order_relaxed);
        if (tile >= jb->ntiles)
            break;
        size_t s0 = tile * S_TILE, w = S - s0 < S_TILE ? S - s0 : S_TILE;
        s_tile_flows(jb, s0, w, tk, pt);
        for (size_t k = 0; k < nl; k++) {
            const double *lk = jb->lc + k * jb->nv;
            /* full tiles write straight into the outputs */
            double *wdst = w == S_TILE ? jb->worst + k * S + s0 : wk;
            int *odst = w == S_TILE ? jb->outage + k * S + s0 : ok;
#ifdef S_HAVE_X86
            if (jb->avx2)
                s_row_avx2(jb, tk, k, lk, wdst, odst);
            else
#endif
                s_row_scalar(jb, tk, k, lk, wdst, odst);
            if (w < S_TILE) {
                memcpy(jb->worst + k * S + s0, wk, w * sizeof(double));
                memcpy(jb->outage + k * S + s0, ok, w * sizeof(int));
            }
        }
    }
    return NULL;
}

static pcf_rc s_screen(const double *ptdf, size_t nb, const double *P, double *Fout,
                       const double *lodf, size_t nl, const double *F, size_t S, int nthreads,
                       int scalar, double *worst, int *outage, pcf_error *err)
{
    if (nthreads <= 0)
        nthreads = 2;
    if (nthreads > 64)
        nthreads = 64;
    if (!P)
        nb = 0;
    int *jv = malloc((nl + 1) * sizeof(int));
    if (!jv)
        return pcf_error_set(err, PCF_ERR_NOMEM, "n1: out of memory");
    size_t nv = 0;
    for (size_t j = 0; j < nl; j++) {
        if (isnan(lodf[j]))         /* islanding outage: whole column NaN */
            continue;
        for (size_t k = 0; k < nl; k++)
            if (!isfinite(lodf[k * nl + j])) {
                free(jv);
                return pcf_error_set(err, PCF_ERR_INVALID,
                                     "n1: LODF column %zu has a non-finite entry", j);
            }
        jv[nv++] = (int)j;
    }
    if (nv == 0) {
        for (size_t e = 0; e < nl * S; e++) {
            worst[e] = NAN;
            outage[e] = -1;
        }
        free(jv);
        if (P && Fout)
            return pf_flows_batch(ptdf, nl, nb, P, S, Fout, err);
        return PCF_OK;
    }
    uint64_t low = 1;
    while (low < nv - 1)
        low = (low << 1) | 1;
    double *lc = malloc(nl * nv * sizeof(double));
    size_t ntiles = (S + S_TILE - 1) / S_TILE;
    if ((size_t)nthreads > ntiles)
        nthreads = (int)(ntiles ? ntiles : 1);
    s_job *jobs = calloc((size_t)nthreads, sizeof *jobs);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    double *bufs = malloc((size_t)nthreads * (nl + nb) * S_TILE * sizeof(double));
    if (!lc || !jobs || !th || !bufs) {
        free(jv); free(lc); free(jobs); free(th); free(bufs);
        return pcf_error_set(err, PCF_ERR_NOMEM, "n1: out of memory");
    }
    for (size_t k = 0; k < nl; k++)
        for (size_t jj = 0; jj < nv; jj++)
            lc[k * nv + jj] = lodf[k * nl + (size_t)jv[jj]];
    int avx2 = 0;
#ifdef S_HAVE_X86
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    if (scalar)
        avx2 = 0;
    char *running = calloc((size_t)nthreads, 1);
    if (!running) {
        free(jv); free(lc); free(jobs); free(th); free(bufs);
        return pcf_error_set(err, PCF_ERR_NOMEM, "n1: out of memory");
    }
    atomic_size_t next;
    atomic_init(&next, 0);
    for (int t = 0; t < nthreads; t++)
        jobs[t] = (s_job){ F, lc, jv, nl, nv, S, ntiles, low, worst, outage,
                           bufs + (size_t)t * (nl + nb) * S_TILE, avx2, ptdf, P, nb,
                           Fout, &next };
    for (int t = 1; t < nthreads; t++)
        running[t] = pthread_create(&th[t], NULL, s_worker, &jobs[t]) == 0;
    /* shares whose thread could not start are done on the calling thread */
    for (int t = 0; t < nthreads; t++)
        if (!running[t])
            s_worker(&jobs[t]);
    for (int t = 1; t < nthreads; t++)
        if (running[t])
            pthread_join(th[t], NULL);
    free(running);
    free(jv); free(lc); free(jobs); free(th); free(bufs);
    return PCF_OK;
}

pcf_rc pf_n1_screen(const double *lodf, size_t nl, const double *F, size_t S, int nthreads,
                    double *worst, int *outage, pcf_error *err)
{
    for (size_t e = 0; e < nl * S; e++)
        if (!isfinite(F[e]))
            return pcf_error_set(err, PCF_ERR_INVALID, "n1: non-finite base flow on branch %zu",
                                 e / S);
    return s_screen(NULL, 0, NULL, NULL, lodf, nl, F, S, nthreads, 0, worst, outage, err);
}

static pcf_rc s_screen_inj(const double *ptdf, size_t nb, const double *lodf, size_t nl,
                           const double *P, size_t S, int nthreads, int scalar, double *F,
                           double *worst, int *outage, pcf_error *err)
{
    for (size_t e = 0; e < nb * S; e++)
        if (!isfinite(P[e]))
            return pcf_error_set(err, PCF_ERR_INVALID, "n1: non-finite injection at bus %zu",
                                 e / S);
    for (size_t e = 0; e < nl * nb; e++)
        if (!isfinite(ptdf[e]))
            return pcf_error_set(err, PCF_ERR_INVALID, "n1: non-finite PTDF entry");
    return s_screen(ptdf, nb, P, F, lodf, nl, NULL, S, nthreads, scalar, worst, outage, err);
}

pcf_rc pf_n1_screen_inj(const double *ptdf, size_t nb, const double *lodf, size_t nl,
                        const double *P, size_t S, int nthreads, double *F, double *worst,
                        int *outage, pcf_error *err)
{
    return s_screen_inj(ptdf, nb, lodf, nl, P, S, nthreads, 0, F, worst, outage, err);
}

pcf_rc pf_n1_screen_inj_portable(const double *ptdf, size_t nb, const double *lodf, size_t nl,
                                 const double *P, size_t S, int nthreads, double *F,
                                 double *worst, int *outage, pcf_error *err)
{
    return s_screen_inj(ptdf, nb, lodf, nl, P, S, nthreads, 1, F, worst, outage, err);
}
