/*
 * test_trade_fault.c -- trade checks judged under every credible fault, not
 * the intact network alone (trade.h; docs/methodology.md T.2).
 *
 * Two levels.  The study's deterministic N-1 view (study_fault_loading) on
 * two parallel lines, against a closed form and across thread counts; then
 * engine_trade_check on the case9 zone of tests/test_trade.c, where the
 * margins are worked by hand:
 *
 *   case9 has demand 90 + 100 + 125 = 315 MW at buses 5, 7, 9 and firm plant
 *   of 163 MW at bus 2 and 85 MW at bus 3; bus 1 is the grid, joined to the
 *   rest only through GT1 (branch 1, 1-4).  With two weeks of SCADA flat at
 *   90 % of export, S1, S2, S3 are forecast at 18, 27 and 9 MW (S4, the CHP
 *   without SCADA, at 0) with a spread of a few kW.  So GT1 imports
 *     intact:                        315 - 163 - 85 - 54 = 13 MW,
 *     after a fault of branch 4 (3-6, which islands bus 3 and its 85 MW):
 *                                    315 - 163 - 54      = 98 MW,
 *   and a change of d MW to S3's export capacity moves its output by
 *   0.9 d (the forecast scales with capacity), GT1's import by -0.9 d.
 *
 * And over real sockets: the demo zone (deploy/demo/zone) through
 * pcf-publish's ROUTER and `pcf-sub trade`, whose table names the fault
 * that binds each check.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish.h"
#include "rng.h"
#include "study.h"
#include "test_trade.h"
#include "testdb.h"
#include "testnet.h"
#include "study_ac.h"
#include "trade.h"


/* ---- the study: loading with each fault in force --------------------------------------- */

/* The topology and study of d, its one constraint summarised under each
 * fault at every level (or `level`). */
static study *s_open(const study_def *d, double level, study_topology **topo)
{
    pcf_error err;
    cr_assert_eq(study_topology_new(d, NULL, 0, topo, &err), PCF_OK, "%s", err.msg);
    study *s;
    cr_assert_eq(study_new(d, &s, &err), PCF_OK, "%s", err.msg);
    cr_assert_null(study_fault_loading_get(s, 0), "off unless asked for");
    static const unsigned char want = 1;
    cr_assert_eq(study_set_fault_loading(s, &want, level, &err), PCF_OK);
    return s;
}

/* One SP of a network of up to 8 buses without demand: the site N(15, 2)
 * MW, every limit 100 MW, faults with probabilities prob. */
static void s_run15(study *s, const study_topology *topo, uint32_t sp_index, const double *prob)
{
    static const double demand[8] = { 0 };
    double cov = 4, mean = 15, lim = 100;
    rng_mvn *mvn;
    pcf_error err;
    cr_assert_eq(rng_mvn_new(1, NULL, &cov, &mvn, &err), PCF_OK, "%s", err.msg);
    study_sp sp = { topo, 0.5, &mean, mvn, demand, NULL, NULL, &lim, &lim, prob };
    cr_assert_eq(study_run_sp(s, sp_index, &sp, &err), PCF_OK, "%s", err.msg);
    rng_mvn_destroy(&mvn);
}

/* Two parallel lines to a site N(15, 2) MW; the constraint is line 0.  Fault
 * 0 (line 0 itself) leaves it carrying nothing, fault 1 (the other line)
 * puts the whole output on it: q_p = 15 + 2 z_p, twice the intact q_p, in
 * the same samples.  The fault probabilities are 0: the N-1 view judges a
 * fault whatever its probability. */
static void s_parallel(int threads, double level, study_fault_loading *fl, double *intact_q95)
{
    testnet_parallel net;
    testnet_parallel_init(&net, 20000, 7);
    net.d.threads = threads;
    study_topology *topo;
    study *s = s_open(&net.d, level, &topo);
    static const double prob[2] = { 0, 0 };
    s_run15(s, topo, 3, prob);
    const study_fault_loading *f = study_fault_loading_get(s, 0);
    cr_assert(f);
    memcpy(fl, f, 2 * sizeof *fl);
    cr_assert_float_eq(study_sens_in(s, 2, 0, 0), 1.0, 1e-12, "after the other line's fault: all of it");
    cr_assert_float_eq(study_sens_in(s, 1, 0, 0), 0.0, 1e-12, "after its own fault: none");
    cr_assert_eq(study_sens_in(s, 0, 0, 0), study_sens(s, 0, 0));
    cr_assert_eq(study_sens_in(s, 3, 0, 0), 0, "no state 3");
    *intact_q95 = 100 - study_constraint_result_get(s, 0)->headroom_mw[3];
    study_destroy(&s);
    study_topology_destroy(&topo);
    testnet_parallel_destroy(&net);
}

