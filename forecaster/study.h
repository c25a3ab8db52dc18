/*
 * study.h -- the Monte-Carlo study of one run: sample, flow, emulate the ANM,
 * aggregate (DESIGN.md section 5, steps 2 to 5).
 *
 * The study is pure computation: the engine (engine.c) loads the zone and the
 * forecasts from PostgreSQL, describes them here as plain arrays, and writes
 * the results back.  Nothing in this module knows about SQL, files or time
 * zones, so it can be validated against closed-form answers (tests/test_study.c).
 *
 * Network states.  A topology is the zone's network with the planned outages
 * of some settlement periods applied (study_topology_new builds it from a
 * MATPOWER case and the case rows taken out).  Each topology holds one state
 * for the intact network and one per credible fault (N-1 of each monitored
 * branch).  A state is reduced to what the ANM needs: for every constraint,
 * its flow per MW injected at every bus (a row of "constraint PTDF", the
 * signed sum of the PTDF rows of the branches it monitors; after a fault,
 * PTDF + LODF(:,k) PTDF(k,:)), and the set of buses that are de-energised
 * because the outage islands them (they inject nothing; sites there deliver
 * nothing, which is lost output but not ANM curtailment).  Outages that
 * would island part of the network are never solved as if connected: the
 * islanded branch is kept in the matrix with zero injection on its far side,
 * which gives exactly the flows of the remaining network.
 *
 * One settlement period, S samples.  Sample j of SP t draws, from counter-
 * based streams keyed by (seed, t, j) (rng.h), so results are bit-identical
 * for any thread count:
 *   - every site's available output: mean + correlated Gaussian error,
 *     clipped to [0, export capacity] (G100);
 *   - every bus's demand: mean + independent Gaussian error;
 *   - the network state: intact, or credible fault k with probability p_k
 *     (at most one fault: N-1; sum p_k < 1 is checked).
 * Flows of every constraint in every state are a matrix product per SP
 * (states*constraints x buses times buses x samples), formed one block of
 * samples at a time (BLAS dgemm) by the thread that then runs the ANM on
 * those samples.  The ANM
 * (anm.h) then acts on the sampled state with the limits that apply in it:
 * intact limits (PEL or rating) in the intact state, post-fault ratings after
 * a fault.  Statistics per site come from mcstat.h; per constraint this
 * module computes the statement and the blocks.
 *
 * Memory: study_new allocates everything a run needs (per-SP sample matrices,
 * one anm object per thread); study_run_sp allocates nothing.  Results of an
 * SP stay valid until the next study_run_sp.
 */
#ifndef PCF_STUDY_H
#define PCF_STUDY_H

#include <stddef.h>
#include <stdint.h>

#include "anm.h"
#include "error.h"
#include "mcstat.h"
#include "mpcase.h"
#include "rng.h"
#include "study_ac.h"

#define STUDY_MAX_THREADS 64
#define STUDY_NLEVELS 5          /* constraint block confidence levels */
extern const double study_levels[STUDY_NLEVELS];   /* 0.5 0.8 0.9 0.95 0.99 */

/* A monitored constraint: the signed sum of the flows of some branches
 * (case rows of mpc.branch, 0-based); or, with nbr = 0, a "linear"
 * constraint whose flow the caller models per SP (study_set_linear: a
 * voltage constraint, voltage.h). */
typedef struct study_constraint {
    size_t nbr;
    const int *branch_row;       /* [nbr] */
    const double *sign;          /* [nbr] +1 / -1 */
    double voltage_kv;
    int kind;                    /* ANM_DANM or ANM_TANM */
    double trim, release;        /* fractions of the limit (1.0, 0.95) */
    int one_way;                 /* 1: the loading is the signed flow (a boundary: limit in the
                                  * positive direction only; a voltage constraint: overvoltage,
                                  * its lower limit set by study_set_linear) */
} study_constraint;

typedef struct study_site {
    double bus;                  /* MATPOWER bus label */
    double export_mw;            /* export capacity: output is capped here */
} study_site;

/* What stays fixed through a run. */
typedef struct study_def {
    const mp_case *net;          /* the zone's network; its own gen/load are ignored */
    size_t nc, ns, nt, nf;
    const study_constraint *constraints;  /* [nc] */
    const study_site *sites;              /* [ns] */
    const anm_tranche_def *tranches;      /* [nt] */
    const unsigned char *member;          /* [nc*ns] constraint may curtail site; NULL = all */
    const int *fault_row;                 /* [nf] case rows of the credible faults */
    size_t samples;                       /* S >= MCSTAT_MIN_SAMPLES */
    uint64_t seed;
    int threads;                          /* worker threads, 1..STUDY_MAX_THREADS */
    const anm_options *anm_opts;          /* NULL: NGED defaults */
} study_def;

typedef struct study_topology study_topology;

