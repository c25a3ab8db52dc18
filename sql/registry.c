/*
 * registry.c -- CSV imports of the DER register, ANM schemes and SCADA
 * points; see registry.h for the rules and docs/data-model.md for columns.
 *
 * Each file is described by a table (file_spec): its columns, how each is
 * validated, and one parameterised upsert.  Rows are validated in C first so
 * the message names the column ("enquiries.csv:7: lifo_position: not an
 * integer"); what only the database can know (an unknown bus, a LIFO
 * position used twice) comes back from PostgreSQL with the same file:line
 * prefix.  Registers have hundreds of rows, so one statement per row is fast
 * enough and keeps every error attributable to its line.
 */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "db.h"
#include "parse.h"

typedef enum {
    COL_ID,         /* required text, 1..64 printable characters */
    COL_TEXT,       /* optional free text ("" allowed) */
    COL_NUM,        /* required finite number */
    COL_NUM_OPT,    /* finite number or empty (NULL) */
    COL_INT_OPT,    /* integer or empty (NULL) */
    COL_BOOL,       /* true/false/yes/no/1/0 */
    COL_DATE_OPT,   /* YYYY-MM-DD or empty */
    COL_ENUM,       /* one of spec->choices ("a|b|c"), exact */
    COL_ENUM_OPT,   /* as COL_ENUM, or empty (NULL) */
    COL_BRANCH,     /* MATPOWER row number or branch name -> branch_id */
    COL_BRANCH_OPT
} col_kind;

typedef struct col_spec {
    const char *name;
    col_kind kind;
    const char *choices;
} col_spec;

#define MAX_COLS 12

typedef struct file_spec {
    const char *file;
    int optional;
    col_spec cols[MAX_COLS];
    size_t ncols;
    const char *sql;        /* $1..$ncols = columns, $(ncols+1) = zone */
    int zero_ok;            /* a row may legitimately change nothing */
} file_spec;

/* ---- validation ------------------------------------------------------- */

