#!/usr/bin/env bash
# Benchmark (not a test): peak resident memory and wall time of `hoist upload` for large files
# on the embedded default store (127.0.0.1), to show that memory stays flat whatever the size.
#
#   bench/rss.sh              # 1GiB and 10GiB
#   bench/rss.sh 256MiB 2GiB  # other sizes
#
# Needs GNU time (`apt-get install time`) and about twice the largest size free under
# ${BENCH_DIR:-/var/tmp}. Files are sparse (read as zeros); hashing and sending cost the same.
# The embedded store runs inside the measured process, so the figure includes it.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install time" >&2; exit 2; }
cargo build --release -q -p hoist
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hoist-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1GiB 10GiB)

echo "date: $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr)"
printf '%-8s %14s %10s %12s %s\n' size peak_rss_MiB wall_s MiB_per_s landed_intact
for size in "${sizes[@]}"; do
  file="$work/data-$size.bin"
  truncate -s "$size" "$file"
  bytes=$(stat -c %s "$file")
  rm -rf "$work/data"
  HOIST_DATA_DIR="$work/data" HOIST_CONFIG_DIR="$work/config" \
    /usr/bin/time -v target/release/hoist upload --json "$file" >"$work/out.json" 2>"$work/time.txt"
  rss_kib=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$work/time.txt" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$work/out.json")
  want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checksum"].split(":")[1])' "$work/out.json")
  got=$(sha256sum "$work/data/store/hoist-local/$key" | cut -d' ' -f1)
  intact=no; [ "$want" = "$got" ] && [ "$want" = "$(sha256sum "$file" | cut -d' ' -f1)" ] && intact=yes
  awk -v s="$size" -v r="$rss_kib" -v w="$wall" -v b="$bytes" -v i="$intact" \
    'BEGIN { printf "%-8s %14.1f %10.1f %12.0f %s\n", s, r / 1024, w, b / 1048576 / w, i }'
  rm -f "$file"
  rm -rf "$work/data"
done
