/*
 * voltage.c -- linear voltage models per SP and network state; see
 * voltage.h for the method.
 *
 * Cache: one slot per network state of the topology last seen (keyed by
 * study_topology_id), holding the state's case (the topology's case with
 * the fault's branch out), its pf_net and pf_ac.  Building one costs a
 * Ybus and a KLU symbolic analysis; the SPs of a run mostly share one
 * topology, so each state is built once a run.
 */
#include "voltage.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpf.h"
#include "pfnet.h"

typedef struct v_slot {
    uint64_t topo_id;           /* 0: empty */
    int ok;                     /* 0: AC cannot take this state's network */
    mp_case *c;
    pf_net *net;
    pf_ac *ac;
} v_slot;

struct voltage {
    const mp_case *net;
    size_t nv, nb, nst_cap;
    int *bus_row;               /* [nv] */
    double *base_kv;            /* [nv] */
    int *mon;                   /* [nv] internal index of each monitored bus */
    pf_net *base;               /* the network's internal index */
    v_slot *slot;               /* [nst_cap] */
    double *p, *q, *vm, *va, *dvdp;     /* scratch: [nb] x4, [nv * nb] */
    size_t fallbacks;
};

static void s_slot_clear(v_slot *s)
{
    pf_ac_destroy(&s->ac);
    pf_net_destroy(&s->net);
    mp_case_destroy(&s->c);
    memset(s, 0, sizeof *s);
}

void voltage_destroy(voltage **vp)
{
    if (!vp || !*vp) return;
    voltage *v = *vp;
    for (size_t i = 0; v->slot && i < v->nst_cap; i++) s_slot_clear(&v->slot[i]);
    free(v->slot);
    free(v->bus_row);
    free(v->base_kv);
    free(v->mon);
    pf_net_destroy(&v->base);
    free(v->p);
    free(v->q);
    free(v->vm);
    free(v->va);
    free(v->dvdp);
    free(v);
    *vp = NULL;
}

pcf_rc voltage_new(const voltage_def *def, voltage **out, pcf_error *err)
{
    *out = NULL;
    if (!def || !def->net) return pcf_error_set(err, PCF_ERR_INVALID, "voltage: no network");
    voltage *v = calloc(1, sizeof *v);
    if (!v) return pcf_error_set(err, PCF_ERR_NOMEM, "voltage: out of memory");
    v->net = def->net;
    v->nv = def->nv;
    pcf_rc rc = pf_net_new(def->net, &v->base, err);
    if (rc != PCF_OK) {
        voltage_destroy(&v);
        return rc;
    }
    size_t nb = v->nb = v->base->nb;
    v->bus_row = calloc(v->nv + 1, sizeof(int));
    v->base_kv = calloc(v->nv + 1, sizeof(double));
    v->mon = calloc(v->nv + 1, sizeof(int));
    v->p = malloc((nb + 1) * sizeof(double));
    v->q = malloc((nb + 1) * sizeof(double));
    v->vm = malloc((nb + 1) * sizeof(double));
    v->va = malloc((nb + 1) * sizeof(double));
    v->dvdp = malloc((v->nv * nb + 1) * sizeof(double));
    if (!v->bus_row || !v->base_kv || !v->mon || !v->p || !v->q || !v->vm || !v->va || !v->dvdp) {
        voltage_destroy(&v);
        return pcf_error_set(err, PCF_ERR_NOMEM, "voltage: out of memory");
    }
    for (size_t k = 0; k < v->nv; k++) {
        int row = def->bus_row[k];
        double kv = def->base_kv[k];
        if (row < 0 || (size_t)row >= def->net->bus.rows || v->base->row_bus[row] < 0 || !(kv > 0) || !isfinite(kv)) {
            rc = pcf_error_set(err, PCF_ERR_INVALID,
                               "voltage: constraint %zu: bus row %d (base %g kV) is not an energised bus of the case",
                               k, row, kv);
            voltage_destroy(&v);
            return rc;
        }
        v->bus_row[k] = row;
        v->base_kv[k] = kv;
        v->mon[k] = v->base->row_bus[row];
    }
    *out = v;
    return PCF_OK;
}

size_t voltage_nb(const voltage *v)
{
    return v->nb;
}

size_t voltage_fallbacks(const voltage *v)
{
    return v->fallbacks;
}

/* The slot of `state`, set up for topology t.  A network AC cannot take
 * leaves ok = 0. */
static pcf_rc s_slot(voltage *v, const study_topology *t, size_t state, v_slot **out, pcf_error *err)
{
    v_slot *s = &v->slot[state];
    *out = s;
    uint64_t id = study_topology_id(t);
    if (s->topo_id == id) return PCF_OK;
    s_slot_clear(s);
    s->topo_id = id;
    const mp_case *c = study_topology_case(t);
    s->c = mp_case_new(c->bus.rows, c->bus.cols, c->gen.rows, c->gen.cols, c->branch.rows, c->branch.cols);
    if (!s->c) {
        s_slot_clear(s);
        return pcf_error_set(err, PCF_ERR_NOMEM, "voltage: out of memory");
    }
    s->c->base_mva = c->base_mva;
    memcpy(s->c->bus.v, c->bus.v, c->bus.rows * c->bus.cols * sizeof(double));
    if (c->gen.rows) memcpy(s->c->gen.v, c->gen.v, c->gen.rows * c->gen.cols * sizeof(double));
    if (c->branch.rows) memcpy(s->c->branch.v, c->branch.v, c->branch.rows * c->branch.cols * sizeof(double));
    int out_row = study_topology_fault_row(t, state);
    if (out_row >= 0 && (size_t)out_row < c->branch.rows) MP_AT(&s->c->branch, (size_t)out_row, MP_BR_STATUS) = 0;
    pcf_error e2;
    if (pf_net_new(s->c, &s->net, &e2) != PCF_OK || s->net->nb != v->nb || pf_ac_new(s->net, &s->ac, &e2) != PCF_OK)
        return PCF_OK;          /* ok stays 0 */
    s->ok = 1;
    return PCF_OK;
}

