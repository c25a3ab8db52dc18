/*
 * study.c -- the Monte-Carlo study; see study.h for the method.
 *
 * Layout of one SP's work (S samples, nb buses, nc constraints, nst states):
 *   inj   [nb x S]   net injection of every bus in every sample (MW),
 *                    and a row nb of ones that carries the constant term
 *   avail [ns x S]   available output of every site (MW, capped)
 *   state [S]        0 intact, 1 + k credible fault k
 *   flow  [nst*nc x S] = rows [nst*nc x nb] * inj + off
 * where rows are the SP's: the topology's DC rows, the screened AC ones
 * or the linear (voltage) constraints' models (s_flow_model).  The flows
 * are formed block by block by the thread that takes the block, in its
 * own buffer (one small dgemm per block): the product is shared between
 * the threads and still in cache when the ANM reads it, and the whole
 * matrix is kept only when the fault loadings need it (s->flow).
 * Samples are processed in fixed blocks of STUDY_BLOCK; a thread takes whole
 * blocks, and every sum over samples is formed per block in sample order and
 * then over blocks in block order, so the result never depends on how many
 * threads ran or which block each took.  The summaries after the ANM are
 * shared out the same way, a whole constraint or a whole site per item: each
 * reads only its own rows and writes only its own result.
 */
#include "study.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dcpf.h"
#include "pfnet.h"
#include "sens.h"
#include "study_ac.h"

#define STUDY_BLOCK 256
#define STUDY_NO_LIMIT 1e15

const double study_levels[STUDY_NLEVELS] = { 0.5, 0.8, 0.9, 0.95, 0.99 };

struct study_topology {
    size_t nst, nc, nb, ns;
    double *cptdf;          /* [nst * nc * nb]: dead columns zeroed */
    double *sens;           /* [nst * nc * ns] */
    unsigned char *dead;    /* [nst * nbus_case] by case row */
    unsigned char *valid;   /* [nst]: 0 when the faulted branch is already out */
    size_t nbus_case;
    int *site_bus;          /* [ns] internal bus index */
    /* for the AC re-solve (study_ac.h): the case with the planned outages
     * taken out, and per state the case row a fault takes out (-1: none,
     * or an islanding fault, which stays in with its island de-energised) */
    mp_case *acase;
    int *ac_out;            /* [nst] */
    uint64_t id;            /* unique per topology: keys per-thread AC caches */
};

typedef struct study_thread {
    struct study *st;
    anm *a;
    double *flow, *lim_f, *lim_r, *avail;
    double *fb;                  /* [(nst + 1) * nc * STUDY_BLOCK] the block's flows (phase 2) */
    study_ac *ac;                /* NULL unless def.ac */
    double *ac_p, *ac_q, *ac_flow;   /* [nb], [nb], [nc] */
    size_t ac_samples, ac_fallbacks; /* this SP */
    double *mscratch;            /* [2 S] site summaries (phase 3) */
    double *sortbuf;             /* [S] constraint quantiles (phase 3) */
    size_t *fault_acts;          /* [nf] binding-fault counts (phase 3) */
    study_times t;               /* this thread's share (study_times_get) */
    pcf_rc rc;
    pcf_error err_msg;
} study_thread;

struct study {
    study_def def;
    pf_net *net;                 /* base network index (bus numbering) */
    size_t nb, S, nst, nblocks;
    int *site_bus;               /* [ns] internal */
    double *site_cap;            /* [ns] min(export, tranche capacity) */
    double *inj, *avail;         /* see the file comment */
    double *flow;                /* [nst * nc * S] every sample's flows: only for the fault loadings, else NULL */
    /* this SP's flow model (s_flow_model): nst * nc rows, then nc more
     * for the second tangent when flow_lin2 */
    double *flow_mat;            /* [(nst + 1) * nc * (nb + 1)]: rows | off, times inj's nb + 1 rows */
    size_t flow_nrows;
    int flow_lin2;
    unsigned char *site_dead;    /* [nst * ns] the site's bus is de-energised in the state */
    int *state;
    mcstat *stats;
    /* per-sample constraint figures */
    double *flow_intact, *flow_fault, *curt_c;  /* [nc * S] */
    unsigned char *acted;                       /* [nc * S] */
    unsigned char *unresolved;                  /* [S] */
    /* per-block partial results */
    double *blk_site_curt;       /* [nblocks * nc * ns] */
    double *blk_site_curt2;      /* [nblocks * nc * ns] sum of squares */
    int *blk_site_n;             /* [nblocks * nc * ns] samples curtailed */
    int *blk_binding;            /* [nblocks * nc * nf] */
    mcstat_pcf *site_res;        /* [ns] summaries of the last SP (phase 3) */
    size_t nmember;              /* study_set_members */
    const double *member_mean;   /* [nmember * ns] */
    int ac_mode;                 /* study_set_ac */
    double ac_band;
    size_t ac_samples, ac_fallbacks;   /* over every SP run so far */
    /* STUDY_AC_SCREEN, per SP (s_linearise): every state's constraint flows
     * linearised at its AC operating point, flow = lin_cptdf * inj + lin_off;
     * states without an operating point keep their DC rows (lin_ok 0) */
    double *lin_cptdf;           /* [nst * nc * nb] */
    double *lin_off;             /* [nst * nc] MW */
    double *lin_sens;            /* [nst * nc * ns] */
    double *lin_vm, *lin_va;     /* [nst * nb] operating points */
    unsigned char *lin_ok;       /* [nst] */
    double *lin_p, *lin_q;       /* [nb] scratch: the expansion point's injections */
    double *lin_pm, *lin_am;     /* [nb], [ns]: the samples' mean injections and outputs */
    /* the intact state linearised again where the ANM takes its mean
     * (lin2_ok): the point curtailed samples end near */
    double *lin2_cptdf, *lin2_off, *lin2_sens;  /* [nc * nb], [nc], [nc * ns] */
    double *lin2_v;                             /* [2 nb] its point (unused) */
    int lin2_ok;
    size_t lin_fail;             /* states without an operating point, over every SP */
    uint64_t lin_gen;            /* operating points' generation: one per SP run */
    study_constraint_result *cres;  /* [nc] */
    study_site_curt *cres_site;  /* [nc * ns] */
    const unsigned char *fl_want;    /* [nc] study_set_fault_loading; NULL: off */
    unsigned char fl_level[STUDY_NLEVELS];   /* 1: the level is selected */
    study_fault_loading *fl;     /* [nc * nf] */
    /* linear constraints (nbr 0, study_set_linear): their index among
     * them, -1 for the others; the SP's sensitivities of every state
     * (the topology's with the linear rows replaced) */
    size_t nlin;
    long *lin_of;                /* [nc] */
    double *sens_sp;             /* [nst * nc * ns], NULL without linear constraints */
    const double *lin_row, *vlin_off, *lin_rev;  /* study_set_linear */
    int *vbus;                   /* [nc] study_set_voltage_bus: case bus row measured in AC samples, -1 none */
    double *vkv;                 /* [nc] */
    /* the SP being run */
    const study_sp *sp;
    const study_topology *topo_last;    /* of the last SP run (study_sens) */
    uint32_t sp_index;
    int phase;                   /* 1 sampling, 2 ANM, 3 summaries: set before threads start */
    int site_ok;                 /* site_res holds the last SP's summaries */
    atomic_size_t next_block;
    study_thread th[STUDY_MAX_THREADS];
};

/* ---- topology ----------------------------------------------------------- */

static mp_case *s_case_copy(const mp_case *c)
{
    mp_case *d = mp_case_new(c->bus.rows, c->bus.cols, c->gen.rows, c->gen.cols,
                             c->branch.rows, c->branch.cols);
    if (!d) return NULL;
    d->base_mva = c->base_mva;
    if (c->bus.rows) memcpy(d->bus.v, c->bus.v, c->bus.rows * c->bus.cols * sizeof(double));
    if (c->gen.rows) memcpy(d->gen.v, c->gen.v, c->gen.rows * c->gen.cols * sizeof(double));
    if (c->branch.rows)
        memcpy(d->branch.v, c->branch.v, c->branch.rows * c->branch.cols * sizeof(double));
    return d;
}

/* Marks in `reach` (by internal bus) what is connected to the reference bus
 * over branches with inservice[l] set.  queue: [nb] scratch. */
static void s_reach(const pf_net *net, const unsigned char *inservice, unsigned char *reach, int *queue)
{
    memset(reach, 0, net->nb);
    size_t head = 0, tail = 0;
    queue[tail++] = net->ref;
    reach[net->ref] = 1;
    while (head < tail) {
        int u = queue[head++];
        for (size_t l = 0; l < net->nl; l++) {
            if (!inservice[l]) continue;
            int v = -1;
            if (net->f[l] == u) v = net->t[l];
            else if (net->t[l] == u) v = net->f[l];
            if (v >= 0 && !reach[v]) {
                reach[v] = 1;
                queue[tail++] = v;
            }
        }
    }
}

/* Builds cptdf rows of state `st` from PTDF (+ LODF column for a fault). */
static void s_state_rows(study_topology *t, const study_def *def, const pf_net *net2,
                         const double *ptdf, const double *lodf, int fault_l, size_t st)
{
    size_t nb = t->nb;
    for (size_t c = 0; c < def->nc; c++) {
        double *row = &t->cptdf[(st * def->nc + c) * nb];
        memset(row, 0, nb * sizeof(double));
        const study_constraint *k = &def->constraints[c];
        double lsum = 0;    /* sum of sign * LODF(b, fault_l) */
        for (size_t i = 0; i < k->nbr; i++) {
            int l = net2->row_br[k->branch_row[i]];
            if (l < 0) continue;                 /* out in this topology: carries nothing */
            const double *p = &ptdf[(size_t)l * nb];
            for (size_t b = 0; b < nb; b++) row[b] += k->sign[i] * p[b];
            if (fault_l >= 0) lsum += k->sign[i] * lodf[(size_t)l * net2->nl + (size_t)fault_l];
        }
        if (fault_l >= 0 && lsum != 0) {
            const double *pk = &ptdf[(size_t)fault_l * nb];
            for (size_t b = 0; b < nb; b++) row[b] += lsum * pk[b];
        }
    }
}

/* Zeroes dead columns and derives the site sensitivities of state st. */
static void s_state_finish(study_topology *t, const pf_net *net, size_t st)
{
    const unsigned char *dead = &t->dead[st * t->nbus_case];
    for (size_t c = 0; c < t->nc; c++) {
        double *row = &t->cptdf[(st * t->nc + c) * t->nb];
        for (size_t b = 0; b < t->nb; b++)
            if (dead[net->bus_row[b]]) row[b] = 0;
        for (size_t s = 0; s < t->ns; s++)
            t->sens[(st * t->nc + c) * t->ns + s] = row[t->site_bus[s]];
    }
}

