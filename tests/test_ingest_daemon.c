/* test_ingest_daemon.c -- `pcf-ingest --config` as a daemon: loads files as
 * they arrive, survives its database connection being killed (reconnects
 * and resumes), and stops cleanly on SIGTERM. */
#include <criterion/criterion.h>
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

Test(ingest_daemon, loads_reconnects_and_stops)
{
    testdb db;
    testdb_create(&db, "daemon");
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

    char dir[] = "/tmp/pcf-daemon-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char in[600], conf[600], log[600];
    snprintf(in, sizeof in, "%s/in", dir);
    snprintf(conf, sizeof conf, "%s/pcf.conf", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    cr_assert_eq(mkdir(in, 0755), 0);
    FILE *f = fopen(conf, "w");
    fprintf(f, "[database]\nconninfo = %s application_name=pcf-ingest-test\n"
               "[source hist]\nkind = scada\ndirectory = %s\npoll_seconds = 1\n", db.conninfo, in);
    fclose(f);

    char bin[600];
    snprintf(bin, sizeof bin, "%s/pcf-ingest", testdb_bindir());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        if (!freopen(log, "w", stderr))
            _exit(126);
        execl(bin, bin, "--config", conf, (char *)NULL);
        _exit(127);
    }

    s_put(in, "a.csv", "timestamp,point_id,value,quality\n2026-01-01T00:00Z,V1,33,good\n");
    char done[700];
    snprintf(done, sizeof done, "%s/done/a.csv", in);
    if (!s_wait_file(done, 30)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("first file not loaded");
    }

    /* Kill the daemon's database session: the next pass must reconnect. */
    testdb_exec(c, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE application_name = 'pcf-ingest-test'");
    s_put(in, "b.csv", "timestamp,point_id,value,quality\n2026-01-01T00:30Z,V1,34,good\n");
    snprintf(done, sizeof done, "%s/done/b.csv", in);
    if (!s_wait_file(done, 60)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("second file not loaded after the connection was killed");
    }

    char v[32];
    testdb_scalar(c, "SELECT count(*) FROM measurement", v, sizeof v);
    cr_assert_str_eq(v, "2");
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int st = 0;
    pid_t w = 0;
    for (int i = 0; i < 200 && w == 0; i++) {     /* bounded: no Criterion timeout needed */
        w = waitpid(pid, &st, WNOHANG);
        if (w == 0)
            usleep(50000);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("daemon ignored SIGTERM for 10 s");
    }
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "daemon did not stop cleanly");
    size_t n = 0;
    char *text = calloc(1, 1 << 16);
    f = fopen(log, "r");
    if (f) {
        n = fread(text, 1, (1 << 16) - 1, f);
        fclose(f);
    }
    cr_assert(n > 0 && strstr(text, "stopped") != NULL, "%s", text);
    free(text);

    PQfinish(c);
    testdb_drop(&db);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
