/*
 * bench_publish.c -- publisher benchmarks (issue 6 targets).
 *
 * Prints `BENCH <name> <value> <unit>` lines, context lines start with '#'.
 * Every receiver runs in a forked process of its own (its own ZeroMQ
 * context and I/O thread, as every real client); the sender is a PUB set up
 * as the publisher sets it up; TCP loopback; mode plain or curve (CurveZMQ
 * with the ZAP allowlist handler admitting the subscriber), side by side:
 *   pub_<mode>_row_{sent,recv}_per_s   a typical PCF message (a PcfBatch of
 *                     one row with the full header, 191 bytes): messages/s
 *                     handed to ZeroMQ and received by bare zmq_msg_recv
 *   pub_<mode>_row_sub_recv_per_s  the same received through our subscriber
 *                     (subscriber_poll: frame checks, header decode,
 *                     sequence rules, callback): what a client gets
 *   pub_<mode>_row_{send,recv_io,recv_thread,sub_recv_thread}_cpu_us_per_msg
 *                     CPU per message: the sending process (I/O thread
 *                     included), the receiver's I/O thread, its receiving
 *                     thread bare and through the subscriber
 *   pub_<mode>_{da,rt}_batch_{recv_per_s,rows_per_s}  the protocol's real
 *                     messages (docs/protocol.md 6.3: one PcfBatch per run):
 *                     the demo zone's day-ahead batch (35 sites x 48 SPs) and
 *                     real-time batch (35 x 8 SPs), received through the
 *                     subscriber, as messages/s and PCF rows/s
 *   curve_{box,open}_*_us  libsodium's crypto_box_afternm / _open_afternm
 *                     alone on one frame (topic, one-row body, day-ahead
 *                     batch): what CurveZMQ must spend per frame, the floor
 *                     under the Curve figures (the arithmetic is printed)
 *   pub_run_<mode>_runs_per_s  publish_send_run() of the day-ahead run
 *                     (three topics, packing and state keeping included)
 *   sub_header_decode_{protobuf_c,fast}_cpu_ns  CPU time to decode one
 *                     typical message's Header and BatchInfo: subscriber_peek
 *                     (protobuf-c, allocating) against subscriber_peek_fast
 *   commit_to_sub_ms_{median,p95,max}  a day-ahead run of the demo zone
 *                     (deploy/demo/zone) written in one transaction with
 *                     NOTIFY pcf_run; from sending COMMIT to a subscriber
 *                     holding the run's last message (pcf-publish's loop in a
 *                     thread, PostgreSQL from bench/run.sh)
 * PCF_BENCH_MSGS sets the one-row message count (default 2,000,000; the
 * batch counts follow it).
 * Run from the repository root (bench/run.sh does).
 */
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "publish.h"
#include "publish_auth.h"
#include "subscriber.h"

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Process CPU time (all threads): with a machine shared by other jobs, CPU
 * seconds per message is the figure that does not depend on their load. */
static double s_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

/* ---- a synthetic run shaped like the demo zone's day-ahead ---------------------------- */

typedef struct fake_run {
    publish_run r;
    Pcf__V1__Pcf *rows;
    char ids[64][16];
} fake_run;

static void s_fake(fake_run *f, size_t sites, size_t sps)
{
    memset(f, 0, sizeof *f);
    publish_run *r = &f->r;
    r->run_id = 1;
    snprintf(r->zone, sizeof r->zone, "demo");
    r->kind = PCF__V1__RUN_KIND__RUN_KIND_DAY_AHEAD;
    memcpy(r->settlement_date, "2026-11-24", 11);
    r->computed_at_ms = 1795440000000LL;
    pcf__v1__inputs_as_of__init(&r->inputs);
    r->inputs.scada_ms = 1795438000000LL;
    r->inputs.weather_issued_ms = 1795420000000LL;
    r->inputs.outages_ms = 1795300000000LL;
    pcf__v1__batch_info__init(&r->batch);
    r->batch.settlement_date = r->settlement_date;
    r->batch.horizon_start_ms = 1795478400000LL;
    r->batch.horizon_end_ms = 1795478400000LL + (int64_t)sps * 1800000;
    r->batch.sp_count = (uint32_t)sps;
    r->batch.samples = 2000;
    r->batch.part = r->batch.part_count = 1;
    r->batch.firm_confidence = 0.95;
    r->n_pcf = sites * sps;
    f->rows = calloc(r->n_pcf, sizeof *f->rows);
    r->pcf = calloc(r->n_pcf, sizeof *r->pcf);
    for (size_t i = 0; i < sites && i < 64; i++) snprintf(f->ids[i], sizeof f->ids[i], "KX_S%02zu", i + 1);
    for (size_t k = 0; k < r->n_pcf; k++) {
        Pcf__V1__Pcf *p = &f->rows[k];
        size_t sp = k / sites + 1, s = k % sites;
        pcf__v1__pcf__init(p);
        p->site_id = f->ids[s % 64];
        p->lifo_position = (uint32_t)s + 1;
        p->sp = (uint32_t)sp;
        p->sp_start_ms = r->batch.horizon_start_ms + (int64_t)(sp - 1) * 1800000;
        p->sp_length_ms = 1800000;
        double x = (double)(k % 97) / 97.0;
        p->p_curtailed = x / 3;
        p->expected_curtailed_mwh = x * 1.7;
        p->deliverable_p10_mw = 1.1 + x;
        p->deliverable_p50_mw = 2.2 + x;
        p->deliverable_p90_mw = 3.3 + x;
        p->firm_equivalent_mw = 0.9 + x;
        p->export_capacity_mw = 10 + (double)s;
        p->samples = 2000;
        p->p_curtailed_se = x / 300;
        p->expected_curtailed_mwh_se = x / 170;
        p->deliverable_p10_mw_se = x / 11;
        p->deliverable_p50_mw_se = x / 22;
        p->deliverable_p90_mw_se = x / 33;
        p->firm_equivalent_mw_se = x / 9;
        r->pcf[k] = p;
    }
}

