//! Multipart uploads: large files in parts, several in flight, each part retried and signed
//! afresh on its own, every part checked by S3 (`Content-MD5`, and its ETag against the MD5)
//! and the whole object checked afterwards (the multipart ETag rule), with every acknowledged
//! part journaled in the [`Queue`] so that a crash loses at most the parts in flight.
//!
//! Nothing waits for a pass over the whole file: each part is hashed just before it is sent,
//! and the whole-file SHA-256 (the receipt's proof) is computed on its own thread meanwhile, so
//! the first byte leaves at once even for a file of many GiB. The file's size and modification
//! time are checked before every part and before Complete, so a file that changes under the
//! upload fails it instead of landing half old, half new.
//!
//! Memory per part in flight is one read buffer ([`crate::transfer::CHUNK_SIZE`]), never the part.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::stream::{self, TryStreamExt};
use md5::{Digest, Md5};
use sha2::Sha256;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::queue::{PartRecord, Queue};
use crate::retry::FailureKind;
use crate::s3::{ObjectInfo, RemotePart, S3Client, S3Failure};
use crate::sign::{PresignedPut, PutRequest};
use crate::transfer::{
    hash_range, hex, AttemptError, FileRange, Payload, ProgressFn, TransferError, TransferEvent,
    UploadReceipt, Uploader,
};
use crate::validate::CheckedFile;

const MIB: u64 = 1024 * 1024;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * MIB;
/// S3's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// S3's largest object.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * MIB;
/// Files from this size on go multipart.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * MIB;
/// The part size Hoist prefers; larger files get larger parts.
pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// Parts of one file in flight at once (the session's limit caps all files together).
pub const PARTS_IN_FLIGHT_PER_FILE: usize = 4;

/// The part size for a file: the preferred size, raised to S3's minimum and to what keeps the
/// count within [`MAX_PARTS`], rounded up to whole MiB.
pub fn part_size_for(size: u64, preferred: u64) -> Result<u64, TransferError> {
    if size > MAX_OBJECT_SIZE {
        return Err(TransferError::Rejected(format!(
            "the file is {size} bytes, over S3's object limit of 5 TiB"
        )));
    }
    let needed = size.div_ceil(MAX_PARTS);
    let part = preferred.max(MIN_PART_SIZE).max(needed).div_ceil(MIB) * MIB;
    Ok(part.min(MAX_PART_SIZE))
}

/// How many parts `size` makes with `part_size` (at least one).
pub fn part_count(size: u64, part_size: u64) -> u32 {
    size.div_ceil(part_size).max(1) as u32
}

/// The ETag S3 gives a multipart object: MD5 of the parts' binary MD5s, `-`, the count.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", hex(&h.finalize()), part_md5s.len())
}

/// An unfinished upload: where it goes and S3's id for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartTarget {
    pub key: String,
    pub upload_id: String,
}

/// The multipart operations, whoever signs them.
#[async_trait::async_trait]
pub trait MultipartApi: Send + Sync {
    async fn create(&self, req: &PutRequest, now: SystemTime)
        -> Result<MultipartTarget, S3Failure>;
    /// A URL for one part, signed now (so shortly before use).
    async fn sign_part(
        &self,
        target: &MultipartTarget,
        part: u32,
        md5_b64: &str,
        len: u64,
        now: SystemTime,
    ) -> Result<PresignedPut, S3Failure>;
    async fn list_parts(
        &self,
        target: &MultipartTarget,
        now: SystemTime,
    ) -> Result<Vec<RemotePart>, S3Failure>;
    /// Completes; returns the object's ETag when the answer has one.
    async fn complete(
        &self,
        target: &MultipartTarget,
        parts: &[(u32, String)],
        now: SystemTime,
    ) -> Result<Option<String>, S3Failure>;
    async fn abort(&self, target: &MultipartTarget, now: SystemTime) -> Result<(), S3Failure>;
    /// The object at `key`, when this API can tell (`Ok(None)` otherwise or when absent).
    async fn head(&self, key: &str, now: SystemTime) -> Result<Option<ObjectInfo>, S3Failure>;
    /// The object's URL, without any signature.
    fn location(&self, key: &str) -> String;
}

