/*
 * netmodel.h -- a zone's MATPOWER network in PostgreSQL: import and export.
 *
 * Import writes the case into zone, bus, gen, gencost and branch in one
 * transaction with COPY (case2869pegase loads in well under a second), so a
 * bad case loads nothing: the CHECK constraints of sql/001_core.sql are the
 * last line of defence after mp_case's own validation.  Export reads the same
 * tables back in row order and rebuilds an mp_case that mp_case_write turns
 * into a file equal, number for number, to the one imported.
 */
#ifndef PCF_NETMODEL_H
#define PCF_NETMODEL_H

#include <libpq-fe.h>

#include "error.h"
#include "mpcase.h"

/* Creates zone `zone` holding case `c`.  An existing zone is an error
 * (PCF_ERR_INVALID): replacing a network silently would orphan results. */
pcf_rc netmodel_import(PGconn *conn, const char *zone, const char *zone_name,
                       const mp_case *c, pcf_error *err);

/* Reads zone `zone` back as a case; NULL with err set when it is missing. */
mp_case *netmodel_export(PGconn *conn, const char *zone, pcf_error *err);

/* Deletes a zone and everything that belongs to it (network, DER register,
 * ANM schemes, feeds mapped to it, results). */
pcf_rc netmodel_drop_zone(PGconn *conn, const char *zone, pcf_error *err);

#endif
