//! `hoist sweep`: finds multipart uploads left unfinished under the profile's prefix (by a crash
//! elsewhere, another tool, an old version) and aborts them, so no orphan parts are billed. Uploads
//! that the local queue can still resume are kept.

use std::time::SystemTime;

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
            SweepError::NotSupported => crate::error::ErrorKind::InvalidInput,
            SweepError::List(f) => f.error_kind(),
            SweepError::Session(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            SweepError::Session(e) => e.hint(),
            _ => None,
        }
    }
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// Uploads aborted (or, in a dry run, that would be).
    pub aborted: Vec<PendingUpload>,
    /// Uploads kept because the queue can resume them.
    pub kept: usize,
}

/// Lists unfinished uploads under the prefix and aborts those the queue does not know.
pub async fn sweep(session: &Session, dry_run: bool) -> Result<SweepReport, SweepError> {
    let client = session.s3_client().ok_or(SweepError::NotSupported)?;
    sweep_with(
        client,
        session
            .queue()
            .live_upload_ids()
            .map_err(|e| SweepError::Session(e.into()))?,
        &session.profile().prefix,
        dry_run,
    )
    .await
}

/// The sweep itself, for a client and the upload ids to keep.
pub async fn sweep_with(
    client: &S3Client,
    keep: Vec<String>,
    prefix: &str,
    dry_run: bool,
) -> Result<SweepReport, SweepError> {
    let now = SystemTime::now();
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
        if !dry_run {
            client
                .abort(&u.key, &u.upload_id, now)
                .await
                .map_err(SweepError::List)?;
        }
        report.aborted.push(u);
    }
    Ok(report)
}
