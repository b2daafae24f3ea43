#!/usr/bin/env bash
# Client CPU seconds per GiB of two `hoist` builds on the same run (workload A: one 1 GiB file,
# self-sign into hoist-server's embedded store in /dev/shm), rounds alternating:
#   bench/cpu_per_gib.sh BEFORE_HOIST AFTER_HOIST [HOIST_SERVER]
# RUNS (default 3) rounds; SIZE_MIB (default 1024). Prints user+sys seconds per GiB and wall
# time per run, and the medians. Needs GNU time, python3, dbus-run-session, gnome-keyring.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HOIST_BENCH_IN_DBUS:-}" ]; then
  export HOIST_BENCH_IN_DBUS=1 XDG_DATA_HOME
  XDG_DATA_HOME=$(mktemp -d)
  exec dbus-run-session -- "$0" "$@"
fi
echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null
before=$1 after=$2 server=${3:-target/release/hoist-server}
runs=${RUNS:-3} size_mib=${SIZE_MIB:-1024}
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/hoist-cpu.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
AK=HOISTCPUBENCH SK=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
HOIST_STORE_ACCESS_KEY_ID=$AK HOIST_STORE_SECRET_ACCESS_KEY=$SK HOIST_SERVER_TOKENS=$SK$SK \
  "$server" --embedded-store "$work/store" --store-listen "127.0.0.1:$port" --listen 127.0.0.1:0 \
  >/dev/null 2>&1 &
pid=$!
sleep 1
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/a.bin"
export HOIST_KEYCHAIN_SERVICE=hoist-cpu-bench
for which in before after; do
  bin=${!which}
  HOIST_CONFIG_DIR=$work/$which-config "$bin" profile add bench --bucket hoist-local --region us-east-1 \
    --endpoint "http://127.0.0.1:$port" --path-style --access-key-id "$AK" --default >/dev/null
  echo -n "$SK" | HOIST_CONFIG_DIR=$work/$which-config "$bin" secret set bench >/dev/null
done
results=()
for round in $(seq "$runs"); do
  for which in before after; do
    bin=${!which}
    sync
    out=$( { /usr/bin/time -f "%U %S %e" env HOIST_CONFIG_DIR="$work/$which-config" \
      HOIST_DATA_DIR="$work/$which-data-$round" "$bin" upload --json "$work/a.bin" >/dev/null; } 2>&1 | tail -1)
    read -r user sys wall <<<"$out"
    per_gib=$(python3 -c "print(f'{($user + $sys) * 1024 / $size_mib:.2f}')")
    echo "round $round  $which  cpu/GiB ${per_gib}s  wall ${wall}s"
    results+=("$which $per_gib $wall")
    rm -rf "$work/store/hoist-local"/*
  done
done
for which in before after; do
  printf '%s\n' "${results[@]}" | awk -v w="$which" '$1 == w { print $2, $3 }' | sort -n |
    awk -v w="$which" '{ c[NR] = $1; t[NR] = $2 } END { m = int((NR + 1) / 2); printf "%s: median cpu/GiB %.2f s, wall %.2f s\n", w, c[m], t[m] }'
done
