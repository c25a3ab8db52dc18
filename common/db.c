/*
 * db.c -- PostgreSQL helpers; see db.h.
 *
 * COPY rows are built in one growing buffer (capped by flushing every
 * DB_COPY_FLUSH bytes) so a million-row import does a few hundred
 * PQputCopyData calls, not a million.  A field separator is emitted lazily:
 * `sep` says whether the current row already holds a field.
 *
 * Binary COPY (PGCOPY): a 19-byte header, then per row a 16-bit field
 * count and per field a 32-bit length and the value in network byte order,
 * then a -1 trailer.  The count is not known until the row ends, so the
 * first field of a row reserves it and db_copy_end_row() patches it.
 */
#include "db.h"

#include <endian.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB_COPY_FLUSH (1u << 20)

struct db_copy {
    PGconn *conn;
    char *buf;
    size_t len, cap;
    int sep;            /* a field was written in this row */
    int failed;         /* allocation failed: finish reports it */
    int open;           /* COPY still in progress on the server */
    int binary;         /* PGCOPY format */
    size_t row_start;   /* binary: offset of the current row's field count */
    uint16_t nfields;   /* binary: fields written in the current row */
};

PGconn *db_connect(const char *conninfo, pcf_error *err)
{
    PGconn *c = PQconnectdb(conninfo ? conninfo : "");
    if (!c) {
        pcf_error_set(err, PCF_ERR_NOMEM, "database: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        pcf_error_set(err, PCF_ERR_DB, "database: connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    if (db_exec(c, "SET client_min_messages = warning; SET TimeZone = 'UTC'", err) != PCF_OK) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

static pcf_rc s_result_error(PGconn *c, PGresult *r, pcf_error *err, const char *what)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    pcf_error_set(err, PCF_ERR_DB, "database: %s: %.*s", what, (int)n, msg);
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (err && state) snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
    return PCF_ERR_DB;
}

pcf_rc db_exec(PGconn *c, const char *sql, pcf_error *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    pcf_rc rc = PCF_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = s_result_error(c, r, err, "exec");
    PQclear(r);
    return rc;
}

PGresult *db_query(PGconn *c, const char *sql, int nparams,
                   const char *const *params, pcf_error *err)
{
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        s_result_error(c, r, err, "query");
        PQclear(r);
        return NULL;
    }
    return r;
}

void db_rollback(PGconn *c)
{
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        PQclear(PQexec(c, "ROLLBACK"));
}

/* ---- COPY --------------------------------------------------------------- */

static db_copy *s_copy_start(PGconn *c, const char *target, int binary, pcf_error *err)
{
    char sql[1024];
    int n = snprintf(sql, sizeof sql, "COPY %s FROM STDIN%s", target, binary ? " (FORMAT binary)" : "");
    if (n < 0 || (size_t)n >= sizeof sql) {
        pcf_error_set(err, PCF_ERR_INTERNAL, "database: COPY target too long");
        return NULL;
    }
    db_copy *cp = calloc(1, sizeof *cp);
    if (!cp) {
        pcf_error_set(err, PCF_ERR_NOMEM, "database: out of memory");
        return NULL;
    }
    cp->conn = c;
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        s_result_error(c, r, err, "COPY");
        PQclear(r);
        free(cp);
        return NULL;
    }
    PQclear(r);
    cp->open = 1;
    cp->binary = binary;
    return cp;
}

db_copy *db_copy_new(PGconn *c, const char *target, pcf_error *err)
{
    return s_copy_start(c, target, 0, err);
}

static int s_reserve(db_copy *cp, size_t extra)
{
    if (cp->failed) return 0;
    if (cp->len + extra <= cp->cap) return 1;
    size_t cap = cp->cap ? cp->cap : 64 * 1024;
    while (cap < cp->len + extra) cap *= 2;
    char *b = realloc(cp->buf, cap);
    if (!b) {
        cp->failed = 1;
        return 0;
    }
    cp->buf = b;
    cp->cap = cap;
    return 1;
}

static void s_put(db_copy *cp, const char *s, size_t n)
{
    if (!s_reserve(cp, n + 1)) return;
    memcpy(cp->buf + cp->len, s, n);
    cp->len += n;
}

static void s_field(db_copy *cp)
{
    if (cp->sep) s_put(cp, "\t", 1);
    cp->sep = 1;
}

void db_copy_textn(db_copy *cp, const char *s, size_t n)
{
    s_field(cp);
    if (!s) {
        s_put(cp, "\\N", 2);
        return;
    }
    if (!s_reserve(cp, 2 * n + 1)) return;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i], esc = 0;
        switch (ch) {
        case '\\': esc = '\\'; break;
        case '\t': esc = 't'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        default: break;
        }
        if (esc) {
            cp->buf[cp->len++] = '\\';
            cp->buf[cp->len++] = esc;
        } else {
            cp->buf[cp->len++] = ch;
        }
    }
}

void db_copy_text(db_copy *cp, const char *s)
{
    db_copy_textn(cp, s, s ? strlen(s) : 0);
}

