/*
 * test_forecast_db.c -- history.h against a real PostgreSQL: a quarter of
 * half-hourly SCADA for 60 points (259,201 rows; the full year, 1.05M rows,
 * is timed in docs/methodology.md) loaded with one COPY and timed; half-hour averaging and 'bad' values; weather from the latest
 * forecast issued before an instant, interpolated to half-hours, with
 * ensemble members; and the zone + history snapshot in one transaction.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "sptime.h"
#include "testdb.h"
#include "zone.h"

static void s_hpcfdb(const testdb *db, const char *args)
{
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "%s/pcf-db %s", testdb_bindir(), args);
    cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "pcf-db %s: %s", args, out);
}

static PGconn *s_hist_db(testdb *db, const char *tag)
{
    testdb_create(db, tag);
    s_hpcfdb(db, "migrate");
    s_hpcfdb(db, "import-matpower --zone T tests/data/matpower/cases/case9.m");
    s_hpcfdb(db, "import-der --zone T tests/data/registry/case9");
    s_hpcfdb(db, "import-anm --zone T tests/data/registry/case9");
    s_hpcfdb(db, "import-points --zone T tests/data/registry/case9_points.csv");
    return testdb_connect(db);
}

static int64_t s_t(const char *iso)
{
    int64_t t;
    cr_assert_eq(sptime_parse_utc(iso, strlen(iso), &t), PCF_OK, "%s", iso);
    return t;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

Test(forecast_db, a_quarter_of_scada_for_60_points, .timeout = 120)
{
    testdb db;
    PGconn *c = s_hist_db(&db, "hist");
    /* 55 more demand points: 60 in all, as the demo zone has. */
    testdb_exec(c, "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i)"
                   " SELECT 'X' || lpad(g::text, 2, '0'), 'T', 'p_mw', 'bus', 5 FROM generate_series(1, 55) g");
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2025-01-01Z', '2025-03-31Z')");
    /* value = slot number within the year + 1000 * (point's rank in id order) */
    testdb_exec(c, "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
                   " SELECT p.point_id, ts, (extract(epoch FROM ts) - 1735689600) / 1800 + 1000 * p.k, 'good', 1"
                   " FROM (SELECT point_id, row_number() OVER (ORDER BY point_id COLLATE \"C\") - 1 AS k"
                   "       FROM measurement_point) p,"
                   " generate_series('2025-01-01T00:00Z'::timestamptz, '2025-03-31T23:30Z', '30 min') ts");
    /* A second value inside one half-hour is averaged; a bad value is not used. */
    testdb_exec(c, "INSERT INTO measurement VALUES ('GT1_P', '2025-03-01T10:10Z', 5000, 'good', 1)");
    testdb_exec(c, "UPDATE measurement SET quality = 'bad' WHERE point_id = 'S1_P' AND ts = '2025-02-01T12:00Z'");
    testdb_exec(c, "ANALYZE measurement");
    char v[64];
    testdb_scalar(c, "SELECT count(*) FROM measurement", v, sizeof v);
    cr_assert_str_eq(v, "259201");

    /* The zone and its history in one snapshot. */
    testdb_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    pcf_error err = { 0 };
    zone *z = NULL;
    cr_assert_eq(zone_load(c, "T", NULL, &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(z->npoint, 60);
    history *h = NULL;
    int64_t from = s_t("2025-01-01T00:00Z"), to = s_t("2025-04-01T00:00Z");
    double t0 = s_now();
    cr_assert_eq(history_load_scada(c, z, from, to, &h, &err), PCF_OK, "%s", err.msg);
    double secs = s_now() - t0;
    testdb_exec(c, "COMMIT");
    fprintf(stderr, "# history_load_scada: %.3f s wall for 259,201 rows (60 points x 4320 half-hours)\n", secs);
    cr_assert_lt(secs, 5.0, "loading took %.3f s", secs);
    cr_assert_eq(h->t0, from);
    cr_assert_eq(h->nt, 4320);
    cr_assert_eq(h->npoint, 60);
    size_t nan = 0;
    for (size_t p = 0; p < 60; p++)
        for (size_t i = 0; i < h->nt; i++) {
            double x = history_row(h, p)[i];
            if (isnan(x)) {
                nan++;
                continue;
            }
            int64_t t = h->t0 + (int64_t)i * 1800;
            if (t == s_t("2025-03-01T10:00Z") && strcmp(z->point[p].id, "GT1_P") == 0)
                cr_assert_float_eq(x, ((double)i + 1000.0 * (double)p + 5000.0) / 2, 1e-9);
            else
                cr_assert_float_eq(x, (double)i + 1000.0 * (double)p, 1e-9, "%s slot %zu", z->point[p].id, i);
        }
    cr_assert_eq(nan, 1, "only the bad value is missing");
    long s1 = -1;
    for (size_t p = 0; p < z->npoint; p++)
        if (strcmp(z->point[p].id, "S1_P") == 0) s1 = (long)p;
    cr_assert(isnan(history_row(h, (size_t)s1)[(s_t("2025-02-01T12:00Z") - from) / 1800]));
    history_destroy(&h);

    /* A window: slots outside are not filled, partial ranges round outward. */
    cr_assert_eq(history_load_scada(c, z, s_t("2025-03-02T00:10Z"), s_t("2025-03-02T01:00Z"), &h, &err), PCF_OK,
                 "%s", err.msg);
    cr_assert_eq(h->nt, 2);
    cr_assert_eq(h->t0, s_t("2025-03-02T00:00Z"));
    cr_assert_float_eq(history_row(h, 0)[1], (double)((s_t("2025-03-02T00:30Z") - from) / 1800), 1e-9);
    history_destroy(&h);
    cr_assert_eq(history_load_scada(c, z, to, from, &h, &err), PCF_ERR_INVALID);
    zone_destroy(&z);
    PQfinish(c);
    testdb_drop(&db);
}

Test(forecast_db, weather_latest_issue_interpolated_with_members)
{
    testdb db;
    PGconn *c = s_hist_db(&db, "wx");
    testdb_exec(c, "INSERT INTO weather_location VALUES ('L2', 'T', 52.8, 0.1, 3), ('L1', 'T', 52.9, -0.1, 4),"
                   " ('OTHER', NULL, 50, 0, 0)");
    testdb_exec(c, "SELECT feed_ensure_partitions('weather_forecast', '2025-05-31Z', '2025-06-02Z')");
    /* Issue A at 00:00: temperature 10 + hour, radiation 100 * hour (hour
     * ending), wind members m: 5 + m.  Issue B at 06:00: temperature 20 + hour. */
    testdb_exec(c, "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, value,"
                   " interval_s, batch_id)"
                   " SELECT l, 'm', '2025-06-01T00:00Z'::timestamptz, v, 'temperature_2m', 0,"
                   "        10 + extract(hour FROM v AT TIME ZONE 'UTC'), 0, 1"
                   " FROM unnest(ARRAY['L1', 'L2', 'OTHER']) l,"
                   "      generate_series('2025-06-01T00:00Z'::timestamptz, '2025-06-01T23:00Z', '1 hour') v"
                   " UNION ALL"
                   " SELECT 'L1', 'm', '2025-06-01T06:00Z'::timestamptz, v, 'temperature_2m', 0,"
                   "        20 + extract(hour FROM v AT TIME ZONE 'UTC'), 0, 1"
                   " FROM generate_series('2025-06-01T06:00Z'::timestamptz, '2025-06-01T23:00Z', '1 hour') v"
                   " UNION ALL"
                   " SELECT 'L1', 'm', '2025-06-01T00:00Z'::timestamptz, v, 'shortwave_radiation', 0,"
                   "        100 * extract(hour FROM v AT TIME ZONE 'UTC'), 3600, 1"
                   " FROM generate_series('2025-06-01T01:00Z'::timestamptz, '2025-06-01T23:00Z', '1 hour') v"
                   " UNION ALL"
                   " SELECT 'L1', 'ens', '2025-06-01T00:00Z'::timestamptz, v, 'wind_speed_100m', m, 5 + m, 0, 1"
                   " FROM generate_series(0, 3) m,"
                   "      generate_series('2025-06-01T00:00Z'::timestamptz, '2025-06-01T23:00Z', '1 hour') v");
    const char *vars[] = { "temperature_2m", "shortwave_radiation", "wind_speed_100m" };
    int64_t from = s_t("2025-06-01T00:00Z"), to = s_t("2025-06-02T00:00Z");
    wx_series *w = NULL;
    pcf_error err = { 0 };
    cr_assert_eq(history_load_weather(c, "T", vars, 3, from, to, s_t("2025-06-01T05:00Z"), 50, &w, &err), PCF_OK,
                 "%s", err.msg);
    cr_assert_eq(w->nloc, 2, "only the zone's locations");
    cr_assert_str_eq(w->loc[0].id, "L1");
    cr_assert_float_eq(w->loc[0].latitude, 52.9, 1e-12);
    cr_assert_str_eq(w->loc[1].id, "L2");
    cr_assert_eq(w->nt, 48);
    cr_assert_eq(w->nmember, 4, "compacted to the members present");
    /* Slot 03:00 stands at 03:15: between 13 (03:00) and 14 (04:00). */
    cr_assert_float_eq(wx_at(w, 0, 0, 0, s_t("2025-06-01T03:00Z")), 13.25, 1e-12);
    cr_assert_float_eq(wx_at(w, 1, 0, 0, s_t("2025-06-01T03:00Z")), 13.25, 1e-12);
    /* The last value (23:00) has no right neighbour: no extrapolation. */
    cr_assert(isnan(wx_at(w, 0, 0, 0, s_t("2025-06-01T23:00Z"))));
    cr_assert_float_eq(wx_at(w, 0, 0, 0, s_t("2025-06-01T22:30Z")), 32.75, 1e-12);
    /* Radiation of the hour ending 11:00 stands at 10:30: slot 11:00 (11:15)
     * lies between 1100 (10:30) and 1200 (11:30). */
    cr_assert_float_eq(wx_at(w, 0, 1, 0, s_t("2025-06-01T11:00Z")), 1175.0, 1e-9);
    cr_assert(isnan(wx_at(w, 1, 1, 0, s_t("2025-06-01T11:00Z"))), "L2 has no radiation");
    for (size_t m = 0; m < 4; m++)
        cr_assert_float_eq(wx_at(w, 0, 2, m, s_t("2025-06-01T12:00Z")), 5.0 + (double)m, 1e-12);
    cr_assert(isnan(wx_at(w, 0, 2, 0, s_t("2025-06-02T00:00Z"))), "outside the series");
    cr_assert_eq(wx_var_find(w, "shortwave_radiation"), 1);
    cr_assert_eq(wx_var_find(w, "cloud_cover"), -1);
    wx_series_destroy(&w);

    /* Issued before 07:00: issue B wins from 06:00 on, A before. */
    cr_assert_eq(history_load_weather(c, "T", vars, 1, from, to, s_t("2025-06-01T07:00Z"), 0, &w, &err), PCF_OK,
                 "%s", err.msg);
    cr_assert_eq(w->nmember, 1);
    cr_assert_float_eq(wx_at(w, 0, 0, 0, s_t("2025-06-01T04:00Z")), 14.25, 1e-12);
    cr_assert_float_eq(wx_at(w, 0, 0, 0, s_t("2025-06-01T07:00Z")), 27.25, 1e-12);
    cr_assert_float_eq(wx_at(w, 1, 0, 0, s_t("2025-06-01T07:00Z")), 17.25, 1e-12, "L2 only has issue A");
    /* Between A's 05:00 (15) and B's 06:00 (26). */
    cr_assert_float_eq(wx_at(w, 0, 0, 0, s_t("2025-06-01T05:00Z")), 15 + 0.25 * 11, 1e-12);
    wx_series_destroy(&w);

    /* Nothing issued yet: all missing, one member. */
    cr_assert_eq(history_load_weather(c, "T", vars, 3, from, to, s_t("2025-05-01T00:00Z"), 10, &w, &err), PCF_OK);
    cr_assert(isnan(wx_at(w, 0, 0, 0, from)));
    cr_assert_eq(w->nmember, 1);
    wx_series_destroy(&w);
    /* Hostile names are quoted, never interpreted. */
    const char *evil[] = { "x'); DROP TABLE measurement; --" };
    cr_assert_eq(history_load_weather(c, "T'--", evil, 1, from, to, from, 0, &w, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(w->nloc, 0);
    wx_series_destroy(&w);
    char v[64];
    testdb_scalar(c, "SELECT count(*) FROM pg_class WHERE relname = 'measurement'", v, sizeof v);
    cr_assert_str_eq(v, "1");
    cr_assert_eq(history_load_weather(c, "T", vars, 3, from, to, from, -1, &w, &err), PCF_ERR_INVALID);
    PQfinish(c);
    testdb_drop(&db);
}
