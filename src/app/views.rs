//! The types the UI sees (with the `ipc` feature they derive `ts_rs::TS`; `cargo test` writes their TypeScript to
//! `ui/src/bindings/`), and how a queue item becomes a row.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::queue::{ItemState, QueueItem};

/// Where an upload stands, as the UI shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum Phase {
    /// Waiting for its turn.
    Queued,
    /// Checksumming and asking for signed URLs.
    Signing,
    /// Bytes are moving.
    Uploading,
    /// All bytes sent; waiting for S3 to confirm and checking its answer.
    Verifying,
    /// Landed and verified.
    Done,
    /// Stopped with a reason.
    Failed,
    /// Stopped; resumes where it stopped.
    Paused,
    /// Stopped and aborted.
    Cancelled,
}

impl Phase {
    pub(crate) fn of(state: ItemState) -> Self {
        match state {
            // An upload marked running that is not running was cut off: it waits to go again.
            ItemState::Queued | ItemState::Uploading => Self::Queued,
            ItemState::Paused => Self::Paused,
            ItemState::Done => Self::Done,
            ItemState::Failed => Self::Failed,
            ItemState::Cancelled => Self::Cancelled,
        }
    }
}

/// One upload in the queue view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct UploadRow {
    /// The queue item's id.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub id: i64,
    /// The profile it uploads with.
    pub profile: String,
    /// The file on disk.
    pub path: String,
    /// The file's name.
    pub name: String,
    /// Where it goes; empty while a backend has yet to choose it (a staff file not yet
    /// signed).
    pub key: String,
    /// Bytes.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub size: u64,
    /// Where it stands.
    pub phase: Phase,
    /// Bytes S3 has (or is being sent, for the part in flight).
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub sent: u64,
    /// Why it failed, was cancelled, is being retried or restarted.
    pub error: Option<String>,
    /// Hex SHA-256 of what landed, once done.
    pub sha256: Option<String>,
    /// The object's URL (no signature), once done.
    pub location: Option<String>,
    /// The backend checked what landed (type, size, malware) and moved it to `key`.
    pub verified: bool,
}

/// What changed; the UI applies these to its copy of the queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum ManagerEvent {
    /// A row is new or its phase, error or result changed.
    Changed {
        /// The row as it is now.
        row: UploadRow,
    },
    /// Bytes moved (at most every [`super::PROGRESS_INTERVAL`] per upload).
    Progress {
        /// The row.
        #[cfg_attr(feature = "ipc", ts(type = "number"))]
        id: i64,
        /// Bytes sent.
        #[cfg_attr(feature = "ipc", ts(type = "number"))]
        sent: u64,
        /// Bytes to send.
        #[cfg_attr(feature = "ipc", ts(type = "number"))]
        total: u64,
    },
    /// Nothing runs any more; counts since the last time that happened.
    BatchFinished {
        /// Uploads that landed.
        done: u32,
        /// Uploads that failed.
        failed: u32,
    },
    /// Uploads out of the UI's view changed (came, moved on, finished): the rows in view may
    /// have moved and the counts changed. Sent by [`super::events::Coalescer`] in place of
    /// their own events.
    QueueChanged,
    /// Files handed to the app from outside its window (its command line: a file manager's
    /// "Open with Hoist" or "Send to", a script) were queued or refused.
    Added {
        /// What was queued and what was refused, with the reason.
        summary: AddSummary,
    },
}

/// A file that was refused before upload, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct Rejection {
    /// The file on disk.
    pub path: String,
    /// Why it was refused.
    pub reason: String,
}

/// What [`Manager::add`](crate::app::Manager::add) did with each file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddReport {
    /// The queue ids of the files queued (they start at once; their rows come as events).
    pub queued: Vec<i64>,
    /// Files refused, with the reason.
    pub rejected: Vec<Rejection>,
}

/// What an add did, as the UI hears it: the rows themselves come as events (a folder of
/// 100,000 files would otherwise cross the IPC twice).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct AddSummary {
    /// How many files were queued.
    pub queued: u32,
    /// Files refused, with the reason.
    pub rejected: Vec<Rejection>,
}

impl From<AddReport> for AddSummary {
    fn from(r: AddReport) -> Self {
        Self {
            queued: u32::try_from(r.queued.len()).unwrap_or(u32::MAX),
            rejected: r.rejected,
        }
    }
}

