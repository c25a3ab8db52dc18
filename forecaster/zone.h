/*
 * zone.h -- everything the look-ahead engine needs about one zone, read from
 * PostgreSQL in one consistent snapshot.
 *
 * zone_load() reads, in one REPEATABLE READ READ ONLY transaction (or inside
 * the caller's open transaction, so history and forecasts can share the same
 * snapshot), the MATPOWER case (netmodel_export), the DER register, the ANM
 * constraints, the seasonal ratings, the fault statistics and the SCADA
 * measurement points, and turns every reference into an index:
 *   - branches are mpc.branch rows (0-based), i.e. the rows pf_net_new()
 *     maps through row_br;
 *   - buses are mpc.bus rows (0-based), plus the MATPOWER label;
 *   - sites, machines, tranches, constraints and points are indices into the
 *     zone's own arrays.
 * Everything is plain arrays of structs owned by the zone; pointers inside a
 * constraint point into pools the zone owns.  zone_destroy frees all of it.
 *
 * Policies (documented in docs/methodology.md, "## Forecasts"):
 *   - Tranches: only `connected` and `accepted` enquiries count (an accepted
 *     offer is contractually in the queue and is studied as connected);
 *     `enquiry`, `offered` and `withdrawn` are ignored.
 *   - Ratings: a branch without a branch_rating row for a season falls back
 *     to MATPOWER: continuous = rateA, no PEL, post-fault = rateC, else rateB,
 *     else rateA (0 in MATPOWER means unlimited: +INFINITY); post-fault is
 *     never below continuous.
 *   - Fault statistics: NULL in the database means the default of the
 *     branch's kind (ZONE_DEFAULT_* below).
 *   - Machine parameters: NULL means hub height 80 m, tilt 30 deg, azimuth
 *     180 deg (south); the *_given flags say what was stored.
 *   - Seasons: ENA ER P27 groups of UK local months, as the ratings are
 *     written: winter Nov-Feb, spring Mar-Apr, summer May-Aug, autumn Sep-Oct.
 */
#ifndef PCF_ZONE_H
#define PCF_ZONE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "mpcase.h"

#define ZONE_ID_MAX 64          /* ids are at most 64 characters (schema) */
#define ZONE_NAME_MAX 128       /* names and descriptions are truncated here */

/* Default credible-fault statistics per circuit when the database has none
 * (sources in docs/methodology.md). */
#define ZONE_DEFAULT_LINE_FAULTS_PER_YEAR        0.5
#define ZONE_DEFAULT_LINE_REPAIR_HOURS           12.0
#define ZONE_DEFAULT_CABLE_FAULTS_PER_YEAR       0.05
#define ZONE_DEFAULT_CABLE_REPAIR_HOURS          96.0
#define ZONE_DEFAULT_TRANSFORMER_FAULTS_PER_YEAR 0.01
#define ZONE_DEFAULT_TRANSFORMER_REPAIR_HOURS    240.0

#define ZONE_DEFAULT_HUB_HEIGHT_M 80.0
#define ZONE_DEFAULT_TILT_DEG     30.0
#define ZONE_DEFAULT_AZIMUTH_DEG  180.0

typedef enum zone_season { ZONE_WINTER, ZONE_SPRING, ZONE_SUMMER, ZONE_AUTUMN, ZONE_NSEASON } zone_season;

typedef enum zone_fuel {
    ZONE_FUEL_SOLAR, ZONE_FUEL_WIND, ZONE_FUEL_BATTERY, ZONE_FUEL_HYDRO, ZONE_FUEL_GAS,
    ZONE_FUEL_DIESEL, ZONE_FUEL_BIOMASS, ZONE_FUEL_CHP, ZONE_FUEL_OTHER, ZONE_NFUEL
} zone_fuel;

