/* fuzz_outage_json.c -- libFuzzer target for the outage JSON parser. */
#include <stdint.h>
#include <string.h>

#include "outage_parse.h"

static pcf_rc s_rec(void *ctx, const outage_rec *o, pcf_error *err)
{
    (void)err;
    (*(size_t *)ctx) += strlen(o->outage_id) + strlen(o->equipment_id) + strlen(o->status);
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)err;
    (*(size_t *)ctx) += strlen(r->reason) + strlen(r->field) + strlen(r->raw);
    return PCF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t sum = 0;
    outage_sink sink = {s_rec, s_rej, &sum};
    outage_stats st;
    pcf_error err;
    (void)outage_parse_json((const char *)data, size, "fuzz.json", &sink, &st, &err);
    return 0;
}
