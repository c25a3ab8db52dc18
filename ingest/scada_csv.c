/*
 * scada_csv.c -- historian and UKPN SCADA CSV parsing; contract in
 * scada_csv.h.
 *
 * One pass over the CSV reader: the header picks the format, then each
 * record is checked field by field; the first fault found is the reason the
 * record is refused (one reject per record, naming the field).
 */
#include "scada_csv.h"

#include <string.h>
#include <strings.h>

#include "parse.h"
#include "sptime.h"

static const char *const s_hist_cols[] = {"timestamp", "point_id", "value", "quality"};
static const char *const s_ukpn_cols[] = {"timestamp", "tx_id", "active_power_mw", "current_amps"};

const char *scada_quality_name(scada_quality q)
{
    switch (q) {
    case SCADA_GOOD: return "good";
    case SCADA_UNCERTAIN: return "uncertain";
    case SCADA_BAD: return "bad";
    case SCADA_SUBSTITUTED: return "substituted";
    }
    return "bad";
}

static bool s_quality(const char *s, scada_quality *q)
{
    static const struct { const char *name; scada_quality q; } map[] = {
        {"good", SCADA_GOOD}, {"uncertain", SCADA_UNCERTAIN}, {"suspect", SCADA_UNCERTAIN},
        {"bad", SCADA_BAD}, {"substituted", SCADA_SUBSTITUTED}, {"estimated", SCADA_SUBSTITUTED},
        {"manual", SCADA_SUBSTITUTED},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(s, map[i].name) == 0) {
            *q = map[i].q;
            return true;
        }
    return false;
}

typedef struct {
    csv_reader *r;
    const scada_sink *sink;
    scada_stats *st;
    char raw[FEED_RAW_MAX];
} s_ctx;

static pcf_rc s_refuse(s_ctx *c, long line, const char *field, const char *reason, pcf_error *err)
{
    c->st->rejected++;
    return feed_reject_call(c->sink->reject, c->sink->ctx, line, field, reason, c->raw, err);
}

/* Checks the header (reading it) and sets the format. */
static pcf_rc s_header(s_ctx *c, pcf_error *err)
{
    pcf_error e1;
    pcf_rc rc = csv_header(c->r, s_hist_cols, 4, &e1);
    if (rc == PCF_OK) {
        c->st->format = SCADA_FMT_HISTORIAN;
        return PCF_OK;
    }
    if (rc != PCF_ERR_PARSE || csv_done(c->r) || csv_count(c->r) != 4) {
        *err = e1;
        return rc;
    }
    /* csv_header consumed the record: compare it with the UKPN names. */
    for (size_t i = 0; i < 4; i++) {
        const char *f = csv_field(c->r, i);
        while (*f == ' ')
            f++;
        size_t n = strlen(f);
        while (n > 0 && f[n - 1] == ' ')
            n--;
        if (n != strlen(s_ukpn_cols[i]) || strncasecmp(f, s_ukpn_cols[i], n) != 0)
            return pcf_error_set(err, PCF_ERR_PARSE,
                                 "%s:%ld: wrong header: expected 'timestamp,point_id,value,quality' "
                                 "or 'timestamp,tx_id,active_power_mw,current_amps'",
                                 csv_source(c->r), csv_line(c->r));
    }
    c->st->format = SCADA_FMT_UKPN;
    return PCF_OK;
}

static pcf_rc s_emit(s_ctx *c, const char *point, int64_t ts, double v, scada_quality q, pcf_error *err)
{
    scada_row row = {point, ts, v, q, csv_line(c->r)};
    c->st->rows++;
    return c->sink->row ? c->sink->row(c->sink->ctx, &row, err) : PCF_OK;
}

