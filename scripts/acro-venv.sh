#!/usr/bin/env bash
# ACRO, the independent implementation the output checks are tested against
# (shared/output-checks/tests/acro_differential.rs, its bench example): installs ACRO 1.0.2 and
# its dependencies, pinned, from PyPI into $CARGO_TARGET_DIR/acro-venv, once. A second run reuses
# the venv while the stamp file names the same requirements. Prints nothing when it has nothing
# to do. Needs python3 with venv (Debian: python3-venv, installed by scripts/ensure-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$PWD/target}"

VENV="$CARGO_TARGET_DIR/acro-venv"
# acro 1.0.2 leaves its dependencies unpinned: these are the versions it was tested with here.
REQUIREMENTS="acro==1.0.2 pandas==2.3.3 numpy==2.4.6 statsmodels==0.15.0 scipy==1.17.1 patsy==1.0.3 \
matplotlib==3.11.2 openpyxl==3.1.5 PyYAML==6.0.4 rdflib==7.6.0 lxml==6.2.0 tabulate==0.10.0"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements" 2>/dev/null)" != "$REQUIREMENTS" ]; then
  . scripts/venv.sh
  ensure_venv "$VENV" acro-venv "$REQUIREMENTS"
  "$VENV/bin/python" -c 'import acro, acro.version as v; assert v.__version__ == "1.0.2", v.__version__'
fi
