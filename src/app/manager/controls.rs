//! What staff do to uploads, one or all: pause, resume, cancel, retry, dismiss, clear the
//! finished ones, and resume what a previous run left unfinished.

use std::sync::Arc;

use super::*;

impl Manager {
    /// Pauses a running or waiting upload; a multipart upload keeps its parts for the resume.
    pub fn pause(&self, id: i64) -> Result<(), ManagerError> {
        if let Some(l) = lock(&self.live).get_mut(&id) {
            match &l.control {
                Some(c) => c.pause(),
                None => {
                    l.stop.get_or_insert(Stop::Pause);
                }
            }
            return Ok(());
        }
        let item = self.item(id)?;
        if !item.state.is_unfinished() {
            return Err(ManagerError::Invalid(format!(
                "{} is {}: only a waiting or running upload can be paused",
                file_name(&item.path),
                Phase::of(item.state).label()
            )));
        }
        self.resumer().record(id, &Settlement::Paused)?;
        self.changed(id);
        Ok(())
    }

    /// Resumes a paused (or interrupted) upload where it stopped.
    pub async fn resume(self: &Arc<Self>, id: i64) -> Result<(), ManagerError> {
        let item = self.item(id)?;
        if !item.state.is_unfinished() {
            return Err(ManagerError::Invalid(format!(
                "{} is {}: use retry for failed or cancelled uploads",
                file_name(&item.path),
                Phase::of(item.state).label()
            )));
        }
        if let Some(l) = lock(&self.live).get_mut(&id) {
            // Paused but still in the pipeline: it goes again once the pause is recorded.
            match (&l.control, l.stop) {
                (Some(c), _) if c.is_stopped() && !c.is_cancelled() => l.resume_after_stop = true,
                (None, Some(Stop::Pause)) => l.stop = None,
                _ => {}
            }
            return Ok(());
        }
        let (_, feed) = self.opened(&item.profile).await?;
        // Waiting to go again: an error before its transfer is then recorded as a failure,
        // not left under a `paused` that no longer says why nothing moves.
        if item.state == ItemState::Paused && !lock(&self.live).contains_key(&id) {
            self.queue.lifecycle().requeued(id)?;
        }
        self.start(&feed, id, None);
        Ok(())
    }

    /// Cancels an upload: nothing of it stays in the bucket; the row stays until dismissed.
    pub async fn cancel(self: &Arc<Self>, id: i64) -> Result<(), ManagerError> {
        if let Some(l) = lock(&self.live).get_mut(&id) {
            match &l.control {
                Some(c) => c.cancel(),
                None => l.stop = Some(Stop::Cancel),
            }
            return Ok(());
        }
        let item = self.item(id)?;
        // A failure held for a retry keeps its parts on the store: cancelling removes them.
        if !item.state.is_unfinished() && !item.held {
            return Ok(());
        }
        let session = self.session(&item.profile).await?;
        let result = session.cancel_stopped(&item).await;
        self.changed(id);
        Ok(result?)
    }

    /// Uploads a failed or cancelled file again (from the start, or from what S3 still holds).
    pub async fn retry(self: &Arc<Self>, id: i64) -> Result<(), ManagerError> {
        // Asked for by the user: a failure again is news again.
        lock(&self.batch).reported_failures.remove(&id);
        self.retry_automatically(id).await
    }

    /// Retries, on Hoist's own initiative, every failed upload of `profile`: a secret just
    /// stored for it may be what they lacked.
    pub(crate) async fn retry_failed_of(&self, profile: &str) -> Result<(), ManagerError> {
        let Some(me) = self.me.upgrade() else {
            return Ok(());
        };
        me.for_each(
            |i| i.state == ItemState::Failed && i.profile == profile,
            |id| me.retry_automatically(id),
        )
        .await
    }

    /// Retries failed or cancelled upload `id` on Hoist's own initiative (the network is back):
    /// its failing again is not reported again.
    pub(super) async fn retry_automatically(self: &Arc<Self>, id: i64) -> Result<(), ManagerError> {
        let item = self.item(id)?;
        if !matches!(item.state, ItemState::Failed | ItemState::Cancelled) {
            return Err(ManagerError::Invalid(format!(
                "{} is {}: only failed or cancelled uploads can be retried",
                file_name(&item.path),
                Phase::of(item.state).label()
            )));
        }
        let (_, feed) = self.opened(&item.profile).await?;
        self.queue.lifecycle().requeued(id)?;
        self.start(&feed, id, None);
        Ok(())
    }