/* What changes per settlement period.  Arrays are the caller's. */
typedef struct study_sp {
    const study_topology *topo;   /* planned outages of this SP applied */
    double hours;                 /* SP length, 0.5 */
    const double *site_mean;      /* [ns] MW available, before the cap */
    const rng_mvn *site_err;      /* ns-dimensional zero-mean error, MW; NULL: none */
    const double *bus_demand;     /* [nbus of case, in case row order] MW */
    const double *bus_demand_sd;  /* [nbus] MW, or NULL */
    const double *bus_fixed;      /* [nbus] other net injection (firm plant), MW, or NULL */
    const double *limit_intact;   /* [nc] MW: PEL or continuous rating (boundary: its limit) */
    const double *limit_fault;    /* [nc] MW: post-fault rating (boundary: its limit) */
    const double *fault_prob;     /* [nf] probability fault k is present in the SP */
} study_sp;

/* What one constraint did to one site in an SP. */
typedef struct study_site_curt {
    double mwh, mwh_se;                 /* expected curtailment it caused, MWh */
    double p, p_se;                     /* P(it curtails the site at all) */
} study_site_curt;

/* Per constraint and SP: the constraint statement and blocks.  Every
 * quantile's SE is mcstat's order-statistic SE (mcstat.h). */
typedef struct study_constraint_result {
    double limit_mw;                    /* intact limit used */
    double limit_fault_mw;              /* post-fault limit used */
    double flow_p10, flow_p50, flow_p90;        /* intact, before ANM, MW */
    double flow_se[3];                          /* their SEs */
    double fault_p10, fault_p50, fault_p90;     /* worst credible fault, before ANM */
    double fault_se[3];
    int has_fault_flow;                 /* 0 when no credible fault applies */
    /* Binding fault: the credible fault most often in force when the ANM
     * acts on this constraint; when it never acts under a fault, the fault
     * most often the worst for it; -1 without credible faults.  p_binding:
     * P(the ANM acts AND that fault is in force), so <= p_acts. */
    int binding_fault;
    double p_binding, p_binding_se;
    double p_acts, p_acts_se;
    double curtail_mwh, curtail_mwh_se; /* expected curtailment it caused */
    double headroom_mw[STUDY_NLEVELS];  /* max(0, limit - flow quantile at level) */
    double headroom_se[STUDY_NLEVELS];
    double curtail_mw[STUDY_NLEVELS];   /* curtailment quantile at level */
    double curtail_mw_se[STUDY_NLEVELS];
    const study_site_curt *site;        /* [ns] */
} study_constraint_result;

typedef struct study study;

/* Builds the network states for a set of planned outages (case rows, may be
 * empty).  Islanding outages are kept in the model with their far side
 * de-energised.  The topology is immutable and may be shared by threads. */
pcf_rc study_topology_new(const study_def *def, const int *out_rows, size_t nout,
                          study_topology **out, pcf_error *err);
void study_topology_destroy(study_topology **t);
/* 1 if the bus (case row) is de-energised in state s (0 intact, 1+k fault k). */
int study_topology_dead(const study_topology *t, size_t state, size_t bus_row);
/* Sensitivity of constraint c to site s in state 0 (MW per MW). */
double study_topology_sens(const study_topology *t, size_t c, size_t s);
/* What a model of the states needs (voltage.h): the number of states; a
 * number unique to this topology; its case (planned outages out, islanding
 * ones kept in); the case row state s's fault takes out (-1: none, or an
 * islanding fault, kept in with its island de-energised); 1 if state s can
 * happen (its fault's branch is not already out). */
size_t study_topology_states(const study_topology *t);
uint64_t study_topology_id(const study_topology *t);
const mp_case *study_topology_case(const study_topology *t);
int study_topology_fault_row(const study_topology *t, size_t state);
int study_topology_valid(const study_topology *t, size_t state);

/* Validates def (copied where needed) and allocates all scratch.  Sets
 * OpenBLAS to one thread for the whole process: the study's threads each
 * multiply their own blocks at once, and OpenBLAS's own threads under them
 * would only contend for the same cores (a program that also wants
 * multi-threaded BLAS elsewhere, pf_flows_batch, must not build studies). */
pcf_rc study_new(const study_def *def, study **out, pcf_error *err);
void study_destroy(study **s);

/* Runs settlement period `sp_index` (part of the random-stream key). */
pcf_rc study_run_sp(study *s, uint32_t sp_index, const study_sp *sp, pcf_error *err);

/* Results of the last study_run_sp. */
pcf_rc study_site_result(study *s, size_t site, mcstat_pcf *out, pcf_error *err);
const study_constraint_result *study_constraint_result_get(const study *s, size_t c);
/* Sensitivity of constraint c to site i in network state `state` (0
 * intact, 1 + k fault k) of the last SP, as its ANM used it: the screened
 * AC rows or the topology's DC ones, and for a linear constraint the SP's
 * own model, which the topology knows nothing of; study_sens is the intact
 * state's. */
double study_sens_in(const study *s, size_t state, size_t c, size_t i);
double study_sens(const study *s, size_t c, size_t i);
/* q_p of v[n] exactly as mcstat_quantile defines it, found by selection
 * (v is reordered; n >= 1, 0 < p < 1). */
double study_quantile(double *v, size_t n, double p);

