/*
 * test_results_detail.c -- the statement and block figures added by
 * sql/004_results_detail.sql, from the study to the wire:
 *   - the binding fault and P(ANM acts with it in force) for a fault of
 *     known probability, and the fallback when the ANM never acts under a
 *     fault;
 *   - per-site P(curtailed) and the SE of its expected curtailment, which
 *     for one site must equal the constraint's own figures;
 *   - quantile SEs from the multi-rank selection equal to mcstat's from a
 *     full sort, and close to the asymptotic SE of a Gaussian quantile;
 *   - the engine writes every new column, the schema refuses a binding
 *     probability above P(ANM acts), and the publisher sends them.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcstat.h"
#include "publish_run.h"
#include "study.h"
#include "testdb.h"
#include "testnet.h"

#define N_SAMPLES 20000

/* Two parallel lines 1-2 with a 15 MW site at bus 2; the constraint is line
 * row 0.  Intact each line carries 7.5 MW (limit 10: no action).  When line
 * row 1 is lost (probability 0.1) row 0 carries 15 MW against the post-fault
 * limit lim_f; losing row 0 itself (probability 0.05) leaves it empty. */
static void s_parallel(double lim_f, study_constraint_result *out, study_site_curt *site)
{
    testnet_parallel net;
    testnet_parallel_init(&net, N_SAMPLES, 99);
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&net.d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    study *s;
    cr_assert_eq(study_new(&net.d, &s, &err), PCF_OK, "%s", err.msg);
    double mean = 15, demand[2] = { 0, 0 }, lim_i = 10, prob[2] = { 0.05, 0.1 };
    study_sp sp = { topo, 0.5, &mean, NULL, demand, NULL, NULL, &lim_i, &lim_f, prob };
    cr_assert_eq(study_run_sp(s, 5, &sp, &err), PCF_OK, "%s", err.msg);
    *out = *study_constraint_result_get(s, 0);
    *site = out->site[0];
    out->site = NULL;
    study_destroy(&s);
    study_topology_destroy(&topo);
    testnet_parallel_destroy(&net);
}

Test(results_detail, binding_fault_of_known_probability)
{
    study_constraint_result r;
    study_site_curt site;
    s_parallel(12, &r, &site);
    cr_assert_eq(r.binding_fault, 1, "the other line's fault is in force whenever the ANM acts");
    cr_assert_float_eq(r.limit_fault_mw, 12, 0, "the post-fault limit used is reported");
    /* the ANM acts only under that fault, so the two probabilities are one */
    cr_assert_eq(r.p_binding, r.p_acts, "P(acts with the binding fault) %.6f vs P(acts) %.6f", r.p_binding, r.p_acts);
    cr_assert(fabs(r.p_binding - 0.1) <= 4 * r.p_binding_se, "P(binding) %.4f, expected 0.1 (se %.4f)",
              r.p_binding, r.p_binding_se);
    cr_assert_float_eq(r.p_binding_se, sqrt(r.p_binding * (1 - r.p_binding) / N_SAMPLES), 1e-15);
    /* one site: what the constraint does to it is all it does */
    cr_assert_float_eq(site.p, r.p_acts, 1e-15, "site P(curtailed) %.6f vs P(acts) %.6f", site.p, r.p_acts);
    cr_assert_float_eq(site.p_se, r.p_acts_se, 1e-15);
    cr_assert_float_eq(site.mwh, r.curtail_mwh, 1e-12);
    cr_assert_float_eq(site.mwh_se, r.curtail_mwh_se, 1e-12);
    /* 3 MW off with probability p: SE of the mean of 1.5 MWh x Bernoulli(p) */
    double p = site.p, n = N_SAMPLES;
    cr_assert_float_eq(site.mwh_se, 1.5 * sqrt(p * (1 - p) * n / (n - 1) / n), 1e-9, "site SE %.9f", site.mwh_se);
    /* Flows are exact here (no forecast error): every quantile SE is 0.
     * The worst-fault flow is 15 MW in every sample (one of the two faults is
     * always the worse one: losing the other line gives 15 MW, losing this
     * one 0, and the intact 7.5 MW is not a fault). */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r.flow_se[i], 0);
        cr_assert_eq(r.fault_se[i], 0);
    }
    /* Curtailment is 0 MW in n - k samples and 3 MW in the k others, so the
     * sorted sample is a step at index n - k: every quantile and its
     * bracketing order statistics follow from k alone. */
    size_t n_cut = (size_t)llround(site.p * N_SAMPLES), step = N_SAMPLES - n_cut;
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        size_t qi = mcstat_quantile_index(N_SAMPLES, study_levels[l]), lo, hi;
        mcstat_quantile_se_index(N_SAMPLES, study_levels[l], &lo, &hi);
        double want = qi >= step ? 3 : 0, want_se = ((hi >= step ? 3 : 0) - (lo >= step ? 3 : 0)) / (2 * MCSTAT_Z95);
        cr_assert_float_eq(r.curtail_mw[l], want, 1e-9, "level %g: %g MW", study_levels[l], r.curtail_mw[l]);
        cr_assert_float_eq(r.curtail_mw_se[l], want_se, 1e-9, "level %g: SE %g", study_levels[l], r.curtail_mw_se[l]);
    }
    /* headroom of the intact loading: 10 - 7.5 in every sample */
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        cr_assert_float_eq(r.headroom_mw[l], 2.5, 1e-9);
        cr_assert_eq(r.headroom_se[l], 0);
    }
}

