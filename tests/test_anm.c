/*
 * test_anm.c -- the ANM emulation against closed forms and hand-worked
 * cases (issue 5 item 8):
 *   anm_lifo       two sites on one constraint: the later one first, by
 *                  exactly the right amount; the earlier only once the later
 *                  is off; sensitivity scaling (curtailment = exceedance /
 *                  sensitivity); firm tranches and tranche filling
 *   anm_order      voltage level, then proportional exceedance, TANM last
 *   anm_sign       negative sensitivities, reverse-power exceedances,
 *                  unclearable exceedances (residual)
 *   anm_options    trim/release margins, NGED sensitivity filters,
 *                  membership lists, max_iter
 *   anm_hostile    invalid schemes and inputs
 *   anm_property   invariants on 400 random schemes
 *   anm_nged       the hand-worked example of docs/methodology.md, every
 *                  intermediate number
 *   anm_closed     Monte-Carlo against closed forms: one line with a Gaussian
 *                  injection, a fault with a known probability
 *   anm_repro      bit-identical statistics with 1 or 2 threads in any order
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anm.h"
#include "mcstat.h"
#include "rng.h"

#define EPS 1e-9

/* ---- helpers -------------------------------------------------------------- */

static anm *s_make(size_t nc, const anm_constraint_def *c, size_t ns, size_t nt,
                   const anm_tranche_def *t, const unsigned char *member, const anm_options *o)
{
    anm_def d = {.nc = nc, .ns = ns, .nt = nt, .constraints = c, .tranches = t,
                 .member = member, .options = o};
    anm *a = NULL;
    pcf_error err;
    pcf_rc rc = anm_new(&d, &a, &err);
    cr_assert_eq(rc, PCF_OK, "anm_new: %s", err.msg);
    return a;
}

static anm_result s_solve(anm *a, const double *flow, const double *lim, const double *sens,
                          const double *avail)
{
    anm_input in = {.flow = flow, .limit_fwd = lim, .sens = sens, .avail = avail};
    anm_result r;
    pcf_error err;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_OK, "anm_solve: %s", err.msg);
    return r;
}

static anm_tranche_def s_nf(size_t site, double cap, int lifo)
{
    return (anm_tranche_def){.site = site, .capacity_mw = cap, .lifo_position = lifo,
                             .anm_mask = ANM_DANM | ANM_TANM};
}

static anm_tranche_def s_firm(size_t site, double cap)
{
    return (anm_tranche_def){.site = site, .capacity_mw = cap, .firm = 1};
}

/* ---- LIFO ----------------------------------------------------------------- */

Test(anm_lifo, later_site_first_by_exactly_the_exceedance)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    anm_tranche_def t[2] = {s_nf(0, 40, 1), s_nf(1, 30, 2)};
    anm *a = s_make(1, &c, 2, 2, t, NULL, NULL);
    double sens[2] = {1, 1}, avail[2] = {40, 30}, lim = 100;
    /* background 50 + 70 of generation = 120: 20 MW over */
    double flow = 120;
    anm_result r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[1], 20, EPS);
    cr_assert_eq(r.site_curt[0], 0.0);
    cr_assert_float_eq(r.flow[0], 100, EPS);
    cr_assert_float_eq(r.site_out[1], 10, EPS);
    cr_assert_eq(r.acted[0], 1);
    cr_assert_eq(r.n_steps, 1);
    cr_assert_eq(r.converged, 1);
    cr_assert_eq(r.residual[0], 0.0);
    /* exactly the later site's output: it goes off, the earlier stays whole */
    flow = 130;
    r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[1], 30, EPS);
    cr_assert_float_eq(r.site_curt[0], 0, EPS);
    /* 50 over: the later one fully off, then 20 from the earlier */
    flow = 150;
    r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[1], 30, EPS);
    cr_assert_float_eq(r.site_curt[0], 20, EPS);
    cr_assert_float_eq(r.total_curt_mw, 50, EPS);
    cr_assert_float_eq(r.curt_by[0], 20, EPS);
    cr_assert_float_eq(r.curt_by[1], 30, EPS);
    /* within the limit: nothing happens */
    flow = 100;
    r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_eq(r.total_curt_mw, 0.0);
    cr_assert_eq(r.acted[0], 0);
    cr_assert_eq(r.n_steps, 0);
    anm_destroy(&a);
    cr_assert_null(a);
    anm_destroy(&a);
}

Test(anm_lifo, lifo_position_not_index_decides)
{
    anm_constraint_def c = {.voltage_kv = 11, .kind = ANM_DANM};
    /* site 0 is the newest (position 9), site 2 the oldest (position 2) */
    anm_tranche_def t[3] = {s_nf(0, 5, 9), s_nf(1, 5, 4), s_nf(2, 5, 2)};
    anm *a = s_make(1, &c, 3, 3, t, NULL, NULL);
    double sens[3] = {1, 1, 1}, avail[3] = {5, 5, 5}, lim = 10, flow = 22;
    anm_result r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[0], 5, EPS);
    cr_assert_float_eq(r.site_curt[1], 5, EPS);
    cr_assert_float_eq(r.site_curt[2], 2, EPS);
    anm_destroy(&a);
}

Test(anm_lifo, curtailment_is_exceedance_over_sensitivity)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    anm_tranche_def t[2] = {s_nf(0, 50, 1), s_nf(1, 10, 2)};
    anm *a = s_make(1, &c, 2, 2, t, NULL, NULL);
    double sens[2] = {0.5, 0.4}, avail[2] = {50, 10}, lim = 80;
    /* 3 MW over, newest site at 0.4: 7.5 MW */
    double flow = 83;
    anm_result r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[1], 3 / 0.4, EPS);
    cr_assert_eq(r.site_curt[0], 0.0);
    /* 6 MW over: newest off (10 MW = 4 MW of flow), 2 MW left at 0.5: 4 MW */
    flow = 86;
    r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[1], 10, EPS);
    cr_assert_float_eq(r.site_curt[0], 4, EPS);
    cr_assert_float_eq(r.flow[0], 80, EPS);
    anm_destroy(&a);
}

