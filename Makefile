SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo

.PHONY: help deps test run observe bench lint fmt proto-snapshot check-k8s clean

help:
	@echo "make run    - start the whole platform on this machine (PostgreSQL, broker, services, demo data)"
	@echo "make test   - install what is missing, then run every test against real PostgreSQL and Kafka"
	@echo "make bench  - measure the outbox pipeline, commit-to-consumer latency and search latency"
	@echo "make observe - a local Prometheus with the chart's alert rules, scraping what make run started"
	@echo "make lint   - rustfmt and clippy"

deps:
	@bash scripts/ensure-deps.sh

test: deps
	@bash scripts/test.sh

run: deps
	$(CARGO) build --locked -p platform-launcher -p platform-broker
	$(CARGO_TARGET_DIR)/debug/platform run

observe:
	@bash scripts/observe.sh

check-k8s:
	@bash scripts/check-k8s.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

# After an intended, wire-compatible schema change: refresh the committed descriptor snapshot.
proto-snapshot:
	UPDATE_PROTO_SNAPSHOT=1 $(CARGO) test -p platform-events --lib compat

clean:
	rm -rf .dev $(CARGO_TARGET_DIR)/test-pg

bench: deps
	@bash scripts/bench.sh
