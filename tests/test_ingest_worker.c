/* test_ingest_worker.c -- configuration, inbox passes (done/failed/.errors,
 * restart after a crash between commit and move), `pcf-ingest once`, and
 * HTTP fetching against a local server (200/404/500/timeout/garbage/
 * truncated/flaky). */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "fetch.h"
#include "ingest_config.h"
#include "load.h"
#include "migrate.h"
#include "testdb.h"
#include "worker.h"

static char *s_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *b = calloc(1, 1 << 20);
    *len = fread(b, 1, (1 << 20) - 1, f);
    fclose(f);
    return b;
}

static PGconn *s_db(testdb *db, const char *tag)
{
    testdb_create(db, tag);
    pcf_error e;
    PGconn *c = db_connect(db->conninfo, &e);
    cr_assert_not_null(c, "%s", e.msg);
    int applied;
    cr_assert_eq(migrate_apply(c, 0, NULL, NULL, &applied, &e), PCF_OK, "%s", e.msg);
    size_t len;
    char *sql = s_read("tests/data/ingest/network.sql", &len);
    cr_assert_not_null(sql);
    testdb_exec(c, sql);
    free(sql);
    return c;
}

static long s_n(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}

static void s_write(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f, "%s", p);
    fputs(text, f);
    fclose(f);
}

static bool s_exists(const char *dir, const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat st;
    return stat(p, &st) == 0;
}

static void s_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* ---- configuration ----------------------------------------------------- */

