/*
 * history.c -- see history.h.
 *
 * COPY TO STDOUT hands us one row per PQgetCopyData call.  Weather rows
 * (text format) hold only integers and numbers (the server turned ids into
 * indices), so a row is split on tabs and each field goes through parse.h.
 * SCADA rows (binary format) are walked field by field, every length checked
 * against the row before it is read.  Identifiers that must appear inside a
 * COPY statement (COPY takes no parameters) are quoted with
 * PQescapeLiteral, never pasted raw.
 */
#include "history.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "parse.h"

#define S_MAX_GAP 10800         /* weather: interpolate across at most 3 h */

static int64_t s_floor_slot(int64_t t)
{
    int64_t r = t % HISTORY_SLOT;
    return t - (r < 0 ? r + HISTORY_SLOT : r);
}

pcf_rc history_new(int64_t t0, size_t nt, size_t npoint, history **out, pcf_error *err)
{
    *out = NULL;
    if (nt > HISTORY_MAX_SLOTS || npoint > 100000 || (npoint && nt > SIZE_MAX / sizeof(double) / npoint))
        return pcf_error_set(err, PCF_ERR_LIMIT, "history: %zu points x %zu half-hours is too large", npoint, nt);
    history *h = calloc(1, sizeof *h);
    double *v = malloc((npoint * nt > 0 ? npoint * nt : 1) * sizeof *v);
    if (!h || !v) {
        free(h);
        free(v);
        return pcf_error_set(err, PCF_ERR_NOMEM, "history: out of memory");
    }
    for (size_t i = 0; i < npoint * nt; i++) v[i] = NAN;
    h->t0 = s_floor_slot(t0);
    h->nt = nt;
    h->npoint = npoint;
    h->value = v;
    *out = h;
    return PCF_OK;
}

void history_destroy(history **hp)
{
    if (!hp || !*hp) return;
    free((*hp)->value);
    free(*hp);
    *hp = NULL;
}

pcf_rc wx_series_new(int64_t t0, size_t nt, const wx_location *loc, size_t nloc, const char *const *vars,
                     size_t nvar, size_t nmember, wx_series **out, pcf_error *err)
{
    *out = NULL;
    if (nvar > WX_MAX_VARS || nmember < 1 || nmember > WX_MAX_MEMBERS || nloc > WX_MAX_LOCATIONS ||
        nt > HISTORY_MAX_SLOTS)
        return pcf_error_set(err, PCF_ERR_LIMIT, "weather: %zu locations x %zu variables x %zu members x %zu"
                             " half-hours is beyond the limits", nloc, nvar, nmember, nt);
    size_t n = nloc * nvar * nmember * nt;
    if (nloc && nvar && nmember && nt > SIZE_MAX / sizeof(double) / (nloc * nvar * nmember))
        return pcf_error_set(err, PCF_ERR_LIMIT, "weather: too large");
    wx_series *w = calloc(1, sizeof *w);
    double *v = malloc((n ? n : 1) * sizeof *v);
    wx_location *l = calloc(nloc ? nloc : 1, sizeof *l);
    if (!w || !v || !l) {
        free(w);
        free(v);
        free(l);
        return pcf_error_set(err, PCF_ERR_NOMEM, "weather: out of memory");
    }
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    if (nloc) memcpy(l, loc, nloc * sizeof *l);
    for (size_t k = 0; k < nvar; k++) {
        size_t len = strlen(vars[k]);
        if (len >= WX_VAR_MAX) {
            free(w);
            free(v);
            free(l);
            return pcf_error_set(err, PCF_ERR_LIMIT, "weather: variable name '%.40s...' too long", vars[k]);
        }
        memcpy(w->var[k], vars[k], len + 1);
    }
    w->t0 = s_floor_slot(t0);
    w->nt = nt;
    w->nloc = nloc;
    w->loc = l;
    w->nvar = nvar;
    w->nmember = nmember;
    w->v = v;
    *out = w;
    return PCF_OK;
}

