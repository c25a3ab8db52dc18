/*
 * test_runq_soak.c -- regression tests for the run-queue bugs `make soak`
 * (tests/soak/soak.sh) found:
 *
 *  - concurrent runq_request calls for the same zone and kind raced: the
 *    loser's INSERT ... ON CONFLICT DO NOTHING waited for the winner, and
 *    its SELECT, on the statement's older snapshot, saw no pending job, so
 *    the request failed with "no job queued";
 *  - steady SCADA starved real-time runs: every pcf_scada NOTIFY restarted
 *    the debounce, so a gateway sending more often than --debounce-ms never
 *    got a run; now one is queued at most RUNQ_DEBOUNCE_MAX_FACTOR debounce
 *    periods after the first notification.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runq.h"
#include "testdb.h"

#define OUT 16384
#define THREADS 6
#define ROUNDS 40

typedef struct racer {
    const char *conninfo;
    pthread_barrier_t *go;
    long long jobs[ROUNDS];
    int failures;
    char first_error[PCF_ERROR_MSG_MAX];
} racer;

static pthread_barrier_t s_done;

/* A database with the schema and zone `zone` (case9, no register). */
static void s_setup(testdb *db, const char *tag, const char *zone)
{
    char cmd[256], out[OUT];
    testdb_create(db, tag);
    snprintf(cmd, sizeof cmd, "%1$s/pcf-db migrate && %1$s/pcf-db import-matpower --zone %2$s"
                              " tests/data/matpower/cases/case9.m", testdb_bindir(), zone);
    cr_assert_eq(testdb_run(db, cmd, out, sizeof out), 0, "%s", out);
}

static void *s_race(void *arg)
{
    racer *r = arg;
    PGconn *c = PQconnectdb(r->conninfo);
    engine_opts o;
    memset(&o, 0, sizeof o);
    o.zone = "RQ";
    o.kind = ENGINE_REAL_TIME;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(r->go);
        pcf_error err;
        pcf_error_clear(&err);
        r->jobs[i] = -1;
        if (PQstatus(c) != CONNECTION_OK || runq_request(c, &o, &r->jobs[i], &err) != PCF_OK) {
            if (!r->failures++) snprintf(r->first_error, sizeof r->first_error, "%s", err.msg);
        }
        pthread_barrier_wait(&s_done);   /* the main thread retires the job before the next round */
    }
    PQfinish(c);
    return NULL;
}

Test(runq_soak, concurrent_requests_all_get_the_one_pending_job)
{
    testdb db;
    s_setup(&db, "rqrace", "RQ");
    PGconn *c = testdb_connect(&db);
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, THREADS + 1);
    pthread_barrier_init(&s_done, NULL, THREADS + 1);
    static racer r[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].conninfo = db.conninfo;
        r[i].go = &go;
        cr_assert_eq(pthread_create(&t[i], NULL, s_race, &r[i]), 0);
    }
    for (int i = 0; i < ROUNDS; i++) {
        pthread_barrier_wait(&go);
        pthread_barrier_wait(&s_done);
        /* retire the pending job so the next round inserts afresh */
        testdb_exec(c, "UPDATE run_queue SET status = 'failed', error = 'test' WHERE status = 'queued'");
    }
    int failures = 0;
    const char *why = "";
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        failures += r[i].failures;
        if (r[i].failures && !*why) why = r[i].first_error;
    }
    cr_assert_eq(failures, 0, "%d of %d concurrent requests failed: %s", failures, THREADS * ROUNDS, why);
    /* every request of a round got the same job, and each round made one */
    for (int i = 0; i < ROUNDS; i++)
        for (int k = 1; k < THREADS; k++)
            cr_assert_eq(r[k].jobs[i], r[0].jobs[i], "round %d: thread %d got job %lld, thread 0 job %lld", i, k,
                         r[k].jobs[i], r[0].jobs[i]);
    char v[32];
    testdb_scalar(c, "SELECT count(*) FROM run_queue", v, sizeof v);
    cr_assert_eq(atoi(v), ROUNDS);
    pthread_barrier_destroy(&go);
    pthread_barrier_destroy(&s_done);
    PQfinish(c);
    testdb_drop(&db);
}

static double s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A gateway notifying every 250 ms never leaves the 1 s debounce quiet;
 * the real-time run must still be queued within 5 x 1 s of the first
 * notification (and not before the debounce, which would defeat it). */
Test(runq_soak, steady_scada_does_not_starve_real_time_runs)
{
    testdb db;
    char out[OUT];
    s_setup(&db, "rqdebounce", "RD");
    char cmd[512], log[128];
    snprintf(log, sizeof log, "/tmp/pcf-test-debounce-%s.log", db.name);
    /* the daemon's only zone has no register, so the run it claims fails
     * quickly; what matters here is when the job was queued */
    snprintf(cmd, sizeof cmd, "%s/pcf-forecaster daemon --zones RD --debounce-ms 1000 --day-ahead-at 23:59"
                              " --name debounce >%s 2>&1 & echo $!", testdb_bindir(), log);
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 0, "%s", out);
    long pid = strtol(out, NULL, 10);
    cr_assert_gt(pid, 0, "%s", out);
    PGconn *c = testdb_connect(&db);
    /* wait until the daemon LISTENs, so the first NOTIFY counts (logfmt
     * quotes msg only when it has spaces) */
    char grep[192], v[32];
    snprintf(grep, sizeof grep, "grep -Eq 'msg=\"?connected' %s", log);
    int listening = 0;
    for (int i = 0; i < 100 && !listening; i++) {
        usleep(100000);
        listening = testdb_run(&db, grep, out, sizeof out) == 0;
    }
    char kill[64];
    snprintf(kill, sizeof kill, "kill %ld", pid);
    if (!listening) testdb_run(&db, kill, out, sizeof out); /* never leave it behind */
    cr_assert(listening, "the daemon never connected; see %s", log);
    double t0 = s_now(), queued_after = -1;
    while (s_now() - t0 < 9.0) {
        testdb_exec(c, "NOTIFY pcf_scada, '1'");
        usleep(250000);
        testdb_scalar(c, "SELECT count(*) FROM run_queue WHERE kind = 'real_time'", v, sizeof v);
        if (atoi(v) > 0 && queued_after < 0) queued_after = s_now() - t0;
    }
    testdb_run(&db, kill, out, sizeof out);
    PQfinish(c);
    cr_assert_geq(queued_after, 0, "no real-time run queued in 9 s of steady SCADA; see %s", log);
    cr_assert(queued_after >= 0.9 && queued_after <= 1.0 * RUNQ_DEBOUNCE_MAX_FACTOR + 1.5,
              "real-time run queued %.2f s after the first notification", queued_after);
    remove(log);
    testdb_drop(&db);
}