/* AC solve of state `st` at v->p, v->q and its model into row/off/vm0
 * (this state's parts).  *solved = 0: AC failed, nothing written. */
static pcf_rc s_state(voltage *v, const study_topology *t, size_t st, double *row, double *off, double *vm0,
                      int *solved, pcf_error *err)
{
    *solved = 0;
    v_slot *s;
    pcf_rc rc = s_slot(v, t, st, &s, err);
    if (rc != PCF_OK || !s->ok) return rc;
    size_t nb = v->nb;
    pf_ac_opts o = PF_AC_OPTS_DEFAULT;
    o.fresh = 1;
    pcf_error e2;
    pf_ac_start(s->ac, 1, v->vm, v->va);
    if (pf_ac_solve(s->ac, v->p, v->q, v->vm, v->va, &o, NULL, &e2) != PCF_OK) return PCF_OK;
    if (pf_ac_vm_sens(s->ac, v->vm, v->va, v->nv, v->mon, v->dvdp, &e2) != PCF_OK) return PCF_OK;
    double base = s->net->base_mva;
    for (size_t k = 0; k < v->nv; k++) {
        double *r = &row[k * nb];
        double kv = v->base_kv[k];
        if (study_topology_dead(t, st, (size_t)v->bus_row[k])) {
            memset(r, 0, nb * sizeof(double));
            off[k] = 0;
            if (vm0) vm0[k] = 0;
            continue;
        }
        double lin = 0;
        for (size_t b = 0; b < nb; b++) {
            int dead = study_topology_dead(t, st, (size_t)s->net->bus_row[b]);
            r[b] = dead ? 0 : v->dvdp[k * nb + b] * kv / base;
            lin += r[b] * v->p[b] * base;
        }
        off[k] = (v->vm[v->mon[k]] - 1) * kv - lin;
        if (vm0) vm0[k] = v->vm[v->mon[k]];
    }
    *solved = 1;
    return PCF_OK;
}

pcf_rc voltage_linearise(voltage *v, const study_topology *t, const double *p_mw, const double *q_mvar, double *row,
                         double *off, double *vm0, pcf_error *err)
{
    size_t nst = study_topology_states(t), nb = v->nb, nv = v->nv;
    if (study_topology_case(t)->bus.rows != v->net->bus.rows)
        return pcf_error_set(err, PCF_ERR_INVALID, "voltage: topology built on another network");
    if (nst > v->nst_cap) {
        for (size_t i = 0; v->slot && i < v->nst_cap; i++) s_slot_clear(&v->slot[i]);
        free(v->slot);
        v->slot = calloc(nst, sizeof *v->slot);
        v->nst_cap = v->slot ? nst : 0;
        if (!v->slot) return pcf_error_set(err, PCF_ERR_NOMEM, "voltage: out of memory");
    }
    if (nv == 0) return PCF_OK;
    double base = v->base->base_mva;
    for (size_t b = 0; b < nb; b++) {
        int r = v->base->bus_row[b];
        if (!isfinite(p_mw[r]) || !isfinite(q_mvar[r]))
            return pcf_error_set(err, PCF_ERR_INVALID, "voltage: injection at bus row %d is not finite", r);
    }
    for (size_t st = 0; st < nst; st++) {
        /* the state's injections: nothing flows into a de-energised bus */
        for (size_t b = 0; b < nb; b++) {
            int r = v->base->bus_row[b];
            int dead = study_topology_dead(t, st, (size_t)r);
            v->p[b] = dead ? 0 : p_mw[r] / base;
            v->q[b] = dead ? 0 : q_mvar[r] / base;
        }
        double *vm_st = vm0 ? &vm0[st * nv] : NULL;
        int solved = 0;
        pcf_rc rc = PCF_OK;
        if (st == 0 || study_topology_valid(t, st))
            rc = s_state(v, t, st, &row[st * nv * nb], &off[st * nv], vm_st, &solved, err);
        if (rc != PCF_OK) return rc;
        if (solved) continue;
        if (st == 0)
            return pcf_error_set(err, PCF_ERR_NOCONV,
                                 "voltage: no AC solution of the intact network at the expected injections");
        /* A fault state AC cannot solve (or one that cannot happen) takes
         * the intact model: better than none, and counted. */
        memcpy(&row[st * nv * nb], row, nv * nb * sizeof(double));
        memcpy(&off[st * nv], off, nv * sizeof(double));
        if (vm_st) memcpy(vm_st, vm0, nv * sizeof(double));
        v->fallbacks += study_topology_valid(t, st) ? 1 : 0;
    }
    return PCF_OK;
}
