/*
 * test_deploy.c -- the deployment's database side, as docs/operations.md tells
 * an operator to do it: `pcf-db migrate`, then `psql -f deploy/roles.sql`
 * (twice: it must be idempotent), then each service's login role connects
 * for real (the test server trusts local connections, so a role without
 * LOGIN would fail here) and may do what the guides say and nothing more.
 *
 * The planners' example queries of docs/guide-planners.md are run verbatim
 * (s_planner_queries; keep the two in step) as pcf_planner_ro over a
 * hand-written run of the demo zone, so a renamed column breaks this test
 * rather than the guide's reader.
 *
 * Everything is one Test on purpose: login roles are cluster-wide, and
 * two parallel runs of roles.sql could race on the same pg_authid rows.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testdb.h"

#define OUT 16384

/* Runs a shell command with the database's PG* variables; asserts success. */
static void s_run_ok(const testdb *db, const char *cmd)
{
    static char out[OUT];
    int rc = testdb_run(db, cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "%s failed (%d): %s", cmd, rc, out);
}

/* Connects as a login role: libpq takes the last `user=` of a conninfo. */
static PGconn *s_connect_as(const testdb *db, const char *role)
{
    char ci[640];
    snprintf(ci, sizeof ci, "%s user=%s", db->conninfo, role);
    PGconn *c = PQconnectdb(ci);
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s cannot log in: %s", role, PQerrorMessage(c));
    return c;
}

/* The statement must fail, and for lack of privilege or read-only mode,
 * not for a typo in the test. */
static void s_denied(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    char code[8] = "";
    if (state) snprintf(code, sizeof code, "%s", state);
    PQclear(r);
    cr_assert(st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK, "allowed: %s", sql);
    /* 42501 insufficient_privilege, 25006 read_only_sql_transaction */
    cr_assert(strcmp(code, "42501") == 0 || strcmp(code, "25006") == 0,
              "%s failed with %s, not a privilege error", sql, code);
}

/* Runs a query that must succeed; returns its row count. */
static int s_rows(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    int n = PQntuples(r);
    PQclear(r);
    return n;
}

/* docs/guide-planners.md section 3, verbatim. */
static const char *const s_planner_queries[] = {
    /* 1. the day-ahead runs of a date, newest first */
    "SELECT run_id, started_at, finished_at, samples, scada_as_of, weather_as_of, software_version\n"
    "  FROM run\n"
    " WHERE zone_id = 'kestrel' AND kind = 'day_ahead' AND target_date = '2026-11-24'\n"
    "   AND finished_at IS NOT NULL\n"
    " ORDER BY run_id DESC;",
    /* 2. PCF of every site and SP of the latest of them */
    "SELECT site_id, sp, sp_start, p_curtailed, p_curtailed_se,\n"
    "       deliverable_p10_mw, deliverable_p50_mw, deliverable_p90_mw, firm95_mw\n"
    "  FROM pcf_result\n"
    " WHERE run_id = (SELECT max(run_id) FROM run\n"
    "                  WHERE zone_id = 'kestrel' AND kind = 'day_ahead'\n"
    "                    AND target_date = '2026-11-24' AND finished_at IS NOT NULL)\n"
    " ORDER BY site_id, sp;",
    /* 3. expected curtailed energy per site over the day */
    "SELECT p.site_id, s.export_capacity_mw, sum(p.expected_curtailed_mwh) AS expected_mwh,\n"
    "       max(p.p_curtailed) AS worst_pcf\n"
    "  FROM pcf_result p JOIN der_site s USING (site_id)\n"
    " WHERE p.run_id = (SELECT max(run_id) FROM run\n"
    "                    WHERE zone_id = 'kestrel' AND kind = 'day_ahead'\n"
    "                      AND target_date = '2026-11-24' AND finished_at IS NOT NULL)\n"
    " GROUP BY p.site_id, s.export_capacity_mw\n"
    " ORDER BY expected_mwh DESC;",
    /* 4. SPs where a constraint is likely to bind */
    "SELECT c.constraint_id, a.description, c.sp, c.sp_start, c.limit_mw, c.limit_kind,\n"
    "       c.flow_intact_p50_mw, c.flow_intact_p90_mw, c.flow_fault_p90_mw,\n"
    "       c.p_anm_acts, c.p_anm_acts_se, c.expected_curtailment_mwh, b.name AS binding_fault\n"
    "  FROM constraint_statement c\n"
    "  JOIN anm_constraint a USING (constraint_id)\n"
    "  LEFT JOIN branch b ON b.branch_id = c.binding_fault_branch_id\n"
    "  JOIN run r USING (run_id)\n"
    " WHERE r.zone_id = 'kestrel' AND r.kind = 'day_ahead' AND r.target_date = '2026-11-24'\n"
    "   AND c.p_anm_acts >= 0.1\n"
    " ORDER BY c.run_id DESC, c.sp, c.constraint_id;",
    /* 5. who is curtailed for a constraint, in curtailment order */
    "SELECT sp, site_id, lifo_position, sensitivity, expected_curtailment_mwh\n"
    "  FROM constraint_statement_site\n"
    " WHERE run_id = (SELECT max(run_id) FROM run WHERE zone_id = 'kestrel' AND kind = 'day_ahead')\n"
    "   AND constraint_id = 'KEST_HOLF_DROV'\n"
    " ORDER BY sp, lifo_position DESC;",
    /* 6. constraint blocks at 90 % confidence */
    "SELECT b.constraint_id, b.sp, c.limit_mw, b.headroom_mw, b.curtailment_mw, b.curtailment_mwh\n"
    "  FROM constraint_block b JOIN constraint_statement c USING (run_id, constraint_id, sp)\n"
    " WHERE b.run_id = (SELECT max(run_id) FROM run WHERE zone_id = 'kestrel' AND kind = 'day_ahead')\n"
    "   AND b.confidence = 0.9\n"
    " ORDER BY b.sp, b.constraint_id;",
    /* 7. how the forecast of one site and SP moved from run to run */
    "SELECT r.run_id, r.kind, r.finished_at, p.p_curtailed, p.deliverable_p50_mw, p.firm95_mw\n"
    "  FROM pcf_result p JOIN run r USING (run_id)\n"
    " WHERE p.site_id = 'S01' AND p.sp_start = '2026-11-24 12:00+00'\n"
    " ORDER BY r.finished_at;",
};

