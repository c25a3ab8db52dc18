/*
 * scada_pb.c -- decoding and checking of live ScadaBatch messages with
 * protobuf-c; the contract is in scada_pb.h.
 */
#include "scada_pb.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pcf.pb-c.h"

/* 1900-01-01 .. 3000-01-01 in milliseconds. */
#define S_MS_MIN (-2208988800000LL)
#define S_MS_MAX (32503680000000LL)

static bool s_quality(int q, scada_quality *out)
{
    switch (q) {
    case PCF__V1__QUALITY__QUALITY_GOOD: *out = SCADA_GOOD; return true;
    case PCF__V1__QUALITY__QUALITY_UNCERTAIN: *out = SCADA_UNCERTAIN; return true;
    case PCF__V1__QUALITY__QUALITY_BAD: *out = SCADA_BAD; return true;
    case PCF__V1__QUALITY__QUALITY_SUBSTITUTED: *out = SCADA_SUBSTITUTED; return true;
    default: return false;
    }
}

pcf_rc scada_pb_parse(const uint8_t *buf, size_t len, const scada_pb_sink *sink,
                      scada_pb_info *info, pcf_error *err)
{
    memset(info, 0, sizeof *info);
    if (len > SCADA_PB_MAX_BYTES)
        return pcf_error_set(err, PCF_ERR_LIMIT, "ScadaBatch of %zu bytes exceeds %zu", len, SCADA_PB_MAX_BYTES);
    Pcf__V1__ScadaBatch *b = pcf__v1__scada_batch__unpack(NULL, len, buf);
    if (!b)
        return pcf_error_set(err, PCF_ERR_PARSE, "ScadaBatch: not a valid protobuf message");
    pcf_rc rc = PCF_OK;
    const char *gw = b->gateway_id ? b->gateway_id : "";
    if (!b->header || b->header->schema_version != 1) {
        rc = pcf_error_set(err, PCF_ERR_PARSE, "ScadaBatch from '%.64s': header.schema_version is not 1", gw);
    } else if (!feed_id_ok(gw, strlen(gw), 64)) {
        rc = pcf_error_set(err, PCF_ERR_PARSE, "ScadaBatch: gateway_id must be 1..64 bytes without control characters");
    } else if (b->n_measurements > SCADA_PB_MAX_MEASUREMENTS) {
        rc = pcf_error_set(err, PCF_ERR_LIMIT, "ScadaBatch from '%s': %zu measurements (limit %d)", gw,
                           b->n_measurements, SCADA_PB_MAX_MEASUREMENTS);
    }
    if (rc != PCF_OK) {
        pcf__v1__scada_batch__free_unpacked(b, NULL);
        return rc;
    }
    snprintf(info->gateway_id, sizeof info->gateway_id, "%s", gw);
    info->batch_sequence = b->batch_sequence;
    info->measurements = b->n_measurements;
    long line = (long)(b->batch_sequence > (uint64_t)LONG_MAX ? LONG_MAX : b->batch_sequence);
    for (size_t i = 0; i < b->n_measurements && rc == PCF_OK; i++) {
        const Pcf__V1__Measurement *m = b->measurements[i];
        const char *pid = m->point_id ? m->point_id : "";
        char raw[256];
        snprintf(raw, sizeof raw, "%.128s,%lld,%.17g,%d", pid, (long long)m->time_ms, m->value, (int)m->quality);
        scada_quality q;
        const char *field = NULL, *why = NULL;
        if (!feed_id_ok(pid, strlen(pid), 128)) {
            field = "point_id";
            why = "point_id must be 1..128 bytes without control characters";
        } else if (m->time_ms < S_MS_MIN || m->time_ms > S_MS_MAX) {
            field = "time_ms";
            why = "time_ms outside years 1900..2999";
        } else if (!isfinite(m->value)) {
            field = "value";
            why = "value is not finite";
        } else if (!s_quality((int)m->quality, &q)) {
            field = "quality";
            why = "quality is unspecified or unknown";
        }
        if (why) {
            rc = feed_reject_call(sink->reject, sink->ctx, line, field, why, raw, err);
            continue;
        }
        scada_pb_row row = {pid, m->time_ms, m->value, q};
        if (sink->row)
            rc = sink->row(sink->ctx, &row, err);
    }
    pcf__v1__scada_batch__free_unpacked(b, NULL);
    return rc;
}
