//! The streamed single PUT: reads the file from disk in fixed-size chunks (memory stays flat
//! whatever the size), reports progress through a core callback type, retries per
//! [`crate::retry`], signs again when a URL expires, and verifies what S3 stored.
//!
//! Integrity: before sending, SHA-256 and MD5 of the file are computed side by side. The request
//! carries `Content-MD5` (checked by S3 even when a backend did not sign it) and, when
//! self-signed, a signed `x-amz-checksum-sha256`; the answer's ETag and checksum are compared
//! again. Redirects are never followed.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::StreamExt;
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::redact::redact;
use crate::retry::{FailureKind, RetryPolicy};
use crate::s3::{classify_response, network_failure, S3Failure as Failure};
use crate::sign::{PresignedPut, PutRequest, SignError, Signer};
use crate::validate::CheckedFile;

/// Bytes read from disk per chunk (and so the most of a file held in memory per upload).
pub const CHUNK_SIZE: usize = 256 * 1024;
/// A URL that expires within this margin is signed again before use.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(30);
/// How often an expired URL is signed again for one upload before giving up.
pub const MAX_RESIGNS: u32 = 2;

/// Progress of one upload, delivered to a [`ProgressFn`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum TransferEvent {
    /// Checksumming the file before it is signed.
    Hashing { total: u64 },
    /// An attempt starts; bytes sent restart from zero.
    Attempt { attempt: u32 },
    /// Bytes of this attempt handed to the network.
    Sent { bytes: u64, total: u64 },
    /// The attempt failed and another follows after `delay_ms`.
    Retrying {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// S3 acknowledged all bytes.
    Acknowledged { bytes: u64 },
    /// An unfinished upload could not be resumed and starts over, for this reason.
    Restarted { reason: String },
}

/// The callback through which uploads report progress (never a GUI type).
pub type ProgressFn = Arc<dyn Fn(TransferEvent) + Send + Sync>;

/// What landed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UploadReceipt {
    pub key: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes sent and verified.
    pub sha256: String,
    pub etag: Option<String>,
    pub attempts: u32,
    /// The object's URL without any signature.
    pub location: String,
    /// Bytes of the file this run had to send (parts resumed from S3 are not counted; a
    /// retried attempt counts once).
    pub bytes_sent: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Rejected(String),
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted { attempts: u32, last: String },
    #[error("stopped retrying because too many requests are failing right now (retry budget exhausted): {last}")]
    BudgetExhausted { last: String },
    #[error(
        "the upload URL had expired again right after signing ({last}); check that this computer's \
         clock (and the signing backend's) is correct"
    )]
    ExpiredAgain { last: String },
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error("the file changed while it was being uploaded; upload it again once it is complete")]
    SourceChanged,
    #[error("cannot read the file: {0}")]
    Read(String),
    #[error("integrity check failed: {0}; the upload is not counted as done")]
    Integrity(String),
    #[error("paused; run `hoist upload` again to resume")]
    Paused,
    #[error("cancelled")]
    Cancelled,
}

/// Checksums of a file's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
    pub len: u64,
}

impl FileDigest {
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
    pub fn sha256_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.sha256)
    }
    pub fn md5_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.md5)
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Files up to this size are read whole and hashed on one thread: for them a second thread
/// and large buffers cost more than the hashing.
const SMALL_FILE: u64 = 1 << 20;

/// Returns a file's SHA-256 and MD5 (on blocking threads).
pub async fn digest_file(path: &std::path::Path) -> Result<FileDigest, TransferError> {
    Ok(read_and_digest(path).await?.0)
}

/// A small file's bytes as read for its checksums, with the file's metadata then: sending them
/// saves reading the file again.
struct SmallContent {
    bytes: bytes::Bytes,
    meta: std::fs::Metadata,
}

