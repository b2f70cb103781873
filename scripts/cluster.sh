#!/usr/bin/env bash
# The production topology on one machine (DESIGN §12), from Debian packages, state in
# .runtime/cluster (CLUSTER_DIR):
#
#   - a gateway: nginx on 127.0.0.1:8000 (GATEWAY_PORT) with the HTTPRoutes' path split
#     (infrastructure/local/nginx.conf), no buffering or timeout on /events;
#   - three nats-server nodes in one JetStream cluster (clients :31222–31224, routes :31322–31324,
#     monitoring :31422–31424), the streams at 3 replicas. Run as root, each node has a network
#     namespace of its own (todo-nats-0..2), linked by a veth pair to a bridge on this host
#     (todo-cl0, 10.254.36.1/24; node i at 10.254.36.1i), so a node can be cut off from the others
#     and from the services by taking its link down (cut-node / heal-node), as a node loses its
#     network in a data centre. Otherwise (CLUSTER_NETNS=0, or not root) they listen on 127.0.0.1;
#   - Postgres: a primary (:31432) and a hot standby by streaming replication (:31433); the
#     streamers read from the standby, as from CloudNativePG's -ro service;
#   - two replicas of every service (replica r: command-api :30080+10r, internal :30180+10r;
#     streamer :30081+10r, internal :30181+10r; engine :30082+10r; sink :30083+10r; scheduler
#     :30084+10r), each a NATS and Postgres user of its own.
#
#   scripts/cluster.sh start | stop | status
#   scripts/cluster.sh start-node I | start-replica R | cut-node I | heal-node I | node-host I | nats-urls
#
# TODO_BIN picks the binary (.build/release/todo).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/.runtime/cluster}"
case "$CLUSTER_DIR" in /*) ;; *) CLUSTER_DIR="$ROOT/$CLUSTER_DIR" ;; esac
export TODO_BIN="${TODO_BIN:-$ROOT/.build/release/todo}"
case "$TODO_BIN" in /*) ;; *) TODO_BIN="$ROOT/$TODO_BIN" ;; esac
GATEWAY_PORT="${GATEWAY_PORT:-8000}"
PRIMARY_PORT=31432
STANDBY_PORT=31433
NODES=(0 1 2)
REPLICAS=(0 1)
SECRETS="$CLUSTER_DIR/secrets"
LOGS="$CLUSTER_DIR/logs"
PGSOCK="$CLUSTER_DIR/run/postgres"
STANDBY_DATA="$CLUSTER_DIR/data/standby"
# Each node in a network namespace of its own when root can make them (CLUSTER_NETNS=1), else on
# loopback. A cluster keeps the mode it was started with (.runtime/cluster/netns), so a later
# stop or status finds its nodes.
if [ -s "$CLUSTER_DIR/netns" ]; then
    CLUSTER_NETNS="$(cat "$CLUSTER_DIR/netns")"
elif [ -z "${CLUSTER_NETNS:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then CLUSTER_NETNS=1; else CLUSTER_NETNS=0; fi
fi
BRIDGE=todo-cl0
SUBNET=10.254.36
node_host() { if [ "$CLUSTER_NETNS" = 1 ]; then echo "$SUBNET.1$1"; else echo 127.0.0.1; fi; }
node_netns() { echo "todo-nats-$1"; }
NATS_URLS="nats://$(node_host 0):31222,nats://$(node_host 1):31223,nats://$(node_host 2):31224"
PRIMARY_URL="postgres://app:password@127.0.0.1:$PRIMARY_PORT/app?sslmode=disable"
STANDBY_URL="postgres://app:password@127.0.0.1:$STANDBY_PORT/app?sslmode=disable"

say() { printf '%s\n' "cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

node_env() {
    local i=$1
    echo "RUNTIME_DIR=$CLUSTER_DIR/nats-$i SECRETS_DIR=$SECRETS NATS_PORT=$((31222 + i)) NATS_MONITOR_PORT=$((31422 + i))" \
         "NATS_CLUSTER_PORT=$((31322 + i)) NATS_SERVER_NAME=node-$i NATS_GOMAXPROCS=1 NATS_HOST=$(node_host "$i")" \
         "NATS_ROUTES=nats-route://$(node_host 0):31322,nats-route://$(node_host 1):31323,nats-route://$(node_host 2):31324"
    [ "$CLUSTER_NETNS" = 0 ] || echo "NATS_NETNS=$(node_netns "$i")"
}

# The namespaces, their veth pairs and the bridge (idempotent). On a host whose firewall filters
# bridged traffic (br_netfilter with a FORWARD policy of DROP, as Docker sets up), the nodes cannot
# reach each other: allow forwarding on todo-cl0, or run with CLUSTER_NETNS=0.
network_up() {
    mkdir -p "$CLUSTER_DIR"
    echo "$CLUSTER_NETNS" > "$CLUSTER_DIR/netns"
    [ "$CLUSTER_NETNS" = 1 ] || return 0
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge || die "could not create the bridge $BRIDGE (CLUSTER_NETNS=0 runs the nodes on loopback)"
        ip addr add "$SUBNET.1/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    local i ns
    for i in "${NODES[@]}"; do
        ns="$(node_netns "$i")"
        [ -e "/run/netns/$ns" ] || ip netns add "$ns"
        if ! ip link show "todo-nats$i" >/dev/null 2>&1; then
            ip link add "todo-nats$i" type veth peer name eth0 netns "$ns"
            ip netns exec "$ns" ip addr add "$(node_host "$i")/24" dev eth0
        fi
        ip link set "todo-nats$i" master "$BRIDGE"
        ip link set "todo-nats$i" up
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set eth0 up
    done
}

network_down() {
    rm -f "$CLUSTER_DIR/netns"
    [ "$CLUSTER_NETNS" = 1 ] || return 0
    local i
    for i in "${NODES[@]}"; do
        ip link del "todo-nats$i" 2>/dev/null || true
        ip netns del "$(node_netns "$i")" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}


# Node i loses its network (its link goes down: every packet to or from it is dropped), or gets it back.
link_node() {
    local i=$1 state=$2
    [ "$CLUSTER_NETNS" = 1 ] || die "cutting a node off needs its network namespace (run as root, CLUSTER_NETNS=1)"
    ip netns exec "$(node_netns "$i")" ip link set eth0 "$state"
}

start_node() { network_up; env $(node_env "$1") "$ROOT/scripts/infra.sh" start-nats; }

start_replica() {
    local r=$1
    env $(replica_env "$r") DATABASE_URL="$PRIMARY_URL" COMMAND_API_URL= "$ROOT/scripts/services.sh" start command-api domain-engine data-sink scheduler
    env $(replica_env "$r") DATABASE_URL="$STANDBY_URL" COMMAND_API_URL= "$ROOT/scripts/services.sh" start streamer
}
primary_env() { echo "RUNTIME_DIR=$CLUSTER_DIR SECRETS_DIR=$SECRETS PG_PORT=$PRIMARY_PORT"; }
replica_env() {
    local r=$1 base=$((30080 + 10 * $1)) internal=$((30180 + 10 * $1))
    echo "RUNTIME_DIR=$CLUSTER_DIR/replica-$r SECRETS_DIR=$SECRETS JWT_KEYS_DIR=$CLUSTER_DIR/jwt NATS_URL=$NATS_URLS" \
         "COMMAND_PORT=$base STREAMER_PORT=$((base + 1)) ENGINE_PORT=$((base + 2)) SINK_PORT=$((base + 3)) SCHEDULER_PORT=$((base + 4))" \
         "COMMAND_INTERNAL_PORT=$internal STREAMER_INTERNAL_PORT=$((internal + 1))" \
         "UI_ORIGIN=http://127.0.0.1:$GATEWAY_PORT TRUSTED_PROXIES=127.0.0.1 STREAM_REPLICAS=3"
}

standby_running() { [ -f "$STANDBY_DATA/postmaster.pid" ] && as_postgres "$(pg_bin)/pg_ctl" -D "$STANDBY_DATA" status >/dev/null 2>&1; }
nginx_running() { [ -f "$CLUSTER_DIR/nginx/nginx.pid" ] && kill -0 "$(cat "$CLUSTER_DIR/nginx/nginx.pid")" 2>/dev/null; }

start_standby() {
    if standby_running; then say "standby already running on 127.0.0.1:$STANDBY_PORT"; return; fi
    if [ ! -s "$STANDBY_DATA/PG_VERSION" ]; then
        mkdir -p "$STANDBY_DATA"
        chown postgres:postgres "$STANDBY_DATA"
        chmod 700 "$STANDBY_DATA"
        # A base backup of the primary, set up to follow it (-R: primary_conninfo, standby.signal).
        as_postgres "$(pg_bin)/pg_basebackup" -h "$PGSOCK" -p "$PRIMARY_PORT" -U postgres -D "$STANDBY_DATA" -R -X stream -c fast \
            >"$LOGS/pg_basebackup.log" 2>&1 || die "pg_basebackup failed (see $LOGS/pg_basebackup.log)"
    fi
    touch "$LOGS/standby.log"; chown postgres:postgres "$LOGS/standby.log"
    as_postgres "$(pg_bin)/pg_ctl" -D "$STANDBY_DATA" -l "$LOGS/standby.log" -o "-p $STANDBY_PORT -k $PGSOCK" -w -t 60 start >/dev/null \
        || die "the standby did not start (see $LOGS/standby.log)"
    say "postgres hot standby on 127.0.0.1:$STANDBY_PORT, streaming from the primary"
}

stop_standby() {
    if standby_running; then
        as_postgres "$(pg_bin)/pg_ctl" -D "$STANDBY_DATA" -m fast -w stop >/dev/null
        say "standby stopped"
    fi
}

# Until the JetStream cluster has a meta leader (streams can be created then).
wait_for_jetstream() {
    local tries=0
    until curl -sf "http://$(node_host 0):31422/jsz" 2>/dev/null | grep -q '"leader": *"node-'; do
        tries=$((tries + 1))
        [ $tries -lt 300 ] || die "the JetStream cluster elected no leader within 60 s (see $CLUSTER_DIR/nats-*/logs)"
        sleep 0.2
    done
}

