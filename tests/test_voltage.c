/*
 * test_voltage.c -- voltage constraints in the numerical core (voltage.h,
 * study_set_linear): on a radial two-bus 33 kV line with a generator at the
 * far end, dV/dP from the Jacobian is the line's resistance at the flat
 * point (closed form: dV = r dP + x dQ), equals a central finite difference
 * of full AC solves elsewhere, and the linearised voltage stays within a
 * stated tolerance of the AC voltage over +-20 % of the operating point;
 * the ANM curtails an overvoltage LIFO (the later site first) by exactly
 * exceedance / sensitivity, and the AC voltage after that curtailment is at
 * the limit within the linearisation error; a de-energised monitored bus is
 * never an exceedance; results do not depend on the thread count; the AC
 * modes keep the linear voltage; on the demo zone's Beckingham busbar the
 * linear voltage is within 1e-3 p.u. of AC over a half-hour's spread; an
 * expected point past the nose of the PV curve (export or demand) is
 * linearised at the nearest solvable point of the ladder, and counted; with
 * the bus measured (study_set_voltage_bus) the full AC solve of a sample
 * decides where the tangent reads the voltage over or under the limit, and
 * curtails until the AC voltage is at it, for any thread count.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "acpf.h"
#include "pfnet.h"
#include "study.h"
#include "testnet.h"
#include "voltage.h"

#define R_PU 0.3        /* a long, weak 33 kV overhead line: r = x = 0.3 p.u. on 100 MVA */
#define X_PU 0.3
#define KV 33.0

/* Bus 1 (reference, 1.0 p.u.) -- line -- bus 2 (the generators). */
static mp_case *s_line(void)
{
    static const int br[1][2] = { { 1, 2 } };
    mp_case *c = testnet_lines(2, 1, br);
    MP_AT(&c->branch, 0, MP_BR_R) = R_PU;
    MP_AT(&c->branch, 0, MP_BR_X) = X_PU;
    return c;
}

/* |V2| from a full AC solve with p MW exported at bus 2 (imported when
 * < 0), unity power factor; NAN when AC has no solution. */