static int s_in_choices(const char *v, const char *choices)
{
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *e = strchr(p, '|');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, v, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int s_valid_date(const char *v)
{
    int y, m, d;
    char tail;
    if (strlen(v) != 10 || sscanf(v, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) return 0;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return 0;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 0;
    return 1;
}

static int s_valid_id(const char *v, size_t len)
{
    if (len == 0 || len > 64) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) return 0;
    return 1;
}

/* Resolves a branch named by row number or name to its branch_id text. */
static pcf_rc s_branch_id(PGconn *c, const char *zone, const char *ref, char *out, size_t outlen,
                          pcf_error *err)
{
    long idx;
    char idxbuf[24] = "";
    if (parse_long(ref, strlen(ref), &idx) == PCF_OK && idx >= 1 && idx <= 100000000)
        snprintf(idxbuf, sizeof idxbuf, "%ld", idx);
    const char *p[3] = { zone, ref, idxbuf[0] ? idxbuf : NULL };
    PGresult *r = db_query(c, "SELECT branch_id FROM branch WHERE zone_id = $1 AND "
                              "(name = $2 OR idx = $3::integer) ORDER BY (name = $2) DESC LIMIT 1",
                           3, p, err);
    if (!r) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    if (PQntuples(r) != 1)
        rc = pcf_error_set(err, PCF_ERR_INVALID, "no branch '%s' (row number or name) in zone %s", ref, zone);
    else
        snprintf(out, outlen, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return rc;
}

/* Checks field `v` against its spec; on success params[i] points at the
 * value to send (NULL for SQL NULL).  branch_buf holds a resolved id. */
static pcf_rc s_check_field(PGconn *c, const char *zone, const col_spec *col, const char *v,
                            size_t len, const char **param, char *branch_buf, size_t bblen,
                            pcf_error *err)
{
    double d;
    long l;
    int empty = len == 0;
    *param = v;
    switch (col->kind) {
    case COL_ID:
        if (!s_valid_id(v, len))
            return pcf_error_set(err, PCF_ERR_INVALID, "%s: must be 1 to 64 printable characters", col->name);
        return PCF_OK;
    case COL_TEXT:
        if (len > 1000) return pcf_error_set(err, PCF_ERR_INVALID, "%s: longer than 1000 bytes", col->name);
        return PCF_OK;
    case COL_NUM_OPT:
        if (empty) { *param = NULL; return PCF_OK; }
        /* fall through */
    case COL_NUM:
        if (parse_double(v, len, &d) != PCF_OK)
            return pcf_error_set(err, PCF_ERR_PARSE, "%s: '%.40s' is not a finite number", col->name, v);
        return PCF_OK;
    case COL_INT_OPT:
        if (empty) { *param = NULL; return PCF_OK; }
        if (parse_long(v, len, &l) != PCF_OK || l < -2147483647L || l > 2147483647L)
            return pcf_error_set(err, PCF_ERR_PARSE, "%s: '%.40s' is not an integer", col->name, v);
        return PCF_OK;
    case COL_BOOL:
        if (s_in_choices(v, "true|yes|1|TRUE|YES|Yes|True")) *param = "true";
        else if (s_in_choices(v, "false|no|0|FALSE|NO|No|False")) *param = "false";
        else return pcf_error_set(err, PCF_ERR_PARSE, "%s: '%.40s' is not true/false/yes/no/1/0", col->name, v);
        return PCF_OK;
    case COL_DATE_OPT:
        if (empty) { *param = NULL; return PCF_OK; }
        if (!s_valid_date(v))
            return pcf_error_set(err, PCF_ERR_PARSE, "%s: '%.40s' is not a date YYYY-MM-DD", col->name, v);
        return PCF_OK;
    case COL_ENUM_OPT:
        if (empty) { *param = NULL; return PCF_OK; }
        /* fall through */
    case COL_ENUM:
        if (!s_in_choices(v, col->choices))
            return pcf_error_set(err, PCF_ERR_INVALID, "%s: '%.40s' is not one of %s", col->name, v, col->choices);
        return PCF_OK;
    case COL_BRANCH_OPT:
        if (empty) { *param = NULL; return PCF_OK; }
        /* fall through */
    case COL_BRANCH: {
        pcf_error sub;
        if (!s_valid_id(v, len)) return pcf_error_set(err, PCF_ERR_INVALID, "%s: empty or too long", col->name);
        pcf_rc rc = s_branch_id(c, zone, v, branch_buf, bblen, &sub);
        if (rc != PCF_OK) return pcf_error_set(err, rc, "%s: %s", col->name, sub.msg);
        *param = branch_buf;
        return PCF_OK;
    }
    }
    return pcf_error_set(err, PCF_ERR_INTERNAL, "%s: unknown column kind", col->name);
}

/* ---- loading one file ----------------------------------------------------- */

static pcf_rc s_load_file(PGconn *c, const char *zone, const char *path, const file_spec *fs,
                          long *rows, pcf_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (fs->optional && errno == ENOENT) return PCF_OK;
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    }
    csv_reader *r = csv_new(f, path, 0);
    if (!r) {
        fclose(f);
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", path);
    }
    const char *names[MAX_COLS];
    for (size_t i = 0; i < fs->ncols; i++) names[i] = fs->cols[i].name;
    pcf_rc rc = csv_header(r, names, fs->ncols, err);

    while (rc == PCF_OK) {
        if ((rc = csv_next(r, err)) != PCF_OK || csv_done(r)) break;
        if (csv_count(r) == 0) continue;
        long line = csv_line(r);
        if (csv_truncated(r)) {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%ld: last line has no newline (truncated file?)", path, line);
            break;
        }
        if (csv_count(r) != fs->ncols) {
            rc = pcf_error_set(err, PCF_ERR_PARSE, "%s:%ld: %zu fields, expected %zu", path, line,
                               csv_count(r), fs->ncols);
            break;
        }
        const char *params[MAX_COLS + 1];
        char branch_buf[MAX_COLS][24];
        pcf_error sub;
        for (size_t i = 0; i < fs->ncols && rc == PCF_OK; i++) {
            rc = s_check_field(c, zone, &fs->cols[i], csv_field(r, i), csv_field_len(r, i),
                               &params[i], branch_buf[i], sizeof branch_buf[i], &sub);
            if (rc != PCF_OK) pcf_error_set(err, rc, "%s:%ld: %s", path, line, sub.msg);
        }
        if (rc != PCF_OK) break;
        params[fs->ncols] = zone;
        PGresult *res = db_query(c, fs->sql, (int)fs->ncols + 1, params, &sub);
        if (!res) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "%s:%ld: %s", path, line, sub.msg);
            break;
        }
        if (!fs->zero_ok && strcmp(PQcmdTuples(res), "0") == 0)
            rc = pcf_error_set(err, PCF_ERR_INVALID, "%s:%ld: %s '%s' belongs to another zone or does not exist",
                               path, line, fs->cols[0].name, params[0]);
        PQclear(res);
        (*rows)++;
    }
    csv_destroy(&r);
    fclose(f);
    return rc;
}

