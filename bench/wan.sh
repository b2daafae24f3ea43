#!/usr/bin/env bash
# Benchmark (not a test): upload tools across a shaped "WAN" on this machine, alternating in
# each round, every upload checked before it counts.
#
#   bench/wan.sh                       # RUNS=1 RTTS="0 20 80" WORKLOADS="A B"
#   RTTS=80 WORKLOADS=B TOOLS="hoist hoist-staff" bench/wan.sh
#   HOIST_LOG=hoist=debug LOGS=/tmp/wan-logs bench/wan.sh   # keeps each tool's stderr
#
# The link: bench/wan-proxy (a TCP relay on 127.0.0.1; `tc netem` is not available here) adds
# RTT ms of round trip (half each way, one more round trip per new connection) and caps every
# connection at CONN_MBPS (25) and all of them together at TOTAL_MBPS (120) MB/s per direction.
# It sits between every client and the store, and between clients and the backend.
# SLOW_START=1 adds TCP's slow start (and its restart after idling); LOSS_PCT adds random loss.
# Store: STORE=garage (the default once scripts/garage built it: Garage 2.5, which verifies
# SigV4 and part checksums and completes an upload without copying it, as S3 does) or
# STORE=embedded (a hoist-server's s3s-fs store, whose Complete re-reads and copies every part
# with MD5: about 3 s a GiB spent after the last byte crossed the link). Files in /dev/shm.
# Backend: a second hoist-server signing for that store through the link (limits lifted: the
# tools are measured, not the server's policy).
# Workloads: A one 1 GiB file (A_BYTES sets another size); B 1,000 files of 64 KiB.
# Tools:
#   hoist          self-sign (Hoist's defaults)
#   hoist-staff    through the backend, simple protocol (B only: it has no multipart)
#   hoist-companion through the backend, Companion protocol (multipart for A)
#   rclone, aws    their defaults (rclone 4 transfers x 4 parts of 5 MiB; aws 10 requests)
#   article        bench/article_baseline.py: POST for a URL, then PUT, one file after another
#   desktop-staff  the desktop app (the real window under Xvfb, DESKTOP_PROFILE=release by
#   desktop-companion  default) with the staff/Companion profile active: started first (not
#                  timed), then `hoist-desktop SRC` hands the folder or file to it, timed until
#                  every upload is done in its queue (issue #27: the window against the CLI)
# Needs: apt-get install rclone time; pip install awscli (see bench/compare.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1}
RTTS=${RTTS:-0 20 80}
WORKLOADS=${WORKLOADS:-A B}
CONN_MBPS=${CONN_MBPS:-25}
TOTAL_MBPS=${TOTAL_MBPS:-120}
# SLOW_START=1: each connection starts at TCP's initial window and doubles it per round trip
# (again after idling), as on a real link; LOSS_PCT=1: 1 % of segments lost, each stalling its
# connection a round trip and halving its window (issue #32).
LINK_TCP=""
[ "${SLOW_START:-0}" = 1 ] && LINK_TCP="--slow-start"
[ -n "${LOSS_PCT:-}" ] && LINK_TCP="$LINK_TCP --loss-pct $LOSS_PCT --seed ${LOSS_SEED:-1}"
TOOL_TIMEOUT=${TOOL_TIMEOUT:-600}
ALL_TOOLS="hoist hoist-staff hoist-companion desktop-staff desktop-companion rclone aws article"
# HOIST_BEFORE=path/to/an/older/hoist adds it as "before" and "before-staff" (before/after).
[ -n "${HOIST_BEFORE:-}" ] && ALL_TOOLS="before before-staff $ALL_TOOLS"
TOOLS=${TOOLS:-$ALL_TOOLS}

if [ -z "${HOIST_BENCH_IN_DBUS:-}" ]; then
  export HOIST_BENCH_IN_DBUS=1 XDG_DATA_HOME
  XDG_DATA_HOME=$(mktemp -d)
  exec dbus-run-session -- "$0" "$@"
fi
echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null
for t in rclone aws /usr/bin/time python3; do
  command -v "$t" >/dev/null || { echo "missing $t (see the header of this script)" >&2; exit 2; }
