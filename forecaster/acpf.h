/*
 * acpf.h -- AC power flow: admittance matrix and Newton-Raphson in polar
 * form with the Jacobian factorised by KLU (SuiteSparse).
 *
 * Formulation (MATPOWER's newtonpf, Zimmerman et al., IEEE Trans. Power
 * Systems 26(1), 2011): unknowns are the angles of PV and PQ buses and the
 * magnitudes of PQ buses; the mismatch is S(V) - S_spec with
 * S(V) = V .* conj(Ybus V); convergence when the largest absolute entry of
 * [dP(pv,pq); dQ(pq)] is below tol (1e-8 p.u.), at most max_it (10)
 * iterations.  Reactive limits are not enforced.
 *
 * Reuse: pf_ac_new() builds Ybus, the Jacobian sparsity pattern, a scatter
 * map from every Ybus entry to its (up to four) Jacobian positions, and the
 * KLU symbolic analysis -- all once per topology.  Each Newton iteration only
 * writes numbers through the scatter map and calls klu_refactor (the pivot
 * order of the first klu_factor is kept).  If a solve fails with reused
 * pivots it is retried once with fresh factorisations.  No allocation
 * happens in pf_ac_solve.
 *
 * Thread-safety: a pf_ac holds its own scratch and KLU objects; use one per
 * thread.  The pf_net it was built from must outlive it and is only read.
 */
#ifndef PCF_ACPF_H
#define PCF_ACPF_H

#include <stddef.h>

#include "error.h"
#include "pfnet.h"

typedef struct pf_ac pf_ac;

typedef struct pf_ac_opts {
    int max_it;             /* Newton iterations allowed (MATPOWER: 10) */
    double tol;             /* largest |mismatch| in p.u. (MATPOWER: 1e-8) */
    int chord;              /* 1: for warm-started repeated solves, keep
                             * using the factors of the previous Jacobian
                             * (chord / "dishonest" Newton) while each step
                             * cuts the mismatch fourfold, refactorising
                             * otherwise.  Same tolerance, so the same
                             * answer to within it; fewer factorisations,
                             * more (cheaper) iterations.  0: exact Newton
                             * as MATPOWER (default). */
    int fresh;              /* 1: factorise from scratch at every iteration
                             * and keep nothing from earlier solves (chord
                             * is ignored).  The answer is then a function
                             * of (p, q, start) alone, bit for bit, whatever
                             * this object solved before -- what a Monte-
                             * Carlo study needs to be independent of how
                             * samples are spread over threads.  Costs a
                             * pivot search per iteration. */
} pf_ac_opts;

#define PF_AC_OPTS_DEFAULT ((pf_ac_opts){ .max_it = 10, .tol = 1e-8, .chord = 0, .fresh = 0 })

typedef struct pf_ac_stats {
    int converged;          /* 1 when max_mismatch < tol */
    int iterations;         /* Newton updates performed */
    int factorisations;     /* numeric (re)factorisations done */
    double max_mismatch;    /* p.u., at the returned point */
} pf_ac_stats;

/* Builds Ybus, the Jacobian pattern and its KLU symbolic analysis.
 * PCF_ERR_ISLAND if the network is split, PCF_ERR_SINGULAR if KLU cannot
 * analyse the pattern. */
pcf_rc pf_ac_new(const pf_net *net, pf_ac **out, pcf_error *err);

void pf_ac_destroy(pf_ac **ac);

/* MATPOWER's starting point: the case's Vm/Va (flat = 0: as stored; flat =
 * 1: Vm 1, every angle equal to the reference bus's angle from the data),
 * then Vg of the generators on PV and reference buses (the last generator
 * listed at a bus wins, as in MATLAB's indexed assignment).  vm, va: [nb],
 * va in radians. */
void pf_ac_start(const pf_ac *ac, int flat, double *vm, double *va);

/* Solves for specified net injections p, q ([nb] p.u.; NULL = the case's,
 * pf_net_injections) from the start vm, va ([nb], radians), which are
 * overwritten with the solution (angles wrapped to (-pi, pi]).  Set points
 * of PV/reference buses are the magnitudes found in vm.  Returns PCF_OK
 * with stats->converged = 1, PCF_ERR_NOCONV (stats filled; vm/va hold the
 * last iterate, which is not an answer) or PCF_ERR_SINGULAR. */
pcf_rc pf_ac_solve(pf_ac *ac, const double *p, const double *q, double *vm, double *va,
                   const pf_ac_opts *opts, pf_ac_stats *stats, pcf_error *err);

/* Newton solves that must not depend on each other (Monte-Carlo samples
 * spread over threads): pf_ac_pin factorises the Jacobian at (vm, va) with
 * the case's injections, choosing the pivot order there, and keeps these
 * factors apart from pf_ac_solve's.  pf_ac_solve_pinned then runs Newton
 * from vm, va, refactorising with that pivot order at every step
 * (klu_refactor: no pivot search, no allocation).  The answer depends only on the pinned point and the inputs, never on what was
 * solved before.  PCF_ERR_SINGULAR when the pinned pivots do not suit the
 * point, PCF_ERR_NOCONV after max_it steps: fall back to pf_ac_solve with
 * opts.fresh. */
