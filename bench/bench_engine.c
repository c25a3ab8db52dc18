/*
 * bench_engine.c -- the look-ahead engine on the demo zone, end to end:
 * a day-ahead run (48 SPs x 10,000 samples, credible N-1 faults, inputs read
 * from and results written to PostgreSQL) and a real-time run measured from
 * the NOTIFY of fresh SCADA to the NOTIFY of its committed results, through
 * the engine daemon (PCF_BENCH_VOLTAGE=1: the voltage constraint measured
 * in the full AC solves against its linear flow there, alone).  Prints
 * `BENCH name value unit` lines and the share of
 * each stage.  Needs the private server of bench/run.sh (PCF_TEST_PGHOST,
 * PCF_TEST_PGPORT) and bin/ built (PCF_BINDIR overrides).
 */
#include <cblas.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "blas_core.h"
#include "db.h"
#include "engine.h"
#include "load.h"
#include "study_ac.h"

extern char **environ;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of this process, all threads: on a machine shared with other
 * work, the least CPU time of a few runs moves much less than wall time. */
static double s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static int s_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int s_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "bench_engine: failed (%d): %s\n", rc, cmd);
    return rc;
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) *len = (size_t)n;
    return b;
}

static int s_load(PGconn *c, const char *gen)
{
    static const char *const locs[] = { "kestrel-nw", "kestrel-ne", "kestrel-sw", "kestrel-se" };
    static const char *const months[] = { "2025-03", "2025-04", "2025-05" };
    char path[512];
    load_report rep;
    pcf_error err;
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/scada/historian_%s.csv", gen, months[i]);
        if (load_scada_file(c, path, path, &rep, &err) != PCF_OK) {
            fprintf(stderr, "bench_engine: %s\n", err.msg);
            return 1;
        }
        snprintf(path, sizeof path, "%s/weather/archive_%s.json", gen, months[i]);
        size_t len;
        char *buf = s_slurp(path, &len);
        load_weather_opts o = { locs, 4, "era5", 1748736000 };      /* issued 2025-06-01 */
        if (!buf || load_weather(c, buf, len, path, &o, &rep, &err) != PCF_OK) {
            fprintf(stderr, "bench_engine: %s: %s\n", path, buf ? err.msg : "unreadable");
            free(buf);
            return 1;
        }
        free(buf);
    }
    const char *fc[2][2] = { { "forecast_2025-06-07.json", "best_match" }, { "ensemble_2025-06-07.json", "ecmwf_ifs025" } };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/weather/%s", gen, fc[i][0]);
        size_t len;
        char *buf = s_slurp(path, &len);
        load_weather_opts o = { locs, 4, fc[i][1], 1749189600 };    /* 2025-06-06 06:00Z */
        if (!buf || load_weather(c, buf, len, path, &o, &rep, &err) != PCF_OK) {
            fprintf(stderr, "bench_engine: %s: %s\n", path, buf ? err.msg : "unreadable");
            free(buf);
            return 1;
        }
        free(buf);
    }
    return 0;
}

static void s_report(const char *name, const engine_report *r)
{
    double stages = r->t_load + r->t_forecast + r->t_study + r->t_write;
    printf("BENCH %s_total %.3f s\n", name, r->t_total);
    printf("BENCH %s_study %.3f s\n", name, r->t_study);
    printf("BENCH %s_samples_per_s %.0f samples/s\n", name,
           (double)(r->sp_count * r->samples) / (r->t_study > 0 ? r->t_study : 1e-9));
    /* the study's parts run on both threads at once: their CPU seconds,
     * and each part's share of the study's wall time in proportion */
    const study_times *t = &r->study_t;
    double parts = t->sampling + t->power_flow + t->anm + t->aggregation;
    printf("BENCH %s_sampling_cpu %.3f s\n", name, t->sampling);
    printf("BENCH %s_power_flow_cpu %.3f s\n", name, t->power_flow);
    printf("BENCH %s_anm_cpu %.3f s\n", name, t->anm);
    printf("BENCH %s_aggregation_cpu %.3f s\n", name, t->aggregation);
    double w = parts > 0 ? r->t_study / parts / stages : 0;
    printf("# %s: %zu SPs x %zu samples, %zu sites, %zu constraints, %zu credible faults; shares of the run's wall "
           "time: load %.0f%%, forecast %.0f%%, study %.0f%% (sampling %.0f%%, power flow %.0f%%, ANM %.0f%%, "
           "aggregation %.0f%%), write %.0f%%\n",
           name, r->sp_count, r->samples, r->sites, r->constraints, r->faults, 100 * r->t_load / stages,
           100 * r->t_forecast / stages, 100 * r->t_study / stages, 100 * t->sampling * w, 100 * t->power_flow * w,
           100 * t->anm * w, 100 * t->aggregation * w, 100 * r->t_write / stages);
}

