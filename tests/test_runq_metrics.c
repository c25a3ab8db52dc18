/*
 * test_runq_metrics.c -- the engine daemon's queue-depth gauge is measured
 * when scraped (a render hook on its own connection), not by a count(*) in
 * every turn of the daemon's loop (review: it ran even when nobody
 * scraped, and went stale while the daemon was busy in a run -- exactly
 * when a backlog builds up).
 *
 * The daemon runs in-process on a thread.  A test transaction holds an
 * ACCESS EXCLUSIVE lock on `branch`, so the job the daemon claims blocks in
 * its load for as long as the test wants; jobs queued meanwhile must show
 * in the very next scrape.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "runq.h"
#include "testdb.h"
#include "testhttp.h"

typedef struct {
    runq_daemon_opts o;
    pcf_rc rc;
    pcf_error err;
} s_daemon;

static void *s_run(void *arg)
{
    s_daemon *d = arg;
    d->rc = runq_daemon(&d->o, &d->err);
    return NULL;
}

static double s_depth(metrics *m)
{
    char *t = metrics_render(m, NULL);
    cr_assert_not_null(t);
    double v = testhttp_sample(t, "pcf_forecaster_queue_depth");
    free(t);
    return v;
}

Test(runq_metrics, queue_depth_is_measured_at_scrape_even_mid_run)
{
    testdb db;
    char cmd[256], out[4096];
    testdb_create(&db, "rqdepth");
    snprintf(cmd, sizeof cmd, "%1$s/pcf-db migrate && %1$s/pcf-db import-matpower --zone QD"
                              " tests/data/matpower/cases/case9.m", testdb_bindir());
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 0, "%s", out);
    PGconn *c = testdb_connect(&db), *lock = testdb_connect(&db);
    testdb_exec(lock, "BEGIN; LOCK TABLE branch IN ACCESS EXCLUSIVE MODE");
    testdb_exec(c, "INSERT INTO run_queue (zone_id, kind, target_date) VALUES ('QD', 'day_ahead', '2026-07-01')");

    pcf_log_set_level(PCF_LOG_WARN);     /* the daemon's info lines are noise here */
    metrics *m = metrics_new();
    volatile sig_atomic_t stop = 0;
    s_daemon d = { .o = { .conninfo = db.conninfo, .zones = "QD", .day_ahead_at = "23:59", .debounce_ms = 1000,
                          .name = "depth", .samples = 100, .threads = 1, .stop = &stop, .metrics = m } };
    pthread_t tid;
    cr_assert_eq(pthread_create(&tid, NULL, s_run, &d), 0);
    /* the daemon has claimed the job and waits on the lock inside its run */
    int busy = 0;
    for (int i = 0; i < 600 && !busy; i++) {
        usleep(50000);
        busy = testdb_long(c, "SELECT count(*) FROM pg_stat_activity a JOIN run_queue q ON q.status = 'claimed'"
                              " WHERE a.datname = current_database() AND a.wait_event_type = 'Lock'") > 0;
    }
    cr_assert(busy, "the daemon never blocked in its run");
    testdb_exec(c, "INSERT INTO run_queue (zone_id, kind, target_date) VALUES ('QD', 'day_ahead', '2026-07-02'),"
                   " ('QD', 'day_ahead', '2026-07-03')");
    /* before: the loop's last count (1, job 1 still queued) or 0 */
    cr_assert_eq(s_depth(m), 2, "measured at the scrape, while the daemon is busy");
    testdb_exec(c, "INSERT INTO run_queue (zone_id, kind, target_date) VALUES ('QD', 'day_ahead', '2026-07-04')");
    cr_assert_eq(s_depth(m), 2, "at most once per RUNQ_DEPTH_MIN_S, however often scraped");

    stop = 1;
    testdb_exec(lock, "ROLLBACK");
    pthread_join(tid, NULL);
    cr_assert_eq(d.rc, PCF_OK, "%s", d.err.msg);
    /* the daemon removed its hook: rendering now touches nothing freed */
    free(metrics_render(m, NULL));
    metrics_destroy(&m);
    PQfinish(lock);
    PQfinish(c);
    testdb_drop(&db);
}
