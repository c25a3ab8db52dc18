/* test_ingest_load.c -- loaders against a real PostgreSQL: staging, upsert,
 * quarantine, idempotent re-runs, all-or-nothing SCADA files, revisions. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "load.h"
#include "migrate.h"
#include "testdb.h"

static const char *s_network =
    "INSERT INTO zone (zone_id, base_mva) VALUES ('z1', 100);"
    "INSERT INTO bus (zone_id, bus_i, row_no, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, loss_zone, vmax, vmin)"
    " VALUES ('z1', 1, 1, 3, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9), ('z1', 2, 2, 1, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9);"
    "INSERT INTO branch (zone_id, idx, name, f_bus, t_bus, r, x, b, rate_a, rate_b, rate_c, tap, shift, status)"
    " VALUES ('z1', 1, 'BRIG-NINF-1', 1, 2, 0.01, 0.1, 0, 100, 100, 100, 0, 0, 1),"
    "        ('z1', 2, 'NINF-GT1', 1, 2, 0.01, 0.1, 0, 100, 100, 100, 0, 0, 1);"
    "INSERT INTO measurement_point (point_id, zone_id, quantity, element, branch_id, branch_end, scale)"
    " SELECT p, 'z1', q, 'branch', branch_id, 'from', 1 FROM branch,"
    "  (VALUES ('GT1_P', 'p_mw'), ('brighton_local_33kv_gt2/active_power_mw', 'p_mw'),"
    "          ('brighton_local_33kv_gt2/current_amps', 'i_a'), ('ninfield_132kv_sgt1/active_power_mw', 'p_mw'),"
    "          ('ninfield_132kv_sgt1/current_amps', 'i_a')) v(p, q) WHERE idx = 1;"
    "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i, scale)"
    " VALUES ('BUS1_V', 'z1', 'v_kv', 'bus', 1, 1), ('P_KW', 'z1', 'p_mw', 'bus', 2, 0.001);"
    "INSERT INTO equipment_branch SELECT name, branch_id FROM branch;"
    "INSERT INTO weather_location (location_id, zone_id, latitude, longitude) VALUES"
    " ('london', 'z1', 51.5, -0.12), ('ams', NULL, 52.3, 6.9), ('ams2', NULL, 52.5, 6.9);";

static PGconn *s_setup(testdb *db, const char *tag)
{
    testdb_create(db, tag);
    pcf_error e;
    PGconn *c = db_connect(db->conninfo, &e);
    cr_assert_not_null(c, "%s", e.msg);
    int applied = 0;
    cr_assert_eq(migrate_apply(c, 0, NULL, NULL, &applied, &e), PCF_OK, "%s", e.msg);
    testdb_exec(c, s_network);
    return c;
}

static long s_count(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

/* Writes text to a fresh temporary file and returns its path (static). */
static const char *s_tmpfile(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/pcf-ingest-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t n = strlen(text);
    cr_assert_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

Test(ingest_load, historian_file_loads_and_rerun_changes_nothing)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_hist");
    load_report rep;
    pcf_error e;
    cr_assert_eq(load_scada_file(c, "tests/data/ingest/historian_ok.csv", "historian_ok.csv", &rep, &e), PCF_OK,
                 "%s", e.msg);
    cr_assert(!rep.rejected && !rep.already_loaded);
    cr_assert_eq(rep.stored, 4);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 4);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'GT1_P' "
                            "AND ts = '2026-03-29T01:00Z' AND value = 12.75 AND quality = 'good'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE quality = 'uncertain'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM pg_class WHERE relname = 'measurement_y2026m03'"), 1);
    cr_assert_eq(s_count(c, "SELECT rows_loaded FROM ingest_batch WHERE status = 'loaded'"), 4);

    char before[64], after[64];
    testdb_scalar(c, "SELECT md5(string_agg(point_id || ts || value || quality || batch_id, ';' "
                     "ORDER BY point_id, ts)) FROM measurement", before, sizeof before);
    cr_assert_eq(load_scada_file(c, "tests/data/ingest/historian_ok.csv", "again.csv", &rep, &e), PCF_OK);
    cr_assert(rep.already_loaded);
    testdb_scalar(c, "SELECT md5(string_agg(point_id || ts || value || quality || batch_id, ';' "
                     "ORDER BY point_id, ts)) FROM measurement", after, sizeof after);
    cr_assert_str_eq(before, after);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM ingest_batch"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, same_rows_in_a_new_file_rewrite_nothing)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_same");
    load_report rep;
    pcf_error e;
    const char *a = s_tmpfile("timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n");
    cr_assert_eq(load_scada_file(c, a, "a.csv", &rep, &e), PCF_OK, "%s", e.msg);
    unlink(a);
    /* Different bytes (CRLF, extra row), same first measurement. */
    const char *b = s_tmpfile("timestamp,point_id,value,quality\r\n2026-01-01T00:00Z,GT1_P,1,good\r\n"
                              "2026-01-01T00:30Z,GT1_P,2,good\r\n");
    cr_assert_eq(load_scada_file(c, b, "b.csv", &rep, &e), PCF_OK, "%s", e.msg);
    unlink(b);
    cr_assert_eq(rep.stored, 1, "only the new row is written");
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT batch_id) FROM measurement"), 2);
    /* A corrected value is an update. */
    const char *d = s_tmpfile("timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1.5,substituted\n");
    cr_assert_eq(load_scada_file(c, d, "d.csv", &rep, &e), PCF_OK, "%s", e.msg);
    unlink(d);
    cr_assert_eq(rep.stored, 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE value = 1.5 AND quality = 'substituted'"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, ukpn_file_and_scale)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_ukpn");
    load_report rep;
    pcf_error e;
    cr_assert_eq(load_scada_file(c, "tests/data/ingest/ukpn_halfhourly.csv", "ukpn.csv", &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 6);
    cr_assert_eq(rep.missing, 2);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'brighton_local_33kv_gt2/current_amps' "
                            "AND value = 296.68"), 1);
    const char *k = s_tmpfile("timestamp,point_id,value,quality\n2026-01-01T00:00Z,P_KW,2500,good\n");
    cr_assert_eq(load_scada_file(c, k, "kw.csv", &rep, &e), PCF_OK, "%s", e.msg);
    unlink(k);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE point_id = 'P_KW' AND value = 2.5"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, unknown_point_rejects_whole_file_into_quarantine)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_unk");
    load_report rep;
    pcf_error e;
    const char *p = s_tmpfile("timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n"
                              "2026-01-01T00:00Z,NO_SUCH_POINT,2,good\n");
    cr_assert_eq(load_scada_file(c, p, "unk.csv", &rep, &e), PCF_ERR_INVALID);
    unlink(p);
    cr_assert(rep.rejected);
    cr_assert(strstr(e.msg, "unk.csv:3: point_id: unknown measurement point") != NULL, "%s", e.msg);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0, "nothing half-written");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE feed = 'scada' AND source = 'unk.csv' "
                            "AND line = 3 AND field = 'point_id' AND raw LIKE 'NO_SUCH_POINT,%'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM ingest_batch WHERE status = 'rejected' AND rows_quarantined = 1"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, parse_errors_reject_whole_file)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_bad");
    load_report rep;
    pcf_error e;
    const char *p = s_tmpfile("timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,NaN,good\n"
                              "2026-01-01T00:30Z,GT1_P,1,good\n2026-01-01T01:00Z,GT1_P,1");
    cr_assert_eq(load_scada_file(c, p, "bad.csv", &rep, &e), PCF_ERR_INVALID);
    unlink(p);
    cr_assert_eq(rep.quarantined, 2);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE line IN (2, 4)"), 2);
    /* Wrong header: the whole input is refused with the parser's message. */
    p = s_tmpfile("time,point,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n");
    cr_assert_eq(load_scada_file(c, p, "hdr.csv", &rep, &e), PCF_ERR_PARSE);
    unlink(p);
    cr_assert(strstr(e.msg, "wrong header") != NULL);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE source = 'hdr.csv' AND reason LIKE '%wrong header%'"), 1);
    p = s_tmpfile("");
    cr_assert_eq(load_scada_file(c, p, "empty.csv", &rep, &e), PCF_ERR_PARSE);
    unlink(p);
    cr_assert(strstr(e.msg, "empty file") != NULL);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement"), 0);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, duplicates_inside_one_file)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_dup");
    load_report rep;
    pcf_error e;
    const char *p = s_tmpfile("timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n"
                              "2026-01-01T00:00:00+00:00,GT1_P,1,good\n2026-01-01T00:30Z,GT1_P,2,good\n");
    cr_assert_eq(load_scada_file(c, p, "dup.csv", &rep, &e), PCF_OK, "%s", e.msg);
    unlink(p);
    cr_assert_eq(rep.duplicates, 1);
    cr_assert_eq(rep.stored, 2);
    p = s_tmpfile("timestamp,point_id,value,quality\n2026-02-01T00:00Z,GT1_P,1,good\n"
                  "2026-02-01T00:00Z,GT1_P,7,good\n");
    cr_assert_eq(load_scada_file(c, p, "dup2.csv", &rep, &e), PCF_ERR_INVALID);
    unlink(p);
    cr_assert_eq(rep.quarantined, 2);
    cr_assert(strstr(e.msg, "duplicate") != NULL, "%s", e.msg);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM measurement WHERE ts >= '2026-02-01Z'"), 0);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, notify_after_commit)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_notify");
    pcf_error e;
    PGconn *l = db_connect(db.conninfo, &e);
    cr_assert_not_null(l);
    testdb_exec(l, "LISTEN pcf_scada");
    load_report rep;
    cr_assert_eq(load_scada_file(c, "tests/data/ingest/historian_ok.csv", "n.csv", &rep, &e), PCF_OK, "%s", e.msg);
    PGnotify *n = NULL;
    for (int i = 0; i < 50 && !n; i++) {
        PQconsumeInput(l);
        n = PQnotifies(l);
        if (!n)
            usleep(20000);
    }
    cr_assert_not_null(n, "no NOTIFY received");
    cr_assert_str_eq(n->relname, "pcf_scada");
    cr_assert_eq(strtoll(n->extra, NULL, 10), rep.batch_id);
    PQfreemem(n);
    PQfinish(l);
    PQfinish(c);
    testdb_drop(&db);
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *b = malloc(1 << 20);
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

