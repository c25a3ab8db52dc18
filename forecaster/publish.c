/*
 * publish.c -- the publisher's sockets, per-topic state, heartbeat and
 * request handling (see publish.h for the model and its invariants).
 *
 * Feeds: a run becomes up to three batches (PCF, statements, blocks), each
 * split into parts of at most max_part_bytes, each part one two-frame
 * message with its own sequence number.  The packed parts are kept as the
 * topic's state; a SnapshotReply is assembled from those bytes by writing
 * the protobuf framing by hand (tag, length, bytes), which is exactly how
 * protobuf embeds a message, so the snapshot carries the published bytes.
 *
 * Requests: frames are read whole (bounded by ZMQ_MAXMSGSIZE), the type frame
 * selects a handler, every failure becomes an ErrorReply with a reason, and
 * a request that cannot be routed back (no delimiter) is dropped and logged.
 */
#include "publish.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "db.h"
#include "log.h"
#include "parse.h"
#include "publish_obs.h"
#include "publish_auth.h"
#include "sptime.h"
#include "trade.h"

#define TOPIC_MAX 96
#define TYPE_MAX 128
#define ENVELOPE_MAX 16
#define FRAMES_MAX 32
#define REQUESTS_PER_POLL 64

enum { T_PCF = 0, T_CS = 1, T_CB = 2 };

typedef struct s_buf {
    uint8_t *data;
    size_t len;
} s_buf;

typedef struct s_topic {
    char name[TOPIC_MAX];
    char zone[PUBLISH_ID_MAX + 1];
    int type;
    int64_t run_id;
    Pcf__V1__RunKind kind;
    int64_t computed_at_ms;
    uint64_t sequence;
    size_t nparts;
    s_buf *parts;
} s_topic;

struct publish {
    void *ctx, *pub, *router, *zap;
    char pub_ep[256], router_ep[256];
    char allowlist_path[4096];
    char software_version[128];
    publish_allowlist *allow;
    int64_t heartbeat_ms;
    size_t max_part_bytes;
    size_t trade_samples;           /* 0: no engine attached (trade checks answered BUSY) */
    uint64_t epoch;
    int64_t start_ms, next_hb_ms;
    uint64_t hb_sequence;
    s_topic *topics;
    size_t ntopics, cap;
    publish_log_fn log;
    void *log_ctx;
    publish_stats stats;
    publish_obs *obs;               /* NULL without metrics */
};

void publish_log(const publish *p, int level, const char *fmt, ...)
{
    if (!p->log) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line per event: libpq messages carry newlines and tabs */
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = '\0';
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\t' || *c == '\r') *c = ' ';
    p->log(p->log_ctx, level, msg);
}

int publish_logs(const publish *p) { return p && p->log != NULL; }

/* The publisher's own events as log.h lines: a fixed phrase, the details
 * as key=value fields (publish_log's printf text cannot carry fields).
 * p->log still says whether this publisher logs at all -- tests and
 * embedders leave it NULL for silence; pcf-publish's callback writes
 * through log.h too, so the daemon's lines are the same either way. */
#define S_LOG(p, level, ...) do { if ((p)->log) pcf_log((level), __VA_ARGS__, NULL); } while (0)
#define S_LOG_ERR(p, level, msg, e, ...) do { if ((p)->log) pcf_log_error((level), (msg), (e), __VA_ARGS__, NULL); } while (0)

static pcf_rc s_zerr(pcf_error *err, const char *what)
{
    return pcf_error_set(err, PCF_ERR_NET, "%s: %s", what, zmq_strerror(zmq_errno()));
}

/* ---- setup ----------------------------------------------------------------- */

static pcf_rc s_setopt_int(void *s, int opt, int v, const char *what, pcf_error *err)
{
    if (zmq_setsockopt(s, opt, &v, sizeof v) != 0) return s_zerr(err, what);
    return PCF_OK;
}

static pcf_rc s_curve_server(void *s, const char *secret, pcf_error *err)
{
    pcf_rc rc = s_setopt_int(s, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER", err);
    if (rc != PCF_OK) return rc;
    if (zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret, PUBLISH_KEY_Z85_LEN) != 0)
        return s_zerr(err, "ZMQ_CURVE_SECRETKEY");
    /* A domain makes libzmq consult the ZAP handler for every handshake. */
    if (zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, "pcf", 3) != 0) return s_zerr(err, "ZMQ_ZAP_DOMAIN");
    return PCF_OK;
}

static pcf_rc s_bind(void *s, const char *ep, char *actual, size_t len, pcf_error *err)
{
    if (zmq_bind(s, ep) != 0)
        return pcf_error_set(err, PCF_ERR_NET, "bind %s: %s", ep, zmq_strerror(zmq_errno()));
    size_t n = len;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, actual, &n) != 0) snprintf(actual, len, "%s", ep);
    return PCF_OK;
}