static pcf_rc s_load_set(PGconn *c, const char *zone, const char *dir, const file_spec *specs,
                         size_t n, long *rows, pcf_error *err)
{
    *rows = 0;
    pcf_rc rc = db_exec(c, "BEGIN", err);
    const char *p[1] = { zone };
    if (rc == PCF_OK) {
        PGresult *z = db_query(c, "SELECT 1 FROM zone WHERE zone_id = $1", 1, p, err);
        if (!z) rc = PCF_ERR_DB;
        else if (PQntuples(z) != 1) rc = pcf_error_set(err, PCF_ERR_INVALID, "zone %s does not exist", zone);
        PQclear(z);
    }
    for (size_t i = 0; i < n && rc == PCF_OK; i++) {
        char path[4096];
        if (dir) snprintf(path, sizeof path, "%s/%s", dir, specs[i].file);
        else snprintf(path, sizeof path, "%s", specs[i].file);
        rc = s_load_file(c, zone, path, &specs[i], rows, err);
    }
    if (rc == PCF_OK) rc = db_exec(c, "COMMIT", err);
    if (rc != PCF_OK) {
        db_rollback(c);
        *rows = 0;
    }
    return rc;
}

/* ---- the files ------------------------------------------------------------ */

#define FUELS "solar|wind|battery|hydro|gas|diesel|biomass|chp|other"

static const file_spec s_der_files[] = {
    { "sites.csv", 0,
      { { "site_id", COL_ID, NULL }, { "name", COL_TEXT, NULL }, { "bus", COL_NUM, NULL },
        { "export_capacity_mw", COL_NUM, NULL }, { "import_capacity_mw", COL_NUM_OPT, NULL },
        { "latitude", COL_NUM_OPT, NULL }, { "longitude", COL_NUM_OPT, NULL } }, 7,
      "INSERT INTO der_site (site_id, name, bus_i, export_capacity_mw, import_capacity_mw, latitude, longitude, zone_id)"
      " VALUES ($1, $2, $3::bigint, $4, coalesce($5::float8, 0), $6, $7, $8)"
      " ON CONFLICT (site_id) DO UPDATE SET name = EXCLUDED.name, bus_i = EXCLUDED.bus_i,"
      " export_capacity_mw = EXCLUDED.export_capacity_mw, import_capacity_mw = EXCLUDED.import_capacity_mw,"
      " latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude"
      " WHERE der_site.zone_id = EXCLUDED.zone_id", 0 },
    { "enquiries.csv", 0,
      { { "enquiry_id", COL_ID, NULL }, { "site_id", COL_ID, NULL }, { "capacity_mw", COL_NUM, NULL },
        { "firm", COL_BOOL, NULL }, { "lifo_position", COL_INT_OPT, NULL },
        { "anm_type", COL_ENUM, "NONE|DANM|TANM|DANM+TANM" },
        { "status", COL_ENUM_OPT, "enquiry|offered|accepted|connected|withdrawn" },
        { "enquiry_date", COL_DATE_OPT, NULL }, { "connection_date", COL_DATE_OPT, NULL } }, 9,
      "INSERT INTO der_enquiry (enquiry_id, site_id, capacity_mw, firm, lifo_position, anm_type, status,"
      " enquiry_date, connection_date, zone_id)"
      " VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, 'connected'), $8, $9, $10)"
      " ON CONFLICT (enquiry_id) DO UPDATE SET site_id = EXCLUDED.site_id, capacity_mw = EXCLUDED.capacity_mw,"
      " firm = EXCLUDED.firm, lifo_position = EXCLUDED.lifo_position, anm_type = EXCLUDED.anm_type,"
      " status = EXCLUDED.status, enquiry_date = EXCLUDED.enquiry_date,"
      " connection_date = EXCLUDED.connection_date WHERE der_enquiry.zone_id = EXCLUDED.zone_id", 0 },
    { "machines.csv", 1,
      { { "machine_id", COL_ID, NULL }, { "site_id", COL_ID, NULL }, { "fuel_type", COL_ENUM, FUELS },
        { "installed_capacity_mw", COL_NUM, NULL }, { "hub_height_m", COL_NUM_OPT, NULL },
        { "tilt_deg", COL_NUM_OPT, NULL }, { "azimuth_deg", COL_NUM_OPT, NULL } }, 7,
      "INSERT INTO der_machine (machine_id, site_id, fuel_type, installed_capacity_mw, hub_height_m,"
      " tilt_deg, azimuth_deg)"
      " SELECT $1, $2, $3, $4, $5, $6, $7 FROM der_site WHERE site_id = $2 AND zone_id = $8"
      " ON CONFLICT (machine_id) DO UPDATE SET site_id = EXCLUDED.site_id, fuel_type = EXCLUDED.fuel_type,"
      " installed_capacity_mw = EXCLUDED.installed_capacity_mw, hub_height_m = EXCLUDED.hub_height_m,"
      " tilt_deg = EXCLUDED.tilt_deg, azimuth_deg = EXCLUDED.azimuth_deg", 0 },
};

