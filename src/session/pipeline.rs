//! The one scheduler both front ends run uploads through ([`Session::run`]): the CLI hands it a
//! folder's jobs, the app's manager the uploads it starts, and both get the same behaviour —
//! files prepared several at a time, small files hashed and signed 50 a request, three batches
//! ahead, where signing takes a round trip (a backend), the profile's concurrency over files
//! and parts, the part budget in memory, and each file's own retries and pacing.
//!
//! ```text
//!  entries ──► prepare (validate, queue or find) ──► sign ahead (batches) ──► send ──► each
//!             `concurrency` at once, in order        3 × 50, in order        `concurrency`
//! ```

use std::sync::Arc;

use futures_util::stream::{self, Stream, StreamExt};
use futures_util::FutureExt as _;
use tokio::sync::mpsc::error::TrySendError;

use super::{FileOutcome, Job, Prepared, Session, UploadError, PREPARE_CHUNK};
use crate::upload::{Ahead, Control, ProgressFn, TransferError, UploadReceipt};

/// Files signed in one batch ahead of sending (hoist-server signs at most 100 a request).
const SIGN_AHEAD_BATCH: usize = 50;
/// Batches signed at once: the one being sent and the next two (a link of 80 ms round trip
/// sends 50 small files in about the time one batch takes to sign).
const SIGN_AHEAD_BATCHES: usize = 3;
/// Jobs validated and queued but not yet sending, kept in memory for their turn (beyond it,
/// they are found in the queue again).
const PREPARED_IN_MEMORY: usize = 4 * PREPARE_CHUNK;

/// What the pipeline is handed for one file.
#[derive(Debug)]
pub enum Work {
    /// Validated and queued already (or refused: the refusal is its outcome).
    Prepared(Result<Prepared, UploadError>),
    /// A job to prepare when its turn comes (found in the queue, or queued then).
    Job(Job),
}

/// One file for [`Session::run`]: its outcome comes back under `tag`.
pub struct Entry<T> {
    /// The caller's name for it (an index, a queue id).
    pub tag: T,
    /// The file.
    pub work: Work,
    /// Hears of its progress.
    pub progress: ProgressFn,
    /// Pauses or cancels it (a child of [`Session::control`]).
    pub control: Control,
}

/// A job on its way from being queued to being sent (the CLI's folders).
enum Handover {
    /// Validated (and queued, or refused); boxed, as most of a large folder waits as `Queued`.
    Ready(usize, Box<Result<Prepared, UploadError>>),
    /// Queued; prepared again when its turn comes.
    Queued(usize),
}

/// A file prepared and on its way to being sent.
struct Ready<T> {
    tag: T,
    prepared: Result<Prepared, UploadError>,
    progress: ProgressFn,
    control: Control,
}

