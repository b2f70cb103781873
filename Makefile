# Realtime collaborative todo pipeline — local development, tests and benchmarks.
# Everything runs as local processes (no Docker): scripts/infra.sh starts nats-server and Postgres
# with state under .runtime/. See README.md.

SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT ?= swift
APT_PACKAGES := nats-server postgresql libnats-dev libpq-dev libprotobuf-c-dev pkg-config wrk curl

# Development stack (DESIGN §2 defaults).
DEV_ENV := RUNTIME_DIR=.runtime NATS_PORT=4222 NATS_MONITOR_PORT=8222 PG_PORT=5432
# `make test` and `make bench` use their own servers on other ports and never touch the dev stack.
TEST_ENV := RUNTIME_DIR=.runtime/test NATS_PORT=14222 NATS_MONITOR_PORT=18222 PG_PORT=15432
TEST_NATS_URL := nats://127.0.0.1:14222
TEST_DATABASE_URL := postgres://app:password@127.0.0.1:15432/app?sslmode=disable
# `make bench` wipes streams and tables, so it runs servers of its own.
BENCH_ENV := RUNTIME_DIR=.runtime/bench NATS_PORT=24222 NATS_MONITOR_PORT=28222 PG_PORT=25432
BENCH_NATS_URL := nats://127.0.0.1:24222
BENCH_DATABASE_URL := postgres://app:password@127.0.0.1:25432/app?sslmode=disable
DEV_NATS_URL := nats://127.0.0.1:4222
DEV_DATABASE_URL := postgres://app:password@127.0.0.1:5432/app?sslmode=disable
# Tools that manage streams (and the benchmarks) speak as the NATS `admin` user; each service is a
# user of its own (scripts/infra.sh writes the passwords, scripts/services.sh hands them out).
DEV_NATS_ADMIN := NATS_USER=admin NATS_PASSWORD_FILE=.runtime/secrets/nats-admin
BENCH_NATS_ADMIN := NATS_USER=admin NATS_PASSWORD_FILE=.runtime/bench/secrets/nats-admin

.PHONY: help deps build build-release run-infra stop-infra status-infra migrate ensure-streams run-all stop-all status \
        run-command run-engine run-sink run-streamer run-scheduler cluster-deps run-cluster stop-cluster status-cluster test-cluster test-cluster-partition browser-deps fuzz-deps test-fuzz-api test-fuzz-json test-browser test-security test-e2e test-swift-integration validate-manifests predeploy predeploy-full image bench-e2e bench-sse-capacity \
        test test-unit test-integration test-infra stop-test-infra bench clean-local

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

deps: ## Install missing Debian packages (nats-server, postgresql, libnats-dev, libpq-dev, ...)
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	else echo "deps: all present"; fi

build: ## Debug build of everything, tests included
	$(SWIFT) build --build-tests

build-release: ## Release build of the binaries (todo, todo-bench)
	$(SWIFT) build -c release

run-infra: deps ## Start nats-server (JetStream, :4222) and Postgres (:5432) under .runtime/
	@$(DEV_ENV) scripts/infra.sh start

stop-infra: ## Stop the development nats-server and Postgres
	@$(DEV_ENV) scripts/infra.sh stop

status-infra: ## Show whether the development servers run
	@$(DEV_ENV) scripts/infra.sh status

migrate: build-release ## Apply database migrations to the development database
	DATABASE_URL='$(DEV_DATABASE_URL)' .build/release/todo migrate

ensure-streams: build-release ## Create or reconcile the COMMANDS and EVENTS streams
	$(DEV_NATS_ADMIN) NATS_URL='$(DEV_NATS_URL)' .build/release/todo ensure-streams

# The five services, in the background (logs .runtime/logs, pids .runtime/pids); see scripts/services.sh.
SERVICES := RUNTIME_DIR=.runtime NATS_URL='$(DEV_NATS_URL)' DATABASE_URL='$(DEV_DATABASE_URL)' scripts/services.sh

run-all: run-infra migrate ensure-streams ## Install what is missing, build (release), migrate, start infra + the five services
	@$(SERVICES) start
	@echo
	@echo "Everything runs. Open the workspace: http://localhost:8081/  (command-api http://localhost:8080)"
	@echo "Logs: .runtime/logs/   Status: make status   Stop: make stop-all"

run-command: run-infra migrate ensure-streams ## Start (in the background) only command-api, on :8080
	@$(SERVICES) start command-api

run-engine: run-infra migrate ensure-streams ## Start only the domain engine (health :8082)
	@$(SERVICES) start domain-engine

run-sink: run-infra migrate ensure-streams ## Start only the data sink (health :8083)
	@$(SERVICES) start data-sink

run-streamer: run-infra migrate ensure-streams ## Start only the streamer (pages, reads, SSE) on :8081
	@$(SERVICES) start streamer

run-scheduler: run-infra migrate ensure-streams ## Start only the reminder scheduler (health :8084)
	@$(SERVICES) start scheduler

stop-all: ## Stop the services (SIGTERM, graceful) and the development servers
	@$(SERVICES) stop
	@$(DEV_ENV) scripts/infra.sh stop

