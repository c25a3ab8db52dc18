/*
 * mcstat.c -- per-slot Monte-Carlo accumulators and their statistics; see
 * mcstat.h for the estimators and the threading rules.
 *
 * Slots are item-major (item * n + sample) so one item's samples are
 * contiguous for the final sums and the sort.  Values are stored as x + 0.0,
 * which turns -0.0 into +0.0: equal values are then equal bit for bit, so
 * the sorted array (and every quantile) is unique.
 *
 * Order statistics without sorting (mcstat_ranks): a summary needs a dozen
 * order statistics of 10,000 values, not the whole order.  One pass finds
 * the range, one counts the values in each of MCSTAT_BUCKETS equal-width
 * buckets (the bucket of x is monotone in x, so bucket counts give each
 * value's rank to within its bucket), one gathers the values of the few
 * buckets holding a wanted rank, and a selection among those gives the
 * exact value.  That replaced an LSD radix sort (itself ~10x faster than
 * qsort) and the multi-rank quickselect of the constraint summaries; a sort
 * is kept only where values are not finite.
 */
#include "mcstat.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mcstat {
    size_t ni, n;
    double *deliv;          /* [ni * n] */
    double *curt;           /* [ni * n] */
    unsigned char *rec;     /* [ni * n] 1 = recorded */
    double *scratch;        /* [2n] mcstat_summarise's sort buffers */
};

pcf_rc mcstat_new(size_t n_items, size_t n_samples, mcstat **out, pcf_error *err)
{
    *out = NULL;
    if (n_items == 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: no items");
    if (n_samples < MCSTAT_MIN_SAMPLES || n_samples > MCSTAT_MAX_SAMPLES)
        return pcf_error_set(err, PCF_ERR_LIMIT, "mcstat: %zu samples not in %d..%d", n_samples,
                             MCSTAT_MIN_SAMPLES, MCSTAT_MAX_SAMPLES);
    if (n_items > MCSTAT_MAX_SLOTS / n_samples)
        return pcf_error_set(err, PCF_ERR_LIMIT, "mcstat: %zu items x %zu samples exceed %d "
                             "slots", n_items, n_samples, MCSTAT_MAX_SLOTS);
    mcstat *m = calloc(1, sizeof *m);
    size_t slots = n_items * n_samples;
    if (m) {
        m->ni = n_items;
        m->n = n_samples;
        m->deliv = malloc(slots * sizeof(double));
        m->curt = malloc(slots * sizeof(double));
        m->rec = calloc(slots, 1);
        m->scratch = malloc(2 * n_samples * sizeof(double));
    }
    if (!m || !m->deliv || !m->curt || !m->rec || !m->scratch) {
        mcstat_destroy(&m);
        return pcf_error_set(err, PCF_ERR_NOMEM, "mcstat: out of memory (%zu slots)", slots);
    }
    *out = m;
    return PCF_OK;
}

void mcstat_destroy(mcstat **m)
{
    if (!m || !*m)
        return;
    free((*m)->deliv);
    free((*m)->curt);
    free((*m)->rec);
    free((*m)->scratch);
    free(*m);
    *m = NULL;
}

void mcstat_reset(mcstat *m)
{
    memset(m->rec, 0, m->ni * m->n);
}

size_t mcstat_items(const mcstat *m)
{
    return m->ni;
}

size_t mcstat_samples(const mcstat *m)
{
    return m->n;
}

pcf_rc mcstat_record(mcstat *m, size_t item, size_t sample, double deliverable_mw,
                     double curtailed_mw, pcf_error *err)
{
    if (item >= m->ni || sample >= m->n)
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: slot (%zu,%zu) outside %zu x %zu",
                             item, sample, m->ni, m->n);
    if (!(isfinite(deliverable_mw) && deliverable_mw >= 0) ||
        !(isfinite(curtailed_mw) && curtailed_mw >= 0))
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: item %zu sample %zu: deliverable "
                             "%g MW, curtailed %g MW (need finite >= 0)", item, sample,
                             deliverable_mw, curtailed_mw);
    size_t i = item * m->n + sample;
    if (m->rec[i])
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: item %zu sample %zu recorded twice",
                             item, sample);
    m->deliv[i] = deliverable_mw + 0.0;
    m->curt[i] = curtailed_mw + 0.0;
    m->rec[i] = 1;
    return PCF_OK;
}

