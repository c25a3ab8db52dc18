/*
 * anm.c -- NGED-method ANM emulation; the algorithm and its sources are in
 * anm.h and docs/methodology.md.
 *
 * Layout: anm_new validates the scheme, sorts the non-firm tranches once by
 * LIFO position (most recent first: the curtailment order) and each site's
 * tranches by seniority (the order output fills them), and allocates every
 * array anm_solve writes.  anm_solve keeps the current flows up to date
 * incrementally: curtailing x MW at site s moves every constraint's flow by
 * -sens[c][s] * x, so "recompute" (NGED 5.2.8) costs one column per
 * curtailment instead of a full matrix-vector product.
 */
#include "anm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct anm {
    size_t nc, ns, nt;
    anm_constraint_def *cons;   /* [nc], trim/release resolved */
    anm_tranche_def *tr;        /* [nt] */
    unsigned char *member;      /* [nc*ns] or NULL */
    anm_options opt;
    size_t *lifo;               /* non-firm tranches, LIFO position descending */
    size_t nlifo;
    size_t *fill_p;             /* [ns+1] CSR: site -> tranches, seniority order */
    size_t *fill;               /* [nt] */
    double *cap;                /* [ns] sum of tranche capacities */
    unsigned char *nonfirm;     /* [ns] has a non-firm tranche */
    /* scratch written by anm_solve */
    double *tr_out, *tr_curt;   /* [nt] */
    double *site_curt, *site_out; /* [ns] */
    double *flow, *residual;    /* [nc] */
    double *curt_by;            /* [nc*ns] */
    unsigned char *acted, *filtered, *dead; /* [nc] */
    size_t *order;              /* [max_iter] */
    /* 0 when the curtailment arrays s_reset clears are already clear: most
     * calls in a study curtail nothing, and clearing nc * ns doubles for
     * each was a tenth of the call */
    int dirty;
};

void anm_options_default(anm_options *o)
{
    o->use_release = 0;
    o->branch_filter = 0;
    o->site_filter = 0;
    o->min_sens = 1e-6;
    o->tol_mw = 1e-9;
    o->max_iter = 10000;
}

void anm_destroy(anm **a)
{
    if (!a || !*a)
        return;
    anm *p = *a;
    free(p->cons); free(p->tr); free(p->member); free(p->lifo);
    free(p->fill_p); free(p->fill); free(p->cap); free(p->nonfirm);
    free(p->tr_out); free(p->tr_curt); free(p->site_curt); free(p->site_out);
    free(p->flow); free(p->residual); free(p->curt_by);
    free(p->acted); free(p->filtered); free(p->dead); free(p->order);
    free(p);
    *a = NULL;
}

static int s_finite_pos(double x)
{
    return isfinite(x) && x > 0;
}

static pcf_rc s_check_options(const anm_options *o, pcf_error *err)
{
    if (!(o->branch_filter >= 0 && o->branch_filter <= 1) ||
        !(o->site_filter >= 0 && o->site_filter <= 1))
        return pcf_error_set(err, PCF_ERR_INVALID, "anm: filters must be in [0, 1]");
    if (!(o->min_sens >= 0 && o->min_sens < 1))
        return pcf_error_set(err, PCF_ERR_INVALID, "anm: min_sens must be in [0, 1)");
    if (!(o->tol_mw >= 0 && o->tol_mw < 1))
        return pcf_error_set(err, PCF_ERR_INVALID, "anm: tol_mw must be in [0, 1) MW");
    if (o->max_iter < 1 || o->max_iter > 1000000)
        return pcf_error_set(err, PCF_ERR_INVALID, "anm: max_iter %d not in 1..1000000",
                             o->max_iter);
    return PCF_OK;
}

