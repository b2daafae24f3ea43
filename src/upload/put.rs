//! One PUT of a body — a whole small file already read, or a range streamed from disk in
//! [`CHUNK_SIZE`] pieces — to a presigned URL, with progress, a stall watchdog and the
//! classification of what the store answered.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::attempt::AttemptError;
use super::digest::CHUNK_SIZE;
use super::parts::FileRange;
use super::types::{ProgressFn, TransferError, TransferEvent};
use super::Uploader;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::remote::failure::{classify_response, network_failure};
use crate::remote::RemoteFailure;
use crate::retry::FailureKind;
use crate::sign::PresignedPut;
use crate::validate::CheckedFile;

/// What one PUT sends: bytes already read (a small file, or a part read once for its digests),
/// or a range streamed from disk.
#[derive(Clone, Debug)]
pub(crate) enum Payload {
    Bytes(bytes::Bytes),
    Range(FileRange),
}

/// One PUT's body and the headers that describe it.
#[derive(Clone, Debug)]
pub(crate) struct PutBody<'a> {
    pub file: &'a CheckedFile,
    pub payload: Payload,
    /// Sent when the signer did not fix a type.
    pub content_type: Option<&'a str>,
    /// The body's MD5, sent as `Content-MD5` (S3 checks it even when it was not signed); none
    /// where the store checks the flexible checksum.
    pub md5_b64: Option<&'a str>,
    /// The flexible checksum Hoist computed for the body and asked to have signed: a
    /// mismatch on it is corruption in transit, on any other the signer's doing.
    pub checksum: Option<&'a Checksum>,
}

/// What a successful PUT answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub etag: Option<String>,
    /// The flexible checksums the store echoed (`x-amz-checksum-*`).
    pub checksums: Vec<Checksum>,
    /// The ETag is the MD5 of the content by S3's rules: the answer names no SSE-KMS,
    /// DSSE-KMS or SSE-C encryption (whose ETags are not MD5 digests).
    pub etag_is_md5: bool,
    /// The server-side encryption the store reported (`x-amz-server-side-encryption`).
    pub encryption: Option<String>,
}

impl Answer {
    /// No answer of a store: the backend said the object had landed before (a resume after a
    /// crash), having compared its size and content with what the file declares.
    pub(crate) fn landed_before() -> Self {
        Self {
            etag: None,
            checksums: Vec::new(),
            etag_is_md5: false,
            encryption: None,
        }
    }
}

/// `bytes` in slices of `size` (the last shorter), sharing its buffer.
pub(crate) fn slices(bytes: bytes::Bytes, size: usize) -> impl Iterator<Item = bytes::Bytes> {
    (0..bytes.len())
        .step_by(size.max(1))
        .map(move |o| bytes.slice(o..(o + size).min(bytes.len())))
}

type Chunks = futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>;

fn read_failure(e: std::io::Error) -> AttemptError {
    AttemptError::Fatal(TransferError::Read(e.to_string()))
}

