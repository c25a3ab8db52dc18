/* fuzz_scada.c -- libFuzzer target for the SCADA CSV parser (both formats):
 * any input must end in PCF_OK or a clean error, never a crash or leak. */
#include <stdint.h>
#include <stdio.h>

#include "scada_csv.h"

static pcf_rc s_row(void *ctx, const scada_row *row, pcf_error *err)
{
    (void)err;
    /* Touch every field so a bad pointer shows up under ASan. */
    volatile size_t n = 0;
    for (const char *p = row->point_id; *p; p++)
        n++;
    (*(long *)ctx) += (long)n + (row->value == row->value);
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)ctx;
    (void)err;
    volatile size_t n = 0;
    for (const char *p = r->raw; *p; p++)
        n++;
    for (const char *p = r->reason; *p; p++)
        n++;
    return PCF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    FILE *f = fmemopen((void *)data, size, "r");
    if (!f)
        return 0;
    long sum = 0;
    scada_sink sink = {s_row, s_rej, &sum};
    scada_stats st;
    pcf_error err;
    (void)scada_parse(f, "fuzz.csv", &sink, &st, &err);
    fclose(f);
    return 0;
}