write_nginx_config() {
    local conf="$CLUSTER_DIR/nginx/nginx.conf" command_api="" streamer="" r
    mkdir -p "$CLUSTER_DIR/nginx/tmp" "$LOGS"
    chmod 1777 "$CLUSTER_DIR/nginx/tmp" # nginx's workers run as nobody
    for r in "${REPLICAS[@]}"; do
        command_api+="        server 127.0.0.1:$((30080 + 10 * r)) max_fails=1 fail_timeout=2s;"$'\n'
        streamer+="        server 127.0.0.1:$((30081 + 10 * r)) max_fails=1 fail_timeout=2s;"$'\n'
    done
    COMMAND_API="${command_api%$'\n'}" STREAMER="${streamer%$'\n'}" RUNTIME="$CLUSTER_DIR" PORT="$GATEWAY_PORT" python3 - \
        "$ROOT/infrastructure/local/nginx.conf" "$conf" <<'PY'
import os, sys
text = open(sys.argv[1]).read()
for key, value in (("@COMMAND_API_SERVERS@", os.environ["COMMAND_API"]), ("@STREAMER_SERVERS@", os.environ["STREAMER"]),
                   ("@RUNTIME@", os.environ["RUNTIME"]), ("@PORT@", os.environ["PORT"])):
    text = text.replace(key, value)
open(sys.argv[2], "w").write(text)
PY
    echo "$conf"
}

