/* test_ingest_weather.c -- Open-Meteo parser against fixtures in the real
 * response shapes (FORMATS.md) and the hostile cases of issue 4. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openmeteo.h"
#include "sptime.h"

#define W_MAX 512

typedef struct {
    wx_value v[W_MAX];
    char model[W_MAX][70];
    int n;
    wx_location loc[4];
    int nloc;
    char reason[16][200];
    char field[16][80];
    int nrej;
} s_wx;

static pcf_rc s_val(void *ctx, const wx_value *v, pcf_error *err)
{
    (void)err;
    s_wx *w = ctx;
    if (w->n < W_MAX) {
        w->v[w->n] = *v;
        snprintf(w->model[w->n], sizeof w->model[0], "%s", v->model ? v->model : "");
    }
    w->n++;
    return PCF_OK;
}

static pcf_rc s_loc(void *ctx, const wx_location *l, pcf_error *err)
{
    (void)err;
    s_wx *w = ctx;
    if (w->nloc < 4)
        w->loc[w->nloc] = *l;
    w->nloc++;
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)err;
    s_wx *w = ctx;
    if (w->nrej < 16) {
        snprintf(w->reason[w->nrej], sizeof w->reason[0], "%s", r->reason);
        snprintf(w->field[w->nrej], sizeof w->field[0], "%s", r->field);
    }
    w->nrej++;
    return PCF_OK;
}

static char *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static pcf_rc s_parse_buf(const char *buf, size_t len, s_wx *w, openmeteo_stats *st, pcf_error *e)
{
    memset(w, 0, sizeof *w);
    openmeteo_sink sink = {s_loc, s_val, s_rej, w};
    return openmeteo_parse(buf, len, "om.json", &sink, st, e);
}

static pcf_rc s_parse_file(const char *path, s_wx *w, openmeteo_stats *st, pcf_error *e)
{
    size_t len;
    char *buf = s_slurp(path, &len);
    pcf_rc rc = s_parse_buf(buf, len, w, st, e);
    free(buf);
    return rc;
}

static pcf_rc s_parse_str(const char *s, s_wx *w, pcf_error *e)
{
    return s_parse_buf(s, strlen(s), w, NULL, e);
}

static int64_t s_t(const char *iso)
{
    int64_t t;
    cr_assert_eq(sptime_parse_utc(iso, strlen(iso), &t), PCF_OK);
    return t;
}

Test(ingest_weather, forecast_example_from_formats_md)
{
    static s_wx w;
    openmeteo_stats st;
    pcf_error e;
    cr_assert_eq(s_parse_file("tests/data/ingest/om_forecast_amsterdam.json", &w, &st, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(w.nloc, 1);
    cr_assert_float_eq(w.loc[0].latitude, 52.276, 1e-9);
    cr_assert_float_eq(w.loc[0].elevation, 29.0, 0);
    cr_assert_eq(w.n, 6);
    cr_assert_eq(w.nrej, 0);
    /* Keys keep the server's order: wind first. 24.1 km/h = 6.694.. m/s. */
    cr_assert_str_eq(w.v[0].variable, "wind_speed_100m");
    cr_assert_float_eq(w.v[0].value, 24.1 / 3.6, 1e-12);
    cr_assert_eq(w.v[0].valid_at, s_t("2026-10-02T22:00:00Z"));   /* 00:00 at +02:00 */
    cr_assert_eq(w.v[0].interval_s, 0);
    cr_assert_eq(w.v[0].member, 0);
    cr_assert_str_eq(w.model[0], "");
    cr_assert_str_eq(w.v[3].variable, "cloud_cover");
    cr_assert_float_eq(w.v[4].value, 48, 0);
}

