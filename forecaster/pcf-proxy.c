/*
 * pcf-proxy -- one endpoint for subscribers in front of several publishers
 * (DESIGN.md section 7): a ZeroMQ XSUB/XPUB forwarder (zmq_proxy).
 *
 *   pcf-proxy --xpub tcp://0.0.0.0:6556 --connect tcp://pub1:5556 [--connect tcp://pub2:5556 ...]
 *             [--router tcp://0.0.0.0:6557 --dealer tcp://pub1:5557]
 *
 * The XSUB side connects to every publisher's PUB socket and forwards the
 * subscribers' subscriptions to them; messages pass through unchanged, so
 * topics, sequence numbers and epochs are the publishers' own (each zone is
 * published by one publisher, so per-topic sequences stay intact).  With
 * --router/--dealer a second forwarder gives requesters one endpoint for the
 * snapshot/statement socket of one publisher (ROUTER/DEALER, the guide's
 * "extended request-reply" broker).  SIGINT/SIGTERM stop it.  Logs are
 * logfmt lines (log.h, component=proxy; PCF_LOG_LEVEL).
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

#define MAX_PUBS 64

typedef struct broker {
    void *front, *back;
} broker;

/* Runs one forwarder; the sockets belong to this thread from here on (ZeroMQ
 * sockets are not thread-safe), so it also closes them when zmq_proxy
 * returns, which it does once the context is shut down. */
static void *s_broker(void *arg)
{
    broker *b = arg;
    zmq_proxy(b->front, b->back, NULL);
    zmq_close(b->front);
    zmq_close(b->back);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *xpub = NULL, *router = NULL, *dealer = NULL, *pubs[MAX_PUBS];
    int npub = 0;
    pcf_log_init("proxy");
    static const struct option opts[] = {
        { "xpub", required_argument, NULL, 'x' }, { "connect", required_argument, NULL, 'c' },
        { "router", required_argument, NULL, 'r' }, { "dealer", required_argument, NULL, 'd' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'x': xpub = optarg; break;
        case 'c':
            if (npub == MAX_PUBS) {
                fprintf(stderr, "pcf-proxy: at most %d publishers\n", MAX_PUBS);
                return 2;
            }
            pubs[npub++] = optarg;
            break;
        case 'r': router = optarg; break;
        case 'd': dealer = optarg; break;
        case 'h':
            puts("usage: pcf-proxy --xpub ENDPOINT --connect PUB_ENDPOINT... [--router ENDPOINT --dealer ENDPOINT]");
            return 0;
        default: return 2;
        }
    }
    if (!xpub || npub == 0 || optind != argc || (!router) != (!dealer)) {
        fprintf(stderr, "usage: pcf-proxy --xpub ENDPOINT --connect PUB_ENDPOINT... [--router ENDPOINT --dealer ENDPOINT]\n");
        return 2;
    }
    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    void *ctx = zmq_ctx_new();
    broker feed = { zmq_socket(ctx, ZMQ_XSUB), zmq_socket(ctx, ZMQ_XPUB) }, req = { NULL, NULL };
    int zero = 0;
    zmq_setsockopt(feed.front, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(feed.back, ZMQ_LINGER, &zero, sizeof zero);
    for (int i = 0; i < npub; i++)
        if (zmq_connect(feed.front, pubs[i]) != 0) {
            pcf_log(PCF_LOG_ERROR, "cannot connect", "endpoint", pubs[i], "error", zmq_strerror(zmq_errno()), NULL);
            return 1;
        }
    if (zmq_bind(feed.back, xpub) != 0) {
        pcf_log(PCF_LOG_ERROR, "cannot bind", "endpoint", xpub, "error", zmq_strerror(zmq_errno()), NULL);
        return 1;
    }
    pthread_t t1, t2;
    pthread_create(&t1, NULL, s_broker, &feed);
    if (router) {
        req.front = zmq_socket(ctx, ZMQ_ROUTER);
        req.back = zmq_socket(ctx, ZMQ_DEALER);
        zmq_setsockopt(req.front, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(req.back, ZMQ_LINGER, &zero, sizeof zero);
        if (zmq_bind(req.front, router) != 0 || zmq_connect(req.back, dealer) != 0) {
            pcf_log(PCF_LOG_ERROR, "request forwarder failed", "router", router, "dealer", dealer, "error",
                    zmq_strerror(zmq_errno()), NULL);
            return 1;
        }
        pthread_create(&t2, NULL, s_broker, &req);
    }
    pcf_log(PCF_LOG_INFO, "forwarding", "xpub", xpub, "publishers", PCF_LOG_I(npub), router ? "router" : NULL, router,
            NULL);
    int sig;
    sigwait(&set, &sig);
    pcf_log(PCF_LOG_INFO, "stopping", "signal", PCF_LOG_I(sig), NULL);
    zmq_ctx_shutdown(ctx);                   /* the forwarders return and close their sockets */
    pthread_join(t1, NULL);
    if (router) pthread_join(t2, NULL);
    zmq_ctx_term(ctx);
    return 0;
}
