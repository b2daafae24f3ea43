//! Multipart uploads: large files in parts, several in flight, each part retried and signed
//! afresh on its own, with every acknowledged part journaled (the [`Journal`] the queue
//! implements) so that a crash loses at most the parts in flight.
//!
//! One concept, one file: a multipart upload from create to complete (or abort), with its
//! part scheduling, journaling and checks side by side.
//!
//! Integrity: each part goes with its flexible checksum (signed where the signer signs it, so
//! the store verifies it) and the whole object's checksum goes to Complete (CRCs combined from
//! the parts' without reading again). A part is proved when the store answers with its
//! checksum (compared with Hoist's) or, where S3's rules make it one, with an ETag equal to its
//! MD5. MD5 is what most stores check and the only proof on stores that check no part checksum
//! (s3s-fs), so parts carry `Content-MD5` until the store has answered a part of this upload
//! with its checksum; after that the MD5 (the costliest digest) is no longer computed.
//!
//! Nothing waits for a pass over the whole file: each part is hashed just before it is sent,
//! so the first byte leaves at once even for a file of many GiB. No whole-file SHA-256 is
//! computed: the store-verified checksum proves the object, and SHA-256 over every byte cost
//! about a third of the client's CPU (BENCHMARKS.md). The file's size and modification
//! time are checked before every part and before Complete, so a file that changes under the
//! upload fails it instead of landing half old, half new.
//!
//! A part of up to [`super::digest::KEEP_PART_MAX`] is read once: its digests are computed
//! and its bytes kept, and a retry sends the same bytes — what is sent is what was hashed, and
//! reading it again cost about a quarter of the client's CPU. Larger parts (files beyond about
//! 160 GiB) are read again to be sent, one [`super::CHUNK_SIZE`] buffer at a time. Parts in
//! flight are capped by the session's concurrency, and so is the memory they hold.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::stream::{self, TryStreamExt};
use tokio::sync::Semaphore;

use super::attempt::{with_retry, AttemptError};
use super::control::Control;
use super::digest::{base64_of, part_digest, source_unchanged};
use super::journal::Journal;
use super::parts::{multipart_etag, PartPlan, PARTS_IN_FLIGHT_PER_FILE};
use super::put::{Payload, PutBody};
use super::resume::{reconcile, Journaled, RemoteParts, RestartReason, ResumePlan, SourceFacts};
use super::types::{CheckedBy, Integrity, ProgressFn, TransferError, TransferEvent, UploadReceipt};
use super::Uploader;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::queue::{PartRecord, QueueItem};
use crate::remote::{CompletedPart, MultipartApi, MultipartTarget, PartToSign, RemoteFailure};
use crate::retry::FailureKind;
use crate::sign::PutRequest;
use crate::validate::CheckedFile;

/// How long a cancel waits for the parts in flight before it aborts the upload.
const CANCEL_DRAIN: Duration = Duration::from_secs(30);

/// What a multipart upload needs besides the file.
pub struct MultipartJob<'a> {
    /// Where the parts go.
    pub api: &'a dyn MultipartApi,
    /// Where the upload and its parts are journaled (the file's queue item).
    pub journal: &'a dyn Journal,
    /// Caps parts in flight over all files of a session.
    pub parts_limit: &'a Semaphore,
    /// Caps the parts held in memory over all files of a session, in MiB.
    pub part_memory: &'a Semaphore,
    /// The part size to use unless the file needs larger ones.
    pub preferred_part_size: u64,
    /// Pauses or cancels this upload.
    pub control: &'a Control,
    /// Hears of the upload's progress.
    pub progress: &'a ProgressFn,
}

/// An upload the store holds, and the parts of it to keep (none for a new upload).
struct Resumed {
    target: MultipartTarget,
    etags: BTreeMap<u32, String>,
    md5s: BTreeMap<u32, [u8; 16]>,
    checksums: BTreeMap<u32, Checksum>,
    /// Every part was journaled and the store no longer lists the upload: it may have been
    /// completed (a crash after Complete, its answer lost). Complete asks first.
    maybe_completed: bool,
}

