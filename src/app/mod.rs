//! The application layer: the upload manager behind the desktop app: one long-lived object that owns the persistent
//! queue, a [`Session`](crate::Session) per profile, and the uploads running now.
//!
//! The app's shell only forwards calls to it: files dropped or picked go to [`Manager::add`],
//! the buttons to [`Manager::pause`], [`Manager::resume`], [`Manager::cancel`],
//! [`Manager::retry`] and [`Manager::dismiss`], and everything that changes comes back through
//! one [`EventSink`] as [`ManagerEvent`]s. Because every state lives in the queue database, the
//! queue survives closing the app: [`Manager::resume_unfinished`] restarts what was running.
//!
//! The types that cross to the UI derive `ts_rs::TS` with the `ipc` feature; `cargo test` writes their TypeScript
//! to `ui/src/bindings/` (see `.cargo/config.toml`), and CI fails when that differs from what is
//! committed.

use std::time::Duration;

mod error;
pub mod events;
pub mod health;
pub mod history;
pub mod launch;
mod manager;
pub mod profiles;
pub mod views;

pub use error::ManagerError;
pub use manager::{EventSink, Manager, ManagerConfig, RECONNECT_MAX};
pub use views::count;
pub use views::{
    Activity, AddReport, AddSummary, ExportFormat, HistoryCursor, HistoryEntry, HistoryPage,
    HistoryQuery, ManagerEvent, Overall, Overview, Phase, QueueFilter, QueueQuery, QueueWindow,
    Rejection, UploadRow,
};

/// Progress of one upload reaches the UI at most this often.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// Entries on a history page unless the query asks fewer.
pub const HISTORY_PAGE: u32 = 200;
/// The most rows one window of the queue view holds.
pub const QUEUE_WINDOW_MAX: u32 = 500;
/// The most entries one history page holds.
pub const HISTORY_PAGE_MAX: u32 = 1_000;
