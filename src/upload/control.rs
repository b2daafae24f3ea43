//! Stopping uploads from outside: pause keeps a multipart upload for a later resume, cancel
//! aborts it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::types::TransferError;

/// Stops uploads: `pause` keeps the multipart upload for a later resume, `cancel` aborts it.
/// Child controls stop with their parent.
#[derive(Clone, Debug)]
pub struct Control {
    token: CancellationToken,
    /// This control's own cancel flag, then its ancestors': a cancel is seen by the control
    /// and its descendants, never by its siblings.
    cancelled: Vec<Arc<AtomicBool>>,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            token: CancellationToken::new(),
            cancelled: vec![Arc::new(AtomicBool::new(false))],
        }
    }
}

impl Control {
    /// Stops the uploads, keeping what they sent.
    pub fn pause(&self) {
        self.token.cancel();
    }

    /// Stops the uploads and has them abort what they sent.
    pub fn cancel(&self) {
        if let Some(own) = self.cancelled.first() {
            own.store(true, Ordering::SeqCst);
        }
        self.token.cancel();
    }

    /// A control that stops when this one does, or on its own.
    pub fn child(&self) -> Self {
        let mut cancelled = vec![Arc::new(AtomicBool::new(false))];
        cancelled.extend(self.cancelled.iter().cloned());
        Self {
            token: self.token.child_token(),
            cancelled,
        }
    }

    /// Whether paused or cancelled.
    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Whether cancelled (not only paused).
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.iter().any(|c| c.load(Ordering::SeqCst))
    }

    /// The error an upload stopped by this control ends with.
    pub fn stop_error(&self) -> TransferError {
        if self.is_cancelled() {
            TransferError::Cancelled
        } else {
            TransferError::Paused
        }
    }

    /// Resolves once paused or cancelled.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: children shared their parent's cancel flag, so after one upload was
    /// cancelled, pausing another one (or the whole session) cancelled and aborted it too.
    #[test]
    fn cancelling_one_child_does_not_cancel_its_siblings() {
        let session = Control::default();
        let (a, b) = (session.child(), session.child());
        a.cancel();
        assert!(matches!(a.stop_error(), TransferError::Cancelled));
        assert!(!b.is_stopped());
        b.pause();
        assert!(matches!(b.stop_error(), TransferError::Paused));
        assert!(!session.is_stopped());
    }

    #[test]
    fn a_cancelled_parent_cancels_its_descendants() {
        let session = Control::default();
        let grandchild = session.child().child();
        session.cancel();
        assert!(grandchild.is_stopped());
        assert!(matches!(grandchild.stop_error(), TransferError::Cancelled));
        let paused = Control::default();
        let child = paused.child();
        paused.pause();
        assert!(matches!(child.stop_error(), TransferError::Paused));
    }
}