Test(anm_lifo, firm_tranches_never_curtailed_and_fill_oldest_first)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    /* site 0: firm 10 + non-firm extension 6 (position 3); site 1 firm only;
     * site 2 no tranche at all (firm) */
    anm_tranche_def t[4] = {s_nf(0, 6, 3), s_firm(0, 10), s_firm(1, 20), s_nf(0, 4, 5)};
    anm *a = s_make(1, &c, 3, 4, t, NULL, NULL);
    double sens[3] = {1, 1, 1}, avail[3] = {18, 20, 7}, lim = 10;
    /* site 0's 18 MW: firm 10, position 3 gets 6, position 5 gets 2 */
    double flow = 100;
    anm_result r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.tranche_curt[3], 2, EPS);
    cr_assert_float_eq(r.tranche_curt[0], 6, EPS);
    cr_assert_eq(r.tranche_curt[1], 0.0);
    cr_assert_eq(r.tranche_curt[2], 0.0);
    cr_assert_float_eq(r.site_curt[0], 8, EPS);
    cr_assert_eq(r.site_curt[1], 0.0);
    cr_assert_eq(r.site_curt[2], 0.0);
    cr_assert_float_eq(r.site_out[0], 10, EPS);
    /* 100 - 8 = 92: firm output leaves 82 MW that the ANM cannot clear */
    cr_assert_float_eq(r.residual[0], 82, EPS);
    cr_assert_eq(r.converged, 1);
    anm_destroy(&a);
}

/* ---- ordering ----------------------------------------------------------- */

Test(anm_order, lowest_voltage_first_then_largest_proportional_exceedance)
{
    /* Four constraints, each seeing only its own site, listed so that index
     * order and proportional exceedance both disagree with the voltage
     * rule. */
    anm_constraint_def c[4] = {{.voltage_kv = 132, .kind = ANM_DANM},
                               {.voltage_kv = 33, .kind = ANM_DANM},
                               {.voltage_kv = 33, .kind = ANM_DANM},
                               {.voltage_kv = 11, .kind = ANM_DANM}};
    anm_tranche_def t[4] = {s_nf(0, 100, 1), s_nf(1, 100, 2), s_nf(2, 100, 3), s_nf(3, 100, 4)};
    anm *a = s_make(4, c, 4, 4, t, NULL, NULL);
    double sens[16] = {0}, avail[4] = {100, 100, 100, 100};
    for (int i = 0; i < 4; i++)
        sens[i * 4 + i] = 1;
    double lim[4] = {100, 100, 100, 100};
    double flow[4] = {150, 120, 130, 110};   /* 132 kV 150 %, 33 kV 120/130 %, 11 kV 110 % */
    anm_result r = s_solve(a, flow, lim, sens, avail);
    cr_assert_eq(r.n_steps, 4);
    cr_assert_eq(r.order[0], 3);   /* 11 kV */
    cr_assert_eq(r.order[1], 2);   /* 33 kV at 130 % */
    cr_assert_eq(r.order[2], 1);   /* 33 kV at 120 % */
    cr_assert_eq(r.order[3], 0);   /* 132 kV */
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(r.flow[i], 100, EPS);
    anm_destroy(&a);
}

Test(anm_order, transmission_constraints_resolve_last)
{
    anm_constraint_def c[2] = {{.voltage_kv = 11, .kind = ANM_TANM},
                               {.voltage_kv = 132, .kind = ANM_DANM}};
    anm_tranche_def t[2] = {s_nf(0, 100, 1), s_nf(1, 100, 2)};
    anm *a = s_make(2, c, 2, 2, t, NULL, NULL);
    double sens[4] = {1, 0, 0, 1}, avail[2] = {100, 100}, lim[2] = {50, 50};
    double flow[2] = {200, 55};
    anm_result r = s_solve(a, flow, lim, sens, avail);
    cr_assert_eq(r.n_steps, 2);
    cr_assert_eq(r.order[0], 1);
    cr_assert_eq(r.order[1], 0);
    anm_destroy(&a);
}

Test(anm_order, resolving_a_lower_voltage_constraint_can_mask_a_higher_one)
{
    /* One site below an 11 kV transformer and a 33 kV circuit: clearing the
     * transformer takes the circuit under its limit too, so the circuit
     * never acts (NGED 4.5.6). */
    anm_constraint_def c[2] = {{.voltage_kv = 33, .kind = ANM_DANM},
                               {.voltage_kv = 11, .kind = ANM_DANM}};
    anm_tranche_def t[1] = {s_nf(0, 30, 1)};
    anm *a = s_make(2, c, 1, 1, t, NULL, NULL);
    double sens[2] = {0.8, 1.0}, avail[1] = {30}, lim[2] = {40, 20}, flow[2] = {44, 30};
    anm_result r = s_solve(a, flow, lim, sens, avail);
    cr_assert_eq(r.n_steps, 1);
    cr_assert_eq(r.order[0], 1);
    cr_assert_float_eq(r.site_curt[0], 10, EPS);
    cr_assert_float_eq(r.flow[0], 36, EPS);
    cr_assert_eq(r.acted[0], 0);
    cr_assert_eq(r.acted[1], 1);
    anm_destroy(&a);
}

/* ---- signs -------------------------------------------------------------- */

Test(anm_sign, negative_sensitivity_is_never_curtailed_for_that_constraint)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    /* the newest site relieves the constraint (-0.5): curtailing it would
     * make things worse, so the older site is curtailed */
    anm_tranche_def t[2] = {s_nf(0, 20, 1), s_nf(1, 20, 2)};
    anm *a = s_make(1, &c, 2, 2, t, NULL, NULL);
    double sens[2] = {0.5, -0.5}, avail[2] = {20, 20}, lim = 10, flow = 13;
    anm_result r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_eq(r.site_curt[1], 0.0);
    cr_assert_float_eq(r.site_curt[0], 6, EPS);
    /* only negative-sensitivity sites: nothing helps, all reported */
    double sens2[2] = {-0.2, -0.5};
    r = s_solve(a, &flow, &lim, sens2, avail);
    cr_assert_eq(r.total_curt_mw, 0.0);
    cr_assert_float_eq(r.residual[0], 3, EPS);
    cr_assert_eq(r.acted[0], 0);
    cr_assert_eq(r.n_steps, 1);
    cr_assert_eq(r.converged, 1);
    anm_destroy(&a);
}

