/*
 * subscriber.h -- a client of the publisher: SUB feeds with the recovery
 * rules of docs/protocol.md section 5, and requests on a DEALER.
 *
 * States (per the protocol's diagram):
 *
 *   START --subscriber_start()--> BUFFERING --SnapshotReply--> LIVE
 *                                    ^                           |
 *                                    +-- gap on a topic, epoch --+
 *                                        change, heartbeat says we
 *                                        missed the last message, or
 *                                        3 heartbeats missed
 *
 * Recovery of a prefix is synchronous: it sends a SnapshotRequest and, while
 * waiting for the reply, queues every feed message that arrives; then it
 * delivers the snapshot's batches (from_snapshot = 1), sets each topic's last
 * sequence, and replays the queue, dropping what the snapshot already held.
 * Other topics stay LIVE: their queued messages are delivered in order.
 *
 * Strict starts: a topic the snapshot did not hold (last sequence 0) must
 * start at sequence 1, so a lost first message is a gap like any other.
 * A topic that a resync finds no state for (an orphan: behind pcf-proxy
 * the snapshot socket is one publisher's, the feeds several publishers')
 * cannot be recovered that way; it starts again at the next message with
 * part == 1, the later parts before it counted as skipped, and heartbeats
 * do not resync it.
 *
 * Every message handed to the callback passed these checks: two frames,
 * a Header that decodes with schema_version 1, the topic frame equal to
 * Header.topic, a sequence that continues the topic's.  Anything else is
 * counted and dropped, never guessed.
 *
 * Single-threaded, like ZeroMQ sockets: one thread uses a subscriber.
 */
#ifndef PCF_SUBSCRIBER_H
#define PCF_SUBSCRIBER_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pcf.pb-c.h"

typedef struct subscriber_config {
    const char *pub_endpoint;        /* NULL: tcp://127.0.0.1:5556 */
    const char *router_endpoint;     /* NULL: tcp://127.0.0.1:5557 */
    const char *server_public_key;   /* Z85; NULL/"" = plain */
    const char *public_key;          /* this client's Z85 pair, required with a server key */
    const char *secret_key;
    int rcvhwm;                      /* SUB receive HWM, messages; 0 = 100000 */
    int request_timeout_ms;          /* 0 = 10000 */
    /* Fault injection for tests: return non-zero to lose this live message
     * as if the network had (before any sequence check).  NULL = none. */
    int (*lose)(void *ctx, const char *topic, uint64_t sequence);
    void *lose_ctx;
} subscriber_config;

typedef struct subscriber_msg {
    const char *topic;
    const uint8_t *body;             /* the protobuf message, as published */
    size_t len;
    const Pcf__V1__Header *header;   /* decoded from body */
    uint32_t part, part_count;       /* from BatchInfo; 0 for hb */
    int from_snapshot;               /* 1: delivered from a SnapshotReply */
} subscriber_msg;

typedef void (*subscriber_fn)(void *ctx, const subscriber_msg *m);

typedef struct subscriber_stats {
    uint64_t delivered;      /* messages given to the callback (snapshot ones included) */
    uint64_t gaps;           /* sequence gaps detected */
    uint64_t recoveries;     /* snapshots applied */
    uint64_t duplicates;     /* dropped: sequence not above the last one */
    uint64_t malformed;      /* dropped: frames or header did not check out */
    uint64_t lost;           /* dropped by the lose() hook */
    uint64_t skipped;        /* dropped: later parts of a run whose start was lost, on an orphan topic */
    uint64_t heartbeats;
} subscriber_stats;

typedef struct subscriber subscriber;

subscriber *subscriber_new(const subscriber_config *cfg, pcf_error *err);
void subscriber_destroy(subscriber **s);

/* Adds a topic prefix to receive ("" = everything); call before start. */
pcf_rc subscriber_add_prefix(subscriber *s, const char *prefix, pcf_error *err);

/* Subscribes and recovers every prefix through a snapshot (BUFFERING ->
 * LIVE), delivering the snapshot content to fn. */
pcf_rc subscriber_start(subscriber *s, subscriber_fn fn, void *ctx, pcf_error *err);

/* Waits up to timeout_ms for feed messages and delivers them (recovering
 * on gaps); returns after the first batch of work or the timeout. */
pcf_rc subscriber_poll(subscriber *s, int timeout_ms, subscriber_fn fn, void *ctx, pcf_error *err);

/* Sends one request (type e.g. "pcf.v1.StatementRequest", a message whose
 * Header.request_id the caller set) and waits for the reply with the same
 * request_id.  *reply is malloc'ed (caller frees), *reply_type (>= 129
 * bytes) names it.  PCF_ERR_NET on timeout (the DEALER is then re-created). */
pcf_rc subscriber_request(subscriber *s, const char *type, const ProtobufCMessage *req, char *reply_type,
                          uint8_t **reply, size_t *reply_len, pcf_error *err);

/* Last sequence applied on a topic (0 = none) and the epoch in use. */
uint64_t subscriber_last(const subscriber *s, const char *topic);
uint64_t subscriber_epoch(const subscriber *s);
void subscriber_get_stats(const subscriber *s, subscriber_stats *st);

/* Finds the Header (field 1) and BatchInfo (field 2) of a feed message
 * without decoding its rows.  Returns the header (free with
 * pcf__v1__header__free_unpacked) or NULL when it does not decode. */
Pcf__V1__Header *subscriber_peek(const uint8_t *body, size_t len, uint32_t *part, uint32_t *part_count);

/* The same without allocating, for the receive path: the header is decoded
 * into *out (zone and topic point into out's buffers, inputs_as_of at
 * out->in when present).  Accepts and rejects exactly what subscriber_peek
 * does (tests/test_subscriber_peek.c and tests/fuzz/fuzz_peek.c compare the
 * two on mutated messages), except that a zone or topic of
 * SUBSCRIBER_STR_MAX bytes or more is rejected: no valid feed message has
 * one (ids are at most 64 bytes, docs/protocol.md section 12).
 * Returns 0; -1 when it does not decode; -2 when a zone or topic is too
 * long (the rest of the message was then not looked at). */
#define SUBSCRIBER_STR_MAX 96
typedef struct subscriber_head {
    Pcf__V1__Header h;
    Pcf__V1__InputsAsOf in;
    char zone[SUBSCRIBER_STR_MAX], topic[SUBSCRIBER_STR_MAX];
    uint32_t part, part_count;       /* from the last BatchInfo that decodes; 0 without one */
} subscriber_head;

int subscriber_peek_fast(const uint8_t *body, size_t len, subscriber_head *out);

#endif
