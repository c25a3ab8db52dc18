/*
 * test_zone.c -- zone_load against a real PostgreSQL: MATPOWER's case9 with
 * the registry of tests/data/registry/case9 imported through bin/pcf-db, as
 * an operator would, then every field the engine reads is checked against
 * the CSV files by hand.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "db.h"
#include "netmodel.h"
#include "sptime.h"
#include "testdb.h"
#include "zone.h"

#define ZOUT 16384

static void s_zone_pcfdb(const testdb *db, const char *args)
{
    char cmd[1024], out[ZOUT];
    snprintf(cmd, sizeof cmd, "%s/pcf-db %s", testdb_bindir(), args);
    int rc = testdb_run(db, cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "pcf-db %s: %s", args, out);
}

/* A migrated database holding zone T = case9 + its registry. */
static PGconn *s_zone_db(testdb *db, const char *tag)
{
    testdb_create(db, tag);
    s_zone_pcfdb(db, "migrate");
    s_zone_pcfdb(db, "import-matpower --zone T tests/data/matpower/cases/case9.m");
    s_zone_pcfdb(db, "import-der --zone T tests/data/registry/case9");
    s_zone_pcfdb(db, "import-anm --zone T tests/data/registry/case9");
    s_zone_pcfdb(db, "import-points --zone T tests/data/registry/case9_points.csv");
    return testdb_connect(db);
}

static zone *s_load(PGconn *c, const char *season)
{
    pcf_error err = { 0 };
    zone *z = NULL;
    pcf_rc rc = zone_load(c, "T", season, &z, &err);
    cr_assert_eq(rc, PCF_OK, "zone_load: %s", err.msg);
    cr_assert_not_null(z);
    return z;
}

static void s_rating(const zone_rating *r, double cont, double pel, double post, bool has_pel, bool db)
{
    cr_assert_float_eq(r->continuous_mva, cont, 1e-12);
    cr_assert_float_eq(r->pel_mva, pel, 1e-12);
    cr_assert_float_eq(r->post_fault_mva, post, 1e-12);
    cr_assert_eq(r->has_pel, has_pel);
    cr_assert_eq(r->from_db, db);
}