impl Session {
    /// Runs `entries` to their outcomes, handed to `each` as each ends (in the order they
    /// end). The stream may be endless (the app's): the pipeline takes entries as they come
    /// and as it has room, so what waits stays in the caller's hands (its memory, its stops).
    pub async fn run<T>(
        &self,
        entries: impl Stream<Item = Entry<T>>,
        mut each: impl FnMut(T, Result<UploadReceipt, UploadError>),
    ) {
        let concurrency = self.profile.concurrency.max(1);
        entries
            .map(|entry| async move {
                let prepared = match entry.work {
                    Work::Prepared(p) => p,
                    Work::Job(job) => self.prepare(&job, &entry.progress).await,
                };
                Ready {
                    tag: entry.tag,
                    prepared,
                    progress: entry.progress,
                    control: entry.control,
                }
            })
            .buffered(concurrency)
            // Signed a batch ahead of sending (where signing takes a round trip), the next
            // batches while this one goes.
            .ready_chunks(SIGN_AHEAD_BATCH)
            .map(|chunk| self.sign_ahead(chunk))
            .buffered(SIGN_AHEAD_BATCHES)
            .flat_map(stream::iter)
            .map(|(ready, ahead)| async move {
                let result = match ready.prepared {
                    // A bug in one upload fails that upload, not the pipeline every other
                    // upload of the profile goes through.
                    Ok(p) => std::panic::AssertUnwindSafe(self.send_ahead(
                        p,
                        ahead,
                        &ready.progress,
                        ready.control,
                    ))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| {
                        Err(UploadError::Transfer(TransferError::Read(
                            "Hoist stopped this upload on an internal error; try it again".into(),
                        )))
                    }),
                    Err(e) => Err(e),
                };
                (ready.tag, result)
            })
            .buffer_unordered(concurrency)
            .for_each(|(tag, result)| {
                each(tag, result);
                std::future::ready(())
            })
            .await;
    }

    /// Hashes the single-PUT files of `chunk` and, in one round trip where the backend offers
    /// batches, signs them; the keys and tickets a backend assigned are journaled in one
    /// commit before any of them is sent. Only for a signer that takes a round trip; a file
    /// the backend refused carries the refusal (it is not asked again), and one that failed
    /// otherwise goes on without, its own attempt asking again.
    async fn sign_ahead<T>(&self, chunk: Vec<Ready<T>>) -> Vec<(Ready<T>, Option<Ahead>)> {
        if !self.destination.signer.signs_remotely() {
            return chunk.into_iter().map(|r| (r, None)).collect();
        }
        let hashed = futures_util::future::join_all(chunk.iter().map(|r| async move {
            match &r.prepared {
                Ok(p) if !self.goes_multipart(p.checked.size) && !r.control.is_stopped() => self
                    .uploader
                    .hash_for_put(&p.checked, &p.place, &r.progress)
                    .await
                    .ok(),
                _ => None,
            }
        }))
        .await;
        let mut hashed: Vec<Option<Ahead>> = hashed;
        let requests: Vec<crate::sign::PutRequest> = hashed
            .iter()
            .flatten()
            .map(|a| a.request().clone())
            .collect();
        if !requests.is_empty() {
            let now = self.uploader.retry_policy().clock.now();
            let mut signed = self
                .destination
                .signer
                .presign_many(&requests, now)
                .await
                .into_iter();
            let mut assigned = Vec::new();
            for (n, (r, ahead)) in chunk.iter().zip(hashed.iter_mut()).enumerate() {
                let (Ok(p), Some(ahead)) = (&r.prepared, ahead.as_mut()) else {
                    continue;
                };
                match signed.next() {
                    Some(Ok(presigned)) => {
                        if let Some(a) = presigned.assigned() {
                            if p.place.assigned.as_ref() != Some(&a) {
                                assigned.push((n, p.item_id, a));
                            }
                        }
                        ahead.signed(presigned);
                    }
                    Some(Err(refusal)) => ahead.refused(refusal),
                    None => {}
                }
            }
            // If the commit fails, each file journals its own before it goes.
            // The commit waits for the disk: off the async workers.
            let rows: Vec<(i64, crate::sign::Assigned)> =
                assigned.iter().map(|(_, id, a)| (*id, a.clone())).collect();
            let queue = Arc::clone(&self.queue);
            let journaled = tokio::task::spawn_blocking(move || {
                let refs: Vec<(i64, &crate::sign::Assigned)> =
                    rows.iter().map(|(id, a)| (*id, a)).collect();
                queue.lifecycle().assigned(&refs)
            })
            .await;
            if matches!(journaled, Ok(Ok(()))) {
                for (n, _, a) in assigned {
                    if let Some(ahead) = hashed[n].as_mut() {
                        ahead.journaled(a);
                    }
                }
            }
        }
        chunk.into_iter().zip(hashed).collect()
    }

    /// Uploads `jobs`, files and parts together at most the profile's concurrency at once;
    /// `progress_for(i)` gives the callback for `jobs[i]`. Outcomes come back in order.
    pub async fn upload_jobs(
        &self,
        jobs: &[Job],
        progress_for: impl Fn(usize) -> ProgressFn,
    ) -> Vec<FileOutcome> {
        self.upload_jobs_reporting(jobs, progress_for, |_| {}).await
    }

    /// Like [`Self::upload_jobs`], and `on_outcome` hears of each file as soon as it is done
    /// (in the order they finish).
    pub async fn upload_jobs_reporting(
        &self,
        jobs: &[Job],
        progress_for: impl Fn(usize) -> ProgressFn,
        on_outcome: impl Fn(&FileOutcome),
    ) -> Vec<FileOutcome> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        self.upload_jobs_each(jobs, progress_for, |i, outcome| {
            on_outcome(&outcome);
            outcomes.push((i, outcome));
        })
        .await;
        outcomes.sort_by_key(|(i, _)| *i);
        outcomes.into_iter().map(|(_, o)| o).collect()
    }

    /// Uploads `jobs` as [`Self::upload_jobs`] does, handing each file's outcome (with its
    /// job's index) to `each` as soon as it is done and keeping none: a folder of 100,000
    /// files holds no 100,000 receipts.
    pub async fn upload_jobs_each(
        &self,
        jobs: &[Job],
        progress_for: impl Fn(usize) -> ProgressFn,
        mut each: impl FnMut(usize, FileOutcome),
    ) {
        let progress_for = &progress_for;
        // Every job is queued (a chunk a commit) as fast as it can be validated, while the first
        // ones upload: a run killed in the middle of a folder leaves the whole folder in the
        // queue, and the next `hoist upload` sends only what had not landed. The jobs prepared
        // are handed over in memory up to PREPARED_IN_MEMORY; the rest are prepared again (found
        // in the queue) when their turn comes, so memory stays bounded whatever the folder.
        let (handover, mut handed) = tokio::sync::mpsc::channel::<Handover>(PREPARED_IN_MEMORY);
        let queue_all = async move {
            let mut later = Vec::new();
            for (c, chunk) in jobs.chunks(PREPARE_CHUNK).enumerate() {
                let first = c * PREPARE_CHUNK;
                let prepared = self.prepare_many(chunk, |i| progress_for(first + i)).await;
                for (i, p) in prepared.into_iter().enumerate() {
                    let ready = Handover::Ready(first + i, Box::new(p));
                    match handover.try_send(ready) {
                        Ok(()) => {}
                        Err(TrySendError::Full(Handover::Ready(i, p))) if p.is_ok() => {
                            later.push(i)
                        }
                        Err(TrySendError::Full(refused)) => {
                            if handover.send(refused).await.is_err() {
                                return;
                            }
                        }
                        Err(TrySendError::Closed(_)) => return,
                    }
                }
            }
            // The folders are in the queue whole: a later run finds their files there.
            let _ = self.drops_queued(jobs);
            for i in later {
                if handover.send(Handover::Queued(i)).await.is_err() {
                    return;
                }
            }
        };
        let entries = stream::poll_fn(move |cx| handed.poll_recv(cx)).map(|h| {
            let (i, work) = match h {
                Handover::Ready(i, p) => (i, Work::Prepared(*p)),
                Handover::Queued(i) => (i, Work::Job(jobs[i].clone())),
            };
            Entry {
                tag: i,
                work,
                progress: progress_for(i),
                control: self.control.child(),
            }
        });
        let send_all = self.run(entries, |i, result| {
            each(
                i,
                FileOutcome {
                    path: jobs[i].path.clone(),
                    result,
                },
            )
        });
        tokio::join!(queue_all, send_all);
    }
}
