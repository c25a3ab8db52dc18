/*
 * publish.h -- the publisher: PUB feeds, the ROUTER request socket, per-topic
 * sequence numbers and latest state, heartbeat, CurveZMQ with a ZAP allowlist
 * (docs/protocol.md, docs/publishing.md).
 *
 * A publish object owns its own ZeroMQ context and three sockets:
 *   PUB     feeds, two frames [topic][message]; SNDHWM bounded so a slow or
 *           dead subscriber loses messages instead of stalling us;
 *   ROUTER  requests [envelope][""][type][message] -> one reply each;
 *   REP     inproc://zeromq.zap.01, the ZAP handler (only with Curve).
 * It is single-threaded: every call must come from one thread (the one that
 * runs publish_poll / publish_serve).  Nothing blocks on a client: sends on
 * PUB and ROUTER never wait (ZeroMQ drops at the HWM).
 *
 * State (the clone pattern of the ZeroMQ guide, per topic): for every feed
 * topic published in this epoch, its sequence counter and the packed
 * messages of the latest run published on it (all its parts).  A snapshot
 * request copies those bytes into the reply, so a snapshot holds exactly what
 * was published, never a run that was not.
 *
 * Invariants:
 *   1. topic.sequence == number of messages ever published on the topic in
 *      this epoch; the stored parts are the last part_count of them.
 *   2. publish_send_run() publishes nothing unless every part packed, so a
 *      run is on the wire whole or not at all (a send that ZeroMQ drops at
 *      the HWM still counts: the subscriber sees the gap).
 *   3. A run not newer (run_id <=) than the one a topic holds is not
 *      published on it: a late notification must not roll the state back,
 *      and a repeated one (catch-up after a reconnect) is not sent twice.
 */
#ifndef PCF_PUBLISH_H
#define PCF_PUBLISH_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pcf.pb-c.h"
#include "publish_run.h"

enum { PUBLISH_LOG_ERROR = 0, PUBLISH_LOG_WARN = 1, PUBLISH_LOG_INFO = 2, PUBLISH_LOG_DEBUG = 3 };
typedef void (*publish_log_fn)(void *ctx, int level, const char *msg);

#define PUBLISH_DEFAULT_PUB "tcp://127.0.0.1:5556"
#define PUBLISH_DEFAULT_ROUTER "tcp://127.0.0.1:5557"
#define PUBLISH_DEFAULT_SNDHWM 10000
#define PUBLISH_DEFAULT_HEARTBEAT_MS 3000
#define PUBLISH_MAX_PART_BYTES (16u << 20)    /* docs/protocol.md section 12 */
#define PUBLISH_MAX_REQUEST_BYTES (1 << 20)
#define PUBLISH_MAX_TOPICS 4096
#define PUBLISH_MAX_CHANGES 1000

typedef struct publish_config {
    const char *pub_endpoint;       /* NULL: PUBLISH_DEFAULT_PUB; "tcp://127.0.0.1:*" picks a free port */
    const char *router_endpoint;    /* NULL: PUBLISH_DEFAULT_ROUTER */
    const char *curve_secret_key;   /* server's Z85 secret key; NULL/"" = plain (logged as a warning) */
    const char *allowlist_path;     /* client public keys; required with a secret key */
    int sndhwm;                     /* PUB send high-water mark, messages; 0 = default */
    int64_t heartbeat_ms;           /* 0 = default */
    size_t max_part_bytes;          /* split batches larger than this; 0 = 16 MiB */
    const char *software_version;   /* for the heartbeat; NULL = "pcf" */
    size_t trade_samples;           /* Monte-Carlo samples of an inline trade check (trade.h), e.g.
                                       TRADE_DEFAULT_SAMPLES; 0 = no engine attached: valid trade
                                       checks are answered BUSY */
    publish_log_fn log;             /* NULL = silent */
    void *log_ctx;
    struct metrics *metrics;        /* NULL = none; else pcf_publish_* are kept there (publish_obs.h) */
} publish_config;

typedef struct publish publish;

/* Creates the context and sockets and binds them.  Fails (nothing bound)
 * when an endpoint cannot be bound or the keys/allowlist are unusable. */
publish *publish_new(const publish_config *cfg, pcf_error *err);
void publish_destroy(publish **p);

/* The endpoints actually bound (a wildcard port resolved). */
const char *publish_pub_endpoint(const publish *p);
const char *publish_router_endpoint(const publish *p);
uint64_t publish_epoch(const publish *p);

/* Re-reads the allowlist; on failure the old list stays in force.  New
 * handshakes use the new list; established connections are kept. */
pcf_rc publish_reload_allowlist(publish *p, pcf_error *err);

/* Publishes a loaded run (PUBLISH_RUN_ALL) on pcf.*, cs.* and cb.* topics.
 * Trade-check runs are not published (PCF_OK, nothing sent).  *published
 * (may be NULL) tells whether anything went out. */
pcf_rc publish_send_run(publish *p, const publish_run *r, bool *published, pcf_error *err);

/* Reads run run_id from the database and publishes it. */
pcf_rc publish_run_id(publish *p, PGconn *db, int64_t run_id, pcf_error *err);

/* Sends a heartbeat now. */
pcf_rc publish_heartbeat(publish *p, pcf_error *err);

/* The latest run id published on a topic (0 = none) and its sequence. */
int64_t publish_topic_run(const publish *p, const char *topic, uint64_t *sequence);

/* Waits up to timeout_ms for work and does it: ZAP handshakes, requests on
 * the ROUTER (db, borrowed, may be NULL: statement requests then get
 * INTERNAL), heartbeats when due.  When fd >= 0 it is polled as well and
 * *fd_ready says whether it became readable (the caller reads it). */
pcf_rc publish_poll(publish *p, PGconn *db, int fd, int timeout_ms, bool *fd_ready, pcf_error *err);

/* Logs through the configured callback (no-op without one). */
void publish_log(const publish *p, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whether the publisher logs at all (a log callback was given): the serve
 * loop writes its events through log.h with fields when it does. */
int publish_logs(const publish *p);

/* Counters, for tests, benchmarks and the log. */
typedef struct publish_stats {
    uint64_t messages;          /* feed messages sent (heartbeats included) */
    uint64_t requests;          /* requests answered */
    uint64_t errors;            /* of which ErrorReply */
    uint64_t dropped_requests;  /* no delimiter: could not be answered */
    uint64_t zap_admitted, zap_refused;
} publish_stats;
void publish_get_stats(const publish *p, publish_stats *s);

/* ---- the daemon's main loop (publish_serve.c) ---------------------------- */

typedef struct publish_serve_opts {
    const char *conninfo;       /* libpq conninfo ("" = PG* variables) */
    atomic_int *stop;           /* set non-zero to return */
    atomic_int *reload;         /* set non-zero to re-read the allowlist (cleared here) */
    int backoff_max_ms;         /* reconnect back-off cap; 0 = 30000 */
    int backoff_min_ms;         /* first retry delay; 0 = 250 */
} publish_serve_opts;

/* LISTENs on pcf_run, publishes every run whose id is notified, answers
 * requests, sends heartbeats; on start publishes the latest day-ahead and
 * real-time run of every zone; reconnects with exponential back-off when
 * PostgreSQL goes away and then catches up on runs committed meanwhile.
 * Returns PCF_OK when *stop is set. */
pcf_rc publish_serve(publish *p, const publish_serve_opts *o, pcf_error *err);

#endif