pcf_rc pf_ac_pin(pf_ac *ac, const double *vm, const double *va, pcf_error *err);
pcf_rc pf_ac_solve_pinned(pf_ac *ac, const double *p, const double *q, double *vm, double *va, int max_it,
                          double tol, pf_ac_stats *stats, pcf_error *err);

/* Chord (simplified Newton) solves from a fixed point: pf_ac_chord_point
 * factorises the Jacobian at (vm, va), with a fresh pivot search, into
 * factors of its own; pf_ac_solve_chord then iterates x -= J0^-1 F(x) with
 * them, never refactorising, while each step at least halves the
 * mismatch.  Near the point (a Monte-Carlo sample near the operating point
 * it was linearised at) that costs a mismatch and two triangular solves a
 * step instead of a refactorisation; the answer depends only on the point
 * and the inputs.  PCF_ERR_NOCONV when the steps stall or max_it runs out
 * (vm, va then hold the last iterate): fall back to Newton. */
pcf_rc pf_ac_chord_point(pf_ac *ac, const double *vm, const double *va, pcf_error *err);
pcf_rc pf_ac_solve_chord(pf_ac *ac, const double *p, const double *q, double *vm, double *va, int max_it, double tol,
                         pf_ac_stats *stats, pcf_error *err);

/* Many injection vectors on one topology: sample s uses p + s*nb and
 * q + s*nb and writes vm + s*nb, va + s*nb.  Sample 0 starts from vm0/va0
 * ([nb]), every later sample from the last converged solution (warm start).
 * A sample that does not converge gets NaN voltages and stats[s].converged
 * = 0; the batch goes on.  Returns PCF_OK unless something other than
 * non-convergence went wrong. */
pcf_rc pf_ac_solve_batch(pf_ac *ac, size_t nsamples, const double *p, const double *q,
                         const double *vm0, const double *va0, double *vm, double *va,
                         const pf_ac_opts *opts, pf_ac_stats *stats, pcf_error *err);

/* Sensitivities of weighted sums of branch flows to the bus injections at
 * a solution (vm, va), the AC counterpart of a PTDF row with the losses and
 * the reactive flows of that operating point in it.  Row r of w ([nw x 2nl])
 * weighs the MW into the from end of branch l (w[r*2nl + l]) and into the
 * to end (w[r*2nl + nl + l]); the row's flow is f = sum w * P.  sp[r*nb + b]
 * (and sq, if not NULL) is df/dP_b (df/dQ_b), MW per MW (MVAr) injected at
 * bus b and taken at the reference bus: the adjoint J^T lambda = df/dx with
 * the Newton Jacobian at the point, factorised afresh (the answer depends
 * on the point alone).  The reference bus's column is 0, and so is sq at
 * PV buses (their Q is not specified).  PCF_ERR_SINGULAR if J is. */
pcf_rc pf_ac_sens(pf_ac *ac, const double *vm, const double *va, size_t nw, const double *w, double *sp,
                  double *sq, pcf_error *err);

/* Branch flows at a solution, MW/MVAr, into each end ([nl], in-service
 * branch order). */
void pf_ac_flows(const pf_ac *ac, const double *vm, const double *va,
                 double *pf, double *qf, double *pt, double *qt);

/* MW into the from and to end of in-service branch l alone (pf_ac_flows
 * for the few branches a caller monitors). */
void pf_ac_branch_p(const pf_ac *ac, const double *vm, const double *va, size_t l, double *pf, double *pt);

/* Generator dispatch at a solution of the case's own injections, as
 * MATPOWER's pfsoln: the first generator at the reference bus takes the
 * slack P; generators at PV/reference buses share the bus's Q in proportion
 * to their reactive ranges.  pg, qg: [ng] MW/MVAr. */
void pf_ac_gen(const pf_ac *ac, const double *vm, const double *va, double *pg, double *qg);

/* Sensitivity of voltage magnitudes to real power at a solution (vm, va),
 * from the Newton Jacobian J there (the linearised power-flow equations):
 * dvdp[k * nb + i] = dVm(bus[k]) / dP(i), p.u. per p.u. of base_mva, with
 * every reactive injection held and the reference bus taking the balance
 * (row jm of J^-1, one transposed KLU solve per monitored bus).  0 for the
 * reference bus's own injection and for a monitored bus whose magnitude a
 * generator holds.  Factorises afresh (allocates) and leaves the solver's
 * factors alone, so the answer depends on (vm, va) only.  bus: [nmon]
 * internal indices; dvdp: [nmon * nb]. */
pcf_rc pf_ac_vm_sens(pf_ac *ac, const double *vm, const double *va, size_t nmon, const int *bus, double *dvdp,
                     pcf_error *err);

/* Size of the Newton system (npv + 2 npq) and nonzeros of its Jacobian. */
size_t pf_ac_jac_dim(const pf_ac *ac);
size_t pf_ac_jac_nnz(const pf_ac *ac);

#endif