static pcf_rc s_open(publish *p, const publish_config *cfg, pcf_error *err)
{
    const char *secret = cfg->curve_secret_key && *cfg->curve_secret_key ? cfg->curve_secret_key : NULL;
    p->ctx = zmq_ctx_new();
    if (!p->ctx) return s_zerr(err, "zmq_ctx_new");
    pcf_rc rc;
    if (secret) {
        if (!publish_auth_key_valid(secret))
            return pcf_error_set(err, PCF_ERR_INVALID, "curve secret key: not a 40-character Z85 key");
        if (!cfg->allowlist_path || !*cfg->allowlist_path)
            return pcf_error_set(err, PCF_ERR_INVALID, "curve: an allowlist file is required with a secret key");
        if (snprintf(p->allowlist_path, sizeof p->allowlist_path, "%s", cfg->allowlist_path) >=
            (int)sizeof p->allowlist_path)
            return pcf_error_set(err, PCF_ERR_LIMIT, "allowlist path too long");
        if ((rc = publish_allowlist_load(p->allowlist_path, &p->allow, err)) != PCF_OK) return rc;
        /* The ZAP handler must be bound before any Curve socket sees a peer. */
        p->zap = zmq_socket(p->ctx, ZMQ_REP);
        if (!p->zap || zmq_bind(p->zap, "inproc://zeromq.zap.01") != 0) return s_zerr(err, "zap bind");
        if ((rc = s_setopt_int(p->zap, ZMQ_LINGER, 0, "zap linger", err)) != PCF_OK) return rc;
    }
    p->pub = zmq_socket(p->ctx, ZMQ_PUB);
    p->router = zmq_socket(p->ctx, ZMQ_ROUTER);
    if (!p->pub || !p->router) return s_zerr(err, "zmq_socket");
    int64_t maxmsg = PUBLISH_MAX_REQUEST_BYTES;
    if ((rc = s_setopt_int(p->pub, ZMQ_SNDHWM, cfg->sndhwm > 0 ? cfg->sndhwm : PUBLISH_DEFAULT_SNDHWM,
                           "ZMQ_SNDHWM", err)) != PCF_OK ||
        (rc = s_setopt_int(p->pub, ZMQ_LINGER, 0, "ZMQ_LINGER", err)) != PCF_OK ||
        (rc = s_setopt_int(p->router, ZMQ_LINGER, 0, "ZMQ_LINGER", err)) != PCF_OK)
        return rc;
    /* ZMTP heartbeats drop peers that vanished without closing TCP. */
    void *both[2] = {p->pub, p->router};
    for (int i = 0; i < 2; i++) {
        if ((rc = s_setopt_int(both[i], ZMQ_HEARTBEAT_IVL, 5000, "ZMQ_HEARTBEAT_IVL", err)) != PCF_OK ||
            (rc = s_setopt_int(both[i], ZMQ_HEARTBEAT_TIMEOUT, 15000, "ZMQ_HEARTBEAT_TIMEOUT", err)) != PCF_OK ||
            (rc = s_setopt_int(both[i], ZMQ_TCP_KEEPALIVE, 1, "ZMQ_TCP_KEEPALIVE", err)) != PCF_OK)
            return rc;
        if (secret && (rc = s_curve_server(both[i], secret, err)) != PCF_OK) return rc;
    }
    if (zmq_setsockopt(p->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0)
        return s_zerr(err, "ZMQ_MAXMSGSIZE");
    if ((rc = s_bind(p->pub, cfg->pub_endpoint ? cfg->pub_endpoint : PUBLISH_DEFAULT_PUB, p->pub_ep,
                     sizeof p->pub_ep, err)) != PCF_OK)
        return rc;
    if ((rc = s_bind(p->router, cfg->router_endpoint ? cfg->router_endpoint : PUBLISH_DEFAULT_ROUTER,
                     p->router_ep, sizeof p->router_ep, err)) != PCF_OK)
        return rc;
    if (secret)
        S_LOG(p, PCF_LOG_INFO, "CurveZMQ on", "client_keys", PCF_LOG_I(publish_allowlist_count(p->allow)),
              "allowlist", p->allowlist_path);
    else
        S_LOG(p, PCF_LOG_WARN, "no CurveZMQ keys configured", "risk",
              "feeds and requests travel in plain text to anyone who connects", "advice",
              "bind to 127.0.0.1 or ipc:// only");
    return PCF_OK;
}

publish *publish_new(const publish_config *cfg, pcf_error *err)
{
    publish *p = calloc(1, sizeof *p);
    if (!p) {
        pcf_error_set(err, PCF_ERR_NOMEM, "publish: out of memory");
        return NULL;
    }
    p->log = cfg->log;
    p->log_ctx = cfg->log_ctx;
    p->trade_samples = cfg->trade_samples;
    p->heartbeat_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : PUBLISH_DEFAULT_HEARTBEAT_MS;
    p->max_part_bytes = cfg->max_part_bytes > 0 && cfg->max_part_bytes < PUBLISH_MAX_PART_BYTES
                            ? cfg->max_part_bytes
                            : PUBLISH_MAX_PART_BYTES;
    snprintf(p->software_version, sizeof p->software_version, "%s",
             cfg->software_version ? cfg->software_version : "pcf");
    p->start_ms = publish_now_ms();
    p->epoch = (uint64_t)p->start_ms;
    p->next_hb_ms = p->start_ms;
    if (s_open(p, cfg, err) != PCF_OK ||
        (cfg->metrics && !(p->obs = publish_obs_new(cfg->metrics, p->ctx, p->pub, err)))) {
        publish_destroy(&p);
        return NULL;
    }
    return p;
}

void publish_destroy(publish **pp)
{
    publish *p = *pp;
    if (!p) return;
    publish_obs_destroy(&p->obs);     /* stops the monitor before its socket closes */
    if (p->pub) zmq_close(p->pub);
    if (p->router) zmq_close(p->router);
    if (p->zap) zmq_close(p->zap);
    if (p->ctx) zmq_ctx_term(p->ctx);
    for (size_t i = 0; i < p->ntopics; i++) {
        for (size_t j = 0; j < p->topics[i].nparts; j++) free(p->topics[i].parts[j].data);
        free(p->topics[i].parts);
    }
    free(p->topics);
    publish_allowlist_destroy(&p->allow);
    free(p);
    *pp = NULL;
}

const char *publish_pub_endpoint(const publish *p) { return p->pub_ep; }
const char *publish_router_endpoint(const publish *p) { return p->router_ep; }
uint64_t publish_epoch(const publish *p) { return p->epoch; }
void publish_get_stats(const publish *p, publish_stats *s) { *s = p->stats; }

pcf_rc publish_reload_allowlist(publish *p, pcf_error *err)
{
    if (!p->zap) return pcf_error_set(err, PCF_ERR_INVALID, "allowlist: CurveZMQ is off, nothing to reload");
    publish_allowlist *a = NULL;
    pcf_rc rc = publish_allowlist_load(p->allowlist_path, &a, err);
    if (rc != PCF_OK) return rc;
    publish_allowlist_destroy(&p->allow);
    p->allow = a;
    S_LOG(p, PCF_LOG_INFO, "allowlist reloaded", "client_keys", PCF_LOG_I(publish_allowlist_count(a)));
    return PCF_OK;
}

/* ---- topics and feeds ---------------------------------------------------------- */

static s_topic *s_topic_find(const publish *p, const char *name)
{
    for (size_t i = 0; i < p->ntopics; i++)
        if (strcmp(p->topics[i].name, name) == 0) return &p->topics[i];
    return NULL;
}

static s_topic *s_topic_get(publish *p, const char *name, const char *zone, int type, pcf_error *err)
{
    s_topic *t = s_topic_find(p, name);
    if (t) return t;
    if (p->ntopics == PUBLISH_MAX_TOPICS) {
        pcf_error_set(err, PCF_ERR_LIMIT, "%s: more than %d topics", name, PUBLISH_MAX_TOPICS);
        return NULL;
    }
    if (p->ntopics == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        s_topic *v = realloc(p->topics, cap * sizeof *v);
        if (!v) {
            pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", name);
            return NULL;
        }
        p->topics = v;
        p->cap = cap;
    }
    t = &p->topics[p->ntopics++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->zone, sizeof t->zone, "%s", zone);
    t->type = type;
    return t;
}

int64_t publish_topic_run(const publish *p, const char *topic, uint64_t *sequence)
{
    const s_topic *t = s_topic_find(p, topic);
    if (sequence) *sequence = t ? t->sequence : 0;
    return t ? t->run_id : 0;
}

/* Packs rows [first, first+n) of one kind of content into a batch message. */
static pcf_rc s_pack_part(const publish_run *r, int type, Pcf__V1__Header *h, Pcf__V1__BatchInfo *bi,
                          size_t first, size_t n, s_buf *out, pcf_error *err)
{
    const ProtobufCMessage *m;
    Pcf__V1__PcfBatch pb = PCF__V1__PCF_BATCH__INIT;
    Pcf__V1__ConstraintStatementBatch sb = PCF__V1__CONSTRAINT_STATEMENT_BATCH__INIT;
    Pcf__V1__ConstraintBlockBatch bb = PCF__V1__CONSTRAINT_BLOCK_BATCH__INIT;
    if (type == T_PCF) {
        pb.header = h, pb.batch = bi, pb.n_rows = n, pb.rows = r->pcf + first;
        m = &pb.base;
    } else if (type == T_CS) {
        sb.header = h, sb.batch = bi, sb.n_statements = n, sb.statements = r->statements + first;
        m = &sb.base;
    } else {
        bb.header = h, bb.batch = bi, bb.n_blocks = n, bb.blocks = r->blocks + first;
        m = &bb.base;
    }
    out->len = protobuf_c_message_get_packed_size(m);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) return pcf_error_set(err, PCF_ERR_NOMEM, "run %lld: out of memory", (long long)r->run_id);
    protobuf_c_message_pack(m, out->data);
    return PCF_OK;
}

