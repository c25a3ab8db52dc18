/*
 * bench_ingest.c -- SCADA CSV ingest throughput against PostgreSQL, and the
 * same file loaded by `psql -c "\copy ..."` in the same run for comparison.
 *
 * Uses the private server of bench/run.sh (PCF_TEST_PGHOST/PORT).  Makes a
 * fresh database, applies the migrations, creates PCF_BENCH_POINTS
 * measurement points (default 1000) and a historian CSV of PCF_BENCH_ROWS
 * rows (default 500000, half-hourly values, points interleaved), then:
 *   ingest_scada_rows_per_s  load_scada_file: parse, COPY to staging,
 *                            validation, upsert into the partitioned table
 *   psql_copy_rows_per_s     \copy of the same file into a table with the
 *                            same constraints as measurement (partitioned,
 *                            primary key, foreign key to measurement_point,
 *                            CHECKs) -- what PostgreSQL itself can do
 *   ingest_vs_psql_ratio     the first over the second
 *   psql_copy_plain_rows_per_s, ingest_vs_psql_plain_ratio: the same against
 *                            a plain table with only the primary key
 *   ingest_peak_rss_mb       peak resident memory of this process
 * Prints BENCH lines (bench/run.sh).
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
             "CREATE TABLE bench_same (timestamp timestamptz NOT NULL, "
             "point_id text NOT NULL REFERENCES measurement_point, "
             "value double precision NOT NULL CHECK (value > '-Infinity' AND value < 'Infinity'), "
             "quality text NOT NULL CHECK (quality IN ('good', 'uncertain', 'bad', 'suspect', 'substituted')), "
             "PRIMARY KEY (point_id, timestamp)) PARTITION BY RANGE (timestamp);"
             "CREATE TABLE bench_same_p PARTITION OF bench_same FOR VALUES FROM ('2000-01-01Z') TO ('2100-01-01Z');",
             npoints - 1);
    return s_exec(c, sql);
}

static int s_make_csv(const char *path, long rows, long npoints)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("timestamp,point_id,value,quality\n", f);
    int64_t t0 = 1767225600;    /* 2026-01-01T00:00Z */
    char ts[SPTIME_ISO_LEN];
    for (long i = 0; i < rows; i++) {
        long p = i % npoints, step = i / npoints;
        sptime_format_utc(t0 + step * 1800, ts, sizeof ts);
        fprintf(f, "%s,P%ld,%.3f,%s\n", ts, p, 30.0 + (double)((i * 7919) % 1000) / 100.0,
                (i % 50) ? "good" : "suspect");
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Seconds psql takes to \\copy the file into table; -1 on failure. */
static double s_psql(const char *host, const char *port, const char *table, const char *path)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "psql -q -X -v ON_ERROR_STOP=1 -h '%s' -p '%s' -U postgres -d pcf_bench_ingest "
             "-c \"\\copy %s FROM '%s' WITH (FORMAT csv, HEADER true)\"",
             host, port, table, path);
    double t = s_now();
    int rc = system(cmd);
    return rc == 0 ? s_now() - t : -1;
}

int main(void)
{
    const char *host = getenv("PCF_TEST_PGHOST"), *port = getenv("PCF_TEST_PGPORT");
    if (!host || !port) {
        fprintf(stderr, "bench_ingest: PCF_TEST_PGHOST/PCF_TEST_PGPORT not set (run via bench/run.sh)\n");
        return 1;
    }
    long rows = s_env("PCF_BENCH_ROWS", 500000, 1000, 100000000);
    long npoints = s_env("PCF_BENCH_POINTS", 1000, 1, 1000000);
    PGconn *adm = s_connect(host, port, "postgres");
    if (!adm || s_exec(adm, "DROP DATABASE IF EXISTS pcf_bench_ingest") || s_exec(adm, "CREATE DATABASE pcf_bench_ingest"))
        return 1;
    PQfinish(adm);
    PGconn *c = s_connect(host, port, "pcf_bench_ingest");
    if (!c || s_setup(c, npoints))
        return 1;
    char path[] = "/tmp/pcf-bench-ingest-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    close(fd);
    if (s_make_csv(path, rows, npoints)) {
        fprintf(stderr, "bench_ingest: cannot write %s\n", path);
        return 1;
    }
    printf("# %ld rows, %ld points, file %s\n", rows, npoints, path);

    load_report rep;
    pcf_error e;
    double t = s_now();
    pcf_rc rc = load_scada_file(c, path, "bench.csv", &rep, &e);
    double dt_ingest = s_now() - t;
    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    printf("# ingest: %.2f s wall, %.2f s client CPU\n", dt_ingest,
           ru0.ru_utime.tv_sec + ru0.ru_utime.tv_usec * 1e-6 + ru0.ru_stime.tv_sec + ru0.ru_stime.tv_usec * 1e-6);
    if (rc != PCF_OK || rep.stored != rows) {
        fprintf(stderr, "bench_ingest: load failed (%ld stored): %s\n", rep.stored, e.msg);
        unlink(path);
        return 1;
    }
    double dt_psql = s_psql(host, port, "bench_same", path), dt_plain = s_psql(host, port, "bench_plain", path);
    unlink(path);
    if (dt_psql < 0 || dt_plain < 0) {
        fprintf(stderr, "bench_ingest: psql \\copy failed\n");
        return 1;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double ingest_rate = rows / dt_ingest, psql_rate = rows / dt_psql, plain_rate = rows / dt_plain;
    printf("BENCH ingest_scada_rows_per_s %.0f rows/s\n", ingest_rate);
    printf("BENCH psql_copy_rows_per_s %.0f rows/s\n", psql_rate);
    printf("BENCH ingest_vs_psql_ratio %.3f ratio\n", ingest_rate / psql_rate);
    printf("BENCH psql_copy_plain_rows_per_s %.0f rows/s\n", plain_rate);
    printf("BENCH ingest_vs_psql_plain_ratio %.3f ratio\n", ingest_rate / plain_rate);
    printf("BENCH ingest_peak_rss_mb %.1f MB\n", ru.ru_maxrss / 1024.0);
    PQfinish(c);
    adm = s_connect(host, port, "postgres");
    if (adm) {
        s_exec(adm, "DROP DATABASE IF EXISTS pcf_bench_ingest");
        PQfinish(adm);
    }
    return 0;
}
