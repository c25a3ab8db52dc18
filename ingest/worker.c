/*
 * worker.c -- inbox scanning, moving files after commit, .errors files, and
 * the Open-Meteo fetch-and-load step; the contract is in worker.h.
 *
 * Durability of the moves: the .errors file is written to a temporary name,
 * fsync'd and renamed; after renaming the input, the target directory is
 * fsync'd, so a crash cannot lose the move after reporting it.
 */
#include "worker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "live.h"
#include "load.h"
#include "log.h"
#include "openmeteo.h"

static worker_event_fn g_event;     /* set once by main, before any pass */
static void *g_event_ctx;

void worker_set_event_hook(worker_event_fn fn, void *ctx)
{
    g_event = fn;
    g_event_ctx = ctx;
}

void worker_report(const worker_event *ev)
{
    if (g_event)
        g_event(g_event_ctx, ev);
}

static double s_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Counts one input's outcome into res, logs it and tells the hook. */
static void s_outcome(const ingest_source *src, const char *input, const load_report *rep, const pcf_error *refusal,
                      double seconds, worker_result *res)
{
    const char *outcome = refusal ? "refused" : rep->already_loaded ? "already_loaded" : "loaded";
    if (refusal)
        res->refused++;
    else if (rep->already_loaded)
        res->already++;
    else
        res->loaded++;
    if (!refusal)
        res->rows += rep->stored;
    res->quarantined += rep->quarantined;
    if (refusal) {
        /* the first bad record's "file:line:" is what an operator opens;
         * the refusal's summary goes beside it */
        char file[256];
        long line;
        pcf_error first = {refusal->code, "", ""};
        snprintf(first.msg, sizeof first.msg, "%s", rep->first_error);
        int loc = pcf_error_location(first.msg, file, sizeof file, &line) != NULL;
        pcf_log_error(PCF_LOG_WARN, "input refused", loc ? &first : refusal, "source", src->name, "kind",
                      ingest_kind_name(src->kind), "input", input, "quarantined", PCF_LOG_I(rep->quarantined),
                      loc ? "refusal" : NULL, refusal->msg, NULL);
    } else
        pcf_log(PCF_LOG_INFO, rep->already_loaded ? "input already loaded" : "input loaded", "source", src->name,
                "kind", ingest_kind_name(src->kind), "input", input, "rows", PCF_LOG_I(rep->stored), "quarantined",
                PCF_LOG_I(rep->quarantined), "missing", PCF_LOG_I(rep->missing), "batch", PCF_LOG_I(rep->batch_id),
                "seconds", PCF_LOG_F(seconds), NULL);
    worker_event ev = {src, input, outcome, refusal ? 0 : rep->stored, rep->quarantined, seconds};
    worker_report(&ev);
}

static bool s_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool s_wanted(const struct dirent *d)
{
    const char *n = d->d_name;
    return n[0] != '.' && !s_ends_with(n, ".tmp") && !s_ends_with(n, ".part") && !s_ends_with(n, ".errors");
}

static int s_filter(const struct dirent *d)
{
    return s_wanted(d);
}

static pcf_rc s_mkdir(const char *path, pcf_error *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", path, strerror(errno));
    return PCF_OK;
}

