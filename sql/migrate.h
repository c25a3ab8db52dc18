/*
 * migrate.h -- applies the schema migrations compiled into the program.
 *
 * The migrations are sql/NNN_name.sql, embedded at build time (sql/embed.sh)
 * so a binary always carries the schema it was written for.  Applied versions
 * are recorded in schema_migrations with a checksum of their text; each
 * migration runs in its own transaction together with its record, so a
 * failure leaves the database at the previous version.  A session-level
 * advisory lock serialises concurrent `pcf-db migrate` runs.  Running it
 * again applies nothing.  A recorded migration whose text has since changed
 * is an error: shipped migrations are immutable, changes go in a new file.
 */
#ifndef PCF_MIGRATE_H
#define PCF_MIGRATE_H

#include <libpq-fe.h>

#include "error.h"

/* Called once per migration applied (or, with dry_run, that would be). */
typedef void (*migrate_report_fn)(void *ctx, int version, const char *name);

/* Applies every embedded migration not yet recorded, in version order.
 * *applied receives how many ran.  PCF_OK or PCF_ERR_DB/PCF_ERR_INVALID. */
pcf_rc migrate_apply(PGconn *c, int dry_run, migrate_report_fn report,
                     void *ctx, int *applied, pcf_error *err);

/* Highest embedded version, and the highest recorded in the database (0 when
 * none or the table does not exist yet). */
int migrate_latest_embedded(void);
pcf_rc migrate_current(PGconn *c, int *version, pcf_error *err);

/* 64-bit FNV-1a of a migration's text, as recorded in schema_migrations. */
unsigned long long migrate_checksum(const char *sql);

#endif
