/*
 * test_trade.c -- trade checks (forecaster/trade.h) against a real
 * PostgreSQL with the case9 zone of tests/test_engine.c: a trade away from a
 * congested constraint passes, the reverse fails with a negative margin,
 * empty and unknown-site trades are refused with a reason, and the "before"
 * figures are the figures of a run with the same samples; and a
 * TradeCheckRequest sent by `pcf-sub trade` to a publisher over real
 * sockets gets the library's answer.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publish.h"
#include "test_trade.h"
#include "testdb.h"
#include "study_ac.h"
#include "trade.h"


/* S1 grows to 100 MW behind line 4-5, whose rating drops to 55 MVA: its
 * export loads the line beyond its limit (C_L45 is congested); the grid
 * transformer and the boundary keep ample room. */
static void s_trade_zone(testdb *db, const char *tag)
{
    static const char *const sql[] = {
        "UPDATE der_site SET export_capacity_mw = 100 WHERE site_id = 'S1'",
        "UPDATE der_enquiry SET capacity_mw = 100 WHERE enquiry_id = 'E1'",
        "INSERT INTO branch_rating (branch_id, season, continuous_mva, post_fault_mva)"
        " SELECT branch_id, s, 55, 60 FROM branch, unnest(ARRAY['winter', 'spring', 'summer', 'autumn']) s"
        " WHERE zone_id = 'T' AND name = 'L45'"
        " ON CONFLICT (branch_id, season) DO UPDATE SET continuous_mva = 55, pel_mva = NULL, post_fault_mva = 60"
    };
    trade_test_zone(db, tag, sql, sizeof sql / sizeof sql[0]);
}

static trade_result *s_check(PGconn *c, const trade_change *ch, size_t n, pcf_error *e, pcf_rc *rc)
{
    trade_request rq = { "T", TRADE_MEC, 2026, 6, 1, 25, 28, 0, ch, n, 0, 400, 0, 0 };
    trade_result *r = NULL;
    *rc = engine_trade_check(c, &rq, &r, e);
    return r;
}

static const trade_check_row *s_row(const trade_result *r, const char *cid, int sp)
{
    for (size_t i = 0; i < r->ncheck; i++)
        if (strcmp(r->check[i].constraint_id, cid) == 0 && r->check[i].sp == sp) return &r->check[i];
    return NULL;
}

Test(trade, moving_capacity_off_a_congested_line_passes, .timeout = 120)
{
    testdb db;
    s_trade_zone(&db, "trpass");
    PGconn *c = testdb_connect(&db);
    /* S1 (bus 5, loads line 4-5 by 0.86 MW per MW) sells 20 MW to S3
     * (bus 9, 0.12 MW per MW) */
    trade_change ch[2] = { { "S1", -20 }, { "S3", 20 } };
    pcf_error e;
    pcf_rc rc;
    trade_result *r = s_check(c, ch, 2, &e, &rc);
    cr_assert_eq(rc, PCF_OK, "%s", e.msg);
    cr_assert_eq(r->pass, 1, "%s", r->reason);
    cr_assert_eq(r->ncheck, 3 * 4, "every constraint of the traded sites, SPs 25..28");
    for (int sp = 25; sp <= 28; sp++) {
        const trade_check_row *t = s_row(r, "C_L45", sp);
        cr_assert(t, "no check of C_L45 SP %d", sp);
        cr_assert(t->pass);
        cr_assert_lt(t->margin_before_mw, 0, "the line is congested before: %g", t->margin_before_mw);
        cr_assert_gt(t->margin_after_mw, 0, "and within its limit after: %g", t->margin_after_mw);
        /* sensitivity-adjusted volume: -20 x S1's + 20 x S3's sensitivity, both negative */
        cr_assert_gt(t->flow_change_mw, 10);
        cr_assert_lt(t->flow_change_mw, 20);
        cr_assert_gt(t->p_acts_before, 0.5);
        cr_assert_lt(t->p_acts_after, t->p_acts_before);
        /* the grid transformer and boundary see every site alike: unchanged
         * in DC; the screened AC model (the default) sees only the change in
         * the losses between the two buses, well under 5 % of the 20 MW */
        const trade_check_row *g = s_row(r, "C_GT1", sp);
        cr_assert(g && g->pass);
        cr_assert_lt(fabs(g->flow_change_mw), 1.0, "%g", g->flow_change_mw);
    }
    cr_assert_float_eq(r->requested_volume_mw, 20, 1e-12);
    cr_assert_float_eq(r->accepted_volume_mw, 20, 1e-12);
    cr_assert_float_eq(r->adjusted_mw[0], -20, 1e-12);
    cr_assert_float_eq(r->adjusted_mw[1], 20, 1e-12);
    trade_result_destroy(&r);
    cr_assert_null(r);
    PQfinish(c);
    testdb_drop(&db);
}

