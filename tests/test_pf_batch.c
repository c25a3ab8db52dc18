/*
 * test_pf_batch.c -- power-flow behaviour beyond the reference files:
 * islanding, non-convergence, bus numbering with gaps, parallel branches in
 * LODF, distributed slack, out-of-service generators, and the batch kernels
 * (AC batch, dgemm flows, N-1 screening) against single solves.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "acpf.h"
#include "dcpf.h"
#include "mpcase.h"
#include "n1.h"
#include "pfnet.h"
#include "sens.h"

static mp_case *s_load(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/matpower/cases/%s.m", name);
    pcf_error err;
    mp_case *c = mp_case_read(path, &err);
    cr_assert(c, "%s: %s", path, err.msg);
    return c;
}

static pf_net *s_net(const mp_case *c)
{
    pf_net *n;
    pcf_error err;
    cr_assert_eq(pf_net_new(c, &n, &err), PCF_OK, "%s", err.msg);
    return n;
}

Test(pf_island, bridge_outage_is_an_error_and_a_nan_column)
{
    mp_case *c = s_load("case14");
    /* row 14 (7-8) is the only branch to bus 8 */
    pf_net *n = s_net(c);
    unsigned char *br = malloc(n->nl);
    pcf_error err;
    cr_assert_eq(pf_bridges(n, br, &err), PCF_OK);
    int nbridge = 0;
    for (size_t l = 0; l < n->nl; l++)
        nbridge += br[l];
    cr_assert_eq(nbridge, 1);
    cr_assert(br[13]);
    free(br);
    pf_net_destroy(&n);
    cr_assert_null(n);
    MP_AT(&c->branch, 13, MP_BR_STATUS) = 0;
    n = s_net(c);
    cr_assert_eq(n->nisland, 2);
    pf_ac *ac = NULL;
    pf_dc *dc = NULL;
    cr_assert_eq(pf_ac_new(n, &ac, &err), PCF_ERR_ISLAND);
    cr_assert(strstr(err.msg, "bus 8"), "%s", err.msg);
    cr_assert_null(ac);
    cr_assert_eq(pf_dc_new(n, &dc, &err), PCF_ERR_ISLAND);
    cr_assert_null(dc);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

