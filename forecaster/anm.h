/*
 * anm.h -- emulation of an Active Network Management scheme for one
 * network state, exactly as NGED's curtailment estimator method does it
 * (NGED Curtailment Estimator Guidance, March 2026, section 5.2; DESIGN.md
 * section 5 item 4).
 *
 * Inputs are plain numbers so the emulation does not depend on the power
 * flow's API: per constraint the pre-curtailment flow (MW, with every site at
 * its available output), the limits that apply in this state (forward and
 * reverse: PEL or continuous rating intact, post-fault rating after a fault,
 * a boundary limit for a GSP), and a dense sensitivity row (MW of constraint
 * flow per MW injected at each site: PTDF-derived, post-fault if faulted);
 * per site its available output (already capped at export capacity: G100).
 * The fixed description (constraints' voltage level and DANM/TANM kind,
 * sites' tranches with capacity, firm flag, LIFO position and ANM
 * membership, which constraint may curtail which site) is given to anm_new.
 *
 * Algorithm (one anm_solve call; "5.2.x" are the NGED method's steps):
 *   1. flows f_c = pre-curtailment flows minus the effect of curtailment so
 *      far (5.2.2 cumulative contribution; 5.2.8 recompute).
 *   2. active exceedances (5.2.3): f_c > trim_c * fwd_c, or
 *      f_c < -trim_c * rev_c (reverse power), on constraints not already
 *      found unclearable.
 *   3. pick one (5.2.4): every DANM constraint before any TANM constraint
 *      (NGED 3.2: transmission constraints resolved last), then lowest
 *      voltage first, then largest proportional exceedance |f_c| / limit,
 *      then lowest constraint index (so the order is total).
 *   4. curtail for it (5.2.5-5.2.7): tranches eligible for this constraint,
 *      from the highest LIFO position (the most recent) down; each by the
 *      least that clears the remaining exceedance given its site's
 *      sensitivity: x = min(tranche output, e / s_eff), where s_eff is the
 *      sensitivity in the direction that helps (s for a forward, -s for a
 *      reverse exceedance).  A site with s_eff <= min_sens does not help
 *      and is never curtailed for that constraint.  If every eligible tranche
 *      is off and an exceedance e remains, the constraint is marked
 *      unclearable with residual e (NGED 5.2.1 baseline exceedances: the
 *      ANM cannot resolve them) and is not worked on again.
 *   5. repeat from 1 (5.2.8) until no exceedance remains or max_iter.
 *
 * Tranches: a site's output fills its tranches oldest first (firm tranches,
 * then increasing LIFO position), so its newest tranche carries the marginal
 * MW and is curtailed first (NGED 4.1: only the additional export capacity
 * of an extension is considered).  Firm tranches are never curtailed.  A
 * tranche's ANM membership (DANM, TANM or both) says which kinds of
 * constraint may curtail it.  A site with no tranche is firm.
 *
 * Trim and release: a constraint acts when its flow exceeds trim * limit.
 * NGED's method curtails the least that clears the exceedance, i.e. back to
 * trim * limit (options.use_release = 0, the default).  With use_release
 * set, the ANM curtails down to release * limit instead, the margin a real
 * scheme keeps to avoid hunting (sql/001_core.sql trim_pct/release_pct).
 *
 * Optional NGED filters (5.1.1 and 5.1.2), off by default:
 *   branch_filter: a constraint is monitored in this state only if some
 *     non-firm site has |sensitivity| >= branch_filter (NGED: 0.05).
 *   site_filter: a site is eligible for a constraint only if its helping
 *     sensitivity is >= site_filter (NGED: 0.02 "contribution").
 *
 * Concurrency and memory: anm_new allocates all scratch; anm_solve does not
 * allocate, is deterministic (a pure function of its inputs), and uses only
 * its own anm object: one anm per worker thread.  Results point into the
 * anm object and stay valid until the next anm_solve or anm_destroy.
 */
#ifndef PCF_ANM_H
#define PCF_ANM_H

#include <stddef.h>

#include "error.h"