Test(trade, moving_capacity_onto_a_congested_line_fails, .timeout = 120)
{
    testdb db;
    s_trade_zone(&db, "trfail");
    PGconn *c = testdb_connect(&db);
    trade_change ch[2] = { { "S3", -5 }, { "S1", 5 } };
    pcf_error e;
    pcf_rc rc;
    trade_result *r = s_check(c, ch, 2, &e, &rc);
    cr_assert_eq(rc, PCF_OK, "%s", e.msg);
    cr_assert_eq(r->pass, 0, "%s", r->reason);
    const trade_check_row *t = s_row(r, "C_L45", 25);
    cr_assert(t);
    cr_assert_eq(t->pass, 0);
    cr_assert_lt(t->margin_after_mw, t->margin_before_mw);
    cr_assert_lt(t->margin_after_mw, -1, "negative margin after: %g", t->margin_after_mw);
    cr_assert_lt(t->flow_change_mw, 0);
    cr_assert_float_eq(t->accepted_volume_mw, 0, 1e-12, "an exceeded line accepts none of the increase");
    cr_assert_float_eq(r->accepted_volume_mw, 0, 1e-12);
    cr_assert_float_eq(r->adjusted_mw[0], -5, 1e-12, "the seller's decrease stands");
    cr_assert_float_eq(r->adjusted_mw[1], 0, 1e-12);
    cr_assert(strstr(r->reason, "FAIL") && strstr(r->reason, "C_L45"), "%s", r->reason);
    trade_result_destroy(&r);
    PQfinish(c);
    testdb_drop(&db);
}

Test(trade, empty_and_unknown_site_trades_are_refused, .timeout = 120)
{
    testdb db;
    s_trade_zone(&db, "trbad");
    PGconn *c = testdb_connect(&db);
    pcf_error e;
    pcf_rc rc;
    trade_result *r = s_check(c, NULL, 0, &e, &rc);
    cr_assert_eq(rc, PCF_ERR_INVALID);
    cr_assert_null(r);
    cr_assert(strstr(e.msg, "no capacity change"), "%s", e.msg);
    trade_change bad[2] = { { "S1", -5 }, { "S9", 5 } };
    r = s_check(c, bad, 2, &e, &rc);
    cr_assert_eq(rc, PCF_ERR_INVALID);
    cr_assert_null(r);
    cr_assert(strstr(e.msg, "no site S9 in zone T"), "%s", e.msg);
    trade_change twice[2] = { { "S1", -5 }, { "S1", 5 } };
    r = s_check(c, twice, 2, &e, &rc);
    cr_assert_eq(rc, PCF_ERR_INVALID);
    cr_assert(strstr(e.msg, "changed twice"), "%s", e.msg);
    trade_change nan[1] = { { "S1", NAN } };
    r = s_check(c, nan, 1, &e, &rc);
    cr_assert_eq(rc, PCF_ERR_INVALID);
    trade_request rq = { "T", TRADE_MEC, 2026, 6, 1, 25, 28, 0, bad, 1, 0.3, 400, 0, 0 };
    cr_assert_eq(engine_trade_check(c, &rq, &r, &e), PCF_ERR_INVALID);
    cr_assert(strstr(e.msg, "confidence"), "%s", e.msg);
    rq.confidence = 0;
    rq.last_sp = 49;
    cr_assert_eq(engine_trade_check(c, &rq, &r, &e), PCF_ERR_INVALID);
    cr_assert(strstr(e.msg, "SPs 25..49"), "%s", e.msg);
    rq.last_sp = 28;
    rq.zone = "NOPE";
    cr_assert_neq(engine_trade_check(c, &rq, &r, &e), PCF_OK);
    cr_assert_null(r);
    /* nothing was written */
    char v[32];
    testdb_scalar(c, "SELECT count(*) FROM run", v, sizeof v);
    cr_assert_str_eq(v, "0");
    PQfinish(c);
    testdb_drop(&db);
}

