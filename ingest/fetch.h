/*
 * fetch.h -- HTTP(S) GET with a bounded body, timeouts and retries (libcurl).
 *
 * One attempt, then up to `retries` more after a transport failure
 * (connect error, timeout, reset) or HTTP 429 / 5xx, waiting backoff_ms,
 * 2*backoff_ms, 4*backoff_ms...  Other HTTP errors (400, 404...) are not
 * retried: asking again will not help.  Each failed attempt is reported to
 * the log callback as one note (library code never prints).  An HTTP error
 * body of the form {"error": true, "reason": "..."} (Open-Meteo) has its
 * reason quoted in the message.  file:// URLs are accepted too (tests,
 * manual replays).
 *
 * The program must call curl_global_init() once before any thread uses this
 * module (pcf-ingest does it in main).
 */
#ifndef PCF_FETCH_H
#define PCF_FETCH_H

#include <stddef.h>

#include "error.h"
#include "note.h"

typedef struct fetch_opts {
    int timeout_seconds;    /* whole transfer, per attempt */
    int retries;            /* extra attempts after the first */
    int backoff_ms;         /* first wait; doubles */
    size_t max_bytes;       /* larger bodies are an error (PCF_ERR_LIMIT) */
} fetch_opts;

/* Each failed attempt is a note (note.h): msg "fetch attempt failed", the
 * error (its text starts with the URL), fields attempt, attempts and
 * retry (yes/no); warn while a retry follows, error for the last. */
typedef ingest_note_fn fetch_log_fn;

/* GETs url.  On PCF_OK *body (NUL-terminated, caller frees) holds *len
 * bytes.  PCF_ERR_NET after the last failed attempt, PCF_ERR_LIMIT for an
 * oversized body, PCF_ERR_NOMEM. */
pcf_rc fetch_url(const char *url, const fetch_opts *o, fetch_log_fn log, void *log_ctx,
                 char **body, size_t *len, pcf_error *err);

#endif