/* Constraint kinds and tranche memberships (bit mask). */
enum { ANM_DANM = 1, ANM_TANM = 2 };

/* Sizes a scheme may have (hostile-input bounds). */
#define ANM_MAX_CONSTRAINTS 100000
#define ANM_MAX_SITES 100000
#define ANM_MAX_TRANCHES 400000

typedef struct anm_constraint_def {
    double voltage_kv;     /* > 0: ordering key (lowest first) */
    int kind;              /* ANM_DANM or ANM_TANM */
    double trim;           /* act above trim * limit; 0 means 1.0 */
    double release;        /* target with use_release; 0 means trim; <= trim */
} anm_constraint_def;

typedef struct anm_tranche_def {
    size_t site;           /* index into the sites */
    double capacity_mw;    /* > 0 */
    int firm;              /* never curtailed */
    int lifo_position;     /* >= 1, unique among non-firm tranches; 1 = oldest */
    int anm_mask;          /* ANM_DANM | ANM_TANM: who may curtail it (non-firm) */
} anm_tranche_def;

typedef struct anm_options {
    int use_release;       /* curtail to release * limit instead of trim * limit */
    double branch_filter;  /* NGED 5.1.1 (0.05); 0 = off */
    double site_filter;    /* NGED 5.1.2 (0.02); 0 = off (min_sens still applies) */
    double min_sens;       /* helping sensitivity at or below this never helps */
    double tol_mw;         /* exceedances at or below this are clear */
    int max_iter;          /* bound on step 5 */
} anm_options;

/* Defaults: NGED method without filters; min_sens 1e-6 (PTDF rounding noise
 * must not make a site "help" a constraint it is electrically remote from),
 * tol_mw 1e-9, max_iter 10000. */
void anm_options_default(anm_options *o);

typedef struct anm_def {
    size_t nc, ns, nt;                       /* constraints, sites, tranches */
    const anm_constraint_def *constraints;   /* [nc] */
    const anm_tranche_def *tranches;         /* [nt] */
    /* member[c * ns + s] != 0: constraint c may curtail site s (the scheme's
     * membership list, anm_constraint_site).  NULL: every site. */
    const unsigned char *member;
    const anm_options *options;              /* NULL: defaults */
} anm_def;

typedef struct anm_input {
    const double *flow;       /* [nc] pre-curtailment flow, MW, signed */
    const double *limit_fwd;  /* [nc] > 0 */
    const double *limit_rev;  /* [nc] > 0, or NULL: same as limit_fwd */
    const double *sens;       /* [nc * ns] row-major, MW per MW */
    const double *avail;      /* [ns] available output, MW, 0 <= avail <= capacity */
} anm_input;

typedef struct anm_result {
    const double *tranche_curt;  /* [nt] MW */
    const double *site_curt;     /* [ns] MW */
    const double *site_out;      /* [ns] delivered MW = avail - curt */
    const double *flow;          /* [nc] final flow, MW */
    const double *residual;      /* [nc] exceedance left, MW (0: clear) */
    const double *curt_by;       /* [nc * ns] MW of site s curtailed for c */
    const unsigned char *acted;  /* [nc] 1 if c caused any curtailment */
    const unsigned char *filtered; /* [nc] 1 if branch_filter dropped c */
    const size_t *order;         /* [n_steps] constraint worked on at each step */
    size_t n_steps;              /* iterations that curtailed or gave up */
    int converged;               /* 0: max_iter reached with exceedances left */
    double total_curt_mw;
} anm_result;

typedef struct anm anm;

/* Validates and copies def (PCF_ERR_INVALID/LIMIT naming the bad entry). */
pcf_rc anm_new(const anm_def *def, anm **out, pcf_error *err);
void anm_destroy(anm **a);

/* Runs the emulation.  PCF_ERR_INVALID for a non-finite flow/limit/avail,
 * a limit <= 0, an avail < 0 or above the site's tranche capacity, or a
 * non-finite sensitivity on a row that is worked on. */
pcf_rc anm_solve(anm *a, const anm_input *in, anm_result *res, pcf_error *err);

#endif
