#!/usr/bin/env bash
# Benchmark (not a test): Hoist beside the tools people use instead, on loopback, same store,
# same run. Tools alternate within each round so machine drift hits all alike; every upload is
# checked (the stored bytes' SHA-256, or count and sizes for many files) before it counts.
#
#   bench/compare.sh                     # RUNS=3 WORKLOADS="A B D"
#   RUNS=5 WORKLOADS="A" TOOLS="aws curl" bench/compare.sh   # Hoist beside some tools only
#
# Workloads: A one 1 GiB file; B 1,000 files of 64 KiB; C Hoist alone with a sparse 1 GiB and a
# sparse 10 GiB file (its memory must stay flat); D Hoist through hoist-server (staff mode,
# Companion protocol) next to self-sign. Default: A B D (C needs ~11 GiB of disk and ~3 minutes
# a run: WORKLOADS="A B C D").
# Store: hoist-server's embedded s3s-fs store (verifies SigV4), 127.0.0.1 only. It keeps its
# files in memory (/dev/shm, or STORE_DIR) so that the tools are measured, not the disk: on ext4
# the store spent up to 4 s of kernel CPU per 1,000 small files (inode allocation after deletes,
# directory locks), more than any tool's difference. C writes 20 GiB, so its store is on disk.
# Tools: hoist, rclone, aws (awscli), s3cmd, and curl -T to a presigned URL (the server's
# single-PUT ceiling). Debian: apt-get install rclone awscli s3cmd curl time gnome-keyring dbus-daemon
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
WORKLOADS=${WORKLOADS:-A B D}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-300}

if [ -z "${HOIST_BENCH_IN_DBUS:-}" ]; then
  # Hoist's self-sign secret lives in a keychain: use a private, throwaway one.
  export HOIST_BENCH_IN_DBUS=1 XDG_DATA_HOME
  XDG_DATA_HOME=$(mktemp -d)
  exec dbus-run-session -- "$0" "$@"
fi
echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null

for t in rclone aws s3cmd curl /usr/bin/time python3; do
  command -v "$t" >/dev/null || { echo "missing $t (see the header of this script)" >&2; exit 2; }
done
cargo build --release -q -p hoist -p hoist-server
HOIST=$PWD/target/release/hoist
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hoist-compare.XXXXXX")
server_pid=""
if [ -z "${STORE_DIR:-}" ]; then
  STORE_DIR=$work
  # A stores 2 GiB at once (parts, then the object); leave room for the rest of the machine.
  [ -d /dev/shm ] && [ "$(df -k --output=avail /dev/shm | tail -1)" -gt $((6 * 1024 * 1024)) ] && STORE_DIR=/dev/shm