/* A finished day-ahead run of the demo zone with one row in each results
 * table, written as the superuser (the engine's own writes are tested in
 * test_engine.c). */
static void s_fake_run(PGconn *su)
{
    testdb_exec(su,
        "INSERT INTO run (zone_id, kind, target_date, horizon_start, horizon_end, sp_count, seed,"
        " samples, software_version, finished_at) VALUES ('kestrel', 'day_ahead', '2026-11-24',"
        " '2026-11-24 00:00Z', '2026-11-25 00:00Z', 48, 1, 1000, 'test', now())");
    testdb_exec(su,
        "INSERT INTO pcf_result SELECT run_id, 'S01', 25, '2026-11-24 12:00Z', 0.4, 0.015, 2.5, 0.1,"
        " 3, 8, 12, 0.2, 0.2, 0.3, 1.5, 0.1 FROM run");
    testdb_exec(su,
        "INSERT INTO constraint_statement (run_id, constraint_id, sp, sp_start, limit_mw, limit_kind,"
        " season, flow_intact_p10_mw, flow_intact_p50_mw, flow_intact_p90_mw, p_anm_acts, p_anm_acts_se,"
        " expected_curtailment_mwh, expected_curtailment_se)"
        " SELECT run_id, 'KEST_HOLF_DROV', 25, '2026-11-24 12:00Z', 20, 'pel', 'winter', 10, 18, 24,"
        " 0.35, 0.015, 2.5, 0.1 FROM run");
    testdb_exec(su,
        "INSERT INTO constraint_statement_site SELECT run_id, 'KEST_HOLF_DROV', 25, 'S01', 1, 0.9, 2.5"
        " FROM run");
    testdb_exec(su,
        "INSERT INTO constraint_block SELECT run_id, 'KEST_HOLF_DROV', 25, 0.9, 0, 4, 2 FROM run");
}

static void s_check_ingest(const testdb *db)
{
    PGconn *c = s_connect_as(db, "pcf_ingest_svc");
    cr_assert_gt(s_rows(c, "SELECT * FROM measurement_point"), 0);
    s_rows(c, "SELECT feed_ensure_partitions('measurement', '2026-11-01Z', '2026-12-01Z')");
    s_rows(c, "INSERT INTO run_queue (zone_id, kind) VALUES ('kestrel', 'real_time')");
    s_denied(c, "INSERT INTO run (zone_id, kind, horizon_start, horizon_end, sp_count, seed, samples,"
                " software_version) VALUES ('kestrel', 'real_time', now(), now() + interval '1 hour', 2, 1, 1, 'x')");
    s_denied(c, "DELETE FROM pcf_result");
    s_denied(c, "UPDATE der_site SET export_capacity_mw = 1");
    s_denied(c, "UPDATE run_queue SET status = 'failed'");
    s_denied(c, "CREATE TABLE ingest_scratch (x int)");
    PQfinish(c);
}

static void s_check_engine(const testdb *db)
{
    PGconn *c = s_connect_as(db, "pcf_engine_svc");
    cr_assert_gt(s_rows(c, "SELECT * FROM der_site"), 0);
    s_rows(c, "SELECT count(*) FROM measurement");
    s_rows(c, "INSERT INTO run (zone_id, kind, horizon_start, horizon_end, sp_count, seed, samples,"
              " software_version) VALUES ('kestrel', 'real_time', now(), now() + interval '1 hour', 2, 1, 1, 'x')");
    s_rows(c, "UPDATE run_queue SET status = 'claimed', claimed_by = 'test', claimed_at = now()"
              " WHERE status = 'queued'");
    s_rows(c, "NOTIFY pcf_run, '0'");
    s_denied(c, "UPDATE der_site SET export_capacity_mw = 1");
    s_denied(c, "DELETE FROM measurement");
    s_denied(c, "INSERT INTO quarantine (feed, source, line, field, reason, raw) VALUES"
                " ('scada', 'x', 1, 'x', 'x', 'x')");
    s_denied(c, "DELETE FROM zone");
    PQfinish(c);
}