static pcf_rc s_historian(s_ctx *c, int64_t ts, pcf_error *err)
{
    csv_reader *r = c->r;
    long line = csv_line(r);
    double v;
    scada_quality q;
    if (!feed_id_ok(csv_field(r, 1), csv_field_len(r, 1), 128))
        return s_refuse(c, line, "point_id", "point_id must be 1..128 bytes without control characters", err);
    if (parse_double(csv_field(r, 2), csv_field_len(r, 2), &v) != PCF_OK)
        return s_refuse(c, line, "value", "value is not a finite number", err);
    if (!s_quality(csv_field(r, 3), &q))
        return s_refuse(c, line, "quality", "quality must be good, uncertain, suspect, bad, substituted, estimated or manual", err);
    return s_emit(c, csv_field(r, 1), ts, v, q, err);
}

static pcf_rc s_ukpn(s_ctx *c, int64_t ts, pcf_error *err)
{
    csv_reader *r = c->r;
    long line = csv_line(r);
    size_t idlen = csv_field_len(r, 1);
    if (!feed_id_ok(csv_field(r, 1), idlen, 100))
        return s_refuse(c, line, "tx_id", "tx_id must be 1..100 bytes without control characters", err);
    double v[2];
    bool have[2];
    for (int k = 0; k < 2; k++) {
        have[k] = csv_field_len(r, 2 + k) > 0;
        if (have[k] && parse_double(csv_field(r, 2 + k), csv_field_len(r, 2 + k), &v[k]) != PCF_OK)
            return s_refuse(c, line, s_ukpn_cols[2 + k], "value is not a finite number", err);
    }
    char point[128];
    pcf_rc rc = PCF_OK;
    for (int k = 0; k < 2 && rc == PCF_OK; k++) {
        if (!have[k]) {
            c->st->missing++;
            continue;
        }
        snprintf(point, sizeof point, "%s/%s", csv_field(r, 1), s_ukpn_cols[2 + k]);
        rc = s_emit(c, point, ts, v[k], SCADA_GOOD, err);
    }
    return rc;
}

static pcf_rc s_record(s_ctx *c, pcf_error *err)
{
    csv_reader *r = c->r;
    long line = csv_line(r);
    feed_csv_raw(r, c->raw, sizeof c->raw);
    if (csv_truncated(r))
        return s_refuse(c, line, "", "last line has no newline (file cut short?)", err);
    if (csv_count(r) != 4)
        return s_refuse(c, line, "", "expected 4 fields", err);
    int64_t ts;
    if (sptime_parse_utc(csv_field(r, 0), csv_field_len(r, 0), &ts) != PCF_OK)
        return s_refuse(c, line, "timestamp",
                        "timestamp must be ISO 8601 with a UTC offset, e.g. 2024-01-01T00:00:00Z", err);
    return c->st->format == SCADA_FMT_HISTORIAN ? s_historian(c, ts, err) : s_ukpn(c, ts, err);
}

pcf_rc scada_parse(FILE *f, const char *source, const scada_sink *sink, scada_stats *stats, pcf_error *err)
{
    scada_stats local;
    s_ctx c = {.sink = sink, .st = stats ? stats : &local};
    memset(c.st, 0, sizeof *c.st);
    c.r = csv_new(f, source, SCADA_MAX_LINE);
    if (!c.r)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", source);
    pcf_rc rc = s_header(&c, err);
    while (rc == PCF_OK) {
        pcf_error e;
        rc = csv_next(c.r, &e);
        if (rc == PCF_ERR_PARSE || rc == PCF_ERR_LIMIT) {
            /* Syntax fault in one record: refuse it and carry on. */
            size_t skip = strlen(csv_source(c.r));
            const char *why = skip < strlen(e.msg) ? strstr(e.msg + skip, ": ") : NULL;
            c.raw[0] = '\0';
            rc = s_refuse(&c, csv_line(c.r), "", why ? why + 2 : e.msg, err);
            continue;
        }
        if (rc != PCF_OK) {
            *err = e;
            break;
        }
        if (csv_done(c.r))
            break;
        if (csv_count(c.r) == 0)
            continue;   /* blank line */
        rc = s_record(&c, err);
    }
    csv_destroy(&c.r);
    return rc;
}
