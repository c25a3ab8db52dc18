/*
 * study_ac.c -- AC re-solve of near-limit Monte-Carlo samples; see
 * study_ac.h for the method.
 *
 * Cache: one slot per network state (intact, fault k) of the topology last
 * seen.  A slot holds its own copy of the case with the fault's branch out,
 * the pf_net, the AC and DC solvers and, per constraint branch, its
 * internal branch index.  Building a slot costs a Ybus, a KLU symbolic
 * analysis and a DC factorisation (tens of microseconds on the demo zone);
 * it happens once per thread, topology and state actually met.
 */
#include "study_ac.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "acpf.h"
#include "dcpf.h"
#include "pfnet.h"

#define STUDY_AC_PINNED_IT 10
#define STUDY_AC_CHORD_IT 12
/* 1e-6 p.u. is 0.1 kW on 100 MVA: far inside any ANM margin, and half the
 * chord steps of Newton's 1e-8 */
#define STUDY_AC_CHORD_TOL 1e-5

typedef struct ac_slot {
    uint64_t topo_id;       /* 0: empty */
    int ok;                 /* 0: the state cannot be solved with AC: fall back */
    mp_case *c;
    pf_net *net;
    pf_ac *ac;
    pf_dc *dc;
    int *br;                /* [total constraint branches] internal index, -1 out */
    uint64_t chord_id;      /* operating point the chord factors are of, 0 none */
    int chord_ok;
} ac_slot;

struct study_ac {
    study_ac_def def;
    size_t nbr_total;
    size_t *nbr;
    int *rows;              /* [nbr_total] */
    double *signs;          /* [nbr_total] */
    ac_slot *slot;          /* [nst] */
    size_t cap_nb, cap_nl;  /* scratch sizes */
    double *p, *q, *vm, *va, *vm0, *va0, *pf, *pt;
    double *f_ac, *f_in, *curt, *curt_new;
    /* the rounds' sensitivities, corrected by secant (s_secant), and the
     * AC point the last correction was measured from */
    double *sens, *f_prev, *curt_prev;      /* [nc * ns], [nc], [ns] */
    int *vrow;              /* [nc] case bus row whose Vm a constraint is (study_ac_set_voltage), -1 none */
    double *vkv;            /* [nc] its kV of 1 p.u. */
    const unsigned char *dead;  /* the sample's state's de-energised case buses, or NULL */
};

static void s_slot_clear(ac_slot *s)
{
    pf_ac_destroy(&s->ac);
    pf_dc_destroy(&s->dc);
    pf_net_destroy(&s->net);
    mp_case_destroy(&s->c);
    free(s->br);
    memset(s, 0, sizeof *s);
}

void study_ac_destroy(study_ac **ap)
{
    if (!ap || !*ap) return;
    study_ac *a = *ap;
    for (size_t i = 0; a->slot && i < a->def.nst; i++) s_slot_clear(&a->slot[i]);
    free(a->slot);
    free(a->nbr);
    free(a->rows);
    free(a->signs);
    free(a->p); free(a->q); free(a->vm); free(a->va); free(a->vm0); free(a->va0); free(a->pf); free(a->pt);
    free(a->f_ac); free(a->f_in); free(a->curt); free(a->curt_new);
    free(a->sens); free(a->f_prev); free(a->curt_prev);
    free(a->vrow); free(a->vkv);
    free(a);
    *ap = NULL;
}