/// [`digest_file`], keeping the content of a small file.
async fn read_and_digest(
    path: &std::path::Path,
) -> Result<(FileDigest, Option<SmallContent>), TransferError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let read_err = |e: std::io::Error| TransferError::Read(e.to_string());
        let mut f = std::fs::File::open(&path).map_err(read_err)?;
        let meta = f.metadata().map_err(read_err)?;
        if meta.len() <= SMALL_FILE {
            let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
            f.read_to_end(&mut bytes).map_err(read_err)?;
            let digest = FileDigest {
                sha256: Sha256::digest(&bytes).into(),
                md5: Md5::digest(&bytes).into(),
                len: bytes.len() as u64,
            };
            let content = SmallContent {
                bytes: bytes.into(),
                meta,
            };
            return Ok((digest, Some(content)));
        }
        drop(f);
        // MD5 is the slower hash: on a second thread (reading the file beside SHA-256, from the
        // page cache) the pass takes about as long as MD5 alone instead of MD5 plus SHA-256.
        let never = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let md5 = scope.spawn(|| hash_range::<Md5>(&path, 0, u64::MAX, &never));
            let sha256 = hash_range::<Sha256>(&path, 0, u64::MAX, &never);
            let md5 = md5
                .join()
                .map_err(|_| TransferError::Read("the MD5 thread panicked".into()))?;
            let ((sha256, len), (md5, md5_len)) = (sha256?, md5?);
            if md5_len != len {
                return Err(TransferError::SourceChanged);
            }
            let digest = FileDigest {
                sha256: sha256.into(),
                md5: md5.into(),
                len,
            };
            Ok((digest, None))
        })
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))?
}

/// Hashes up to `len` bytes of the file from `offset` (fewer at its end); returns the digest
/// and how many bytes it read. Stops with [`TransferError::Cancelled`] once `stop` is set.
pub(crate) fn hash_range<D: Digest>(
    path: &std::path::Path,
    offset: u64,
    len: u64,
    stop: &AtomicBool,
) -> Result<(sha2::digest::Output<D>, u64), TransferError> {
    use std::io::{Seek, SeekFrom};
    let read_err = |e: std::io::Error| TransferError::Read(e.to_string());
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    f.seek(SeekFrom::Start(offset)).map_err(read_err)?;
    let mut h = D::new();
    let mut buf = vec![0u8; CHUNK_SIZE];
    let mut read = 0u64;
    while read < len {
        if stop.load(Ordering::Relaxed) {
            return Err(TransferError::Cancelled);
        }
        let want = (buf.len() as u64).min(len - read) as usize;
        let got = f.read(&mut buf[..want]).map_err(read_err)?;
        if got == 0 {
            break;
        }
        h.update(&buf[..got]);
        read += got as u64;
    }
    Ok((h.finalize(), read))
}

/// Sends files, with retry and re-signing.
#[derive(Clone, Debug)]
pub struct Uploader {
    client: reqwest::Client,
    retry: RetryPolicy,
    stall_timeout: Duration,
}

