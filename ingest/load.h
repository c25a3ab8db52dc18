/*
 * load.h -- loading parsed feeds into PostgreSQL (schema: sql/002_feeds.sql).
 *
 * Every load is ONE transaction:
 *   1. hash the input; if ingest_batch already holds a 'loaded' batch of the
 *      same feed and hash, do nothing (already_loaded) -- a re-run or a
 *      restart after a crash between commit and moving the file is a no-op;
 *   2. stream the parser's good records with COPY into a temporary staging
 *      table (memory stays bounded whatever the input size) -- except the
 *      SCADA file bulk path, which binary-COPYs sorted chunks straight into
 *      the monthly partitions and falls back to staging + upsert for a
 *      chunk that overlaps stored rows (load.c; docs/ingest.md);
 *   3. validate in SQL what the parser cannot know: unknown measurement
 *      points / equipment / locations, conflicting duplicates inside the
 *      input, revisions already stored with different content;
 *   4. apply the feed's policy (below), insert the ingest_batch row, upsert
 *      on the natural keys (an unchanged row is not rewritten), write the
 *      quarantine rows, NOTIFY the feed's channel (pcf_scada, pcf_weather,
 *      pcf_outage; payload = batch_id), COMMIT.  PostgreSQL delivers the
 *      NOTIFY only if the commit succeeds.
 * Any database error rolls everything back: nothing half-written.
 *
 * Policies:
 *   SCADA files: all or nothing.  One refused record (parser or SQL check)
 *     and no measurement is stored; the batch is recorded as 'rejected' with
 *     its quarantine rows, and the call returns PCF_ERR_INVALID.  Identical
 *     duplicate rows are collapsed (counted in duplicates); a duplicate with
 *     a different value or quality is refused.
 *   Live SCADA batches (ZeroMQ): per record, as docs/protocol.md section 9 says.
 *   Weather and outages: per record.  Good records are stored, refused ones
 *     quarantined; a structural error (malformed JSON, error body, bad time
 *     axis, wrong header) refuses the whole input.
 * At most LOAD_MAX_QUARANTINE refused records are stored per input (but
 * for a live batch refused whole, below); the count in the report and in
 * ingest_batch.rows_quarantined is exact.
 */
#ifndef PCF_LOAD_H
#define PCF_LOAD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define LOAD_MAX_QUARANTINE 1000

typedef struct load_report {
    long long batch_id;     /* 0 when nothing was recorded */
    bool already_loaded;    /* identical input committed before: no change */
    bool rejected;          /* the whole input was refused */
    long parsed;            /* good records out of the parser */
    long stored;            /* rows inserted or changed */
    long quarantined;       /* refused records (exact count) */
    long duplicates;        /* identical duplicates collapsed */
    long missing;           /* missing values skipped (nulls, empty cells) */
    long bulk_chunks;       /* historian bulk path: chunks stored (0: staging path) */
    long bulk_fallbacks;    /* of which upserted through staging (overlapping rows) */
    char first_error[512];  /* the first refusal, "source:line: field: reason" */
} load_report;

/* Loads one SCADA CSV file (historian or UKPN format, see scada_csv.h).
 * source names the input in the quarantine and messages. */
pcf_rc load_scada_file(PGconn *c, const char *path, const char *source,
                       load_report *rep, pcf_error *err);

/* Rows per chunk of the historian bulk path (load.c); n <= 0 or above the
 * default (1 Mi) restores the default.  For tests that need several chunks
 * from a small file. */
void load_scada_chunk_rows(long n);

struct scada_pb_info;

/* Loads one live ScadaBatch message (scada_pb.h).  Per record: unknown
 * points, non-finite values, unspecified quality and conflicting duplicates
 * are quarantined with source "zmq:<gateway_id>" and line = batch_sequence;
 * the rest loads.  A (gateway_id, batch_sequence) already committed is
 * skipped (already_loaded).  *info receives the batch identity.
 * nested false: the load is its own transaction (BEGIN ... COMMIT), and no
 * transaction may be open on c (PCF_ERR_INTERNAL: it would commit the
 * caller's).  nested true: the caller has a transaction open (the live feed
 * groups batches); the load runs under a savepoint of it and commits
 * nothing: on an error of the batch's own (the savepoint rolled back, the
 * transaction still usable) the caller decides, after a lost connection or
 * transaction it must roll the whole transaction back. */
pcf_rc load_scada_batch(PGconn *c, bool nested, const void *buf, size_t len, load_report *rep,
                        struct scada_pb_info *info, pcf_error *err);

/* Records a live batch the database refused for good (load_scada_batch
 * failed with an error of the batch's own and a lasting SQLSTATE, why):
 * an ingest_batch row with status 'rejected' and every measurement of the
 * batch in the quarantine -- line = batch_sequence, raw = "point_id,
 * time_ms,value,quality", reason = why's first line with its SQLSTATE --
 * so no row is lost (records the parser refuses keep their own reasons).
 * All rows are kept, not only LOAD_MAX_QUARANTINE: the batch exists nowhere
 * else.  A resend of the same batch loads normally once its cause is gone.
 * nested as for load_scada_batch.  PCF_OK once recorded (rep->rejected,
 * rep->quarantined), or already_loaded when the batch committed meanwhile. */
pcf_rc load_scada_batch_refused(PGconn *c, bool nested, const void *buf, size_t len, const pcf_error *why,
                                load_report *rep, struct scada_pb_info *info, pcf_error *err);

typedef struct load_weather_opts {
    const char *const *location_ids;    /* weather_location ids, in response order */
    size_t nlocations;
    const char *model;                  /* used when a key has no model suffix */
    int64_t issued_at;                  /* UTC seconds; floored to the hour here */
} load_weather_opts;

/* Loads one Open-Meteo response body. */
pcf_rc load_weather(PGconn *c, const char *buf, size_t len, const char *source,
                    const load_weather_opts *opts, load_report *rep, pcf_error *err);

typedef enum load_outage_format { LOAD_OUTAGE_JSON, LOAD_OUTAGE_UKPN_CSV } load_outage_format;

/* Loads one outage file.  A JSON record's (outage_id, revision) already
 * stored with different content is refused; a UKPN CSV record that differs
 * from the current revision becomes the next revision. */
pcf_rc load_outage_file(PGconn *c, const char *path, const char *source,
                        load_outage_format fmt, load_report *rep, pcf_error *err);

/* 128-bit content hash as 32 hex digits (two independent 64-bit FNV-1a
 * variants): identifies an input for idempotency, not for security. */
void load_hash_hex(const void *data, size_t len, char out[33]);

#endif
