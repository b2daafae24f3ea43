//! The persistent queue: every upload, its state and reason, the multipart upload id and the
//! parts S3 has acknowledged, in a SQLite database in the data dir (`queue.sqlite3`).
//!
//! One concept, one file: the queue's schema and the statements that read it and add to
//! it; every change of an item's state and parts is in [`Lifecycle`], its one writer.
//!
//! Each change is one transaction with `synchronous = FULL` in WAL mode, so a `kill -9` or a power
//! cut loses at most the part that was in flight: the next `hoist upload` (or the app) finds the
//! item unfinished, asks S3 which parts it holds, and sends only the rest.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::checksum::Checksum;

mod lifecycle;
pub use lifecycle::{Ending, Lifecycle, Restart};

/// Why the queue failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the upload queue at {path} cannot be used: {message}")]
    /// The database could not be opened or set up.
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite or the file system said.
        message: String,
    },
    /// A query failed.
    #[error("the upload queue failed: {0}")]
    Db(#[from] rusqlite::Error),
    /// A change could not be saved.
    #[error("the upload queue could not save a change: {0}")]
    Commit(String),
}

impl crate::error::HasKind for QueueError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Local
    }
}

/// Where an upload stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    /// Waiting for its turn.
    Queued,
    /// Running, or cut off while running (it resumes).
    Uploading,
    /// Stopped by the user; resumes when asked.
    Paused,
    /// Landed and verified.
    Done,
    /// Stopped with a reason; its multipart upload was aborted.
    Failed,
    /// Stopped by the user; its multipart upload was aborted.
    Cancelled,
}

impl ItemState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Uploading => "uploading",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "uploading" => Self::Uploading,
            "paused" => Self::Paused,
            "done" => Self::Done,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => Self::Queued,
        }
    }

    /// Whether `hoist upload` picks it up again.
    pub fn is_unfinished(self) -> bool {
        matches!(self, Self::Queued | Self::Uploading | Self::Paused)
    }
}

/// How many items of the queue view are in one state, and their bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateCount {
    /// The state.
    pub state: ItemState,
    /// Items in it.
    pub items: u64,
    /// Their sizes, summed.
    pub bytes: u64,
}

/// One upload in the queue.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QueueItem {
    /// Its id.
    pub id: i64,
    /// The profile it uploads with.
    pub profile: String,
    /// The file, canonical.
    pub path: PathBuf,
    /// Where it goes.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Its MIME type.
    pub content_type: String,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub modified_ns: Option<i64>,
    /// Sampled hash of the content when the upload started (see `fingerprint`).
    pub fingerprint: String,
    /// Where it stands.
    pub state: ItemState,
    /// The store's id for its multipart upload, once created.
    pub upload_id: Option<String>,
    /// The part size of that upload.
    pub part_size: Option<u64>,
    /// Why it failed, was cancelled or restarted.
    pub error: Option<String>,
    /// Hex SHA-256 of what landed, once done.
    pub sha256: Option<String>,
    /// The ETag the store gave it, once done.
    pub etag: Option<String>,
    /// When it last changed (UTC, RFC 3339).
    pub updated_at: String,
    /// The object's URL (no signature), once done.
    pub location: Option<String>,
    /// When it was queued (UTC, RFC 3339).
    pub created_at: String,
    /// What proved the landed bytes are the file's, once done (`crc64nvme … (checked by the
    /// storage)`).
    pub integrity: Option<String>,
    /// Bytes of the parts the store has acknowledged (journaled), for a multipart upload.
    pub acked_bytes: u64,
    /// The backend checked what landed and moved it to `key` (hoist-server's `[verify]`).
    pub verified: bool,
    /// The backend's ticket for `key` (a staff upload): the file is signed that key again when
    /// it resumes, so it lands once.
    pub ticket: Option<String>,
    /// The file's path inside the folder it was dropped in.
    pub relative_path: Option<String>,
    /// The drop it came in (its files share one id in their keys).
    pub drop_id: Option<String>,
    /// It failed for now (its store or backend could not be reached) and keeps what they hold
    /// of it: it resumes when tried again.
    pub held: bool,
    /// Where its profile sent files when it was queued ([`crate::profile::Mode::destination`]);
    /// `None` for items queued before it was recorded.
    pub destination: Option<String>,
}

