/*
 * subscriber.c -- the protocol's client side (see subscriber.h).
 *
 * Per topic we keep the last sequence applied and the heartbeat's view of
 * it; a small hand-written protobuf walker reads headers and the
 * SnapshotReply framing, so batches are passed on exactly as published
 * (bytes) and decoded only by whoever wants the rows.
 */
#include "subscriber.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define TOPIC_MAX 96
#define TOPICS_MAX 4096
#define QUEUE_MAX 100000
#define TYPE_MAX 128

typedef struct s_topic {
    char name[TOPIC_MAX];
    uint64_t epoch;           /* stream epoch of the publisher of this topic; 0 = none yet */
    uint64_t last;            /* last sequence applied; 0 = none yet */
    uint64_t hb_seq;          /* heartbeat says the topic reached this */
    int64_t hb_deadline_ms;   /* resync if still behind after this */
    int orphan;               /* the last resync of this topic found no state for it */
} s_topic;

typedef struct s_qmsg {
    char topic[TOPIC_MAX];
    uint8_t *body;
    size_t len;
} s_qmsg;

struct subscriber {
    subscriber_config cfg;
    char pub_ep[256], router_ep[256];
    char server_key[41], public_key[41], secret_key[41];
    void *ctx, *sub, *dealer;
    char **prefixes;
    size_t nprefixes;
    s_topic *topics;
    size_t ntopics, cap;
    uint64_t epoch;
    uint64_t next_request_id;
    int64_t hb_interval_ms, last_hb_ms;
    s_qmsg *queue;            /* live messages held during a recovery */
    size_t nqueue, qcap;
    int queue_overflow;
    int recovering;
    subscriber_stats stats;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pcf_rc s_zerr(pcf_error *err, const char *what)
{
    return pcf_error_set(err, PCF_ERR_NET, "%s: %s", what, zmq_strerror(zmq_errno()));
}

/* ---- protobuf walking ------------------------------------------------------ */

typedef struct s_field {
    unsigned num, wire;
    uint64_t v;               /* varint value */
    const uint8_t *data;      /* length-delimited payload */
    size_t len;
} s_field;

static int s_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Next top-level field; 1 got one, 0 end, -1 malformed. */
static int s_next_field(const uint8_t **p, const uint8_t *end, s_field *f)
{
    if (*p >= end) return 0;
    uint64_t tag;
    if (s_varint(p, end, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return -1;
    f->num = (unsigned)(tag >> 3);
    f->wire = (unsigned)(tag & 7);
    f->data = NULL;
    f->len = 0;
    switch (f->wire) {
    case 0: return s_varint(p, end, &f->v) == 0 ? 1 : -1;
    case 1:
        if (end - *p < 8) return -1;
        *p += 8;
        return 1;
    case 5:
        if (end - *p < 4) return -1;
        *p += 4;
        return 1;
    case 2: {
        uint64_t n;
        if (s_varint(p, end, &n) != 0 || n > (uint64_t)(end - *p)) return -1;
        f->data = *p;
        f->len = (size_t)n;
        *p += n;
        return 1;
    }
    default: return -1;
    }
}

Pcf__V1__Header *subscriber_peek(const uint8_t *body, size_t len, uint32_t *part, uint32_t *part_count)
{
    const uint8_t *p = body, *end = body + len;
    s_field f;
    int r;
    Pcf__V1__Header *h = NULL;
    *part = *part_count = 0;
    while ((r = s_next_field(&p, end, &f)) == 1) {
        if (f.wire != 2) continue;
        if (f.num == 1 && !h) {
            h = pcf__v1__header__unpack(NULL, f.len, f.data);
            if (!h) return NULL;
        } else if (f.num == 2) {
            Pcf__V1__BatchInfo *bi = pcf__v1__batch_info__unpack(NULL, f.len, f.data);
            if (bi) {
                *part = bi->part;
                *part_count = bi->part_count;
                pcf__v1__batch_info__free_unpacked(bi, NULL);
            }
        }
    }
    if (r < 0 && h) {
        pcf__v1__header__free_unpacked(h, NULL);
        return NULL;
    }
    return h;
}

/* Fast header decoding, by protobuf-c 1.4's rules (subscriber_peek gets
 * them from protobuf-c itself; tests/test_subscriber_peek.c holds the two
 * together): a tag is at most 5 bytes, its field number the low 32 bits
 * shifted, and only a first byte of 0-7 is a bad tag (field 0 written
 * longer is just unknown); a length prefix is at most 5 bytes and at most
 * INT_MAX; a known field with another wire type fails the message; unknown
 * fields are skipped; a field seen twice keeps the last value, an embedded
 * message included (no merging); integers are truncated to their width. */
static int s_pbc_next_field(const uint8_t **pp, const uint8_t *end, s_field *f)
{
    const uint8_t *p = *pp;
    size_t rem = (size_t)(end - p);
    if (rem == 0) return 0;
    if ((p[0] & 0xf8) == 0) return -1;
    uint32_t tag = (uint32_t)(p[0] & 0x7f) >> 3;
    size_t n = 1;
    if (p[0] & 0x80) {
        size_t max = rem < 5 ? rem : 5;
        unsigned shift = 4;
        for (;; n++) {
            if (n == max) return -1;
            tag |= (uint32_t)((uint64_t)(p[n] & 0x7f) << shift);
            shift += 7;
            if (!(p[n] & 0x80)) {
                n++;
                break;
            }
        }
    }
    f->num = tag;
    f->wire = p[0] & 7;
    f->data = NULL;
    f->len = 0;
    p += n;
    rem -= n;
    switch (f->wire) {
    case 0: {
        const uint8_t *q = p;
        if (s_varint(&q, end, &f->v) != 0) return -1;
        p = q;
        break;
    }
    case 1:
    case 5: {
        size_t w = f->wire == 1 ? 8 : 4;
        if (rem < w) return -1;
        p += w;
        break;
    }
    case 2: {
        size_t max = rem < 5 ? rem : 5, i = 0;
        uint64_t len = 0;
        for (; i < max; i++) {
            len |= (uint64_t)(p[i] & 0x7f) << (7 * i);
            if (!(p[i] & 0x80)) break;
        }
        if (i == max || len > 0x7fffffff || i + 1 + len > rem) return -1;
        f->data = p + i + 1;
        f->len = (size_t)len;
        p += i + 1 + len;
        break;
    }
    default: return -1;
    }
    *pp = p;
    return 1;
}

static int s_copy_str(char *dst, const s_field *f)
{
    if (f->wire != 2) return -1;
    if (f->len >= SUBSCRIBER_STR_MAX) return -2;
    memcpy(dst, f->data, f->len);
    dst[f->len] = '\0';
    return 0;
}

static int s_fast_inputs(const uint8_t *p, size_t len, Pcf__V1__InputsAsOf *in)
{
    const uint8_t *end = p + len;
    s_field f;
    int r;
    pcf__v1__inputs_as_of__init(in);
    while ((r = s_pbc_next_field(&p, end, &f)) == 1) {
        if (f.num == 0 || f.num > 3) continue;   /* 0: a long tag, unknown to protobuf-c */
        if (f.wire != 0) return -1;
        if (f.num == 1) in->scada_ms = (int64_t)f.v;
        else if (f.num == 2) in->weather_issued_ms = (int64_t)f.v;
        else in->outages_ms = (int64_t)f.v;
    }
    return r;
}

static int s_fast_header(const uint8_t *p, size_t len, subscriber_head *o)
{
    const uint8_t *end = p + len;
    Pcf__V1__Header *h = &o->h;
    s_field f;
    int r;
    while ((r = s_pbc_next_field(&p, end, &f)) == 1) {
        switch (f.num) {
        case 2:
        case 3:
            if ((r = s_copy_str(f.num == 2 ? o->zone : o->topic, &f)) != 0) return r;
            break;
        case 8:
            if (f.wire != 2 || s_fast_inputs(f.data, f.len, &o->in) != 0) return -1;
            h->inputs_as_of = &o->in;
            break;
        case 1: case 4: case 5: case 6: case 7: case 9: case 10:
            if (f.wire != 0) return -1;
            if (f.num == 1) h->schema_version = (uint32_t)f.v;
            else if (f.num == 4) h->sequence = f.v;
            else if (f.num == 5) h->run_id = (int64_t)f.v;
            else if (f.num == 6) h->run_kind = (Pcf__V1__RunKind)(int32_t)f.v;
            else if (f.num == 7) h->computed_at_ms = (int64_t)f.v;
            else if (f.num == 9) h->stream_epoch = f.v;
            else h->request_id = f.v;
            break;
        default: break;
        }
    }
    return r;
}

/* part and part_count of a BatchInfo; -1 when protobuf-c would not decode it. */
static int s_fast_batch(const uint8_t *p, size_t len, uint32_t *part, uint32_t *part_count)
{
    const uint8_t *end = p + len;
    uint32_t a = 0, b = 0;
    s_field f;
    int r;
    while ((r = s_pbc_next_field(&p, end, &f)) == 1) {
        if (f.num == 0 || f.num > 8) continue;
        unsigned want = f.num == 1 ? 2u : f.num == 8 ? 1u : 0u;
        if (f.wire != want) return -1;
        if (f.num == 5) a = (uint32_t)f.v;
        else if (f.num == 6) b = (uint32_t)f.v;
    }
    if (r < 0) return -1;
    *part = a;
    *part_count = b;
    return 0;
}

int subscriber_peek_fast(const uint8_t *body, size_t len, subscriber_head *o)
{
    const uint8_t *p = body, *end = body + len;
    s_field f;
    int r, have = 0;
    pcf__v1__header__init(&o->h);
    o->zone[0] = o->topic[0] = '\0';
    o->h.zone = o->zone;
    o->h.topic = o->topic;
    o->part = o->part_count = 0;
    while ((r = s_next_field(&p, end, &f)) == 1) {
        if (f.wire != 2) continue;
        if (f.num == 1 && !have) {
            if ((r = s_fast_header(f.data, f.len, o)) != 0) return r;
            have = 1;
        } else if (f.num == 2) {
            s_fast_batch(f.data, f.len, &o->part, &o->part_count);
        }
    }
    return r < 0 || !have ? -1 : 0;
}

/* ---- setup ------------------------------------------------------------------- */

static pcf_rc s_curve_client(subscriber *s, void *sock, pcf_error *err)
{
    if (!s->server_key[0]) return PCF_OK;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, s->server_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, s->public_key, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, s->secret_key, 40) != 0)
        return s_zerr(err, "curve keys");
    return PCF_OK;
}

static pcf_rc s_open_dealer(subscriber *s, pcf_error *err)
{
    if (s->dealer) zmq_close(s->dealer);
    s->dealer = zmq_socket(s->ctx, ZMQ_DEALER);
    if (!s->dealer) return s_zerr(err, "zmq_socket DEALER");
    int zero = 0;
    zmq_setsockopt(s->dealer, ZMQ_LINGER, &zero, sizeof zero);
    pcf_rc rc = s_curve_client(s, s->dealer, err);
    if (rc != PCF_OK) return rc;
    if (zmq_connect(s->dealer, s->router_ep) != 0) return s_zerr(err, s->router_ep);
    return PCF_OK;
}

static int s_copy_key(char *dst, const char *src)
{
    if (!src || !*src) {
        dst[0] = '\0';
        return 0;
    }
    if (strlen(src) != 40) return -1;
    memcpy(dst, src, 41);
    return 0;
}

subscriber *subscriber_new(const subscriber_config *cfg, pcf_error *err)
{
    subscriber *s = calloc(1, sizeof *s);
    if (!s) {
        pcf_error_set(err, PCF_ERR_NOMEM, "subscriber: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    snprintf(s->pub_ep, sizeof s->pub_ep, "%s", cfg->pub_endpoint ? cfg->pub_endpoint : "tcp://127.0.0.1:5556");
    snprintf(s->router_ep, sizeof s->router_ep, "%s",
             cfg->router_endpoint ? cfg->router_endpoint : "tcp://127.0.0.1:5557");
    if (s_copy_key(s->server_key, cfg->server_public_key) || s_copy_key(s->public_key, cfg->public_key) ||
        s_copy_key(s->secret_key, cfg->secret_key) || (s->server_key[0] && (!s->public_key[0] || !s->secret_key[0]))) {
        pcf_error_set(err, PCF_ERR_INVALID, "curve: a server key needs this client's public and secret key (40 Z85 characters each)");
        free(s);
        return NULL;
    }
    s->hb_interval_ms = 0;
    s->ctx = zmq_ctx_new();
    s->sub = s->ctx ? zmq_socket(s->ctx, ZMQ_SUB) : NULL;
    if (!s->sub) {
        s_zerr(err, "zmq_socket SUB");
        subscriber_destroy(&s);
        return NULL;
    }
    int hwm = cfg->rcvhwm > 0 ? cfg->rcvhwm : 100000, zero = 0;
    zmq_setsockopt(s->sub, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s->sub, ZMQ_LINGER, &zero, sizeof zero);
    if (s_curve_client(s, s->sub, err) != PCF_OK || s_open_dealer(s, err) != PCF_OK) {
        subscriber_destroy(&s);
        return NULL;
    }
    if (zmq_connect(s->sub, s->pub_ep) != 0) {
        s_zerr(err, s->pub_ep);
        subscriber_destroy(&s);
        return NULL;
    }
    s->next_request_id = 1;
    return s;
}

static void s_clear_queue(subscriber *s)
{
    for (size_t i = 0; i < s->nqueue; i++) free(s->queue[i].body);
    s->nqueue = 0;
}

void subscriber_destroy(subscriber **sp)
{
    subscriber *s = *sp;
    if (!s) return;
    if (s->sub) zmq_close(s->sub);
    if (s->dealer) zmq_close(s->dealer);
    if (s->ctx) zmq_ctx_term(s->ctx);
    for (size_t i = 0; i < s->nprefixes; i++) free(s->prefixes[i]);
    free(s->prefixes);
    s_clear_queue(s);
    free(s->queue);
    free(s->topics);
    free(s);
    *sp = NULL;
}

pcf_rc subscriber_add_prefix(subscriber *s, const char *prefix, pcf_error *err)
{
    if (strlen(prefix) >= TOPIC_MAX) return pcf_error_set(err, PCF_ERR_LIMIT, "prefix: longer than %d bytes", TOPIC_MAX - 1);
    char **v = realloc(s->prefixes, (s->nprefixes + 1) * sizeof *v);
    if (!v) return pcf_error_set(err, PCF_ERR_NOMEM, "out of memory");
    s->prefixes = v;
    if (!(v[s->nprefixes] = strdup(prefix))) return pcf_error_set(err, PCF_ERR_NOMEM, "out of memory");
    s->nprefixes++;
    if (zmq_setsockopt(s->sub, ZMQ_SUBSCRIBE, prefix, strlen(prefix)) != 0) return s_zerr(err, "ZMQ_SUBSCRIBE");
    return PCF_OK;
}

static s_topic *s_topic_find(subscriber *s, const char *name, int create)
{
    for (size_t i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].name, name) == 0) return &s->topics[i];
    if (!create || s->ntopics == TOPICS_MAX || strlen(name) >= TOPIC_MAX) return NULL;
    if (s->ntopics == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        s_topic *v = realloc(s->topics, cap * sizeof *v);
        if (!v) return NULL;
        s->topics = v;
        s->cap = cap;
    }
    s_topic *t = &s->topics[s->ntopics++];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, strlen(name) + 1);
    return t;
}

