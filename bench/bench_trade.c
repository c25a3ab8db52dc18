/*
 * bench_trade.c -- latency of a trade check (engine_trade_check, trade.h) on
 * the Kestrel Cross demo model, as the publisher computes it inline: the
 * default 2000 samples, one thread, the two what-if passes, the loading of
 * inputs and the judgement of every touched constraint under the intact
 * network and every credible fault included (docs/methodology.md T.4).
 *
 * Prints `BENCH trade_check_demo_<n>sp_s` for ranges of 1, 4 and 48 SPs:
 * the least wall time of a few checks, which on a shared machine moves less
 * than the median (printed too, with the CPU time and the load average).
 * The model is imported without SCADA or weather, so the forecasts are
 * thin and the figures are the study's cost, which does not depend on them.
 * Needs the private server of bench/run.sh (PCF_TEST_PGHOST, PCF_TEST_PGPORT)
 * and bin/ built (PCF_BINDIR overrides).  `bench_trade quick` checks 1 and 4
 * SPs once each: for counting instructions under valgrind --tool=callgrind
 * --toggle-collect=engine_trade_check, which a shared machine does not
 * disturb as it does wall time.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trade.h"

/* Wall and CPU seconds: the check runs on this thread alone, so clock()
 * is its CPU time. */
static void s_clock(double *wall, double *cpu)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *wall = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    *cpu = (double)clock() / CLOCKS_PER_SEC;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void s_loadavg(char *out, size_t n)
{
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f || !fgets(out, (int)n, f)) snprintf(out, n, "?\n");
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    const char *host = getenv("PCF_TEST_PGHOST"), *port = getenv("PCF_TEST_PGPORT");
    const char *bindir = getenv("PCF_BINDIR") ? getenv("PCF_BINDIR") : "bin";
    if (!host || !port) {
        fprintf(stderr, "bench_trade: run through bench/run.sh (needs PCF_TEST_PGHOST)\n");
        return 1;
    }
    char ci[512], db[64], cmd[2048];
    snprintf(db, sizeof db, "bench_trade_%d", (int)getpid());
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=postgres", host, port);
    PGconn *c = PQconnectdb(ci);
    snprintf(cmd, sizeof cmd, "CREATE DATABASE %s", db);
    PQclear(PQexec(c, cmd));
    PQfinish(c);
    static const char *const steps[] = { "migrate", "import-matpower --zone demo deploy/demo/zone/kestrel_cross.m",
                                         "import-der --zone demo deploy/demo/zone",
                                         "import-anm --zone demo deploy/demo/zone" };
    int rc = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == 0; i++) {
        snprintf(cmd, sizeof cmd, "PGHOST='%s' PGPORT='%s' PGUSER=postgres PGDATABASE='%s' %s/pcf-db %s >/dev/null",
                 host, port, db, bindir, steps[i]);
        if ((rc = system(cmd)) != 0) fprintf(stderr, "bench_trade: failed: %s\n", cmd);
    }
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=%s", host, port, db);
    c = PQconnectdb(ci);
    if (rc == 0 && PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_trade: %s", PQerrorMessage(c));
        rc = 1;
    }
    /* a wind farm buys 5 MW of export from a battery in the evening peak */
    static const trade_change ch[2] = { { "B01", -5 }, { "W01", 5 } };
    static const struct { int first, last, reps; } range[3] = { { 34, 34, 7 }, { 33, 36, 5 }, { 1, 48, 3 } };
    for (int g = 0; g < (quick ? 2 : 3) && rc == 0; g++) {
        double wall[8], cpu[8];
        size_t checks = 0, judged = 0;
        int n = quick ? 1 : range[g].reps;
        for (int i = 0; i < n && rc == 0; i++) {
            trade_request rq = { "demo", TRADE_MEC, 2026, 11, 24, range[g].first, range[g].last, 0, ch, 2, 0, 0, 0, 0 };
            trade_result *r = NULL;
            pcf_error e;
            double t0, c0, t1, c1;
            s_clock(&t0, &c0);
            if (engine_trade_check(c, &rq, &r, &e) != PCF_OK) {
                fprintf(stderr, "bench_trade: %s\n", e.msg);
                rc = 1;
                break;
            }
            s_clock(&t1, &c1);
            wall[i] = t1 - t0;
            cpu[i] = c1 - c0;
            checks = r->ncheck;
            judged = r->ncheck ? r->check[0].nfault : 0;
            trade_result_destroy(&r);
        }
        if (rc != 0) break;
        qsort(wall, (size_t)n, sizeof wall[0], s_cmp);
        qsort(cpu, (size_t)n, sizeof cpu[0], s_cmp);
        char la[128];
        s_loadavg(la, sizeof la);
        int nsp = range[g].last - range[g].first + 1;
        printf("# trade check, demo model, %d SP, %zu checks x (intact + %zu faults), 2000 samples, 1 thread:"
               " min %.3f median %.3f s wall, min %.3f s CPU; loadavg %s",
               nsp, checks, judged, wall[0], wall[n / 2], cpu[0], la);
        printf("BENCH trade_check_demo_%dsp_s %.3f s\n", nsp, wall[0]);
        fflush(stdout);
    }
    PQfinish(c);
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=postgres", host, port);
    c = PQconnectdb(ci);
    snprintf(cmd, sizeof cmd, "DROP DATABASE IF EXISTS %s", db);
    PQclear(PQexec(c, cmd));
    PQfinish(c);
    return rc;
}
