//! The [`Manager`]: the queue, a [`Session`] per profile, and the uploads running now.
//! What staff do to uploads (pause, resume, cancel, retry, dismiss) is in `controls`; what
//! the window asks (the overview, the queue's rows, sign-in, what runs now), in `queries`; how
//! transfer events become phases and progress, in `progress`; the retry of uploads that
//! failed for want of a network, in `reconnect`.

mod controls;
mod progress;
mod queries;
mod reconnect;

use reconnect::Reconnect;

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use tokio::sync::Notify;

use super::error::ManagerError;
use super::views::{
    file_name, row_of, Activity, AddReport, LiveView, ManagerEvent, Overall, Overview, Phase,
    QueueFilter, QueueQuery, QueueWindow, Rejection, UploadRow,
};
use super::PROGRESS_INTERVAL;
use crate::error::HasKind as _;
use crate::profile::{Mode, ProfileStore};
use crate::queue::{ItemState, Queue, QueueItem};
use crate::retry::RetryPolicy;
use crate::secret::Keychain;
use crate::session::Resumer;
use crate::session::{self, Entry, Job, Prepared, Session, UploadError, Work};
use crate::upload::resume::Settlement;
use crate::upload::throttle::RateLimit;
use crate::upload::{Control, ProgressFn, TransferEvent, UploadReceipt};

/// Receives every [`ManagerEvent`] (the desktop shell forwards them over a Tauri channel).
pub type EventSink = Arc<dyn Fn(ManagerEvent) + Send + Sync>;

/// Where things are kept.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// The profiles file.
    pub profiles: ProfileStore,
    /// Where secrets are.
    pub keychain: Keychain,
    /// Where the queue and the embedded store live.
    pub data_dir: PathBuf,
    /// How uploads retry (and the clock they use).
    pub retry: RetryPolicy,
    /// How long after an upload failed for want of a network Hoist first tries again (then
    /// twice as long each time, up to [`RECONNECT_MAX`]).
    pub reconnect_after: Duration,
}

/// The longest wait between two tries of a store or backend that could not be reached.
pub const RECONNECT_MAX: Duration = Duration::from_secs(300);

impl ManagerConfig {
    /// The user's profiles, keychain and data dir.
    pub fn user() -> Self {
        Self {
            profiles: ProfileStore::open_default(),
            keychain: Keychain::default(),
            data_dir: crate::profile::data_dir(),
            retry: RetryPolicy::default(),
            reconnect_after: Duration::from_secs(10),
        }
    }
}

/// A stop asked for an upload still waiting for its turn, applied when the turn comes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Pause,
    Cancel,
}

/// An upload running now, or waiting for its turn.
struct Live {
    /// Made when its turn comes: 100,000 waiting uploads hold none.
    control: Option<Control>,
    stop: Option<Stop>,
    phase: Phase,
    sent: u64,
    note: Option<String>,
    last_progress: Option<Instant>,
    /// Resumed while its pause was still on its way through the pipeline: it goes again once
    /// the pause is recorded.
    resume_after_stop: bool,
}

impl Live {
    fn view(&self) -> LiveView {
        LiveView {
            phase: self.phase,
            sent: self.sent,
            note: self.note.clone(),
        }
    }
}

#[derive(Default)]
struct Batch {
    done: u32,
    failed: u32,
    /// Uploads whose failure was reported and that only automatic retries have touched since:
    /// their failing again is not news (#31: one notification per retry), their landing is.
    reported_failures: std::collections::HashSet<i64>,
}

/// Uploads waiting for their turn whose validation is kept in memory.
const PREPARED_IN_MEMORY: usize = 1024;

/// An upload handed to its profile's pipeline, waiting for its turn.
struct Started {
    id: i64,
    /// Boxed: a folder of 100,000 files waits here, nearly all without one.
    prepared: Option<Box<Prepared>>,
}

/// Where a profile's uploads go: the feed of its session's pipeline ([`Session::run`]), which
/// runs as long as the session is kept.
type Feed = tokio::sync::mpsc::UnboundedSender<Started>;

