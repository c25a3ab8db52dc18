/*
 * test_trade_judge.c -- the rules of a trade check (trade_judge, trade.h)
 * on hand-made what-if figures, no database: one constraint, one SP, the
 * intact network and two credible faults A and B, margins chosen so each
 * rule decides the answer.  Loading quantiles are set equal at every block
 * level unless a test interpolates between them.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "study.h"
#include "trade.h"

enum { NF = 2, NCH = 2, L = STUDY_NLEVELS };

typedef struct fixture {
    engine_whatif_result wr;
    char cid[1][72];
    char fid[NF][ZONE_NAME_MAX + 1];
    unsigned char member[NCH];
    int sp[1];
    int64_t sp_start[1];
    double limit[1], limf[1], qb[L], qa[L], pb[1], pa[1], sens[NCH], dir[1];
    double qfb[NF * L], qfa[NF * L], dirf[NF], sensf[NF * NCH];
} fixture;

/* fault f's sensitivity to change i */
#define SF(x, f, i) (x).sensf[(f) * (x).wr.nchange + (i)]

static void s_levels(double *q, double v)
{
    for (int l = 0; l < L; l++) q[l] = v;
}

/* Intact: limit 100, loading 60 before and after, sensitivity 0 to every
 * change; faults: limit 120, loading 60, sensitivity 0; p(acts) 0.1. */
static void s_fixture(fixture *x, size_t nchange)
{
    memset(x, 0, sizeof *x);
    snprintf(x->cid[0], sizeof x->cid[0], "C1");
    snprintf(x->fid[0], sizeof x->fid[0], "A");
    snprintf(x->fid[1], sizeof x->fid[1], "B");
    x->sp[0] = 30;
    x->sp_start[0] = 1764000000;
    x->limit[0] = 100;
    x->limf[0] = 120;
    s_levels(x->qb, 60);
    s_levels(x->qa, 60);
    s_levels(x->qfb, 60);
    s_levels(x->qfb + L, 60);
    s_levels(x->qfa, 60);
    s_levels(x->qfa + L, 60);
    x->pb[0] = x->pa[0] = 0.1;
    x->dir[0] = x->dirf[0] = x->dirf[1] = 1;
    engine_whatif_result *w = &x->wr;
    w->nc = 1;
    w->nsp = 1;
    w->nchange = nchange;
    w->constraint_id = x->cid;
    w->member = x->member;
    w->sp = x->sp;
    w->sp_start = x->sp_start;
    w->limit = x->limit;
    w->q_before = x->qb;
    w->q_after = x->qa;
    w->p_before = x->pb;
    w->p_after = x->pa;
    w->sens = x->sens;
    w->dir = x->dir;
    w->nf = NF;
    w->fault_id = x->fid;
    w->limit_fault = x->limf;
    w->qf_before = x->qfb;
    w->qf_after = x->qfa;
    w->dir_fault = x->dirf;
    w->sens_fault = x->sensf;
}

