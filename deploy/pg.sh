#!/bin/sh
# pg.sh start|stop|status DIR [PORT] -- a private PostgreSQL for tests and the demo.
#
# The cluster lives in DIR/data, listens only on a Unix socket in DIR (no TCP),
# and is owned by the `postgres` user because initdb refuses to run as root.
# `start` creates the cluster on first use and is a no-op when it is running;
# `stop` is a no-op when it is not.  Connect with: host=DIR port=PORT user=postgres
set -eu
cmd=${1:?usage: pg.sh start|stop|status DIR [PORT]}
dir=${2:?usage: pg.sh start|stop|status DIR [PORT]}
port=${3:-54329}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "pg.sh: PostgreSQL server not installed (deploy/install-deps.sh)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$cmd" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_owner "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
            --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    if as_owner "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then exit 0; fi
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-k $dir -p $port -c listen_addresses='' -c fsync=off -c max_connections=200 -c timezone=UTC" start >/dev/null \
        || { cat "$dir/server.log" >&2; exit 1; }
    ;;
stop)
    if [ -f "$dir/data/PG_VERSION" ] && as_owner "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
status)
    as_owner "$pgbin/pg_ctl" -D "$dir/data" status
    ;;
*)
    echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