/// One finished upload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct HistoryEntry {
    /// The queue item's id.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub id: i64,
    /// The profile it uploads with.
    pub profile: String,
    /// The file's name.
    pub name: String,
    /// Where it goes.
    pub key: String,
    /// Bytes.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub size: u64,
    /// Hex SHA-256 of what landed, for a file sent in one PUT.
    pub sha256: Option<String>,
    /// The ETag the store gave it.
    pub etag: Option<String>,
    /// What proved the landed bytes are the file's: checksum, value, and who checked it.
    pub integrity: Option<String>,
    /// The object's URL, without any signature.
    pub url: Option<String>,
    /// When it landed (UTC, RFC 3339).
    pub finished_at: String,
    /// The backend checked what landed and moved it to `key`.
    pub verified: bool,
    /// A share link can be made for it: Hoist signs for its bucket (admin mode, the embedded
    /// store); a company backend signs only uploads, so its staff are never offered one. Not
    /// in exports (what landed, not what the window offers).
    #[serde(default)]
    pub shareable: bool,
}

/// Where a history page starts: after this entry (the last of the page before).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct HistoryCursor {
    /// The entry's `finishedAt`.
    pub finished_at: String,
    /// The entry's id.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub id: i64,
}

/// Which uploads the queue view lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum QueueFilter {
    /// Every upload not dismissed.
    #[default]
    All,
    /// Queued, running or paused.
    Unfinished,
    /// Failed or cancelled.
    Failed,
    /// Landed.
    Done,
}

impl QueueFilter {
    /// The states it lists, unfinished ones first (listed oldest first), then finished ones
    /// (newest first): a new drop is at the top, above the day's finished uploads.
    pub(crate) fn states(self) -> (&'static [ItemState], &'static [ItemState]) {
        const UNFINISHED: &[ItemState] =
            &[ItemState::Queued, ItemState::Uploading, ItemState::Paused];
        match self {
            Self::All => (
                UNFINISHED,
                &[ItemState::Done, ItemState::Failed, ItemState::Cancelled],
            ),
            Self::Unfinished => (UNFINISHED, &[]),
            Self::Failed => (&[], &[ItemState::Failed, ItemState::Cancelled]),
            Self::Done => (&[], &[ItemState::Done]),
        }
    }
}

/// Which rows of the queue view to send: the UI asks for the ones in view, so a queue of
/// 100,000 uploads costs it a screenful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct QueueQuery {
    /// Which uploads.
    #[serde(default)]
    pub filter: QueueFilter,
    /// The first row, counted from the top of the list.
    #[serde(default)]
    pub offset: u32,
    /// Rows at most (at most [`super::QUEUE_WINDOW_MAX`]).
    #[serde(default)]
    pub limit: u32,
}

/// Rows of the queue view, with what the list around them needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct QueueWindow {
    /// The query's offset: `rows[0]` is the list's row at this index.
    pub offset: u32,
    /// The rows, in the list's order.
    pub rows: Vec<UploadRow>,
    /// How many uploads the filter lists.
    pub matching: u32,
    /// How many uploads the queue view has, whatever the filter.
    pub all: u32,
    /// The unfinished uploads together, for the overall bar.
    pub overall: Overall,
}

/// The unfinished uploads together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct Overall {
    /// Queued, running or paused uploads.
    pub unfinished: u32,
    /// Their bytes.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub size: u64,
    /// Their bytes the store has (or is being sent) now.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub sent: u64,
    /// Every byte sent since the app started, finished uploads included: its growth over
    /// time is the overall speed.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub sent_ever: u64,
}

/// Which page of the history to show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct HistoryQuery {
    /// Only entries whose file path, key or profile contain this.
    #[serde(default)]
    pub search: Option<String>,
    /// The page after this entry; the newest page when absent.
    #[serde(default)]
    pub before: Option<HistoryCursor>,
    /// Entries on the page (at most [`super::HISTORY_PAGE_MAX`]).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of the history, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct HistoryPage {
    /// The entries.
    pub entries: Vec<HistoryEntry>,
    /// How many entries match the search, on every page.
    #[cfg_attr(feature = "ipc", ts(type = "number"))]
    pub total: u64,
    /// Where the next page starts; none on the last page.
    pub next: Option<HistoryCursor>,
}

/// How history is exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub enum ExportFormat {
    /// One header row, then a row per upload.
    Csv,
    /// A pretty-printed array.
    Json,
}

/// The app's header line: which profile is active and where its files land.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ipc", derive(ts_rs::TS))]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ipc", ts(export))]
pub struct Overview {
    /// The profile new files go to.
    pub active_profile: String,
    /// A folder on this machine (the embedded store), a bucket URL or a backend URL.
    pub destination: String,
    /// True for the embedded store: the destination is a local folder.
    pub local: bool,
    /// The bandwidth limit over all uploads, bytes per second.
    #[cfg_attr(feature = "ipc", ts(type = "number | null"))]
    pub limit_rate: Option<u64>,
    /// The active profile signs in with the company's identity provider.
    pub signs_in: bool,
    /// Who is signed in to it, if anybody.
    pub signed_in_as: Option<String>,
}

