/*
 * dcpf.c -- DC power flow with a once-factorised reduced B matrix.
 *
 * B_r (B without the reference row and column) is assembled as triplets,
 * sorted and summed (parallel branches add up), and handed to KLU in CSC
 * form; B is symmetric so CSC and CSR coincide.  Reduced index of bus i is
 * i for i < ref and i - 1 above it.  Solves take the injections, remove the
 * phase-shifter and Gs terms, optionally spread the mismatch over the slack
 * weights, move the fixed reference angle to the right-hand side and call
 * klu_solve.
 */
#include "dcpf.h"

#include <klu.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pf_dc {
    const pf_net *net;
    size_t nb, nl, nr;      /* nr = nb - 1 */
    double *bb;             /* [nl] branch susceptance */
    double *pfinj;          /* [nl] -b shift */
    double *pbusinj;        /* [nb] */
    int *bp, *bi;           /* B_r CSC */
    double *bx;
    klu_common common;
    klu_symbolic *sym;
    klu_numeric *num;
    double *pbus, *rhs, *theta;   /* scratch [nb] */
};

void pf_dc_destroy(pf_dc **dcp)
{
    if (!dcp || !*dcp)
        return;
    pf_dc *dc = *dcp;
    if (dc->num)
        klu_free_numeric(&dc->num, &dc->common);
    if (dc->sym)
        klu_free_symbolic(&dc->sym, &dc->common);
    free(dc->bb); free(dc->pfinj); free(dc->pbusinj); free(dc->bp); free(dc->bi);
    free(dc->bx); free(dc->pbus); free(dc->rhs); free(dc->theta);
    free(dc);
    *dcp = NULL;
}

const double *pf_dc_branch_b(const pf_dc *dc) { return dc->bb; }

typedef struct s_ent {
    int col, row;
    double v;
} s_ent;

static int s_ent_cmp(const void *a, const void *b)
{
    const s_ent *x = a, *y = b;
    if (x->col != y->col)
        return (x->col > y->col) - (x->col < y->col);
    return (x->row > y->row) - (x->row < y->row);
}

static pcf_rc s_assemble(pf_dc *dc, pcf_error *err)
{
    const pf_net *n = dc->net;
    int ref = n->ref;
    s_ent *e = malloc((4 * dc->nl + 1) * sizeof *e);
    dc->bp = calloc(dc->nr + 1, sizeof(int));
    if (!e || !dc->bp) {
        free(e);
        return pcf_error_set(err, PCF_ERR_NOMEM, "dcpf: out of memory");
    }
    size_t ne = 0;
    for (size_t l = 0; l < dc->nl; l++) {
        int f = n->f[l], t = n->t[l];
        double b = dc->bb[l];
        int rf = f < ref ? f : f - 1, rt = t < ref ? t : t - 1;
        if (f != ref) e[ne++] = (s_ent){ rf, rf, b };
        if (t != ref) e[ne++] = (s_ent){ rt, rt, b };
        if (f != ref && t != ref) {
            e[ne++] = (s_ent){ rt, rf, -b };
            e[ne++] = (s_ent){ rf, rt, -b };
        }
    }
    qsort(e, ne, sizeof *e, s_ent_cmp);
    dc->bi = malloc((ne + 1) * sizeof(int));
    dc->bx = malloc((ne + 1) * sizeof(double));
    if (!dc->bi || !dc->bx) {
        free(e);
        return pcf_error_set(err, PCF_ERR_NOMEM, "dcpf: out of memory");
    }
    size_t w = 0;
    for (size_t k = 0; k < ne; k++) {
        if (w > 0 && e[k].col == e[k - 1].col && e[k].row == e[k - 1].row) {
            dc->bx[w - 1] += e[k].v;
            continue;
        }
        dc->bi[w] = e[k].row;
        dc->bx[w] = e[k].v;
        dc->bp[e[k].col + 1]++;
        w++;
    }
    for (size_t c = 0; c < dc->nr; c++)
        dc->bp[c + 1] += dc->bp[c];
    free(e);
    return PCF_OK;
}

pcf_rc pf_dc_new(const pf_net *net, pf_dc **out, pcf_error *err)
{
    *out = NULL;
    pcf_rc rc;
    if ((rc = pf_net_connected(net, err)) != PCF_OK)
        return rc;
    for (size_t l = 0; l < net->nl; l++)
        if (net->x[l] == 0)
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "dcpf: branch row %d has x = 0", net->br_row[l] + 1);
    pf_dc *dc = calloc(1, sizeof *dc);
    if (!dc)
        return pcf_error_set(err, PCF_ERR_NOMEM, "dcpf: out of memory");
    dc->net = net;
    dc->nb = net->nb;
    dc->nl = net->nl;
    dc->nr = net->nb - 1;
    klu_defaults(&dc->common);
    size_t nb = dc->nb, nl = dc->nl;
    dc->bb = malloc((nl + 1) * sizeof(double));
    dc->pfinj = malloc((nl + 1) * sizeof(double));
    dc->pbusinj = calloc(nb, sizeof(double));
    dc->pbus = malloc(nb * sizeof(double));
    dc->rhs = malloc(nb * sizeof(double));
    dc->theta = malloc(nb * sizeof(double));
    if (!dc->bb || !dc->pfinj || !dc->pbusinj || !dc->pbus || !dc->rhs || !dc->theta) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "dcpf: out of memory");
        goto fail;
    }
    for (size_t l = 0; l < nl; l++) {
        dc->bb[l] = 1.0 / (net->x[l] * net->tap[l]);
        dc->pfinj[l] = -dc->bb[l] * net->shift[l];
        dc->pbusinj[net->f[l]] += dc->pfinj[l];
        dc->pbusinj[net->t[l]] -= dc->pfinj[l];
    }
    if ((rc = s_assemble(dc, err)) != PCF_OK)
        goto fail;
    if (dc->nr > 0) {
        dc->sym = klu_analyze((int)dc->nr, dc->bp, dc->bi, &dc->common);
        if (dc->sym)
            dc->num = klu_factor(dc->bp, dc->bi, dc->bx, dc->sym, &dc->common);
        if (!dc->sym || !dc->num || dc->common.status != KLU_OK) {
            rc = pcf_error_set(err, PCF_ERR_SINGULAR,
                               "dcpf: B matrix cannot be factorised (KLU status %d)",
                               dc->common.status);
            goto fail;
        }
    }
    *out = dc;
    return PCF_OK;