/* Fraction of samples in which the ANM could not clear every exceedance
 * (the network would need action beyond ANM), for diagnostics. */
double study_unresolved_share(const study *s);

/* Weather ensemble members sampled directly: with nmember > 0, sample j of
 * an SP draws member m uniformly from its own stream (RNG_STREAM_MEMBER,
 * keyed like the others by (seed, SP, j)) and every site's available output
 * is mean[m * ns + site] plus the SP's error (site_err, which should then be
 * the error around one member, not the ensemble's spread) instead of
 * site_mean.  mean ([nmember * ns] MW) is the caller's and is read by every
 * study_run_sp until the next call; nmember 0 goes back to site_mean. */
pcf_rc study_set_members(study *s, size_t nmember, const double *mean, pcf_error *err);

/* The linear constraints' models and every constraint's reverse limit, for
 * the SPs run after it (arrays the caller's, read by each study_run_sp
 * until the next call; a study with linear constraints refuses to run an
 * SP without them).  With nlin linear constraints (nbr = 0) in def order,
 * constraint i's flow in state st is
 *     off[st * nlin + i] + row[(st * nlin + i) * nb ...] . injection
 * with the injection by internal bus (pfnet.h order, nb buses;
 * de-energised buses' entries are ignored) and its sensitivity to a site
 * the row at the site's bus.  rev ([nc], or NULL): the reverse limit of
 * each constraint (the ANM acts when flow < -rev), 0 = the default (the
 * forward limit for a two-way constraint, none for a one-way one), in
 * every state. */
pcf_rc study_set_linear(study *s, const double *row, const double *off, const double *rev, pcf_error *err);

/* The monitored bus of each linear constraint, for the full AC solve of a
 * sample (study_set_ac) to measure: bus_row ([nlin], linear constraints in
 * def order) the case bus row whose voltage constraint i is, its flow
 * there (Vm - 1) * voltage_kv, as the linear model's; and samples within
 * the AC band of its acting level are then solved in full like thermal
 * ones.  -1 (or bus_row NULL, the default) keeps the linear flow in AC
 * samples.  Copied; applies to the SPs run after it. */
pcf_rc study_set_voltage_bus(study *s, const int *bus_row, pcf_error *err);

/* The power flow of the samples (study_ac.h; methodology R.8): mode
 * STUDY_AC_OFF (DC only, what study_new sets up), STUDY_AC_SCREEN (every
 * state's flows linearised at its AC operating point, full AC for samples
 * whose loading is within band, a fraction, of where the ANM acts, either
 * side: the engine's default with STUDY_AC_SCREEN_BAND), STUDY_AC_BAND (AC
 * for samples whose DC flow is within band below where the ANM acts) or
 * STUDY_AC_ALL.  Applies to the SPs run after it. */
pcf_rc study_set_ac(study *s, int mode, double band, pcf_error *err);

/* Samples re-solved with AC (study_def.ac) and, of those, the ones left on
 * their DC result because AC did not converge, over every SP run so far. */
void study_ac_counts(const study *s, size_t *samples, size_t *fallbacks);

/* Where the study's time went, in CPU seconds summed over its threads
 * (together about the study's CPU time), over every SP run since
 * study_new: drawing the samples; the power flow (each block's flow
 * product, the AC operating points and linearisations, the samples solved
 * in full AC with the ANM rounds inside them); the ANM emulation of the
 * rest and the recording of every sample; the summaries.  The threads'
 * CPU clocks are read per block and per full AC sample only. */
typedef struct study_times {
    double sampling, power_flow, anm, aggregation;
} study_times;
void study_times_get(const study *s, study_times *out);
/* STUDY_AC_SCREEN: network states (of every SP run so far) whose operating
 * point did not converge, so their samples were screened with DC rows. */
size_t study_ac_lin_failures(const study *s);

/* Deterministic N-1 view of a constraint (trade checks, trade.h): its
 * loading before the ANM with credible fault k in force in every sample,
 * whatever state the sample drew, i.e. the forecast uncertainty given the
 * fault.  The flows are the study's own (row 1 + k of the dgemm), so this
 * adds one multi-rank selection per constraint and fault to an SP and
 * changes no other figure. */
typedef struct study_fault_loading {
    double q[STUDY_NLEVELS];     /* loading quantiles at study_levels, MW; NaN: the
                                    fault cannot happen in the SP (its branch is out);
                                    may be NaN at a level not asked for */
    double dir;                  /* d loading / d flow: +1, or -1 when the mean flow
                                    under the fault runs against a two-way limit */
} study_fault_loading;

/* want: [nc] 1 for the constraints to summarise so (the caller's, read by
 * every study_run_sp until the next call); NULL turns it off, the default.
 * p: the level the caller will read: only the block levels at or next to
 * it are selected (one or two, not five: a trade check's cost); 0 = all. */
pcf_rc study_set_fault_loading(study *s, const unsigned char *want, double p, pcf_error *err);
/* [nf] of the last SP for constraint c; NULL unless c is wanted. */
const study_fault_loading *study_fault_loading_get(const study *s, size_t c);

#endif