Test(ingest_worker, example_config_parses)
{
    static ingest_config cfg;
    pcf_error e;
    cr_assert_eq(ingest_config_load("deploy/pcf.conf", &cfg, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(cfg.nsources, 6);
    cr_assert_str_eq(ingest_config_find(&cfg, "gateways")->endpoint, "tcp://127.0.0.1:5558");
    const ingest_source *s = ingest_config_find(&cfg, "wx-forecast");
    cr_assert_not_null(s);
    cr_assert_eq(s->kind, INGEST_OPENMETEO);
    cr_assert_eq(s->nlocations, 2);
    cr_assert_str_eq(s->locations[1], "ninfield");
    cr_assert_eq(s->backoff_ms, 2000);
    cr_assert_str_eq(s->url, "https://api.open-meteo.com/v1/forecast?latitude=50.83,50.87&longitude=-0.14,0.42"
                             "&hourly=temperature_2m,shortwave_radiation,direct_normal_irradiance,diffuse_radiation"
                             ",cloud_cover,wind_speed_10m,wind_speed_100m,wind_direction_100m"
                             "&timezone=GMT&forecast_days=3");
    cr_assert_eq(ingest_config_find(&cfg, "historian")->poll_seconds, 10);
    cr_assert_str_eq(cfg.conninfo, "dbname=pcf");
    cr_assert_null(ingest_config_find(&cfg, "nope"));
}

static pcf_rc s_cfg_text(const char *text, pcf_error *e)
{
    static ingest_config cfg;
    char path[] = "/tmp/pcf-cfg-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    pcf_rc rc = ingest_config_load(path, &cfg, e);
    unlink(path);
    return rc;
}

Test(ingest_worker, config_errors_name_the_line)
{
    pcf_error e;
    cr_assert_eq(s_cfg_text("[source a]\nkind = scada\ndirectroy = /x\n", &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, ":3: ") && strstr(e.msg, "unknown key 'directroy'"), "%s", e.msg);
    cr_assert_eq(s_cfg_text("[source a]\nkind = scada\ndirectory = /x\npoll_seconds = 10x\n", &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, ":4: ") && strstr(e.msg, "poll_seconds"), "%s", e.msg);
    cr_assert_eq(s_cfg_text("[source a]\nkind = scada\ndirectory = /x\nretries = 99\n", &e), PCF_ERR_PARSE);
    cr_assert_eq(s_cfg_text("[source a]\nkind = ftp\n", &e), PCF_ERR_PARSE);
    cr_assert_eq(s_cfg_text("[source a]\nkind = scada\n", &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "needs a directory") != NULL, "%s", e.msg);
    cr_assert_eq(s_cfg_text("[source a]\nkind = openmeteo\nurl = http://x\n", &e), PCF_ERR_PARSE);
    cr_assert_eq(s_cfg_text("[source a b]\nkind = scada\n", &e), PCF_ERR_PARSE);
    cr_assert_eq(s_cfg_text("[source a]\nkind = scada_zmq\n", &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "needs an endpoint") != NULL, "%s", e.msg);
    cr_assert_eq(s_cfg_text("[misc]\nx = 1\n", &e), PCF_ERR_PARSE);
    cr_assert_eq(s_cfg_text("no section line\n", &e), PCF_ERR_PARSE);
    pcf_error e2;
    static ingest_config cfg;
    cr_assert_eq(ingest_config_load("/nonexistent/pcf.conf", &cfg, &e2), PCF_ERR_IO);
}

/* ---- inbox passes ------------------------------------------------------ */

static ingest_source s_dir_source(const char *dir, ingest_kind kind)
{
    ingest_source s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "t");
    s.kind = kind;
    snprintf(s.directory, sizeof s.directory, "%s", dir);
    s.poll_seconds = 1;
    return s;
}

Test(ingest_worker, inbox_moves_files_after_commit)
{
    testdb db;
    PGconn *c = s_db(&db, "wk_inbox");
    char dir[] = "/tmp/pcf-inbox-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    s_write(dir, "a.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n");
    s_write(dir, "b.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,2,good\n"
                          "2026-01-01T00:30Z,NOPE,1,good\n");
    s_write(dir, "c.csv", "wrong,header\n");
    s_write(dir, "d.csv.tmp", "timestamp,point_id,value,quality\n");    /* still being written */
    ingest_source src = s_dir_source(dir, INGEST_SCADA);
    worker_result res;
    pcf_error e;
    cr_assert_eq(worker_run_source(c, &src, NULL, NULL, &res, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(res.loaded, 1);
    cr_assert_eq(res.refused, 2);
    cr_assert(s_exists(dir, "done/a.csv"));
    cr_assert(s_exists(dir, "failed/b.csv"));
    cr_assert(s_exists(dir, "failed/b.csv.errors"));
    cr_assert(s_exists(dir, "failed/c.csv.errors"));
    cr_assert(s_exists(dir, "d.csv.tmp"));
    cr_assert(!s_exists(dir, "a.csv"));
    char p[600];
    snprintf(p, sizeof p, "%s/failed/b.csv.errors", dir);
    size_t len;
    char *txt = s_read(p, &len);
    cr_assert_not_null(txt);
    cr_assert(strstr(txt, "b.csv:3: point_id: unknown measurement point") != NULL, "%s", txt);
    free(txt);
    snprintf(p, sizeof p, "%s/failed/c.csv.errors", dir);
    txt = s_read(p, &len);
    cr_assert(strstr(txt, "c.csv:1: wrong header") != NULL, "%s", txt);
    free(txt);
    cr_assert_eq(s_n(c, "SELECT count(*) FROM measurement"), 1);
    cr_assert_eq(s_n(c, "SELECT value FROM measurement"), 1, "b.csv's good row was not loaded");
    /* Nothing left to do: a second pass changes nothing. */
    cr_assert_eq(worker_run_source(c, &src, NULL, NULL, &res, &e), PCF_OK);
    cr_assert_eq(res.loaded + res.refused + res.already, 0);
    s_rmtree(dir);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_worker, restart_after_commit_before_move)
{
    /* A crash after COMMIT but before the rename leaves the file in the
     * inbox: the next pass recognises it and only moves it. */
    testdb db;
    PGconn *c = s_db(&db, "wk_restart");
    char dir[] = "/tmp/pcf-inbox-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    s_write(dir, "a.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n");
    char p[600];
    snprintf(p, sizeof p, "%s/a.csv", dir);
    load_report rep;
    pcf_error e;
    cr_assert_eq(load_scada_file(c, p, "a.csv", &rep, &e), PCF_OK, "%s", e.msg);
    ingest_source src = s_dir_source(dir, INGEST_SCADA);
    worker_result res;
    cr_assert_eq(worker_run_source(c, &src, NULL, NULL, &res, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(res.already, 1);
    cr_assert_eq(res.loaded, 0);
    cr_assert(s_exists(dir, "done/a.csv"));
    cr_assert_eq(s_n(c, "SELECT count(*) FROM measurement"), 1);
    cr_assert_eq(s_n(c, "SELECT count(*) FROM ingest_batch"), 1);
    s_rmtree(dir);
    PQfinish(c);
    testdb_drop(&db);
}

Test(ingest_worker, missing_inbox_is_an_io_error)
{
    testdb db;
    PGconn *c = s_db(&db, "wk_noinbox");
    ingest_source src = s_dir_source("/nonexistent/inbox", INGEST_SCADA);
    worker_result res;
    pcf_error e;
    cr_assert_eq(worker_run_source(c, &src, NULL, NULL, &res, &e), PCF_ERR_IO);
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- pcf-ingest once --------------------------------------------------- */

Test(ingest_worker, cli_once_and_exit_codes)
{
    testdb db;
    PGconn *c = s_db(&db, "wk_cli");
    char dir[] = "/tmp/pcf-inbox-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char conf[700], text[1400];
    snprintf(conf, sizeof conf, "%s/pcf.conf", dir);
    snprintf(text, sizeof text, "%s/in", dir);
    cr_assert_eq(mkdir(text, 0755), 0);
    snprintf(text, sizeof text, "[database]\nconninfo = %s\n\n[source hist]\nkind = scada\ndirectory = %s/in\n"
                                "[source out]\nkind = outage_json\ndirectory = %s/in\n",
             db.conninfo, dir, dir);
    FILE *f = fopen(conf, "w");
    fputs(text, f);
    fclose(f);
    char in[600];
    snprintf(in, sizeof in, "%s/in", dir);
    s_write(in, "h1.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,1,good\n");
    char cmd[1600], out[4096];
    snprintf(cmd, sizeof cmd, "%s/pcf-ingest once --config %s hist", testdb_bindir(), conf);
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "msg=\"pass done\" source=hist loaded=1 ") != NULL, "%s", out);    /* log.h lines */
    s_write(in, "h2.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,GT1_P,NaN,good\n");
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "file=h2.csv line=2 error=\"value") != NULL, "%s", out);
    snprintf(cmd, sizeof cmd, "%s/pcf-ingest once --config %s nosuch", testdb_bindir(), conf);
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 2, "%s", out);
    snprintf(cmd, sizeof cmd, "%s/pcf-ingest once", testdb_bindir());
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 2, "%s", out);
    snprintf(cmd, sizeof cmd, "%s/pcf-ingest --help", testdb_bindir());
    cr_assert_eq(testdb_run(&db, cmd, out, sizeof out), 0);
    cr_assert(strstr(out, "once --config FILE SOURCE") != NULL);
    cr_assert_eq(s_n(c, "SELECT count(*) FROM measurement"), 1);
    s_rmtree(dir);
    PQfinish(c);
    testdb_drop(&db);
}

