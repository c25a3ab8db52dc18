/*
 * load.c -- staging, validation and upsert of parsed feeds; the transaction
 * protocol and the per-feed policies are described in load.h.
 *
 * Structure: an s_load context carries the connection, the batch identity
 * (feed, source, content hash, start time) and the refused records seen so
 * far (kept in memory up to LOAD_MAX_QUARANTINE, counted beyond).  Parser
 * callbacks write good records to an open COPY into a temporary staging
 * table that has a `bad` flag; SQL checks flag rows with
 * UPDATE ... SET bad = true ... RETURNING, and what they return becomes
 * quarantine entries.  s_finish() then writes the batch, the data and the
 * quarantine and commits -- or, on any error, s_abort() rolls back.
 * SCADA files try the bulk path first (sorted chunks binary-COPYed into the
 * partitions, see its section); the staging path is its fallback.  A live
 * batch loaded inside the caller's transaction (live groups; the caller
 * says so, load_scada_batch's nested) uses a savepoint instead of
 * BEGIN/COMMIT (s_load.nested).
 */
#include "load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db.h"
#include "feed.h"
#include "openmeteo.h"
#include "outage_parse.h"
#include "scada_csv.h"
#include "scada_pb.h"
#include "sptime.h"

/* ---- content hash ------------------------------------------------------ */

typedef struct {
    uint64_t a, b;
} s_hash;

static void s_hash_init(s_hash *h)
{
    h->a = 0xcbf29ce484222325ULL;       /* FNV-1a 64 offset basis */
    h->b = 0x84222325cbf29ce4ULL;       /* a second, unrelated basis */
}

static void s_hash_add(s_hash *h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h->a = (h->a ^ p[i]) * 0x100000001b3ULL;
        h->b = (h->b ^ (p[i] + 0x5bu)) * 0x100000001b3ULL;
        h->b ^= h->b >> 29;             /* makes the second hash differ in structure */
    }
}

static void s_hash_hex(const s_hash *h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h->a, (unsigned long long)h->b);
}

void load_hash_hex(const void *data, size_t len, char out[33])
{
    s_hash h;
    s_hash_init(&h);
    s_hash_add(&h, data, len);
    s_hash_hex(&h, out);
}