Test(trade_fault, study_loading_with_each_fault_in_force)
{
    study_fault_loading a[2], b[2];
    double q95, q95b;
    s_parallel(1, 0, a, &q95);
    s_parallel(2, 0, b, &q95b);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "bit-identical for 1 and 2 threads");
    cr_assert_eq(q95, q95b);
    static const double z[STUDY_NLEVELS] = { 0, 0.8416212335729143, 1.2815515655446004, 1.6448536269514722,
                                             2.3263478740408408 };
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        cr_assert_float_eq(a[0].q[l], 0, 1e-12, "its own fault: the line carries nothing");
        /* order-statistic SE of q_p for N(15, 2), 20000 samples: below 0.03 MW at 0.99 */
        cr_assert(fabs(a[1].q[l] - (15 + 2 * z[l])) < 0.1, "level %d: %g vs %g", l, a[1].q[l], 15 + 2 * z[l]);
    }
    cr_assert_float_eq(a[1].q[3], 2 * q95, 1e-9, "the same samples: twice the intact loading");
    cr_assert_eq(a[1].dir, 1);

    /* asked for one level, or one between two, only those are selected
     * (a trade check's cost), with the same values */
    study_fault_loading c[2];
    s_parallel(2, 0.95, c, &q95b);
    for (int l = 0; l < STUDY_NLEVELS; l++)
        cr_assert(l == 3 ? c[1].q[l] == a[1].q[l] : isnan(c[1].q[l]), "0.95: level %d %g", l, c[1].q[l]);
    s_parallel(1, 0.92, c, &q95b);
    for (int l = 0; l < STUDY_NLEVELS; l++)
        cr_assert(l == 2 || l == 3 ? c[1].q[l] == a[1].q[l] : isnan(c[1].q[l]), "0.92: level %d %g", l, c[1].q[l]);
    testnet_parallel net;
    testnet_parallel_init(&net, 100, 7);
    study *s;
    pcf_error err;
    cr_assert_eq(study_new(&net.d, &s, &err), PCF_OK, "%s", err.msg);
    unsigned char want = 1;
    cr_assert_eq(study_set_fault_loading(s, &want, 0.995, &err), PCF_ERR_INVALID, "no level to read 0.995 from");
    study_destroy(&s);
    testnet_parallel_destroy(&net);
}

/* A fault that leaves the constraint's flow factors as they are (one of two
 * parallel lines 2-3 beyond the radial line 1-2 it monitors) leaves every
 * sample's loading as it is: the intact quantiles, and the fault of a line
 * in series with it, which islands the site, leaves it carrying nothing. */
Test(trade_fault, a_fault_that_does_not_move_the_flow_keeps_the_intact_loading)
{
    static const int br[4][2] = { { 1, 2 }, { 2, 3 }, { 2, 3 }, { 3, 4 } };
    mp_case *net = testnet_lines(4, 4, br);
    int row = 0, fault_row[2] = { 1, 3 };
    double sign = -1;
    study_constraint k = { 1, &row, &sign, 33, ANM_DANM, 1.0, 1.0, 0 };
    study_site site = { 4, 100 };
    anm_tranche_def tr = { 0, 100, 0, 1, ANM_DANM };
    study_def d = { net, 1, 1, 1, 2, &k, &site, &tr, NULL, fault_row, 5000, 11, 2, NULL };
    study_topology *topo;
    study *s = s_open(&d, 0, &topo);
    static const double prob[2] = { 0.001, 0.001 };
    s_run15(s, topo, 2, prob);
    const study_fault_loading *f = study_fault_loading_get(s, 0);
    const study_constraint_result *r = study_constraint_result_get(s, 0);
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        cr_assert_float_eq(f[0].q[l], 100 - r->headroom_mw[l], 1e-9, "level %d: the intact loading", l);
        cr_assert_eq(f[1].q[l], 0, "level %d: the site is islanded", l);
    }
    cr_assert(fabs(f[0].q[3] - (15 + 2 * 1.6448536269514722)) < 0.15, "%g", f[0].q[3]);
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&net);
}