/* Weather locations belong to the zone; ingest refuses forecasts for
 * locations it does not know. */
static const file_spec s_wx_file = {
    "weather_locations.csv", 1,
    { { "location_id", COL_ID, NULL }, { "latitude", COL_NUM, NULL }, { "longitude", COL_NUM, NULL },
      { "elevation_m", COL_NUM_OPT, NULL } }, 4,
    "INSERT INTO weather_location (location_id, latitude, longitude, elevation_m, zone_id)"
    " VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (location_id) DO UPDATE SET latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,"
    " elevation_m = EXCLUDED.elevation_m WHERE weather_location.zone_id = EXCLUDED.zone_id", 0
};

static const file_spec s_anm_files[] = {
    { "branches.csv", 1,
      { { "branch", COL_BRANCH, NULL }, { "name", COL_ID, NULL },
        { "kind", COL_ENUM, "line|cable|transformer" }, { "fault_rate_per_year", COL_NUM_OPT, NULL },
        { "mean_repair_hours", COL_NUM_OPT, NULL } }, 5,
      "UPDATE branch SET name = $2, kind = $3, fault_rate_per_year = $4, mean_repair_hours = $5"
      " WHERE branch_id = $1::bigint AND zone_id = $6", 0 },
    { "ratings.csv", 1,
      { { "branch", COL_BRANCH, NULL }, { "season", COL_ENUM, "winter|spring|summer|autumn" },
        { "continuous_mva", COL_NUM, NULL }, { "pel_mva", COL_NUM_OPT, NULL },
        { "post_fault_mva", COL_NUM, NULL } }, 5,
      "INSERT INTO branch_rating (branch_id, season, continuous_mva, pel_mva, post_fault_mva)"
      " SELECT $1::bigint, $2, $3, $4, $5 FROM branch WHERE branch_id = $1::bigint AND zone_id = $6"
      " ON CONFLICT (branch_id, season) DO UPDATE SET continuous_mva = EXCLUDED.continuous_mva,"
      " pel_mva = EXCLUDED.pel_mva, post_fault_mva = EXCLUDED.post_fault_mva", 0 },
    { "equipment.csv", 1,
      { { "equipment_id", COL_ID, NULL }, { "branch", COL_BRANCH, NULL } }, 2,
      "INSERT INTO equipment_branch (equipment_id, branch_id)"
      " SELECT $1, $2::bigint FROM branch WHERE branch_id = $2::bigint AND zone_id = $3"
      " ON CONFLICT (equipment_id) DO UPDATE SET branch_id = EXCLUDED.branch_id"
      " WHERE equipment_branch.branch_id IN (SELECT branch_id FROM branch WHERE zone_id = $3)", 0 },
    { "constraints.csv", 0,
      { { "constraint_id", COL_ID, NULL }, { "scheme_id", COL_ID, NULL }, { "description", COL_TEXT, NULL },
        { "kind", COL_ENUM, "branch|transformer|boundary" }, { "anm_type", COL_ENUM, "DANM|TANM" },
        { "voltage_kv", COL_NUM, NULL }, { "limit_mw", COL_NUM_OPT, NULL },
        { "trim_pct", COL_NUM_OPT, NULL }, { "release_pct", COL_NUM_OPT, NULL } }, 9,
      "WITH s AS (INSERT INTO anm_scheme (scheme_id, zone_id) VALUES ($2, $10) ON CONFLICT (scheme_id) DO NOTHING)"
      " INSERT INTO anm_constraint (constraint_id, scheme_id, description, kind, anm_type, voltage_kv, limit_mw,"
      " trim_pct, release_pct, zone_id)"
      " VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8::float8, 100), coalesce($9::float8, 95), $10)"
      " ON CONFLICT (constraint_id) DO UPDATE SET scheme_id = EXCLUDED.scheme_id,"
      " description = EXCLUDED.description, kind = EXCLUDED.kind, anm_type = EXCLUDED.anm_type,"
      " voltage_kv = EXCLUDED.voltage_kv, limit_mw = EXCLUDED.limit_mw, trim_pct = EXCLUDED.trim_pct,"
      " release_pct = EXCLUDED.release_pct, bus_i = NULL, vmax_pu = NULL, vmin_pu = NULL"
      " WHERE anm_constraint.zone_id = EXCLUDED.zone_id", 0 },
    /* Voltage constraints (sql/006_voltage.sql): the function checks the
     * bus and the limits with messages that name them, and takes the
     * ordering voltage from the bus's base kV. */
    { "voltage_constraints.csv", 1,
      { { "constraint_id", COL_ID, NULL }, { "scheme_id", COL_ID, NULL }, { "description", COL_TEXT, NULL },
        { "anm_type", COL_ENUM, "DANM|TANM" }, { "bus", COL_NUM, NULL }, { "vmax_pu", COL_NUM, NULL },
        { "vmin_pu", COL_NUM, NULL }, { "trim_pct", COL_NUM_OPT, NULL }, { "release_pct", COL_NUM_OPT, NULL } }, 9,
      "SELECT anm_voltage_constraint_upsert($1, $2, $3, $4, $5::bigint, $6, $7, $8, $9, $10)", 0 },
    { "constraint_branches.csv", 0,
      { { "constraint_id", COL_ID, NULL }, { "branch", COL_BRANCH, NULL }, { "sign", COL_ENUM, "1|-1|+1" } }, 3,
      "INSERT INTO anm_constraint_branch (constraint_id, branch_id, sign, zone_id)"
      " VALUES ($1, $2::bigint, $3::smallint, $4)"
      " ON CONFLICT (constraint_id, branch_id) DO UPDATE SET sign = EXCLUDED.sign"
      " WHERE anm_constraint_branch.zone_id = EXCLUDED.zone_id", 0 },
    { "constraint_sites.csv", 0,
      { { "constraint_id", COL_ID, NULL }, { "site_id", COL_ID, NULL } }, 2,
      "INSERT INTO anm_constraint_site (constraint_id, site_id, zone_id) VALUES ($1, $2, $3)"
      " ON CONFLICT (constraint_id, site_id) DO NOTHING", 1 },
};

