#!/bin/sh
# run.sh DIR -- runs every benchmark program in DIR; each prints lines
# `BENCH <name> <value> <unit>` (and may print context lines starting with #).
# Benchmarks that need PostgreSQL get a private server for the run, exactly as
# the tests do.
set -u
dir=${1:?usage: run.sh DIR}
pg=$(mktemp -d /tmp/pcf-bench-pg.XXXXXX)
port=$((20000 + $$ % 20000))
cleanup() { deploy/pg.sh stop "$pg" >/dev/null 2>&1; rm -rf "$pg"; }
trap cleanup EXIT INT TERM
deploy/pg.sh start "$pg" "$port" || exit 1
export PCF_TEST_PGHOST="$pg" PCF_TEST_PGPORT="$port"
rc=0
for b in "$dir"/bench_*; do
    [ -x "$b" ] || continue
    case "$b" in *.o|*.d) continue ;; esac
    echo "# $(basename "$b")"
    "$b" || rc=1
done
exit $rc
