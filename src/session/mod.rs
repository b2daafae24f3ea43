//! A session: one profile made ready to upload (secrets read from the keychain, the signer
//! chosen, the embedded store started for `local`), the persistent queue, and batches of files
//! and folders sent under the profile's concurrency limit — small files in one PUT, large ones
//! in parts that resume after a crash. `pipeline` is the one scheduler both front ends run
//! uploads through. `open` makes a profile ready; `jobs` turns dropped paths into jobs (and
//! records dropped folders); `prepare` validates and queues them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use tokio::sync::Semaphore;

mod destination;
mod jobs;
mod open;
mod pipeline;
mod prepare;
mod resumer;

pub use destination::Destination;
pub use jobs::{expand, Job};
pub use pipeline::{Entry, Work};

use crate::backend::companion::CompanionClient;
use crate::backend::simple::BackendSigner;
use crate::error::{ErrorKind, HasKind};
use crate::key::{self, KeyContext, KeyError};
use crate::profile::{Mode, Profile, ProfileError, Protocol};
use crate::queue::{ItemState, NewItem, Queue, QueueError};
use crate::remote::network::{Network, NetworkError};
use crate::remote::s3::S3Client;
use crate::remote::MultipartApi;
use crate::retry::RetryPolicy;
use crate::secret::{Keychain, KeychainError, SecretKind};
use crate::sign::sigv4::SigV4Signer;
use crate::sign::{SignError, Signer};
use crate::upload::digest::fingerprint;
use crate::upload::parts::{
    DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE, MAX_SINGLE_PUT, PART_MEMORY_MIB,
};
use crate::upload::resume::{settle, RestartReason, Settlement, SourceFacts};
use crate::upload::throttle::RateLimit;
use crate::upload::{
    Ahead, Control, ItemJournal, MultipartJob, Placement, ProgressFn, TransferError, UploadReceipt,
    Uploader,
};
use crate::validate::{self, ValidationError};
pub(crate) use resumer::Resumer;

/// Jobs validated and queued together (one commit) before their uploads start.
pub const PREPARE_CHUNK: usize = 256;

/// Why a profile could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The profile is not usable.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A secret could not be read.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// The signer could not be built.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The queue database failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The profile's network settings (proxy, CA file) cannot be used.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The embedded store did not start.
    #[cfg(feature = "embedded-store")]
    #[error(transparent)]
    Local(#[from] crate::local::LocalError),
    /// This build has no embedded store.
    #[error("the 'local' profile needs Hoist built with the `embedded-store` feature")]
    NoEmbeddedStore,
}

impl HasKind for SessionError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Profile(e) => e.kind(),
            Self::Keychain(e) => e.kind(),
            Self::Sign(e) => e.kind(),
            Self::Queue(e) => e.kind(),
            Self::Network(e) => e.kind(),
            #[cfg(feature = "embedded-store")]
            Self::Local(e) => e.kind(),
            Self::NoEmbeddedStore => ErrorKind::InvalidInput,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Profile(e) => e.hint(),
            Self::Keychain(e) => e.hint(),
            Self::Sign(e) => e.hint(),
            Self::Network(e) => e.hint(),
            _ => None,
        }
    }
}