void study_topology_destroy(study_topology **tp)
{
    if (!tp || !*tp) return;
    study_topology *t = *tp;
    free(t->cptdf);
    free(t->sens);
    free(t->dead);
    free(t->valid);
    free(t->site_bus);
    free(t->ac_out);
    mp_case_destroy(&t->acase);
    free(t);
    *tp = NULL;
}

pcf_rc study_topology_new(const study_def *def, const int *out_rows, size_t nout,
                          study_topology **out, pcf_error *err)
{
    *out = NULL;
    pf_net *base = NULL, *net2 = NULL;
    pf_dc *dc = NULL;
    mp_case *c2 = NULL;
    double *ptdf = NULL, *lodf = NULL;
    unsigned char *insvc = NULL, *reach = NULL, *bridge = NULL;
    int *queue = NULL;
    study_topology *t = calloc(1, sizeof *t);
    pcf_rc rc = t ? pf_net_new(def->net, &base, err) : pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    if (rc == PCF_OK) rc = pf_net_connected(base, err);
    if (rc != PCF_OK) goto done;

    size_t nb = base->nb, nbc = def->net->bus.rows;
    t->nst = 1 + def->nf;
    t->nc = def->nc;
    t->nb = nb;
    t->ns = def->ns;
    t->nbus_case = nbc;
    t->cptdf = calloc(t->nst * def->nc * nb + 1, sizeof(double));
    t->sens = calloc(t->nst * def->nc * def->ns + 1, sizeof(double));
    t->dead = calloc(t->nst * nbc + 1, 1);
    t->valid = calloc(t->nst, 1);
    t->site_bus = calloc(def->ns + 1, sizeof(int));
    t->ac_out = malloc(t->nst * sizeof(int));
    static atomic_uint_fast64_t next_id = 1;
    t->id = atomic_fetch_add(&next_id, 1);
    insvc = malloc(base->nl + 1);
    reach = malloc(nb + 1);
    queue = malloc((nb + 1) * sizeof(int));
    c2 = s_case_copy(def->net);
    if (!t->cptdf || !t->sens || !t->dead || !t->valid || !t->site_bus || !t->ac_out || !insvc || !reach || !queue || !c2) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
        goto done;
    }
    for (size_t s = 0; s < def->ns; s++) {
        t->site_bus[s] = pf_net_bus_index(base, def->sites[s].bus);
        if (t->site_bus[s] < 0) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "study: site %zu is at bus %.17g, not in the network",
                               s, def->sites[s].bus);
            goto done;
        }
    }

    /* Planned outages: take each out unless that islands part of the
     * network; then keep it and de-energise the far side instead. */
    memset(insvc, 1, base->nl);
    unsigned char *dead0 = t->dead;
    for (size_t i = 0; i < nout; i++) {
        int row = out_rows[i];
        if (row < 0 || (size_t)row >= def->net->branch.rows) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "study: planned outage of branch row %d: no such row", row);
            goto done;
        }
        int l = base->row_br[row];
        if (l < 0 || !insvc[l]) continue;
        insvc[l] = 0;
        s_reach(base, insvc, reach, queue);
        int split = 0;
        for (size_t b = 0; b < nb; b++) split |= !reach[b] && !dead0[base->bus_row[b]];
        if (split) {
            insvc[l] = 1;
            for (size_t b = 0; b < nb; b++)
                if (!reach[b]) dead0[base->bus_row[b]] = 1;
        } else {
            MP_AT(&c2->branch, row, MP_BR_STATUS) = 0;
        }
    }
    if ((rc = pf_net_new(c2, &net2, err)) != PCF_OK) goto done;
    if (net2->nb != nb) {
        rc = pcf_error_set(err, PCF_ERR_INTERNAL, "study: planned outages changed the bus set");
        goto done;
    }
    ptdf = malloc(net2->nl * nb * sizeof(double) + 1);
    lodf = malloc(net2->nl * net2->nl * sizeof(double) + 1);
    bridge = malloc(net2->nl + 1);
    if (!ptdf || !lodf || !bridge) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
        goto done;
    }
    if ((rc = pf_dc_new(net2, &dc, err)) != PCF_OK) goto done;
    if ((rc = pf_ptdf(dc, net2, NULL, ptdf, err)) != PCF_OK) goto done;
    if ((rc = pf_bridges(net2, bridge, err)) != PCF_OK) goto done;
    if ((rc = pf_lodf(net2, ptdf, bridge, lodf, err)) != PCF_OK) goto done;

    for (size_t st = 0; st < t->nst; st++) t->ac_out[st] = -1;
    t->valid[0] = 1;
    s_state_rows(t, def, net2, ptdf, lodf, -1, 0);
    s_state_finish(t, base, 0);
    for (size_t k = 0; k < def->nf; k++) {
        size_t st = 1 + k;
        int row = def->fault_row[k];
        int l = (row >= 0 && (size_t)row < def->net->branch.rows) ? net2->row_br[row] : -1;
        unsigned char *dk = &t->dead[st * nbc];
        memcpy(dk, dead0, nbc);
        if (l < 0) continue;            /* already out: the fault cannot happen */
        t->valid[st] = 1;
        if (bridge[l]) {
            /* Islanding fault: the flows of the remaining network are the
             * intact ones with the island's injections removed. */
            memset(insvc, 0, base->nl);
            for (size_t j = 0; j < net2->nl; j++) insvc[base->row_br[net2->br_row[j]]] = 1;
            insvc[base->row_br[row]] = 0;
            s_reach(base, insvc, reach, queue);
            for (size_t b = 0; b < nb; b++)
                if (!reach[b]) dk[base->bus_row[b]] = 1;
            s_state_rows(t, def, net2, ptdf, lodf, -1, st);
        } else {
            s_state_rows(t, def, net2, ptdf, lodf, l, st);
            t->ac_out[st] = row;
        }
        s_state_finish(t, base, st);
    }

done:
    free(ptdf);
    free(lodf);
    free(bridge);
    free(insvc);
    free(reach);
    free(queue);
    pf_dc_destroy(&dc);
    pf_net_destroy(&net2);
    pf_net_destroy(&base);
    if (t && rc == PCF_OK) {
        t->acase = c2;
        c2 = NULL;
    }
    mp_case_destroy(&c2);
    if (rc != PCF_OK) study_topology_destroy(&t);
    *out = t;
    return rc;
}

int study_topology_dead(const study_topology *t, size_t state, size_t bus_row)
{
    return t->dead[state * t->nbus_case + bus_row];
}

double study_topology_sens(const study_topology *t, size_t c, size_t s)
{
    return t->sens[c * t->ns + s];
}

size_t study_topology_states(const study_topology *t) { return t->nst; }
uint64_t study_topology_id(const study_topology *t) { return t->id; }
const mp_case *study_topology_case(const study_topology *t) { return t->acase; }
int study_topology_fault_row(const study_topology *t, size_t state) { return state < t->nst ? t->ac_out[state] : -1; }
int study_topology_valid(const study_topology *t, size_t state) { return state < t->nst && t->valid[state]; }

/* ---- the study ------------------------------------------------------------ */

void study_destroy(study **sp)
{
    if (!sp || !*sp) return;
    study *s = *sp;
    for (int i = 0; i < STUDY_MAX_THREADS; i++) {
        study_thread *th = &s->th[i];
        anm_destroy(&th->a);
        free(th->flow);
        free(th->fb);
        free(th->lim_f);
        free(th->lim_r);
        free(th->avail);
        study_ac_destroy(&th->ac);
        free(th->ac_p);
        free(th->ac_q);
        free(th->ac_flow);
        free(th->mscratch);
        free(th->sortbuf);
        free(th->fault_acts);
    }
    free(s->site_res);
    pf_net_destroy(&s->net);
    mcstat_destroy(&s->stats);
    free(s->site_bus);
    free(s->site_cap);
    free(s->inj);
    free(s->avail);
    free(s->flow);
    free(s->flow_mat);
    free(s->site_dead);
    free(s->state);
    free(s->flow_intact);
    free(s->flow_fault);
    free(s->curt_c);
    free(s->acted);
    free(s->unresolved);
    free(s->blk_site_curt);
    free(s->blk_site_curt2);
    free(s->blk_site_n);
    free(s->blk_binding);
    free(s->cres);
    free(s->cres_site);
    free(s->lin_of);
    free(s->vbus);
    free(s->vkv);
    free(s->sens_sp);
    free(s->fl);
    free(s->lin_cptdf);
    free(s->lin_off);
    free(s->lin_sens);
    free(s->lin_vm);
    free(s->lin_va);
    free(s->lin_ok);
    free(s->lin_p);
    free(s->lin_q);
    free(s->lin_pm);
    free(s->lin_am);
    free(s->lin2_cptdf);
    free(s->lin2_off);
    free(s->lin2_sens);
    free(s->lin2_v);
    free(s);
    *sp = NULL;
}

static pcf_rc s_check_def(const study_def *d, pcf_error *err)
{
    if (!d->net) return pcf_error_set(err, PCF_ERR_INVALID, "study: no network");
    if (d->samples < MCSTAT_MIN_SAMPLES || d->samples > MCSTAT_MAX_SAMPLES)
        return pcf_error_set(err, PCF_ERR_INVALID, "study: %zu samples (need %d..%d)", d->samples,
                             MCSTAT_MIN_SAMPLES, MCSTAT_MAX_SAMPLES);
    if (d->threads < 1 || d->threads > STUDY_MAX_THREADS)
        return pcf_error_set(err, PCF_ERR_INVALID, "study: %d threads (1..%d)", d->threads, STUDY_MAX_THREADS);
    for (size_t c = 0; c < d->nc; c++) {
        const study_constraint *k = &d->constraints[c];

        for (size_t i = 0; i < k->nbr; i++)
            if (k->branch_row[i] < 0 || (size_t)k->branch_row[i] >= d->net->branch.rows ||
                (k->sign[i] != 1 && k->sign[i] != -1))
                return pcf_error_set(err, PCF_ERR_INVALID, "study: constraint %zu: bad branch %zu", c, i);
    }
    for (size_t s = 0; s < d->ns; s++)
        if (!(d->sites[s].export_mw > 0) || !isfinite(d->sites[s].export_mw))
            return pcf_error_set(err, PCF_ERR_INVALID, "study: site %zu: export capacity must be > 0", s);
    for (size_t k = 0; k < d->nf; k++)
        if (d->fault_row[k] < 0 || (size_t)d->fault_row[k] >= d->net->branch.rows)
            return pcf_error_set(err, PCF_ERR_INVALID, "study: fault %zu: no branch row %d", k, d->fault_row[k]);
    return PCF_OK;
}