static pcf_rc s_hash_file(const char *path, char out[33], pcf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    s_hash h;
    s_hash_init(&h);
    static const size_t chunk = 1 << 16;
    unsigned char *buf = malloc(chunk);
    if (!buf) {
        fclose(f);
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n;
    while ((n = fread(buf, 1, chunk, f)) > 0)
        s_hash_add(&h, buf, n);
    bool bad = ferror(f) != 0;
    free(buf);
    fclose(f);
    if (bad)
        return pcf_error_set(err, PCF_ERR_IO, "%s: read error", path);
    s_hash_hex(&h, out);
    return PCF_OK;
}

/* ---- load context ------------------------------------------------------ */

typedef struct {
    long line;
    char *field, *reason, *raw;
} s_rej;

typedef struct {
    PGconn *c;
    const char *feed;
    const char *source;
    char hash[33];
    char started[SPTIME_ISO_LEN];
    load_report *rep;
    s_rej *rej;
    size_t nrej;
    db_copy *copy;
    size_t max_rej;         /* refusals kept in full; 0: LOAD_MAX_QUARANTINE */
    bool nested;            /* inside the caller's transaction: a savepoint, not BEGIN/COMMIT */
    pcf_rc copy_rc;         /* first COPY failure inside a callback */
    pcf_error copy_err;
} s_load;

static void s_free_rejects(s_load *L)
{
    for (size_t i = 0; i < L->nrej; i++) {
        free(L->rej[i].field);
        free(L->rej[i].reason);
        free(L->rej[i].raw);
    }
    free(L->rej);
    L->rej = NULL;
    L->nrej = 0;
}

/* Records a refusal (kept if under the cap, always counted). */
static pcf_rc s_add_reject(s_load *L, long line, const char *field, const char *reason, const char *raw)
{
    load_report *rep = L->rep;
    if (rep->quarantined == 0)
        snprintf(rep->first_error, sizeof rep->first_error, "%s:%ld: %s%s%s", L->source, line,
                 field && *field ? field : "", field && *field ? ": " : "", reason);
    rep->quarantined++;
    size_t cap = L->max_rej ? L->max_rej : LOAD_MAX_QUARANTINE;
    if (L->nrej >= cap)
        return PCF_OK;
    if (!L->rej) {
        L->rej = calloc(cap, sizeof *L->rej);
        if (!L->rej)
            return PCF_ERR_NOMEM;
    }
    s_rej *r = &L->rej[L->nrej];
    r->line = line;
    r->field = strdup(field ? field : "");
    r->reason = strdup(reason);
    r->raw = strndup(raw ? raw : "", 8192);
    if (!r->field || !r->reason || !r->raw) {
        free(r->field);
        free(r->reason);
        free(r->raw);
        return PCF_ERR_NOMEM;
    }
    L->nrej++;
    return PCF_OK;
}

static pcf_rc s_reject_cb(void *ctx, const feed_reject *r, pcf_error *err)
{
    s_load *L = ctx;
    if (s_add_reject(L, r->line, r->field, r->reason, r->raw) != PCF_OK)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", L->source);
    return PCF_OK;
}

/* Rolls back and cleans up after an error. */
static pcf_rc s_abort(s_load *L, pcf_rc rc)
{
    db_copy_destroy(&L->copy);
    if (L->nested) {
        PQclear(PQexec(L->c, "ROLLBACK TO SAVEPOINT load"));
        PQclear(PQexec(L->c, "RELEASE SAVEPOINT load"));
    } else {
        db_rollback(L->c);
    }
    s_free_rejects(L);
    return rc;
}

static void s_now_iso(char out[SPTIME_ISO_LEN])
{
    sptime_format_utc((int64_t)time(NULL), out, SPTIME_ISO_LEN);
}

/* BEGIN and the already-loaded check.  Returns PCF_OK with
 * rep->already_loaded set (transaction closed) when there is nothing to do. */
static pcf_rc s_begin(s_load *L, pcf_error *err)
{
    memset(L->rep, 0, sizeof *L->rep);
    s_now_iso(L->started);
    pcf_rc rc = db_exec(L->c, L->nested ? "SAVEPOINT load" : "BEGIN", err);
    if (rc != PCF_OK)
        return rc;
    const char *p[2] = {L->feed, L->hash};
    PGresult *r = db_query(L->c, "SELECT batch_id FROM ingest_batch WHERE feed = $1 AND content_hash = $2 "
                                 "AND status = 'loaded'", 2, p, err);
    if (!r)
        return s_abort(L, PCF_ERR_DB);
    if (PQntuples(r) > 0) {
        L->rep->already_loaded = true;
        L->rep->batch_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        return db_exec(L->c, L->nested ? "RELEASE SAVEPOINT load" : "COMMIT", err);
    }
    PQclear(r);
    return PCF_OK;
}

/* Runs an UPDATE ... RETURNING line, raw on the staging table and turns
 * each returned row into a refusal with the given field and reason. */
static pcf_rc s_flag(s_load *L, const char *sql, int nparams, const char *const *params,
                     const char *field, const char *reason, pcf_error *err)
{
    PGresult *r = db_query(L->c, sql, nparams, params, err);
    if (!r)
        return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    for (int i = 0; i < PQntuples(r) && rc == PCF_OK; i++) {
        char why[300];
        snprintf(why, sizeof why, "%s%s", reason, PQnfields(r) > 2 ? PQgetvalue(r, i, 2) : "");
        rc = s_add_reject(L, strtol(PQgetvalue(r, i, 0), NULL, 10), field, why, PQgetvalue(r, i, 1));
    }
    PQclear(r);
    if (rc != PCF_OK)
        return pcf_error_set(err, rc, "%s: out of memory", L->source);
    return PCF_OK;
}

/* Inserts the batch row; sets rep->batch_id. */
static pcf_rc s_insert_batch(s_load *L, const char *status, pcf_error *err)
{
    const char *p[5] = {L->feed, L->source, L->hash, status, L->started};
    /* started_at is the client's clock and now() the start of the server's
     * transaction, which may be earlier (a live group's transaction, clock
     * skew): finished_at must not precede started_at. */
    PGresult *r = db_query(L->c, "INSERT INTO ingest_batch (feed, source, content_hash, status, started_at, "
                                 "finished_at) VALUES ($1, $2, $3, $4, $5, greatest(now(), $5::timestamptz)) "
                                 "RETURNING batch_id", 5, p, err);
    if (!r)
        return PCF_ERR_DB;
    L->rep->batch_id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return PCF_OK;
}

/* Writes the quarantine rows, the batch counters, NOTIFY, COMMIT. */
static pcf_rc s_commit(s_load *L, pcf_error *err)
{
    char bid[32], q[32], s[32];
    snprintf(bid, sizeof bid, "%lld", L->rep->batch_id);
    if (L->nrej > 0) {
        db_copy *cp = db_copy_new(L->c, "quarantine (batch_id, feed, source, line, field, reason, raw)", err);
        if (!cp)
            return PCF_ERR_DB;
        pcf_rc rc = PCF_OK;
        for (size_t i = 0; i < L->nrej && rc == PCF_OK; i++) {
            db_copy_text(cp, bid);
            db_copy_text(cp, L->feed);
            db_copy_text(cp, L->source);
            db_copy_int(cp, L->rej[i].line < 0 ? 0 : L->rej[i].line);
            db_copy_text(cp, L->rej[i].field);
            db_copy_text(cp, L->rej[i].reason);
            db_copy_text(cp, L->rej[i].raw);
            rc = db_copy_end_row(cp, err);
        }
        if (rc == PCF_OK)
            rc = db_copy_finish(cp, err);
        db_copy_destroy(&cp);
        if (rc != PCF_OK)
            return rc;
    }
    snprintf(q, sizeof q, "%ld", L->rep->quarantined);
    snprintf(s, sizeof s, "%ld", L->rep->stored);
    const char *p[3] = {bid, s, q};
    PGresult *r = db_query(L->c, "UPDATE ingest_batch SET rows_loaded = $2, rows_quarantined = $3, "
                                 "finished_at = greatest(now(), started_at) WHERE batch_id = $1", 3, p, err);
    if (!r)
        return PCF_ERR_DB;
    PQclear(r);
    char channel[40];
    snprintf(channel, sizeof channel, "pcf_%s", L->feed);
    const char *np[2] = {channel, bid};
    if (!(r = db_query(L->c, "SELECT pg_notify($1, $2)", 2, np, err)))
        return PCF_ERR_DB;
    PQclear(r);
    return db_exec(L->c, L->nested ? "RELEASE SAVEPOINT load" : "COMMIT", err);
}

static long s_cmd_tuples(PGresult *r)
{
    return strtol(PQcmdTuples(r), NULL, 10);
}

/* Runs a statement with the batch id as $1; adds affected rows to stored. */
static pcf_rc s_store(s_load *L, const char *sql, pcf_error *err)
{
    char bid[32];
    snprintf(bid, sizeof bid, "%lld", L->rep->batch_id);
    const char *p[1] = {bid};
    PGresult *r = db_query(L->c, sql, 1, p, err);
    if (!r)
        return PCF_ERR_DB;
    L->rep->stored += s_cmd_tuples(r);
    PQclear(r);
    return PCF_OK;
}

/* Fatal parse error: record it as the only refusal of a rejected batch. */
static pcf_rc s_reject_whole(s_load *L, pcf_rc parse_rc, const pcf_error *perr, pcf_error *err)
{
    db_copy_destroy(&L->copy);
    db_rollback(L->c);          /* drops the staging table and its rows */
    pcf_rc rc;
    L->rep->rejected = true;
    long parsed = L->rep->parsed;
    if ((rc = db_exec(L->c, "BEGIN", err)) != PCF_OK)
        return s_abort(L, rc);
    s_free_rejects(L);
    L->rep->quarantined = 0;
    L->rep->parsed = parsed;
    /* The message already starts with "source:line: "; keep it whole. */
    if (s_add_reject(L, 0, "", perr->msg, "") != PCF_OK)
        return s_abort(L, pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", L->source));
    snprintf(L->rep->first_error, sizeof L->rep->first_error, "%s", perr->msg);
    if ((rc = s_insert_batch(L, "rejected", err)) != PCF_OK || (rc = s_commit(L, err)) != PCF_OK)
        return s_abort(L, rc);
    s_free_rejects(L);
    *err = *perr;
    return parse_rc;
}

/* ---- SCADA ------------------------------------------------------------- */

static pcf_rc s_scada_row(void *ctx, const scada_row *row, pcf_error *err)
{
    s_load *L = ctx;
    (void)err;
    db_copy_int(L->copy, row->line);
    db_copy_text(L->copy, row->point_id);
    db_copy_int(L->copy, row->ts);
    db_copy_double(L->copy, row->value);
    db_copy_text(L->copy, scada_quality_name(row->quality));
    L->rep->parsed++;
    pcf_rc rc = db_copy_end_row(L->copy, &L->copy_err);
    if (rc != PCF_OK) {
        *err = L->copy_err;
        L->copy_rc = rc;
    }
    return rc;
}

/* ---- SCADA bulk path ----------------------------------------------------
 *
 * The common case -- a historian file of valid measurements, most of them
 * new -- is loaded without a staging table.  One parse of the file fills
 * chunks of at most s_chunk_rows rows, each checked against an in-memory
 * map of measurement points (scale applied here).  A full chunk is sorted
 * by (month, point, time), identical duplicates are collapsed, and each
 * month's run is sent with binary COPY straight into its monthly partition
 * (measurement_yYYYYmMM): no text parsing, no partition routing, index
 * inserts in key order, and point integrity checked once per statement by
 * the triggers of sql/005_ingest_speed.sql.
 *
 * The whole path runs under SAVEPOINT bulk, each chunk under SAVEPOINT
 * chunk.  When a chunk's COPY fails -- typically a unique violation because
 * the file overlaps stored rows, or a partition that is not named as
 * feed_ensure_partitions names them -- the chunk is rolled back and stored
 * through a staging table and the usual upsert (unchanged rows are not
 * rewritten), so re-runs and overlapping files stay idempotent.  Anything
 * the file policy must refuse -- a parser refusal, an unknown point, a
 * non-finite scaled value, the same (point, time) with two different values
 * -- rolls back to SAVEPOINT bulk and the staging path below loads (that is,
 * refuses) the whole file with its quarantine rows: all or nothing holds.
 *
 * Memory: a chunk is 16 bytes a row (plus the sort's scratch), so a file of
 * any size loads in about 2 x 16 MiB.
 */

#define S_CHUNK_ROWS (1L << 20)
static long s_chunk_rows = S_CHUNK_ROWS;

void load_scada_chunk_rows(long n)
{
    s_chunk_rows = n > 0 && n <= S_CHUNK_ROWS ? n : S_CHUNK_ROWS;
}

typedef struct {
    char **ids;             /* sorted by strcmp, so chunks go in index order */
    size_t *len;
    double *scale;
    size_t n;
    uint32_t *slot;         /* open addressing: index + 1, 0 = empty */
    size_t cap;             /* power of two */
} s_points;

static uint64_t s_fnv(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

static void s_points_free(s_points *m)
{
    for (size_t i = 0; m->ids && i < m->n; i++)
        free(m->ids[i]);
    free(m->ids);
    free(m->len);
    free(m->scale);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

/* Index of point id, or -1. */
static long s_points_find(const s_points *m, const char *id)
{
    for (size_t i = s_fnv(id) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        uint32_t k = m->slot[i];
        if (k == 0)
            return -1;
        if (strcmp(m->ids[k - 1], id) == 0)
            return (long)k - 1;
    }
}

/* Point ids take 22 bits of the sort key. */
#define S_MAX_POINTS (1L << 22)

/* Loads every measurement point; false when out of memory or too many. */
static bool s_points_load(PGconn *c, s_points *m, pcf_error *err)
{
    memset(m, 0, sizeof *m);
    PGresult *r = db_query(c, "SELECT point_id, scale FROM measurement_point ORDER BY point_id COLLATE \"C\"",
                           0, NULL, err);
    if (!r)
        return false;
    size_t n = (size_t)PQntuples(r);
    m->cap = 64;
    while (m->cap < 2 * n)
        m->cap *= 2;
    bool ok = n < (size_t)S_MAX_POINTS && (m->ids = calloc(n + 1, sizeof *m->ids)) &&
              (m->len = calloc(n + 1, sizeof *m->len)) && (m->scale = calloc(n + 1, sizeof *m->scale)) &&
              (m->slot = calloc(m->cap, sizeof *m->slot));
    for (size_t k = 0; ok && k < n; k++) {
        const char *id = PQgetvalue(r, (int)k, 0);
        if (!(m->ids[k] = strdup(id))) {
            ok = false;
            break;
        }
        m->n = k + 1;
        m->len[k] = strlen(id);
        m->scale[k] = strtod(PQgetvalue(r, (int)k, 1), NULL);
        size_t i = s_fnv(id) & (m->cap - 1);
        while (m->slot[i])
            i = (i + 1) & (m->cap - 1);
        m->slot[i] = (uint32_t)k + 1;
    }
    PQclear(r);
    if (!ok)
        s_points_free(m);
    return ok;
}

/* One row of a chunk.  key = month << 46 | point << 24 | second of the
 * month << 2 | quality: sorting the keys sorts by (month, point, time), and
 * equal keys apart from the quality bits are the same (point, time). */
typedef struct {
    uint64_t key;
    double value;
} s_brow;

#define S_KEY_SAME(a, b) (((a) >> 2) == ((b) >> 2))

static int s_brow_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_brow *)a)->key, y = ((const s_brow *)b)->key;
    return x < y ? -1 : x > y;
}

/* Month index (year * 12 + month - 1) of t, and the instant it starts. */
static int64_t s_month_of(int64_t t, int64_t *start)
{
    sptime_civil cv;
    sptime_to_civil(t, &cv);
    sptime_civil m0 = {cv.year, cv.month, 1, 0, 0, 0};
    *start = sptime_from_civil(&m0);
    return (int64_t)cv.year * 12 + cv.month - 1;
}

static int64_t s_month_start(int64_t month)
{
    sptime_civil m0 = {(int)(month / 12), (int)(month % 12) + 1, 1, 0, 0, 0};
    return sptime_from_civil(&m0);
}

typedef struct {
    s_load *L;
    s_points pts;
    s_brow *rows;
    long n;                 /* rows in the current chunk */
    long cap;               /* chunk size: s_chunk_rows, less for a small file */
    int64_t cur_month, cur_start, cur_end;   /* cache for s_month_of */
    bool give_up;           /* the staging path must load the file */
    pcf_rc hard_rc;         /* a database failure: abort */
    pcf_error hard_err;
    bool have_batch, have_stage;
    bool last;              /* the final flush: no later chunk looks at bulk_seen */
    char bid[32];
} s_bulk;

/* Writes rows [i, j) of the chunk to an open binary COPY. */
static void s_bulk_put(s_bulk *B, db_copy *cp, long i, long j)
{
    static const char *const qn[4] = {"good", "uncertain", "bad", "substituted"};
    static const size_t ql[4] = {4, 9, 3, 11};
    int64_t batch = B->L->rep->batch_id, month = -1, start = 0;
    for (long k = i; k < j; k++) {
        uint64_t key = B->rows[k].key;
        int64_t m = (int64_t)(key >> 46);
        if (m != month) {
            month = m;
            start = s_month_start(m);
        }
        size_t p = (size_t)(key >> 24) & (S_MAX_POINTS - 1);
        unsigned q = (unsigned)(key & 3);
        db_copy_bin_text(cp, B->pts.ids[p], B->pts.len[p]);
        db_copy_bin_timestamptz(cp, start + (int64_t)((key >> 2) & ((1u << 22) - 1)));
        db_copy_bin_float8(cp, B->rows[k].value);
        db_copy_bin_text(cp, qn[q], ql[q]);
        db_copy_bin_int8(cp, batch);
        if (db_copy_end_row(cp, &B->hard_err) != PCF_OK)
            return;     /* db_copy_finish reports it again */
    }
}

/* COPYs rows [i, j) (sorted) into target; PCF_OK or the COPY's error. */
static pcf_rc s_bulk_copy(s_bulk *B, const char *target, long i, long j, pcf_error *err)
{
    db_copy *cp = db_copy_new_binary(B->L->c, target, err);
    if (!cp)
        return PCF_ERR_DB;
    s_bulk_put(B, cp, i, j);
    pcf_rc rc = db_copy_finish(cp, err);
    db_copy_destroy(&cp);
    return rc;
}

static pcf_rc s_bulk_fail(s_bulk *B, pcf_rc rc, const pcf_error *err)
{
    B->hard_rc = rc;
    B->hard_err = *err;
    return rc;
}

/* The chunk could not go straight into its partitions: upsert it through
 * a staging table, as the staging path would.
 *
 * A key this chunk shares with an earlier chunk of the file must be found
 * even when that chunk's row left measurement untouched (same value as
 * stored: the row keeps its old batch id).  So the keys and values of every
 * fallback chunk are kept in bulk_seen, and the look-up is by key in
 * bulk_seen or in the rows carrying this batch's id (the chunks COPYed
 * straight in, and the fallback rows that changed something). */
static pcf_rc s_bulk_fallback(s_bulk *B, pcf_error *err)
{
    PGconn *c = B->L->c;
    pcf_rc rc = db_exec(c, B->have_stage ? "TRUNCATE bulk_stage"
                                         : "CREATE TEMP TABLE bulk_stage (point_id text, ts timestamptz, "
                                           "value double precision, quality text, batch_id bigint) ON COMMIT DROP;"
                                           "CREATE TEMP TABLE bulk_seen (point_id text, ts timestamptz, "
                                           "value double precision, quality text, PRIMARY KEY (point_id, ts)) "
                                           "ON COMMIT DROP",
                        err);
    if (rc != PCF_OK || (rc = s_bulk_copy(B, "bulk_stage (point_id, ts, value, quality, batch_id)", 0, B->n, err))
                            != PCF_OK)
        return rc;
    /* Nothing earlier to meet when no row carries this batch's id and no
     * fallback chunk came before (a one-chunk re-run skips the join). */
    bool earlier = B->L->rep->stored > 0 || B->have_stage;
    B->have_stage = true;
    B->L->rep->bulk_fallbacks++;
    long conflicts = 0, same = 0;
    if (earlier) {
        const char *p[1] = {B->bid};
        PGresult *r = db_query(c, "SELECT count(*) FILTER (WHERE (e.value, e.quality) IS DISTINCT FROM "
                                  "(s.value, s.quality)), count(*) FROM bulk_stage s CROSS JOIN LATERAL ("
                                  "SELECT k.value, k.quality FROM bulk_seen k "
                                  "WHERE k.point_id = s.point_id AND k.ts = s.ts "
                                  "UNION ALL SELECT m.value, m.quality FROM measurement m "
                                  "WHERE m.point_id = s.point_id AND m.ts = s.ts AND m.batch_id = $1 "
                                  "LIMIT 1) e", 1, p, err);
        if (!r)
            return PCF_ERR_DB;
        conflicts = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        same = strtol(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
    }
    if (conflicts > 0) {
        B->give_up = true;
        return PCF_OK;
    }
    B->L->rep->duplicates += same - conflicts;
    if (!B->last && (rc = db_exec(c, "INSERT INTO bulk_seen SELECT point_id, ts, value, quality FROM bulk_stage "
                                     "ON CONFLICT DO NOTHING", err)) != PCF_OK)
        return rc;
    return s_store(B->L, "INSERT INTO measurement (point_id, ts, value, quality, batch_id) "
                         "SELECT point_id, ts, value, quality, $1 FROM bulk_stage "
                         "ON CONFLICT (point_id, ts) DO UPDATE SET value = EXCLUDED.value, quality = EXCLUDED.quality, "
                         "batch_id = EXCLUDED.batch_id WHERE (measurement.value, measurement.quality) "
                         "IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.quality)", err);
}

/* Creates the partitions of the months in months[0, len), "{t,t,...". */
static pcf_rc s_ensure_months(PGconn *c, char *months, size_t len, pcf_error *err)
{
    months[len] = '}';
    months[len + 1] = 0;
    const char *p[1] = {months};
    PGresult *r = db_query(c, "SELECT feed_ensure_partitions('measurement', m, m) FROM unnest($1::timestamptz[]) m",
                           1, p, err);
    if (!r)
        return PCF_ERR_DB;
    PQclear(r);
    return PCF_OK;
}

/* Sorts, deduplicates and stores the current chunk. */
static pcf_rc s_bulk_flush(s_bulk *B)
{
    s_load *L = B->L;
    pcf_error err;
    pcf_rc rc;
    if (B->n == 0)
        return PCF_OK;
    qsort(B->rows, (size_t)B->n, sizeof *B->rows, s_brow_cmp);
    long w = 0;
    for (long k = 0; k < B->n; k++) {
        if (w > 0 && S_KEY_SAME(B->rows[w - 1].key, B->rows[k].key)) {
            if (B->rows[w - 1].key != B->rows[k].key || B->rows[w - 1].value != B->rows[k].value) {
                B->give_up = true;      /* conflicting duplicate: refused by the staging path */
                return PCF_ERR_INVALID;
            }
            L->rep->duplicates++;
            continue;
        }
        B->rows[w++] = B->rows[k];
    }
    B->n = w;
    if (!B->have_batch) {
        if ((rc = s_insert_batch(L, "loaded", &err)) != PCF_OK)
            return s_bulk_fail(B, rc, &err);
        snprintf(B->bid, sizeof B->bid, "%lld", L->rep->batch_id);
        B->have_batch = true;
    }
    /* The months that have rows (a file may span decades: not the range),
     * made before the savepoint so the fallback has them too. */
    char months[2048];
    size_t ml = 0;
    months[ml++] = '{';
    int64_t prev = -1;
    for (long k = 0; k < B->n; k++) {
        int64_t m = (int64_t)(B->rows[k].key >> 46);
        if (m == prev)
            continue;
        if (ml + SPTIME_ISO_LEN + 2 >= sizeof months) {
            if ((rc = s_ensure_months(L->c, months, ml, &err)) != PCF_OK)
                return s_bulk_fail(B, rc, &err);
            ml = 1;
        }
        if (ml > 1)
            months[ml++] = ',';
        ml += sptime_format_utc(s_month_start(m), months + ml, sizeof months - ml);
        prev = m;
    }
    if ((rc = s_ensure_months(L->c, months, ml, &err)) != PCF_OK)
        return s_bulk_fail(B, rc, &err);
    if ((rc = db_exec(L->c, "SAVEPOINT chunk", &err)) != PCF_OK)
        return s_bulk_fail(B, rc, &err);
    L->rep->bulk_chunks++;
    for (long i = 0; i < B->n && rc == PCF_OK;) {
        int64_t m = (int64_t)(B->rows[i].key >> 46);
        long j = i + 1;
        while (j < B->n && (int64_t)(B->rows[j].key >> 46) == m)
            j++;
        char target[96];
        snprintf(target, sizeof target, "measurement_y%04dm%02d (point_id, ts, value, quality, batch_id)",
                 (int)(m / 12), (int)(m % 12) + 1);
        pcf_error cerr;
        rc = s_bulk_copy(B, target, i, j, &cerr);
        i = j;
    }
    if (rc == PCF_OK) {
        L->rep->stored += B->n;
        rc = db_exec(L->c, "RELEASE SAVEPOINT chunk", &err);
    } else if ((rc = db_exec(L->c, "ROLLBACK TO SAVEPOINT chunk", &err)) == PCF_OK) {
        rc = s_bulk_fallback(B, &err);
    }
    if (rc != PCF_OK)
        return s_bulk_fail(B, rc, &err);
    B->n = 0;
    return B->give_up ? PCF_ERR_INVALID : PCF_OK;
}

static pcf_rc s_bulk_row(void *ctx, const scada_row *row, pcf_error *err)
{
    s_bulk *B = ctx;
    long p = s_points_find(&B->pts, row->point_id);
    double v = p >= 0 ? row->value * B->pts.scale[p] : 0;
    if (p < 0 || v != v || v > 1.7e308 || v < -1.7e308) {
        B->give_up = true;      /* unknown point or overflow: the staging path refuses it */
        return pcf_error_set(err, PCF_ERR_INVALID, "bulk path: give up");
    }
    if (row->ts < B->cur_start || row->ts >= B->cur_end) {
        B->cur_month = s_month_of(row->ts, &B->cur_start);
        B->cur_end = s_month_start(B->cur_month + 1);
    }
    B->rows[B->n].key = (uint64_t)B->cur_month << 46 | (uint64_t)p << 24 |
                        (uint64_t)(row->ts - B->cur_start) << 2 | (uint64_t)row->quality;
    B->rows[B->n].value = v;
    B->n++;
    B->L->rep->parsed++;
    if (B->n == B->cap) {
        pcf_rc rc = s_bulk_flush(B);
        if (rc != PCF_OK)
            return pcf_error_set(err, rc, "bulk path: chunk not stored");
    }
    return PCF_OK;
}

static pcf_rc s_bulk_reject(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)r;
    ((s_bulk *)ctx)->give_up = true;
    return pcf_error_set(err, PCF_ERR_INVALID, "bulk path: give up");
}

/* Tries the bulk path.  PCF_OK with *done when committed; PCF_OK without
 * *done when the staging path must run (transaction still open, nothing of
 * the attempt left); an error when the database failed. */
static pcf_rc s_scada_bulk(s_load *L, const char *path, bool *done, pcf_error *err)
{
    *done = false;
    s_bulk B = {.L = L, .cur_start = 1, .cur_end = 0};
    if (!s_points_load(L->c, &B.pts, err))
        return PQtransactionStatus(L->c) == PQTRANS_INERROR ? PCF_ERR_DB : PCF_OK;
    /* A CSV line of n bytes gives at most n / 12 rows (a UKPN line makes
     * two), so a small file gets a small chunk. */
    struct stat sb;
    B.cap = s_chunk_rows;
    if (stat(path, &sb) == 0 && sb.st_size / 8 + 16 < B.cap)
        B.cap = (long)(sb.st_size / 8 + 16);
    B.rows = malloc((size_t)B.cap * sizeof *B.rows);
    FILE *f = B.rows ? fopen(path, "r") : NULL;
    if (!f) {
        free(B.rows);
        s_points_free(&B.pts);
        return PCF_OK;      /* the staging path reports it */
    }
    pcf_rc rc = db_exec(L->c, "SAVEPOINT bulk", err);
    scada_sink sink = {s_bulk_row, s_bulk_reject, &B};
    scada_stats st;
    pcf_error perr;
    pcf_rc prc = rc == PCF_OK ? scada_parse(f, L->source, &sink, &st, &perr) : rc;
    fclose(f);
    if (rc == PCF_OK && prc == PCF_OK && !B.give_up && B.hard_rc == PCF_OK) {
        B.last = true;
        prc = s_bulk_flush(&B);
    }
    free(B.rows);
    s_points_free(&B.pts);
    if (rc != PCF_OK)
        return rc;
    if (B.hard_rc != PCF_OK) {
        *err = B.hard_err;
        return B.hard_rc;
    }
    if (prc != PCF_OK || B.give_up || L->rep->parsed == 0) {
        memset(L->rep, 0, sizeof *L->rep);
        return db_exec(L->c, "ROLLBACK TO SAVEPOINT bulk", err);
    }
    L->rep->missing = st.missing;
    if ((rc = s_commit(L, err)) != PCF_OK)
        return rc;
    *done = true;
    return PCF_OK;
}

pcf_rc load_scada_file(PGconn *c, const char *path, const char *source, load_report *rep, pcf_error *err)
{
    s_load L = {.c = c, .feed = "scada", .source = source, .rep = rep};
    pcf_rc rc = s_hash_file(path, L.hash, err);
    if (rc != PCF_OK)
        return rc;
    if ((rc = s_begin(&L, err)) != PCF_OK || rep->already_loaded)
        return rc;
    bool done = false;
    if ((rc = s_scada_bulk(&L, path, &done, err)) != PCF_OK)
        return s_abort(&L, rc);
    if (done) {
        s_free_rejects(&L);
        return PCF_OK;
    }
    if ((rc = db_exec(c, "CREATE TEMP TABLE scada_stage (line bigint, point_id text, ts bigint, "
                         "value double precision, quality text, bad boolean NOT NULL DEFAULT false) "
                         "ON COMMIT DROP", err)) != PCF_OK)
        return s_abort(&L, rc);
    L.copy = db_copy_new(c, "scada_stage (line, point_id, ts, value, quality)", err);
    if (!L.copy)
        return s_abort(&L, PCF_ERR_DB);
    FILE *f = fopen(path, "r");
    if (!f)
        return s_abort(&L, pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno)));
    scada_sink sink = {s_scada_row, s_reject_cb, &L};
    scada_stats st;
    pcf_error perr;
    pcf_rc prc = scada_parse(f, source, &sink, &st, &perr);
    fclose(f);
    rep->missing = st.missing;
    if (L.copy_rc != PCF_OK) {
        *err = L.copy_err;
        return s_abort(&L, L.copy_rc);
    }
    if (prc == PCF_ERR_PARSE || prc == PCF_ERR_LIMIT)
        return s_reject_whole(&L, prc, &perr, err);
    if (prc != PCF_OK) {
        *err = perr;
        return s_abort(&L, prc);
    }
    rc = db_copy_finish(L.copy, err);
    db_copy_destroy(&L.copy);
    if (rc != PCF_OK)
        return s_abort(&L, rc);

    /* What only the database knows: is the point configured?  Is a
     * duplicate (point, ts) consistent? */
    if ((rc = s_flag(&L, "UPDATE scada_stage s SET bad = true WHERE NOT EXISTS "
                         "(SELECT 1 FROM measurement_point p WHERE p.point_id = s.point_id) "
                         "RETURNING line, point_id || ',' || to_timestamp(ts) || ',' || value || ',' || quality",
                     0, NULL, "point_id", "unknown measurement point", err)) != PCF_OK)
        return s_abort(&L, rc);
    if ((rc = s_flag(&L, "WITH d AS (SELECT point_id, ts FROM scada_stage GROUP BY point_id, ts "
                         "  HAVING count(*) > 1 AND (min(value) <> max(value) OR min(quality) <> max(quality))) "
                         "UPDATE scada_stage s SET bad = true FROM d WHERE s.point_id = d.point_id AND s.ts = d.ts "
                         "RETURNING s.line, s.point_id || ',' || to_timestamp(s.ts) || ',' || s.value || ',' || s.quality",
                     0, NULL, "value", "duplicate (point_id, timestamp) with a different value or quality", err)) != PCF_OK)
        return s_abort(&L, rc);

    if (rep->quarantined > 0) {                 /* all or nothing */
        rep->rejected = true;
        if ((rc = s_insert_batch(&L, "rejected", err)) != PCF_OK || (rc = s_commit(&L, err)) != PCF_OK)
            return s_abort(&L, rc);
        s_free_rejects(&L);
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: file refused, %ld bad record(s); first: %s",
                             source, rep->quarantined, rep->first_error);
    }
    PGresult *r = db_query(c, "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM scada_stage "
                              "GROUP BY point_id, ts HAVING count(*) > 1) d", 0, NULL, err);
    if (!r)
        return s_abort(&L, PCF_ERR_DB);
    rep->duplicates = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if ((rc = db_exec(c, "SELECT feed_ensure_partitions('measurement', to_timestamp(min(ts)), to_timestamp(max(ts))) "
                         "FROM scada_stage HAVING count(*) > 0", err)) != PCF_OK ||
        (rc = s_insert_batch(&L, "loaded", err)) != PCF_OK)
        return s_abort(&L, rc);
    rc = s_store(&L, rep->duplicates > 0
                 ? "INSERT INTO measurement (point_id, ts, value, quality, batch_id) "
                   "SELECT DISTINCT ON (s.point_id, s.ts) s.point_id, to_timestamp(s.ts), s.value * p.scale, "
                   "s.quality, $1 FROM scada_stage s JOIN measurement_point p USING (point_id) "
                   "ORDER BY s.point_id, s.ts "
                   "ON CONFLICT (point_id, ts) DO UPDATE SET value = EXCLUDED.value, quality = EXCLUDED.quality, "
                   "batch_id = EXCLUDED.batch_id WHERE (measurement.value, measurement.quality) "
                   "IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.quality)"
                 : "INSERT INTO measurement (point_id, ts, value, quality, batch_id) "
                   "SELECT s.point_id, to_timestamp(s.ts), s.value * p.scale, s.quality, $1 "
                   "FROM scada_stage s JOIN measurement_point p USING (point_id) "
                   "ON CONFLICT (point_id, ts) DO UPDATE SET value = EXCLUDED.value, quality = EXCLUDED.quality, "
                   "batch_id = EXCLUDED.batch_id WHERE (measurement.value, measurement.quality) "
                   "IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.quality)", err);
    if (rc != PCF_OK || (rc = s_commit(&L, err)) != PCF_OK)
        return s_abort(&L, rc);
    s_free_rejects(&L);
    return PCF_OK;
}