Test(zone, case9_network_branches_and_ratings)
{
    testdb db;
    PGconn *c = s_zone_db(&db, "zonenet");
    zone *z = s_load(c, NULL);
    cr_assert_str_eq(z->id, "T");
    cr_assert_eq(z->season, -1);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_IDLE, "the load's own transaction is closed");

    /* The network is exactly what netmodel_export gives (and the file). */
    pcf_error err = { 0 };
    mp_case *ref = netmodel_export(c, "T", &err);
    cr_assert_not_null(ref, "%s", err.msg);
    cr_assert_eq(z->mpc->bus.rows, 9);
    cr_assert_eq(z->mpc->branch.rows, 9);
    cr_assert_eq(z->mpc->branch.cols, ref->branch.cols);
    cr_assert(memcmp(z->mpc->branch.v, ref->branch.v, 9 * ref->branch.cols * sizeof(double)) == 0);
    cr_assert(memcmp(z->mpc->bus.v, ref->bus.v, 9 * ref->bus.cols * sizeof(double)) == 0);
    cr_assert_float_eq(z->mpc->base_mva, 100.0, 0);
    mp_case_destroy(&ref);

    /* branches.csv: GT1 (row 0), L45 (row 1), L67 (row 4); the rest unnamed lines. */
    cr_assert_str_eq(z->branch[0].name, "GT1");
    cr_assert_eq(z->branch[0].kind, ZONE_TRANSFORMER);
    cr_assert_float_eq(z->branch[0].faults_per_year, 0.02, 1e-15);
    cr_assert_float_eq(z->branch[0].mean_repair_hours, 168, 1e-12);
    cr_assert_not(z->branch[0].fault_stats_default);
    cr_assert_str_eq(z->branch[1].name, "L45");
    cr_assert_eq(z->branch[1].kind, ZONE_LINE);
    cr_assert_float_eq(z->branch[1].faults_per_year, 0.1, 1e-15);
    cr_assert_float_eq(z->branch[1].mean_repair_hours, 24, 1e-12);
    cr_assert_str_eq(z->branch[4].name, "L67");
    cr_assert_eq(z->branch[4].kind, ZONE_CABLE);
    cr_assert_float_eq(z->branch[4].faults_per_year, 0.05, 1e-15);
    cr_assert_float_eq(z->branch[4].mean_repair_hours, 72, 1e-12);
    for (size_t i = 0; i < 9; i++) {
        cr_assert_gt(z->branch[i].branch_id, 0);
        if (i == 0 || i == 1 || i == 4) continue;
        cr_assert_str_eq(z->branch[i].name, "", "row %zu", i);
        cr_assert_eq(z->branch[i].kind, ZONE_LINE);
        cr_assert(z->branch[i].fault_stats_default);
        cr_assert_float_eq(z->branch[i].faults_per_year, ZONE_DEFAULT_LINE_FAULTS_PER_YEAR, 0);
        cr_assert_float_eq(z->branch[i].mean_repair_hours, ZONE_DEFAULT_LINE_REPAIR_HOURS, 0);
    }
    cr_assert_eq(zone_branch_find(z, "L67"), 4);
    cr_assert_eq(zone_branch_find(z, "nope"), -1);
    cr_assert_eq(zone_branch_find(z, ""), -1);

    /* ratings.csv, and MATPOWER's rateA/rateC where a season has no row. */
    s_rating(&z->branch[0].rating[ZONE_WINTER], 250, 200, 300, true, true);
    s_rating(&z->branch[0].rating[ZONE_SUMMER], 220, 180, 260, true, true);
    s_rating(&z->branch[0].rating[ZONE_SPRING], 250, 250, 250, false, false);
    s_rating(&z->branch[1].rating[ZONE_WINTER], 250, 250, 250, false, true);
    s_rating(&z->branch[1].rating[ZONE_AUTUMN], 250, 250, 250, false, false);
    s_rating(&z->branch[4].rating[ZONE_SUMMER], 150, 120, 180, true, true);
    s_rating(&z->branch[4].rating[ZONE_WINTER], 150, 150, 150, false, false);
    s_rating(&z->branch[3].rating[ZONE_SUMMER], 300, 300, 300, false, false);

    /* Seasons by instant: 2026-01-15 winter, 2026-07-01 summer; forced season wins. */
    int64_t jan, jul;
    cr_assert_eq(sptime_sp_start(2026, 1, 15, 1, &jan), PCF_OK);
    cr_assert_eq(sptime_sp_start(2026, 7, 1, 20, &jul), PCF_OK);
    cr_assert_float_eq(zone_rating_at(z, 0, jan)->pel_mva, 200, 0);
    cr_assert_float_eq(zone_rating_at(z, 0, jul)->pel_mva, 180, 0);
    zone_destroy(&z);
    cr_assert_null(z);
    zone_destroy(&z);
    z = s_load(c, "summer");
    cr_assert_eq(z->season, ZONE_SUMMER);
    cr_assert_float_eq(zone_rating_at(z, 0, jan)->pel_mva, 180, 0);
    zone_destroy(&z);
    PQfinish(c);
    testdb_drop(&db);
}

