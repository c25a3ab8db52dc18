/*
 * zone.c -- see zone.h.
 *
 * One query per table, each ordered so the C side only appends: sites,
 * constraints and points come back ordered by id in byte order (COLLATE
 * "C", so strcmp-based binary search agrees with the server), machines and
 * constraint members grouped by their owner.  Every text field is length
 * checked against the schema's bounds before it is copied, every number
 * goes through parse.h, and every reference (bus label, branch idx, site id)
 * is resolved to an index here, so the engine never looks anything up by
 * name in its inner loops.
 */
#include "zone.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "netmodel.h"
#include "parse.h"
#include "sptime.h"

static const char *const s_seasons[ZONE_NSEASON] = { "winter", "spring", "summer", "autumn" };
static const char *const s_fuels[ZONE_NFUEL] = {
    "solar", "wind", "battery", "hydro", "gas", "diesel", "biomass", "chp", "other"
};

const char *zone_season_name(zone_season s)
{
    return (unsigned)s < ZONE_NSEASON ? s_seasons[s] : "?";
}

int zone_season_parse(const char *name)
{
    for (int i = 0; name && i < ZONE_NSEASON; i++)
        if (strcmp(name, s_seasons[i]) == 0) return i;
    return -1;
}

const char *zone_fuel_name(zone_fuel f)
{
    return (unsigned)f < ZONE_NFUEL ? s_fuels[f] : "?";
}

int zone_fuel_parse(const char *name)
{
    for (int i = 0; name && i < ZONE_NFUEL; i++)
        if (strcmp(name, s_fuels[i]) == 0) return i;
    return -1;
}

zone_season zone_season_of(int64_t t)
{
    sptime_civil c;
    sptime_to_local(sptime_london(), t, &c);
    switch (c.month) {
    case 3: case 4: return ZONE_SPRING;
    case 5: case 6: case 7: case 8: return ZONE_SUMMER;
    case 9: case 10: return ZONE_AUTUMN;
    default: return ZONE_WINTER;
    }
}

/* ---- reading result cells ------------------------------------------------ */

typedef struct s_reader {
    PGresult *res;
    const char *what;           /* table name for messages */
    pcf_error *err;
} s_reader;

/* Copies a text cell of at most max bytes; longer is an error unless
 * truncate (display names). */
