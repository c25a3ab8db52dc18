/*
 * feed.c -- helpers shared by the feed parsers; see feed.h.
 */
#include "feed.h"

#include <string.h>

void feed_csv_raw(const csv_reader *r, char *buf, size_t n)
{
    size_t used = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < csv_count(r) && used + 1 < n; i++) {
        if (i > 0)
            buf[used++] = ',';
        size_t len = csv_field_len(r, i);
        if (len > n - 1 - used)
            len = n - 1 - used;
        memcpy(buf + used, csv_field(r, i), len);
        used += len;
    }
    buf[used] = '\0';
}

bool feed_id_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

pcf_rc feed_reject_call(feed_reject_fn fn, void *ctx, long line, const char *field,
                        const char *reason, const char *raw, pcf_error *err)
{
    if (!fn)
        return PCF_OK;
    feed_reject rj = {line, field ? field : "", reason, raw ? raw : ""};
    return fn(ctx, &rj, err);
}
