/* test_ingest_bulk.c -- the historian bulk path (load.c: chunks, binary COPY
 * into partitions, per-chunk fallback to the upsert) and the integrity rules
 * of sql/005_ingest_speed.sql that replace measurement's foreign key. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "load.h"
#include "migrate.h"
#include "testdb.h"

static PGconn *s_setup(testdb *db, const char *tag)
{
    testdb_create(db, tag);
    pcf_error e;
    PGconn *c = db_connect(db->conninfo, &e);
    cr_assert_not_null(c, "%s", e.msg);
    int applied = 0;
    cr_assert_eq(migrate_apply(c, 0, NULL, NULL, &applied, &e), PCF_OK, "%s", e.msg);
    testdb_exec(c,
        "INSERT INTO zone (zone_id, base_mva) VALUES ('z1', 100);"
        "INSERT INTO bus (zone_id, bus_i, row_no, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, loss_zone,"
        " vmax, vmin) VALUES ('z1', 1, 1, 3, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9);"
        "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i, scale) VALUES"
        " ('A', 'z1', 'v_kv', 'bus', 1, 1), ('B', 'z1', 'v_kv', 'bus', 1, 1), ('KW', 'z1', 'p_mw', 'bus', 1, 0.001)");
    return c;
}

static long s_count(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

/* Writes text to a fresh temporary file; path goes to out (>= 64 bytes). */
static void s_tmpfile(const char *text, char *out)
{
    snprintf(out, 64, "/tmp/pcf-bulk-test-XXXXXX");
    int fd = mkstemp(out);
    cr_assert_geq(fd, 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Loads text as a historian file; returns the loader's code. */
static pcf_rc s_load(PGconn *c, const char *text, const char *source, load_report *rep, pcf_error *e)
{
    char path[64];
    s_tmpfile(text, path);
    pcf_rc rc = load_scada_file(c, path, source, rep, e);
    unlink(path);
    return rc;
}

static void s_digest(PGconn *c, char *out, size_t len)
{
    testdb_scalar(c, "SELECT coalesce(md5(string_agg(point_id || ts || value || quality || batch_id, ';' "
                     "ORDER BY point_id, ts)), '-') FROM measurement", out, len);
}

/* The SQLSTATE a statement fails with ("" when it succeeds). */
static void s_sqlstate(PGconn *c, const char *sql, char out[6])
{
    PGresult *r = PQexec(c, sql);
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(out, 6, "%s", st ? st : "");
    PQclear(r);
}

#define HDR "timestamp,point_id,value,quality\n"

/* ---- integrity rules replacing the foreign key ------------------------- */

Test(ingest_integrity, unknown_point_raises_23503_on_parent_and_partition)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_fk");
    char st[6];
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2026-01-01Z', '2026-01-01Z')");
    s_sqlstate(c, "INSERT INTO measurement VALUES ('NOPE', '2026-01-02Z', 1, 'good', 1)", st);
    cr_assert_str_eq(st, "23503");
    s_sqlstate(c, "INSERT INTO measurement_y2026m01 VALUES ('NOPE', '2026-01-02Z', 1, 'good', 1)", st);
    cr_assert_str_eq(st, "23503", "a write straight into a partition is checked too");
    s_sqlstate(c, "COPY measurement_y2026m01 FROM PROGRAM 'printf \"NOPE\\t2026-01-03Z\\t1\\tgood\\t1\\n\"'", st);
    cr_assert_str_eq(st, "23503");
    s_sqlstate(c, "INSERT INTO measurement VALUES ('A', '2026-01-02Z', 1, 'good', 1)", st);
    cr_assert_str_eq(st, "");
    s_sqlstate(c, "UPDATE measurement SET point_id = 'NOPE'", st);
    cr_assert_str_eq(st, "23503", "moving a row to an unknown point is refused");
    /* A partition made after the migration gets the check as well. */
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2027-05-01Z', '2027-05-01Z')");
    s_sqlstate(c, "INSERT INTO measurement_y2027m05 VALUES ('NOPE', '2027-05-02Z', 1, 'good', 1)", st);
    cr_assert_str_eq(st, "23503");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM pg_constraint WHERE conrelid = 'measurement'::regclass "
                            "AND contype = 'f'"), 0, "the per-row foreign key is gone");
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_integrity, deleting_a_point_deletes_its_measurements)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_cascade");
    load_report rep;
    pcf_error e;
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-03-01T00:00Z,A,2,good\n"
                               "2026-01-01T00:00Z,B,3,good\n", "c.csv", &rep, &e), PCF_OK, "%s", e.msg);
    testdb_exec(c, "DELETE FROM measurement_point WHERE point_id = 'A'");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'A'"), 0);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'B'"), 1);
    /* Through the zone's cascade too. */
    testdb_exec(c, "DELETE FROM zone");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_integrity, renaming_a_point_with_measurements_is_refused)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_rename");
    load_report rep;
    pcf_error e;
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n", "r.csv", &rep, &e), PCF_OK, "%s", e.msg);
    char st[6];
    s_sqlstate(c, "UPDATE measurement_point SET point_id = 'A2' WHERE point_id = 'A'", st);
    cr_assert_str_eq(st, "23503");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_point WHERE point_id = 'A'"), 1);
    s_sqlstate(c, "UPDATE measurement_point SET point_id = 'B2' WHERE point_id = 'B'", st);
    cr_assert_str_eq(st, "", "a point without measurements may be renamed");
    s_sqlstate(c, "UPDATE measurement_point SET scale = 2 WHERE point_id = 'A'", st);
    cr_assert_str_eq(st, "", "other columns stay editable");
    PQfinish(c);
    testdb_drop(&db);
}

