/*
 * runq.c -- the run queue and the engine daemon; see runq.h for the states.
 *
 * The daemon loop, one iteration:
 *   1. (re)connect if needed, with exponential backoff up to 30 s, and
 *      LISTEN pcf_scada, pcf_job;
 *   2. queue tomorrow's day-ahead runs once the local time has passed
 *      day_ahead_at and no run or pending job exists for them;
 *   3. if SCADA arrived and debounce_ms have passed since the last
 *      notification, or RUNQ_DEBOUNCE_MAX_FACTOR * debounce_ms since the
 *      first one not yet answered (a gateway sending every second would
 *      otherwise postpone real-time runs for ever), queue a real-time run
 *      for every zone served;
 *   4. claim and run jobs until none is ready;
 *   5. wait for a notification on the socket, at most one second.
 */
#include "runq.h"

#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "parse.h"
#include "sptime.h"

static const char *s_kind(engine_kind k) { return k == ENGINE_DAY_AHEAD ? "day_ahead" : "real_time"; }

/* One attempt at queuing: the pending job's id in *v, *transient set when
 * a retry may succeed (see runq_request). */
static pcf_rc s_request_once(PGconn *c, const char *const *p, long *v, int *transient, pcf_error *err)
{
    *transient = 0;
    /* Insert unless a job is pending; either way return the pending job. */
    PGresult *r = db_query(c,
        "WITH ins AS (INSERT INTO run_queue (zone_id, kind, target_date) VALUES ($1, $2, $3::date)"
        "  ON CONFLICT (zone_id, kind, coalesce(target_date, '-infinity'::date))"
        "  WHERE status IN ('queued', 'claimed') DO NOTHING RETURNING job_id)"
        " SELECT job_id FROM ins UNION ALL"
        " SELECT job_id FROM run_queue WHERE zone_id = $1 AND kind = $2"
        "   AND coalesce(target_date, '-infinity'::date) = coalesce($3::date, '-infinity'::date)"
        "   AND status IN ('queued', 'claimed') LIMIT 1", 3, p, err);
    pcf_rc rc = PCF_OK;
    if (!r) {
        *transient = strcmp(err->sqlstate, "23505") == 0 || strcmp(err->sqlstate, "40001") == 0;
        return PCF_ERR_DB;
    } else if (PQntuples(r) < 1) {
        /* A concurrent request inserted the job after this statement's
         * snapshot was taken: DO NOTHING, and the SELECT cannot see it. */
        *transient = 1;
        rc = pcf_error_set(err, PCF_ERR_INVALID, "queue: zone %s: no job queued (unknown zone?)", p[0]);
    } else if (parse_long(PQgetvalue(r, 0, 0), strlen(PQgetvalue(r, 0, 0)), v) != PCF_OK) {
        rc = pcf_error_set(err, PCF_ERR_DB, "queue: bad job id '%s'", PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return rc;
}

pcf_rc runq_request(PGconn *c, const engine_opts *o, long long *job, pcf_error *err)
{
    char date[16] = "";
    if (o->kind == ENGINE_DAY_AHEAD) snprintf(date, sizeof date, "%04d-%02d-%02d", o->year, o->month, o->day);
    const char *p[3] = { o->zone, o->kind == ENGINE_DAY_AHEAD ? "day_ahead" : "real_time", date[0] ? date : NULL };
    /* Concurrent requests for the same job race (the soak test found it:
     * two engines and the operator queuing at once): the loser's statement
     * sees neither its own insert nor the winner's row, or fails on the
     * unique index.  A fresh statement has a fresh snapshot and sees it. */
    long v = 0;
    int transient = 0;
    pcf_rc rc = PCF_ERR_DB;
    for (int attempt = 0; attempt < RUNQ_REQUEST_ATTEMPTS; attempt++) {
        rc = s_request_once(c, p, &v, &transient, err);
        if (rc == PCF_OK || !transient) break;
    }
    if (rc != PCF_OK) return rc;
    *job = v;
    char id[24];
    snprintf(id, sizeof id, "%ld", v);
    const char *np[1] = { id };
    PGresult *r = db_query(c, "SELECT pg_notify('pcf_job', $1)", 1, np, err);
    PQclear(r);
    return r ? PCF_OK : PCF_ERR_DB;
}

pcf_rc runq_claim(PGconn *c, const char *worker, const char *zones, int stale_s, runq_job *job,
                  int *got, pcf_error *err)
{
    *got = 0;
    char stale[16];
    snprintf(stale, sizeof stale, "%d", stale_s > 0 ? stale_s : RUNQ_DEFAULT_STALE_S);
    const char *p[3] = { worker, zones, stale };
    PGresult *r = db_query(c,
        "UPDATE run_queue SET status = 'claimed', claimed_by = $1, claimed_at = now(), heartbeat_at = now(),"
        "       attempts = attempts + 1"
        " WHERE job_id = (SELECT job_id FROM run_queue"
        "   WHERE ((status = 'queued' AND not_before <= now())"
        "       OR (status = 'claimed' AND heartbeat_at < now() - make_interval(secs => $3::int)))"
        "     AND ($2::text IS NULL OR zone_id = ANY (string_to_array($2, ',')))"
        "   ORDER BY requested_at, job_id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING job_id, zone_id, kind, coalesce(target_date::text, '')", 3, p, err);
    if (!r) return PCF_ERR_DB;
    pcf_rc rc = PCF_OK;
    if (PQntuples(r) == 1) {
        long id;
        const char *v = PQgetvalue(r, 0, 0);
        memset(job, 0, sizeof *job);
        if (parse_long(v, strlen(v), &id) != PCF_OK) rc = pcf_error_set(err, PCF_ERR_DB, "claim: bad job id");
        job->job_id = id;
        snprintf(job->zone, sizeof job->zone, "%s", PQgetvalue(r, 0, 1));
        job->kind = strcmp(PQgetvalue(r, 0, 2), "day_ahead") == 0 ? ENGINE_DAY_AHEAD : ENGINE_REAL_TIME;
        const char *d = PQgetvalue(r, 0, 3);
        if (job->kind == ENGINE_DAY_AHEAD && sscanf(d, "%4d-%2d-%2d", &job->year, &job->month, &job->day) != 3)
            rc = pcf_error_set(err, PCF_ERR_DB, "claim: bad date '%s'", d);
        *got = rc == PCF_OK;
    }
    PQclear(r);
    return rc;
}

pcf_rc runq_finish(PGconn *c, long long job_id, const char *worker, long long run_id, const char *error,
                   pcf_error *err)
{
    char id[24], run[24];
    snprintf(id, sizeof id, "%lld", job_id);
    snprintf(run, sizeof run, "%lld", run_id);
    const char *p[4] = { id, error ? NULL : run, error, worker };
    /* Only a job still claimed is finished here: one marked done by its
     * run's transaction, or taken over, is left alone. */
    PGresult *r = db_query(c,
        "UPDATE run_queue SET status = CASE WHEN $3::text IS NULL THEN 'done' ELSE 'failed' END,"
        " run_id = $2::bigint, error = $3, finished_at = now()"
        " WHERE job_id = $1::bigint AND status = 'claimed' AND claimed_by = $4",
        4, p, err);
    PQclear(r);
    return r ? PCF_OK : PCF_ERR_DB;
}

/* ---- heartbeat ------------------------------------------------------------ */

typedef struct heartbeat {
    const char *conninfo;
    long long job_id;
    atomic_int stop;
    pthread_t tid;
    int running;
} heartbeat;

static void *s_heartbeat(void *arg)
{
    heartbeat *h = arg;
    pcf_error err;
    PGconn *c = db_connect(h->conninfo, &err);
    char id[24];
    snprintf(id, sizeof id, "%lld", h->job_id);
    const char *p[1] = { id };
    while (!atomic_load(&h->stop)) {
        for (int i = 0; i < RUNQ_HEARTBEAT_S * 10 && !atomic_load(&h->stop); i++) usleep(100000);
        if (atomic_load(&h->stop)) break;
        if (!c || PQstatus(c) != CONNECTION_OK) {
            if (c) PQfinish(c);
            c = db_connect(h->conninfo, &err);
            continue;
        }
        PQclear(db_query(c, "UPDATE run_queue SET heartbeat_at = now() WHERE job_id = $1::bigint", 1, p, &err));
    }
    if (c) PQfinish(c);
    return NULL;
}

/* ---- metrics hooks ------------------------------------------------------------ */

/* The daemon's families; all NULL without a registry (updates are no-ops). */
typedef struct runq_metrics {
    metric *started, *completed, *failed, *seconds, *stage, *depth, *reconnects, *queued;
} runq_metrics;

static void s_metrics_init(runq_metrics *rm, metrics *m)
{
    memset(rm, 0, sizeof *rm);
    if (!m) return;
    static const double run_b[] = {0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800};
    static const double stage_b[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
    rm->started = metrics_counter(m, "pcf_forecaster_runs_started_total", "Jobs claimed and started.", "kind");
    rm->completed = metrics_counter(m, "pcf_forecaster_runs_completed_total", "Runs committed.", "kind");
    rm->failed = metrics_counter(m, "pcf_forecaster_runs_failed_total",
                                 "Runs that failed (reason=error: job marked failed; reason=interrupted: database "
                                 "lost, the job is taken over).", "kind,reason");
    rm->seconds = metrics_histogram(m, "pcf_forecaster_run_seconds", "Wall time of a committed run.", run_b,
                                    sizeof run_b / sizeof run_b[0], "kind");
    rm->stage = metrics_histogram(m, "pcf_forecaster_stage_seconds",
                                  "Wall time of a committed run's stages (load, forecast, study, write).", stage_b,
                                  sizeof stage_b / sizeof stage_b[0], "kind,stage");
    rm->depth = metrics_gauge(m, "pcf_forecaster_queue_depth",
                              "Jobs queued and ready for the zones this daemon serves.", NULL);
    rm->queued = metrics_counter(m, "pcf_forecaster_jobs_queued_total",
                                 "Jobs this daemon queued (after fresh SCADA, or the daily day-ahead).", "kind");
    rm->reconnects = metrics_counter(m, "pcf_forecaster_db_reconnects_total",
                                     "Database connections made after the first one.", NULL);
}

static void s_metrics_run(const runq_metrics *rm, engine_kind kind, pcf_rc rc, int interrupted,
                          const engine_report *rep)
{
    const char *k = s_kind(kind);
    if (rc != PCF_OK) {
        metric_add(rm->failed, 1, k, interrupted ? "interrupted" : "error");
        return;
    }
    metric_add(rm->completed, 1, k);
    metric_observe(rm->seconds, rep->t_total, k);
    metric_observe(rm->stage, rep->t_load, k, "load");
    metric_observe(rm->stage, rep->t_forecast, k, "forecast");
    metric_observe(rm->stage, rep->t_study, k, "study");
    metric_observe(rm->stage, rep->t_write, k, "write");
}

/* ---- the daemon --------------------------------------------------------------- */

typedef struct daemon_state {
    const runq_daemon_opts *o;
    PGconn *c;
    char worker[128];
    int backoff_s;
    int scada_pending;
    struct timespec first_scada; /* first notification since the last real-time queuing */
    struct timespec last_scada;
    char da_done_for[16];        /* local date whose day-ahead runs are queued */
    runq_metrics m;
    int connects;
    engine_cache *cache;         /* inputs kept from run to run (engine_cache.h) */
} daemon_state;

static double s_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) * 1e-9;
}

static int s_connect(daemon_state *d)
{
    pcf_error err;
    if (d->c && PQstatus(d->c) == CONNECTION_OK) return 1;
    if (d->c) {
        PQfinish(d->c);
        d->c = NULL;
    }
    d->c = db_connect(d->o->conninfo, &err);
    if (d->c && db_exec(d->c, "LISTEN pcf_scada; LISTEN pcf_job", &err) == PCF_OK) {
        pcf_log(PCF_LOG_INFO, "connected", "worker", d->worker, NULL);
        if (d->connects++) metric_add(d->m.reconnects, 1);
        d->backoff_s = 0;
        d->da_done_for[0] = '\0';
        return 1;
    }
    pcf_log_error(PCF_LOG_WARN, "database unavailable", &err, "retry_s", PCF_LOG_I(d->backoff_s ? d->backoff_s : 1),
                  NULL);
    if (d->c) PQfinish(d->c);
    d->c = NULL;
    int wait = d->backoff_s ? d->backoff_s : 1;
    for (int i = 0; i < wait * 10 && !*d->o->stop; i++) usleep(100000);
    d->backoff_s = wait * 2 > 30 ? 30 : wait * 2;
    return 0;
}

/* ---- queue depth, when scraped ------------------------------------------------ */

/* The queue depth is a count(*) over run_queue: worth running only when
 * someone scrapes, so a render hook (metrics.h) computes it, at most once
 * per RUNQ_DEPTH_MIN_S however many scrapers, and not in the daemon's loop.
 * On its own connection, opened at the first scrape: the daemon's is busy
 * in runs for minutes -- when a backlog builds up and the figure matters
 * most -- and a libpq connection is not shared between threads.  Hooks of
 * one registry run one at a time (metrics.c), so this needs no lock.  When
 * the database is unreachable the gauge keeps its last value. */
#define RUNQ_DEPTH_MIN_S 5.0

typedef struct runq_depth {
    const char *conninfo, *zones;
    metric *gauge;
    PGconn *c;
    struct timespec last;        /* when the last attempt ended */
    int tried;
} runq_depth;

static void s_depth_collect(void *ctx)
{
    runq_depth *q = ctx;
    if (q->tried && s_since(&q->last) < RUNQ_DEPTH_MIN_S) return;
    pcf_error err;
    if (q->c && PQstatus(q->c) != CONNECTION_OK) {
        PQfinish(q->c);
        q->c = NULL;
    }
    if (!q->c && (q->c = db_connect(q->conninfo, &err)) != NULL &&
        db_exec(q->c, "SET statement_timeout = '5s'", &err) != PCF_OK) {
        PQfinish(q->c);
        q->c = NULL;
    }
    const char *p[1] = { q->zones };
    PGresult *r = q->c ? db_query(q->c, "SELECT count(*) FROM run_queue WHERE status = 'queued'"
                                        " AND not_before <= now()"
                                        " AND ($1::text IS NULL OR zone_id = ANY (string_to_array($1, ',')))",
                                  1, p, &err) : NULL;
    if (r && PQntuples(r) == 1) metric_set(q->gauge, atof(PQgetvalue(r, 0, 0)));
    else pcf_log_error(PCF_LOG_DEBUG, "queue depth not measured", &err, NULL);
    PQclear(r);
    /* from the end of the attempt: a slow connect does not make the next
     * scrape query again at once */
    clock_gettime(CLOCK_MONOTONIC, &q->last);
    q->tried = 1;
}

/* Zones this daemon serves. */
static PGresult *s_zones(daemon_state *d, pcf_error *err)
{
    const char *p[1] = { d->o->zones };
    return db_query(d->c, "SELECT zone_id FROM zone WHERE $1::text IS NULL OR zone_id = ANY (string_to_array($1, ','))"
                          " ORDER BY zone_id", 1, p, err);
}

static void s_queue_all(daemon_state *d, engine_kind kind, const sptime_civil *day)
{
    pcf_error err;
    PGresult *z = s_zones(d, &err);
    if (!z) {
        pcf_log_error(PCF_LOG_ERROR, "listing zones", &err, NULL);
        return;
    }
    for (int i = 0; i < PQntuples(z); i++) {
        engine_opts o;
        memset(&o, 0, sizeof o);
        o.zone = PQgetvalue(z, i, 0);
        o.kind = kind;
        if (day) {
            o.year = day->year;
            o.month = day->month;
            o.day = day->day;
            char date[16];
            snprintf(date, sizeof date, "%04d-%02d-%02d", day->year, day->month, day->day);
            const char *p[2] = { o.zone, date };
            PGresult *r = db_query(d->c, "SELECT 1 FROM run WHERE zone_id = $1 AND kind = 'day_ahead'"
                                         " AND target_date = $2::date LIMIT 1", 2, p, &err);
            int have = r && PQntuples(r) > 0;
            PQclear(r);
            if (have) continue;
        }
        long long job;
        if (runq_request(d->c, &o, &job, &err) != PCF_OK) {
            pcf_log_error(PCF_LOG_ERROR, "queue run", &err, "zone", o.zone, NULL);
        } else {
            metric_add(d->m.queued, 1, s_kind(kind));
            pcf_log(PCF_LOG_INFO, "queued", "zone", o.zone, "kind", s_kind(kind), "job", PCF_LOG_I(job), NULL);
        }
    }
    PQclear(z);
}

static void s_schedule_day_ahead(daemon_state *d)
{
    int hh = 10, mm = 0;
    if (d->o->day_ahead_at && sscanf(d->o->day_ahead_at, "%2d:%2d", &hh, &mm) != 2) hh = 10, mm = 0;
    int64_t now = (int64_t)time(NULL);
    sptime_civil local;
    sptime_to_local(sptime_london(), now, &local);
    if (local.hour * 60 + local.min < hh * 60 + mm) return;
    sptime_civil tomorrow;
    sptime_to_civil(sptime_from_civil(&(sptime_civil){ local.year, local.month, local.day, 12, 0, 0 }) + 86400,
                    &tomorrow);
    char key[16];
    snprintf(key, sizeof key, "%04d-%02d-%02d", tomorrow.year, tomorrow.month, tomorrow.day);
    if (strcmp(key, d->da_done_for) == 0) return;
    s_queue_all(d, ENGINE_DAY_AHEAD, &tomorrow);
    snprintf(d->da_done_for, sizeof d->da_done_for, "%s", key);
}

static void s_run_job(daemon_state *d, const runq_job *job)
{
    const runq_daemon_opts *o = d->o;
    heartbeat hb = { o->conninfo, job->job_id, 0, 0, 0 };
    hb.running = pthread_create(&hb.tid, NULL, s_heartbeat, &hb) == 0;
    engine_opts eo;
    anm_options anm;
    memset(&eo, 0, sizeof eo);
    anm_options_default(&anm);
    anm.use_release = o->use_release;
    eo.zone = job->zone;
    eo.kind = job->kind;
    eo.year = job->year;
    eo.month = job->month;
    eo.day = job->day;
    eo.samples = o->samples;
    eo.threads = o->threads;
    eo.anm = &anm;
    eo.ac = o->ac;
    eo.ac_band = o->ac_band;
    eo.version = o->version;
    eo.job_id = job->job_id;        /* done in the run's own transaction */
    eo.worker = d->worker;
    eo.cache = d->cache;
    engine_report rep;
    pcf_error err;
    pcf_rc rc = engine_run(d->c, &eo, &rep, &err);
    atomic_store(&hb.stop, 1);
    if (hb.running) pthread_join(hb.tid, NULL);
    pcf_error e2;
    int interrupted = rc != PCF_OK && PQstatus(d->c) != CONNECTION_OK;
    s_metrics_run(&d->m, job->kind, rc, interrupted, &rep);
    if (rc == PCF_OK) {
        pcf_log(PCF_LOG_INFO, "run committed", "job", PCF_LOG_I(job->job_id), "run", PCF_LOG_I(rep.run_id), "zone",
                job->zone, "kind", s_kind(job->kind), "sps", PCF_LOG_I(rep.sp_count), "samples",
                PCF_LOG_I(rep.samples), "load_s", PCF_LOG_F(rep.t_load), "forecast_s", PCF_LOG_F(rep.t_forecast),
                "study_s", PCF_LOG_F(rep.t_study), "write_s", PCF_LOG_F(rep.t_write), "total_s",
                PCF_LOG_F(rep.t_total), NULL);
    } else if (interrupted) {
        /* the database went away: the job stays claimed and is taken over */
        pcf_log_error(PCF_LOG_WARN, "run interrupted", &err, "job", PCF_LOG_I(job->job_id), NULL);
    } else {
        pcf_log_error(PCF_LOG_ERROR, "run failed", &err, "job", PCF_LOG_I(job->job_id), "zone", job->zone, NULL);
        if (runq_finish(d->c, job->job_id, d->worker, 0, err.msg, &e2) != PCF_OK)
            pcf_log_error(PCF_LOG_ERROR, "finishing job", &e2, "job", PCF_LOG_I(job->job_id), NULL);
    }
}

static void s_drain_notifications(daemon_state *d)
{
    PQconsumeInput(d->c);
    PGnotify *n;
    while ((n = PQnotifies(d->c)) != NULL) {
        if (strcmp(n->relname, "pcf_scada") == 0) {
            clock_gettime(CLOCK_MONOTONIC, &d->last_scada);
            if (!d->scada_pending) d->first_scada = d->last_scada;
            d->scada_pending = 1;
        }
        PQfreemem(n);
    }
}

pcf_rc runq_daemon(const runq_daemon_opts *o, pcf_error *err)
{
    daemon_state d;
    memset(&d, 0, sizeof d);
    d.o = o;
    if (o->name) snprintf(d.worker, sizeof d.worker, "%s", o->name);
    else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(d.worker, sizeof d.worker, "%s:%d", host, (int)getpid());
    }
    if (engine_cache_new(&d.cache, err) != PCF_OK) return err->code;
    s_metrics_init(&d.m, o->metrics);
    runq_depth depth = { o->conninfo, o->zones, d.m.depth, NULL, { 0, 0 }, 0 };
    if (o->metrics && d.m.depth) metrics_on_render(o->metrics, s_depth_collect, &depth);
    pcf_log(PCF_LOG_INFO, "daemon starting", "worker", d.worker, "zones", o->zones ? o->zones : "*", "day_ahead_at",
            o->day_ahead_at ? o->day_ahead_at : "10:00", NULL);
    while (!*o->stop) {
        if (!s_connect(&d)) continue;
        s_drain_notifications(&d);
        s_schedule_day_ahead(&d);
        if (d.scada_pending && (s_since(&d.last_scada) * 1000.0 >= (double)o->debounce_ms ||
                                s_since(&d.first_scada) * 1000.0 >= (double)o->debounce_ms * RUNQ_DEBOUNCE_MAX_FACTOR)) {
            d.scada_pending = 0;
            s_queue_all(&d, ENGINE_REAL_TIME, NULL);
        }
        for (;;) {
            runq_job job;
            int got = 0;
            if (*o->stop || runq_claim(d.c, d.worker, o->zones, o->stale_s, &job, &got, err) != PCF_OK || !got) break;
            metric_add(d.m.started, 1, s_kind(job.kind));
            pcf_log(PCF_LOG_INFO, "claimed", "job", PCF_LOG_I(job.job_id), "zone", job.zone, "kind", s_kind(job.kind),
                    NULL);
            s_run_job(&d, &job);
            s_drain_notifications(&d);
        }
        if (PQstatus(d.c) != CONNECTION_OK) continue;
        struct pollfd pfd = { PQsocket(d.c), POLLIN, 0 };
        if (pfd.fd >= 0 && poll(&pfd, 1, 1000) < 0 && errno != EINTR) break;
    }
    pcf_log(PCF_LOG_INFO, "daemon stopping", "worker", d.worker, NULL);
    if (o->metrics && d.m.depth) metrics_off_render(o->metrics, s_depth_collect, &depth);
    if (depth.c) PQfinish(depth.c);
    if (d.c) PQfinish(d.c);
    engine_cache_destroy(&d.cache);
    pcf_error_clear(err);
    return PCF_OK;
}
