/*
 * pcf-pf.c -- command-line power flow over a MATPOWER case.
 *
 *   pcf-pf [--dc] [--flat-start] [--ptdf] [--lodf] [--n1] --out DIR CASE.m
 *
 * Writes DIR/bus.csv and DIR/branch.csv (AC: bus_i,Vm_pu,Va_deg and
 * idx,f_bus,t_bus,PF_MW,QF_MVAr,PT_MW,QT_MVAr; --dc: bus_i,Va_deg and
 * idx,f_bus,t_bus,PF_MW), optionally DIR/ptdf.csv, DIR/lodf.csv and
 * DIR/n1_flows.csv (DC, reference-bus slack).  Every branch row of the case
 * is printed (idx = 1-based row), out-of-service ones as zeros; isolated
 * buses (type 4) are left out.  Numbers use %.17g, NaN as "NaN".  The last
 * stdout line is `converged iterations=K max_mismatch=X`, or
 * `not converged iterations=K max_mismatch=X` with exit status 2; bad input
 * (including an islanded network) exits 1 with the reason on stderr.
 * Nothing is written when the flow does not converge.
 *
 * A thin main: all numerics live in the forecaster library.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "acpf.h"
#include "dcpf.h"
#include "mpcase.h"
#include "pfnet.h"
#include "sens.h"

typedef struct s_opts {
    int dc, flat, ptdf, lodf, n1;
    const char *out, *casefile;
} s_opts;

typedef struct s_run {
    s_opts o;
    mp_case *c;
    pf_net *net;
    pf_ac *ac;
    pf_dc *dc;
    double *a, *b, *flows[4], *ptdf, *lodf;
    unsigned char *bridge;
    FILE *fp;
    pcf_error err;
} s_run;

static void s_usage(void)
{
    fprintf(stderr, "usage: pcf-pf [--dc] [--flat-start] [--ptdf] [--lodf] [--n1] "
                    "--out DIR CASE.m\n");
}

static int s_args(int argc, char **argv, s_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dc")) o->dc = 1;
        else if (!strcmp(a, "--flat-start")) o->flat = 1;
        else if (!strcmp(a, "--ptdf")) o->ptdf = 1;
        else if (!strcmp(a, "--lodf")) o->lodf = 1;
        else if (!strcmp(a, "--n1")) o->n1 = 1;
        else if (!strcmp(a, "--out") && i + 1 < argc) o->out = argv[++i];
        else if (a[0] == '-' && a[1] != '\0') return -1;
        else if (!o->casefile) o->casefile = a;
        else return -1;
    }
    return o->out && o->casefile ? 0 : -1;
}

static void s_num(FILE *fp, double v)
{
    if (isnan(v))
        fputs("NaN", fp);
    else
        fprintf(fp, "%.17g", v);
}

static int s_open(s_run *r, const char *name)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", r->o.out, name);
    if (n < 0 || (size_t)n >= sizeof path) {
        pcf_error_set(&r->err, PCF_ERR_INVALID, "%s: output path too long", r->o.out);
        return -1;
    }
    r->fp = fopen(path, "w");
    if (!r->fp) {
        pcf_error_set(&r->err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int s_close(s_run *r, const char *name)
{
    int bad = ferror(r->fp);
    if (fclose(r->fp) != 0)
        bad = 1;
    r->fp = NULL;
    if (bad) {
        pcf_error_set(&r->err, PCF_ERR_IO, "%s/%s: write failed", r->o.out, name);
        return -1;
    }
    return 0;
}

/* f_bus, t_bus of a case branch row as printed labels. */
static void s_ends(const s_run *r, size_t row)
{
    fprintf(r->fp, "%zu,%.17g,%.17g", row + 1, MP_AT(&r->c->branch, row, MP_F_BUS),
            MP_AT(&r->c->branch, row, MP_T_BUS));
}

static int s_write_ac(s_run *r, const double *vm, const double *va)
{
    const pf_net *n = r->net;
    if (s_open(r, "bus.csv"))
        return -1;
    fputs("bus_i,Vm_pu,Va_deg\n", r->fp);
    for (size_t i = 0; i < n->nb; i++) {
        fprintf(r->fp, "%.17g,", n->bus_label[i]);
        s_num(r->fp, vm[i]);
        fputc(',', r->fp);
        s_num(r->fp, va[i] * 180.0 / M_PI);
        fputc('\n', r->fp);
    }
    if (s_close(r, "bus.csv") || s_open(r, "branch.csv"))
        return -1;
    fputs("idx,f_bus,t_bus,PF_MW,QF_MVAr,PT_MW,QT_MVAr\n", r->fp);
    for (size_t row = 0; row < n->nbr_case; row++) {
        int l = n->row_br[row];
        s_ends(r, row);
        for (int k = 0; k < 4; k++) {
            fputc(',', r->fp);
            s_num(r->fp, l < 0 ? 0.0 : r->flows[k][l]);
        }
        fputc('\n', r->fp);
    }
    return s_close(r, "branch.csv");
}

