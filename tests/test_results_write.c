/*
 * test_results_write.c -- how the engine writes a run (issue 5's database
 * time), against a real PostgreSQL:
 *   - sql/007 dropped constraint_statement_site's 3-column key into
 *     constraint_statement; the 4-column unit key still refuses what it
 *     refused (a site row without its statement), refuses a unit that
 *     differs from the statement's, and deleting a run still removes its
 *     site rows;
 *   - the engine streams each SP's rows while the study makes the next, in
 *     the run's one transaction: a row the server refuses in the middle of
 *     the run, or in the last batch after the study, fails it and leaves
 *     nothing behind, not even the run row, and nothing is announced; a job taken over while the rows streamed is
 *     not answered; streamed rows are those written after the study;
 *   - the rows go in binary COPY: its smallint, integer and NULL fields;
 *   - the run row keeps the inputs' freshness, read with the anchor;
 *   - the rows' key checks probe indexes even when the statistics say the
 *     referenced tables are empty;
 *   - a session's idle_in_transaction_session_timeout does not kill the
 *     run, whose transaction idles between batches.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "engine.h"
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

static engine_opts s_opts(void)
{
    engine_opts o = { .zone = "T", .kind = ENGINE_DAY_AHEAD, .year = 2026, .month = 6, .day = 1, .samples = 60,
                      .seed = 7, .threads = 2, .version = "test" };
    return o;
}

static long s_rows(PGconn *c)
{
    return testdb_long(c, "SELECT (SELECT count(*) FROM run) + (SELECT count(*) FROM pcf_result)"
                          " + (SELECT count(*) FROM constraint_statement)"
                          " + (SELECT count(*) FROM constraint_statement_site)"
                          " + (SELECT count(*) FROM constraint_block)");
}

/* The server refuses the rows of table for SP sp (a trigger): the run
 * fails with nothing left, not even the run row, and is never announced;
 * the same connection then runs the next run whole. */
static void s_refused_run(const char *tag, const char *table, int sp)
{
    testdb db;
    s_zone(&db, tag);
    PGconn *c = testdb_connect(&db), *l = testdb_connect(&db);
    testdb_exec(l, "LISTEN pcf_run");
    char sql[512], msg[32];
    snprintf(msg, sizeof msg, "refused SP %d", sp);
    snprintf(sql, sizeof sql, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
             " IF NEW.sp = %d THEN RAISE EXCEPTION '%s'; END IF; RETURN NEW; END $$", sp, msg);
    testdb_exec(c, sql);
    snprintf(sql, sizeof sql, "CREATE TRIGGER refuse BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION refuse()",
             table);
    testdb_exec(c, sql);
    engine_opts o = s_opts();
    engine_report rep;
    pcf_error err;
    cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_ERR_DB);
    cr_assert(strstr(err.msg, msg), "%s", err.msg);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_IDLE, "rolled back");
    PGconn *other = testdb_connect(&db);
    cr_assert_eq(s_rows(other), 0, "nothing half-written");
    PQconsumeInput(l);
    cr_assert_null(PQnotifies(l), "a failed run is never announced");
    snprintf(sql, sizeof sql, "DROP TRIGGER refuse ON %s", table);
    testdb_exec(c, sql);
    cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(testdb_long(other, "SELECT count(*) FROM run"), 1);
    cr_assert_eq(testdb_long(other, "SELECT count(*) FROM constraint_block"), 48 * 3 * 5);
    PQfinish(other);
    PQfinish(l);
    PQfinish(c);
    testdb_drop(&db);
}

/* SP 30's blocks: well after the first rows streamed */
Test(results_write, a_row_refused_mid_run_leaves_nothing, .timeout = 120)
{
    s_refused_run("rwfail", "constraint_block", 30);
}

/* SP 48's PCF rows: the last batch, written after the study by the path
 * that ends the writer (s_writer_stop) */
Test(results_write, a_row_refused_in_the_last_batch_leaves_nothing, .timeout = 120)
{
    s_refused_run("rwlast", "pcf_result", 48);
}

/* Regression (2026-12-03 review): the run's transaction stays open, idle
 * between batches, for the whole study.  A server or role with
 * idle_in_transaction_session_timeout (hardened configurations set one)
 * killed every run, and the job was taken over and killed again.  The
 * transaction lifts the timeout for itself. */
Test(results_write, an_idle_in_transaction_timeout_does_not_kill_the_run, .timeout = 120)
{
    testdb db;
    s_zone(&db, "rwidle");
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "SET idle_in_transaction_session_timeout = '1ms'");
    engine_opts o = s_opts();
    o.samples = 2000;           /* the study takes longer than 1 ms between batches */
    engine_report rep;
    pcf_error err;
    cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(PQstatus(c), CONNECTION_OK);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM run WHERE finished_at IS NOT NULL"), 1);
    char v[32];
    testdb_scalar(c, "SHOW idle_in_transaction_session_timeout", v, sizeof v);
    cr_assert_str_eq(v, "1ms", "the session's own setting is back after the run");
    PQfinish(c);
    testdb_drop(&db);
}

