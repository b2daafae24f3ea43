#!/usr/bin/env bash
# hoist-server (release) beside the real Uppy Companion (tests/companion), both signing for the
# same store (hoist-server's embedded store, on 127.0.0.1), under load from wrk:
#   bench/backend_load.sh [HOIST_SERVER_BINARY]     (default target/release/hoist-server)
# For each of single-PUT signing (hoist-server: POST /api/upload; Companion: GET /s3/params)
# and part signing (GET /s3/multipart/{uploadId}/{n}): CONNECTIONS (64) connections, wrk's
# THREADS (2), SECONDS (10) per run, RUNS (3) rounds with the servers alternating. Prints
# signatures per second and the p50/p99 latency of every run, then the medians. Any answer that
# is not 2xx fails the run. Needs `apt-get install wrk` and `scripts/deps test` (Companion).
set -euo pipefail
cd "$(dirname "$0")/.."
server=${1:-target/release/hoist-server}
runs=${RUNS:-3}
connections=${CONNECTIONS:-64}
threads=${THREADS:-2}
seconds=${SECONDS_PER_RUN:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 2; }
[ -d tests/companion/node_modules/@uppy/companion ] || { echo "run scripts/deps test first (Companion)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "$1 did not answer" >&2; exit 1; }

AK=HOISTLOADKEY
SK=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
TOKEN=$(python3 -c 'import secrets; print("hst_" + secrets.token_hex(24))')
# The benchmark measures signing, not the server's per-token limits: those are lifted.
printf '[policy]\nrate_limit_per_minute = 100000000\nfiles_per_minute = 100000000\nfiles_burst = 100000000\n' >"$work/server.toml"
sport=$(free_port) hport=$(free_port) cport=$(free_port)
HOIST_STORE_ACCESS_KEY_ID=$AK HOIST_STORE_SECRET_ACCESS_KEY=$SK HOIST_SERVER_TOKENS=$TOKEN \
  "$server" --config "$work/server.toml" --embedded-store "$work/store" --store-listen "127.0.0.1:$sport" \
  --listen "127.0.0.1:$hport" >/dev/null 2>"$work/server.err" &
pids+=($!)
HOIST=http://127.0.0.1:$hport
wait_http "$HOIST/healthz"

COMPANION_PORT=$cport COMPANION_DOMAIN=127.0.0.1:$cport COMPANION_PROTOCOL=http \
  COMPANION_SECRET=hoist-load-secret COMPANION_PREAUTH_SECRET=hoist-load-preauth \
  COMPANION_DATADIR=$work COMPANION_UPLOAD_URLS=http://127.0.0.1:1/ COMPANION_CLIENT_ORIGINS=true \
  COMPANION_AWS_KEY=$AK COMPANION_AWS_SECRET=$SK COMPANION_AWS_BUCKET=hoist-local \
  COMPANION_AWS_REGION=us-east-1 COMPANION_AWS_ENDPOINT=http://127.0.0.1:$sport \
  COMPANION_AWS_FORCE_PATH_STYLE=true AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED \
  node tests/companion/serve.mjs >"$work/companion.log" 2>&1 &
pids+=($!)
COMPANION=http://127.0.0.1:$cport
wait_http "$COMPANION/"

# A multipart upload on each, whose part URLs are then signed over and over.
create() { # base, auth header args...
  local base=$1
  shift
  curl -sf -X POST "$base/s3/multipart" -H 'content-type: application/json' "$@" \
    -d '{"filename":"load.bin","type":"application/octet-stream","size":104857600,"metadata":{}}'
}
part_path() { # create's answer
  python3 -c 'import json,sys,urllib.parse as u; a=json.load(sys.stdin); print("/s3/multipart/" + u.quote(a["uploadId"], safe="") + "/1?key=" + u.quote(a["key"], safe=""))'
}
hoist_part=$(create "$HOIST" -H "authorization: Bearer $TOKEN" | part_path)
companion_part=$(create "$COMPANION" | part_path)
# Each endpoint answers once before the load, so a refusal shows here, not as a fast 4xx rate.
curl -sf -o /dev/null -H "authorization: Bearer $TOKEN" "$HOIST$hoist_part"
curl -sf -o /dev/null "$COMPANION$companion_part"
curl -sf -o /dev/null "$COMPANION/s3/params?filename=a.txt&type=text%2Fplain&metadata%5Bname%5D=a.txt"
curl -sf -o /dev/null -X POST -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
  -d '{"fileName":"a.txt","contentType":"text/plain","size":5}' "$HOIST/api/upload"

cat >"$work/hoist-single.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"fileName":"a.txt","contentType":"text/plain","size":5}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
cat >"$work/hoist-part.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $TOKEN"
LUA
: >"$work/none.lua"

results=$work/results.csv
load() { # name, url, script
  local out
  out=$(wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s "$3" "$2")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$1: answers that are not 2xx:" >&2
    echo "$out" >&2
    exit 1
  fi
  python3 - "$1" "$results" <<PY
import re, sys
out = """$out"""
def ms(label):
    m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
line = f"{sys.argv[1]},{rps:.0f},{ms(50):.2f},{ms(99):.2f}"
print(f"{sys.argv[1]:<28} {rps:>9.0f} signatures/s   p50 {ms(50):6.2f} ms   p99 {ms(99):6.2f} ms")
open(sys.argv[2], "a").write(line + "\n")
PY
}

echo "$connections connections, ${seconds} s per run, $runs rounds"
for round in $(seq 1 "$runs"); do
  echo "-- round $round"
  load "hoist-server single PUT" "$HOIST/api/upload" "$work/hoist-single.lua"
  load "Companion single (params)" "$COMPANION/s3/params?filename=a.txt&type=text%2Fplain&metadata%5Bname%5D=a.txt" "$work/none.lua"
  load "hoist-server part" "$HOIST$hoist_part" "$work/hoist-part.lua"
  load "Companion part" "$COMPANION$companion_part" "$work/none.lua"
done

echo "-- medians"
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = {}
for name, rps, p50, p99 in csv.reader(open(sys.argv[1])):
    rows.setdefault(name, []).append((float(rps), float(p50), float(p99)))
med = {n: tuple(statistics.median(v[i] for v in r) for i in range(3)) for n, r in rows.items()}
for n, (rps, p50, p99) in med.items():
    print(f"{n:<28} {rps:>9.0f} signatures/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
for kind, h, c in [("single PUT", "hoist-server single PUT", "Companion single (params)"),
                   ("part", "hoist-server part", "Companion part")]:
    print(f"{kind}: hoist-server / Companion = {med[h][0] / med[c][0]:.1f}x")
PY
