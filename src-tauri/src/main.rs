//! The Hoist desktop app's executable: see the `hoist_desktop` library.

// No console window next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    hoist::memory::limit_malloc_arenas();
    hoist_desktop::run()
}
