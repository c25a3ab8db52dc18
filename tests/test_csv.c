/* test_csv.c -- the streaming CSV reader: RFC 4180 cases, limits, errors. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"

/* A reader over an in-memory copy of len bytes of s (s may hold NULs). */
typedef struct {
    FILE *f;
    csv_reader *r;
} s_csvfix;

static s_csvfix s_open(const char *s, size_t len, size_t max)
{
    s_csvfix fx;
    fx.f = fmemopen((void *)s, len, "r");
    cr_assert_not_null(fx.f);
    fx.r = csv_new(fx.f, "t.csv", max);
    cr_assert_not_null(fx.r);
    return fx;
}

static void s_close(s_csvfix *fx)
{
    csv_destroy(&fx->r);
    cr_assert_null(fx->r);
    fclose(fx->f);
}

static void s_expect(csv_reader *r, size_t n, const char *const *want)
{
    pcf_error e;
    cr_assert_eq(csv_next(r, &e), PCF_OK);
    cr_assert(!csv_done(r));
    cr_assert_eq(csv_count(r), n, "got %zu fields", csv_count(r));
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(csv_field(r, i), want[i]);
        cr_assert_eq(csv_field_len(r, i), strlen(want[i]));
    }
}

static void s_expect_done(csv_reader *r)
{
    pcf_error e;
    cr_assert_eq(csv_next(r, &e), PCF_OK);
    cr_assert(csv_done(r));
    cr_assert_eq(csv_count(r), 0);
}

Test(csv, simple_lf_records_and_line_numbers)
{
    const char *in = "a,b,c\n1,2,3\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    s_expect(fx.r, 3, (const char *[]){"a", "b", "c"});
    cr_assert_eq(csv_line(fx.r), 1);
    cr_assert(!csv_truncated(fx.r));
    s_expect(fx.r, 3, (const char *[]){"1", "2", "3"});
    cr_assert_eq(csv_line(fx.r), 2);
    s_expect_done(fx.r);
    s_expect_done(fx.r);    /* stays done */
    s_close(&fx);
}

Test(csv, crlf_bom_and_empty_fields)
{
    const char *in = "\xEF\xBB\xBFx,,y\r\n,\r\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    s_expect(fx.r, 3, (const char *[]){"x", "", "y"});
    s_expect(fx.r, 2, (const char *[]){"", ""});
    cr_assert_eq(csv_line(fx.r), 2);
    s_expect_done(fx.r);
    s_close(&fx);
}

Test(csv, quotes_escapes_and_embedded_newlines)
{
    const char *in = "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n\"\",z\nnext,1\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    s_expect(fx.r, 3, (const char *[]){"a,b", "say \"hi\"", "two\nlines"});
    cr_assert_eq(csv_line(fx.r), 1);
    s_expect(fx.r, 2, (const char *[]){"", "z"});
    cr_assert_eq(csv_line(fx.r), 3);      /* the quoted newline counted */
    s_expect(fx.r, 2, (const char *[]){"next", "1"});
    cr_assert_eq(csv_line(fx.r), 4);
    s_expect_done(fx.r);
    s_close(&fx);
}

Test(csv, blank_line_is_zero_fields)
{
    const char *in = "a\n\n\r\nb\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    s_expect(fx.r, 1, (const char *[]){"a"});
    s_expect(fx.r, 0, NULL);
    cr_assert_eq(csv_line(fx.r), 2);
    cr_assert_null(csv_field(fx.r, 0));
    cr_assert_eq(csv_field_len(fx.r, 0), 0);
    s_expect(fx.r, 0, NULL);
    s_expect(fx.r, 1, (const char *[]){"b"});
    cr_assert_eq(csv_line(fx.r), 4);
    s_expect_done(fx.r);
    s_close(&fx);
}

Test(csv, empty_file_is_done_at_once)
{
    s_csvfix fx = s_open("", 0, 0);
    s_expect_done(fx.r);
    s_close(&fx);
    const char *bom = "\xEF\xBB\xBF";
    fx = s_open(bom, 3, 0);
    s_expect_done(fx.r);
    s_close(&fx);
}

Test(csv, truncated_last_line_is_flagged)
{
    const char *in = "a,b\nc,d";
    s_csvfix fx = s_open(in, strlen(in), 0);
    s_expect(fx.r, 2, (const char *[]){"a", "b"});
    cr_assert(!csv_truncated(fx.r));
    s_expect(fx.r, 2, (const char *[]){"c", "d"});
    cr_assert(csv_truncated(fx.r));
    s_expect_done(fx.r);
    s_close(&fx);

    const char *q = "\"x\",";   /* ends after a separator: an empty last field */
    fx = s_open(q, strlen(q), 0);
    s_expect(fx.r, 2, (const char *[]){"x", ""});
    cr_assert(csv_truncated(fx.r));
    s_close(&fx);
}

Test(csv, unterminated_quote_ends_input)
{
    const char *in = "ok,1\n\"never\nclosed,2\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    pcf_error e;
    s_expect(fx.r, 2, (const char *[]){"ok", "1"});
    cr_assert_eq(csv_next(fx.r, &e), PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "t.csv:2: unterminated quoted field at end of file");
    cr_assert(csv_done(fx.r));
    s_close(&fx);
}

