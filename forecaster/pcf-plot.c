/*
 * pcf-plot -- draws a run's pictures from PostgreSQL: the PCF heatmap (sites
 * in LIFO order by settlement period) and one constraint's flow quantiles
 * against its limit.  A thin reader over plot.c.
 *
 *   pcf-plot [--db CONNINFO] --zone Z [--run ID] [--constraint C] --out DIR
 *
 * Without --run: the zone's latest day-ahead run (else its latest run).
 * Without --constraint: the one with the most expected curtailment (ties:
 * the most likely to act, then the first by id).  Prints the files written.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "db.h"
#include "parse.h"
#include "plot.h"

static int s_fail(const char *what, const pcf_error *e)
{
    fprintf(stderr, "pcf-plot: %s: %s\n", what, e->msg);
    return 1;
}

static double s_num(PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return NAN;
    const char *v = PQgetvalue(r, row, col);
    double d;
    return parse_double_ext(v, strlen(v), &d) == PCF_OK ? d : NAN;
}

static int s_heatmap(PGconn *c, const char *zone, const char *run, const char *label, const char *dir)
{
    pcf_error err;
    const char *p[1] = { run };
    PGresult *sp = db_query(c, "SELECT DISTINCT sp, sp_start FROM pcf_result WHERE run_id = $1::bigint ORDER BY sp_start",
                            1, p, &err);
    if (!sp) return s_fail("reading periods", &err);
    /* sites: newest in the queue at the top (curtailed first), firm last */
    PGresult *st = db_query(c,
        "SELECT s.site_id, coalesce(max(e.lifo_position)::text, 'firm'), bool_and(e.firm)"
        "  FROM der_site s JOIN pcf_result r ON r.site_id = s.site_id AND r.run_id = $1::bigint"
        "  LEFT JOIN der_enquiry e ON e.site_id = s.site_id AND e.status IN ('connected', 'accepted')"
        " GROUP BY s.site_id ORDER BY bool_and(coalesce(e.firm, true)), max(e.lifo_position) DESC NULLS LAST, s.site_id",
        1, p, &err);
    PGresult *v = st ? db_query(c, "SELECT site_id, sp_start, p_curtailed FROM pcf_result WHERE run_id = $1::bigint",
                                1, p, &err) : NULL;
    if (!st || !v) {
        PQclear(sp);
        PQclear(st);
        return s_fail("reading PCF", &err);
    }
    size_t nsp = (size_t)PQntuples(sp), ns = (size_t)PQntuples(st);
    int *spn = calloc(nsp + 1, sizeof(int));
    double *val = malloc((ns * nsp + 1) * sizeof(double));
    char **lab = calloc(ns + 1, sizeof(char *));
    int rc = 0;
    if (!spn || !val || !lab) {
        fprintf(stderr, "pcf-plot: out of memory\n");
        rc = 1;
    }
    for (size_t k = 0; !rc && k < nsp; k++) {
        long n = 0;
        parse_long(PQgetvalue(sp, (int)k, 0), strlen(PQgetvalue(sp, (int)k, 0)), &n);
        spn[k] = (int)n;
    }
    for (size_t i = 0; !rc && i < ns * nsp; i++) val[i] = NAN;
    for (size_t s = 0; !rc && s < ns; s++) {
        char buf[160];
        snprintf(buf, sizeof buf, "%s (%s%s)", PQgetvalue(st, (int)s, 0),
                 strcmp(PQgetvalue(st, (int)s, 1), "firm") == 0 ? "" : "LIFO ", PQgetvalue(st, (int)s, 1));
        lab[s] = strdup(buf);
    }
    for (int i = 0; !rc && i < PQntuples(v); i++) {
        size_t s, k;
        for (s = 0; s < ns && strcmp(PQgetvalue(st, (int)s, 0), PQgetvalue(v, i, 0)) != 0; s++) {}
        for (k = 0; k < nsp && strcmp(PQgetvalue(sp, (int)k, 1), PQgetvalue(v, i, 1)) != 0; k++) {}
        if (s < ns && k < nsp) val[s * nsp + k] = s_num(v, i, 2);
    }
    if (!rc) {
        char title[256], path[1024];
        snprintf(title, sizeof title, "P(curtailed) by site and settlement period -- zone %s, run %s%s", zone, run, label);
        snprintf(path, sizeof path, "%s/pcf_heatmap_%s_run%s.png", dir, zone, run);
        plot_heatmap h = { title, ns, nsp, (const char *const *)lab, spn, val };
        if (plot_heatmap_png(&h, path, &err) != PCF_OK) rc = s_fail("heatmap", &err);
        else printf("%s\n", path);
    }
    for (size_t s = 0; lab && s < ns; s++) free(lab[s]);
    free(lab);
    free(spn);
    free(val);
    PQclear(sp);
    PQclear(st);
    PQclear(v);
    return rc;
}