static void s_check_publish(const testdb *db)
{
    PGconn *c = s_connect_as(db, "pcf_publish_svc");
    s_rows(c, "LISTEN pcf_run");
    cr_assert_eq(s_rows(c, "SELECT p.*, s.export_capacity_mw FROM pcf_result p JOIN der_site s USING (site_id)"), 1);
    cr_assert_eq(s_rows(c, "SELECT * FROM constraint_block"), 1);
    s_denied(c, "INSERT INTO run_queue (zone_id, kind) VALUES ('kestrel', 'real_time')");
    s_denied(c, "UPDATE run SET finished_at = now()");
    s_denied(c, "DELETE FROM pcf_result");
    PQfinish(c);
}

static void s_check_planner(const testdb *db)
{
    PGconn *c = s_connect_as(db, "pcf_planner_ro");
    size_t n = sizeof s_planner_queries / sizeof s_planner_queries[0];
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(s_rows(c, s_planner_queries[i]), 1, "guide query %zu returned nothing", i + 1);
    char v[64];
    testdb_scalar(c, "SHOW default_transaction_read_only", v, sizeof v);
    cr_assert_str_eq(v, "on");
    testdb_scalar(c, "SHOW statement_timeout", v, sizeof v);
    cr_assert_str_eq(v, "5min");
    /* read-only is a default, not a privilege: the grants must hold too */
    testdb_exec(c, "SET default_transaction_read_only = off");
    s_denied(c, "INSERT INTO run_queue (zone_id, kind) VALUES ('kestrel', 'real_time')");
    s_denied(c, "UPDATE pcf_result SET p_curtailed = 0");
    s_denied(c, "DELETE FROM constraint_block");
    s_denied(c, "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i)"
                " VALUES ('p', 'kestrel', 'p_mw', 'bus', 1)");
    s_denied(c, "CREATE TABLE planner_scratch (x int)");
    s_denied(c, "CREATE ROLE sneaky LOGIN SUPERUSER");
    s_denied(c, "SET ROLE postgres");
    PQfinish(c);
}

Test(deploy, roles_sql_applies_and_each_login_role_does_only_its_job, .timeout = 120)
{
    testdb db;
    char cmd[1024];
    testdb_create(&db, "deploy");
    snprintf(cmd, sizeof cmd, "%s/pcf-db migrate", testdb_bindir());
    s_run_ok(&db, cmd);
    const char *z = "deploy/demo/zone";
    snprintf(cmd, sizeof cmd, "%s/pcf-db import-matpower --zone kestrel %s/kestrel_cross.m"
             " && %s/pcf-db import-der --zone kestrel %s && %s/pcf-db import-anm --zone kestrel %s"
             " && %s/pcf-db import-points --zone kestrel %s/points.csv",
             testdb_bindir(), z, testdb_bindir(), z, testdb_bindir(), z, testdb_bindir(), z);
    s_run_ok(&db, cmd);

    /* as operations.md says, and again: the second run must change nothing */
    s_run_ok(&db, "psql -X -q -v ON_ERROR_STOP=1 -f deploy/roles.sql");
    s_run_ok(&db, "psql -X -q -v ON_ERROR_STOP=1 -f deploy/roles.sql");

    PGconn *su = testdb_connect(&db);
    cr_assert_eq(testdb_exec(su,
        "SELECT 1 FROM pg_roles WHERE rolname IN ('pcf_ingest_svc', 'pcf_engine_svc', 'pcf_publish_svc',"
        " 'pcf_planner_ro') AND rolcanlogin AND NOT rolsuper AND NOT rolcreaterole AND NOT rolcreatedb"
        " AND NOT rolreplication AND NOT rolbypassrls"), 4);
    cr_assert_eq(testdb_exec(su,
        "SELECT 1 WHERE pg_has_role('pcf_ingest_svc', 'pcf_ingest', 'USAGE')"
        " AND pg_has_role('pcf_engine_svc', 'pcf_engine', 'USAGE')"
        " AND pg_has_role('pcf_publish_svc', 'pcf_planner', 'USAGE')"
        " AND pg_has_role('pcf_planner_ro', 'pcf_planner', 'USAGE')"
        " AND NOT pg_has_role('pcf_publish_svc', 'pcf_engine', 'USAGE')"
        " AND NOT pg_has_role('pcf_planner_ro', 'pcf_ingest', 'USAGE')"
        " AND NOT pg_has_role('pcf_ingest_svc', 'pcf_engine', 'USAGE')"), 1);
    s_fake_run(su);

    s_check_ingest(&db);
    s_check_engine(&db);
    s_check_publish(&db);
    s_check_planner(&db);

    PQfinish(su);
    testdb_drop(&db);
}
