/* test_ingest_scada.c -- SCADA CSV parser: both formats and every hostile
 * case of issue 4 that the parser itself decides. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "scada_csv.h"
#include "sptime.h"

#define S_MAXROWS 64

typedef struct {
    char point[S_MAXROWS][140];
    int64_t ts[S_MAXROWS];
    double value[S_MAXROWS];
    scada_quality q[S_MAXROWS];
    int n;
    char reason[S_MAXROWS][200];
    char field[S_MAXROWS][40];
    long line[S_MAXROWS];
    int nrej;
} s_rows;

static pcf_rc s_row(void *ctx, const scada_row *row, pcf_error *err)
{
    (void)err;
    s_rows *c = ctx;
    if (c->n < S_MAXROWS) {
        snprintf(c->point[c->n], sizeof c->point[0], "%s", row->point_id);
        c->ts[c->n] = row->ts;
        c->value[c->n] = row->value;
        c->q[c->n] = row->quality;
    }
    c->n++;
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)err;
    s_rows *c = ctx;
    if (c->nrej < S_MAXROWS) {
        snprintf(c->reason[c->nrej], sizeof c->reason[0], "%s", r->reason);
        snprintf(c->field[c->nrej], sizeof c->field[0], "%s", r->field);
        c->line[c->nrej] = r->line;
    }
    c->nrej++;
    return PCF_OK;
}

static pcf_rc s_parse_str(const char *text, size_t len, s_rows *out, scada_stats *st, pcf_error *e)
{
    memset(out, 0, sizeof *out);
    FILE *f = fmemopen((void *)text, len, "r");
    cr_assert_not_null(f);
    scada_sink sink = {s_row, s_rej, out};
    pcf_rc rc = scada_parse(f, "in.csv", &sink, st, e);
    fclose(f);
    return rc;
}

static pcf_rc s_parse(const char *text, s_rows *out, scada_stats *st, pcf_error *e)
{
    return s_parse_str(text, strlen(text), out, st, e);
}

static int64_t s_t(const char *iso)
{
    int64_t t;
    cr_assert_eq(sptime_parse_utc(iso, strlen(iso), &t), PCF_OK);
    return t;
}

Test(ingest_scada, historian_fixture_loads_out_of_order_rows)
{
    static s_rows r;
    scada_stats st;
    pcf_error e;
    FILE *f = fopen("tests/data/ingest/historian_ok.csv", "r");
    cr_assert_not_null(f);
    scada_sink sink = {s_row, s_rej, &r};
    memset(&r, 0, sizeof r);
    cr_assert_eq(scada_parse(f, "historian_ok.csv", &sink, &st, &e), PCF_OK, "%s", e.msg);
    fclose(f);
    cr_assert_eq(st.format, SCADA_FMT_HISTORIAN);
    cr_assert_eq(r.n, 4);
    cr_assert_eq(r.nrej, 0);
    cr_assert_str_eq(r.point[1], "GT1_P");
    cr_assert_eq(r.ts[1], s_t("2026-03-29T01:00:00Z"));     /* +01:00 converted */
    cr_assert_eq(r.ts[2], s_t("2026-03-29T00:00:00Z"));     /* earlier than the row before */
    cr_assert_eq(r.q[1], SCADA_GOOD);
    cr_assert_eq(r.q[2], SCADA_UNCERTAIN);
    cr_assert_float_eq(r.value[1], 12.75, 0);
}

Test(ingest_scada, ukpn_fixture_gives_two_points_per_row)
{
    static s_rows r;
    scada_stats st;
    pcf_error e;
    FILE *f = fopen("tests/data/ingest/ukpn_halfhourly.csv", "r");
    cr_assert_not_null(f);
    scada_sink sink = {s_row, s_rej, &r};
    memset(&r, 0, sizeof r);
    cr_assert_eq(scada_parse(f, "ukpn.csv", &sink, &st, &e), PCF_OK, "%s", e.msg);
    fclose(f);
    cr_assert_eq(st.format, SCADA_FMT_UKPN);
    cr_assert_eq(r.n, 6);
    cr_assert_eq(st.missing, 2);
    cr_assert_str_eq(r.point[0], "brighton_local_33kv_gt2/active_power_mw");
    cr_assert_str_eq(r.point[1], "brighton_local_33kv_gt2/current_amps");
    cr_assert_float_eq(r.value[1], 296.68, 1e-12);
    cr_assert_eq(r.ts[0], s_t("2024-01-01T00:00:00Z"));
    cr_assert_str_eq(r.point[4], "ninfield_132kv_sgt1/active_power_mw");
    cr_assert_str_eq(r.point[5], "ninfield_132kv_sgt1/current_amps");
}

