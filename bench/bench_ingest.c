/*
 * bench_ingest.c -- SCADA CSV ingest throughput against PostgreSQL, and the
 * same file loaded by `psql -c "\copy ..."` in the same run for comparison.
 *
 * Uses the private server of bench/run.sh (PCF_TEST_PGHOST/PORT).  Makes a
 * fresh database, applies the migrations, creates PCF_BENCH_POINTS
 * measurement points (default 1000) and a historian CSV of PCF_BENCH_ROWS
 * rows (default 500000, half-hourly values, points interleaved), then, in
 * PCF_BENCH_ROUNDS (default 3) interleaved rounds whose medians are printed:
 *   ingest_scada_rows_per_s  load_scada_file on a fresh table: parse, sort,
 *                            binary COPY into the monthly partition
 *                            (load.c's bulk path), commit
 *   psql_copy_rows_per_s     \copy of the same file into the real
 *                            measurement table (emptied first): partitioned,
 *                            primary key, CHECKs, the point-check triggers
 *                            of 005 -- what PostgreSQL itself does with it
 *   ingest_vs_psql_ratio     the first over the second
 *   psql_copy_plain_rows_per_s, ingest_vs_psql_plain_ratio: the same against
 *                            a plain table with only the primary key
 *   ingest_peak_rss_mb       peak resident memory (VmHWM) during the load
 *   ingest_rerun_rows_per_s  a second file with the same rows in another
 *                            order: every chunk overlaps, so every chunk
 *                            takes the staging + upsert fallback
 * and, unless PCF_BENCH_BIG_ROWS is 0, the same load of a PCF_BENCH_BIG_ROWS
 * (default 3000000) row file: ingest_scada_big_rows_per_s and
 * ingest_big_peak_rss_mb.  Prints BENCH lines (bench/run.sh) and, as
 * comments, the load average and the client CPU time of each load.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "load.h"
#include "migrate.h"
#include "parse.h"
#include "sptime.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long s_env(const char *name, long def, long lo, long hi)
{
    const char *v = getenv(name);
    long x;
    if (!v || parse_long(v, strlen(v), &x) != PCF_OK || x < lo || x > hi)
        return def;
    return x;
}

static int s_exec(PGconn *c, const char *sql)
{
    pcf_error e;
    if (db_exec(c, sql, &e) != PCF_OK) {
        fprintf(stderr, "bench_ingest: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static PGconn *s_connect(const char *host, const char *port, const char *db)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=%s", host, port, db);
    pcf_error e;
    PGconn *c = db_connect(ci, &e);
    if (!c)
        fprintf(stderr, "bench_ingest: %s\n", e.msg);
    return c;
}

static int s_setup(PGconn *c, long npoints)
{
    pcf_error e;
    int applied;
    if (migrate_apply(c, 0, NULL, NULL, &applied, &e) != PCF_OK) {
        fprintf(stderr, "bench_ingest: %s\n", e.msg);
        return -1;
    }
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO zone (zone_id, base_mva) VALUES ('b', 100);"
             "INSERT INTO bus (zone_id, bus_i, row_no, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, "
             "loss_zone, vmax, vmin) VALUES ('b', 1, 1, 3, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9);"
             "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i) "
             "SELECT 'P' || g, 'b', 'v_kv', 'bus', 1 FROM generate_series(0, %ld) g;"
             "CREATE TABLE bench_plain (timestamp timestamptz, point_id text, value double precision, "
             "quality text, PRIMARY KEY (point_id, timestamp));"
             /* psql's rows get batch 0: the file has no batch column */
             "ALTER TABLE measurement ALTER COLUMN batch_id SET DEFAULT 0;",
             npoints - 1);
    return s_exec(c, sql);
}

