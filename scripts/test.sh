#!/usr/bin/env bash
# `make test`: builds everything, starts a private PostgreSQL for the run (fsync off: the data
# is thrown away), runs every test (each test process serves its own Kafka-protocol broker),
# then stops PostgreSQL whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR

PGDIR="$CARGO_TARGET_DIR/test-pg"
# Free loopback ports, so a server left running elsewhere on this machine cannot collide.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PGPORT="${PLATFORM_TEST_PG_PORT:-$(free_port)}"

if [ ! -x "$CARGO_TARGET_DIR/debug/platform" ]; then
  echo "make test: first build of the workspace into $CARGO_TARGET_DIR: about 25 minutes on 2 cores" \
       "(later runs rebuild only what changed); the tests then take about 5 minutes."
fi
cargo build --workspace --all-targets --locked
# ACRO 1.0.2 for the output checks' differential test (shared/output-checks), once.
bash scripts/acro-venv.sh
export ACRO_PYTHON="$CARGO_TARGET_DIR/acro-venv/bin/python"
# A server left running by an interrupted run would hold the port: stop it before starting afresh.
"$CARGO_TARGET_DIR/debug/platform" pg-stop --dir "$PGDIR" --port "$PGPORT" >/dev/null 2>&1 || true
rm -rf "$PGDIR"
url=$("$CARGO_TARGET_DIR/debug/platform" pg-start --dir "$PGDIR" --port "$PGPORT" --fast | sed -n 's/^DATABASE_URL=//p')
trap '"$CARGO_TARGET_DIR/debug/platform" pg-stop --dir "$PGDIR" --port "$PGPORT" >/dev/null 2>&1 || true' EXIT
export PLATFORM_TEST_DATABASE_URL="$url"
echo "test PostgreSQL: $url"

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  echo "cargo-nextest not found: running cargo test"
  cargo test --workspace --locked --no-fail-fast "$@"
fi
# Documentation tests are not run by nextest.
cargo test --workspace --locked --doc
# Every service's OpenAPI document (written by its tests) against the OpenAPI 3.1 specification.
bash scripts/check-openapi.sh

# `make run`'s launcher end to end: private PostgreSQL, broker process, services, demo data.
rm -rf "$CARGO_TARGET_DIR/launcher-check"
PLATFORM_PG_PORT=$(free_port) PLATFORM__TELEMETRY__LOG_FORMAT=json RUST_LOG=warn \
  "$CARGO_TARGET_DIR/debug/platform" run --dir "$CARGO_TARGET_DIR/launcher-check" --check
grep -q '^TOKEN_OPERATOR=' "$CARGO_TARGET_DIR/launcher-check/platform.env"
# Every seed jurisdiction is loaded, and `platform token` prints a bare JWT from the kept key.
for j in 610000 370700 130700 620100 440305; do
  grep -Eq "^JURISDICTIONS=(.*,)?$j(,|\$)" "$CARGO_TARGET_DIR/launcher-check/platform.env"
done
"$CARGO_TARGET_DIR/debug/platform" token --dir "$CARGO_TARGET_DIR/launcher-check" --jurisdiction 440305 --role operator \
  | grep -Eqx '[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+'

# Every dashboard panel and alert rule against a Prometheus scraping the running platform (issue 20).
bash scripts/check-dashboards.sh

# The Helm chart, cluster prerequisites, dashboards and alert rules (rendered and validated
# offline; see scripts/check_k8s.py).
bash scripts/check-k8s.sh
