/*
 * trade.c -- trade checks; see trade.h for what is computed.
 *
 * The Monte-Carlo work is engine_whatif_run's (engine.c): this file turns
 * its before/after figures, intact and under each credible fault, into
 * verdicts (s_judge one state, s_check_one a constraint and SP in all).  Margins at a confidence between
 * two of the study's block levels (0.5 0.8 0.9 0.95 0.99) are interpolated
 * linearly between the quantiles at those levels; at a block level (0.95 by
 * default) they are the exact sample quantile.  Levels outside 0.5..0.99 are
 * refused rather than extrapolated.
 */
#include "trade.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "study.h"

void trade_result_destroy(trade_result **rp)
{
    if (!rp || !*rp) return;
    trade_result *r = *rp;
    free(r->check);
    free(r->site_id);
    free(r->requested_mw);
    free(r->adjusted_mw);
    free(r);
    *rp = NULL;
}

/* The loading quantile at level p from the block-level quantiles q[]. */
static double s_quantile_at(const double *q, double p)
{
    for (int l = 0; l < STUDY_NLEVELS; l++)
        if (fabs(study_levels[l] - p) < 1e-12) return q[l];
    for (int l = 0; l + 1 < STUDY_NLEVELS; l++)
        if (p > study_levels[l] && p < study_levels[l + 1]) {
            double w = (p - study_levels[l]) / (study_levels[l + 1] - study_levels[l]);
            return q[l] + w * (q[l + 1] - q[l]);
        }
    return q[STUDY_NLEVELS - 1];
}

/* One network state of a check (intact, or a credible fault in force). */
typedef struct s_state {
    double limit, before, after;        /* limit and margins, MW */
    double flow;                        /* flow change, MW */
    double accept;                      /* share of the buyers' increase it accepts, 0..1 */
    int pass;
} s_state;

/* Judges one state from its sensitivities to the changes, its limit, its
 * loading quantiles before and after and the direction d loading / d flow. */
static void s_judge(const double *sens, const double *delta, size_t n, double limit, const double *qb,
                    const double *qa, double dir, double conf, s_state *o)
{
    double flow = 0, fbuy = 0;
    for (size_t i = 0; i < n; i++) {
        double f = sens[i] * delta[i];
        flow += f;
        if (delta[i] > 0) fbuy += f;
    }
    o->limit = limit;
    o->flow = flow;
    o->before = limit - s_quantile_at(qb, conf);
    o->after = limit - s_quantile_at(qa, conf);
    /* the same random streams before and after: a difference below a
     * microwatt is rounding, not the trade */
    o->pass = !(o->after < 0 && o->after < o->before - 1e-6);
    o->accept = 1;
    if (!o->pass) {
        /* linear model: removing a share (1 - a) of the buyers' increase
         * lowers the loading by (1 - a) * dir * fbuy * kappa, where kappa
         * is the margin the trade moved per MW of capacity-weighted flow
         * it moved (a site's output is its forecast's share of capacity,
         * not all of it: in capacity alone the buyers would be let through
         * by that share too far) */
        double lf = dir * flow, kappa = 1;
        if (fabs(flow) >= 1e-6 && (o->before - o->after) / lf > 0) kappa = (o->before - o->after) / lf;
        double lb = dir * fbuy * kappa;
        double a = lb > 0 ? 1 + o->after / lb : 0;
        o->accept = a < 0 ? 0 : (a > 1 ? 1 : a);
    }
}

/* Judges constraint c in SP k (position in the range) in every state:
 * intact, then each credible fault that can happen.  Fills t, with the
 * accepted share (0..1) in accepted_volume_mw; 0 when the trade touches
 * neither the constraint's sites nor its flow in any state (no check). */