/* ---- live SCADA batches (ZeroMQ) ---------------------------------------- */

typedef struct {
    s_load *L;
} s_live;

static pcf_rc s_live_row(void *ctx, const scada_pb_row *row, pcf_error *err)
{
    s_load *L = ((s_live *)ctx)->L;
    db_copy_text(L->copy, row->point_id);
    db_copy_int(L->copy, row->time_ms);
    db_copy_double(L->copy, row->value);
    db_copy_text(L->copy, scada_quality_name(row->quality));
    L->rep->parsed++;
    pcf_rc rc = db_copy_end_row(L->copy, &L->copy_err);
    if (rc != PCF_OK) {
        *err = L->copy_err;
        L->copy_rc = rc;
    }
    return rc;
}

/* A live batch's source ("zmq:<gateway_id>") and the content hash that
 * identifies it in ingest_batch: (gateway_id, batch_sequence), not its bytes,
 * so a resend with other bytes is still the same batch. */
static void s_live_identity(const scada_pb_info *info, char *source, size_t n, char hash[33])
{
    char ident[120];
    snprintf(source, n, "zmq:%s", info->gateway_id);
    int k = snprintf(ident, sizeof ident, "scada-zmq%c%s%c%llu", 0, info->gateway_id, 0,
                     (unsigned long long)info->batch_sequence);
    load_hash_hex(ident, (size_t)k, hash);
}