/* The file is also what psql loads, so it uses the stored quality names. */
static int s_make_csv(const char *path, long rows, long npoints, int order)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("timestamp,point_id,value,quality\n", f);
    int64_t t0 = 1767225600;    /* 2026-01-01T00:00Z */
    char ts[SPTIME_ISO_LEN];
    for (long k = 0; k < rows; k++) {
        long i = order ? rows - 1 - k : k;
        long p = i % npoints, step = i / npoints;
        sptime_format_utc(t0 + step * 1800, ts, sizeof ts);
        fprintf(f, "%s,P%ld,%.3f,%s\n", ts, p, 30.0 + (double)((i * 7919) % 1000) / 100.0,
                (i % 50) ? "good" : "uncertain");
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Seconds psql takes to \\copy the file into table; -1 on failure. */
static double s_psql(const char *host, const char *port, const char *table, const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "psql -q -X -v ON_ERROR_STOP=1 -h '%s' -p '%s' -U postgres -d pcf_bench_ingest "
             "-c \"\\copy %s FROM '%s' WITH (FORMAT csv, HEADER true)\" >/dev/null",
             host, port, table, path);
    double t = s_now();
    int rc = system(cmd);
    return rc == 0 ? s_now() - t : -1;
}

#define S_MAX_ROUNDS 9

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (sorts a copy). */
static double s_median(const double *v, long n)
{
    double w[S_MAX_ROUNDS];
    memcpy(w, v, (size_t)n * sizeof *w);
    qsort(w, (size_t)n, sizeof *w, s_cmp_double);
    return n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
}

/* Peak resident memory since the last s_peak_reset(), MB (VmHWM). */
static void s_peak_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static double s_peak_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = strtod(line + 6, NULL);
    if (f)
        fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = (double)ru.ru_maxrss;
    }
    return kb / 1024.0;
}

static double s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void s_loadavg(void)
{
    FILE *f = fopen("/proc/loadavg", "r");
    char line[128];
    if (f && fgets(line, sizeof line, f))
        printf("# load average %s", line);
    if (f)
        fclose(f);
}

/* Loads a fresh file of rows rows (order 1: reversed); returns seconds, -1
 * on failure; *peak gets the peak memory of the load. */
static double s_ingest(PGconn *c, long rows, long npoints, int order, const char *what, double *peak, long *stored)
{
    char path[] = "/tmp/pcf-bench-ingest-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    close(fd);
    if (s_make_csv(path, rows, npoints, order)) {
        fprintf(stderr, "bench_ingest: cannot write %s\n", path);
        unlink(path);
        return -1;
    }
    load_report rep;
    pcf_error e;
    s_peak_reset();
    double cpu = s_cpu(), t = s_now();
    pcf_rc rc = load_scada_file(c, path, "bench.csv", &rep, &e);
    double dt = s_now() - t;
    *peak = s_peak_mb();
    unlink(path);
    printf("# %s: %ld rows, %.2f s wall, %.2f s client CPU, %ld chunk(s), %ld fallback(s), %ld stored\n", what,
           rows, dt, s_cpu() - cpu, rep.bulk_chunks, rep.bulk_fallbacks, rep.stored);
    if (rc != PCF_OK) {
        fprintf(stderr, "bench_ingest: %s: load failed: %s\n", what, e.msg);
        return -1;
    }
    *stored = rep.stored;
    return dt;
}