Test(ingest_scada, empty_file)
{
    static s_rows r;
    pcf_error e;
    cr_assert_eq(s_parse("", &r, NULL, &e), PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "in.csv:1: empty file (no header)");
}

Test(ingest_scada, wrong_header)
{
    static s_rows r;
    pcf_error e;
    cr_assert_eq(s_parse("time,point,value,quality\n2026-01-01T00:00Z,P,1,good\n", &r, NULL, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "in.csv:1: wrong header") == e.msg, "%s", e.msg);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(s_parse("timestamp,point_id,value\n", &r, NULL, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "wrong header") != NULL);
}

Test(ingest_scada, header_only_is_fine)
{
    static s_rows r;
    scada_stats st;
    pcf_error e;
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n", &r, &st, &e), PCF_OK);
    cr_assert_eq(st.rows + st.rejected, 0);
}

Test(ingest_scada, truncated_last_line)
{
    static s_rows r;
    scada_stats st;
    pcf_error e;
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n2026-01-01T00:00Z,P,1,good\n2026-01-01T00:30Z,P,1",
                         &r, &st, &e), PCF_OK);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.nrej, 1);
    cr_assert_eq(r.line[0], 3);
    cr_assert(strstr(r.reason[0], "no newline") != NULL);
    /* Even a complete-looking last record is refused without its newline. */
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n2026-01-01T00:30Z,P,1,good", &r, &st, &e), PCF_OK);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(r.nrej, 1);
}

Test(ingest_scada, bad_timestamp)
{
    static s_rows r;
    pcf_error e;
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n"
                         "2026-02-30T00:00Z,P,1,good\n"
                         "yesterday,P,1,good\n"
                         "2026-01-01T00:00Z,P,1,good\n", &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.nrej, 2);
    cr_assert_str_eq(r.field[0], "timestamp");
    cr_assert_eq(r.line[0], 2);
    cr_assert_eq(r.line[1], 3);
}

Test(ingest_scada, local_time_on_clock_change_day_is_refused)
{
    static s_rows r;
    pcf_error e;
    /* 01:30 on 2026-10-25 happens twice in London: without an offset it is
     * ambiguous, so the parser refuses it rather than guess. */
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n"
                         "2026-10-25T01:30:00,P,1,good\n"
                         "2026-10-25T01:30:00+01:00,P,1,good\n"
                         "2026-10-25T01:30:00+00:00,P,2,good\n", &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.nrej, 1);
    cr_assert(strstr(r.reason[0], "UTC offset") != NULL);
    cr_assert_eq(r.n, 2);
    cr_assert_eq(r.ts[1] - r.ts[0], 3600);
}

Test(ingest_scada, nan_inf_and_overflow_values)
{
    static s_rows r;
    pcf_error e;
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n"
                         "2026-01-01T00:00Z,P,NaN,good\n"
                         "2026-01-01T00:00Z,P,inf,good\n"
                         "2026-01-01T00:00Z,P,-Infinity,good\n"
                         "2026-01-01T00:00Z,P,1e999,good\n"
                         "2026-01-01T00:00Z,P,,good\n"
                         "2026-01-01T00:00Z,P,12abc,good\n"
                         "2026-01-01T00:00Z,P,1.5e3,good\n", &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.nrej, 6);
    for (int i = 0; i < 6; i++)
        cr_assert_str_eq(r.field[i], "value");
    cr_assert_eq(r.n, 1);
    cr_assert_float_eq(r.value[0], 1500.0, 0);
}

