/*
 * acpf.c -- AC Newton-Raphson power flow with a reused KLU factorisation.
 *
 * Data layout:
 *   Ybus  complex, CSR (yp, yj, yg + j yb), diagonal always present so the
 *         Jacobian has a full diagonal pattern; ydiag[i] is the position of
 *         (i,i) and br_pos[4l..4l+3] the positions of ff, ft, tf, tt.
 *   J     real, CSC (jp, ji, jx) of size n = npvpq + npq.  Unknown order:
 *         angle of every non-reference bus in bus order (ja[i]), then the
 *         magnitude of every PQ bus (jm[i]); equation rows use the same
 *         indices (P at ja[i], Q at jm[i]).
 *   jmap  for Ybus entry p, jmap[4p+b] is the position in jx of block b
 *         (0 = dP/dVa, 1 = dP/dVm, 2 = dQ/dVa, 3 = dQ/dVm) or -1.
 * The Jacobian entries are MATPOWER's dSbus_dV in polar form:
 *   dS_i/dVa_k = -j V_i conj(Y_ik V_k)      (+ j V_i conj(I_i) when k = i)
 *   dS_i/dVm_k =  V_i conj(Y_ik V_k/|V_k|)  (+ conj(I_i) V_i/|V_i| when k = i)
 * Complex arithmetic is written out in real pairs: C's complex multiply
 * calls a NaN-careful library routine that would dominate the inner loop.
 */
#include "acpf.h"

#include <klu.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pf_ac {
    const pf_net *net;
    size_t nb, nnzy;
    int *yp, *yj;           /* Ybus CSR pattern */
    double *yg, *yb;        /* Ybus values, real and imaginary */
    int *ydiag;             /* [nb] */
    double *yff, *yft, *ytf, *ytt;   /* [2 nl] each: branch admittances (re, im) */
    int n, npvpq;           /* Jacobian dimension, angle unknowns */
    int *ja, *jm;           /* [nb] unknown index of angle / magnitude, -1 if none */
    int *jp, *ji;           /* J CSC pattern */
    double *jx;
    int nnzj;
    int *jmap;              /* [4 nnzy] */
    klu_common common;
    klu_symbolic *sym;
    klu_numeric *num;
    klu_numeric *pin;       /* pf_ac_pin: a fixed Jacobian's factors */
    klu_numeric *chord;     /* pf_ac_chord_point: factors never refactorised */
    /* scratch, sized once */
    double *vr, *vi, *ir, *ii, *f, *pspec, *qspec;
    double *vm_save, *va_save;
};

size_t pf_ac_jac_dim(const pf_ac *ac) { return (size_t)ac->n; }
size_t pf_ac_jac_nnz(const pf_ac *ac) { return (size_t)ac->nnzj; }

void pf_ac_destroy(pf_ac **acp)
{
    if (!acp || !*acp)
        return;
    pf_ac *ac = *acp;
    if (ac->num)
        klu_free_numeric(&ac->num, &ac->common);
    if (ac->pin)
        klu_free_numeric(&ac->pin, &ac->common);
    if (ac->chord)
        klu_free_numeric(&ac->chord, &ac->common);
    if (ac->sym)
        klu_free_symbolic(&ac->sym, &ac->common);
    free(ac->yp); free(ac->yj); free(ac->yg); free(ac->yb); free(ac->ydiag);
    free(ac->yff); free(ac->yft); free(ac->ytf); free(ac->ytt);
    free(ac->ja); free(ac->jm); free(ac->jp); free(ac->ji); free(ac->jx);
    free(ac->jmap); free(ac->vr); free(ac->vi); free(ac->ir); free(ac->ii);
    free(ac->f); free(ac->pspec); free(ac->qspec);
    free(ac->vm_save); free(ac->va_save);
    free(ac);
    *acp = NULL;
}

