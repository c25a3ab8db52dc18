/*
 * engine_cache.c -- the engine's inputs kept between runs; see
 * engine_cache.h for what is reused and when.
 *
 * Up to ENGINE_CACHE_ZONES zones, each in a slot (s_slot: its zone, SCADA
 * window, weather window and the live batches since its window was read);
 * the least recently asked-for slot is reused for a new zone.  What says
 * whether something changed is shared: one fingerprint of the model tables
 * (whole tables, so a change drops every slot), one examination of the
 * batches (counts per feed; each slot remembers the counts its windows were
 * read at, and gets its own copy of the new live batch ids).
 *
 * Windows are merged half-hour by half-hour: the new window's slots before
 * the tail come from the cached window, the rest from a read of the tail
 * alone.
 */
#include "engine_cache.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "parse.h"

/* Per model table, an md5 of its rows in a fixed order: content, not row
 * versions -- xmin is not commit-ordered (an edit by a lower xid committing
 * later changes neither count nor max) and wraps.  The tables are small (a
 * few ms for the demo zone).  Whole tables (every zone): a change to any
 * zone's model reloads, which is rare and cheap. */
#define S_FP(t) "(SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) FROM " t " r)"
static const char s_fingerprint_sql[] =
    "SELECT concat_ws(',', " S_FP("zone") ", " S_FP("bus") ", " S_FP("gen") ", " S_FP("branch") ", "
    S_FP("gencost") ", " S_FP("branch_rating") ", " S_FP("anm_constraint") ", " S_FP("anm_constraint_branch") ", "
    S_FP("anm_constraint_site") ", " S_FP("der_site") ", " S_FP("der_enquiry") ", " S_FP("der_machine") ", "
    S_FP("measurement_point") ", " S_FP("weather_location") "), (SELECT coalesce(max(batch_id), 0) FROM ingest_batch)";

/* Batches.  Ids come from a sequence and are not commit-ordered (a long bulk
 * load commits after a later short one), and counting the batches of a kind
 * scans a table that only grows.  So the cache remembers the highest id it
 * has examined and the ids at or below it that it could not see (gaps: in
 * flight, or rolled back), and each run looks at the ids above it and at the
 * gaps, by primary key.  A gap still empty after ENGINE_CACHE_GAP_AGE is
 * taken for a rolled-back batch and forgotten.  $1: first id, $2: last id,
 * $3: the gaps. */
static const char s_batches_sql[] =
    "SELECT g, b.status = 'loaded', b.feed, b.source LIKE 'zmq:%'"
    " FROM (SELECT generate_series($1::bigint, $2::bigint) UNION ALL SELECT unnest($3::bigint[])) i(g)"
    " LEFT JOIN ingest_batch b ON b.batch_id = i.g ORDER BY g";
/* On the first run only the gaps of the newest ids matter: nothing is cached
 * yet, and a batch older than these is no longer in flight. */
#define S_FIRST_IDS 100000

/* Rows the live batches $1 stored, and the rows still carrying their ids at
 * or after the tail start $2.  A row a live batch stored is counted in its
 * rows_loaded and carries its id until a later batch overwrites it; so fewer
 * rows in the tail than stored means data before the tail (or overwritten:
 * a harmless whole read).  Only the tail's partitions are read. */
static const char s_live_sql[] =
    "SELECT (SELECT coalesce(sum(rows_loaded), 0) FROM ingest_batch WHERE batch_id = ANY ($1::bigint[])),"
    " (SELECT count(*) FROM measurement WHERE ts >= to_timestamp($2) AND batch_id = ANY ($1::bigint[]))";

typedef struct s_gap {
    long long id;
    time_t seen; /* when first found empty */
} s_gap;

/* One cached zone; z NULL: the slot is free. */
typedef struct s_slot {
    char zone_id[ZONE_ID_MAX + 1];
    zone *z;
    unsigned long used;                   /* engine_cache.tick when last asked for */
    long long *live;                      /* live SCADA batches since hist was read */
    size_t nlive, caplive;
    history *hist;
    long hist_mark;                       /* n_scada when hist was read whole */
    wx_series *wx;
    long wx_mark;
    int64_t wx_issued;
} s_slot;

struct engine_cache {
    char *fingerprint;                    /* of the model tables the slots were loaded under */
    long long seen;                       /* highest batch id examined */
    s_gap *gap;                           /* ids at or below seen not yet visible */
    size_t ngap;
    long n_scada, n_wx;                   /* other batches seen, per feed */
    s_slot slot[ENGINE_CACHE_ZONES];
    s_slot *cur;                          /* the zone engine_cache_zone returned last */
    unsigned long tick;
    engine_cache_stats st;
};

pcf_rc engine_cache_new(engine_cache **out, pcf_error *err)
{
    *out = calloc(1, sizeof **out);
    return *out ? PCF_OK : pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
}

static void s_slot_drop(s_slot *s)
{
    zone_destroy(&s->z);
    history_destroy(&s->hist);
    wx_series_destroy(&s->wx);
    s->nlive = 0;
    s->zone_id[0] = 0;
}