/* The AC re-solver of one worker thread and its scratch. */
static pcf_rc s_ac_thread(study *s, study_thread *th, pcf_error *err)
{
    const study_def *d = &s->def;
    size_t nc = d->nc;
    size_t *nbr = calloc(nc + 1, sizeof(size_t));
    const int **rows = calloc(nc + 1, sizeof *rows);
    const double **sign = calloc(nc + 1, sizeof *sign);
    free(th->ac_p);             /* a retry after a failed study_set_ac */
    free(th->ac_q);
    free(th->ac_flow);
    th->ac_p = malloc((s->nb + 1) * sizeof(double));
    th->ac_q = malloc((s->nb + 1) * sizeof(double));
    th->ac_flow = malloc((nc + 1) * sizeof(double));
    pcf_rc rc = PCF_OK;
    if (!nbr || !rows || !sign || !th->ac_p || !th->ac_q || !th->ac_flow) {
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    } else {
        for (size_t c = 0; c < nc; c++) {
            nbr[c] = d->constraints[c].nbr;
            rows[c] = d->constraints[c].branch_row;
            sign[c] = d->constraints[c].sign;
        }
        study_ac_def ad = { nc, d->ns, s->nst, nbr, rows, sign };
        rc = study_ac_new(&ad, &th->ac, err);
        if (rc == PCF_OK) study_ac_set_voltage(th->ac, s->vbus, s->vkv);
    }
    free(nbr);
    free(rows);
    free(sign);
    return rc;
}

pcf_rc study_new(const study_def *def, study **out, pcf_error *err)
{
    *out = NULL;
    pcf_rc rc = s_check_def(def, err);
    if (rc != PCF_OK) return rc;
    study *s = calloc(1, sizeof *s);
    if (!s) return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    s->def = *def;
    s->ac_mode = STUDY_AC_OFF;   /* a study is DC until told otherwise */
    /* The threads each multiply their own blocks (phase 2): BLAS threads
     * under them would only contend for the same cores. */
    openblas_set_num_threads(1);
    if ((rc = pf_net_new(def->net, &s->net, err)) != PCF_OK) {
        study_destroy(&s);
        return rc;
    }
    size_t nc = def->nc, ns = def->ns, S = def->samples, nb = s->net->nb;
    s->nb = nb;
    s->S = S;
    s->nst = 1 + def->nf;
    s->nblocks = (S + STUDY_BLOCK - 1) / STUDY_BLOCK;
    s->site_bus = calloc(ns + 1, sizeof(int));
    s->site_cap = calloc(ns + 1, sizeof(double));
    s->inj = malloc((nb + 1) * S * sizeof(double));
    s->avail = malloc((ns + 1) * S * sizeof(double));
    s->flow_mat = malloc(((s->nst + 1) * nc * (nb + 1) + 1) * sizeof(double));
    s->site_dead = malloc(s->nst * ns + 1);
    s->state = malloc(S * sizeof(int));
    s->flow_intact = malloc((nc + 1) * S * sizeof(double));
    s->flow_fault = malloc((nc + 1) * S * sizeof(double));
    s->curt_c = malloc((nc + 1) * S * sizeof(double));
    s->acted = malloc((nc + 1) * S);
    s->unresolved = malloc(S);
    s->blk_site_curt = malloc((s->nblocks * nc * ns + 1) * sizeof(double));
    s->blk_site_curt2 = malloc((s->nblocks * nc * ns + 1) * sizeof(double));
    s->blk_site_n = malloc((s->nblocks * nc * ns + 1) * sizeof(int));
    s->blk_binding = malloc((s->nblocks * nc * def->nf + 1) * sizeof(int));
    s->site_res = calloc(ns + 1, sizeof *s->site_res);
    s->cres = calloc(nc + 1, sizeof *s->cres);
    s->cres_site = calloc(nc * ns + 1, sizeof *s->cres_site);
    s->lin_of = malloc((nc + 1) * sizeof(long));
    for (size_t c = 0; s->lin_of && c < nc; c++) s->lin_of[c] = def->constraints[c].nbr == 0 ? (long)s->nlin++ : -1;
    if (s->nlin) s->sens_sp = malloc((s->nst * nc * ns + 1) * sizeof(double));
    if (!s->lin_of || (s->nlin && !s->sens_sp) ||
        !s->site_bus || !s->site_cap || !s->inj || !s->avail || !s->state ||
        !s->flow_mat || !s->site_dead || !s->flow_intact ||
        !s->flow_fault || !s->curt_c || !s->acted || !s->unresolved || !s->blk_site_curt ||
        !s->blk_site_curt2 || !s->blk_site_n || !s->blk_binding ||
        !s->cres || !s->cres_site || !s->site_res) {
        study_destroy(&s);
        return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory for %zu samples", S);
    }
    for (size_t j = 0; j < S; j++) s->inj[nb * S + j] = 1.0;
    for (size_t i = 0; i < ns; i++) {
        s->site_bus[i] = pf_net_bus_index(s->net, def->sites[i].bus);
        if (s->site_bus[i] < 0) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "study: site %zu: bus %.17g not in the network", i,
                               def->sites[i].bus);
            study_destroy(&s);
            return rc;
        }
        double tranche = 0;
        int has = 0;
        for (size_t t = 0; t < def->nt; t++)
            if (def->tranches[t].site == i) {
                tranche += def->tranches[t].capacity_mw;
                has = 1;
            }
        s->site_cap[i] = has && tranche < def->sites[i].export_mw ? tranche : def->sites[i].export_mw;
    }
    if ((rc = mcstat_new(ns ? ns : 1, S, &s->stats, err)) != PCF_OK) {
        study_destroy(&s);
        return rc;
    }
    anm_def ad = { nc, ns, def->nt, NULL, def->tranches, def->member, def->anm_opts };
    anm_constraint_def *cd = calloc(nc + 1, sizeof *cd);
    if (!cd) {
        study_destroy(&s);
        return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    }
    for (size_t c = 0; c < nc; c++) {
        cd[c].voltage_kv = def->constraints[c].voltage_kv;
        cd[c].kind = def->constraints[c].kind;
        cd[c].trim = def->constraints[c].trim;
        cd[c].release = def->constraints[c].release;
    }
    ad.constraints = cd;
    for (int i = 0; i < def->threads && rc == PCF_OK; i++) {
        study_thread *th = &s->th[i];
        th->st = s;
        rc = anm_new(&ad, &th->a, err);
        th->flow = malloc((nc + 1) * sizeof(double));
        th->fb = malloc(((s->nst + 1) * nc * STUDY_BLOCK + 1) * sizeof(double));
        th->lim_f = malloc((nc + 1) * sizeof(double));
        th->lim_r = malloc((nc + 1) * sizeof(double));
        th->avail = malloc((ns + 1) * sizeof(double));
        th->mscratch = malloc(2 * S * sizeof(double));
        th->sortbuf = malloc(S * sizeof(double));
        th->fault_acts = malloc((def->nf + 1) * sizeof(size_t));
        if (rc == PCF_OK && (!th->flow || !th->fb || !th->lim_f || !th->lim_r || !th->avail || !th->mscratch ||
                             !th->sortbuf || !th->fault_acts))
            rc = pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    }
    free(cd);
    if (rc != PCF_OK) {
        study_destroy(&s);
        return rc;
    }
    *out = s;
    return PCF_OK;
}

/* ---- sampling (phase 1) and ANM (phase 2), per block ------------------------ */

/* This thread's CPU time: on a shared machine a part's share of the work
 * should not grow with the time the thread waited for a core. */
static double s_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1: the full AC solve measures linear constraint c's bus (study_set_voltage_bus). */
static int s_measured(const study *s, size_t c)
{
    return s->vbus && s->vbus[c] >= 0;
}

/* Loading of constraint c in th->flow over the level where the ANM acts
 * on it (trim x the limit in the flow's direction). */
static double s_ac_ratio(const study *s, const study_thread *th, size_t c)
{
    const study_constraint *k = &s->def.constraints[c];
    double trim = k->trim > 0 ? k->trim : 1;
    double load = k->one_way ? th->flow[c] : fabs(th->flow[c]);
    double lim = !k->one_way && th->flow[c] < 0 ? th->lim_r[c] : th->lim_f[c];
    return load / (trim * lim);
}

/* 1 when the sample's flow in its state is within the AC band of the level
 * where the ANM acts on some constraint: at or above 1 - band (band mode),
 * within band either side (screened: the flows are linearised AC, close to
 * the full solve, and only where the ANM's decision could go either way
 * within the linearisation's error does the full solve decide). */
static int s_ac_wanted(const study *s, const study_thread *th)
{
    if (s->ac_mode == STUDY_AC_ALL) return 1;
    int both = s->ac_mode == STUDY_AC_SCREEN;
    for (size_t c = 0; c < s->def.nc; c++) {
        /* a linear constraint whose bus the full solve does not measure
         * (study_set_voltage_bus) stays linear in an AC sample: solving
         * it near that limit would change nothing there */
        if (s->def.constraints[c].nbr == 0 && !s_measured(s, c)) continue;
        double r = s_ac_ratio(s, th, c);
        if (r >= 1 - s->ac_band && (!both || r <= 1 + s->ac_band)) return 1;
    }
    return 0;
}

/* 1 when some constraint's flow in th->flow is above where the ANM acts. */
static int s_ac_acts(const study *s, const study_thread *th)
{
    for (size_t c = 0; c < s->def.nc; c++)
        if (s_ac_ratio(s, th, c) > 1) return 1;
    return 0;
}

/* The reverse limit of constraint c whose forward limit is lim: the one
 * study_set_linear gave, else lim both ways, or none one-way. */
static double s_rev_limit(const study *s, size_t c, double lim)
{
    if (s->lin_rev && s->lin_rev[c] > 0) return s->lin_rev[c];
    return s->def.constraints[c].one_way ? STUDY_NO_LIMIT : lim;
}

/* Sample j re-solved with AC (study_ac.h).  *used = 0: fall back to DC. */
static pcf_rc s_ac_sample(study *s, study_thread *th, size_t j, int st, const anm_input *in, anm_result *res,
                          int *used, pcf_error *err)
{
    const study_sp *sp = s->sp;
    const study_topology *t = sp->topo;
    const pf_net *net = s->net;
    size_t S = s->S, nb = s->nb, ns = s->def.ns;
    const unsigned char *dead = &t->dead[(size_t)st * t->nbus_case];
    /* The sampled demand is what the injection holds besides firm plant
     * and the sites; it draws reactive power at STUDY_AC_DEMAND_PF. */
    memset(th->ac_q, 0, nb * sizeof(double));
    for (size_t i = 0; i < ns; i++) th->ac_q[s->site_bus[i]] += s->avail[i * S + j];
    double tanphi = tan(acos(STUDY_AC_DEMAND_PF));
    for (size_t b = 0; b < nb; b++) {
        int row = net->bus_row[b];
        double inj = s->inj[b * S + j];
        double dem = (sp->bus_fixed ? sp->bus_fixed[row] : 0) + th->ac_q[b] - inj;
        int off = dead[row];
        th->ac_p[b] = off ? 0 : inj;
        th->ac_q[b] = off ? 0 : -fabs(dem) * tanphi;
    }
    int warm = s->ac_mode == STUDY_AC_SCREEN && s->lin_ok[st];
    return study_ac_sample(th->ac, t->id, (size_t)st, t->acase, t->ac_out[st], th->ac_p, th->ac_q, s->site_bus,
                           warm ? s->lin_gen : 0, warm ? &s->lin_vm[(size_t)st * nb] : NULL,
                           warm ? &s->lin_va[(size_t)st * nb] : NULL, dead,
                           th->a, in, res, th->ac_flow, used, err);
}

