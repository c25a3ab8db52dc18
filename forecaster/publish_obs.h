/*
 * publish_obs.h -- the publisher's metrics: messages per topic, publish lag
 * (run committed -> sent), requests and errors per type, and the number of
 * connected subscribers, which ZeroMQ does not expose directly and is kept
 * from zmq_socket_monitor events on the PUB socket (accepted +1,
 * disconnected -1).
 *
 * publish.c owns one when its config carries a metrics registry and calls
 * the hooks below from the places where it sends and replies; every hook
 * accepts NULL, so without metrics the publisher pays one branch.  The
 * monitor's PAIR socket is polled by publish_poll (same thread as the PUB
 * socket, as ZeroMQ requires).
 */
#ifndef PCF_PUBLISH_OBS_H
#define PCF_PUBLISH_OBS_H

#include "error.h"
#include "metrics.h"

typedef struct publish_obs publish_obs;

/* Registers pcf_publish_* in m and starts monitoring `pub` (a socket of
 * zmq context ctx).  NULL with err set when the monitor cannot start. */
publish_obs *publish_obs_new(metrics *m, void *ctx, void *pub, pcf_error *err);
void publish_obs_destroy(publish_obs **o);

/* The monitor's socket to poll for ZMQ_POLLIN (NULL when o is NULL). */
void *publish_obs_monitor(const publish_obs *o);

/* Reads pending monitor events and updates the subscriber gauge. */
void publish_obs_drain(publish_obs *o);

void publish_obs_message(publish_obs *o, const char *topic);
void publish_obs_lag(publish_obs *o, const char *kind, double seconds);
/* One reply to a request of `type`, and whether that reply was an
 * ErrorReply (anything the client sent: unknown types are counted as
 * "other" so clients cannot grow the label set). */
void publish_obs_request(publish_obs *o, const char *type);
void publish_obs_error(publish_obs *o, const char *type);
void publish_obs_dropped(publish_obs *o);

/* The gauge's value; for tests and the log. */
double publish_obs_subscribers(const publish_obs *o);

#endif
