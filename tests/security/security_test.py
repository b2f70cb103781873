#!/usr/bin/env python3
"""Black-box security suite (DESIGN §11, docs/security.md): the whole system as processes, spoken
to over HTTP, SSE and the NATS wire protocol only, as an attacker would.

Run by `make test-e2e` on the end-to-end stack (scripts/e2e-stack.sh). Standard library only.
Each check names what it defends; a failure names what broke. Timeouts are liveness bounds.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import secrets
import socket
import sys
import threading
import time
import urllib.parse

API = os.environ.get("COMMAND_API_URL", "http://127.0.0.1:8080")
STREAMER = os.environ.get("STREAMER_URL", "http://127.0.0.1:8081")
RUNTIME = os.environ.get("E2E_RUNTIME_DIR", ".runtime/e2e-stack")
NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")
PASSWORD = "security suite password"
FAILURES = []


def check(condition, message):
    if condition:
        print(f"  ok: {message}")
    else:
        print(f"  FAILED: {message}")
        FAILURES.append(message)


def host_port(base):
    url = urllib.parse.urlsplit(base)
    return url.hostname, url.port


def send(base, method, path, body=None, headers=None, raw_body=None):
    """One request; returns (status, headers as a dict of lists, parsed JSON or text)."""
    host, port = host_port(base)
    connection = http.client.HTTPConnection(host, port, timeout=10)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    data = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
    connection.request(method, path, body=data, headers=all_headers)
    response = connection.getresponse()
    text = response.read().decode(errors="replace")
    fields = {}
    for name, value in response.getheaders():
        fields.setdefault(name.lower(), []).append(value)
    connection.close()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return response.status, fields, parsed


def bearer(token):
    return {"Authorization": "Bearer " + token}


def register(prefix):
    name = f"{prefix}_{secrets.token_hex(4)}"
    status, _, body = send(API, "POST", "/api/v1/auth/register", {"username": name, "password": PASSWORD})
    assert status == 201, (status, body)
    return body


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Stream:
    """GET /events over a raw socket: the response head, then whether the server ends it."""

    def __init__(self, token, group):
        host, port = host_port(STREAMER)
        self.socket = socket.create_connection((host, port), timeout=10)
        request = (f"GET /events?group_id={group} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n")
        self.socket.sendall(request.encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.socket.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        head = self.buffer.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        self.status = int(head.split(" ")[1]) if head.startswith("HTTP/") else 0
        self.head = head.lower()

    def ended(self, seconds):
        """True when the response's last chunk or the connection's end arrives within `seconds`."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            if b"\r\n0\r\n\r\n" in self.buffer:
                return True
            self.socket.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = self.socket.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                return True
            self.buffer += chunk
        return False

    def close(self):
        try:
            self.socket.close()
        except OSError:
            pass


