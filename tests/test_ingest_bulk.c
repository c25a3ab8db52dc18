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
