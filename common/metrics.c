/*
 * metrics.c -- the metric registry, its Prometheus text rendering, the
 * process_* collector and the /metrics HTTP endpoint; see metrics.h.
 *
 * Families are a linked list in registration order, series a linked list
 * per family in creation order, found by comparing label values: the
 * daemons have a handful of sources, topics and kinds, so a list is both
 * the simplest and the fastest structure.  Everything is under the
 * registry's mutex; rendering builds the whole text in one buffer so the
 * HTTP thread never holds the lock while writing to a socket.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { T_COUNTER, T_GAUGE, T_HISTOGRAM };
static const char *const s_type_names[] = { "counter", "gauge", "histogram" };

typedef struct series {
    char *labels[METRICS_MAX_LABELS];
    double value;                       /* counter, gauge */
    double sum;                         /* histogram */
    unsigned long long count;
    unsigned long long buckets[METRICS_MAX_BUCKETS];   /* not cumulative */
    struct series *next;
} series;

struct metric {
    metrics *reg;
    char *name, *help;
    int type;
    char *labelnames[METRICS_MAX_LABELS];
    int nlabels;
    double bounds[METRICS_MAX_BUCKETS];
    size_t nbounds;
    series *first, *last;
    struct metric *next;
};

struct metrics {
    pthread_mutex_t mu;
    pthread_mutex_t hook_mu;            /* held while hooks run: removal waits for them */
    metrics_hook_fn hook[METRICS_MAX_HOOKS];
    void *hook_ctx[METRICS_MAX_HOOKS];
    metric *first, *last;
    metric *proc_rss, *proc_vsz, *proc_cpu, *proc_start, *proc_fds, *proc_maxfds;
};

struct metrics_http {
    struct MHD_Daemon *d;
    metrics *m;
    int port;
};

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof *m);
    if (m) {
        pthread_mutex_init(&m->mu, NULL);
        pthread_mutex_init(&m->hook_mu, NULL);
    }
    return m;
}

static void s_series_free(series *s, int nlabels)
{
    for (int i = 0; i < nlabels; i++) free(s->labels[i]);
    free(s);
}

static void s_metric_free(metric *mt)
{
    for (series *s = mt->first, *n; s; s = n) {
        n = s->next;
        s_series_free(s, mt->nlabels);
    }
    for (int i = 0; i < mt->nlabels; i++) free(mt->labelnames[i]);
    free(mt->name);
    free(mt->help);
    free(mt);
}

void metrics_destroy(metrics **pm)
{
    metrics *m = pm ? *pm : NULL;
    if (!m) return;
    for (metric *mt = m->first, *n; mt; mt = n) {
        n = mt->next;
        s_metric_free(mt);
    }
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->hook_mu);
    free(m);
    *pm = NULL;
}

static int s_valid_name(const char *s, int colons)
{
    if (!s || !*s || (*s >= '0' && *s <= '9')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              (colons && *s == ':')))
            return 0;
    return 1;
}

static metric *s_register(metrics *m, const char *name, const char *help, int type, const double *bounds,
                          size_t nbounds, const char *labels)
{
    if (!m || !s_valid_name(name, 1) || nbounds > METRICS_MAX_BUCKETS) return NULL;
    metric *mt = calloc(1, sizeof *mt);
    if (!mt) return NULL;
    mt->reg = m;
    mt->type = type;
    mt->name = strdup(name);
    mt->help = strdup(help ? help : "");
    int ok = mt->name && mt->help;
    for (const char *p = labels; ok && p && *p;) {
        size_t n = strcspn(p, ",");
        char *l = strndup(p, n);
        if (!l || mt->nlabels == METRICS_MAX_LABELS || !s_valid_name(l, 0) || strcmp(l, "le") == 0) {
            free(l);
            ok = 0;
            break;
        }
        mt->labelnames[mt->nlabels++] = l;
        p += n + (p[n] == ',');
    }
    for (size_t i = 0; i < nbounds; i++) {
        mt->bounds[i] = bounds[i];
        if (i > 0 && !(bounds[i] > bounds[i - 1])) ok = 0;
    }
    mt->nbounds = nbounds;
    if (ok && mt->nlabels == 0) {
        mt->first = mt->last = calloc(1, sizeof(series));
        ok = mt->first != NULL;
    }
    pthread_mutex_lock(&m->mu);
    for (metric *o = m->first; ok && o; o = o->next)
        if (strcmp(o->name, name) == 0) ok = 0;
    if (ok) {
        if (m->last) m->last->next = mt;
        else m->first = mt;
        m->last = mt;
    }
    pthread_mutex_unlock(&m->mu);
    if (!ok) {
        s_metric_free(mt);
        return NULL;
    }
    return mt;
}

