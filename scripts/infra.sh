#!/usr/bin/env bash
# Local infrastructure: nats-server with JetStream and a throwaway Postgres cluster, both on
# loopback, state under $RUNTIME_DIR (default .runtime): data/, logs/, pids/.
#
#   scripts/infra.sh start | stop | status | start-nats | stop-nats | start-postgres | stop-postgres |
#                    restart-postgres | psql | nats-password <user>
#
# nats-server runs with a user per service and the subjects each may publish and subscribe to
# (infrastructure/nats/permissions.conf, shared with the Kubernetes manifests); the passwords are random, made
# once in $RUNTIME_DIR/secrets/nats-<user> (mode 0600). `admin` (streams, tests, operators'
# tools) may do anything.
#
# Environment: RUNTIME_DIR, NATS_PORT (4222), NATS_MONITOR_PORT (8222), PG_PORT (5432),
# APP_DB_PASSWORD (password), NATS_GOMAXPROCS (half the cores, at least 1), SECRETS_DIR
# ($RUNTIME_DIR/secrets). `make test` runs a second instance on other ports with its own
# RUNTIME_DIR, so it never touches a development stack. For a node of a NATS cluster
# (scripts/cluster.sh): NATS_CLUSTER_PORT, NATS_ROUTES (comma-separated nats-route:// URLs),
# NATS_SERVER_NAME, NATS_HOST (the address it listens on, 127.0.0.1) and NATS_NETNS (a network
# namespace to run it in, made by scripts/cluster.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME_DIR="${RUNTIME_DIR:-$ROOT/.runtime}"
case "$RUNTIME_DIR" in /*) ;; *) RUNTIME_DIR="$ROOT/$RUNTIME_DIR" ;; esac
NATS_PORT="${NATS_PORT:-4222}"
NATS_MONITOR_PORT="${NATS_MONITOR_PORT:-8222}"
NATS_HOST="${NATS_HOST:-127.0.0.1}"
NATS_NETNS="${NATS_NETNS:-}"
PG_PORT="${PG_PORT:-5432}"
APP_DB_PASSWORD="${APP_DB_PASSWORD:-password}"
# nats-server shares the machine with Postgres and the four services. Go's scheduler with a
# processor per core spins looking for work whenever a goroutine wakes another, which under a
# steady trickle of small messages costs CPU the other processes need: on 2 cores, 1 instead of
# 2 cut nats-server's CPU per command by ~13% at 1,000–2,000 commands/s, with the same raw
# JetStream rates and catch-up (bench/results/2026-11-22-e2e.md).
cores=$(nproc 2>/dev/null || echo 2)
NATS_GOMAXPROCS="${NATS_GOMAXPROCS:-$(( cores / 2 > 0 ? cores / 2 : 1 ))}"

DATA="$RUNTIME_DIR/data"
LOGS="$RUNTIME_DIR/logs"
PIDS="$RUNTIME_DIR/pids"
PGDATA="$DATA/postgres"
PGSOCK="$RUNTIME_DIR/run/postgres"
NATS_PID="$PIDS/nats-server.pid"

say() { printf '%s\n' "infra: $*" >&2; }
die() { say "error: $*"; exit 1; }

pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [ -n "$dir" ] || die "PostgreSQL is not installed (run: make deps)"
    echo "$dir"
}

as_postgres() { runuser -u postgres -- "$@"; }

port_in_use() {
    # True when something accepts TCP connections on ${2:-127.0.0.1}:$1.
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

nats_running() { [ -f "$NATS_PID" ] && kill -0 "$(cat "$NATS_PID")" 2>/dev/null; }
pg_running() { [ -f "$PGDATA/postmaster.pid" ] && as_postgres "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }

wait_for_port() {
    local port=$1 what=$2 host=${3:-127.0.0.1} tries=0
    until port_in_use "$port" "$host"; do
        tries=$((tries + 1))
        [ $tries -lt 150 ] || die "$what did not start listening on $host:$port within 15 s (see $LOGS)"
        sleep 0.1
    done
}

NATS_USERS=(admin command-api domain-engine data-sink streamer scheduler)

# A random secret in $RUNTIME_DIR/secrets/<name> (mode 0600), created on first use.
secret() {
    local dir="${SECRETS_DIR:-$RUNTIME_DIR/secrets}"
    local file="$dir/$1"
    if [ ! -s "$file" ]; then
        mkdir -p "$dir" && chmod 700 "$dir"
        (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file")
    fi
    cat "$file"
}

# The password of a NATS user; of a service's Postgres login user.
nats_password() { secret "nats-$1"; }
pg_password() { secret "pg-$1"; }

# nats-server's configuration: listeners, JetStream, and the users with their permissions.
write_nats_config() {
    local conf="$DATA/nats/nats.conf" user variable
    (umask 077; {
        printf 'port: %s\nhttp: "%s:%s"\nhost: %s\nserver_name: "%s"\n' "$NATS_PORT" "$NATS_HOST" "$NATS_MONITOR_PORT" "$NATS_HOST" \
            "${NATS_SERVER_NAME:-local-$NATS_PORT}"
        printf 'jetstream { store_dir: "%s" }\n' "$DATA/nats"
        if [ -n "${NATS_CLUSTER_PORT:-}" ]; then
            # One of the nodes of a local cluster: routes to every node (its own is skipped).
            printf 'cluster { name: "todo-local", host: %s, port: %s, routes: [%s] }\n' "$NATS_HOST" "$NATS_CLUSTER_PORT" \
                "$(echo "${NATS_ROUTES:?NATS_ROUTES is required with NATS_CLUSTER_PORT}" | sed 's/[^,][^,]*/"&"/g')"
        fi
        for user in "${NATS_USERS[@]}"; do
            variable="$(echo "$user" | tr 'a-z-' 'A-Z_')_PASSWORD"
            printf '%s: "%s"\n' "$variable" "$(nats_password "$user")"
        done
        cat "$ROOT/infrastructure/nats/permissions.conf"
    } > "$conf")
    echo "$conf"
}