uint64_t subscriber_last(const subscriber *s, const char *topic)
{
    for (size_t i = 0; i < s->ntopics; i++)
        if (strcmp(s->topics[i].name, topic) == 0) return s->topics[i].last;
    return 0;
}

uint64_t subscriber_epoch(const subscriber *s) { return s->epoch; }
void subscriber_get_stats(const subscriber *s, subscriber_stats *st) { *st = s->stats; }

/* ---- requests ------------------------------------------------------------------ */

static int s_recv_frames(void *sock, zmq_msg_t *f, int max, int *n, int flags)
{
    int more = 1;
    *n = 0;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, flags) < 0) {
            zmq_msg_close(&m);
            return *n ? 0 : -1;
        }
        flags = 0;   /* the rest of a multipart message is already here */
        more = zmq_msg_more(&m);
        if (*n < max) f[(*n)++] = m;
        else zmq_msg_close(&m);
    }
    return 0;
}

static void s_close_frames(zmq_msg_t *f, int n)
{
    for (int i = 0; i < n; i++) zmq_msg_close(&f[i]);
}

static pcf_rc s_queue_or_drop(subscriber *s, zmq_msg_t *f, int n);

/* Waits for the reply to request_id, queueing feed messages meanwhile. */
static pcf_rc s_wait_reply(subscriber *s, uint64_t request_id, char *reply_type, uint8_t **reply, size_t *reply_len,
                           pcf_error *err)
{
    int timeout = s->cfg.request_timeout_ms > 0 ? s->cfg.request_timeout_ms : 10000;
    int64_t deadline = s_now_ms() + timeout;
    for (;;) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0) break;
        zmq_pollitem_t it[2] = {{s->dealer, 0, ZMQ_POLLIN, 0}, {s->sub, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, s->recovering ? 2 : 1, (long)left) < 0) return s_zerr(err, "zmq_poll");
        if (s->recovering && (it[1].revents & ZMQ_POLLIN)) {
            zmq_msg_t f[4];
            int n;
            while (s_recv_frames(s->sub, f, 4, &n, ZMQ_DONTWAIT) == 0) s_queue_or_drop(s, f, n);
        }
        if (!(it[0].revents & ZMQ_POLLIN)) continue;
        zmq_msg_t f[4];
        int n;
        if (s_recv_frames(s->dealer, f, 4, &n, ZMQ_DONTWAIT) != 0) continue;
        if (n == 3 && zmq_msg_size(&f[0]) == 0 && zmq_msg_size(&f[1]) <= TYPE_MAX) {
            subscriber_head hd;
            int mine = subscriber_peek_fast(zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &hd) == 0 &&
                       hd.h.request_id == request_id;
            if (mine) {
                size_t tl = zmq_msg_size(&f[1]);
                memcpy(reply_type, zmq_msg_data(&f[1]), tl);
                reply_type[tl] = '\0';
                *reply_len = zmq_msg_size(&f[2]);
                *reply = malloc(*reply_len + 1);
                if (*reply) memcpy(*reply, zmq_msg_data(&f[2]), *reply_len);
                s_close_frames(f, n);
                return *reply ? PCF_OK : pcf_error_set(err, PCF_ERR_NOMEM, "reply: out of memory");
            }
        }
        s_close_frames(f, n);   /* a stale reply to an earlier, timed-out request */
    }
    /* A reply may still come; a fresh DEALER makes sure it is never mistaken. */
    s_open_dealer(s, err);
    return pcf_error_set(err, PCF_ERR_NET, "no reply from %s within %d ms", s->router_ep, timeout);
}

