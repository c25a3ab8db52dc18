/*
 * netmodel.c -- see netmodel.h.
 *
 * Column mapping: the first 13 bus columns, 10 gen columns and 13 branch
 * columns have their own SQL columns; anything beyond goes to `extra` in
 * order.  A branch table with only the 11 required columns stores NULL
 * angmin/angmax, so the export writes 11 columns again.
 */
#include "netmodel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "parse.h"

static pcf_rc s_copy_rows(PGconn *conn, const char *target, const char *zone,
                          const mp_matrix *m, size_t fixed, int row_col,
                          pcf_error *err)
{
    db_copy *cp = db_copy_new(conn, target, err);
    if (!cp) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    size_t nfixed = m->cols < fixed ? m->cols : fixed;
    for (size_t r = 0; r < m->rows && rc == PCF_OK; r++) {
        db_copy_text(cp, zone);
        if (row_col) db_copy_int(cp, (int64_t)r + 1);
        for (size_t k = 0; k < nfixed; k++) {
            double v = MP_AT(m, r, k);
            /* integral label columns go to bigint/smallint columns */
            db_copy_double(cp, v);
        }
        for (size_t k = nfixed; k < fixed; k++) db_copy_null(cp);
        db_copy_double_array(cp, m->cols > fixed ? &MP_AT(m, r, fixed) : NULL,
                             m->cols > fixed ? m->cols - fixed : 0);
        rc = db_copy_end_row(cp, err);
    }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    return rc;
}

static pcf_rc s_copy_buses(PGconn *conn, const char *zone, const mp_case *c, pcf_error *err)
{
    db_copy *cp = db_copy_new(conn, "bus (zone_id, row_no, bus_i, bus_type, pd, qd, gs, bs, area,"
                                    " vm, va, base_kv, loss_zone, vmax, vmin, extra, name)", err);
    if (!cp) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    const mp_matrix *m = &c->bus;
    for (size_t r = 0; r < m->rows && rc == PCF_OK; r++) {
        db_copy_text(cp, zone);
        db_copy_int(cp, (int64_t)r + 1);
        db_copy_int(cp, (int64_t)MP_AT(m, r, MP_BUS_I));
        db_copy_int(cp, (int64_t)MP_AT(m, r, MP_BUS_TYPE));
        for (size_t k = MP_PD; k < MP_BUS_NCOLS_MIN; k++) db_copy_double(cp, MP_AT(m, r, k));
        db_copy_double_array(cp, m->cols > MP_BUS_NCOLS_MIN ? &MP_AT(m, r, MP_BUS_NCOLS_MIN) : NULL,
                             m->cols - MP_BUS_NCOLS_MIN);
        db_copy_text(cp, c->bus_name ? c->bus_name[r] : NULL);
        rc = db_copy_end_row(cp, err);
    }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    return rc;
}

static pcf_rc s_copy_gencost(PGconn *conn, const char *zone, const mp_case *c, pcf_error *err)
{
    if (c->gencost.rows == 0) return PCF_OK;
    db_copy *cp = db_copy_new(conn, "gencost (zone_id, idx, cost)", err);
    if (!cp) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    for (size_t r = 0; r < c->gencost.rows && rc == PCF_OK; r++) {
        db_copy_text(cp, zone);
        db_copy_int(cp, (int64_t)r + 1);
        db_copy_double_array(cp, &MP_AT(&c->gencost, r, 0), c->gencost.cols);
        rc = db_copy_end_row(cp, err);
    }
    if (rc == PCF_OK) rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    return rc;
}

/* Ids stored in integer columns must be integers: the case reader checks bus
 * ids, this checks what the schema would otherwise silently round. */
