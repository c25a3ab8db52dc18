/*
 * engine_cache.c -- the engine's inputs kept between runs; see
 * engine_cache.h for what is reused and when.
 *
 * Windows are merged slot by slot: the new window's slots before the tail
 * come from the cached window, the rest from a read of the tail alone.
 */
#include "engine_cache.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "parse.h"

/* Per model table, an md5 of its rows in a fixed order: content, not row
 * versions -- xmin is not commit-ordered (an edit by a lower xid committing
 * later changes neither count nor max) and wraps.  The tables are small (a
 * few ms for the demo zone).  Whole tables (every zone): a change to any
 * zone's model reloads, which is rare and cheap. */
#define S_FP(t) "(SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) FROM " t " r)"
/* Batch marks: count and highest id of the loaded batches of each kind.
 * Batch ids come from a sequence and are not commit-ordered either (a long
 * bulk load commits after a later short one), so the count catches a lower
 * id appearing late. */
#define S_BATCH(w) "count(*) FILTER (WHERE " w "), coalesce(max(batch_id) FILTER (WHERE " w "), 0)"
#define S_LIVE "feed = 'scada' AND source LIKE 'zmq:%'"
static const char s_fingerprint_sql[] =
    "SELECT concat_ws(',', " S_FP("zone") ", " S_FP("bus") ", " S_FP("gen") ", " S_FP("branch") ", "
    S_FP("gencost") ", " S_FP("branch_rating") ", " S_FP("anm_constraint") ", " S_FP("anm_constraint_branch") ", "
    S_FP("anm_constraint_site") ", " S_FP("der_site") ", " S_FP("der_enquiry") ", " S_FP("der_machine") ", "
    S_FP("measurement_point") ", " S_FP("weather_location") "), b.* FROM (SELECT "
    S_BATCH("feed = 'scada' AND source NOT LIKE 'zmq:%'") ", " S_BATCH("feed = 'weather'") ", " S_BATCH(S_LIVE)
    " FROM ingest_batch WHERE status = 'loaded') b";

/* Live batches above $1 (the highest live id of the cached window): how
 * many, and how many rows they stored. */
static const char s_live_new_sql[] =
    "SELECT count(*), coalesce(sum(rows_loaded), 0) FROM ingest_batch"
    " WHERE batch_id > $1 AND status = 'loaded' AND " S_LIVE;
/* Rows still carrying the id of one of those batches at or after the tail
 * start $2.  A row a live batch stored is counted in its rows_loaded and
 * carries its id until a later batch overwrites it; so fewer rows here than
 * rows_loaded means data before the tail (or overwritten: a harmless whole
 * read).  Only the tail's partitions are read. */
static const char s_live_tail_sql[] =
    "SELECT count(*) FROM measurement WHERE ts >= to_timestamp($2) AND batch_id = ANY (ARRAY("
    "SELECT batch_id FROM ingest_batch WHERE batch_id > $1 AND status = 'loaded' AND " S_LIVE "))";

typedef struct s_mark {
    long long n, max;
} s_mark;

struct engine_cache {
    char zone_id[ZONE_ID_MAX + 1];
    char *fingerprint;
    zone *z;
    s_mark mark_scada, mark_wx, mark_live; /* as of this run's transaction */
    history *hist;
    s_mark hist_mark;                     /* mark_scada when hist was read whole */
    s_mark hist_live;                     /* mark_live when hist was last read */
    wx_series *wx;
    s_mark wx_mark;
    int64_t wx_issued;
    engine_cache_stats st;
};

pcf_rc engine_cache_new(engine_cache **out, pcf_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? PCF_OK : pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
}

static void s_drop(engine_cache *c)
{
    zone_destroy(&c->z);
    history_destroy(&c->hist);
    wx_series_destroy(&c->wx);
    free(c->fingerprint);
    c->fingerprint = NULL;
    c->zone_id[0] = 0;
}

void engine_cache_destroy(engine_cache **cp)
{
    if (!cp || !*cp) return;
    s_drop(*cp);
    free(*cp);
    *cp = NULL;
}

void engine_cache_get_stats(const engine_cache *c, engine_cache_stats *out)
{
    *out = c->st;
}