/* As with the foreign key, a transaction that wrote measurements of a
 * point holds it: deleting or renaming the point waits for that commit. */
Test(ingest_integrity, writers_lock_their_points_against_delete)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_lock");
    PGconn *other = testdb_connect(&db);
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2026-01-01Z', '2026-01-01Z')");
    testdb_exec(c, "BEGIN");
    testdb_exec(c, "INSERT INTO measurement_y2026m01 VALUES ('A', '2026-01-02Z', 1, 'good', 1)");
    testdb_exec(other, "SET lock_timeout = '200ms'");
    char st[6];
    s_sqlstate(other, "DELETE FROM measurement_point WHERE point_id = 'A'", st);
    cr_assert_str_eq(st, "55P03", "the delete waits for the writer");
    s_sqlstate(other, "UPDATE measurement_point SET point_id = 'A2' WHERE point_id = 'A'", st);
    cr_assert_str_eq(st, "55P03", "so does a rename");
    s_sqlstate(other, "DELETE FROM measurement_point WHERE point_id = 'B'", st);
    cr_assert_str_eq(st, "", "other points are free");
    testdb_exec(c, "COMMIT");
    s_sqlstate(other, "DELETE FROM measurement_point WHERE point_id = 'A'", st);
    cr_assert_str_eq(st, "");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0, "and the committed row went with its point");
    PQfinish(other);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_integrity, ingest_role_loads_files_through_both_paths)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_role");
    testdb_exec(c, "SET ROLE pcf_ingest");
    load_report rep;
    pcf_error e;
    /* Bulk path: new partitions, binary COPY into them, batch counters
     * (the UPDATE on ingest_batch was not granted before 005). */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-02-01T00:00Z,A,2,good\n", "r1.csv", &rep, &e),
                 PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 2);
    /* Overlap: the chunk falls back to the upsert. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,5,good\n2026-02-01T00:00Z,A,2,good\n", "r2.csv", &rep, &e),
                 PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 1);
    /* Refused file: quarantine and rejected batch. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,NOPE,1,good\n", "r3.csv", &rep, &e), PCF_ERR_INVALID);
    testdb_exec(c, "RESET ROLE");
    cr_assert_eq(s_count(c, "SELECT sum(rows_loaded) FROM ingest_batch WHERE status = 'loaded'"), 3);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE source = 'r3.csv'"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_integrity, drop_partitions_for_retention)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_retention");
    load_report rep;
    pcf_error e;
    cr_assert_eq(s_load(c, HDR "2026-01-10T00:00Z,A,1,good\n2026-02-10T00:00Z,A,2,good\n"
                               "2026-03-10T00:00Z,A,3,good\n", "k.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(s_count(c, "SELECT feed_drop_partitions('measurement', '2026-03-01Z')"), 2);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 1);
    cr_assert_eq(s_count(c, "SELECT feed_drop_partitions('measurement', '2026-03-31Z')"), 0,
                 "a month not over is kept");
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- bulk path ---------------------------------------------------------- */