/* A linear constraint (a voltage constraint's model, study_set_linear) has
 * no branch rows, so its rows of flow factors are zero in every state and
 * say nothing: its post-fault loading is selected from its own model,
 * twice the intact one here, never copied from the intact state. */
Test(trade_fault, a_linear_constraint_is_judged_on_its_own_post_fault_model)
{
    static const int br[2][2] = { { 1, 2 }, { 1, 2 } };
    mp_case *net = testnet_lines(2, 2, br);
    int fault_row = 1;
    study_constraint k = { 0, NULL, NULL, 33, ANM_DANM, 1.0, 1.0, 1 };
    study_site site = { 2, 100 };
    anm_tranche_def tr = { 0, 100, 0, 1, ANM_DANM };
    study_def d = { net, 1, 1, 1, 1, &k, &site, &tr, NULL, &fault_row, 4000, 3, 2, NULL };
    study_topology *topo;
    study *s = s_open(&d, 0, &topo);
    static const double row[2 * 2] = { 0.5, 0.5, 1.0, 1.0 }, off[2] = { 0, 0 }, prob = 0.001;
    pcf_error err;
    cr_assert_eq(study_set_linear(s, row, off, NULL, &err), PCF_OK, "%s", err.msg);
    s_run15(s, topo, 4, &prob);
    const study_fault_loading *f = study_fault_loading_get(s, 0);
    const study_constraint_result *r = study_constraint_result_get(s, 0);
    for (int l = 0; l < STUDY_NLEVELS; l++)
        cr_assert_float_eq(f[0].q[l], 2 * (100 - r->headroom_mw[l]), 1e-9, "level %d: %g", l, f[0].q[l]);
    cr_assert_float_eq(study_sens_in(s, 1, 0, 0), 1.0, 1e-12);
    study_destroy(&s);
    study_topology_destroy(&topo);
    mp_case_destroy(&net);
}

/* A fault whose branch is already out for planned work cannot happen: its
 * figures are NaN, and a trade check skips it. */
Test(trade_fault, fault_of_a_branch_already_out_is_not_judged)
{
    testnet_parallel net;
    testnet_parallel_init(&net, 1000, 7);
    int out = 1;
    study_topology *topo;
    pcf_error err;
    cr_assert_eq(study_topology_new(&net.d, &out, 1, &topo, &err), PCF_OK, "%s", err.msg);
    study *s;
    cr_assert_eq(study_new(&net.d, &s, &err), PCF_OK, "%s", err.msg);
    unsigned char want = 1;
    cr_assert_eq(study_set_fault_loading(s, &want, 0, &err), PCF_OK);
    double mean = 15, demand[2] = { 0, 0 }, lim = 100, prob[2] = { 0.01, 0.01 };
    study_sp sp = { topo, 0.5, &mean, NULL, demand, NULL, NULL, &lim, &lim, prob };
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_OK, "%s", err.msg);
    const study_fault_loading *f = study_fault_loading_get(s, 0);
    cr_assert(isnan(f[1].q[0]) && isnan(f[1].q[4]), "branch 1 is out: its fault cannot happen");
    cr_assert_float_eq(f[0].q[3], 0, 1e-12, "losing the only line left islands the site");
    cr_assert_eq(study_set_fault_loading(s, NULL, 0, &err), PCF_OK);
    cr_assert_null(study_fault_loading_get(s, 0));
    study_destroy(&s);
    study_topology_destroy(&topo);
    testnet_parallel_destroy(&net);
}

/* ---- engine_trade_check on case9, worked by hand -------------------------------------- */

/* The case9 zone with GT1's summer limits set: continuous rating and PEL
 * (the intact limit) 90 MVA, post-fault rating `post` MVA. */
static void s_zone(testdb *db, const char *tag, double post)
{
    char q[512];
    snprintf(q, sizeof q, "UPDATE branch_rating SET continuous_mva = 90, pel_mva = 90, post_fault_mva = %g"
                          " WHERE season = 'summer' AND branch_id = (SELECT branch_id FROM branch"
                          " WHERE zone_id = 'T' AND name = 'GT1')", post);
    const char *sql[1] = { q };
    trade_test_zone(db, tag, sql, 1);
}

static trade_result *s_check(PGconn *c, trade_kind kind, const trade_change *ch, size_t n, double conf)
{
    trade_request rq = { "T", kind, 2026, 6, 1, 25, 26, 0, ch, n, conf, 400, 0, STUDY_AC_OFF };
    trade_result *r = NULL;
    pcf_error e;
    cr_assert_eq(engine_trade_check(c, &rq, &r, &e), PCF_OK, "%s", e.msg);
    return r;
}