static void s_free_parts(s_buf *v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i].data);
    free(v);
}

/* Builds all parts of one topic's batch, each within max_part_bytes. */
static pcf_rc s_build_parts(publish *p, const publish_run *r, int type, const char *topic, uint64_t seq0,
                            s_buf **out, size_t *nout, pcf_error *err)
{
    size_t nrows = type == T_PCF ? r->n_pcf : type == T_CS ? r->n_statements : r->n_blocks;
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__InputsAsOf in = r->inputs;
    h.schema_version = PCF__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT;
    h.zone = (char *)r->zone;
    h.topic = (char *)topic;
    h.run_id = r->run_id;
    h.run_kind = r->kind;
    h.computed_at_ms = r->computed_at_ms;
    h.inputs_as_of = &in;
    h.stream_epoch = p->epoch;
    Pcf__V1__BatchInfo bi = r->batch;
    /* Start with one part; when a part is too large, retry with more parts
     * (rows are split evenly, so the count grows at most a few times). */
    for (size_t parts = 1; parts <= (nrows ? nrows : 1); parts++) {
        s_buf *v = calloc(parts, sizeof *v);
        if (!v) return pcf_error_set(err, PCF_ERR_NOMEM, "%s: out of memory", topic);
        size_t too_big = 0;
        pcf_rc rc = PCF_OK;
        for (size_t i = 0; i < parts && rc == PCF_OK; i++) {
            size_t first = nrows * i / parts, last = nrows * (i + 1) / parts;
            h.sequence = seq0 + i + 1;
            bi.part = (uint32_t)(i + 1);
            bi.part_count = (uint32_t)parts;
            rc = s_pack_part(r, type, &h, &bi, first, last - first, &v[i], err);
            if (rc == PCF_OK && v[i].len > p->max_part_bytes && v[i].len > too_big) too_big = v[i].len;
        }
        if (rc != PCF_OK) {
            s_free_parts(v, parts);
            return rc;
        }
        if (!too_big) {
            *out = v;
            *nout = parts;
            return PCF_OK;
        }
        s_free_parts(v, parts);
        size_t guess = parts * (too_big / p->max_part_bytes + 1);
        if (guess > nrows) guess = nrows;
        if (guess > parts + 1) parts = guess - 1;   /* loop adds one */
    }
    return pcf_error_set(err, PCF_ERR_LIMIT, "%s: a single row is larger than %zu bytes", topic,
                         p->max_part_bytes);
}