static void s_fake_free(fake_run *f)
{
    free(f->rows);
    free(f->r.pcf);
}

static uint8_t *s_pack_pcf_seq(const publish_run *r, uint64_t seq, size_t *len)
{
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__InputsAsOf in = r->inputs;
    Pcf__V1__BatchInfo bi = r->batch;
    h.schema_version = 1;
    h.zone = (char *)r->zone;
    h.topic = "pcf.da.demo";
    h.sequence = seq;
    h.run_id = 98765;
    h.run_kind = r->kind;
    h.computed_at_ms = r->computed_at_ms;
    h.inputs_as_of = &in;
    h.stream_epoch = 1795440000000ULL;
    Pcf__V1__PcfBatch b = PCF__V1__PCF_BATCH__INIT;
    b.header = &h;
    b.batch = &bi;
    b.n_rows = r->n_pcf;
    b.rows = r->pcf;
    *len = pcf__v1__pcf_batch__get_packed_size(&b);
    uint8_t *buf = malloc(*len);
    pcf__v1__pcf_batch__pack(&b, buf);
    return buf;
}

/* A message whose sequence the sender rewrites in place: packed with a
 * sequence from SEQ0 it has a 5-byte varint there (the offset is where two
 * packings differ), which s_seqmsg_set fills with any sequence below 2^35,
 * padded as protobuf allows, so the length never changes.  Sequences start
 * at 1: a subscriber takes nothing else as a topic's start. */
#define SEQ0 (1ULL << 28)

typedef struct seqmsg {
    uint8_t *buf;
    size_t len, at;      /* the sequence varint is buf[at .. at + 5) */
} seqmsg;

static int s_seqmsg(const publish_run *r, seqmsg *m)
{
    size_t l2;
    m->buf = s_pack_pcf_seq(r, SEQ0, &m->len);
    uint8_t *b = s_pack_pcf_seq(r, SEQ0 + 1, &l2);
    size_t i = 0;
    while (i < m->len && m->buf[i] == b[i]) i++;
    free(b);
    if (l2 != m->len || i == m->len) return -1;
    /* the first differing byte is the varint's first byte (its low 7 bits) */
    m->at = i;
    return 0;
}

static void s_seqmsg_set(seqmsg *m, uint64_t seq)
{
    uint8_t *p = m->buf + m->at;
    for (int i = 0; i < 4; i++, seq >>= 7) p[i] = (uint8_t)(seq & 0x7f) | 0x80;
    p[4] = (uint8_t)(seq & 0x7f);
}

/* ---- transport: PUB -> SUB over TCP loopback ----------------------------------------------- */

typedef struct keys {
    char spub[41], ssec[41], cpub[41], csec[41];
    char allow[64];
} keys;

/* What the receiving process reports: times on CLOCK_MONOTONIC (one clock
 * for both processes); CPU from its first message on, of the whole
 * process (application thread + ZeroMQ I/O thread) and of the thread that
 * calls zmq_msg_recv / subscriber_poll. */
typedef struct rx_report {
    long got;
    double t_first, t_last;
    double cpu_proc, cpu_thread;
} rx_report;

typedef struct rx {
    int fd;               /* to the sending process: "r" once ready, then the report */
    const char *ep;
    const keys *k;        /* NULL: plain */
    long expect;
    int ready;
    double c0, th0;
    rx_report rep;
} rx;

static double s_thread_cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void s_rx_ready(rx *x)
{
    if (x->ready) return;
    x->ready = 1;
    if (write(x->fd, "r", 1) != 1) perror("bench_publish: ready");
}

static void s_rx_got(rx *x)
{
    if (x->rep.got++ == 0) {
        x->rep.t_first = s_now();
        x->c0 = s_cpu();
        x->th0 = s_thread_cpu();
    }
    if (x->rep.got == x->expect) x->rep.t_last = s_now();
}

static void s_rx_count(void *ctx, const subscriber_msg *m)
{
    (void)m;
    s_rx_got(ctx);
}

/* Receives through our subscriber; the warm-up "w" messages are not feed
 * messages, so they show up as malformed, which is how readiness is seen. */
