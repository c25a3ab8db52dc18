/*
 * test_subscriber_peek.c -- subscriber_peek_fast, the allocation-free header
 * decoder of the receive path, against subscriber_peek (protobuf-c itself):
 * the same verdict and the same fields on real feed messages and on a few
 * hundred thousand mutations of them (bit flips, byte changes, insertions,
 * deletions, truncations, duplicated spans), plus hand-made cases for the
 * protobuf rules it must follow.  tests/fuzz/fuzz_peek.c runs the same
 * comparison under libFuzzer.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subscriber.h"

/* 1: same verdict and fields (or fast said "string too long"), 0: not. */
static int s_same(const uint8_t *b, size_t n, char *why, size_t wl)
{
    uint32_t a, c;
    Pcf__V1__Header *h = subscriber_peek(b, n, &a, &c);
    subscriber_head f;
    int r = subscriber_peek_fast(b, n, &f);
    int ok = 1;
    if (r == -2) {
        ok = 1;   /* a zone or topic too long for a feed: not compared */
    } else if (!h || r != 0) {
        ok = !h && r != 0;
        if (!ok) snprintf(why, wl, "protobuf-c %s, fast %d", h ? "accepts" : "rejects", r);
    } else {
        const Pcf__V1__Header *g = &f.h;
        ok = h->schema_version == g->schema_version && strcmp(h->zone, g->zone) == 0 &&
             strcmp(h->topic, g->topic) == 0 && h->sequence == g->sequence && h->run_id == g->run_id &&
             h->run_kind == g->run_kind && h->computed_at_ms == g->computed_at_ms &&
             h->stream_epoch == g->stream_epoch && h->request_id == g->request_id && a == f.part &&
             c == f.part_count && !h->inputs_as_of == !g->inputs_as_of;
        if (ok && h->inputs_as_of)
            ok = h->inputs_as_of->scada_ms == g->inputs_as_of->scada_ms &&
                 h->inputs_as_of->weather_issued_ms == g->inputs_as_of->weather_issued_ms &&
                 h->inputs_as_of->outages_ms == g->inputs_as_of->outages_ms;
        if (!ok)
            snprintf(why, wl, "fields differ: seq %llu/%llu run %lld/%lld part %u/%u topic %s/%s",
                     (unsigned long long)h->sequence, (unsigned long long)g->sequence, (long long)h->run_id,
                     (long long)g->run_id, a, f.part, h->topic, g->topic);
    }
    if (h) pcf__v1__header__free_unpacked(h, NULL);
    return ok;
}

static uint8_t *s_feed_msg(size_t *len, int rows)
{
    Pcf__V1__InputsAsOf in = PCF__V1__INPUTS_AS_OF__INIT;
    in.scada_ms = 1795438000000LL;
    in.weather_issued_ms = -5;
    in.outages_ms = 1;
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    h.schema_version = 1;
    h.zone = "demo";
    h.topic = "pcf.da.demo";
    h.sequence = 123456789;
    h.run_id = 98765;
    h.run_kind = PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD;
    h.computed_at_ms = 1795440000000LL;
    h.inputs_as_of = &in;
    h.stream_epoch = 1795440000000ULL;
    Pcf__V1__BatchInfo bi = PCF__V1__BATCH_INFO__INIT;
    bi.settlement_date = "2026-11-24";
    bi.part = 2;
    bi.part_count = 3;
    bi.sp_count = 48;
    bi.firm_confidence = 0.95;
    Pcf__V1__Pcf row = PCF__V1__PCF__INIT, *rp[2] = {&row, &row};
    row.site_id = "KX_S01";
    row.sp = 7;
    row.p_curtailed = 0.25;
    Pcf__V1__PcfBatch b = PCF__V1__PCF_BATCH__INIT;
    b.header = &h;
    b.batch = &bi;
    b.n_rows = (size_t)rows;
    b.rows = rp;
    *len = pcf__v1__pcf_batch__get_packed_size(&b);
    uint8_t *buf = malloc(*len + 1);
    pcf__v1__pcf_batch__pack(&b, buf);
    return buf;
}

Test(subscriber_peek, real_messages_decode_the_same)
{
    char why[256];
    for (int rows = 0; rows <= 2; rows++) {
        size_t n;
        uint8_t *m = s_feed_msg(&n, rows);
        subscriber_head f;
        cr_assert_eq(subscriber_peek_fast(m, n, &f), 0);
        cr_assert_eq(f.h.sequence, 123456789);
        cr_assert_str_eq(f.h.topic, "pcf.da.demo");
        cr_assert_eq(f.h.inputs_as_of->weather_issued_ms, -5);
        cr_assert_eq(f.part, 2);
        cr_assert_eq(f.part_count, 3);
        cr_assert(s_same(m, n, why, sizeof why), "%s", why);
        free(m);
    }
}

/* Hand-made cases of the protobuf rules: wire type mismatches, repeated
 * fields, merged embedded messages, unknown fields, over-long strings. */
