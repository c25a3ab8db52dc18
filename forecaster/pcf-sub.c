/*
 * pcf-sub -- command-line client of the publisher.
 *
 *   pcf-sub [OPTIONS] [PREFIX...]       follow the feeds (recovering gaps)
 *   pcf-sub [OPTIONS] statement --zone Z --date YYYY-MM-DD [--run-id N] [--pcf] [--blocks]
 *   pcf-sub [OPTIONS] trade --zone Z --date YYYY-MM-DD --change SITE:+MW --change SITE:-MW
 *           [--sp A[-B]] [--kind mec|mic|swap|boa] [--confidence C] [--id TRADE_ID]
 *
 * Output formats: table (aligned, for people), csv (one line per row, with
 * a header line per kind of row), json (one object per message, every field
 * by its proto name, from the protobuf-c descriptors, so new fields appear
 * without a change here).  Gap recovery is subscriber.c's; counters go to
 * stderr at exit.  A trade check is answered by the engine inside the
 * publisher (trade.h); it can take a few seconds, so its request timeout is
 * 60 s.
 * Exit status: 0 done, 1 failure or error reply, 2 usage.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "publish_auth.h"
#include "sptime.h"
#include "subscriber.h"

static const char s_usage[] =
    "usage: pcf-sub [OPTIONS] [PREFIX...]\n"
    "       pcf-sub [OPTIONS] statement --zone Z --date YYYY-MM-DD [--run-id N] [--pcf] [--blocks]\n"
    "       pcf-sub [OPTIONS] trade --zone Z --date YYYY-MM-DD --change SITE:+MW --change SITE:-MW\n"
    "               [--sp A[-B]] [--kind mec|mic|swap|boa] [--confidence C] [--id TRADE_ID]\n"
    "\n"
    "  --pub ENDPOINT       publisher's PUB socket (default tcp://127.0.0.1:5556)\n"
    "  --router ENDPOINT    publisher's ROUTER socket (default tcp://127.0.0.1:5557)\n"
    "  --server-key FILE    the publisher's public key file: turns CurveZMQ on\n"
    "  --key FILE           this client's key pair (pcf-keygen), required with --server-key\n"
    "  --format F           table (default), csv or json\n"
    "  --count N            exit after N feed messages (heartbeats not counted)\n"
    "  --timeout-ms N       exit when nothing arrives for N ms (default: never)\n"
    "  --heartbeats         also print heartbeats\n"
    "\n"
    "PREFIX: topic prefixes, e.g. pcf.da.  cs.demo  (default: everything).\n";

enum { F_TABLE, F_CSV, F_JSON };

typedef struct app {
    int format;
    long count, timeout_ms;
    int heartbeats;
    long seen;
    int header_done[4];
} app;

static atomic_int s_stop;
static void s_on_signal(int sig) { (void)sig; atomic_store(&s_stop, 1); }

/* ---- JSON from descriptors ----------------------------------------------------- */

static json_t *s_json_msg(const ProtobufCMessage *m);

static json_t *s_json_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return json_integer((json_int_t) * (const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT: return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, *(const int *)p);
        return ev ? json_string(ev->name) : json_integer(*(const int *)p);
    }
    case PROTOBUF_C_TYPE_STRING: return json_string(*(char *const *)p ? *(char *const *)p : "");
    case PROTOBUF_C_TYPE_BYTES: return json_integer((json_int_t)((const ProtobufCBinaryData *)p)->len);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? s_json_msg(sub) : json_null();
    }
    }
    return json_null();
}

static size_t s_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    default: return 4;
    }
}

static json_t *s_json_msg(const ProtobufCMessage *m)
{
    json_t *o = json_object();
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)base;
            json_t *a = json_array();
            for (size_t k = 0; k < n; k++) json_array_append_new(a, s_json_value(f, arr + k * s_size(f)));
            json_object_set_new(o, f->name, a);
        } else {
            json_object_set_new(o, f->name, s_json_value(f, base));
        }
    }
    return o;
}

/* ---- rows as table / CSV -------------------------------------------------------- */

static void s_time(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%MZ", &tm);
}