static int s_send_feed(publish *p, const char *topic, const s_buf *b)
{
    /* PUB never blocks: at the HWM ZeroMQ drops the message for that peer. */
    if (zmq_send(p->pub, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
    if (zmq_send(p->pub, b->data, b->len, ZMQ_DONTWAIT) < 0) return -1;
    p->stats.messages++;
    publish_obs_message(p->obs, topic);
    return 0;
}

pcf_rc publish_send_run(publish *p, const publish_run *r, bool *published, pcf_error *err)
{
    if (published) *published = false;
    bool sent = false;
    if (r->kind != PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD && r->kind != PCF__V1__RUN_KIND__RUN_KIND_REAL_TIME)
        return PCF_OK;
    static const int what[3] = {PUBLISH_RUN_PCF, PUBLISH_RUN_STATEMENTS, PUBLISH_RUN_BLOCKS};
    s_buf *parts[3] = {NULL, NULL, NULL};
    size_t nparts[3] = {0, 0, 0};
    long topic[3] = {-1, -1, -1};   /* indices: s_topic_get may move the array */
    pcf_rc rc = PCF_OK;
    /* Build every part of every topic first: all or nothing (invariant 2). */
    for (int t = 0; t < 3 && rc == PCF_OK; t++) {
        char name[TOPIC_MAX];
        publish_run_topic(r, what[t], name, sizeof name);
        s_topic *tp = s_topic_get(p, name, r->zone, t, err);
        if (!tp) {
            rc = err ? err->code : PCF_ERR_LIMIT;
            break;
        }
        if (tp->run_id >= r->run_id) {   /* invariant 3; equal: a repeated notification */
            S_LOG(p, PCF_LOG_INFO, "run not newer than the one published; skipped", "topic", name, "run",
                  PCF_LOG_I(r->run_id), "published_run", PCF_LOG_I(tp->run_id));
            continue;
        }
        topic[t] = tp - p->topics;
        rc = s_build_parts(p, r, t, name, tp->sequence, &parts[t], &nparts[t], err);
    }
    for (int t = 0; t < 3; t++) {
        if (rc != PCF_OK || topic[t] < 0) {
            s_free_parts(parts[t], nparts[t]);
            continue;
        }
        s_topic *tp = &p->topics[topic[t]];
        for (size_t i = 0; i < nparts[t]; i++)
            if (s_send_feed(p, tp->name, &parts[t][i]) != 0)
                S_LOG(p, PCF_LOG_WARN, "feed send failed", "topic", tp->name, "error", zmq_strerror(zmq_errno()));
        s_free_parts(tp->parts, tp->nparts);
        tp->parts = parts[t];
        tp->nparts = nparts[t];
        tp->sequence += nparts[t];
        tp->run_id = r->run_id;
        tp->kind = r->kind;
        tp->computed_at_ms = r->computed_at_ms;
        sent = true;
        if (published) *published = true;
        S_LOG(p, PCF_LOG_DEBUG, "topic published", "topic", tp->name, "run", PCF_LOG_I(r->run_id), "parts",
              PCF_LOG_I(nparts[t]), "sequence", PCF_LOG_I(tp->sequence));
    }
    if (sent)   /* the whole run is on the wire now */
        publish_obs_lag(p->obs, r->kind == PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD ? "day_ahead" : "real_time",
                        (double)(publish_now_ms() - r->computed_at_ms) / 1000.0);
    return rc;
}

pcf_rc publish_run_id(publish *p, PGconn *db, int64_t run_id, pcf_error *err)
{
    publish_run *r = NULL;
    pcf_rc rc = publish_run_load(db, run_id, PUBLISH_RUN_ALL, &r, err);
    if (rc != PCF_OK) return rc;
    bool sent = false;
    rc = publish_send_run(p, r, &sent, err);
    if (rc == PCF_OK && sent)
        S_LOG(p, PCF_LOG_INFO, "published run", "run", PCF_LOG_I(run_id), "kind",
              r->kind == PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD ? "day_ahead" : "real_time", "zone", r->zone,
              "pcf_rows", PCF_LOG_I(r->n_pcf), "statements", PCF_LOG_I(r->n_statements), "blocks",
              PCF_LOG_I(r->n_blocks));
    publish_run_destroy(&r);
    return rc;
}

pcf_rc publish_heartbeat(publish *p, pcf_error *err)
{
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__Heartbeat hb = PCF__V1__HEARTBEAT__INIT;
    int64_t now = publish_now_ms();
    h.schema_version = PCF__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT;
    h.topic = "hb";
    h.sequence = ++p->hb_sequence;
    h.stream_epoch = p->epoch;
    h.computed_at_ms = now;
    hb.header = &h;
    hb.now_ms = now;
    hb.uptime_ms = now - p->start_ms;
    hb.interval_ms = p->heartbeat_ms;
    hb.software_version = p->software_version;
    Pcf__V1__TopicStatus *st = calloc(p->ntopics + 1, sizeof *st);
    Pcf__V1__TopicStatus **sp = calloc(p->ntopics + 1, sizeof *sp);
    if (!st || !sp) {
        free(st);
        free(sp);
        return pcf_error_set(err, PCF_ERR_NOMEM, "heartbeat: out of memory");
    }
    for (size_t i = 0; i < p->ntopics; i++) {
        const s_topic *t = &p->topics[i];
        pcf__v1__topic_status__init(&st[i]);
        st[i].topic = (char *)t->name;
        st[i].zone = (char *)t->zone;
        st[i].run_id = t->run_id;
        st[i].run_kind = t->kind;
        st[i].sequence = t->sequence;
        st[i].computed_at_ms = t->computed_at_ms;
        sp[i] = &st[i];
    }
    hb.n_topics = p->ntopics;
    hb.topics = sp;
    s_buf b = {NULL, protobuf_c_message_get_packed_size(&hb.base)};
    b.data = malloc(b.len + 1);
    pcf_rc rc = PCF_OK;
    if (!b.data) rc = pcf_error_set(err, PCF_ERR_NOMEM, "heartbeat: out of memory");
    else {
        protobuf_c_message_pack(&hb.base, b.data);
        if (s_send_feed(p, "hb", &b) != 0) rc = s_zerr(err, "heartbeat send");
    }
    free(b.data);
    free(st);
    free(sp);
    p->next_hb_ms = now + p->heartbeat_ms;
    return rc;
}

/* ---- requests ------------------------------------------------------------------ */

typedef struct s_req {
    zmq_msg_t env[ENVELOPE_MAX];
    size_t nenv;
    char type[TYPE_MAX + 1];
    uint64_t request_id;
} s_req;

static int s_send_frame(void *s, const void *d, size_t n, int more)
{
    return zmq_send(s, d, n, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

static void s_reply(publish *p, s_req *q, const char *type, const uint8_t *body, size_t len)
{
    int bad = 0;
    for (size_t i = 0; i < q->nenv && !bad; i++)
        bad = s_send_frame(p->router, zmq_msg_data(&q->env[i]), zmq_msg_size(&q->env[i]), 1);
    bad = bad || s_send_frame(p->router, "", 0, 1) || s_send_frame(p->router, type, strlen(type), 1) ||
          s_send_frame(p->router, body, len, 0);
    /* A peer that vanished or whose queue is full simply loses the reply. */
    if (bad) S_LOG(p, PCF_LOG_WARN, "reply not sent", "type", type, "error", zmq_strerror(zmq_errno()));
    p->stats.requests++;
    publish_obs_request(p->obs, q->type);
}

static void s_header_reply(const publish *p, Pcf__V1__Header *h, uint64_t request_id)
{
    h->schema_version = PCF__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT;
    h->stream_epoch = p->epoch;
    h->request_id = request_id;
    h->computed_at_ms = publish_now_ms();
}

static void s_reply_msg(publish *p, s_req *q, const char *type, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        S_LOG(p, PCF_LOG_ERROR, "reply not sent: out of memory", "type", type, "bytes", PCF_LOG_I(len));
        return;
    }
    protobuf_c_message_pack(m, buf);
    s_reply(p, q, type, buf, len);
    free(buf);
}

__attribute__((format(printf, 4, 5))) static void s_error(publish *p, s_req *q, Pcf__V1__ErrorCode code,
                                                          const char *fmt, ...)
{
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__ErrorReply e = PCF__V1__ERROR_REPLY__INIT;
    s_header_reply(p, &h, q->request_id);
    e.header = &h;
    e.code = code;
    e.reason = reason;
    e.request_type = q->type;
    s_reply_msg(p, q, "pcf.v1.ErrorReply", &e.base);
    p->stats.errors++;
    publish_obs_error(p->obs, q->type);
    S_LOG(p, PCF_LOG_INFO, "request answered with an error", "type", q->type[0] ? q->type : "(none)", "request_id",
          PCF_LOG_I(q->request_id), "code", PCF_LOG_I(code), "reason", reason);
}

/* Checks the common header; replies and returns -1 when unusable. */
static int s_check_header(publish *p, s_req *q, const Pcf__V1__Header *h)
{
    if (h) q->request_id = h->request_id;
    if (!h || h->schema_version != PCF__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_VERSION,
                "header.schema_version: expected 1, got %u", h ? h->schema_version : 0);
        return -1;
    }
    return 0;
}

/* ---- snapshot: hand-written protobuf framing around stored bytes ---- */

static size_t s_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static uint8_t *s_put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) *o++ = (uint8_t)(v | 0x80), v >>= 7;
    *o++ = (uint8_t)v;
    return o;
}

