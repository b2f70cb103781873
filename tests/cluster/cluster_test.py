#!/usr/bin/env python3
"""Faults on the local cluster (DESIGN §12), run by `make test-cluster` against `scripts/cluster.sh`.

Steady load through the gateway (commands from several users, LISTENERS SSE listeners), then in
turn: kill -9 of the NATS node that leads the EVENTS stream (restarted after), kill -9 of one
replica of each service (restarted after), a restart of the Postgres standby. After each: every
accepted command has exactly one outcome, and every listener (reconnecting through the gateway with
Last-Event-ID) saw every event of its group once and in order. At the end the projection equals a
fresh replay of EVENTS (`todo rebuild-projection --build-only`). Prints the time to recover from
each fault: from the fault until a command sent then reached every listener.
"""
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CLUSTER = os.path.join(ROOT, ".runtime", "cluster")
GATEWAY = os.environ.get("GATEWAY", "127.0.0.1:8000")
LISTENERS = int(os.environ.get("LISTENERS", "200"))
USERS = max(4, LISTENERS // 20)  # each under SSE_MAX_STREAMS_PER_USER on one streamer
RATE = float(os.environ.get("COMMAND_RATE", "20"))  # commands per second, all users together
TODO_BIN = os.environ.get("TODO_BIN", os.path.join(ROOT, ".build", "release", "todo"))
PRIMARY = "postgres://app:password@127.0.0.1:35432/app?sslmode=disable"


def fail(message):
    print("FAILED: " + message, flush=True)
    sys.exit(1)


def call(method, path, token=None, body=None, expect=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request("http://" + GATEWAY + path, method=method, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        status, text = 0, str(error).encode()
    if expect and status != expect:
        fail(f"{method} {path} answered {status}: {text[:300]!r}")
    try:
        return status, json.loads(text) if text else {}
    except ValueError:
        return status, {}


def psql(sql):
    return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-h", os.path.join(CLUSTER, "run", "postgres"),
                           "-p", "35432", "-U", "postgres", "-d", "app", "-c", sql], capture_output=True, text=True, check=True).stdout


class Listener(threading.Thread):
    """One SSE client of a group through the gateway: reconnects with Last-Event-ID, records the
    versions of the todo events it saw (duplicates and gaps are failures)."""

    def __init__(self, token, group):
        super().__init__(daemon=True)
        self.token, self.group = token, group
        self.last = 0
        self.seen = []
        self.reconnects = 0
        self.problems = []
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                connection = http.client.HTTPConnection(GATEWAY, timeout=30)
                headers = {"Authorization": "Bearer " + self.token, "Accept": "text/event-stream"}
                if self.last:
                    headers["Last-Event-ID"] = str(self.last)
                connection.request("GET", "/events?group_id=" + self.group, headers=headers)
                response = connection.getresponse()
                if response.status != 200:
                    response.read()
                    time.sleep(0.5)
                    continue
                name, event_id = None, None
                while not self.stopped:
                    line = response.readline()  # chunked transfer decoded
                    if not line:
                        break
                    line = line.decode().rstrip("\r\n")
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("id:"):
                        event_id = line[3:].strip()
                    elif line == "":
                        if name == "todo-event" and event_id:
                            version = int(event_id)
                            if version <= self.last:
                                self.problems.append(f"version {version} again after {self.last}")
                            elif version != self.last + 1 and self.last:
                                self.problems.append(f"gap: {self.last} → {version}")
                            self.last = max(self.last, version)
                            self.seen.append(version)
                        name, event_id = None, None
                connection.close()
            except (OSError, http.client.HTTPException):
                pass
            if not self.stopped:
                self.reconnects += 1
                time.sleep(0.3)


class Load(threading.Thread):
    """Commands from several users at RATE a second; remembers every accepted command id."""

    def __init__(self, sessions, group):
        super().__init__(daemon=True)
        self.sessions, self.group = sessions, group
        self.accepted, self.refused = [], 0
        self.when = {}
        self.stopped = False

    def run(self):
        index = 0
        while not self.stopped:
            token = self.sessions[index % len(self.sessions)]
            status, body = call("POST", "/api/v1/command", token, {"action": "create-todo", "group_id": self.group,
                                                                      "title": f"load {index}"})
            if status == 202:
                self.accepted.append(body["command_id"])
                self.when[body["command_id"]] = time.time()
            else:
                self.refused += 1
            index += 1
            time.sleep(1 / RATE)


def decided_version(group):
    return int(psql(f"SELECT coalesce(max(group_version), 0) FROM todo_events WHERE group_id = '{group}'") or 0)


def settle(load, listeners, group, what, started):
    """Waits until a command sent now reached every listener; checks outcomes and order."""
    token = load.sessions[0]
    status, body = call("POST", "/api/v1/command", token, {"action": "create-todo", "group_id": group, "title": "probe " + what})
    while status != 202:
        if time.time() - started > 120:
            fail(f"{what}: no command accepted within 120 s")
        time.sleep(0.5)
        status, body = call("POST", "/api/v1/command", token, {"action": "create-todo", "group_id": group, "title": "probe " + what})
    probe = body["command_id"]
    deadline = time.time() + 120
    while True:
        row = psql(f"SELECT group_version FROM todo_events WHERE command_id = '{probe}'").strip()
        if row and all(listener.last >= int(row) for listener in listeners):
            break
        if time.time() > deadline:
            behind = sum(1 for listener in listeners if not row or listener.last < int(row))
            fail(f"{what}: the probe did not reach every listener within 120 s ({behind} behind, decided at {row or 'not yet'})")
        time.sleep(0.1)
    recovered = time.time() - started
    for listener in listeners:
        if listener.problems:
            fail(f"{what}: a listener saw {listener.problems[:3]}")
    print(f"  {what}: recovered in {recovered:.1f} s (a command sent after the fault reached all {len(listeners)} listeners)", flush=True)
    return recovered


def check_outcomes(accepted, timeout=90):
    """Every accepted command ends with exactly one outcome. A command a killed replica had
    fetched comes back after the consumer's ack wait (10 s), so this waits up to `timeout`."""
    started = time.time()
    while True:
        ids = ",".join(f"'{command}'" for command in accepted)
        rows = psql(f"SELECT command_id, count(*) FROM todo_events WHERE command_id IN ({ids}) GROUP BY command_id").split()
        counts = {line.split("|")[0]: int(line.split("|")[1]) for line in rows}
        missing = [command for command in accepted if command not in counts]
        doubled = [command for command, count in counts.items() if count != 1]
        if doubled:
            fail(f"{len(doubled)} accepted commands with more than one outcome ({doubled[:5]})")
        if not missing:
            break
        if time.time() - started > timeout:
            fail(f"{len(missing)} accepted commands without an outcome after {timeout} s ({missing[:5]})")
        time.sleep(0.5)
    print(f"  every one of {len(accepted)} accepted commands has exactly one outcome"
          f" (the last {time.time() - started:.1f} s after the load ended)", flush=True)


def kill_nats_leader():
    for node in range(3):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{38222 + node}/jsz?streams=true", timeout=5) as response:
                info = json.load(response)
        except OSError:
            continue
        for account in info.get("account_details", []):
            for stream in account.get("stream_detail", []):
                if stream["name"] == "EVENTS" and stream.get("cluster", {}).get("leader"):
                    leader = stream["cluster"]["leader"]
                    index = int(leader.split("-")[1])
                    pid = int(open(os.path.join(CLUSTER, f"nats-{index}", "pids", "nats-server.pid")).read())
                    os.kill(pid, signal.SIGKILL)
                    return index
    fail("no node leads the EVENTS stream")


def node_env(index):
    return {**os.environ, "RUNTIME_DIR": os.path.join(CLUSTER, f"nats-{index}"), "SECRETS_DIR": os.path.join(CLUSTER, "secrets"),
            "NATS_PORT": str(34222 + index), "NATS_MONITOR_PORT": str(38222 + index), "NATS_CLUSTER_PORT": str(36222 + index),
            "NATS_SERVER_NAME": f"node-{index}", "NATS_GOMAXPROCS": "1",
            "NATS_ROUTES": "nats-route://127.0.0.1:36222,nats-route://127.0.0.1:36223,nats-route://127.0.0.1:36224"}


def replica_env(replica, database_port):
    base, internal = 38080 + 10 * replica, 39080 + 10 * replica
    return {**os.environ, "RUNTIME_DIR": os.path.join(CLUSTER, f"replica-{replica}"), "SECRETS_DIR": os.path.join(CLUSTER, "secrets"),
            "JWT_KEYS_DIR": os.path.join(CLUSTER, "jwt"), "TODO_BIN": TODO_BIN,
            "NATS_URL": "nats://127.0.0.1:34222,nats://127.0.0.1:34223,nats://127.0.0.1:34224",
            "DATABASE_URL": f"postgres://app:password@127.0.0.1:{database_port}/app?sslmode=disable",
            "COMMAND_PORT": str(base), "STREAMER_PORT": str(base + 1), "ENGINE_PORT": str(base + 2), "SINK_PORT": str(base + 3),
            "SCHEDULER_PORT": str(base + 4), "COMMAND_INTERNAL_PORT": str(internal), "STREAMER_INTERNAL_PORT": str(internal + 1),
            "UI_ORIGIN": "http://" + GATEWAY, "COMMAND_API_URL": "", "TRUSTED_PROXIES": "127.0.0.1", "STREAM_REPLICAS": "3"}


def main():
    # A whole cluster to begin with (a node an earlier run left down is started again).
    for node in range(3):
        subprocess.run([os.path.join(ROOT, "scripts", "infra.sh"), "start-nats"], env=node_env(node), check=True, capture_output=True)
    suffix = secrets.token_hex(3)
    sessions = []
    for index in range(USERS):
        _, body = call("POST", "/api/v1/auth/register", body={"username": f"c{index}_{suffix}", "password": "correct horse battery"}, expect=201)
        sessions.append(body["access_token"])
    _, group = call("POST", "/api/v1/groups", sessions[0], {"name": "Cluster " + suffix}, expect=201)
    group = group["id"]
    for index in range(1, USERS):
        call("POST", f"/api/v1/groups/{group}/members", sessions[0], {"username": f"c{index}_{suffix}", "role": "member"}, expect=204)
    print(f"group {group}, {USERS} users, {LISTENERS} listeners through the gateway, {RATE:.0f} commands/s", flush=True)

    listeners = [Listener(sessions[index % USERS], group) for index in range(LISTENERS)]
    for listener in listeners:
        listener.start()
    load = Load(sessions, group)
    load.start()
    settle(load, listeners, group, "steady load", time.time())

    print("kill -9 of the NATS node leading EVENTS", flush=True)
    started = time.time()
    node = kill_nats_leader()
    time.sleep(3)
    settle(load, listeners, group, f"node-{node} killed", started)
    subprocess.run([os.path.join(ROOT, "scripts", "infra.sh"), "start-nats"], env=node_env(node), check=True, capture_output=True)
    settle(load, listeners, group, f"node-{node} back", time.time())

    print("kill -9 of one replica of each service", flush=True)
    started = time.time()
    for service in ("command-api", "domain-engine", "data-sink", "streamer", "scheduler"):
        pid = int(open(os.path.join(CLUSTER, "replica-0", "pids", f"{service}.pid")).read())
        os.kill(pid, signal.SIGKILL)
    time.sleep(2)
    settle(load, listeners, group, "one replica of each killed", started)
    services = os.path.join(ROOT, "scripts", "services.sh")
    subprocess.run([services, "start", "command-api", "domain-engine", "data-sink", "scheduler"], env=replica_env(0, 35432),
                   check=True, capture_output=True)
    subprocess.run([services, "start", "streamer"], env=replica_env(0, 35433), check=True, capture_output=True)
    settle(load, listeners, group, "replicas back", time.time())

    print("restart of the Postgres standby (the streamers' reads)", flush=True)
    started = time.time()
    subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(CLUSTER, "data", "standby"),
                    "-l", os.path.join(CLUSTER, "logs", "standby.log"), "-m", "fast", "-w", "restart"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    settle(load, listeners, group, "standby restarted", started)

    load.stopped = True
    load.join()
    settle(load, listeners, group, "after the load", time.time())
    check_outcomes(load.accepted)
    reconnects = sum(listener.reconnects for listener in listeners)
    print(f"  listeners reconnected {reconnects} times in all; each saw versions 1..{max(l.last for l in listeners)} once, in order", flush=True)

    print("the projection equals a fresh replay of EVENTS", flush=True)
    subprocess.run([TODO_BIN, "rebuild-projection", "--build-only"], check=True, capture_output=True,
                   env={**os.environ, "DATABASE_URL": PRIMARY, "NATS_URL": "nats://127.0.0.1:34222,nats://127.0.0.1:34223,nats://127.0.0.1:34224",
                        "NATS_USER": "admin", "NATS_PASSWORD_FILE": os.path.join(CLUSTER, "secrets", "nats-admin")})
    columns = "group_id, todo_id, title, notes, status, position, due_date, assignee, labels, version, group_version, deleted_at IS NULL"
    difference = psql(f"SELECT count(*) FROM ((SELECT {columns} FROM todos EXCEPT SELECT {columns} FROM todos_rebuild) UNION ALL "
                      f"(SELECT {columns} FROM todos_rebuild EXCEPT SELECT {columns} FROM todos)) d").strip()
    if difference != "0":
        fail(f"{difference} rows differ between the projection and a fresh replay")
    print(f"  identical ({psql('SELECT count(*) FROM todos').strip()} todos)", flush=True)
    for listener in listeners:
        listener.stopped = True
    print(f"accepted {len(load.accepted)} commands (refused while a fault lasted: {load.refused}); cluster test passed", flush=True)


if __name__ == "__main__":
    main()
