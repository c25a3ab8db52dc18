/* test_obs.c -- the daemons' metrics and logs end to end: real processes,
 * real sockets, real PostgreSQL, scraped over HTTP.  Ingest counters follow
 * files loaded and refused and a killed connection; the publisher's
 * subscriber gauge follows subscribers coming and going.  (The engine
 * daemon's run counters are tested in test_scaleout.c, beside its zone
 * set-up.) */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "db.h"
#include "metrics.h"
#include "migrate.h"
#include "publish.h"
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

/* ---- the publisher ----------------------------------------------------- */

/* Polls the publisher (so it reads its monitor and requests) until the
 * scraped `series` equals want, at most 10 s; returns the last value. */
static double s_poll_until(publish *p, int port, const char *series, double want)
{
    double v = NAN;
    for (int i = 0; i < 100; i++) {
        pcf_error e;
        cr_assert_eq(publish_poll(p, NULL, -1, 100, NULL, &e), PCF_OK, "%s", e.msg);
        char *t = testhttp_scrape(port, 5);
        v = t ? testhttp_sample(t, series) : NAN;
        free(t);
        if (v == want) break;
    }
    return v;
}

Test(obs, publisher_counts_subscribers_messages_and_requests)
{
    metrics *m = metrics_new();
    publish_config cfg = {
        .pub_endpoint = "tcp://127.0.0.1:*",
        .router_endpoint = "tcp://127.0.0.1:*",
        .heartbeat_ms = 200,
        .metrics = m,
    };
    pcf_error e;
    publish *p = publish_new(&cfg, &e);
    cr_assert_not_null(p, "%s", e.msg);
    metrics_http *h = metrics_http_start(m, NULL, 0, &e);
    cr_assert_not_null(h, "%s", e.msg);
    int port = metrics_http_port(h);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 0), 0);

    void *ctx = zmq_ctx_new();
    void *sub1 = zmq_socket(ctx, ZMQ_SUB), *sub2 = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub1, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub2, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_connect(sub1, publish_pub_endpoint(p)), 0);
    cr_assert_eq(zmq_connect(sub2, publish_pub_endpoint(p)), 0);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 2), 2);
    zmq_close(sub1);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 1), 1);
    zmq_close(sub2);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 0), 0);

    /* heartbeats are feed messages on topic "hb" */
    cr_assert_geq(s_poll_until(p, port, "pcf_publish_messages_total{topic=\"hb\"}", 3), 3);

    /* a request of an unknown type: answered with an error, counted as
     * "other" (client-chosen strings never become labels) */
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_connect(dealer, publish_router_endpoint(p)), 0);
    zmq_send(dealer, "", 0, ZMQ_SNDMORE);
    zmq_send(dealer, "x.Evil\"Type", 11, ZMQ_SNDMORE);
    zmq_send(dealer, "", 0, 0);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_request_errors_total{type=\"other\"}", 1), 1);
    char *t = testhttp_scrape(port, 5);
    cr_assert_eq(testhttp_sample(t, "pcf_publish_requests_total{type=\"other\"}"), 1, "%s", t);
    cr_assert_null(strstr(t, "Evil"), "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_publish_subscriber_connections_total"), 2, "%s", t);
    free(t);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
    metrics_http_stop(&h);
    publish_destroy(&p);
    metrics_destroy(&m);
}