static void s_pcf_rows(app *a, const char *topic, const Pcf__V1__Header *h, size_t n, Pcf__V1__Pcf **rows)
{
    if (a->format == F_CSV && !a->header_done[0]++)
        puts("topic,sequence,run_id,site_id,lifo_position,sp,sp_start,p_curtailed,expected_curtailed_mwh,"
             "deliverable_p10_mw,deliverable_p50_mw,deliverable_p90_mw,firm_equivalent_mw,export_capacity_mw");
    for (size_t i = 0; i < n; i++) {
        const Pcf__V1__Pcf *r = rows[i];
        char t[32];
        s_time(r->sp_start_ms, t, sizeof t);
        if (a->format == F_CSV)
            printf("%s,%llu,%lld,%s,%u,%u,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", topic,
                   (unsigned long long)h->sequence, (long long)h->run_id, r->site_id, r->lifo_position, r->sp, t,
                   r->p_curtailed, r->expected_curtailed_mwh, r->deliverable_p10_mw, r->deliverable_p50_mw,
                   r->deliverable_p90_mw, r->firm_equivalent_mw, r->export_capacity_mw);
        else
            printf("  %-12s lifo %2u  SP %2u %s  P(curt) %6.4f  E[curt] %8.4f MWh  p10/50/90 %8.3f %8.3f %8.3f MW"
                   "  firm %8.3f MW\n",
                   r->site_id, r->lifo_position, r->sp, t, r->p_curtailed, r->expected_curtailed_mwh,
                   r->deliverable_p10_mw, r->deliverable_p50_mw, r->deliverable_p90_mw, r->firm_equivalent_mw);
    }
}

/* The quantile at `level` and its SE (0, 0 when not sent). */
static double s_q(Pcf__V1__Quantile **q, size_t n, double level, double *se)
{
    for (size_t i = 0; i < n; i++)
        if (q[i]->probability == level) {
            if (se) *se = q[i]->mw_se;
            return q[i]->mw;
        }
    if (se) *se = 0;
    return 0;
}

/* The unit of a statement's or block's flows: a voltage constraint's are kV
 * of deviation from nominal (protocol.md); older publishers send none (MW). */
static const char *s_unit(Pcf__V1__FlowUnit u)
{
    return u == PCF__V1__FLOW_UNIT__FLOW_UNIT_KV ? "kV" : "MW";
}

static void s_cs_rows(app *a, const char *topic, const Pcf__V1__Header *h, size_t n, Pcf__V1__ConstraintStatement **v)
{
    if (a->format == F_CSV && !a->header_done[1]++)
        puts("topic,sequence,run_id,constraint_id,sp,sp_start,limit_mw,flow_intact_p50_mw,flow_intact_p90_mw,"
             "p_anm_acts,expected_curtailment_mwh,binding_fault_id,sites,post_fault_limit_mw,"
             "flow_intact_p90_mw_se,p_anm_acts_se,expected_curtailment_mwh_se,p_binding_fault,p_binding_fault_se,"
             "unit,lower_limit,vmax_pu,vmin_pu,monitored_bus");
    for (size_t i = 0; i < n; i++) {
        const Pcf__V1__ConstraintStatement *s = v[i];
        char t[32];
        s_time(s->sp_start_ms, t, sizeof t);
        double p90_se;
        double p50 = s_q(s->flow_intact, s->n_flow_intact, 0.5, NULL);
        double p90 = s_q(s->flow_intact, s->n_flow_intact, 0.9, &p90_se);
        if (a->format == F_CSV)
            printf("%s,%llu,%lld,%s,%u,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%zu,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%.6g,%.6g,"
                   "%.6g,%lld\n", topic,
                   (unsigned long long)h->sequence, (long long)h->run_id, s->constraint_id, s->sp, t, s->limit_mw,
                   p50, p90, s->p_anm_acts, s->expected_curtailment_mwh, s->binding_fault_id, s->n_sites,
                   s->post_fault_limit_mw, p90_se, s->p_anm_acts_se, s->expected_curtailment_mwh_se,
                   s->p_binding_fault, s->p_binding_fault_se, s_unit(s->unit), s->lower_limit, s->vmax_pu, s->vmin_pu,
                   (long long)s->monitored_bus);
        else if (s->unit == PCF__V1__FLOW_UNIT__FLOW_UNIT_KV)
            printf("  %-10s SP %2u %s  voltage at bus %lld: limits +%.3f/-%.3f kV (%.3f..%.3f p.u. of %g kV)"
                   "  deviation p50/p90 %+8.3f %+8.3f (±%.3f) kV  P(ANM) %6.4f ±%.4f  E[curt] %8.4f MWh  sites %zu\n",
                   s->constraint_id, s->sp, t, (long long)s->monitored_bus, s->limit_mw, s->lower_limit, s->vmin_pu,
                   s->vmax_pu, s->voltage_kv, p50, p90, p90_se, s->p_anm_acts, s->p_anm_acts_se,
                   s->expected_curtailment_mwh, s->n_sites);
        else
            printf("  %-10s SP %2u %s  limit %8.2f (post-fault %8.2f) MW  flow p50/p90 %8.2f %8.2f (±%.2f) MW"
                   "  P(ANM) %6.4f ±%.4f  E[curt] %8.4f MWh  fault %s P %6.4f  sites %zu\n",
                   s->constraint_id, s->sp, t, s->limit_mw, s->post_fault_limit_mw, p50, p90, p90_se, s->p_anm_acts,
                   s->p_anm_acts_se, s->expected_curtailment_mwh, s->binding_fault_id[0] ? s->binding_fault_id : "-",
                   s->p_binding_fault, s->n_sites);
    }
}