static uint8_t *s_put_bytes(uint8_t *o, unsigned field, const void *d, size_t n)
{
    o = s_put_varint(o, (uint64_t)field << 3 | 2);
    o = s_put_varint(o, n);
    memcpy(o, d, n);
    return o + n;
}

static size_t s_field_len(unsigned field, size_t n)
{
    return s_varint_len((uint64_t)field << 3 | 2) + s_varint_len(n) + n;
}

/* Size of TopicSnapshot t's body. */
static size_t s_topic_snapshot_len(const s_topic *t)
{
    size_t n = s_field_len(1, strlen(t->name)) + 1 + s_varint_len(t->sequence);
    for (size_t i = 0; i < t->nparts; i++) n += s_field_len(3 + (unsigned)t->type, t->parts[i].len);
    return n;
}

static void s_snapshot(publish *p, s_req *q, const uint8_t *body, size_t len)
{
    Pcf__V1__SnapshotRequest *rq = pcf__v1__snapshot_request__unpack(NULL, len, body);
    if (!rq) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_MALFORMED, "SnapshotRequest: protobuf does not decode");
        return;
    }
    if (s_check_header(p, q, rq->header) != 0) goto done;
    const char *prefix = rq->topic_prefix ? rq->topic_prefix : "";
    size_t plen = strlen(prefix);
    if (plen >= TOPIC_MAX) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
                "topic_prefix: longer than %d bytes", TOPIC_MAX - 1);
        goto done;
    }
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    s_header_reply(p, &h, q->request_id);
    size_t hlen = pcf__v1__header__get_packed_size(&h);
    size_t total = s_field_len(1, hlen);
    for (size_t i = 0; i < p->ntopics; i++) {
        const s_topic *t = &p->topics[i];
        if (t->nparts && strncmp(t->name, prefix, plen) == 0) total += s_field_len(2, s_topic_snapshot_len(t));
    }
    uint8_t *buf = malloc(total + hlen + 1), *o = buf;
    if (!buf) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_BUSY, "snapshot: out of memory (%zu bytes)", total);
        goto done;
    }
    uint8_t *hb = buf + total;   /* scratch for the packed header */
    pcf__v1__header__pack(&h, hb);
    o = s_put_bytes(o, 1, hb, hlen);
    for (size_t i = 0; i < p->ntopics; i++) {
        const s_topic *t = &p->topics[i];
        if (!t->nparts || strncmp(t->name, prefix, plen) != 0) continue;
        o = s_put_varint(o, 2 << 3 | 2);
        o = s_put_varint(o, s_topic_snapshot_len(t));
        o = s_put_bytes(o, 1, t->name, strlen(t->name));
        *o++ = 2 << 3 | 0;
        o = s_put_varint(o, t->sequence);
        for (size_t j = 0; j < t->nparts; j++)
            o = s_put_bytes(o, 3 + (unsigned)t->type, t->parts[j].data, t->parts[j].len);
    }
    s_reply(p, q, "pcf.v1.SnapshotReply", buf, (size_t)(o - buf));
    free(buf);
done:
    pcf__v1__snapshot_request__free_unpacked(rq, NULL);
}

/* ---- validation shared by statement and trade-check requests ---- */

static int s_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PUBLISH_ID_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* "YYYY-MM-DD" -> SP count of that local day, or -1. */
static int s_date_sps(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
    int v[3] = {0, 0, 0}, pos[3][2] = {{0, 4}, {5, 2}, {8, 2}};
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < pos[f][1]; i++) {
            char c = s[pos[f][0] + i];
            if (c < '0' || c > '9') return -1;
            v[f] = v[f] * 10 + (c - '0');
        }
    if (v[0] < 1900 || v[0] > 2200) return -1;
    return sptime_sp_count(v[0], v[1], v[2]);
}

/* 1 exists, 0 not, -1 database failure (err filled). */
static int s_exists(PGconn *db, const char *sql, const char *a, const char *b, pcf_error *err)
{
    const char *params[2] = {a, b};
    PGresult *res = db_query(db, sql, b ? 2 : 1, params, err);
    if (!res) return -1;
    int n = PQntuples(res);
    PQclear(res);
    return n > 0;
}

static int s_db_ok(publish *p, s_req *q, PGconn *db)
{
    if (db && PQstatus(db) == CONNECTION_OK) return 1;
    s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "database unavailable; retry later");
    return 0;
}