static pcf_rc s_check_integral(const mp_case *c, pcf_error *err)
{
    for (size_t r = 0; r < c->gen.rows; r++)
        if (MP_AT(&c->gen, r, MP_GEN_BUS) != floor(MP_AT(&c->gen, r, MP_GEN_BUS)))
            return pcf_error_set(err, PCF_ERR_INVALID, "gen row %zu: bus number is not an integer", r + 1);
    for (size_t r = 0; r < c->branch.rows; r++)
        for (int k = MP_F_BUS; k <= MP_T_BUS; k++)
            if (MP_AT(&c->branch, r, k) != floor(MP_AT(&c->branch, r, k)))
                return pcf_error_set(err, PCF_ERR_INVALID,
                                     "branch row %zu: bus number is not an integer", r + 1);
    for (size_t r = 0; r < c->bus.rows; r++)
        if (MP_AT(&c->bus, r, MP_BUS_TYPE) != floor(MP_AT(&c->bus, r, MP_BUS_TYPE)))
            return pcf_error_set(err, PCF_ERR_INVALID, "bus row %zu: type is not an integer", r + 1);
    return PCF_OK;
}

pcf_rc netmodel_import(PGconn *conn, const char *zone, const char *zone_name,
                       const mp_case *c, pcf_error *err)
{
    if (c->bus.cols < MP_BUS_NCOLS_MIN || c->gen.cols < MP_GEN_NCOLS_MIN ||
        c->branch.cols < MP_BRANCH_NCOLS_REQUIRED)
        return pcf_error_set(err, PCF_ERR_INVALID, "case has too few columns");
    pcf_rc rc = s_check_integral(c, err);
    if (rc != PCF_OK) return rc;
    if ((rc = db_exec(conn, "BEGIN", err)) != PCF_OK) return rc;

    char base[40];
    db_format_double(c->base_mva, base, sizeof base);
    const char *p[5] = { zone, zone_name ? zone_name : "", base, c->name, c->version };
    PGresult *r = db_query(conn, "SELECT 1 FROM zone WHERE zone_id = $1", 1, p, err);
    if (!r) rc = PCF_ERR_DB;
    else if (PQntuples(r) > 0)
        rc = pcf_error_set(err, PCF_ERR_INVALID,
                           "zone %s already exists (pcf-db drop-zone %s removes it and all its data)",
                           zone, zone);
    PQclear(r);
    if (rc == PCF_OK) {
        r = db_query(conn, "INSERT INTO zone (zone_id, name, base_mva, case_name, case_version) "
                           "VALUES ($1, $2, $3, $4, $5)", 5, p, err);
        if (!r) rc = PCF_ERR_DB;
        PQclear(r);
    }
    if (rc == PCF_OK) rc = s_copy_buses(conn, zone, c, err);
    if (rc == PCF_OK)
        rc = s_copy_rows(conn, "gen (zone_id, idx, bus_i, pg, qg, qmax, qmin, vg, mbase, status,"
                               " pmax, pmin, extra)", zone, &c->gen, MP_GEN_NCOLS_MIN, 1, err);
    if (rc == PCF_OK) rc = s_copy_gencost(conn, zone, c, err);
    if (rc == PCF_OK)
        rc = s_copy_rows(conn, "branch (zone_id, idx, f_bus, t_bus, r, x, b, rate_a, rate_b, rate_c,"
                               " tap, shift, status, angmin, angmax, extra)",
                         zone, &c->branch, MP_BRANCH_NCOLS_MIN, 1, err);
    if (rc == PCF_OK) rc = db_exec(conn, "COMMIT", err);
    if (rc != PCF_OK) db_rollback(conn);
    return rc;
}

/* Parses a PostgreSQL float8 text value ("Infinity", "NaN", "1.5e-05"). */
static double s_float(const char *s)
{
    if (strcmp(s, "Infinity") == 0) return INFINITY;
    if (strcmp(s, "-Infinity") == 0) return -INFINITY;
    double v;
    return parse_double_ext(s, strlen(s), &v) == PCF_OK ? v : NAN;
}