static pcf_rc s_text(const s_reader *r, int row, int col, char *dst, size_t max, bool truncate)
{
    const char *v = PQgetvalue(r->res, row, col);
    size_t n = (size_t)PQgetlength(r->res, row, col);
    if (n > max) {
        if (!truncate)
            return pcf_error_set(r->err, PCF_ERR_LIMIT, "%s row %d: %s longer than %zu bytes", r->what,
                                 row + 1, PQfname(r->res, col), max);
        n = max;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
    return PCF_OK;
}

/* A double cell; NULL gives NAN, or an error when !nullable. */
static pcf_rc s_num(const s_reader *r, int row, int col, bool nullable, double *out)
{
    if (PQgetisnull(r->res, row, col)) {
        if (!nullable)
            return pcf_error_set(r->err, PCF_ERR_INVALID, "%s row %d: %s is NULL", r->what, row + 1,
                                 PQfname(r->res, col));
        *out = NAN;
        return PCF_OK;
    }
    const char *v = PQgetvalue(r->res, row, col);
    if (parse_double_ext(v, (size_t)PQgetlength(r->res, row, col), out) != PCF_OK)
        return pcf_error_set(r->err, PCF_ERR_PARSE, "%s row %d: %s: bad number '%.40s'", r->what, row + 1,
                             PQfname(r->res, col), v);
    return PCF_OK;
}

static pcf_rc s_long(const s_reader *r, int row, int col, long *out)
{
    const char *v = PQgetvalue(r->res, row, col);
    if (PQgetisnull(r->res, row, col) || parse_long(v, (size_t)PQgetlength(r->res, row, col), out) != PCF_OK)
        return pcf_error_set(r->err, PCF_ERR_PARSE, "%s row %d: %s: bad integer '%.40s'", r->what, row + 1,
                             PQfname(r->res, col), v);
    return PCF_OK;
}

static bool s_is(const s_reader *r, int row, int col, const char *s)
{
    return !PQgetisnull(r->res, row, col) && strcmp(PQgetvalue(r->res, row, col), s) == 0;
}

/* Runs a query with the zone id as $1. */
static PGresult *s_query(PGconn *conn, const char *sql, const char *zone_id, pcf_error *err)
{
    const char *p[1] = { zone_id };
    return db_query(conn, sql, 1, p, err);
}

/* ---- look-ups -------------------------------------------------------------- */

long zone_site_find(const zone *z, const char *site_id)
{
    size_t lo = 0, hi = z->nsite;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->site[mid].id, site_id);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

long zone_constraint_find(const zone *z, const char *constraint_id)
{
    size_t lo = 0, hi = z->nconstraint;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(z->constraint[mid].id, constraint_id);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

long zone_branch_find(const zone *z, const char *name)
{
    for (size_t i = 0; name && *name && i < z->mpc->branch.rows; i++)
        if (strcmp(z->branch[i].name, name) == 0) return (long)i;
    return -1;
}

/* mpc.bus row of a bus label, -1 when absent. */
static long s_bus_row(const zone *z, long label)
{
    return mp_case_bus_row(z->mpc, (double)label);
}

/* mpc.branch row from a 1-based idx cell. */
static pcf_rc s_branch_row(const zone *z, const s_reader *r, int row, int col, size_t *out)
{
    long idx;
    pcf_rc rc = s_long(r, row, col, &idx);
    if (rc != PCF_OK) return rc;
    if (idx < 1 || (size_t)idx > z->mpc->branch.rows)
        return pcf_error_set(r->err, PCF_ERR_INVALID, "%s row %d: branch idx %ld is not a row of the case",
                             r->what, row + 1, idx);
    *out = (size_t)idx - 1;
    return PCF_OK;
}

static pcf_rc s_site_of(const zone *z, const s_reader *r, int row, int col, size_t *out)
{
    long s = zone_site_find(z, PQgetvalue(r->res, row, col));
    if (s < 0)
        return pcf_error_set(r->err, PCF_ERR_INVALID, "%s row %d: unknown site '%.64s'", r->what, row + 1,
                             PQgetvalue(r->res, row, col));
    *out = (size_t)s;
    return PCF_OK;
}

/* ---- branches and ratings ---------------------------------------------- */

/* MATPOWER's "0 means unlimited". */
static double s_rate(double v)
{
    return v > 0 && isfinite(v) ? v : INFINITY;
}

static void s_fallback_rating(const mp_case *c, size_t row, zone_rating *rt)
{
    double a = s_rate(MP_AT(&c->branch, row, MP_RATE_A));
    double b = s_rate(MP_AT(&c->branch, row, MP_RATE_B));
    double cc = s_rate(MP_AT(&c->branch, row, MP_RATE_C));
    double post = isfinite(cc) ? cc : isfinite(b) ? b : a;
    rt->continuous_mva = a;
    rt->pel_mva = a;
    rt->post_fault_mva = post < a ? a : post;
    rt->has_pel = false;
    rt->from_db = false;
}

static pcf_rc s_load_branches(PGconn *conn, zone *z, pcf_error *err)
{
    size_t nbr = z->mpc->branch.rows;
    z->branch = calloc(nbr ? nbr : 1, sizeof *z->branch);
    if (!z->branch) return pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < nbr; i++) {
        z->branch[i].branch_id = -1;
        for (int s = 0; s < ZONE_NSEASON; s++) s_fallback_rating(z->mpc, i, &z->branch[i].rating[s]);
    }
    PGresult *res = s_query(conn, "SELECT idx, branch_id, name, kind, fault_rate_per_year, mean_repair_hours"
                                  " FROM branch WHERE zone_id = $1 ORDER BY idx", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "branch", err };
    pcf_rc rc = PCF_OK;
    for (int i = 0; i < PQntuples(res) && rc == PCF_OK; i++) {
        size_t row = 0;
        long id = 0;
        double rate, repair;
        if ((rc = s_branch_row(z, &r, i, 0, &row)) != PCF_OK) break;
        if ((rc = s_long(&r, i, 1, &id)) != PCF_OK) break;
        zone_branch *b = &z->branch[row];
        b->branch_id = id;
        if ((rc = s_text(&r, i, 2, b->name, ZONE_NAME_MAX, false)) != PCF_OK) break;
        b->kind = s_is(&r, i, 3, "cable") ? ZONE_CABLE : s_is(&r, i, 3, "transformer") ? ZONE_TRANSFORMER
                                                                                       : ZONE_LINE;
        if ((rc = s_num(&r, i, 4, true, &rate)) != PCF_OK) break;
        if ((rc = s_num(&r, i, 5, true, &repair)) != PCF_OK) break;
        static const double def_rate[] = { ZONE_DEFAULT_LINE_FAULTS_PER_YEAR, ZONE_DEFAULT_CABLE_FAULTS_PER_YEAR,
                                           ZONE_DEFAULT_TRANSFORMER_FAULTS_PER_YEAR };
        static const double def_rep[] = { ZONE_DEFAULT_LINE_REPAIR_HOURS, ZONE_DEFAULT_CABLE_REPAIR_HOURS,
                                          ZONE_DEFAULT_TRANSFORMER_REPAIR_HOURS };
        b->fault_stats_default = isnan(rate) || isnan(repair);
        b->faults_per_year = isnan(rate) ? def_rate[b->kind] : rate;
        b->mean_repair_hours = isnan(repair) ? def_rep[b->kind] : repair;
    }
    if (rc == PCF_OK && (size_t)PQntuples(res) != nbr)
        rc = pcf_error_set(err, PCF_ERR_INVALID, "zone %s: %zu case branches but a different branch table",
                           z->id, nbr);
    PQclear(res);
    if (rc != PCF_OK) return rc;

    res = s_query(conn, "SELECT b.idx, r.season, r.continuous_mva, r.pel_mva, r.post_fault_mva"
                        " FROM branch_rating r JOIN branch b USING (branch_id) WHERE b.zone_id = $1",
                  z->id, err);
    if (!res) return PCF_ERR_DB;
    r = (s_reader){ res, "branch_rating", err };
    for (int i = 0; i < PQntuples(res) && rc == PCF_OK; i++) {
        size_t row = 0;
        double cont, pel, post;
        if ((rc = s_branch_row(z, &r, i, 0, &row)) != PCF_OK) break;
        int s = zone_season_parse(PQgetvalue(res, i, 1));
        if (s < 0) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "branch_rating row %d: unknown season", i + 1);
            break;
        }
        if ((rc = s_num(&r, i, 2, false, &cont)) != PCF_OK || (rc = s_num(&r, i, 3, true, &pel)) != PCF_OK ||
            (rc = s_num(&r, i, 4, false, &post)) != PCF_OK)
            break;
        zone_rating *rt = &z->branch[row].rating[s];
        rt->continuous_mva = cont;
        rt->has_pel = !isnan(pel);
        rt->pel_mva = rt->has_pel ? pel : cont;
        rt->post_fault_mva = post;
        rt->from_db = true;
    }
    PQclear(res);
    return rc;
}