Test(subscriber_peek, protobuf_rules)
{
    char why[256];
    static const struct { const char *name; uint8_t b[40]; size_t n; int fast; } cases[] = {
        {"empty", {0}, 0, -1},
        {"header only", {0x0a, 0x02, 0x08, 0x01}, 4, 0},
        {"sequence twice: last wins", {0x0a, 0x04, 0x20, 0x05, 0x20, 0x07}, 6, 0},
        {"sequence as a string", {0x0a, 0x03, 0x22, 0x01, 0x41}, 5, -1},
        {"topic as a varint", {0x0a, 0x02, 0x18, 0x01}, 4, -1},
        {"unknown field 11 skipped", {0x0a, 0x04, 0x58, 0x01, 0x08, 0x01}, 6, 0},
        {"unknown fixed32 field", {0x0a, 0x05, 0x65, 1, 2, 3, 4}, 7, 0},
        {"inputs twice: the last replaces", {0x0a, 0x08, 0x42, 0x02, 0x08, 0x05, 0x42, 0x02, 0x10, 0x06}, 10, 0},
        {"field 0 in a long tag is unknown", {0x0a, 0x05, 0x80, 0x00, 0x01, 0x08, 0x01}, 7, 0},
        /* regression: the fast path took it for outages_ms (field 3) */
        {"field 0 in a long tag inside inputs", {0x0a, 0x07, 0x42, 0x05, 0x18, 0x07, 0x80, 0x00, 0x09}, 9, 0},
        {"6-byte length prefix", {0x0a, 0x07, 0x1a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00}, 9, -1},
        {"tag of 5 bytes, number truncated", {0x0a, 0x09, 0xb5, 0x95, 0x9a, 0xef, 0x3a, 0, 0, 0, 0}, 11, 0},
        {"tag of 6 bytes", {0x0a, 0x08, 0xb8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x08, 0x01}, 10, -1},
        {"inputs field as a double", {0x0a, 0x05, 0x42, 0x03, 0x09, 0x00, 0x00}, 7, -1},
        {"batch info with part as fixed64", {0x0a, 0x00, 0x12, 0x09, 0x29, 1, 2, 3, 4, 5, 6, 7, 8}, 13, 0},
        {"batch info part", {0x0a, 0x00, 0x12, 0x04, 0x28, 0x02, 0x30, 0x03}, 8, 0},
        {"second header ignored", {0x0a, 0x02, 0x20, 0x01, 0x0a, 0x02, 0x20, 0x02}, 8, 0},
        {"group wire type", {0x0a, 0x01, 0x0b}, 3, -1},
        {"field number 0", {0x0a, 0x02, 0x00, 0x01}, 4, -1},
        {"truncated varint", {0x0a, 0x02, 0x20, 0x80}, 4, -1},
        {"length past the end", {0x0a, 0x05, 0x20, 0x01}, 4, -1},
        {"64-bit schema version truncated", {0x0a, 0x06, 0x08, 0x81, 0x80, 0x80, 0x80, 0x10}, 8, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        subscriber_head f;
        int r = subscriber_peek_fast(cases[i].b, cases[i].n, &f);
        cr_expect_eq(r, cases[i].fast, "%s: fast %d, want %d", cases[i].name, r, cases[i].fast);
        cr_expect(s_same(cases[i].b, cases[i].n, why, sizeof why), "%s: %s", cases[i].name, why);
    }
    /* a 100-byte topic: protobuf-c takes it, the fast path says too long */
    uint8_t b[110] = {0x0a, 102, 0x1a, 100};
    memset(b + 4, 'x', 100);
    subscriber_head f;
    cr_expect_eq(subscriber_peek_fast(b, 104, &f), -2);
}

static uint64_t s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(subscriber_peek, mutated_messages_decode_the_same)
{
    size_t n0;
    uint8_t *m0 = s_feed_msg(&n0, 1);
    uint8_t *m = malloc(4 * n0 + 64);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    char why[256];
    long accepted = 0, rejected = 0;
    for (long it = 0; it < 300000; it++) {
        size_t n = n0;
        memcpy(m, m0, n0);
        int k = 1 + (int)(s_rand(&seed) % 4);
        for (int j = 0; j < k && n > 0; j++) {
            size_t at = (size_t)(s_rand(&seed) % n);
            switch (s_rand(&seed) % 6) {
            case 0: m[at] ^= (uint8_t)(1u << (s_rand(&seed) % 8)); break;
            case 1: m[at] = (uint8_t)s_rand(&seed); break;
            case 2:   /* insert a byte */
                if (n < 3 * n0) {
                    memmove(m + at + 1, m + at, n - at);
                    m[at] = (uint8_t)s_rand(&seed);
                    n++;
                }
                break;
            case 3:   /* delete a byte */
                memmove(m + at, m + at + 1, n - at - 1);
                n--;
                break;
            case 4: n = at; break;   /* truncate */
            default: {  /* duplicate a span */
                size_t len = 1 + (size_t)(s_rand(&seed) % 16);
                if (at + len <= n && n + len < 3 * n0) {
                    memmove(m + at + len, m + at, n - at);
                    n += len;
                }
            }
            }
        }
        subscriber_head f;
        int r = subscriber_peek_fast(m, n, &f);
        accepted += r == 0;
        rejected += r != 0;
        if (!s_same(m, n, why, sizeof why)) {
            char hex[3 * 512 + 1] = "";
            for (size_t i = 0; i < n && i < 512; i++) snprintf(hex + 3 * i, 4, "%02x ", m[i]);
            cr_assert_fail("mutation %ld: %s\nbytes: %s", it, why, hex);
        }
    }
    /* both verdicts must be exercised, or the comparison proves little */
    cr_expect_gt(accepted, 10000, "%ld accepted", accepted);
    cr_expect_gt(rejected, 10000, "%ld rejected", rejected);
    free(m);
    free(m0);
}