static double s_ac_v2_or_nan(double p)
{
    mp_case *c = s_line();
    pf_net *net;
    pf_ac *ac;
    pcf_error err;
    cr_assert_eq(pf_net_new(c, &net, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(pf_ac_new(net, &ac, &err), PCF_OK, "%s", err.msg);
    double pi[2] = { 0, p / 100 }, qi[2] = { 0, 0 }, vm[2], va[2];
    pf_ac_opts o = PF_AC_OPTS_DEFAULT;
    o.fresh = 1;
    pf_ac_start(ac, 1, vm, va);
    double v = pf_ac_solve(ac, pi, qi, vm, va, &o, NULL, &err) == PCF_OK ? vm[1] : NAN;
    pf_ac_destroy(&ac);
    pf_net_destroy(&net);
    mp_case_destroy(&c);
    return v;
}

static double s_ac_v2(double p)
{
    double v = s_ac_v2_or_nan(p);
    cr_assert(isfinite(v), "no AC solution at %g MW", p);
    return v;
}

/* The linear model of bus 2 linearised at p0 MW: (V - 1) * kV = off + row . p. */
typedef struct lin { double row[2], off, vm0; } lin;

/* p_site: the site's part of p0 (scaled back past the nose); fallbacks:
 * how many the call must count. */
static void s_linearise_sites(double p0, double p_site, size_t fallbacks, lin *out)
{
    mp_case *c = s_line();
    study_constraint k = { 0, NULL, NULL, KV, ANM_DANM, 1.0, 1.0, 1 };
    study_site site = { 2, 1000 };
    anm_tranche_def tr = { 0, 1000, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 0, &k, &site, &tr, NULL, NULL, 100, 1, 1, NULL };
    study_topology *t;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &t, &err), PCF_OK, "%s", err.msg);
    int bus = 1;
    double kv = KV;
    voltage_def vd = { c, 1, &bus, &kv };
    voltage *v;
    cr_assert_eq(voltage_new(&vd, &v, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(voltage_nb(v), 2);
    double p[2] = { 0, p0 }, q[2] = { 0, 0 }, ps[2] = { 0, p_site };
    cr_assert_eq(voltage_linearise(v, t, p, q, ps, out->row, &out->off, &out->vm0, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(voltage_fallbacks(v), fallbacks);
    voltage_destroy(&v);
    study_topology_destroy(&t);
    mp_case_destroy(&c);
}

static void s_linearise(double p0, lin *out)
{
    s_linearise_sites(p0, p0, 0, out);
}

Test(voltage, sensitivity_at_the_flat_point_is_the_line_resistance)
{
    /* V2 = V1 + z conj(S2 / V2): at V = 1 and S = 0, dV2 = r dP + x dQ. */
    lin l;
    s_linearise(0, &l);
    cr_assert_float_eq(l.vm0, 1.0, 1e-12);
    double dvdp_pu = l.row[1] / KV * 100;      /* kV/MW -> p.u./p.u. */
    cr_assert_float_eq(dvdp_pu, R_PU, 1e-9, "dV/dP %.12g against r %.12g", dvdp_pu, R_PU);
    cr_assert_eq(l.row[0], 0, "the reference bus balances: its injection moves nothing");
    cr_assert_float_eq(l.off, 0, 1e-12);
}

Test(voltage, linearisation_matches_ac_around_the_operating_point)
{
    const double p0 = 20;
    lin l;
    s_linearise(p0, &l);
    cr_assert_float_eq(l.vm0, s_ac_v2(p0), 1e-9, "the model is exact at its operating point");
    /* dV/dP against a central difference of full AC solves */
    double h = 0.01, fd = (s_ac_v2(p0 + h) - s_ac_v2(p0 - h)) / (2 * h);
    cr_assert_float_eq(l.row[1] / KV, fd, 1e-7, "dV/dP %.9g p.u./MW, finite difference %.9g", l.row[1] / KV, fd);
    /* Over +-20 % of the operating point (+-4 MW, the spread of a half-hour's
     * forecast error) the linear voltage is within 1e-3 p.u. of AC (0.1 % of
     * nominal: a tenth of the 1 % a DNO's voltage measurement resolves). */
    double worst = 0;
    for (double p = 0.8 * p0; p <= 1.2 * p0 + 1e-9; p += 0.5) {
        double v_lin = 1 + (l.off + l.row[1] * p) / KV;
        worst = fmax(worst, fabs(v_lin - s_ac_v2(p)));
    }
    cr_assert_lt(worst, 1e-3, "linearisation error %.3g p.u. over +-20 %%", worst);
}

/* Two sites at bus 2 (A oldest, LIFO 1; B newest, LIFO 2), 15 MW each, exact
 * forecasts; the voltage constraint's limit vmax, and with thermal > 0 a
 * thermal constraint on the line (export 2 -> 1) limited to it, listed
 * first.  Returns each site's curtailment (MW, from the expected MWh over
 * the half-hour) and the voltage constraint's P(acts) and flow P50. */
static void s_two_sites_ac(double vmax, int threads, int ac, double thermal, double curt[2], double *p_acts,
                           double *flow_p50)
{
    mp_case *c = s_line();
    int brow = 0;
    double sign = -1;
    study_constraint k[2] = { { 1, &brow, &sign, KV, ANM_DANM, 1.0, 1.0, 0 }, { 0, NULL, NULL, KV, ANM_DANM, 1.0, 1.0, 1 } };
    size_t nc = thermal > 0 ? 2 : 1, vc = nc - 1;
    study_site site[2] = { { 2, 15 }, { 2, 15 } };
    anm_tranche_def tr[2] = { { 0, 15, 0, 1, ANM_DANM }, { 1, 15, 0, 2, ANM_DANM } };
    study_def d = { c, nc, 2, 2, 0, &k[2 - nc], site, tr, NULL, NULL, 700, 5, threads, NULL };
    study_topology *t;
    study *s;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &t, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_set_ac(s, ac, 0.005, &err), PCF_OK, "%s", err.msg);
    int bus = 1;
    double kv = KV;
    voltage_def vd = { c, 1, &bus, &kv };
    voltage *v;
    cr_assert_eq(voltage_new(&vd, &v, &err), PCF_OK, "%s", err.msg);
    double p[2] = { 0, 30 }, q[2] = { 0, 0 }, row[2], off, rev[2] = { 0, 0 };
    rev[vc] = (1 - 0.94) * KV;
    cr_assert_eq(voltage_linearise(v, t, p, q, NULL, row, &off, NULL, &err), PCF_OK, "%s", err.msg);
    double mean[2] = { 15, 15 }, demand[2] = { 0, 0 }, lim[2] = { thermal, thermal };
    lim[vc] = (vmax - 1) * KV;
    study_sp sp = { t, 0.5, mean, NULL, demand, NULL, NULL, lim, lim, NULL };
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_ERR_INVALID, "a linear constraint needs its model");
    double bad = NAN;
    cr_assert_eq(study_set_linear(s, row, &bad, rev, &err), PCF_ERR_INVALID, "a model must be finite");
    cr_assert_eq(study_set_linear(s, row, &off, rev, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_OK, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        mcstat_pcf r;
        cr_assert_eq(study_site_result(s, (size_t)i, &r, &err), PCF_OK, "%s", err.msg);
        curt[i] = r.curtailed_mwh / 0.5;
        cr_assert_float_eq(study_sens(s, vc, (size_t)i), row[1], 1e-15, "a site's sensitivity is its bus's dV/dP");
        cr_assert_eq(study_sens_in(s, 0, vc, (size_t)i), study_sens(s, vc, (size_t)i));
        cr_assert_eq(study_sens_in(s, 1, vc, (size_t)i), 0, "no such state");
    }
    const study_constraint_result *cr = study_constraint_result_get(s, vc);
    *p_acts = cr->p_acts;
    *flow_p50 = cr->flow_p50;
    study_destroy(&s);
    voltage_destroy(&v);
    study_topology_destroy(&t);
    mp_case_destroy(&c);
}

static void s_two_sites(double vmax, int threads, double curt[2], double *p_acts, double *flow_p50)
{
    s_two_sites_ac(vmax, threads, STUDY_AC_OFF, 0, curt, p_acts, flow_p50);
}

Test(voltage, lifo_clears_an_overvoltage_by_exceedance_over_sensitivity)
{
    lin l;
    s_linearise(30, &l);
    double s = l.row[1] / KV;                  /* p.u. per MW */
    /* A limit that needs 20 MW off: all of B's 15 MW, then 5 of A's. */
    double vmax = l.vm0 - 20 * s;
    cr_assert(vmax > 1.0 && vmax < 1.2, "test set-up: vmax %g", vmax);
    double curt[2], p_acts, p50;
    s_two_sites(vmax, 1, curt, &p_acts, &p50);
    cr_assert_float_eq(p50, (l.vm0 - 1) * KV, 1e-9, "the statement's flow is the kV deviation");
    cr_assert_float_eq(p_acts, 1.0, 1e-12);
    cr_assert_float_eq(curt[1], 15.0, 1e-6, "the newest site (LIFO 2) goes first and entirely: %g", curt[1]);
    cr_assert_float_eq(curt[0], 5.0, 1e-6, "then 5 MW of the oldest: %g", curt[0]);
    /* The AC voltage at the curtailed output clears the limit, by no more
     * than the linearisation error of a 20 MW swing, two thirds of the
     * output (measured 3.6e-3 p.u.; stated bound 5e-3): V is convex in P
     * here, so the tangent at the operating point over-curtails a little. */
    double v_after = s_ac_v2(30 - 20);
    cr_assert(v_after <= vmax && vmax - v_after < 5e-3, "AC %.5f p.u. after curtailment, limit %.5f", v_after, vmax);
    /* A limit above the voltage curtails nothing. */
    s_two_sites(l.vm0 + 0.001, 1, curt, &p_acts, &p50);
    cr_assert_eq(curt[0] + curt[1], 0);
    cr_assert_eq(p_acts, 0);
}

Test(voltage, thread_count_does_not_change_a_bit)
{
    lin l;
    s_linearise(30, &l);
    double vmax = l.vm0 - 8 * l.row[1] / KV, c1[2], c2[2], a1, a2, f1, f2;
    s_two_sites(vmax, 1, c1, &a1, &f1);
    s_two_sites(vmax, 3, c2, &a2, &f2);
    cr_assert(memcmp(c1, c2, sizeof c1) == 0 && a1 == a2 && f1 == f2);
    cr_assert_float_eq(c1[1], 8.0, 1e-6);
}

Test(voltage, rejects_a_bus_that_is_not_there)
{
    mp_case *c = s_line();
    int bus = 7;
    double kv = KV;
    voltage_def vd = { c, 1, &bus, &kv };
    voltage *v;
    pcf_error err;
    cr_assert_eq(voltage_new(&vd, &v, &err), PCF_ERR_INVALID);
    bus = 1;
    kv = 0;
    cr_assert_eq(voltage_new(&vd, &v, &err), PCF_ERR_INVALID, "a bus without a base kV");
    mp_case_destroy(&c);
}

Test(voltage, a_de_energised_bus_is_never_an_exceedance)
{
    /* 1 - 2 - 3 with the generator at 3 and the 2-3 circuit out (planned):
     * bus 3 is islanded and de-energised, so its voltage constraint has
     * nothing to watch and the site there delivers nothing. */
    static const int br[2][2] = { { 1, 2 }, { 2, 3 } };
    mp_case *c = testnet_lines(3, 2, br);
    study_constraint k = { 0, NULL, NULL, KV, ANM_DANM, 1.0, 1.0, 1 };
    study_site site = { 3, 50 };
    anm_tranche_def tr = { 0, 50, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 0, &k, &site, &tr, NULL, NULL, 64, 3, 1, NULL };
    study_topology *t;
    study *s;
    pcf_error err;
    int out = 1;
    cr_assert_eq(study_topology_new(&d, &out, 1, &t, &err), PCF_OK, "%s", err.msg);
    cr_assert(study_topology_dead(t, 0, 2));
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    int bus = 2;
    double kv = KV;
    voltage_def vd = { c, 1, &bus, &kv };
    voltage *v;
    cr_assert_eq(voltage_new(&vd, &v, &err), PCF_OK, "%s", err.msg);
    double p[3] = { 0, 0, 40 }, q[3] = { 0, 0, 0 }, row[3], off, vm0;
    cr_assert_eq(voltage_linearise(v, t, p, q, NULL, row, &off, &vm0, &err), PCF_OK, "%s", err.msg);
    cr_assert(row[0] == 0 && row[1] == 0 && row[2] == 0 && off == 0 && vm0 == 0);
    double mean = 40, demand[3] = { 0, 0, 0 }, lim = 0.001 * KV;
    study_sp sp = { t, 0.5, &mean, NULL, demand, NULL, NULL, &lim, &lim, NULL };
    cr_assert_eq(study_set_linear(s, row, &off, NULL, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_constraint_result_get(s, 0)->p_acts, 0);
    voltage_destroy(&v);
    study_destroy(&s);
    study_topology_destroy(&t);
    mp_case_destroy(&c);
}

Test(voltage, ac_modes_keep_the_linear_voltage)
{
    /* Without study_set_voltage_bus, the screened AC mode (the engine's
     * default) and a full AC solve of every sample measure branch flows,
     * not voltages: a voltage constraint keeps its linear model there, so the curtailment is the
     * DC mode's, and its sensitivities are not replaced by the screened
     * branch ones (which are 0 for a constraint without branches).  With a
     * thermal constraint on the line limited to 29 MW (it acts at 30 MW
     * exported), the screened mode re-linearises the intact state where the
     * ANM acts at the mean (its second tangent) and hands acting samples
     * those rows: the voltage constraint keeps its own there too, and takes
     * part in finding that point.  The voltage needs 20 MW off and decides. */
    lin l;
    s_linearise(30, &l);
    double vmax = l.vm0 - 20 * l.row[1] / KV;
    int modes[3] = { STUDY_AC_OFF, STUDY_AC_SCREEN, STUDY_AC_ALL };
    for (int th = 0; th < 2; th++)
        for (int m = 0; m < 3; m++) {
            double curt[2], p_acts, p50;
            s_two_sites_ac(vmax, 2, modes[m], th ? 29 : 0, curt, &p_acts, &p50);
            cr_assert_float_eq(curt[1], 15.0, 1e-6, "mode %d thermal %d: newest %g", modes[m], th, curt[1]);
            cr_assert_float_eq(curt[0], 5.0, 1e-6, "mode %d thermal %d: oldest %g", modes[m], th, curt[0]);
            cr_assert_float_eq(p_acts, 1.0, 1e-12);
        }
}

/* |V| at every bus from a full AC solve of case c with injections p, q (MW,
 * MVAr per case row). */
static void s_ac_case(const mp_case *c, const double *p, const double *q, double *vm_row)
{
    pf_net *net;
    pf_ac *ac;
    pcf_error err;
    cr_assert_eq(pf_net_new(c, &net, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(pf_ac_new(net, &ac, &err), PCF_OK, "%s", err.msg);
    double *pi = calloc(net->nb, sizeof(double)), *qi = calloc(net->nb, sizeof(double));
    double *vm = calloc(net->nb, sizeof(double)), *va = calloc(net->nb, sizeof(double));
    cr_assert(pi && qi && vm && va);
    for (size_t b = 0; b < net->nb; b++) {
        pi[b] = p[net->bus_row[b]] / c->base_mva;
        qi[b] = q[net->bus_row[b]] / c->base_mva;
    }
    pf_ac_start(ac, 1, vm, va);
    cr_assert_eq(pf_ac_solve(ac, pi, qi, vm, va, NULL, NULL, &err), PCF_OK, "%s", err.msg);
    for (size_t b = 0; b < net->nb; b++) vm_row[net->bus_row[b]] = vm[b];
    free(pi);
    free(qi);
    free(vm);
    free(va);
    pf_ac_destroy(&ac);
    pf_net_destroy(&net);
}

Test(voltage, demo_zone_linear_voltage_within_stated_error_of_ac)
{
    /* Beckingham's 33 kV busbar (bus 31) in the demo zone at a sunny
     * midday: its three sites at 80 % of export, every primary's demand at
     * half its case value (pf 0.95).  Samples move each site by up to +-20 %
     * of its export and each demand by +-10 %; the linear voltage must stay
     * within 1e-3 p.u. of AC (measured 2.5e-4 at worst, V0 1.105 p.u.):
     * a sixtieth of the 6 % statutory band. */
    pcf_error err;
    mp_case *c = mp_case_read("deploy/demo/zone/kestrel_cross.m", &err);
    cr_assert(c, "%s", err.msg);
    size_t nbus = c->bus.rows;
    double *p0 = calloc(nbus, sizeof(double)), *q0 = calloc(nbus, sizeof(double));
    double *p = calloc(nbus, sizeof(double)), *q = calloc(nbus, sizeof(double)), *vm = calloc(nbus, sizeof(double));
    cr_assert(p0 && q0 && p && q && vm);
    double tanphi = tan(acos(0.95));
    for (size_t r = 0; r < nbus; r++) {
        double pd = 0.5 * MP_AT(&c->bus, r, MP_PD);
        p0[r] = -pd;
        q0[r] = -pd * tanphi;
    }
    static const struct { double bus, export; } site[3] = { { 76, 12 }, { 51, 5 }, { 51, 2.3 } };
    for (int i = 0; i < 3; i++) p0[mp_case_bus_row(c, site[i].bus)] += 0.8 * site[i].export;
    study_constraint k = { 0, NULL, NULL, 33, ANM_DANM, 1.0, 1.0, 1 };
    study_def d = { c, 1, 0, 0, 0, &k, NULL, NULL, NULL, NULL, 100, 1, 1, NULL };
    study_topology *t;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &t, &err), PCF_OK, "%s", err.msg);
    int bus = (int)mp_case_bus_row(c, 31);
    double kv = 33;
    voltage_def vd = { c, 1, &bus, &kv };
    voltage *v;
    cr_assert_eq(voltage_new(&vd, &v, &err), PCF_OK, "%s", err.msg);
    size_t nb = voltage_nb(v);
    cr_assert_eq(nb, nbus, "the demo case has no isolated bus");
    double *row = calloc(nb, sizeof(double)), off, vm0;
    cr_assert(row);
    cr_assert_eq(voltage_linearise(v, t, p0, q0, NULL, row, &off, &vm0, &err), PCF_OK, "%s", err.msg);
    s_ac_case(c, p0, q0, vm);
    cr_assert_float_eq(vm0, vm[bus], 1e-9);
    cr_assert(vm0 > 1.06, "a sunny midday is an overvoltage there: %.4f", vm0);
    rng_stream r;
    rng_init(&r, 99, 0, 0, RNG_STREAM_FORECAST);
    double worst = 0;
    for (int n = 0; n < 40; n++) {
        memcpy(p, p0, nbus * sizeof(double));
        memcpy(q, q0, nbus * sizeof(double));
        for (size_t b = 0; b < nbus; b++) {
            double f = 0.1 * (2 * rng_uniform(&r) - 1), pd = 0.5 * MP_AT(&c->bus, b, MP_PD);
            p[b] -= f * pd;                     /* demand +-10 %, its Q held: as the model does */
        }
        for (int i = 0; i < 3; i++) p[mp_case_bus_row(c, site[i].bus)] += 0.2 * site[i].export * (2 * rng_uniform(&r) - 1);
        double lin = off;
        for (size_t b = 0; b < nb; b++) lin += row[b] * p[b];      /* internal = case order here */
        s_ac_case(c, p, q, vm);
        worst = fmax(worst, fabs(1 + lin / kv - vm[bus]));
    }
    cr_assert_lt(worst, 1e-3, "linear voltage %.3g p.u. from AC at worst", worst);
    free(row);
    free(p0);
    free(q0);
    free(p);
    free(q);
    free(vm);
    voltage_destroy(&v);
    study_topology_destroy(&t);
    mp_case_destroy(&c);
}

/* p0 MW at bus 2 beyond the nose: linearise with the site's part p_site. */
static void s_past_the_nose(double p0, double p_site)
{
    cr_assert(isnan(s_ac_v2_or_nan(p0)), "%g MW must have no AC solution for this test to mean anything", p0);
    /* the ladder's point: the largest tenth of p0 that solves */
    int k = 10;
    while (k > 0 && isnan(s_ac_v2_or_nan(p0 * k / 10))) k--;
    cr_assert_gt(k, 0);
    lin l;
    s_linearise_sites(p0, p_site, 1, &l);      /* the run goes on past the nose, counted */
    double pk = p0 * k / 10, vk = s_ac_v2(pk);
    cr_assert_float_eq(l.vm0, vk, 1e-9, "linearised at %g MW: V %.9g against AC %.9g", pk, l.vm0, vk);
    cr_assert_float_eq(1 + (l.off + l.row[1] * pk) / KV, vk, 1e-9, "the model is exact at its point");
    cr_assert(isfinite(l.row[1]) && l.row[1] != 0);
}

Test(voltage, an_intact_point_past_the_nose_scales_the_sites_back)
{
    /* a site exporting 600 MW down a 0.42 p.u. line: no AC solution */
    s_past_the_nose(600, 600);
}

Test(voltage, a_demand_past_the_nose_scales_every_injection_back)
{
    /* demand of 300 MW, no sites to scale: every injection is */
    s_past_the_nose(-300, 0);
}

/* One site of 40 MW at bus 2 whose expected output is p MW (spread sd MW),
 * the voltage model the tangent at p_lin MW (voltage_linearise), limit
 * vmax; in AC mode `ac` (band 0.5), with the full solve measuring bus 2
 * when measure is set (study_set_voltage_bus).  Out: the site's expected
 * curtailment (MW) and its result. */
static double s_site_off_tangent(double p, double sd, double p_lin, double vmax, int ac, int measure, int threads,
                                 mcstat_pcf *out)
{
    mp_case *c = s_line();
    study_constraint k = { 0, NULL, NULL, KV, ANM_DANM, 1.0, 1.0, 1 };
    study_site site = { 2, 40 };
    anm_tranche_def tr = { 0, 40, 0, 1, ANM_DANM };
    study_def d = { c, 1, 1, 1, 0, &k, &site, &tr, NULL, NULL, 700, 5, threads, NULL };
    study_topology *t;
    study *s;
    pcf_error err;
    cr_assert_eq(study_topology_new(&d, NULL, 0, &t, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_new(&d, &s, &err), PCF_OK, "%s", err.msg);
    int bus = 1, nobus = 9;
    cr_assert_eq(study_set_voltage_bus(s, &nobus, &err), PCF_ERR_INVALID, "a bus that is not there");
    if (measure) cr_assert_eq(study_set_voltage_bus(s, &bus, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_set_ac(s, ac, 0.5, &err), PCF_OK, "%s", err.msg);
    lin l;
    s_linearise(p_lin, &l);
    cr_assert_eq(study_set_linear(s, l.row, &l.off, NULL, &err), PCF_OK, "%s", err.msg);
    rng_mvn *mvn = NULL;
    double var = sd * sd;
    if (sd > 0) cr_assert_eq(rng_mvn_new(1, NULL, &var, &mvn, &err), PCF_OK, "%s", err.msg);
    double mean = p, demand[2] = { 0, 0 }, lim = (vmax - 1) * KV;
    study_sp sp = { t, 0.5, &mean, mvn, demand, NULL, NULL, &lim, &lim, NULL };
    cr_assert_eq(study_run_sp(s, 1, &sp, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(study_site_result(s, 0, out, &err), PCF_OK, "%s", err.msg);
    rng_mvn_destroy(&mvn);
    study_destroy(&s);
    study_topology_destroy(&t);
    mp_case_destroy(&c);
    return out->curtailed_mwh / 0.5;
}

Test(voltage, the_full_solve_measures_the_voltage_where_the_tangent_is_over_the_limit)
{
    /* The tangent at 20 MW reads the voltage at 30 MW high (1.08076
     * against AC 1.07987 p.u.: V is concave in P between the two): a
     * limit between the two is an overvoltage of the linear model only.
     * Without AC, or solved in full without the bus measured (the old
     * behaviour), the ANM curtails; with the bus measured, the full solve
     * decides and curtails nothing. */
    lin l;
    s_linearise(20, &l);
    double v_lin = 1 + (l.off + l.row[1] * 30) / KV, v_ac = s_ac_v2(30), vmax = (v_lin + v_ac) / 2;
    cr_assert(v_lin - v_ac > 1e-4, "test set-up: tangent %.6f against AC %.6f p.u.", v_lin, v_ac);
    mcstat_pcf r;
    cr_assert_gt(s_site_off_tangent(30, 0, 20, vmax, STUDY_AC_OFF, 1, 1, &r), 0, "linear: over the limit");
    cr_assert_gt(s_site_off_tangent(30, 0, 20, vmax, STUDY_AC_BAND, 0, 1, &r), 0, "bus not measured: linear flow");
    int modes[2] = { STUDY_AC_BAND, STUDY_AC_ALL };
    for (int m = 0; m < 2; m++)
        cr_assert_eq(s_site_off_tangent(30, 0, 20, vmax, modes[m], 1, 1, &r), 0, "mode %d: AC is under the limit",
                     modes[m]);
}

Test(voltage, the_full_solve_curtails_to_the_ac_voltage_at_the_limit)
{
    /* A limit under both: the linear model curtails by its tangent; the
     * full solve with the bus measured, through its re-solve rounds, until
     * the AC voltage is at the limit. */
    lin l;
    s_linearise(20, &l);
    double vmax = s_ac_v2(30) - 0.005;
    mcstat_pcf r;
    double c_lin = s_site_off_tangent(30, 0, 20, vmax, STUDY_AC_OFF, 1, 1, &r);
    int modes[2] = { STUDY_AC_BAND, STUDY_AC_ALL };
    for (int m = 0; m < 2; m++) {
        double curt = s_site_off_tangent(30, 0, 20, vmax, modes[m], 1, 1, &r);
        double v_after = s_ac_v2(30 - curt);
        cr_assert_float_eq(v_after, vmax, 1e-5, "mode %d: AC %.7f p.u. after %.4f MW off, limit %.7f", modes[m],
                           v_after, curt, vmax);
        cr_assert(fabs(curt - c_lin) > 0.1, "mode %d: AC %.4f MW against linear %.4f MW", modes[m], curt, c_lin);
    }
}

Test(voltage, the_screened_second_tangent_is_the_ac_voltage_one)
{
    /* Screened AC (the engine's default): a sample far above the limit is
     * outside the band and takes its curtailment from the second tangent,
     * at the mean curtailed by the first.  With the bus measured that
     * tangent is the AC voltage's (pf_ac_vm_sens at that point), so the
     * curtailment lands near where the AC voltage is at the limit; without,
     * it is the caller's model's, off by its curvature. */
    double vmax = s_ac_v2(30) - 0.005;
    mcstat_pcf r;
    double c_ac = s_site_off_tangent(30, 0, 20, vmax, STUDY_AC_ALL, 1, 1, &r);
    double c_lin = s_site_off_tangent(30, 0, 20, vmax, STUDY_AC_SCREEN, 0, 1, &r);
    double c_scr = s_site_off_tangent(30, 0, 20, vmax, STUDY_AC_SCREEN, 1, 1, &r);
    cr_assert(fabs(c_scr - c_ac) < 0.1 * fabs(c_lin - c_ac), "screened %.5f MW, linear %.5f MW, AC %.5f MW", c_scr,
              c_lin, c_ac);
}

Test(voltage, measured_voltage_does_not_depend_on_the_thread_count)
{
    lin l;
    s_linearise(20, &l);
    double vmax = 1 + (l.off + l.row[1] * 30) / KV, c1, c3;
    mcstat_pcf r1, r3;
    c1 = s_site_off_tangent(30, 4, 20, vmax, STUDY_AC_BAND, 1, 1, &r1);
    c3 = s_site_off_tangent(30, 4, 20, vmax, STUDY_AC_BAND, 1, 3, &r3);
    cr_assert_gt(c1, 0);
    cr_assert(c1 == c3 && memcmp(&r1, &r3, sizeof r1) == 0, "1 thread %.17g MW, 3 threads %.17g MW", c1, c3);
    c1 = s_site_off_tangent(30, 4, 20, vmax, STUDY_AC_SCREEN, 1, 1, &r1);
    c3 = s_site_off_tangent(30, 4, 20, vmax, STUDY_AC_SCREEN, 1, 3, &r3);
    cr_assert_gt(c1, 0);
    cr_assert(c1 == c3 && memcmp(&r1, &r3, sizeof r1) == 0, "screened: 1 thread %.17g MW, 3 threads %.17g MW", c1,
              c3);
}
