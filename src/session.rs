//! A session: one profile made ready to upload (secrets read from the keychain, the signer
//! chosen, the embedded store started for `local`), the persistent queue, and batches of files
//! and folders sent under the profile's concurrency limit — small files in one PUT, large ones
//! in parts that resume after a crash.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::Semaphore;

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
use crate::upload::resume::{settle, RestartReason, Resumer, Settlement, SourceFacts};
use crate::upload::throttle::RateLimit;
use crate::upload::{
    Ahead, Control, ItemJournal, MultipartJob, Placement, ProgressFn, TransferError, UploadReceipt,
    Uploader,
};
use crate::validate::{self, ValidationError};

/// Jobs validated and queued together (one commit) before their uploads start.
pub const PREPARE_CHUNK: usize = 256;
/// Jobs validated and queued but not yet sending, kept in memory for their turn (beyond it,
/// they are found in the queue again).
const PREPARED_IN_MEMORY: usize = 4 * PREPARE_CHUNK;

/// A job on its way from being queued to being sent.
enum Handover {
    /// Validated (and queued, or refused).
    Ready(usize, Result<Prepared, UploadError>),
    /// Queued; prepared again when its turn comes.
    Queued(usize),
}

/// Files signed in one batch ahead of sending (hoist-server signs at most 100 a request).
const SIGN_AHEAD_BATCH: usize = 50;
/// Batches signed at once: the one being sent and the next two (a link of 80 ms round trip
/// sends 50 small files in about the time one batch takes to sign).
const SIGN_AHEAD_BATCHES: usize = 3;

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
            SessionError::Profile(e) => e.kind(),
            SessionError::Keychain(e) => e.kind(),
            SessionError::Sign(e) => e.kind(),
            SessionError::Queue(e) => e.kind(),
            SessionError::Network(e) => e.kind(),
            #[cfg(feature = "embedded-store")]
            SessionError::Local(e) => e.kind(),
            SessionError::NoEmbeddedStore => ErrorKind::InvalidInput,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            SessionError::Profile(e) => e.hint(),
            SessionError::Keychain(e) => e.hint(),
            SessionError::Sign(e) => e.hint(),
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
            UploadError::Validation(e) => e.kind(),
            UploadError::Key(e) => e.kind(),
            UploadError::Transfer(e) => e.kind(),
            UploadError::Queue(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            UploadError::Transfer(e) => e.hint(),
            _ => None,
        }
    }
}

/// One file to upload: where it is, and the folders it sits in below what was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The file.
    pub path: PathBuf,
    /// Folder names between the dropped folder (included) and the file, kept in the key.
    pub dirs: Vec<String>,
    /// What the files of one dropped folder share in their keys (`{uuid}` and the date), so
    /// the folder lands whole under one id; `None` for a lone file (its own).
    pub batch: Option<KeyContext>,
}

impl Job {
    /// The file's path inside the dropped folder (`Photos/2026/beach.jpg`), named `file_name`;
    /// `None` for a lone file.
    pub fn relative_path(&self, file_name: &str) -> Option<String> {
        if self.dirs.is_empty() {
            return None;
        }
        let mut path = self.dirs.join("/");
        path.push('/');
        path.push_str(file_name);
        Some(path)
    }

    /// A lone file (no folder above it kept in the key).
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Job {
            path: path.into(),
            dirs: Vec::new(),
            batch: None,
        }
    }
}

/// Expands folders into their files (recursively, keeping the folder structure); files and
/// paths that do not exist pass through, to be reported by validation.
pub fn expand(paths: &[PathBuf]) -> Vec<Job> {
    let mut jobs = Vec::new();
    for p in paths {
        if !p.is_dir() {
            jobs.push(Job::file(p.clone()));
            continue;
        }
        let top = p
            .canonicalize()
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "folder".into());
        // Regression (issue #16: a dropped folder was scattered, each file under its own id).
        let batch = KeyContext::now_random();
        let mut files: Vec<_> = walkdir::WalkDir::new(p)
            .follow_links(false)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .collect();
        files.sort_by(|a, b| a.path().cmp(b.path()));
        for e in files {
            let rel = e.path().strip_prefix(p).unwrap_or(e.path());
            let mut dirs = vec![top.clone()];
            if let Some(parent) = rel.parent() {
                dirs.extend(parent.iter().map(|c| c.to_string_lossy().into_owned()));
            }
            jobs.push(Job {
                path: e.path().to_path_buf(),
                dirs,
                batch: Some(batch),
            });
        }
    }
    jobs
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
            CancelError::Queue(e) => e.kind(),
            CancelError::Abort(_) => ErrorKind::RemoteTransient,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            CancelError::Abort(_) => Some(crate::error::Hint::Sweep),
            CancelError::Queue(_) => None,
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
    signer: Arc<dyn Signer>,
    multipart: Option<Arc<dyn MultipartApi>>,
    /// The SigV4 client of self-sign and local profiles (for sweeping).
    s3: Option<S3Client>,
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
    #[cfg(feature = "embedded-store")]
    local: Option<crate::local::EmbeddedStore>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("profile", &self.profile.name)
            .finish_non_exhaustive()
    }
}