static const trade_check_row *s_row(const trade_result *r, const char *cid, int sp)
{
    for (size_t i = 0; i < r->ncheck; i++)
        if (strcmp(r->check[i].constraint_id, cid) == 0 && r->check[i].sp == sp) return &r->check[i];
    cr_assert_fail("no check of %s SP %d", cid, sp);
    return NULL;
}

/* An accepted bid that turns S3 down by 5 MW: fine on the intact network
 * (GT1 imports 17.5 of its 90 MW), but after a fault of branch 4 GT1 would
 * import 102.5 MW against a post-fault rating of 100. */
Test(trade_fault, intact_passes_but_a_credible_fault_fails, .timeout = 120)
{
    testdb db;
    s_zone(&db, "trfault", 100);
    PGconn *c = testdb_connect(&db);
    trade_change ch[1] = { { "S3", -5 } };
    trade_result *r = s_check(c, TRADE_BID_OFFER_ACCEPTANCE, ch, 1, 0);
    cr_assert_eq(r->pass, 0, "%s", r->reason);
    for (int sp = 25; sp <= 26; sp++) {
        const trade_check_row *t = s_row(r, "C_GT1", sp);
        cr_assert_eq(t->pass, 0);
        cr_assert_eq(t->nfault, 3, "GT1, L45 and branch 4");
        cr_assert_str_eq(t->binding_fault_id, "4", "branch 4 (3-6, unnamed) is named by its index");
        cr_assert_float_eq(t->limit_mw, 100, 1e-9, "judged against the post-fault rating");
        cr_assert_float_eq(t->margin_intact_before_mw, 90 - 13, 0.01, "%g", t->margin_intact_before_mw);
        cr_assert_float_eq(t->margin_intact_after_mw, 90 - 17.5, 0.01, "%g", t->margin_intact_after_mw);
        cr_assert_float_eq(t->margin_before_mw, 100 - 98, 0.01, "%g", t->margin_before_mw);
        cr_assert_float_eq(t->margin_after_mw, 100 - 102.5, 0.01, "%g", t->margin_after_mw);
        /* C_GT1 counts 4 -> 1 positive, so S3's sensitivity is +1 intact
         * and after the fault (GT1 is radial): -5 MW of constraint flow */
        cr_assert_float_eq(t->flow_change_mw, -5, 1e-9);
        cr_assert_float_eq(t->accepted_volume_mw, 0, 1e-12, "no buyer: nothing to accept");
    }
    cr_assert(strstr(r->reason, "FAIL") && strstr(r->reason, "C_GT1") && strstr(r->reason, "after a fault of 4"),
              "%s", r->reason);
    trade_result_destroy(&r);

    /* the intact view alone would have passed it: the same bid against a
     * post-fault rating that holds (130 MVA) passes, bound by the fault */
    PQfinish(c);
    testdb_drop(&db);
    s_zone(&db, "trfault2", 130);
    c = testdb_connect(&db);
    r = s_check(c, TRADE_BID_OFFER_ACCEPTANCE, ch, 1, 0);
    cr_assert_eq(r->pass, 1, "%s", r->reason);
    const trade_check_row *t = s_row(r, "C_GT1", 25);
    cr_assert_float_eq(t->margin_after_mw, 130 - 102.5, 0.01, "%g", t->margin_after_mw);
    cr_assert_str_eq(t->binding_fault_id, "4");
    trade_result_destroy(&r);
    PQfinish(c);
    testdb_drop(&db);
}

/* GT1's post-fault rating of 95 MVA is exceeded before any trade (98 MW
 * after a fault of branch 4).  An offer that turns S3 up by 5 MW relieves
 * it (93.5 MW): it passes with the fault's margin going from -3 to +1.5. */
