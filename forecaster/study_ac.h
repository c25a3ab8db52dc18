/*
 * study_ac.h -- AC Newton-Raphson for the Monte-Carlo samples that lie near
 * a limit (issue 5 item 4; DESIGN.md section 5).
 *
 * The DC model leaves out losses and reactive flows; near a limit they
 * decide whether and how much the ANM curtails.  The study (study.h) runs in
 * one of four modes (study_set_ac):
 *   - STUDY_AC_SCREEN (the engine's default): per SP and network state,
 *     study_ac_linearise solves the AC operating point at the samples' mean
 *     injections and gives the constraint flows linearised there, which
 *     replace the DC rows; samples within a narrow band of the acting level
 *     are solved in full here, warm from that point with chord steps on its
 *     factors (study_ac_sample with point_id);
 *   - STUDY_AC_BAND: a sample is solved in full when its DC loading of some
 *     constraint is >= (1 - band) * trim * limit;
 *   - STUDY_AC_ALL: every sample; STUDY_AC_OFF: none.
 *
 * One sample:
 *   - injections: the sample's own net injection per bus (sites at their
 *     available output, firm plant, sampled demand), de-energised buses at
 *     zero; demand draws reactive power at power factor 0.95 lagging
 *     (STUDY_AC_DEMAND_PF), sites run at unity power factor;
 *   - network: the topology's case (planned outages out) with the state's
 *     faulted branch out; an islanding fault stays in with its island
 *     de-energised, as in the DC states;
 *   - start: the operating point when given (chord steps on its factors,
 *     tolerance STUDY_AC_CHORD_TOL), else Vm of the case's flat start with
 *     generator set points and Va from the DC power flow of the same
 *     injections; then Newton on pivots pinned at the flat start, then with
 *     fresh factorisations, so the answer is a function of the sample (and
 *     the point) alone and the study stays bit-identical for any thread
 *     count;
 *   - constraint flow: the signed sum of the sending-end MW of its branches
 *     (the larger-magnitude end, in the direction of the flow), which is
 *     what the ANM's measurement sees and includes the branch's losses; a
 *     voltage constraint's (study_ac_set_voltage) is its bus's deviation
 *     from nominal in the solution, (Vm - 1) * kV, as voltage.h's linear
 *     model, 0 at a de-energised bus;
 *   - ANM: the NGED emulation (anm.h) on the AC flows with the state's DC
 *     sensitivities; then the curtailed injections are solved again and
 *     the ANM re-run on the AC flows corrected by what the linear model
 *     missed (f_in = f_ac(curtailed) + sens * curtailment), until the
 *     curtailment moves by less than STUDY_AC_TOL_MW, at most
 *     STUDY_AC_ROUNDS rounds (the last round stands if they run out).
 *   - no solution before the ANM acts (the injections ask more than the
 *     network can carry): the ANM acts on the caller's linear flows and the
 *     curtailed injections are solved instead, the state that exists;
 *   - fallback: a state whose network cannot be set up for AC, or a solve
 *     that does not converge, leaves the sample on its linear result; the
 *     caller counts it (engine_report.ac_fallbacks).
 *
 * A study_ac belongs to one worker thread: it caches, per network state of
 * the last topology seen, the AC and DC solvers (rebuilt when the topology
 * changes) and holds all scratch.
 */
#ifndef PCF_STUDY_AC_H
#define PCF_STUDY_AC_H

#include <stddef.h>
#include <stdint.h>

#include "anm.h"
#include "error.h"
#include "mpcase.h"

/* STUDY_AC_SCREEN is 0 so that zeroed engine options (engine.h) get it;
 * study_new itself starts at STUDY_AC_OFF. */
enum { STUDY_AC_SCREEN = 0, STUDY_AC_OFF = 1, STUDY_AC_BAND = 2, STUDY_AC_ALL = 3 };

/* STUDY_AC_SCREEN: the full solve for samples whose linearised loading is
 * within this fraction of the acting level, either side (methodology R.8). */
