/*
 * pfnet.c -- builds the indexed network model from a MATPOWER case.
 *
 * How: one pass over the bus table validates and indexes active buses; a
 * sorted (label, index) array gives O(log n) label look-ups, which also
 * detects duplicate labels.  Generators and branches are then filtered and
 * translated to internal indices.  Bus types are fixed up exactly as
 * MATPOWER's bustypes() does, so results match runpf.  Islands are found by
 * an iterative union-find over in-service branches (no recursion, so deep
 * radial feeders cannot overflow the stack).
 */
#include "pfnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_label {
    double label;
    int idx;
} s_label;

static int s_label_cmp(const void *a, const void *b)
{
    const s_label *x = a, *y = b;
    return (x->label > y->label) - (x->label < y->label);
}

static const char *s_src(const mp_case *c)
{
    return c->name[0] ? c->name : "case";
}

/* The sorted label array (every case row, isolated buses included, idx =
 * case row) is kept after construction for pf_net_bus_index; it hides
 * behind the public struct (allocated in the same block). */
typedef struct s_net {
    pf_net pub;
    s_label *sorted;        /* [nbus_case] */
} s_net;

void pf_net_destroy(pf_net **net)
{
    if (!net || !*net)
        return;
    pf_net *n = *net;
    free(n->bus_row); free(n->row_bus); free(n->bus_label); free(n->type);
    free(n->pv); free(n->pq); free(n->pd); free(n->qd); free(n->gs);
    free(n->bs); free(n->vm0); free(n->va0);
    free(n->gen_row); free(n->gen_bus); free(n->pg); free(n->qg); free(n->vg);
    free(n->qmax); free(n->qmin);
    free(n->br_row); free(n->row_br); free(n->f); free(n->t); free(n->r);
    free(n->x); free(n->b); free(n->tap); free(n->shift); free(n->island);
    free(((s_net *)n)->sorted);
    free(n);
    *net = NULL;
}

/* Case row of the bus labelled `label` (active or isolated), or -1. */
static long s_any_row(const pf_net *net, double label)
{
    const s_net *sn = (const s_net *)net;
    size_t lo = 0, hi = net->nbus_case;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sn->sorted[mid].label < label)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < net->nbus_case && sn->sorted[lo].label == label)
        return sn->sorted[lo].idx;
    return -1;
}

int pf_net_bus_index(const pf_net *net, double label)
{
    long r = s_any_row(net, label);
    return r < 0 ? -1 : net->row_bus[r];
}

static int s_finite_row(const mp_matrix *m, size_t r, size_t ncols)
{
    for (size_t k = 0; k < ncols && k < m->cols; k++)
        if (!isfinite(MP_AT(m, r, k)))
            return 0;
    return 1;
}

/* Buses: validate, index active ones, build the sorted label table.  All
 * labels (isolated buses too) go in it so that a branch to a type-4 bus is
 * recognised as "attached to a dropped bus", not "unknown". */
