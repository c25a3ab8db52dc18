/*
 * outage_parse.c -- outage JSON and UKPN EHV planned-outage CSV parsing;
 * contract in outage_parse.h.
 *
 * Both parsers check one record at a time and report the first fault of a
 * record as its reject reason, so one bad outage never hides the others.
 */
#include "outage_parse.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "parse.h"
#include "sptime.h"

static const char *const s_status[] = {"planned", "confirmed", "cancelled", "completed"};

static const char *s_status_exact(const char *s)
{
    for (size_t i = 0; i < 4; i++)
        if (strcmp(s, s_status[i]) == 0)
            return s_status[i];
    return NULL;
}

typedef struct {
    const char *source;
    const outage_sink *sink;
    outage_stats *st;
    char raw[FEED_RAW_MAX];
} s_ctx;

static pcf_rc s_refuse(s_ctx *c, long line, const char *field, const char *reason, pcf_error *err)
{
    c->st->rejected++;
    return feed_reject_call(c->sink->reject, c->sink->ctx, line, field, reason, c->raw, err);
}

static pcf_rc s_emit(s_ctx *c, const outage_rec *o, pcf_error *err)
{
    c->st->records++;
    return c->sink->rec ? c->sink->rec(c->sink->ctx, o, err) : PCF_OK;
}

/* ---- JSON -------------------------------------------------------------- */

static pcf_rc s_json_record(s_ctx *c, json_t *o, long idx, pcf_error *err)
{
    char *dump = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    snprintf(c->raw, sizeof c->raw, "%s", dump ? dump : "");
    free(dump);
    if (!json_is_object(o))
        return s_refuse(c, idx, "", "outage is not a JSON object", err);
    static const char *const keys[] = {"outage_id", "revision", "equipment_id", "kind", "status",
                                       "start", "end", "description"};
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        bool known = false;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            known = known || strcmp(key, keys[i]) == 0;
        if (!known)
            return s_refuse(c, idx, key, "unknown key", err);
    }
    json_t *id = json_object_get(o, "outage_id"), *eq = json_object_get(o, "equipment_id");
    if (!json_is_string(id) || !feed_id_ok(json_string_value(id), json_string_length(id), 128))
        return s_refuse(c, idx, "outage_id", "outage_id must be a string of 1..128 bytes", err);
    if (!json_is_string(eq) || !feed_id_ok(json_string_value(eq), json_string_length(eq), 128))
        return s_refuse(c, idx, "equipment_id", "equipment_id must be a string of 1..128 bytes", err);
    if (strlen(json_string_value(id)) != json_string_length(id) ||
        strlen(json_string_value(eq)) != json_string_length(eq))
        return s_refuse(c, idx, "outage_id", "ids must not contain NUL", err);
    json_t *rev = json_object_get(o, "revision");
    if (!json_is_integer(rev) || json_integer_value(rev) < 1 || json_integer_value(rev) > 1000000)
        return s_refuse(c, idx, "revision", "revision must be an integer 1..1000000", err);
    const char *kind = json_string_value(json_object_get(o, "kind"));
    if (!kind || (strcmp(kind, "planned") != 0 && strcmp(kind, "unplanned") != 0))
        return s_refuse(c, idx, "kind", "kind must be planned or unplanned", err);
    const char *status = json_string_value(json_object_get(o, "status"));
    if (!status || !(status = s_status_exact(status)))
        return s_refuse(c, idx, "status", "status must be planned, confirmed, cancelled or completed", err);
    json_t *d = json_object_get(o, "description");
    if (d && !json_is_string(d))
        return s_refuse(c, idx, "description", "description must be a string", err);
    int64_t t[2];
    const char *names[2] = {"start", "end"};
    for (int k = 0; k < 2; k++) {
        json_t *s = json_object_get(o, names[k]);
        if (!json_is_string(s) || sptime_parse_utc(json_string_value(s), json_string_length(s), &t[k]) != PCF_OK)
            return s_refuse(c, idx, names[k], "must be ISO 8601 with a UTC offset", err);
    }
    if (t[1] <= t[0])
        return s_refuse(c, idx, "end", "end is not after start", err);
    outage_rec r = {json_string_value(id), json_string_value(eq), (int)json_integer_value(rev),
                    strcmp(kind, "planned") == 0, status, t[0], t[1], idx};
    return s_emit(c, &r, err);
}