status: ## What runs
	@$(DEV_ENV) scripts/infra.sh status
	@$(SERVICES) status

test-infra: deps ## Start the test servers (NATS :14222, Postgres :15432) under .runtime/test
	@$(TEST_ENV) scripts/infra.sh start

stop-test-infra: ## Stop the test servers
	@$(TEST_ENV) scripts/infra.sh stop

test-unit: ## Unit tests only (no servers)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip IntegrationTests

test-integration: ## Swift integration tests (test servers), then the end-to-end suite and browser test (own stack)
	@status=0; \
	$(MAKE) --no-print-directory test-swift-integration || status=$$?; \
	[ -n "$$KEEP_TEST_INFRA" ] || $(MAKE) --no-print-directory stop-test-infra; \
	if [ $$status = 0 ]; then $(MAKE) --no-print-directory test-e2e || status=$$?; fi; \
	exit $$status

test-swift-integration: test-infra ## Only the Swift integration tests, against real nats-server and Postgres (test ports)
	$(SWIFT) build --build-tests
	TEST_NATS_URL='$(TEST_NATS_URL)' TEST_DATABASE_URL='$(TEST_DATABASE_URL)' \
	TEST_RESTART_POSTGRES='$(TEST_ENV) scripts/infra.sh restart-postgres' TEST_INFRA='$(TEST_ENV) scripts/infra.sh' \
	$(SWIFT) test --skip-build --filter IntegrationTests --no-parallel

BROWSER_PACKAGES := chromium chromium-driver