pcf_rc mcstat_record_sample(mcstat *m, size_t sample, const double *deliverable_mw,
                            const double *curtailed_mw, pcf_error *err)
{
    if (sample >= m->n)
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: sample %zu of %zu", sample, m->n);
    for (size_t k = 0; k < m->ni; k++) {
        double d = deliverable_mw[k], c = curtailed_mw[k];
        if (!(isfinite(d) && d >= 0) || !(isfinite(c) && c >= 0))
            return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: item %zu sample %zu: "
                                 "deliverable %g MW, curtailed %g MW (need finite >= 0)", k,
                                 sample, d, c);
        if (m->rec[k * m->n + sample])
            return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: item %zu sample %zu recorded "
                                 "twice", k, sample);
    }
    for (size_t k = 0; k < m->ni; k++) {
        size_t i = k * m->n + sample;
        m->deliv[i] = deliverable_mw[k] + 0.0;
        m->curt[i] = curtailed_mw[k] + 0.0;
        m->rec[i] = 1;
    }
    return PCF_OK;
}

pcf_rc mcstat_merge(mcstat *dst, const mcstat *src, pcf_error *err)
{
    if (dst->ni != src->ni || dst->n != src->n)
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat_merge: shapes %zu x %zu and %zu x %zu",
                             dst->ni, dst->n, src->ni, src->n);
    size_t slots = dst->ni * dst->n;
    for (size_t i = 0; i < slots; i++)
        if (src->rec[i] && dst->rec[i])
            return pcf_error_set(err, PCF_ERR_INVALID, "mcstat_merge: item %zu sample %zu "
                                 "recorded in both", i / dst->n, i % dst->n);
    for (size_t i = 0; i < slots; i++) {
        if (!src->rec[i])
            continue;
        dst->deliv[i] = src->deliv[i];
        dst->curt[i] = src->curt[i];
        dst->rec[i] = 1;
    }
    return PCF_OK;
}

/* k-th smallest (0-based) of v[0..n), reordering v: Hoare's selection with
 * a median-of-three pivot, O(n) on average. */
static double s_select(double *v, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        double a = v[lo], b = v[mid], c = v[hi];
        double pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i <= j) {
                double t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    return v[k];
}

/* Ranks k[0..m) (ascending) of v[0..n), all values finite: select the
 * middle rank, which leaves v partitioned around it, then the lower ranks
 * below it and the upper ones above. */
static void s_select_ranks(double *v, size_t lo, size_t hi, const size_t *k, size_t m, double *out)
{
    if (m == 0) return;
    size_t mid = m / 2, r = k[mid];
    out[mid] = s_select(v + lo, hi - lo, r - lo);
    size_t a = mid, b = mid + 1;
    while (a > 0 && k[a - 1] == r) out[--a] = out[mid];
    while (b < m && k[b] == r) out[b++] = out[mid];
    s_select_ranks(v, lo, r, k, a, out);
    s_select_ranks(v, r + 1, hi, k + b, m - b, out + b);
}

static int s_cmp_total(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    int nx = isnan(x), ny = isnan(y);
    if (nx || ny) return nx - ny;       /* NaN last */
    return (x > y) - (x < y);
}

#define MCSTAT_BUCKETS 2048

/* The bucket of x in [lo, lo + MCSTAT_BUCKETS / scale]: monotone in x
 * (subtraction and scaling round monotonically, truncation is monotone). */
static inline size_t s_bucket(double x, double lo, double scale)
{
    double t = (x - lo) * scale;
    return t < MCSTAT_BUCKETS ? (size_t)t : MCSTAT_BUCKETS - 1;
}