def forged_tokens(real):
    header, payload, signature = real.split(".")
    claims = json.loads(unb64url(payload))
    public = open(os.path.join(RUNTIME, "jwt", "public-keys.jwks")).read()
    kid = json.loads(public)["keys"][0]["kid"]
    x = json.loads(public)["keys"][0]["x"]
    tokens = {}
    for name, head in (("alg none", {"alg": "none", "typ": "JWT"}), ("alg none with our kid", {"alg": "none", "kid": kid})):
        tokens[name] = f"{b64url(json.dumps(head).encode())}.{payload}."
    # Algorithm confusion: HS256 with the public key (as the JWKS, the raw key, its text) as secret.
    for name, secret in (("HS256 keyed with the JWKS", public.encode()), ("HS256 keyed with the raw public key", unb64url(x)),
                         ("HS256 keyed with x", x.encode())):
        head = b64url(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        mac = hmac.new(secret, f"{head}.{payload}".encode(), hashlib.sha256).digest()
        tokens[name] = f"{head}.{payload}.{b64url(mac)}"
    tokens["unknown kid"] = f"{b64url(json.dumps({'alg': 'EdDSA', 'kid': 'attacker', 'typ': 'JWT'}).encode())}.{payload}.{signature}"
    claims_other = dict(claims, sub="00000000-0000-0000-0000-000000000001", username="admin")
    tokens["another user's claims under a real signature"] = f"{header}.{b64url(json.dumps(claims_other).encode())}.{signature}"
    tokens["a signature of another token"] = f"{header}.{payload}.{b64url(bytes(64))}"
    return tokens


def test_forged_tokens(alice, group):
    print("forged and algorithm-confused tokens")
    for name, token in forged_tokens(alice["access_token"]).items():
        statuses = [
            send(STREAMER, "GET", "/api/v1/groups", headers=bearer(token))[0],
            send(API, "POST", "/api/v1/command", {"action": "create-todo", "group_id": group, "title": "x"}, headers=bearer(token))[0],
            send(API, "POST", "/api/v1/auth/logout-everywhere", {}, headers=bearer(token))[0],
        ]
        stream = Stream(token, group)
        statuses.append(stream.status)
        stream.close()
        check(statuses == [401, 401, 401, 401], f"{name}: 401 on reads, writes, account actions and streams ({statuses})")


def test_revocation():
    print("revocation: tokens and streams end on every service")
    user = register("revoked")
    _, _, group = send(API, "POST", "/api/v1/groups", {"name": "Revoked"}, headers=bearer(user["access_token"]))
    stream = Stream(user["access_token"], group["id"])
    check(stream.status == 200, "the stream opens")
    started = time.time()
    check(send(API, "POST", "/api/v1/auth/logout", {"refresh_token": user["refresh_token"]})[0] == 204, "logout")
    refused_at = None
    while time.time() - started < 5:
        if (send(STREAMER, "GET", "/api/v1/groups", headers=bearer(user["access_token"]))[0] == 401
                and send(API, "GET", "/api/v1/commands/x", headers=bearer(user["access_token"]))[0] == 401):
            refused_at = time.time() - started
            break
        time.sleep(0.02)
    check(refused_at is not None, f"the access token answers 401 on both services after logout ({refused_at and round(refused_at, 3)} s)")
    check(stream.ended(5), "the open stream ends")
    stream.close()
    check(send(API, "POST", "/api/v1/auth/refresh", {"refresh_token": user["refresh_token"]})[0] == 401, "the refresh token is spent")

    other = register("reused")
    _, _, rotated = send(API, "POST", "/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})
    _, _, rotated = send(API, "POST", "/api/v1/auth/refresh", {"refresh_token": rotated["refresh_token"]})
    check(send(API, "POST", "/api/v1/auth/refresh", {"refresh_token": other["refresh_token"]})[0] == 401,
          "a spent refresh token (its successor used) is refused")
    time.sleep(1)
    check(send(STREAMER, "GET", "/api/v1/groups", headers=bearer(rotated["access_token"]))[0] == 401,
          "and presenting it ends the session it was stolen from")


def test_cookies():
    print("the browser's session cookie")
    name = f"cookie_{secrets.token_hex(4)}"
    status, headers, body = send(API, "POST", "/api/v1/auth/register", {"username": name, "password": PASSWORD},
                                 headers={"X-Session-Transport": "cookie", "Origin": STREAMER})
    cookie = (headers.get("set-cookie") or [""])[0]
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")[1:]}
    check(status == 201 and "refresh_token" not in body, "the page never sees the refresh token")
    check("httponly" in attributes and attributes.get("samesite") == "SameSite=Strict" and attributes.get("path") == "Path=/api/v1/auth",
          f"HttpOnly, SameSite=Strict, Path=/api/v1/auth ({cookie.split(';', 1)[-1].strip()})")
    value = cookie.split(";")[0]
    status, _, _ = send(API, "POST", "/api/v1/auth/refresh", raw_body="{}", headers={"Cookie": value, "Origin": "https://evil.example",
                                                                                   "X-Session-Transport": "cookie"})
    check(status == 403, "another site's page cannot use it")
    status, _, _ = send(API, "POST", "/api/v1/auth/refresh", raw_body="{}", headers={"Cookie": value})
    check(status == 401, "nor a request without the custom header (a plain cross-site form)")


def test_stream_cap(owner, group):
    print("per-user stream cap")
    streams = [Stream(owner["access_token"], group) for _ in range(32)]
    opened = sum(1 for stream in streams if stream.status == 200)
    extra = Stream(owner["access_token"], group)
    check(opened == 32 and extra.status == 429, f"32 streams open, the 33rd gets 429 ({opened}, {extra.status})")
    for stream in streams + [extra]:
        stream.close()


def test_half_sent_requests():
    print("a half-sent request keeps no socket (takes ~30 s)")
    results = {}
    head_only = b"GET /api/v1/groups HTTP/1.1\r\nHost: x\r\nX-Slow: "
    body_part = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user"

    def probe(base, request, name):
        host, port = host_port(base)
        sock = socket.create_connection((host, port), timeout=60)
        sock.sendall(request)
        started = time.time()
        try:
            while True:
                if not sock.recv(1024):
                    break
        except OSError:
            pass
        results[f"{base}: {name}"] = time.time() - started
        sock.close()

    threads = [threading.Thread(target=probe, args=(base, request, name))
               for base in (API, STREAMER) for request, name in ((head_only, "half a head"), (body_part, "half a body"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for what, seconds in sorted(results.items()):
        check(seconds <= 32, f"{what}: the socket is closed after {seconds:.1f} s")


def test_headers_paths_and_redirect(alice, group):
    print("headers, paths, internal routes, redirect")
    token = alice["access_token"]
    for base, method, path, authed in ((STREAMER, "GET", "/", False), (STREAMER, "GET", "/login", False),
                                       (STREAMER, "GET", "/api/v1/groups", True), (API, "GET", "/api/v1/commands/x", True),
                                       (API, "POST", "/api/v1/auth/login", False), (STREAMER, "GET", "/nope", False)):
        status, headers, _ = send(base, method, path, body={} if method == "POST" else None, headers=bearer(token) if authed else {})
        check(headers.get("x-content-type-options") == ["nosniff"], f"nosniff on {method} {path} ({status})")
        if authed:
            check("no-store" in (headers.get("cache-control") or [""])[0], f"no-store on authenticated {path}")
    stream = Stream(token, group)
    check("x-content-type-options: nosniff" in stream.head and "cache-control: no-store" in stream.head, "nosniff and no-store on a stream")
    stream.close()
    for base in (API, STREAMER):
        for path in ("/metrics", "/readyz"):
            check(send(base, "GET", path)[0] == 404, f"{path} is not on {base}'s public port")
    status, _, _ = send(API, "POST", "//api/v1/command", {"action": "create-todo", "group_id": group, "title": "x"}, headers=bearer(token))
    check(status == 400, f"a second spelling of a path (//api/…) is refused before limits apply ({status})")
    status, headers, body = send(STREAMER, "GET", "/login?next=https://evil.example/")
    check(status == 200 and "location" not in headers and "evil.example" not in str(body), "/login?next= is never a server-side redirect nor reflected")


def test_cross_group(alice, group):
    print("cross-group access on every read, write and stream")
    mallory = register("mallory")
    token = mallory["access_token"]
    reads = [f"/api/v1/groups/{group}/members", f"/api/v1/todos?group_id={group}", f"/api/v1/groups/{group}/events",
             f"/ui/workspace?group_id={group}", f"/ui/settings?group_id={group}"]
    for path in reads:
        status = send(STREAMER, "GET", path, headers=bearer(token))[0]
        check(status in (403, 404), f"GET {path.split('?')[0]} → {status}")
    _, _, groups = send(STREAMER, "GET", "/api/v1/groups", headers=bearer(token))
    check(all(g["group_id"] != group for g in groups["groups"]), "the group is not in mallory's list")
    writes = [("POST", "/api/v1/command", {"action": "create-todo", "group_id": group, "title": "mine now"}),
              ("POST", f"/api/v1/groups/{group}/members", {"username": mallory["username"], "role": "admin"}),
              ("PATCH", f"/api/v1/groups/{group}/members/role", {"username": alice["username"], "role": "member"}),
              ("DELETE", f"/api/v1/groups/{group}/members/{alice['username']}", None),
              ("DELETE", f"/api/v1/groups/{group}", None)]
    for method, path, body in writes:
        status = send(API, method, path, body, headers=bearer(token))[0]
        check(status in (403, 404), f"{method} {path} → {status}")
    stream = Stream(token, group)
    check(stream.status in (403, 404), f"GET /events of the group → {stream.status}")
    stream.close()


def nats_publish(user, subject):
    """Publishes as `user` over the NATS wire protocol; returns the server's answer to it."""
    password = open(os.path.join(RUNTIME, "secrets", f"nats-{user}")).read().strip()
    url = urllib.parse.urlsplit(NATS_URL)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.recv(65536)  # INFO
    connect = json.dumps({"user": user, "pass": password, "verbose": False, "pedantic": False, "name": "security-suite"})
    sock.sendall(f"CONNECT {connect}\r\nPUB {subject} 2\r\nhi\r\nPING\r\n".encode())
    answer = b""
    while b"PONG" not in answer:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    return answer.decode(errors="replace")


def test_bus():
    print("bus permissions (NATS wire protocol)")
    check("Permissions Violation" in nats_publish("command-api", "app.event.000.grp-forged"), "command-api cannot publish events")
    check("Permissions Violation" not in nats_publish("command-api", "app.session.revoked"), "control: command-api announces revocations")
    for subject in ("app.event.000.grp-forged", "app.command.000.grp-forged", "app.session.revoked", "anything.at.all"):
        check("Permissions Violation" in nats_publish("streamer", subject), f"the streamer cannot publish {subject}")
    check("Permissions Violation" in nats_publish("domain-engine", "app.command.000.grp-forged"), "the engine cannot publish commands")
    check("Authorization Violation" in nats_publish_unknown(), "no user, no connection")


def nats_publish_unknown():
    url = urllib.parse.urlsplit(NATS_URL)
    sock = socket.create_connection((url.hostname, url.port), timeout=5)
    sock.recv(65536)
    sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
    answer = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    sock.close()
    return answer.decode(errors="replace")


def test_services_stayed_within_their_permissions():
    """Every violation nats-server logged in this run was one of this suite's deliberate probes:
    the services themselves never needed more than their permissions allow."""
    print("the services stayed within their bus permissions")
    path = os.path.join(RUNTIME, "logs", "nats-server.log")
    with open(path, "rb") as log:
        log.seek(int(os.environ.get("NATS_LOG_START", "0")))
        lines = [line.decode(errors="replace") for line in log if b"Violation" in line]
    probes = ("grp-forged", "anything.at.all", "app.session.revoked", "Authorization Violation")
    unexpected = [line.strip() for line in lines if not any(probe in line for probe in probes)]
    check(not unexpected, f"no other permission violation in nats-server's log ({unexpected[:3]})")


def main():
    alice = register("alice")
    _, _, created = send(API, "POST", "/api/v1/groups", {"name": "Secrets"}, headers=bearer(alice["access_token"]))
    group = created["id"]
    test_forged_tokens(alice, group)
    test_revocation()
    test_cookies()
    test_stream_cap(alice, group)
    test_headers_paths_and_redirect(alice, group)
    test_cross_group(alice, group)
    test_bus()
    test_half_sent_requests()
    test_services_stayed_within_their_permissions()
    if FAILURES:
        print(f"security suite FAILED ({len(FAILURES)}):\n- " + "\n- ".join(FAILURES))
        sys.exit(1)
    print("security suite passed")


if __name__ == "__main__":
    main()
