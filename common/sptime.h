/*
 * sptime.h -- UTC instants, ISO 8601 parsing, Europe/London clock rules and
 * settlement periods.
 *
 * An instant is an int64_t count of seconds since 1970-01-01T00:00:00Z
 * (leap seconds ignored, proleptic Gregorian calendar).  Everything here is
 * pure arithmetic: no TZ, no tzset, no locale, so it is thread-safe and gives
 * the same answer on every machine.
 *
 * ISO 8601 accepted by sptime_parse_iso (years 1900..2999):
 *     YYYY-MM-DD(T|t| )HH:MM[:SS[.f{1,9}]][zone]
 *     zone = Z | z | (+|-)HH:MM | (+|-)HHMM | (+|-)HH   (|offset| <= 18:00)
 * e.g. "2026-03-29T01:00Z", "2024-01-01 00:00:00+00:00" (UK Power
 * Networks), "2026-10-03T00:00" (Open-Meteo local time, no zone).  Fields
 * are range-checked (day against the month, no 24:00, no leap second 60).
 * Fractions of a second are accepted and dropped (instants are seconds).
 *
 * Clock rules: the EU rule in force since 1996 (applied to every year):
 * summer time from 01:00 UTC on the last Sunday of March to 01:00 UTC on
 * the last Sunday of October.  Europe/London is GMT (+0) / BST (+1).
 *
 * Settlement periods are the half-hours of a UK local day: SP 1 starts at
 * local midnight; a day has 48, 46 on the spring change, 50 on the autumn
 * change.
 */
#ifndef PCF_SPTIME_H
#define PCF_SPTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct sptime_civil {
    int year, month, day;       /* 1..12, 1..31 */
    int hour, min, sec;         /* 0..23, 0..59, 0..59 */
} sptime_civil;

/* A time zone this module knows: a standard offset and whether the EU
 * summer-time rule applies.  Returned pointers are to constant data. */
typedef struct sptime_zone {
    const char *name;
    int std_offset;             /* seconds east of UTC in winter */
    bool eu_summer;             /* +3600 s during EU summer time */
} sptime_zone;

/* What to do with an ambiguous local time (the repeated hour in autumn). */
typedef enum sptime_fold {
    SPTIME_STRICT,              /* reject it */
    SPTIME_EARLIER,             /* the first occurrence (summer time) */
    SPTIME_LATER                /* the second occurrence (standard time) */
} sptime_fold;

/* Longest string sptime_format_utc writes, with its NUL. */
#define SPTIME_ISO_LEN 21

/* ---- calendar ---------------------------------------------------------- */

/* True when c is a real date and time of day (also checks the year range). */
bool sptime_civil_valid(const sptime_civil *c);

/* The instant of c read as UTC (c need not be validated, but should be). */
int64_t sptime_from_civil(const sptime_civil *c);

/* The UTC civil time of t. */
void sptime_to_civil(int64_t t, sptime_civil *c);

/* Writes t as "YYYY-MM-DDTHH:MM:SSZ" (PostgreSQL reads it as timestamptz);
 * returns the length, or 0 when n < SPTIME_ISO_LEN. */
size_t sptime_format_utc(int64_t t, char *buf, size_t n);

/* ---- parsing ----------------------------------------------------------- */

/* Parses len bytes of s (not read beyond, need not be NUL-terminated) as
 * the ISO 8601 subset above.  Fills *c with the time as written; when the
 * string has a zone designator *has_offset is true and *offset its value in
 * seconds east of UTC.  PCF_ERR_PARSE on anything else; no message (only
 * the caller knows source:line). */
pcf_rc sptime_parse_iso(const char *s, size_t len, sptime_civil *c, bool *has_offset, int *offset);

/* As sptime_parse_iso but requires a zone designator and returns the
 * instant. */
pcf_rc sptime_parse_utc(const char *s, size_t len, int64_t *out);

/* ---- zones ------------------------------------------------------------- */

/* Looks a zone up by IANA name: UTC, Etc/UTC, GMT, Etc/GMT, Europe/London
 * and the EU zones at +1 (Europe/Amsterdam, Berlin, Brussels, Copenhagen,
 * Madrid, Oslo, Paris, Rome, Stockholm, Vienna, Warsaw...).  NULL if unknown. */
const sptime_zone *sptime_zone_find(const char *name);

/* Europe/London. */
const sptime_zone *sptime_london(void);

/* Offset of z at instant t, seconds east of UTC. */
int sptime_zone_offset(const sptime_zone *z, int64_t t);

/* The local civil time of instant t in z. */
void sptime_to_local(const sptime_zone *z, int64_t t, sptime_civil *c);

/* The local day of instant t in z (days since 1970-01-01, local) and the
 * seconds since that day's local midnight: enough for a half-hour of day
 * or a weekday, without the civil date sptime_to_local works out. */
void sptime_local_day(const sptime_zone *z, int64_t t, int64_t *day, int *sec);

/* Converts a local civil time in z to an instant.  PCF_ERR_INVALID when the
 * time does not exist (spring gap) or is ambiguous under SPTIME_STRICT
 * (autumn repeat); *why (when not NULL) then names which, as a constant
 * string.  PCF_ERR_PARSE when c is not a valid civil time. */
pcf_rc sptime_local_to_utc(const sptime_zone *z, const sptime_civil *c, sptime_fold fold,
                           int64_t *out, const char **why);

/* ---- settlement periods (Europe/London) -------------------------------- */

/* Number of settlement periods of the UK local day y-m-d: 46, 48 or 50;
 * -1 when the date is invalid. */
int sptime_sp_count(int year, int month, int day);

/* Start instant of settlement period sp (1-based) of local day y-m-d.
 * PCF_ERR_INVALID when the date is invalid or sp is out of 1..count. */
pcf_rc sptime_sp_start(int year, int month, int day, int sp, int64_t *out);

/* The local day (year, month, day set; time fields 0) and settlement
 * period holding instant t. */
void sptime_sp_of(int64_t t, sptime_civil *day, int *sp);

#endif