void wx_series_destroy(wx_series **wp)
{
    if (!wp || !*wp) return;
    free((*wp)->v);
    free((*wp)->loc);
    free(*wp);
    *wp = NULL;
}

long wx_var_find(const wx_series *w, const char *name)
{
    for (size_t k = 0; w && k < w->nvar; k++)
        if (strcmp(w->var[k], name) == 0) return (long)k;
    return -1;
}

double wx_at(const wx_series *w, size_t loc, size_t var, size_t member, int64_t t)
{
    if (!w || loc >= w->nloc || var >= w->nvar || member >= w->nmember || t < w->t0) return NAN;
    int64_t i = (t - w->t0) / HISTORY_SLOT;
    if ((uint64_t)i >= w->nt) return NAN;
    return wx_row(w, loc, var, member)[i];
}

/* ---- COPY streaming ---------------------------------------------------------- */

/* Splits a COPY text row into at most max tab-separated fields. */
static size_t s_fields(const char *row, size_t len, const char **f, size_t *flen, size_t max)
{
    size_t n = 0, start = 0;
    if (len && row[len - 1] == '\n') len--;
    for (size_t i = 0; i <= len && n < max; i++) {
        if (i == len || row[i] == '\t') {
            f[n] = row + start;
            flen[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    return n;
}

typedef pcf_rc (*s_row_fn)(void *ctx, const char **f, const size_t *flen, size_t nf, pcf_error *err);

/* Runs `COPY (sql) TO STDOUT` and feeds every row to fn. */
static pcf_rc s_copy_out(PGconn *conn, const char *sql, s_row_fn fn, void *ctx, pcf_error *err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        pcf_rc rc = pcf_error_set(err, PCF_ERR_DB, "COPY: %s", PQerrorMessage(conn));
        PQclear(res);
        return rc;
    }
    PQclear(res);
    pcf_rc rc = PCF_OK;
    char *buf = NULL;
    int len;
    while ((len = PQgetCopyData(conn, &buf, 0)) > 0) {
        if (rc == PCF_OK) {
            const char *f[8];
            size_t fl[8];
            size_t nf = s_fields(buf, (size_t)len, f, fl, 8);
            rc = fn(ctx, f, fl, nf, err);
        }
        PQfreemem(buf);     /* keep draining after an error so the connection stays usable */
    }
    if (len == -2 && rc == PCF_OK) rc = pcf_error_set(err, PCF_ERR_DB, "COPY: %s", PQerrorMessage(conn));
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == PCF_OK)
            rc = pcf_error_set(err, PCF_ERR_DB, "COPY: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    return rc;
}

/* Big-endian readers for COPY BINARY fields. */
static uint64_t s_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static uint32_t s_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One field of a COPY BINARY row: its bytes, or NULL for SQL NULL. */
typedef struct s_field {
    const unsigned char *p;
    uint32_t len;
} s_field;

typedef pcf_rc (*s_bin_fn)(void *ctx, const s_field *f, size_t nf, pcf_error *err);

/* Runs `COPY (sql) TO STDOUT (FORMAT binary)` with ncol columns and feeds
 * each row's fields to fn.  Binary avoids formatting and parsing a million
 * numbers as text on each side.  Rows must have exactly ncol fields, each
 * inside the buffer (checked: the stream is input like any other). */
static pcf_rc s_copy_out_binary(PGconn *conn, const char *sql, size_t ncol, s_bin_fn fn, void *ctx, pcf_error *err)
{
    static const unsigned char sig[11] = { 'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0 };
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_COPY_OUT) {
        pcf_rc rc = pcf_error_set(err, PCF_ERR_DB, "COPY: %s", PQerrorMessage(conn));
        PQclear(res);
        return rc;
    }
    PQclear(res);
    pcf_rc rc = PCF_OK;
    bool header = false;
    char *buf = NULL;
    int len;
    s_field f[8];
    if (ncol > 8) ncol = 8;
    while ((len = PQgetCopyData(conn, &buf, 0)) > 0) {
        const unsigned char *p = (const unsigned char *)buf, *end = p + len;
        if (rc == PCF_OK && !header) {
            /* signature, flags, header extension length, extension */
            if (len < 19 || memcmp(p, sig, sizeof sig) != 0) {
                rc = pcf_error_set(err, PCF_ERR_PARSE, "COPY BINARY: bad header");
            } else {
                uint32_t ext = s_be32(p + 15);
                if (ext > (uint32_t)(len - 19)) rc = pcf_error_set(err, PCF_ERR_PARSE, "COPY BINARY: bad header");
                else p += 19 + ext;
            }
            header = true;
        }
        while (rc == PCF_OK && p + 2 <= end) {
            int16_t nf = (int16_t)((p[0] << 8) | p[1]);
            p += 2;
            if (nf == -1) break;    /* trailer */
            if ((size_t)nf != ncol) {
                rc = pcf_error_set(err, PCF_ERR_PARSE, "COPY BINARY: row of %d fields, expected %zu", nf, ncol);
                break;
            }
            for (size_t k = 0; k < ncol && rc == PCF_OK; k++) {
                if (end - p < 4) {
                    rc = pcf_error_set(err, PCF_ERR_PARSE, "COPY BINARY: row cut short");
                    break;
                }
                uint32_t fl = s_be32(p);
                p += 4;
                if (fl == 0xffffffffu) {
                    f[k] = (s_field){ NULL, 0 };
                    continue;
                }
                if ((uint64_t)(end - p) < fl) {
                    rc = pcf_error_set(err, PCF_ERR_PARSE, "COPY BINARY: field longer than its row");
                    break;
                }
                f[k] = (s_field){ p, fl };
                p += fl;
            }
            if (rc == PCF_OK) rc = fn(ctx, f, ncol, err);
        }
        PQfreemem(buf);
    }
    if (len == -2 && rc == PCF_OK) rc = pcf_error_set(err, PCF_ERR_DB, "COPY: %s", PQerrorMessage(conn));
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == PCF_OK)
            rc = pcf_error_set(err, PCF_ERR_DB, "COPY: %s", PQresultErrorMessage(res));
        PQclear(res);
    }
    return rc;
}

