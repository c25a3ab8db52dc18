/*
 * pcf-ingest.c -- the ingest worker: loads SCADA, weather and outage feeds
 * into PostgreSQL.  A thin main over ingest_config, worker and load; see
 * docs/ingest.md and `pcf-ingest --help`.
 *
 * Daemon states: CONNECTING (retry with backoff 1 s doubling to 60 s) ->
 * RUNNING (each source when its poll interval is due) -> back to
 * CONNECTING on a database error (the input being loaded stays in its
 * inbox, nothing was committed) -> STOPPING on SIGTERM/SIGINT, after the
 * source in progress has finished.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "ingest_config.h"
#include "live.h"
#include "sptime.h"
#include "worker.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2
#define EXIT_FAIL 3

static volatile sig_atomic_t g_stop;    /* set by the signal handler only */

static void s_on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void s_log(void *ctx, const char *line)
{
    (void)ctx;
    char ts[SPTIME_ISO_LEN];
    sptime_format_utc((int64_t)time(NULL), ts, sizeof ts);
    fprintf(stderr, "%s pcf-ingest: %s\n", ts, line);
}

static void s_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_logf(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s_log(NULL, line);
}

static void s_usage(FILE *out)
{
    fputs("usage: pcf-ingest --config FILE              run as a daemon (every source on its poll interval)\n"
          "       pcf-ingest once --config FILE SOURCE  run one source once and exit (cron, tests)\n"
          "       pcf-ingest --help\n"
          "\n"
          "FILE is an INI file (example: deploy/pcf.conf):\n"
          "  [database]        conninfo = libpq connection string (empty: PGHOST, PGDATABASE... apply)\n"
          "  [source NAME]     kind = scada | outage_json | outage_ukpn_csv | openmeteo | scada_zmq\n"
          "                    directory = inbox of a file source (files move to done/ or failed/)\n"
          "                    url, locations, model = an openmeteo source\n"
          "                    endpoint = the PULL socket of a scada_zmq source (gateways PUSH\n"
          "                    pcf.v1.ScadaBatch; `once` listens for poll_seconds);\n"
          "                    curve_secret_key + curve_allowlist = CurveZMQ, listed gateways only\n"
          "                    poll_seconds (60), timeout_seconds (30), retries (3), backoff_ms (1000)\n"
          "\n"
          "File sources: every file in the inbox (not .*, *.tmp, *.part, *.errors) is loaded in one\n"
          "transaction, then moved to done/ or, when refused, to failed/; NAME.errors beside it lists\n"
          "the refused records.  SCADA files load whole or not at all; weather and outage inputs load\n"
          "their good records and quarantine the rest.  Loading the same input again changes nothing.\n"
          "After each commit the worker NOTIFYs pcf_scada, pcf_weather or pcf_outage (payload: batch id).\n"
          "\n"
          "Exit status (once): 0 done, 1 an input was refused or the fetch failed,\n"
          "2 usage or configuration error, 3 database or file-system error.\n"
          "Formats and policies: docs/ingest.md.\n",
          out);
}

static int s_once(const ingest_config *cfg, const char *name)
{
    const ingest_source *src = ingest_config_find(cfg, name);
    if (!src) {
        s_logf("no source named '%s' in the configuration", name);
        return EXIT_USAGE;
    }
    pcf_error err;
    PGconn *c = db_connect(cfg->conninfo, &err);
    if (!c) {
        s_logf("%s", err.msg);
        return EXIT_FAIL;
    }
    worker_result res;
    pcf_rc rc = worker_run_source(c, src, s_log, NULL, &res, &err);
    PQfinish(c);
    if (rc == PCF_ERR_DB || rc == PCF_ERR_IO || rc == PCF_ERR_NOMEM || rc == PCF_ERR_INTERNAL) {
        s_logf("%s: %s", src->name, err.msg);
        return EXIT_FAIL;
    }
    if (rc != PCF_OK) {
        s_logf("%s: %s", src->name, err.msg);
        return EXIT_REFUSED;
    }
    s_logf("%s: %ld loaded, %ld already loaded, %ld refused, %ld rows, %ld quarantined", src->name, res.loaded,
           res.already, res.refused, res.rows, res.quarantined);
    return res.refused > 0 ? EXIT_REFUSED : 0;
}

/* Sleeps up to `seconds`, waking early when a signal asks to stop. */
static void s_nap(int seconds)
{
    for (int i = 0; i < seconds * 10 && !g_stop; i++)
        usleep(100000);
}