static int s_check_one(const engine_whatif_result *wr, size_t c, size_t k, const double *delta, double conf,
                       int member, trade_check_row *t)
{
    size_t n = wr->nchange, nf = wr->nf, L = STUDY_NLEVELS, o = c * wr->nsp + k;
    s_state in;
    s_judge(&wr->sens[o * n], delta, n, wr->limit[o], &wr->q_before[o * L], &wr->q_after[o * L], wr->dir[o], conf,
            &in);
    s_state bind = in;
    int touched = member || fabs(in.flow) >= 1e-6, pass = in.pass, bf = -1;
    double before = in.before, a = in.accept;
    size_t judged = 0;
    for (size_t f = 0; f < nf; f++) {
        size_t of = o * nf + f;
        /* NaN: its branch is out, so the fault cannot happen */
        if (isnan(s_quantile_at(&wr->qf_before[of * L], conf))) continue;
        s_state st;
        s_judge(&wr->sens_fault[of * n], delta, n, wr->limit_fault[o], &wr->qf_before[of * L], &wr->qf_after[of * L],
                wr->dir_fault[of], conf, &st);
        judged++;
        touched |= fabs(st.flow) >= 1e-6;
        if (st.before < before) before = st.before;
        if (st.after < bind.after) {    /* ties: intact, then the first fault */
            bind = st;
            bf = (int)f;
        }
        pass &= st.pass;
        if (st.accept < a) a = st.accept;
    }
    if (!touched) return 0;
    memset(t, 0, sizeof *t);
    snprintf(t->constraint_id, sizeof t->constraint_id, "%s", wr->constraint_id[c]);
    t->sp = wr->sp[k];
    t->sp_start = wr->sp_start[k];
    t->limit_mw = bind.limit;
    t->margin_before_mw = before;
    t->margin_after_mw = bind.after;
    t->margin_intact_before_mw = in.before;
    t->margin_intact_after_mw = in.after;
    t->flow_change_mw = bind.flow;
    if (bf >= 0) snprintf(t->binding_fault_id, sizeof t->binding_fault_id, "%s", wr->fault_id[bf]);
    t->nfault = judged;
    t->p_acts_before = wr->p_before[o];
    t->p_acts_after = wr->p_after[o];
    t->pass = pass;
    t->accepted_volume_mw = pass ? 1 : a;
    return 1;
}

/* The request's confidence, or PCF_ERR_INVALID: 0 is the default. */
static pcf_rc s_confidence(const trade_request *rq, double *conf, pcf_error *err)
{
    *conf = rq->confidence == 0 ? TRADE_DEFAULT_CONFIDENCE : rq->confidence;
    if (!(*conf >= TRADE_MIN_CONFIDENCE && *conf <= TRADE_MAX_CONFIDENCE))
        return pcf_error_set(err, PCF_ERR_INVALID, "trade: confidence %g outside %g..%g", *conf, TRADE_MIN_CONFIDENCE,
                             TRADE_MAX_CONFIDENCE);
    return PCF_OK;
}

pcf_rc engine_trade_check(PGconn *conn, const trade_request *rq, trade_result **out, pcf_error *err)
{
    *out = NULL;
    if (!rq || !rq->zone || !rq->zone[0]) return pcf_error_set(err, PCF_ERR_INVALID, "trade: a zone is required");
    if (rq->kind < TRADE_MIC || rq->kind > TRADE_BID_OFFER_ACCEPTANCE)
        return pcf_error_set(err, PCF_ERR_INVALID, "trade: kind %d is not MIC, MEC, CURTAILMENT_SWAP or BID_OFFER_ACCEPTANCE",
                             (int)rq->kind);
    if (rq->nchange == 0 || !rq->changes) return pcf_error_set(err, PCF_ERR_INVALID, "trade: no capacity change");
    if (rq->nchange > TRADE_MAX_CHANGES)
        return pcf_error_set(err, PCF_ERR_INVALID, "trade: %zu changes, at most %d", rq->nchange, TRADE_MAX_CHANGES);
    double conf;
    pcf_rc rc = s_confidence(rq, &conf, err);
    if (rc != PCF_OK) return rc;
    const char *ids[TRADE_MAX_CHANGES];
    double delta[TRADE_MAX_CHANGES];
    for (size_t i = 0; i < rq->nchange; i++) {
        ids[i] = rq->changes[i].site_id;
        delta[i] = rq->changes[i].delta_mw;
    }
    engine_opts o;
    memset(&o, 0, sizeof o);
    o.zone = rq->zone;
    o.kind = rq->year ? ENGINE_DAY_AHEAD : ENGINE_REAL_TIME;
    o.year = rq->year;
    o.month = rq->month;
    o.day = rq->day;
    o.rt_periods = rq->rt_periods;
    o.samples = rq->samples ? rq->samples : TRADE_DEFAULT_SAMPLES;
    o.seed = rq->seed;
    o.ac = rq->ac;
    o.threads = 1;   /* results do not depend on it; the publisher shares the machine */
    engine_whatif w = { rq->nchange, ids, delta, rq->first_sp, rq->last_sp, conf };
    engine_whatif_result *wr = NULL;
    if ((rc = engine_whatif_run(conn, &o, &w, &wr, err)) != PCF_OK) return rc;
    rc = trade_judge(wr, rq, out, err);
    if (rc == PCF_OK) {
        (*out)->seconds = wr->t_total;
        (*out)->samples = wr->samples;
        (*out)->seed = wr->seed;
    }
    engine_whatif_result_destroy(&wr);
    return rc;
}