static int s_write_dc(s_run *r, const double *va, const double *pf)
{
    const pf_net *n = r->net;
    if (s_open(r, "bus.csv"))
        return -1;
    fputs("bus_i,Va_deg\n", r->fp);
    for (size_t i = 0; i < n->nb; i++) {
        fprintf(r->fp, "%.17g,", n->bus_label[i]);
        s_num(r->fp, va[i] * 180.0 / M_PI);
        fputc('\n', r->fp);
    }
    if (s_close(r, "bus.csv") || s_open(r, "branch.csv"))
        return -1;
    fputs("idx,f_bus,t_bus,PF_MW\n", r->fp);
    for (size_t row = 0; row < n->nbr_case; row++) {
        int l = n->row_br[row];
        s_ends(r, row);
        fputc(',', r->fp);
        s_num(r->fp, l < 0 ? 0.0 : pf[l]);
        fputc('\n', r->fp);
    }
    return s_close(r, "branch.csv");
}

/* A case-rows x columns matrix: value(r, row, col) with in-service index
 * translation done by the caller's callback. */
typedef double (*s_cell)(const s_run *r, int lrow, int lcol, size_t col);

static double s_ptdf_cell(const s_run *r, int l, int unused, size_t col)
{
    (void)unused;
    return l < 0 ? 0.0 : r->ptdf[(size_t)l * r->net->nb + col];
}

static double s_lodf_cell(const s_run *r, int l, int j, size_t col)
{
    (void)col;
    if (j < 0)
        return 0.0;     /* outage of a branch already out: nothing changes */
    if (l < 0)
        return r->bridge[j] ? NAN : 0.0;
    return r->lodf[(size_t)l * r->net->nl + (size_t)j];
}

static double s_n1_cell(const s_run *r, int l, int j, size_t col)
{
    (void)col;
    if (j >= 0 && r->bridge[j])
        return NAN;
    if (l < 0)
        return 0.0;
    const double *base = r->flows[0];
    if (j < 0)
        return base[l];
    return base[l] + r->lodf[(size_t)l * r->net->nl + (size_t)j] * base[j];
}

static int s_write_matrix(s_run *r, const char *name, const char *prefix, size_t ncols,
                          int cols_are_branches, s_cell cell)
{
    const pf_net *n = r->net;
    if (s_open(r, name))
        return -1;
    for (size_t k = 0; k < ncols; k++)
        fprintf(r->fp, "%s%s%zu", k ? "," : "", prefix, k + 1);
    fputc('\n', r->fp);
    for (size_t row = 0; row < n->nbr_case; row++) {
        int l = n->row_br[row];
        for (size_t k = 0; k < ncols; k++) {
            int j = cols_are_branches ? n->row_br[k] : 0;
            double v = cell(r, l, j, k);
            /* LODF(l,l) = -1 even for a branch that is out of service */
            if (cols_are_branches && cell == s_lodf_cell && k == row && !(j >= 0 && r->bridge[j]))
                v = -1.0;
            if (k)
                fputc(',', r->fp);
            s_num(r->fp, v);
        }
        fputc('\n', r->fp);
    }
    return s_close(r, name);
}

static int s_alloc(s_run *r, double **p, size_t n)
{
    *p = malloc((n ? n : 1) * sizeof(double));
    if (!*p) {
        pcf_error_set(&r->err, PCF_ERR_NOMEM, "out of memory");
        return -1;
    }
    return 0;
}