static void s_rx_sub(rx *x)
{
    subscriber_config cfg = {.pub_endpoint = x->ep, .router_endpoint = "tcp://127.0.0.1:1", .rcvhwm = 4000000};
    if (x->k) {
        cfg.server_public_key = x->k->spub;
        cfg.public_key = x->k->cpub;
        cfg.secret_key = x->k->csec;
    }
    pcf_error e;
    subscriber *s = subscriber_new(&cfg, &e);
    if (!s || subscriber_add_prefix(s, "", &e) != PCF_OK) {
        fprintf(stderr, "bench_publish: subscriber: %s\n", e.msg);
        s_rx_ready(x);
        subscriber_destroy(&s);
        return;
    }
    subscriber_stats st;
    double idle_since = s_now();
    while (x->rep.got < x->expect && s_now() - idle_since < 3) {
        long before = x->rep.got;
        if (subscriber_poll(s, 100, s_rx_count, x, &e) != PCF_OK) break;
        subscriber_get_stats(s, &st);
        if (st.malformed) s_rx_ready(x);
        if (x->rep.got != before || !x->ready) idle_since = s_now();
    }
    x->rep.cpu_proc = s_cpu() - x->c0;
    x->rep.cpu_thread = s_thread_cpu() - x->th0;
    subscriber_destroy(&s);
}

/* Receives with bare libzmq: what the transport alone costs. */
static void s_rx_bare(rx *x)
{
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_SUB);
    int hwm = 4000000, zero = 0, ms = 3000;   /* above the message count: nothing dropped */
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &ms, sizeof ms);
    if (x->k) {
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, x->k->spub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, x->k->cpub, 40);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, x->k->csec, 40);
    }
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(s, x->ep);
    zmq_msg_t m;
    zmq_msg_init(&m);
    /* warm-up messages on "w" until the link is up */
    while (x->rep.got < x->expect && zmq_msg_recv(&m, s, 0) >= 0) {
        int warm = zmq_msg_size(&m) == 1 && *(char *)zmq_msg_data(&m) == 'w';
        if (zmq_msg_recv(&m, s, 0) < 0) break;   /* the body */
        if (warm) s_rx_ready(x);
        else if (x->ready) s_rx_got(x);
    }
    x->rep.cpu_proc = s_cpu() - x->c0;
    x->rep.cpu_thread = s_thread_cpu() - x->th0;
    zmq_msg_close(&m);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* The ZAP handler of the curve case, serviced by the publisher's thread in
 * production; here a thread of its own so the sender loop stays a loop. */
typedef struct zapper {
    publish_allowlist *allow;
    atomic_int stop;
    void *sock;
} zapper;

static void *s_zap(void *arg)
{
    zapper *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t it = {z->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) > 0) {
            int ok;
            char key[41];
            pcf_error e;
            publish_auth_zap(z->sock, z->allow, &ok, key, &e);
        }
    }
    return NULL;
}

/* One measurement: rates on the wall clock, CPU in microseconds per message. */
typedef struct xfer {
    double sent, recv;            /* messages/s handed to ZeroMQ; received */
    long lost;
    double send_proc_us;          /* sending process, until the receiver has all (I/O thread included) */
    double recv_proc_us, recv_thread_us;   /* receiving process; its application thread */
} xfer;

static int s_read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = read(fd, p, len);
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Sends n copies of msg (with sequences 1, 2, ... when sm is
 * given: msg is then sm's buffer) to a receiver in a process of its own,
 * as every real client is: its own ZeroMQ context and I/O thread, so
 * sender and receiver never share one (they did before, which halved the
 * Curve figures: one thread encrypted and decrypted everything). */
static void s_transport(const keys *k, const uint8_t *msg, size_t len, long n, seqmsg *sm, int via_sub, xfer *o)
{
    memset(o, 0, sizeof *o);
    o->lost = n;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
        /* Forked before this process has any ZeroMQ context or thread. */
        close(sv[0]);
        char ep[256];
        rx x = {sv[1], ep, k, n, 0, 0, 0, {0}};
        if (s_read_all(sv[1], ep, sizeof ep) != 0) _exit(1);
        if (via_sub) s_rx_sub(&x);
        else s_rx_bare(&x);
        if (x.rep.got != x.expect) x.rep.t_last = s_now();
        s_rx_ready(&x);
        _exit(write(sv[1], &x.rep, sizeof x.rep) == (ssize_t)sizeof x.rep ? 0 : 1);
    }
    close(sv[1]);
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 1);
    zapper z = {NULL, 0, NULL};
    pthread_t zt;
    pcf_error e;
    if (k) {
        publish_allowlist_load(k->allow, &z.allow, &e);
        z.sock = zmq_socket(ctx, ZMQ_REP);
        zmq_bind(z.sock, "inproc://zeromq.zap.01");
        pthread_create(&zt, NULL, s_zap, &z);
    }
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    int hwm = 4000000, zero = 0, one = 1;
    zmq_setsockopt(pub, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof zero);
    if (k) {
        zmq_setsockopt(pub, ZMQ_CURVE_SERVER, &one, sizeof one);
        zmq_setsockopt(pub, ZMQ_CURVE_SECRETKEY, k->ssec, 40);
        zmq_setsockopt(pub, ZMQ_ZAP_DOMAIN, "pcf", 3);
    }
    zmq_bind(pub, "tcp://127.0.0.1:*");
    char ep[256] = "";
    size_t el = sizeof ep;
    zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, ep, &el);
    rx_report rep = {0};
    if (write(sv[0], ep, sizeof ep) == (ssize_t)sizeof ep) {
        double until = s_now() + 5;
        struct pollfd pf = {sv[0], POLLIN, 0};
        while (s_now() < until) {
            zmq_send(pub, "w", 1, ZMQ_SNDMORE);
            zmq_send(pub, "", 0, 0);
            if (poll(&pf, 1, 10) > 0) break;
        }
        char r;
        if (read(sv[0], &r, 1) == 1) {
            const char *topic = "pcf.da.demo";
            size_t tl = strlen(topic);
            double t0 = s_now(), c0 = s_cpu();
            for (long i = 0; i < n; i++) {
                if (sm) s_seqmsg_set(sm, 1 + (uint64_t)i);
                zmq_send(pub, topic, tl, ZMQ_SNDMORE);
                zmq_send(pub, msg, len, 0);
            }
            o->sent = (double)n / (s_now() - t0);
            if (s_read_all(sv[0], &rep, sizeof rep) == 0) {
                o->send_proc_us = (s_cpu() - c0) * 1e6 / (double)n;
                o->lost = n - rep.got;
                o->recv = rep.got > 1 ? (double)(rep.got - 1) / (rep.t_last - rep.t_first) : 0;
                o->recv_proc_us = rep.got ? rep.cpu_proc * 1e6 / (double)rep.got : 0;
                o->recv_thread_us = rep.got ? rep.cpu_thread * 1e6 / (double)rep.got : 0;
            }
        }
    }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    zmq_close(pub);
    if (k) {
        atomic_store(&z.stop, 1);
        pthread_join(zt, NULL);
        zmq_close(z.sock);
        publish_allowlist_destroy(&z.allow);
    }
    zmq_ctx_term(ctx);
}

