/* fuzz_outage_csv.c -- libFuzzer target for the UKPN EHV outage CSV parser. */
#include <stdint.h>
#include <stdio.h>
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
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    size_t sum = 0;
    outage_sink sink = {s_rec, s_rej, &sum};
    outage_stats st;
    pcf_error err;
    (void)outage_parse_ukpn_csv(f, "fuzz.csv", &sink, &st, &err);
    fclose(f);
    return 0;
}
