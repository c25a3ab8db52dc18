/*
 * pcf-forecaster -- the look-ahead engine's command line: one run now, or the
 * daemon that takes runs from the run queue.
 *
 * A thin layer over engine.c (one run) and runq.c (the queue and the
 * daemon loop): it parses arguments, connects, logs one line per run with
 * the time spent in each stage, and maps errors to exit codes:
 * 0 done, 1 the run failed (bad input or database), 2 usage.
 */
#include <cblas.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blas_core.h"
#include "db.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "parse.h"
#include "runq.h"
#include "sptime.h"
#include "study_ac.h"

#include "version.h"

static const char s_usage[] =
    "usage: pcf-forecaster [--db CONNINFO] COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  run --zone Z --day-ahead YYYY-MM-DD   forecast every settlement period of that UK day\n"
    "  run --zone Z --real-time [--periods N] [--at ISO8601]\n"
    "                                        forecast the next N SPs (default 8) from the latest\n"
    "                                        SCADA, or from the given instant\n"
    "  queue --zone Z (--day-ahead DATE | --real-time)\n"
    "                                        ask the daemons for a run\n"
    "  version                               the version, and the OpenBLAS kernels and threads in use\n"
    "  daemon [--zones Z1,Z2] [--day-ahead-at HH:MM] [--debounce-ms MS] [--name ID] [--stale-s S]\n"
    "                                        take runs from the queue; queue a real-time run when\n"
    "                                        ingest NOTIFYs fresh SCADA and a day-ahead run daily;\n"
    "                                        a job whose engine has not beaten its heartbeat for\n"
    "                                        S seconds (default 15) is taken over\n"
    "         [--metrics-port P] [--metrics-address A] [--log-level L]\n"
    "                                        Prometheus GET /metrics on A:P (127.0.0.1:9465;\n"
    "                                        P 0: none); logfmt lines on stderr at level L\n"
    "                                        (debug|info|warn|error, default PCF_LOG_LEVEL or info)\n"
    "\n"
    "Run options (run and daemon):\n"
    "  --samples N      Monte-Carlo samples per settlement period (default 10000)\n"
    "  --seed S         random seed (default: derived from zone, kind and horizon)\n"
    "  --threads T      worker threads (default 2); results do not depend on it\n"
    "  --use-release    curtail down to the release margin instead of the trim limit\n"
    "  --ac screened|all|off\n"
    "                   power flow: screened (the default) linearises each network state's AC\n"
    "                   flows at its operating point and solves AC Newton-Raphson only for\n"
    "                   samples within 0.25 % of where the ANM acts; all: AC for every sample;\n"
    "                   off: DC only (docs/methodology.md R.8)\n"
    "  --ac-band PCT    AC for every sample whose DC flow is within PCT % of a limit (the\n"
    "                   older, slower selection; --ac all is its PCT 100)\n"
    "\n"
    "CONNINFO is a libpq connection string; without --db PCF_DB is used, else libpq's\n"
    "PG* variables.  Results are written in one transaction and announced with\n"
    "NOTIFY pcf_run '<run_id>'.  docs/methodology.md explains the method.\n";

typedef struct cli {
    const char *db, *zone, *date, *at, *zones, *da_at, *name;
    int real_time, periods, threads, use_release;
    int ac;
    double ac_band;
    long debounce_ms;
    int stale_s;
    int metrics_port;
    const char *metrics_address;
    size_t samples;
    uint64_t seed;
} cli;

static int s_num(const char *opt, const char *v, long lo, long hi, long *out)
{
    if (parse_long(v, strlen(v), out) != PCF_OK || *out < lo || *out > hi) {
        fprintf(stderr, "pcf-forecaster: %s: '%s' is not an integer in %ld..%ld\n", opt, v, lo, hi);
        return 0;
    }
    return 1;
}

static int s_date(const char *s, int *y, int *m, int *d)
{
    long v;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return 0;
    if (parse_long(s, 4, &v) != PCF_OK) return 0;
    *y = (int)v;
    if (parse_long(s + 5, 2, &v) != PCF_OK) return 0;
    *m = (int)v;
    if (parse_long(s + 8, 2, &v) != PCF_OK) return 0;
    *d = (int)v;
    return sptime_sp_count(*y, *m, *d) > 0;
}

static void s_log_run(const engine_opts *o, const engine_report *r)
{
    fprintf(stderr,
            "pcf-forecaster: run=%lld zone=%s kind=%s sps=%zu samples=%zu seed=%llu sites=%zu constraints=%zu "
            "faults=%zu topologies=%zu unresolved=%.4f members=%zu ac=%zu ac_fallbacks=%zu load=%.3fs forecast=%.3fs study=%.3fs write=%.3fs write_stream=%.3fs total=%.3fs\n",
            (long long)r->run_id, o->zone, o->kind == ENGINE_DAY_AHEAD ? "day_ahead" : "real_time", r->sp_count,
            r->samples, (unsigned long long)r->seed, r->sites, r->constraints, r->faults, r->topologies,
            r->unresolved_share, r->members, r->ac_samples, r->ac_fallbacks, r->t_load, r->t_forecast, r->t_study, r->t_write, r->t_write_stream, r->t_total);
    if (r->voltage_constraints)
        fprintf(stderr, "pcf-forecaster: run=%lld voltage_constraints=%zu voltage=%.3fs voltage_fallbacks=%zu\n",
                (long long)r->run_id, r->voltage_constraints, r->t_voltage, r->voltage_fallbacks);
}

