//! `hoist sweep`: finds multipart uploads left unfinished under the profile's prefix (by a crash
//! elsewhere, another tool, an old version) and aborts them, so no orphan parts are billed. Uploads
//! that the local queue can still resume are kept, and so is every upload younger than a
//! threshold (default 24 h): another machine's upload may still be running.

use std::time::{Duration, SystemTime};

use crate::remote::s3::{PendingUpload, S3Client};
use crate::remote::RemoteFailure;
use crate::session::{Session, SessionError};

/// Why a sweep did not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(
        "sweeping needs a self-sign or local profile: a backend does not list unfinished uploads"
    )]
    /// A backend profile cannot list uploads.
    NotSupported,
    /// The store did not list its unfinished uploads.
    #[error("cannot list unfinished uploads: {0}")]
    List(RemoteFailure),
    /// The profile could not be made ready.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl crate::error::HasKind for SweepError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            Self::NotSupported => crate::error::ErrorKind::InvalidInput,
            Self::List(f) => f.error_kind(),
            Self::Session(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Session(e) => e.hint(),
            _ => None,
        }
    }
}

/// Uploads started less than this long ago are never swept by default.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(24 * 3600);

/// What a sweep found.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Uploads aborted (or, in a dry run, that would be).
    pub aborted: Vec<PendingUpload>,
    /// Uploads kept because the queue can resume them.
    pub kept: usize,
    /// Uploads kept because they started within the minimum age (or the store gave no start).
    pub recent: usize,
}

/// How a sweep goes.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Only list what would be aborted.
    pub dry_run: bool,
    /// Uploads started less than this long ago are kept.
    pub min_age: Duration,
    /// Now, to age uploads by.
    pub now: SystemTime,
}

impl Default for SweepOptions {
    fn default() -> Self {
        Self {
            dry_run: false,
            min_age: DEFAULT_MIN_AGE,
            now: SystemTime::now(),
        }
    }
}

/// Lists unfinished uploads under the prefix and aborts those the queue does not know and that
/// are old enough.
pub async fn sweep(session: &Session, options: &SweepOptions) -> Result<SweepReport, SweepError> {
    let client = session.s3_client().ok_or(SweepError::NotSupported)?;
    let keep = session
        .queue()
        .live_upload_ids()
        .map_err(|e| SweepError::Session(e.into()))?;
    sweep_with(client, &keep, &session.profile().prefix, options).await
}

/// Whether an upload started at `initiated` (RFC 3339, as S3 lists it) is at least `min_age`
/// old at `now`; an unreadable time is never old enough.
fn old_enough(initiated: &str, options: &SweepOptions) -> bool {
    let format = &time::format_description::well_known::Rfc3339;
    let Ok(started) = time::OffsetDateTime::parse(initiated, format) else {
        return false;
    };
    let now = time::OffsetDateTime::from(options.now);
    now - started >= options.min_age
}

/// The sweep itself, for a client and the upload ids to keep.
pub async fn sweep_with(
    client: &S3Client,
    keep: &[String],
    prefix: &str,
    options: &SweepOptions,
) -> Result<SweepReport, SweepError> {
    let now = options.now;
    let pending = client
        .list_multipart_uploads(prefix, now)
        .await
        .map_err(SweepError::List)?;
    let mut report = SweepReport::default();
    for u in pending {
        if keep.contains(&u.upload_id) {
            report.kept += 1;
            continue;
        }
        if !old_enough(&u.initiated, options) {
            report.recent += 1;
            continue;
        }
        if !options.dry_run {
            client
                .abort(&u.key, &u.upload_id, now)
                .await
                .map_err(SweepError::List)?;
        }
        report.aborted.push(u);
    }
    Ok(report)
}
