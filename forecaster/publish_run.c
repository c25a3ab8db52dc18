/*
 * publish_run.c -- reads one run's results from PostgreSQL as protobuf-c
 * structures (see publish_run.h for the mapping).
 *
 * How: one REPEATABLE READ, READ ONLY transaction so the queries see the
 * same committed state.  The queries are prepared once per connection
 * (named pcf_publish_*): under load, planning them took longer than running
 * them.  A connection that does not have them yet (new, or reconnected)
 * fails the first execution with SQLSTATE 26000; the load then prepares
 * them and runs again.  Results come in PostgreSQL's binary format
 * (float8 as IEEE bits, timestamptz as microseconds since 2000): no number
 * is formatted by the server or parsed here, and doubles arrive bit-exact.
 * Every column's type is checked against what the accessor expects (a
 * mismatch is a schema bug and reported, never guessed).  Every structure comes from
 * a bump arena: a run of the demo zone has thousands of small messages and
 * they all die together.
 */
#include "publish_run.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "sptime.h"

/* ---- arena --------------------------------------------------------------- */

#define ARENA_CHUNK (256 * 1024)

typedef struct s_chunk {
    struct s_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} s_chunk;

struct publish_arena {
    s_chunk *head;
};

static void *s_alloc(publish_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        s_chunk *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

static char *s_strdup(publish_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = s_alloc(a, n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

static void s_arena_free(publish_arena **ap)
{
    if (!*ap) return;
    s_chunk *c = (*ap)->head;
    while (c) {
        s_chunk *n = c->next;
        free(c);
        c = n;
    }
    free(*ap);
    *ap = NULL;
}

/* ---- column access --------------------------------------------------------- */

typedef struct s_cols {
    PGresult *res;
    int row;
    const char *what;   /* query name for messages */
    pcf_error *err;
    pcf_rc rc;          /* first failure, sticky */
} s_cols;

static void s_bad(s_cols *c, int col, const char *why)
{
    if (c->rc != PCF_OK) return;
    c->rc = pcf_error_set(c->err, PCF_ERR_PARSE, "%s: row %d column %s: %s", c->what, c->row + 1,
                          PQfname(c->res, col), why);
}

/* Type OIDs of pg_type (stable across versions). */
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT8 701
#define OID_TIMESTAMPTZ 1184
#define PG_EPOCH_MS 946684800000LL   /* 2000-01-01T00:00:00Z, PostgreSQL's epoch */

static uint64_t s_be(s_cols *c, int col, int len)
{
    uint64_t v = 0;
    if (PQgetlength(c->res, c->row, col) != len) {
        s_bad(c, col, "unexpected binary length");
        return 0;
    }
    memcpy(&v, PQgetvalue(c->res, c->row, col), (size_t)len);
    return len == 8 ? be64toh(v) : len == 4 ? be32toh((uint32_t)v) : be16toh((uint16_t)v);
}

/* A double precision column (or a domain over it: probability, std_error,
 * which the server describes by the domain's own OID). */
static double s_f64(s_cols *c, int col)
{
    if (PQgetisnull(c->res, c->row, col)) return 0;
    Oid t = PQftype(c->res, col);
    if (t == OID_INT4 || t == OID_INT2 || t == OID_INT8 || t == OID_TIMESTAMPTZ) {
        s_bad(c, col, "not a double precision column");
        return 0;
    }
    uint64_t bits = s_be(c, col, 8);
    double v;
    memcpy(&v, &bits, sizeof v);
    if (v != v || v - v != 0) s_bad(c, col, "not a finite number");
    return v;
}

/* An integer column, or a timestamptz as milliseconds since 1970. */
static int64_t s_i64(s_cols *c, int col)
{
    if (PQgetisnull(c->res, c->row, col)) return 0;
    switch (PQftype(c->res, col)) {
    case OID_INT2: return (int16_t)s_be(c, col, 2);
    case OID_INT4: return (int32_t)s_be(c, col, 4);
    case OID_INT8: return (int64_t)s_be(c, col, 8);
    case OID_TIMESTAMPTZ: {
        int64_t us = (int64_t)s_be(c, col, 8);
        int64_t ms = us / 1000 - (us % 1000 < 0);   /* floor, for instants before 2000 */
        return ms + PG_EPOCH_MS;
    }
    default: s_bad(c, col, "not an integer or timestamptz column"); return 0;
    }
}

static uint32_t s_u32(s_cols *c, int col)
{
    int64_t v = s_i64(c, col);
    if (v < 0 || v > UINT32_MAX) {
        s_bad(c, col, "out of range");
        return 0;
    }
    return (uint32_t)v;
}

static char *s_text(s_cols *c, publish_arena *a, int col)
{
    const char *s = PQgetisnull(c->res, c->row, col) ? "" : PQgetvalue(c->res, c->row, col);
    char *p = s_strdup(a, s);
    if (!p && c->rc == PCF_OK) c->rc = pcf_error_set(c->err, PCF_ERR_NOMEM, "%s: out of memory", c->what);
    return p;
}

/* ---- queries ----------------------------------------------------------------- */

#define MS(x) x   /* timestamptz, binary: s_i64 converts to ms */

static const char s_sql_run[] =
    "SELECT r.zone_id, r.kind,"
    " coalesce(to_char(r.target_date, 'YYYY-MM-DD'),"
    "          to_char(r.horizon_start AT TIME ZONE 'Europe/London', 'YYYY-MM-DD')),"
    " " MS("r.horizon_start") ", " MS("r.horizon_end") ", r.sp_count, r.samples,"
    " " MS("r.scada_as_of") ", " MS("r.weather_as_of") ", " MS("r.outages_as_of") ","
    " " MS("coalesce(r.finished_at, r.started_at)") ", r.software_version"
    " FROM run r WHERE r.run_id = $1";

/* Rows come in primary-key order (no sort in the server) and are sorted
 * here: the server's text sort is collation-aware and several times slower. */
static const char s_sql_pcf[] =
    "SELECT p.site_id, coalesce(e.lifo, 0),"
    " p.sp, " MS("p.sp_start") ", p.p_curtailed, p.expected_curtailed_mwh,"
    " p.deliverable_p10_mw, p.deliverable_p50_mw, p.deliverable_p90_mw, p.firm95_mw,"
    " s.export_capacity_mw, p.p_curtailed_se, p.expected_curtailed_se, p.deliverable_p10_se_mw,"
    " p.deliverable_p50_se_mw, p.deliverable_p90_se_mw, p.firm95_se_mw"
    " FROM pcf_result p JOIN der_site s USING (site_id)"
    " LEFT JOIN (SELECT site_id, min(lifo_position) AS lifo FROM der_enquiry"
    "            WHERE NOT firm AND status <> 'withdrawn' GROUP BY site_id) e USING (site_id)"
    " WHERE p.run_id = $1";

static const char s_sql_cs[] =
    "SELECT cs.constraint_id, cs.sp, " MS("cs.sp_start") ", cs.limit_mw, cs.limit_kind, cs.season,"
    " cs.flow_intact_p10_mw, cs.flow_intact_p50_mw, cs.flow_intact_p90_mw,"
    " cs.flow_fault_p10_mw, cs.flow_fault_p50_mw, cs.flow_fault_p90_mw,"
    " cs.p_anm_acts, cs.p_anm_acts_se, cs.expected_curtailment_mwh, cs.expected_curtailment_se,"
    " coalesce(b.name, b.idx::text), b.kind || ' ' || b.f_bus || '-' || b.t_bus,"
    " c.description, c.voltage_kv, c.kind, cs.post_fault_limit_mw, cs.p_binding_fault, cs.p_binding_fault_se,"
    " cs.flow_intact_p10_se_mw, cs.flow_intact_p50_se_mw, cs.flow_intact_p90_se_mw,"
    " cs.flow_fault_p10_se_mw, cs.flow_fault_p50_se_mw, cs.flow_fault_p90_se_mw,"
    " cs.unit, coalesce(cs.limit_low, 0), coalesce(c.vmax_pu, 0), coalesce(c.vmin_pu, 0), coalesce(c.bus_i, 0)"
    " FROM constraint_statement cs JOIN anm_constraint c USING (constraint_id)"
    " LEFT JOIN branch b ON b.branch_id = cs.binding_fault_branch_id"
    " WHERE cs.run_id = $1 ORDER BY cs.sp, c.voltage_kv, cs.constraint_id COLLATE \"C\"";

static const char s_sql_css[] =
    "SELECT constraint_id, sp, site_id, lifo_position, sensitivity, expected_curtailment_mwh,"
    " expected_curtailment_se, p_curtailed, p_curtailed_se"
    " FROM constraint_statement_site WHERE run_id = $1 ORDER BY constraint_id, sp";   /* index order */

/* Blocks take sp_start and limit from their statements (always loaded with them). */
static const char s_sql_cb[] =
    "SELECT constraint_id, sp, confidence, headroom_mw, curtailment_mw, curtailment_mwh,"
    " headroom_se_mw, curtailment_se_mw, curtailment_mwh_se"
    " FROM constraint_block WHERE run_id = $1 ORDER BY constraint_id, sp, confidence";   /* index order */

/* Prepared-statement names, in the order of s_send_all's queries. */
static const struct {
    const char *name, *sql;
} s_stmts[] = {
    {"pcf_publish_run", s_sql_run}, {"pcf_publish_pcf", s_sql_pcf}, {"pcf_publish_cs", s_sql_cs},
    {"pcf_publish_css", s_sql_css}, {"pcf_publish_cb", s_sql_cb},
};
#define N_STMTS (sizeof s_stmts / sizeof s_stmts[0])

#define SQLSTATE_NO_SUCH_STATEMENT "26000"
#define SQLSTATE_DUPLICATE_STATEMENT "42P05"

/* The queries go out together in libpq's pipeline mode, so the server runs
 * query k+1 while this side decodes query k; s_query() takes the next
 * result, in the order s_send_all() sent them (the order the loaders run). */
static pcf_rc s_db_error(PGconn *c, PGresult *res, pcf_error *err)
{
    const char *m = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
    size_t n = strlen(m);
    while (n && m[n - 1] == '\n') n--;
    pcf_error_set(err, PCF_ERR_DB, "%.*s", n ? (int)n : 20, n ? m : "no result from server");
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (err && st) snprintf(err->sqlstate, sizeof err->sqlstate, "%s", st);
    return PCF_ERR_DB;
}

static PGresult *s_next(PGconn *c, ExecStatusType want, pcf_error *err)
{
    PGresult *res = PQgetResult(c);
    if (PQresultStatus(res) != want) {
        s_db_error(c, res, err);
        PQclear(res);
        return NULL;
    }
    PGresult *end = PQgetResult(c);   /* NULL ends each query's results */
    if (end) {
        PQclear(end);
        PQclear(res);
        pcf_error_set(err, PCF_ERR_DB, "more than one result for a query");
        return NULL;
    }
    return res;
}

static PGresult *s_query(PGconn *c, const char *sql, const char *id, pcf_error *err)
{
    (void)sql;   /* sent by s_send_all(); named at the call sites for the reader */
    (void)id;
    return s_next(c, PGRES_TUPLES_OK, err);
}

/* Prepares every query on this connection (outside pipeline mode).  One
 * already there (an earlier attempt that failed part way) is kept: without
 * that, the connection could never publish again. */
static pcf_rc s_prepare_all(PGconn *c, pcf_error *err)
{
    for (size_t i = 0; i < N_STMTS; i++) {
        PGresult *res = PQprepare(c, s_stmts[i].name, s_stmts[i].sql, 1, NULL);
        pcf_rc rc = PQresultStatus(res) == PGRES_COMMAND_OK ? PCF_OK : s_db_error(c, res, err);
        if (rc != PCF_OK && strcmp(err->sqlstate, SQLSTATE_DUPLICATE_STATEMENT) == 0) rc = PCF_OK;
        PQclear(res);
        if (rc != PCF_OK) return rc;
    }
    return PCF_OK;
}

static pcf_rc s_send_all(PGconn *c, const char *id, int what, pcf_error *err)
{
    const char *q[8];
    int n = 0;
    q[n++] = s_stmts[0].name;
    if (what & PUBLISH_RUN_PCF) q[n++] = s_stmts[1].name;
    if (what & PUBLISH_RUN_STATEMENTS) q[n++] = s_stmts[2].name, q[n++] = s_stmts[3].name;
    if (what & PUBLISH_RUN_BLOCKS) q[n++] = s_stmts[4].name;
    const char *params[1] = {id};
    if (PQenterPipelineMode(c) != 1) return s_db_error(c, NULL, err);
    int ok = PQsendQueryParams(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL, NULL, NULL, 0);
    for (int i = 0; ok && i < n; i++) ok = PQsendQueryPrepared(c, q[i], 1, params, NULL, NULL, 1);
    ok = ok && PQsendQueryParams(c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c);
    return ok ? PCF_OK : s_db_error(c, NULL, err);
}

/* Reads whatever the pipeline still holds up to its sync, and leaves
 * pipeline mode.  Bounded: a broken connection must not loop forever. */
static void s_end_pipeline(PGconn *c)
{
    for (int i = 0; i < 64; i++) {
        PGresult *res = PQgetResult(c);
        if (!res) continue;
        ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC) break;
        if (st == PGRES_FATAL_ERROR && PQstatus(c) != CONNECTION_OK) break;
    }
    PQexitPipelineMode(c);
}

static Pcf__V1__RunKind s_kind(const char *k)
{
    if (strcmp(k, "day_ahead") == 0) return PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD;
    if (strcmp(k, "real_time") == 0) return PCF__V1__RUN_KIND__RUN_KIND_REAL_TIME;
    if (strcmp(k, "trade_check") == 0) return PCF__V1__RUN_KIND__RUN_KIND_TRADE_CHECK;
    return PCF__V1__RUN_KIND__RUN_KIND_UNSPECIFIED;
}

static pcf_rc s_load_run(PGconn *c, const char *id, publish_run *r, pcf_error *err)
{
    PGresult *res = s_query(c, s_sql_run, id, err);
    if (!res) return PCF_ERR_DB;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return pcf_error_set(err, PCF_ERR_INVALID, "run %s: no such run", id);
    }
    s_cols k = {res, 0, "run", err, PCF_OK};
    const char *zone = PQgetvalue(res, 0, 0);
    size_t zl = strlen(zone);
    if (zl > PUBLISH_ID_MAX) zl = PUBLISH_ID_MAX;
    memcpy(r->zone, zone, zl);
    r->zone[zl] = '\0';
    r->kind = s_kind(PQgetvalue(res, 0, 1));
    const char *date = PQgetvalue(res, 0, 2);
    if (strlen(date) != 10) s_bad(&k, 2, "not a date");
    else memcpy(r->settlement_date, date, 11);
    pcf__v1__inputs_as_of__init(&r->inputs);
    pcf__v1__batch_info__init(&r->batch);
    r->batch.settlement_date = r->settlement_date;
    r->batch.horizon_start_ms = s_i64(&k, 3);
    r->batch.horizon_end_ms = s_i64(&k, 4);
    r->batch.sp_count = s_u32(&k, 5);
    r->batch.samples = s_u32(&k, 6);
    r->batch.part = r->batch.part_count = 1;
    r->batch.firm_confidence = 0.95;
    r->inputs.scada_ms = s_i64(&k, 7);
    r->inputs.weather_issued_ms = s_i64(&k, 8);
    r->inputs.outages_ms = s_i64(&k, 9);
    r->computed_at_ms = s_i64(&k, 10);
    r->software_version = s_text(&k, r->arena, 11);
    PQclear(res);
    return k.rc;
}

/* Wire order of PCF rows: sp, lifo_position, site_id (bytes). */
static int s_cmp_pcf(const void *a, const void *b)
{
    const Pcf__V1__Pcf *x = *(Pcf__V1__Pcf *const *)a, *y = *(Pcf__V1__Pcf *const *)b;
    if (x->sp != y->sp) return x->sp < y->sp ? -1 : 1;
    if (x->lifo_position != y->lifo_position) return x->lifo_position < y->lifo_position ? -1 : 1;
    return strcmp(x->site_id, y->site_id);
}

static pcf_rc s_load_pcf(PGconn *c, const char *id, publish_run *r, pcf_error *err)
{
    PGresult *res = s_query(c, s_sql_pcf, id, err);
    if (!res) return PCF_ERR_DB;
    int n = PQntuples(res);
    s_cols k = {res, 0, "pcf_result", err, PCF_OK};
    r->pcf = s_alloc(r->arena, (size_t)n * sizeof *r->pcf + 1);
    Pcf__V1__Pcf *rows = s_alloc(r->arena, (size_t)n * sizeof *rows + 1);
    if (!r->pcf || !rows) k.rc = pcf_error_set(err, PCF_ERR_NOMEM, "pcf_result: out of memory");
    for (int i = 0; i < n && k.rc == PCF_OK; i++) {
        k.row = i;
        Pcf__V1__Pcf *p = &rows[i];
        pcf__v1__pcf__init(p);
        p->site_id = s_text(&k, r->arena, 0);
        p->lifo_position = s_u32(&k, 1);
        p->sp = s_u32(&k, 2);
        p->sp_start_ms = s_i64(&k, 3);
        p->sp_length_ms = PUBLISH_SP_LENGTH_MS;
        p->p_curtailed = s_f64(&k, 4);
        p->expected_curtailed_mwh = s_f64(&k, 5);
        p->deliverable_p10_mw = s_f64(&k, 6);
        p->deliverable_p50_mw = s_f64(&k, 7);
        p->deliverable_p90_mw = s_f64(&k, 8);
        p->firm_equivalent_mw = s_f64(&k, 9);
        p->export_capacity_mw = s_f64(&k, 10);
        p->samples = r->batch.samples;
        p->p_curtailed_se = s_f64(&k, 11);
        p->expected_curtailed_mwh_se = s_f64(&k, 12);
        p->deliverable_p10_mw_se = s_f64(&k, 13);
        p->deliverable_p50_mw_se = s_f64(&k, 14);
        p->deliverable_p90_mw_se = s_f64(&k, 15);
        p->firm_equivalent_mw_se = s_f64(&k, 16);
        r->pcf[i] = p;
    }
    if (k.rc == PCF_OK) {
        r->n_pcf = (size_t)n;
        qsort(r->pcf, r->n_pcf, sizeof *r->pcf, s_cmp_pcf);
    }
    PQclear(res);
    return k.rc;
}

static Pcf__V1__LimitKind s_limit_kind(const char *s)
{
    if (strcmp(s, "pel") == 0) return PCF__V1__LIMIT_KIND__LIMIT_KIND_PRE_EVENT;
    if (strcmp(s, "continuous") == 0) return PCF__V1__LIMIT_KIND__LIMIT_KIND_CONTINUOUS;
    if (strcmp(s, "post_fault") == 0) return PCF__V1__LIMIT_KIND__LIMIT_KIND_POST_FAULT;
    if (strcmp(s, "boundary") == 0) return PCF__V1__LIMIT_KIND__LIMIT_KIND_BOUNDARY;
    if (strcmp(s, "voltage") == 0) return PCF__V1__LIMIT_KIND__LIMIT_KIND_VOLTAGE;
    return PCF__V1__LIMIT_KIND__LIMIT_KIND_UNSPECIFIED;
}

static Pcf__V1__RatingSeason s_season(const char *s)
{
    if (strcmp(s, "winter") == 0) return PCF__V1__RATING_SEASON__RATING_SEASON_WINTER;
    if (strcmp(s, "spring") == 0) return PCF__V1__RATING_SEASON__RATING_SEASON_SPRING;
    if (strcmp(s, "summer") == 0) return PCF__V1__RATING_SEASON__RATING_SEASON_SUMMER;
    if (strcmp(s, "autumn") == 0) return PCF__V1__RATING_SEASON__RATING_SEASON_AUTUMN;
    return PCF__V1__RATING_SEASON__RATING_SEASON_UNSPECIFIED;
}

static Pcf__V1__ConstraintKind s_constraint_kind(const char *s)
{
    if (strcmp(s, "branch") == 0) return PCF__V1__CONSTRAINT_KIND__CONSTRAINT_KIND_CIRCUIT;
    if (strcmp(s, "transformer") == 0) return PCF__V1__CONSTRAINT_KIND__CONSTRAINT_KIND_TRANSFORMER;
    if (strcmp(s, "boundary") == 0) return PCF__V1__CONSTRAINT_KIND__CONSTRAINT_KIND_BOUNDARY;
    if (strcmp(s, "voltage") == 0) return PCF__V1__CONSTRAINT_KIND__CONSTRAINT_KIND_VOLTAGE;
    return PCF__V1__CONSTRAINT_KIND__CONSTRAINT_KIND_UNSPECIFIED;
}

/* Three quantiles 0.1/0.5/0.9 from columns col..col+2, their SEs from
 * se_col..se_col+2 (NULL, in runs older than migration 004: 0). */
static Pcf__V1__Quantile **s_quantiles(s_cols *k, publish_arena *a, int col, int se_col)
{
    static const double level[3] = {0.1, 0.5, 0.9};
    Pcf__V1__Quantile **v = s_alloc(a, 3 * sizeof *v);
    Pcf__V1__Quantile *q = s_alloc(a, 3 * sizeof *q);
    if (!v || !q) return NULL;
    for (int i = 0; i < 3; i++) {
        pcf__v1__quantile__init(&q[i]);
        q[i].probability = level[i];
        q[i].mw = s_f64(k, col + i);
        q[i].mw_se = s_f64(k, se_col + i);
        v[i] = &q[i];
    }
    return v;
}

/* Index of statements sorted by (sp, constraint_id), for attaching sites. */
static int s_cmp_stmt(const void *a, const void *b)
{
    const Pcf__V1__ConstraintStatement *x = *(Pcf__V1__ConstraintStatement *const *)a;
    const Pcf__V1__ConstraintStatement *y = *(Pcf__V1__ConstraintStatement *const *)b;
    if (x->sp != y->sp) return x->sp < y->sp ? -1 : 1;
    return strcmp(x->constraint_id, y->constraint_id);
}

static int s_cmp_site(const void *a, const void *b)
{
    const Pcf__V1__ConstraintSite *x = *(Pcf__V1__ConstraintSite *const *)a;
    const Pcf__V1__ConstraintSite *y = *(Pcf__V1__ConstraintSite *const *)b;
    if (x->lifo_position != y->lifo_position) return x->lifo_position > y->lifo_position ? -1 : 1;
    return strcmp(x->site_id, y->site_id);
}

/* Statements sorted by (sp, constraint_id) for lookups; caller frees. */
static Pcf__V1__ConstraintStatement **s_stmt_index(const publish_run *r)
{
    Pcf__V1__ConstraintStatement **idx = malloc((r->n_statements + 1) * sizeof *idx);
    if (!idx) return NULL;
    if (r->n_statements) memcpy(idx, r->statements, r->n_statements * sizeof *idx);
    qsort(idx, r->n_statements, sizeof *idx, s_cmp_stmt);
    return idx;
}

static pcf_rc s_load_sites(PGconn *c, const char *id, publish_run *r, pcf_error *err)
{
    size_t n = r->n_statements;
    Pcf__V1__ConstraintStatement **idx = s_stmt_index(r);
    if (!idx) return pcf_error_set(err, PCF_ERR_NOMEM, "constraint_statement_site: out of memory");
    PGresult *res = s_query(c, s_sql_css, id, err);
    if (!res) {
        free(idx);
        return PCF_ERR_DB;
    }
    int rows = PQntuples(res);
    s_cols k = {res, 0, "constraint_statement_site", err, PCF_OK};
    Pcf__V1__ConstraintSite *sites = s_alloc(r->arena, (size_t)rows * sizeof *sites + 1);
    if (!sites) k.rc = pcf_error_set(err, PCF_ERR_NOMEM, "constraint_statement_site: out of memory");
    /* Rows come grouped by (sp, constraint_id): count a group, then point the
     * statement at a slice of one array of pointers. */
    Pcf__V1__ConstraintSite **ptrs = s_alloc(r->arena, (size_t)rows * sizeof *ptrs + 1);
    if (!ptrs && k.rc == PCF_OK) k.rc = pcf_error_set(err, PCF_ERR_NOMEM, "constraint_statement_site: out of memory");
    for (int i = 0; i < rows && k.rc == PCF_OK; i++) {
        k.row = i;
        Pcf__V1__ConstraintStatement key = PCF__V1__CONSTRAINT_STATEMENT__INIT, *kp = &key;
        key.constraint_id = PQgetvalue(res, i, 0);
        key.sp = s_u32(&k, 1);
        Pcf__V1__ConstraintStatement **hit = bsearch(&kp, idx, n, sizeof *idx, s_cmp_stmt);
        if (!hit) {
            s_bad(&k, 0, "site row without its statement");
            break;
        }
        Pcf__V1__ConstraintSite *s = &sites[i];
        pcf__v1__constraint_site__init(s);
        s->site_id = s_text(&k, r->arena, 2);
        s->lifo_position = s_u32(&k, 3);
        s->sensitivity = s_f64(&k, 4);
        s->expected_curtailment_mwh = s_f64(&k, 5);
        s->expected_curtailment_mwh_se = s_f64(&k, 6);
        s->p_curtailed = s_f64(&k, 7);
        s->p_curtailed_se = s_f64(&k, 8);
        ptrs[i] = s;
        if ((*hit)->n_sites == 0) (*hit)->sites = &ptrs[i];
        (*hit)->n_sites++;
    }
    PQclear(res);
    free(idx);
    /* curtailment order within each statement: last in (highest position) first */
    for (size_t i = 0; k.rc == PCF_OK && i < n; i++)
        qsort(r->statements[i]->sites, r->statements[i]->n_sites, sizeof(Pcf__V1__ConstraintSite *), s_cmp_site);
    return k.rc;
}

static pcf_rc s_load_statements(PGconn *c, const char *id, publish_run *r, pcf_error *err)
{
    PGresult *res = s_query(c, s_sql_cs, id, err);
    if (!res) return PCF_ERR_DB;
    int n = PQntuples(res);
    s_cols k = {res, 0, "constraint_statement", err, PCF_OK};
    r->statements = s_alloc(r->arena, (size_t)n * sizeof *r->statements + 1);
    Pcf__V1__ConstraintStatement *st = s_alloc(r->arena, (size_t)n * sizeof *st + 1);
    if (!r->statements || !st) k.rc = pcf_error_set(err, PCF_ERR_NOMEM, "constraint_statement: out of memory");
    for (int i = 0; i < n && k.rc == PCF_OK; i++) {
        k.row = i;
        Pcf__V1__ConstraintStatement *s = &st[i];
        pcf__v1__constraint_statement__init(s);
        s->constraint_id = s_text(&k, r->arena, 0);
        s->sp = s_u32(&k, 1);
        s->sp_start_ms = s_i64(&k, 2);
        s->sp_length_ms = PUBLISH_SP_LENGTH_MS;
        s->limit_mw = s_f64(&k, 3);
        s->limit_kind = s_limit_kind(PQgetvalue(res, i, 4));
        s->season = s_season(PQgetvalue(res, i, 5));
        s->flow_intact = s_quantiles(&k, r->arena, 6, 24);
        s->n_flow_intact = 3;
        if (!PQgetisnull(res, i, 9)) {
            s->flow_worst_fault = s_quantiles(&k, r->arena, 9, 27);
            s->n_flow_worst_fault = 3;
            /* p50 of the fault flow may be NULL alone: the schema ties only p10 and p90 */
            if (PQgetisnull(res, i, 10) && s->flow_worst_fault) {
                s->flow_worst_fault[1] = s->flow_worst_fault[2];
                s->n_flow_worst_fault = 2;
            }
        }
        if (!s->flow_intact || (s->n_flow_worst_fault && !s->flow_worst_fault)) {
            k.rc = pcf_error_set(err, PCF_ERR_NOMEM, "constraint_statement: out of memory");
            break;
        }
        s->p_anm_acts = s_f64(&k, 12);
        s->p_anm_acts_se = s_f64(&k, 13);
        s->expected_curtailment_mwh = s_f64(&k, 14);
        s->expected_curtailment_mwh_se = s_f64(&k, 15);
        s->binding_fault_id = s_text(&k, r->arena, 16);
        s->binding_fault_description = s_text(&k, r->arena, 17);
        s->description = s_text(&k, r->arena, 18);
        s->voltage_kv = s_f64(&k, 19);
        s->kind = s_constraint_kind(PQgetvalue(res, i, 20));
        s->post_fault_limit_mw = s_f64(&k, 21);
        s->p_binding_fault = s_f64(&k, 22);
        s->p_binding_fault_se = s_f64(&k, 23);
        s->unit = strcmp(PQgetvalue(res, i, 30), "kV") == 0 ? PCF__V1__FLOW_UNIT__FLOW_UNIT_KV
                                                           : PCF__V1__FLOW_UNIT__FLOW_UNIT_MW;
        s->lower_limit = s_f64(&k, 31);
        s->vmax_pu = s_f64(&k, 32);
        s->vmin_pu = s_f64(&k, 33);
        s->monitored_bus = s_i64(&k, 34);
        s->samples = r->batch.samples;
        r->statements[i] = s;
    }
    if (k.rc == PCF_OK) r->n_statements = (size_t)n;
    PQclear(res);
    if (k.rc != PCF_OK) return k.rc;
    return s_load_sites(c, id, r, err);
}

/* Wire order of blocks: sp, constraint_id (bytes). */
static int s_cmp_block(const void *a, const void *b)
{
    const Pcf__V1__ConstraintBlock *x = *(Pcf__V1__ConstraintBlock *const *)a;
    const Pcf__V1__ConstraintBlock *y = *(Pcf__V1__ConstraintBlock *const *)b;
    if (x->sp != y->sp) return x->sp < y->sp ? -1 : 1;
    return strcmp(x->constraint_id, y->constraint_id);
}

static pcf_rc s_load_blocks(PGconn *c, const char *id, publish_run *r, pcf_error *err)
{
    Pcf__V1__ConstraintStatement **idx = s_stmt_index(r);
    if (!idx) return pcf_error_set(err, PCF_ERR_NOMEM, "constraint_block: out of memory");
    PGresult *res = s_query(c, s_sql_cb, id, err);
    if (!res) {
        free(idx);
        return PCF_ERR_DB;
    }
    int n = PQntuples(res);
    s_cols k = {res, 0, "constraint_block", err, PCF_OK};
    /* at most n blocks; levels share one pointer array */
    r->blocks = s_alloc(r->arena, (size_t)n * sizeof *r->blocks + 1);
    Pcf__V1__ConstraintBlock *bl = s_alloc(r->arena, (size_t)n * sizeof *bl + 1);
    Pcf__V1__BlockLevel *lv = s_alloc(r->arena, (size_t)n * sizeof *lv + 1);
    Pcf__V1__BlockLevel **lp = s_alloc(r->arena, (size_t)n * sizeof *lp + 1);
    if (!r->blocks || !bl || !lv || !lp) k.rc = pcf_error_set(err, PCF_ERR_NOMEM, "constraint_block: out of memory");
    size_t nb = 0;
    Pcf__V1__ConstraintBlock *cur = NULL;
    for (int i = 0; i < n && k.rc == PCF_OK; i++) {
        k.row = i;
        const char *cid = PQgetvalue(res, i, 0);
        uint32_t sp = s_u32(&k, 1);
        if (!cur || cur->sp != sp || strcmp(cur->constraint_id, cid) != 0) {
            Pcf__V1__ConstraintStatement key = PCF__V1__CONSTRAINT_STATEMENT__INIT, *kp = &key;
            key.constraint_id = PQgetvalue(res, i, 0);
            key.sp = sp;
            Pcf__V1__ConstraintStatement **st = bsearch(&kp, idx, r->n_statements, sizeof *idx, s_cmp_stmt);
            if (!st) {
                s_bad(&k, 0, "block without its statement");
                break;
            }
            cur = &bl[nb];
            pcf__v1__constraint_block__init(cur);
            cur->constraint_id = (*st)->constraint_id;
            cur->sp = sp;
            cur->sp_start_ms = (*st)->sp_start_ms;
            cur->sp_length_ms = PUBLISH_SP_LENGTH_MS;
            cur->limit_mw = (*st)->limit_mw;
            cur->unit = (*st)->unit;
            /* the local date of the SP: SP 1 starts at local midnight */
            sptime_civil day;
            sptime_to_local(sptime_london(), cur->sp_start_ms / 1000, &day);
            char bid[PUBLISH_ID_MAX + 32];
            snprintf(bid, sizeof bid, "%s/%04d-%02d-%02d/%u", cid, day.year, day.month, day.day, sp);
            cur->block_id = s_strdup(r->arena, bid);
            cur->levels = &lp[i];
            r->blocks[nb++] = cur;
        }
        Pcf__V1__BlockLevel *l = &lv[i];
        pcf__v1__block_level__init(l);
        l->confidence = s_f64(&k, 2);
        l->headroom_mw = s_f64(&k, 3);
        l->curtailment_mw = s_f64(&k, 4);
        l->curtailment_mwh = s_f64(&k, 5);
        l->headroom_mw_se = s_f64(&k, 6);
        l->curtailment_mw_se = s_f64(&k, 7);
        l->curtailment_mwh_se = s_f64(&k, 8);
        lp[i] = l;
        cur->n_levels++;
    }
    if (k.rc == PCF_OK) {
        r->n_blocks = nb;
        qsort(r->blocks, nb, sizeof *r->blocks, s_cmp_block);
    }
    PQclear(res);
    free(idx);
    return k.rc;
}

static pcf_rc s_load(PGconn *c, int64_t run_id, int what, publish_run **out, pcf_error *err)
{
    *out = NULL;
    publish_run *r = calloc(1, sizeof *r);
    if (!r || !(r->arena = calloc(1, sizeof *r->arena))) {
        free(r);
        return pcf_error_set(err, PCF_ERR_NOMEM, "run %lld: out of memory", (long long)run_id);
    }
    r->run_id = run_id;
    if (what & PUBLISH_RUN_BLOCKS) what |= PUBLISH_RUN_STATEMENTS;   /* blocks borrow from statements */
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)run_id);
    pcf_rc rc = s_send_all(c, id, what, err);
    PGresult *begin = rc == PCF_OK ? s_next(c, PGRES_COMMAND_OK, err) : NULL;
    if (rc == PCF_OK && !begin) rc = PCF_ERR_DB;
    PQclear(begin);
    if (rc == PCF_OK) rc = s_load_run(c, id, r, err);
    if (rc == PCF_OK && (what & PUBLISH_RUN_PCF)) rc = s_load_pcf(c, id, r, err);
    if (rc == PCF_OK && (what & PUBLISH_RUN_STATEMENTS)) rc = s_load_statements(c, id, r, err);
    if (rc == PCF_OK && (what & PUBLISH_RUN_BLOCKS)) rc = s_load_blocks(c, id, r, err);
    if (rc == PCF_OK) {
        PGresult *commit = s_next(c, PGRES_COMMAND_OK, err);
        if (!commit) rc = PCF_ERR_DB;
        PQclear(commit);
    }
    s_end_pipeline(c);
    if (rc != PCF_OK) {
        db_rollback(c);
        publish_run_destroy(&r);
        return rc;
    }
    *out = r;
    return PCF_OK;
}