typedef enum zone_branch_kind { ZONE_LINE, ZONE_CABLE, ZONE_TRANSFORMER } zone_branch_kind;
/* ZONE_C_VOLTAGE watches a bus's voltage (sql/006_voltage.sql), the others
 * the flow of branches. */
typedef enum zone_constraint_kind {
    ZONE_C_BRANCH, ZONE_C_TRANSFORMER, ZONE_C_BOUNDARY, ZONE_C_VOLTAGE
} zone_constraint_kind;

/* ANM membership bits. */
enum { ZONE_DANM = 1u, ZONE_TANM = 2u };

typedef enum zone_quantity {
    ZONE_Q_P_MW, ZONE_Q_Q_MVAR, ZONE_Q_I_A, ZONE_Q_V_KV, ZONE_Q_V_PU, ZONE_Q_BREAKER
} zone_quantity;
typedef enum zone_element { ZONE_EL_BRANCH, ZONE_EL_BUS, ZONE_EL_SITE } zone_element;

typedef struct zone_rating {
    double continuous_mva;
    double pel_mva;             /* pre-event limit; equals continuous_mva when none is set */
    double post_fault_mva;
    bool has_pel;               /* a PEL was stored */
    bool from_db;               /* false: MATPOWER rateA/B/C fallback */
} zone_rating;

typedef struct zone_branch {    /* one per mpc.branch row, same order */
    int64_t branch_id;          /* database id */
    char name[ZONE_NAME_MAX + 1];   /* "" when unnamed */
    zone_branch_kind kind;
    double faults_per_year;
    double mean_repair_hours;
    bool fault_stats_default;   /* at least one of the two is the kind's default */
    zone_rating rating[ZONE_NSEASON];
} zone_branch;

typedef struct zone_machine {
    char id[ZONE_ID_MAX + 1];
    size_t site;                /* index into zone.site */
    zone_fuel fuel;
    double capacity_mw;
    double hub_height_m, tilt_deg, azimuth_deg;     /* defaults applied */
    bool hub_height_given, tilt_given, azimuth_given;
} zone_machine;

typedef struct zone_site {
    char id[ZONE_ID_MAX + 1];
    char name[ZONE_NAME_MAX + 1];
    double bus_label;           /* MATPOWER bus number */
    size_t bus_row;             /* mpc.bus row */
    double export_mw, import_mw;
    double latitude, longitude; /* NAN when not given */
    size_t machine_first, nmachine;     /* zone.machine[first .. first+n) */
    zone_fuel fuel;             /* fuel of the largest machine; OTHER without machines */
    double installed_mw;        /* sum over machines */
    double firm_mw, nonfirm_mw; /* sums over counted tranches */
    int lifo_position;          /* latest (largest) queue position of its non-firm tranches; 0: none */
    unsigned anm;               /* OR of its tranches' ZONE_DANM / ZONE_TANM */
    bool firm;                  /* no counted non-firm tranche: never curtailed */
} zone_site;

typedef struct zone_tranche {   /* ordered: non-firm by LIFO position ascending, then firm */
    char id[ZONE_ID_MAX + 1];
    size_t site;
    double capacity_mw;
    bool firm;
    int lifo_position;          /* 0 when firm */
    unsigned anm;               /* ZONE_DANM | ZONE_TANM; 0 when firm */
    bool accepted;              /* status 'accepted' (not yet connected) */
} zone_tranche;

typedef struct zone_constraint {
    char id[ZONE_ID_MAX + 1];
    char scheme_id[ZONE_ID_MAX + 1];
    char description[ZONE_NAME_MAX + 1];
    zone_constraint_kind kind;
    unsigned anm;               /* ZONE_DANM or ZONE_TANM */
    double voltage_kv;          /* voltage: the monitored bus's base kV */
    double limit_mw;            /* boundary only; NAN otherwise (limit from the ratings) */
    long bus_row;               /* voltage: monitored bus, mpc.bus row; -1 otherwise */
    double vmax_pu, vmin_pu;    /* voltage: limits, 0.8 < vmin < 1 < vmax < 1.2; NAN otherwise */
    double trim_pct, release_pct;
    size_t nbranch;             /* >= 1, but 0 for a voltage constraint */
    const size_t *branch;       /* [nbranch] mpc.branch rows, ascending */
    const int *sign;            /* [nbranch] +1 from->to, -1 reverse */
    size_t nsite;
    const size_t *site;         /* [nsite] indices into zone.site, ascending */
} zone_constraint;

