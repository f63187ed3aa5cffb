SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo

.PHONY: help deps test run observe bench lint fmt proto-snapshot check-k8s clean audit-verify

help:
	@echo "make run    - start the whole platform on this machine (PostgreSQL, broker, services, demo data)"
	@echo "make test   - install what is missing, then run every test against real PostgreSQL and Kafka"
	@echo "make bench  - measure the outbox pipeline, commit-to-consumer latency and search latency"
	@echo "make observe - a local Prometheus with the chart's alert rules, scraping what make run started"
	@echo "make lint   - rustfmt and clippy"
	@echo "make audit-verify - recompute the sandbox audit chain of what make run started (WF-30)"

deps:
	@bash scripts/ensure-deps.sh

test: deps
	@bash scripts/test.sh

run: deps
	$(CARGO) build --locked -p platform-launcher -p platform-broker
	$(CARGO_TARGET_DIR)/debug/platform run

# A token the platform `make run` started accepts, alone on stdout:
# make token JURISDICTION=440305 ROLE=operator [ORG=...] [SUB=...]
.PHONY: token
token:
	@test -x $(CARGO_TARGET_DIR)/debug/platform || { echo "make token: start the platform first with make run" >&2; exit 2; }
	@$(CARGO_TARGET_DIR)/debug/platform token --jurisdiction "$(JURISDICTION)" --role "$(ROLE)" $(if $(ORG),--org "$(ORG)") $(if $(SUB),--sub "$(SUB)")

# Recomputes the sandbox gateway's audit chain (GET /audit/verify) of the platform `make run`
# started (or of SANDBOX_URL with TOKEN_DATA_ADMIN from the environment); fails on a broken link.
audit-verify:
	@set -a; [ -f .dev/platform.env ] && . .dev/platform.env; set +a; \
	out=$$(curl -sf -H "Authorization: Bearer $$TOKEN_DATA_ADMIN" "$$SANDBOX_URL/audit/verify") || { echo "audit-verify: the sandbox gateway did not answer (is make run up?)"; exit 2; }; \
	echo "$$out"; echo "$$out" | grep -q '"intact":true'

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