/// A size from an environment variable (`HOIST_MULTIPART_THRESHOLD`, `HOIST_PART_SIZE`).
fn env_size(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| crate::profile::parse_size(&v).ok())
        .unwrap_or(default)
}

impl Session {
    /// Prepares `profile`: reads its secrets from `keychain` (not for `local`), builds its signer,
    /// opens the queue in the data dir.
    pub async fn open(
        profile: Profile,
        keychain: &Keychain,
        retry: RetryPolicy,
    ) -> Result<Self, SessionError> {
        let queue = Arc::new(Queue::open_default()?);
        Self::open_in(profile, keychain, retry, queue, &crate::profile::data_dir()).await
    }

    /// [`Session::open`] with a queue and a data dir (where `local` keeps its store) of the
    /// caller's.
    pub async fn open_in(
        profile: Profile,
        keychain: &Keychain,
        retry: RetryPolicy,
        queue: Arc<Queue>,
        data_dir: &Path,
    ) -> Result<Self, SessionError> {
        profile.validate()?;
        let password = match profile.network.proxy {
            Some(_) => read_secret(keychain, &profile.name, SecretKind::ProxyPassword).await?,
            None => None,
        };
        let network = Network::for_profile(&profile.name, &profile.network, password.as_ref())?;
        let uploader = Uploader::new(retry)
            .with_network(&network)
            .map_err(|e| SessionError::Network(NetworkError::Tls(e)))?;
        let (signer, multipart): (Arc<dyn Signer>, Option<Arc<dyn MultipartApi>>) = match &profile
            .mode
        {
            Mode::Backend {
                url,
                token,
                protocol,
            } => {
                let url = url::Url::parse(url)
                    .map_err(|e| ProfileError::Invalid(format!("backend URL: {e}")))?;
                let token = if *token {
                    Some(
                        read_secret(keychain, &profile.name, SecretKind::BearerToken)
                            .await?
                            .ok_or_else(|| KeychainError::Missing {
                                profile: profile.name.clone(),
                                kind: SecretKind::BearerToken.as_str(),
                            })?,
                    )
                } else {
                    None
                };
                let bearer = match &profile.sign_in {
                    Some(settings) => {
                        let http = crate::remote::http::client_on(
                            crate::remote::http::Purpose::Backend,
                            &network,
                        )
                        .map_err(SignError::Signing)?;
                        crate::backend::Bearer::SignedIn(Arc::new(
                            crate::backend::sign_in::SignedIn::new(
                                &profile.name,
                                settings.clone(),
                                http,
                                keychain.clone(),
                                Arc::new(crate::retry::SystemClock),
                            ),
                        ))
                    }
                    None => token.into(),
                };
                match protocol {
                    Protocol::Simple => (
                        Arc::new(
                            BackendSigner::new(url, None)?
                                .with_network(&network)?
                                .with_bearer(bearer),
                        ),
                        None,
                    ),
                    Protocol::Companion => {
                        let c = Arc::new(
                            CompanionClient::new(url, None)?
                                .with_network(&network)?
                                .with_bearer(bearer),
                        );
                        (c.clone(), Some(c))
                    }
                }
            }
            Mode::SelfSign {
                bucket,
                region,
                endpoint,
                path_style,
                access_key_id,
            } => {
                let secret = read_secret(keychain, &profile.name, SecretKind::SecretAccessKey)
                    .await?
                    .ok_or_else(|| KeychainError::Missing {
                        profile: profile.name.clone(),
                        kind: SecretKind::SecretAccessKey.as_str(),
                    })?;
                let token = read_secret(keychain, &profile.name, SecretKind::SessionToken).await?;
                let mut s = SigV4Signer::new(bucket, region, access_key_id, secret)
                    .with_session_token(token)
                    .with_path_style(*path_style);
                if let Some(e) = endpoint {
                    let e = url::Url::parse(e)
                        .map_err(|err| ProfileError::Invalid(format!("endpoint: {err}")))?;
                    s = s.with_endpoint(e, *path_style);
                }
                let client = S3Client::new(s.clone())
                    .with_network(&network)
                    .map_err(|e| SessionError::Network(NetworkError::Tls(e)))?;
                let mut session = Self::assemble(
                    profile.clone(),
                    Arc::new(s),
                    Some(Arc::new(client.clone())),
                    uploader,
                    queue,
                );
                session.s3 = Some(client);
                return Ok(session);
            }
            Mode::Local => return Self::open_local(profile, uploader, queue, data_dir).await,
        };
        Ok(Self::assemble(profile, signer, multipart, uploader, queue))
    }

