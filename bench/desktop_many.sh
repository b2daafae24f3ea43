#!/usr/bin/env bash
# Benchmark (not a test): the desktop app with a folder of FILES (100,000) tiny files, through
# ui/test/e2e/many.e2e.mjs on the real app under Xvfb: how long until all are queued and all
# have landed, the longest main-thread task (a timer's lateness: WebKit has no Long Tasks API),
# and the peak PSS of the app and its WebKit processes.
#   bench/desktop_many.sh                  # FILES=100000 PROFILE=debug
#   PROFILE=release bench/desktop_many.sh  # the release build (a long build on 2 cores)
# Needs what scripts/test needs (scripts/deps test): tauri-driver, WebKitWebDriver, xvfb-run.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-100000}
PROFILE=${PROFILE:-debug}
. bench/desktop_lib.sh
build_desktop
runtime=$(mktemp -d)
trap 'rm -rf "$runtime"' EXIT
mkdir -p "$runtime/run" "$runtime/data"
chmod 700 "$runtime/run"
XDG_RUNTIME_DIR=$runtime/run XDG_DATA_HOME=$runtime/data HOIST_DESKTOP_BIN=$DESKTOP_BIN \
  HOIST_MANY_FILES=$FILES dbus-run-session -- bash -c '
    echo -n bench | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
    xvfb-run -a -s "-screen 0 1280x800x24" node --test ui/test/e2e/many.e2e.mjs' 2>&1 |
  grep -E "many-files:|^# (pass|fail)|not ok|Error" || true
echo "(date $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) cores; $PROFILE build)"