Test(results_write, a_job_taken_over_while_rows_streamed_is_not_answered, .timeout = 120)
{
    testdb db;
    s_zone(&db, "rwjob");
    PGconn *c = testdb_connect(&db);
    /* claimed by another engine: this one lost it (take-over) */
    long job = testdb_long(c, "INSERT INTO run_queue (zone_id, kind, target_date, status, claimed_by, claimed_at,"
                              " heartbeat_at) VALUES ('T', 'day_ahead', '2026-06-01', 'claimed', 'other', now(), now())"
                              " RETURNING job_id");
    engine_opts o = s_opts();
    o.job_id = job;
    o.worker = "me";
    engine_report rep;
    pcf_error err;
    cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_ERR_INVALID);
    cr_assert(strstr(err.msg, "taken over"), "%s", err.msg);
    cr_assert_eq(s_rows(c), 0, "the streamed rows went with the run");
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM run_queue WHERE status = 'claimed' AND claimed_by = 'other'"), 1);
    /* the engine that holds it answers it */
    o.worker = "other";
    cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_OK, "%s", err.msg);
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM run_queue WHERE job_id = %ld AND status = 'done' AND run_id = %lld", job,
             (long long)rep.run_id);
    cr_assert_eq(testdb_long(c, q), 1);
    PQfinish(c);
    testdb_drop(&db);
}

/* Rows of run a not in run b, over every column but run_id, for each table. */
static long s_differ(PGconn *c, const char *table, long a, long b)
{
    char q[1024];
    snprintf(q, sizeof q, "SELECT count(*) FROM ((SELECT (to_jsonb(t) - 'run_id') FROM %s t WHERE run_id = %ld)"
                          " EXCEPT (SELECT (to_jsonb(t) - 'run_id') FROM %s t WHERE run_id = %ld)) d",
             table, a, table, b);
    return testdb_long(c, q);
}

Test(results_write, streamed_rows_equal_rows_written_after_the_study, .timeout = 120)
{
    testdb db;
    s_zone(&db, "rwsame");
    PGconn *c = testdb_connect(&db);
    engine_opts o = s_opts();
    engine_report a, b;
    pcf_error err;
    cr_assert_eq(engine_run(c, &o, &a, &err), PCF_OK, "%s", err.msg);
    cr_assert_gt(a.t_write_stream, 0, "the rows streamed");
    o.write_after_study = 1;
    cr_assert_eq(engine_run(c, &o, &b, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(b.t_write_stream, 0);
    /* finished_at is the commit's time, not the transaction's start (the
     * study's): the publisher's lag from commit to sending counts from it */
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM run WHERE finished_at > started_at"), 2);
    static const char *tables[] = { "pcf_result", "constraint_statement", "constraint_statement_site",
                                    "constraint_block" };
    for (int i = 0; i < 4; i++) {
        char q[128];
        snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE run_id = %lld", tables[i], (long long)a.run_id);
        long n = testdb_long(c, q);
        cr_assert_gt(n, 0, "%s", tables[i]);
        snprintf(q, sizeof q, "SELECT count(*) FROM %s WHERE run_id = %lld", tables[i], (long long)b.run_id);
        cr_assert_eq(testdb_long(c, q), n, "%s", tables[i]);
        cr_assert_eq(s_differ(c, tables[i], (long)a.run_id, (long)b.run_id), 0, "%s", tables[i]);
        cr_assert_eq(s_differ(c, tables[i], (long)b.run_id, (long)a.run_id), 0, "%s", tables[i]);
    }
    PQfinish(c);
    testdb_drop(&db);
}

/* The binary COPY fields the engine writes results with: smallint, integer,
 * NULL, and doubles bit for bit. */
Test(results_write, binary_copy_fields_round_trip)
{
    testdb db;
    testdb_create(&db, "rwbin");
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "CREATE TABLE t (i int PRIMARY KEY, a smallint, b integer, x double precision, n bigint, s text)");
    pcf_error err;
    db_copy *cp = db_copy_new_binary(c, "t (i, a, b, x, n, s)", &err);
    cr_assert(cp, "%s", err.msg);
    const int16_t a[3] = { -32768, 50, 32767 };
    const int32_t b[3] = { INT32_MIN, -1, INT32_MAX };
    const double x[3] = { 0.1, -1e-300, 1.0 / 3 };
    for (int i = 0; i < 3; i++) {
        db_copy_bin_int4(cp, i);
        db_copy_bin_int2(cp, a[i]);
        db_copy_bin_int4(cp, b[i]);
        db_copy_bin_float8(cp, x[i]);
        if (i == 1) db_copy_bin_null(cp);
        else db_copy_bin_int8(cp, i);
        db_copy_bin_null(cp);
        cr_assert_eq(db_copy_end_row(cp, &err), PCF_OK, "%s", err.msg);
    }
    cr_assert_eq(db_copy_finish(cp, &err), PCF_OK, "%s", err.msg);
    db_copy_destroy(&cp);
    PGresult *r = PQexec(c, "SELECT a, b, float8send(x), n IS NULL, s IS NULL FROM t ORDER BY i");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(strtol(PQgetvalue(r, i, 0), NULL, 10), a[i]);
        cr_assert_eq(strtoll(PQgetvalue(r, i, 1), NULL, 10), b[i]);
        uint64_t u;
        memcpy(&u, &x[i], 8);
        char hex[24];
        snprintf(hex, sizeof hex, "\\x%016llx", (unsigned long long)u);
        cr_assert_str_eq(PQgetvalue(r, i, 2), hex);
        cr_assert_str_eq(PQgetvalue(r, i, 3), i == 1 ? "t" : "f");
        cr_assert_str_eq(PQgetvalue(r, i, 4), "t");
    }
    PQclear(r);
    PQfinish(c);
    testdb_drop(&db);
}