static pcf_rc s_buses(const mp_case *c, s_net *sn, pcf_error *err)
{
    pf_net *n = &sn->pub;
    const mp_matrix *B = &c->bus;
    size_t nb = 0;
    for (size_t r = 0; r < B->rows; r++) {
        double type = MP_AT(B, r, MP_BUS_TYPE), lab = MP_AT(B, r, MP_BUS_I);
        if (!s_finite_row(B, r, MP_VA + 1))
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: bus row %zu: non-finite value", s_src(c), r + 1);
        if (type != MP_PQ && type != MP_PV && type != MP_REF && type != MP_NONE)
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: bus row %zu: bus type %g is not 1..4",
                                 s_src(c), r + 1, type);
        if (lab != floor(lab) || lab < 1 || lab > 1e15)
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: bus row %zu: bus number %g is not a positive integer",
                                 s_src(c), r + 1, lab);
        if (type != MP_NONE)
            nb++;
    }
    n->nb = nb;
    if (nb == 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: no active bus", s_src(c));
    n->bus_row = malloc(nb * sizeof *n->bus_row);
    n->row_bus = malloc((B->rows ? B->rows : 1) * sizeof *n->row_bus);
    n->bus_label = malloc(nb * sizeof(double));
    n->type = malloc(nb * sizeof(int));
    n->pd = malloc(nb * sizeof(double)); n->qd = malloc(nb * sizeof(double));
    n->gs = malloc(nb * sizeof(double)); n->bs = malloc(nb * sizeof(double));
    n->vm0 = malloc(nb * sizeof(double)); n->va0 = malloc(nb * sizeof(double));
    s_label *all = malloc((B->rows ? B->rows : 1) * sizeof *all);
    sn->sorted = all;
    if (!n->bus_row || !n->row_bus || !n->bus_label || !n->type || !n->pd ||
        !n->qd || !n->gs || !n->bs || !n->vm0 || !n->va0 || !all) {
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", s_src(c));
    }
    double base = c->base_mva;
    size_t i = 0;
    for (size_t r = 0; r < B->rows; r++) {
        all[r].label = MP_AT(B, r, MP_BUS_I);
        all[r].idx = (int)r;
        if (MP_AT(B, r, MP_BUS_TYPE) == MP_NONE) {
            n->row_bus[r] = -1;
            continue;
        }
        n->row_bus[r] = (int)i;
        n->bus_row[i] = (int)r;
        n->bus_label[i] = MP_AT(B, r, MP_BUS_I);
        n->type[i] = (int)MP_AT(B, r, MP_BUS_TYPE);
        n->pd[i] = MP_AT(B, r, MP_PD) / base;
        n->qd[i] = MP_AT(B, r, MP_QD) / base;
        n->gs[i] = MP_AT(B, r, MP_GS) / base;
        n->bs[i] = MP_AT(B, r, MP_BS) / base;
        n->vm0[i] = MP_AT(B, r, MP_VM);
        n->va0[i] = MP_AT(B, r, MP_VA) * M_PI / 180.0;
        i++;
    }
    qsort(all, B->rows, sizeof *all, s_label_cmp);
    for (size_t r = 1; r < B->rows; r++)
        if (all[r].label == all[r - 1].label) {
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: bus number %.17g appears twice", s_src(c), all[r].label);
        }
    return PCF_OK;
}

static pcf_rc s_gens(const mp_case *c, s_net *sn, pcf_error *err)
{
    pf_net *n = &sn->pub;
    const mp_matrix *G = &c->gen;
    size_t ng = 0;
    n->gen_row = malloc((G->rows ? G->rows : 1) * sizeof(int));
    n->gen_bus = malloc((G->rows ? G->rows : 1) * sizeof(int));
    n->pg = malloc((G->rows ? G->rows : 1) * sizeof(double));
    n->qg = malloc((G->rows ? G->rows : 1) * sizeof(double));
    n->vg = malloc((G->rows ? G->rows : 1) * sizeof(double));
    n->qmax = malloc((G->rows ? G->rows : 1) * sizeof(double));
    n->qmin = malloc((G->rows ? G->rows : 1) * sizeof(double));
    if (!n->gen_row || !n->gen_bus || !n->pg || !n->qg || !n->vg || !n->qmax || !n->qmin)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", s_src(c));
    for (size_t r = 0; r < G->rows; r++) {
        double lab = MP_AT(G, r, MP_GEN_BUS), st = MP_AT(G, r, MP_GEN_STATUS);
        if (!isfinite(lab) || !isfinite(st) || !isfinite(MP_AT(G, r, MP_PG)) ||
            !isfinite(MP_AT(G, r, MP_QG)) || !isfinite(MP_AT(G, r, MP_VG)))
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: gen row %zu: non-finite value", s_src(c), r + 1);
        if (!(st > 0))
            continue;
        int bi = pf_net_bus_index(n, lab);
        if (bi < 0) {
            if (s_any_row(n, lab) >= 0)
                continue;               /* on an isolated bus: dropped */
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: gen row %zu: unknown bus %.17g", s_src(c), r + 1, lab);
        }
        n->gen_row[ng] = (int)r;
        n->gen_bus[ng] = bi;
        n->pg[ng] = MP_AT(G, r, MP_PG) / c->base_mva;
        n->qg[ng] = MP_AT(G, r, MP_QG) / c->base_mva;
        n->vg[ng] = MP_AT(G, r, MP_VG);
        n->qmax[ng] = MP_AT(G, r, MP_QMAX) / c->base_mva;
        n->qmin[ng] = MP_AT(G, r, MP_QMIN) / c->base_mva;
        ng++;
    }
    n->ng = ng;
    return PCF_OK;
}

