/* fuzz_scada_pb.c -- libFuzzer target for the live ScadaBatch parser: any
 * bytes must decode to PCF_OK or a clean error, never a crash or leak. */
#include <stdint.h>
#include <string.h>

#include "scada_pb.h"

static pcf_rc s_row(void *ctx, const scada_pb_row *r, pcf_error *err)
{
    (void)err;
    (*(size_t *)ctx) += strlen(r->point_id) + (r->value == r->value);
    return PCF_OK;
}

static pcf_rc s_rej(void *ctx, const feed_reject *r, pcf_error *err)
{
    (void)err;
    (*(size_t *)ctx) += strlen(r->raw) + strlen(r->reason) + strlen(r->field);
    return PCF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t sum = 0;
    scada_pb_sink sink = {s_row, s_rej, &sum};
    scada_pb_info info;
    pcf_error err;
    (void)scada_pb_parse(data, size, &sink, &info, &err);
    return 0;
}
