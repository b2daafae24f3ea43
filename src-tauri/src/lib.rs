//! Hoist's desktop app: a thin Tauri v2 shell. Commands ([`commands`]) forward to the core's
//! [`hoist::app::Manager`]; queue changes flow back over one IPC channel; errors cross as
//! `{kind, message}` ([`error`]). No upload, retry or validation logic lives here.

use std::sync::Arc;

use hoist::app::{Manager, ManagerConfig};
use tauri::Manager as _;
#[cfg(not(all(unix, not(target_os = "macos"))))]
use tauri_plugin_notification::NotificationExt;

mod autostart;
pub mod commands;
pub mod error;
pub mod thumbnail;
mod tray;

/// Tells the desktop that a batch ended (best effort: a desktop without a notification
/// service just shows nothing).
pub(crate) fn notify_batch(app: &tauri::AppHandle, done: u32, failed: u32) {
    let body = match (done, failed) {
        (d, 0) => format!("{} uploaded", hoist::app::count(d, "file")),
        (0, f) => format!(
            "{} failed: open Hoist to see why",
            hoist::app::count(f, "upload")
        ),
        (d, f) => format!("{d} uploaded, {f} failed: open Hoist to see why"),
    };
    show_notification(app, &body);
}

/// On Linux and the BSDs the notification names its sender itself: the plugin's would say
/// "hoist-desktop" (the executable). Windows names the installed app by its identifier.
#[cfg(all(unix, not(target_os = "macos")))]
fn show_notification(_app: &tauri::AppHandle, body: &str) {
    let _ = notify_rust::Notification::new()
        .appname("Hoist")
        .summary("Hoist")
        .body(body)
        .icon("hoist-desktop")
        // The .deb's launcher (Hoist.desktop): the desktop takes the name and icon from it.
        .hint(notify_rust::Hint::DesktopEntry("Hoist".to_owned()))
        .show();
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show_notification(app: &tauri::AppHandle, body: &str) {
    let _ = app
        .notification()
        .builder()
        .title("Hoist")
        .body(body)
        .show();
}

/// Queues files handed to the app from outside its window; the UI hears what was queued and
/// refused (`ManagerEvent::Added`).
fn add_from_outside(app: &tauri::AppHandle, paths: Vec<std::path::PathBuf>) {
    let Some(manager) = app
        .try_state::<Arc<Manager>>()
        .map(|m| Arc::clone(m.inner()))
    else {
        return;
    };
    tauri::async_runtime::spawn(async move {
        if let Err(e) = manager.add_from_outside(paths).await {
            eprintln!("hoist: cannot add the files: {e}");
        }
    });
}

fn started_hidden() -> bool {
    std::env::args().any(|a| a == autostart::HIDDEN)
}

/// Opens the main window (`create: false` in tauri.conf.json, so it is made here): with
/// `HOIST_DATA_DIR` set, WebKit keeps its data and cache under it, not in the user's dirs.
fn open_main_window(app: &tauri::App) -> tauri::Result<()> {
    let Some(config) = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == "main")
        .cloned()
    else {
        return Ok(());
    };
    let mut window =
        tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?.visible(!started_hidden());
    if let Some(data) = std::env::var_os("HOIST_DATA_DIR") {
        window = window.data_directory(std::path::PathBuf::from(data).join("webview"));
    }
    let window = window.build()?;
    #[cfg(target_os = "linux")]
    window.with_webview(|webview| {
        use webkit2gtk::{SettingsExt, WebContextExt, WebViewExt};
        let view = webview.inner();
        // WebKitGTK's default caches are a browser's (pages and resources kept for going back
        // and forth); Hoist's one page needs a document viewer's, the smallest.
        if let Some(context) = view.context() {
            context.set_cache_model(webkit2gtk::CacheModel::DocumentViewer);
        }
        // A page of rows and progress bars draws cheaply on the CPU. Composited through GL,
        // its layer buffers were most of the web process's memory while a big folder uploads
        // (bench/desktop_many.sh), and they grew with every repaint.
        if let Some(settings) = WebViewExt::settings(&view) {
            settings
                .set_hardware_acceleration_policy(webkit2gtk::HardwareAccelerationPolicy::Never);
        }
    })?;
    #[cfg(not(target_os = "linux"))]
    let _ = window;
    Ok(())
}

/// Runs the app until it is quit (from the tray, or by closing the window where there is none).
pub fn run() {
    let builder = tauri::Builder::default()
        // First, so that a second launch hands over and exits before anything else starts.
        .plugin(tauri_plugin_single_instance::init(|app, args, cwd| {
            // A second launch with files (Open with Hoist, Send to, a script): they go to this
            // app's queue; without, it brings this window forward.
            let paths = hoist::app::launch::paths_from_args(
                args.get(1..).unwrap_or_default(),
                std::path::Path::new(&cwd),
            );
            if !paths.is_empty() {
                add_from_outside(app, paths);
                return;
            }
            if let Some(w) = app.get_webview_window("main") {
                let _ = w.unminimize();
                let _ = w.show();
                let _ = w.set_focus();
            }
        }))
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(
            tauri_plugin_autostart::Builder::new()
                .arg(autostart::HIDDEN)
                .build(),
        );
    // The window's size and place are kept in the user's config dir, which the plugin cannot
    // be moved out of: with HOIST_CONFIG_DIR set (tests, portable installs) they are not kept.
    let builder = if std::env::var_os("HOIST_CONFIG_DIR").is_none() {
        builder.plugin(tauri_plugin_window_state::Builder::default().build())
    } else {
        builder
    };
    builder
        .setup(|app| {
            open_main_window(app)?;
            let manager: Arc<Manager> =
                tauri::async_runtime::block_on(async { Manager::open(ManagerConfig::user()) })?;
            app.manage(Arc::clone(&manager));
            app.manage(hoist::app::events::InView::default());
            if !tray::install(app, Arc::clone(&manager)) && started_hidden() {
                // No tray to come back from: a hidden window would be lost.
                if let Some(w) = app.get_webview_window("main") {
                    w.show()?;
                }
            }
            // Uploads that were running when the app closed go on.
            tauri::async_runtime::spawn(async move {
                if let Err(e) = manager.resume_unfinished().await {
                    eprintln!("hoist: cannot resume the queue: {e}");
                }
            });
            // Files it was started with (Open with Hoist, Send to, a script).
            let args: Vec<String> = std::env::args().skip(1).collect();
            let cwd = std::env::current_dir().unwrap_or_default();
            let paths = hoist::app::launch::paths_from_args(&args, &cwd);
            if !paths.is_empty() {
                add_from_outside(app.handle(), paths);
            }
            Ok(())
        })
        .on_window_event(tray::on_window_event)
        .invoke_handler(tauri::generate_handler![
            commands::subscribe,
            commands::overview,
            commands::queue_window,
            commands::add_paths,
            commands::pause,
            commands::resume,
            commands::cancel,
            commands::retry,
            commands::dismiss,
            commands::pause_all,
            commands::resume_all,
            commands::cancel_all,
            commands::retry_all,
            commands::clear_finished,
            commands::history_page,
            commands::export_history,
            commands::profiles,
            commands::profile_template,
            commands::save_profile,
            commands::remove_profile,
            commands::set_active,
            commands::export_profile,
            commands::import_profile,
            commands::health_check,
            commands::set_limit_rate,
            commands::parse_size,
            commands::share_link,
            commands::show_in_folder,
            commands::thumbnail,
            commands::sign_in,
            commands::sign_out,
        ])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("hoist: the app could not start: {e}");
            std::process::exit(1);
        });
}