/// Why one file did not upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The file was refused before any byte was sent.
    #[error("{0}")]
    Validation(#[from] ValidationError),
    /// No valid key could be made for it.
    #[error("{0}")]
    Key(#[from] KeyError),
    /// The transfer failed, was paused or cancelled.
    #[error("{0}")]
    Transfer(#[from] TransferError),
    /// The queue database failed.
    #[error("{0}")]
    Queue(#[from] QueueError),
}

impl HasKind for UploadError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(e) => e.kind(),
            Self::Key(e) => e.kind(),
            Self::Transfer(e) => e.kind(),
            Self::Queue(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Transfer(e) => e.hint(),
            _ => None,
        }
    }
}

/// A job that passed validation and has its queue item and key.
#[derive(Debug)]
pub struct Prepared {
    /// Its queue item.
    pub item_id: i64,
    /// Where it goes: the key Hoist built (or a backend assigned before), its place in a
    /// dropped folder.
    pub place: crate::upload::Placement,
    /// What validation learned of the file.
    pub checked: validate::CheckedFile,
    /// The item's state when it was found or made.
    pub state: ItemState,
}

/// A validated job, before it is queued.
struct Planned {
    checked: validate::CheckedFile,
    item: PlannedItem,
}

enum PlannedItem {
    /// The job's unfinished upload, found in the queue.
    Existing {
        id: i64,
        place: Placement,
        state: ItemState,
    },
    /// A new upload, to be queued.
    New {
        path: PathBuf,
        place: Placement,
        fingerprint: String,
        modified_ns: Option<i64>,
    },
}

/// Why cancelling a stopped upload did not fully work.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// The queue database failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The store did not abort the upload.
    #[error("cancelled, but the unfinished upload could not be removed from the bucket ({0})")]
    Abort(String),
}

impl HasKind for CancelError {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Queue(e) => e.kind(),
            Self::Abort(_) => ErrorKind::RemoteTransient,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Abort(_) => Some(crate::error::Hint::Sweep),
            Self::Queue(_) => None,
        }
    }
}

/// The result for one file of a batch.
#[derive(Debug)]
pub struct FileOutcome {
    /// The file.
    pub path: PathBuf,
    /// What landed, or why nothing did.
    pub result: Result<UploadReceipt, UploadError>,
}

/// A profile ready to upload.
pub struct Session {
    profile: Profile,
    /// Where its files go.
    destination: Destination,
    uploader: Uploader,
    queue: Arc<Queue>,
    parts_limit: Arc<Semaphore>,
    /// Parts held in memory over all files, in MiB.
    part_memory: Arc<Semaphore>,
    /// The profile's bandwidth limit (changeable while uploads run).
    profile_limit: RateLimit,
    control: Control,
    threshold: u64,
    part_size: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("profile", &self.profile.name)
            .finish_non_exhaustive()
    }
}

/// A size from an environment variable (`HOIST_MULTIPART_THRESHOLD`, `HOIST_PART_SIZE`).
impl Session {
    /// A session with a signer and uploader of the caller's choosing, an in-memory queue and no
    /// multipart (see the `with_*` methods).
    pub fn with_signer(profile: Profile, signer: Arc<dyn Signer>, uploader: Uploader) -> Self {
        let queue = Arc::new(Queue::in_memory().expect("an in-memory SQLite database opens"));
        Self::assemble(profile, Destination::signing(signer), uploader, queue)
    }

    /// Uploads files of `threshold` bytes and more in parts of about `part_size` through `api`.
    pub fn with_multipart(
        mut self,
        api: Arc<dyn MultipartApi>,
        threshold: u64,
        part_size: u64,
    ) -> Self {
        self.destination.multipart = Some(api);
        self.threshold = threshold;
        self.part_size = part_size;
        self
    }

    /// Journals in `queue` instead.
    pub fn with_queue(mut self, queue: Arc<Queue>) -> Self {
        self.queue = queue;
        self
    }

    /// Signs PUTs for single-request uploads.
    pub fn signer(&self) -> &Arc<dyn Signer> {
        self.destination.signer()
    }

    /// Where this session's files go.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The uploader (and so the retry policy).
    pub fn uploader(&self) -> &Uploader {
        &self.uploader
    }

    /// The profile this session uploads with.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// The queue uploads are journaled in.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// Pauses or cancels every upload of this session.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// The profile's bandwidth limit: [`RateLimit::set`] changes it for uploads running.
    pub fn profile_limit(&self) -> &RateLimit {
        &self.profile_limit
    }