impl Uploader {
    /// Uploads `file` to `key` in parts, resuming the item's unfinished upload when there is one.
    pub async fn upload_multipart(
        &self,
        file: &CheckedFile,
        place: &super::Placement,
        job: MultipartJob<'_>,
    ) -> Result<UploadReceipt, TransferError> {
        let plan = PartPlan::for_file(file.size, job.preferred_part_size)
            .map_err(|e| TransferError::Rejected(e.to_string()))?;
        // The journal must know the file: parts recorded against nothing could not resume.
        let item = job
            .journal
            .item()?
            .ok_or_else(|| TransferError::Read("the queue item vanished".into()))?;
        let resumed = self.resume(file, &item, plan, &job).await?;
        let (resumed, was_resumed) = match resumed {
            Some(r) => (r, true),
            None => (self.fresh(file, place, plan, &job).await?, false),
        };
        match self.send_all(file, plan, &job, resumed).await {
            // The upload being continued vanished under it (a crash during Complete, an
            // expiry): forget it and start over, once.
            Err(TransferError::UploadGone) if was_resumed => {
                if let Some(item) = job.journal.item()? {
                    self.restart(&item, RestartReason::UploadGone, &job).await?;
                }
                let fresh = self.fresh(file, place, plan, &job).await?;
                self.send_all(file, plan, &job, fresh).await
            }
            other => other,
        }
    }

    /// Forgets the item's upload (aborting it where `reason` says) and records why.
    async fn restart(
        &self,
        item: &QueueItem,
        reason: RestartReason,
        job: &MultipartJob<'_>,
    ) -> Result<(), TransferError> {
        super::resume::restart(
            Some(job.api),
            &*self.retry_policy().clock,
            item,
            job.journal,
            SourceFacts::of_item(item),
            reason,
            job.progress,
        )
        .await
    }

    /// A new upload, with nothing acknowledged yet.
    async fn fresh(
        &self,
        file: &CheckedFile,
        place: &super::Placement,
        plan: PartPlan,
        job: &MultipartJob<'_>,
    ) -> Result<Resumed, TransferError> {
        Ok(Resumed {
            target: self.create(file, place, plan, job).await?,
            etags: BTreeMap::new(),
            md5s: BTreeMap::new(),
            checksums: BTreeMap::new(),
            maybe_completed: false,
        })
    }

    /// Sends what `resumed` lacks and completes; a cancelled upload, or one that failed for
    /// good, is aborted.
    async fn send_all(
        &self,
        file: &CheckedFile,
        plan: PartPlan,
        job: &MultipartJob<'_>,
        resumed: Resumed,
    ) -> Result<UploadReceipt, TransferError> {
        let ledger = Ledger::new(resumed, plan);
        let run = PartRun {
            uploader: self,
            file,
            plan,
            job,
            ledger: Arc::new(Mutex::new(ledger)),
        };
        let target = run.ledger().target.clone();
        match run.send_and_complete().await {
            Ok(done) => {
                (job.progress)(TransferEvent::Acknowledged { bytes: file.size });
                let (key, verified) = super::verdict::landed(target.key, done.verdict)?;
                Ok(UploadReceipt {
                    location: job.api.location(&key),
                    key,
                    verified,
                    size: file.size,
                    sha256: None,
                    etag: Some(done.etag),
                    integrity: Some(done.integrity),
                    encryption: done.encryption,
                    attempts: 1,
                    bytes_sent: done.bytes_sent,
                })
            }
            Err(e @ (TransferError::Paused | TransferError::UploadGone)) => Err(e),
            // The store or backend could not be reached for now: the parts it holds stay for
            // the resume once it can (a backend outage throws nothing away).
            Err(e) if e.is_out_of_reach() => Err(e),
            Err(e) => {
                // Nothing may stay behind: cancelled and failed uploads are aborted.
                let _ = job
                    .api
                    .abort_completely(&target, &*self.retry_policy().clock)
                    .await;
                Err(e)
            }
        }
    }