static pcf_rc s_branches(const mp_case *c, s_net *sn, pcf_error *err)
{
    pf_net *n = &sn->pub;
    const mp_matrix *L = &c->branch;
    size_t cap = L->rows ? L->rows : 1, nl = 0;
    n->br_row = malloc(cap * sizeof(int)); n->row_br = malloc(cap * sizeof(int));
    n->f = malloc(cap * sizeof(int)); n->t = malloc(cap * sizeof(int));
    n->r = malloc(cap * sizeof(double)); n->x = malloc(cap * sizeof(double));
    n->b = malloc(cap * sizeof(double)); n->tap = malloc(cap * sizeof(double));
    n->shift = malloc(cap * sizeof(double));
    if (!n->br_row || !n->row_br || !n->f || !n->t || !n->r || !n->x || !n->b ||
        !n->tap || !n->shift)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", s_src(c));
    for (size_t r = 0; r < L->rows; r++) {
        n->row_br[r] = -1;
        if (!s_finite_row(L, r, MP_BR_STATUS + 1))
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: branch row %zu: non-finite value", s_src(c), r + 1);
        double fl = MP_AT(L, r, MP_F_BUS), tl = MP_AT(L, r, MP_T_BUS);
        int fi = pf_net_bus_index(n, fl), ti = pf_net_bus_index(n, tl);
        if ((fi < 0 && s_any_row(n, fl) < 0) || (ti < 0 && s_any_row(n, tl) < 0))
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: branch row %zu: unknown bus %.17g",
                                 s_src(c), r + 1, fi < 0 ? fl : tl);
        if (MP_AT(L, r, MP_BR_STATUS) == 0 || fi < 0 || ti < 0)
            continue;
        double rr = MP_AT(L, r, MP_BR_R), xx = MP_AT(L, r, MP_BR_X);
        double tap = MP_AT(L, r, MP_TAP);
        if (rr == 0 && xx == 0)
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: branch row %zu: zero impedance (r = x = 0)",
                                 s_src(c), r + 1);
        if (fi == ti)
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "%s: branch row %zu: both ends on bus %.17g",
                                 s_src(c), r + 1, fl);
        n->row_br[r] = (int)nl;
        n->br_row[nl] = (int)r;
        n->f[nl] = fi;
        n->t[nl] = ti;
        n->r[nl] = rr;
        n->x[nl] = xx;
        n->b[nl] = MP_AT(L, r, MP_BR_B);
        n->tap[nl] = tap == 0 ? 1.0 : tap;
        n->shift[nl] = MP_AT(L, r, MP_SHIFT) * M_PI / 180.0;
        nl++;
    }
    n->nl = nl;
    return PCF_OK;
}

/* MATPOWER bustypes(): PV/REF need an in-service generator; with no REF left
 * the first PV bus becomes the reference. */
static pcf_rc s_types(const mp_case *c, pf_net *n, pcf_error *err)
{
    char *hasgen = calloc(n->nb, 1);
    if (!hasgen)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", s_src(c));
    for (size_t g = 0; g < n->ng; g++)
        hasgen[n->gen_bus[g]] = 1;
    int ref = -1, nref = 0;
    for (size_t i = 0; i < n->nb; i++) {
        if (!hasgen[i])
            n->type[i] = MP_PQ;
        if (n->type[i] == MP_REF) {
            if (ref < 0)
                ref = (int)i;
            nref++;
        }
    }
    free(hasgen);
    if (ref < 0)
        for (size_t i = 0; i < n->nb && ref < 0; i++)
            if (n->type[i] == MP_PV) {
                ref = (int)i;
                n->type[i] = MP_REF;
                nref = 1;
            }
    if (ref < 0)
        return pcf_error_set(err, PCF_ERR_INVALID,
                             "%s: no reference bus with an in-service generator", s_src(c));
    if (nref > 1)
        return pcf_error_set(err, PCF_ERR_INVALID,
                             "%s: %d reference buses; exactly one is supported", s_src(c), nref);
    n->ref = ref;
    n->pv = malloc(n->nb * sizeof(int));
    n->pq = malloc(n->nb * sizeof(int));
    if (!n->pv || !n->pq)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", s_src(c));
    n->npv = n->npq = 0;
    for (size_t i = 0; i < n->nb; i++) {
        if (n->type[i] == MP_PV)
            n->pv[n->npv++] = (int)i;
        else if (n->type[i] == MP_PQ)
            n->pq[n->npq++] = (int)i;
    }
    return PCF_OK;
}

