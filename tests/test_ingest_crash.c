/* test_ingest_crash.c -- kill -9 of `pcf-ingest once` in the middle of a
 * large load, then a restart: the final table equals a clean load, row for
 * row, every file ends in done/ and each is recorded exactly once. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "migrate.h"
#include "testdb.h"

/* Large enough that its COPY lasts well over the 20 ms the test waits
 * before the kill, even on the binary bulk path (~250,000 rows/s). */
#define CRASH_ROWS 150000

static PGconn *s_crash_db(testdb *db, const char *tag)
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
                   "SELECT 'P' || g, 'z', 'v_kv', 'bus', 1 FROM generate_series(0, 199) g;");
    return c;
}

/* Three inbox files: a large one between two small ones (by name). */
static void s_make_inbox(const char *in)
{
    cr_assert_eq(mkdir(in, 0755), 0);
    const char *names[] = {"a-small.csv", "b-large.csv", "c-small.csv"};
    long rows[] = {500, CRASH_ROWS, 700};
    long base[] = {0, 1000, 100000};
    for (int k = 0; k < 3; k++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", in, names[k]);
        FILE *f = fopen(p, "w");
        cr_assert_not_null(f);
        fputs("timestamp,point_id,value,quality\n", f);
        for (long i = 0; i < rows[k]; i++) {
            time_t t = (time_t)(1767225600L + (base[k] + i / 200) * 60);  /* 2026-01-01, one a minute */
            struct tm tm;
            gmtime_r(&t, &tm);
            fprintf(f, "%04d-%02d-%02dT%02d:%02d:00Z,P%ld,%ld.25,good\n", tm.tm_year + 1900, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, i % 200, (i * 31 + k) % 1000);
        }
        fclose(f);
    }
}

static void s_conf(const char *path, const char *conninfo, const char *in)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "[database]\nconninfo = %s\n[source hist]\nkind = scada\ndirectory = %s\n", conninfo, in);
    fclose(f);
}

static pid_t s_spawn(const char *conf)
{
    char bin[600];
    snprintf(bin, sizeof bin, "%s/pcf-ingest", testdb_bindir());
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "once", "--config", conf, "hist", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int s_run(const char *conf)
{
    pid_t pid = s_spawn(conf);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void s_digest(PGconn *c, char *out, size_t n)
{
    testdb_scalar(c, "SELECT count(*) || ':' || md5(string_agg(point_id || '|' || ts || '|' || value || '|' || "
                     "quality, ',' ORDER BY point_id, ts)) FROM measurement", out, n);
}

Test(ingest_crash, kill9_mid_load_then_restart_equals_clean_load)
{
    char dir[] = "/tmp/pcf-crash-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char in_a[700], in_b[700], conf_a[700], conf_b[700];
    snprintf(in_a, sizeof in_a, "%s/in-crash", dir);
    snprintf(in_b, sizeof in_b, "%s/in-clean", dir);
    s_make_inbox(in_a);
    s_make_inbox(in_b);

    testdb crash, clean;
    PGconn *cc = s_crash_db(&crash, "crash");
    PGconn *cl = s_crash_db(&clean, "clean");
    snprintf(conf_a, sizeof conf_a, "%s/a.conf", dir);
    snprintf(conf_b, sizeof conf_b, "%s/b.conf", dir);
    s_conf(conf_a, crash.conninfo, in_a);
    s_conf(conf_b, clean.conninfo, in_b);

    /* Start, wait until the large file is being copied, kill -9. */
    pid_t pid = s_spawn(conf_a);
    bool seen = false;
    for (int i = 0; i < 3000 && !seen; i++) {
        char v[32];
        testdb_scalar(cc, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid() AND query LIKE 'COPY measurement%' AND state = 'active'",
                      v, sizeof v);
        seen = strcmp(v, "0") != 0;
        if (!seen)
            usleep(5000);
    }
    if (!seen) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("never saw the large COPY in progress");
    }
    usleep(20000);      /* well inside the COPY, which takes seconds */
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st), "the worker finished before it could be killed");

    char big[800];
    snprintf(big, sizeof big, "%s/b-large.csv", in_a);
    struct stat sb;
    cr_assert_eq(stat(big, &sb), 0, "the interrupted file must still be in the inbox");

    /* Restart; and a clean load of the same files elsewhere. */
    cr_assert_eq(s_run(conf_a), 0);
    cr_assert_eq(s_run(conf_b), 0);
    char da[128], db[128];
    s_digest(cc, da, sizeof da);
    s_digest(cl, db, sizeof db);
    cr_assert_str_eq(da, db);
    char want[32];
    snprintf(want, sizeof want, "%d:", 500 + CRASH_ROWS + 700);
    cr_assert(strncmp(da, want, strlen(want)) == 0, "%s", da);
    char v[32];
    testdb_scalar(cc, "SELECT count(*) FROM ingest_batch WHERE status = 'loaded'", v, sizeof v);
    cr_assert_str_eq(v, "3");
    testdb_scalar(cc, "SELECT count(*) FROM ingest_batch WHERE status <> 'loaded'", v, sizeof v);
    cr_assert_str_eq(v, "0");
    char done[800];
    snprintf(done, sizeof done, "%s/done/b-large.csv", in_a);
    cr_assert_eq(stat(done, &sb), 0);
    cr_assert_neq(stat(big, &sb), 0);

    PQfinish(cc);
    PQfinish(cl);
    testdb_drop(&crash);
    testdb_drop(&clean);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