/* Parses "{1,2.5,Infinity}" into out[0..n-1]; returns the count or -1. */
static long s_float_array(const char *s, double *out, size_t max)
{
    if (*s++ != '{') return -1;
    size_t n = 0;
    while (*s && *s != '}') {
        const char *e = strchr(s, ',');
        if (!e) e = strchr(s, '}');
        if (!e || n >= max) return -1;
        char tmp[48];
        size_t len = (size_t)(e - s);
        if (len == 0 || len >= sizeof tmp) return -1;
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        out[n++] = s_float(tmp);
        s = *e == ',' ? e + 1 : e;
    }
    return *s == '}' ? (long)n : -1;
}

/* Fills matrix m (already sized) from result r: columns [first, first+fixed)
 * of r are the fixed columns (NULL allowed only past `required`), and column
 * first+fixed is the extra array. */
static pcf_rc s_fill(PGresult *r, int first, size_t fixed, mp_matrix *m, pcf_error *err)
{
    for (size_t row = 0; row < m->rows; row++) {
        for (size_t k = 0; k < fixed && k < m->cols; k++)
            MP_AT(m, row, k) = s_float(PQgetvalue(r, (int)row, first + (int)k));
        if (m->cols > fixed) {
            long n = s_float_array(PQgetvalue(r, (int)row, first + (int)fixed),
                                   &MP_AT(m, row, fixed), m->cols - fixed);
            if (n != (long)(m->cols - fixed))
                return pcf_error_set(err, PCF_ERR_INVALID, "row %zu: extra columns differ in length", row + 1);
        }
    }
    return PCF_OK;
}

static long s_scalar_long(PGconn *conn, const char *sql, const char *zone, pcf_error *err)
{
    const char *p[1] = { zone };
    PGresult *r = db_query(conn, sql, 1, p, err);
    if (!r) return -1;
    long v = 0;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
        parse_long(PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)), &v) != PCF_OK)
        v = -1;
    PQclear(r);
    return v;
}