void db_format_double(double v, char *buf, size_t len)
{
    if (isnan(v))
        snprintf(buf, len, "NaN");
    else if (isinf(v))
        snprintf(buf, len, v > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(buf, len, "%.17g", v);
}

void db_copy_double(db_copy *cp, double v)
{
    char tmp[40];
    db_format_double(v, tmp, sizeof tmp);
    s_field(cp);
    s_put(cp, tmp, strlen(tmp));
}

void db_copy_int(db_copy *cp, int64_t v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    s_field(cp);
    s_put(cp, tmp, (size_t)n);
}

void db_copy_null(db_copy *cp)
{
    s_field(cp);
    s_put(cp, "\\N", 2);
}

void db_copy_double_array(db_copy *cp, const double *v, size_t n)
{
    char tmp[40];
    s_field(cp);
    s_put(cp, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) s_put(cp, ",", 1);
        db_format_double(v[i], tmp, sizeof tmp);
        s_put(cp, tmp, strlen(tmp));
    }
    s_put(cp, "}", 1);
}

/* ---- binary COPY ------------------------------------------------------- */

db_copy *db_copy_new_binary(PGconn *c, const char *target, pcf_error *err)
{
    db_copy *cp = s_copy_start(c, target, 1, err);
    if (cp) {
        /* signature, flags (no OIDs), header extension length */
        static const char hdr[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
        s_put(cp, hdr, sizeof hdr);
    }
    return cp;
}

/* Starts a field of n bytes: the row's count slot first if needed, then
 * the length; returns where the n bytes go, NULL if out of memory. */
static char *s_bin_field(db_copy *cp, size_t n)
{
    if (!cp->sep) {
        if (!s_reserve(cp, 2)) return NULL;
        cp->row_start = cp->len;
        cp->len += 2;
        cp->nfields = 0;
        cp->sep = 1;
    }
    if (!s_reserve(cp, 4 + n)) return NULL;
    uint32_t be = htobe32((uint32_t)n);
    memcpy(cp->buf + cp->len, &be, 4);
    char *p = cp->buf + cp->len + 4;
    cp->len += 4 + n;
    cp->nfields++;
    return p;
}

void db_copy_bin_text(db_copy *cp, const char *s, size_t n)
{
    char *p = s_bin_field(cp, n);
    if (p) memcpy(p, s, n);
}

void db_copy_bin_int8(db_copy *cp, int64_t v)
{
    char *p = s_bin_field(cp, 8);
    uint64_t be = htobe64((uint64_t)v);
    if (p) memcpy(p, &be, 8);
}

void db_copy_bin_int4(db_copy *cp, int32_t v)
{
    char *p = s_bin_field(cp, 4);
    uint32_t be = htobe32((uint32_t)v);
    if (p) memcpy(p, &be, 4);
}

void db_copy_bin_int2(db_copy *cp, int16_t v)
{
    char *p = s_bin_field(cp, 2);
    uint16_t be = htobe16((uint16_t)v);
    if (p) memcpy(p, &be, 2);
}

void db_copy_bin_null(db_copy *cp)
{
    /* a field of length -1 and no bytes: the 0 s_bin_field wrote becomes -1 */
    char *p = s_bin_field(cp, 0);
    if (p) memset(p - 4, 0xff, 4);
}

void db_copy_bin_float8(db_copy *cp, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    char *p = s_bin_field(cp, 8);
    u = htobe64(u);
    if (p) memcpy(p, &u, 8);
}

void db_copy_bin_timestamptz(db_copy *cp, int64_t unix_s)
{
    /* microseconds since 2000-01-01T00:00Z (integer datetimes, PG >= 10) */
    db_copy_bin_int8(cp, (unix_s - 946684800) * 1000000);
}

static pcf_rc s_flush(db_copy *cp, pcf_error *err)
{
    if (cp->failed)
        return pcf_error_set(err, PCF_ERR_NOMEM, "database: COPY buffer: out of memory");
    if (cp->len && PQputCopyData(cp->conn, cp->buf, (int)cp->len) != 1)
        return pcf_error_set(err, PCF_ERR_DB, "database: COPY: %s", PQerrorMessage(cp->conn));
    cp->len = 0;
    return PCF_OK;
}

pcf_rc db_copy_end_row(db_copy *cp, pcf_error *err)
{
    if (!cp->binary) {
        s_put(cp, "\n", 1);
    } else if (cp->sep && !cp->failed) {
        uint16_t be = htobe16(cp->nfields);
        memcpy(cp->buf + cp->row_start, &be, 2);
    }
    cp->sep = 0;
    if (cp->failed || cp->len >= DB_COPY_FLUSH)
        return s_flush(cp, err);
    return PCF_OK;
}

pcf_rc db_copy_finish(db_copy *cp, pcf_error *err)
{
    if (cp->binary)
        s_put(cp, "\377\377", 2);     /* trailer: field count -1 */
    pcf_rc rc = s_flush(cp, err);
    if (rc != PCF_OK) return rc;
    cp->open = 0;
    if (PQputCopyEnd(cp->conn, NULL) != 1)
        return pcf_error_set(err, PCF_ERR_DB, "database: COPY end: %s", PQerrorMessage(cp->conn));
    PGresult *r;
    while ((r = PQgetResult(cp->conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == PCF_OK)
            rc = s_result_error(cp->conn, r, err, "COPY");
        PQclear(r);
    }
    return rc;
}

void db_copy_destroy(db_copy **cpp)
{
    if (!cpp || !*cpp) return;
    db_copy *cp = *cpp;
    if (cp->open) {
        PQputCopyEnd(cp->conn, "aborted by client");
        PGresult *r;
        while ((r = PQgetResult(cp->conn)) != NULL) PQclear(r);
    }
    free(cp->buf);
    free(cp);
    *cpp = NULL;
}