pcf_rc trade_judge(const engine_whatif_result *wr, const trade_request *rq, trade_result **out, pcf_error *err)
{
    *out = NULL;
    if (!wr || !rq || !rq->changes || rq->nchange != wr->nchange || rq->nchange == 0 || rq->nchange > TRADE_MAX_CHANGES)
        return pcf_error_set(err, PCF_ERR_INVALID, "trade: the changes are not the study's");
    double conf;
    pcf_rc rc = s_confidence(rq, &conf, err);
    if (rc != PCF_OK) return rc;
    double delta[TRADE_MAX_CHANGES];
    for (size_t i = 0; i < rq->nchange; i++) delta[i] = rq->changes[i].delta_mw;
    trade_result *r = calloc(1, sizeof *r);
    size_t n = rq->nchange, nc = wr->nc, nsp = wr->nsp;
    if (r) {
        r->check = calloc(nc * nsp + 1, sizeof *r->check);
        r->site_id = calloc(n, sizeof *r->site_id);
        r->requested_mw = calloc(n, sizeof(double));
        r->adjusted_mw = calloc(n, sizeof(double));
    }
    if (!r || !r->check || !r->site_id || !r->requested_mw || !r->adjusted_mw) {
        trade_result_destroy(&r);
        return pcf_error_set(err, PCF_ERR_NOMEM, "trade: out of memory");
    }
    double buy = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(r->site_id[i], sizeof r->site_id[i], "%s", rq->changes[i].site_id ? rq->changes[i].site_id : "");
        r->requested_mw[i] = delta[i];
        if (delta[i] > 0) buy += delta[i];
    }
    r->requested_volume_mw = buy;
    r->nchange = n;
    r->confidence = conf;
    r->pass = 1;
    double accept = buy;       /* the minimum over checks */
    const trade_check_row *worst = NULL;
    for (size_t c = 0; c < nc; c++) {
        /* a constraint is touched when one of its own sites is traded or
         * the trade moves its flow in some state */
        int member = 0;
        for (size_t i = 0; i < n; i++) member |= wr->member[c * n + i];
        for (size_t k = 0; k < nsp; k++) {
            trade_check_row *t = &r->check[r->ncheck];
            if (!s_check_one(wr, c, k, delta, conf, member, t)) continue;
            r->ncheck++;
            t->accepted_volume_mw *= buy;
            if (!t->pass) r->pass = 0;
            if (t->accepted_volume_mw < accept) accept = t->accepted_volume_mw;
            if (!worst || t->margin_after_mw - (t->pass ? 0 : 1e12) < worst->margin_after_mw - (worst->pass ? 0 : 1e12))
                worst = t;
        }
    }
    r->accepted_volume_mw = accept;
    for (size_t i = 0; i < n; i++) r->adjusted_mw[i] = delta[i] > 0 && buy > 0 ? delta[i] * accept / buy : delta[i];
    if (!worst)
        snprintf(r->reason, sizeof r->reason, "PASS: the trade changes no constraint's flow");
    else
        snprintf(r->reason, sizeof r->reason,
                 "%s: worst %s SP %d margin %.3f MW at %.2f %s%.64s (before %.3f MW), flow %+.3f MW",
                 r->pass ? "PASS" : "FAIL", worst->constraint_id, worst->sp, worst->margin_after_mw, conf,
                 worst->binding_fault_id[0] ? "after a fault of " : "intact", worst->binding_fault_id,
                 worst->margin_before_mw, worst->flow_change_mw);
    *out = r;
    return PCF_OK;
}