static pcf_rc s_check_constraints(const anm_def *d, anm_constraint_def *out, pcf_error *err)
{
    for (size_t c = 0; c < d->nc; c++) {
        anm_constraint_def k = d->constraints[c];
        if (!s_finite_pos(k.voltage_kv))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: constraint %zu: voltage %g kV", c,
                                 k.voltage_kv);
        if (k.kind != ANM_DANM && k.kind != ANM_TANM)
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: constraint %zu: kind %d is not "
                                 "DANM or TANM", c, k.kind);
        if (k.trim == 0)
            k.trim = 1.0;
        if (k.release == 0)
            k.release = k.trim;
        if (!(k.trim > 0 && k.trim <= 1.5) || !(k.release > 0 && k.release <= k.trim))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: constraint %zu: trim %g / release "
                                 "%g (need 0 < release <= trim <= 1.5)", c, k.trim, k.release);
        out[c] = k;
    }
    return PCF_OK;
}

static pcf_rc s_check_tranches(const anm_def *d, pcf_error *err)
{
    for (size_t t = 0; t < d->nt; t++) {
        const anm_tranche_def *k = &d->tranches[t];
        if (k->site >= d->ns)
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: tranche %zu: site %zu of %zu", t,
                                 k->site, d->ns);
        if (!s_finite_pos(k->capacity_mw))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: tranche %zu: capacity %g MW", t,
                                 k->capacity_mw);
        if (k->firm)
            continue;
        if (k->lifo_position < 1)
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: tranche %zu: LIFO position %d "
                                 "(non-firm tranches need >= 1)", t, k->lifo_position);
        if (k->anm_mask < 1 || k->anm_mask > (ANM_DANM | ANM_TANM))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: tranche %zu: ANM membership %d", t,
                                 k->anm_mask);
    }
    return PCF_OK;
}

/* qsort has no context argument, so each sort key travels with its index;
 * the index breaks ties, which keeps the order total and deterministic. */
typedef struct s_key {
    long long key;
    size_t idx;
} s_key;

static int s_cmp_key(const void *a, const void *b)
{
    const s_key *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/* Curtailment order (LIFO position descending) and, per site, fill order
 * (firm first, then LIFO ascending).  Rejects duplicate LIFO positions. */
static pcf_rc s_orders(anm *a, pcf_error *err)
{
    size_t nt = a->nt, ns = a->ns;
    s_key *k = malloc((nt ? nt : 1) * sizeof *k);
    if (!k)
        return pcf_error_set(err, PCF_ERR_NOMEM, "anm: out of memory");
    size_t n = 0;
    for (size_t t = 0; t < nt; t++)
        if (!a->tr[t].firm)
            k[n++] = (s_key){-(long long)a->tr[t].lifo_position, t};
    qsort(k, n, sizeof *k, s_cmp_key);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && k[i].key == k[i - 1].key) {
            size_t t0 = k[i - 1].idx, t1 = k[i].idx;
            free(k);
            return pcf_error_set(err, PCF_ERR_INVALID, "anm: tranches %zu and %zu share LIFO "
                                 "position %d", t0, t1, a->tr[t1].lifo_position);
        }
        a->lifo[i] = k[i].idx;
    }
    a->nlifo = n;
    /* Fill order: key = site * (big) + seniority; firm tranches rank 0. */
    for (size_t t = 0; t < nt; t++) {
        const anm_tranche_def *d = &a->tr[t];
        k[t] = (s_key){(long long)d->site * 4000000000LL + (d->firm ? 0 : d->lifo_position), t};
        a->fill_p[d->site + 1]++;
        a->cap[d->site] += d->capacity_mw;
        if (!d->firm)
            a->nonfirm[d->site] = 1;
    }
    qsort(k, nt, sizeof *k, s_cmp_key);
    for (size_t t = 0; t < nt; t++)
        a->fill[t] = k[t].idx;
    for (size_t s = 0; s < ns; s++)
        a->fill_p[s + 1] += a->fill_p[s];
    free(k);
    return PCF_OK;
}