start() {
    command -v nginx >/dev/null || die "nginx is not installed (run: make cluster-deps)"
    [ -x "$TODO_BIN" ] || die "$TODO_BIN is missing (run: make build-release)"
    mkdir -p "$LOGS"
    # NATS: three nodes, one cluster.
    for i in "${NODES[@]}"; do start_node "$i"; done
    wait_for_jetstream
    # Postgres: the primary (with the app database and the services' users), then its standby.
    env $(primary_env) "$ROOT/scripts/infra.sh" start-postgres
    start_standby
    DATABASE_URL="$PRIMARY_URL" "$TODO_BIN" migrate >>"$LOGS/migrate.log" 2>&1 || die "migrations failed (see $LOGS/migrate.log)"
    local tries=0
    until NATS_USER=admin NATS_PASSWORD_FILE="$SECRETS/nats-admin" NATS_URL="$NATS_URLS" STREAM_REPLICAS=3 \
          "$TODO_BIN" ensure-streams >>"$LOGS/ensure-streams.log" 2>&1; do
        tries=$((tries + 1))
        [ $tries -lt 30 ] || die "the streams could not be created (see $LOGS/ensure-streams.log)"
        sleep 1
    done
    say "streams at 3 replicas"
    # Two replicas of each service; the streamers read from the standby.
    for r in "${REPLICAS[@]}"; do start_replica "$r"; done
    # The gateway.
    local conf; conf="$(write_nginx_config)"
    if nginx_running; then
        nginx -c "$conf" -s reload
    else
        port_in_use "$GATEWAY_PORT" && die "port $GATEWAY_PORT is taken by another process; set GATEWAY_PORT or stop it"
        nginx -t -c "$conf" >/dev/null 2>"$LOGS/nginx-test.log" || die "nginx refused its configuration (see $LOGS/nginx-test.log)"
        nginx -c "$conf"
    fi
    say "gateway (nginx) on http://127.0.0.1:$GATEWAY_PORT"
}

