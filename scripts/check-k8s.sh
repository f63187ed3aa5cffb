#!/usr/bin/env bash
# Offline checks of the Kubernetes deliverables: the Helm chart renders (default values and
# charts/platform/ci/*.yaml) and lints, every rendered object and every k8s/ file validates
# against the Kubernetes schemas, the Dockerfile names only what exists, promtool accepts the
# alert rules and the dashboards' PromQL, and charts/platform/metrics-used.txt is regenerated.
#
# Installs what it needs, once: a venv under $CARGO_TARGET_DIR/k8s-venv (helm-python-sdk, which
# bundles Helm 4's Go SDK, kubernetes-validate and PyYAML from PyPI) and Debian's `prometheus`
# package for promtool. A second run reuses both.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$PWD/target}"

VENV="$CARGO_TARGET_DIR/k8s-venv"
REQUIREMENTS="helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.3"
. scripts/venv.sh
ensure_venv "$VENV" check-k8s "$REQUIREMENTS"

if ! command -v promtool >/dev/null 2>&1; then
  echo "check-k8s: installing promtool (Debian package prometheus)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  # Only promtool is used; the package's server is not started by this script.
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

exec "$VENV/bin/python" scripts/check_k8s.py "$@"