static void s_statement(publish *p, s_req *q, PGconn *db, const uint8_t *body, size_t len)
{
    Pcf__V1__StatementRequest *rq = pcf__v1__statement_request__unpack(NULL, len, body);
    publish_run *r = NULL;
    pcf_error e;
    if (!rq) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_MALFORMED, "StatementRequest: protobuf does not decode");
        return;
    }
    if (s_check_header(p, q, rq->header) != 0) goto done;
    if (!s_id_ok(rq->zone)) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
                "zone: expected 1 to 64 characters of [A-Za-z0-9_-], got \"%.64s\"", rq->zone);
        goto done;
    }
    if (s_date_sps(rq->settlement_date) < 0) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT,
                "settlement_date: expected YYYY-MM-DD, got \"%.32s\"", rq->settlement_date);
        goto done;
    }
    if (rq->run_id < 0) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT, "run_id: negative");
        goto done;
    }
    if (!s_db_ok(p, q, db)) goto done;
    int z = s_exists(db, "SELECT 1 FROM zone WHERE zone_id = $1", rq->zone, NULL, &e);
    if (z <= 0) {
        if (z < 0) s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "database: %s", e.msg);
        else s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT, "zone: unknown zone \"%s\"", rq->zone);
        goto done;
    }
    char rid[24];
    snprintf(rid, sizeof rid, "%lld", (long long)rq->run_id);
    const char *params[3] = {rq->zone, rq->settlement_date, rid};
    PGresult *res = db_query(db,
                             "SELECT run_id FROM run WHERE zone_id = $1 AND kind = 'day_ahead'"
                             " AND target_date = $2::date AND ($3::bigint = 0 OR run_id = $3::bigint)"
                             " ORDER BY run_id DESC LIMIT 1",
                             3, params, &e);
    if (!res) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "database: %s", e.msg);
        goto done;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (rq->run_id)
            s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND,
                    "no day-ahead run %lld of zone %s for %s", (long long)rq->run_id, rq->zone, rq->settlement_date);
        else
            s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_NOT_FOUND, "no day-ahead run of zone %s for %s",
                    rq->zone, rq->settlement_date);
        goto done;
    }
    long run_id = 0;
    const char *v = PQgetvalue(res, 0, 0);
    pcf_rc prc = parse_long(v, strlen(v), &run_id);
    PQclear(res);
    int what = PUBLISH_RUN_STATEMENTS | (rq->include_pcf ? PUBLISH_RUN_PCF : 0) |
               (rq->include_blocks ? PUBLISH_RUN_BLOCKS : 0);
    if (prc != PCF_OK || publish_run_load(db, run_id, what, &r, &e) != PCF_OK) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "run %ld: %s", run_id,
                prc != PCF_OK ? "bad run id" : e.msg);
        goto done;
    }
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__StatementReply sr = PCF__V1__STATEMENT_REPLY__INIT;
    Pcf__V1__InputsAsOf in = r->inputs;
    s_header_reply(p, &h, q->request_id);
    h.zone = r->zone;
    h.run_id = r->run_id;
    h.run_kind = r->kind;
    h.computed_at_ms = r->computed_at_ms;
    h.inputs_as_of = &in;
    Pcf__V1__BatchInfo bi = r->batch;
    sr.header = &h;
    sr.zone = r->zone;
    sr.settlement_date = r->settlement_date;
    sr.batch = &bi;
    sr.n_statements = r->n_statements, sr.statements = r->statements;
    sr.n_blocks = r->n_blocks, sr.blocks = r->blocks;
    sr.n_pcf = r->n_pcf, sr.pcf = r->pcf;
    s_reply_msg(p, q, "pcf.v1.StatementReply", &sr.base);
done:
    publish_run_destroy(&r);
    pcf__v1__statement_request__free_unpacked(rq, NULL);
}

/* Runs a validated trade check and sends its TradeCheckReply (or an
 * ErrorReply saying why the engine refused it). */
static void s_trade_answer(publish *p, s_req *q, PGconn *db, const Pcf__V1__TradeCheckRequest *rq)
{
    trade_change ch[TRADE_MAX_CHANGES];
    if (rq->n_changes > TRADE_MAX_CHANGES) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE, "changes: %zu, at most %d", rq->n_changes,
                TRADE_MAX_CHANGES);
        return;
    }
    for (size_t i = 0; i < rq->n_changes; i++) {
        ch[i].site_id = rq->changes[i]->site_id;
        ch[i].delta_mw = rq->changes[i]->delta_mw;
    }
    /* settlement_date passed s_date_sps: YYYY-MM-DD of digits */
    const char *d = rq->settlement_date;
    int y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    int mo = (d[5] - '0') * 10 + (d[6] - '0'), dd = (d[8] - '0') * 10 + (d[9] - '0');
    trade_request tr = { rq->zone, (trade_kind)rq->kind, y, mo, dd, (int)rq->first_sp, (int)rq->last_sp, 0,
                         ch, rq->n_changes, rq->confidence, p->trade_samples, 0, 0 };
    trade_result *r = NULL;
    pcf_error e;
    pcf_rc rc = engine_trade_check(db, &tr, &r, &e);
    if (rc != PCF_OK) {
        s_error(p, q, rc == PCF_ERR_INVALID ? PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT
                                            : PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL,
                "trade check %.64s: %s", rq->trade_id, e.msg);
        return;
    }
    Pcf__V1__ConstraintCheck *cc = calloc(r->ncheck + 1, sizeof *cc);
    Pcf__V1__ConstraintCheck **ccp = calloc(r->ncheck + 1, sizeof *ccp);
    Pcf__V1__SiteVolume *sv = calloc(r->nchange + 1, sizeof *sv);
    Pcf__V1__SiteVolume **svp = calloc(r->nchange + 1, sizeof *svp);
    if (!cc || !ccp || !sv || !svp) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "trade check: out of memory");
        goto done;
    }
    for (size_t i = 0; i < r->ncheck; i++) {
        const trade_check_row *t = &r->check[i];
        Pcf__V1__ConstraintCheck init = PCF__V1__CONSTRAINT_CHECK__INIT;
        cc[i] = init;
        cc[i].constraint_id = r->check[i].constraint_id;
        cc[i].sp = (uint32_t)t->sp;
        cc[i].sp_start_ms = t->sp_start * 1000;
        cc[i].verdict = t->pass ? PCF__V1__TRADE_VERDICT__TRADE_VERDICT_PASS : PCF__V1__TRADE_VERDICT__TRADE_VERDICT_FAIL;
        cc[i].margin_before_mw = t->margin_before_mw;
        cc[i].margin_after_mw = t->margin_after_mw;
        cc[i].flow_change_mw = t->flow_change_mw;
        cc[i].accepted_volume_mw = t->accepted_volume_mw;
        cc[i].p_anm_acts_before = t->p_acts_before;
        cc[i].p_anm_acts_after = t->p_acts_after;
        cc[i].binding_fault_id = (char *)t->binding_fault_id;
        ccp[i] = &cc[i];
    }
    for (size_t i = 0; i < r->nchange; i++) {
        Pcf__V1__SiteVolume init = PCF__V1__SITE_VOLUME__INIT;
        sv[i] = init;
        sv[i].site_id = r->site_id[i];
        sv[i].requested_delta_mw = r->requested_mw[i];
        sv[i].adjusted_delta_mw = r->adjusted_mw[i];
        svp[i] = &sv[i];
    }
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    s_header_reply(p, &h, q->request_id);
    h.zone = (char *)rq->zone;
    h.run_kind = PCF__V1__RUN_KIND__RUN_KIND_TRADE_CHECK;   /* run_id 0: nothing is recorded */
    Pcf__V1__TradeCheckReply tr_reply = PCF__V1__TRADE_CHECK_REPLY__INIT;
    tr_reply.header = &h;
    tr_reply.trade_id = (char *)rq->trade_id;
    tr_reply.verdict = r->pass ? PCF__V1__TRADE_VERDICT__TRADE_VERDICT_PASS : PCF__V1__TRADE_VERDICT__TRADE_VERDICT_FAIL;
    tr_reply.n_checks = r->ncheck;
    tr_reply.checks = ccp;
    tr_reply.n_volumes = r->nchange;
    tr_reply.volumes = svp;
    tr_reply.requested_volume_mw = r->requested_volume_mw;
    tr_reply.accepted_volume_mw = r->accepted_volume_mw;
    tr_reply.reason = r->reason;
    s_reply_msg(p, q, "pcf.v1.TradeCheckReply", &tr_reply.base);