Test(ingest_bulk, file_overlapping_stored_rows_falls_back_per_chunk)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_overlap");
    load_report rep;
    pcf_error e;
    load_scada_chunk_rows(2);
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n", "o1.csv", &rep, &e),
                 PCF_OK, "%s", e.msg);
    /* Chunk 1 (A 00:00 unchanged, A 00:30 corrected) overlaps; chunk 2 is
     * new and goes straight in; chunk 3 is one new row. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2.5,substituted\n"
                               "2026-01-01T00:00Z,B,7,good\n2026-01-01T00:30Z,B,8,good\n"
                               "2026-01-01T01:00Z,KW,9000,good\n", "o2.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.parsed, 5);
    cr_assert_eq(rep.stored, 4, "the unchanged row is not rewritten");
    cr_assert_eq(rep.bulk_chunks, 3);
    cr_assert_eq(rep.bulk_fallbacks, 1, "only the overlapping chunk went through staging");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 5);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement m JOIN ingest_batch b USING (batch_id) "
                            "WHERE b.source = 'o1.csv'"), 1, "the unchanged row keeps its batch");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'A' AND value = 2.5 "
                            "AND quality = 'substituted'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'KW' AND value = 9"), 1,
                 "scale applied on the bulk path");
    cr_assert_eq(s_count(c, "SELECT rows_loaded FROM ingest_batch WHERE source = 'o2.csv'"), 4);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_bulk, bad_row_in_last_chunk_stores_nothing)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_last");
    load_report rep;
    pcf_error e;
    load_scada_chunk_rows(2);
    pcf_rc rc = s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n"
                              "2026-01-01T00:00Z,B,3,good\n2026-01-01T00:30Z,B,4,good\n"
                              "2026-01-01T01:00Z,B,5,good\n2026-01-01T01:00Z,NOPE,6,good\n", "last.csv", &rep, &e);
    cr_assert_eq(rc, PCF_ERR_INVALID);
    cr_assert(rep.rejected);
    cr_assert_eq(rep.quarantined, 1);
    cr_assert(strstr(e.msg, "last.csv:7: point_id: unknown measurement point") != NULL, "%s", e.msg);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0, "the chunks already copied are undone");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM ingest_batch WHERE status = 'loaded'"), 0);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE line = 7 AND raw LIKE 'NOPE,%'"), 1);
    /* A parser refusal in the last chunk as well. */
    rc = s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n"
                       "2026-01-01T00:00Z,B,3,good\n2026-01-01T00:30Z,B,inf,good\n", "last2.csv", &rep, &e);
    cr_assert_eq(rc, PCF_ERR_INVALID);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_bulk, multi_month_file_goes_to_each_partition)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_months");
    load_report rep;
    pcf_error e;
    load_scada_chunk_rows(3);
    /* Out of order, across a year end and a leap day, one chunk spanning
     * several months. */
    cr_assert_eq(s_load(c, HDR "2026-02-28T23:59:59Z,B,4,good\n2025-12-31T23:30Z,A,1,good\n"
                               "2026-01-01T00:00Z,A,2,bad\n2028-02-29T12:00Z,A,5,uncertain\n"
                               "2026-03-01T00:00Z,B,6,substituted\n2025-12-01T00:00Z,B,0,good\n",
                        "m.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 6);
    cr_assert_eq(rep.bulk_chunks, 2);
    cr_assert_eq(rep.bulk_fallbacks, 0);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_y2025m12"), 2);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_y2026m01"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_y2026m02 WHERE ts = '2026-02-28T23:59:59Z' "
                            "AND point_id = 'B' AND value = 4"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_y2026m03 WHERE quality = 'substituted'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_y2028m02 WHERE ts = '2028-02-29T12:00Z' "
                            "AND quality = 'uncertain'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE ts = '2026-01-01T00:00Z' AND quality = 'bad'"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_bulk, binary_copy_is_lossless)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_exact");
    load_report rep;
    pcf_error e;
    cr_assert_eq(s_load(c, HDR "1999-12-31T23:59:59Z,A,0.1,good\n2000-01-01T00:00:00Z,A,-123.456e-7,good\n"
                               "2026-06-30T23:59:59+01:00,A,1e300,good\n2026-06-30T23:00:00Z,B,-0,good\n"
                               "2026-07-01T00:00:00Z,KW,12345.678,good\n", "x.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.bulk_chunks, 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE (point_id, ts, value) IN ("
                            "('A', '1999-12-31T23:59:59Z', 0.1::float8), ('A', '2000-01-01Z', -123.456e-7::float8), "
                            "('A', '2026-06-30T22:59:59Z', 1e300::float8), ('B', '2026-06-30T23:00Z', 0::float8), "
                            "('KW', '2026-07-01Z', 12345.678::float8 * 0.001::float8))"), 5);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement_y1999m12"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_bulk, rerun_changes_nothing)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_rerun");
    load_report rep;
    pcf_error e;
    load_scada_chunk_rows(2);
    const char *text = HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n"
                           "2026-02-01T00:00Z,B,3,good\n2026-01-01T00:00Z,KW,4,good\n";
    cr_assert_eq(s_load(c, text, "x.csv", &rep, &e), PCF_OK, "%s", e.msg);
    char before[64], after[64];
    s_digest(c, before, sizeof before);
    cr_assert_eq(s_load(c, text, "x-again.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert(rep.already_loaded);
    /* Same rows, other bytes (reordered): every chunk falls back, nothing
     * is written. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,KW,4,good\n2026-02-01T00:00Z,B,3,good\n"
                               "2026-01-01T00:30Z,A,2,good\n2026-01-01T00:00Z,A,1,good\n", "y.csv", &rep, &e),
                 PCF_OK, "%s", e.msg);
    cr_assert(!rep.already_loaded);
    cr_assert_eq(rep.stored, 0);
    cr_assert_eq(rep.bulk_fallbacks, 2);
    s_digest(c, after, sizeof after);
    cr_assert_str_eq(before, after);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_bulk, duplicates_across_chunks)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_dups");
    load_report rep;
    pcf_error e;
    load_scada_chunk_rows(2);
    /* Identical in two chunks: collapsed and counted, as in one chunk. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n"
                               "2026-01-01T00:00:00+00:00,A,1,GOOD\n2026-01-01T00:00Z,A,1,good\n",
                        "d.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 2);
    cr_assert_eq(rep.duplicates, 2);
    cr_assert_eq(rep.bulk_fallbacks, 1);
    /* Different values in two chunks: the file is refused. */
    char before[64], after[64];
    s_digest(c, before, sizeof before);
    cr_assert_eq(s_load(c, HDR "2026-01-02T00:00Z,A,1,good\n2026-01-02T00:30Z,A,2,good\n"
                               "2026-01-02T00:00Z,A,9,good\n", "d2.csv", &rep, &e), PCF_ERR_INVALID);
    cr_assert(rep.rejected);
    cr_assert(strstr(e.msg, "duplicate") != NULL, "%s", e.msg);
    s_digest(c, after, sizeof after);
    cr_assert_str_eq(before, after);
    PQfinish(c);
    testdb_drop(&db);
}

/* Regression: a key of an earlier chunk that went through the fallback
 * unchanged keeps its old batch id; a different value for it in a later
 * chunk was accepted (last wins) where the staging path refuses the file. */
Test(ingest_bulk, conflict_with_unchanged_row_of_earlier_chunk_is_refused)
{
    testdb db;
    PGconn *c = s_setup(&db, "bk_dupold");
    load_report rep;
    pcf_error e;
    load_scada_chunk_rows(2);
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n", "s.csv", &rep, &e),
                 PCF_OK, "%s", e.msg);
    char before[64], after[64];
    s_digest(c, before, sizeof before);
    /* Chunk 1 all unchanged (nothing stored yet when chunk 2 comes). */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n"
                               "2026-01-01T00:00Z,A,9,good\n", "u1.csv", &rep, &e), PCF_ERR_INVALID);
    cr_assert(rep.rejected);
    cr_assert(strstr(e.msg, "duplicate") != NULL, "%s", e.msg);
    s_digest(c, after, sizeof after);
    cr_assert_str_eq(before, after);
    /* Chunk 1 half new: rows carry this batch's id, not the unchanged one. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:00Z,B,5,good\n"
                               "2026-01-01T00:00Z,A,9,good\n2026-01-01T00:30Z,B,6,good\n", "u2.csv", &rep, &e),
                 PCF_ERR_INVALID);
    cr_assert(rep.rejected);
    s_digest(c, after, sizeof after);
    cr_assert_str_eq(before, after);
    /* The same value again is a duplicate, not a conflict. */
    cr_assert_eq(s_load(c, HDR "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:30Z,A,2,good\n"
                               "2026-01-01T00:00Z,A,1,good\n2026-01-01T00:00Z,B,5,good\n", "u3.csv", &rep, &e),
                 PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.duplicates, 1);
    cr_assert_eq(rep.stored, 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'A' AND value = 1"), 1);
    PQfinish(c);
    testdb_drop(&db);
}