    fn assemble(
        profile: Profile,
        signer: Arc<dyn Signer>,
        multipart: Option<Arc<dyn MultipartApi>>,
        uploader: Uploader,
        queue: Arc<Queue>,
    ) -> Self {
        let profile_limit = RateLimit::new(profile.network.limit_rate);
        Session {
            parts_limit: Arc::new(Semaphore::new(profile.concurrency.max(1))),
            part_memory: Arc::new(Semaphore::new(PART_MEMORY_MIB)),
            uploader: uploader
                .with_checksum(profile.checksum)
                .with_object(profile.object.clone())
                .with_limit(profile_limit.clone()),
            profile_limit,
            profile,
            signer,
            multipart,
            s3: None,
            queue,
            control: Control::default(),
            threshold: env_size("HOIST_MULTIPART_THRESHOLD", DEFAULT_MULTIPART_THRESHOLD),
            part_size: env_size("HOIST_PART_SIZE", DEFAULT_PART_SIZE),
            #[cfg(feature = "embedded-store")]
            local: None,
        }
    }

    #[cfg(feature = "embedded-store")]
    async fn open_local(
        profile: Profile,
        uploader: Uploader,
        queue: Arc<Queue>,
        data_dir: &Path,
    ) -> Result<Self, SessionError> {
        let store = crate::local::EmbeddedStore::start(&data_dir.join("store")).await?;
        let signer = store.signer();
        let client = S3Client::new(signer.clone());
        let mut s = Self::assemble(
            profile,
            Arc::new(signer),
            Some(Arc::new(client.clone())),
            uploader,
            queue,
        );
        s.s3 = Some(client);
        s.local = Some(store);
        Ok(s)
    }

    #[cfg(not(feature = "embedded-store"))]
    async fn open_local(
        _profile: Profile,
        _uploader: Uploader,
        _queue: Arc<Queue>,
        _data_dir: &Path,
    ) -> Result<Self, SessionError> {
        Err(SessionError::NoEmbeddedStore)
    }

    /// A session with a signer and uploader of the caller's choosing, an in-memory queue and no
    /// multipart (see the `with_*` methods).
    pub fn with_signer(profile: Profile, signer: Arc<dyn Signer>, uploader: Uploader) -> Self {
        let queue = Arc::new(Queue::in_memory().expect("an in-memory SQLite database opens"));
        Self::assemble(profile, signer, None, uploader, queue)
    }

