/*
 * dcpf.h -- DC power flow (MATPOWER's makeBdc/dcpf conventions).
 *
 * Branch susceptance b = 1/(x * tap) (tap 0 -> 1); r, line charging and bus
 * Bs are ignored; a phase shifter of angle s adds the injection -b s at its
 * from bus and +b s at its to bus; bus Gs is taken from the injections as a
 * load.  P = B theta with the reference bus's angle fixed at the value in
 * the data, so the reference bus absorbs the mismatch -- or, with a slack
 * weight vector w (w >= 0, sum 1), every bus i absorbs w_i of it.
 *
 * pf_dc_new() assembles B with the reference row and column removed and
 * factorises it once with KLU; every solve is then two triangular sweeps.
 * A pf_dc holds KLU workspace and scratch: one per thread.  The pf_net must
 * outlive it.
 */
#ifndef PCF_DCPF_H
#define PCF_DCPF_H

#include <stddef.h>

#include "error.h"
#include "pfnet.h"

typedef struct pf_dc pf_dc;

/* PCF_ERR_ISLAND for a split network, PCF_ERR_INVALID for x = 0 on an
 * in-service branch, PCF_ERR_SINGULAR if B cannot be factorised. */
pcf_rc pf_dc_new(const pf_net *net, pf_dc **out, pcf_error *err);

void pf_dc_destroy(pf_dc **dc);

/* PCF_OK when w ([nb]) is finite, non-negative and sums to 1 within 1e-9. */
pcf_rc pf_dc_check_weights(const pf_net *net, const double *w, pcf_error *err);

/* Solves for net injections p ([nb] p.u.; NULL = the case's Pg - Pd).
 * w: slack weights ([nb]) or NULL for the reference bus.  Outputs (each
 * may be NULL): va [nb] radians, flow [nl] MW from-end flows (PT = -PF),
 * slack [nb] MW each bus absorbs (added generation). */
pcf_rc pf_dc_solve(pf_dc *dc, const double *p, const double *w, double *va,
                   double *flow, double *slack, pcf_error *err);

/* Branch susceptances b = 1/(x tap) ([nl], p.u.), read-only. */
const double *pf_dc_branch_b(const pf_dc *dc);

/* Solves B_r X = R in place for nrhs right-hand sides, each of length
 * nb - 1 (bus order with the reference bus left out), right-hand side k
 * starting at rhs + k*ld (ld >= nb - 1).  Used for PTDF. */
pcf_rc pf_dc_solve_reduced(pf_dc *dc, double *rhs, size_t ld, size_t nrhs, pcf_error *err);

#endif