    /// Obeys `limit` too: an overall limit shared with other sessions (the CLI's
    /// `--limit-rate`, the app's).
    pub fn obey(&mut self, limit: RateLimit) {
        self.uploader = self.uploader.clone().with_limit(limit);
    }

    /// A link that downloads `key` for anyone who has it, until `expires_in` from `now` (a
    /// presigned GET, at most 7 days): for profiles that hold credentials (self-sign, local).
    /// A backend profile has none to sign with, and says so.
    pub fn share_link(
        &self,
        key: &str,
        expires_in: std::time::Duration,
        now: std::time::SystemTime,
    ) -> Result<String, SignError> {
        let Some(s3) = self.destination.s3_client() else {
            return Err(SignError::Signing(
                "share links need the bucket's credentials, which a backend profile does not \
                 have: ask whoever runs the backend to share the file (its address alone opens \
                 only for people with access to the bucket)"
                    .into(),
            ));
        };
        let signer = s3.signer();
        signer.presign("GET", &signer.object_url(key), &[], expires_in, now)
    }

    /// The SigV4 client of self-sign and local profiles.
    pub fn s3_client(&self) -> Option<&S3Client> {
        self.destination.s3_client()
    }

    /// The multipart API, when this profile offers one.
    pub fn multipart_api(&self) -> Option<&Arc<dyn MultipartApi>> {
        self.destination.multipart()
    }

    /// For the `local` profile, the embedded store files land in.
    #[cfg(feature = "embedded-store")]
    pub fn local_store(&self) -> Option<&crate::local::EmbeddedStore> {
        self.destination.local_store()
    }