/* ---- what CurveZMQ costs per frame ------------------------------------------------------------- */

/* libzmq 4.3 boxes every frame on its own with crypto_box_afternm (the key
 * agreed at the handshake, a fresh nonce): 32 zero bytes, a flags byte and
 * the frame in, the same length out; the receiver opens it with
 * crypto_box_open_afternm.  Timed here on the CPU clock, per frame. */
static void s_box_cost(size_t frame, long reps, double *box_us, double *open_us)
{
    unsigned char pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES], key[crypto_box_BEFORENMBYTES];
    unsigned char nonce[crypto_box_NONCEBYTES] = {0};
    size_t l = crypto_box_ZEROBYTES + 1 + frame;
    unsigned char *m = calloc(l, 1), *c = calloc(l, 1), *back = calloc(l, 1);
    *box_us = *open_us = 0;
    if (!m || !c || !back || crypto_box_keypair(pk, sk) != 0 || crypto_box_beforenm(key, pk, sk) != 0) goto done;
    for (size_t i = crypto_box_ZEROBYTES; i < l; i++) m[i] = (unsigned char)(i * 7);
    int bad = 0;
    double t0 = s_thread_cpu();
    for (long r = 0; r < reps; r++) {
        memcpy(nonce, &r, sizeof r);
        bad |= crypto_box_afternm(c, m, l, nonce, key);
    }
    double t1 = s_thread_cpu();
    for (long r = 0; r < reps; r++) bad |= crypto_box_open_afternm(back, c, l, nonce, key);
    double t2 = s_thread_cpu();
    if (!bad && memcmp(back, m, l) == 0) {
        *box_us = (t1 - t0) * 1e6 / (double)reps;
        *open_us = (t2 - t1) * 1e6 / (double)reps;
    }
done:
    free(m);
    free(c);
    free(back);
}

/* ---- publish_send_run of the demo-size run ---------------------------------------------------- */

static double s_runs_per_s(const keys *k, fake_run *f, int runs)
{
    publish_config cfg = {.pub_endpoint = "tcp://127.0.0.1:*", .router_endpoint = "tcp://127.0.0.1:*",
                          .heartbeat_ms = 60000, .curve_secret_key = k ? k->ssec : NULL,
                          .allowlist_path = k ? k->allow : NULL, .sndhwm = 100000};
    pcf_error e;
    publish *p = publish_new(&cfg, &e);
    if (!p) {
        fprintf(stderr, "bench_publish: %s\n", e.msg);
        return 0;
    }
    double t0 = s_now();
    for (int i = 0; i < runs; i++) {
        f->r.run_id = 100 + i;
        bool sent;
        publish_send_run(p, &f->r, &sent, &e);
    }
    double t = s_now() - t0;
    publish_destroy(&p);
    return runs / t;
}

/* ---- commit to subscriber ------------------------------------------------------------------------- */

typedef struct srv {
    publish *p;
    atomic_int stop;
    char conninfo[512];
} srv;

static void *s_srv(void *arg)
{
    srv *s = arg;
    publish_serve_opts o = {.conninfo = s->conninfo, .stop = &s->stop};
    pcf_error e;
    publish_serve(s->p, &o, &e);
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int s_sh(const char *host, const char *port, const char *dbname, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "PGHOST='%s' PGPORT='%s' PGUSER=postgres PGDATABASE='%s' %s >/dev/null 2>&1", host,
             port, dbname, cmd);
    return system(full);
}