static int s_int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Position of column k in CSR row i (binary search; rows are sorted). */
static int s_ypos(const pf_ac *ac, int i, int k)
{
    int lo = ac->yp[i], hi = ac->yp[i + 1];
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (ac->yj[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Ybus pattern (rows sorted, duplicates from parallel branches merged) and
 * values, as MATPOWER's makeYbus. */
static pcf_rc s_ybus(pf_ac *ac, pcf_error *err)
{
    const pf_net *n = ac->net;
    size_t nb = n->nb, nl = n->nl;
    int *cnt = calloc(nb + 1, sizeof(int));
    int *cols = malloc((nb + 2 * nl) * sizeof(int));
    ac->yp = malloc((nb + 1) * sizeof(int));
    ac->ydiag = malloc(nb * sizeof(int));
    if (!cnt || !cols || !ac->yp || !ac->ydiag)
        goto nomem;
    for (size_t i = 0; i < nb; i++)
        cnt[i + 1] = 1;
    for (size_t l = 0; l < nl; l++) {
        cnt[n->f[l] + 1]++;
        cnt[n->t[l] + 1]++;
    }
    for (size_t i = 0; i < nb; i++)
        cnt[i + 1] += cnt[i];
    int *fill = malloc(nb * sizeof(int));
    if (!fill)
        goto nomem;
    for (size_t i = 0; i < nb; i++) {
        fill[i] = cnt[i];
        cols[fill[i]++] = (int)i;
    }
    for (size_t l = 0; l < nl; l++) {
        cols[fill[n->f[l]]++] = n->t[l];
        cols[fill[n->t[l]]++] = n->f[l];
    }
    free(fill);
    /* sort and unique each row, compacting in place */
    size_t w = 0;
    for (size_t i = 0; i < nb; i++) {
        int a = cnt[i], b = cnt[i + 1];
        qsort(cols + a, (size_t)(b - a), sizeof(int), s_int_cmp);
        ac->yp[i] = (int)w;
        for (int k = a; k < b; k++)
            if (k == a || cols[k] != cols[k - 1])
                cols[w++] = cols[k];
    }
    ac->yp[nb] = (int)w;
    ac->nnzy = w;
    free(cnt);
    cnt = NULL;
    ac->yj = realloc(cols, (w ? w : 1) * sizeof(int));
    if (!ac->yj) {
        free(cols);
        goto nomem;
    }
    cols = NULL;
    ac->yg = calloc(w, sizeof(double));
    ac->yb = calloc(w, sizeof(double));
    ac->yff = malloc(2 * nl * sizeof(double) + 1);
    ac->yft = malloc(2 * nl * sizeof(double) + 1);
    ac->ytf = malloc(2 * nl * sizeof(double) + 1);
    ac->ytt = malloc(2 * nl * sizeof(double) + 1);
    if (!ac->yg || !ac->yb || !ac->yff || !ac->yft || !ac->ytf || !ac->ytt)
        goto nomem;
    for (size_t i = 0; i < nb; i++) {
        int p = s_ypos(ac, (int)i, (int)i);
        ac->ydiag[i] = p;
        ac->yg[p] += n->gs[i];
        ac->yb[p] += n->bs[i];
    }
    for (size_t l = 0; l < nl; l++) {
        double d = n->r[l] * n->r[l] + n->x[l] * n->x[l];
        double ysr = n->r[l] / d, ysi = -n->x[l] / d;        /* 1/(r + jx) */
        double tr = n->tap[l] * cos(n->shift[l]), ti = n->tap[l] * sin(n->shift[l]);
        double t2 = n->tap[l] * n->tap[l];
        double yttr = ysr, ytti = ysi + n->b[l] / 2;          /* Ys + jB/2 */
        /* Yff = Ytt / |t|^2;  Yft = -Ys / conj(t);  Ytf = -Ys / t */
        double yffr = yttr / t2, yffi = ytti / t2;
        double yftr = -(ysr * tr - ysi * ti) / t2, yfti = -(ysi * tr + ysr * ti) / t2;
        double ytfr = -(ysr * tr + ysi * ti) / t2, ytfi = -(ysi * tr - ysr * ti) / t2;
        ac->yff[2 * l] = yffr; ac->yff[2 * l + 1] = yffi;
        ac->yft[2 * l] = yftr; ac->yft[2 * l + 1] = yfti;
        ac->ytf[2 * l] = ytfr; ac->ytf[2 * l + 1] = ytfi;
        ac->ytt[2 * l] = yttr; ac->ytt[2 * l + 1] = ytti;
        int f = n->f[l], t = n->t[l];
        int pff = ac->ydiag[f], ptt = ac->ydiag[t];
        int pft = s_ypos(ac, f, t), ptf = s_ypos(ac, t, f);
        ac->yg[pff] += yffr; ac->yb[pff] += yffi;
        ac->yg[pft] += yftr; ac->yb[pft] += yfti;
        ac->yg[ptf] += ytfr; ac->yb[ptf] += ytfi;
        ac->yg[ptt] += yttr; ac->yb[ptt] += ytti;
    }
    return PCF_OK;
nomem:
    free(cnt);
    free(cols);
    return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory building Ybus");
}

/* Jacobian CSC pattern and the Ybus -> J scatter map.  No sort is needed:
 * Ybus is structurally symmetric, so the rows of J column "variable of bus
 * k" come from the (sorted) neighbours of k, and every angle row index is
 * below every magnitude row index. */
static pcf_rc s_jacobian(pf_ac *ac, pcf_error *err)
{
    const pf_net *n = ac->net;
    size_t nb = n->nb;
    ac->ja = malloc(nb * sizeof(int));
    ac->jm = malloc(nb * sizeof(int));
    int *tpos = malloc((ac->nnzy + 1) * sizeof(int));
    if (!ac->ja || !ac->jm || !tpos) {
        free(tpos);
        return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
    }
    int na = 0;
    for (size_t i = 0; i < nb; i++)
        ac->ja[i] = n->type[i] == MP_REF ? -1 : na++;
    int nm = na;
    for (size_t i = 0; i < nb; i++)
        ac->jm[i] = n->type[i] == MP_PQ ? nm++ : -1;
    ac->npvpq = na;
    ac->n = nm;
    /* tpos[e] for e = (k,i): position of (i,k) */
    for (size_t k = 0; k < nb; k++)
        for (int e = ac->yp[k]; e < ac->yp[k + 1]; e++)
            tpos[e] = s_ypos(ac, ac->yj[e], (int)k);
    ac->jmap = malloc((4 * ac->nnzy + 1) * sizeof(int));
    ac->jp = calloc((size_t)ac->n + 1, sizeof(int));
    ac->ji = malloc((4 * ac->nnzy + 1) * sizeof(int));
    if (!ac->jmap || !ac->jp || !ac->ji) {
        free(tpos);
        return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
    }
    for (size_t e = 0; e < 4 * ac->nnzy; e++)
        ac->jmap[e] = -1;
    int nz = 0, col = 0;
    for (int pass = 0; pass < 2; pass++)         /* angle columns, then magnitude */
        for (size_t k = 0; k < nb; k++) {
            if ((pass == 0 ? ac->ja[k] : ac->jm[k]) < 0)
                continue;
            for (int half = 0; half < 2; half++)  /* P rows, then Q rows */
                for (int e = ac->yp[k]; e < ac->yp[k + 1]; e++) {
                    int i = ac->yj[e];
                    int row = half == 0 ? ac->ja[i] : ac->jm[i];
                    if (row < 0)
                        continue;
                    ac->ji[nz] = row;
                    ac->jmap[4 * tpos[e] + 2 * half + pass] = nz;
                    nz++;
                }
            ac->jp[++col] = nz;
        }
    ac->nnzj = nz;
    free(tpos);
    ac->jx = malloc(((size_t)nz + 1) * sizeof(double));
    if (!ac->jx)
        return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
    return PCF_OK;
}

pcf_rc pf_ac_new(const pf_net *net, pf_ac **out, pcf_error *err)
{
    *out = NULL;
    pcf_rc rc;
    if ((rc = pf_net_connected(net, err)) != PCF_OK)
        return rc;
    pf_ac *ac = calloc(1, sizeof *ac);
    if (!ac)
        return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
    ac->net = net;
    ac->nb = net->nb;
    klu_defaults(&ac->common);
    /* No row scaling: the Jacobian in p.u. is well scaled, and klu_scale
     * costs a third of each refactorisation.  The fresh-factorisation retry
     * in pf_ac_solve turns scaling back on. */
    ac->common.scale = -1;
    if ((rc = s_ybus(ac, err)) != PCF_OK || (rc = s_jacobian(ac, err)) != PCF_OK)
        goto fail;
    size_t nb = net->nb;
    ac->vr = malloc(nb * sizeof(double)); ac->vi = malloc(nb * sizeof(double));
    ac->ir = malloc(nb * sizeof(double)); ac->ii = malloc(nb * sizeof(double));
    ac->pspec = malloc(nb * sizeof(double)); ac->qspec = malloc(nb * sizeof(double));
    ac->vm_save = malloc(nb * sizeof(double)); ac->va_save = malloc(nb * sizeof(double));
    ac->f = malloc(((size_t)ac->n + 1) * sizeof(double));
    if (!ac->vr || !ac->vi || !ac->ir || !ac->ii || !ac->pspec || !ac->qspec || !ac->f ||
        !ac->vm_save || !ac->va_save) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
        goto fail;
    }
    pf_net_injections(net, ac->pspec, ac->qspec);
    if (ac->n > 0) {
        ac->sym = klu_analyze(ac->n, ac->jp, ac->ji, &ac->common);
        if (!ac->sym) {
            rc = pcf_error_set(err, PCF_ERR_SINGULAR,
                               "acpf: KLU symbolic analysis failed (status %d)",
                               ac->common.status);
            goto fail;
        }
    }
    *out = ac;
    return PCF_OK;
fail:
    pf_ac_destroy(&ac);
    return rc;
}

void pf_ac_start(const pf_ac *ac, int flat, double *vm, double *va)
{
    const pf_net *n = ac->net;
    for (size_t i = 0; i < n->nb; i++) {
        vm[i] = flat ? 1.0 : n->vm0[i];
        va[i] = flat ? n->va0[n->ref] : n->va0[i];
    }
    /* MATPOWER scales V0 to |Vg| keeping the angle; with a non-positive
     * stored magnitude the angle is all that survives. */
    for (size_t g = 0; g < n->ng; g++) {
        int b = n->gen_bus[g];
        if (n->type[b] != MP_PQ)
            vm[b] = n->vg[g];
    }
}

/* I = Ybus V and the mismatch vector F; returns max |F|. */
static double s_mismatch(pf_ac *ac, const double *p, const double *q)
{
    double worst = 0;
    for (size_t i = 0; i < ac->nb; i++) {
        double sr = 0, si = 0;
        for (int e = ac->yp[i]; e < ac->yp[i + 1]; e++) {
            int k = ac->yj[e];
            sr += ac->yg[e] * ac->vr[k] - ac->yb[e] * ac->vi[k];
            si += ac->yg[e] * ac->vi[k] + ac->yb[e] * ac->vr[k];
        }
        ac->ir[i] = sr;
        ac->ii[i] = si;
        /* S_i = V_i conj(I_i) */
        double pr = ac->vr[i] * sr + ac->vi[i] * si - p[i];
        double qr = ac->vi[i] * sr - ac->vr[i] * si - q[i];
        if (ac->ja[i] >= 0) {
            ac->f[ac->ja[i]] = pr;
            if (fabs(pr) > worst || pr != pr)
                worst = pr != pr ? INFINITY : fmax(worst, fabs(pr));
        }
        if (ac->jm[i] >= 0) {
            ac->f[ac->jm[i]] = qr;
            if (fabs(qr) > worst || qr != qr)
                worst = qr != qr ? INFINITY : fmax(worst, fabs(qr));
        }
    }
    return worst;
}

/* Fills jx from the current V and I through the scatter map. */
static void s_fill_jacobian(pf_ac *ac, const double *vm)
{
    for (size_t i = 0; i < ac->nb; i++) {
        double vr = ac->vr[i], vi = ac->vi[i];
        for (int e = ac->yp[i]; e < ac->yp[i + 1]; e++) {
            const int *m = ac->jmap + 4 * e;
            if (m[0] < 0 && m[1] < 0 && m[2] < 0 && m[3] < 0)
                continue;
            int k = ac->yj[e];
            /* c = conj(Y_ik V_k) */
            double cr = ac->yg[e] * ac->vr[k] - ac->yb[e] * ac->vi[k];
            double ci = -(ac->yg[e] * ac->vi[k] + ac->yb[e] * ac->vr[k]);
            /* dVa = -j V_i c ; dVm = V_i c / |V_k| */
            double wr = vr * cr - vi * ci, wi = vr * ci + vi * cr;   /* V_i c */
            double dar = wi, dai = -wr;
            double dmr = wr / vm[k], dmi = wi / vm[k];
            if ((size_t)k == i) {
                /* + j V_i conj(I_i)  and  + conj(I_i) V_i / |V_i| */
                double xr = vr * ac->ir[i] + vi * ac->ii[i];
                double xi = vi * ac->ir[i] - vr * ac->ii[i];
                dar += -xi;
                dai += xr;
                dmr += xr / vm[i];
                dmi += xi / vm[i];
            }
            if (m[0] >= 0) ac->jx[m[0]] = dar;
            if (m[1] >= 0) ac->jx[m[1]] = dmr;
            if (m[2] >= 0) ac->jx[m[2]] = dai;
            if (m[3] >= 0) ac->jx[m[3]] = dmi;
        }
    }
}

static void s_set_v(pf_ac *ac, const double *vm, const double *va)
{
    for (size_t i = 0; i < ac->nb; i++) {
        double sn, cs;
        sincos(va[i], &sn, &cs);
        ac->vr[i] = vm[i] * cs;
        ac->vi[i] = vm[i] * sn;
    }
}

/* One step with the factors num (x -= J^-1 F), then the new mismatch. */
static double s_step(pf_ac *ac, klu_numeric *num, const double *p, const double *q, double *vm, double *va)
{
    klu_solve(ac->sym, num, ac->n, 1, ac->f, &ac->common);
    for (size_t i = 0; i < ac->nb; i++) {
        if (ac->ja[i] >= 0)
            va[i] -= ac->f[ac->ja[i]];
        if (ac->jm[i] >= 0)
            vm[i] -= ac->f[ac->jm[i]];
    }
    s_set_v(ac, vm, va);
    return s_mismatch(ac, p, q);
}

/* MATPOWER's Vm = abs(V), Va = angle(V) of the current iterate. */
static void s_polar(const pf_ac *ac, double *vm, double *va)
{
    for (size_t i = 0; i < ac->nb; i++) {
        double r = ac->vr[i], m = ac->vi[i];
        vm[i] = sqrt(r * r + m * m);
        va[i] = atan2(m, r);
    }
}

/* One Newton run.  fresh = 1 factorises from scratch every iteration. */
static pcf_rc s_newton(pf_ac *ac, const double *p, const double *q, double *vm, double *va,
                       const pf_ac_opts *o, int fresh, pf_ac_stats *st, pcf_error *err)
{
    s_set_v(ac, vm, va);
    double worst = s_mismatch(ac, p, q), prev = INFINITY;
    int it = 0, nfact = 0;
    while (!(worst < o->tol) && it < o->max_it && isfinite(worst)) {
        it++;
        /* Chord step with the factors in hand: first iteration, and then
         * as long as each step cuts the mismatch at least fourfold. */
        int reuse = o->chord && !fresh && ac->num && (it == 1 || worst < 0.25 * prev);
        int ok = 1;
        if (!reuse) {
            s_fill_jacobian(ac, vm);
            nfact++;
            if (fresh || !ac->num) {
                if (ac->num)
                    klu_free_numeric(&ac->num, &ac->common);
                ac->num = klu_factor(ac->jp, ac->ji, ac->jx, ac->sym, &ac->common);
                ok = ac->num != NULL;
            } else {
                ok = klu_refactor(ac->jp, ac->ji, ac->jx, ac->sym, ac->num, &ac->common);
                if (!ok || ac->common.status != KLU_OK) {
                    klu_free_numeric(&ac->num, &ac->common);
                    ac->num = klu_factor(ac->jp, ac->ji, ac->jx, ac->sym, &ac->common);
                    ok = ac->num != NULL;
                }
            }
        }
        if (!ok || ac->common.status != KLU_OK) {
            st->converged = 0;
            st->iterations = it;
            st->factorisations = nfact;
            st->max_mismatch = worst;
            return pcf_error_set(err, PCF_ERR_SINGULAR,
                                 "acpf: Jacobian singular at iteration %d (KLU status %d)",
                                 it, ac->common.status);
        }
        prev = worst;
        worst = s_step(ac, ac->num, p, q, vm, va);
    }
    st->iterations = it;
    st->factorisations = nfact;
    st->max_mismatch = worst;
    st->converged = worst < o->tol;
    s_polar(ac, vm, va);
    if (!st->converged)
        return pcf_error_set(err, PCF_ERR_NOCONV,
                             "acpf: no convergence after %d iterations (max mismatch %.3g p.u.)",
                             it, worst);
    return PCF_OK;
}

pcf_rc pf_ac_solve(pf_ac *ac, const double *p, const double *q, double *vm, double *va,
                   const pf_ac_opts *opts, pf_ac_stats *stats, pcf_error *err)
{
    pf_ac_opts o = opts ? *opts : PF_AC_OPTS_DEFAULT;
    pf_ac_stats st = { 0 };
    if (!p) p = ac->pspec;
    if (!q) q = ac->qspec;
    if (o.max_it < 0 || o.max_it > 1000 || !(o.tol > 0))
        return pcf_error_set(err, PCF_ERR_INVALID, "acpf: bad options");
    /* Reused pivots (from the first factorisation this object made) are
     * usually fine; if the solve fails with them, start over with fresh
     * factorisations at every iteration so the answer does not depend on
     * history. */
    size_t nb = ac->nb;
    memcpy(ac->vm_save, vm, nb * sizeof(double));
    memcpy(ac->va_save, va, nb * sizeof(double));
    pcf_rc rc = s_newton(ac, p, q, vm, va, &o, o.fresh, &st, err);
    if ((rc == PCF_ERR_NOCONV || rc == PCF_ERR_SINGULAR) && ac->n > 0) {
        memcpy(vm, ac->vm_save, nb * sizeof(double));
        memcpy(va, ac->va_save, nb * sizeof(double));
        ac->common.scale = 2;
        rc = s_newton(ac, p, q, vm, va, &o, 1, &st, err);
        ac->common.scale = -1;
        /* A scaled factorisation must not be refactorised unscaled (its row
         * scale factors would be stale): the next solve factorises anew. */
        if (ac->num)
            klu_free_numeric(&ac->num, &ac->common);
    }
    if (stats)
        *stats = st;
    return rc;
}

/* *num (freed first) = fresh, unscaled factors of the Jacobian at (vm, va),
 * whose pivot order depends on that point alone. */
static pcf_rc s_factor_at(pf_ac *ac, const double *vm, const double *va, klu_numeric **num, const char *what,
                          pcf_error *err)
{
    if (*num)
        klu_free_numeric(num, &ac->common);
    if (ac->n == 0)
        return PCF_OK;
    s_set_v(ac, vm, va);
    s_mismatch(ac, ac->pspec, ac->qspec);       /* the currents the Jacobian needs */
    s_fill_jacobian(ac, vm);
    int scale = ac->common.scale;
    ac->common.scale = -1;
    *num = klu_factor(ac->jp, ac->ji, ac->jx, ac->sym, &ac->common);
    ac->common.scale = scale;
    if (!*num || ac->common.status != KLU_OK) {
        if (*num)
            klu_free_numeric(num, &ac->common);
        return pcf_error_set(err, PCF_ERR_SINGULAR, "acpf: Jacobian singular at the %s (KLU status %d)", what,
                             ac->common.status);
    }
    return PCF_OK;
}

pcf_rc pf_ac_pin(pf_ac *ac, const double *vm, const double *va, pcf_error *err)
{
    return s_factor_at(ac, vm, va, &ac->pin, "pinned point", err);
}

pcf_rc pf_ac_solve_pinned(pf_ac *ac, const double *p, const double *q, double *vm, double *va, int max_it,
                          double tol, pf_ac_stats *stats, pcf_error *err)
{
    pf_ac_stats st = { 0 };
    if (!ac->pin && ac->n > 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "acpf: no pinned factorisation (pf_ac_pin)");
    s_set_v(ac, vm, va);
    double worst = s_mismatch(ac, p, q);
    int it = 0, nfact = 0, ok = 1;
    while (!(worst < tol) && it < max_it && isfinite(worst)) {
        it++;
        /* Every step refactorises with the pinned pivot order: exact
         * Newton converges in about 3 steps where chord steps on reused
         * factors took 7 and cost more (demo zone, 46 buses). */
        s_fill_jacobian(ac, vm);
        nfact++;
        ok = klu_refactor(ac->jp, ac->ji, ac->jx, ac->sym, ac->pin, &ac->common) && ac->common.status == KLU_OK;
        if (!ok)
            break;
        worst = s_step(ac, ac->pin, p, q, vm, va);
    }
    st.iterations = it;
    st.factorisations = nfact;
    st.max_mismatch = worst;
    st.converged = ok && worst < tol;
    s_polar(ac, vm, va);
    if (stats)
        *stats = st;
    if (!ok)
        return pcf_error_set(err, PCF_ERR_SINGULAR, "acpf: refactorisation with the pinned pivots failed (KLU status %d)",
                             ac->common.status);
    if (!st.converged)
        return pcf_error_set(err, PCF_ERR_NOCONV, "acpf: no convergence after %d iterations (max mismatch %.3g p.u.)",
                             it, worst);
    return PCF_OK;
}

pcf_rc pf_ac_chord_point(pf_ac *ac, const double *vm, const double *va, pcf_error *err)
{
    return s_factor_at(ac, vm, va, &ac->chord, "chord point", err);
}

pcf_rc pf_ac_solve_chord(pf_ac *ac, const double *p, const double *q, double *vm, double *va, int max_it, double tol,
                         pf_ac_stats *stats, pcf_error *err)
{
    pf_ac_stats st = { 0 };
    if (!ac->chord && ac->n > 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "acpf: no chord factorisation (pf_ac_chord_point)");
    s_set_v(ac, vm, va);
    double worst = s_mismatch(ac, p, q), prev = INFINITY;
    int it = 0;
    /* A chord step contracts the mismatch by a factor that grows with the
     * distance from the factorised point; one that does not halve it means
     * the point is too far for chords to pay. */
    while (!(worst < tol) && it < max_it && isfinite(worst) && worst < 0.5 * prev) {
        it++;
        prev = worst;
        worst = s_step(ac, ac->chord, p, q, vm, va);
    }
    st.iterations = it;
    st.max_mismatch = worst;
    st.converged = worst < tol;
    s_polar(ac, vm, va);
    if (stats)
        *stats = st;
    if (!st.converged)
        return pcf_error_set(err, PCF_ERR_NOCONV, "acpf: chord steps stalled after %d (max mismatch %.3g p.u.)", it,
                             worst);
    return PCF_OK;
}

pcf_rc pf_ac_solve_batch(pf_ac *ac, size_t nsamples, const double *p, const double *q,
                         const double *vm0, const double *va0, double *vm, double *va,
                         const pf_ac_opts *opts, pf_ac_stats *stats, pcf_error *err)
{
    size_t nb = ac->nb;
    const double *wvm = vm0, *wva = va0;     /* warm start */
    for (size_t s = 0; s < nsamples; s++) {
        double *m = vm + s * nb, *a = va + s * nb;
        memcpy(m, wvm, nb * sizeof(double));
        memcpy(a, wva, nb * sizeof(double));
        pf_ac_stats st;
        pcf_error e2;
        pcf_rc rc = pf_ac_solve(ac, p + s * nb, q + s * nb, m, a, opts, &st, &e2);
        if (stats)
            stats[s] = st;
        if (rc == PCF_OK) {
            wvm = m;
            wva = a;
            continue;
        }
        if (rc != PCF_ERR_NOCONV && rc != PCF_ERR_SINGULAR) {
            if (err)
                *err = e2;
            return rc;
        }
        if (stats)
            stats[s].converged = 0;
        for (size_t i = 0; i < nb; i++)
            m[i] = a[i] = NAN;
    }
    return PCF_OK;
}

/* Factorises the Newton Jacobian J at (vm, va) afresh (apart from the
 * solver's own factors, so the answer depends on the point alone) and
 * solves J^T y = g in place for the nrhs right-hand sides g ([nrhs * n]):
 * the adjoint both sensitivity functions need.  n > 0. */
static pcf_rc s_adjoint(pf_ac *ac, const double *vm, const double *va, size_t nrhs, double *g, pcf_error *err)
{
    klu_numeric *num = NULL;
    pcf_rc rc = s_factor_at(ac, vm, va, &num, "linearisation point", err);
    if (rc != PCF_OK) return rc;
    int ok = klu_tsolve(ac->sym, num, ac->n, (int)nrhs, g, &ac->common);
    klu_free_numeric(&num, &ac->common);
    if (!ok || ac->common.status != KLU_OK)
        return pcf_error_set(err, PCF_ERR_SINGULAR, "acpf: transposed solve failed (KLU status %d)", ac->common.status);
    return PCF_OK;
}

pcf_rc pf_ac_sens(pf_ac *ac, const double *vm, const double *va, size_t nw, const double *w, double *sp,
                  double *sq, pcf_error *err)
{
    const pf_net *net = ac->net;
    size_t nb = ac->nb, nl = net->nl, n = (size_t)ac->n;
    memset(sp, 0, nw * nb * sizeof(double));
    if (sq) memset(sq, 0, nw * nb * sizeof(double));
    if (n == 0 || nw == 0) return PCF_OK;
    double *g = calloc(n * nw, sizeof(double));
    if (!g) return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
    s_set_v(ac, vm, va);                        /* the voltages df/dx is taken at */
    /* df/dx of each row: P into an end of a branch is
     *   P_f = Re(|V_f|^2 conj(yff) + a), a = V_f conj(yft V_t),
     * so dP_f/dVa_f = -Im a, dP_f/dVa_t = Im a, dP_f/dVm_f = 2 |V_f| Re yff
     * + Re a / |V_f|, dP_f/dVm_t = Re a / |V_t|; the to end likewise with
     * b = V_t conj(ytf V_f). */
    for (size_t r = 0; r < nw; r++) {
        double *gr = g + r * n;
        const double *wr = w + r * 2 * nl;
        for (size_t l = 0; l < nl; l++) {
            for (int end = 0; end < 2; end++) {
                double wt = wr[(size_t)end * nl + l];
                if (wt == 0) continue;
                int i = end == 0 ? net->f[l] : net->t[l], k = end == 0 ? net->t[l] : net->f[l];
                const double *yii = end == 0 ? ac->yff + 2 * l : ac->ytt + 2 * l;
                const double *yik = end == 0 ? ac->yft + 2 * l : ac->ytf + 2 * l;
                double cr = yik[0] * ac->vr[k] - yik[1] * ac->vi[k];        /* conj(y V_k) */
                double ci = -(yik[0] * ac->vi[k] + yik[1] * ac->vr[k]);
                double ar = ac->vr[i] * cr - ac->vi[i] * ci, ai = ac->vr[i] * ci + ac->vi[i] * cr;
                if (ac->ja[i] >= 0) gr[ac->ja[i]] += wt * -ai;
                if (ac->ja[k] >= 0) gr[ac->ja[k]] += wt * ai;
                if (ac->jm[i] >= 0) gr[ac->jm[i]] += wt * (2 * vm[i] * yii[0] + ar / vm[i]);
                if (ac->jm[k] >= 0) gr[ac->jm[k]] += wt * (ar / vm[k]);
            }
        }
    }
    pcf_rc rc = s_adjoint(ac, vm, va, nw, g, err);
    if (rc != PCF_OK) {
        free(g);
        return rc;
    }
    for (size_t r = 0; r < nw; r++)
        for (size_t b = 0; b < nb; b++) {
            if (ac->ja[b] >= 0) sp[r * nb + b] = g[r * n + (size_t)ac->ja[b]];
            if (sq && ac->jm[b] >= 0) sq[r * nb + b] = g[r * n + (size_t)ac->jm[b]];
        }
    free(g);
    return PCF_OK;
}

/* MW/MVAr into each end of in-service branch l. */
static void s_branch_flow(const pf_ac *ac, const double *vm, const double *va, size_t l, double *pf, double *qf,
                          double *pt, double *qt)
{
    const pf_net *n = ac->net;
    double base = n->base_mva;
    int f = n->f[l], t = n->t[l];
    double fr = vm[f] * cos(va[f]), fi = vm[f] * sin(va[f]);
    double tr = vm[t] * cos(va[t]), ti = vm[t] * sin(va[t]);
    const double *a = ac->yff + 2 * l, *b = ac->yft + 2 * l;
    const double *c = ac->ytf + 2 * l, *d = ac->ytt + 2 * l;
    double ifr = a[0] * fr - a[1] * fi + b[0] * tr - b[1] * ti;
    double ifi = a[0] * fi + a[1] * fr + b[0] * ti + b[1] * tr;
    double itr = c[0] * fr - c[1] * fi + d[0] * tr - d[1] * ti;
    double iti = c[0] * fi + c[1] * fr + d[0] * ti + d[1] * tr;
    if (pf) *pf = (fr * ifr + fi * ifi) * base;
    if (qf) *qf = (fi * ifr - fr * ifi) * base;
    if (pt) *pt = (tr * itr + ti * iti) * base;
    if (qt) *qt = (ti * itr - tr * iti) * base;
}

void pf_ac_flows(const pf_ac *ac, const double *vm, const double *va,
                 double *pf, double *qf, double *pt, double *qt)
{
    for (size_t l = 0; l < ac->net->nl; l++)
        s_branch_flow(ac, vm, va, l, pf ? pf + l : NULL, qf ? qf + l : NULL, pt ? pt + l : NULL,
                      qt ? qt + l : NULL);
}

void pf_ac_branch_p(const pf_ac *ac, const double *vm, const double *va, size_t l, double *pf, double *pt)
{
    s_branch_flow(ac, vm, va, l, pf, NULL, pt, NULL);
}

/* Injected complex power at bus i for voltages vm, va. */
static void s_bus_power(const pf_ac *ac, const double *vm, const double *va, size_t i,
                        double *P, double *Q)
{
    double sr = 0, si = 0;
    for (int e = ac->yp[i]; e < ac->yp[i + 1]; e++) {
        int k = ac->yj[e];
        double vr = vm[k] * cos(va[k]), vi = vm[k] * sin(va[k]);
        sr += ac->yg[e] * vr - ac->yb[e] * vi;
        si += ac->yg[e] * vi + ac->yb[e] * vr;
    }
    double vr = vm[i] * cos(va[i]), vi = vm[i] * sin(va[i]);
    *P = vr * sr + vi * si;
    *Q = vi * sr - vr * si;
}

void pf_ac_gen(const pf_ac *ac, const double *vm, const double *va, double *pg, double *qg)
{
    const pf_net *n = ac->net;
    double base = n->base_mva;
    size_t ng = n->ng, nb = n->nb;
    for (size_t g = 0; g < ng; g++) {
        pg[g] = n->pg[g] * base;
        qg[g] = n->qg[g] * base;
    }
    /* Per bus with voltage control: total Q, count, Q range (pfsoln). */
    double *qtot = calloc(nb, sizeof(double)), *qmn = calloc(nb, sizeof(double));
    double *qmx = calloc(nb, sizeof(double));
    int *cnt = calloc(nb, sizeof(int));
    if (!qtot || !qmn || !qmx || !cnt) {
        free(qtot); free(qmn); free(qmx); free(cnt);
        for (size_t g = 0; g < ng; g++)
            pg[g] = qg[g] = NAN;
        return;
    }
    for (size_t g = 0; g < ng; g++) {
        int b = n->gen_bus[g];
        if (n->type[b] == MP_PQ)
            continue;
        cnt[b]++;
        qmn[b] += n->qmin[g] * base;
        qmx[b] += n->qmax[g] * base;
    }
    for (size_t b = 0; b < nb; b++)
        if (cnt[b]) {
            double P, Q;
            s_bus_power(ac, vm, va, b, &P, &Q);
            qtot[b] = Q * base + n->qd[b] * base;
        }
    for (size_t g = 0; g < ng; g++) {
        int b = n->gen_bus[g];
        if (n->type[b] == MP_PQ)
            continue;
        if (cnt[b] == 1) {
            qg[g] = qtot[b];
        } else if (fabs(qmx[b] - qmn[b]) < 10 * 2.220446049250313e-16) {
            qg[g] = n->qmin[g] * base + (qtot[b] - qmn[b]) / cnt[b];
        } else {
            qg[g] = n->qmin[g] * base + (qtot[b] - qmn[b]) /
                    (qmx[b] - qmn[b] + 2.220446049250313e-16) *
                    (n->qmax[g] - n->qmin[g]) * base;
        }
    }
    /* slack P: first generator at the reference bus */
    int first = -1;
    double others = 0;
    for (size_t g = 0; g < ng; g++)
        if (n->gen_bus[g] == n->ref) {
            if (first < 0)
                first = (int)g;
            else
                others += pg[g];
        }
    if (first >= 0) {
        double P, Q;
        s_bus_power(ac, vm, va, (size_t)n->ref, &P, &Q);
        pg[first] = P * base + n->pd[n->ref] * base - others;
    }
    free(qtot); free(qmn); free(qmx); free(cnt);
}

pcf_rc pf_ac_vm_sens(pf_ac *ac, const double *vm, const double *va, size_t nmon, const int *bus, double *dvdp,
                     pcf_error *err)
{
    size_t nb = ac->nb, n = (size_t)ac->n;
    for (size_t k = 0; k < nmon; k++)
        if (bus[k] < 0 || (size_t)bus[k] >= nb)
            return pcf_error_set(err, PCF_ERR_INVALID, "acpf: sensitivity of bus %d: no such bus", bus[k]);
    memset(dvdp, 0, nmon * nb * sizeof(double));
    if (n == 0 || nmon == 0)
        return PCF_OK;
    /* Row jm[b] of J^-1 is the solution y of J^T y = e_jm[b]; its entry at
     * ja[i] is dVm_b / dP_i.  A bus whose magnitude is held (PV, reference)
     * keeps a zero row. */
    double *g = calloc(n * nmon, sizeof(double));
    if (!g)
        return pcf_error_set(err, PCF_ERR_NOMEM, "acpf: out of memory");
    for (size_t k = 0; k < nmon; k++)
        if (ac->jm[bus[k]] >= 0)
            g[k * n + (size_t)ac->jm[bus[k]]] = 1.0;
    pcf_rc rc = s_adjoint(ac, vm, va, nmon, g, err);
    for (size_t k = 0; k < nmon && rc == PCF_OK; k++)
        for (size_t i = 0; ac->jm[bus[k]] >= 0 && i < nb; i++)
            if (ac->ja[i] >= 0)
                dvdp[k * nb + i] = g[k * n + (size_t)ac->ja[i]];
    free(g);
    return rc;
}
