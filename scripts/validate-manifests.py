#!/usr/bin/env python3
"""Offline checks of infrastructure/ (run by `make validate-manifests`, part of `make test`).

- Core kinds: `kubernetes-validate --strict` (schemas of the Kubernetes API, no cluster needed).
- Gateway API and CloudNativePG kinds: JSON Schemas in infrastructure/schemas (strict subsets of
  the upstream CRDs), plus the rules a schema cannot say (backendRequest <= request).
- The kustomization lists every manifest and nothing missing; no Secret is committed; every
  Deployment has probes, resources, a non-root restricted security context and a grace period
  longer than its drain; every metric the Grafana dashboard queries exists in the code; the
  HTTPRoutes send every operation of each OpenAPI document to the service that serves it, and so
  does the local gateway (infrastructure/local/nginx.conf, `make run-cluster`).
Exits non-zero with a list of problems.
"""
import glob
import json
import os
import re
import subprocess
import sys

import jsonschema
import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
INFRA = os.path.join(ROOT, "infrastructure")
SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "GatewayClass"): "gatewayclass.schema.json",
    ("gateway.networking.k8s.io/v1", "Gateway"): "gateway.schema.json",
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute.schema.json",
    ("postgresql.cnpg.io/v1", "Cluster"): "cnpg-cluster.schema.json",
}
problems = []


