/*
 * test_engine.c -- whole runs of bin/pcf-forecaster against a real
 * PostgreSQL: what a run commits, that it is announced only at commit, that
 * clock-change days have 46 and 50 settlement periods, that results do not
 * depend on the thread count, and that the run queue hands each job to
 * exactly one engine.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testdb.h"

#define OUT 16384

static int s_cmd(const testdb *db, char *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int s_cmd(const testdb *db, char *out, const char *fmt, ...)
{
    char args[2048], cmd[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s", args);
    static char sink[OUT];
    return testdb_run(db, cmd, out ? out : sink, OUT);
}

static long s_count(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

static void s_zone(testdb *db, const char *tag)
{
    char out[OUT];
    const char *b = testdb_bindir();
    testdb_create(db, tag);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db migrate", b), 0, "%s", out);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db import-matpower --zone T tests/data/matpower/cases/case9.m", b), 0, "%s", out);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db import-der --zone T tests/data/registry/case9", b), 0, "%s", out);
    cr_assert_eq(s_cmd(db, out, "%s/pcf-db import-anm --zone T tests/data/registry/case9", b), 0, "%s", out);
}

Test(engine, day_ahead_run_commits_everything_and_notifies)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "eng");
    PGconn *listener = testdb_connect(&db);
    testdb_exec(listener, "LISTEN pcf_run");
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-06-01 --samples 200",
                       testdb_bindir()), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run"), 1);
    cr_assert_eq(s_count(c, "SELECT sp_count FROM run"), 48);
    cr_assert_eq(s_count(c, "SELECT samples FROM run"), 200);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run WHERE finished_at IS NOT NULL AND software_version <> ''"), 1);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM pcf_result"), 48 * 4);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM constraint_statement"), 48 * 3);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM constraint_block"), 48 * 3 * 5);
    /* statement sites: non-firm members only (S4 is firm and in no list) */
    cr_assert_eq(s_count(c, "SELECT count(*) FROM constraint_statement_site"), 48 * 7);
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT sp_start) FROM pcf_result"), 48);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM pcf_result WHERE sp = 1 AND sp_start = '2026-05-31 23:00Z'"), 4,
                 "SP 1 starts at local midnight (BST)");
    /* summer: the GT's PEL of 180 MVA applies to the intact network */
    cr_assert_eq(s_count(c, "SELECT count(*) FROM constraint_statement WHERE constraint_id = 'C_GT1'"
                            " AND limit_mw = 180 AND limit_kind = 'pel' AND season = 'summer'"), 48);
    /* the notification arrived, carrying the run id */
    PQconsumeInput(listener);
    PGnotify *n = PQnotifies(listener);
    cr_assert(n, "no NOTIFY pcf_run");
    cr_assert_str_eq(n->extra, "1");
    PQfreemem(n);
    PQfinish(listener);
    PQfinish(c);
    testdb_drop(&db);
}

Test(engine, clock_change_days_have_46_and_50_periods)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "engclk");
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-03-29 --samples 50",
                       testdb_bindir()), 0, "%s", out);
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-10-25 --samples 50",
                       testdb_bindir()), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(s_count(c, "SELECT sp_count FROM run WHERE target_date = '2026-03-29'"), 46);
    cr_assert_eq(s_count(c, "SELECT sp_count FROM run WHERE target_date = '2026-10-25'"), 50);
    cr_assert_eq(s_count(c, "SELECT max(sp) FROM pcf_result JOIN run USING (run_id) WHERE target_date = '2026-10-25'"), 50);
    cr_assert_eq(s_count(c, "SELECT extract(epoch FROM horizon_end - horizon_start) / 3600 FROM run"
                            " WHERE target_date = '2026-10-25'"), 25);
    PQfinish(c);
    testdb_drop(&db);
}