static pcf_rc s_live_reject(void *ctx, const feed_reject *r, pcf_error *err)
{
    return s_reject_cb(((s_live *)ctx)->L, r, err);
}

pcf_rc load_scada_batch(PGconn *c, bool nested, const void *buf, size_t len, load_report *rep,
                        scada_pb_info *info, pcf_error *err)
{
    if (!nested && PQtransactionStatus(c) != PQTRANS_IDLE)
        return pcf_error_set(err, PCF_ERR_INTERNAL, "load_scada_batch: a transaction is open but nested is false");
    /* First decode only for the identity (gateway, sequence) of the batch. */
    scada_pb_sink none = {NULL, NULL, NULL};
    pcf_rc rc = scada_pb_parse(buf, len, &none, info, err);
    memset(rep, 0, sizeof *rep);
    if (rc != PCF_OK) {
        snprintf(rep->first_error, sizeof rep->first_error, "%s", err->msg);
        rep->rejected = true;
        return rc;
    }
    char source[80];
    s_load L = {.c = c, .feed = "scada", .source = source, .rep = rep, .nested = nested};
    s_live_identity(info, source, sizeof source, L.hash);
    if ((rc = s_begin(&L, err)) != PCF_OK || rep->already_loaded)
        return rc;
    /* Several batches may share a transaction (nested): reuse the table. */
    if ((rc = db_exec(c, "CREATE TEMP TABLE IF NOT EXISTS live_stage (point_id text, ts_ms bigint, "
                         "value double precision, quality text, bad boolean NOT NULL DEFAULT false) ON COMMIT DROP; "
                         "TRUNCATE live_stage", err)) != PCF_OK)
        return s_abort(&L, rc);
    L.copy = db_copy_new(c, "live_stage (point_id, ts_ms, value, quality)", err);
    if (!L.copy)
        return s_abort(&L, PCF_ERR_DB);
    s_live lv = {&L};
    scada_pb_sink sink = {s_live_row, s_live_reject, &lv};
    pcf_error perr;
    pcf_rc prc = scada_pb_parse(buf, len, &sink, info, &perr);
    if (L.copy_rc != PCF_OK) {
        *err = L.copy_err;
        return s_abort(&L, L.copy_rc);
    }
    if (prc != PCF_OK) {
        *err = perr;
        return s_abort(&L, prc);
    }
    rc = db_copy_finish(L.copy, err);
    db_copy_destroy(&L.copy);
    if (rc != PCF_OK)
        return s_abort(&L, rc);
    /* Per record: unknown points and conflicting duplicates are quarantined
     * with the batch sequence as their line; the rest of the batch loads. */
    char sql[700];
    unsigned long long seq = (unsigned long long)info->batch_sequence;
    snprintf(sql, sizeof sql, "UPDATE live_stage s SET bad = true WHERE NOT EXISTS "
                              "(SELECT 1 FROM measurement_point p WHERE p.point_id = s.point_id) "
                              "RETURNING %llu, point_id || ',' || ts_ms || ',' || value || ',' || quality",
             seq > 9223372036854775807ULL ? 9223372036854775807ULL : seq);
    if ((rc = s_flag(&L, sql, 0, NULL, "point_id", "unknown measurement point", err)) != PCF_OK)
        return s_abort(&L, rc);
    snprintf(sql, sizeof sql, "WITH d AS (SELECT point_id, ts_ms FROM live_stage WHERE NOT bad "
                              "GROUP BY point_id, ts_ms HAVING min(value) <> max(value) OR min(quality) <> max(quality)) "
                              "UPDATE live_stage s SET bad = true FROM d WHERE s.point_id = d.point_id AND s.ts_ms = d.ts_ms "
                              "RETURNING %llu, s.point_id || ',' || s.ts_ms || ',' || s.value || ',' || s.quality",
             seq > 9223372036854775807ULL ? 9223372036854775807ULL : seq);
    if ((rc = s_flag(&L, sql, 0, NULL, "value", "duplicate (point_id, time_ms) with a different value or quality",
                     err)) != PCF_OK)
        return s_abort(&L, rc);
    if ((rc = db_exec(c, "SELECT feed_ensure_partitions('measurement', to_timestamp(min(ts_ms) / 1000.0), "
                         "to_timestamp(max(ts_ms) / 1000.0)) FROM live_stage WHERE NOT bad HAVING count(*) > 0",
                      err)) != PCF_OK ||
        (rc = s_insert_batch(&L, "loaded", err)) != PCF_OK)
        return s_abort(&L, rc);
    rc = s_store(&L, "INSERT INTO measurement (point_id, ts, value, quality, batch_id) "
                     "SELECT DISTINCT ON (s.point_id, s.ts_ms) s.point_id, to_timestamp(s.ts_ms / 1000.0), "
                     "s.value * p.scale, s.quality, $1 FROM live_stage s JOIN measurement_point p USING (point_id) "
                     "WHERE NOT s.bad ORDER BY s.point_id, s.ts_ms "
                     "ON CONFLICT (point_id, ts) DO UPDATE SET value = EXCLUDED.value, quality = EXCLUDED.quality, "
                     "batch_id = EXCLUDED.batch_id WHERE (measurement.value, measurement.quality) "
                     "IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.quality)", err);
    if (rc != PCF_OK || (rc = s_commit(&L, err)) != PCF_OK)
        return s_abort(&L, rc);
    s_free_rejects(&L);
    return PCF_OK;
}

