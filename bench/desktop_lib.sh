# Sourced by the desktop benchmarks: builds the UI (embedded in the binary at compile time) and
# the desktop app for $PROFILE (debug or release), and sets DESKTOP_BIN to it.
build_desktop() {
  npm --prefix ui run build --silent
  if [ "$PROFILE" = release ]; then cargo build --release -p hoist-desktop; else cargo build -p hoist-desktop; fi
  DESKTOP_BIN=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/hoist-desktop
}
