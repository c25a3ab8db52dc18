#!/bin/sh
# demo.sh -- what `make demo` runs: the service on its embedded default zone.
#
# Stage reached so far (see README): a private PostgreSQL under /tmp, the
# schema migrated, a network imported from a MATPOWER case with its DER
# register, ANM schemes and SCADA points, the model exported back and checked
# against the original, and a power flow of it.  Every process it starts is
# stopped on exit, whatever happens.
set -eu
cd "$(dirname "$0")/.."
BIN=${PCF_BINDIR:-bin}
DEMO_DIR=${PCF_DEMO_DIR:-/tmp/pcf-demo}
PORT=${PCF_DEMO_PORT:-54329}
ZONE=demo
CASE=tests/data/matpower/cases/case9.m
REG=tests/data/registry/case9

step() { printf '\n==> %s\n' "$*"; }
cleanup() {
    step "stopping the private PostgreSQL"
    deploy/pg.sh stop "$DEMO_DIR/pg" || true
}
trap cleanup EXIT INT TERM

step "starting a private PostgreSQL in $DEMO_DIR/pg (Unix socket only, port $PORT)"
deploy/pg.sh start "$DEMO_DIR/pg" "$PORT"
export PGHOST="$DEMO_DIR/pg" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
psql -qAt -c "DROP DATABASE IF EXISTS pcf_demo WITH (FORCE)" -c "CREATE DATABASE pcf_demo" >/dev/null
export PGDATABASE=pcf_demo

step "applying the schema migrations"
"$BIN/pcf-db" migrate

step "importing zone '$ZONE' from $CASE"
"$BIN/pcf-db" import-matpower --zone "$ZONE" --name "Demo ANM zone" "$CASE"
"$BIN/pcf-db" import-der --zone "$ZONE" "$REG"
"$BIN/pcf-db" import-anm --zone "$ZONE" "$REG"
"$BIN/pcf-db" import-points --zone "$ZONE" tests/data/registry/case9_points.csv

step "what the database now holds"
psql -P pager=off -c "
SELECT s.site_id, s.name, s.bus_i AS bus, s.export_capacity_mw AS export_mw,
       string_agg(e.enquiry_id || CASE WHEN e.firm THEN ' firm' ELSE ' LIFO ' || e.lifo_position END, ', '
                  ORDER BY e.lifo_position) AS enquiries,
       (SELECT string_agg(fuel_type, ',') FROM der_machine m WHERE m.site_id = s.site_id) AS fuel
FROM der_site s JOIN der_enquiry e USING (site_id) GROUP BY s.site_id ORDER BY s.site_id;"
psql -P pager=off -c "
SELECT c.constraint_id, c.kind, c.anm_type, c.voltage_kv AS kv, c.limit_mw,
       string_agg(DISTINCT coalesce(b.name, 'branch ' || b.idx) || '(' || cb.sign || ')', ' ') AS branches,
       (SELECT string_agg(site_id, ' ' ORDER BY site_id) FROM anm_constraint_site s
         WHERE s.constraint_id = c.constraint_id) AS curtails
FROM anm_constraint c JOIN anm_constraint_branch cb USING (constraint_id)
JOIN branch b USING (branch_id) GROUP BY c.constraint_id ORDER BY c.constraint_id;"

step "exporting the network back from PostgreSQL"
"$BIN/pcf-db" export-matpower --zone "$ZONE" -o "$DEMO_DIR/exported.m"
echo "written $DEMO_DIR/exported.m"

if [ -x "$BIN/pcf-pf" ]; then
    step "AC power flow of the original case and of the exported one: the results must be identical"
    "$BIN/pcf-pf" --out "$DEMO_DIR/pf-original" "$CASE"
    "$BIN/pcf-pf" --out "$DEMO_DIR/pf" "$DEMO_DIR/exported.m"
    cmp "$DEMO_DIR/pf-original/branch.csv" "$DEMO_DIR/pf/branch.csv"
    cmp "$DEMO_DIR/pf-original/bus.csv" "$DEMO_DIR/pf/bus.csv"
    echo "identical. Branch flows ($DEMO_DIR/pf/branch.csv):"
    column -s, -t < "$DEMO_DIR/pf/branch.csv" 2>/dev/null || cat "$DEMO_DIR/pf/branch.csv"
fi

step "done: $("$BIN/pcf-db" status)"
