//! Restarts, cancels and settles queue items outside a transfer (or once it ended): the
//! store first (abort), then the queue's lifecycle.

use crate::queue::{Ending, Queue, QueueError, QueueItem};
use crate::remote::{MultipartApi, RemoteFailure};
use crate::retry::Clock;
use crate::upload::resume::{self, RestartReason, Settlement, SourceFacts};
use crate::upload::{ItemJournal, ProgressFn, TransferError};

/// Restarts and cancels unfinished uploads: the store first (abort), then the queue.
pub(crate) struct Resumer<'a> {
    /// How to reach the store; `None` when the profile has no multipart API.
    pub api: Option<&'a dyn MultipartApi>,
    /// Where the item is journaled.
    pub queue: &'a Queue,
    /// Times and signs the aborts.
    pub clock: &'a dyn Clock,
}

impl Resumer<'_> {
    /// Makes `item` start over with the file's new `facts`: aborts its multipart upload when
    /// it may still exist, forgets it and its parts, records why, and tells `progress`.
    pub(crate) async fn restart(
        &self,
        item: &QueueItem,
        facts: SourceFacts<'_>,
        reason: RestartReason,
        progress: &ProgressFn,
    ) -> Result<(), TransferError> {
        let journal = ItemJournal {
            queue: self.queue,
            item_id: item.id,
        };
        resume::restart(
            self.api, self.clock, item, &journal, facts, reason, progress,
        )
        .await
    }

    /// Cancels an upload that is not running: aborts its multipart upload, so that no parts
    /// stay behind, and marks it cancelled. A failed abort is returned after the item is
    /// marked.
    pub(crate) async fn cancel(
        &self,
        item: &QueueItem,
    ) -> Result<Result<(), RemoteFailure>, QueueError> {
        let abort = resume::abort(self.api, self.clock, item).await;
        self.record(
            item.id,
            &Settlement::Ended {
                ending: Ending::Cancelled,
                reason: "cancelled".into(),
            },
        )?;
        Ok(abort)
    }

    /// Ends an upload that failed outside a transfer (its file vanished, its profile broke):
    /// aborts its multipart upload, so that nothing stays behind, and records why.
    pub(crate) async fn fail(&self, item: &QueueItem, reason: &str) -> Result<(), QueueError> {
        // A failed abort leaves parts that `hoist sweep` removes.
        let _ = resume::abort(self.api, self.clock, item).await;
        self.record(
            item.id,
            &Settlement::Ended {
                ending: Ending::Failed,
                reason: reason.to_string(),
            },
        )
    }

    /// Records a settlement that is not [`Settlement::Done`] (which needs the receipt).
    pub(crate) fn record(&self, id: i64, settlement: &Settlement) -> Result<(), QueueError> {
        let lifecycle = self.queue.lifecycle();
        match settlement {
            Settlement::Done => Ok(()),
            Settlement::Paused => lifecycle.paused(id),
            Settlement::Held { reason } => lifecycle.held(id, reason),
            Settlement::Ended { ending, reason } => lifecycle.ended(id, *ending, reason),
        }
    }
}
