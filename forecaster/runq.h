/*
 * runq.h -- the run queue and the engine daemon (DESIGN.md section 7).
 *
 * Runs are rows of run_queue.  Anyone may ask for one (runq_request: the
 * ingest worker when fresh SCADA lands, a scheduler, an operator); at most
 * one pending job exists per zone, kind and date, so repeated requests
 * coalesce.  Engines claim jobs with SELECT ... FOR UPDATE SKIP LOCKED, so
 * several engine processes on several machines share the work without a
 * coordinator, and each job is run by exactly one of them.
 *
 * Job states (sql/003_results.sql run_queue.status):
 *
 *   queued --runq_claim--> claimed --run committed--> done
 *     ^                       |  \--run failed-------> failed
 *     |                       |
 *     +--heartbeat older than stale_s (engine died): claimable again
 *
 * While it runs a job, an engine refreshes heartbeat_at from a second
 * connection every RUNQ_HEARTBEAT_S; a job whose heartbeat is older than
 * stale_s is taken over by the next engine that asks.  The run itself is
 * one transaction (engine.c) that also marks the job done, and only if the
 * engine still holds it: a killed engine leaves neither a partial run nor a
 * done run with a claimed job, and an engine that was merely slow and lost
 * its job to a takeover discards its run, so every job is answered once.
 */
#ifndef PCF_RUNQ_H
#define PCF_RUNQ_H

#include <libpq-fe.h>
#include <signal.h>

#include "engine.h"
#include "error.h"
#include "metrics.h"

#define RUNQ_HEARTBEAT_S 2
#define RUNQ_DEFAULT_STALE_S 15
/* runq_request retries a request that lost a race with a concurrent one. */
#define RUNQ_REQUEST_ATTEMPTS 3
/* Steady SCADA keeps restarting the debounce; a real-time run is queued at
 * the latest this many debounce periods after the first unanswered NOTIFY. */
#define RUNQ_DEBOUNCE_MAX_FACTOR 5

/* Queues a run described by o (zone, kind, day-ahead date) and NOTIFYs
 * pcf_job; *job receives the new or the already pending job's id. */
pcf_rc runq_request(PGconn *c, const engine_opts *o, long long *job, pcf_error *err);

typedef struct runq_job {
    long long job_id;
    char zone[65];
    engine_kind kind;
    int year, month, day;        /* day-ahead */
} runq_job;

/* Claims the oldest ready job (of `zones`, a comma-separated list, or any
 * when NULL), or a job whose claimer's heartbeat is older than stale_s.
 * Returns PCF_OK with *got = 0 when there is nothing to do. */
pcf_rc runq_claim(PGconn *c, const char *worker, const char *zones, int stale_s, runq_job *job,
                  int *got, pcf_error *err);

/* Marks a job `worker` still holds done (with its run) or failed (with the
 * reason); a job taken over by another engine is left alone. */
pcf_rc runq_finish(PGconn *c, long long job_id, const char *worker, long long run_id, const char *error,
                   pcf_error *err);

typedef struct runq_daemon_opts {
    const char *conninfo;
    const char *zones;           /* comma-separated, NULL: every zone */
    const char *day_ahead_at;    /* "HH:MM" UK local time to queue tomorrow's run */
    long debounce_ms;            /* quiet time after SCADA before a real-time run
                                  * (at most RUNQ_DEBOUNCE_MAX_FACTOR times this
                                  * after the first notification) */
    const char *name;            /* worker id (default host:pid) */
    size_t samples;
    int threads, use_release;
    int ac;                      /* engine_opts.ac: STUDY_AC_OFF (default), _BAND or _ALL */
    double ac_band;              /* engine_opts.ac_band, a fraction */
    int stale_s;                 /* 0: RUNQ_DEFAULT_STALE_S */
    const char *version;
    volatile sig_atomic_t *stop; /* set by a signal handler to end the loop */
    metrics *metrics;            /* NULL: none; else the daemon registers pcf_forecaster_* here */
} runq_daemon_opts;

/* The engine daemon: LISTENs on pcf_scada and pcf_job, queues real-time
 * runs after fresh SCADA (debounced) and day-ahead runs daily, and runs
 * whatever it can claim.  Survives PostgreSQL restarts (reconnects with
 * backoff).  Returns when *stop is set.  Logs logfmt lines (log.h); with
 * o->metrics, counts runs started/completed/failed per kind, run and stage
 * durations, queue depth and reconnects (docs/operations.md). */
pcf_rc runq_daemon(const runq_daemon_opts *o, pcf_error *err);

#endif