/// What landed, as [`Lifecycle::landed`] records it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Landed<'a> {
    /// Where it landed.
    pub key: &'a str,
    /// Hex SHA-256 of the bytes, when computed.
    pub sha256: Option<&'a str>,
    /// The store's ETag.
    pub etag: Option<&'a str>,
    /// The object's URL without a signature.
    pub location: &'a str,
    /// What proved the bytes are the file's.
    pub integrity: Option<&'a str>,
    /// The backend verified it.
    pub verified: bool,
}

/// A part S3 acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartRecord {
    /// 1-based.
    pub part_number: u32,
    /// Quoted, as the store gave it.
    pub etag: String,
    /// The part's MD5, hex, when it was computed (empty once the store proved it checks
    /// the parts' checksums): a resumed upload checks the file still has it.
    pub md5_hex: String,
    /// The part's flexible checksum, when it had one: checked the same way.
    pub checksum: Option<Checksum>,
    /// Bytes.
    pub size: u64,
}

/// The queue database.
#[derive(Debug)]
pub struct Queue {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    path TEXT NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    modified_ns INTEGER,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    upload_id TEXT,
    part_size INTEGER,
    error TEXT,
    sha256 TEXT,
    etag TEXT,
    location TEXT,
    dismissed INTEGER NOT NULL DEFAULT 0,
    integrity TEXT,
    verified INTEGER NOT NULL DEFAULT 0,
    ticket TEXT,
    rel_path TEXT,
    drop_id TEXT,
    held INTEGER NOT NULL DEFAULT 0,
    destination TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS items_by_path ON items(profile, path, state);
CREATE INDEX IF NOT EXISTS items_history ON items(state, updated_at, id);
CREATE TABLE IF NOT EXISTS parts (
    item INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    etag TEXT NOT NULL,
    md5 TEXT NOT NULL,
    size INTEGER NOT NULL,
    checksum TEXT,
    PRIMARY KEY (item, part_number)
);
CREATE TABLE IF NOT EXISTS drops (
    drop_id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    root TEXT NOT NULL,
    created_unix INTEGER NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS drops_by_root ON drops(profile, root, queued);
";

/// A dropped folder, recorded before its files are queued: they share its id (and date) in
/// their keys, and a run killed before it was queued whole finds it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropRecord {
    /// The id its files share.
    pub drop_id: String,
    /// The folder, canonical.
    pub root: PathBuf,
    /// When it was dropped (Unix seconds): the date in its keys.
    pub created_unix: i64,
}

/// Columns added after the first release (table, column, definition), for databases made
/// before.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("items", "location", "TEXT"),
    ("items", "dismissed", "INTEGER NOT NULL DEFAULT 0"),
    ("items", "integrity", "TEXT"),
    ("parts", "checksum", "TEXT"),
    ("items", "verified", "INTEGER NOT NULL DEFAULT 0"),
    ("items", "ticket", "TEXT"),
    ("items", "rel_path", "TEXT"),
    ("items", "drop_id", "TEXT"),
    ("items", "held", "INTEGER NOT NULL DEFAULT 0"),
    ("items", "destination", "TEXT"),
];

/// Items that may go on: waiting, running or paused, and those that failed for now (`held`:
/// the store or backend could not be reached) and were not dismissed — they keep what the
/// store or backend holds of them (a multipart upload, a backend's ticket), so an outage loses
/// nothing already sent.
const RESUMABLE: &str =
    "(state IN ('queued', 'uploading', 'paused') OR (state = 'failed' AND held = 1 AND dismissed = 0))";

/// The queue view's order, one range per state (`Queue::visible_window`): unfinished uploads
/// as they were added, finished ones as they finished.
const VIEW_INDEX: &str =
    "CREATE INDEX IF NOT EXISTS items_view ON items(dismissed, state, id, size);
     CREATE INDEX IF NOT EXISTS items_finished ON items(dismissed, state, updated_at, id);";