Test(anm_sign, reverse_power_limit_curtails_negative_sensitivity_sites)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    anm_tranche_def t[2] = {s_nf(0, 20, 1), s_nf(1, 20, 2)};
    anm *a = s_make(1, &c, 2, 2, t, NULL, NULL);
    /* flow -33 against a reverse limit of 30: 3 MW over in the reverse
     * direction; the newest site pushes flow negative (-0.6), so it helps */
    double sens[2] = {0.5, -0.6}, avail[2] = {20, 20}, fwd = 100, rev = 30, flow = -33;
    anm_input in = {.flow = &flow, .limit_fwd = &fwd, .limit_rev = &rev, .sens = sens,
                    .avail = avail};
    anm_result r;
    pcf_error err;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(r.site_curt[1], 5, EPS);
    cr_assert_eq(r.site_curt[0], 0.0);
    cr_assert_float_eq(r.flow[0], -30, EPS);
    anm_destroy(&a);
}

Test(anm_sign, unclearable_exceedance_reports_its_residual)
{
    anm_constraint_def c[2] = {{.voltage_kv = 11, .kind = ANM_DANM},
                               {.voltage_kv = 33, .kind = ANM_DANM}};
    anm_tranche_def t[1] = {s_nf(0, 10, 1)};
    anm *a = s_make(2, c, 1, 1, t, NULL, NULL);
    /* background alone exceeds the 11 kV limit (NGED 5.2.1 baseline
     * exceedance): the site goes off and 15 MW remain; the 33 kV
     * constraint is still worked on afterwards */
    double sens[2] = {1, 1}, avail[1] = {10}, lim[2] = {20, 100}, flow[2] = {45, 50};
    anm_result r = s_solve(a, flow, lim, sens, avail);
    cr_assert_float_eq(r.site_curt[0], 10, EPS);
    cr_assert_float_eq(r.residual[0], 15, EPS);
    cr_assert_eq(r.residual[1], 0.0);
    cr_assert_eq(r.acted[0], 1);
    cr_assert_eq(r.converged, 1);
    cr_assert_eq(r.n_steps, 1);
    anm_destroy(&a);
}

/* ---- options ------------------------------------------------------------ */

Test(anm_options, trim_and_release_margins)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM, .trim = 0.95, .release = 0.85};
    anm_tranche_def t[1] = {s_nf(0, 50, 1)};
    double sens[1] = {1}, avail[1] = {50}, lim = 100;
    anm *a = s_make(1, &c, 1, 1, t, NULL, NULL);
    /* 94 < 95 % trim threshold: no action */
    double flow = 94;
    anm_result r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_eq(r.total_curt_mw, 0.0);
    /* NGED default: back to the trim threshold */
    flow = 99;
    r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[0], 4, EPS);
    anm_destroy(&a);
    anm_options o;
    anm_options_default(&o);
    o.use_release = 1;
    a = s_make(1, &c, 1, 1, t, NULL, &o);
    r = s_solve(a, &flow, &lim, sens, avail);
    cr_assert_float_eq(r.site_curt[0], 14, EPS);
    cr_assert_float_eq(r.flow[0], 85, EPS);
    anm_destroy(&a);
}

Test(anm_options, nged_branch_and_site_filters)
{
    anm_constraint_def c[2] = {{.voltage_kv = 33, .kind = ANM_DANM},
                               {.voltage_kv = 33, .kind = ANM_DANM}};
    anm_tranche_def t[2] = {s_nf(0, 100, 1), s_nf(1, 100, 2)};
    /* constraint 0: the newest site contributes 1 % (below the 2 % rule),
     * the older 30 %; constraint 1: every non-firm site below 5 % */
    double sens[4] = {0.30, 0.01,
                      0.04, 0.03};
    double avail[2] = {100, 100}, lim[2] = {50, 5}, flow[2] = {53, 5.2};
    anm *a = s_make(2, c, 2, 2, t, NULL, NULL);
    anm_result r = s_solve(a, flow, lim, sens, avail);
    /* without filters: constraint 0 (106 %, before 104 %) curtails the
     * newest at 1 %: 100 MW give 1 MW, then the older 2 MW / 0.3; that
     * clears constraint 1 too (5.2 - 3 - 0.27) */
    cr_assert_float_eq(r.curt_by[0 * 2 + 1], 100, EPS);
    cr_assert_float_eq(r.curt_by[0 * 2 + 0], 2 / 0.3, EPS);
    cr_assert_eq(r.filtered[1], 0);
    anm_destroy(&a);
    anm_options o;
    anm_options_default(&o);
    o.branch_filter = 0.05;
    o.site_filter = 0.02;
    a = s_make(2, c, 2, 2, t, NULL, &o);
    r = s_solve(a, flow, lim, sens, avail);
    cr_assert_eq(r.filtered[1], 1);
    cr_assert_eq(r.filtered[0], 0);
    cr_assert_eq(r.residual[1], 0.0);   /* not monitored */
    cr_assert_eq(r.curt_by[0 * 2 + 1], 0.0);
    cr_assert_float_eq(r.curt_by[0 * 2 + 0], 3 / 0.3, EPS);
    cr_assert_eq(r.n_steps, 1);
    anm_destroy(&a);
}

Test(anm_options, membership_list_and_tranche_anm_type)
{
    anm_constraint_def c[2] = {{.voltage_kv = 33, .kind = ANM_DANM},
                               {.voltage_kv = 132, .kind = ANM_TANM}};
    anm_tranche_def t[3] = {s_nf(0, 10, 1), s_nf(1, 10, 2), s_nf(2, 10, 3)};
    t[2].anm_mask = ANM_DANM;   /* newest: DANM only */
    /* constraint 0 may not curtail site 1 */
    unsigned char member[6] = {1, 0, 1,
                               1, 1, 1};
    anm *a = s_make(2, c, 3, 3, t, member, NULL);
    double sens[6] = {1, 1, 0, 1, 1, 1}, avail[3] = {10, 10, 10};
    double lim[2] = {100, 100}, flow[2] = {105, 100};
    anm_result r = s_solve(a, flow, lim, sens, avail);
    /* DANM: site 2 does not help (0), site 1 not a member: site 0 */
    cr_assert_float_eq(r.curt_by[0 * 3 + 0], 5, EPS);
    cr_assert_eq(r.curt_by[0 * 3 + 1], 0.0);
    anm_destroy(&a);
    double flow2[2] = {50, 115};
    a = s_make(2, c, 3, 3, t, member, NULL);
    r = s_solve(a, flow2, lim, sens, avail);
    /* TANM: site 2 is DANM-only, so site 1 (position 2) then site 0 */
    cr_assert_eq(r.curt_by[1 * 3 + 2], 0.0);
    cr_assert_float_eq(r.curt_by[1 * 3 + 1], 10, EPS);
    cr_assert_float_eq(r.curt_by[1 * 3 + 0], 5, EPS);
    anm_destroy(&a);
}