static pcf_rc s_alloc(anm *a)
{
    size_t nc = a->nc, ns = a->ns, nt = a->nt, m = (size_t)a->opt.max_iter;
    size_t ntx = nt ? nt : 1, nsx = ns ? ns : 1, ncx = nc ? nc : 1;
    a->cons = calloc(ncx, sizeof *a->cons);
    a->tr = calloc(ntx, sizeof *a->tr);
    a->lifo = calloc(ntx, sizeof(size_t));
    a->fill_p = calloc(ns + 1, sizeof(size_t));
    a->fill = calloc(ntx, sizeof(size_t));
    a->cap = calloc(nsx, sizeof(double));
    a->nonfirm = calloc(nsx, 1);
    a->tr_out = calloc(ntx, sizeof(double));
    a->tr_curt = calloc(ntx, sizeof(double));
    a->site_curt = calloc(nsx, sizeof(double));
    a->site_out = calloc(nsx, sizeof(double));
    a->flow = calloc(ncx, sizeof(double));
    a->residual = calloc(ncx, sizeof(double));
    a->curt_by = calloc(ncx * nsx, sizeof(double));
    a->acted = calloc(ncx, 1);
    a->filtered = calloc(ncx, 1);
    a->dead = calloc(ncx, 1);
    a->order = calloc(m, sizeof(size_t));
    return (a->cons && a->tr && a->lifo && a->fill_p && a->fill && a->cap && a->nonfirm &&
            a->tr_out && a->tr_curt && a->site_curt && a->site_out && a->flow &&
            a->residual && a->curt_by && a->acted && a->filtered && a->dead && a->order)
               ? PCF_OK : PCF_ERR_NOMEM;
}

pcf_rc anm_new(const anm_def *def, anm **out, pcf_error *err)
{
    *out = NULL;
    if (def->nc > ANM_MAX_CONSTRAINTS || def->ns > ANM_MAX_SITES || def->nt > ANM_MAX_TRANCHES ||
        (def->nc && def->ns && def->nc * def->ns > 100000000))
        return pcf_error_set(err, PCF_ERR_LIMIT, "anm: %zu constraints, %zu sites, %zu "
                             "tranches exceed the limits", def->nc, def->ns, def->nt);
    if ((def->nc && !def->constraints) || (def->nt && !def->tranches))
        return pcf_error_set(err, PCF_ERR_INVALID, "anm: missing constraint or tranche table");
    anm_options opt;
    anm_options_default(&opt);
    if (def->options)
        opt = *def->options;
    pcf_rc rc;
    if ((rc = s_check_options(&opt, err)) != PCF_OK || (rc = s_check_tranches(def, err)) != PCF_OK)
        return rc;
    anm *a = calloc(1, sizeof *a);
    if (!a)
        return pcf_error_set(err, PCF_ERR_NOMEM, "anm: out of memory");
    a->nc = def->nc;
    a->ns = def->ns;
    a->nt = def->nt;
    a->opt = opt;
    if (s_alloc(a) != PCF_OK) {
        anm_destroy(&a);
        return pcf_error_set(err, PCF_ERR_NOMEM, "anm: out of memory");
    }
    if ((rc = s_check_constraints(def, a->cons, err)) != PCF_OK) {
        anm_destroy(&a);
        return rc;
    }
    if (def->nt)
        memcpy(a->tr, def->tranches, def->nt * sizeof *a->tr);
    if (def->member && def->nc && def->ns) {
        a->member = malloc(def->nc * def->ns);
        if (!a->member) {
            anm_destroy(&a);
            return pcf_error_set(err, PCF_ERR_NOMEM, "anm: out of memory");
        }
        memcpy(a->member, def->member, def->nc * def->ns);
    }
    if ((rc = s_orders(a, err)) != PCF_OK) {
        anm_destroy(&a);
        return rc;
    }
    *out = a;
    return PCF_OK;
}

/* ---- anm_solve ------------------------------------------------------------ */

static pcf_rc s_check_input(const anm *a, const anm_input *in, pcf_error *err)
{
    if ((a->nc && (!in->flow || !in->limit_fwd || !in->sens)) || (a->ns && !in->avail))
        return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: missing input array");
    for (size_t c = 0; c < a->nc; c++) {
        double rev = in->limit_rev ? in->limit_rev[c] : in->limit_fwd[c];
        if (!isfinite(in->flow[c]))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: constraint %zu: flow %g",
                                 c, in->flow[c]);
        if (!s_finite_pos(in->limit_fwd[c]) || !s_finite_pos(rev))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: constraint %zu: limits "
                                 "%g / %g MW (need finite > 0)", c, in->limit_fwd[c], rev);
    }
    for (size_t s = 0; s < a->ns; s++) {
        double v = in->avail[s];
        if (!(isfinite(v) && v >= 0))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: site %zu: available %g MW",
                                 s, v);
        if (a->fill_p[s + 1] > a->fill_p[s] && v > a->cap[s] * (1 + 1e-12) + 1e-9)
            return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: site %zu: available %g MW "
                                 "above its tranches' %g MW", s, v, a->cap[s]);
    }
    return PCF_OK;
}

