#!/usr/bin/env bash
# The five services as background processes: logs in $RUNTIME_DIR/logs/<service>.log, pids in
# $RUNTIME_DIR/pids/<service>.pid. Starting is idempotent (a running service is left alone) and
# waits until every /readyz answers.
#
#   scripts/services.sh start [service...] | stop [service...] | status
#
# Services: command-api domain-engine data-sink streamer scheduler (default: all five).
# Environment: RUNTIME_DIR (.runtime), TODO_BIN (.build/release/todo), NATS_URL, DATABASE_URL,
# COMMAND_PORT (8080), STREAMER_PORT (8081), ENGINE_PORT (8082), SINK_PORT (8083), SCHEDULER_PORT
# (8084), the internal
# ports of command-api and the streamer (/readyz, /metrics: COMMAND_INTERNAL_PORT 9080,
# STREAMER_INTERNAL_PORT 9081), and anything the services read themselves (UI_ORIGIN, ...; see
# README). Token keys are created once in $RUNTIME_DIR/jwt (JWT_KEYS_DIR); passwords come from
# $RUNTIME_DIR/secrets (SECRETS_DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNTIME_DIR="${RUNTIME_DIR:-$ROOT/.runtime}"
case "$RUNTIME_DIR" in /*) ;; *) RUNTIME_DIR="$ROOT/$RUNTIME_DIR" ;; esac
TODO_BIN="${TODO_BIN:-$ROOT/.build/release/todo}"
case "$TODO_BIN" in /*) ;; *) TODO_BIN="$ROOT/$TODO_BIN" ;; esac
COMMAND_PORT="${COMMAND_PORT:-8080}"
STREAMER_PORT="${STREAMER_PORT:-8081}"
ENGINE_PORT="${ENGINE_PORT:-8082}"
SINK_PORT="${SINK_PORT:-8083}"
SCHEDULER_PORT="${SCHEDULER_PORT:-8084}"
COMMAND_INTERNAL_PORT="${COMMAND_INTERNAL_PORT:-9080}"
STREAMER_INTERNAL_PORT="${STREAMER_INTERNAL_PORT:-9081}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://app:password@127.0.0.1:5432/app?sslmode=disable}"
export RUNTIME_DIR
export JWT_KEYS_DIR="${JWT_KEYS_DIR:-$RUNTIME_DIR/jwt}"
export COMMAND_API_INTERNAL_ADDR="127.0.0.1:$COMMAND_INTERNAL_PORT" STREAMER_INTERNAL_ADDR="127.0.0.1:$STREAMER_INTERNAL_PORT"
export UI_ORIGIN="${UI_ORIGIN:-http://localhost:$STREAMER_PORT}"
# Unset: the browser reaches command-api on its own port; empty: on the page's origin (a gateway).
export COMMAND_API_URL="${COMMAND_API_URL-http://127.0.0.1:$COMMAND_PORT}"
SECRETS_DIR="${SECRETS_DIR:-$RUNTIME_DIR/secrets}"

LOGS="$RUNTIME_DIR/logs"
PIDS="$RUNTIME_DIR/pids"
ALL=(command-api domain-engine data-sink streamer scheduler)

say() { printf '%s\n' "services: $*" >&2; }
die() { say "error: $*"; exit 1; }

port_of() {
    case "$1" in
        command-api) echo "$COMMAND_PORT" ;;
        streamer) echo "$STREAMER_PORT" ;;
        domain-engine) echo "$ENGINE_PORT" ;;
        data-sink) echo "$SINK_PORT" ;;
        scheduler) echo "$SCHEDULER_PORT" ;;
        *) die "unknown service $1 (one of: ${ALL[*]})" ;;
    esac
}

# Where /readyz answers: the internal port of command-api and the streamer, the health port of the others.
ready_port_of() {
    case "$1" in
        command-api) echo "$COMMAND_INTERNAL_PORT" ;;
        streamer) echo "$STREAMER_INTERNAL_PORT" ;;
        *) port_of "$1" ;;
    esac
}

address_variable() {
    case "$1" in
        command-api) echo COMMAND_API_ADDR ;;
        streamer) echo STREAMER_ADDR ;;
        domain-engine) echo DOMAIN_ENGINE_HEALTH_ADDR ;;
        data-sink) echo DATA_SINK_HEALTH_ADDR ;;
        scheduler) echo SCHEDULER_HEALTH_ADDR ;;
    esac
}

# Alive and not a zombie (an unreaped child of a dead shell still answers kill -0).
running() {
    local pid_file="$PIDS/$1.pid" pid
    [ -f "$pid_file" ] || return 1
    pid="$(cat "$pid_file")"
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(awk "{print \$3}" "/proc/$pid/stat" 2>/dev/null)" != Z ]
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_one() {
    local service=$1 port
    port="$(port_of "$service")"
    if running "$service"; then say "$service already running (pid $(cat "$PIDS/$service.pid")) on :$port"; return; fi
    port_in_use "$port" && die "port $port is taken by another process; stop it or set the port variable"
    [ -x "$TODO_BIN" ] || die "$TODO_BIN is missing (run: make build-release)"
    mkdir -p "$LOGS" "$PIDS"
    # Each service is its own NATS user (scripts/infra.sh made the passwords).
    local credentials=()
    if [ -s "$SECRETS_DIR/nats-$service" ]; then
        credentials=("NATS_USER=$service" "NATS_PASSWORD_FILE=$SECRETS_DIR/nats-$service")
    fi
    # ... and its own Postgres user, a member of the role with its grants (migration 0007).
    local db_user="${service//-/_}"
    if [ -s "$SECRETS_DIR/pg-$db_user" ]; then
        credentials+=("DATABASE_URL=$(echo "$DATABASE_URL" | sed -E "s#^(postgres(ql)?://)[^@/]*@#\1$db_user:$(cat "$SECRETS_DIR/pg-$db_user")@#")")
    fi
    # setsid: the service gets its own session, so it outlives the shell that started it.
    env "${credentials[@]}" "$(address_variable "$service")=127.0.0.1:$port" setsid "$TODO_BIN" "$service" >>"$LOGS/$service.log" 2>&1 < /dev/null &
    echo $! > "$PIDS/$service.pid"
    say "$service started (pid $!) on :$port, log $LOGS/$service.log"
}

wait_ready() {
    local service=$1 port tries=0
    port="$(ready_port_of "$service")"
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
        running "$service" || die "$service exited; last lines of $LOGS/$service.log:$(printf '\n'; tail -n 20 "$LOGS/$service.log")"
        tries=$((tries + 1))
        [ $tries -lt 300 ] || die "$service not ready on :$port within 60 s (see $LOGS/$service.log)"
        sleep 0.2
    done
}

stop_one() {
    local service=$1 pid tries=0
    if ! running "$service"; then rm -f "$PIDS/$service.pid"; return; fi
    pid="$(cat "$PIDS/$service.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    # Graceful: the service finishes in-flight work; SIGKILL only after 30 s.
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        if [ $tries -ge 300 ]; then say "$service did not stop in 30 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; break; fi
        sleep 0.1
    done
    rm -f "$PIDS/$service.pid"
    say "$service stopped"
}

command="${1:-status}"
shift || true
services=("$@")
[ ${#services[@]} -gt 0 ] || services=("${ALL[@]}")

case "$command" in
    start)
        for service in "${services[@]}"; do start_one "$service"; done
        for service in "${services[@]}"; do wait_ready "$service"; done
        say "ready: ${services[*]}"
        ;;
    stop)
        for service in "${services[@]}"; do stop_one "$service"; done
        ;;
    status)
        for service in "${ALL[@]}"; do
            if running "$service"; then
                printf '  %-14s running  pid %-8s http://127.0.0.1:%s\n' "$service" "$(cat "$PIDS/$service.pid")" "$(port_of "$service")"
            else
                printf '  %-14s stopped\n' "$service"
            fi
        done
        ;;
    *) die "usage: $0 start|stop|status [service...]" ;;
esac