browser-deps: ## Install headless Chromium, chromedriver (Debian) and selenium (PyPI) for the browser test
	@missing=""; for p in $(BROWSER_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi
	@python3 -c 'import selenium' 2>/dev/null || python3 -m pip install -q selenium

# The end-to-end suite and the browser test run the whole system as processes, on servers and
# ports of their own (scripts/e2e-stack.sh: .runtime/e2e-stack, NATS :16222, Postgres :16432, services
# :16080-16083), never the development stack's; with the debug build of `make test-unit`.
test-e2e: deps browser-deps fuzz-deps ## End-to-end suite (kill -9 per service), the black-box security suite, schemathesis over both APIs, and the browser test against the whole system
	$(SWIFT) build --product todo
	scripts/e2e-stack.sh bash -c 'python3 tests/e2e/e2e_test.py && python3 tests/security/security_test.py && python3 tests/fuzz/api_fuzz.py && SCREENSHOTS=.runtime/screenshots python3 tests/browser/workspace_test.py'

test-security: deps ## Only the black-box security suite (docs/security.md), on its own stack
	$(SWIFT) build --product todo
	scripts/e2e-stack.sh python3 tests/security/security_test.py

test-fuzz-api: deps fuzz-deps ## Only schemathesis over command-api's and the streamer's OpenAPI documents, on a stack of its own
	$(SWIFT) build --product todo
	scripts/e2e-stack.sh python3 tests/fuzz/api_fuzz.py

fuzz-deps: ## schemathesis (PyPI) for the API fuzzing
	@command -v st >/dev/null 2>&1 || python3 -m pip install -q schemathesis
	@command -v st >/dev/null 2>&1 || { echo "fuzz-deps: schemathesis installed, but its st command is not on PATH" >&2; exit 1; }

test-browser: deps browser-deps ## Only the browser test (two Chromium sessions), on its own stack
	$(SWIFT) build --product todo
	scripts/e2e-stack.sh env SCREENSHOTS=.runtime/screenshots python3 tests/browser/workspace_test.py

test: ## Unit tests, the JSON reader's fuzz target, manifest validation, then integration, end-to-end (with schemathesis), browser and cluster-fault tests (own servers)
	@$(MAKE) --no-print-directory test-unit && $(MAKE) --no-print-directory test-fuzz-json && \
	$(MAKE) --no-print-directory validate-manifests && $(MAKE) --no-print-directory test-integration && \
	$(MAKE) --no-print-directory test-cluster

test-fuzz-json: ## libFuzzer over the JSON reader for FUZZ_SECONDS (default 60) from fuzz/json-reader/corpus; a crash fails
	@scripts/fuzz-json.sh

validate-manifests: ## Offline checks of infrastructure/: kubernetes-validate --strict + Gateway API / CNPG schemas
	@python3 -c 'import kubernetes_validate' 2>/dev/null || python3 -m pip install -q kubernetes-validate
	@python3 scripts/validate-manifests.py

predeploy: ## Before a deploy: unit tests, release build, manifest validation
	@$(MAKE) --no-print-directory test-unit && $(MAKE) --no-print-directory build-release && \
	$(MAKE) --no-print-directory validate-manifests

predeploy-full: ## predeploy, then the integration, end-to-end and browser suites
	@$(MAKE) --no-print-directory predeploy && $(MAKE) --no-print-directory test-integration

image: ## Container image of the release build (needs podman or docker; not available on the dev machines)
	@engine=$$(command -v podman || command -v docker) || { echo "image: neither podman nor docker is installed"; exit 1; }; \
	$$engine build -t todo:latest -f Containerfile .

bench: deps build-release ## Benchmarks (release build, servers of their own); writes bench/results/<date>-*.md
	@$(BENCH_ENV) scripts/infra.sh start
	@status=0; \
	$(BENCH_NATS_ADMIN) .build/release/todo-bench foundation --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench pipeline --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench hot-group --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench command-api --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench streamer --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench search --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench export --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	if [ $$status = 0 ]; then $(BENCH_NATS_ADMIN) .build/release/todo-bench scheduler --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; fi; \
	$(BENCH_ENV) scripts/infra.sh stop; exit $$status

bench-sse-capacity: deps build-release ## 100k SSE streams across 7 streamer processes: RSS per stream, fan-out of one event to all (~8 min); writes bench/results/<date>-sse-capacity.md
	@$(BENCH_ENV) scripts/infra.sh start
	@status=0; \
	$(BENCH_NATS_ADMIN) .build/release/todo-bench sse-capacity --nats-url '$(BENCH_NATS_URL)' --database-url '$(BENCH_DATABASE_URL)' || status=$$?; \
	$(BENCH_ENV) scripts/infra.sh stop; exit $$status

bench-e2e: deps build-release ## End-to-end load benchmark on the whole system (release, own fresh stack); writes bench/results/<date>-e2e.md
	@# A fresh stack every run: tables and streams left by earlier runs make Postgres slower per command.
	-@RUNTIME_DIR=.runtime/bench-stack scripts/services.sh stop 2>/dev/null
	-@RUNTIME_DIR=.runtime/bench-stack NATS_PORT=26222 NATS_MONITOR_PORT=26822 PG_PORT=26432 scripts/infra.sh stop 2>/dev/null
	rm -rf .runtime/bench-stack
	STACK=bench scripts/e2e-stack.sh bash -c '.build/release/todo-bench e2e --command-api "$$COMMAND_API_URL" \
		--streamer "$$STREAMER_URL" --nats-url "$$NATS_ADMIN_URL" --database-url "$$DATABASE_URL" --pid-directory "$$RUNTIME_DIR/pids" $(E2E_ARGS)'

CLUSTER_PACKAGES := nginx

cluster-deps: deps ## Install nginx (Debian) for the local cluster's gateway
	@dpkg -s nginx >/dev/null 2>&1 || { SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(CLUSTER_PACKAGES); }

run-cluster: cluster-deps build-release ## The production topology on this machine: nginx gateway :8000, 3 NATS nodes, Postgres primary + standby, 2 replicas of every service (.runtime/cluster)
	@scripts/cluster.sh start
	@echo
	@echo "The cluster runs. Open the workspace through the gateway: http://127.0.0.1:8000/"
	@echo "Logs: .runtime/cluster/logs, .runtime/cluster/replica-*/logs   Status: make status-cluster   Stop: make stop-cluster"

stop-cluster: ## Stop the local cluster
	@scripts/cluster.sh stop

status-cluster: ## What of the local cluster runs
	@scripts/cluster.sh status

# Starts the local cluster (debug build), runs its fault test with PARTITION=$(1), stops the
# cluster and exits with the test's status.
define run-cluster-test
	$(SWIFT) build --product todo
	@status=0; TODO_BIN=.build/debug/todo scripts/cluster.sh start && \
	PARTITION=$(1) TODO_BIN=.build/debug/todo python3 -u tests/cluster/cluster_test.py || status=$$?; \
	TODO_BIN=.build/debug/todo scripts/cluster.sh stop; exit $$status
endef

test-cluster: cluster-deps ## Faults on the local cluster (tests/cluster/cluster_test.py; debug build; LISTENERS=200), without the network cut; stops it after
	$(call run-cluster-test,0)

test-cluster-partition: cluster-deps ## The same faults, then the NATS node leading EVENTS cut off its network for 20 s (root: network namespaces); not in `make test` (docs/scale-out.md, known defect)
	$(call run-cluster-test,1)

clean-local: ## Stop local servers, remove build output, .runtime and local data
	-@scripts/cluster.sh stop 2>/dev/null
	-@$(SERVICES) stop 2>/dev/null
	-@RUNTIME_DIR=.runtime/e2e-stack scripts/services.sh stop 2>/dev/null
	-@RUNTIME_DIR=.runtime/bench-stack scripts/services.sh stop 2>/dev/null
	-@$(DEV_ENV) scripts/infra.sh stop 2>/dev/null
	-@RUNTIME_DIR=.runtime/e2e-stack NATS_PORT=16222 NATS_MONITOR_PORT=16822 PG_PORT=16432 scripts/infra.sh stop 2>/dev/null
	-@RUNTIME_DIR=.runtime/bench-stack NATS_PORT=26222 NATS_MONITOR_PORT=26822 PG_PORT=26432 scripts/infra.sh stop 2>/dev/null
	-@$(TEST_ENV) scripts/infra.sh stop 2>/dev/null
	-@$(BENCH_ENV) scripts/infra.sh stop 2>/dev/null
	rm -rf .build .runtime