/* A live batch the database refused for good: every measurement becomes a
 * quarantine row with the database's reason. */
typedef struct {
    s_load *L;
    long line;
    const char *reason;
} s_refused;

static pcf_rc s_refused_row(void *ctx, const scada_pb_row *row, pcf_error *err)
{
    s_refused *x = ctx;
    char raw[FEED_RAW_MAX], v[32];
    db_format_double(row->value, v, sizeof v);
    snprintf(raw, sizeof raw, "%s,%lld,%s,%s", row->point_id, (long long)row->time_ms, v,
             scada_quality_name(row->quality));
    x->L->rep->parsed++;
    if (s_add_reject(x->L, x->line, "", x->reason, raw) != PCF_OK)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", x->L->source);
    return PCF_OK;
}

static pcf_rc s_refused_reject(void *ctx, const feed_reject *r, pcf_error *err)
{
    return s_reject_cb(((s_refused *)ctx)->L, r, err);
}

pcf_rc load_scada_batch_refused(PGconn *c, bool nested, const void *buf, size_t len, const pcf_error *why,
                                load_report *rep, scada_pb_info *info, pcf_error *err)
{
    if (!nested && PQtransactionStatus(c) != PQTRANS_IDLE)
        return pcf_error_set(err, PCF_ERR_INTERNAL, "load_scada_batch_refused: a transaction is open but nested is false");
    scada_pb_sink none = {NULL, NULL, NULL};
    memset(rep, 0, sizeof *rep);
    pcf_rc rc = scada_pb_parse(buf, len, &none, info, err);
    if (rc != PCF_OK)
        return rc;
    char source[80], reason[400];
    /* the server's first line ("ERROR:  ...") is the reason; CONTEXT lines are noise here */
    size_t first = strcspn(why->msg, "\n");
    snprintf(reason, sizeof reason, "batch refused by the database (SQLSTATE %s): %.*s",
             why->sqlstate[0] ? why->sqlstate : "none", (int)(first < 300 ? first : 300), why->msg);
    /* every row is kept (the batch is not anywhere else), and no more room
     * than the batch needs is taken */
    s_load L = {.c = c, .feed = "scada", .source = source, .rep = rep, .nested = nested,
                .max_rej = info->measurements ? info->measurements : 1};
    s_live_identity(info, source, sizeof source, L.hash);
    if ((rc = s_begin(&L, err)) != PCF_OK || rep->already_loaded)
        return rc;
    unsigned long long seq = (unsigned long long)info->batch_sequence;
    s_refused x = {&L, seq > 9223372036854775807ULL ? 9223372036854775807L : (long)seq, reason};
    scada_pb_sink sink = {s_refused_row, s_refused_reject, &x};
    pcf_error perr;
    if ((rc = scada_pb_parse(buf, len, &sink, info, &perr)) != PCF_OK) {
        *err = perr;
        return s_abort(&L, rc);
    }
    rep->rejected = true;
    if ((rc = s_insert_batch(&L, "rejected", err)) != PCF_OK || (rc = s_commit(&L, err)) != PCF_OK)
        return s_abort(&L, rc);
    s_free_rejects(&L);
    return PCF_OK;
}