Test(trade_fault, a_trade_that_relieves_a_post_fault_overload_passes, .timeout = 120)
{
    testdb db;
    s_zone(&db, "trrelief", 95);
    PGconn *c = testdb_connect(&db);
    trade_change up[1] = { { "S3", 5 } };
    trade_result *r = s_check(c, TRADE_BID_OFFER_ACCEPTANCE, up, 1, 0);
    cr_assert_eq(r->pass, 1, "%s", r->reason);
    const trade_check_row *t = s_row(r, "C_GT1", 25);
    cr_assert(t->pass);
    cr_assert_str_eq(t->binding_fault_id, "4");
    cr_assert_float_eq(t->margin_before_mw, 95 - 98, 0.01, "%g", t->margin_before_mw);
    cr_assert_float_eq(t->margin_after_mw, 95 - 93.5, 0.01, "%g", t->margin_after_mw);
    cr_assert_float_eq(t->margin_intact_after_mw, 90 - 8.5, 0.01, "%g", t->margin_intact_after_mw);
    cr_assert_float_eq(t->flow_change_mw, 5, 1e-9);
    cr_assert_float_eq(r->accepted_volume_mw, 5, 1e-12);
    cr_assert_float_eq(r->adjusted_mw[0], 5, 1e-12);
    trade_result_destroy(&r);

    /* the reverse worsens the exceedance the fault already causes: FAIL,
     * at a confidence between two block levels too (the flows hardly vary) */
    trade_change down[1] = { { "S3", -5 } };
    r = s_check(c, TRADE_BID_OFFER_ACCEPTANCE, down, 1, 0.92);
    cr_assert_eq(r->pass, 0, "%s", r->reason);
    t = s_row(r, "C_GT1", 26);
    cr_assert_float_eq(t->margin_after_mw, 95 - 102.5, 0.01, "%g", t->margin_after_mw);
    cr_assert_str_eq(t->binding_fault_id, "4");
    trade_result_destroy(&r);
    PQfinish(c);
    testdb_drop(&db);
}

/* A circuit the fault re-routes a buyer onto.  With bus 3's generator off
 * (so little flows round the ring intact), S1 (bus 5) exporting 150 MW is
 * forecast at 135 MW against 90 MW of demand at bus 5.  Line 5-6 (C_L56,
 * 40 MVA continuous, 50 post-fault) carries a few MW intact, but after a
 * fault of L45 bus 5 hangs on 5-6 alone: it carries 135 - 90 = 45 MW, and
 * S1's sensitivity to it goes from about 0.14 (PTDF) to 1 (PTDF + LODF).
 * S1 buying 10 MW more makes it 45 + 9 = 54 MW: margin 5 -> -4 MW.  The
 * share of the 10 MW that fits is 5 / 9 (the margin moves 0.9 MW per MW
 * of capacity, the forecast's share): 5.556 MW, which re-checked leaves a
 * margin of 0. */