#define STUDY_AC_SCREEN_BAND 0.0025

#define STUDY_AC_DEMAND_PF 0.95
#define STUDY_AC_ROUNDS 5
#define STUDY_AC_TOL_MW 1e-3
/* the same in the screened mode: 10 kW, inside any ANM margin; the rounds
 * it saves are a third of the full solves */
#define STUDY_AC_SCREEN_TOL_MW 1e-2
/* s_secant (study_ac.c): a move of the linear flow below this (MW) says
 * too little about the AC response to correct a sensitivity by */
#define STUDY_AC_SECANT_MIN 1e-3

typedef struct study_ac study_ac;

/* nc constraints, each the signed sum of case branch rows (as study_def);
 * nst network states per topology; ns sites. */
typedef struct study_ac_def {
    size_t nc, ns, nst;
    const size_t *nbr;            /* [nc] */
    const int *const *branch_row; /* [nc][nbr[c]] */
    const double *const *sign;    /* [nc][nbr[c]] */
} study_ac_def;

pcf_rc study_ac_new(const study_ac_def *def, study_ac **out, pcf_error *err);
void study_ac_destroy(study_ac **a);

/* Voltage constraints measured in the full solve: bus_row, kv ([nc]) the
 * case bus row whose Vm constraint c is and its kV of 1 p.u.; constraints
 * with branches, rows < 0 and NULL arrays are not (they keep the caller's
 * linear flow).  Copied. */
void study_ac_set_voltage(study_ac *a, const int *bus_row, const double *kv);

/* One sample in state `state` of the topology `topo_id` whose case (planned
 * outages applied) is c, with `out_row` (case row, -1 none) also out.
 * p_mw: [nb] net injection per internal bus with every site at its
 * available output; q_mvar: [nb] likewise; site_bus: [ns] internal bus of
 * each site.  dead: [case bus rows] 1 = de-energised in this state, or
 * NULL.  in: the DC ANM input (limits, sensitivities, avail; its flow is
 * read only for constraints without branches and without a monitored bus,
 * which keep their linear flow).  On success (*used = 1) res
 * is the ANM's answer on AC flows and flow_pre ([nc]) the AC constraint
 * flows before curtailment.
 * *used = 0: the AC solve failed or the state cannot be solved; res is
 * untouched -- but the anm object was used, so the caller re-runs its DC
 * anm_solve.  Errors other than non-convergence are returned. */
pcf_rc study_ac_sample(study_ac *a, uint64_t topo_id, size_t state, const mp_case *c, int out_row,
                       const double *p_mw, const double *q_mvar, const int *site_bus, uint64_t point_id,
                       const double *vm0, const double *va0, const unsigned char *dead, anm *A,
                       const anm_input *in, anm_result *res, double *flow_pre, int *used, pcf_error *err);

/* The operating point of state `state` for injections p_mw, q_mvar (as
 * study_ac_sample) and the constraint flows linearised there: f0 ([nc] MW)
 * the AC constraint flows at the point, rows ([nc x nb]) their sensitivity
 * to the P injected at every internal bus (pf_ac_sens: the "AC PTDF" of the
 * point, losses and reactive flows in it), vm, va ([nb]) the point itself,
 * for warm starts.  volt_dead ([case bus rows], 1 = de-energised), when
 * given, linearises the measured voltage constraints (study_ac_set_voltage)
 * too: f0 (Vm - 1) * kV, rows dVm/dP in kV per MW (pf_ac_vm_sens), 0 at a
 * de-energised bus; NULL leaves them 0.  *ok = 0 when the state cannot be
 * solved with AC or the point does not converge; the outputs are then
 * untouched. */
pcf_rc study_ac_linearise(study_ac *a, uint64_t topo_id, size_t state, const mp_case *c, int out_row,
                          const double *p_mw, const double *q_mvar, const unsigned char *volt_dead, double *rows,
                          double *f0, double *vm, double *va, int *ok, pcf_error *err);

#endif