static const file_spec s_point_file = {
    NULL, 0,
    { { "point_id", COL_ID, NULL },
      { "quantity", COL_ENUM, "p_mw|q_mvar|i_a|v_kv|v_pu|breaker_state" },
      { "element", COL_ENUM, "branch|bus|site" }, { "branch", COL_BRANCH_OPT, NULL },
      { "branch_end", COL_ENUM_OPT, "from|to" }, { "bus", COL_INT_OPT, NULL },
      { "site_id", COL_TEXT, NULL }, { "scale", COL_NUM_OPT, NULL } }, 8,
    "INSERT INTO measurement_point (point_id, quantity, element, branch_id, branch_end, bus_i, site_id, scale, zone_id)"
    " VALUES ($1, $2, $3, $4::bigint, $5, $6::bigint, nullif($7, ''), coalesce($8::float8, 1), $9)"
    " ON CONFLICT (point_id) DO UPDATE SET quantity = EXCLUDED.quantity, element = EXCLUDED.element,"
    " branch_id = EXCLUDED.branch_id, branch_end = EXCLUDED.branch_end, bus_i = EXCLUDED.bus_i,"
    " site_id = EXCLUDED.site_id, scale = EXCLUDED.scale WHERE measurement_point.zone_id = EXCLUDED.zone_id", 0
};

pcf_rc registry_import_der(PGconn *c, const char *zone, const char *dir, long *rows, pcf_error *err)
{
    file_spec all[sizeof s_der_files / sizeof s_der_files[0] + 1];
    size_t n = sizeof s_der_files / sizeof s_der_files[0];
    memcpy(all, s_der_files, sizeof s_der_files);
    all[n] = s_wx_file;
    return s_load_set(c, zone, dir, all, n + 1, rows, err);
}

pcf_rc registry_import_anm(PGconn *c, const char *zone, const char *dir, long *rows, pcf_error *err)
{
    return s_load_set(c, zone, dir, s_anm_files, sizeof s_anm_files / sizeof s_anm_files[0], rows, err);
}

pcf_rc registry_import_points(PGconn *c, const char *zone, const char *file, long *rows, pcf_error *err)
{
    file_spec fs = s_point_file;
    fs.file = file;
    return s_load_set(c, zone, NULL, &fs, 1, rows, err);
}
