/*
 * test_engine_cache.c -- what the engine daemon keeps between runs
 * (engine_cache.h) is always what a fresh load would give: a forward slide
 * re-reads only the tail and merges, late live values inside the tail are
 * seen, a historian batch or a new weather batch forces a whole read, a
 * change to the model tables reloads the zone, and several zones are kept
 * side by side, each with its own checks.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_cache.h"
#include "sptime.h"
#include "testdb.h"

static void s_pcfdb(const testdb *db, const char *args)
{
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "%s/pcf-db %s", testdb_bindir(), args);
    cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "pcf-db %s: %s", args, out);
}

static int64_t s_t(const char *iso)
{
    int64_t t;
    cr_assert_eq(sptime_parse_utc(iso, strlen(iso), &t), PCF_OK, "%s", iso);
    return t;
}

/* Equal, NAN matching NAN. */
static void s_same(const double *a, const double *b, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++)
        cr_assert(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])), "%s: value %zu: %.17g vs %.17g", what, i, a[i],
                  b[i]);
}

static void s_check_scada(PGconn *c, engine_cache *ec, const zone *z, int64_t from, int64_t to)
{
    history *h, *ref;
    pcf_error err;
    cr_assert_eq(engine_cache_scada(ec, c, from, to, &h, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(history_load_scada(c, z, from, to, &ref, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(h->t0, ref->t0);
    cr_assert_eq(h->nt, ref->nt);
    cr_assert_eq(h->npoint, ref->npoint);
    s_same(h->value, ref->value, h->nt * h->npoint, "scada");
    history_destroy(&ref);
}

static const char *const s_vars[2] = { "temperature_2m", "wind_speed_100m" };

static void s_check_zone_wx(PGconn *c, engine_cache *ec, const char *zone_id, int64_t from, int64_t to)
{
    wx_series *w, *ref;
    pcf_error err;
    cr_assert_eq(engine_cache_weather(ec, c, s_vars, 2, from, to, (int64_t)32503680000LL, &w, &err), PCF_OK, "%s",
                 err.msg);
    cr_assert_eq(history_load_weather(c, zone_id, s_vars, 2, from, to, (int64_t)32503680000LL, 0, &ref, &err),
                 PCF_OK, "%s", err.msg);
    cr_assert_eq(w->t0, ref->t0);
    cr_assert_eq(w->nt, ref->nt);
    cr_assert_eq(w->nloc, ref->nloc);
    cr_assert_eq(w->nmember, ref->nmember);
    s_same(w->v, ref->v, w->nt * w->nloc * w->nvar * w->nmember, "weather");
    wx_series_destroy(&ref);
}

static void s_check_wx(PGconn *c, engine_cache *ec, int64_t from, int64_t to)
{
    s_check_zone_wx(c, ec, "T", from, to);
}

static void s_batch(PGconn *c, const char *feed, const char *source, const char *hash)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO ingest_batch (feed, source, content_hash, status, started_at)"
             " VALUES ('%s', '%s', '%s', 'loaded', now())", feed, source, hash);
    testdb_exec(c, sql);
}

/* Case 9 with four days of SCADA and a week of weather; returns a connection. */
static PGconn *s_setup(testdb *db, const char *name)
{
    testdb_create(db, name);
    s_pcfdb(db, "migrate");
    s_pcfdb(db, "import-matpower --zone T tests/data/matpower/cases/case9.m");
    s_pcfdb(db, "import-der --zone T tests/data/registry/case9");
    s_pcfdb(db, "import-anm --zone T tests/data/registry/case9");
    s_pcfdb(db, "import-points --zone T tests/data/registry/case9_points.csv");
    PGconn *c = testdb_connect(db);
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2025-05-25Z', '2025-06-05Z')");
    testdb_exec(c, "SELECT feed_ensure_partitions('weather_forecast', '2025-05-25Z', '2025-06-05Z')");
    /* SCADA every 10 minutes for four days, up to 1 June 12:00 */
    testdb_exec(c, "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
                   " SELECT p.point_id, t, 100 * random(), 'good', 1 FROM measurement_point p,"
                   " generate_series('2025-05-28T12:00Z'::timestamptz, '2025-06-01T11:50Z', '10 min') t");
    testdb_exec(c, "INSERT INTO weather_location VALUES ('L1', 'T', 52.9, -0.1, 4), ('L2', 'T', 52.8, 0.1, 3)");
    testdb_exec(c, "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, value,"
                   " interval_s, batch_id)"
                   " SELECT l, 'm', '2025-05-28T00:00Z'::timestamptz, v, var, 0, 30 * random(), 0, 1"
                   " FROM unnest(ARRAY['L1', 'L2']) l, unnest(ARRAY['temperature_2m', 'wind_speed_100m']) var,"
                   "      generate_series('2025-05-28T00:00Z'::timestamptz, '2025-06-04T00:00Z', '1 hour') v");
    return c;
}

Test(engine_cache, tail_merges_equal_whole_loads_and_batches_invalidate, .timeout = 120)
{
    testdb db;
    PGconn *c = s_setup(&db, "ecache");
    engine_cache *ec;
    pcf_error err;
    cr_assert_eq(engine_cache_new(&ec, &err), PCF_OK);
    zone *z;
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    int64_t from = s_t("2025-05-29T00:00Z"), to = s_t("2025-06-01T12:00Z");
    s_check_scada(c, ec, z, from, to);
    s_check_wx(c, ec, from, to);

    /* Late live values 3 h back (inside the 6 h tail) and new ones: the
     * window slides one hour and only its tail is read. */
    testdb_exec(c, "UPDATE measurement SET value = -7 WHERE ts = '2025-06-01T09:00Z'");
    testdb_exec(c, "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
                   " SELECT p.point_id, t, 50, 'good', 2 FROM measurement_point p,"
                   " generate_series('2025-06-01T12:00Z'::timestamptz, '2025-06-01T12:50Z', '10 min') t");
    s_batch(c, "scada", "zmq:gw1", "00000000000000000000000000000001");
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    s_check_scada(c, ec, z, from + 3600, to + 3600);
    s_check_wx(c, ec, from + 3600, to + 3600);
    engine_cache_stats st;
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 1);
    cr_assert_eq(st.zone_hits, 1);
    cr_assert_eq(st.scada_full, 1);
    cr_assert_eq(st.scada_tail, 1);
    cr_assert_eq(st.wx_full, 1);
    cr_assert_eq(st.wx_tail, 1);

    /* A historian file rewrites a day-old value: a whole read, which sees it. */
    testdb_exec(c, "UPDATE measurement SET value = -9 WHERE ts = '2025-05-31T09:00Z'");
    s_batch(c, "scada", "file:historian.csv", "00000000000000000000000000000002");
    /* and a new weather issue revises the past: a whole weather read */
    testdb_exec(c, "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, value,"
                   " interval_s, batch_id)"
                   " SELECT 'L1', 'm', '2025-05-30T00:00Z'::timestamptz, v, 'temperature_2m', 0, -3, 0, 3"
                   " FROM generate_series('2025-05-30T00:00Z'::timestamptz, '2025-06-02T00:00Z', '1 hour') v");
    s_batch(c, "weather", "http:open-meteo", "00000000000000000000000000000003");
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    s_check_scada(c, ec, z, from + 3600, to + 3600);
    s_check_wx(c, ec, from + 3600, to + 3600);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.scada_full, 2);
    cr_assert_eq(st.wx_full, 2);

    /* An earlier window is not a slide: read whole. */
    s_check_scada(c, ec, z, from - 86400, to - 86400);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.scada_full, 3);

    /* The model changes: the zone is loaded again and shows it. */
    double before = z->site[0].export_mw;
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE der_site SET export_capacity_mw = export_capacity_mw + 1 WHERE site_id = '%s'",
             z->site[0].id);
    testdb_exec(c, sql);
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(z->site[0].export_mw, before + 1, 1e-9);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 2);
    s_check_scada(c, ec, z, from, to);

    engine_cache_destroy(&ec);
    cr_assert_null(ec);
    PQfinish(c);
    testdb_drop(&db);
}