static pcf_rc s_long_field(const char *f, size_t n, long *out, pcf_error *err)
{
    if (parse_long(f, n, out) != PCF_OK)
        return pcf_error_set(err, PCF_ERR_PARSE, "COPY: bad integer '%.*s'", (int)(n > 40 ? 40 : n), f);
    return PCF_OK;
}

static pcf_rc s_double_field(const char *f, size_t n, double *out, pcf_error *err)
{
    if (parse_double(f, n, out) != PCF_OK)
        return pcf_error_set(err, PCF_ERR_PARSE, "COPY: bad number '%.*s'", (int)(n > 40 ? 40 : n), f);
    return PCF_OK;
}

/* ---- SCADA --------------------------------------------------------------------- */

typedef struct s_scada_ctx {
    const zone *z;
    history *h;
    unsigned *count;            /* values summed into each slot */
} s_scada_ctx;

/* PostgreSQL timestamps count microseconds from 2000-01-01T00:00Z. */
#define S_PG_EPOCH 946684800LL

/* Index of the zone point whose id is the n bytes at p (points are sorted
 * by id in byte order), or -1. */
static long s_point_index(const zone *z, const unsigned char *p, size_t n)
{
    size_t lo = 0, hi = z->npoint;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *id = z->point[mid].id;
        size_t il = strlen(id);
        int c = memcmp(id, p, il < n ? il : n);
        if (c == 0) c = il < n ? -1 : il > n ? 1 : 0;
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

static pcf_rc s_scada_row(void *vctx, const s_field *f, size_t nf, pcf_error *err)
{
    s_scada_ctx *ctx = vctx;
    (void)nf;
    if (!f[0].p || !f[1].p || f[1].len != 8 || !f[2].p || f[2].len != 8)
        return pcf_error_set(err, PCF_ERR_PARSE, "measurement: unexpected field layout");
    long k = s_point_index(ctx->z, f[0].p, f[0].len);
    int64_t us = (int64_t)s_be64(f[1].p);
    uint64_t bits = s_be64(f[2].p);
    double v;
    memcpy(&v, &bits, sizeof v);
    history *h = ctx->h;
    if (k < 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "measurement: point '%.*s' is not one of the zone's"
                             " (load the zone in the same transaction)", (int)(f[0].len > 64 ? 64 : f[0].len),
                             (const char *)f[0].p);
    if (!isfinite(v)) return pcf_error_set(err, PCF_ERR_INVALID, "measurement: non-finite value");
    /* floor division: instants before 2000 are negative */
    int64_t ts = (us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000)) + S_PG_EPOCH;
    if (ts < h->t0) return PCF_OK;
    size_t i = (size_t)((ts - h->t0) / HISTORY_SLOT);
    if (i >= h->nt) return PCF_OK;
    size_t at = (size_t)k * h->nt + i;
    if (ctx->count[at] == 0) h->value[at] = 0.0;
    h->value[at] += v;
    ctx->count[at]++;
    return PCF_OK;
}

