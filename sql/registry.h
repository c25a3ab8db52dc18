/*
 * registry.h -- the DER register, ANM schemes and SCADA point mapping, loaded
 * from CSV files a planner can write by hand or export from their tools.
 *
 * Each import reads a directory (or one file) of CSVs with fixed names and
 * headers (docs/data-model.md lists every column) and upserts every row on
 * its natural key in ONE transaction: a file with any bad row loads nothing
 * and the error says "file:line: reason"; loading the same files twice
 * changes nothing.  Rows already in the database and absent from the files
 * are left alone (deleting a site would delete its result history).
 *
 *   import-der DIR:  sites.csv, enquiries.csv, and optionally machines.csv and
 *                    weather_locations.csv
 *   import-anm DIR:  constraints.csv, constraint_branches.csv,
 *                    constraint_sites.csv, and optionally branches.csv
 *                    (names, kinds, fault statistics), ratings.csv,
 *                    equipment.csv (outage-feed equipment ids -> branches)
 *                    and voltage_constraints.csv (a bus's voltage against
 *                    per-unit limits, sql/006_voltage.sql)
 *   import-points FILE: points.csv
 * A branch is named by its 1-based MATPOWER row number or by its name.
 */
#ifndef PCF_REGISTRY_H
#define PCF_REGISTRY_H

#include <libpq-fe.h>

#include "error.h"

/* Each returns PCF_OK with *rows = rows upserted, or an error with nothing
 * written. */
pcf_rc registry_import_der(PGconn *c, const char *zone, const char *dir, long *rows, pcf_error *err);
pcf_rc registry_import_anm(PGconn *c, const char *zone, const char *dir, long *rows, pcf_error *err);
pcf_rc registry_import_points(PGconn *c, const char *zone, const char *file, long *rows, pcf_error *err);

#endif