/* ---- DER register ------------------------------------------------------------ */

static pcf_rc s_load_sites(PGconn *conn, zone *z, pcf_error *err)
{
    PGresult *res = s_query(conn, "SELECT site_id, name, bus_i, export_capacity_mw, import_capacity_mw,"
                                  " latitude, longitude FROM der_site WHERE zone_id = $1"
                                  " ORDER BY site_id COLLATE \"C\"", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "der_site", err };
    pcf_rc rc = PCF_OK;
    size_t n = (size_t)PQntuples(res);
    z->site = calloc(n ? n : 1, sizeof *z->site);
    if (!z->site) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++, z->nsite++) {
        zone_site *s = &z->site[i];
        int row = (int)i;
        long bus = 0;
        if ((rc = s_text(&r, row, 0, s->id, ZONE_ID_MAX, false)) != PCF_OK) break;
        if ((rc = s_text(&r, row, 1, s->name, ZONE_NAME_MAX, true)) != PCF_OK) break;
        if ((rc = s_long(&r, row, 2, &bus)) != PCF_OK) break;
        long br = s_bus_row(z, bus);
        if (br < 0) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "der_site %s: bus %ld is not in the case", s->id, bus);
            break;
        }
        s->bus_label = (double)bus;
        s->bus_row = (size_t)br;
        if ((rc = s_num(&r, row, 3, false, &s->export_mw)) != PCF_OK ||
            (rc = s_num(&r, row, 4, false, &s->import_mw)) != PCF_OK ||
            (rc = s_num(&r, row, 5, true, &s->latitude)) != PCF_OK ||
            (rc = s_num(&r, row, 6, true, &s->longitude)) != PCF_OK)
            break;
        s->fuel = ZONE_FUEL_OTHER;
        s->firm = true;
    }
    PQclear(res);
    return rc;
}