metric *metrics_counter(metrics *m, const char *name, const char *help, const char *labels)
{
    return s_register(m, name, help, T_COUNTER, NULL, 0, labels);
}

metric *metrics_gauge(metrics *m, const char *name, const char *help, const char *labels)
{
    return s_register(m, name, help, T_GAUGE, NULL, 0, labels);
}

metric *metrics_histogram(metrics *m, const char *name, const char *help, const double *bounds, size_t nbounds,
                          const char *labels)
{
    return s_register(m, name, help, T_HISTOGRAM, bounds, nbounds, labels);
}

/* The series for the label values in va; created when missing (NULL only
 * when out of memory).  Called with the lock held. */
static series *s_series(metric *mt, va_list va)
{
    const char *v[METRICS_MAX_LABELS];
    for (int i = 0; i < mt->nlabels; i++) {
        v[i] = va_arg(va, const char *);
        if (!v[i]) v[i] = "";
    }
    for (series *s = mt->first; s; s = s->next) {
        int i = 0;
        while (i < mt->nlabels && strcmp(s->labels[i], v[i]) == 0) i++;
        if (i == mt->nlabels) return s;
    }
    series *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    for (int i = 0; i < mt->nlabels; i++)
        if (!(s->labels[i] = strdup(v[i]))) {
            s_series_free(s, i);
            return NULL;
        }
    if (mt->last) mt->last->next = s;
    else mt->first = s;
    mt->last = s;
    return s;
}

enum { OP_ADD, OP_SET, OP_OBSERVE };

static void s_update(metric *mt, int op, double v, va_list va)
{
    pthread_mutex_lock(&mt->reg->mu);
    series *s = s_series(mt, va);
    if (s) {
        if (op == OP_ADD) s->value += v;
        else if (op == OP_SET) s->value = v;
        else if (mt->type == T_HISTOGRAM) {
            size_t i = 0;
            while (i < mt->nbounds && v > mt->bounds[i]) i++;
            if (i < mt->nbounds) s->buckets[i]++;
            s->sum += v;
            s->count++;
        }
    }
    pthread_mutex_unlock(&mt->reg->mu);
}

void metric_add(metric *mt, double v, ...)
{
    if (!mt || mt->type == T_HISTOGRAM) return;
    va_list va;
    va_start(va, v);
    s_update(mt, OP_ADD, v, va);
    va_end(va);
}

void metric_set(metric *mt, double v, ...)
{
    if (!mt || mt->type == T_HISTOGRAM) return;
    va_list va;
    va_start(va, v);
    s_update(mt, OP_SET, v, va);
    va_end(va);
}

void metric_observe(metric *mt, double v, ...)
{
    if (!mt || mt->type != T_HISTOGRAM) return;
    va_list va;
    va_start(va, v);
    s_update(mt, OP_OBSERVE, v, va);
    va_end(va);
}