const COLUMNS: &str =
    "id, profile, path, key, size, content_type, modified_ns, fingerprint, state, upload_id, \
                       part_size, error, sha256, etag, updated_at, location, created_at, integrity, \
                       (SELECT COALESCE(SUM(size), 0) FROM parts WHERE parts.item = items.id), verified, \
                       ticket, rel_path, drop_id, held, destination";

fn row_to_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<QueueItem> {
    Ok(QueueItem {
        id: r.get(0)?,
        profile: r.get(1)?,
        path: PathBuf::from(r.get::<_, String>(2)?),
        key: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        content_type: r.get(5)?,
        modified_ns: r.get(6)?,
        fingerprint: r.get(7)?,
        state: ItemState::parse(&r.get::<_, String>(8)?),
        upload_id: r.get(9)?,
        part_size: r.get::<_, Option<i64>>(10)?.map(|v| v as u64),
        error: r.get(11)?,
        sha256: r.get(12)?,
        etag: r.get(13)?,
        updated_at: r.get(14)?,
        location: r.get(15)?,
        created_at: r.get(16)?,
        integrity: r.get(17)?,
        acked_bytes: r.get::<_, i64>(18)? as u64,
        verified: r.get::<_, i64>(19)? != 0,
        ticket: r.get(20)?,
        relative_path: r.get(21)?,
        drop_id: r.get(22)?,
        held: r.get::<_, i64>(23)? != 0,
        destination: r.get(24)?,
    })
}

fn drop_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<DropRecord> {
    Ok(DropRecord {
        drop_id: r.get(0)?,
        root: PathBuf::from(r.get::<_, String>(1)?),
        created_unix: r.get(2)?,
    })
}

/// What the queue needs to know of a new upload.
#[derive(Clone, Debug)]
pub struct NewItem<'a> {
    /// The profile it uploads with.
    pub profile: &'a str,
    /// The file, canonical.
    pub path: &'a Path,
    /// Where it goes.
    pub key: &'a str,
    /// Bytes.
    pub size: u64,
    /// Its MIME type.
    pub content_type: &'a str,
    /// Its modification time, nanoseconds since the Unix epoch.
    pub modified_ns: Option<i64>,
    /// Its content sample (see `upload::digest::fingerprint`).
    pub fingerprint: &'a str,
    /// Its path inside the folder it was dropped in.
    pub relative_path: Option<&'a str>,
    /// The drop it came in.
    pub drop_id: Option<&'a str>,
    /// Where its profile sent files when it was queued ([`crate::profile::Mode::destination`]):
    /// it resumes only while the profile of its name still sends them there.
    pub destination: &'a str,
}

#[cfg(test)]
impl<'a> NewItem<'a> {
    /// A one-byte text file of profile `p` at `path`, bound for `destination` (the tests
    /// change what they need with `..`).
    pub(crate) fn for_test(path: &'a Path, destination: &'a str) -> Self {
        NewItem {
            profile: "p",
            path,
            key: "k",
            size: 1,
            content_type: "text/plain",
            modified_ns: None,
            fingerprint: "",
            relative_path: None,
            drop_id: None,
            destination,
        }
    }
}

/// Adds the columns a database made by an older version lacks. Another process (the app and
/// the CLI, started together) may be doing the same: the check and the change run in one
/// write transaction, so only one of them adds each column.
fn add_missing_columns(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let have: Vec<(String, String)> = {
        let mut st = tx.prepare(
            "SELECT 'items', name FROM pragma_table_info('items') \
             UNION ALL SELECT 'parts', name FROM pragma_table_info('parts')",
        )?;
        let names = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        names
    };
    for (table, name, def) in ADDED_COLUMNS {
        if !have.iter().any(|(t, n)| t == table && n == name) {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {def}"))?;
        }
    }
    tx.commit()
}

/// SQLite's name for a database that is never written to disk.
const IN_MEMORY: &str = ":memory:";