pcf_rc subscriber_request(subscriber *s, const char *type, const ProtobufCMessage *req, char *reply_type,
                          uint8_t **reply, size_t *reply_len, pcf_error *err)
{
    *reply = NULL;
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len + 1);
    if (!buf) return pcf_error_set(err, PCF_ERR_NOMEM, "request: out of memory");
    protobuf_c_message_pack(req, buf);
    subscriber_head hd;
    uint64_t id = subscriber_peek_fast(buf, len, &hd) == 0 ? hd.h.request_id : 0;
    int bad = zmq_send(s->dealer, "", 0, ZMQ_SNDMORE) < 0 || zmq_send(s->dealer, type, strlen(type), ZMQ_SNDMORE) < 0 ||
              zmq_send(s->dealer, buf, len, 0) < 0;
    free(buf);
    if (bad) return s_zerr(err, "request send");
    return s_wait_reply(s, id, reply_type, reply, reply_len, err);
}

/* ---- feed handling ---------------------------------------------------------------- */

static pcf_rc s_recover(subscriber *s, const char *prefix, subscriber_fn fn, void *ctx, pcf_error *err);

static int s_subscribed(const subscriber *s, const char *topic)
{
    for (size_t i = 0; i < s->nprefixes; i++)
        if (strncmp(topic, s->prefixes[i], strlen(s->prefixes[i])) == 0) return 1;
    return 0;
}