/* ARRAY['id1','id2',...]::text[] of the zone's point ids, each escaped by
 * libpq; NULL on failure. */
static char *s_point_array(PGconn *conn, const zone *z)
{
    size_t cap = 32;
    for (size_t i = 0; i < z->npoint; i++) cap += 2 * strlen(z->point[i].id) + 8;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t at = (size_t)snprintf(s, cap, "ARRAY[");
    for (size_t i = 0; i < z->npoint; i++) {
        char *lit = PQescapeLiteral(conn, z->point[i].id, strlen(z->point[i].id));
        if (!lit) {
            free(s);
            return NULL;
        }
        at += (size_t)snprintf(s + at, cap - at, "%s%s", i ? "," : "", lit);
        PQfreemem(lit);
    }
    snprintf(s + at, cap - at, "]::text[]");
    return s;
}

pcf_rc history_load_scada(PGconn *conn, const zone *z, int64_t from, int64_t to, history **out, pcf_error *err)
{
    *out = NULL;
    int64_t t0 = s_floor_slot(from), t1 = s_floor_slot(to + HISTORY_SLOT - 1);
    if (t1 <= t0) return pcf_error_set(err, PCF_ERR_INVALID, "history: empty time range");
    if ((uint64_t)(t1 - t0) / HISTORY_SLOT > HISTORY_MAX_SLOTS)
        return pcf_error_set(err, PCF_ERR_LIMIT, "history: more than %u half-hours asked for", HISTORY_MAX_SLOTS);
    history *h;
    pcf_rc rc = history_new(t0, (size_t)((t1 - t0) / HISTORY_SLOT), z->npoint, &h, err);
    if (rc != PCF_OK) return rc;
    unsigned *count = calloc(h->npoint * h->nt > 0 ? h->npoint * h->nt : 1, sizeof *count);
    char *arr = z->npoint ? s_point_array(conn, z) : NULL;
    char *sql = NULL;
    if (!count || (z->npoint && !arr)) {
        rc = pcf_error_set(err, count ? PCF_ERR_DB : PCF_ERR_NOMEM, "history: %s",
                           count ? PQerrorMessage(conn) : "out of memory");
    } else if (z->npoint &&
               /* A constant array makes `point_id = ANY` a hashed filter on a
                * sequential scan of the partitions in range; a join with
                * measurement_point led the planner to per-point index scans
                * (each re-reading every heap page of a partition written in
                * time order), 3-4x slower for a year.  The client maps ids
                * to indices by binary search. */
               asprintf(&sql,
                        "COPY (SELECT m.point_id, m.ts, m.value FROM measurement m"
                        " WHERE m.point_id = ANY(%s)"
                        " AND m.ts >= to_timestamp(%lld) AND m.ts < to_timestamp(%lld) AND m.quality <> 'bad')"
                        " TO STDOUT (FORMAT binary)", arr, (long long)t0, (long long)t1) < 0) {
        sql = NULL;
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "history: out of memory");
    }
    if (rc == PCF_OK && sql) {
        s_scada_ctx ctx = { z, h, count };
        rc = s_copy_out_binary(conn, sql, 3, s_scada_row, &ctx, err);
    }
    for (size_t i = 0; rc == PCF_OK && i < h->npoint * h->nt; i++)
        if (count[i] > 1) h->value[i] /= count[i];
    free(sql);
    free(arr);
    free(count);
    if (rc != PCF_OK) {
        history_destroy(&h);
        return rc;
    }
    *out = h;
    return PCF_OK;
}