    /// The item's unfinished upload and the parts of it to keep, or `None` when there is none
    /// to resume (it was restarted when it no longer fits the file).
    async fn resume(
        &self,
        file: &CheckedFile,
        item: &QueueItem,
        plan: PartPlan,
        job: &MultipartJob<'_>,
    ) -> Result<Option<Resumed>, TransferError> {
        let journaled = job.journal.parts()?;
        let journal = Journaled {
            upload_id: item.upload_id.as_deref(),
            part_size: item.part_size,
            parts: &journaled,
        };
        let target = item.upload_id.as_ref().map(|id| MultipartTarget {
            key: item.key.clone(),
            upload_id: id.clone(),
        });
        let mut remote = RemoteParts::NotAsked;
        let mut hashed = BTreeMap::new();
        loop {
            match reconcile(&journal, &remote, plan, &hashed) {
                ResumePlan::Start => return Ok(None),
                ResumePlan::Hash(parts) => {
                    for n in parts {
                        let digest = part_digest(file, plan, n, self.checksum, true, false).await?;
                        hashed.insert(n, digest);
                    }
                }
                ResumePlan::ListParts => {
                    let Some(target) = &target else {
                        return Ok(None);
                    };
                    let listed = with_retry(&self.retry, None, |_| async {
                        Ok(job.api.list_parts(target, self.now()).await?)
                    })
                    .await;
                    remote = match listed {
                        Ok((parts, _)) => RemoteParts::Listed(parts),
                        // Unreachable is not gone: the upload is kept for when it answers.
                        Err(e) if e.is_out_of_reach() => return Err(e),
                        // Every part journaled (and still the file's, as hashed above) and the
                        // upload gone: completed before, most likely. Complete is asked again
                        // before anything starts over, so the file does not land twice.
                        Err(_) if journaled.len() == plan.count() as usize => {
                            return Ok(Some(Resumed::journaled(target.clone(), &journaled)));
                        }
                        Err(_) => RemoteParts::Gone,
                    };
                }
                ResumePlan::Restart(reason) => {
                    self.restart(item, reason, job).await?;
                    return Ok(None);
                }
                ResumePlan::Resume(etags) => {
                    hashed.retain(|n, _| etags.contains_key(n));
                    let md5s = hashed
                        .iter()
                        .filter_map(|(n, d)| Some((*n, d.md5?)))
                        .collect();
                    let checksums = hashed.into_iter().map(|(n, d)| (n, d.checksum)).collect();
                    let Some(target) = target else {
                        return Ok(None);
                    };
                    return Ok(Some(Resumed {
                        target,
                        etags,
                        md5s,
                        checksums,
                        maybe_completed: false,
                    }));
                }
            }
        }
    }

    /// Creates a new upload and journals it.
    async fn create(
        &self,
        file: &CheckedFile,
        place: &super::Placement,
        plan: PartPlan,
        job: &MultipartJob<'_>,
    ) -> Result<MultipartTarget, TransferError> {
        let request = PutRequest {
            key: place.key.clone(),
            relative_path: place.relative_path.clone(),
            drop_id: place.drop_id.clone(),
            assigned: None,
            file_name: crate::key::sanitize_name(&file.file_name),
            content_type: file.content_type.clone(),
            size: file.size,
            sha256_b64: String::new(),
            md5_b64: String::new(),
            part_size: Some(plan.part_size),
            // The algorithm the upload is created with (its value comes with each part).
            checksum: Some(Checksum {
                algorithm: self.checksum,
                value: String::new(),
            }),
            object: self.object.headers(),
        };
        let request = &request;
        let (target, _) = with_retry(&self.retry, None, |_| async move {
            Ok(job.api.create(request, self.now()).await?)
        })
        .await?;
        // The key too: a backend chooses its own, and the upload is found again by both.
        job.journal.multipart_created(&target, plan.part_size)?;
        Ok(target)
    }
}

/// Where the parts of one upload stand; shared by the parts in flight.
struct Ledger {
    target: MultipartTarget,
    /// Acknowledged parts: number → quoted ETag.
    etags: BTreeMap<u32, String>,
    /// MD5s of the acknowledged parts.
    md5s: BTreeMap<u32, [u8; 16]>,
    /// Flexible checksums of the acknowledged parts.
    checksums: BTreeMap<u32, Checksum>,
    /// Bytes of the acknowledged parts.
    acked_bytes: u64,
    /// Bytes sent so far of each part in flight.
    in_flight: BTreeMap<u32, u64>,
    /// Bytes this run sent (a retried part counts once).
    bytes_sent: u64,
    /// Every acknowledged part's ETag is its MD5 (S3's rule, unless the bucket encrypts with
    /// KMS or a customer key): only then does the completed object's ETag prove its parts.
    etags_are_md5: bool,
    /// The upload may have been completed before (see [`Resumed`]).
    maybe_completed: bool,
    /// The store has answered a part of this upload with its checksum (equal to Hoist's): it
    /// computes part checksums, so later parts need no MD5.
    store_checks_checksums: bool,
    /// Every part this run sent was proved by the checksum the store answered.
    parts_proved_by_checksum: bool,
}