double metric_value(metric *mt, ...)
{
    if (!mt) return 0;
    const char *v[METRICS_MAX_LABELS];
    va_list va;
    va_start(va, mt);
    for (int i = 0; i < mt->nlabels; i++) v[i] = va_arg(va, const char *);
    va_end(va);
    double out = 0;
    pthread_mutex_lock(&mt->reg->mu);
    for (series *s = mt->first; s; s = s->next) {
        int i = 0;
        while (i < mt->nlabels && strcmp(s->labels[i], v[i] ? v[i] : "") == 0) i++;
        if (i == mt->nlabels) {
            out = mt->type == T_HISTOGRAM ? (double)s->count : s->value;
            break;
        }
    }
    pthread_mutex_unlock(&mt->reg->mu);
    return out;
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct tbuf {
    char *p;
    size_t n, cap;
    int oom;
} tbuf;

static void s_put(tbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void s_puts(tbuf *b, const char *s) { s_put(b, s, strlen(s)); }

/* Escapes \ and newline, and " too in label values. */
static void s_escaped(tbuf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\') s_put(b, "\\\\", 2);
        else if (*s == '\n') s_put(b, "\\n", 2);
        else if (quote && *s == '"') s_put(b, "\\\"", 2);
        else s_put(b, s, 1);
    }
}

/* Shortest text that reads back as v. */
static void s_num(tbuf *b, double v)
{
    char t[40];
    if (isnan(v)) snprintf(t, sizeof t, "NaN");
    else if (isinf(v)) snprintf(t, sizeof t, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) snprintf(t, sizeof t, "%.0f", v);
    else
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(t, sizeof t, "%.*g", prec, v);
            if (strtod(t, NULL) == v) break;
        }
    s_puts(b, t);
}

static void s_labels(tbuf *b, const metric *mt, const series *s, const char *le)
{
    if (mt->nlabels == 0 && !le) return;
    s_put(b, "{", 1);
    for (int i = 0; i < mt->nlabels; i++) {
        if (i) s_put(b, ",", 1);
        s_puts(b, mt->labelnames[i]);
        s_put(b, "=\"", 2);
        s_escaped(b, s->labels[i], 1);
        s_put(b, "\"", 1);
    }
    if (le) {
        if (mt->nlabels) s_put(b, ",", 1);
        s_puts(b, "le=\"");
        s_puts(b, le);
        s_put(b, "\"", 1);
    }
    s_put(b, "}", 1);
}

static void s_sample(tbuf *b, const metric *mt, const char *suffix, const series *s, const char *le, double v)
{
    s_puts(b, mt->name);
    s_puts(b, suffix);
    s_labels(b, mt, s, le);
    s_put(b, " ", 1);
    s_num(b, v);
    s_put(b, "\n", 1);
}

static void s_render_metric(tbuf *b, const metric *mt)
{
    s_puts(b, "# HELP ");
    s_puts(b, mt->name);
    s_put(b, " ", 1);
    s_escaped(b, mt->help, 0);
    s_puts(b, "\n# TYPE ");
    s_puts(b, mt->name);
    s_put(b, " ", 1);
    s_puts(b, s_type_names[mt->type]);
    s_put(b, "\n", 1);
    for (const series *s = mt->first; s; s = s->next) {
        if (mt->type != T_HISTOGRAM) {
            s_sample(b, mt, "", s, NULL, s->value);
            continue;
        }
        unsigned long long cum = 0;
        for (size_t i = 0; i < mt->nbounds; i++) {
            tbuf le = { 0 };
            s_num(&le, mt->bounds[i]);
            cum += s->buckets[i];
            s_sample(b, mt, "_bucket", s, le.p ? le.p : "", (double)cum);
            free(le.p);
        }
        s_sample(b, mt, "_bucket", s, "+Inf", (double)s->count);
        s_sample(b, mt, "_sum", s, NULL, s->sum);
        s_sample(b, mt, "_count", s, NULL, (double)s->count);
    }
}

static void s_process_update(metrics *m);

int metrics_on_render(metrics *m, metrics_hook_fn fn, void *ctx)
{
    int rc = -1;
    pthread_mutex_lock(&m->hook_mu);
    for (int i = 0; i < METRICS_MAX_HOOKS && rc < 0; i++)
        if (!m->hook[i]) {
            m->hook[i] = fn;
            m->hook_ctx[i] = ctx;
            rc = 0;
        }
    pthread_mutex_unlock(&m->hook_mu);
    return rc;
}

void metrics_off_render(metrics *m, metrics_hook_fn fn, void *ctx)
{
    pthread_mutex_lock(&m->hook_mu);
    for (int i = 0; i < METRICS_MAX_HOOKS; i++)
        if (m->hook[i] == fn && m->hook_ctx[i] == ctx) m->hook[i] = NULL;
    pthread_mutex_unlock(&m->hook_mu);
}

