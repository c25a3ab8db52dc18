/* test_ingest_daemon.c -- `pcf-ingest --config` as a daemon: loads files as
 * they arrive, survives its database connection being killed (reconnects
 * and resumes), and stops cleanly on SIGTERM; its /metrics counters and
 * logfmt lines follow files loaded, refused and a killed connection. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "migrate.h"
#include "testdb.h"
#include "testhttp.h"

static void s_put(const char *dir, const char *name, const char *text)
{
    char tmp[700], path[700];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);     /* the inbox protocol: appear whole */
}

static bool s_wait_file(const char *path, int seconds)
{
    struct stat st;
    for (int i = 0; i < seconds * 20; i++) {
        if (stat(path, &st) == 0)
            return true;
        usleep(50000);
    }
    return false;
}

/* A migrated database with zone z, its bus 1 and measurement point V1. */
static PGconn *s_db(testdb *db, const char *tag)
{
    testdb_create(db, tag);
    pcf_error e;
    PGconn *c = db_connect(db->conninfo, &e);
    cr_assert_not_null(c, "%s", e.msg);
    int applied;
    cr_assert_eq(migrate_apply(c, 0, NULL, NULL, &applied, &e), PCF_OK, "%s", e.msg);
    testdb_exec(c, "INSERT INTO zone (zone_id, base_mva) VALUES ('z', 100);"
                   "INSERT INTO bus (zone_id, bus_i, row_no, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, "
                   "loss_zone, vmax, vmin) VALUES ('z', 1, 1, 3, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9);"
                   "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i) "
                   "VALUES ('V1', 'z', 'v_kv', 'bus', 1);");
    return c;
}

/* Makes dir (a mkdtemp template) with an inbox dir/in, the configuration
 * dir/pcf.conf (one scada source polled every second, then `extra`) and
 * the log's path dir/log; in, conf and log hold 600 bytes. */
static void s_layout(char *dir, char *in, char *conf, char *log, const testdb *db, const char *app,
                     const char *extra)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(in, 600, "%s/in", dir);
    snprintf(conf, 600, "%s/pcf.conf", dir);
    snprintf(log, 600, "%s/log", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fprintf(f, "[database]\nconninfo = %s application_name=%s\n"
               "[source hist]\nkind = scada\ndirectory = %s\npoll_seconds = 1\n%s", db->conninfo, app, in, extra);
    fclose(f);
}

static void s_teardown(PGconn *c, testdb *db, const char *dir)
{
    PQfinish(c);
    testdb_drop(db);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

static pid_t g_child;                   /* killed by s_fini if a test fails */

static void s_fini(void)
{
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
        g_child = 0;
    }
}

/* Starts `pcf-ingest --config conf arg1 arg2` with stderr to log. */
static pid_t s_start(const char *conf, const char *log, const char *arg1, const char *arg2)
{
    char bin[600];
    snprintf(bin, sizeof bin, "%s/pcf-ingest", testdb_bindir());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(126);
        execl(bin, bin, "--config", conf, arg1, arg2, (char *)NULL);
        _exit(127);
    }
    g_child = pid;
    return pid;
}

/* SIGTERM, then up to 10 s (bounded: no Criterion timeout needed) for a
 * clean exit; s_fini kills it otherwise. */
static void s_stop(pid_t pid)
{
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 200 && w == 0; i++) {
        w = waitpid(pid, &st, WNOHANG);
        if (w == 0)
            usleep(50000);
    }
    if (w == 0)
        cr_assert_fail("daemon ignored SIGTERM for 10 s");
    g_child = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon did not stop cleanly");
}

