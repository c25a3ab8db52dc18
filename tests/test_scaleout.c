/*
 * test_scaleout.c -- several engines share zones through the run queue
 * (DESIGN.md section 7): two engine daemons and three zones, one engine
 * killed with SIGKILL part-way, and a job left claimed by an engine that
 * died earlier.  Every job must end done, each with its own run, and the
 * dead engines' jobs must have been taken over.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"
#include "testhttp.h"

#define OUT 16384

static int s_sh(const testdb *db, char *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_sh(const testdb *db, char *out, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    static char sink[OUT];
    return testdb_run(db, cmd, out ? out : sink, OUT);
}

static long s_count(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

/* Zone Z is case9 with the test register, every id prefixed with Z so the
 * three zones' sites, constraints and points do not collide. */
static void s_zone(const testdb *db, const char *z)
{
    char out[OUT];
    const char *b = testdb_bindir();
    cr_assert_eq(s_sh(db, out, "%s/pcf-db import-matpower --zone %s tests/data/matpower/cases/case9.m", b, z), 0, "%s", out);
    cr_assert_eq(s_sh(db, out,
                      "d=/tmp/pcf-test-scale-%s-%s && rm -rf $d && mkdir -p $d && for f in tests/data/registry/case9/*.csv"
                      " tests/data/registry/case9_points.csv; do sed -E 's/(^|,)(S[0-9]|E[0-9]|M[0-9]|C_|CCT-|GT1_|L45_|BUS5_|S1_|ANM)/\\1%s\\2/g'"
                      " $f > $d/$(basename $f); done && %s/pcf-db import-der --zone %s $d && %s/pcf-db import-anm --zone %s $d"
                      " && %s/pcf-db import-points --zone %s $d/case9_points.csv && rm -rf $d",
                      db->name, z, z, b, z, b, z, b, z), 0, "%s", out);
}

Test(scaleout, two_engines_three_zones_every_job_once_and_dead_engines_taken_over)
{
    testdb db;
    char out[OUT];
    const char *b = testdb_bindir();
    testdb_create(&db, "scale");
    cr_assert_eq(s_sh(&db, out, "%s/pcf-db migrate", b), 0, "%s", out);
    const char *zones[3] = { "ZA", "ZB", "ZC" };
    for (int i = 0; i < 3; i++) s_zone(&db, zones[i]);
    for (int i = 0; i < 3; i++)
        for (int d = 1; d <= 3; d++)
            cr_assert_eq(s_sh(&db, out, "%s/pcf-forecaster queue --zone %s --day-ahead 2026-07-0%d", b, zones[i], d), 0,
                         "%s", out);
    PGconn *c = testdb_connect(&db);
    /* a job an engine claimed before it died an hour ago */
    testdb_exec(c, "INSERT INTO run_queue (zone_id, kind, target_date, status, claimed_by, claimed_at, heartbeat_at,"
                   " attempts) VALUES ('ZB', 'day_ahead', '2026-07-09', 'claimed', 'ghost', now() - interval '1 hour',"
                   " now() - interval '1 hour', 1)");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue"), 10);
    /* Engine a is killed with SIGKILL 1.5 s in, probably in the middle of a
     * run; b goes on and takes over whatever a held once its heartbeat is
     * 6 s old. */
    s_sh(&db, out,
         "sh -c 'for n in a b; do %s/pcf-forecaster daemon --name $n --samples 2000 --stale-s 6 --day-ahead-at 23:59 --metrics-port 0"
         " >/tmp/pcf-test-scale-%s-$n.log 2>&1 & eval pid_$n=$!; done; sleep 1.5; kill -9 $pid_a;"
         " for i in $(seq 1 180); do sleep 0.5;"
         " [ \"$(psql -qAtX -c \"SELECT count(*) FROM run_queue WHERE status <> '\"'\"'done'\"'\"'\")\" = 0 ] && break; done;"
         " kill $pid_b; wait'", b, db.name);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue WHERE status = 'done'"), 10,
                 "not every job finished; see /tmp/pcf-test-scale-%s-b.log", db.name);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue q JOIN run r USING (run_id)"
                            " WHERE r.zone_id = q.zone_id AND r.target_date = q.target_date"), 10,
                 "each job points at its own run");
    /* at most one run per zone and date: a run that was in flight when its
     * engine died was never committed (one transaction), so it is not doubled */
    cr_assert_eq(s_count(c, "SELECT count(*) FROM (SELECT zone_id, target_date FROM run"
                            " GROUP BY 1, 2 HAVING count(*) > 1) d"), 0);
    /* taken over at least once (twice if engine a took it and was killed) */
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue WHERE target_date = '2026-07-09' AND attempts >= 2"), 1,
                 "the ghost's job was taken over");
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT zone_id) FROM run"), 3);
    PQfinish(c);
    /* the engines' logs stay behind only when an assertion above failed */
    char path[128];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/tmp/pcf-test-scale-%s-%c.log", db.name, "ab"[i]);
        remove(path);
    }
    testdb_drop(&db);
}

