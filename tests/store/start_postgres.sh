#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the store tests and print its URL on stdout.
#
#   export QAFLOW_TEST_PG="$(bash tests/store/start_postgres.sh)"
#
# Installs Debian's postgresql (quietly) only when no server binaries are found. Idempotent: when the
# cluster is already running it only prints the URL. Settings: QAFLOW_PG_PORT (54329), QAFLOW_PG_DIR
# (/tmp/qaflow-pg). Everything but the URL goes to stderr.
set -euo pipefail

PORT="${QAFLOW_PG_PORT:-54329}"
DIR="${QAFLOW_PG_DIR:-/tmp/qaflow-pg}"
DB="qaflow_test"
USER_NAME="postgres"

log() { echo "start_postgres: $*" >&2; }

find_bindir() {
    local initdb
    initdb="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$initdb" ]; then dirname "$initdb"; return; fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then dirname "$(command -v initdb)"; fi
}

BIN="$(find_bindir)"
if [ -z "$BIN" ]; then
    log "installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
    BIN="$(find_bindir)"
    [ -n "$BIN" ] || { log "postgresql installed but initdb not found"; exit 1; }
fi

# The server refuses to run as root: run it as the postgres user (created by Debian's package).
if [ "$(id -u)" = "0" ]; then
    id -u "$USER_NAME" >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$USER_NAME"
    as_pg() { runuser -u "$USER_NAME" -- "$@"; }
else
    USER_NAME="$(id -un)"
    as_pg() { "$@"; }
fi

mkdir -p "$DIR"
if [ "$(id -u)" = "0" ]; then chown "$USER_NAME" "$DIR"; fi
chmod 700 "$DIR"

if [ ! -f "$DIR/PG_VERSION" ]; then
    log "initialising a cluster in $DIR"
    as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
        || as_pg "$BIN/initdb" -D "$DIR" -U postgres --auth=trust -E UTF8 --locale=C >&2
fi

if as_pg "$BIN/pg_ctl" -D "$DIR" status >/dev/null 2>&1; then
    log "already running in $DIR"
else
    log "starting on 127.0.0.1:$PORT"
    as_pg "$BIN/pg_ctl" -D "$DIR" -l "$DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c max_connections=200" start >&2 \
        || { cat "$DIR/server.log" >&2 || true; exit 1; }
fi

PSQL=("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
if [ "$("${PSQL[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    "${PSQL[@]}" -c "CREATE DATABASE $DB" >&2
fi

echo "postgresql://postgres@127.0.0.1:$PORT/$DB"
