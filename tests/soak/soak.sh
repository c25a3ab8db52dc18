#!/bin/sh
# soak.sh -- what `make soak` runs: the whole service under load and faults
# for SOAK_SECONDS (default 300), then a report; docs/soak.md explains it.
#
#  1. a private PostgreSQL under $PCF_SOAK_DIR, the demo zone imported and
#     its history up to the demo day loaded (deploy/lib.sh, as the demo);
#  2. tests/soak/soak.py starts pcf-ingest, two pcf-forecaster daemons,
#     pcf-publish and pcf-proxy, and for SOAK_SECONDS feeds historian files
#     and the live SCADA feed, requests runs, runs subscribers that come and
#     go and one that stays, and injects the faults of a schedule drawn from
#     SOAK_SEED: PostgreSQL restarted, the ingest worker and an engine killed
#     with SIGKILL and restarted;
#  3. it drains, prints the report and exits non-zero on any loss,
#     duplicate, run not done exactly once, or memory growth.
# Every process it starts is stopped on exit, whatever happens.
set -eu
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN=${PCF_BINDIR:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
DIR=${PCF_SOAK_DIR:-/tmp/pcf-soak}
PGPORT=${PCF_SOAK_PORT:-54339}
BASE=${PCF_SOAK_BASEPORT:-57200}   # HTTP, PUB, ROUTER, live SCADA, the proxy's XPUB: BASE..BASE+4; metrics BASE+5..+8
DURATION=${SOAK_SECONDS:-300}
SEED=${SOAK_SEED:-1}
SAMPLES=${SOAK_SAMPLES:-500}
ZONE=kestrel

. deploy/lib.sh
cleanup() {
    status=$?
    stop_all
    deploy/pg.sh stop "$DIR/pg" || true
    [ $status = 0 ] || echo "soak FAILED (exit $status); logs are in $DIR" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DIR/gen" "$DIR/inbox" "$DIR"/*.log "$DIR"/*.json
mkdir -p "$DIR/inbox/scada" "$DIR/inbox/outages"

step "soak: $DURATION s, seed $SEED; a private PostgreSQL in $DIR/pg (port $PGPORT)"
private_db pcf_soak

step "the demo zone, its weather and its history up to the demo day"
demo_zone $ZONE
start http $PY -m http.server "$BASE" --bind 127.0.0.1 --directory "$DIR/gen/weather"
demo_ingest_conf "$BASE" "tcp://127.0.0.1:$((BASE + 3))" >"$DIR/ingest.conf"
start ingest-history "$BIN/pcf-ingest" --config "$DIR/ingest.conf"
history=$LAST_PID
demo_feed_history "$DAY"
kill "$history"
wait "$history" || true
sql "ANALYZE"
echo "history loaded: demo day $DAY"

step "soak: daemons, workload and faults (tests/soak/soak.py; progress below, daemon logs in $DIR)"
$PY tests/soak/soak.py run --dir "$DIR" --bin "$BIN" --zone $ZONE --day "$DAY" \
    --pub "tcp://127.0.0.1:$((BASE + 1))" --router "tcp://127.0.0.1:$((BASE + 2))" \
    --live "tcp://127.0.0.1:$((BASE + 3))" --xpub "tcp://127.0.0.1:$((BASE + 4))" \
    --pgdir "$DIR/pg" --pgport "$PGPORT" --metrics_base $((BASE + 5)) --seconds "$DURATION" --seed "$SEED" --samples "$SAMPLES"