/* Phase 1: the block's samples, drawn a row at a time rather than a sample
 * at a time (rng.h, rng_span): the numbers are those of each sample's own
 * streams, so the block's size or thread never changes them, but one call
 * draws a quantity for all the block's samples, in vector loops, and
 * writes each row of inj and avail once, contiguously.  The forecast
 * stream of a sample holds its ns site normals (draws 0..ns-1, through the
 * error model's Cholesky factor) and then one normal per bus with a demand
 * spread, in bus order; the ensemble member and the fault each take draw 0
 * of their own stream, so neither moves the forecast draws. */
#if defined(__GNUC__) && !defined(__clang__)
/* its loops run over the block's samples, a count GCC's -O2 does not
 * vectorise for (rng.c says why); the same operations in the same order */
__attribute__((optimize("tree-vectorize", "vect-cost-model=dynamic")))
#endif
static void s_sample_block(study *s, size_t blk)
{
    const study_sp *sp = s->sp;
    const study_def *d = &s->def;
    const pf_net *net = s->net;
    size_t S = s->S, ns = d->ns, nb = s->nb;
    size_t j0 = blk * STUDY_BLOCK, j1 = j0 + STUDY_BLOCK < S ? j0 + STUDY_BLOCK : S, n = j1 - j0;
    rng_span span = { .seed = d->seed, .sp = s->sp_index, .sample0 = (uint32_t)j0, .stream = RNG_STREAM_FORECAST,
                      .n = n };
    double z[2][STUDY_BLOCK], u[STUDY_BLOCK];
    /* site errors straight into the avail rows, made outputs below */
    if (sp->site_err) rng_mvn_draw_rows(sp->site_err, &span, &s->avail[j0], S);
    else
        for (size_t i = 0; i < ns; i++) memset(&s->avail[i * S + j0], 0, n * sizeof(double));
    size_t draw = sp->site_err ? ns : 0;
    /* bus demand normals, drawn two at a time: draws 2q and 2q + 1 are one
     * Philox block (zq: the pair z holds, none yet), and only those of the
     * pair that are bus draws (the first may be the last site's, the
     * second past the last bus) */
    size_t zq = SIZE_MAX, dend = draw;
    if (sp->bus_demand_sd)
        for (size_t b = 0; b < nb; b++) dend += sp->bus_demand_sd[net->bus_row[b]] > 0;
    for (size_t b = 0; b < nb; b++) {
        int row = net->bus_row[b];
        double p = sp->bus_fixed ? sp->bus_fixed[row] : 0;
        double dem = sp->bus_demand ? sp->bus_demand[row] : 0;
        double *inj = &s->inj[b * S + j0];
        double sd = sp->bus_demand_sd ? sp->bus_demand_sd[row] : 0;
        if (!(sd > 0)) {
            for (size_t k = 0; k < n; k++) inj[k] = p - dem;
            continue;
        }
        if (draw / 2 != zq) {
            zq = draw / 2;
            size_t hi = 2 * zq + 2 < dend ? 2 * zq + 2 : dend;
            rng_normal_rows(&span, draw, hi - draw, z[draw % 2], STUDY_BLOCK);
        }
        const double *zb = z[draw % 2];
        for (size_t k = 0; k < n; k++) inj[k] = p - (dem + sd * zb[k]);
        draw++;
    }
    /* member of each sample (its own stream) */
    size_t *member = NULL, mbuf[STUDY_BLOCK];
    if (s->nmember) {
        span.stream = RNG_STREAM_MEMBER;
        rng_uniform_rows(&span, 0, 1, u, STUDY_BLOCK);
        for (size_t k = 0; k < n; k++) {
            size_t m = (size_t)(u[k] * (double)s->nmember);
            mbuf[k] = m < s->nmember ? m : s->nmember - 1;
        }
        member = mbuf;
    }
    for (size_t i = 0; i < ns; i++) {
        double cap = s->site_cap[i], *av = &s->avail[i * S + j0], *inj = &s->inj[(size_t)s->site_bus[i] * S + j0];
        /* the member's mean, else the forecast's, plus the error */
        if (member)
            for (size_t k = 0; k < n; k++) av[k] += s->member_mean[member[k] * ns + i];
        else
            for (size_t k = 0; k < n; k++) av[k] += sp->site_mean[i];
        for (size_t k = 0; k < n; k++) {
            double a = av[k];
            a = a < 0 ? 0 : (a > cap ? cap : a);
            av[k] = a;
            inj[k] += a;
        }
    }
    /* At most one credible fault (N-1), drawn from its own stream so the
     * forecast draws do not shift when fault probabilities change. */
    span.stream = RNG_STREAM_FAULT;
    rng_uniform_rows(&span, 0, 1, u, STUDY_BLOCK);
    for (size_t k = 0; k < n; k++) {
        double cum = 0;
        int st = 0;
        for (size_t f = 0; f < d->nf; f++) {
            if (!sp->topo->valid[1 + f]) continue;
            cum += sp->fault_prob[f];
            if (u[k] < cum) {
                st = 1 + (int)f;
                break;
            }
        }
        s->state[j0 + k] = st;
    }
}

/* Loading of flow f against a constraint: signed for one-way limits. */
static double s_loading(const study_constraint *k, double f)
{
    return k->one_way ? f : fabs(f);
}

static pcf_rc s_anm_block(study *s, study_thread *th, size_t blk, pcf_error *err)
{
    const study_sp *sp = s->sp;
    const study_def *d = &s->def;
    const study_topology *t = sp->topo;
    size_t S = s->S, ns = d->ns, nc = d->nc, nf = d->nf;
    size_t j0 = blk * STUDY_BLOCK, j1 = j0 + STUDY_BLOCK < S ? j0 + STUDY_BLOCK : S;
    double *bsc = &s->blk_site_curt[blk * nc * ns], *bsc2 = &s->blk_site_curt2[blk * nc * ns];
    int *bsn = &s->blk_site_n[blk * nc * ns];
    int *bbind = &s->blk_binding[blk * nc * nf];
    memset(bsc, 0, nc * ns * sizeof(double));
    memset(bsc2, 0, nc * ns * sizeof(double));
    memset(bsn, 0, nc * ns * sizeof(int));
    memset(bbind, 0, nc * nf * sizeof(int));
    int screen = s->ac_mode == STUDY_AC_SCREEN;
    double t_block = s_clock(), t_flow = 0;
    /* this block's flows, fb[r * STUDY_BLOCK + j - j0], the constant term
     * included (inj's row of ones) */
    size_t rows = s->flow_nrows, nj = j1 - j0, B = STUDY_BLOCK;
    double *fb = th->fb;
    if (rows)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)nj, (int)s->nb + 1, 1.0,
                    s->flow_mat, (int)s->nb + 1, &s->inj[j0], (int)S, 0.0, fb, (int)B);
    if (s->fl_want)         /* s_fault_loading reads every sample's */
        for (size_t r = 0; r < s->nst * nc; r++) memcpy(&s->flow[r * S + j0], &fb[r * B], nj * sizeof(double));
    /* Intact flows, and the worst credible fault of each constraint before
     * the ANM, row by row over the block: the flow rows are read in order
     * instead of a stride of S per fault and sample.  Each (c, j) still
     * compares the faults in index order, so the figures do not change. */
    for (size_t c = 0; c < nc; c++) {
        const study_constraint *k = &d->constraints[c];
        double worst[STUDY_BLOCK], *wf = &s->flow_fault[c * S + j0];
        int wk[STUDY_BLOCK];
        memcpy(&s->flow_intact[c * S + j0], &fb[c * B], nj * sizeof(double));
        for (size_t j = 0; j < nj; j++) {
            worst[j] = -HUGE_VAL;
            wf[j] = NAN;
            wk[j] = -1;
        }
        for (size_t f = 0; f < nf; f++) {
            if (!t->valid[1 + f]) continue;
            const double *fl = &fb[((1 + f) * nc + c) * B];
            for (size_t j = 0; j < nj; j++) {
                double l = s_loading(k, fl[j]);
                if (l > worst[j]) {
                    worst[j] = l;
                    wf[j] = fl[j];
                    wk[j] = (int)f;
                }
            }
        }
        for (size_t j = 0; j < nj; j++)
            if (wk[j] >= 0) bbind[c * nf + (size_t)wk[j]]++;
    }
    t_flow += s_clock() - t_block;
    for (size_t j = j0; j < j1; j++) {
        int st = s->state[j];
        for (size_t c = 0; c < nc; c++) {
            th->flow[c] = fb[((size_t)st * nc + c) * B + j - j0];
            double lim = st == 0 ? sp->limit_intact[c] : sp->limit_fault[c];
            th->lim_f[c] = lim;
            th->lim_r[c] = s_rev_limit(s, c, lim);
        }
        const unsigned char *sdead = &s->site_dead[(size_t)st * ns];
        for (size_t i = 0; i < ns; i++) th->avail[i] = sdead[i] ? 0 : s->avail[i * S + j];
        /* linear (voltage) constraints' rows (s_linear) over the screened
         * AC ones or the topology's DC ones */
        const double *sens = s->sens_sp ? s->sens_sp : screen ? s->lin_sens : t->sens;
        anm_input in = { th->flow, th->lim_f, th->lim_r, &sens[(size_t)st * nc * ns], th->avail };
        anm_result res;
        pcf_rc rc = PCF_OK;
        int ac_used = 0, ac_tried = 0;
        /* screened: a state without an operating point (its mean injection
         * has no AC solution) is drawn rarely; its samples all get the full
         * solve rather than DC flows */
        if (s->ac_mode != STUDY_AC_OFF && (s_ac_wanted(s, th) || (screen && !s->lin_ok[st]))) {
            ac_tried = 1;
            th->ac_samples++;
            double t0 = s_clock();
            if ((rc = s_ac_sample(s, th, j, st, &in, &res, &ac_used, err)) != PCF_OK) return rc;
            t_flow += s_clock() - t0;
            th->ac_fallbacks += !ac_used;
            if (ac_used && st == 0)
                for (size_t c = 0; c < nc; c++) s->flow_intact[c * S + j] = th->ac_flow[c];
        }
        if (screen && !ac_used && st == 0 && s->flow_lin2 && s_ac_acts(s, th)) {
            /* intact and the ANM will act: the curtailment from the tangent
             * at the curtailed mean, near where this sample ends
             * (s_linearise_curtailed) */
            for (size_t c = 0; c < nc; c++) {
                double f = fb[(s->nst * nc + c) * B + j - j0];    /* s_flow_model's tangent rows */
                /* a linear (voltage) constraint keeps its own model, unless
                 * the tangent is its AC voltage's (study_set_voltage_bus) */
                th->ac_flow[c] = d->constraints[c].nbr == 0 && !s_measured(s, c) ? th->flow[c] : f;
            }
            in.flow = th->ac_flow;
            in.sens = s->lin2_sens;
        }
        if (!ac_used && (rc = anm_solve(th->a, &in, &res, err)) != PCF_OK) return rc;
        if (screen && !ac_tried && st != 0 && res.total_curt_mw > 0) {
            /* a fault drawn and the ANM acting: rare, solved in full (once:
             * a sample whose first full solve failed would fail the same way
             * and be counted twice) */
            th->ac_samples++;
            double t0 = s_clock();
            if ((rc = s_ac_sample(s, th, j, st, &in, &res, &ac_used, err)) != PCF_OK) return rc;
            t_flow += s_clock() - t0;
            th->ac_fallbacks += !ac_used;
            if (!ac_used && (rc = anm_solve(th->a, &in, &res, err)) != PCF_OK) return rc;
        }
        int unres = !res.converged;
        for (size_t c = 0; c < nc; c++) {
            double cc = 0;
            /* most samples curtail nothing for most constraints: skip a
             * row that is all zero (adding +-0.0 would change no sum); a
             * constraint that did not act curtailed nothing (anm.h) */
            const double *row = &res.curt_by[c * ns];
            size_t i0 = res.acted[c] ? 0 : ns;
            while (i0 < ns && row[i0] == 0) i0++;
            for (size_t i = i0; i < ns; i++) {
                double v = row[i];
                cc += v;
                bsc[c * ns + i] += v;
                bsc2[c * ns + i] += v * v;
                bsn[c * ns + i] += v > MCSTAT_CURTAILED_MW;
            }
            s->curt_c[c * S + j] = cc;
            s->acted[c * S + j] = res.acted[c];
            unres |= res.residual[c] > 0;
        }
        s->unresolved[j] = (unsigned char)unres;
        for (size_t i = 0; i < ns; i++) {
            double out = res.site_out[i] < 0 ? 0 : res.site_out[i];
            if ((rc = mcstat_record(s->stats, i, j, out, res.site_curt[i], err)) != PCF_OK) return rc;
        }
    }
    th->t.power_flow += t_flow;
    th->t.anm += s_clock() - t_block - t_flow;
    return PCF_OK;
}

