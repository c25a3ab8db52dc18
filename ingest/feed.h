/*
 * feed.h -- what the feed parsers hand to their callers when a record is
 * refused, and small helpers the parsers share.
 *
 * Parsers are pure: they read a FILE* or a buffer and call back for each
 * good record and each refused one.  A refused record (bad timestamp, NaN,
 * unknown unit...) goes to the reject callback with where it came from and
 * why, so the loader can quarantine it; only errors that make the rest of
 * the input meaningless (wrong header, malformed JSON, read error) end the
 * parse with an error code.
 */
#ifndef PCF_FEED_H
#define PCF_FEED_H

#include <stdbool.h>
#include <stddef.h>

#include "csv.h"
#include "error.h"

/* Longest raw text kept for a refused record (quarantine.raw allows 8192). */
#define FEED_RAW_MAX 1024

typedef struct feed_reject {
    long line;              /* physical line, 0 when not line-oriented */
    const char *field;      /* column or JSON key at fault, "" for the record */
    const char *reason;     /* why, one line */
    const char *raw;        /* the record as read (possibly cut), "" if unknown */
} feed_reject;

/* Called for each refused record; returning non-OK stops the parse. */
typedef pcf_rc (*feed_reject_fn)(void *ctx, const feed_reject *r, pcf_error *err);

/* Joins the current CSV record's fields with commas into buf (cut to n-1
 * bytes, always NUL-terminated). */
void feed_csv_raw(const csv_reader *r, char *buf, size_t n);

/* True when s[0..len) is a usable identifier: 1..max bytes, no control
 * characters (bytes < 0x20 or 0x7f). */
bool feed_id_ok(const char *s, size_t len, size_t max);

/* Calls reject with the given pieces; a convenience for parsers. */
pcf_rc feed_reject_call(feed_reject_fn fn, void *ctx, long line, const char *field,
                        const char *reason, const char *raw, pcf_error *err);

#endif
