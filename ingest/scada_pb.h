/*
 * scada_pb.h -- parser for the live SCADA feed: one pcf.v1.ScadaBatch
 * (proto/pcf.proto, docs/protocol.md section 9) as received from a gateway.
 *
 * Checked: the message decodes; header.schema_version is 1; gateway_id is
 * 1..64 bytes without control characters; at most SCADA_PB_MAX_MEASUREMENTS
 * measurements.  Any of these failing refuses the whole batch
 * (PCF_ERR_PARSE / PCF_ERR_LIMIT).  Per measurement (refused ones go to the
 * reject callback with line = batch_sequence, the rest of the batch loads):
 * point_id 1..128 bytes without control characters, time_ms within years
 * 1900..2999, a finite value, a quality other than UNSPECIFIED (unknown enum
 * values count as UNSPECIFIED).
 */
#ifndef PCF_SCADA_PB_H
#define PCF_SCADA_PB_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "feed.h"
#include "scada_csv.h"

#define SCADA_PB_MAX_MEASUREMENTS 100000
#define SCADA_PB_MAX_BYTES ((size_t)16 << 20)

typedef struct scada_pb_row {
    const char *point_id;   /* borrowed for the callback only */
    int64_t time_ms;        /* UTC milliseconds */
    double value;
    scada_quality quality;
} scada_pb_row;

typedef struct scada_pb_info {
    char gateway_id[65];
    uint64_t batch_sequence;
    size_t measurements;
} scada_pb_info;

typedef struct scada_pb_sink {
    pcf_rc (*row)(void *ctx, const scada_pb_row *row, pcf_error *err);
    feed_reject_fn reject;
    void *ctx;
} scada_pb_sink;

/* Decodes and checks len bytes of buf; fills *info before the first
 * callback. */
pcf_rc scada_pb_parse(const uint8_t *buf, size_t len, const scada_pb_sink *sink,
                      scada_pb_info *info, pcf_error *err);

#endif
