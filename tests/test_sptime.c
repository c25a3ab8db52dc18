/* test_sptime.c -- ISO 8601 parsing, EU/UK clock rules, settlement periods. */
#include <criterion/criterion.h>
#include <string.h>

#include "sptime.h"

static int64_t s_utc(const char *s)
{
    int64_t t = 0;
    cr_assert_eq(sptime_parse_utc(s, strlen(s), &t), PCF_OK, "%s", s);
    return t;
}

static bool s_bad(const char *s)
{
    sptime_civil c;
    bool has;
    int off;
    return sptime_parse_iso(s, strlen(s), &c, &has, &off) == PCF_ERR_PARSE;
}

Test(sptime, epoch_and_known_instants)
{
    cr_assert_eq(s_utc("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(s_utc("2026-03-29T01:00:00Z"), 1774746000);
    cr_assert_eq(s_utc("2000-02-29T12:34:56Z"), 951827696);
    cr_assert_eq(s_utc("1969-12-31T23:59:59Z"), -1);
}

Test(sptime, offsets_and_separators)
{
    int64_t z = s_utc("2024-01-01T00:00:00Z");
    cr_assert_eq(s_utc("2024-01-01 00:00:00+00:00"), z);   /* UK Power Networks */
    cr_assert_eq(s_utc("2024-01-01T01:00+01:00"), z);
    cr_assert_eq(s_utc("2024-01-01T01:00+0100"), z);
    cr_assert_eq(s_utc("2024-01-01T01:00:00.250+01"), z);  /* fraction dropped */
    cr_assert_eq(s_utc("2023-12-31T18:30:00-05:30"), z);
    cr_assert_eq(s_utc("2024-01-01t00:00:00z") , z, "lower case");
}

Test(sptime, local_time_without_zone)
{
    sptime_civil c;
    bool has = true;
    int off = 99;
    const char *s = "2026-10-03T00:00";
    cr_assert_eq(sptime_parse_iso(s, strlen(s), &c, &has, &off), PCF_OK);
    cr_assert(!has);
    cr_assert_eq(c.year, 2026);
    cr_assert_eq(c.month, 10);
    cr_assert_eq(c.day, 3);
    cr_assert_eq(c.hour + c.min + c.sec, 0);
    int64_t t;
    cr_assert_eq(sptime_parse_utc(s, strlen(s), &t), PCF_ERR_PARSE, "utc needs a zone");
}

Test(sptime, rejects_malformed)
{
    const char *bad[] = {"", "2026", "2026-13-01T00:00Z", "2026-02-29T00:00Z", "2026-04-31T00:00Z",
                         "2026-01-01T24:00Z", "2026-01-01T23:60Z", "2026-01-01T23:59:60Z",
                         "2026-01-01X00:00Z", "2026-1-01T00:00Z", "2026-01-01T00:00:00.Z",
                         "2026-01-01T00:00:00.1234567890Z", "2026-01-01T00:00+19:00",
                         "2026-01-01T00:00+01:", "2026-01-01T00:00+1", "2026-01-01T00:00 Z",
                         "2026-01-01T00:00Zjunk", "1899-12-31T00:00Z", "3000-01-01T00:00Z",
                         " 2026-01-01T00:00Z", "2026-01-01T00:00:00+00:00 ", "2026-01-01T00:60"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(s_bad(bad[i]), "accepted '%s'", bad[i]);
    cr_assert(!s_bad("2024-02-29T00:00"), "leap day");
}

Test(sptime, parse_does_not_read_past_len)
{
    const char s[] = "2026-01-01T00:00Z9999";
    int64_t t;
    cr_assert_eq(sptime_parse_utc(s, 17, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-01-01T00:00Z"));
}

Test(sptime, civil_round_trip_and_format)
{
    char buf[SPTIME_ISO_LEN];
    int64_t samples[] = {0, -1, 951827696, 1774746000, 4102444799LL, -2208988800LL};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        sptime_civil c;
        sptime_to_civil(samples[i], &c);
        cr_assert_eq(sptime_from_civil(&c), samples[i]);
        cr_assert_eq(sptime_format_utc(samples[i], buf, sizeof buf), SPTIME_ISO_LEN - 1);
        cr_assert_eq(s_utc(buf), samples[i], "%s", buf);
    }
    sptime_format_utc(1774746000, buf, sizeof buf);
    cr_assert_str_eq(buf, "2026-03-29T01:00:00Z");
    cr_assert_eq(sptime_format_utc(0, buf, 5), 0);
}

Test(sptime, london_offsets_around_2026_changes)
{
    const sptime_zone *l = sptime_london();
    cr_assert_eq(sptime_zone_offset(l, s_utc("2026-03-29T00:59:59Z")), 0);
    cr_assert_eq(sptime_zone_offset(l, s_utc("2026-03-29T01:00:00Z")), 3600);
    cr_assert_eq(sptime_zone_offset(l, s_utc("2026-10-25T00:59:59Z")), 3600);
    cr_assert_eq(sptime_zone_offset(l, s_utc("2026-10-25T01:00:00Z")), 0);
    cr_assert_eq(sptime_zone_offset(l, s_utc("2026-07-01T12:00:00Z")), 3600);
    cr_assert_eq(sptime_zone_offset(l, s_utc("2026-12-31T23:59:59Z")), 0);
    cr_assert_eq(sptime_zone_offset(l, s_utc("2024-03-31T01:00:00Z")), 3600);  /* 2024: 31 March */
    cr_assert_eq(sptime_zone_offset(l, s_utc("2024-03-30T01:00:00Z")), 0);
    const sptime_zone *a = sptime_zone_find("Europe/Amsterdam");
    cr_assert_not_null(a);
    cr_assert_eq(sptime_zone_offset(a, s_utc("2026-10-03T00:00:00Z")), 7200);
    cr_assert_eq(sptime_zone_offset(a, s_utc("2026-12-03T00:00:00Z")), 3600);
    cr_assert_eq(sptime_zone_offset(sptime_zone_find("GMT"), s_utc("2026-07-01T00:00Z")), 0);
    cr_assert_null(sptime_zone_find("Mars/Olympus"));
    cr_assert_null(sptime_zone_find(NULL));
}

Test(sptime, local_to_utc_gap_and_repeat)
{
    const sptime_zone *l = sptime_london();
    const char *why = NULL;
    int64_t t = 0;
    sptime_civil gap = {2026, 3, 29, 1, 30, 0};
    cr_assert_eq(sptime_local_to_utc(l, &gap, SPTIME_EARLIER, &t, &why), PCF_ERR_INVALID);
    cr_assert(strstr(why, "non-existent") != NULL);

    sptime_civil rep = {2026, 10, 25, 1, 30, 0};
    cr_assert_eq(sptime_local_to_utc(l, &rep, SPTIME_STRICT, &t, &why), PCF_ERR_INVALID);
    cr_assert(strstr(why, "ambiguous") != NULL);
    cr_assert_eq(sptime_local_to_utc(l, &rep, SPTIME_EARLIER, &t, NULL), PCF_OK);
    cr_assert_eq(t, s_utc("2026-10-25T00:30Z"));
    cr_assert_eq(sptime_local_to_utc(l, &rep, SPTIME_LATER, &t, NULL), PCF_OK);
    cr_assert_eq(t, s_utc("2026-10-25T01:30Z"));

    sptime_civil before = {2026, 3, 29, 0, 59, 0}, after = {2026, 3, 29, 2, 0, 0};
    cr_assert_eq(sptime_local_to_utc(l, &before, SPTIME_STRICT, &t, NULL), PCF_OK);
    cr_assert_eq(t, s_utc("2026-03-29T00:59Z"));
    cr_assert_eq(sptime_local_to_utc(l, &after, SPTIME_STRICT, &t, NULL), PCF_OK);
    cr_assert_eq(t, s_utc("2026-03-29T01:00Z"));

    sptime_civil bad = {2026, 2, 30, 0, 0, 0};
    cr_assert_eq(sptime_local_to_utc(l, &bad, SPTIME_STRICT, &t, NULL), PCF_ERR_PARSE);

    /* A zone without summer time has no gaps. */
    cr_assert_eq(sptime_local_to_utc(sptime_zone_find("UTC"), &gap, SPTIME_STRICT, &t, NULL), PCF_OK);
    cr_assert_eq(t, s_utc("2026-03-29T01:30Z"));
}

Test(sptime, to_local_round_trip)
{
    const sptime_zone *l = sptime_london();
    sptime_civil c;
    sptime_to_local(l, s_utc("2026-06-21T23:30Z"), &c);
    cr_assert_eq(c.day, 22);
    cr_assert_eq(c.hour, 0);
    cr_assert_eq(c.min, 30);
}

Test(sptime, settlement_period_counts)
{
    cr_assert_eq(sptime_sp_count(2026, 3, 29), 46);
    cr_assert_eq(sptime_sp_count(2026, 10, 25), 50);
    cr_assert_eq(sptime_sp_count(2026, 3, 28), 48);
    cr_assert_eq(sptime_sp_count(2026, 3, 30), 48);
    cr_assert_eq(sptime_sp_count(2026, 10, 24), 48);
    cr_assert_eq(sptime_sp_count(2026, 10, 26), 48);
    cr_assert_eq(sptime_sp_count(2025, 3, 30), 46);
    cr_assert_eq(sptime_sp_count(2025, 10, 26), 50);
    cr_assert_eq(sptime_sp_count(2026, 12, 31), 48);
    cr_assert_eq(sptime_sp_count(2027, 1, 1), 48);
    cr_assert_eq(sptime_sp_count(2026, 2, 29), -1);
    /* Every day of 2026: 46 once, 50 once, 48 otherwise; 17520 SPs in all. */
    int total = 0;
    for (int m = 1; m <= 12; m++)
        for (int d = 1; d <= 31; d++) {
            int n = sptime_sp_count(2026, m, d);
            if (n > 0)
                total += n;
        }
    cr_assert_eq(total, 365 * 48);
}

Test(sptime, settlement_period_starts)
{
    int64_t t;
    cr_assert_eq(sptime_sp_start(2026, 3, 29, 1, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-03-29T00:00Z"));
    cr_assert_eq(sptime_sp_start(2026, 3, 29, 3, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-03-29T01:00Z"));     /* local 02:00 BST */
    cr_assert_eq(sptime_sp_start(2026, 3, 29, 46, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-03-29T22:30Z"));
    cr_assert_eq(sptime_sp_start(2026, 3, 29, 47, &t), PCF_ERR_INVALID);
    cr_assert_eq(sptime_sp_start(2026, 10, 25, 1, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-10-24T23:00Z"));     /* local midnight BST */
    cr_assert_eq(sptime_sp_start(2026, 10, 25, 50, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-10-25T23:30Z"));
    cr_assert_eq(sptime_sp_start(2026, 7, 1, 1, &t), PCF_OK);
    cr_assert_eq(t, s_utc("2026-06-30T23:00Z"));
    cr_assert_eq(sptime_sp_start(2026, 7, 1, 0, &t), PCF_ERR_INVALID);
    cr_assert_eq(sptime_sp_start(2026, 13, 1, 1, &t), PCF_ERR_INVALID);
}

Test(sptime, settlement_period_of_instant)
{
    sptime_civil day;
    int sp;
    sptime_sp_of(s_utc("2026-10-25T00:59:59Z"), &day, &sp);  /* first 01:59 BST */
    cr_assert_eq(day.day, 25);
    cr_assert_eq(sp, 4);
    sptime_sp_of(s_utc("2026-10-25T01:00Z"), &day, &sp);     /* second 01:00 GMT */
    cr_assert_eq(sp, 5);
    sptime_sp_of(s_utc("2026-10-25T23:59:59Z"), &day, &sp);
    cr_assert_eq(sp, 50);
    sptime_sp_of(s_utc("2026-06-30T23:00Z"), &day, &sp);     /* year-half boundary in BST */
    cr_assert_eq(day.month, 7);
    cr_assert_eq(day.day, 1);
    cr_assert_eq(sp, 1);
    sptime_sp_of(s_utc("2026-12-31T23:59Z"), &day, &sp);     /* year boundary in GMT */
    cr_assert_eq(day.year, 2026);
    cr_assert_eq(sp, 48);
    sptime_sp_of(s_utc("2027-01-01T00:00Z"), &day, &sp);
    cr_assert_eq(day.year, 2027);
    cr_assert_eq(sp, 1);
    /* Every SP start of the spring and autumn days maps back to itself. */
    int days[2][3] = {{2026, 3, 29}, {2026, 10, 25}};
    for (int k = 0; k < 2; k++) {
        int n = sptime_sp_count(days[k][0], days[k][1], days[k][2]);
        for (int i = 1; i <= n; i++) {
            int64_t t;
            cr_assert_eq(sptime_sp_start(days[k][0], days[k][1], days[k][2], i, &t), PCF_OK);
            sptime_sp_of(t + 1799, &day, &sp);
            cr_assert_eq(sp, i);
            cr_assert_eq(day.day, days[k][2]);
        }
    }
}
