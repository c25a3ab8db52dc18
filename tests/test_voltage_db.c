/*
 * test_voltage_db.c -- voltage constraints through PostgreSQL
 * (sql/006_voltage.sql, pcf-db import-anm voltage_constraints.csv, the
 * engine's statements): the registry loads them and refuses limits outside
 * 0.8 < vmin < 1 < vmax < 1.2, an unknown bus and branches on a voltage
 * constraint, with messages that name the problem; the schema refuses the
 * same behind the loader's back; a day-ahead run writes the voltage
 * constraint's statements in kV (limit (vmax - 1) * base kV, limit_low
 * (1 - vmin) * base kV, per-site sensitivities in kV per MW) and its
 * blocks, and gives the same figures for 1 and 2 threads.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"

#define OUT 16384
#define VHDR "constraint_id,scheme_id,description,anm_type,bus,vmax_pu,vmin_pu,trim_pct,release_pct\n"

/* Runs a command (printf format) against the test database, output in out. */
#define s_cmd(db, out, ...) testdb_runf((db), (out), OUT, __VA_ARGS__)

/* The test's copy of the registry (s_zone), removed by s_fini even when an
 * assertion failed (each Criterion test runs in its own process). */
static char s_dir[128];

static void s_fini(void)
{
    if (!s_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    if (system(cmd) != 0) fprintf(stderr, "test_voltage_db: could not remove %s\n", s_dir);
}

/* case9 with its registry (tests/data/registry/case9) in a fresh database;
 * the ANM files are copied to dir so a test can add to them. */
static void s_zone(testdb *db, const char *tag, char *dir, size_t n)
{
    char out[OUT];
    const char *b = testdb_bindir();
    testdb_create(db, tag);
    snprintf(dir, n, "/tmp/pcf-volt-%s-%d", tag, (int)getpid());
    snprintf(s_dir, sizeof s_dir, "%s", dir);
    cr_assert_eq(s_cmd(db, out, "rm -rf %s && cp -r tests/data/registry/case9 %s", dir, dir), 0, "%s", out);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db migrate", b), 0, "%s", out);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db import-matpower --zone T tests/data/matpower/cases/case9.m", b), 0, "%s", out);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db import-der --zone T %s", b, dir), 0, "%s", out);
}

/* Writes voltage_constraints.csv (and the sites the constraint curtails)
 * and imports the ANM files; returns pcf-db's status, its output in out. */
static int s_import(const testdb *db, const char *dir, const char *vcsv, const char *sites, char *out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/voltage_constraints.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(vcsv, f);
    fclose(f);
    if (sites) {
        snprintf(path, sizeof path, "%s/constraint_sites.csv", dir);
        f = fopen(path, "a");
        cr_assert(f);
        fputs(sites, f);
        fclose(f);
    }
    return s_cmd(db, out, "%s/pcf-db import-anm --zone T %s", testdb_bindir(), dir);
}

static void s_rejected(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    cr_assert(st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK, "accepted: %s", sql);
}