fi
store_root=$(mktemp -d "$STORE_DIR/hoist-compare-store.XXXXXX")
server_pids=()
cleanup() { [ ${#server_pids[@]} -gt 0 ] && kill "${server_pids[@]}" 2>/dev/null; rm -rf "$work" "$store_root"; }
trap cleanup EXIT

AK=HOISTBENCHKEY
SK=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The benchmark measures the tools, not the server's limits (rounds of 1,000 files would pass
# the default burst): limits off.
printf '[policy]\nrate_limit_per_minute = 1000000\nfiles_per_minute = 1000000\nfiles_burst = 1000000\n' >"$work/server.toml"
start_server() { # store-dir store-port api-port name
  HOIST_STORE_ACCESS_KEY_ID=$AK HOIST_STORE_SECRET_ACCESS_KEY=$SK HOIST_SERVER_TOKENS=$TOKEN \
    target/release/hoist-server --config "$work/server.toml" --embedded-store "$1" --store-listen "127.0.0.1:$2" \
    --listen "127.0.0.1:$3" >"$work/audit-$4.jsonl" 2>"$work/server-$4.err" &
  server_pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$3/healthz" >/dev/null && return; sleep 0.1; done
  echo "hoist-server did not start:" >&2; cat "$work/server-$4.err" >&2; exit 1
}
SPORT=$(free_port); APORT=$(free_port)
EP=http://127.0.0.1:$SPORT
start_server "$store_root/store" "$SPORT" "$APORT" memory
case " $WORKLOADS " in *" C "*)
  DISK_SPORT=$(free_port)
  start_server "$work/disk-store" "$DISK_SPORT" "$(free_port)" disk ;;
esac

export HOIST_CONFIG_DIR=$work/hoist-config HOIST_DATA_DIR=$work/hoist-data HOIST_KEYCHAIN_SERVICE=hoist-bench
$HOIST profile add bench --bucket hoist-local --region us-east-1 --endpoint "$EP" --path-style \
  --access-key-id "$AK" --concurrency 4 --default >/dev/null
echo -n "$SK" | $HOIST secret set bench >/dev/null
if [ -n "${DISK_SPORT:-}" ]; then
  $HOIST profile add bench-disk --bucket hoist-local --region us-east-1 --endpoint "http://127.0.0.1:$DISK_SPORT" \
    --path-style --access-key-id "$AK" --concurrency 4 >/dev/null
  echo -n "$SK" | $HOIST secret set bench-disk >/dev/null
fi
$HOIST profile add staff --backend "http://127.0.0.1:$APORT" --protocol companion --token >/dev/null
echo -n "$TOKEN" | $HOIST secret set staff --kind bearer-token >/dev/null

export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ACCESS_KEY_ID=$AK \
  RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$SK RCLONE_CONFIG_B_ENDPOINT=$EP RCLONE_CONFIG_B_REGION=us-east-1 \
  RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
# rclone's AWS SDK fails on a custom CA bundle it cannot load into its transport; no TLS is used.
RCLONE=(env -u AWS_CA_BUNDLE rclone)
# Only the aws command sees AWS_* (rclone's SDK would read them too).
AWS=(env AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_DEFAULT_REGION=us-east-1
  AWS_EC2_METADATA_DISABLED=true aws --endpoint-url "$EP")
S3CMD=(s3cmd --no-ssl --host="127.0.0.1:$SPORT" --host-bucket="127.0.0.1:$SPORT" --access_key="$AK"
  --secret_key="$SK" --region=us-east-1 --config=/dev/null --no-check-md5)
STORE=$store_root/store/hoist-local
DISK_STORE=$work/disk-store/hoist-local

mkdir -p "$work/A" "$work/B/many" "$work/C"
head -c $((1024 * 1024 * 1024)) /dev/urandom >"$work/A/one.bin"
for i in $(seq -w 1 1000); do head -c 65536 /dev/urandom >"$work/B/many/f$i.bin"; done
A_SHA=$(sha256sum "$work/A/one.bin" | cut -d' ' -f1)
case " $WORKLOADS " in *" C "*)
  truncate -s 1G "$work/C/one.bin"; truncate -s 10G "$work/C/ten.bin"
  C1_SHA=$(sha256sum "$work/C/one.bin" | cut -d' ' -f1); C10_SHA=$(sha256sum "$work/C/ten.bin" | cut -d' ' -f1) ;;
esac

# Prints the key(s) written, one per line; the caller checks them.
upload() { # tool workload run
  local tool=$1 w=$2 run=$3 dest="bench/$1-$2-$3"
  case "$tool/$w" in
    hoist/A) $HOIST upload --json "$work/A/one.bin" | python3 -c 'import json,sys; [print(json.loads(l)["key"]) for l in sys.stdin]' ;;
    hoist/B) $HOIST upload --json "$work/B/many" | python3 -c 'import json,sys; [print(json.loads(l)["key"]) for l in sys.stdin]' ;;
    hoist/C1) $HOIST upload --profile bench-disk --json "$work/C/one.bin" | python3 -c 'import json,sys; [print(json.loads(l)["key"]) for l in sys.stdin]' ;;
    hoist/C10) $HOIST upload --profile bench-disk --json "$work/C/ten.bin" | python3 -c 'import json,sys; [print(json.loads(l)["key"]) for l in sys.stdin]' ;;
    hoist-staff/A) $HOIST upload --profile staff --json "$work/A/one.bin" | python3 -c 'import json,sys; [print(json.loads(l)["key"]) for l in sys.stdin]' ;;
    hoist-staff/B) $HOIST upload --profile staff --json "$work/B/many" | python3 -c 'import json,sys; [print(json.loads(l)["key"]) for l in sys.stdin]' ;;
    rclone/A) "${RCLONE[@]}" copyto "$work/A/one.bin" "b:hoist-local/$dest/one.bin" && echo "$dest/one.bin" ;;
    rclone/B) "${RCLONE[@]}" copy "$work/B/many" "b:hoist-local/$dest/many" && (cd "$work/B" && find many -type f | sed "s|^|$dest/|") ;;
    aws/A) "${AWS[@]}" s3 cp --only-show-errors "$work/A/one.bin" "s3://hoist-local/$dest/one.bin" && echo "$dest/one.bin" ;;
    aws/B) "${AWS[@]}" s3 cp --only-show-errors --recursive "$work/B/many" "s3://hoist-local/$dest/many/" && (cd "$work/B" && find many -type f | sed "s|^|$dest/|") ;;
    s3cmd/A) "${S3CMD[@]}" -q put "$work/A/one.bin" "s3://hoist-local/$dest/one.bin" && echo "$dest/one.bin" ;;
    s3cmd/B) "${S3CMD[@]}" -q put --recursive "$work/B/many" "s3://hoist-local/$dest/" && (cd "$work/B" && find many -type f | sed "s|^|$dest/|") ;;
    curl/A)
      local answer url
      answer=$(curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
        -d "{\"fileName\":\"one.bin\",\"contentType\":\"application/octet-stream\",\"size\":$((1024 * 1024 * 1024))}" \
        "http://127.0.0.1:$APORT/api/upload")
      url=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["url"])' "$answer")
      curl -sf -T "$work/A/one.bin" -H 'content-type: application/octet-stream' -H 'if-none-match: *' -H 'content-disposition: attachment' "$url" >/dev/null &&
        python3 -c 'import json,sys; print(json.loads(sys.argv[1])["key"])' "$answer" ;;
    *) return 3 ;;
  esac
}

