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

/* Per model table: rows and the newest row version.  Whole tables (every
 * zone): a change to any zone's model reloads, which is rare and cheap. */
#define S_FP(t) "(SELECT count(*) || ':' || coalesce(max(xmin::text::bigint), 0) FROM " t ")"
static const char s_fingerprint_sql[] =
    "SELECT concat_ws(',', " S_FP("zone") ", " S_FP("bus") ", " S_FP("gen") ", " S_FP("branch") ", "
    S_FP("gencost") ", " S_FP("branch_rating") ", " S_FP("anm_constraint") ", " S_FP("anm_constraint_branch") ", "
    S_FP("anm_constraint_site") ", " S_FP("der_site") ", " S_FP("der_enquiry") ", " S_FP("der_machine") ", "
    S_FP("measurement_point") ", " S_FP("weather_location") "),"
    /* newest batches that can touch old data: backward steps on the primary
     * key past the (many) live batches, not a scan of the table */
    " coalesce((SELECT batch_id FROM ingest_batch WHERE feed = 'scada' AND status = 'loaded'"
    "            AND source NOT LIKE 'zmq:%' ORDER BY batch_id DESC LIMIT 1), 0),"
    " coalesce((SELECT batch_id FROM ingest_batch WHERE feed = 'weather' AND status = 'loaded'"
    "            ORDER BY batch_id DESC LIMIT 1), 0)";

struct engine_cache {
    char zone_id[ZONE_ID_MAX + 1];
    char *fingerprint;
    zone *z;
    long long mark_scada, mark_wx;        /* as of this run's transaction */
    history *hist;
    long long hist_mark;                  /* mark_scada when hist was read whole */
    wx_series *wx;
    long long wx_mark;
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
    const char *fp = PQgetvalue(r, 0, 0), *ms = PQgetvalue(r, 0, 1), *mw = PQgetvalue(r, 0, 2);
    long a = 0, b = 0;
    if (parse_long(ms, strlen(ms), &a) != PCF_OK || parse_long(mw, strlen(mw), &b) != PCF_OK) {
        PQclear(r);
        return pcf_error_set(err, PCF_ERR_DB, "engine cache: unreadable batch marks");
    }
    c->mark_scada = a;
    c->mark_wx = b;
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

pcf_rc engine_cache_scada(engine_cache *c, PGconn *conn, int64_t from, int64_t to, history **h, pcf_error *err)
{
    *h = NULL;
    if (!c->z) return pcf_error_set(err, PCF_ERR_INVALID, "engine cache: no zone");
    int64_t keep = c->hist && c->hist_mark == c->mark_scada
                       ? s_tail_from(c->hist->t0, c->hist->nt, from, to, ENGINE_CACHE_SCADA_TAIL) : -1;
    history *fresh = NULL;
    pcf_rc rc = history_load_scada(conn, c->z, keep >= 0 ? keep : from, to, &fresh, err);
    if (rc != PCF_OK) return rc;
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
    int same = c->wx && c->wx_mark == c->mark_wx && c->wx_issued == issued_before && c->wx->nvar == nvar;
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