int main(void)
{
    const char *host = getenv("PCF_TEST_PGHOST"), *port = getenv("PCF_TEST_PGPORT");
    if (!host || !port) {
        fprintf(stderr, "bench_ingest: PCF_TEST_PGHOST/PCF_TEST_PGPORT not set (run via bench/run.sh)\n");
        return 1;
    }
    long rows = s_env("PCF_BENCH_ROWS", 500000, 1000, 100000000);
    long big = s_env("PCF_BENCH_BIG_ROWS", 3000000, 0, 100000000);
    long npoints = s_env("PCF_BENCH_POINTS", 1000, 1, 1000000);
    long rounds = s_env("PCF_BENCH_ROUNDS", 3, 1, S_MAX_ROUNDS);
    PGconn *adm = s_connect(host, port, "postgres");
    if (!adm || s_exec(adm, "DROP DATABASE IF EXISTS pcf_bench_ingest") || s_exec(adm, "CREATE DATABASE pcf_bench_ingest"))
        return 1;
    PQfinish(adm);
    PGconn *c = s_connect(host, port, "pcf_bench_ingest");
    if (!c || s_setup(c, npoints))
        return 1;
    s_loadavg();
    printf("# %ld points\n", npoints);

    /* Rounds of ingest, psql into the real table, psql into the plain one,
     * each into an empty table, interleaved so that a burst of load from
     * elsewhere hits all three alike; the medians are reported. */
    double t_ing[S_MAX_ROUNDS], t_psql[S_MAX_ROUNDS], t_plain[S_MAX_ROUNDS], peak = 0, peak_rerun, peak_big = 0;
    long stored, stored_rerun, stored_big = 0;
    for (long k = 0; k < rounds; k++) {
        if (s_exec(c, "TRUNCATE measurement, bench_plain, ingest_batch CASCADE"))
            return 1;
        double pk;
        t_ing[k] = s_ingest(c, rows, npoints, 0, "ingest", &pk, &stored);
        if (t_ing[k] < 0 || stored != rows)
            return 1;
        peak = pk > peak ? pk : peak;
        char path[] = "/tmp/pcf-bench-ingest-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0)
            return 1;
        close(fd);
        if (s_make_csv(path, rows, npoints, 0) || s_exec(c, "TRUNCATE measurement")) {
            unlink(path);
            return 1;
        }
        t_psql[k] = s_psql(host, port, "measurement (ts, point_id, value, quality)", path);
        t_plain[k] = s_psql(host, port, "bench_plain", path);
        unlink(path);
        if (t_psql[k] < 0 || t_plain[k] < 0) {
            fprintf(stderr, "bench_ingest: psql \\copy failed\n");
            return 1;
        }
        printf("# round %ld: ingest %.0f, psql %.0f, psql plain %.0f rows/s\n", k + 1, rows / t_ing[k],
               rows / t_psql[k], rows / t_plain[k]);
    }
    double dt_ingest = s_median(t_ing, rounds), dt_psql = s_median(t_psql, rounds), dt_plain = s_median(t_plain, rounds);
    /* The measurement table now holds psql's copy of the rows (batch 0):
     * the rerun overlaps every one of them. */
    double dt_rerun = s_ingest(c, rows, npoints, 1, "rerun (same rows, reversed)", &peak_rerun, &stored_rerun);
    if (dt_rerun < 0 || stored_rerun != 0)
        return 1;
    double dt_big = 0;
    if (big > 0) {
        if (s_exec(c, "TRUNCATE measurement"))
            return 1;
        dt_big = s_ingest(c, big, npoints, 0, "big", &peak_big, &stored_big);
        if (dt_big < 0 || stored_big != big)
            return 1;
    }
    s_loadavg();
    double ingest_rate = rows / dt_ingest, psql_rate = rows / dt_psql, plain_rate = rows / dt_plain;
    printf("BENCH ingest_scada_rows_per_s %.0f rows/s\n", ingest_rate);
    printf("BENCH psql_copy_rows_per_s %.0f rows/s\n", psql_rate);
    printf("BENCH ingest_vs_psql_ratio %.3f ratio\n", ingest_rate / psql_rate);
    printf("BENCH psql_copy_plain_rows_per_s %.0f rows/s\n", plain_rate);
    printf("BENCH ingest_vs_psql_plain_ratio %.3f ratio\n", ingest_rate / plain_rate);
    printf("BENCH ingest_peak_rss_mb %.1f MB\n", peak);
    printf("BENCH ingest_rerun_rows_per_s %.0f rows/s\n", rows / dt_rerun);
    if (big > 0) {
        printf("BENCH ingest_scada_big_rows_per_s %.0f rows/s\n", big / dt_big);
        printf("BENCH ingest_big_peak_rss_mb %.1f MB\n", peak_big);
    }
    PQfinish(c);
    adm = s_connect(host, port, "postgres");
    if (adm) {
        s_exec(adm, "DROP DATABASE IF EXISTS pcf_bench_ingest");
        PQfinish(adm);
    }
    return 0;
}
