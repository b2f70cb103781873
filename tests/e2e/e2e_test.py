#!/usr/bin/env python3
"""End-to-end suite (issue 7): the four services as real processes, over HTTP and SSE only.

Run by `make test-e2e` (part of `make test-integration`), which starts its own servers and the
services on other ports (scripts/e2e-stack.sh) and tears them down. Standard library only. Each
`kill -9` case kills one service process in the middle of work, starts it again with
scripts/services.sh, and checks that nothing accepted was lost and nothing was done twice.
Timeouts are liveness bounds, not performance claims.
"""
import http.client
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

API = os.environ.get("COMMAND_API_URL", "http://127.0.0.1:8080")
STREAMER = os.environ.get("STREAMER_URL", "http://127.0.0.1:8081")
RUNTIME = os.environ.get("E2E_RUNTIME_DIR", ".runtime/e2e-stack")
SERVICES = os.environ.get("E2E_SERVICES_SCRIPT", "scripts/services.sh")
PASSWORD = "end-to-end password"
FAILURES = []


def request(method, url, body=None, token=None, headers=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            text = response.read().decode()
            return response.status, (json.loads(text) if text and "json" in response.headers.get("Content-Type", "") else text), response.headers
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        try:
            return error.code, json.loads(text), error.headers
        except ValueError:
            return error.code, text, error.headers


def until(predicate, what, seconds=20, interval=0.1):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def check(condition, message):
    if not condition:
        raise AssertionError(message)
    print(f"  ok: {message}")


class User:
    def __init__(self, name):
        self.name = f"{name}_{secrets.token_hex(3)}"
        status, body, _ = request("POST", API + "/api/v1/auth/register", {"username": self.name, "password": PASSWORD})
        assert status == 201, (status, body)
        self.token = body["access_token"]
        self.id = body["user_id"]

    def create_group(self, name):
        status, body, _ = request("POST", API + "/api/v1/groups", {"name": name}, self.token)
        assert status == 201, (status, body)
        return body["id"]

    def add(self, group, user, role="member"):
        status, body, _ = request("POST", API + f"/api/v1/groups/{group}/members", {"username": user.name, "role": role}, self.token)
        assert status == 204, (status, body)

    def command(self, body, key=None):
        headers = {"Idempotency-Key": key} if key else {}
        return request("POST", API + "/api/v1/command", body, self.token, headers)

    def todos(self, group):
        todos, cursor = [], None
        while True:
            url = STREAMER + f"/api/v1/todos?group_id={group}&limit=200" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            status, body, _ = request("GET", url, token=self.token)
            if status != 200:
                return status, None
            todos += body["todos"]
            cursor = body.get("next_cursor")
            if not cursor:
                return 200, todos

    def history(self, group):
        events, after = [], 0
        while True:
            status, body, _ = request("GET", STREAMER + f"/api/v1/groups/{group}/events?after={after}&limit=1000", token=self.token)
            assert status == 200, (status, body)
            events += body["events"]
            if not body["events"]:
                return events
            after = body["next_after"]


class Stream:
    """A live SSE stream read on a thread: events land in a queue; `closed` is set at the end."""

    def __init__(self, user, group, last_event_id=None):
        parsed = urllib.parse.urlparse(STREAMER)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Authorization": "Bearer " + user.token, "Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", f"/events?group_id={group}", headers=headers)
        self.response = self.connection.getresponse()
        self.status = self.response.status
        self.events = queue.Queue()
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        event = {"event": "message", "data": [], "id": None}
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line == "":
                    if event["data"]:
                        self.events.put(event)
                    event = {"event": "message", "data": [], "id": None}
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "data":
                        event["data"].append(value)
                    elif field == "retry":
                        self.events.put({"event": "retry", "data": [value], "id": None})
                    elif field in ("event", "id"):
                        event[field] = value
        except (OSError, http.client.HTTPException, AttributeError, ValueError):
            # The stream ended. (http.client raises AttributeError or ValueError when the
            # response is closed from the test's thread during a read, or the server dies
            # mid-chunk.)
            pass
        finally:
            self.closed.set()

    def next(self, predicate, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if predicate(event):
                return event
        return None

    def close(self):
        try:
            self.connection.sock.shutdown(2)
        except OSError:
            pass
        self.connection.close()


def domain(event):
    return json.loads("\n".join(event["data"]))


def pid_of(service):
    with open(os.path.join(RUNTIME, "pids", service + ".pid")) as handle:
        return int(handle.read().strip())


def kill9_and_restart(service, pause=0.5):
    os.kill(pid_of(service), signal.SIGKILL)
    print(f"  killed {service} with SIGKILL")
    time.sleep(pause)
    subprocess.run([SERVICES, "start", service], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"  restarted {service}")


def create_many(user, group, count, prefix, retry=True):
    """Creates `count` todos with idempotency keys, retrying each until it is accepted."""
    accepted = {}
    for index in range(count):
        key = f"{prefix}-{index}"
        body = {"action": "create-todo", "group_id": group, "title": f"{prefix} {index}"}
        while True:
            try:
                status, answer, _ = user.command(body, key)
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError):
                status, answer, _ = 0, None, None
            if status == 202:
                accepted[key] = answer["todo_id"]
                break
            if status == 429:
                time.sleep(float(_.get("Retry-After", "1")) if _ else 1)
                continue
            if not retry or status not in (0, 502, 503, 504):
                raise AssertionError(f"create {key}: {status} {answer}")
            time.sleep(0.05)
    return accepted


def exactly_once(user, group, accepted, prefix):
    """Every accepted create is a todo exactly once, with exactly one outcome event."""
    def projected():
        status, todos = user.todos(group)
        titles = [todo["title"] for todo in todos if todo["title"].startswith(prefix + " ")]
        return len(titles) >= len(accepted) and titles
    titles = until(projected, f"{len(accepted)} '{prefix}' todos in the read API", seconds=60)
    check(sorted(titles) == sorted({t for t in titles}) and len(titles) == len(accepted),
          f"all {len(accepted)} accepted '{prefix}' todos are projected, none twice")
    outcomes = {}
    for event in user.history(group):
        if event.get("todo_id") in accepted.values():
            outcomes[event["command_id"]] = outcomes.get(event["command_id"], 0) + 1
    check(len(outcomes) == len(accepted) and all(count == 1 for count in outcomes.values()),
          f"each of the {len(accepted)} commands has exactly one outcome event")


# ---------------------------------------------------------------------------------------- cases

def command_to_sse_patch():
    alice, bob = User("alice"), User("bob")
    group = alice.create_group("e2e flow")
    alice.add(group, bob)
    stream = Stream(bob, group)
    check(stream.status == 200, "bob's SSE stream opens")
    status, answer, _ = alice.command({"action": "create-todo", "group_id": group, "title": "ship it", "labels": ["e2e"]})
    check(status == 202 and answer["status"] == "accepted", "POST /api/v1/command answers 202 accepted")
    todo_id = answer["todo_id"]
    event = stream.next(lambda e: e["event"] == "todo-event" and domain(e).get("todo_id") == todo_id)
    check(event and domain(event)["event_type"] == "todo.created", "the event reaches another member's stream as todo-event")
    patch = stream.next(lambda e: e["event"] == "datastar-patch-elements" and any(f'id="todo-{todo_id}"' in line for line in e["data"]))
    check(patch is not None and "selector #cards-todo" in patch["data"], "and as a Datastar patch into the To do column")
    until(lambda: any(t["todo_id"] == todo_id and t["title"] == "ship it" for t in bob.todos(group)[1]), "the projected todo")
    check(True, "the todo is persisted and readable")
    status, body, _ = request("GET", API + f"/api/v1/commands/{answer['command_id']}", token=alice.token)
    check(status == 200 and body["status"] == "applied", "the command's status is applied")
    stream.close()


def crud_through_read_api():
    alice = User("alice")
    group = alice.create_group("e2e crud")
    _, answer, _ = alice.command({"action": "create-todo", "group_id": group, "title": "draft"})
    todo = answer["todo_id"]
    find = lambda: next((t for t in alice.todos(group)[1] if t["todo_id"] == todo), None)
    until(find, "created todo")
    alice.command({"action": "update-todo", "group_id": group, "todo_id": todo, "title": "final", "labels": ["x"]})
    until(lambda: (find() or {}).get("title") == "final", "updated title")
    check(find()["labels"] == ["x"], "update is visible through the read API")
    alice.command({"action": "move-todo", "group_id": group, "todo_id": todo, "status": "done"})
    until(lambda: (find() or {}).get("status") == "done", "moved todo")
    check(True, "move is visible through the read API")
    alice.command({"action": "delete-todo", "group_id": group, "todo_id": todo})
    until(lambda: find() is None, "deleted todo")
    check(True, "delete is visible through the read API")


def membership_visibility_and_removal():
    alice, bob = User("alice"), User("bob")
    group = alice.create_group("e2e members")
    check(bob.todos(group)[0] == 403, "a non-member cannot read the group's todos")
    check(Stream(bob, group).status == 403, "nor open its stream")
    alice.add(group, bob)
    check(bob.todos(group)[0] == 200, "once added, the member reads the todos")
    stream = Stream(bob, group)
    check(stream.status == 200, "and opens the stream")
    status, _, _ = request("DELETE", API + f"/api/v1/groups/{group}/members/{bob.name}", token=alice.token)
    check(status == 204, "the owner removes the member")
    check(stream.closed.wait(15), "the removed member's stream ends")
    check(bob.todos(group)[0] == 403, "and the reads are refused again")


def pages_and_fragments():
    for path in ["/", "/login", "/app", "/settings", "/architecture"]:
        status, body, headers = request("GET", STREAMER + path)
        check(status == 200 and "<!doctype html>" in body and "script-src 'self'" in headers.get("Content-Security-Policy", ""),
              f"page {path} renders with its security policy")
    status, body, headers = request("GET", STREAMER + "/assets/app.js")
    check(status == 200 and "javascript" in headers.get("Content-Type", ""), "the script is served locally")
    alice = User("alice")
    group = alice.create_group("<b>fragment</b>")
    _, answer, _ = alice.command({"action": "create-todo", "group_id": group, "title": "<i>escaped</i>"})
    until(lambda: any(t["todo_id"] == answer["todo_id"] for t in alice.todos(group)[1]), "todo projected")
    status, html, _ = request("GET", STREAMER + f"/ui/workspace?group_id={group}", token=alice.token)
    check(status == 200 and f'id="todo-{answer["todo_id"]}"' in html, "the workspace fragment renders the board")
    check("<i>escaped</i>" not in html and "&lt;i&gt;escaped&lt;/i&gt;" in html and "&lt;b&gt;fragment&lt;/b&gt;" in html,
          "user text in fragments is escaped")
    check(request("GET", STREAMER + f"/ui/workspace?group_id={group}")[0] == 401, "fragments need a token")


def kill_command_api():
    alice = User("alice")
    group = alice.create_group("e2e kill command-api")
    killer = threading.Timer(0.5, kill9_and_restart, args=("command-api",))
    killer.start()
    accepted = create_many(alice, group, 400, "api")
    killer.join()
    exactly_once(alice, group, accepted, "api")


def kill_while_busy(service):
    """Kills `service` right after a burst of commands (it is still working through them), starts
    it again, sends more; every command has exactly one outcome and one todo."""
    alice = User("alice")
    group = alice.create_group(f"e2e kill {service}")
    before = create_many(alice, group, 200, f"{service}-before")
    kill9_and_restart(service)
    after = create_many(alice, group, 200, f"{service}-after")
    exactly_once(alice, group, before, f"{service}-before")
    exactly_once(alice, group, after, f"{service}-after")


def kill_engine():
    kill_while_busy("domain-engine")


def kill_sink():
    kill_while_busy("data-sink")


def kill_streamer():
    alice = User("alice")
    group = alice.create_group("e2e kill streamer")
    stream = Stream(alice, group)
    seen = []
    create_many(alice, group, 5, "before")
    while len(seen) < 5:
        event = stream.next(lambda e: e["event"] == "todo-event")
        assert event, "live events before the kill"
        seen.append(int(event["id"]))
    kill9_and_restart("streamer", pause=0.2)
    check(stream.closed.wait(10), "the stream ends when the streamer dies")
    create_many(alice, group, 5, "during")   # published while the client is away
    resumed = until(lambda: (lambda s: s if s.status == 200 else None)(Stream(alice, group, last_event_id=seen[-1])), "reconnect")
    while len(seen) < 10:
        event = resumed.next(lambda e: e["event"] == "todo-event", 15)
        assert event, f"replayed events after reconnect (have {seen})"
        seen.append(int(event["id"]))
    check(seen == list(range(seen[0], seen[0] + 10)), f"after the restart the client resumed with no gap and no duplicate: {seen}")
    resumed.close()


def sigterm_streamer():
    alice = User("alice")
    group = alice.create_group("e2e sigterm streamer")
    stream = Stream(alice, group)
    check(stream.status == 200, "stream open")
    pid = pid_of("streamer")
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    first = stream.next(lambda e: e["event"] == "retry", 5)
    hint = stream.next(lambda e: e["event"] == "retry", 10)
    check(first and hint and 1000 <= int(hint["data"][0]) <= 5000, f"SIGTERM sends open streams a reconnection hint ({hint and hint['data']})")
    check(stream.closed.wait(10), "and ends them")
    until(lambda: not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", "streamer exit", 30)
    check(True, f"the streamer exited {time.monotonic() - started:.1f} s after SIGTERM (grace period 25 s)")
    subprocess.run([SERVICES, "start", "streamer"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sigterm_engine():
    alice = User("alice")
    group = alice.create_group("e2e sigterm engine")
    accepted = create_many(alice, group, 300, "term")
    os.kill(pid_of("domain-engine"), signal.SIGTERM)
    until(lambda: subprocess.run([SERVICES, "status"], capture_output=True, text=True).stdout.count("domain-engine  running") == 0,
          "engine exit", 30)
    subprocess.run([SERVICES, "start", "domain-engine"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    exactly_once(alice, group, accepted, "term")


CASES = [command_to_sse_patch, crud_through_read_api, membership_visibility_and_removal, pages_and_fragments,
         kill_command_api, kill_engine, kill_sink, kill_streamer, sigterm_streamer, sigterm_engine]


def main():
    for case in CASES:
        print(case.__name__)
        try:
            case()
        except Exception as error:  # report every case, fail at the end
            FAILURES.append(case.__name__)
            print(f"  FAILED: {type(error).__name__}: {error}")
    if FAILURES:
        print("end-to-end suite FAILED: " + ", ".join(FAILURES), file=sys.stderr)
        sys.exit(1)
    print(f"end-to-end suite passed ({len(CASES)} cases)")


if __name__ == "__main__":
    main()
