/*
 * trade.h -- trade checks: would a proposed exchange of capacity between
 * sites create or worsen a constraint exceedance (DESIGN.md section 5 item 6,
 * docs/protocol.md section 7.3, docs/methodology.md "Trade checks")?
 *
 * engine_trade_check runs the study of a normal run for the request's zone
 * and day (engine_whatif_run: same forecasts, same seed derivation, so with
 * the same sample count the "before" figures are the latest run's), once
 * as-is and once with the trade applied, and judges every constraint the
 * trade touches in every SP of the range in every network state: intact,
 * and each credible fault in force (a deterministic N-1 security check, as
 * a DNO's connection study makes it, whatever the fault's probability):
 *
 *   margin of a state = limit - q_c(loading before ANM in that state), MW,
 *             where q_c is the quantile at the request's confidence over
 *             the forecast uncertainty and the limit is the intact limit
 *             (PEL or rating) intact, the post-fault rating after a fault;
 *   margin  = the smallest over the states (before, and after, the trade);
 *             the binding state is the one behind margin_after;
 *   verdict = FAIL when in some state margin_after < 0 and margin_after <
 *             margin_before (the trade creates or worsens an exceedance
 *             there); a trade that relieves an exceeded state passes;
 *   flow change = sum over changes of sensitivity x delta_mw (MW), with the
 *             binding state's sensitivities (PTDF, + LODF after a fault);
 *   accepted volume = the part of the buyers' increase the constraint takes:
 *             all of it when the check passes, else the smallest over the
 *             failing states of the share that brings that state's margin
 *             back to 0 on its linear sensitivity model, scaled by the
 *             margin the trade moved per MW of flow it moved (methodology
 *             T.2: output is the forecast's share of capacity).
 * The trade passes only if every check passes.  Nothing is written to
 * PostgreSQL: a trade check is a question, not a forecast.
 */
#ifndef PCF_TRADE_H
#define PCF_TRADE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "error.h"
#include "zone.h"

#define TRADE_DEFAULT_CONFIDENCE 0.95
#define TRADE_DEFAULT_SAMPLES 2000        /* the publisher answers inline: keep it quick */
#define TRADE_MIN_CONFIDENCE 0.5          /* margins come from the block levels 0.5..0.99 */
#define TRADE_MAX_CONFIDENCE 0.99
#define TRADE_MAX_CHANGES ENGINE_WHATIF_MAX_CHANGES

typedef enum trade_kind {               /* as pcf.proto TradeKind */
    TRADE_MIC = 1,
    TRADE_MEC = 2,
    TRADE_CURTAILMENT_SWAP = 3,
    TRADE_BID_OFFER_ACCEPTANCE = 4
} trade_kind;

typedef struct trade_change {
    const char *site_id;
    double delta_mw;                    /* + buyer, - seller; finite, non-zero */
} trade_change;

typedef struct trade_request {
    const char *zone;
    trade_kind kind;
    int year, month, day;               /* local date; year 0 = the next rt_periods SPs (real time) */
    int first_sp, last_sp;              /* SP numbers of that day; 0, 0 = the whole day */
    int rt_periods;                     /* real time: SPs ahead, 0 = engine default */
    const trade_change *changes;
    size_t nchange;                     /* 1..TRADE_MAX_CHANGES */
    double confidence;                  /* 0 = TRADE_DEFAULT_CONFIDENCE; else 0.5..0.99 */
    size_t samples;                     /* 0 = TRADE_DEFAULT_SAMPLES */
    uint64_t seed;                      /* 0 = derived as for a run */
    int ac;                             /* engine_opts.ac: 0 = screened AC, as a run; tests
                                         * worked by hand in DC set STUDY_AC_OFF */
} trade_request;

typedef struct trade_check_row {
    char constraint_id[ZONE_ID_MAX + 1];
    int sp;                             /* within the local day */
    int64_t sp_start;                   /* UTC s */
    int pass;
    double limit_mw;                    /* the binding state's: intact or post-fault */
    double margin_before_mw, margin_after_mw;   /* smallest over the states */
    double flow_change_mw;              /* in the binding state */
    double accepted_volume_mw;
    double p_acts_before, p_acts_after;
    char binding_fault_id[ZONE_NAME_MAX + 1];  /* fault behind margin_after_mw; "" = intact */
    double margin_intact_before_mw, margin_intact_after_mw;  /* the intact state's alone */
    size_t nfault;                      /* credible faults judged (those that can happen in the SP) */
} trade_check_row;

typedef struct trade_result {
    int pass;
    size_t ncheck;
    trade_check_row *check;             /* constraint-major, then SP */
    size_t nchange;
    char (*site_id)[ZONE_ID_MAX + 1];   /* [nchange] */
    double *requested_mw, *adjusted_mw; /* [nchange] */
    double requested_volume_mw, accepted_volume_mw;
    double confidence;
    size_t samples;
    uint64_t seed;
    double seconds;
    char reason[256];                   /* one line: the worst check */
} trade_result;

/* PCF_ERR_INVALID (with the reason) for an empty trade, an unknown zone or
 * site, a bad date, range or confidence; PCF_ERR_DB when PostgreSQL fails. */
pcf_rc engine_trade_check(PGconn *conn, const trade_request *rq, trade_result **out, pcf_error *err);
void trade_result_destroy(trade_result **r);

/* The judgement alone: what engine_trade_check makes of a what-if study's
 * figures (engine.h), every rule above, no I/O.  rq supplies the changes
 * (the study's, in its order: site ids, delta_mw) and the confidence;
 * samples, seed and seconds are left 0.  PCF_ERR_INVALID when the changes
 * are not the study's or the confidence is out of range. */
pcf_rc trade_judge(const engine_whatif_result *wr, const trade_request *rq, trade_result **out, pcf_error *err);

#endif
