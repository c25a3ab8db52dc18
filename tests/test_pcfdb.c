/*
 * test_pcfdb.c -- the database foundation, end to end through bin/pcf-db
 * against a real PostgreSQL: migrations, the MATPOWER round trip for every
 * reference case, registry imports, and the constraints and roles that keep
 * impossible or unauthorised data out.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mpcase.h"
#include "testdb.h"

#define OUT 16384

/* Runs `pcf-db ARGS` against db; returns the exit status. */
static int s_pcfdb(const testdb *db, char *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_pcfdb(const testdb *db, char *out, const char *fmt, ...)
{
    char args[2048], cmd[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s/pcf-db %s", testdb_bindir(), args);
    static char sink[OUT];
    return testdb_run(db, cmd, out ? out : sink, OUT);
}

static long s_count(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

static void s_migrated(testdb *db, const char *tag)
{
    char out[OUT];
    testdb_create(db, tag);
    int rc = s_pcfdb(db, out, "migrate");
    cr_assert_eq(rc, 0, "migrate failed: %s", out);
}

/* ---- migrations ---------------------------------------------------------- */

Test(pcfdb, migrate_empty_then_again)
{
    testdb db;
    char out[OUT];
    s_migrated(&db, "mig");
    PGconn *c = testdb_connect(&db);
    long n = s_count(c, "SELECT count(*) FROM schema_migrations");
    cr_assert_geq(n, 3);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'pcf_result'"), 1);
    cr_assert_eq(s_pcfdb(&db, out, "migrate"), 0, "%s", out);
    cr_assert(strstr(out, "(0 applied now)"), "second run applied something: %s", out);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM schema_migrations"), n);
    cr_assert_eq(s_pcfdb(&db, out, "status"), 0, "%s", out);
    cr_assert_eq(s_pcfdb(&db, out, "migrate --dry-run"), 0, "%s", out);
    cr_assert(strstr(out, "0 migration(s) pending"), "%s", out);
    PQfinish(c);
    testdb_drop(&db);
}

Test(pcfdb, migrate_concurrently_is_serialised)
{
    testdb db;
    char out[OUT];
    testdb_create(&db, "migpar");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sh -c '%s/pcf-db migrate & %s/pcf-db migrate & wait' >/dev/null && echo both-ok",
             testdb_bindir(), testdb_bindir());
    testdb_run(&db, cmd, out, sizeof out);
    PGconn *c = testdb_connect(&db);
    long n = s_count(c, "SELECT count(*) FROM schema_migrations");
    cr_assert_geq(n, 3, "%s", out);
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT version) FROM schema_migrations"), n);
    PQfinish(c);
    testdb_drop(&db);
}

Test(pcfdb, migrate_refuses_an_edited_migration)
{
    testdb db;
    char out[OUT];
    s_migrated(&db, "migsum");
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "UPDATE schema_migrations SET checksum = '0000000000000000' WHERE version = 1");
    cr_assert_eq(s_pcfdb(&db, out, "migrate"), 1, "%s", out);
    cr_assert(strstr(out, "different text"), "%s", out);
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- MATPOWER round trip -------------------------------------------------- */

/* Bit-for-bit equality, NaN included. */
static void s_same_matrix(const mp_matrix *a, const mp_matrix *b, const char *what, const char *name)
{
    cr_assert_eq(a->rows, b->rows, "%s %s rows %zu vs %zu", name, what, a->rows, b->rows);
    cr_assert_eq(a->cols, b->cols, "%s %s cols %zu vs %zu", name, what, a->cols, b->cols);
    for (size_t i = 0; i < a->rows * a->cols; i++)
        cr_assert(memcmp(&a->v[i], &b->v[i], sizeof(double)) == 0 || (isnan(a->v[i]) && isnan(b->v[i])),
                  "%s %s element %zu: %.17g vs %.17g", name, what, i, a->v[i], b->v[i]);
}

static void s_round_trip(const char *name)
{
    char path[256], out[OUT], exported[256];
    snprintf(path, sizeof path, "tests/data/matpower/cases/%s.m", name);
    testdb db;
    s_migrated(&db, name);
    cr_assert_eq(s_pcfdb(&db, out, "import-matpower --zone Z1 --name '%s' %s", name, path), 0, "%s", out);
    snprintf(exported, sizeof exported, "/tmp/pcf-test-%s-%d.m", db.name, (int)getpid());
    cr_assert_eq(s_pcfdb(&db, out, "export-matpower --zone Z1 -o %s", exported), 0, "%s", out);

    pcf_error err;
    mp_case *a = mp_case_read(path, &err);
    cr_assert(a, "%s", err.msg);
    mp_case *b = mp_case_read(exported, &err);
    cr_assert(b, "re-reading the export: %s", err.msg);
    cr_assert(memcmp(&a->base_mva, &b->base_mva, sizeof(double)) == 0);
    s_same_matrix(&a->bus, &b->bus, "bus", name);
    s_same_matrix(&a->gen, &b->gen, "gen", name);
    s_same_matrix(&a->branch, &b->branch, "branch", name);
    s_same_matrix(&a->gencost, &b->gencost, "gencost", name);
    cr_assert_eq(a->bus_name_count, b->bus_name_count);
    for (size_t i = 0; i < a->bus_name_count; i++) cr_assert_str_eq(a->bus_name[i], b->bus_name[i]);
    mp_case_destroy(&a);
    mp_case_destroy(&b);
    remove(exported);
    testdb_drop(&db);
}

Test(pcfdb, round_trip_case9) { s_round_trip("case9"); }
Test(pcfdb, round_trip_case14) { s_round_trip("case14"); }
Test(pcfdb, round_trip_case24_ieee_rts) { s_round_trip("case24_ieee_rts"); }
Test(pcfdb, round_trip_case30) { s_round_trip("case30"); }
Test(pcfdb, round_trip_case_ieee30) { s_round_trip("case_ieee30"); }
Test(pcfdb, round_trip_case33bw) { s_round_trip("case33bw"); }
Test(pcfdb, round_trip_case39) { s_round_trip("case39"); }
Test(pcfdb, round_trip_case57) { s_round_trip("case57"); }
Test(pcfdb, round_trip_case69) { s_round_trip("case69"); }
Test(pcfdb, round_trip_case118) { s_round_trip("case118"); }
Test(pcfdb, round_trip_case300) { s_round_trip("case300"); }
Test(pcfdb, round_trip_case1354pegase) { s_round_trip("case1354pegase"); }
Test(pcfdb, round_trip_case2383wp) { s_round_trip("case2383wp"); }
Test(pcfdb, round_trip_case2869pegase) { s_round_trip("case2869pegase"); }

Test(pcfdb, import_refuses_existing_zone_and_bad_files)
{
    testdb db;
    char out[OUT];
    s_migrated(&db, "imprej");
    cr_assert_eq(s_pcfdb(&db, out, "import-matpower --zone Z1 tests/data/matpower/cases/case9.m"), 0, "%s", out);
    cr_assert_eq(s_pcfdb(&db, out, "import-matpower --zone Z1 tests/data/matpower/cases/case14.m"), 1, "%s", out);
    cr_assert(strstr(out, "already exists"), "%s", out);

    FILE *f = fopen("/tmp/pcf-test-bad-case.m", "w");
    cr_assert(f);
    fputs("function mpc = bad\nmpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n"
          "1 3 0 0 0 0 1 1 0 345 1 1.1 0.9;\n2 1 x 0 0 0 1 1 0 345 1 1.1 0.9;\n];\n", f);
    fclose(f);
    cr_assert_eq(s_pcfdb(&db, out, "import-matpower --zone Z2 /tmp/pcf-test-bad-case.m"), 1, "%s", out);
    cr_assert(strstr(out, "/tmp/pcf-test-bad-case.m:6"), "error must name file:line: %s", out);
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM zone WHERE zone_id = 'Z2'"), 0);
    cr_assert_eq(s_pcfdb(&db, out, "drop-zone --zone Z1 --yes"), 0, "%s", out);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM bus"), 0);
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- registry ------------------------------------------------------------- */

static void s_zone_with_registry(testdb *db, const char *tag)
{
    char out[OUT];
    s_migrated(db, tag);
    cr_assert_eq(s_pcfdb(db, out, "import-matpower --zone T tests/data/matpower/cases/case9.m"), 0, "%s", out);
    cr_assert_eq(s_pcfdb(db, out, "import-der --zone T tests/data/registry/case9"), 0, "%s", out);
    cr_assert_eq(s_pcfdb(db, out, "import-anm --zone T tests/data/registry/case9"), 0, "%s", out);
    cr_assert_eq(s_pcfdb(db, out, "import-points --zone T tests/data/registry/case9_points.csv"), 0, "%s", out);
}

Test(pcfdb, registry_loads_and_reloads_identically)
{
    testdb db;
    char out[OUT];
    s_zone_with_registry(&db, "reg");
    PGconn *c = testdb_connect(&db);
    const char *q = "SELECT (SELECT count(*) FROM der_site) * 1000000 + (SELECT count(*) FROM der_enquiry) * 10000"
                    " + (SELECT count(*) FROM der_machine) * 1000 + (SELECT count(*) FROM anm_constraint) * 100"
                    " + (SELECT count(*) FROM anm_constraint_branch) * 10 + (SELECT count(*) FROM branch_rating)";
    long before = s_count(c, q);
    cr_assert_eq(before, 4 * 1000000 + 5 * 10000 + 4 * 1000 + 3 * 100 + 4 * 10 + 4);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM anm_constraint_site"), 7);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_point"), 5);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM equipment_branch e JOIN branch b USING (branch_id)"
                            " WHERE (e.equipment_id, b.idx) IN (('CCT-GT1', 1), ('CCT-L45', 2))"), 2);
    cr_assert_eq(s_count(c, "SELECT lifo_position FROM der_enquiry WHERE enquiry_id = 'E2b'"), 4);
    cr_assert_eq(s_count(c, "SELECT idx FROM branch WHERE name = 'L67'"), 5);
    char v[64];
    testdb_scalar(c, "SELECT pel_mva FROM branch_rating r JOIN branch b USING (branch_id)"
                     " WHERE b.name = 'L67' AND season = 'summer'", v, sizeof v);
    cr_assert_str_eq(v, "120");
    cr_assert_eq(s_pcfdb(&db, out, "import-der --zone T tests/data/registry/case9"), 0, "%s", out);
    cr_assert_eq(s_pcfdb(&db, out, "import-anm --zone T tests/data/registry/case9"), 0, "%s", out);
    cr_assert_eq(s_count(c, q), before);
    PQfinish(c);
    testdb_drop(&db);
}