static void s_latency(void)
{
    const char *host = getenv("PCF_TEST_PGHOST"), *port = getenv("PCF_TEST_PGPORT");
    const char *bindir = getenv("PCF_BINDIR") ? getenv("PCF_BINDIR") : "bin";
    if (!host || !port) {
        printf("# commit_to_sub: skipped (no PCF_TEST_PGHOST; run through bench/run.sh)\n");
        return;
    }
    char ci[512], db[64], cmd[1024];
    snprintf(db, sizeof db, "bench_publish_%d", (int)getpid());
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=postgres", host, port);
    PGconn *c = PQconnectdb(ci);
    char sql[8192];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    PQclear(PQexec(c, sql));
    PQfinish(c);
    const char *steps[] = {"migrate", "import-matpower --zone demo deploy/demo/zone/kestrel_cross.m",
                           "import-der --zone demo deploy/demo/zone", "import-anm --zone demo deploy/demo/zone"};
    for (int i = 0; i < 4; i++) {
        snprintf(cmd, sizeof cmd, "%s/pcf-db %s", bindir, steps[i]);
        if (s_sh(host, port, db, cmd) != 0) {
            printf("# commit_to_sub: skipped (%s failed)\n", cmd);
            return;
        }
    }
    snprintf(ci, sizeof ci, "host=%s port=%s user=postgres dbname=%s", host, port, db);
    c = PQconnectdb(ci);
    srv s = {0};
    snprintf(s.conninfo, sizeof s.conninfo, "%s", ci);
    publish_config cfg = {.pub_endpoint = "tcp://127.0.0.1:*", .router_endpoint = "tcp://127.0.0.1:*",
                          .heartbeat_ms = 100};
    pcf_error e;
    s.p = publish_new(&cfg, &e);
    void *ctx = zmq_ctx_new(), *sub = zmq_socket(ctx, ZMQ_SUB);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(sub, publish_pub_endpoint(s.p));
    pthread_t th;
    pthread_create(&th, NULL, s_srv, &s);
    int ms = 5000;
    zmq_setsockopt(sub, ZMQ_RCVTIMEO, &ms, sizeof ms);
    static uint8_t buf[4 << 20];
    char topic[64];
    int n = zmq_recv(sub, topic, sizeof topic, 0);   /* a heartbeat: joined */
    zmq_recv(sub, buf, sizeof buf, 0);
    (void)n;
    enum { ROUNDS = 15 };
    double lat[ROUNDS], after_commit[ROUNDS];
    size_t bytes = 0;
    int done = 0;
    for (int i = 0; i < ROUNDS; i++) {
        PQclear(PQexec(c, "BEGIN"));
        snprintf(sql, sizeof sql,
                 "INSERT INTO run (zone_id, kind, target_date, horizon_start, horizon_end, sp_count, seed, samples,"
                 " software_version, finished_at) VALUES ('demo', 'day_ahead', '2026-11-24',"
                 " '2026-11-24 00:00+00', '2026-11-25 00:00+00', 48, %d, 2000, 'bench', now());"
                 "INSERT INTO pcf_result SELECT r.run_id, s.site_id, sp, r.horizon_start + (sp - 1) * interval '30 min',"
                 " ((sp * 7 + r.run_id) %% 97) / 97.0, 0.001, sp / 3.0, 0.001, 1 + sp / 7.0, 2 + sp / 7.0,"
                 " 3 + sp / 7.0, 0.1, 0.2, 0.3, 0.5, 0.05 FROM run r, der_site s, generate_series(1, 48) sp"
                 " WHERE r.run_id = (SELECT max(run_id) FROM run) AND s.zone_id = r.zone_id;"
                 "INSERT INTO constraint_statement SELECT r.run_id, c.constraint_id, sp,"
                 " r.horizon_start + (sp - 1) * interval '30 min', 100, 'pel', 'winter', 10, 20, 30, 40, 50, 60,"
                 " 0.1, 0.01, 1, 0.1, NULL, 120, 0.05, 0.005, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6"
                 " FROM run r, anm_constraint c, generate_series(1, 48) sp"
                 " WHERE r.run_id = (SELECT max(run_id) FROM run) AND c.zone_id = r.zone_id;"
                 "INSERT INTO constraint_statement_site SELECT cs.run_id, cs.constraint_id, cs.sp, a.site_id,"
                 " row_number() OVER (PARTITION BY cs.constraint_id, cs.sp ORDER BY a.site_id), 0.2, 0.1, 0.01, 0.3, 0.02"
                 " FROM constraint_statement cs JOIN anm_constraint_site a USING (constraint_id)"
                 " WHERE cs.run_id = (SELECT max(run_id) FROM run);"
                 "INSERT INTO constraint_block SELECT cs.run_id, cs.constraint_id, cs.sp, conf, 5, 1, 0.5, 0.1, 0.2, 0.1"
                 " FROM constraint_statement cs, unnest(ARRAY[0.5, 0.8, 0.9, 0.95, 0.99]) conf"
                 " WHERE cs.run_id = (SELECT max(run_id) FROM run);"
                 "SELECT pg_notify('pcf_run', max(run_id)::text) FROM run;",
                 i);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            printf("# commit_to_sub: insert failed: %s", PQerrorMessage(c));
            PQclear(res);
            break;
        }
        PQclear(res);
        double t0 = s_now();
        PQclear(PQexec(c, "COMMIT"));
        double t_committed = s_now();
        int got = 0;
        bytes = 0;
        while (got < 3) {
            n = zmq_recv(sub, topic, sizeof topic - 1, 0);
            if (n < 0) break;
            topic[n < 63 ? n : 63] = '\0';
            int b = zmq_recv(sub, buf, sizeof buf, 0);
            if (strcmp(topic, "hb") == 0) continue;
            bytes += (size_t)b;
            got++;
        }
        if (got < 3) {
            printf("# commit_to_sub: run %d incomplete\n", i);
            break;
        }
        after_commit[done] = (s_now() - t_committed) * 1e3;
        lat[done++] = (s_now() - t0) * 1e3;
    }
    {
        /* where the time goes: reading the run back */
        PGresult *res = PQexec(c, "SELECT max(run_id) FROM run");
        long id = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        /* the two steps of publishing a notified run, timed apart (median of 15):
         * reading it back from PostgreSQL, and packing + sending its three
         * messages (a publisher of its own, so topics are new each time) */
        double tl[15], ts[15];
        size_t nrows = 0, nst = 0, nbl = 0;
        int k = 0;
        for (; k < 15; k++) {
            publish_run *r = NULL;
            double t0 = s_now();
            if (publish_run_load(c, id, PUBLISH_RUN_ALL, &r, &e) != PCF_OK) break;
            tl[k] = (s_now() - t0) * 1e3;
            nrows = r->n_pcf, nst = r->n_statements, nbl = r->n_blocks;
            publish_config pc = {.pub_endpoint = "tcp://127.0.0.1:*", .router_endpoint = "tcp://127.0.0.1:*",
                                 .heartbeat_ms = 60000};
            publish *p2 = publish_new(&pc, &e);
            bool sent;
            t0 = s_now();
            if (p2) publish_send_run(p2, r, &sent, &e);
            ts[k] = (s_now() - t0) * 1e3;
            publish_destroy(&p2);
            publish_run_destroy(&r);
        }
        if (k) {
            qsort(tl, (size_t)k, sizeof *tl, s_cmp);
            qsort(ts, (size_t)k, sizeof *ts, s_cmp);
            printf("# commit_to_sub: breakdown: reading the run back (publish_run_load) median %.2f ms (min %.2f):"
                   " %zu PCF rows, %zu statements, %zu blocks; packing and sending median %.2f ms\n",
                   tl[k / 2], tl[0], nrows, nst, nbl, ts[k / 2]);
            printf("BENCH commit_to_sub_load_ms_median %.2f ms\n", tl[k / 2]);
            printf("BENCH commit_to_sub_send_ms_median %.2f ms\n", ts[k / 2]);
        }
    }
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    publish_destroy(&s.p);
    zmq_close(sub);
    zmq_ctx_term(ctx);
    PQfinish(c);
    snprintf(cmd, sizeof cmd, "psql -c 'DROP DATABASE IF EXISTS %s WITH (FORCE)'", db);
    s_sh(host, port, "postgres", cmd);
    if (!done) return;
    qsort(lat, (size_t)done, sizeof *lat, s_cmp);
    qsort(after_commit, (size_t)done, sizeof *after_commit, s_cmp);
    printf("# commit_to_sub: of which after COMMIT returned to the engine: median %.2f ms (the rest is the"
           " commit itself)\n", after_commit[done / 2]);
    printf("# commit_to_sub: demo zone day-ahead run, 3 messages, %.0f kB in all, %d rounds\n", bytes / 1e3, done);
    printf("BENCH commit_to_sub_ms_median %.2f ms\n", lat[done / 2]);
    printf("BENCH commit_to_sub_ms_p95 %.2f ms\n", lat[(done * 95) / 100 < done ? (done * 95) / 100 : done - 1]);
    printf("BENCH commit_to_sub_ms_max %.2f ms\n", lat[done - 1]);
}