Test(trade_fault, a_buyer_rerouted_by_a_fault_is_cut_back_with_post_fault_sensitivities, .timeout = 120)
{
    static const char *const sql[] = {
        "UPDATE der_site SET export_capacity_mw = 150 WHERE site_id = 'S1'",
        "UPDATE der_enquiry SET capacity_mw = 150 WHERE enquiry_id = 'E1'",
        "UPDATE gen SET pg = 0 WHERE zone_id = 'T' AND bus_i = 3",
        "INSERT INTO anm_constraint (constraint_id, scheme_id, zone_id, description, kind, anm_type, voltage_kv)"
        " VALUES ('C_L56', 'ANM1', 'T', 'Line 5-6', 'branch', 'DANM', 345)",
        "INSERT INTO anm_constraint_branch (constraint_id, zone_id, branch_id, sign)"
        " SELECT 'C_L56', 'T', branch_id, 1 FROM branch WHERE zone_id = 'T' AND idx = 3",
        "INSERT INTO anm_constraint_site (constraint_id, zone_id, site_id) VALUES ('C_L56', 'T', 'S1')",
        "INSERT INTO branch_rating (branch_id, season, continuous_mva, post_fault_mva)"
        " SELECT branch_id, s, 40, 50 FROM branch, unnest(ARRAY['winter', 'spring', 'summer', 'autumn']) s"
        " WHERE zone_id = 'T' AND idx = 3"
    };
    testdb db;
    trade_test_zone(&db, "trreroute", sql, sizeof sql / sizeof sql[0]);
    PGconn *c = testdb_connect(&db);
    trade_change ch[1] = { { "S1", 10 } };
    trade_result *r = s_check(c, TRADE_MEC, ch, 1, 0);
    cr_assert_eq(r->pass, 0, "%s", r->reason);
    const trade_check_row *t = s_row(r, "C_L56", 25);
    cr_assert_eq(t->pass, 0);
    cr_assert_str_eq(t->binding_fault_id, "L45");
    cr_assert_float_eq(t->limit_mw, 50, 1e-9);
    cr_assert_float_eq(t->margin_before_mw, 50 - 45, 0.01, "%g", t->margin_before_mw);
    cr_assert_float_eq(t->margin_after_mw, 50 - 54, 0.01, "%g", t->margin_after_mw);
    cr_assert_gt(t->margin_intact_after_mw, t->margin_intact_before_mw, "intact, S1's export relieves the line");
    cr_assert_gt(t->margin_intact_after_mw, 30);
    cr_assert_float_eq(t->flow_change_mw, 10, 1e-6, "the post-fault sensitivity is 1 (intact: about 0.14)");
    cr_assert_float_eq(t->accepted_volume_mw, 10 * 5.0 / 9.0, 0.01, "%g", t->accepted_volume_mw);
    cr_assert_float_eq(r->adjusted_mw[0], t->accepted_volume_mw, 1e-12);
    double acc = r->accepted_volume_mw;
    trade_result_destroy(&r);

    /* the accepted volume, re-checked, just fits */
    ch[0].delta_mw = acc;
    r = s_check(c, TRADE_MEC, ch, 1, 0);
    t = s_row(r, "C_L56", 25);
    cr_assert_float_eq(t->margin_after_mw, 0, 0.01, "%g", t->margin_after_mw);
    cr_assert_str_eq(t->binding_fault_id, "L45");
    trade_result_destroy(&r);
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- the demo zone over real sockets ----------------------------------------------------- */

/* Kestrel Cross (deploy/demo/zone) without SCADA: demand alone loads the
 * grid transformers, and GT1 and GT2 are in parallel, so after a fault of
 * one the other carries both loads.  pcf-sub's table names, per check, the
 * fault that binds it, as the library computed it. */
Test(trade_fault, demo_zone_over_zeromq_shows_binding_faults, .timeout = 240)
{
    testdb db;
    trade_test_import(&db, "trdemo", "demo", "deploy/demo/zone/kestrel_cross.m", "deploy/demo/zone");
    char cmd[1024];
    PGconn *c = testdb_connect(&db);
    trade_change ch[2] = { { "B01", -5 }, { "W01", 5 } };
    trade_request rq = { "demo", TRADE_MEC, 2026, 11, 24, 34, 35, 0, ch, 2, 0, 200, 0, 0 };
    trade_result *lib = NULL;
    pcf_error e;
    cr_assert_eq(engine_trade_check(c, &rq, &lib, &e), PCF_OK, "%s", e.msg);
    size_t bound = 0;
    for (size_t i = 0; i < lib->ncheck; i++) {
        const trade_check_row *t = &lib->check[i];
        bound += t->binding_fault_id[0] != 0;
        cr_assert_gt(t->nfault, 0, "%s: the demo zone's monitored branches are credible faults", t->constraint_id);
        cr_assert_leq(t->margin_before_mw, t->margin_intact_before_mw);
        cr_assert_leq(t->margin_after_mw, t->margin_intact_after_mw);
    }
    cr_assert_gt(bound, 0, "some check of the demo zone is bound by a fault: %s", lib->reason);

    trade_srv s;
    trade_srv_start(&s, &db, 200);
    static char table[65536];
    snprintf(cmd, sizeof cmd, "%s/pcf-sub --router %s trade --zone demo --date 2026-11-24 --sp 34-35"
                              " --change B01:-5 --change W01:+5", testdb_bindir(), publish_router_endpoint(s.p));
    int rc = testdb_run(&db, cmd, table, sizeof table);
    trade_srv_stop(&s);
    cr_assert_eq(rc, 0, "%s", table);
    cr_assert_eq(s.rc, PCF_OK);
    cr_assert(strstr(table, " binding\n"), "a binding column: %s", table);
    for (size_t i = 0; i < lib->ncheck; i++) {
        const trade_check_row *t = &lib->check[i];
        char key[160];
        snprintf(key, sizeof key, "\n%-16s %4d ", t->constraint_id, t->sp);
        const char *l = strstr(table, key);
        cr_assert(l, "no row %s in %s", key + 1, table);
        const char *eol = strchr(l + 1, '\n');
        cr_assert(eol);
        const char *want = t->binding_fault_id[0] ? t->binding_fault_id : "intact";
        size_t n = strlen(want);
        cr_assert(eol - l > (long)n + 2 && strncmp(eol - n, want, n) == 0 && eol[-(long)n - 1] == ' ',
                  "%s SP %d: binding %s in %.*s", t->constraint_id, t->sp, want, (int)(eol - l - 1), l + 1);
    }
    trade_result_destroy(&lib);
    PQfinish(c);
    testdb_drop(&db);
}
