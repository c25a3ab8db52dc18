/* fuzz_openmeteo.c -- libFuzzer target for the Open-Meteo JSON parser:
 * any body must end in PCF_OK or a clean error, never a crash or leak. */
#include <stdint.h>
#include <string.h>

#include "openmeteo.h"

static pcf_rc s_val(void *ctx, const wx_value *v, pcf_error *err)
{
    (void)err;
    /* Touch the strings so a dangling pointer shows up under ASan. */
    (*(size_t *)ctx) += strlen(v->variable) + (v->model ? strlen(v->model) : 0);
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)err;
    (*(size_t *)ctx) += strlen(r->reason) + strlen(r->field);
    return PCF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t sum = 0;
    openmeteo_sink sink = {NULL, s_val, s_rej, &sum};
    openmeteo_stats st;
    pcf_error err;
    (void)openmeteo_parse((const char *)data, size, "fuzz.json", &sink, &st, &err);
    return 0;
}