static void s_cb_rows(app *a, const char *topic, const Pcf__V1__Header *h, size_t n, Pcf__V1__ConstraintBlock **v)
{
    if (a->format == F_CSV && !a->header_done[2]++)
        puts("topic,sequence,run_id,block_id,sp,limit_mw,confidence,headroom_mw,curtailment_mw,curtailment_mwh,"
             "headroom_mw_se,curtailment_mw_se,curtailment_mwh_se,unit");
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < v[i]->n_levels; k++) {
            const Pcf__V1__BlockLevel *l = v[i]->levels[k];
            if (a->format == F_CSV)
                printf("%s,%llu,%lld,%s,%u,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%s\n", topic,
                       (unsigned long long)h->sequence, (long long)h->run_id, v[i]->block_id, v[i]->sp, v[i]->limit_mw,
                       l->confidence, l->headroom_mw, l->curtailment_mw, l->curtailment_mwh, l->headroom_mw_se,
                       l->curtailment_mw_se, l->curtailment_mwh_se, s_unit(v[i]->unit));
            else
                printf("  %-28s conf %4.2f  headroom %8.3f ±%.3f %s  curtailment %8.3f ±%.3f MW %8.4f MWh\n",
                       v[i]->block_id, l->confidence, l->headroom_mw, l->headroom_mw_se, s_unit(v[i]->unit),
                       l->curtailment_mw, l->curtailment_mw_se, l->curtailment_mwh);
        }
}

static const ProtobufCMessageDescriptor *s_desc(const char *topic)
{
    if (strncmp(topic, "pcf.", 4) == 0) return &pcf__v1__pcf_batch__descriptor;
    if (strncmp(topic, "cs.", 3) == 0) return &pcf__v1__constraint_statement_batch__descriptor;
    if (strncmp(topic, "cb.", 3) == 0) return &pcf__v1__constraint_block_batch__descriptor;
    if (strcmp(topic, "hb") == 0) return &pcf__v1__heartbeat__descriptor;
    return NULL;
}

