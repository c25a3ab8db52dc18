/*
 * sens.c -- PTDF, LODF and bridges; see sens.h for the formulation.
 *
 * PTDF is computed in the caller's buffer: row l first holds the reduced
 * right-hand side (nb - 1 entries), KLU solves all rows at once with leading
 * dimension nb, then each row is shifted to make room for the reference
 * bus's zero column.  No nl x nb temporary is needed.
 */
#include "sens.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

pcf_rc pf_ptdf_rows(pf_dc *dc, const pf_net *net, const double *w, const int *rows,
                    size_t nrows, double *ptdf, pcf_error *err)
{
    size_t nb = net->nb, nl = net->nl;
    int ref = net->ref;
    const double *bb = pf_dc_branch_b(dc);
    pcf_rc rc;
    if (w && (rc = pf_dc_check_weights(net, w, err)) != PCF_OK)
        return rc;
    for (size_t r = 0; r < nrows; r++)
        if (rows[r] < 0 || (size_t)rows[r] >= nl)
            return pcf_error_set(err, PCF_ERR_INVALID, "sens: branch index %d out of range",
                                 rows[r]);
    memset(ptdf, 0, nrows * nb * sizeof(double));
    for (size_t r = 0; r < nrows; r++) {
        double *row = ptdf + r * nb;
        size_t l = (size_t)rows[r];
        int f = net->f[l], t = net->t[l];
        if (f != ref) row[f < ref ? f : f - 1] += bb[l];
        if (t != ref) row[t < ref ? t : t - 1] -= bb[l];
    }
    if ((rc = pf_dc_solve_reduced(dc, ptdf, nb, nrows, err)) != PCF_OK)
        return rc;
    for (size_t r = 0; r < nrows; r++) {
        double *row = ptdf + r * nb;
        memmove(row + ref + 1, row + ref, (nb - 1 - (size_t)ref) * sizeof(double));
        row[ref] = 0;
        if (w) {
            double s = 0;
            for (size_t i = 0; i < nb; i++)
                s += row[i] * w[i];
            for (size_t i = 0; i < nb; i++)
                row[i] -= s;
        }
    }
    return PCF_OK;
}

pcf_rc pf_ptdf(pf_dc *dc, const pf_net *net, const double *w, double *ptdf,
               pcf_error *err)
{
    size_t nl = net->nl;
    int *rows = malloc((nl + 1) * sizeof(int));
    if (!rows)
        return pcf_error_set(err, PCF_ERR_NOMEM, "sens: out of memory");
    for (size_t l = 0; l < nl; l++)
        rows[l] = (int)l;
    pcf_rc rc = pf_ptdf_rows(dc, net, w, rows, nl, ptdf, err);
    free(rows);
    return rc;
}

typedef struct s_frame {
    int v, in_edge, pos;
} s_frame;

pcf_rc pf_bridges(const pf_net *net, unsigned char *is_bridge, pcf_error *err)
{
    size_t nb = net->nb, nl = net->nl;
    int *adj_p = calloc(nb + 1, sizeof(int));
    int *adj = malloc((2 * nl + 1) * sizeof(int));      /* edge ids */
    int *disc = malloc(nb * sizeof(int)), *low = malloc(nb * sizeof(int));
    s_frame *st = malloc(nb * sizeof *st);
    if (!adj_p || !adj || !disc || !low || !st) {
        free(adj_p); free(adj); free(disc); free(low); free(st);
        return pcf_error_set(err, PCF_ERR_NOMEM, "sens: out of memory");
    }
    for (size_t l = 0; l < nl; l++) {
        adj_p[net->f[l] + 1]++;
        adj_p[net->t[l] + 1]++;
        is_bridge[l] = 0;
    }
    for (size_t i = 0; i < nb; i++)
        adj_p[i + 1] += adj_p[i];
    int *fill = disc;           /* borrowed as a cursor before the DFS */
    for (size_t i = 0; i < nb; i++)
        fill[i] = adj_p[i];
    for (size_t l = 0; l < nl; l++) {
        adj[fill[net->f[l]]++] = (int)l;
        adj[fill[net->t[l]]++] = (int)l;
    }
    for (size_t i = 0; i < nb; i++)
        disc[i] = -1;
    int time = 0;
    for (size_t root = 0; root < nb; root++) {
        if (disc[root] >= 0)
            continue;
        int sp = 0;
        st[0] = (s_frame){ (int)root, -1, adj_p[root] };
        disc[root] = low[root] = time++;
        while (sp >= 0) {
            s_frame *fr = &st[sp];
            int v = fr->v;
            if (fr->pos < adj_p[v + 1]) {
                int e = adj[fr->pos++];
                if (e == fr->in_edge)
                    continue;           /* the edge we came by, not a parallel one */
                int w = net->f[e] == v ? net->t[e] : net->f[e];
                if (disc[w] < 0) {
                    disc[w] = low[w] = time++;
                    st[++sp] = (s_frame){ w, e, adj_p[w] };
                } else if (disc[w] < low[v]) {
                    low[v] = disc[w];
                }
            } else {
                int e = fr->in_edge;
                sp--;
                if (sp >= 0) {
                    int u = st[sp].v;
                    if (low[v] < low[u])
                        low[u] = low[v];
                    if (low[v] > disc[u])
                        is_bridge[e] = 1;
                }
            }
        }
    }
    free(adj_p); free(adj); free(disc); free(low); free(st);
    return PCF_OK;
}

pcf_rc pf_lodf(const pf_net *net, const double *ptdf, const unsigned char *is_bridge,
               double *lodf, pcf_error *err)
{
    size_t nb = net->nb, nl = net->nl;
    unsigned char *own = NULL;
    pcf_rc rc;
    if (!is_bridge) {
        own = malloc(nl + 1);
        if (!own)
            return pcf_error_set(err, PCF_ERR_NOMEM, "sens: out of memory");
        if ((rc = pf_bridges(net, own, err)) != PCF_OK) {
            free(own);
            return rc;
        }
        is_bridge = own;
    }
    double *den = malloc((nl + 1) * sizeof(double));
    if (!den) {
        free(own);
        return pcf_error_set(err, PCF_ERR_NOMEM, "sens: out of memory");
    }
    for (size_t l = 0; l < nl; l++) {
        const double *row = ptdf + l * nb;
        den[l] = 1.0 - (row[net->f[l]] - row[net->t[l]]);
    }
    for (size_t k = 0; k < nl; k++) {
        const double *row = ptdf + k * nb;
        double *out = lodf + k * nl;
        for (size_t l = 0; l < nl; l++) {
            if (is_bridge[l])
                out[l] = NAN;
            else if (l == k)
                out[l] = -1.0;
            else
                out[l] = (row[net->f[l]] - row[net->t[l]]) / den[l];
        }
    }
    free(den);
    free(own);
    return PCF_OK;
}