/* Runs sql and returns the first value of its result as a number. */
static long long s_value(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* A live gateway batch that stores value at ts for every point, as the
 * loader does: its rows carry its id and rows_loaded counts them. */
static void s_live_batch(PGconn *c, const char *hash, const char *ts, double value)
{
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO ingest_batch (feed, source, content_hash, status, rows_loaded, started_at)"
             " SELECT 'scada', 'zmq:gw1', '%s', 'loaded', count(*), now() FROM measurement_point"
             " RETURNING batch_id", hash);
    long long id = s_value(c, sql);
    snprintf(sql, sizeof sql, "UPDATE measurement SET value = %g, batch_id = %lld WHERE ts = '%s'", value, id, ts);
    testdb_exec(c, sql);
}

/* Regressions of the staleness checks: none of xmin, a batch id or the age
 * of live data is commit-ordered, and each of these was once missed. */
Test(engine_cache, changes_committed_out_of_order_are_seen, .timeout = 120)
{
    testdb db;
    PGconn *c = s_setup(&db, "ecache_order");
    PGconn *a = testdb_connect(&db), *b = testdb_connect(&db);
    engine_cache *ec;
    pcf_error err;
    cr_assert_eq(engine_cache_new(&ec, &err), PCF_OK);
    zone *z;
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_geq(z->nsite, 2);
    char s0[sizeof z->site[0].id], s1[sizeof z->site[0].id], sql[512];
    snprintf(s0, sizeof s0, "%s", z->site[0].id);
    snprintf(s1, sizeof s1, "%s", z->site[1].id);
    double e0 = z->site[0].export_mw, e1 = z->site[1].export_mw;

    /* (a) A takes an xid first, B a higher one and commits first: after
     * B's refresh, A's commit leaves the row count and max(xmin) of der_site
     * as they were. */
    testdb_exec(a, "BEGIN");
    snprintf(sql, sizeof sql, "UPDATE der_site SET export_capacity_mw = export_capacity_mw + 1 WHERE site_id = '%s'",
             s0);
    testdb_exec(a, sql);
    testdb_exec(b, "BEGIN");
    snprintf(sql, sizeof sql, "UPDATE der_site SET export_capacity_mw = export_capacity_mw + 2 WHERE site_id = '%s'",
             s1);
    testdb_exec(b, sql);
    testdb_exec(b, "COMMIT");
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(z->site[1].export_mw, e1 + 2, 1e-9);
    cr_assert_float_eq(z->site[0].export_mw, e0, 1e-9);
    testdb_exec(a, "COMMIT");
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_float_eq(z->site[0].export_mw, e0 + 1, 1e-9, "an edit committed out of xid order was not seen");

    int64_t from = s_t("2025-05-29T00:00Z"), to = s_t("2025-06-01T12:00Z");
    s_check_scada(c, ec, z, from, to);

    /* (b) A historian batch takes the lower id, a later one the higher id
     * and commits first; the window is read whole once for it.  Then A
     * commits a day-old edit under its lower id. */
    testdb_exec(a, "BEGIN");
    s_batch(a, "scada", "file:slow.csv", "00000000000000000000000000000011");
    testdb_exec(a, "UPDATE measurement SET value = -11 WHERE ts = '2025-05-31T06:00Z'");
    s_batch(b, "scada", "file:quick.csv", "00000000000000000000000000000012");
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    s_check_scada(c, ec, z, from + 1800, to + 1800);
    testdb_exec(a, "COMMIT");
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    s_check_scada(c, ec, z, from + 3600, to + 3600);
    engine_cache_stats st;
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.scada_full, 3);

    /* (c) A gateway replays a backlog two days old: its batch is live, but
     * its rows lie far before the tail.  Rows of a live batch that stay in
     * the tail still give a tail read. */
    testdb_exec(c, "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
                   " SELECT p.point_id, '2025-06-01T12:00Z', 5, 'good', 0 FROM measurement_point p");
    s_live_batch(c, "00000000000000000000000000000013", "2025-06-01T12:00Z", 6);
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    s_check_scada(c, ec, z, from + 5400, to + 5400);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.scada_full, 3);
    cr_assert_eq(st.scada_tail, 1);
    s_live_batch(c, "00000000000000000000000000000014", "2025-05-30T15:00Z", -13);
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    s_check_scada(c, ec, z, from + 7200, to + 7200);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.scada_full, 4);

    engine_cache_destroy(&ec);
    PQfinish(a);
    PQfinish(b);
    PQfinish(c);
    testdb_drop(&db);
}