start_nats() {
    command -v nats-server >/dev/null || die "nats-server is not installed (run: make deps)"
    if nats_running; then say "nats-server already running (pid $(cat "$NATS_PID")) on $NATS_HOST:$NATS_PORT"; return; fi
    port_in_use "$NATS_PORT" "$NATS_HOST" && die "port $NATS_PORT is taken by another process; set NATS_PORT or stop it"
    port_in_use "$NATS_MONITOR_PORT" "$NATS_HOST" && die "port $NATS_MONITOR_PORT is taken by another process; set NATS_MONITOR_PORT or stop it"
    mkdir -p "$DATA/nats" "$LOGS" "$PIDS"
    local conf; conf="$(write_nats_config)"
    # setsid: its own session, so it outlives the shell (and process group) that started it.
    local netns=()
    [ -z "$NATS_NETNS" ] || netns=(ip netns exec "$NATS_NETNS")
    GOMAXPROCS="$NATS_GOMAXPROCS" ${netns[@]+"${netns[@]}"} setsid nats-server -c "$conf" --pid "$NATS_PID" --log "$LOGS/nats-server.log" \
        </dev/null >>"$LOGS/nats-server.out" 2>&1 &
    disown || true
    wait_for_port "$NATS_PORT" "nats-server" "$NATS_HOST"
    say "nats-server with JetStream on nats://$NATS_HOST:$NATS_PORT (monitoring http://$NATS_HOST:$NATS_MONITOR_PORT)${NATS_NETNS:+ in network namespace $NATS_NETNS}, a user per service"
}

init_postgres() {
    local bin; bin="$(pg_bin)"
    mkdir -p "$DATA" "$LOGS" "$PIDS" "$PGSOCK"
    chown postgres:postgres "$PGSOCK"
    # The server runs as the postgres user, which must pass through every folder above the data
    # directory. A checkout in a private folder (mktemp -d, a home directory) blocks it: grant
    # traversal only (o+x, not read) to the folders that lack it, from the root down, and say so.
    if ! as_postgres test -x "$DATA"; then
        local path="" part
        local IFS=/
        for part in $DATA; do
            [ -n "$part" ] || continue
            path="$path/$part"
            if ! as_postgres test -x "$path"; then
                chmod o+x "$path" && say "granted the postgres user passage through $path (chmod o+x)"
            fi
        done
        as_postgres test -x "$DATA" || die "the postgres user cannot reach $DATA"
    fi
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        mkdir -p "$PGDATA"
        chown postgres:postgres "$PGDATA"
        chmod 700 "$PGDATA"
        # Trust only on the private unix socket (for this script); TCP needs a password.
        as_postgres "$bin/initdb" -D "$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
            --encoding=UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 || die "initdb failed (see $LOGS/initdb.log)"
        cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGSOCK'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
logging_collector = off
CONF
    fi
}

