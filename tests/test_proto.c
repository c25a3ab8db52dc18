/*
 * test_proto.c -- the wire schema (proto/pcf.proto) as protobuf-c sees it.
 *
 * What is checked (suite `proto`):
 *   - every message of the schema packs and unpacks, and every field, at
 *     every depth, survives the round trip with a distinctive value;
 *   - a message from a newer schema (unknown fields of every wire type, at
 *     the top and inside repeated rows; unknown enum values) still decodes,
 *     the known fields intact;
 *   - a truncated buffer returns NULL unless the cut happens to fall on a
 *     top-level field boundary (where protobuf itself cannot tell a shorter
 *     message from a cut one); nothing crashes, which the ASan run checks;
 *   - hostile lengths and random bytes never crash the decoder.
 *
 * How: rather than hand-writing a fill and a compare per message (which would
 * silently miss a field added later), s_fill() walks a message's protobuf-c
 * descriptor and gives each scalar a value derived from a running counter
 * (so no two fields share a value and none is the proto3 default), each
 * repeated field S_REPEAT elements and each sub-message a filled instance;
 * s_compare() walks two messages the same way and names the first field that
 * differs.  s_all[] lists every message; a test reads proto/pcf.proto and
 * fails if a message is missing from the list.  One hand-written test
 * (pcf_batch_explicit) shows the generated C API on realistic values.
 *
 * Everything filled is malloc'ed, so protobuf_c_message_free_unpacked(m, NULL)
 * frees a filled message as well as an unpacked one.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pcf.pb-c.h"

#define S_REPEAT 2          /* elements per repeated field */
#define S_MAX_DEPTH 8       /* the schema nests at most 5 deep */
#define S_PATH_MAX 256

/* Every message of pcf.proto, nested ones included. */
static const ProtobufCMessageDescriptor *const s_all[] = {
    &pcf__v1__inputs_as_of__descriptor,
    &pcf__v1__header__descriptor,
    &pcf__v1__batch_info__descriptor,
    &pcf__v1__pcf__descriptor,
    &pcf__v1__pcf_batch__descriptor,
    &pcf__v1__quantile__descriptor,
    &pcf__v1__constraint_site__descriptor,
    &pcf__v1__constraint_statement__descriptor,
    &pcf__v1__constraint_statement_batch__descriptor,
    &pcf__v1__block_level__descriptor,
    &pcf__v1__constraint_block__descriptor,
    &pcf__v1__constraint_block_batch__descriptor,
    &pcf__v1__topic_status__descriptor,
    &pcf__v1__heartbeat__descriptor,
    &pcf__v1__snapshot_request__descriptor,
    &pcf__v1__topic_snapshot__descriptor,
    &pcf__v1__snapshot_reply__descriptor,
    &pcf__v1__statement_request__descriptor,
    &pcf__v1__statement_reply__descriptor,
    &pcf__v1__capacity_change__descriptor,
    &pcf__v1__trade_check_request__descriptor,
    &pcf__v1__constraint_check__descriptor,
    &pcf__v1__site_volume__descriptor,
    &pcf__v1__trade_check_reply__descriptor,
    &pcf__v1__error_reply__descriptor,
    &pcf__v1__measurement__descriptor,
    &pcf__v1__scada_batch__descriptor,
};
#define S_N_ALL (sizeof s_all / sizeof s_all[0])

/* ---- generic fill ------------------------------------------------------ */

static void *s_xmalloc(size_t n)
{
    void *p = malloc(n);
    cr_assert_not_null(p, "out of memory");
    return p;
}

/* Writes one distinctive scalar for counter k into dst.  Values use the high
 * bits of each width so a truncating codec would be caught. */