impl Queue {
    /// Opens (creating) the queue at `path`.
    pub fn open(path: &Path) -> Result<Self, QueueError> {
        if path == Path::new(IN_MEMORY) {
            return Self::from_connection(path, Connection::open_in_memory());
        }
        let fail = |m: String| QueueError::Open {
            path: path.to_path_buf(),
            message: m,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        // Owner-only before SQLite opens it (its WAL and index files take the same mode).
        crate::files::create_private(path).map_err(|e| fail(e.to_string()))?;
        Self::from_connection(path, Connection::open(path))
    }

    fn from_connection(
        path: &Path,
        conn: rusqlite::Result<Connection>,
    ) -> Result<Self, QueueError> {
        let fail = |m: String| QueueError::Open {
            path: path.to_path_buf(),
            message: m,
        };
        let mut conn = conn.map_err(|e| fail(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| fail(e.to_string()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(|e| fail(e.to_string()))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| fail(e.to_string()))?;
        add_missing_columns(&mut conn).map_err(|e| fail(e.to_string()))?;
        // After the columns: a queue from before `dismissed` existed gets it first.
        conn.execute_batch(VIEW_INDEX)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// A queue that lives only as long as the process (tests, one-off sessions).
    pub fn in_memory() -> Result<Self, QueueError> {
        Self::open(Path::new(IN_MEMORY))
    }

    /// The queue in the data dir.
    pub fn open_default() -> Result<Self, QueueError> {
        Self::open(&crate::profile::data_dir().join("queue.sqlite3"))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one item; returns its id.
    pub fn add(&self, item: &NewItem<'_>) -> Result<i64, QueueError> {
        self.add_many(std::slice::from_ref(item))?
            .pop()
            .ok_or_else(|| QueueError::Commit("the item was not added".into()))
    }

    /// Adds items in one transaction (all or none): one commit however many they are. Returns
    /// their ids in order.
    pub fn add_many(&self, items: &[NewItem<'_>]) -> Result<Vec<i64>, QueueError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn();
        let tx = c.transaction()?;
        let mut ids = Vec::with_capacity(items.len());
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO items (profile, path, key, size, content_type, modified_ns, fingerprint, state, rel_path, drop_id, destination)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', ?8, ?9, ?10)",
            )?;
            for item in items {
                st.execute(params![
                    item.profile,
                    item.path.to_string_lossy(),
                    item.key,
                    item.size as i64,
                    item.content_type,
                    item.modified_ns,
                    item.fingerprint,
                    item.relative_path,
                    item.drop_id,
                    item.destination
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Item `id`, if it exists.
    pub fn get(&self, id: i64) -> Result<Option<QueueItem>, QueueError> {
        let c = self.conn();
        Ok(c.query_row(
            &format!("SELECT {COLUMNS} FROM items WHERE id = ?1"),
            [id],
            row_to_item,
        )
        .optional()?)
    }

    /// The unfinished upload of `path` for `profile`, if any — one that failed for now
    /// (`held`) counts: the same file given again goes on as that upload, resuming what it
    /// kept (its multipart upload, its ticket).
    ///
    /// Only items queued for `destination` qualify (asked once per file: a lookup, no write;
    /// [`Self::unfinished`] fails the others, with the reason).
    pub fn unfinished_for(
        &self,
        profile: &str,
        destination: &str,
        path: &Path,
    ) -> Result<Option<QueueItem>, QueueError> {
        let c = self.conn();
        Ok(c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM items WHERE profile = ?1 AND path = ?2
                 AND {RESUMABLE} AND (destination IS NULL OR destination = ?3)
                 ORDER BY id DESC LIMIT 1"
            ),
            params![profile, path.to_string_lossy(), destination],
            row_to_item,
        )
        .optional()?)
    }

    /// Every unfinished upload of `profile`, oldest first (with those that failed for now but
    /// kept their upload or ticket).
    ///
    /// Items queued for another destination than `destination` (an earlier profile of the same
    /// name that sent files elsewhere) are failed, with the reason, not returned.
    pub fn unfinished(
        &self,
        profile: &str,
        destination: &str,
    ) -> Result<Vec<QueueItem>, QueueError> {
        self.lifecycle().moved_away(profile, destination)?;
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {COLUMNS} FROM items WHERE profile = ?1 AND {RESUMABLE} ORDER BY id"
        ))?;
        let rows = st.query_map([profile], row_to_item)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The most recent items, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<QueueItem>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {COLUMNS} FROM items ORDER BY id DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit as i64], row_to_item)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The parts journaled for item `id`, by number.
    pub fn parts(&self, id: i64) -> Result<Vec<PartRecord>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT part_number, etag, md5, size, checksum FROM parts WHERE item = ?1 ORDER BY part_number",
        )?;
        let rows = st.query_map([id], |r| {
            Ok(PartRecord {
                part_number: r.get(0)?,
                etag: r.get(1)?,
                md5_hex: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                checksum: r.get::<_, Option<String>>(4)?.and_then(|c| c.parse().ok()),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Items not dismissed from the queue view, oldest first.
    pub fn visible(&self) -> Result<Vec<QueueItem>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {COLUMNS} FROM items WHERE dismissed = 0 ORDER BY id"
        ))?;
        let rows = st.query_map([], row_to_item)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many items the queue view shows in each state, and their bytes.
    pub fn visible_counts(&self) -> Result<Vec<StateCount>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT state, count(*), COALESCE(SUM(size), 0) FROM items WHERE dismissed = 0 \
             GROUP BY state",
        )?;
        let rows = st.query_map([], |r| {
            Ok(StateCount {
                state: ItemState::parse(&r.get::<_, String>(0)?),
                items: r.get::<_, i64>(1)? as u64,
                bytes: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The bytes the store acknowledged of each unfinished item of the queue view that has
    /// journaled parts (a paused or interrupted multipart upload): item id → bytes.
    pub fn acked_unfinished(&self) -> Result<Vec<(i64, u64)>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT p.item, SUM(p.size) FROM parts p JOIN items i ON i.id = p.item \
             WHERE i.dismissed = 0 AND i.state IN ('queued', 'uploading', 'paused') \
             GROUP BY p.item",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Up to `limit` items of the queue view in `states`, from the `offset`-th on, in the order
    /// they were added (`as_added`) or newest finished first: one window of a list of any
    /// length. Each state is one ordered range of the `items_view` (or `items_finished`)
    /// index, merged here (a sort of every matching row would cost as much as the list is
    /// long, at every fetch).
    pub fn visible_window(
        &self,
        states: &[ItemState],
        as_added: bool,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<QueueItem>, QueueError> {
        if states.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let wanted = i64::try_from(offset.saturating_add(limit)).unwrap_or(i64::MAX);
        let c = self.conn();
        // Unfinished uploads in the order they were added; finished ones newest finished
        // first, so the last to finish is at the top (#31: it was wherever it was added).
        let query = if as_added {
            "SELECT '', id FROM items WHERE dismissed = 0 AND state = ?1 ORDER BY id ASC LIMIT ?2"
        } else {
            "SELECT updated_at, id FROM items WHERE dismissed = 0 AND state = ?1 \
             ORDER BY updated_at DESC, id DESC LIMIT ?2"
        };
        let mut keys: Vec<(String, i64)> = Vec::new();
        {
            let mut st = c.prepare(query)?;
            for state in states {
                let rows = st.query_map(rusqlite::params![state.as_str(), wanted], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })?;
                for key in rows {
                    keys.push(key?);
                }
            }
        }
        if as_added {
            keys.sort_unstable();
        } else {
            keys.sort_unstable_by(|a, b| b.cmp(a));
        }
        let ids = keys.into_iter().map(|(_, id)| id);
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let take = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut st = c.prepare(&format!("SELECT {COLUMNS} FROM items WHERE id = ?1"))?;
        let mut items = Vec::new();
        for id in ids.skip(skip).take(take) {
            items.push(st.query_row([id], row_to_item)?);
        }
        Ok(items)
    }

    /// Finished uploads (dismissed from the queue view or not), newest first.
    pub fn history(&self, limit: usize) -> Result<Vec<QueueItem>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT {COLUMNS} FROM items WHERE state = 'done' ORDER BY updated_at DESC, id DESC LIMIT ?1"
        ))?;
        let rows = st.query_map([limit as i64], row_to_item)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A page of the history, newest first: at most `limit` finished items older than
    /// `before` (the `updated_at` and id of the last item of the page before), whose path, key
    /// or profile contain `search` (ASCII case ignored); and how many match in all. A page is
    /// one index range, however long the history.
    pub fn history_page(
        &self,
        search: Option<&str>,
        before: Option<(&str, i64)>,
        limit: usize,
    ) -> Result<(Vec<QueueItem>, u64), QueueError> {
        let pattern = search.map(str::trim).filter(|s| !s.is_empty()).map(|s| {
            let escaped = s
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%{escaped}%")
        });
        let matching = "state = 'done' AND (?1 IS NULL OR path LIKE ?1 ESCAPE '\\' \
                        OR key LIKE ?1 ESCAPE '\\' OR profile LIKE ?1 ESCAPE '\\')";
        let c = self.conn();
        let total: i64 = c.query_row(
            &format!("SELECT count(*) FROM items WHERE {matching}"),
            rusqlite::params![pattern],
            |r| r.get(0),
        )?;
        let (at, id) = before.unwrap_or(("", 0));
        let older = if before.is_some() {
            "AND (updated_at, id) < (?2, ?3)"
        } else {
            "AND ?2 = ?2 AND ?3 = ?3"
        };
        let mut st = c.prepare(&format!(
            "SELECT {COLUMNS} FROM items WHERE {matching} {older} \
             ORDER BY updated_at DESC, id DESC LIMIT ?4"
        ))?;
        let rows = st.query_map(
            rusqlite::params![pattern, at, id, limit as i64],
            row_to_item,
        )?;
        let items = rows.collect::<Result<_, _>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    /// Hides an item from the queue view; a finished one stays in the history.
    pub fn dismiss(&self, id: i64) -> Result<(), QueueError> {
        self.conn()
            .execute("UPDATE items SET dismissed = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// The drop of folder `root` for `profile` not yet queued whole, if any.
    pub fn open_drop(&self, profile: &str, root: &Path) -> Result<Option<DropRecord>, QueueError> {
        let c = self.conn();
        Ok(c.query_row(
            "SELECT drop_id, root, created_unix FROM drops WHERE profile = ?1 AND root = ?2 \
             AND queued = 0 ORDER BY rowid DESC LIMIT 1",
            params![profile, root.to_string_lossy()],
            drop_of,
        )
        .optional()?)
    }

    /// Records a dropped folder before any of its files is queued.
    pub fn record_drop(&self, profile: &str, drop: &DropRecord) -> Result<(), QueueError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO drops (drop_id, profile, root, created_unix) VALUES (?1, ?2, ?3, ?4)",
            params![drop.drop_id, profile, drop.root.to_string_lossy(), drop.created_unix],
        )?;
        Ok(())
    }

    /// Every file of drop `drop_id` is in the queue now.
    pub fn drop_queued(&self, drop_id: &str) -> Result<(), QueueError> {
        self.conn()
            .execute("UPDATE drops SET queued = 1 WHERE drop_id = ?1", [drop_id])?;
        Ok(())
    }

    /// The drops of `profile` not yet queued whole (a run was killed while queueing them).
    pub fn incomplete_drops(&self, profile: &str) -> Result<Vec<DropRecord>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(
            "SELECT drop_id, root, created_unix FROM drops WHERE profile = ?1 AND queued = 0 ORDER BY rowid",
        )?;
        let rows = st.query_map([profile], drop_of)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The files already queued for drop `drop_id` (whatever their state).
    pub fn drop_paths(&self, drop_id: &str) -> Result<Vec<PathBuf>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare("SELECT path FROM items WHERE drop_id = ?1")?;
        let rows = st.query_map([drop_id], |r| Ok(PathBuf::from(r.get::<_, String>(0)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Upload ids of unfinished items (those that failed for now included), so `sweep` leaves
    /// them alone.
    pub fn live_upload_ids(&self) -> Result<Vec<String>, QueueError> {
        let c = self.conn();
        let mut st = c.prepare(&format!(
            "SELECT upload_id FROM items WHERE upload_id IS NOT NULL AND {RESUMABLE}"
        ))?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `Queue::in_memory` made an empty file named `:memory:` in the working
    /// directory (the owner-only pre-create ran on SQLite's special name).
    #[test]
    fn an_in_memory_queue_writes_no_file() {
        let stray = std::env::current_dir().unwrap().join(IN_MEMORY);
        let _ = std::fs::remove_file(&stray);
        let queue = Queue::in_memory().unwrap();
        assert!(queue.visible().unwrap().is_empty());
        assert!(!stray.exists(), "{} was created", stray.display());
    }

    /// Regression (seen as a flaky test): two processes opening a queue made by an older
    /// version both added its missing column, and the second failed with "duplicate column
    /// name", so `hoist` could not start while the app (or another `hoist`) was opening it.
    #[test]
    fn processes_opening_an_old_queue_at_once_all_succeed() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("queue.sqlite3");
            {
                // As an older Hoist left it: WAL mode, without the newer columns.
                let old = Connection::open(&path).unwrap();
                old.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
                old.execute_batch(SCHEMA).unwrap();
                for (table, name, _) in ADDED_COLUMNS {
                    old.execute_batch(&format!("ALTER TABLE {table} DROP COLUMN {name}"))
                        .unwrap();
                }
            }
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let opened: Vec<_> = (0..8)
                .map(|_| {
                    let (path, barrier) = (path.clone(), std::sync::Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        Queue::open(&path).map(|_| ())
                    })
                })
                .collect();
            for t in opened {
                t.join().unwrap().expect("every opener succeeds");
            }
            let q = Queue::open(&path).unwrap();
            assert!(
                q.recent(1).unwrap().is_empty(),
                "the table reads with every column"
            );
        }
    }

    /// Writers on several threads at once: every change is durable and separate, and one that
    /// fails (a broken foreign key) takes no other change down with it.
    #[test]
    fn concurrent_changes_all_commit_and_a_failing_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.sqlite3");
        let q = Queue::open(&db).unwrap();
        let ids: Vec<i64> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..8)
                .map(|w| {
                    let q = &q;
                    scope.spawn(move || {
                        let mut ids = Vec::new();
                        for i in 0..40 {
                            let path = PathBuf::from(format!("/data/{w}/{i}"));
                            let id = q.add(&NewItem::for_test(&path, "local")).unwrap();
                            // A part of an item that does not exist breaks a foreign key.
                            let bad = q.lifecycle().part_acknowledged(
                                -1 - id,
                                &PartRecord {
                                    part_number: 1,
                                    etag: "e".into(),
                                    md5_hex: "m".into(),
                                    checksum: None,
                                    size: 1,
                                },
                            );
                            assert!(matches!(bad, Err(QueueError::Db(_))), "{bad:?}");
                            let key = format!("k/{w}/{i}");
                            let landed = Landed {
                                key: &key,
                                sha256: Some("sha"),
                                location: "loc",
                                ..Landed::default()
                            };
                            q.lifecycle().landed(id, &landed).unwrap();
                            ids.push(id);
                        }
                        ids
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let unique: std::collections::HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), 320);
        drop(q);
        let q = Queue::open(&db).unwrap();
        let done = q.history(1000).unwrap();
        assert_eq!(done.len(), 320);
        assert!(done
            .iter()
            .all(|i| i.key.starts_with("k/") && unique.contains(&i.id)));
    }

    /// Regression (#29, finding 10): an unfinished upload resumed into a *new* profile of the
    /// same name that sent files to another bucket — in the app, unasked, at start.
    #[test]
    fn an_unfinished_upload_never_resumes_into_another_destination() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(&dir.path().join("q.sqlite3")).unwrap();
        let item = |path: &'static str, destination: &'static str| NewItem {
            profile: "team",
            size: 10,
            ..NewItem::for_test(Path::new(path), destination)
        };
        let old = q
            .add(&item("/data/a.txt", "self-sign s3://old (eu-west-1)"))
            .unwrap();
        q.lifecycle()
            .multipart_created(old, "k", "up-old", 5)
            .unwrap();

        let new = "self-sign s3://elsewhere (us-east-1)";
        assert!(q
            .unfinished_for("team", new, Path::new("/data/a.txt"))
            .unwrap()
            .is_none());
        assert!(q.unfinished("team", new).unwrap().is_empty());
        let failed = q.get(old).unwrap().unwrap();
        assert_eq!(failed.state, ItemState::Failed);
        let why = failed.error.unwrap_or_default();
        assert!(
            why.contains("s3://old")
                && why.contains("s3://elsewhere")
                && why.contains("add the file again"),
            "{why}"
        );

        // The same destination resumes as before.
        let same = q.add(&item("/data/b.txt", new)).unwrap();
        assert_eq!(q.unfinished("team", new).unwrap()[0].id, same);
    }

    #[test]
    fn items_and_parts_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("q.sqlite3");
        let id = {
            let q = Queue::open(&db).unwrap();
            let id = q
                .add(&NewItem {
                    size: 10,
                    content_type: "application/octet-stream",
                    modified_ns: Some(7),
                    fingerprint: "f",
                    ..NewItem::for_test(Path::new("/data/big.bin"), "s3://a")
                })
                .unwrap();
            q.lifecycle().started(id).unwrap();
            q.lifecycle().multipart_created(id, "k", "up-1", 5).unwrap();
            q.lifecycle()
                .part_acknowledged(
                    id,
                    &PartRecord {
                        part_number: 1,
                        etag: "\"e\"".into(),
                        md5_hex: "m".into(),
                        checksum: Some(crate::checksum::ChecksumAlgorithm::Crc32c.of(b"part")),
                        size: 5,
                    },
                )
                .unwrap();
            id
        };
        let q = Queue::open(&db).unwrap();
        let item = q
            .unfinished_for("p", "s3://a", Path::new("/data/big.bin"))
            .unwrap()
            .unwrap();
        assert_eq!(item.id, id);
        assert_eq!(item.upload_id.as_deref(), Some("up-1"));
        let parts = q.parts(id).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            parts[0].checksum,
            Some(crate::checksum::ChecksumAlgorithm::Crc32c.of(b"part")),
            "the part's checksum is journaled and read back"
        );
        assert_eq!(q.live_upload_ids().unwrap(), vec!["up-1".to_string()]);
        q.lifecycle()
            .landed(
                id,
                &Landed {
                    key: "k",
                    sha256: Some("sha"),
                    etag: Some("etag-1"),
                    location: "http://s/k",
                    integrity: Some("md5 x (checked by Hoist)"),
                    verified: true,
                },
            )
            .unwrap();
        assert!(q.get(id).unwrap().unwrap().verified);
        assert!(q.unfinished("p", "s3://a").unwrap().is_empty());
        assert!(q.parts(id).unwrap().is_empty());
        assert_eq!(q.get(id).unwrap().unwrap().state, ItemState::Done);
        assert_eq!(
            q.history(10).unwrap()[0].location.as_deref(),
            Some("http://s/k")
        );
        q.dismiss(id).unwrap();
        assert!(q.visible().unwrap().is_empty());
        assert_eq!(
            q.history(10).unwrap().len(),
            1,
            "a dismissed upload stays in the history"
        );
    }

    /// Regression (#31, defect 7): finished uploads were listed in the order they were added,
    /// so the last to finish could be below the fold; now the last finished is first, across
    /// the finished states.
    #[test]
    fn finished_uploads_are_listed_the_last_finished_first() {
        let q = Queue::in_memory().unwrap();
        let add = |name: &str| {
            q.add(&NewItem {
                key: name,
                ..NewItem::for_test(Path::new(name), "local")
            })
            .unwrap()
        };
        let (a, b, c, waiting) = (add("/a"), add("/b"), add("/c"), add("/d"));
        let landed = Landed {
            key: "k",
            ..Landed::default()
        };
        let life = q.lifecycle();
        // updated_at counts milliseconds: each finish a few apart.
        let pause = || std::thread::sleep(std::time::Duration::from_millis(5));
        life.landed(c, &landed).unwrap();
        pause();
        life.ended(a, Ending::Failed, "refused").unwrap();
        pause();
        life.landed(b, &landed).unwrap();
        let finished = [ItemState::Done, ItemState::Failed, ItemState::Cancelled];
        let ids = |items: Vec<QueueItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(
            ids(q.visible_window(&finished, false, 0, 10).unwrap()),
            [b, a, c]
        );
        assert_eq!(ids(q.visible_window(&finished, false, 1, 1).unwrap()), [a]);
        assert_eq!(
            ids(q.visible_window(&[ItemState::Queued], true, 0, 10).unwrap()),
            [waiting]
        );
    }
}