impl Phase {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Signing => "signing",
            Self::Uploading => "uploading",
            Self::Verifying => "verifying",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What a running upload adds to its queue item's row.
pub(crate) struct LiveView {
    pub phase: Phase,
    pub sent: u64,
    pub note: Option<String>,
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

pub(crate) fn row_of(item: &QueueItem, live: Option<LiveView>) -> UploadRow {
    let (phase, sent, note) = match live {
        Some(l) => (l.phase, l.sent, l.note),
        None => (
            Phase::of(item.state),
            // A paused or interrupted multipart upload already has its journaled parts.
            if item.state == ItemState::Done {
                item.size
            } else {
                item.acked_bytes
            },
            None,
        ),
    };
    let error = match phase {
        Phase::Failed | Phase::Cancelled => item.error.clone(),
        _ => note,
    };
    // A staff file's key is the backend's to choose: until it has (a ticket, a multipart
    // upload, or landed), the key Hoist built would mislead (#31).
    let provisional = item.state != ItemState::Done
        && item.ticket.is_none()
        && item.upload_id.is_none()
        && item
            .destination
            .as_deref()
            .is_some_and(crate::profile::Mode::destination_chooses_keys);
    UploadRow {
        id: item.id,
        profile: item.profile.clone(),
        path: item.path.display().to_string(),
        name: file_name(&item.path),
        key: if provisional {
            String::new()
        } else {
            item.key.clone()
        },
        size: item.size,
        phase,
        sent,
        error,
        sha256: item.sha256.clone(),
        location: item.location.clone(),
        verified: item.verified,
    }
}

/// What the manager is doing now, for the tray and anything else that shows it at a glance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Activity {
    /// Uploads running or waiting for a slot (paused ones are not counted).
    pub running: u32,
    /// Uploads of the current batch that landed.
    pub done: u32,
    /// Uploads of the current batch that failed.
    pub failed: u32,
}

impl Activity {
    /// Whether quitting now would interrupt uploads (they go on at the next start).
    pub fn is_busy(&self) -> bool {
        self.running > 0
    }

    /// One line, as the tray's menu shows it: "Uploading: 12 of 200 files done, 1 failed".
    pub fn label(&self) -> String {
        if self.running == 0 {
            return "No uploads running".to_owned();
        }
        let total = self.running + self.done + self.failed;
        let mut label = format!("Uploading: {} of {} done", self.done, count(total, "file"));
        if self.failed > 0 {
            label.push_str(&format!(", {} failed", self.failed));
        }
        label
    }
}

/// `n` and a regular noun, in the singular or the plural: "1 file", "3 uploads" (never
/// "file(s)").
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod count_tests {
    use super::Activity;

    #[test]
    fn the_tray_line_counts_the_batch() {
        assert_eq!(Activity::default().label(), "No uploads running");
        assert!(!Activity::default().is_busy());
        let a = Activity {
            running: 3,
            done: 1,
            failed: 0,
        };
        assert_eq!(a.label(), "Uploading: 1 of 4 files done");
        assert!(a.is_busy());
        let one = Activity {
            running: 1,
            done: 0,
            failed: 2,
        };
        assert_eq!(one.label(), "Uploading: 0 of 3 files done, 2 failed");
    }

    #[test]
    fn counts_say_one_or_many() {
        assert_eq!(super::count(1u32, "file"), "1 file");
        assert_eq!(super::count(0u32, "file"), "0 files");
        assert_eq!(super::count(3u64, "upload"), "3 uploads");
    }

    /// Regression (#31, defect 7): a staff row showed, while it uploaded, a key Hoist built
    /// that the backend would not use; it shows none until the backend names its own.
    #[test]
    fn a_staff_row_shows_no_key_until_the_backend_names_it() {
        use crate::queue::{NewItem, Queue};
        let q = Queue::in_memory().unwrap();
        let add = |path: &str, destination: &str| {
            q.add(&NewItem {
                key: "2026/12/08/provisional-a.txt",
                ..NewItem::for_test(std::path::Path::new(path), destination)
            })
            .unwrap()
        };
        let staff = add("/a.txt", "backend https://uploads.example.com/api/upload");
        let admin = add("/b.txt", "self-sign s3://bucket (eu-west-1)");
        let row = |id| super::row_of(&q.get(id).unwrap().unwrap(), None);
        assert_eq!(row(staff).key, "");
        assert_eq!(row(admin).key, "2026/12/08/provisional-a.txt");
        q.lifecycle()
            .assigned(&[(
                staff,
                &crate::key::Assigned {
                    key: "uploads/alice/a.txt".into(),
                    ticket: "t".into(),
                },
            )])
            .unwrap();
        assert_eq!(row(staff).key, "uploads/alice/a.txt");
    }
}