Test(ingest_scada, bad_quality_field_count_and_ids)
{
    static s_rows r;
    pcf_error e;
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n"
                         "2026-01-01T00:00Z,P,1,excellent\n"
                         "2026-01-01T00:00Z,P,1\n"
                         "2026-01-01T00:00Z,P,1,good,extra\n"
                         "2026-01-01T00:00Z,,1,good\n"
                         "2026-01-01T00:00Z,\"a\tb\",1,good\n", &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(r.nrej, 5);
    cr_assert_str_eq(r.field[0], "quality");
    cr_assert_str_eq(r.reason[1], "expected 4 fields");
    cr_assert_str_eq(r.reason[2], "expected 4 fields");
    cr_assert_str_eq(r.field[3], "point_id");
    cr_assert_str_eq(r.field[4], "point_id");
}

Test(ingest_scada, csv_syntax_errors_are_refused_and_parsing_continues)
{
    static s_rows r;
    pcf_error e;
    const char in[] = "timestamp,point_id,value,quality\n"
                      "2026-01-01T00:00Z,P\"x,1,good\n"
                      "2026-01-01T00:00Z,P\0,1,good\n"
                      "2026-01-01T00:30Z,P,2,good\n";
    cr_assert_eq(s_parse_str(in, sizeof in - 1, &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.nrej, 2);
    cr_assert_str_eq(r.reason[0], "stray quote inside unquoted field");
    cr_assert_str_eq(r.reason[1], "embedded NUL byte");
    cr_assert_eq(r.line[1], 3);
    cr_assert_eq(r.n, 1);
}

Test(ingest_scada, duplicate_rows_are_passed_on_for_the_loader)
{
    /* The parser does not judge duplicates (it streams); the loader's staging
     * step does.  Here both copies reach the sink. */
    static s_rows r;
    pcf_error e;
    cr_assert_eq(s_parse("timestamp,point_id,value,quality\n"
                         "2026-01-01T00:00Z,P,1,good\n"
                         "2026-01-01T00:00Z,P,1,good\n", &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.n, 2);
}

Test(ingest_scada, overlong_line_is_refused)
{
    static s_rows r;
    pcf_error e;
    size_t n = SCADA_MAX_LINE + 200;
    char *in = malloc(n + 200);
    int k = snprintf(in, n + 200, "timestamp,point_id,value,quality\n2026-01-01T00:00Z,");
    memset(in + k, 'x', SCADA_MAX_LINE);
    snprintf(in + k + SCADA_MAX_LINE, 200, ",1,good\n2026-01-01T00:00Z,P,1,good\n");
    cr_assert_eq(s_parse(in, &r, NULL, &e), PCF_OK);
    cr_assert_eq(r.nrej, 1);
    cr_assert(strstr(r.reason[0], "longer than") != NULL);
    cr_assert_eq(r.n, 1);
    free(in);
}

/* A generated file much larger than the parser's buffers: rows stream
 * through a callback, so memory stays bounded by one record. */
static pcf_rc s_count(void *ctx, const scada_row *row, pcf_error *err)
{
    (void)row;
    (void)err;
    (*(long *)ctx)++;
    return PCF_OK;
}

Test(ingest_scada, large_file_streams)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    fputs("timestamp,point_id,value,quality\n", f);
    long want = 300000;
    for (long i = 0; i < want; i++)
        fprintf(f, "2026-01-01T00:%02ld:%02ldZ,P%ld,%ld.5,good\n", (i / 60) % 60, i % 60, i % 97, i);
    long size = ftell(f);
    rewind(f);
    long got = 0;
    scada_sink sink = {s_count, NULL, &got};
    scada_stats st;
    pcf_error e;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    cr_assert_eq(scada_parse(f, "big.csv", &sink, &st, &e), PCF_OK);
    getrusage(RUSAGE_SELF, &after);
    fclose(f);
    cr_assert_eq(got, want);
    cr_assert_eq(st.rejected, 0);
    /* An 11 MB file parsed with well under 1 MB of extra peak memory. */
    cr_assert_gt(size, 10L << 20);
    cr_assert_lt(after.ru_maxrss - before.ru_maxrss, 1024, "peak RSS grew by %ld kB", after.ru_maxrss - before.ru_maxrss);
}