/* ---- weather -------------------------------------------------------------------- */

typedef struct s_wx_ctx {
    wx_series *w;
    long key[3];                /* current (loc, var, member) group; -1 none */
    size_t n, cap;
    int64_t *te;                /* effective times of the group's raw values */
    double *val;
    long max_member_seen;
} s_wx_ctx;

/* Interpolates the collected raw values of the current group onto the grid. */
static void s_wx_flush(s_wx_ctx *c)
{
    if (c->key[0] < 0 || c->n == 0) {
        c->n = 0;
        return;
    }
    wx_series *w = c->w;
    double *row = wx_row(w, (size_t)c->key[0], (size_t)c->key[1], (size_t)c->key[2]);
    size_t j = 0;
    for (size_t i = 0; i < w->nt; i++) {
        int64_t m = w->t0 + (int64_t)i * HISTORY_SLOT + HISTORY_SLOT / 2;
        while (j + 1 < c->n && c->te[j + 1] <= m) j++;
        if (c->te[j] == m) {
            row[i] = c->val[j];
        } else if (c->te[j] < m && j + 1 < c->n && c->te[j + 1] > m && c->te[j + 1] - c->te[j] <= S_MAX_GAP) {
            double a = (double)(m - c->te[j]) / (double)(c->te[j + 1] - c->te[j]);
            row[i] = c->val[j] + a * (c->val[j + 1] - c->val[j]);
        }
    }
    c->n = 0;
}

static pcf_rc s_wx_row(void *vctx, const char **f, const size_t *fl, size_t nf, pcf_error *err)
{
    s_wx_ctx *c = vctx;
    long k[3], valid, interval;
    double v;
    pcf_rc rc;
    if (nf != 6) return pcf_error_set(err, PCF_ERR_PARSE, "COPY: %zu fields, expected 6", nf);
    for (int i = 0; i < 3; i++)
        if ((rc = s_long_field(f[i], fl[i], &k[i], err)) != PCF_OK) return rc;
    if ((rc = s_long_field(f[3], fl[3], &valid, err)) != PCF_OK) return rc;
    if ((rc = s_long_field(f[4], fl[4], &interval, err)) != PCF_OK) return rc;
    if ((rc = s_double_field(f[5], fl[5], &v, err)) != PCF_OK) return rc;
    wx_series *w = c->w;
    if (k[0] < 0 || (size_t)k[0] >= w->nloc || k[1] < 0 || (size_t)k[1] >= w->nvar || k[2] < 0 ||
        (size_t)k[2] >= w->nmember)
        return pcf_error_set(err, PCF_ERR_INVALID, "weather_forecast: index out of range (%ld, %ld, %ld)", k[0],
                             k[1], k[2]);
    if (k[0] != c->key[0] || k[1] != c->key[1] || k[2] != c->key[2]) {
        s_wx_flush(c);
        memcpy(c->key, k, sizeof k);
    }
    if (k[2] > c->max_member_seen) c->max_member_seen = k[2];
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        if (cap > 4u * HISTORY_MAX_SLOTS)
            return pcf_error_set(err, PCF_ERR_LIMIT, "weather_forecast: more than %u values in one series",
                                 4u * HISTORY_MAX_SLOTS);
        int64_t *te = realloc(c->te, cap * sizeof *te);
        if (te) c->te = te;
        double *val = realloc(c->val, cap * sizeof *val);
        if (val) c->val = val;
        if (!te || !val) return pcf_error_set(err, PCF_ERR_NOMEM, "weather: out of memory");
        c->cap = cap;
    }
    int64_t te = (int64_t)valid - interval / 2;
    if (c->n && te <= c->te[c->n - 1]) return PCF_OK;   /* keep time strictly increasing */
    c->te[c->n] = te;
    c->val[c->n] = v;
    c->n++;
    return PCF_OK;
}