Test(zone, case9_register_constraints_points)
{
    testdb db;
    PGconn *c = s_zone_db(&db, "zonereg");
    /* Withdrawn, offered and enquiry tranches are not in the queue. */
    testdb_exec(c, "INSERT INTO der_enquiry (enquiry_id, site_id, zone_id, capacity_mw, firm, lifo_position,"
                   " anm_type, status) VALUES ('E7', 'S1', 'T', 7, false, 7, 'DANM', 'withdrawn'),"
                   " ('E8', 'S4', 'T', 8, false, 8, 'DANM', 'offered'),"
                   " ('E9', 'S4', 'T', 9, false, 9, 'TANM', 'enquiry')");
    zone *z = s_load(c, NULL);

    /* sites.csv + machines.csv + enquiries.csv */
    cr_assert_eq(z->nsite, 4);
    const char *ids[] = { "S1", "S2", "S3", "S4" };
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(z->site[i].id, ids[i]);
        cr_assert_eq(zone_site_find(z, ids[i]), (long)i);
    }
    cr_assert_eq(zone_site_find(z, "S0"), -1);
    cr_assert_eq(zone_site_find(z, "S5"), -1);
    const zone_site *s1 = &z->site[0], *s2 = &z->site[1], *s3 = &z->site[2], *s4 = &z->site[3];
    cr_assert_str_eq(s1->name, "Hill Farm Solar");
    cr_assert_float_eq(s1->bus_label, 5, 0);
    cr_assert_eq(s1->bus_row, 4);
    cr_assert_float_eq(s1->export_mw, 20, 0);
    cr_assert_float_eq(s1->import_mw, 0.5, 0);
    cr_assert_float_eq(s1->latitude, 51.5, 1e-12);
    cr_assert_float_eq(s1->longitude, -1.2, 1e-12);
    cr_assert_eq(s1->fuel, ZONE_FUEL_SOLAR);
    cr_assert_float_eq(s1->installed_mw, 24, 0);
    cr_assert_float_eq(s1->nonfirm_mw, 20, 0);
    cr_assert_float_eq(s1->firm_mw, 0, 0);
    cr_assert_eq(s1->lifo_position, 1);
    cr_assert_eq(s1->anm, ZONE_DANM);
    cr_assert_not(s1->firm);
    cr_assert_eq(s1->nmachine, 1);
    const zone_machine *m1 = &z->machine[s1->machine_first];
    cr_assert_str_eq(m1->id, "M1");
    cr_assert_eq(m1->site, 0);
    cr_assert_float_eq(m1->capacity_mw, 24, 0);
    cr_assert_float_eq(m1->tilt_deg, 30, 0);
    cr_assert_float_eq(m1->azimuth_deg, 180, 0);
    cr_assert(m1->tilt_given && m1->azimuth_given && !m1->hub_height_given);
    cr_assert_float_eq(m1->hub_height_m, ZONE_DEFAULT_HUB_HEIGHT_M, 0);

    cr_assert_eq(s2->bus_row, 6);
    cr_assert_float_eq(s2->export_mw, 30, 0);
    cr_assert_float_eq(s2->import_mw, 0, 0);
    cr_assert_eq(s2->fuel, ZONE_FUEL_WIND);
    cr_assert_float_eq(s2->nonfirm_mw, 30, 0);
    cr_assert_eq(s2->lifo_position, 4);
    cr_assert_eq(s2->anm, ZONE_DANM | ZONE_TANM);
    const zone_machine *m2 = &z->machine[s2->machine_first];
    cr_assert_str_eq(m2->id, "M2");
    cr_assert(m2->hub_height_given && !m2->tilt_given);
    cr_assert_float_eq(m2->hub_height_m, 80, 0);

    cr_assert_eq(s3->bus_row, 8);
    cr_assert(isnan(s3->latitude) && isnan(s3->longitude));
    cr_assert_eq(s3->fuel, ZONE_FUEL_BATTERY);
    cr_assert_float_eq(s3->import_mw, 10, 0);
    cr_assert_eq(s3->lifo_position, 3);
    cr_assert_eq(s3->anm, ZONE_TANM);

    cr_assert_eq(s4->fuel, ZONE_FUEL_CHP);
    cr_assert(s4->firm, "E8/E9 (offered, enquiry) must not make S4 non-firm");
    cr_assert_float_eq(s4->firm_mw, 5, 0);
    cr_assert_float_eq(s4->nonfirm_mw, 0, 0);
    cr_assert_eq(s4->lifo_position, 0);
    cr_assert_eq(s4->anm, 0u);
    cr_assert_eq(z->nmachine, 4);

    /* Tranches: non-firm by LIFO position, then firm; E3 is accepted. */
    cr_assert_eq(z->ntranche, 5);
    const char *tid[] = { "E1", "E2", "E3", "E2b", "E4" };
    const int pos[] = { 1, 2, 3, 4, 0 };
    const size_t site[] = { 0, 1, 2, 1, 3 };
    const double cap[] = { 20, 20, 10, 10, 5 };
    const unsigned anm[] = { ZONE_DANM, ZONE_DANM, ZONE_TANM, ZONE_DANM | ZONE_TANM, 0 };
    for (size_t i = 0; i < 5; i++) {
        const zone_tranche *t = &z->tranche[i];
        cr_assert_str_eq(t->id, tid[i]);
        cr_assert_eq(t->lifo_position, pos[i], "%s", t->id);
        cr_assert_eq(t->site, site[i], "%s", t->id);
        cr_assert_float_eq(t->capacity_mw, cap[i], 0);
        cr_assert_eq(t->anm, anm[i], "%s", t->id);
        cr_assert_eq(t->firm, i == 4);
        cr_assert_eq(t->accepted, i == 2);
    }

    /* Constraints (by id): C_GSP, C_GT1, C_L45. */
    cr_assert_eq(z->nconstraint, 3);
    const zone_constraint *gsp = &z->constraint[0], *gt1 = &z->constraint[1], *l45 = &z->constraint[2];
    cr_assert_str_eq(gsp->id, "C_GSP");
    cr_assert_str_eq(gsp->scheme_id, "ANM1");
    cr_assert_str_eq(gsp->description, "GSP export boundary (CAFPL)");
    cr_assert_eq(gsp->kind, ZONE_C_BOUNDARY);
    cr_assert_eq(gsp->anm, ZONE_TANM);
    cr_assert_float_eq(gsp->voltage_kv, 345, 0);
    cr_assert_float_eq(gsp->limit_mw, 180, 0);
    cr_assert_float_eq(gsp->trim_pct, 98, 0);
    cr_assert_float_eq(gsp->release_pct, 90, 0);
    cr_assert_eq(gsp->nbranch, 2);
    cr_assert_eq(gsp->branch[0], 0);
    cr_assert_eq(gsp->branch[1], 3);
    cr_assert_eq(gsp->sign[0], -1);
    cr_assert_eq(gsp->sign[1], -1);
    cr_assert_eq(gsp->nsite, 2);
    cr_assert_eq(gsp->site[0], 1);
    cr_assert_eq(gsp->site[1], 2);

    cr_assert_str_eq(gt1->id, "C_GT1");
    cr_assert_eq(gt1->kind, ZONE_C_TRANSFORMER);
    cr_assert_eq(gt1->anm, ZONE_DANM);
    cr_assert(isnan(gt1->limit_mw));
    cr_assert_float_eq(gt1->trim_pct, 100, 0);
    cr_assert_float_eq(gt1->release_pct, 95, 0);
    cr_assert_eq(gt1->nbranch, 1);
    cr_assert_eq(gt1->branch[0], 0);
    cr_assert_eq(gt1->sign[0], -1);
    cr_assert_eq(gt1->nsite, 3);
    for (size_t i = 0; i < 3; i++) cr_assert_eq(gt1->site[i], i);

    cr_assert_str_eq(l45->id, "C_L45");
    cr_assert_eq(l45->kind, ZONE_C_BRANCH);
    cr_assert_str_eq(l45->description, "Line 4-5 thermal");
    cr_assert_eq(l45->nbranch, 1);
    cr_assert_eq(l45->branch[0], 1);
    cr_assert_eq(l45->sign[0], 1);
    cr_assert_eq(l45->nsite, 2);
    cr_assert_eq(l45->site[0], 0);
    cr_assert_eq(l45->site[1], 1);
    cr_assert_eq(zone_constraint_find(z, "C_L45"), 2);
    cr_assert_eq(zone_constraint_find(z, "C_X"), -1);

    /* Points (by id in byte order). */
    cr_assert_eq(z->npoint, 5);
    const zone_point *p = z->point;
    cr_assert_str_eq(p[0].id, "BUS5_V");
    cr_assert_eq(p[0].quantity, ZONE_Q_V_KV);
    cr_assert_eq(p[0].element, ZONE_EL_BUS);
    cr_assert_eq(p[0].bus_row, 4);
    cr_assert_eq(p[0].branch_row, -1);
    cr_assert_eq(p[0].site, -1);
    cr_assert_str_eq(p[1].id, "GT1_I");
    cr_assert_eq(p[1].quantity, ZONE_Q_I_A);
    cr_assert_eq(p[1].element, ZONE_EL_BRANCH);
    cr_assert_eq(p[1].branch_row, 0);
    cr_assert_not(p[1].to_end);
    cr_assert_str_eq(p[2].id, "GT1_P");
    cr_assert_eq(p[2].quantity, ZONE_Q_P_MW);
    cr_assert_eq(p[2].branch_row, 0);
    cr_assert_str_eq(p[3].id, "L45_CB");
    cr_assert_eq(p[3].quantity, ZONE_Q_BREAKER);
    cr_assert_eq(p[3].branch_row, 1);
    cr_assert_float_eq(p[3].scale, 1, 0);
    cr_assert_str_eq(p[4].id, "S1_P");
    cr_assert_eq(p[4].element, ZONE_EL_SITE);
    cr_assert_eq(p[4].site, 0);
    cr_assert_float_eq(p[4].scale, 0.001, 1e-18);
    zone_destroy(&z);
    PQfinish(c);
    testdb_drop(&db);
}