/* Two publishers (each with its own database and zone) behind one
 * pcf-proxy: a subscriber of the proxy alone receives both zones' feeds. */
Test(scaleout, proxy_gives_subscribers_one_endpoint)
{
    testdb a, b;
    char out[OUT];
    const char *bin = testdb_bindir();
    testdb_create(&a, "proxya");
    testdb_create(&b, "proxyb");
    cr_assert_eq(s_sh(&a, out, "%s/pcf-db migrate", bin), 0, "%s", out);
    cr_assert_eq(s_sh(&b, out, "%s/pcf-db migrate", bin), 0, "%s", out);
    s_zone(&a, "PA");
    s_zone(&b, "PB");
    /* ports the kernel has just handed out, not guesses in its ephemeral
     * range (a guess collided now and then: "Address already in use") */
    int port[5];
    for (int i = 0; i < 5; i++) {
        int dup;
        do {
            port[i] = testhttp_free_port();
            dup = port[i] == 0;
            for (int k = 0; k < i; k++) dup |= port[k] == port[i];
        } while (dup);
    }
    /* New runs are made until both zones' feeds have come through (a
     * publisher that starts slowly under load misses nothing this way). */
    s_sh(&a, out,
         "sh -c '%s/pcf-proxy --xpub tcp://127.0.0.1:%d --connect tcp://127.0.0.1:%d --connect tcp://127.0.0.1:%d"
         " 2>/tmp/pcf-test-proxy-%d.log & px=$!;"
         " %s/pcf-sub --pub tcp://127.0.0.1:%d --router tcp://127.0.0.1:%d --timeout-ms 60000 pcf.da."
         " >/tmp/pcf-test-proxy-sub-%d.log 2>&1 & sb=$!; sleep 0.5;"
         " %s/pcf-publish --db \"%s\" --pub tcp://127.0.0.1:%d --router tcp://127.0.0.1:%d --metrics-port 0 2>/dev/null & p1=$!;"
         " %s/pcf-publish --db \"%s\" --pub tcp://127.0.0.1:%d --router tcp://127.0.0.1:%d --metrics-port 0 2>/tmp/pcf-test-proxy-p2-%d.log & p2=$!;"
         " for d in 1 2 3 4 5 6 7 8; do sleep 1.5;"
         " %s/pcf-forecaster --db \"%s\" run --zone PA --day-ahead 2026-07-0$d --samples 100 >/dev/null 2>&1;"
         " %s/pcf-forecaster --db \"%s\" run --zone PB --day-ahead 2026-07-0$d --samples 100 >/dev/null 2>&1;"
         " sleep 0.5; [ $(grep -c \"^pcf.da.P[AB] \" /tmp/pcf-test-proxy-sub-%d.log) -ge 2 ] &&"
         " grep -q \"^pcf.da.PB \" /tmp/pcf-test-proxy-sub-%d.log && grep -q \"^pcf.da.PA \" /tmp/pcf-test-proxy-sub-%d.log && break; done;"
         " kill $sb $p1 $p2 $px; wait'",
         bin, port[0], port[1], port[2], port[0], bin, port[0], port[3], port[0],
         bin, a.conninfo, port[1], port[3], bin, b.conninfo, port[2], port[4], port[0],
         bin, a.conninfo, bin, b.conninfo, port[0], port[0], port[0]);
    char path[64], grep[160];
    snprintf(path, sizeof path, "/tmp/pcf-test-proxy-sub-%d.log", port[0]);
    snprintf(grep, sizeof grep, "grep -o '^pcf\\.da\\.P[AB] ' %s | sort | uniq -c", path);
    s_sh(&a, out, "%s", grep);
    cr_assert(strstr(out, "pcf.da.PA"), "zone PA's feed did not come through the proxy: %s; see /tmp/pcf-test-proxy-*%d.log",
              out, port[0]);
    cr_assert(strstr(out, "pcf.da.PB"), "zone PB's feed did not come through the proxy: %s; see /tmp/pcf-test-proxy-*%d.log",
              out, port[0]);
    remove(path);
    snprintf(path, sizeof path, "/tmp/pcf-test-proxy-%d.log", port[0]);
    remove(path);
    snprintf(path, sizeof path, "/tmp/pcf-test-proxy-p2-%d.log", port[0]);
    remove(path);
    testdb_drop(&a);
    testdb_drop(&b);
}