Test(anm_options, max_iter_bounds_the_work_and_says_so)
{
    /* Two constraints fighting: curtailing site 1 for A raises B and
     * curtailing site 0 for B raises A, a geometric sequence of steps. */
    anm_constraint_def c[2] = {{.voltage_kv = 11, .kind = ANM_DANM},
                               {.voltage_kv = 33, .kind = ANM_DANM}};
    anm_tranche_def t[2] = {s_nf(0, 100, 1), s_nf(1, 100, 2)};
    anm_options o;
    anm_options_default(&o);
    o.max_iter = 3;
    anm *a = s_make(2, c, 2, 2, t, NULL, &o);
    double sens[4] = {-0.5, 1.0,
                      1.0, -0.5};
    double avail[2] = {100, 100}, lim[2] = {10, 10}, flow[2] = {20, 20};
    anm_result r = s_solve(a, flow, lim, sens, avail);
    cr_assert_eq(r.n_steps, 3);
    cr_assert_eq(r.converged, 0);
    anm_destroy(&a);
    o.max_iter = 10000;
    a = s_make(2, c, 2, 2, t, NULL, &o);
    r = s_solve(a, flow, lim, sens, avail);
    cr_assert_eq(r.converged, 1);
    cr_assert(r.flow[0] <= 10 + 1e-6 && r.flow[1] <= 10 + 1e-6);
    anm_destroy(&a);
}

/* ---- hostile ------------------------------------------------------------ */

Test(anm_hostile, invalid_schemes_are_refused_with_the_entry_named)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    anm_tranche_def t[2] = {s_nf(0, 10, 1), s_nf(1, 10, 1)};
    anm_def d = {.nc = 1, .ns = 2, .nt = 2, .constraints = &c, .tranches = t};
    anm *a = NULL;
    pcf_error err;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "share LIFO position 1"), "%s", err.msg);
    cr_assert_null(a);
    t[1].lifo_position = 0;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "tranche 1"), "%s", err.msg);
    t[1] = s_nf(5, 10, 2);
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    t[1] = s_nf(1, NAN, 2);
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    t[1] = s_nf(1, 10, 2);
    t[1].anm_mask = 0;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    t[1].anm_mask = ANM_DANM;
    c.voltage_kv = -1;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    c.voltage_kv = 33;
    c.kind = 3;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    c.kind = ANM_TANM;
    c.trim = 0.9;
    c.release = 0.95;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    c.release = 0;
    anm_options o;
    anm_options_default(&o);
    o.max_iter = 0;
    d.options = &o;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    o.max_iter = 5;
    o.site_filter = 2;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_INVALID);
    o.site_filter = 0;
    d.nc = ANM_MAX_CONSTRAINTS + 1;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_ERR_LIMIT);
    d.nc = 1;
    cr_assert_eq(anm_new(&d, &a, &err), PCF_OK, "%s", err.msg);
    anm_destroy(&a);
}

Test(anm_hostile, invalid_inputs_are_refused)
{
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    anm_tranche_def t[1] = {s_nf(0, 10, 1)};
    anm *a = s_make(1, &c, 2, 1, t, NULL, NULL);
    double sens[2] = {1, 1}, avail[2] = {5, 1000}, lim = 10, flow = 20;
    anm_input in = {.flow = &flow, .limit_fwd = &lim, .sens = sens, .avail = avail};
    anm_result r;
    pcf_error err;
    /* site 1 has no tranche: firm, any output */
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_OK, "%s", err.msg);
    avail[0] = 10.5;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "site 0"), "%s", err.msg);
    avail[0] = -1;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    avail[0] = NAN;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    avail[0] = 5;
    flow = INFINITY;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    flow = 20;
    lim = 0;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    lim = 10;
    sens[0] = NAN;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "sensitivity (0,0)"), "%s", err.msg);
    sens[0] = 1;
    in.sens = NULL;
    cr_assert_eq(anm_solve(a, &in, &r, &err), PCF_ERR_INVALID);
    anm_destroy(&a);
}

/* ---- invariants on random schemes ------------------------------------- */

/* Random schemes with sensitivities of both signs, firm and non-firm
 * tranches with mixed memberships, membership lists and margins; after
 * every solve:
 *   - tranche curtailment within [0, the tranche's share of the output],
 *     none on firm tranches; site curtailment = sum over its tranches =
 *     sum over constraints of the attribution;
 *   - the final flows equal the pre-curtailment flows minus S x curtailment;
 *   - when converged, every monitored constraint is either within trim x
 *     limit, or has a residual and every tranche able to help it is off;
 *   - within a site whose tranches share one membership, a tranche is
 *     curtailed only once every more recent tranche of the site is off. */