Test(zone, errors_fallbacks_and_open_transaction)
{
    testdb db;
    PGconn *c = s_zone_db(&db, "zoneerr");
    pcf_error err = { 0 };
    zone *z = NULL;
    cr_assert_eq(zone_load(c, "NOPE", NULL, &z, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "NOPE"), "%s", err.msg);
    cr_assert_null(z);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    cr_assert_eq(zone_load(c, "T", "monsoon", &z, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "monsoon"), "%s", err.msg);
    cr_assert_eq(zone_load(c, "", NULL, &z, &err), PCF_ERR_INVALID);

    /* MATPOWER 0 = unlimited; rateB stands in for a missing rateC;
     * a cleared fault rate takes the kind's default. */
    testdb_exec(c, "UPDATE branch SET rate_a = 0, rate_b = 0, rate_c = 0 WHERE zone_id = 'T' AND idx = 3");
    testdb_exec(c, "UPDATE branch SET rate_a = 100, rate_b = 120, rate_c = 0 WHERE zone_id = 'T' AND idx = 6");
    testdb_exec(c, "UPDATE branch SET fault_rate_per_year = NULL WHERE zone_id = 'T' AND idx = 1");

    /* Inside the caller's transaction the load leaves it open. */
    testdb_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    cr_assert_eq(zone_load(c, "T", NULL, &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_INTRANS);
    testdb_exec(c, "COMMIT");
    cr_assert(isinf(z->branch[2].rating[ZONE_WINTER].continuous_mva));
    cr_assert(isinf(z->branch[2].rating[ZONE_WINTER].post_fault_mva));
    s_rating(&z->branch[5].rating[ZONE_SPRING], 100, 100, 120, false, false);
    cr_assert(z->branch[0].fault_stats_default);
    cr_assert_float_eq(z->branch[0].faults_per_year, ZONE_DEFAULT_TRANSFORMER_FAULTS_PER_YEAR, 0);
    cr_assert_float_eq(z->branch[0].mean_repair_hours, 168, 0);

    /* Fault probability: a window of 0 h leaves only the unavailability. */
    double lam = z->branch[1].faults_per_year, r = z->branch[1].mean_repair_hours;
    double u = lam * r / (8760 + lam * r);
    cr_assert_float_eq(zone_fault_probability(z, 1, 1e-12), u, 1e-12);
    cr_assert_float_eq(zone_fault_probability(z, 1, 0.5), 1 - (1 - u) * exp(-lam * 0.5 / 8760), 1e-15);
    cr_assert_gt(zone_fault_probability(z, 1, 1.0), zone_fault_probability(z, 1, 0.5));
    zone_destroy(&z);

    /* A site on a bus the case does not have cannot exist (FK), but a
     * constraint without branches can: it is refused with its id. */
    testdb_exec(c, "INSERT INTO anm_constraint (constraint_id, scheme_id, zone_id, kind, anm_type, voltage_kv)"
                   " VALUES ('C_EMPTY', 'ANM1', 'T', 'branch', 'DANM', 33)");
    cr_assert_eq(zone_load(c, "T", NULL, &z, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "C_EMPTY"), "%s", err.msg);
    cr_assert_null(z);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
    testdb_drop(&db);
}

Test(zone, seasons_follow_uk_local_months)
{
    int64_t t;
    /* 2026-02-28 23:30 UTC is still February in London (GMT): winter. */
    cr_assert_eq(sptime_sp_start(2026, 2, 28, 48, &t), PCF_OK);
    cr_assert_eq(zone_season_of(t), ZONE_WINTER);
    cr_assert_eq(zone_season_of(t + 1800), ZONE_SPRING);
    /* 2026-04-30 23:30 UTC is 1 May 00:30 BST: summer. */
    cr_assert_eq(sptime_sp_start(2026, 5, 1, 2, &t), PCF_OK);
    cr_assert_eq(zone_season_of(t), ZONE_SUMMER);
    cr_assert_eq(zone_season_of(t - 3600), ZONE_SPRING);
    cr_assert_eq(sptime_sp_start(2026, 9, 1, 1, &t), PCF_OK);
    cr_assert_eq(zone_season_of(t), ZONE_AUTUMN);
    cr_assert_eq(sptime_sp_start(2026, 11, 1, 1, &t), PCF_OK);
    cr_assert_eq(zone_season_of(t), ZONE_WINTER);
    for (int s = 0; s < ZONE_NSEASON; s++) cr_assert_eq(zone_season_parse(zone_season_name(s)), s);
    for (int f = 0; f < ZONE_NFUEL; f++) cr_assert_eq(zone_fuel_parse(zone_fuel_name(f)), f);
    cr_assert_eq(zone_fuel_parse("coal"), -1);
}