store_of() { case $1 in C1 | C10) echo "$DISK_STORE" ;; *) echo "$STORE" ;; esac; }

check() { # workload keys-file -> "yes"/"no"
  local w=$1 keys=$2 root
  root=$(store_of "$w")
  if [ "$w" = A ] || [ "$w" = C1 ] || [ "$w" = C10 ]; then
    local want=$A_SHA; [ "$w" = C1 ] && want=$C1_SHA; [ "$w" = C10 ] && want=$C10_SHA
    [ "$(wc -l <"$keys")" = 1 ] && [ "$(sha256sum "$root/$(cat "$keys")" | cut -d' ' -f1)" = "$want" ] && echo yes || echo no
  else
    local n=0 ok=0
    while read -r k; do
      n=$((n + 1))
      [ "$(stat -c %s "$root/$k" 2>/dev/null)" = 65536 ] && ok=$((ok + 1))
    done <"$keys"
    [ "$n" = 1000 ] && [ "$ok" = 1000 ] && echo yes || echo no
  fi
}

tools_for() {
  local all
  case $1 in
    A) all="hoist rclone aws s3cmd curl" ;;
    B) all="hoist rclone aws s3cmd" ;;
    C) all="hoist" ;;
    D) all="hoist hoist-staff" ;;
  esac
  # TOOLS="hoist curl" narrows a run to some tools (Hoist is always kept: it is the baseline).
  for t in $all; do
    case " hoist ${TOOLS:-$all} " in *" $t "*) echo "$t" ;; esac
  done
}

echo "tool,workload,run,wall_s,peak_rss_kib,cpu_s,intact" >"$work/runs.csv"
for run in $(seq 1 "$RUNS"); do
  for w in $WORKLOADS; do
    wl=$w
    for tool in $(tools_for "$w"); do
      [ "$w" = D ] && wl=A
      case $w in D) subs="A B" ;; C) subs="C1 C10" ;; *) subs=$wl ;; esac
      for sub in $subs; do
        # The previous run's writes reach the disk first, so their writeback does not slow this one.
        sync
        # Bounded: a tool that hangs (rclone once did, for 13 minutes) is stopped and its run fails.
        /usr/bin/time -f '%e %M %U %S' -o "$work/time.txt" timeout "$TOOL_TIMEOUT" bash -c "$(declare -f upload); $(declare -p S3CMD AWS RCLONE); \
          HOIST=$HOIST work=$work EP=$EP TOKEN=$TOKEN APORT=$APORT upload $tool $sub $run" >"$work/keys.txt" 2>"$work/err.txt" || true
        read -r wall rss user sys < <(tail -1 "$work/time.txt") || { wall=0; rss=0; user=0; sys=0; }
        intact=$(check "$sub" "$work/keys.txt")
        # Keep the disk bounded (a full run would otherwise store ~20 GiB): drop what landed.
        s=$(store_of "$sub")
        while read -r k; do [ -n "$k" ] && rm -f "$s/$k"; done <"$work/keys.txt"
        rm -rf "$s/bench" "$(dirname "$s")"/.upload*
        label=$w; [ "$w" = D ] && label="D$sub"; [ "$w" = C ] && label=$sub
        echo "$tool,$label,$run,$wall,$rss,$(python3 -c "print(round($user + $sys, 2))"),$intact" >>"$work/runs.csv"
        [ "$intact" = yes ] || { echo "warning: $tool $label run $run did not land intact:" >&2; tail -3 "$work/err.txt" >&2; }
      done
    done
  done
done

python3 - "$work/runs.csv" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["intact"] == "yes"]
by = {}
for r in rows:
    by.setdefault((r["workload"], r["tool"]), []).append(r)
sizes = {"A": 1024, "B": 1000 * 64 / 1024, "C1": 1024, "C10": 10240, "DA": 1024, "DB": 1000 * 64 / 1024}
print(f"| workload | tool | runs | median wall s | MiB/s | peak RSS MiB | client CPU s | wall / Hoist |")
print("|---|---|---|---|---|---|---|---|")
for w in sorted({k[0] for k in by}):
    base = statistics.median(float(r["wall_s"]) for r in by.get((w, "hoist"), [{"wall_s": "nan"}]))
    for (ww, tool), rs in sorted(by.items(), key=lambda kv: statistics.median(float(r["wall_s"]) for r in kv[1])):
        if ww != w:
            continue
        wall = statistics.median(float(r["wall_s"]) for r in rs)
        rss = max(int(r["peak_rss_kib"]) for r in rs) / 1024
        cpu = statistics.median(float(r["cpu_s"]) for r in rs)
        print(f"| {w} | {tool} | {len(rs)} | {wall:.2f} | {sizes[w] / wall:.0f} | {rss:.0f} | {cpu:.2f} | {wall / base:.2f} |")
PY
keep=${RUNS_CSV:-${BENCH_DIR:-/var/tmp}/hoist-compare-runs.csv}
cp "$work/runs.csv" "$keep"
echo "(date $(date -u +%Y-%m-%d); $(nproc) cores; store in $STORE_DIR$(case " $WORKLOADS " in *" C "*) echo ", C's on disk in $work" ;; esac); every run: $keep)"
