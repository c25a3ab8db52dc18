/*
 * worker.h -- one pass of one configured source: what `pcf-ingest once`
 * does, and what the daemon repeats on each source's poll interval.
 *
 * File sources (scada, outage_json, outage_ukpn_csv) watch an inbox
 * directory.  Each regular file whose name does not start with '.' and does
 * not end in .tmp, .part or .errors is loaded (load.h), oldest name first
 * (sorted), and then:
 *   committed (or already committed before)  -> inbox/done/NAME
 *   refused (parse error, bad records under an all-or-nothing policy)
 *                                            -> inbox/failed/NAME
 * with NAME.errors beside it when anything was refused (the reasons, one
 * per line, as stored in the quarantine).  A file is moved only after its
 * transaction committed, so a crash at any point either leaves it in the
 * inbox (the next pass loads it, or finds it already loaded and just moves
 * it) or leaves it moved with its data committed.  Producers must write a
 * file under a temporary name and rename it into the inbox.
 * A database or I/O error stops the pass and leaves the file in the inbox.
 *
 * openmeteo sources GET the configured URL (fetch.h) and load the body
 * with issued_at = now.
 *
 * scada_zmq sources bind their PULL endpoint and load ScadaBatch messages
 * (live.h) for poll_seconds, then close the socket (the daemon keeps its
 * own socket open instead, see pcf-ingest.c).
 *
 * Each input's outcome is logged as a structured line (log.h) with the
 * source, kind, input and counts; a refusal keeps its file and line as
 * fields.  The log callback only receives the fetch retries' and the live
 * feeds' notes (note.h).
 */
#ifndef PCF_WORKER_H
#define PCF_WORKER_H

#include <libpq-fe.h>

#include "error.h"
#include "ingest_config.h"
#include "note.h"

/* Notes of the fetcher and the live feeds (note.h). */
typedef ingest_note_fn worker_log_fn;

typedef struct worker_result {
    long loaded;            /* inputs committed */
    long already;           /* inputs found already committed */
    long refused;           /* inputs refused (moved to failed/) */
    long rows;              /* rows stored */
    long quarantined;       /* records quarantined */
} worker_result;

/* One input dealt with (a file, a fetched body, a live batch), for
 * metrics: outcome is "loaded", "already_loaded" or "refused"; seconds is
 * the load's wall time (a live batch: its own load plus its group's
 * COMMIT). */
typedef struct worker_event {
    const ingest_source *src;
    const char *input;
    const char *outcome;
    long rows, quarantined;
    double seconds;
} worker_event;
typedef void (*worker_event_fn)(void *ctx, const worker_event *ev);

/* Sets the process's event hook (NULL: none).  Set once by the daemon's
 * main before the first pass; passes then call it after every input, and
 * live feeds after every batch settled (live_set_source). */
void worker_set_event_hook(worker_event_fn fn, void *ctx);

/* Tells the hook (if any) about one input. */
void worker_report(const worker_event *ev);

/* Runs one pass.  PCF_OK when every input was dealt with (including
 * refusals, counted in res); for an openmeteo source a refused body or a
 * failed fetch returns its error; PCF_ERR_DB / PCF_ERR_IO when the pass
 * had to stop (the caller reconnects and retries later). */
pcf_rc worker_run_source(PGconn *c, const ingest_source *src, worker_log_fn log, void *log_ctx,
                         worker_result *res, pcf_error *err);

#endif
