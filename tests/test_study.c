/*
 * test_study.c -- the Monte-Carlo study against answers known in closed form:
 * a Gaussian injection on one line, LIFO order between two sites, a fault of
 * known probability, an islanding fault, and bit-identical results for any
 * thread count.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "study.h"
#include "testnet.h"

static double s_phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

/* One site at bus 2 of a single line, N(mean, sd) available output, limit L:
 * P(curtailed) = 1 - Phi((L - mean) / sd). */
static void s_gaussian_line(double mean, double sd, double limit, int threads, mcstat_pcf *res,
                            study_constraint_result *cres)
{
    static const int br[1][2] = { { 1, 2 } };
    mp_case *c = testnet_lines(2, 1, br);
    int row = 0;
    double sign = -1;        /* count flow 2 -> 1 (export) as positive */
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site site = { 2, 1000 };
    anm_tranche_def tr = { 0, 1000, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 0, &k, &site, &tr, NULL, NULL, 20000, 42, threads, NULL };
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    study *s;
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    double cov = sd * sd, zero = 0;
    rng_mvn *mvn;
    cr_assert_eq(rng_mvn_new(1, &zero, &cov, &mvn, &err), PCF_OK, "%s", err.msg);
    double demand[2] = { 0, 0 };
    study_sp sp = { topo, 0.5, &mean, mvn, demand, NULL, NULL, &limit, &limit, NULL };
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_site_result(s, 0, res, &err), PCF_OK, "%s", err.msg);
    if (cres) *cres = *study_constraint_result_get(s, 0);
    rng_mvn_destroy(&mvn);
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

Test(study, gaussian_line_matches_closed_form)
{
    static const double cases[][3] = { { 10, 3, 12 }, { 20, 5, 20 }, { 8, 2, 13 }, { 30, 10, 25 } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double mean = cases[i][0], sd = cases[i][1], lim = cases[i][2];
        mcstat_pcf r;
        study_constraint_result cr;
        s_gaussian_line(mean, sd, lim, 2, &r, &cr);
        /* the draw is clipped at 0, which is far below every limit here */
        double p = 1 - s_phi((lim - mean) / sd);
        cr_assert(fabs(r.p_curtailed - p) <= 3 * r.p_curtailed_se + 1e-12,
                  "case %zu: P(curtailed) %.5f vs closed form %.5f (se %.5f)", i, r.p_curtailed, p,
                  r.p_curtailed_se);
        cr_assert(fabs(cr.p_acts - r.p_curtailed) < 1e-12, "the constraint acts exactly when the site is curtailed");
        /* deliverable never exceeds the limit: the ANM clears every exceedance */
        cr_assert(r.p90_mw <= lim + 1e-9, "P90 deliverable %.6f above the limit %.6f", r.p90_mw, lim);
        /* E[curtailed MW] = E[(X - L)+] = sd * pdf(z) - (L - mean)(1 - Phi(z)), z = (L - mean)/sd */
        double z = (lim - mean) / sd;
        double e = sd * exp(-z * z / 2) / sqrt(2 * M_PI) - (lim - mean) * (1 - s_phi(z));
        cr_assert(fabs(r.curtailed_mwh - 0.5 * e) <= 3 * r.curtailed_mwh_se + 1e-12,
                  "case %zu: E[curtailed MWh] %.5f vs %.5f (se %.5f)", i, r.curtailed_mwh, 0.5 * e,
                  r.curtailed_mwh_se);
    }
}

Test(study, thread_count_does_not_change_a_bit)
{
    mcstat_pcf a, b;
    study_constraint_result ca, cb;
    s_gaussian_line(20, 5, 21, 1, &a, &ca);
    s_gaussian_line(20, 5, 21, 2, &b, &cb);
    cr_assert(memcmp(&a, &b, sizeof a) == 0, "site statistics differ between 1 and 2 threads");
    cr_assert(ca.p_acts == cb.p_acts && ca.curtail_mwh == cb.curtail_mwh && ca.flow_p50 == cb.flow_p50 &&
              memcmp(ca.headroom_mw, cb.headroom_mw, sizeof ca.headroom_mw) == 0);
}

/* Two sites behind one line, deterministic outputs: the later one in the
 * queue is curtailed first, the earlier only when the later is off. */