Test(pf_ac, not_converged_when_overloaded)
{
    mp_case *c = s_load("case9");
    for (size_t r = 0; r < c->bus.rows; r++) {
        MP_AT(&c->bus, r, MP_PD) *= 12;
        MP_AT(&c->bus, r, MP_QD) *= 12;
    }
    pf_net *n = s_net(c);
    pf_ac *ac;
    pcf_error err;
    cr_assert_eq(pf_ac_new(n, &ac, &err), PCF_OK);
    double vm[9], va[9];
    pf_ac_start(ac, 0, vm, va);
    pf_ac_stats st;
    pcf_rc rc = pf_ac_solve(ac, NULL, NULL, vm, va, NULL, &st, &err);
    cr_assert_eq(rc, PCF_ERR_NOCONV, "rc %d: %s", rc, err.msg);
    cr_assert_eq(st.converged, 0);
    cr_assert_eq(st.iterations, 10);
    cr_assert(!(st.max_mismatch < 1e-8));
    pf_ac_destroy(&ac);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

/* Renumbering buses (non-consecutive labels, one out of order) changes
 * nothing but the labels. */
Test(pf_net, bus_numbering_with_gaps)
{
    static const double map[9] = { 10, 20, 30, 40, 50, 60, 70, 80, 1000 };
    mp_case *a = s_load("case9"), *b = s_load("case9");
    for (size_t r = 0; r < b->bus.rows; r++)
        MP_AT(&b->bus, r, MP_BUS_I) = map[(size_t)MP_AT(&b->bus, r, MP_BUS_I) - 1];
    for (size_t r = 0; r < b->gen.rows; r++)
        MP_AT(&b->gen, r, MP_GEN_BUS) = map[(size_t)MP_AT(&b->gen, r, MP_GEN_BUS) - 1];
    for (size_t r = 0; r < b->branch.rows; r++) {
        MP_AT(&b->branch, r, MP_F_BUS) = map[(size_t)MP_AT(&b->branch, r, MP_F_BUS) - 1];
        MP_AT(&b->branch, r, MP_T_BUS) = map[(size_t)MP_AT(&b->branch, r, MP_T_BUS) - 1];
    }
    pf_net *na = s_net(a), *nb = s_net(b);
    cr_assert_eq(pf_net_bus_index(nb, 1000), 8);
    cr_assert_eq(pf_net_bus_index(nb, 9), -1);
    pf_ac *aa, *ab;
    pcf_error err;
    cr_assert_eq(pf_ac_new(na, &aa, &err), PCF_OK);
    cr_assert_eq(pf_ac_new(nb, &ab, &err), PCF_OK);
    double vma[9], vaa[9], vmb[9], vab[9], fa[9], fb[9];
    pf_ac_start(aa, 0, vma, vaa);
    pf_ac_start(ab, 0, vmb, vab);
    cr_assert_eq(pf_ac_solve(aa, NULL, NULL, vma, vaa, NULL, NULL, &err), PCF_OK);
    cr_assert_eq(pf_ac_solve(ab, NULL, NULL, vmb, vab, NULL, NULL, &err), PCF_OK);
    for (int i = 0; i < 9; i++) {
        cr_assert(fabs(vma[i] - vmb[i]) < 1e-12);
        cr_assert(fabs(vaa[i] - vab[i]) < 1e-12);
    }
    pf_ac_flows(aa, vma, vaa, fa, NULL, NULL, NULL);
    pf_ac_flows(ab, vmb, vab, fb, NULL, NULL, NULL);
    for (int l = 0; l < 9; l++)
        cr_assert(fabs(fa[l] - fb[l]) < 1e-9);
    pf_ac_destroy(&aa);
    pf_ac_destroy(&ab);
    pf_net_destroy(&na);
    pf_net_destroy(&nb);
    mp_case_destroy(&a);
    mp_case_destroy(&b);
}

Test(pf_net, bad_input_rejected)
{
    mp_case *c = s_load("case9");
    pf_net *n;
    pcf_error err;
    MP_AT(&c->branch, 2, MP_T_BUS) = 77;
    cr_assert_eq(pf_net_new(c, &n, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "branch row 3") && strstr(err.msg, "77"), "%s", err.msg);
    cr_assert_null(n);
    MP_AT(&c->branch, 2, MP_T_BUS) = 6;
    MP_AT(&c->bus, 4, MP_BUS_I) = 1;
    cr_assert_eq(pf_net_new(c, &n, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "twice"), "%s", err.msg);
    MP_AT(&c->bus, 4, MP_BUS_I) = 5;
    MP_AT(&c->bus, 3, MP_VM) = NAN;
    cr_assert_eq(pf_net_new(c, &n, &err), PCF_ERR_INVALID);
    mp_case_destroy(&c);
}

/* Out-of-service generator and isolated bus: dropped as MATPOWER does. */
Test(pf_net, out_of_service_and_isolated)
{
    mp_case *c = s_load("case9");
    MP_AT(&c->gen, 1, MP_GEN_STATUS) = 0;       /* gen at bus 2 off: bus 2 becomes PQ */
    pf_net *n = s_net(c);
    cr_assert_eq(n->ng, 2);
    cr_assert_eq(n->type[1], MP_PQ);
    pf_net_destroy(&n);
    /* bus 5 isolated: its two branches go, the rest stays connected */
    MP_AT(&c->gen, 1, MP_GEN_STATUS) = 1;
    MP_AT(&c->bus, 4, MP_BUS_TYPE) = MP_NONE;
    n = s_net(c);
    cr_assert_eq(n->nb, 8);
    cr_assert_eq(n->nl, 7);
    cr_assert_eq(n->nisland, 1);
    cr_assert_eq(pf_net_bus_index(n, 5), -1);
    pf_dc *dc;
    pcf_error err;
    cr_assert_eq(pf_dc_new(n, &dc, &err), PCF_OK, "%s", err.msg);
    double f[7];
    cr_assert_eq(pf_dc_solve(dc, NULL, NULL, NULL, f, NULL, &err), PCF_OK);
    pf_dc_destroy(&dc);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

/* case118 has parallel lines: their outage is not islanding, and the LODF
 * matches a DC flow recomputed from scratch without the branch. */
Test(pf_sens, parallel_branches_case118)
{
    mp_case *c = s_load("case118");
    pf_net *n = s_net(c);
    size_t nl = n->nl, nb = n->nb;
    unsigned char *br = malloc(nl);
    pcf_error err;
    cr_assert_eq(pf_bridges(n, br, &err), PCF_OK);
    int npar = 0, checked = 0;
    pf_dc *dc;
    cr_assert_eq(pf_dc_new(n, &dc, &err), PCF_OK);
    double *ptdf = malloc(nl * nb * sizeof(double)), *lodf = malloc(nl * nl * sizeof(double));
    double *f = malloc(nl * sizeof(double)), *g = malloc(nl * sizeof(double));
    cr_assert_eq(pf_ptdf(dc, n, NULL, ptdf, &err), PCF_OK);
    cr_assert_eq(pf_lodf(n, ptdf, br, lodf, &err), PCF_OK);
    cr_assert_eq(pf_dc_solve(dc, NULL, NULL, NULL, f, NULL, &err), PCF_OK);
    for (size_t a = 0; a < nl; a++)
        for (size_t b = a + 1; b < nl; b++) {
            int par = (n->f[a] == n->f[b] && n->t[a] == n->t[b]) ||
                      (n->f[a] == n->t[b] && n->t[a] == n->f[b]);
            if (!par)
                continue;
            npar++;
            cr_assert_eq(br[a], 0, "parallel branch %zu flagged as bridge", a + 1);
            cr_assert_eq(br[b], 0);
            if (checked >= 3)
                continue;
            /* recompute from scratch without branch a */
            MP_AT(&c->branch, n->br_row[a], MP_BR_STATUS) = 0;
            pf_net *n2 = s_net(c);
            pf_dc *dc2;
            cr_assert_eq(pf_dc_new(n2, &dc2, &err), PCF_OK, "%s", err.msg);
            cr_assert_eq(pf_dc_solve(dc2, NULL, NULL, NULL, g, NULL, &err), PCF_OK);
            for (size_t k = 0; k < nl; k++) {
                int k2 = n2->row_br[n->br_row[k]];
                double post = k == a ? 0.0 : f[k] + lodf[k * nl + a] * f[a];
                cr_assert(fabs(post - (k2 < 0 ? 0.0 : g[k2])) < 1e-6, "outage %zu branch %zu", a, k);
            }
            pf_dc_destroy(&dc2);
            pf_net_destroy(&n2);
            MP_AT(&c->branch, n->br_row[a], MP_BR_STATUS) = 1;
            checked++;
        }
    cr_assert_geq(npar, 7, "case118 has parallel lines (found %d)", npar);
    /* the genuine radial spurs of case118 are bridges */
    int nbridge = 0;
    for (size_t l = 0; l < nl; l++)
        nbridge += br[l];
    cr_assert_gt(nbridge, 0);
    free(br); free(ptdf); free(lodf); free(f); free(g);
    pf_dc_destroy(&dc);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

/* Radial feeder: every in-service branch of case69 is a bridge. */
Test(pf_sens, radial_feeder_all_bridges)
{
    mp_case *c = s_load("case69");
    pf_net *n = s_net(c);
    unsigned char *br = malloc(n->nl);
    pcf_error err;
    cr_assert_eq(pf_bridges(n, br, &err), PCF_OK);
    for (size_t l = 0; l < n->nl; l++)
        cr_assert(br[l]);
    free(br);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

Test(pf_dc, distributed_slack)
{
    mp_case *c = s_load("case30");
    pf_net *n = s_net(c);
    size_t nb = n->nb, nl = n->nl;
    pf_dc *dc;
    pcf_error err;
    cr_assert_eq(pf_dc_new(n, &dc, &err), PCF_OK);
    double *w = calloc(nb, sizeof(double)), *sl = malloc(nb * sizeof(double));
    double *f = malloc(nl * sizeof(double)), *p = malloc(nb * sizeof(double));
    double *ptdf = malloc(nl * nb * sizeof(double));
    /* weights proportional to load */
    double tot = 0;
    for (size_t i = 0; i < nb; i++)
        tot += n->pd[i];
    for (size_t i = 0; i < nb; i++)
        w[i] = n->pd[i] / tot;
    cr_assert_eq(pf_dc_check_weights(n, w, &err), PCF_OK);
    cr_assert_eq(pf_dc_solve(dc, NULL, w, NULL, f, sl, &err), PCF_OK, "%s", err.msg);
    /* balance: what the slack buses absorb equals the mismatch */
    pf_net_injections(n, p, NULL);
    double mis = 0, absorbed = 0;
    for (size_t i = 0; i < nb; i++) {
        mis += p[i] - n->gs[i];
        absorbed += sl[i];
        cr_assert(fabs(sl[i] + w[i] * 0) < 1e9);
    }
    cr_assert(fabs(absorbed + mis * n->base_mva) < 1e-9, "absorbed %g mismatch %g", absorbed,
              mis * n->base_mva);
    for (size_t i = 0; i < nb; i++)
        cr_assert(fabs(sl[i] - (-mis * n->base_mva) * w[i]) < 1e-8, "bus %zu", i);
    /* and the distributed-slack PTDF gives the same flows */
    cr_assert_eq(pf_ptdf(dc, n, w, ptdf, &err), PCF_OK);
    for (size_t l = 0; l < nl; l++) {
        double s = 0;
        for (size_t i = 0; i < nb; i++)
            s += ptdf[l * nb + i] * (p[i] - n->gs[i]) * n->base_mva;
        cr_assert(fabs(s - f[l]) < 1e-8, "branch %zu: %g vs %g", l, s, f[l]);
    }
    /* PTDF rows of a few monitored branches equal the full matrix's */
    int rows[3] = { 5, 0, (int)nl - 1 };
    double *sub = malloc(3 * nb * sizeof(double));
    cr_assert_eq(pf_ptdf_rows(dc, n, w, rows, 3, sub, &err), PCF_OK);
    for (int r = 0; r < 3; r++)
        for (size_t i = 0; i < nb; i++)
            cr_assert(fabs(sub[(size_t)r * nb + i] - ptdf[(size_t)rows[r] * nb + i]) < 1e-12);
    rows[1] = (int)nl;
    cr_assert_eq(pf_ptdf_rows(dc, n, w, rows, 3, sub, &err), PCF_ERR_INVALID);
    free(sub);
    /* bad weights */
    w[0] += 0.5;
    cr_assert_eq(pf_dc_solve(dc, NULL, w, NULL, f, sl, &err), PCF_ERR_INVALID);
    w[0] = -0.5;
    cr_assert_eq(pf_dc_check_weights(n, w, &err), PCF_ERR_INVALID);
    free(w); free(sl); free(f); free(p); free(ptdf);
    pf_dc_destroy(&dc);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

/* A deterministic pseudo-random stream for load scaling. */
static double s_rand(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

Test(pf_batch, ac_batch_equals_single_solves)
{
    mp_case *c = s_load("case30");
    pf_net *n = s_net(c);
    size_t nb = n->nb, S = 6;
    pf_ac *ac, *ac2;
    pcf_error err;
    cr_assert_eq(pf_ac_new(n, &ac, &err), PCF_OK);
    cr_assert_eq(pf_ac_new(n, &ac2, &err), PCF_OK);
    double *p = malloc(nb * S * sizeof(double)), *q = malloc(nb * S * sizeof(double));
    double *vm = malloc(nb * S * sizeof(double)), *va = malloc(nb * S * sizeof(double));
    double *vm0 = malloc(nb * sizeof(double)), *va0 = malloc(nb * sizeof(double));
    double *m1 = malloc(nb * sizeof(double)), *a1 = malloc(nb * sizeof(double));
    pf_ac_stats st[6];
    unsigned long long seed = 42;
    for (size_t s = 0; s < S; s++) {
        pf_net_injections(n, p + s * nb, q + s * nb);
        double k = s == 3 ? 25.0 : 0.8 + 0.4 * s_rand(&seed);   /* sample 3 collapses */
        for (size_t i = 0; i < nb; i++) {
            p[s * nb + i] -= (k - 1) * n->pd[i];
            q[s * nb + i] -= (k - 1) * n->qd[i];
        }
    }
    pf_ac_start(ac, 0, vm0, va0);
    cr_assert_eq(pf_ac_solve_batch(ac, S, p, q, vm0, va0, vm, va, NULL, st, &err), PCF_OK);
    for (size_t s = 0; s < S; s++) {
        pf_ac_start(ac2, 0, m1, a1);
        pcf_rc rc = pf_ac_solve(ac2, p + s * nb, q + s * nb, m1, a1, NULL, NULL, &err);
        if (s == 3) {
            cr_assert_eq(rc, PCF_ERR_NOCONV);
            cr_assert_eq(st[s].converged, 0);
            cr_assert(isnan(vm[s * nb]));
            continue;
        }
        cr_assert_eq(rc, PCF_OK, "sample %zu: %s", s, err.msg);
        cr_assert(st[s].converged);
        for (size_t i = 0; i < nb; i++) {
            cr_assert(fabs(vm[s * nb + i] - m1[i]) < 1e-7, "sample %zu bus %zu", s, i);
            cr_assert(fabs(va[s * nb + i] - a1[i]) < 1e-7);
        }
    }
    /* chord steps: same answers within the tolerance, fewer factorisations */
    pf_ac_opts ch = PF_AC_OPTS_DEFAULT;
    ch.chord = 1;
    double *vmc = malloc(nb * S * sizeof(double)), *vac = malloc(nb * S * sizeof(double));
    pf_ac_stats stc[6];
    cr_assert_eq(pf_ac_solve_batch(ac, S, p, q, vm0, va0, vmc, vac, &ch, stc, &err), PCF_OK);
    int fact_newton = 0, fact_chord = 0;
    for (size_t s = 0; s < S; s++) {
        cr_assert_eq(stc[s].converged, st[s].converged, "sample %zu", s);
        if (!st[s].converged)
            continue;
        fact_newton += st[s].factorisations;
        fact_chord += stc[s].factorisations;
        for (size_t i = 0; i < nb; i++) {
            cr_assert(fabs(vmc[s * nb + i] - vm[s * nb + i]) < 1e-7, "chord sample %zu bus %zu", s, i);
            cr_assert(fabs(vac[s * nb + i] - va[s * nb + i]) < 1e-7);
        }
    }
    cr_assert_lt(fact_chord, fact_newton, "chord %d vs newton %d", fact_chord, fact_newton);
    free(vmc); free(vac);
    free(p); free(q); free(vm); free(va); free(vm0); free(va0); free(m1); free(a1);
    pf_ac_destroy(&ac);
    pf_ac_destroy(&ac2);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}

Test(pf_batch, dgemm_flows_and_n1_screen)
{
    mp_case *c = s_load("case57");
    pf_net *n = s_net(c);
    size_t nb = n->nb, nl = n->nl, S = 37;     /* not a multiple of the tile */
    pf_dc *dc;
    pcf_error err;
    cr_assert_eq(pf_dc_new(n, &dc, &err), PCF_OK);
    double *ptdf = malloc(nl * nb * sizeof(double)), *lodf = malloc(nl * nl * sizeof(double));
    double *P = malloc(nb * S * sizeof(double)), *F = malloc(nl * S * sizeof(double));
    double *worst = malloc(nl * S * sizeof(double)), *f = malloc(nl * sizeof(double));
    double *p = malloc(nb * sizeof(double)), *post = malloc(nl * nl * sizeof(double));
    int *out = malloc(nl * S * sizeof(int));
    cr_assert_eq(pf_ptdf(dc, n, NULL, ptdf, &err), PCF_OK);
    cr_assert_eq(pf_lodf(n, ptdf, NULL, lodf, &err), PCF_OK);
    unsigned long long seed = 7;
    pf_net_injections(n, p, NULL);
    for (size_t i = 0; i < nb; i++)
        for (size_t s = 0; s < S; s++)
            P[i * S + s] = (p[i] - n->gs[i]) * n->base_mva * (0.5 + s_rand(&seed));
    cr_assert_eq(pf_flows_batch(ptdf, nl, nb, P, S, F, &err), PCF_OK);
    double *F2 = malloc(nl * S * sizeof(double)), *worst2 = malloc(nl * S * sizeof(double));
    int *out2 = malloc(nl * S * sizeof(int));
    for (int threads = 1; threads <= 3; threads++) {
        cr_assert_eq(pf_n1_screen(lodf, nl, F, S, threads, worst, out, &err), PCF_OK);
        /* the fused variant gives the same flows and the same screening */
        cr_assert_eq(pf_n1_screen_inj(ptdf, nb, lodf, nl, P, S, threads, F2, worst2, out2, &err),
                     PCF_OK);
        for (size_t e = 0; e < nl * S; e++) {
            cr_assert(fabs(F2[e] - F[e]) < 1e-9 * fmax(1, fabs(F[e])), "fused flow %zu", e);
            cr_assert(fabs(worst2[e] - worst[e]) < 1e-9 * fmax(1, worst[e]), "fused worst %zu", e);
        }
        /* and so does the portable kernel */
        cr_assert_eq(pf_n1_screen_inj_portable(ptdf, nb, lodf, nl, P, S, threads, NULL, worst2,
                                               out2, &err), PCF_OK);
        for (size_t e = 0; e < nl * S; e++)
            cr_assert(fabs(worst2[e] - worst[e]) < 1e-9 * fmax(1, worst[e]), "portable %zu", e);
        for (size_t s = 0; s < S; s++) {
            /* single-vector DC solve of this sample (slack = reference bus) */
            for (size_t i = 0; i < nb; i++)
                p[i] = P[i * S + s] / n->base_mva + n->gs[i];
            cr_assert_eq(pf_dc_solve(dc, p, NULL, NULL, f, NULL, &err), PCF_OK);
            for (size_t l = 0; l < nl; l++)
                cr_assert(fabs(F[l * S + s] - f[l]) < 1e-8, "flow %zu sample %zu", l, s);
            pf_n1_flows(lodf, nl, f, post);
            for (size_t k = 0; k < nl; k++) {
                double best = -1;
                for (size_t j = 0; j < nl; j++)
                    if (!isnan(post[k * nl + j]))
                        best = fmax(best, fabs(post[k * nl + j]));
                int j = out[k * S + s];
                cr_assert(j >= 0 && (size_t)j < nl && !isnan(lodf[(size_t)j]));
                cr_assert(fabs(worst[k * S + s] - best) < 1e-9 * fmax(1, best),
                          "branch %zu sample %zu: %.15g vs %.15g", k, s, worst[k * S + s], best);
                cr_assert(fabs(fabs(post[k * nl + (size_t)j]) - worst[k * S + s]) < 1e-9);
            }
        }
    }
    free(ptdf); free(lodf); free(P); free(F); free(worst); free(f); free(p); free(post);
    free(out); free(F2); free(worst2); free(out2);
    pf_dc_destroy(&dc);
    pf_net_destroy(&n);
    mp_case_destroy(&c);
}
