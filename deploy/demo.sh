#!/bin/sh
# demo.sh -- what `make demo` runs: the whole service on its embedded demo zone.
#
#  1. a private PostgreSQL under $PCF_DEMO_DIR (Unix socket only), schema migrated;
#  2. the Kestrel Cross demo zone generated (deploy/demo/gen_zone.py: a 132/33/11 kV
#     ANM zone, 35 sites, a year of SCADA and weather) and its model imported;
#  3. the ingest daemon loading the historian files, the outage schedule, and the
#     weather served in Open-Meteo's format by a local HTTP server;
#  4. the publisher and a subscriber; the engine daemon running the day-ahead
#     forecast of the demo day from the run queue;
#  5. the demo day's morning SCADA replayed through the live ZeroMQ gateway feed,
#     which makes the engine run a real-time forecast;
#  6. what the subscriber received, a statement fetched on request, and the
#     pictures (PCF heatmap, constraint flow quantiles).
# Every process it starts is stopped on exit, whatever happens.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${PCF_BINDIR:-bin}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
DIR=${PCF_DEMO_DIR:-/tmp/pcf-demo}
PGPORT=${PCF_DEMO_PORT:-54329}
BASE=${PCF_DEMO_BASEPORT:-57100}    # HTTP, PUB, ROUTER, the live SCADA feed and metrics use BASE..BASE+6
HTTP_PORT=$BASE
PUB="tcp://127.0.0.1:$((BASE + 1))"
ROUTER="tcp://127.0.0.1:$((BASE + 2))"
LIVE="tcp://127.0.0.1:$((BASE + 3))"
# Prometheus endpoints of ingest, engine and publisher (9464..9466 in a
# deployment; here next to the demo's other ports so they cannot collide)
M_INGEST=$((BASE + 4)) M_ENGINE=$((BASE + 5)) M_PUBLISH=$((BASE + 6))
# A few lines of one daemon's /metrics: "metrics PORT REGEX".
metrics() {
    curl -sf "http://127.0.0.1:$1/metrics" | grep -E "$2" | grep -v '^#' | head -n 12 | sed 's/^/  /' || true
}
ZONE=kestrel
SAMPLES=${PCF_DEMO_SAMPLES:-10000}

