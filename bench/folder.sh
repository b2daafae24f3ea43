#!/usr/bin/env bash
# A folder of many small files through the CLI onto the embedded default store:
#   bench/folder.sh [HOIST_BINARY]        (default target/release/hoist)
# FILES (default 100000) tiny files in folders of 1,000, in /dev/shm. Prints the wall time,
# the peak RSS (GNU time), how many files landed, and how long until the first one was queued.
# STORE=garage uploads to an external store instead (Garage 2.5 on 127.0.0.1, self-signed).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${STORE:-embedded}" = garage ] && [ -z "${HOIST_BENCH_IN_DBUS:-}" ]; then
  # The store's secret lives in a keychain: a private, throwaway one.
  export HOIST_BENCH_IN_DBUS=1 XDG_DATA_HOME
  XDG_DATA_HOME=$(mktemp -d)
  exec dbus-run-session -- "$0" "$@"
fi
[ "${STORE:-embedded}" = garage ] && { echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null; }
bin=${1:-target/release/hoist}
files=${FILES:-100000}
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/hoist-folder.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 - "$work/folder" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:03d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY
export HOIST_CONFIG_DIR=$work/config HOIST_DATA_DIR=$work/data
if [ "${STORE:-embedded}" = garage ]; then
  # An external store (a separate process), self-signed: Garage 2.5 (scripts/garage builds it).
  # shellcheck source=scripts/lib/garage.sh
  . scripts/lib/garage.sh
  garage_start "$work/garage" || exit 2
  trap 'kill "$GARAGE_PID" 2>/dev/null; rm -rf "$work"' EXIT
  export HOIST_KEYCHAIN_SERVICE=hoist-folder-bench
  "$bin" profile add garage --bucket "$BUCKET" --region us-east-1 --endpoint "$ENDPOINT" --path-style \
    --access-key-id "$AK" --default >/dev/null
  echo -n "$SK" | "$bin" secret set garage >/dev/null
fi
start=$(date +%s.%N)
/usr/bin/time -v "$bin" upload --json "$work/folder" >"$work/out.jsonl" 2>"$work/time.txt" &
pid=$!
first=""
while kill -0 "$pid" 2>/dev/null; do
  if [ -z "$first" ] && [ -f "$work/data/queue.sqlite3" ] &&
    [ "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from items").fetchone()[0])' "$work/data/queue.sqlite3" 2>/dev/null || echo 0)" -gt 0 ]; then
    first=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
  fi
  sleep 0.2
done
wait "$pid"
grep -E "Elapsed|Maximum resident" "$work/time.txt"
echo "landed: $(grep -c '"uploaded"' "$work/out.jsonl") of $files"
echo "first file queued after: ${first:-?} s"