static void s_two_sites(double a_mw, double b_mw, double limit, double *curt_a, double *curt_b)
{
    static const int br[1][2] = { { 1, 2 } };
    mp_case *c = testnet_lines(2, 1, br);
    int row = 0;
    double sign = -1;
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site sites[2] = { { 2, 100 }, { 2, 100 } };
    anm_tranche_def tr[2] = { { 0, 100, 0, 1, ANM_DANM }, { 1, 100, 0, 2, ANM_DANM } };
    study_def d = { c, 1, 2, 2, 0, &k, sites, tr, NULL, NULL, 40, 7, 1, NULL };
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    study *s;
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    double mean[2] = { a_mw, b_mw }, demand[2] = { 0, 0 };
    study_sp sp = { topo, 0.5, mean, NULL, demand, NULL, NULL, &limit, &limit, NULL };
    cr_assert_eq(study_run_sp(s, 3, &sp, &err), PCF_OK, "%s", err.msg);
    mcstat_pcf ra, rb;
    cr_assert_eq(study_site_result(s, 0, &ra, &err), PCF_OK);
    cr_assert_eq(study_site_result(s, 1, &rb, &err), PCF_OK);
    *curt_a = ra.curtailed_mwh / 0.5;
    *curt_b = rb.curtailed_mwh / 0.5;
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

Test(study, lifo_later_site_goes_first)
{
    double ca, cb;
    s_two_sites(15, 15, 20, &ca, &cb);
    cr_assert_float_eq(cb, 10, 1e-9, "the later site takes the whole 10 MW: %g", cb);
    cr_assert_float_eq(ca, 0, 1e-9);
    s_two_sites(15, 4, 10, &ca, &cb);
    cr_assert_float_eq(cb, 4, 1e-9, "the later site is turned right off: %g", cb);
    cr_assert_float_eq(ca, 5, 1e-9, "then the earlier one takes the rest: %g", ca);
    s_two_sites(5, 4, 10, &ca, &cb);
    cr_assert_float_eq(ca + cb, 0, 1e-12, "no exceedance, no curtailment");
}

/* Two parallel lines to a site of 15 MW: intact each carries 7.5 MW, under
 * the 10 MW limit; after a fault on the other line one carries 15 MW and the
 * post-fault rating of 12 MW forces 3 MW off.  P(curtailed) = p(fault). */
Test(study, fault_of_known_probability)
{
    testnet_parallel net;
    testnet_parallel_init(&net, 20000, 99);
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&net.d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(study_topology_sens(topo, 0, 0), 0.5, 1e-12, "half of the output flows on each line");
    study *s;
    cr_assert_eq(study_new(&net.d, &s, &err), PCF_OK, "%s", err.msg);
    double mean = 15, demand[2] = { 0, 0 }, lim_i = 10, lim_f = 12, prob[2] = { 0.05, 0.1 };
    study_sp sp = { topo, 0.5, &mean, NULL, demand, NULL, NULL, &lim_i, &lim_f, prob };
    cr_assert_eq(study_run_sp(s, 5, &sp, &err), PCF_OK, "%s", err.msg);
    mcstat_pcf r;
    cr_assert_eq(study_site_result(s, 0, &r, &err), PCF_OK);
    /* Only the fault of the OTHER line (row 1, p = 0.1) overloads the
     * monitored line; its own fault leaves it carrying nothing. */
    cr_assert(fabs(r.p_curtailed - 0.1) <= 3 * r.p_curtailed_se, "P(curtailed) %.4f, expected 0.1 (se %.4f)",
              r.p_curtailed, r.p_curtailed_se);
    cr_assert_float_eq(r.curtailed_mwh, r.p_curtailed * 3 * 0.5, 1e-9, "3 MW off whenever curtailed");
    const study_constraint_result *cres = study_constraint_result_get(s, 0);
    cr_assert_eq(cres->binding_fault, 1, "the other line's fault is the binding one");
    cr_assert_float_eq(cres->fault_p50, 15, 1e-9, "worst post-fault flow is the whole output");
    cr_assert_float_eq(cres->flow_p50, 7.5, 1e-9);
    study_destroy(&s);
    study_topology_destroy(&topo);
    testnet_parallel_destroy(&net);
}

/* A radial feeder 1-2-3 with the site at bus 3: losing branch 2-3 islands the
 * site.  It then delivers nothing, but that is not ANM curtailment, and the
 * fault is never solved as if the site were still connected. */
Test(study, islanding_fault_is_lost_output_not_curtailment)
{
    static const int br[2][2] = { { 1, 2 }, { 2, 3 } };
    mp_case *c = testnet_lines(3, 2, br);
    int row = 0, fault_row = 1;
    double sign = -1;
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site site = { 3, 100 };
    anm_tranche_def tr = { 0, 100, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 1, &k, &site, &tr, NULL, &fault_row, 20000, 5, 2, NULL };
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    cr_assert(study_topology_dead(topo, 1, 2), "bus 3 is dead after the fault on 2-3");
    cr_assert(!study_topology_dead(topo, 0, 2));
    study *s;
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    double mean = 10, demand[3] = { 0, 0, 0 }, lim = 50, prob = 0.2;
    study_sp sp = { topo, 0.5, &mean, NULL, demand, NULL, NULL, &lim, &lim, &prob };
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_OK, "%s", err.msg);
    mcstat_pcf r;
    cr_assert_eq(study_site_result(s, 0, &r, &err), PCF_OK);
    cr_assert_float_eq(r.p_curtailed, 0, 1e-12, "islanding is not curtailment");
    cr_assert_float_eq(r.firm95_mw, 0, 1e-12, "with a 20%% chance of islanding, P5 deliverable is 0");
    cr_assert_float_eq(r.p50_mw, 10, 1e-12);
    const study_constraint_result *cres = study_constraint_result_get(s, 0);
    cr_assert_float_eq(cres->fault_p50, 0, 1e-12, "after the islanding fault branch 1-2 carries nothing");
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

/* A planned outage of one of two parallel lines halves the route: the
 * remaining line carries everything in the intact state of that SP. */
Test(study, planned_outage_applied_as_given)
{
    static const int br[2][2] = { { 1, 2 }, { 1, 2 } };
    mp_case *c = testnet_lines(2, 2, br);
    int row = 0, out = 1;
    double sign = -1;
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site site = { 2, 100 };
    anm_tranche_def tr = { 0, 100, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 0, &k, &site, &tr, NULL, NULL, 100, 1, 1, NULL };
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, &out, 1, &topo, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(study_topology_sens(topo, 0, 0), 1.0, 1e-12);
    study_topology_destroy(&topo);
    /* taking out the only path would island the site: it is kept, bus 2 dead */
    int both[2] = { 0, 1 };
    cr_assert_eq(study_topology_new(&d, both, 2, &topo, &err), PCF_OK, "%s", err.msg);
    cr_assert(study_topology_dead(topo, 0, 1));
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

Test(study, rejects_impossible_inputs)
{
    static const int br[1][2] = { { 1, 2 } };
    mp_case *c = testnet_lines(2, 1, br);
    int row = 0, fault = 0;
    double sign = -1;
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site site = { 2, 100 };
    anm_tranche_def tr = { 0, 100, 0, 1, ANM_DANM };
    pcf_error err;
    study *s;
    study_def d = { c, 1, 1, 1, 1, &k, &site, &tr, NULL, &fault, 5, 1, 1, NULL };
    cr_assert_neq(study_new(&d, &s, &err), PCF_OK, "too few samples");
    d.samples = 100;
    study_site far = { 7, 100 };
    d.sites = &far;
    cr_assert_neq(study_new(&d, &s, &err), PCF_OK, "site at a bus not in the network");
    d.sites = &site;
    study_topology *topo;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    double mean = 1, demand[2] = { 0, 0 }, lim = 10, zero = 0, prob = 1.5;
    study_sp sp = { topo, 0.5, &mean, NULL, demand, NULL, NULL, &lim, &lim, &prob };
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_ERR_INVALID, "probability above 1");
    prob = 0;
    sp.limit_intact = &zero;
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_ERR_INVALID, "zero limit");
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

/* Selection gives the same order statistic as sorting, for every level the
 * study uses and sizes with and without ties. */
Test(study, quantile_by_selection_matches_sorting)
{
    static const double ps[] = { 0.05, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99 };
    size_t sizes[] = { 1, 2, 7, 20, 1000, 10000 };
    rng_stream r;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        size_t n = sizes[si];
        double *v = malloc(n * sizeof(double)), *w = malloc(n * sizeof(double)), *sorted = malloc(n * sizeof(double));
        rng_init(&r, 11, (uint32_t)si, 0, RNG_STREAM_TEST);
        for (size_t i = 0; i < n; i++) v[i] = i % 3 == 0 ? 1.0 : floor(rng_uniform(&r) * 50);  /* many ties */
        memcpy(sorted, v, n * sizeof(double));
        for (size_t i = 1; i < n; i++)   /* insertion sort: an independent reference */
            for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
                double t = sorted[j];
                sorted[j] = sorted[j - 1];
                sorted[j - 1] = t;
            }
        for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++) {
            memcpy(w, v, n * sizeof(double));
            double a = study_quantile(w, n, ps[pi]), b = mcstat_quantile(sorted, n, ps[pi], NULL);
            cr_assert_eq(a, b, "n=%zu p=%g: selection %g, sorting %g", n, ps[pi], a, b);
        }
        free(v);
        free(w);
        free(sorted);
    }
}