/* Writes `content` as DIR/file (other files copied from the good set) and
 * checks import-der/anm fails naming `expect`, loading nothing. */
static void s_bad_registry(const char *cmd, const char *file, const char *content, const char *expect)
{
    testdb db;
    char out[OUT], dir[128], sh[1024];
    s_migrated(&db, "regbad");
    cr_assert_eq(s_pcfdb(&db, out, "import-matpower --zone T tests/data/matpower/cases/case9.m"), 0, "%s", out);
    if (strcmp(cmd, "import-anm") == 0)
        cr_assert_eq(s_pcfdb(&db, out, "import-der --zone T tests/data/registry/case9"), 0, "%s", out);
    snprintf(dir, sizeof dir, "/tmp/pcf-test-reg-%s", db.name);
    snprintf(sh, sizeof sh, "rm -rf %s && cp -r tests/data/registry/case9 %s", dir, dir);
    cr_assert_eq(system(sh), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(content, f);
    fclose(f);
    PGconn *c = testdb_connect(&db);
    long sites = s_count(c, "SELECT count(*) FROM der_site");
    cr_assert_eq(s_pcfdb(&db, out, "%s --zone T %s", cmd, dir), 1, "expected failure, got: %s", out);
    cr_assert(strstr(out, expect), "expected '%s' in: %s", expect, out);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM der_site"), sites);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM anm_constraint"), 0);
    if (strcmp(cmd, "import-der") == 0) cr_assert_eq(s_count(c, "SELECT count(*) FROM der_enquiry"), 0);
    PQfinish(c);
    snprintf(sh, sizeof sh, "rm -rf %s", dir);
    cr_assert_eq(system(sh), 0);
    testdb_drop(&db);
}

