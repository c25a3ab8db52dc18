/*
 * test_pf_ref.c -- the power-flow engine against MATPOWER's own answers
 * (tests/data/matpower/solutions, see its README): AC voltages, flows and
 * generator dispatch, DC angles and flows, PTDF, LODF and N-1 flows, and the
 * pcf-pf command line compared file by file with the same references.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpf.h"
#include "dcpf.h"
#include "mpcase.h"
#include "parse.h"
#include "pfnet.h"
#include "sens.h"
#include "testdb.h"

#define CASES "tests/data/matpower/cases/"
#define SOLS "tests/data/matpower/solutions/"

/* A numeric CSV with one header line: ncols names, rows x ncols values. */
typedef struct s_csv {
    size_t rows, cols;
    char names[4096][16];
    double *v;
} s_csv;

static s_csv *s_csv_read(const char *path)
{
    FILE *fp = fopen(path, "r");
    cr_assert(fp, "cannot open %s", path);
    s_csv *c = calloc(1, sizeof *c);
    cr_assert(c);
    size_t cap = 1024;
    c->v = malloc(cap * sizeof(double));
    char *line = NULL;
    size_t len = 0;
    ssize_t n;
    int header = 1;
    while ((n = getline(&line, &len, fp)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        size_t col = 0;
        char *p = line;
        for (;;) {
            char *comma = strchr(p, ',');
            size_t fl = comma ? (size_t)(comma - p) : strlen(p);
            if (header) {
                cr_assert(col < 4096 && fl < 16);
                memcpy(c->names[col], p, fl);
                c->names[col][fl] = '\0';
            } else {
                if (c->rows * c->cols + col >= cap) {
                    cap *= 2;
                    c->v = realloc(c->v, cap * sizeof(double));
                    cr_assert(c->v);
                }
                double d;
                cr_assert(parse_double_ext(p, fl, &d) == PCF_OK, "%s: bad number '%.*s'",
                          path, (int)fl, p);
                c->v[c->rows * c->cols + col] = d;
            }
            col++;
            if (!comma)
                break;
            p = comma + 1;
        }
        if (header) {
            c->cols = col;
            header = 0;
        } else {
            cr_assert_eq(col, c->cols, "%s: ragged row %zu", path, c->rows + 2);
            c->rows++;
        }
    }
    free(line);
    fclose(fp);
    return c;
}

static void s_csv_free(s_csv *c)
{
    if (c) {
        free(c->v);
        free(c);
    }
}

static size_t s_col(const s_csv *c, const char *name)
{
    for (size_t k = 0; k < c->cols; k++)
        if (!strcmp(c->names[k], name))
            return k;
    cr_assert_fail("no column %s", name);
    return 0;
}

static double s_at(const s_csv *c, size_t r, const char *name)
{
    return c->v[r * c->cols + s_col(c, name)];
}

static mp_case *s_case(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, CASES "%s.m", name);
    pcf_error err;
    mp_case *c = mp_case_read(path, &err);
    cr_assert(c, "%s: %s", path, err.msg);
    return c;
}

static s_csv *s_sol(const char *cs, const char *what)
{
    char path[256];
    snprintf(path, sizeof path, SOLS "%s_%s.csv", cs, what);
    return s_csv_read(path);
}

static const char *s_all[] = { "case9", "case14", "case30", "case57", "case_ieee30",
                               "case39", "case24_ieee_rts", "case33bw", "case69" };

