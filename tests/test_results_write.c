/*
 * test_results_write.c -- how the engine writes a run (issue 5's database
 * time), against a real PostgreSQL:
 *   - sql/007 dropped constraint_statement_site's 3-column key into
 *     constraint_statement; the 4-column unit key still refuses what it
 *     refused (a site row without its statement), refuses a unit that
 *     differs from the statement's, and deleting a run still removes its
 *     site rows.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"

#define OUT 16384

static void s_zone(testdb *db, const char *tag)
{
    char out[OUT];
    const char *b = testdb_bindir();
    testdb_create(db, tag);
    cr_assert_eq(testdb_runf(db, out, OUT, "%s/pcf-db migrate", b), 0, "%s", out);
    cr_assert_eq(testdb_runf(db, out, OUT, "%s/pcf-db import-matpower --zone T tests/data/matpower/cases/case9.m", b), 0,
                 "%s", out);
    cr_assert_eq(testdb_runf(db, out, OUT, "%s/pcf-db import-der --zone T tests/data/registry/case9", b), 0, "%s", out);
    cr_assert_eq(testdb_runf(db, out, OUT, "%s/pcf-db import-anm --zone T tests/data/registry/case9", b), 0, "%s", out);
}

/* Runs a statement that must fail with SQLSTATE state. */
static void s_refused(PGconn *c, const char *sql, const char *state)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "accepted: %s", sql);
    const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    cr_assert(s && strcmp(s, state) == 0, "%s: SQLSTATE %s, expected %s (%s)", sql, s ? s : "?", state,
              PQresultErrorMessage(r));
    PQclear(r);
}

Test(results_write, the_unit_key_keeps_what_the_dropped_key_guarded)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "rwfk");
    cr_assert_eq(testdb_runf(&db, out, OUT, "%s/pcf-forecaster run --zone T --day-ahead 2026-06-01 --samples 50",
                             testdb_bindir()), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    /* one key into constraint_statement is left, and it is the unit key */
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
                                " AND conrelid = 'constraint_statement_site'::regclass"
                                " AND confrelid = 'constraint_statement'::regclass"), 1);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM pg_constraint WHERE conname = 'constraint_statement_site_unit_fk'"
                                " AND contype = 'f' AND array_length(conkey, 1) = 4"), 1);
    long run = testdb_long(c, "SELECT run_id FROM run");
    long sites = testdb_long(c, "SELECT count(*) FROM constraint_statement_site");
    cr_assert_gt(sites, 0);
    /* a site row of an SP the run has no statement for: still refused */
    s_refused(c, "INSERT INTO constraint_statement_site (run_id, constraint_id, sp, site_id, lifo_position,"
                 " sensitivity, expected_curtailment_mwh) SELECT run_id, constraint_id, 50, site_id, lifo_position,"
                 " sensitivity, expected_curtailment_mwh FROM constraint_statement_site LIMIT 1", "23503");
    /* ... of a run that does not exist */
    s_refused(c, "INSERT INTO constraint_statement_site (run_id, constraint_id, sp, site_id, lifo_position,"
                 " sensitivity, expected_curtailment_mwh) SELECT run_id + 1, constraint_id, sp, site_id, lifo_position,"
                 " sensitivity, expected_curtailment_mwh FROM constraint_statement_site LIMIT 1", "23503");
    /* a unit other than its statement's */
    s_refused(c, "UPDATE constraint_statement_site SET unit = 'kV' WHERE ctid = (SELECT min(ctid)"
                 " FROM constraint_statement_site)", "23503");
    /* a statement's deletion cascades to its site rows, and a run's to all */
    testdb_exec(c, "DELETE FROM constraint_statement WHERE sp = 1");
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement_site WHERE sp = 1"), 0);
    cr_assert_lt(testdb_long(c, "SELECT count(*) FROM constraint_statement_site"), sites);
    char q[128];
    snprintf(q, sizeof q, "DELETE FROM run WHERE run_id = %ld", run);
    testdb_exec(c, q);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_statement_site"), 0);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM constraint_block"), 0);
    PQfinish(c);
    testdb_drop(&db);
}
