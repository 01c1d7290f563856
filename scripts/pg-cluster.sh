#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback, for tests and local multi-server runs (no Docker).
#   scripts/pg-cluster.sh start [DIR] [PORT]   prints DATABASE_URL=postgres://postgres@127.0.0.1:PORT/postgres
#   scripts/pg-cluster.sh stop  [DIR]
# Uses Debian's postgresql (apt-get install postgresql). initdb refuses to run as root, so as root
# the cluster runs as the postgres user.
set -euo pipefail
cmd=${1:-}
dir=${2:-${CUSTOS_PG_DIR:-/tmp/custos-pg}}
port=${3:-${CUSTOS_PG_PORT:-54329}}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ]; then echo "pg-cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 3; fi
as_pg() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}
case "$cmd" in
  start)
    if [ -f "$dir/postmaster.pid" ]; then as_pg "$bin/pg_ctl -D $dir -m immediate -w stop" >/dev/null 2>&1 || true; fi
    rm -rf "$dir"; mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$dir"
      # The postgres user must be able to reach the directory (a mkdtemp parent is 0700).
      parent=$(dirname "$dir"); [ "$parent" = /tmp ] || chmod o+x "$parent"
    fi
    as_pg "$bin/initdb -D $dir -U postgres --auth=trust -E UTF8 --no-locale" >/dev/null
    # Durable settings, as production would use; loopback only.
    as_pg "$bin/pg_ctl -D $dir -l $dir/log -w -o '-c listen_addresses=127.0.0.1 -p $port -k /tmp -c max_connections=200 -c fsync=on -c synchronous_commit=on' start" >/dev/null
    echo "DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -d "$dir" ]; then as_pg "$bin/pg_ctl -D $dir -m fast -w stop" >/dev/null 2>&1 || true; rm -rf "$dir"; fi
    ;;
  *)
    echo "usage: scripts/pg-cluster.sh start|stop [DIR] [PORT]" >&2; exit 2 ;;
esac