/* mcstat_ranks with the ranks ascending: k[0..m), out[0..m). */
static void s_ranks_sorted(const double *v, size_t n, const size_t *k, size_t m, double *out, double *scratch)
{
    double lo = v[0], hi = v[0];
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        double x = v[i];
        finite &= isfinite(x);
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
    }
    if (!finite) {      /* no bucket for a NaN or an infinity: sort */
        memcpy(scratch, v, n * sizeof(double));
        qsort(scratch, n, sizeof(double), s_cmp_total);
        for (size_t i = 0; i < m; i++) out[i] = scratch[k[i]];
        return;
    }
    if (hi == lo) {     /* one value (a solar site at night): every rank is it */
        for (size_t i = 0; i < m; i++) out[i] = lo;
        return;
    }
    double scale = MCSTAT_BUCKETS / (hi - lo);
    if (!(scale < HUGE_VAL) || n < 4 * MCSTAT_BUCKETS / 16) {
        /* a range too narrow to divide, or too few values to be worth
         * counting: select among them all */
        memcpy(scratch, v, n * sizeof(double));
        s_select_ranks(scratch, 0, n, k, m, out);
        return;
    }
    uint32_t count[MCSTAT_BUCKETS] = {0}, at[MCSTAT_BUCKETS];
    size_t first[MCSTAT_BUCKETS + 1];
    for (size_t i = 0; i < n; i++) count[s_bucket(v[i], lo, scale)]++;
    first[0] = 0;
    for (size_t b = 0; b < MCSTAT_BUCKETS; b++) first[b + 1] = first[b] + count[b];
    /* the buckets holding a wanted rank, gathered one after another */
    size_t kb[MCSTAT_MAX_RANKS], used = 0, b = 0, nslot = 0;
    uint32_t slot[MCSTAT_BUCKETS];      /* of a gathered bucket: its bmin, bmax */
    double bmin[MCSTAT_MAX_RANKS], bmax[MCSTAT_MAX_RANKS];
    for (size_t b2 = 0; b2 < MCSTAT_BUCKETS; b2++) at[b2] = UINT32_MAX;
    for (size_t i = 0; i < m; i++) {
        while (first[b + 1] <= k[i]) b++;
        kb[i] = b;
        if (at[b] == UINT32_MAX) {
            at[b] = (uint32_t)used;
            used += count[b];
            slot[b] = (uint32_t)nslot;
            bmin[nslot] = HUGE_VAL;
            bmax[nslot++] = -HUGE_VAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t bi = s_bucket(v[i], lo, scale);
        if (at[bi] == UINT32_MAX) continue;
        double x = v[i];
        uint32_t sl = slot[bi];
        scratch[at[bi]++] = x;
        bmin[sl] = x < bmin[sl] ? x : bmin[sl];
        bmax[sl] = x > bmax[sl] ? x : bmax[sl];
    }
    /* at[] now ends each gathered bucket: select within each, its ranks
     * taken relative to the bucket; a bucket of one value (an atom: a
     * site at zero or at its cap in most samples) needs no selection */
    for (size_t i = 0; i < m;) {
        size_t bb = kb[i], end = at[bb], beg = end - count[bb], j = i;
        size_t kr[MCSTAT_MAX_RANKS] = {0};
        while (j < m && kb[j] == bb) {
            kr[j - i] = k[j] - first[bb];
            j++;
        }
        if (bmin[slot[bb]] == bmax[slot[bb]])
            for (size_t r = i; r < j; r++) out[r] = bmin[slot[bb]];
        else
            s_select_ranks(scratch + beg, 0, end - beg, kr, j - i, out + i);
        i = j;
    }
}

double mcstat_select(double *v, size_t n, size_t k)
{
    return s_select(v, n, k);
}

void mcstat_ranks(const double *v, size_t n, const size_t *rank, size_t nr, double *val, double *scratch)
{
    size_t perm[MCSTAT_MAX_RANKS] = {0}, k[MCSTAT_MAX_RANKS] = {0};
    double sel[MCSTAT_MAX_RANKS] = {0};
    if (n == 0) {       /* no values: no order statistic */
        for (size_t i = 0; i < nr; i++) val[i] = NAN;
        return;
    }
    while (nr > MCSTAT_MAX_RANKS) {     /* more than a batch: a batch at a time */
        mcstat_ranks(v, n, rank, MCSTAT_MAX_RANKS, val, scratch);
        rank += MCSTAT_MAX_RANKS;
        val += MCSTAT_MAX_RANKS;
        nr -= MCSTAT_MAX_RANKS;
    }
    if (nr == 0) return;
    for (size_t i = 0; i < nr; i++) {   /* insertion sort of a handful */
        size_t j = i;
        for (; j > 0 && rank[perm[j - 1]] > rank[i]; j--) perm[j] = perm[j - 1];
        perm[j] = i;
    }
    for (size_t i = 0; i < nr; i++) k[i] = rank[perm[i]] < n ? rank[perm[i]] : n - 1;
    s_ranks_sorted(v, n, k, nr, sel, scratch);
    for (size_t i = 0; i < nr; i++) val[perm[i]] = sel[i];
}