pcf_rc study_ac_new(const study_ac_def *def, study_ac **out, pcf_error *err)
{
    *out = NULL;
    study_ac *a = calloc(1, sizeof *a);
    if (!a) return pcf_error_set(err, PCF_ERR_NOMEM, "study_ac: out of memory");
    a->def = *def;
    for (size_t c = 0; c < def->nc; c++) a->nbr_total += def->nbr[c];
    a->nbr = calloc(def->nc + 1, sizeof(size_t));
    a->rows = calloc(a->nbr_total + 1, sizeof(int));
    a->signs = calloc(a->nbr_total + 1, sizeof(double));
    a->slot = calloc(def->nst + 1, sizeof(ac_slot));
    a->f_ac = calloc(def->nc + 1, sizeof(double));
    a->f_in = calloc(def->nc + 1, sizeof(double));
    a->curt = calloc(def->ns + 1, sizeof(double));
    a->curt_new = calloc(def->ns + 1, sizeof(double));
    a->sens = calloc(def->nc * def->ns + 1, sizeof(double));
    a->f_prev = calloc(def->nc + 1, sizeof(double));
    a->curt_prev = calloc(def->ns + 1, sizeof(double));
    a->vrow = malloc((def->nc + 1) * sizeof(int));
    a->vkv = calloc(def->nc + 1, sizeof(double));
    if (!a->nbr || !a->rows || !a->signs || !a->slot || !a->f_ac || !a->f_in || !a->curt || !a->curt_new || !a->vrow ||
        !a->sens || !a->f_prev || !a->curt_prev ||
        !a->vkv) {
        study_ac_destroy(&a);
        return pcf_error_set(err, PCF_ERR_NOMEM, "study_ac: out of memory");
    }
    size_t k = 0;
    for (size_t c = 0; c < def->nc; c++) {
        a->vrow[c] = -1;
        a->nbr[c] = def->nbr[c];
        for (size_t i = 0; i < def->nbr[c]; i++, k++) {
            a->rows[k] = def->branch_row[c][i];
            a->signs[k] = def->sign[c][i];
        }
    }
    a->def.nbr = a->nbr;
    a->def.branch_row = NULL;    /* the copies above are used from here on */
    a->def.sign = NULL;
    *out = a;
    return PCF_OK;
}

void study_ac_set_voltage(study_ac *a, const int *bus_row, const double *kv)
{
    for (size_t c = 0; c < a->def.nc; c++) {
        int ok = bus_row && kv && a->nbr[c] == 0 && bus_row[c] >= 0 && kv[c] > 0 && isfinite(kv[c]);
        a->vrow[c] = ok ? bus_row[c] : -1;
        a->vkv[c] = ok ? kv[c] : 0;
    }
}

static pcf_rc s_scratch(study_ac *a, size_t nb, size_t nl, pcf_error *err)
{
    if (nb <= a->cap_nb && nl <= a->cap_nl) return PCF_OK;
    size_t mb = nb > a->cap_nb ? nb : a->cap_nb, ml = nl > a->cap_nl ? nl : a->cap_nl;
    double **v[] = { &a->p, &a->q, &a->vm, &a->va, &a->vm0, &a->va0 };
    for (size_t i = 0; i < 6; i++) {
        free(*v[i]);
        *v[i] = malloc((mb + 1) * sizeof(double));
    }
    free(a->pf);
    free(a->pt);
    a->pf = malloc((ml + 1) * sizeof(double));
    a->pt = malloc((ml + 1) * sizeof(double));
    if (!a->p || !a->q || !a->vm || !a->va || !a->vm0 || !a->va0 || !a->pf || !a->pt) {
        a->cap_nb = a->cap_nl = 0;
        return pcf_error_set(err, PCF_ERR_NOMEM, "study_ac: out of memory");
    }
    a->cap_nb = mb;
    a->cap_nl = ml;
    return PCF_OK;
}

/* Sets up the slot of `state` for topology topo_id.  A network AC cannot
 * take (split, singular) leaves ok = 0: every sample in it falls back. */