/* Five constraints (one one-way; one a line counted against its flow, so
 * always negative), three sites in LIFO order and two credible faults on a
 * meshed feeder 1-2=3-4, run with `threads` workers over two SPs: every
 * figure of the second SP into cres[5], site[5 * 3], pcf[3]. */
static void s_mesh_run(int threads, study_constraint_result *cres, study_site_curt *site, mcstat_pcf *pcf)
{
    static const int br[4][2] = { { 1, 2 }, { 2, 3 }, { 2, 3 }, { 3, 4 } };
    mp_case *c = testnet_lines(4, 4, br);
    static const int rows[4] = { 0, 1, 3, 0 }, fault_row[2] = { 1, 2 };
    static const double sign = -1, plus = 1;
    study_constraint k[5] = { { 1, &rows[0], &sign, 33, ANM_DANM, 1.0, 0.95, 0 },
                              { 1, &rows[1], &sign, 33, ANM_DANM, 1.0, 0.95, 0 },
                              { 1, &rows[2], &sign, 11, ANM_DANM, 0.98, 0.95, 0 },
                              { 1, &rows[3], &sign, 132, ANM_TANM, 1.0, 0.95, 1 },
                              { 1, &rows[1], &plus, 33, ANM_DANM, 1.0, 0.95, 0 } };
    study_site sites[3] = { { 3, 30 }, { 4, 20 }, { 4, 25 } };
    anm_tranche_def tr[3] = { { 0, 30, 0, 1, ANM_DANM }, { 1, 20, 0, 2, ANM_DANM }, { 2, 25, 0, 3, ANM_DANM } };
    study_def d = { c, 5, 3, 3, 2, k, sites, tr, NULL, fault_row, 3000, 11, threads, NULL };
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    study *s;
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    double zero[3] = { 0, 0, 0 }, cov[9] = { 36, 12, 6, 12, 25, 5, 6, 5, 16 };
    rng_mvn *mvn;
    cr_assert_eq(rng_mvn_new(3, zero, cov, &mvn, &err), PCF_OK, "%s", err.msg);
    double mean[3] = { 18, 12, 14 }, demand[4] = { 0, 2, 3, 4 }, demand_sd[4] = { 0, 0.5, 0.5, 1 };
    double lim_i[5] = { 40, 30, 30, 38, 31 }, lim_f[5] = { 45, 24, 33, 42, 25 }, prob[2] = { 0.08, 0.12 };
    study_sp sp = { topo, 0.5, mean, mvn, demand, demand_sd, NULL, lim_i, lim_f, prob };
    for (uint32_t t = 0; t < 2; t++) cr_assert_eq(study_run_sp(s, 20 + t, &sp, &err), PCF_OK, "%s", err.msg);
    for (size_t i = 0; i < 5; i++) {
        cres[i] = *study_constraint_result_get(s, i);
        memcpy(&site[i * 3], cres[i].site, 3 * sizeof *site);
        cres[i].site = NULL;
    }
    for (size_t i = 0; i < 3; i++) cr_assert_eq(study_site_result(s, i, &pcf[i], &err), PCF_OK, "%s", err.msg);
    rng_mvn_destroy(&mvn);
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

/* The constraint figures are formed on the worker threads, a constraint
 * per work item: no thread count may change a bit of any of them. */
Test(study, constraint_figures_do_not_depend_on_thread_count)
{
    study_constraint_result c1[5], cn[5];
    study_site_curt s1[15], sn[15];
    mcstat_pcf p1[3], pn[3];
    memset(c1, 0, sizeof c1);   /* padding too: the results are compared whole */
    memset(cn, 0, sizeof cn);
    s_mesh_run(1, c1, s1, p1);
    double acts = 0, curt = 0;
    for (int i = 0; i < 5; i++) {
        acts += c1[i].p_acts;
        curt += c1[i].curtail_mw[4];
    }
    cr_assert(acts > 0 && curt > 0, "the case must curtail for the comparison to mean anything");
    cr_assert(c1[1].binding_fault >= 0 && c1[1].has_fault_flow);
    for (int threads = 2; threads <= 3; threads++) {
        memset(cn, 0, sizeof cn);
        s_mesh_run(threads, cn, sn, pn);
        for (int i = 0; i < 5; i++)
            cr_assert(memcmp(&c1[i], &cn[i], sizeof c1[i]) == 0, "constraint %d differs with %d threads", i, threads);
        cr_assert(memcmp(s1, sn, sizeof s1) == 0, "per-site curtailment differs with %d threads", threads);
        cr_assert(memcmp(p1, pn, sizeof p1) == 0, "site statistics differ with %d threads", threads);
    }
}
