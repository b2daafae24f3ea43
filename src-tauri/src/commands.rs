//! The IPC commands: each forwards to the core's [`Manager`] and maps its error.

use std::path::PathBuf;
use std::sync::Arc;

use hoist::app::health::HealthReport;
use hoist::app::profiles::{ProfileEntry, ProfileTemplate, SecretInput};
use hoist::app::{
    events::{Coalescer, InView},
    AddSummary, ExportFormat, HistoryPage, HistoryQuery, Manager, ManagerError, ManagerEvent,
    Overview, QueueQuery, QueueWindow,
};
use hoist::profile::Profile;
use tauri::ipc::Channel;
use tauri::{AppHandle, State};

use tauri_plugin_opener::OpenerExt;

use crate::error::{IpcError, Result};

type Mgr<'a> = State<'a, Arc<Manager>>;

/// Sends every queue change to `on_event` (and a notification when a batch ends); the rows
/// themselves come from [`queue_window`], a window at a time.
#[tauri::command]
pub fn subscribe(
    app: AppHandle,
    manager: Mgr<'_>,
    view: State<'_, InView>,
    on_event: Channel<Vec<ManagerEvent>>,
) {
    // Events reach the webview coalesced, every EVENT_INTERVAL at most: one message for what
    // a folder of thousands of files did meanwhile, and only the rows in view by name (the
    // window asks again for the rest). The forwarder ends with its subscription.
    let pending = Arc::new(Coalescer::default());
    view.attach(&pending);
    let forwarding = Arc::downgrade(&pending);
    std::thread::spawn(move || {
        while let Some(pending) = forwarding.upgrade() {
            let events = pending.take();
            drop(pending);
            if !events.is_empty() && on_event.send(events).is_err() {
                return;
            }
            std::thread::sleep(EVENT_INTERVAL);
        }
    });
    manager.subscribe(Arc::new(move |event| {
        if let ManagerEvent::BatchFinished { done, failed } = &event {
            crate::notify_batch(&app, *done, *failed);
        }
        pending.push(event);
    }));
}

/// The rows of the queue view in view (and the counts and totals around them).
#[tauri::command]
pub fn queue_window(
    manager: Mgr<'_>,
    view: State<'_, InView>,
    query: QueueQuery,
) -> Result<QueueWindow> {
    let window = manager.queue_window(query)?;
    view.watch(window.rows.iter().map(|r| r.id));
    Ok(window)
}

/// How often coalesced events go to the webview.
const EVENT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// The header: the active profile and where its files land.
#[tauri::command]
pub async fn overview(manager: Mgr<'_>) -> Result<Overview> {
    Ok(manager.overview().await?)
}

/// Queues dropped or picked files and folders; refused files come back with the reason.
#[tauri::command]
pub async fn add_paths(manager: Mgr<'_>, paths: Vec<PathBuf>) -> Result<AddSummary> {
    Ok(manager.inner().add(paths).await?.into())
}

/// Pauses upload `id`.
#[tauri::command]
pub fn pause(manager: Mgr<'_>, id: i64) -> Result<()> {
    Ok(manager.pause(id)?)
}

/// Resumes upload `id`.
#[tauri::command]
pub async fn resume(manager: Mgr<'_>, id: i64) -> Result<()> {
    Ok(manager.inner().resume(id).await?)
}

/// Cancels upload `id`; nothing stays behind on the store.
#[tauri::command]
pub async fn cancel(manager: Mgr<'_>, id: i64) -> Result<()> {
    Ok(manager.inner().cancel(id).await?)
}

/// Retries failed upload `id`.
#[tauri::command]
pub async fn retry(manager: Mgr<'_>, id: i64) -> Result<()> {
    Ok(manager.inner().retry(id).await?)
}

/// Removes finished upload `id` from the queue view.
#[tauri::command]
pub fn dismiss(manager: Mgr<'_>, id: i64) -> Result<()> {
    Ok(manager.dismiss(id)?)
}

/// Pauses every upload.
#[tauri::command]
pub fn pause_all(manager: Mgr<'_>) -> Result<()> {
    Ok(manager.pause_all()?)
}

/// Resumes every paused upload.
#[tauri::command]
pub async fn resume_all(manager: Mgr<'_>) -> Result<()> {
    Ok(manager.inner().resume_all().await?)
}

/// Cancels every unfinished upload.
#[tauri::command]
pub async fn cancel_all(manager: Mgr<'_>) -> Result<()> {
    Ok(manager.inner().cancel_all().await?)
}

/// Retries every failed upload.
#[tauri::command]
pub async fn retry_all(manager: Mgr<'_>) -> Result<()> {
    Ok(manager.inner().retry_all().await?)
}

/// Dismisses every finished upload; returns what stays.
#[tauri::command]
pub fn clear_finished(manager: Mgr<'_>) -> Result<()> {
    Ok(manager.clear_finished()?)
}

