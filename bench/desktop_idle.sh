#!/usr/bin/env bash
# Benchmark (not a test): the desktop app's memory at rest, as staff leave it open all day:
# PSS of the app and its WebKit processes (web content, network) once its window has shown the
# empty queue and settled.
#   bench/desktop_idle.sh                  # the release build (a long build on 2 cores)
#   PROFILE=debug bench/desktop_idle.sh
# Needs Xvfb, dbus-run-session and gnome-keyring (scripts/deps test installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
SETTLE=${SETTLE:-20}

# "name MiB" for process $1 and each of its descendants, then "total MiB".
pss() {
  local all=$1 kids=$1
  while [ -n "$kids" ]; do
    kids=$(for p in $kids; do pgrep -P "$p" || true; done)
    all="$all $kids"
  done
  for p in $all; do
    kib=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
    [ -n "$kib" ] && echo "$(cat "/proc/$p/comm") $kib"
  done | awk '{s+=$2; printf "%s %d MiB, ", $1, $2/1024} END {printf "total %d MiB", s/1024}'
}

if [ "${1:-}" = inside ]; then  # in the D-Bus session and the X server
  echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
  HOIST_CONFIG_DIR=$WORK/config HOIST_DATA_DIR=$WORK/data "$BIN" >/dev/null 2>&1 &
  app=$!
  for t in 5 $SETTLE; do
    sleep $((t == 5 ? 5 : SETTLE - 5))
    echo "after $t s, PSS: $(pss $app)"
  done
  kill $app
  exit 0
fi

. bench/desktop_lib.sh
build_desktop
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/run" "$work/xdg"
chmod 700 "$work/run"
WORK=$work BIN=$DESKTOP_BIN SETTLE=$SETTLE XDG_RUNTIME_DIR=$work/run \
  XDG_DATA_HOME=$work/xdg dbus-run-session -- \
  xvfb-run -a -s "-screen 0 1280x800x24" bash "$0" inside 2>&1 | grep "PSS"
echo "($(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores; $PROFILE build)"