Test(voltage_db, registry_loads_voltage_constraints_and_refuses_bad_ones, .timeout = 120, .fini = s_fini)
{
    testdb db;
    char dir[128], out[OUT];
    s_zone(&db, "vreg", dir, sizeof dir);
    /* each bad file loads nothing, and says what is wrong */
    static const struct { const char *csv, *says; } bad[] = {
        { VHDR "V5,ANM1,x,DANM,5,1.25,0.94,,\n", "vmax_pu" },
        { VHDR "V5,ANM1,x,DANM,5,1.0,0.94,,\n", "vmax_pu" },
        { VHDR "V5,ANM1,x,DANM,5,1.06,0.75,,\n", "vmin_pu" },
        { VHDR "V5,ANM1,x,DANM,5,1.06,1.01,,\n", "vmin_pu" },
        { VHDR "V5,ANM1,x,DANM,77,1.06,0.94,,\n", "bus 77" },
        { VHDR "V5,ANM1,x,XANM,5,1.06,0.94,,\n", "anm_type" },
        { VHDR "V5,ANM1,x,DANM,5,NaN,0.94,,\n", "vmax_pu" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_neq(s_import(&db, dir, bad[i].csv, NULL, out), 0, "accepted: %s", bad[i].csv);
        cr_assert(strstr(out, "voltage_constraints.csv:2:") && strstr(out, bad[i].says), "%s: %s", bad[i].says, out);
    }
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM anm_constraint"), 0, "a refused file loads nothing");
    const char *good = VHDR "V5,ANM1,Bus 5 overvoltage,DANM,5,1.06,0.94,,\n";
    cr_assert_eq(s_import(&db, dir, good, "V5,S1\n", out), 0, "%s", out);
    cr_assert_eq(s_import(&db, dir, good, NULL, out), 0, "loading twice changes nothing: %s", out);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM anm_constraint WHERE constraint_id = 'V5' AND kind = 'voltage'"
                                " AND quantity = 'voltage' AND bus_i = 5 AND voltage_kv = 345 AND vmax_pu = 1.06"
                                " AND vmin_pu = 0.94 AND trim_pct = 100 AND release_pct = 95"), 1);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM anm_constraint WHERE quantity = 'thermal'"), 3);
    /* branches on a voltage constraint: refused by the loader and the schema */
    char path[256];
    snprintf(path, sizeof path, "%s/constraint_branches.csv", dir);
    FILE *f = fopen(path, "a");
    cr_assert(f);
    fputs("V5,4,1\n", f);
    fclose(f);
    cr_assert_neq(s_cmd(&db, out, "%s/pcf-db import-anm --zone T %s", testdb_bindir(), dir), 0);
    cr_assert(strstr(out, "constraint_branches.csv") && strstr(out, "voltage constraint"), "%s", out);
    s_rejected(c, "UPDATE anm_constraint SET vmax_pu = 1.3 WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE anm_constraint SET vmin_pu = 0.8 WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE anm_constraint SET bus_i = NULL WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE anm_constraint SET bus_i = 99 WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE anm_constraint SET vmax_pu = 1.05 WHERE constraint_id = 'C_L45'");
    s_rejected(c, "INSERT INTO anm_constraint_branch (constraint_id, zone_id, branch_id)"
                  " SELECT 'V5', 'T', branch_id FROM branch WHERE idx = 4");
    PQfinish(c);
    testdb_drop(&db);
}