/// A page of finished uploads, newest first.
#[tauri::command]
pub fn history_page(manager: Mgr<'_>, query: HistoryQuery) -> Result<HistoryPage> {
    Ok(manager.history_page(&query)?)
}

/// Writes the history to `path`; returns how many uploads it holds.
#[tauri::command]
pub fn export_history(manager: Mgr<'_>, format: ExportFormat, path: PathBuf) -> Result<usize> {
    Ok(manager.export_history(format, &path)?)
}

/// What a new profile starts from, and the secrets each mode keeps.
#[tauri::command]
pub fn profile_template() -> ProfileTemplate {
    hoist::app::profiles::profile_template()
}

/// Every profile, with whether its secrets are stored.
#[tauri::command]
pub async fn profiles(manager: Mgr<'_>) -> Result<Vec<ProfileEntry>> {
    Ok(manager.profiles().await?)
}

/// Creates or replaces a profile; its secrets go to the keychain.
#[tauri::command]
pub async fn save_profile(
    manager: Mgr<'_>,
    name: String,
    profile: Profile,
    secrets: Vec<SecretInput>,
    create: bool,
) -> Result<ProfileEntry> {
    Ok(manager
        .save_profile(&name, profile, secrets, create)
        .await?)
}

/// Removes a profile and its secrets.
#[tauri::command]
pub async fn remove_profile(manager: Mgr<'_>, name: String) -> Result<()> {
    for left in manager.remove_profile(&name).await? {
        tracing::warn!(profile = %name, kind = left.kind.as_str(), error = %left.error, "secret left in the keychain");
    }
    Ok(())
}

/// Makes a profile the one new files go to.
#[tauri::command]
pub fn set_active(manager: Mgr<'_>, name: String) -> Result<()> {
    Ok(manager.set_active(&name)?)
}

/// Writes a profile, without secrets, to `path`.
#[tauri::command]
pub fn export_profile(manager: Mgr<'_>, name: String, path: PathBuf) -> Result<()> {
    Ok(manager.export_profile(&name, &path)?)
}

/// Imports a profile file and makes it active.
#[tauri::command]
pub async fn import_profile(manager: Mgr<'_>, path: PathBuf) -> Result<ProfileEntry> {
    Ok(manager.import_profile(&path).await?)
}

/// A link that downloads finished upload `id` for anyone who has it, for `expires_secs`.
#[tauri::command]
pub async fn share_link(manager: Mgr<'_>, id: i64, expires_secs: u64) -> Result<String> {
    let expires_in = std::time::Duration::from_secs(expires_secs);
    Ok(manager.share_link(id, expires_in).await?)
}

/// Sets the bandwidth limit over all uploads from what staff typed (`5MB`, `500KiB/s`; empty
/// lifts it); answers it in bytes per second.
#[tauri::command]
pub fn set_limit_rate(manager: Mgr<'_>, rate: String) -> Result<Option<u64>> {
    Ok(manager.set_limit_rate_typed(&rate)?)
}

/// Shows upload `id`'s file selected in the system's file manager.
#[tauri::command]
pub fn show_in_folder(app: AppHandle, manager: Mgr<'_>, id: i64) -> Result<()> {
    let path = manager.source_file(id)?;
    app.opener()
        .reveal_item_in_dir(&path)
        .map_err(|e| IpcError::failed(format!("cannot open the file manager: {e}")))
}

/// A small picture of upload `id`'s file when it is an image (a `data:` URL), else none.
#[tauri::command]
pub async fn thumbnail(manager: Mgr<'_>, id: i64) -> Result<Option<String>> {
    let Ok(path) = manager.source_file(id) else {
        return Ok(None);
    };
    tauri::async_runtime::spawn_blocking(move || crate::thumbnail::of(&path))
        .await
        .map_err(|e| IpcError::failed(format!("cannot make a thumbnail: {e}")))
}

/// A size as staff type it (`100MB`, `5GiB`), in bytes: the profile form's sizes.
#[tauri::command]
pub fn parse_size(text: String) -> Result<u64> {
    Ok(hoist::profile::parse_size(&text).map_err(ManagerError::Invalid)?)
}

/// Signs profile `name` in with the company's identity provider through the system browser;
/// answers who signed in.
#[tauri::command]
pub async fn sign_in(manager: Mgr<'_>, name: String) -> Result<String> {
    let open = Box::new(|url: &str| {
        // On Linux, webbrowser honours $BROWSER (the tests point it at a recorder).
        if let Err(e) = webbrowser::open(url) {
            tracing::warn!("cannot open the browser for the sign-in: {e}");
        }
    });
    Ok(manager.sign_in(&name, open).await?)
}

/// Signs profile `name` out.
#[tauri::command]
pub async fn sign_out(manager: Mgr<'_>, name: String) -> Result<()> {
    Ok(manager.sign_out(&name).await?)
}

/// Checks that a profile works.
#[tauri::command]
pub async fn health_check(manager: Mgr<'_>, name: String) -> Result<HealthReport> {
    Ok(manager.health_check(&name).await?)
}
