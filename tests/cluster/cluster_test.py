#!/usr/bin/env python3
"""Faults on the local cluster (DESIGN §12), run by `make test-cluster` against `scripts/cluster.sh`.

Steady load through the gateway (commands from several users, LISTENERS SSE listeners), then in
turn: kill -9 of the NATS node that leads the EVENTS stream (restarted after), kill -9 of one
replica of each service (restarted after), a restart of the Postgres standby, and the NATS node
that leads EVENTS cut off for 20 s (its network namespace's link down: every packet to or from it
dropped, no connection reset), then healed: until all three replicas of EVENTS are current, a
replay of EVENTS started at the heal finishes, and probes over the next 30 s (the rejoined node
sets off an election of the meta leader) get through. After each: every
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
CLUSTER_SH = os.path.join(ROOT, "scripts", "cluster.sh")
CUT_SECONDS = float(os.environ.get("CUT_SECONDS", "20"))
# The network cut (PARTITION=1) runs in `make test-cluster-partition`, not in `make test`: in one of
# eight runs an accepted command was left without an outcome after the node rejoined
# (docs/scale-out.md, "Known defect").
PARTITION = os.environ.get("PARTITION", "1") == "1"
GATEWAY = os.environ.get("GATEWAY", "127.0.0.1:8000")
LISTENERS = int(os.environ.get("LISTENERS", "200"))
USERS = max(4, LISTENERS // 20)  # each under SSE_MAX_STREAMS_PER_USER on one streamer
RATE = float(os.environ.get("COMMAND_RATE", "20"))  # commands per second, all users together
TODO_BIN = os.environ.get("TODO_BIN", os.path.join(ROOT, ".build", "release", "todo"))
PRIMARY = "postgres://app:password@127.0.0.1:31432/app?sslmode=disable"


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


def psql(sql, port=31432):
    return subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-X", "-At", "-h", os.path.join(CLUSTER, "run", "postgres"),
                           "-p", str(port), "-U", "postgres", "-d", "app", "-c", sql], capture_output=True, text=True, check=True).stdout


def check_reads_wait_for_the_standby(owner, outsider):
    """Read-your-writes across the primary and the standby: with the standby's replay paused, a
    group created on the primary (command-api) is read through the streamer (the standby) while
    the standby does not have it yet. The read waits (STANDBY_READ_GRACE_MS) for the replay to
    resume instead of answering "no such group"; a user who is not a member still gets 403."""
    psql("SELECT pg_wal_replay_pause()", port=31433)
    try:
        deadline = time.time() + 10
        while psql("SELECT pg_get_wal_replay_pause_state()", port=31433).strip() != "paused":
            if time.time() > deadline:
                fail("the standby's replay did not pause within 10 s")
            time.sleep(0.05)
        _, body = call("POST", "/api/v1/groups", owner, {"name": "Read your writes"}, expect=201)
        group = body["id"]
        answers = {}
        reader = threading.Thread(target=lambda: answers.update(owner=call("GET", f"/api/v1/groups/{group}/members", owner)[0]))
        reader.start()
        time.sleep(0.25)
        if psql(f"SELECT count(*) FROM groups WHERE group_id = '{group}'", port=31433).strip() != "0":
            fail("the standby has the new group although its replay is paused")
    finally:
        psql("SELECT pg_wal_replay_resume()", port=31433)
    reader.join()
    if answers.get("owner") != 200:
        fail(f"a group read on the standby right after its creation answered {answers.get('owner')}, not 200")
    status, _ = call("GET", f"/api/v1/groups/{group}/members", outsider)
    if status != 403:
        fail(f"a user who is not a member read the group's members: {status}")
    print("  a group created on the primary and read at once through the standby (replay paused): 200 once it replayed;"
          " a non-member 403", flush=True)


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


def settle(load, listeners, group, what, started, quiet=False):
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
    if not quiet:
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


def cluster(*arguments):
    """scripts/cluster.sh with these arguments; its output."""
    result = subprocess.run([CLUSTER_SH, *map(str, arguments)], env={**os.environ, "TODO_BIN": TODO_BIN}, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"cluster.sh {' '.join(map(str, arguments))}: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


NODE_HOSTS = [cluster("node-host", node) for node in range(3)]
NATS_URLS = cluster("nats-urls")


def events_stream(node):
    """EVENTS as node `node` sees it (its /jsz), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{NODE_HOSTS[node]}:{31422 + node}/jsz?streams=true", timeout=3) as response:
            info = json.load(response)
    except OSError:
        return None
    for account in info.get("account_details", []):
        for stream in account.get("stream_detail", []):
            if stream["name"] == "EVENTS":
                return stream
    return None


def events_leader():
    for node in range(3):
        leader = ((events_stream(node) or {}).get("cluster") or {}).get("leader")
        if leader:
            return int(leader.split("-")[1])
    fail("no node leads the EVENTS stream")


def kill_nats_leader():
    index = events_leader()
    pid = int(open(os.path.join(CLUSTER, f"nats-{index}", "pids", "nats-server.pid")).read())
    os.kill(pid, signal.SIGKILL)
    return index