pcf_rc engine_cache_zone(engine_cache *c, PGconn *conn, const char *zone_id, zone **z, pcf_error *err)
{
    *z = NULL;
    PGresult *r = db_query(conn, s_fingerprint_sql, 0, NULL, err);
    if (!r) return PCF_ERR_DB;
    const char *fp = PQgetvalue(r, 0, 0);
    long v[6];
    for (int i = 0; i < 6; i++) {
        const char *s = PQgetvalue(r, 0, i + 1);
        if (parse_long(s, strlen(s), &v[i]) != PCF_OK) {
            PQclear(r);
            return pcf_error_set(err, PCF_ERR_DB, "engine cache: unreadable batch marks");
        }
    }
    c->mark_scada = (s_mark){ v[0], v[1] };
    c->mark_wx = (s_mark){ v[2], v[3] };
    c->mark_live = (s_mark){ v[4], v[5] };
    if (c->z && c->fingerprint && strcmp(c->fingerprint, fp) == 0 && strcmp(c->zone_id, zone_id) == 0) {
        PQclear(r);
        c->st.zone_hits++;
        *z = c->z;
        return PCF_OK;
    }
    s_drop(c);
    c->fingerprint = strdup(fp);
    PQclear(r);
    if (!c->fingerprint) return pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
    pcf_rc rc = zone_load(conn, zone_id, NULL, &c->z, err);
    if (rc != PCF_OK) {
        s_drop(c);
        return rc;
    }
    snprintf(c->zone_id, sizeof c->zone_id, "%s", zone_id);
    c->st.zone_loads++;
    *z = c->z;
    return PCF_OK;
}

static int64_t s_floor(int64_t t)
{
    int64_t q = t / HISTORY_SLOT;
    if (t % HISTORY_SLOT < 0) q--;
    return q * HISTORY_SLOT;
}

/* Where the tail read of a forward slide starts, or -1 when the new window
 * [from, to) is not one (read it whole). */
static int64_t s_tail_from(int64_t c_t0, size_t c_nt, int64_t from, int64_t to, int64_t tail)
{
    int64_t t0 = s_floor(from), c_end = c_t0 + (int64_t)c_nt * HISTORY_SLOT;
    int64_t keep = c_end - tail;
    if (c_t0 > t0 || keep <= t0 || keep >= to) return -1;
    return keep;
}

static int s_mark_eq(s_mark a, s_mark b)
{
    return a.n == b.n && a.max == b.max;
}

static pcf_rc s_query_longs(PGconn *conn, const char *sql, int np, const char *const *p, long *out, int nout,
                            pcf_error *err)
{
    PGresult *r = db_query(conn, sql, np, p, err);
    if (!r) return PCF_ERR_DB;
    for (int i = 0; i < nout; i++) {
        const char *s = PQgetvalue(r, 0, i);
        if (parse_long(s, strlen(s), &out[i]) != PCF_OK) {
            PQclear(r);
            return pcf_error_set(err, PCF_ERR_DB, "engine cache: unreadable count");
        }
    }
    PQclear(r);
    return PCF_OK;
}

/* Whether the live batches committed since hist was read stored only rows at
 * or after keep (*ok = 1); a gateway replaying a backlog can send any age. */
static pcf_rc s_live_in_tail(engine_cache *c, PGconn *conn, int64_t keep, int *ok, pcf_error *err)
{
    *ok = 1;
    if (s_mark_eq(c->hist_live, c->mark_live)) return PCF_OK;
    char a[32], b[32];
    snprintf(a, sizeof a, "%lld", c->hist_live.max);
    snprintf(b, sizeof b, "%lld", (long long)keep);
    const char *p[2] = { a, b };
    long nw[2], tail = 0;
    pcf_rc rc = s_query_longs(conn, s_live_new_sql, 1, p, nw, 2, err);
    if (rc != PCF_OK) return rc;
    /* a live batch with an id at or below the old highest committed late:
     * it is not found by id, so read whole */
    if (c->hist_live.n + nw[0] != c->mark_live.n) {
        *ok = 0;
        return PCF_OK;
    }
    if ((rc = s_query_longs(conn, s_live_tail_sql, 2, p, &tail, 1, err)) != PCF_OK) return rc;
    *ok = tail >= nw[1];
    return PCF_OK;
}

