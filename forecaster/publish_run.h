/*
 * publish_run.h -- one run's results read from PostgreSQL as wire messages.
 *
 * The publisher and the statement request both need a run's rows in the
 * shape of proto/pcf.proto: PCF rows, constraint statements (with their
 * sites and quantiles) and constraint blocks.  publish_run_load() reads the
 * run and its rows from the results tables of sql/003 and 004 (joined
 * with the register for export capacity, LIFO position, constraint names)
 * in one REPEATABLE READ snapshot and builds the protobuf-c structures.
 *
 * Ownership: every structure and string hangs off an arena inside the
 * publish_run; publish_run_destroy() frees all of it at once.  Callers may
 * point protobuf-c messages at the rows (they are never freed one by one).
 *
 * Mapping decisions (documented in docs/protocol.md section 6):
 *   - Pcf.lifo_position: the smallest lifo_position of the site's non-firm,
 *     non-withdrawn enquiries; 0 when it has none (a firm site).
 *   - ConstraintStatement.flow_intact / flow_worst_fault: the p10/p50/p90
 *     columns as Quantiles 0.1/0.5/0.9 with mw_se from the _se_mw columns
 *     of sql/004_results_detail.sql; flow_worst_fault is empty when the
 *     run stored no fault flows.
 *   - binding_fault_id: the outaged branch's name (its MATPOWER row index
 *     when unnamed); binding_fault_description "<kind> <f_bus>-<t_bus>".
 *   - sites: in curtailment order, last-in first (lifo_position descending).
 *   - Columns of 004 are NULL for runs written before it; their fields are
 *     then 0 = not given.  The engine fills every one.
 */
#ifndef PCF_PUBLISH_RUN_H
#define PCF_PUBLISH_RUN_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "pcf.pb-c.h"

/* What to read besides the run row. */
enum {
    PUBLISH_RUN_PCF = 1,
    PUBLISH_RUN_STATEMENTS = 2,
    PUBLISH_RUN_BLOCKS = 4,            /* implies PUBLISH_RUN_STATEMENTS (blocks take sp_start and limit from them) */
    PUBLISH_RUN_ALL = 7
};

#define PUBLISH_ID_MAX 64           /* zone, site, constraint ids (docs/protocol.md section 12) */
#define PUBLISH_SP_LENGTH_MS 1800000

typedef struct publish_arena publish_arena;

typedef struct publish_run {
    int64_t run_id;
    char zone[PUBLISH_ID_MAX + 1];
    Pcf__V1__RunKind kind;               /* DAY_AHEAD, REAL_TIME or TRADE_CHECK */
    char settlement_date[11];            /* YYYY-MM-DD: target date, or local date of the horizon start */
    int64_t computed_at_ms;              /* finished_at (started_at when not set) */
    Pcf__V1__InputsAsOf inputs;
    Pcf__V1__BatchInfo batch;            /* part = part_count = 1 here */
    char *software_version;
    size_t n_pcf;
    Pcf__V1__Pcf **pcf;                  /* ordered by sp, lifo_position, site_id */
    size_t n_statements;
    Pcf__V1__ConstraintStatement **statements; /* ordered by sp, voltage_kv, constraint_id */
    size_t n_blocks;
    Pcf__V1__ConstraintBlock **blocks;   /* ordered by sp, constraint_id */
    publish_arena *arena;
} publish_run;

/* Reads run run_id and the rows selected by `what`.  PCF_ERR_INVALID when
 * there is no such run; PCF_ERR_DB when a query fails; PCF_ERR_PARSE when a
 * column does not hold what the schema promises. */
pcf_rc publish_run_load(PGconn *c, int64_t run_id, int what, publish_run **out, pcf_error *err);

void publish_run_destroy(publish_run **r);

/* Topic of a kind of content of this run into buf ("pcf.da.<zone>"...):
 * what is PUBLISH_RUN_PCF, _STATEMENTS or _BLOCKS.  Empty string for a
 * trade-check run's PCF (never published). */
void publish_run_topic(const publish_run *r, int what, char *buf, size_t len);

/* Milliseconds since the epoch, CLOCK_REALTIME. */
int64_t publish_now_ms(void);

#endif
