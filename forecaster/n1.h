/*
 * n1.h -- batch kernels for the look-ahead engine: DC flows for a matrix of
 * injection vectors, and N-1 screening of every outage for every vector.
 *
 * Layouts (row-major, so one branch's samples are contiguous):
 *   P      [nb x S]  bus injections in MW, sample s of bus i at P[i*S + s]
 *   F      [nl x S]  DC branch flows in MW
 *   worst  [nl x S]  largest |post-fault flow| on branch k over all outages
 *   outage [nl x S]  the in-service branch index whose outage gives it
 *
 * Flows are one dgemm (F = PTDF P) through OpenBLAS, multithreaded by
 * OpenBLAS itself.  Screening evaluates, for every sample s, branch k and
 * non-islanding outage j, |F(k,s) + LODF(k,j) F(j,s)| and keeps the maximum:
 * 2 nl^2 S flops that are not a matrix product (a max, not a sum, over j).
 * The kernel packs a tile of 16 samples so all outage rows stay in L1,
 * and keeps the running maximum and its outage in one AVX2 register: the
 * low bits of |flow| are replaced by the outage's position in the list
 * before taking the max (positive doubles order as their bit patterns), so
 * each step is fma, and, or, max.  The exact flow of the winning outage is
 * recomputed afterwards, so `worst` is exact; only between outages whose
 * flows agree to about 2^(b-52) relatively (b = bits for the outage count,
 * 8 for 186 branches) may the one reported differ from the arg-max.
 * nthreads POSIX threads (created per call) take 16-sample tiles from a
 * shared atomic counter, so the load balances itself on a busy machine.
 * A scalar path with the same semantics runs where AVX2/FMA are missing.
 *
 * Everything here is re-entrant: no globals, scratch allocated per call.
 */
#ifndef PCF_N1_H
#define PCF_N1_H

#include <stddef.h>

#include "error.h"

/* F = ptdf [nl x nb] * P [nb x S]. */
pcf_rc pf_flows_batch(const double *ptdf, size_t nl, size_t nb, const double *P, size_t S,
                      double *F, pcf_error *err);

/* N-1 screening.  lodf [nl x nl] (NaN columns = islanding outages, skipped),
 * F [nl x S] base flows.  Fills worst and outage (-1 and NaN when no outage
 * can be screened).  nthreads <= 0 means 2.  PCF_ERR_INVALID on non-finite
 * flows or a non-NaN LODF column with a non-finite entry. */
pcf_rc pf_n1_screen(const double *lodf, size_t nl, const double *F, size_t S, int nthreads,
                    double *worst, int *outage, pcf_error *err);

/* The same screening straight from injections P [nb x S]: each thread
 * computes its tiles' base flows with an AVX2 FMA kernel (PTDF times the
 * packed tile) and screens them while they are in cache.  This is the path
 * for the engine: a dgemm followed by the screening loses most of its time
 * to OpenBLAS's worker threads, which keep spinning after the dgemm and
 * compete with the screening threads on a 2-core machine.  F, when not
 * NULL, receives the base flows [nl x S]. */
pcf_rc pf_n1_screen_inj(const double *ptdf, size_t nb, const double *lodf, size_t nl,
                        const double *P, size_t S, int nthreads, double *F, double *worst,
                        int *outage, pcf_error *err);

/* pf_n1_screen_inj forced onto the portable (scalar) kernel: for CPUs
 * without AVX2/FMA it is chosen automatically; this entry point lets tests
 * check that both kernels agree. */
pcf_rc pf_n1_screen_inj_portable(const double *ptdf, size_t nb, const double *lodf, size_t nl,
                                 const double *P, size_t S, int nthreads, double *F,
                                 double *worst, int *outage, pcf_error *err);

/* All post-fault flows for one injection: out[k*nl + j] = f[k] +
 * LODF(k,j) f[j] (column j NaN when outage j islands; out[j*nl+j] = 0). */
void pf_n1_flows(const double *lodf, size_t nl, const double *f, double *out);

/* Floating-point operations counted for one pf_n1_screen call and one
 * pf_flows_batch call (for GFLOP/s figures). */
double pf_n1_flops(size_t nl, size_t nb, size_t S);

#endif
