#!/usr/bin/env bash
# How close `--limit-rate` holds the achieved rate to the limit, on the embedded default store:
#   bench/limit_rate.sh [HOIST_BINARY]        (default target/release/hoist)
# Workloads: A, one file in parallel parts at 10 MB/s; B, files of 128 KB (several at once)
# at 5 MB/s. Each is run at two sizes, 1x and 3x (A: 40 and 120 MB; B: 160 and 480 files),
# RUNS times: the achieved rate is the slope, extra bytes / extra seconds, so start-up,
# hashing and the store's own work cancel out. The deviation is from the limit. Files live
# in /dev/shm.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/hoist}
runs=${RUNS:-3}
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/hoist-limit.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a1" "$work/a3" "$work/b1" "$work/b3"
head -c 40000000 /dev/urandom >"$work/a1/big.bin"
head -c 120000000 /dev/urandom >"$work/a3/big.bin"
for i in $(seq 1 160); do head -c 128000 /dev/urandom >"$work/b1/f$i.bin"; done
for i in $(seq 1 480); do head -c 128000 /dev/urandom >"$work/b3/f$i.bin"; done

# Seconds one upload of $1 takes, with the remaining arguments.
timed() {
  local what=$1
  shift
  export HOIST_CONFIG_DIR=$work/config HOIST_DATA_DIR=$work/data-$RANDOM
  local start end
  start=$(date +%s.%N)
  "$bin" upload --json "$@" "$what" >"$work/out.jsonl"
  end=$(date +%s.%N)
  local failed
  failed=$(grep -vc '"uploaded"' "$work/out.jsonl" || true)
  [ "$failed" = 0 ] || { echo "uploads failed: $(head -3 "$work/out.jsonl")" >&2; exit 1; }
  rm -rf "$HOIST_DATA_DIR"
  python3 -c "print(f'{$end - $start:.3f}')"
}

report() {
  local name=$1 small=$2 large=$3 extra_bytes=$4 limit=$5
  for run in $(seq 1 "$runs"); do
    local t1 t3
    t1=$(timed "$small" --limit-rate "$limit")
    t3=$(timed "$large" --limit-rate "$limit")
    python3 - "$name" "$run" "$extra_bytes" "$limit" "$t1" "$t3" <<'PY'
import sys
name, run, extra, limit, t1, t3 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
rate = int(limit.rstrip("MB")) * 1_000_000
achieved = extra / (t3 - t1)
print(f"{name} run {run}: limit {rate/1e6:.1f} MB/s; 1x {t1:.2f} s, 3x {t3:.2f} s; "
      f"achieved {achieved/1e6:.3f} MB/s, deviation {100 * (achieved - rate) / rate:+.1f} %")
PY
  done
}

report "A (one file)" "$work/a1" "$work/a3" 80000000 10MB
report "B (128 KB files)" "$work/b1" "$work/b3" 40960000 5MB
