#!/usr/bin/env bash
# Runs a command against a complete system of its own — nats-server, Postgres and the five
# services as processes — on ports that never meet the development stack's, then tears it down.
#
#   scripts/e2e-stack.sh <command> [args...]
#
# State in .runtime/<stack>-stack (logs in .runtime/<stack>-stack/logs). TODO_BIN picks the binary. The command sees COMMAND_API_URL, STREAMER_URL and the
# variables scripts/services.sh needs, so it can kill and restart services itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# STACK=e2e (default): tests, debug build, ports 16xxx. STACK=bench: `make bench-e2e`, release
# build, ports 26xxx, limits raised so that one load generator is not throttled as one client.
case "${STACK:-e2e}" in
    e2e) base=16; export TODO_BIN="${TODO_BIN:-.build/debug/todo}" BCRYPT_COST=6 ;;
    bench) base=26; export TODO_BIN="${TODO_BIN:-.build/release/todo}" REQUEST_RATE_PER_SECOND=10000000 ;;
    *) echo "STACK must be e2e or bench" >&2; exit 2 ;;
esac
export RUNTIME_DIR=".runtime/${STACK:-e2e}-stack" E2E_RUNTIME_DIR=".runtime/${STACK:-e2e}-stack"
export NATS_PORT=${base}222 NATS_MONITOR_PORT=${base}822 PG_PORT=${base}432
export NATS_URL=nats://127.0.0.1:${base}222
export DATABASE_URL="postgres://app:password@127.0.0.1:${base}432/app?sslmode=disable"
export COMMAND_PORT=${base}080 STREAMER_PORT=${base}081 ENGINE_PORT=${base}082 SINK_PORT=${base}083 SCHEDULER_PORT=${base}084
export COMMAND_INTERNAL_PORT=${base}090 STREAMER_INTERNAL_PORT=${base}091
export COMMAND_API_URL=http://127.0.0.1:${base}080 STREAMER_URL=http://127.0.0.1:${base}081
export UI_ORIGIN=http://127.0.0.1:${base}081
# Tests register many users from one address and send commands as fast as they can.
export AUTH_RATE_PER_MINUTE=100000 COMMAND_RATE_PER_SECOND=100000 REQUEST_RATE_PER_SECOND=${REQUEST_RATE_PER_SECOND:-100000}
export READ_RATE_PER_SECOND=${READ_RATE_PER_SECOND:-100000} READ_RATE_PER_SECOND_PER_USER=${READ_RATE_PER_SECOND_PER_USER:-100000}

teardown() {
    status=$?
    scripts/services.sh stop || true
    scripts/infra.sh stop || true
    [ $status = 0 ] || echo "e2e-stack: failed (exit $status); service logs are in $RUNTIME_DIR/logs" >&2
    exit $status
}
trap teardown EXIT

scripts/infra.sh start
# Where this run's part of nats-server's log begins (the security suite reads the permission violations).
NATS_LOG_START=$(stat -c %s "$RUNTIME_DIR/logs/nats-server.log" 2>/dev/null || echo 0)
export NATS_LOG_START
# Streams are the admin's; the services each speak as their own NATS user (scripts/services.sh).
NATS_USER=admin NATS_PASSWORD_FILE="$RUNTIME_DIR/secrets/nats-admin" "$TODO_BIN" ensure-streams >/dev/null
NATS_ADMIN_URL="nats://admin:$(cat "$RUNTIME_DIR/secrets/nats-admin")@127.0.0.1:${base}222"
export NATS_ADMIN_URL
"$TODO_BIN" migrate >/dev/null
scripts/services.sh start
"$@"