fail:
    pf_dc_destroy(&dc);
    return rc;
}

pcf_rc pf_dc_check_weights(const pf_net *net, const double *w, pcf_error *err)
{
    double sum = 0;
    for (size_t i = 0; i < net->nb; i++) {
        if (!isfinite(w[i]) || w[i] < 0)
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "dcpf: slack weight of bus %.17g is %g (must be finite, >= 0)",
                                 net->bus_label[i], w[i]);
        sum += w[i];
    }
    if (fabs(sum - 1) > 1e-9)
        return pcf_error_set(err, PCF_ERR_INVALID,
                             "dcpf: slack weights sum to %.17g, not 1", sum);
    return PCF_OK;
}

pcf_rc pf_dc_solve_reduced(pf_dc *dc, double *rhs, size_t ld, size_t nrhs, pcf_error *err)
{
    if (dc->nr == 0 || nrhs == 0)
        return PCF_OK;
    if (nrhs > (size_t)1 << 30 || ld < dc->nr || ld > (size_t)1 << 30)
        return pcf_error_set(err, PCF_ERR_LIMIT, "dcpf: bad right-hand side shape");
    if (!klu_solve(dc->sym, dc->num, (int)ld, (int)nrhs, rhs, &dc->common))
        return pcf_error_set(err, PCF_ERR_SINGULAR, "dcpf: KLU solve failed (status %d)",
                             dc->common.status);
    return PCF_OK;
}

pcf_rc pf_dc_solve(pf_dc *dc, const double *p, const double *w, double *va,
                   double *flow, double *slack, pcf_error *err)
{
    const pf_net *n = dc->net;
    size_t nb = dc->nb;
    int ref = n->ref;
    pcf_rc rc;
    if (w && (rc = pf_dc_check_weights(n, w, err)) != PCF_OK)
        return rc;
    if (p)
        memcpy(dc->pbus, p, nb * sizeof(double));
    else
        pf_net_injections(n, dc->pbus, NULL);
    double mis = 0;
    for (size_t i = 0; i < nb; i++) {
        dc->pbus[i] -= dc->pbusinj[i] + n->gs[i];
        mis += dc->pbus[i];
    }
    /* Balanced injections: the slack's share of the mismatch is added. */
    for (size_t i = 0; i < nb; i++)
        dc->rhs[i] = dc->pbus[i] - (w ? w[i] * mis : 0);
    double vref = n->va0[ref];
    for (size_t l = 0; l < dc->nl; l++) {
        /* move the fixed reference angle to the right-hand side */
        if (n->f[l] == ref)
            dc->rhs[n->t[l]] += dc->bb[l] * vref;
        else if (n->t[l] == ref)
            dc->rhs[n->f[l]] += dc->bb[l] * vref;
    }
    /* compact out the reference entry */
    memmove(dc->rhs + ref, dc->rhs + ref + 1, (nb - (size_t)ref - 1) * sizeof(double));
    if ((rc = pf_dc_solve_reduced(dc, dc->rhs, dc->nr, 1, err)) != PCF_OK)
        return rc;
    for (size_t i = 0, k = 0; i < nb; i++)
        dc->theta[i] = (int)i == ref ? vref : dc->rhs[k++];
    if (va)
        memcpy(va, dc->theta, nb * sizeof(double));
    if (flow)
        for (size_t l = 0; l < dc->nl; l++)
            flow[l] = (dc->bb[l] * (dc->theta[n->f[l]] - dc->theta[n->t[l]]) + dc->pfinj[l]) *
                      n->base_mva;
    if (slack) {
        /* slack_i = (B theta)_i - Pbus_i: what bus i must add to balance */
        for (size_t i = 0; i < nb; i++)
            slack[i] = -dc->pbus[i];
        for (size_t l = 0; l < dc->nl; l++) {
            double fl = dc->bb[l] * (dc->theta[n->f[l]] - dc->theta[n->t[l]]);
            slack[n->f[l]] += fl;
            slack[n->t[l]] -= fl;
        }
        for (size_t i = 0; i < nb; i++)
            slack[i] *= n->base_mva;
    }
    return PCF_OK;
}
