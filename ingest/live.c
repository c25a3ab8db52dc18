/*
 * live.c -- ZeroMQ PULL socket for live ScadaBatch messages; the contract is
 * in live.h.
 *
 * State: the socket, the pending group (batches received, not yet
 * committed) and the last committed sequence of up to LIVE_MAX_GATEWAYS
 * gateways (for gap logging only; the database is what deduplicates).
 *
 * Grouping: one transaction per batch costs a commit (and its WAL flush)
 * per batch, which caps a busy feed at a few hundred batches a second.  So
 * live_poll collects what is already queued -- at most LIVE_GROUP batches,
 * for at most LIVE_GROUP_MS -- and loads the group in one transaction,
 * each batch under its own savepoint (load_scada_batch nests).  Nothing is
 * counted, logged or forgotten before the COMMIT: a failure of the
 * connection or the transaction rolls the whole group back and keeps it
 * pending.  An SQL error of one batch is rolled back to that batch's
 * savepoint and the others commit; what happens to the batch depends on the
 * error's SQLSTATE (pcf_error.sqlstate, s_lasting):
 *   class 22 (data exception) or 23 (integrity violation): at the second
 *     failure in a row (the first may be a race, see s_load_one) the batch
 *     is recorded, in the same transaction, as a 'rejected' ingest_batch
 *     with every row in the quarantine (load_scada_batch_refused) and
 *     counted as refused;
 *   anything else (serialization failure, deadlock, resources, operator
 *     intervention, a trigger's own exception): it may pass, so the batch
 *     stays pending and is tried again at every poll until it loads (logged
 *     at the first failure and every 100th).
 * Either way no row is lost: a batch leaves the pending group only once it
 * or its quarantine rows are committed.  An idle feed is not delayed: a
 * group never waits for batches that have not arrived.
 */
#include "live.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "db.h"
#include "load.h"
#include "publish_auth.h"
#include "scada_pb.h"

#define LIVE_TYPE "pcf.v1.ScadaBatch"
#define LIVE_MAX_GATEWAYS 256
#define LIVE_DRAIN 1000
#define LIVE_GROUP 64
#define LIVE_GROUP_MS 100
#define LIVE_LASTING_TRIES 2      /* class 22/23 failures in a row before the quarantine */

struct live_feed {
    void *ctx, *sock;
    void *zap;                  /* ZAP REP socket when CurveZMQ is on, else NULL */
    publish_allowlist *allow;
    unsigned char *pending[LIVE_GROUP];     /* bodies received but not committed */
    size_t pending_len[LIVE_GROUP];
    unsigned failed[LIVE_GROUP];            /* SQL errors of the batch so far */
    unsigned lasting[LIVE_GROUP];           /* of those, class 22/23 (s_lasting) */
    size_t npending;
    const ingest_source *src;   /* for worker_report; NULL: no events */
    char gw[LIVE_MAX_GATEWAYS][65];
    unsigned long long last_seq[LIVE_MAX_GATEWAYS];
    size_t ngw;
};

/* A batch sequence as a log field (uint64: PCF_LOG_I would wrap it). */
#define S_SEQ(v) s_seq((char[24]){0}, (v))
static const char *s_seq(char *buf, uint64_t v)
{
    snprintf(buf, 24, "%llu", (unsigned long long)v);
    return buf;
}

