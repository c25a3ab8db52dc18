#!/bin/sh
# run.sh TEST_BINARY [criterion args...] -- runs the suite against a private
# PostgreSQL that lives only for this run.
#
# Tests find the server through PCF_TEST_PGHOST/PCF_TEST_PGPORT (see
# tests/testdb.h) and create a fresh database each, so they can run in
# parallel.  The server is stopped and removed whatever the outcome.
set -u
bin=${1:?usage: run.sh TEST_BINARY}; shift
dir=$(mktemp -d /tmp/pcf-test-pg.XXXXXX)
port=$((20000 + $$ % 20000))
cleanup() { deploy/pg.sh stop "$dir" >/dev/null 2>&1; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
deploy/pg.sh start "$dir" "$port" || exit 1
export PCF_TEST_PGHOST="$dir" PCF_TEST_PGPORT="$port"
export PCF_BINDIR="${PCF_BINDIR:-bin}"
"$bin" --jobs=2 "$@"
