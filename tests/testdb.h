/*
 * testdb.h -- fresh PostgreSQL databases for integration tests.
 *
 * tests/run.sh starts a private server and exports PCF_TEST_PGHOST and
 * PCF_TEST_PGPORT.  Each test that needs a database calls testdb_create(),
 * which makes a new, empty database with a unique name (so Criterion can run
 * tests in parallel) and returns its libpq connection string; testdb_drop()
 * removes it.  There is no mock: tests talk to the real server.
 */
#ifndef PCF_TESTDB_H
#define PCF_TESTDB_H

#include <libpq-fe.h>

typedef struct testdb {
    char name[64];
    char conninfo[512];
} testdb;

/* Creates a fresh database; aborts the test (cr_assert) when the server is
 * unreachable. */
void testdb_create(testdb *db, const char *tag);

/* Drops the database (forcing out stray connections). */
void testdb_drop(testdb *db);

/* Connects to it; aborts the test on failure.  Caller PQfinish()es. */
PGconn *testdb_connect(const testdb *db);

/* Runs a statement that must succeed; returns PQntuples of the result. */
int testdb_exec(PGconn *c, const char *sql);

/* Runs a query that must return one row; copies column 0 of it into out. */
void testdb_scalar(PGconn *c, const char *sql, char *out, size_t outlen);

/* The same for a query whose one value is an integer (a count). */
long testdb_long(PGconn *c, const char *sql);

/* Path of a program built by make (bin/ or build/asan/bin/). */
const char *testdb_bindir(void);

/* Runs a shell command with the test server's PG* variables set (PGHOST,
 * PGPORT, PGUSER, PGDATABASE=db->name); returns its exit status, and its
 * combined stdout+stderr in out (truncated to outlen). */
int testdb_run(const testdb *db, const char *cmd, char *out, size_t outlen);

/* The same with the command formatted printf-style (asserts it fits). */
int testdb_runf(const testdb *db, char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