impl Resumed {
    /// The upload `target` with every part as journaled.
    fn journaled(target: MultipartTarget, parts: &[crate::queue::PartRecord]) -> Self {
        let md5 = |p: &crate::queue::PartRecord| -> Option<[u8; 16]> {
            let raw = (0..p.md5_hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(p.md5_hex.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?;
            raw.try_into().ok()
        };
        Self {
            target,
            etags: parts
                .iter()
                .map(|p| (p.part_number, p.etag.clone()))
                .collect(),
            md5s: parts
                .iter()
                .filter_map(|p| Some((p.part_number, md5(p)?)))
                .collect(),
            checksums: parts
                .iter()
                .filter_map(|p| Some((p.part_number, p.checksum.clone()?)))
                .collect(),
            maybe_completed: true,
        }
    }
}

impl Ledger {
    fn new(resumed: Resumed, plan: PartPlan) -> Self {
        let acked_bytes = resumed.etags.keys().map(|n| plan.range(*n).len).sum();
        let etags_are_md5 = resumed.etags.iter().all(|(n, e)| {
            resumed
                .md5s
                .get(n)
                .is_some_and(|m| e.trim_matches('"') == hex::encode(m))
        });
        Self {
            etags_are_md5,
            maybe_completed: resumed.maybe_completed,
            store_checks_checksums: false,
            parts_proved_by_checksum: true,
            target: resumed.target,
            etags: resumed.etags,
            md5s: resumed.md5s,
            checksums: resumed.checksums,
            acked_bytes,
            in_flight: BTreeMap::new(),
            bytes_sent: 0,
        }
    }

    /// Bytes acknowledged plus bytes in flight.
    fn progress(&self) -> u64 {
        self.acked_bytes + self.in_flight.values().sum::<u64>()
    }
}

/// What a completed upload proved.
struct Completed {
    etag: String,
    bytes_sent: u64,
    integrity: Integrity,
    encryption: Option<String>,
    verdict: Option<crate::sign::Verdict>,
}

/// What Complete gave: the object's ETag, what proved it, the encryption the store reported.
struct Proved {
    etag: String,
    integrity: Integrity,
    encryption: Option<String>,
    verdict: Option<crate::sign::Verdict>,
}

/// One multipart upload's parts being sent and completed.
struct PartRun<'a> {
    uploader: &'a Uploader,
    file: &'a CheckedFile,
    plan: PartPlan,
    job: &'a MultipartJob<'a>,
    ledger: Arc<Mutex<Ledger>>,
}

impl PartRun<'_> {
    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn send_and_complete(&self) -> Result<Completed, TransferError> {
        let control = self.job.control;
        let acked = self.ledger().progress();
        (self.job.progress)(TransferEvent::Sent {
            bytes: acked,
            total: self.file.size,
        });
        self.send_missing_parts().await?;
        if control.is_stopped() {
            return Err(control.stop_error());
        }
        source_unchanged(self.file).await?;
        let proved = self.complete().await?;
        let bytes_sent = self.ledger().bytes_sent;
        Ok(Completed {
            etag: proved.etag,
            bytes_sent,
            integrity: proved.integrity,
            encryption: proved.encryption,
            verdict: proved.verdict,
        })
    }

    /// Sends every part not yet acknowledged, [`PARTS_IN_FLIGHT_PER_FILE`] at a time; stops
    /// starting parts once paused or cancelled.
    async fn send_missing_parts(&self) -> Result<(), TransferError> {
        let control = self.job.control;
        let missing: Vec<u32> = {
            let ledger = self.ledger();
            (1..=self.plan.count())
                .filter(|n| !ledger.etags.contains_key(n))
                .collect()
        };
        let next_parts = missing.into_iter().take_while(|_| !control.is_stopped());
        let send_all = stream::iter(next_parts.map(Ok))
            .map_ok(|n| self.send_part(n))
            .try_buffer_unordered(PARTS_IN_FLIGHT_PER_FILE)
            .try_collect::<Vec<()>>();
        tokio::pin!(send_all);
        tokio::select! {
            r = &mut send_all => r.map(drop),
            () = control.stopped() => {
                if control.is_cancelled() {
                    // Parts in flight finish before the abort goes out: a part still being
                    // written when the abort arrives can stay behind (S3 documents the same race).
                    let _ = tokio::time::timeout(CANCEL_DRAIN, &mut send_all).await;
                }
                Err(control.stop_error())
            }
        }
    }