Test(voltage_db, day_ahead_statements_in_kv_and_the_same_for_any_thread_count, .timeout = 240, .fini = s_fini)
{
    testdb db;
    char dir[128], out[OUT];
    s_zone(&db, "vrun", dir, sizeof dir);
    /* bus 5 sits at about 1.013 p.u. in case9: a 1.01 limit binds */
    cr_assert_eq(s_import(&db, dir, VHDR "V5,ANM1,Bus 5 overvoltage,DANM,5,1.01,0.94,,\n", "V5,S1\nV5,S2\n", out), 0,
                 "%s", out);
    const char *b = testdb_bindir();
    for (int threads = 1; threads <= 2; threads++)
        cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-06-15 --samples 400 --seed 7"
                                     " --threads %d", b, threads), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement WHERE constraint_id = 'V5' AND run_id = 1"
                                " AND unit = 'kV' AND limit_kind = 'voltage' AND abs(limit_mw - 0.01 * 345) < 1e-9"
                                " AND abs(limit_low - 0.06 * 345) < 1e-9"), 48);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement WHERE constraint_id <> 'V5'"
                                " AND (unit <> 'MW' OR limit_low IS NOT NULL)"), 0, "thermal statements stay in MW");
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_block WHERE constraint_id = 'V5' AND run_id = 1"), 48 * 5);
    /* the sites it curtails, with sensitivities in kV per MW: injecting at
     * bus 5 raises its voltage (S1 there, 0.056 kV/MW), at bus 7 (S2, across
     * the mesh) it moves it less (-0.026 kV/MW: the angle it adds pushes
     * reactive power away from bus 5) */
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement_site WHERE constraint_id = 'V5'"
                                " AND run_id = 1 AND unit = 'kV'"), 2 * 48);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement_site s1 JOIN constraint_statement_site s2"
                                " USING (run_id, constraint_id, sp) WHERE constraint_id = 'V5' AND s1.site_id = 'S1'"
                                " AND s2.site_id = 'S2' AND s1.sensitivity > abs(s2.sensitivity) AND s1.sensitivity > 0.01"),
                 2 * 48);
    char v[64];
    testdb_scalar(c, "SELECT max(p_anm_acts) > 0 AND min(flow_intact_p50_mw) > 0 FROM constraint_statement"
                     " WHERE constraint_id = 'V5'", v, sizeof v);
    cr_assert_str_eq(v, "t", "an overvoltage the ANM acts on");
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM ((SELECT constraint_id, sp, flow_intact_p10_mw, flow_intact_p50_mw,"
                                " flow_fault_p90_mw, p_anm_acts, expected_curtailment_mwh FROM constraint_statement"
                                " WHERE run_id = 1) EXCEPT (SELECT constraint_id, sp, flow_intact_p10_mw,"
                                " flow_intact_p50_mw, flow_fault_p90_mw, p_anm_acts, expected_curtailment_mwh"
                                " FROM constraint_statement WHERE run_id = 2)) d"), 0,
                 "statements differ between 1 and 2 threads");
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM ((SELECT site_id, sp, p_curtailed, expected_curtailed_mwh"
                                " FROM pcf_result WHERE run_id = 1) EXCEPT (SELECT site_id, sp, p_curtailed,"
                                " expected_curtailed_mwh FROM pcf_result WHERE run_id = 2)) d"), 0);
    /* on the wire: pcf-publish answers a statement request and pcf-sub
     * prints the voltage constraint in kV with its limits and bus */
    char pidfile[160];
    snprintf(pidfile, sizeof pidfile, "%s/publish.pid", dir);
    char cmd[1024], line[512], router[256] = "";
    snprintf(cmd, sizeof cmd,
             "PGHOST='%s' PGPORT='%s' PGUSER=postgres PGDATABASE='%s' %s/pcf-publish --pub 'tcp://127.0.0.1:*'"
             " --router 'tcp://127.0.0.1:*' --print-endpoints 2>%s.log & echo $! > %s; wait",
             getenv("PCF_TEST_PGHOST"), getenv("PCF_TEST_PGPORT"), db.name, b, pidfile, pidfile);
    FILE *pub = popen(cmd, "r");
    cr_assert(pub);
    while (fgets(line, sizeof line, pub) && sscanf(line, "router %255s", router) != 1) {}
    /* no assertion until the publisher is stopped: it would outlive the test */
    int st_csv = s_cmd(&db, out, "%s/pcf-sub --router %s --format csv statement --zone T"
                                 " --date 2026-06-15 --run-id 1 | grep -E 'topic,|,V5,' | head -60", b, router);
    char table[OUT];
    int st_tab = s_cmd(&db, table, "%s/pcf-sub --router %s statement --zone T --date 2026-06-15"
                                   " --run-id 1 --blocks | grep -E 'V5 .* SP 24 |V5/2026-06-15/24 '", b, router);
    snprintf(cmd, sizeof cmd, "kill -TERM $(cat %s)", pidfile);
    cr_expect_eq(system(cmd), 0);
    pclose(pub);
    cr_assert(router[0], "pcf-publish gave no router endpoint");
    cr_assert_eq(st_csv, 0, "%s", out);    /* head's: the content below is the test */
    cr_assert(strstr(out, ",unit,lower_limit,vmax_pu,vmin_pu,monitored_bus\n"), "%.600s", out);
    cr_assert(strstr(out, ",kV,20.7,1.01,0.94,5\n"), "no V5 row in kV:\n%.3000s", out);
    cr_assert_eq(st_tab, 0, "%s", table);
    cr_assert(strstr(table, "V5 ") && strstr(table, "voltage at bus 5: limits +3.450/-20.700 kV (0.940..1.010 p.u. of 345 kV)"),
              "%.3000s", table);
    cr_assert(strstr(table, "V5/2026-06-15/24 ") && strstr(table, " kV  curtailment "), "%.3000s", table);
    /* a statement in kV must say so, and carry its lower limit */
    s_rejected(c, "UPDATE constraint_statement SET unit = 'MW' WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE constraint_statement SET limit_low = NULL WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE constraint_statement_site SET unit = 'MW' WHERE constraint_id = 'V5'");
    s_rejected(c, "UPDATE constraint_statement_site SET sensitivity = 2 WHERE constraint_id = 'C_L45'");
    PQfinish(c);
    testdb_drop(&db);
}