static void s_report_cpu(const char *name, const double *cpu, int n)
{
    double m = cpu[0];
    for (int i = 1; i < n; i++) m = cpu[i] < m ? cpu[i] : m;
    printf("BENCH %s_cpu %.3f s\n", name, m);
}

/* Zone-day expected curtailment (MWh) of a run, and the largest |P(curtailed)
 * difference| per site and SP against another run. */
static double s_zone_mwh(PGconn *c, int64_t run)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT coalesce(sum(expected_curtailed_mwh), 0) FROM pcf_result WHERE run_id = %lld",
             (long long)run);
    PGresult *r = PQexec(c, q);
    double v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atof(PQgetvalue(r, 0, 0)) : NAN;
    PQclear(r);
    return v;
}

static double s_max_dp(PGconn *c, int64_t a, int64_t b)
{
    char q[512];
    snprintf(q, sizeof q, "SELECT coalesce(max(abs(x.p_curtailed - y.p_curtailed)), 0) FROM pcf_result x "
             "JOIN pcf_result y USING (site_id, sp) WHERE x.run_id = %lld AND y.run_id = %lld",
             (long long)a, (long long)b);
    PGresult *r = PQexec(c, q);
    double v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atof(PQgetvalue(r, 0, 0)) : NAN;
    PQclear(r);
    return v;
}

/* The three power-flow modes on the same day, seed and samples: DC only
 * (--ac off), the default (screened: flows linearised at each state's AC
 * operating point, full AC near the acting level) and AC for every sample
 * (--ac all, the reference).  Cost, the share of samples given the full AC
 * solve, and the PCF differences against --ac all.  The default's best-of-3
 * total is `engine_day_ahead_48x10000` above; `dflt` is one of those runs.
 * PCF_BENCH_SCREEN_BAND (a fraction) overrides the screening band. */
static int s_ac_compare(PGconn *c, const engine_report *dflt, double dflt_cpu, anm_options *anm)
{
    pcf_error err;
    engine_report off, all;
    double cpu0 = s_cpu(), off_cpu, all_cpu;
    engine_opts o = { .zone = "kestrel", .kind = ENGINE_DAY_AHEAD, .year = 2025, .month = 6, .day = 7,
                      .samples = 10000, .threads = 2, .anm = anm, .version = "bench", .ac = STUDY_AC_OFF };
    if (engine_run(c, &o, &off, &err) != PCF_OK) {
        fprintf(stderr, "bench_engine: day-ahead, DC only: %s\n", err.msg);
        return 1;
    }
    off_cpu = s_cpu() - cpu0;
    cpu0 = s_cpu();
    o.ac = STUDY_AC_ALL;
    if (engine_run(c, &o, &all, &err) != PCF_OK) {
        fprintf(stderr, "bench_engine: day-ahead, AC for every sample: %s\n", err.msg);
        return 1;
    }
    all_cpu = s_cpu() - cpu0;
    size_t n = dflt->sp_count * dflt->samples;
    printf("BENCH engine_day_ahead_ac_off_total %.3f s\n", off.t_total);
    printf("BENCH engine_day_ahead_ac_screened_total %.3f s\n", dflt->t_total);
    printf("BENCH engine_day_ahead_ac_all_total %.3f s\n", all.t_total);
    printf("BENCH engine_day_ahead_ac_off_cpu %.3f s\n", off_cpu);
    printf("BENCH engine_day_ahead_ac_screened_cpu %.3f s\n", dflt_cpu);
    printf("BENCH engine_day_ahead_ac_all_cpu %.3f s\n", all_cpu);
    printf("BENCH engine_day_ahead_ac_screened_resolved_share %.4f\n", (double)dflt->ac_samples / (double)n);
    printf("BENCH engine_day_ahead_ac_screened_max_dp_vs_all %.4f\n", s_max_dp(c, dflt->run_id, all.run_id));
    printf("BENCH engine_day_ahead_ac_off_max_dp_vs_all %.4f\n", s_max_dp(c, off.run_id, all.run_id));
    printf("# day-ahead power flow: off %.2f s, screened %.2f s (%.2fx), all %.2f s (%.2fx); screened re-solved %zu of "
           "%zu samples with full AC (%zu fell back to DC; %zu network states without an operating point); --ac all: "
           "%zu fell back; zone-day expected curtailment off %.1f MWh, screened %.1f MWh, all %.1f MWh\n",
           off.t_total, dflt->t_total, dflt->t_total / off.t_total, all.t_total, all.t_total / off.t_total,
           dflt->ac_samples, n, dflt->ac_fallbacks, dflt->ac_lin_failures, all.ac_fallbacks, s_zone_mwh(c, off.run_id),
           s_zone_mwh(c, dflt->run_id), s_zone_mwh(c, all.run_id));
    return 0;
}