/* ---- HTTP -------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int in_fd;
    int port;
} s_httpd;

static s_httpd s_httpd_start(void)
{
    int to_child[2], from_child[2];
    cr_assert_eq(pipe(to_child), 0);
    cr_assert_eq(pipe(from_child), 0);
    s_httpd h = {0};
    h.pid = fork();
    cr_assert_geq(h.pid, 0);
    if (h.pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[1]);
        close(from_child[0]);
        execlp("python3", "python3", "tests/data/ingest/httpd.py", (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    h.in_fd = to_child[1];
    char buf[32] = {0};
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t k = read(from_child[0], buf + n, 1);
        if (k <= 0 || buf[n] == '\n')
            break;
        n++;
    }
    close(from_child[0]);
    h.port = atoi(buf);     /* our own helper's output, checked just below */
    cr_assert_gt(h.port, 0, "test HTTP server did not start");
    return h;
}

static void s_httpd_stop(s_httpd *h)
{
    close(h->in_fd);        /* the server exits when its stdin closes */
    int st;
    if (waitpid(h->pid, &st, 0) != h->pid)
        kill(h->pid, SIGTERM);
}

static pcf_rc s_get(const s_httpd *h, const char *path, int timeout, int retries, char **body, size_t *len,
                    int *attempts, pcf_error *e)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", h->port, path);
    fetch_opts o = {timeout, retries, 10, 1 << 20};
    *attempts = 0;
    return fetch_url(url, &o, NULL, NULL, body, len, e);
}

/* Counts failed attempts; each is one structured note: a constant phrase,
 * the error, and its place in the series as fields (review: the details
 * were in the message). */
static void s_count_log(void *ctx, const ingest_note *n)
{
    int *fails = ctx;
    (*fails)++;
    cr_assert_str_eq(n->msg, "fetch attempt failed");
    cr_assert_not_null(n->err);
    cr_assert_eq(n->err->code, PCF_ERR_NET);
    char k[16];
    snprintf(k, sizeof k, "%d", *fails);
    cr_assert_str_eq(ingest_note_get(n, "attempt"), k);
    cr_assert_not_null(ingest_note_get(n, "attempts"));
    const char *retry = ingest_note_get(n, "retry");
    cr_assert(retry && (strcmp(retry, "yes") == 0) == (n->level == PCF_LOG_WARN), "retry=%s", retry);
}