static void s_aggregate_constraint(study *s, size_t c, double *buf, double *scratch, size_t *fault_acts);
static void s_lin_mean(study *s, size_t i);
static pcf_rc s_lin_state(study *s, study_thread *th, size_t st, pcf_error *err);

static void *s_worker(void *arg)
{
    study_thread *th = arg;
    study *s = th->st;
    int phase = s->phase;
    /* phases 1 and 2 take blocks of samples, phase 3 the constraints and
     * then the sites to summarise (each summary depends on its constraint
     * or site alone: any thread may do it; the constraints, the larger
     * items, go first so the last items to finish are small) */
    size_t nc = s->def.nc, n = phase == 3 ? nc + s->def.ns : s->nblocks;
    if (phase == 4) n = s->nb + s->def.ns;      /* STUDY_AC_SCREEN: the mean rows */
    if (phase == 5) n = s->nst;                 /* and the states' operating points */
    double t0 = s_clock();
    for (;;) {
        size_t blk = atomic_fetch_add(&s->next_block, 1);
        if (blk >= n || th->rc != PCF_OK) break;
        if (phase == 4) s_lin_mean(s, blk);
        else if (phase == 5) th->rc = s_lin_state(s, th, blk, &th->err_msg);
        else if (phase == 1) s_sample_block(s, blk);
        else if (phase == 2) th->rc = s_anm_block(s, th, blk, &th->err_msg);
        else if (blk < nc) s_aggregate_constraint(s, blk, th->sortbuf, th->mscratch, th->fault_acts);
        else th->rc = mcstat_summarise_r(s->stats, blk - nc, s->sp->hours, th->mscratch, &s->site_res[blk - nc],
                                         &th->err_msg);
    }
    /* phase 2 times its parts itself (s_anm_block) */
    double dt = s_clock() - t0;
    if (phase == 1) th->t.sampling += dt;
    else if (phase == 3) th->t.aggregation += dt;
    else if (phase != 2) th->t.power_flow += dt;
    return NULL;
}

static pcf_rc s_parallel(study *s, int phase, pcf_error *err)
{
    s->phase = phase;        /* pthread_create orders this before the workers read it */
    atomic_store(&s->next_block, 0);
    int n = s->def.threads;
    pthread_t tid[STUDY_MAX_THREADS];
    unsigned char started[STUDY_MAX_THREADS] = { 0 };
    for (int i = 0; i < n; i++) {
        s->th[i].rc = PCF_OK;
        s->th[i].ac_samples = s->th[i].ac_fallbacks = 0;
    }
    /* A thread that cannot start leaves its share to the others: blocks are
     * taken from a shared counter, so the result is the same. */
    for (int i = 1; i < n; i++) started[i] = pthread_create(&tid[i], NULL, s_worker, &s->th[i]) == 0;
    s_worker(&s->th[0]);
    for (int i = 1; i < n; i++)
        if (started[i]) pthread_join(tid[i], NULL);
    for (int i = 0; i < n; i++) {
        s->ac_samples += s->th[i].ac_samples;
        s->ac_fallbacks += s->th[i].ac_fallbacks;
    }
    for (int i = 0; i < n; i++)
        if (s->th[i].rc != PCF_OK) {
            if (err) *err = s->th[i].err_msg;
            return s->th[i].rc;
        }
    return PCF_OK;
}

/* ---- aggregation ------------------------------------------------------------ */

/* The quantile q_p as mcstat_quantile defines it, by selection (the rank
 * rule is mcstat's; tests/test_study.c checks the two agree). */
double study_quantile(double *v, size_t n, double p)
{
    return mcstat_select(v, n, mcstat_quantile_index(n, p));
}

#define STUDY_MAX_RANKS (3 * STUDY_NLEVELS + 9)    /* loading and flow levels together */

/* rank[3i] the rank of the level p[i] and rank[3i + 1], [3i + 2] the order
 * statistics that bracket it (mcstat.h), for n samples. */
static void s_level_ranks(size_t n, const double *p, size_t m, size_t *rank)
{
    for (size_t i = 0; i < m; i++) {
        rank[3 * i] = mcstat_quantile_index(n, p[i]);
        mcstat_quantile_se_index(n, p[i], &rank[3 * i + 1], &rank[3 * i + 2]);
    }
}

/* val[i] = the rank[i]-th smallest of the n samples, which are nzero
 * values +0.0, the smallest of them, and v[0..n - nzero) (curtailment is
 * mostly zero: selecting among the rest alone is exact).  scratch: [n]. */
static void s_ranks(const double *v, size_t n, size_t nzero, const size_t *rank, size_t nr, double *val,
                    double *scratch)
{
    size_t k[STUDY_MAX_RANKS] = {0}, at[STUDY_MAX_RANKS] = {0}, m = 0;
    double sel[STUDY_MAX_RANKS] = {0};
    for (size_t i = 0; i < nr; i++) {
        if (rank[i] < nzero) {
            val[i] = 0.0;
            continue;
        }
        k[m] = rank[i] - nzero;
        at[m++] = i;
    }
    if (m) mcstat_ranks(v, n - nzero, k, m, sel, scratch);
    for (size_t i = 0; i < m; i++) val[at[i]] = sel[i];
}

/* For each level p[i] (m <= STUDY_NLEVELS): q[i] = q_p and lo[i], hi[i] the
 * order statistics that bracket it (mcstat.h), from one multi-rank
 * selection; v as s_ranks takes it. */
static void s_quantiles_se(const double *v, size_t n, size_t nzero, const double *p, size_t m, double *q,
                           double *lo, double *hi, double *scratch)
{
    size_t rank[STUDY_MAX_RANKS] = {0};
    double val[STUDY_MAX_RANKS] = {0};
    s_level_ranks(n, p, m, rank);
    s_ranks(v, n, nzero, rank, 3 * m, val, scratch);
    for (size_t i = 0; i < m; i++) {
        q[i] = val[3 * i];
        lo[i] = val[3 * i + 1];
        hi[i] = val[3 * i + 2];
    }
}

static const double s_flow_levels[3] = { 0.10, 0.50, 0.90 };

/* P10/P50/P90 of v[S] with their SEs.  scratch: [S]. */
static void s_flow_quantiles(const study *s, double *scratch, const double *v, double *p10, double *p50, double *p90,
                             double *se)
{
    double q[3], lo[3], hi[3];
    s_quantiles_se(v, s->S, 0, s_flow_levels, 3, q, lo, hi, scratch);
    *p10 = q[0];
    *p50 = q[1];
    *p90 = q[2];
    for (int i = 0; i < 3; i++) se[i] = (hi[i] - lo[i]) / (2 * MCSTAT_Z95);
}

/* 1 when every v[i] > 0, -1 when every v[i] < 0, else 0 (zeros, NaNs,
 * both signs): where fabs is the identity or an exact negation. */
static int s_one_sign(const double *v, size_t n)
{
    size_t pos = 0, neg = 0;
    for (size_t i = 0; i < n; i++) {
        pos += v[i] > 0;
        neg += v[i] < 0;
    }
    return pos == n ? 1 : neg == n ? -1 : 0;
}

/* A proportion k / n with its binomial SE, as mcstat and p_acts use. */
static void s_proportion(size_t k, size_t n, double *p, double *se)
{
    *p = (double)k / (double)n;
    *se = sqrt(*p * (1 - *p) / (double)n);
}