    /// Validates and uploads one file (no folders).
    pub async fn upload(
        &self,
        path: &Path,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, UploadError> {
        self.upload_job(&Job::file(path), progress).await
    }

    /// Validates, queues and uploads one job, resuming its unfinished upload if there is one.
    pub async fn upload_job(
        &self,
        job: &Job,
        progress: &ProgressFn,
    ) -> Result<UploadReceipt, UploadError> {
        self.upload_job_controlled(job, progress, self.control.child())
            .await
    }

    /// [`Session::upload_job`] with a control of the caller's (a child of [`Session::control`],
    /// so that one file can be paused or cancelled on its own).
    pub async fn upload_job_controlled(
        &self,
        job: &Job,
        progress: &ProgressFn,
        control: Control,
    ) -> Result<UploadReceipt, UploadError> {
        let prepared = self.prepare(job, progress).await?;
        self.send(prepared, progress, control).await
    }

    /// Uploads a prepared job and records the outcome in the queue.
    pub async fn send(
        &self,
        prepared: Prepared,
        progress: &ProgressFn,
        control: Control,
    ) -> Result<UploadReceipt, UploadError> {
        self.send_ahead(prepared, None, progress, control).await
    }

    /// [`Session::send`] of a job hashed and maybe signed ahead.
    pub(crate) async fn send_ahead(
        &self,
        prepared: Prepared,
        ahead: Option<Ahead>,
        progress: &ProgressFn,
        control: Control,
    ) -> Result<UploadReceipt, UploadError> {
        let Prepared {
            item_id,
            place,
            checked,
            state,
        } = prepared;
        let journal = ItemJournal {
            queue: &self.queue,
            item_id,
        };
        // Stopped before its turn came: nothing is created only to be cancelled.
        if control.is_stopped() {
            let stop = control.stop_error();
            match &stop {
                TransferError::Cancelled => {
                    if let Some(item) = self.queue.get(item_id)? {
                        self.cancel_stopped(&item)
                            .await
                            .map_err(|e| TransferError::Rejected(e.to_string()))?;
                    }
                }
                _ => self.resumer().record(item_id, &Settlement::Paused)?,
            }
            return Err(stop.into());
        }
        let multipart = self.goes_multipart(checked.size);
        // A waiting single PUT stays `queued` while it runs: both states resume the same way,
        // and one fsync'd transaction less per file counts when thousands of small files go.
        if multipart || state != ItemState::Queued {
            self.queue.lifecycle().started(item_id)?;
        }
        let result = match &self.destination.multipart {
            Some(api) if multipart => {
                // Its first step (create, or the resume's checks) is under way.
                progress(crate::upload::TransferEvent::Attempt { attempt: 1 });
                self.uploader
                    .upload_multipart(
                        &checked,
                        &place,
                        MultipartJob {
                            api: api.as_ref(),
                            journal: &journal,
                            parts_limit: &self.parts_limit,
                            part_memory: &self.part_memory,
                            preferred_part_size: self.part_size,
                            control: &control,
                            progress,
                        },
                    )
                    .await
            }
            _ => {
                let _permit = self
                    .parts_limit
                    .acquire()
                    .await
                    .map_err(|_| TransferError::Paused);
                let upload = async {
                    let a = match ahead {
                        Some(a) => a,
                        None => {
                            self.uploader
                                .hash_for_put(&checked, &place, progress)
                                .await?
                        }
                    };
                    self.uploader
                        .upload_hashed(
                            &checked,
                            a,
                            self.destination.signer.as_ref(),
                            &journal,
                            progress,
                        )
                        .await
                };
                tokio::select! {
                    r = upload => r,
                    () = control.stopped() => Err(control.stop_error()),
                }
            }
        };
        match settle(&result) {
            Settlement::Done => {
                if let Ok(r) = &result {
                    self.record_done(item_id, r).await?;
                }
            }
            settlement => self.resumer().record(item_id, &settlement)?,
        }
        Ok(result?)
    }

    /// Whether a file of `size` goes in parts (else in one PUT).
    pub(crate) fn goes_multipart(&self, size: u64) -> bool {
        self.destination.multipart.is_some() && size >= self.threshold
    }

    /// Cancels an upload that is not running: aborts its multipart upload, so that no parts
    /// stay behind, and marks it cancelled. An abort that fails is returned after the item is
    /// marked (`hoist sweep` removes what is left).
    pub async fn cancel_stopped(&self, item: &crate::queue::QueueItem) -> Result<(), CancelError> {
        self.resumer()
            .cancel(item)
            .await?
            .map_err(|e| CancelError::Abort(e.to_string()))
    }

    /// Restarts, cancels and ends this session's unfinished uploads.
    pub(crate) fn resumer(&self) -> Resumer<'_> {
        Resumer {
            api: self.destination.multipart.as_deref(),
            queue: &self.queue,
            clock: &*self.uploader.retry_policy().clock,
        }
    }

    /// Records a landed upload. The commit waits for the disk: off the async workers, which
    /// other uploads (and the embedded store) need meanwhile.
    async fn record_done(&self, item_id: i64, r: &UploadReceipt) -> Result<(), QueueError> {
        let queue = Arc::clone(&self.queue);
        let (key, sha256) = (r.key.clone(), r.sha256.clone());
        let (etag, location) = (r.etag.clone(), r.location.clone());
        let integrity = r.integrity.as_ref().map(ToString::to_string);
        let verified = r.verified;
        tokio::task::spawn_blocking(move || {
            queue.lifecycle().landed(
                item_id,
                &crate::queue::Landed {
                    key: &key,
                    sha256: sha256.as_deref(),
                    etag: etag.as_deref(),
                    location: &location,
                    integrity: integrity.as_deref(),
                    verified,
                },
            )
        })
        .await
        .map_err(|e| QueueError::Commit(e.to_string()))?
    }

    /// Uploads plain file paths (folders are expanded first, and recorded).
    pub async fn upload_all(
        &self,
        paths: &[PathBuf],
        progress_for: impl Fn(usize) -> ProgressFn,
    ) -> Vec<FileOutcome> {
        let jobs = self.expand(paths).unwrap_or_else(|_| expand(paths));
        self.upload_jobs(&jobs, progress_for).await
    }
}