    /// Removes a finished, failed or cancelled upload from the queue view (done ones stay in
    /// the history).
    pub fn dismiss(&self, id: i64) -> Result<(), ManagerError> {
        let item = self.item(id)?;
        if item.state.is_unfinished() {
            return Err(ManagerError::Invalid(format!(
                "{} is still {}: pause or cancel it first",
                file_name(&item.path),
                Phase::of(item.state).label()
            )));
        }
        self.queue.dismiss(id)?;
        for r in lock(&self.reconnect).values_mut() {
            r.failed.remove(&id);
        }
        // Dismissed, a failure held for a retry gives up what the store keeps of it (and stays
        // failed, with its reason).
        if item.held {
            if let Some(me) = self.me.upgrade() {
                self.runtime.spawn(async move {
                    if let Ok(session) = me.session(&item.profile).await {
                        let reason = item.error.clone().unwrap_or_else(|| "failed".into());
                        let _ = session.resumer().fail(&item, &reason).await;
                    }
                });
            }
        }
        Ok(())
    }

    /// Pauses everything that runs or waits.
    pub fn pause_all(&self) -> Result<(), ManagerError> {
        for item in self.queue.visible()? {
            if item.state.is_unfinished() && item.state != ItemState::Paused {
                self.pause(item.id)?;
            }
        }
        Ok(())
    }

    /// Resumes every paused or interrupted upload.
    pub async fn resume_all(self: &Arc<Self>) -> Result<(), ManagerError> {
        self.for_each(|i| i.state.is_unfinished(), |id| self.resume(id))
            .await
    }

    /// Cancels everything unfinished.
    pub async fn cancel_all(self: &Arc<Self>) -> Result<(), ManagerError> {
        self.for_each(|i| i.state.is_unfinished(), |id| self.cancel(id))
            .await
    }

    /// Retries every failed upload.
    pub async fn retry_all(self: &Arc<Self>) -> Result<(), ManagerError> {
        self.for_each(|i| i.state == ItemState::Failed, |id| self.retry(id))
            .await
    }

    /// Dismisses every finished (done or cancelled) upload.
    pub fn clear_finished(&self) -> Result<(), ManagerError> {
        for item in self.queue.visible()? {
            if matches!(item.state, ItemState::Done | ItemState::Cancelled) {
                self.queue.dismiss(item.id)?;
            }
        }
        Ok(())
    }

    /// Applies `action` to every matching visible item; the first error is returned after all
    /// were tried.
    pub(super) async fn for_each<F, Fut>(
        &self,
        filter: impl Fn(&QueueItem) -> bool,
        action: F,
    ) -> Result<(), ManagerError>
    where
        F: Fn(i64) -> Fut,
        Fut: std::future::Future<Output = Result<(), ManagerError>>,
    {
        let mut first = Ok(());
        for item in self.queue.visible()? {
            if filter(&item) {
                if let Err(e) = action(item.id).await {
                    if first.is_ok() {
                        first = Err(e);
                    }
                }
            }
        }
        first
    }

    /// After a restart: uploads that were waiting or running go on (paused ones stay paused).
    /// An upload whose profile cannot be opened any more fails with the reason.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<(), ManagerError> {
        let mut profiles = BTreeSet::new();
        for item in self.queue.visible()? {
            profiles.insert(item.profile.clone());
            if !matches!(item.state, ItemState::Queued | ItemState::Uploading) {
                continue;
            }
            match self.opened(&item.profile).await {
                Ok((_, feed)) => self.start(&feed, item.id, None),
                Err(e) => {
                    self.resumer().record(item.id, &failed(&e))?;
                    self.changed(item.id);
                }
            }
        }
        // Folders dropped but not queued whole (the app was killed while queueing them): the
        // rest of their files, under the same drop.
        if let Ok(active) = self.config.profiles.resolve(None) {
            profiles.insert(active.name);
        }
        for name in profiles {
            let roots: Vec<PathBuf> = self
                .queue
                .incomplete_drops(&name)?
                .into_iter()
                .map(|d| d.root)
                .filter(|r| r.is_dir())
                .collect();
            if !roots.is_empty() {
                self.add_for(&name, roots).await?;
            }
        }
        Ok(())
    }
}