static pcf_rc s_wx_locations(PGconn *conn, const char *zone_id, wx_location **loc, size_t *nloc, pcf_error *err)
{
    const char *p[1] = { zone_id };
    PGresult *res = db_query(conn, "SELECT location_id, latitude, longitude FROM weather_location"
                                   " WHERE zone_id = $1 ORDER BY location_id COLLATE \"C\"", 1, p, err);
    if (!res) return PCF_ERR_DB;
    size_t n = (size_t)PQntuples(res);
    pcf_rc rc = PCF_OK;
    if (n > WX_MAX_LOCATIONS) rc = pcf_error_set(err, PCF_ERR_LIMIT, "zone %s: more than %d weather locations",
                                                 zone_id, WX_MAX_LOCATIONS);
    *loc = rc == PCF_OK ? calloc(n ? n : 1, sizeof **loc) : NULL;
    if (rc == PCF_OK && !*loc) rc = pcf_error_set(err, PCF_ERR_NOMEM, "weather: out of memory");
    for (size_t i = 0; i < n && rc == PCF_OK; i++) {
        int r = (int)i;
        size_t len = (size_t)PQgetlength(res, r, 0);
        if (len > ZONE_ID_MAX) {
            rc = pcf_error_set(err, PCF_ERR_LIMIT, "weather_location row %zu: id too long", i + 1);
            break;
        }
        memcpy((*loc)[i].id, PQgetvalue(res, r, 0), len);
        if (parse_double(PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1), &(*loc)[i].latitude) != PCF_OK ||
            parse_double(PQgetvalue(res, r, 2), (size_t)PQgetlength(res, r, 2), &(*loc)[i].longitude) != PCF_OK)
            rc = pcf_error_set(err, PCF_ERR_PARSE, "weather_location %s: bad coordinates", (*loc)[i].id);
    }
    PQclear(res);
    if (rc != PCF_OK) {
        free(*loc);
        *loc = NULL;
        return rc;
    }
    *nloc = n;
    return PCF_OK;
}

/* Builds ARRAY['a','b']::text[] with escaped literals; NULL on failure. */
static char *s_var_array(PGconn *conn, const char *const *vars, size_t nvar)
{
    size_t cap = 32;
    for (size_t k = 0; k < nvar; k++) cap += 2 * strlen(vars[k]) + 8;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t at = (size_t)snprintf(s, cap, "ARRAY[");
    for (size_t k = 0; k < nvar; k++) {
        char *lit = PQescapeLiteral(conn, vars[k], strlen(vars[k]));
        if (!lit) {
            free(s);
            return NULL;
        }
        at += (size_t)snprintf(s + at, cap - at, "%s%s", k ? "," : "", lit);
        PQfreemem(lit);
    }
    snprintf(s + at, cap - at, "]::text[]");
    return s;
}

/* Drops member slots beyond the largest member present. */
static void s_wx_compact(wx_series *w, size_t nmember)
{
    if (nmember >= w->nmember) return;
    size_t nt = w->nt;
    for (size_t l = 0; l < w->nloc; l++)
        for (size_t v = 0; v < w->nvar; v++)
            for (size_t m = 0; m < nmember; m++)
                memmove(w->v + ((l * w->nvar + v) * nmember + m) * nt, wx_row(w, l, v, m), nt * sizeof(double));
    w->nmember = nmember;
}