pcf_rc engine_cache_scada(engine_cache *c, PGconn *conn, int64_t from, int64_t to, history **h, pcf_error *err)
{
    *h = NULL;
    if (!c->z) return pcf_error_set(err, PCF_ERR_INVALID, "engine cache: no zone");
    int64_t keep = c->hist && s_mark_eq(c->hist_mark, c->mark_scada)
                       ? s_tail_from(c->hist->t0, c->hist->nt, from, to, ENGINE_CACHE_SCADA_TAIL) : -1;
    pcf_rc rc;
    if (keep >= 0) {
        int ok;
        if ((rc = s_live_in_tail(c, conn, keep, &ok, err)) != PCF_OK) return rc;
        if (!ok) keep = -1;
    }
    history *fresh = NULL;
    rc = history_load_scada(conn, c->z, keep >= 0 ? keep : from, to, &fresh, err);
    if (rc != PCF_OK) return rc;
    c->hist_live = c->mark_live;
    if (keep < 0) {
        history_destroy(&c->hist);
        c->hist = fresh;
        c->hist_mark = c->mark_scada;
        c->st.scada_full++;
        *h = c->hist;
        return PCF_OK;
    }
    int64_t t0 = s_floor(from);
    size_t nt = (size_t)((fresh->t0 - t0) / HISTORY_SLOT) + fresh->nt;
    history *m = NULL;
    if ((rc = history_new(t0, nt, c->z->npoint, &m, err)) != PCF_OK) {
        history_destroy(&fresh);
        return rc;
    }
    size_t head = (size_t)((fresh->t0 - t0) / HISTORY_SLOT);
    size_t off = (size_t)((t0 - c->hist->t0) / HISTORY_SLOT);
    for (size_t p = 0; p < m->npoint; p++) {
        memcpy(history_row(m, p), history_row(c->hist, p) + off, head * sizeof(double));
        memcpy(history_row(m, p) + head, history_row(fresh, p), fresh->nt * sizeof(double));
    }
    history_destroy(&fresh);
    history_destroy(&c->hist);
    c->hist = m;
    c->st.scada_tail++;
    *h = c->hist;
    return PCF_OK;
}

pcf_rc engine_cache_weather(engine_cache *c, PGconn *conn, const char *const *vars, size_t nvar, int64_t from,
                            int64_t to, int64_t issued_before, wx_series **w, pcf_error *err)
{
    *w = NULL;
    if (!c->z) return pcf_error_set(err, PCF_ERR_INVALID, "engine cache: no zone");
    int same = c->wx && s_mark_eq(c->wx_mark, c->mark_wx) && c->wx_issued == issued_before && c->wx->nvar == nvar;
    for (size_t v = 0; same && v < nvar; v++) same = strcmp(c->wx->var[v], vars[v]) == 0;
    int64_t keep = same ? s_tail_from(c->wx->t0, c->wx->nt, from, to, ENGINE_CACHE_WX_TAIL) : -1;
    wx_series *fresh = NULL;
    pcf_rc rc = history_load_weather(conn, c->zone_id, vars, nvar, keep >= 0 ? keep : from, to, issued_before, 0,
                                     &fresh, err);
    if (rc != PCF_OK) return rc;
    if (keep < 0 || fresh->nmember != c->wx->nmember || fresh->nloc != c->wx->nloc) {
        if (keep >= 0) {
            /* the tail found what the window did not have: read it whole */
            wx_series_destroy(&fresh);
            rc = history_load_weather(conn, c->zone_id, vars, nvar, from, to, issued_before, 0, &fresh, err);
            if (rc != PCF_OK) return rc;
        }
        wx_series_destroy(&c->wx);
        c->wx = fresh;
        c->wx_mark = c->mark_wx;
        c->wx_issued = issued_before;
        c->st.wx_full++;
        *w = c->wx;
        return PCF_OK;
    }
    int64_t t0 = s_floor(from);
    size_t nt = (size_t)((fresh->t0 - t0) / HISTORY_SLOT) + fresh->nt;
    wx_series *m = NULL;
    rc = wx_series_new(t0, nt, fresh->loc, fresh->nloc, vars, nvar, fresh->nmember, &m, err);
    if (rc != PCF_OK) {
        wx_series_destroy(&fresh);
        return rc;
    }
    m->lead_matched = fresh->lead_matched;
    size_t head = (size_t)((fresh->t0 - t0) / HISTORY_SLOT);
    size_t off = (size_t)((t0 - c->wx->t0) / HISTORY_SLOT);
    for (size_t l = 0; l < m->nloc; l++)
        for (size_t v = 0; v < nvar; v++)
            for (size_t k = 0; k < m->nmember; k++) {
                memcpy(wx_row(m, l, v, k), wx_row(c->wx, l, v, k) + off, head * sizeof(double));
                memcpy(wx_row(m, l, v, k) + head, wx_row(fresh, l, v, k), fresh->nt * sizeof(double));
            }
    wx_series_destroy(&fresh);
    wx_series_destroy(&c->wx);
    c->wx = m;
    c->st.wx_tail++;
    *w = c->wx;
    return PCF_OK;
}