Test(anm_property, random_schemes_satisfy_the_invariants)
{
    enum { CASES = 400, MC = 8, MS = 8, MT = 16 };
    int n_curt = 0, n_resid = 0, n_multi = 0;
    for (uint32_t k = 0; k < CASES; k++) {
        rng_stream r;
        rng_init(&r, 2026, 0, k, RNG_STREAM_TEST);
        size_t nc = 1 + rng_u32(&r) % MC, ns = 1 + rng_u32(&r) % MS, nt = 0;
        anm_constraint_def c[MC];
        anm_tranche_def t[MT];
        double sens[MC * MS], flow[MC], fwd[MC], rev[MC], avail[MS], tcap[MS] = {0};
        unsigned char member[MC * MS];
        int lifo = 1, same_mask[MS];
        for (size_t i = 0; i < nc; i++) {
            double u = rng_uniform(&r);
            c[i] = (anm_constraint_def){.voltage_kv = u < 0.3 ? 11 : u < 0.7 ? 33 : 132,
                                        .kind = rng_uniform(&r) < 0.2 ? ANM_TANM : ANM_DANM,
                                        .trim = rng_uniform(&r) < 0.3 ? 0.9 : 0};
            fwd[i] = 10 + 90 * rng_uniform(&r);
            rev[i] = 10 + 90 * rng_uniform(&r);
            flow[i] = -1.5 * rev[i] + 3 * (fwd[i] + rev[i]) * rng_uniform(&r) / 2;
            for (size_t s = 0; s < ns; s++) {
                double v = rng_uniform(&r);
                sens[i * ns + s] = v < 0.2 ? 0 : v < 0.4 ? -0.5 * rng_uniform(&r)
                                                         : rng_uniform(&r);
                member[i * ns + s] = rng_uniform(&r) < 0.85;
            }
        }
        for (size_t s = 0; s < ns; s++) {
            size_t m = 1 + rng_u32(&r) % 3;
            int mask = rng_uniform(&r) < 0.5 ? 3 : (rng_uniform(&r) < 0.5 ? 1 : 2);
            same_mask[s] = 1;
            for (size_t q = 0; q < m && nt < MT; q++) {
                double cap = 1 + 20 * rng_uniform(&r);
                int firm = rng_uniform(&r) < 0.2;
                int mk = rng_uniform(&r) < 0.8 ? mask : 3;
                if (!firm && mk != mask)
                    same_mask[s] = 0;
                t[nt++] = (anm_tranche_def){.site = s, .capacity_mw = cap, .firm = firm,
                                            .lifo_position = firm ? 0 : lifo++,
                                            .anm_mask = firm ? 0 : mk};
                tcap[s] += cap;
            }
        }
        /* shuffle LIFO positions so queue order is not site order */
        for (size_t i = nt; i-- > 1;) {
            size_t j = rng_u32(&r) % (i + 1);
            if (t[i].firm || t[j].firm)
                continue;
            int x = t[i].lifo_position;
            t[i].lifo_position = t[j].lifo_position;
            t[j].lifo_position = x;
        }
        for (size_t s = 0; s < ns; s++)
            avail[s] = tcap[s] * rng_uniform(&r);
        anm *a = s_make(nc, c, ns, nt, t, member, NULL);
        anm_input in = {.flow = flow, .limit_fwd = fwd, .limit_rev = rev, .sens = sens,
                        .avail = avail};
        anm_result res;
        pcf_error err;
        cr_assert_eq(anm_solve(a, &in, &res, &err), PCF_OK, "case %u: %s", k, err.msg);
        /* tranche shares: fill oldest first */
        double share[MT];
        for (size_t s = 0; s < ns; s++) {
            double left = avail[s];
            for (int pass = 0; pass < 2; pass++)   /* firm, then by LIFO position */
                for (int pos = 0; pos <= lifo; pos++)
                    for (size_t q = 0; q < nt; q++) {
                        if (t[q].site != s || t[q].firm != !pass ||
                            (pass && t[q].lifo_position != pos) || (!pass && pos))
                            continue;
                        share[q] = fmin(left, t[q].capacity_mw);
                        left -= share[q];
                    }
        }
        double site_sum[MS] = {0};
        for (size_t q = 0; q < nt; q++) {
            cr_assert(res.tranche_curt[q] >= 0 && res.tranche_curt[q] <= share[q] + 1e-9,
                      "case %u tranche %zu: %g of %g", k, q, res.tranche_curt[q], share[q]);
            if (t[q].firm)
                cr_assert_eq(res.tranche_curt[q], 0.0);
            site_sum[t[q].site] += res.tranche_curt[q];
        }
        for (size_t s = 0; s < ns; s++) {
            double by = 0;
            for (size_t i = 0; i < nc; i++)
                by += res.curt_by[i * ns + s];
            cr_assert(fabs(site_sum[s] - res.site_curt[s]) < 1e-9, "case %u site %zu", k, s);
            cr_assert(fabs(by - res.site_curt[s]) < 1e-9, "case %u site %zu attribution", k, s);
            cr_assert(fabs(res.site_out[s] - (avail[s] - res.site_curt[s])) < 1e-9);
        }
        for (size_t i = 0; i < nc; i++) {
            double f = flow[i];
            for (size_t s = 0; s < ns; s++)
                f -= sens[i * ns + s] * res.site_curt[s];
            cr_assert(fabs(f - res.flow[i]) < 1e-9, "case %u constraint %zu: flow %g vs %g", k,
                      i, res.flow[i], f);
        }
        if (res.converged) {
            for (size_t i = 0; i < nc; i++) {
                double tr = c[i].trim ? c[i].trim : 1.0;
                int over = res.flow[i] > tr * fwd[i] + 1e-7 || res.flow[i] < -tr * rev[i] - 1e-7;
                cr_assert(over ? res.residual[i] > 0 : res.residual[i] < 1e-7, "case %u "
                          "constraint %zu: flow %g, residual %g", k, i, res.flow[i],
                          res.residual[i]);
                if (!over)
                    continue;
                int dir = res.flow[i] > 0 ? 1 : -1;
                for (size_t q = 0; q < nt; q++) {
                    size_t s = t[q].site;
                    int helps = !t[q].firm && (t[q].anm_mask & c[i].kind) && member[i * ns + s] &&
                                dir * sens[i * ns + s] > 1e-6;
                    if (helps)
                        cr_assert(share[q] - res.tranche_curt[q] < 1e-9, "case %u: constraint "
                                  "%zu has a residual but tranche %zu still runs", k, i, q);
                }
            }
        }
        for (size_t q = 0; q < nt; q++) {
            size_t s = t[q].site;
            if (t[q].firm || !same_mask[s] || res.tranche_curt[q] <= 0)
                continue;
            for (size_t q2 = 0; q2 < nt; q2++)
                if (t[q2].site == s && !t[q2].firm && t[q2].lifo_position > t[q].lifo_position)
                    cr_assert(share[q2] - res.tranche_curt[q2] < 1e-9, "case %u site %zu: "
                              "tranche %zu curtailed while newer %zu runs", k, s, q, q2);
        }
        n_curt += res.total_curt_mw > 0;
        n_multi += res.n_steps > 1;
        for (size_t i = 0; i < nc; i++)
            if (res.residual[i] > 0) {
                n_resid++;
                break;
            }
        anm_destroy(&a);
    }
    /* the random cases must exercise every branch of the algorithm */
    cr_assert(n_curt > CASES / 4, "%d cases curtailed", n_curt);
    cr_assert(n_resid > CASES / 20, "%d cases left a residual", n_resid);
    cr_assert(n_multi > CASES / 10, "%d cases took several steps", n_multi);
}

/* ---- the hand-worked NGED example (docs/methodology.md) ------------------ */