static void s_check_ac(const char *cs)
{
    mp_case *c = s_case(cs);
    pf_net *net;
    pf_ac *ac;
    pcf_error err;
    cr_assert_eq(pf_net_new(c, &net, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(pf_ac_new(net, &ac, &err), PCF_OK, "%s", err.msg);
    size_t nb = net->nb, nl = net->nl;
    double *vm = malloc(nb * sizeof(double)), *va = malloc(nb * sizeof(double));
    double *fl = malloc(4 * (nl + 1) * sizeof(double));
    double *pg = malloc((net->ng + 1) * sizeof(double)), *qg = malloc((net->ng + 1) * sizeof(double));
    pf_ac_start(ac, 0, vm, va);
    pf_ac_stats st;
    cr_assert_eq(pf_ac_solve(ac, NULL, NULL, vm, va, NULL, &st, &err), PCF_OK, "%s: %s", cs,
                 err.msg);
    cr_assert(st.converged && st.max_mismatch < 1e-8);
    s_csv *bus = s_sol(cs, "bus"), *br = s_sol(cs, "branch"), *gen = s_sol(cs, "gen");
    cr_assert_eq(bus->rows, nb);
    for (size_t i = 0; i < nb; i++) {
        cr_assert_eq(s_at(bus, i, "bus_i"), net->bus_label[i]);
        cr_assert(fabs(s_at(bus, i, "Vm_pu") - vm[i]) < 1e-6, "%s bus %zu Vm %.12g vs %.12g",
                  cs, i, vm[i], s_at(bus, i, "Vm_pu"));
        cr_assert(fabs(s_at(bus, i, "Va_deg") - va[i] * 180 / M_PI) < 1e-5,
                  "%s bus %zu Va", cs, i);
    }
    pf_ac_flows(ac, vm, va, fl, fl + nl, fl + 2 * nl, fl + 3 * nl);
    static const char *names[4] = { "PF_MW", "QF_MVAr", "PT_MW", "QT_MVAr" };
    cr_assert_eq(br->rows, net->nbr_case);
    for (size_t r = 0; r < br->rows; r++) {
        int l = net->row_br[r];
        for (int k = 0; k < 4; k++) {
            double mine = l < 0 ? 0.0 : fl[(size_t)k * nl + (size_t)l];
            cr_assert(fabs(mine - s_at(br, r, names[k])) < 1e-4, "%s branch %zu %s: %.10g vs %.10g",
                      cs, r + 1, names[k], mine, s_at(br, r, names[k]));
        }
    }
    /* Generator dispatch: slack P out of the solution, Q shared as pfsoln. */
    pf_ac_gen(ac, vm, va, pg, qg);
    for (size_t g = 0; g < net->ng; g++) {
        size_t r = (size_t)net->gen_row[g];
        cr_assert(fabs(pg[g] - s_at(gen, r, "Pg_MW")) < 1e-4, "%s gen %zu Pg %.10g vs %.10g",
                  cs, r + 1, pg[g], s_at(gen, r, "Pg_MW"));
        cr_assert(fabs(qg[g] - s_at(gen, r, "Qg_MVAr")) < 1e-4, "%s gen %zu Qg %.10g vs %.10g",
                  cs, r + 1, qg[g], s_at(gen, r, "Qg_MVAr"));
    }
    /* A flat start reaches the same point. */
    pf_ac_start(ac, 1, vm, va);
    cr_assert_eq(pf_ac_solve(ac, NULL, NULL, vm, va, NULL, &st, &err), PCF_OK, "%s", err.msg);
    for (size_t i = 0; i < nb; i++)
        cr_assert(fabs(s_at(bus, i, "Vm_pu") - vm[i]) < 1e-6, "%s flat Vm", cs);
    s_csv_free(bus); s_csv_free(br); s_csv_free(gen);
    free(vm); free(va); free(fl); free(pg); free(qg);
    pf_ac_destroy(&ac);
    cr_assert_null(ac);
    pf_net_destroy(&net);
    mp_case_destroy(&c);
}

static void s_check_dc(const char *cs)
{
    mp_case *c = s_case(cs);
    pf_net *net;
    pf_dc *dc;
    pcf_error err;
    cr_assert_eq(pf_net_new(c, &net, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(pf_dc_new(net, &dc, &err), PCF_OK, "%s", err.msg);
    size_t nb = net->nb, nl = net->nl;
    double *va = malloc(nb * sizeof(double)), *f = malloc((nl + 1) * sizeof(double));
    double *sl = malloc(nb * sizeof(double));
    cr_assert_eq(pf_dc_solve(dc, NULL, NULL, va, f, sl, &err), PCF_OK, "%s", err.msg);
    s_csv *bus = s_sol(cs, "dc_bus"), *br = s_sol(cs, "dc_branch");
    for (size_t i = 0; i < nb; i++)
        cr_assert(fabs(s_at(bus, i, "Va_deg") - va[i] * 180 / M_PI) < 1e-6, "%s DC Va %zu", cs, i);
    for (size_t r = 0; r < br->rows; r++) {
        int l = net->row_br[r];
        double mine = l < 0 ? 0.0 : f[l];
        cr_assert(fabs(mine - s_at(br, r, "PF_MW")) < 1e-6, "%s DC PF %zu: %.12g vs %.12g", cs,
                  r + 1, mine, s_at(br, r, "PF_MW"));
        cr_assert(fabs(mine + s_at(br, r, "PT_MW")) < 1e-6);
    }
    /* only the reference bus absorbs anything */
    for (size_t i = 0; i < nb; i++)
        if ((int)i != net->ref)
            cr_assert(fabs(sl[i]) < 1e-8);
    s_csv_free(bus); s_csv_free(br);
    free(va); free(f); free(sl);
    pf_dc_destroy(&dc);
    pf_net_destroy(&net);
    mp_case_destroy(&c);
}

Test(pf_ac, every_reference_case)
{
    for (size_t k = 0; k < sizeof s_all / sizeof *s_all; k++)
        s_check_ac(s_all[k]);
}

Test(pf_dc, every_reference_case)
{
    for (size_t k = 0; k < sizeof s_all / sizeof *s_all; k++)
        s_check_dc(s_all[k]);
}

/* Compares a branch-row matrix of ours (in-service rows only) with a
 * reference file; NaN must match NaN. */
static void s_cmp_matrix(const char *what, const s_csv *ref, const pf_net *net, const double *m,
                         size_t ncols, int cols_branches, double tol)
{
    cr_assert_eq(ref->rows, net->nbr_case, "%s rows", what);
    cr_assert_eq(ref->cols, ncols, "%s cols", what);
    for (size_t r = 0; r < ref->rows; r++)
        for (size_t k = 0; k < ncols; k++) {
            int l = net->row_br[r];
            int j = cols_branches ? net->row_br[k] : (int)k;
            cr_assert(l >= 0 && j >= 0, "reference cases have every branch in service");
            double mine = m[(size_t)l * ncols + (size_t)j], theirs = ref->v[r * ncols + k];
            if (isnan(theirs) || isnan(mine))
                cr_assert(isnan(theirs) && isnan(mine), "%s (%zu,%zu): %g vs %g", what, r + 1,
                          k + 1, mine, theirs);
            else
                cr_assert(fabs(mine - theirs) < tol, "%s (%zu,%zu): %.15g vs %.15g", what,
                          r + 1, k + 1, mine, theirs);
        }
}

static void s_check_sens(const char *cs)
{
    mp_case *c = s_case(cs);
    pf_net *net;
    pf_dc *dc;
    pcf_error err;
    cr_assert_eq(pf_net_new(c, &net, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(pf_dc_new(net, &dc, &err), PCF_OK, "%s", err.msg);
    size_t nb = net->nb, nl = net->nl;
    double *ptdf = malloc(nl * nb * sizeof(double)), *lodf = malloc(nl * nl * sizeof(double));
    double *f = malloc(nl * sizeof(double)), *n1 = malloc(nl * nl * sizeof(double));
    unsigned char *br = malloc(nl);
    cr_assert_eq(pf_ptdf(dc, net, NULL, ptdf, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(pf_bridges(net, br, &err), PCF_OK);
    cr_assert_eq(pf_lodf(net, ptdf, br, lodf, &err), PCF_OK);
    cr_assert_eq(pf_dc_solve(dc, NULL, NULL, NULL, f, NULL, &err), PCF_OK);
    s_csv *rp = s_sol(cs, "ptdf"), *rl = s_sol(cs, "lodf"), *rm = s_sol(cs, "lodf_masked");
    s_csv *rn = s_sol(cs, "dc_n1_flows"), *rb = s_sol(cs, "dc_base_flow");
    s_cmp_matrix("ptdf", rp, net, ptdf, nb, 0, 1e-6);
    /* LODF: the raw reference in every non-bridge column, NaN columns exactly
     * where the masked reference has a NaN column. */
    for (size_t j = 0; j < nl; j++) {
        int all_nan = 1;
        for (size_t k = 0; k < nl; k++)
            all_nan &= isnan(rm->v[k * nl + j]);
        cr_assert_eq(br[j], all_nan, "%s bridge flag of branch %zu", cs, j + 1);
        for (size_t k = 0; k < nl; k++) {
            if (all_nan) {
                cr_assert(isnan(lodf[k * nl + j]));
                continue;
            }
            cr_assert(fabs(lodf[k * nl + j] - rl->v[k * nl + j]) < 1e-6, "%s LODF (%zu,%zu)", cs,
                      k + 1, j + 1);
            if (!isnan(rm->v[k * nl + j]))
                cr_assert(fabs(lodf[k * nl + j] - rm->v[k * nl + j]) < 1e-6);
        }
    }
    for (size_t l = 0; l < nl; l++)
        cr_assert(fabs(f[l] - rb->v[l * rb->cols + (rb->cols - 1)]) < 1e-6, "%s base flow", cs);

    for (size_t k = 0; k < nl; k++)
        for (size_t j = 0; j < nl; j++)
            n1[k * nl + j] = isnan(lodf[k * nl + j]) ? NAN
                             : j == k ? 0.0 : f[k] + lodf[k * nl + j] * f[j];
    s_cmp_matrix("n1", rn, net, n1, nl, 1, 1e-6);
    s_csv_free(rp); s_csv_free(rl); s_csv_free(rm); s_csv_free(rn); s_csv_free(rb);
    free(ptdf); free(lodf); free(f); free(n1); free(br);
    pf_dc_destroy(&dc);
    pf_net_destroy(&net);
    mp_case_destroy(&c);
}

Test(pf_sens, case14) { s_check_sens("case14"); }
Test(pf_sens, case30) { s_check_sens("case30"); }
Test(pf_sens, case57) { s_check_sens("case57"); }

/* ---- the command-line tool --------------------------------------------- */

static int s_cli(const char *args, char *out, size_t outlen)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/pcf-pf %s", testdb_bindir(), args);
    return testdb_run(NULL, cmd, out, outlen);
}

static const char *s_last_line(const char *out)
{
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '\n')
        n--;
    while (n > 0 && out[n - 1] != '\n')
        n--;
    return out + n;
}

/* Compares column `mine` of our CSV with column `theirs` of a reference. */
static void s_cmp_cols(const char *ours, const char *ref, const char *col, double tol)
{
    s_csv *a = s_csv_read(ours), *b = s_csv_read(ref);
    cr_assert_eq(a->rows, b->rows, "%s rows", ours);
    for (size_t r = 0; r < a->rows; r++)
        cr_assert(fabs(s_at(a, r, col) - s_at(b, r, col)) < tol, "%s row %zu %s", ours, r + 1, col);
    s_csv_free(a);
    s_csv_free(b);
}

static void s_tmpdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/pcf-pf-test.XXXXXX");
    cr_assert(mkdtemp(dir));
}

static void s_rmdir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(pf_cli, ac_case9_and_case33bw)
{
    static const char *cases[] = { "case9", "case33bw" };
    for (int k = 0; k < 2; k++) {
        char dir[64], args[512], out[4096], p1[256], p2[256];
        s_tmpdir(dir, sizeof dir);
        snprintf(args, sizeof args, "--out %s " CASES "%s.m", dir, cases[k]);
        cr_assert_eq(s_cli(args, out, sizeof out), 0, "%s", out);
        cr_assert(!strncmp(s_last_line(out), "converged iterations=", 21), "%s", out);
        snprintf(p1, sizeof p1, "%s/bus.csv", dir);
        snprintf(p2, sizeof p2, SOLS "%s_bus.csv", cases[k]);
        FILE *fp = fopen(p1, "r");
        char head[128] = "";
        cr_assert(fp && fgets(head, sizeof head, fp));
        fclose(fp);
        cr_assert_str_eq(head, "bus_i,Vm_pu,Va_deg\n");
        s_cmp_cols(p1, p2, "Vm_pu", 1e-6);
        s_cmp_cols(p1, p2, "Va_deg", 1e-5);
        snprintf(p1, sizeof p1, "%s/branch.csv", dir);
        snprintf(p2, sizeof p2, SOLS "%s_branch.csv", cases[k]);
        fp = fopen(p1, "r");
        cr_assert(fp && fgets(head, sizeof head, fp));
        fclose(fp);
        cr_assert_str_eq(head, "idx,f_bus,t_bus,PF_MW,QF_MVAr,PT_MW,QT_MVAr\n");
        s_cmp_cols(p1, p2, "PF_MW", 1e-4);
        s_cmp_cols(p1, p2, "QF_MVAr", 1e-4);
        s_cmp_cols(p1, p2, "PT_MW", 1e-4);
        s_cmp_cols(p1, p2, "QT_MVAr", 1e-4);
        s_cmp_cols(p1, p2, "f_bus", 0.5);
        s_rmdir(dir);
    }
}

Test(pf_cli, flat_start_case118_keeps_reference_angle)
{
    char dir[64], args[512], out[4096], p1[256];
    s_tmpdir(dir, sizeof dir);
    snprintf(args, sizeof args, "--flat-start --out %s " CASES "case118.m", dir);
    cr_assert_eq(s_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(!strncmp(s_last_line(out), "converged iterations=", 21), "%s", out);
    snprintf(p1, sizeof p1, "%s/bus.csv", dir);
    s_csv *a = s_csv_read(p1);
    cr_assert_eq(a->rows, 118);
    for (size_t r = 0; r < a->rows; r++)
        if (s_at(a, r, "bus_i") == 69)
            cr_assert(fabs(s_at(a, r, "Va_deg") - 30) < 1e-9, "reference angle from the data");
    s_csv_free(a);
    s_rmdir(dir);
}

Test(pf_cli, dc_with_matrices_case14)
{
    char dir[64], args[512], out[4096], p1[256];
    s_tmpdir(dir, sizeof dir);
    snprintf(args, sizeof args, "--dc --ptdf --lodf --n1 --out %s " CASES "case14.m", dir);
    cr_assert_eq(s_cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(!strncmp(s_last_line(out), "converged iterations=1 max_mismatch=", 36), "%s", out);
    snprintf(p1, sizeof p1, "%s/bus.csv", dir);
    s_cmp_cols(p1, SOLS "case14_dc_bus.csv", "Va_deg", 1e-6);
    snprintf(p1, sizeof p1, "%s/branch.csv", dir);
    s_cmp_cols(p1, SOLS "case14_dc_branch.csv", "PF_MW", 1e-6);
    static const char *m[3][2] = { { "ptdf.csv", SOLS "case14_ptdf.csv" },
                                   { "lodf.csv", SOLS "case14_lodf_masked.csv" },
                                   { "n1_flows.csv", SOLS "case14_dc_n1_flows.csv" } };
    for (int k = 0; k < 3; k++) {
        snprintf(p1, sizeof p1, "%s/%s", dir, m[k][0]);
        s_csv *a = s_csv_read(p1), *b = s_csv_read(m[k][1]);
        cr_assert_eq(a->rows, b->rows);
        cr_assert_eq(a->cols, b->cols);
        for (size_t c = 0; c < a->cols; c++)
            cr_assert_str_eq(a->names[c], b->names[c]);
        for (size_t e = 0; e < a->rows * a->cols; e++) {
            if (isnan(b->v[e]))
                cr_assert(isnan(a->v[e]), "%s entry %zu", m[k][0], e);
            else
                cr_assert(fabs(a->v[e] - b->v[e]) < 1e-6, "%s entry %zu", m[k][0], e);
        }
        s_csv_free(a);
        s_csv_free(b);
    }
    s_rmdir(dir);
}

/* Writes case `cs` with every load and generation multiplied by `k` (and,
 * when cut >= 0, branch row cut switched off) to path. */
static void s_write_variant(const char *cs, double k, long cut, const char *path)
{
    mp_case *c = s_case(cs);
    for (size_t r = 0; r < c->bus.rows; r++) {
        MP_AT(&c->bus, r, MP_PD) *= k;
        MP_AT(&c->bus, r, MP_QD) *= k;
    }
    for (size_t r = 0; r < c->gen.rows; r++)
        MP_AT(&c->gen, r, MP_PG) *= k;
    if (cut >= 0)
        MP_AT(&c->branch, (size_t)cut, MP_BR_STATUS) = 0;
    FILE *fp = fopen(path, "w");
    cr_assert(fp);
    pcf_error err;
    cr_assert_eq(mp_case_write(c, fp, &err), PCF_OK);
    fclose(fp);
    mp_case_destroy(&c);
}

Test(pf_cli, exit_codes)
{
    char dir[64], args[512], out[4096], path[256];
    s_tmpdir(dir, sizeof dir);
    /* loaded far past its limit: no convergence, exit 2, no answer written */
    snprintf(path, sizeof path, "%s/heavy.m", dir);
    s_write_variant("case9", 12.0, -1, path);
    snprintf(args, sizeof args, "--out %s/o1 %s", dir, path);
    cr_assert_eq(s_cli(args, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "not converged iterations=10"), "%s", out);
    snprintf(path, sizeof path, "%s/o1/bus.csv", dir);
    cr_assert_null(fopen(path, "r"));
    /* islanded: case14 branch 14 (7-8) is the only link of bus 8 */
    snprintf(path, sizeof path, "%s/island.m", dir);
    s_write_variant("case14", 1.0, 13, path);
    snprintf(args, sizeof args, "--out %s/o2 %s", dir, path);
    cr_assert_eq(s_cli(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "island"), "%s", out);
    /* bad input */
    snprintf(args, sizeof args, "--out %s/o3 %s/missing.m", dir, dir);
    cr_assert_eq(s_cli(args, out, sizeof out), 1, "%s", out);
    snprintf(path, sizeof path, "%s/bad.m", dir);
    FILE *fp = fopen(path, "w");
    cr_assert(fp);
    fputs("function mpc = bad\nmpc.baseMVA = 100;\nmpc.bus = [1 3 0 0 0 0 1 1 0 345 1 1.1 0.9;\n"
          "2 1 x 0 0 0 1 1 0 345 1 1.1 0.9];\n", fp);
    fclose(fp);
    snprintf(args, sizeof args, "--out %s/o4 %s", dir, path);
    cr_assert_eq(s_cli(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "bad.m:"), "%s", out);
    cr_assert_eq(s_cli("--bogus x.m", out, sizeof out), 1);
    cr_assert_eq(s_cli(CASES "case9.m", out, sizeof out), 1, "no --out");
    s_rmdir(dir);
}