Test(results_detail, binding_fault_falls_back_to_the_most_often_worst)
{
    study_constraint_result r;
    study_site_curt site;
    s_parallel(20, &r, &site);    /* 15 MW after the fault is within 20: no action ever */
    cr_assert_eq(r.p_acts, 0);
    cr_assert_eq(r.binding_fault, 1, "losing the other line is always the worst: %d", r.binding_fault);
    cr_assert_eq(r.p_binding, 0);
    cr_assert_eq(r.p_binding_se, 0);
    cr_assert_eq(site.p, 0);
    cr_assert_eq(site.mwh, 0);
}

static double s_phi(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

/* Inverse of s_phi by bisection (enough for a test). */
static double s_phi_inv(double p)
{
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; i++) {
        double m = 0.5 * (lo + hi);
        if (s_phi(m) < p) lo = m;
        else hi = m;
    }
    return 0.5 * (lo + hi);
}

/* One site of N(30, 4^2) MW on a single line with limit 45 (no action).
 * The flow quantile SE must be the order-statistic SE of mcstat, and near
 * the asymptotic sqrt(p (1 - p) / n) / pdf(q_p) of a Gaussian. */
Test(results_detail, flow_quantile_se_is_the_order_statistic_se)
{
    static const int br[1][2] = { { 1, 2 } };
    mp_case *c = testnet_lines(2, 1, br);
    int row = 0;
    double sign = -1, sd = 4, mean = 30, lim = 45;
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site st = { 2, 1000 };
    anm_tranche_def tr = { 0, 1000, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 0, &k, &st, &tr, NULL, NULL, N_SAMPLES, 11, 2, NULL };
    study_topology *topo;
    study *s;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &topo, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    double cov = sd * sd, zero = 0, demand[2] = { 0, 0 };
    rng_mvn *mvn;
    cr_assert_eq(rng_mvn_new(1, &zero, &cov, &mvn, &err), PCF_OK, "%s", err.msg);
    study_sp sp = { topo, 0.5, &mean, mvn, demand, NULL, NULL, &lim, &lim, NULL };
    cr_assert_eq(study_run_sp(s, 3, &sp, &err), PCF_OK, "%s", err.msg);
    const study_constraint_result *r = study_constraint_result_get(s, 0);
    cr_assert_eq(r->has_fault_flow, 0);
    cr_assert(isnan(r->fault_se[0]), "no credible fault: no fault-flow SE");
    /* the deliverable output of the one site is the line flow: mcstat's
     * sorted quantiles and SEs of it are the reference */
    mcstat_pcf m;
    cr_assert_eq(study_site_result(s, 0, &m, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(r->flow_p10, m.p10_mw, 1e-9);
    cr_assert_float_eq(r->flow_p50, m.p50_mw, 1e-9);
    cr_assert_float_eq(r->flow_p90, m.p90_mw, 1e-9);
    cr_assert_float_eq(r->flow_se[0], m.p10_se, 1e-9, "%.9f vs %.9f", r->flow_se[0], m.p10_se);
    cr_assert_float_eq(r->flow_se[1], m.p50_se, 1e-9);
    cr_assert_float_eq(r->flow_se[2], m.p90_se, 1e-9);
    static const double lv[3] = { 0.1, 0.5, 0.9 };
    for (int i = 0; i < 3; i++) {
        double z = s_phi_inv(lv[i]);
        double pdf = exp(-z * z / 2) / sqrt(2 * M_PI) / sd;
        double se = sqrt(lv[i] * (1 - lv[i]) / N_SAMPLES) / pdf;
        cr_assert(fabs(r->flow_se[i] / se - 1) < 0.25, "level %.1f: SE %.5f vs asymptotic %.5f", lv[i],
                  r->flow_se[i], se);
    }
    /* headroom = 45 - loading quantile, so its SE is the loading's */
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        double z = s_phi_inv(study_levels[l]);
        double pdf = exp(-z * z / 2) / sqrt(2 * M_PI) / sd;
        double se = sqrt(study_levels[l] * (1 - study_levels[l]) / N_SAMPLES) / pdf;
        cr_assert(fabs(r->headroom_se[l] / se - 1) < 0.3, "level %.2f: headroom SE %.5f vs %.5f", study_levels[l],
                  r->headroom_se[l], se);
        cr_assert_eq(r->curtail_mw_se[l], 0, "no curtailment, no SE");
    }
    rng_mvn_destroy(&mvn);
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&c);
}