static pcf_rc s_load_machines(PGconn *conn, zone *z, pcf_error *err)
{
    PGresult *res = s_query(conn, "SELECT m.machine_id, m.site_id, m.fuel_type, m.installed_capacity_mw,"
                                  " m.hub_height_m, m.tilt_deg, m.azimuth_deg"
                                  " FROM der_machine m JOIN der_site s USING (site_id) WHERE s.zone_id = $1"
                                  " ORDER BY m.site_id COLLATE \"C\", m.machine_id COLLATE \"C\"", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "der_machine", err };
    pcf_rc rc = PCF_OK;
    size_t n = (size_t)PQntuples(res);
    z->machine = calloc(n ? n : 1, sizeof *z->machine);
    if (!z->machine) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    double *largest = calloc(z->nsite ? z->nsite : 1, sizeof *largest);
    if (!largest && rc == PCF_OK) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++, z->nmachine++) {
        zone_machine *m = &z->machine[i];
        int row = (int)i;
        if ((rc = s_text(&r, row, 0, m->id, ZONE_ID_MAX, false)) != PCF_OK) break;
        if ((rc = s_site_of(z, &r, row, 1, &m->site)) != PCF_OK) break;
        int f = zone_fuel_parse(PQgetvalue(res, row, 2));
        if (f < 0) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "der_machine %s: unknown fuel type", m->id);
            break;
        }
        m->fuel = (zone_fuel)f;
        if ((rc = s_num(&r, row, 3, false, &m->capacity_mw)) != PCF_OK ||
            (rc = s_num(&r, row, 4, true, &m->hub_height_m)) != PCF_OK ||
            (rc = s_num(&r, row, 5, true, &m->tilt_deg)) != PCF_OK ||
            (rc = s_num(&r, row, 6, true, &m->azimuth_deg)) != PCF_OK)
            break;
        m->hub_height_given = !isnan(m->hub_height_m);
        m->tilt_given = !isnan(m->tilt_deg);
        m->azimuth_given = !isnan(m->azimuth_deg);
        if (!m->hub_height_given) m->hub_height_m = ZONE_DEFAULT_HUB_HEIGHT_M;
        if (!m->tilt_given) m->tilt_deg = ZONE_DEFAULT_TILT_DEG;
        if (!m->azimuth_given) m->azimuth_deg = ZONE_DEFAULT_AZIMUTH_DEG;
        zone_site *s = &z->site[m->site];
        if (s->nmachine == 0) s->machine_first = i;
        s->nmachine++;
        s->installed_mw += m->capacity_mw;
        /* Ties keep the first machine in id order, so the choice is stable. */
        if (m->capacity_mw > largest[m->site]) {
            largest[m->site] = m->capacity_mw;
            s->fuel = m->fuel;
        }
    }
    free(largest);
    PQclear(res);
    return rc;
}