/* Zone Z: case9's network with two bus voltage points of its own and their
 * SCADA over the same days as T's, and one weather location. */
static void s_add_zone(testdb *db, PGconn *c, const char *zid)
{
    char args[128], sql[1024];
    snprintf(args, sizeof args, "import-matpower --zone %s tests/data/matpower/cases/case9.m", zid);
    s_pcfdb(db, args);
    snprintf(sql, sizeof sql,
             "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i, scale)"
             " VALUES ('%1$s_V1', '%1$s', 'v_kv', 'bus', 1, 1), ('%1$s_V5', '%1$s', 'v_kv', 'bus', 5, 1);"
             "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
             " SELECT p, t, 33 * random(), 'good', 1 FROM unnest(ARRAY['%1$s_V1', '%1$s_V5']) p,"
             " generate_series('2025-05-28T12:00Z'::timestamptz, '2025-06-01T11:50Z', '10 min') t;"
             "INSERT INTO weather_location VALUES ('%1$s_L', '%1$s', 51.5, -1.0, 2);"
             "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, value,"
             " interval_s, batch_id)"
             " SELECT '%1$s_L', 'm', '2025-05-28T00:00Z'::timestamptz, v, var, 0, 30 * random(), 0, 1"
             " FROM unnest(ARRAY['temperature_2m', 'wind_speed_100m']) var,"
             "      generate_series('2025-05-28T00:00Z'::timestamptz, '2025-06-04T00:00Z', '1 hour') v", zid);
    testdb_exec(c, sql);
}