impl Uploader {
    /// `chunks` in pieces that each wait for the bandwidth limits (set now or later).
    fn throttled(&self, chunks: Chunks) -> Chunks {
        if !self.throttle.has_limits() {
            return chunks;
        }
        let (cut, wait) = (self.throttle.clone(), self.throttle.clone());
        chunks
            .flat_map(move |chunk| {
                let pieces: Vec<std::io::Result<bytes::Bytes>> = match chunk {
                    Ok(c) => cut.pieces(c).into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(e)],
                };
                futures_util::stream::iter(pieces)
            })
            .then(move |piece| {
                let throttle = wait.clone();
                async move {
                    if let Ok(p) = &piece {
                        throttle.admit(p.len()).await;
                    }
                    piece
                }
            })
            .boxed()
    }

    /// PUTs `body` to `presigned`: a failure worth retrying comes back as
    /// [`AttemptError::Retry`], a file that changed or cannot be read as fatal.
    pub(crate) async fn put(
        &self,
        body: PutBody<'_>,
        presigned: &PresignedPut,
        progress: &ProgressFn,
    ) -> Result<Answer, AttemptError> {
        let total = match &body.payload {
            Payload::Bytes(bytes) => bytes.len() as u64,
            Payload::Range(range) => range.len,
        };
        unusable_url(presigned, body.checksum, total, self.now())?;
        let body_checksum = body.checksum.cloned();
        let (chunks, total) = match body.payload {
            Payload::Bytes(bytes) => {
                let total = bytes.len() as u64;
                // In chunks (slices of the same buffer), so progress and the stall watchdog
                // see the body move as they do for a file streamed from disk.
                let chunks = slices(bytes, CHUNK_SIZE).map(Ok);
                (futures_util::stream::iter(chunks).boxed(), total)
            }
            Payload::Range(range) => {
                let reader = open_range(body.file, range).await?;
                let chunks = tokio_util::io::ReaderStream::with_capacity(reader, CHUNK_SIZE);
                (chunks.boxed(), range.len)
            }
        };
        let chunks = self.throttled(chunks);
        let started = Instant::now();
        let activity = Arc::new(AtomicU64::new(0));
        let stream = {
            let activity = Arc::clone(&activity);
            let progress = Arc::clone(progress);
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
        let body_stream = reqwest::Body::wrap_stream(stream);
        let send = match &presigned.form {
            Some(fields) => self
                .form_request(presigned, fields, body_stream, total)
                .send(),
            None => self
                .request(presigned, body.content_type, body.md5_b64, total)
                .body(body_stream)
                .send(),
        };
        let response = tokio::select! {
            r = send => r.map_err(network_failure)?,
            () = self.stalled(started, &activity) => {
                return Err(RemoteFailure::local(
                    FailureKind::Timeout,
                    format!("the transfer stalled: nothing moved for {} s", self.stall_timeout.as_secs_f32()),
                ).into());
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if status.is_success() {
            return Ok(answer_of(&headers));
        }
        let text = tokio::time::timeout(self.stall_timeout, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let failure = classify_response(status.as_u16(), &headers, &text, self.now());
        Err(blame_baked_checksum(failure, presigned, body_checksum.as_ref()).into())
    }

    /// The POST of S3's form upload: the fields in order, then the file (S3 wants it last).
    /// There is no `Content-MD5` here (a field the policy does not list is refused): the
    /// answer's ETag is checked instead, where it is an MD5.
    fn form_request(
        &self,
        presigned: &PresignedPut,
        fields: &[(String, String)],
        body: reqwest::Body,
        total: u64,
    ) -> reqwest::RequestBuilder {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.clone(), value.clone());
        }
        // The object's type is the form's `content-type` field (signed in the policy); the
        // part's own type is not used by S3.
        let file = reqwest::multipart::Part::stream_with_length(body, total).file_name("file");
        form = form.part("file", file);
        let mut builder = self.client.post(presigned.url.clone()).multipart(form);
        for (name, value) in &presigned.headers {
            builder = builder.header(name, value);
        }
        builder
    }

    /// The PUT to `presigned`: its headers, and `Content-Type` and `Content-MD5` where the
    /// signer did not fix them.
    fn request(
        &self,
        presigned: &PresignedPut,
        content_type: Option<&str>,
        md5_b64: Option<&str>,
        total: u64,
    ) -> reqwest::RequestBuilder {
        let mut builder = self
            .client
            .put(presigned.url.clone())
            .header(reqwest::header::CONTENT_LENGTH, total);
        let signer_sets = |name: &str| presigned.headers.iter().any(|(n, _)| n == name);
        if let (false, Some(t)) = (signer_sets("content-type"), content_type) {
            builder = builder.header(reqwest::header::CONTENT_TYPE, t);
        }
        // S3 checks Content-MD5 even when the signer did not sign it.
        if let (false, Some(m)) = (signer_sets("content-md5"), md5_b64) {
            builder = builder.header("content-md5", m);
        }
        for (name, value) in &presigned.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder
    }

    /// Resolves once nothing has moved for the stall timeout.
    async fn stalled(&self, started: Instant, activity: &AtomicU64) {
        let tick = (self.stall_timeout / 4).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(tick).await;
            let idle = started.elapsed().as_millis() as u64 - activity.load(Ordering::Relaxed);
            if idle >= self.stall_timeout.as_millis() as u64 {
                return;
            }
        }
    }
}

/// SHA-1 of an empty body: S3 takes SHA-1 checksums, which Hoist itself never computes.
const EMPTY_BODY_SHA1: &str = "2jmj7l5rSw0yVb/vlWAYkK/YBwk=";

/// Whether `value` is algorithm `alg`'s checksum of an empty body.
fn is_empty_body_checksum(alg: &str, value: &str) -> bool {
    match ChecksumAlgorithm::parse(alg) {
        Some(a) => a.of(b"").value == value,
        None => alg == "sha1" && value == EMPTY_BODY_SHA1,
    }
}

/// What a backend must change when its URLs carry a checksum of their own.
const BAKED_CHECKSUM_FIX: &str = "the backend must not compute checksums itself when it presigns: \
    set AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED in its environment (Uppy Companion, any \
    AWS SDK), or create its S3 client with requestChecksumCalculation: \"WHEN_REQUIRED\" (AWS SDK \
    for JavaScript v3), or sign the checksum the client sends";

/// A checksum the backend fixed in the URL's query or in the headers it asked for, other than
/// the one Hoist computed: (algorithm, base64 value).
fn baked_checksum(presigned: &PresignedPut, own: Option<&Checksum>) -> Option<(String, String)> {
    let own =
        |alg: &str, value: &str| own.is_some_and(|c| c.algorithm.name() == alg && c.value == value);
    baked_checksums(presigned).find(|(alg, value)| !own(alg, value))
}