    /// Sends part `n` with its own retry loop and journals it once acknowledged.
    async fn send_part(&self, n: u32) -> Result<(), TransferError> {
        let _permit = self
            .job
            .parts_limit
            .acquire()
            .await
            .map_err(|_| TransferError::Paused)?;
        let range = self.plan.range(n);
        // A part kept in memory (read once, sent from the bytes) holds its share of the
        // session's budget until it is acknowledged.
        let _memory = if range.len <= super::digest::KEEP_PART_MAX {
            let mib = u32::try_from(range.len.div_ceil(1024 * 1024)).unwrap_or(u32::MAX);
            Some(
                self.job
                    .part_memory
                    .acquire_many(mib.max(1))
                    .await
                    .map_err(|_| TransferError::Paused)?,
            )
        } else {
            None
        };
        let with_md5 = !self.ledger().store_checks_checksums;
        let digest = part_digest(
            self.file,
            self.plan,
            n,
            self.uploader.checksum,
            with_md5,
            true,
        )
        .await?;
        let md5 = digest.md5;
        let md5_b64 = md5.map(|m| base64_of(&m));
        let part_progress = self.part_progress(n);
        // The bytes hashed are the bytes sent, read once (a large part is read again).
        let payload = match &digest.bytes {
            Some(bytes) => Payload::Bytes(bytes.clone()),
            None => Payload::Range(range),
        };
        let (md5_b64, part_progress, checksum, payload) = (
            md5_b64.as_deref(),
            &part_progress,
            &digest.checksum,
            &payload,
        );
        let (etag, _) = with_retry(
            &self.uploader.retry,
            Some(self.job.progress),
            |_| async move {
                let target = self.ledger().target.clone();
                let presigned = self
                    .job
                    .api
                    .sign_part(
                        &target,
                        &PartToSign {
                            number: n,
                            len: range.len,
                            md5_b64,
                            checksum: Some(checksum),
                        },
                        self.uploader.now(),
                    )
                    .await?;
                self.ledger().in_flight.insert(n, 0);
                let body = PutBody {
                    file: self.file,
                    payload: payload.clone(),
                    content_type: None,
                    md5_b64,
                    checksum: Some(checksum),
                };
                let answer = match self.uploader.put(body, &presigned, part_progress).await {
                    Err(AttemptError::Retry(f)) if f.code == "NoSuchUpload" => {
                        return Err(AttemptError::Fatal(TransferError::UploadGone));
                    }
                    other => other?,
                };
                // A part checksum the store echoes must be this part's.
                let echoed = answer
                    .checksums
                    .iter()
                    .find(|c| c.algorithm == checksum.algorithm);
                if let Some(echoed) = echoed {
                    if echoed.value != checksum.value {
                        return Err(AttemptError::Retry(RemoteFailure::local(
                            FailureKind::Transient,
                            format!(
                                "part {n} arrived with {} {}, not its {}",
                                echoed.algorithm, echoed.value, checksum.value
                            ),
                        )));
                    }
                }
                {
                    let mut ledger = self.ledger();
                    ledger.bytes_sent += range.len;
                    ledger.etags_are_md5 &= answer.etag_is_md5;
                    ledger.store_checks_checksums |= echoed.is_some();
                    ledger.parts_proved_by_checksum &= echoed.is_some();
                }
                // Where the part's ETag is its MD5, anything else is corruption in transit;
                // elsewhere S3 checked the part against its Content-MD5 or its checksum.
                match (answer.etag, md5) {
                    (Some(e), Some(md5))
                        if answer.etag_is_md5
                            && !e.is_empty()
                            && e.trim_matches('"') != hex::encode(md5) =>
                    {
                        Err(AttemptError::Retry(RemoteFailure::local(
                            FailureKind::Transient,
                            format!("part {n} arrived with ETag {e}, not its MD5"),
                        )))
                    }
                    (Some(e), _) if !e.is_empty() => Ok(format!("\"{}\"", e.trim_matches('"'))),
                    (_, Some(md5)) => Ok(format!("\"{}\"", hex::encode(md5))),
                    _ => Err(AttemptError::Fatal(TransferError::Integrity(format!(
                        "the store acknowledged part {n} without an ETag"
                    )))),
                }
            },
        )
        .await?;
        let record = PartRecord {
            part_number: n,
            etag: etag.clone(),
            md5_hex: md5.map(hex::encode).unwrap_or_default(),
            checksum: Some(digest.checksum.clone()),
            size: range.len,
        };
        self.job.journal.part_acknowledged(&record)?;
        let mut ledger = self.ledger();
        ledger.etags.insert(n, etag);
        if let Some(md5) = md5 {
            ledger.md5s.insert(n, md5);
        }
        ledger.checksums.insert(n, digest.checksum.clone());
        ledger.in_flight.remove(&n);
        ledger.acked_bytes += range.len;
        Ok(())
    }

