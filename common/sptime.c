/*
 * sptime.c -- calendar arithmetic, ISO 8601 parsing and EU/UK clock rules;
 * the contract is in sptime.h.
 *
 * Calendar: Howard Hinnant's days_from_civil / civil_from_days algorithms
 * (exact for the proleptic Gregorian calendar, no tables, no loops).
 * Summer time: its two switching instants in a year are computed directly
 * from the last Sunday of March and of October, so an offset lookup is a
 * couple of integer operations.  A local time L maps to the instants L - std
 * and L - std - 3600; each is a real answer only when the zone's offset at
 * that instant matches, which tells a gap (no answer) from a repeat (two).
 */
#include "sptime.h"

#include <stdio.h>
#include <string.h>

#define SP_SECONDS 1800
#define YEAR_MIN 1900
#define YEAR_MAX 2999

/* ---- calendar ---------------------------------------------------------- */

static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

static int64_t s_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool s_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int s_month_days(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && s_leap(y) ? 29 : days[m - 1];
}

static bool s_date_valid(int y, int m, int d)
{
    return y >= YEAR_MIN && y <= YEAR_MAX && m >= 1 && m <= 12 && d >= 1 && d <= s_month_days(y, m);
}

bool sptime_civil_valid(const sptime_civil *c)
{
    return s_date_valid(c->year, c->month, c->day) && c->hour >= 0 && c->hour <= 23 &&
           c->min >= 0 && c->min <= 59 && c->sec >= 0 && c->sec <= 59;
}

int64_t sptime_from_civil(const sptime_civil *c)
{
    return s_days_from_civil(c->year, c->month, c->day) * 86400 + c->hour * 3600 + c->min * 60 + c->sec;
}

void sptime_to_civil(int64_t t, sptime_civil *c)
{
    int64_t days = s_floordiv(t, 86400);
    int64_t rem = t - days * 86400;
    s_civil_from_days(days, &c->year, &c->month, &c->day);
    c->hour = (int)(rem / 3600);
    c->min = (int)(rem % 3600 / 60);
    c->sec = (int)(rem % 60);
}

size_t sptime_format_utc(int64_t t, char *buf, size_t n)
{
    if (n < SPTIME_ISO_LEN)
        return 0;
    sptime_civil c;
    sptime_to_civil(t, &c);
    if (c.year < 0 || c.year > 9999)
        return 0;
    int k = snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", c.year, c.month, c.day, c.hour, c.min, c.sec);
    return k > 0 && (size_t)k < n ? (size_t)k : 0;
}

/* ---- parsing ----------------------------------------------------------- */

/* Reads exactly n decimal digits at s[*i]. */
static bool s_digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return true;
}

static bool s_expect(const char *s, size_t len, size_t *i, char ch)
{
    if (*i >= len || s[*i] != ch)
        return false;
    (*i)++;
    return true;
}

/* Zone designator from s[*i] to the end. */
static bool s_zone(const char *s, size_t len, size_t i, int *offset)
{
    if (len - i == 1 && (s[i] == 'Z' || s[i] == 'z')) {
        *offset = 0;
        return true;
    }
    if (s[i] != '+' && s[i] != '-')
        return false;
    int sign = s[i] == '-' ? -1 : 1, hh = 0, mm = 0;
    i++;
    if (!s_digits(s, len, &i, 2, &hh))
        return false;
    if (i < len) {
        s_expect(s, len, &i, ':');  /* +HH:MM or +HHMM */
        if (!s_digits(s, len, &i, 2, &mm))
            return false;
    }
    if (i != len || mm > 59 || hh * 60 + mm > 18 * 60)
        return false;
    *offset = sign * (hh * 3600 + mm * 60);
    return true;
}

pcf_rc sptime_parse_iso(const char *s, size_t len, sptime_civil *c, bool *has_offset, int *offset)
{
    sptime_civil t = {0};
    size_t i = 0;
    if (!s || len > 64)
        return PCF_ERR_PARSE;
    if (!s_digits(s, len, &i, 4, &t.year) || !s_expect(s, len, &i, '-') ||
        !s_digits(s, len, &i, 2, &t.month) || !s_expect(s, len, &i, '-') ||
        !s_digits(s, len, &i, 2, &t.day))
        return PCF_ERR_PARSE;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return PCF_ERR_PARSE;
    i++;
    if (!s_digits(s, len, &i, 2, &t.hour) || !s_expect(s, len, &i, ':') || !s_digits(s, len, &i, 2, &t.min))
        return PCF_ERR_PARSE;
    if (i < len && s[i] == ':') {
        i++;
        if (!s_digits(s, len, &i, 2, &t.sec))
            return PCF_ERR_PARSE;
        if (i < len && s[i] == '.') {
            size_t start = ++i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == start || i - start > 9)
                return PCF_ERR_PARSE;
        }
    }
    if (!sptime_civil_valid(&t))
        return PCF_ERR_PARSE;
    int off = 0;
    bool has = i < len;
    if (has && !s_zone(s, len, i, &off))
        return PCF_ERR_PARSE;
    *c = t;
    *has_offset = has;
    *offset = off;
    return PCF_OK;
}

pcf_rc sptime_parse_utc(const char *s, size_t len, int64_t *out)
{
    sptime_civil c;
    bool has;
    int off;
    if (sptime_parse_iso(s, len, &c, &has, &off) != PCF_OK || !has)
        return PCF_ERR_PARSE;
    *out = sptime_from_civil(&c) - off;
    return PCF_OK;
}