/* 1-based rank r clamped to 1..n, as a 0-based index. */
static size_t s_idx(double r, size_t n)
{
    if (r < 1)
        return 0;
    if (r > (double)n)
        return n - 1;
    return (size_t)r - 1;
}

/* n p, snapped to an integer when it should be one (1000 x 0.9 must not
 * round up past 900). */
static double s_np(size_t n, double p)
{
    double np = (double)n * p;
    if (fabs(np - nearbyint(np)) < 1e-9 * (np + 1))
        np = nearbyint(np);
    return np;
}

size_t mcstat_quantile_index(size_t n, double p)
{
    return s_idx(ceil(s_np(n, p)), n);
}

void mcstat_quantile_se_index(size_t n, double p, size_t *lo, size_t *hi)
{
    double np = s_np(n, p);
    double h = MCSTAT_Z95 * sqrt(np * (1 - p));
    *lo = s_idx(floor(np - h), n);
    *hi = s_idx(ceil(np + h), n);
}

double mcstat_quantile(const double *sorted, size_t n, double p, double *se)
{
    double q = sorted[mcstat_quantile_index(n, p)];
    if (se) {
        size_t lo, hi;
        mcstat_quantile_se_index(n, p, &lo, &hi);
        *se = (sorted[hi] - sorted[lo]) / (2 * MCSTAT_Z95);
    }
    return q;
}

/* Mean and SE of the mean of x[n], two passes in index order. */
static void s_mean_se(const double *x, size_t n, double *mean, double *se)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double mu = s / (double)n, ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *se = sqrt(ss / (double)(n - 1) / (double)n);
}

pcf_rc mcstat_summarise_r(const mcstat *m, size_t item, double hours, double *scratch,
                          mcstat_pcf *out, pcf_error *err)
{
    memset(out, 0, sizeof *out);
    if (item >= m->ni)
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: item %zu of %zu", item, m->ni);
    if (!(isfinite(hours) && hours > 0 && hours <= 24))
        return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: period of %g hours", hours);
    size_t n = m->n, base = item * n;
    for (size_t i = 0; i < n; i++)
        if (!m->rec[base + i])
            return pcf_error_set(err, PCF_ERR_INVALID, "mcstat: item %zu sample %zu not recorded",
                                 item, i);
    const double *d = m->deliv + base, *c = m->curt + base;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += c[i] > MCSTAT_CURTAILED_MW;
    double dn = (double)n, p = (double)k / dn, z = MCSTAT_Z95;
    out->n = n;
    out->p_curtailed = p;
    out->p_curtailed_se = sqrt(p * (1 - p) / dn);
    double hi = (p + z * z / (2 * dn) + z * sqrt(p * (1 - p) / dn + z * z / (4 * dn * dn))) /
                (1 + z * z / dn);
    out->p_curtailed_hi95 = hi < 1 ? hi : 1;
    double mc, sc;
    s_mean_se(c, n, &mc, &sc);
    out->curtailed_mwh = mc * hours;
    out->curtailed_mwh_se = sc * hours;
    s_mean_se(d, n, &out->deliverable_mean_mw, &out->deliverable_mean_se);
    /* q_p and the two order statistics that bracket it, for each level */
    static const double level[4] = { 0.10, 0.50, 0.90, 0.05 };
    size_t rank[12];
    double v[12];
    for (int l = 0; l < 4; l++) {
        rank[3 * l] = mcstat_quantile_index(n, level[l]);
        mcstat_quantile_se_index(n, level[l], &rank[3 * l + 1], &rank[3 * l + 2]);
    }
    mcstat_ranks(d, n, rank, 12, v, scratch);
    double *q[4] = { &out->p10_mw, &out->p50_mw, &out->p90_mw, &out->firm95_mw };
    double *se[4] = { &out->p10_se, &out->p50_se, &out->p90_se, &out->firm95_se };
    for (int l = 0; l < 4; l++) {
        *q[l] = v[3 * l];
        *se[l] = (v[3 * l + 2] - v[3 * l + 1]) / (2 * MCSTAT_Z95);
    }
    return PCF_OK;
}

pcf_rc mcstat_summarise(mcstat *m, size_t item, double hours, mcstat_pcf *out, pcf_error *err)
{
    return mcstat_summarise_r(m, item, hours, m->scratch, out, err);
}
