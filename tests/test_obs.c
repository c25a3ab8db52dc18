/* test_obs.c -- the publisher's metrics over real sockets, scraped over
 * HTTP: the subscriber gauge follows subscribers coming and going, feed
 * messages and requests are counted.  (The ingest daemon's metrics are
 * tested in test_ingest_daemon.c and the engine daemon's in
 * test_scaleout.c, beside their set-up.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "metrics.h"
#include "publish.h"
#include "testhttp.h"

/* ---- the publisher ----------------------------------------------------- */

/* Polls the publisher (so it reads its monitor and requests) until the
 * scraped `series` equals want, at most 10 s; returns the last value. */
static double s_poll_until(publish *p, int port, const char *series, double want)
{
    double v = NAN;
    for (int i = 0; i < 100; i++) {
        pcf_error e;
        cr_assert_eq(publish_poll(p, NULL, -1, 100, NULL, &e), PCF_OK, "%s", e.msg);
        char *t = testhttp_scrape(port, 5);
        v = t ? testhttp_sample(t, series) : NAN;
        free(t);
        if (v == want) break;
    }
    return v;
}

Test(obs, publisher_counts_subscribers_messages_and_requests)
{
    metrics *m = metrics_new();
    publish_config cfg = {
        .pub_endpoint = "tcp://127.0.0.1:*",
        .router_endpoint = "tcp://127.0.0.1:*",
        .heartbeat_ms = 200,
        .metrics = m,
    };
    pcf_error e;
    publish *p = publish_new(&cfg, &e);
    cr_assert_not_null(p, "%s", e.msg);
    metrics_http *h = metrics_http_start(m, NULL, 0, &e);
    cr_assert_not_null(h, "%s", e.msg);
    int port = metrics_http_port(h);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 0), 0);

    void *ctx = zmq_ctx_new();
    void *sub1 = zmq_socket(ctx, ZMQ_SUB), *sub2 = zmq_socket(ctx, ZMQ_SUB);
    int zero = 0;
    zmq_setsockopt(sub1, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sub2, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_connect(sub1, publish_pub_endpoint(p)), 0);
    cr_assert_eq(zmq_connect(sub2, publish_pub_endpoint(p)), 0);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 2), 2);
    zmq_close(sub1);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 1), 1);
    zmq_close(sub2);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_subscribers", 0), 0);

    /* heartbeats are feed messages on topic "hb" */
    cr_assert_geq(s_poll_until(p, port, "pcf_publish_messages_total{topic=\"hb\"}", 3), 3);

    /* a request of an unknown type: answered with an error, counted as
     * "other" (client-chosen strings never become labels) */
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof zero);
    cr_assert_eq(zmq_connect(dealer, publish_router_endpoint(p)), 0);
    zmq_send(dealer, "", 0, ZMQ_SNDMORE);
    zmq_send(dealer, "x.Evil\"Type", 11, ZMQ_SNDMORE);
    zmq_send(dealer, "", 0, 0);
    cr_assert_eq(s_poll_until(p, port, "pcf_publish_request_errors_total{type=\"other\"}", 1), 1);
    char *t = testhttp_scrape(port, 5);
    cr_assert_eq(testhttp_sample(t, "pcf_publish_requests_total{type=\"other\"}"), 1, "%s", t);
    cr_assert_null(strstr(t, "Evil"), "%s", t);
    cr_assert_eq(testhttp_sample(t, "pcf_publish_subscriber_connections_total"), 2, "%s", t);
    free(t);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
    metrics_http_stop(&h);
    publish_destroy(&p);
    metrics_destroy(&m);
}
