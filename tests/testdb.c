/*
 * testdb.c -- see testdb.h.
 */
#include "testdb.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int s_counter;

static const char *s_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run the suite through tests/run.sh", name);
    return v;
}

static PGconn *s_connect_db(const char *dbname)
{
    char ci[512];
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=%s",
             s_env("PCF_TEST_PGHOST"), s_env("PCF_TEST_PGPORT"), dbname);
    PGconn *c = PQconnectdb(ci);
    cr_assert(PQstatus(c) == CONNECTION_OK, "connect %s: %s", ci, PQerrorMessage(c));
    PQsetNoticeProcessor(c, NULL, NULL);
    return c;
}

void testdb_create(testdb *db, const char *tag)
{
    int n = atomic_fetch_add(&s_counter, 1);
    snprintf(db->name, sizeof db->name, "t_%.30s_%d_%d", tag, (int)getpid(), n);
    for (char *p = db->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9'))) *p = '_';
    snprintf(db->conninfo, sizeof db->conninfo, "host=%s port=%s user=postgres dbname=%s",
             s_env("PCF_TEST_PGHOST"), s_env("PCF_TEST_PGPORT"), db->name);
    PGconn *c = s_connect_db("postgres");
    char sql[160];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

void testdb_drop(testdb *db)
{
    PGconn *c = s_connect_db("postgres");
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    PQclear(PQexec(c, sql));
    PQfinish(c);
}

PGconn *testdb_connect(const testdb *db)
{
    return s_connect_db(db->name);
}

int testdb_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    int n = PQntuples(r);
    PQclear(r);
    return n;
}

void testdb_scalar(PGconn *c, const char *sql, char *out, size_t outlen)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1,
              "%s: %s", sql, PQerrorMessage(c));
    snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

const char *testdb_bindir(void)
{
    const char *b = getenv("PCF_BINDIR");
    return b && *b ? b : "bin";
}

int testdb_run(const testdb *db, const char *cmd, char *out, size_t outlen)
{
    char full[4096];
    snprintf(full, sizeof full,
             "export PGHOST='%s' PGPORT='%s' PGUSER=postgres PGDATABASE='%s'; %s 2>&1",
             s_env("PCF_TEST_PGHOST"), s_env("PCF_TEST_PGPORT"),
             db ? db->name : "postgres", cmd);
    FILE *p = popen(full, "r");
    cr_assert(p, "popen %s", full);
    size_t n = 0;
    if (out && outlen) {
        size_t k;
        while (n + 1 < outlen && (k = fread(out + n, 1, outlen - 1 - n, p)) > 0) n += k;
        out[n] = '\0';
    }
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int testdb_runf(const testdb *db, char *out, size_t outlen, const char *fmt, ...)
{
    char cmd[3072];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof cmd, "testdb_runf: command longer than %zu bytes", sizeof cmd);
    return testdb_run(db, cmd, out, outlen);
}

long testdb_long(PGconn *c, const char *sql)
{
    char v[64];
    testdb_scalar(c, sql, v, sizeof v);
    return strtol(v, NULL, 10);
}