static pcf_rc s_get_logged(const s_httpd *h, const char *path, int timeout, int retries, char **body,
                           size_t *len, int *failures, pcf_error *e)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", h->port, path);
    fetch_opts o = {timeout, retries, 10, 1 << 20};
    *failures = 0;
    return fetch_url(url, &o, s_count_log, failures, body, len, e);
}

Test(ingest_worker, http_fetch_cases)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_httpd h = s_httpd_start();
    char *body = NULL;
    size_t len = 0;
    int fails = 0;
    pcf_error e;
    cr_assert_eq(s_get(&h, "/ok/om_forecast_amsterdam.json", 5, 0, &body, &len, &fails, &e), PCF_OK, "%s", e.msg);
    cr_assert(len > 100 && strstr(body, "wind_speed_100m") != NULL);
    free(body);

    cr_assert_eq(s_get_logged(&h, "/404", 5, 3, &body, &len, &fails, &e), PCF_ERR_NET);
    cr_assert(strstr(e.msg, "HTTP 404: Not Found") != NULL, "%s", e.msg);
    cr_assert_eq(fails, 1, "a 404 is not retried");

    cr_assert_eq(s_get_logged(&h, "/400", 5, 3, &body, &len, &fails, &e), PCF_ERR_NET);
    cr_assert(strstr(e.msg, "Parameter hourly is invalid") != NULL, "%s", e.msg);

    cr_assert_eq(s_get_logged(&h, "/500", 5, 2, &body, &len, &fails, &e), PCF_ERR_NET);
    cr_assert(strstr(e.msg, "HTTP 500") != NULL, "%s", e.msg);
    cr_assert_eq(fails, 3, "500 is retried");

    cr_assert_eq(s_get_logged(&h, "/slow", 1, 0, &body, &len, &fails, &e), PCF_ERR_NET);
    cr_assert(strstr(e.msg, "imeout") != NULL || strstr(e.msg, "timed out") != NULL, "%s", e.msg);

    cr_assert_eq(s_get_logged(&h, "/truncated", 2, 1, &body, &len, &fails, &e), PCF_ERR_NET, "%s", e.msg);
    cr_assert_eq(fails, 2);

    cr_assert_eq(s_get_logged(&h, "/flaky/om_error.json", 5, 2, &body, &len, &fails, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(fails, 1, "first 503, then served");
    free(body);

    /* Garbage arrives with 200: fetch succeeds, the parser refuses it. */
    cr_assert_eq(s_get(&h, "/garbage", 5, 0, &body, &len, &fails, &e), PCF_OK);
    cr_assert(strstr(body, "<html>") != NULL);
    free(body);
    s_httpd_stop(&h);
    curl_global_cleanup();
}

static ingest_source s_wx_source(int port, const char *path, const char *loc)
{
    ingest_source s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "wx");
    s.kind = INGEST_OPENMETEO;
    snprintf(s.url, sizeof s.url, "http://127.0.0.1:%d%s", port, path);
    snprintf(s.locations[0], sizeof s.locations[0], "%s", loc);
    s.nlocations = 1;
    snprintf(s.model, sizeof s.model, "best_match");
    s.timeout_seconds = 5;
    s.retries = 1;
    s.backoff_ms = 10;
    return s;
}

Test(ingest_worker, openmeteo_source_over_http)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    testdb db;
    PGconn *c = s_db(&db, "wk_http");
    s_httpd h = s_httpd_start();
    worker_result res;
    pcf_error e;
    ingest_source ok = s_wx_source(h.port, "/ok/om_forecast_london_autumn.json", "london");
    cr_assert_eq(worker_run_source(c, &ok, NULL, NULL, &res, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(res.loaded, 1);
    cr_assert_eq(res.rows, 8 * 48 - 1);
    const char *bad[] = {"/garbage", "/truncated", "/500", "/404", "/ok/om_error.json", "/ok/om_truncated.json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ingest_source s = s_wx_source(h.port, bad[i], "london");
        cr_assert_neq(worker_run_source(c, &s, NULL, NULL, &res, &e), PCF_OK, "%s", bad[i]);
    }
    cr_assert_eq(s_n(c, "SELECT count(*) FROM weather_forecast"), 8 * 48 - 1, "nothing else stored");
    cr_assert_eq(s_n(c, "SELECT count(*) FROM ingest_batch WHERE status = 'rejected'"), 3);
    s_httpd_stop(&h);
    PQfinish(c);
    testdb_drop(&db);
    curl_global_cleanup();
}