static pcf_rc s_slot(study_ac *a, uint64_t topo_id, size_t state, const mp_case *c, int out_row, ac_slot **out,
                     pcf_error *err)
{
    ac_slot *s = &a->slot[state];
    *out = s;
    if (s->topo_id == topo_id) return PCF_OK;
    s_slot_clear(s);
    s->topo_id = topo_id;
    s->c = mp_case_new(c->bus.rows, c->bus.cols, c->gen.rows, c->gen.cols, c->branch.rows, c->branch.cols);
    s->br = malloc((a->nbr_total + 1) * sizeof(int));
    if (!s->c || !s->br) {
        s_slot_clear(s);
        return pcf_error_set(err, PCF_ERR_NOMEM, "study_ac: out of memory");
    }
    s->c->base_mva = c->base_mva;
    memcpy(s->c->bus.v, c->bus.v, c->bus.rows * c->bus.cols * sizeof(double));
    if (c->gen.rows) memcpy(s->c->gen.v, c->gen.v, c->gen.rows * c->gen.cols * sizeof(double));
    if (c->branch.rows) memcpy(s->c->branch.v, c->branch.v, c->branch.rows * c->branch.cols * sizeof(double));
    if (out_row >= 0 && (size_t)out_row < c->branch.rows) MP_AT(&s->c->branch, (size_t)out_row, MP_BR_STATUS) = 0;
    pcf_error e2;
    if (pf_net_new(s->c, &s->net, &e2) != PCF_OK || pf_ac_new(s->net, &s->ac, &e2) != PCF_OK ||
        pf_dc_new(s->net, &s->dc, &e2) != PCF_OK)
        return PCF_OK;          /* ok stays 0 */
    pcf_rc rc = s_scratch(a, s->net->nb, s->net->nl, err);
    if (rc != PCF_OK) {
        s_slot_clear(s);        /* else the next sample would take it as set up, and solve DC */
        return rc;
    }
    /* The pivot order: chosen at the flat start, a point that depends on
     * the state alone, never on which samples this thread met first. */
    pf_ac_start(s->ac, 1, a->vm, a->va);
    if (pf_ac_pin(s->ac, a->vm, a->va, &e2) != PCF_OK) return PCF_OK;
    for (size_t k = 0; k < a->nbr_total; k++)
        s->br[k] = a->rows[k] >= 0 && (size_t)a->rows[k] < s->net->nbr_case ? s->net->row_br[a->rows[k]] : -1;
    s->ok = 1;
    return PCF_OK;
}

/* Solves the slot's network for a->p, a->q (p.u.) from a->vm, a->va and
 * leaves the constraint flows in a->f_ac.  0: did not converge. */
static int s_solve(study_ac *a, ac_slot *s, int chord, pcf_error *err)
{
    pf_ac_opts o = PF_AC_OPTS_DEFAULT;
    o.fresh = 1;
    pf_ac_stats st;
    size_t nb = s->net->nb;
    memcpy(a->vm0, a->vm, nb * sizeof(double));
    memcpy(a->va0, a->va, nb * sizeof(double));
    /* Chord steps on the operating point's factors when the caller has one
     * (a sample near it converges in a few); else, or if they stall,
     * Newton on the pivot order pinned at the flat start; then fresh
     * factorisations from the same start.  Each depends on the sample
     * (and the operating point) alone. */
    int done = chord && s->chord_ok &&
               pf_ac_solve_chord(s->ac, a->p, a->q, a->vm, a->va, STUDY_AC_CHORD_IT, STUDY_AC_CHORD_TOL, &st, err) == PCF_OK;
    if (!done && chord && s->chord_ok) {
        memcpy(a->vm, a->vm0, nb * sizeof(double));
        memcpy(a->va, a->va0, nb * sizeof(double));
    }
    if (!done && pf_ac_solve_pinned(s->ac, a->p, a->q, a->vm, a->va, STUDY_AC_PINNED_IT, o.tol, &st, err) != PCF_OK) {
        memcpy(a->vm, a->vm0, nb * sizeof(double));
        memcpy(a->va, a->va0, nb * sizeof(double));
        if (pf_ac_solve(s->ac, a->p, a->q, a->vm, a->va, &o, &st, err) != PCF_OK) return 0;
    }
    size_t k = 0;
    for (size_t c = 0; c < a->def.nc; c++) {
        double f = 0;
        for (size_t i = 0; i < a->nbr[c]; i++, k++) {
            int l = s->br[k];
            if (l < 0) continue;            /* out in this state: carries nothing */
            pf_ac_branch_p(s->ac, a->vm, a->va, (size_t)l, &a->pf[l], &a->pt[l]);
            double from = a->pf[l], to = -a->pt[l];
            /* sending end: the larger-magnitude end, in the flow's direction */
            double send = from + to >= 0 ? fmax(from, to) : fmin(from, to);
            f += a->signs[k] * send;
        }
        a->f_ac[c] = f;
    }
    return 1;
}

/* The voltage constraints' flows in a->f_ac from the solution in a->vm,
 * (Vm - 1) * kV as voltage.h's linear model; 0 at a de-energised bus, as
 * there. */