static unsigned s_anm_bits(const char *t)
{
    if (strcmp(t, "DANM") == 0) return ZONE_DANM;
    if (strcmp(t, "TANM") == 0) return ZONE_TANM;
    if (strcmp(t, "DANM+TANM") == 0) return ZONE_DANM | ZONE_TANM;
    return 0;
}

static pcf_rc s_load_tranches(PGconn *conn, zone *z, pcf_error *err)
{
    /* Only connected and accepted tranches are in the queue the ANM acts on
     * (docs/methodology.md). */
    PGresult *res = s_query(conn, "SELECT enquiry_id, site_id, capacity_mw, firm, lifo_position, anm_type,"
                                  " status FROM der_enquiry WHERE zone_id = $1"
                                  " AND status IN ('connected', 'accepted')"
                                  " ORDER BY firm, lifo_position, enquiry_id COLLATE \"C\"", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "der_enquiry", err };
    pcf_rc rc = PCF_OK;
    size_t n = (size_t)PQntuples(res);
    z->tranche = calloc(n ? n : 1, sizeof *z->tranche);
    if (!z->tranche) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++, z->ntranche++) {
        zone_tranche *t = &z->tranche[i];
        int row = (int)i;
        if ((rc = s_text(&r, row, 0, t->id, ZONE_ID_MAX, false)) != PCF_OK) break;
        if ((rc = s_site_of(z, &r, row, 1, &t->site)) != PCF_OK) break;
        if ((rc = s_num(&r, row, 2, false, &t->capacity_mw)) != PCF_OK) break;
        t->firm = s_is(&r, row, 3, "t");
        t->accepted = s_is(&r, row, 6, "accepted");
        zone_site *s = &z->site[t->site];
        if (t->firm) {
            s->firm_mw += t->capacity_mw;
            continue;
        }
        long pos = 0;
        if ((rc = s_long(&r, row, 4, &pos)) != PCF_OK) break;
        if (pos < 1 || pos > 1000000) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "der_enquiry %s: LIFO position %ld out of range", t->id, pos);
            break;
        }
        t->lifo_position = (int)pos;
        t->anm = s_anm_bits(PQgetvalue(res, row, 5));
        s->nonfirm_mw += t->capacity_mw;
        s->firm = false;
        s->anm |= t->anm;
        if (t->lifo_position > s->lifo_position) s->lifo_position = t->lifo_position;
    }
    PQclear(res);
    return rc;
}

/* ---- ANM constraints ------------------------------------------------------- */