/* Regression (review of issue 4/7): the cache held one zone, so a daemon
 * serving two reloaded the zone and read both windows whole at every
 * change of zone.  Alternating zones now hits, and each zone's staleness
 * checks still see what changed under it. */
Test(engine_cache, alternating_zones_hit_and_each_stays_fresh, .timeout = 180)
{
    testdb db;
    PGconn *c = s_setup(&db, "ecache_zones");
    s_add_zone(&db, c, "U");
    engine_cache *ec;
    pcf_error err;
    cr_assert_eq(engine_cache_new(&ec, &err), PCF_OK);
    const char *zid[2] = { "T", "U" };
    int64_t from = s_t("2025-05-29T00:00Z"), to = s_t("2025-06-01T12:00Z");
    zone *z;
    /* three rounds of T, U, T, U..., each window half an hour on */
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 2; k++) {
            cr_assert_eq(engine_cache_zone(ec, c, zid[k], &z, &err), PCF_OK, "%s", err.msg);
            cr_assert_str_eq(z->id, zid[k]);
            s_check_scada(c, ec, z, from + round * 1800, to + round * 1800);
            s_check_zone_wx(c, ec, zid[k], from + round * 1800, to + round * 1800);
        }
    engine_cache_stats st;
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 2, "each zone loaded once");
    cr_assert_eq(st.zone_hits, 4);
    cr_assert_eq(st.scada_full, 2);
    cr_assert_eq(st.scada_tail, 4, "each zone's window slides");
    cr_assert_eq(st.wx_full, 2);
    cr_assert_eq(st.wx_tail, 4);

    /* A live batch rewrites U's data two days back (far before the tail):
     * both windows are read whole (the check is per batch, not per zone),
     * and U's shows the value.  (Ids from 100: the set-up's rows carry 1.) */
    testdb_exec(c, "ALTER TABLE ingest_batch ALTER COLUMN batch_id RESTART WITH 100");
    long long id = s_value(c, "INSERT INTO ingest_batch (feed, source, content_hash, status, rows_loaded, started_at)"
                              " VALUES ('scada', 'zmq:gw1', '00000000000000000000000000000021', 'loaded', 2, now())"
                              " RETURNING batch_id");
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE measurement SET value = -21, batch_id = %lld"
                              " WHERE ts = '2025-05-30T15:00Z' AND point_id LIKE 'U\\_%%'", id);
    testdb_exec(c, sql);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(engine_cache_zone(ec, c, zid[k], &z, &err), PCF_OK, "%s", err.msg);
        s_check_scada(c, ec, z, from + 5400, to + 5400);
    }
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.scada_full, 4);
    /* a new weather issue for U: both weather windows read whole, U's sees it */
    testdb_exec(c, "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, value,"
                   " interval_s, batch_id)"
                   " SELECT 'U_L', 'm', '2025-05-30T00:00Z'::timestamptz, v, 'temperature_2m', 0, -3, 0, 3"
                   " FROM generate_series('2025-05-30T00:00Z'::timestamptz, '2025-06-02T00:00Z', '1 hour') v");
    s_batch(c, "weather", "http:open-meteo", "00000000000000000000000000000022");
    for (int k = 1; k >= 0; k--) {
        cr_assert_eq(engine_cache_zone(ec, c, zid[k], &z, &err), PCF_OK, "%s", err.msg);
        s_check_zone_wx(c, ec, zid[k], from + 5400, to + 5400);
    }
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.wx_full, 4);
    cr_assert_eq(st.zone_loads, 2);

    /* More zones than slots: the least recently used is the one replaced. */
    const char *more[3] = { "V", "W", "X" };
    for (int k = 0; k < 3; k++) s_add_zone(&db, c, more[k]);
    /* a model change (the new zones) drops every zone; reload T and U, then V, W */
    for (int k = 0; k < 2; k++) cr_assert_eq(engine_cache_zone(ec, c, zid[k], &z, &err), PCF_OK, "%s", err.msg);
    for (int k = 0; k < 2; k++) cr_assert_eq(engine_cache_zone(ec, c, more[k], &z, &err), PCF_OK, "%s", err.msg);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 6);
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);   /* U is now the oldest */
    cr_assert_eq(engine_cache_zone(ec, c, "X", &z, &err), PCF_OK, "%s", err.msg);   /* replaces U */
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 7);
    cr_assert_eq(st.zone_hits, 9);
    for (int k = 0; k < 2; k++) cr_assert_eq(engine_cache_zone(ec, c, more[k], &z, &err), PCF_OK, "%s", err.msg);
    cr_assert_eq(engine_cache_zone(ec, c, "T", &z, &err), PCF_OK, "%s", err.msg);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 7, "T, V, W and X stayed");
    cr_assert_eq(engine_cache_zone(ec, c, "U", &z, &err), PCF_OK, "%s", err.msg);
    engine_cache_get_stats(ec, &st);
    cr_assert_eq(st.zone_loads, 8, "U was replaced");
    s_check_scada(c, ec, z, from, to);

    engine_cache_destroy(&ec);
    PQfinish(c);
    testdb_drop(&db);
}