/* ---- weather ----------------------------------------------------------- */

typedef struct {
    s_load *L;
    const load_weather_opts *o;
} s_wx;

static pcf_rc s_wx_location(void *ctx, const wx_location *loc, pcf_error *err)
{
    s_wx *w = ctx;
    if (loc->index >= w->o->nlocations)
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: response has location %zu but only %zu are configured",
                             w->L->source, loc->index, w->o->nlocations);
    return PCF_OK;
}

static pcf_rc s_wx_value(void *ctx, const wx_value *v, pcf_error *err)
{
    s_wx *w = ctx;
    s_load *L = w->L;
    db_copy_text(L->copy, w->o->location_ids[v->location]);
    db_copy_text(L->copy, v->model ? v->model : w->o->model);
    db_copy_int(L->copy, v->valid_at);
    db_copy_text(L->copy, v->variable);
    db_copy_int(L->copy, v->member);
    db_copy_double(L->copy, v->value);
    db_copy_int(L->copy, v->interval_s);
    L->rep->parsed++;
    pcf_rc rc = db_copy_end_row(L->copy, &L->copy_err);
    if (rc != PCF_OK) {
        *err = L->copy_err;
        L->copy_rc = rc;
    }
    return rc;
}

static pcf_rc s_wx_reject(void *ctx, const feed_reject *r, pcf_error *err)
{
    s_wx *w = ctx;
    return s_reject_cb(w->L, r, err);
}

