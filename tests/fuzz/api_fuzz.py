#!/usr/bin/env python3
"""schemathesis against the running services, each with its own OpenAPI document (DESIGN §5).

Run by `make test-fuzz-api` (part of `make test-e2e`) inside scripts/e2e-stack.sh, which gives it
COMMAND_API_URL and STREAMER_URL. It signs up a user, gives them a group with a member and todos
(so reads and links reach real data), then runs `st run --checks all` over every operation of
command-api and of the streamer, with the documents' stateful links (register → group → member →
command → status; groups → todos, members, events). `GET /events` is left out: a valid request
opens a stream that never ends; the end-to-end suite covers it.

Fails when schemathesis reports any failure. Prints how many cases ran. API_FUZZ_EXAMPLES sets
the examples per operation (default 50); API_FUZZ_SEED a seed (default: a fixed one, so a CI
failure reproduces; "random" for exploration).
"""
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request

API = os.environ.get("COMMAND_API_URL", "http://127.0.0.1:8080")
STREAMER = os.environ.get("STREAMER_URL", "http://127.0.0.1:8081")
EXAMPLES = os.environ.get("API_FUZZ_EXAMPLES", "50")
SEED = os.environ.get("API_FUZZ_SEED", "20261207")
HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "schemathesis.toml")


def call(method, url, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data, method=method, headers=headers), timeout=10) as response:
        text = response.read().decode()
        return json.loads(text) if text else None


def seed_data():
    """A user with a group, a second member and todos; returns the owner's access token."""
    suffix = secrets.token_hex(4)
    owner = call("POST", API + "/api/v1/auth/register", {"username": "fuzz_" + suffix, "password": "fuzzing password"})
    member = call("POST", API + "/api/v1/auth/register", {"username": "fuzzmate_" + suffix, "password": "fuzzing password"})
    token = owner["access_token"]
    group = call("POST", API + "/api/v1/groups", {"name": "Fuzzed board"}, token)["id"]
    call("POST", f"{API}/api/v1/groups/{group}/members", {"username": member["username"], "role": "member"}, token)
    accepted = None
    for index in range(3):
        accepted = call("POST", API + "/api/v1/command", {
            "action": "create-todo", "group_id": group, "title": f"Seeded todo {index}", "notes": "line one\nline two",
            "due_date": "2027-01-0%d" % (index + 1), "assignee": member["username"], "labels": ["seed", "é"]}, token)
    for _ in range(100):  # the reads should see the todos
        status = call("GET", f"{API}/api/v1/commands/{accepted['command_id']}", token=token)
        if status["status"] != "pending":
            break
        time.sleep(0.1)
    return token


def run(name, base_url, token, extra=()):
    command = ["st", "--config-file", CONFIG, "run", base_url + "/openapi.json", "--url", base_url,
               "-H", "Authorization: Bearer " + token, "--checks", "all", "--max-examples", EXAMPLES,
               "--warnings", "off", *extra]
    if SEED != "random":
        command += ["--seed", SEED]
    print(f"api-fuzz: {name}: {' '.join(c if not c.startswith('Authorization') else 'Authorization: Bearer …' for c in command)}",
          flush=True)
    result = subprocess.run(command, capture_output=True, text=True)
    output = result.stdout + result.stderr
    summary = output[output.find("SUMMARY"):] if "SUMMARY" in output else output[-3000:]
    if result.returncode != 0:
        print(output)
    else:
        print(summary)
    match = re.search(r"(\d+) generated", output)
    cases = int(match.group(1)) if match else 0
    return result.returncode == 0, cases


def main():
    token = seed_data()
    results = [run("command-api", API, token), run("streamer", STREAMER, token, ["--exclude-path", "/events"])]
    cases = sum(count for _, count in results)
    failed = sum(1 for ok, _ in results if not ok)
    print(f"api-fuzz: schemathesis ran {cases} cases over command-api and the streamer; "
          f"{'no failures' if not failed else f'{failed} of 2 runs failed'}")
    return 0 if failed == 0 and cases > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