pcf_rc outage_parse_json(const char *buf, size_t len, const char *source,
                         const outage_sink *sink, outage_stats *st, pcf_error *err)
{
    outage_stats local;
    s_ctx c = {.source = source, .sink = sink, .st = st ? st : &local};
    memset(c.st, 0, sizeof *c.st);
    if (len > OUTAGE_MAX_BYTES)
        return pcf_error_set(err, PCF_ERR_LIMIT, "%s: %zu bytes exceeds %zu", source, len, OUTAGE_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return pcf_error_set(err, PCF_ERR_PARSE, "%s:%d: malformed JSON: %s", source, jerr.line, jerr.text);
    json_t *arr = json_is_object(root) ? json_object_get(root, "outages") : root;
    pcf_rc rc = PCF_OK;
    if (!json_is_array(arr)) {
        rc = pcf_error_set(err, PCF_ERR_PARSE, "%s: expected {\"outages\": [...]} or an array", source);
    } else {
        size_t i;
        json_t *o;
        json_array_foreach(arr, i, o) {
            if ((rc = s_json_record(&c, o, (long)i + 1, err)) != PCF_OK)
                break;
        }
    }
    json_decref(root);
    return rc;
}

/* ---- UKPN CSV ---------------------------------------------------------- */

static const char *const s_ukpn_cols[] = {
    "outageid", "circuitid", "substationname", "sitefunctionallocation", "dno", "startdate",
    "starttime", "enddate", "endtime", "outagetype", "plannedstatus", "plantype", "spatial_coordinates",
};
enum { C_ID = 0, C_CIRCUIT = 1, C_SDATE = 5, C_STIME = 6, C_EDATE = 7, C_ETIME = 8, C_TYPE = 9,
       C_STATUS = 10, C_PLANTYPE = 11, C_NCOLS = 13 };

static bool s_num(const char *s, size_t n, int *out)
{
    long v;
    if (parse_long(s, n, &v) != PCF_OK || v < 0 || v > 9999 || s[0] == '+' || s[0] == '-')
        return false;
    *out = (int)v;
    return true;
}

/* YYYY-MM-DD[anything] or DD/MM/YYYY. */
static bool s_date(const char *s, size_t len, sptime_civil *c)
{
    if (len >= 10 && s[4] == '-' && s[7] == '-')
        return s_num(s, 4, &c->year) && s_num(s + 5, 2, &c->month) && s_num(s + 8, 2, &c->day);
    if (len == 10 && s[2] == '/' && s[5] == '/')
        return s_num(s, 2, &c->day) && s_num(s + 3, 2, &c->month) && s_num(s + 6, 4, &c->year);
    return false;
}

static bool s_time(const char *s, size_t len, sptime_civil *c)
{
    c->sec = 0;
    if ((len != 5 && len != 8) || s[2] != ':' || (len == 8 && s[5] != ':'))
        return false;
    return s_num(s, 2, &c->hour) && s_num(s + 3, 2, &c->min) && (len == 5 || s_num(s + 6, 2, &c->sec));
}

static bool s_contains(const char *s, const char *needle)
{
    return strcasestr(s, needle) != NULL;
}

static pcf_rc s_ukpn_when(s_ctx *c, csv_reader *r, int dcol, int tcol, int64_t *out, pcf_error *err)
{
    sptime_civil civ = {0};
    long line = csv_line(r);
    if (!s_date(csv_field(r, dcol), csv_field_len(r, dcol), &civ))
        return s_refuse(c, line, s_ukpn_cols[dcol], "date must be YYYY-MM-DD or DD/MM/YYYY", err);
    if (!s_time(csv_field(r, tcol), csv_field_len(r, tcol), &civ))
        return s_refuse(c, line, s_ukpn_cols[tcol], "time must be HH:MM or HH:MM:SS", err);
    const char *why = "not a valid date and time";
    if (sptime_local_to_utc(sptime_london(), &civ, SPTIME_STRICT, out, &why) != PCF_OK) {
        char msg[160];
        snprintf(msg, sizeof msg, "UK local time: %s", why);
        return s_refuse(c, line, s_ukpn_cols[tcol], msg, err);
    }
    return PCF_OK;
}

static pcf_rc s_ukpn_record(s_ctx *c, csv_reader *r, pcf_error *err)
{
    long line = csv_line(r);
    feed_csv_raw(r, c->raw, sizeof c->raw);
    if (csv_truncated(r))
        return s_refuse(c, line, "", "last line has no newline (file cut short?)", err);
    if (csv_count(r) != C_NCOLS)
        return s_refuse(c, line, "", "expected 13 fields", err);
    if (!feed_id_ok(csv_field(r, C_ID), csv_field_len(r, C_ID), 128))
        return s_refuse(c, line, "outageid", "outageid must be 1..128 bytes", err);
    if (!feed_id_ok(csv_field(r, C_CIRCUIT), csv_field_len(r, C_CIRCUIT), 128))
        return s_refuse(c, line, "circuitid", "circuitid must be 1..128 bytes", err);
    int64_t t[2];
    pcf_rc rc;
    size_t before = (size_t)c->st->rejected;
    if ((rc = s_ukpn_when(c, r, C_SDATE, C_STIME, &t[0], err)) != PCF_OK || (size_t)c->st->rejected != before)
        return rc;
    if ((rc = s_ukpn_when(c, r, C_EDATE, C_ETIME, &t[1], err)) != PCF_OK || (size_t)c->st->rejected != before)
        return rc;
    if (t[1] <= t[0])
        return s_refuse(c, line, "endtime", "end is not after start", err);
    const char *type = csv_field_len(r, C_TYPE) > 0 ? csv_field(r, C_TYPE) : csv_field(r, C_PLANTYPE);
    bool planned;
    if (s_contains(type, "unplanned") || s_contains(type, "fault") || s_contains(type, "emergency"))
        planned = false;
    else if (s_contains(type, "planned"))
        planned = true;
    else
        return s_refuse(c, line, "outagetype", "outagetype is neither planned nor unplanned/fault", err);
    const char *st = csv_field(r, C_STATUS), *status;
    if (s_contains(st, "cancel"))
        status = "cancelled";
    else if (s_contains(st, "complete"))
        status = "completed";
    else if (s_contains(st, "confirm"))
        status = "confirmed";
    else if (s_contains(st, "plan") || s_contains(st, "provisional") || s_contains(st, "proposed") ||
             s_contains(st, "tentative"))
        status = "planned";
    else
        return s_refuse(c, line, "plannedstatus", "plannedstatus not recognised", err);
    outage_rec o = {csv_field(r, C_ID), csv_field(r, C_CIRCUIT), 0, planned, status, t[0], t[1], line};
    return s_emit(c, &o, err);
}

pcf_rc outage_parse_ukpn_csv(FILE *f, const char *source, const outage_sink *sink,
                             outage_stats *st, pcf_error *err)
{
    outage_stats local;
    s_ctx c = {.source = source, .sink = sink, .st = st ? st : &local};
    memset(c.st, 0, sizeof *c.st);
    csv_reader *r = csv_new(f, source, OUTAGE_MAX_LINE);
    if (!r)
        return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", source);
    pcf_rc rc = csv_header(r, s_ukpn_cols, C_NCOLS, err);
    while (rc == PCF_OK) {
        pcf_error e;
        rc = csv_next(r, &e);
        if (rc == PCF_ERR_PARSE || rc == PCF_ERR_LIMIT) {
            size_t skip = strlen(source);
            const char *why = skip < strlen(e.msg) ? strstr(e.msg + skip, ": ") : NULL;
            c.raw[0] = '\0';
            rc = s_refuse(&c, csv_line(r), "", why ? why + 2 : e.msg, err);
            continue;
        }
        if (rc != PCF_OK) {
            *err = e;
            break;
        }
        if (csv_done(r))
            break;
        if (csv_count(r) == 0)
            continue;
        rc = s_ukpn_record(&c, r, err);
    }
    csv_destroy(&r);
    return rc;
}