pcf_rc load_weather(PGconn *c, const char *buf, size_t len, const char *source,
                    const load_weather_opts *opts, load_report *rep, pcf_error *err)
{
    s_load L = {.c = c, .feed = "weather", .source = source, .rep = rep};
    if (!opts || !opts->model || opts->nlocations == 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "%s: no model or locations configured", source);
    int64_t issued = opts->issued_at - ((opts->issued_at % 3600) + 3600) % 3600;
    char issued_s[SPTIME_ISO_LEN];
    sptime_format_utc(issued, issued_s, sizeof issued_s);
    s_hash h;
    s_hash_init(&h);
    s_hash_add(&h, buf, len);
    s_hash_add(&h, issued_s, strlen(issued_s));
    s_hash_add(&h, opts->model, strlen(opts->model));
    for (size_t i = 0; i < opts->nlocations; i++)
        s_hash_add(&h, opts->location_ids[i], strlen(opts->location_ids[i]) + 1);
    s_hash_hex(&h, L.hash);
    pcf_rc rc;
    if ((rc = s_begin(&L, err)) != PCF_OK || rep->already_loaded)
        return rc;
    /* Every configured location must exist: otherwise nothing can be stored. */
    for (size_t i = 0; i < opts->nlocations; i++) {
        const char *p[1] = {opts->location_ids[i]};
        PGresult *r = db_query(c, "SELECT 1 FROM weather_location WHERE location_id = $1", 1, p, err);
        if (!r)
            return s_abort(&L, PCF_ERR_DB);
        int n = PQntuples(r);
        PQclear(r);
        if (n == 0) {
            pcf_error perr;
            pcf_error_set(&perr, PCF_ERR_INVALID, "%s: unknown weather location '%.100s'", source, opts->location_ids[i]);
            return s_reject_whole(&L, PCF_ERR_INVALID, &perr, err);
        }
    }
    if ((rc = db_exec(c, "CREATE TEMP TABLE wx_stage (location_id text, model text, valid_at bigint, "
                         "variable text, member integer, value double precision, interval_s integer) "
                         "ON COMMIT DROP", err)) != PCF_OK)
        return s_abort(&L, rc);
    L.copy = db_copy_new(c, "wx_stage (location_id, model, valid_at, variable, member, value, interval_s)", err);
    if (!L.copy)
        return s_abort(&L, PCF_ERR_DB);
    s_wx w = {&L, opts};
    openmeteo_sink sink = {s_wx_location, s_wx_value, s_wx_reject, &w};
    openmeteo_stats st;
    pcf_error perr;
    pcf_rc prc = openmeteo_parse(buf, len, source, &sink, &st, &perr);
    rep->missing = st.nulls;
    if (L.copy_rc != PCF_OK) {
        *err = L.copy_err;
        return s_abort(&L, L.copy_rc);
    }
    if (prc == PCF_ERR_PARSE || prc == PCF_ERR_LIMIT || prc == PCF_ERR_INVALID)
        return s_reject_whole(&L, prc, &perr, err);
    if (prc != PCF_OK) {
        *err = perr;
        return s_abort(&L, prc);
    }
    rc = db_copy_finish(L.copy, err);
    db_copy_destroy(&L.copy);
    if (rc != PCF_OK)
        return s_abort(&L, rc);
    const char *p[1] = {issued_s};
    PGresult *r = db_query(c, "SELECT feed_ensure_partitions('weather_forecast', $1, $1)", 1, p, err);
    if (!r)
        return s_abort(&L, PCF_ERR_DB);
    PQclear(r);
    if ((rc = s_insert_batch(&L, "loaded", err)) != PCF_OK)
        return s_abort(&L, rc);
    char bid[32];
    snprintf(bid, sizeof bid, "%lld", rep->batch_id);
    const char *ip[2] = {bid, issued_s};
    r = db_query(c, "INSERT INTO weather_forecast (location_id, model, issued_at, valid_at, variable, member, "
                    "value, interval_s, batch_id) "
                    "SELECT location_id, model, $2, to_timestamp(valid_at), variable, member, value, interval_s, $1 "
                    "FROM wx_stage "
                    "ON CONFLICT (location_id, model, issued_at, variable, member, valid_at) DO UPDATE "
                    "SET value = EXCLUDED.value, interval_s = EXCLUDED.interval_s, batch_id = EXCLUDED.batch_id "
                    "WHERE (weather_forecast.value, weather_forecast.interval_s) "
                    "IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.interval_s)", 2, ip, err);
    if (!r)
        return s_abort(&L, PCF_ERR_DB);
    rep->stored = s_cmd_tuples(r);
    PQclear(r);
    if ((rc = s_commit(&L, err)) != PCF_OK)
        return s_abort(&L, rc);
    s_free_rejects(&L);
    return PCF_OK;
}