static void s_fill_scalar(const ProtobufCFieldDescriptor *f, void *dst, unsigned k)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)dst = -(int32_t)(1000000 + k);
        break;
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)dst = 0x80000000u | k;
        break;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        /* Odd k negative: the int64 time stamps must carry a sign too. */
        *(int64_t *)dst = (k % 2 ? -1 : 1) * (int64_t)(((uint64_t)k << 40) | k);
        break;
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)dst = 0x8000000000000000ull | ((uint64_t)k << 32) | k;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)dst = (float)k + 0.25f;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)dst = (k % 2 ? -1.0 : 1.0) * ((double)k * 1.0e3 + 1.0 / 3.0);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)dst = 1;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        /* Cycle through the non-zero values: UNSPECIFIED = 0 is the default. */
        const ProtobufCEnumDescriptor *e = f->descriptor;
        cr_assert_gt(e->n_values, 1, "%s: enum with no value besides 0", e->name);
        cr_assert_eq(e->values[0].value, 0, "%s: first value must be 0", e->name);
        *(int *)dst = e->values[1 + k % (e->n_values - 1)].value;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char buf[96];
        /* Non-ASCII UTF-8 on purpose: ids and descriptions may carry it. */
        snprintf(buf, sizeof buf, "%s-%u-\xc3\xa9", f->name, k);
        *(char **)dst = strdup(buf);
        cr_assert_not_null(*(char **)dst);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = dst;
        b->len = 3 + k % 5;
        b->data = s_xmalloc(b->len);
        for (size_t i = 0; i < b->len; i++)
            b->data[i] = (uint8_t)(k + i * 37);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        cr_assert_fail("s_fill_scalar called for a message field");
    }
}

static size_t s_scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return 4;
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return 8;
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static ProtobufCMessage *s_new_filled(const ProtobufCMessageDescriptor *d,
                                      unsigned *k, int depth);

/* One value (scalar or sub-message) of field f at dst. */
static void s_fill_value(const ProtobufCFieldDescriptor *f, void *dst,
                         unsigned *k, int depth)
{
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        *(ProtobufCMessage **)dst = s_new_filled(f->descriptor, k, depth + 1);
    else
        s_fill_scalar(f, dst, (*k)++);
}

static void s_fill(ProtobufCMessage *m, unsigned *k, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    cr_assert_lt(depth, S_MAX_DEPTH, "%s: nesting deeper than expected", d->name);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t sz = s_scalar_size(f->type);
            char *arr = s_xmalloc(sz * S_REPEAT);
            for (size_t j = 0; j < S_REPEAT; j++)
                s_fill_value(f, arr + j * sz, k, depth);
            *(size_t *)(base + f->quantifier_offset) = S_REPEAT;
            *(void **)(base + f->offset) = arr;
        } else {
            /* proto2-style presence (optional / oneof) would need its flag. */
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL
                && f->type != PROTOBUF_C_TYPE_MESSAGE
                && f->type != PROTOBUF_C_TYPE_STRING)
                *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
            s_fill_value(f, base + f->offset, k, depth);
        }
    }
}

static ProtobufCMessage *s_new_filled(const ProtobufCMessageDescriptor *d,
                                      unsigned *k, int depth)
{
    ProtobufCMessage *m = s_xmalloc(d->sizeof_message);
    d->message_init(m);
    s_fill(m, k, depth);
    return m;
}

/* ---- generic compare --------------------------------------------------- */

static int s_compare_msg(const ProtobufCMessage *a, const ProtobufCMessage *b,
                         char *path, size_t pathlen);

/* Compares one value of field f; appends to path on mismatch. */
static int s_compare_value(const ProtobufCFieldDescriptor *f, const void *a,
                           const void *b, char *path, size_t pathlen)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *sa = *(char *const *)a, *sb = *(char *const *)b;
        if (sa == NULL || sb == NULL)
            return sa == sb;
        return strcmp(sa, sb) == 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *ba = a, *bb = b;
        return ba->len == bb->len
            && (ba->len == 0 || memcmp(ba->data, bb->data, ba->len) == 0);
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *ma = *(ProtobufCMessage *const *)a;
        const ProtobufCMessage *mb = *(ProtobufCMessage *const *)b;
        if (ma == NULL || mb == NULL)
            return ma == mb;
        return s_compare_msg(ma, mb, path, pathlen);
    }
    default:
        /* Bitwise: a double must come back exactly, sign and all. */
        return memcmp(a, b, s_scalar_size(f->type)) == 0;
    }
}

static void s_path_push(char *path, size_t pathlen, const char *name, long idx)
{
    size_t used = strlen(path);
    if (used >= pathlen)
        return;
    if (idx >= 0)
        snprintf(path + used, pathlen - used, ".%s[%ld]", name, idx);
    else
        snprintf(path + used, pathlen - used, ".%s", name);
}