enum { HC = 5, HS = 5, HT = 6 };
/* constraints: PT-A 11 kV 20 MW, L33-B 33 kV 25 MW, L132 132 kV 50 MW,
 * GSP TANM 132 kV 40 MW, L33-C 33 kV 10 MW */
static const anm_constraint_def s_hc[HC] = {
    {.voltage_kv = 11, .kind = ANM_DANM}, {.voltage_kv = 33, .kind = ANM_DANM},
    {.voltage_kv = 132, .kind = ANM_DANM}, {.voltage_kv = 132, .kind = ANM_TANM},
    {.voltage_kv = 33, .kind = ANM_DANM}};
static const double s_hlim[HC] = {20, 25, 50, 40, 10};
static const double s_hbase[HC] = {-3, 0, -8, -10, 0};
static const double s_hsens[HC * HS] = {
    1.0, 0.0, 1.0, 0.0, 0.0,      /* PT-A */
    0.5, 0.8, 0.5, -0.2, 0.4,     /* L33-B */
    0.9, 0.9, 0.9, 0.9, 0.9,      /* L132 */
    1.0, 1.0, 1.0, 1.0, 1.0,      /* GSP */
    0.0, 0.1, 0.0, 0.8, 0.0};     /* L33-C */
static const double s_havail[HS] = {15, 20, 10, 12, 8};

static anm *s_hand(int max_iter)
{
    anm_tranche_def t[HT] = {
        {.site = 0, .capacity_mw = 15, .lifo_position = 1, .anm_mask = ANM_DANM},
        {.site = 1, .capacity_mw = 5, .firm = 1},
        {.site = 1, .capacity_mw = 15, .lifo_position = 2, .anm_mask = ANM_DANM | ANM_TANM},
        {.site = 2, .capacity_mw = 10, .lifo_position = 3, .anm_mask = ANM_DANM | ANM_TANM},
        {.site = 3, .capacity_mw = 12, .lifo_position = 4, .anm_mask = ANM_DANM | ANM_TANM},
        {.site = 4, .capacity_mw = 8, .firm = 1}};
    anm_options o;
    anm_options_default(&o);
    o.max_iter = max_iter;
    return s_make(HC, s_hc, HS, HT, t, NULL, &o);
}

static void s_hand_flows(double *flow)
{
    for (int c = 0; c < HC; c++) {
        flow[c] = s_hbase[c];
        for (int s = 0; s < HS; s++)
            flow[c] += s_hsens[c * HS + s] * s_havail[s];
    }
}

static void s_assert_vec(const double *got, const double *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        cr_assert(fabs(got[i] - want[i]) < 1e-9, "%s[%d] = %.12g, want %.12g", what, i, got[i],
                  want[i]);
}

Test(anm_nged, hand_worked_example_step_by_step)
{
    double flow[HC];
    s_hand_flows(flow);
    /* 5.2.2: pre-curtailment flows */
    s_assert_vec(flow, (double[]){22, 29.3, 50.5, 55, 11.6}, HC, "initial flow");
    /* Running with max_iter = k stops after step k: each step's state. */
    static const size_t order[5] = {0, 4, 1, 3, 1};
    static const double flows[5][HC] = {
        {20, 28.3, 48.7, 53, 11.6},
        {20, 28.7, 46.9, 51, 10},
        {12.6, 25, 40.24, 43.6, 10},
        {12.6, 25.72, 37, 40, 7.12},
        {12, 25, 35.9875, 38.875, 7.0675}};
    static const double curt[5][HS] = {
        {0, 0, 2, 0, 0},
        {0, 0, 2, 2, 0},
        {0, 0, 9.4, 2, 0},
        {0, 0, 9.4, 5.6, 0},
        {0, 0.525, 10, 5.6, 0}};
    for (int k = 1; k <= 5; k++) {
        anm *a = s_hand(k);
        anm_result r = s_solve(a, flow, s_hlim, s_hsens, s_havail);
        cr_assert_eq(r.n_steps, (size_t)k);
        for (int i = 0; i < k; i++)
            cr_assert_eq(r.order[i], order[i], "step %d worked on %zu", i + 1, r.order[i]);
        char what[64];
        snprintf(what, sizeof what, "flow after step %d", k);
        s_assert_vec(r.flow, flows[k - 1], HC, what);
        snprintf(what, sizeof what, "curtailment after step %d", k);
        s_assert_vec(r.site_curt, curt[k - 1], HS, what);
        cr_assert_eq(r.converged, k == 5, "step %d converged %d", k, r.converged);
        anm_destroy(&a);
    }
    /* the full run: five steps, nothing left */
    anm *a = s_hand(10000);
    anm_result r = s_solve(a, flow, s_hlim, s_hsens, s_havail);
    cr_assert_eq(r.n_steps, 5);
    cr_assert_eq(r.converged, 1);
    s_assert_vec(r.site_out, (double[]){15, 19.475, 0, 6.4, 8}, HS, "final output");
    s_assert_vec(r.tranche_curt, (double[]){0, 0, 0.525, 10, 5.6, 0}, HT, "tranche curtailment");
    cr_assert_float_eq(r.total_curt_mw, 16.125, 1e-9);
    /* attribution: PT-A 2 (site 2); L33-C 2 (site 3); L33-B 7.4 + 0.6 (site 2)
     * and 0.525 (site 1); GSP 3.6 (site 3); L132 never acted (masked) */
    double by[HC * HS] = {0};
    by[0 * HS + 2] = 2;
    by[4 * HS + 3] = 2;
    by[1 * HS + 2] = 8;
    by[1 * HS + 1] = 0.525;
    by[3 * HS + 3] = 3.6;
    s_assert_vec(r.curt_by, by, HC * HS, "curtailment by constraint");
    static const unsigned char acted[HC] = {1, 1, 0, 1, 1};
    for (int c = 0; c < HC; c++) {
        cr_assert_eq(r.acted[c], acted[c], "constraint %d acted %d", c, r.acted[c]);
        cr_assert_eq(r.residual[c], 0.0);
    }
    /* the same call again gives the same bits (scratch fully reset) */
    double keep[HC];
    memcpy(keep, r.flow, sizeof keep);
    r = s_solve(a, flow, s_hlim, s_hsens, s_havail);
    cr_assert_eq(memcmp(keep, r.flow, sizeof keep), 0);
    anm_destroy(&a);
}

/* ---- Monte-Carlo closed forms ------------------------------------------- */