static pcf_rc s_load_constraint_rows(PGconn *conn, zone *z, pcf_error *err)
{
    PGresult *res = s_query(conn, "SELECT constraint_id, scheme_id, description, kind, anm_type, voltage_kv,"
                                  " limit_mw, trim_pct, release_pct, bus_i, vmax_pu, vmin_pu"
                                  " FROM anm_constraint WHERE zone_id = $1"
                                  " ORDER BY constraint_id COLLATE \"C\"", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "anm_constraint", err };
    pcf_rc rc = PCF_OK;
    size_t n = (size_t)PQntuples(res);
    z->constraint = calloc(n ? n : 1, sizeof *z->constraint);
    if (!z->constraint) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++, z->nconstraint++) {
        zone_constraint *c = &z->constraint[i];
        int row = (int)i;
        if ((rc = s_text(&r, row, 0, c->id, ZONE_ID_MAX, false)) != PCF_OK ||
            (rc = s_text(&r, row, 1, c->scheme_id, ZONE_ID_MAX, false)) != PCF_OK ||
            (rc = s_text(&r, row, 2, c->description, ZONE_NAME_MAX, true)) != PCF_OK)
            break;
        c->kind = s_is(&r, row, 3, "boundary") ? ZONE_C_BOUNDARY
                  : s_is(&r, row, 3, "transformer") ? ZONE_C_TRANSFORMER
                  : s_is(&r, row, 3, "voltage") ? ZONE_C_VOLTAGE : ZONE_C_BRANCH;
        c->anm = s_anm_bits(PQgetvalue(res, row, 4));
        if ((rc = s_num(&r, row, 5, false, &c->voltage_kv)) != PCF_OK ||
            (rc = s_num(&r, row, 6, true, &c->limit_mw)) != PCF_OK ||
            (rc = s_num(&r, row, 7, false, &c->trim_pct)) != PCF_OK ||
            (rc = s_num(&r, row, 8, false, &c->release_pct)) != PCF_OK)
            break;
        c->bus_row = -1;
        c->vmax_pu = c->vmin_pu = NAN;
        if (c->kind != ZONE_C_VOLTAGE) continue;
        /* The schema checks all of this; a model edited behind its back
         * must still not reach the study. */
        long bus = 0;
        if ((rc = s_long(&r, row, 9, &bus)) != PCF_OK || (rc = s_num(&r, row, 10, false, &c->vmax_pu)) != PCF_OK ||
            (rc = s_num(&r, row, 11, false, &c->vmin_pu)) != PCF_OK)
            break;
        c->bus_row = s_bus_row(z, bus);
        if (c->bus_row < 0) {
            rc = pcf_error_set(err, PCF_ERR_INVALID, "voltage constraint %s: bus %ld is not in the case", c->id, bus);
            break;
        }
        double kv = MP_AT(&z->mpc->bus, (size_t)c->bus_row, MP_BASE_KV);
        if (!(c->vmax_pu > 1 && c->vmax_pu < 1.2 && c->vmin_pu > 0.8 && c->vmin_pu < 1) || !(kv > 0) ||
            kv != c->voltage_kv) {
            rc = pcf_error_set(err, PCF_ERR_INVALID,
                               "voltage constraint %s: limits %g..%g p.u. at bus %ld of %g kV (voltage_kv %g): need "
                               "0.8 < vmin < 1 < vmax < 1.2 and voltage_kv = the bus's base kV > 0",
                               c->id, c->vmin_pu, c->vmax_pu, bus, kv, c->voltage_kv);
            break;
        }
    }
    PQclear(res);
    return rc;
}

/* Finds the constraint of a member row; members arrive grouped by
 * constraint id so each group is contiguous in the pool. */
static pcf_rc s_member_owner(const zone *z, const s_reader *r, int row, size_t *out)
{
    long c = zone_constraint_find(z, PQgetvalue(r->res, row, 0));
    if (c < 0)
        return pcf_error_set(r->err, PCF_ERR_INVALID, "%s row %d: unknown constraint '%.64s'", r->what,
                             row + 1, PQgetvalue(r->res, row, 0));
    *out = (size_t)c;
    return PCF_OK;
}