pcf_rc history_load_weather(PGconn *conn, const char *zone_id, const char *const *vars, size_t nvar,
                            int64_t from, int64_t to, int64_t issued_before, int max_member, wx_series **out,
                            pcf_error *err)
{
    *out = NULL;
    if (max_member < 0 || max_member >= WX_MAX_MEMBERS)
        return pcf_error_set(err, PCF_ERR_INVALID, "weather: max_member %d out of 0..%d", max_member,
                             WX_MAX_MEMBERS - 1);
    if (nvar < 1 || nvar > WX_MAX_VARS)
        return pcf_error_set(err, PCF_ERR_INVALID, "weather: 1..%d variables", WX_MAX_VARS);
    int64_t t0 = s_floor_slot(from), t1 = s_floor_slot(to + HISTORY_SLOT - 1);
    if (t1 <= t0 || (uint64_t)(t1 - t0) / HISTORY_SLOT > HISTORY_MAX_SLOTS)
        return pcf_error_set(err, PCF_ERR_INVALID, "weather: bad time range");
    wx_location *loc = NULL;
    size_t nloc = 0;
    pcf_rc rc = s_wx_locations(conn, zone_id, &loc, &nloc, err);
    if (rc != PCF_OK) return rc;
    wx_series *w = NULL;
    rc = wx_series_new(t0, (size_t)((t1 - t0) / HISTORY_SLOT), loc, nloc, vars, nvar, (size_t)max_member + 1, &w,
                       err);
    free(loc);
    if (rc != PCF_OK) return rc;

    char *lit = PQescapeLiteral(conn, zone_id, strlen(zone_id));
    char *arr = s_var_array(conn, vars, nvar);
    char *sql = NULL;
    if (!lit || !arr ||
        asprintf(&sql,
                 "COPY (WITH l AS (SELECT location_id, row_number() OVER (ORDER BY location_id COLLATE \"C\") - 1"
                 " AS k FROM weather_location WHERE zone_id = %s),"
                 " v AS (SELECT u.name AS variable, u.k - 1 AS k FROM unnest(%s) WITH ORDINALITY AS u(name, k))"
                 " SELECT DISTINCT ON (l.k, v.k, f.member, f.valid_at) l.k, v.k, f.member,"
                 " floor(extract(epoch FROM f.valid_at))::bigint, f.interval_s, f.value"
                 " FROM weather_forecast f JOIN l USING (location_id) JOIN v USING (variable)"
                 " WHERE f.issued_at <= to_timestamp(%lld) AND f.member <= %d"
                 " AND f.valid_at >= to_timestamp(%lld) AND f.valid_at <= to_timestamp(%lld)"
                 " ORDER BY l.k, v.k, f.member, f.valid_at, f.issued_at DESC, f.model COLLATE \"C\") TO STDOUT",
                 lit, arr, (long long)issued_before, max_member, (long long)(t0 - S_MAX_GAP),
                 (long long)(t1 + S_MAX_GAP)) < 0) {
        sql = NULL;
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "weather: out of memory or bad identifier");
    }
    s_wx_ctx ctx = { .w = w, .key = { -1, -1, -1 }, .max_member_seen = 0 };
    if (rc == PCF_OK) rc = s_copy_out(conn, sql, s_wx_row, &ctx, err);
    if (rc == PCF_OK) {
        s_wx_flush(&ctx);
        s_wx_compact(w, (size_t)ctx.max_member_seen + 1);
    }
    free(ctx.te);
    free(ctx.val);
    free(sql);
    free(arr);
    if (lit) PQfreemem(lit);
    if (rc != PCF_OK) {
        wx_series_destroy(&w);
        return rc;
    }
    *out = w;
    return PCF_OK;
}
