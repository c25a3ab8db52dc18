#!/bin/sh
# Installs every Debian 12 package the project needs to build, test and run.
#
# Idempotent: it asks dpkg which packages are missing and does nothing when none
# are.  When another apt/dpkg holds the lock (unattended-upgrades on a fresh
# machine, a second session) it waits and retries instead of failing.
# Run as root, or through sudo when it is available.
set -eu

PACKAGES="
build-essential pkg-config make gcc clang
libpq-dev postgresql-15 postgresql-client-15
libzmq3-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
python3 python3-zmq python3-protobuf
libgsl-dev libopenblas-dev
libsuitesparse-dev
libcriterion-dev
libcurl4-openssl-dev curl
libmicrohttpd-dev
libjansson-dev
libinih-dev
libcairo2-dev
valgrind
"

missing=""
for p in $PACKAGES; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -z "$missing" ]; then
    [ "${1:-}" = "-q" ] || echo "install-deps: all packages present"
    exit 0
fi

echo "install-deps: installing:$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "install-deps: not root and no sudo; install these packages:$missing" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# apt-get exits 100 when the lock is held; wait up to ~10 minutes for it.
retry() {
    n=0
    until "$@"; do
        n=$((n + 1))
        if [ $n -ge 60 ]; then
            echo "install-deps: giving up after $n attempts: $*" >&2
            return 1
        fi
        echo "install-deps: apt busy or failed, retrying in 10 s ($n/60)" >&2
        sleep 10
    done
}

retry $SUDO apt-get -o DPkg::Lock::Timeout=60 update -q
# shellcheck disable=SC2086
retry $SUDO apt-get -o DPkg::Lock::Timeout=60 install -y -q --no-install-recommends $missing
echo "install-deps: done"