impl Uploader {
    pub fn new(retry: RetryPolicy) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Uploader {
            client,
            retry,
            stall_timeout: Duration::from_secs(30),
        }
    }

    /// An attempt during which no byte moves for this long is abandoned and retried.
    pub fn with_stall_timeout(mut self, d: Duration) -> Self {
        self.stall_timeout = d;
        self
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Uploads `file` to `key` with URLs from `signer`, in one PUT.
    pub async fn upload(
        &self,
        file: &CheckedFile,
        key: &str,
        signer: &dyn Signer,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, TransferError> {
        progress(TransferEvent::Hashing { total: file.size });
        let (digest, content) = read_and_digest(&file.path).await?;
        if digest.len != file.size {
            return Err(TransferError::SourceChanged);
        }
        let payload = match content {
            Some(c) if !file.is_unchanged(&c.meta) => return Err(TransferError::SourceChanged),
            Some(c) => Payload::Bytes(c.bytes),
            None => Payload::Range(FileRange {
                offset: 0,
                len: file.size,
            }),
        };
        let payload = &payload;
        let request = PutRequest {
            key: key.to_string(),
            file_name: crate::key::sanitize_name(&file.file_name),
            content_type: file.content_type.clone(),
            size: file.size,
            sha256_b64: digest.sha256_b64(),
            md5_b64: digest.md5_b64(),
        };
        let request = &request;
        let ((answer, presigned), attempts) = self
            .with_retry(Some(progress), |attempt| async move {
                // Signed afresh for every attempt: an expired URL is never reused.
                let presigned = signer.presign_put(request, self.retry.clock.now()).await.map_err(|e| {
                    if e.is_retryable() {
                        AttemptError::Retry(Failure::local(FailureKind::Transient, e.to_string()))
                    } else {
                        AttemptError::Fatal(e.into())
                    }
                })?;
                tracing::debug!(url = %redact(presigned.url.as_str()), key = %presigned.key, attempt, "signed");
                progress(TransferEvent::Attempt { attempt });
                let answer = self
                    .send(file, payload.clone(), &presigned, Some(&request.content_type), &request.md5_b64, progress)
                    .await
                    .map_err(AttemptError::Retry)?;
                Ok((answer, presigned))
            })
            .await?;
        verify_answer(&answer, &digest)?;
        progress(TransferEvent::Acknowledged { bytes: file.size });
        let mut location = presigned.url.clone();
        location.set_query(None);
        Ok(UploadReceipt {
            key: presigned.key,
            size: file.size,
            sha256: digest.sha256_hex(),
            etag: answer.etag,
            attempts,
            location: location.to_string(),
            bytes_sent: file.size,
        })
    }

    /// Runs `attempt` (sign + send once) under the retry policy: backoff and budget for transient
    /// failures, an immediate new attempt (so a new signature) for an expired URL, and at once an
    /// error for a permanent failure. Returns the value and the number of attempts.
    pub(crate) async fn with_retry<T, F, Fut>(
        &self,
        progress: Option<&ProgressFn>,
        mut attempt: F,
    ) -> Result<(T, u32), TransferError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<T, AttemptError>>,
    {
        let policy = &self.retry;
        let mut attempts = 0u32;
        let mut resigns = 0u32;
        let mut spent = 0u32;
        loop {
            attempts += 1;
            let failure = match attempt(attempts).await {
                Ok(v) => {
                    policy.budget.on_success(spent);
                    return Ok((v, attempts));
                }
                Err(AttemptError::Fatal(e)) => return Err(e),
                Err(AttemptError::Retry(f)) => f,
            };
            tracing::warn!(attempt = attempts, kind = ?failure.kind, reason = %failure.message, "attempt failed");
            if failure.message == SOURCE_CHANGED {
                return Err(TransferError::SourceChanged);
            }
            match failure.kind {
                FailureKind::Permanent => return Err(TransferError::Rejected(failure.message)),
                FailureKind::Expired => {
                    if resigns >= MAX_RESIGNS {
                        return Err(TransferError::ExpiredAgain {
                            last: failure.message,
                        });
                    }
                    resigns += 1;
                    attempts -= 1; // signing again is not a retry of a failed transfer
                    continue;
                }
                _ => {}
            }
            if attempts >= policy.max_attempts {
                return Err(TransferError::RetriesExhausted {
                    attempts,
                    last: failure.message,
                });
            }
            let Some(cost) = policy.budget.acquire(failure.kind) else {
                return Err(TransferError::BudgetExhausted {
                    last: failure.message,
                });
            };
            spent += cost;
            let delay = policy.backoff(attempts);
            if let Some(progress) = progress {
                progress(TransferEvent::Retrying {
                    attempt: attempts,
                    delay_ms: delay.as_millis() as u64,
                    reason: failure.message.clone(),
                });
            }
            policy.clock.sleep(delay).await;
        }
    }

    /// One PUT of `payload`: the whole file, or a part.
    pub(crate) async fn send(
        &self,
        file: &CheckedFile,
        payload: Payload,
        presigned: &PresignedPut,
        content_type: Option<&str>,
        md5_b64: &str,
        progress: &ProgressFn,
    ) -> Result<Answer, Failure> {
        let (chunks, total) = match payload {
            Payload::Bytes(bytes) => {
                let total = bytes.len() as u64;
                let once = futures_util::stream::once(async move { Ok(bytes) });
                (once.boxed(), total)
            }
            Payload::Range(range) => {
                let mut handle = tokio::fs::File::open(&file.path)
                    .await
                    .map_err(read_failure)?;
                let meta = handle.metadata().await.map_err(read_failure)?;
                if !file.is_unchanged(&meta) {
                    return Err(Failure::local(FailureKind::Permanent, SOURCE_CHANGED));
                }
                if range.offset > 0 {
                    use tokio::io::AsyncSeekExt;
                    handle
                        .seek(std::io::SeekFrom::Start(range.offset))
                        .await
                        .map_err(read_failure)?;
                }
                let reader = handle.take(range.len);
                let chunks = tokio_util::io::ReaderStream::with_capacity(reader, CHUNK_SIZE);
                (chunks.boxed(), range.len)
            }
        };
        let started = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let stream = {
            let activity = activity.clone();
            let progress = progress.clone();
            let mut sent = 0u64;
            chunks.map(move |chunk| {
                if let Ok(c) = &chunk {
                    sent += c.len() as u64;
                    activity.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    progress(TransferEvent::Sent { bytes: sent, total });
                }
                chunk
            })
        };
        let mut builder = self
            .client
            .put(presigned.url.clone())
            .header(reqwest::header::CONTENT_LENGTH, total);
        let signer_sets_type = presigned.headers.iter().any(|(n, _)| n == "content-type");
        if let (false, Some(t)) = (signer_sets_type, content_type) {
            builder = builder.header(reqwest::header::CONTENT_TYPE, t);
        }
        // S3 checks Content-MD5 even when the signer did not sign it.
        let signer_sets_md5 = presigned.headers.iter().any(|(n, _)| n == "content-md5");
        if !signer_sets_md5 {
            builder = builder.header("content-md5", md5_b64);
        }
        for (name, value) in &presigned.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let send = builder.body(reqwest::Body::wrap_stream(stream)).send();
        let watchdog = async {
            let tick = (self.stall_timeout / 4).max(Duration::from_millis(10));
            loop {
                tokio::time::sleep(tick).await;
                let idle = started.elapsed().as_millis() as u64 - activity.load(Ordering::Relaxed);
                if idle >= self.stall_timeout.as_millis() as u64 {
                    return;
                }
            }
        };
        let response = tokio::select! {
            r = send => r.map_err(network_failure)?,
            () = watchdog => {
                return Err(Failure::local(
                    FailureKind::Timeout,
                    format!("the transfer stalled: nothing moved for {} s", self.stall_timeout.as_secs_f32()),
                ));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            let header = |n: &str| {
                headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            return Ok(Answer {
                etag: header("etag").map(|e| e.trim_matches('"').to_string()),
                checksum_sha256: header("x-amz-checksum-sha256"),
                kms: header("x-amz-server-side-encryption")
                    .is_some_and(|v| v.starts_with("aws:kms")),
            });
        }
        let body = tokio::time::timeout(self.stall_timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        Err(classify_response(status.as_u16(), &headers, &body))
    }
}

pub(crate) const SOURCE_CHANGED: &str = "the file changed while it was being uploaded";

/// A failed attempt: retried per the policy, or fatal at once.
#[derive(Debug)]
pub(crate) enum AttemptError {
    Retry(Failure),
    Fatal(TransferError),
}

/// What one PUT sends: a small file's bytes already read, or a range streamed from disk.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    Bytes(bytes::Bytes),
    Range(FileRange),
}

/// Bytes `offset..offset + len` of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileRange {
    pub offset: u64,
    pub len: u64,
}

/// What a successful PUT answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub etag: Option<String>,
    pub checksum_sha256: Option<String>,
    pub kms: bool,
}

fn verify_answer(answer: &Answer, digest: &FileDigest) -> Result<(), TransferError> {
    if let Some(c) = &answer.checksum_sha256 {
        if *c != digest.sha256_b64() {
            return Err(TransferError::Integrity(format!(
                "S3 reports SHA-256 {c}, the file has {}",
                digest.sha256_b64()
            )));
        }
    }
    // An ETag is the MD5 of the content unless the object is KMS-encrypted or multipart.
    if let Some(etag) = &answer.etag {
        if !answer.kms && !etag.contains('-') && etag.len() == 32 && *etag != hex(&digest.md5) {
            return Err(TransferError::Integrity(format!(
                "S3 reports ETag {etag}, the file's MD5 is {}",
                hex(&digest.md5)
            )));
        }
    }
    Ok(())
}

fn read_failure(e: std::io::Error) -> Failure {
    Failure::local(FailureKind::Permanent, format!("cannot read the file: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of hashing (a small file read whole; a larger one read by two threads) give
    /// the checksums of the file's bytes.
    #[tokio::test]
    async fn digest_file_matches_the_bytes_below_and_above_the_small_file_size() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1000,
            SMALL_FILE as usize,
            SMALL_FILE as usize + 1,
            3 * CHUNK_SIZE + 17,
        ] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let path = dir.path().join(format!("f{len}"));
            std::fs::write(&path, &bytes).unwrap();
            let digest = digest_file(&path).await.unwrap();
            assert_eq!(digest.len, len as u64);
            assert_eq!(
                digest.sha256,
                <[u8; 32]>::from(Sha256::digest(&bytes)),
                "{len}"
            );
            assert_eq!(digest.md5, <[u8; 16]>::from(Md5::digest(&bytes)), "{len}");
        }
    }

    #[test]
    fn integrity_mismatch_is_an_error() {
        let digest = FileDigest {
            sha256: [1; 32],
            md5: [2; 16],
            len: 1,
        };
        let good = Answer {
            etag: Some(hex(&[2; 16])),
            checksum_sha256: Some(digest.sha256_b64()),
            kms: false,
        };
        assert!(verify_answer(&good, &digest).is_ok());
        let bad = Answer {
            etag: Some(hex(&[3; 16])),
            checksum_sha256: None,
            kms: false,
        };
        assert!(matches!(
            verify_answer(&bad, &digest),
            Err(TransferError::Integrity(_))
        ));
    }
}
