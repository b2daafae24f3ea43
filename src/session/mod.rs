//! A session: one profile made ready to upload (secrets read from the keychain, the signer
//! chosen, the embedded store started for `local`), the persistent queue, and batches of files
//! and folders sent under the profile's concurrency limit — small files in one PUT, large ones
//! in parts that resume after a crash. `pipeline` is the one scheduler both front ends run
//! uploads through.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use tokio::sync::Semaphore;

mod pipeline;

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
use crate::upload::resume::{settle, RestartReason, Resumer, Settlement, SourceFacts};
use crate::upload::throttle::RateLimit;
use crate::upload::{
    Ahead, Control, ItemJournal, MultipartJob, Placement, ProgressFn, TransferError, UploadReceipt,
    Uploader,
};
use crate::validate::{self, ValidationError};

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
        Self {
            path: path.into(),
            dirs: Vec::new(),
            batch: None,
        }
    }
}

/// Expands folders into their files (recursively, keeping the folder structure); files and
/// paths that do not exist pass through, to be reported by validation.
pub fn expand(paths: &[PathBuf]) -> Vec<Job> {
    expand_with(paths, |_| {
        Ok::<_, std::convert::Infallible>(KeyContext::now_random())
    })
    .unwrap_or_default()
}

/// [`expand`], each folder's id and date given by `drop_of(its canonical path)`.
fn expand_with<E>(
    paths: &[PathBuf],
    mut drop_of: impl FnMut(&Path) -> Result<KeyContext, E>,
) -> Result<Vec<Job>, E> {
    let mut jobs = Vec::new();
    for p in paths {
        if !p.is_dir() {
            jobs.push(Job::file(p.clone()));
            continue;
        }
        let root = p.canonicalize().unwrap_or_else(|_| p.clone());
        let top = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "folder".into());
        // Regression (issue #16: a dropped folder was scattered, each file under its own id).
        let batch = drop_of(&root)?;
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
    Ok(jobs)
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
                        (Arc::clone(&c) as Arc<dyn Signer>, Some(c))
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
        Self {
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
            .prepare_many(std::slice::from_ref(job), |_| Arc::clone(progress))
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
                        // A lone file is a drop of one: a backend gives it the same key each
                        // time it is asked (a create asked again supersedes the first).
                        drop_id: Some(batch.uuid.to_string()),
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
            self.queue.set_state(item_id, ItemState::Uploading, None)?;
        }
        let result = match &self.multipart {
            Some(api) if multipart => {
                // Its first step (create, or the resume's checks) is under way.
                progress(crate::upload::TransferEvent::Attempt { attempt: 1 });
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
                    let a = match ahead {
                        Some(a) => a,
                        None => {
                            self.uploader
                                .hash_for_put(&checked, &place, progress)
                                .await?
                        }
                    };
                    self.uploader
                        .upload_hashed(&checked, a, self.signer.as_ref(), &journal, progress)
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
        let queue = Arc::clone(&self.queue);
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

    /// The jobs of this profile's unfinished uploads (to resume after a crash or a pause),
    /// and of the folders dropped but not queued whole (killed while queueing them).
    pub fn unfinished_jobs(&self) -> Result<Vec<Job>, QueueError> {
        let mut jobs: Vec<Job> = self
            .queue
            .unfinished(&self.profile.name)?
            .into_iter()
            .map(|i| Job::file(i.path))
            .collect();
        let roots: Vec<PathBuf> = self
            .queue
            .incomplete_drops(&self.profile.name)?
            .into_iter()
            .map(|d| d.root)
            .filter(|r| r.is_dir())
            .collect();
        // The drops' files not queued yet (`expand` leaves out those that were).
        jobs.extend(self.expand(&roots)?);
        Ok(jobs)
    }

    /// [`expand`] for this profile, each dropped folder recorded first: a run killed before
    /// the folder was queued whole finds it again — the same id for all its files — when the
    /// folder is given again, or when unfinished uploads resume ([`Self::unfinished_jobs`]).
    /// Once its files are queued, [`Self::upload_jobs_each`] marks it so.
    pub fn expand(&self, paths: &[PathBuf]) -> Result<Vec<Job>, QueueError> {
        // Files a reused drop already queued (done, failed, paused or waiting) are not queued
        // again: they go on as they are, or stay as they ended.
        let mut queued_before = std::collections::HashSet::new();
        let jobs = expand_with(paths, |root| -> Result<KeyContext, QueueError> {
            if let Some(d) = self.queue.open_drop(&self.profile.name, root)? {
                if let Ok(uuid) = uuid::Uuid::parse_str(&d.drop_id) {
                    let now = time::OffsetDateTime::from_unix_timestamp(d.created_unix)
                        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
                    queued_before.extend(self.queue.drop_paths(&d.drop_id)?);
                    return Ok(KeyContext { now, uuid });
                }
            }
            let ctx = KeyContext::now_random();
            self.queue.record_drop(
                &self.profile.name,
                &crate::queue::DropRecord {
                    drop_id: ctx.uuid.to_string(),
                    root: root.to_path_buf(),
                    created_unix: ctx.now.unix_timestamp(),
                },
            )?;
            Ok(ctx)
        })?;
        Ok(jobs
            .into_iter()
            .filter(|j| {
                queued_before.is_empty()
                    || !j
                        .path
                        .canonicalize()
                        .is_ok_and(|p| queued_before.contains(&p))
            })
            .collect())
    }

    /// Every file of the drops of `jobs` is in the queue now.
    pub fn drops_queued(&self, jobs: &[Job]) -> Result<(), QueueError> {
        let ids: std::collections::BTreeSet<String> = jobs
            .iter()
            .filter_map(|j| j.batch.map(|b| b.uuid.to_string()))
            .collect();
        for id in ids {
            self.queue.drop_queued(&id)?;
        }
        Ok(())
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