/* ---- zones ------------------------------------------------------------- */

static const sptime_zone s_zones[] = {
    {"Europe/London", 0, true},   {"UTC", 0, false},           {"Etc/UTC", 0, false},
    {"GMT", 0, false},            {"Etc/GMT", 0, false},       {"Europe/Dublin", 0, true},
    {"Europe/Amsterdam", 3600, true}, {"Europe/Berlin", 3600, true}, {"Europe/Brussels", 3600, true},
    {"Europe/Copenhagen", 3600, true}, {"Europe/Madrid", 3600, true}, {"Europe/Oslo", 3600, true},
    {"Europe/Paris", 3600, true}, {"Europe/Rome", 3600, true}, {"Europe/Stockholm", 3600, true},
    {"Europe/Vienna", 3600, true}, {"Europe/Warsaw", 3600, true}, {"Europe/Zurich", 3600, true},
    {"Europe/Prague", 3600, true}, {"Europe/Luxembourg", 3600, true},
};

const sptime_zone *sptime_zone_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof s_zones / sizeof s_zones[0]; i++)
        if (strcmp(s_zones[i].name, name) == 0)
            return &s_zones[i];
    return NULL;
}

const sptime_zone *sptime_london(void)
{
    return &s_zones[0];
}

/* 01:00 UTC on the last Sunday of month m of year y. */
static int64_t s_last_sunday_0100(int y, int m)
{
    int64_t last = s_days_from_civil(y, m, s_month_days(y, m));
    int64_t wd = ((last + 4) % 7 + 7) % 7;     /* 1970-01-01 was a Thursday; 0 = Sunday */
    return (last - wd) * 86400 + 3600;
}

int sptime_zone_offset(const sptime_zone *z, int64_t t)
{
    if (!z->eu_summer)
        return z->std_offset;
    sptime_civil c;
    sptime_to_civil(t, &c);
    if (c.year < 1 || c.year > 9999)
        return z->std_offset;
    bool summer = t >= s_last_sunday_0100(c.year, 3) && t < s_last_sunday_0100(c.year, 10);
    return z->std_offset + (summer ? 3600 : 0);
}

void sptime_local_day(const sptime_zone *z, int64_t t, int64_t *day, int *sec)
{
    int64_t l = t + sptime_zone_offset(z, t);
    *day = s_floordiv(l, 86400);
    *sec = (int)(l - *day * 86400);
}

void sptime_to_local(const sptime_zone *z, int64_t t, sptime_civil *c)
{
    sptime_to_civil(t + sptime_zone_offset(z, t), c);
}

pcf_rc sptime_local_to_utc(const sptime_zone *z, const sptime_civil *c, sptime_fold fold,
                           int64_t *out, const char **why)
{
    if (!sptime_civil_valid(c))
        return PCF_ERR_PARSE;
    int64_t local = sptime_from_civil(c);
    int64_t winter = local - z->std_offset;
    int64_t summer = winter - 3600;
    bool w_ok = sptime_zone_offset(z, winter) == z->std_offset;
    bool s_ok = z->eu_summer && sptime_zone_offset(z, summer) == z->std_offset + 3600;
    if (w_ok && s_ok) {
        if (fold == SPTIME_STRICT) {
            if (why)
                *why = "ambiguous local time (repeated when clocks go back)";
            return PCF_ERR_INVALID;
        }
        *out = fold == SPTIME_EARLIER ? summer : winter;
        return PCF_OK;
    }
    if (!w_ok && !s_ok) {
        if (why)
            *why = "non-existent local time (skipped when clocks go forward)";
        return PCF_ERR_INVALID;
    }
    *out = w_ok ? winter : summer;
    return PCF_OK;
}

/* ---- settlement periods ------------------------------------------------ */

/* Local midnight of y-m-d in London; midnight is never in a gap or repeat
 * because the UK changes at 01:00/02:00 local. */
static int64_t s_london_midnight(int y, int m, int d)
{
    int64_t local = s_days_from_civil(y, m, d) * 86400;
    int64_t t = local;                                  /* try GMT */
    if (sptime_zone_offset(sptime_london(), t) != 0)
        t = local - 3600;                               /* BST */
    return t;
}

int sptime_sp_count(int year, int month, int day)
{
    if (!s_date_valid(year, month, day))
        return -1;
    int64_t start = s_london_midnight(year, month, day);
    int y2, m2, d2;
    s_civil_from_days(s_days_from_civil(year, month, day) + 1, &y2, &m2, &d2);
    int64_t end = s_london_midnight(y2, m2, d2);
    return (int)((end - start) / SP_SECONDS);
}

pcf_rc sptime_sp_start(int year, int month, int day, int sp, int64_t *out)
{
    int n = sptime_sp_count(year, month, day);
    if (n < 0 || sp < 1 || sp > n)
        return PCF_ERR_INVALID;
    *out = s_london_midnight(year, month, day) + (int64_t)(sp - 1) * SP_SECONDS;
    return PCF_OK;
}

void sptime_sp_of(int64_t t, sptime_civil *day, int *sp)
{
    sptime_civil c;
    sptime_to_local(sptime_london(), t, &c);
    int64_t start = s_london_midnight(c.year, c.month, c.day);
    *day = (sptime_civil){c.year, c.month, c.day, 0, 0, 0};
    *sp = (int)((t - start) / SP_SECONDS) + 1;
}