live_feed *live_new(const char *endpoint, pcf_error *err)
{
    live_feed *f = calloc(1, sizeof *f);
    if (!f) {
        pcf_error_set(err, PCF_ERR_NOMEM, "live feed: out of memory");
        return NULL;
    }
    f->ctx = zmq_ctx_new();
    f->sock = f->ctx ? zmq_socket(f->ctx, ZMQ_PULL) : NULL;
    int64_t maxmsg = (int64_t)SCADA_PB_MAX_BYTES + 256;
    int linger = 0;
    if (!f->sock || zmq_setsockopt(f->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 || zmq_bind(f->sock, endpoint) != 0) {
        pcf_error_set(err, PCF_ERR_NET, "live feed: bind %s: %s", endpoint, zmq_strerror(zmq_errno()));
        live_destroy(&f);
        return NULL;
    }
    return f;
}

live_feed *live_new_curve(const char *endpoint, const char *secret_key_path, const char *allowlist_path,
                          pcf_error *err)
{
    live_feed *f = calloc(1, sizeof *f);
    if (!f) {
        pcf_error_set(err, PCF_ERR_NOMEM, "live feed: out of memory");
        return NULL;
    }
    char pub[PUBLISH_KEY_Z85_LEN + 1], sec[PUBLISH_KEY_Z85_LEN + 1];
    if (publish_auth_load_key(secret_key_path, pub, sec, err) != PCF_OK ||
        publish_allowlist_load(allowlist_path, &f->allow, err) != PCF_OK) {
        live_destroy(&f);
        return NULL;
    }
    if (!sec[0]) {
        pcf_error_set(err, PCF_ERR_INVALID, "%s: no secret-key line", secret_key_path);
        live_destroy(&f);
        return NULL;
    }
    /* The ZAP handler must be bound before the first handshake. */
    f->ctx = zmq_ctx_new();
    f->zap = f->ctx ? zmq_socket(f->ctx, ZMQ_REP) : NULL;
    f->sock = f->zap ? zmq_socket(f->ctx, ZMQ_PULL) : NULL;
    int64_t maxmsg = (int64_t)SCADA_PB_MAX_BYTES + 256;
    int linger = 0, server = 1;
    if (!f->sock || zmq_bind(f->zap, "inproc://zeromq.zap.01") != 0 ||
        zmq_setsockopt(f->sock, ZMQ_CURVE_SERVER, &server, sizeof server) != 0 ||
        zmq_setsockopt(f->sock, ZMQ_CURVE_SECRETKEY, sec, PUBLISH_KEY_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(f->sock, ZMQ_ZAP_DOMAIN, "pcf-ingest", 10) != 0 ||
        zmq_setsockopt(f->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(f->sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(f->zap, ZMQ_LINGER, &linger, sizeof linger) != 0 || zmq_bind(f->sock, endpoint) != 0) {
        pcf_error_set(err, PCF_ERR_NET, "live feed: bind %s (CurveZMQ): %s", endpoint, zmq_strerror(zmq_errno()));
        live_destroy(&f);
        return NULL;
    }
    return f;
}

void live_set_source(live_feed *f, const ingest_source *src)
{
    f->src = src;
}

void live_destroy(live_feed **fp)
{
    if (!fp || !*fp)
        return;
    live_feed *f = *fp;
    if (f->sock)
        zmq_close(f->sock);
    if (f->zap)
        zmq_close(f->zap);
    publish_allowlist_destroy(&f->allow);
    if (f->ctx)
        zmq_ctx_term(f->ctx);
    for (size_t i = 0; i < f->npending; i++)
        free(f->pending[i]);
    free(f);
    *fp = NULL;
}

/* Receives one two-frame message onto the pending group (which has room).
 * Returns 1 when a batch was added, 0 when nothing was waiting (or a
 * malformed message was dropped), -1 on a socket error. */
static int s_receive(live_feed *f, int flags, worker_log_fn log, void *lctx)
{
    zmq_msg_t type, body;
    zmq_msg_init(&type);
    if (zmq_msg_recv(&type, f->sock, flags) < 0) {
        zmq_msg_close(&type);
        return zmq_errno() == EAGAIN ? 0 : -1;
    }
    bool more = zmq_msg_more(&type);
    bool ok = zmq_msg_size(&type) == strlen(LIVE_TYPE) && memcmp(zmq_msg_data(&type), LIVE_TYPE, strlen(LIVE_TYPE)) == 0;
    zmq_msg_close(&type);
    if (!more) {
        ingest_note_send(log, lctx, PCF_LOG_WARN, "live message dropped", NULL, "reason",
                         "one frame, expected [type][ScadaBatch]", NULL);
        return 0;
    }
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, f->sock, 0) < 0) {
        zmq_msg_close(&body);
        return -1;
    }
    bool extra = zmq_msg_more(&body);
    if (extra) {                        /* swallow the rest of a malformed message */
        zmq_msg_t x;
        do {
            zmq_msg_init(&x);
            zmq_msg_recv(&x, f->sock, 0);
            extra = zmq_msg_more(&x);
            zmq_msg_close(&x);
        } while (extra);
        ok = false;
    }
    if (!ok) {
        zmq_msg_close(&body);
        ingest_note_send(log, lctx, PCF_LOG_WARN, "live message dropped", NULL, "reason",
                         "wrong type frame or frame count", NULL);
        return 0;
    }
    size_t n = zmq_msg_size(&body);
    unsigned char *b = malloc(n ? n : 1);
    if (!b) {
        zmq_msg_close(&body);
        return -1;
    }
    memcpy(b, zmq_msg_data(&body), n);
    f->failed[f->npending] = 0;
    f->lasting[f->npending] = 0;
    f->pending[f->npending] = b;
    f->pending_len[f->npending++] = n;
    zmq_msg_close(&body);
    return 1;
}

static void s_note_sequence(live_feed *f, const scada_pb_info *info, worker_log_fn log, void *lctx)
{
    size_t i;
    for (i = 0; i < f->ngw && strcmp(f->gw[i], info->gateway_id) != 0; i++)
        ;
    if (i == f->ngw) {
        if (f->ngw == LIVE_MAX_GATEWAYS)
            return;
        snprintf(f->gw[f->ngw++], sizeof f->gw[0], "%.64s", info->gateway_id);
    } else if (info->batch_sequence > f->last_seq[i] + 1) {
        ingest_note_send(log, lctx, PCF_LOG_WARN, "live gateway sequence gap", NULL, "gateway", info->gateway_id,
                         "first_missing", S_SEQ(f->last_seq[i] + 1), "last_missing",
                         S_SEQ(info->batch_sequence - 1), NULL);
    }
    if (info->batch_sequence > f->last_seq[i])
        f->last_seq[i] = info->batch_sequence;
}

/* After a batch's PCF_ERR_DB: true when the error was the batch's own (its
 * savepoint rolled back, the transaction still usable), false when the
 * connection or the transaction is lost. */
static bool s_batch_error(PGconn *c)
{
    return PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_INTRANS;
}

/* An error of the batch's own that trying again will not mend: a data
 * exception (class 22) or an integrity constraint violation (class 23,
 * e.g. 23503 from sql/005's point check).  Anything else -- serialization
 * failure, deadlock (40001, 40P01), insufficient resources (53), operator
 * intervention (57), an error without SQLSTATE -- may pass. */
static bool s_lasting(const pcf_error *e)
{
    return strncmp(e->sqlstate, "22", 2) == 0 || strncmp(e->sqlstate, "23", 2) == 0;
}

/* What became of a pending batch in its group's transaction. */
enum { S_LOADED, S_QUARANTINED, S_REFUSED, S_PENDING };

/* Loads batch i under its savepoint; a lasting error of its own records it
 * in the quarantine instead.  Returns PCF_OK with *fate set, or the error
 * that lost the connection or the transaction. */
static pcf_rc s_load_one(live_feed *f, PGconn *c, size_t i, load_report *rep, scada_pb_info *info,
                         pcf_error *why, int *fate, pcf_error *err)
{
    pcf_rc rc = load_scada_batch(c, true, f->pending[i], f->pending_len[i], rep, info, why);
    if (rc == PCF_OK || rc == PCF_ERR_PARSE || rc == PCF_ERR_LIMIT || rc == PCF_ERR_INVALID) {
        *fate = rc == PCF_OK ? S_LOADED : S_REFUSED;
        return PCF_OK;
    }
    if (rc != PCF_ERR_DB || !s_batch_error(c)) {
        *err = *why;
        return rc;
    }
    *fate = S_PENDING;
    /* A data error may still be a race, not the batch's fault: a point
     * deleted while the batch loads passes load_scada_batch's own check and
     * then fails sql/005's trigger with 23503.  Tried again, the check sees
     * the point gone and quarantines only its rows.  So a class 22/23 error
     * is believed only when it repeats (LIVE_LASTING_TRIES in a row). */
    if (!s_lasting(why)) {
        f->lasting[i] = 0;
        return PCF_OK;
    }
    if (++f->lasting[i] < LIVE_LASTING_TRIES)
        return PCF_OK;
    pcf_error qerr;
    rc = load_scada_batch_refused(c, true, f->pending[i], f->pending_len[i], why, rep, info, &qerr);
    if (rc == PCF_OK) {
        *fate = rep->already_loaded ? S_LOADED : S_QUARANTINED;
        return PCF_OK;
    }
    if (rc == PCF_ERR_DB && s_batch_error(c)) {
        *why = qerr;                    /* logged: why even the quarantine failed */
        return PCF_OK;                  /* kept pending, never dropped */
    }
    *err = qerr;
    return rc;
}

static double s_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One settled batch to the worker's event hook (metrics: outcome, rows,
 * load time), named "<gateway_id>#<batch_sequence>". */
static void s_report(const live_feed *f, const scada_pb_info *info, const load_report *rep, int fate,
                     double seconds)
{
    if (!f->src)
        return;
    char input[96] = "(undecodable)";
    if (info->gateway_id[0])
        snprintf(input, sizeof input, "%.64s#%llu", info->gateway_id, (unsigned long long)info->batch_sequence);
    worker_event ev = {f->src, input,
                       fate == S_LOADED ? (rep->already_loaded ? "already_loaded" : "loaded") : "refused",
                       fate == S_LOADED ? rep->stored : 0, rep->quarantined, seconds};
    worker_report(&ev);
}

/* Loads the pending group in one transaction; on a connection or
 * transaction failure rolls it back and keeps every batch pending. */
static pcf_rc s_load_pending(live_feed *f, PGconn *c, worker_log_fn log, void *lctx, worker_result *res,
                             pcf_error *err)
{
    load_report rep[LIVE_GROUP];
    scada_pb_info info[LIVE_GROUP];
    int fate[LIVE_GROUP];
    pcf_error why[LIVE_GROUP];      /* a batch's own error */
    double took[LIVE_GROUP];        /* each batch's load, seconds */
    memset(info, 0, sizeof info);
    pcf_rc rc = db_exec(c, "BEGIN", err);
    for (size_t i = 0; i < f->npending && rc == PCF_OK; i++) {
        double t0 = s_seconds();
        rc = s_load_one(f, c, i, &rep[i], &info[i], &why[i], &fate[i], err);
        took[i] = s_seconds() - t0;
    }
    double t0 = s_seconds();
    if (rc == PCF_OK)
        rc = db_exec(c, "COMMIT", err);
    double commit = s_seconds() - t0;
    if (rc != PCF_OK) {
        db_rollback(c);
        return rc;                      /* the group stays pending */
    }
    size_t keep = 0;
    for (size_t i = 0; i < f->npending; i++) {
        if (fate[i] == S_PENDING) {
            if (f->failed[i]++ % 100 == 0)
                ingest_note_send(log, lctx, PCF_LOG_WARN, "live batch kept pending", &why[i], "gateway",
                                 info[i].gateway_id, "batch", S_SEQ(info[i].batch_sequence), "sqlstate",
                                 why[i].sqlstate, "failures", PCF_LOG_I(f->failed[i]), NULL);
            f->pending[keep] = f->pending[i];
            f->pending_len[keep] = f->pending_len[i];
            f->lasting[keep] = f->lasting[i];
            f->failed[keep++] = f->failed[i];
            continue;
        }
        if (fate[i] == S_LOADED) {
            s_note_sequence(f, &info[i], log, lctx);
            if (rep[i].already_loaded)
                res->already++;
            else
                res->loaded++;
            res->rows += rep[i].stored;
            res->quarantined += rep[i].quarantined;
            ingest_note_send(log, lctx, PCF_LOG_INFO, rep[i].already_loaded ? "live batch already loaded"
                                                                            : "live batch loaded",
                             NULL, "gateway", info[i].gateway_id, "batch", S_SEQ(info[i].batch_sequence), "rows",
                             PCF_LOG_I(rep[i].stored), "quarantined", PCF_LOG_I(rep[i].quarantined), "batch_id",
                             PCF_LOG_I(rep[i].batch_id), NULL);
        } else if (fate[i] == S_QUARANTINED) {
            s_note_sequence(f, &info[i], log, lctx);
            res->refused++;
            res->quarantined += rep[i].quarantined;
            ingest_note_send(log, lctx, PCF_LOG_WARN, "live batch quarantined", &why[i], "gateway",
                             info[i].gateway_id, "batch", S_SEQ(info[i].batch_sequence), "sqlstate", why[i].sqlstate,
                             "quarantined", PCF_LOG_I(rep[i].quarantined), "batch_id", PCF_LOG_I(rep[i].batch_id),
                             NULL);
        } else {
            res->refused++;
            ingest_note_send(log, lctx, PCF_LOG_WARN, "live batch dropped", &why[i], NULL);
        }
        s_report(f, &info[i], &rep[i], fate[i], took[i] + commit);
        free(f->pending[i]);
        f->pending[i] = NULL;
    }
    for (size_t i = keep; i < f->npending; i++)
        f->pending[i] = NULL;
    f->npending = keep;
    return PCF_OK;
}

static long s_ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to timeout_ms for a message, answering ZAP requests (CurveZMQ
 * handshakes) meanwhile. */
static pcf_rc s_wait(live_feed *f, int timeout_ms, worker_log_fn log, void *lctx, pcf_error *err)
{
    long end = s_ms_now() + timeout_ms;
    for (;;) {
        zmq_pollitem_t it[2] = {{f->sock, 0, ZMQ_POLLIN, 0}, {f->zap, 0, ZMQ_POLLIN, 0}};
        long left = end - s_ms_now();
        int n = zmq_poll(it, f->zap ? 2 : 1, left < 0 ? 0 : left);
        if (n < 0)
            return zmq_errno() == EINTR ? PCF_OK
                                        : pcf_error_set(err, PCF_ERR_NET, "live: poll: %s", zmq_strerror(zmq_errno()));
        if (f->zap && (it[1].revents & ZMQ_POLLIN)) {
            int admitted = 0;
            char client[PUBLISH_KEY_Z85_LEN + 1];
            pcf_error zerr;
            if (publish_auth_zap(f->zap, f->allow, &admitted, client, &zerr) != PCF_OK)
                ingest_note_send(log, lctx, PCF_LOG_WARN, "live handshake failed", &zerr, NULL);
            else if (!admitted)
                ingest_note_send(log, lctx, PCF_LOG_WARN, "live gateway refused", NULL, "reason",
                                 "key not in the allowlist", "key", client[0] ? client : "(none)", NULL);
        }
        if ((it[0].revents & ZMQ_POLLIN) || left <= 0)
            return PCF_OK;
    }
}

pcf_rc live_poll(live_feed *f, PGconn *c, int timeout_ms, worker_log_fn log, void *log_ctx,
                 worker_result *res, pcf_error *err)
{
    memset(res, 0, sizeof *res);
    pcf_rc rc;
    if (f->npending && (rc = s_load_pending(f, c, log, log_ctx, res, err)) != PCF_OK)
        return rc;
    if ((rc = s_wait(f, timeout_ms, log, log_ctx, err)) != PCF_OK)
        return rc;
    for (int done = 0; done < LIVE_DRAIN;) {
        long start = s_ms_now();
        bool empty = false;
        while (f->npending < LIVE_GROUP && s_ms_now() - start < LIVE_GROUP_MS) {
            int got = s_receive(f, ZMQ_DONTWAIT, log, log_ctx);
            if (got < 0)
                return zmq_errno() == EINTR ? PCF_OK
                                            : pcf_error_set(err, PCF_ERR_NET, "live: receive: %s",
                                                            zmq_strerror(zmq_errno()));
            if (got == 0) {
                int more = 0;
                size_t sz = sizeof more;
                zmq_getsockopt(f->sock, ZMQ_EVENTS, &more, &sz);
                if (!(more & ZMQ_POLLIN)) {
                    empty = true;
                    break;
                }
            }
        }
        if (f->npending == 0)
            break;
        done += (int)f->npending;
        if ((rc = s_load_pending(f, c, log, log_ctx, res, err)) != PCF_OK)
            return rc;
        if (empty)
            break;
    }
    return PCF_OK;
}