/* Spreads each site's available output over its tranches, oldest first. */
static void s_fill(anm *a, const double *avail)
{
    for (size_t s = 0; s < a->ns; s++) {
        double left = avail[s];
        for (size_t i = a->fill_p[s]; i < a->fill_p[s + 1]; i++) {
            size_t t = a->fill[i];
            double x = left < a->tr[t].capacity_mw ? left : a->tr[t].capacity_mw;
            if (i + 1 == a->fill_p[s + 1])
                x = left;   /* rounding slack of the capacity check */
            a->tr_out[t] = x;
            left -= x;
        }
    }
}

/* NGED 5.1.1: monitored only if some non-firm site is >= branch_filter
 * sensitive to it. */
static pcf_rc s_filter(anm *a, const double *sens, pcf_error *err)
{
    double bf = a->opt.branch_filter;
    for (size_t c = 0; c < a->nc; c++) {
        a->filtered[c] = 0;
        if (bf <= 0)
            continue;
        const double *row = sens + c * a->ns;
        int keep = 0;
        for (size_t s = 0; s < a->ns; s++) {
            if (!isfinite(row[s]))
                return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: sensitivity (%zu,%zu) "
                                     "is %g", c, s, row[s]);
            if (a->nonfirm[s] && fabs(row[s]) >= bf)
                keep = 1;
        }
        a->filtered[c] = (unsigned char)!keep;
    }
    return PCF_OK;
}

/* Exceedance of c over its activation threshold (> 0 when active), its
 * direction (+1 forward, -1 reverse), its limit in that direction. */
static double s_exceed(const anm *a, const anm_input *in, size_t c, int *dir, double *limit)
{
    double fwd = in->limit_fwd[c], rev = in->limit_rev ? in->limit_rev[c] : fwd;
    double f = a->flow[c], trim = a->cons[c].trim;
    if (f >= 0) {
        *dir = 1;
        *limit = fwd;
        return f - trim * fwd;
    }
    *dir = -1;
    *limit = rev;
    return -f - trim * rev;
}

/* NGED 5.2.4 (+3.2: TANM last): is constraint c (proportional exceedance pc)
 * worked on before b (pb)? */
static int s_before(const anm *a, size_t c, double pc, size_t b, double pb)
{
    const anm_constraint_def *x = &a->cons[c], *y = &a->cons[b];
    if (x->kind != y->kind)
        return x->kind == ANM_DANM;
    if (x->voltage_kv != y->voltage_kv)
        return x->voltage_kv < y->voltage_kv;
    if (pc != pb)
        return pc > pb;
    return c < b;
}

/* The next active exceedance to resolve, or nc when none remains. */
static size_t s_pick(const anm *a, const anm_input *in)
{
    size_t best = a->nc;
    double pbest = 0;
    for (size_t c = 0; c < a->nc; c++) {
        if (a->dead[c] || a->filtered[c])
            continue;
        int dir;
        double lim, e = s_exceed(a, in, c, &dir, &lim);
        if (!(e > a->opt.tol_mw))
            continue;
        double p = fabs(a->flow[c]) / lim;
        if (best == a->nc || s_before(a, c, p, best, pbest)) {
            best = c;
            pbest = p;
        }
    }
    return best;
}

/* Takes x MW off tranche t (site s) for constraint c; updates every flow. */
static void s_curtail(anm *a, const double *sens, size_t c, size_t t, size_t s, double x)
{
    a->tr_out[t] -= x;
    a->dirty = 1;
    a->tr_curt[t] += x;
    a->site_curt[s] += x;
    a->curt_by[c * a->ns + s] += x;
    for (size_t k = 0; k < a->nc; k++)
        a->flow[k] -= sens[k * a->ns + s] * x;
}

