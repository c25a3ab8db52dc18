/* test_parse.c -- checked number parsing accepts exactly its grammar. */
#include <criterion/criterion.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"

static pcf_rc s_pd(const char *s, double *v)
{
    return parse_double(s, strlen(s), v);
}

static pcf_rc s_pdx(const char *s, double *v)
{
    return parse_double_ext(s, strlen(s), v);
}

static pcf_rc s_pl(const char *s, long *v)
{
    return parse_long(s, strlen(s), v);
}

Test(parse, double_accepts_decimal_and_scientific)
{
    double v = 0;
    cr_assert_eq(s_pd("1.5", &v), PCF_OK);
    cr_assert_eq(v, 1.5);
    cr_assert_eq(s_pd("-0.25", &v), PCF_OK);
    cr_assert_eq(v, -0.25);
    cr_assert_eq(s_pd("+3", &v), PCF_OK);
    cr_assert_eq(v, 3.0);
    cr_assert_eq(s_pd(".5", &v), PCF_OK);
    cr_assert_eq(v, 0.5);
    cr_assert_eq(s_pd("5.", &v), PCF_OK);
    cr_assert_eq(v, 5.0);
    cr_assert_eq(s_pd("1e3", &v), PCF_OK);
    cr_assert_eq(v, 1000.0);
    cr_assert_eq(s_pd("2.5E-02", &v), PCF_OK);
    cr_assert_eq(v, 0.025);
    cr_assert_eq(s_pd("0.10000000000000001", &v), PCF_OK);
    cr_assert_eq(v, 100.0 / 1e3);
    cr_assert_eq(s_pd("1e-320", &v), PCF_OK);   /* subnormal: accepted */
    cr_assert(v > 0 && v < 1e-300);
    cr_assert_eq(s_pd("1e-999", &v), PCF_OK);   /* underflow to zero */
    cr_assert_eq(v, 0.0);
}

Test(parse, double_rejects_junk)
{
    const char *bad[] = { "", " 1", "1 ", "1x", "x1", "0x10", "0x1p3", "inf", "nan",
                          "Inf", "-Inf", "1e", "1e+", "e5", ".", "-", "+", "1.2.3",
                          "1e5.5", "--1", "1,5", "\t1", "1\n", "1e999", "-1e999",
                          "infinity", "1d5" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = 42.0;
        cr_assert_eq(s_pd(bad[i], &v), PCF_ERR_PARSE, "accepted \"%s\"", bad[i]);
        cr_assert_eq(v, 42.0, "changed output on \"%s\"", bad[i]);
    }
}

Test(parse, double_never_reads_past_len)
{
    double v = 0;
    /* the span is "12", the bytes after it must not be looked at */
    cr_assert_eq(parse_double("12abc", 2, &v), PCF_OK);
    cr_assert_eq(v, 12.0);
    cr_assert_eq(parse_double("1.5e3xyz", 5, &v), PCF_OK);  /* "1.5e3" */
    cr_assert_eq(v, 1500.0);
    cr_assert_eq(parse_double("1.5e3xyz", 4, &v), PCF_ERR_PARSE);  /* "1.5e" */
    char buf[3] = { '7', '5', '5' };  /* not NUL-terminated at all */
    cr_assert_eq(parse_double(buf, 2, &v), PCF_OK);
    cr_assert_eq(v, 75.0);
    long l = 0;
    cr_assert_eq(parse_long(buf, 3, &l), PCF_OK);
    cr_assert_eq(l, 755);
}

Test(parse, double_length_bound)
{
    char buf[PARSE_MAX_LEN + 2];
    double v = 0;
    memset(buf, '1', sizeof buf);
    buf[0] = '0';
    buf[1] = '.';
    cr_assert_eq(parse_double(buf, PARSE_MAX_LEN, &v), PCF_OK);
    cr_assert_eq(parse_double(buf, PARSE_MAX_LEN + 1, &v), PCF_ERR_PARSE);
    cr_assert_eq(parse_double(NULL, 1, &v), PCF_ERR_PARSE);
}

Test(parse, double_ignores_locale)
{
    /* de_DE uses ',' as the decimal point; strtod would stop at '.'.  The
     * locale may not be installed here, in which case this still checks C. */
    const char *old = setlocale(LC_NUMERIC, NULL);
    char saved[64];
    snprintf(saved, sizeof saved, "%s", old ? old : "C");
    setlocale(LC_NUMERIC, "de_DE.UTF-8");
    double v = 0;
    pcf_rc rc = s_pd("1.5", &v);
    pcf_rc rc2 = s_pd("1,5", &v);
    setlocale(LC_NUMERIC, saved);
    cr_assert_eq(rc, PCF_OK);
    cr_assert_eq(rc2, PCF_ERR_PARSE);
    cr_assert_eq(s_pd("1.5", &v), PCF_OK);
    cr_assert_eq(v, 1.5);
}

Test(parse, double_ext_accepts_octave_specials)
{
    double v = 0;
    cr_assert_eq(s_pdx("Inf", &v), PCF_OK);
    cr_assert(isinf(v) && v > 0);
    cr_assert_eq(s_pdx("-Inf", &v), PCF_OK);
    cr_assert(isinf(v) && v < 0);
    cr_assert_eq(s_pdx("+inf", &v), PCF_OK);
    cr_assert(isinf(v) && v > 0);
    cr_assert_eq(s_pdx("INF", &v), PCF_OK);
    cr_assert(isinf(v) && v > 0);
    cr_assert_eq(s_pdx("NaN", &v), PCF_OK);
    cr_assert(isnan(v));
    cr_assert_eq(s_pdx("nan", &v), PCF_OK);
    cr_assert(isnan(v));
    cr_assert_eq(s_pdx("2.5", &v), PCF_OK);
    cr_assert_eq(v, 2.5);
    const char *bad[] = { "", "Infinity", "In", "-", "--Inf", "NaN1", " Inf", "1e999", "nanx" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(s_pdx(bad[i], &v), PCF_ERR_PARSE, "accepted \"%s\"", bad[i]);
    cr_assert_eq(parse_double_ext("Infxx", 3, &v), PCF_OK);
    cr_assert(isinf(v));
}

Test(parse, long_checked)
{
    long v = 0;
    cr_assert_eq(s_pl("0", &v), PCF_OK);
    cr_assert_eq(v, 0);
    cr_assert_eq(s_pl("-42", &v), PCF_OK);
    cr_assert_eq(v, -42);
    cr_assert_eq(s_pl("+7", &v), PCF_OK);
    cr_assert_eq(v, 7);
    cr_assert_eq(s_pl("9223372036854775807", &v), PCF_OK);
    cr_assert_eq(v, 9223372036854775807L);
    cr_assert_eq(s_pl("-9223372036854775808", &v), PCF_OK);
    v = 5;
    const char *bad[] = { "", "-", "+", " 1", "1 ", "1.0", "1e3", "0x10", "12a",
                          "9223372036854775808", "-9223372036854775809",
                          "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long w = 5;
        cr_assert_eq(s_pl(bad[i], &w), PCF_ERR_PARSE, "accepted \"%s\"", bad[i]);
        cr_assert_eq(w, 5);
    }
}
