/*
 * outage_parse.h -- parsers for outage schedules: the project's JSON format
 * and UK Power Networks' EHV planned-outage CSV.
 *
 * JSON (designed here; docs/ingest.md has the full description):
 *     {"outages": [ {"outage_id": "OUT-17", "revision": 2,
 *                    "equipment_id": "BRIG-NINF-1", "kind": "planned",
 *                    "status": "confirmed",
 *                    "start": "2026-06-01T08:00:00+01:00",
 *                    "end":   "2026-06-01T16:00:00+01:00"}, ... ]}
 * or the bare array.  outage_id/equipment_id: 1..128 bytes without control
 * characters; revision: integer 1..1000000; kind: planned | unplanned;
 * status: planned | confirmed | cancelled | completed; start/end: ISO 8601
 * with offset (sptime.h), end after start; "description" (string) is
 * allowed and ignored; any other key refuses the record (typos must not
 * pass silently).  Each record is judged alone.
 *
 * UKPN CSV header (exactly, case/space-insensitive): outageid, circuitid,
 * substationname, sitefunctionallocation, dno, startdate, starttime,
 * enddate, endtime, outagetype, plannedstatus, plantype,
 * spatial_coordinates.  Dates YYYY-MM-DD (anything after the 10th byte,
 * such as "T00:00:00+00:00", is ignored) or DD/MM/YYYY; times HH:MM[:SS];
 * both UK local time (Europe/London): a time in the spring gap or the
 * autumn repeat is refused as ambiguous.  outagetype (or plantype when
 * empty) containing "unplanned", "fault" or "emergency" is unplanned,
 * otherwise containing "planned" is planned.  plannedstatus containing
 * "cancel" -> cancelled, "complete" -> completed, "confirm" -> confirmed,
 * "plan"/"provisional"/"proposed"/"tentative" -> planned.  The CSV carries
 * no revision: records come out with revision 0 and the loader numbers a
 * changed record as the next revision.
 *
 * Returns PCF_OK when the input was read through (records may have been
 * refused); PCF_ERR_PARSE for malformed JSON, a wrong header or an empty
 * file; PCF_ERR_LIMIT for input over OUTAGE_MAX_BYTES (JSON).
 */
#ifndef PCF_OUTAGE_PARSE_H
#define PCF_OUTAGE_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "feed.h"

#define OUTAGE_MAX_BYTES ((size_t)16 << 20)
#define OUTAGE_MAX_LINE 8192

typedef struct outage_rec {
    const char *outage_id;      /* borrowed for the callback only */
    const char *equipment_id;
    int revision;               /* 0: not given (UKPN CSV) */
    bool planned;
    const char *status;         /* constant: planned/confirmed/cancelled/completed */
    int64_t start, end;         /* UTC seconds, end > start */
    long line;                  /* CSV line, or 1-based index in the JSON array */
} outage_rec;

typedef struct outage_sink {
    pcf_rc (*rec)(void *ctx, const outage_rec *o, pcf_error *err);
    feed_reject_fn reject;
    void *ctx;
} outage_sink;

typedef struct outage_stats {
    long records, rejected;
} outage_stats;

pcf_rc outage_parse_json(const char *buf, size_t len, const char *source,
                         const outage_sink *sink, outage_stats *st, pcf_error *err);

pcf_rc outage_parse_ukpn_csv(FILE *f, const char *source, const outage_sink *sink,
                             outage_stats *st, pcf_error *err);

#endif
