/*
 * scada_csv.h -- parser for SCADA history CSV files, streamed.
 *
 * Two formats, told apart by the header line:
 *   historian:  timestamp,point_id,value,quality
 *   UKPN:       timestamp,tx_id,active_power_mw,current_amps
 *               (UK Power Networks half-hourly operational data); each row
 *               gives two measurements, of points "<tx_id>/active_power_mw"
 *               and "<tx_id>/current_amps"; an empty value is missing and
 *               skipped (counted in stats.missing), not an error.
 * timestamp: ISO 8601 with a UTC offset or Z (see sptime.h); a local time
 * without offset is refused, since on clock-change days it is ambiguous.
 * value: a finite decimal number (parse.h; NaN, inf and overflow refused).
 * quality (case-insensitive): good; uncertain or suspect -> uncertain; bad;
 * substituted, estimated or manual -> substituted.
 * point_id / tx_id: 1..128 bytes, no control characters.
 *
 * Good rows go to sink->row, refused ones to sink->reject with line, field
 * and reason: wrong field count, CSV syntax errors, bad timestamp, bad
 * value, bad quality, bad id, and a last line without its newline (a file
 * cut short in transfer).  Returns PCF_OK when the whole file was read
 * (even if rows were refused); PCF_ERR_PARSE for an empty file or a wrong
 * header; PCF_ERR_IO on read error; or what a callback returned.
 * Memory is bounded by the CSV reader's record limit, whatever the file size.
 */
#ifndef PCF_SCADA_CSV_H
#define PCF_SCADA_CSV_H

#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "feed.h"

typedef enum scada_quality {
    SCADA_GOOD, SCADA_UNCERTAIN, SCADA_BAD, SCADA_SUBSTITUTED
} scada_quality;

typedef enum scada_format { SCADA_FMT_HISTORIAN, SCADA_FMT_UKPN } scada_format;

typedef struct scada_row {
    const char *point_id;       /* borrowed for the callback only */
    int64_t ts;                 /* UTC seconds */
    double value;
    scada_quality quality;
    long line;
} scada_row;

typedef struct scada_sink {
    pcf_rc (*row)(void *ctx, const scada_row *row, pcf_error *err);
    feed_reject_fn reject;
    void *ctx;
} scada_sink;

typedef struct scada_stats {
    scada_format format;
    long rows;                  /* measurements passed to sink->row */
    long rejected;              /* records passed to sink->reject */
    long missing;               /* UKPN empty values skipped */
} scada_stats;

/* Longest CSV record accepted (bytes). */
#define SCADA_MAX_LINE 4096

pcf_rc scada_parse(FILE *f, const char *source, const scada_sink *sink,
                   scada_stats *stats, pcf_error *err);

/* "good", "uncertain", "bad", "substituted" (as stored in the database). */
const char *scada_quality_name(scada_quality q);

#endif
