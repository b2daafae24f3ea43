# Sourced by the desktop benchmarks: builds the UI (embedded in the binary at compile time) and
# the desktop app for $PROFILE (debug or release), and sets DESKTOP_BIN to it.
build_desktop() {
  npm --prefix ui run build --silent
  # The whole workspace, as scripts/test builds it: with the core's features unified the same
  # way, its build is reused (the desktop crate alone resolves them otherwise, and rebuilds).
  if [ "$PROFILE" = release ]; then cargo build --release --workspace; else cargo build --workspace; fi
  DESKTOP_BIN=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE/hoist-desktop
}