static int s_chart(PGconn *c, const char *zone, const char *run, const char *constraint, const char *dir)
{
    pcf_error err;
    char cid[80];
    if (constraint) snprintf(cid, sizeof cid, "%s", constraint);
    else {
        const char *p[1] = { run };
        PGresult *r = db_query(c, "SELECT constraint_id FROM constraint_statement WHERE run_id = $1::bigint"
                                  " GROUP BY constraint_id ORDER BY sum(expected_curtailment_mwh) DESC,"
                                  " max(p_anm_acts) DESC, constraint_id LIMIT 1", 1, p, &err);
        if (!r) return s_fail("choosing a constraint", &err);
        if (PQntuples(r) == 0) {
            PQclear(r);
            fprintf(stderr, "pcf-plot: run %s has no constraint statements\n", run);
            return 1;
        }
        snprintf(cid, sizeof cid, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    const char *p[2] = { run, cid };
    PGresult *r = db_query(c,
        "SELECT s.sp, s.flow_intact_p10_mw, s.flow_intact_p50_mw, s.flow_intact_p90_mw, s.flow_fault_p10_mw,"
        " s.flow_fault_p50_mw, s.flow_fault_p90_mw, s.limit_mw, s.p_anm_acts, c.description"
        " FROM constraint_statement s JOIN anm_constraint c USING (constraint_id)"
        " WHERE s.run_id = $1::bigint AND s.constraint_id = $2 ORDER BY s.sp_start", 2, p, &err);
    if (!r) return s_fail("reading the statement", &err);
    size_t n = (size_t)PQntuples(r);
    if (n == 0) {
        PQclear(r);
        fprintf(stderr, "pcf-plot: no statement for constraint %s in run %s\n", cid, run);
        return 1;
    }
    double *a = malloc(8 * n * sizeof(double));
    int *spn = malloc(n * sizeof(int));
    int rc = 0;
    if (!a || !spn) {
        fprintf(stderr, "pcf-plot: out of memory\n");
        rc = 1;
    }
    for (size_t k = 0; !rc && k < n; k++) {
        spn[k] = (int)s_num(r, (int)k, 0);
        for (int j = 0; j < 8; j++) a[(size_t)j * n + k] = s_num(r, (int)k, 1 + j);
    }
    if (!rc) {
        char title[512], path[1024];
        snprintf(title, sizeof title, "Constraint %s (%s): flow before ANM against its limit -- zone %s, run %s",
                 cid, PQgetvalue(r, 0, 9), zone, run);
        snprintf(path, sizeof path, "%s/constraint_%s_run%s.png", dir, cid, run);
        plot_quantiles q = { title, n, spn, a, a + n, a + 2 * n, a + 3 * n, a + 4 * n, a + 5 * n, a + 6 * n, a + 7 * n };
        if (plot_quantiles_png(&q, path, &err) != PCF_OK) rc = s_fail("chart", &err);
        else printf("%s\n", path);
    }
    free(a);
    free(spn);
    PQclear(r);
    return rc;
}

int main(int argc, char **argv)
{
    const char *db = getenv("PCF_DB"), *zone = NULL, *run = NULL, *constraint = NULL, *dir = NULL;
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' }, { "zone", required_argument, NULL, 'z' },
        { "run", required_argument, NULL, 'r' }, { "constraint", required_argument, NULL, 'c' },
        { "out", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': db = optarg; break;
        case 'z': zone = optarg; break;
        case 'r': run = optarg; break;
        case 'c': constraint = optarg; break;
        case 'o': dir = optarg; break;
        case 'h':
            printf("usage: pcf-plot [--db CONNINFO] --zone Z [--run ID] [--constraint C] --out DIR\n");
            return 0;
        default: return 2;
        }
    }
    if (!zone || !dir || optind != argc) {
        fprintf(stderr, "usage: pcf-plot [--db CONNINFO] --zone Z [--run ID] [--constraint C] --out DIR\n");
        return 2;
    }
    long check;
    if (run && (parse_long(run, strlen(run), &check) != PCF_OK || check < 1)) {
        fprintf(stderr, "pcf-plot: --run: '%s' is not a run id\n", run);
        return 2;
    }
    mkdir(dir, 0755);
    pcf_error err;
    PGconn *c = db_connect(db, &err);
    if (!c) return s_fail("connect", &err);
    char runbuf[32], label[64] = "";
    if (!run) {
        const char *p[1] = { zone };
        PGresult *r = db_query(c, "SELECT run_id, kind, coalesce(target_date::text, '') FROM run WHERE zone_id = $1"
                                  " ORDER BY (kind = 'day_ahead') DESC, run_id DESC LIMIT 1", 1, p, &err);
        if (!r || PQntuples(r) == 0) {
            if (r) pcf_error_set(&err, PCF_ERR_INVALID, "zone %s has no run", zone);
            PQclear(r);
            PQfinish(c);
            return s_fail("finding a run", &err);
        }
        snprintf(runbuf, sizeof runbuf, "%s", PQgetvalue(r, 0, 0));
        snprintf(label, sizeof label, ", %s %s", PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2));
        PQclear(r);
        run = runbuf;
    }
    int rc = s_heatmap(c, zone, run, label, dir);
    if (!rc) rc = s_chart(c, zone, run, constraint, dir);
    PQfinish(c);
    return rc;
}