Test(trade, before_figures_are_the_runs, .timeout = 120)
{
    testdb db;
    s_trade_zone(&db, "trrun");
    PGconn *c = testdb_connect(&db);
    engine_opts o;
    memset(&o, 0, sizeof o);
    o.zone = "T";
    o.kind = ENGINE_DAY_AHEAD;
    o.year = 2026;
    o.month = 6;
    o.day = 1;
    o.samples = 400;
    engine_report rep;
    pcf_error e;
    cr_assert_eq(engine_run(c, &o, &rep, &e), PCF_OK, "%s", e.msg);
    trade_change ch[2] = { { "S1", -20 }, { "S3", 20 } };
    pcf_rc rc;
    trade_result *r = s_check(c, ch, 2, &e, &rc);
    cr_assert_eq(rc, PCF_OK, "%s", e.msg);
    cr_assert_eq(r->seed, rep.seed, "same seed derivation as the run");
    char q[512], v[64];
    for (size_t i = 0; i < r->ncheck; i++) {
        const trade_check_row *t = &r->check[i];
        snprintf(q, sizeof q, "SELECT p_anm_acts FROM constraint_statement WHERE constraint_id = '%s' AND sp = %d",
                 t->constraint_id, t->sp);
        testdb_scalar(c, q, v, sizeof v);
        cr_assert_float_eq(strtod(v, NULL), t->p_acts_before, 1e-12, "%s SP %d", t->constraint_id, t->sp);
        /* the run's block headroom at 0.95 is the intact margin, cut at 0 */
        snprintf(q, sizeof q, "SELECT headroom_mw FROM constraint_block WHERE constraint_id = '%s' AND sp = %d"
                              " AND confidence = 0.95", t->constraint_id, t->sp);
        testdb_scalar(c, q, v, sizeof v);
        double m = t->margin_intact_before_mw > 0 ? t->margin_intact_before_mw : 0;
        cr_assert_leq(t->margin_before_mw, t->margin_intact_before_mw, "the smaller of intact and post-fault");
        cr_assert_eq(t->nfault, 3, "GT1, L45 and branch 4 are the credible faults");
        if (strcmp(t->constraint_id, "C_GSP") != 0)   /* the boundary's headroom is against its trim */
            cr_assert_float_eq(strtod(v, NULL), m, 1e-9, "%s SP %d: %s vs %g", t->constraint_id, t->sp, v, m);
    }
    testdb_scalar(c, "SELECT count(*) FROM run", v, sizeof v);
    cr_assert_str_eq(v, "1", "a trade check writes nothing");
    trade_result_destroy(&r);
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- over ZeroMQ: pcf-publish's ROUTER, asked by pcf-sub trade -------------------------- */

Test(trade, over_zeromq_the_answer_is_the_librarys, .timeout = 180)
{
    testdb db;
    s_trade_zone(&db, "trzmq");
    PGconn *c = testdb_connect(&db);
    trade_change ch[2] = { { "S3", -5 }, { "S1", 5 } };
    pcf_error e;
    pcf_rc rc;
    trade_result *lib = s_check(c, ch, 2, &e, &rc);
    cr_assert_eq(rc, PCF_OK, "%s", e.msg);

    trade_srv s;
    trade_srv_start(&s, &db, 400);     /* samples as s_check, so the answers must agree */

    static char out[65536];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/pcf-sub --router %s --format csv trade --zone T --date 2026-06-01 --sp 25-28"
                              " --change S3:-5 --change S1:+5 --id t-42", testdb_bindir(), publish_router_endpoint(s.p));
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 0, "%s", out);
    cr_assert_eq(lib->pass, 0);
    /* unknown site: refused with a reason */
    static char bad[8192];
    snprintf(cmd, sizeof cmd, "%s/pcf-sub --router %s trade --zone T --date 2026-06-01 --sp 25-28"
                              " --change S3:-5 --change S9:+5", testdb_bindir(), publish_router_endpoint(s.p));
    cr_assert_neq(testdb_run(&db, cmd, bad, sizeof bad), 0);
    cr_assert(strstr(bad, "INVALID_ARGUMENT") && strstr(bad, "S9"), "%s", bad);
    trade_srv_stop(&s);
    cr_expect_eq(s.rc, PCF_OK);

    /* every library check appears, with the same figures (printed to 1e-6) */
    cr_assert(strstr(out, "kind,constraint_id,sp,sp_start,verdict,"), "%s", out);
    cr_assert(strstr(out, ",p_anm_acts_after,binding_fault_id\n"), "%s", out);
    for (size_t i = 0; i < lib->ncheck; i++) {
        const trade_check_row *t = &lib->check[i];
        char key[128];
        snprintf(key, sizeof key, "\ncheck,%s,%d,", t->constraint_id, t->sp);
        const char *l = strstr(out, key);
        cr_assert(l, "no %s in %s", key + 1, out);
        l += strlen(key);
        l = strchr(l, ',');   /* past sp_start */
        cr_assert(l);
        l++;
        cr_assert_eq(strncmp(l, t->pass ? "pass," : "fail,", 5), 0, "%s SP %d", t->constraint_id, t->sp);
        l += 5;
        double want[6] = { t->margin_before_mw, t->margin_after_mw, t->flow_change_mw, t->accepted_volume_mw,
                           t->p_acts_before, t->p_acts_after };
        for (int f = 0; f < 6; f++) {
            char *end;
            double v = strtod(l, &end);
            cr_assert(end != l && (*end == ',' || *end == '\n'), "field %d of %s", f, key + 1);
            cr_assert_float_eq(v, want[f], 2e-6, "%s SP %d field %d: %g vs %g", t->constraint_id, t->sp, f, v, want[f]);
            l = end + 1;
        }
        size_t nb = strlen(t->binding_fault_id);
        cr_assert(strncmp(l, t->binding_fault_id, nb) == 0 && l[nb] == '\n', "%s SP %d: binding fault %s: %.40s",
                  t->constraint_id, t->sp, t->binding_fault_id, l);
    }
    cr_assert(strstr(out, "volume,S3,-5.000000,-5.000000"), "%s", out);
    cr_assert(strstr(out, "volume,S1,5.000000,0.000000"), "%s", out);
    trade_result_destroy(&lib);
    PQfinish(c);
    testdb_drop(&db);
}
