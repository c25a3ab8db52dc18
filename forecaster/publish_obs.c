/*
 * publish_obs.c -- the publisher's metrics and its PUB socket monitor; see
 * publish_obs.h.
 *
 * Monitor events arrive as two frames: [uint16 event][uint32 value] and the
 * endpoint.  Only ACCEPTED and DISCONNECTED are subscribed to; a client a
 * Curve handshake refuses is accepted and then disconnected, so it nets to
 * zero, as does a subscriber that vanishes without closing TCP once the
 * ZMTP heartbeat (publish.c) gives up on it.
 */
#include "publish_obs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct publish_obs {
    void *pub, *mon;
    metric *messages, *lag, *requests, *errors, *dropped, *subscribers, *connections;
    double subs;
};

publish_obs *publish_obs_new(metrics *m, void *ctx, void *pub, pcf_error *err)
{
    static const double lag_b[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
    publish_obs *o = calloc(1, sizeof *o);
    if (!o) {
        pcf_error_set(err, PCF_ERR_NOMEM, "publish metrics: out of memory");
        return NULL;
    }
    o->messages = metrics_counter(m, "pcf_publish_messages_total", "Feed messages sent (heartbeats included).",
                                  "topic");
    o->lag = metrics_histogram(m, "pcf_publish_lag_seconds",
                               "From a run's commit (finished_at) to its last message sent.", lag_b,
                               sizeof lag_b / sizeof lag_b[0], "kind");
    o->requests = metrics_counter(m, "pcf_publish_requests_total", "Requests answered (error replies included).",
                                  "type");
    o->errors = metrics_counter(m, "pcf_publish_request_errors_total", "Requests answered with an ErrorReply.",
                                "type");
    o->dropped = metrics_counter(m, "pcf_publish_requests_dropped_total",
                                 "Requests without a routable envelope, dropped unanswered.", NULL);
    o->subscribers = metrics_gauge(m, "pcf_publish_subscribers", "Connections on the PUB socket now.", NULL);
    o->connections = metrics_counter(m, "pcf_publish_subscriber_connections_total",
                                     "Connections accepted on the PUB socket.", NULL);
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://pcf-pub-monitor-%p", (void *)o);
    o->pub = pub;
    if (zmq_socket_monitor(pub, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
        !(o->mon = zmq_socket(ctx, ZMQ_PAIR)) || zmq_connect(o->mon, ep) != 0) {
        pcf_error_set(err, PCF_ERR_NET, "PUB socket monitor: %s", zmq_strerror(zmq_errno()));
        publish_obs_destroy(&o);
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(o->mon, ZMQ_LINGER, &linger, sizeof linger);
    return o;
}

void publish_obs_destroy(publish_obs **po)
{
    publish_obs *o = po ? *po : NULL;
    if (!o) return;
    if (o->pub) zmq_socket_monitor(o->pub, NULL, 0);
    if (o->mon) zmq_close(o->mon);
    free(o);
    *po = NULL;
}

void *publish_obs_monitor(const publish_obs *o) { return o ? o->mon : NULL; }

void publish_obs_drain(publish_obs *o)
{
    if (!o) return;
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, o->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        if (zmq_msg_size(&ev) >= 2) memcpy(&event, zmq_msg_data(&ev), 2);
        int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) {     /* the endpoint frame */
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, o->mon, 0);
            zmq_msg_close(&addr);
        }
        if (event == ZMQ_EVENT_ACCEPTED) {
            o->subs += 1;
            metric_add(o->connections, 1);
        } else if (event == ZMQ_EVENT_DISCONNECTED && o->subs > 0) {
            o->subs -= 1;
        }
        metric_set(o->subscribers, o->subs);
    }
}

void publish_obs_message(publish_obs *o, const char *topic)
{
    if (o) metric_add(o->messages, 1, topic);
}

void publish_obs_lag(publish_obs *o, const char *kind, double seconds)
{
    if (o) metric_observe(o->lag, seconds < 0 ? 0 : seconds, kind);
}

static const char *s_type(const char *type)
{
    static const char *const known[] = {"pcf.v1.SnapshotRequest", "pcf.v1.StatementRequest",
                                        "pcf.v1.TradeCheckRequest"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (type && strcmp(type, known[i]) == 0) return known[i];
    return "other";
}

void publish_obs_request(publish_obs *o, const char *type)
{
    if (o) metric_add(o->requests, 1, s_type(type));
}

void publish_obs_error(publish_obs *o, const char *type)
{
    if (o) metric_add(o->errors, 1, s_type(type));
}

void publish_obs_dropped(publish_obs *o)
{
    if (o) metric_add(o->dropped, 1);
}

double publish_obs_subscribers(const publish_obs *o) { return o ? o->subs : 0; }