static void s_volt_flows(study_ac *a, ac_slot *s)
{
    for (size_t c = 0; c < a->def.nc; c++) {
        int row = a->vrow[c];
        if (row < 0) continue;
        int b = (size_t)row < s->net->nbus_case ? s->net->row_bus[row] : -1;
        a->f_ac[c] = b < 0 || (a->dead && a->dead[row]) ? 0 : (a->vm[b] - 1) * a->vkv[c];
    }
}

/* a->p, a->q from MW/MVAr; a->vm, a->va: vm0, va0 if given, else the flat
 * start's magnitudes and the DC angles of the same injections.  0: the DC
 * solve failed. */
/* Secant correction of the rounds' sensitivities.  Between two AC
 * solutions the flow of constraint k moved by f_prev - f_ac where the
 * linear model said sens_k . (curt - curt_prev); their ratio, applied to
 * row k, makes the next round's curtailment land on the AC limit in one
 * step where the uncorrected row (off by the change of losses along the
 * way, 10-15 % on the demo zone) took four or five rounds.  Only rows the
 * AC solve measures, only a move the linear model sees (1 kW), only a
 * ratio within 0.5..2 (anything else is not a smooth response). */
static void s_secant(study_ac *a)
{
    size_t nc = a->def.nc, ns = a->def.ns;
    for (size_t k = 0; k < nc; k++) {
        if (a->nbr[k] == 0 && a->vrow[k] < 0) continue;
        double *row = &a->sens[k * ns], pred = 0;
        for (size_t i = 0; i < ns; i++) pred += row[i] * (a->curt[i] - a->curt_prev[i]);
        if (!(fabs(pred) > STUDY_AC_SECANT_MIN)) continue;
        double ratio = (a->f_prev[k] - a->f_ac[k]) / pred;
        if (!(ratio >= 0.5 && ratio <= 2)) continue;
        for (size_t i = 0; i < ns; i++) row[i] *= ratio;
    }
}

static int s_start(study_ac *a, ac_slot *s, const double *p_mw, const double *q_mvar, const double *vm0,
                   const double *va0)
{
    size_t nb = s->net->nb;
    double base = s->net->base_mva;
    for (size_t b = 0; b < nb; b++) {
        a->p[b] = p_mw[b] / base;
        a->q[b] = q_mvar[b] / base;
    }
    if (vm0 && va0) {
        memcpy(a->vm, vm0, nb * sizeof(double));
        memcpy(a->va, va0, nb * sizeof(double));
        return 1;
    }
    pf_ac_start(s->ac, 1, a->vm, a->va);
    pcf_error e2;
    return pf_dc_solve(s->dc, a->p, NULL, a->va, NULL, NULL, &e2) == PCF_OK;
}

/* The measured voltage constraints' rows (kV per MW) and flows at the
 * solution in a->vm, a->va: dVm/dP from the Jacobian (pf_ac_vm_sens).
 * 0: the sensitivities could not be had. */
static pcf_rc s_volt_rows(study_ac *a, ac_slot *s, double *rows, int *ok, pcf_error *err)
{
    size_t nb = s->net->nb, nc = a->def.nc, nmon = 0;
    double base = s->net->base_mva;
    *ok = 1;
    int *mon = malloc((nc + 1) * sizeof(int));
    double *dvdp = malloc((nc * nb + 1) * sizeof(double));
    if (!mon || !dvdp) {
        free(mon);
        free(dvdp);
        return pcf_error_set(err, PCF_ERR_NOMEM, "study_ac: out of memory");
    }
    for (size_t c = 0; c < nc; c++) {
        int row = a->vrow[c];
        if (row < 0 || (size_t)row >= s->net->nbus_case || s->net->row_bus[row] < 0 || (a->dead && a->dead[row]))
            continue;
        mon[nmon++] = s->net->row_bus[row];
    }
    pcf_error e2;
    pcf_rc rc = nmon ? pf_ac_vm_sens(s->ac, a->vm, a->va, nmon, mon, dvdp, &e2) : PCF_OK;
    if (rc == PCF_ERR_NOMEM) *err = e2;
    else if (rc != PCF_OK) *ok = 0;
    size_t k = 0;
    for (size_t c = 0; rc == PCF_OK && c < nc; c++) {
        int row = a->vrow[c];
        if (row < 0) continue;
        double *r = &rows[c * nb];
        memset(r, 0, nb * sizeof(double));
        a->f_ac[c] = 0;
        if ((size_t)row >= s->net->nbus_case || s->net->row_bus[row] < 0 || (a->dead && a->dead[row])) continue;
        for (size_t b = 0; b < nb; b++) r[b] = dvdp[k * nb + b] * a->vkv[c] / base;
        a->f_ac[c] = (a->vm[mon[k]] - 1) * a->vkv[c];
        k++;
    }
    free(mon);
    free(dvdp);
    return rc == PCF_ERR_NOMEM ? rc : PCF_OK;
}