/* Prints one kind of message's figures for both modes; returns nothing,
 * fills x[0] (plain) and x[1] (curve). */
static void s_measure(const keys *k, seqmsg *m, long n, int via_sub, xfer x[2])
{
    for (int mode = 0; mode < 2; mode++) s_transport(mode ? k : NULL, m->buf, m->len, n, m, via_sub, &x[mode]);
}

static void s_lost(const char *what, const xfer x[2], long n)
{
    for (int mode = 0; mode < 2; mode++)
        if (x[mode].lost) printf("# %s, %s: %ld of %ld not received\n", what, mode ? "curve" : "plain", x[mode].lost, n);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "latency") == 0) {   /* only the database part */
        s_latency();
        return 0;
    }
    if (sodium_init() < 0) return 1;
    keys k;
    zmq_curve_keypair(k.spub, k.ssec);
    zmq_curve_keypair(k.cpub, k.csec);
    snprintf(k.allow, sizeof k.allow, "/tmp/pcf-bench-allow-%d", (int)getpid());
    FILE *f = fopen(k.allow, "w");
    if (!f) return 1;
    fprintf(f, "%s bench subscriber\n", k.cpub);
    fclose(f);

    /* the demo zone: 35 sites; day-ahead 48 SPs, real-time 8 (methodology R.1) */
    enum { SITES = 35, DA_SPS = 48, RT_SPS = 8 };
    fake_run one, da, rt;
    s_fake(&one, 1, 1);
    s_fake(&da, SITES, DA_SPS);
    s_fake(&rt, SITES, RT_SPS);
    seqmsg s1, sda, srt;
    if (s_seqmsg(&one.r, &s1) != 0 || s_seqmsg(&da.r, &sda) != 0 || s_seqmsg(&rt.r, &srt) != 0) return 1;
    printf("# typical PCF message: PcfBatch with header and one row, %zu bytes; the demo zone's day-ahead batch"
           " (%d rows) %zu bytes, real-time batch (%d rows) %zu bytes\n",
           s1.len, SITES * DA_SPS, sda.len, SITES * RT_SPS, srt.len);
    printf("# each receiver is a process of its own (its own ZeroMQ context and I/O thread), as clients are\n");
    const long n_small = getenv("PCF_BENCH_MSGS") ? atol(getenv("PCF_BENCH_MSGS")) : 2000000;
    const long n_da = n_small / 1000 > 100 ? n_small / 1000 : 100, n_rt = 5 * n_da;
    xfer row[2], sub[2], xda[2], xrt[2];
    s_measure(&k, &s1, n_small, 0, row);
    s_measure(&k, &s1, n_small, 1, sub);
    s_measure(&k, &sda, n_da, 1, xda);
    s_measure(&k, &srt, n_rt, 1, xrt);
    s_lost("one-row, bare", row, n_small);
    s_lost("one-row, subscriber", sub, n_small);
    s_lost("day-ahead batches", xda, n_da);
    s_lost("real-time batches", xrt, n_rt);
    for (int mode = 0; mode < 2; mode++) {
        const char *name = mode ? "curve" : "plain";
        const xfer *r = &row[mode], *s = &sub[mode];
        printf("BENCH pub_%s_row_sent_per_s %.0f msg/s\n", name, r->sent);
        printf("BENCH pub_%s_row_recv_per_s %.0f msg/s\n", name, r->recv);
        printf("BENCH pub_%s_row_sub_recv_per_s %.0f msg/s\n", name, s->recv);
        printf("BENCH pub_%s_row_cpu_us_per_msg %.3f us\n", name, r->send_proc_us + r->recv_proc_us);
        printf("BENCH pub_%s_row_send_cpu_us_per_msg %.3f us\n", name, r->send_proc_us);
        printf("BENCH pub_%s_row_recv_io_cpu_us_per_msg %.3f us\n", name, r->recv_proc_us - r->recv_thread_us);
        printf("BENCH pub_%s_row_recv_thread_cpu_us_per_msg %.3f us\n", name, r->recv_thread_us);
        printf("BENCH pub_%s_row_sub_recv_thread_cpu_us_per_msg %.3f us\n", name, s->recv_thread_us);
        printf("BENCH pub_%s_da_batch_recv_per_s %.0f msg/s\n", name, xda[mode].recv);
        printf("BENCH pub_%s_da_batch_rows_per_s %.0f rows/s\n", name, xda[mode].recv * SITES * DA_SPS);
        printf("BENCH pub_%s_da_recv_mb_per_s %.0f MB/s\n", name, xda[mode].recv * (double)sda.len / 1e6);
        printf("BENCH pub_%s_rt_batch_recv_per_s %.0f msg/s\n", name, xrt[mode].recv);
        printf("BENCH pub_%s_rt_batch_rows_per_s %.0f rows/s\n", name, xrt[mode].recv * SITES * RT_SPS);
        printf("BENCH pub_run_%s_runs_per_s %.0f runs/s\n", name, s_runs_per_s(mode ? &k : NULL, &da, 500));
    }
    printf("# side by side (received = by one subscriber process over TCP loopback):\n");
    printf("#   %-58s %15s %15s\n", "", "plain", "curve");
    printf("#   %-58s %11.0f msg/s %9.0f msg/s\n", "one-row message: handed to ZeroMQ", row[0].sent, row[1].sent);
    printf("#   %-58s %11.0f msg/s %9.0f msg/s\n", "one-row message: received, bare libzmq", row[0].recv, row[1].recv);
    printf("#   %-58s %11.0f msg/s %9.0f msg/s\n", "one-row message: received through our subscriber", sub[0].recv,
           sub[1].recv);
    printf("#   %-58s %11.0f msg/s %9.0f msg/s\n", "day-ahead PcfBatch (1,680 rows): received, subscriber", xda[0].recv,
           xda[1].recv);
    printf("#   %-58s %10.2fM rows/s %7.2fM rows/s\n", "  the same in PCF rows", xda[0].recv * SITES * DA_SPS / 1e6,
           xda[1].recv * SITES * DA_SPS / 1e6);
    printf("#   %-58s %11.0f msg/s %9.0f msg/s\n", "real-time PcfBatch (280 rows): received, subscriber", xrt[0].recv,
           xrt[1].recv);
    printf("#   %-58s %10.2fM rows/s %7.2fM rows/s\n", "  the same in PCF rows", xrt[0].recv * SITES * RT_SPS / 1e6,
           xrt[1].recv * SITES * RT_SPS / 1e6);
    printf("#   %-58s %12.3f us %12.3f us\n", "one-row message, CPU: sending process (I/O thread incl.)",
           row[0].send_proc_us, row[1].send_proc_us);
    printf("#   %-58s %12.3f us %12.3f us\n", "one-row message, CPU: receiving process's I/O thread",
           row[0].recv_proc_us - row[0].recv_thread_us, row[1].recv_proc_us - row[1].recv_thread_us);
    printf("#   %-58s %12.3f us %12.3f us\n", "one-row message, CPU: receiving thread, bare / subscriber",
           row[0].recv_thread_us, row[1].recv_thread_us);
    printf("#   %-58s %12.3f us %12.3f us\n", "", sub[0].recv_thread_us, sub[1].recv_thread_us);
    printf("#   %-58s %12.1f us %12.1f us\n", "day-ahead batch, CPU: receiving process's I/O thread",
           xda[0].recv_proc_us - xda[0].recv_thread_us, xda[1].recv_proc_us - xda[1].recv_thread_us);
    printf("#   %-58s %12.1f us %12.1f us\n", "day-ahead batch, CPU: receiving thread (subscriber)",
           xda[0].recv_thread_us, xda[1].recv_thread_us);
    printf("#   %-58s %12.1f us %12.1f us\n", "day-ahead batch, CPU: sending process", xda[0].send_proc_us,
           xda[1].send_proc_us);
    /* What Curve costs, and why 1M one-row messages/s is out of reach. */
    {
        size_t tl = strlen("pcf.da.demo");
        double bt, ot, bb, ob, bd, od;
        s_box_cost(tl, 400000, &bt, &ot);
        s_box_cost(s1.len, 400000, &bb, &ob);
        s_box_cost(sda.len, 400, &bd, &od);
        printf("BENCH curve_box_topic_frame_us %.3f us\n", bt);
        printf("BENCH curve_open_topic_frame_us %.3f us\n", ot);
        printf("BENCH curve_box_row_frame_us %.3f us\n", bb);
        printf("BENCH curve_open_row_frame_us %.3f us\n", ob);
        printf("BENCH curve_open_da_frame_us %.1f us\n", od);
        double io = row[1].recv_proc_us - row[1].recv_thread_us, crypto = bt + ot + bb + ob;
        double all = row[1].send_proc_us + row[1].recv_proc_us;
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        printf("# curve: a feed message is two frames (topic %zu B, body %zu B), each boxed on its own"
               " (libsodium crypto_box_afternm, measured alone): sender %.2f + %.2f us, receiver %.2f + %.2f us\n",
               tl, s1.len, bt, bb, ot, ob);
        printf("# curve: one connection is served by one I/O thread per side; the receiver's took %.2f us per message"
               " (%.2f of it opening boxes), so one subscriber gets at most %.0f msg/s on any number of cores\n",
               io, ot + ob, io > 0 ? 1e6 / io : 0);
        printf("# curve: 1,000,000 msg/s needs %.1f cores for the crypto alone and %.1f cores in all"
               " (%.2f us per message, both processes); this machine has %ld\n",
               crypto, all, all, cores);
        printf("# curve: a day-ahead batch (%zu B) opens in %.0f us: %.1fM PCF rows/s per receiving I/O thread\n",
               sda.len, od, od > 0 ? SITES * DA_SPS / od : 0);
    }
    /* decoding the header alone, the part of the receive path that is ours;
     * CPU time, which the other jobs on a shared machine do not inflate */
    {
        const long reps = 2000000;
        uint32_t a, b;
        uint64_t sum = 0;
        double t0 = s_cpu();
        for (long i = 0; i < reps; i++) {
            Pcf__V1__Header *h = subscriber_peek(s1.buf, s1.len, &a, &b);
            sum += h->sequence + a;
            pcf__v1__header__free_unpacked(h, NULL);
        }
        double t1 = s_cpu();
        subscriber_head hd;
        for (long i = 0; i < reps; i++) {
            subscriber_peek_fast(s1.buf, s1.len, &hd);
            sum += hd.h.sequence + hd.part;
        }
        double t2 = s_cpu();
        printf("BENCH sub_header_decode_protobuf_c_cpu_ns %.1f ns\n", (t1 - t0) * 1e9 / (double)reps);
        printf("BENCH sub_header_decode_fast_cpu_ns %.1f ns\n", (t2 - t1) * 1e9 / (double)reps);
        printf("# header decode checksum %llu\n", (unsigned long long)sum);
    }
    free(s1.buf);
    free(sda.buf);
    free(srt.buf);
    s_fake_free(&one);
    s_fake_free(&da);
    s_fake_free(&rt);
    unlink(k.allow);
    s_latency();
    return 0;
}
