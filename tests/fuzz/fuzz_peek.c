/* fuzz_peek.c -- libFuzzer target comparing subscriber_peek_fast, the
 * allocation-free header decoder of the receive path, with subscriber_peek
 * (protobuf-c): any bytes must get the same verdict and the same header
 * fields from both, or the target aborts. */
#include <stdlib.h>
#include <string.h>

#include "subscriber.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t part, count;
    Pcf__V1__Header *h = subscriber_peek(data, size, &part, &count);
    subscriber_head f;
    int r = subscriber_peek_fast(data, size, &f);
    if (r == -2) {   /* zone or topic too long for a feed message: not compared */
        if (h) pcf__v1__header__free_unpacked(h, NULL);
        return 0;
    }
    if (!h != (r != 0)) abort();
    if (h) {
        const Pcf__V1__Header *g = &f.h;
        if (h->schema_version != g->schema_version || strcmp(h->zone, g->zone) != 0 ||
            strcmp(h->topic, g->topic) != 0 || h->sequence != g->sequence || h->run_id != g->run_id ||
            h->run_kind != g->run_kind || h->computed_at_ms != g->computed_at_ms ||
            h->stream_epoch != g->stream_epoch || h->request_id != g->request_id || part != f.part ||
            count != f.part_count || !h->inputs_as_of != !g->inputs_as_of)
            abort();
        if (h->inputs_as_of && (h->inputs_as_of->scada_ms != g->inputs_as_of->scada_ms ||
                                h->inputs_as_of->weather_issued_ms != g->inputs_as_of->weather_issued_ms ||
                                h->inputs_as_of->outages_ms != g->inputs_as_of->outages_ms))
            abort();
        pcf__v1__header__free_unpacked(h, NULL);
    }
    return 0;
}