def wait_for_current_replicas(what, started, timeout=120):
    """Until the leader of EVENTS reports both of its followers current (caught up)."""
    while True:
        leader = None
        for node in range(3):
            cluster_info = (events_stream(node) or {}).get("cluster") or {}
            if cluster_info.get("leader") == f"node-{node}":
                leader = cluster_info
        replicas = (leader or {}).get("replicas") or []
        if len(replicas) == 2 and all(replica.get("current") for replica in replicas):
            print(f"  {what}: all three replicas of EVENTS current {time.time() - started:.1f} s after it", flush=True)
            return
        if time.time() - started > timeout:
            fail(f"{what}: the replicas of EVENTS were not all current within {timeout} s ({leader})")
        time.sleep(0.5)


def rebuild_projection(what, exit_on_failure=True):
    """`todo rebuild-projection --build-only`: a fresh replay of EVENTS into todos_rebuild. Returns
    what went wrong (None when it finished)."""
    started = time.time()
    rebuild = subprocess.run([TODO_BIN, "rebuild-projection", "--build-only"], capture_output=True, text=True,
                             env={**os.environ, "DATABASE_URL": PRIMARY, "NATS_URL": NATS_URLS,
                                  "NATS_USER": "admin", "NATS_PASSWORD_FILE": os.path.join(CLUSTER, "secrets", "nats-admin")})
    if rebuild.returncode != 0:
        problem = f"{what}: rebuild-projection --build-only exited {rebuild.returncode}: {(rebuild.stderr + rebuild.stdout).strip()[-1500:]}"
        if exit_on_failure:
            fail(problem)
        return problem
    print(f"  {what}: a replay of EVENTS (rebuild-projection) finished in {time.time() - started:.1f} s", flush=True)
    return None



def cut_off_the_events_leader(load, listeners, group):
    """The NATS node leading EVENTS loses its network for CUT_SECONDS, then gets it back."""
    if NODE_HOSTS[0] == "127.0.0.1":
        fail("the NATS nodes run on loopback (CLUSTER_NETNS=0, or not root): cutting one off needs their network namespaces")
    node = events_leader()
    print(f"node-{node} (leading EVENTS) cut off for {CUT_SECONDS:.0f} s: its link down", flush=True)

    started = time.time()
    cluster("cut-node", node)
    try:
        time.sleep(3)
        settle(load, listeners, group, f"node-{node} cut off", started)
        time.sleep(max(0.0, started + CUT_SECONDS - time.time()))
    finally:
        cluster("heal-node", node)
    healed = time.time()
    # The node rejoins with a higher Raft term and sets off an election of the meta leader; for
    # some 10 s JetStream's API answers "temporarily unavailable". A replay started now (as the
    # engine loading a group or an operator's rebuild do) waits the election out instead of failing.
    failures = []

    def replay_during_the_rejoin():
        try:
            failures.append(rebuild_projection(f"node-{node} healed", exit_on_failure=False))
        except Exception as error:  # noqa: BLE001 — reported by the main thread
            failures.append(f"node-{node} healed: the replay raised {error!r}")

    replay = threading.Thread(target=replay_during_the_rejoin)
    replay.start()
    settle(load, listeners, group, f"node-{node} healed", healed)
    wait_for_current_replicas(f"node-{node} healed", healed)
    # The rejoined node's election comes seconds later: probes for 30 s after the heal, one after
    # the other, each timed from when it was sent.
    slowest = 0.0
    while time.time() - healed < 30:
        slowest = max(slowest, settle(load, listeners, group, f"node-{node} rejoined", time.time(), quiet=True))
        time.sleep(0.5)
    print(f"  node-{node} rejoined: the slowest of the probes in the 30 s after the heal took {slowest:.1f} s", flush=True)
    replay.join()
    if failures[0]:
        fail(failures[0])


def main():

    # A whole cluster to begin with (a node an earlier run left down is started again).
    for node in range(3):
        cluster("start-node", node)
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

    _, outsider = call("POST", "/api/v1/auth/register", body={"username": f"outsider_{suffix}", "password": "correct horse battery"}, expect=201)
    check_reads_wait_for_the_standby(sessions[0], outsider["access_token"])

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
    cluster("start-node", node)
    settle(load, listeners, group, f"node-{node} back", time.time())

    print("kill -9 of one replica of each service", flush=True)
    started = time.time()
    for service in ("command-api", "domain-engine", "data-sink", "streamer", "scheduler"):
        pid = int(open(os.path.join(CLUSTER, "replica-0", "pids", f"{service}.pid")).read())
        os.kill(pid, signal.SIGKILL)
    time.sleep(2)
    settle(load, listeners, group, "one replica of each killed", started)
    cluster("start-replica", 0)
    settle(load, listeners, group, "replicas back", time.time())

    print("restart of the Postgres standby (the streamers' reads)", flush=True)
    started = time.time()
    subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "-D", os.path.join(CLUSTER, "data", "standby"),
                    "-l", os.path.join(CLUSTER, "logs", "standby.log"), "-m", "fast", "-w", "restart"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    settle(load, listeners, group, "standby restarted", started)

    if PARTITION:
        cut_off_the_events_leader(load, listeners, group)
    else:
        print("a NATS node cut off its network: not in this run (PARTITION=0; make test-cluster-partition runs it)", flush=True)

    load.stopped = True
    load.join()
    settle(load, listeners, group, "after the load", time.time())
    check_outcomes(load.accepted)
    reconnects = sum(listener.reconnects for listener in listeners)
    print(f"  listeners reconnected {reconnects} times in all; each saw versions 1..{max(l.last for l in listeners)} once, in order", flush=True)

    print("the projection equals a fresh replay of EVENTS", flush=True)
    rebuild_projection("after the load")
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