done:
    free(cc);
    free(ccp);
    free(sv);
    free(svp);
    trade_result_destroy(&r);
}

static void s_trade_check(publish *p, s_req *q, PGconn *db, const uint8_t *body, size_t len)
{
    Pcf__V1__TradeCheckRequest *rq = pcf__v1__trade_check_request__unpack(NULL, len, body);
    pcf_error e;
    if (!rq) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_MALFORMED, "TradeCheckRequest: protobuf does not decode");
        return;
    }
    if (s_check_header(p, q, rq->header) != 0) goto done;
    Pcf__V1__ErrorCode bad = PCF__V1__ERROR_CODE__ERROR_CODE_INVALID_ARGUMENT;
    int sps = s_date_sps(rq->settlement_date);
    if (!s_id_ok(rq->zone)) {
        s_error(p, q, bad, "zone: expected 1 to 64 characters of [A-Za-z0-9_-], got \"%.64s\"", rq->zone);
        goto done;
    }
    if (strlen(rq->trade_id) > PUBLISH_ID_MAX) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE, "trade_id: longer than %d bytes", PUBLISH_ID_MAX);
        goto done;
    }
    if (rq->kind < PCF__V1__TRADE_KIND__TRADE_KIND_MIC || rq->kind > PCF__V1__TRADE_KIND__TRADE_KIND_BID_OFFER_ACCEPTANCE) {
        s_error(p, q, bad, "kind: expected MIC, MEC, CURTAILMENT_SWAP or BID_OFFER_ACCEPTANCE, got %d", (int)rq->kind);
        goto done;
    }
    if (sps < 0) {
        s_error(p, q, bad, "settlement_date: expected YYYY-MM-DD, got \"%.32s\"", rq->settlement_date);
        goto done;
    }
    if (rq->first_sp < 1 || rq->last_sp < rq->first_sp || rq->last_sp > (uint32_t)sps) {
        s_error(p, q, bad, "first_sp..last_sp: %u..%u is not a range within 1..%d of %s", rq->first_sp, rq->last_sp,
                sps, rq->settlement_date);
        goto done;
    }
    if (!(rq->confidence >= 0 && rq->confidence < 1)) {
        s_error(p, q, bad, "confidence: expected 0 (= 0.95) or a probability below 1, got %g", rq->confidence);
        goto done;
    }
    if (rq->n_changes == 0) {
        s_error(p, q, bad, "changes: empty");
        goto done;
    }
    if (rq->n_changes > PUBLISH_MAX_CHANGES) {
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE, "changes: %zu, at most %d", rq->n_changes,
                PUBLISH_MAX_CHANGES);
        goto done;
    }
    for (size_t i = 0; i < rq->n_changes; i++) {
        const Pcf__V1__CapacityChange *c = rq->changes[i];
        if (!s_id_ok(c->site_id) || !isfinite(c->delta_mw) || c->delta_mw == 0) {
            s_error(p, q, bad, "changes[%zu]: needs a site_id of [A-Za-z0-9_-]{1,64} and a finite non-zero delta_mw",
                    i);
            goto done;
        }
    }
    if (!s_db_ok(p, q, db)) goto done;
    int z = s_exists(db, "SELECT 1 FROM zone WHERE zone_id = $1", rq->zone, NULL, &e);
    if (z <= 0) {
        if (z < 0) s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "database: %s", e.msg);
        else s_error(p, q, bad, "zone: unknown zone \"%s\"", rq->zone);
        goto done;
    }
    for (size_t i = 0; i < rq->n_changes; i++) {
        int s = s_exists(db, "SELECT 1 FROM der_site WHERE site_id = $1 AND zone_id = $2", rq->changes[i]->site_id,
                         rq->zone, &e);
        if (s <= 0) {
            if (s < 0) s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_INTERNAL, "database: %s", e.msg);
            else s_error(p, q, bad, "changes[%zu].site_id: no site \"%s\" in zone %s", i, rq->changes[i]->site_id,
                         rq->zone);
            goto done;
        }
    }
    /* The request is valid: the engine computes it inline (trade.h).  The
     * publisher is single threaded, so TRADE_DEFAULT_SAMPLES keeps the
     * answer to a second or so (docs/protocol.md section 7.3). */
    if (p->trade_samples == 0)
        s_error(p, q, PCF__V1__ERROR_CODE__ERROR_CODE_BUSY,
                "trade check %s is valid, but no engine is attached to this publisher to compute it", rq->trade_id);
    else
        s_trade_answer(p, q, db, rq);
done:
    pcf__v1__trade_check_request__free_unpacked(rq, NULL);
}

/* Reads one request (all its frames) and answers it.  Returns 0 when there
 * was none to read. */
