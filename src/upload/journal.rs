//! What the engine records before it sends a byte, so that a crash at any moment loses
//! nothing and sends nothing twice under another key: the [`Journal`], the engine's one way
//! to persistence, which the queue implements ([`ItemJournal`], through the queue's
//! `Lifecycle`, the one writer of an item's state and parts).
//!
//! The exactly-once rule: a backend's answer names the key it chose and a ticket for it
//! ([`Assigned`]). That is journaled *before* the first byte goes; a resumed file presents it,
//! and the backend signs the same key again — or says the object already landed there, and
//! nothing is sent. Multipart uploads journal their key and upload id at create, and each part
//! once acknowledged.

use crate::queue::{PartRecord, Queue, QueueError, QueueItem, Restart};
use crate::remote::MultipartTarget;
use crate::sign::Assigned;

use super::TransferError;

/// Where the engine records what must outlive a crash, and reads it back on a resume.
pub trait Journal: Send + Sync {
    /// What was journaled of the file so far; `None` when nothing is kept (a resume then
    /// starts over).
    fn item(&self) -> Result<Option<QueueItem>, TransferError>;
    /// The parts journaled as acknowledged, by number.
    fn parts(&self) -> Result<Vec<PartRecord>, TransferError>;
    /// A backend assigned this file `assigned` (a key and its ticket): recorded before the
    /// first byte is sent.
    fn assigned(&self, assigned: &Assigned) -> Result<(), TransferError>;
    /// A multipart upload was created for the file: recorded before its first part goes.
    fn multipart_created(
        &self,
        target: &MultipartTarget,
        part_size: u64,
    ) -> Result<(), TransferError>;
    /// The store acknowledged a part.
    fn part_acknowledged(&self, part: &PartRecord) -> Result<(), TransferError>;
    /// The upload starts over (its old one aborted, or gone), for the file as it is now.
    fn restarted(&self, restart: &Restart<'_>) -> Result<(), TransferError>;
}

/// A journal that keeps nothing: a one-off upload outside any queue (a resume then starts
/// over).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn item(&self) -> Result<Option<QueueItem>, TransferError> {
        Ok(None)
    }
    fn parts(&self) -> Result<Vec<PartRecord>, TransferError> {
        Ok(Vec::new())
    }
    fn assigned(&self, _: &Assigned) -> Result<(), TransferError> {
        Ok(())
    }
    fn multipart_created(&self, _: &MultipartTarget, _: u64) -> Result<(), TransferError> {
        Ok(())
    }
    fn part_acknowledged(&self, _: &PartRecord) -> Result<(), TransferError> {
        Ok(())
    }
    fn restarted(&self, _: &Restart<'_>) -> Result<(), TransferError> {
        Ok(())
    }
}

/// The queue item a file uploads as.
#[derive(Clone, Copy, Debug)]
pub struct ItemJournal<'a> {
    /// The queue.
    pub queue: &'a Queue,
    /// The item.
    pub item_id: i64,
}

fn journal_err(e: QueueError) -> TransferError {
    TransferError::Journal(e.to_string())
}

impl Journal for ItemJournal<'_> {
    fn item(&self) -> Result<Option<QueueItem>, TransferError> {
        self.queue
            .get(self.item_id)
            .map_err(|e| TransferError::Read(e.to_string()))
    }
    fn parts(&self) -> Result<Vec<PartRecord>, TransferError> {
        self.queue
            .parts(self.item_id)
            .map_err(|e| TransferError::Read(e.to_string()))
    }
    fn assigned(&self, assigned: &Assigned) -> Result<(), TransferError> {
        self.queue
            .lifecycle()
            .assigned(&[(self.item_id, assigned)])
            .map_err(journal_err)
    }
    fn multipart_created(
        &self,
        target: &MultipartTarget,
        part_size: u64,
    ) -> Result<(), TransferError> {
        self.queue
            .lifecycle()
            .multipart_created(self.item_id, &target.key, &target.upload_id, part_size)
            .map_err(journal_err)
    }
    fn part_acknowledged(&self, part: &PartRecord) -> Result<(), TransferError> {
        self.queue
            .lifecycle()
            .part_acknowledged(self.item_id, part)
            .map_err(journal_err)
    }
    fn restarted(&self, restart: &Restart<'_>) -> Result<(), TransferError> {
        self.queue
            .lifecycle()
            .restarted(self.item_id, restart)
            .map_err(journal_err)
    }
}