static void s_drop(engine_cache *c)
{
    for (size_t i = 0; i < ENGINE_CACHE_ZONES; i++) s_slot_drop(&c->slot[i]);
    c->cur = NULL;
    free(c->fingerprint);
    c->fingerprint = NULL;
}

void engine_cache_destroy(engine_cache **cp)
{
    if (!cp || !*cp) return;
    s_drop(*cp);
    for (size_t i = 0; i < ENGINE_CACHE_ZONES; i++) free((*cp)->slot[i].live);
    free((*cp)->gap);
    free(*cp);
    *cp = NULL;
}

void engine_cache_get_stats(const engine_cache *c, engine_cache_stats *out)
{
    *out = c->st;
}

static pcf_rc s_push_live(s_slot *s, long long id, pcf_error *err)
{
    if (s->nlive == s->caplive) {
        size_t cap = s->caplive ? 2 * s->caplive : 64;
        long long *p = realloc(s->live, cap * sizeof *p);
        if (!p) return pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
        s->live = p;
        s->caplive = cap;
    }
    s->live[s->nlive++] = id;
    return PCF_OK;
}

/* A new live batch concerns every cached SCADA window.  A zone not run for
 * long (a day-ahead zone beside a real-time one) would collect ids without
 * bound: past S_MAX_LIVE its window is dropped, read whole next time. */
#define S_MAX_LIVE 20000
static pcf_rc s_push_live_all(engine_cache *c, long long id, pcf_error *err)
{
    pcf_rc rc = PCF_OK;
    for (size_t i = 0; i < ENGINE_CACHE_ZONES && rc == PCF_OK; i++) {
        s_slot *s = &c->slot[i];
        if (s->hist && s->nlive >= S_MAX_LIVE) {
            history_destroy(&s->hist);
            s->nlive = 0;
        }
        if (s->hist) rc = s_push_live(s, id, err);
    }
    return rc;
}

static int s_empty(const engine_cache *c)
{
    for (size_t i = 0; i < ENGINE_CACHE_ZONES; i++)
        if (c->slot[i].z) return 0;
    return 1;
}

/* The n ids stride bytes apart as a PostgreSQL array literal (malloc), or
 * NULL when out of memory. */
static char *s_id_array(const long long *id, size_t n, size_t stride)
{
    size_t cap = 3 + n * 21, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? "," : "",
                                *(const long long *)((const char *)id + i * stride));
    snprintf(buf + len, cap - len, "}");
    return buf;
}

/* Examines the batches above c->seen up to top and the gaps: counts the
 * new SCADA (not live) and weather batches, keeps the new live ones' ids,
 * and records the ids still invisible as gaps. */
static pcf_rc s_batches(engine_cache *c, PGconn *conn, long long top, pcf_error *err)
{
    int first = c->seen == 0 && c->ngap == 0 && s_empty(c);
    long long lo = c->seen + 1;
    if (first && top - S_FIRST_IDS + 1 > lo) lo = top - S_FIRST_IDS + 1;
    char a[32], b[32];
    snprintf(a, sizeof a, "%lld", lo);
    snprintf(b, sizeof b, "%lld", top);
    char *gaps = s_id_array(c->gap ? &c->gap->id : NULL, c->ngap, sizeof(s_gap));
    if (!gaps) return pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
    const char *p[3] = { a, b, gaps };
    PGresult *r = db_query(conn, s_batches_sql, 3, p, err);
    free(gaps);
    if (!r) return PCF_ERR_DB;
    time_t now = time(NULL);
    s_gap *old = c->gap;
    size_t nold = c->ngap, og = 0;
    int n = PQntuples(r);
    s_gap *gap = malloc(((size_t)n + 1) * sizeof *gap);
    if (!gap) {
        PQclear(r);
        return pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
    }
    size_t ngap = 0;
    pcf_rc rc = PCF_OK;
    for (int i = 0; i < n && rc == PCF_OK; i++) {
        long long id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        if (PQgetisnull(r, i, 1)) {
            /* not visible: keep it, with when it was first found empty */
            time_t since = now;
            while (og < nold && old[og].id < id) og++;
            if (og < nold && old[og].id == id) since = old[og].seen;
            if (now - since < ENGINE_CACHE_GAP_AGE) gap[ngap++] = (s_gap){ id, since };
            continue;
        }
        if (first || strcmp(PQgetvalue(r, i, 1), "t") != 0) continue;
        const char *feed = PQgetvalue(r, i, 2);
        if (strcmp(feed, "weather") == 0)
            c->n_wx++;
        else if (strcmp(feed, "scada") == 0 && strcmp(PQgetvalue(r, i, 3), "t") == 0)
            rc = s_push_live_all(c, id, err);
        else if (strcmp(feed, "scada") == 0)
            c->n_scada++;
    }
    PQclear(r);
    if (rc != PCF_OK) {
        free(gap);
        return rc;
    }
    free(c->gap);
    c->gap = gap;
    c->ngap = ngap;
    if (top > c->seen) c->seen = top;
    return PCF_OK;
}