/// Every checksum the URL's query and the headers to send fix: (algorithm, base64 value).
pub(crate) fn baked_checksums(
    presigned: &PresignedPut,
) -> impl Iterator<Item = (String, String)> + '_ {
    let checksum_name = |k: &str| {
        k.to_ascii_lowercase()
            .strip_prefix("x-amz-checksum-")
            .filter(|alg| !matches!(*alg, "type" | "algorithm" | "mode"))
            .map(str::to_string)
    };
    let from_query = presigned
        .url
        .query_pairs()
        .filter_map(move |(k, v)| checksum_name(&k).map(|alg| (alg, v.into_owned())));
    let from_headers = presigned
        .headers
        .iter()
        .filter_map(move |(k, v)| checksum_name(k).map(|alg| (alg, v.clone())));
    from_query
        .collect::<Vec<_>>()
        .into_iter()
        .chain(from_headers)
}

/// Refuses, before a byte is sent, a URL that cannot take this body: one signed for an empty
/// body (the AWS SDK for JavaScript v3's default), or one already expired (signed again).
fn unusable_url(
    presigned: &PresignedPut,
    own: Option<&Checksum>,
    total: u64,
    now: SystemTime,
) -> Result<(), RemoteFailure> {
    if let Some((alg, value)) = baked_checksum(presigned, own) {
        if total > 0 && is_empty_body_checksum(&alg, &value) {
            return Err(RemoteFailure::local(
                FailureKind::Permanent,
                format!(
                    "the backend's URL is signed for an empty body (x-amz-checksum-{alg}={value}), \
                     so the storage would refuse this file's {total} bytes; {BAKED_CHECKSUM_FIX}"
                ),
            ));
        }
    }
    if presigned.expires_at.is_some_and(|t| t <= now) {
        return Err(RemoteFailure::local(
            FailureKind::Expired,
            "the upload URL had expired before it was used (check the backend's clock and expiry)",
        ));
    }
    Ok(())
}

/// A checksum mismatch on a URL whose checksum the backend fixed is the backend's doing, not
/// corruption in transit: permanent, with what the backend must change.
fn blame_baked_checksum(
    failure: RemoteFailure,
    presigned: &PresignedPut,
    own: Option<&Checksum>,
) -> RemoteFailure {
    let mismatch = crate::remote::failure::is_checksum_mismatch(&failure.code);
    match baked_checksum(presigned, own) {
        Some((alg, _)) if mismatch => RemoteFailure {
            kind: FailureKind::Permanent,
            message: format!(
                "the storage refused the file because it does not match the {alg} checksum the \
                 backend put in the URL (HTTP {} {}); {BAKED_CHECKSUM_FIX}",
                failure.status.unwrap_or(400),
                failure.code
            ),
            ..failure
        },
        _ => failure,
    }
}

/// Whether an answer's ETag is an MD5 digest by S3's rules: objects encrypted with SSE-KMS,
/// DSSE-KMS (`aws:kms`, `aws:kms:dsse`) or SSE-C (a customer algorithm) have ETags that are not.
pub(crate) fn etag_is_md5(headers: &reqwest::header::HeaderMap) -> bool {
    let kms = headers
        .get("x-amz-server-side-encryption")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("aws:kms"));
    let customer_key = headers.contains_key("x-amz-server-side-encryption-customer-algorithm");
    !kms && !customer_key
}

/// What a successful PUT's headers say.
fn answer_of(headers: &reqwest::header::HeaderMap) -> Answer {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Answer {
        etag: header("etag").map(|e| e.trim_matches('"').to_string()),
        checksums: ChecksumAlgorithm::ALL
            .into_iter()
            .filter_map(|algorithm| {
                header(algorithm.header()).map(|value| Checksum { algorithm, value })
            })
            .collect(),
        etag_is_md5: etag_is_md5(headers),
        encryption: header("x-amz-server-side-encryption"),
    }
}

/// Opens `range` of the file, refusing a file that changed since it was checked.
async fn open_range(
    file: &CheckedFile,
    range: FileRange,
) -> Result<tokio::io::Take<tokio::fs::File>, AttemptError> {
    let checked = file.clone();
    let handle = tokio::task::spawn_blocking(move || super::digest::reopen(&checked))
        .await
        .map_err(|e| TransferError::Read(e.to_string()))??;
    let mut handle = tokio::fs::File::from_std(handle);
    if range.offset > 0 {
        use tokio::io::AsyncSeekExt;
        handle
            .seek(std::io::SeekFrom::Start(range.offset))
            .await
            .map_err(read_failure)?;
    }
    Ok(handle.take(range.len))
}