static void s_deliver(subscriber *s, const char *topic, const uint8_t *body, size_t len, const Pcf__V1__Header *h,
                      uint32_t part, uint32_t part_count, int snap, subscriber_fn fn, void *ctx)
{
    subscriber_msg m = {topic, body, len, h, part, part_count, snap};
    s->stats.delivered++;
    if (fn) fn(ctx, &m);
}

static void s_heartbeat(subscriber *s, const uint8_t *body, size_t len, uint64_t epoch)
{
    Pcf__V1__Heartbeat *hb = pcf__v1__heartbeat__unpack(NULL, len, body);
    if (!hb) {
        s->stats.malformed++;
        return;
    }
    s->stats.heartbeats++;
    s->last_hb_ms = s_now_ms();
    s->hb_interval_ms = hb->interval_ms > 0 && hb->interval_ms < 3600000 ? hb->interval_ms : 3000;
    for (size_t i = 0; i < hb->n_topics; i++) {
        const Pcf__V1__TopicStatus *ts = hb->topics[i];
        if (!ts->topic || !s_subscribed(s, ts->topic)) continue;
        s_topic *t = s_topic_find(s, ts->topic, 1);
        if (t && t->epoch && epoch && t->epoch != epoch) {
            /* The topic's publisher restarted (a new epoch): its old
             * sequences mean nothing; resync it from the snapshot now. */
            t->epoch = epoch;
            t->last = 0;
            t->hb_seq = ts->sequence ? ts->sequence : 1;
            t->hb_deadline_ms = s_now_ms();
        } else if (t && ts->sequence > t->last && ts->sequence > t->hb_seq) {
            t->hb_seq = ts->sequence;
            t->hb_deadline_ms = s_now_ms() + s->hb_interval_ms;
        }
    }
    pcf__v1__heartbeat__free_unpacked(hb, NULL);
}

