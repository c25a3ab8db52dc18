/*
 * migrate.c -- see migrate.h for the rules.
 *
 * States of one migration, in order:
 *   pending --BEGIN; its SQL; INSERT schema_migrations; COMMIT--> applied
 *   pending --any error--> ROLLBACK, pending (and migrate_apply stops)
 * The advisory lock (key PCF_MIGRATE_LOCK) is held for the whole run so two
 * runs never race between "is it applied?" and "apply it".
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "migrations.h"
#include "parse.h"

#define PCF_MIGRATE_LOCK "7243117001"   /* arbitrary, fixed forever */

unsigned long long migrate_checksum(const char *sql)
{
    unsigned long long h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

int migrate_latest_embedded(void)
{
    int v = 0;
    for (int i = 0; i < pcf_migration_count; i++)
        if (pcf_migrations[i].version > v) v = pcf_migrations[i].version;
    return v;
}

static pcf_rc s_ensure_table(PGconn *c, pcf_error *err)
{
    return db_exec(c,
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY CHECK (version > 0),"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())", err);
}

pcf_rc migrate_current(PGconn *c, int *version, pcf_error *err)
{
    *version = 0;
    PGresult *r = db_query(c,
        "SELECT coalesce(max(version), 0) FROM schema_migrations "
        "WHERE to_regclass('schema_migrations') IS NOT NULL", 0, NULL, err);
    if (!r) {
        /* The table does not exist yet: a fresh database is at version 0. */
        PGresult *t = db_query(c, "SELECT to_regclass('schema_migrations') IS NULL", 0, NULL, NULL);
        int fresh = t && PQntuples(t) == 1 && PQgetvalue(t, 0, 0)[0] == 't';
        PQclear(t);
        if (fresh) {
            pcf_error_clear(err);
            return PCF_OK;
        }
        return PCF_ERR_DB;
    }
    long v = 0;
    if (PQntuples(r) == 1 && parse_long(PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)), &v) != PCF_OK)
        v = 0;
    *version = (int)v;
    PQclear(r);
    return PCF_OK;
}

/* Is `m` recorded?  1 yes, 0 no, -1 error (err set). */
static int s_recorded(PGconn *c, const pcf_migration *m, pcf_error *err)
{
    char ver[16], sum[24];
    snprintf(ver, sizeof ver, "%d", m->version);
    snprintf(sum, sizeof sum, "%016llx", migrate_checksum(m->sql));
    const char *p[1] = { ver };
    PGresult *r = db_query(c, "SELECT name, checksum FROM schema_migrations WHERE version = $1",
                           1, p, err);
    if (!r) return -1;
    int found = PQntuples(r) == 1;
    if (found && strcmp(PQgetvalue(r, 0, 1), sum) != 0) {
        pcf_error_set(err, PCF_ERR_INVALID,
                      "migration %s was applied with a different text (checksum %s, now %s); "
                      "shipped migrations must not change: add a new one",
                      m->name, PQgetvalue(r, 0, 1), sum);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    return found;
}

static pcf_rc s_apply_one(PGconn *c, const pcf_migration *m, pcf_error *err)
{
    pcf_rc rc = db_exec(c, "BEGIN", err);
    if (rc == PCF_OK) {
        rc = db_exec(c, m->sql, err);
        if (rc != PCF_OK) {
            char msg[PCF_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            pcf_error_set(err, PCF_ERR_DB, "migration %s: %s", m->name, msg);
        }
    }
    if (rc == PCF_OK) {
        char ver[16], sum[24];
        snprintf(ver, sizeof ver, "%d", m->version);
        snprintf(sum, sizeof sum, "%016llx", migrate_checksum(m->sql));
        const char *p[3] = { ver, m->name, sum };
        PGresult *r = db_query(c, "INSERT INTO schema_migrations (version, name, checksum) "
                                  "VALUES ($1, $2, $3)", 3, p, err);
        if (!r) rc = PCF_ERR_DB;
        PQclear(r);
    }
    if (rc == PCF_OK) rc = db_exec(c, "COMMIT", err);
    if (rc != PCF_OK) db_rollback(c);
    return rc;
}

pcf_rc migrate_apply(PGconn *c, int dry_run, migrate_report_fn report,
                     void *ctx, int *applied, pcf_error *err)
{
    *applied = 0;
    for (int i = 0; i < pcf_migration_count; i++)
        for (int j = i + 1; j < pcf_migration_count; j++)
            if (pcf_migrations[i].version == pcf_migrations[j].version)
                return pcf_error_set(err, PCF_ERR_INTERNAL, "migrations %s and %s share a version number",
                                     pcf_migrations[i].name, pcf_migrations[j].name);
    pcf_rc rc = db_exec(c, "SELECT pg_advisory_lock(" PCF_MIGRATE_LOCK ")", err);
    if (rc != PCF_OK) return rc;
    rc = s_ensure_table(c, err);

    /* Embedded order is file-name order; apply by version, lowest first. */
    int done_upto = 0;
    while (rc == PCF_OK) {
        const pcf_migration *next = NULL;
        for (int i = 0; i < pcf_migration_count; i++) {
            const pcf_migration *m = &pcf_migrations[i];
            if (m->version > done_upto && (!next || m->version < next->version)) next = m;
        }
        if (!next) break;
        done_upto = next->version;
        int rec = s_recorded(c, next, err);
        if (rec < 0) { rc = err ? err->code : PCF_ERR_DB; break; }
        if (rec) continue;
        if (!dry_run && (rc = s_apply_one(c, next, err)) != PCF_OK) break;
        (*applied)++;
        if (report) report(ctx, next->version, next->name);
    }
    pcf_error tmp;
    db_exec(c, "SELECT pg_advisory_unlock(" PCF_MIGRATE_LOCK ")", &tmp);
    return rc;
}
