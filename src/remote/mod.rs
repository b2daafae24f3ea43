//! The remote contract: what the upload engine asks of whoever stores the bytes, whichever way
//! requests are signed. Both signing paths implement it — self-sign through [`s3::S3Client`]
//! (Hoist signs every call with SigV4) and staff mode through
//! [`crate::backend::companion::CompanionClient`] (a backend signs) — so the engine never
//! needs to know which one it talks to.
//!
//! Failures are [`RemoteFailure`]s: a retry decision ([`FailureKind`]), the status and error
//! code when a server answered, and a sentence a person understands.
//!
//! `http::client` builds every HTTP client Hoist uses, with the timeouts in one place;
//! [`network`] gives them the proxy and trust of a company network and explains what fails.

use std::time::SystemTime;

use crate::checksum::Checksum;
use crate::retry::{Clock, FailureKind};
use crate::sign::{PresignedPut, PutRequest, SignError};

pub mod failure;
pub(crate) mod http;
pub mod network;
pub mod s3;
pub mod xml;

/// A failed request: what retry should do, the server's status and error code (when a server
/// answered), and a sentence a person understands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RemoteFailure {
    /// What retry should do.
    pub kind: FailureKind,
    /// The server's error code (S3's `<Code>`, or a backend's), empty when there was none.
    pub code: String,
    /// The HTTP status, when a server answered.
    pub status: Option<u16>,
    /// A sentence a person understands (redacted).
    pub message: String,
    /// How long the server asked to wait (`Retry-After`), when it did.
    pub retry_after: Option<std::time::Duration>,
}

impl RemoteFailure {
    /// A failure that no server answered with (a network error, a stall, a bad answer).
    pub fn local(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: String::new(),
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The kind of error this failure makes when nothing retries it.
    pub fn error_kind(&self) -> crate::error::ErrorKind {
        match self.kind {
            FailureKind::Permanent => crate::error::ErrorKind::RemotePermanent,
            _ => crate::error::ErrorKind::RemoteTransient,
        }
    }

    /// Whether the server said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404) || matches!(self.code.as_str(), "NoSuchKey" | "NoSuchUpload")
    }
}

impl From<SignError> for RemoteFailure {
    fn from(e: SignError) -> Self {
        let (kind, status, retry_after) = match &e {
            // A backend that asks to wait (429, or 503 with Retry-After) sets a pace.
            SignError::BackendUnavailable {
                status,
                retry_after,
                ..
            } if *status == 429 || retry_after.is_some() => {
                (FailureKind::Throttling, Some(*status), *retry_after)
            }
            SignError::BackendUnavailable { status, .. } => {
                (FailureKind::Transient, Some(*status), None)
            }
            e if e.is_retryable() => (FailureKind::Transient, None, None),
            _ => (FailureKind::Permanent, None, None),
        };
        Self {
            status,
            retry_after,
            ..Self::local(kind, e.to_string())
        }
    }
}

/// A part the server holds for an unfinished upload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RemotePart {
    /// 1-based.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// Quoted, as S3 gives it; empty when a store does not list ETags.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Bytes.
    #[serde(rename = "Size")]
    pub size: u64,
}

/// What HEAD says of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Bytes.
    pub size: u64,
    /// Unquoted.
    pub etag: String,
    /// Its `Content-Type`.
    pub content_type: String,
    /// Its flexible checksum (`x-amz-checksum-*`), when the store said (asked with
    /// [`s3::S3Client::head_with_checksum`]).
    pub checksum: Option<Checksum>,
}

/// An unfinished upload: where it goes and the server's id for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartTarget {
    /// The object key.
    pub key: String,
    /// The store's id for the upload.
    pub upload_id: String,
}

/// One part to sign: its number, length, and what the store checks its bytes against.
#[derive(Clone, Copy, Debug)]
pub struct PartToSign<'a> {
    /// 1-based.
    pub number: u32,
    /// Bytes.
    pub len: u64,
    /// Base64 MD5 (`Content-MD5`), unless the store is known to check the part's checksum.
    pub md5_b64: Option<&'a str>,
    /// The part's flexible checksum, when the upload was created with an algorithm.
    pub checksum: Option<&'a Checksum>,
}

/// An acknowledged part, as Complete names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    /// 1-based.
    pub number: u32,
    /// Quoted, as the store gave it.
    pub etag: String,
    /// Its flexible checksum, when the upload has an algorithm.
    pub checksum: Option<Checksum>,
}

/// What a Complete answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// The object's ETag (unquoted), when the answer gave one.
    pub etag: Option<String>,
    /// The object's flexible checksum as the store recorded it (for a composite checksum,
    /// `value-N`), when the answer gave one.
    pub checksum: Option<Checksum>,
    /// The server-side encryption the store reported for the object.
    pub encryption: Option<String>,
    /// What a backend that verifies uploads concluded (hoist-server's `[verify]`).
    pub verdict: Option<crate::sign::Verdict>,
}

/// How many aborts [`MultipartApi::abort_completely`] sends at most.
pub const ABORT_ATTEMPTS: u32 = 3;
/// How long [`MultipartApi::abort_completely`] waits before aborting again (then twice that).
pub const ABORT_RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// The multipart operations, whoever signs them.
#[async_trait::async_trait]
pub trait MultipartApi: Send + Sync {
    /// Starts an upload of `req`.
    async fn create(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<MultipartTarget, RemoteFailure>;
    /// A URL for one part, signed now (so shortly before use).
    async fn sign_part(
        &self,
        target: &MultipartTarget,
        part: &PartToSign<'_>,
        now: SystemTime,
    ) -> Result<PresignedPut, RemoteFailure>;
    /// The parts the server holds, sorted by part number.
    async fn list_parts(
        &self,
        target: &MultipartTarget,
        now: SystemTime,
    ) -> Result<Vec<RemotePart>, RemoteFailure>;
    /// Completes the upload with `parts` (ascending) and, where the upload has a full-object
    /// checksum, the whole file's (which the store then verifies).
    async fn complete(
        &self,
        target: &MultipartTarget,
        parts: &[CompletedPart],
        whole: Option<&Checksum>,
        now: SystemTime,
    ) -> Result<Completion, RemoteFailure>;
    /// Aborts the upload, so that no part stays behind.
    async fn abort(&self, target: &MultipartTarget, now: SystemTime) -> Result<(), RemoteFailure>;
    /// Aborts the upload and makes sure it is gone. S3 documents that a part still being
    /// uploaded when the abort arrives may land after it, and that the way to free its
    /// storage is to list the parts and abort again until none are listed: so up to
    /// [`ABORT_ATTEMPTS`] aborts, [`ABORT_RECHECK`] apart (doubling), timed and signed by
    /// `clock`. A store that answers the listing with an error (NoSuchUpload, as S3 does once
    /// it is gone) is taken at its word.
    async fn abort_completely(
        &self,
        target: &MultipartTarget,
        clock: &dyn Clock,
    ) -> Result<(), RemoteFailure> {
        self.abort(target, clock.now()).await?;
        let mut wait = ABORT_RECHECK;
        for _ in 1..ABORT_ATTEMPTS {
            match self.list_parts(target, clock.now()).await {
                Ok(parts) if !parts.is_empty() => {
                    clock.sleep(wait).await;
                    wait *= 2;
                    self.abort(target, clock.now()).await?;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }
    /// The object at `key`, when this API can tell (`Ok(None)` otherwise or when absent).
    async fn head(&self, key: &str, now: SystemTime) -> Result<Option<ObjectInfo>, RemoteFailure>;
    /// The object's URL, without any signature.
    fn location(&self, key: &str) -> String;
}