static void s_on_msg(void *ctx, const subscriber_msg *m)
{
    app *a = ctx;
    int hb = strcmp(m->topic, "hb") == 0;
    if (hb && !a->heartbeats) return;
    const ProtobufCMessageDescriptor *d = s_desc(m->topic);
    ProtobufCMessage *msg = d ? protobuf_c_message_unpack(d, NULL, m->len, m->body) : NULL;
    if (!msg) {
        fprintf(stderr, "pcf-sub: %s: message does not decode, dropped\n", m->topic);
        return;
    }
    if (!hb) a->seen++;
    if (a->format == F_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", json_string(m->topic));
        json_object_set_new(o, "from_snapshot", json_boolean(m->from_snapshot));
        json_object_set_new(o, "message", s_json_msg(msg));
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (s) puts(s);
        free(s);
        json_decref(o);
    } else if (hb) {
        const Pcf__V1__Heartbeat *h = (const Pcf__V1__Heartbeat *)msg;
        if (a->format == F_TABLE)
            printf("hb seq %llu  uptime %lld ms  %zu topic(s)\n", (unsigned long long)h->header->sequence,
                   (long long)h->uptime_ms, h->n_topics);
    } else {
        const Pcf__V1__Header *h = m->header;
        if (a->format == F_TABLE)
            printf("%s  seq %llu  run %lld  part %u/%u%s\n", m->topic, (unsigned long long)h->sequence,
                   (long long)h->run_id, m->part, m->part_count, m->from_snapshot ? "  (snapshot)" : "");
        if (d == &pcf__v1__pcf_batch__descriptor) {
            const Pcf__V1__PcfBatch *b = (const Pcf__V1__PcfBatch *)msg;
            s_pcf_rows(a, m->topic, h, b->n_rows, b->rows);
        } else if (d == &pcf__v1__constraint_statement_batch__descriptor) {
            const Pcf__V1__ConstraintStatementBatch *b = (const Pcf__V1__ConstraintStatementBatch *)msg;
            s_cs_rows(a, m->topic, h, b->n_statements, b->statements);
        } else {
            const Pcf__V1__ConstraintBlockBatch *b = (const Pcf__V1__ConstraintBlockBatch *)msg;
            s_cb_rows(a, m->topic, h, b->n_blocks, b->blocks);
        }
    }
    fflush(stdout);
    protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- statement request ------------------------------------------------------------ */

static int s_statement(subscriber *s, app *a, int argc, char **argv)
{
    static const struct option lo[] = {{"zone", required_argument, 0, 'z'}, {"date", required_argument, 0, 'D'},
                                       {"run-id", required_argument, 0, 'R'}, {"pcf", no_argument, 0, 'P'},
                                       {"blocks", no_argument, 0, 'B'}, {0, 0, 0, 0}};
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__StatementRequest rq = PCF__V1__STATEMENT_REQUEST__INIT;
    h.schema_version = 1;
    h.request_id = (uint64_t)time(NULL);
    rq.header = &h;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        long v;
        switch (ch) {
        case 'z': rq.zone = optarg; break;
        case 'D': rq.settlement_date = optarg; break;
        case 'R':
            if (parse_long(optarg, strlen(optarg), &v) != PCF_OK || v < 0) return 2;
            rq.run_id = v;
            break;
        case 'P': rq.include_pcf = 1; break;
        case 'B': rq.include_blocks = 1; break;
        default: return 2;
        }
    }
    if (!rq.zone[0] || !rq.settlement_date[0] || optind != argc) return 2;
    char type[160];
    uint8_t *body = NULL;
    size_t len = 0;
    pcf_error err;
    if (subscriber_request(s, "pcf.v1.StatementRequest", &rq.base, type, &body, &len, &err) != PCF_OK) {
        fprintf(stderr, "pcf-sub: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (strcmp(type, "pcf.v1.StatementReply") == 0) {
        Pcf__V1__StatementReply *r = pcf__v1__statement_reply__unpack(NULL, len, body);
        if (!r) {
            fprintf(stderr, "pcf-sub: StatementReply does not decode\n");
            rc = 1;
        } else if (a->format == F_JSON) {
            json_t *o = s_json_msg(&r->base);
            char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
            if (txt) puts(txt);
            free(txt);
            json_decref(o);
        } else {
            if (a->format == F_TABLE)
                printf("statement of zone %s for %s: run %lld, %zu statements, %zu blocks, %zu PCF rows\n", r->zone,
                       r->settlement_date, (long long)r->header->run_id, r->n_statements, r->n_blocks, r->n_pcf);
            s_cs_rows(a, "statement", r->header, r->n_statements, r->statements);
            s_cb_rows(a, "statement", r->header, r->n_blocks, r->blocks);
            s_pcf_rows(a, "statement", r->header, r->n_pcf, r->pcf);
        }
        if (r) pcf__v1__statement_reply__free_unpacked(r, NULL);
    } else {
        Pcf__V1__ErrorReply *e = pcf__v1__error_reply__unpack(NULL, len, body);
        const ProtobufCEnumValue *ev =
            e ? protobuf_c_enum_descriptor_get_value(&pcf__v1__error_code__descriptor, e->code) : NULL;
        fprintf(stderr, "pcf-sub: %s: %s\n", ev ? ev->name : type, e ? e->reason : "(undecodable reply)");
        if (e) pcf__v1__error_reply__free_unpacked(e, NULL);
        rc = 1;
    }
    free(body);
    return rc;
}

/* ---- trade check ------------------------------------------------------------------- */

#define SUB_MAX_CHANGES 64

/* SITE:+MW or SITE:-MW into c (site points into arg). */
static int s_parse_change(char *arg, Pcf__V1__CapacityChange *c)
{
    char *colon = strrchr(arg, ':');
    if (!colon || colon == arg || colon[1] == '\0') return -1;
    *colon = '\0';
    double v;
    if (parse_double(colon + 1, strlen(colon + 1), &v) != PCF_OK || v == 0) return -1;
    c->site_id = arg;
    c->delta_mw = v;
    return 0;
}

static int s_trade(subscriber *s, app *a, int argc, char **argv)
{
    static const struct option lo[] = {{"zone", required_argument, 0, 'z'}, {"date", required_argument, 0, 'D'},
                                       {"change", required_argument, 0, 'c'}, {"sp", required_argument, 0, 'S'},
                                       {"kind", required_argument, 0, 'K'}, {"confidence", required_argument, 0, 'C'},
                                       {"id", required_argument, 0, 'I'}, {0, 0, 0, 0}};
    Pcf__V1__Header h = PCF__V1__HEADER__INIT;
    Pcf__V1__TradeCheckRequest rq = PCF__V1__TRADE_CHECK_REQUEST__INIT;
    Pcf__V1__CapacityChange cv[SUB_MAX_CHANGES];
    Pcf__V1__CapacityChange *cp[SUB_MAX_CHANGES];
    h.schema_version = 1;
    h.request_id = (uint64_t)time(NULL);
    rq.header = &h;
    rq.kind = PCF__V1__TRADE_KIND__TRADE_KIND_MEC;
    rq.trade_id = "pcf-sub";
    rq.first_sp = 1;
    rq.last_sp = 0;   /* 0: the whole day, found from the date below */
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        long x, y;
        char *dash;
        switch (ch) {
        case 'z': rq.zone = optarg; break;
        case 'D': rq.settlement_date = optarg; break;
        case 'I': rq.trade_id = optarg; break;
        case 'c': {
            if (rq.n_changes == SUB_MAX_CHANGES) return 2;
            Pcf__V1__CapacityChange init = PCF__V1__CAPACITY_CHANGE__INIT;
            cv[rq.n_changes] = init;
            if (s_parse_change(optarg, &cv[rq.n_changes]) != 0) return 2;
            cp[rq.n_changes] = &cv[rq.n_changes];
            rq.n_changes++;
            break;
        }
        case 'S':
            dash = strchr(optarg, '-');
            if (dash) {
                if (parse_long(optarg, (size_t)(dash - optarg), &x) != PCF_OK ||
                    parse_long(dash + 1, strlen(dash + 1), &y) != PCF_OK)
                    return 2;
            } else {
                if (parse_long(optarg, strlen(optarg), &x) != PCF_OK) return 2;
                y = x;
            }
            if (x < 1 || y < x || y > 50) return 2;
            rq.first_sp = (uint32_t)x;
            rq.last_sp = (uint32_t)y;
            break;
        case 'K':
            if (strcmp(optarg, "mec") == 0) rq.kind = PCF__V1__TRADE_KIND__TRADE_KIND_MEC;
            else if (strcmp(optarg, "mic") == 0) rq.kind = PCF__V1__TRADE_KIND__TRADE_KIND_MIC;
            else if (strcmp(optarg, "swap") == 0) rq.kind = PCF__V1__TRADE_KIND__TRADE_KIND_CURTAILMENT_SWAP;
            else if (strcmp(optarg, "boa") == 0) rq.kind = PCF__V1__TRADE_KIND__TRADE_KIND_BID_OFFER_ACCEPTANCE;
            else return 2;
            break;
        case 'C':
            if (parse_double(optarg, strlen(optarg), &rq.confidence) != PCF_OK) return 2;
            break;
        default: return 2;
        }
    }
    if (!rq.zone[0] || !rq.settlement_date[0] || rq.n_changes == 0 || optind != argc) return 2;
    rq.changes = cp;
    if (rq.last_sp == 0) {
        /* the whole local day: 46, 48 or 50 SPs */
        long y, m, d;
        const char *t = rq.settlement_date;
        if (strlen(t) != 10 || parse_long(t, 4, &y) != PCF_OK || parse_long(t + 5, 2, &m) != PCF_OK ||
            parse_long(t + 8, 2, &d) != PCF_OK)
            return 2;
        int n = sptime_sp_count((int)y, (int)m, (int)d);
        if (n < 0) return 2;
        rq.last_sp = (uint32_t)n;
    }
    char type[160];
    uint8_t *body = NULL;
    size_t len = 0;
    pcf_error err;
    if (subscriber_request(s, "pcf.v1.TradeCheckRequest", &rq.base, type, &body, &len, &err) != PCF_OK) {
        fprintf(stderr, "pcf-sub: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (strcmp(type, "pcf.v1.TradeCheckReply") == 0) {
        Pcf__V1__TradeCheckReply *r = pcf__v1__trade_check_reply__unpack(NULL, len, body);
        if (!r) {
            fprintf(stderr, "pcf-sub: TradeCheckReply does not decode\n");
            rc = 1;
        } else if (a->format == F_JSON) {
            json_t *o = s_json_msg(&r->base);
            char *txt = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
            if (txt) puts(txt);
            free(txt);
            json_decref(o);
        } else {
            int pass = r->verdict == PCF__V1__TRADE_VERDICT__TRADE_VERDICT_PASS;
            if (a->format == F_TABLE) {
                printf("trade %s: %s; requested %.3f MW, accepted %.3f MW\n%s\n", r->trade_id, pass ? "PASS" : "FAIL",
                       r->requested_volume_mw, r->accepted_volume_mw, r->reason);
                printf("%-16s %4s %-17s %-4s %12s %12s %12s %12s %8s %8s  %s\n", "constraint", "sp", "sp_start", "ok",
                       "margin_bef", "margin_aft", "flow_chg", "accepted", "p_bef", "p_aft", "binding");
            } else {
                puts("kind,constraint_id,sp,sp_start,verdict,margin_before_mw,margin_after_mw,flow_change_mw,"
                     "accepted_volume_mw,p_anm_acts_before,p_anm_acts_after,binding_fault_id");
            }
            for (size_t i = 0; i < r->n_checks; i++) {
                const Pcf__V1__ConstraintCheck *c = r->checks[i];
                char t[32];
                s_time(c->sp_start_ms, t, sizeof t);
                int ok = c->verdict == PCF__V1__TRADE_VERDICT__TRADE_VERDICT_PASS;
                if (a->format == F_TABLE)
                    printf("%-16s %4u %-17s %-4s %12.3f %12.3f %12.3f %12.3f %8.4f %8.4f  %s\n", c->constraint_id, c->sp,
                           t, ok ? "pass" : "FAIL", c->margin_before_mw, c->margin_after_mw, c->flow_change_mw,
                           c->accepted_volume_mw, c->p_anm_acts_before, c->p_anm_acts_after,
                           c->binding_fault_id[0] ? c->binding_fault_id : "intact");
                else
                    printf("check,%s,%u,%s,%s,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%s\n", c->constraint_id, c->sp, t,
                           ok ? "pass" : "fail", c->margin_before_mw, c->margin_after_mw, c->flow_change_mw,
                           c->accepted_volume_mw, c->p_anm_acts_before, c->p_anm_acts_after, c->binding_fault_id);
            }
            for (size_t i = 0; i < r->n_volumes; i++)
                printf(a->format == F_TABLE ? "site %s: requested %+.3f MW, adjusted %+.3f MW\n"
                                            : "volume,%s,%.6f,%.6f\n",
                       r->volumes[i]->site_id, r->volumes[i]->requested_delta_mw, r->volumes[i]->adjusted_delta_mw);
        }
        if (r) pcf__v1__trade_check_reply__free_unpacked(r, NULL);
    } else {
        Pcf__V1__ErrorReply *e = pcf__v1__error_reply__unpack(NULL, len, body);
        const ProtobufCEnumValue *ev =
            e ? protobuf_c_enum_descriptor_get_value(&pcf__v1__error_code__descriptor, e->code) : NULL;
        fprintf(stderr, "pcf-sub: %s: %s\n", ev ? ev->name : type, e ? e->reason : "(undecodable reply)");
        if (e) pcf__v1__error_reply__free_unpacked(e, NULL);
        rc = 1;
    }
    free(body);
    return rc;
}

/* ---- main -------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"pub", required_argument, 0, 'p'},       {"router", required_argument, 0, 'r'},
        {"server-key", required_argument, 0, 's'}, {"key", required_argument, 0, 'k'},
        {"format", required_argument, 0, 'f'},    {"count", required_argument, 0, 'n'},
        {"timeout-ms", required_argument, 0, 't'}, {"heartbeats", no_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    app a;
    memset(&a, 0, sizeof a);
    a.timeout_ms = -1;
    const char *pub = NULL, *router = NULL, *skey = NULL, *ckey = NULL;
    int ch, bad = 0;
    /* "+": stop at the first positional argument (a prefix or "statement"). */
    while ((ch = getopt_long(argc, argv, "+h", lo, NULL)) != -1) {
        switch (ch) {
        case 'p': pub = optarg; break;
        case 'r': router = optarg; break;
        case 's': skey = optarg; break;
        case 'k': ckey = optarg; break;
        case 'f':
            if (strcmp(optarg, "table") == 0) a.format = F_TABLE;
            else if (strcmp(optarg, "csv") == 0) a.format = F_CSV;
            else if (strcmp(optarg, "json") == 0) a.format = F_JSON;
            else bad = 1;
            break;
        case 'n': bad |= parse_long(optarg, strlen(optarg), &a.count) != PCF_OK || a.count < 1; break;
        case 't': bad |= parse_long(optarg, strlen(optarg), &a.timeout_ms) != PCF_OK || a.timeout_ms < 1; break;
        case 'H': a.heartbeats = 1; break;
        case 'h': fputs(s_usage, stdout); return 0;
        default: bad = 1;
        }
    }
    if (bad || (skey && !ckey)) {
        fputs(s_usage, stderr);
        return 2;
    }
    char server_pub[41] = "", my_pub[41] = "", my_sec[41] = "";
    pcf_error err;
    if (skey && (publish_auth_load_key(skey, server_pub, NULL, &err) != PCF_OK ||
                 publish_auth_load_key(ckey, my_pub, my_sec, &err) != PCF_OK)) {
        fprintf(stderr, "pcf-sub: %s\n", err.msg);
        return 1;
    }
    if (skey && !my_sec[0]) {
        fprintf(stderr, "pcf-sub: %s: no secret-key line\n", ckey);
        return 1;
    }
    int trade = optind < argc && strcmp(argv[optind], "trade") == 0;
    subscriber_config cfg = {.pub_endpoint = pub, .router_endpoint = router, .server_public_key = server_pub,
                             .public_key = my_pub, .secret_key = my_sec,
                             .request_timeout_ms = trade ? 60000 : 0};
    subscriber *s = subscriber_new(&cfg, &err);
    if (!s) {
        fprintf(stderr, "pcf-sub: %s\n", err.msg);
        return 1;
    }
    int rc = 0;
    if (optind < argc && strcmp(argv[optind], "statement") == 0) {
        rc = s_statement(s, &a, argc - optind, argv + optind);
        if (rc == 2) fputs(s_usage, stderr);
        subscriber_destroy(&s);
        return rc;
    }
    if (trade) {
        rc = s_trade(s, &a, argc - optind, argv + optind);
        if (rc == 2) fputs(s_usage, stderr);
        subscriber_destroy(&s);
        return rc;
    }
    for (int i = optind; i < argc && !bad; i++)
        if (subscriber_add_prefix(s, argv[i], &err) != PCF_OK) bad = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (bad || subscriber_start(s, s_on_msg, &a, &err) != PCF_OK) {
        fprintf(stderr, "pcf-sub: %s\n", err.msg);
        subscriber_destroy(&s);
        return 1;
    }
    struct timespec last;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (!atomic_load(&s_stop) && (a.count == 0 || a.seen < a.count)) {
        long before = a.seen;
        pcf_rc prc = subscriber_poll(s, 100, s_on_msg, &a, &err);
        if (prc == PCF_ERR_NET) {
            /* publisher unreachable during a resync: keep trying, as protocol section 5 says */
            fprintf(stderr, "pcf-sub: %s; retrying\n", err.msg);
        } else if (prc != PCF_OK) {
            fprintf(stderr, "pcf-sub: %s\n", err.msg);
            rc = 1;
            break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (a.seen != before) last = now;
        long idle = (now.tv_sec - last.tv_sec) * 1000 + (now.tv_nsec - last.tv_nsec) / 1000000;
        if (a.timeout_ms > 0 && idle >= a.timeout_ms) break;
    }
    subscriber_stats st;
    subscriber_get_stats(s, &st);
    fprintf(stderr,
            "pcf-sub: %llu delivered, %llu gap(s), %llu recover(ies), %llu duplicate(s), %llu malformed, %llu skipped\n",
            (unsigned long long)st.delivered, (unsigned long long)st.gaps, (unsigned long long)st.recoveries,
            (unsigned long long)st.duplicates, (unsigned long long)st.malformed, (unsigned long long)st.skipped);
    subscriber_destroy(&s);
    return rc;
}