/* The software version a run records: the build, and the OpenBLAS kernels
 * (a flow's last bits depend on them, so a run is reproduced with the
 * same; blas_core.h). */
static const char *s_version(void)
{
    static char v[128];
    if (!v[0]) snprintf(v, sizeof v, "%s OpenBLAS-%s", PCF_VERSION, blas_core_name());
    return v;
}

static int s_opts(const cli *a, engine_opts *o, anm_options *anm)
{
    memset(o, 0, sizeof *o);
    anm_options_default(anm);
    anm->use_release = a->use_release;
    o->zone = a->zone;
    o->samples = a->samples;
    o->seed = a->seed;
    o->threads = a->threads;
    o->anm = anm;
    o->ac = a->ac;
    o->ac_band = a->ac_band;
    o->version = s_version();
    if (!a->zone) {
        fprintf(stderr, "pcf-forecaster: --zone is required\n");
        return 0;
    }
    if (a->date && !a->real_time) {
        o->kind = ENGINE_DAY_AHEAD;
        if (!s_date(a->date, &o->year, &o->month, &o->day)) {
            fprintf(stderr, "pcf-forecaster: --day-ahead: '%s' is not a date YYYY-MM-DD\n", a->date);
            return 0;
        }
    } else if (a->real_time && !a->date) {
        o->kind = ENGINE_REAL_TIME;
        o->rt_periods = a->periods;
        if (a->at) {
            int64_t t;
            if (sptime_parse_utc(a->at, strlen(a->at), &t) != PCF_OK) {
                fprintf(stderr, "pcf-forecaster: --at: '%s' is not an ISO 8601 time with offset\n", a->at);
                return 0;
            }
            o->anchor = t;
        }
    } else {
        fprintf(stderr, "pcf-forecaster: give exactly one of --day-ahead DATE and --real-time\n");
        return 0;
    }
    return 1;
}

static int s_run(PGconn *c, const cli *a)
{
    engine_opts o;
    anm_options anm;
    if (!s_opts(a, &o, &anm)) return 2;
    engine_report rep;
    pcf_error err;
    if (engine_run(c, &o, &rep, &err) != PCF_OK) {
        fprintf(stderr, "pcf-forecaster: zone %s: %s\n", o.zone, err.msg);
        return 1;
    }
    s_log_run(&o, &rep);
    printf("%lld\n", (long long)rep.run_id);
    return 0;
}

static int s_queue(PGconn *c, const cli *a)
{
    engine_opts o;
    anm_options anm;
    if (!s_opts(a, &o, &anm)) return 2;
    pcf_error err;
    long long job = 0;
    if (runq_request(c, &o, &job, &err) != PCF_OK) {
        fprintf(stderr, "pcf-forecaster: %s\n", err.msg);
        return 1;
    }
    printf("%lld\n", job);
    return 0;
}

static volatile sig_atomic_t s_stop;
static void s_on_signal(int sig) { (void)sig; s_stop = 1; }