    /// Uploads files of `threshold` bytes and more in parts of about `part_size` through `api`.
    pub fn with_multipart(
        mut self,
        api: Arc<dyn MultipartApi>,
        threshold: u64,
        part_size: u64,
    ) -> Self {
        self.multipart = Some(api);
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
        &self.signer
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
        let Some(s3) = &self.s3 else {
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
        self.s3.as_ref()
    }

    /// The multipart API, when this profile offers one.
    pub fn multipart_api(&self) -> Option<&Arc<dyn MultipartApi>> {
        self.multipart.as_ref()
    }

    /// For the `local` profile, the embedded store files land in.
    #[cfg(feature = "embedded-store")]
    pub fn local_store(&self) -> Option<&crate::local::EmbeddedStore> {
        self.local.as_ref()
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

    /// Validates a job and puts it in the queue (state `queued`), or finds its unfinished
    /// upload there; a source that changed since restarts that upload.
    pub async fn prepare(&self, job: &Job, progress: &ProgressFn) -> Result<Prepared, UploadError> {
        let mut prepared = self
            .prepare_many(std::slice::from_ref(job), |_| progress.clone())
            .await;
        prepared.pop().unwrap_or_else(|| {
            Err(UploadError::Queue(QueueError::Commit(
                "the job was not prepared".into(),
            )))
        })
    }

    /// [`Session::prepare`] for many jobs (several validated at once), with every new item
    /// queued in one commit; outcomes come back in the jobs' order.
    pub async fn prepare_many(
        &self,
        jobs: &[Job],
        progress_for: impl Fn(usize) -> ProgressFn,
    ) -> Vec<Result<Prepared, UploadError>> {
        // Built in a loop, not a closure: a closure over `&Job` would make the future lose
        // `Send` for the compiler (a higher-ranked lifetime), and the app spawns it.
        let mut plans = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let progress = progress_for(i);
            plans.push(async move { self.plan(job, &progress).await });
        }
        let planned: Vec<Result<Planned, UploadError>> = stream::iter(plans)
            .buffered(self.profile.concurrency.max(1))
            .collect()
            .await;
        let new_items: Vec<NewItem<'_>> = planned
            .iter()
            .filter_map(|p| match p {
                Ok(Planned {
                    checked,
                    item:
                        PlannedItem::New {
                            path,
                            place,
                            fingerprint,
                            modified_ns,
                        },
                }) => Some(NewItem {
                    profile: &self.profile.name,
                    path,
                    key: &place.key,
                    size: checked.size,
                    content_type: &checked.content_type,
                    modified_ns: *modified_ns,
                    fingerprint,
                    relative_path: place.relative_path.as_deref(),
                    drop_id: place.drop_id.as_deref(),
                }),
                _ => None,
            })
            .collect();
        let mut ids = match self.queue.add_many(&new_items) {
            Ok(ids) => ids.into_iter(),
            Err(e) => {
                let reason = e.to_string();
                return planned
                    .into_iter()
                    .map(|_| Err(UploadError::Queue(QueueError::Commit(reason.clone()))))
                    .collect();
            }
        };
        planned
            .into_iter()
            .map(|p| {
                let Planned { checked, item } = p?;
                let (item_id, place, state) = match item {
                    PlannedItem::Existing { id, place, state } => (id, place, state),
                    PlannedItem::New { place, .. } => {
                        let id = ids.next().ok_or_else(|| {
                            UploadError::Queue(QueueError::Commit("an item was not queued".into()))
                        })?;
                        (id, place, ItemState::Queued)
                    }
                };
                Ok(Prepared {
                    item_id,
                    place,
                    checked,
                    state,
                })
            })
            .collect()
    }

    /// Everything [`Session::prepare`] does except queueing a new item.
    async fn plan(&self, job: &Job, progress: &ProgressFn) -> Result<Planned, UploadError> {
        let checked = validate::check_file(&job.path, &self.profile).await?;
        if checked.size > MAX_SINGLE_PUT && self.multipart.is_none() {
            return Err(ValidationError::OverSinglePutLimit(checked.size).into());
        }
        // Resolved once, by the check: the file a dropped symlink named.
        let abs = checked.path.clone();
        let modified_ns = checked
            .modified
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i64);
        // The sample only guards resuming parts; a single PUT re-reads the whole file anyway.
        let fp = if self.goes_multipart(checked.size) {
            let sampled = checked.clone();
            tokio::task::spawn_blocking(move || fingerprint(&sampled))
                .await
                .map_err(|e| TransferError::Read(e.to_string()))??
        } else {
            String::new()
        };
        let item = match self.queue.unfinished_for(&self.profile.name, &abs)? {
            Some(item) => {
                let facts = SourceFacts {
                    size: checked.size,
                    modified_ns,
                    fingerprint: &fp,
                };
                let changed = facts.differs_from(&item);
                if changed {
                    self.resumer()
                        .restart(&item, facts, RestartReason::SourceChanged, progress)
                        .await?;
                }
                // What a backend assigned goes with it, so a resume lands under the same key
                // (a changed file forgot its ticket: its old object is not this content).
                let assigned = match (&item.ticket, changed) {
                    (Some(ticket), false) => Some(crate::sign::Assigned {
                        key: item.key.clone(),
                        ticket: ticket.clone(),
                    }),
                    _ => None,
                };
                PlannedItem::Existing {
                    id: item.id,
                    place: Placement {
                        key: item.key,
                        relative_path: item.relative_path,
                        drop_id: item.drop_id,
                        assigned,
                    },
                    state: item.state,
                }
            }
            None => {
                let batch = job.batch.unwrap_or_else(KeyContext::now_random);
                PlannedItem::New {
                    place: Placement {
                        key: key::build_key_in(
                            &self.profile.prefix,
                            &self.profile.key_template,
                            &job.dirs,
                            &checked.file_name,
                            batch,
                        )?,
                        relative_path: job.relative_path(&checked.file_name),
                        drop_id: job.batch.map(|b| b.uuid.to_string()),
                        assigned: None,
                    },
                    path: abs,
                    fingerprint: fp,
                    modified_ns,
                }
            }
        };
        Ok(Planned { checked, item })
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

    /// Hashes the single-PUT jobs of `chunk` and, in one round trip where the backend offers
    /// batches, signs them: staff uploads of many small files then wait for no backend round
    /// trip of their own. Only for a signer that takes a round trip; a job that fails here
    /// goes on without, and its own attempt reports the failure.
    async fn sign_ahead(
        &self,
        chunk: Vec<(usize, Result<Prepared, UploadError>)>,
        progress_for: &impl Fn(usize) -> ProgressFn,
    ) -> Vec<(usize, Result<Prepared, UploadError>, Option<Ahead>)> {
        if !self.signer.signs_remotely() {
            return chunk.into_iter().map(|(i, p)| (i, p, None)).collect();
        }
        let hashed = futures_util::future::join_all(chunk.iter().map(|(i, p)| async move {
            match p {
                Ok(p) if !self.goes_multipart(p.checked.size) => self
                    .uploader
                    .hash_for_put(&p.checked, &p.place, &progress_for(*i))
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
            let mut signed = self.signer.presign_many(&requests, now).await.into_iter();
            let mut assigned = Vec::new();
            for (n, ((_, p), ahead)) in chunk.iter().zip(hashed.iter_mut()).enumerate() {
                let (Ok(p), Some(ahead)) = (p, ahead.as_mut()) else {
                    continue;
                };
                if let Some(Ok(presigned)) = signed.next() {
                    if let Some(a) = presigned.assigned() {
                        if p.place.assigned.as_ref() != Some(&a) {
                            assigned.push((n, p.item_id, a));
                        }
                    }
                    ahead.signed(presigned);
                }
            }
            // The batch's keys are journaled in one commit before any of them is sent (if that
            // fails, each file journals its own before it goes).
            let rows: Vec<(i64, &crate::sign::Assigned)> =
                assigned.iter().map(|(_, id, a)| (*id, a)).collect();
            if self.queue.assign_many(&rows).is_ok() {
                for (n, _, a) in assigned {
                    if let Some(ahead) = hashed[n].as_mut() {
                        ahead.journaled(a);
                    }
                }
            }
        }
        chunk
            .into_iter()
            .zip(hashed)
            .map(|((i, p), a)| (i, p, a))
            .collect()
    }

    /// [`Session::send`] of a job hashed and maybe signed ahead.
    async fn send_ahead(
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
        let multipart = self.goes_multipart(checked.size);
        // A waiting single PUT stays `queued` while it runs: both states resume the same way,
        // and one fsync'd transaction less per file counts when thousands of small files go.
        if multipart || state != ItemState::Queued {
            self.queue.set_state(item_id, ItemState::Uploading, None)?;
        }
        let result = match &self.multipart {
            Some(api) if multipart => {
                self.uploader
                    .upload_multipart(
                        &checked,
                        &place,
                        MultipartJob {
                            api: api.as_ref(),
                            queue: &self.queue,
                            item_id,
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
                    match ahead {
                        Some(a) => {
                            self.uploader
                                .upload_hashed(
                                    &checked,
                                    a,
                                    self.signer.as_ref(),
                                    &journal,
                                    progress,
                                )
                                .await
                        }
                        None => {
                            let a = self
                                .uploader
                                .hash_for_put(&checked, &place, progress)
                                .await?;
                            self.uploader
                                .upload_hashed(
                                    &checked,
                                    a,
                                    self.signer.as_ref(),
                                    &journal,
                                    progress,
                                )
                                .await
                        }
                    }
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
    fn goes_multipart(&self, size: u64) -> bool {
        self.multipart.is_some() && size >= self.threshold
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
            api: self.multipart.as_deref(),
            queue: &self.queue,
            clock: &*self.uploader.retry_policy().clock,
        }
    }

    /// Records a landed upload. The commit waits for the disk: off the async workers, which
    /// other uploads (and the embedded store) need meanwhile.
    async fn record_done(&self, item_id: i64, r: &UploadReceipt) -> Result<(), QueueError> {
        let queue = self.queue.clone();
        let (key, sha256) = (r.key.clone(), r.sha256.clone());
        let (etag, location) = (r.etag.clone(), r.location.clone());
        let integrity = r.integrity.as_ref().map(ToString::to_string);
        let verified = r.verified;
        tokio::task::spawn_blocking(move || {
            queue.finish(
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

    /// The jobs of this profile's unfinished uploads (to resume after a crash or a pause).
    pub fn unfinished_jobs(&self) -> Result<Vec<Job>, QueueError> {
        Ok(self
            .queue
            .unfinished(&self.profile.name)?
            .into_iter()
            .map(|i| Job::file(i.path))
            .collect())
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
                    let ready = Handover::Ready(first + i, p);
                    match handover.try_send(ready) {
                        Ok(()) => {}
                        Err(TrySendError::Full(Handover::Ready(i, Ok(_)))) => later.push(i),
                        Err(TrySendError::Full(refused)) => {
                            if handover.send(refused).await.is_err() {
                                return;
                            }
                        }
                        Err(TrySendError::Closed(_)) => return,
                    }
                }
            }
            for i in later {
                if handover.send(Handover::Queued(i)).await.is_err() {
                    return;
                }
            }
        };
        // Jobs found in the queue again are prepared several at once (in order).
        let prepared = stream::poll_fn(move |cx| handed.poll_recv(cx))
            .map(|h| async move {
                match h {
                    Handover::Ready(i, p) => (i, p),
                    Handover::Queued(i) => (i, self.prepare(&jobs[i], &progress_for(i)).await),
                }
            })
            .buffered(self.profile.concurrency.max(1))
            // Signed a batch ahead of sending (where signing takes a round trip), the next
            // batches while this one goes.
            .ready_chunks(SIGN_AHEAD_BATCH)
            .map(|chunk| self.sign_ahead(chunk, progress_for))
            .buffered(SIGN_AHEAD_BATCHES)
            .flat_map(stream::iter);
        let send_all = prepared
            .map(|(i, prepared, ahead)| {
                let progress = progress_for(i);
                async move {
                    let result = match prepared {
                        Ok(p) => {
                            self.send_ahead(p, ahead, &progress, self.control.child())
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    (
                        i,
                        FileOutcome {
                            path: jobs[i].path.clone(),
                            result,
                        },
                    )
                }
            })
            .buffer_unordered(self.profile.concurrency.max(1))
            .for_each(|(i, outcome)| {
                each(i, outcome);
                std::future::ready(())
            });
        tokio::join!(queue_all, send_all);
    }

    /// Uploads plain file paths (folders are expanded first).
    pub async fn upload_all(
        &self,
        paths: &[PathBuf],
        progress_for: impl Fn(usize) -> ProgressFn,
    ) -> Vec<FileOutcome> {
        self.upload_jobs(&expand(paths), progress_for).await
    }
}

/// Reads a secret on a blocking thread (the keychain client blocks on D-Bus).
async fn read_secret(
    keychain: &Keychain,
    profile: &str,
    kind: SecretKind,
) -> Result<Option<crate::secret::Secret>, KeychainError> {
    let keychain = keychain.clone();
    let profile = profile.to_string();
    tokio::task::spawn_blocking(move || keychain.get(&profile, kind))
        .await
        .map_err(|e| KeychainError::Failed {
            detail: e.to_string(),
        })?
}