pcf_rc study_ac_linearise(study_ac *a, uint64_t topo_id, size_t state, const mp_case *c, int out_row,
                          const double *p_mw, const double *q_mvar, const unsigned char *volt_dead, double *rows,
                          double *f0, double *vm, double *va, int *ok, pcf_error *err)
{
    *ok = 0;
    a->dead = volt_dead;
    if (state >= a->def.nst) return pcf_error_set(err, PCF_ERR_INVALID, "study_ac: state %zu out of range", state);
    ac_slot *s;
    pcf_rc rc = s_slot(a, topo_id, state, c, out_row, &s, err);
    if (rc != PCF_OK || !s->ok) return rc;
    pcf_error e2;
    if (!s_start(a, s, p_mw, q_mvar, NULL, NULL) || !s_solve(a, s, 0, &e2)) return PCF_OK;
    size_t nb = s->net->nb, nl = s->net->nl, nc = a->def.nc;
    /* Each constraint branch is weighed at the end s_solve measures at
     * this point (the sending end); near the point that end stays the
     * sending end, and far from it the full solve takes over. */
    double *w = calloc(nc * 2 * nl + 1, sizeof(double));
    if (!w) return pcf_error_set(err, PCF_ERR_NOMEM, "study_ac: out of memory");
    size_t k = 0;
    for (size_t ci = 0; ci < nc; ci++)
        for (size_t i = 0; i < a->nbr[ci]; i++, k++) {
            int l = s->br[k];
            if (l < 0) continue;
            double from = a->pf[l], to = -a->pt[l];
            int use_from = from + to >= 0 ? from >= to : from <= to;
            /* to: the MW out of the to end is minus the MW into it */
            if (use_from) w[ci * 2 * nl + (size_t)l] += a->signs[k];
            else w[ci * 2 * nl + nl + (size_t)l] -= a->signs[k];
        }
    rc = pf_ac_sens(s->ac, a->vm, a->va, nc, w, rows, NULL, &e2);
    free(w);
    if (rc == PCF_ERR_NOMEM) {
        *err = e2;
        return rc;
    }
    if (rc != PCF_OK) return PCF_OK;
    int vok = 1;
    if (volt_dead && (rc = s_volt_rows(a, s, rows, &vok, err)) != PCF_OK) return rc;
    if (!vok) return PCF_OK;
    memcpy(f0, a->f_ac, nc * sizeof(double));
    memcpy(vm, a->vm, nb * sizeof(double));
    memcpy(va, a->va, nb * sizeof(double));
    *ok = 1;
    return PCF_OK;
}

