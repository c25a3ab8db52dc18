/*
 * note.h -- what the fetcher and the live feed have to tell an operator, as
 * structured events: a constant phrase and key=value fields (log.h's
 * logfmt), so a log search can filter on gateway=... or sqlstate=...
 * instead of parsing sentences.
 *
 * Library code does not print (error.h): a note goes to the caller's
 * callback, which logs it (pcf-ingest.c adds the source's name with
 * ingest_note_log) or, in tests, looks at it.  A note and the strings it
 * points to live only for the duration of the callback.
 */
#ifndef PCF_NOTE_H
#define PCF_NOTE_H

#include "error.h"
#include "log.h"

#define INGEST_NOTE_FIELDS 8

typedef struct ingest_note {
    pcf_log_level level;
    const char *msg;                            /* a constant phrase */
    const pcf_error *err;                       /* the error the note is about, or NULL */
    const char *kv[2 * INGEST_NOTE_FIELDS + 1]; /* key, value, ..., NULL */
} ingest_note;

typedef void (*ingest_note_fn)(void *ctx, const ingest_note *n);

/* Hands fn a note of msg, err and the (key, value, ..., NULL) fields;
 * nothing when fn is NULL.  Pairs beyond INGEST_NOTE_FIELDS are left out
 * (a programming error: notes have a few fixed fields). */
void ingest_note_send(ingest_note_fn fn, void *ctx, pcf_log_level level, const char *msg, const pcf_error *err, ...)
    __attribute__((sentinel));

/* The value of a field, or NULL. */
const char *ingest_note_get(const ingest_note *n, const char *key);

/* Logs the note (log.h) with one more field in front, e.g. "source", name
 * (key NULL: none). */
void ingest_note_log(const ingest_note *n, const char *key, const char *value);

#endif
