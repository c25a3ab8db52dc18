/*
 * pcf-publish -- the publishing daemon: LISTENs for committed runs in
 * PostgreSQL and publishes them over ZeroMQ, answers snapshot, statement
 * and trade-check requests, sends heartbeats (docs/protocol.md,
 * docs/publishing.md).
 *
 * A thin main over publish.c / publish_serve.c: options (command line over
 * the [publish] section of a configuration file), signal flags (SIGINT and
 * SIGTERM stop, SIGHUP reloads the allowlist), logfmt lines on stderr
 * (log.h, component=publish) and the Prometheus endpoint (default
 * 127.0.0.1:9466, publish_obs.h).
 * Exit status: 0 stopped by a signal, 1 could not start or failed, 2 usage.
 */
#include <getopt.h>
#include <ini.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blas_core.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "publish.h"
#include "trade.h"
#include "publish_auth.h"
#include "version.h"

static const char s_usage[] =
    "usage: pcf-publish [OPTIONS]\n"
    "\n"
    "  --db CONNINFO        libpq connection string (default: $PCF_DB, else PG* variables)\n"
    "  --config FILE        read the [publish] section of FILE (options below override it)\n"
    "  --pub ENDPOINT       PUB socket (default " PUBLISH_DEFAULT_PUB ")\n"
    "  --router ENDPOINT    ROUTER socket for requests (default " PUBLISH_DEFAULT_ROUTER ")\n"
    "  --key FILE           server key pair from pcf-keygen: turns CurveZMQ on\n"
    "  --allowlist FILE     client public keys admitted (required with --key; SIGHUP reloads it)\n"
    "  --hwm N              PUB send high-water mark in messages (default 10000)\n"
    "  --heartbeat-ms N     heartbeat period (default 3000)\n"
    "  --trade-samples N    Monte-Carlo samples of a trade check computed inline (default 2000;\n"
    "                       0: trade checks are answered BUSY)\n"
    "  --print-endpoints    print 'pub ENDPOINT' and 'router ENDPOINT' on stdout once bound\n"
    "  -v, --verbose        log every topic published (same as --log-level debug)\n"
    "  --log-level L        debug|info|warn|error (default $PCF_LOG_LEVEL, else info)\n"
    "  --metrics-port N     Prometheus GET /metrics port (default 9466; 0: none)\n"
    "  --metrics-address A  address it binds (default 127.0.0.1)\n"
    "\n"
    "Config keys ([publish]): db, pub_endpoint, router_endpoint, key_file, allowlist_file,\n"
    "sndhwm, heartbeat_ms, trade_samples, metrics_port, metrics_address.  Without --key, traffic is plain text (a warning is logged).\n";

typedef struct opts {
    char db[1024], pub[256], router[256], key[1024], allow[1024], maddr[64];
    long hwm, heartbeat_ms, trade_samples, mport;
    int verbose, print_endpoints;
    const char *bad;       /* first bad config line, for the message */
} opts;

static atomic_int s_stop, s_reload;

static void s_on_signal(int sig)
{
    if (sig == SIGHUP) atomic_store(&s_reload, 1);
    else atomic_store(&s_stop, 1);
}

static void s_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    static const pcf_log_level map[] = {PCF_LOG_ERROR, PCF_LOG_WARN, PCF_LOG_INFO, PCF_LOG_DEBUG};
    pcf_log(map[level & 3], msg, NULL);
}