Test(ingest_weather, local_times_across_the_autumn_change)
{
    static s_wx w;
    openmeteo_stats st;
    pcf_error e;
    cr_assert_eq(s_parse_file("tests/data/ingest/om_forecast_london_autumn.json", &w, &st, &e), PCF_OK, "%s", e.msg);
    /* 48 hourly times at the one utc_offset_seconds (3600): 48 distinct,
     * evenly spaced instants even though 01:00 local repeats on 25 October. */
    int64_t first = -1, prev = -1;
    int nt = 0, nrad = 0;
    for (int i = 0; i < w.n && i < W_MAX; i++) {
        if (strcmp(w.v[i].variable, "temperature_2m") == 0) {
            if (first < 0)
                first = w.v[i].valid_at;
            else
                cr_assert_eq(w.v[i].valid_at - prev, 3600);
            prev = w.v[i].valid_at;
            nt++;
            cr_assert_eq(w.v[i].interval_s, 0);
        }
        if (strcmp(w.v[i].variable, "shortwave_radiation") == 0) {
            nrad++;
            cr_assert_eq(w.v[i].interval_s, 3600, "radiation is a preceding-hour mean");
        }
        if (strcmp(w.v[i].variable, "wind_speed_100m") == 0)
            cr_assert_float_eq(w.v[i].value, 10.0, 1e-12);             /* 36 km/h */
    }
    cr_assert_eq(nt, 48);
    cr_assert_eq(nrad, 48);
    cr_assert_eq(first, s_t("2026-10-23T23:00:00Z"));
    cr_assert_eq(st.nulls, 1);                  /* one null cloud cover */
    cr_assert_eq(st.values, 8 * 48 - 1);
}

Test(ingest_weather, ensemble_members_and_models)
{
    static s_wx w;
    openmeteo_stats st;
    pcf_error e;
    cr_assert_eq(s_parse_file("tests/data/ingest/om_ensemble.json", &w, &st, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(w.nrej, 0);
    cr_assert_eq(w.n, 2 * 4 * 6);
    cr_assert_eq(st.nulls, 6);                  /* the 'undefined' variable */
    int seen[2][4] = {{0}};
    for (int i = 0; i < w.n; i++) {
        int m = strcmp(w.model[i], "icon_seamless_eps") == 0 ? 0 : 1;
        if (m == 1)
            cr_assert_str_eq(w.model[i], "ecmwf_ifs025");
        cr_assert(w.v[i].member >= 0 && w.v[i].member <= 3);
        seen[m][w.v[i].member]++;
    }
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 4; k++)
            cr_assert_eq(seen[m][k], 6);
    cr_assert_float_eq(w.v[6].value, 8.5, 1e-12);   /* member01, m/s kept */
}

Test(ingest_weather, array_of_locations)
{
    static s_wx w;
    openmeteo_stats st;
    pcf_error e;
    cr_assert_eq(s_parse_file("tests/data/ingest/om_two_locations.json", &w, &st, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(st.locations, 2);
    cr_assert_eq(w.nloc, 2);
    cr_assert_eq(w.loc[1].location_id, 1);
    cr_assert_eq(w.n, 12);
    cr_assert_eq(w.v[6].location, 1);
}

Test(ingest_weather, error_body)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_file("tests/data/ingest/om_error.json", &w, NULL, &e), PCF_ERR_INVALID);
    cr_assert(strstr(e.msg, "Open-Meteo error: Cannot initialize WeatherVariable") != NULL, "%s", e.msg);
    cr_assert_eq(w.n, 0);
}

Test(ingest_weather, truncated_and_garbage_json)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_file("tests/data/ingest/om_truncated.json", &w, NULL, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "malformed JSON") != NULL, "%s", e.msg);
    cr_assert_eq(s_parse_str("<html>502 Bad Gateway</html>", &w, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_parse_str("", &w, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_parse_str("[]", &w, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_parse_str("42", &w, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_parse_str("{\"latitude\":1,\"latitude\":2}", &w, &e), PCF_ERR_PARSE, "duplicate keys");
    cr_assert_eq(w.n, 0);
}

#define S_HEAD "{\"latitude\":51.5,\"longitude\":0,\"utc_offset_seconds\":0,\"timezone\":\"GMT\","

Test(ingest_weather, wrong_units_are_refused)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"iso8601\",\"temperature_2m\":\"°F\","
                             "\"wind_speed_10m\":\"furlong/fortnight\",\"cloud_cover\":\"%\"},"
                             "\"hourly\":{\"time\":[\"2026-01-01T00:00\"],\"temperature_2m\":[50],"
                             "\"wind_speed_10m\":[3],\"cloud_cover\":[20]}}", &w, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(w.nrej, 2);
    cr_assert_str_eq(w.field[0], "temperature_2m");
    cr_assert(strstr(w.reason[0], "unit '°F' not accepted") != NULL, "%s", w.reason[0]);
    cr_assert_str_eq(w.field[1], "wind_speed_10m");
    cr_assert_eq(w.n, 1);
    cr_assert_str_eq(w.v[0].variable, "cloud_cover");
}

Test(ingest_weather, wind_units_convert_to_metres_per_second)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"unixtime\",\"wind_speed_10m\":\"kn\","
                             "\"wind_speed_80m\":\"mp/h\",\"wind_speed_100m\":\"m/s\"},"
                             "\"hourly\":{\"time\":[1767225600],\"wind_speed_10m\":[10],"
                             "\"wind_speed_80m\":[10],\"wind_speed_100m\":[10]}}", &w, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(w.n, 3);
    cr_assert_float_eq(w.v[0].value, 5.144444444444445, 1e-12);
    cr_assert_float_eq(w.v[1].value, 4.4704, 1e-12);
    cr_assert_float_eq(w.v[2].value, 10, 0);
    cr_assert_eq(w.v[0].valid_at, 1767225600);
}

Test(ingest_weather, undefined_unit_with_values_and_unknown_variable)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"iso8601\",\"cloud_cover\":\"undefined\","
                             "\"snow_depth\":\"m\"},"
                             "\"hourly\":{\"time\":[\"2026-01-01T00:00\"],\"cloud_cover\":[3],"
                             "\"snow_depth\":[0.1]}}", &w, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(w.nrej, 2);
    cr_assert(strstr(w.reason[0], "undefined") != NULL);
    cr_assert(strstr(w.reason[1], "unknown variable") != NULL);
    cr_assert_eq(w.n, 0);
}