typedef struct zone_point {
    char id[ZONE_NAME_MAX + 1];
    zone_quantity quantity;
    zone_element element;
    long branch_row;            /* mpc.branch row, -1 unless element is a branch */
    bool to_end;                /* branch end measured */
    long bus_row;               /* mpc.bus row, -1 unless element is a bus */
    long site;                  /* zone.site index, -1 unless element is a site */
    double scale;
} zone_point;

typedef struct zone {
    char id[ZONE_ID_MAX + 1];
    int season;                 /* forced zone_season, or -1: the season of each instant */
    mp_case *mpc;               /* the network, owned */
    zone_branch *branch;        /* [mpc->branch.rows] */
    size_t nsite;
    zone_site *site;            /* ordered by id (byte order) */
    size_t nmachine;
    zone_machine *machine;      /* grouped by site, in site order */
    size_t ntranche;
    zone_tranche *tranche;
    size_t nconstraint;
    zone_constraint *constraint;    /* ordered by id */
    size_t npoint;
    zone_point *point;          /* ordered by id */
    /* pools the constraints point into */
    size_t *pool_branch;
    int *pool_sign;
    size_t *pool_site;
} zone;

/* Loads zone `zone_id`.  All four seasons' ratings are always loaded (a
 * run may cross a season boundary).  season_or_NULL, when given, must name
 * a season ("winter", "spring", "summer", "autumn") and forces it for every
 * instant (zone.season, used by zone_rating_at: studies of a season); NULL
 * leaves zone.season at -1, i.e. the season of each instant.  When the connection
 * is idle the load runs in its own REPEATABLE READ READ ONLY transaction;
 * inside an open transaction it runs there and leaves it open.
 * PCF_ERR_INVALID for an unknown zone or season, PCF_ERR_DB for the server. */
pcf_rc zone_load(PGconn *conn, const char *zone_id, const char *season_or_NULL, zone **out,
                 pcf_error *err);

/* The rating that applies to branch row `row` at UTC instant t: the forced
 * season's, else the season of t. */
const zone_rating *zone_rating_at(const zone *z, size_t row, int64_t t);

/* Frees everything; *z becomes NULL.  Safe on NULL. */
void zone_destroy(zone **z);

/* The rating season of UTC instant t (UK local month, ER P27 grouping). */
zone_season zone_season_of(int64_t t);

/* "winter"... ; and the reverse (-1 when unknown). */
const char *zone_season_name(zone_season s);
int zone_season_parse(const char *name);

/* "solar", "wind"...; and the reverse (-1 when unknown). */
const char *zone_fuel_name(zone_fuel f);
int zone_fuel_parse(const char *name);

/* Index of the site / constraint with this id, or -1 (binary search). */
long zone_site_find(const zone *z, const char *site_id);
long zone_constraint_find(const zone *z, const char *constraint_id);
/* mpc.branch row of the branch with this name, or -1. */
long zone_branch_find(const zone *z, const char *name);

/* Probability that branch row `row` is out of service because of a fault
 * at some point of a window of `hours`, from its fault rate lambda (per
 * year) and mean repair time r (hours): the branch is found faulted with
 * the steady-state unavailability plus the chance a new fault starts in the
 * window, p = 1 - (1 - u) exp(-lambda h / 8760), u = lambda r / (8760 +
 * lambda r). */
double zone_fault_probability(const zone *z, size_t row, double hours);

#endif
