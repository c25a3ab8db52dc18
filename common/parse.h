/*
 * parse.h -- checked number parsing of byte spans.
 *
 * Every number the project reads from a file, a message or a command line
 * goes through here instead of atoi/strtol/strtod, so that the same rules
 * apply everywhere: the whole span must be the number (no leading or
 * trailing spaces, no trailing junk), the span need not be NUL-terminated
 * and is never read past `len`, results do not depend on the process
 * locale, and overflow is an error rather than a silent HUGE_VAL/LONG_MAX.
 *
 * The functions return PCF_OK or PCF_ERR_PARSE and do not fill a message:
 * only the caller knows the "source:line" to put in front of it.  On error
 * *out is left untouched.
 */
#ifndef PCF_PARSE_H
#define PCF_PARSE_H

#include <stddef.h>

#include "error.h"

/* Longest span accepted; longer spans are an error (no real number needs
 * more: 17 significant digits, a sign, a point and an exponent). */
#define PARSE_MAX_LEN 64

/* A finite decimal number: [+-] digits [. digits] [(e|E) [+-] digits],
 * or [+-] . digits [exponent].  Rejects empty spans, spaces, hex floats,
 * inf/nan and values that overflow a double.  Underflow to a subnormal or
 * zero is accepted (that is the closest double). */
pcf_rc parse_double(const char *s, size_t len, double *out);

/* As parse_double, but also accepts Inf, +Inf, -Inf and NaN in any letter
 * case, as MATPOWER/Octave write them. */
pcf_rc parse_double_ext(const char *s, size_t len, double *out);

/* A decimal integer [+-] digits that fits a long. */
pcf_rc parse_long(const char *s, size_t len, long *out);

#endif
