//! The tray icon: the batch's progress, pause and resume everything, show the window, start at
//! login (in the tray, without the window), and a quit that asks while uploads run. With a tray, closing the window only hides it, so uploads
//! go on; without one (a desktop with no status area) closing quits, asking the same question.

use std::sync::Arc;
use std::time::Duration;

use hoist::app::Manager;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Manager as _, WindowEvent};
use tauri_plugin_dialog::{DialogExt, MessageDialogButtons, MessageDialogKind};

const TRAY: &str = "hoist";
/// How often the tray's progress line is brought up to date.
const REFRESH: Duration = Duration::from_millis(500);

/// Adds the tray icon. Returns false when this desktop cannot show one: Linux loads its
/// indicator library (libayatana-appindicator3) when the icon is made and panics without it.
pub(crate) fn install(app: &tauri::App, manager: Arc<Manager>) -> bool {
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(app, manager)));
    match made {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            eprintln!("hoist: no tray icon ({e}); closing the window quits");
            false
        }
        Err(_) => {
            eprintln!("hoist: no tray icon (this desktop has no indicator library); closing the window quits");
            false
        }
    }
}

fn build(app: &tauri::App, manager: Arc<Manager>) -> tauri::Result<()> {
    let status = MenuItem::with_id(
        app,
        "status",
        manager.activity().label(),
        false,
        None::<&str>,
    )?;
    let at_login = crate::autostart::is_enabled(app.handle());
    let start_at_login = CheckMenuItem::with_id(
        app,
        "start-at-login",
        "Start at login",
        true,
        at_login,
        None::<&str>,
    )?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, "show", "Show Hoist", true, None::<&str>)?,
            &MenuItem::with_id(app, "pause-all", "Pause all", true, None::<&str>)?,
            &MenuItem::with_id(app, "resume-all", "Resume all", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &start_at_login,
            &MenuItem::with_id(app, "quit", "Quit Hoist", true, None::<&str>)?,
        ],
    )?;
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .tooltip("Hoist")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(move |app, event| match event.id().as_ref() {
            "show" => show_window(app),
            "start-at-login" => {
                let wanted = !crate::autostart::is_enabled(app);
                if let Err(e) = crate::autostart::set(app, wanted) {
                    eprintln!("hoist: start at login: {e}");
                }
                let _ = start_at_login.set_checked(crate::autostart::is_enabled(app));
            }
            "pause-all" => {
                if let Some(m) = app.try_state::<Arc<Manager>>() {
                    if let Err(e) = m.pause_all() {
                        eprintln!("hoist: pause all: {e}");
                    }
                }
            }
            "resume-all" => {
                if let Some(m) = app.try_state::<Arc<Manager>>() {
                    let m = Arc::clone(m.inner());
                    tauri::async_runtime::spawn(async move {
                        if let Err(e) = m.resume_all().await {
                            eprintln!("hoist: resume all: {e}");
                        }
                    });
                }
            }
            "quit" => quit(app),
            _ => {}
        })
        // A left click shows the window (Windows, macOS; Linux indicators only have the menu).
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                show_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    let tray = tray.build(app)?;
    std::thread::spawn(move || {
        let mut shown = String::new();
        loop {
            let label = manager.activity().label();
            if label != shown {
                if status.set_text(&label).is_err() {
                    return;
                }
                let _ = tray.set_tooltip(Some(format!("Hoist: {label}")));
                shown = label;
            }
            std::thread::sleep(REFRESH);
        }
    });
    Ok(())
}

fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Closing the window hides it while there is a tray to come back from; otherwise it quits,
/// asking first while uploads run.
pub(crate) fn on_window_event(window: &tauri::Window, event: &WindowEvent) {
    let WindowEvent::CloseRequested { api, .. } = event else {
        return;
    };
    let app = window.app_handle();
    if app.tray_by_id(TRAY).is_some() {
        api.prevent_close();
        let _ = window.hide();
        // Once, the first time: where the window went, and that uploads go on (#31).
        if app
            .try_state::<Arc<Manager>>()
            .is_some_and(|m| m.first_close_to_tray())
        {
            crate::show_notification(
                app,
                "Hoist is still running in the tray, and uploads go on. Quit from its menu.",
            );
        }
    } else if busy(app) {
        api.prevent_close();
        quit(app);
    }
}

fn busy(app: &AppHandle) -> bool {
    app.try_state::<Arc<Manager>>()
        .is_some_and(|m| m.activity().is_busy())
}

/// Quits, asking first while uploads run (they go on at the next start: the queue keeps them).
fn quit(app: &AppHandle) {
    let Some(activity) = app
        .try_state::<Arc<Manager>>()
        .map(|m| m.activity())
        .filter(|a| a.is_busy())
    else {
        app.exit(0);
        return;
    };
    let handle = app.clone();
    app.dialog()
        .message(if activity.running == 1 {
            "1 upload is still running. If you quit now, it goes on the next time Hoist starts."
                .to_owned()
        } else {
            format!(
                "{} are still running. If you quit now, they go on the next time Hoist starts.",
                hoist::app::count(activity.running, "upload")
            )
        })
        .title("Quit Hoist?")
        .kind(MessageDialogKind::Warning)
        .buttons(MessageDialogButtons::OkCancelCustom(
            "Quit".to_owned(),
            "Keep uploading".to_owned(),
        ))
        .show(move |quit| {
            if quit {
                handle.exit(0);
            }
        });
}