/* ---- outages ----------------------------------------------------------- */

static pcf_rc s_outage_rec(void *ctx, const outage_rec *o, pcf_error *err)
{
    s_load *L = ctx;
    db_copy_int(L->copy, o->line);
    db_copy_text(L->copy, o->outage_id);
    db_copy_int(L->copy, o->revision);
    db_copy_text(L->copy, o->equipment_id);
    db_copy_text(L->copy, o->planned ? "planned" : "unplanned");
    db_copy_text(L->copy, o->status);
    db_copy_int(L->copy, o->start);
    db_copy_int(L->copy, o->end);
    L->rep->parsed++;
    pcf_rc rc = db_copy_end_row(L->copy, &L->copy_err);
    if (rc != PCF_OK) {
        *err = L->copy_err;
        L->copy_rc = rc;
    }
    return rc;
}

static pcf_rc s_read_all(const char *path, char **buf, size_t *len, size_t max, pcf_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    pcf_rc rc = PCF_OK;
    while (b) {
        if (n == cap) {
            if (cap > max) {
                rc = pcf_error_set(err, PCF_ERR_LIMIT, "%s: larger than %zu bytes", path, max);
                break;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
    }
    if (!b && rc == PCF_OK)
        rc = pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", path);
    else if (rc == PCF_OK && ferror(f))
        rc = pcf_error_set(err, PCF_ERR_IO, "%s: read error", path);
    fclose(f);
    if (rc != PCF_OK) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = n;
    return PCF_OK;
}

#define S_OUT_RAW "outage_id || ',' || revision || ',' || equipment_id || ',' || kind || ',' || status"

pcf_rc load_outage_file(PGconn *c, const char *path, const char *source,
                        load_outage_format fmt, load_report *rep, pcf_error *err)
{
    s_load L = {.c = c, .feed = "outage", .source = source, .rep = rep};
    pcf_rc rc = s_hash_file(path, L.hash, err);
    if (rc != PCF_OK)
        return rc;
    if ((rc = s_begin(&L, err)) != PCF_OK || rep->already_loaded)
        return rc;
    if ((rc = db_exec(c, "CREATE TEMP TABLE outage_stage (line bigint, outage_id text, revision integer, "
                         "equipment_id text, kind text, status text, start_s bigint, end_s bigint, "
                         "bad boolean NOT NULL DEFAULT false) ON COMMIT DROP", err)) != PCF_OK)
        return s_abort(&L, rc);
    L.copy = db_copy_new(c, "outage_stage (line, outage_id, revision, equipment_id, kind, status, start_s, end_s)", err);
    if (!L.copy)
        return s_abort(&L, PCF_ERR_DB);
    outage_sink sink = {s_outage_rec, s_reject_cb, &L};
    pcf_error perr;
    pcf_rc prc;
    if (fmt == LOAD_OUTAGE_JSON) {
        char *buf = NULL;
        size_t len = 0;
        prc = s_read_all(path, &buf, &len, OUTAGE_MAX_BYTES, &perr);
        if (prc == PCF_OK)
            prc = outage_parse_json(buf, len, source, &sink, NULL, &perr);
        free(buf);
    } else {
        FILE *f = fopen(path, "r");
        if (!f)
            return s_abort(&L, pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno)));
        prc = outage_parse_ukpn_csv(f, source, &sink, NULL, &perr);
        fclose(f);
    }
    if (L.copy_rc != PCF_OK) {
        *err = L.copy_err;
        return s_abort(&L, L.copy_rc);
    }
    if (prc == PCF_ERR_PARSE || prc == PCF_ERR_LIMIT)
        return s_reject_whole(&L, prc, &perr, err);
    if (prc != PCF_OK) {
        *err = perr;
        return s_abort(&L, prc);
    }
    rc = db_copy_finish(L.copy, err);
    db_copy_destroy(&L.copy);
    if (rc != PCF_OK)
        return s_abort(&L, rc);

    const char *checks[][3] = {
        {"UPDATE outage_stage s SET bad = true WHERE NOT EXISTS "
         "(SELECT 1 FROM equipment_branch e WHERE e.equipment_id = s.equipment_id) RETURNING line, " S_OUT_RAW,
         "equipment_id", "unknown equipment (no equipment_branch mapping)"},
        {"UPDATE outage_stage s SET bad = true FROM (SELECT line AS dl, row_number() OVER "
         "(PARTITION BY outage_id, revision ORDER BY line) AS rn FROM outage_stage WHERE NOT bad) d "
         "WHERE d.dl = s.line AND d.rn > 1 RETURNING s.line, " "s.outage_id || ',' || s.revision",
         "outage_id", "outage (and revision) listed twice in one input"},
        {"UPDATE outage_stage s SET bad = true FROM outage o WHERE NOT s.bad AND s.revision > 0 "
         "AND o.outage_id = s.outage_id AND o.revision = s.revision "
         "AND (o.equipment_id, o.kind, o.status, o.start_at, o.end_at) IS DISTINCT FROM "
         "(s.equipment_id, s.kind, s.status, to_timestamp(s.start_s), to_timestamp(s.end_s)) "
         "RETURNING s.line, s.outage_id || ',' || s.revision",
         "revision", "this revision is already stored with different content"},
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        if ((rc = s_flag(&L, checks[i][0], 0, NULL, checks[i][1], checks[i][2], err)) != PCF_OK)
            return s_abort(&L, rc);
    /* UKPN CSV rows carry no revision: an unchanged row is nothing new, a
     * changed one is the next revision of its outage. */
    if ((rc = db_exec(c, "UPDATE outage_stage s SET revision = coalesce((SELECT max(o.revision) FROM outage o "
                         "WHERE o.outage_id = s.outage_id), 0) + 1 "
                         "WHERE s.revision = 0 AND NOT s.bad AND NOT EXISTS (SELECT 1 FROM outage_current o "
                         "WHERE o.outage_id = s.outage_id AND (o.equipment_id, o.kind, o.status, o.start_at, o.end_at) "
                         "IS NOT DISTINCT FROM (s.equipment_id, s.kind, s.status, to_timestamp(s.start_s), "
                         "to_timestamp(s.end_s)))", err)) != PCF_OK ||
        (rc = s_insert_batch(&L, "loaded", err)) != PCF_OK)
        return s_abort(&L, rc);
    char srcbuf[1100];
    snprintf(srcbuf, sizeof srcbuf, "%s", source);
    char bid[32];
    snprintf(bid, sizeof bid, "%lld", rep->batch_id);
    const char *ip[2] = {bid, srcbuf};
    PGresult *r = db_query(c, "INSERT INTO outage (outage_id, revision, equipment_id, branch_id, kind, status, "
                              "start_at, end_at, source, batch_id) "
                              "SELECT s.outage_id, s.revision, s.equipment_id, e.branch_id, s.kind, s.status, "
                              "to_timestamp(s.start_s), to_timestamp(s.end_s), $2, $1 "
                              "FROM outage_stage s JOIN equipment_branch e USING (equipment_id) "
                              "WHERE NOT s.bad AND s.revision > 0 "
                              "ON CONFLICT (outage_id, revision) DO NOTHING", 2, ip, err);
    if (!r)
        return s_abort(&L, PCF_ERR_DB);
    rep->stored = s_cmd_tuples(r);
    PQclear(r);
    if ((rc = s_commit(&L, err)) != PCF_OK)
        return s_abort(&L, rc);
    s_free_rejects(&L);
    return PCF_OK;
}
