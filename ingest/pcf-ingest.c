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
 *
 * Logs are logfmt lines (log.h, component=ingest); the daemon serves its
 * counters on [metrics] port (default 9464) for Prometheus: one registry,
 * fed from each pass's worker_result and from the worker's per-input
 * event hook (load durations).  The metric names are listed in
 * docs/operations.md.
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
#include "log.h"
#include "metrics.h"
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

/* Notes from the fetcher and the live feeds (note.h), as log lines with
 * the source's name (ctx). */
static void s_log(void *ctx, const ingest_note *n)
{
    const char *source = ctx;
    ingest_note_log(n, source ? "source" : NULL, source);
}

/* The daemon's metric families (docs/operations.md, "Monitoring"). */
typedef struct ingest_metrics {
    metric *rows, *quarantined, *inputs, *failures, *seconds, *reconnects, *connected;
} ingest_metrics;

static void s_metrics_init(metrics *m, ingest_metrics *im)
{
    static const double b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    im->rows = metrics_counter(m, "pcf_ingest_rows_total", "Rows stored (SCADA values, weather values, outages).",
                               "source,kind");
    im->quarantined = metrics_counter(m, "pcf_ingest_rows_quarantined_total",
                                      "Records refused and written to the quarantine.", "source,kind");
    im->inputs = metrics_counter(m, "pcf_ingest_inputs_total",
                                 "Inputs (files, fetched bodies, live batches) by outcome: loaded, already_loaded, "
                                 "refused.", "source,kind,outcome");
    im->failures = metrics_counter(m, "pcf_ingest_pass_failures_total",
                                   "Passes over a source that stopped on an error (database, I/O, fetch).",
                                   "source,kind");
    im->seconds = metrics_histogram(m, "pcf_ingest_load_seconds",
                                    "Time to load one input (file, fetched body, live batch with its group's COMMIT) into "
                                    "PostgreSQL.", b,
                                    sizeof b / sizeof b[0], "source,kind");
    im->reconnects = metrics_counter(m, "pcf_ingest_db_reconnects_total",
                                     "Database connections made after the first one.", NULL);
    im->connected = metrics_gauge(m, "pcf_ingest_db_connected", "1 while connected to PostgreSQL.", NULL);
    metrics_add_process(m);
}

static ingest_metrics g_im;             /* all NULL when metrics are off: updates are no-ops */

static void s_on_input(void *ctx, const worker_event *ev)
{
    (void)ctx;
    metric_observe(g_im.seconds, ev->seconds, ev->src->name, ingest_kind_name(ev->src->kind));
}

/* Counts one pass's (or one live poll's) results. */
static void s_count(const ingest_source *src, const worker_result *r, pcf_rc rc)
{
    const char *k = ingest_kind_name(src->kind);
    metric_add(g_im.rows, (double)r->rows, src->name, k);
    metric_add(g_im.quarantined, (double)r->quarantined, src->name, k);
    if (r->loaded) metric_add(g_im.inputs, (double)r->loaded, src->name, k, "loaded");
    if (r->already) metric_add(g_im.inputs, (double)r->already, src->name, k, "already_loaded");
    if (r->refused) metric_add(g_im.inputs, (double)r->refused, src->name, k, "refused");
    if (rc != PCF_OK && rc != PCF_ERR_PARSE && rc != PCF_ERR_INVALID && rc != PCF_ERR_LIMIT)
        metric_add(g_im.failures, 1, src->name, k);
}