Test(ingest_weather, bad_values_and_lengths)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"iso8601\",\"cloud_cover\":\"%\","
                             "\"temperature_2m\":\"°C\",\"shortwave_radiation\":\"W/m²\"},"
                             "\"hourly\":{\"time\":[\"2026-01-01T00:00\",\"2026-01-01T01:00\"],"
                             "\"cloud_cover\":[150,\"x\"],\"temperature_2m\":[1],"
                             "\"shortwave_radiation\":[-5, 1e308]}}", &w, &e), PCF_OK, "%s", e.msg);
    cr_assert_eq(w.n, 0);
    cr_assert_eq(w.nrej, 5);
    cr_assert(strstr(w.reason[2], "not an array as long as time") != NULL, "%s", w.reason[2]);
}

Test(ingest_weather, bad_time_axis_is_fatal)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"iso8601\"},"
                             "\"hourly\":{\"time\":[\"2026-01-01T01:00\",\"2026-01-01T00:00\"]}}", &w, &e),
                 PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "does not increase") != NULL, "%s", e.msg);
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"iso8601\"},"
                             "\"hourly\":{\"time\":[\"2026-02-30T00:00\"]}}", &w, &e), PCF_ERR_PARSE);
    cr_assert_eq(s_parse_str("{\"latitude\":51.5,\"longitude\":0,\"hourly_units\":{\"time\":\"iso8601\"},"
                             "\"hourly\":{\"time\":[\"2026-01-01T00:00\"]}}", &w, &e), PCF_ERR_PARSE);
    cr_assert(strstr(e.msg, "utc_offset_seconds") != NULL);
    cr_assert_eq(s_parse_str(S_HEAD "\"hourly_units\":{\"time\":\"rfc822\"},"
                             "\"hourly\":{\"time\":[\"x\"]}}", &w, &e), PCF_ERR_PARSE);
}

Test(ingest_weather, minutely_15_radiation_is_a_15_minute_mean)
{
    static s_wx w;
    pcf_error e;
    cr_assert_eq(s_parse_str(S_HEAD "\"minutely_15_units\":{\"time\":\"iso8601\",\"direct_radiation\":\"W/m²\","
                             "\"direct_radiation_instant\":\"W/m²\"},"
                             "\"minutely_15\":{\"time\":[\"2026-06-01T12:00\",\"2026-06-01T12:15\"],"
                             "\"direct_radiation\":[500,510],\"direct_radiation_instant\":[505,515]}}", &w, &e),
                 PCF_OK, "%s", e.msg);
    cr_assert_eq(w.n, 4);
    cr_assert_eq(w.v[0].interval_s, 900);
    cr_assert_str_eq(w.v[2].variable, "direct_radiation_instant");
    cr_assert_eq(w.v[2].interval_s, 0);
}

Test(ingest_weather, units_lookup)
{
    cr_assert_str_eq(openmeteo_unit("wind_speed_100m"), "m/s");
    cr_assert_str_eq(openmeteo_unit("shortwave_radiation"), "W/m2");
    cr_assert_null(openmeteo_unit("snow_depth"));
}