. deploy/lib.sh                      # start, stop_all, sql, wait_for, demo_zone, ...
cleanup() {
    status=$?
    step "stopping everything this demo started"
    stop_all
    deploy/pg.sh stop "$DIR/pg" || true
    [ $status = 0 ] || echo "demo FAILED (exit $status); logs are in $DIR" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$DIR/gen" "$DIR/inbox" "$DIR/plots" "$DIR"/*.log
mkdir -p "$DIR/inbox/scada" "$DIR/inbox/outages" "$DIR/plots"

step "starting a private PostgreSQL in $DIR/pg (Unix socket only, port $PGPORT)"
private_db pcf_demo

step "generating the Kestrel Cross demo zone (deterministic, seed fixed), applying the schema, importing it"
demo_zone $ZONE
echo "zone model in $DIR/gen/zone, a year of SCADA and weather; demo day $DAY"

step "serving the weather in Open-Meteo's format on http://127.0.0.1:$HTTP_PORT"
start http $PY -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$DIR/gen/weather"
demo_ingest_conf "$HTTP_PORT" "$LIVE" >"$DIR/ingest.conf"
echo "ingest configuration: $DIR/ingest.conf"

step "starting the publisher, a subscriber and the ingest daemon"
start publisher "$BIN/pcf-publish" --pub "$PUB" --router "$ROUTER" --heartbeat-ms 1000 --metrics-port $M_PUBLISH
sleep 0.5
start subscriber "$BIN/pcf-sub" --pub "$PUB" --router "$ROUTER" --format table pcf. cs. cb.
start ingest "$BIN/pcf-ingest" --config "$DIR/ingest.conf" --metrics-port $M_INGEST

step "feeding the SCADA history (historian files up to the day before $DAY) and the outage schedule"
# The demo day's SCADA is held back: it arrives later through the live feed.
demo_feed_history "$DAY"
psql -X -P pager=off -c "
SELECT feed, count(*) AS inputs, sum(rows_loaded) AS rows_loaded, sum(rows_quarantined) AS quarantined
  FROM ingest_batch GROUP BY feed ORDER BY feed;"
ls "$DIR/inbox/scada/failed" 2>/dev/null | sed 's/^/refused: /' || true
echo "ingest metrics (curl http://127.0.0.1:$M_INGEST/metrics):"
metrics $M_INGEST '^pcf_ingest_(rows_total|rows_quarantined_total|inputs_total|load_seconds_count)'

# After a bulk back-fill, fresh statistics (autovacuum would catch up later).
sql "ANALYZE" 

step "starting the engine daemon; day-ahead forecast of $DAY ($SAMPLES samples per SP, credible N-1 faults)"
# Started after the back-fill, so the history's arrival does not trigger
# real-time runs for the past; from now on fresh SCADA does.
start engine "$BIN/pcf-forecaster" daemon --zones $ZONE --day-ahead-at 23:59 --debounce-ms 1500 \
    --samples "$SAMPLES" --name demo-engine --metrics-port $M_ENGINE
"$BIN/pcf-forecaster" queue --zone $ZONE --day-ahead "$DAY" >/dev/null
wait_for 600 "the day-ahead run" "SELECT count(*) > 0 FROM run WHERE kind = 'day_ahead' AND finished_at IS NOT NULL"
grep 'run committed' "$DIR/engine.log" | tail -n 1
psql -X -P pager=off -c "
SELECT p.site_id, max(e.lifo_position) AS lifo, round(max(p.p_curtailed)::numeric, 3) AS max_pcf,
       round(sum(p.expected_curtailed_mwh)::numeric, 2) AS exp_curtailed_mwh,
       round(min(p.firm95_mw)::numeric, 2) AS min_firm95_mw
  FROM pcf_result p JOIN run r USING (run_id) JOIN der_enquiry e USING (site_id)
 WHERE r.kind = 'day_ahead' GROUP BY p.site_id
HAVING sum(p.expected_curtailed_mwh) > 0 ORDER BY 4 DESC LIMIT 12;"

step "replaying the morning of $DAY through the live SCADA feed (ZeroMQ, protobuf, from Python)"
to_local() { $PY -c "import datetime as d, zoneinfo as z, sys; print(d.datetime.fromisoformat(sys.argv[1]).replace(tzinfo=z.ZoneInfo('Europe/London')).isoformat())" "$1"; }
$PY deploy/replay_scada.py --endpoint "$LIVE" --from "$(to_local "${DAY}T00:00")" --to "$(to_local "${DAY}T11:00")" \
    --rate 40 "$DIR"/gen/scada/historian_"$(echo "$DAY" | cut -c1-7)".csv
wait_for 300 "a real-time run after the live SCADA" \
    "SELECT count(*) > 0 FROM run WHERE kind = 'real_time' AND finished_at IS NOT NULL AND horizon_start >= '$DAY'"
sleep 1
grep 'run committed' "$DIR/engine.log" | tail -n 1
echo "engine metrics (curl http://127.0.0.1:$M_ENGINE/metrics):"
metrics $M_ENGINE '^pcf_forecaster_(runs_|run_seconds_(sum|count)|queue_depth)'
echo "publisher metrics (curl http://127.0.0.1:$M_PUBLISH/metrics):"
metrics $M_PUBLISH '^pcf_publish_(subscribers|messages_total|lag_seconds_(sum|count)|requests_total)'

step "what the subscriber received"
grep -c . "$DIR/subscriber.log" | sed 's/^/lines received: /'
head -n 25 "$DIR/subscriber.log"
echo "..."

step "a DSO planner's request: the day-ahead statement of $DAY, served from PostgreSQL"
"$BIN/pcf-sub" --router "$ROUTER" statement --zone $ZONE --date "$DAY" | head -n 20

step "pictures"
"$BIN/pcf-plot" --zone $ZONE --out "$DIR/plots"

step "done: logs and data in $DIR"
