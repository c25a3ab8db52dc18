/*
 * fetch.c -- bounded HTTP GET with retries; the contract is in fetch.h.
 *
 * Each attempt uses a fresh easy handle (no state carried between a failed
 * attempt and the next).  The body grows by doubling up to max_bytes; the
 * write callback returns 0 beyond that, which makes curl abort with
 * CURLE_WRITE_ERROR, reported as PCF_ERR_LIMIT.
 */
#include "fetch.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char *buf;
    size_t len, cap, max;
    bool over, nomem;
} s_body;

static size_t s_write(char *data, size_t size, size_t nmemb, void *user)
{
    s_body *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->max + 1) {
        b->over = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->buf, cap);
        if (!p) {
            b->nomem = true;
            return 0;
        }
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The "reason" of an Open-Meteo error body, or "" (copied into out). */
static void s_reason(const s_body *b, char *out, size_t n)
{
    out[0] = '\0';
    if (!b->buf || b->len == 0)
        return;
    json_t *j = json_loadb(b->buf, b->len, 0, NULL);
    const char *r = json_string_value(json_object_get(j, "reason"));
    if (r)
        snprintf(out, n, ": %.200s", r);
    json_decref(j);
}

/* One attempt.  Returns PCF_OK, or an error with *retry saying whether
 * another attempt may succeed. */
static pcf_rc s_attempt(const char *url, const fetch_opts *o, s_body *b, bool *retry, pcf_error *err)
{
    CURL *h = curl_easy_init();
    if (!h)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: curl_easy_init failed", url);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)o->timeout_seconds);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(o->timeout_seconds < 10 ? o->timeout_seconds : 10));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "pcf-ingest/1");
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    *retry = false;
    if (b->over)
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: body larger than %zu bytes", url, b->max);
    if (b->nomem)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", url);
    if (cc != CURLE_OK) {
        *retry = true;
        return pcf_error_set(err, PCF_ERR_NET, "%s: %s", url, cerr[0] ? cerr : curl_easy_strerror(cc));
    }
    if (status != 0 && status != 200) {
        char why[220];
        s_reason(b, why, sizeof why);
        *retry = status == 429 || status >= 500;
        return pcf_error_set(err, PCF_ERR_NET, "%s: HTTP %ld%s", url, status, why);
    }
    return PCF_OK;
}

pcf_rc fetch_url(const char *url, const fetch_opts *o, fetch_log_fn log, void *log_ctx,
                 char **body, size_t *len, pcf_error *err)
{
    long wait = o->backoff_ms;
    pcf_rc rc = PCF_ERR_NET;
    for (int k = 0; k <= o->retries; k++) {
        s_body b = {.max = o->max_bytes};
        bool retry = false;
        rc = s_attempt(url, o, &b, &retry, err);
        if (rc == PCF_OK) {
            if (!b.buf) {                   /* empty body: still a string */
                b.buf = calloc(1, 1);
                if (!b.buf)
                    return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", url);
            }
            *body = b.buf;
            *len = b.len;
            return PCF_OK;
        }
        free(b.buf);
        bool again = retry && k < o->retries;
        ingest_note_send(log, log_ctx, again ? PCF_LOG_WARN : PCF_LOG_ERROR, "fetch attempt failed", err, "attempt",
                         PCF_LOG_I(k + 1), "attempts", PCF_LOG_I(o->retries + 1), "retry", again ? "yes" : "no", NULL);
        if (!retry || k == o->retries)
            break;
        s_sleep_ms(wait);
        wait = wait > 300000 ? 600000 : wait * 2;
    }
    return rc;
}