#define SITES_HDR "site_id,name,bus,export_capacity_mw,import_capacity_mw,latitude,longitude\n"
#define ENQ_HDR "enquiry_id,site_id,capacity_mw,firm,lifo_position,anm_type,status,enquiry_date,connection_date\n"

Test(pcfdb, registry_rejects_unknown_bus)
{
    s_bad_registry("import-der", "sites.csv", SITES_HDR "S1,a,5,20,,,\nS2,b,77,30,,,\nS3,c,9,10,,,\nS4,d,9,5,,,\n",
                   "sites.csv:3:");
}

Test(pcfdb, registry_rejects_bad_number)
{
    s_bad_registry("import-der", "sites.csv", SITES_HDR "S1,a,5,NaN,,,\n", "sites.csv:2: export_capacity_mw");
}

Test(pcfdb, registry_rejects_wrong_header)
{
    s_bad_registry("import-der", "sites.csv", "site,name,bus\nS1,a,5\n", "wrong header");
}

Test(pcfdb, registry_rejects_truncated_last_line)
{
    s_bad_registry("import-der", "sites.csv", SITES_HDR "S1,a,5,20,,,\nS2,b,7,3", "sites.csv:3:");
}

Test(pcfdb, registry_rejects_duplicate_lifo_position)
{
    s_bad_registry("import-der", "enquiries.csv",
                   ENQ_HDR "E1,S1,20,no,1,DANM,,,\nE2,S2,20,no,1,DANM,,,\n", "enquiries.csv:3:");
}