static pcf_rc s_load_constraint_members(PGconn *conn, zone *z, pcf_error *err)
{
    PGresult *res = s_query(conn, "SELECT cb.constraint_id, b.idx, cb.sign FROM anm_constraint_branch cb"
                                  " JOIN branch b ON b.branch_id = cb.branch_id WHERE cb.zone_id = $1"
                                  " ORDER BY cb.constraint_id COLLATE \"C\", b.idx", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "anm_constraint_branch", err };
    pcf_rc rc = PCF_OK;
    size_t n = (size_t)PQntuples(res);
    z->pool_branch = calloc(n ? n : 1, sizeof *z->pool_branch);
    z->pool_sign = calloc(n ? n : 1, sizeof *z->pool_sign);
    if (!z->pool_branch || !z->pool_sign) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++) {
        size_t ci = 0;
        long sign = 0;
        if ((rc = s_member_owner(z, &r, (int)i, &ci)) != PCF_OK) break;
        if ((rc = s_branch_row(z, &r, (int)i, 1, &z->pool_branch[i])) != PCF_OK) break;
        if ((rc = s_long(&r, (int)i, 2, &sign)) != PCF_OK) break;
        z->pool_sign[i] = sign < 0 ? -1 : 1;
        zone_constraint *c = &z->constraint[ci];
        if (c->nbranch == 0) {
            c->branch = &z->pool_branch[i];
            c->sign = &z->pool_sign[i];
        }
        c->nbranch++;
    }
    PQclear(res);
    if (rc != PCF_OK) return rc;

    res = s_query(conn, "SELECT constraint_id, site_id FROM anm_constraint_site WHERE zone_id = $1"
                        " ORDER BY constraint_id COLLATE \"C\", site_id COLLATE \"C\"", z->id, err);
    if (!res) return PCF_ERR_DB;
    r = (s_reader){ res, "anm_constraint_site", err };
    n = (size_t)PQntuples(res);
    z->pool_site = calloc(n ? n : 1, sizeof *z->pool_site);
    if (!z->pool_site) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++) {
        size_t ci = 0;
        if ((rc = s_member_owner(z, &r, (int)i, &ci)) != PCF_OK) break;
        if ((rc = s_site_of(z, &r, (int)i, 1, &z->pool_site[i])) != PCF_OK) break;
        zone_constraint *c = &z->constraint[ci];
        if (c->nsite == 0) c->site = &z->pool_site[i];
        c->nsite++;
    }
    PQclear(res);
    for (size_t i = 0; i < z->nconstraint && rc == PCF_OK; i++) {
        const zone_constraint *c = &z->constraint[i];
        if (c->kind != ZONE_C_VOLTAGE && c->nbranch == 0)
            rc = pcf_error_set(err, PCF_ERR_INVALID, "constraint %s monitors no branch", c->id);
        else if (c->kind == ZONE_C_VOLTAGE && c->nbranch != 0)
            rc = pcf_error_set(err, PCF_ERR_INVALID, "voltage constraint %s monitors branches", c->id);
    }
    return rc;
}

/* ---- measurement points ---------------------------------------------------- */

static pcf_rc s_load_points(PGconn *conn, zone *z, pcf_error *err)
{
    PGresult *res = s_query(conn, "SELECT p.point_id, p.quantity, p.element, b.idx, p.branch_end, p.bus_i,"
                                  " p.site_id, p.scale FROM measurement_point p"
                                  " LEFT JOIN branch b ON b.branch_id = p.branch_id"
                                  " WHERE p.zone_id = $1 ORDER BY p.point_id COLLATE \"C\"", z->id, err);
    if (!res) return PCF_ERR_DB;
    s_reader r = { res, "measurement_point", err };
    pcf_rc rc = PCF_OK;
    static const char *const qn[] = { "p_mw", "q_mvar", "i_a", "v_kv", "v_pu", "breaker_state" };
    size_t n = (size_t)PQntuples(res);
    z->point = calloc(n ? n : 1, sizeof *z->point);
    if (!z->point) rc = pcf_error_set(err, PCF_ERR_NOMEM, "zone %s: out of memory", z->id);
    for (size_t i = 0; i < n && rc == PCF_OK; i++, z->npoint++) {
        zone_point *p = &z->point[i];
        int row = (int)i;
        if ((rc = s_text(&r, row, 0, p->id, ZONE_NAME_MAX, false)) != PCF_OK) break;
        p->quantity = ZONE_Q_P_MW;
        for (size_t q = 0; q < sizeof qn / sizeof qn[0]; q++)
            if (s_is(&r, row, 1, qn[q])) p->quantity = (zone_quantity)q;
        p->branch_row = p->bus_row = p->site = -1;
        if (s_is(&r, row, 2, "branch")) {
            size_t br = 0;
            p->element = ZONE_EL_BRANCH;
            if ((rc = s_branch_row(z, &r, row, 3, &br)) != PCF_OK) break;
            p->branch_row = (long)br;
            p->to_end = s_is(&r, row, 4, "to");
        } else if (s_is(&r, row, 2, "bus")) {
            long bus = 0;
            p->element = ZONE_EL_BUS;
            if ((rc = s_long(&r, row, 5, &bus)) != PCF_OK) break;
            p->bus_row = s_bus_row(z, bus);
            if (p->bus_row < 0) {
                rc = pcf_error_set(err, PCF_ERR_INVALID, "point %s: bus %ld is not in the case", p->id, bus);
                break;
            }
        } else {
            size_t s = 0;
            p->element = ZONE_EL_SITE;
            if ((rc = s_site_of(z, &r, row, 6, &s)) != PCF_OK) break;
            p->site = (long)s;
        }
        if ((rc = s_num(&r, row, 7, false, &p->scale)) != PCF_OK) break;
    }
    PQclear(res);
    return rc;
}