def seconds(duration):
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|h|m|s)", duration):
        total += int(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def main():
    with open(os.path.join(INFRA, "kustomization.yaml")) as handle:
        kustomization = yaml.safe_load(handle)
    listed = kustomization["resources"]
    files = sorted(os.path.relpath(path, INFRA) for path in glob.glob(os.path.join(INFRA, "**", "*.yaml"), recursive=True)
                   if not path.endswith("kustomization.yaml"))
    for path in files:
        if path not in listed:
            problems.append(f"{path} is not listed in kustomization.yaml")
    for path in listed:
        if not os.path.exists(os.path.join(INFRA, path)):
            problems.append(f"kustomization.yaml lists {path}, which does not exist")

    core_files, documents = set(), []
    for path in listed:
        with open(os.path.join(INFRA, path)) as handle:
            for document in yaml.safe_load_all(handle):
                if document:
                    documents.append((path, document))
    for path, document in documents:
        key = (document.get("apiVersion"), document.get("kind"))
        name = f"{path}: {key[1]}/{document.get('metadata', {}).get('name')}"
        if key[1] == "Secret":
            problems.append(f"{name}: Secrets are never committed (create them in the cluster)")
        if key in SCHEMAS:
            with open(os.path.join(INFRA, "schemas", SCHEMAS[key])) as handle:
                schema = json.load(handle)
            for error in jsonschema.Draft202012Validator(schema).iter_errors(document):
                problems.append(f"{name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
            if key[1] == "HTTPRoute":
                for rule in document["spec"].get("rules", []):
                    timeouts = rule.get("timeouts", {})
                    request, backend = timeouts.get("request"), timeouts.get("backendRequest")
                    if request and backend and seconds(request) != 0 and seconds(backend) > seconds(request):
                        problems.append(f"{name}: backendRequest {backend} exceeds request {request}")
        elif "." in (key[0] or "").split("/")[0]:
            if not key[0].startswith(("apps/", "batch/", "policy/", "autoscaling/", "networking.k8s.io/", "rbac.authorization.k8s.io/")):
                problems.append(f"{name}: no schema for {key[0]} {key[1]}")
            else:
                core_files.add(path)
        else:
            core_files.add(path)
        if key == ("apps/v1", "Deployment"):
            check_deployment(name, document)

    result = subprocess.run(["kubernetes-validate", "--strict", "--quiet", *[os.path.join(INFRA, p) for p in sorted(core_files)]],
                            capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or "ERROR" in output or "WARN" in output:
        problems.append("kubernetes-validate --strict:\n" + output)
    check_dashboard()
    check_routes([document for _, document in documents if document.get("kind") == "HTTPRoute"])

    if problems:
        print("manifest validation FAILED:\n- " + "\n- ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"manifests valid: {len(documents)} objects in {len(listed)} files "
          f"({len(core_files)} files through kubernetes-validate --strict, the rest through infrastructure/schemas)")


def route_backend(routes, path, method):
    """The service the Gateway sends `method path` to: Gateway API precedence (an exact path over
    a prefix, a longer prefix over a shorter one, a match with a method over one without)."""
    best = None
    for route in routes:
        for rule in route["spec"].get("rules", []):
            backends = [ref["name"] for ref in rule.get("backendRefs", [])]
            if not backends:
                continue
            for match in rule.get("matches", []):
                kind, value = match["path"]["type"], match["path"]["value"]
                if match.get("method") not in (None, method):
                    continue
                if kind == "Exact" and path != value:
                    continue
                if kind == "PathPrefix" and not (value == "/" or path == value or path.startswith(value.rstrip("/") + "/")):
                    continue
                rank = (kind == "Exact", len(value), "method" in match)
                if best is None or rank > best[0]:
                    best = (rank, backends[0])
    return best[1] if best else None


def nginx_backend(config, path, method):
    """The upstream nginx proxies `method path` to: an exact location first, else the longest prefix."""
    exact, prefix = None, None
    for modifier, location, body in re.findall(r"location\s+(=|\^~)?\s*(\S+)\s*\{([^}]*)\}", config):
        target = re.search(r"proxy_pass\s+http://(\S+?);", body)
        if not target:
            continue
        if modifier == "=" and path == location:
            exact = target.group(1)
        elif modifier != "=" and path.startswith(location) and (prefix is None or len(location) > len(prefix[0])):
            prefix = (location, target.group(1))
    upstream = exact or (prefix[1] if prefix else None)
    if upstream == "$groups_backend":
        upstream = "command_api" if method in ("POST", "PATCH", "DELETE") else "streamer"
    return upstream.replace("_", "-") if upstream else None


def check_routes(routes):
    with open(os.path.join(INFRA, "local", "nginx.conf")) as handle:
        nginx = handle.read()
    for service in ("command-api", "streamer"):
        with open(os.path.join(ROOT, "Sources", "HTTPAPI", "OpenAPI", f"{service}.json")) as handle:
            document = json.load(handle)
        for path, operations in document["paths"].items():
            if path in ("/healthz", "/openapi.json"):
                continue  # each service's own; not routed by path
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            for method in operations:
                backend = route_backend(routes, concrete, method.upper())
                if backend != service:
                    problems.append(f"the HTTPRoutes send {method.upper()} {path} to {backend}, but {service} serves it")
                local = nginx_backend(nginx, concrete, method.upper())
                if local != service:
                    problems.append(f"infrastructure/local/nginx.conf sends {method.upper()} {path} to {local}, but {service} serves it")


def check_deployment(name, deployment):
    spec = deployment["spec"]["template"]["spec"]
    pod_security = spec.get("securityContext", {})
    if not pod_security.get("runAsNonRoot"):
        problems.append(f"{name}: pod must set runAsNonRoot")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    for container in spec["containers"]:
        where = f"{name} container {container['name']}"
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != path:
                problems.append(f"{where}: {probe} must GET {path}")
        resources = container.get("resources", {})
        if "requests" not in resources or "memory" not in resources.get("limits", {}):
            problems.append(f"{where}: needs resource requests and a memory limit")
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False or security.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: must not escalate privileges and must drop all capabilities")
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        # The services drain for up to 25 s after SIGTERM (ServiceRunner's grace period).
        if grace <= pre_stop + 25:
            problems.append(f"{where}: terminationGracePeriodSeconds {grace} is not longer than preStop {pre_stop} s + 25 s drain")


def check_dashboard():
    with open(os.path.join(INFRA, "observability", "todo-dashboard.json")) as handle:
        dashboard = json.load(handle)
    sources = ""
    for path in glob.glob(os.path.join(ROOT, "Sources", "**", "*.swift"), recursive=True):
        with open(path) as handle:
            sources += handle.read()
    # Hummingbird's own metrics, as the Prometheus exporter names them.
    known = {"hb_requests", "hb_request_errors", "http_server_request_duration", "http_server_active_requests"}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            for metric in re.findall(r"([a-z_]+)\{", target["expr"]):
                base = re.sub(r"_(bucket|count|sum)$", "", metric)
                if base not in known and f'"{base}"' not in sources:
                    problems.append(f"dashboard panel '{panel['title']}' queries {metric}, which no service exports")


if __name__ == "__main__":
    main()
