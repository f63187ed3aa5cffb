#!/usr/bin/env bash
# `make observe`: a real Prometheus (Debian's package) on 127.0.0.1:9090 scraping the platform
# that `make run` started on this machine, with the same alert rules as the Helm chart
# (charts/platform/rules/platform-rules.yaml), so the alerts can be tried on one machine.
# Start `make run` first (in another terminal); Ctrl-C stops Prometheus. Once it has scraped a few
# times, scripts/check_dashboards.py evaluates every dashboard and alert expression against it and
# prints what has no data (OBSERVE_CHECK=0: not).
#
# scripts/check-dashboards.sh reuses it for its own Prometheus: OBSERVE_DIR (default .dev/prometheus),
# OBSERVE_LISTEN (127.0.0.1:9090) and OBSERVE_SCRAPE_INTERVAL (5s).
set -euo pipefail
cd "$(dirname "$0")/.."
ENV_FILE="${PLATFORM_ENV_FILE:-.dev/platform.env}"
[ -f "$ENV_FILE" ] || { echo "observe: $ENV_FILE not found: start the platform with 'make run' first" >&2; exit 2; }

if ! command -v prometheus >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

DIR="${OBSERVE_DIR:-.dev/prometheus}"
LISTEN="${OBSERVE_LISTEN:-127.0.0.1:9090}"
INTERVAL="${OBSERVE_SCRAPE_INTERVAL:-5s}"
mkdir -p "$DIR/data"
# Every *_URL of the env file is a service to scrape; its `service` label comes from the service.
targets=$(sed -n 's#^[A-Z_]*_URL=http://##p' "$ENV_FILE" | sed 's/.*/"&"/' | paste -sd, -)
[ -n "$targets" ] || { echo "observe: no service URLs in $ENV_FILE" >&2; exit 2; }
cat > "$DIR/prometheus.yml" <<YAML
global:
  scrape_interval: $INTERVAL
  evaluation_interval: $INTERVAL
rule_files:
  - $PWD/charts/platform/rules/platform-rules.yaml
scrape_configs:
  - job_name: platform
    honor_labels: true
    static_configs:
      - targets: [$targets]
YAML
promtool check config "$DIR/prometheus.yml" >/dev/null
echo "observe: Prometheus on http://$LISTEN (alerts: http://$LISTEN/alerts), scraping $targets"
if [ "${OBSERVE_CHECK:-1}" != 0 ]; then
  # One report, once Prometheus has scraped every service three times (it gives up after 2 min).
  (python3 scripts/check_dashboards.py --prometheus "http://$LISTEN" --timeout 120 || true) &
fi
exec prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
  --web.listen-address="$LISTEN" --storage.tsdb.retention.time=1d --log.level=warn