/* Expected curtailment (MWh) over the run caused by one constraint. */
static double s_constraint_mwh(PGconn *c, int64_t run, const char *id)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT coalesce(sum(expected_curtailment_mwh), 0) FROM constraint_statement "
             "WHERE run_id = %lld AND constraint_id = '%s'", (long long)run, id);
    PGresult *r = PQexec(c, q);
    double v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atof(PQgetvalue(r, 0, 0)) : NAN;
    PQclear(r);
    return v;
}

/* PCF_BENCH_VOLTAGE: the default (screened) day-ahead run with the voltage
 * constraint's bus measured in the full AC solves against the same run
 * keeping its linear flow there (engine_opts.ac_voltage_linear), A/B
 * interleaved twice, best of two each: share of samples re-solved, run
 * time and KEST_BECK_V's expected curtailment; then the same with AC for
 * every sample, once each. */
static int s_voltage_compare(PGconn *c, anm_options *anm)
{
    static const char *name[2] = { "linear", "measured" };
    engine_report best[2][2];
    for (int mode = 0; mode < 2; mode++)
        for (int i = 0; i < (mode ? 1 : 2); i++)
            for (int v = 0; v < 2; v++) {
                pcf_error err;
                engine_report r;
                engine_opts o = { .zone = "kestrel", .kind = ENGINE_DAY_AHEAD, .year = 2025, .month = 6, .day = 7,
                                  .samples = 10000, .threads = 2, .anm = anm, .version = "bench",
                                  .ac = mode ? STUDY_AC_ALL : STUDY_AC_SCREEN, .ac_voltage_linear = !v };
                if (engine_run(c, &o, &r, &err) != PCF_OK) {
                    fprintf(stderr, "bench_engine: day-ahead, voltage %s: %s\n", name[v], err.msg);
                    return 1;
                }
                if (i == 0 || r.t_total < best[mode][v].t_total) best[mode][v] = r;
            }
    for (int mode = 0; mode < 2; mode++) {
        /* the statements' flows before the ANM: the AC voltage against the
         * linear one where the full solve measured it */
        char q[512];
        snprintf(q, sizeof q, "SELECT max(abs(x.flow_intact_p50_mw - y.flow_intact_p50_mw)) FROM constraint_statement x "
                 "JOIN constraint_statement y USING (constraint_id, sp) WHERE constraint_id = 'KEST_BECK_V' "
                 "AND x.run_id = %lld AND y.run_id = %lld", (long long)best[mode][0].run_id,
                 (long long)best[mode][1].run_id);
        PGresult *r = PQexec(c, q);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            printf("# ac %s: KEST_BECK_V flow P50, measured against linear, differs by up to %s kV\n",
                   mode ? "all" : "screened", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    for (int mode = 0; mode < 2; mode++)
        for (int v = 0; v < 2; v++) {
            const engine_report *r = &best[mode][v];
            const char *m = mode ? "all" : "screened";
            printf("BENCH engine_day_ahead_ac_%s_voltage_%s_total %.3f s\n", m, name[v], r->t_total);
            printf("BENCH engine_day_ahead_ac_%s_voltage_%s_resolved_share %.4f\n", m, name[v],
                   (double)r->ac_samples / (double)(r->sp_count * r->samples));
            printf("BENCH engine_day_ahead_ac_%s_voltage_%s_kest_beck_v_mwh %.2f MWh\n", m, name[v],
                   s_constraint_mwh(c, r->run_id, "KEST_BECK_V"));
            printf("# ac %s, voltage %s: zone-day %.1f MWh, %zu AC samples, %zu fell back\n", m, name[v],
                   s_zone_mwh(c, r->run_id), r->ac_samples, r->ac_fallbacks);
        }
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    blas_core_ensure(argv);     /* as pcf-forecaster does */
    const char *host = getenv("PCF_TEST_PGHOST"), *port = getenv("PCF_TEST_PGPORT");
    const char *bin = getenv("PCF_BINDIR") ? getenv("PCF_BINDIR") : "bin";
    if (!host || !port) {
        fprintf(stderr, "bench_engine: run through bench/run.sh (needs PCF_TEST_PGHOST)\n");
        return 1;
    }
    openblas_set_num_threads(1);
    printf("# OpenBLAS kernels: %s\n", blas_core_name());
    char gen[64], env[1024];
    snprintf(gen, sizeof gen, "/tmp/pcf-bench-engine-%d", (int)getpid());
    snprintf(env, sizeof env, "PGHOST='%s' PGPORT='%s' PGUSER=postgres", host, port);
    if (s_sh("/usr/bin/python3 deploy/demo/gen_zone.py --out %s --days 160 --demo-day 2025-06-07 >/dev/null", gen) ||
        s_sh("%s PGDATABASE=postgres psql -qAtX -c 'DROP DATABASE IF EXISTS bench_engine' -c 'CREATE DATABASE bench_engine'", env) ||
        s_sh("%s PGDATABASE=bench_engine %s/pcf-db migrate >/dev/null", env, bin) ||
        s_sh("%s PGDATABASE=bench_engine %s/pcf-db import-matpower --zone kestrel %s/zone/kestrel_cross.m >/dev/null", env, bin, gen) ||
        s_sh("%s PGDATABASE=bench_engine %s/pcf-db import-der --zone kestrel %s/zone >/dev/null", env, bin, gen) ||
        s_sh("%s PGDATABASE=bench_engine %s/pcf-db import-anm --zone kestrel %s/zone >/dev/null", env, bin, gen) ||
        s_sh("%s PGDATABASE=bench_engine %s/pcf-db import-points --zone kestrel %s/zone/points.csv >/dev/null", env, bin, gen))
        return 1;
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=bench_engine", host, port);
    pcf_error err;
    PGconn *c = db_connect(ci, &err);
    if (!c || s_load(c, gen)) {
        if (!c) fprintf(stderr, "bench_engine: %s\n", err.msg);
        return 1;
    }
    /* A back-fill is followed by ANALYZE (autovacuum would get there later):
     * without statistics the history queries plan badly, 0.26 s -> 1.05 s. */
    db_exec(c, "ANALYZE", &err);

    double screen_band = getenv("PCF_BENCH_SCREEN_BAND") ? atof(getenv("PCF_BENCH_SCREEN_BAND")) : 0;
    if (getenv("PCF_BENCH_VOLTAGE")) {
        anm_options a0;
        anm_options_default(&a0);
        int rc = s_voltage_compare(c, &a0);
        PQfinish(c);
        s_sh("rm -rf %s", gen);
        return rc;
    }
    if (getenv("PCF_BENCH_AC_ONLY")) {
        /* the power-flow modes alone, for tuning the screening band */
        anm_options a0;
        anm_options_default(&a0);
        engine_opts o = { .zone = "kestrel", .kind = ENGINE_DAY_AHEAD, .year = 2025, .month = 6, .day = 7,
                          .samples = 10000, .threads = 2, .anm = &a0, .version = "bench", .ac_band = screen_band };
        engine_report r;
        double cpu0 = s_cpu();
        if (engine_run(c, &o, &r, &err) != PCF_OK) return 1;
        if (s_ac_compare(c, &r, s_cpu() - cpu0, &a0)) return 1;
        PQfinish(c);
        s_sh("rm -rf %s", gen);
        return 0;
    }
    /* Day-ahead, the default power flow (screened AC): best of three (the
     * machine is shared). */
    engine_report best = { 0 }, rep;
    double cpu[3];
    int best_i = 0;
    anm_options anm;
    anm_options_default(&anm);
    for (int i = 0; i < 3; i++) {
        engine_opts o = { .zone = "kestrel", .kind = ENGINE_DAY_AHEAD, .year = 2025, .month = 6, .day = 7,
                          .samples = 10000, .threads = 2, .anm = &anm, .version = "bench", .ac_band = screen_band };
        double cpu0 = s_cpu();
        if (engine_run(c, &o, &rep, &err) != PCF_OK) {
            fprintf(stderr, "bench_engine: day-ahead: %s\n", err.msg);
            return 1;
        }
        cpu[i] = s_cpu() - cpu0;
        if (i == 0 || rep.t_total < best.t_total) {
            best = rep;
            best_i = i;
        }
    }
    s_report("engine_day_ahead_48x10000", &best);
    s_report_cpu("engine_day_ahead_48x10000", cpu, 3);
    engine_report da = best;
    double da_cpu = cpu[best_i];
    /* Real time in-process, for its stage shares (the daemon's figure
     * below adds the queue, the claim and the NOTIFYs). */
    for (int i = 0; i < 3; i++) {
        engine_opts o = { .zone = "kestrel", .kind = ENGINE_REAL_TIME, .samples = 10000, .threads = 2, .anm = &anm,
                          .version = "bench", .ac_band = screen_band };
        double cpu0 = s_cpu();
        if (engine_run(c, &o, &rep, &err) != PCF_OK) {
            fprintf(stderr, "bench_engine: real-time: %s\n", err.msg);
            return 1;
        }
        cpu[i] = s_cpu() - cpu0;
        if (i == 0 || rep.t_total < best.t_total) best = rep;
    }
    s_report("engine_real_time_8x10000", &best);
    s_report_cpu("engine_real_time_8x10000", cpu, 3);
    /* The same with the cache the daemon keeps (engine_cache.h): the first
     * run fills it, the best of the next three is reported. */
    engine_cache *cache = NULL;
    if (engine_cache_new(&cache, &err) != PCF_OK) return 1;
    for (int i = 0; i < 4; i++) {
        engine_opts o = { .zone = "kestrel", .kind = ENGINE_REAL_TIME, .samples = 10000, .threads = 2, .anm = &anm,
                          .version = "bench", .cache = cache, .ac_band = screen_band };
        if (engine_run(c, &o, &rep, &err) != PCF_OK) {
            fprintf(stderr, "bench_engine: real-time (cached): %s\n", err.msg);
            return 1;
        }
        if (i == 1 || (i > 1 && rep.t_total < best.t_total)) best = rep;
    }
    engine_cache_destroy(&cache);
    s_report("engine_real_time_cached_8x10000", &best);
    /* PCF_BENCH_QUICK: the in-process runs only, to compare builds of the
     * study stage back to back without the AC pass and the daemon. */
    if (getenv("PCF_BENCH_QUICK")) {
        PQfinish(c);
        s_sh("rm -rf %s", gen);
        return 0;
    }
    if (s_ac_compare(c, &da, da_cpu, &anm)) return 1;

    /* Real time through the daemon: NOTIFY pcf_scada -> NOTIFY pcf_run. */
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "exec env %s PGDATABASE=bench_engine %s/pcf-forecaster daemon --zones kestrel "
             "--debounce-ms 0 --day-ahead-at 23:59 --samples 10000 --name bench 2>/tmp/pcf-bench-daemon.log", env, bin);
    pid_t pid;
    char *sh_argv[] = { "sh", "-c", cmd, NULL };
    if (posix_spawn(&pid, "/bin/sh", NULL, NULL, sh_argv, environ) != 0) return 1;
    PGconn *l = db_connect(ci, &err);
    db_exec(l, "LISTEN pcf_run", &err);
    double best_rt = HUGE_VAL;
    for (int i = 0; i < 3; i++) {
        usleep(1500000);                       /* the daemon is up and idle */
        double t0 = s_now();
        db_exec(c, "NOTIFY pcf_scada, 'bench'", &err);
        int got = 0;
        while (!got && s_now() - t0 < 60) {
            PQconsumeInput(l);
            PGnotify *n;
            while ((n = PQnotifies(l)) != NULL) {
                got = 1;
                PQfreemem(n);
            }
            if (!got) usleep(2000);
        }
        double dt = s_now() - t0;
        if (got && dt < best_rt) best_rt = dt;
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    printf("BENCH engine_real_time_notify_to_commit %.3f s\n", best_rt);
    printf("# real time: 8 SPs x 10,000 samples from the latest SCADA, through the daemon (queue, claim, run, commit)\n");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("BENCH engine_peak_rss %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
    /* issue 5's targets, on 2 cores: read with the load average, the
     * machine being shared */
    double la[3] = { 0, 0, 0 };
    if (getloadavg(la, 3) < 1) la[0] = NAN;
    printf("# targets (load average %.2f): day-ahead %.2f s against 3 s (%s); real time NOTIFY to commit %.3f s "
           "against 0.5 s (%s)\n", la[0], da.t_total, da.t_total < 3 ? "met" : "MISSED", best_rt,
           best_rt < 0.5 ? "met" : "MISSED");
    PQfinish(l);
    PQfinish(c);
    s_sh("rm -rf %s", gen);
    return 0;
}