mp_case *netmodel_export(PGconn *conn, const char *zone, pcf_error *err)
{
    const char *p[1] = { zone };
    PGresult *z = db_query(conn, "SELECT base_mva, case_name, case_version FROM zone WHERE zone_id = $1",
                           1, p, err);
    if (!z) return NULL;
    if (PQntuples(z) != 1) {
        pcf_error_set(err, PCF_ERR_INVALID, "zone %s does not exist", zone);
        PQclear(z);
        return NULL;
    }
    long bus_extra = s_scalar_long(conn, "SELECT max(cardinality(extra)) FROM bus WHERE zone_id = $1", zone, err);
    long gen_extra = s_scalar_long(conn, "SELECT max(cardinality(extra)) FROM gen WHERE zone_id = $1", zone, err);
    long br_extra = s_scalar_long(conn, "SELECT max(cardinality(extra)) FROM branch WHERE zone_id = $1", zone, err);
    long br_short = s_scalar_long(conn, "SELECT count(*) FROM branch WHERE zone_id = $1 AND angmin IS NULL", zone, err);
    long cost_cols = s_scalar_long(conn, "SELECT max(cardinality(cost)) FROM gencost WHERE zone_id = $1", zone, err);
    PGresult *b = db_query(conn, "SELECT bus_i, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, loss_zone,"
                                 " vmax, vmin, extra, name FROM bus WHERE zone_id = $1 ORDER BY row_no", 1, p, err);
    PGresult *g = b ? db_query(conn, "SELECT bus_i, pg, qg, qmax, qmin, vg, mbase, status, pmax, pmin, extra"
                                     " FROM gen WHERE zone_id = $1 ORDER BY idx", 1, p, err) : NULL;
    PGresult *br = g ? db_query(conn, "SELECT f_bus, t_bus, r, x, b, rate_a, rate_b, rate_c, tap, shift, status,"
                                      " angmin, angmax, extra FROM branch WHERE zone_id = $1 ORDER BY idx",
                                1, p, err) : NULL;
    PGresult *gc = br ? db_query(conn, "SELECT cost FROM gencost WHERE zone_id = $1 ORDER BY idx", 1, p, err) : NULL;
    mp_case *c = NULL;
    if (gc && bus_extra >= 0 && gen_extra >= 0 && br_extra >= 0 && br_short >= 0 && cost_cols >= 0) {
        size_t nbr = (size_t)PQntuples(br);
        size_t brcols = (br_short > 0 && (size_t)br_short == nbr && br_extra == 0)
                        ? MP_BRANCH_NCOLS_REQUIRED : MP_BRANCH_NCOLS_MIN + (size_t)br_extra;
        c = mp_case_new((size_t)PQntuples(b), MP_BUS_NCOLS_MIN + (size_t)bus_extra,
                        (size_t)PQntuples(g), MP_GEN_NCOLS_MIN + (size_t)gen_extra, nbr, brcols);
        if (!c) pcf_error_set(err, PCF_ERR_NOMEM, "export: out of memory");
    }
    pcf_rc rc = c ? PCF_OK : PCF_ERR_DB;
    if (c) {
        c->base_mva = s_float(PQgetvalue(z, 0, 0));
        snprintf(c->name, sizeof c->name, "%s", PQgetvalue(z, 0, 1));
        snprintf(c->version, sizeof c->version, "%s", PQgetvalue(z, 0, 2));
        rc = s_fill(b, 0, MP_BUS_NCOLS_MIN, &c->bus, err);
        if (rc == PCF_OK) rc = s_fill(g, 0, MP_GEN_NCOLS_MIN, &c->gen, err);
        if (rc == PCF_OK) rc = s_fill(br, 0, MP_BRANCH_NCOLS_MIN, &c->branch, err);
        if (rc == PCF_OK && cost_cols > 0) {
            size_t rows = (size_t)PQntuples(gc);
            c->gencost.v = calloc(rows * (size_t)cost_cols, sizeof(double));
            if (!c->gencost.v) rc = pcf_error_set(err, PCF_ERR_NOMEM, "export: out of memory");
            c->gencost.rows = c->gencost.v ? rows : 0;
            c->gencost.cols = c->gencost.v ? (size_t)cost_cols : 0;
            for (size_t row = 0; row < c->gencost.rows && rc == PCF_OK; row++)
                if (s_float_array(PQgetvalue(gc, (int)row, 0), &MP_AT(&c->gencost, row, 0),
                                  c->gencost.cols) != cost_cols)
                    rc = pcf_error_set(err, PCF_ERR_INVALID, "gencost row %zu: ragged", row + 1);
        }
        /* Names are all present or all absent (a case either has bus_name or not). */
        size_t named = 0;
        for (int row = 0; row < PQntuples(b); row++) named += !PQgetisnull(b, row, 14);
        if (rc == PCF_OK && named > 0) {
            c->bus_name = calloc(c->bus.rows, sizeof(char *));
            c->bus_name_count = c->bus_name ? c->bus.rows : 0;
            for (size_t row = 0; c->bus_name && row < c->bus.rows; row++) {
                c->bus_name[row] = strdup(PQgetvalue(b, (int)row, 14));
                if (!c->bus_name[row]) rc = pcf_error_set(err, PCF_ERR_NOMEM, "export: out of memory");
            }
            if (!c->bus_name) rc = pcf_error_set(err, PCF_ERR_NOMEM, "export: out of memory");
        }
    }
    PQclear(z);
    PQclear(b);
    PQclear(g);
    PQclear(br);
    PQclear(gc);
    if (rc != PCF_OK) mp_case_destroy(&c);
    return c;
}

pcf_rc netmodel_drop_zone(PGconn *conn, const char *zone, pcf_error *err)
{
    const char *p[1] = { zone };
    PGresult *r = db_query(conn, "DELETE FROM zone WHERE zone_id = $1", 1, p, err);
    if (!r) return PCF_ERR_DB;
    int none = strcmp(PQcmdTuples(r), "0") == 0;
    PQclear(r);
    if (none) return pcf_error_set(err, PCF_ERR_INVALID, "zone %s does not exist", zone);
    return PCF_OK;
}
