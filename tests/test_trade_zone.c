/*
 * test_trade_zone.c -- see test_trade.h.
 */
#include "test_trade.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

void trade_test_import(testdb *db, const char *tag, const char *zone, const char *matpower, const char *registry)
{
    char out[16384], cmd[1024];
    testdb_create(db, tag);
    snprintf(cmd, sizeof cmd, "%s/pcf-db migrate", testdb_bindir());
    cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "%s: %s", cmd, out);
    snprintf(cmd, sizeof cmd, "%s/pcf-db import-matpower --zone %s %s", testdb_bindir(), zone, matpower);
    cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "%s: %s", cmd, out);
    static const char *const what[2] = { "import-der", "import-anm" };
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s/pcf-db %s --zone %s %s", testdb_bindir(), what[i], zone, registry);
        cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "%s: %s", cmd, out);
    }
}

void trade_test_zone(testdb *db, const char *tag, const char *const *sql, size_t nsql)
{
    trade_test_import(db, tag, "T", "tests/data/matpower/cases/case9.m", "tests/data/registry/case9");
    PGconn *c = testdb_connect(db);
    for (size_t i = 0; i < nsql; i++) testdb_exec(c, sql[i]);
    testdb_exec(c, "INSERT INTO measurement_point (point_id, zone_id, quantity, element, site_id)"
                   " VALUES ('S1_P', 'T', 'p_mw', 'site', 'S1'), ('S2_P', 'T', 'p_mw', 'site', 'S2'),"
                   " ('S3_P', 'T', 'p_mw', 'site', 'S3')");
    testdb_exec(c, "SELECT feed_ensure_partitions('measurement', '2026-05-01Z', '2026-06-30Z')");
    testdb_exec(c, "INSERT INTO measurement (point_id, ts, value, quality, batch_id)"
                   " SELECT p.point_id, ts, 0.9 * s.export_capacity_mw, 'good', 1"
                   " FROM measurement_point p JOIN der_site s USING (site_id),"
                   " generate_series('2026-05-18T00:00Z'::timestamptz, '2026-05-31T22:30Z', '30 min') ts");
    PQfinish(c);
}

static void *s_srv_main(void *arg)
{
    trade_srv *s = arg;
    publish_serve_opts o = {.conninfo = s->conninfo, .stop = &s->stop, .reload = &s->reload,
                            .backoff_min_ms = 50, .backoff_max_ms = 400};
    pcf_error e;
    s->rc = publish_serve(s->p, &o, &e);
    return NULL;
}

void trade_srv_start(trade_srv *s, const testdb *db, size_t trade_samples)
{
    memset(s, 0, sizeof *s);
    publish_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.pub_endpoint = "tcp://127.0.0.1:*";
    cfg.router_endpoint = "tcp://127.0.0.1:*";
    cfg.trade_samples = trade_samples;
    pcf_error e;
    s->p = publish_new(&cfg, &e);
    cr_assert(s->p, "publish_new: %s", e.msg);
    snprintf(s->conninfo, sizeof s->conninfo, "%s", db->conninfo);
    cr_assert_eq(pthread_create(&s->th, NULL, s_srv_main, s), 0);
}

void trade_srv_stop(trade_srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    publish_destroy(&s->p);
}