Test(engine, thread_count_does_not_change_results)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "engthr");
    const char *b = testdb_bindir();
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-01-15 --samples 300 --seed 7 --threads 1", b), 0, "%s", out);
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-01-15 --samples 300 --seed 7 --threads 2", b), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    const char *cols = "site_id, sp, p_curtailed, expected_curtailed_mwh, deliverable_p10_mw, deliverable_p50_mw,"
                       " deliverable_p90_mw, firm95_mw";
    char q[1024];
    snprintf(q, sizeof q, "SELECT count(*) FROM ((SELECT %s FROM pcf_result WHERE run_id = 1 EXCEPT"
                          " SELECT %s FROM pcf_result WHERE run_id = 2) UNION ALL (SELECT %s FROM pcf_result"
                          " WHERE run_id = 2 EXCEPT SELECT %s FROM pcf_result WHERE run_id = 1)) d", cols, cols, cols, cols);
    cr_assert_eq(s_count(c, q), 0, "results differ between 1 and 2 threads");
    cr_assert_eq(s_count(c, "SELECT count(*) FROM ((SELECT constraint_id, sp, flow_intact_p50_mw, p_anm_acts"
                            " FROM constraint_statement WHERE run_id = 1) EXCEPT (SELECT constraint_id, sp,"
                            " flow_intact_p50_mw, p_anm_acts FROM constraint_statement WHERE run_id = 2)) d"), 0);
    PQfinish(c);
    testdb_drop(&db);
}

Test(engine, real_time_run_covers_the_next_periods)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "engrt");
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --real-time --periods 4 --at 2026-07-01T10:10:00Z"
                                 " --samples 100", testdb_bindir()), 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(s_count(c, "SELECT sp_count FROM run WHERE kind = 'real_time'"), 4);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run WHERE horizon_start = '2026-07-01 10:30Z'"), 1,
                 "the first period is the next whole half-hour");
    cr_assert_eq(s_count(c, "SELECT min(sp) FROM pcf_result"), 24, "11:30 BST is SP 24");
    PQfinish(c);
    testdb_drop(&db);
}

Test(engine, bad_requests_fail_cleanly)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "engbad");
    const char *b = testdb_bindir();
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone NOPE --day-ahead 2026-06-01 --samples 50", b), 1, "%s", out);
    cr_assert(strstr(out, "NOPE"), "%s", out);
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --day-ahead 2026-02-30", b), 2, "%s", out);
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster run --zone T --real-time --periods 99", b), 2, "%s", out);
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run"), 0, "nothing half-written");
    PQfinish(c);
    testdb_drop(&db);
}

/* Two daemons share one queue: each of six jobs is run exactly once. */
Test(engine, two_daemons_run_each_job_once, .timeout = 120)
{
    testdb db;
    char out[OUT];
    s_zone(&db, "engq");
    const char *b = testdb_bindir();
    const char *dates[6] = { "2026-06-01", "2026-06-02", "2026-06-03", "2026-06-04", "2026-06-05", "2026-06-06" };
    for (int i = 0; i < 6; i++)
        cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster queue --zone T --day-ahead %s", b, dates[i]), 0, "%s", out);
    /* a repeated request coalesces with the pending job */
    cr_assert_eq(s_cmd(&db, out, "%s/pcf-forecaster queue --zone T --day-ahead 2026-06-01", b), 0, "%s", out);
    cr_assert_str_eq(out, "1\n");
    PGconn *c = testdb_connect(&db);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue"), 6);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sh -c 'pids=; for n in a b; do %s/pcf-forecaster daemon --name $n --samples 50"
             " --day-ahead-at 23:59 >/tmp/pcf-test-daemon-%s-$n.log 2>&1 & pids=\"$pids $!\"; done;"
             " for i in $(seq 1 100); do sleep 0.5;"
             " [ \"$(psql -qAt -c \"SELECT count(*) FROM run_queue WHERE status = '\"'\"'done'\"'\"'\")\" = 6 ] && break; done;"
             " kill $pids; wait'", b, db.name);
    testdb_run(&db, cmd, out, sizeof out);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue WHERE status = 'done'"), 6,
                 "%s; see /tmp/pcf-test-daemon-%s-[ab].log", out, db.name);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run"), 6, "each job ran exactly once");
    cr_assert_eq(s_count(c, "SELECT count(DISTINCT target_date) FROM run"), 6);
    cr_assert_eq(s_count(c, "SELECT count(*) FROM run_queue WHERE attempts <> 1"), 0);
    PQfinish(c);
    /* the daemons' logs stay behind only when an assertion above failed */
    char path[128];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "/tmp/pcf-test-daemon-%s-%c.log", db.name, "ab"[i]);
        remove(path);
    }
    testdb_drop(&db);
}