/* The binding fault of constraint c and P(ANM acts with it in force). */
static void s_binding(const study *s, size_t *fault_acts, size_t c, study_constraint_result *r)
{
    size_t S = s->S, nc = s->def.nc, nf = s->def.nf;
    memset(fault_acts, 0, nf * sizeof(size_t));
    for (size_t j = 0; j < S; j++)
        if (s->acted[c * S + j] && s->state[j] > 0) fault_acts[s->state[j] - 1]++;
    r->binding_fault = -1;
    size_t best = 0;
    for (size_t f = 0; f < nf; f++)     /* ties: lowest index */
        if (fault_acts[f] > best) {
            best = fault_acts[f];
            r->binding_fault = (int)f;
        }
    if (r->binding_fault < 0) {
        /* The ANM never acted under a fault: name the fault that most often
         * loads the constraint most, the one to watch. */
        int most = 0;
        for (size_t f = 0; f < nf; f++) {
            int cnt = 0;
            for (size_t b = 0; b < s->nblocks; b++) cnt += s->blk_binding[(b * nc + c) * nf + f];
            if (cnt > most) {
                most = cnt;
                r->binding_fault = (int)f;
            }
        }
    }
    s_proportion(best, S, &r->p_binding, &r->p_binding_se);
}

/* Loading quantiles of constraint c under each credible fault in force in
 * every sample (study_fault_loading): rows 1 + f of the flow matrix hold
 * them for all samples whatever state each drew.  A fault that leaves the
 * constraint's row of flow factors as it is intact (a branch far away, or
 * on another radial spur: most faults for most constraints) leaves every
 * sample's loading as it is too, so the intact quantiles lq (NULL: not
 * known, e.g. replaced by AC flows) stand for its selection.  buf,
 * scratch: [S]. */
static void s_fault_loading(const study *s, size_t c, const double *lq, double *buf, double *scratch)
{
    size_t S = s->S, nc = s->def.nc, nf = s->def.nf, nb = s->nb;
    const double *row0 = &s->sp->topo->cptdf[c * nb];
    const study_constraint *k = &s->def.constraints[c];
    size_t rank[STUDY_NLEVELS], nr = 0;
    int lev[STUDY_NLEVELS];
    for (int l = 0; l < STUDY_NLEVELS; l++)
        if (s->fl_level[l]) {
            lev[nr] = l;
            rank[nr++] = mcstat_quantile_index(S, study_levels[l]);
        }
    for (size_t f = 0; f < nf; f++) {
        study_fault_loading *o = &s->fl[c * nf + f];
        if (!s->sp->topo->valid[1 + f]) {
            for (int l = 0; l < STUDY_NLEVELS; l++) o->q[l] = NAN;
            o->dir = 1;
            continue;
        }
        const double *fl = &s->flow[((1 + f) * nc + c) * S];
        int same = lq && s->lin_of[c] < 0 &&
                   memcmp(&s->sp->topo->cptdf[((1 + f) * nc + c) * nb], row0, nb * sizeof(double)) == 0;
        double sum = 0;
        for (size_t j = 0; j < S; j++) sum += fl[j];
        o->dir = k->one_way || sum >= 0 ? 1 : -1;
        if (same) {
            memcpy(o->q, lq, sizeof o->q);
            continue;
        }
        for (size_t j = 0; j < S; j++) buf[j] = s_loading(k, fl[j]);
        double q[STUDY_NLEVELS];
        s_ranks(buf, S, 0, rank, nr, q, scratch);
        for (int l = 0; l < STUDY_NLEVELS; l++) o->q[l] = NAN;
        for (size_t i = 0; i < nr; i++) o->q[lev[i]] = q[i];
    }
}

/* The figures of constraint c from its sample arrays.  Each constraint
 * reads its own rows and writes its own result with the same arithmetic in
 * the same order wherever it runs, so the worker threads share them out
 * (phase 3) without changing a bit.  buf, scratch: [S], fault_acts: [nf]. */
static void s_aggregate_constraint(study *s, size_t c, double *buf, double *scratch, size_t *fault_acts)
{
    const study_def *d = &s->def;
    const study_sp *sp = s->sp;
    size_t S = s->S, nc = d->nc, ns = d->ns, nf = d->nf;
    double h = sp->hours, n = (double)S, twoz = 2 * MCSTAT_Z95;
    study_constraint_result *r = &s->cres[c];
    const study_constraint *k = &d->constraints[c];
    r->limit_mw = sp->limit_intact[c];
    r->limit_fault_mw = sp->limit_fault[c];
    /* Intact flow quantiles, and the loading quantiles for the blocks: the
     * loading is the flow itself for a one-way limit or when every flow is
     * positive, and minus it when every flow is negative, so then one
     * multi-rank selection gives both (rank r of the loading is rank
     * S - 1 - r of the flow, negated) */
    const double *fi = &s->flow_intact[c * S];
    double lq[STUDY_NLEVELS], llo[STUDY_NLEVELS], lhi[STUDY_NLEVELS];
    int dir = k->one_way ? 1 : s_one_sign(fi, S);
    if (dir) {
        size_t rank[STUDY_MAX_RANKS] = {0};
        double val[STUDY_MAX_RANKS] = {0};
        s_level_ranks(S, s_flow_levels, 3, rank);
        s_level_ranks(S, study_levels, STUDY_NLEVELS, rank + 9);
        if (dir < 0)
            for (size_t i = 9; i < 9 + 3 * STUDY_NLEVELS; i++) rank[i] = S - 1 - rank[i];
        s_ranks(fi, S, 0, rank, 9 + 3 * STUDY_NLEVELS, val, scratch);
        r->flow_p10 = val[0];
        r->flow_p50 = val[3];
        r->flow_p90 = val[6];
        for (int i = 0; i < 3; i++) r->flow_se[i] = (val[3 * i + 2] - val[3 * i + 1]) / twoz;
        for (int l = 0; l < STUDY_NLEVELS; l++) {
            const double *x = &val[9 + 3 * l];
            lq[l] = dir > 0 ? x[0] : -x[0];
            llo[l] = dir > 0 ? x[1] : -x[1];
            lhi[l] = dir > 0 ? x[2] : -x[2];
        }
    } else {
        s_flow_quantiles(s, scratch, fi, &r->flow_p10, &r->flow_p50, &r->flow_p90, r->flow_se);
        for (size_t j = 0; j < S; j++) buf[j] = s_loading(k, fi[j]);
        s_quantiles_se(buf, S, 0, study_levels, STUDY_NLEVELS, lq, llo, lhi, scratch);
    }
    r->has_fault_flow = 0;
    for (size_t f = 0; f < nf; f++) r->has_fault_flow |= sp->topo->valid[1 + f];
    if (r->has_fault_flow) {
        s_flow_quantiles(s, scratch, &s->flow_fault[c * S], &r->fault_p10, &r->fault_p50, &r->fault_p90, r->fault_se);
    } else {
        r->fault_p10 = r->fault_p50 = r->fault_p90 = NAN;
        r->fault_se[0] = r->fault_se[1] = r->fault_se[2] = NAN;
    }
    s_binding(s, fault_acts, c, r);
    if (s->fl_want && s->fl_want[c]) s_fault_loading(s, c, s->ac_mode == STUDY_AC_OFF ? lq : NULL, buf, scratch);
    /* one pass: P(acts), the moments, and the positive curtailments
     * gathered for their quantiles (the rest are +0.0: the per-sample sum
     * starts at +0.0, and x + -0.0 is x) */
    size_t acts = 0, npos = 0;
    int negative = 0;
    double sum = 0, sum2 = 0;
    const double *cv = &s->curt_c[c * S];
    for (size_t j = 0; j < S; j++) {
        acts += s->acted[c * S + j];
        double v = cv[j];
        sum += v;
        sum2 += v * v;
        if (v > 0) buf[npos++] = v;
        else negative |= !(v == 0);     /* below zero or NaN: select among all */
    }
    s_proportion(acts, S, &r->p_acts, &r->p_acts_se);
    double mean = sum / n, var = n > 1 ? (sum2 - n * mean * mean) / (n - 1) : 0;
    r->curtail_mwh = mean * h;
    r->curtail_mwh_se = sqrt(var > 0 ? var / n : 0) * h;
    double q[STUDY_NLEVELS], lo[STUDY_NLEVELS], hi[STUDY_NLEVELS];
    if (negative) {
        s_quantiles_se(cv, S, 0, study_levels, STUDY_NLEVELS, q, lo, hi, scratch);
    } else {
        s_quantiles_se(buf, S, S - npos, study_levels, STUDY_NLEVELS, q, lo, hi, scratch);
    }
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        r->curtail_mw[l] = q[l];
        r->curtail_mw_se[l] = (hi[l] - lo[l]) / twoz;
    }
    /* blocks: headroom from the loading quantile; headroom is monotone in
     * the loading, so the order statistics that bracket the loading
     * quantile bracket the headroom too */
    double cap = r->limit_mw * (k->trim > 0 ? k->trim : 1);
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        double room = cap - lq[l], rlo = cap - lhi[l], rhi = cap - llo[l];
        r->headroom_mw[l] = room > 0 ? room : 0;
        r->headroom_se[l] = ((rhi > 0 ? rhi : 0) - (rlo > 0 ? rlo : 0)) / twoz;
    }
    study_site_curt *site = &s->cres_site[c * ns];
    for (size_t i = 0; i < ns; i++) {
        double t = 0, t2 = 0;
        size_t cnt = 0;
        for (size_t b = 0; b < s->nblocks; b++) {
            size_t at = (b * nc + c) * ns + i;
            t += s->blk_site_curt[at];
            t2 += s->blk_site_curt2[at];
            cnt += (size_t)s->blk_site_n[at];
        }
        double m = t / n, v = n > 1 ? (t2 - n * m * m) / (n - 1) : 0;
        site[i].mwh = m * h;
        site[i].mwh_se = sqrt(v > 0 ? v / n : 0) * h;
        s_proportion(cnt, S, &site[i].p, &site[i].p_se);
    }
    r->site = site;
}

/* The SP's flow model as the blocks use it, flow_mat: per state and
 * constraint a row of flow per MW injected at each bus and the constant
 * term as one more column (times inj's row of ones).  The rows are the
 * screened AC linearisation or the topology's DC rows, each linear
 * (voltage) constraint's own model in its rows (the others' rows are 0
 * there), then the intact state's second tangent when there is one.  With
 * linear constraints the SP's sensitivities of every state are formed here
 * as well (the screened AC ones or the topology's, the linear constraints'
 * rows in place).  Also which sites each state de-energises. */