/* The slot of zone_id, or NULL. */
static s_slot *s_find(engine_cache *c, const char *zone_id)
{
    for (size_t i = 0; i < ENGINE_CACHE_ZONES; i++)
        if (c->slot[i].z && strcmp(c->slot[i].zone_id, zone_id) == 0) return &c->slot[i];
    return NULL;
}

/* A free slot, else the least recently used one, emptied. */
static s_slot *s_victim(engine_cache *c)
{
    s_slot *v = &c->slot[0];
    for (size_t i = 0; i < ENGINE_CACHE_ZONES; i++) {
        if (!c->slot[i].z) {
            v = &c->slot[i];
            break;
        }
        if (c->slot[i].used < v->used) v = &c->slot[i];
    }
    s_slot_drop(v);
    return v;
}

pcf_rc engine_cache_zone(engine_cache *c, PGconn *conn, const char *zone_id, zone **z, pcf_error *err)
{
    *z = NULL;
    c->cur = NULL;
    PGresult *r = db_query(conn, s_fingerprint_sql, 0, NULL, err);
    if (!r) return PCF_ERR_DB;
    const char *fp = PQgetvalue(r, 0, 0), *ms = PQgetvalue(r, 0, 1);
    long top = 0;
    pcf_rc rc = parse_long(ms, strlen(ms), &top) == PCF_OK ? s_batches(c, conn, top, err)
                    : pcf_error_set(err, PCF_ERR_DB, "engine cache: unreadable batch id");
    if (rc != PCF_OK) {
        PQclear(r);
        return rc;
    }
    if (!c->fingerprint || strcmp(c->fingerprint, fp) != 0) {
        s_drop(c);                        /* the model changed: every zone may have */
        c->fingerprint = strdup(fp);
    }
    PQclear(r);
    if (!c->fingerprint) return pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
    s_slot *s = s_find(c, zone_id);
    if (s) {
        c->st.zone_hits++;
    } else {
        s = s_victim(c);
        if ((rc = zone_load(conn, zone_id, NULL, &s->z, err)) != PCF_OK) {
            s_slot_drop(s);
            return rc;
        }
        snprintf(s->zone_id, sizeof s->zone_id, "%s", zone_id);
        c->st.zone_loads++;
    }
    s->used = ++c->tick;
    c->cur = s;
    *z = s->z;
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

/* Whether the live batches committed since hist was read stored all their
 * rows at or after keep (*ok = 1); a gateway replaying a backlog can send
 * data of any age. */
static pcf_rc s_live_in_tail(const s_slot *c, PGconn *conn, int64_t keep, int *ok, pcf_error *err)
{
    *ok = 1;
    if (c->nlive == 0) return PCF_OK;
    char *ids = s_id_array(c->live, c->nlive, sizeof *c->live), b[32];
    if (!ids) return pcf_error_set(err, PCF_ERR_NOMEM, "engine cache: out of memory");
    snprintf(b, sizeof b, "%lld", (long long)keep);
    const char *p[2] = { ids, b };
    PGresult *r = db_query(conn, s_live_sql, 2, p, err);
    free(ids);
    if (!r) return PCF_ERR_DB;
    long stored = 0, tail = 0;
    const char *s0 = PQgetvalue(r, 0, 0), *s1 = PQgetvalue(r, 0, 1);
    pcf_rc rc = parse_long(s0, strlen(s0), &stored) == PCF_OK && parse_long(s1, strlen(s1), &tail) == PCF_OK
                    ? PCF_OK : pcf_error_set(err, PCF_ERR_DB, "engine cache: unreadable row counts");
    PQclear(r);
    *ok = tail >= stored;
    return rc;
}

pcf_rc engine_cache_scada(engine_cache *ec, PGconn *conn, int64_t from, int64_t to, history **h, pcf_error *err)
{
    *h = NULL;
    s_slot *c = ec->cur;
    if (!c) return pcf_error_set(err, PCF_ERR_INVALID, "engine cache: no zone");
    int64_t keep = c->hist && c->hist_mark == ec->n_scada
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
    c->nlive = 0;
    if (keep < 0) {
        history_destroy(&c->hist);
        c->hist = fresh;
        c->hist_mark = ec->n_scada;
        ec->st.scada_full++;
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
    ec->st.scada_tail++;
    *h = c->hist;
    return PCF_OK;
}

pcf_rc engine_cache_weather(engine_cache *ec, PGconn *conn, const char *const *vars, size_t nvar, int64_t from,
                            int64_t to, int64_t issued_before, wx_series **w, pcf_error *err)
{
    *w = NULL;
    s_slot *c = ec->cur;
    if (!c) return pcf_error_set(err, PCF_ERR_INVALID, "engine cache: no zone");
    int same = c->wx && c->wx_mark == ec->n_wx && c->wx_issued == issued_before && c->wx->nvar == nvar;
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
        c->wx_mark = ec->n_wx;
        c->wx_issued = issued_before;
        ec->st.wx_full++;
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
    ec->st.wx_tail++;
    *w = c->wx;
    return PCF_OK;
}