static trade_result *s_judge(const fixture *x, const trade_change *ch, size_t n, double conf)
{
    trade_request rq = { "Z", TRADE_MEC, 2026, 6, 1, 30, 30, 0, ch, n, conf, 0, 0, 0 };
    trade_result *r = NULL;
    pcf_error e;
    cr_assert_eq(trade_judge(&x->wr, &rq, &r, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(r->ncheck, 1);
    return r;
}

/* Fault A's exceedance eases (-5 -> -4) while fault B's, smaller, grows
 * (-1 -> -2): the smallest margin improves, but the trade worsens an
 * exceedance, so it fails.  The binding fault is the one behind the
 * smallest margin after (A). */
Test(trade_judge, a_worsened_fault_fails_even_when_the_worst_eases)
{
    fixture x;
    s_fixture(&x, 1);
    SF(x, 0, 0) = -1;
    SF(x, 1, 0) = 0.5;
    s_levels(x.qfb, 125);
    s_levels(x.qfa, 124);
    s_levels(x.qfb + L, 121);
    s_levels(x.qfa + L, 122);
    trade_change ch[1] = { { "S", 2 } };
    trade_result *r = s_judge(&x, ch, 1, 0);
    const trade_check_row *t = &r->check[0];
    cr_assert_eq(r->pass, 0, "%s", r->reason);
    cr_assert_eq(t->pass, 0);
    cr_assert_float_eq(t->margin_before_mw, -5, 1e-12);
    cr_assert_float_eq(t->margin_after_mw, -4, 1e-12);
    cr_assert_str_eq(t->binding_fault_id, "A");
    cr_assert_float_eq(t->flow_change_mw, -2, 1e-12, "A's sensitivity");
    cr_assert_float_eq(t->limit_mw, 120, 1e-12);
    cr_assert_float_eq(t->margin_intact_before_mw, 40, 1e-12);
    cr_assert_eq(t->nfault, 2);
    trade_result_destroy(&r);

    /* B only relieved too: passes */
    s_levels(x.qfa + L, 120.5);
    r = s_judge(&x, ch, 1, 0);
    cr_assert_eq(r->pass, 1, "%s", r->reason);
    trade_result_destroy(&r);
}

/* A fault whose branch is out in the SP has NaN figures: not judged. */
Test(trade_judge, a_fault_that_cannot_happen_is_not_judged)
{
    fixture x;
    s_fixture(&x, 1);
    x.sens[0] = 1;
    s_levels(x.qfb, NAN);
    s_levels(x.qfa, NAN);
    s_levels(x.qfb + L, 130);     /* B: exceeded by 10, made worse */
    s_levels(x.qfa + L, 131);
    trade_change ch[1] = { { "S", 1 } };
    trade_result *r = s_judge(&x, ch, 1, 0);
    const trade_check_row *t = &r->check[0];
    cr_assert_eq(t->nfault, 1);
    cr_assert_str_eq(t->binding_fault_id, "B");
    cr_assert_float_eq(t->margin_after_mw, -11, 1e-12);
    cr_assert_eq(t->pass, 0);
    cr_assert(strstr(r->reason, "FAIL") && strstr(r->reason, "after a fault of B"), "%s", r->reason);
    trade_result_destroy(&r);
}

/* Equal margins: intact binds first, then faults in their order. */
Test(trade_judge, ties_go_to_intact_then_the_first_fault)
{
    fixture x;
    s_fixture(&x, 1);
    x.sens[0] = 1;
    s_levels(x.qfb, 80);          /* A: margin 40, as intact */
    s_levels(x.qfa, 80);
    trade_change ch[1] = { { "S", 1 } };
    trade_result *r = s_judge(&x, ch, 1, 0);
    cr_assert_str_eq(r->check[0].binding_fault_id, "");
    cr_assert_float_eq(r->check[0].margin_after_mw, 40, 1e-12);
    cr_assert(strstr(r->reason, "intact"), "%s", r->reason);
    trade_result_destroy(&r);
    x.limit[0] = 200;             /* intact out of the way: A and B tie at 40 */
    s_levels(x.qfb + L, 80);
    s_levels(x.qfa + L, 80);
    r = s_judge(&x, ch, 1, 0);
    cr_assert_str_eq(r->check[0].binding_fault_id, "A");
    trade_result_destroy(&r);
}

/* No site of the constraint traded, and no flow moved in any state: no
 * check.  A flow moved only after a fault makes one. */
Test(trade_judge, a_constraint_is_checked_when_a_fault_moves_its_flow)
{
    fixture x;
    s_fixture(&x, 1);
    trade_change ch[1] = { { "S", 3 } };
    trade_request rq = { "Z", TRADE_MEC, 2026, 6, 1, 30, 30, 0, ch, 1, 0, 0, 0, 0 };
    trade_result *r = NULL;
    pcf_error e;
    cr_assert_eq(trade_judge(&x.wr, &rq, &r, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(r->ncheck, 0);
    cr_assert(r->pass);
    cr_assert_str_eq(r->reason, "PASS: the trade changes no constraint's flow");
    trade_result_destroy(&r);
    SF(x, 1, 0) = 0.2;            /* B re-routes the site onto the constraint */
    r = s_judge(&x, ch, 1, 0);
    cr_assert_float_eq(r->check[0].flow_change_mw, 0, 1e-12, "the binding state is intact (margin 40 < 60)");
    trade_result_destroy(&r);
}

/* Two failing faults: the check accepts the smaller share, scaled by the
 * margin moved per MW of flow (kappa = 0.9 here: outputs at 90 % of
 * capacity).  A: sensitivity 1, margin 5 -> -4, share 1 - 4/9; B:
 * sensitivity 0.5, margin 2 -> -2.5, share 1 - 2.5/4.5.  The seller's
 * decrease (sensitivity 0) stands. */
Test(trade_judge, accepted_volume_is_the_smallest_over_the_failing_states)
{
    fixture x;
    s_fixture(&x, 2);
    x.limf[0] = 50;
    SF(x, 0, 0) = 1;              /* A, buyer */
    SF(x, 1, 0) = 0.5;            /* B, buyer */
    s_levels(x.qfb, 45);
    s_levels(x.qfa, 54);
    s_levels(x.qfb + L, 48);
    s_levels(x.qfa + L, 52.5);
    trade_change ch[2] = { { "BUY", 10 }, { "SELL", -10 } };
    trade_result *r = s_judge(&x, ch, 2, 0);
    const trade_check_row *t = &r->check[0];
    cr_assert_eq(t->pass, 0);
    cr_assert_str_eq(t->binding_fault_id, "A", "the smallest margin after");
    cr_assert_float_eq(t->flow_change_mw, 10, 1e-12);
    cr_assert_float_eq(t->accepted_volume_mw, 10 * (1 - 2.5 / 4.5), 1e-9, "B's share, not A's %g",
                       10 * (1 - 4.0 / 9.0));
    cr_assert_float_eq(r->requested_volume_mw, 10, 1e-12);
    cr_assert_float_eq(r->adjusted_mw[0], t->accepted_volume_mw, 1e-12);
    cr_assert_float_eq(r->adjusted_mw[1], -10, 1e-12);
    trade_result_destroy(&r);
}

/* Between two block levels the margin is interpolated: 0.92 is 40 % of the
 * way from 0.9 to 0.95. */
Test(trade_judge, confidence_between_levels_interpolates_every_state)
{
    fixture x;
    s_fixture(&x, 1);
    SF(x, 0, 0) = 1;
    double qf[L] = { 100, 110, 115, 125, 140 };
    memcpy(x.qfb, qf, sizeof qf);
    memcpy(x.qfa, qf, sizeof qf);
    trade_change ch[1] = { { "S", 1 } };
    trade_result *r = s_judge(&x, ch, 1, 0.92);
    cr_assert_float_eq(r->check[0].margin_after_mw, 120 - (115 + 0.4 * 10), 1e-9);
    cr_assert_str_eq(r->check[0].binding_fault_id, "A");
    trade_result_destroy(&r);
}

Test(trade_judge, figures_of_another_trade_are_refused)
{
    fixture x;
    s_fixture(&x, 2);
    trade_change ch[1] = { { "S", 1 } };
    trade_request rq = { "Z", TRADE_MEC, 2026, 6, 1, 30, 30, 0, ch, 1, 0, 0, 0, 0 };
    trade_result *r = NULL;
    pcf_error e;
    cr_assert_eq(trade_judge(&x.wr, &rq, &r, &e), PCF_ERR_INVALID);
    cr_assert_null(r);
    s_fixture(&x, 1);
    rq.confidence = 0.995;
    cr_assert_eq(trade_judge(&x.wr, &rq, &r, &e), PCF_ERR_INVALID);
    cr_assert(strstr(e.msg, "confidence"), "%s", e.msg);
}