static int s_daemon(const cli *a)
{
    runq_daemon_opts d;
    memset(&d, 0, sizeof d);
    d.conninfo = a->db;
    d.zones = a->zones;
    d.day_ahead_at = a->da_at ? a->da_at : "10:00";
    d.debounce_ms = a->debounce_ms >= 0 ? a->debounce_ms : 2000;   /* 0 is a valid choice */
    d.name = a->name;
    d.samples = a->samples;
    d.threads = a->threads;
    d.use_release = a->use_release;
    d.ac = a->ac;
    d.ac_band = a->ac_band;
    d.version = s_version();
    d.stale_s = a->stale_s;
    d.stop = &s_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pcf_error err;
    /* a taken metrics port is logged, not fatal: runs matter more than
     * their figures */
    metrics *m = a->metrics_port > 0 ? metrics_new() : NULL;
    metrics_http *http = NULL;
    if (m) {
        metrics_add_process(m);
        http = metrics_http_start(m, a->metrics_address, a->metrics_port, &err);
        if (http)
            pcf_log(PCF_LOG_INFO, "serving metrics", "address", a->metrics_address ? a->metrics_address : "127.0.0.1",
                    "port", PCF_LOG_I(metrics_http_port(http)), NULL);
        else
            pcf_log_error(PCF_LOG_ERROR, "cannot serve metrics; running without", &err, NULL);
    }
    d.metrics = m;
    pcf_rc rc = runq_daemon(&d, &err);
    metrics_http_stop(&http);
    metrics_destroy(&m);
    if (rc != PCF_OK) {
        pcf_log_error(PCF_LOG_ERROR, "daemon failed", &err, NULL);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    blas_core_ensure(argv);     /* may execute the program again, at once */
    cli a;
    memset(&a, 0, sizeof a);
    a.db = getenv("PCF_DB");
    a.debounce_ms = -1;
    a.metrics_port = 9465;
    pcf_log_init("forecaster");
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' }, { "zone", required_argument, NULL, 'z' },
        { "day-ahead", required_argument, NULL, 'D' }, { "real-time", no_argument, NULL, 'R' },
        { "periods", required_argument, NULL, 'p' }, { "at", required_argument, NULL, 'a' },
        { "samples", required_argument, NULL, 'n' }, { "seed", required_argument, NULL, 's' },
        { "threads", required_argument, NULL, 't' }, { "use-release", no_argument, NULL, 'r' },
        { "zones", required_argument, NULL, 'Z' }, { "day-ahead-at", required_argument, NULL, 'A' },
        { "debounce-ms", required_argument, NULL, 'b' }, { "name", required_argument, NULL, 'N' },
        { "stale-s", required_argument, NULL, 'S' }, { "metrics-port", required_argument, NULL, 'P' },
        { "metrics-address", required_argument, NULL, 'M' }, { "log-level", required_argument, NULL, 'L' },
        { "ac-band", required_argument, NULL, 'B' }, { "ac", required_argument, NULL, 'C' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int ch;
    long v;
    /* The study parallelises over samples itself; OpenBLAS's own threads
     * would only spin between the per-SP matrix products and steal cores. */
    openblas_set_num_threads(1);
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': a.db = optarg; break;
        case 'z': a.zone = optarg; break;
        case 'D': a.date = optarg; break;
        case 'R': a.real_time = 1; break;
        case 'p': if (!s_num("--periods", optarg, 1, ENGINE_MAX_RT_PERIODS, &v)) return 2; a.periods = (int)v; break;
        case 'a': a.at = optarg; break;
        case 'n': if (!s_num("--samples", optarg, 20, 10000000, &v)) return 2; a.samples = (size_t)v; break;
        case 's': if (!s_num("--seed", optarg, 1, 0x7fffffffffffffffL, &v)) return 2; a.seed = (uint64_t)v; break;
        case 't': if (!s_num("--threads", optarg, 1, 64, &v)) return 2; a.threads = (int)v; break;
        case 'r': a.use_release = 1; break;
        case 'Z': a.zones = optarg; break;
        case 'A': a.da_at = optarg; break;
        case 'b': if (!s_num("--debounce-ms", optarg, 0, 3600000, &v)) return 2; a.debounce_ms = v; break;
        case 'N': a.name = optarg; break;
        case 'S': if (!s_num("--stale-s", optarg, 3, 86400, &v)) return 2; a.stale_s = (int)v; break;
        case 'P': if (!s_num("--metrics-port", optarg, 0, 65535, &v)) return 2; a.metrics_port = (int)v; break;
        case 'M': a.metrics_address = optarg; break;
        case 'L':
            if (pcf_log_set_level_name(optarg) != 0) {
                fprintf(stderr, "pcf-forecaster: --log-level: '%s' is not debug, info, warn or error\n", optarg);
                return 2;
            }
            break;
        case 'B':
            if (parse_double(optarg, strlen(optarg), &a.ac_band) != PCF_OK || !(a.ac_band >= 0 && a.ac_band <= 100)) {
                fprintf(stderr, "pcf-forecaster: --ac-band: '%s' is not a percentage 0..100\n", optarg);
                return 2;
            }
            a.ac = STUDY_AC_BAND;
            a.ac_band /= 100;
            break;
        case 'C':
            if (strcmp(optarg, "all") != 0 && strcmp(optarg, "off") != 0 && strcmp(optarg, "screened") != 0) {
                fprintf(stderr, "pcf-forecaster: --ac: '%s' is not 'screened', 'all' or 'off'\n", optarg);
                return 2;
            }
            a.ac = strcmp(optarg, "all") == 0 ? STUDY_AC_ALL : strcmp(optarg, "off") == 0 ? STUDY_AC_OFF : STUDY_AC_SCREEN;
            a.ac_band = 0;
            break;
        case 'h': fputs(s_usage, stdout); return 0;
        default: fputs(s_usage, stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        fputs(s_usage, stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    if (strcmp(cmd, "version") == 0) {
        /* which OpenBLAS kernels run the flow products, and the threads
         * OpenBLAS started (blas_core.h) */
        printf("pcf-forecaster %s (OpenBLAS kernels: %s, threads: %d)\n", PCF_VERSION, blas_core_name(),
               blas_core_threads());
        return 0;
    }
    if (strcmp(cmd, "daemon") == 0) return s_daemon(&a);
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "queue") != 0) {
        fprintf(stderr, "pcf-forecaster: unknown command '%s'\n%s", cmd, s_usage);
        return 2;
    }
    pcf_error err;
    PGconn *c = db_connect(a.db, &err);
    if (!c) {
        fprintf(stderr, "pcf-forecaster: %s\n", err.msg);
        return 1;
    }
    int rc = strcmp(cmd, "run") == 0 ? s_run(c, &a) : s_queue(c, &a);
    PQfinish(c);
    return rc;
}
