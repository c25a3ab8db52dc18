/* test_ingest_outage.c -- outage JSON and UKPN EHV planned-outage CSV
 * parsers, including clock-change days and hostile records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outage_parse.h"
#include "sptime.h"

typedef struct {
    char id[16][130], eq[16][130], status[16][16];
    int rev[16];
    bool planned[16];
    int64_t start[16], end[16];
    int n;
    char field[16][40], reason[16][160];
    long line[16];
    int nrej;
} s_out;

static pcf_rc s_rec(void *ctx, const outage_rec *o, pcf_error *err)
{
    (void)err;
    s_out *c = ctx;
    if (c->n < 16) {
        snprintf(c->id[c->n], 130, "%s", o->outage_id);
        snprintf(c->eq[c->n], 130, "%s", o->equipment_id);
        snprintf(c->status[c->n], 16, "%s", o->status);
        c->rev[c->n] = o->revision;
        c->planned[c->n] = o->planned;
        c->start[c->n] = o->start;
        c->end[c->n] = o->end;
    }
    c->n++;
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)err;
    s_out *c = ctx;
    if (c->nrej < 16) {
        snprintf(c->field[c->nrej], 40, "%s", r->field);
        snprintf(c->reason[c->nrej], 160, "%s", r->reason);
        c->line[c->nrej] = r->line;
    }
    c->nrej++;
    return PCF_OK;
}

static int64_t s_t(const char *iso)
{
    int64_t t;
    cr_assert_eq(sptime_parse_utc(iso, strlen(iso), &t), PCF_OK);
    return t;
}

static pcf_rc s_json(const char *s, size_t len, s_out *o, pcf_error *e)
{
    memset(o, 0, sizeof *o);
    outage_sink sink = {s_rec, s_rej, o};
    return outage_parse_json(s, len, "o.json", &sink, NULL, e);
}

static pcf_rc s_json_file(const char *path, s_out *o, pcf_error *e)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return s_json(buf, len, o, e);
}

static pcf_rc s_csv(const char *path, s_out *o, pcf_error *e)
{
    memset(o, 0, sizeof *o);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    outage_sink sink = {s_rec, s_rej, o};
    pcf_rc rc = outage_parse_ukpn_csv(f, "ukpn.csv", &sink, NULL, e);
    fclose(f);
    return rc;
}

Test(ingest_outage, json_fixture)
{
    static s_out o;
    pcf_error e;
    cr_assert_eq(s_json_file("tests/data/ingest/outages.json", &o, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(o.n, 3);
    cr_assert_eq(o.nrej, 0);
    cr_assert_str_eq(o.id[1], "OUT-1");
    cr_assert_eq(o.rev[1], 2);
    cr_assert_str_eq(o.status[1], "confirmed");
    cr_assert_eq(o.start[0], s_t("2026-06-01T07:00:00Z"));
    cr_assert_eq(o.end[1], s_t("2026-06-01T17:00:00Z"));
    cr_assert(!o.planned[2]);
    cr_assert_str_eq(o.eq[2], "NINF-GT1");
}

Test(ingest_outage, cancelled_outage_revised_again)
{
    static s_out o;
    pcf_error e;
    cr_assert_eq(s_json_file("tests/data/ingest/outages_cancel_revise.json", &o, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(o.n, 2);
    cr_assert_str_eq(o.status[0], "cancelled");
    cr_assert_str_eq(o.status[1], "planned");
    cr_assert_eq(o.rev[1], 4);
}

Test(ingest_outage, json_hostile_records)
{
    static s_out o;
    pcf_error e;
    const char *in = "[{\"outage_id\":\"A\",\"revision\":1,\"equipment_id\":\"E\",\"kind\":\"planned\","
                     "\"status\":\"planned\",\"start\":\"2026-06-01T10:00Z\",\"end\":\"2026-06-01T09:00Z\"},"
                     "{\"outage_id\":\"B\",\"revision\":0,\"equipment_id\":\"E\",\"kind\":\"planned\","
                     "\"status\":\"planned\",\"start\":\"2026-06-01T10:00Z\",\"end\":\"2026-06-01T11:00Z\"},"
                     "{\"outage_id\":\"C\",\"revision\":1,\"equipment_id\":\"E\",\"kind\":\"planned\","
                     "\"status\":\"postponed\",\"start\":\"2026-06-01T10:00Z\",\"end\":\"2026-06-01T11:00Z\"},"
                     "{\"outage_id\":\"D\",\"revision\":1,\"equipment_id\":\"E\",\"kind\":\"planned\","
                     "\"status\":\"planned\",\"start\":\"2026-06-01T10:00\",\"end\":\"2026-06-01T11:00Z\"},"
                     "{\"outage_id\":\"E\",\"revison\":1},"
                     "{\"outage_id\":\"\",\"revision\":1,\"equipment_id\":\"E\",\"kind\":\"planned\","
                     "\"status\":\"planned\",\"start\":\"2026-06-01T10:00Z\",\"end\":\"2026-06-01T11:00Z\"},"
                     "7,"
                     "{\"outage_id\":\"G\",\"revision\":1,\"equipment_id\":\"E\",\"kind\":\"fault\","
                     "\"status\":\"planned\",\"start\":\"2026-06-01T10:00Z\",\"end\":\"2026-06-01T11:00Z\"}]";
    cr_assert_eq(s_json(in, strlen(in), &o, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(o.n, 0);
    cr_assert_eq(o.nrej, 8);
    cr_assert_str_eq(o.field[0], "end");
    cr_assert_str_eq(o.field[1], "revision");
    cr_assert_str_eq(o.field[2], "status");
    cr_assert_str_eq(o.field[3], "start");
    cr_assert_str_eq(o.field[4], "revison");
    cr_assert_str_eq(o.field[5], "outage_id");
    cr_assert_eq(o.line[6], 7);
    cr_assert_str_eq(o.field[7], "kind");
}

Test(ingest_outage, json_malformed_and_truncated)
{
    static s_out o;
    pcf_error e;
    const char *t = "{\"outages\": [{\"outage_id\": \"A\", \"rev";
    cr_assert_eq(s_json(t, strlen(t), &o, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "malformed JSON") != NULL);
    cr_assert_eq(s_json("{\"outage\": []}", 14, &o, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_json("", 0, &o, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_json("{\"outages\": []}", 15, &o, &e), PCF_OK);
    cr_assert_eq(o.n + o.nrej, 0);
}

Test(ingest_outage, ukpn_csv_and_clock_change_days)
{
    static s_out o;
    pcf_error e;
    cr_assert_eq(s_csv("tests/data/ingest/ukpn_outages.csv", &o, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(o.n, 2);
    cr_assert_str_eq(o.id[0], "EHV-1001");
    cr_assert_str_eq(o.eq[0], "BRIG-NINF-1");
    cr_assert_eq(o.rev[0], 0);
    cr_assert(o.planned[0]);
    cr_assert_str_eq(o.status[0], "confirmed");
    cr_assert_eq(o.start[0], s_t("2026-06-01T07:00:00Z"));     /* BST */
    cr_assert_eq(o.end[0], s_t("2026-06-01T15:30:00Z"));
    /* 25/10/2026 00:30 BST to 03:00 GMT: 3.5 hours, not 2.5. */
    cr_assert_str_eq(o.status[1], "planned");
    cr_assert_eq(o.end[1] - o.start[1], 3 * 3600 + 1800);
    /* 01:30 on the autumn day is ambiguous; on the spring day it does not exist. */
    cr_assert_eq(o.nrej, 2);
    cr_assert_eq(o.line[0], 4);
    cr_assert(strstr(o.reason[0], "ambiguous") != NULL, "%s", o.reason[0]);
    cr_assert_eq(o.line[1], 5);
    cr_assert(strstr(o.reason[1], "non-existent") != NULL, "%s", o.reason[1]);
}

Test(ingest_outage, ukpn_csv_wrong_header_and_empty)
{
    static s_out o;
    pcf_error e;
    FILE *f = fmemopen((void *)"outageid,circuitid\nA,B\n", 23, "r");
    outage_sink sink = {s_rec, s_rej, &o};
    cr_assert_eq(outage_parse_ukpn_csv(f, "x.csv", &sink, NULL, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "wrong header") != NULL);
    fclose(f);
    f = fmemopen((void *)"\n", 1, "r");
    cr_assert_eq(outage_parse_ukpn_csv(f, "x.csv", &sink, NULL, &e), PCF_ERR_PARSE);
    fclose(f);
}