    /// Progress of part `n`, reported as the file's: acknowledged bytes plus every part in
    /// flight; retries pass through.
    fn part_progress(&self, n: u32) -> ProgressFn {
        let (outer, ledger, total) = (
            Arc::clone(self.job.progress),
            Arc::clone(&self.ledger),
            self.file.size,
        );
        Arc::new(move |e| match e {
            TransferEvent::Sent { bytes, .. } => {
                let sum = {
                    let mut l = ledger.lock().unwrap_or_else(|p| p.into_inner());
                    l.in_flight.insert(n, bytes);
                    l.progress()
                };
                outer(TransferEvent::Sent { bytes: sum, total });
            }
            TransferEvent::Retrying { .. } | TransferEvent::Waiting { .. } => outer(e),
            _ => {}
        })
    }

    /// Completes the upload (with the parts' checksums and, for a full-object checksum, the
    /// whole file's, which the store verifies); returns the object's ETag and what proved it.
    async fn complete(&self) -> Result<Proved, TransferError> {
        let algorithm = self.uploader.checksum;
        let maybe_completed = self.ledger().maybe_completed;
        let (target, parts, md5s, etags_are_md5, by_checksum) = {
            let l = self.ledger();
            let parts: Vec<CompletedPart> = l
                .etags
                .iter()
                .map(|(n, e)| CompletedPart {
                    number: *n,
                    etag: e.clone(),
                    checksum: l.checksums.get(n).cloned(),
                })
                .collect();
            let md5s: Vec<[u8; 16]> = l.md5s.values().copied().collect();
            let by_checksum = l.parts_proved_by_checksum;
            (l.target.clone(), parts, md5s, l.etags_are_md5, by_checksum)
        };
        let total_parts = self.plan.count();
        if parts.len() != total_parts as usize {
            return Err(TransferError::Integrity(format!(
                "{} of {total_parts} parts were acknowledged",
                parts.len()
            )));
        }
        // The object's ETag by the multipart rule, when every part's MD5 is known.
        let expected = (md5s.len() == parts.len()).then(|| multipart_etag(&md5s));
        let whole = self.whole_checksum(&parts);
        let (target, parts, expected_ref) = (&target, &parts, &expected);
        let (api, size, whole_ref) = (self.job.api, self.file.size, whole.as_ref());
        let (completion, _) = with_retry(&self.uploader.retry, None, |attempt| async move {
            let now = self.uploader.now();
            // A lost answer to an earlier Complete (in this run, or before a crash): ask the
            // store before completing again.
            if attempt > 1 || maybe_completed {
                if let Ok(Some(info)) = api.head(&target.key, now).await {
                    let ours = match (etags_are_md5, expected_ref) {
                        (true, Some(e)) => info.etag == *e,
                        _ => info.size == size && info.etag.ends_with(&format!("-{}", parts.len())),
                    };
                    if ours {
                        return Ok(crate::remote::Completion {
                            etag: Some(info.etag),
                            ..Default::default()
                        });
                    }
                }
            }
            match api.complete(target, parts, whole_ref, now).await {
                // The upload is gone and its object is not there: it starts over.
                Err(f)
                    if maybe_completed && (f.code == "NoSuchUpload" || f.status == Some(404)) =>
                {
                    Err(AttemptError::Fatal(TransferError::UploadGone))
                }
                done => Ok(done?),
            }
        })
        .await?;
        let etag = completion
            .etag
            .clone()
            .or_else(|| expected.clone())
            .unwrap_or_default();
        let etag = etag.trim_matches('"').to_string();
        let encryption = completion.encryption.clone();
        let verdict = completion.verdict.clone();
        if let Some(stored) = &completion.checksum {
            let integrity = self.checked_object_checksum(stored, whole.as_ref(), parts)?;
            return Ok(Proved {
                etag,
                integrity,
                encryption,
                verdict,
            });
        }
        if let (true, Some(expected)) = (etags_are_md5, &expected) {
            if etag != *expected {
                return Err(TransferError::Integrity(format!(
                    "S3 reports ETag {etag} for the completed object, the parts make {expected}"
                )));
            }
            // Hoist checked the object's ETag against the parts' MD5s.
            let integrity = Integrity {
                algorithm: "md5".into(),
                value: etag.clone(),
                checked_by: CheckedBy::Hoist,
            };
            return Ok(Proved {
                etag,
                integrity,
                encryption,
                verdict,
            });
        }
        let integrity = match (by_checksum, whole) {
            // Every part came back with the checksum Hoist computed for it.
            (true, Some(whole)) => Integrity {
                algorithm: algorithm.name().into(),
                value: whole.value,
                checked_by: CheckedBy::Hoist,
            },
            (true, None) => Integrity {
                algorithm: algorithm.name().into(),
                value: composite_checksum(algorithm, parts)?,
                checked_by: CheckedBy::Hoist,
            },
            // Each part went with its Content-MD5, which the store checked.
            (false, _) => Integrity {
                algorithm: "md5".into(),
                value: etag.clone(),
                checked_by: CheckedBy::Storage,
            },
        };
        Ok(Proved {
            etag,
            integrity,
            encryption,
            verdict,
        })
    }