/* Listens on the live sockets for about `seconds` (or sleeps when there are
 * none).  Returns PCF_ERR_DB when the database failed under a live load. */
static pcf_rc s_wait(live_feed **feeds, const ingest_config *cfg, PGconn *c, int seconds)
{
    size_t nlive = 0;
    for (size_t i = 0; i < cfg->nsources; i++)
        nlive += feeds[i] != NULL;
    if (nlive == 0) {
        s_nap(seconds);
        return PCF_OK;
    }
    time_t end = time(NULL) + seconds;
    do {
        for (size_t i = 0; i < cfg->nsources && !g_stop; i++) {
            if (!feeds[i])
                continue;
            worker_result res;
            pcf_error err;
            pcf_rc rc = live_poll(feeds[i], c, (int)(200 / nlive) + 1, s_log, NULL, &res, &err);
            if (rc != PCF_OK) {
                s_logf("%s: %s", cfg->sources[i].name, err.msg);
                if (rc == PCF_ERR_DB || PQstatus(c) != CONNECTION_OK)
                    return PCF_ERR_DB;
            }
        }
    } while (!g_stop && time(NULL) < end);
    return PCF_OK;
}

static int s_daemon(const ingest_config *cfg)
{
    time_t due[INGEST_MAX_SOURCES] = {0};
    live_feed *feeds[INGEST_MAX_SOURCES] = {0};
    for (size_t i = 0; i < cfg->nsources; i++) {
        if (cfg->sources[i].kind != INGEST_SCADA_ZMQ)
            continue;
        pcf_error err;
        const ingest_source *src = &cfg->sources[i];
        feeds[i] = src->curve_secret_key[0]
                   ? live_new_curve(src->endpoint, src->curve_secret_key, src->curve_allowlist, &err)
                   : live_new(src->endpoint, &err);
        if (!feeds[i]) {
            s_logf("%s: %s", cfg->sources[i].name, err.msg);
            for (size_t k = 0; k < i; k++)
                live_destroy(&feeds[k]);
            return EXIT_FAIL;
        }
    }
    PGconn *c = NULL;
    int backoff = 1;
    s_logf("starting with %zu source(s)", cfg->nsources);
    while (!g_stop) {
        if (!c) {
            pcf_error err;
            c = db_connect(cfg->conninfo, &err);
            if (!c) {
                s_logf("%s; retrying in %d s", err.msg, backoff);
                s_nap(backoff);
                backoff = backoff >= 30 ? 60 : backoff * 2;
                continue;
            }
            backoff = 1;
            s_logf("connected to the database");
        }
        time_t now = time(NULL), next = now + 60;
        for (size_t i = 0; i < cfg->nsources && c && !g_stop; i++) {
            const ingest_source *src = &cfg->sources[i];
            if (src->kind == INGEST_SCADA_ZMQ)
                continue;
            if (now >= due[i]) {
                worker_result res;
                pcf_error err;
                pcf_rc rc = worker_run_source(c, src, s_log, NULL, &res, &err);
                due[i] = time(NULL) + src->poll_seconds;
                if (rc != PCF_OK)
                    s_logf("%s: %s", src->name, err.msg);
                if (rc == PCF_ERR_DB || PQstatus(c) != CONNECTION_OK) {
                    PQfinish(c);
                    c = NULL;
                    due[i] = 0;         /* retry this source first after reconnecting */
                }
            }
            if (due[i] < next)
                next = due[i];
        }
        if (c && !g_stop) {
            long wait = (long)(next - time(NULL));
            if (s_wait(feeds, cfg, c, wait < 1 ? 1 : wait > 60 ? 60 : (int)wait) == PCF_ERR_DB) {
                PQfinish(c);
                c = NULL;
            }
        }
    }
    if (c)
        PQfinish(c);
    for (size_t i = 0; i < cfg->nsources; i++)
        live_destroy(&feeds[i]);
    s_logf("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *source = NULL;
    int once = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "once") == 0 && i == 1) {
            once = 1;
        } else if (once && !source && argv[i][0] != '-') {
            source = argv[i];
        } else {
            s_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!config || (once && !source)) {
        s_usage(stderr);
        return EXIT_USAGE;
    }
    static ingest_config cfg;           /* large: keep it off the stack */
    pcf_error err;
    if (ingest_config_load(config, &cfg, &err) != PCF_OK) {
        s_logf("%s", err.msg);
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        s_logf("curl_global_init failed");
        return EXIT_FAIL;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = once ? s_once(&cfg, source) : s_daemon(&cfg);
    curl_global_cleanup();
    return rc;
}
