#!/usr/bin/env bash
# Validates every service's OpenAPI document against the OpenAPI 3.1 specification with
# openapi-spec-validator (PyPI), in a venv under $CARGO_TARGET_DIR/openapi-venv. The documents
# are written by each service's `every_reference_in_the_openapi_document_resolves` test
# (platform_testkit::openapi), which `make test` runs first; a service whose document is missing
# fails here, so a service cannot drop out of the check silently.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$PWD/target}"

SERVICES="catalog authorization sandbox-gateway"
VENV="$CARGO_TARGET_DIR/openapi-venv"
REQUIREMENTS="openapi-spec-validator==0.9.0"
. scripts/venv.sh
ensure_venv "$VENV" check-openapi "$REQUIREMENTS"

"$VENV/bin/python" - "$CARGO_TARGET_DIR/openapi" $SERVICES <<'PY'
import json, sys
from pathlib import Path
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

folder, services = Path(sys.argv[1]), sys.argv[2:]
failed = 0
for service in services:
    path = folder / f"{service}.json"
    if not path.exists():
        print(f"check-openapi: {path} is missing (its service's OpenAPI test did not run)")
        failed += 1
        continue
    doc = json.loads(path.read_text())
    try:
        validate(doc)
    except OpenAPIValidationError as e:
        print(f"check-openapi: {service}: {e}")
        failed += 1
        continue
    ops = sum(1 for p in doc["paths"].values() for m in p if m in {"get", "post", "put", "patch", "delete"})
    print(f"check-openapi: {service}: valid OpenAPI {doc['openapi']}, {ops} operations")
sys.exit(1 if failed else 0)
PY