static int s_handle_request(publish *p, PGconn *db)
{
    zmq_msg_t f[FRAMES_MAX];
    size_t n = 0, total = 0;
    int more = 1, got = 0;
    s_req q;
    memset(&q, 0, sizeof q);
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, p->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        got = 1;
        more = zmq_msg_more(&m);
        total++;
        if (n < FRAMES_MAX) f[n++] = m;
        else zmq_msg_close(&m);   /* keep draining: the rest is malformed anyway */
    }
    if (!got) return 0;
    size_t d = 0;
    while (d < n && zmq_msg_size(&f[d]) != 0) d++;
    if (d == n || d == 0 || d > ENVELOPE_MAX) {
        p->stats.dropped_requests++;
        publish_obs_dropped(p->obs);
        S_LOG(p, PCF_LOG_WARN, "request without a routable envelope dropped", "frames", PCF_LOG_I(total));
        goto out;
    }
    for (size_t i = 0; i < d; i++) {
        zmq_msg_init(&q.env[i]);
        zmq_msg_copy(&q.env[i], &f[i]);
    }
    q.nenv = d;
    size_t rest = total - d - 1;
    if (rest >= 1) {
        size_t tl = zmq_msg_size(&f[d + 1]);
        memcpy(q.type, zmq_msg_data(&f[d + 1]), tl < TYPE_MAX ? tl : TYPE_MAX);
        for (size_t i = 0; q.type[i]; i++)   /* keep the echo printable */
            if ((unsigned char)q.type[i] < 0x20 || (unsigned char)q.type[i] > 0x7e) q.type[i] = '?';
        if (tl > TYPE_MAX) {
            s_error(p, &q, PCF__V1__ERROR_CODE__ERROR_CODE_TOO_LARGE, "type frame: longer than %d bytes", TYPE_MAX);
            goto out;
        }
    }
    if (rest != 2) {
        s_error(p, &q, PCF__V1__ERROR_CODE__ERROR_CODE_MALFORMED,
                "expected 2 frames after the empty delimiter (type, message), got %zu", rest);
        goto out;
    }
    const uint8_t *body = zmq_msg_data(&f[d + 2]);
    size_t blen = zmq_msg_size(&f[d + 2]);
    if (strcmp(q.type, "pcf.v1.SnapshotRequest") == 0) s_snapshot(p, &q, body, blen);
    else if (strcmp(q.type, "pcf.v1.StatementRequest") == 0) s_statement(p, &q, db, body, blen);
    else if (strcmp(q.type, "pcf.v1.TradeCheckRequest") == 0) s_trade_check(p, &q, db, body, blen);
    else
        s_error(p, &q, PCF__V1__ERROR_CODE__ERROR_CODE_UNKNOWN_REQUEST,
                "type \"%s\": this server answers pcf.v1.SnapshotRequest, pcf.v1.StatementRequest, "
                "pcf.v1.TradeCheckRequest",
                q.type);
out:
    for (size_t i = 0; i < q.nenv; i++) zmq_msg_close(&q.env[i]);
    for (size_t i = 0; i < n; i++) zmq_msg_close(&f[i]);
    return 1;
}

static void s_handle_zap(publish *p)
{
    int admitted = 0;
    char key[PUBLISH_KEY_Z85_LEN + 1];
    pcf_error e;
    if (publish_auth_zap(p->zap, p->allow, &admitted, key, &e) != PCF_OK) {
        S_LOG_ERR(p, PCF_LOG_ERROR, "ZAP request failed", &e, NULL);
        return;
    }
    if (admitted) p->stats.zap_admitted++;
    else {
        p->stats.zap_refused++;
        S_LOG(p, PCF_LOG_WARN, "refused client key", "key", key[0] ? key : "(none)", "reason", "not in the allowlist");
    }
}

pcf_rc publish_poll(publish *p, PGconn *db, int fd, int timeout_ms, bool *fd_ready, pcf_error *err)
{
    zmq_pollitem_t it[4];
    int n = 0, i_router, i_zap = -1, i_fd = -1, i_mon = -1;
    it[n] = (zmq_pollitem_t){p->router, 0, ZMQ_POLLIN, 0};
    i_router = n++;
    if (p->zap) {
        it[n] = (zmq_pollitem_t){p->zap, 0, ZMQ_POLLIN, 0};
        i_zap = n++;
    }
    if (fd >= 0) {
        it[n] = (zmq_pollitem_t){NULL, fd, ZMQ_POLLIN, 0};
        i_fd = n++;
    }
    if (p->obs) {
        it[n] = (zmq_pollitem_t){publish_obs_monitor(p->obs), 0, ZMQ_POLLIN, 0};
        i_mon = n++;
    }
    if (fd_ready) *fd_ready = false;
    int64_t now = publish_now_ms();
    int64_t until_hb = p->next_hb_ms - now;
    if (until_hb < 0) until_hb = 0;
    long t = timeout_ms < 0 || until_hb < timeout_ms ? (long)until_hb : timeout_ms;
    if (zmq_poll(it, n, t) < 0) {
        if (zmq_errno() == EINTR) return PCF_OK;
        return s_zerr(err, "zmq_poll");
    }
    if (i_zap >= 0 && (it[i_zap].revents & ZMQ_POLLIN))
        for (int k = 0; k < REQUESTS_PER_POLL; k++) {
            int ev = 0;
            size_t sz = sizeof ev;
            if (zmq_getsockopt(p->zap, ZMQ_EVENTS, &ev, &sz) != 0 || !(ev & ZMQ_POLLIN)) break;
            s_handle_zap(p);
        }
    if (it[i_router].revents & ZMQ_POLLIN)
        for (int k = 0; k < REQUESTS_PER_POLL && s_handle_request(p, db); k++) {}
    if (i_fd >= 0 && (it[i_fd].revents & ZMQ_POLLIN) && fd_ready) *fd_ready = true;
    if (i_mon >= 0 && (it[i_mon].revents & ZMQ_POLLIN)) publish_obs_drain(p->obs);
    if (publish_now_ms() >= p->next_hb_ms) {
        pcf_error e;
        /* a heartbeat that could not go out is logged, never fatal: the next one follows */
        if (publish_heartbeat(p, &e) != PCF_OK) S_LOG_ERR(p, PCF_LOG_WARN, "heartbeat not sent", &e, NULL);
    }
    return PCF_OK;
}