done
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -q -p hoist -p hoist-server
cargo build --release -q --manifest-path bench/wan-proxy/Cargo.toml
HOIST=${HOIST:-$TARGET/release/hoist}
DESKTOP_PROFILE=${DESKTOP_PROFILE:-release}
case " $TOOLS " in
  *" desktop-"*)
    PROFILE=$DESKTOP_PROFILE
    # shellcheck source=bench/desktop_lib.sh
    . bench/desktop_lib.sh
    # DESKTOP_BIN set: that build is measured as it is.
    [ -n "${DESKTOP_BIN:-}" ] || build_desktop >/dev/null
    command -v Xvfb >/dev/null || { echo "missing Xvfb (scripts/deps test)" >&2; exit 2; } ;;
esac
SERVER=$TARGET/release/hoist-server
PROXY=$TARGET/release/wan-proxy

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/hoist-wan.XXXXXX")
store_root=$(mktemp -d /dev/shm/hoist-wan-store.XXXXXX)
pids=()
proxy_pid=""
cleanup() {
  [ -n "$proxy_pid" ] && kill "$proxy_pid" 2>/dev/null
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  rm -rf "$work" "$store_root"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; exit 1; }

AK=HOISTWANKEY
SK=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
APORT=$(free_port) PSTORE=$(free_port) PAPI=$(free_port)
printf '[policy]\nrate_limit_per_minute = 100000000\nfiles_per_minute = 100000000\nfiles_burst = 100000000\n' >"$work/store.toml"
STORE=${STORE:-$([ -x "${GARAGE_BIN:-/var/cache/hoist-ci/garage/bin/garage}" ] && echo garage || echo embedded)}
case $STORE in
  embedded)
    SPORT=$(free_port) BUCKET=hoist-local
    HOIST_STORE_ACCESS_KEY_ID=$AK HOIST_STORE_SECRET_ACCESS_KEY=$SK HOIST_SERVER_TOKENS=unused-$TOKEN \
      "$SERVER" --config "$work/store.toml" --embedded-store "$store_root" --store-listen "127.0.0.1:$SPORT" \
      --listen "127.0.0.1:$(free_port)" >/dev/null 2>"$work/store.err" &
    pids+=($!) ;;
  garage)
    # shellcheck source=scripts/lib/garage.sh
    . scripts/lib/garage.sh
    garage_start "$store_root/garage" || exit 2
    pids+=("$GARAGE_PID")
    SPORT=${ENDPOINT##*:} ;;
  *) echo "STORE is garage or embedded" >&2; exit 2 ;;
esac
# The backend signs for the store as clients reach it: through the link.
cat "$work/store.toml" >"$work/backend.toml"
printf '[bucket]\nname = "%s"\nregion = "us-east-1"\nendpoint = "http://127.0.0.1:%s"\npath_style = true\n' "$BUCKET" "$PSTORE" >>"$work/backend.toml"
AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK HOIST_SERVER_TOKENS=$TOKEN \
  "$SERVER" --config "$work/backend.toml" --listen "127.0.0.1:$APORT" >/dev/null 2>"$work/backend.err" &
pids+=($!)
wait_http "http://127.0.0.1:$APORT/healthz"

start_link() { # rtt
  [ -n "$proxy_pid" ] && { kill "$proxy_pid"; wait "$proxy_pid" 2>/dev/null || true; }
  "$PROXY" --rtt-ms "$1" --conn-mbps "$CONN_MBPS" --total-mbps "$TOTAL_MBPS" $LINK_TCP \
    --relay "127.0.0.1:$PSTORE=127.0.0.1:$SPORT" --relay "127.0.0.1:$PAPI=127.0.0.1:$APORT" \
    2>>"$work/proxy.log" &
  proxy_pid=$!
  wait_http "http://127.0.0.1:$PAPI/healthz"
}

EP=http://127.0.0.1:$PSTORE
export HOIST_CONFIG_DIR=$work/hoist-config HOIST_DATA_DIR=$work/hoist-data HOIST_KEYCHAIN_SERVICE=hoist-wan-bench
$HOIST profile add bench --bucket $BUCKET --region us-east-1 --endpoint "$EP" --path-style \
  --access-key-id "$AK" --default >/dev/null