/* NGED 5.2.5-5.2.7 for constraint c: LIFO, least curtailment per tranche.
 * Marks c dead (unclearable) when the eligible tranches run out first. */
static pcf_rc s_resolve(anm *a, const anm_input *in, size_t c, pcf_error *err)
{
    int dir;
    double lim;
    s_exceed(a, in, c, &dir, &lim);
    const anm_constraint_def *k = &a->cons[c];
    double target = (a->opt.use_release ? k->release : k->trim) * lim;
    double thr = a->opt.min_sens > a->opt.site_filter ? a->opt.min_sens : a->opt.site_filter;
    const double *row = in->sens + c * a->ns;
    double e = dir * a->flow[c] - target;
    for (size_t i = 0; i < a->nlifo && e > a->opt.tol_mw; i++) {
        size_t t = a->lifo[i], s = a->tr[t].site;
        if (a->tr_out[t] <= 0 || !(a->tr[t].anm_mask & k->kind))
            continue;
        if (a->member && !a->member[c * a->ns + s])
            continue;
        if (!isfinite(row[s]))
            return pcf_error_set(err, PCF_ERR_INVALID, "anm_solve: sensitivity (%zu,%zu) is %g",
                                 c, s, row[s]);
        double seff = dir * row[s];
        /* Only sites whose curtailment lowers this exceedance; the >= test
         * is the NGED 2% rule when site_filter is set. */
        if (!(seff > a->opt.min_sens && seff >= thr))
            continue;
        double x = e / seff;
        if (x > a->tr_out[t])
            x = a->tr_out[t];
        s_curtail(a, in->sens, c, t, s, x);
        a->acted[c] = 1;
        e = dir * a->flow[c] - target;
    }
    if (e > a->opt.tol_mw) {
        a->dead[c] = 1;
        a->dirty = 1;
    }
    return PCF_OK;
}

static void s_reset(anm *a)
{
    size_t nc = a->nc, ns = a->ns, nt = a->nt;
    if (!a->dirty)
        return;
    a->dirty = 0;
    memset(a->tr_curt, 0, nt * sizeof(double));
    memset(a->site_curt, 0, ns * sizeof(double));
    memset(a->curt_by, 0, nc * ns * sizeof(double));
    memset(a->acted, 0, nc);
    memset(a->dead, 0, nc);
}

pcf_rc anm_solve(anm *a, const anm_input *in, anm_result *res, pcf_error *err)
{
    pcf_rc rc;
    memset(res, 0, sizeof *res);
    if ((rc = s_check_input(a, in, err)) != PCF_OK)
        return rc;
    s_reset(a);
    if (a->nc)
        memcpy(a->flow, in->flow, a->nc * sizeof(double));
    s_fill(a, in->avail);
    if ((rc = s_filter(a, in->sens, err)) != PCF_OK)
        return rc;
    size_t steps = 0;
    int converged = 0;
    while (steps < (size_t)a->opt.max_iter) {
        size_t c = s_pick(a, in);
        if (c == a->nc) {
            converged = 1;
            break;
        }
        if ((rc = s_resolve(a, in, c, err)) != PCF_OK)
            return rc;
        a->order[steps++] = c;
    }
    if (!converged && s_pick(a, in) == a->nc)
        converged = 1;
    double total = 0;
    for (size_t s = 0; s < a->ns; s++) {
        double o = in->avail[s] - a->site_curt[s];
        a->site_out[s] = o > 0 ? o : 0;
        total += a->site_curt[s];
    }
    for (size_t c = 0; c < a->nc; c++) {
        int dir;
        double lim, e = s_exceed(a, in, c, &dir, &lim);
        a->residual[c] = (!a->filtered[c] && e > a->opt.tol_mw) ? e : 0;
    }
    res->tranche_curt = a->tr_curt;
    res->site_curt = a->site_curt;
    res->site_out = a->site_out;
    res->flow = a->flow;
    res->residual = a->residual;
    res->curt_by = a->curt_by;
    res->acted = a->acted;
    res->filtered = a->filtered;
    res->order = a->order;
    res->n_steps = steps;
    res->converged = converged;
    res->total_curt_mw = total;
    return PCF_OK;
}
