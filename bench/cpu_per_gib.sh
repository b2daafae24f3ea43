#!/usr/bin/env bash
# Client CPU seconds per GiB of two `hoist` builds on the same run (workload A: one 1 GiB file,
# self-sign, the store's files in /dev/shm), rounds alternating:
#   bench/cpu_per_gib.sh BEFORE_HOIST AFTER_HOIST [HOIST_SERVER]
# STORE=embedded (default: hoist-server's embedded s3s-fs, which checks no part checksum, so
# every part keeps its MD5) or STORE=garage (Garage 2.x, which checks part checksums like S3;
# scripts/garage builds it). RUNS (default 3) rounds; SIZE_MIB (default 1024). Prints user+sys
# seconds per GiB and wall time per run, and the medians. Needs GNU time, python3, curl,
# dbus-run-session, gnome-keyring.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${HOIST_BENCH_IN_DBUS:-}" ]; then
  export HOIST_BENCH_IN_DBUS=1 XDG_DATA_HOME
  XDG_DATA_HOME=$(mktemp -d)
  exec dbus-run-session -- "$0" "$@"
fi
echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null
before=$1 after=$2 server=${3:-target/release/hoist-server}
runs=${RUNS:-3} size_mib=${SIZE_MIB:-1024} store=${STORE:-embedded}
work=$(mktemp -d "${BENCH_DIR:-/dev/shm}/hoist-cpu.XXXXXX")
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
case "$store" in
  embedded)
    AK=HOISTCPUBENCH SK=$(python3 -c 'import secrets; print(secrets.token_hex(20))') BUCKET=hoist-local
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    HOIST_STORE_ACCESS_KEY_ID=$AK HOIST_STORE_SECRET_ACCESS_KEY=$SK HOIST_SERVER_TOKENS=$SK$SK \
      "$server" --embedded-store "$work/store" --store-listen "127.0.0.1:$port" --listen 127.0.0.1:0 \
      >/dev/null 2>&1 &
    pid=$!
    ENDPOINT=http://127.0.0.1:$port
    sleep 1
    ;;
  garage)
    # shellcheck source=scripts/lib/garage.sh
    . scripts/lib/garage.sh
    garage_start "$work/garage"
    pid=$GARAGE_PID
    ;;
  *) echo "STORE is embedded or garage" >&2; exit 2 ;;
esac
head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$work/a.bin"
export HOIST_KEYCHAIN_SERVICE=hoist-cpu-bench
for which in before after; do
  HOIST_CONFIG_DIR=$work/$which-config "${!which}" profile add bench --bucket "$BUCKET" --region us-east-1 \
    --endpoint "$ENDPOINT" --path-style --access-key-id "$AK" --default >/dev/null
  echo -n "$SK" | HOIST_CONFIG_DIR=$work/$which-config "${!which}" secret set bench >/dev/null
done
results=()
for round in $(seq "$runs"); do
  for which in before after; do
    bin=${!which}
    sync
    out=$( { /usr/bin/time -f "%U %S %e" env HOIST_CONFIG_DIR="$work/$which-config" \
      HOIST_DATA_DIR="$work/$which-data-$round" "$bin" upload --json "$work/a.bin" >"$work/receipt"; } 2>&1 | tail -1)
    read -r user sys wall <<<"$out"
    per_gib=$(python3 -c "print(f'{($user + $sys) * 1024 / $size_mib:.2f}')")
    proof=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1])).get("integrity") or {}; print(i.get("algorithm","-"), "by", i.get("checked_by","-"))' "$work/receipt")
    echo "round $round  $which  cpu/GiB ${per_gib}s  wall ${wall}s  proof: $proof"
    results+=("$which $per_gib $wall")
    # The object goes again, so that the store's memory does not fill up.
    key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$work/receipt")
    curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AK:$SK" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
      -X DELETE "$ENDPOINT/$BUCKET/$key" -o /dev/null || true
  done
done
for which in before after; do
  printf '%s\n' "${results[@]}" | awk -v w="$which" '$1 == w { print $2, $3 }' | sort -n |
    awk -v w="$which" '{ c[NR] = $1; t[NR] = $2 } END { m = int((NR + 1) / 2); printf "%s: median cpu/GiB %.2f s, wall %.2f s\n", w, c[m], t[m] }'
done
