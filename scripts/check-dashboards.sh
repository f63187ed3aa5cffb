#!/usr/bin/env bash
# Every dashboard panel and alert rule against live series (issue 20): starts the platform as
# `make run` does (private PostgreSQL, broker, every service, demo data; free ports, in
# $CARGO_TARGET_DIR/dashboards-check), a Prometheus scraping it every second with the chart's rules
# (scripts/observe.sh), and evaluates every expression with scripts/check_dashboards.py, which
# fails on a parse error, an unhealthy rule, a panel with no data or an alert over a metric
# without series (its ALLOWED list names the metrics that appear only after an event, and why).
# `make test` runs it after `platform run --check`; it stops what it started, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
DIR="$CARGO_TARGET_DIR/dashboards-check"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rm -rf "$DIR" && mkdir -p "$DIR"
PLATFORM_PG_PORT=$(free_port) PLATFORM_CATALOG_PORT=0 PLATFORM_AUTHORIZATION_PORT=0 PLATFORM_SANDBOX_PORT=0 \
  PLATFORM__TELEMETRY__LOG_FORMAT=json RUST_LOG=warn \
  "$CARGO_TARGET_DIR/debug/platform" run --dir "$DIR/platform" >"$DIR/platform.log" 2>&1 &
platform=$!
prometheus=""
stop() {
  [ -z "$prometheus" ] || kill "$prometheus" 2>/dev/null || true
  kill -INT "$platform" 2>/dev/null || true   # Ctrl-C: the launcher stops the services, broker and PostgreSQL
  wait 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 180); do
  [ -f "$DIR/platform/platform.env" ] && break
  kill -0 "$platform" 2>/dev/null || { tail -20 "$DIR/platform.log"; echo "check-dashboards: the platform did not start" >&2; exit 1; }
  sleep 0.5
done
[ -f "$DIR/platform/platform.env" ] || { echo "check-dashboards: the platform did not start in 90 s" >&2; exit 1; }

listen="127.0.0.1:$(free_port)"
PLATFORM_ENV_FILE="$DIR/platform/platform.env" OBSERVE_DIR="$DIR/prometheus" OBSERVE_LISTEN="$listen" \
  OBSERVE_SCRAPE_INTERVAL=1s OBSERVE_CHECK=0 bash scripts/observe.sh >"$DIR/prometheus.log" 2>&1 &
prometheus=$!
# Ready within seconds; the margin is for observe.sh installing Debian's prometheus on a fresh machine.
python3 scripts/check_dashboards.py --prometheus "http://$listen" --scrapes 3 --timeout 180 || {
  status=$?
  echo "check-dashboards: logs in $DIR (platform.log, prometheus.log); the last lines of Prometheus's:" >&2
  tail -5 "$DIR/prometheus.log" >&2
  exit "$status"
}
