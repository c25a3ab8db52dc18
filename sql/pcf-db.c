/*
 * pcf-db -- administers the forecaster's PostgreSQL database: applies the
 * schema migrations and loads or exports a zone's network model, DER
 * register, ANM schemes and SCADA point mapping.
 *
 * A thin command-line layer over migrate.c, netmodel.c and registry.c: it
 * parses arguments, connects, calls one function, prints what happened.
 * Exit status: 0 done, 1 bad input or refused by the database, 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "migrate.h"
#include "mpcase.h"
#include "netmodel.h"
#include "registry.h"

static const char s_usage[] =
    "usage: pcf-db [--db CONNINFO] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  migrate [--dry-run]                 apply pending schema migrations (safe to repeat)\n"
    "  status                              show the schema version of the database\n"
    "  import-matpower --zone Z [--name TEXT] CASE.m\n"
    "                                      create zone Z from a MATPOWER case file\n"
    "  export-matpower --zone Z [-o FILE]  write zone Z's network as a MATPOWER case\n"
    "  import-der --zone Z DIR             upsert DIR/sites.csv, enquiries.csv [, machines.csv,\n"
    "                                      weather_locations.csv]\n"
    "  import-anm --zone Z DIR             upsert DIR/constraints.csv, constraint_branches.csv,\n"
    "                                      constraint_sites.csv [, branches.csv, ratings.csv,\n"
    "                                      equipment.csv]\n"
    "  import-points --zone Z FILE         upsert SCADA measurement points (points.csv)\n"
    "  drop-zone --zone Z --yes            delete zone Z and ALL its data, results included\n"
    "\n"
    "CONNINFO is a libpq connection string; without --db the PCF_DB environment\n"
    "variable is used, else libpq's PG* variables and defaults.\n"
    "Files are documented in docs/data-model.md.  Every import is one transaction:\n"
    "a bad file loads nothing and the error names file:line.\n";

typedef struct cli {
    const char *db;
    const char *zone;
    const char *name;
    const char *out;
    int dry_run;
    int yes;
    int argc;           /* positional arguments after the command */
    char **argv;
} cli;

static int s_fail(const pcf_error *err)
{
    fprintf(stderr, "pcf-db: %s\n", err->msg);
    return 1;
}

static void s_report_migration(void *ctx, int version, const char *name)
{
    const cli *o = ctx;
    printf("%s %03d %s\n", o->dry_run ? "pending" : "applied", version, name);
}

static int s_migrate(PGconn *c, cli *o)
{
    pcf_error err;
    int applied = 0;
    if (migrate_apply(c, o->dry_run, s_report_migration, o, &applied, &err) != PCF_OK) return s_fail(&err);
    int v = 0;
    if (!o->dry_run && migrate_current(c, &v, &err) != PCF_OK) return s_fail(&err);
    if (o->dry_run) printf("%d migration(s) pending\n", applied);
    else printf("schema at version %d (%d applied now)\n", v, applied);
    return 0;
}

static int s_status(PGconn *c)
{
    pcf_error err;
    int v = 0;
    if (migrate_current(c, &v, &err) != PCF_OK) return s_fail(&err);
    int latest = migrate_latest_embedded();
    printf("schema version %d, this program's latest %d%s\n", v, latest,
           v < latest ? " (run pcf-db migrate)" : "");
    return v < latest ? 3 : 0;
}

static int s_import_matpower(PGconn *c, cli *o)
{
    if (o->argc != 1) {
        fputs(s_usage, stderr);
        return 2;
    }
    pcf_error err;
    mp_case *mc = mp_case_read(o->argv[0], &err);
    if (!mc) return s_fail(&err);
    pcf_rc rc = netmodel_import(c, o->zone, o->name, mc, &err);
    if (rc == PCF_OK)
        printf("zone %s: imported %s: %zu buses, %zu generators, %zu branches, baseMVA %g\n", o->zone,
               o->argv[0], mc->bus.rows, mc->gen.rows, mc->branch.rows, mc->base_mva);
    mp_case_destroy(&mc);
    if (rc != PCF_OK) {
        pcf_error e2;
        pcf_error_set(&e2, rc, "%s: %s", o->argv[0], err.msg);
        return s_fail(&e2);
    }
    return 0;
}