Test(results_detail, se_ranks_agree_with_mcstat_quantile)
{
    static const size_t ns[] = { 1, 2, 20, 999, 1000, 10007 };
    static const double ps[] = { 0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99 };
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        double *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = (double)i * 0.5 + 1;   /* sorted, distinct */
        for (size_t b = 0; b < sizeof ps / sizeof ps[0]; b++) {
            size_t lo, hi;
            mcstat_quantile_se_index(n, ps[b], &lo, &hi);
            cr_assert(lo <= mcstat_quantile_index(n, ps[b]) && mcstat_quantile_index(n, ps[b]) <= hi && hi < n,
                      "n %zu p %g: ranks %zu..%zu", n, ps[b], lo, hi);
            double se;
            mcstat_quantile(v, n, ps[b], &se);
            cr_assert_float_eq(se, (v[hi] - v[lo]) / (2 * MCSTAT_Z95), 1e-12);
        }
        free(v);
    }
}

/* ---- through the engine, the schema and the publisher ---------------------- */

static void s_run(testdb *db, const char *tag)
{
    static char out[16384];
    const char *b = testdb_bindir();
    char cmd[512];
    testdb_create(db, tag);
    const char *steps[] = { "pcf-db migrate", "pcf-db import-matpower --zone T tests/data/matpower/cases/case9.m",
                            "pcf-db import-der --zone T tests/data/registry/case9",
                            "pcf-db import-anm --zone T tests/data/registry/case9",
                            "pcf-forecaster run --zone T --day-ahead 2026-01-15 --samples 400 --seed 3" };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", b, steps[i]);
        cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "%s: %s", cmd, out);
    }
}