/* The anchor and the inputs' freshness come from one probe of the feeds
 * (s_horizon): the run row keeps the newest SCADA instant, weather issue and
 * outage receipt of its zone, and the horizon follows the newest SCADA. */
Test(results_write, the_run_row_keeps_the_inputs_freshness, .timeout = 120)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "rwasof");
    cr_assert_eq(testdb_runf(&db, out, OUT, "%s/pcf-db import-points --zone T tests/data/registry/case9_points.csv",
                             testdb_bindir()), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2025-05-25Z', '2025-06-05Z')");
    testdb_exec(c, "SELECT feed_ensure_partitions('weather_forecast', '2025-05-25Z', '2025-06-05Z')");
    testdb_exec(c, "INSERT INTO ingest_batch (feed, source, content_hash, status, started_at)"
                   " VALUES ('outage', 't', '00000000000000000000000000000001', 'loaded', now())");
    testdb_exec(c, "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
                   " SELECT p.point_id, t, 10, 'good', 1 FROM measurement_point p,"
                   " generate_series('2025-05-31T12:00Z'::timestamptz, '2025-06-01T11:50Z', '10 min') t");
    testdb_exec(c, "INSERT INTO weather_location VALUES ('L1', 'T', 52.9, -0.1, 4)");
    testdb_exec(c, "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, value,"
                   " interval_s, batch_id) SELECT 'L1', m, i, v, 'temperature_2m', 0, 15, 0, 1"
                   " FROM unnest(ARRAY['a', 'b']) m, unnest(ARRAY['2025-05-31T00:00Z', '2025-05-31T06:00Z']::timestamptz[]) i,"
                   "      generate_series('2025-05-31T00:00Z'::timestamptz, '2025-06-02T00:00Z', '1 hour') v"
                   " WHERE m = 'a' OR i = '2025-05-31T00:00Z'");
    testdb_exec(c, "INSERT INTO outage (outage_id, revision, equipment_id, branch_id, kind, status, start_at, end_at,"
                   " source, batch_id, received_at) SELECT 'o1', 1, 'e', min(branch_id), 'planned', 'cancelled',"
                   " '2025-07-01Z', '2025-07-02Z', 't', 1, '2025-05-30T09:00Z' FROM branch");
    engine_opts o = { .zone = "T", .kind = ENGINE_REAL_TIME, .samples = 50, .threads = 2, .version = "test" };
    engine_report rep;
    pcf_error err;
    cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(testdb_long(c, "SELECT count(*) FROM run WHERE scada_as_of = '2025-06-01T11:50Z'"
                                " AND weather_as_of = '2025-05-31T06:00Z' AND outages_as_of = '2025-05-30T09:00Z'"
                                " AND horizon_start = '2025-06-01T12:30Z'"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

/* A new database: the result tables were analyzed empty.  The foreign-key
 * checks of the streamed rows must still probe the referenced tables' keys,
 * not scan them (a scan per row is quadratic in the results kept). */
Test(results_write, key_checks_probe_indexes_in_a_new_database, .timeout = 120)
{
    testdb db;
    s_zone(&db, "rwscan");
    PGconn *c = testdb_connect(&db);
    testdb_exec(c, "ANALYZE");
    engine_opts o = s_opts();
    engine_report rep;
    pcf_error err;
    for (int i = 0; i < 2; i++) {
        o.seed = 7 + (uint64_t)i;
        cr_assert_eq(engine_run(c, &o, &rep, &err), PCF_OK, "%s", err.msg);
    }
    /* this backend's counters reach the shared statistics when it goes idle */
    testdb_exec(c, "SELECT pg_stat_force_next_flush()");
    long checks = testdb_long(c, "SELECT count(*) FROM constraint_statement_site")
                  + testdb_long(c, "SELECT count(*) FROM constraint_block");
    long scans = testdb_long(c, "SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_user_tables"
                                " WHERE relname IN ('constraint_statement', 'run')");
    long probes = testdb_long(c, "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_tables"
                                 " WHERE relname = 'constraint_statement'");
    cr_assert_lt(scans, 20, "%ld sequential scans of constraint_statement and run for %ld checked rows", scans, checks);
    cr_assert_geq(probes, checks, "%ld index probes for %ld checked rows", probes, checks);
    PQfinish(c);
    testdb_drop(&db);
}
