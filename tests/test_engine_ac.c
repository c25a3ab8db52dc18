/*
 * test_engine_ac.c -- the AC options of bin/pcf-forecaster run end to end:
 * --ac all re-solves every sample and says so in the run log and in the
 * run's recorded software version; the default is the screened mode and
 * --ac off is DC only, each recorded too; bad values are refused; the daemon hands them to every run it claims.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdb.h"

#define OUT 16384

static void s_run(const testdb *db, const char *args, int want, char *out)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/%s", testdb_bindir(), args);
    int rc = testdb_run(db, cmd, out, OUT);
    cr_assert_eq(rc, want, "%s -> %d: %s", args, rc, out);
}

/* A fresh database with zone T: case9 and its register and ANM schemes. */
static void s_case9(testdb *db, const char *name, char *out)
{
    testdb_create(db, name);
    s_run(db, "pcf-db migrate", 0, out);
    s_run(db, "pcf-db import-matpower --zone T tests/data/matpower/cases/case9.m", 0, out);
    s_run(db, "pcf-db import-der --zone T tests/data/registry/case9", 0, out);
    s_run(db, "pcf-db import-anm --zone T tests/data/registry/case9", 0, out);
}

Test(engine_ac, ac_all_re_solves_every_sample_and_is_recorded, .timeout = 120)
{
    testdb db;
    char out[OUT], v[256];
    s_case9(&db, "engac", out);
    s_run(&db, "pcf-forecaster run --zone T --day-ahead 2026-06-01 --samples 100", 0, out);
    cr_assert(!strstr(out, " ac=4800 "), "the default re-solves only samples near the acting level: %s", out);
    s_run(&db, "pcf-forecaster run --zone T --day-ahead 2026-06-01 --samples 100 --ac off", 0, out);
    cr_assert(strstr(out, " ac=0 ac_fallbacks=0 "), "--ac off is DC only: %s", out);
    s_run(&db, "pcf-forecaster run --zone T --day-ahead 2026-06-01 --samples 100 --ac all", 0, out);
    cr_assert(strstr(out, " ac=4800 ac_fallbacks=0 "), "48 SPs x 100 samples re-solved: %s", out);
    s_run(&db, "pcf-forecaster run --zone T --day-ahead 2026-06-01 --samples 100 --ac-band 10", 0, out);
    PGconn *c = testdb_connect(&db);
    testdb_scalar(c, "SELECT string_agg(software_version, '|' ORDER BY run_id) FROM run", v, sizeof v);
    char *a = strstr(v, "(ac screened 0.25%)|"), *b = strstr(v, "(ac off)|"), *d = strstr(v, "(ac all)|"),
         *e = strstr(v, "(ac band 10%)");
    cr_assert(a && b && d && e && a < b && b < d && d < e, "software versions: %s", v);
    /* and the OpenBLAS kernels, on which a flow's last bits depend */
    cr_assert(strstr(v, " OpenBLAS-") && !strstr(v, " OpenBLAS-unknown"), "software versions: %s", v);
    s_run(&db, "pcf-forecaster run --zone T --day-ahead 2026-06-01 --ac some", 2, out);
    s_run(&db, "pcf-forecaster run --zone T --day-ahead 2026-06-01 --ac-band 101", 2, out);
    PQfinish(c);
    testdb_drop(&db);
}

/* The daemon takes the same AC options and hands them to every run it
 * claims: its run records the band in the software version.  Regression:
 * the options used to reach `run` only, so production runs were DC whatever
 * the operator asked. */
Test(engine_ac, daemon_runs_with_the_ac_band_it_was_given, .timeout = 180)
{
    testdb db;
    char out[OUT], v[256];
    s_case9(&db, "engacd", out);
    s_run(&db, "pcf-forecaster queue --zone T --day-ahead 2026-06-02", 0, out);
    /* the daemon runs in the background until the run is committed; the
     * shell kills it whatever happens */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sh -c '%s/pcf-forecaster daemon --zones T --samples 100 --day-ahead-at 23:59 --metrics-port 0"
             " --ac-band 10 >/tmp/pcf-test-acd-%s.log 2>&1 & pid=$!; ok=1;"
             " for i in $(seq 1 240); do sleep 0.5;"
             " grep -q \"msg=\\\"run committed\\\"\" /tmp/pcf-test-acd-%s.log && ok=0 && break; done;"
             " kill $pid; wait; exit $ok'",
             testdb_bindir(), db.name, db.name);
    int rc = testdb_run(&db, cmd, out, OUT);
    char log[128];
    snprintf(log, sizeof log, "/tmp/pcf-test-acd-%s.log", db.name);
    cr_assert_eq(rc, 0, "no run committed; see %s", log);
    PGconn *c = testdb_connect(&db);
    testdb_scalar(c, "SELECT string_agg(software_version, '|') FROM run", v, sizeof v);
    cr_assert(strstr(v, "(ac band 10%)") && !strchr(v, '|'), "one run, with the band: %s", v);
    /* regression: the build gave the programs no version, so every run said "unknown" */
    cr_assert(v[0] >= '0' && v[0] <= '9' && strchr(v, '.'), "a release number: %s", v);
    PQfinish(c);
    remove(log);
    testdb_drop(&db);
}
