# lib.sh -- shell helpers shared by deploy/demo.sh and tests/soak/soak.sh
# (sourced, not run).
#
# The caller sets DIR (where logs go) and BIN (the programs) before using
# them.  start() remembers every process it starts in PIDS so stop_all() can
# end them, whatever happened; sql() and wait_for() talk to the database the
# PG* environment variables name.  demo_zone() generates and imports the
# Kestrel Cross demo zone, demo_ingest_conf() writes the ingest worker's
# configuration for it: the demo and the soak test run the same service.

PY=${PY:-/usr/bin/python3}          # Debian's, with python3-zmq and python3-protobuf
PIDS=""

step() { printf '\n==> %s\n' "$*"; }

start() {   # start NAME CMD...: runs CMD in the background, logging to $DIR/NAME.log
    name=$1; shift
    "$@" >"$DIR/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS="$PIDS $LAST_PID"
    echo "started $name (pid $LAST_PID, log $DIR/$name.log)"
}

stop_all() {   # SIGTERM to every process start() started, then wait for them
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}

sql() { psql -qAtX -c "$1"; }

wait_for() {  # wait_for SECONDS WHAT SQL-returning-t
    n=0
    until [ "$(sql "$3")" = t ]; do
        n=$((n + 1))
        if [ $n -gt $(($1 * 2)) ]; then echo "timed out waiting for $2" >&2; return 1; fi
        sleep 0.5
    done
}

# demo_zone ZONE: generates the demo zone into $DIR/gen (deterministic) and
# imports its model into the database; sets DAY to the demo day.
demo_zone() {
    $PY deploy/demo/gen_zone.py --out "$DIR/gen" >"$DIR/gen.log"
    DAY=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['demo_day'])" "$DIR/gen/manifest.json")
    "$BIN/pcf-db" migrate
    Z="$DIR/gen/zone"
    awk -F, 'NR == 1 { print "equipment_id,branch"; next } $2 != "" { print $2 "," $2 }' "$Z/branches.csv" >"$Z/equipment.csv"
    "$BIN/pcf-db" import-matpower --zone "$1" --name "Kestrel Cross" "$Z/kestrel_cross.m"
    "$BIN/pcf-db" import-der --zone "$1" "$Z"
    "$BIN/pcf-db" import-anm --zone "$1" "$Z"
    "$BIN/pcf-db" import-points --zone "$1" "$Z/points.csv"
}

# demo_ingest_conf HTTP_PORT LIVE_ENDPOINT: the ingest worker's configuration
# on stdout: historian and outage inboxes under $DIR/inbox, the live SCADA
# PULL socket, and the demo weather served on http://127.0.0.1:HTTP_PORT.
demo_ingest_conf() {
    locs=$(awk -F, 'NR > 1 { printf "%s%s", (n++ ? ", " : ""), $1 }' "$DIR/gen/zone/weather_locations.csv")
    echo "[database]"
    echo "conninfo ="
    echo "[source historian]"
    echo "kind = scada"
    echo "directory = $DIR/inbox/scada"
    echo "poll_seconds = 1"
    echo "[source outages]"
    echo "kind = outage_json"
    echo "directory = $DIR/inbox/outages"
    echo "poll_seconds = 1"
    echo "[source gateways]"
    echo "kind = scada_zmq"
    echo "endpoint = $2"
    echo "poll_seconds = 1"
    for f in "$DIR"/gen/weather/*.json; do
        b=$(basename "$f" .json)
        case "$b" in archive_*) model=era5 ;; ensemble_*) model=ecmwf_ifs025 ;; *) model=best_match ;; esac
        echo "[source wx-$b]"
        echo "kind = openmeteo"
        echo "url = http://127.0.0.1:$1/$b.json"
        echo "locations = $locs"
        echo "model = $model"
        echo "poll_seconds = 86400"
        echo "timeout_seconds = 30"
    done
}

# demo_history_until DAY: drops the historian files (whole months, and the
# month of DAY up to DAY) into the inbox; echoes how many files.
demo_history_until() {
    cutoff="${1}T00:00"
    month=$(echo "$1" | cut -c1-7)
    n=0
    for f in "$DIR"/gen/scada/historian_*.csv; do
        m=$(basename "$f" .csv | sed 's/historian_//')
        if [ "$m" \< "$month" ]; then
            cp "$f" "$DIR/inbox/scada/.$m.tmp" && mv "$DIR/inbox/scada/.$m.tmp" "$DIR/inbox/scada/$m.csv"
            n=$((n + 1))
        elif [ "$m" = "$month" ]; then
            awk -F, -v c="$cutoff" 'NR == 1 || substr($1, 1, 16) < c' "$f" >"$DIR/inbox/scada/.$m.tmp"
            mv "$DIR/inbox/scada/.$m.tmp" "$DIR/inbox/scada/$m-part.csv"
            n=$((n + 1))
        fi
    done
    echo $n
}
