/* test_obs.c -- the daemons' metrics and logs end to end: real processes,
 * real PostgreSQL, scraped over HTTP.  Ingest counters follow files loaded
 * and refused and a killed connection. */
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

static pid_t g_child;                   /* killed by s_fini if a test fails */

static void s_fini(void)
{
    if (g_child > 0) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
        g_child = 0;
    }
}

static void s_put(const char *dir, const char *name, const char *text)
{
    char tmp[700], path[700];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
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

static void s_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 200 && w == 0; i++) {
        w = waitpid(pid, &st, WNOHANG);
        if (w == 0) usleep(50000);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    g_child = 0;
    cr_assert(w != 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon did not stop cleanly");
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

Test(obs, ingest_counters_follow_files_and_reconnects, .fini = s_fini)
{
    testdb db;
    testdb_create(&db, "obsingest");
    pcf_error e;
    PGconn *c = db_connect(db.conninfo, &e);
    cr_assert_not_null(c, "%s", e.msg);
    int applied;
    cr_assert_eq(migrate_apply(c, 0, NULL, NULL, &applied, &e), PCF_OK, "%s", e.msg);
    testdb_exec(c, "INSERT INTO zone (zone_id, base_mva) VALUES ('z', 100);"
                   "INSERT INTO bus (zone_id, bus_i, row_no, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, "
                   "loss_zone, vmax, vmin) VALUES ('z', 1, 1, 3, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9);"
                   "INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i) "
                   "VALUES ('V1', 'z', 'v_kv', 'bus', 1);");

    char dir[] = "/tmp/pcf-obs-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char in[600], conf[600], log[600];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(conf, sizeof conf, "%s/pcf.conf", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
    int port = testhttp_free_port();
    cr_assert_gt(port, 0);
    FILE *f = fopen(conf, "w");
    fprintf(f, "[database]\nconninfo = %s application_name=pcf-obs-test\n"
               "[source hist]\nkind = scada\ndirectory = %s\npoll_seconds = 1\n"
               "[metrics]\nport = %d\naddress = 127.0.0.1\n", db.conninfo, in, port);
    fclose(f);

    char bin[600];
    snprintf(bin, sizeof bin, "%s/pcf-ingest", testdb_bindir());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr)) _exit(126);
        execl(bin, bin, "--config", conf, "--log-level", "debug", (char *)NULL);
        _exit(127);
    }
    g_child = pid;
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
    PQfinish(c);
    testdb_drop(&db);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
