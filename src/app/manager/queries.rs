//! What the window and the tray ask of the manager: the active profile and where its files
//! land, the queue's rows a window at a time, a profile's sign-in, what runs now.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::*;

impl Manager {
    /// Whether this is the first time the window closed to the tray on this machine (then the
    /// app says once that it goes on there; #31). Remembered in the data dir; a data dir
    /// that cannot be written says yes each time rather than never.
    pub fn first_close_to_tray(&self) -> bool {
        let marker = self.config.data_dir.join("closed-to-tray");
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(_) => true,
            Err(e) => e.kind() != std::io::ErrorKind::AlreadyExists,
        }
    }
    /// The active profile and where its files land (starting the embedded store for `local`).
    pub async fn overview(&self) -> Result<Overview, ManagerError> {
        let profile = self.config.profiles.resolve(None)?;
        let (destination, local) = match &profile.mode {
            Mode::Backend { url, .. } => (format!("the bucket behind {url}"), false),
            Mode::SelfSign {
                bucket,
                region,
                endpoint,
                ..
            } => (
                match endpoint {
                    Some(e) => format!("bucket {bucket} at {e}"),
                    None => format!("bucket {bucket} in {region}"),
                },
                false,
            ),
            Mode::Local => (self.local_folder().await?.display().to_string(), true),
        };
        let signed_in_as = match profile.sign_in {
            Some(_) => {
                let (keychain, name) = (self.config.keychain.clone(), profile.name.clone());
                tokio::task::spawn_blocking(move || {
                    crate::backend::sign_in::signed_in_user(&keychain, &name)
                })
                .await
                .map_err(|e| ManagerError::Invalid(e.to_string()))??
            }
            None => None,
        };
        Ok(Overview {
            signs_in: profile.sign_in.is_some(),
            active_profile: profile.name,
            destination,
            local,
            limit_rate: self.overall_limit.get(),
            signed_in_as,
        })
    }

    /// Signs profile `name` in through the system browser (`open` opens the provider's page)
    /// and retries its failed uploads (most failed for want of a sign-in; any other reason
    /// comes back with the retry); who signed in.
    pub async fn sign_in(
        self: &Arc<Self>,
        name: &str,
        open: Box<dyn FnOnce(&str) + Send + '_>,
    ) -> Result<String, ManagerError> {
        let profile = self.config.profiles.get(name)?;
        let via = crate::backend::sign_in::Via::Browser {
            open,
            timeout: std::time::Duration::from_secs(300),
        };
        let user = crate::backend::sign_in::sign_in(
            &profile,
            &self.config.keychain,
            via,
            &crate::retry::SystemClock,
        )
        .await?;
        // The session's access token (if any) was someone else's, or nobody's.
        self.forget_session(name).await;
        self.for_each(
            |i| i.state == ItemState::Failed && i.profile == name,
            |id| self.retry(id),
        )
        .await?;
        Ok(user)
    }

    /// Signs profile `name` out (revoked at the provider, deleted from the keychain).
    pub async fn sign_out(&self, name: &str) -> Result<(), ManagerError> {
        let profile = self.config.profiles.get(name)?;
        crate::backend::sign_in::sign_out_profile(&profile, &self.config.keychain).await?;
        self.forget_session(name).await;
        Ok(())
    }

    /// The folder the embedded store keeps its bucket in.
    #[cfg(feature = "embedded-store")]
    pub async fn local_folder(&self) -> Result<PathBuf, ManagerError> {
        let session = self.session(crate::profile::LOCAL_PROFILE).await?;
        session
            .local_store()
            .map(|s| s.bucket_dir())
            .ok_or_else(|| ManagerError::Invalid("the embedded store is not running".into()))
    }

    /// The folder the embedded store keeps its bucket in: none in a build without it.
    #[cfg(not(feature = "embedded-store"))]
    pub async fn local_folder(&self) -> Result<PathBuf, ManagerError> {
        Err(crate::session::SessionError::NoEmbeddedStore.into())
    }

    /// Every upload not dismissed, oldest first, with the progress of those running.
    pub fn uploads(&self) -> Result<Vec<UploadRow>, ManagerError> {
        let live = lock(&self.live);
        Ok(self
            .queue
            .visible()?
            .into_iter()
            .map(|i| row_of(&i, live.get(&i.id).map(Live::view)))
            .collect())
    }

    /// The rows of the queue view that `query` asks for (unfinished uploads first, oldest
    /// first; then finished ones, newest first), with the counts and totals around them.
    pub fn queue_window(&self, query: QueueQuery) -> Result<QueueWindow, ManagerError> {
        let counts = self.queue.visible_counts()?;
        let counted = |states: &[ItemState]| -> u64 {
            counts
                .iter()
                .filter(|c| states.contains(&c.state))
                .map(|c| c.items)
                .sum()
        };
        let (first, then) = query.filter.states();
        let in_first = counted(first);
        let (offset, limit) = (
            u64::from(query.offset),
            u64::from(query.limit.min(crate::app::QUEUE_WINDOW_MAX)),
        );
        let mut items = Vec::new();
        if offset < in_first {
            items = self.queue.visible_window(first, true, offset, limit)?;
        }
        let left = limit - items.len() as u64;
        if left > 0 {
            let skip = offset.saturating_sub(in_first);
            items.extend(self.queue.visible_window(then, false, skip, left)?);
        }
        let (unfinished, _) = QueueFilter::Unfinished.states();
        // Read before the live map is locked: the lock is never held over a query.
        let acked = self.queue.acked_unfinished()?;
        let live = lock(&self.live);
        // What the rows show, summed: a running upload's live bytes, and what the store holds
        // of a paused or interrupted one (regression: "0 B of 300 MiB" overall while its row
        // said 16 MiB).
        let resting: u64 = acked
            .iter()
            .filter(|(id, _)| !live.contains_key(id))
            .map(|(_, bytes)| bytes)
            .sum();
        let overall = Overall {
            unfinished: u32::try_from(counted(unfinished)).unwrap_or(u32::MAX),
            size: counts
                .iter()
                .filter(|c| unfinished.contains(&c.state))
                .map(|c| c.bytes)
                .sum(),
            sent: live.values().map(|l| l.sent).sum::<u64>() + resting,
            sent_ever: self.sent_ever.load(Ordering::Relaxed),
        };
        Ok(QueueWindow {
            offset: query.offset,
            rows: items
                .iter()
                .map(|i| row_of(i, live.get(&i.id).map(Live::view)))
                .collect(),
            matching: u32::try_from(in_first + counted(then)).unwrap_or(u32::MAX),
            all: u32::try_from(counts.iter().map(|c| c.items).sum::<u64>()).unwrap_or(u32::MAX),
            overall,
        })
    }

    pub(super) fn row(&self, id: i64) -> Result<UploadRow, ManagerError> {
        let item = self.queue.get(id)?.ok_or(ManagerError::NotFound(id))?;
        Ok(row_of(&item, lock(&self.live).get(&id).map(Live::view)))
    }

    pub(super) fn item(&self, id: i64) -> Result<QueueItem, ManagerError> {
        self.queue.get(id)?.ok_or(ManagerError::NotFound(id))
    }

    /// The file on this machine that upload `id` sends (or sent), for "show in folder"; an
    /// error says so when it was moved or deleted since.
    pub fn source_file(&self, id: i64) -> Result<PathBuf, ManagerError> {
        let path = self.item(id)?.path;
        if !path.exists() {
            return Err(ManagerError::Io {
                path,
                message: "it is no longer there (moved or deleted since it was queued)".into(),
            });
        }
        Ok(path)
    }

    /// What runs now and how the current batch went; cheap (two locks), so it can be asked
    /// often. Files still being queued count as running.
    pub fn activity(&self) -> Activity {
        let running = lock(&self.live).len() + self.adding.load(Ordering::SeqCst);
        let batch = lock(&self.batch);
        Activity {
            running: u32::try_from(running).unwrap_or(u32::MAX),
            done: batch.done,
            failed: batch.failed,
        }
    }
}