static int s_find(int *parent, int i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

static pcf_rc s_islands(pf_net *n, pcf_error *err)
{
    int *parent = malloc(n->nb * sizeof(int));
    n->island = malloc(n->nb * sizeof(int));
    if (!parent || !n->island) {
        free(parent);
        return pcf_error_set(err, PCF_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n->nb; i++)
        parent[i] = (int)i;
    for (size_t l = 0; l < n->nl; l++) {
        int a = s_find(parent, n->f[l]), b = s_find(parent, n->t[l]);
        if (a != b)
            parent[a < b ? b : a] = a < b ? a : b;
    }
    /* The reference bus's component gets id 0, the rest in bus order. */
    for (size_t i = 0; i < n->nb; i++)
        n->island[i] = -1;
    int root_ref = s_find(parent, n->ref), next = 1;
    for (size_t i = 0; i < n->nb; i++) {
        int root = s_find(parent, (int)i);
        if (root == root_ref)
            n->island[i] = 0;
        else if (n->island[root] >= 0)
            n->island[i] = n->island[root];
        else
            n->island[i] = n->island[root] = next++;
    }
    n->nisland = (size_t)next;
    free(parent);
    return PCF_OK;
}

pcf_rc pf_net_new(const mp_case *c, pf_net **out, pcf_error *err)
{
    *out = NULL;
    if (!c || !(c->base_mva > 0) || !isfinite(c->base_mva))
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: baseMVA must be positive",
                             c ? s_src(c) : "case");
    if (c->bus.rows > PF_MAX_BUSES || c->branch.rows > PF_MAX_BRANCHES ||
        c->gen.rows > PF_MAX_BRANCHES)
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: network larger than %d buses or %d branches",
                             s_src(c), PF_MAX_BUSES, PF_MAX_BRANCHES);
    if (c->bus.cols < MP_VA + 1 || c->gen.cols < MP_PMIN + 1 ||
        (c->branch.rows && c->branch.cols < MP_BRANCH_NCOLS_REQUIRED))
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: bus, gen or branch table too narrow",
                             s_src(c));
    s_net *sn = calloc(1, sizeof *sn);
    if (!sn)
        return pcf_error_set(err, PCF_ERR_NOMEM, "out of memory");
    pf_net *n = &sn->pub;
    n->base_mva = c->base_mva;
    n->nbus_case = c->bus.rows;
    n->nbr_case = c->branch.rows;
    n->ngen_case = c->gen.rows;
    pcf_rc rc;
    if ((rc = s_buses(c, sn, err)) != PCF_OK || (rc = s_gens(c, sn, err)) != PCF_OK ||
        (rc = s_branches(c, sn, err)) != PCF_OK || (rc = s_types(c, n, err)) != PCF_OK ||
        (rc = s_islands(n, err)) != PCF_OK) {
        pf_net_destroy(&n);
        return rc;
    }
    *out = n;
    return PCF_OK;
}

pcf_rc pf_net_connected(const pf_net *net, pcf_error *err)
{
    if (net->nisland <= 1)
        return PCF_OK;
    for (size_t i = 0; i < net->nb; i++)
        if (net->island[i] != 0)
            return pcf_error_set(err, PCF_ERR_ISLAND,
                                 "network has %zu islands: bus %.17g is not connected to "
                                 "reference bus %.17g", net->nisland, net->bus_label[i],
                                 net->bus_label[net->ref]);
    return pcf_error_set(err, PCF_ERR_INTERNAL, "island bookkeeping inconsistent");
}

void pf_net_injections(const pf_net *net, double *p, double *q)
{
    for (size_t i = 0; i < net->nb; i++) {
        if (p) p[i] = -net->pd[i];
        if (q) q[i] = -net->qd[i];
    }
    for (size_t g = 0; g < net->ng; g++) {
        if (p) p[net->gen_bus[g]] += net->pg[g];
        if (q) q[net->gen_bus[g]] += net->qg[g];
    }
}