pcf_rc publish_run_load(PGconn *c, int64_t run_id, int what, publish_run **out, pcf_error *err)
{
    pcf_error local;
    if (!err) err = &local;
    pcf_rc rc = s_load(c, run_id, what, out, err);
    if (rc == PCF_ERR_DB && strcmp(err->sqlstate, SQLSTATE_NO_SUCH_STATEMENT) == 0 && PQstatus(c) == CONNECTION_OK) {
        rc = s_prepare_all(c, err);
        if (rc == PCF_OK) rc = s_load(c, run_id, what, out, err);
    }
    return rc;
}

void publish_run_destroy(publish_run **r)
{
    if (!*r) return;
    s_arena_free(&(*r)->arena);
    free(*r);
    *r = NULL;
}

void publish_run_topic(const publish_run *r, int what, char *buf, size_t len)
{
    const char *prefix = "";
    if (what == PUBLISH_RUN_PCF) {
        if (r->kind == PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD) prefix = "pcf.da.";
        else if (r->kind == PCF__V1__RUN_KIND__RUN_KIND_REAL_TIME) prefix = "pcf.rt.";
    } else if (r->kind != PCF__V1__RUN_KIND__RUN_KIND_TRADE_CHECK) {
        prefix = what == PUBLISH_RUN_STATEMENTS ? "cs." : "cb.";
    }
    if (!*prefix) snprintf(buf, len, "%s", "");
    else snprintf(buf, len, "%s%s", prefix, r->zone);
}

int64_t publish_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
