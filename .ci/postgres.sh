#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the storage tests, print its admin
# URL on stdout, and leave it running; `.ci/postgres.sh stop DIR` stops it.
# Installs Debian's postgresql package when no server binaries are on the machine.
set -euo pipefail

if [ "${1:-}" = "stop" ]; then
    dir=$2
    runuser -u postgres -- "$(cat "$dir/bindir")/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    exit 0
fi

find_bindir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}
bindir=$(find_bindir || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
    echo "postgres: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
    bindir=$(find_bindir)
fi
id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent postgres

dir=$(mktemp -d /tmp/briefbot-pg.XXXXXX)
chown postgres "$dir"
echo "$bindir" > "$dir/bindir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
runuser -u postgres -- "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 >/dev/null
runuser -u postgres -- "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null
echo "$dir postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
