//! The application layer's error: every domain's error it can meet, plus its own.

use std::path::{Path, PathBuf};

use crate::profile::ProfileError;
use crate::queue::QueueError;
use crate::secret::KeychainError;
use crate::session::{CancelError, SessionError};

/// Why an application call failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// A profile or the profiles file.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A profile could not be made ready.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The queue database.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The keychain.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// A cancel did not fully work.
    #[error(transparent)]
    Cancel(#[from] CancelError),
    /// Signing in with the identity provider failed.
    #[error(transparent)]
    SignIn(#[from] crate::backend::sign_in::SignInError),
    /// No queue item has this id.
    #[error("there is no upload #{0} in the queue")]
    NotFound(i64),
    /// The request is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot use {path}: {message}")]
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        message: String,
    },
}

impl crate::error::HasKind for ManagerError {
    fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::Profile(e) => e.kind(),
            Self::Session(e) => e.kind(),
            Self::Queue(e) => e.kind(),
            Self::Keychain(e) => e.kind(),
            Self::Cancel(e) => e.kind(),
            Self::SignIn(e) => e.kind(),
            Self::NotFound(_) | Self::Invalid(_) => ErrorKind::InvalidInput,
            Self::Io { .. } => ErrorKind::Local,
        }
    }

    fn hint(&self) -> Option<crate::error::Hint> {
        match self {
            Self::Profile(e) => e.hint(),
            Self::Session(e) => e.hint(),
            Self::Keychain(e) => e.hint(),
            Self::Cancel(e) => e.hint(),
            _ => None,
        }
    }
}

impl ManagerError {
    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Writes an export owner-only through an exclusive temporary file and a rename, so a crash
/// never leaves half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ManagerError> {
    crate::files::write_private(path, bytes).map_err(|e| ManagerError::io(path, e))
}