Test(pcfdb, registry_rejects_firm_with_queue_position)
{
    s_bad_registry("import-der", "enquiries.csv", ENQ_HDR "E4,S4,5,yes,7,NONE,,,\n", "enquiries.csv:2:");
}

Test(pcfdb, registry_rejects_bad_date)
{
    s_bad_registry("import-der", "enquiries.csv", ENQ_HDR "E1,S1,20,no,1,DANM,,2023-02-29,\n",
                   "enquiries.csv:2: enquiry_date");
}

Test(pcfdb, registry_rejects_unknown_branch)
{
    s_bad_registry("import-anm", "constraint_branches.csv",
                   "constraint_id,branch,sign\nC_L45,L45,1\nC_GT1,NOPE,1\n", "constraint_branches.csv:3: branch");
}

Test(pcfdb, registry_rejects_boundary_without_limit)
{
    s_bad_registry("import-anm", "constraints.csv",
                   "constraint_id,scheme_id,description,kind,anm_type,voltage_kv,limit_mw,trim_pct,release_pct\n"
                   "C_GSP,ANM1,x,boundary,TANM,345,,,\n", "constraints.csv:2:");
}

/* ---- constraints and roles -------------------------------------------------- */

/* Each statement must be rejected by the schema. */
static void s_rejected(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    cr_assert(st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK, "accepted: %s", sql);
}

