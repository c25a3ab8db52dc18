/*
 * metrics.h -- counters, gauges and histograms, rendered in Prometheus'
 * text exposition format 0.0.4 and served over HTTP on GET /metrics.
 *
 * A registry holds metric families in registration order.  A family has a
 * name, a help text, a type and 0..METRICS_MAX_LABELS label names; each
 * distinct tuple of label values is one series, created on first use:
 *
 *   metrics *m = metrics_new();
 *   metric *rows = metrics_counter(m, "pcf_ingest_rows_total", "Rows stored.", "source");
 *   metric_add(rows, 12, "historian");
 *   static const double b[] = {0.01, 0.1, 1, 10};
 *   metric *dur = metrics_histogram(m, "pcf_ingest_load_seconds", "Load time.", b, 4, "source");
 *   metric_observe(dur, 0.25, "historian");
 *
 * Label values are passed as exactly as many const char * arguments as the
 * family has label names (names are given as one comma-separated string,
 * NULL or "" for none).  A family without labels has its one series from
 * the start, so it renders 0 before anything happened.  Histograms use the
 * fixed upper bounds given (ascending, +Inf is implicit).
 *
 * Rendering follows the format exactly: "# HELP" (with \\ and \n escaped)
 * and "# TYPE" lines, label values with \\, \" and \n escaped, histogram
 * _bucket{le=...} (cumulative), _sum and _count series; numbers in the
 * shortest form that reads back to the same double, +Inf/-Inf/NaN spelt as
 * Prometheus wants.
 *
 * Thread safety: one mutex per registry guards every update and render;
 * updates are a few hundred per second at most, so contention does not
 * matter.  metric pointers stay valid until metrics_destroy.
 *
 * metrics_add_process() adds the standard process_* metrics (resident and
 * virtual memory, CPU seconds, start time, open file descriptors), read
 * from /proc at each render; metrics_on_render() lets a daemon do the
 * same for its own figures.
 *
 * metrics_http_start() serves a registry with libmicrohttpd on its own
 * thread: GET /metrics gives the text, every other path 404, other methods
 * 405.  It binds to 127.0.0.1 unless given another address, since the
 * figures are for a local scraper (or a reverse proxy), not the world.
 */
#ifndef PCF_METRICS_H
#define PCF_METRICS_H

#include <stddef.h>

#include "error.h"

#define METRICS_MAX_LABELS 4
#define METRICS_MAX_BUCKETS 32

typedef struct metrics metrics;
typedef struct metric metric;
typedef struct metrics_http metrics_http;

metrics *metrics_new(void);
void metrics_destroy(metrics **m);

/* Registering: name must match [a-zA-Z_:][a-zA-Z0-9_:]*, labels
 * [a-zA-Z_][a-zA-Z0-9_]*; returns NULL on a bad name, too many labels or
 * buckets, a duplicate name, or no memory (a programming error: callers
 * register fixed families at start-up). */
metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels);
metric *metrics_histogram(metrics *m, const char *name, const char *help, const double *bounds, size_t nbounds,
                          const char *labels);

/* Updates (a NULL metric is ignored, so optional metrics need no checks):
 * add to a counter (v >= 0) or gauge; set a gauge; observe into a
 * histogram.  Then the label values. */
void metric_add(metric *mt, double v, ...);
void metric_set(metric *mt, double v, ...);
void metric_observe(metric *mt, double v, ...);

/* The current value of a counter/gauge series (0 when it does not exist);
 * for tests and for logging totals. */
double metric_value(metric *mt, ...);

/* Renders the registry; returns a malloc'd NUL-terminated string (caller
 * frees) and its length in *len, or NULL when out of memory. */
char *metrics_render(metrics *m, size_t *len);

/* Adds process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_cpu_seconds_total, process_start_time_seconds, process_open_fds
 * and process_max_fds, refreshed at every render.  Returns 0 or -1. */
int metrics_add_process(metrics *m);

/* Render hooks: fn(ctx) runs at the start of every render, before the text
 * is built and outside the registry's lock (so it may set metrics), for a
 * figure that costs something to compute (a database query) and is only
 * worth computing when someone scrapes.  At most METRICS_MAX_HOOKS; returns
 * 0, or -1 when full.  metrics_off_render removes the pair, waiting for a
 * render running it to finish, so ctx may be freed afterwards. */
#define METRICS_MAX_HOOKS 4
typedef void (*metrics_hook_fn)(void *ctx);
int metrics_on_render(metrics *m, metrics_hook_fn fn, void *ctx);
void metrics_off_render(metrics *m, metrics_hook_fn fn, void *ctx);

/* Serves m on address:port (address NULL: 127.0.0.1; port 0: an ephemeral
 * port, see metrics_http_port).  PCF_ERR_NET when it cannot bind. */
metrics_http *metrics_http_start(metrics *m, const char *address, int port, pcf_error *err);
int metrics_http_port(const metrics_http *h);
void metrics_http_stop(metrics_http **h);

#endif