static int s_set(char *dst, size_t n, const char *v)
{
    if (strlen(v) >= n) return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int s_num(const char *v, long lo, long hi, long *out)
{
    long x;
    if (parse_long(v, strlen(v), &x) != PCF_OK || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

static int s_ini(void *user, const char *section, const char *name, const char *value)
{
    opts *o = user;
    if (strcmp(section, "publish") != 0) return 1;
    int bad = 0;
    if (strcmp(name, "db") == 0) bad = s_set(o->db, sizeof o->db, value);
    else if (strcmp(name, "pub_endpoint") == 0) bad = s_set(o->pub, sizeof o->pub, value);
    else if (strcmp(name, "router_endpoint") == 0) bad = s_set(o->router, sizeof o->router, value);
    else if (strcmp(name, "key_file") == 0) bad = s_set(o->key, sizeof o->key, value);
    else if (strcmp(name, "allowlist_file") == 0) bad = s_set(o->allow, sizeof o->allow, value);
    else if (strcmp(name, "sndhwm") == 0) bad = s_num(value, 1, 10000000, &o->hwm);
    else if (strcmp(name, "heartbeat_ms") == 0) bad = s_num(value, 100, 600000, &o->heartbeat_ms);
    else if (strcmp(name, "trade_samples") == 0) bad = s_num(value, 0, 1000000, &o->trade_samples);
    else if (strcmp(name, "metrics_port") == 0) bad = s_num(value, 0, 65535, &o->mport);
    else if (strcmp(name, "metrics_address") == 0) bad = s_set(o->maddr, sizeof o->maddr, value);
    else bad = 1;
    return !bad;
}

int main(int argc, char **argv)
{
    blas_core_ensure(argv);     /* trade checks run studies: as pcf-forecaster does */
    opts o;
    memset(&o, 0, sizeof o);
    o.trade_samples = TRADE_DEFAULT_SAMPLES;
    o.mport = 9466;
    pcf_log_init("publish");
    const char *env = getenv("PCF_DB");
    if (env) s_set(o.db, sizeof o.db, env);
    /* The config file is read first so the command line overrides it. */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--config") == 0) {
            int line = ini_parse(argv[i + 1], s_ini, &o);
            if (line != 0) {
                fprintf(stderr, "pcf-publish: %s:%d: %s\n", argv[i + 1], line < 0 ? 0 : line,
                        line < 0 ? "cannot read" : "bad [publish] setting");
                return 1;
            }
        }
    static const struct option lo[] = {
        {"db", required_argument, 0, 'd'},     {"config", required_argument, 0, 'c'},
        {"pub", required_argument, 0, 'p'},    {"router", required_argument, 0, 'r'},
        {"key", required_argument, 0, 'k'},    {"allowlist", required_argument, 0, 'a'},
        {"hwm", required_argument, 0, 'H'},    {"heartbeat-ms", required_argument, 0, 'b'},
        {"print-endpoints", no_argument, 0, 'P'}, {"verbose", no_argument, 0, 'v'},
        {"trade-samples", required_argument, 0, 'T'}, {"log-level", required_argument, 0, 'L'},
        {"metrics-port", required_argument, 0, 'M'}, {"metrics-address", required_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int ch, bad = 0;
    while ((ch = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        switch (ch) {
        case 'd': bad |= s_set(o.db, sizeof o.db, optarg); break;
        case 'c': break;
        case 'p': bad |= s_set(o.pub, sizeof o.pub, optarg); break;
        case 'r': bad |= s_set(o.router, sizeof o.router, optarg); break;
        case 'k': bad |= s_set(o.key, sizeof o.key, optarg); break;
        case 'a': bad |= s_set(o.allow, sizeof o.allow, optarg); break;
        case 'H': bad |= s_num(optarg, 1, 10000000, &o.hwm); break;
        case 'b': bad |= s_num(optarg, 100, 600000, &o.heartbeat_ms); break;
        case 'P': o.print_endpoints = 1; break;
        case 'T': bad |= s_num(optarg, 0, 1000000, &o.trade_samples); break;
        case 'v': o.verbose = 1; pcf_log_set_level(PCF_LOG_DEBUG); break;
        case 'L': bad |= pcf_log_set_level_name(optarg) != 0; break;
        case 'M': bad |= s_num(optarg, 0, 65535, &o.mport); break;
        case 'A': bad |= s_set(o.maddr, sizeof o.maddr, optarg); break;
        case 'h': fputs(s_usage, stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad || optind != argc) {
        fputs(s_usage, stderr);
        return 2;
    }
    char pubkey[41], secret[41] = "";
    pcf_error err;
    if (o.key[0] && publish_auth_load_key(o.key, pubkey, secret, &err) != PCF_OK) {
        fprintf(stderr, "pcf-publish: %s\n", err.msg);
        return 1;
    }
    if (o.key[0] && !secret[0]) {
        fprintf(stderr, "pcf-publish: %s: no secret-key line (give the .key file, not the .pub)\n", o.key);
        return 1;
    }
    publish_config cfg = {
        .pub_endpoint = o.pub[0] ? o.pub : NULL,
        .router_endpoint = o.router[0] ? o.router : NULL,
        .curve_secret_key = secret[0] ? secret : NULL,
        .allowlist_path = o.allow[0] ? o.allow : NULL,
        .sndhwm = (int)o.hwm,
        .heartbeat_ms = o.heartbeat_ms,
        .trade_samples = (size_t)o.trade_samples,
        .software_version = "pcf-publish " PCF_VERSION " (protocol v1)",
        .log = s_log,
        .log_ctx = &o,
    };
    metrics *m = o.mport > 0 ? metrics_new() : NULL;
    if (m) metrics_add_process(m);
    cfg.metrics = m;
    publish *p = publish_new(&cfg, &err);
    if (!p) {
        pcf_log_error(PCF_LOG_ERROR, "cannot start", &err, NULL);
        metrics_destroy(&m);
        return 1;
    }
    /* a taken metrics port is logged, not fatal: the feeds matter more */
    metrics_http *http = m ? metrics_http_start(m, o.maddr[0] ? o.maddr : NULL, (int)o.mport, &err) : NULL;
    if (http)
        pcf_log(PCF_LOG_INFO, "serving metrics", "address", o.maddr[0] ? o.maddr : "127.0.0.1", "port",
                PCF_LOG_I(metrics_http_port(http)), NULL);
    else if (m)
        pcf_log_error(PCF_LOG_ERROR, "cannot serve metrics; running without", &err, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pcf_log(PCF_LOG_INFO, "listening", "pub", publish_pub_endpoint(p), "router", publish_router_endpoint(p), NULL);
    if (o.print_endpoints) {
        printf("pub %s\nrouter %s\n", publish_pub_endpoint(p), publish_router_endpoint(p));
        fflush(stdout);
    }
    publish_serve_opts so = {.conninfo = o.db, .stop = &s_stop, .reload = &s_reload};
    pcf_rc rc = publish_serve(p, &so, &err);
    if (rc != PCF_OK) pcf_log_error(PCF_LOG_ERROR, "stopped on an error", &err, NULL);
    metrics_http_stop(&http);         /* before the registry and the publisher it reads */
    publish_destroy(&p);
    metrics_destroy(&m);
    return rc == PCF_OK ? 0 : 1;
}