    /// The whole file's full-object checksum (the CRCs), combined from its parts' checksums.
    fn whole_checksum(&self, parts: &[CompletedPart]) -> Option<Checksum> {
        let algorithm = self.uploader.checksum;
        if !algorithm.full_object() {
            return None;
        }
        let pieces: Option<Vec<(&Checksum, u64)>> = parts
            .iter()
            .map(|p| Some((p.checksum.as_ref()?, self.plan.range(p.number).len)))
            .collect();
        algorithm.combine(pieces?)
    }

    /// Compares the object checksum the store recorded with the file's: a full-object checksum
    /// with the whole file's (which the store itself verified on Complete), a composite one
    /// (`value-N`) with the checksum of the parts' checksums, which Hoist computes.
    fn checked_object_checksum(
        &self,
        stored: &Checksum,
        whole: Option<&Checksum>,
        parts: &[CompletedPart],
    ) -> Result<Integrity, TransferError> {
        let (expected, checked_by) = match stored.value.split_once('-') {
            None => (
                whole.map(|w| w.value.clone()).unwrap_or_default(),
                CheckedBy::Storage,
            ),
            Some(_) => (
                composite_checksum(stored.algorithm, parts)?,
                CheckedBy::Hoist,
            ),
        };
        if stored.algorithm != self.uploader.checksum || stored.value != expected {
            return Err(TransferError::Integrity(format!(
                "the storage reports {} {} for the completed object, the file makes {expected}",
                stored.algorithm, stored.value
            )));
        }
        Ok(Integrity {
            algorithm: stored.algorithm.name().to_string(),
            value: stored.value.clone(),
            checked_by,
        })
    }
}

/// S3's composite checksum of a multipart object: the checksum of the parts' binary checksums,
/// then `-N`.
fn composite_checksum(
    algorithm: ChecksumAlgorithm,
    parts: &[CompletedPart],
) -> Result<String, TransferError> {
    use base64::Engine;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut h = algorithm.hasher();
    for p in parts {
        let c = p.checksum.as_ref().ok_or_else(|| {
            TransferError::Integrity(format!("part {} has no {algorithm} checksum", p.number))
        })?;
        let raw = b64
            .decode(&c.value)
            .map_err(|e| TransferError::Integrity(format!("part {}'s checksum: {e}", p.number)))?;
        h.update(&raw);
    }
    Ok(format!("{}-{}", h.finish().value, parts.len()))
}