/* Applies one live message: sequence rules of protocol section 5, step 4. */
static pcf_rc s_live(subscriber *s, const char *topic, const uint8_t *body, size_t len, subscriber_fn fn, void *ctx,
                     pcf_error *err)
{
    /* Decoded on the stack: this runs once per message received. */
    subscriber_head hd;
    const Pcf__V1__Header *h = &hd.h;
    if (subscriber_peek_fast(body, len, &hd) != 0 || h->schema_version != 1 || strcmp(h->topic, topic) != 0) {
        s->stats.malformed++;
        return PCF_OK;
    }
    uint32_t part = hd.part, part_count = hd.part_count;
    s->epoch = h->stream_epoch;
    if (strcmp(topic, "hb") == 0) {
        s_heartbeat(s, body, len, h->stream_epoch);
        s_deliver(s, topic, body, len, h, 0, 0, 0, fn, ctx);
        return PCF_OK;
    }
    /* Epochs are kept per topic: behind a forwarder (pcf-proxy) topics of
     * several publishers arrive interleaved, each with its own epoch. */
    s_topic *t = s_topic_find(s, topic, 1);
    if (t && t->epoch && h->stream_epoch != t->epoch) {
        /* This topic's publisher restarted: its sequences start again. */
        char name[TOPIC_MAX];
        memcpy(name, topic, strlen(topic) + 1);
        t->epoch = h->stream_epoch;
        t->last = 0;
        return s_recover(s, name, fn, ctx, err);
    }
    if (t) t->epoch = h->stream_epoch;
    /* A topic the snapshot did not hold has last == 0, so it starts at
     * sequence 1 like any other: a lost first message is a gap too. */
    if (!t) {
        s->stats.malformed++;
    } else if (h->sequence <= t->last) {
        s->stats.duplicates++;
    } else if (h->sequence == t->last + 1 || (t->orphan && part == 1)) {
        /* An orphan (no snapshot can give its state: another publisher's
         * topic behind pcf-proxy) starts again at the next whole run. */
        t->orphan = 0;
        t->last = h->sequence;
        if (t->hb_seq <= t->last) t->hb_seq = 0;
        s_deliver(s, topic, body, len, h, part, part_count, 0, fn, ctx);
    } else if (t->orphan) {
        s->stats.skipped++;   /* the rest of a run whose start was lost */
    } else {
        s->stats.gaps++;
        char name[TOPIC_MAX];
        memcpy(name, topic, strlen(topic) + 1);
        /* The snapshot holds the whole latest run, this message included. */
        return s_recover(s, name, fn, ctx, err);
    }
    return PCF_OK;
}