char *metrics_render(metrics *m, size_t *len)
{
    tbuf b = { 0 };
    pthread_mutex_lock(&m->hook_mu);
    for (int i = 0; i < METRICS_MAX_HOOKS; i++)
        if (m->hook[i]) m->hook[i](m->hook_ctx[i]);
    pthread_mutex_unlock(&m->hook_mu);
    s_process_update(m);
    pthread_mutex_lock(&m->mu);
    for (const metric *mt = m->first; mt; mt = mt->next) s_render_metric(&b, mt);
    pthread_mutex_unlock(&m->mu);
    if (!b.oom && !b.p) s_put(&b, "", 0);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (len) *len = b.n;
    return b.p;
}

/* ---- process_* ------------------------------------------------------------ */

int metrics_add_process(metrics *m)
{
    m->proc_cpu = metrics_counter(m, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                  NULL);
    m->proc_start = metrics_gauge(m, "process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.", NULL);
    m->proc_rss = metrics_gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes.", NULL);
    m->proc_vsz = metrics_gauge(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL);
    m->proc_fds = metrics_gauge(m, "process_open_fds", "Number of open file descriptors.", NULL);
    m->proc_maxfds = metrics_gauge(m, "process_max_fds", "Maximum number of open file descriptors.", NULL);
    return m->proc_cpu && m->proc_start && m->proc_rss && m->proc_vsz && m->proc_fds && m->proc_maxfds ? 0 : -1;
}

static void s_process_update(metrics *m)
{
    if (!m->proc_cpu) return;
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* fields after the command name, which may hold spaces and ')' */
        const char *p = strrchr(buf, ')');
        unsigned long long v[22] = { 0 };
        for (int i = 0; p && i < 22; i++) {
            p = strchr(p, ' ');
            if (p) v[i] = strtoull(++p, NULL, 10);
        }
        /* v[i] is field i + 3 of proc(5): utime 14, stime 15, starttime 22, vsize 23, rss 24 */
        metric_set(m->proc_cpu, (double)(v[11] + v[12]) / (double)tick);
        metric_set(m->proc_vsz, (double)v[20]);
        metric_set(m->proc_rss, (double)v[21] * (double)page);
        unsigned long long btime = 0;
        FILE *s = fopen("/proc/stat", "r");
        while (s && fgets(buf, sizeof buf, s))
            if (sscanf(buf, "btime %llu", &btime) == 1) break;
        if (s) fclose(s);
        metric_set(m->proc_start, (double)btime + (double)v[19] / (double)tick);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.') n++;
        closedir(d);
        metric_set(m->proc_fds, (double)(n - 1));      /* not the directory's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) metric_set(m->proc_maxfds, (double)rl.rlim_cur);
}

/* ---- HTTP ----------------------------------------------------------------- */

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned code, const char *text)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result s_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    metrics_http *h = cls;
    if (strcmp(url, "/metrics") != 0) return s_reply(c, MHD_HTTP_NOT_FOUND, "not found; try /metrics\n");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return s_reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    size_t len;
    char *text = metrics_render(h->m, &len);
    if (!text) return s_reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

metrics_http *metrics_http_start(metrics *m, const char *address, int port, pcf_error *err)
{
    if (!address || !*address) address = "127.0.0.1";
    if (port < 0 || port > 65535) {
        pcf_error_set(err, PCF_ERR_INVALID, "metrics port %d is not in 0..65535", port);
        return NULL;
    }
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (inet_pton(AF_INET, address, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, address, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        pcf_error_set(err, PCF_ERR_INVALID, "metrics address '%s' is not an IPv4 or IPv6 address", address);
        return NULL;
    }
    metrics_http *h = calloc(1, sizeof *h);
    if (!h) {
        pcf_error_set(err, PCF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    h->m = m;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, s_handler, h, MHD_OPTION_SOCK_ADDR, sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)10, MHD_OPTION_END);
    if (!h->d) {
        free(h);
        pcf_error_set(err, PCF_ERR_NET, "metrics: cannot listen on %s port %d (in use, or not a local address?)",
                      address, port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;
}

int metrics_http_port(const metrics_http *h) { return h ? h->port : 0; }

void metrics_http_stop(metrics_http **ph)
{
    metrics_http *h = ph ? *ph : NULL;
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
    *ph = NULL;
}