pcf_rc study_ac_sample(study_ac *a, uint64_t topo_id, size_t state, const mp_case *c, int out_row,
                       const double *p_mw, const double *q_mvar, const int *site_bus, uint64_t point_id,
                       const double *vm0, const double *va0, const unsigned char *dead, anm *A,
                       const anm_input *in, anm_result *res, double *flow_pre, int *used, pcf_error *err)
{
    *used = 0;
    a->dead = dead;
    if (state >= a->def.nst) return pcf_error_set(err, PCF_ERR_INVALID, "study_ac: state %zu out of range", state);
    ac_slot *s;
    pcf_rc rc = s_slot(a, topo_id, state, c, out_row, &s, err);
    if (rc != PCF_OK || !s->ok) return rc;
    size_t nb = s->net->nb, nc = a->def.nc, ns = a->def.ns;
    double base = s->net->base_mva;
    pcf_error e2;
    int chord = point_id != 0 && vm0 && va0;
    if (chord && s->chord_id != point_id) {
        s->chord_id = point_id;
        s->chord_ok = pf_ac_chord_point(s->ac, vm0, va0, &e2) == PCF_OK;
    }
    if (!s_start(a, s, p_mw, q_mvar, vm0, va0)) return PCF_OK;
    /* No AC solution before the ANM acts: the injections ask more of the
     * network than it can carry (past the nose of its P-V curve; on the
     * demo zone, midday export with the Marsh Lane 132 kV circuit or GT3
     * out).  The ANM acts on what it measures as the flow climbs, so the
     * state that exists is the curtailed one: take the curtailment of the
     * linear flows the caller gave (in->flow, which also stand as the
     * flows before the ANM) and solve from there. */
    int cold = !s_solve(a, s, chord, &e2);
    if (!cold) s_volt_flows(a, s);
    memcpy(flow_pre, cold ? in->flow : a->f_ac, nc * sizeof(double));
    /* A constraint without branches and without a monitored bus keeps the
     * caller's linear flow: the AC solve does not measure it. */
    for (size_t k = 0; k < nc; k++)
        if (a->nbr[k] == 0 && a->vrow[k] < 0) flow_pre[k] = in->flow[k];
    anm_input ai = *in;
    ai.flow = flow_pre;
    anm_result r;
    if ((rc = anm_solve(A, &ai, &r, err)) != PCF_OK) return rc;
    if (cold && !(r.total_curt_mw > 0)) return PCF_OK;     /* nothing to solve: DC */
    memcpy(a->curt, r.site_curt, ns * sizeof(double));
    /* the rounds work on their own copy of the sensitivities (s_secant),
     * from the uncurtailed AC solution when there is one */
    memcpy(a->sens, in->sens, nc * ns * sizeof(double));
    int have_prev = !cold;
    if (have_prev) {
        memcpy(a->f_prev, flow_pre, nc * sizeof(double));
        memset(a->curt_prev, 0, ns * sizeof(double));
    }
    for (int round = 0; round < STUDY_AC_ROUNDS && r.total_curt_mw > 0; round++) {
        for (size_t b = 0; b < nb; b++) a->p[b] = p_mw[b] / base;
        for (size_t i = 0; i < ns; i++) a->p[site_bus[i]] -= a->curt[i] / base;
        if (cold) {     /* start as s_start does, from the curtailed injections */
            pf_ac_start(s->ac, 1, a->vm, a->va);
            if (pf_dc_solve(s->dc, a->p, NULL, a->va, NULL, NULL, &e2) != PCF_OK) return PCF_OK;
            cold = 0;
        }
        if (!s_solve(a, s, chord && !cold, &e2)) return PCF_OK;     /* warm: the last solution */
        s_volt_flows(a, s);
        if (have_prev) s_secant(a);
        memcpy(a->f_prev, a->f_ac, nc * sizeof(double));
        memcpy(a->curt_prev, a->curt, ns * sizeof(double));
        have_prev = 1;
        /* What the linear model would have said after this curtailment is
         * flow_pre - sens * curt; the AC flow differs by the change in
         * losses.  Hand the ANM pre-curtailment flows carrying that
         * difference, so its linear bookkeeping lands on the AC flow. */
        for (size_t k = 0; k < nc; k++) {
            double d = 0;
            for (size_t i = 0; i < ns; i++) d += a->sens[k * ns + i] * a->curt[i];
            a->f_in[k] = a->nbr[k] == 0 && a->vrow[k] < 0 ? in->flow[k] : a->f_ac[k] + d;
        }
        ai.flow = a->f_in;
        ai.sens = a->sens;
        if ((rc = anm_solve(A, &ai, &r, err)) != PCF_OK) return rc;
        double moved = 0;
        for (size_t i = 0; i < ns; i++) moved = fmax(moved, fabs(r.site_curt[i] - a->curt[i]));
        memcpy(a->curt, r.site_curt, ns * sizeof(double));
        if (moved <= (chord ? STUDY_AC_SCREEN_TOL_MW : STUDY_AC_TOL_MW)) break;
    }
    *res = r;
    *used = 1;
    return PCF_OK;
}