/// Self-signed multipart: Hoist signs every call with SigV4.
#[async_trait::async_trait]
impl MultipartApi for S3Client {
    async fn create(
        &self,
        req: &PutRequest,
        now: SystemTime,
    ) -> Result<MultipartTarget, S3Failure> {
        let upload_id = self
            .create_multipart(&req.key, &req.content_type, now)
            .await?;
        Ok(MultipartTarget {
            key: req.key.clone(),
            upload_id,
        })
    }

    async fn sign_part(
        &self,
        target: &MultipartTarget,
        part: u32,
        md5_b64: &str,
        len: u64,
        now: SystemTime,
    ) -> Result<PresignedPut, S3Failure> {
        let len_s = len.to_string();
        let url = self.presign_part(
            &target.key,
            &target.upload_id,
            part,
            &[("content-length", &len_s), ("content-md5", md5_b64)],
            now,
        )?;
        let url = url::Url::parse(&url)
            .map_err(|e| S3Failure::local(FailureKind::Permanent, e.to_string()))?;
        Ok(PresignedPut {
            url,
            headers: vec![("content-md5".into(), md5_b64.to_string())],
            key: target.key.clone(),
            expires_at: Some(now + self.signer().expires_in()),
        })
    }

    async fn list_parts(
        &self,
        target: &MultipartTarget,
        now: SystemTime,
    ) -> Result<Vec<RemotePart>, S3Failure> {
        S3Client::list_parts(self, &target.key, &target.upload_id, now).await
    }

    async fn complete(
        &self,
        target: &MultipartTarget,
        parts: &[(u32, String)],
        now: SystemTime,
    ) -> Result<Option<String>, S3Failure> {
        S3Client::complete(self, &target.key, &target.upload_id, parts, false, now).await
    }

    async fn abort(&self, target: &MultipartTarget, now: SystemTime) -> Result<(), S3Failure> {
        S3Client::abort(self, &target.key, &target.upload_id, now).await
    }

    async fn head(&self, key: &str, now: SystemTime) -> Result<Option<ObjectInfo>, S3Failure> {
        S3Client::head(self, key, now).await
    }

    fn location(&self, key: &str) -> String {
        self.signer().object_url(key)
    }
}