/* 1 when equal field by field; else 0 with path naming the first mismatch. */
static int s_compare_msg(const ProtobufCMessage *a, const ProtobufCMessage *b,
                         char *path, size_t pathlen)
{
    const ProtobufCMessageDescriptor *d = a->descriptor;
    if (b->descriptor != d)
        return 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *pa = (const char *)a, *pb = (const char *)b;
        size_t mark = strlen(path);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t na = *(const size_t *)(pa + f->quantifier_offset);
            size_t nb = *(const size_t *)(pb + f->quantifier_offset);
            if (na != nb) {
                s_path_push(path, pathlen, f->name, -1);
                return 0;
            }
            const char *arra = *(char *const *)(pa + f->offset);
            const char *arrb = *(char *const *)(pb + f->offset);
            size_t sz = s_scalar_size(f->type);
            for (size_t j = 0; j < na; j++) {
                s_path_push(path, pathlen, f->name, (long)j);
                if (!s_compare_value(f, arra + j * sz, arrb + j * sz, path, pathlen))
                    return 0;
                path[mark] = '\0';
            }
        } else {
            s_path_push(path, pathlen, f->name, -1);
            if (!s_compare_value(f, pa + f->offset, pb + f->offset, path, pathlen))
                return 0;
            path[mark] = '\0';
        }
    }
    return 1;
}

/* Asserts that no field of m (recursively) holds its proto3 default, so a
 * round trip of m really exercises every field. */
static void s_assert_all_set(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *p = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            cr_assert_eq(n, S_REPEAT, "%s.%s: repeated field not filled", d->name, f->name);
            if (f->type == PROTOBUF_C_TYPE_MESSAGE)
                for (size_t j = 0; j < n; j++)
                    s_assert_all_set((*(ProtobufCMessage *const *const *)p)[j]);
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            cr_assert_not_null(*(ProtobufCMessage *const *)p, "%s.%s", d->name, f->name);
            s_assert_all_set(*(ProtobufCMessage *const *)p);
        } else if (f->type == PROTOBUF_C_TYPE_STRING) {
            cr_assert_gt(strlen(*(char *const *)p), 0, "%s.%s", d->name, f->name);
        } else {
            static const char zero[16];
            cr_assert_neq(memcmp(p, zero, s_scalar_size(f->type)), 0,
                          "%s.%s still holds its default", d->name, f->name);
        }
    }
}

/* ---- helpers on the wire format ---------------------------------------- */

static uint8_t *s_pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = s_xmalloc(*len ? *len : 1);
    size_t wrote = protobuf_c_message_pack(m, buf);
    cr_assert_eq(wrote, *len, "%s: pack wrote %zu of %zu bytes",
                 m->descriptor->name, wrote, *len);
    return buf;
}

static size_t s_put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        out[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            out[n] |= 0x80;
        n++;
    } while (v);
    return n;
}

/* Reads a varint at buf[*pos]; 0 when it runs past len. */
static int s_get_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t b = buf[(*pos)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 1;
    }
    return 0;
}

/* Marks in boundary[0..len] the offsets where a top-level field starts or
 * the message ends: the only places a cut leaves a valid (shorter) message. */
static void s_top_level_boundaries(const uint8_t *buf, size_t len, char *boundary)
{
    size_t pos = 0;
    memset(boundary, 0, len + 1);
    while (pos < len) {
        uint64_t tag, n;
        boundary[pos] = 1;
        cr_assert(s_get_varint(buf, len, &pos, &tag));
        switch (tag & 7) {
        case 0: cr_assert(s_get_varint(buf, len, &pos, &n)); break;
        case 1: pos += 8; break;
        case 2: cr_assert(s_get_varint(buf, len, &pos, &n)); pos += n; break;
        case 5: pos += 4; break;
        default: cr_assert_fail("unexpected wire type %u", (unsigned)(tag & 7));
        }
        cr_assert_leq(pos, len);
    }
    boundary[len] = 1;
}

/* ---- tests ------------------------------------------------------------- */

