#!/usr/bin/env bash
# Throw-away PostgreSQL and Redis servers on loopback for the store and spend tests.
#
#   eval "$(scripts/services.sh start)"   # installs them if missing (apt-get), starts both,
#                                         # prints the CTXBUDGET_TEST_*_URL exports
#   scripts/services.sh stop              # stops both and deletes their data
#
# Data lives in $CTXBUDGET_SERVICES_DIR (default /tmp/ctxbudget-services); ports are
# $CTXBUDGET_PG_PORT / $CTXBUDGET_REDIS_PORT (default 55432 / 56379, or a free port when
# taken). PostgreSQL refuses to run as root, so as root it runs as the `postgres` user.
# Everything but the export lines goes to stderr, so `eval` sees only the exports.
set -euo pipefail

DIR="${CTXBUDGET_SERVICES_DIR:-/tmp/ctxbudget-services}"
PG_DB=ctxbudget_test
PG_USER=ctxbudget

log() { echo "services: $*" >&2; }

as_pg() {
  # run a command as the postgres user when we are root, else as ourselves
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  # the preferred port when nothing listens on it, else one the kernel picks
  python3 - "$1" <<'EOF'
import socket, sys
preferred = int(sys.argv[1])
for port in (preferred, 0):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
EOF
}

pg_bin() {
  # pg_ctl / initdb from PATH, else the newest Debian install
  if command -v pg_ctl > /dev/null && command -v initdb > /dev/null; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return
  fi
  local found
  found="$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1 || true)"
  [ -n "$found" ] && echo "$found"
}

install_missing() {
  local packages=()
  [ -n "$(pg_bin)" ] || packages+=(postgresql)
  command -v redis-server > /dev/null || packages+=(redis-server)
  [ ${#packages[@]} -eq 0 ] && return
  if ! command -v apt-get > /dev/null; then
    log "missing ${packages[*]} and no apt-get: install them, or point CTXBUDGET_TEST_POSTGRES_URL / CTXBUDGET_TEST_REDIS_URL at your own servers"
    exit 1
  fi
  log "installing ${packages[*]} (apt-get)"
  (apt-get update -q || true) > /dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" > /dev/null
}

start_postgres() {
  local bin port
  bin="$(pg_bin)"
  port="$(free_port "${CTXBUDGET_PG_PORT:-55432}")"
  mkdir -p "$DIR/pg"
  [ "$(id -u)" = 0 ] && chown -R postgres "$DIR/pg"
  as_pg "$bin/initdb" -D "$DIR/pg/data" -U "$PG_USER" --auth=trust -E UTF8 > "$DIR/pg/initdb.log" 2>&1
  as_pg "$bin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 \
    -o "-p $port -k $DIR/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start > /dev/null
  as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$PG_USER" "$PG_DB"
  echo "$port" > "$DIR/pg/port"
  log "postgresql on 127.0.0.1:$port"
  echo "export CTXBUDGET_TEST_POSTGRES_URL=postgresql://$PG_USER@127.0.0.1:$port/$PG_DB"
}

start_redis() {
  local port
  port="$(free_port "${CTXBUDGET_REDIS_PORT:-56379}")"
  mkdir -p "$DIR/redis"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$DIR/redis" \
    --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/server.log" \
    --appendonly yes --appendfsync everysec --save "" > /dev/null
  for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p "$port" ping > /dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$port" ping > /dev/null
  echo "$port" > "$DIR/redis/port"
  log "redis on 127.0.0.1:$port"
  echo "export CTXBUDGET_TEST_REDIS_URL=redis://127.0.0.1:$port/0"
}

stop() {
  local bin
  bin="$(pg_bin || true)"
  if [ -f "$DIR/pg/data/postmaster.pid" ] && [ -n "$bin" ]; then
    as_pg "$bin/pg_ctl" -D "$DIR/pg/data" -m fast -w stop > /dev/null 2>&1 || true
    log "postgresql stopped"
  fi
  if [ -f "$DIR/redis/port" ]; then
    local pid=""
    [ -f "$DIR/redis/redis.pid" ] && pid="$(cat "$DIR/redis/redis.pid")"
    redis-cli -h 127.0.0.1 -p "$(cat "$DIR/redis/port")" shutdown nosave > /dev/null 2>&1 || true
    for _ in $(seq 50); do  # wait until it is gone, so a restart gets the same port
      [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null || break
      sleep 0.1
    done
    log "redis stopped"
  fi
  rm -rf "$DIR"
}

case "${1:-}" in
  start)
    stop
    install_missing
    mkdir -p "$DIR"
    chmod 755 "$DIR"
    start_postgres
    start_redis
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