Test(pcfdb, schema_rejects_impossible_data)
{
    testdb db;
    s_zone_with_registry(&db, "chk");
    PGconn *c = testdb_connect(&db);
    s_rejected(c, "INSERT INTO zone (zone_id, base_mva) VALUES ('has.dot', 100)");
    s_rejected(c, "INSERT INTO zone (zone_id, base_mva) VALUES ('z2', 0)");
    s_rejected(c, "UPDATE bus SET bus_type = 5 WHERE zone_id = 'T' AND bus_i = 1");
    s_rejected(c, "UPDATE branch SET status = 2 WHERE zone_id = 'T' AND idx = 1");
    s_rejected(c, "UPDATE branch SET rate_a = -1 WHERE zone_id = 'T' AND idx = 1");
    s_rejected(c, "UPDATE branch SET t_bus = 99 WHERE zone_id = 'T' AND idx = 1");
    testdb_exec(c, "INSERT INTO branch_rating SELECT branch_id, 'spring', 100, 90, 150 FROM branch WHERE idx = 9");
    s_rejected(c, "INSERT INTO branch_rating SELECT branch_id, 'winter', 100, 120, 150 FROM branch WHERE idx = 9");
    s_rejected(c, "INSERT INTO branch_rating SELECT branch_id, 'monsoon', 100, NULL, 150 FROM branch WHERE idx = 9");
    testdb_exec(c, "INSERT INTO der_site (site_id, zone_id, bus_i, export_capacity_mw) VALUES ('OK', 'T', 1, 3)");
    s_rejected(c, "INSERT INTO der_site (site_id, zone_id, bus_i, export_capacity_mw) VALUES ('X', 'T', 1, 'NaN')");
    s_rejected(c, "INSERT INTO der_site (site_id, zone_id, bus_i, export_capacity_mw) VALUES ('X', 'T', 1, 'Infinity')");
    s_rejected(c, "INSERT INTO der_machine VALUES ('MX', 'S1', 'nuclear', 5)");
    s_rejected(c, "INSERT INTO measurement_point (point_id, zone_id, quantity, element) VALUES ('p', 'T', 'p_mw', 'bus')");
    testdb_exec(c, "INSERT INTO run (zone_id, kind, target_date, horizon_start, horizon_end, sp_count, seed,"
                   " samples, software_version) VALUES ('T', 'day_ahead', '2026-06-01', '2026-05-31 23:00Z',"
                   " '2026-06-01 23:00Z', 48, 1, 100, 'test')");
    s_rejected(c, "INSERT INTO run (zone_id, kind, horizon_start, horizon_end, sp_count, seed, samples,"
                  " software_version) VALUES ('T', 'day_ahead', now(), now() + interval '1 day', 48, 1, 100, 't')");
    /* a valid row first, so the rejections below are about the one bad value */
    testdb_exec(c, "INSERT INTO pcf_result SELECT run_id, 'S1', 2, now(), 0.5, 0, 0, 0, 1, 2, 3, 0, 0, 0, 1, 0 FROM run");
    s_rejected(c, "INSERT INTO pcf_result SELECT run_id, 'S1', 1, now(), 1.5, 0, 0, 0, 1, 2, 3, 0, 0, 0, 1, 0 FROM run");
    s_rejected(c, "INSERT INTO pcf_result SELECT run_id, 'S1', 1, now(), 0.5, 0, 0, 0, 3, 2, 1, 0, 0, 0, 1, 0 FROM run");
    s_rejected(c, "INSERT INTO pcf_result SELECT run_id, 'S1', 51, now(), 0.5, 0, 0, 0, 1, 2, 3, 0, 0, 0, 1, 0 FROM run");
    testdb_exec(c, "INSERT INTO run_queue (zone_id, kind, target_date) VALUES ('T', 'day_ahead', '2026-06-02')");
    s_rejected(c, "INSERT INTO run_queue (zone_id, kind, target_date) VALUES ('T', 'day_ahead', '2026-06-02')");
    s_rejected(c, "UPDATE run_queue SET status = 'claimed'");
    PQfinish(c);
    testdb_drop(&db);
}

Test(pcfdb, roles_have_least_privilege)
{
    testdb db;
    s_zone_with_registry(&db, "roles");
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "SET ROLE pcf_planner");
    testdb_exec(c, "SELECT count(*) FROM branch");
    testdb_exec(c, "SELECT count(*) FROM pcf_result");
    s_rejected(c, "UPDATE branch SET rate_a = 1");
    s_rejected(c, "INSERT INTO run_queue (zone_id, kind) VALUES ('T', 'real_time')");
    testdb_exec(c, "RESET ROLE");
    testdb_exec(c, "SET ROLE pcf_engine");
    testdb_exec(c, "INSERT INTO run (zone_id, kind, horizon_start, horizon_end, sp_count, seed, samples,"
                   " software_version) VALUES ('T', 'real_time', now(), now() + interval '1 hour', 2, 1, 10, 't')");
    s_rejected(c, "DELETE FROM der_site");
    testdb_exec(c, "RESET ROLE");
    testdb_exec(c, "SET ROLE pcf_ingest");
    testdb_exec(c, "INSERT INTO run_queue (zone_id, kind) VALUES ('T', 'real_time')");
    s_rejected(c, "DELETE FROM run");
    s_rejected(c, "UPDATE measurement_point SET scale = 2");
    PQfinish(c);
    testdb_drop(&db);
}