echo -n "$SK" | $HOIST secret set bench >/dev/null
$HOIST profile add staff --backend "http://127.0.0.1:$PAPI/api/upload" --protocol simple --token >/dev/null
echo -n "$TOKEN" | $HOIST secret set staff --kind bearer-token >/dev/null
$HOIST profile add companion --backend "http://127.0.0.1:$PAPI" --protocol companion --token >/dev/null
echo -n "$TOKEN" | $HOIST secret set companion --kind bearer-token >/dev/null

export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ACCESS_KEY_ID=$AK \
  RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$SK RCLONE_CONFIG_B_ENDPOINT=$EP RCLONE_CONFIG_B_REGION=us-east-1 \
  RCLONE_CONFIG_B_FORCE_PATH_STYLE=true
RCLONE=(env -u AWS_CA_BUNDLE rclone)
AWS=(env AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_DEFAULT_REGION=us-east-1
  AWS_EC2_METADATA_DISABLED=true aws --endpoint-url "$EP")
# What the store holds, unshaped: the checks and the clean-up go straight to it.
DIRECT=(env AWS_ACCESS_KEY_ID="$AK" AWS_SECRET_ACCESS_KEY="$SK" AWS_DEFAULT_REGION=us-east-1
  AWS_EC2_METADATA_DISABLED=true aws --endpoint-url "http://127.0.0.1:$SPORT")

mkdir -p "$work/A" "$work/B/many"
head -c "${A_BYTES:-$((1024 * 1024 * 1024))}" /dev/urandom >"$work/A/one.bin"
for i in $(seq -w 1 1000); do head -c 65536 /dev/urandom >"$work/B/many/f$i.bin"; done
A_SHA=$(sha256sum "$work/A/one.bin" | cut -d' ' -f1)

# The keys of what landed; any other outcome goes to stderr.
keys_of_json() {
  python3 -c '
import json, sys
for line in sys.stdin:
    if "\"uploaded\"" in line:
        print(json.loads(line)["key"])
    else:
        print(line.strip(), file=sys.stderr)'
}
upload() { # tool workload run rtt
  local tool=$1 w=$2 dest="bench/$1-$2-$3-$4" src
  src=$work/A/one.bin; [ "$w" = B ] && src=$work/B/many
  case "$tool" in
    hoist) $HOIST upload --json "$src" | keys_of_json ;;
    hoist-staff) $HOIST upload --profile staff --json "$src" | keys_of_json ;;
    hoist-companion) $HOIST upload --profile companion --json "$src" | keys_of_json ;;
    before) $HOIST_BEFORE upload --json "$src" | keys_of_json ;;
    before-staff) $HOIST_BEFORE upload --profile staff --json "$src" | keys_of_json ;;
    rclone)
      if [ "$w" = A ]; then "${RCLONE[@]}" copyto "$src" "b:$BUCKET/$dest/one.bin" && echo "$dest/one.bin"
      else "${RCLONE[@]}" copy "$src" "b:$BUCKET/$dest/many" && (cd "$work/B" && find many -type f | sed "s|^|$dest/|"); fi ;;
    aws)
      if [ "$w" = A ]; then "${AWS[@]}" s3 cp --only-show-errors "$src" "s3://$BUCKET/$dest/one.bin" && echo "$dest/one.bin"
      else "${AWS[@]}" s3 cp --only-show-errors --recursive "$src" "s3://$BUCKET/$dest/many/" && (cd "$work/B" && find many -type f | sed "s|^|$dest/|"); fi ;;
    article) python3 bench/article_baseline.py "http://127.0.0.1:$PAPI" "$TOKEN" "$src" ;;
    desktop-staff | desktop-companion) desktop_upload "${tool#desktop-}" "$src" ;;
    *) return 3 ;;
  esac
}