/* While recovering: hold a feed message for replay. */
static pcf_rc s_queue_or_drop(subscriber *s, zmq_msg_t *f, int n)
{
    if (n != 2 || zmq_msg_size(&f[0]) == 0 || zmq_msg_size(&f[0]) >= TOPIC_MAX) {
        s->stats.malformed++;
    } else if (s->nqueue >= QUEUE_MAX) {
        s->queue_overflow = 1;
    } else {
        if (s->nqueue == s->qcap) {
            size_t cap = s->qcap ? s->qcap * 2 : 64;
            s_qmsg *v = realloc(s->queue, cap * sizeof *v);
            if (v) s->queue = v, s->qcap = cap;
        }
        if (s->nqueue == s->qcap) s->queue_overflow = 1;
        else {
            s_qmsg *q = &s->queue[s->nqueue];
            size_t tl = zmq_msg_size(&f[0]);
            memcpy(q->topic, zmq_msg_data(&f[0]), tl);
            q->topic[tl] = '\0';
            q->len = zmq_msg_size(&f[1]);
            q->body = malloc(q->len + 1);
            if (!q->body) s->queue_overflow = 1;
            else {
                memcpy(q->body, zmq_msg_data(&f[1]), q->len);
                s->nqueue++;
            }
        }
    }
    s_close_frames(f, n);
    return PCF_OK;
}

