# proftask: `make up` starts everything on this machine, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DATA ?= .data
KAFKA_PORT ?= 9092
KAFKA_CONTROLLER_PORT ?= 9093
HTTP_PORT ?= 8080
# DEMO=0: `make up` starts Kafka and proftask only, not the demo service
DEMO ?= 1
PROTOS := $(shell find schemas -name '*.proto')

.PHONY: install kafka-jars chromium up down replay status lint test unit readmodel conformance integration browser chaos

# The venv is rebuilt when the pins or the schemas change (setup.py generates the protobuf modules).
$(VENV)/.installed: pyproject.toml setup.py $(PROTOS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check setuptools==84.2.1 grpcio-tools==1.85.1
	$(BIN)/pip install -q --disable-pip-version-check --no-build-isolation -e '.[dev]'
	touch $@

# The Go fold (native/, proftask/pprof/native.py): a C shared library beside its Python loader.
NATIVE_LIB := proftask/pprof/libproftask_fold.so
$(NATIVE_LIB): $(shell find native -name '*.go') native/go.mod native/go.sum
	cd native && go build -buildmode=c-shared -o ../$(NATIVE_LIB) ./cmd/libfold
	rm -f $(NATIVE_LIB:.so=.h)

install: $(VENV)/.installed $(NATIVE_LIB)

kafka-jars:
	deploy/kafka/kafka.sh resolve

up: install kafka-jars
	deploy/kafka/kafka.sh start $(DATA)/kafka $(KAFKA_PORT) $(KAFKA_CONTROLLER_PORT)
	PROFTASK_KAFKA_BOOTSTRAP=127.0.0.1:$(KAFKA_PORT) $(BIN)/proftask kafka wait
	DATA=$(DATA) HTTP_PORT=$(HTTP_PORT) KAFKA_PORT=$(KAFKA_PORT) deploy/standalone.sh up
	[ "$(DEMO)" = 0 ] || DATA=$(DATA) HTTP_PORT=$(HTTP_PORT) deploy/demo.sh up
	@echo
	@echo "proftask web UI: http://127.0.0.1:$(HTTP_PORT)/   (gRPC for SkyWalking agents on 127.0.0.1:$${PROFTASK_GRPC_PORT:-11800})"
	@if [ "$(DEMO)" = 0 ]; then echo "no demo service (DEMO=0): point your own agents at proftask"; else \
	  echo "demo service 'demo', instances demo-1 and demo-2, agents running; try:"; \
	  echo "  curl -s -XPOST http://127.0.0.1:$(HTTP_PORT)/api/v1/pprof/tasks -H 'Content-Type: application/json' \\"; \
	  echo "    -d '{\"serviceId\":\"demo\",\"serviceInstanceIds\":[\"demo-1\",\"demo-2\"],\"events\":\"CPU\",\"duration\":1}'"; \
	  if [ -n "$${PROFTASK_TOKENS:-}" ]; then echo "  (tokens are on: add -H 'Authorization: Bearer <a user token of PROFTASK_TOKENS>')"; fi; fi

down:
	DATA=$(DATA) deploy/demo.sh down
	DATA=$(DATA) deploy/standalone.sh down
	deploy/kafka/kafka.sh stop $(DATA)/kafka

# Rebuild ClickHouse from Kafka with proftask stopped (README): start the broker if it is not
# running, run `proftask replay` as deploy/standalone.sh runs proftask, stop the broker again if
# this started it.
replay: install kafka-jars
	@started=; \
	if ! deploy/kafka/kafka.sh status $(DATA)/kafka; then \
	  deploy/kafka/kafka.sh start $(DATA)/kafka $(KAFKA_PORT) $(KAFKA_CONTROLLER_PORT) && started=1; \
	fi; \
	PROFTASK_KAFKA_BOOTSTRAP=127.0.0.1:$(KAFKA_PORT) $(BIN)/proftask kafka wait \
	  && DATA=$(DATA) HTTP_PORT=$(HTTP_PORT) KAFKA_PORT=$(KAFKA_PORT) deploy/standalone.sh replay; \
	rc=$$?; \
	if [ -n "$$started" ]; then deploy/kafka/kafka.sh stop $(DATA)/kafka; fi; \
	exit $$rc

status:
	DATA=$(DATA) HTTP_PORT=$(HTTP_PORT) deploy/standalone.sh status

chromium:
	deploy/browser.sh

# Test tiers: a test's tier is its folder under tests/ (tests/conftest.py marks it). Each runs
# alone; `make test` runs them all. Times on this 2-core machine are in the README.
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider
# Two workers, one test module per worker: most of the suite waits on brokers, processes and
# Go programs, not on the CPU.
PARALLEL := -n 2 --dist loadfile

unit: install
	$(PYTEST) tests/unit

readmodel: install
	$(PYTEST) tests/readmodel

# Against `go tool pprof` over ../shared/conformance; fails (never skips) without it.
conformance: install kafka-jars
	$(PYTEST) $(PARALLEL) tests/conformance

integration: install kafka-jars
	$(PYTEST) $(PARALLEL) tests/integration

browser: install kafka-jars chromium
	$(PYTEST) tests/browser

# The fault tests: a broker of a 3-node Kafka cluster, an ingest replica, the processor killed;
# ClickHouse away for 30 s.
chaos: install kafka-jars
	$(PYTEST) tests/chaos

# The suite starts its own broker and proftask processes on free ports in its own directories,
# so it runs beside a `make up` stack without touching it.
test: lint kafka-jars chromium
	cd agents/go && go test ./...
	cd native && go test ./...
	$(PYTEST) $(PARALLEL)

# ruff and mypy (configured in pyproject.toml), gofmt and go vet for the Go modules
lint: install
	$(BIN)/ruff check
	$(BIN)/mypy
	cd agents/go && test -z "$$(gofmt -l .)" && go vet ./...
	cd native && test -z "$$(gofmt -l .)" && go vet ./...
	cd tests/integration/swclient && test -z "$$(gofmt -l .)" && go vet ./...
