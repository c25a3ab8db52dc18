/*
 * mcstat.h -- Monte-Carlo statistics of one settlement period: per site
 * (or any other item) P(curtailed), expected curtailed energy, P10/P50/P90
 * of deliverable MW and the firm-equivalent MW deliverable with 95 %
 * confidence, each with its Monte-Carlo standard error (DESIGN.md section 5
 * item 5; sql/003_results.sql pcf_result).
 *
 * Storage: one slot per (item, sample) holding the sample's deliverable and
 * curtailed MW.  Sums and order statistics are computed at the end in
 * sample-index order, so the result depends only on what each sample
 * recorded, never on which thread recorded it or when: bit-identical for any
 * thread count.  Memory is 17 bytes per item per sample (10,000 samples x 30
 * sites = 5.1 MB); reuse one object per SP with mcstat_reset.
 *
 * Threads: mcstat_record on distinct (item, sample) slots of one object may
 * run concurrently (they touch disjoint memory).  Or each thread fills its
 * own object and mcstat_merge copies them into one: a slot recorded twice is
 * an error, so the merge order cannot change anything.  mcstat_summarise
 * uses the object's sort buffer: call it from one thread at a time, or give
 * each thread its own buffer with mcstat_summarise_r.
 *
 * Estimators (n samples; docs/methodology.md has the derivations):
 *   P(curtailed)  p = k / n, k = samples with curtailed > MCSTAT_CURTAILED_MW;
 *                 SE = sqrt(p (1 - p) / n); hi95 = Wilson score upper bound
 *                 (useful when k = 0, where the SE says nothing).
 *   E[curtailed MWh] = mean(curtailed MW) * hours; SE = s / sqrt(n) * hours.
 *   quantile q_p  = x_(m), m = ceil(n p) (inverse of the empirical CDF).
 *   SE(q_p)       distribution-free order-statistic interval: ranks
 *                 l, u = n p -/+ z sqrt(n p (1 - p)) (z = 1.959964, floor /
 *                 ceil, clamped to 1..n) bracket q_p with ~95 % probability
 *                 by the binomial distribution of the count below q_p, so
 *                 SE = (x_(u) - x_(l)) / (2 z).
 *   firm95        q_0.05 of deliverable MW with the same SE.
 */
#ifndef PCF_MCSTAT_H
#define PCF_MCSTAT_H

#include <stddef.h>

#include "error.h"

#define MCSTAT_CURTAILED_MW 1e-6     /* curtailment above this counts */
#define MCSTAT_MIN_SAMPLES 20        /* P5 needs a few samples below it */
#define MCSTAT_MAX_SAMPLES 10000000
#define MCSTAT_MAX_SLOTS 400000000   /* items x samples */
#define MCSTAT_Z95 1.959963984540054

typedef struct mcstat mcstat;

typedef struct mcstat_pcf {
    size_t n;
    double p_curtailed, p_curtailed_se, p_curtailed_hi95;
    double curtailed_mwh, curtailed_mwh_se;      /* expected, over the SP */
    double deliverable_mean_mw, deliverable_mean_se;
    double p10_mw, p50_mw, p90_mw;               /* deliverable quantiles */
    double p10_se, p50_se, p90_se;
    double firm95_mw, firm95_se;                 /* deliverable P5 */
} mcstat_pcf;

pcf_rc mcstat_new(size_t n_items, size_t n_samples, mcstat **out, pcf_error *err);
void mcstat_destroy(mcstat **m);
/* Forgets every recorded sample (for the next SP). */
void mcstat_reset(mcstat *m);
size_t mcstat_items(const mcstat *m);
size_t mcstat_samples(const mcstat *m);

/* Records one sample of one item: deliverable >= 0 and curtailed >= 0 MW,
 * finite.  PCF_ERR_INVALID for bad values, indices, or a second record of
 * the same slot. */
pcf_rc mcstat_record(mcstat *m, size_t item, size_t sample, double deliverable_mw,
                     double curtailed_mw, pcf_error *err);

/* Records every item of one sample: deliverable[n_items], curtailed[n_items]
 * (e.g. anm_result.site_out and site_curt).  Validates all before storing
 * any, so a failed call records nothing. */
pcf_rc mcstat_record_sample(mcstat *m, size_t sample, const double *deliverable_mw,
                            const double *curtailed_mw, pcf_error *err);

/* Copies src's recorded slots into dst (same shape); PCF_ERR_INVALID if a
 * slot is recorded in both. */
pcf_rc mcstat_merge(mcstat *dst, const mcstat *src, pcf_error *err);

/* Statistics of one item; every sample must be recorded.  hours: SP length
 * (0.5). */
pcf_rc mcstat_summarise(mcstat *m, size_t item, double hours, mcstat_pcf *out,
                        pcf_error *err);
/* The same with the caller's scratch [2 * n_samples]: threads may summarise
 * different (or the same) items of one object concurrently. */
pcf_rc mcstat_summarise_r(const mcstat *m, size_t item, double hours, double *scratch,
                          mcstat_pcf *out, pcf_error *err);

/* Quantile q_p of sorted[n] (ascending, n >= 1, 0 < p < 1) as above, and its
 * SE (may be NULL).  For any sampled quantity (e.g. constraint flows). */
double mcstat_quantile(const double *sorted, size_t n, double p, double *se);

/* The 0-based index of q_p in a sorted array of n (n >= 1): the one rank
 * rule, shared by callers that select instead of sorting. */
size_t mcstat_quantile_index(size_t n, double p);

/* The k-th smallest (0-based, k < n) of v[0..n), reordering v (finite values). */
double mcstat_select(double *v, size_t n, size_t k);

/* Order statistics by rank: val[i] = the rank[i]-th smallest (0-based) of
 * v[0..n), for nr ranks in any order (repeats allowed; a rank >= n means
 * the largest), without sorting v (which is not changed).  Exact: the same
 * values a sort would give, NaN last.  n = 0: every val[i] is NaN.
 * scratch: [n].  Cost: three passes over v per MCSTAT_MAX_RANKS ranks and
 * selections among the few values near each rank. */
#define MCSTAT_MAX_RANKS 64
void mcstat_ranks(const double *v, size_t n, const size_t *rank, size_t nr, double *val, double *scratch);

/* The 0-based indices l <= u of the order statistics that bracket q_p with
 * ~95 % probability (see SE(q_p) above), so a caller that selects instead
 * of sorting gets the same SE: (v[u] - v[l]) / (2 MCSTAT_Z95). */
void mcstat_quantile_se_index(size_t n, double p, size_t *lo, size_t *hi);

#endif
