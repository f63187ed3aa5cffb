#!/usr/bin/env bash
# `make bench`: release build, a private PostgreSQL with durable commits (fsync on, as in
# production), then the benchmark binary, which prints each figure next to its baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$PWD/target}"
export CARGO_TARGET_DIR
PROFILE="${BENCH_PROFILE:-release}"
PGDIR="$CARGO_TARGET_DIR/bench-pg"
PGPORT="${PLATFORM_BENCH_PG_PORT:-55449}"

cargo build --locked --profile "$PROFILE" -p loadtest --bin bench --bin bench_sandbox
cargo build --locked --profile "$PROFILE" -p platform-output-checks --example bench
cargo build --locked --profile "$PROFILE" -p platform-launcher --bin platform
dir="$CARGO_TARGET_DIR/$PROFILE"; [ "$PROFILE" = dev ] && dir="$CARGO_TARGET_DIR/debug"
"$dir/platform" pg-stop --dir "$PGDIR" --port "$PGPORT" >/dev/null 2>&1 || true
rm -rf "$PGDIR"
url=$("$dir/platform" pg-start --dir "$PGDIR" --port "$PGPORT" | sed -n 's/^DATABASE_URL=//p')
trap '"$dir/platform" pg-stop --dir "$PGDIR" --port "$PGPORT" >/dev/null 2>&1 || true' EXIT
# The machine the figures come from: they are only comparable with figures from its like.
mkdir -p "$CARGO_TARGET_DIR/bench"
rm -f "$CARGO_TARGET_DIR/bench/figures.jsonl"
machine="$(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB, load average at start $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "== make bench on $(hostname): $machine =="
# BENCH_ONLY=output-checks runs the output checks against ACRO alone;
# BENCH_ONLY=sandbox runs the sandbox gateway's part alone; BENCH_ONLY=authorization skips the catalog's;
# BENCH_ONLY=catalog runs (a) to (c), BENCH_ONLY=pipeline (a) alone.
if [ "${BENCH_ONLY:-}" != sandbox ] && [ "${BENCH_ONLY:-}" != output-checks ]; then
  PLATFORM_TEST_DATABASE_URL="$url" PLATFORM_TEST_LOG=error "$dir/bench"
fi
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = sandbox ]; then
  PLATFORM_TEST_DATABASE_URL="$url" PLATFORM_TEST_LOG=error "$dir/bench_sandbox"
fi
# The airlock's automated output checks next to ACRO 1.0.2 on the same tables (issue 12).
if [ -z "${BENCH_ONLY:-}" ] || [ "${BENCH_ONLY:-}" = output-checks ]; then
  bash scripts/acro-venv.sh
  ACRO_PYTHON="$CARGO_TARGET_DIR/acro-venv/bin/python" "$dir/examples/bench"
fi

# Every figure with its target, into target/bench/latest.json, then against the accepted ones.
python3 - "$CARGO_TARGET_DIR/bench" "$machine" <<'PY'
import json, sys, datetime
folder, machine = sys.argv[1], sys.argv[2]
figures = [json.loads(l) for l in open(f"{folder}/figures.jsonl", encoding="utf-8") if l.strip()]
out = {"machine": machine, "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "figures": figures}
json.dump(out, open(f"{folder}/latest.json", "w", encoding="utf-8"), ensure_ascii=False, indent=1)
print(f"bench: {len(figures)} figures in {folder}/latest.json")
PY
python3 scripts/bench-compare.py "$CARGO_TARGET_DIR/bench/latest.json" docs/bench-accepted.json || true
