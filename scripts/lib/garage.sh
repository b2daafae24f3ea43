# Sourced by scripts/interop and bench/cpu_per_gib.sh: a one-node Garage 2.x on 127.0.0.1
# (scripts/garage builds it once, outside the clone), sqlite metadata, region us-east-1, one
# bucket and a key allowed on it.
GARAGE_BIN=${GARAGE_BIN:-/var/cache/hoist-ci/garage/bin/garage}

# garage_start DIR: starts Garage keeping its files in DIR; sets ENDPOINT, AK, SK, BUCKET and
# GARAGE_PID (the caller stops it).
garage_start() {
  local dir=$1 s3port rpcport adminport
  [ -x "$GARAGE_BIN" ] || { echo "Garage is not built: run scripts/garage (20-35 min on 2 cores)" >&2; return 2; }
  port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  s3port=$(port); rpcport=$(port); adminport=$(port)
  mkdir -p "$dir"
  cat >"$dir/garage.toml" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpcport"
rpc_public_addr = "127.0.0.1:$rpcport"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$s3port"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$adminport"
admin_token = "$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
EOF
  local g=("$GARAGE_BIN" -c "$dir/garage.toml")
  RUST_LOG=warn "${g[@]}" server >"$dir/garage.log" 2>&1 &
  GARAGE_PID=$!
  local node=""
  for _ in $(seq 120); do
    node=$("${g[@]}" status 2>/dev/null | awk '/NO ROLE ASSIGNED/ {print $1; exit}') || true
    [ -n "$node" ] && break
    sleep 0.25
  done
  [ -n "$node" ] || { echo "garage did not start: $dir/garage.log" >&2; return 2; }
  "${g[@]}" layout assign -z dc1 -c 1G "$node" >/dev/null
  "${g[@]}" layout apply --version 1 >/dev/null
  BUCKET=hoist-garage
  "${g[@]}" bucket create "$BUCKET" >/dev/null
  local key; key=$("${g[@]}" key create hoist)
  AK=$(awk '/^Key ID:/ {print $3}' <<<"$key")
  SK=$(awk '/^Secret key:/ {print $3}' <<<"$key")
  "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key hoist >/dev/null
  ENDPOINT=http://127.0.0.1:$s3port
}