Test(proto, every_message_round_trips_every_field)
{
    for (size_t i = 0; i < S_N_ALL; i++) {
        const ProtobufCMessageDescriptor *d = s_all[i];
        unsigned k = 1 + 1000 * (unsigned)i;
        ProtobufCMessage *m = s_new_filled(d, &k, 0);
        s_assert_all_set(m);

        size_t len;
        uint8_t *buf = s_pack(m, &len);
        cr_assert_gt(len, 0, "%s packed to nothing", d->name);
        ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, len, buf);
        cr_assert_not_null(u, "%s: unpack of its own packing failed", d->name);

        char path[S_PATH_MAX] = "";
        cr_assert(s_compare_msg(m, u, path, sizeof path),
                  "%s: field %s changed in the round trip", d->name, path);
        cr_assert_eq(u->n_unknown_fields, 0, "%s", d->name);

        /* Re-packing the decoded message gives the same bytes. */
        size_t len2;
        uint8_t *buf2 = s_pack(u, &len2);
        cr_assert_eq(len2, len, "%s", d->name);
        cr_assert_eq(memcmp(buf, buf2, len), 0, "%s: re-pack differs", d->name);

        free(buf2);
        free(buf);
        protobuf_c_message_free_unpacked(u, NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* The comparison above must be able to fail: change one deep field of a
 * decoded copy and it names that field. */
Test(proto, compare_detects_a_changed_field)
{
    unsigned k = 1;
    ProtobufCMessage *m = s_new_filled(&pcf__v1__snapshot_reply__descriptor, &k, 0);
    size_t len;
    uint8_t *buf = s_pack(m, &len);
    Pcf__V1__SnapshotReply *u = pcf__v1__snapshot_reply__unpack(NULL, len, buf);
    cr_assert_not_null(u);

    char path[S_PATH_MAX] = "";
    cr_assert(s_compare_msg(m, &u->base, path, sizeof path));
    u->topics[1]->pcf[0]->rows[1]->firm_equivalent_mw_se += 1e-9;
    path[0] = '\0';
    cr_assert_not(s_compare_msg(m, &u->base, path, sizeof path));
    cr_assert_str_eq(path, ".topics[1].pcf[0].rows[1].firm_equivalent_mw_se");

    free(buf);
    pcf__v1__snapshot_reply__free_unpacked(u, NULL);
    protobuf_c_message_free_unpacked(m, NULL);
}

/* s_all must name every message of the .proto, or the round trip above
 * would silently skip a new one. */
Test(proto, every_message_of_the_schema_is_tested)
{
    FILE *fp = fopen("proto/pcf.proto", "r");
    cr_assert_not_null(fp, "proto/pcf.proto (tests run from the repository root)");
    char line[512];
    unsigned found = 0;
    while (fgets(line, sizeof line, fp)) {
        char name[128];
        if (sscanf(line, " message %127[A-Za-z0-9_]", name) != 1)
            continue;
        found++;
        int listed = 0;
        for (size_t i = 0; i < S_N_ALL; i++)
            listed |= strcmp(s_all[i]->short_name, name) == 0;
        cr_assert(listed, "message %s of pcf.proto is missing from s_all", name);
    }
    fclose(fp);
    cr_assert_eq(found, S_N_ALL, "pcf.proto has %u messages, s_all %zu", found, S_N_ALL);
}

/* The generated API on realistic values: what the publisher will write. */
Test(proto, pcf_batch_explicit)
{
    Pcf__V1__InputsAsOf asof = PCF__V1__INPUTS_AS_OF__INIT;
    asof.scada_ms = 1795651200000;          /* 2026-11-24T00:00:00Z */
    asof.weather_issued_ms = 1795629600000;
    asof.outages_ms = 1795600000123;
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    h.schema_version = PCF__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT;
    h.zone = "demo";
    h.topic = "pcf.da.demo";
    h.sequence = UINT64_MAX - 1;
    h.run_id = 42;
    h.run_kind = PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD;
    h.computed_at_ms = 1795690000000;
    h.inputs_as_of = &asof;
    h.stream_epoch = 7;
    Pcf__V1__BatchInfo bi = PCF__V1__BATCH_INFO__INIT;
    bi.settlement_date = "2026-10-25";
    bi.horizon_start_ms = 1792882800000;     /* 2026-10-24T23:00Z = local midnight BST */
    bi.horizon_end_ms = bi.horizon_start_ms + 50LL * 1800000;
    bi.sp_count = 50;
    bi.part = 1;
    bi.part_count = 1;
    bi.samples = 10000;
    bi.firm_confidence = 0.95;

    Pcf__V1__Pcf r0 = PCF__V1__PCF__INIT, r1 = PCF__V1__PCF__INIT;
    r0.site_id = "WF-07";
    r0.lifo_position = 31;
    r0.sp = 50;
    r0.sp_start_ms = bi.horizon_start_ms + 49LL * 1800000;
    r0.sp_length_ms = 1800000;
    r0.p_curtailed = 0.1234;
    r0.expected_curtailed_mwh = 1.75;
    r0.deliverable_p10_mw = 3.5;
    r0.deliverable_p50_mw = 9.25;
    r0.deliverable_p90_mw = 12.0;
    r0.firm_equivalent_mw = 2.125;
    r0.export_capacity_mw = 12.0;
    r0.samples = 10000;
    r0.p_curtailed_se = 0.0033;
    r0.firm_equivalent_mw_se = 0.04;
    r1.site_id = "PV-01";                    /* an all-zero row: never curtailed */
    r1.lifo_position = 1;
    r1.sp = 1;
    Pcf__V1__Pcf *rows[] = { &r0, &r1 };
    Pcf__V1__PcfBatch b = PCF__V1__PCF_BATCH__INIT;
    b.header = &h;
    b.batch = &bi;
    b.n_rows = 2;
    b.rows = rows;

    size_t len = pcf__v1__pcf_batch__get_packed_size(&b);
    uint8_t buf[1024];
    cr_assert_lt(len, sizeof buf);
    cr_assert_eq(pcf__v1__pcf_batch__pack(&b, buf), len);

    Pcf__V1__PcfBatch *u = pcf__v1__pcf_batch__unpack(NULL, len, buf);
    cr_assert_not_null(u);
    cr_assert_eq(u->header->schema_version, 1);
    cr_assert_str_eq(u->header->topic, "pcf.da.demo");
    cr_assert_eq(u->header->sequence, UINT64_MAX - 1);
    cr_assert_eq(u->header->run_kind, PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD);
    cr_assert_eq(u->header->inputs_as_of->outages_ms, 1795600000123);
    cr_assert_eq(u->header->request_id, 0);
    cr_assert_str_eq(u->batch->settlement_date, "2026-10-25");
    cr_assert_eq(u->batch->sp_count, 50);
    cr_assert_eq(u->n_rows, 2);
    cr_assert_str_eq(u->rows[0]->site_id, "WF-07");
    cr_assert_eq(u->rows[0]->sp_start_ms, 1792882800000 + 49LL * 1800000);
    cr_assert_eq(u->rows[0]->p_curtailed, 0.1234);
    cr_assert_eq(u->rows[0]->firm_equivalent_mw, 2.125);
    cr_assert_eq(u->rows[0]->deliverable_p50_mw_se, 0.0);
    cr_assert_str_eq(u->rows[1]->site_id, "PV-01");
    cr_assert_eq(u->rows[1]->p_curtailed, 0.0);
    pcf__v1__pcf_batch__free_unpacked(u, NULL);
}

/* A newer publisher adds fields (every wire type) to the batch and to each
 * row, and a value to an enum; a v1 decoder keeps what it knows. */
Test(proto, unknown_fields_from_a_newer_schema_are_skipped)
{
    unsigned k = 500;
    Pcf__V1__Pcf *row = (Pcf__V1__Pcf *)s_new_filled(&pcf__v1__pcf__descriptor, &k, 1);
    Pcf__V1__Header *hdr = (Pcf__V1__Header *)s_new_filled(&pcf__v1__header__descriptor, &k, 1);

    /* The newer row: v1 fields, then field 14 (a free one-byte tag, varint),
     * 40 (fixed64), 41 (string) and 2000 (fixed32). */
    uint8_t rowbuf[1024];
    size_t rowlen = pcf__v1__pcf__pack(row, rowbuf);
    rowlen += s_put_varint(rowbuf + rowlen, (14u << 3) | 0);
    rowlen += s_put_varint(rowbuf + rowlen, 300);
    rowlen += s_put_varint(rowbuf + rowlen, (40u << 3) | 1);
    memset(rowbuf + rowlen, 0xAB, 8), rowlen += 8;
    rowlen += s_put_varint(rowbuf + rowlen, (41u << 3) | 2);
    rowlen += s_put_varint(rowbuf + rowlen, 5);
    memcpy(rowbuf + rowlen, "hello", 5), rowlen += 5;
    rowlen += s_put_varint(rowbuf + rowlen, (2000u << 3) | 5);
    memset(rowbuf + rowlen, 0xCD, 4), rowlen += 4;

    /* The newer header: run_kind (field 6) set to 9, a value v1 lacks. */
    uint8_t hdrbuf[512];
    size_t hdrlen = pcf__v1__header__pack(hdr, hdrbuf);
    hdrlen += s_put_varint(hdrbuf + hdrlen, (6u << 3) | 0);
    hdrlen += s_put_varint(hdrbuf + hdrlen, 9);

    /* The newer batch: header (1), rows (3) twice, an unknown sub-message
     * (field 9) and an unknown varint at 536870911, the largest field number. */
    uint8_t buf[4096];
    size_t len = 0;
    len += s_put_varint(buf + len, (1u << 3) | 2);
    len += s_put_varint(buf + len, hdrlen);
    memcpy(buf + len, hdrbuf, hdrlen), len += hdrlen;
    for (int i = 0; i < 2; i++) {
        len += s_put_varint(buf + len, (3u << 3) | 2);
        len += s_put_varint(buf + len, rowlen);
        memcpy(buf + len, rowbuf, rowlen), len += rowlen;
    }
    len += s_put_varint(buf + len, (9u << 3) | 2);
    len += s_put_varint(buf + len, rowlen);
    memcpy(buf + len, rowbuf, rowlen), len += rowlen;
    len += s_put_varint(buf + len, ((uint64_t)536870911u << 3) | 0);
    len += s_put_varint(buf + len, UINT64_MAX);
    cr_assert_lt(len, sizeof buf);

    Pcf__V1__PcfBatch *u = pcf__v1__pcf_batch__unpack(NULL, len, buf);
    cr_assert_not_null(u, "a v1 decoder must accept a newer batch");
    cr_assert_eq(u->n_rows, 2);
    for (size_t i = 0; i < 2; i++) {
        char path[S_PATH_MAX] = "";
        cr_assert(s_compare_msg(&row->base, &u->rows[i]->base, path, sizeof path),
                  "row %zu: known field %s damaged by unknown ones", i, path);
        cr_assert_eq(u->rows[i]->base.n_unknown_fields, 4);
    }
    cr_assert_eq(u->base.n_unknown_fields, 2);
    cr_assert_null(u->batch);
    /* Open enum: the unknown value is kept as a number; receivers treat it
     * as RUN_KIND_UNSPECIFIED (docs/protocol.md). */
    cr_assert_eq((int)u->header->run_kind, 9);
    cr_assert_str_eq(u->header->zone, hdr->zone);
    cr_assert_eq(u->header->request_id, hdr->request_id);

    pcf__v1__pcf_batch__free_unpacked(u, NULL);
    protobuf_c_message_free_unpacked(&row->base, NULL);
    protobuf_c_message_free_unpacked(&hdr->base, NULL);
}

/* Every prefix of every message: NULL unless the cut lands between two
 * top-level fields (then it is a valid, shorter message). */
Test(proto, truncated_buffers_fail_to_unpack)
{
    for (size_t i = 0; i < S_N_ALL; i++) {
        const ProtobufCMessageDescriptor *d = s_all[i];
        unsigned k = 7;
        ProtobufCMessage *m = s_new_filled(d, &k, 0);
        size_t len;
        uint8_t *buf = s_pack(m, &len);
        char *boundary = s_xmalloc(len + 1);
        s_top_level_boundaries(buf, len, boundary);

        size_t nulls = 0;
        for (size_t cut = 0; cut < len; cut++) {
            /* A fresh copy of exactly cut bytes, so ASan sees any over-read. */
            uint8_t *prefix = s_xmalloc(cut ? cut : 1);
            memcpy(prefix, buf, cut);
            ProtobufCMessage *u = protobuf_c_message_unpack(d, NULL, cut, prefix);
            if (boundary[cut])
                cr_assert_not_null(u, "%s cut at %zu (a field boundary)", d->name, cut);
            else
                cr_assert_null(u, "%s cut at %zu of %zu decoded", d->name, cut, len);
            nulls += u == NULL;
            protobuf_c_message_free_unpacked(u, NULL);
            free(prefix);
        }
        cr_assert_gt(nulls, 0, "%s", d->name);
        free(boundary);
        free(buf);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* Lengths that lie: bigger than the buffer, bigger than the parent, huge. */
Test(proto, hostile_lengths_fail_to_unpack)
{
    uint8_t buf[64];
    size_t len = 0;

    /* rows (3) claims 2^32 bytes. */
    len = s_put_varint(buf, (3u << 3) | 2);
    len += s_put_varint(buf + len, 0xFFFFFFFFu);
    cr_assert_null(pcf__v1__pcf_batch__unpack(NULL, len, buf));

    /* rows (3) claims 2^63 bytes (overflows a size_t addition). */
    len = s_put_varint(buf, (3u << 3) | 2);
    len += s_put_varint(buf + len, 0x8000000000000000ull);
    cr_assert_null(pcf__v1__pcf_batch__unpack(NULL, len, buf));

    /* A row of 4 bytes whose site_id (1) claims 10. */
    len = s_put_varint(buf, (3u << 3) | 2);
    len += s_put_varint(buf + len, 4);
    len += s_put_varint(buf + len, (1u << 3) | 2);
    len += s_put_varint(buf + len, 10);
    memcpy(buf + len, "ab", 2), len += 2;
    memcpy(buf + len, "cdefghijkl", 10), len += 10;
    cr_assert_null(pcf__v1__pcf_batch__unpack(NULL, len, buf));

    /* A varint that never ends. */
    memset(buf, 0xFF, 12);
    buf[0] = (2u << 3) | 0;  /* Pcf.lifo_position */
    cr_assert_null(pcf__v1__pcf__unpack(NULL, 12, buf));

    /* Wire type 7 does not exist; field number 0 is invalid. */
    buf[0] = (1u << 3) | 7;
    buf[1] = 0;
    cr_assert_null(pcf__v1__pcf__unpack(NULL, 2, buf));
    buf[0] = 0;
    buf[1] = 1;
    cr_assert_null(pcf__v1__pcf__unpack(NULL, 2, buf));

    /* A known field with the wrong wire type: site_id (string) as varint. */
    buf[0] = (1u << 3) | 0;
    buf[1] = 1;
    cr_assert_null(pcf__v1__pcf__unpack(NULL, 2, buf));
}

/* Random bytes and randomly corrupted valid messages: decode or NULL, never a
 * crash or a leak (the ASan run holds us to that).  A fixed seed keeps
 * failures reproducible; the fuzz target is the place for long runs. */
Test(proto, random_bytes_never_crash)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < S_N_ALL; i++) {
        const ProtobufCMessageDescriptor *d = s_all[i];
        unsigned k = 3;
        ProtobufCMessage *m = s_new_filled(d, &k, 0);
        size_t len;
        uint8_t *good = s_pack(m, &len);
        for (int round = 0; round < 200; round++) {
            uint8_t *buf = s_xmalloc(len);
            memcpy(buf, good, len);
            for (int flips = 0; flips < 1 + round % 4; flips++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;   /* xorshift64 */
                buf[x % len] = (uint8_t)(x >> 24);
            }
            protobuf_c_message_free_unpacked(
                protobuf_c_message_unpack(d, NULL, len, buf), NULL);
            /* Pure noise of the same length. */
            for (size_t j = 0; j < len; j++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[j] = (uint8_t)x;
            }
            protobuf_c_message_free_unpacked(
                protobuf_c_message_unpack(d, NULL, len, buf), NULL);
            free(buf);
        }
        free(good);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}
