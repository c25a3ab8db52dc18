/*
 * db.h -- the thin layer every program uses to talk to PostgreSQL.
 *
 * It does three things libpq leaves to each caller: turn every failure into
 * a pcf_error with the server's message, run a block of statements as one
 * transaction, and stream rows to COPY ... FROM STDIN in PostgreSQL's text
 * format with correct escaping and lossless doubles (%.17g, "Infinity",
 * "NaN") -- or in PostgreSQL's binary format (PGCOPY), where the server
 * parses nothing: the bulk loader's choice for millions of rows.  Queries with parameters use libpq directly (PQexecParams); this
 * module does not wrap what libpq already does well.
 *
 * Ownership: db_copy_new() returns an object the caller frees with
 * db_copy_destroy(); it buffers rows and sends them in large chunks, so the
 * per-row cost is a few appends.  The connection stays the caller's.
 */
#ifndef PCF_DB_H
#define PCF_DB_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Connects with a libpq conninfo string ("" or NULL: PG* environment
 * variables and defaults).  Sets client_min_messages=warning and TimeZone=UTC.
 * NULL on failure, with the reason in err. */
PGconn *db_connect(const char *conninfo, pcf_error *err);

/* Runs one or more statements without parameters; PCF_ERR_DB on failure. */
pcf_rc db_exec(PGconn *c, const char *sql, pcf_error *err);

/* Runs a parameterised statement; returns the result (caller PQclear()s) or
 * NULL with err set.  Parameters are text; NULL entries are SQL NULL. */
PGresult *db_query(PGconn *c, const char *sql, int nparams,
                   const char *const *params, pcf_error *err);

/* Rolls back whatever transaction is open; never fails loudly (used on error
 * paths where the original error is what matters). */
void db_rollback(PGconn *c);

/* ---- COPY FROM STDIN in text format ------------------------------------ */
typedef struct db_copy db_copy;

/* Starts `COPY <target> FROM STDIN` (target: "table (col, ...)").  */
db_copy *db_copy_new(PGconn *c, const char *target, pcf_error *err);

void db_copy_text(db_copy *cp, const char *s);         /* escaped; NULL -> \N */
void db_copy_textn(db_copy *cp, const char *s, size_t n);
void db_copy_double(db_copy *cp, double v);            /* lossless */
void db_copy_int(db_copy *cp, int64_t v);
void db_copy_null(db_copy *cp);
void db_copy_double_array(db_copy *cp, const double *v, size_t n);  /* {a,b,...} */
/* Ends the current row. Sends buffered data when the buffer is large. */
pcf_rc db_copy_end_row(db_copy *cp, pcf_error *err);

/* Sends the rest and finishes the COPY; returns PCF_OK only when the server
 * accepted every row (constraint violations are reported here). */
pcf_rc db_copy_finish(db_copy *cp, pcf_error *err);

/* Aborts the COPY (if still open) and frees; *cp becomes NULL. */
void db_copy_destroy(db_copy **cp);

/* ---- COPY FROM STDIN in binary format (PGCOPY) ------------------------
 * The same object and db_copy_end_row/finish/destroy; fields are written
 * with the db_copy_bin_* calls only, each matching its column's type
 * exactly (the server does no conversion: int8 into an integer column is an
 * error).  The field count of a row is filled in by db_copy_end_row. */
db_copy *db_copy_new_binary(PGconn *c, const char *target, pcf_error *err);
void db_copy_bin_text(db_copy *cp, const char *s, size_t n);   /* text */
void db_copy_bin_int8(db_copy *cp, int64_t v);                 /* bigint */
void db_copy_bin_int4(db_copy *cp, int32_t v);                 /* integer */
void db_copy_bin_int2(db_copy *cp, int16_t v);                 /* smallint */
void db_copy_bin_null(db_copy *cp);                            /* NULL, any type */
void db_copy_bin_float8(db_copy *cp, double v);                /* double precision */
void db_copy_bin_timestamptz(db_copy *cp, int64_t unix_s);     /* timestamptz, whole seconds */

/* Formats a double as PostgreSQL reads it back bit-for-bit.  buf >= 32. */
void db_format_double(double v, char *buf, size_t len);

#endif