# The app with profile $1 active, started (not timed) in a home of its own; then
# `hoist-desktop SRC` hands SRC over to it, and the keys are printed once its queue holds every
# file done. The time of this function is what the table shows (the start is outside it: see
# desktop_start).
desktop_upload() { # profile src
  local expected=1
  [ -d "$2" ] && expected=$(find "$2" -type f | wc -l)
  DISPLAY=$XDISPLAY HOIST_CONFIG_DIR=$work/desktop-$1-config HOIST_DATA_DIR=$work/desktop-$1-data \
    "$DESKTOP_BIN" "$2"
  python3 - "$work/desktop-$1-data/queue.sqlite3" "$expected" <<'PY'
import sqlite3, sys, time
db, expected = sys.argv[1], int(sys.argv[2])
while True:
    c = sqlite3.connect(db, timeout=30)
    rows = c.execute("SELECT state, key FROM items").fetchall()
    c.close()
    if sum(1 for s, _ in rows if s in ("done", "failed", "cancelled")) >= expected:
        break
    time.sleep(0.02)
for state, key in rows:
    print(key) if state == "done" else print(state, key, file=sys.stderr)
PY
}
desktop_start() { # profile: the app in its own home, waiting
  local home=$work/desktop-$1
  rm -rf "$home-config" "$home-data"
  mkdir -p "$home-config" "$home-data"
  if [ "$1" = staff ]; then
    HOIST_CONFIG_DIR=$home-config $HOIST profile add staff --backend "http://127.0.0.1:$PAPI/api/upload" \
      --protocol simple --token --default >/dev/null
  else
    HOIST_CONFIG_DIR=$home-config $HOIST profile add companion --backend "http://127.0.0.1:$PAPI" \
      --protocol companion --token --default >/dev/null
  fi
  DISPLAY=$XDISPLAY HOIST_CONFIG_DIR=$home-config HOIST_DATA_DIR=$home-data "$DESKTOP_BIN" \
    >/dev/null 2>"$work/desktop.err" &
  desktop_pid=$!
  for _ in $(seq 600); do [ -f "$home-data/queue.sqlite3" ] && break; sleep 0.1; done
  sleep 2 # the window and its webview up
}
desktop_stop() {
  [ -n "${desktop_pid:-}" ] && { kill "$desktop_pid" 2>/dev/null; wait "$desktop_pid" 2>/dev/null || true; }
  desktop_pid=""
}
XDISPLAY=""
case " $TOOLS " in
  *" desktop-"*)
    XDISPLAY=:$((90 + RANDOM % 100))
    Xvfb "$XDISPLAY" -screen 0 1280x800x24 >/dev/null 2>&1 &
    pids+=($!)
    sleep 1 ;;
esac

check() { # workload keys-file -> yes/no: exactly the reported keys are stored, intact
  "${DIRECT[@]}" s3api list-objects-v2 --bucket "$BUCKET" --output json >"$work/listing.json"
  if [ "$1" = A ]; then
    python3 - "$work/listing.json" "$2" 1 "${A_BYTES:-$((1024 * 1024 * 1024))}" <<'PY' || { echo no; return; }
import json, sys
listing = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else {}
stored = {o["Key"]: o["Size"] for o in listing.get("Contents", [])}
keys = [k for k in open(sys.argv[2]).read().split("\n") if k]
assert len(keys) == int(sys.argv[3]) and set(keys) == set(stored), (len(keys), len(stored))
assert all(stored[k] == int(sys.argv[4]) for k in keys)
PY
    "${DIRECT[@]}" s3 cp --only-show-errors "s3://$BUCKET/$(cat "$2")" "$work/back.bin" || { echo no; return; }
    [ "$(sha256sum <"$work/back.bin" | cut -d' ' -f1)" = "$A_SHA" ] && echo yes || echo no
    rm -f "$work/back.bin"
  else
    python3 - "$work/listing.json" "$2" 1000 65536 <<'PY' && echo yes || echo no
import json, sys
listing = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else {}
stored = {o["Key"]: o["Size"] for o in listing.get("Contents", [])}
keys = [k for k in open(sys.argv[2]).read().split("\n") if k]
assert len(keys) == int(sys.argv[3]) and set(keys) == set(stored), (len(keys), len(stored))
assert all(stored[k] == int(sys.argv[4]) for k in keys)
PY
  fi
}
empty_store() {
  "${DIRECT[@]}" s3 rm --only-show-errors --recursive "s3://$BUCKET/" >/dev/null 2>&1 || true
  "${DIRECT[@]}" s3api list-multipart-uploads --bucket "$BUCKET" --output json 2>/dev/null |
    python3 -c 'import json,sys; t=sys.stdin.read(); [print(u["Key"], u["UploadId"]) for u in (json.loads(t) if t.strip() else {}).get("Uploads", [])]' |
    while read -r k id; do "${DIRECT[@]}" s3api abort-multipart-upload --bucket "$BUCKET" --key "$k" --upload-id "$id"; done ||
    true # s3s-fs (STORE=embedded) cannot list multipart uploads
}

