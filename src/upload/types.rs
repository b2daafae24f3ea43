//! What the upload engine reports and returns: progress events, the receipt of what landed,
//! and the error an upload ends with.

use std::sync::Arc;

use crate::error::{ErrorKind, HasKind};
use crate::sign::SignError;

/// Progress of one upload, delivered to a [`ProgressFn`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum TransferEvent {
    /// Checksumming the file before it is signed.
    Hashing {
        /// The file's size.
        total: u64,
    },
    /// An attempt starts; bytes sent restart from zero.
    Attempt {
        /// 1 for the first.
        attempt: u32,
    },
    /// Bytes of this attempt handed to the network.
    Sent {
        /// Bytes sent so far.
        bytes: u64,
        /// Bytes to send.
        total: u64,
    },
    /// The attempt failed and another follows after `delay_ms`.
    Retrying {
        /// The attempt that failed.
        attempt: u32,
        /// The wait before the next one.
        delay_ms: u64,
        /// Why it failed.
        reason: String,
    },
    /// A server asked to wait (429 or 503 with `Retry-After`): every request of the session
    /// waits `delay_ms`, then this one goes again. Not a failure: no attempt or retry is spent.
    Waiting {
        /// The wait.
        delay_ms: u64,
        /// What the server said.
        reason: String,
    },
    /// S3 acknowledged all bytes.
    Acknowledged {
        /// The file's size.
        bytes: u64,
    },
    /// An unfinished upload could not be resumed and starts over, for this reason.
    Restarted {
        /// Why.
        reason: String,
    },
}

/// The callback through which uploads report progress (never a GUI type).
pub type ProgressFn = Arc<dyn Fn(TransferEvent) + Send + Sync>;

/// What landed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UploadReceipt {
    /// The object's key.
    pub key: String,
    /// Bytes in the object.
    pub size: u64,
    /// Hex SHA-256 of the bytes, for a file sent in one PUT. A multipart upload has none: its
    /// store-verified checksum ([`Self::integrity`]) proves it, and a SHA-256 of every byte as
    /// well cost about a third of the client's CPU.
    pub sha256: Option<String>,
    /// The ETag the store gave the object.
    pub etag: Option<String>,
    /// What proves the bytes that landed are the file's, when anything does beyond TLS.
    pub integrity: Option<Integrity>,
    /// The server-side encryption the store reported for the object (`AES256`, `aws:kms`,
    /// …); `None` when it reported none (some stores accept the setting and ignore it).
    pub encryption: Option<String>,
    /// Attempts the upload took (1 for a multipart upload, whose parts retry on their own).
    pub attempts: u32,
    /// The object's URL without any signature.
    pub location: String,
    /// Bytes of the file this run had to send (parts resumed from S3 are not counted; a
    /// retried attempt counts once).
    pub bytes_sent: u64,
    /// The backend checked what landed (type, size, malware) and moved it to [`Self::key`].
    pub verified: bool,
}

/// A check that the stored bytes are the file's: which checksum, its value, and who compared it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Integrity {
    /// `crc64nvme`, `crc32c`, `crc32`, `sha256`, or `md5` (Content-MD5 and the ETag).
    pub algorithm: String,
    /// The value the store holds for the object (base64; hex for an MD5).
    pub value: String,
    /// Who compared it with the file.
    pub checked_by: CheckedBy,
}

/// Who compared a checksum with the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckedBy {
    /// The store: Hoist sent the value with the bytes (signed, or as Content-MD5), and the
    /// store refuses bytes that do not match it.
    Storage,
    /// Hoist: it compared the store's answer (an ETag that is an MD5) with its own digest.
    Hoist,
}

impl std::fmt::Display for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = match self.checked_by {
            CheckedBy::Storage => "checked by the storage",
            CheckedBy::Hoist => "checked by Hoist",
        };
        write!(f, "{} {} ({by})", self.algorithm, self.value)
    }
}

/// Why an upload did not land.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store or backend refused for good (the message says why).
    #[error("{0}")]
    Rejected(String),
    /// Every attempt failed with a failure worth retrying.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        last: String,
        /// The last failure was the store or backend out of reach (no answer, a 5xx, a 429),
        /// not an answer about this upload: what it holds of it is kept for later.
        out_of_reach: bool,
    },
    /// The session's retry budget ran out.
    #[error("stopped retrying because too many requests are failing right now (retry budget exhausted): {last}")]
    BudgetExhausted {
        /// Why the last attempt failed.
        last: String,
    },
    /// A freshly signed URL was already expired.
    #[error(
        "the upload URL had expired again right after signing ({last}); check that this computer's \
         clock (and the signing backend's) is correct"
    )]
    ExpiredAgain {
        /// What the store said.
        last: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The file changed under the upload.
    #[error("the file changed while it was being uploaded; upload it again once it is complete")]
    SourceChanged,
    /// The file (or the queue that journals it) could not be read or written.
    #[error("cannot read the file: {0}")]
    Read(String),
    /// What the store holds does not match what was sent.
    #[error("integrity check failed: {0}; the upload is not counted as done")]
    Integrity(String),
    /// Paused; the upload resumes where it stopped.
    #[error("paused")]
    Paused,
    /// Cancelled; nothing was left behind.
    #[error("cancelled")]
    Cancelled,
    /// The backend checked what landed and kept it aside.
    #[error("quarantined by the backend: {reason} (kept at {key})")]
    Quarantined {
        /// Which check it failed.
        reason: String,
        /// Where the backend keeps it.
        key: String,
    },
    /// The queue could not record what must outlive a crash (a key a backend assigned, a
    /// part): nothing more is sent until it can.
    #[error("cannot record the upload in the queue: {0}")]
    Journal(String),
    /// The store no longer has the multipart upload being continued (completed, aborted or
    /// expired meanwhile): it starts over.
    #[error("the storage no longer has this multipart upload; upload the file again")]
    UploadGone,
}

impl TransferError {
    /// Whether the store or backend could not be reached (or was unavailable) for now: the
    /// upload keeps what they hold of it (its parts, its ticket), to go on once they can.
    pub fn is_out_of_reach(&self) -> bool {
        match self {
            Self::RetriesExhausted { out_of_reach, .. } => *out_of_reach,
            Self::Sign(e) => matches!(
                e,
                SignError::BackendUnreachable(_) | SignError::BackendUnavailable { .. }
            ),
            _ => false,
        }
    }
}

impl HasKind for TransferError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Rejected(_)
            | Self::UploadGone
            | Self::ExpiredAgain { .. }
            | Self::Integrity(_)
            | Self::Quarantined { .. } => ErrorKind::RemotePermanent,
            Self::RetriesExhausted { .. } | Self::BudgetExhausted { .. } => {
                ErrorKind::RemoteTransient
            }
            Self::Sign(e) => e.kind(),
            Self::SourceChanged => ErrorKind::SourceChanged,
            Self::Read(_) | Self::Journal(_) => ErrorKind::Local,
            Self::Paused => ErrorKind::Paused,
            Self::Cancelled => ErrorKind::Cancelled,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Sign(e) => e.hint(),
            _ => None,
        }
    }
}