static double s_Phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

static double s_phi(double x)
{
    return exp(-0.5 * x * x) / sqrt(2 * M_PI);
}

/* E[(Y - a)^+] for Y ~ N(mu, sd). */
static double s_excess(double mu, double sd, double a)
{
    double z = (a - mu) / sd;
    return sd * s_phi(z) + (mu - a) * (1 - s_Phi(z));
}

Test(anm_closed, gaussian_injection_on_one_line)
{
    /* Line flow = X + 0.5 * 50 MW of a non-firm site, X ~ N(mu, sd) from
     * demand and firm plant.  The ANM acts when X + 25 > L, so
     * P(curtailed) = 1 - Phi((L - 25 - mu) / sd); the curtailment is
     * min((Y - L)^+, 25) / 0.5 with Y = X + 25. */
    static const double par[4][3] = {{60, 10, 90}, {20, 5, 40}, {0, 2, 30}, {-5, 20, 20}};
    enum { N = 20000 };
    anm_constraint_def c = {.voltage_kv = 33, .kind = ANM_DANM};
    anm_tranche_def t[1] = {s_nf(0, 50, 1)};
    anm *a = s_make(1, &c, 1, 1, t, NULL, NULL);
    mcstat *m = NULL;
    pcf_error err;
    cr_assert_eq(mcstat_new(1, N, &m, &err), PCF_OK);
    double sens[1] = {0.5}, avail[1] = {50};
    for (int k = 0; k < 4; k++) {
        double mu = par[k][0], sd = par[k][1], lim = par[k][2];
        mcstat_reset(m);
        for (uint32_t i = 0; i < N; i++) {
            rng_stream r;
            rng_init(&r, 42, (uint32_t)k + 1, i, RNG_STREAM_FORECAST);
            double flow = mu + sd * rng_normal(&r) + 25;
            anm_result res = s_solve(a, &flow, &lim, sens, avail);
            cr_assert_eq(mcstat_record(m, 0, i, res.site_out[0], res.site_curt[0], &err),
                         PCF_OK);
        }
        mcstat_pcf s;
        cr_assert_eq(mcstat_summarise(m, 0, 0.5, &s, &err), PCF_OK, "%s", err.msg);
        double p = 1 - s_Phi((lim - 25 - mu) / sd);
        double e_mw = (s_excess(mu + 25, sd, lim) - s_excess(mu + 25, sd, lim + 25)) / 0.5;
        cr_assert(fabs(s.p_curtailed - p) < 3 * s.p_curtailed_se,
                  "set %d: P(curtailed) %g, closed form %g, SE %g", k, s.p_curtailed, p,
                  s.p_curtailed_se);
        cr_assert(fabs(s.curtailed_mwh - 0.5 * e_mw) < 3 * s.curtailed_mwh_se,
                  "set %d: E[MWh] %g, closed form %g, SE %g", k, s.curtailed_mwh, 0.5 * e_mw,
                  s.curtailed_mwh_se);
        /* the median deliverable in closed form: 50 - 2 (m_Y - L)^+ capped */
        double med = 50 - fmin(fmax(mu + 25 - lim, 0), 25) / 0.5;
        cr_assert(fabs(s.p50_mw - med) < 3 * s.p50_se + 1e-12, "set %d: P50 %g vs %g (SE %g)",
                  k, s.p50_mw, med, s.p50_se);
    }
    mcstat_destroy(&m);
    anm_destroy(&a);
}

Test(anm_closed, fault_with_known_probability)
{
    /* Intact: 90 MW on a 100 MW limit.  After the fault of a parallel
     * circuit (probability p in the SP) the flow becomes 130 MW against a
     * 120 MW post-fault rating: the ANM acts exactly when the fault
     * happens, with 10 / 0.8 = 12.5 MW of curtailment. */
    static const double ps[3] = {0.03, 0.2, 0.5};
    enum { N = 20000 };
    anm_constraint_def c = {.voltage_kv = 132, .kind = ANM_DANM};
    anm_tranche_def t[1] = {s_nf(0, 40, 1)};
    anm *a = s_make(1, &c, 1, 1, t, NULL, NULL);
    mcstat *m = NULL;
    pcf_error err;
    cr_assert_eq(mcstat_new(1, N, &m, &err), PCF_OK);
    double avail[1] = {40};
    for (int k = 0; k < 3; k++) {
        mcstat_reset(m);
        for (uint32_t i = 0; i < N; i++) {
            rng_stream r;
            rng_init(&r, 7, 30, i, RNG_STREAM_FAULT);
            int fault = rng_uniform(&r) < ps[k];
            double flow = fault ? 130 : 90, lim = fault ? 120 : 100;
            double sens[1] = {fault ? 0.8 : 0.6};
            anm_result res = s_solve(a, &flow, &lim, sens, avail);
            cr_assert_float_eq(res.site_curt[0], fault ? 12.5 : 0, 1e-9);
            cr_assert_eq(mcstat_record(m, 0, i, res.site_out[0], res.site_curt[0], &err),
                         PCF_OK);
        }
        mcstat_pcf s;
        cr_assert_eq(mcstat_summarise(m, 0, 0.5, &s, &err), PCF_OK);
        cr_assert(fabs(s.p_curtailed - ps[k]) < 3 * s.p_curtailed_se,
                  "p %g: frequency %g, SE %g", ps[k], s.p_curtailed, s.p_curtailed_se);
        cr_assert_float_eq(s.curtailed_mwh, s.p_curtailed * 12.5 * 0.5, 1e-9);
        cr_assert(s.p_curtailed_hi95 > s.p_curtailed);
    }
    mcstat_destroy(&m);
    anm_destroy(&a);
}

/* ---- reproducibility ---------------------------------------------------- */

enum { RN = 3000, RS = 3, RC = 2 };

typedef struct s_job {
    mcstat *m;
    const rng_mvn *mvn;
    size_t first, step, count;
    int reverse;
    int rc;
} s_job;

/* One sample of a small zone: correlated site outputs, a fault with
 * probability 0.1 that raises one constraint's flow and lowers its limit. */