static void s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Writes the quarantine reasons of a batch to path (via path.tmp). */
static pcf_rc s_write_errors(PGconn *c, long long batch_id, const char *first, const char *path, pcf_error *err)
{
    char tmp[1800];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", tmp, strerror(errno));
    char bid[32];
    snprintf(bid, sizeof bid, "%lld", batch_id);
    const char *p[1] = {bid};
    PGresult *r = batch_id ? PQexecParams(c, "SELECT source, line, field, reason FROM quarantine "
                                             "WHERE batch_id = $1 ORDER BY line, quarantine_id",
                                          1, NULL, p, NULL, NULL, 0) : NULL;
    if (r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        for (int i = 0; i < PQntuples(r); i++) {
            const char *field = PQgetvalue(r, i, 2);
            const char *reason = PQgetvalue(r, i, 3);
            /* Whole-input refusals already carry "source:line: ". */
            if (strcmp(PQgetvalue(r, i, 1), "0") == 0 && !*field)
                fprintf(f, "%s\n", reason);
            else
                fprintf(f, "%s:%s: %s%s%s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), field, *field ? ": " : "",
                        reason);
        }
    } else {
        fprintf(f, "%s\n", first);
    }
    PQclear(r);
    bool bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad = fclose(f) != 0 || bad;
    if (bad || rename(tmp, path) != 0)
        return pcf_error_set(err, PCF_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    return PCF_OK;
}

/* Moves dir/name into dir/sub/, writing dir/sub/name.errors when wanted. */
static pcf_rc s_move(PGconn *c, const char *dir, const char *name, const char *sub, const load_report *rep,
                     pcf_error *err)
{
    char from[1400], todir[1100], to[1500];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    snprintf(todir, sizeof todir, "%s/%s", dir, sub);
    pcf_rc rc = s_mkdir(todir, err);
    if (rc != PCF_OK)
        return rc;
    snprintf(to, sizeof to, "%s/%s", todir, name);
    struct stat st;
    if (stat(to, &st) == 0)         /* a name used again: keep both */
        snprintf(to, sizeof to, "%s/%s.%lld", todir, name, rep->batch_id ? rep->batch_id : (long long)time(NULL));
    if (rep->quarantined > 0) {
        char epath[1600];
        snprintf(epath, sizeof epath, "%s.errors", to);
        if ((rc = s_write_errors(c, rep->batch_id, rep->first_error, epath, err)) != PCF_OK)
            return rc;
    }
    if (rename(from, to) != 0)
        return pcf_error_set(err, PCF_ERR_IO, "rename %s -> %s: %s", from, to, strerror(errno));
    s_fsync_dir(todir);
    s_fsync_dir(dir);
    return PCF_OK;
}

static pcf_rc s_load_file(PGconn *c, const ingest_source *src, const char *path, const char *name,
                          load_report *rep, pcf_error *err)
{
    switch (src->kind) {
    case INGEST_SCADA:
        return load_scada_file(c, path, name, rep, err);
    case INGEST_OUTAGE_JSON:
        return load_outage_file(c, path, name, LOAD_OUTAGE_JSON, rep, err);
    case INGEST_OUTAGE_UKPN_CSV:
        return load_outage_file(c, path, name, LOAD_OUTAGE_UKPN_CSV, rep, err);
    case INGEST_OPENMETEO:
    case INGEST_SCADA_ZMQ:
        break;
    }
    return pcf_error_set(err, PCF_ERR_INTERNAL, "%s: not a file source", src->name);
}

static pcf_rc s_run_dir(PGconn *c, const ingest_source *src, worker_result *res, pcf_error *err)
{
    struct dirent **list = NULL;
    int n = scandir(src->directory, &list, s_filter, alphasort);
    if (n < 0)
        return pcf_error_set(err, PCF_ERR_IO, "%s: %s", src->directory, strerror(errno));
    pcf_rc rc = PCF_OK;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", src->directory, name);
        struct stat st;
        if (rc != PCF_OK || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        load_report rep;
        memset(&rep, 0, sizeof rep);
        pcf_error lerr;
        double t0 = s_now();
        pcf_rc lrc = s_load_file(c, src, path, name, &rep, &lerr);
        double took = s_now() - t0;
        if (lrc == PCF_OK) {
            s_outcome(src, name, &rep, NULL, took, res);
            rc = s_move(c, src->directory, name, "done", &rep, err);
        } else if (lrc == PCF_ERR_PARSE || lrc == PCF_ERR_INVALID || lrc == PCF_ERR_LIMIT) {
            s_outcome(src, name, &rep, &lerr, took, res);
            rc = s_move(c, src->directory, name, "failed", &rep, err);
        } else {
            *err = lerr;
            rc = lrc;
        }
    }
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
    return rc;
}

static pcf_rc s_run_openmeteo(PGconn *c, const ingest_source *src, worker_log_fn log, void *lctx,
                              worker_result *res, pcf_error *err)
{
    fetch_opts fo = {src->timeout_seconds, src->retries, src->backoff_ms, OPENMETEO_MAX_BYTES};
    char *body = NULL;
    size_t len = 0;
    pcf_rc rc = fetch_url(src->url, &fo, log, lctx, &body, &len, err);
    if (rc != PCF_OK)
        return rc;
    const char *ids[INGEST_MAX_LOCATIONS];
    for (size_t i = 0; i < src->nlocations; i++)
        ids[i] = src->locations[i];
    load_weather_opts wo = {ids, src->nlocations, src->model, (int64_t)time(NULL)};
    load_report rep;
    memset(&rep, 0, sizeof rep);
    double t0 = s_now();
    rc = load_weather(c, body, len, src->name, &wo, &rep, err);
    double took = s_now() - t0;
    free(body);
    if (rc == PCF_OK)
        s_outcome(src, src->name, &rep, NULL, took, res);
    else if (rc == PCF_ERR_PARSE || rc == PCF_ERR_INVALID || rc == PCF_ERR_LIMIT)
        s_outcome(src, src->name, &rep, err, took, res);
    return rc;
}

/* `once` for a live source: listen for poll_seconds, loading as batches come. */
static pcf_rc s_run_live(PGconn *c, const ingest_source *src, worker_log_fn log, void *lctx, worker_result *res,
                         pcf_error *err)
{
    live_feed *f = src->curve_secret_key[0]
                   ? live_new_curve(src->endpoint, src->curve_secret_key, src->curve_allowlist, err)
                   : live_new(src->endpoint, err);
    if (!f)
        return err->code;
    live_set_source(f, src);
    time_t end = time(NULL) + src->poll_seconds;
    pcf_rc rc = PCF_OK;
    while (rc == PCF_OK && time(NULL) < end) {
        worker_result r;
        rc = live_poll(f, c, 200, log, lctx, &r, err);
        res->loaded += r.loaded;
        res->already += r.already;
        res->refused += r.refused;
        res->rows += r.rows;
        res->quarantined += r.quarantined;
    }
    live_destroy(&f);
    return rc;
}

pcf_rc worker_run_source(PGconn *c, const ingest_source *src, worker_log_fn log, void *log_ctx,
                         worker_result *res, pcf_error *err)
{
    memset(res, 0, sizeof *res);
    if (src->kind == INGEST_OPENMETEO)
        return s_run_openmeteo(c, src, log, log_ctx, res, err);
    if (src->kind == INGEST_SCADA_ZMQ)
        return s_run_live(c, src, log, log_ctx, res, err);
    return s_run_dir(c, src, res, err);
}
