#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh Debian or Ubuntu machine, and nothing
# that is already there: a C toolchain (librdkafka is built from source by rdkafka-sys) and the
# PostgreSQL server binaries. The Kafka-protocol broker is built from this workspace
# (librdkafka's mock cluster), so it needs no package.
set -euo pipefail

need=()
command -v cc >/dev/null 2>&1 || need+=(build-essential)
command -v make >/dev/null 2>&1 || need+=(make)
command -v perl >/dev/null 2>&1 || need+=(perl)
# librdkafka is built with TLS (SCRAM and TLS listeners of a Strimzi cluster) against OpenSSL.
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The chart checks run in a virtualenv (scripts/check-k8s.sh).
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if [ -z "${PG_BIN:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if ! getent passwd postgres >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
  # Debian starts a cluster of its own on 5432; ours run in private directories.
fi

command -v cargo >/dev/null 2>&1 || { echo "ensure-deps: cargo is required (rustup.rs)"; exit 1; }