/// The long-lived upload manager; see the [module docs](super).
pub struct Manager {
    pub(crate) config: ManagerConfig,
    pub(crate) queue: Arc<Queue>,
    runtime: tokio::runtime::Handle,
    /// The manager itself, for the tasks it spawns (they end with it).
    me: std::sync::Weak<Self>,
    /// Each profile's session and the feed of its pipeline.
    sessions: tokio::sync::Mutex<HashMap<String, (Arc<Session>, Feed)>>,
    live: Mutex<HashMap<i64, Live>>,
    /// Uploads handed to a pipeline and not yet taken by it: a folder of 100,000 files waits
    /// there as data, not as 100,000 tasks.
    waiting: std::sync::atomic::AtomicUsize,
    sink: Mutex<Option<EventSink>>,
    batch: Mutex<Batch>,
    /// Calls to [`Manager::add`] still queueing files: a batch is not over while one runs,
    /// even if every upload started so far has finished.
    adding: std::sync::atomic::AtomicUsize,
    idle: Notify,
    /// The bandwidth limit over every upload of every profile.
    overall_limit: RateLimit,
    /// Uploads that failed for want of a network, by profile, retried once it is back.
    reconnect: Mutex<HashMap<String, Reconnect>>,
    /// Bytes sent since the manager opened, every upload together.
    sent_ever: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

/// How the queue records an upload the manager could not run at all.
fn failed(e: &ManagerError) -> Settlement {
    Settlement::Held {
        reason: e.to_string(),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Manager {
    /// Records settlements of uploads the manager holds no session for (no store to reach).
    fn resumer(&self) -> Resumer<'_> {
        Resumer {
            api: None,
            queue: &self.queue,
            clock: &*self.config.retry.clock,
        }
    }

    /// Opens the queue in `config.data_dir`. Call it inside the Tokio runtime the uploads should
    /// run on.
    pub fn open(config: ManagerConfig) -> Result<Arc<Self>, ManagerError> {
        let queue = Arc::new(Queue::open(&config.data_dir.join("queue.sqlite3"))?);
        let overall_limit = RateLimit::new(config.profiles.limit_rate()?);
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| ManagerError::Invalid(format!("no async runtime: {e}")))?;
        Ok(Arc::new_cyclic(|me| Self {
            me: Weak::clone(me),
            config,
            queue,
            runtime,
            sessions: Default::default(),
            live: Default::default(),
            waiting: Default::default(),
            sink: Default::default(),
            batch: Default::default(),
            adding: Default::default(),
            idle: Notify::new(),
            overall_limit,
            reconnect: Default::default(),
            sent_ever: Default::default(),
        }))
    }

    /// Sends every later event to `sink` (replacing the previous one: one window, one sink).
    pub fn subscribe(&self, sink: EventSink) {
        *lock(&self.sink) = Some(sink);
    }

    fn emit(&self, event: ManagerEvent) {
        let sink = lock(&self.sink).clone();
        if let Some(sink) = sink {
            sink(event);
        }
    }

    /// The session of profile `name`, opened once and kept (the `local` one runs the store).
    pub async fn session(&self, name: &str) -> Result<Arc<Session>, ManagerError> {
        Ok(self.opened(name).await?.0)
    }

    /// The session of profile `name` and the feed of its pipeline, started when it opens.
    async fn opened(&self, name: &str) -> Result<(Arc<Session>, Feed), ManagerError> {
        let mut sessions = self.sessions.lock().await;
        if let Some(s) = sessions.get(name) {
            return Ok(s.clone());
        }
        let profile = self.config.profiles.get(name)?;
        let mut session = Session::open_in(
            profile,
            &self.config.keychain,
            self.config.retry.clone(),
            Arc::clone(&self.queue),
            &self.config.data_dir,
        )
        .await?;
        session.obey(self.overall_limit.clone());
        let session = Arc::new(session);
        let feed = self.run_pipeline(Arc::clone(&session));
        sessions.insert(name.to_string(), (Arc::clone(&session), feed.clone()));
        Ok((session, feed))
    }

    /// Starts `session`'s pipeline: the uploads started for its profile go through the same
    /// scheduler as the CLI's (batch signing ahead, the profile's concurrency, the part
    /// budget), taken from the feed as it has room; it ends once the session is forgotten and
    /// what it was given has ended.
    fn run_pipeline(&self, session: Arc<Session>) -> Feed {
        let (feed, mut taken) = tokio::sync::mpsc::unbounded_channel::<Started>();
        let me = Weak::clone(&self.me);
        self.runtime.spawn(async move {
            let admitted = {
                let (me, session) = (Weak::clone(&me), Arc::clone(&session));
                futures_util::stream::poll_fn(move |cx| taken.poll_recv(cx)).filter_map(
                    move |started| {
                        let admitted = me.upgrade().and_then(|m| m.admit(&session, started));
                        std::future::ready(admitted)
                    },
                )
            };
            session
                .run(admitted, |id, result| {
                    if let Some(m) = me.upgrade() {
                        let session = Arc::clone(&session);
                        m.runtime.clone().spawn(async move {
                            m.ended(&session, id, result).await;
                        });
                    }
                })
                .await;
        });
        feed
    }

    /// Forgets the open session of a profile that was edited or removed (its pipeline ends
    /// once what it was given has ended).
    pub(crate) async fn forget_session(&self, name: &str) {
        self.sessions.lock().await.remove(name);
    }

    /// [`Manager::set_limit_rate`] from what staff typed (`5MB`, `500KiB/s`; empty lifts it);
    /// answers the limit in bytes per second.
    pub fn set_limit_rate_typed(&self, typed: &str) -> Result<Option<u64>, ManagerError> {
        let rate = match typed.trim() {
            "" => None,
            typed => Some(crate::profile::parse_rate(typed).map_err(ManagerError::Invalid)?),
        };
        self.set_limit_rate(rate)?;
        Ok(rate)
    }

    /// Sets (or with `None` lifts) the bandwidth limit over all uploads: it applies to those
    /// running at once, and is kept for the next start.
    pub fn set_limit_rate(&self, bytes_per_second: Option<u64>) -> Result<(), ManagerError> {
        self.config.profiles.set_limit_rate(bytes_per_second)?;
        self.overall_limit.set(bytes_per_second);
        Ok(())
    }

    /// Validates and queues files and folders (folders keep their structure) for the active
    /// profile and starts uploading them. Files that fail validation are returned with the
    /// reason and not queued.
    pub async fn add(self: &Arc<Self>, paths: Vec<PathBuf>) -> Result<AddReport, ManagerError> {
        let profile = self.config.profiles.resolve(None)?;
        self.add_for(&profile.name, paths).await
    }

    /// [`Manager::add`] for files handed to the app from outside its window (its command
    /// line): what was queued and refused goes to the UI as [`ManagerEvent::Added`].
    pub async fn add_from_outside(
        self: &Arc<Self>,
        paths: Vec<PathBuf>,
    ) -> Result<AddReport, ManagerError> {
        let report = self.add(paths).await?;
        self.emit(ManagerEvent::Added {
            summary: report.clone().into(),
        });
        Ok(report)
    }

    /// [`Manager::add`] for profile `name`.
    async fn add_for(
        self: &Arc<Self>,
        name: &str,
        paths: Vec<PathBuf>,
    ) -> Result<AddReport, ManagerError> {
        self.adding.fetch_add(1, Ordering::SeqCst);
        let result = self.add_files(name, paths).await;
        self.adding.fetch_sub(1, Ordering::SeqCst);
        self.end_batch_if_idle();
        result
    }

    async fn add_files(
        self: &Arc<Self>,
        name: &str,
        paths: Vec<PathBuf>,
    ) -> Result<AddReport, ManagerError> {
        let (session, feed) = self.opened(name).await?;
        let mut report = AddReport::default();
        let quiet: ProgressFn = Arc::new(|_| {});
        let jobs = session.expand(&paths)?;
        for chunk in jobs.chunks(session::PREPARE_CHUNK) {
            let prepared = session.prepare_many(chunk, |_| Arc::clone(&quiet)).await;
            for (job, prepared) in chunk.iter().zip(prepared) {
                match prepared {
                    Ok(prepared) => {
                        // `start` tells the UI of the row.
                        report.queued.push(prepared.item_id);
                        self.start(&feed, prepared.item_id, Some(prepared));
                    }
                    Err(e) => report.rejected.push(Rejection {
                        path: job.path.display().to_string(),
                        reason: e.to_string(),
                    }),
                }
            }
        }
        // Every file is queued: a restart finds them there, not in the drop.
        session.drops_queued(&jobs)?;
        Ok(report)
    }

    fn changed(&self, id: i64) {
        if let Ok(row) = self.row(id) {
            self.emit(ManagerEvent::Changed { row });
        }
    }

    /// Starts (or resumes) upload `id` unless it is already running: hands it to its
    /// profile's pipeline. A job just validated and queued (`prepared`) is sent as it is; any
    /// other is prepared again when its turn comes, since its file may have changed since.
    fn start(&self, feed: &Feed, id: i64, prepared: Option<Prepared>) {
        // A resumed upload shows what the store already has until its parts are checked; a job
        // just queued has nothing there (and a folder of 100,000 needs no query per file).
        let acked = match &prepared {
            Some(p) if p.state == ItemState::Queued => 0,
            _ => self
                .queue
                .get(id)
                .ok()
                .flatten()
                .map_or(0, |i| i.acked_bytes),
        };
        {
            let mut live = lock(&self.live);
            if live.contains_key(&id) {
                return;
            }
            live.insert(
                id,
                Live {
                    control: None,
                    stop: None,
                    phase: Phase::Queued,
                    sent: acked,
                    note: None,
                    last_progress: None,
                    resume_after_stop: false,
                },
            );
        }
        self.changed(id);
        // Beyond a few chunks, a waiting upload is prepared again (found in the queue) when
        // its turn comes, so a folder of 100,000 files is not held in memory.
        let waiting = self.waiting.fetch_add(1, Ordering::SeqCst);
        let prepared = prepared
            .filter(|_| waiting < PREPARED_IN_MEMORY)
            .map(Box::new);
        if feed.send(Started { id, prepared }).is_err() {
            // The pipeline is gone (the runtime is shutting down): nothing will run it.
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            lock(&self.live).remove(&id);
        }
    }

    /// Upload `id`'s turn has come in `session`'s pipeline: its control is made (with any stop
    /// asked meanwhile) and its progress wired to the events.
    fn admit(&self, session: &Session, started: Started) -> Option<Entry<i64>> {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let Started { id, prepared } = started;
        let control = session.control().child();
        if let Some(l) = lock(&self.live).get_mut(&id) {
            match l.stop {
                Some(Stop::Pause) => control.pause(),
                Some(Stop::Cancel) => control.cancel(),
                None => {}
            }
            l.control = Some(control.clone());
        }
        let work = match prepared {
            Some(p) => Work::Prepared(Ok(*p)),
            None => match self.item(id) {
                Ok(item) => Work::Job(Job::file(item.path)),
                Err(e) => {
                    self.finished(id, Err(e));
                    return None;
                }
            },
        };
        let me = Weak::clone(&self.me);
        let progress: ProgressFn = Arc::new(move |e| {
            if let Some(m) = me.upgrade() {
                m.on_transfer(id, e);
            }
        });
        Some(Entry {
            tag: id,
            work,
            progress,
            control,
        })
    }

    /// Upload `id` ended in its pipeline with `result`.
    async fn ended(
        self: &Arc<Self>,
        session: &Session,
        id: i64,
        result: Result<UploadReceipt, UploadError>,
    ) {
        let outcome = match result {
            Ok(_) => Ok(()),
            Err(e) => self.failed_upload(session, id, e).await,
        };
        self.finished(id, outcome);
    }

    /// Records why upload `id` did not land, where the engine did not (an error before its
    /// transfer), and keeps one that failed for want of a network for a retry once it is back.
    async fn failed_upload(
        self: &Arc<Self>,
        session: &Session,
        id: i64,
        e: UploadError,
    ) -> Result<(), ManagerError> {
        // Errors before the transfer (the file vanished, changed type…) leave the item as it
        // was: end it, so the reason stays in the queue and nothing on the store.
        let item = self.item(id)?;
        if item.state.is_unfinished() && item.state != ItemState::Paused {
            session.resumer().fail(&item, &e.to_string()).await?;
        }
        let item = self.item(id)?;
        if e.kind() == crate::error::ErrorKind::RemoteTransient && item.state == ItemState::Failed {
            let reason = format!(
                "{}; Hoist tries again by itself once it gets through",
                item.error.as_deref().unwrap_or("it could not be reached")
            );
            self.queue.lifecycle().held(id, &reason)?;
            self.retry_when_reachable(&item.profile, id);
        }
        Ok(())
    }

    fn finished(&self, id: i64, outcome: Result<(), ManagerError>) {
        if let Err(e) = outcome {
            let _ = self.resumer().record(id, &failed(&e));
        }
        let state = self.queue.get(id).ok().flatten().map(|i| i.state);
        // Counted before it leaves the running set: whoever sees the set empty reports a batch
        // that includes it.
        {
            let mut b = lock(&self.batch);
            match state {
                Some(ItemState::Done) => {
                    b.reported_failures.remove(&id);
                    b.done += 1;
                }
                Some(ItemState::Failed) if b.reported_failures.insert(id) => b.failed += 1,
                _ => {}
            }
        }
        let resume = lock(&self.live)
            .remove(&id)
            .is_some_and(|l| l.resume_after_stop);
        self.changed(id);
        if let Some(item) = self.queue.get(id).ok().flatten() {
            if let Some(me) = self.me.upgrade() {
                me.got_through(&item.profile, id, item.state);
                if resume && item.state == ItemState::Paused {
                    self.runtime.spawn(async move {
                        let _ = me.resume(id).await;
                    });
                }
            }
        }
        self.end_batch_if_idle();
    }

    /// Once nothing runs and no files are being added: reports the batch and wakes waiters.
    fn end_batch_if_idle(&self) {
        if !lock(&self.live).is_empty() || self.adding.load(Ordering::SeqCst) > 0 {
            return;
        }
        let b = {
            let mut batch = lock(&self.batch);
            let reported = std::mem::take(&mut batch.reported_failures);
            std::mem::replace(
                &mut *batch,
                Batch {
                    reported_failures: reported,
                    ..Batch::default()
                },
            )
        };
        if b.done + b.failed > 0 {
            self.emit(ManagerEvent::BatchFinished {
                done: b.done,
                failed: b.failed,
            });
        }
        self.idle.notify_waiters();
    }

    /// Resolves once no upload runs and no files are being added.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if lock(&self.live).is_empty() && self.adding.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