Test(results_detail, engine_fills_every_column_and_publisher_sends_them)
{
    testdb db;
    s_run(&db, "detail");
    PGconn *c = testdb_connect(&db);
    long nst = testdb_long(c, "SELECT count(*) FROM constraint_statement");
    cr_assert_gt(nst, 0);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement WHERE post_fault_limit_mw IS NOT NULL"
                            " AND p_binding_fault IS NOT NULL AND p_binding_fault_se IS NOT NULL"
                            " AND flow_intact_p10_se_mw IS NOT NULL AND flow_intact_p50_se_mw IS NOT NULL"
                            " AND flow_intact_p90_se_mw IS NOT NULL"
                            " AND (flow_fault_p10_mw IS NULL) = (flow_fault_p10_se_mw IS NULL)"
                            " AND (flow_fault_p90_mw IS NULL) = (flow_fault_p90_se_mw IS NULL)"), nst);
    /* with forecast error, a flow quantile has a positive SE somewhere */
    cr_assert_gt(testdb_long(c, "SELECT count(*) FROM constraint_statement WHERE flow_intact_p50_se_mw > 0"), 0);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement_site WHERE p_curtailed IS NULL"
                            " OR p_curtailed_se IS NULL OR expected_curtailment_se IS NULL"), 0);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_block WHERE headroom_se_mw IS NULL"
                            " OR curtailment_se_mw IS NULL OR curtailment_mwh_se IS NULL"), 0);
    /* a site is curtailed by a constraint only if the constraint acts */
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement_site s JOIN constraint_statement c"
                            " USING (run_id, constraint_id, sp) WHERE s.p_curtailed > c.p_anm_acts"), 0);
    /* the schema refuses a binding-fault probability above P(ANM acts) */
    PGresult *res = PQexec(c, "UPDATE constraint_statement SET p_binding_fault = p_anm_acts + 0.01"
                              " WHERE p_anm_acts < 0.99");
    cr_assert_eq(PQresultStatus(res), PGRES_FATAL_ERROR, "the CHECK let p_binding_fault > p_anm_acts through");
    cr_assert(strstr(PQresultErrorMessage(res), "constraint_statement_binding_within_acts"), "%s",
              PQresultErrorMessage(res));
    PQclear(res);

    publish_run *run;
    pcf_error e;
    cr_assert_eq(publish_run_load(c, 1, PUBLISH_RUN_ALL, &run, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq((long)run->n_statements, nst);
    int flow_se = 0, site_p = 0, block_se = 0;
    for (size_t i = 0; i < run->n_statements; i++) {
        const Pcf__V1__ConstraintStatement *s = run->statements[i];
        cr_assert_gt(s->post_fault_limit_mw, 0, "%s SP %u: post-fault limit not sent", s->constraint_id, s->sp);
        cr_assert_leq(s->p_binding_fault, s->p_anm_acts);
        for (size_t q = 0; q < s->n_flow_intact; q++) flow_se += s->flow_intact[q]->mw_se > 0;
        for (size_t j = 0; j < s->n_sites; j++) site_p += s->sites[j]->p_curtailed > 0;
    }
    for (size_t i = 0; i < run->n_blocks; i++)
        for (size_t l = 0; l < run->blocks[i]->n_levels; l++)
            block_se += run->blocks[i]->levels[l]->headroom_mw_se > 0;
    cr_assert_gt(flow_se, 0, "no flow quantile SE on the wire");
    cr_assert_gt(block_se, 0, "no block SE on the wire");
    /* the wire carries exactly what the table holds */
    char v[64];
    testdb_scalar(c, "SELECT count(*) FROM constraint_statement_site WHERE p_curtailed > 0", v, sizeof v);
    cr_assert_eq(site_p, atoi(v));
    testdb_scalar(c, "SELECT sum(p_binding_fault) FROM constraint_statement", v, sizeof v);
    double sum = 0;
    for (size_t i = 0; i < run->n_statements; i++) sum += run->statements[i]->p_binding_fault;
    cr_assert_float_eq(sum, strtod(v, NULL), 1e-9);
    publish_run_destroy(&run);
    PQfinish(c);
    testdb_drop(&db);
}

/* Runs written before migration 004 have NULL in its columns: they are
 * still published, with 0 (= not given) in those fields. */
Test(results_detail, runs_from_before_004_publish_zeros)
{
    testdb db;
    s_run(&db, "detailold");
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "UPDATE constraint_statement SET post_fault_limit_mw = NULL, p_binding_fault = NULL,"
                   " p_binding_fault_se = NULL, flow_intact_p10_se_mw = NULL, flow_intact_p50_se_mw = NULL,"
                   " flow_intact_p90_se_mw = NULL, flow_fault_p10_se_mw = NULL, flow_fault_p50_se_mw = NULL,"
                   " flow_fault_p90_se_mw = NULL");
    testdb_exec(c, "UPDATE constraint_statement_site SET p_curtailed = NULL, p_curtailed_se = NULL,"
                   " expected_curtailment_se = NULL");
    testdb_exec(c, "UPDATE constraint_block SET headroom_se_mw = NULL, curtailment_se_mw = NULL,"
                   " curtailment_mwh_se = NULL");
    publish_run *run;
    pcf_error e;
    cr_assert_eq(publish_run_load(c, 1, PUBLISH_RUN_ALL, &run, &e), PCF_OK, "%s", e.msg);
    cr_assert_gt(run->n_statements, 0);
    for (size_t i = 0; i < run->n_statements; i++) {
        cr_assert_eq(run->statements[i]->post_fault_limit_mw, 0);
        cr_assert_eq(run->statements[i]->flow_intact[1]->mw_se, 0);
    }
    publish_run_destroy(&run);
    PQfinish(c);
    testdb_drop(&db);
}

/* publish_run_load prepares its queries once per connection: on a fresh
 * connection, again after they are deallocated (as after a reconnect to a
 * pooler or a DISCARD ALL), again when only some are missing (an earlier
 * preparation that failed part way: regression, it then failed for ever on
 * the ones already there), and it never leaves a transaction open. */
Test(results_detail, run_load_prepares_its_queries_when_missing)
{
    testdb db;
    s_run(&db, "detailprep");
    PGconn *c = testdb_connect(&db);
    publish_run *run;
    pcf_error e;
    for (int round = 0; round < 4; round++) {
        if (round == 2) testdb_exec(c, "DEALLOCATE ALL");
        if (round == 3) testdb_exec(c, "DEALLOCATE pcf_publish_cb");
        cr_assert_eq(publish_run_load(c, 1, PUBLISH_RUN_ALL, &run, &e), PCF_OK, "round %d: %s", round, e.msg);
        cr_assert_gt(run->n_statements, 0);
        publish_run_destroy(&run);
        cr_assert_eq(PQtransactionStatus(c), PQTRANS_IDLE, "round %d: transaction left open", round);
        char v[16];
        testdb_scalar(c, "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'pcf_publish_%'", v, sizeof v);
        cr_assert_eq(atoi(v), 5, "round %d: %s statements prepared", round, v);
    }
    /* a run that does not exist is still a clean error, not a retry loop */
    cr_assert_eq(publish_run_load(c, 999, PUBLISH_RUN_ALL, &run, &e), PCF_ERR_INVALID);
    PQfinish(c);
    testdb_drop(&db);
}