Test(csv, stray_quotes_are_errors_and_reader_resyncs)
{
    const char *in = "a\"b,1\n\"a\"b,2\ngood,3\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    pcf_error e;
    cr_assert_eq(csv_next(fx.r, &e), PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "t.csv:1: stray quote inside unquoted field");
    cr_assert_eq(csv_count(fx.r), 0);
    cr_assert_eq(csv_next(fx.r, &e), PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "t.csv:2: stray text after closing quote");
    s_expect(fx.r, 2, (const char *[]){"good", "3"});
    cr_assert_eq(csv_line(fx.r), 3);
    s_expect_done(fx.r);
    s_close(&fx);
}

Test(csv, embedded_nul_is_an_error)
{
    const char in[] = "a,b\nc\0d,e\nf,g\n";
    s_csvfix fx = s_open(in, sizeof in - 1, 0);
    pcf_error e;
    s_expect(fx.r, 2, (const char *[]){"a", "b"});
    cr_assert_eq(csv_next(fx.r, &e), PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "t.csv:2: embedded NUL byte");
    s_expect(fx.r, 2, (const char *[]){"f", "g"});
    s_close(&fx);
}

Test(csv, bare_cr_is_an_error)
{
    const char *in = "a\rb\nc\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    pcf_error e;
    cr_assert_eq(csv_next(fx.r, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "carriage return") != NULL);
    s_expect(fx.r, 1, (const char *[]){"c"});
    s_close(&fx);
}

Test(csv, line_too_long_is_limited_then_skipped)
{
    const char *in = "abcdefghij,klm\nshort\n";
    s_csvfix fx = s_open(in, strlen(in), 8);
    pcf_error e;
    cr_assert_eq(csv_next(fx.r, &e), PCF_ERR_LIMIT);
    cr_assert_str_eq(e.msg, "t.csv:1: record longer than 8 bytes");
    s_expect(fx.r, 1, (const char *[]){"short"});
    cr_assert_eq(csv_line(fx.r), 2);
    s_close(&fx);
}

Test(csv, exact_limit_is_accepted)
{
    const char *in = "12345678\n";       /* 8 bytes before the newline */
    s_csvfix fx = s_open(in, strlen(in), 9);
    s_expect(fx.r, 1, (const char *[]){"12345678"});
    s_close(&fx);
}

Test(csv, many_fields_and_long_record_grow_buffers)
{
    size_t n = 5000;
    char *in = malloc(n * 2 + 1);
    for (size_t i = 0; i < n; i++) {
        in[2 * i] = 'x';
        in[2 * i + 1] = i + 1 < n ? ',' : '\n';
    }
    s_csvfix fx = s_open(in, n * 2, 20000);
    pcf_error e;
    cr_assert_eq(csv_next(fx.r, &e), PCF_OK);
    cr_assert_eq(csv_count(fx.r), n);
    cr_assert_str_eq(csv_field(fx.r, n - 1), "x");
    s_close(&fx);
    free(in);
}

Test(csv, records_span_read_buffer_boundaries)
{
    /* 200,000 records of "i,value" cross the 64 KiB read-ahead many times. */
    size_t cap = 4u << 20, used = 0;
    char *in = malloc(cap);
    for (int i = 0; i < 200000; i++)
        used += (size_t)snprintf(in + used, cap - used, "%d,\"v%d\"\n", i, i);
    s_csvfix fx = s_open(in, used, 0);
    pcf_error e;
    char want[32];
    for (int i = 0; i < 200000; i++) {
        cr_assert_eq(csv_next(fx.r, &e), PCF_OK);
        cr_assert_eq(csv_count(fx.r), 2);
        snprintf(want, sizeof want, "v%d", i);
        if (strcmp(csv_field(fx.r, 1), want) != 0)
            cr_assert_fail("record %d: %s", i, csv_field(fx.r, 1));
    }
    cr_assert_eq(csv_line(fx.r), 200000);
    s_expect_done(fx.r);
    s_close(&fx);
    free(in);
}

Test(csv, header_check)
{
    const char *names[] = {"timestamp", "point_id", "value", "quality"};
    const char *in = " Timestamp ,point_id,VALUE,quality\r\n";
    s_csvfix fx = s_open(in, strlen(in), 0);
    pcf_error e;
    cr_assert_eq(csv_header(fx.r, names, 4, &e), PCF_OK);
    s_close(&fx);

    const char *bad = "timestamp,tx_id,value,quality\n";
    fx = s_open(bad, strlen(bad), 0);
    cr_assert_eq(csv_header(fx.r, names, 4, &e), PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "t.csv:1: wrong header: expected 'timestamp,point_id,value,quality' (4 columns), got 4 columns");
    s_close(&fx);

    fx = s_open("", 0, 0);
    cr_assert_eq(csv_header(fx.r, names, 4, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "empty file") != NULL);
    s_close(&fx);
}

Test(csv, new_rejects_bad_arguments)
{
    cr_assert_null(csv_new(NULL, "x", 0));
    FILE *f = fmemopen((void *)"a", 1, "r");
    cr_assert_null(csv_new(f, "x", CSV_MAX_MAX_LINE + 1));
    csv_reader *r = csv_new(f, NULL, 0);
    cr_assert_str_eq(csv_source(r), "<csv>");
    csv_destroy(&r);
    csv_destroy(&r);    /* twice is safe */
    fclose(f);
}