static int s_sample(anm *a, const rng_mvn *mvn, mcstat *m, uint32_t i)
{
    static const double cap[RS] = {30, 20, 25};
    static const double sens_i[RC * RS] = {0.6, 0.5, -0.1, 0.3, 0.3, 0.7};
    static const double sens_f[RC * RS] = {0.9, 0.7, -0.1, 0.3, 0.3, 0.7};
    rng_stream r;
    double x[RS], avail[RS];
    rng_init(&r, 0xfeedULL, 12, i, RNG_STREAM_FORECAST);
    rng_mvn_draw(mvn, &r, x);
    for (int s = 0; s < RS; s++)
        avail[s] = fmin(fmax(x[s], 0), cap[s]);
    rng_init(&r, 0xfeedULL, 12, i, RNG_STREAM_FAULT);
    int fault = rng_uniform(&r) < 0.1;
    const double *sens = fault ? sens_f : sens_i;
    double flow[RC], lim[RC] = {fault ? 8 : 10, 24}, base[RC] = {-5, 2};
    for (int c = 0; c < RC; c++) {
        flow[c] = base[c];
        for (int s = 0; s < RS; s++)
            flow[c] += sens[c * RS + s] * avail[s];
    }
    anm_input in = {.flow = flow, .limit_fwd = lim, .sens = sens, .avail = avail};
    anm_result res;
    pcf_error err;
    if (anm_solve(a, &in, &res, &err) != PCF_OK)
        return 1;
    for (int s = 0; s < RS; s++)
        if (mcstat_record(m, (size_t)s, i, res.site_out[s], res.site_curt[s], &err) != PCF_OK)
            return 1;
    return 0;
}

static anm *s_repro_anm(void)
{
    anm_constraint_def c[RC] = {{.voltage_kv = 33, .kind = ANM_DANM},
                                {.voltage_kv = 132, .kind = ANM_TANM}};
    anm_tranche_def t[5] = {s_firm(0, 10), s_nf(0, 20, 2), s_firm(1, 5), s_nf(1, 15, 1),
                            s_nf(2, 25, 3)};
    anm_def d = {.nc = RC, .ns = RS, .nt = 5, .constraints = c, .tranches = t};
    anm *a = NULL;
    pcf_error err;
    return anm_new(&d, &a, &err) == PCF_OK ? a : NULL;
}

static void *s_worker(void *arg)
{
    s_job *j = arg;
    anm *a = s_repro_anm();   /* one per thread */
    j->rc = !a;
    for (size_t k = 0; a && k < j->count && !j->rc; k++) {
        size_t kk = j->reverse ? j->count - 1 - k : k;
        j->rc = s_sample(a, j->mvn, j->m, (uint32_t)(j->first + kk * j->step));
    }
    anm_destroy(&a);
    return NULL;
}

static void s_summaries(mcstat *m, mcstat_pcf *out)
{
    pcf_error err;
    for (size_t s = 0; s < RS; s++)
        cr_assert_eq(mcstat_summarise(m, s, 0.5, &out[s], &err), PCF_OK, "%s", err.msg);
}

Test(anm_repro, bit_identical_for_one_or_two_threads_in_any_order)
{
    double mean[RS] = {18, 12, 14}, cov[RS * RS] = {64, 30, 20, 30, 36, 12, 20, 12, 49};
    rng_mvn *mvn = NULL;
    pcf_error err;
    cr_assert_eq(rng_mvn_new(RS, mean, cov, &mvn, &err), PCF_OK);
    mcstat_pcf ref[RS], got[RS];
    mcstat *m = NULL, *m2 = NULL;
    cr_assert_eq(mcstat_new(RS, RN, &m, &err), PCF_OK);
    cr_assert_eq(mcstat_new(RS, RN, &m2, &err), PCF_OK);

    /* 1 thread, ascending */
    s_job j = {.m = m, .mvn = mvn, .first = 0, .step = 1, .count = RN};
    s_worker(&j);
    cr_assert_eq(j.rc, 0);
    s_summaries(m, ref);
    /* the case must exercise the ANM: every site curtailed sometimes */
    for (int s = 0; s < RS; s++)
        cr_assert(ref[s].p_curtailed > 0.01 && ref[s].p_curtailed < 0.9,
                  "site %d: P(curtailed) %g", s, ref[s].p_curtailed);

    /* 1 thread, descending */
    mcstat_reset(m);
    j.reverse = 1;
    s_worker(&j);
    cr_assert_eq(j.rc, 0);
    s_summaries(m, got);
    cr_assert_eq(memcmp(ref, got, sizeof ref), 0, "descending order differs");

    /* 2 threads sharing one mcstat, interleaved samples, opposite orders */
    mcstat_reset(m);
    s_job a = {.m = m, .mvn = mvn, .first = 0, .step = 2, .count = RN / 2, .reverse = 1};
    s_job b = {.m = m, .mvn = mvn, .first = 1, .step = 2, .count = RN / 2};
    pthread_t ta, tb;
    cr_assert_eq(pthread_create(&ta, NULL, s_worker, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, s_worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rc + b.rc, 0);
    s_summaries(m, got);
    cr_assert_eq(memcmp(ref, got, sizeof ref), 0, "two interleaved threads differ");

    /* 2 threads with their own accumulators (uneven halves), merged in
     * either order */
    mcstat_reset(m);
    a = (s_job){.m = m, .mvn = mvn, .first = 0, .step = 1, .count = 1000};
    b = (s_job){.m = m2, .mvn = mvn, .first = 1000, .step = 1, .count = RN - 1000, .reverse = 1};
    cr_assert_eq(pthread_create(&ta, NULL, s_worker, &a), 0);
    cr_assert_eq(pthread_create(&tb, NULL, s_worker, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert_eq(a.rc + b.rc, 0);
    cr_assert_eq(mcstat_merge(m, m2, &err), PCF_OK, "%s", err.msg);
    s_summaries(m, got);
    cr_assert_eq(memcmp(ref, got, sizeof ref), 0, "merged accumulators differ");
    mcstat *m3 = NULL;
    cr_assert_eq(mcstat_new(RS, RN, &m3, &err), PCF_OK);
    cr_assert_eq(mcstat_merge(m3, m2, &err), PCF_OK);
    mcstat_reset(m2);
    a.m = m2;
    s_worker(&a);
    cr_assert_eq(mcstat_merge(m3, m2, &err), PCF_OK);
    s_summaries(m3, got);
    cr_assert_eq(memcmp(ref, got, sizeof ref), 0, "merge order changed the result");

    mcstat_destroy(&m3);
    mcstat_destroy(&m2);
    mcstat_destroy(&m);
    rng_mvn_destroy(&mvn);
}