/* The engine daemon's metrics (docs/operations.md): after one day-ahead
 * job, scraped over HTTP, runs started and completed count one, the run and
 * stage histograms one observation each, and the queue is empty.  Here for
 * s_zone. */
Test(obs, forecaster_run_counters_after_a_run)
{
    testdb db;
    char out[OUT];
    const char *b = testdb_bindir();
    testdb_create(&db, "obsengine");
    cr_assert_eq(s_sh(&db, out, "%s/pcf-db migrate", b), 0, "%s", out);
    s_zone(&db, "ZM");
    cr_assert_eq(s_sh(&db, out, "%s/pcf-forecaster queue --zone ZM --day-ahead 2026-07-01", b), 0, "%s", out);
    int port = testhttp_free_port();
    /* the daemon runs in the background until the counter shows, scraped with curl */
    int rc = s_sh(&db, out,
         "sh -c '%s/pcf-forecaster daemon --zones ZM --samples 2000 --day-ahead-at 23:59 --metrics-port %d"
         " >/tmp/pcf-test-obs-%s.log 2>&1 & pid=$!; ok=1;"
         " for i in $(seq 1 240); do sleep 0.5;"
         " curl -sf http://127.0.0.1:%d/metrics > /tmp/pcf-test-obs-%s.prom"
         "  && grep -q \"^pcf_forecaster_runs_completed_total{kind=\\\"day_ahead\\\"} 1$\" /tmp/pcf-test-obs-%s.prom"
         "  && grep -q \"^pcf_forecaster_queue_depth 0$\" /tmp/pcf-test-obs-%s.prom"
         "  && ok=0 && break; done; kill $pid; wait; exit $ok'",
         b, port, db.name, port, db.name, db.name, db.name);
    char path[256];
    snprintf(path, sizeof path, "/tmp/pcf-test-obs-%s.prom", db.name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    static char t[1 << 16];
    size_t n = fread(t, 1, sizeof t - 1, f);
    t[n] = '\0';
    fclose(f);
    cr_assert_eq(rc, 0, "no completed run; see /tmp/pcf-test-obs-%s.log\n%s", db.name, t);
    cr_assert_eq(testhttp_sample(t, "pcf_forecaster_runs_started_total{kind=\"day_ahead\"}"), 1, "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_forecaster_run_seconds_count{kind=\"day_ahead\"}"), 1, "%s", t);
    cr_assert_gt(testhttp_sample(t, "pcf_forecaster_run_seconds_sum{kind=\"day_ahead\"}"), 0, "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_forecaster_stage_seconds_count{kind=\"day_ahead\",stage=\"study\"}"), 1,
                 "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_forecaster_queue_depth"), 0, "%s", t);
    cr_assert_null(strstr(t, "pcf_forecaster_runs_failed_total{"), "%s", t);
    /* and the log says so in logfmt */
    snprintf(path, sizeof path, "/tmp/pcf-test-obs-%s.log", db.name);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    n = fread(t, 1, sizeof t - 1, f);
    t[n] = '\0';
    fclose(f);
    cr_assert_not_null(strstr(t, "level=info component=forecaster msg=\"run committed\" job="), "%s", t);
    unlink(path);
    snprintf(path, sizeof path, "/tmp/pcf-test-obs-%s.prom", db.name);
    unlink(path);
    testdb_drop(&db);
}