static void s_usage(FILE *out)
{
    fputs("usage: pcf-ingest --config FILE [--metrics-port N] [--metrics-address A] [--log-level L]\n"
          "                                             run as a daemon (every source on its poll interval)\n"
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
          "  [metrics]         port = Prometheus endpoint GET /metrics (9464; 0: none), address (127.0.0.1)\n"
          "\n"
          "--log-level debug|info|warn|error (default PCF_LOG_LEVEL, else info); logs are logfmt on stderr.\n"
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
        pcf_log(PCF_LOG_ERROR, "no such source in the configuration", "source", name, NULL);
        return EXIT_USAGE;
    }
    pcf_error err;
    PGconn *c = db_connect(cfg->conninfo, &err);
    if (!c) {
        pcf_log_error(PCF_LOG_ERROR, "database unavailable", &err, NULL);
        return EXIT_FAIL;
    }
    worker_result res;
    pcf_rc rc = worker_run_source(c, src, s_log, (void *)src->name, &res, &err);
    PQfinish(c);
    if (rc != PCF_OK) {
        pcf_log_error(PCF_LOG_ERROR, "pass failed", &err, "source", src->name, NULL);
        return rc == PCF_ERR_DB || rc == PCF_ERR_IO || rc == PCF_ERR_NOMEM || rc == PCF_ERR_INTERNAL ? EXIT_FAIL
                                                                                                   : EXIT_REFUSED;
    }
    pcf_log(PCF_LOG_INFO, "pass done", "source", src->name, "loaded", PCF_LOG_I(res.loaded), "already_loaded",
            PCF_LOG_I(res.already), "refused", PCF_LOG_I(res.refused), "rows", PCF_LOG_I(res.rows), "quarantined",
            PCF_LOG_I(res.quarantined), NULL);
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
            pcf_rc rc = live_poll(feeds[i], c, (int)(200 / nlive) + 1, s_log, (void *)cfg->sources[i].name, &res,
                                  &err);
            s_count(&cfg->sources[i], &res, rc);
            if (rc != PCF_OK) {
                pcf_log_error(PCF_LOG_ERROR, "live feed failed", &err, "source", cfg->sources[i].name, NULL);
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
            pcf_log_error(PCF_LOG_ERROR, "cannot open live feed", &err, "source", cfg->sources[i].name, NULL);
            for (size_t k = 0; k < i; k++)
                live_destroy(&feeds[k]);
            return EXIT_FAIL;
        }
        live_set_source(feeds[i], src);     /* batches reach the load-time histogram */
    }
    PGconn *c = NULL;
    int backoff = 1, connects = 0;
    pcf_log(PCF_LOG_INFO, "starting", "sources", PCF_LOG_I(cfg->nsources), NULL);
    while (!g_stop) {
        if (!c) {
            pcf_error err;
            metric_set(g_im.connected, 0);
            c = db_connect(cfg->conninfo, &err);
            if (!c) {
                pcf_log_error(PCF_LOG_WARN, "database unavailable", &err, "retry_s", PCF_LOG_I(backoff), NULL);
                s_nap(backoff);
                backoff = backoff >= 30 ? 60 : backoff * 2;
                continue;
            }
            backoff = 1;
            if (connects++) metric_add(g_im.reconnects, 1);
            metric_set(g_im.connected, 1);
            pcf_log(PCF_LOG_INFO, "connected to the database", NULL);
        }
        time_t now = time(NULL), next = now + 60;
        for (size_t i = 0; i < cfg->nsources && c && !g_stop; i++) {
            const ingest_source *src = &cfg->sources[i];
            if (src->kind == INGEST_SCADA_ZMQ)
                continue;
            if (now >= due[i]) {
                worker_result res;
                pcf_error err;
                pcf_rc rc = worker_run_source(c, src, s_log, (void *)src->name, &res, &err);
                due[i] = time(NULL) + src->poll_seconds;
                s_count(src, &res, rc);
                if (rc != PCF_OK)
                    pcf_log_error(PCF_LOG_ERROR, "pass failed", &err, "source", src->name, NULL);
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
    pcf_log(PCF_LOG_INFO, "stopped", NULL);
    return 0;
}

int main(int argc, char **argv)
{
    const char *config = NULL, *source = NULL, *maddr = NULL;
    long mport = -1;
    int once = 0;
    pcf_log_init("ingest");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--metrics-port") == 0 && i + 1 < argc) {
            char *end;
            mport = strtol(argv[++i], &end, 10);
            if (*end || mport < 0 || mport > 65535) {
                pcf_log(PCF_LOG_ERROR, "--metrics-port must be 0..65535", "value", argv[i], NULL);
                return EXIT_USAGE;
            }
        } else if (strcmp(argv[i], "--metrics-address") == 0 && i + 1 < argc) {
            maddr = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            if (pcf_log_set_level_name(argv[++i]) != 0) {
                pcf_log(PCF_LOG_ERROR, "--log-level must be debug, info, warn or error", "value", argv[i], NULL);
                return EXIT_USAGE;
            }
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
        pcf_log_error(PCF_LOG_ERROR, "bad configuration", &err, NULL);
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        pcf_log(PCF_LOG_ERROR, "curl_global_init failed", NULL);
        return EXIT_FAIL;
    }
    /* metrics for the daemon only: `once` is over before anyone scrapes */
    metrics *m = NULL;
    metrics_http *http = NULL;
    int port = mport >= 0 ? (int)mport : cfg.metrics_port;
    if (!once && port > 0) {
        /* a taken port is logged, not fatal: loading data matters more
         * than its figures, and a restart under systemd would not free it */
        m = metrics_new();
        if (m) s_metrics_init(m, &g_im);
        else pcf_error_set(&err, PCF_ERR_NOMEM, "out of memory");
        http = m ? metrics_http_start(m, maddr ? maddr : cfg.metrics_address, port, &err) : NULL;
        if (http) {
            worker_set_event_hook(s_on_input, NULL);
            pcf_log(PCF_LOG_INFO, "serving metrics", "address", maddr ? maddr : cfg.metrics_address, "port",
                    PCF_LOG_I(metrics_http_port(http)), NULL);
        } else {
            pcf_log_error(PCF_LOG_ERROR, "cannot serve metrics; running without", &err, NULL);
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int rc = once ? s_once(&cfg, source) : s_daemon(&cfg);
    metrics_http_stop(&http);
    metrics_destroy(&m);
    curl_global_cleanup();
    return rc;
}