stop() {
    local r i
    if nginx_running; then nginx -c "$CLUSTER_DIR/nginx/nginx.conf" -s quit; say "gateway stopped"; fi
    for r in "${REPLICAS[@]}"; do env $(replica_env "$r") "$ROOT/scripts/services.sh" stop || true; done
    stop_standby
    env $(primary_env) "$ROOT/scripts/infra.sh" stop-postgres
    for i in "${NODES[@]}"; do env $(node_env "$i") "$ROOT/scripts/infra.sh" stop-nats; done
    network_down
}

status() {
    local r i
    if nginx_running; then echo "gateway      running  pid $(cat "$CLUSTER_DIR/nginx/nginx.pid")  http://127.0.0.1:$GATEWAY_PORT"; else echo "gateway      stopped"; fi
    for i in "${NODES[@]}"; do
        local pid_file="$CLUSTER_DIR/nats-$i/pids/nats-server.pid"
        if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
            echo "nats node-$i  running  pid $(cat "$pid_file")  nats://$(node_host "$i"):$((31222 + i))$([ "$CLUSTER_NETNS" = 0 ] || echo "  netns $(node_netns "$i")")"
        else echo "nats node-$i  stopped"; fi
    done
    env $(primary_env) "$ROOT/scripts/infra.sh" status | grep postgres | sed 's/^postgres    /pg primary  /'
    if standby_running; then echo "pg standby   running  127.0.0.1:$STANDBY_PORT"; else echo "pg standby   stopped"; fi
    for r in "${REPLICAS[@]}"; do echo "replica $r:"; env $(replica_env "$r") "$ROOT/scripts/services.sh" status; done
}

case "${1:-status}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    start-node) start_node "${2:?node index}" ;;
    start-replica) start_replica "${2:?replica index}" ;;
    cut-node) link_node "${2:?node index}" down ;;
    heal-node) link_node "${2:?node index}" up ;;
    node-host) node_host "${2:?node index}" ;;
    nats-urls) echo "$NATS_URLS" ;;
    *) echo "usage: $0 start|stop|status|start-node I|start-replica R|cut-node I|heal-node I|node-host I|nats-urls" >&2; exit 2 ;;

esac