Test(ingest_load, weather_forecast_and_ensemble)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_wx");
    load_report rep;
    pcf_error e;
    size_t len;
    char *buf = s_slurp("tests/data/ingest/om_forecast_london_autumn.json", &len);
    const char *ids[] = {"london"};
    load_weather_opts o = {ids, 1, "ukmo_seamless", 1792839600 /* 2026-10-24T09:40Z */ + 0};
    cr_assert_eq(load_weather(c, buf, len, "om-london", &o, &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 8 * 48 - 1);
    cr_assert_eq(rep.missing, 1);
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT valid_at) FROM weather_forecast"), 48);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM weather_forecast WHERE variable = 'wind_speed_100m' AND value = 10"), 48);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM weather_forecast WHERE variable = 'shortwave_radiation' "
                            "AND interval_s = 3600"), 48);
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT issued_at) FROM weather_forecast "
                            "WHERE issued_at = date_trunc('hour', to_timestamp(1792839600))"), 1);
    /* The same body again: nothing changes. */
    cr_assert_eq(load_weather(c, buf, len, "om-london", &o, &rep, &e), PCF_OK);
    cr_assert(rep.already_loaded);
    free(buf);

    buf = s_slurp("tests/data/ingest/om_ensemble.json", &len);
    cr_assert_eq(load_weather(c, buf, len, "om-ens", &o, &rep, &e), PCF_OK, "%s", e.msg);
    free(buf);
    cr_assert_eq(rep.stored, 48);
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT member) FROM weather_forecast WHERE model = 'ecmwf_ifs025'"), 4);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, weather_bad_bodies_store_nothing)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_wxbad");
    load_report rep;
    pcf_error e;
    const char *ids[] = {"ams", "ams2"};
    load_weather_opts o = {ids, 2, "best_match", 1790000000};
    const char *files[] = {"tests/data/ingest/om_error.json", "tests/data/ingest/om_truncated.json"};
    pcf_rc want[] = {PCF_ERR_INVALID, PCF_ERR_PARSE};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *buf = s_slurp(files[i], &len);
        cr_assert_eq(load_weather(c, buf, len, files[i], &o, &rep, &e), want[i], "%s", e.msg);
        cr_assert(rep.rejected);
        free(buf);
    }
    cr_assert_eq(s_count(c, "SELECT count(*) FROM weather_forecast"), 0);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE feed = 'weather'"), 2);
    /* Two locations in the body, two configured: loads; wrong units are quarantined per variable. */
    size_t len;
    char *buf = s_slurp("tests/data/ingest/om_two_locations.json", &len);
    cr_assert_eq(load_weather(c, buf, len, "two", &o, &rep, &e), PCF_OK, "%s", e.msg);
    free(buf);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM weather_forecast WHERE location_id = 'ams2'"), 6);
    const char *units = "{\"latitude\":52,\"longitude\":6,\"utc_offset_seconds\":0,"
                        "\"hourly_units\":{\"time\":\"iso8601\",\"temperature_2m\":\"°F\",\"cloud_cover\":\"%\"},"
                        "\"hourly\":{\"time\":[\"2026-01-01T00:00\"],\"temperature_2m\":[50],\"cloud_cover\":[5]}}";
    cr_assert_eq(load_weather(c, units, strlen(units), "units", &o, &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 1);
    cr_assert_eq(rep.quarantined, 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE source = 'units' AND field = 'temperature_2m'"), 1);
    /* An unconfigured location id refuses the body. */
    const char *bad_ids[] = {"nowhere"};
    load_weather_opts ob = {bad_ids, 1, "best_match", 1790000000};
    cr_assert_eq(load_weather(c, units, strlen(units), "units2", &ob, &rep, &e), PCF_ERR_INVALID);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, outages_revisions_history_and_cancel)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_out");
    load_report rep;
    pcf_error e;
    cr_assert_eq(load_outage_file(c, "tests/data/ingest/outages.json", "o.json", LOAD_OUTAGE_JSON, &rep, &e), PCF_OK,
                 "%s", e.msg);
    cr_assert_eq(rep.stored, 3);
    cr_assert_eq(s_count(c, "SELECT revision FROM outage_current WHERE outage_id = 'OUT-1'"), 2);
    cr_assert_eq(load_outage_file(c, "tests/data/ingest/outages_cancel_revise.json", "o2.json", LOAD_OUTAGE_JSON,
                                  &rep, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 2);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM outage WHERE outage_id = 'OUT-1'"), 4, "history kept");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM outage_current WHERE outage_id = 'OUT-1' AND revision = 4 "
                            "AND status = 'planned' AND start_at = '2026-06-08T07:00Z'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM outage WHERE outage_id = 'OUT-1' AND revision = 3 AND status = 'cancelled'"), 1);
    /* A stored revision sent again with other content is refused. */
    const char *p = s_tmpfile("[{\"outage_id\":\"OUT-2\",\"revision\":1,\"equipment_id\":\"NINF-GT1\",\"kind\":\"unplanned\","
                              "\"status\":\"completed\",\"start\":\"2026-05-20T03:10:00Z\",\"end\":\"2026-05-20T09:00:00Z\"},"
                              "{\"outage_id\":\"OUT-3\",\"revision\":1,\"equipment_id\":\"NO-SUCH\",\"kind\":\"planned\","
                              "\"status\":\"planned\",\"start\":\"2026-05-20T03:10:00Z\",\"end\":\"2026-05-20T09:00:00Z\"}]");
    cr_assert_eq(load_outage_file(c, p, "o3.json", LOAD_OUTAGE_JSON, &rep, &e), PCF_OK, "%s", e.msg);
    unlink(p);
    cr_assert_eq(rep.stored, 0);
    cr_assert_eq(rep.quarantined, 2);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE source = 'o3.json' AND field = 'equipment_id'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM quarantine WHERE source = 'o3.json' AND field = 'revision'"), 1);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_load, ukpn_outage_csv_numbers_revisions)
{
    testdb db;
    PGconn *c = s_setup(&db, "ld_outcsv");
    load_report rep;
    pcf_error e;
    cr_assert_eq(load_outage_file(c, "tests/data/ingest/ukpn_outages.csv", "u.csv", LOAD_OUTAGE_UKPN_CSV, &rep, &e),
                 PCF_OK, "%s", e.msg);
    cr_assert_eq(rep.stored, 2);
    cr_assert_eq(rep.quarantined, 2);       /* the clock-change rows */
    cr_assert_eq(s_count(c, "SELECT count(*) FROM outage WHERE revision = 1"), 2);
    /* The same rows in a new file: nothing new.  A changed row: revision 2. */
    const char *p = s_tmpfile(
        "outageid,circuitid,substationname,sitefunctionallocation,dno,startdate,starttime,enddate,endtime,"
        "outagetype,plannedstatus,plantype,spatial_coordinates\n"
        "EHV-1001,BRIG-NINF-1,Brighton Local 33kV,SPN-BRIG-33,SPN,2026-06-01,08:00,2026-06-01,16:30,Planned,"
        "Confirmed,Maintenance,\"50.83, -0.14\"\n"
        "EHV-1002,NINF-GT1,Ninfield 132kV,SPN-NINF-132,SPN,25/10/2026,00:30,25/10/2026,03:00,Planned,Cancelled,"
        "Construction,\"50.87, 0.42\"\n");
    cr_assert_eq(load_outage_file(c, p, "u2.csv", LOAD_OUTAGE_UKPN_CSV, &rep, &e), PCF_OK, "%s", e.msg);
    unlink(p);
    cr_assert_eq(rep.stored, 1);
    cr_assert_eq(s_count(c, "SELECT revision FROM outage_current WHERE outage_id = 'EHV-1002'"), 2);
    cr_assert_eq(s_count(c, "SELECT revision FROM outage_current WHERE outage_id = 'EHV-1001'"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM outage_current WHERE status = 'cancelled'"), 1);
    PQfinish(c);
    testdb_drop(&db);
}
