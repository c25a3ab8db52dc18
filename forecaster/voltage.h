/*
 * voltage.h -- voltage constraints for the Monte-Carlo study: the voltage of
 * a monitored bus as a linear function of the bus injections, per settlement
 * period and network state (issue 5 item 4; sql/006_voltage.sql).
 *
 * Why linear: the study (study.h) needs every sample's "flow" of every
 * constraint in every network state, 10,000 samples a period; an AC solve
 * per sample and state is out of the time budget, while a bus's voltage
 * over the spread of one period's samples is close to linear in the
 * injections around the period's expected operating point.  Under AC
 * (study_set_ac) the samples near the limit are solved in full and read
 * the bus's AC voltage instead, and far above it the screened mode's second
 * tangent is the AC voltage's (study_set_voltage_bus): the model here
 * picks them and stands for the rest.
 *
 * Method, per SP and network state (intact, each credible fault; planned
 * outages of the SP applied), with the state's network as the study builds
 * it (study_topology_case/_fault_row/_dead: an islanding outage stays in
 * with its far side de-energised):
 *   1. AC Newton-Raphson (acpf.h) at the SP's expected injections p0, q0
 *      (the caller's: sites at their expected output and unity power
 *      factor, demand with its reactive power), from the flat start with
 *      fresh factorisations, so the answer depends on the inputs alone;
 *   2. dV/dP of each monitored bus to the real power injected at every bus,
 *      from the Jacobian at that solution (pf_ac_vm_sens: reactive
 *      injections held, the reference bus balancing);
 *   3. the constraint's "flow" in the ANM's generic form is the deviation
 *      from nominal in kV, (V - 1) * base_kv, and its linear model is
 *         flow(p) = off + sum_b row[b] * p[b],
 *         row[b] = dV/dP_b * base_kv / base_mva   (kV per MW),
 *         off    = (V0 - 1) * base_kv - sum_b row[b] * p0[b],
 *      so a sample's voltage is V0 + sum_b dV/dP_b (p_b - p0_b): first order
 *      in the injections, exact at p0.  Sites' sensitivities (kV per MW) are
 *      row at the site's bus.
 * A de-energised bus has no voltage to watch: its constraint's row and
 * offset are 0 in that state (the ANM never acts on it), and de-energised
 * buses' columns are 0 as in the DC states.  A state whose AC solve fails
 * takes the intact state's model (counted in voltage_fallbacks).  An intact
 * state that fails (the expected point past the nose of the PV curve)
 * linearises at the nearest solvable point instead: the sites' injections
 * scaled toward 0 in tenths (what the ANM would do to them), then, should
 * that not do, every injection; counted in voltage_fallbacks too.  Only a
 * network with no AC solution at zero injection is an error.
 *
 * A voltage object caches, per state of the topology last seen, the state's
 * network and AC solver; it belongs to one thread.
 */
#ifndef PCF_VOLTAGE_H
#define PCF_VOLTAGE_H

#include <stddef.h>

#include "error.h"
#include "mpcase.h"
#include "study.h"

typedef struct voltage voltage;

typedef struct voltage_def {
    const mp_case *net;         /* the study's network (study_def.net) */
    size_t nv;                  /* monitored buses (voltage constraints) */
    const int *bus_row;         /* [nv] mpc.bus rows */
    const double *base_kv;      /* [nv] > 0: kV of 1 p.u. at the bus */
} voltage_def;

pcf_rc voltage_new(const voltage_def *def, voltage **out, pcf_error *err);
void voltage_destroy(voltage **v);

/* Buses of the network's internal index (pfnet.h), the length of a row. */
size_t voltage_nb(const voltage *v);

/* The linear models of one SP in every state of topology t (which must be
 * built on def.net).  p_mw, q_mvar: [mpc.bus rows] expected net injection per
 * case bus row (de-energised buses are zeroed here); p_site: [mpc.bus rows]
 * the sites' part of p_mw, scaled back when the intact point has no AC
 * solution, or NULL (then every injection is).  Out: row [nst * nv *
 * nb] kV per MW by internal bus, off [nst * nv] kV, both in the layout
 * study_sp.lin_row/lin_off take; vm0 [nst * nv] the operating point's
 * voltage in p.u. (0 when de-energised), or NULL. */
pcf_rc voltage_linearise(voltage *v, const study_topology *t, const double *p_mw, const double *q_mvar,
                         const double *p_site, double *row, double *off, double *vm0, pcf_error *err);

/* States, over every call so far, whose AC solve failed: fault states that
 * took the intact state's model, intact states linearised at a scaled-back
 * point. */
size_t voltage_fallbacks(const voltage *v);

#endif