static int s_export_matpower(PGconn *c, cli *o)
{
    pcf_error err;
    mp_case *mc = netmodel_export(c, o->zone, &err);
    if (!mc) return s_fail(&err);
    FILE *f = o->out ? fopen(o->out, "w") : stdout;
    if (!f) {
        perror(o->out);
        mp_case_destroy(&mc);
        return 1;
    }
    pcf_rc rc = mp_case_write(mc, f, &err);
    if (o->out && fclose(f) != 0 && rc == PCF_OK)
        rc = pcf_error_set(&err, PCF_ERR_IO, "%s: write failed", o->out);
    mp_case_destroy(&mc);
    return rc == PCF_OK ? 0 : s_fail(&err);
}

typedef pcf_rc (*import_fn)(PGconn *, const char *, const char *, long *, pcf_error *);

static int s_import(PGconn *c, cli *o, import_fn fn, const char *what)
{
    if (o->argc != 1) {
        fputs(s_usage, stderr);
        return 2;
    }
    pcf_error err;
    long rows = 0;
    if (fn(c, o->zone, o->argv[0], &rows, &err) != PCF_OK) return s_fail(&err);
    printf("zone %s: %s: %ld rows loaded from %s\n", o->zone, what, rows, o->argv[0]);
    return 0;
}

static int s_drop_zone(PGconn *c, cli *o)
{
    if (!o->yes) {
        fprintf(stderr, "pcf-db: drop-zone deletes zone %s and all its data; add --yes\n", o->zone);
        return 2;
    }
    pcf_error err;
    if (netmodel_drop_zone(c, o->zone, &err) != PCF_OK) return s_fail(&err);
    printf("zone %s dropped\n", o->zone);
    return 0;
}

int main(int argc, char **argv)
{
    cli o = { 0 };
    o.db = getenv("PCF_DB");
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' }, { "zone", required_argument, NULL, 'z' },
        { "name", required_argument, NULL, 'n' }, { "out", required_argument, NULL, 'o' },
        { "dry-run", no_argument, NULL, 'r' }, { "yes", no_argument, NULL, 'y' },
        { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
    int ch;
    /* '+' would stop at the command; we allow options before and after it. */
    while ((ch = getopt_long(argc, argv, "d:z:n:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd': o.db = optarg; break;
        case 'z': o.zone = optarg; break;
        case 'n': o.name = optarg; break;
        case 'o': o.out = optarg; break;
        case 'r': o.dry_run = 1; break;
        case 'y': o.yes = 1; break;
        case 'h': fputs(s_usage, stdout); return 0;
        default: fputs(s_usage, stderr); return 2;
        }
    }
    if (optind >= argc) {
        fputs(s_usage, stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    o.argc = argc - optind - 1;
    o.argv = argv + optind + 1;
    int needs_zone = strcmp(cmd, "migrate") != 0 && strcmp(cmd, "status") != 0;
    if (needs_zone && !o.zone) {
        fprintf(stderr, "pcf-db: %s needs --zone\n", cmd);
        return 2;
    }

    pcf_error err;
    PGconn *c = db_connect(o.db, &err);
    if (!c) return s_fail(&err);
    int rc;
    if (strcmp(cmd, "migrate") == 0) rc = s_migrate(c, &o);
    else if (strcmp(cmd, "status") == 0) rc = s_status(c);
    else if (strcmp(cmd, "import-matpower") == 0) rc = s_import_matpower(c, &o);
    else if (strcmp(cmd, "export-matpower") == 0) rc = s_export_matpower(c, &o);
    else if (strcmp(cmd, "import-der") == 0) rc = s_import(c, &o, registry_import_der, "DER register");
    else if (strcmp(cmd, "import-anm") == 0) rc = s_import(c, &o, registry_import_anm, "ANM schemes");
    else if (strcmp(cmd, "import-points") == 0) rc = s_import(c, &o, registry_import_points, "measurement points");
    else if (strcmp(cmd, "drop-zone") == 0) rc = s_drop_zone(c, &o);
    else {
        fprintf(stderr, "pcf-db: unknown command '%s'\n%s", cmd, s_usage);
        rc = 2;
    }
    PQfinish(c);
    return rc;
}