static char *s_slurp(const char *path)
{
    char *text = calloc(1, 1 << 16);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(text, 1, (1 << 16) - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

Test(ingest_daemon, loads_reconnects_and_stops, .fini = s_fini)
{
    testdb db;
    PGconn *c = s_db(&db, "daemon");

    char dir[] = "/tmp/pcf-daemon-XXXXXX", in[600], conf[600], log[600];
    s_layout(dir, in, conf, log, &db, "pcf-ingest-test", "");

    /* no metrics endpoint: the default port may be held by a parallel test */
    pid_t pid = s_start(conf, log, "--metrics-port", "0");

    s_put(in, "a.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,V1,33,good\n");
    char done[700];
    snprintf(done, sizeof done, "%s/done/a.csv", in);
    if (!s_wait_file(done, 30))
        cr_assert_fail("first file not loaded");

    /* Kill the daemon's database session: the next pass must reconnect. */
    testdb_exec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE application_name = 'pcf-ingest-test'");
    s_put(in, "b.csv", "timestamp,point_id,value,quality\n2026-01-01T00:30Z,V1,34,good\n");
    snprintf(done, sizeof done, "%s/done/b.csv", in);
    if (!s_wait_file(done, 60))
        cr_assert_fail("second file not loaded after the connection was killed");

    char v[32];
    testdb_scalar(c, "SELECT count(*) FROM measurement", v, sizeof v);
    cr_assert_str_eq(v, "2");
    s_stop(pid);
    char *text = s_slurp(log);
    cr_assert(strstr(text, "msg=stopped") != NULL, "%s", text);
    free(text);
    s_teardown(c, &db, dir);
}

/* Scrapes until `series` reaches at least `want` (or 30 s pass); returns
 * the last text (caller frees). */
static char *s_wait_sample(int port, const char *series, double want)
{
    char *t = NULL;
    for (int i = 0; i < 300; i++) {
        free(t);
        t = testhttp_scrape(port, 5);
        double v = t ? testhttp_sample(t, series) : NAN;
        if (!isnan(v) && v >= want) break;
        usleep(100000);
    }
    return t;
}

Test(ingest_daemon, metrics_and_logs_follow_files_and_reconnects, .fini = s_fini)
{
    testdb db;
    PGconn *c = s_db(&db, "obsingest");

    int port = testhttp_free_port();
    cr_assert_gt(port, 0);
    char dir[] = "/tmp/pcf-obs-XXXXXX", in[600], conf[600], log[600], metrics[80];
    snprintf(metrics, sizeof metrics, "[metrics]\nport = %d\naddress = 127.0.0.1\n", port);
    s_layout(dir, in, conf, log, &db, "pcf-obs-test", metrics);

    pid_t pid = s_start(conf, log, "--log-level", "debug");
    /* before any file: the endpoint answers, nothing counted (a series
     * appears, at 0, after the first pass over the empty inbox) */
    char *t = testhttp_scrape(port, 20);
    cr_assert_not_null(t, "no /metrics on port %d", port);
    cr_assert_not_null(strstr(t, "# TYPE pcf_ingest_rows_total counter\n"), "%s", t);
    double rows0 = testhttp_sample(t, "pcf_ingest_rows_total{source=\"hist\",kind=\"scada\"}");
    cr_assert(isnan(rows0) || rows0 == 0, "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_db_reconnects_total"), 0, "%s", t);
    cr_assert_gt(testhttp_sample(t, "process_resident_memory_bytes"), 0, "%s", t);
    free(t);

    s_put(in, "a.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,V1,33,good\n"
                       "2026-01-01T00:30Z,V1,33.5,good\n");
    s_put(in, "b.csv", "timestamp,point_id,value,quality\n2026-01-01T01:00Z,NOPE,1,good\n");
    t = s_wait_sample(port, "pcf_ingest_inputs_total{source=\"hist\",kind=\"scada\",outcome=\"refused\"}", 1);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_rows_total{source=\"hist\",kind=\"scada\"}"), 2, "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_inputs_total{source=\"hist\",kind=\"scada\",outcome=\"loaded\"}"), 1,
                 "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_inputs_total{source=\"hist\",kind=\"scada\",outcome=\"refused\"}"),
                 1, "%s", t);
    cr_assert_geq(testhttp_sample(t, "pcf_ingest_rows_quarantined_total{source=\"hist\",kind=\"scada\"}"), 1, "%s",
                  t);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_load_seconds_count{source=\"hist\",kind=\"scada\"}"), 2, "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_db_connected"), 1, "%s", t);
    free(t);

    /* a killed session: the next pass fails, the daemon reconnects */
    testdb_exec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE application_name = 'pcf-obs-test'");
    s_put(in, "c.csv", "timestamp,point_id,value,quality\n2026-01-01T02:00Z,V1,34,good\n");
    t = s_wait_sample(port, "pcf_ingest_rows_total{source=\"hist\",kind=\"scada\"}", 3);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_rows_total{source=\"hist\",kind=\"scada\"}"), 3, "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_ingest_db_reconnects_total"), 1, "%s", t);
    free(t);
    s_stop(pid);

    char *text = s_slurp(log);
    cr_assert_not_null(strstr(text, "level=info component=ingest msg=\"input loaded\" source=hist kind=scada "
                                    "input=a.csv rows=2 quarantined=0"), "%s", text);
    /* the refusal keeps the parser's location as fields */
    cr_assert_not_null(strstr(text, "msg=\"input refused\" file=b.csv line=2 "), "%s", text);
    cr_assert_not_null(strstr(text, "msg=stopped"), "%s", text);
    free(text);
    s_teardown(c, &db, dir);
}