/// Stops uploads: `pause` keeps the multipart upload for a later resume, `cancel` aborts it.
/// Child controls stop with their parent.
#[derive(Clone, Debug, Default)]
pub struct Control {
    token: CancellationToken,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl Control {
    pub fn pause(&self) {
        self.token.cancel();
    }

    pub fn cancel(&self) {
        self.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        self.token.cancel();
    }

    /// A control that stops when this one does, or on its own.
    pub fn child(&self) -> Control {
        Control {
            token: self.token.child_token(),
            cancel: self.cancel.clone(),
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The error an upload stopped by this control ends with.
    pub fn stop_error(&self) -> TransferError {
        if self.cancel.load(std::sync::atomic::Ordering::SeqCst) {
            TransferError::Cancelled
        } else {
            TransferError::Paused
        }
    }

    /// Resolves once paused or cancelled.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }
}

/// A cheap content sample: SHA-256 over the size and five 64 KiB windows spread over the file.
pub fn fingerprint(path: &std::path::Path, size: u64) -> Result<String, TransferError> {
    use std::io::{Read, Seek, SeekFrom};
    const WINDOW: u64 = 64 * 1024;
    let mut f = std::fs::File::open(path).map_err(|e| TransferError::Read(e.to_string()))?;
    let mut h = Sha256::new();
    h.update(size.to_be_bytes());
    let mut buf = vec![0u8; WINDOW as usize];
    for i in 0..5u64 {
        let offset = (size.saturating_sub(WINDOW)) * i / 4;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| TransferError::Read(e.to_string()))?;
        let n = f
            .read(&mut buf)
            .map_err(|e| TransferError::Read(e.to_string()))?;
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Why an unfinished upload starts over when its file changed.
pub const SOURCE_CHANGED_RESTART: &str =
    "the file changed since its upload started; the old upload was aborted and it starts over";
/// Why an unfinished upload starts over when S3 no longer has it.
pub const UPLOAD_GONE_RESTART: &str =
    "the unfinished upload is gone from the server (expired or aborted); starting over";

/// How long a cancel waits for the parts in flight before it aborts the upload.
const CANCEL_DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Makes a queue item start over: aborts its multipart upload on S3 (when there is one and an
/// API to reach it), forgets it and its parts with the source's new facts, and says why.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn restart(
    api: Option<&dyn MultipartApi>,
    queue: &Queue,
    item: &crate::queue::QueueItem,
    source: (u64, Option<i64>, &str),
    reason: &str,
    progress: &ProgressFn,
    now: SystemTime,
) -> Result<(), crate::queue::QueueError> {
    if let (Some(upload_id), Some(api)) = (&item.upload_id, api) {
        let target = MultipartTarget {
            key: item.key.clone(),
            upload_id: upload_id.clone(),
        };
        let _ = api.abort(&target, now).await;
    }
    let (size, modified_ns, fingerprint) = source;
    queue.reset(item.id, size, modified_ns, fingerprint, reason)?;
    progress(TransferEvent::Restarted {
        reason: reason.into(),
    });
    Ok(())
}

/// What a multipart upload needs besides the file.
pub struct MultipartJob<'a> {
    pub api: &'a dyn MultipartApi,
    pub queue: &'a Queue,
    pub item_id: i64,
    /// Caps parts in flight over all files of a session.
    pub parts_limit: &'a Semaphore,
    pub preferred_part_size: u64,
    pub control: &'a Control,
    pub progress: &'a ProgressFn,
}

fn queue_err(e: crate::queue::QueueError) -> TransferError {
    TransferError::Read(e.to_string())
}

fn retry_err(f: S3Failure) -> AttemptError {
    AttemptError::Retry(f)
}

impl Uploader {
    /// Uploads `file` to `key` in parts, resuming the item's unfinished upload when there is one.
    pub async fn upload_multipart(
        &self,
        file: &CheckedFile,
        key: &str,
        job: MultipartJob<'_>,
    ) -> Result<UploadReceipt, TransferError> {
        let progress = job.progress;
        let part_size = part_size_for(file.size, job.preferred_part_size)?;
        let total_parts = part_count(file.size, part_size);
        let sha256_pass = Sha256Pass::start(file);
        let item = job
            .queue
            .get(job.item_id)
            .map_err(queue_err)?
            .ok_or_else(|| TransferError::Read("the queue item vanished".into()))?;
        let request = PutRequest {
            key: key.to_string(),
            file_name: crate::key::sanitize_name(&file.file_name),
            content_type: file.content_type.clone(),
            size: file.size,
            sha256_b64: String::new(),
            md5_b64: String::new(),
        };

        // Resume what S3 still holds, unless the source changed since.
        let mut done: BTreeMap<u32, String> = BTreeMap::new();
        let mut md5s: BTreeMap<u32, [u8; 16]> = BTreeMap::new();
        let mut target = None;
        if let (Some(upload_id), Some(old_size)) = (item.upload_id.clone(), item.part_size) {
            let old = MultipartTarget {
                key: item.key.clone(),
                upload_id,
            };
            let journal = job.queue.parts(job.item_id).map_err(queue_err)?;
            let mut changed = old_size != part_size;
            for p in &journal {
                if changed {
                    break;
                }
                changed = p.part_number == 0 || p.part_number > total_parts || {
                    let md5 = part_md5(file, part_size, p.part_number).await?;
                    md5s.insert(p.part_number, md5);
                    hex(&md5) != p.md5_hex
                };
            }
            if changed {
                md5s.clear();
                let source = (file.size, item.modified_ns, item.fingerprint.as_str());
                restart(
                    Some(job.api),
                    job.queue,
                    &item,
                    source,
                    SOURCE_CHANGED_RESTART,
                    progress,
                    self.retry_policy().clock.now(),
                )
                .await
                .map_err(queue_err)?;
            } else {
                match self
                    .with_retry(None, |_| async {
                        job.api
                            .list_parts(&old, self.retry_policy().clock.now())
                            .await
                            .map_err(retry_err)
                    })
                    .await
                {
                    Ok((remote, _)) => {
                        let journaled: HashSet<u32> =
                            journal.iter().map(|p| p.part_number).collect();
                        for p in remote {
                            let n = p.part_number;
                            if n == 0
                                || n > total_parts
                                || p.size != part_len(file.size, part_size, n)
                                || (p.etag.is_empty() && !journaled.contains(&n))
                            {
                                continue;
                            }
                            // A part S3 holds but the journal missed (a crash between the two)
                            // is hashed here to tell whether it is still this file's.
                            let md5 = match md5s.get(&n) {
                                Some(m) => *m,
                                None => {
                                    let m = part_md5(file, part_size, n).await?;
                                    md5s.insert(n, m);
                                    m
                                }
                            };
                            if p.etag.is_empty() || p.etag.trim_matches('"') == hex(&md5) {
                                done.insert(
                                    n,
                                    if p.etag.is_empty() {
                                        format!("\"{}\"", hex(&md5))
                                    } else {
                                        p.etag
                                    },
                                );
                            }
                        }
                        md5s.retain(|n, _| done.contains_key(n));
                        target = Some(old);
                    }
                    Err(_) => {
                        md5s.clear();
                        // S3 no longer has it: nothing to abort, so no API is passed.
                        let source = (file.size, item.modified_ns, item.fingerprint.as_str());
                        restart(
                            None,
                            job.queue,
                            &item,
                            source,
                            UPLOAD_GONE_RESTART,
                            progress,
                            self.retry_policy().clock.now(),
                        )
                        .await
                        .map_err(queue_err)?;
                    }
                }
            }
        }
        let target = match target {
            Some(t) => t,
            None => {
                let (t, _) = self
                    .with_retry(None, |_| async {
                        job.api
                            .create(&request, self.retry_policy().clock.now())
                            .await
                            .map_err(retry_err)
                    })
                    .await?;
                job.queue
                    .set_upload(job.item_id, &t.upload_id, part_size)
                    .map_err(queue_err)?;
                t
            }
        };

        let outcome = self
            .send_parts_and_complete(file, &target, part_size, md5s, done, sha256_pass, &job)
            .await;
        match outcome {
            Ok((etag, sha256, bytes_sent)) => {
                progress(TransferEvent::Acknowledged { bytes: file.size });
                let location = job.api.location(&target.key);
                Ok(UploadReceipt {
                    key: target.key,
                    size: file.size,
                    sha256: hex(&sha256),
                    etag: Some(etag),
                    attempts: 1,
                    location,
                    bytes_sent,
                })
            }
            Err(e @ TransferError::Paused) => Err(e),
            Err(e) => {
                // Nothing may stay behind: cancelled and failed uploads are aborted.
                let _ = job
                    .api
                    .abort(&target, self.retry_policy().clock.now())
                    .await;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send_parts_and_complete(
        &self,
        file: &CheckedFile,
        target: &MultipartTarget,
        part_size: u64,
        md5s: BTreeMap<u32, [u8; 16]>,
        done: BTreeMap<u32, String>,
        sha256_pass: Sha256Pass,
        job: &MultipartJob<'_>,
    ) -> Result<(String, [u8; 32], u64), TransferError> {
        let total_parts = part_count(file.size, part_size);
        let md5s = Arc::new(Mutex::new(md5s));
        let acked_bytes: u64 = done
            .keys()
            .map(|n| part_len(file.size, part_size, *n))
            .sum();
        let in_flight: Arc<Mutex<BTreeMap<u32, u64>>> = Arc::default();
        let sent_total = Arc::new(std::sync::atomic::AtomicU64::new(0));
        (job.progress)(TransferEvent::Sent {
            bytes: acked_bytes,
            total: file.size,
        });
        let etags = Arc::new(Mutex::new(done));
        let missing: Vec<u32> = (1..=total_parts)
            .filter(|n| !etags.lock().map(|e| e.contains_key(n)).unwrap_or(false))
            .collect();
        let acked_base = Arc::new(Mutex::new(acked_bytes));
        let control = job.control;
        // Once stopped, no new part starts.
        let next_parts = missing
            .into_iter()
            .take_while(move |_| !control.is_stopped());
        let send_all = stream::iter(next_parts.map(Ok::<u32, TransferError>))
            .map_ok(|n| {
                let in_flight = in_flight.clone();
                let acked_base = acked_base.clone();
                let etags = etags.clone();
                let sent_total = sent_total.clone();
                let md5s = md5s.clone();
                async move {
                    let _permit = job
                        .parts_limit
                        .acquire()
                        .await
                        .map_err(|_| TransferError::Paused)?;
                    let range = FileRange {
                        offset: (n as u64 - 1) * part_size,
                        len: part_len(file.size, part_size, n),
                    };
                    let md5 = part_md5(file, part_size, n).await?;
                    let md5_b64 = base64_of(&md5);
                    let outer = job.progress.clone();
                    let file_size = file.size;
                    let (inf, base) = (in_flight.clone(), acked_base.clone());
                    let part_progress: ProgressFn = Arc::new(move |e| {
                        if let TransferEvent::Sent { bytes, .. } = e {
                            let mut m = inf.lock().unwrap_or_else(|p| p.into_inner());
                            m.insert(n, bytes);
                            let sum: u64 = m.values().sum::<u64>()
                                + *base.lock().unwrap_or_else(|p| p.into_inner());
                            outer(TransferEvent::Sent {
                                bytes: sum,
                                total: file_size,
                            });
                        } else if let TransferEvent::Retrying { .. } = e {
                            outer(e);
                        }
                    });
                    let (answer, _) = self
                        .with_retry(Some(job.progress), |_| async {
                            let presigned = job
                                .api
                                .sign_part(
                                    target,
                                    n,
                                    &md5_b64,
                                    range.len,
                                    self.retry_policy().clock.now(),
                                )
                                .await
                                .map_err(retry_err)?;
                            in_flight
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(n, 0);
                            let a = self
                                .send(
                                    file,
                                    Payload::Range(range),
                                    &presigned,
                                    None,
                                    &md5_b64,
                                    &part_progress,
                                )
                                .await
                                .map_err(AttemptError::Retry)?;
                            sent_total.fetch_add(range.len, std::sync::atomic::Ordering::Relaxed);
                            // The part's ETag is its MD5: anything else is corruption in transit.
                            match &a.etag {
                                Some(e) if !e.is_empty() && e.trim_matches('"') != hex(&md5) => {
                                    Err(AttemptError::Retry(S3Failure::local(
                                        FailureKind::Transient,
                                        format!("part {n} arrived with ETag {e}, not its MD5"),
                                    )))
                                }
                                _ => Ok(a),
                            }
                        })
                        .await?;
                    let etag = format!(
                        "\"{}\"",
                        answer
                            .etag
                            .as_deref()
                            .unwrap_or(&hex(&md5))
                            .trim_matches('"')
                    );
                    job.queue
                        .part_done(
                            job.item_id,
                            &PartRecord {
                                part_number: n,
                                etag: etag.clone(),
                                md5_hex: hex(&md5),
                                size: range.len,
                            },
                        )
                        .map_err(queue_err)?;
                    etags
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(n, etag);
                    md5s.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(n, md5);
                    in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&n);
                    *acked_base.lock().unwrap_or_else(|p| p.into_inner()) += range.len;
                    Ok::<(), TransferError>(())
                }
            })
            .try_buffer_unordered(PARTS_IN_FLIGHT_PER_FILE)
            .try_collect::<Vec<()>>();
        tokio::pin!(send_all);
        tokio::select! {
            r = &mut send_all => { r?; }
            () = job.control.stopped() => {
                if matches!(job.control.stop_error(), TransferError::Cancelled) {
                    // Parts in flight finish before the abort goes out: a part still being
                    // written when the abort arrives can stay behind (S3 documents the same race).
                    let _ = tokio::time::timeout(CANCEL_DRAIN, &mut send_all).await;
                }
                return Err(job.control.stop_error());
            }
        }
        if job.control.is_stopped() {
            return Err(job.control.stop_error());
        }
        let (sha256, len) = sha256_pass.finish().await?;
        if len != file.size {
            return Err(TransferError::SourceChanged);
        }
        source_unchanged(file).await?;

        let parts: Vec<(u32, String)> = etags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(n, e)| (*n, e.clone()))
            .collect();
        let md5s: Vec<[u8; 16]> = md5s
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .copied()
            .collect();
        if md5s.len() != total_parts as usize {
            return Err(TransferError::Integrity(format!(
                "{} of {total_parts} parts were acknowledged",
                md5s.len()
            )));
        }
        let expected = multipart_etag(&md5s);
        let parts = &parts;
        let expected_ref = &expected;
        let (etag, _) = self
            .with_retry(None, |attempt| async move {
                let now = self.retry_policy().clock.now();
                // A lost answer to an earlier Complete: ask S3 before completing again.
                if attempt > 1 {
                    if let Ok(Some(info)) = job.api.head(&target.key, now).await {
                        if info.etag == *expected_ref {
                            return Ok(Some(info.etag));
                        }
                    }
                }
                job.api
                    .complete(target, parts, now)
                    .await
                    .map_err(retry_err)
            })
            .await?;
        let etag = match etag {
            Some(e) => e,
            None => expected.clone(),
        };
        if etag.trim_matches('"') != expected {
            return Err(TransferError::Integrity(format!(
                "S3 reports ETag {etag} for the completed object, the parts make {expected}"
            )));
        }
        Ok((
            expected,
            sha256,
            sent_total.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }
}

/// The MD5 of part `n`, read on a blocking thread.
async fn part_md5(file: &CheckedFile, part_size: u64, n: u32) -> Result<[u8; 16], TransferError> {
    let path = file.path.clone();
    let offset = (n as u64 - 1) * part_size;
    let len = part_len(file.size, part_size, n);
    tokio::task::spawn_blocking(move || {
        let (md5, read) = hash_range::<Md5>(&path, offset, len, &AtomicBool::new(false))?;
        if read < len {
            return Err(TransferError::SourceChanged);
        }
        Ok(md5.into())
    })
    .await
    .map_err(|e| TransferError::Read(e.to_string()))?
}

/// Fails with [`TransferError::SourceChanged`] when the file's size or modification time moved.
async fn source_unchanged(file: &CheckedFile) -> Result<(), TransferError> {
    let meta = tokio::fs::metadata(&file.path)
        .await
        .map_err(|e| TransferError::Read(e.to_string()))?;
    if file.is_unchanged(&meta) {
        Ok(())
    } else {
        Err(TransferError::SourceChanged)
    }
}

/// The whole file's SHA-256, computed on its own thread while the parts are sent. Dropping it
/// (a failed or stopped upload) stops the reading.
struct Sha256Pass {
    handle: tokio::task::JoinHandle<Result<([u8; 32], u64), TransferError>>,
    stop: Arc<AtomicBool>,
}

impl Sha256Pass {
    fn start(file: &CheckedFile) -> Self {
        let path = file.path.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let (sha256, len) = hash_range::<Sha256>(&path, 0, u64::MAX, &stopped)?;
            Ok((sha256.into(), len))
        });
        Sha256Pass { handle, stop }
    }

    async fn finish(mut self) -> Result<([u8; 32], u64), TransferError> {
        (&mut self.handle)
            .await
            .map_err(|e| TransferError::Read(e.to_string()))?
    }
}

impl Drop for Sha256Pass {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn part_len(size: u64, part_size: u64, n: u32) -> u64 {
    let start = (n as u64 - 1) * part_size;
    part_size.min(size.saturating_sub(start))
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_s3_limits() {
        assert_eq!(
            part_size_for(100 * MIB, DEFAULT_PART_SIZE).unwrap(),
            8 * MIB
        );
        assert_eq!(part_size_for(100 * MIB, MIB).unwrap(), MIN_PART_SIZE);
        // More than 10,000 parts at the minimum size: the part grows.
        let size = 10_001 * MIN_PART_SIZE;
        let p = part_size_for(size, MIN_PART_SIZE).unwrap();
        assert!(
            p > MIN_PART_SIZE && part_count(size, p) as u64 <= MAX_PARTS,
            "{p}"
        );
        let max = part_size_for(MAX_OBJECT_SIZE, DEFAULT_PART_SIZE).unwrap();
        assert!(part_count(MAX_OBJECT_SIZE, max) as u64 <= MAX_PARTS && max <= MAX_PART_SIZE);
        assert!(part_size_for(MAX_OBJECT_SIZE + 1, DEFAULT_PART_SIZE).is_err());
        assert_eq!(part_count(0, MIN_PART_SIZE), 1);
        assert_eq!(part_count(MIN_PART_SIZE + 1, MIN_PART_SIZE), 2);
    }

    #[test]
    fn multipart_etag_follows_s3() {
        // Two parts whose MD5s are known: the ETag is MD5(md5a || md5b) + "-2".
        let a: [u8; 16] = Md5::digest(b"a").into();
        let b: [u8; 16] = Md5::digest(b"b").into();
        let mut joined = a.to_vec();
        joined.extend_from_slice(&b);
        assert_eq!(
            multipart_etag(&[a, b]),
            format!("{}-2", hex(&Md5::digest(&joined)))
        );
    }

    #[test]
    fn last_part_is_the_remainder() {
        assert_eq!(part_len(11, 5, 1), 5);
        assert_eq!(part_len(11, 5, 3), 1);
    }
}