static void s_flow_model(study *s, const study_sp *sp)
{
    const study_def *d = &s->def;
    const study_topology *t = sp->topo;
    size_t nc = d->nc, ns = d->ns, nb = s->nb, rows = s->nst * nc, w = nb + 1;
    int screen = s->ac_mode == STUDY_AC_SCREEN;
    const double *src = screen ? s->lin_cptdf : t->cptdf;
    for (size_t r = 0; r < rows; r++) {
        memcpy(&s->flow_mat[r * w], &src[r * nb], nb * sizeof(double));
        s->flow_mat[r * w + nb] = screen ? s->lin_off[r] : 0;
    }
    /* the intact state's second tangent (s_linearise_curtailed), formed
     * with the others for the samples the ANM acts on */
    s->flow_lin2 = screen && s->lin2_ok;
    s->flow_nrows = rows + (s->flow_lin2 ? nc : 0);
    for (size_t c = 0; s->flow_lin2 && c < nc; c++) {
        memcpy(&s->flow_mat[(rows + c) * w], &s->lin2_cptdf[c * nb], nb * sizeof(double));
        s->flow_mat[(rows + c) * w + nb] = s->lin2_off[c];
    }
    for (size_t st = 0; st < s->nst; st++)
        for (size_t i = 0; i < ns; i++)
            s->site_dead[st * ns + i] = t->dead[st * t->nbus_case + (size_t)s->net->bus_row[s->site_bus[i]]];
    if (!s->nlin) return;
    memcpy(s->sens_sp, screen ? s->lin_sens : t->sens, s->nst * nc * ns * sizeof(double));
    for (size_t st = 0; st < s->nst; st++) {
        const unsigned char *dead = &t->dead[st * t->nbus_case];
        for (size_t c = 0; c < nc; c++) {
            if (s->lin_of[c] < 0) continue;
            size_t i = st * s->nlin + (size_t)s->lin_of[c];
            const double *row = &s->lin_row[i * nb];
            double *r = &s->flow_mat[(st * nc + c) * w];
            for (size_t b = 0; b < nb; b++) r[b] = dead[s->net->bus_row[b]] ? 0 : row[b];
            r[nb] = s->vlin_off[i];
            for (size_t k = 0; k < ns; k++) s->sens_sp[(st * nc + c) * ns + k] = r[s->site_bus[k]];
            /* the screened mode's second tangent (intact) takes them too,
             * unless it linearised the measured voltage itself */
            if (st == 0 && screen && s->lin2_ok && !s_measured(s, c))
                memcpy(&s->lin2_sens[c * ns], &s->sens_sp[c * ns], ns * sizeof(double));
        }
    }
}

/* STUDY_AC_SCREEN: per state, the AC operating point at the SP's mean
 * injections (the samples' mean, summed in sample order: the same for any
 * thread count) and the constraint flows linearised there.  Dead buses
 * inject nothing and their columns stay zero, as in the DC rows; a state
 * that cannot be solved keeps its DC rows. */
/* The intact state's second point: the mean sample (mean injections and
 * outputs) after the ANM has acted on it with the first linearisation.
 * Where the mean is above a limit, curtailed samples end near this point,
 * far from the first: the tangent there gives their curtailment without
 * the curvature error of the first (losses fall as the flow is cut). */
static pcf_rc s_linearise_curtailed(study *s, pcf_error *err)
{
    const study_def *d = &s->def;
    const study_sp *sp = s->sp;
    const study_topology *t = sp->topo;
    size_t nb = s->nb, nc = d->nc, ns = d->ns;
    s->lin2_ok = 0;
    if (!s->lin_ok[0]) return PCF_OK;
    const unsigned char *dead = t->dead;
    study_thread *th = &s->th[0];       /* its scratch is free between phases */
    /* the linear (voltage) constraints act on the mean too, with their own
     * model: their rows over the screened ones in lin2_sens (scratch until
     * the tangent below fills it) */
    memcpy(s->lin2_sens, s->lin_sens, nc * ns * sizeof(double));
    for (size_t c = 0; c < nc; c++) {
        double f = s->lin_off[c];
        for (size_t b = 0; b < nb; b++) f += s->lin_cptdf[c * nb + b] * s->lin_pm[b];
        if (s->lin_of[c] >= 0 && s->lin_row) {
            const double *row = &s->lin_row[(size_t)s->lin_of[c] * nb];
            f = s->vlin_off[s->lin_of[c]];
            for (size_t b = 0; b < nb; b++) f += dead[s->net->bus_row[b]] ? 0 : row[b] * s->lin_pm[b];
            for (size_t i = 0; i < ns; i++)
                s->lin2_sens[c * ns + i] = dead[s->net->bus_row[s->site_bus[i]]] ? 0 : row[s->site_bus[i]];
        }
        th->flow[c] = f;
        th->lim_f[c] = sp->limit_intact[c];
        th->lim_r[c] = s_rev_limit(s, c, sp->limit_intact[c]);
    }
    for (size_t i = 0; i < ns; i++) th->avail[i] = dead[s->net->bus_row[s->site_bus[i]]] ? 0 : s->lin_am[i];
    anm_input in = { th->flow, th->lim_f, th->lim_r, s->lin2_sens, th->avail };
    anm_result r;
    pcf_rc rc = anm_solve(th->a, &in, &r, err);
    if (rc != PCF_OK || !(r.total_curt_mw > 0)) return rc;
    memcpy(s->lin_p, s->lin_pm, nb * sizeof(double));
    for (size_t b = 0; b < nb; b++)
        if (dead[s->net->bus_row[b]]) s->lin_p[b] = 0;
    for (size_t i = 0; i < ns; i++) s->lin_p[s->site_bus[i]] -= r.site_curt[i];
    /* lin_q holds the last state's: the intact reactive demand again */
    double tanphi = tan(acos(STUDY_AC_DEMAND_PF));
    for (size_t b = 0; b < nb; b++) {
        int row = s->net->bus_row[b];
        double dem = sp->bus_demand ? sp->bus_demand[row] : 0;
        s->lin_q[b] = dead[row] ? 0 : -fabs(dem) * tanphi;
    }
    int ok = 0;
    rc = study_ac_linearise(th->ac, t->id, 0, t->acase, t->ac_out[0], s->lin_p, s->lin_q, dead, s->lin2_cptdf,
                            s->lin2_off, s->lin2_v, s->lin2_v + nb, &ok, err);
    if (rc != PCF_OK || !ok) return rc;
    for (size_t c = 0; c < nc; c++) {
        double *row = &s->lin2_cptdf[c * nb], f = s->lin2_off[c];
        for (size_t b = 0; b < nb; b++) {
            if (dead[s->net->bus_row[b]]) row[b] = 0;
            f -= row[b] * s->lin_p[b];
        }
        s->lin2_off[c] = f;
        for (size_t i = 0; i < ns; i++) s->lin2_sens[c * ns + i] = row[t->site_bus[i]];
    }
    s->lin2_ok = 1;
    return PCF_OK;
}

/* Row i of the mean injections (i < nb) or site outputs: each row summed
 * in sample order by one thread, the same for any thread count. */
static void s_lin_mean(study *s, size_t i)
{
    size_t S = s->S, nb = s->nb;
    const double *x = i < nb ? &s->inj[i * S] : &s->avail[(i - nb) * S];
    double sum = 0;
    for (size_t j = 0; j < S; j++) sum += x[j];
    if (i < nb) s->lin_pm[i] = sum / (double)S;
    else s->lin_am[i - nb] = sum / (double)S;
}

/* The operating point and linearisation of state st, on this thread's AC
 * objects (the answer depends on the state alone). */
static pcf_rc s_lin_state(study *s, study_thread *th, size_t st, pcf_error *err)
{
    const study_def *d = &s->def;
    const study_sp *sp = s->sp;
    const study_topology *t = sp->topo;
    size_t nb = s->nb, nc = d->nc, ns = d->ns;
    double tanphi = tan(acos(STUDY_AC_DEMAND_PF));
    double *rows = &s->lin_cptdf[st * nc * nb], *off = &s->lin_off[st * nc];
    const double *dc = &t->cptdf[st * nc * nb];
    s->lin_ok[st] = 0;
    memcpy(rows, dc, nc * nb * sizeof(double));
    memset(off, 0, nc * sizeof(double));
    if (!t->valid[st]) return PCF_OK;
    const unsigned char *dead = &t->dead[st * t->nbus_case];
    double *p = th->ac_p, *q = th->ac_q;
    for (size_t b = 0; b < nb; b++) {
        int row = s->net->bus_row[b];
        double dem = sp->bus_demand ? sp->bus_demand[row] : 0;
        p[b] = dead[row] ? 0 : s->lin_pm[b];
        q[b] = dead[row] ? 0 : -fabs(dem) * tanphi;
    }
    int ok = 0;
    pcf_rc rc = study_ac_linearise(th->ac, t->id, st, t->acase, t->ac_out[st], p, q, NULL, rows, off,
                                   &s->lin_vm[st * nb], &s->lin_va[st * nb], &ok, err);
    if (rc != PCF_OK) return rc;
    if (!ok) {
        memcpy(rows, dc, nc * nb * sizeof(double));
        return PCF_OK;
    }
    for (size_t c = 0; c < nc; c++) {
        double *r = &rows[c * nb], f = off[c];
        for (size_t b = 0; b < nb; b++) {
            if (dead[s->net->bus_row[b]]) r[b] = 0;
            f -= r[b] * p[b];
        }
        off[c] = f;     /* flow = r . inj + off, exact at the point */
        for (size_t i = 0; i < ns; i++) s->lin_sens[(st * nc + c) * ns + i] = r[t->site_bus[i]];
    }
    s->lin_ok[st] = 1;
    return PCF_OK;
}

static pcf_rc s_linearise(study *s, pcf_error *err)
{
    const study_topology *t = s->sp->topo;
    size_t nc = s->def.nc, ns = s->def.ns;
    s->lin_gen++;           /* new points: the threads' chord factors are stale */
    pcf_rc rc = s_parallel(s, 4, err);
    if (rc == PCF_OK) rc = s_parallel(s, 5, err);
    if (rc != PCF_OK) return rc;
    for (size_t st = 0; st < s->nst; st++)
        if (!s->lin_ok[st]) {
            s->lin_fail += t->valid[st];
            memcpy(&s->lin_sens[st * nc * ns], &t->sens[st * nc * ns], nc * ns * sizeof(double));
        }
    double t0 = s_clock();
    rc = s_linearise_curtailed(s, err);
    s->th[0].t.power_flow += s_clock() - t0;
    return rc;
}