echo "tool,workload,rtt_ms,run,wall_s,peak_rss_kib,cpu_s,intact" >"$work/runs.csv"
for run in $(seq 1 "$RUNS"); do
  for rtt in $RTTS; do
    start_link "$rtt"
    for w in $WORKLOADS; do
      for tool in $ALL_TOOLS; do
        case " $TOOLS " in *" $tool "*) ;; *) continue ;; esac
        # The simple protocol has no multipart: A through it is hoist-companion's job.
        case $tool/$w in hoist-staff/A | before-staff/A | desktop-staff/A) continue ;; esac
        case $tool in desktop-*) desktop_start "${tool#desktop-}" ;; esac
        sync
        /usr/bin/time -f '%e %M %U %S' -o "$work/time.txt" timeout "$TOOL_TIMEOUT" bash -c "$(declare -f upload keys_of_json desktop_upload); $(declare -p AWS RCLONE); \
          HOIST=$HOIST HOIST_BEFORE=${HOIST_BEFORE:-} DESKTOP_BIN=${DESKTOP_BIN:-} XDISPLAY=$XDISPLAY work=$work PAPI=$PAPI TOKEN=$TOKEN BUCKET=$BUCKET upload $tool $w $run $rtt" >"$work/keys.txt" 2>"$work/err.txt" || true
        desktop_stop
        read -r wall rss user sys < <(tail -1 "$work/time.txt") || { wall=0; rss=0; user=0; sys=0; }
        [ -n "${LOGS:-}" ] && mkdir -p "$LOGS" && cp "$work/err.txt" "$LOGS/$tool-$w-$rtt-$run.err"
        intact=$(check "$w" "$work/keys.txt")
        empty_store
        echo "$tool,$w,$rtt,$run,$wall,$rss,$(python3 -c "print(round($user + $sys, 2))"),$intact" | tee -a "$work/runs.csv"
        [ "$intact" = yes ] || { echo "warning: $tool $w at $rtt ms, run $run, did not land intact:" >&2; tail -3 "$work/err.txt" >&2; }
      done
    done
  done
done

python3 - "$work/runs.csv" "$TOTAL_MBPS" "${A_BYTES:-$((1024 * 1024 * 1024))}" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["intact"] == "yes"]
link = float(sys.argv[2])
mb = {"A": int(sys.argv[3]) / 1e6, "B": 1000 * 65536 / 1e6}
by = {}
for r in rows:
    by.setdefault((r["workload"], int(r["rtt_ms"]), r["tool"]), []).append(r)
print("| workload | RTT | tool | runs | median wall s | MB/s | of the link | client CPU s | best other / this |")
print("|---|---|---|---|---|---|---|---|---|")
for (w, rtt) in sorted({(k[0], k[1]) for k in by}):
    walls = {t: statistics.median(float(r["wall_s"]) for r in rs) for (ww, rr, t), rs in by.items() if (ww, rr) == (w, rtt)}
    others = [v for t, v in walls.items() if not t.startswith(("hoist", "before"))]
    best_other = min(others) if others else float("nan")
    for t, wall in sorted(walls.items(), key=lambda kv: kv[1]):
        rs = by[(w, rtt, t)]
        cpu = statistics.median(float(r["cpu_s"]) for r in rs)
        rate = mb[w] / wall
        print(f"| {w} | {rtt} ms | {t} | {len(rs)} | {wall:.2f} | {rate:.1f} | {rate / link:.2f} | {cpu:.2f} | {best_other / wall:.2f} |")
PY
cp "$work/runs.csv" "${RUNS_CSV:-/var/tmp/hoist-wan-runs.csv}"
echo "(date $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores; store $STORE; link: $CONN_MBPS MB/s per connection, $TOTAL_MBPS MB/s in total; every run: ${RUNS_CSV:-/var/tmp/hoist-wan-runs.csv})"
tail -1 "$work/proxy.log" || true
