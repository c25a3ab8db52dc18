/*
 * test_trade_zone.c -- see test_trade.h.
 */
#include "test_trade.h"

#include <criterion/criterion.h>
#include <stdio.h>

void trade_test_zone(testdb *db, const char *tag, const char *const *sql, size_t nsql)
{
    char out[16384], cmd[1024];
    const char *b = testdb_bindir();
    const char *steps[] = { "pcf-db migrate", "pcf-db import-matpower --zone T tests/data/matpower/cases/case9.m",
                            "pcf-db import-der --zone T tests/data/registry/case9",
                            "pcf-db import-anm --zone T tests/data/registry/case9" };
    testdb_create(db, tag);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s/%s", b, steps[i]);
        cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "%s: %s", cmd, out);
    }
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