pcf_rc study_run_sp(study *s, uint32_t sp_index, const study_sp *sp, pcf_error *err)
{
    const study_def *d = &s->def;
    if (!sp || !sp->topo || !sp->site_mean || !sp->limit_intact || !sp->limit_fault ||
        (d->nf && !sp->fault_prob) || !(sp->hours > 0))
        return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: missing inputs", sp_index);
    if (sp->topo->nc != d->nc || sp->topo->ns != d->ns || sp->topo->nst != s->nst || sp->topo->nb != s->nb)
        return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: topology built for another study", sp_index);
    if (sp->site_err && rng_mvn_dim(sp->site_err) != d->ns)
        return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: error model has the wrong dimension", sp_index);
    double psum = 0;
    for (size_t k = 0; k < d->nf; k++) {
        double p = sp->fault_prob[k];
        if (!(p >= 0 && p <= 1)) return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: fault %zu probability %g", sp_index, k, p);
        psum += p;
    }
    if (psum > 1) return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: fault probabilities sum to %g > 1", sp_index, psum);
    for (size_t c = 0; c < d->nc; c++)
        if (!(sp->limit_intact[c] > 0) || !(sp->limit_fault[c] > 0) || !isfinite(sp->limit_intact[c]) ||
            !isfinite(sp->limit_fault[c]))
            return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: constraint %zu has no positive limit", sp_index, c);
    for (size_t i = 0; i < d->ns; i++)
        if (!isfinite(sp->site_mean[i]))
            return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: site %zu forecast is not finite", sp_index, i);
    if (s->nlin && !s->lin_row)
        return pcf_error_set(err, PCF_ERR_INVALID, "study: SP %u: no linear model for %zu constraints (study_set_linear)",
                             sp_index, s->nlin);

    s->sp = sp;
    s->topo_last = sp->topo;
    s->sp_index = sp_index;
    s->site_ok = 0;
    mcstat_reset(s->stats);
    pcf_rc rc = s_parallel(s, 1, err);
    if (rc != PCF_OK) return rc;
    if (s->ac_mode == STUDY_AC_SCREEN && (rc = s_linearise(s, err)) != PCF_OK) return rc;
    double t0 = s_clock();
    s_flow_model(s, sp);
    s->th[0].t.power_flow += s_clock() - t0;
    if ((rc = s_parallel(s, 2, err)) != PCF_OK) return rc;
    if ((rc = s_parallel(s, 3, err)) != PCF_OK) return rc;
    s->site_ok = 1;
    return PCF_OK;
}

pcf_rc study_site_result(study *s, size_t site, mcstat_pcf *out, pcf_error *err)
{
    if (site >= s->def.ns) return pcf_error_set(err, PCF_ERR_INVALID, "study: no site %zu", site);
    if (!s->site_ok) return pcf_error_set(err, PCF_ERR_INVALID, "study: no settlement period has been run");
    *out = s->site_res[site];       /* summarised by the threads after the SP */
    return PCF_OK;
}

const study_constraint_result *study_constraint_result_get(const study *s, size_t c)
{
    return c < s->def.nc ? &s->cres[c] : NULL;
}

double study_sens_in(const study *s, size_t state, size_t c, size_t i)
{
    if (state >= s->nst || c >= s->def.nc || i >= s->def.ns || !s->topo_last) return 0;
    /* screened AC: the linearised rows of the last SP */
    const double *sens = s->sens_sp ? s->sens_sp : s->ac_mode == STUDY_AC_SCREEN ? s->lin_sens : s->topo_last->sens;
    return sens[(state * s->def.nc + c) * s->def.ns + i];
}

double study_sens(const study *s, size_t c, size_t i)
{
    return study_sens_in(s, 0, c, i);
}

pcf_rc study_set_members(study *s, size_t nmember, const double *mean, pcf_error *err)
{
    if (nmember && !mean) return pcf_error_set(err, PCF_ERR_INVALID, "study: %zu members without values", nmember);
    for (size_t i = 0; i < nmember * s->def.ns; i++)
        if (!isfinite(mean[i]))
            return pcf_error_set(err, PCF_ERR_INVALID, "study: member %zu site %zu forecast is not finite",
                                 i / s->def.ns, i % s->def.ns);
    s->nmember = nmember;
    s->member_mean = nmember ? mean : NULL;
    return PCF_OK;
}

pcf_rc study_set_linear(study *s, const double *row, const double *off, const double *rev, pcf_error *err)
{
    size_t nrow = s->nst * s->nlin * s->nb, noff = s->nst * s->nlin;
    if (s->nlin && (!row || !off))
        return pcf_error_set(err, PCF_ERR_INVALID, "study: %zu linear constraints without a model", s->nlin);
    for (size_t i = 0; i < nrow + noff; i++) {
        double v = i < nrow ? row[i] : off[i - nrow];
        if (!isfinite(v)) return pcf_error_set(err, PCF_ERR_INVALID, "study: linear model entry %zu is not finite", i);
    }
    for (size_t c = 0; rev && c < s->def.nc; c++)
        if (!(rev[c] >= 0) || !isfinite(rev[c]))
            return pcf_error_set(err, PCF_ERR_INVALID, "study: constraint %zu: reverse limit %g", c, rev[c]);
    s->lin_row = s->nlin ? row : NULL;
    s->vlin_off = s->nlin ? off : NULL;
    s->lin_rev = rev;
    return PCF_OK;
}

pcf_rc study_set_voltage_bus(study *s, const int *bus_row, pcf_error *err)
{
    size_t nc = s->def.nc;
    for (size_t c = 0; bus_row && c < nc; c++) {
        if (s->lin_of[c] < 0) continue;
        int r = bus_row[s->lin_of[c]];
        double kv = s->def.constraints[c].voltage_kv;
        if (r >= 0 && ((size_t)r >= s->net->nbus_case || s->net->row_bus[r] < 0 || !(kv > 0) || !isfinite(kv)))
            return pcf_error_set(err, PCF_ERR_INVALID,
                                 "study: constraint %zu: bus row %d (base %g kV) is not an energised bus of the case", c,
                                 r, kv);
    }
    if (!s->vbus) {
        s->vbus = malloc((nc + 1) * sizeof(int));
        s->vkv = malloc((nc + 1) * sizeof(double));
        if (!s->vbus || !s->vkv) {
            free(s->vbus);
            free(s->vkv);
            s->vbus = NULL;
            s->vkv = NULL;
            return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
        }
    }
    for (size_t c = 0; c < nc; c++) {
        s->vbus[c] = bus_row && s->lin_of[c] >= 0 ? bus_row[s->lin_of[c]] : -1;
        s->vkv[c] = s->def.constraints[c].voltage_kv;
    }
    for (int i = 0; i < s->def.threads; i++)
        if (s->th[i].ac) study_ac_set_voltage(s->th[i].ac, s->vbus, s->vkv);
    return PCF_OK;
}

pcf_rc study_set_ac(study *s, int mode, double band, pcf_error *err)
{
    if (mode != STUDY_AC_OFF && mode != STUDY_AC_BAND && mode != STUDY_AC_ALL && mode != STUDY_AC_SCREEN)
        return pcf_error_set(err, PCF_ERR_INVALID, "study: AC mode %d", mode);
    if ((mode == STUDY_AC_BAND || mode == STUDY_AC_SCREEN) && !(band >= 0 && band <= 1))
        return pcf_error_set(err, PCF_ERR_INVALID, "study: AC band %g is not a fraction 0..1", band);
    if (mode == STUDY_AC_SCREEN && !s->lin_cptdf) {
        size_t nc = s->def.nc, nb = s->nb, nst = s->nst, ns = s->def.ns;
        s->lin_cptdf = malloc((nst * nc * nb + 1) * sizeof(double));
        s->lin_off = malloc((nst * nc + 1) * sizeof(double));
        s->lin_sens = malloc((nst * nc * ns + 1) * sizeof(double));
        s->lin_vm = malloc((nst * nb + 1) * sizeof(double));
        s->lin_va = malloc((nst * nb + 1) * sizeof(double));
        s->lin_ok = calloc(nst + 1, 1);
        s->lin_p = malloc((nb + 1) * sizeof(double));
        s->lin_q = malloc((nb + 1) * sizeof(double));
        s->lin_pm = malloc((nb + 1) * sizeof(double));
        s->lin_am = malloc((ns + 1) * sizeof(double));
        s->lin2_cptdf = malloc((nc * nb + 1) * sizeof(double));
        s->lin2_off = malloc((nc + 1) * sizeof(double));
        s->lin2_sens = malloc((nc * ns + 1) * sizeof(double));
        s->lin2_v = malloc((2 * nb + 1) * sizeof(double));
        if (!s->lin_cptdf || !s->lin_off || !s->lin_sens || !s->lin_vm || !s->lin_va || !s->lin_ok || !s->lin_p ||
            !s->lin_q || !s->lin_pm || !s->lin_am || !s->lin2_cptdf || !s->lin2_off || !s->lin2_sens || !s->lin2_v)
            return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    }
    for (int i = 0; mode != STUDY_AC_OFF && i < s->def.threads; i++)
        if (!s->th[i].ac) {
            pcf_rc rc = s_ac_thread(s, &s->th[i], err);
            if (rc != PCF_OK) return rc;
        }
    s->ac_mode = mode;
    s->ac_band = band;
    return PCF_OK;
}

pcf_rc study_set_fault_loading(study *s, const unsigned char *want, double p, pcf_error *err)
{
    size_t n = s->def.nc * s->def.nf;
    if (!(p == 0 || (p >= study_levels[0] && p <= study_levels[STUDY_NLEVELS - 1])))
        return pcf_error_set(err, PCF_ERR_INVALID, "study: fault loading level %g outside %g..%g", p,
                             study_levels[0], study_levels[STUDY_NLEVELS - 1]);
    if (want && !s->fl && !(s->fl = calloc(n + 1, sizeof *s->fl)))
        return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory");
    /* the fault loadings read every sample's flows in every state: the
     * whole matrix, kept only for them (s_anm_block) */
    if (want && !s->flow && !(s->flow = malloc((s->nst * s->def.nc + 1) * s->S * sizeof(double))))
        return pcf_error_set(err, PCF_ERR_NOMEM, "study: out of memory for the fault loadings' flows");
    /* the level itself when it is one, else the two around it (trade.c
     * interpolates between them) */
    for (int l = 0; l < STUDY_NLEVELS; l++) {
        const double *v = study_levels;
        s->fl_level[l] = p == 0 || fabs(p - v[l]) < 1e-12 || (l > 0 && p > v[l - 1] && p < v[l]) ||
                         (l + 1 < STUDY_NLEVELS && p > v[l] && p < v[l + 1]);
    }
    s->fl_want = want;
    return PCF_OK;
}

const study_fault_loading *study_fault_loading_get(const study *s, size_t c)
{
    return c < s->def.nc && s->fl_want && s->fl_want[c] ? &s->fl[c * s->def.nf] : NULL;
}

void study_ac_counts(const study *s, size_t *samples, size_t *fallbacks)
{
    *samples = s->ac_samples;
    *fallbacks = s->ac_fallbacks;
}

void study_times_get(const study *s, study_times *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < s->def.threads; i++) {
        out->sampling += s->th[i].t.sampling;
        out->power_flow += s->th[i].t.power_flow;
        out->anm += s->th[i].t.anm;
        out->aggregation += s->th[i].t.aggregation;
    }
}

size_t study_ac_lin_failures(const study *s)
{
    return s->lin_fail;
}

double study_unresolved_share(const study *s)
{
    size_t n = 0;
    for (size_t j = 0; j < s->S; j++) n += s->unresolved[j];
    return s->S ? (double)n / (double)s->S : 0;
}
