//! What the engine records before it sends a byte, so that a crash at any moment loses
//! nothing and sends nothing twice under another key: the [`Journal`] the queue implements.
//!
//! The exactly-once rule: a backend's answer names the key it chose and a ticket for it
//! ([`Assigned`]). That is journaled *before* the first byte goes; a resumed file presents it,
//! and the backend signs the same key again — or says the object already landed there, and
//! nothing is sent. Multipart uploads journal their key and upload id at create, and each part
//! once acknowledged (`MultipartJob`'s queue).

use crate::sign::Assigned;

use super::TransferError;

/// Where the engine records what must outlive a crash.
pub trait Journal: Send + Sync {
    /// A backend assigned this file `assigned` (a key and its ticket): recorded before the
    /// first byte is sent.
    fn assigned(&self, assigned: &Assigned) -> Result<(), TransferError>;
}

/// A journal that keeps nothing: a one-off upload outside any queue (a resume then starts
/// over).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn assigned(&self, _: &Assigned) -> Result<(), TransferError> {
        Ok(())
    }
}

/// The queue item a file uploads as.
#[derive(Clone, Copy, Debug)]
pub struct ItemJournal<'a> {
    /// The queue.
    pub queue: &'a crate::queue::Queue,
    /// The item.
    pub item_id: i64,
}

impl Journal for ItemJournal<'_> {
    fn assigned(&self, assigned: &Assigned) -> Result<(), TransferError> {
        self.queue
            .assign_many(&[(self.item_id, assigned)])
            .map_err(|e| TransferError::Journal(e.to_string()))
    }
}