/* Delivers the batches of one TopicSnapshot (raw bytes). */
static void s_apply_topic_snapshot(subscriber *s, const uint8_t *d, size_t len, subscriber_fn fn, void *ctx)
{
    const uint8_t *p = d, *end = d + len;
    s_field f;
    char name[TOPIC_MAX] = "";
    uint64_t seq = 0;
    /* topic and sequence come first (fields 1, 2); read them before batches */
    while (s_next_field(&p, end, &f) == 1) {
        if (f.num == 1 && f.wire == 2 && f.len < TOPIC_MAX) {
            memcpy(name, f.data, f.len);
            name[f.len] = '\0';
        } else if (f.num == 2 && f.wire == 0) {
            seq = f.v;
        }
    }
    if (!name[0] || !s_subscribed(s, name)) return;
    s_topic *t = s_topic_find(s, name, 1);
    if (!t) return;
    t->orphan = 0;
    p = d;
    while (s_next_field(&p, end, &f) == 1) {
        if (f.wire != 2 || f.num < 3 || f.num > 5) continue;
        subscriber_head hd;
        if (subscriber_peek_fast(f.data, f.len, &hd) != 0) {
            s->stats.malformed++;
            continue;
        }
        s_deliver(s, name, f.data, f.len, &hd.h, hd.part, hd.part_count, 1, fn, ctx);
        if (hd.h.stream_epoch) t->epoch = hd.h.stream_epoch;
    }
    t->last = seq;
    if (t->hb_seq <= seq) t->hb_seq = 0;
}

static pcf_rc s_recover(subscriber *s, const char *prefix, subscriber_fn fn, void *ctx, pcf_error *err)
{
    if (s->recovering) return PCF_OK;   /* the outer recovery's replay handles it */
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__SnapshotRequest rq = PCF__V1__SNAPSHOT_REQUEST__INIT;
    h.schema_version = 1;
    h.request_id = s->next_request_id++;
    rq.header = &h;
    rq.topic_prefix = (char *)prefix;
    char type[TYPE_MAX + 1];
    uint8_t *reply = NULL;
    size_t len = 0;
    s->recovering = 1;
    pcf_rc rc = subscriber_request(s, "pcf.v1.SnapshotRequest", &rq.base, type, &reply, &len, err);
    s->recovering = 0;
    if (rc != PCF_OK) {
        s_clear_queue(s);
        return rc;
    }
    if (strcmp(type, "pcf.v1.SnapshotReply") != 0) {
        free(reply);
        s_clear_queue(s);
        return pcf_error_set(err, PCF_ERR_NET, "snapshot of \"%s\": got %s", prefix, type);
    }
    /* A known topic the snapshot does not hold cannot be recovered from
     * it: an orphan until a snapshot holds it (s_apply_topic_snapshot). */
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < s->ntopics; i++)
        if (strncmp(s->topics[i].name, prefix, pl) == 0) s->topics[i].orphan = 1;
    const uint8_t *p = reply, *end = reply + len;
    s_field f;
    while (s_next_field(&p, end, &f) == 1) {
        if (f.num == 1 && f.wire == 2) {
            Pcf__V1__Header *rh = pcf__v1__header__unpack(NULL, f.len, f.data);
            if (rh) {
                s->epoch = rh->stream_epoch;   /* topics take theirs from their messages */
                pcf__v1__header__free_unpacked(rh, NULL);
            }
        } else if (f.num == 2 && f.wire == 2) {
            s_apply_topic_snapshot(s, f.data, f.len, fn, ctx);
        }
    }
    free(reply);
    s->stats.recoveries++;
    /* Replay what arrived meanwhile; a queue that overflowed means more was
     * lost, which the sequence checks find and recover in turn. */
    s_qmsg *q = s->queue;
    size_t nq = s->nqueue;
    s->queue = NULL;
    s->nqueue = s->qcap = 0;
    s->queue_overflow = 0;
    for (size_t i = 0; i < nq; i++) {
        if (rc == PCF_OK) rc = s_live(s, q[i].topic, q[i].body, q[i].len, fn, ctx, err);
        free(q[i].body);
    }
    free(q);
    return rc;
}