/* Returns the exit status. */
static int s_main(s_run *r)
{
    r->c = mp_case_read(r->o.casefile, &r->err);
    if (!r->c)
        return 1;
    if (pf_net_new(r->c, &r->net, &r->err) != PCF_OK ||
        pf_net_connected(r->net, &r->err) != PCF_OK)
        return 1;
    if (mkdir(r->o.out, 0777) != 0 && errno != EEXIST) {
        pcf_error_set(&r->err, PCF_ERR_IO, "%s: %s", r->o.out, strerror(errno));
        return 1;
    }
    const pf_net *n = r->net;
    size_t nb = n->nb, nl = n->nl;
    if (s_alloc(r, &r->a, nb) || s_alloc(r, &r->b, nb))
        return 1;
    for (int k = 0; k < 4; k++)
        if (s_alloc(r, &r->flows[k], nl))
            return 1;
    int need_dc = r->o.dc || r->o.ptdf || r->o.lodf || r->o.n1;
    if (need_dc && pf_dc_new(n, &r->dc, &r->err) != PCF_OK)
        return 1;
    char status[160];
    if (r->o.dc) {
        if (pf_dc_solve(r->dc, NULL, NULL, r->a, r->flows[0], r->b, &r->err) != PCF_OK)
            return 1;
        double worst = 0;
        for (size_t i = 0; i < nb; i++)
            if ((int)i != n->ref)
                worst = fmax(worst, fabs(r->b[i]) / n->base_mva);
        if (s_write_dc(r, r->a, r->flows[0]))
            return 1;
        snprintf(status, sizeof status, "converged iterations=1 max_mismatch=%.17g", worst);
    } else {
        if (pf_ac_new(n, &r->ac, &r->err) != PCF_OK)
            return 1;
        pf_ac_start(r->ac, r->o.flat, r->a, r->b);
        pf_ac_stats st;
        pcf_rc rc = pf_ac_solve(r->ac, NULL, NULL, r->a, r->b, NULL, &st, &r->err);
        if (rc == PCF_ERR_NOCONV || rc == PCF_ERR_SINGULAR) {
            fprintf(stderr, "pcf-pf: %s\n", r->err.msg);
            printf("not converged iterations=%d max_mismatch=%.17g\n", st.iterations,
                   st.max_mismatch);
            return 2;
        }
        if (rc != PCF_OK)
            return 1;
        pf_ac_flows(r->ac, r->a, r->b, r->flows[0], r->flows[1], r->flows[2], r->flows[3]);
        if (s_write_ac(r, r->a, r->b))
            return 1;
        snprintf(status, sizeof status, "converged iterations=%d max_mismatch=%.17g",
                 st.iterations, st.max_mismatch);
    }
    if (r->o.ptdf || r->o.lodf || r->o.n1) {
        if (s_alloc(r, &r->ptdf, nl * nb) || !(r->bridge = malloc(nl + 1)))
            return pcf_error_set(&r->err, PCF_ERR_NOMEM, "out of memory"), 1;
        if (pf_ptdf(r->dc, n, NULL, r->ptdf, &r->err) != PCF_OK ||
            pf_bridges(n, r->bridge, &r->err) != PCF_OK)
            return 1;
        if (r->o.ptdf && s_write_matrix(r, "ptdf.csv", "bus", nb, 0, s_ptdf_cell))
            return 1;
    }
    if (r->o.lodf || r->o.n1) {
        if (s_alloc(r, &r->lodf, nl * nl) ||
            pf_lodf(n, r->ptdf, r->bridge, r->lodf, &r->err) != PCF_OK)
            return 1;
        if (r->o.lodf && s_write_matrix(r, "lodf.csv", "out", n->nbr_case, 1, s_lodf_cell))
            return 1;
    }
    if (r->o.n1) {
        /* base DC flows with the reference-bus slack */
        if (pf_dc_solve(r->dc, NULL, NULL, NULL, r->flows[0], NULL, &r->err) != PCF_OK ||
            s_write_matrix(r, "n1_flows.csv", "out", n->nbr_case, 1, s_n1_cell))
            return 1;
    }
    printf("%s\n", status);
    return 0;
}

int main(int argc, char **argv)
{
    s_run r;
    memset(&r, 0, sizeof r);
    if (s_args(argc, argv, &r.o) != 0) {
        s_usage();
        return 1;
    }
    int status = s_main(&r);
    if (status == 1)
        fprintf(stderr, "pcf-pf: %s\n", r.err.msg[0] ? r.err.msg : "failed");
    if (r.fp)
        fclose(r.fp);
    pf_ac_destroy(&r.ac);
    pf_dc_destroy(&r.dc);
    pf_net_destroy(&r.net);
    mp_case_destroy(&r.c);
    free(r.a); free(r.b); free(r.ptdf); free(r.lodf); free(r.bridge);
    for (int k = 0; k < 4; k++)
        free(r.flows[k]);
    return status;
}