start_postgres() {
    local bin; bin="$(pg_bin)"
    if pg_running; then ensure_app_database; say "postgres already running on 127.0.0.1:$PG_PORT"; return; fi
    port_in_use "$PG_PORT" && die "port $PG_PORT is taken by another process; set PG_PORT or stop it"
    init_postgres
    touch "$LOGS/postgres.log"; chown postgres:postgres "$LOGS/postgres.log"
    as_postgres "$bin/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -o "-p $PG_PORT -k $PGSOCK" -w -t 30 start >/dev/null \
        || die "postgres did not start (see $LOGS/postgres.log)"
    ln -sf "$PGDATA/postmaster.pid" "$PIDS/postgres.pid"
    ensure_app_database
    say "postgres on postgres://app:***@127.0.0.1:$PG_PORT/app"
}

ensure_app_database() {
    local psql=(as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PG_PORT" -U postgres)
    "${psql[@]}" -d postgres -v pw="$APP_DB_PASSWORD" <<'SQL'
SELECT 'CREATE ROLE app LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app')\gexec
-- app owns the tables and runs the migrations, which create the services' roles.
ALTER ROLE app WITH LOGIN CREATEROLE PASSWORD :'pw';
SELECT 'CREATE DATABASE app OWNER app' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'app')\gexec
SQL
    # A login user per service, a member of its role (the role's grants come with the migrations).
    local user role
    for user in command_api data_sink streamer scheduler; do
        role="todo_$user"
        "${psql[@]}" -d postgres -v user="$user" -v role="$role" -v pw="$(pg_password "$user")" <<'SQL'
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I NOLOGIN', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')\gexec
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user')\gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'user', :'pw')\gexec
SELECT format('GRANT %I TO %I', :'role', :'user')\gexec
SQL
    done
}

stop_nats() {
    if nats_running; then
        local pid; pid="$(cat "$NATS_PID")"
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        say "nats-server stopped"
    fi
    rm -f "$NATS_PID"
}

stop_postgres() {
    if pg_running; then
        as_postgres "$(pg_bin)/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
        say "postgres stopped"
    fi
    rm -f "$PIDS/postgres.pid"
}

status() {
    if nats_running; then echo "nats-server  running  pid $(cat "$NATS_PID")  nats://$NATS_HOST:$NATS_PORT"; else echo "nats-server  stopped"; fi
    if pg_running; then echo "postgres     running  pid $(head -1 "$PGDATA/postmaster.pid")  127.0.0.1:$PG_PORT"; else echo "postgres     stopped"; fi
}

case "${1:-}" in
    start) start_nats; start_postgres ;;
    stop) stop_nats; stop_postgres ;;
    status) status ;;
    start-nats) start_nats ;;
    stop-nats) stop_nats ;;
    start-postgres) start_postgres ;;
    stop-postgres) stop_postgres ;;
    restart-postgres)
        as_postgres "$(pg_bin)/pg_ctl" -D "$PGDATA" -l "$LOGS/postgres.log" -o "-p $PG_PORT -k $PGSOCK" -m fast -w -t 30 restart >/dev/null
        say "postgres restarted" ;;
    nats-password) nats_password "${2:?usage: $0 nats-password <user>}" ;;
    psql) shift; exec runuser -u postgres -- psql -X -h "$PGSOCK" -p "$PG_PORT" -U postgres -d app "$@" ;;
    *) echo "usage: $0 start|stop|status|start-nats|stop-nats|start-postgres|stop-postgres|restart-postgres|psql|nats-password <user>" >&2; exit 2 ;;
esac
