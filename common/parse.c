/*
 * parse.c -- checked number parsing; see parse.h for the rules.
 *
 * How: the span is first checked against the exact grammar by hand (so
 * strtod's extras -- leading blanks, hex floats, "infinity", locale
 * digits -- can never slip through), then copied into a bounded local
 * buffer to get the NUL terminator strtod needs, and converted with
 * strtod_l in the "C" locale so a caller's setlocale() cannot turn
 * "1.5" into 1.  newlocale(..., "C", 0) returns glibc's static C locale
 * object without allocating, so doing it per call is cheap.
 *
 * Fast path (Clinger's): when the digits form an integer m <= 2^53 and the
 * decimal exponent e satisfies |e| <= 22, both m and 10^|e| are exact
 * doubles, so the one IEEE multiplication or division m * 10^e / m / 10^-e
 * is correctly rounded -- the same double strtod returns -- at a fraction
 * of the cost.  Case files are mostly such numbers; everything else takes
 * the strtod_l path.
 */
#include "parse.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int s_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* True when s[0..len) is exactly [+-] (D+ [. D*] | . D+) [(e|E) [+-] D+]. */
static int s_is_decimal(const char *s, size_t len)
{
    size_t i = 0, mant = 0;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    while (i < len && s_is_digit(s[i])) {
        i++;
        mant++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s_is_digit(s[i])) {
            i++;
            mant++;
        }
    }
    if (mant == 0)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        while (i < len && s_is_digit(s[i])) {
            i++;
            exp++;
        }
        if (exp == 0)
            return 0;
    }
    return i == len;
}

/* Case-insensitive comparison of the span with a lower-case word. */
static int s_word_eq(const char *s, size_t len, const char *word)
{
    size_t n = strlen(word);
    if (len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* The fast path described above; 0 when it does not apply.  The span has
 * already been checked against the grammar. */
static int s_fast_decimal(const char *s, size_t len, double *out)
{
    static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                                  1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                                  1e20, 1e21, 1e22 };
    const uint64_t limit = (uint64_t)1 << 53;
    uint64_t m = 0;
    long e = 0;
    size_t i = 0;
    int neg = 0, frac = 0;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i++;
    }
    for (; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            frac = 1;
            continue;
        }
        if (c == 'e' || c == 'E')
            break;
        m = m * 10 + (uint64_t)(c - '0');
        if (m > limit)
            return 0;
        e -= frac;
    }
    if (i < len) {                      /* exponent: at most a few digits matter */
        long x = 0;
        int eneg = 0;
        i++;
        if (s[i] == '+' || s[i] == '-')
            eneg = s[i++] == '-';
        for (; i < len; i++) {
            x = x * 10 + (s[i] - '0');
            if (x > 1000)
                return 0;
        }
        e += eneg ? -x : x;
    }
    if (e < -22 || e > 22)
        return 0;
    double v = (double)m;
    v = e < 0 ? v / p10[-e] : v * p10[e];
    *out = neg ? -v : v;
    return 1;
}

pcf_rc parse_double(const char *s, size_t len, double *out)
{
    char buf[PARSE_MAX_LEN + 1];
    if (!s || !out || len == 0 || len > PARSE_MAX_LEN || !s_is_decimal(s, len))
        return PCF_ERR_PARSE;
    if (s_fast_decimal(s, len, out))
        return PCF_OK;
    memcpy(buf, s, len);
    buf[len] = '\0';

    locale_t c_loc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (c_loc == (locale_t)0)
        return PCF_ERR_PARSE;
    char *end = NULL;
    errno = 0;
    double v = strtod_l(buf, &end, c_loc);
    int e = errno;
    freelocale(c_loc);

    if (end != buf + len)
        return PCF_ERR_PARSE;
    /* ERANGE also flags underflow, which we accept; overflow is +-HUGE_VAL. */
    if ((e == ERANGE && fabs(v) == HUGE_VAL) || !isfinite(v))
        return PCF_ERR_PARSE;
    *out = v;
    return PCF_OK;
}

pcf_rc parse_double_ext(const char *s, size_t len, double *out)
{
    if (!s || !out)
        return PCF_ERR_PARSE;
    if (s_word_eq(s, len, "nan")) {
        *out = NAN;
        return PCF_OK;
    }
    if (len > 0 && (s[0] == '+' || s[0] == '-') && s_word_eq(s + 1, len - 1, "inf")) {
        *out = s[0] == '-' ? -INFINITY : INFINITY;
        return PCF_OK;
    }
    if (s_word_eq(s, len, "inf")) {
        *out = INFINITY;
        return PCF_OK;
    }
    return parse_double(s, len, out);
}

pcf_rc parse_long(const char *s, size_t len, long *out)
{
    char buf[PARSE_MAX_LEN + 1];
    size_t i = 0;
    if (!s || !out || len == 0 || len > PARSE_MAX_LEN)
        return PCF_ERR_PARSE;
    if (s[0] == '+' || s[0] == '-')
        i++;
    if (i == len)
        return PCF_ERR_PARSE;
    for (; i < len; i++)
        if (!s_is_digit(s[i]))
            return PCF_ERR_PARSE;
    memcpy(buf, s, len);
    buf[len] = '\0';

    char *end = NULL;
    errno = 0;
    long v = strtol(buf, &end, 10);
    if (errno == ERANGE || end != buf + len)
        return PCF_ERR_PARSE;
    *out = v;
    return PCF_OK;
}