pcf_rc subscriber_start(subscriber *s, subscriber_fn fn, void *ctx, pcf_error *err)
{
    if (s->nprefixes == 0) {
        pcf_rc rc = subscriber_add_prefix(s, "", err);
        if (rc != PCF_OK) return rc;
    }
    /* The heartbeat is needed for loss detection even when not asked for. */
    if (!s_subscribed(s, "hb") && zmq_setsockopt(s->sub, ZMQ_SUBSCRIBE, "hb", 2) != 0)
        return s_zerr(err, "ZMQ_SUBSCRIBE hb");
    s->last_hb_ms = s_now_ms();
    for (size_t i = 0; i < s->nprefixes; i++) {
        pcf_rc rc = s_recover(s, s->prefixes[i], fn, ctx, err);
        if (rc != PCF_OK) return rc;
    }
    return PCF_OK;
}

/* Heartbeat-driven checks of protocol section 5, step 5. */
static pcf_rc s_check_heartbeats(subscriber *s, subscriber_fn fn, void *ctx, pcf_error *err)
{
    int64_t now = s_now_ms();
    if (s->hb_interval_ms > 0 && now - s->last_hb_ms > 3 * s->hb_interval_ms) {
        s->last_hb_ms = now;   /* publisher gone: resync everything once per 3 intervals */
        s->ntopics = 0;
        pcf_rc rc = PCF_OK;
        for (size_t i = 0; i < s->nprefixes && rc == PCF_OK; i++) rc = s_recover(s, s->prefixes[i], fn, ctx, err);
        return rc;
    }
    for (size_t i = 0; i < s->ntopics; i++) {
        s_topic *t = &s->topics[i];
        if (t->orphan) {
            t->hb_seq = 0;   /* no snapshot holds it: waiting for its next run is all there is */
        } else if (t->hb_seq > t->last && now >= t->hb_deadline_ms) {
            char name[TOPIC_MAX];
            memcpy(name, t->name, strlen(t->name) + 1);
            t->hb_seq = 0;
            s->stats.gaps++;
            return s_recover(s, name, fn, ctx, err);
        }
    }
    return PCF_OK;
}

pcf_rc subscriber_poll(subscriber *s, int timeout_ms, subscriber_fn fn, void *ctx, pcf_error *err)
{
    zmq_pollitem_t it[1] = {{s->sub, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(it, 1, timeout_ms) < 0) {
        if (zmq_errno() == EINTR) return PCF_OK;
        return s_zerr(err, "zmq_poll");
    }
    pcf_rc rc = PCF_OK;
    for (int k = 0; k < 1000 && rc == PCF_OK; k++) {
        zmq_msg_t f[4];
        int n;
        if (s_recv_frames(s->sub, f, 4, &n, ZMQ_DONTWAIT) != 0) break;
        if (n != 2 || zmq_msg_size(&f[0]) == 0 || zmq_msg_size(&f[0]) >= TOPIC_MAX) {
            s->stats.malformed++;
            s_close_frames(f, n);
            continue;
        }
        char topic[TOPIC_MAX];
        size_t tl = zmq_msg_size(&f[0]);
        memcpy(topic, zmq_msg_data(&f[0]), tl);
        topic[tl] = '\0';
        if (s->cfg.lose && strcmp(topic, "hb") != 0) {
            subscriber_head hd;
            int drop = subscriber_peek_fast(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), &hd) == 0 &&
                       s->cfg.lose(s->cfg.lose_ctx, topic, hd.h.sequence);
            if (drop) {
                s->stats.lost++;
                s_close_frames(f, n);
                continue;
            }
        }
        rc = s_live(s, topic, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), fn, ctx, err);
        s_close_frames(f, n);
    }
    if (rc == PCF_OK) rc = s_check_heartbeats(s, fn, ctx, err);
    return rc;
}
