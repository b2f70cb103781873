#!/usr/bin/env bash
# Runs a command against a complete system of its own — nats-server, Postgres and the four
# services as processes — on ports that never meet the development stack's, then tears it down.
#
#   scripts/e2e-stack.sh <command> [args...]
#
# State in .runtime/e2e (logs in .runtime/e2e/logs). TODO_BIN picks the binary (default: the debug
# build `make test-unit` leaves behind). The command sees COMMAND_API_URL, STREAMER_URL and the
# variables scripts/services.sh needs, so it can kill and restart services itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export RUNTIME_DIR=.runtime/e2e E2E_RUNTIME_DIR=.runtime/e2e
export NATS_PORT=16222 NATS_MONITOR_PORT=16822 PG_PORT=16432
export TODO_BIN="${TODO_BIN:-.build/debug/todo}"
export NATS_URL=nats://127.0.0.1:16222
export DATABASE_URL='postgres://app:password@127.0.0.1:16432/app?sslmode=disable'
export COMMAND_PORT=16080 STREAMER_PORT=16081 ENGINE_PORT=16082 SINK_PORT=16083
export COMMAND_API_URL=http://127.0.0.1:16080 STREAMER_URL=http://127.0.0.1:16081
export UI_ORIGIN=http://127.0.0.1:16081
# Tests register many users from one address and send commands as fast as they can.
export BCRYPT_COST=6 AUTH_RATE_PER_MINUTE=1000 COMMAND_RATE_PER_SECOND=5000

teardown() {
    status=$?
    scripts/services.sh stop || true
    scripts/infra.sh stop || true
    [ $status = 0 ] || echo "e2e: failed (exit $status); service logs are in .runtime/e2e/logs" >&2
    exit $status
}
trap teardown EXIT

scripts/infra.sh start
"$TODO_BIN" ensure-streams >/dev/null
"$TODO_BIN" migrate >/dev/null
scripts/services.sh start
"$@"
