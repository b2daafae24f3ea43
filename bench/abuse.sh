#!/usr/bin/env bash
# A release hoist-server on 127.0.0.1 under abuse, bounded in time (about a minute):
#   1. 1,000 connections from 16 other loopback addresses, half idle, half stalled mid-head;
#   2. meanwhile a healthy client signs 50 uploads, each answered (status and time printed);
#   3. 2,000 wrong-token requests from one address (audit bytes counted);
#   4. SIGTERM with a request in flight: it is answered, then the server exits 0.
# Memory is the server's resident set (VmRSS, and the peak VmHWM) from /proc, before and under
# attack. Fails (exit 1) if the server stops answering, its peak passes $RSS_LIMIT_MB (default
# 64), idle connections outlive the head deadline, the audit log grows past 64 KiB for the
# flood, or shutdown loses the request in flight.
# Needs: python3, curl. Results go to BENCHMARKS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
RSS_LIMIT_MB=${RSS_LIMIT_MB:-64}
cargo build --release -q -p hoist-server
bin=${CARGO_TARGET_DIR:-target}/release/hoist-server
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf '[policy]\nrate_limit_per_minute = 1000000\n[limits]\nheader_timeout_secs = 5\n' >"$work/server.toml"
HOIST_SERVER_TOKENS=$TOKEN "$bin" --config "$work/server.toml" --embedded-store "$work/store" \
  --listen "127.0.0.1:$PORT" >"$work/audit.jsonl" 2>"$work/server.err" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

PORT=$PORT TOKEN=$TOKEN PID=$pid AUDIT=$work/audit.jsonl RSS_LIMIT_MB=$RSS_LIMIT_MB python3 - <<'PY'
import json, os, socket, sys, threading, time, urllib.request

port, token, pid = int(os.environ["PORT"]), os.environ["TOKEN"], os.environ["PID"]
limit = int(os.environ["RSS_LIMIT_MB"])
failures = []

def rss():
    f = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return int(f["VmRSS"].split()[0]) / 1024, int(f["VmHWM"].split()[0]) / 1024

def sign():
    body = json.dumps({"fileName": "a.txt", "contentType": "text/plain", "size": 3}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/upload", data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.monotonic()
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and "X-Amz-Signature" in json.load(r)["url"]
    return time.monotonic() - t

now, peak = rss()
print(f"idle server: RSS {now:.1f} MiB")
socks = []
for i in range(1000):
    s = socket.socket()
    s.bind((f"127.0.0.{2 + i % 16}", 0))
    s.connect(("127.0.0.1", port))
    if i % 2:
        s.sendall(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nContent-Len")
    socks.append(s)
time.sleep(0.5)
now, peak = rss()
print(f"1,000 idle/stalled connections open: RSS {now:.1f} MiB")
times = [sign() for _ in range(50)]
print(f"healthy client meanwhile: 50/50 answered 200, slowest {max(times)*1000:.1f} ms, median {sorted(times)[25]*1000:.1f} ms")
time.sleep(6)  # past the 5 s head deadline
open_left = 0
for s in socks:
    s.settimeout(0.2)
    try:
        if s.recv(1) != b"":
            open_left += 1
    except socket.timeout:
        open_left += 1
    except OSError:
        pass
    s.close()
print(f"after the head deadline: {open_left} of 1,000 attacker connections still open")
if open_left:
    failures.append("idle connections outlived the head deadline")

before = os.path.getsize(os.environ["AUDIT"])
flood = socket.socket(); flood.bind(("127.0.0.60", 0)); flood.connect(("127.0.0.1", port))
req = b"POST /api/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-000000000000000000000000000000\r\nContent-Length: 2\r\n\r\n{}"
codes = {}
f = flood.makefile("rb")
for _ in range(2000):
    flood.sendall(req)
    status = int(f.readline().split()[1]); length = 0
    while (line := f.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    f.read(length)
    codes[status] = codes.get(status, 0) + 1
grown = os.path.getsize(os.environ["AUDIT"]) - before
print(f"2,000 wrong-token requests from one address: answers {codes}, audit log +{grown} bytes")
if grown > 64 * 1024:
    failures.append("the flood grew the audit log past 64 KiB")
times = [sign() for _ in range(10)]
print(f"healthy client after the flood: 10/10 answered 200, slowest {max(times)*1000:.1f} ms")
now, peak = rss()
print(f"server memory: RSS now {now:.1f} MiB, peak {peak:.1f} MiB (bound {limit} MiB)")
if peak > limit:
    failures.append(f"peak RSS {peak:.1f} MiB over {limit} MiB")

# A request in flight at SIGTERM is answered, then the server exits.
body = json.dumps({"fileName": "a.txt", "contentType": "text/plain", "size": 3}).encode()
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"POST /api/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode() +
          b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
          str(len(body)).encode() + b"\r\n\r\n" + body[:5])
time.sleep(0.3)
os.kill(int(pid), 15)
time.sleep(0.3)
s.sendall(body[5:])
answer = b""
while chunk := s.recv(65536):
    answer += chunk
ok = answer.startswith(b"HTTP/1.1 200")
print(f"SIGTERM with a request in flight: {'answered 200' if ok else 'LOST: ' + repr(answer[:80])}")
if not ok:
    failures.append("shutdown lost the request in flight")
if failures:
    print("FAILED: " + "; ".join(failures)); sys.exit(1)
PY
status=0
wait "$pid" || status=$?
pid=""
echo "server exit status after SIGTERM: $status"
[ "$status" -eq 0 ]