/* ---- the load ------------------------------------------------------------------ */

static pcf_rc s_load_all(PGconn *conn, zone *z, pcf_error *err)
{
    z->mpc = netmodel_export(conn, z->id, err);
    if (!z->mpc) return err && err->code != PCF_OK ? err->code : PCF_ERR_DB;
    pcf_rc rc = s_load_branches(conn, z, err);
    if (rc == PCF_OK) rc = s_load_sites(conn, z, err);
    if (rc == PCF_OK) rc = s_load_machines(conn, z, err);
    if (rc == PCF_OK) rc = s_load_tranches(conn, z, err);
    if (rc == PCF_OK) rc = s_load_constraint_rows(conn, z, err);
    if (rc == PCF_OK) rc = s_load_constraint_members(conn, z, err);
    if (rc == PCF_OK) rc = s_load_points(conn, z, err);
    return rc;
}

pcf_rc zone_load(PGconn *conn, const char *zone_id, const char *season_or_NULL, zone **out, pcf_error *err)
{
    *out = NULL;
    if (!zone_id || strlen(zone_id) < 1 || strlen(zone_id) > ZONE_ID_MAX)
        return pcf_error_set(err, PCF_ERR_INVALID, "zone id must be 1..%d characters", ZONE_ID_MAX);
    if (season_or_NULL && zone_season_parse(season_or_NULL) < 0)
        return pcf_error_set(err, PCF_ERR_INVALID, "unknown season '%.32s' (winter, spring, summer, autumn)",
                             season_or_NULL);
    zone *z = calloc(1, sizeof *z);
    if (!z) return pcf_error_set(err, PCF_ERR_NOMEM, "zone: out of memory");
    memcpy(z->id, zone_id, strlen(zone_id) + 1);
    z->season = season_or_NULL ? zone_season_parse(season_or_NULL) : -1;

    bool own_tx = PQtransactionStatus(conn) == PQTRANS_IDLE;
    pcf_rc rc = PCF_OK;
    if (own_tx) rc = db_exec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err);
    if (rc == PCF_OK) rc = s_load_all(conn, z, err);
    if (own_tx) {
        if (rc == PCF_OK) rc = db_exec(conn, "COMMIT", err);
        else db_rollback(conn);
    }
    if (rc != PCF_OK) {
        zone_destroy(&z);
        return rc;
    }
    *out = z;
    return PCF_OK;
}

void zone_destroy(zone **zp)
{
    if (!zp || !*zp) return;
    zone *z = *zp;
    mp_case_destroy(&z->mpc);
    free(z->branch);
    free(z->site);
    free(z->machine);
    free(z->tranche);
    free(z->constraint);
    free(z->point);
    free(z->pool_branch);
    free(z->pool_sign);
    free(z->pool_site);
    free(z);
    *zp = NULL;
}

double zone_fault_probability(const zone *z, size_t row, double hours)
{
    const zone_branch *b = &z->branch[row];
    double lambda = b->faults_per_year, r = b->mean_repair_hours;
    if (!(lambda > 0) || !(hours > 0)) return 0.0;
    double u = lambda * r / (8760.0 + lambda * r);
    return 1.0 - (1.0 - u) * exp(-lambda * hours / 8760.0);
}

const zone_rating *zone_rating_at(const zone *z, size_t row, int64_t t)
{
    int s = z->season >= 0 ? z->season : (int)zone_season_of(t);
    return &z->branch[row].rating[s];
}
