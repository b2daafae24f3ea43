//! Uploads that failed because their store or backend could not be reached: one of them is
//! retried as a probe after a growing wait; once a probe gets through (or anything of the
//! profile lands), all of them are.

use std::sync::Arc;

use super::*;

impl Manager {
    /// Keeps failed upload `id` (its store or backend could not be reached) for a retry once
    /// `profile`'s store or backend answers again, and schedules the next probe.
    pub(super) fn retry_when_reachable(self: &Arc<Self>, profile: &str, id: i64) {
        let delay = {
            let mut all = lock(&self.reconnect);
            let r = all.entry(profile.to_owned()).or_default();
            if r.probe == Some(id) {
                r.probe = None;
                r.delay = (r.delay * 2).min(RECONNECT_MAX);
            }
            if r.delay.is_zero() {
                r.delay = self.config.reconnect_after;
            }
            r.failed.insert(id);
            if r.scheduled || r.probe.is_some() {
                return;
            }
            r.scheduled = true;
            r.delay
        };
        let (this, profile) = (Arc::clone(self), profile.to_owned());
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            this.probe(&profile).await;
        });
    }

    /// Retries the oldest upload of `profile` still failed for want of a network.
    pub(super) async fn probe(self: &Arc<Self>, profile: &str) {
        loop {
            let next = {
                let mut all = lock(&self.reconnect);
                let Some(r) = all.get_mut(profile) else {
                    return;
                };
                r.scheduled = false;
                let next = r.failed.pop_first();
                r.probe = next;
                next
            };
            let Some(id) = next else { return };
            if self.retry_automatically(id).await.is_ok() {
                return;
            }
            // Retried or dismissed by hand meanwhile: the next one probes.
        }
    }

    /// Upload `id` of `profile` ended in `state`: unless it failed for want of a network again,
    /// the store or backend answered, so every upload waiting for it is retried now.
    pub(super) fn got_through(self: &Arc<Self>, profile: &str, id: i64, state: ItemState) {
        let waiting = {
            let mut all = lock(&self.reconnect);
            let Some(r) = all.get_mut(profile) else {
                return;
            };
            let answered =
                r.probe == Some(id) || (state == ItemState::Done && !r.failed.is_empty());
            if !answered || r.failed.contains(&id) {
                return;
            }
            let waiting = std::mem::take(&mut r.failed);
            *r = Reconnect {
                scheduled: r.scheduled,
                ..Reconnect::default()
            };
            waiting
        };
        let this = Arc::clone(self);
        self.runtime.spawn(async move {
            for id in waiting {
                // Retried, dismissed or removed by hand meanwhile: nothing to do.
                let _ = this.retry_automatically(id).await;
            }
        });
    }
}

/// Failed uploads of one profile that may land once its store or backend can be reached again.
/// One of them at a time is retried as a probe, with a growing wait between probes; once a
/// probe gets through (or anything of the profile lands), all of them are retried.
#[derive(Default)]
pub(super) struct Reconnect {
    pub(super) failed: BTreeSet<i64>,
    pub(super) probe: Option<i64>,
    pub(super) delay: Duration,
    pub(super) scheduled: bool,
}
